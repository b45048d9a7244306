//! AdvertSocket between two namespaces joined by veth pairs: what one side sends is what
//! the other receives (addresses, TTL, bytes, checksum), multicast does not loop back,
//! and a socket only hears its own interface.

use crate::net::mmsg::{RecvBatch, SendBatch};
use crate::net::socket::{AdvertSocket, RECV_BUF_LEN, Received};
use crate::net::testns::{Capture, NetNs, ifindex, ipv4_pair, skip, usable_link_local, veth};
use crate::net::{NetError, Netlink};
use havip_vrrp::packet::{
    AdvertFields, Auth, ChecksumForm, DecodeContext, EncodeContext, MULTICAST_V4, MULTICAST_V6,
    check_ttl, decode, encode, internet_checksum,
};
use havip_vrrp::types::{AdvertInterval, Family, Version, Vrid};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::thread;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::time::{sleep, timeout};

const WAIT: Duration = Duration::from_secs(10);

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

/// A VRRP advert (v2 for IPv4, v3 for IPv6) for VRID 51 at priority 200, whose checksum
/// covers `src` and `dst` where the version needs them.
fn advert(vips: &[IpAddr], src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let version = match src {
        IpAddr::V4(_) => Version::V2,
        IpAddr::V6(_) => Version::V3,
    };
    let fields = AdvertFields {
        version,
        vrid: Vrid::new(51).unwrap(),
        priority: 200,
        interval: AdvertInterval::from_secs(1).unwrap(),
        addresses: vips,
        auth: &Auth::None,
    };
    let ctx = EncodeContext {
        src,
        dst,
        v3_ipv4_checksum: ChecksumForm::PseudoHeader,
    };
    let mut out = Vec::new();
    encode(&fields, &ctx, &mut out).unwrap();
    out
}

/// Waits for one datagram, read into a slot of `buf_len` bytes; with its slot's bytes.
async fn recv_one(socket: &AdvertSocket, buf_len: usize) -> (Result<Received, NetError>, Vec<u8>) {
    let mut batch = RecvBatch::new(1, buf_len);
    let count = timeout(WAIT, socket.recv_batch(&mut batch))
        .await
        .expect("no advert arrived")
        .unwrap();
    assert_eq!(count, 1);
    let received = socket.received(&batch, 0).unwrap();
    (received, batch.buffer(0).to_vec())
}

/// Receives one advert, checks that it decodes (checksum included) with the addresses it
/// came with, and returns where it came from with its bytes.
async fn receive(socket: &AdvertSocket) -> (Received, Vec<u8>) {
    let (received, buf) = recv_one(socket, RECV_BUF_LEN).await;
    let received = received.unwrap();
    let msg = received.message(&buf).to_vec();
    let ctx = DecodeContext {
        family: socket.family(),
        src: received.src,
        dst: received.dst,
        auth: &Auth::None,
    };
    let decoded =
        decode(&msg, &ctx).unwrap_or_else(|e| panic!("received advert does not decode: {e}"));
    assert_eq!(decoded.vrid, 51);
    (received, msg)
}

/// Nothing queued on `socket`, a while after the last packet that could have reached it.
async fn assert_nothing_queued(socket: &AdvertSocket, why: &str) {
    sleep(Duration::from_millis(300)).await;
    let mut batch = RecvBatch::new(4, RECV_BUF_LEN);
    let got = socket.try_recv_batch(&mut batch).unwrap();
    assert_eq!(got, 0, "{why}: received {:?}", socket.received(&batch, 0));
}

/// The first VRRP frame (IP protocol 112) `capture` saw for `ethertype`.
fn first_vrrp_frame(capture: &Capture, ethertype: [u8; 2]) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    while let Some(frame) = capture.next_frame(deadline) {
        let protocol_at = if ethertype == [0x08, 0x00] {
            14 + 9
        } else {
            14 + 6
        };
        if frame.len() > protocol_at && frame[12..14] == ethertype && frame[protocol_at] == 112 {
            return frame;
        }
    }
    panic!("no VRRP frame captured");
}

