//! The store: havipd's SQLite database (sqlx, WAL) of instance config, the config audit
//! trail, the state transition log and the event log that watch streams replay.
//!
//! # One writer
//!
//! A single task (`writer.rs`) owns the one write connection; everything that writes goes
//! to it over a channel. It drains what is queued, writes it as one transaction (seqs are
//! assigned inside it, from `meta.last_seq + 1`, and `last_seq` is moved in the same
//! transaction), commits, answers the config changes in the batch, and only then publishes
//! the batch's events on the [`EventBus`]. So an event a watcher sees is already in the
//! database, and after a crash seqs neither repeat nor leave holes. Readers use a separate
//! small pool of read-only connections.
//!
//! # Durability
//!
//! A batch holding a config change is committed with `synchronous=FULL`: `commit_config`
//! returns Ok only once the change is on disk. Batches of transitions and events alone use
//! `synchronous=NORMAL`, which in WAL mode survives a crash of the process (kill -9) and
//! may lose the last transactions only on a power cut.
//!
//! # When the database fails
//!
//! `record_transition` and `record_daemon_event` never block and never fail: they queue.
//! When the database cannot be written (locked by another process, read-only, full, I/O
//! errors), the writer keeps what is queued in memory and retries with backoff (50 ms
//! doubling to 2 s), writing it in order once the database recovers. Config changes are
//! refused at once with an error for which [`StoreError::is_unavailable`] is true.
//!
//! The queue is bounded by [`StoreOptions::max_queued_events`] (default 100,000; a queued
//! transition takes a few hundred bytes, so some tens of MB): past it, new transitions and
//! events are not
//! queued but counted as lost. They never got a seq, so the seqs still have no hole, and
//! once the database recovers one `EVENT_KIND_EVENTS_LOST` event, at the position of the
//! first loss, says how many were lost. [`Store::stats`] reports the queue depth and the
//! losses.
//!
//! # Retention
//!
//! Events and transitions older than [`StoreOptions::event_retention`] are deleted at open
//! and every hour, events always as a prefix (lowest seqs first) so the kept seqs stay
//! contiguous. Config changes are the audit trail and are kept. `meta.last_seq` outlives
//! pruning, so seqs never restart.

mod batch;
mod checkpoint;
mod codec;
mod error;
mod open;
mod prune;
mod reader;
mod recording;
mod stats;
mod time;
mod token;
mod types;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

pub use error::{StoreError, Unavailable};
pub(crate) use reader::{EventsFilter, Reader};
pub use recording::RecordBatch;
pub use types::{
    ConfigCommit, HistoryQuery, InstanceIdentity, LatencyHistogram, Page, PruneReport,
    StoreOptions, StoreStats, StoredInstance, StoredSyncGroup, SyncGroupCommit,
};

use crate::events::EventBus;
use batch::{Op, Prepared, PreparedCommit, PreparedGroupCommit};
use codec::{redacted, spec_to_json, strings_to_json};
use havip_proto::v1;
use stats::Counters;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use writer::{Request, Writer};

/// A handle on the store. Clones share the one writer and read pool.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: Arc<Path>,
    writer: mpsc::UnboundedSender<Request>,
    reader: Reader,
    counters: Arc<Counters>,
    last_revision: u64,
    max_queued: usize,
    tasks: Mutex<Option<Tasks>>,
}

#[derive(Debug)]
struct Tasks {
    writer: JoinHandle<()>,
    pruner: JoinHandle<()>,
    checkpointer: JoinHandle<()>,
}

