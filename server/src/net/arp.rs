//! Gratuitous ARP (RFC 5227 §3 "ARP Announcement", RFC 9568 §6.4.2): the Ethernet frame a
//! new master broadcasts so that hosts and switches learn which MAC address now answers for
//! an IPv4 virtual address.

use std::net::Ipv4Addr;

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv4, the protocol type ARP resolves here.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// ARP hardware type of Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// ARP opcode of a request.
const OP_REQUEST: u16 = 1;
/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Bytes of a gratuitous ARP frame: 14 of Ethernet header and 28 of ARP. The frame is not
/// padded to Ethernet's 60-byte minimum; the driver does that where the medium needs it.
pub const GARP_FRAME_LEN: usize = 42;

/// The gratuitous ARP frame announcing that `ip` is at `src_mac`.
///
/// An ARP request (opcode 1), broadcast, whose sender and target protocol addresses are both
/// `ip` and whose sender hardware address is `src_mac`. The target hardware address is the
/// broadcast address, as keepalived 2.2.7 sends it (captured from it in a test namespace)
/// and as `arping -U` does; RFC 5227 §2.3 asks for zeros in its announcements, but
/// receivers ignore the field in a request, so keepalived's choice is followed for
/// byte-for-byte parity with the daemon havip replaces.
///
/// A request rather than a reply because every host processes a broadcast request and
/// updates a cache entry it already has for `ip` (RFC 826 "merge" step), while some stacks
/// ignore unsolicited replies.
pub fn gratuitous_arp(src_mac: [u8; 6], ip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut frame = [0u8; GARP_FRAME_LEN];
    let ip = ip.octets();
    // Ethernet header.
    frame[0..6].copy_from_slice(&BROADCAST_MAC);
    frame[6..12].copy_from_slice(&src_mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    // ARP.
    frame[14..16].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    frame[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame[18] = 6; // hardware address length
    frame[19] = 4; // protocol address length
    frame[20..22].copy_from_slice(&OP_REQUEST.to_be_bytes());
    frame[22..28].copy_from_slice(&src_mac);
    frame[28..32].copy_from_slice(&ip);
    frame[32..38].copy_from_slice(&BROADCAST_MAC);
    frame[38..42].copy_from_slice(&ip);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame keepalived 2.2.7 sent for VIP 10.99.0.100 from 2a:76:45:2f:61:ba, captured
    /// with tshark on the peer of its veth in a test namespace.
    const KEEPALIVED_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2a, 0x76, 0x45, 0x2f, 0x61, 0xba, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x2a, 0x76, 0x45, 0x2f, 0x61, 0xba, 0x0a, 0x63,
        0x00, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x63, 0x00, 0x64,
    ];

    #[test]
    fn gratuitous_arp_matches_keepalived_byte_for_byte() {
        let frame = gratuitous_arp(
            [0x2a, 0x76, 0x45, 0x2f, 0x61, 0xba],
            Ipv4Addr::new(10, 99, 0, 100),
        );
        assert_eq!(frame, KEEPALIVED_GARP);
    }

    /// RFC 826 layout and RFC 5227 §3: sender IP = target IP, request opcode, broadcast.
    #[test]
    fn gratuitous_arp_fields() {
        let mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];
        let f = gratuitous_arp(mac, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(&f[0..6], &BROADCAST_MAC, "Ethernet destination");
        assert_eq!(&f[6..12], &mac, "Ethernet source");
        assert_eq!(&f[12..14], &[0x08, 0x06], "EtherType ARP");
        assert_eq!(
            &f[14..20],
            &[0, 1, 8, 0, 6, 4],
            "Ethernet/IPv4, lengths 6 and 4"
        );
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[22..28], &mac, "sender hardware address");
        assert_eq!(&f[28..32], &[192, 0, 2, 1], "sender protocol address");
        assert_eq!(&f[32..38], &BROADCAST_MAC, "target hardware address");
        assert_eq!(&f[38..42], &[192, 0, 2, 1], "target protocol address");
    }
}
