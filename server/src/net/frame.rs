//! Sending whole Ethernet frames (gratuitous ARP, unsolicited neighbour advertisements) on
//! an `AF_PACKET` socket.
//!
//! One socket serves every interface: each send names its interface. The socket is opened
//! with protocol 0, so the kernel never queues a received frame on it.

use super::error::NetError;
use super::sys::packet_addr;
use socket2::{Domain, Socket, Type};
use std::io;

/// An `AF_PACKET` socket that sends frames and never receives any.
#[derive(Debug)]
pub struct FrameSocket {
    socket: Socket,
}

impl FrameSocket {
    /// Opens the socket, non-blocking so a send never stalls the task that makes it.
    pub fn open() -> Result<Self, NetError> {
        let open_err = |source| NetError::SocketOpen {
            what: "an AF_PACKET socket for gratuitous ARP / neighbour advertisements",
            ifname: "every interface".into(),
            source,
        };
        let socket = Socket::new(Domain::PACKET, Type::RAW, None).map_err(open_err)?;
        socket.set_nonblocking(true).map_err(open_err)?;
        Ok(FrameSocket { socket })
    }

    /// Sends `frame`, a whole Ethernet frame whose header says EtherType `ethertype`, out of
    /// interface `ifindex`. A full socket buffer is an error (`WouldBlock`), not a wait.
    pub fn send(&self, ifindex: u32, ethertype: u16, frame: &[u8]) -> io::Result<()> {
        let dst_mac = frame
            .first_chunk::<6>()
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too short"))?;
        // An index that does not fit the kernel's int names no interface.
        let addr = packet_addr(ifindex, ethertype, dst_mac)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENXIO))?;
        let sent = self.socket.send_to(frame, &addr)?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "sent {sent} of {} bytes",
                frame.len()
            )))
        }
    }
}
