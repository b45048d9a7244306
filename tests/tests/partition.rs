//! Partition and heal, end to end: two havipd nodes (a: priority 150, master; b: 100) and a
//! client on one segment. The bridge isolates a's and b's ports from each other, so the
//! nodes cannot hear each other while the client still reaches both and every link stays
//! up: both become master, and the client follows b's gratuitous ARPs. On the heal, exactly
//! one master remains within one advert interval plus Skew_Time; both nodes report the
//! other master in a DUAL_MASTER event (a stayed master, b stepped down), once; and a's
//! gratuitous ARPs / unsolicited NAs bring the client back to a.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::{events, wait_until};
use havip_e2e::vrrp::{self, Transitions, after, create, skew_time, spec, wait_state, when};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, State};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// What a noisy machine may add to the protocol's time.
const SLACK: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
struct Case {
    version: u32,
    ipv6: bool,
    unicast: bool,
    interval_ms: u64,
}

/// The address a node configures as its unicast source and peer.
fn addr(h: &Host, ipv6: bool) -> String {
    let a = if ipv6 { h.ipv6.clone() } else { h.ipv4.clone() };
    a.unwrap().split('/').next().unwrap().to_owned()
}

/// The address a node's adverts come from: IPv4 its address, IPv6 its link-local one
/// (RFC 9568 §5.1.2.1). Read it before the node is master: a master also carries the
/// virtual router's link-local address.
fn advert_source(h: &Host, ipv6: bool) -> String {
    if ipv6 {
        h.link_local().to_string()
    } else {
        addr(h, false)
    }
}

fn client_reaches(client: &Host, vip: &str) -> bool {
    (0..20).any(|_| client.try_exec(&["ping", "-c", "1", "-W", "1", vip]))
}

/// The DUAL_MASTER reports of a daemon's instance.
async fn dual_masters(d: &Daemon) -> Vec<v1::DualMaster> {
    events(d, "vip", v1::EventKind::DualMaster)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(v1::event::Payload::DualMaster(m)) => Some(m),
            _ => None,
        })
        .collect()
}

