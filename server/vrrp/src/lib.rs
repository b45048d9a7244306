//! havip-vrrp: everything VRRP decides, and nothing that touches the outside world.
//!
//! - [`packet`]: decode and encode VRRPv2 (RFC 3768) and VRRPv3 (RFC 9568) advertisements
//!   over IPv4 and IPv6, with typed errors an operator can read and a metric can count.
//! - [`timing`]: Skew_Time and Master_Down_Interval.
//! - [`machine`]: the per-instance state machine. It is fed `(input, now)` and answers with
//!   [`Action`]s for the runtime to carry out and a [`Transition`] for every change of state.
//!
//! The crate has no clock, no sockets and no async runtime; the runtime owns all of those.
//! That is what lets every RFC rule be a plain unit test, and a recorded sequence of
//! `(time, input)` be replayed to compare actions (see [`conformance`]).

pub mod config;
pub mod conformance;
pub mod machine;
pub mod packet;
pub mod time;
pub mod timing;
pub mod types;

pub use config::{ConfigError, GarpConfig, InstanceConfig};
pub use machine::{
    Action, AdvertVerdict, DropReason, Effects, Input, Instance, MemberId, Reason, ReceivedAdvert,
    RivalMaster, RivalOutcome, State, Status, Timer, TrackerId, Transition,
};
pub use time::Time;
pub use types::{AdvertInterval, Family, Version, Vrid, priority};
