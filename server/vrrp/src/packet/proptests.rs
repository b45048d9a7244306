//! Property tests over every field value the codec carries: encode/decode round trips,
//! arbitrary input, and single-bit corruption.

use super::*;
use crate::types::{AdvertInterval, Family, Version, Vrid};
use proptest::collection::vec;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One advertisement and the packet it travels in.
#[derive(Clone, Debug)]
struct Case {
    version: Version,
    family: Family,
    vrid: Vrid,
    priority: u8,
    interval: AdvertInterval,
    addresses: Vec<IpAddr>,
    auth: Auth,
    form: ChecksumForm,
    src: IpAddr,
    dst: IpAddr,
}

impl Case {
    fn fields(&self) -> AdvertFields<'_> {
        AdvertFields {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            interval: self.interval,
            addresses: &self.addresses,
            auth: &self.auth,
        }
    }

    fn encode_ctx(&self, form: ChecksumForm) -> EncodeContext {
        EncodeContext {
            src: self.src,
            dst: self.dst,
            v3_ipv4_checksum: form,
        }
    }

    fn decode_ctx(&self) -> DecodeContext<'_> {
        DecodeContext {
            family: self.family,
            src: self.src,
            dst: self.dst,
            auth: &self.auth,
        }
    }

    fn encoded(&self, form: ChecksumForm) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&self.fields(), &self.encode_ctx(form), &mut out).unwrap();
        out
    }

    /// The form a receiver reports. When the pseudo-header sums to zero the two forms give
    /// the same bytes, and the receiver reports the one it tries first.
    fn expected_form(&self) -> ChecksumForm {
        match (self.version, self.family) {
            (Version::V2, _) => ChecksumForm::MessageOnly,
            (Version::V3, Family::Ipv6) => ChecksumForm::PseudoHeader,
            (Version::V3, Family::Ipv4) => {
                let same = self.encoded(ChecksumForm::PseudoHeader)
                    == self.encoded(ChecksumForm::MessageOnly);
                if same {
                    ChecksumForm::PseudoHeader
                } else {
                    self.form
                }
            }
        }
    }
}

fn ip(family: Family) -> BoxedStrategy<IpAddr> {
    match family {
        Family::Ipv4 => any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed(),
        Family::Ipv6 => any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed(),
    }
}

/// Anywhere in fe80::/10, not just fe80::/64.
fn link_local() -> impl Strategy<Value = IpAddr> {
    any::<u128>().prop_map(|bits| IpAddr::V6(Ipv6Addr::from((0xfe80_u128 << 112) | (bits >> 10))))
}

/// 1 to `max` addresses of `family`, the link-local one first for IPv6 (RFC 9568 §5.2.9).
fn addresses(family: Family, max: usize) -> BoxedStrategy<Vec<IpAddr>> {
    match family {
        Family::Ipv4 => vec(ip(family), 1..=max).boxed(),
        Family::Ipv6 => (link_local(), vec(ip(family), 0..max))
            .prop_map(|(first, rest)| [first].into_iter().chain(rest).collect())
            .boxed(),
    }
}

/// Every interval the version can carry.
fn interval(version: Version) -> BoxedStrategy<AdvertInterval> {
    match version {
        Version::V2 => (1..=AdvertInterval::V2_MAX_SECS)
            .prop_map(|s| AdvertInterval::from_secs(s).unwrap())
            .boxed(),
        Version::V3 => (1..=AdvertInterval::V3_MAX_CENTIS)
            .prop_map(|c| AdvertInterval::from_centis(c).unwrap())
            .boxed(),
    }
}

fn auth(version: Version) -> BoxedStrategy<Auth> {
    match version {
        Version::V2 => prop_oneof![
            Just(Auth::None),
            "[!-~]{1,8}".prop_map(|p| Auth::pass(&p).unwrap()),
        ]
        .boxed(),
        Version::V3 => Just(Auth::None).boxed(),
    }
}

fn form() -> impl Strategy<Value = ChecksumForm> {
    prop_oneof![
        Just(ChecksumForm::PseudoHeader),
        Just(ChecksumForm::MessageOnly)
    ]
}

/// Valid advertisements with 1 to `max` addresses.
fn case(max: usize) -> impl Strategy<Value = Case> {
    prop_oneof![
        Just((Version::V2, Family::Ipv4)),
        Just((Version::V3, Family::Ipv4)),
        Just((Version::V3, Family::Ipv6)),
    ]
    .prop_flat_map(move |(version, family)| {
        (
            (Just(version), Just(family), 1..=u8::MAX, any::<u8>()),
            interval(version),
            addresses(family, max),
            auth(version),
            form(),
            (ip(family), ip(family)),
        )
    })
    .prop_map(
        |((version, family, vrid, priority), interval, addresses, auth, form, (src, dst))| Case {
            version,
            family,
            vrid: Vrid::new(vrid).unwrap(),
            priority,
            interval,
            addresses,
            auth,
            form,
            src,
            dst,
        },
    )
}