async fn partition_and_heal(tag: &str, case: Case) {
    let mut lab = Lab::new(tag);
    let a = lab.host("a", Some("10.0.0.1/24"), Some("2001:db8::1/64"));
    let b = lab.host("b", Some("10.0.0.2/24"), Some("2001:db8::2/64"));
    let client = lab.host("c", Some("10.0.0.10/24"), Some("2001:db8::10/64"));
    // Read before a master adds the virtual router's own link-local address.
    let (src_a, src_b) = (advert_source(&a, case.ipv6), advert_source(&b, case.ipv6));
    let da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    let (vip, prefix) = if case.ipv6 {
        ("2001:db8::100", "/64")
    } else {
        ("10.0.0.100", "/24")
    };
    let interval = Duration::from_millis(case.interval_ms);
    for (d, me, other, prio) in [(&da, &a, &b, 150), (&db, &b, &a, 100)] {
        let mut s = spec(
            51,
            case.version,
            prio,
            i64::try_from(case.interval_ms).unwrap(),
            &format!("{vip}{prefix}"),
        );
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
    let settle = interval * 12 + Duration::from_secs(3);
    wait_state(&da, "vip", State::Master, settle).await;
    wait_state(&db, "vip", State::Backup, settle).await;
    assert!(
        client_reaches(&client, vip),
        "the client reaches the VIP on a"
    );
    let (mac_a, mac_b) = (a.mac(), b.mac());
    assert_eq!(client.neighbour(vip).as_deref(), Some(mac_a.as_str()));

    // Cut a and b apart; the client still sees both. b hears nothing and takes over.
    let mut watch_b = Transitions::follow(&db, "vip").await;
    lab.isolate(&a, true);
    lab.isolate(&b, true);
    watch_b.next_to(State::Master, settle).await;
    wait_until("the VIP on b", Duration::from_secs(5), &db, || async {
        b.has_address(vip)
    })
    .await;
    assert_eq!(
        vrrp::state(&da, "vip").await,
        State::Master,
        "both are master"
    );
    assert!(a.has_address(vip), "both hold the VIP");
    // b's gratuitous ARPs / NAs took the client over.
    wait_until(
        "the client to follow b",
        Duration::from_secs(5),
        &db,
        || async { client.neighbour(vip).as_deref() == Some(mac_b.as_str()) },
    )
    .await;
    assert!(dual_masters(&da).await.is_empty() && dual_masters(&db).await.is_empty());
    // Let the partition last a few intervals.
    tokio::time::sleep(interval * 3).await;
    let a_transitions = vrrp::status(&da, "vip")
        .await
        .counters
        .unwrap_or_default()
        .transitions;

    // Heal.
    let heal = SystemTime::now();
    lab.isolate(&a, false);
    lab.isolate(&b, false);
    let t = watch_b.next_to(State::Backup, settle).await;
    let one_master = after(heal, when(&t));
    let limit = interval + skew_time(case.version, 100, interval);
    eprintln!(
        "{case:?}: one master {one_master:?} after the heal (advert interval + Skew_Time = \
         {limit:?})"
    );
    assert!(
        one_master <= limit + SLACK,
        "one master only {one_master:?} after the heal; the limit is {limit:?} + {SLACK:?}"
    );
    let reason = t.reason.unwrap();
    assert_eq!(reason.code, "higher_priority_advert", "{reason:?}");
    assert_eq!(reason.peer_address, src_a);
    wait_until(
        "the VIP gone from b",
        Duration::from_secs(5),
        &db,
        || async { !b.has_address(vip) },
    )
    .await;
    assert!(a.has_address(vip));

    // a's gratuitous ARPs / NAs bring the client back: its neighbour entry names a's MAC,
    // and the VIP answers (b no longer holds it, so a reply comes from a).
    let followed = SystemTime::now();
    wait_until(
        "the client to follow a again",
        Duration::from_secs(5),
        &da,
        || async { client.neighbour(vip).as_deref() == Some(mac_a.as_str()) },
    )
    .await;
    eprintln!(
        "{case:?}: the client's neighbour entry for {vip} is a's MAC {:?} after the heal",
        after(heal, followed.max(heal))
    );
    assert!(
        client_reaches(&client, vip),
        "the client reaches the VIP on a"
    );

    // Both nodes said what happened, once each.
    wait_until(
        "a dual-master report on each node",
        Duration::from_secs(5),
        &da,
        || async { !dual_masters(&da).await.is_empty() && !dual_masters(&db).await.is_empty() },
    )
    .await;
    let (on_a, on_b) = (dual_masters(&da).await, dual_masters(&db).await);
    assert_eq!(on_a.len(), 1, "once per episode on a: {on_a:?}");
    assert_eq!(on_b.len(), 1, "once per episode on b: {on_b:?}");
    assert_eq!(
        on_a[0],
        v1::DualMaster {
            peer_address: src_b.clone(),
            peer_priority: 100,
            priority: 150,
            outcome: v1::DualMasterOutcome::StayedMaster as i32,
        }
    );
    assert_eq!(
        on_b[0],
        v1::DualMaster {
            peer_address: src_a.clone(),
            peer_priority: 150,
            priority: 100,
            outcome: v1::DualMasterOutcome::SteppedDown as i32,
        }
    );
    // a never left MASTER.
    let status_a = vrrp::status(&da, "vip").await;
    assert_eq!(status_a.state, State::Master as i32);
    assert_eq!(
        status_a.counters.unwrap_or_default().transitions,
        a_transitions
    );
    // Some intervals later, still one master and no new report.
    tokio::time::sleep(interval * 5).await;
    assert_eq!(vrrp::state(&da, "vip").await, State::Master);
    assert_eq!(vrrp::state(&db, "vip").await, State::Backup);
    assert_eq!(dual_masters(&da).await.len(), 1);

    // havipctl watch shows the report.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_e2e-havipctl"))
        .args([
            "--server",
            &da.url(),
            "watch",
            "--since",
            "0",
            "--kind",
            "dual-master",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line =
        format!("dual-master       {src_b} (priority 100) is master too, ours 150; stayed master");
    assert!(text.contains(&line), "{line:?} not in:\n{text}");
}

#[tokio::test]
async fn v3_ipv4_multicast_partition_and_heal() {
    if netns_available() {
        let case = Case {
            version: 3,
            ipv6: false,
            unicast: false,
            interval_ms: 100,
        };
        partition_and_heal("part4", case).await;
    }
}

#[tokio::test]
async fn v3_ipv6_multicast_partition_and_heal() {
    if netns_available() {
        let case = Case {
            version: 3,
            ipv6: true,
            unicast: false,
            interval_ms: 100,
        };
        partition_and_heal("part6", case).await;
    }
}

#[tokio::test]
async fn v2_ipv4_unicast_partition_and_heal() {
    if netns_available() {
        let case = Case {
            version: 2,
            ipv6: false,
            unicast: true,
            interval_ms: 1000,
        };
        partition_and_heal("part2", case).await;
    }
}

/// The other side of a partition: a backup that cannot run (SIGSTOP: a paused VM, a host
/// starved of CPU) for longer than Master_Down_Interval, while its master keeps
/// advertising. On waking, the master's adverts are waiting in its socket: it reads them
/// before it judges the master down, so it does not take over from a live master.
#[tokio::test]
async fn a_backup_frozen_past_master_down_interval_reads_the_queue_before_taking_over() {
    if !netns_available() {
        return;
    }
    use nix::sys::signal::{Signal, kill};
    let mut lab = Lab::new("frozen");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    create(&da, "vip", spec(51, 3, 150, 100, "10.0.0.100/24")).await;
    create(&db, "vip", spec(51, 3, 100, 100, "10.0.0.100/24")).await;
    wait_state(&da, "vip", State::Master, Duration::from_secs(10)).await;
    wait_state(&db, "vip", State::Backup, Duration::from_secs(10)).await;
    let before = vrrp::status(&db, "vip").await.counters.unwrap_or_default();
    for _ in 0..5 {
        // Ten times Master_Down_Interval (0.36 s) frozen, then a moment to wake up.
        kill(db.pid().unwrap(), Signal::SIGSTOP).unwrap();
        tokio::time::sleep(Duration::from_millis(3600)).await;
        kill(db.pid().unwrap(), Signal::SIGCONT).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = vrrp::status(&db, "vip").await;
    let c = after.counters.clone().unwrap_or_default();
    assert_eq!(after.state, State::Backup as i32, "{after:?}\n{}", db.log());
    assert_eq!(c.became_master, before.became_master, "{c:?}\n{}", db.log());
    assert_eq!(vrrp::state(&da, "vip").await, State::Master);
}
