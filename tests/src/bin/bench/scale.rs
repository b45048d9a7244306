//! Scale: 2040 instances (8 interfaces × 255) at 1 s adverts on one node: start-up from
//! the store, CPU and memory.

use crate::failover::wait_until;
use crate::measure;
use crate::nodes::{Impl, Node, Setup};
use havip_e2e::Lab;
use havip_proto::v1::{ListInstancesRequest, State};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ScaleOutcome {
    pub implementation: Impl,
    pub instances: usize,
    /// Process start → every instance running (out of INIT).
    pub startup: Duration,
    pub cpu_percent: f64,
    pub rss_mb: f64,
}

pub const INTERFACES: usize = 8;

pub async fn run(kind: Impl) -> ScaleOutcome {
    let mut lab = Lab::new(&format!(
        "bx{}",
        if kind == Impl::Havipd { "h" } else { "k" }
    ));
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let peer = lab.host("b", Some("10.0.0.2/24"), None);
    let mut interfaces = Vec::new();
    for i in 0..INTERFACES {
        let (name, other) = (format!("s{i}"), format!("s{i}p"));
        a.exec(&[
            "ip", "link", "add", &name, "type", "veth", "peer", "name", &other,
        ]);
        a.exec(&[
            "ip",
            "addr",
            "add",
            &format!("10.{}.0.1/24", 200 + i),
            "dev",
            &name,
        ]);
        a.exec(&["ip", "link", "set", &other, "up"]);
        a.exec(&["ip", "link", "set", &name, "up"]);
        interfaces.push(name);
    }
    let setup = Setup {
        version: 3,
        interval: Duration::from_secs(1),
        unicast: false,
        vrids: 1..=255,
        interfaces,
        single_vip: None,
        notify_master: None,
    };
    let count = setup.count();
    let mut node = Node::start(kind, &a, "a", &setup, 100, &peer).await;
    let startup = match kind {
        Impl::Havipd => {
            // The instances are in the store now: measure a start from it.
            node.stop();
            let t0 = Instant::now();
            node.restart().await;
            let d = node.daemon().expect("havipd");
            let mut c = d.instances().await;
            loop {
                let list = c
                    .list_instances(ListInstancesRequest::default())
                    .await
                    .map(|r| r.into_inner())
                    .unwrap_or_default();
                let running = list
                    .instances
                    .iter()
                    .filter(|i| {
                        i.status
                            .as_ref()
                            .is_some_and(|s| s.state != State::Init as i32)
                    })
                    .count();
                if running == count || t0.elapsed() > Duration::from_secs(120) {
                    break t0.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Impl::Keepalived => {
            node.stop();
            let t0 = Instant::now();
            node.restart().await;
            let k = node.keepalived().expect("keepalived");
            let entered = || {
                k.log()
                    .lines()
                    .filter(|l| l.contains("Entering BACKUP STATE"))
                    .count()
            };
            if wait_until(Duration::from_secs(120), || entered() >= count).is_none() {
                let log = k.log();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                eprintln!(
                    "  keepalived: {} of {count} instances entered BACKUP within 120 s; vrrp pid {:?}; log ends:\n{}",
                    entered(),
                    k.vrrp_pid(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            t0.elapsed()
        }
    };
    // Lone node: everything becomes master after Master_Down_Interval; then measure.
    wait_until(Duration::from_secs(120), || node.vips_held() == count);
    std::thread::sleep(Duration::from_secs(3));
    let pid = node.pid().unwrap_or(0);
    let cpu = measure::cpu_share(pid, Duration::from_secs(10)).unwrap_or(f64::NAN) * 100.0;
    let rss = measure::rss(pid).unwrap_or(0) as f64 / 1_048_576.0;
    ScaleOutcome {
        implementation: kind,
        instances: count,
        startup,
        cpu_percent: cpu,
        rss_mb: rss,
    }
}