impl Store {
    /// Creates the folder if missing, opens or creates the file, sets the pragmas, applies
    /// the migrations, loads `last_seq` and `last_revision`, and starts the writer and the
    /// pruner. Returns the event bus the writer publishes to.
    pub async fn open(opts: StoreOptions) -> Result<(Store, EventBus), StoreError> {
        let path: Arc<Path> = Arc::from(opts.path.as_path());
        open::prepare_file(&path).await?;
        let mut conn = open::connect_writer(&path, &opts).await?;
        let (last_seq, last_revision) = batch::load_counters(&mut conn, &path).await?;
        let reader = Reader::new(
            open::connect_readers(&path, &opts).await?,
            Arc::clone(&path),
        );
        let counters = Arc::new(Counters::new(last_seq));
        let bus = EventBus::new(reader.clone(), last_seq, opts.subscriber_buffer.max(1));
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer::new(
            conn,
            opts.clone(),
            Arc::clone(&path),
            rx,
            bus.clone(),
            Arc::clone(&counters),
            last_seq,
        );
        let tasks = Tasks {
            writer: tokio::spawn(writer.run()),
            pruner: tokio::spawn(prune::run_pruner(tx.downgrade(), opts.event_retention)),
            checkpointer: tokio::spawn(checkpoint::run_checkpointer(
                Arc::clone(&path),
                opts.clone(),
            )),
        };
        tracing::info!(
            path = %path.display(),
            last_seq,
            last_revision,
            "opened the database"
        );
        let store = Store {
            inner: Arc::new(Inner {
                path,
                writer: tx,
                reader,
                counters,
                last_revision,
                max_queued: opts.max_queued_events.max(1),
                tasks: Mutex::new(Some(tasks)),
            }),
        };
        Ok((store, bus))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Every stored instance, by name.
    pub async fn load_instances(&self) -> Result<Vec<StoredInstance>, StoreError> {
        self.inner.reader.load_instances().await
    }

    /// Every stored sync group, by name, with its members in order.
    pub async fn load_sync_groups(&self) -> Result<Vec<StoredSyncGroup>, StoreError> {
        self.inner.reader.load_sync_groups().await
    }

    /// The highest revision committed, as loaded at open. The manager owns the counter from
    /// then on (+1 per change).
    pub fn last_revision(&self) -> u64 {
        self.inner.last_revision
    }

    /// Commits a config change durably (`synchronous=FULL`) before returning: in one
    /// transaction, the instance row is inserted, updated or deleted, a config_changes row
    /// and an INSTANCE_CREATED/UPDATED/DELETED event are written, and `meta` is moved on.
    /// Returns the event's seq. Fails at once, changing nothing, when the database cannot
    /// be written.
    pub async fn commit_config(&self, change: ConfigCommit) -> Result<u64, StoreError> {
        let prepared = Prepared::Instance(prepare(change)?);
        self.commit(prepared).await
    }

    /// Commits a sync group change durably, as [`Self::commit_config`] does: the group's
    /// rows, a config_changes row (instance '', sync_group set) and a SYNC_GROUP_CHANGED
    /// event, in one transaction. Returns the event's seq.
    pub async fn commit_sync_group(&self, change: SyncGroupCommit) -> Result<u64, StoreError> {
        let prepared = Prepared::Group(prepare_group(change)?);
        self.commit(prepared).await
    }

    async fn commit(&self, prepared: Prepared) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Request::Commit(Box::new(prepared), reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Queues a transition; never blocks. The writer gives it its seq and writes a
    /// transitions row and a STATE_CHANGED event carrying it. A transition without a time
    /// gets the time of this call.
    pub fn record_transition(&self, transition: v1::Transition) {
        let mut batch = RecordBatch::with_capacity(1);
        batch.transition(transition);
        self.record_batch(batch);
    }

    /// Queues a tracker change of `instance` (a TRACKER_CHANGED event); never blocks.
    pub fn record_tracker_change(&self, instance: &str, change: v1::TrackerChange) {
        let mut batch = RecordBatch::with_capacity(1);
        batch.tracker_change(instance, change);
        self.record_batch(batch);
    }

    /// Queues a dual-master report of `instance` (a DUAL_MASTER event); never blocks. The
    /// engine reports once per episode, so these are rare.
    pub fn record_dual_master(&self, instance: &str, dual: v1::DualMaster) {
        let mut batch = RecordBatch::with_capacity(1);
        batch.dual_master(instance, dual);
        self.record_batch(batch);
    }

    /// Queues a daemon event (DAEMON_STARTED, DAEMON_STOPPING, ...); never blocks.
    pub fn record_daemon_event(&self, kind: v1::EventKind, event: v1::DaemonEvent) {
        let mut batch = RecordBatch::with_capacity(1);
        batch.daemon_event(kind, event);
        self.record_batch(batch);
    }

    /// Queues a group of transitions and events, in order, in one message to the writer;
    /// never blocks. When the queue cannot take them all, the first ones are queued and the
    /// rest counted as lost.
    pub fn record_batch(&self, batch: RecordBatch) {
        let inner = &self.inner;
        let mut records = batch.records;
        let wanted = records.len();
        if wanted == 0 {
            return;
        }
        let before = inner.counters.queued.fetch_add(wanted, Ordering::AcqRel);
        let room = inner.max_queued.saturating_sub(before).min(wanted);
        let lost = wanted - room;
        if lost > 0 {
            inner.counters.queued.fetch_sub(lost, Ordering::AcqRel);
            records.truncate(room);
        }
        if !records.is_empty() && inner.writer.send(Request::Records(records)).is_err() {
            // The store was closed: the daemon is stopping and nothing more is written.
            inner.counters.queued.fetch_sub(room, Ordering::AcqRel);
            inner
                .counters
                .lost_total
                .fetch_add(room as u64, Ordering::Relaxed);
        }
        // After the queued ones: the loss marker takes the position of the first loss.
        if lost > 0 {
            self.lose(lost as u64);
        }
    }

    fn lose(&self, count: u64) {
        let inner = &self.inner;
        inner
            .counters
            .lost_total
            .fetch_add(count, Ordering::Relaxed);
        if inner
            .counters
            .lost_unreported
            .fetch_add(count, Ordering::AcqRel)
            == 0
        {
            // First loss since the last announcement: mark the spot, once.
            tracing::warn!(
                path = %inner.path.display(),
                max_queued_events = inner.max_queued,
                "the queue of events waiting for the database is full: new transitions and \
                 events are counted as lost until it drains"
            );
            let _ = inner.writer.send(Request::LossMarker {
                since: SystemTime::now(),
            });
        }
    }

    /// Transitions, newest first.
    pub async fn list_transitions(
        &self,
        q: &HistoryQuery,
    ) -> Result<Page<v1::Transition>, StoreError> {
        self.inner.reader.list_transitions(q).await
    }

    /// Config changes, newest first.
    pub async fn list_config_changes(
        &self,
        q: &HistoryQuery,
    ) -> Result<Page<v1::ConfigChange>, StoreError> {
        self.inner.reader.list_config_changes(q).await
    }

    /// The oldest event seq a watcher can still replay: the lowest kept, or `last_seq + 1`
    /// when none is kept.
    pub async fn oldest_kept_seq(&self) -> Result<u64, StoreError> {
        self.inner.reader.oldest_kept_seq().await
    }

    /// Resolves once everything queued before the call is committed and published. Fails
    /// (without losing anything queued) if the database cannot be written now.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Request::Flush(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Deletes events and transitions older than `cutoff` now, as the hourly pruning does.
    pub async fn prune_older_than(&self, cutoff: SystemTime) -> Result<PruneReport, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Request::Prune {
                cutoff,
                reply: Some(reply),
            })
            .map_err(|_| StoreError::Closed)?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Writes what is queued (retrying for a few seconds if the database fails), stops the
    /// writer and the pruner, ends every watch stream with ShuttingDown and closes the
    /// read pool. Other clones of this handle fail with `Closed` from then on.
    pub async fn close(self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let result = match self.inner.writer.send(Request::Shutdown(reply)) {
            Ok(()) => answer.await.unwrap_or(Err(StoreError::Closed)),
            Err(_) => Err(StoreError::Closed),
        };
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(tasks) = tasks {
            tasks.pruner.abort();
            tasks.checkpointer.abort();
            if let Err(e) = tasks.writer.await {
                tracing::error!(error = %e, "the store's writer task failed");
            }
        }
        self.inner.reader.close().await;
        result
    }

    /// Queue depth, losses, write latency: for metrics.
    pub fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }
}

