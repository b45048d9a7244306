//! Packets built byte by byte for the unit tests, with checksums computed from the RFC
//! layouts directly, so decode tests do not lean on the encoder.

use super::{Auth, DecodeContext, IPPROTO_VRRP, internet_checksum};
use crate::types::Family;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// holo-vrrp's VRRPv2 test packet: VRID 51, priority 30, 1 s, 10.0.1.5, no auth.
pub(crate) const HOLO_V2: &str = "21331e010001b5c50a0001050000000000000000";

/// keepalived's VRRPv3/IPv4 test packet, checksum over the message only: VRID 51,
/// priority 200, 100 cs, 192.0.2.100.
pub(crate) const KEEPALIVED_V3: &str = "3133c80100644402c0000264";

pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

pub(crate) fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
}

pub(crate) fn ctx(src: IpAddr, dst: IpAddr, auth: &Auth) -> DecodeContext<'_> {
    DecodeContext {
        family: Family::of(&src),
        src,
        dst,
        auth,
    }
}

/// The bytes of a pseudo-header for `len` bytes of VRRP between `src` and `dst`.
pub(crate) fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            out.extend_from_slice(&[0, IPPROTO_VRRP]);
            out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            out.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, IPPROTO_VRRP]);
        }
        _ => panic!("mixed families"),
    }
    out
}

/// `msg` with bytes 6..8 set to its checksum: over the message alone for `None`, or with
/// the pseudo-header of `Some((src, dst))`.
pub(crate) fn seal(mut msg: Vec<u8>, pseudo: Option<(IpAddr, IpAddr)>) -> Vec<u8> {
    msg[6] = 0;
    msg[7] = 0;
    let mut covered = match pseudo {
        Some((src, dst)) => pseudo_header(src, dst, msg.len()),
        None => Vec::new(),
    };
    covered.extend_from_slice(&msg);
    let [hi, lo] = internet_checksum(&covered).to_be_bytes();
    msg[6] = hi;
    msg[7] = lo;
    msg
}

/// A v2 message: header, addresses, then the 8 bytes of authentication data.
pub(crate) fn v2_message(
    vrid: u8,
    priority: u8,
    secs: u8,
    addresses: &[[u8; 4]],
    auth_type: u8,
    auth_data: [u8; 8],
) -> Vec<u8> {
    let count = u8::try_from(addresses.len()).unwrap();
    let mut msg = vec![0x21, vrid, priority, count, auth_type, secs, 0, 0];
    for a in addresses {
        msg.extend_from_slice(a);
    }
    msg.extend_from_slice(&auth_data);
    seal(msg, None)
}

/// A v3 message with `addresses` (all of one family) and a checksum in the given form.
pub(crate) fn v3_message(
    vrid: u8,
    priority: u8,
    centis: u16,
    addresses: &[IpAddr],
    pseudo: Option<(IpAddr, IpAddr)>,
) -> Vec<u8> {
    let count = u8::try_from(addresses.len()).unwrap();
    let [hi, lo] = centis.to_be_bytes();
    let mut msg = vec![0x31, vrid, priority, count, hi, lo, 0, 0];
    for a in addresses {
        match a {
            IpAddr::V4(a) => msg.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => msg.extend_from_slice(&a.octets()),
        }
    }
    seal(msg, pseudo)
}
