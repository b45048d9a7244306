//! What the state machine asks of the runtime, and where it writes it.

use crate::machine::transition::Transition;
use crate::time::Time;
use crate::types::AdvertInterval;
use std::net::IpAddr;
use std::time::Duration;

/// The timers an instance uses. Each has at most one deadline at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// RFC 9568 Master_Down_Timer (backup): no advert for this long → the master is gone.
    MasterDown,
    /// RFC 9568 Adver_Timer (master): time to send the next advert.
    Advert,
    /// The end of a backup's preempt delay.
    PreemptDelay,
    /// The second gratuitous ARP / NA burst after becoming master.
    GarpDelay,
    /// The periodic gratuitous ARP / NA refresh while master.
    GarpRefresh,
}

impl Timer {
    pub(crate) const COUNT: usize = 5;
    pub(crate) const ALL: [Timer; Timer::COUNT] = [
        Timer::MasterDown,
        Timer::Advert,
        Timer::PreemptDelay,
        Timer::GarpDelay,
        Timer::GarpRefresh,
    ];

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// One thing for the runtime to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority (the effective priority, or 0 when stepping down).
    SendAdvert { priority: u8 },
    /// Make the interface carry exactly the instance's virtual addresses. `accept_traffic`
    /// says whether packets addressed to them may be accepted (owner or Accept_Mode).
    AddVips { accept_traffic: bool },
    /// Make the interface carry none of the instance's virtual addresses.
    RemoveVips,
    /// Send `count` gratuitous ARPs (IPv4) / unsolicited neighbour advertisements (IPv6) for
    /// every virtual address, paced and rate-limited by the runtime.
    SendGratuitous { count: u32 },
    /// Fire [`Timer`] at `deadline` (replacing any earlier deadline of that timer).
    ArmTimer { timer: Timer, deadline: Time },
    /// That timer is no longer wanted.
    CancelTimer { timer: Timer },
}

/// Why an advert was dropped as bad by the state machine (the codec drops the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// RFC 3768 §7.1: a v2 advert whose interval differs from ours is discarded.
    IntervalMismatch {
        received: AdvertInterval,
        expected: AdvertInterval,
    },
}

impl DropReason {
    /// A stable label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            DropReason::IntervalMismatch { .. } => "interval_mismatch",
        }
    }
}

/// What became of a received advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdvertVerdict {
    /// It counted: a master was heard, or a rival made us step down or speak up.
    Accepted,
    /// It was valid but changes nothing (lower priority in a preempting backup, or the
    /// instance is not running).
    Ignored,
    /// It was bad and was discarded.
    Dropped(DropReason),
}

/// What a master did on hearing another router that also claims to be master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RivalOutcome {
    /// The other router has a lower priority (or an equal one and a lower address): this
    /// one stays master, answers with an advert and re-announces its addresses.
    StayedMaster,
    /// The other router has a higher priority (or an equal one and a higher address): this
    /// one steps down to BACKUP.
    SteppedDown,
}

/// Two masters at once (RFC 9568 §6.4.3: a master received a non-zero advert from another
/// router): a partition healed, two routers started at once, or a preemption seen from
/// the side that is preempted. Reported once per episode, not once per advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RivalMaster {
    /// The other master's address (the IP source of its advert).
    pub from: IpAddr,
    /// The priority it advertised.
    pub priority: u8,
    /// This instance's effective priority when it heard it.
    pub our_priority: u8,
    pub outcome: RivalOutcome,
}

/// Everything one call of [`crate::Instance::handle`] produced. The runtime keeps one and
/// clears it between calls, so steady-state handling allocates nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub actions: Vec<Action>,
    pub transitions: Vec<Transition>,
    /// Set when the input was an advert.
    pub verdict: Option<AdvertVerdict>,
    /// Set when a valid advert listed other virtual addresses than ours: the routers of
    /// this VRID are configured differently.
    pub address_mismatch_from: Option<IpAddr>,
    /// Set when a master heard another master and a new dual-master episode began.
    pub rival_master: Option<RivalMaster>,
    /// Set when the Master_Down_Timer fired this late, after a stall of this router, and
    /// was started again instead of a takeover.
    pub master_down_deferred: Option<Duration>,
}

impl Effects {
    /// Empty, ready for the next call.
    pub fn clear(&mut self) {
        self.actions.clear();
        self.transitions.clear();
        self.verdict = None;
        self.address_mismatch_from = None;
        self.rival_master = None;
        self.master_down_deferred = None;
    }

    /// Whether nothing at all happened.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
            && self.transitions.is_empty()
            && self.verdict.is_none()
            && self.address_mismatch_from.is_none()
            && self.rival_master.is_none()
            && self.master_down_deferred.is_none()
    }
}
