//! A hostile VRRP sender for the tests: advertisements built byte by byte, with every field
//! of the message (version, type, VRID, priority, address count, interval, authentication,
//! checksum, length) and of the IP header (source, TTL / hop limit) under the test's
//! control, sent from an attacker's namespace through raw sockets: one at a time, or in
//! `sendmmsg` bursts from several threads for a flood.
//!
//! Nothing here decides what is valid: the bytes are what the test asks for, so a test can
//! build exactly the fault it means to show (and the correct packet it compares with).
//! Call it only on a thread inside a lab namespace ([`crate::netns::run_in`],
//! [`crate::netns::thread_in`]).

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, sendmmsg};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// VRRP's IPv4 multicast group.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// VRRP's IPv6 multicast group.
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// How the checksum field is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// What the version calls for: v2 over the message, v3 with the IP pseudo-header.
    Right,
    /// Right, then one bit flipped.
    Wrong,
}

/// A VRRP message, field by field. [`Advert::v2`] and [`Advert::v3`] give a valid one to
/// change.
#[derive(Clone, Debug)]
pub struct Advert {
    pub version: u8,
    pub packet_type: u8,
    pub vrid: u8,
    pub priority: u8,
    /// The address count field; `None`: the number of `addresses`.
    pub count: Option<u8>,
    /// v2: seconds (one byte); v3: centiseconds (12 bits).
    pub interval: u16,
    /// v2 only: the authentication type (0 none, 1 PASS) and its 8 bytes of data.
    pub auth_type: u8,
    pub auth_data: [u8; 8],
    pub addresses: Vec<IpAddr>,
    pub checksum: Checksum,
    /// Bytes appended after the addresses (and v2's authentication data).
    pub trailing: Vec<u8>,
    /// Cut the finished message to this many bytes.
    pub truncate: Option<usize>,
}

impl Advert {
    /// A valid VRRPv2 advert without authentication.
    pub fn v2(vrid: u8, priority: u8, interval_secs: u8, addresses: &[IpAddr]) -> Advert {
        Advert {
            version: 2,
            packet_type: 1,
            vrid,
            priority,
            count: None,
            interval: u16::from(interval_secs),
            auth_type: 0,
            auth_data: [0; 8],
            addresses: addresses.to_vec(),
            checksum: Checksum::Right,
            trailing: Vec::new(),
            truncate: None,
        }
    }

    /// A valid VRRPv3 advert.
    pub fn v3(vrid: u8, priority: u8, interval_centis: u16, addresses: &[IpAddr]) -> Advert {
        Advert {
            version: 3,
            interval: interval_centis,
            ..Advert::v2(vrid, priority, 0, addresses)
        }
    }

    /// With PASS authentication and this password (at most 8 bytes, zero-padded).
    pub fn pass(mut self, password: &str) -> Advert {
        self.auth_type = 1;
        self.auth_data = [0; 8];
        let bytes = password.as_bytes();
        self.auth_data[..bytes.len()].copy_from_slice(bytes);
        self
    }

    /// The message as sent from `src` to `dst` (the v3 checksum covers their pseudo-header).
    pub fn message(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let count = self
            .count
            .unwrap_or_else(|| u8::try_from(self.addresses.len()).unwrap());
        let mut m = vec![self.version << 4 | (self.packet_type & 0x0f), self.vrid];
        m.push(self.priority);
        m.push(count);
        if self.version == 2 {
            m.push(self.auth_type);
            m.push(u8::try_from(self.interval).unwrap_or(u8::MAX));
        } else {
            m.extend_from_slice(&(self.interval & 0x0fff).to_be_bytes());
        }
        m.extend_from_slice(&[0, 0]);
        for a in &self.addresses {
            match a {
                IpAddr::V4(v4) => m.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => m.extend_from_slice(&v6.octets()),
            }
        }
        if self.version == 2 {
            m.extend_from_slice(&self.auth_data);
        }
        m.extend_from_slice(&self.trailing);
        let mut sum = if self.version == 2 {
            checksum(&[&m])
        } else {
            pseudo_header_checksum(src, dst, &m)
        };
        if self.checksum == Checksum::Wrong {
            sum ^= 0x0100;
        }
        m[6..8].copy_from_slice(&sum.to_be_bytes());
        if let Some(len) = self.truncate {
            m.truncate(len);
        }
        m
    }
}

/// The Internet checksum (RFC 1071) of the concatenated parts.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap()
}

