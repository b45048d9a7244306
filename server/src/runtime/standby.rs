//! The standby sender: a second thread, kept on another CPU than the data plane's, that
//! repeats a master's last adverts while the data-plane thread is late.
//!
//! Why it exists: a virtual machine's host stops a vCPU now and then, on the benchmark VM
//! for about 100 ms at a time, several times a minute under load
//! (docs/BENCHMARKS-ANALYSIS.md, "Stability"). The guest cannot see it happen. A data-plane
//! thread on that vCPU sends nothing meanwhile, and at 10 ms adverts every backup on the
//! segment takes over 36 ms later: a false failover of the whole segment. Real-time
//! priority cannot help, since the thread is runnable and its CPU is what does not run; a
//! thread on another vCPU nearly always does.
//!
//! How: each time the data plane sends a master's advert it stamps the instance's
//! [`Cover`], a copy of the advert's datagrams, made again only when they change. The
//! standby wakes every half of the shortest interval it covers and sends the datagrams of
//! each cover whose master has sent nothing for one and a half intervals, so backups hear
//! the master on time. It decides nothing: it repeats what the data plane last sent, only
//! while the data plane keeps the cover, and for at most [`STAND_IN_LIMIT`] after the data
//! plane's last stamp, so a data plane that is wedged rather than paused still fails over.
//! The data plane withdraws a cover before the instance stops being master and before it
//! sends a priority-0 advert; withdrawing waits for a send in progress, so nothing the
//! standby sends follows it.

use super::InstanceId;
use super::board::LiveStatus;
use super::clock::Clock;
use crate::logging::{DEFAULT_WINDOW, RateLimiter};
use crate::net::mmsg::SendBatch;
use havip_vrrp::Family;
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long after the data plane last sent for a master the standby stops standing in:
/// ten times the longest host stall measured (about 100 ms), and short enough that a
/// data-plane thread that is stuck, not paused, still lets the backups take over soon.
pub(super) const STAND_IN_LIMIT: Duration = Duration::from_secs(1);

/// How long a master may go without an advert before the standby sends one, in advert
/// intervals: late enough that an advert the data plane sends on time (within a
/// millisecond of its slot) is never repeated, early enough that a backup (which waits
/// three intervals and its skew) hears one in time.
const LATE_AFTER_INTERVALS: f64 = 1.5;

/// How often the standby looks, in advert intervals of the shortest interval it covers:
/// a late master is covered at most [`LATE_AFTER_INTERVALS`] plus this after its last
/// advert, two intervals, a whole interval before a backup would take over.
const LOOK_EVERY_INTERVALS: f64 = 0.5;

/// The longest the standby sleeps with nothing to cover, so it notices the data plane
/// stopping even if no one wakes it.
const IDLE_SLEEP: Duration = Duration::from_secs(1);

/// One datagram of an advert, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Datagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4: the IP header and the VRRP message; IPv6: the message.
    pub wire: Vec<u8>,
    /// Where the VRRP message starts in `wire`.
    pub message_at: usize,
}

impl Datagram {
    fn message(&self) -> &[u8] {
        self.wire.get(self.message_at..).unwrap_or_default()
    }
}

/// What the standby sends for one master: its advert's datagrams and where they go out.
#[derive(Debug)]
pub(super) struct Cover {
    pub instance: Arc<str>,
    /// The interface and family the adverts leave from (identifies the socket).
    pub channel: (u32, Family),
    pub interval: Duration,
    pub socket: Arc<OwnedFd>,
    pub datagrams: Vec<Datagram>,
    pub live: Arc<LiveStatus>,
    /// When the data plane last sent these (nanoseconds on the data plane's clock).
    stamped: AtomicU64,
    /// When the data plane or the standby last sent them.
    sent: AtomicU64,
}

