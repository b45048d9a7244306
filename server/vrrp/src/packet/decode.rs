//! Decoding a received VRRP message into an [`Advert`] that borrows from it, applying the
//! checks RFC 9568 §7.1 and RFC 3768 §7.1 make on the message itself. Checks that need an
//! instance's state (VRID known, interval and address list as configured) are the
//! machine's.

use super::checksum::{ChecksumForm, Endpoints, Sum};
use super::error::{AuthDifference, ComputedChecksum, DecodeError, FamilyProblem};
use super::{ADVERTISEMENT, Auth, HEADER_LEN, V2_AUTH_DATA_LEN, V3_INTERVAL_MASK, message_len};
use crate::types::{AdvertInterval, Family, Version};
use core::fmt;
use core::iter::FusedIterator;
use std::net::IpAddr;

/// What the receive path knows about a message besides its bytes.
#[derive(Clone, Copy, Debug)]
pub struct DecodeContext<'a> {
    /// The family of the socket the packet came in on.
    pub family: Family,
    /// The IP source, for the pseudo-header and the family check.
    pub src: IpAddr,
    /// The IP destination, for the pseudo-header and the family check.
    pub dst: IpAddr,
    /// The authentication the receiving VRRPv2 instance is configured with; ignored for v3.
    pub auth: &'a Auth,
}

/// A decoded advertisement: a view of the message, borrowing its address bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Advert<'a> {
    pub version: Version,
    /// 0 is not a valid VRID, but it is not a decode error either: no instance has VRID 0,
    /// so such a packet finds no one to dispatch to.
    pub vrid: u8,
    pub priority: u8,
    /// The sender's advertisement interval; v2's whole seconds are converted.
    pub interval: AdvertInterval,
    /// The checksum form that matched (see [`ChecksumForm`]).
    pub checksum_form: ChecksumForm,
    family: Family,
    /// `count` addresses of `family`, exactly.
    address_bytes: &'a [u8],
}

impl<'a> Advert<'a> {
    /// The family of the addresses, which is the family of the packet.
    pub fn family(&self) -> Family {
        self.family
    }

    /// How many addresses the advertisement carries, 1 to 255.
    pub fn address_count(&self) -> usize {
        self.address_bytes.len() / self.family.address_len()
    }

    /// The addresses, in the order the sender listed them.
    pub fn addresses(&self) -> Addresses<'a> {
        Addresses {
            family: self.family,
            bytes: self.address_bytes,
        }
    }
}

impl fmt::Debug for Advert<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advert")
            .field("version", &self.version)
            .field("vrid", &self.vrid)
            .field("priority", &self.priority)
            .field("interval", &self.interval)
            .field("checksum_form", &self.checksum_form)
            .field("family", &self.family)
            .field("addresses", &self.addresses())
            .finish()
    }
}

/// The addresses of an [`Advert`], read from the message as they are iterated.
#[derive(Clone)]
pub struct Addresses<'a> {
    family: Family,
    /// A whole number of addresses of `family`.
    bytes: &'a [u8],
}

