//! The two pieces of the network layer that need `unsafe`, each a few lines.
//!
//! 1. [`packet_addr`]: a `sockaddr_ll`, the address of an `AF_PACKET` socket (an interface
//!    index and an EtherType). Gratuitous ARP and unsolicited neighbour advertisements are
//!    sent as whole Ethernet frames on such a socket, and `sendto(2)`/`bind(2)` on it take a
//!    `sockaddr_ll`. Neither socket2 nor nix has a safe constructor for one; socket2's
//!    [`SockAddr`] can hold it, but filling its storage is `unsafe` by signature.
//!
//!    Sound because `sockaddr_ll` is one of the `sockaddr_*` types of this platform, which
//!    is what [`SockAddrStorage::view_as`] requires (and it asserts the size fits); it is
//!    made of plain integers, so the zeroed storage is a valid value of it and every field
//!    is then set with safe writes; and the length handed to [`SockAddr::new`] is exactly
//!    `size_of::<sockaddr_ll>()`, all of whose bytes are initialised.
//!
//! 2. [`register_readable`]: handing a socket or a timer to tokio's reactor. Since tokio
//!    1.54, `AsyncFd::register` is `unsafe` (the safe `AsyncFd::new` is deprecated as
//!    unsound): the caller must guarantee that the file descriptor stays open, and is the
//!    same one, for as long as it is registered.
//!
//!    Sound because the registered value is an [`OwnsFd`]: a [`socket2::Socket`] or the
//!    data plane's timerfd, each of which owns its file descriptor, always returns that one
//!    from `as_raw_fd`, and closes it only when dropped; the `AsyncFd` takes ownership of
//!    it, so it cannot be dropped (or turned into a raw fd and closed) while registered, and
//!    through `AsyncFd::get_ref` callers only get a shared reference, which cannot close it.

#![allow(unsafe_code)]

use socket2::{SockAddr, SockAddrStorage, Socket};
use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The address of interface `ifindex` for frames of EtherType `ethertype` (host order), with
/// `dst_mac` as the link-layer destination (ignored by the kernel on `SOCK_RAW` sends, where
/// the frame carries its own header, but filled in for clarity and for `SOCK_DGRAM`).
pub(crate) fn packet_addr(ifindex: u32, ethertype: u16, dst_mac: [u8; 6]) -> Option<SockAddr> {
    // The kernel's ifindex is an int; one that does not fit cannot exist.
    let ifindex = i32::try_from(ifindex).ok()?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: see the module comment: sockaddr_ll is a sockaddr_* type of this platform,
    // and the zeroed storage is a valid sockaddr_ll.
    let ll: &mut libc::sockaddr_ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    ll.sll_protocol = ethertype.to_be();
    ll.sll_ifindex = ifindex;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&dst_mac);
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the first `len` bytes of the storage are a fully initialised sockaddr_ll.
    Some(unsafe { SockAddr::new(storage, len) })
}

/// A value that owns its file descriptor: `as_raw_fd` always returns the same one, and it
/// is closed only when the value is dropped. What [`register_readable`] relies on; implement
/// it only for such types.
pub(crate) trait OwnsFd: AsRawFd {}

impl OwnsFd for Socket {}

/// Registers `owner` with the current tokio runtime's reactor for read readiness (the
/// sockets here never wait to write: a full send buffer is an error for the caller).
///
/// Panics, as tokio does, when called outside a runtime with I/O enabled; callers check
/// for a runtime first.
pub(crate) fn register_readable<T: OwnsFd>(owner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: see the module comment: the AsyncFd owns the value, which owns the fd.
    unsafe { AsyncFd::register_with_interest(owner, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_addr_is_an_af_packet_address() {
        let addr = packet_addr(7, 0x0806, [0xff; 6]).unwrap();
        assert_eq!(i32::from(addr.family()), libc::AF_PACKET);
        assert_eq!(addr.len() as usize, size_of::<libc::sockaddr_ll>());
        assert!(packet_addr(u32::MAX, 0x0806, [0xff; 6]).is_none());
    }
}
