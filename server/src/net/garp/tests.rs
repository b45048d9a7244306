//! The scheduler on tokio's paused clock with a recording sink: exact counts at exact
//! times, so the rate limit, fairness and cancellation are checked deterministically. The
//! namespace tests check the same service on a real wire.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// (ifindex, EtherType, frame)
type Sent = (u32, u16, Vec<u8>);

#[derive(Clone, Default)]
struct Recorder {
    frames: Arc<Mutex<Vec<Sent>>>,
    /// The errno every send to this ifindex fails with.
    failing: Option<(u32, i32)>,
    /// Sends that fail (with EAGAIN) before sends succeed again.
    transient_failures: Arc<Mutex<u32>>,
    attempts: Arc<AtomicU64>,
}

impl FrameSink for Recorder {
    fn send(&mut self, ifindex: u32, ethertype: u16, frame: &[u8]) -> io::Result<()> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if let Some((bad, errno)) = self.failing
            && bad == ifindex
        {
            return Err(io::Error::from_raw_os_error(errno));
        }
        {
            let mut left = self.transient_failures.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
        }
        self.frames
            .lock()
            .unwrap()
            .push((ifindex, ethertype, frame.to_vec()));
        Ok(())
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.frames.lock().unwrap().len()
    }

    fn frames(&self) -> Vec<Sent> {
        self.frames.lock().unwrap().clone()
    }
}

fn v4_addresses(n: u32, base: [u8; 3]) -> Arc<[IpAddr]> {
    (0..n)
        .map(|i| {
            IpAddr::V4(Ipv4Addr::new(
                base[0],
                base[1],
                base[2],
                u8::try_from(i).unwrap(),
            ))
        })
        .collect()
}

fn request(ifindex: u32, addresses: Arc<[IpAddr]>, count: u32) -> (GarpRequest, Arc<AtomicU64>) {
    let sent = Arc::new(AtomicU64::new(0));
    (
        GarpRequest::new(ifindex, MAC, addresses, count, Arc::clone(&sent)),
        sent,
    )
}

/// Lets the service task run until it has nothing to do at the current instant.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn sends_count_rounds_of_one_message_per_address() {
    let sink = Recorder::default();
    let service = GarpService::spawn_with(GarpLimits::default(), sink.clone());
    let v4a = Ipv4Addr::new(192, 0, 2, 10);
    let v4b = Ipv4Addr::new(192, 0, 2, 11);
    let v6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let addresses: Arc<[IpAddr]> =
        Arc::from(vec![IpAddr::V4(v4a), IpAddr::V6(v6), IpAddr::V4(v4b)]);
    let (mut req, sent) = request(7, addresses, 2);
    req.na_router = false;
    service.request(req);
    settle().await;

    let arp_a = gratuitous_arp(MAC, v4a).to_vec();
    let arp_b = gratuitous_arp(MAC, v4b).to_vec();
    let na = unsolicited_na_frame(MAC, v6, false).to_vec();
    let expected: Vec<Sent> = [&arp_a, &na, &arp_b, &arp_a, &na, &arp_b]
        .into_iter()
        .map(|f| {
            let ethertype = if f.len() == arp_a.len() {
                ETHERTYPE_ARP
            } else {
                ETHERTYPE_IPV6
            };
            (7, ethertype, f.clone())
        })
        .collect();
    assert_eq!(sink.frames(), expected);
    assert_eq!(sent.load(Ordering::Relaxed), 6);
}

#[tokio::test(start_paused = true)]
async fn na_router_flag_follows_the_request() {
    let sink = Recorder::default();
    let service = GarpService::spawn_with(GarpLimits::default(), sink.clone());
    let v6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let (req, _) = request(7, Arc::from(vec![IpAddr::V6(v6)]), 1);
    assert!(req.na_router, "RFC 9568 §6.4.2: set by default");
    service.request(req);
    settle().await;
    assert_eq!(
        sink.frames()[0].2,
        unsolicited_na_frame(MAC, v6, true).to_vec()
    );
}

/// The bucket: a burst, then the rate, exactly, on the paused clock.
#[tokio::test(start_paused = true)]
async fn rate_limit_holds_at_every_checkpoint_and_everything_goes_out() {
    let sink = Recorder::default();
    let limits = GarpLimits {
        rate_per_sec: 100,
        burst: 50,
    };
    let service = GarpService::spawn_with(limits, sink.clone());
    let (req, sent) = request(3, v4_addresses(100, [10, 0, 0]), 5);
    let start = Instant::now();
    service.request(req);
    settle().await;
    assert_eq!(sink.count(), 50, "the burst goes out at once");

    for step in 1..=45u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        settle().await;
        let elapsed = Instant::now() - start;
        let allowed = 50 + (elapsed.as_millis() as u64) * 100 / 1000;
        let n = sink.count() as u64;
        assert!(n <= allowed, "step {step}: {n} sent, allowed {allowed}");
        assert!(
            n + 1 >= allowed.min(500),
            "step {step}: only {n} sent, {allowed} allowed"
        );
    }
    assert_eq!(sink.count(), 500);
    assert_eq!(sent.load(Ordering::Relaxed), 500);
}

