//! The raw IP socket VRRP advertisements travel on: one per (interface, family), shared by
//! every instance on that interface, bound to the interface so it never sees another
//! interface's traffic.
//!
//! IPv4 adverts are sent with a header we write ourselves (`IP_HDRINCL`), so the source
//! address is always the one the caller chose. Letting the kernel pick would send from the
//! interface's primary address, and after a network restart that can be a VIP: two routers
//! then both believe they are master (keepalived's split-brain pitfall). IPv6 adverts choose
//! their source with `IPV6_PKTINFO`, which the kernel honours as given.

use super::error::NetError;
use super::mmsg::{RawDatagram, RecvBatch, SendBatch};
use super::sys::register_readable;
use havip_vrrp::packet::{HEADER_LEN, IPPROTO_VRRP, MULTICAST_V4, MULTICAST_V6, parse_ipv4};
use havip_vrrp::types::Family;
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, PoisonError};
use tokio::io::unix::AsyncFd;

/// A receive buffer of this size holds any VRRP advertisement with its IPv4 header: a
/// 60-byte header (options included) and the largest message, 255 IPv6 addresses
/// (8 + 255 × 16 = 4088 bytes) or 255 IPv4 ones with v2 authentication. A larger datagram
/// is reported as [`NetError::Truncated`].
pub const RECV_BUF_LEN: usize = 60 + HEADER_LEN + 255 * 16 + 8;

// The largest IPv6 message (255 addresses), and the largest IPv4 datagram (options, 255
// addresses, v2 authentication data), both fit.
const _: () = assert!(RECV_BUF_LEN >= HEADER_LEN + 255 * 16);
const _: () = assert!(RECV_BUF_LEN >= 60 + HEADER_LEN + 255 * 4 + 8);

/// The TTL / hop limit adverts are sent with (RFC 9568 §5.1.1.3, §5.1.2.3).
const TTL: u8 = 255;

/// The TOS / traffic class byte of adverts: IP precedence 6, "internetwork control", as
/// keepalived sends them (captured), so QoS policies written for it keep working.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

/// The socket receive buffer asked for: a burst of adverts from many routers and VRIDs on a
/// busy segment, or a flood of junk, must not push real adverts out while the data-plane
/// thread waits for a CPU. The kernel charges about 1 KiB per queued datagram however
/// small, and doubles what is asked for: 8 MiB holds about 16 000 datagrams, a quarter of
/// a second of a 64 000 packets/s flood (1 MiB lost real adverts in the hostile-packet
/// flood test on a loaded two-core host). Memory is only used while datagrams wait.
/// Forced past `net.core.rmem_max` when the process has CAP_NET_ADMIN.
const SOCKET_RECV_BUFFER: usize = 8 << 20;

/// Where a received advertisement came from and where it was sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IPv4 TTL or IPv6 hop limit, for [`havip_vrrp::packet::check_ttl`].
    pub ttl: u8,
    /// Where the VRRP message is in the buffer given to the receive call: after the IPv4
    /// header for IPv4, the whole datagram for IPv6.
    pub payload: Range<usize>,
}

impl Received {
    /// The VRRP message inside `buf`, the buffer that was received into.
    pub fn message<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.payload.clone()).unwrap_or_default()
    }
}

/// A raw socket for VRRP (IP protocol 112) on one interface and family.
///
/// Non-blocking throughout: [`send`](Self::send) never waits and [`recv_batch`](Self::recv_batch) waits
/// only for a packet, on the tokio runtime it was opened in.
#[derive(Debug)]
pub struct AdvertSocket {
    fd: AsyncFd<Socket>,
    family: Family,
    ifindex: u32,
    ifname: String,
    /// The one-advert batch [`send`](Self::send) goes through, kept so an immediate send
    /// allocates nothing and takes the same path to the wire as a queued one.
    immediate: Mutex<SendBatch>,
}