impl Iterator for Addresses<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        match self.family {
            Family::Ipv4 => {
                let (first, rest) = self.bytes.split_first_chunk::<4>()?;
                self.bytes = rest;
                Some(IpAddr::from(*first))
            }
            Family::Ipv6 => {
                let (first, rest) = self.bytes.split_first_chunk::<16>()?;
                self.bytes = rest;
                Some(IpAddr::from(*first))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / self.family.address_len();
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Addresses<'_> {
    fn next_back(&mut self) -> Option<IpAddr> {
        match self.family {
            Family::Ipv4 => {
                let (rest, last) = self.bytes.split_last_chunk::<4>()?;
                self.bytes = rest;
                Some(IpAddr::from(*last))
            }
            Family::Ipv6 => {
                let (rest, last) = self.bytes.split_last_chunk::<16>()?;
                self.bytes = rest;
                Some(IpAddr::from(*last))
            }
        }
    }
}

impl ExactSizeIterator for Addresses<'_> {}

impl FusedIterator for Addresses<'_> {}

impl fmt::Debug for Addresses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// Decode the VRRP message `msg` (the IP payload) that arrived as `ctx` describes.
///
/// Checks, in this order, so that one packet always gets the same reason: length of the
/// fixed header, version, type, address family, address count against the length,
/// interval, checksum, the IPv6 link-local first address, and v2 authentication. Never
/// allocates and never panics.
pub fn decode<'a>(msg: &'a [u8], ctx: &DecodeContext<'_>) -> Result<Advert<'a>, DecodeError> {
    let Some((header, body)) = msg.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated { len: msg.len() });
    };
    let [version_type, vrid, priority, count, byte4, byte5, _, _] = *header;

    let version_number = version_type >> 4;
    let version = Version::from_number(version_number).ok_or(DecodeError::UnsupportedVersion {
        version: version_number,
    })?;
    let packet_type = version_type & 0x0f;
    if packet_type != ADVERTISEMENT {
        return Err(DecodeError::NotAdvertisement { packet_type });
    }

    let endpoints = endpoints(version, ctx)?;
    let family = ctx.family;
    if count == 0 {
        return Err(DecodeError::NoAddresses { vrid });
    }
    let (address_bytes, auth_data) = split_body(version, family, vrid, count, body)?;

    let interval = match version {
        Version::V2 => AdvertInterval::from_secs(byte5),
        // RFC 9568 §5.2.6: the reserved bits are ignored on receive.
        Version::V3 => {
            AdvertInterval::from_centis(u16::from_be_bytes([byte4, byte5]) & V3_INTERVAL_MASK)
        }
    }
    .ok_or(DecodeError::ZeroInterval { vrid, version })?;

    let len = message_len(version, family, count);
    let checksum_form = check_checksum(version, endpoints, len, header, body, vrid)?;

    let advert = Advert {
        version,
        vrid,
        priority,
        interval,
        checksum_form,
        family,
        address_bytes,
    };

    if let Some(IpAddr::V6(first)) = advert.addresses().next()
        && !first.is_unicast_link_local()
    {
        return Err(DecodeError::FirstAddressNotLinkLocal {
            vrid,
            address: first,
        });
    }

    // Only v2 has authentication data, and so only v2 is authenticated.
    if let Some(auth_data) = auth_data {
        check_auth(ctx.auth, byte4, auth_data, vrid)?;
    }

    Ok(advert)
}

/// The packet's IP addresses, once it is known they fit the version and the socket.
fn endpoints(version: Version, ctx: &DecodeContext<'_>) -> Result<Endpoints, DecodeError> {
    if version == Version::V2 && ctx.family == Family::Ipv6 {
        return Err(DecodeError::FamilyMismatch(FamilyProblem::V2OverIpv6));
    }
    Endpoints::new(ctx.src, ctx.dst)
        .filter(|e| e.family() == ctx.family)
        .ok_or(DecodeError::FamilyMismatch(FamilyProblem::Addresses {
            socket: ctx.family,
            src: ctx.src,
            dst: ctx.dst,
        }))
}

