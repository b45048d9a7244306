//! One write transaction of the writer: gives each queued transition, tracker change,
//! dual-master report, daemon event and config change (of an instance or a sync group) its seq, writes their rows and events, and moves `last_seq` and
//! `last_revision` in `meta`, all or nothing. A config change that breaks a uniqueness rule
//! is undone alone (a savepoint) and answered with its error; it takes no seq.

use super::codec::{to_i64, to_u64};
use super::error::{CONSTRAINT_PRIMARYKEY, CONSTRAINT_UNIQUE, StoreError};
use super::time::{timestamp_micros, to_micros, to_timestamp};
use havip_proto::v1;
use prost::Message;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// A transition or daemon event, as `record_*` queued it, with the time it was recorded.
///
/// The events table keeps the time of recording (not the transition's own time) for
/// retention: pruning deletes a prefix up to the newest event older than the cutoff, so
/// one transition carrying a wrong clock must not drag newer events with it.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Transition {
        transition: v1::Transition,
        recorded: SystemTime,
    },
    Daemon {
        kind: v1::EventKind,
        event: v1::DaemonEvent,
        time: SystemTime,
    },
    /// An event of one instance other than a transition: a tracker change, a dual master.
    InstanceEvent {
        instance: String,
        kind: v1::EventKind,
        payload: v1::event::Payload,
        time: SystemTime,
    },
}

/// What a config change does to the instances table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    fn change_kind(self) -> v1::ChangeKind {
        match self {
            Self::Create => v1::ChangeKind::Create,
            Self::Update => v1::ChangeKind::Update,
            Self::Delete => v1::ChangeKind::Delete,
        }
    }
}

/// A config change, validated and encoded by `Store::commit_config` in the caller's task.
#[derive(Debug)]
pub(crate) struct PreparedCommit {
    pub(crate) op: Op,
    pub(crate) instance: String,
    pub(crate) revision: u64,
    pub(crate) actor: String,
    pub(crate) comment: String,
    pub(crate) changed_fields: Vec<String>,
    pub(crate) changed_fields_json: String,
    /// The full spec for the instances row (create and update).
    pub(crate) spec_json: Option<String>,
    /// Redacted specs for the audit trail.
    pub(crate) old_history_json: Option<String>,
    pub(crate) new_history_json: Option<String>,
    /// interface, vrid, family (create and update).
    pub(crate) identity: Option<(String, i64, i64)>,
    pub(crate) time: SystemTime,
}

/// A sync group change, validated and encoded by `Store::commit_sync_group`.
#[derive(Debug)]
pub(crate) struct PreparedGroupCommit {
    pub(crate) op: Op,
    pub(crate) group: String,
    pub(crate) revision: u64,
    pub(crate) actor: String,
    pub(crate) comment: String,
    pub(crate) changed_fields: Vec<String>,
    pub(crate) changed_fields_json: String,
    /// The members after the change (none for a delete).
    pub(crate) members: Vec<String>,
    /// The group before and after, for the audit trail.
    pub(crate) old_json: Option<String>,
    pub(crate) new_json: Option<String>,
    pub(crate) time: SystemTime,
}

/// Any config change.
#[derive(Debug)]
pub(crate) enum Prepared {
    Instance(PreparedCommit),
    Group(PreparedGroupCommit),
}

impl Prepared {
    fn revision(&self) -> u64 {
        match self {
            Self::Instance(c) => c.revision,
            Self::Group(g) => g.revision,
        }
    }
}

/// One entry of a batch, in queue order.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    Record(&'a Record),
    /// Announce `count` lost events (skipped when 0), first lost at `since`.
    Lost {
        count: u64,
        since: SystemTime,
    },
    Commit(&'a Prepared),
}

#[derive(Debug)]
pub(crate) struct Outcome {
    /// The events written, in seq order, to publish after the commit.
    pub(crate) events: Vec<v1::Event>,
    /// One result per `Item::Commit`, in batch order.
    pub(crate) commits: Vec<Result<u64, StoreError>>,
    pub(crate) last_seq: u64,
}

/// Why a batch was not written. Nothing of it was.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: StoreError,
    /// The connection may be left inside a transaction: open a new one before the next
    /// batch, or every later BEGIN would fail.
    pub(crate) reopen: bool,
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self {
            error,
            reopen: false,
        }
    }
}

