//! Many instances on one segment: CPU and memory once converged, false failovers under
//! stress, and advert timing under API load.

use crate::capture::Capture;
use crate::failover::wait_until;
use crate::measure::{self, Summary, summarize};
use crate::nodes::{Impl, Node, Setup};
use havip_e2e::Lab;
use havip_proto::v1::{self, GetInstanceRequest, ListInstancesRequest, UpdateInstanceRequest};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A converged pair of nodes running `count` instances each.
pub struct Pair {
    /// Kept for its namespaces, which go when it is dropped.
    _lab: Lab,
    pub master: Node,
    pub backup: Node,
    pub settled: Settled,
}

/// How many starts of a pair it took for the master to hold every VIP and the backup none.
#[derive(Clone, Copy, Debug)]
pub struct Settled {
    /// Whether the last start converged; a daemon that cannot keep up keeps flapping.
    pub converged: bool,
    /// Starts made, at most [`PAIR_STARTS`].
    pub starts: u32,
}

impl Settled {
    /// What the report adds after a figure: nothing for a pair that settled at its first
    /// start.
    pub fn note(self) -> String {
        match (self.converged, self.starts) {
            (true, 1) => String::new(),
            (true, n) => format!(", converged at start {n} of {PAIR_STARTS}"),
            (false, n) => format!(", never converged in {n} starts (kept flapping)"),
        }
    }
}

/// A pair that has not converged this long after it started is started again.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

/// How often a pair is started before it is measured as it is, converged or not.
/// keepalived at 255 × 10 ms sometimes never settles after one start (both nodes master,
/// or VIPs moving back and forth for minutes) and settles within seconds after the next;
/// what it costs while flapping is not what it costs when it works.
pub const PAIR_STARTS: u32 = 3;

pub fn setup(count: u8, interval: Duration) -> Setup {
    Setup {
        version: 3,
        interval,
        unicast: false,
        vrids: 1..=count,
        interfaces: vec!["eth0".into()],
        single_vip: None,
        notify_master: None,
    }
}

pub async fn pair(kind: Impl, setup: &Setup, tag: &str) -> Pair {
    let n = setup.count();
    let mut starts = 0;
    loop {
        starts += 1;
        let mut lab = Lab::new(&format!("{tag}{starts}"));
        let a = lab.host("a", Some("10.0.0.1/24"), None);
        let b = lab.host("b", Some("10.0.0.2/24"), None);
        let master = Node::start(kind, &a, "a", setup, 150, &b).await;
        let backup = Node::start(kind, &b, "b", setup, 100, &a).await;
        let converged = wait_until(CONVERGE_WITHIN, || {
            master.vips_held() == n && backup.vips_held() == 0
        })
        .is_some();
        if !converged {
            eprintln!(
                "  {}: {n} instances did not converge in {} s at start {starts} of {PAIR_STARTS} (master holds {} VIPs, backup {}){}",
                kind.name(),
                CONVERGE_WITHIN.as_secs(),
                master.vips_held(),
                backup.vips_held(),
                if starts < PAIR_STARTS {
                    "; starting again"
                } else {
                    "; measuring anyway"
                }
            );
            if starts < PAIR_STARTS {
                // Dropping the nodes stops the daemons; dropping the lab removes its
                // namespaces.
                continue;
            }
        }
        // Let start-up work (GARP bursts, first writes) finish before measuring.
        std::thread::sleep(Duration::from_secs(3));
        return Pair {
            _lab: lab,
            master,
            backup,
            settled: Settled { converged, starts },
        };
    }
}

#[derive(Clone, Debug)]
pub struct CpuOutcome {
    pub implementation: Impl,
    pub count: u8,
    pub interval: Duration,
    /// Percent of one core, per window.
    pub master_cpu: Summary,
    pub backup_cpu: Summary,
    pub master_rss_mb: f64,
    pub backup_rss_mb: f64,
    pub settled: Settled,
}