fn pseudo_header_checksum(src: IpAddr, dst: IpAddr, message: &[u8]) -> u16 {
    let len = message.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let l = u16::try_from(len).unwrap().to_be_bytes();
            let header = [0, IPPROTO_VRRP, l[0], l[1]];
            checksum(&[&s.octets(), &d.octets(), &header, message])
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let l = u32::try_from(len).unwrap().to_be_bytes();
            let header = [l[0], l[1], l[2], l[3], 0, 0, 0, IPPROTO_VRRP];
            checksum(&[&s.octets(), &d.octets(), &header, message])
        }
        _ => panic!("source {src} and destination {dst} are of different families"),
    }
}

/// An IPv4 datagram carrying `payload` as VRRP: a 20-byte header with TOS 0xc0 (as
/// routers send adverts), the given TTL, source and destination.
pub fn ipv4_datagram(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap().to_be_bytes();
    let mut d = vec![
        0x45,
        0xc0,
        total[0],
        total[1],
        0,
        0,
        0,
        0,
        ttl,
        IPPROTO_VRRP,
        0,
        0,
    ];
    d.extend_from_slice(&src.octets());
    d.extend_from_slice(&dst.octets());
    let sum = checksum(&[&d]);
    d[10..12].copy_from_slice(&sum.to_be_bytes());
    d.extend_from_slice(payload);
    d
}

/// The destination written in an IPv4 datagram's header.
fn ipv4_destination(datagram: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19])
}

/// A raw IPv4 socket that sends datagrams with the header we wrote (`IP_HDRINCL`: the
/// source and TTL are ours; the kernel fills in only the header checksum, the total length
/// and the identification), bound to `ifname`.
#[derive(Debug)]
pub struct Injector4 {
    socket: Socket,
}

impl Injector4 {
    pub fn open(ifname: &str) -> Injector4 {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .unwrap();
        socket.set_header_included_v4(true).unwrap();
        socket.bind_device(Some(ifname.as_bytes())).unwrap();
        Injector4 { socket }
    }

    /// Send one datagram built by [`ipv4_datagram`].
    pub fn send(&self, datagram: &[u8]) -> io::Result<()> {
        let to = SockAddr::from(SocketAddrV4::new(ipv4_destination(datagram), 0));
        self.socket.send_to(datagram, &to).map(|_| ())
    }

    /// Send `datagrams` with one `sendmmsg` call (`headers` preallocated for at least as
    /// many); how many the kernel took.
    pub fn send_burst(
        &self,
        datagrams: &[&[u8]],
        headers: &mut MultiHeaders<SockaddrIn>,
    ) -> io::Result<usize> {
        let slices: Vec<[IoSlice<'_>; 1]> = datagrams.iter().map(|d| [IoSlice::new(d)]).collect();
        let addrs: Vec<Option<SockaddrIn>> = datagrams
            .iter()
            .map(|d| Some(SockaddrIn::from(SocketAddrV4::new(ipv4_destination(d), 0))))
            .collect();
        let sent = sendmmsg(
            self.socket.as_raw_fd(),
            headers,
            slices.iter(),
            addrs,
            [],
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    }
}

/// A raw IPv4 socket whose kernel writes the header (TTL 255) and fragments what does not
/// fit the MTU: for datagrams larger than any advert.
#[derive(Debug)]
pub struct KernelHeader4 {
    socket: Socket,
}

impl KernelHeader4 {
    pub fn open(ifname: &str) -> KernelHeader4 {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .unwrap();
        socket.bind_device(Some(ifname.as_bytes())).unwrap();
        socket.set_ttl_v4(255).unwrap();
        socket.set_multicast_ttl_v4(255).unwrap();
        KernelHeader4 { socket }
    }

    pub fn send(&self, payload: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.socket.send_to(payload, &to).map(|_| ())
    }
}

/// A raw IPv6 VRRP socket bound to one of the attacker's addresses on `ifname`; the hop
/// limit is set per send. The kernel adds no checksum: the message carries ours.
#[derive(Debug)]
pub struct Injector6 {
    socket: Socket,
    ifindex: u32,
    pub src: Ipv6Addr,
}

impl Injector6 {
    pub fn open(ifname: &str, ifindex: u32, src: Ipv6Addr) -> Injector6 {
        let socket = Socket::new(
            Domain::IPV6,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .unwrap();
        socket.bind_device(Some(ifname.as_bytes())).unwrap();
        socket
            .bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, ifindex)))
            .unwrap();
        socket.set_multicast_if_v6(ifindex).unwrap();
        Injector6 {
            socket,
            ifindex,
            src,
        }
    }

