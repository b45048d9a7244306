//! Skew_Time and Master_Down_Interval: the arithmetic that decides how fast a backup takes
//! over.
//!
//! Computed in nanoseconds, so the values are exact to the nanosecond (keepalived computes
//! in microseconds; a 10 ms interval at priority 30 gives 38.828125 ms, not 30 ms + 8 ms).

use crate::types::{AdvertInterval, Version};
use core::time::Duration;

const NANOS_PER_CENTI: u64 = 10_000_000;

/// Skew_Time for a router of `priority` whose master advertises every `master_interval`.
///
/// - v2 (RFC 3768 §6.1): `(256 − Priority) / 256` seconds, independent of the interval.
/// - v3 (RFC 9568 §6.1): `((256 − Priority) × Master_Adver_Interval) / 256` centiseconds.
///
/// A lower priority waits longer, so the best backup wins the race to become master.
pub fn skew_time(version: Version, priority: u8, master_interval: AdvertInterval) -> Duration {
    let weight = 256 - u64::from(priority);
    let nanos = match version {
        Version::V2 => weight * 1_000_000_000 / 256,
        Version::V3 => weight * u64::from(master_interval.centis()) * NANOS_PER_CENTI / 256,
    };
    Duration::from_nanos(nanos)
}

/// Master_Down_Interval: `3 × Master_Adver_Interval + Skew_Time` (RFC 9568 §6.1, RFC 3768
/// §6.1). After this long without an advertisement, a backup declares the master dead.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_interval: AdvertInterval,
) -> Duration {
    master_interval.as_duration() * 3 + skew_time(version, priority, master_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(n: u16) -> AdvertInterval {
        AdvertInterval::from_centis(n).unwrap()
    }

    /// RFC 3768 §6.1 Skew_Time = (256 − Priority)/256 s; the numbers keepalived shows in
    /// BASELINE.md for priority 30 at 1 s (883 ms skew, 3883 ms down interval).
    #[test]
    fn rfc3768_6_1_v2_skew_and_down_interval() {
        let skew = skew_time(Version::V2, 30, cs(100));
        assert_eq!(skew, Duration::from_nanos(882_812_500));
        let mdi = master_down_interval(Version::V2, 30, cs(100));
        assert_eq!(mdi, Duration::from_nanos(3_882_812_500));
        // v2 skew does not depend on the interval.
        assert_eq!(skew_time(Version::V2, 30, cs(25500)), skew);
    }

    /// RFC 9568 §6.1 Skew_Time = ((256 − Priority) × Master_Adver_Interval)/256: at 100 ms
    /// and 10 ms, priority 30 (BASELINE.md: 388 ms and 38.8 ms).
    #[test]
    fn rfc9568_6_1_v3_skew_scales_with_interval() {
        assert_eq!(
            master_down_interval(Version::V3, 30, cs(10)),
            Duration::from_nanos(388_281_250)
        );
        assert_eq!(
            master_down_interval(Version::V3, 30, cs(1)),
            Duration::from_nanos(38_828_125)
        );
        assert_eq!(
            skew_time(Version::V3, 255, cs(100)),
            Duration::from_nanos(3_906_250)
        );
    }

    /// RFC 9568 §6.1: a higher priority always gets a shorter skew, so the best backup
    /// takes over first.
    #[test]
    fn rfc9568_6_1_higher_priority_waits_less() {
        for interval in [1u16, 10, 100, 4095] {
            for p in 1u8..255 {
                assert!(
                    skew_time(Version::V3, p + 1, cs(interval))
                        < skew_time(Version::V3, p, cs(interval))
                );
            }
        }
    }

    /// RFC 9568 §6.1 / RFC 3768 §6.1: the arithmetic holds over every priority and every
    /// interval either version can carry, with no overflow and Skew_Time < interval.
    #[test]
    fn rfc9568_6_1_arithmetic_over_the_whole_range_does_not_overflow() {
        for p in 0u8..=255 {
            for c in 1u16..=AdvertInterval::V3_MAX_CENTIS {
                let i = cs(c);
                let skew = skew_time(Version::V3, p, i);
                assert!(skew <= i.as_duration());
                assert_eq!(
                    master_down_interval(Version::V3, p, i),
                    i.as_duration() * 3 + skew
                );
            }
            for s in 1u8..=255 {
                let i = AdvertInterval::from_secs(s).unwrap();
                let skew = skew_time(Version::V2, p, i);
                assert!(skew <= Duration::from_secs(1));
                assert_eq!(
                    master_down_interval(Version::V2, p, i),
                    i.as_duration() * 3 + skew
                );
            }
        }
    }
}
