//! Interface trackers: healthy while the interface is up with carrier. The state comes from
//! the link events the daemon already watches, and from one netlink lookup when a tracker
//! starts following an interface (the watcher reports changes only).

use super::book::Health;
use crate::net::link::LinkEvent;
use std::collections::HashMap;

/// What is known about the interfaces trackers follow.
#[derive(Debug, Default)]
pub(super) struct Links {
    /// By name: `Some(up)`, or `None` when there is no such interface.
    state: HashMap<String, Option<bool>>,
    names: HashMap<u32, String>,
    /// Bumped on every event for a name, so a lookup that raced an event is discarded.
    epochs: HashMap<String, u64>,
}

impl Links {
    /// Whether the state of `name` is known (else it must be looked up).
    pub fn known(&self, name: &str) -> bool {
        self.state.contains_key(name)
    }

    pub fn epoch(&self, name: &str) -> u64 {
        self.epochs.get(name).copied().unwrap_or(0)
    }

    /// A lookup's answer, unless an event came in since it started.
    pub fn looked_up(&mut self, name: &str, epoch: u64, found: Option<(u32, bool)>) -> bool {
        if self.epoch(name) != epoch {
            return false;
        }
        if let Some((index, _)) = found {
            self.names.insert(index, name.to_owned());
        }
        self.state.insert(name.to_owned(), found.map(|(_, up)| up));
        true
    }

    /// Take a link event; returns the names whose state changed.
    pub fn event(&mut self, event: &LinkEvent) -> Vec<String> {
        let mut changed = Vec::new();
        match event {
            LinkEvent::Link { index, name, up } => {
                if let Some(old) = self.names.insert(*index, name.clone())
                    && old != *name
                {
                    // Renamed: the old name no longer exists.
                    self.set(&old, None, &mut changed);
                }
                self.set(name, Some(*up), &mut changed);
            }
            LinkEvent::LinkRemoved { index, name } => {
                self.names.remove(index);
                self.set(name, None, &mut changed);
            }
            LinkEvent::AddressAdded { .. } | LinkEvent::AddressRemoved { .. } => {}
        }
        changed
    }

    fn set(&mut self, name: &str, value: Option<bool>, changed: &mut Vec<String>) {
        *self.epochs.entry(name.to_owned()).or_default() += 1;
        if self.state.get(name) != Some(&value) {
            self.state.insert(name.to_owned(), value);
            changed.push(name.to_owned());
        }
    }

    /// The health of a tracker following `name`, once known.
    pub fn health(&self, name: &str) -> Option<(Health, String)> {
        Some(match self.state.get(name)? {
            Some(true) => (Health::Healthy, format!("interface {name} is up")),
            Some(false) => (
                Health::Failing,
                format!("interface {name} is down or has no carrier"),
            ),
            None => (Health::Failing, format!("interface {name} does not exist")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_lookups_and_renames() {
        let mut l = Links::default();
        assert_eq!(l.health("eth1"), None);
        let epoch = l.epoch("eth1");
        assert!(l.looked_up("eth1", epoch, Some((5, true))));
        assert_eq!(l.health("eth1").map(|h| h.0), Some(Health::Healthy));
        let changed = l.event(&LinkEvent::Link {
            index: 5,
            name: "eth1".into(),
            up: false,
        });
        assert_eq!(changed, ["eth1"]);
        assert_eq!(l.health("eth1").map(|h| h.0), Some(Health::Failing));
        // A lookup started before that event is stale.
        assert!(!l.looked_up("eth1", epoch, Some((5, true))));
        let changed = l.event(&LinkEvent::Link {
            index: 5,
            name: "wan".into(),
            up: true,
        });
        assert_eq!(changed, ["eth1", "wan"]);
        let (h, detail) = l.health("eth1").unwrap();
        assert_eq!(
            (h, detail.as_str()),
            (Health::Failing, "interface eth1 does not exist")
        );
        l.event(&LinkEvent::LinkRemoved {
            index: 5,
            name: "wan".into(),
        });
        assert_eq!(l.health("wan").map(|h| h.0), Some(Health::Failing));
    }
}
