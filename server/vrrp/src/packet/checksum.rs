//! The Internet checksum (RFC 1071) and the pseudo-headers VRRP feeds into it (RFC 9568
//! §5.2.8), including the two forms VRRPv3 over IPv4 is sent in.

use super::IPPROTO_VRRP;
use crate::types::Family;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a VRRPv3-over-IPv4 checksum covers.
///
/// RFC 9568 §5.2.8 says the v3 checksum includes a pseudo-header for IPv4 as well as IPv6,
/// but some implementations (and RFC 5798 as they read it) compute it over the VRRP
/// message alone, as v2 does. keepalived, FRR and Wireshark use the pseudo-header, so that
/// is what havip sends unless configured otherwise; on receive both are accepted.
///
/// A decoded advertisement reports the form that matched: v2 is always `MessageOnly`,
/// v3 over IPv6 always `PseudoHeader`. When both forms give the same value (the
/// pseudo-header sums to zero in one's complement) the receiver cannot tell them apart and
/// reports `PseudoHeader`, the form it tries first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// IP pseudo-header followed by the VRRP message.
    #[default]
    PseudoHeader,
    /// The VRRP message alone.
    MessageOnly,
}

impl ChecksumForm {
    /// How the form reads in an error message.
    pub(crate) const fn describe(self) -> &'static str {
        match self {
            ChecksumForm::PseudoHeader => "with the pseudo-header",
            ChecksumForm::MessageOnly => "over the message only",
        }
    }
}

/// The Internet checksum of `data` (RFC 1071): the one's complement of the one's
/// complement sum of its 16-bit big-endian words, an odd last byte padded with zero.
///
/// Public so that IP headers built around a VRRP message (in tests, or by a sender that
/// writes its own IPv4 header) use the same arithmetic.
pub fn internet_checksum(data: &[u8]) -> u16 {
    Sum::default().add(data).checksum()
}

/// A one's complement sum fed piece by piece, so a message and its pseudo-header never
/// have to be copied into one buffer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sum {
    /// Unfolded sum; u64 cannot overflow for anything that fits in an IP packet.
    acc: u64,
    /// Whether an odd number of bytes has been added, so the next byte is a low byte.
    odd: bool,
}

impl Sum {
    /// The sum with `bytes` appended.
    pub(crate) fn add(self, bytes: &[u8]) -> Sum {
        let (words, rest) = bytes.as_chunks::<2>();
        let mut acc: u64 = words
            .iter()
            .map(|&w| u64::from(u16::from_be_bytes(w)))
            .sum();
        if let Some(&last) = rest.first() {
            acc += u64::from(last) << 8;
        }
        self.then(Sum {
            acc,
            odd: rest.len() == 1,
        })
    }

    /// The sum with the bytes summed in `next` appended.
    pub(crate) fn then(self, next: Sum) -> Sum {
        // A piece that starts at an odd offset has every byte in the other half of its
        // word; RFC 1071 §2(B): swapping the bytes of the folded sum accounts for that.
        let folded = fold(next.acc);
        let aligned = if self.odd {
            folded.swap_bytes()
        } else {
            folded
        };
        Sum {
            acc: self.acc + u64::from(aligned),
            odd: self.odd != next.odd,
        }
    }

    /// The checksum to put in a zeroed checksum field of the summed data.
    pub(crate) fn checksum(self) -> u16 {
        !fold(self.acc)
    }

    /// Whether `received`, sitting at an even offset in the summed data (whose checksum
    /// field was left out), makes the whole sum come out as all ones.
    ///
    /// Checked this way rather than `received == self.checksum()` so that 0xffff is also
    /// accepted where 0x0000 was computed: both are zero in one's complement, and RFC 1071
    /// receivers accept either.
    pub(crate) fn verifies(self, received: u16) -> bool {
        fold(self.acc + u64::from(received)) == 0xffff
    }
}

fn fold(mut acc: u64) -> u16 {
    loop {
        match u16::try_from(acc) {
            Ok(folded) => return folded,
            Err(_) => acc = (acc & 0xffff) + (acc >> 16),
        }
    }
}

/// The IP source and destination of one packet, known to be of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoints {
    V4 { src: Ipv4Addr, dst: Ipv4Addr },
    V6 { src: Ipv6Addr, dst: Ipv6Addr },
}

