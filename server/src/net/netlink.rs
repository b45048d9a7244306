//! Interfaces and addresses over rtnetlink: looking interfaces up, and adding and removing
//! the virtual addresses, idempotently, so a retry or a restart never fails on what is
//! already done.

use super::error::NetError;
use super::host::is_valid_ifname;
use futures::TryStreamExt;
use havip_vrrp::types::Family;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::{AddressMessageBuilder, Handle, LinkGetRequest};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// A connection to the kernel's routing netlink; cheap to clone, all clones share it.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: Handle,
    /// Held for the whole of a dump (a request for all links or addresses): the kernel
    /// runs one dump per netlink socket at a time and refuses a second one with EBUSY,
    /// and the daemon's tasks (manager, trackers, host operations) share one socket.
    dumps: Arc<tokio::sync::Mutex<()>>,
}

/// An interface as the runtime needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub name: String,
    pub index: u32,
    /// Administratively up and operationally up (`IFF_UP` and `IFF_RUNNING`: carrier
    /// present, and for a macvlan its parent up): the interface can carry adverts.
    pub up: bool,
    /// The hardware address, for interfaces that have a 6-byte one.
    pub mac: Option<[u8; 6]>,
    pub addresses: Vec<InterfaceAddress>,
    /// The link kind ("macvlan", "veth", "bridge", ...); `None` for physical devices.
    pub kind: Option<String>,
    /// The lower interface (`IFLA_LINK`): a macvlan's or VLAN's parent. For a veth it is
    /// the peer's index, which may belong to another network namespace.
    pub parent: Option<u32>,
}

/// An address on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv4: not the primary address of its subnet on the interface (`IFA_F_SECONDARY`).
    pub secondary: bool,
    /// IPv6: duplicate address detection has not finished (or failed), so the address
    /// cannot be used as a source yet (`IFA_F_TENTATIVE`, `IFA_F_DADFAILED`).
    pub tentative: bool,
}

