//! Sync groups and tracker changes in the store: rows, history, events, revisions.

use super::super::{HistoryQuery, Store, StoreError, StoredSyncGroup, SyncGroupCommit};
use super::*;

fn group(
    kind: v1::ChangeKind,
    name: &str,
    revision: u64,
    old: Option<&[&str]>,
    new: Option<&[&str]>,
) -> SyncGroupCommit {
    let list = |m: Option<&[&str]>| m.map(|m| m.iter().map(|s| (*s).to_owned()).collect());
    SyncGroupCommit {
        kind,
        group: name.into(),
        revision,
        actor: "uid:0".into(),
        comment: format!("{kind:?} {name}"),
        changed_fields: if kind == v1::ChangeKind::Update {
            vec!["instances".into()]
        } else {
            vec![]
        },
        old_members: list(old),
        new_members: list(new),
        time: SystemTime::now(),
    }
}

#[tokio::test]
async fn create_update_delete_a_group_write_rows_history_and_events() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    for (i, name) in ["web", "db", "cache"].into_iter().enumerate() {
        let vrid = u8::try_from(51 + i).unwrap();
        store
            .commit_config(create(name, "eth0", vrid, u64::try_from(i + 1).unwrap()))
            .await
            .unwrap();
    }
    let create = group(
        v1::ChangeKind::Create,
        "front",
        4,
        None,
        Some(&["web", "db"]),
    );
    assert_eq!(store.commit_sync_group(create).await.unwrap(), 4);
    assert_eq!(
        store.load_sync_groups().await.unwrap(),
        [StoredSyncGroup {
            name: "front".into(),
            members: vec!["web".into(), "db".into()],
            revision: 4,
        }]
    );
    let update = group(
        v1::ChangeKind::Update,
        "front",
        5,
        Some(&["web", "db"]),
        Some(&["db", "cache", "web"]),
    );
    assert_eq!(store.commit_sync_group(update).await.unwrap(), 5);
    assert_eq!(
        store.load_sync_groups().await.unwrap()[0].members,
        ["db", "cache", "web"],
        "members keep the order given"
    );
    store.close().await.unwrap();

    // Reopened: the group and the revision counter survive.
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    assert_eq!(store.last_revision(), 5);
    assert_eq!(store.load_sync_groups().await.unwrap()[0].revision, 5);
    let delete = group(
        v1::ChangeKind::Delete,
        "front",
        6,
        Some(&["db", "cache", "web"]),
        None,
    );
    assert_eq!(store.commit_sync_group(delete).await.unwrap(), 6);
    assert!(store.load_sync_groups().await.unwrap().is_empty());

    let history = store
        .list_config_changes(&HistoryQuery::default())
        .await
        .unwrap();
    let groups: Vec<_> = history
        .items
        .iter()
        .filter(|c| !c.sync_group.is_empty())
        .collect();
    assert_eq!(groups.len(), 3);
    let [deleted, updated, created] = &groups[..] else {
        unreachable!()
    };
    assert!(
        groups
            .iter()
            .all(|c| c.instance.is_empty() && c.sync_group == "front")
    );
    assert_eq!(created.kind, v1::ChangeKind::Create as i32);
    assert_eq!(created.old_group, None);
    assert_eq!(
        created.new_group.as_ref().map(|g| g.instances.clone()),
        Some(vec!["web".to_owned(), "db".to_owned()])
    );
    assert_eq!(updated.changed_fields, ["instances"]);
    assert_eq!(updated.revision, 5);
    assert_eq!(deleted.new_group, None);
    assert_eq!(deleted.comment, "Delete front");
    // Filtering by instance shows instance changes only.
    let web = store
        .list_config_changes(&HistoryQuery {
            instance: Some("web".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(web.items.iter().all(|c| c.sync_group.is_empty()));

    let events = stored_events(&fx.path).await;
    let group_events: Vec<_> = events
        .iter()
        .filter(|e| e.kind == v1::EventKind::SyncGroupChanged as i32)
        .collect();
    assert_eq!(
        seqs(
            &group_events
                .iter()
                .map(|e| (*e).clone())
                .collect::<Vec<_>>()
        ),
        [4, 5, 6]
    );
    let Some(v1::event::Payload::ConfigChanged(c)) = &group_events[1].payload else {
        panic!("{:?}", group_events[1]);
    };
    assert_eq!((c.sync_group.as_str(), c.revision), ("front", 5));
    assert_eq!(group_events[1].instance, "");
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_taken_group_name_or_member_is_refused_without_taking_a_seq() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store
        .commit_config(create("web", "eth0", 51, 1))
        .await
        .unwrap();
    let first = group(v1::ChangeKind::Create, "a", 2, None, Some(&["web"]));
    assert_eq!(store.commit_sync_group(first).await.unwrap(), 2);
    let same_name = group(v1::ChangeKind::Create, "a", 3, None, Some(&["web"]));
    assert!(matches!(
        store.commit_sync_group(same_name).await,
        Err(StoreError::Conflict { .. })
    ));
    let same_member = group(v1::ChangeKind::Create, "b", 3, None, Some(&["web"]));
    assert!(matches!(
        store.commit_sync_group(same_member).await,
        Err(StoreError::Conflict { .. })
    ));
    let missing = group(v1::ChangeKind::Update, "c", 3, Some(&["x"]), Some(&["web"]));
    assert!(matches!(
        store.commit_sync_group(missing).await,
        Err(StoreError::SyncGroupNotFound { .. })
    ));
    let empty = group(v1::ChangeKind::Create, "d", 3, None, Some(&[]));
    assert!(matches!(
        store.commit_sync_group(empty).await,
        Err(StoreError::InvalidCommit { .. })
    ));
    store.record_tracker_change("web", v1::TrackerChange::default());
    store.flush().await.unwrap();
    assert_eq!(
        seqs(&stored_events(&fx.path).await),
        [1, 2, 3],
        "refusals took no seq"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn tracker_changes_are_events_of_their_instance() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    let change = v1::TrackerChange {
        tracker: "haproxy".into(),
        healthy: false,
        detail: "exit status 1: connection refused".into(),
        priority_change: -20,
        effective_priority: 80,
    };
    store.record_tracker_change("web", change.clone());
    store.flush().await.unwrap();
    let events = stored_events(&fx.path).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, v1::EventKind::TrackerChanged as i32);
    assert_eq!(events[0].instance, "web");
    assert!(events[0].time.is_some());
    assert_eq!(
        events[0].payload,
        Some(v1::event::Payload::TrackerChanged(change))
    );
    store.close().await.unwrap();
}
