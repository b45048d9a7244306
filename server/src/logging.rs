//! Logging set-up and the rate limiter that keeps repeated warnings (a flood of bad
//! packets, a failing send) to one line per window with a count of what was suppressed.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How often one repeated message may be logged.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// Decides, per key, whether a repeated message is logged now.
#[derive(Debug)]
pub struct RateLimiter<K> {
    window: Duration,
    seen: HashMap<K, Slot>,
}

#[derive(Debug)]
struct Slot {
    logged_at: Instant,
    suppressed: u64,
}

impl<K: Eq + Hash> RateLimiter<K> {
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            window,
            seen: HashMap::new(),
        }
    }

    /// `Some(n)` when this occurrence should be logged, `n` being how many were suppressed
    /// since the last line; `None` to stay quiet.
    pub fn check(&mut self, key: K, now: Instant) -> Option<u64> {
        match self.seen.get_mut(&key) {
            Some(slot) if now.duration_since(slot.logged_at) < self.window => {
                slot.suppressed += 1;
                None
            }
            Some(slot) => {
                let n = slot.suppressed;
                slot.logged_at = now;
                slot.suppressed = 0;
                Some(n)
            }
            None => {
                // Forget keys that went quiet, so the map cannot grow without bound.
                if self.seen.len() > 4096 {
                    let window = self.window;
                    self.seen
                        .retain(|_, s| now.duration_since(s.logged_at) < window);
                }
                self.seen.insert(
                    key,
                    Slot {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_with_the_suppressed_count() {
        let mut rl = RateLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(rl.check("bad_checksum", t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(
                rl.check("bad_checksum", t0 + Duration::from_millis(i)),
                None
            );
        }
        assert_eq!(rl.check("other", t0), Some(0), "keys are independent");
        assert_eq!(
            rl.check("bad_checksum", t0 + Duration::from_secs(11)),
            Some(1000)
        );
    }
}