impl Cover {
    pub fn new(
        instance: Arc<str>,
        channel: (u32, Family),
        interval: Duration,
        socket: Arc<OwnedFd>,
        datagrams: Vec<Datagram>,
        live: Arc<LiveStatus>,
    ) -> Self {
        Cover {
            instance,
            channel,
            interval,
            socket,
            datagrams,
            live,
            stamped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// Whether this cover still holds the advert the data plane is sending, datagram
    /// `index` of it being `message` from `src` to `dst`.
    pub fn repeats(&self, index: usize, src: IpAddr, dst: IpAddr, message: &[u8]) -> bool {
        self.datagrams
            .get(index)
            .is_some_and(|d| d.src == src && d.dst == dst && d.message() == message)
    }

    /// The data plane sent the advert at `now`.
    pub fn stamp(&self, now: Duration) {
        let now = nanos(now);
        self.stamped.store(now, Ordering::Relaxed);
        self.sent.fetch_max(now, Ordering::Relaxed);
    }

    /// Whether the standby should send for this master at `now`: late, and not past the
    /// time it stands in for.
    fn due(&self, now: u64) -> bool {
        let stamped = self.stamped.load(Ordering::Relaxed);
        let sent = self.sent.load(Ordering::Relaxed);
        let late_after = nanos(self.interval.mul_f64(LATE_AFTER_INTERVALS));
        now.saturating_sub(sent) >= late_after
            && now.saturating_sub(stamped) < nanos(STAND_IN_LIMIT)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What the data plane and the standby thread share.
#[derive(Debug)]
struct Board {
    clock: Clock,
    covers: Mutex<HashMap<InstanceId, Arc<Cover>>>,
    /// Wakes the standby when a cover is added or the data plane stops.
    changed: Condvar,
    stopping: AtomicBool,
}

impl Board {
    fn covers(&self) -> MutexGuard<'_, HashMap<InstanceId, Arc<Cover>>> {
        // A send that panicked leaves nothing half done: the map is only inserted into and
        // removed from.
        self.covers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The data plane's handle on the standby sender; the thread ends when this is dropped.
#[derive(Debug)]
pub(super) struct Standby {
    board: Arc<Board>,
}

/// Where the data plane and the standby run: disjoint sets of CPUs.
#[derive(Debug, Clone)]
pub(super) struct Placement {
    pub data_plane: nix::sched::CpuSet,
    pub standby_cpu: usize,
}

impl Placement {
    /// The last CPU this process may run on for the standby, the others for the data
    /// plane; `None` with fewer than two, where a standby could not run while the data
    /// plane's CPU does not.
    pub fn choose() -> Option<Placement> {
        let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
        let cpus: Vec<usize> = (0..nix::sched::CpuSet::count())
            .filter(|&cpu| allowed.is_set(cpu).unwrap_or(false))
            .collect();
        Placement::split(&cpus)
    }

    fn split(cpus: &[usize]) -> Option<Placement> {
        let (&standby_cpu, rest) = cpus.split_last()?;
        if rest.is_empty() {
            return None;
        }
        let mut data_plane = nix::sched::CpuSet::new();
        for &cpu in rest {
            data_plane.set(cpu).ok()?;
        }
        Some(Placement {
            data_plane,
            standby_cpu,
        })
    }

    /// Keeps the calling thread (the data plane's) off the standby's CPU.
    pub fn pin_data_plane(&self) -> nix::Result<()> {
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &self.data_plane)
    }

    fn pin_standby(&self) -> nix::Result<()> {
        let mut only = nix::sched::CpuSet::new();
        only.set(self.standby_cpu)?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &only)
    }
}

impl Standby {
    /// Starts the standby thread on `placement.standby_cpu`, under SCHED_RR at
    /// `realtime_priority` when that is above 0 (as the data plane).
    pub fn spawn(
        clock: Clock,
        placement: &Placement,
        realtime_priority: u8,
    ) -> std::io::Result<Standby> {
        let standby = Standby::new(clock);
        let thread_board = standby.board.clone();
        let placement = placement.clone();
        std::thread::Builder::new()
            .name("havip-standby".into())
            .spawn(move || {
                if let Err(e) = placement.pin_standby() {
                    warn!(cpu = placement.standby_cpu, error = %e, "cannot keep the standby sender on its CPU; it covers a stalled data plane only when the two happen to run on different CPUs");
                }
                if realtime_priority > 0
                    && let Err(e) = super::realtime::make_current_thread_realtime(realtime_priority)
                {
                    warn!(priority = realtime_priority, error = %e, "cannot give the standby sender real-time priority; it runs with ordinary priority");
                }
                run(&thread_board);
            })?;
        Ok(standby)
    }

    /// The board, without the thread that sends.
    fn new(clock: Clock) -> Standby {
        Standby {
            board: Arc::new(Board {
                clock,
                covers: Mutex::new(HashMap::new()),
                changed: Condvar::new(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// Now, as covers are stamped.
    pub fn now(&self) -> Duration {
        self.board.clock.now().since_origin()
    }

    /// Has the standby repeat `cover` for `id` from now on, in place of what it had.
    pub fn cover(&self, id: InstanceId, cover: Cover) -> CoverHandle {
        cover.stamp(self.now());
        let cover = Arc::new(cover);
        self.board.covers().insert(id, cover.clone());
        self.board.changed.notify_one();
        CoverHandle {
            id,
            cover,
            board: self.board.clone(),
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        self.board.stopping.store(true, Ordering::Relaxed);
        self.board.changed.notify_one();
    }
}

/// The data plane's hold on one master's cover; dropping it withdraws the cover, waiting
/// for a send of the standby's in progress.
#[derive(Debug)]
pub(super) struct CoverHandle {
    id: InstanceId,
    cover: Arc<Cover>,
    board: Arc<Board>,
}

impl std::ops::Deref for CoverHandle {
    type Target = Cover;

    fn deref(&self) -> &Cover {
        &self.cover
    }
}

impl Drop for CoverHandle {
    fn drop(&mut self) {
        let mut covers = self.board.covers();
        // Only this cover: a newer one for the instance replaced it already.
        if covers
            .get(&self.id)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cover))
        {
            covers.remove(&self.id);
        }
    }
}

/// The standby thread.
fn run(board: &Board) {
    let mut reports = RateLimiter::new(DEFAULT_WINDOW);
    let mut covering = Vec::new();
    let mut sleep = IDLE_SLEEP;
    loop {
        let covers = board.covers();
        let (covers, _) = board
            .changed
            .wait_timeout(covers, sleep)
            .unwrap_or_else(PoisonError::into_inner);
        if board.stopping.load(Ordering::Relaxed) {
            return;
        }
        let now = nanos(board.clock.now().since_origin());
        let mut shortest = None::<Duration>;
        for cover in covers.values() {
            shortest = Some(shortest.map_or(cover.interval, |s| s.min(cover.interval)));
            if cover.due(now) {
                covering.push(cover.clone());
            }
        }
        sleep = shortest.map_or(IDLE_SLEEP, |s| s.mul_f64(LOOK_EVERY_INTERVALS));
        if covering.is_empty() {
            continue;
        }
        // Sent while the covers are locked: a withdrawal waits for these to leave.
        let sent = send(&covering, now);
        drop(covers);
        if let Some(suppressed) = reports.check((), Instant::now()) {
            info!(
                masters = covering.len(),
                adverts = sent,
                first = %covering[0].instance,
                suppressed,
                "the data-plane thread is late (its CPU is not running: a host stall?); the standby sender repeats its masters' adverts"
            );
        }
        // Hold no cover (nor its socket) past its withdrawal.
        covering.clear();
    }
}

/// Sends the adverts of `covering`, one `sendmmsg` per socket; how many went out.
fn send(covering: &[Arc<Cover>], now: u64) -> usize {
    // Per socket: its batch and, in queue order, whose each datagram is.
    let mut sockets: Vec<(&Cover, SendBatch, Vec<&Cover>)> = Vec::new();
    for cover in covering {
        let index = match sockets
            .iter()
            .position(|(first, _, _)| Arc::ptr_eq(&first.socket, &cover.socket))
        {
            Some(index) => index,
            None => {
                sockets.push((cover, SendBatch::default(), Vec::new()));
                sockets.len() - 1
            }
        };
        let (_, batch, owners) = &mut sockets[index];
        for d in &cover.datagrams {
            batch.push(d.src, d.dst, &[&d.wire]);
            owners.push(cover);
        }
        cover.sent.fetch_max(now, Ordering::Relaxed);
    }
    let mut sent = 0;
    for (first, mut batch, owners) in sockets {
        let mut owners = owners.into_iter();
        batch.send(
            first.socket.as_raw_fd(),
            first.channel.0,
            |_, _, outcome| {
                let Some(cover) = owners.next() else {
                    return;
                };
                let counters = &cover.live.counters;
                if outcome.is_ok() {
                    sent += 1;
                    counters.adverts_sent.fetch_add(1, Ordering::Relaxed);
                    counters
                        .adverts_sent_by_standby
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            },
        );
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::board::Identity;
    use std::net::Ipv4Addr;
    use std::time::SystemTime;

    const MS: u64 = 1_000_000;

    fn datagram(message: &[u8]) -> Datagram {
        let mut wire = vec![0x45; 20];
        wire.extend_from_slice(message);
        Datagram {
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(224, 0, 0, 18).into(),
            wire,
            message_at: 20,
        }
    }

    fn cover(interval_ms: u64, message: &[u8]) -> Cover {
        let socket = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        let identity = Identity {
            name: "vip".into(),
            interface: "eth0".into(),
            vrid: 1,
        };
        Cover::new(
            "vip".into(),
            (2, Family::Ipv4),
            Duration::from_millis(interval_ms),
            Arc::new(socket),
            vec![datagram(message)],
            Arc::new(LiveStatus::new(SystemTime::now(), identity)),
        )
    }

    #[test]
    fn a_master_is_covered_once_late_by_one_and_a_half_intervals_and_not_for_ever() {
        let c = cover(10, b"advert");
        c.stamp(Duration::from_millis(100));
        assert!(!c.due(100 * MS), "just sent");
        assert!(!c.due(110 * MS), "an advert on time is never repeated");
        assert!(!c.due(114 * MS));
        assert!(c.due(115 * MS), "late by one and a half intervals");
        c.sent.fetch_max(115 * MS, Ordering::Relaxed);
        assert!(
            !c.due(120 * MS),
            "repeated at most once an interval and a half"
        );
        assert!(c.due(130 * MS));
        assert!(
            c.due(100 * MS + nanos(STAND_IN_LIMIT) - 1),
            "a stall up to the limit is covered"
        );
        assert!(
            !c.due(100 * MS + nanos(STAND_IN_LIMIT)),
            "a data plane silent for longer is not paused but stuck: its backups take over"
        );
        c.stamp(Duration::from_millis(2_000));
        assert!(!c.due(2_005 * MS), "the data plane is back");
    }

    #[test]
    fn a_cover_repeats_only_the_advert_it_was_made_from() {
        let c = cover(10, b"advert");
        let d = &c.datagrams[0];
        assert!(c.repeats(0, d.src, d.dst, b"advert"));
        assert!(!c.repeats(0, d.src, d.dst, b"advers"), "a new priority");
        assert!(!c.repeats(0, d.dst, d.dst, b"advert"), "a new source");
        assert!(!c.repeats(1, d.src, d.dst, b"advert"), "another peer");
    }

    #[test]
    fn dropping_a_handle_withdraws_its_cover_but_not_the_one_that_replaced_it() {
        let standby = Standby::new(Clock::start());
        let id = InstanceId(7);
        let first = standby.cover(id, cover(10, b"priority 100"));
        assert_eq!(standby.board.covers().len(), 1);
        let second = standby.cover(id, cover(10, b"priority 90"));
        drop(first);
        let covers = standby.board.covers();
        let kept = covers.get(&id).expect("the newer cover stays");
        assert!(Arc::ptr_eq(kept, &second.cover));
        drop(covers);
        drop(second);
        assert!(standby.board.covers().is_empty(), "withdrawn");
    }

    #[test]
    fn the_standby_takes_the_last_cpu_and_the_data_plane_the_others() {
        assert!(Placement::split(&[]).is_none());
        assert!(Placement::split(&[3]).is_none(), "one CPU: no standby");
        let two = Placement::split(&[0, 1]).expect("two CPUs");
        assert_eq!(two.standby_cpu, 1);
        assert!(two.data_plane.is_set(0).unwrap() && !two.data_plane.is_set(1).unwrap());
        let sparse = Placement::split(&[0, 2, 5]).expect("three CPUs");
        assert_eq!(sparse.standby_cpu, 5);
        let data_plane: Vec<usize> = (0..8)
            .filter(|&c| sparse.data_plane.is_set(c).unwrap())
            .collect();
        assert_eq!(data_plane, [0, 2]);
    }
}
