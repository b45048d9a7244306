//! Retention: events go as a prefix by time of recording, transitions by their own time,
//! config changes stay.

use super::super::time::to_timestamp;
use super::super::{HistoryQuery, PruneReport, Store};
use super::*;

fn aged(instance: &str, tag: u32, age: Duration) -> v1::Transition {
    let mut t = transition(instance, tag);
    t.time = Some(to_timestamp(SystemTime::now() - age));
    t
}

#[tokio::test]
async fn pruning_removes_a_prefix_of_events_and_old_transitions_only() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    let hour = Duration::from_secs(3600);
    store
        .commit_config(create("web", "eth0", 51, 1))
        .await
        .unwrap(); // seq 1
    store.record_transition(aged("web", 0, 3 * hour)); // 2
    store.record_transition(aged("web", 1, Duration::ZERO)); // 3
    store.record_transition(aged("web", 2, 2 * hour)); // 4
    store.record_transition(aged("web", 3, Duration::ZERO)); // 5
    store.flush().await.unwrap();
    // 1, 3 and 5 recorded now, 2 and 4 long ago (as around a clock step): 3 is new but
    // below an old one, so it goes with the prefix.
    age_events(&fx.path, &[2], 3 * hour).await;
    age_events(&fx.path, &[4], 2 * hour).await;

    let report = store
        .prune_older_than(SystemTime::now() - hour)
        .await
        .unwrap();
    assert_eq!(
        report,
        PruneReport {
            events: 4,
            transitions: 2
        },
        "events 1-4 as a prefix, the two old transitions"
    );
    assert_eq!(seqs(&stored_events(&fx.path).await), [5]);
    assert_eq!(store.oldest_kept_seq().await.unwrap(), 5);
    let kept: Vec<u64> = store
        .list_transitions(&HistoryQuery::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|t| t.seq)
        .collect();
    assert_eq!(kept, [5, 3]);
    let changes = store
        .list_config_changes(&HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(changes.items.len(), 1, "the audit trail is kept");

    // Nothing older left: a second prune is a no-op.
    let report = store
        .prune_older_than(SystemTime::now() - hour)
        .await
        .unwrap();
    assert_eq!(report, PruneReport::default());
    store.close().await.unwrap();
}

#[tokio::test]
async fn the_pruner_runs_at_open_with_the_configured_retention() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    for tag in 0..3 {
        store.record_transition(aged("web", tag, Duration::from_secs(7200)));
    }
    store.record_transition(aged("web", 3, Duration::ZERO));
    store.close().await.unwrap();
    age_events(&fx.path, &[1, 2, 3], Duration::from_secs(7200)).await;

    let opts = StoreOptions {
        event_retention: Duration::from_secs(3600),
        ..options(&fx.path)
    };
    let (store, _bus) = Store::open(opts).await.unwrap();
    eventually("the pruner to run", || async {
        store.oldest_kept_seq().await.unwrap() == 4
    })
    .await;
    assert_eq!(seqs(&stored_events(&fx.path).await), [4]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn pruning_in_chunks_gets_everything() {
    let fx = fixture();
    let (store, _bus) = Store::open(options(&fx.path)).await.unwrap();
    // More than one chunk (5000) of each.
    for tag in 0..12_000 {
        store.record_transition(aged("web", tag, Duration::from_secs(7200)));
    }
    store.flush().await.unwrap();
    age_events(&fx.path, &[], Duration::from_secs(7200)).await;
    let report = store
        .prune_older_than(SystemTime::now() - Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        report,
        PruneReport {
            events: 12_000,
            transitions: 12_000
        }
    );
    assert_eq!(store.oldest_kept_seq().await.unwrap(), 12_001);
    store.close().await.unwrap();
}
