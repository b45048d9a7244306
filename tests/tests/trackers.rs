//! Trackers end to end: two havipd nodes on one segment, the higher one (a, priority 150)
//! follows a tracker; each kind of tracker moves the VIP to b (priority 100) and back, a
//! negative weight makes a lose to b, a hung script is killed at its timeout without
//! delaying a single advert, and trackers change live.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::{
    ScriptDir, file_tracker, interface_tracker, last_reason_into, report_tracker, script_tracker,
    tracker_changes, trackers, transitions, wait_until, wait_vip,
};
use havip_e2e::vrrp::{create, millis, spec, state, status, wait_state};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, State, Tracker, UpdateInstanceRequest};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

const VIP: &str = "10.0.0.100";
/// Generous: the protocol needs well under a second at 100 ms adverts.
const SETTLE: Duration = Duration::from_secs(15);

struct Pair {
    _lab: Lab,
    a: Host,
    b: Host,
    da: Daemon,
    db: Daemon,
}

/// a (10.0.0.1, priority 150) with `trackers` and a veth pair trk0/trk0p inside a's
/// namespace (up; the dummy driver may be missing in containers), b
/// (10.0.0.2, priority 100); VRRPv3, 100 ms adverts, preemption on. a is master.
async fn pair(tag: &str, trackers: Vec<Tracker>) -> Pair {
    let mut lab = Lab::new(tag);
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    a.exec(&[
        "ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk0p",
    ]);
    a.exec(&["ip", "link", "set", "trk0p", "up"]);
    a.exec(&["ip", "link", "set", "trk0", "up"]);
    let da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    let mut sa = spec(51, 3, 150, 100, &format!("{VIP}/24"));
    sa.trackers = trackers;
    create(&da, "vip", sa).await;
    create(&db, "vip", spec(51, 3, 100, 100, &format!("{VIP}/24"))).await;
    Pair {
        _lab: lab,
        a,
        b,
        da,
        db,
    }
}

impl Pair {
    /// a is master with the VIP, b backup without it.
    async fn a_serves(&self) {
        wait_state(&self.da, "vip", State::Master, SETTLE).await;
        wait_state(&self.db, "vip", State::Backup, SETTLE).await;
        wait_vip(&self.a, VIP, true).await;
        wait_vip(&self.b, VIP, false).await;
    }

    /// b is master with the VIP; a is in `a_state` without it.
    async fn b_serves(&self, a_state: State) {
        wait_state(&self.db, "vip", State::Master, SETTLE).await;
        wait_state(&self.da, "vip", a_state, SETTLE).await;
        wait_vip(&self.b, VIP, true).await;
        wait_vip(&self.a, VIP, false).await;
    }

    async fn tracker(&self, name: &str) -> v1::TrackerStatus {
        trackers(&self.da, "vip")
            .await
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tracker {name}; log:\n{}", self.da.log()))
    }
}

/// A tracked interface going down (weight 0) puts a in FAULT: the VIP moves to b, and the
/// history says which tracker and why. Up again, a takes over again; a deleted interface is
/// failing too.
#[tokio::test]
async fn interface_tracker_moves_the_vip_and_back() {
    if !netns_available() {
        return;
    }
    let p = pair("tif", vec![interface_tracker("uplink", "trk0", 0)]).await;
    p.a_serves().await;
    // The instance waited for the tracker's first result: no detour through FAULT.
    let first = transitions(&p.da, "vip").await.remove(0);
    assert_eq!(
        (first.from, first.to),
        (State::Init as i32, State::Backup as i32),
        "{first:?}"
    );
    let t = p.tracker("uplink").await;
    assert!(t.healthy, "{t:?}");
    assert_eq!(t.detail, "interface trk0 is up");
    assert!(t.since.is_some());

    p.a.exec(&["ip", "link", "set", "trk0", "down"]);
    p.b_serves(State::Fault).await;
    let reason = last_reason_into(&p.da, "vip", State::Fault).await;
    assert_eq!(reason.code, "tracker_failed");
    assert_eq!(
        reason.description,
        "tracker uplink failed (interface trk0 is down or has no carrier)"
    );
    let change = tracker_changes(&p.da, "vip").await.pop().unwrap();
    assert_eq!(
        (
            change.tracker.as_str(),
            change.healthy,
            change.priority_change
        ),
        ("uplink", false, 0)
    );
    assert_eq!(change.detail, "interface trk0 is down or has no carrier");
    let status = status(&p.da, "vip").await;
    assert_eq!(status.last_reason.unwrap().description, reason.description);

    p.a.exec(&["ip", "link", "set", "trk0", "up"]);
    p.a_serves().await;
    assert!(p.tracker("uplink").await.healthy);

    p.a.exec(&["ip", "link", "del", "trk0"]);
    p.b_serves(State::Fault).await;
    assert_eq!(
        p.tracker("uplink").await.detail,
        "interface trk0 does not exist"
    );
}

