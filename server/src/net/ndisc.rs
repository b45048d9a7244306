//! Unsolicited neighbour advertisements (RFC 4861 §7.2.6, RFC 9568 §6.4.2): the IPv6
//! counterpart of gratuitous ARP, telling every node on the link which MAC address now
//! answers for a virtual address.
//!
//! The message is built as a whole Ethernet frame, checksum included, and sent on the same
//! `AF_PACKET` socket as gratuitous ARP (as keepalived does). Going around the IPv6 stack
//! means the source address need not have finished DAD and the Ethernet source is exactly
//! the MAC being announced, whatever interface the frame leaves by.

use havip_vrrp::packet::internet_checksum;
use std::net::Ipv6Addr;

/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// The all-nodes multicast group, where unsolicited advertisements go (RFC 4861 §7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The Ethernet address of ff02::1 (RFC 2464 §7: 33:33 and the group's last 32 bits).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// Neighbour discovery is only accepted with hop limit 255 (RFC 4861 §7.1.2).
const HOP_LIMIT: u8 = 255;
/// The ICMPv6 next header value.
const IPPROTO_ICMPV6: u8 = 58;
/// ICMPv6 type of a neighbour advertisement.
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// The Target Link-Layer Address option (RFC 4861 §4.6.1).
const OPT_TARGET_LL_ADDR: u8 = 2;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_OVERRIDE: u8 = 0x20;

/// Bytes of the ICMPv6 message: 24 of advertisement and 8 of the link-layer address option.
pub const NA_LEN: usize = 32;
/// Bytes of the whole frame: Ethernet header, IPv6 header, advertisement.
pub const NA_FRAME_LEN: usize = 14 + 40 + NA_LEN;

/// The unsolicited neighbour advertisement for `target` at `mac`, as the ICMPv6 message
/// carried from `target` to ff02::1 (checksum computed for those addresses).
///
/// Override set (the cached MAC must be replaced), Solicited clear (nobody asked).
/// `router` is the R flag: RFC 9568 §6.4.2 sets it for a virtual router, and a node that
/// sees it cleared for an address it uses as default gateway drops that router
/// (RFC 4861 §7.2.5). keepalived sets it only when IPv6 forwarding is on for the
/// interface; the caller chooses (see [`super::host::ipv6_forwarding`]).
pub fn unsolicited_na(target: Ipv6Addr, mac: [u8; 6], router: bool) -> [u8; NA_LEN] {
    let mut msg = [0u8; NA_LEN];
    msg[0] = NEIGHBOR_ADVERTISEMENT;
    msg[1] = 0; // code
    // msg[2..4]: checksum, below.
    msg[4] = FLAG_OVERRIDE | if router { FLAG_ROUTER } else { 0 };
    msg[8..24].copy_from_slice(&target.octets());
    msg[24] = OPT_TARGET_LL_ADDR;
    msg[25] = 1; // option length in units of 8 bytes
    msg[26..32].copy_from_slice(&mac);
    let checksum = icmpv6_checksum(&target, &ALL_NODES, &msg);
    msg[2..4].copy_from_slice(&checksum.to_be_bytes());
    msg
}

/// The Ethernet frame carrying [`unsolicited_na`] from `target` to ff02::1 with hop limit
/// 255, Ethernet source `mac`.
///
/// The source address is the target itself, as Linux does for its own unsolicited
/// advertisements and as keepalived 2.2.7 sends them (captured in a test namespace).
pub fn unsolicited_na_frame(mac: [u8; 6], target: Ipv6Addr, router: bool) -> [u8; NA_FRAME_LEN] {
    let mut frame = [0u8; NA_FRAME_LEN];
    frame[0..6].copy_from_slice(&ALL_NODES_MAC);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let ip = &mut frame[14..54];
    ip[0] = 0x60; // version 6, traffic class 0, flow label 0
    ip[4..6].copy_from_slice(&(NA_LEN as u16).to_be_bytes());
    ip[6] = IPPROTO_ICMPV6;
    ip[7] = HOP_LIMIT;
    ip[8..24].copy_from_slice(&target.octets());
    ip[24..40].copy_from_slice(&ALL_NODES.octets());
    frame[54..].copy_from_slice(&unsolicited_na(target, mac, router));
    frame
}

