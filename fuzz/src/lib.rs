//! What the packet decoder targets share: the layout of their inputs, the fix-ups that let
//! a mutated packet past the version and checksum checks, and the properties every decode
//! must have. The targets themselves (fuzz_targets/) only choose the version and family.
//!
//! An input is one flags byte (see [`Flags`]) followed by what a raw socket hands the
//! runtime: for IPv4 the whole datagram, header included; for IPv6 the source and
//! destination address (16 bytes each, which the runtime gets as ancillary data) and the
//! VRRP message.

use havip_vrrp::packet::{
    self, AdvertFields, Auth, DecodeContext, EncodeContext, IPPROTO_VRRP, internet_checksum,
};
use havip_vrrp::{Family, Version, Vrid};
use std::net::{IpAddr, Ipv6Addr};

/// Switches in the first byte of an input. Each corpus file is a real packet behind a
/// flags byte, so the fuzzer can flip how the packet is looked at as cheaply as it flips
/// the packet's bits.
#[derive(Clone, Copy, Debug)]
pub struct Flags(u8);

impl Flags {
    /// Recompute the VRRP checksum before decoding. A mutated packet almost never has a
    /// right checksum by chance, so without this everything decode checks after the
    /// checksum (the IPv6 link-local rule, v2 authentication, the round trip) would see
    /// only the seeds.
    const FIX_CHECKSUM: u8 = 0x01;
    /// v3 over IPv4: fix the checksum with the pseudo-header rather than over the message
    /// only (both forms are received).
    const PSEUDO_HEADER: u8 = 0x02;
    /// Keep the version nibble the input has instead of forcing the target's version, so
    /// that the version check is fuzzed too.
    const KEEP_VERSION: u8 = 0x80;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// The v2 PASS password the seed packets captured from keepalived carry; decoding with it
/// reaches the "password matches" branch for them.
const SEED_PASSWORD: &str = "s3cret";

/// The IPv4 receive path as the runtime runs it (parse the header, look at the TTL and
/// the VRID, decode), for a target that speaks `version`.
pub fn ipv4(data: &[u8], version: Version) {
    let Some((&flags, datagram)) = data.split_first() else {
        return;
    };
    let flags = Flags(flags);
    let ip = match packet::parse_ipv4(datagram) {
        Ok(ip) => ip,
        Err(e) => {
            explain(&e);
            return;
        }
    };
    // The runtime drops a packet with the wrong TTL before decoding it (and the socket
    // receives protocol 112 only); the fuzzer decodes it anyway, so that the decoder sees
    // every payload the fuzzer can make.
    if let Err(e) = packet::check_ttl(ip.ttl) {
        explain(&e);
    }
    let (src, dst) = (IpAddr::V4(ip.src), IpAddr::V4(ip.dst));
    let mut msg = ip.payload.to_vec();
    prepare(&mut msg, flags, version, src, dst);
    check_with_each_auth(&msg, Family::Ipv4, src, dst);
}

/// The IPv6 receive path: the runtime gets the message alone and the addresses beside it.
pub fn ipv6(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((src, rest)) = rest.split_first_chunk::<16>() else {
        return;
    };
    let Some((dst, msg)) = rest.split_first_chunk::<16>() else {
        return;
    };
    let (src, dst) = (
        IpAddr::V6(Ipv6Addr::from(*src)),
        IpAddr::V6(Ipv6Addr::from(*dst)),
    );
    let mut msg = msg.to_vec();
    prepare(&mut msg, Flags(flags), Version::V3, src, dst);
    check_with_each_auth(&msg, Family::Ipv6, src, dst);
}

/// [`check`] `msg`, received on a socket of `family` from `src` to `dst`, under each
/// authentication setting of [`auths`].
fn check_with_each_auth(msg: &[u8], family: Family, src: IpAddr, dst: IpAddr) {
    for auth in auths(msg) {
        let ctx = DecodeContext {
            family,
            src,
            dst,
            auth: &auth,
        };
        check(msg, &ctx);
    }
}

/// Apply the flags: force the version, then fix the checksum in the form the packet will
/// be checked in.
fn prepare(msg: &mut [u8], flags: Flags, version: Version, src: IpAddr, dst: IpAddr) {
    let Some(first) = msg.first_mut() else {
        return;
    };
    if !flags.has(Flags::KEEP_VERSION) {
        *first = version.number() << 4 | (*first & 0x0f);
    }
    if !flags.has(Flags::FIX_CHECKSUM) || msg.len() < packet::HEADER_LEN {
        return;
    }
    let pseudo = match (msg[0] >> 4, src) {
        (3, IpAddr::V6(_)) => true,
        (3, IpAddr::V4(_)) => flags.has(Flags::PSEUDO_HEADER),
        _ => false,
    };
    seal(msg, pseudo.then_some((src, dst)));
}

/// Set bytes 6 and 7 of `msg` (at least 8 bytes) to its checksum, over the message alone
/// or with the pseudo-header of `pseudo`. Written from the RFC layouts here rather than
/// through the encoder, so a wrong encoder cannot hide a wrong decoder.
fn seal(msg: &mut [u8], pseudo: Option<(IpAddr, IpAddr)>) {
    msg[6] = 0;
    msg[7] = 0;
    let len = msg.len();
    let mut covered = Vec::with_capacity(40 + len);
    match pseudo {
        Some((IpAddr::V4(s), IpAddr::V4(d))) => {
            covered.extend_from_slice(&s.octets());
            covered.extend_from_slice(&d.octets());
            covered.extend_from_slice(&[0, IPPROTO_VRRP]);
            // A length past u16 cannot come from an IPv4 datagram; truncating keeps the
            // fix-up total, and decode will refuse the count anyway.
            covered.extend_from_slice(&(len as u16).to_be_bytes());
        }
        Some((IpAddr::V6(s), IpAddr::V6(d))) => {
            covered.extend_from_slice(&s.octets());
            covered.extend_from_slice(&d.octets());
            covered.extend_from_slice(&(len as u32).to_be_bytes());
            covered.extend_from_slice(&[0, 0, 0, IPPROTO_VRRP]);
        }
        _ => {}
    }
    covered.extend_from_slice(msg);
    let [hi, lo] = internet_checksum(&covered).to_be_bytes();
    msg[6] = hi;
    msg[7] = lo;
}

/// The authentication settings to decode with: none, the seeds' password, and the
/// password the packet itself carries (when it is one), which reaches the "PASS matches"
/// branch for any mutated v2 packet.
fn auths(msg: &[u8]) -> Vec<Auth> {
    let mut auths = vec![Auth::None];
    auths.extend(Auth::pass(SEED_PASSWORD).ok());
    let carried = msg
        .last_chunk::<{ packet::V2_AUTH_DATA_LEN }>()
        .map(|data| data.split(|&b| b == 0).next().unwrap_or_default())
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|password| Auth::pass(password).ok());
    auths.extend(carried);
    auths
}

