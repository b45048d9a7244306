//! The per-instance VRRP state machine (RFC 9568 §6, RFC 3768 §6 for v2), plus the Fault
//! and Disabled states an operator needs.
//!
//! [`Instance::handle`] takes one [`Input`] and the current time and writes what follows into
//! [`Effects`]: [`Action`]s for the runtime, at most a few [`Transition`]s, and a verdict on a
//! received advert. Nothing here blocks or allocates per advert.

mod effects;
mod input;
mod instance;
mod transition;

pub use effects::{Action, AdvertVerdict, DropReason, Effects, RivalMaster, RivalOutcome, Timer};
pub use input::{Input, MemberId, ReceivedAdvert, TrackerId};
pub use instance::{Instance, Status};
pub use transition::{Reason, State, Transition};

#[cfg(test)]
mod tests;
