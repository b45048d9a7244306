//! Failover: the outage a client sees and the time until the backup holds the VIP, for the
//! master's link going down and for a clean stop, at 1 s (v2), 100 ms and 10 ms (v3).

use crate::measure::{Summary, summarize};
use crate::nodes::{Impl, Node, Setup};
use crate::probe::{AddressWatch, Pinger};
use havip_e2e::Lab;
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    LinkLoss,
    CleanStop,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::LinkLoss => "master's link goes down",
            Fault::CleanStop => "master stopped cleanly (SIGTERM)",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub version: u32,
    pub interval: Duration,
    pub unicast: bool,
}

impl Case {
    pub fn label(&self) -> String {
        format!(
            "v{}, {} adverts, {}",
            self.version,
            humantime::format_duration(self.interval),
            if self.unicast { "unicast" } else { "multicast" }
        )
    }

    /// Master_Down_Interval and Skew_Time of the backup (priority 100).
    pub fn master_down(&self) -> Duration {
        self.interval * 3 + self.skew()
    }

    pub fn skew(&self) -> Duration {
        if self.version == 2 {
            Duration::from_nanos(156 * 1_000_000_000 / 256)
        } else {
            self.interval * 156 / 256
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub implementation: Impl,
    pub case: Case,
    pub fault: Fault,
    /// Fault → VIP on the backup.
    pub takeover: Summary,
    /// The longest gap in the client's ping replies.
    pub outage: Summary,
}

const VIP: &str = "10.0.0.100";

pub async fn run(kind: Impl, case: Case, fault: Fault, trials: usize) -> Outcome {
    let mut lab = Lab::new(&format!(
        "bf{}",
        if kind == Impl::Havipd { "h" } else { "k" }
    ));
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let c = lab.host("c", Some("10.0.0.10/24"), None);
    let setup = Setup {
        version: case.version,
        interval: case.interval,
        unicast: case.unicast,
        vrids: 51..=51,
        interfaces: vec!["eth0".into()],
        single_vip: Some(format!("{VIP}/24")),
        notify_master: None,
    };
    let mut master = Node::start(kind, &a, "a", &setup, 150, &b).await;
    let backup = Node::start(kind, &b, "b", &setup, 100, &a).await;
    let settle = case.master_down() * 4 + Duration::from_secs(2);
    let mut takeover_ms = Vec::new();
    let mut outage_ms = Vec::new();
    for trial in 0..trials {
        wait_until(settle * 3, || {
            master.vips_held() == 1 && backup.vips_held() == 0
        })
        .unwrap_or_else(|| {
            panic!(
                "{} trial {trial}: the pair did not settle with a as master",
                kind.name()
            )
        });
        // A few adverts of calm, so the client's ARP entry points at the master.
        std::thread::sleep((case.interval * 5).max(Duration::from_millis(300)));
        let watch = AddressWatch::start(&b);
        let pinger = Pinger::start(&c, VIP);
        std::thread::sleep(Duration::from_millis(300));
        let t0 = SystemTime::now();
        match fault {
            Fault::LinkLoss => lab.unplug(&a),
            Fault::CleanStop => master.stop(),
        }
        let got = watch.wait_for(VIP, settle);
        std::thread::sleep((case.interval * 3).max(Duration::from_millis(300)));
        let outage = pinger.stop(t0);
        match got {
            Some(t1) => {
                takeover_ms.push(t1.duration_since(t0).unwrap_or_default().as_secs_f64() * 1000.0)
            }
            None => eprintln!(
                "{} {:?} trial {trial}: the backup never took the VIP",
                kind.name(),
                fault
            ),
        }
        if let Some(o) = outage {
            outage_ms.push(o.as_secs_f64() * 1000.0);
        }
        match fault {
            Fault::LinkLoss => lab.plug(&a),
            Fault::CleanStop => master.restart().await,
        }
        eprintln!(
            "  {} {} {}: trial {}/{trials}: takeover {:.1} ms, outage {:.1} ms",
            kind.name(),
            case.label(),
            fault.name(),
            trial + 1,
            takeover_ms.last().copied().unwrap_or(f64::NAN),
            outage_ms.last().copied().unwrap_or(f64::NAN)
        );
    }
    Outcome {
        implementation: kind,
        case,
        fault,
        takeover: summarize(&takeover_ms),
        outage: summarize(&outage_ms),
    }
}

/// Poll `done` every 20 ms until it holds or `within` passes.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> Option<()> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if done() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done().then_some(())
}
