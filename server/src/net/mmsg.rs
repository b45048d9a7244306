//! Many datagrams per system call: [`RecvBatch`] reads what is queued on a raw socket with
//! one `recvmmsg(2)`, [`SendBatch`] sends adverts with one `sendmmsg(2)`.
//!
//! A backup on a segment with 255 masters at 10 ms gets 25 500 adverts a second; a master
//! sends as many. One system call per datagram, with a sleep and a wake-up around each few,
//! was most of the daemon's CPU (docs/BENCHMARKS-ANALYSIS.md). The buffers are allocated
//! once, when the socket's reader starts, and reused for every call.
//!
//! Unsafe code, because neither libc nor nix offers these calls without it in a form that
//! resets every header field before each call (the kernel shrinks `msg_controllen` and
//! `msg_namelen` to what it used): every pointer handed to the kernel points into a `Vec`
//! this batch owns and does not resize between the setting of the pointer and the call.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;

/// Room for the ancillary data an IPv6 receive asks for: `IPV6_PKTINFO` (CMSG_SPACE of 20
/// bytes: 40 on 64-bit Linux) and `IPV6_HOPLIMIT` (CMSG_SPACE of 4: 24), with margin.
/// Aligned like a `cmsghdr`, whose fields the kernel writes at its start.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct ControlBuffer([u8; 128]);

/// Where the kernel writes a datagram's source address: room for IPv6's, the larger.
type NameBuffer = libc::sockaddr_in6;

fn zeroed_name() -> NameBuffer {
    // SAFETY: sockaddr_in6 is plain integers and byte arrays; all zeroes is a valid value.
    unsafe { zeroed() }
}

fn zeroed_header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is integers and raw pointers (null when zero); all zeroes is valid.
    unsafe { zeroed() }
}

/// Buffers for up to `capacity` datagrams of up to `buf_len` bytes each.
pub struct RecvBatch {
    buf_len: usize,
    bufs: Vec<u8>,
    names: Vec<NameBuffer>,
    controls: Vec<ControlBuffer>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    /// How many of the slots the last call filled.
    filled: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .field("buf_len", &self.buf_len)
            .field("filled", &self.filled)
            .finish()
    }
}

/// One datagram of a [`RecvBatch`], as the kernel handed it over.
#[derive(Debug)]
pub(crate) struct RawDatagram<'a> {
    /// The bytes received (at most the slot's length).
    pub bytes: &'a [u8],
    /// The datagram was longer than the slot; the rest is lost.
    pub truncated: bool,
    /// IPv6 only: the source address, and what `IPV6_PKTINFO` and `IPV6_HOPLIMIT` said.
    pub v6_source: Option<Ipv6Addr>,
    pub v6_destination: Option<Ipv6Addr>,
    pub v6_hop_limit: Option<u8>,
}

impl RecvBatch {
    /// Slots for `capacity` datagrams (at least one) of `buf_len` bytes each.
    pub fn new(capacity: usize, buf_len: usize) -> Self {
        let capacity = capacity.max(1);
        RecvBatch {
            buf_len,
            bufs: vec![0; capacity * buf_len],
            names: vec![zeroed_name(); capacity],
            controls: vec![ControlBuffer([0; 128]); capacity],
            iovecs: vec![
                libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                };
                capacity
            ],
            headers: vec![zeroed_header(); capacity],
            filled: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// Datagrams the last receive filled in.
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The whole buffer of slot `i`, which [`super::socket::Received::payload`] indexes.
    pub fn buffer(&self, i: usize) -> &[u8] {
        let start = i * self.buf_len;
        self.bufs
            .get(start..start + self.buf_len)
            .unwrap_or_default()
    }

    /// One `recvmmsg` without waiting: fills up to every slot with what is queued on `fd`
    /// and returns how many. `WouldBlock` when nothing is.
    pub(crate) fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        self.filled = 0;
        let capacity = self.capacity();
        for i in 0..capacity {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i * self.buf_len..].as_mut_ptr().cast(),
                iov_len: self.buf_len,
            };
            let header = &mut self.headers[i];
            header.msg_len = 0;
            let msg = &mut header.msg_hdr;
            msg.msg_name = ptr::from_mut(&mut self.names[i]).cast();
            msg.msg_namelen = size_of::<NameBuffer>() as libc::socklen_t;
            msg.msg_iov = ptr::from_mut(&mut self.iovecs[i]);
            msg.msg_iovlen = 1;
            msg.msg_control = ptr::from_mut(&mut self.controls[i]).cast();
            msg.msg_controllen = size_of::<ControlBuffer>() as _;
            msg.msg_flags = 0;
        }
        let vlen = libc::c_uint::try_from(capacity).unwrap_or(libc::c_uint::MAX);
        // SAFETY: every header points at this batch's own name, iovec (and through it,
        // buffer) and control storage for its slot, with the lengths of that storage; none
        // of those Vecs is resized before the call returns, and `vlen` is at most their
        // length. A null timeout: MSG_DONTWAIT makes the call return at once.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                vlen,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        self.filled = usize::try_from(received).unwrap_or(0).min(capacity);
        Ok(self.filled)
    }

    /// Datagram `i` of the last receive.
    pub(crate) fn datagram(&self, i: usize) -> Option<RawDatagram<'_>> {
        if i >= self.filled {
            return None;
        }
        let header = &self.headers[i];
        let msg = &header.msg_hdr;
        let len = usize::try_from(header.msg_len)
            .unwrap_or(usize::MAX)
            .min(self.buf_len);
        let bytes = self.buffer(i).get(..len).unwrap_or_default();
        let name = &self.names[i];
        let v6_source = (usize::try_from(msg.msg_namelen).unwrap_or(0) >= size_of::<NameBuffer>()
            && i32::from(name.sin6_family) == libc::AF_INET6)
            .then(|| Ipv6Addr::from(name.sin6_addr.s6_addr));
        let (v6_destination, v6_hop_limit) = ipv6_ancillary(msg);
        Some(RawDatagram {
            bytes,
            truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
            v6_source,
            v6_destination,
            v6_hop_limit,
        })
    }
}

