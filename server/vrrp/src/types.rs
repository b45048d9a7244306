//! The small value types every part of VRRP talks in: protocol version, address family,
//! virtual router id, priority and the advertisement interval.

use core::fmt;
use core::num::NonZeroU8;
use core::time::Duration;
use std::net::IpAddr;

/// The VRRP protocol version an instance speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, whole-second intervals, optional PASS authentication.
    V2,
    /// VRRPv3, RFC 9568: IPv4 and IPv6, centisecond intervals, no authentication.
    V3,
}

impl Version {
    /// The number carried in the version nibble of the packet.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version for a version nibble, if it is one we speak.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// The address family of an instance: every address it deals in belongs to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of `addr`.
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Bytes one address of this family takes in a packet.
    pub const fn address_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// A virtual router identifier, 1–255 (RFC 9568 §5.2.3; 0 is not a valid VRID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vrid(NonZeroU8);

impl Vrid {
    /// The VRID `n`, or `None` for 0.
    pub const fn new(n: u8) -> Option<Self> {
        match NonZeroU8::new(n) {
            Some(v) => Some(Vrid(v)),
            None => None,
        }
    }

    /// The VRID as the byte carried in packets.
    pub const fn get(self) -> u8 {
        self.0.get()
    }
}

impl fmt::Display for Vrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// Priority values with a meaning of their own (RFC 9568 §5.2.4).
pub mod priority {
    /// Sent by a master that stops, so its backups take over after Skew_Time.
    pub const SHUTDOWN: u8 = 0;
    /// Reserved for the router that owns the virtual addresses.
    pub const OWNER: u8 = 255;
    /// The default priority of a backup.
    pub const DEFAULT: u8 = 100;
    /// The highest priority a router that is not the address owner may use.
    pub const MAX_NON_OWNER: u8 = 254;
}

/// The advertisement interval, in centiseconds as VRRPv3 carries it.
///
/// VRRPv2 carries whole seconds; an interval for v2 is a multiple of 100 cs. Keeping one
/// unit for both versions keeps the timer arithmetic in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvertInterval(u16);

/// Why an advertisement interval is not valid for a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    #[error("the advertisement interval must not be zero")]
    Zero,
    #[error(
        "VRRPv2 advertisement intervals are whole seconds from 1 s to 255 s (RFC 3768 §5.3.7); got {0}"
    )]
    V2OutOfRange(DisplayCentis),
    #[error(
        "VRRPv3 advertisement intervals are 10 ms to 40.95 s in steps of 10 ms (RFC 9568 §5.2.7); got {0}"
    )]
    V3OutOfRange(DisplayCentis),
}

/// A duration in centiseconds, shown the way a person writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisplayCentis(pub u64);

impl fmt::Display for DisplayCentis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cs = self.0;
        if cs.is_multiple_of(100) {
            write!(f, "{} s", cs / 100)
        } else {
            write!(f, "{} ms", cs * 10)
        }
    }
}

impl AdvertInterval {
    /// The largest interval the 12-bit v3 field holds: 40.95 s.
    pub const V3_MAX_CENTIS: u16 = 4095;
    /// The largest v2 interval: 255 s.
    pub const V2_MAX_SECS: u8 = 255;
    /// The usual default: 1 s.
    pub const ONE_SECOND: AdvertInterval = AdvertInterval(100);

    /// An interval of `cs` centiseconds; `None` for zero.
    pub const fn from_centis(cs: u16) -> Option<Self> {
        if cs == 0 {
            None
        } else {
            Some(AdvertInterval(cs))
        }
    }

    /// An interval of `secs` whole seconds, as VRRPv2 carries it; `None` for zero.
    pub const fn from_secs(secs: u8) -> Option<Self> {
        if secs == 0 {
            None
        } else {
            Some(AdvertInterval(secs as u16 * 100))
        }
    }

