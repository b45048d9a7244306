//! The gratuitous-announcement service: one task that sends every instance's gratuitous
//! ARPs and unsolicited neighbour advertisements, paced by one host-wide token bucket and
//! served round-robin.
//!
//! Why one task for the host: a master with hundreds of VIPs, or many instances failing
//! over at once, would otherwise put thousands of broadcasts on the segment in the same
//! millisecond (keepalived's GARP storms); switches drop or police such bursts, and the
//! announcements that matter get lost with the rest. The bucket bounds the rate for the
//! whole host, and round-robin between requests means an instance with 200 VIPs cannot
//! hold back another instance's single VIP: each queued request gets one message in turn.

use super::arp::{ETHERTYPE_ARP, gratuitous_arp};
use super::error::NetError;
use super::frame::FrameSocket;
use super::ndisc::{ETHERTYPE_IPV6, unsolicited_na_frame};
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set once the stopped service has been reported.
static STOPPED_REPORTED: AtomicBool = AtomicBool::new(false);
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How fast the host may announce, all instances together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpLimits {
    /// Messages per second, sustained. At least 1.
    pub rate_per_sec: u32,
    /// Messages that may go out back to back after a quiet period. At least 1.
    pub burst: u32,
}

impl Default for GarpLimits {
    /// 200 messages/s with bursts of 50: ten VIPs with keepalived's default of 5
    /// announcements each go out at once, 100 VIPs × 5 take about 2.3 s, and the segment
    /// never sees more than a few hundred broadcasts a second from this host, well under
    /// what switches' control-plane policers let through for ARP.
    fn default() -> Self {
        GarpLimits {
            rate_per_sec: 200,
            burst: 50,
        }
    }
}

/// One instance's announcement of its addresses.
#[derive(Clone, Debug)]
pub struct GarpRequest {
    /// The interface to send on (the VMAC interface when the instance uses one).
    pub ifindex: u32,
    /// The MAC the addresses are announced at, and the frames' Ethernet source.
    pub mac: [u8; 6],
    /// IPv4 addresses get gratuitous ARP, IPv6 ones unsolicited neighbour advertisements.
    pub addresses: Arc<[IpAddr]>,
    /// Rounds: each round sends one message per address.
    pub count: u32,
    /// The instance's counter, incremented for every message sent.
    pub sent: Arc<AtomicU64>,
    /// The Router flag of the neighbour advertisements (see
    /// [`super::ndisc::unsolicited_na`]).
    pub na_router: bool,
}

impl GarpRequest {
    /// A request with the Router flag set, as RFC 9568 §6.4.2 has a virtual router do.
    pub fn new(
        ifindex: u32,
        mac: [u8; 6],
        addresses: Arc<[IpAddr]>,
        count: u32,
        sent: Arc<AtomicU64>,
    ) -> Self {
        GarpRequest {
            ifindex,
            mac,
            addresses,
            count,
            sent,
            na_router: true,
        }
    }

    fn total(&self) -> u64 {
        u64::from(self.count) * self.addresses.len() as u64
    }
}

/// Cancels the messages of a request not sent yet: an instance that stops being master
/// must stop announcing at once, or it pulls the traffic back from the new master.
/// Dropping the handle does not cancel.
#[derive(Clone, Debug)]
pub struct GarpHandle {
    cancelled: Arc<AtomicBool>,
}

impl GarpHandle {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// The sending side of the service; cheap to clone. The task ends when every clone has
/// been dropped and the queued requests are done.
#[derive(Clone, Debug)]
pub struct GarpService {
    requests: mpsc::UnboundedSender<Job>,
}

impl GarpService {
    /// Opens the `AF_PACKET` socket and spawns the task on the current tokio runtime.
    /// Fails when the socket cannot be opened (no CAP_NET_RAW), so the daemon learns at
    /// start rather than at its first failover.
    pub fn spawn(limits: GarpLimits) -> Result<GarpService, NetError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetError::SocketOpen {
                what: "the gratuitous ARP service",
                ifname: "every interface".into(),
                source: io::Error::other("GarpService::spawn was called outside a tokio runtime"),
            });
        }
        let socket = FrameSocket::open()?;
        Ok(Self::spawn_with(limits, socket))
    }

    fn spawn_with<S: FrameSink + Send + 'static>(limits: GarpLimits, sink: S) -> GarpService {
        let (requests, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(limits, sink, rx));
        GarpService { requests }
    }

    /// Queues `request` behind those already queued; never blocks.
    pub fn request(&self, request: GarpRequest) -> GarpHandle {
        let cancelled = Arc::new(AtomicBool::new(false));
        let handle = GarpHandle {
            cancelled: Arc::clone(&cancelled),
        };
        if request.total() == 0 {
            return handle;
        }
        let job = Job {
            request,
            cancelled,
            round: 0,
            next: 0,
            failures: 0,
        };
        // Only after the runtime shut down, when nothing is sent anyway; said once.
        if self.requests.send(job).is_err() && !STOPPED_REPORTED.swap(true, Ordering::Relaxed) {
            warn!("the gratuitous ARP service has stopped; announcements are dropped");
        }
        handle
    }
}

