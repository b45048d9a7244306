//! Counters shared by the store's handles and its writer task, read by `Store::stats`.

use super::types::StoreStats;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

const NO_WRITE_YET: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Counters {
    /// Transitions and events accepted by `record_*` and not yet committed: the queue that
    /// `max_queued_events` bounds (channel and writer queue together).
    pub(crate) queued: AtomicUsize,
    /// Lost since open (for metrics).
    pub(crate) lost_total: AtomicU64,
    /// Lost and not yet announced by an EVENTS_LOST event.
    pub(crate) lost_unreported: AtomicU64,
    last_write_micros: AtomicU64,
    pub(crate) failing: AtomicBool,
    pub(crate) last_seq: AtomicU64,
}

impl Counters {
    pub(crate) fn new(last_seq: u64) -> Self {
        Self {
            queued: AtomicUsize::new(0),
            lost_total: AtomicU64::new(0),
            lost_unreported: AtomicU64::new(0),
            last_write_micros: AtomicU64::new(NO_WRITE_YET),
            failing: AtomicBool::new(false),
            last_seq: AtomicU64::new(last_seq),
        }
    }

    pub(crate) fn set_last_write_latency(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(NO_WRITE_YET - 1);
        self.last_write_micros.store(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StoreStats {
        let micros = self.last_write_micros.load(Ordering::Relaxed);
        StoreStats {
            queued_events: self.queued.load(Ordering::Relaxed),
            lost_events: self.lost_total.load(Ordering::Relaxed),
            last_write_latency: (micros != NO_WRITE_YET).then(|| Duration::from_micros(micros)),
            failing: self.failing.load(Ordering::Relaxed),
            last_seq: self.last_seq.load(Ordering::Relaxed),
        }
    }
}
