//! The status board: what the data plane publishes about each instance for the API to read
//! without asking the data plane (so a burst of GetInstance calls never delays an advert).

use havip_vrrp::State;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

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

/// Bad packets on an interface that no instance can be charged with, by reason: what RFC
/// 2787's router-wide vrrpRouterVrIdErrors counts (`unknown_vrid`: a VRID no instance here
/// serves), plus datagrams too short to name a VRID (`truncated`), larger than any advert
/// (`oversized`) or whose IP header or ancillary data is unusable (`malformed`).
pub const INTERFACE_BAD_REASONS: &[&str] = &["unknown_vrid", "truncated", "oversized", "malformed"];

/// The per-interface counters of one VRRP socket (interface and family). Kept on the board
/// for the daemon's life, so a socket reopened after a link flap counts on.
#[derive(Debug)]
pub struct InterfaceCounters {
    pub interface: String,
    pub family: havip_vrrp::Family,
    bad: [AtomicU64; 4],
}

const _: () = assert!(INTERFACE_BAD_REASONS.len() == 4);

impl InterfaceCounters {
    fn new(interface: String, family: havip_vrrp::Family) -> Self {
        InterfaceCounters {
            interface,
            family,
            bad: Default::default(),
        }
    }

    /// Count a packet under `reason` (one of [`INTERFACE_BAD_REASONS`]).
    pub fn bad_packet(&self, reason: &str) {
        if let Some(i) = INTERFACE_BAD_REASONS.iter().position(|r| *r == reason)
            && let Some(c) = self.bad.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every reason with its count, zeros included.
    pub fn all_bad_packets(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        INTERFACE_BAD_REASONS
            .iter()
            .copied()
            .zip(self.bad.iter().map(|c| c.load(Ordering::Relaxed)))
    }
}

/// What names an instance in metrics; fixed for the life of its entry on the board (a
/// change of interface or VRID restarts the instance with a new entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub name: Arc<str>,
    pub interface: String,
    pub vrid: u8,
}

