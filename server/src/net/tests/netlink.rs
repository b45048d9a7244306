//! Netlink lookups, virtual addresses and VMAC interfaces against the kernel, in a
//! namespace of their own.

use crate::net::host::{read_interface_sysctl, write_interface_sysctl};
use crate::net::testns::{NetNs, ifindex, skip, usable_link_local, veth};
use crate::net::{NetError, Netlink, delete_link, ensure_macvlan, primary_address};
use havip_vrrp::config::{virtual_link_local, virtual_mac};
use havip_vrrp::types::{Family, Vrid};
use std::net::IpAddr;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn interfaces_are_found_by_name_and_index() {
    if skip("interfaces_are_found_by_name_and_index") {
        return;
    }
    let a = NetNs::new("a");
    veth(&a, "va", &a, "vb");
    a.ip(&["link", "set", "va", "address", "02:00:00:00:00:0a"]);
    a.run(|| async {
        let nl = Netlink::connect().await.unwrap();
        let va = nl.interface("va").await.unwrap().expect("va exists");
        assert_eq!(va.name, "va");
        assert_eq!(va.index, ifindex("va"));
        assert_eq!(va.mac, Some([2, 0, 0, 0, 0, 0x0a]));
        assert_eq!(va.kind.as_deref(), Some("veth"));
        assert_eq!(
            va.parent,
            Some(ifindex("vb")),
            "a veth's IFLA_LINK is its peer"
        );
        assert!(va.up);

        let by_index = nl.interface_by_index(va.index).await.unwrap().unwrap();
        assert_eq!(by_index.name, "va");
        assert_eq!(by_index.mac, va.mac);

        assert_eq!(nl.interface("nosuch0").await.unwrap(), None);
        assert_eq!(nl.interface("name-too-long-for-linux").await.unwrap(), None);
        assert_eq!(nl.interface("").await.unwrap(), None);
        assert_eq!(nl.interface_by_index(999_999).await.unwrap(), None);
        assert_eq!(nl.interface_by_index(0).await.unwrap(), None);

        let all = nl.interfaces().await.unwrap();
        let mut names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["lo", "va", "vb"]);
        let lo = all.iter().find(|i| i.name == "lo").unwrap();
        assert!(lo.addresses.iter().any(|a| a.addr == ip("127.0.0.1")));
        assert_eq!(primary_address(lo, Family::Ipv4), Some(ip("127.0.0.1")));

        // Down: not up, and that is what the runtime sees.
        a.ip(&["link", "set", "vb", "down"]);
        assert!(
            !nl.interface("va").await.unwrap().unwrap().up,
            "peer down: no carrier"
        );
        assert!(!nl.interface("vb").await.unwrap().unwrap().up, "admin down");
    });
}

#[test]
fn lookups_from_many_tasks_at_once_share_one_connection() {
    if skip("lookups_from_many_tasks_at_once_share_one_connection") {
        return;
    }
    let a = NetNs::new("a");
    veth(&a, "va", &a, "vb");
    a.ip(&["address", "add", "192.0.2.1/24", "dev", "va"]);
    a.run(|| async {
        // The kernel runs one dump per netlink socket at a time and answers a second
        // one with EBUSY; the daemon's tasks share one connection, so their dumps must
        // take turns.
        let nl = Netlink::connect().await.unwrap();
        let lookups: Vec<_> = (0..32)
            .map(|i| {
                let nl = nl.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        nl.interfaces().await.map(|all| all.len())
                    } else {
                        nl.interface("va")
                            .await
                            .map(|va| va.map_or(0, |va| va.addresses.len()))
                    }
                })
            })
            .collect();
        for (i, lookup) in lookups.into_iter().enumerate() {
            let found = lookup.await.unwrap();
            match found {
                Ok(n) => assert!(n > 0, "lookup {i} found nothing"),
                Err(e) => panic!("lookup {i} failed: {e}"),
            }
        }
    });
}

