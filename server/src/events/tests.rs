//! Tests of watch streams against a real store: replay then live with no gap and no
//! duplicate, filters, pruned and ahead positions, slow watchers, shutdown.

use super::{EventBus, EventStream, WatchError, WatchRequest};
use crate::store::tests::{create, eventually, fixture, options, seqs, stored_events, transition};
use crate::store::{Store, StoreOptions};
use futures::StreamExt;
use havip_proto::v1;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const PATIENCE: Duration = Duration::from_secs(60);

/// The next item, failing the test rather than hanging.
async fn next(stream: &mut EventStream) -> Option<Result<v1::Event, WatchError>> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream yielded nothing for a minute")
}

async fn take_seqs(stream: &mut EventStream, n: usize) -> Vec<u64> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match next(stream).await {
            Some(Ok(event)) => got.push(event.seq),
            other => panic!("after {got:?}: {other:?}"),
        }
    }
    got
}

fn watch(after_seq: Option<u64>) -> WatchRequest {
    WatchRequest {
        after_seq,
        ..Default::default()
    }
}

async fn open_with(path: &std::path::Path, buffer: usize) -> (Store, EventBus) {
    Store::open(StoreOptions {
        subscriber_buffer: buffer,
        ..options(path)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn live_only_watchers_see_what_is_published_after_they_subscribe() {
    let fx = fixture();
    let (store, bus) = Store::open(options(&fx.path)).await.unwrap();
    for tag in 0..5 {
        store.record_transition(transition("web", tag));
    }
    store.flush().await.unwrap();
    assert_eq!(bus.last_published_seq(), 5);

    let mut live = bus.subscribe(watch(None)).unwrap();
    let mut from_start = bus.subscribe(watch(Some(0))).unwrap();
    assert_eq!(bus.subscriber_count(), 2);
    for tag in 5..8 {
        store.record_transition(transition("web", tag));
    }
    assert_eq!(take_seqs(&mut live, 3).await, [6, 7, 8]);
    assert_eq!(
        take_seqs(&mut from_start, 8).await,
        (1..=8).collect::<Vec<_>>()
    );

    drop(live);
    assert_eq!(
        bus.subscriber_count(),
        1,
        "dropping a stream unregisters it"
    );
    store.close().await.unwrap();
    assert!(matches!(
        next(&mut from_start).await,
        Some(Err(WatchError::ShuttingDown))
    ));
    assert!(next(&mut from_start).await.is_none());
    assert!(matches!(
        bus.subscribe(watch(None)),
        Err(WatchError::ShuttingDown)
    ));
}

#[tokio::test]
async fn instance_and_kind_filters_apply_to_replay_and_live() {
    let fx = fixture();
    let (store, bus) = Store::open(options(&fx.path)).await.unwrap();
    let started = v1::DaemonEvent {
        version: "test".into(),
        detail: String::new(),
    };
    // Seqs: 1 daemon, 2 create a, 3 create b, 4 a, 5 b, 6 a.
    store.record_daemon_event(v1::EventKind::DaemonStarted, started.clone());
    store
        .commit_config(create("a", "eth0", 1, 1))
        .await
        .unwrap();
    store
        .commit_config(create("b", "eth0", 2, 2))
        .await
        .unwrap();
    for (i, name) in ["a", "b", "a"].into_iter().enumerate() {
        store.record_transition(transition(name, u32::try_from(i).unwrap()));
    }
    store.flush().await.unwrap();

    let subscribe = |instances: &[&str], kinds: &[v1::EventKind]| {
        bus.subscribe(WatchRequest {
            after_seq: Some(0),
            instances: instances.iter().map(|s| (*s).to_owned()).collect(),
            kinds: kinds.to_vec(),
        })
        .unwrap()
    };
    let mut a = subscribe(&["a"], &[]);
    let mut changes = subscribe(&[], &[v1::EventKind::StateChanged]);
    let mut a_changes = subscribe(&["a"], &[v1::EventKind::StateChanged]);
    let mut daemon = subscribe(&[], &[v1::EventKind::DaemonStarted]);
    let mut two = subscribe(
        &["a", "b"],
        &[v1::EventKind::InstanceCreated, v1::EventKind::StateChanged],
    );

    // Live: 7 b, 8 a, 9 daemon.
    store.record_transition(transition("b", 3));
    store.record_transition(transition("a", 4));
    store.record_daemon_event(v1::EventKind::DaemonStarted, started);

    assert_eq!(take_seqs(&mut a, 4).await, [2, 4, 6, 8]);
    assert_eq!(take_seqs(&mut changes, 5).await, [4, 5, 6, 7, 8]);
    assert_eq!(take_seqs(&mut a_changes, 3).await, [4, 6, 8]);
    assert_eq!(take_seqs(&mut daemon, 2).await, [1, 9]);
    assert_eq!(take_seqs(&mut two, 7).await, [2, 3, 4, 5, 6, 7, 8]);
    // Nothing else was delivered: the next item is the end of the stream.
    store.close().await.unwrap();
    for stream in [&mut a, &mut changes, &mut a_changes, &mut daemon, &mut two] {
        assert!(matches!(
            next(stream).await,
            Some(Err(WatchError::ShuttingDown))
        ));
    }
}

/// A dual-master report is an event of its instance: stored with its payload, replayed and
/// delivered live to a watcher of that kind, like tracker changes.
#[tokio::test]
async fn dual_master_reports_are_stored_replayed_and_delivered_live() {
    let fx = fixture();
    let (store, bus) = Store::open(options(&fx.path)).await.unwrap();
    let dual = v1::DualMaster {
        peer_address: "10.0.0.2".into(),
        peer_priority: 100,
        priority: 150,
        outcome: v1::DualMasterOutcome::StayedMaster as i32,
    };
    store.record_transition(transition("web", 0));
    store.record_dual_master("web", dual.clone());
    store.flush().await.unwrap();
    let stored = stored_events(&fx.path).await;
    assert_eq!(seqs(&stored), [1, 2]);
    assert_eq!(stored[1].kind, v1::EventKind::DualMaster as i32);
    assert_eq!(stored[1].instance, "web");
    assert!(stored[1].time.is_some());
    assert_eq!(
        stored[1].payload,
        Some(v1::event::Payload::DualMaster(dual.clone()))
    );

    let mut duals = bus
        .subscribe(WatchRequest {
            after_seq: Some(0),
            instances: vec!["web".into()],
            kinds: vec![v1::EventKind::DualMaster],
        })
        .unwrap();
    let stepped_down = v1::DualMaster {
        outcome: v1::DualMasterOutcome::SteppedDown as i32,
        ..dual.clone()
    };
    store.record_transition(transition("web", 1));
    store.record_dual_master("web", stepped_down.clone());
    let mut got = Vec::new();
    for _ in 0..2 {
        match next(&mut duals).await {
            Some(Ok(e)) => got.push((e.seq, e.payload)),
            other => panic!("after {got:?}: {other:?}"),
        }
    }
    assert_eq!(
        got,
        [
            (2, Some(v1::event::Payload::DualMaster(dual))),
            (4, Some(v1::event::Payload::DualMaster(stepped_down))),
        ]
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_after_seq_older_than_the_oldest_kept_is_refused_with_the_oldest() {
    let fx = fixture();
    let (store, bus) = Store::open(options(&fx.path)).await.unwrap();
    for tag in 0..10 {
        store.record_transition(transition("web", tag));
    }
    store.flush().await.unwrap();
    // Transitions carry the time of recording; a cutoff in the future prunes all ten.
    let report = store
        .prune_older_than(SystemTime::now() + Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.events, 10);
    for tag in 10..15 {
        store.record_transition(transition("web", tag));
    }
    store.flush().await.unwrap();
    assert_eq!(store.oldest_kept_seq().await.unwrap(), 11);

    for after_seq in [0, 5, 9] {
        let mut stream = bus.subscribe(watch(Some(after_seq))).unwrap();
        match next(&mut stream).await {
            Some(Err(err @ WatchError::Pruned { oldest_kept: 11 })) => {
                assert!(err.to_string().contains("after_seq=10"), "{err}");
            }
            other => panic!("after_seq {after_seq}: {other:?}"),
        }
        assert!(
            next(&mut stream).await.is_none(),
            "the stream ends after Pruned"
        );
    }
    let mut stream = bus.subscribe(watch(Some(10))).unwrap();
    assert_eq!(take_seqs(&mut stream, 5).await, [11, 12, 13, 14, 15]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_after_seq_beyond_the_newest_event_is_refused() {
    let fx = fixture();
    let (store, bus) = Store::open(options(&fx.path)).await.unwrap();
    store.record_transition(transition("web", 0));
    store.flush().await.unwrap();
    assert!(bus.subscribe(watch(Some(1))).is_ok());
    match bus.subscribe(watch(Some(2))) {
        Err(WatchError::Ahead {
            after_seq: 2,
            last_seq: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
    store.close().await.unwrap();
}

/// A watcher slot (the API's `--max-watchers` permit) is held while the bus feeds the
/// stream, and given back when the watcher is cut off, though its stream is never read
/// again, and when a stream is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_or_dropped_watcher_gives_its_slot_back() {
    const BUFFER: usize = 4;
    let fx = fixture();
    let (store, bus) = open_with(&fx.path, BUFFER).await;
    let slots = Arc::new(tokio::sync::Semaphore::new(2));
    let take = || Arc::clone(&slots).try_acquire_owned().unwrap();
    let stuck = bus.subscribe_holding(watch(None), take()).unwrap();
    let dropped = bus.subscribe_holding(watch(None), take()).unwrap();
    assert_eq!(slots.available_permits(), 0);
    drop(dropped);
    assert_eq!(
        slots.available_permits(),
        1,
        "a dropped stream's slot is back"
    );

    for tag in 0..10 {
        store.record_transition(transition("web", tag));
    }
    store.flush().await.unwrap();
    assert_eq!(bus.subscriber_count(), 0, "the stuck watcher was cut off");
    assert_eq!(
        slots.available_permits(),
        2,
        "its slot is back while its stream still exists"
    );
    drop(stuck);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_is_cut_off_without_slowing_anyone() {
    const BUFFER: usize = 16;
    const EVENTS: u32 = 200;
    let fx = fixture();
    let (store, bus) = open_with(&fx.path, BUFFER).await;
    let slow = bus.subscribe(watch(None)).unwrap();
    let mut fast = bus.subscribe(watch(None)).unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            while let Some(Ok(event)) = fast.next().await {
                received.lock().unwrap().push(event.seq);
            }
        })
    };

    // Bursts smaller than the buffer, each published before the next, and the fast
    // watcher caught up before the next: it can never overflow. The slow one never reads.
    for burst in 0..EVENTS / 10 {
        for tag in burst * 10..burst * 10 + 10 {
            store.record_transition(transition("web", tag));
        }
        // The writer is not held up by the slow watcher: this returns.
        store.flush().await.unwrap();
        let want = usize::try_from(burst * 10 + 10).unwrap();
        eventually("the fast watcher to catch up", || {
            let received = Arc::clone(&received);
            async move { received.lock().unwrap().len() == want }
        })
        .await;
    }
    assert_eq!(
        *received.lock().unwrap(),
        (1..=u64::from(EVENTS)).collect::<Vec<_>>()
    );
    assert_eq!(bus.subscriber_count(), 1, "the slow watcher was removed");

    // The slow watcher gets what was buffered, then where to resume, then the end.
    let mut slow = slow;
    let buffered = u64::try_from(BUFFER).unwrap();
    assert_eq!(
        take_seqs(&mut slow, BUFFER).await,
        (1..=buffered).collect::<Vec<_>>()
    );
    match next(&mut slow).await {
        Some(Err(WatchError::FellBehind { resume_after })) => assert_eq!(resume_after, buffered),
        other => panic!("{other:?}"),
    }
    assert!(next(&mut slow).await.is_none());

    // Resuming where it says loses nothing.
    let mut resumed = bus.subscribe(watch(Some(buffered))).unwrap();
    let rest = take_seqs(
        &mut resumed,
        usize::try_from(u64::from(EVENTS) - buffered).unwrap(),
    )
    .await;
    assert_eq!(rest, (buffered + 1..=u64::from(EVENTS)).collect::<Vec<_>>());
    store.close().await.unwrap();
    reader.await.unwrap();
}

/// A small deterministic generator: the join points still vary with scheduling.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

type FilterSpec = (&'static [&'static str], &'static [v1::EventKind]);

const FILTERS: &[FilterSpec] = &[
    (&[], &[]),
    (&["a"], &[]),
    (&[], &[v1::EventKind::StateChanged]),
    (&["b", "c"], &[v1::EventKind::StateChanged]),
    (
        &[],
        &[v1::EventKind::InstanceCreated, v1::EventKind::DaemonStarted],
    ),
];

/// The test's own reading of a filter, independent of the bus's.
fn wanted(filter: FilterSpec, event: &v1::Event) -> bool {
    let (instances, kinds) = filter;
    (instances.is_empty() || instances.contains(&event.instance.as_str()))
        && (kinds.is_empty() || kinds.iter().any(|k| *k as i32 == event.kind))
}

struct Watcher {
    after_seq: Option<u64>,
    filter: FilterSpec,
    received: Arc<Mutex<Vec<u64>>>,
    resumes: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Watches from `after_seq`, and on FellBehind resumes where it was told to, as a
    /// client would.
    fn spawn(bus: EventBus, after_seq: Option<u64>, filter: FilterSpec) -> Watcher {
        let received = Arc::new(Mutex::new(Vec::new()));
        let resumes = Arc::new(Mutex::new(0));
        let task = {
            let received = Arc::clone(&received);
            let resumes = Arc::clone(&resumes);
            tokio::spawn(async move {
                let mut from = after_seq;
                loop {
                    let mut stream = bus
                        .subscribe(WatchRequest {
                            after_seq: from,
                            instances: filter.0.iter().map(|s| (*s).to_owned()).collect(),
                            kinds: filter.1.to_vec(),
                        })
                        .unwrap();
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(event) => {
                                assert!(wanted(filter, &event), "{filter:?} let {event:?} through");
                                received.lock().unwrap().push(event.seq);
                            }
                            Err(WatchError::FellBehind { resume_after }) => {
                                if let Some(last) = received.lock().unwrap().last() {
                                    assert_eq!(
                                        resume_after, *last,
                                        "resume after the last delivered"
                                    );
                                }
                                from = Some(resume_after);
                                *resumes.lock().unwrap() += 1;
                            }
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                }
            })
        };
        Watcher {
            after_seq,
            filter,
            received,
            resumes,
            task,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_has_no_gap_and_no_duplicate_while_events_keep_coming() {
    const EVENTS: u32 = 3000;
    const WATCHERS: usize = 24;
    let fx = fixture();
    // A small buffer, so that some watchers also fall behind and resume.
    let (store, bus) = open_with(&fx.path, 64).await;
    let producer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                match i % 100 {
                    0 => {
                        let vrid = u8::try_from(i / 100 + 1).unwrap();
                        let name = format!("x{i}");
                        store
                            .commit_config(create(&name, "eth9", vrid, u64::from(i)))
                            .await
                            .unwrap();
                    }
                    50 => store.record_daemon_event(
                        v1::EventKind::DaemonStarted,
                        v1::DaemonEvent::default(),
                    ),
                    _ => store.record_transition(transition(["a", "b", "c"][(i % 3) as usize], i)),
                }
                // Paced, so that watchers join all along the way, with bursts that overflow
                // the buffer of some (they must resume without a gap).
                let burst = (i / 500) % 2 == 1;
                if i % 20 == 0 && !burst {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            store.flush().await.unwrap();
        })
    };

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut watchers = Vec::new();
    while watchers.len() < WATCHERS && (!producer.is_finished() || watchers.len() < 4) {
        let last = bus.last_published_seq();
        let after_seq = match rng.below(4) {
            0 => None,
            _ => Some(rng.below(last + 1)),
        };
        let filter = FILTERS[usize::try_from(rng.below(FILTERS.len() as u64)).unwrap()];
        watchers.push(Watcher::spawn(bus.clone(), after_seq, filter));
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    }
    producer.await.unwrap();

    let all = stored_events(&fx.path).await;
    assert_eq!(seqs(&all), (1..=u64::from(EVENTS)).collect::<Vec<_>>());
    let mut replayed = 0;
    for (i, w) in watchers.iter_mut().enumerate() {
        let start = match w.after_seq {
            Some(after) => after + 1,
            // Live-only: from whatever it saw first.
            None => w
                .received
                .lock()
                .unwrap()
                .first()
                .copied()
                .unwrap_or(u64::MAX),
        };
        let expected: Vec<u64> = all
            .iter()
            .filter(|e| e.seq >= start && wanted(w.filter, e))
            .map(|e| e.seq)
            .collect();
        eventually(
            &format!("watcher {i} to receive {} events", expected.len()),
            || {
                let done =
                    w.received.lock().unwrap().len() >= expected.len() || w.task.is_finished();
                async move { done }
            },
        )
        .await;
        if w.task.is_finished() {
            (&mut w.task).await.unwrap();
        }
        let received = w.received.lock().unwrap().clone();
        assert_eq!(
            received,
            expected,
            "watcher {i} (after_seq {:?}, filter {:?}, resumed {} times)",
            w.after_seq,
            w.filter,
            w.resumes.lock().unwrap()
        );
        if w.after_seq.is_some_and(|a| a + 1 < u64::from(EVENTS)) {
            replayed += 1;
        }
    }
    assert!(replayed > 0, "some watchers started with a replay");
    for w in watchers {
        w.task.abort();
    }
    store.close().await.unwrap();
}

#[test]
fn handles_and_streams_can_move_between_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + Unpin + 'static>() {}
    send_sync::<Store>();
    send_sync::<EventBus>();
    send::<EventStream>();
}