/// keepalived's weights: a negative weight lowers a failing node's priority, so the higher
/// node loses to the lower one (b preempts) without a FAULT, and wins again on recovery.
#[tokio::test]
async fn a_negative_weight_makes_the_higher_node_lose() {
    if !netns_available() {
        return;
    }
    let p = pair("twt", vec![interface_tracker("uplink", "trk0", -60)]).await;
    p.a_serves().await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 150);
    p.a.exec(&["ip", "link", "set", "trk0", "down"]);
    p.b_serves(State::Backup).await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 90);
    let t = p.tracker("uplink").await;
    assert_eq!((t.healthy, t.priority_change), (false, -60));
    let change = tracker_changes(&p.da, "vip").await.pop().unwrap();
    assert_eq!(
        (change.priority_change, change.effective_priority),
        (-60, 90)
    );
    let reason = last_reason_into(&p.da, "vip", State::Backup).await;
    assert_eq!(reason.code, "higher_priority_advert", "{reason:?}");

    p.a.exec(&["ip", "link", "set", "trk0", "up"]);
    p.a_serves().await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 150);
    let reason = last_reason_into(&p.da, "vip", State::Master).await;
    assert_eq!(reason.code, "preempted_lower_priority", "{reason:?}");
}

/// A script tracker: healthy while the script exits 0; a flag file makes it exit 1 and
/// the VIP moves; the exit status and output are in the reason.
#[tokio::test]
async fn script_tracker_moves_the_vip_and_back() {
    if !netns_available() {
        return;
    }
    let dir = ScriptDir::new("script");
    let flag = dir.file("maintenance");
    let check = dir.script(
        "check",
        &format!(
            "if [ -e {} ]; then echo 'flag set'; exit 1; fi\necho ok",
            flag.display()
        ),
    );
    let p = pair("tsc", vec![script_tracker("check", &check, 0, 200, 200)]).await;
    p.a_serves().await;
    assert_eq!(p.tracker("check").await.detail, "exit status 0: ok");

    std::fs::write(&flag, "").unwrap();
    p.b_serves(State::Fault).await;
    let reason = last_reason_into(&p.da, "vip", State::Fault).await;
    assert_eq!(
        reason.description,
        "tracker check failed (exit status 1: flag set)"
    );

    std::fs::remove_file(&flag).unwrap();
    p.a_serves().await;
}

/// A script that is not secure (its directory writable by others) is refused with the
/// field named, and nothing is created.
#[tokio::test]
async fn an_insecure_script_is_refused() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("tinsec");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let da = Daemon::start(&a, "a");
    let dir = ScriptDir::new("insecure");
    let check = dir.script("check", "exit 0");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o775)).unwrap();
    let mut s = spec(51, 3, 150, 100, &format!("{VIP}/24"));
    s.trackers = vec![script_tracker("check", &check, 0, 1000, 1000)];
    let err = da
        .instances()
        .await
        .create_instance(v1::CreateInstanceRequest {
            name: "vip".into(),
            spec: Some(s),
            validate_only: false,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let fields: Vec<String> = err
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["spec.trackers[0].script.path"]);
    assert!(
        err.message().contains("writable by group or others"),
        "{err:?}"
    );
    let list = da
        .instances()
        .await
        .list_instances(v1::ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.instances.is_empty());
}

/// A file tracker (keepalived's track_file): the value times the weight is added; a value
/// that takes a below b's priority hands the VIP over, 0 takes it back.
#[tokio::test]
async fn file_tracker_moves_the_vip_and_back() {
    if !netns_available() {
        return;
    }
    let dir = ScriptDir::new("file");
    let file = dir.file("prio");
    std::fs::write(&file, "0\n").unwrap();
    let p = pair("tfi", vec![file_tracker("prio", &file, -10)]).await;
    p.a_serves().await;

    std::fs::write(&file, "6\n").unwrap();
    p.b_serves(State::Backup).await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 90);
    let t = p.tracker("prio").await;
    assert_eq!(t.priority_change, -60);
    assert!(t.detail.ends_with("holds 6"), "{t:?}");
    let change = tracker_changes(&p.da, "vip").await.pop().unwrap();
    assert_eq!(
        (change.priority_change, change.effective_priority),
        (-60, 90)
    );

    std::fs::write(&file, "0\n").unwrap();
    p.a_serves().await;

    // Garbage is failing: the negative weight applies once, a stays above b.
    std::fs::write(&file, "not a number").unwrap();
    wait_until("the file tracker to fail", SETTLE, &p.da, || async {
        !p.tracker("prio").await.healthy
    })
    .await;
    let t = p.tracker("prio").await;
    assert!(t.detail.contains("does not hold an integer"), "{t:?}");
    assert_eq!(status(&p.da, "vip").await.effective_priority, 140);
    assert_eq!(state(&p.da, "vip").await, State::Master);
}