/// The ICMPv6 checksum (RFC 4443 §2.3): over the IPv6 pseudo-header (RFC 8200 §8.1) and
/// the message, whose checksum field is zero.
fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8; NA_LEN]) -> u16 {
    let mut buf = [0u8; 40 + NA_LEN];
    buf[0..16].copy_from_slice(&src.octets());
    buf[16..32].copy_from_slice(&dst.octets());
    buf[32..36].copy_from_slice(&(NA_LEN as u32).to_be_bytes());
    buf[39] = IPPROTO_ICMPV6;
    buf[40..].copy_from_slice(msg);
    internet_checksum(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame keepalived 2.2.7 sent for VIP fd00:99::100 from 2a:76:45:2f:61:ba (IPv6
    /// forwarding off, so R clear), captured with tshark on the peer of its veth.
    const KEEPALIVED_NA: [u8; 86] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x2a, 0x76, 0x45, 0x2f, 0x61, 0xba, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x88, 0x0c, 0x20, 0x00,
        0x00, 0x00, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x02, 0x01, 0x2a, 0x76, 0x45, 0x2f, 0x61, 0xba,
    ];

    fn vip() -> Ipv6Addr {
        "fd00:99::100".parse().unwrap()
    }

    const MAC: [u8; 6] = [0x2a, 0x76, 0x45, 0x2f, 0x61, 0xba];

    #[test]
    fn unsolicited_na_frame_matches_keepalived_byte_for_byte() {
        assert_eq!(unsolicited_na_frame(MAC, vip(), false), KEEPALIVED_NA);
    }

    /// RFC 4861 §4.4 and §7.2.6: type 136, code 0, O set, S clear, R as asked, target, and
    /// a Target Link-Layer Address option of one 8-byte unit.
    #[test]
    fn rfc4861_7_2_6_unsolicited_na_layout() {
        let msg = unsolicited_na(vip(), MAC, true);
        assert_eq!(msg[0], 136);
        assert_eq!(msg[1], 0);
        assert_eq!(msg[4], 0x80 | 0x20, "R and O set, S clear");
        assert_eq!(&msg[5..8], &[0, 0, 0], "reserved");
        assert_eq!(&msg[8..24], &vip().octets());
        assert_eq!(&msg[24..26], &[2, 1]);
        assert_eq!(&msg[26..32], &MAC);

        let without_router = unsolicited_na(vip(), MAC, false);
        assert_eq!(without_router[4], 0x20);
        // Only the flag byte and the checksum differ.
        assert_eq!(msg[8..], without_router[8..]);
    }

    /// RFC 4443 §2.3: summing the pseudo-header and the message, checksum included, gives
    /// 0xffff, i.e. a checksum over it all of 0.
    #[test]
    fn rfc4443_2_3_checksum_verifies() {
        let target: Ipv6Addr = "2001:db8::42".parse().unwrap();
        let msg = unsolicited_na(target, MAC, true);
        let mut buf = Vec::new();
        buf.extend_from_slice(&target.octets());
        buf.extend_from_slice(&ALL_NODES.octets());
        buf.extend_from_slice(&(NA_LEN as u32).to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 58]);
        buf.extend_from_slice(&msg);
        assert_eq!(internet_checksum(&buf), 0);
    }

    /// RFC 4861 §7.1.2 / RFC 8200: hop limit 255, next header 58, to ff02::1 from the
    /// target, to 33:33:00:00:00:01 (RFC 2464 §7).
    #[test]
    fn frame_headers() {
        let target: Ipv6Addr = "2001:db8::42".parse().unwrap();
        let f = unsolicited_na_frame(MAC, target, true);
        assert_eq!(&f[0..6], &ALL_NODES_MAC);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[14] >> 4, 6);
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 32);
        assert_eq!(f[20], 58);
        assert_eq!(f[21], 255);
        assert_eq!(&f[22..38], &target.octets());
        assert_eq!(&f[38..54], &ALL_NODES.octets());
        assert_eq!(&f[54..], &unsolicited_na(target, MAC, true));
    }
}
