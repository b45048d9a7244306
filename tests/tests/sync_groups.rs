//! Sync groups end to end (keepalived's vrrp_sync_group): two instances (two VRIDs, two
//! VIPs) in one group on each of two nodes fail over together when one member's tracked
//! interface fails, and come back together; the API validates groups, records them in the
//! history and the event stream, restores them at start, and protects their members.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::{
    config_changes, events, instance, interface_tracker, last_reason_into, wait_vip,
};
use havip_e2e::vrrp::{create, spec, state, wait_state};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, State};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

const WEB_VIP: &str = "10.0.0.100";
const DB_VIP: &str = "10.0.0.101";
const SETTLE: Duration = Duration::from_secs(15);

fn group(name: &str, members: &[&str]) -> v1::SyncGroup {
    v1::SyncGroup {
        name: name.into(),
        instances: members.iter().map(|m| (*m).to_owned()).collect(),
        revision: 0,
    }
}

async fn create_group(d: &Daemon, g: v1::SyncGroup) -> Result<v1::SyncGroup, tonic::Status> {
    d.sync_groups()
        .await
        .create_sync_group(v1::CreateSyncGroupRequest {
            group: Some(g),
            comment: "web and db move together".into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Both nodes run web (VRID 51) and db (VRID 52) in sync group "front"; a (150) tracks the
/// interface trk0 for web only, b has 100.
async fn setup(tag: &str) -> (Lab, Host, Host, Daemon, Daemon) {
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
    for (d, prio) in [(&da, 150), (&db, 100)] {
        let mut web = spec(51, 3, prio, 100, &format!("{WEB_VIP}/24"));
        if prio == 150 {
            web.trackers = vec![interface_tracker("uplink", "trk0", 0)];
        }
        create(d, "web", web).await;
        create(d, "db", spec(52, 3, prio, 100, &format!("{DB_VIP}/24"))).await;
        create_group(d, group("front", &["web", "db"]))
            .await
            .unwrap();
    }
    (lab, a, b, da, db)
}

async fn serves_both(master: (&Daemon, &Host), backup: (&Daemon, &Host)) {
    for name in ["web", "db"] {
        wait_state(master.0, name, State::Master, SETTLE).await;
    }
    for vip in [WEB_VIP, DB_VIP] {
        wait_vip(master.1, vip, true).await;
        wait_vip(backup.1, vip, false).await;
    }
}

/// One member's tracked interface fails: it goes to FAULT, the other member steps down to
/// BACKUP because of it, and the other node takes both VIPs. The interface comes back: both
/// return together.
#[tokio::test]
async fn a_group_fails_over_together_and_comes_back_together() {
    if !netns_available() {
        return;
    }
    let (_lab, a, b, da, db) = setup("sgfo").await;
    serves_both((&da, &a), (&db, &b)).await;
    for name in ["web", "db"] {
        wait_state(&db, name, State::Backup, SETTLE).await;
        let status = instance(&da, name).await.status.unwrap();
        assert_eq!(status.sync_group, "front");
    }

    a.exec(&["ip", "link", "set", "trk0", "down"]);
    serves_both((&db, &b), (&da, &a)).await;
    wait_state(&da, "web", State::Fault, SETTLE).await;
    wait_state(&da, "db", State::Backup, SETTLE).await;
    let reason = last_reason_into(&da, "db", State::Backup).await;
    assert_eq!(reason.code, "sync_group");
    assert_eq!(
        reason.description,
        "sync group front: member web is in FAULT"
    );
    // db stays out of MASTER while web is in FAULT, although it has the higher priority.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state(&da, "db").await, State::Backup);
    assert_eq!(state(&db, "db").await, State::Master);

    a.exec(&["ip", "link", "set", "trk0", "up"]);
    serves_both((&da, &a), (&db, &b)).await;
    for name in ["web", "db"] {
        wait_state(&db, name, State::Backup, SETTLE).await;
    }
    // One of them preempted; the other followed it at once, by the group.
    let web = last_reason_into(&da, "web", State::Master).await;
    let dbr = last_reason_into(&da, "db", State::Master).await;
    let followed = [&web, &dbr]
        .iter()
        .filter(|r| r.code == "sync_group")
        .count();
    assert!(
        followed >= 1,
        "one member followed the other: web {web:?}, db {dbr:?}"
    );
    let r = if web.code == "sync_group" { &web } else { &dbr };
    assert!(r.description.ends_with("became MASTER"), "{r:?}");
}

/// The API: validation with field paths, one group per instance, members cannot be deleted,
/// stale revisions are refused, changes are in the history and the event stream, and the
/// group is restored at start.
#[tokio::test]
async fn the_sync_group_api() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("sgapi");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let mut da = Daemon::start(&a, "a");
    create(&da, "web", spec(51, 3, 100, 100, &format!("{WEB_VIP}/24"))).await;
    create(&da, "db", spec(52, 3, 100, 100, &format!("{DB_VIP}/24"))).await;
    create(&da, "cache", spec(53, 3, 100, 100, "10.0.0.102/24")).await;

    let fields = |e: &tonic::Status| -> Vec<String> {
        e.get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default()
    };
    let err = create_group(&da, group("front", &["web", "nope"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(fields(&err), ["group.instances[1]"]);
    let err = create_group(&da, group("bad name", &[])).await.unwrap_err();
    assert_eq!(fields(&err), ["group.name", "group.instances"]);
    let err = create_group(&da, group("front", &["web", "web"]))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["group.instances[1]"]);

    let created = create_group(&da, group("front", &["web", "db"]))
        .await
        .unwrap();
    assert!(created.revision > 0);
    let err = create_group(&da, group("front", &["cache"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = create_group(&da, group("other", &["cache", "db"]))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["group.instances[1]"]);
    assert!(
        err.message()
            .contains("already belongs to sync group front"),
        "{err:?}"
    );

    let err = da
        .instances()
        .await
        .delete_instance(v1::DeleteInstanceRequest {
            name: "db".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("sync group front"), "{err:?}");

    let mut sg = da.sync_groups().await;
    let err = sg
        .update_sync_group(v1::UpdateSyncGroupRequest {
            group: Some(group("front", &["web", "db", "cache"])),
            expected_revision: created.revision + 100,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let updated = sg
        .update_sync_group(v1::UpdateSyncGroupRequest {
            group: Some(group("front", &["web", "db", "cache"])),
            expected_revision: created.revision,
            comment: "cache too".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(updated.revision > created.revision);
    assert_eq!(
        instance(&da, "cache").await.status.unwrap().sync_group,
        "front"
    );

    // Restored at start.
    da.stop();
    da.restart();
    let got = da
        .sync_groups()
        .await
        .get_sync_group(v1::GetSyncGroupRequest {
            name: "front".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, updated);
    let list = da
        .sync_groups()
        .await
        .list_sync_groups(v1::ListSyncGroupsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.groups, std::slice::from_ref(&updated));
    assert_eq!(
        instance(&da, "web").await.status.unwrap().sync_group,
        "front"
    );

    da.sync_groups()
        .await
        .delete_sync_group(v1::DeleteSyncGroupRequest {
            name: "front".into(),
            comment: "split".into(),
        })
        .await
        .unwrap();
    let err = da
        .sync_groups()
        .await
        .get_sync_group(v1::GetSyncGroupRequest {
            name: "front".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(instance(&da, "web").await.status.unwrap().sync_group, "");

    // History: create, update, delete, with members before and after.
    let history: Vec<v1::ConfigChange> = config_changes(&da, "")
        .await
        .into_iter()
        .filter(|c| c.sync_group == "front")
        .collect();
    let kinds: Vec<i32> = history.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            v1::ChangeKind::Create as i32,
            v1::ChangeKind::Update as i32,
            v1::ChangeKind::Delete as i32
        ]
    );
    assert_eq!(history[1].comment, "cache too");
    assert_eq!(
        history[1].old_group.as_ref().unwrap().instances,
        ["web", "db"]
    );
    assert_eq!(
        history[1].new_group.as_ref().unwrap().instances,
        ["web", "db", "cache"]
    );
    assert_eq!(history[2].actor, "uid:0");
    let events = events(&da, "", v1::EventKind::SyncGroupChanged).await;
    assert_eq!(events.len(), 3, "{events:?}");
    // Now web can go.
    da.instances()
        .await
        .delete_instance(v1::DeleteInstanceRequest {
            name: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}
