//! The data-plane thread runs under SCHED_RR by default (what keeps a loaded node from
//! false failovers), and with ordinary priority when asked to.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::{Daemon, Lab, netns_available};

/// The scheduling policy of the daemon's `havip-dataplane` thread, from /proc (field 41 of
/// `stat`: 0 = SCHED_OTHER, 2 = SCHED_RR).
fn dataplane_policy(d: &Daemon) -> u32 {
    let pid = d.pid().expect("havipd runs").as_raw();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "havip-dataplane" {
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // stat's field 41 is the 39th after the state (field 3).
            return fields[38].parse().unwrap();
        }
    }
    panic!("no havip-dataplane thread in havipd {pid}");
}

#[test]
fn the_data_plane_runs_under_sched_rr_unless_told_otherwise() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("sched");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let d = Daemon::start(&a, "a");
    assert_eq!(dataplane_policy(&d), 2, "SCHED_RR by default (as root)");
    assert!(
        d.log().contains("the data plane runs under SCHED_RR"),
        "{}",
        d.log()
    );
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let ordinary = Daemon::start_with(&b, "b", &["--realtime-priority", "0"]);
    assert_eq!(dataplane_policy(&ordinary), 0, "SCHED_OTHER with 0");
}
