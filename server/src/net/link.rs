//! Watching interfaces and addresses come and go, for FAULT handling, tracked interfaces,
//! and noticing when an instance's source address disappears.
//!
//! The kernel multicasts an RTM_NEWLINK for many reasons besides a state change (statistics,
//! MTU, promiscuity, bridge port updates), so events are reduced to what the runtime acts on:
//! an interface's usable state changed, it disappeared, an address became usable, an address
//! went away. If the kernel reports that our socket overflowed (events were lost), the
//! watcher re-reads all links and addresses and reports the differences, so the runtime's
//! view converges instead of staying wrong.

use super::error::NetError;
use super::netlink::{
    InterfaceAddress, Netlink, interface_address, is_up, link_name, require_runtime,
};
use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

/// Events queued for a consumer that has not caught up yet; past this the watcher waits
/// (the kernel's messages then queue in the netlink connection, not lost).
const EVENT_QUEUE: usize = 1024;

/// The multicast socket's receive buffer: a link flap on a host with many addresses
/// produces bursts of messages.
const NETLINK_RECV_BUFFER: usize = 4 << 20;

/// A change the runtime acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The interface's usable state ([`super::InterfaceInfo::up`]) changed, or an interface
    /// appeared.
    Link { index: u32, name: String, up: bool },
    /// The interface was deleted (or moved to another network namespace).
    LinkRemoved { index: u32, name: String },
    /// An address became usable: added (IPv4), or added and past DAD (IPv6).
    AddressAdded {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    },
    /// An address reported as added was removed, or became tentative again (DAD restarts
    /// when an IPv6 interface comes back up).
    AddressRemoved {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    },
}

/// A stream of [`LinkEvent`]s; dropping it stops watching.
#[derive(Debug)]
pub struct LinkWatcher {
    events: mpsc::Receiver<LinkEvent>,
    task: JoinHandle<()>,
    connection: JoinHandle<()>,
}

impl LinkWatcher {
    /// The next event. `None` means the netlink socket failed and the watcher ended; the
    /// runtime should start a new one and re-read the interfaces it cares about.
    /// Cancel-safe: usable in `tokio::select!` without losing events.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        self.events.recv().await
    }
}

impl Drop for LinkWatcher {
    fn drop(&mut self) {
        self.task.abort();
        self.connection.abort();
    }
}

