//! The one piece of the network layer that needs `unsafe`: handing a socket to tokio's
//! reactor. Since tokio 1.54, `AsyncFd::register` is `unsafe` (the safe `AsyncFd::new` is
//! deprecated as unsound): the caller must guarantee that the file descriptor stays open,
//! and is the same one, for as long as it is registered.
//!
//! [`register_readable`] is sound because the registered value is a [`socket2::Socket`],
//! which owns its file descriptor, always returns that one from `as_raw_fd`, and closes it
//! only when dropped; the `AsyncFd` takes ownership of it, so it cannot be dropped (or
//! turned into a raw fd and closed) while registered, and through `AsyncFd::get_ref`
//! callers only get a shared reference, which cannot close it.

#![allow(unsafe_code)]

use socket2::Socket;
use std::io;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Registers `socket` with the current tokio runtime's reactor for read readiness (the
/// sockets here never wait to write: a full send buffer is an error for the caller).
///
/// Panics, as tokio does, when called outside a runtime with I/O enabled; callers check
/// for a runtime first.
pub(crate) fn register_readable(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: see the module comment: the AsyncFd owns the Socket, which owns the fd.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