/// The origin of [`Counters::last_master_advert`]'s clock: monotonic, process-wide.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Counters the data plane bumps without locks.
#[derive(Debug)]
pub struct Counters {
    pub adverts_sent: AtomicU64,
    /// Of `adverts_sent`, those the standby sender sent for a late data plane.
    pub adverts_sent_by_standby: AtomicU64,
    pub adverts_received: AtomicU64,
    pub transitions: AtomicU64,
    pub became_master: AtomicU64,
    pub send_errors: AtomicU64,
    pub address_list_mismatches: AtomicU64,
    /// Dual-master episodes: another master heard while master (once per episode).
    pub dual_masters: AtomicU64,
    /// Shared with the GARP service, which counts what it actually sent.
    pub garps_sent: Arc<AtomicU64>,
    bad: Vec<AtomicU64>,
    /// When an advert from the master was last accepted: milliseconds after [`EPOCH`],
    /// plus one (0: never). One relaxed store per accepted advert.
    last_master_advert: AtomicU64,
    /// Transitions by (new state, reason). Transitions are rare, so a lock is fine here.
    by_reason: Mutex<BTreeMap<(State, &'static str), u64>>,
}

impl Default for Counters {
    fn default() -> Self {
        let reasons = bad_reasons().count();
        Counters {
            adverts_sent: AtomicU64::new(0),
            adverts_sent_by_standby: AtomicU64::new(0),
            adverts_received: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            became_master: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            address_list_mismatches: AtomicU64::new(0),
            dual_masters: AtomicU64::new(0),
            garps_sent: Arc::new(AtomicU64::new(0)),
            bad: (0..reasons).map(|_| AtomicU64::new(0)).collect(),
            last_master_advert: AtomicU64::new(0),
            by_reason: Mutex::new(BTreeMap::new()),
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

    /// Every bad-packet reason with its count, zeros included (metrics list them all, so
    /// a rate can be taken from the first bad packet on).
    pub fn all_bad_packets(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        bad_reasons()
            .zip(&self.bad)
            .map(|(r, c)| (r, c.load(Ordering::Relaxed)))
    }

    /// An advert from the master was accepted now.
    pub fn heard_master(&self) {
        let ms = u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_master_advert.store(ms + 1, Ordering::Relaxed);
    }

    /// How long ago an advert from the master was last accepted; `None` if never.
    pub fn since_master_advert(&self) -> Option<Duration> {
        match self.last_master_advert.load(Ordering::Relaxed) {
            0 => None,
            at => Some(
                EPOCH
                    .elapsed()
                    .saturating_sub(Duration::from_millis(at - 1)),
            ),
        }
    }

    /// Count a transition to `to` for `reason` (the engine's reason label).
    pub fn count_transition(&self, to: State, reason: &'static str) {
        *self
            .by_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((to, reason))
            .or_insert(0) += 1;
    }

    /// Transitions by (new state, reason), only those that happened.
    pub fn transitions_by_reason(&self) -> Vec<((State, &'static str), u64)> {
        self.by_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, n)| (*k, *n))
            .collect()
    }
}

/// One instance on the board.
#[derive(Debug)]
pub struct LiveStatus {
    pub identity: Identity,
    snapshot: Mutex<Snapshot>,
    pub counters: Counters,
}

impl LiveStatus {
    pub fn new(now: SystemTime, identity: Identity) -> Self {
        LiveStatus {
            identity,
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

/// Every instance the data plane runs, and the counters of its sockets.
#[derive(Debug, Default)]
pub struct StatusBoard {
    entries: RwLock<HashMap<InstanceId, Arc<LiveStatus>>>,
    interfaces: RwLock<BTreeMap<(String, havip_vrrp::Family), Arc<InterfaceCounters>>>,
}

impl StatusBoard {
    /// The counters of the socket on `interface` for `family`, made on first use.
    pub(crate) fn interface(
        &self,
        interface: &str,
        family: havip_vrrp::Family,
    ) -> Arc<InterfaceCounters> {
        let key = (interface.to_owned(), family);
        if let Some(c) = self
            .interfaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return c.clone();
        }
        self.interfaces
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_insert_with(|| Arc::new(InterfaceCounters::new(interface.to_owned(), family)))
            .clone()
    }

    /// Every interface's counters, sorted by interface and family, for a metrics scrape.
    pub fn interfaces(&self) -> Vec<Arc<InterfaceCounters>> {
        self.interfaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

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

    /// Every instance on the board, for a metrics scrape.
    pub fn entries(&self) -> Vec<Arc<LiveStatus>> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
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
        let all: Vec<_> = c.all_bad_packets().collect();
        assert!(all.len() > 2, "zeros are listed too");
        assert!(all.contains(&("bad_checksum", 2)) && all.contains(&("ttl_not_255", 0)));
    }

    #[test]
    fn interface_counters_are_kept_per_interface_and_family() {
        let board = StatusBoard::default();
        let eth0 = board.interface("eth0", havip_vrrp::Family::Ipv4);
        eth0.bad_packet("unknown_vrid");
        eth0.bad_packet("unknown_vrid");
        eth0.bad_packet("no_such_reason");
        board
            .interface("eth0", havip_vrrp::Family::Ipv6)
            .bad_packet("truncated");
        // The same socket opened again counts on.
        let again = board.interface("eth0", havip_vrrp::Family::Ipv4);
        again.bad_packet("oversized");
        let all: Vec<_> = board
            .interfaces()
            .iter()
            .map(|c| {
                (
                    c.family,
                    c.all_bad_packets()
                        .filter(|(_, n)| *n > 0)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            all,
            vec![
                (
                    havip_vrrp::Family::Ipv4,
                    vec![("unknown_vrid", 2), ("oversized", 1)]
                ),
                (havip_vrrp::Family::Ipv6, vec![("truncated", 1)]),
            ]
        );
    }

    #[test]
    fn transitions_by_reason_and_the_last_master_advert() {
        let c = Counters::default();
        assert_eq!(c.since_master_advert(), None);
        c.heard_master();
        let since = c.since_master_advert().unwrap();
        assert!(since < Duration::from_secs(60), "{since:?}");
        c.count_transition(State::Master, "master_down_timer");
        c.count_transition(State::Master, "master_down_timer");
        c.count_transition(State::Backup, "startup");
        assert_eq!(
            c.transitions_by_reason(),
            vec![
                ((State::Backup, "startup"), 1),
                ((State::Master, "master_down_timer"), 2)
            ]
        );
    }
}