impl Netlink {
    /// Opens an rtnetlink socket and spawns its connection task on the current tokio
    /// runtime; the task ends when the last clone is dropped.
    pub async fn connect() -> Result<Self, NetError> {
        require_runtime()?;
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetError::NetlinkConnect { source })?;
        tokio::spawn(connection);
        Ok(Self::from_handle(handle))
    }

    pub(crate) fn from_handle(handle: Handle) -> Self {
        Netlink {
            handle,
            dumps: Arc::default(),
        }
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The interface called `name`, or `None` when there is none.
    pub async fn interface(&self, name: &str) -> Result<Option<InterfaceInfo>, NetError> {
        if !is_valid_ifname(name) {
            // No interface can have that name; asking would only get EINVAL.
            return Ok(None);
        }
        let request = self.handle.link().get().match_name(name);
        self.one_interface(request, || format!("look up interface {name}"))
            .await
    }

    /// The interface with index `index`, or `None` when there is none.
    pub async fn interface_by_index(&self, index: u32) -> Result<Option<InterfaceInfo>, NetError> {
        if index == 0 {
            return Ok(None);
        }
        let request = self.handle.link().get().match_index(index);
        self.one_interface(request, || format!("look up interface {index}"))
            .await
    }

    async fn one_interface(
        &self,
        request: LinkGetRequest,
        op: impl Fn() -> String,
    ) -> Result<Option<InterfaceInfo>, NetError> {
        let link = match request.execute().try_next().await {
            Ok(link) => link,
            Err(e) if errno(&e) == Some(libc::ENODEV) => None,
            Err(e) => return Err(netlink_error(op(), e)),
        };
        let Some(link) = link else {
            return Ok(None);
        };
        let index = link.header.index;
        let addresses = self
            .addresses(Some(index))
            .await?
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        Ok(Some(interface_info(&link, addresses)))
    }

    /// Every interface, with its addresses.
    pub async fn interfaces(&self) -> Result<Vec<InterfaceInfo>, NetError> {
        let links = self.links().await?;
        let mut by_index: HashMap<u32, Vec<InterfaceAddress>> = HashMap::new();
        for (index, address) in self.addresses(None).await? {
            by_index.entry(index).or_default().push(address);
        }
        Ok(links
            .iter()
            .map(|link| {
                let addresses = by_index.remove(&link.header.index).unwrap_or_default();
                interface_info(link, addresses)
            })
            .collect())
    }

    /// Every link as the kernel reports it.
    pub(crate) async fn links(&self) -> Result<Vec<LinkMessage>, NetError> {
        let _dump = self.dumps.lock().await;
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| netlink_error("list interfaces".into(), e))
    }

    /// The addresses of interface `index`, or of all interfaces, with their interface
    /// index, in the kernel's order (an IPv4 primary before its secondaries).
    pub(crate) async fn addresses(
        &self,
        index: Option<u32>,
    ) -> Result<Vec<(u32, InterfaceAddress)>, NetError> {
        let mut request = self.handle.address().get();
        if let Some(index) = index {
            request = request.set_link_index_filter(index);
        }
        // Filtered by interface or not, an address request is a dump.
        let _dump = self.dumps.lock().await;
        let messages: Vec<AddressMessage> = request.execute().try_collect().await.map_err(|e| {
            let op = match index {
                Some(index) => format!("list the addresses of interface {index}"),
                None => "list addresses".into(),
            };
            netlink_error(op, e)
        })?;
        Ok(messages.iter().filter_map(interface_address).collect())
    }

    /// Adds `addr`/`prefix_len` to interface `ifindex`. An address already there is not an
    /// error (for IPv6 that holds whatever its prefix length; IPv4 can carry one address
    /// with several prefix lengths, so there a different one is added beside it).
    ///
    /// IPv6 addresses are added with `IFA_F_NODAD`: a VIP must be usable the moment the
    /// router becomes master, not after a second of duplicate address detection (which
    /// would also fail, since the backups know the address too).
    pub async fn add_address(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetError> {
        let mut request = self.handle.address().add(ifindex, addr, prefix_len);
        if addr.is_ipv6() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(netlink_error(
                format!("add {addr}/{prefix_len} to interface {ifindex}"),
                e,
            )),
        }
    }

    /// Removes `addr`/`prefix_len` from interface `ifindex`. An address (or interface)
    /// already gone is not an error. The prefix length must be the one it was added with.
    pub async fn remove_address(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetError> {
        let message = match addr {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(ifindex)
                .address(a, prefix_len)
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(ifindex)
                .address(a, prefix_len)
                .build(),
        };
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL | libc::ENODEV)) => Ok(()),
            Err(e) => Err(netlink_error(
                format!("remove {addr}/{prefix_len} from interface {ifindex}"),
                e,
            )),
        }
    }
}

/// The address adverts of `family` are sent from on this interface: for IPv4 the first
/// primary (non-secondary) address; for IPv6 the first usable link-local one, since VRRPv3
/// over IPv6 is sourced from the link-local address (RFC 9568 §5.1.2.1). Tentative
/// addresses are skipped: the kernel refuses them as a source until DAD has finished.
pub fn primary_address(info: &InterfaceInfo, family: Family) -> Option<IpAddr> {
    info.addresses
        .iter()
        .find(|a| match (family, a.addr) {
            (Family::Ipv4, IpAddr::V4(_)) => !a.secondary,
            (Family::Ipv6, IpAddr::V6(v6)) => {
                havip_vrrp::config::is_link_local(&v6) && !a.tentative
            }
            _ => false,
        })
        .map(|a| a.addr)
}

/// Administratively and operationally up; see [`InterfaceInfo::up`].
pub(crate) fn is_up(flags: LinkFlags) -> bool {
    flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running)
}

