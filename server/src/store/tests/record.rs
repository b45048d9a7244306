//! Recording transitions and daemon events: batching, seq order, flush, close.

use super::super::{HistoryQuery, Store};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_get_contiguous_seqs_in_their_own_order() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 250;
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let store = store.clone();
            tokio::spawn(async move {
                for tag in 0..EACH {
                    store.record_transition(transition(&format!("vr{p}"), tag));
                    if tag % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    store.record_daemon_event(
        v1::EventKind::DaemonStopping,
        v1::DaemonEvent {
            version: "test".into(),
            detail: "bye".into(),
        },
    );
    store.flush().await.unwrap();

    let events = stored_events(&fx.path).await;
    let total = u64::from(PRODUCERS * EACH) + 1;
    assert_eq!(seqs(&events), (1..=total).collect::<Vec<_>>());
    for p in 0..PRODUCERS {
        let name = format!("vr{p}");
        let tags: Vec<u32> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Some(v1::event::Payload::StateChanged(t)) if e.instance == name => {
                    assert_eq!(t.seq, e.seq, "the carried transition has its seq");
                    assert!(t.time.is_some(), "recording fills in the time");
                    Some(t.priority)
                }
                _ => None,
            })
            .collect();
        assert_eq!(tags, (0..EACH).collect::<Vec<_>>(), "order of {name}");
    }
    let last = events.last().unwrap();
    assert_eq!(last.kind, v1::EventKind::DaemonStopping as i32);
    assert_eq!(last.instance, "");

    // The transitions table holds the same transitions with the same seqs.
    let page = store
        .list_transitions(&HistoryQuery {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let from_history: Vec<u64> = page.items.iter().rev().map(|t| t.seq).collect();
    let from_events: Vec<u64> = events
        .iter()
        .filter(|e| e.kind == v1::EventKind::StateChanged as i32)
        .map(|e| e.seq)
        .collect();
    assert_eq!(from_history, from_events);

    let stats = store.stats();
    assert_eq!(
        (stats.queued_events, stats.lost_events, stats.last_seq),
        (0, 0, total)
    );
    assert!(stats.last_write_latency.is_some() && !stats.failing);
    store.close().await.unwrap();
}

#[tokio::test]
async fn close_writes_what_is_queued_then_refuses_everything() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    let other = store.clone();
    for tag in 0..100 {
        store.record_transition(transition("web", tag));
    }
    store.close().await.unwrap();
    assert_eq!(
        stored_events(&fx.path).await.len(),
        100,
        "close flushed the queue"
    );

    assert!(matches!(other.flush().await, Err(StoreError::Closed)));
    let err = other
        .commit_config(create("web", "eth0", 51, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Closed) && err.is_unavailable());
    other.record_transition(transition("web", 100));
    assert_eq!(
        other.stats().lost_events,
        1,
        "recorded after close: counted, not queued"
    );
    assert_eq!(other.stats().queued_events, 0);
    assert!(matches!(other.close().await, Err(StoreError::Closed)));
}