#[test]
fn addresses_are_added_and_removed_idempotently() {
    if skip("addresses_are_added_and_removed_idempotently") {
        return;
    }
    let a = NetNs::new("a");
    veth(&a, "va", &a, "vb");
    a.run(|| async {
        let nl = Netlink::connect().await.unwrap();
        let index = ifindex("va");
        let addresses =
            |nl: Netlink| async move { nl.interface("va").await.unwrap().unwrap().addresses };

        nl.add_address(index, ip("192.0.2.1"), 24).await.unwrap();
        nl.add_address(index, ip("192.0.2.5"), 24).await.unwrap();
        nl.add_address(index, ip("192.0.2.5"), 24).await.unwrap(); // already there
        let info = nl.interface("va").await.unwrap().unwrap();
        assert_eq!(primary_address(&info, Family::Ipv4), Some(ip("192.0.2.1")));
        let vip = info
            .addresses
            .iter()
            .find(|a| a.addr == ip("192.0.2.5"))
            .unwrap();
        assert!(vip.secondary);
        assert_eq!(vip.prefix_len, 24);

        nl.remove_address(index, ip("192.0.2.5"), 24).await.unwrap();
        nl.remove_address(index, ip("192.0.2.5"), 24).await.unwrap(); // already gone
        assert!(
            !addresses(nl.clone())
                .await
                .iter()
                .any(|a| a.addr == ip("192.0.2.5"))
        );
        assert!(
            addresses(nl.clone())
                .await
                .iter()
                .any(|a| a.addr == ip("192.0.2.1"))
        );

        // The link-local address is the IPv6 primary.
        let ll = usable_link_local(&nl, "va").await;
        assert!(havip_vrrp::config::is_link_local(&ll));

        // With DAD on (and slow), an address added the usual way stays tentative, while a
        // VIP added here is usable at once.
        write_interface_sysctl(Family::Ipv6, "va", "accept_dad", "1").unwrap();
        write_interface_sysctl(Family::Ipv6, "va", "dad_transmits", "10").unwrap();
        // The write landed in this namespace, where va is (the file does not exist in the
        // machine's own).
        assert_eq!(
            a.exec(&["sysctl", "-n", "net.ipv6.conf.va.accept_dad"])
                .trim(),
            "1"
        );
        a.ip(&["addr", "add", "2001:db8::20/64", "dev", "va"]);
        nl.add_address(index, ip("2001:db8::10"), 64).await.unwrap();
        nl.add_address(index, ip("2001:db8::10"), 64).await.unwrap();
        let now = addresses(nl.clone()).await;
        let control = now.iter().find(|a| a.addr == ip("2001:db8::20")).unwrap();
        assert!(
            control.tentative,
            "DAD should be running on va for this test to mean anything"
        );
        let vip = now.iter().find(|a| a.addr == ip("2001:db8::10")).unwrap();
        assert!(!vip.tentative, "a VIP must not wait for DAD");
        std::net::UdpSocket::bind("[2001:db8::10]:0").expect("the VIP is usable as a source");

        nl.remove_address(index, ip("2001:db8::10"), 64)
            .await
            .unwrap();
        nl.remove_address(index, ip("2001:db8::10"), 64)
            .await
            .unwrap();
        assert!(
            !addresses(nl.clone())
                .await
                .iter()
                .any(|a| a.addr == ip("2001:db8::10"))
        );

        // An interface that does not exist: adding fails, saying so; removing is a no-op.
        let err = nl
            .add_address(999_999, ip("192.0.2.9"), 32)
            .await
            .unwrap_err();
        assert!(err.is_interface_gone(), "{err}");
        assert!(err.to_string().contains("192.0.2.9/32"), "{err}");
        nl.remove_address(999_999, ip("192.0.2.9"), 32)
            .await
            .unwrap();
    });
}

