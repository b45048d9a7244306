//! The data plane's record of an instance's trackers: the latest result of each, what it
//! contributes to the priority (keepalived's weights), which trackers hold the instance in
//! FAULT, and the names and details transitions and events show.

use crate::spec::TrackerSpec;
use havip_vrrp::TrackerId;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long a new tracker has to give its first result before its silence counts as
/// failing. Interfaces and files answer in milliseconds, reports at once, a script with its
/// first run. Until then it counts for nothing either way: a starting instance waits in INIT
/// for it, and a tracker added to a running instance does not flap it through FAULT.
pub const GRACE: Duration = Duration::from_secs(2);

/// What a tracker last found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Failing,
    /// A file tracker read this value.
    Value(i64),
}

/// One result, as the tracker service sends it to the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerResult {
    pub tracker: Arc<str>,
    pub health: Health,
    /// Exit status and output, the value read, the interface state, the reporter's words.
    pub detail: String,
    /// Script runs killed at their timeout so far.
    pub timeouts: u64,
}

/// A tracker as `InstanceStatus.trackers` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerView {
    pub name: Arc<str>,
    pub healthy: bool,
    pub detail: String,
    pub since: SystemTime,
    pub priority_change: i32,
    pub timeouts: u64,
}

/// A change worth an event: a tracker became healthy or failing, gave its first result, or
/// (a file tracker) now contributes something else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub name: Arc<str>,
    pub healthy: bool,
    pub detail: String,
    pub priority_change: i32,
}

/// What [`TrackerBook::apply`] made of a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// No tracker of that name (it was removed meanwhile): ignored.
    Unknown,
    /// Only the detail or the counters changed.
    Quiet,
    Notable(Change),
}

/// What the detail says before the first result.
pub const PENDING: &str = "no result yet";

#[derive(Clone, Debug)]
struct Entry {
    id: TrackerId,
    spec: TrackerSpec,
    /// `None` until the first result: nothing during the [`GRACE`] after `added`, failing
    /// after it, so an instance never claims mastership before its checks have spoken.
    health: Option<Health>,
    added: Instant,
    detail: String,
    since: SystemTime,
    timeouts: u64,
}

/// What one tracker does to the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Effect {
    /// Holds the instance in FAULT (weight 0 and failing).
    fault: bool,
    delta: i64,
    healthy: bool,
}

impl Entry {
    fn effect(&self, now: Instant) -> Effect {
        let w = i64::from(self.spec.weight);
        match self.health {
            None if now < self.added + GRACE => Effect {
                fault: false,
                delta: 0,
                healthy: false,
            },
            // keepalived's track_file: the value times the weight; with weight 0 any
            // value but 0 is a fault.
            Some(Health::Value(v)) if self.spec.is_file() => {
                if w == 0 {
                    Effect {
                        fault: v != 0,
                        delta: 0,
                        healthy: v == 0,
                    }
                } else {
                    Effect {
                        fault: false,
                        delta: v.saturating_mul(w),
                        healthy: true,
                    }
                }
            }
            // A positive weight is added while healthy, a negative one while failing.
            Some(Health::Healthy | Health::Value(_)) => Effect {
                fault: false,
                delta: w.max(0),
                healthy: true,
            },
            None | Some(Health::Failing) => Effect {
                fault: w == 0,
                delta: w.min(0),
                healthy: false,
            },
        }
    }
}

/// Every tracker of one instance.
#[derive(Clone, Debug, Default)]
pub struct TrackerBook {
    entries: Vec<Entry>,
    next_id: u32,
}

impl TrackerBook {
    /// Take a new tracker list. A tracker that keeps its name keeps its state until its
    /// next result (a new weight applies at once; a new target or timing reports soon),
    /// so a live change never flaps the instance; a new one starts from "no result yet".
    pub fn configure(&mut self, specs: &[TrackerSpec], wall: SystemTime, now: Instant) {
        let mut old = std::mem::take(&mut self.entries);
        for spec in specs {
            let kept = old
                .iter()
                .position(|e| e.spec.name == spec.name)
                .map(|i| old.swap_remove(i));
            let entry = match kept {
                Some(e) => Entry {
                    spec: spec.clone(),
                    ..e
                },
                None => Entry {
                    id: self.new_id(),
                    spec: spec.clone(),
                    health: None,
                    added: now,
                    detail: PENDING.to_owned(),
                    since: wall,
                    timeouts: 0,
                },
            };
            self.entries.push(entry);
        }
    }

