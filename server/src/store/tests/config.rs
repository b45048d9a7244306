//! Config commits: rows, audit trail, events, and the uniqueness backstop.

use super::super::{HistoryQuery, Store};
use super::*;

fn update(name: &str, old: v1::InstanceSpec, new: v1::InstanceSpec, revision: u64) -> ConfigCommit {
    ConfigCommit {
        kind: v1::ChangeKind::Update,
        instance: name.into(),
        revision,
        actor: "CN=ops".into(),
        comment: "raise priority".into(),
        changed_fields: vec!["priority".into()],
        identity: Some(InstanceIdentity {
            interface: new.interface.clone(),
            vrid: u8::try_from(new.vrid).unwrap(),
            family: 4,
        }),
        old_spec: Some(old),
        new_spec: Some(new),
        time: SystemTime::now(),
    }
}

fn delete(name: &str, old: v1::InstanceSpec, revision: u64) -> ConfigCommit {
    ConfigCommit {
        kind: v1::ChangeKind::Delete,
        instance: name.into(),
        revision,
        actor: "uid:0".into(),
        comment: "decommissioned".into(),
        changed_fields: vec![],
        old_spec: Some(old),
        new_spec: None,
        identity: None,
        time: SystemTime::now(),
    }
}

#[tokio::test]
async fn create_update_delete_write_rows_history_and_events() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();

    let created = create("web", "eth0", 51, 1);
    let spec_v1 = created.new_spec.clone().unwrap();
    assert_eq!(store.commit_config(created).await.unwrap(), 1);
    let instances = store.load_instances().await.unwrap();
    assert_eq!(instances.len(), 1);
    assert_eq!(
        (instances[0].name.as_str(), instances[0].revision),
        ("web", 1)
    );
    assert_eq!(instances[0].spec, spec_v1);
    assert_eq!(instances[0].create_time, instances[0].update_time);

    let spec_v2 = spec("eth0", 51, 200);
    let seq = store
        .commit_config(update("web", spec_v1.clone(), spec_v2.clone(), 2))
        .await
        .unwrap();
    assert_eq!(seq, 2);
    let instances = store.load_instances().await.unwrap();
    assert_eq!((instances[0].revision, &instances[0].spec), (2, &spec_v2));
    assert!(instances[0].update_time >= instances[0].create_time);

    assert_eq!(
        store
            .commit_config(delete("web", spec_v2.clone(), 2))
            .await
            .unwrap(),
        3
    );
    assert!(store.load_instances().await.unwrap().is_empty());
    assert_eq!(store.last_revision(), 0, "as loaded at open");

    let history = store
        .list_config_changes(&HistoryQuery::default())
        .await
        .unwrap();
    let kinds: Vec<_> = history.items.iter().map(|c| (c.kind, c.revision)).collect();
    assert_eq!(
        kinds,
        [
            (v1::ChangeKind::Delete as i32, 2),
            (v1::ChangeKind::Update as i32, 2),
            (v1::ChangeKind::Create as i32, 1)
        ]
    );
    let [deleted, updated, created] = &history.items[..] else {
        unreachable!()
    };
    assert_eq!(
        (created.old_spec.as_ref(), created.new_spec.as_ref()),
        (None, Some(&spec_v1))
    );
    assert_eq!(
        (updated.old_spec.as_ref(), updated.new_spec.as_ref()),
        (Some(&spec_v1), Some(&spec_v2))
    );
    assert_eq!(
        (deleted.old_spec.as_ref(), deleted.new_spec.as_ref()),
        (Some(&spec_v2), None)
    );
    assert_eq!(updated.actor, "CN=ops");
    assert_eq!(updated.changed_fields, ["priority"]);
    assert_eq!(updated.comment, "raise priority");
    assert!(updated.time.is_some());

    let events = stored_events(&fx.path).await;
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.seq, e.kind, e.instance.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, v1::EventKind::InstanceCreated as i32, "web"),
            (2, v1::EventKind::InstanceUpdated as i32, "web"),
            (3, v1::EventKind::InstanceDeleted as i32, "web"),
        ]
    );
    let Some(v1::event::Payload::ConfigChanged(change)) = &events[1].payload else {
        panic!("no config_changed payload: {:?}", events[1]);
    };
    assert_eq!(
        (
            change.revision,
            change.actor.as_str(),
            change.comment.as_str()
        ),
        (2, "CN=ops", "raise priority")
    );
    assert_eq!(change.changed_fields, ["priority"]);
    store.close().await.unwrap();

    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    assert_eq!(store.last_revision(), 2);
    store.close().await.unwrap();
}

