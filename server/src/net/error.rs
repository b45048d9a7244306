//! The one error type of the network layer. Each variant names what was being done and on
//! which interface, keeps the OS error (so callers can branch on the errno and metrics can
//! count it), and its message ends with a hint when the errno has an obvious remedy.

use havip_vrrp::packet::DecodeError;
use havip_vrrp::types::Family;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `socket(2)` failed.
    #[error("cannot open {what} for {ifname}: {source}{}", hint(source))]
    SocketOpen {
        what: &'static str,
        ifname: String,
        #[source]
        source: io::Error,
    },

    /// A socket option the socket needs could not be set.
    #[error("cannot set {option} on {what} for {ifname}: {source}{}", hint(source))]
    SocketOption {
        what: &'static str,
        option: &'static str,
        ifname: String,
        #[source]
        source: io::Error,
    },

    /// Joining or leaving the VRRP multicast group failed.
    #[error(
        "cannot {op} multicast group {group} on {ifname}: {source}{}",
        hint(source)
    )]
    Multicast {
        op: &'static str,
        group: IpAddr,
        ifname: String,
        #[source]
        source: io::Error,
    },

    /// The addresses given to a send do not fit the socket.
    #[error(
        "cannot send from {src} to {dst} on the {family} socket for {ifname}: every address \
         must be {family}"
    )]
    FamilyMismatch {
        family: Family,
        src: IpAddr,
        dst: IpAddr,
        ifname: String,
    },

    /// A message too large for one IP datagram.
    #[error(
        "cannot send {len} bytes from {src} to {dst} on {ifname}: more than an IP datagram holds"
    )]
    TooLong {
        len: usize,
        src: IpAddr,
        dst: IpAddr,
        ifname: String,
    },

    /// `sendmsg(2)` failed; [`NetError::is_would_block`] tells a full send buffer apart.
    #[error(
        "cannot send from {src} to {dst} on {ifname}: {source}{}",
        hint(source)
    )]
    Send {
        src: IpAddr,
        dst: IpAddr,
        ifname: String,
        #[source]
        source: io::Error,
    },

    /// `recvmsg(2)` failed.
    #[error("cannot receive on {ifname}: {source}{}", hint(source))]
    Recv {
        ifname: String,
        #[source]
        source: io::Error,
    },

    /// A datagram larger than the buffer it was read into; the rest was discarded.
    #[error(
        "dropped a datagram on {ifname} larger than the {capacity}-byte receive buffer (no \
         VRRP advertisement is that large)"
    )]
    Truncated { ifname: String, capacity: usize },

    /// A received IPv4 datagram whose header does not parse.
    #[error("dropped a datagram on {ifname}: {source}")]
    Malformed {
        ifname: String,
        #[source]
        source: DecodeError,
    },

    /// The kernel did not hand over the ancillary data the socket asked for.
    #[error(
        "dropped a datagram on {ifname}: the kernel gave no {what} with it (IPV6_RECVPKTINFO / \
         IPV6_RECVHOPLIMIT not in effect?)"
    )]
    MissingAncillary { ifname: String, what: &'static str },

    /// An rtnetlink socket could not be opened.
    #[error("cannot open an rtnetlink socket: {source}{}", hint(source))]
    NetlinkConnect {
        #[source]
        source: io::Error,
    },

    /// An rtnetlink request failed; `op` names it with its arguments.
    #[error("netlink: cannot {op}: {source}{}", hint(source))]
    Netlink {
        op: String,
        #[source]
        source: io::Error,
    },

    /// An interface the operation needs does not exist.
    #[error("interface {0} does not exist")]
    InterfaceNotFound(String),

    /// An interface with the wanted name exists but is not the one asked for, so it is left
    /// alone rather than replaced.
    #[error(
        "interface {name} already exists but {reason}; remove it (`ip link del {name}`) or \
         choose another name"
    )]
    LinkConflict { name: String, reason: String },

    /// Reading or writing a per-interface sysctl under /proc/sys failed.
    #[error("cannot {op} {}: {source}{}", path.display(), hint(source))]
    Sysctl {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An interface name that cannot be one (empty, longer than 15 bytes, or with '/').
    #[error("{0:?} is not a valid interface name (1 to 15 bytes, no '/', not '.' or '..')")]
    BadInterfaceName(String),
}

