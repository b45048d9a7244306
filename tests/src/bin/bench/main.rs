//! The benchmark: havipd and keepalived side by side in network namespaces, in the same run,
//! writing docs/BENCHMARKS.md and PNG charts under docs/bench/.
//!
//!     sudo cargo run --release -p havip-e2e --bin bench            # everything (30–45 min)
//!     sudo cargo run --release -p havip-e2e --bin bench -- --quick # fewer trials, shorter windows
//!
//! Needs root (network namespaces), keepalived, tshark (for dumpcap) and stress-ng (Debian
//! packages).
//! Like the tests, it never touches the machine's own network namespace.

// A benchmark harness: a panic is a failed run, reported with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture;
mod events;
mod failover;
mod load;
mod measure;
mod nodes;
mod plot;
mod probe;
mod report;
mod scale;

use clap::Parser;
use nodes::Impl;
use std::path::PathBuf;
use std::time::Duration;

/// Benchmarks havipd against keepalived on this machine.
#[derive(Debug, Parser)]
struct Args {
    /// Fewer trials and shorter windows: a smoke run, not numbers to publish.
    #[arg(long)]
    quick: bool,
    /// Only these scenarios (failover, cpu, stability, events, api, scale).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where BENCHMARKS.md and the charts go.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
}

/// `cargo run --bin bench` builds only the bench itself, not the daemons it starts
/// (`e2e-havipd`, `e2e-havipctl`, other binaries of this package): measuring a stale
/// daemon would be measuring old code. Started by cargo, the bench builds them first, in
/// its own profile.
fn ensure_daemons_built() {
    let Some(cargo) = std::env::var_os("CARGO") else {
        eprintln!(
            "not started by cargo: using the daemons next to {} as they are",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        return;
    };
    let release = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.ends_with("release")))
        .unwrap_or(false);
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-p", "havip-e2e", "--bins"]);
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build for the daemons");
    assert!(status.success(), "building the daemons failed: {status}");
}

impl Args {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the benchmark needs root to build network namespaces: sudo cargo run --release -p havip-e2e --bin bench"
    );
    // dumpcap captures the adverts for the jitter figures; Debian ships it with tshark.
    for (tool, package) in [
        ("keepalived", "keepalived"),
        ("dumpcap", "tshark"),
        ("stress-ng", "stress-ng"),
    ] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is needed: apt-get install -y {package}");
    }
    ensure_daemons_built();
    let trials = if args.quick { 3 } else { 10 };
    let window = if args.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    };
    let windows = if args.quick { 1 } else { 3 };
    let mut results = report::Results {
        quick: args.quick,
        commit: report::current_commit(),
        ..Default::default()
    };

    if args.wants("failover") {
        let cases = [
            failover::Case {
                version: 2,
                interval: Duration::from_secs(1),
                unicast: true,
            },
            failover::Case {
                version: 3,
                interval: Duration::from_millis(100),
                unicast: false,
            },
            failover::Case {
                version: 3,
                interval: Duration::from_millis(10),
                unicast: false,
            },
        ];
        for case in cases {
            for fault in [failover::Fault::LinkLoss, failover::Fault::CleanStop] {
                for kind in [Impl::Havipd, Impl::Keepalived] {
                    eprintln!(
                        "failover: {} {} {}",
                        kind.name(),
                        case.label(),
                        fault.name()
                    );
                    results
                        .failover
                        .push(failover::run(kind, case, fault, trials).await);
                }
            }
        }
    }
    if args.wants("cpu") {
        for interval in [Duration::from_millis(100), Duration::from_millis(10)] {
            for kind in [Impl::Havipd, Impl::Keepalived] {
                eprintln!("cpu: {} 255 × {interval:?}", kind.name());
                results
                    .cpu
                    .push(load::cpu(kind, 255, interval, window, windows).await);
            }
        }
    }
    if args.wants("stability") {
        let duration = if args.quick {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(60)
        };
        for kind in [Impl::Havipd, Impl::Keepalived] {
            eprintln!(
                "stability: {} under stress-ng for {duration:?}",
                kind.name()
            );
            results
                .stability
                .push(load::stability(kind, duration).await);
        }
    }
    if args.wants("events") {
        // One instance is the common failover; fifty at once is a whole segment's burst.
        for (instances, trials) in [
            (1, if args.quick { 5 } else { 20 }),
            (50, if args.quick { 2 } else { 5 }),
        ] {
            for kind in [Impl::Havipd, Impl::Keepalived] {
                eprintln!("events: {} × {instances}", kind.name());
                results
                    .events
                    .push(events::run(kind, instances, trials).await);
            }
        }
    }
    if args.wants("api") {
        let duration = if args.quick {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(30)
        };
        eprintln!("api: jitter without load, then with 1000 requests/s");
        results
            .jitter
            .push(load::jitter(Impl::Keepalived, duration, 0).await);
        results
            .jitter
            .push(load::jitter(Impl::Havipd, duration, 0).await);
        results
            .jitter
            .push(load::jitter(Impl::Havipd, duration, 1000).await);
    }
    if args.wants("scale") {
        for kind in [Impl::Havipd, Impl::Keepalived] {
            eprintln!("scale: {} 2040 instances", kind.name());
            results.scale.push(scale::run(kind).await);
        }
    }
    match report::write(&results, &args.out) {
        Ok(path) => eprintln!("wrote {}", path.display()),
        Err(e) => {
            eprintln!("cannot write the report: {e}");
            std::process::exit(1);
        }
    }
}
