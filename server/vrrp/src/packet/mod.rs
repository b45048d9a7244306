//! VRRP advertisements on the wire: VRRPv2 (RFC 3768) over IPv4 and VRRPv3 (RFC 9568) over
//! IPv4 and IPv6. Decoding borrows from the received buffer and never allocates; encoding
//! writes into a buffer the caller reuses.
//!
//! The receive path, as the runtime drives it:
//! 1. IPv4: [`parse_ipv4`] on what the raw socket returns; IPv6 sockets hand over the
//!    payload alone, with the addresses and hop limit as ancillary data.
//! 2. [`check_ttl`] on the TTL or hop limit (RFC 9568 §7.1).
//! 3. [`peek_vrid`] to find the instance the message is for.
//! 4. [`decode`] with that instance's [`Auth`], giving an [`Advert`] or a [`DecodeError`]
//!    whose [`reason`](DecodeError::reason) labels the drop counter.

mod auth;
mod checksum;
mod decode;
mod encode;
mod error;
mod ip;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testutil;

pub use auth::{Auth, AuthError, PassKey};
pub use checksum::{ChecksumForm, internet_checksum};
pub use decode::{Addresses, Advert, DecodeContext, decode};
pub use encode::{AdvertFields, EncodeContext, encode, encoded_len};
pub use error::{
    AuthDifference, ComputedChecksum, DecodeError, EncodeError, FamilyProblem, Ipv4HeaderProblem,
};
pub use ip::{Ipv4Packet, check_ttl, parse_ipv4};

use crate::types::{Family, Version};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The IP protocol number of VRRP, in the IPv4 protocol and IPv6 next header fields.
pub const IPPROTO_VRRP: u8 = 112;
/// The group advertisements are sent to over IPv4 (RFC 9568 §5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The group advertisements are sent to over IPv6 (RFC 9568 §5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only TTL / hop limit an advertisement may be sent or received with (RFC 9568
/// §5.1.1.3, §5.1.2.3): 255 proves it was not routed.
pub const REQUIRED_TTL: u8 = 255;
/// Bytes of authentication data at the end of every VRRPv2 message (RFC 3768 §5.1).
pub const V2_AUTH_DATA_LEN: usize = 8;
/// Bytes of the fixed header before the addresses, in both versions.
pub const HEADER_LEN: usize = 8;
/// The most addresses one advertisement can carry: the count is one byte.
pub const MAX_ADDRESSES: usize = 255;

/// The VRRP packet type of an advertisement, the only type there is (RFC 9568 §5.2.2).
const ADVERTISEMENT: u8 = 1;

/// The bits of v3's interval field that carry the interval; the top 4 are reserved
/// (RFC 9568 §5.2.6, §5.2.7).
const V3_INTERVAL_MASK: u16 = 0x0fff;

/// The length of a message with `count` addresses of `family`, as the u16 the pseudo-headers
/// carry. At most 8 + 255 × 16 + 8 = 4096 bytes, so it cannot overflow.
fn message_len(version: Version, family: Family, count: u8) -> u16 {
    const HEADER: u16 = HEADER_LEN as u16;
    const AUTH_DATA: u16 = V2_AUTH_DATA_LEN as u16;
    let address_len: u16 = match family {
        Family::Ipv4 => 4,
        Family::Ipv6 => 16,
    };
    let auth_len = match version {
        Version::V2 => AUTH_DATA,
        Version::V3 => 0,
    };
    HEADER + u16::from(count) * address_len + auth_len
}

/// The VRID byte of a message, to find the instance it is for before decoding it with that
/// instance's settings.
///
/// `None` only for a message of fewer than 2 bytes; anything longer still has to pass
/// [`decode`], which rejects messages shorter than the header.
pub fn peek_vrid(msg: &[u8]) -> Option<u8> {
    msg.get(1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_vrid_reads_byte_1_without_validating() {
        assert_eq!(peek_vrid(&[]), None);
        assert_eq!(peek_vrid(&[0x31]), None);
        assert_eq!(peek_vrid(&[0x31, 51]), Some(51));
        assert_eq!(peek_vrid(&[0xff, 7, 0, 0]), Some(7));
    }

    #[test]
    fn message_len_agrees_with_the_layout() {
        assert_eq!(message_len(Version::V2, Family::Ipv4, 1), 20);
        assert_eq!(message_len(Version::V3, Family::Ipv4, 1), 12);
        assert_eq!(message_len(Version::V3, Family::Ipv6, 255), 4088);
        assert_eq!(message_len(Version::V2, Family::Ipv6, 255), 4096);
        for count in 0..=u8::MAX {
            let v6 = usize::from(message_len(Version::V3, Family::Ipv6, count));
            assert_eq!(
                v6,
                HEADER_LEN + usize::from(count) * Family::Ipv6.address_len()
            );
        }
    }

    /// RFC 9568 §5.1.1.2–§5.1.1.4 and §5.1.2.2–§5.1.2.4: destination, TTL and protocol.
    #[test]
    fn rfc9568_5_1_ip_field_constants() {
        assert_eq!(MULTICAST_V4.to_string(), "224.0.0.18");
        assert_eq!(MULTICAST_V6.to_string(), "ff02::12");
        assert_eq!(IPPROTO_VRRP, 112);
        assert_eq!(REQUIRED_TTL, 255);
    }
}
