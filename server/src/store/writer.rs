//! The writer task: the one owner of the write connection. It queues what the store's
//! handles send it, writes the queue in batches (one transaction each), answers config
//! changes, then publishes the batch's events; when the database fails it keeps
//! transitions and events queued and retries with backoff, refusing config changes
//! meanwhile. Between batches it prunes, a chunk at a time.

use super::batch::{self, Item, Prepared, Record};
use super::error::StoreError;
use super::prune::prune_chunk;
use super::stats::Counters;
use super::types::{PruneReport, StoreOptions};
use crate::events::EventBus;
use sqlx::{Connection, SqliteConnection};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

/// Records per transaction: big enough to absorb a burst in one fsync, small enough that a
/// backlog after an outage is written (and published) in steps.
const MAX_BATCH_RECORDS: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long `close` keeps trying to write what is queued when the database is failing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the store's handles (and the pruner) ask of the writer.
#[derive(Debug)]
pub(crate) enum Request {
    Commit(Box<Prepared>, Reply<u64>),
    /// Transitions and events in order, each counted in `Counters::queued` until committed.
    Records(Vec<Record>),
    /// Sent once when events start being lost; written as an EVENTS_LOST event at this
    /// position, with the count lost by then.
    LossMarker {
        since: SystemTime,
    },
    Flush(Reply<()>),
    Prune {
        cutoff: SystemTime,
        reply: Option<Reply<PruneReport>>,
    },
    Shutdown(Reply<()>),
}

impl Request {
    /// Someone waits for the answer: worth a write attempt now even while backing off.
    fn is_urgent(&self) -> bool {
        matches!(
            self,
            Self::Commit(..)
                | Self::Flush(_)
                | Self::Shutdown(_)
                | Self::Prune { reply: Some(_), .. }
        )
    }
}