/// Writes `items` in one transaction, numbering events from `last_seq + 1`. An error means
/// nothing was written.
pub(crate) async fn write(
    conn: &mut SqliteConnection,
    path: &Arc<Path>,
    items: &[Item<'_>],
    last_seq: u64,
) -> Result<Outcome, Failure> {
    if items.iter().any(|item| matches!(item, Item::Commit(_))) {
        return Ok(write_with_config_changes(conn, path, items, last_seq).await?);
    }
    write_records(conn, path, items, last_seq).await
}

/// Events (and transitions) only: the whole transaction, from BEGIN to COMMIT, is one query
/// and so one round trip to sqlx's worker thread instead of five. A failover of many
/// instances at once is exactly when the events must not wait on thread hand-offs, and
/// they are published only once committed.
async fn write_records(
    conn: &mut SqliteConnection,
    path: &Arc<Path>,
    items: &[Item<'_>],
    last_seq: u64,
) -> Result<Outcome, Failure> {
    let db = |e: &sqlx::Error| StoreError::from_sqlx(path, e);
    let mut seq = last_seq;
    let mut rows = Rows::default();
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Item::Record(record) => number_record(record, &mut seq, &mut rows, &mut events),
            Item::Lost { count, since } => {
                number_lost(*count, *since, &mut seq, &mut rows, &mut events);
            }
            // `write` sends batches with config changes elsewhere.
            Item::Commit(_) => {}
        }
    }
    // IMMEDIATE takes the write lock up front, so a lock held by another process is met
    // (and waited for, up to busy_timeout) here rather than halfway through the batch.
    let mut q = QueryBuilder::<Sqlite>::new("BEGIN IMMEDIATE; ");
    rows.push_inserts(&mut q);
    push_last_seq(&mut q, seq, last_seq);
    q.push("COMMIT");
    // Every batch size is a different statement: not worth a cache slot.
    if let Err(e) = q.build().persistent(false).execute(&mut *conn).await {
        let reopen = !roll_back_raw(conn).await;
        return Err(Failure {
            error: db(&e),
            reopen,
        });
    }
    Ok(Outcome {
        events,
        commits: Vec::new(),
        last_seq: seq,
    })
}

/// After a failed `write_records`: a statement after its BEGIN may have failed, leaving
/// SQLite inside the transaction, which sqlx does not know of (it tracks only the
/// transactions it began itself) and so would never roll back. False when the connection
/// could not be brought back to no transaction.
async fn roll_back_raw(conn: &mut SqliteConnection) -> bool {
    match sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await {
        Ok(_) => true,
        Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => true,
        Err(e) => {
            tracing::debug!(error = %e, "rolling back a failed batch failed");
            false
        }
    }
}

fn push_last_seq(q: &mut QueryBuilder<Sqlite>, seq: u64, last_seq: u64) {
    if seq != last_seq {
        q.push("UPDATE meta SET value = ");
        q.push_bind(to_i64(seq));
        q.push(" WHERE key = 'last_seq'; ");
    }
}

/// Gives a transition or event its seq, its rows and the event to publish.
fn number_record(record: &Record, seq: &mut u64, rows: &mut Rows, events: &mut Vec<v1::Event>) {
    *seq += 1;
    let seq = *seq;
    let (event, recorded) = match record {
        Record::Transition {
            transition,
            recorded,
        } => {
            let mut t = transition.clone();
            t.seq = seq;
            // History is filtered by the transition's own time.
            let at = t
                .time
                .as_ref()
                .map_or_else(|| to_micros(*recorded), timestamp_micros);
            rows.transitions.push(TransitionRow {
                seq: to_i64(seq),
                instance: t.instance.clone(),
                at,
                body: t.encode_to_vec(),
            });
            let event = v1::Event {
                seq,
                time: t.time,
                kind: v1::EventKind::StateChanged as i32,
                instance: t.instance.clone(),
                payload: Some(v1::event::Payload::StateChanged(t)),
            };
            (event, *recorded)
        }
        Record::Daemon { kind, event, time } => {
            (daemon_event(seq, *kind, event.clone(), *time), *time)
        }
        Record::InstanceEvent {
            instance,
            kind,
            payload,
            time,
        } => {
            let event = v1::Event {
                seq,
                time: Some(to_timestamp(*time)),
                kind: *kind as i32,
                instance: instance.clone(),
                payload: Some(payload.clone()),
            };
            (event, *time)
        }
    };
    rows.event(&event, recorded);
    events.push(event);
}

