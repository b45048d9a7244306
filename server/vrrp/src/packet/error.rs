//! Why a received packet was dropped and why an advertisement could not be built: one
//! variant per reason, each with a message an operator can act on and, for receive, a
//! stable label a metric can count.

use super::HEADER_LEN;
use super::auth::AuthTypeName;
use super::checksum::ChecksumForm;
use crate::types::{Family, IntervalError, Version};
use core::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Why a received packet is not an advertisement this router may act on.
///
/// Listed in the order [`decode`](super::decode) checks them, so a packet with several
/// faults is always reported by the same (first) one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "truncated: the message is {len} bytes, shorter than the {HEADER_LEN}-byte VRRP \
         header; it was cut short on the way or is not VRRP"
    )]
    Truncated { len: usize },

    #[error(
        "unsupported version {version}: havip speaks VRRP versions 2 and 3; check what the \
         sender runs"
    )]
    UnsupportedVersion { version: u8 },

    #[error(
        "not an advertisement: packet type {packet_type}, but ADVERTISEMENT (1) is the only \
         VRRP packet type (RFC 9568 §5.2.2); the sender does not speak standard VRRP"
    )]
    NotAdvertisement { packet_type: u8 },

    #[error("address family mismatch: {0}")]
    FamilyMismatch(FamilyProblem),

    #[error(
        "no addresses: VRID {vrid} advertises 0 addresses, but an advertisement carries at \
         least one (RFC 9568 §5.2.5); configure a virtual address on the sender"
    )]
    NoAddresses { vrid: u8 },

    #[error(
        "address count mismatch: VRID {vrid} has an address count of {count}, but the \
         {len}-byte message has room for {fits}; it was cut short on the way or the sender \
         is broken"
    )]
    AddressCountMismatch {
        vrid: u8,
        count: u8,
        fits: usize,
        len: usize,
    },

    #[error(
        "trailing bytes: VRID {vrid}'s message is {extra} byte(s) longer than its address \
         count of {count} accounts for; the sender is broken or adds an extension havip does \
         not support"
    )]
    TrailingBytes { vrid: u8, count: u8, extra: usize },

    #[error(
        "advertisement interval 0 from VRID {vrid} ({version}): the interval must be at \
         least 1 s in v2 or 10 ms in v3; fix the sender's configuration"
    )]
    ZeroInterval { vrid: u8, version: Version },

    #[error(
        "bad checksum: VRID {vrid} carries {received:#06x}, {computed}; the packet was \
         damaged on the way or the sender computes the checksum another way"
    )]
    BadChecksum {
        vrid: u8,
        received: u16,
        computed: ComputedChecksum,
    },

    #[error(
        "first IPv6 address not link-local: VRID {vrid} lists {address} first, but RFC 9568 \
         §5.2.9 requires the virtual router's link-local address (fe80::/10) first; fix the \
         address order on the sender"
    )]
    FirstAddressNotLinkLocal { vrid: u8, address: Ipv6Addr },

    #[error(
        "authentication mismatch: {difference}; configure the same auth_type and password on \
         every router of VRID {vrid}"
    )]
    AuthMismatch {
        vrid: u8,
        difference: AuthDifference,
    },

    #[error(
        "TTL/hop limit {ttl}, but VRRP requires 255 (RFC 9568 §7.1): the packet was routed \
         here from another link, or forged; VRRP routers must share one link"
    )]
    TtlNot255 { ttl: u8 },

    #[error(
        "bad IPv4 header: {0}; the packet is dropped before VRRP looks at it (if this \
         repeats, capture it with `tcpdump -ni IFACE ip proto 112` and report it)"
    )]
    BadIpv4Header(Ipv4HeaderProblem),
}

impl DecodeError {
    /// Every label [`reason`](Self::reason) returns, in declaration order, so a metric can
    /// be registered for each before the first packet arrives.
    pub const ALL_REASONS: &'static [&'static str] = &[
        "truncated",
        "unsupported_version",
        "not_advertisement",
        "family_mismatch",
        "no_addresses",
        "address_count_mismatch",
        "trailing_bytes",
        "zero_interval",
        "bad_checksum",
        "first_address_not_link_local",
        "auth_mismatch",
        "ttl_not_255",
        "bad_ipv4_header",
    ];

    /// A stable snake_case label for this reason, for metrics and structured logs.
    pub const fn reason(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::NotAdvertisement { .. } => "not_advertisement",
            DecodeError::FamilyMismatch(_) => "family_mismatch",
            DecodeError::NoAddresses { .. } => "no_addresses",
            DecodeError::AddressCountMismatch { .. } => "address_count_mismatch",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::ZeroInterval { .. } => "zero_interval",
            DecodeError::BadChecksum { .. } => "bad_checksum",
            DecodeError::FirstAddressNotLinkLocal { .. } => "first_address_not_link_local",
            DecodeError::AuthMismatch { .. } => "auth_mismatch",
            DecodeError::TtlNot255 { .. } => "ttl_not_255",
            DecodeError::BadIpv4Header(_) => "bad_ipv4_header",
        }
    }
}