#[test]
fn vmac_interfaces_are_created_reused_and_deleted() {
    if skip("vmac_interfaces_are_created_reused_and_deleted") {
        return;
    }
    let a = NetNs::new("a");
    veth(&a, "va", &a, "vb");
    a.run(|| async {
        let nl = Netlink::connect().await.unwrap();
        let parent = ifindex("va");
        let vrid = Vrid::new(51).unwrap();
        let mac4 = virtual_mac(Family::Ipv4, vrid);

        let index = ensure_macvlan(&nl, parent, "vrrp4.51", mac4).await.unwrap();
        let info = nl.interface("vrrp4.51").await.unwrap().unwrap();
        assert_eq!(info.index, index);
        assert_eq!(info.kind.as_deref(), Some("macvlan"));
        assert_eq!(info.mac, Some(mac4));
        assert_eq!(info.parent, Some(parent));
        assert!(info.up);
        assert_eq!(
            read_interface_sysctl(Family::Ipv6, "vrrp4.51", "accept_dad").unwrap(),
            "0"
        );
        // No link-local address generated from the shared MAC (DAD is off in this
        // namespace, so one would have appeared at once).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let info = nl.interface("vrrp4.51").await.unwrap().unwrap();
        assert!(info.addresses.is_empty(), "{:?}", info.addresses);

        // Reused as is, even when down.
        a.ip(&["link", "set", "vrrp4.51", "down"]);
        assert_eq!(
            ensure_macvlan(&nl, parent, "vrrp4.51", mac4).await.unwrap(),
            index
        );
        assert!(nl.interface("vrrp4.51").await.unwrap().unwrap().up);

        // Anything else by that name is left alone.
        let other_mac = virtual_mac(Family::Ipv4, Vrid::new(52).unwrap());
        let conflict = |r: Result<u32, NetError>| match r {
            Err(NetError::LinkConflict { reason, .. }) => reason,
            other => panic!("expected a conflict, got {other:?}"),
        };
        assert!(conflict(ensure_macvlan(&nl, parent, "vrrp4.51", other_mac).await).contains("MAC"));
        let vb = ifindex("vb");
        assert!(conflict(ensure_macvlan(&nl, vb, "vrrp4.51", mac4).await).contains("interface"));
        assert!(conflict(ensure_macvlan(&nl, parent, "vb", mac4).await).contains("veth"));
        assert!(nl.interface("vrrp4.51").await.unwrap().is_some());
        assert!(matches!(
            ensure_macvlan(&nl, parent, "vrrp4.toolongname", mac4).await,
            Err(NetError::BadInterfaceName(_))
        ));
        let missing_parent = ensure_macvlan(&nl, 999_999, "vrrp4.52", other_mac)
            .await
            .unwrap_err();
        assert!(missing_parent.is_interface_gone(), "{missing_parent}");

        // An IPv6 VMAC takes the virtual link-local address, usable at once.
        let mac6 = virtual_mac(Family::Ipv6, vrid);
        let index6 = ensure_macvlan(&nl, parent, "vrrp6.51", mac6).await.unwrap();
        let vll = IpAddr::V6(virtual_link_local(vrid));
        nl.add_address(index6, vll, 64).await.unwrap();
        let info6 = nl.interface("vrrp6.51").await.unwrap().unwrap();
        assert_eq!(info6.mac, Some(mac6));
        assert_eq!(info6.addresses.len(), 1, "{:?}", info6.addresses);
        assert_eq!(info6.addresses[0].addr, vll);
        assert!(!info6.addresses[0].tentative);
        assert_eq!(primary_address(&info6, Family::Ipv6), Some(vll));

        delete_link(&nl, index).await.unwrap();
        delete_link(&nl, index).await.unwrap(); // already gone
        delete_link(&nl, index6).await.unwrap();
        assert_eq!(nl.interface("vrrp4.51").await.unwrap(), None);
        assert_eq!(nl.interface("vrrp6.51").await.unwrap(), None);
        assert!(
            nl.interface("va").await.unwrap().is_some(),
            "the parent stays"
        );
    });
}
