//! Storage faults: a database locked by another process refuses config changes quickly,
//! keeps transitions queued and writes them once released; the queue bound counts losses.

use super::super::{HistoryQuery, RecordBatch, Store};
use super::*;

/// Takes the write lock as another process would, until dropped or released.
struct Lock(SqliteConnection);

impl Lock {
    async fn take(path: &Path) -> Lock {
        let mut conn = raw_connection(path).await;
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .unwrap();
        Lock(conn)
    }

    async fn release(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.0).await.unwrap();
    }
}

async fn flushed(store: &Store) -> bool {
    store.flush().await.is_ok()
}

/// A store whose queue holds five records, opened and settled, with its database then
/// locked: what is recorded stays queued.
async fn store_of_five_locked(fx: &Fixture) -> (Store, Lock) {
    let opts = StoreOptions {
        max_queued_events: 5,
        ..options(&fx.path)
    };
    let (store, _bus) = Store::open(opts).await.unwrap();
    store.flush().await.unwrap();
    let lock = Lock::take(&fx.path).await;
    (store, lock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_refuses_config_and_keeps_transitions_until_released() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store
        .commit_config(create("web", "eth0", 51, 1))
        .await
        .unwrap();
    store.flush().await.unwrap();

    let lock = Lock::take(&fx.path).await;
    let err = store
        .commit_config(create("db", "eth0", 52, 2))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(fx.path.to_str().unwrap()) && msg.contains("is locked"),
        "{msg}"
    );
    assert!(msg.contains("VRRP keeps running"), "{msg}");
    assert!(store.stats().failing);

    for tag in 0..50 {
        store.record_transition(transition("web", tag));
    }
    store.record_daemon_event(v1::EventKind::DaemonStarted, v1::DaemonEvent::default());
    assert!(store.flush().await.unwrap_err().is_unavailable());
    // Readers are not blocked by the writer's lock (WAL), and nothing was written.
    assert!(
        store
            .list_transitions(&HistoryQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(store.stats().queued_events, 51);

    lock.release().await;
    eventually("the queue to be written after the lock is released", || {
        flushed(&store)
    })
    .await;
    let events = stored_events(&fx.path).await;
    assert_eq!(
        seqs(&events),
        (1..=52).collect::<Vec<_>>(),
        "no loss, no hole"
    );
    let tags: Vec<u32> = events[1..51]
        .iter()
        .map(|e| match &e.payload {
            Some(v1::event::Payload::StateChanged(t)) => t.priority,
            other => panic!("expected a transition, got {other:?}"),
        })
        .collect();
    assert_eq!(tags, (0..50).collect::<Vec<_>>(), "in order");
    assert_eq!(events[51].kind, v1::EventKind::DaemonStarted as i32);
    let stats = store.stats();
    assert_eq!(
        (stats.queued_events, stats.lost_events, stats.failing),
        (0, 0, false)
    );

    // The refused change changed nothing and can be made now.
    assert_eq!(store.load_instances().await.unwrap().len(), 1);
    assert_eq!(
        store
            .commit_config(create("db", "eth0", 52, 2))
            .await
            .unwrap(),
        53
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_queue_bound_events_are_counted_lost_and_announced_once() {
    let fx = fixture();
    let (store, lock) = store_of_five_locked(&fx).await;
    for tag in 0..20 {
        store.record_transition(transition("web", tag));
    }
    let stats = store.stats();
    assert_eq!((stats.queued_events, stats.lost_events), (5, 15));

    lock.release().await;
    eventually("the queue to be written", || flushed(&store)).await;
    let events = stored_events(&fx.path).await;
    assert_eq!(
        seqs(&events),
        (1..=6).collect::<Vec<_>>(),
        "lost events took no seq"
    );
    let tags: Vec<u32> = events[..5]
        .iter()
        .filter_map(|e| match &e.payload {
            Some(v1::event::Payload::StateChanged(t)) => Some(t.priority),
            _ => None,
        })
        .collect();
    assert_eq!(tags, [0, 1, 2, 3, 4], "the first five were kept");
    assert_eq!(events[5].kind, v1::EventKind::EventsLost as i32);
    let Some(v1::event::Payload::Daemon(daemon)) = &events[5].payload else {
        panic!("no daemon payload: {:?}", events[5]);
    };
    assert!(
        daemon.detail.starts_with("15 events were not recorded"),
        "{}",
        daemon.detail
    );

    // A second episode is announced on its own.
    let lock = Lock::take(&fx.path).await;
    for tag in 0..7 {
        store.record_transition(transition("web", tag));
    }
    lock.release().await;
    eventually("the queue to be written", || flushed(&store)).await;
    let events = stored_events(&fx.path).await;
    assert_eq!(seqs(&events), (1..=12).collect::<Vec<_>>());
    let Some(v1::event::Payload::Daemon(daemon)) = &events[11].payload else {
        panic!("no daemon payload: {:?}", events[11]);
    };
    assert!(
        daemon.detail.starts_with("2 events were not recorded"),
        "{}",
        daemon.detail
    );
    assert_eq!(store.stats().lost_events, 17);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_straddling_the_queue_bound_keeps_its_head_in_order_and_loses_its_tail() {
    let fx = fixture();
    let (store, lock) = store_of_five_locked(&fx).await;
    for tag in 0..3 {
        store.record_transition(transition("web", tag));
    }
    let mut batch = RecordBatch::with_capacity(4);
    batch.tracker_change(
        "web",
        v1::TrackerChange {
            tracker: "haproxy".into(),
            ..v1::TrackerChange::default()
        },
    );
    for tag in 3..6 {
        batch.transition(transition("web", tag));
    }
    store.record_batch(batch);
    let stats = store.stats();
    assert_eq!((stats.queued_events, stats.lost_events), (5, 2));

    lock.release().await;
    eventually("the queue to be written", || flushed(&store)).await;
    let events = stored_events(&fx.path).await;
    assert_eq!(seqs(&events), (1..=6).collect::<Vec<_>>());
    let kinds: Vec<i32> = events.iter().map(|e| e.kind).collect();
    let changed = v1::EventKind::StateChanged as i32;
    assert_eq!(
        kinds,
        [
            changed,
            changed,
            changed,
            v1::EventKind::TrackerChanged as i32,
            changed,
            v1::EventKind::EventsLost as i32,
        ],
        "the batch's head in its own order, then the loss where its tail would have been"
    );
    let Some(v1::event::Payload::StateChanged(t)) = &events[4].payload else {
        panic!("expected a transition: {:?}", events[4]);
    };
    assert_eq!(t.priority, 3);
    let Some(v1::event::Payload::Daemon(daemon)) = &events[5].payload else {
        panic!("no daemon payload: {:?}", events[5]);
    };
    assert!(
        daemon.detail.starts_with("2 events were not recorded"),
        "{}",
        daemon.detail
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_gives_up_on_a_database_that_stays_locked() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store.flush().await.unwrap();
    let lock = Lock::take(&fx.path).await;
    store.record_transition(transition("web", 0));
    let err = store.close().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    lock.release().await;
    assert!(stored_events(&fx.path).await.is_empty());
}

/// A batch of events is one query from BEGIN to COMMIT. When a statement inside it fails,
/// SQLite stays in the transaction unless the writer rolls it back; left open, it would hold
/// the write lock and refuse every later BEGIN, so the events would never be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_halfway_is_undone_whole_and_retried_once_the_fault_is_gone() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    store.record_transition(transition("web", 0));
    store.flush().await.unwrap();

    let mut other = raw_connection(&fx.path).await;
    // Transitions are inserted before events in a batch: the failure comes after a
    // statement of the same transaction has already succeeded.
    sqlx::query(
        "CREATE TRIGGER refuse_events BEFORE INSERT ON events \
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();
    for tag in 1..4 {
        store.record_transition(transition("web", tag));
    }
    let err = store.flush().await.unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(seqs(&stored_events(&fx.path).await), vec![1]);
    assert_eq!(
        store
            .list_transitions(&HistoryQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        1,
        "the transitions of the failed batch are undone with its events"
    );

    // Fails fast if the writer's connection were still holding the write lock.
    sqlx::query("PRAGMA busy_timeout = 2000")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER refuse_events")
        .execute(&mut other)
        .await
        .expect("the writer must not keep a failed batch's transaction open");
    eventually("the batch to be written once the fault is gone", || {
        flushed(&store)
    })
    .await;
    let events = stored_events(&fx.path).await;
    assert_eq!(seqs(&events), vec![1, 2, 3, 4], "no loss, no hole");
    assert!(!store.stats().failing);
    store.close().await.unwrap();
}
