//! WAL checkpoints, kept off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, and a
//! checkpoint syncs the WAL and the database file: tens of milliseconds on an ordinary
//! disk, during which the writer holds every transition and event behind it. So the
//! writer's threshold is raised to a safety net and this task checkpoints from its own
//! connection instead. A PASSIVE checkpoint never blocks the writer: WAL mode lets one
//! connection append while another copies frames back into the database.

use super::error::StoreError;
use super::open::connect_checkpointer;
use super::types::StoreOptions;
use sqlx::SqliteConnection;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often the WAL is copied back into the database. Short enough that the WAL stays
/// small (a burst of events is a few hundred KB), long enough to be invisible on an idle
/// daemon.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints every [`CHECKPOINT_EVERY`] until aborted. Failures are reported once per
/// episode: while the database is unwritable the writer reports the outage already.
pub(crate) async fn run_checkpointer(path: Arc<Path>, opts: StoreOptions) {
    let mut conn: Option<SqliteConnection> = None;
    let mut failing = false;
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = match conn.as_mut() {
            Some(c) => checkpoint(c, &path).await,
            None => match connect_checkpointer(&path, &opts).await {
                Ok(mut c) => {
                    let r = checkpoint(&mut c, &path).await;
                    conn = Some(c);
                    r
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(path = %path.display(), "WAL checkpoints work again");
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(path = %path.display(), error = %e, "cannot checkpoint the WAL; retrying every second (the writer checkpoints itself past ~40 MB)");
                }
                failing = true;
                // A connection that failed may be stuck in a bad state: open a new one.
                conn = None;
            }
        }
    }
}

async fn checkpoint(conn: &mut SqliteConnection, path: &Arc<Path>) -> Result<(), StoreError> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_sqlx(path, &e))
}
