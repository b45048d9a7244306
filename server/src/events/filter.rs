//! A watcher's filter: which instances and kinds it wants. Applied at fan-out for live
//! events (so filtered-out events take no buffer space) and in SQL for replays.

use crate::store::EventsFilter;
use havip_proto::v1;
use std::collections::HashSet;

#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Empty: every instance (and daemon events).
    instances: HashSet<String>,
    /// Empty: every kind.
    kinds: HashSet<i32>,
}

impl Filter {
    pub(crate) fn new(instances: &[String], kinds: &[v1::EventKind]) -> Self {
        Self {
            instances: instances.iter().cloned().collect(),
            kinds: kinds.iter().map(|k| *k as i32).collect(),
        }
    }

    /// An instance filter matches only that instance's events; daemon events (instance
    /// "") pass only when no instance is named.
    pub(crate) fn matches(&self, event: &v1::Event) -> bool {
        (self.instances.is_empty() || self.instances.contains(&event.instance))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
    }

    pub(crate) fn to_sql(&self) -> EventsFilter {
        let json = |items: Vec<serde_json::Value>| {
            (!items.is_empty()).then(|| serde_json::Value::Array(items).to_string())
        };
        EventsFilter {
            instances_json: json(self.instances.iter().map(|i| i.as_str().into()).collect()),
            kinds_json: json(self.kinds.iter().map(|k| (*k).into()).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(instance: &str, kind: v1::EventKind) -> v1::Event {
        v1::Event {
            instance: instance.into(),
            kind: kind as i32,
            ..Default::default()
        }
    }

    #[test]
    fn matches_by_instance_and_kind() {
        let all = Filter::default();
        let a = Filter::new(&["a".into()], &[]);
        let state = Filter::new(&[], &[v1::EventKind::StateChanged]);
        let a_state = Filter::new(&["a".into()], &[v1::EventKind::StateChanged]);
        let a_changed = event("a", v1::EventKind::StateChanged);
        let b_changed = event("b", v1::EventKind::StateChanged);
        let a_created = event("a", v1::EventKind::InstanceCreated);
        let started = event("", v1::EventKind::DaemonStarted);
        assert!(
            [&a_changed, &b_changed, &a_created, &started]
                .iter()
                .all(|e| all.matches(e))
        );
        assert!(a.matches(&a_changed) && a.matches(&a_created));
        assert!(!a.matches(&b_changed) && !a.matches(&started));
        assert!(state.matches(&a_changed) && state.matches(&b_changed));
        assert!(!state.matches(&a_created) && !state.matches(&started));
        assert!(a_state.matches(&a_changed));
        assert!(!a_state.matches(&b_changed) && !a_state.matches(&a_created));
        assert_eq!(all.to_sql().instances_json, None);
        assert_eq!(a.to_sql().instances_json.as_deref(), Some(r#"["a"]"#));
        assert_eq!(state.to_sql().kinds_json.as_deref(), Some("[1]"));
    }
}
