//! Retention: deleting events and transitions older than `event_retention`, a chunk per
//! transaction so the writer's other work never waits long behind it, and the task that
//! asks the writer for it at open and every hour.

use super::codec::to_u64;
use super::error::StoreError;
use super::time::to_micros;
use super::types::PruneReport;
use super::writer::Request;
use sqlx::{Connection, SqliteConnection};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::WeakUnboundedSender;

/// Rows deleted per table per transaction.
const CHUNK: i64 = 5000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes up to one chunk of events and of transitions older than `cutoff`. Returns what
/// it deleted and whether anything older than `cutoff` is left.
///
/// Events go as a prefix: every event up to the newest one recorded before `cutoff`, lowest
/// seq first. Their recording times grow with seq except when the wall clock is stepped
/// back, but a replay relies on the kept seqs being contiguous, so no event is deleted while
/// a lower seq is kept. Transitions are history only and go by their own time.
pub(crate) async fn prune_chunk(
    conn: &mut SqliteConnection,
    path: &Arc<Path>,
    cutoff: SystemTime,
) -> Result<(PruneReport, bool), StoreError> {
    let db = |e: sqlx::Error| StoreError::from_sqlx(path, &e);
    let cutoff = to_micros(cutoff);
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let bounds: (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT MAX(seq) FROM events WHERE at < ?1), (SELECT MIN(seq) FROM events)",
    )
    .bind(cutoff)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let (events, events_left) = match bounds {
        (Some(newest_old), Some(oldest)) => {
            let upto = newest_old.min(oldest.saturating_add(CHUNK - 1));
            let done = sqlx::query("DELETE FROM events WHERE seq <= ?")
                .bind(upto)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            (done.rows_affected(), upto < newest_old)
        }
        _ => (0, false),
    };
    let done = sqlx::query(
        "DELETE FROM transitions WHERE seq IN \
         (SELECT seq FROM transitions WHERE at < ? ORDER BY seq LIMIT ?)",
    )
    .bind(cutoff)
    .bind(CHUNK)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let transitions = done.rows_affected();
    tx.commit().await.map_err(db)?;
    let transitions_left = transitions >= to_u64(path, "the chunk size", CHUNK)?;
    Ok((
        PruneReport {
            events,
            transitions,
        },
        events_left || transitions_left,
    ))
}

/// Asks the writer to prune at start and then every `PRUNE_EVERY`. Holds only a weak
/// sender, so that it never keeps the writer alive; it ends when the writer is gone.
pub(crate) async fn run_pruner(writer: WeakUnboundedSender<Request>, retention: Duration) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if writer
            .send(Request::Prune {
                cutoff,
                reply: None,
            })
            .is_err()
        {
            return;
        }
    }
}
