//! How the daemon's threads are scheduled, and what that buys. The data-plane thread runs
//! under SCHED_RR by default (what keeps a loaded node from false failovers), and with
//! ordinary priority when asked to. A standby sender, on a CPU the data plane does not
//! use, repeats a master's adverts while the data-plane thread is stopped, as a host
//! stalling its vCPU stops it: the backups do not take over. It stands in for a second at
//! most, so a data plane that is stuck still fails over.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::vrrp::{create, spec, status, wait_state};
use havip_e2e::{Daemon, Lab, netns_available, threads};
use havip_proto::v1::State;
use std::time::Duration;

const DATA_PLANE: &str = "havip-dataplane";
const STANDBY: &str = "havip-standby";

/// Whether this machine has the two CPUs a standby sender needs.
fn two_cpus() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus < 2 {
        eprintln!("skipped: the standby sender needs two CPUs, this machine has {cpus}");
    }
    cpus >= 2
}

#[test]
fn the_data_plane_runs_under_sched_rr_unless_told_otherwise() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("sched");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let d = Daemon::start(&a, "a");
    let pid = d.pid().expect("havipd runs");
    assert_eq!(
        threads::policy(pid, DATA_PLANE),
        Some(2),
        "SCHED_RR by default (as root)"
    );
    assert!(
        d.log().contains("the data plane runs under SCHED_RR"),
        "{}",
        d.log()
    );
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let ordinary = Daemon::start_with(&b, "b", &["--realtime-priority", "0"]);
    let ordinary_pid = ordinary.pid().expect("havipd runs");
    assert_eq!(
        threads::policy(ordinary_pid, DATA_PLANE),
        Some(0),
        "SCHED_OTHER with 0"
    );
    assert_eq!(
        threads::policy(ordinary_pid, STANDBY),
        two_cpus().then_some(0),
        "the standby follows the data plane's priority"
    );
}

#[test]
fn the_standby_sender_runs_on_a_cpu_the_data_plane_never_uses() {
    if !netns_available() || !two_cpus() {
        return;
    }
    let mut lab = Lab::new("stbcpu");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let d = Daemon::start(&a, "a");
    let pid = d.pid().expect("havipd runs");
    assert_eq!(
        threads::policy(pid, STANDBY),
        Some(2),
        "SCHED_RR, as the data plane"
    );
    let standby = threads::allowed_cpus(pid, STANDBY).expect("a standby thread");
    let data_plane = threads::allowed_cpus(pid, DATA_PLANE).expect("a data-plane thread");
    assert_eq!(standby.len(), 1, "pinned to one CPU: {standby:?}");
    assert!(
        !data_plane.contains(&standby[0]),
        "the data plane ({data_plane:?}) is kept off the standby's CPU ({standby:?})"
    );
    assert!(!data_plane.is_empty());

    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let without = Daemon::start_with(&b, "b", &["--standby-sender", "false"]);
    let without_pid = without.pid().expect("havipd runs");
    assert!(
        threads::task_dir(without_pid, STANDBY).is_none(),
        "no standby thread"
    );
    assert_eq!(
        threads::allowed_cpus(without_pid, DATA_PLANE).map(|c| c.len()),
        std::thread::available_parallelism().ok().map(usize::from),
        "without a standby the data plane may use every CPU"
    );
}

/// a (priority 150) master and b (100) backup of one instance at 10 ms adverts (IPv4, or
/// IPv6 from the link-local addresses), both started with `extra`.
async fn ten_ms_pair(lab: &mut Lab, extra: &[&str], ipv6: bool) -> (Daemon, Daemon) {
    let (a, b, vip) = if ipv6 {
        (
            lab.host("a", None, Some("2001:db8::1/64")),
            lab.host("b", None, Some("2001:db8::2/64")),
            "2001:db8::100/64",
        )
    } else {
        (
            lab.host("a", Some("10.0.0.1/24"), None),
            lab.host("b", Some("10.0.0.2/24"), None),
            "10.0.0.100/24",
        )
    };
    let da = Daemon::start_with(&a, "a", extra);
    let db = Daemon::start_with(&b, "b", extra);
    for (d, priority) in [(&da, 150), (&db, 100)] {
        create(d, "vip", spec(51, 3, priority, 10, vip)).await;
    }
    let settle = Duration::from_secs(5);
    wait_state(&da, "vip", State::Master, settle).await;
    wait_state(&db, "vip", State::Backup, settle).await;
    (da, db)
}

