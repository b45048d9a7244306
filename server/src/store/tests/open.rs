//! Opening: folder, file, pragmas, migrations; reopening keeps everything and seqs go on.

use super::super::Store;
use super::*;
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn open_creates_the_folder_in_wal_mode_with_the_schema() {
    let fx = fixture();
    assert!(!fx.path.parent().unwrap().exists());
    let (store, bus) = Store::open(options(&fx.path)).await.unwrap();

    let dir_mode = std::fs::metadata(fx.path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    let file_mode = std::fs::metadata(&fx.path).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert_eq!(file_mode & 0o777, 0o600);

    // Read back on a connection of our own: WAL is a property of the file.
    let mut conn = raw_connection(&fx.path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, vec![(1, true), (2, true)]);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' \
         AND name <> 'sqlite_sequence' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "config_changes",
            "events",
            "instances",
            "meta",
            "sync_group_members",
            "sync_groups",
            "transitions"
        ]
    );

    assert_eq!(store.last_revision(), 0);
    assert_eq!(bus.last_published_seq(), 0);
    assert_eq!(store.oldest_kept_seq().await.unwrap(), 1);
    assert!(store.load_instances().await.unwrap().is_empty());
    assert!(store.load_sync_groups().await.unwrap().is_empty());
    store.close().await.unwrap();
}

#[tokio::test]
async fn reopening_keeps_instances_and_revision_and_seqs_go_on() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store
        .commit_config(create("web", "eth0", 51, 1))
        .await
        .unwrap();
    store
        .commit_config(create("db", "eth0", 52, 2))
        .await
        .unwrap();
    for tag in 0..10 {
        store.record_transition(transition("web", tag));
    }
    store.flush().await.unwrap();
    let before = store.load_instances().await.unwrap();
    store.close().await.unwrap();

    let (store, bus) = Store::open(options(&fx.path)).await.unwrap();
    assert_eq!(store.load_instances().await.unwrap(), before);
    assert_eq!(
        before
            .iter()
            .map(|i| (i.name.as_str(), i.revision))
            .collect::<Vec<_>>(),
        [("db", 2), ("web", 1)]
    );
    assert_eq!(store.last_revision(), 2);
    assert_eq!(bus.last_published_seq(), 12);
    store.record_transition(transition("web", 10));
    store.flush().await.unwrap();
    assert_eq!(
        seqs(&stored_events(&fx.path).await),
        (1..=13).collect::<Vec<_>>()
    );
    store.close().await.unwrap();

    // Pruning every event must not reset the counter: it lives in meta.
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    let far_future = SystemTime::now() + Duration::from_secs(3600);
    store.prune_older_than(far_future).await.unwrap();
    assert!(stored_events(&fx.path).await.is_empty());
    assert_eq!(store.oldest_kept_seq().await.unwrap(), 14);
    store.close().await.unwrap();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store.record_transition(transition("web", 11));
    store.flush().await.unwrap();
    assert_eq!(seqs(&stored_events(&fx.path).await), [14]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let fx = fixture();
    std::fs::create_dir_all(fx.path.parent().unwrap()).unwrap();
    std::fs::write(&fx.path, vec![b'x'; 8192]).unwrap();
    let err = Store::open(options(&fx.path)).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(fx.path.to_str().unwrap()), "{err}");
}
