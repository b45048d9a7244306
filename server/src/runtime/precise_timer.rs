//! The data plane's timer: a sleep that ends at its deadline to the microsecond.
//!
//! Tokio's timer rounds every deadline up to its next millisecond tick, and the epoll wait
//! it parks in takes whole milliseconds, rounded up again. An advert fired through it left
//! 0–2 ms after its slot, by an amount that changed from one interval to the next with when
//! the thread last parked: at 10 ms adverts, a send jitter p99 of about 1 ms on an idle host
//! (docs/BENCHMARKS-ANALYSIS.md). A timerfd is a high-resolution kernel timer, and a thread
//! under SCHED_RR has no timer slack, so the wake-up comes at the deadline.

use crate::net::sys::{OwnsFd, register_readable};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;
use tokio::io::unix::AsyncFd;

/// A timerfd as the reactor needs it: owning its descriptor and naming it.
struct OwnedTimerFd(TimerFd);

impl AsRawFd for OwnedTimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

// A TimerFd holds an OwnedFd, returns it from as_fd and closes it when dropped.
impl OwnsFd for OwnedTimerFd {}

impl std::fmt::Debug for OwnedTimerFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timerfd {}", self.as_raw_fd())
    }
}

#[derive(Debug)]
pub struct PreciseTimer {
    fd: AsyncFd<OwnedTimerFd>,
}

impl PreciseTimer {
    /// A timer on the monotonic clock (the one [`Instant`] reads), registered with the
    /// current tokio runtime, which must have I/O enabled.
    pub fn new() -> io::Result<Self> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(PreciseTimer {
            fd: register_readable(OwnedTimerFd(timer))?,
        })
    }

    /// Sleeps until `deadline`, or not at all if it has passed.
    ///
    /// Cancel-safe: a sleep that is dropped leaves the timer armed, and the next call
    /// re-arms it, which also discards an expiry nobody waited for (`timerfd_settime`
    /// resets the count), so it cannot end the next sleep early.
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // A zero expiry would disarm the timer instead of firing it.
            return Ok(());
        }
        self.fd.get_ref().0.set(
            Expiration::OneShot(TimeSpec::from_duration(left)),
            TimerSetTimeFlags::empty(),
        )?;
        loop {
            let mut ready = self.fd.readable().await?;
            let read = ready.try_io(|fd| {
                let mut expirations = [0u8; 8];
                nix::unistd::read(fd.get_ref().0.as_fd(), &mut expirations).map_err(io::Error::from)
            });
            match read {
                Ok(result) => {
                    // A one-shot timer that has fired stays quiet until it is re-armed, so
                    // the next sleep should wait for the reactor, not read to learn that.
                    ready.clear_ready();
                    return result.map(drop);
                }
                // Readiness left from an expiry the re-arm discarded: wait for the real one.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_sleep_never_ends_before_its_deadline() {
        runtime().block_on(async {
            let timer = PreciseTimer::new().unwrap();
            for micros in [1, 150, 900, 2_500] {
                let deadline = Instant::now() + Duration::from_micros(micros);
                timer.sleep_until(deadline).await.unwrap();
                assert!(
                    Instant::now() >= deadline,
                    "woke before a {micros} µs deadline"
                );
            }
        });
    }

    #[test]
    fn a_deadline_already_passed_returns_at_once_and_leaves_the_timer_usable() {
        runtime().block_on(async {
            let timer = PreciseTimer::new().unwrap();
            let past = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            timer.sleep_until(past).await.unwrap();
            let deadline = Instant::now() + Duration::from_millis(2);
            timer.sleep_until(deadline).await.unwrap();
            assert!(Instant::now() >= deadline);
        });
    }

    #[test]
    fn an_abandoned_sleep_that_expires_unseen_does_not_end_the_next_one_early() {
        runtime().block_on(async {
            let timer = PreciseTimer::new().unwrap();
            // Armed for 1 ms, abandoned at once (as when the timer queue gets an earlier
            // deadline), then left to expire with nobody waiting.
            let abandoned = timer.sleep_until(Instant::now() + Duration::from_millis(1));
            let _ = tokio::time::timeout(Duration::ZERO, abandoned).await;
            std::thread::sleep(Duration::from_millis(5));
            let deadline = Instant::now() + Duration::from_millis(30);
            timer.sleep_until(deadline).await.unwrap();
            assert!(
                Instant::now() >= deadline,
                "the stale expiry ended the new sleep early"
            );
        });
    }
}
