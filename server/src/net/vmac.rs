//! VMAC interfaces: a macvlan on the VRRP interface carrying the virtual router MAC
//! 00:00:5e:00:01:VRID / 00:00:5e:00:02:VRID (RFC 9568 §7.3), so that on failover only the
//! port of the MAC moves and no host has to update its ARP or neighbour cache.
//!
//! Every router of a virtual router creates the same MAC, so nothing on these interfaces
//! may be generated from it automatically: the kernel would give each router the same
//! EUI-64 link-local address (for an IPv6 VMAC that is the virtual link-local address
//! itself), duplicate address detection would fail on all but one, and the survivors would
//! answer for an address they do not own. VMACs are therefore created with IPv6 address
//! generation off and DAD off; the runtime adds the addresses it means to have.

use super::error::NetError;
use super::host::{check_ifname, write_interface_sysctl};
use super::netlink::{InterfaceInfo, Netlink, errno, netlink_error};
use havip_vrrp::types::Family;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, MacVlanMode,
};
use rtnetlink::{LinkMacVlan, LinkUnspec};
use tracing::{debug, warn};

/// Creates the macvlan `name` on interface `parent` with MAC `mac` (mode bridge, so it
/// reaches its siblings on the same parent), or reuses it if it already exists with that
/// parent and MAC, and brings it up. Returns its index.
///
/// A link called `name` that is not such a macvlan is left alone and reported as
/// [`NetError::LinkConflict`]. On a new link, IPv6 address generation is set to none and
/// `accept_dad` to 0 before it comes up (see the module comment); a link that is being
/// reused keeps its settings. `name` is the caller's (e.g. "vrrp4.51"), at most 15 bytes.
pub async fn ensure_macvlan(
    nl: &Netlink,
    parent: u32,
    name: &str,
    mac: [u8; 6],
) -> Result<u32, NetError> {
    check_ifname(name)?;
    if let Some(existing) = nl.interface(name).await? {
        return reuse(nl, &existing, parent, mac).await;
    }

    let message = LinkMacVlan::new(name, parent, MacVlanMode::Bridge)
        .address(mac.to_vec())
        .build();
    match nl.handle().link().add(message).execute().await {
        Ok(()) => {}
        Err(e) if errno(&e) == Some(libc::EEXIST) => {
            // Created between the lookup and the add (another task, an operator).
            return match nl.interface(name).await? {
                Some(existing) => reuse(nl, &existing, parent, mac).await,
                None => Err(netlink_error(format!("create macvlan {name}"), e)),
            };
        }
        Err(e) => {
            return Err(netlink_error(
                format!("create macvlan {name} on interface {parent}"),
                e,
            ));
        }
    }

    let Some(created) = nl.interface(name).await? else {
        // Deleted again before we could look at it; nothing of ours is left behind.
        return Err(NetError::InterfaceNotFound(name.to_owned()));
    };
    if let Err(e) = configure_new(nl, &created).await {
        // A half-configured VMAC would come up with the shared link-local; take it away.
        if let Err(cleanup) = delete_link(nl, created.index).await {
            warn!(interface = name, error = %cleanup, "cannot remove a VMAC interface whose setup failed");
        }
        return Err(e);
    }
    debug!(
        interface = name,
        index = created.index,
        parent,
        "created VMAC interface"
    );
    Ok(created.index)
}

async fn reuse(
    nl: &Netlink,
    existing: &InterfaceInfo,
    parent: u32,
    mac: [u8; 6],
) -> Result<u32, NetError> {
    let conflict = |reason: String| NetError::LinkConflict {
        name: existing.name.clone(),
        reason,
    };
    if existing.kind.as_deref() != Some("macvlan") {
        let kind = existing.kind.as_deref().unwrap_or("a physical device");
        return Err(conflict(format!("is {kind}, not a macvlan")));
    }
    if existing.parent != Some(parent) {
        return Err(conflict(format!(
            "sits on interface {}, not {parent}",
            existing
                .parent
                .map_or_else(|| "none".to_owned(), |p| p.to_string())
        )));
    }
    if existing.mac != Some(mac) {
        return Err(conflict(format!(
            "has MAC {}, not {}",
            existing
                .mac
                .map_or_else(|| "none".to_owned(), |m| format_mac(&m)),
            format_mac(&mac)
        )));
    }
    set_up(nl, existing.index, &existing.name).await?;
    Ok(existing.index)
}

async fn configure_new(nl: &Netlink, link: &InterfaceInfo) -> Result<(), NetError> {
    let no_addr_gen = LinkUnspec::new_with_index(link.index)
        .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )]))
        .build();
    match nl.handle().link().set(no_addr_gen).execute().await {
        Ok(()) => {}
        // IPv6 is disabled on this host: there is nothing to generate.
        Err(e) if errno(&e) == Some(libc::EAFNOSUPPORT) => {}
        Err(e) => {
            return Err(netlink_error(
                format!("turn IPv6 address generation off on {}", link.name),
                e,
            ));
        }
    }
    match write_interface_sysctl(Family::Ipv6, &link.name, "accept_dad", "0") {
        Ok(()) => {}
        // No /proc/sys/net/ipv6: IPv6 is disabled, so there is no DAD either.
        Err(NetError::Sysctl { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    set_up(nl, link.index, &link.name).await
}

async fn set_up(nl: &Netlink, index: u32, name: &str) -> Result<(), NetError> {
    let message = LinkUnspec::new_with_index(index).up().build();
    nl.handle()
        .link()
        .set(message)
        .execute()
        .await
        .map_err(|e| netlink_error(format!("bring {name} up"), e))
}

/// Deletes interface `index`. An interface already gone is not an error.
pub async fn delete_link(nl: &Netlink, index: u32) -> Result<(), NetError> {
    match nl.handle().link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(netlink_error(format!("delete interface {index}"), e)),
    }
}

/// 00:00:5e:00:01:33, for messages.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_print_like_ip_link() {
        assert_eq!(format_mac(&[0, 0, 0x5e, 0, 1, 0x33]), "00:00:5e:00:01:33");
    }
}