#[tokio::test]
async fn uniqueness_backstop_refuses_without_taking_a_seq_or_losing_events() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store
        .commit_config(create("web", "eth0", 51, 1))
        .await
        .unwrap();

    // The same virtual router under another name, racing transitions into one batch.
    for tag in 0..5 {
        store.record_transition(transition("web", tag));
    }
    let err = store
        .commit_config(create("web2", "eth0", 51, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("VRID 51 for IPv4 on interface \"eth0\""),
        "{err}"
    );
    assert!(!err.is_unavailable());

    let err = store
        .commit_config(create("web", "eth1", 7, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(
        err.to_string().contains("named \"web\" already exists"),
        "{err}"
    );

    let old = spec("eth0", 51, 100);
    let err = store
        .commit_config(update("ghost", old.clone(), old.clone(), 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store
        .commit_config(delete("ghost", old, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    // The same VRID on another interface, or for IPv6, is another router.
    store
        .commit_config(create("web2", "eth1", 51, 2))
        .await
        .unwrap();
    let mut v6 = create("web6", "eth0", 51, 3);
    v6.identity.as_mut().unwrap().family = 6;
    let seq = store.commit_config(v6).await.unwrap();
    store.flush().await.unwrap();

    assert_eq!(
        seq, 8,
        "1 create + 5 transitions + 2 creates: refusals take no seq"
    );
    assert_eq!(
        seqs(&stored_events(&fx.path).await),
        (1..=8).collect::<Vec<_>>()
    );
    let history = store
        .list_config_changes(&HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.items.len(), 3, "refused changes leave no history");
    assert_eq!(store.load_instances().await.unwrap().len(), 3);
    store.close().await.unwrap();
}

#[tokio::test]
async fn malformed_commits_are_refused_before_reaching_the_database() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    let mut no_identity = create("web", "eth0", 51, 1);
    no_identity.identity = None;
    let mut bad_family = create("web", "eth0", 51, 1);
    bad_family.identity.as_mut().unwrap().family = 5;
    let mut unspecified = create("web", "eth0", 51, 1);
    unspecified.kind = v1::ChangeKind::Unspecified;
    let mut bad_enum = create("web", "eth0", 51, 1);
    bad_enum.new_spec.as_mut().unwrap().v3_ipv4_checksum = 99;
    for commit in [no_identity, bad_family, unspecified, bad_enum] {
        let err = store.commit_config(commit).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCommit { .. }), "{err:?}");
    }
    store.flush().await.unwrap();
    assert!(stored_events(&fx.path).await.is_empty());
    store.close().await.unwrap();
}

#[tokio::test]
async fn passwords_are_kept_for_the_instance_but_not_in_the_history() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    let mut commit = create("web", "eth0", 51, 1);
    commit.new_spec.as_mut().unwrap().auth = Some(v1::Authentication {
        r#type: v1::AuthType::Pass as i32,
        password: "s3cret".into(),
        password_set: false,
    });
    store.commit_config(commit).await.unwrap();

    let stored = store.load_instances().await.unwrap();
    assert_eq!(stored[0].spec.auth.as_ref().unwrap().password, "s3cret");
    let history = store
        .list_config_changes(&HistoryQuery::default())
        .await
        .unwrap();
    let auth = history.items[0]
        .new_spec
        .as_ref()
        .unwrap()
        .auth
        .clone()
        .unwrap();
    assert_eq!((auth.password.as_str(), auth.password_set), ("", true));

    let mut conn = raw_connection(&fx.path).await;
    let leaks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM config_changes WHERE new_spec_json LIKE '%s3cret%' \
         OR old_spec_json LIKE '%s3cret%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(leaks, 0);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_spec_damaged_on_disk_is_reported_as_corrupt_naming_the_instance() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store
        .commit_config(create("web", "eth0", 51, 1))
        .await
        .unwrap();
    let mut conn = raw_connection(&fx.path).await;
    sqlx::query("UPDATE instances SET spec_json = '{\"vrid\": \"many\"}'")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = store.load_instances().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("instance \"web\""), "{err}");
    store.close().await.unwrap();
}