impl NetError {
    /// The errno behind the error, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetError::SocketOpen { source, .. }
            | NetError::SocketOption { source, .. }
            | NetError::Multicast { source, .. }
            | NetError::Send { source, .. }
            | NetError::Recv { source, .. }
            | NetError::NetlinkConnect { source }
            | NetError::Netlink { source, .. }
            | NetError::Sysctl { source, .. } => source.raw_os_error(),
            NetError::FamilyMismatch { .. }
            | NetError::TooLong { .. }
            | NetError::Truncated { .. }
            | NetError::Malformed { .. }
            | NetError::MissingAncillary { .. }
            | NetError::InterfaceNotFound(_)
            | NetError::LinkConflict { .. }
            | NetError::BadInterfaceName(_) => None,
        }
    }

    /// A send that failed only because the socket's send buffer was full: the packet was not
    /// sent, and trying again later may work. Callers count these instead of waiting.
    pub fn is_would_block(&self) -> bool {
        match self {
            NetError::Send { source, .. } => source.kind() == io::ErrorKind::WouldBlock,
            _ => false,
        }
    }

    /// What was wrong with one received datagram, as a label for the per-interface
    /// bad-packet counter; `None` when the error is the socket's, not a datagram's.
    /// A datagram's fault says nothing about the next one: the receive loop counts it and
    /// reads on, instead of backing off as it does when the socket fails.
    pub fn datagram_fault(&self) -> Option<&'static str> {
        match self {
            NetError::Truncated { .. } => Some("oversized"),
            NetError::Malformed { .. } | NetError::MissingAncillary { .. } => Some("malformed"),
            _ => None,
        }
    }

    /// The interface the operation needed is gone (or was never there).
    pub fn is_interface_gone(&self) -> bool {
        matches!(self, NetError::InterfaceNotFound(_))
            || matches!(self.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENXIO))
    }
}

/// What an operator can do about the common errnos, appended to the message.
fn hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => {
            " (havipd needs CAP_NET_RAW and CAP_NET_ADMIN: run it as root or grant both)"
        }
        Some(libc::ENODEV | libc::ENXIO) => " (the interface does not exist, or no longer does)",
        Some(libc::ENETDOWN) => " (the interface is down)",
        Some(libc::EAGAIN) => " (the socket's send buffer is full; the packet was not sent)",
        Some(libc::ENOBUFS) => " (the kernel is short of buffers; the packet was not sent)",
        Some(libc::EADDRNOTAVAIL) => {
            " (the source address is not on this host, or is still tentative (IPv6 DAD))"
        }
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => {
            " (no route to the destination through this interface)"
        }
        Some(libc::EAFNOSUPPORT) => " (is IPv6 disabled on this host?)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram's fault is counted and reading goes on; a socket's is not a datagram's.
    #[test]
    fn datagram_faults_are_told_from_socket_errors() {
        let ifname = || "eth0".to_owned();
        let cases = [
            (
                NetError::Truncated {
                    ifname: ifname(),
                    capacity: 4156,
                },
                Some("oversized"),
            ),
            (
                NetError::Malformed {
                    ifname: ifname(),
                    source: DecodeError::Truncated { len: 3 },
                },
                Some("malformed"),
            ),
            (
                NetError::MissingAncillary {
                    ifname: ifname(),
                    what: "hop limit",
                },
                Some("malformed"),
            ),
            (
                NetError::Recv {
                    ifname: ifname(),
                    source: io::Error::from_raw_os_error(libc::ENETDOWN),
                },
                None,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.datagram_fault(), want, "{e}");
        }
    }

    #[test]
    fn messages_name_the_operation_and_keep_the_errno() {
        let e = NetError::Send {
            src: "192.0.2.1".parse().unwrap(),
            dst: "224.0.0.18".parse().unwrap(),
            ifname: "eth0".into(),
            source: io::Error::from_raw_os_error(libc::EAGAIN),
        };
        assert!(e.is_would_block());
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
        let msg = e.to_string();
        assert!(
            msg.contains("192.0.2.1") && msg.contains("224.0.0.18") && msg.contains("eth0"),
            "{msg}"
        );
        assert!(msg.contains("send buffer is full"), "{msg}");

        let e = NetError::SocketOpen {
            what: "a raw IPv4 VRRP socket",
            ifname: "eth0".into(),
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert!(!e.is_would_block());
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");

        let e = NetError::Netlink {
            op: "add 192.0.2.10/24 to interface 7".into(),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        };
        assert!(e.is_interface_gone());
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert!(
            e.to_string()
                .starts_with("netlink: cannot add 192.0.2.10/24"),
            "{e}"
        );
    }

    #[test]
    fn errors_without_an_errno_say_so() {
        let e = NetError::Truncated {
            ifname: "eth0".into(),
            capacity: 10,
        };
        assert_eq!(e.raw_os_error(), None);
        assert!(!e.is_interface_gone());
        assert!(NetError::InterfaceNotFound("eth9".into()).is_interface_gone());
    }
}