/// Checks and encodes a sync group change in the caller's task.
fn prepare_group(change: SyncGroupCommit) -> Result<PreparedGroupCommit, StoreError> {
    let invalid = |detail: &str| StoreError::InvalidCommit {
        instance: format!("sync group {}", change.group),
        detail: detail.to_owned(),
    };
    if change.group.is_empty() {
        return Err(invalid("the group name is empty"));
    }
    let op = match change.kind {
        v1::ChangeKind::Create => Op::Create,
        v1::ChangeKind::Update => Op::Update,
        v1::ChangeKind::Delete => Op::Delete,
        v1::ChangeKind::Unspecified => return Err(invalid("its kind is unspecified")),
    };
    let members = match (op, &change.new_members) {
        (Op::Delete, _) => Vec::new(),
        (_, Some(m)) if !m.is_empty() => m.clone(),
        _ => return Err(invalid("a create or update needs at least one member")),
    };
    let json = |members: &Option<Vec<String>>| -> Result<Option<String>, StoreError> {
        members
            .as_ref()
            .map(|m| {
                serde_json::to_string(&v1::SyncGroup {
                    name: change.group.clone(),
                    instances: m.clone(),
                    revision: 0,
                })
                .map_err(|e| invalid(&format!("it cannot be encoded as JSON: {e}")))
            })
            .transpose()
    };
    Ok(PreparedGroupCommit {
        op,
        old_json: json(&change.old_members)?,
        new_json: json(&change.new_members)?,
        changed_fields_json: strings_to_json(&change.changed_fields),
        changed_fields: change.changed_fields,
        members,
        revision: change.revision,
        actor: change.actor,
        comment: change.comment,
        time: change.time,
        group: change.group,
    })
}