/// Starts watching links and IPv4/IPv6 addresses (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
/// RTNLGRP_IPV6_IFADDR) in the current tokio runtime.
///
/// The current state is read before this returns, and only changes from it are reported:
/// start the watcher first, then read the interfaces the runtime needs, and no change can
/// fall between the two.
pub async fn watch_links() -> Result<LinkWatcher, NetError> {
    require_runtime()?;
    let (mut connection, handle, messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(|source| NetError::NetlinkConnect { source })?;
    if let Err(e) = connection
        .socket_mut()
        .socket_mut()
        .set_rx_buf_sz(NETLINK_RECV_BUFFER)
    {
        // The default buffer works; a burst may overflow it, which resync() handles.
        warn!(error = %e, "cannot enlarge the link watcher's netlink receive buffer");
    }
    let connection = tokio::spawn(connection);
    let nl = Netlink::from_handle(handle);
    let mut state = State::default();
    if let Err(e) = state.resync(&nl).await {
        connection.abort();
        return Err(e);
    }
    let (tx, events) = mpsc::channel(EVENT_QUEUE);
    let task = tokio::spawn(run(nl, state, messages, tx));
    Ok(LinkWatcher {
        events,
        task,
        connection,
    })
}

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

async fn run(nl: Netlink, mut state: State, mut messages: Messages, tx: mpsc::Sender<LinkEvent>) {
    // A storm of link changes can overrun the socket again and again: one line per window.
    let mut warnings = crate::logging::RateLimiter::new(crate::logging::DEFAULT_WINDOW);
    while let Some((message, _)) = messages.next().await {
        let events = match message.payload {
            NetlinkPayload::InnerMessage(message) => state.apply(message).into_iter().collect(),
            NetlinkPayload::Overrun(_) => {
                if let Some(suppressed) = warnings.check("overrun", std::time::Instant::now()) {
                    warn!(
                        suppressed,
                        "link watcher fell behind the kernel and lost events; re-reading all links and addresses"
                    );
                }
                match state.resync(&nl).await {
                    Ok(events) => events,
                    Err(e) => {
                        error!(error = %e, "link watcher cannot re-read links and addresses; stopping it");
                        return;
                    }
                }
            }
            _ => Vec::new(),
        };
        for event in events {
            if tx.send(event).await.is_err() {
                return; // The watcher was dropped.
            }
        }
    }
    error!(
        "the link watcher's netlink connection closed; link and address changes are no longer seen"
    );
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct LinkState {
    name: String,
    up: bool,
}

/// What has been reported so far, to report only changes.
#[derive(Debug, Default)]
struct State {
    links: HashMap<u32, LinkState>,
    /// Usable addresses: (interface index, address, prefix length).
    addresses: HashSet<(u32, IpAddr, u8)>,
}

impl State {
    fn apply(&mut self, message: RouteNetlinkMessage) -> Option<LinkEvent> {
        match message {
            RouteNetlinkMessage::NewLink(link) if is_interface_message(&link) => {
                let index = link.header.index;
                let new = LinkState {
                    name: link_name(&link),
                    up: is_up(link.header.flags),
                };
                let changed = self.links.get(&index).is_none_or(|old| old.up != new.up);
                self.links.insert(index, new.clone());
                changed.then_some(LinkEvent::Link {
                    index,
                    name: new.name,
                    up: new.up,
                })
            }
            RouteNetlinkMessage::DelLink(link) if is_interface_message(&link) => {
                let index = link.header.index;
                self.links.remove(&index);
                // The kernel reports each address's removal first; anything left is stale.
                self.addresses.retain(|(i, _, _)| *i != index);
                Some(LinkEvent::LinkRemoved {
                    index,
                    name: link_name(&link),
                })
            }
            RouteNetlinkMessage::NewAddress(message) => {
                let (index, address) = interface_address(&message)?;
                if address.tentative {
                    self.forget(index, &address)
                } else {
                    self.learn(index, &address)
                }
            }
            RouteNetlinkMessage::DelAddress(message) => {
                let (index, address) = interface_address(&message)?;
                self.forget(index, &address)
            }
            _ => None,
        }
    }

    fn learn(&mut self, index: u32, a: &InterfaceAddress) -> Option<LinkEvent> {
        self.addresses
            .insert((index, a.addr, a.prefix_len))
            .then_some(LinkEvent::AddressAdded {
                index,
                addr: a.addr,
                prefix_len: a.prefix_len,
            })
    }

    fn forget(&mut self, index: u32, a: &InterfaceAddress) -> Option<LinkEvent> {
        self.addresses
            .remove(&(index, a.addr, a.prefix_len))
            .then_some(LinkEvent::AddressRemoved {
                index,
                addr: a.addr,
                prefix_len: a.prefix_len,
            })
    }

    /// Re-reads every link and address and returns how they differ from what was
    /// reported; afterwards the state is the kernel's.
    async fn resync(&mut self, nl: &Netlink) -> Result<Vec<LinkEvent>, NetError> {
        let links: HashMap<u32, LinkState> = nl
            .links()
            .await?
            .iter()
            .map(|l| {
                let state = LinkState {
                    name: link_name(l),
                    up: is_up(l.header.flags),
                };
                (l.header.index, state)
            })
            .collect();
        let addresses: HashSet<(u32, IpAddr, u8)> = nl
            .addresses(None)
            .await?
            .into_iter()
            .filter(|(_, a)| !a.tentative)
            .map(|(index, a)| (index, a.addr, a.prefix_len))
            .collect();

        let mut events = Vec::new();
        for &(index, addr, prefix_len) in self.addresses.difference(&addresses) {
            events.push(LinkEvent::AddressRemoved {
                index,
                addr,
                prefix_len,
            });
        }
        for (&index, old) in &self.links {
            if !links.contains_key(&index) {
                events.push(LinkEvent::LinkRemoved {
                    index,
                    name: old.name.clone(),
                });
            }
        }
        for (&index, new) in &links {
            if self.links.get(&index).is_none_or(|old| old.up != new.up) {
                events.push(LinkEvent::Link {
                    index,
                    name: new.name.clone(),
                    up: new.up,
                });
            }
        }
        for &(index, addr, prefix_len) in addresses.difference(&self.addresses) {
            events.push(LinkEvent::AddressAdded {
                index,
                addr,
                prefix_len,
            });
        }
        debug!(
            links = links.len(),
            addresses = addresses.len(),
            changes = events.len(),
            "link watcher synchronised"
        );
        self.links = links;
        self.addresses = addresses;
        Ok(events)
    }
}

/// Link messages about interfaces, as opposed to the AF_BRIDGE messages a bridge sends
/// about its ports (including an RTM_DELLINK when a port leaves the bridge, while the
/// interface itself stays).
fn is_interface_message(link: &LinkMessage) -> bool {
    link.header.interface_family == AddressFamily::Unspec
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
    use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};

    fn link(index: u32, name: &str, flags: LinkFlags) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = flags;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m
    }

    fn address(index: u32, addr: &str, flags: AddressFlags) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = 64;
        m.attributes
            .push(AddressAttribute::Address(addr.parse().unwrap()));
        m.attributes.push(AddressAttribute::Flags(flags));
        m
    }

    const UP: LinkFlags = LinkFlags::Up.union(LinkFlags::Running);

    #[test]
    fn link_events_only_on_change() {
        let mut s = State::default();
        let new = |m| RouteNetlinkMessage::NewLink(m);
        assert_eq!(
            s.apply(new(link(3, "eth0", LinkFlags::empty()))),
            Some(LinkEvent::Link {
                index: 3,
                name: "eth0".into(),
                up: false
            })
        );
        assert_eq!(
            s.apply(new(link(3, "eth0", LinkFlags::Up))),
            None,
            "admin up, no carrier"
        );
        assert_eq!(
            s.apply(new(link(3, "eth0", UP))),
            Some(LinkEvent::Link {
                index: 3,
                name: "eth0".into(),
                up: true
            })
        );
        assert_eq!(s.apply(new(link(3, "eth0", UP | LinkFlags::Promisc))), None);
        assert_eq!(s.apply(new(link(3, "renamed", UP))), None);
        assert_eq!(
            s.apply(RouteNetlinkMessage::DelLink(link(3, "renamed", UP))),
            Some(LinkEvent::LinkRemoved {
                index: 3,
                name: "renamed".into()
            })
        );
    }

    #[test]
    fn bridge_port_messages_are_not_interface_events() {
        let mut s = State::default();
        s.apply(RouteNetlinkMessage::NewLink(link(4, "vb", UP)));
        let mut port = link(4, "vb", LinkFlags::empty());
        port.header.interface_family = AddressFamily::Bridge;
        assert_eq!(s.apply(RouteNetlinkMessage::NewLink(port.clone())), None);
        assert_eq!(s.apply(RouteNetlinkMessage::DelLink(port)), None);
    }

    #[test]
    fn addresses_are_reported_when_usable() {
        let mut s = State::default();
        let added = LinkEvent::AddressAdded {
            index: 2,
            addr: "2001:db8::1".parse().unwrap(),
            prefix_len: 64,
        };
        let removed = LinkEvent::AddressRemoved {
            index: 2,
            addr: "2001:db8::1".parse().unwrap(),
            prefix_len: 64,
        };
        let new = |f| RouteNetlinkMessage::NewAddress(address(2, "2001:db8::1", f));
        assert_eq!(s.apply(new(AddressFlags::Tentative)), None, "still in DAD");
        assert_eq!(s.apply(new(AddressFlags::Permanent)), Some(added.clone()));
        assert_eq!(s.apply(new(AddressFlags::Permanent)), None, "no change");
        assert_eq!(
            s.apply(new(AddressFlags::Tentative)),
            Some(removed.clone()),
            "DAD again"
        );
        assert_eq!(s.apply(new(AddressFlags::Permanent)), Some(added));
        let del =
            RouteNetlinkMessage::DelAddress(address(2, "2001:db8::1", AddressFlags::Permanent));
        assert_eq!(s.apply(del.clone()), Some(removed));
        assert_eq!(s.apply(del), None, "already gone");
    }
}