#[test]
fn ipv4_adverts_cross_the_link_as_sent() {
    if skip("ipv4_adverts_cross_the_link_as_sent") {
        return;
    }
    let a = NetNs::new("a");
    let b = NetNs::new("b");
    veth(&a, "va", &b, "vb");
    // 192.0.2.50 is va's primary; adverts go from the secondary 192.0.2.1, and once from
    // an address that is not on the host at all: the header says what send() was told.
    a.ip(&["addr", "add", "192.0.2.50/24", "dev", "va"]);
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "va"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "vb"]);
    b.exec(&[
        "sysctl",
        "-qw",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.vb.rp_filter=0",
    ]);
    // A static neighbour, so the unicast advert is not held back by ARP and overtaken.
    b.ip(&["link", "set", "vb", "address", "02:00:00:00:00:0b"]);
    a.ip(&[
        "neigh",
        "replace",
        "192.0.2.2",
        "lladdr",
        "02:00:00:00:00:0b",
        "dev",
        "va",
        "nud",
        "permanent",
    ]);

    let src = v4("192.0.2.1");
    let foreign = v4("203.0.113.9");
    let peer = v4("192.0.2.2");
    let group = IpAddr::V4(MULTICAST_V4);
    let vips = [v4("192.0.2.100")];
    let multicast = advert(&vips, src, group);
    let unicast = advert(&vips, src, peer);
    let from_foreign = advert(&vips, foreign, group);

    let capture = b.run(|| async { Capture::open(ifindex("vb")) });
    let (ready_tx, ready_rx) = oneshot::channel();
    let (sent_tx, sent_rx) = oneshot::channel::<()>();
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            b.run(|| async move {
                let socket = AdvertSocket::open(Family::Ipv4, ifindex("vb"), "vb").unwrap();
                socket.join_multicast().unwrap();
                socket.join_multicast().unwrap(); // twice is fine
                ready_tx.send(()).unwrap();
                let first = receive(&socket).await;
                let second = receive(&socket).await;
                let third = receive(&socket).await;

                // TTL is read from each packet, not assumed: one sent with TTL 1 shows 1.
                let low_ttl = recv_one(&socket, RECV_BUF_LEN).await.0.unwrap();
                // A buffer too small for the datagram: reported, and the next one is fine.
                let truncated = recv_one(&socket, 16).await.0;
                let after = receive(&socket).await;
                sent_rx.await.unwrap();
                (first, second, third, low_ttl, truncated, after)
            })
        });
        a.run(|| async {
            ready_rx.await.unwrap();
            let socket = AdvertSocket::open(Family::Ipv4, ifindex("va"), "va").unwrap();
            socket.join_multicast().unwrap();
            socket.send(src, group, &multicast).unwrap();
            socket.send(src, peer, &unicast).unwrap();
            socket.send(foreign, group, &from_foreign).unwrap();

            let ttl1 = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            ttl1.bind_device(Some(b"va")).unwrap();
            ttl1.set_multicast_ttl_v4(1).unwrap();
            ttl1.set_multicast_loop_v4(false).unwrap(); // or `socket` would hear it
            let to = SockAddr::from(SocketAddrV4::new(MULTICAST_V4, 0));
            ttl1.send_to(&multicast, &to).unwrap();
            socket.send(src, group, &multicast).unwrap(); // into the tiny buffer
            socket.send(src, group, &multicast).unwrap();

            // Multicast loop is off: the sender never hears itself.
            assert_nothing_queued(&socket, "the sender received its own advert").await;
            let err = socket
                .send(IpAddr::V6(Ipv6Addr::LOCALHOST), group, &multicast)
                .unwrap_err();
            assert!(matches!(err, NetError::FamilyMismatch { .. }), "{err}");
            sent_tx.send(()).unwrap();
        });
        let (first, second, third, low_ttl, truncated, after) = receiver.join().unwrap();

        assert_eq!(
            first.0.src, src,
            "source as given, not the primary 192.0.2.50"
        );
        assert_eq!(first.0.dst, group);
        assert_eq!(first.0.ttl, 255);
        assert_eq!(first.1, multicast);
        check_ttl(first.0.ttl).unwrap();

        assert_eq!((second.0.src, second.0.dst, second.0.ttl), (src, peer, 255));
        assert_eq!(second.1, unicast);

        assert_eq!((third.0.src, third.0.dst), (foreign, group));
        assert_eq!(third.1, from_foreign);

        assert_eq!(low_ttl.ttl, 1);
        assert!(check_ttl(low_ttl.ttl).is_err());

        assert!(
            matches!(truncated, Err(NetError::Truncated { capacity: 16, .. })),
            "{truncated:?}"
        );
        assert_eq!(after.1, multicast);
    });

    // On the wire: to the group's MAC, TOS 0xc0, TTL 255, no DF, and the header checksum
    // the kernel filled in is valid.
    let frame = first_vrrp_frame(&capture, [0x08, 0x00]);
    assert_eq!(frame[0..6], [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
    let header = &frame[14..34];
    assert_eq!(header[0], 0x45);
    assert_eq!(header[1], 0xc0, "TOS: internetwork control, as keepalived");
    assert_eq!(
        usize::from(u16::from_be_bytes([header[2], header[3]])),
        20 + multicast.len()
    );
    assert_eq!(header[6] & 0x40, 0, "DF clear");
    assert_eq!(header[8], 255);
    assert_eq!(internet_checksum(header), 0, "header checksum valid");
    assert_eq!(&frame[34..], &multicast[..]);
}

#[test]
fn ipv6_adverts_cross_the_link_from_the_link_local_address() {
    if skip("ipv6_adverts_cross_the_link_from_the_link_local_address") {
        return;
    }
    let a = NetNs::new("a");
    let b = NetNs::new("b");
    veth(&a, "va", &b, "vb");
    let link_local = |ns: &NetNs, ifname: &'static str| {
        ns.run(|| async move {
            let nl = Netlink::connect().await.unwrap();
            usable_link_local(&nl, ifname).await
        })
    };
    let src = link_local(&a, "va");
    let peer = link_local(&b, "vb");
    // A static neighbour, so the unicast advert is not held back by neighbour discovery.
    let vb_mac = b.ip(&["-br", "link", "show", "vb"]);
    let vb_mac = vb_mac.split_whitespace().nth(2).unwrap().to_owned();
    a.ip(&[
        "-6",
        "neigh",
        "replace",
        &peer.to_string(),
        "lladdr",
        &vb_mac,
        "dev",
        "va",
        "nud",
        "permanent",
    ]);
    let group = IpAddr::V6(MULTICAST_V6);
    let vips: [IpAddr; 2] = [
        IpAddr::V6("fe80::200:5eff:fe00:233".parse().unwrap()),
        IpAddr::V6("2001:db8::100".parse().unwrap()),
    ];
    let multicast = advert(&vips, IpAddr::V6(src), group);
    let unicast = advert(&vips, IpAddr::V6(src), IpAddr::V6(peer));

    let capture = b.run(|| async { Capture::open(ifindex("vb")) });
    let (ready_tx, ready_rx) = oneshot::channel();
    let (sent_tx, sent_rx) = oneshot::channel::<()>();
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            b.run(|| async move {
                let socket = AdvertSocket::open(Family::Ipv6, ifindex("vb"), "vb").unwrap();
                socket.join_multicast().unwrap();
                ready_tx.send(()).unwrap();
                let first = receive(&socket).await;
                let second = receive(&socket).await;
                let low_hops = recv_one(&socket, RECV_BUF_LEN).await.0.unwrap();
                sent_rx.await.unwrap();
                socket.leave_multicast().unwrap();
                socket.leave_multicast().unwrap(); // twice is fine
                (first, second, low_hops)
            })
        });
        a.run(|| async {
            ready_rx.await.unwrap();
            let socket = AdvertSocket::open(Family::Ipv6, ifindex("va"), "va").unwrap();
            socket.join_multicast().unwrap();
            // Both in one sendmmsg, each with its source as IPV6_PKTINFO.
            let mut batch = SendBatch::default();
            socket
                .queue(&mut batch, IpAddr::V6(src), group, &multicast)
                .unwrap();
            socket
                .queue(&mut batch, IpAddr::V6(src), IpAddr::V6(peer), &unicast)
                .unwrap();
            let mut outcomes = Vec::new();
            socket.flush(&mut batch, |dst, outcome| {
                outcomes.push((dst, outcome.map_err(|e| e.to_string())))
            });
            assert_eq!(
                outcomes,
                vec![(group, Ok(())), (IpAddr::V6(peer), Ok(()))],
                "each advert reported, in order"
            );
            assert!(batch.is_empty());

            let hops1 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112))).unwrap();
            hops1.bind_device(Some(b"va")).unwrap();
            hops1.set_multicast_hops_v6(1).unwrap();
            hops1.set_multicast_loop_v6(false).unwrap(); // or `socket` would hear it
            let to = SockAddr::from(SocketAddrV6::new(MULTICAST_V6, 0, 0, ifindex("va")));
            hops1.send_to(&multicast, &to).unwrap();

            assert_nothing_queued(&socket, "the sender received its own advert").await;
            sent_tx.send(()).unwrap();
        });
        let (first, second, low_hops) = receiver.join().unwrap();

        assert_eq!(first.0.src, IpAddr::V6(src), "from va's link-local address");
        assert_eq!(first.0.dst, group);
        assert_eq!(first.0.ttl, 255);
        assert_eq!(first.1, multicast, "checksum untouched by the kernel");

        assert_eq!(
            (second.0.src, second.0.dst, second.0.ttl),
            (IpAddr::V6(src), IpAddr::V6(peer), 255)
        );
        assert_eq!(second.1, unicast);
        assert_eq!(low_hops.ttl, 1);
    });

    // On the wire: to the group's MAC, traffic class 0xc0, hop limit 255.
    let frame = first_vrrp_frame(&capture, [0x86, 0xdd]);
    assert_eq!(frame[0..6], [0x33, 0x33, 0, 0, 0, 0x12]);
    let header = &frame[14..54];
    let traffic_class = (u16::from_be_bytes([header[0], header[1]]) >> 4) & 0xff;
    assert_eq!(
        traffic_class, 0xc0,
        "traffic class: internetwork control, as keepalived"
    );
    assert_eq!(header[7], 255);
    assert_eq!(header[8..24], src.octets());
    assert_eq!(header[24..40], MULTICAST_V6.octets());
    assert_eq!(&frame[54..], &multicast[..]);
}