/// Any context a receive path could pass, consistent or not.
fn any_ctx_parts() -> impl Strategy<Value = (Family, IpAddr, IpAddr, Auth)> {
    (
        prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)],
        prop_oneof![ip(Family::Ipv4), ip(Family::Ipv6)],
        prop_oneof![ip(Family::Ipv4), ip(Family::Ipv6)],
        auth(Version::V2),
    )
}

proptest! {
    /// RFC 3768 §5.1, RFC 9568 §5.1: what is encoded decodes to the same fields, for every
    /// version, VRID, priority, interval, address count, checksum form and auth.
    #[test]
    fn rfc9568_5_1_decode_of_encode_gives_back_every_field(c in case(MAX_ADDRESSES)) {
        let msg = c.encoded(c.form);
        prop_assert_eq!(msg.len(), encoded_len(&c.fields()));
        let advert = decode(&msg, &c.decode_ctx()).unwrap();
        prop_assert_eq!(advert.version, c.version);
        prop_assert_eq!(advert.vrid, c.vrid.get());
        prop_assert_eq!(advert.priority, c.priority);
        prop_assert_eq!(advert.interval, c.interval);
        prop_assert_eq!(advert.family(), c.family);
        prop_assert_eq!(advert.address_count(), c.addresses.len());
        prop_assert_eq!(advert.addresses().len(), c.addresses.len());
        prop_assert_eq!(advert.addresses().collect::<Vec<_>>(), c.addresses.clone());
        prop_assert_eq!(advert.checksum_form, c.expected_form());
    }

    /// RFC 9568 §5.2.8, RFC 3768 §5.3.8: the checksum catches every single-bit error in
    /// a small packet. A flip the receiver still accepts must have changed what it reads
    /// (for v3 over IPv4 that can be just the form, when a flip in the checksum field
    /// happens to produce the other form's value).
    #[test]
    fn rfc9568_5_2_8_every_single_bit_flip_is_noticed(c in case(4)) {
        let msg = c.encoded(c.form);
        let ctx = c.decode_ctx();
        let original = decode(&msg, &ctx).unwrap();
        for bit in 0..msg.len() * 8 {
            let mut flipped = msg.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(advert) = decode(&flipped, &ctx) {
                prop_assert_ne!(advert, original, "bit {} went unnoticed", bit);
            }
        }
    }

    /// The same for one random bit of packets of any size.
    #[test]
    fn rfc9568_5_2_8_a_random_bit_flip_is_noticed(
        c in case(MAX_ADDRESSES),
        bit in any::<prop::sample::Index>(),
    ) {
        let msg = c.encoded(c.form);
        let ctx = c.decode_ctx();
        let original = decode(&msg, &ctx).unwrap();
        let bit = bit.index(msg.len() * 8);
        let mut flipped = msg.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        if let Ok(advert) = decode(&flipped, &ctx) {
            prop_assert_ne!(advert, original, "bit {} went unnoticed", bit);
        }
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..600),
        (family, src, dst, auth) in any_ctx_parts(),
    ) {
        let _ = decode(&bytes, &DecodeContext { family, src, dst, auth: &auth });
        let _ = peek_vrid(&bytes);
    }

    /// Random bytes rarely get past the version and type; these start as an
    /// advertisement so the later checks see arbitrary input too.
    #[test]
    fn decode_never_panics_on_arbitrary_advertisement_bodies(
        first in prop_oneof![Just(0x21_u8), Just(0x31_u8)],
        rest in vec(any::<u8>(), 0..600),
        (family, src, dst, auth) in any_ctx_parts(),
    ) {
        let mut bytes = vec![first];
        bytes.extend_from_slice(&rest);
        let ctx = DecodeContext { family, src, dst, auth: &auth };
        if let Ok(advert) = decode(&bytes, &ctx) {
            // Whatever was accepted accounts for every byte.
            let auth_len = if advert.version == Version::V2 { V2_AUTH_DATA_LEN } else { 0 };
            prop_assert_eq!(
                bytes.len(),
                HEADER_LEN + advert.address_count() * family.address_len() + auth_len
            );
        }
    }

    #[test]
    fn parse_ipv4_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..200)) {
        if let Ok(p) = parse_ipv4(&bytes) {
            prop_assert!(p.payload.len() + 20 <= bytes.len());
        }
    }

    #[test]
    fn encode_never_panics_on_arbitrary_fields(
        v3 in any::<bool>(),
        vrid in 1..=u8::MAX,
        priority in any::<u8>(),
        centis in 1..=u16::MAX,
        addresses in vec(prop_oneof![ip(Family::Ipv4), ip(Family::Ipv6)], 0..300),
        (_, src, dst, auth) in any_ctx_parts(),
        form in form(),
    ) {
        let fields = AdvertFields {
            version: if v3 { Version::V3 } else { Version::V2 },
            vrid: Vrid::new(vrid).unwrap(),
            priority,
            interval: AdvertInterval::from_centis(centis).unwrap(),
            addresses: &addresses,
            auth: &auth,
        };
        let ctx = EncodeContext { src, dst, v3_ipv4_checksum: form };
        let mut out = Vec::new();
        match encode(&fields, &ctx, &mut out) {
            Ok(()) => prop_assert_eq!(out.len(), encoded_len(&fields)),
            Err(_) => prop_assert!(out.is_empty()),
        }
    }
}
