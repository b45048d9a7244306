//! Two havipd nodes on one segment fail over: exactly one master; the master's link goes
//! down and the backup holds the VIP within Master_Down_Interval (+100 ms of slack for a
//! noisy machine); a client reaches the VIP again; the old master returns and preempts (or,
//! without preemption, does not); a clean stop hands over after Skew_Time.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::vrrp::{
    self, Transitions, after, create, master_down_interval, skew_time, spec, wait_state, when,
};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, State};
use std::time::{Duration, SystemTime};

const SLACK: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
struct Case {
    version: u32,
    ipv6: bool,
    unicast: bool,
    interval_ms: i64,
}

struct Pair {
    lab: Lab,
    a: Host,
    b: Host,
    client: Host,
    da: Daemon,
    db: Daemon,
    vip: &'static str,
}

fn addr(h: &Host, ipv6: bool) -> String {
    let a = if ipv6 { h.ipv6.clone() } else { h.ipv4.clone() };
    a.unwrap().split('/').next().unwrap().to_owned()
}

async fn pair(tag: &str, case: Case, preempt: bool) -> Pair {
    let mut lab = Lab::new(tag);
    let a = lab.host("a", Some("10.0.0.1/24"), Some("2001:db8::1/64"));
    let b = lab.host("b", Some("10.0.0.2/24"), Some("2001:db8::2/64"));
    let client = lab.host("c", Some("10.0.0.10/24"), Some("2001:db8::10/64"));
    let da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    let vip = if case.ipv6 {
        "2001:db8::100"
    } else {
        "10.0.0.100"
    };
    let prefix = if case.ipv6 { "/64" } else { "/24" };
    for (d, me, other, prio) in [(&da, &a, &b, 150), (&db, &b, &a, 100)] {
        let mut s = spec(
            51,
            case.version,
            prio,
            case.interval_ms,
            &format!("{vip}{prefix}"),
        );
        s.preempt = Some(preempt);
        if case.unicast {
            s.unicast_source = addr(me, case.ipv6);
            s.unicast_peers = vec![addr(other, case.ipv6)];
        }
        if case.version == 2 {
            s.auth = Some(v1::Authentication {
                r#type: v1::AuthType::Pass as i32,
                password: "s3cret".into(),
                password_set: false,
            });
        }
        create(d, "vip", s).await;
    }
    Pair {
        lab,
        a,
        b,
        client,
        da,
        db,
        vip,
    }
}

fn interval(case: Case) -> Duration {
    Duration::from_millis(u64::try_from(case.interval_ms).unwrap())
}