/// How the address family of a packet is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyProblem {
    /// A VRRPv2 advertisement arrived over IPv6.
    V2OverIpv6,
    /// The IP source or destination is not of the family of the socket it came in on.
    Addresses {
        socket: Family,
        src: IpAddr,
        dst: IpAddr,
    },
}

impl fmt::Display for FamilyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FamilyProblem::V2OverIpv6 => f.write_str(
                "a VRRPv2 advertisement arrived over IPv6, but VRRPv2 is IPv4 only (RFC 3768); \
                 the sender must use VRRPv3 for IPv6",
            ),
            FamilyProblem::Addresses { socket, src, dst } => write!(
                f,
                "a packet from {src} to {dst} was handed over as received on the {socket} \
                 socket; this is a bug in havip's receive path, please report it"
            ),
        }
    }
}

/// The checksum the receiver computed, to show next to the one received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComputedChecksum {
    /// v2 (message only) and v3 over IPv6 (pseudo-header): one form is valid.
    One { form: ChecksumForm, value: u16 },
    /// v3 over IPv4, where either form is accepted and neither matched.
    Either {
        pseudo_header: u16,
        message_only: u16,
    },
}

impl fmt::Display for ComputedChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ComputedChecksum::One { form, value } => {
                write!(f, "expected {value:#06x} ({})", form.describe())
            }
            ComputedChecksum::Either {
                pseudo_header,
                message_only,
            } => write!(
                f,
                "expected {pseudo_header:#06x} ({}) or {message_only:#06x} ({}), and neither \
                 form matched",
                ChecksumForm::PseudoHeader.describe(),
                ChecksumForm::MessageOnly.describe(),
            ),
        }
    }
}

/// How a VRRPv2 packet's authentication differs from what the instance is configured with.
/// Never carries a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthDifference {
    /// The auth type numbers differ.
    Type { expected: u8, received: u8 },
    /// Both use PASS, with different passwords.
    Password,
}

impl fmt::Display for AuthDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AuthDifference::Type { expected, received } => write!(
                f,
                "this instance expects {}, the packet carries {}",
                AuthTypeName(expected),
                AuthTypeName(received)
            ),
            AuthDifference::Password => {
                f.write_str("this instance and the packet both use PASS, with different passwords")
            }
        }
    }
}

/// How an IPv4 header handed over by a raw socket is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4HeaderProblem {
    /// Fewer bytes than the 20 of a header without options.
    TooShort { len: usize },
    /// The version nibble is not 4.
    NotVersion4 { version: u8 },
    /// The header length field (in 32-bit words) is below the minimum of 5.
    HeaderLengthTooSmall { ihl: u8 },
    /// The total length field claims more bytes than were received.
    TotalLengthExceedsBuffer { total: u16, len: usize },
    /// The total length field is shorter than the header itself.
    TotalLengthBelowHeader { total: u16, header_len: usize },
}

impl fmt::Display for Ipv4HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ipv4HeaderProblem::TooShort { len } => {
                write!(
                    f,
                    "{len} bytes, shorter than the 20-byte minimum IPv4 header"
                )
            }
            Ipv4HeaderProblem::NotVersion4 { version } => {
                write!(f, "IP version {version} on an IPv4 socket")
            }
            Ipv4HeaderProblem::HeaderLengthTooSmall { ihl } => write!(
                f,
                "header length {ihl} words, below the minimum of 5 (20 bytes)"
            ),
            Ipv4HeaderProblem::TotalLengthExceedsBuffer { total, len } => write!(
                f,
                "total length {total} bytes, but only {len} were received (receive buffer too \
                 small?)"
            ),
            Ipv4HeaderProblem::TotalLengthBelowHeader { total, header_len } => write!(
                f,
                "total length {total} bytes, shorter than the {header_len}-byte header"
            ),
        }
    }
}

