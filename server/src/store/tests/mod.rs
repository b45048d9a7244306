//! Tests of the store against real SQLite files in temporary folders, and the helpers the
//! event bus's tests share.

mod checkpoint;
mod config;
mod faults;
mod groups;
mod history;
mod open;
mod prune;
mod record;

use super::{ConfigCommit, InstanceIdentity, StoreError, StoreOptions};
use havip_proto::v1;
use prost::Message;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row, SqliteConnection};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// A temporary folder (removed on drop) and a database path two levels below it, so that
/// `open` has folders to create.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/havip/havip.db");
    Fixture { _dir: dir, path }
}

/// Defaults, with a short busy_timeout so that lock tests fail fast.
pub(crate) fn options(path: &Path) -> StoreOptions {
    StoreOptions {
        busy_timeout: Duration::from_millis(200),
        ..StoreOptions::new(path)
    }
}

/// A transition tagged with `tag` in its priority field, to check order.
pub(crate) fn transition(instance: &str, tag: u32) -> v1::Transition {
    v1::Transition {
        instance: instance.into(),
        from: v1::State::Backup as i32,
        to: v1::State::Master as i32,
        reason: Some(v1::TransitionReason {
            code: "master_down_timer".into(),
            description: "no advert for 3.6 s".into(),
            peer_address: String::new(),
        }),
        priority: tag,
        master_address: "10.0.0.1".into(),
        time: None,
        seq: 0,
    }
}

pub(crate) fn spec(interface: &str, vrid: u32, priority: u32) -> v1::InstanceSpec {
    v1::InstanceSpec {
        interface: interface.into(),
        vrid,
        version: Some(3),
        priority: Some(priority),
        virtual_addresses: vec!["10.0.0.100/24".into()],
        ..Default::default()
    }
}

pub(crate) fn create(name: &str, interface: &str, vrid: u8, revision: u64) -> ConfigCommit {
    ConfigCommit {
        kind: v1::ChangeKind::Create,
        instance: name.into(),
        revision,
        actor: "uid:0".into(),
        comment: format!("create {name}"),
        changed_fields: vec![],
        old_spec: None,
        new_spec: Some(spec(interface, u32::from(vrid), 100)),
        identity: Some(InstanceIdentity {
            interface: interface.into(),
            vrid,
            family: 4,
        }),
        time: SystemTime::now(),
    }
}

/// A connection of the test's own, as another process would have.
pub(crate) async fn raw_connection(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap()
}

/// Every stored event, in seq order, read behind the store's back.
pub(crate) async fn stored_events(path: &Path) -> Vec<v1::Event> {
    let mut conn = raw_connection(path).await;
    let rows = sqlx::query("SELECT seq, body FROM events ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let seq: i64 = row.get("seq");
            let event = v1::Event::decode(row.get::<Vec<u8>, _>("body").as_slice()).unwrap();
            assert_eq!(
                event.seq,
                u64::try_from(seq).unwrap(),
                "body and seq column agree"
            );
            event
        })
        .collect()
}

/// Makes the events with `seqs` (all when empty) look recorded `age` ago, as if the clock
/// had moved on: retention goes by the time of recording.
pub(crate) async fn age_events(path: &Path, seqs: &[u64], age: Duration) {
    let at = super::time::to_micros(SystemTime::now() - age);
    let mut conn = raw_connection(path).await;
    if seqs.is_empty() {
        sqlx::query("UPDATE events SET at = ?")
            .bind(at)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for seq in seqs {
        sqlx::query("UPDATE events SET at = ? WHERE seq = ?")
            .bind(at)
            .bind(i64::try_from(*seq).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

pub(crate) fn seqs(events: &[v1::Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Waits for `condition`, checking every 20 ms, failing after a minute: no timing is
/// asserted, the deadline only stops a hung test.
pub(crate) async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
