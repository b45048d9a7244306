//! Conversions between the three forms of a time in the store: `SystemTime` in the API,
//! unix microseconds in SQLite columns, `google.protobuf.Timestamp` inside messages.

use pbjson_types::Timestamp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix microseconds, saturating far outside any real clock's range.
pub(crate) fn to_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

pub(crate) fn from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    let t = if micros >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    // Only reachable on a platform whose SystemTime cannot span ±292,000 years.
    t.unwrap_or(UNIX_EPOCH)
}

pub(crate) fn to_timestamp(t: SystemTime) -> Timestamp {
    let (seconds, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            // Timestamps count nanos forwards even before the epoch.
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    Timestamp {
        seconds,
        nanos: i32::try_from(nanos).unwrap_or(0),
    }
}

/// Unix microseconds of a Timestamp, saturating; negative nanos (invalid) count as zero.
pub(crate) fn timestamp_micros(ts: &Timestamp) -> i64 {
    let nanos = i64::from(ts.nanos.clamp(0, 999_999_999));
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(nanos / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_microsecond_precision() {
        for micros in [0, 1, 1_700_000_000_123_456, -1, -1_500_000] {
            let t = from_micros(micros);
            assert_eq!(to_micros(t), micros);
            assert_eq!(timestamp_micros(&to_timestamp(t)), micros);
        }
        let ts = to_timestamp(from_micros(-1_500_000));
        assert_eq!((ts.seconds, ts.nanos), (-2, 500_000_000));
    }
}