#[derive(Debug)]
enum Queued {
    Record(Record),
    Lost { since: SystemTime },
    Commit(Box<Prepared>, Reply<u64>),
    Flush(Reply<()>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synchronous {
    Normal,
    Full,
}

#[derive(Debug)]
struct PruneJob {
    cutoff: SystemTime,
    done: PruneReport,
    replies: Vec<Reply<PruneReport>>,
}

/// A failure episode: from the first failed write to the next successful one.
#[derive(Debug)]
struct Outage {
    since: Instant,
    attempts: u64,
    backoff: Duration,
    next_attempt: Instant,
    last_error: StoreError,
}

#[derive(Debug)]
struct Stopping {
    replies: Vec<Reply<()>>,
    deadline: Instant,
}

#[derive(Debug)]
pub(crate) struct Writer {
    conn: SqliteConnection,
    /// To open a new connection when a failed write left this one unusable.
    opts: StoreOptions,
    path: Arc<Path>,
    rx: mpsc::UnboundedReceiver<Request>,
    rx_open: bool,
    bus: EventBus,
    counters: Arc<Counters>,
    last_seq: u64,
    synchronous: Option<Synchronous>,
    queue: VecDeque<Queued>,
    prune: Option<PruneJob>,
    outage: Option<Outage>,
    stopping: Option<Stopping>,
}

impl Writer {
    pub(crate) fn new(
        conn: SqliteConnection,
        opts: StoreOptions,
        path: Arc<Path>,
        rx: mpsc::UnboundedReceiver<Request>,
        bus: EventBus,
        counters: Arc<Counters>,
        last_seq: u64,
    ) -> Self {
        Self {
            conn,
            opts,
            path,
            rx,
            rx_open: true,
            bus,
            counters,
            last_seq,
            synchronous: None,
            queue: VecDeque::new(),
            prune: None,
            outage: None,
            stopping: None,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            if let Some(stopping) = &self.stopping
                && (self.queue.is_empty() || Instant::now() >= stopping.deadline)
            {
                break;
            }
            self.wait_for_work().await;
            while let Ok(request) = self.rx.try_recv() {
                self.accept(request);
            }
            if !self.queue.is_empty() {
                self.write_batch().await;
            }
            // One chunk a round: pruning neither starves under a steady flow of events nor
            // holds them up for long. During an outage it only retries on its own, so as
            // not to double the attempts.
            if self.prune.is_some() && (self.outage.is_none() || self.queue.is_empty()) {
                self.prune_step().await;
            }
        }
        self.finish().await;
    }

    /// Returns when there is something to do: at once when healthy and busy; after the
    /// backoff (or an urgent request) during an outage; on the next request when idle.
    async fn wait_for_work(&mut self) {
        let busy = !self.queue.is_empty() || self.prune.is_some();
        if !busy {
            if self.rx_open {
                match self.rx.recv().await {
                    Some(request) => self.accept(request),
                    None => self.begin_stop(None),
                }
            }
            return;
        }
        let Some(outage) = &self.outage else {
            return;
        };
        let mut wake = outage.next_attempt;
        if let Some(stopping) = &self.stopping {
            wake = wake.min(stopping.deadline);
        }
        loop {
            if !self.rx_open {
                sleep_until(wake).await;
                return;
            }
            tokio::select! {
                () = sleep_until(wake) => return,
                request = self.rx.recv() => match request {
                    Some(request) => {
                        let urgent = request.is_urgent();
                        self.accept(request);
                        if urgent {
                            return;
                        }
                    }
                    None => {
                        self.begin_stop(None);
                        return;
                    }
                },
            }
        }
    }

    fn accept(&mut self, request: Request) {
        match request {
            Request::Records(records) => self.queue.extend(records.into_iter().map(Queued::Record)),
            Request::LossMarker { since } => self.queue.push_back(Queued::Lost { since }),
            Request::Commit(commit, reply) => self.queue.push_back(Queued::Commit(commit, reply)),
            Request::Flush(reply) => self.queue.push_back(Queued::Flush(reply)),
            Request::Prune { cutoff, reply } => {
                if self.stopping.is_some() {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                    return;
                }
                let job = self.prune.get_or_insert_with(|| PruneJob {
                    cutoff,
                    done: PruneReport::default(),
                    replies: Vec::new(),
                });
                job.cutoff = job.cutoff.max(cutoff);
                job.replies.extend(reply);
            }
            Request::Shutdown(reply) => match &mut self.stopping {
                Some(stopping) => stopping.replies.push(reply),
                None => self.begin_stop(Some(reply)),
            },
        }
    }

    /// Stops taking requests; what is already queued is still written (within the grace).
    fn begin_stop(&mut self, reply: Option<Reply<()>>) {
        self.stopping = Some(Stopping {
            replies: reply.into_iter().collect(),
            deadline: Instant::now() + SHUTDOWN_GRACE,
        });
        if let Some(job) = self.prune.take() {
            for reply in job.replies {
                let _ = reply.send(Err(StoreError::Closed));
            }
        }
        self.rx.close();
        self.rx_open = false;
        while let Ok(request) = self.rx.try_recv() {
            self.accept(request);
        }
    }

    async fn write_batch(&mut self) {
        let mut batch = Vec::new();
        let mut records = 0;
        while let Some(queued) = self.queue.pop_front() {
            if matches!(queued, Queued::Record(_)) {
                if records == MAX_BATCH_RECORDS {
                    self.queue.push_front(queued);
                    break;
                }
                records += 1;
            }
            batch.push(queued);
        }
        let has_commit = batch.iter().any(|q| matches!(q, Queued::Commit(..)));
        let has_lost = batch.iter().any(|q| matches!(q, Queued::Lost { .. }));
        let lost = if has_lost {
            self.counters.lost_unreported.swap(0, Ordering::AcqRel)
        } else {
            0
        };
        let mut lost_left = lost;
        let items: Vec<Item<'_>> = batch
            .iter()
            .filter_map(|q| match q {
                Queued::Record(record) => Some(Item::Record(record)),
                Queued::Lost { since } => Some(Item::Lost {
                    count: std::mem::take(&mut lost_left),
                    since: *since,
                }),
                Queued::Commit(commit, _) => Some(Item::Commit(commit)),
                Queued::Flush(_) => None,
            })
            .collect();

        let started = Instant::now();
        // A config change is durable (FULL) before its RPC answers OK; events alone only
        // need to survive a crash of the process, which NORMAL gives in WAL mode.
        let mode = if has_commit {
            Synchronous::Full
        } else {
            Synchronous::Normal
        };
        let result = match self.set_synchronous(mode).await {
            Ok(()) => batch::write(&mut self.conn, &self.path, &items, self.last_seq).await,
            Err(e) => Err(e.into()),
        };
        drop(items);

        match result {
            Ok(outcome) => {
                self.counters.set_last_write_latency(started.elapsed());
                self.last_seq = outcome.last_seq;
                self.counters
                    .last_seq
                    .store(outcome.last_seq, Ordering::Relaxed);
                self.counters.queued.fetch_sub(records, Ordering::AcqRel);
                self.recovered();
                let mut results = outcome.commits.into_iter();
                let mut flushes = Vec::new();
                for queued in batch {
                    match queued {
                        Queued::Commit(_, reply) => {
                            let result = results.next().unwrap_or(Err(StoreError::Closed));
                            let _ = reply.send(result);
                        }
                        Queued::Flush(reply) => flushes.push(reply),
                        Queued::Record(_) | Queued::Lost { .. } => {}
                    }
                }
                // Persist, answer, then publish: a watcher never sees an event that is not
                // in the database.
                self.bus.publish(outcome.events);
                for reply in flushes {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(batch::Failure { error: e, reopen }) => {
                self.heal_connection(reopen).await;
                self.counters
                    .lost_unreported
                    .fetch_add(lost, Ordering::AcqRel);
                // Back to the front, in order; they keep their place ahead of newer ones.
                let mut waiters = Vec::new();
                for queued in batch.into_iter().rev() {
                    match queued {
                        kept @ (Queued::Record(_) | Queued::Lost { .. }) => {
                            self.queue.push_front(kept);
                        }
                        waiter @ (Queued::Commit(..) | Queued::Flush(_)) => waiters.push(waiter),
                    }
                }
                // The outage is on record (stats) before anyone hears of it.
                self.failed(e.clone());
                for waiter in waiters {
                    answer(waiter, &e);
                }
                self.fail_waiters(&e);
            }
        }
    }

    /// Answers every queued config change and flush with `e`: they would otherwise wait
    /// for the backoff, and config changes are refused while the database fails.
    fn fail_waiters(&mut self, e: &StoreError) {
        for queued in std::mem::take(&mut self.queue) {
            match queued {
                kept @ (Queued::Record(_) | Queued::Lost { .. }) => self.queue.push_back(kept),
                waiter @ (Queued::Commit(..) | Queued::Flush(_)) => answer(waiter, e),
            }
        }
    }

    async fn prune_step(&mut self) {
        let Some(job) = &mut self.prune else {
            return;
        };
        let cutoff = job.cutoff;
        let result = match self.set_synchronous(Synchronous::Normal).await {
            Ok(()) => prune_chunk(&mut self.conn, &self.path, cutoff).await,
            Err(e) => Err(e),
        };
        match result {
            Ok((report, more)) => {
                self.recovered();
                let Some(job) = &mut self.prune else {
                    return;
                };
                job.done.events += report.events;
                job.done.transitions += report.transitions;
                if more {
                    return;
                }
                if let Some(job) = self.prune.take() {
                    if job.done != PruneReport::default() {
                        tracing::info!(
                            events = job.done.events,
                            transitions = job.done.transitions,
                            "pruned events and transitions older than the retention period"
                        );
                    }
                    for reply in job.replies {
                        let _ = reply.send(Ok(job.done));
                    }
                }
            }
            Err(e) => {
                self.heal_connection(false).await;
                self.failed(e.clone());
                if let Some(job) = &mut self.prune {
                    for reply in job.replies.drain(..) {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// After a failed write: makes sure the next attempt can begin a transaction. When a
    /// COMMIT fails for a full disk or an I/O error, SQLite rolls the transaction back
    /// itself; sqlx's own ROLLBACK (when its transaction is dropped) then fails and sqlx goes
    /// on counting a transaction that no longer exists, refusing every later BEGIN ("non-zero
    /// transaction depth") even once the disk is fine. Such a connection is replaced, as is
    /// one the batch says may still be inside a transaction (`reopen`).
    async fn heal_connection(&mut self, reopen: bool) {
        // A round trip to the connection's worker: the dropped transaction's rollback, queued
        // before it, has been carried out when it returns.
        if let Err(e) = self.conn.ping().await {
            tracing::debug!(error = %e, "the write connection does not answer");
        } else if !reopen && !self.conn.is_in_transaction() {
            return;
        }
        match super::open::reconnect_writer(&self.path, &self.opts).await {
            Ok(conn) => {
                let old = std::mem::replace(&mut self.conn, conn);
                // The new connection has SQLite's default until the next batch sets it.
                self.synchronous = None;
                if let Err(e) = old.close().await {
                    tracing::debug!(error = %e, "closing the old write connection failed");
                }
                // Once per outage: it may be needed after every attempt while it lasts.
                if self.outage.is_none() {
                    tracing::info!(
                        path = %self.path.display(),
                        "reopened the write connection after a failed write left it unusable"
                    );
                } else {
                    tracing::debug!("reopened the write connection again");
                }
            }
            Err(e) => {
                // Tried again after the next failed attempt.
                tracing::debug!(error = %e, "reopening the write connection failed");
            }
        }
    }

    async fn set_synchronous(&mut self, mode: Synchronous) -> Result<(), StoreError> {
        if self.synchronous == Some(mode) {
            return Ok(());
        }
        let sql = match mode {
            Synchronous::Normal => "PRAGMA synchronous = NORMAL",
            Synchronous::Full => "PRAGMA synchronous = FULL",
        };
        sqlx::query(sql)
            .execute(&mut self.conn)
            .await
            .map_err(|e| StoreError::from_sqlx(&self.path, &e))?;
        self.synchronous = Some(mode);
        Ok(())
    }

    fn queued_records(&self) -> usize {
        self.queue
            .iter()
            .filter(|q| matches!(q, Queued::Record(_)))
            .count()
    }

    fn failed(&mut self, error: StoreError) {
        let now = Instant::now();
        self.counters.failing.store(true, Ordering::Relaxed);
        match &mut self.outage {
            None => {
                // Once per episode; the recovery message gives the totals.
                tracing::warn!(
                    path = %self.path.display(),
                    %error,
                    queued = self.queued_records(),
                    "cannot write to the database: transitions and events stay queued in \
                     memory and are retried, config changes are refused"
                );
                self.outage = Some(Outage {
                    since: now,
                    attempts: 1,
                    backoff: BACKOFF_MIN,
                    next_attempt: now + BACKOFF_MIN,
                    last_error: error,
                });
            }
            Some(outage) => {
                tracing::debug!(%error, attempts = outage.attempts, "database write failed again");
                outage.attempts += 1;
                outage.backoff = (outage.backoff * 2).min(BACKOFF_MAX);
                outage.next_attempt = now + outage.backoff;
                outage.last_error = error;
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(outage) = self.outage.take() {
            self.counters.failing.store(false, Ordering::Relaxed);
            tracing::info!(
                path = %self.path.display(),
                failed_attempts = outage.attempts,
                outage_ms = u64::try_from(outage.since.elapsed().as_millis()).unwrap_or(u64::MAX),
                still_queued = self.queued_records(),
                lost = self.counters.lost_total.load(Ordering::Relaxed),
                "the database can be written again"
            );
        }
    }

    async fn finish(mut self) {
        let unwritten = self.queued_records();
        let result = if unwritten == 0 {
            Ok(())
        } else {
            let error = self
                .outage
                .as_ref()
                .map_or(StoreError::Closed, |o| o.last_error.clone());
            tracing::error!(
                path = %self.path.display(),
                unwritten,
                %error,
                "stopping with transitions and events that could not be written"
            );
            Err(error)
        };
        for queued in std::mem::take(&mut self.queue) {
            answer(queued, &StoreError::Closed);
        }
        self.bus.shutdown();
        if let Err(e) = self.conn.close().await {
            tracing::debug!(error = %e, "closing the write connection failed");
        }
        if let Some(stopping) = self.stopping {
            for reply in stopping.replies {
                let _ = reply.send(result.clone());
            }
        }
    }
}

/// Answers a waiting config change or flush with `e`; records need no answer.
fn answer(queued: Queued, e: &StoreError) {
    match queued {
        Queued::Commit(_, reply) => {
            let _ = reply.send(Err(e.clone()));
        }
        Queued::Flush(reply) => {
            let _ = reply.send(Err(e.clone()));
        }
        Queued::Record(_) | Queued::Lost { .. } => {}
    }
}
