//! Encoding an advertisement (RFC 3768 §5.1, RFC 9568 §5.1) into a caller-owned buffer,
//! refusing any field combination a conforming receiver would drop.

use super::checksum::{ChecksumForm, Endpoints, Sum};
use super::error::EncodeError;
use super::{ADVERTISEMENT, Auth, HEADER_LEN, V2_AUTH_DATA_LEN, V3_INTERVAL_MASK, message_len};
use crate::types::{AdvertInterval, DisplayCentis, Family, IntervalError, Version, Vrid};
use std::net::IpAddr;

/// What an advertisement says.
#[derive(Clone, Copy, Debug)]
pub struct AdvertFields<'a> {
    pub version: Version,
    pub vrid: Vrid,
    pub priority: u8,
    pub interval: AdvertInterval,
    /// 1 to 255 addresses of one family; for IPv6 the first is the link-local one.
    pub addresses: &'a [IpAddr],
    /// v2 only; must be [`Auth::None`] for v3.
    pub auth: &'a Auth,
}

/// How the advertisement will be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeContext {
    /// The IP source, for the pseudo-header; its family is the advertisement's.
    pub src: IpAddr,
    /// The IP destination, for the pseudo-header.
    pub dst: IpAddr,
    /// The checksum form for v3 over IPv4; v2 always uses the message only and v3 over
    /// IPv6 always the pseudo-header.
    pub v3_ipv4_checksum: ChecksumForm,
}

