//! States, and the record of every change between them with a reason a person can read.

use crate::machine::input::{MemberId, TrackerId};
use crate::time::Time;
use core::fmt;
use std::net::IpAddr;

/// The state of an instance: RFC 9568 §6.4's three, plus Fault and Disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Not started, or restarting (RFC 9568 §6.4.1).
    Initialize,
    /// Watching the master (RFC 9568 §6.4.2).
    Backup,
    /// Holding the virtual addresses and advertising (RFC 9568 §6.4.3).
    Master,
    /// Cannot serve: its interface is down or a tracker failed.
    Fault,
    /// Switched off by an operator.
    Disabled,
}

impl State {
    /// The name as operators and keepalived's notify scripts know it.
    pub const fn name(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Disabled => "DISABLED",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The instance started and is not the address owner: it listens first.
    Startup,
    /// The instance owns the virtual addresses (priority 255) and is master at once.
    AddressOwner,
    /// No advert within Master_Down_Interval.
    MasterDownTimerExpired { last_master: Option<IpAddr> },
    /// A master stepped down because a higher-priority advert arrived.
    HigherPriorityAdvert { from: IpAddr, priority: u8 },
    /// A master stepped down for an equal-priority router with a higher address.
    EqualPriorityHigherAddress { from: IpAddr, priority: u8 },
    /// A backup took over from a master with a lower priority (preemption).
    PreemptedLowerPriorityMaster { master: IpAddr, priority: u8 },
    /// The master announced it is stopping (priority 0); this backup took over after
    /// Skew_Time.
    PriorityZeroFrom { from: IpAddr },
    /// The interface went down.
    InterfaceDown,
    /// The interface came back up and nothing else holds the instance in Fault.
    InterfaceUp,
    /// A tracker without weight failed.
    TrackerFailed { tracker: TrackerId },
    /// Every failed tracker recovered.
    TrackersRecovered,
    /// Another member of the instance's sync group changed state: it `became` MASTER (so
    /// this one followed), or FAULT (so this one stepped down to BACKUP).
    SyncGroup { member: MemberId, became: State },
    /// An operator disabled the instance.
    AdminDisabled,
    /// An operator enabled it.
    AdminEnabled,
    /// The daemon or the instance is stopping.
    Shutdown,
    /// A configuration change needed the protocol to restart.
    ConfigChange,
}

impl Reason {
    /// A stable label for metrics and filters.
    pub const fn label(&self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::AddressOwner => "address_owner",
            Reason::MasterDownTimerExpired { .. } => "master_down_timer",
            Reason::HigherPriorityAdvert { .. } => "higher_priority_advert",
            Reason::EqualPriorityHigherAddress { .. } => "equal_priority_higher_address",
            Reason::PreemptedLowerPriorityMaster { .. } => "preempted_lower_priority",
            Reason::PriorityZeroFrom { .. } => "priority_zero",
            Reason::InterfaceDown => "interface_down",
            Reason::InterfaceUp => "interface_up",
            Reason::TrackerFailed { .. } => "tracker_failed",
            Reason::TrackersRecovered => "trackers_recovered",
            Reason::SyncGroup { .. } => "sync_group",
            Reason::AdminDisabled => "admin_disabled",
            Reason::AdminEnabled => "admin_enabled",
            Reason::Shutdown => "shutdown",
            Reason::ConfigChange => "config_change",
        }
    }

    /// How a sync group reason words the member's state: "became MASTER", "is in FAULT".
    pub const fn sync_group_verb(became: State) -> &'static str {
        match became {
            State::Master => "became MASTER",
            State::Fault => "is in FAULT",
            State::Backup => "became BACKUP",
            State::Initialize => "is initializing",
            State::Disabled => "is disabled",
        }
    }

    /// The address of the other router the reason names, if any.
    pub const fn peer(&self) -> Option<IpAddr> {
        match *self {
            Reason::MasterDownTimerExpired { last_master } => last_master,
            Reason::HigherPriorityAdvert { from, .. }
            | Reason::EqualPriorityHigherAddress { from, .. }
            | Reason::PriorityZeroFrom { from } => Some(from),
            Reason::PreemptedLowerPriorityMaster { master, .. } => Some(master),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::AddressOwner => f.write_str("address owner (priority 255)"),
            Reason::MasterDownTimerExpired {
                last_master: Some(m),
            } => write!(f, "master-down timer expired (last master seen: {m})"),
            Reason::MasterDownTimerExpired { last_master: None } => {
                f.write_str("master-down timer expired (no master seen)")
            }
            Reason::HigherPriorityAdvert { from, priority } => {
                write!(
                    f,
                    "higher-priority advert from {from} (priority {priority})"
                )
            }
            Reason::EqualPriorityHigherAddress { from, priority } => write!(
                f,
                "equal-priority advert from higher address {from} (priority {priority})"
            ),
            Reason::PreemptedLowerPriorityMaster { master, priority } => {
                write!(
                    f,
                    "preempted lower-priority master {master} (priority {priority})"
                )
            }
            Reason::PriorityZeroFrom { from } => {
                write!(f, "priority-0 advert from {from} (master stopping)")
            }
            Reason::InterfaceDown => f.write_str("interface down"),
            Reason::InterfaceUp => f.write_str("interface up"),
            Reason::TrackerFailed { tracker } => write!(f, "{tracker} failed"),
            Reason::TrackersRecovered => f.write_str("trackers recovered"),
            Reason::SyncGroup { member, became } => {
                write!(
                    f,
                    "sync group {member} {}",
                    Reason::sync_group_verb(*became)
                )
            }
            Reason::AdminDisabled => f.write_str("disabled by an operator"),
            Reason::AdminEnabled => f.write_str("enabled by an operator"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::ConfigChange => f.write_str("configuration change"),
        }
    }
}

/// One change of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: Reason,
    pub at: Time,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} → {} at {}: {}",
            self.from, self.to, self.at, self.reason
        )
    }
}
