//! What VRRP needs from the IP layer: the IPv4 header a raw IPv4 socket hands over with
//! each packet, and the TTL / hop limit rule that keeps VRRP on one link.

use super::REQUIRED_TTL;
use super::error::{DecodeError, Ipv4HeaderProblem};
use std::net::Ipv4Addr;

/// The parts of a received IPv4 packet VRRP looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
    /// The IP payload: the bytes after the header (options included in the header), up to
    /// the total length.
    pub payload: &'a [u8],
}

/// The 20 bytes of an IPv4 header without options.
const MIN_HEADER_LEN: usize = 20;

/// Parse the IPv4 header a raw IPv4 socket hands over with each packet.
///
/// Linux gives the header as it was on the wire, total length in network byte order (some
/// BSDs convert it to host order and subtract the header; havip runs on Linux). Checks the
/// version, the header length and the total length; TTL and protocol are returned for the
/// caller to check (see [`check_ttl`]). The header checksum is not checked: the kernel
/// drops packets whose header checksum is wrong before a raw socket sees them.
pub fn parse_ipv4(buf: &[u8]) -> Result<Ipv4Packet<'_>, DecodeError> {
    let bad = |problem| DecodeError::BadIpv4Header(problem);
    let Some(fixed) = buf.first_chunk::<MIN_HEADER_LEN>() else {
        return Err(bad(Ipv4HeaderProblem::TooShort { len: buf.len() }));
    };
    let [
        version_ihl,
        _tos,
        total_hi,
        total_lo,
        _,
        _,
        _,
        _,
        ttl,
        protocol,
        _,
        _,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ] = *fixed;

    let version = version_ihl >> 4;
    if version != 4 {
        return Err(bad(Ipv4HeaderProblem::NotVersion4 { version }));
    }
    let ihl = version_ihl & 0x0f;
    if ihl < 5 {
        return Err(bad(Ipv4HeaderProblem::HeaderLengthTooSmall { ihl }));
    }
    let header_len = usize::from(ihl) * 4;
    let total = u16::from_be_bytes([total_hi, total_lo]);

    // Bytes past the total length would be link-layer padding, which is not part of the
    // datagram; a raw socket does not deliver any, but the header is what counts.
    let datagram =
        buf.get(..usize::from(total))
            .ok_or(bad(Ipv4HeaderProblem::TotalLengthExceedsBuffer {
                total,
                len: buf.len(),
            }))?;
    let payload =
        datagram
            .get(header_len..)
            .ok_or(bad(Ipv4HeaderProblem::TotalLengthBelowHeader {
                total,
                header_len,
            }))?;

    Ok(Ipv4Packet {
        src: Ipv4Addr::new(s0, s1, s2, s3),
        dst: Ipv4Addr::new(d0, d1, d2, d3),
        ttl,
        protocol,
        payload,
    })
}

/// RFC 9568 §7.1 (and RFC 3768 §7.1): a received advertisement whose IPv4 TTL or IPv6 hop
/// limit is not 255 is dropped, because only a packet that was never routed can come from
/// a router on the same link.
pub fn check_ttl(ttl: u8) -> Result<(), DecodeError> {
    if ttl == REQUIRED_TTL {
        Ok(())
    } else {
        Err(DecodeError::TtlNot255 { ttl })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::internet_checksum;

    /// A 20-byte IPv4 header around `payload`, TTL 255, protocol 112, valid checksum.
    fn datagram(payload: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + payload.len()).unwrap().to_be_bytes();
        let mut out = vec![
            0x45, 0xc0, total[0], total[1], 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18,
        ];
        let [hi, lo] = internet_checksum(&out).to_be_bytes();
        out[10] = hi;
        out[11] = lo;
        out.extend_from_slice(payload);
        out
    }

    fn problem(buf: &[u8]) -> Ipv4HeaderProblem {
        match parse_ipv4(buf) {
            Err(DecodeError::BadIpv4Header(p)) => p,
            other => panic!("expected a bad header, got {other:?}"),
        }
    }

    #[test]
    fn rfc791_parses_addresses_ttl_protocol_and_payload() {
        let buf = datagram(&[1, 2, 3, 4]);
        let p = parse_ipv4(&buf).unwrap();
        assert_eq!(p.src, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst, Ipv4Addr::new(224, 0, 0, 18));
        assert_eq!(p.ttl, 255);
        assert_eq!(p.protocol, 112);
        assert_eq!(p.payload, &[1, 2, 3, 4]);
    }

    /// RFC 791 §3.1: IHL counts 32-bit words, options included.
    #[test]
    fn rfc791_3_1_options_are_skipped() {
        let mut buf = datagram(&[9, 9]);
        buf[0] = 0x46;
        buf[3] += 4;
        buf.splice(20..20, [1, 1, 1, 0]); // NOP NOP NOP EOL
        assert_eq!(parse_ipv4(&buf).unwrap().payload, &[9, 9]);
    }

    /// RFC 791 §3.1: the total length bounds the datagram; anything after it is not part
    /// of it.
    #[test]
    fn rfc791_3_1_bytes_after_total_length_are_not_payload() {
        let mut buf = datagram(&[1, 2]);
        buf.extend_from_slice(&[0, 0]);
        assert_eq!(parse_ipv4(&buf).unwrap().payload, &[1, 2]);
    }

    #[test]
    fn bad_ipv4_headers_are_refused() {
        let good = datagram(&[1, 2, 3, 4]);
        assert_eq!(
            problem(&good[..19]),
            Ipv4HeaderProblem::TooShort { len: 19 }
        );
        assert_eq!(problem(&[]), Ipv4HeaderProblem::TooShort { len: 0 });

        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(problem(&v6), Ipv4HeaderProblem::NotVersion4 { version: 6 });

        let mut short_ihl = good.clone();
        short_ihl[0] = 0x44;
        assert_eq!(
            problem(&short_ihl),
            Ipv4HeaderProblem::HeaderLengthTooSmall { ihl: 4 }
        );

        assert_eq!(
            problem(&good[..23]),
            Ipv4HeaderProblem::TotalLengthExceedsBuffer { total: 24, len: 23 }
        );

        let mut tiny_total = good.clone();
        tiny_total[3] = 16;
        assert_eq!(
            problem(&tiny_total),
            Ipv4HeaderProblem::TotalLengthBelowHeader {
                total: 16,
                header_len: 20
            }
        );

        let mut long_ihl = good;
        long_ihl[0] = 0x4f; // 60-byte header in a 24-byte datagram
        assert_eq!(
            problem(&long_ihl),
            Ipv4HeaderProblem::TotalLengthBelowHeader {
                total: 24,
                header_len: 60
            }
        );
        let msg = DecodeError::BadIpv4Header(Ipv4HeaderProblem::TooShort { len: 3 }).to_string();
        assert!(msg.starts_with("bad IPv4 header: 3 bytes"), "{msg}");
    }

    /// RFC 9568 §7.1 (RFC 3768 §7.1): only TTL / hop limit 255 is accepted.
    #[test]
    fn rfc9568_7_1_ttl_must_be_255() {
        assert_eq!(check_ttl(255), Ok(()));
        for ttl in [0u8, 1, 64, 254] {
            assert_eq!(check_ttl(ttl), Err(DecodeError::TtlNot255 { ttl }));
        }
        let msg = check_ttl(254).unwrap_err().to_string();
        assert!(msg.contains("254") && msg.contains("255"), "{msg}");
    }
}
