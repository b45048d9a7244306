//! What can happen to an instance: the inputs of the state machine.

use crate::config::InstanceConfig;
use crate::machine::effects::Timer;
use crate::types::AdvertInterval;
use core::fmt;
use std::net::IpAddr;

/// A tracker whose failure puts the instance in FAULT (a tracker without a weight). The
/// runtime numbers its trackers and maps the id back to a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackerId(pub u32);

impl fmt::Display for TrackerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tracker #{}", self.0)
    }
}

/// Another instance of this instance's sync group (keepalived's vrrp_sync_group). The
/// runtime numbers the members and maps the id back to a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member #{}", self.0)
    }
}

/// A decoded advert as the state machine needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedAdvert<'a> {
    /// The IP source of the advert: the sender's primary address.
    pub src: IpAddr,
    pub priority: u8,
    /// The interval the sender advertises (v3: what a backup adopts; v2: must equal ours).
    pub interval: AdvertInterval,
    /// The virtual addresses the sender lists; compared with ours to flag misconfiguration.
    pub addresses: &'a [IpAddr],
}

/// One event for the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// The instance starts (RFC 9568 §6.4.1 Startup event).
    Startup,
    /// The instance stops (RFC 9568 §6.4 Shutdown event).
    Shutdown,
    /// A valid advert for this VRID arrived.
    Advert(ReceivedAdvert<'a>),
    /// A timer the engine armed reached its deadline. Stale or early firings are ignored,
    /// so the runtime need not cancel timers precisely.
    TimerFired(Timer),
    /// The instance's interface lost its link or went down.
    LinkDown,
    /// The instance's interface is up again.
    LinkUp,
    /// A tracker without a weight failed.
    TrackerDown(TrackerId),
    /// That tracker recovered.
    TrackerUp(TrackerId),
    /// The sum of the weights of the weighted trackers changed; the effective priority is
    /// the configured one plus this, kept within 1–254.
    TrackerWeight(i32),
    /// An operator overrides the priority (demote/promote), or lifts the override.
    PriorityOverride(Option<u8>),
    /// Sync group: another member is in FAULT (`Some`, naming it), so this one must not be
    /// master: a master steps down to BACKUP sending priority 0, and a backup does not take
    /// over when its Master_Down_Timer fires. `None` lifts the hold once no other member
    /// is in FAULT. An address owner is not held: it is master by definition (RFC 9568
    /// §6.4.1) and stepping down would not free its addresses.
    SyncGroupHold(Option<MemberId>),
    /// Sync group: another member became MASTER, so this one follows at once if it is a
    /// backup and not held.
    SyncGroupMaster(MemberId),
    /// An operator disables the instance.
    AdminDisable,
    /// An operator enables it again.
    AdminEnable,
    /// The configuration changed. What can change live changes live; a change of identity
    /// (VRID, version, family) or of address ownership restarts the protocol.
    ConfigChanged(&'a InstanceConfig),
}
