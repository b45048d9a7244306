//! Monotonic time as the engine sees it: a timestamp the caller supplies with every input.
//!
//! The engine has no clock. The runtime picks an origin (its start), converts its monotonic
//! clock to [`Time`] and passes it in; tests and conformance scripts pass whatever times
//! they like. Deadlines the engine asks for are absolute [`Time`]s on the same scale.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the caller's monotonic time line, as the distance from its origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(Duration);

impl Time {
    /// The origin of the time line.
    pub const ZERO: Time = Time(Duration::ZERO);

    /// The time `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Time(since_origin)
    }

    /// The time `ms` milliseconds after the origin (handy in tests and scripts).
    pub const fn from_millis(ms: u64) -> Self {
        Time(Duration::from_millis(ms))
    }

    /// Distance from the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this is, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    /// Saturates instead of overflowing: a deadline that far away never fires, which is
    /// what an overflowing deadline would have meant anyway.
    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(rhs))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    /// Saturates at the origin.
    fn sub(self, rhs: Duration) -> Time {
        Time(self.0.saturating_sub(rhs))
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, rhs: Time) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(f, "t+{}.{:06}s", d.as_secs(), d.subsec_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_saturates_instead_of_panicking() {
        let far = Time::from_duration(Duration::MAX);
        assert_eq!(far + Duration::from_secs(1), far);
    }

    #[test]
    fn subtraction_never_goes_negative() {
        assert_eq!(Time::from_millis(5) - Time::from_millis(9), Duration::ZERO);
        assert_eq!(
            Time::from_millis(9) - Time::from_millis(5),
            Duration::from_millis(4)
        );
    }
}