/// A socket hears only its interface, and (IP_MULTICAST_ALL off) only groups it joined.
#[test]
fn sockets_hear_only_their_interface() {
    if skip("sockets_hear_only_their_interface") {
        return;
    }
    let a = NetNs::new("a");
    let b = NetNs::new("b");
    veth(&a, "va1", &b, "vb1");
    veth(&a, "va2", &b, "vb2");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "va1"]);
    a.ip(&["addr", "add", "198.51.100.1/24", "dev", "va2"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "vb1"]);
    b.ip(&["addr", "add", "198.51.100.2/24", "dev", "vb2"]);
    let src = v4("198.51.100.1");
    let group = IpAddr::V4(MULTICAST_V4);
    let msg = advert(&[v4("198.51.100.100")], src, group);

    let (ready_tx, ready_rx) = oneshot::channel();
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            b.run(|| async move {
                let on_1 = AdvertSocket::open(Family::Ipv4, ifindex("vb1"), "vb1").unwrap();
                on_1.join_multicast().unwrap();
                let on_2 = AdvertSocket::open(Family::Ipv4, ifindex("vb2"), "vb2").unwrap();
                on_2.join_multicast().unwrap();
                let on_2_not_joined =
                    AdvertSocket::open(Family::Ipv4, ifindex("vb2"), "vb2").unwrap();
                ready_tx.send(()).unwrap();
                let (got, bytes) = receive(&on_2).await;
                assert_nothing_queued(&on_1, "a socket on vb1 heard vb2").await;
                assert_nothing_queued(&on_2_not_joined, "a socket that joined no group heard one")
                    .await;
                (got, bytes)
            })
        });
        a.run(|| async {
            ready_rx.await.unwrap();
            let socket = AdvertSocket::open(Family::Ipv4, ifindex("va2"), "va2").unwrap();
            socket.send(src, group, &msg).unwrap();
        });
        let (got, bytes) = receiver.join().unwrap();
        assert_eq!((got.src, got.dst), (src, group));
        assert_eq!(bytes, msg);
    });
}