impl AdvertSocket {
    /// Opens the socket for `family` on interface `ifname` (index `ifindex`).
    ///
    /// Must be called inside a tokio runtime with I/O enabled. The socket is bound to the
    /// interface (`SO_BINDTODEVICE`), does not loop its own multicast back, receives
    /// multicast only for the groups it joins ([`join_multicast`](Self::join_multicast)),
    /// and sends with TTL / hop limit 255. IPv6 receives carry the destination and hop
    /// limit as ancillary data. The kernel computes no VRRP checksum on either family: the
    /// codec does, with the pseudo-header where the version needs one.
    pub fn open(family: Family, ifindex: u32, ifname: &str) -> Result<Self, NetError> {
        let what = match family {
            Family::Ipv4 => "the raw IPv4 VRRP socket",
            Family::Ipv6 => "the raw IPv6 VRRP socket",
        };
        let open_err = |source| NetError::SocketOpen {
            what,
            ifname: ifname.to_owned(),
            source,
        };
        let opt_err = |option: &'static str| {
            move |source| NetError::SocketOption {
                what,
                option,
                ifname: ifname.to_owned(),
                source,
            }
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(open_err(io::Error::other(
                "AdvertSocket::open was called outside a tokio runtime",
            )));
        }

        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let protocol = Protocol::from(i32::from(IPPROTO_VRRP));
        let socket = Socket::new(domain, Type::RAW, Some(protocol)).map_err(open_err)?;
        socket
            .set_nonblocking(true)
            .map_err(opt_err("O_NONBLOCK"))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(opt_err("SO_BINDTODEVICE"))?;
        set_recv_buffer(&socket).map_err(opt_err("SO_RCVBUF"))?;
        match family {
            Family::Ipv4 => {
                // TTL, TOS, identification and checksum are in the header send() writes
                // (the kernel fills the last two); only the loop and group filter are set.
                socket
                    .set_header_included_v4(true)
                    .map_err(opt_err("IP_HDRINCL"))?;
                socket
                    .set_multicast_loop_v4(false)
                    .map_err(opt_err("IP_MULTICAST_LOOP"))?;
                socket
                    .set_multicast_all_v4(false)
                    .map_err(opt_err("IP_MULTICAST_ALL"))?;
            }
            Family::Ipv6 => {
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(|e| opt_err("IPV6_RECVPKTINFO")(io::Error::from(e)))?;
                socket
                    .set_recv_hoplimit_v6(true)
                    .map_err(opt_err("IPV6_RECVHOPLIMIT"))?;
                socket
                    .set_multicast_loop_v6(false)
                    .map_err(opt_err("IPV6_MULTICAST_LOOP"))?;
                socket
                    .set_multicast_all_v6(false)
                    .map_err(opt_err("IPV6_MULTICAST_ALL"))?;
                socket
                    .set_multicast_if_v6(ifindex)
                    .map_err(opt_err("IPV6_MULTICAST_IF"))?;
                socket
                    .set_multicast_hops_v6(u32::from(TTL))
                    .map_err(opt_err("IPV6_MULTICAST_HOPS"))?;
                socket
                    .set_unicast_hops_v6(u32::from(TTL))
                    .map_err(opt_err("IPV6_UNICAST_HOPS"))?;
                socket
                    .set_tclass_v6(u32::from(TOS_INTERNETWORK_CONTROL))
                    .map_err(opt_err("IPV6_TCLASS"))?;
                // IPV6_CHECKSUM stays at its default for raw sockets other than ICMPv6:
                // off, so the checksum the codec wrote goes out untouched.
            }
        }
        let fd = register_readable(socket).map_err(open_err)?;
        Ok(AdvertSocket {
            fd,
            family,
            ifindex,
            ifname: ifname.to_owned(),
            immediate: Mutex::default(),
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Joins 224.0.0.18 or ff02::12 on the interface. Joining twice is not an error.
    pub fn join_multicast(&self) -> Result<(), NetError> {
        let socket = self.fd.get_ref();
        let result = match self.family {
            Family::Ipv4 => socket
                .join_multicast_v4_n(&MULTICAST_V4, &InterfaceIndexOrAddress::Index(self.ifindex)),
            Family::Ipv6 => socket.join_multicast_v6(&MULTICAST_V6, self.ifindex),
        };
        self.multicast_result("join", result, libc::EADDRINUSE)
    }

    /// Leaves the group joined by [`join_multicast`](Self::join_multicast). Leaving a group
    /// not joined is not an error.
    pub fn leave_multicast(&self) -> Result<(), NetError> {
        let socket = self.fd.get_ref();
        let result = match self.family {
            Family::Ipv4 => socket
                .leave_multicast_v4_n(&MULTICAST_V4, &InterfaceIndexOrAddress::Index(self.ifindex)),
            Family::Ipv6 => socket.leave_multicast_v6(&MULTICAST_V6, self.ifindex),
        };
        self.multicast_result("leave", result, libc::EADDRNOTAVAIL)
    }

    fn multicast_result(
        &self,
        op: &'static str,
        result: io::Result<()>,
        already: i32,
    ) -> Result<(), NetError> {
        match result {
            Err(e) if e.raw_os_error() != Some(already) => Err(NetError::Multicast {
                op,
                group: self.group(),
                ifname: self.ifname.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    fn group(&self) -> IpAddr {
        match self.family {
            Family::Ipv4 => IpAddr::V4(MULTICAST_V4),
            Family::Ipv6 => IpAddr::V6(MULTICAST_V6),
        }
    }

    /// Sends `payload` (a VRRP message) from `src` to `dst` out of the interface, with TTL
    /// or hop limit 255. Never blocks: a full send buffer is an error for which
    /// [`NetError::is_would_block`] is true.
    ///
    /// IPv4: the header is written here (TOS 0xc0, TTL 255, protocol 112, no DF,
    /// identification and checksum 0 so the kernel fills them), so `src` goes out as given
    /// whatever addresses the interface has. IPv6: `src` must be an address of this host
    /// that has finished DAD (the kernel checks); adverts use the interface's link-local
    /// address (RFC 9568 §5.1.2.1).
    pub fn send(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Result<(), NetError> {
        // Only the data plane's thread sends; a poisoned lock held nothing half done,
        // since `flush` leaves the batch empty whatever happened.
        let mut batch = self
            .immediate
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.queue(&mut batch, src, dst, payload)?;
        let mut outcome = Ok(());
        self.flush(&mut batch, |_, result| outcome = result);
        outcome
    }

    /// The datagram [`send`](Self::send) would put on the wire for `payload`, written to
    /// `out`: the IPv4 header then the message, or (IPv6) the message; and where the
    /// message starts in it.
    pub fn wire(
        &self,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, NetError> {
        out.clear();
        if let Outgoing::V4 {
            src: s,
            dst: d,
            total,
        } = self.outgoing(src, dst, payload)?
        {
            out.extend_from_slice(&ipv4_header(s, d, total));
        }
        let message_at = out.len();
        out.extend_from_slice(payload);
        Ok(message_at)
    }

    /// A second descriptor for this socket, which keeps it open while held: for sending
    /// from another thread (the standby sender) what [`wire`](Self::wire) made.
    pub fn duplicate(&self) -> io::Result<OwnedFd> {
        self.fd.get_ref().try_clone().map(OwnedFd::from)
    }

    /// Queues an advert in `batch`, to go out with the others on the next
    /// [`flush`](Self::flush): as [`send`](Self::send), with one system call for them all.
    pub fn queue(
        &self,
        batch: &mut SendBatch,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
    ) -> Result<(), NetError> {
        match self.outgoing(src, dst, payload)? {
            Outgoing::V4 {
                src: s,
                dst: d,
                total,
            } => batch.push(src, dst, &[&ipv4_header(s, d, total), payload]),
            Outgoing::V6 => batch.push(src, dst, &[payload]),
        }
        Ok(())
    }

    /// Sends what `batch` holds and empties it; `report` learns, in queue order, what
    /// became of each advert.
    pub fn flush(
        &self,
        batch: &mut SendBatch,
        mut report: impl FnMut(IpAddr, Result<(), NetError>),
    ) {
        batch.send(self.raw_fd(), self.ifindex, |src, dst, outcome| {
            report(
                dst,
                outcome.map_err(|source| self.send_err(src, dst, source)),
            );
        });
    }

    /// What `send` would put on the wire, or why it cannot.
    fn outgoing(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Result<Outgoing, NetError> {
        match (self.family, src, dst) {
            (Family::Ipv4, IpAddr::V4(src), IpAddr::V4(dst)) => {
                match u16::try_from(IPV4_HEADER_LEN + payload.len()) {
                    Ok(total) => Ok(Outgoing::V4 { src, dst, total }),
                    Err(_) => Err(self.too_long(src.into(), dst.into(), payload)),
                }
            }
            (Family::Ipv6, IpAddr::V6(src), IpAddr::V6(dst)) => {
                if u16::try_from(payload.len()).is_err() {
                    return Err(self.too_long(src.into(), dst.into(), payload));
                }
                Ok(Outgoing::V6)
            }
            _ => Err(NetError::FamilyMismatch {
                family: self.family,
                src,
                dst,
                ifname: self.ifname.clone(),
            }),
        }
    }

    fn send_err(&self, src: IpAddr, dst: IpAddr, source: io::Error) -> NetError {
        NetError::Send {
            src,
            dst,
            ifname: self.ifname.clone(),
            source,
        }
    }

    fn too_long(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> NetError {
        NetError::TooLong {
            len: payload.len(),
            src,
            dst,
            ifname: self.ifname.clone(),
        }
    }

    /// Waits until something is queued, then receives up to the batch's capacity of
    /// datagrams with one system call; how many. Cancel-safe: dropping the future loses
    /// no packet. Read each with [`received`](Self::received).
    ///
    /// An error concerns the socket; a bad datagram is reported by `received`, and the
    /// others of the batch are still good.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> Result<usize, NetError> {
        loop {
            let mut guard = self.fd.readable().await.map_err(|e| self.recv_err(e))?;
            match guard.try_io(|fd| batch.receive(fd.as_raw_fd())) {
                Ok(Ok(count)) => return Ok(count),
                Ok(Err(e)) => return Err(self.recv_err(e)),
                // Nothing queued after all: the readiness was cleared, wait again.
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives what is queued, up to the batch's capacity, without waiting: 0 when
    /// nothing is. For draining the socket after [`recv_batch`](Self::recv_batch).
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> Result<usize, NetError> {
        match batch.receive(self.raw_fd()) {
            Ok(count) => Ok(count),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(self.recv_err(e)),
        }
    }

    /// Datagram `i` of the batch's last receive: where it came from and went to, or what
    /// is wrong with it. `None` past the end.
    pub fn received(&self, batch: &RecvBatch, i: usize) -> Option<Result<Received, NetError>> {
        let datagram = batch.datagram(i)?;
        if datagram.truncated {
            return Some(Err(self.truncated(batch.buffer(i).len())));
        }
        Some(match self.family {
            Family::Ipv4 => self.parse_v4(datagram.bytes),
            Family::Ipv6 => self.parse_v6(&datagram),
        })
    }

    fn recv_err(&self, source: io::Error) -> NetError {
        NetError::Recv {
            ifname: self.ifname.clone(),
            source,
        }
    }

    fn parse_v4(&self, datagram: &[u8]) -> Result<Received, NetError> {
        match parse_ipv4(datagram) {
            Ok(packet) => {
                // parse_ipv4 checked the header length: the message starts right after it.
                let start = usize::from(datagram[0] & 0x0f) * 4;
                Ok(Received {
                    src: IpAddr::V4(packet.src),
                    dst: IpAddr::V4(packet.dst),
                    ttl: packet.ttl,
                    payload: start..start + packet.payload.len(),
                })
            }
            Err(source) => Err(NetError::Malformed {
                ifname: self.ifname.clone(),
                source,
            }),
        }
    }

    fn parse_v6(&self, datagram: &RawDatagram<'_>) -> Result<Received, NetError> {
        let Some(src) = datagram.v6_source else {
            return Err(self.missing("source address"));
        };
        let Some(dst) = datagram.v6_destination else {
            return Err(self.missing("destination address (IPV6_PKTINFO)"));
        };
        let Some(ttl) = datagram.v6_hop_limit else {
            return Err(self.missing("hop limit (IPV6_HOPLIMIT)"));
        };
        Ok(Received {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            ttl,
            payload: 0..datagram.bytes.len(),
        })
    }

    fn truncated(&self, capacity: usize) -> NetError {
        NetError::Truncated {
            ifname: self.ifname.clone(),
            capacity,
        }
    }

    fn missing(&self, what: &'static str) -> NetError {
        NetError::MissingAncillary {
            ifname: self.ifname.clone(),
            what,
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A datagram [`AdvertSocket::send`] can put on the wire.
enum Outgoing {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        total: u16,
    },
    /// The kernel writes the header; the source goes in `IPV6_PKTINFO`.
    V6,
}

/// Bytes of the IPv4 header written for each advert (no options).
const IPV4_HEADER_LEN: usize = 20;

/// The IPv4 header of an advert (RFC 791 §3.1): TOS 0xc0, TTL 255, protocol 112, no
/// fragmentation flags, identification and checksum 0 (with `IP_HDRINCL` the kernel fills
/// in both, and the total length).
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, total: u16) -> [u8; IPV4_HEADER_LEN] {
    let [total_hi, total_lo] = total.to_be_bytes();
    let [s0, s1, s2, s3] = src.octets();
    let [d0, d1, d2, d3] = dst.octets();
    [
        0x45, // version 4, 5 words of header
        TOS_INTERNETWORK_CONTROL,
        total_hi,
        total_lo,
        0, // identification
        0,
        0, // flags and fragment offset
        0,
        TTL,
        IPPROTO_VRRP,
        0, // header checksum
        0,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ]
}

/// Whether `addr` needs a scope id to be sent to: link-local unicast or a multicast group
/// of interface- or link-local scope.
pub(super) fn is_link_scoped(addr: &Ipv6Addr) -> bool {
    let first = addr.segments()[0];
    let link_local_unicast = first & 0xffc0 == 0xfe80;
    let small_multicast_scope = addr.is_multicast() && matches!(first & 0x000f, 1 | 2);
    link_local_unicast || small_multicast_scope
}

/// Asks for [`SOCKET_RECV_BUFFER`], forcing it past `net.core.rmem_max` when allowed.
fn set_recv_buffer(socket: &Socket) -> io::Result<()> {
    if setsockopt(socket, sockopt::RcvBufForce, &SOCKET_RECV_BUFFER).is_ok() {
        return Ok(());
    }
    socket.set_recv_buffer_size(SOCKET_RECV_BUFFER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_vrrp::packet::internet_checksum;

    #[test]
    fn ipv4_header_layout() {
        let h = ipv4_header(Ipv4Addr::new(192, 0, 2, 1), MULTICAST_V4, 40);
        assert_eq!(
            h,
            [
                0x45, 0xc0, 0, 40, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18
            ]
        );
        // With the checksum the kernel fills in, the codec's IPv4 parser accepts it.
        let mut datagram = h.to_vec();
        let sum = internet_checksum(&datagram).to_be_bytes();
        datagram[10..12].copy_from_slice(&sum);
        datagram.extend_from_slice(&[0; 20]);
        let p = parse_ipv4(&datagram).unwrap();
        assert_eq!(
            (p.src, p.dst, p.ttl, p.protocol),
            (Ipv4Addr::new(192, 0, 2, 1), MULTICAST_V4, 255, 112)
        );
    }

    #[test]
    fn link_scope() {
        let scoped = |s: &str| is_link_scoped(&s.parse().unwrap());
        assert!(scoped("ff02::12"));
        assert!(scoped("ff01::1"));
        assert!(scoped("fe80::1"));
        assert!(scoped("febf::1"));
        assert!(!scoped("ff05::2"));
        assert!(!scoped("fec0::1"));
        assert!(!scoped("2001:db8::1"));
    }

    #[test]
    fn open_outside_a_runtime_is_an_error_not_a_panic() {
        let err = AdvertSocket::open(Family::Ipv4, 1, "lo").unwrap_err();
        assert!(err.to_string().contains("outside a tokio runtime"), "{err}");
    }
}
