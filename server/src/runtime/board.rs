//! The status board: what the data plane publishes about each instance for the API to read
//! without asking the data plane (so a burst of GetInstance calls never delays an advert).

use havip_vrrp::State;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use super::InstanceId;
use crate::trackers::book::TrackerView;

/// Why the last transition happened, in the words the API uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonView {
    pub code: &'static str,
    pub description: String,
    pub peer: Option<IpAddr>,
}

/// The parts of an instance's status that change on transitions and adverts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub state: State,
    pub effective_priority: u8,
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    pub master_advert_interval: Duration,
    pub since: SystemTime,
    pub last_reason: Option<ReasonView>,
    pub master_down_interval: Duration,
    pub skew_time: Duration,
    /// A problem the runtime cannot fix by itself.
    pub error: Option<String>,
    pub trackers: Vec<TrackerView>,
}

impl Snapshot {
    pub fn initial(now: SystemTime) -> Self {
        Snapshot {
            state: State::Initialize,
            effective_priority: 0,
            master: None,
            master_priority: None,
            master_advert_interval: Duration::ZERO,
            since: now,
            last_reason: None,
            master_down_interval: Duration::ZERO,
            skew_time: Duration::ZERO,
            error: None,
            trackers: Vec::new(),
        }
    }
}

/// Bad-packet reasons counted per instance, beyond the codec's
/// [`havip_vrrp::packet::DecodeError::ALL_REASONS`].
pub const EXTRA_BAD_REASONS: &[&str] = &["interval_mismatch", "not_a_peer"];

/// Counters the data plane bumps without locks.
#[derive(Debug)]
pub struct Counters {
    pub adverts_sent: AtomicU64,
    pub adverts_received: AtomicU64,
    pub transitions: AtomicU64,
    pub became_master: AtomicU64,
    pub send_errors: AtomicU64,
    pub address_list_mismatches: AtomicU64,
    /// Shared with the GARP service, which counts what it actually sent.
    pub garps_sent: Arc<AtomicU64>,
    bad: Vec<AtomicU64>,
}

impl Default for Counters {
    fn default() -> Self {
        let reasons = bad_reasons().count();
        Counters {
            adverts_sent: AtomicU64::new(0),
            adverts_received: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            became_master: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            address_list_mismatches: AtomicU64::new(0),
            garps_sent: Arc::new(AtomicU64::new(0)),
            bad: (0..reasons).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bad_reasons() -> impl Iterator<Item = &'static str> {
    havip_vrrp::packet::DecodeError::ALL_REASONS
        .iter()
        .chain(EXTRA_BAD_REASONS)
        .copied()
}

impl Counters {
    /// Count a bad packet under `reason` (a label from the codec or [`EXTRA_BAD_REASONS`]).
    pub fn bad_packet(&self, reason: &str) {
        if let Some(i) = bad_reasons().position(|r| r == reason)
            && let Some(c) = self.bad.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Bad packets by reason, only the reasons that occurred.
    pub fn bad_packets(&self) -> Vec<(&'static str, u64)> {
        bad_reasons()
            .zip(&self.bad)
            .map(|(r, c)| (r, c.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// One instance on the board.
#[derive(Debug)]
pub struct LiveStatus {
    snapshot: Mutex<Snapshot>,
    pub counters: Counters,
}

impl LiveStatus {
    pub fn new(now: SystemTime) -> Self {
        LiveStatus {
            snapshot: Mutex::new(Snapshot::initial(now)),
            counters: Counters::default(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.snapshot.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Every instance the data plane runs.
#[derive(Debug, Default)]
pub struct StatusBoard {
    entries: RwLock<HashMap<InstanceId, Arc<LiveStatus>>>,
}

impl StatusBoard {
    pub fn get(&self, id: InstanceId) -> Option<Arc<LiveStatus>> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    pub(crate) fn insert(&self, id: InstanceId, live: Arc<LiveStatus>) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, live);
    }

    pub(crate) fn remove(&self, id: InstanceId) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_packets_are_counted_by_reason() {
        let c = Counters::default();
        c.bad_packet("bad_checksum");
        c.bad_packet("bad_checksum");
        c.bad_packet("not_a_peer");
        c.bad_packet("no_such_reason");
        assert_eq!(
            c.bad_packets(),
            vec![("bad_checksum", 2), ("not_a_peer", 1)]
        );
    }
}
