//! The GARP service on a real wire: frames sent from one namespace are captured on the
//! peer of its veth, counted, and compared byte for byte with the builders' output.

use crate::net::arp::gratuitous_arp;
use crate::net::garp::{GarpLimits, GarpRequest, GarpService};
use crate::net::ndisc::unsolicited_na_frame;
use crate::net::testns::{Capture, NetNs, ifindex, skip, veth};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];

/// Namespaces a and b joined by va–vb, va with MAC_A, and a capture on vb.
fn lab() -> (NetNs, NetNs, Capture) {
    let a = NetNs::new("a");
    let b = NetNs::new("b");
    veth(&a, "va", &b, "vb");
    a.ip(&["link", "set", "va", "address", "02:00:00:00:0a:01"]);
    let capture = b.run(|| async { Capture::open(ifindex("vb")) });
    (a, b, capture)
}

/// The announcements from MAC_A among `frames`: gratuitous ARPs and neighbour
/// advertisements (anything else va sends, like MLD reports, is left out).
fn announcements(frames: &[(Instant, Vec<u8>)]) -> Vec<(Instant, Vec<u8>)> {
    frames
        .iter()
        .filter(|(_, f)| f.len() >= 14 && f[6..12] == MAC_A)
        .filter(|(_, f)| match [f[12], f[13]] {
            [0x08, 0x06] => true,
            [0x86, 0xdd] => f.len() > 54 && f[20] == 58 && f[54] == 136,
            _ => false,
        })
        .cloned()
        .collect()
}

/// Frames captured until `expected` announcements were seen or `deadline` passed, each
/// with the time it was read (never earlier than it was sent).
fn collect(capture: &Capture, expected: usize, deadline: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut seen = 0;
    while seen < expected {
        let Some(frame) = capture.next_frame(deadline) else {
            break;
        };
        frames.push((Instant::now(), frame));
        seen = announcements(&frames).len();
    }
    // Anything extra that was still coming.
    let grace = Instant::now() + Duration::from_millis(300);
    while let Some(frame) = capture.next_frame(grace) {
        frames.push((Instant::now(), frame));
    }
    announcements(&frames)
}

fn v4_addresses(n: u8, net: [u8; 3]) -> Arc<[IpAddr]> {
    (1..=n)
        .map(|i| IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], i)))
        .collect()
}

/// Waits in the namespace until `sent` reaches `n` (or a generous timeout).
async fn wait_sent(sent: &AtomicU64, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sent.load(Ordering::Relaxed) < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn announcements_go_out_as_built() {
    if skip("announcements_go_out_as_built") {
        return;
    }
    let (a, _b, capture) = lab();
    let vips: Arc<[IpAddr]> = Arc::from(vec![
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)),
        IpAddr::V6("2001:db8::10".parse().unwrap()),
    ]);
    let sent = Arc::new(AtomicU64::new(0));
    let request = GarpRequest::new(
        ifindex_in(&a, "va"),
        MAC_A,
        Arc::clone(&vips),
        3,
        Arc::clone(&sent),
    );
    a.run(|| async {
        let service = GarpService::spawn(GarpLimits::default()).unwrap();
        // An interface that does not exist: logged, dropped, and nothing else disturbed.
        let gone_sent = Arc::new(AtomicU64::new(0));
        service.request(GarpRequest::new(
            4242,
            MAC_A,
            Arc::clone(&vips),
            3,
            Arc::clone(&gone_sent),
        ));
        service.request(request);
        wait_sent(&sent, 9).await;
        assert_eq!(gone_sent.load(Ordering::Relaxed), 0);
    });
    assert_eq!(sent.load(Ordering::Relaxed), 9);

    let frames = collect(&capture, 9, Instant::now() + Duration::from_secs(10));
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for (_, f) in &frames {
        *counts.entry(f.clone()).or_default() += 1;
    }
    let mut expected: HashMap<Vec<u8>, usize> = HashMap::new();
    for vip in vips.iter() {
        let frame = match vip {
            IpAddr::V4(a) => gratuitous_arp(MAC_A, *a).to_vec(),
            IpAddr::V6(a) => unsolicited_na_frame(MAC_A, *a, true).to_vec(),
        };
        expected.insert(frame, 3);
    }
    assert_eq!(counts, expected, "3 of each, byte for byte");
}

