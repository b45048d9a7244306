//! havipd and keepalived as peers of one virtual router, in both roles, for v2 and v3,
//! unicast and multicast, with PASS authentication for v2: they agree on one master and
//! each takes over from the other.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::keepalived::{self, Keepalived, KeepalivedConfig};
use havip_e2e::vrrp::{Transitions, after, create, master_down_interval, spec, wait_state, when};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, State};
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, Debug)]
struct Case {
    version: u32,
    unicast: bool,
}

fn ip(h: &Host) -> String {
    h.ipv4
        .clone()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

fn interval(case: Case) -> (i64, &'static str) {
    if case.version == 2 {
        (1000, "1")
    } else {
        (100, "0.1")
    }
}

async fn wait_vip(h: &Host, present: bool, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while h.has_address("10.0.0.100") != present {
        assert!(
            tokio::time::Instant::now() < deadline,
            "VIP present={present} expected on {}",
            h.ns
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `havipd_master`: havipd has the higher priority (150) and keepalived backs it up, or
/// the other way round.
async fn interop(tag: &str, case: Case, havipd_master: bool) {
    if !netns_available() || !keepalived::available() {
        return;
    }
    let mut lab = Lab::new(tag);
    let h = lab.host("h", Some("10.0.0.1/24"), None);
    let k = lab.host("k", Some("10.0.0.2/24"), None);
    let client = lab.host("c", Some("10.0.0.10/24"), None);
    let (h_prio, k_prio) = if havipd_master {
        (150, 100)
    } else {
        (100, 150)
    };
    let (interval_ms, advert_int) = interval(case);

    let daemon = Daemon::start(&h, "h");
    let mut s = spec(51, case.version, h_prio, interval_ms, "10.0.0.100/24");
    if case.unicast {
        s.unicast_source = ip(&h);
        s.unicast_peers = vec![ip(&k)];
    }
    if case.version == 2 {
        s.auth = Some(v1::Authentication {
            r#type: v1::AuthType::Pass as i32,
            password: "s3cret".into(),
            password_set: false,
        });
    }
    create(&daemon, "vip", s).await;
    let mut kconf = KeepalivedConfig {
        version: case.version,
        priority: k_prio,
        advert_int,
        vip: "10.0.0.100/24".into(),
        unicast_src: None,
        unicast_peers: vec![],
        auth_pass: (case.version == 2).then(|| "s3cret".into()),
        nopreempt: false,
    };
    if case.unicast {
        kconf.unicast_src = Some(ip(&k));
        kconf.unicast_peers = vec![ip(&h)];
    }
    let mut ka = Keepalived::start(&k, "k", &kconf);
    let interval = Duration::from_millis(u64::try_from(interval_ms).unwrap());
    let settle = master_down_interval(case.version, 100, interval) * 3 + Duration::from_secs(3);

    if havipd_master {
        wait_state(&daemon, "vip", State::Master, settle).await;
        wait_vip(&h, true, settle).await;
        tokio::time::sleep(interval * 5).await;
        assert!(
            !k.has_address("10.0.0.100"),
            "keepalived stays backup; its log:\n{}",
            ka.log()
        );
        // havipd's link goes down: keepalived takes over.
        lab.unplug(&h);
        wait_vip(&k, true, settle).await;
        assert!(
            (0..20).any(|_| client.try_exec(&["ping", "-c", "1", "-W", "1", "10.0.0.100"])),
            "the client reaches the VIP on keepalived"
        );
        // Back: havipd preempts, keepalived steps down.
        lab.plug(&h);
        wait_state(&daemon, "vip", State::Master, settle).await;
        wait_vip(&k, false, settle).await;
    } else {
        wait_vip(&k, true, settle).await;
        wait_state(&daemon, "vip", State::Backup, settle).await;
        tokio::time::sleep(interval * 5).await;
        assert_eq!(
            havip_e2e::vrrp::state(&daemon, "vip").await,
            State::Backup,
            "log:\n{}",
            daemon.log()
        );
        let status = havip_e2e::vrrp::status(&daemon, "vip").await;
        assert_eq!(
            status.master_address,
            ip(&k),
            "havipd sees keepalived as master"
        );
        assert!(
            status.counters.unwrap_or_default().bad_packets.is_empty(),
            "keepalived's adverts decode cleanly"
        );
        // keepalived's link goes down: havipd takes over within Master_Down_Interval.
        let mut watch = Transitions::follow(&daemon, "vip").await;
        let cut = SystemTime::now();
        lab.unplug(&k);
        let t = watch.next_to(State::Master, settle).await;
        let mdi = master_down_interval(case.version, 100, interval);
        let took = after(cut, when(&t));
        eprintln!(
            "{case:?}: havipd took over from keepalived in {took:?} (Master_Down_Interval {mdi:?})"
        );
        assert!(
            took <= mdi + Duration::from_millis(100),
            "{took:?} > {mdi:?}"
        );
        wait_vip(&h, true, settle).await;
        // keepalived stops cleanly: nothing changes for havipd.
        lab.plug(&k);
        wait_vip(&k, true, settle).await;
        wait_state(&daemon, "vip", State::Backup, settle).await;
        let mut watch = Transitions::follow(&daemon, "vip").await;
        ka.stop();
        let t = watch.next_to(State::Master, settle).await;
        assert_eq!(
            t.reason.unwrap().code,
            "priority_zero",
            "keepalived's priority-0 advert is understood"
        );
    }
}

#[tokio::test]
async fn v2_unicast_havipd_master() {
    interop(
        "kv2u-h",
        Case {
            version: 2,
            unicast: true,
        },
        true,
    )
    .await;
}

#[tokio::test]
async fn v2_unicast_keepalived_master() {
    interop(
        "kv2u-k",
        Case {
            version: 2,
            unicast: true,
        },
        false,
    )
    .await;
}

#[tokio::test]
async fn v2_multicast_havipd_master() {
    interop(
        "kv2m-h",
        Case {
            version: 2,
            unicast: false,
        },
        true,
    )
    .await;
}

#[tokio::test]
async fn v2_multicast_keepalived_master() {
    interop(
        "kv2m-k",
        Case {
            version: 2,
            unicast: false,
        },
        false,
    )
    .await;
}

#[tokio::test]
async fn v3_multicast_havipd_master() {
    interop(
        "kv3m-h",
        Case {
            version: 3,
            unicast: false,
        },
        true,
    )
    .await;
}

#[tokio::test]
async fn v3_multicast_keepalived_master() {
    interop(
        "kv3m-k",
        Case {
            version: 3,
            unicast: false,
        },
        false,
    )
    .await;
}

#[tokio::test]
async fn v3_unicast_havipd_master() {
    interop(
        "kv3u-h",
        Case {
            version: 3,
            unicast: true,
        },
        true,
    )
    .await;
}

#[tokio::test]
async fn v3_unicast_keepalived_master() {
    interop(
        "kv3u-k",
        Case {
            version: 3,
            unicast: true,
        },
        false,
    )
    .await;
}

/// Dropping a `Keepalived` leaves no keepalived behind, even a VRRP child that cannot
/// follow its killed parent out (stopped here, as one starved under load cannot react);
/// the bench once left such an orphan running in a namespace without a name.
#[test]
fn dropping_keepalived_leaves_no_process_behind() {
    if !netns_available() || !keepalived::available() {
        return;
    }
    let mut lab = Lab::new("kdrop");
    let k = lab.host("k", Some("10.0.0.2/24"), None);
    let config = KeepalivedConfig {
        version: 3,
        priority: 100,
        advert_int: "1",
        vip: "10.0.0.100/24".into(),
        unicast_src: None,
        unicast_peers: vec![],
        auth_pass: None,
        nopreempt: false,
    };
    let ka = Keepalived::start(&k, "k", &config);
    let vrrp = ka
        .vrrp_pid()
        .expect("keepalived writes its VRRP child's pid");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(vrrp).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    drop(ka);
    // Gone, or a zombie waiting for PID 1 to reap it: either way no longer running.
    let running = || {
        std::fs::read_to_string(format!("/proc/{vrrp}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit(')').next().map(str::trim).map(str::to_owned))
            .is_some_and(|rest| !rest.starts_with('Z'))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !running(),
        "keepalived's VRRP child {vrrp} outlived the drop"
    );
}
