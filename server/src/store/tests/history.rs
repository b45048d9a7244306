//! History queries: filters, newest first, pagination, page tokens.

use super::super::time::to_timestamp;
use super::super::{HistoryQuery, Page, Store};
use super::*;
use std::collections::HashSet;
use std::time::UNIX_EPOCH;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// Fixed times in 2023 make the expectations plain; a retention longer than their age
/// keeps the pruner (which runs at open) off them.
async fn open(path: &Path) -> Store {
    let opts = StoreOptions {
        event_retention: Duration::from_secs(100 * 365 * 24 * 3600),
        ..options(path)
    };
    Store::open(opts).await.unwrap().0
}

/// Every page of a query, checking tokens along the way.
async fn all_pages<T, F, Fut>(q: &HistoryQuery, mut list: F) -> Vec<Vec<T>>
where
    F: FnMut(HistoryQuery) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut pages = Vec::new();
    let mut q = q.clone();
    loop {
        let page = list(q.clone()).await.unwrap();
        pages.push(page.items);
        match page.next_page_token {
            Some(token) => q.page_token = Some(token),
            None => return pages,
        }
        assert!(pages.len() < 1000, "pagination does not end");
    }
}

#[tokio::test]
async fn transitions_filter_by_instance_and_time_newest_first_across_pages() {
    let fx = fixture();
    let store = open(&fx.path).await;
    // 60 transitions, one a second, alternating between two instances.
    for i in 0..60u32 {
        let mut t = transition(if i % 2 == 0 { "a" } else { "b" }, i);
        t.time = Some(to_timestamp(at(u64::from(i))));
        store.record_transition(t);
    }
    store.flush().await.unwrap();

    let cases = [
        (None, None, None, (0..60).collect::<Vec<u32>>()),
        (Some("a"), None, None, (0..60).step_by(2).collect()),
        (None, Some(10), Some(20), (10..20).collect()),
        (Some("b"), Some(10), Some(21), (11..21).step_by(2).collect()),
        (Some("c"), None, None, vec![]),
    ];
    for (instance, since, until, want_oldest_first) in cases {
        for page_size in [0, 1, 7, 60, 5000] {
            let q = HistoryQuery {
                instance: instance.map(str::to_owned),
                since: since.map(at),
                until: until.map(at),
                page_size,
                page_token: None,
            };
            let pages = all_pages(&q, |q| {
                let store = store.clone();
                async move { store.list_transitions(&q).await }
            })
            .await;
            let effective = match page_size {
                0 => 100,
                n => n.min(1000),
            } as usize;
            for page in &pages[..pages.len() - 1] {
                assert_eq!(page.len(), effective, "full pages before the last");
            }
            let got: Vec<u32> = pages.iter().flatten().map(|t| t.priority).collect();
            let mut want = want_oldest_first.clone();
            want.reverse();
            assert_eq!(
                got, want,
                "{instance:?} {since:?}..{until:?} by {page_size}"
            );
            let unique: HashSet<u64> = pages.iter().flatten().map(|t| t.seq).collect();
            assert_eq!(unique.len(), got.len(), "no overlap between pages");
        }
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn config_changes_paginate_and_bad_tokens_are_named() {
    let fx = fixture();
    let store = open(&fx.path).await;
    for i in 1..=25u8 {
        let mut commit = create(
            &format!("vr{i}"),
            if i % 2 == 0 { "eth0" } else { "eth1" },
            i,
            u64::from(i),
        );
        commit.time = at(u64::from(i));
        store.commit_config(commit).await.unwrap();
    }
    let q = HistoryQuery {
        page_size: 4,
        ..Default::default()
    };
    let pages = all_pages(&q, |q| {
        let store = store.clone();
        async move { store.list_config_changes(&q).await }
    })
    .await;
    assert_eq!(pages.len(), 7);
    let revisions: Vec<u64> = pages.iter().flatten().map(|c| c.revision).collect();
    assert_eq!(revisions, (1..=25).rev().collect::<Vec<_>>());

    let q = HistoryQuery {
        instance: Some("vr7".into()),
        ..Default::default()
    };
    let page = store.list_config_changes(&q).await.unwrap();
    assert_eq!((page.items.len(), page.next_page_token), (1, None));
    let q = HistoryQuery {
        since: Some(at(20)),
        until: Some(at(23)),
        ..Default::default()
    };
    let got: Vec<u64> = store
        .list_config_changes(&q)
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.revision)
        .collect();
    assert_eq!(got, [22, 21, 20]);

    let first = store
        .list_config_changes(&HistoryQuery {
            page_size: 4,
            ..Default::default()
        })
        .await
        .unwrap();
    let token = first.next_page_token.unwrap();
    for (q, reason) in [
        (
            HistoryQuery {
                page_token: Some("not-a-token".into()),
                ..Default::default()
            },
            "not a page token",
        ),
        (
            HistoryQuery {
                instance: Some("vr3".into()),
                page_token: Some(token.clone()),
                ..Default::default()
            },
            "different filter",
        ),
    ] {
        let err = store.list_config_changes(&q).await.unwrap_err();
        assert!(matches!(err, StoreError::BadPageToken { .. }), "{err:?}");
        assert!(err.to_string().contains(reason), "{err}");
    }
    let err = store
        .list_transitions(&HistoryQuery {
            page_token: Some(token),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("other history list"), "{err}");
    store.close().await.unwrap();
}