    fn new_id(&mut self) -> TrackerId {
        let id = TrackerId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a tracker has not given its first result yet.
    pub fn pending(&self) -> bool {
        self.entries.iter().any(|e| e.health.is_none())
    }

    /// Whether a tracker has not given its first result and is still within its grace.
    pub fn in_grace(&self, now: Instant) -> bool {
        self.entries
            .iter()
            .any(|e| e.health.is_none() && now < e.added + GRACE)
    }

    /// Record a result.
    pub fn apply(&mut self, result: TrackerResult, wall: SystemTime, now: Instant) -> Applied {
        let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| e.spec.name == result.tracker)
        else {
            return Applied::Unknown;
        };
        let first = entry.health.is_none();
        let before = entry.effect(now);
        entry.health = Some(result.health);
        entry.detail = result.detail;
        entry.timeouts = result.timeouts;
        let after = entry.effect(now);
        if first || before.healthy != after.healthy {
            entry.since = wall;
        }
        if first || before != after {
            Applied::Notable(Change {
                name: entry.spec.name.clone(),
                healthy: after.healthy,
                detail: entry.detail.clone(),
                priority_change: clamp(after.delta),
            })
        } else {
            Applied::Quiet
        }
    }

    /// The trackers that hold the instance in FAULT, sorted.
    pub fn faults(&self, now: Instant) -> Vec<TrackerId> {
        let mut ids: Vec<TrackerId> = self
            .entries
            .iter()
            .filter(|e| e.effect(now).fault)
            .map(|e| e.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The sum of the trackers' contributions to the priority.
    pub fn weight(&self, now: Instant) -> i32 {
        clamp(self.entries.iter().map(|e| e.effect(now).delta).sum())
    }

    /// "tracker haproxy failed (exit status 1: connection refused)": a transition's reason
    /// in words, by the tracker's name and what it last found.
    pub fn failure(&self, id: TrackerId) -> Option<String> {
        let e = self.entries.iter().find(|e| e.id == id)?;
        Some(if e.detail.is_empty() {
            format!("tracker {} failed", e.spec.name)
        } else {
            format!("tracker {} failed ({})", e.spec.name, e.detail)
        })
    }

    pub fn views(&self, now: Instant) -> Vec<TrackerView> {
        self.entries
            .iter()
            .map(|e| {
                let effect = e.effect(now);
                TrackerView {
                    name: e.spec.name.clone(),
                    healthy: effect.healthy,
                    detail: e.detail.clone(),
                    since: e.since,
                    priority_change: clamp(effect.delta),
                    timeouts: e.timeouts,
                }
            })
            .collect()
    }
}

/// A contribution as the engine takes it. Any sum beyond ±254 already pins the priority
/// to 1 or 254, so the clamp changes nothing that matters.
fn clamp(v: i64) -> i32 {
    i32::try_from(v.clamp(-1_000_000, 1_000_000)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Check, ScriptCheck};
    use std::path::PathBuf;

    fn tracker(name: &str, weight: i32, check: Check) -> TrackerSpec {
        TrackerSpec {
            name: Arc::from(name),
            weight,
            check,
        }
    }

    fn iface(name: &str, weight: i32) -> TrackerSpec {
        tracker(
            name,
            weight,
            Check::Interface {
                interface: "eth1".into(),
            },
        )
    }

    fn file(name: &str, weight: i32) -> TrackerSpec {
        tracker(
            name,
            weight,
            Check::File {
                path: PathBuf::from("/run/prio"),
            },
        )
    }

    fn result(name: &str, health: Health) -> TrackerResult {
        TrackerResult {
            tracker: Arc::from(name),
            health,
            detail: format!("{health:?}"),
            timeouts: 0,
        }
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH
    }

    #[test]
    fn without_a_result_trackers_count_for_nothing_in_their_grace_then_as_failing() {
        let mut b = TrackerBook::default();
        let start = Instant::now();
        b.configure(
            &[iface("a", 0), iface("b", -20), iface("c", 30)],
            t0(),
            start,
        );
        assert!(b.pending() && b.in_grace(start));
        assert_eq!((b.faults(start).len(), b.weight(start)), (0, 0));
        let after = start + GRACE;
        assert!(!b.in_grace(after));
        assert_eq!(b.faults(after).len(), 1, "weight 0 silent: FAULT");
        assert_eq!(
            b.weight(after),
            -20,
            "negative weight applies, positive does not"
        );
        assert!(
            b.views(after)
                .iter()
                .all(|v| !v.healthy && v.detail == PENDING)
        );
        for n in ["a", "b", "c"] {
            b.apply(result(n, Health::Failing), t0(), start);
        }
        assert!(!b.pending() && !b.in_grace(start));
    }

    #[test]
    fn keepalived_weights() {
        let mut b = TrackerBook::default();
        let now = Instant::now();
        b.configure(
            &[iface("neg", -20), iface("pos", 30), iface("zero", 0)],
            t0(),
            now,
        );
        for n in ["neg", "pos", "zero"] {
            b.apply(result(n, Health::Healthy), t0(), now);
        }
        assert_eq!((b.faults(now).len(), b.weight(now)), (0, 30));
        b.apply(result("neg", Health::Failing), t0(), now);
        assert_eq!(b.weight(now), 10);
        b.apply(result("pos", Health::Failing), t0(), now);
        assert_eq!(b.weight(now), -20);
        b.apply(result("zero", Health::Failing), t0(), now);
        assert_eq!(b.faults(now).len(), 1);
    }

    #[test]
    fn file_values_are_multiplied_by_the_weight_and_weight_0_means_fault_if_nonzero() {
        let mut b = TrackerBook::default();
        let now = Instant::now();
        b.configure(&[file("f", 5), file("g", 0)], t0(), now);
        b.apply(result("f", Health::Value(-3)), t0(), now);
        b.apply(result("g", Health::Value(0)), t0(), now);
        assert_eq!((b.faults(now).len(), b.weight(now)), (0, -15));
        b.apply(result("g", Health::Value(2)), t0(), now);
        assert_eq!(b.faults(now).len(), 1);
        // Unreadable: failing; weight 5 is positive, so it adds nothing.
        b.apply(result("f", Health::Failing), t0(), now);
        assert_eq!(b.weight(now), 0);
    }

    #[test]
    fn changes_are_notable_only_when_health_or_contribution_moves() {
        let mut b = TrackerBook::default();
        let now = Instant::now();
        b.configure(&[iface("a", -10), file("f", 2)], t0(), now);
        assert!(
            matches!(
                b.apply(result("a", Health::Failing), t0(), now),
                Applied::Notable(_)
            ),
            "the first result always is"
        );
        let mut again = result("a", Health::Failing);
        again.detail = "other words".into();
        assert_eq!(b.apply(again, t0(), now), Applied::Quiet);
        let Applied::Notable(c) = b.apply(result("a", Health::Healthy), t0(), now) else {
            panic!("recovery is notable");
        };
        assert!(c.healthy);
        assert_eq!(c.priority_change, 0);
        b.apply(result("f", Health::Value(1)), t0(), now);
        let Applied::Notable(c) = b.apply(result("f", Health::Value(4)), t0(), now) else {
            panic!("a new value is notable");
        };
        assert_eq!(c.priority_change, 8);
        assert_eq!(
            b.apply(result("gone", Health::Healthy), t0(), now),
            Applied::Unknown
        );
    }

    #[test]
    fn reconfiguring_keeps_state_and_ids_and_new_trackers_do_not_flap() {
        let mut b = TrackerBook::default();
        let script = |interval_ms: u64, path: &str| {
            Check::Script(ScriptCheck {
                path: PathBuf::from(path),
                args: vec![],
                user: None,
                interval: Duration::from_millis(interval_ms),
                timeout: Duration::from_millis(interval_ms),
                rise: 1,
                fall: 1,
            })
        };
        let now = Instant::now();
        b.configure(
            &[tracker("s", 0, script(1000, "/bin/a")), iface("i", -5)],
            t0(),
            now,
        );
        b.apply(result("s", Health::Failing), t0(), now);
        b.apply(result("i", Health::Healthy), t0(), now);
        let fault = b.faults(now);
        assert_eq!(fault.len(), 1);
        let wall = t0() + Duration::from_secs(5);
        // New interval and weight: same state, same id.
        b.configure(
            &[tracker("s", 0, script(500, "/bin/a")), iface("i", -9)],
            wall,
            now,
        );
        assert_eq!(b.faults(now), fault);
        assert_eq!(b.views(now)[0].since, t0());
        // New path: the state stays until the new target's first result (no flap).
        b.configure(&[tracker("s", 0, script(500, "/bin/b"))], wall, now);
        assert_eq!(b.faults(now), fault);
        assert_eq!(b.views(now).len(), 1, "i was removed");
        assert_eq!(b.weight(now), 0);
        // A new tracker on a running instance counts for nothing until it answers.
        b.configure(
            &[tracker("s", 0, script(500, "/bin/b")), iface("new", 0)],
            wall,
            now,
        );
        assert_eq!(b.faults(now), fault);
    }

    #[test]
    fn failures_are_worded_by_name_and_detail() {
        let mut b = TrackerBook::default();
        let now = Instant::now();
        b.configure(&[iface("haproxy", 0)], t0(), now);
        b.apply(
            TrackerResult {
                tracker: Arc::from("haproxy"),
                health: Health::Failing,
                detail: "exit status 1: connection refused".into(),
                timeouts: 0,
            },
            t0(),
            now,
        );
        let id = b.faults(now)[0];
        assert_eq!(
            b.failure(id).as_deref(),
            Some("tracker haproxy failed (exit status 1: connection refused)")
        );
    }
}