/// The interface name a link message carries (empty if none, which the kernel never does).
pub(crate) fn link_name(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn interface_info(link: &LinkMessage, addresses: Vec<InterfaceAddress>) -> InterfaceInfo {
    let mut info = InterfaceInfo {
        name: String::new(),
        index: link.header.index,
        up: is_up(link.header.flags),
        mac: None,
        addresses,
        kind: None,
        parent: None,
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(name) => info.name = name.clone(),
            LinkAttribute::Address(mac) => info.mac = <[u8; 6]>::try_from(mac.as_slice()).ok(),
            LinkAttribute::Link(parent) => info.parent = Some(*parent),
            LinkAttribute::LinkInfo(infos) => {
                info.kind = infos.iter().find_map(|i| match i {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    info
}

/// The interface index and address an address message describes.
pub(crate) fn interface_address(message: &AddressMessage) -> Option<(u32, InterfaceAddress)> {
    let mut local = None;
    let mut address = None;
    // IFA_FLAGS carries all 32 bits; the header only the low 8, and only when it is absent
    // does the header count.
    let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links and
    // the only one IPv6 sends otherwise.
    let addr = local.or(address)?;
    Some((
        message.header.index,
        InterfaceAddress {
            addr,
            prefix_len: message.header.prefix_len,
            secondary: flags.contains(AddressFlags::Secondary),
            tentative: flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed),
        },
    ))
}

/// The errno of a netlink error reply.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|c| c.get().abs()),
        _ => None,
    }
}

pub(crate) fn netlink_error(op: String, e: rtnetlink::Error) -> NetError {
    let source = match errno(&e) {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::other(e.to_string()),
    };
    NetError::Netlink { op, source }
}

/// rtnetlink spawns its connection task with `tokio::spawn`, which panics outside a
/// runtime; this turns that into an error.
pub(crate) fn require_runtime() -> Result<(), NetError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(NetError::NetlinkConnect {
            source: io::Error::other("called outside a tokio runtime"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(addr: &str, secondary: bool, tentative: bool) -> InterfaceAddress {
        InterfaceAddress {
            addr: addr.parse().unwrap(),
            prefix_len: 24,
            secondary,
            tentative,
        }
    }

    fn info(addresses: Vec<InterfaceAddress>) -> InterfaceInfo {
        InterfaceInfo {
            name: "eth0".into(),
            index: 2,
            up: true,
            mac: None,
            addresses,
            kind: None,
            parent: None,
        }
    }

    #[test]
    fn primary_address_ipv4_skips_secondaries() {
        let i = info(vec![
            address("fe80::1", false, false),
            address("192.0.2.5", true, false),
            address("192.0.2.1", false, false),
            address("198.51.100.1", false, false),
        ]);
        assert_eq!(
            primary_address(&i, Family::Ipv4),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(primary_address(&info(vec![]), Family::Ipv4), None);
    }

    /// RFC 9568 §5.1.2.1: IPv6 adverts come from the link-local address.
    #[test]
    fn primary_address_ipv6_is_a_usable_link_local() {
        let i = info(vec![
            address("2001:db8::1", false, false),
            address("fe80::bad", false, true),
            address("fe80::1", false, false),
        ]);
        assert_eq!(
            primary_address(&i, Family::Ipv6),
            Some("fe80::1".parse().unwrap())
        );
        let only_global = info(vec![address("2001:db8::1", false, false)]);
        assert_eq!(primary_address(&only_global, Family::Ipv6), None);
    }

    #[test]
    fn address_messages_prefer_ifa_flags_and_local() {
        let mut m = AddressMessage::default();
        m.header.index = 4;
        m.header.prefix_len = 64;
        m.header.flags = AddressHeaderFlags::Secondary;
        m.attributes
            .push(AddressAttribute::Address("2001:db8::2".parse().unwrap()));
        m.attributes
            .push(AddressAttribute::Local("2001:db8::1".parse().unwrap()));
        m.attributes.push(AddressAttribute::Flags(
            AddressFlags::Tentative | AddressFlags::Nodad,
        ));
        let (index, a) = interface_address(&m).unwrap();
        assert_eq!(index, 4);
        assert_eq!(a.addr, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(a.prefix_len, 64);
        assert!(!a.secondary, "IFA_FLAGS overrides the header");
        assert!(a.tentative);
        assert!(interface_address(&AddressMessage::default()).is_none());
    }

    #[test]
    fn up_needs_admin_and_operational_state() {
        assert!(is_up(
            LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp
        ));
        assert!(!is_up(LinkFlags::Up));
        assert!(!is_up(LinkFlags::Running));
    }
}
