//! The link watcher against the kernel: changes made with `ip` in a test namespace come out
//! as events, and the noise the kernel also sends does not.

use crate::net::link::{LinkEvent, LinkWatcher, watch_links};
use crate::net::testns::{NetNs, ifindex, skip, veth};
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::timeout;

/// Reads events until `expected` comes, and returns the ones before it.
async fn wait_for(watcher: &mut LinkWatcher, expected: &LinkEvent) -> Vec<LinkEvent> {
    let mut before = Vec::new();
    loop {
        let event = timeout(Duration::from_secs(15), watcher.next())
            .await
            .unwrap_or_else(|_| panic!("no {expected:?} within 15 s; saw {before:?}"))
            .expect("the watcher ended");
        if &event == expected {
            return before;
        }
        before.push(event);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn about(index: u32) -> impl Fn(&LinkEvent) -> bool {
    move |e| match e {
        LinkEvent::Link { index: i, .. }
        | LinkEvent::LinkRemoved { index: i, .. }
        | LinkEvent::AddressAdded { index: i, .. }
        | LinkEvent::AddressRemoved { index: i, .. } => *i == index,
    }
}

#[test]
fn link_and_address_changes_become_events() {
    if skip("link_and_address_changes_become_events") {
        return;
    }
    let a = NetNs::new("a");
    let b = NetNs::new("b");
    veth(&a, "va", &b, "vb");
    a.run(|| async {
        let mut w = watch_links().await.unwrap();
        let index = ifindex("va");
        let link = |up| LinkEvent::Link {
            index,
            name: "va".into(),
            up,
        };
        let address = |added: bool, addr: &str, prefix_len| {
            let addr = ip(addr);
            if added {
                LinkEvent::AddressAdded {
                    index,
                    addr,
                    prefix_len,
                }
            } else {
                LinkEvent::AddressRemoved {
                    index,
                    addr,
                    prefix_len,
                }
            }
        };

        a.ip(&["link", "set", "va", "down"]);
        wait_for(&mut w, &link(false)).await;
        a.ip(&["link", "set", "va", "up"]);
        wait_for(&mut w, &link(true)).await;

        // The peer going down takes the carrier away: not usable, though admin up.
        b.ip(&["link", "set", "vb", "down"]);
        wait_for(&mut w, &link(false)).await;
        b.ip(&["link", "set", "vb", "up"]);
        wait_for(&mut w, &link(true)).await;

        // Changes that leave the state alone produce RTM_NEWLINKs but no event; the
        // address added after them is the marker that they have all been seen.
        a.ip(&["link", "set", "va", "mtu", "1400"]);
        a.ip(&["link", "set", "va", "alias", "uplink"]);
        a.ip(&["link", "set", "va", "promisc", "on"]);
        a.ip(&["addr", "add", "192.0.2.1/24", "dev", "va"]);
        let noise = wait_for(&mut w, &address(true, "192.0.2.1", 24)).await;
        assert!(
            !noise.iter().any(about(index)),
            "nothing changed, yet: {noise:?}"
        );

        a.ip(&["addr", "del", "192.0.2.1/24", "dev", "va"]);
        wait_for(&mut w, &address(false, "192.0.2.1", 24)).await;

        // An IPv6 address is reported once it is usable, after DAD (which waits a
        // RetransTimer, 1 s, before declaring the address unique).
        a.exec(&["sysctl", "-qw", "net.ipv6.conf.va.accept_dad=1"]);
        let added_at = std::time::Instant::now();
        a.ip(&["addr", "add", "2001:db8::1/64", "dev", "va"]);
        wait_for(&mut w, &address(true, "2001:db8::1", 64)).await;
        assert!(
            added_at.elapsed() >= Duration::from_millis(500),
            "reported while still tentative"
        );

        // A bridge taking the port and letting it go sends AF_BRIDGE link messages,
        // including an RTM_DELLINK, for an interface that stays.
        a.ip(&["link", "add", "br0", "type", "bridge"]);
        a.ip(&["link", "set", "va", "master", "br0"]);
        a.ip(&["link", "set", "va", "nomaster"]);
        a.ip(&["addr", "add", "198.51.100.1/32", "dev", "lo"]);
        let lo = ifindex("lo");
        let marker = LinkEvent::AddressAdded {
            index: lo,
            addr: ip("198.51.100.1"),
            prefix_len: 32,
        };
        let bridge_noise = wait_for(&mut w, &marker).await;
        assert!(
            !bridge_noise
                .iter()
                .any(|e| matches!(e, LinkEvent::LinkRemoved { index: i, .. } if *i == index)),
            "va left a bridge, it was not removed: {bridge_noise:?}"
        );

        // Deleting the link: its address goes, then the link.
        a.ip(&["link", "del", "va"]);
        let before = wait_for(
            &mut w,
            &LinkEvent::LinkRemoved {
                index,
                name: "va".into(),
            },
        )
        .await;
        let removed = address(false, "2001:db8::1", 64);
        assert!(
            before.contains(&removed) || bridge_noise.contains(&removed),
            "{before:?}"
        );
    });
}

/// Events start from the state at the time of the call: links already down and staying
/// down are not reported, new links are.
#[test]
fn only_changes_after_the_start_are_reported() {
    if skip("only_changes_after_the_start_are_reported") {
        return;
    }
    let a = NetNs::new("a");
    veth(&a, "va", &a, "vb");
    a.ip(&["link", "set", "va", "down"]);
    a.run(|| async {
        let mut w = watch_links().await.unwrap();
        a.ip(&["link", "add", "vc", "type", "veth", "peer", "name", "vd"]);
        let new = [ifindex("vc"), ifindex("vd")];
        for _ in 0..2 {
            let event = timeout(Duration::from_secs(15), w.next())
                .await
                .unwrap()
                .unwrap();
            assert!(
                matches!(event, LinkEvent::Link { index, up: false, .. } if new.contains(&index)),
                "expected only the new links, got {event:?}"
            );
        }
    });
}
