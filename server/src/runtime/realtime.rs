//! Real-time scheduling for the data-plane thread.
//!
//! A backup declares its master dead when it has not seen an advert for
//! Master_Down_Interval: 36 ms at a 10 ms advert interval. On a busy machine a thread with
//! ordinary priority can wait longer than that for a CPU, and a late thread is a false
//! failover. Under `SCHED_RR` the data plane runs ahead of every ordinary thread; it never
//! spins (reads are batched, timers sleep), so it takes only the little time it needs.
//!
//! The one `unsafe` call is `sched_setscheduler(2)`, which has no safe wrapper in nix or
//! libc. Sound because it only reads the `sched_param` passed by reference, a plain
//! integer struct fully initialised here, and pid 0 names the calling thread.

#![allow(unsafe_code)]

use std::io;

/// Puts the calling thread under `SCHED_RR` at `priority` (1–99).
pub fn make_current_thread_realtime(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: see the module comment.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy (`libc::SCHED_*`).
    fn current_policy() -> io::Result<i32> {
        // SAFETY: no arguments but pid 0, the calling thread.
        let policy = unsafe { libc::sched_getscheduler(0) };
        if policy < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(policy)
        }
    }

    #[test]
    fn a_thread_made_realtime_runs_under_sched_rr_or_says_why_not() {
        let outcome =
            std::thread::spawn(|| make_current_thread_realtime(1).map(|()| current_policy()))
                .join()
                .expect("thread");
        match outcome {
            Ok(policy) => assert_eq!(policy.expect("policy"), libc::SCHED_RR),
            // Without CAP_SYS_NICE or RLIMIT_RTPRIO the kernel refuses, and says so.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }
}