/// 100 VIPs × 5 at 100/s with a burst of 50: at every frame, no more have arrived than
/// the bucket allows since the request, and all 500 arrive.
#[test]
fn the_rate_limit_bounds_what_reaches_the_wire() {
    if skip("the_rate_limit_bounds_what_reaches_the_wire") {
        return;
    }
    let (a, _b, capture) = lab();
    let index = ifindex_in(&a, "va");
    let sent = Arc::new(AtomicU64::new(0));
    let (start_tx, start_rx) = mpsc::channel();
    let frames = thread::scope(|s| {
        let reader = s.spawn(|| collect(&capture, 500, Instant::now() + Duration::from_secs(60)));
        a.run(|| async {
            let limits = GarpLimits {
                rate_per_sec: 100,
                burst: 50,
            };
            let service = GarpService::spawn(limits).unwrap();
            let request = GarpRequest::new(
                index,
                MAC_A,
                v4_addresses(100, [10, 0, 0]),
                5,
                Arc::clone(&sent),
            );
            start_tx.send(Instant::now()).unwrap();
            service.request(request);
            wait_sent(&sent, 500).await;
        });
        reader.join().unwrap()
    });
    let start = start_rx.recv().unwrap();
    assert_eq!(sent.load(Ordering::Relaxed), 500);
    assert_eq!(frames.len(), 500, "every announcement reaches the wire");
    for (n, (at, _)) in frames.iter().enumerate() {
        let elapsed = at.duration_since(start);
        let allowed = 50 + 1 + (elapsed.as_millis() as usize) * 100 / 1000;
        assert!(
            n < allowed,
            "{} frames by {elapsed:?}, the bucket allows {allowed}",
            n + 1
        );
    }
}

/// A single VIP queued right after 100 VIPs × 5 goes out among the first frames, long
/// before the big request is done.
#[test]
fn a_small_request_is_served_before_a_big_one_finishes() {
    if skip("a_small_request_is_served_before_a_big_one_finishes") {
        return;
    }
    let (a, _b, capture) = lab();
    let index = ifindex_in(&a, "va");
    let small_vip = Ipv4Addr::new(198, 51, 100, 1);
    let frames = thread::scope(|s| {
        let reader = s.spawn(|| collect(&capture, 501, Instant::now() + Duration::from_secs(60)));
        a.run(|| async {
            let limits = GarpLimits {
                rate_per_sec: 200,
                burst: 10,
            };
            let service = GarpService::spawn(limits).unwrap();
            let big_sent = Arc::new(AtomicU64::new(0));
            let small_sent = Arc::new(AtomicU64::new(0));
            service.request(GarpRequest::new(
                index,
                MAC_A,
                v4_addresses(100, [10, 0, 0]),
                5,
                Arc::clone(&big_sent),
            ));
            service.request(GarpRequest::new(
                index,
                MAC_A,
                Arc::from(vec![IpAddr::V4(small_vip)]),
                1,
                Arc::clone(&small_sent),
            ));
            wait_sent(&big_sent, 500).await;
            wait_sent(&small_sent, 1).await;
        });
        reader.join().unwrap()
    });
    assert_eq!(frames.len(), 501);
    let small = gratuitous_arp(MAC_A, small_vip).to_vec();
    let position = frames
        .iter()
        .position(|(_, f)| *f == small)
        .expect("the small request's frame");
    assert!(
        position < 20,
        "the small request waited behind {position} frames"
    );
}

/// The index of `ifname` in `ns`.
fn ifindex_in(ns: &NetNs, ifname: &'static str) -> u32 {
    ns.run(|| async move { ifindex(ifname) })
}