/// Checks and encodes a config change in the caller's task, so the writer only writes.
fn prepare(change: ConfigCommit) -> Result<PreparedCommit, StoreError> {
    let invalid = |detail: &str| StoreError::InvalidCommit {
        instance: change.instance.clone(),
        detail: detail.to_owned(),
    };
    if change.instance.is_empty() {
        return Err(invalid("the instance name is empty"));
    }
    let op = match change.kind {
        v1::ChangeKind::Create => Op::Create,
        v1::ChangeKind::Update => Op::Update,
        v1::ChangeKind::Delete => Op::Delete,
        v1::ChangeKind::Unspecified => return Err(invalid("its kind is unspecified")),
    };
    let (spec_json, identity) = match op {
        Op::Create | Op::Update => {
            let spec = change
                .new_spec
                .as_ref()
                .ok_or_else(|| invalid("a create or update needs the new spec"))?;
            let id = change
                .identity
                .as_ref()
                .ok_or_else(|| invalid("a create or update needs the instance's identity"))?;
            if id.interface.is_empty() || id.vrid == 0 || !matches!(id.family, 4 | 6) {
                return Err(invalid(
                    "its identity needs an interface, a VRID of 1-255 and family 4 or 6",
                ));
            }
            let identity = (
                id.interface.clone(),
                i64::from(id.vrid),
                i64::from(id.family),
            );
            (Some(spec_to_json(&change.instance, spec)?), Some(identity))
        }
        Op::Delete => (None, None),
    };
    let history_json = |spec: &Option<v1::InstanceSpec>| {
        spec.as_ref()
            .map(|s| spec_to_json(&change.instance, &redacted(s)))
            .transpose()
    };
    Ok(PreparedCommit {
        op,
        old_history_json: history_json(&change.old_spec)?,
        new_history_json: history_json(&change.new_spec)?,
        changed_fields_json: strings_to_json(&change.changed_fields),
        spec_json,
        identity,
        instance: change.instance,
        revision: change.revision,
        actor: change.actor,
        comment: change.comment,
        changed_fields: change.changed_fields,
        time: change.time,
    })
}