/// Opening on an interface that does not exist fails with the errno, not a panic.
#[test]
fn open_on_a_missing_interface_fails_cleanly() {
    if skip("open_on_a_missing_interface_fails_cleanly") {
        return;
    }
    let a = NetNs::new("a");
    a.run(|| async {
        let err = AdvertSocket::open(Family::Ipv4, 999, "nosuch0").unwrap_err();
        assert!(
            matches!(
                err,
                NetError::SocketOption {
                    option: "SO_BINDTODEVICE",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
        assert!(err.is_interface_gone());
    });
}

/// Adverts queued together go out with one sendmmsg and a backlog comes in with one
/// recvmmsg, each datagram with its own addresses; a send that fails is reported for that
/// advert alone.
#[test]
fn adverts_go_out_and_come_in_by_the_batch() {
    if skip("adverts_go_out_and_come_in_by_the_batch") {
        return;
    }
    let (a, b) = ipv4_pair();
    let group = IpAddr::V4(MULTICAST_V4);
    let sources: Vec<IpAddr> = (1..=5)
        .map(|i| v4(&format!("192.0.2.{}", 10 + i)))
        .collect();
    let adverts: Vec<Vec<u8>> = sources
        .iter()
        .map(|&src| advert(&[v4("192.0.2.100")], src, group))
        .collect();

    let (ready_tx, ready_rx) = oneshot::channel();
    let (sent_tx, sent_rx) = oneshot::channel::<()>();
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            b.run(|| async move {
                let socket = AdvertSocket::open(Family::Ipv4, ifindex("vb"), "vb").unwrap();
                socket.join_multicast().unwrap();
                ready_tx.send(()).unwrap();
                sent_rx.await.unwrap();
                // All five are queued by now: one call with room for eight takes them all.
                let mut batch = RecvBatch::new(8, RECV_BUF_LEN);
                let count = socket.try_recv_batch(&mut batch).unwrap();
                let got: Vec<(IpAddr, Vec<u8>)> = (0..count)
                    .map(|i| {
                        let rx = socket.received(&batch, i).unwrap().unwrap();
                        (rx.src, rx.message(batch.buffer(i)).to_vec())
                    })
                    .collect();
                assert!(socket.received(&batch, count).is_none());
                got
            })
        });
        a.run(|| async {
            ready_rx.await.unwrap();
            let socket = AdvertSocket::open(Family::Ipv4, ifindex("va"), "va").unwrap();
            let mut batch = SendBatch::default();
            for (src, msg) in sources.iter().zip(&adverts) {
                socket.queue(&mut batch, *src, group, msg).unwrap();
            }
            // One more, larger than the link's MTU (1500), which the kernel refuses to send
            // (EMSGSIZE, IP_HDRINCL does not fragment): it fails alone.
            let unicast = v4("192.0.2.2");
            socket
                .queue(&mut batch, sources[0], unicast, &[0u8; 2000])
                .unwrap();
            socket
                .queue(&mut batch, sources[1], group, &adverts[1])
                .unwrap();
            assert_eq!(batch.len(), 7);
            let mut outcomes = Vec::new();
            socket.flush(&mut batch, |dst, outcome| {
                outcomes.push((dst, outcome.is_ok()))
            });
            assert_eq!(outcomes.len(), 7, "{outcomes:?}");
            assert_eq!(outcomes[5], (unicast, false), "{outcomes:?}");
            assert!(
                outcomes
                    .iter()
                    .filter(|(dst, _)| *dst == group)
                    .all(|(_, ok)| *ok),
                "{outcomes:?}"
            );
            sleep(Duration::from_millis(200)).await;
            sent_tx.send(()).unwrap();
        });
        let got = receiver.join().unwrap();
        let mut expected: Vec<(IpAddr, Vec<u8>)> = sources
            .iter()
            .copied()
            .zip(adverts.iter().cloned())
            .collect();
        expected.push((sources[1], adverts[1].clone()));
        assert_eq!(got, expected);
    });
}