async fn transitions(d: &Daemon) -> u64 {
    status(d, "vip")
        .await
        .counters
        .unwrap_or_default()
        .transitions
}

/// Stops the master's data-plane thread for `how_long`; how many transitions the backup
/// made meanwhile (and in the next 100 ms).
async fn freeze_master_data_plane(master: &Daemon, backup: &Daemon, how_long: Duration) -> u64 {
    let pid = master.pid().expect("havipd runs");
    let tid = threads::thread_id(pid, DATA_PLANE).expect("a data-plane thread");
    let before = transitions(backup).await;
    tokio::task::spawn_blocking(move || threads::freeze(tid, how_long))
        .await
        .unwrap()
        .expect("ptrace the data-plane thread (needs root)");
    tokio::time::sleep(Duration::from_millis(100)).await;
    transitions(backup).await - before
}

#[tokio::test]
async fn a_master_whose_data_plane_stalls_is_covered_by_the_standby_sender() {
    stalls_are_covered("stball", false).await;
}

#[tokio::test]
async fn an_ipv6_master_whose_data_plane_stalls_is_covered_by_the_standby_sender() {
    // IPv6 adverts go out without an IP header of ours, their source in IPV6_PKTINFO.
    stalls_are_covered("stball6", true).await;
}

async fn stalls_are_covered(tag: &str, ipv6: bool) {
    if !netns_available() || !two_cpus() {
        return;
    }
    let mut lab = Lab::new(tag);
    let (da, db) = ten_ms_pair(&mut lab, &[], ipv6).await;
    let a_before = transitions(&da).await;
    // A vCPU stall as the host makes them: about 100 ms; twice that, three times over.
    for _ in 0..3 {
        let flips = freeze_master_data_plane(&da, &db, Duration::from_millis(200)).await;
        assert_eq!(
            flips,
            0,
            "b took over while a's data plane was stopped for 200 ms (Master_Down_Interval is 36 ms); a's log:\n{}\nb's log:\n{}",
            da.log(),
            db.log()
        );
    }
    assert_eq!(
        transitions(&da).await,
        a_before,
        "a stayed master throughout"
    );
    let by_standby = status(&da, "vip")
        .await
        .counters
        .unwrap_or_default()
        .adverts_sent_by_standby;
    // Three stalls of 200 ms, each covered from 15-20 ms in, at one advert per 15 ms.
    assert!(
        by_standby >= 15,
        "the standby sent {by_standby} adverts for a's three stalls of 200 ms"
    );
    assert!(
        da.log().contains("the standby sender repeats"),
        "the standby said it stood in: {}",
        da.log()
    );
}

#[tokio::test]
async fn without_the_standby_sender_a_stalled_master_loses_its_backups() {
    // The control for the test above: the same stall, with nobody to cover it.
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("stbnone");
    let (da, db) = ten_ms_pair(&mut lab, &["--standby-sender", "false"], false).await;
    let flips = freeze_master_data_plane(&da, &db, Duration::from_millis(200)).await;
    assert!(
        flips >= 1,
        "b should have taken over from a stopped master; b's log:\n{}",
        db.log()
    );
    // a comes back with the higher priority and takes over again.
    wait_state(&db, "vip", State::Backup, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_data_plane_stuck_for_longer_than_the_standby_covers_fails_over() {
    if !netns_available() || !two_cpus() {
        return;
    }
    let mut lab = Lab::new("stbstuck");
    let (da, db) = ten_ms_pair(&mut lab, &[], false).await;
    // The standby stands in for a second after the data plane's last advert: a stop of
    // 1.5 s is not a host stall, and the backups take over.
    let flips = freeze_master_data_plane(&da, &db, Duration::from_millis(1_500)).await;
    assert!(
        flips >= 1,
        "b should have taken over from a master stopped for 1.5 s; a's log:\n{}",
        da.log()
    );
    wait_state(&db, "vip", State::Backup, Duration::from_secs(5)).await;
}