async fn wait_vip(h: &Host, vip: &str, present: bool) {
    for _ in 0..500 {
        if h.has_address(vip) == present {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{vip} present={present} expected on {}; addresses {:?}",
        h.ns,
        h.addresses()
    );
}

fn client_reaches(client: &Host, vip: &str) -> bool {
    (0..20).any(|_| client.try_exec(&["ping", "-c", "1", "-W", "1", vip]))
}

async fn link_loss_and_return(tag: &str, case: Case) {
    let p = pair(tag, case, true).await;
    let settle =
        master_down_interval(case.version, 100, interval(case)) * 3 + Duration::from_secs(2);
    wait_state(&p.da, "vip", State::Master, settle).await;
    wait_state(&p.db, "vip", State::Backup, settle).await;
    wait_vip(&p.a, p.vip, true).await;
    assert!(!p.b.has_address(p.vip), "exactly one holder of the VIP");
    assert!(
        client_reaches(&p.client, p.vip),
        "the client reaches the VIP on the master"
    );

    // The master's link goes down.
    let mut watch_b = Transitions::follow(&p.db, "vip").await;
    let cut = SystemTime::now();
    p.lab.unplug(&p.a);
    let mdi = master_down_interval(case.version, 100, interval(case));
    let t = watch_b
        .next_to(State::Master, mdi * 4 + Duration::from_secs(5))
        .await;
    let takeover = after(cut, when(&t));
    eprintln!("{case:?}: takeover {takeover:?} after the link loss (Master_Down_Interval {mdi:?})");
    assert!(
        takeover <= mdi + SLACK,
        "takeover took {takeover:?}, Master_Down_Interval is {mdi:?}"
    );
    wait_vip(&p.b, p.vip, true).await;
    assert!(
        client_reaches(&p.client, p.vip),
        "the client reaches the VIP on the new master"
    );
    let counters = vrrp::status(&p.db, "vip")
        .await
        .counters
        .unwrap_or_default();
    assert!(
        counters.adverts_received > 0 && counters.adverts_sent > 0,
        "{counters:?}"
    );
    assert_eq!(counters.became_master, 1, "{counters:?}");
    assert!(counters.bad_packets.is_empty(), "{counters:?}");
    for _ in 0..100 {
        if vrrp::status(&p.db, "vip")
            .await
            .counters
            .unwrap_or_default()
            .garps_sent
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let garps = vrrp::status(&p.db, "vip")
        .await
        .counters
        .unwrap_or_default()
        .garps_sent;
    assert!(garps > 0, "the new master announced the VIP");

    // The old master comes back and, with preemption, takes over again.
    let mut watch_a = Transitions::follow(&p.da, "vip").await;
    p.lab.plug(&p.a);
    watch_a.next_to(State::Master, settle).await;
    wait_state(&p.db, "vip", State::Backup, settle).await;
    wait_vip(&p.b, p.vip, false).await;
    assert!(client_reaches(&p.client, p.vip));
}

async fn clean_stop(tag: &str, case: Case) {
    let mut p = pair(tag, case, true).await;
    let settle =
        master_down_interval(case.version, 100, interval(case)) * 3 + Duration::from_secs(2);
    wait_state(&p.da, "vip", State::Master, settle).await;
    wait_state(&p.db, "vip", State::Backup, settle).await;
    let mut watch_b = Transitions::follow(&p.db, "vip").await;
    let stop = SystemTime::now();
    p.da.stop();
    let skew = skew_time(case.version, 100, interval(case));
    let t = watch_b
        .next_to(State::Master, Duration::from_secs(10))
        .await;
    let takeover = after(stop, when(&t));
    eprintln!("{case:?}: takeover {takeover:?} after SIGTERM (Skew_Time {skew:?})");
    assert_eq!(t.reason.as_ref().unwrap().code, "priority_zero", "{t:?}");
    assert!(
        takeover <= skew + SLACK,
        "takeover took {takeover:?}, Skew_Time is {skew:?}"
    );
    wait_vip(&p.a, p.vip, false).await;
    wait_vip(&p.b, p.vip, true).await;
}

const V2_UNICAST: Case = Case {
    version: 2,
    ipv6: false,
    unicast: true,
    interval_ms: 1000,
};
const V3_MULTICAST_V4: Case = Case {
    version: 3,
    ipv6: false,
    unicast: false,
    interval_ms: 100,
};
const V3_MULTICAST_V6: Case = Case {
    version: 3,
    ipv6: true,
    unicast: false,
    interval_ms: 100,
};

#[tokio::test]
async fn v2_ipv4_unicast_link_loss() {
    if netns_available() {
        link_loss_and_return("v2u", V2_UNICAST).await;
    }
}

#[tokio::test]
async fn v3_ipv4_multicast_link_loss() {
    if netns_available() {
        link_loss_and_return("v3m4", V3_MULTICAST_V4).await;
    }
}

#[tokio::test]
async fn v3_ipv6_multicast_link_loss() {
    if netns_available() {
        link_loss_and_return("v3m6", V3_MULTICAST_V6).await;
    }
}

#[tokio::test]
async fn v2_ipv4_unicast_clean_stop() {
    if netns_available() {
        clean_stop("v2s", V2_UNICAST).await;
    }
}

#[tokio::test]
async fn v3_ipv4_multicast_clean_stop() {
    if netns_available() {
        clean_stop("v3s4", V3_MULTICAST_V4).await;
    }
}

#[tokio::test]
async fn v3_ipv6_multicast_clean_stop() {
    if netns_available() {
        clean_stop("v3s6", V3_MULTICAST_V6).await;
    }
}

/// Without preemption the old master comes back as backup and stays there.
#[tokio::test]
async fn no_preempt_keeps_the_new_master() {
    if !netns_available() {
        return;
    }
    let case = V3_MULTICAST_V4;
    let p = pair("nopre", case, false).await;
    let settle = Duration::from_secs(5);
    wait_state(&p.da, "vip", State::Master, settle).await;
    p.lab.unplug(&p.a);
    wait_state(&p.db, "vip", State::Master, settle).await;
    p.lab.plug(&p.a);
    wait_state(&p.da, "vip", State::Backup, settle).await;
    // Several Master_Down_Intervals later, still the same.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(vrrp::state(&p.db, "vip").await, State::Master);
    assert_eq!(vrrp::state(&p.da, "vip").await, State::Backup);
    wait_vip(&p.a, p.vip, false).await;
}

/// The interface going down puts the instance in FAULT with its VIP removed; coming back
/// brings it back through INIT to BACKUP/MASTER.
#[tokio::test]
async fn interface_down_is_a_fault_and_up_restarts() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("fault");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let da = Daemon::start(&a, "a");
    create(&da, "vip", spec(51, 3, 100, 100, "10.0.0.100/24")).await;
    wait_state(&da, "vip", State::Master, Duration::from_secs(5)).await;
    wait_vip(&a, "10.0.0.100", true).await;
    let mut watch = Transitions::follow(&da, "vip").await;
    a.exec(&["ip", "link", "set", "eth0", "down"]);
    let t = watch.next_to(State::Fault, Duration::from_secs(5)).await;
    assert_eq!(t.reason.unwrap().code, "interface_down");
    assert!(!a.has_address("10.0.0.100"));
    a.exec(&["ip", "link", "set", "eth0", "up"]);
    watch.next_to(State::Backup, Duration::from_secs(5)).await;
    watch.next_to(State::Master, Duration::from_secs(5)).await;
    wait_vip(&a, "10.0.0.100", true).await;
}

/// SIGKILL leaves the VIP behind; the restarted daemon removes it before its instances
/// start, so the segment never has two holders while the other node is master.
#[tokio::test]
async fn sigkill_and_restart_leaves_no_duplicate_vip() {
    if !netns_available() {
        return;
    }
    let case = V3_MULTICAST_V4;
    let mut p = pair("kill9", case, true).await;
    let settle = Duration::from_secs(5);
    wait_state(&p.da, "vip", State::Master, settle).await;
    wait_vip(&p.a, p.vip, true).await;
    p.da.kill9();
    assert!(p.a.has_address(p.vip), "a crash leaves the VIP behind");
    wait_state(&p.db, "vip", State::Master, settle).await;
    wait_vip(&p.b, p.vip, true).await;
    p.da.restart();
    assert!(
        !p.a.has_address(p.vip),
        "the restarted daemon removed the left-over VIP before serving"
    );
    // It then preempts as the higher priority, and b gives the VIP up.
    wait_state(&p.da, "vip", State::Master, settle).await;
    wait_vip(&p.b, p.vip, false).await;
}

/// VMAC mode: the VIP lives on a macvlan with the virtual router MAC, and clients learn
/// that MAC for the VIP.
#[tokio::test]
async fn vmac_mode() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("vmac");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let client = lab.host("c", Some("10.0.0.10/24"), None);
    let da = Daemon::start(&a, "a");
    let mut s = spec(51, 3, 100, 100, "10.0.0.100/24");
    s.vmac = true;
    create(&da, "vip", s).await;
    wait_state(&da, "vip", State::Master, Duration::from_secs(5)).await;
    let links = String::from_utf8_lossy(&a.exec(&["ip", "-o", "link", "show"]).stdout).to_string();
    assert!(
        links.contains("00:00:5e:00:01:33"),
        "a macvlan with the VMAC exists: {links}"
    );
    assert!(client_reaches(&client, "10.0.0.100"));
    let neigh =
        String::from_utf8_lossy(&client.exec(&["ip", "neigh", "show", "10.0.0.100"]).stdout)
            .to_string();
    assert!(
        neigh.contains("00:00:5e:00:01:33"),
        "the client learnt the VMAC: {neigh}"
    );
    let mut c = da.instances().await;
    c.delete_instance(v1::DeleteInstanceRequest {
        name: "vip".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let links = String::from_utf8_lossy(&a.exec(&["ip", "-o", "link", "show"]).stdout).to_string();
    assert!(
        !links.contains("00:00:5e:00:01:33"),
        "the VMAC is removed with the instance: {links}"
    );
}
