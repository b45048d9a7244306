//! Event latency: how soon a watcher hears of a transition, next to how soon keepalived
//! runs its notify script.

use crate::failover::wait_until;
use crate::load::setup;
use crate::measure::{Summary, summarize};
use crate::nodes::{Impl, Node};
use crate::probe::AddressWatch;
use havip_e2e::Lab;
use havip_e2e::vrrp::when;
use havip_proto::v1::{self, State, WatchEventsRequest};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_stream::StreamExt;

#[derive(Clone, Debug)]
pub struct EventOutcome {
    pub implementation: Impl,
    /// How many instances failed over at once in each trial.
    pub instances: u8,
    /// havipd: transition → event at a WatchEvents client.
    pub from_transition: Summary,
    /// Both: the VIP appearing → the event (havipd) or the notify script starting (keepalived).
    pub from_vip: Summary,
}

/// The notify folder goes when the scenario ends, a panic included.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn run(kind: Impl, instances: u8, trials: usize) -> EventOutcome {
    let mut s = setup(instances, Duration::from_millis(100));
    // keepalived's script security refuses a script under a world-writable folder such as
    // /tmp: /run is root's.
    let dir =
        std::path::Path::new("/run").join(format!("havip-bench-notify-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(dir.clone());
    let log = dir.join("notify.log");
    if kind == Impl::Keepalived {
        std::fs::create_dir_all(&dir).expect("notify dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let script = dir.join("notify.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$(date +%s.%N) $1\" >> {}\n",
                log.display()
            ),
        )
        .expect("notify script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        s.notify_master = Some(script.display().to_string());
    }
    let mut lab = Lab::new(&format!(
        "be{}",
        if kind == Impl::Havipd { "h" } else { "k" }
    ));
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let master = Node::start(kind, &a, "a", &s, 150, &b).await;
    let backup = Node::start(kind, &b, "b", &s, 100, &a).await;
    let n = s.count();
    let mut from_transition = Vec::new();
    let mut from_vip = Vec::new();
    for trial in 0..trials {
        if wait_until(Duration::from_secs(60), || {
            master.vips_held() == n && backup.vips_held() == 0
        })
        .is_none()
        {
            // Reported with the samples gathered so far rather than ending the whole run.
            eprintln!(
                "  {}: trial {trial}: the pair did not settle (master holds {} of {n} VIPs, backup {}); no more trials\n{}",
                kind.name(),
                master.vips_held(),
                backup.vips_held(),
                tail(&master.log(), 20),
            );
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        let _ = std::fs::remove_file(&log);
        let watch = AddressWatch::start(&b);
        let mut events = match backup.daemon() {
            Some(d) => {
                let mut c = d.events().await;
                Some(
                    c.watch_events(WatchEventsRequest {
                        after_seq: None,
                        instances: vec![],
                        kinds: vec![v1::EventKind::StateChanged as i32],
                    })
                    .await
                    .expect("watch")
                    .into_inner(),
                )
            }
            None => None,
        };
        lab.unplug(&a);
        let mut arrivals: HashMap<u32, (SystemTime, SystemTime)> = HashMap::new();
        if let Some(stream) = events.as_mut() {
            while arrivals.len() < usize::from(instances) {
                match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                    Ok(Some(Ok(e))) => {
                        let at = SystemTime::now();
                        if let Some(v1::event::Payload::StateChanged(t)) = &e.payload
                            && t.to == State::Master as i32
                        {
                            let vrid: u32 = e
                                .instance
                                .rsplit('-')
                                .next()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0);
                            arrivals.insert(vrid, (when(t), at));
                        }
                    }
                    _ => break,
                }
            }
        } else {
            std::thread::sleep(Duration::from_secs(3));
        }
        std::thread::sleep(Duration::from_millis(500));
        let vips: HashMap<u32, SystemTime> = watch
            .drain()
            .into_iter()
            .filter_map(|(addr, at)| Some((addr.rsplit('.').next()?.parse().ok()?, at)))
            .collect();
        match kind {
            Impl::Havipd => {
                for (vrid, (transition, arrived)) in &arrivals {
                    from_transition.push(ms(arrived.duration_since(*transition)));
                    if let Some(vip) = vips.get(vrid) {
                        from_vip.push(signed_ms(*vip, *arrived));
                    }
                }
            }
            Impl::Keepalived => {
                for line in std::fs::read_to_string(&log).unwrap_or_default().lines() {
                    let mut f = line.split_whitespace();
                    let (Some(t), Some(v)) = (f.next(), f.next()) else {
                        continue;
                    };
                    let (Ok(t), Ok(vrid)) = (t.parse::<f64>(), v.parse::<u32>()) else {
                        continue;
                    };
                    let ran = UNIX_EPOCH + Duration::from_secs_f64(t);
                    if let Some(vip) = vips.get(&vrid) {
                        from_vip.push(signed_ms(*vip, ran));
                    }
                }
            }
        }
        lab.plug(&a);
        eprintln!(
            "  {} event latency: trial {}/{trials}: {} samples",
            kind.name(),
            trial + 1,
            from_vip.len()
        );
    }
    EventOutcome {
        implementation: kind,
        instances,
        from_transition: summarize(&from_transition),
        from_vip: summarize(&from_vip),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn ms(d: Result<Duration, std::time::SystemTimeError>) -> f64 {
    d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// `to − from` in ms, negative when `to` came first.
fn signed_ms(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}