/// Where frames go: the `AF_PACKET` socket, or a recorder in tests.
trait FrameSink {
    fn send(&mut self, ifindex: u32, ethertype: u16, frame: &[u8]) -> io::Result<()>;
}

impl FrameSink for FrameSocket {
    fn send(&mut self, ifindex: u32, ethertype: u16, frame: &[u8]) -> io::Result<()> {
        FrameSocket::send(self, ifindex, ethertype, frame)
    }
}

/// A request being served.
struct Job {
    request: GarpRequest,
    cancelled: Arc<AtomicBool>,
    /// Rounds done.
    round: u32,
    /// Index of the next address in the round.
    next: usize,
    failures: u64,
}

enum Step {
    More,
    Done,
}

impl Job {
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Sends the next message and moves on.
    fn send_next(&mut self, sink: &mut impl FrameSink) -> Step {
        let r = &self.request;
        let Some(&addr) = r.addresses.get(self.next) else {
            return Step::Done;
        };
        let result = match addr {
            IpAddr::V4(a) => sink.send(r.ifindex, ETHERTYPE_ARP, &gratuitous_arp(r.mac, a)),
            IpAddr::V6(a) => sink.send(
                r.ifindex,
                ETHERTYPE_IPV6,
                &unsolicited_na_frame(r.mac, a, r.na_router),
            ),
        };
        match result {
            Ok(()) => {
                r.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if is_gone(&e) => {
                // Logged once: the request ends here.
                warn!(
                    ifindex = r.ifindex,
                    error = %e,
                    unsent = self.remaining(),
                    "interface gone or down; dropping the rest of this announcement"
                );
                return Step::Done;
            }
            Err(e) => {
                self.failures += 1;
                if self.failures == 1 {
                    warn!(
                        ifindex = r.ifindex,
                        address = %addr,
                        error = %e,
                        "cannot send a gratuitous ARP / neighbour advertisement; further failures of this announcement are only counted"
                    );
                }
            }
        }
        self.next += 1;
        if self.next == r.addresses.len() {
            self.next = 0;
            self.round += 1;
        }
        if self.round >= r.count {
            Step::Done
        } else {
            Step::More
        }
    }

    /// Messages not yet attempted.
    fn remaining(&self) -> u64 {
        let per_round = self.request.addresses.len() as u64;
        let done = u64::from(self.round) * per_round + self.next as u64;
        self.request.total().saturating_sub(done)
    }

    fn finish(&self) {
        if self.failures > 0 {
            info!(
                ifindex = self.request.ifindex,
                failed = self.failures,
                total = self.request.total(),
                "announcement finished with failures"
            );
        }
    }
}

/// The interface cannot carry the rest of the request: it is gone or down.
fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENODEV | libc::ENXIO | libc::ENETDOWN)
    )
}

async fn run<S: FrameSink>(
    limits: GarpLimits,
    mut sink: S,
    mut requests: mpsc::UnboundedReceiver<Job>,
) {
    let mut bucket = TokenBucket::new(limits, Instant::now());
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        while let Ok(job) = requests.try_recv() {
            queue.push_back(job);
        }
        if queue.is_empty() {
            match requests.recv().await {
                Some(job) => queue.push_back(job),
                None => return,
            }
            continue;
        }
        let Some(mut job) = queue.pop_front() else {
            continue;
        };
        if job.is_cancelled() {
            debug!(
                ifindex = job.request.ifindex,
                unsent = job.remaining(),
                "announcement cancelled"
            );
            continue;
        }
        let wait = bucket.wait(Instant::now());
        if !wait.is_zero() {
            // Keep the job's place; requests arriving meanwhile queue behind it.
            queue.push_front(job);
            tokio::time::sleep(wait).await;
            continue;
        }
        bucket.take();
        match job.send_next(&mut sink) {
            Step::More => queue.push_back(job),
            Step::Done => job.finish(),
        }
    }
}

/// A token bucket in integer arithmetic: one token is `UNIT` micro-tokens, so waits come
/// out exact and a sleep of [`TokenBucket::wait`] always yields a whole token.
#[derive(Debug)]
struct TokenBucket {
    /// Micro-tokens added per nanosecond: the rate in tokens per second.
    rate: u64,
    capacity: u64,
    tokens: u64,
    last: Instant,
}

/// Micro-tokens per token: a token per second refills one unit per nanosecond.
const UNIT: u64 = 1_000_000_000;

impl TokenBucket {
    fn new(limits: GarpLimits, now: Instant) -> Self {
        let capacity = u64::from(limits.burst.max(1)) * UNIT;
        TokenBucket {
            rate: u64::from(limits.rate_per_sec.max(1)),
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.tokens = self
            .tokens
            .saturating_add(nanos.saturating_mul(self.rate))
            .min(self.capacity);
        self.last = now;
    }

    /// How long until a token is available (zero: now).
    fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= UNIT {
            Duration::ZERO
        } else {
            Duration::from_nanos((UNIT - self.tokens).div_ceil(self.rate))
        }
    }

    /// Spends a token; only after [`TokenBucket::wait`] returned zero.
    fn take(&mut self) {
        self.tokens = self.tokens.saturating_sub(UNIT);
    }
}

#[cfg(test)]
mod tests;