/// Decode `msg` and check what must hold whatever it is:
/// - an error has a counter label and a message;
/// - an advertisement agrees with the bytes it came from;
/// - re-encoding an advertisement (VRID 1 to 255) and decoding the result gives the same
///   advertisement: the encoder can say anything the decoder accepts, and the two agree
///   on what the fields mean.
fn check(msg: &[u8], ctx: &DecodeContext<'_>) {
    assert_eq!(packet::peek_vrid(msg), msg.get(1).copied());
    let advert = match packet::decode(msg, ctx) {
        Ok(advert) => advert,
        Err(e) => {
            explain(&e);
            return;
        }
    };
    assert_eq!(advert.version.number(), msg[0] >> 4);
    assert_eq!(advert.vrid, msg[1]);
    assert_eq!(advert.priority, msg[2]);
    assert_eq!(advert.address_count(), usize::from(msg[3]));
    assert_eq!(advert.family(), ctx.family);
    let addresses: Vec<IpAddr> = advert.addresses().collect();
    assert_eq!(addresses.len(), advert.address_count());
    assert!(advert.addresses().rev().eq(addresses.iter().rev().copied()));
    assert!(!format!("{advert:?}").is_empty());

    // VRID 0 is decoded (dispatch finds no instance for it) but never sent.
    let Some(vrid) = Vrid::new(advert.vrid) else {
        return;
    };
    let auth = match advert.version {
        Version::V2 => ctx.auth.clone(),
        Version::V3 => Auth::None,
    };
    let fields = AdvertFields {
        version: advert.version,
        vrid,
        priority: advert.priority,
        interval: advert.interval,
        addresses: &addresses,
        auth: &auth,
    };
    let encode_ctx = EncodeContext {
        src: ctx.src,
        dst: ctx.dst,
        v3_ipv4_checksum: advert.checksum_form,
    };
    let mut out = Vec::new();
    if let Err(e) = packet::encode(&fields, &encode_ctx, &mut out) {
        panic!("decode accepted {advert:?} but encode refuses it: {e}");
    }
    assert_eq!(out.len(), packet::encoded_len(&fields));
    assert_eq!(out.len(), msg.len());
    assert_eq!(
        packet::decode(&out, ctx),
        Ok(advert),
        "re-encoded: {out:02x?}"
    );
}

/// An error must have a label for the drop counter and a message for the operator.
fn explain(e: &packet::DecodeError) {
    assert!(!e.reason().is_empty());
    assert!(!e.to_string().is_empty());
}