impl Endpoints {
    /// `None` when `src` and `dst` are of different families.
    pub(crate) fn new(src: IpAddr, dst: IpAddr) -> Option<Endpoints> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(Endpoints::V4 { src, dst }),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Some(Endpoints::V6 { src, dst }),
            _ => None,
        }
    }

    pub(crate) fn family(self) -> Family {
        match self {
            Endpoints::V4 { .. } => Family::Ipv4,
            Endpoints::V6 { .. } => Family::Ipv6,
        }
    }

    /// The sum of the pseudo-header for a VRRP message of `len` bytes: RFC 768's layout for
    /// IPv4, RFC 8200 §8.1's for IPv6.
    pub(crate) fn pseudo_header(self, len: u16) -> Sum {
        let [len_hi, len_lo] = len.to_be_bytes();
        match self {
            Endpoints::V4 { src, dst } => Sum::default()
                .add(&src.octets())
                .add(&dst.octets())
                .add(&[0, IPPROTO_VRRP, len_hi, len_lo]),
            Endpoints::V6 { src, dst } => Sum::default()
                .add(&src.octets())
                .add(&dst.octets())
                .add(&[0, 0, len_hi, len_lo, 0, 0, 0, IPPROTO_VRRP]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_3_worked_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
        // Data that includes its own checksum verifies.
        let sum = Sum::default().add(&data);
        assert!(sum.verifies(!0xddf2));
        assert!(!sum.verifies(!0xddf3));
    }

    /// An odd trailing byte is the high byte of a last word padded with zero (RFC 768's
    /// and RFC 793's wording of the RFC 1071 sum).
    #[test]
    fn rfc1071_odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(&[0xab]), internet_checksum(&[0xab, 0x00]));
        assert_eq!(internet_checksum(&[]), 0xffff);
    }

    /// 0x0000 and 0xffff are both zero in one's complement, so a receiver accepts either
    /// where 0x0000 is computed.
    #[test]
    fn rfc1071_both_ones_complement_zeros_verify() {
        // 0xffff sums to 0xffff, so its checksum is 0x0000.
        let sum = Sum::default().add(&[0xff, 0xff]);
        assert_eq!(sum.checksum(), 0x0000);
        assert!(sum.verifies(0x0000));
        assert!(sum.verifies(0xffff));
        assert!(!sum.verifies(0x0001));
    }

    /// RFC 8200 §8.1: the IPv6 pseudo-header is src, dst, 32-bit length, 3 zero bytes and
    /// the next header.
    #[test]
    fn rfc8200_8_1_ipv6_pseudo_header_layout() {
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
        let mut flat = Vec::new();
        flat.extend_from_slice(&src.octets());
        flat.extend_from_slice(&dst.octets());
        flat.extend_from_slice(&[0, 0, 0, 24, 0, 0, 0, 112]);
        let ours = Endpoints::V6 { src, dst }.pseudo_header(24).checksum();
        assert_eq!(ours, internet_checksum(&flat));
    }

    /// RFC 768: the IPv4 pseudo-header is src, dst, zero, protocol and 16-bit length.
    #[test]
    fn rfc768_ipv4_pseudo_header_layout() {
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(224, 0, 0, 18);
        let flat = [192, 0, 2, 1, 224, 0, 0, 18, 0, 112, 0, 12];
        let ours = Endpoints::V4 { src, dst }.pseudo_header(12).checksum();
        assert_eq!(ours, internet_checksum(&flat));
    }

    #[test]
    fn endpoints_of_mixed_families_do_not_exist() {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(Endpoints::new(v4, v6), None);
        assert_eq!(Endpoints::new(v6, v4), None);
        assert_eq!(
            Endpoints::new(v6, v6).map(Endpoints::family),
            Some(Family::Ipv6)
        );
    }

    proptest! {
        /// Summing in pieces, at odd and even offsets, is summing the concatenation.
        #[test]
        fn rfc1071_2_sum_in_pieces_equals_sum_of_whole(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            at.sort_unstable();
            let mut sum = Sum::default();
            let mut from = 0;
            for cut in at.into_iter().chain([data.len()]) {
                sum = sum.add(&data[from..cut]);
                from = cut;
            }
            prop_assert_eq!(sum.checksum(), internet_checksum(&data));
        }
    }
}
