//! The values the store's API takes and returns.

use havip_proto::v1;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The database file. Its folder is created if missing.
    pub path: PathBuf,
    /// Events and transitions older than this are pruned (at open and every hour). Config
    /// changes are the audit trail and are kept.
    pub event_retention: Duration,
    /// How many transitions and events may wait in memory while the database cannot be
    /// written (at least 1). Beyond it, new ones are counted as lost (see the module
    /// documentation).
    pub max_queued_events: usize,
    /// How many events a live watcher may have waiting before it is cut off (at least 1).
    pub subscriber_buffer: usize,
    /// How long a statement waits for another process's lock before the database counts as
    /// unavailable. Bounds how long a config change can take to fail.
    pub busy_timeout: Duration,
    /// Connections in the read pool (history queries, watch replays); at least 1.
    pub read_connections: u32,
}

impl StoreOptions {
    /// The defaults for the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            event_retention: Duration::from_secs(30 * 24 * 3600),
            max_queued_events: 100_000,
            subscriber_buffer: 1024,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
        }
    }
}

/// Which virtual router an instance is: the backstop UNIQUE(interface, vrid, family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceIdentity {
    pub interface: String,
    pub vrid: u8,
    /// 4 or 6.
    pub family: u8,
}

/// One config change to commit. The manager has validated it and assigned `revision`.
#[derive(Debug, Clone)]
pub struct ConfigCommit {
    pub kind: v1::ChangeKind,
    pub instance: String,
    /// The revision the change takes (the next of the one counter; a delete takes one too).
    pub revision: u64,
    /// Who made the change ("uid:0", a certificate subject).
    pub actor: String,
    pub comment: String,
    pub changed_fields: Vec<String>,
    /// The spec before the change (none for a create).
    pub old_spec: Option<v1::InstanceSpec>,
    /// The spec after the change (none for a delete). Stored as given, password included.
    pub new_spec: Option<v1::InstanceSpec>,
    /// Required for create and update.
    pub identity: Option<InstanceIdentity>,
    pub time: SystemTime,
}

/// One sync group change to commit. The manager has validated it and assigned `revision`.
#[derive(Debug, Clone)]
pub struct SyncGroupCommit {
    pub kind: v1::ChangeKind,
    pub group: String,
    /// The revision the change takes (the next of the one counter; a delete takes one too).
    pub revision: u64,
    pub actor: String,
    pub comment: String,
    /// `["instances"]` for an update that changed them.
    pub changed_fields: Vec<String>,
    /// The members before the change (none for a create).
    pub old_members: Option<Vec<String>>,
    /// The members after the change (none for a delete).
    pub new_members: Option<Vec<String>>,
    pub time: SystemTime,
}

/// A sync group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSyncGroup {
    pub name: String,
    /// In the order they were given.
    pub members: Vec<String>,
    pub revision: u64,
}

/// An instance as stored: what the manager starts from at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInstance {
    pub name: String,
    pub spec: v1::InstanceSpec,
    pub revision: u64,
    pub create_time: SystemTime,
    pub update_time: SystemTime,
}

/// A history query. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only this instance.
    pub instance: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries before this time.
    pub until: Option<SystemTime>,
    /// 0 means 100; more than 1000 means 1000.
    pub page_size: u32,
    /// A previous page's `next_page_token`, issued for the same filter.
    pub page_token: Option<String>,
}

/// One page of history.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; `None` when there is nothing more.
    pub next_page_token: Option<String>,
}

/// A snapshot of the store's health, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Transitions and events waiting to be written.
    pub queued_events: usize,
    /// Transitions and events dropped since open because the queue was full.
    pub lost_events: u64,
    /// How long the last successful write transaction took.
    pub last_write_latency: Option<Duration>,
    /// Whether the last write attempt failed (the writer is retrying).
    pub failing: bool,
    /// The seq of the last event written.
    pub last_seq: u64,
    /// How long every successful write transaction took, as a histogram.
    pub write_latency: LatencyHistogram,
}

/// A latency histogram: how many observations were at most each bound (cumulative, the
/// bounds in seconds and ascending), how many in all, and their sum.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyHistogram {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

// The bounds are finite constants, so equality is total here.
impl Eq for LatencyHistogram {}

/// What one prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub events: u64,
    pub transitions: u64,
}