    /// The interval for `d` when it is valid for `version`.
    pub fn from_duration(d: Duration, version: Version) -> Result<Self, IntervalError> {
        let nanos = d.as_nanos();
        if nanos == 0 {
            return Err(IntervalError::Zero);
        }
        let centis = nanos / 10_000_000;
        let exact = nanos.is_multiple_of(10_000_000);
        let shown = DisplayCentis(u64::try_from(centis).unwrap_or(u64::MAX));
        let out_of_range = match version {
            Version::V2 => IntervalError::V2OutOfRange(shown),
            Version::V3 => IntervalError::V3OutOfRange(shown),
        };
        if !exact {
            return Err(out_of_range);
        }
        let cs = u16::try_from(centis).map_err(|_| out_of_range)?;
        let interval = AdvertInterval::from_centis(cs).ok_or(IntervalError::Zero)?;
        interval.check(version)?;
        Ok(interval)
    }

    /// Whether this interval can be carried by `version`.
    pub fn check(self, version: Version) -> Result<(), IntervalError> {
        let shown = DisplayCentis(u64::from(self.0));
        match version {
            Version::V2
                if !self.0.is_multiple_of(100) || self.0 / 100 > u16::from(Self::V2_MAX_SECS) =>
            {
                Err(IntervalError::V2OutOfRange(shown))
            }
            Version::V3 if self.0 > Self::V3_MAX_CENTIS => Err(IntervalError::V3OutOfRange(shown)),
            _ => Ok(()),
        }
    }

    /// The interval in centiseconds.
    pub const fn centis(self) -> u16 {
        self.0
    }

    /// The interval in whole seconds when it is a whole number of seconds that fits v2's
    /// 8-bit field.
    pub const fn whole_secs(self) -> Option<u8> {
        if self.0.is_multiple_of(100) && self.0 / 100 <= 255 {
            Some((self.0 / 100) as u8)
        } else {
            None
        }
    }

    /// The interval as a duration.
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        DisplayCentis(u64::from(self.0)).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrid_zero_is_not_a_vrid() {
        assert_eq!(Vrid::new(0), None);
        assert_eq!(Vrid::new(255).map(Vrid::get), Some(255));
    }

    /// RFC 3768 §5.3.7: the v2 interval is whole seconds in an 8-bit field.
    #[test]
    fn v2_interval_must_be_whole_seconds_up_to_255() {
        let ok = AdvertInterval::from_duration(Duration::from_secs(255), Version::V2);
        assert_eq!(ok.map(AdvertInterval::whole_secs), Ok(Some(255)));
        assert!(matches!(
            AdvertInterval::from_duration(Duration::from_millis(1500), Version::V2),
            Err(IntervalError::V2OutOfRange(_))
        ));
        assert!(matches!(
            AdvertInterval::from_duration(Duration::from_secs(256), Version::V2),
            Err(IntervalError::V2OutOfRange(_))
        ));
        assert_eq!(
            AdvertInterval::from_duration(Duration::ZERO, Version::V2),
            Err(IntervalError::Zero)
        );
    }

    /// RFC 9568 §5.2.7: the v3 interval is a 12-bit count of centiseconds.
    #[test]
    fn v3_interval_is_10ms_to_40_95s_in_10ms_steps() {
        let min = AdvertInterval::from_duration(Duration::from_millis(10), Version::V3);
        assert_eq!(min.map(AdvertInterval::centis), Ok(1));
        let max = AdvertInterval::from_duration(Duration::from_millis(40_950), Version::V3);
        assert_eq!(max.map(AdvertInterval::centis), Ok(4095));
        assert!(AdvertInterval::from_duration(Duration::from_millis(40_960), Version::V3).is_err());
        assert!(AdvertInterval::from_duration(Duration::from_millis(15), Version::V3).is_err());
        assert!(AdvertInterval::from_duration(Duration::from_secs(1000), Version::V3).is_err());
    }

    #[test]
    fn interval_errors_say_what_is_allowed() {
        let err = AdvertInterval::from_duration(Duration::from_millis(1500), Version::V2)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("whole seconds"), "{err}");
        assert!(err.contains("1500 ms"), "{err}");
    }
}