/// The EVENTS_LOST event announcing `count` events lost since `since`; none when 0.
fn number_lost(
    count: u64,
    since: SystemTime,
    seq: &mut u64,
    rows: &mut Rows,
    events: &mut Vec<v1::Event>,
) {
    if count == 0 {
        return;
    }
    *seq += 1;
    let detail = format!(
        "{count} events were not recorded since {}: the database could not be \
         written and the queue of events waiting for it was full",
        humantime::format_rfc3339_seconds(since),
    );
    let payload = v1::DaemonEvent {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        detail,
    };
    let now = SystemTime::now();
    let event = daemon_event(*seq, v1::EventKind::EventsLost, payload, now);
    rows.event(&event, now);
    events.push(event);
}

/// A batch with config changes: each change runs under its own savepoint, so one that
/// breaks a uniqueness rule is undone alone. These are rare (an RPC each), so the extra
/// round trips do not matter.
async fn write_with_config_changes(
    conn: &mut SqliteConnection,
    path: &Arc<Path>,
    items: &[Item<'_>],
    last_seq: u64,
) -> Result<Outcome, StoreError> {
    let db = |e: sqlx::Error| StoreError::from_sqlx(path, &e);
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let mut seq = last_seq;
    let mut rows = Rows::default();
    let mut events = Vec::with_capacity(items.len());
    let mut commits = Vec::new();
    let mut max_revision = None;
    for item in items {
        match item {
            Item::Record(record) => number_record(record, &mut seq, &mut rows, &mut events),
            Item::Lost { count, since } => {
                number_lost(*count, *since, &mut seq, &mut rows, &mut events);
            }
            Item::Commit(c) => {
                sqlx::query("SAVEPOINT config_change")
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                let applied = match c {
                    Prepared::Instance(c) => apply_commit(&mut tx, c, seq + 1).await,
                    Prepared::Group(g) => apply_group_commit(&mut tx, g, seq + 1).await,
                };
                match applied {
                    Ok(event) => {
                        sqlx::query("RELEASE config_change")
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                        seq += 1;
                        max_revision = max_revision.max(Some(c.revision()));
                        events.push(event);
                        commits.push(Ok(seq));
                    }
                    Err(Refused(refusal)) => {
                        sqlx::query("ROLLBACK TO config_change")
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                        sqlx::query("RELEASE config_change")
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                        commits.push(Err(refusal.into_error(c)));
                    }
                    Err(Failed(e)) => return Err(db(e)),
                }
            }
        }
    }
    let mut q = QueryBuilder::<Sqlite>::new("");
    rows.push_inserts(&mut q);
    push_last_seq(&mut q, seq, last_seq);
    if let Some(revision) = max_revision {
        q.push("UPDATE meta SET value = MAX(value, ");
        q.push_bind(to_i64(revision));
        q.push(") WHERE key = 'last_revision'; ");
    }
    // Every row takes a seq, so an unchanged seq and no revision means nothing to write.
    if seq != last_seq || max_revision.is_some() {
        q.build()
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(Outcome {
        events,
        commits,
        last_seq: seq,
    })
}

/// Why a config change was not applied.
enum CommitError {
    /// The change itself is refused; the rest of the batch goes on.
    Refused(Refusal),
    /// The database failed; the whole batch is rolled back.
    Failed(sqlx::Error),
}
use CommitError::{Failed, Refused};

enum Refusal {
    NameTaken,
    IdentityTaken,
    Missing,
}

impl Refusal {
    fn into_error(self, c: &Prepared) -> StoreError {
        let c = match c {
            Prepared::Instance(c) => c,
            Prepared::Group(g) => {
                return match self {
                    Self::Missing => StoreError::SyncGroupNotFound {
                        group: g.group.clone(),
                    },
                    Self::NameTaken | Self::IdentityTaken => StoreError::Conflict {
                        detail: format!(
                            "sync group {:?}: its name or one of its members is already taken",
                            g.group
                        ),
                    },
                };
            }
        };
        match self {
            Self::NameTaken => StoreError::Conflict {
                detail: format!("an instance named {:?} already exists", c.instance),
            },
            Self::IdentityTaken => {
                let detail = match &c.identity {
                    Some((interface, vrid, family)) => format!(
                        "another instance already runs VRID {vrid} for IPv{family} on \
                         interface {interface:?}"
                    ),
                    None => "another instance already runs the same virtual router".into(),
                };
                StoreError::Conflict { detail }
            }
            Self::Missing => StoreError::NotFound {
                instance: c.instance.clone(),
            },
        }
    }
}

impl From<sqlx::Error> for CommitError {
    fn from(e: sqlx::Error) -> Self {
        match StoreError::constraint_code(&e) {
            Some(CONSTRAINT_PRIMARYKEY) => Refused(Refusal::NameTaken),
            Some(CONSTRAINT_UNIQUE) => Refused(Refusal::IdentityTaken),
            _ => Failed(e),
        }
    }
}

async fn apply_commit(
    conn: &mut SqliteConnection,
    c: &PreparedCommit,
    seq: u64,
) -> Result<v1::Event, CommitError> {
    let at = to_micros(c.time);
    let (interface, vrid, family) = c.identity.clone().unwrap_or_default();
    let event_kind = match c.op {
        Op::Create => {
            sqlx::query(
                "INSERT INTO instances \
                 (name, spec_json, revision, interface, vrid, family, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&c.instance)
            .bind(c.spec_json.as_deref())
            .bind(to_i64(c.revision))
            .bind(&interface)
            .bind(vrid)
            .bind(family)
            .bind(at)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            v1::EventKind::InstanceCreated
        }
        Op::Update => {
            let done = sqlx::query(
                "UPDATE instances SET spec_json = ?, revision = ?, interface = ?, vrid = ?, \
                 family = ?, updated_at = ? WHERE name = ?",
            )
            .bind(c.spec_json.as_deref())
            .bind(to_i64(c.revision))
            .bind(&interface)
            .bind(vrid)
            .bind(family)
            .bind(at)
            .bind(&c.instance)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(Refused(Refusal::Missing));
            }
            v1::EventKind::InstanceUpdated
        }
        Op::Delete => {
            let done = sqlx::query("DELETE FROM instances WHERE name = ?")
                .bind(&c.instance)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(Refused(Refusal::Missing));
            }
            v1::EventKind::InstanceDeleted
        }
    };
    sqlx::query(
        "INSERT INTO config_changes (instance, revision, kind, actor, at, old_spec_json, \
         new_spec_json, changed_fields, comment, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&c.instance)
    .bind(to_i64(c.revision))
    .bind(c.op.change_kind() as i32)
    .bind(&c.actor)
    .bind(at)
    .bind(c.old_history_json.as_deref())
    .bind(c.new_history_json.as_deref())
    .bind(&c.changed_fields_json)
    .bind(&c.comment)
    .bind(to_i64(seq))
    .execute(&mut *conn)
    .await?;
    let event = v1::Event {
        seq,
        time: Some(to_timestamp(c.time)),
        kind: event_kind as i32,
        instance: c.instance.clone(),
        payload: Some(v1::event::Payload::ConfigChanged(v1::ConfigChangeSummary {
            revision: c.revision,
            actor: c.actor.clone(),
            changed_fields: c.changed_fields.clone(),
            comment: c.comment.clone(),
            sync_group: String::new(),
        })),
    };
    insert_event(conn, &event, c.time).await?;
    Ok(event)
}

async fn apply_group_commit(
    conn: &mut SqliteConnection,
    g: &PreparedGroupCommit,
    seq: u64,
) -> Result<v1::Event, CommitError> {
    let at = to_micros(g.time);
    match g.op {
        Op::Create => {
            sqlx::query(
                "INSERT INTO sync_groups (name, revision, created_at, updated_at) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&g.group)
            .bind(to_i64(g.revision))
            .bind(at)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        Op::Update => {
            let done =
                sqlx::query("UPDATE sync_groups SET revision = ?, updated_at = ? WHERE name = ?")
                    .bind(to_i64(g.revision))
                    .bind(at)
                    .bind(&g.group)
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(Refused(Refusal::Missing));
            }
        }
        Op::Delete => {
            let done = sqlx::query("DELETE FROM sync_groups WHERE name = ?")
                .bind(&g.group)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(Refused(Refusal::Missing));
            }
        }
    }
    // The member list is replaced as a whole (ON DELETE CASCADE already took a deleted
    // group's).
    sqlx::query("DELETE FROM sync_group_members WHERE sync_group = ?")
        .bind(&g.group)
        .execute(&mut *conn)
        .await?;
    for (position, member) in g.members.iter().enumerate() {
        sqlx::query(
            "INSERT INTO sync_group_members (instance, sync_group, position) VALUES (?, ?, ?)",
        )
        .bind(member)
        .bind(&g.group)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO config_changes (instance, revision, kind, actor, at, old_spec_json, \
         new_spec_json, changed_fields, comment, seq, sync_group, old_group_json, \
         new_group_json) VALUES ('', ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?)",
    )
    .bind(to_i64(g.revision))
    .bind(g.op.change_kind() as i32)
    .bind(&g.actor)
    .bind(at)
    .bind(&g.changed_fields_json)
    .bind(&g.comment)
    .bind(to_i64(seq))
    .bind(&g.group)
    .bind(g.old_json.as_deref())
    .bind(g.new_json.as_deref())
    .execute(&mut *conn)
    .await?;
    let event = v1::Event {
        seq,
        time: Some(to_timestamp(g.time)),
        kind: v1::EventKind::SyncGroupChanged as i32,
        instance: String::new(),
        payload: Some(v1::event::Payload::ConfigChanged(v1::ConfigChangeSummary {
            revision: g.revision,
            actor: g.actor.clone(),
            changed_fields: g.changed_fields.clone(),
            comment: g.comment.clone(),
            sync_group: g.group.clone(),
        })),
    };
    insert_event(conn, &event, g.time).await?;
    Ok(event)
}

fn daemon_event(
    seq: u64,
    kind: v1::EventKind,
    payload: v1::DaemonEvent,
    time: SystemTime,
) -> v1::Event {
    v1::Event {
        seq,
        time: Some(to_timestamp(time)),
        kind: kind as i32,
        instance: String::new(),
        payload: Some(v1::event::Payload::Daemon(payload)),
    }
}

/// Rows per multi-row INSERT: 5 parameters a row stays far below SQLite's limit of 32,766.
const ROWS_PER_INSERT: usize = 256;

struct TransitionRow {
    seq: i64,
    instance: String,
    at: i64,
    body: Vec<u8>,
}

struct EventRow {
    seq: i64,
    at: i64,
    kind: i32,
    instance: String,
    body: Vec<u8>,
}

/// The rows of a batch's transitions and events, inserted together at the end of the
/// transaction: one multi-row statement per table, all sent in the same query as the
/// transaction's other statements. Seqs are explicit, so the order of insertion does not
/// matter.
#[derive(Default)]
struct Rows {
    transitions: Vec<TransitionRow>,
    events: Vec<EventRow>,
}

impl Rows {
    fn event(&mut self, event: &v1::Event, recorded: SystemTime) {
        self.events.push(EventRow {
            seq: to_i64(event.seq),
            at: to_micros(recorded),
            kind: event.kind,
            instance: event.instance.clone(),
            body: event.encode_to_vec(),
        });
    }

    /// Appends one multi-row INSERT statement per table (per chunk), each ended by `;`.
    fn push_inserts(&self, q: &mut QueryBuilder<Sqlite>) {
        for chunk in self.transitions.chunks(ROWS_PER_INSERT) {
            q.push("INSERT INTO transitions (seq, instance, at, body) ");
            q.push_values(chunk, |mut row, t| {
                row.push_bind(t.seq)
                    .push_bind(&t.instance)
                    .push_bind(t.at)
                    .push_bind(&t.body);
            });
            q.push("; ");
        }
        for chunk in self.events.chunks(ROWS_PER_INSERT) {
            q.push("INSERT INTO events (seq, at, kind, instance, body) ");
            q.push_values(chunk, |mut row, e| {
                row.push_bind(e.seq)
                    .push_bind(e.at)
                    .push_bind(e.kind)
                    .push_bind(&e.instance)
                    .push_bind(&e.body);
            });
            q.push("; ");
        }
    }
}

async fn insert_event(
    conn: &mut SqliteConnection,
    event: &v1::Event,
    recorded: SystemTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO events (seq, at, kind, instance, body) VALUES (?, ?, ?, ?, ?)")
        .bind(to_i64(event.seq))
        .bind(to_micros(recorded))
        .bind(event.kind)
        .bind(&event.instance)
        .bind(event.encode_to_vec())
        .execute(conn)
        .await?;
    Ok(())
}

/// Reads `last_seq` and `last_revision` from `meta`.
pub(crate) async fn load_counters(
    conn: &mut SqliteConnection,
    path: &Arc<Path>,
) -> Result<(u64, u64), StoreError> {
    let mut values = [0u64; 2];
    for (slot, key) in values.iter_mut().zip(["last_seq", "last_revision"]) {
        let value = sqlx::query_scalar::<_, i64>("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| StoreError::from_sqlx(path, &e))?
            .ok_or_else(|| StoreError::Corrupt {
                path: Arc::clone(path),
                detail: format!("the meta table has no {key}"),
            })?;
        *slot = to_u64(path, key, value)?;
    }
    Ok((values[0], values[1]))
}
