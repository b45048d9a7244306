//! Helpers for tracker, maintenance and sync group scenarios: trackers of each kind, a
//! directory scripts may run from, waiting for conditions, reading events and history.

use crate::Daemon;
use crate::lab::Host;
use crate::vrrp::millis;
use havip_proto::v1::{
    self, GetInstanceRequest, HistoryFilter, ListConfigChangesRequest, ListTransitionsRequest,
    Tracker, WatchEventsRequest, tracker::Check,
};
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_stream::StreamExt;

static DIRS: AtomicU32 = AtomicU32::new(0);

/// A directory havipd accepts scripts from: root-owned, mode 0755, directly under the
/// system's temporary folder (root-owned and sticky). Removed on drop.
#[derive(Debug)]
pub struct ScriptDir {
    pub path: PathBuf,
}

impl ScriptDir {
    pub fn new(tag: &str) -> ScriptDir {
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("havip-e2e-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        ScriptDir { path }
    }

    /// A `/bin/sh` script with `body`, mode 0755.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn tracker(name: &str, weight: i32, check: Check) -> Tracker {
    Tracker {
        name: name.into(),
        weight,
        check: Some(check),
    }
}

pub fn interface_tracker(name: &str, interface: &str, weight: i32) -> Tracker {
    tracker(
        name,
        weight,
        Check::Interface(v1::InterfaceCheck {
            interface: interface.into(),
        }),
    )
}

pub fn script_tracker(
    name: &str,
    path: &Path,
    weight: i32,
    interval_ms: i64,
    timeout_ms: i64,
) -> Tracker {
    tracker(
        name,
        weight,
        Check::Script(v1::ScriptCheck {
            path: path.display().to_string(),
            interval: millis(interval_ms),
            timeout: millis(timeout_ms),
            ..Default::default()
        }),
    )
}

pub fn file_tracker(name: &str, path: &Path, weight: i32) -> Tracker {
    tracker(
        name,
        weight,
        Check::File(v1::FileCheck {
            path: path.display().to_string(),
        }),
    )
}

pub fn report_tracker(name: &str, check: &str, weight: i32) -> Tracker {
    tracker(
        name,
        weight,
        Check::Report(v1::HealthReportCheck {
            check: check.into(),
        }),
    )
}

/// Wait (up to `within`) for `condition`; panic naming `what` and showing `log` if it
/// never holds. No timing is asserted: the deadline only stops a hung test.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, log: &Daemon, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out after {within:?} waiting for {what}; log:\n{}",
                log.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait for `vip` to be on `host`'s eth0 (or gone).
pub async fn wait_vip(host: &Host, vip: &str, present: bool) {
    for _ in 0..1000 {
        if host.has_address(vip) == present {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{vip} present={present} expected on {}; addresses {:?}",
        host.ns,
        host.addresses()
    );
}

pub async fn instance(d: &Daemon, name: &str) -> v1::Instance {
    d.instances()
        .await
        .get_instance(GetInstanceRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
}

/// The instance's trackers as its status shows them.
pub async fn trackers(d: &Daemon, name: &str) -> Vec<v1::TrackerStatus> {
    instance(d, name)
        .await
        .status
        .map(|s| s.trackers)
        .unwrap_or_default()
}

/// Every stored event of `instance` of `kind`, oldest first: a replay from the start,
/// read until it goes quiet.
pub async fn events(d: &Daemon, instance: &str, kind: v1::EventKind) -> Vec<v1::Event> {
    replay(
        d,
        WatchEventsRequest {
            after_seq: Some(0),
            instances: if instance.is_empty() {
                vec![]
            } else {
                vec![instance.into()]
            },
            kinds: vec![kind as i32],
        },
    )
    .await
}

/// Every stored event with a seq above `after`, oldest first, read until the stream goes
/// quiet.
pub async fn events_after(d: &Daemon, after: u64) -> Vec<v1::Event> {
    replay(
        d,
        WatchEventsRequest {
            after_seq: Some(after),
            ..Default::default()
        },
    )
    .await
}

/// Reads a watch until no event arrives for 700 ms: long enough for a replay of the whole
/// store on a loaded machine, short enough for tests that call it often.
async fn replay(d: &Daemon, request: WatchEventsRequest) -> Vec<v1::Event> {
    let mut stream = d
        .events()
        .await
        .watch_events(request)
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(700), stream.next()).await
    {
        out.push(item.unwrap());
    }
    out
}

/// The tracker changes of an instance, oldest first.
pub async fn tracker_changes(d: &Daemon, instance: &str) -> Vec<v1::TrackerChange> {
    events(d, instance, v1::EventKind::TrackerChanged)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(v1::event::Payload::TrackerChanged(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// The instance's transitions from history, oldest first.
pub async fn transitions(d: &Daemon, instance: &str) -> Vec<v1::Transition> {
    let mut t = d
        .history()
        .await
        .list_transitions(ListTransitionsRequest {
            filter: Some(HistoryFilter {
                instance: instance.into(),
                ..Default::default()
            }),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .transitions;
    t.reverse();
    t
}

/// Config changes from history ("" for all), oldest first.
pub async fn config_changes(d: &Daemon, instance: &str) -> Vec<v1::ConfigChange> {
    let mut c = d
        .history()
        .await
        .list_config_changes(ListConfigChangesRequest {
            filter: Some(HistoryFilter {
                instance: instance.into(),
                ..Default::default()
            }),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    c.reverse();
    c
}

/// The reason of the last transition of `instance` into `to`.
pub async fn last_reason_into(d: &Daemon, instance: &str, to: v1::State) -> v1::TransitionReason {
    transitions(d, instance)
        .await
        .into_iter()
        .rev()
        .find(|t| t.to == to as i32)
        .and_then(|t| t.reason)
        .unwrap_or_else(|| panic!("no transition of {instance} into {to:?}; log:\n{}", d.log()))
}