/// The destination (`IPV6_PKTINFO`) and hop limit (`IPV6_HOPLIMIT`) in a received header's
/// ancillary data, where present.
fn ipv6_ancillary(msg: &libc::msghdr) -> (Option<Ipv6Addr>, Option<u8>) {
    let mut destination = None;
    let mut hop_limit = None;
    // SAFETY: `msg` is a header the kernel filled: msg_control points at this batch's
    // control buffer for the slot and msg_controllen is what the kernel wrote, at most
    // that buffer's size. CMSG_FIRSTHDR / CMSG_NXTHDR return null rather than step past
    // msg_control + msg_controllen, and each cmsghdr they return is 8-byte aligned
    // inside the buffer (ControlBuffer's alignment, CMSG_ALIGN's steps).
    unsafe {
        let data_offset = libc::CMSG_LEN(0) as usize;
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while let Some(header) = cmsg.as_ref() {
            let data = libc::CMSG_DATA(cmsg);
            // A size_t on glibc, a u32 on musl.
            #[allow(clippy::unnecessary_cast)]
            let data_len = (header.cmsg_len as usize).saturating_sub(data_offset);
            match (header.cmsg_level, header.cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if data_len >= size_of::<libc::in6_pktinfo>() =>
                {
                    let info: libc::in6_pktinfo = ptr::read_unaligned(data.cast());
                    destination = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if data_len >= size_of::<libc::c_int>() =>
                {
                    let hops: libc::c_int = ptr::read_unaligned(data.cast());
                    hop_limit = u8::try_from(hops).ok();
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (destination, hop_limit)
}

/// One advert waiting in a [`SendBatch`]: where its bytes are and where they go.
#[derive(Clone, Copy, Debug)]
struct Queued {
    /// Range of the batch's byte buffer holding the IPv4 header and message (IPv4) or the
    /// message (IPv6).
    start: usize,
    len: usize,
    src: IpAddr,
    dst: IpAddr,
}

/// Adverts queued for one socket, sent together by [`SendBatch::send`]. The header
/// storage is kept between sends, so a steady state allocates nothing.
#[derive(Default)]
pub struct SendBatch {
    bytes: Vec<u8>,
    queued: Vec<Queued>,
    names: Vec<NameBuffer>,
    controls: Vec<SendControl>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

/// What the kernel is given to send one datagram: the address and, for IPv6, the chosen
/// source as `IPV6_PKTINFO`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct SendControl([u8; 64]);

impl SendBatch {
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Queues a datagram made of `parts` (IPv4: header then message; IPv6: the message).
    pub(crate) fn push(&mut self, src: IpAddr, dst: IpAddr, parts: &[&[u8]]) {
        let start = self.bytes.len();
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.queued.push(Queued {
            start,
            len: self.bytes.len() - start,
            src,
            dst,
        });
    }

    /// Sends everything queued on `fd` (raw socket of interface `ifindex`), with as few
    /// `sendmmsg` calls as the kernel allows, and empties the batch. `report` is told, in
    /// order, each datagram's source and destination and what became of it.
    pub(crate) fn send(
        &mut self,
        fd: RawFd,
        ifindex: u32,
        mut report: impl FnMut(IpAddr, IpAddr, io::Result<()>),
    ) {
        let count = self.queued.len();
        let SendBatch {
            bytes,
            queued,
            names,
            controls,
            iovecs,
            headers,
        } = self;
        names.clear();
        names.resize(count, zeroed_name());
        controls.clear();
        controls.resize(count, SendControl([0; 64]));
        iovecs.clear();
        headers.clear();
        headers.resize(count, zeroed_header());
        for q in queued.iter() {
            iovecs.push(libc::iovec {
                iov_base: bytes[q.start..].as_mut_ptr().cast(),
                iov_len: q.len,
            });
        }
        for (i, q) in queued.iter().enumerate() {
            let (name_len, control_len) =
                fill_destination(&mut names[i], &mut controls[i], q.src, q.dst, ifindex);
            let msg = &mut headers[i].msg_hdr;
            msg.msg_name = ptr::from_mut(&mut names[i]).cast();
            msg.msg_namelen = name_len;
            msg.msg_iov = ptr::from_mut(&mut iovecs[i]);
            msg.msg_iovlen = 1;
            if control_len > 0 {
                msg.msg_control = ptr::from_mut(&mut controls[i]).cast();
                msg.msg_controllen = control_len as _;
            }
        }
        let mut next = 0;
        while next < count {
            let vlen = libc::c_uint::try_from(count - next).unwrap_or(libc::c_uint::MAX);
            // SAFETY: headers[next..] point at names, controls, iovecs (and through them,
            // bytes) filled above for the same indices, with their lengths; none of those
            // Vecs is resized before the call returns.
            let sent = unsafe { libc::sendmmsg(fd, headers[next..].as_mut_ptr(), vlen, 0) };
            if sent > 0 {
                let sent = usize::try_from(sent).unwrap_or(0).min(count - next);
                for i in next..next + sent {
                    let q = queued[i];
                    let written = usize::try_from(headers[i].msg_len).unwrap_or(0);
                    let outcome = if written == q.len {
                        Ok(())
                    } else {
                        Err(io::Error::other(format!(
                            "sent {written} of {} bytes",
                            q.len
                        )))
                    };
                    report(q.src, q.dst, outcome);
                }
                next += sent;
            } else {
                // The datagram at `next` failed (sendmmsg reports an error only for the
                // first of the call): report it and go on with the rest.
                let error = io::Error::last_os_error();
                let q = queued[next];
                report(q.src, q.dst, Err(error));
                next += 1;
            }
        }
        bytes.clear();
        queued.clear();
    }
}

/// Writes the destination address of a datagram to `name` and, for IPv6, the source as
/// `IPV6_PKTINFO` to `control`; returns the lengths used.
fn fill_destination(
    name: &mut NameBuffer,
    control: &mut SendControl,
    src: IpAddr,
    dst: IpAddr,
    ifindex: u32,
) -> (libc::socklen_t, usize) {
    match (src, dst) {
        (_, IpAddr::V4(dst)) => {
            let addr = socket2::SockAddr::from(SocketAddrV4::new(dst, 0));
            copy_name(name, &addr);
            (addr.len(), 0)
        }
        (src, IpAddr::V6(dst)) => {
            // A link-scoped destination (ff02::12, a peer's fe80:: address) means nothing
            // without its interface.
            let scope_id = if super::socket::is_link_scoped(&dst) {
                ifindex
            } else {
                0
            };
            let addr = socket2::SockAddr::from(SocketAddrV6::new(dst, 0, 0, scope_id));
            copy_name(name, &addr);
            let IpAddr::V6(src) = src else {
                return (addr.len(), 0);
            };
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.octets(),
                },
                ipi6_ifindex: ifindex,
            };
            // SAFETY: the msghdr below describes `control` (64 bytes, 8-aligned), which
            // holds CMSG_SPACE(20) = 40 bytes; CMSG_FIRSTHDR returns its start, and the
            // data written ends within CMSG_LEN(20) of it.
            let control_len = unsafe {
                let space = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                let mut msg: libc::msghdr = zeroed();
                msg.msg_control = ptr::from_mut(control).cast();
                msg.msg_controllen = space as _;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                if cmsg.is_null() {
                    return (addr.len(), 0);
                }
                (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
                (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
                space
            };
            (addr.len(), control_len)
        }
    }
}

fn copy_name(name: &mut NameBuffer, addr: &socket2::SockAddr) {
    let len = usize::try_from(addr.len())
        .unwrap_or(0)
        .min(size_of::<NameBuffer>());
    // SAFETY: both are at least `len` bytes (len is capped by NameBuffer's size, and is
    // the length of addr's storage) and do not overlap.
    unsafe {
        ptr::copy_nonoverlapping(
            addr.as_ptr().cast::<u8>(),
            ptr::from_mut(name).cast::<u8>(),
            len,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_has_at_least_one_slot_and_empty_slots_read_as_nothing() {
        let batch = RecvBatch::new(0, 16);
        assert_eq!(batch.capacity(), 1);
        assert!(batch.is_empty());
        assert!(batch.datagram(0).is_none());
        assert_eq!(batch.buffer(0).len(), 16);
        assert!(batch.buffer(1).is_empty());
    }

    #[test]
    fn the_ipv6_source_goes_in_as_pktinfo() {
        let mut name = zeroed_name();
        let mut control = SendControl([0; 64]);
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let (name_len, control_len) = fill_destination(
            &mut name,
            &mut control,
            IpAddr::V6(src),
            IpAddr::V6("ff02::12".parse().unwrap()),
            7,
        );
        assert_eq!(name_len as usize, size_of::<libc::sockaddr_in6>());
        assert_eq!(
            name.sin6_scope_id, 7,
            "link-scoped destination carries its interface"
        );
        assert_eq!(control_len, 40);
        // What a receive would read back from the same bytes.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_control = ptr::from_mut(&mut control).cast();
        msg.msg_controllen = control_len as _;
        let (destination, hop_limit) = ipv6_ancillary(&msg);
        assert_eq!(destination, Some(src));
        assert_eq!(hop_limit, None);
    }
}
