//! What one VRRP instance is configured to be, as far as the protocol is concerned, and the
//! rules that config must follow.
//!
//! The API layer validates requests with [`InstanceConfig::validate`] so the rules live in one
//! place; checks that need the host (does the interface exist, is the source address on it)
//! are the runtime's.

use crate::packet::Auth;
use crate::types::{AdvertInterval, Family, IntervalError, Version, Vrid, priority};
use core::time::Duration;
use std::net::{IpAddr, Ipv6Addr};

/// The longest preempt delay accepted, as keepalived's `preempt_delay` (1000 s).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// The most gratuitous ARPs / neighbour advertisements one burst may ask for.
pub const MAX_GARP_REPEAT: u32 = 255;

/// Gratuitous ARP (IPv4) / unsolicited neighbour advertisement (IPv6) behaviour on becoming
/// master, after keepalived's `garp_master_*` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarpConfig {
    /// Messages per VIP in the burst sent on becoming master (`garp_master_repeat`).
    pub repeat: u32,
    /// When to send a second burst after becoming master (`garp_master_delay`); `None` for
    /// no second burst. Switches that missed the first burst learn the move from it.
    pub delay: Option<Duration>,
    /// How often to refresh while master (`garp_master_refresh`); `None` for never.
    pub refresh: Option<Duration>,
    /// Messages per VIP in each refresh (`garp_master_refresh_repeat`).
    pub refresh_repeat: u32,
}

impl Default for GarpConfig {
    /// keepalived's defaults: 5 messages, a second burst after 5 s, no refresh.
    fn default() -> Self {
        GarpConfig {
            repeat: 5,
            delay: Some(Duration::from_secs(5)),
            refresh: None,
            refresh_repeat: 1,
        }
    }
}

/// The protocol configuration of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    pub vrid: Vrid,
    pub version: Version,
    /// The family of the virtual addresses, the peers and the primary address.
    pub family: Family,
    /// The configured priority: 1–254, or 255 for the router that owns the virtual
    /// addresses. Trackers and overrides move the effective priority, never to or from 255.
    pub priority: u8,
    pub advert_interval: AdvertInterval,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// How long after first seeing a lower-priority master a backup waits before preempting.
    pub preempt_delay: Duration,
    /// Whether the master accepts packets addressed to the virtual addresses when it does not
    /// own them (RFC 9568 §6.1 Accept_Mode).
    pub accept_mode: bool,
    /// The address adverts are sent from, and the one compared when priorities are equal.
    /// Never a virtual address (unless this router owns them): a VIP as the source is what
    /// turns a network restart into split brain.
    pub primary_address: IpAddr,
    /// The virtual addresses, as configured (for IPv6 see [`Self::advertised_addresses`]).
    pub virtual_addresses: Vec<IpAddr>,
    /// v2 authentication.
    pub auth: Auth,
    pub garp: GarpConfig,
}

/// A rule an instance configuration breaks. [`ConfigError::field`] names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "priority must be 1–255 (0 is what a stopping master sends); use 1–254, or 255 only on the router that owns the virtual addresses"
    )]
    PriorityZero,
    #[error(transparent)]
    Interval(#[from] IntervalError),
    #[error("IPv6 needs VRRPv3: RFC 3768 (v2) is IPv4 only; set version 3")]
    Ipv6NeedsV3,
    #[error("at least one virtual address is required")]
    NoVirtualAddresses,
    #[error("{count} virtual addresses given; an advert carries at most 255")]
    TooManyVirtualAddresses { count: usize },
    #[error(
        "virtual address {addr} is not {family}: one instance serves one address family; make a second instance for the other"
    )]
    MixedFamilies { addr: IpAddr, family: Family },
    #[error("virtual address {addr} is listed twice")]
    DuplicateVirtualAddress { addr: IpAddr },
    #[error("primary address {addr} is not {family}, the family of the virtual addresses")]
    PrimaryAddressFamily { addr: IpAddr, family: Family },
    #[error(
        "primary address {addr} is one of the virtual addresses; adverts must come from the interface's own address, or a network restart leads to split brain (only the address owner, priority 255, may do this)"
    )]
    PrimaryIsVirtual { addr: IpAddr },
    #[error(
        "PASS authentication exists only in VRRPv2 (RFC 9568 removed it); use version 2 or drop authentication"
    )]
    AuthNeedsV2,
    #[error("preempt delay {delay:?} is longer than the 1000 s allowed")]
    PreemptDelayTooLong { delay: Duration },
    #[error("GARP repeat must be 1–255, got {repeat}")]
    GarpRepeat { repeat: u32 },
    #[error("GARP refresh repeat must be 1–255, got {repeat}")]
    GarpRefreshRepeat { repeat: u32 },
    #[error("GARP refresh interval must not be zero; leave it unset for no refresh")]
    GarpRefreshZero,
}