/// CPU share over `windows` windows of `window`, master and backup measured together.
pub async fn cpu(
    kind: Impl,
    count: u8,
    interval: Duration,
    window: Duration,
    windows: usize,
) -> CpuOutcome {
    let s = setup(count, interval);
    let p = pair(
        kind,
        &s,
        &format!("bc{}", if kind == Impl::Havipd { "h" } else { "k" }),
    )
    .await;
    let (mp, bp) = (p.master.pid().unwrap_or(0), p.backup.pid().unwrap_or(0));
    let mut m = Vec::new();
    let mut b = Vec::new();
    for _ in 0..windows {
        let (m0, b0, t0) = (measure::cpu_time(mp), measure::cpu_time(bp), Instant::now());
        std::thread::sleep(window);
        let (m1, b1, dt) = (measure::cpu_time(mp), measure::cpu_time(bp), t0.elapsed());
        if let (Some(m0), Some(m1), Some(b0), Some(b1)) = (m0, m1, b0, b1) {
            m.push((m1 - m0).as_secs_f64() / dt.as_secs_f64() * 100.0);
            b.push((b1 - b0).as_secs_f64() / dt.as_secs_f64() * 100.0);
        }
    }
    let mb = |pid| measure::rss(pid).unwrap_or(0) as f64 / 1_048_576.0;
    CpuOutcome {
        implementation: kind,
        count,
        interval,
        master_cpu: summarize(&m),
        backup_cpu: summarize(&b),
        master_rss_mb: mb(mp),
        backup_rss_mb: mb(bp),
        settled: p.settled,
    }
}

#[derive(Clone, Debug)]
pub struct StabilityOutcome {
    pub implementation: Impl,
    pub false_failovers: usize,
    pub duration: Duration,
    pub settled: Settled,
    /// havipd: adverts its standby sender sent for the master while the master's data
    /// plane was late (a stall of its CPU) during the stress.
    pub by_standby: Option<u64>,
}