async fn report(d: &Daemon, healthy: bool, ttl_ms: i64, detail: &str) -> Vec<String> {
    d.maintenance()
        .await
        .report_health(v1::ReportHealthRequest {
            check: "app-health".into(),
            healthy,
            ttl: millis(ttl_ms),
            detail: detail.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .instances
}

/// A health report tracker: failing until the first report, healthy while reports come
/// within their ttl, failing when they stop or say so.
#[tokio::test]
async fn report_tracker_follows_the_reports_and_their_ttl() {
    if !netns_available() {
        return;
    }
    let p = pair("trp", vec![report_tracker("app", "app-health", 0)]).await;
    // Before any report: a is in FAULT, b serves.
    p.b_serves(State::Fault).await;
    assert_eq!(
        p.tracker("app").await.detail,
        "no report for app-health yet"
    );

    assert_eq!(
        report(&p.da, true, 2000, "replication lag 0 s").await,
        ["vip"]
    );
    p.a_serves().await;
    assert_eq!(p.tracker("app").await.detail, "replication lag 0 s");
    // Reports within the ttl keep it healthy.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        report(&p.da, true, 2000, "replication lag 0 s").await;
    }
    assert_eq!(state(&p.da, "vip").await, State::Master);

    // The reports stop: after the ttl, a fails.
    p.b_serves(State::Fault).await;
    let reason = last_reason_into(&p.da, "vip", State::Fault).await;
    assert!(
        reason
            .description
            .starts_with("tracker app failed (no report for app-health within 2s"),
        "{reason:?}"
    );

    report(&p.da, false, 0, "replication lag 30 s").await;
    wait_until("the reporter's words", SETTLE, &p.da, || async {
        p.tracker("app").await.detail == "replication lag 30 s"
    })
    .await;
    assert_eq!(state(&p.da, "vip").await, State::Fault);
    report(&p.da, true, 0, "").await;
    p.a_serves().await;
    assert_eq!(p.tracker("app").await.detail, "reported healthy");

    // A bad report names the field.
    let err =
        p.da.maintenance()
            .await
            .report_health(v1::ReportHealthRequest {
                check: "not a name".into(),
                healthy: true,
                ttl: None,
                detail: String::new(),
            })
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.get_details_bad_request().unwrap().field_violations[0].field,
        "check"
    );
}

/// A script that hangs is killed at its timeout, again and again, and counted; the data
/// plane never waits for it: a keeps advertising every 100 ms, so b never sees a
/// master-down.
#[tokio::test]
async fn a_hung_script_is_killed_and_adverts_keep_flowing() {
    if !netns_available() {
        return;
    }
    let dir = ScriptDir::new("hung");
    let hang = dir.script("hang", "sleep 1000");
    // Failing costs 10: a (150) stays above b (100).
    let p = pair("thung", vec![script_tracker("hang", &hang, -10, 500, 300)]).await;
    p.a_serves().await;
    let before_b = transitions(&p.db, "vip").await.len();
    let b_masters = status(&p.db, "vip")
        .await
        .counters
        .unwrap_or_default()
        .became_master;
    let sent_before = status(&p.da, "vip")
        .await
        .counters
        .unwrap_or_default()
        .adverts_sent;
    let started = std::time::Instant::now();
    wait_until("four timeouts", Duration::from_secs(30), &p.da, || async {
        p.tracker("hang").await.timeouts >= 4
    })
    .await;
    let elapsed = started.elapsed();
    let t = p.tracker("hang").await;
    assert!(!t.healthy);
    assert!(
        t.detail.starts_with("timed out after 300ms; killed"),
        "{t:?}"
    );
    assert_eq!(status(&p.da, "vip").await.effective_priority, 140);
    // b saw a master all along: not one transition since.
    assert_eq!(state(&p.db, "vip").await, State::Backup);
    assert_eq!(transitions(&p.db, "vip").await.len(), before_b);
    assert_eq!(
        status(&p.db, "vip")
            .await
            .counters
            .unwrap_or_default()
            .became_master,
        b_masters
    );
    // And a kept sending: at least half of the adverts due in that time (generous for a
    // busy machine; a blocked data plane would send none while a script runs).
    let sent = status(&p.da, "vip")
        .await
        .counters
        .unwrap_or_default()
        .adverts_sent
        - sent_before;
    let due = u64::try_from(elapsed.as_millis() / 100).unwrap();
    assert!(sent >= due / 2, "{sent} adverts sent in {elapsed:?}");
}