impl ConfigError {
    /// The configuration field the rule is about, as the API names it.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::PriorityZero => "priority",
            ConfigError::Interval(_) => "advert_interval",
            ConfigError::Ipv6NeedsV3 => "version",
            ConfigError::NoVirtualAddresses
            | ConfigError::TooManyVirtualAddresses { .. }
            | ConfigError::MixedFamilies { .. }
            | ConfigError::DuplicateVirtualAddress { .. } => "virtual_addresses",
            ConfigError::PrimaryAddressFamily { .. } | ConfigError::PrimaryIsVirtual { .. } => {
                "unicast_source"
            }
            ConfigError::AuthNeedsV2 => "auth",
            ConfigError::PreemptDelayTooLong { .. } => "preempt_delay",
            ConfigError::GarpRepeat { .. } => "garp.repeat",
            ConfigError::GarpRefreshRepeat { .. } => "garp.refresh_repeat",
            ConfigError::GarpRefreshZero => "garp.refresh",
        }
    }
}

impl InstanceConfig {
    /// A config with the usual defaults: v3, priority 100, 1 s, preempt on, no delay, accept
    /// mode on (as keepalived without `vrrp_strict`), keepalived's GARP defaults.
    pub fn new(vrid: Vrid, primary_address: IpAddr, virtual_addresses: Vec<IpAddr>) -> Self {
        InstanceConfig {
            vrid,
            version: Version::V3,
            family: Family::of(&primary_address),
            priority: priority::DEFAULT,
            advert_interval: AdvertInterval::ONE_SECOND,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: true,
            primary_address,
            virtual_addresses,
            auth: Auth::None,
            garp: GarpConfig::default(),
        }
    }

    /// Whether this router owns the virtual addresses (priority 255, RFC 9568 §5.2.4).
    pub fn is_address_owner(&self) -> bool {
        self.priority == priority::OWNER
    }