/// Split what follows the header into the addresses and, for v2, the authentication data,
/// checking that the count accounts for every byte.
fn split_body(
    version: Version,
    family: Family,
    vrid: u8,
    count: u8,
    body: &[u8],
) -> Result<(&[u8], Option<&[u8; V2_AUTH_DATA_LEN]>), DecodeError> {
    let auth_len = match version {
        Version::V2 => V2_AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    let too_short = DecodeError::AddressCountMismatch {
        vrid,
        count,
        fits: body.len().saturating_sub(auth_len) / family.address_len(),
        len: HEADER_LEN + body.len(),
    };
    let (addresses, rest) = body
        .split_at_checked(usize::from(count) * family.address_len())
        .ok_or(too_short)?;
    let (auth_data, trailing) = match version {
        Version::V2 => {
            let (auth_data, trailing) = rest
                .split_first_chunk::<V2_AUTH_DATA_LEN>()
                .ok_or(too_short)?;
            (Some(auth_data), trailing)
        }
        Version::V3 => (None, rest),
    };
    if !trailing.is_empty() {
        return Err(DecodeError::TrailingBytes {
            vrid,
            count,
            extra: trailing.len(),
        });
    }
    Ok((addresses, auth_data))
}

/// Which checksum form the message carries, or why neither fits.
fn check_checksum(
    version: Version,
    endpoints: Endpoints,
    len: u16,
    header: &[u8; HEADER_LEN],
    body: &[u8],
    vrid: u8,
) -> Result<ChecksumForm, DecodeError> {
    let [b0, b1, b2, b3, b4, b5, checksum_hi, checksum_lo] = *header;
    let received = u16::from_be_bytes([checksum_hi, checksum_lo]);
    // The checksum field itself is left out of the sum, which is the same as summing it as
    // zero; `verifies` then adds the received value back.
    let message = Sum::default().add(&[b0, b1, b2, b3, b4, b5]).add(body);
    let with_pseudo_header = || endpoints.pseudo_header(len).then(message);

    let (form, sum) = match (version, endpoints) {
        (Version::V2, _) => (ChecksumForm::MessageOnly, message),
        (Version::V3, Endpoints::V6 { .. }) => (ChecksumForm::PseudoHeader, with_pseudo_header()),
        (Version::V3, Endpoints::V4 { .. }) => {
            let pseudo = with_pseudo_header();
            return if pseudo.verifies(received) {
                Ok(ChecksumForm::PseudoHeader)
            } else if message.verifies(received) {
                Ok(ChecksumForm::MessageOnly)
            } else {
                Err(DecodeError::BadChecksum {
                    vrid,
                    received,
                    computed: ComputedChecksum::Either {
                        pseudo_header: pseudo.checksum(),
                        message_only: message.checksum(),
                    },
                })
            };
        }
    };
    if sum.verifies(received) {
        Ok(form)
    } else {
        Err(DecodeError::BadChecksum {
            vrid,
            received,
            computed: ComputedChecksum::One {
                form,
                value: sum.checksum(),
            },
        })
    }
}

/// RFC 3768 §7.1: the auth type must be the configured one, and for PASS (RFC 2338
/// §5.3.6.2) the password must match exactly.
fn check_auth(
    expected: &Auth,
    received_type: u8,
    auth_data: &[u8; V2_AUTH_DATA_LEN],
    vrid: u8,
) -> Result<(), DecodeError> {
    let expected_type = expected.type_number();
    let difference = if received_type != expected_type {
        AuthDifference::Type {
            expected: expected_type,
            received: received_type,
        }
    } else {
        match expected {
            // RFC 3768 §5.3.10: without authentication the data is ignored on receive.
            Auth::None => return Ok(()),
            Auth::Pass(key) if key.as_bytes() == auth_data => return Ok(()),
            Auth::Pass(_) => AuthDifference::Password,
        }
    };
    Err(DecodeError::AuthMismatch { vrid, difference })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{HOLO_V2, KEEPALIVED_V3, ctx, hex, seal, v2_message};
    use super::super::testutil::{v3_message, v4, v6};
    use super::super::{ComputedChecksum, MULTICAST_V4, MULTICAST_V6};
    use super::*;

    fn group_v4() -> IpAddr {
        IpAddr::V4(MULTICAST_V4)
    }

    fn group_v6() -> IpAddr {
        IpAddr::V6(MULTICAST_V6)
    }

    fn cs(n: u16) -> AdvertInterval {
        AdvertInterval::from_centis(n).unwrap()
    }

    fn checksum_of(msg: &[u8]) -> u16 {
        u16::from_be_bytes([msg[6], msg[7]])
    }

    /// A valid v2 packet from 192.0.2.1 with the given auth type and data.
    fn v2_with_auth(auth_type: u8, auth_data: [u8; 8]) -> Vec<u8> {
        v2_message(51, 100, 1, &[[192, 0, 2, 100]], auth_type, auth_data)
    }

    fn v2_ctx(auth: &Auth) -> DecodeContext<'_> {
        ctx(v4(192, 0, 2, 1), group_v4(), auth)
    }

    // ---- public vectors -------------------------------------------------------------

    #[test]
    fn rfc3768_5_1_holo_vrrp_v2_vector_decodes() {
        let msg = hex(HOLO_V2);
        let advert = decode(&msg, &ctx(v4(10, 0, 1, 1), group_v4(), &Auth::None)).unwrap();
        assert_eq!(advert.version, Version::V2);
        assert_eq!(advert.vrid, 51);
        assert_eq!(advert.priority, 30);
        assert_eq!(advert.interval, cs(100));
        assert_eq!(advert.checksum_form, ChecksumForm::MessageOnly);
        assert_eq!(advert.family(), Family::Ipv4);
        assert_eq!(advert.address_count(), 1);
        assert_eq!(advert.addresses().collect::<Vec<_>>(), [v4(10, 0, 1, 5)]);
    }

    /// The v2 checksum has no pseudo-header, so the IP addresses do not matter.
    #[test]
    fn rfc3768_5_3_8_v2_checksum_ignores_ip_addresses() {
        let msg = hex(HOLO_V2);
        for (src, dst) in [
            (v4(10, 0, 1, 1), group_v4()),
            (v4(1, 2, 3, 4), v4(5, 6, 7, 8)),
        ] {
            assert!(decode(&msg, &ctx(src, dst, &Auth::None)).is_ok());
        }
    }

    #[test]
    fn rfc9568_5_2_8_keepalived_v3_message_only_vector_decodes_with_any_addresses() {
        let msg = hex(KEEPALIVED_V3);
        let pairs = [
            (v4(192, 0, 2, 1), group_v4()),
            (v4(10, 0, 0, 1), group_v4()),
            (v4(203, 0, 113, 9), v4(192, 0, 2, 2)),
        ];
        for (src, dst) in pairs {
            let advert = decode(&msg, &ctx(src, dst, &Auth::None)).unwrap();
            assert_eq!(advert.version, Version::V3);
            assert_eq!(advert.vrid, 51);
            assert_eq!(advert.priority, 200);
            assert_eq!(advert.interval, cs(100));
            assert_eq!(advert.checksum_form, ChecksumForm::MessageOnly);
            assert_eq!(advert.addresses().collect::<Vec<_>>(), [v4(192, 0, 2, 100)]);
        }
    }

    // ---- checksum forms -------------------------------------------------------------

    /// RFC 9568 §5.2.8: v3 over IPv4 is received in either checksum form, and the form
    /// that matched is reported.
    #[test]
    fn rfc9568_5_2_8_v3_ipv4_accepts_both_checksum_forms_and_reports_which() {
        let (src, dst) = (v4(192, 0, 2, 1), group_v4());
        let vips = [v4(192, 0, 2, 100), v4(192, 0, 2, 101)];
        let with_pseudo = v3_message(9, 100, 100, &vips, Some((src, dst)));
        let message_only = v3_message(9, 100, 100, &vips, None);
        assert_ne!(with_pseudo, message_only);
        let c = ctx(src, dst, &Auth::None);
        assert_eq!(
            decode(&with_pseudo, &c).unwrap().checksum_form,
            ChecksumForm::PseudoHeader
        );
        assert_eq!(
            decode(&message_only, &c).unwrap().checksum_form,
            ChecksumForm::MessageOnly
        );
    }

    /// RFC 9568 §5.2.8: over IPv6 the pseudo-header is required; the message-only form is
    /// a bad checksum.
    #[test]
    fn rfc9568_5_2_8_v3_ipv6_requires_the_pseudo_header() {
        let (src, dst) = (v6("fe80::1"), group_v6());
        let vips = [v6("fe80::200:5eff:fe00:201"), v6("2001:db8::1")];
        let c = ctx(src, dst, &Auth::None);
        let good = v3_message(1, 100, 100, &vips, Some((src, dst)));
        let advert = decode(&good, &c).unwrap();
        assert_eq!(advert.checksum_form, ChecksumForm::PseudoHeader);
        assert_eq!(advert.family(), Family::Ipv6);
        assert_eq!(advert.addresses().collect::<Vec<_>>(), vips);

        let message_only = v3_message(1, 100, 100, &vips, None);
        assert_eq!(
            decode(&message_only, &c),
            Err(DecodeError::BadChecksum {
                vrid: 1,
                received: checksum_of(&message_only),
                computed: ComputedChecksum::One {
                    form: ChecksumForm::PseudoHeader,
                    value: checksum_of(&good),
                },
            })
        );
        // The pseudo-header covers the IP addresses: another source, another checksum.
        let elsewhere = ctx(v6("fe80::2"), dst, &Auth::None);
        assert!(matches!(
            decode(&good, &elsewhere),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    /// RFC 1071: 0xffff stands for a computed 0x0000 as well.
    #[test]
    fn rfc1071_negative_zero_checksum_is_accepted() {
        // Find an address whose v2 message checksums to 0x0000, then send 0xffff instead.
        // The last 16 bits of the address sweep every value of the sum.
        let msg = (0..=u16::MAX)
            .map(|n| {
                let [c, d] = n.to_be_bytes();
                v2_message(1, 100, 1, &[[192, 0, c, d]], 0, [0; 8])
            })
            .find(|m| checksum_of(m) == 0)
            .unwrap();
        let mut negative_zero = msg.clone();
        negative_zero[6] = 0xff;
        negative_zero[7] = 0xff;
        let c = v2_ctx(&Auth::None);
        assert_eq!(decode(&msg, &c), decode(&negative_zero, &c));
        assert!(decode(&msg, &c).is_ok());
    }

    // ---- one test per DecodeError variant, in check order ---------------------------

    #[test]
    fn rfc9568_5_1_shorter_than_the_header_is_truncated() {
        let msg = hex(HOLO_V2);
        for len in 0..HEADER_LEN {
            assert_eq!(
                decode(&msg[..len], &v2_ctx(&Auth::None)),
                Err(DecodeError::Truncated { len })
            );
        }
    }

    /// RFC 9568 §5.2.1, RFC 3768 §5.3.1: versions other than 2 and 3 are not VRRP we speak.
    #[test]
    fn rfc9568_5_2_1_unknown_version_is_refused() {
        for version in [0u8, 1, 4, 15] {
            let mut msg = hex(KEEPALIVED_V3);
            msg[0] = version << 4 | 1;
            assert_eq!(
                decode(&msg, &v2_ctx(&Auth::None)),
                Err(DecodeError::UnsupportedVersion { version })
            );
        }
    }

    /// RFC 9568 §5.2.2: type 1 (ADVERTISEMENT) is the only type.
    #[test]
    fn rfc9568_5_2_2_types_other_than_advertisement_are_refused() {
        for packet_type in [0u8, 2, 15] {
            let mut msg = hex(KEEPALIVED_V3);
            msg[0] = 0x30 | packet_type;
            assert_eq!(
                decode(&msg, &v2_ctx(&Auth::None)),
                Err(DecodeError::NotAdvertisement { packet_type })
            );
        }
    }

    /// RFC 3768 §1: VRRPv2 is IPv4 only.
    #[test]
    fn rfc3768_1_v2_over_ipv6_is_refused() {
        let msg = hex(HOLO_V2);
        let c = ctx(v6("fe80::1"), group_v6(), &Auth::None);
        assert_eq!(
            decode(&msg, &c),
            Err(DecodeError::FamilyMismatch(FamilyProblem::V2OverIpv6))
        );
    }

    /// RFC 9568 §5.2.9: the addresses are of the packet's family, so the IP addresses the
    /// runtime passes must be of the socket's family.
    #[test]
    fn rfc9568_5_2_9_ip_addresses_of_another_family_are_refused() {
        let msg = hex(KEEPALIVED_V3);
        let cases = [
            (Family::Ipv4, v6("fe80::1"), group_v4()),
            (Family::Ipv4, v4(192, 0, 2, 1), group_v6()),
            (Family::Ipv6, v4(192, 0, 2, 1), group_v4()),
        ];
        for (family, src, dst) in cases {
            let c = DecodeContext {
                family,
                src,
                dst,
                auth: &Auth::None,
            };
            assert_eq!(
                decode(&msg, &c),
                Err(DecodeError::FamilyMismatch(FamilyProblem::Addresses {
                    socket: family,
                    src,
                    dst
                }))
            );
        }
    }

    /// RFC 9568 §5.2.5: at least one address.
    #[test]
    fn rfc9568_5_2_5_count_zero_is_refused() {
        let msg = seal(vec![0x31, 7, 100, 0, 0, 100, 0, 0], None);
        assert_eq!(
            decode(&msg, &v2_ctx(&Auth::None)),
            Err(DecodeError::NoAddresses { vrid: 7 })
        );
    }

    /// RFC 9568 §5.2.5: the count must match the addresses present; fewer bytes than it
    /// needs is a count mismatch.
    #[test]
    fn rfc9568_5_2_5_count_larger_than_the_packet_is_refused() {
        let mut msg = hex(KEEPALIVED_V3);
        msg[3] = 3;
        assert_eq!(
            decode(&msg, &v2_ctx(&Auth::None)),
            Err(DecodeError::AddressCountMismatch {
                vrid: 51,
                count: 3,
                fits: 1,
                len: 12
            })
        );
        // v2 without its authentication data does not hold its one address.
        let v2 = hex(HOLO_V2);
        assert_eq!(
            decode(&v2[..12], &v2_ctx(&Auth::None)),
            Err(DecodeError::AddressCountMismatch {
                vrid: 51,
                count: 1,
                fits: 0,
                len: 12
            })
        );
        // An IPv6 address cut in half.
        let (src, dst) = (v6("fe80::1"), group_v6());
        let v6msg = v3_message(2, 100, 100, &[v6("fe80::2")], Some((src, dst)));
        assert_eq!(
            decode(&v6msg[..20], &ctx(src, dst, &Auth::None)),
            Err(DecodeError::AddressCountMismatch {
                vrid: 2,
                count: 1,
                fits: 0,
                len: 20
            })
        );
    }

    /// RFC 9568 §5.2.5: bytes the count does not account for are refused.
    #[test]
    fn rfc9568_5_2_5_bytes_beyond_the_count_are_refused() {
        let mut msg = hex(KEEPALIVED_V3);
        msg.extend_from_slice(&[192, 0, 2, 101]);
        assert_eq!(
            decode(&msg, &v2_ctx(&Auth::None)),
            Err(DecodeError::TrailingBytes {
                vrid: 51,
                count: 1,
                extra: 4
            })
        );
        let mut v2 = hex(HOLO_V2);
        v2.push(0);
        assert_eq!(
            decode(&v2, &v2_ctx(&Auth::None)),
            Err(DecodeError::TrailingBytes {
                vrid: 51,
                count: 1,
                extra: 1
            })
        );
    }

    /// RFC 3768 §5.3.7, RFC 9568 §5.2.7: an interval of 0 is not an interval.
    #[test]
    fn rfc9568_5_2_7_interval_zero_is_refused() {
        let v2 = v2_message(4, 100, 0, &[[192, 0, 2, 100]], 0, [0; 8]);
        assert_eq!(
            decode(&v2, &v2_ctx(&Auth::None)),
            Err(DecodeError::ZeroInterval {
                vrid: 4,
                version: Version::V2
            })
        );
        // Reserved bits set do not make the interval nonzero.
        let v3 = seal(vec![0x31, 5, 100, 1, 0xf0, 0, 0, 0, 192, 0, 2, 100], None);
        assert_eq!(
            decode(&v3, &v2_ctx(&Auth::None)),
            Err(DecodeError::ZeroInterval {
                vrid: 5,
                version: Version::V3
            })
        );
    }

    /// RFC 3768 §5.3.8: the v2 checksum covers the whole message, auth data included.
    #[test]
    fn rfc3768_5_3_8_v2_bad_checksum_is_refused() {
        let good = hex(HOLO_V2);
        let mut bad = good.clone();
        bad[19] = 1; // last byte of the authentication data
        assert_eq!(
            decode(&bad, &v2_ctx(&Auth::None)),
            Err(DecodeError::BadChecksum {
                vrid: 51,
                received: 0xb5c5,
                computed: ComputedChecksum::One {
                    form: ChecksumForm::MessageOnly,
                    value: 0xb5c4,
                },
            })
        );
    }

    /// RFC 9568 §5.2.8: over IPv4 neither form matching is a bad checksum that shows both.
    #[test]
    fn rfc9568_5_2_8_v3_ipv4_bad_checksum_reports_both_forms() {
        let (src, dst) = (v4(192, 0, 2, 1), group_v4());
        let vips = [v4(192, 0, 2, 100)];
        let pseudo = v3_message(51, 200, 100, &vips, Some((src, dst)));
        let message_only = v3_message(51, 200, 100, &vips, None);
        let mut bad = pseudo.clone();
        bad[6] ^= 0x80;
        assert_eq!(
            decode(&bad, &ctx(src, dst, &Auth::None)),
            Err(DecodeError::BadChecksum {
                vrid: 51,
                received: checksum_of(&bad),
                computed: ComputedChecksum::Either {
                    pseudo_header: checksum_of(&pseudo),
                    message_only: checksum_of(&message_only),
                },
            })
        );
    }

    /// RFC 9568 §5.2.9: the first IPv6 address is the link-local one.
    #[test]
    fn rfc9568_5_2_9_first_ipv6_address_must_be_link_local() {
        let (src, dst) = (v6("fe80::1"), group_v6());
        let c = ctx(src, dst, &Auth::None);
        let global_first = [v6("2001:db8::1"), v6("fe80::5")];
        let msg = v3_message(8, 100, 100, &global_first, Some((src, dst)));
        assert_eq!(
            decode(&msg, &c),
            Err(DecodeError::FirstAddressNotLinkLocal {
                vrid: 8,
                address: "2001:db8::1".parse().unwrap()
            })
        );
        // Link-local first, anything after.
        let ok = v3_message(
            8,
            100,
            100,
            &[v6("fe80::5"), v6("2001:db8::1")],
            Some((src, dst)),
        );
        assert!(decode(&ok, &c).is_ok());
        // fe80::/10 is the whole link-local prefix, not just fe80::/16.
        let wide = v3_message(8, 100, 100, &[v6("febf::1")], Some((src, dst)));
        assert!(decode(&wide, &c).is_ok());
        let outside = v3_message(8, 100, 100, &[v6("fec0::1")], Some((src, dst)));
        assert!(decode(&outside, &c).is_err());
    }

    /// RFC 3768 §7.1: the auth type must be the configured one; PASS (RFC 2338 §5.3.6.2)
    /// must carry the configured password.
    #[test]
    fn rfc3768_7_1_v2_pass_auth_is_checked() {
        let pass = Auth::pass("secret").unwrap();
        let right = v2_with_auth(1, *b"secret\0\0");
        assert!(decode(&right, &v2_ctx(&pass)).is_ok());

        let wrong = v2_with_auth(1, *b"Secret\0\0");
        let err = decode(&wrong, &v2_ctx(&pass)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::AuthMismatch {
                vrid: 51,
                difference: AuthDifference::Password
            }
        );
        let msg = err.to_string();
        assert!(!msg.contains("ecret"), "the password leaked: {msg}");

        // A longer password sharing the first 6 bytes is still another password.
        let longer = v2_with_auth(1, *b"secret12");
        assert!(decode(&longer, &v2_ctx(&pass)).is_err());
    }

    #[test]
    fn rfc3768_7_1_v2_auth_type_must_match_the_configuration() {
        let pass = Auth::pass("secret").unwrap();
        let none = v2_with_auth(0, [0; 8]);
        assert_eq!(
            decode(&none, &v2_ctx(&pass)),
            Err(DecodeError::AuthMismatch {
                vrid: 51,
                difference: AuthDifference::Type {
                    expected: 1,
                    received: 0
                }
            })
        );
        let with_pass = v2_with_auth(1, *b"secret\0\0");
        assert_eq!(
            decode(&with_pass, &v2_ctx(&Auth::None)),
            Err(DecodeError::AuthMismatch {
                vrid: 51,
                difference: AuthDifference::Type {
                    expected: 0,
                    received: 1
                }
            })
        );
        let ah = v2_with_auth(2, [0; 8]);
        assert!(matches!(
            decode(&ah, &v2_ctx(&Auth::None)),
            Err(DecodeError::AuthMismatch { .. })
        ));
    }

    /// RFC 3768 §5.3.10: without authentication the data is ignored on receive.
    #[test]
    fn rfc3768_5_3_10_auth_data_is_ignored_without_authentication() {
        let junk = v2_with_auth(0, *b"whatever");
        assert!(decode(&junk, &v2_ctx(&Auth::None)).is_ok());
    }

    /// v3 has no authentication: the receiving instance's auth setting does not apply.
    #[test]
    fn rfc9568_9_v3_is_not_authenticated() {
        let msg = hex(KEEPALIVED_V3);
        let pass = Auth::pass("secret").unwrap();
        assert!(decode(&msg, &v2_ctx(&pass)).is_ok());
    }

    /// One packet, several faults: the first check in the documented order decides.
    #[test]
    fn checks_run_in_the_documented_order() {
        let c = v2_ctx(&Auth::None);
        // Bad version and count 0: version.
        let msg = [0x41, 1, 1, 0, 0, 0, 0, 0];
        assert!(matches!(
            decode(&msg, &c),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        // v2 over IPv6 with count 0: family.
        let msg = [0x21, 1, 1, 0, 0, 0, 0, 0];
        let c6 = ctx(v6("fe80::1"), group_v6(), &Auth::None);
        assert!(matches!(
            decode(&msg, &c6),
            Err(DecodeError::FamilyMismatch(_))
        ));
        // Count too large and interval 0 and bad checksum: count.
        let msg = [0x31, 1, 1, 2, 0, 0, 0, 0, 192, 0, 2, 1];
        assert!(matches!(
            decode(&msg, &c),
            Err(DecodeError::AddressCountMismatch { .. })
        ));
        // Interval 0 and bad checksum: interval.
        let msg = [0x31, 1, 1, 1, 0, 0, 0, 0, 192, 0, 2, 1];
        assert!(matches!(
            decode(&msg, &c),
            Err(DecodeError::ZeroInterval { .. })
        ));
        // Bad checksum and wrong auth: checksum.
        let mut msg = v2_with_auth(1, *b"nope\0\0\0\0");
        msg[7] ^= 1;
        assert!(matches!(
            decode(&msg, &c),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    // ---- field details --------------------------------------------------------------

    /// RFC 9568 §5.2.6: the 4 reserved bits are ignored on receive.
    #[test]
    fn rfc9568_5_2_6_reserved_bits_are_ignored_on_receive() {
        let msg = seal(vec![0x31, 5, 100, 1, 0xf0, 100, 0, 0, 192, 0, 2, 100], None);
        let advert = decode(&msg, &v2_ctx(&Auth::None)).unwrap();
        assert_eq!(advert.interval, cs(100));
    }

    /// RFC 9568 §5.2.7: the 12-bit interval reaches 4095 cs.
    #[test]
    fn rfc9568_5_2_7_v3_interval_uses_all_12_bits() {
        let msg = seal(
            vec![0x31, 5, 100, 1, 0x0f, 0xff, 0, 0, 192, 0, 2, 100],
            None,
        );
        assert_eq!(
            decode(&msg, &v2_ctx(&Auth::None)).unwrap().interval,
            cs(4095)
        );
    }

    /// RFC 3768 §5.3.7: v2 carries whole seconds, up to 255.
    #[test]
    fn rfc3768_5_3_7_v2_interval_is_whole_seconds() {
        let msg = v2_message(1, 100, 255, &[[192, 0, 2, 1]], 0, [0; 8]);
        let advert = decode(&msg, &v2_ctx(&Auth::None)).unwrap();
        assert_eq!(advert.interval, AdvertInterval::from_secs(255).unwrap());
    }

    /// RFC 9568 §5.2.3: VRID 0 is invalid, but it reaches no instance either, so decode
    /// leaves it to dispatch.
    #[test]
    fn rfc9568_5_2_3_vrid_0_is_left_to_dispatch() {
        let msg = v3_message(0, 100, 100, &[v4(192, 0, 2, 1)], None);
        assert_eq!(decode(&msg, &v2_ctx(&Auth::None)).unwrap().vrid, 0);
    }

    #[test]
    fn addresses_are_an_exact_size_double_ended_iterator() {
        let vips: Vec<IpAddr> = (1..=5).map(|i| v4(192, 0, 2, i)).collect();
        let msg = v3_message(1, 100, 100, &vips, None);
        let advert = decode(&msg, &v2_ctx(&Auth::None)).unwrap();
        let mut it = advert.addresses();
        assert_eq!(it.len(), 5);
        assert_eq!(it.next(), Some(vips[0]));
        assert_eq!(it.next_back(), Some(vips[4]));
        assert_eq!(it.len(), 3);
        assert_eq!(it.collect::<Vec<_>>(), &vips[1..4]);
        assert_eq!(advert.addresses().rev().count(), 5);
        assert_eq!(advert.address_count(), 5);
    }

    #[test]
    fn debug_shows_addresses_as_addresses() {
        let msg = hex(HOLO_V2);
        let advert = decode(&msg, &v2_ctx(&Auth::None)).unwrap();
        let shown = format!("{advert:?}");
        assert!(shown.contains("addresses: [10.0.1.5]"), "{shown}");
        assert!(shown.contains("vrid: 51"), "{shown}");
    }
}