    pub fn send(&self, message: &[u8], dst: Ipv6Addr, hop_limit: u8) -> io::Result<()> {
        let hops = u32::from(hop_limit);
        self.socket.set_multicast_hops_v6(hops)?;
        self.socket.set_unicast_hops_v6(hops)?;
        let to = SockAddr::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
        self.socket.send_to(message, &to).map(|_| ())
    }
}

/// What a flood achieved: datagrams the kernel accepted, failed sends, for how long.
#[derive(Clone, Copy, Debug)]
pub struct FloodReport {
    pub sent: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Send `datagrams` round and round from `threads` threads (each with its own socket) on
/// `ifname` for `duration`, at up to `rate` datagrams a second in all, in `sendmmsg`
/// bursts of `burst`. Must run on a thread inside the attacker's namespace; the threads
/// it starts join the namespace of the thread that calls it.
pub fn flood4(
    ifname: &str,
    datagrams: Vec<Vec<u8>>,
    rate: u64,
    duration: Duration,
    threads: usize,
    burst: usize,
) -> FloodReport {
    let datagrams = Arc::new(datagrams);
    let stop = Arc::new(AtomicBool::new(false));
    let per_thread = (rate / threads as u64).max(1);
    let start = Instant::now();
    let mut reports = Vec::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let datagrams = datagrams.clone();
                let stop = stop.clone();
                // A scoped thread starts in the process's namespace: move it into the
                // attacker's, as the caller's thread is.
                let netns = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
                scope.spawn(move || {
                    nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    let injector = Injector4::open(ifname);
                    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(burst, None);
                    // Each thread starts at its own place in the list, so together they
                    // send every kind at about the same rate.
                    let n = datagrams.len();
                    let mut next = t * n / threads.max(1);
                    let mut sent = 0u64;
                    let mut errors = 0u64;
                    let mut batch: Vec<&[u8]> = Vec::with_capacity(burst);
                    while !stop.load(Ordering::Relaxed) {
                        // Pace: never ahead of `per_thread` a second.
                        let due = (start.elapsed().as_secs_f64() * per_thread as f64) as u64;
                        if sent >= due {
                            std::thread::sleep(Duration::from_micros(200));
                            continue;
                        }
                        batch.clear();
                        for _ in 0..burst {
                            batch.push(&datagrams[next]);
                            next = (next + 1) % n;
                        }
                        match injector.send_burst(&batch, &mut headers) {
                            Ok(k) => sent += k as u64,
                            Err(_) => {
                                // A full buffer: the kernel keeps up as it can.
                                errors += 1;
                                std::thread::yield_now();
                            }
                        }
                    }
                    (sent, errors)
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            reports.push(w.join().unwrap());
        }
    });
    FloodReport {
        sent: reports.iter().map(|r| r.0).sum(),
        errors: reports.iter().map(|r| r.1).sum(),
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// holo-vrrp's public v2 vector comes out of the builder byte for byte; a v3 message
    /// checksums to zero with its pseudo-header, and a wrong one does not.
    #[test]
    fn builds_valid_messages() {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let holo = Advert::v2(51, 30, 1, &["10.0.1.5".parse().unwrap()]);
        assert_eq!(
            holo.message(any, any),
            hex("21331e010001b5c50a0001050000000000000000")
        );
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), GROUP_V4);
        let v3 = Advert::v3(51, 200, 100, &["192.0.2.100".parse().unwrap()]);
        let m = v3.message(src.into(), dst.into());
        assert_eq!(m.len(), 12);
        let l = u16::try_from(m.len()).unwrap().to_be_bytes();
        let pseudo = [0, IPPROTO_VRRP, l[0], l[1]];
        assert_eq!(checksum(&[&src.octets(), &dst.octets(), &pseudo, &m]), 0);
        let wrong = Advert {
            checksum: Checksum::Wrong,
            ..v3
        }
        .message(src.into(), dst.into());
        assert_ne!(
            checksum(&[&src.octets(), &dst.octets(), &pseudo, &wrong]),
            0
        );
        let d = ipv4_datagram(src, dst, 255, &m);
        assert_eq!(
            checksum(&[&d[..20]]),
            0,
            "the IPv4 header checksums to zero"
        );
        assert_eq!(ipv4_destination(&d), dst);
    }
}
