//! WAL checkpoints, and the WAL restart that follows one, kept off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, and a
//! checkpoint syncs the WAL and the database file: tens of milliseconds on an ordinary
//! disk, during which the writer holds every transition and event behind it. So the
//! writer's threshold is raised to a safety net and this task checkpoints from its own
//! connection instead. A PASSIVE checkpoint never blocks the writer: WAL mode lets one
//! connection append while another copies frames back into the database.
//!
//! # The restart
//!
//! Once a checkpoint has copied the whole WAL back, the next transaction to write starts
//! the WAL over from its first frame, and SQLite syncs the new WAL header before going on
//! (even with `synchronous = NORMAL`: an unsynced header could let a power loss corrupt
//! the database). Left to the writer, that sync would land on the first event after every
//! quiet spell — which is exactly when a failover happens. So after a complete checkpoint
//! this task makes that first write itself (it counts restarts in `meta`) and pays the sync
//! here; the writer then appends to a WAL that holds a frame nobody has copied back, and
//! never restarts it.
//!
//! The task checkpoints only once the WAL has been quiet for a whole tick (or has been
//! written for [`MAX_DEFERRAL`] without a pause), so its own short write transaction is
//! unlikely to meet one of the writer's; and an idle daemon does nothing at all.

use super::error::StoreError;
use super::open::connect_checkpointer;
use super::types::StoreOptions;
use sqlx::{Row, SqliteConnection};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the checkpointer looks at the WAL. Short enough that the WAL stays small (a
/// burst of events is a few hundred KB), long enough to be invisible on an idle daemon.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How long a WAL written without a quiet tick waits for its checkpoint: under a steady
/// flow of events the WAL must still be copied back before it grows large.
pub(crate) const MAX_DEFERRAL: Duration = Duration::from_secs(10);

/// Checkpoints every [`CHECKPOINT_EVERY`] until aborted. Failures are reported once per
/// episode: while the database is unwritable the writer reports the outage already.
pub(crate) async fn run_checkpointer(path: Arc<Path>, opts: StoreOptions) {
    let mut conn: Option<SqliteConnection> = None;
    let mut wal = WalWatch::new(Instant::now());
    let mut failing = false;
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if conn.is_none() {
            match connect_checkpointer(&path, &opts).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    report_failure(&path, &e, &mut failing);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        match wal.step(c, &path, Instant::now()).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!(path = %path.display(), "WAL checkpoints work again");
            }
            Ok(_) => {}
            Err(e) => {
                report_failure(&path, &e, &mut failing);
                // A connection that failed may be stuck in a bad state: open a new one.
                conn = None;
            }
        }
    }
}

fn report_failure(path: &Path, error: &StoreError, failing: &mut bool) {
    if !*failing {
        tracing::warn!(path = %path.display(), %error, "cannot checkpoint the WAL; retrying every second (the writer checkpoints itself past ~40 MB)");
    }
    *failing = true;
}

/// What one look at the WAL did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing was written since the last complete checkpoint.
    Settled,
    /// Written since the last look: waiting for a quiet tick.
    Deferred,
    /// Checkpointed, but readers kept part of the WAL from being copied back (or the
    /// writer wrote meanwhile): tried again next tick.
    Partial,
    /// Checkpointed completely and restarted the WAL.
    Restarted,
}

/// The checkpointer's view of the WAL between ticks.
#[derive(Debug)]
pub(crate) struct WalWatch {
    /// `PRAGMA data_version` at the last look: it changes when another connection commits.
    seen_version: Option<i64>,
    /// When the WAL was first written after the last complete checkpoint; `None` when
    /// everything in it has been copied back and the WAL restarted.
    dirty_since: Option<Instant>,
}

impl WalWatch {
    /// A watch that knows nothing of the WAL yet, so it checkpoints at the first quiet tick.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            seen_version: None,
            dirty_since: Some(now),
        }
    }

    pub(crate) async fn step(
        &mut self,
        conn: &mut SqliteConnection,
        path: &Arc<Path>,
        now: Instant,
    ) -> Result<Step, StoreError> {
        let db = |e: sqlx::Error| StoreError::from_sqlx(path, &e);
        let version = data_version(conn).await.map_err(db)?;
        let written = self.seen_version != Some(version);
        self.seen_version = Some(version);
        if written {
            let since = *self.dirty_since.get_or_insert(now);
            if now.duration_since(since) < MAX_DEFERRAL {
                return Ok(Step::Deferred);
            }
        } else if self.dirty_since.is_none() {
            return Ok(Step::Settled);
        }

        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        let busy: i64 = row.try_get(0).map_err(db)?;
        let frames: i64 = row.try_get(1).map_err(db)?;
        let copied: i64 = row.try_get(2).map_err(db)?;
        if busy != 0 || copied < frames {
            return Ok(Step::Partial);
        }
        // Every frame is in the database file: this write starts the WAL over and syncs
        // its header here rather than in the writer's next transaction. It must change a
        // value (SQLite writes nothing for an update to the same value), so it counts the
        // restarts. BEGIN IMMEDIATE takes the write lock first, so meeting the writer means
        // waiting (busy_timeout), not failing on a stale snapshot.
        sqlx::raw_sql(
            "BEGIN IMMEDIATE; \
             INSERT INTO meta (key, value) VALUES ('wal_restarts', 1) \
                 ON CONFLICT (key) DO UPDATE SET value = value + 1; \
             COMMIT",
        )
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        // A commit of the writer's between the checkpoint and this write is not copied
        // back yet: stay dirty and look again next tick.
        let after = data_version(conn).await.map_err(db)?;
        if after != version {
            self.seen_version = Some(after);
            return Ok(Step::Partial);
        }
        self.dirty_since = None;
        Ok(Step::Restarted)
    }
}

async fn data_version(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
}
