//! The data plane's clock: maps the monotonic clock to the engine's [`Time`] and engine
//! times to wall-clock times for the API.

use havip_vrrp::Time;
use std::time::{Instant, SystemTime};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    origin_wall: SystemTime,
}

impl Clock {
    pub fn start() -> Self {
        Clock {
            origin: Instant::now(),
            origin_wall: SystemTime::now(),
        }
    }

    /// Now, on the engine's time line.
    pub fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    /// The monotonic instant of an engine time (for sleeping until it).
    pub fn instant(&self, t: Time) -> Instant {
        self.origin + t.since_origin()
    }

    /// The wall-clock time of an engine time (for the API and history).
    pub fn wall(&self, t: Time) -> SystemTime {
        self.origin_wall + t.since_origin()
    }
}
