//! Storage faults end to end: the database of a master is locked by another process, fails
//! its writes as a read-only filesystem does (EROFS), or sits on a full disk. Meanwhile
//! config changes are refused with UNAVAILABLE and a message naming the file, the problem and
//! the remedy; VRRP keeps running (the pair fails over and back during the fault); the
//! transitions of the fault wait in memory and are written, with consecutive seqs and none
//! lost, once the fault is removed. Past `--max-queued-events` they are counted, and one
//! EVENTS_LOST event says how many.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::{self, transitions};
use havip_e2e::faults::{DbLock, Ext4, Tmpfs, WriteErrors, truncate_wal};
use havip_e2e::vrrp::{create, spec, status, wait_state};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, CreateInstanceRequest, State};
use std::time::{Duration, Instant};
use tonic::Code;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Locked,
    ReadOnly,
    DiskFull,
}

/// A fault in place; dropping it removes it.
enum Active {
    Locked(DbLock),
    ReadOnly(WriteErrors),
    DiskFull,
}

fn assert_consecutive(events: &[v1::Event], from: u64) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let want: Vec<u64> = (from..from + seqs.len() as u64).collect();
    assert_eq!(seqs, want, "event seqs are consecutive");
}

fn addr(h: &Host) -> String {
    h.ipv4
        .clone()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn member(d: &Daemon, me: &Host, other: &Host, priority: u32) {
    let mut s = spec(51, 3, priority, 100, "10.0.0.100/24");
    s.unicast_source = addr(me);
    s.unicast_peers = vec![addr(other)];
    create(d, "vip", s).await;
}

fn a_change() -> CreateInstanceRequest {
    CreateInstanceRequest {
        name: "during".into(),
        spec: Some(spec(60, 3, 100, 100, "10.0.0.160/24")),
        validate_only: false,
        comment: "made during a storage fault".into(),
    }
}

/// Takes eth0 of `host` down and up again: FAULT, then BACKUP and (with the higher
/// priority) MASTER again, while the peer takes over and gives back.
async fn fail_over_and_back(a: &Host, da: &Daemon, db: &Daemon) {
    let settle = Duration::from_secs(10);
    a.exec(&["ip", "link", "set", "eth0", "down"]);
    wait_state(da, "vip", State::Fault, settle).await;
    wait_state(db, "vip", State::Master, settle).await;
    a.exec(&["ip", "link", "set", "eth0", "up"]);
    wait_state(da, "vip", State::Master, settle).await;
    wait_state(db, "vip", State::Backup, settle).await;
}

async fn storage_fault(tag: &str, fault: Fault) {
    let mut lab = Lab::new(tag);
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    // Declared before the daemon, so the daemon is gone when it is unmounted.
    let disk = (fault == Fault::DiskFull).then(|| Tmpfs::mount(tag, "4m"));
    let db_file = disk.as_ref().map(|d| d.path.join("havip.db"));
    let extra: Vec<&str> = match &db_file {
        Some(f) => vec!["--db", f.to_str().unwrap()],
        None => vec![],
    };
    let mut da = Daemon::start_with(&a, "a", &extra);
    let db = Daemon::start(&b, "b");
    member(&da, &a, &b, 150).await;
    member(&db, &b, &a, 100).await;
    let settle = Duration::from_secs(10);
    wait_state(&da, "vip", State::Master, settle).await;
    wait_state(&db, "vip", State::Backup, settle).await;
    // Everything so far is written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = checks::events_after(&da, 0).await;
    assert_consecutive(&before, 1);
    let last_seq = before.last().unwrap().seq;
    let stored_before = transitions(&da, "vip").await.len();
    let sent_before = status(&da, "vip")
        .await
        .counters
        .unwrap_or_default()
        .adverts_sent;

    let active = match fault {
        Fault::Locked => Active::Locked(DbLock::take(&da.db_path()).await),
        Fault::ReadOnly => Active::ReadOnly(WriteErrors::inject(da.pid().unwrap(), "EROFS")),
        Fault::DiskFull => {
            truncate_wal(&da.db_path()).await;
            disk.as_ref().unwrap().fill();
            Active::DiskFull
        }
    };

    // A config change is refused, saying what is wrong and what to do.
    let asked = Instant::now();
    let err = da
        .instances()
        .await
        .create_instance(a_change())
        .await
        .unwrap_err();
    let refused_in = asked.elapsed();
    let msg = err.message().to_owned();
    eprintln!("{fault:?}: refused in {refused_in:?}: {err:?}");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let path = da.db_path();
    for want in [
        path.to_str().unwrap(),
        "the change was not made",
        "config changes are refused until it is fixed, VRRP keeps running",
    ] {
        assert!(
            msg.contains(want),
            "{fault:?}: {want:?} missing from {msg:?}"
        );
    }
    let (problem, remedy) = match fault {
        Fault::Locked => ("is locked", "another process holds a lock on it"),
        Fault::ReadOnly => ("has I/O errors", "mounted read-write"),
        Fault::DiskFull => ("is on a full disk", "free space on its filesystem"),
    };
    assert!(
        msg.contains(problem) && msg.contains(remedy),
        "{fault:?}: {msg:?}"
    );

    // VRRP goes on: the pair fails over and back, and A's adverts continue.
    fail_over_and_back(&a, &da, &db).await;
    let sent_during = status(&da, "vip")
        .await
        .counters
        .unwrap_or_default()
        .adverts_sent;
    assert!(
        sent_during > sent_before,
        "adverts continue during the fault"
    );
    // Reads still work, and show that A's transitions of the fault are not written yet.
    assert_eq!(
        transitions(&da, "vip").await.len(),
        stored_before,
        "the fault's transitions wait in memory"
    );

    let removed = Instant::now();
    match active {
        Active::Locked(lock) => lock.release().await,
        Active::ReadOnly(errors) => drop(errors),
        Active::DiskFull => disk.as_ref().unwrap().free(),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let landed = loop {
        let stored = transitions(&da, "vip").await;
        if stored.len() > stored_before && stored.last().map(|t| t.to) == Some(State::Master as i32)
        {
            break stored;
        }
        assert!(
            Instant::now() < deadline,
            "{fault:?}: the queued transitions were not written within 30 s; log:\n{}",
            da.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = removed.elapsed();
    let during: Vec<State> = landed[stored_before..]
        .iter()
        .map(|t| State::try_from(t.to).unwrap())
        .filter(|s| *s != State::Init)
        .collect();
    eprintln!(
        "{fault:?}: the fault's transitions {during:?} were written {took:?} after it was removed"
    );
    assert_eq!(
        during,
        [State::Fault, State::Backup, State::Master],
        "every transition of the fault, in order"
    );
    let after = checks::events_after(&da, last_seq).await;
    assert_consecutive(&after, last_seq + 1);
    assert!(
        !after
            .iter()
            .any(|e| e.kind == v1::EventKind::EventsLost as i32),
        "nothing was lost"
    );
    // The refused change was not made, and can be made now.
    da.instances()
        .await
        .create_instance(a_change())
        .await
        .unwrap();
    da.stop();
}

#[tokio::test]
async fn a_database_locked_by_another_process() {
    if netns_available() {
        storage_fault("stlock", Fault::Locked).await;
    }
}

#[tokio::test]
async fn a_database_that_cannot_be_written_as_on_a_read_only_filesystem() {
    if netns_available() {
        storage_fault("stro", Fault::ReadOnly).await;
    }
}

#[tokio::test]
async fn a_database_on_a_full_disk() {
    if netns_available() {
        storage_fault("stfull", Fault::DiskFull).await;
    }
}

/// The kernel remounts the database's filesystem read-only, as ext4 with errors=remount-ro
/// does after a disk error: config changes are refused as "read-only", VRRP goes on, and the
/// fault's transitions wait in memory. Such a filesystem cannot be made writable again while
/// havipd has its files open, so there is no recovery to see here (storage.rs's other cases
/// show it): at SIGTERM havipd tries for a few seconds, then stops and logs how many
/// transitions and events it could not write.
#[tokio::test]
async fn a_filesystem_the_kernel_remounted_read_only() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("stext4");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let fs = Ext4::mount("stext4");
    let db_file = fs.path.join("havip.db");
    let mut da = Daemon::start_with(&a, "a", &["--db", db_file.to_str().unwrap()]);
    let db = Daemon::start(&b, "b");
    member(&da, &a, &b, 150).await;
    member(&db, &b, &a, 100).await;
    let settle = Duration::from_secs(10);
    wait_state(&da, "vip", State::Master, settle).await;
    wait_state(&db, "vip", State::Backup, settle).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored_before = transitions(&da, "vip").await.len();

    fs.fail();
    let err = da
        .instances()
        .await
        .create_instance(a_change())
        .await
        .unwrap_err();
    eprintln!("read-only filesystem: {err:?}");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let msg = err.message();
    for want in [db_file.to_str().unwrap(), "VRRP keeps running"] {
        assert!(msg.contains(want), "{want:?} missing from {msg:?}");
    }
    // A filesystem the kernel marked read-only (SB_RDONLY) is named as such; ext4's newer
    // "emergency_ro" state is not visible to statvfs, and EROFS reaches SQLite as an I/O
    // error: the advice then names both.
    assert!(
        msg.contains("is read-only") || msg.contains("mounted read-write"),
        "{msg}"
    );
    fail_over_and_back(&a, &da, &db).await;
    assert_eq!(transitions(&da, "vip").await.len(), stored_before);
    da.stop();
    let log = da.log();
    assert!(
        log.contains("stopping with transitions and events that could not be written"),
        "{log}"
    );
}

/// With `--max-queued-events 4`, a fault that outlasts four transitions keeps the first
/// four and counts the rest: once the lock is gone they are written, followed by one
/// EVENTS_LOST event with the count, and the seqs have no hole.
#[tokio::test]
async fn past_the_queue_bound_events_are_counted_and_reported() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("stbound");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let mut da = Daemon::start_with(&a, "a", &["--max-queued-events", "4"]);
    create(&da, "vip", spec(51, 3, 100, 100, "10.0.0.100/24")).await;
    let settle = Duration::from_secs(10);
    wait_state(&da, "vip", State::Master, settle).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last_seq = checks::events_after(&da, 0).await.last().unwrap().seq;

    let lock = DbLock::take(&da.db_path()).await;
    let mut made = 0;
    for _ in 0..4 {
        // FAULT, then BACKUP and MASTER: three transitions a round.
        a.exec(&["ip", "link", "set", "eth0", "down"]);
        wait_state(&da, "vip", State::Fault, settle).await;
        a.exec(&["ip", "link", "set", "eth0", "up"]);
        wait_state(&da, "vip", State::Master, settle).await;
        made += 3;
    }
    lock.release().await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = checks::events_after(&da, last_seq).await;
        if after
            .iter()
            .any(|e| e.kind == v1::EventKind::EventsLost as i32)
        {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "no EVENTS_LOST; log:\n{}",
            da.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_consecutive(&after, last_seq + 1);
    let kinds: Vec<i32> = after.iter().map(|e| e.kind).collect();
    let state_changed = v1::EventKind::StateChanged as i32;
    assert_eq!(
        &kinds[..5],
        &[
            state_changed,
            state_changed,
            state_changed,
            state_changed,
            v1::EventKind::EventsLost as i32
        ],
        "the first four kept, then the marker: {after:?}"
    );
    let Some(v1::event::Payload::Daemon(marker)) = &after[4].payload else {
        panic!("no detail in {:?}", after[4]);
    };
    let lost: usize = marker
        .detail
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {:?}", marker.detail));
    eprintln!("EVENTS_LOST: {:?}", marker.detail);
    assert!(
        marker.detail.contains("events were not recorded"),
        "{:?}",
        marker.detail
    );
    // Some transitions may go through INIT; at least the ones counted above happened.
    assert!(lost + 4 >= made, "{lost} lost + 4 kept < {made} made");
    da.stop();
}