/// The length [`encode`] writes for `fields` when it succeeds.
pub fn encoded_len(fields: &AdvertFields<'_>) -> usize {
    let address_len = fields
        .addresses
        .first()
        .map_or(Family::Ipv4.address_len(), |a| Family::of(a).address_len());
    let auth_len = match fields.version {
        Version::V2 => V2_AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + fields.addresses.len() * address_len + auth_len
}

/// Clears `out` and writes the VRRP message (no IP header) into it; reusing `out` means no
/// allocation per packet.
///
/// On error `out` is left empty, so a caller that ignores the error cannot send stale
/// bytes.
pub fn encode(
    fields: &AdvertFields<'_>,
    ctx: &EncodeContext,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.clear();
    let (endpoints, count) = check(fields, ctx)?;
    let version = fields.version;
    let [byte4, byte5] = interval_field(version, fields.interval, fields.auth)?;
    let form = match (version, endpoints.family()) {
        (Version::V2, _) => ChecksumForm::MessageOnly,
        (Version::V3, Family::Ipv4) => ctx.v3_ipv4_checksum,
        (Version::V3, Family::Ipv6) => ChecksumForm::PseudoHeader,
    };
    let len = message_len(version, endpoints.family(), count);
    let auth_data = fields.auth.data();

    let mut header = [
        version.number() << 4 | ADVERTISEMENT,
        fields.vrid.get(),
        fields.priority,
        count,
        byte4,
        byte5,
        0,
        0,
    ];
    // Summed from the pieces before anything is written, so the header goes out complete
    // and nothing is patched afterwards.
    let mut sum = match form {
        ChecksumForm::PseudoHeader => endpoints.pseudo_header(len),
        ChecksumForm::MessageOnly => Sum::default(),
    }
    .add(&header);
    for address in fields.addresses {
        sum = match address {
            IpAddr::V4(a) => sum.add(&a.octets()),
            IpAddr::V6(a) => sum.add(&a.octets()),
        };
    }
    if version == Version::V2 {
        sum = sum.add(&auth_data);
    }
    let [checksum_hi, checksum_lo] = sum.checksum().to_be_bytes();
    header[6] = checksum_hi;
    header[7] = checksum_lo;

    out.reserve(usize::from(len));
    out.extend_from_slice(&header);
    for address in fields.addresses {
        match address {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
    if version == Version::V2 {
        out.extend_from_slice(&auth_data);
    }
    Ok(())
}

/// The packet's endpoints and address count, once the fields are known to make a packet
/// a conforming receiver accepts.
fn check(fields: &AdvertFields<'_>, ctx: &EncodeContext) -> Result<(Endpoints, u8), EncodeError> {
    let n = fields.addresses.len();
    if n == 0 {
        return Err(EncodeError::NoAddresses);
    }
    // MAX_ADDRESSES is u8::MAX: the count is one byte.
    let count = u8::try_from(n).map_err(|_| EncodeError::TooManyAddresses { count: n })?;
    let family = Family::of(&ctx.src);
    let mismatch = |address: IpAddr| EncodeError::FamilyMismatch { address, family };
    let endpoints = Endpoints::new(ctx.src, ctx.dst).ok_or(mismatch(ctx.dst))?;
    if fields.version == Version::V2 && family == Family::Ipv6 {
        return Err(EncodeError::V2OverIpv6);
    }
    if let Some(&stray) = fields.addresses.iter().find(|a| Family::of(a) != family) {
        return Err(mismatch(stray));
    }
    if fields.version == Version::V3 && *fields.auth != Auth::None {
        return Err(EncodeError::PassOnV3);
    }
    if let Some(IpAddr::V6(first)) = fields.addresses.first()
        && !first.is_unicast_link_local()
    {
        return Err(EncodeError::FirstAddressNotLinkLocal { address: *first });
    }
    Ok((endpoints, count))
}

/// Bytes 4 and 5: v2's auth type and whole seconds, or v3's reserved bits (zero on send,
/// RFC 9568 §5.2.6) and centiseconds.
fn interval_field(
    version: Version,
    interval: AdvertInterval,
    auth: &Auth,
) -> Result<[u8; 2], EncodeError> {
    interval.check(version)?;
    match version {
        Version::V2 => match interval.whole_secs() {
            Some(secs) => Ok([auth.type_number(), secs]),
            // `check` has already refused every interval that is not whole seconds.
            None => {
                Err(IntervalError::V2OutOfRange(DisplayCentis(u64::from(interval.centis()))).into())
            }
        },
        Version::V3 => Ok((interval.centis() & V3_INTERVAL_MASK).to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{HOLO_V2, KEEPALIVED_V3, hex, v4, v6};
    use super::super::{DecodeContext, MULTICAST_V4, MULTICAST_V6, decode};
    use super::*;

    fn cs(n: u16) -> AdvertInterval {
        AdvertInterval::from_centis(n).unwrap()
    }

    fn vrid(n: u8) -> Vrid {
        Vrid::new(n).unwrap()
    }

    fn ctx4(form: ChecksumForm) -> EncodeContext {
        EncodeContext {
            src: v4(192, 0, 2, 1),
            dst: IpAddr::V4(MULTICAST_V4),
            v3_ipv4_checksum: form,
        }
    }

    fn ctx6() -> EncodeContext {
        EncodeContext {
            src: v6("fe80::1"),
            dst: IpAddr::V6(MULTICAST_V6),
            v3_ipv4_checksum: ChecksumForm::MessageOnly,
        }
    }

    fn fields<'a>(
        version: Version,
        interval: AdvertInterval,
        addresses: &'a [IpAddr],
        auth: &'a Auth,
    ) -> AdvertFields<'a> {
        AdvertFields {
            version,
            vrid: vrid(51),
            priority: 100,
            interval,
            addresses,
            auth,
        }
    }

    fn encoded(f: &AdvertFields<'_>, c: &EncodeContext) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        encode(f, c, &mut out).map(|()| out)
    }

    #[test]
    fn rfc3768_5_1_encodes_holo_vrrp_v2_vector() {
        let vips = [v4(10, 0, 1, 5)];
        let f = AdvertFields {
            priority: 30,
            ..fields(Version::V2, cs(100), &vips, &Auth::None)
        };
        // v2 has one checksum form whatever the context asks for.
        for form in [ChecksumForm::PseudoHeader, ChecksumForm::MessageOnly] {
            assert_eq!(encoded(&f, &ctx4(form)).unwrap(), hex(HOLO_V2));
        }
    }

    #[test]
    fn rfc9568_5_1_encodes_keepalived_v3_message_only_vector() {
        let vips = [v4(192, 0, 2, 100)];
        let f = AdvertFields {
            priority: 200,
            ..fields(Version::V3, cs(100), &vips, &Auth::None)
        };
        let c = ctx4(ChecksumForm::MessageOnly);
        assert_eq!(encoded(&f, &c).unwrap(), hex(KEEPALIVED_V3));
    }

    /// RFC 9568 §5.2.8: by default v3 over IPv4 includes the pseudo-header.
    #[test]
    fn rfc9568_5_2_8_v3_ipv4_defaults_to_the_pseudo_header() {
        let vips = [v4(192, 0, 2, 100)];
        let f = fields(Version::V3, cs(100), &vips, &Auth::None);
        let c = ctx4(ChecksumForm::default());
        let msg = encoded(&f, &c).unwrap();
        let decoded = decode(
            &msg,
            &DecodeContext {
                family: Family::Ipv4,
                src: c.src,
                dst: c.dst,
                auth: &Auth::None,
            },
        )
        .unwrap();
        assert_eq!(decoded.checksum_form, ChecksumForm::PseudoHeader);
        assert_ne!(msg, encoded(&f, &ctx4(ChecksumForm::MessageOnly)).unwrap());
    }

    /// RFC 9568 §5.2.8: over IPv6 the pseudo-header is always included.
    #[test]
    fn rfc9568_5_2_8_v3_ipv6_always_uses_the_pseudo_header() {
        let vips = [v6("fe80::1:2"), v6("2001:db8::5")];
        let f = fields(Version::V3, cs(100), &vips, &Auth::None);
        let c = ctx6();
        let msg = encoded(&f, &c).unwrap();
        let d = DecodeContext {
            family: Family::Ipv6,
            src: c.src,
            dst: c.dst,
            auth: &Auth::None,
        };
        let advert = decode(&msg, &d).unwrap();
        assert_eq!(advert.checksum_form, ChecksumForm::PseudoHeader);
        assert_eq!(advert.addresses().collect::<Vec<_>>(), vips);
        assert_eq!(msg.len(), 8 + 2 * 16);
    }

    /// RFC 2338 §5.3.6.2: PASS goes out as auth type 1 with the zero-padded password.
    #[test]
    fn rfc2338_5_3_6_2_v2_pass_is_sent_in_the_auth_data() {
        let vips = [v4(192, 0, 2, 100), v4(192, 0, 2, 101)];
        let auth = Auth::pass("secret").unwrap();
        let msg = encoded(
            &fields(Version::V2, cs(300), &vips, &auth),
            &ctx4(ChecksumForm::default()),
        )
        .unwrap();
        assert_eq!(msg.len(), 8 + 2 * 4 + 8);
        assert_eq!(msg[4], 1);
        assert_eq!(msg[5], 3);
        assert_eq!(&msg[16..], b"secret\0\0");
    }

    /// RFC 9568 §5.2.6: the reserved bits are zero on send.
    #[test]
    fn rfc9568_5_2_6_reserved_bits_are_zero_on_send() {
        let vips = [v4(192, 0, 2, 100)];
        let f = fields(Version::V3, cs(4095), &vips, &Auth::None);
        let msg = encoded(&f, &ctx4(ChecksumForm::default())).unwrap();
        assert_eq!(msg[4], 0x0f);
        assert_eq!(msg[5], 0xff);
    }

    #[test]
    fn encode_reuses_and_clears_the_buffer() {
        let vips = [v4(192, 0, 2, 100)];
        let f = fields(Version::V3, cs(100), &vips, &Auth::None);
        let c = ctx4(ChecksumForm::default());
        let mut out = vec![0xaa; 100];
        encode(&f, &c, &mut out).unwrap();
        assert_eq!(out.len(), encoded_len(&f));
        assert_eq!(out, encoded(&f, &c).unwrap());
        let capacity = out.capacity();
        encode(&f, &c, &mut out).unwrap();
        assert_eq!(out.capacity(), capacity, "no reallocation on reuse");
        // On error nothing is left to send by mistake.
        let bad = fields(Version::V3, cs(100), &[], &Auth::None);
        assert!(encode(&bad, &c, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn encoded_len_matches_what_encode_writes() {
        let v4s: Vec<IpAddr> = (1..=3).map(|i| v4(192, 0, 2, i)).collect();
        let v6s = [v6("fe80::1"), v6("2001:db8::1")];
        let pass = Auth::pass("x").unwrap();
        let cases = [
            (
                fields(Version::V2, cs(100), &v4s, &pass),
                ctx4(ChecksumForm::default()),
            ),
            (
                fields(Version::V3, cs(100), &v4s, &Auth::None),
                ctx4(ChecksumForm::default()),
            ),
            (fields(Version::V3, cs(100), &v6s, &Auth::None), ctx6()),
        ];
        for (f, c) in cases {
            assert_eq!(encoded(&f, &c).unwrap().len(), encoded_len(&f));
        }
    }

    // ---- errors ---------------------------------------------------------------------

    /// RFC 9568 §5.2.5: at least one address.
    #[test]
    fn rfc9568_5_2_5_no_addresses_is_refused() {
        let f = fields(Version::V3, cs(100), &[], &Auth::None);
        assert_eq!(
            encoded(&f, &ctx4(ChecksumForm::default())),
            Err(EncodeError::NoAddresses)
        );
    }

    /// RFC 9568 §5.2.5: the count is one byte.
    #[test]
    fn rfc9568_5_2_5_more_than_255_addresses_is_refused() {
        let many: Vec<IpAddr> = (0..=255u16)
            .map(|i| {
                let [a, b] = i.to_be_bytes();
                v4(10, 0, a, b)
            })
            .collect();
        let c = ctx4(ChecksumForm::default());
        let f = fields(Version::V3, cs(100), &many, &Auth::None);
        assert_eq!(
            encoded(&f, &c),
            Err(EncodeError::TooManyAddresses { count: 256 })
        );
        let f = fields(Version::V3, cs(100), &many[..255], &Auth::None);
        assert_eq!(encoded(&f, &c).unwrap().len(), 8 + 255 * 4);
    }

    /// RFC 9568 §5.2.9: IPv4 and IPv6 addresses are never mixed, nor mixed with IP
    /// endpoints of the other family.
    #[test]
    fn rfc9568_5_2_9_mixed_families_are_refused() {
        let mixed = [v4(192, 0, 2, 1), v6("fe80::1")];
        let f = fields(Version::V3, cs(100), &mixed, &Auth::None);
        assert_eq!(
            encoded(&f, &ctx4(ChecksumForm::default())),
            Err(EncodeError::FamilyMismatch {
                address: v6("fe80::1"),
                family: Family::Ipv4
            })
        );
        let v4s = [v4(192, 0, 2, 1)];
        let f = fields(Version::V3, cs(100), &v4s, &Auth::None);
        assert_eq!(
            encoded(&f, &ctx6()),
            Err(EncodeError::FamilyMismatch {
                address: v4(192, 0, 2, 1),
                family: Family::Ipv6
            })
        );
        let odd_dst = EncodeContext {
            dst: IpAddr::V6(MULTICAST_V6),
            ..ctx4(ChecksumForm::default())
        };
        assert_eq!(
            encoded(&f, &odd_dst),
            Err(EncodeError::FamilyMismatch {
                address: IpAddr::V6(MULTICAST_V6),
                family: Family::Ipv4
            })
        );
    }

    /// RFC 3768 §1: VRRPv2 is IPv4 only.
    #[test]
    fn rfc3768_1_v2_over_ipv6_is_refused() {
        let vips = [v6("fe80::1")];
        let f = fields(Version::V2, cs(100), &vips, &Auth::None);
        assert_eq!(encoded(&f, &ctx6()), Err(EncodeError::V2OverIpv6));
    }

    /// RFC 3768 §5.3.7 and RFC 9568 §5.2.7: each version's interval range.
    #[test]
    fn rfc9568_5_2_7_interval_must_fit_the_version() {
        let vips = [v4(192, 0, 2, 1)];
        let c = ctx4(ChecksumForm::default());
        let half_second = fields(Version::V2, cs(150), &vips, &Auth::None);
        assert!(matches!(
            encoded(&half_second, &c),
            Err(EncodeError::Interval(IntervalError::V2OutOfRange(_)))
        ));
        let too_long = fields(Version::V3, cs(4096), &vips, &Auth::None);
        assert!(matches!(
            encoded(&too_long, &c),
            Err(EncodeError::Interval(IntervalError::V3OutOfRange(_)))
        ));
        let max_v2 = fields(Version::V2, cs(25500), &vips, &Auth::None);
        assert_eq!(encoded(&max_v2, &c).unwrap()[5], 255);
        let too_long_v2 = fields(Version::V2, cs(25600), &vips, &Auth::None);
        assert!(encoded(&too_long_v2, &c).is_err());
    }

    /// RFC 9568 §9: VRRPv3 has no authentication.
    #[test]
    fn rfc9568_9_pass_on_v3_is_refused() {
        let vips = [v4(192, 0, 2, 1)];
        let auth = Auth::pass("secret").unwrap();
        let f = fields(Version::V3, cs(100), &vips, &auth);
        assert_eq!(
            encoded(&f, &ctx4(ChecksumForm::default())),
            Err(EncodeError::PassOnV3)
        );
    }

    /// RFC 9568 §5.2.9: the first IPv6 address is the link-local one.
    #[test]
    fn rfc9568_5_2_9_first_ipv6_address_must_be_link_local() {
        let vips = [v6("2001:db8::1"), v6("fe80::1")];
        let f = fields(Version::V3, cs(100), &vips, &Auth::None);
        assert_eq!(
            encoded(&f, &ctx6()),
            Err(EncodeError::FirstAddressNotLinkLocal {
                address: "2001:db8::1".parse().unwrap()
            })
        );
    }

    #[test]
    fn encode_errors_explain_themselves() {
        let msg = EncodeError::from(IntervalError::V2OutOfRange(DisplayCentis(150))).to_string();
        assert!(msg.contains("whole seconds"), "{msg}");
        assert!(EncodeError::PassOnV3.to_string().contains("VRRPv2"));
    }
}