/// Round-robin: a single-VIP request queued behind a 100-VIP one goes out second.
#[tokio::test(start_paused = true)]
async fn small_request_is_not_starved_by_a_big_one() {
    let sink = Recorder::default();
    let limits = GarpLimits {
        rate_per_sec: 100,
        burst: 10,
    };
    let service = GarpService::spawn_with(limits, sink.clone());
    let (big, _) = request(1, v4_addresses(100, [10, 0, 0]), 5);
    let (small, small_sent) = request(2, v4_addresses(1, [10, 9, 9]), 1);
    service.request(big);
    service.request(small);
    settle().await;
    let frames = sink.frames();
    assert_eq!(frames.len(), 10);
    assert_eq!(frames[1].0, 2, "the small request's message is second");
    assert_eq!(small_sent.load(Ordering::Relaxed), 1);

    // Arriving while the big one waits for tokens: served with the next token but one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    let before = sink.count();
    let (late, late_sent) = request(4, v4_addresses(1, [10, 8, 8]), 2);
    service.request(late);
    tokio::time::sleep(Duration::from_millis(60)).await;
    settle().await;
    let frames = sink.frames();
    let late_positions: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.0 == 4)
        .map(|(i, _)| i - before)
        .collect();
    assert_eq!(
        late_positions,
        vec![1, 3],
        "alternating with the big request"
    );
    assert_eq!(late_sent.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn cancelled_requests_stop_at_once() {
    let sink = Recorder::default();
    let limits = GarpLimits {
        rate_per_sec: 10,
        burst: 5,
    };
    let service = GarpService::spawn_with(limits, sink.clone());
    let (req, sent) = request(1, v4_addresses(10, [10, 0, 0]), 3);
    let handle = service.request(req);
    settle().await;
    assert_eq!(sink.count(), 5);
    handle.cancel();
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(sink.count(), 5);
    assert_eq!(sent.load(Ordering::Relaxed), 5);

    // The service goes on serving others, with a refilled bucket.
    let (other, other_sent) = request(2, v4_addresses(2, [10, 1, 1]), 1);
    service.request(other);
    settle().await;
    assert_eq!(other_sent.load(Ordering::Relaxed), 2);
}

/// A request for an interface that is gone is tried once and dropped; others go on.
#[tokio::test(start_paused = true)]
async fn interface_gone_drops_the_request_after_one_attempt() {
    for errno in [libc::ENXIO, libc::ENODEV, libc::ENETDOWN] {
        let sink = Recorder {
            failing: Some((9, errno)),
            ..Recorder::default()
        };
        let service = GarpService::spawn_with(GarpLimits::default(), sink.clone());
        let (gone, gone_sent) = request(9, v4_addresses(20, [10, 0, 0]), 5);
        service.request(gone);
        let (ok, ok_sent) = request(1, v4_addresses(2, [10, 1, 1]), 2);
        service.request(ok);
        tokio::time::sleep(Duration::from_secs(5)).await;
        settle().await;
        assert_eq!(gone_sent.load(Ordering::Relaxed), 0);
        assert_eq!(ok_sent.load(Ordering::Relaxed), 4);
        assert_eq!(
            sink.attempts.load(Ordering::Relaxed),
            1 + 4,
            "errno {errno}"
        );
    }
}

/// Other send errors (a full buffer) cost that one message; the rest still go out.
#[tokio::test(start_paused = true)]
async fn transient_failures_are_counted_not_fatal() {
    let sink = Recorder {
        transient_failures: Arc::new(Mutex::new(3)),
        ..Recorder::default()
    };
    let service = GarpService::spawn_with(GarpLimits::default(), sink.clone());
    let (req, sent) = request(1, v4_addresses(4, [10, 0, 0]), 2);
    service.request(req);
    settle().await;
    assert_eq!(sink.attempts.load(Ordering::Relaxed), 8);
    assert_eq!(sent.load(Ordering::Relaxed), 5);
}

#[tokio::test(start_paused = true)]
async fn empty_requests_send_nothing() {
    let sink = Recorder::default();
    let service = GarpService::spawn_with(GarpLimits::default(), sink.clone());
    let (none, _) = request(1, v4_addresses(0, [10, 0, 0]), 5);
    let (zero, _) = request(1, v4_addresses(3, [10, 0, 0]), 0);
    service.request(none);
    service.request(zero);
    settle().await;
    assert_eq!(sink.attempts.load(Ordering::Relaxed), 0);
}

#[test]
fn token_bucket_arithmetic() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(
        GarpLimits {
            rate_per_sec: 200,
            burst: 2,
        },
        t0,
    );
    assert_eq!(b.wait(t0), Duration::ZERO);
    b.take();
    assert_eq!(b.wait(t0), Duration::ZERO);
    b.take();
    assert_eq!(
        b.wait(t0),
        Duration::from_millis(5),
        "one token per 5 ms at 200/s"
    );
    assert_eq!(
        b.wait(t0 + Duration::from_millis(2)),
        Duration::from_millis(3)
    );
    assert_eq!(b.wait(t0 + Duration::from_millis(5)), Duration::ZERO);
    // Never more than the burst, however long the pause.
    assert_eq!(
        b.wait(t0 + Duration::from_secs(86_400 * 365)),
        Duration::ZERO
    );
    b.take();
    b.take();
    assert!(b.wait(t0 + Duration::from_secs(86_400 * 365)) > Duration::ZERO);

    // Zero limits are raised to one.
    let mut slow = TokenBucket::new(
        GarpLimits {
            rate_per_sec: 0,
            burst: 0,
        },
        t0,
    );
    assert_eq!(slow.wait(t0), Duration::ZERO);
    slow.take();
    assert_eq!(slow.wait(t0), Duration::from_secs(1));
}
