//! What the network layer reads and writes about the host outside netlink: interface name
//! rules, and per-interface sysctls under /proc/sys/net.
//!
//! /proc/sys/net shows the network namespace of the thread that opens the file (not of the
//! process, unlike /proc/net), so these helpers act on the namespace the calling thread is
//! in; the tests check this from threads moved into test namespaces. They do blocking file
//! I/O on a few bytes of procfs, which never waits on a disk; they are not routed through
//! tokio's blocking pool because a pool thread could be in another namespace.

use super::error::NetError;
use havip_vrrp::types::Family;
use std::fs;
use std::path::PathBuf;

/// The longest interface name Linux accepts (IFNAMSIZ − 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// Whether `name` can be a Linux interface name (the kernel's `dev_valid_name`): 1 to 15
/// bytes, not "." or "..", and no '/', ':' or whitespace.
pub fn is_valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// [`is_valid_ifname`] as a `Result`.
pub fn check_ifname(name: &str) -> Result<(), NetError> {
    if is_valid_ifname(name) {
        Ok(())
    } else {
        Err(NetError::BadInterfaceName(name.to_owned()))
    }
}

/// /proc/sys/net/{ipv4,ipv6}/conf/`ifname`/`key`.
pub fn interface_sysctl_path(family: Family, ifname: &str, key: &str) -> Result<PathBuf, NetError> {
    // "all" and "default" are not interfaces but are valid here, and pass the name check.
    check_ifname(ifname)?;
    if key.is_empty() || key.contains('/') || key == "." || key == ".." {
        return Err(NetError::Sysctl {
            op: "name",
            path: PathBuf::from(key),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a sysctl name"),
        });
    }
    let family = match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    };
    Ok(PathBuf::from(format!(
        "/proc/sys/net/{family}/conf/{ifname}/{key}"
    )))
}

/// The value of a per-interface sysctl, whitespace trimmed.
pub fn read_interface_sysctl(family: Family, ifname: &str, key: &str) -> Result<String, NetError> {
    let path = interface_sysctl_path(family, ifname, key)?;
    match fs::read_to_string(&path) {
        Ok(value) => Ok(value.trim().to_owned()),
        Err(source) => Err(NetError::Sysctl {
            op: "read",
            path,
            source,
        }),
    }
}

/// Sets a per-interface sysctl.
pub fn write_interface_sysctl(
    family: Family,
    ifname: &str,
    key: &str,
    value: &str,
) -> Result<(), NetError> {
    let path = interface_sysctl_path(family, ifname, key)?;
    fs::write(&path, value).map_err(|source| NetError::Sysctl {
        op: "write",
        path,
        source,
    })
}

/// Whether IPv6 forwarding is on for `ifname`: keepalived sets the Router flag of its
/// unsolicited neighbour advertisements from this.
pub fn ipv6_forwarding(ifname: &str) -> Result<bool, NetError> {
    Ok(read_interface_sysctl(Family::Ipv6, ifname, "forwarding")? != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for good in [
            "eth0",
            "vrrp4.51",
            "a",
            "enp0s31f6",
            "123456789012345",
            "all",
        ] {
            assert!(is_valid_ifname(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a:1", "a b", "1234567890123456"] {
            assert!(!is_valid_ifname(bad), "{bad:?}");
            assert!(matches!(
                check_ifname(bad),
                Err(NetError::BadInterfaceName(_))
            ));
        }
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            interface_sysctl_path(Family::Ipv6, "vrrp6.7", "accept_dad").unwrap(),
            PathBuf::from("/proc/sys/net/ipv6/conf/vrrp6.7/accept_dad")
        );
        assert_eq!(
            interface_sysctl_path(Family::Ipv4, "eth0", "arp_ignore").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0/arp_ignore")
        );
        assert!(interface_sysctl_path(Family::Ipv4, "../x", "arp_ignore").is_err());
        assert!(interface_sysctl_path(Family::Ipv4, "eth0", "../../x").is_err());
        assert!(interface_sysctl_path(Family::Ipv4, "eth0", "..").is_err());
    }

    /// Reading is harmless anywhere; "lo" exists in every namespace.
    #[test]
    fn reads_a_sysctl() {
        let v = read_interface_sysctl(Family::Ipv4, "lo", "forwarding").unwrap();
        assert!(v == "0" || v == "1", "{v}");
        let err = read_interface_sysctl(Family::Ipv4, "nonexistent0", "forwarding").unwrap_err();
        assert!(
            err.to_string()
                .contains("/proc/sys/net/ipv4/conf/nonexistent0"),
            "{err}"
        );
    }
}
