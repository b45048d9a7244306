//! The Linux network layer of havipd: what the runtime calls to put VRRP on the wire and
//! to change the host's interfaces. It decides nothing; the engine does.
//!
//! - [`socket`]: the raw IP socket adverts are sent and received on, one per interface and
//!   family; [`mmsg`]: the batches it receives and sends many adverts per system call with.
//! - [`netlink`]: interface lookup and virtual addresses over rtnetlink.
//! - [`vmac`]: macvlan interfaces carrying the virtual router MAC.
//! - [`link`]: interface and address changes as a stream of events.
//! - [`arp`], [`ndisc`]: gratuitous ARP and unsolicited neighbour advertisement frames;
//!   [`garp`]: the service that sends them, rate-limited and fair across instances.
//! - [`host`]: interface names and per-interface sysctls.
//!
//! Everything here acts on the network namespace of the thread that calls it (or, for
//! sockets and netlink connections, that created them).

pub mod arp;
pub mod error;
mod frame;
pub mod garp;
pub mod host;
pub mod link;
pub mod mmsg;
pub mod ndisc;
pub mod netlink;
pub mod socket;
pub(crate) mod sys;
pub mod vmac;

#[cfg(test)]
pub(crate) mod testns;
#[cfg(test)]
mod tests;

pub use error::NetError;
pub use garp::{GarpHandle, GarpLimits, GarpRequest, GarpService};
pub use link::{LinkEvent, LinkWatcher, watch_links};
pub use mmsg::{RecvBatch, SendBatch};
pub use netlink::{InterfaceAddress, InterfaceInfo, Netlink, primary_address};
pub use socket::{AdvertSocket, RECV_BUF_LEN, Received};
pub use vmac::{delete_link, ensure_macvlan};
