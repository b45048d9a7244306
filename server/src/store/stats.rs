//! Counters shared by the store's handles and its writer task, read by `Store::stats`.

use super::types::{LatencyHistogram, StoreStats};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

const NO_WRITE_YET: u64 = u64::MAX;

/// Upper bounds of the write-latency buckets, in microseconds: 0.5 ms to 5 s. A write
/// commits with synchronous=FULL at times, so milliseconds are normal and seconds mean a
/// sick disk.
const WRITE_BOUNDS_MICROS: [u64; 12] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    5_000_000,
];

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
    /// Writes per bucket of [`WRITE_BOUNDS_MICROS`] (not cumulative), and above the last.
    write_buckets: [AtomicU64; WRITE_BOUNDS_MICROS.len() + 1],
    write_sum_micros: AtomicU64,
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
            write_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            write_sum_micros: AtomicU64::new(0),
        }
    }

    /// A write transaction succeeded in `d`.
    pub(crate) fn set_last_write_latency(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(NO_WRITE_YET - 1);
        self.last_write_micros.store(micros, Ordering::Relaxed);
        let bucket = WRITE_BOUNDS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(WRITE_BOUNDS_MICROS.len());
        if let Some(b) = self.write_buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.write_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn write_latency(&self) -> LatencyHistogram {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(WRITE_BOUNDS_MICROS.len());
        for (bound, n) in WRITE_BOUNDS_MICROS.iter().zip(&self.write_buckets) {
            cumulative += n.load(Ordering::Relaxed);
            buckets.push((*bound as f64 / 1e6, cumulative));
        }
        let count = cumulative
            + self
                .write_buckets
                .last()
                .map_or(0, |n| n.load(Ordering::Relaxed));
        LatencyHistogram {
            buckets,
            count,
            sum_seconds: self.write_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    pub(crate) fn snapshot(&self) -> StoreStats {
        let micros = self.last_write_micros.load(Ordering::Relaxed);
        StoreStats {
            queued_events: self.queued.load(Ordering::Relaxed),
            lost_events: self.lost_total.load(Ordering::Relaxed),
            last_write_latency: (micros != NO_WRITE_YET).then(|| Duration::from_micros(micros)),
            failing: self.failing.load(Ordering::Relaxed),
            last_seq: self.last_seq.load(Ordering::Relaxed),
            write_latency: self.write_latency(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_latencies_land_in_cumulative_buckets() {
        let c = Counters::new(0);
        c.set_last_write_latency(Duration::from_micros(300));
        c.set_last_write_latency(Duration::from_millis(3));
        c.set_last_write_latency(Duration::from_secs(9));
        let h = c.snapshot().write_latency;
        assert_eq!(h.count, 3);
        assert!((h.sum_seconds - 9.0033).abs() < 1e-9, "{}", h.sum_seconds);
        assert_eq!(h.buckets.first(), Some(&(0.0005, 1)));
        assert!(h.buckets.contains(&(0.005, 2)));
        assert_eq!(
            h.buckets.last(),
            Some(&(5.0, 2)),
            "9 s is above every bound"
        );
    }
}
