//! Helpers for VRRP scenarios: create an instance on a daemon, wait for states, follow
//! transitions, measure takeovers.

use crate::Daemon;
use havip_proto::v1::{self, CreateInstanceRequest, GetInstanceRequest, InstanceSpec};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_stream::StreamExt;

pub fn millis(ms: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration {
        seconds: ms / 1000,
        nanos: i32::try_from(ms % 1000 * 1_000_000).unwrap(),
    })
}

/// The instance spec for a test: interface eth0, one VIP.
pub fn spec(vrid: u32, version: u32, priority: u32, interval_ms: i64, vip: &str) -> InstanceSpec {
    InstanceSpec {
        interface: "eth0".into(),
        vrid,
        version: Some(version),
        priority: Some(priority),
        advert_interval: millis(interval_ms),
        virtual_addresses: vec![vip.into()],
        garp: Some(v1::GarpSettings {
            repeat: Some(3),
            delay: millis(0),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub async fn create(d: &Daemon, name: &str, spec: InstanceSpec) -> v1::Instance {
    let mut c = d.instances().await;
    match c
        .create_instance(CreateInstanceRequest {
            name: name.into(),
            spec: Some(spec),
            validate_only: false,
            comment: String::new(),
        })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => panic!("create {name} failed: {e:?}\nlog:\n{}", d.log()),
    }
}

pub async fn state(d: &Daemon, name: &str) -> v1::State {
    let mut c = d.instances().await;
    let i = c
        .get_instance(GetInstanceRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner();
    i.status
        .and_then(|s| v1::State::try_from(s.state).ok())
        .unwrap_or(v1::State::Unspecified)
}

pub async fn status(d: &Daemon, name: &str) -> v1::InstanceStatus {
    let mut c = d.instances().await;
    c.get_instance(GetInstanceRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap_or_default()
}

/// Wait (up to `within`) for the instance to be in `want`.
pub async fn wait_state(d: &Daemon, name: &str, want: v1::State, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let s = state(d, name).await;
        if s == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{name} is {s:?}, not {want:?}, after {within:?}; log:\n{}",
                d.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A live stream of one instance's transitions.
#[allow(missing_debug_implementations)]
pub struct Transitions {
    stream: tonic::Streaming<v1::Event>,
}

impl Transitions {
    pub async fn follow(d: &Daemon, name: &str) -> Transitions {
        let mut c = d.events().await;
        let stream = c
            .watch_events(v1::WatchEventsRequest {
                after_seq: None,
                instances: vec![name.into()],
                kinds: vec![v1::EventKind::StateChanged as i32],
            })
            .await
            .unwrap()
            .into_inner();
        Transitions { stream }
    }

    /// The next transition into `to`, within `within`.
    pub async fn next_to(&mut self, to: v1::State, within: Duration) -> v1::Transition {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(e))) => e,
                other => panic!("no transition to {to:?} within {within:?}: {other:?}"),
            };
            if let Some(v1::event::Payload::StateChanged(t)) = event.payload
                && t.to == to as i32
            {
                return t;
            }
        }
    }
}

/// The wall-clock time of a transition.
pub fn when(t: &v1::Transition) -> SystemTime {
    let ts = t.time.unwrap_or_default();
    UNIX_EPOCH
        + Duration::new(
            u64::try_from(ts.seconds).unwrap(),
            u32::try_from(ts.nanos).unwrap(),
        )
}

/// How long after `start` something happened (zero if before).
pub fn after(start: SystemTime, t: SystemTime) -> Duration {
    t.duration_since(start).unwrap_or_default()
}

/// Master_Down_Interval for a v3 instance (v2: the interval is whole seconds and the skew
/// does not depend on it).
pub fn master_down_interval(version: u32, priority: u32, interval: Duration) -> Duration {
    interval * 3 + skew_time(version, priority, interval)
}

pub fn skew_time(version: u32, priority: u32, interval: Duration) -> Duration {
    let weight = 256 - priority;
    match version {
        2 => Duration::from_nanos(u64::from(weight) * 1_000_000_000 / 256),
        _ => interval * weight / 256,
    }
}