/// Why an advertisement cannot be built from the fields given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "no addresses: an advertisement carries at least one virtual address (RFC 9568 \
         §5.2.5); configure one"
    )]
    NoAddresses,

    #[error(
        "too many addresses: {count}, but the count field holds at most 255; split the \
         addresses over several virtual routers"
    )]
    TooManyAddresses { count: usize },

    #[error(
        "mixed address families: {address} is not {family} like the IP source; every address \
         of an advertisement, and its IP source and destination, must be of one family \
         (RFC 9568 §5.2.9)"
    )]
    FamilyMismatch { address: IpAddr, family: Family },

    #[error("VRRPv2 is IPv4 only (RFC 3768); use VRRPv3 for IPv6")]
    V2OverIpv6,

    #[error(transparent)]
    Interval(#[from] IntervalError),

    #[error(
        "PASS authentication exists only in VRRPv2: VRRPv3 has no authentication (RFC 9568 \
         §9); remove the password or use version 2"
    )]
    PassOnV3,

    #[error(
        "first IPv6 address {address} is not link-local: RFC 9568 §5.2.9 requires the virtual \
         router's link-local address (fe80::/10) first; list it first"
    )]
    FirstAddressNotLinkLocal { address: Ipv6Addr },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;

    /// One of each variant. The `match` in `index` has no wildcard, so a new variant does
    /// not compile until it is added here, and then the test checks its label is listed.
    fn one_of_each() -> Vec<DecodeError> {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        vec![
            DecodeError::Truncated { len: 3 },
            DecodeError::UnsupportedVersion { version: 4 },
            DecodeError::NotAdvertisement { packet_type: 2 },
            DecodeError::FamilyMismatch(FamilyProblem::Addresses {
                socket: Family::Ipv6,
                src: v4,
                dst: v4,
            }),
            DecodeError::NoAddresses { vrid: 1 },
            DecodeError::AddressCountMismatch {
                vrid: 1,
                count: 2,
                fits: 1,
                len: 12,
            },
            DecodeError::TrailingBytes {
                vrid: 1,
                count: 1,
                extra: 4,
            },
            DecodeError::ZeroInterval {
                vrid: 1,
                version: Version::V3,
            },
            DecodeError::BadChecksum {
                vrid: 1,
                received: 0,
                computed: ComputedChecksum::One {
                    form: ChecksumForm::MessageOnly,
                    value: 1,
                },
            },
            DecodeError::FirstAddressNotLinkLocal {
                vrid: 1,
                address: Ipv6Addr::LOCALHOST,
            },
            DecodeError::AuthMismatch {
                vrid: 1,
                difference: AuthDifference::Password,
            },
            DecodeError::TtlNot255 { ttl: 64 },
            DecodeError::BadIpv4Header(Ipv4HeaderProblem::TooShort { len: 0 }),
        ]
    }

    fn index(e: &DecodeError) -> usize {
        match e {
            DecodeError::Truncated { .. } => 0,
            DecodeError::UnsupportedVersion { .. } => 1,
            DecodeError::NotAdvertisement { .. } => 2,
            DecodeError::FamilyMismatch(_) => 3,
            DecodeError::NoAddresses { .. } => 4,
            DecodeError::AddressCountMismatch { .. } => 5,
            DecodeError::TrailingBytes { .. } => 6,
            DecodeError::ZeroInterval { .. } => 7,
            DecodeError::BadChecksum { .. } => 8,
            DecodeError::FirstAddressNotLinkLocal { .. } => 9,
            DecodeError::AuthMismatch { .. } => 10,
            DecodeError::TtlNot255 { .. } => 11,
            DecodeError::BadIpv4Header(_) => 12,
        }
    }

    #[test]
    fn every_reason_label_is_listed_once_in_declaration_order() {
        let all = one_of_each();
        let indices: Vec<usize> = all.iter().map(index).collect();
        assert_eq!(
            indices,
            (0..DecodeError::ALL_REASONS.len()).collect::<Vec<_>>()
        );
        for e in &all {
            assert_eq!(DecodeError::ALL_REASONS.get(index(e)), Some(&e.reason()));
        }
        let unique: BTreeSet<_> = DecodeError::ALL_REASONS.iter().collect();
        assert_eq!(unique.len(), DecodeError::ALL_REASONS.len());
        for label in DecodeError::ALL_REASONS {
            assert!(
                label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{label} is not snake_case"
            );
        }
    }

    /// Messages follow the Rust convention for errors (no trailing period) so they compose
    /// when a caller adds context, and none is left empty.
    #[test]
    fn messages_compose() {
        for e in one_of_each() {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.ends_with('.'), "{msg}");
        }
    }

    /// The example from the design: an operator reads what to change, and where.
    #[test]
    fn auth_mismatch_message_reads_as_designed() {
        let e = DecodeError::AuthMismatch {
            vrid: 51,
            difference: AuthDifference::Type {
                expected: 1,
                received: 0,
            },
        };
        assert_eq!(
            e.to_string(),
            "authentication mismatch: this instance expects PASS, the packet carries none; \
             configure the same auth_type and password on every router of VRID 51"
        );
    }

    #[test]
    fn checksum_message_shows_both_forms_for_v3_ipv4() {
        let e = DecodeError::BadChecksum {
            vrid: 7,
            received: 0x1234,
            computed: ComputedChecksum::Either {
                pseudo_header: 0xabcd,
                message_only: 0x0042,
            },
        };
        let msg = e.to_string();
        assert!(msg.contains("0x1234"), "{msg}");
        assert!(msg.contains("0xabcd (with the pseudo-header)"), "{msg}");
        assert!(msg.contains("0x0042 (over the message only)"), "{msg}");
        assert!(msg.contains("neither form matched"), "{msg}");
    }
}