    /// Check every protocol rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.priority == priority::SHUTDOWN {
            return Err(ConfigError::PriorityZero);
        }
        if self.family == Family::Ipv6 && self.version == Version::V2 {
            return Err(ConfigError::Ipv6NeedsV3);
        }
        self.advert_interval.check(self.version)?;
        if self.virtual_addresses.is_empty() {
            return Err(ConfigError::NoVirtualAddresses);
        }
        let advertised = self.advertised_address_count();
        if advertised > 255 {
            return Err(ConfigError::TooManyVirtualAddresses { count: advertised });
        }
        for (i, addr) in self.virtual_addresses.iter().enumerate() {
            if Family::of(addr) != self.family {
                return Err(ConfigError::MixedFamilies {
                    addr: *addr,
                    family: self.family,
                });
            }
            if self.virtual_addresses[..i].contains(addr) {
                return Err(ConfigError::DuplicateVirtualAddress { addr: *addr });
            }
        }
        if Family::of(&self.primary_address) != self.family {
            return Err(ConfigError::PrimaryAddressFamily {
                addr: self.primary_address,
                family: self.family,
            });
        }
        if !self.is_address_owner() && self.virtual_addresses.contains(&self.primary_address) {
            return Err(ConfigError::PrimaryIsVirtual {
                addr: self.primary_address,
            });
        }
        if self.auth != Auth::None && self.version != Version::V2 {
            return Err(ConfigError::AuthNeedsV2);
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelayTooLong {
                delay: self.preempt_delay,
            });
        }
        if !(1..=MAX_GARP_REPEAT).contains(&self.garp.repeat) {
            return Err(ConfigError::GarpRepeat {
                repeat: self.garp.repeat,
            });
        }
        if !(1..=MAX_GARP_REPEAT).contains(&self.garp.refresh_repeat) {
            return Err(ConfigError::GarpRefreshRepeat {
                repeat: self.garp.refresh_repeat,
            });
        }
        if self.garp.refresh == Some(Duration::ZERO) {
            return Err(ConfigError::GarpRefreshZero);
        }
        Ok(())
    }

    /// The addresses an advert carries and the master installs.
    ///
    /// RFC 9568 §5.2.9: in an IPv6 advert the first address is the virtual router's
    /// link-local address. When the configured list does not start with a link-local
    /// address, the one derived from the virtual router's MAC (00:00:5e:00:02:VRID) is put
    /// first, as FRR does, so a user can configure just the global VIP.
    pub fn advertised_addresses(&self) -> Vec<IpAddr> {
        let mut out = Vec::with_capacity(self.virtual_addresses.len() + 1);
        if self.needs_virtual_link_local() {
            out.push(IpAddr::V6(virtual_link_local(self.vrid)));
        }
        out.extend_from_slice(&self.virtual_addresses);
        out
    }

    fn advertised_address_count(&self) -> usize {
        self.virtual_addresses.len() + usize::from(self.needs_virtual_link_local())
    }

    fn needs_virtual_link_local(&self) -> bool {
        self.family == Family::Ipv6
            && !self
                .virtual_addresses
                .first()
                .is_some_and(|a| matches!(a, IpAddr::V6(v6) if is_link_local(v6)))
    }
}

/// Whether `addr` is an IPv6 link-local unicast address (fe80::/10).
pub fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// The virtual router's IPv6 link-local address: EUI-64 of its virtual MAC
/// 00:00:5e:00:02:VRID (RFC 9568 §7.3), i.e. fe80::200:5eff:fe00:2VV.
pub fn virtual_link_local(vrid: Vrid) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        0x0200,
        0x5eff,
        0xfe00,
        0x0200 | u16::from(vrid.get()),
    )
}