/// 255 × 10 ms while stress-ng loads the machine: every transition after convergence is a
/// false failover.
pub async fn stability(kind: Impl, duration: Duration) -> StabilityOutcome {
    let s = setup(255, Duration::from_millis(10));
    let p = pair(
        kind,
        &s,
        &format!("bs{}", if kind == Impl::Havipd { "h" } else { "k" }),
    )
    .await;
    let log_lines_before = transitions_logged(&p).await;
    let standby_before = adverts_by_standby(&p.master).await;
    let mut stress = Command::new("stress-ng")
        .args([
            "--cpu",
            "2",
            "--io",
            "1",
            "--vm",
            "1",
            "--vm-bytes",
            "256M",
            "--timeout",
        ])
        .arg(format!("{}s", duration.as_secs()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stress-ng is needed: apt-get install -y stress-ng");
    let _ = tokio::task::block_in_place(|| stress.wait());
    std::thread::sleep(Duration::from_secs(1));
    let after = transitions_logged(&p).await;
    let standby_after = adverts_by_standby(&p.master).await;
    StabilityOutcome {
        implementation: kind,
        false_failovers: after.saturating_sub(log_lines_before),
        duration,
        settled: p.settled,
        by_standby: standby_after
            .zip(standby_before)
            .map(|(after, before)| after.saturating_sub(before)),
    }
}

/// The adverts a havipd node's standby sender has sent, over all its instances.
async fn adverts_by_standby(n: &Node) -> Option<u64> {
    let d = n.daemon()?;
    let mut c = d.instances().await;
    let list = c
        .list_instances(ListInstancesRequest::default())
        .await
        .ok()?
        .into_inner();
    Some(
        list.instances
            .iter()
            .filter_map(|i| i.status.as_ref()?.counters.as_ref())
            .map(|c| c.adverts_sent_by_standby)
            .sum(),
    )
}

/// State changes so far on both nodes (start-up included; callers take differences).
async fn transitions_logged(p: &Pair) -> usize {
    count_transitions(&p.master).await + count_transitions(&p.backup).await
}

async fn count_transitions(n: &Node) -> usize {
    match (n.daemon(), n.keepalived()) {
        (Some(d), _) => {
            let mut c = d.instances().await;
            let list = c
                .list_instances(ListInstancesRequest::default())
                .await
                .map(|r| r.into_inner())
                .unwrap_or_default();
            list.instances
                .iter()
                .filter_map(|i| i.status.as_ref()?.counters.as_ref())
                .map(|c| usize::try_from(c.transitions).unwrap_or(0))
                .sum()
        }
        (_, Some(k)) => k.log().lines().filter(|l| l.contains("Entering")).count(),
        _ => 0,
    }
}

#[derive(Clone, Debug)]
pub struct JitterOutcome {
    pub implementation: Impl,
    pub label: String,
    /// |inter-advert gap − interval| in ms, over every VRID, captured on the master's own
    /// interface: when the master's kernel sent each advert.
    pub send_jitter: Summary,
    /// The same, captured on the backup: the send side plus the bridge and the backup's
    /// receive path.
    pub arrival_jitter: Summary,
    pub false_failovers: usize,
    pub requests_per_second: f64,
    pub settled: Settled,
}

/// Advert jitter on the master's interface and on the backup's for 255 × 10 ms over `duration`, with an API load
/// of `rate` requests/s (havipd only; 0 for none).
pub async fn jitter(kind: Impl, duration: Duration, rate: u32) -> JitterOutcome {
    let s = setup(255, Duration::from_millis(10));
    let p = pair(
        kind,
        &s,
        &format!("bj{}", if kind == Impl::Havipd { "h" } else { "k" }),
    )
    .await;
    let before = transitions_logged(&p).await;
    let sent = Capture::start(&p.master.host, duration);
    let arrived = Capture::start(&p.backup.host, duration);
    let load = match (rate, p.master.daemon()) {
        (r, Some(d)) if r > 0 => Some(api_load(d, r, duration).await),
        _ => {
            tokio::time::sleep(duration).await;
            None
        }
    };
    let send_gaps = sent.finish(Duration::from_millis(10));
    let arrival_gaps = arrived.finish(Duration::from_millis(10));
    let after = transitions_logged(&p).await;
    JitterOutcome {
        implementation: kind,
        label: if rate > 0 {
            format!("{rate} API requests/s")
        } else {
            "no API load".into()
        },
        send_jitter: summarize(&send_gaps),
        arrival_jitter: summarize(&arrival_gaps),
        false_failovers: after.saturating_sub(before),
        requests_per_second: load.unwrap_or(0.0),
        settled: p.settled,
    }
}

/// Mixed Get/List/Update at `rate` per second for `duration`; returns the rate achieved.
async fn api_load(d: &havip_e2e::Daemon, rate: u32, duration: Duration) -> f64 {
    let mut c = d.instances().await;
    let start = Instant::now();
    let mut done = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while start.elapsed() < duration {
        tick.tick().await;
        let vrid = 1 + (done % 255);
        let name = format!("eth0-{vrid}");
        let ok = match done % 10 {
            0 => c
                .list_instances(ListInstancesRequest::default())
                .await
                .is_ok(),
            1 => c
                .update_instance(UpdateInstanceRequest {
                    name,
                    spec: Some(v1::InstanceSpec {
                        description: format!("load {done}"),
                        ..Default::default()
                    }),
                    update_mask: Some(pbjson_types::FieldMask {
                        paths: vec!["description".into()],
                    }),
                    ..Default::default()
                })
                .await
                .is_ok(),
            _ => c.get_instance(GetInstanceRequest { name }).await.is_ok(),
        };
        if ok {
            done += 1;
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_when_a_pair_needed_more_than_one_start_or_never_converged() {
        let settled = |converged, starts| Settled { converged, starts }.note();
        assert_eq!(settled(true, 1), "");
        assert_eq!(settled(true, 2), ", converged at start 2 of 3");
        assert_eq!(
            settled(false, PAIR_STARTS),
            ", never converged in 3 starts (kept flapping)"
        );
    }
}