async fn set_trackers(d: &Daemon, trackers: Vec<Tracker>) {
    d.instances()
        .await
        .update_instance(UpdateInstanceRequest {
            name: "vip".into(),
            spec: Some(v1::InstanceSpec {
                trackers,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["trackers".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Trackers are added, retuned and removed with UpdateInstance, live: no restart of the
/// protocol (no config_change transition), only what the trackers say.
#[tokio::test]
async fn trackers_change_live() {
    if !netns_available() {
        return;
    }
    let p = pair("tlive", vec![]).await;
    p.a_serves().await;

    // Added while healthy: not even a blip on the running master.
    let before = transitions(&p.da, "vip").await.len();
    set_trackers(&p.da, vec![interface_tracker("uplink", "trk0", 0)]).await;
    wait_until("the new tracker's first result", SETTLE, &p.da, || async {
        trackers(&p.da, "vip")
            .await
            .first()
            .is_some_and(|t| t.healthy)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(transitions(&p.da, "vip").await.len(), before);
    assert_eq!(state(&p.da, "vip").await, State::Master);

    // Failing with weight 0: FAULT.
    p.a.exec(&["ip", "link", "set", "trk0", "down"]);
    p.b_serves(State::Fault).await;
    // Retuned to a weight: out of FAULT, at 90, below b.
    set_trackers(&p.da, vec![interface_tracker("uplink", "trk0", -60)]).await;
    wait_state(&p.da, "vip", State::Backup, SETTLE).await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 90);
    assert_eq!(state(&p.db, "vip").await, State::Master);
    // Removed: back to 150, a preempts.
    set_trackers(&p.da, vec![]).await;
    p.a_serves().await;
    assert!(trackers(&p.da, "vip").await.is_empty());
    let codes: Vec<String> = transitions(&p.da, "vip")
        .await
        .into_iter()
        .filter_map(|t| t.reason.map(|r| r.code))
        .collect();
    assert!(
        !codes.iter().any(|c| c == "config_change"),
        "no restart: {codes:?}"
    );
    assert!(codes.iter().any(|c| c == "tracker_failed"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "trackers_recovered"), "{codes:?}");
}

/// A user with supplementary groups, from the group database, or nobody.
fn user_with_groups() -> String {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .filter_map(|l| l.split(':').nth(3))
        .flat_map(|members| members.split(','))
        .find(|u| {
            !u.is_empty()
                && std::process::Command::new("id")
                    .arg(u)
                    .output()
                    .is_ok_and(|o| o.status.success())
        })
        .map_or_else(|| "nobody".to_owned(), str::to_owned)
}

fn id_of(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("id")
        .args(args)
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// A script with a user runs as that user, with that user's groups (primary and
/// supplementary), not root's.
#[tokio::test]
async fn a_script_runs_as_its_user_with_the_users_groups() {
    if !netns_available() {
        return;
    }
    let user = user_with_groups();
    let dir = ScriptDir::new("user");
    let who = dir.script("who", "echo \"$(id -u) / $(id -G)\"");
    let mut t = script_tracker("who", &who, -1, 500, 500);
    if let Some(v1::tracker::Check::Script(s)) = t.check.as_mut() {
        s.user = user.clone();
    }
    let p = pair("tuser", vec![t]).await;
    wait_until("the script's first run", SETTLE, &p.da, || async {
        p.tracker("who").await.detail.starts_with("exit status 0")
    })
    .await;
    let detail = p.tracker("who").await.detail;
    let output = detail.strip_prefix("exit status 0: ").unwrap();
    let (uid, groups) = output.split_once(" / ").unwrap();
    assert_eq!(vec![uid.to_owned()], id_of(&["-u", &user]), "{detail}");
    let mut groups: Vec<String> = groups.split_whitespace().map(str::to_owned).collect();
    groups.sort();
    assert_eq!(groups, id_of(&["-G", &user]), "{user}: {detail}");
    assert!(p.tracker("who").await.healthy);
}