/// The virtual router MAC address (RFC 9568 §7.3): 00:00:5e:00:01:VRID for IPv4,
/// 00:00:5e:00:02:VRID for IPv6.
pub fn virtual_mac(family: Family, vrid: Vrid) -> [u8; 6] {
    let kind = match family {
        Family::Ipv4 => 1,
        Family::Ipv6 => 2,
    };
    [0x00, 0x00, 0x5e, 0x00, kind, vrid.get()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn base() -> InstanceConfig {
        InstanceConfig::new(
            Vrid::new(51).unwrap(),
            v4("10.0.0.1"),
            vec![v4("10.0.0.100")],
        )
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(base().validate(), Ok(()));
    }

    /// RFC 9568 §5.2.4: priority 0 is reserved for a master that is stopping.
    #[test]
    fn rfc9568_5_2_4_priority_zero_is_refused() {
        let c = InstanceConfig {
            priority: 0,
            ..base()
        };
        assert_eq!(c.validate(), Err(ConfigError::PriorityZero));
        assert_eq!(ConfigError::PriorityZero.field(), "priority");
    }

    /// RFC 3768 §1: VRRPv2 is defined for IPv4 only.
    #[test]
    fn rfc3768_1_ipv6_needs_v3() {
        let c = InstanceConfig {
            version: Version::V2,
            ..InstanceConfig::new(
                Vrid::new(1).unwrap(),
                v4("fe80::1"),
                vec![v4("2001:db8::1")],
            )
        };
        assert_eq!(c.validate(), Err(ConfigError::Ipv6NeedsV3));
    }

    #[test]
    fn one_family_per_instance() {
        let c = InstanceConfig {
            virtual_addresses: vec![v4("10.0.0.100"), v4("2001:db8::1")],
            ..base()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::MixedFamilies { .. })
        ));
    }

    #[test]
    fn virtual_addresses_must_be_present_and_unique() {
        let none = InstanceConfig {
            virtual_addresses: vec![],
            ..base()
        };
        assert_eq!(none.validate(), Err(ConfigError::NoVirtualAddresses));
        let twice = InstanceConfig {
            virtual_addresses: vec![v4("10.0.0.100"), v4("10.0.0.100")],
            ..base()
        };
        assert!(matches!(
            twice.validate(),
            Err(ConfigError::DuplicateVirtualAddress { .. })
        ));
        let too_many = InstanceConfig {
            virtual_addresses: (0..=255u8)
                .map(|i| IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)))
                .collect(),
            ..base()
        };
        assert!(matches!(
            too_many.validate(),
            Err(ConfigError::TooManyVirtualAddresses { count: 256 })
        ));
    }

    /// RFC 3768 §5.3.6 / RFC 9568 §9: authentication was removed in v3.
    #[test]
    fn rfc9568_9_pass_authentication_only_for_v2() {
        let c = InstanceConfig {
            auth: Auth::pass("1111").unwrap(),
            ..base()
        };
        assert_eq!(c.validate(), Err(ConfigError::AuthNeedsV2));
        let v2 = InstanceConfig {
            version: Version::V2,
            ..c
        };
        assert_eq!(v2.validate(), Ok(()));
    }

    #[test]
    fn the_source_is_never_a_virtual_address_unless_owner() {
        let c = InstanceConfig {
            primary_address: v4("10.0.0.100"),
            ..base()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::PrimaryIsVirtual { .. })
        ));
        let owner = InstanceConfig { priority: 255, ..c };
        assert_eq!(owner.validate(), Ok(()));
    }

    #[test]
    fn v2_interval_must_be_whole_seconds() {
        let c = InstanceConfig {
            version: Version::V2,
            advert_interval: AdvertInterval::from_centis(10).unwrap(),
            ..base()
        };
        assert!(matches!(c.validate(), Err(ConfigError::Interval(_))));
        assert_eq!(
            c.validate().err().map(|e| e.field()),
            Some("advert_interval")
        );
    }

    #[test]
    fn garp_and_preempt_delay_bounds() {
        let mut c = base();
        c.garp.repeat = 0;
        assert_eq!(c.validate(), Err(ConfigError::GarpRepeat { repeat: 0 }));
        let mut c = base();
        c.garp.refresh = Some(Duration::ZERO);
        assert_eq!(c.validate(), Err(ConfigError::GarpRefreshZero));
        let c = InstanceConfig {
            preempt_delay: Duration::from_secs(1001),
            ..base()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::PreemptDelayTooLong { .. })
        ));
    }

    /// RFC 9568 §5.2.9 and §7.3: an IPv6 advert leads with the virtual router's link-local
    /// address, derived from its virtual MAC when none is configured.
    #[test]
    fn rfc9568_5_2_9_ipv6_adverts_lead_with_a_link_local_address() {
        let vrid = Vrid::new(7).unwrap();
        let c = InstanceConfig::new(vrid, v4("fe80::1"), vec![v4("2001:db8::7")]);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.advertised_addresses(),
            vec![v4("fe80::200:5eff:fe00:207"), v4("2001:db8::7")]
        );
        let explicit =
            InstanceConfig::new(vrid, v4("fe80::1"), vec![v4("fe80::7"), v4("2001:db8::7")]);
        assert_eq!(explicit.advertised_addresses(), explicit.virtual_addresses);
        assert_eq!(virtual_mac(Family::Ipv6, vrid), [0, 0, 0x5e, 0, 2, 7]);
        assert_eq!(virtual_mac(Family::Ipv4, vrid), [0, 0, 0x5e, 0, 1, 7]);
    }
}
