//! The checkpointer: it copies the WAL back once the writer is quiet, and starts the WAL
//! over itself, so that the writer's next transaction appends instead of restarting the
//! WAL (and syncing its header) on the event path.

use super::super::checkpoint::{MAX_DEFERRAL, Step, WalWatch};
use super::super::open::{connect_checkpointer, connect_writer};
use super::*;
use std::sync::Arc;

/// The WAL header's checkpoint sequence and salts: they change exactly when the WAL is
/// started over.
fn wal_generation(db: &Path) -> [u8; 12] {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let bytes = std::fs::read(wal).unwrap();
    bytes[12..24].try_into().unwrap()
}

struct Db {
    _fx: Fixture,
    path: Arc<Path>,
    writer: SqliteConnection,
    checkpointer: SqliteConnection,
    writes: i64,
}

impl Db {
    async fn new() -> Self {
        let fx = fixture();
        std::fs::create_dir_all(fx.path.parent().unwrap()).unwrap();
        let path: Arc<Path> = Arc::from(fx.path.as_path());
        let writer = connect_writer(&path, &options(&fx.path)).await.unwrap();
        let checkpointer = connect_checkpointer(&path, &options(&fx.path))
            .await
            .unwrap();
        Self {
            _fx: fx,
            path,
            writer,
            checkpointer,
            writes: 0,
        }
    }

    /// A transaction of the writer's.
    async fn write(&mut self) {
        self.writes += 1;
        sqlx::query("UPDATE meta SET value = ? WHERE key = 'last_revision'")
            .bind(self.writes)
            .execute(&mut self.writer)
            .await
            .unwrap();
    }

    async fn step(&mut self, wal: &mut WalWatch, at: Instant) -> Step {
        wal.step(&mut self.checkpointer, &self.path, at)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn after_a_quiet_tick_the_wal_is_copied_back_and_restarted_off_the_writers_path() {
    let mut db = Db::new().await;
    let t0 = Instant::now();
    let mut wal = WalWatch::new(t0);
    db.write().await;

    assert_eq!(db.step(&mut wal, t0).await, Step::Deferred, "just written");
    let before = wal_generation(&db.path);
    assert_eq!(db.step(&mut wal, t0).await, Step::Restarted, "quiet since");
    let restarted = wal_generation(&db.path);
    assert_ne!(restarted, before, "the checkpointer started the WAL over");
    assert_eq!(
        db.step(&mut wal, t0).await,
        Step::Settled,
        "nothing new: an idle daemon does nothing"
    );

    // The point of it all: the writer's next transaction appends to the WAL. Without the
    // checkpointer's restart write it would start the WAL over (and sync its header).
    db.write().await;
    db.write().await;
    assert_eq!(wal_generation(&db.path), restarted);

    assert_eq!(db.step(&mut wal, t0).await, Step::Deferred);
    assert_eq!(db.step(&mut wal, t0).await, Step::Restarted);
    assert_ne!(wal_generation(&db.path), restarted);
    db.write().await;
    let restarts: i64 = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'wal_restarts'")
        .fetch_one(&mut db.writer)
        .await
        .unwrap();
    assert_eq!(restarts, 2, "each restart is counted");
}

#[tokio::test]
async fn a_wal_written_without_pause_is_still_checkpointed_after_the_longest_deferral() {
    let mut db = Db::new().await;
    let t0 = Instant::now();
    let mut wal = WalWatch::new(t0);
    db.write().await;
    assert_eq!(db.step(&mut wal, t0).await, Step::Deferred);
    db.write().await;
    let almost = t0 + MAX_DEFERRAL - Duration::from_millis(1);
    assert_eq!(db.step(&mut wal, almost).await, Step::Deferred);
    db.write().await;
    let generation = wal_generation(&db.path);
    assert_eq!(
        db.step(&mut wal, t0 + MAX_DEFERRAL).await,
        Step::Restarted,
        "written at every tick, but waiting any longer would let the WAL grow"
    );
    assert_ne!(wal_generation(&db.path), generation);
}

#[tokio::test]
async fn a_reader_holding_old_frames_makes_the_checkpoint_partial_until_it_lets_go() {
    let mut db = Db::new().await;
    let t0 = Instant::now();
    let mut wal = WalWatch::new(t0);
    db.write().await;
    assert_eq!(db.step(&mut wal, t0).await, Step::Deferred);
    assert_eq!(db.step(&mut wal, t0).await, Step::Restarted);

    // A reader's snapshot predates the next write: those frames cannot be copied back.
    let mut reader = raw_connection(&db.path).await;
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'last_seq'")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    db.write().await;
    assert_eq!(db.step(&mut wal, t0).await, Step::Deferred);
    assert_eq!(db.step(&mut wal, t0).await, Step::Partial);
    assert_eq!(
        db.step(&mut wal, t0).await,
        Step::Partial,
        "still not all copied back: tried again, not taken as settled"
    );

    sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
    assert_eq!(db.step(&mut wal, t0).await, Step::Restarted);
}
