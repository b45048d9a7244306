//! Replay of a recorded sequence of `(time, input)` through one instance, producing the
//! timed actions and transitions, so behaviour can be compared with a recording (of
//! another implementation, or of a previous version of this one).
//!
//! Timers fire at their exact deadlines between recorded inputs, as a perfect runtime
//! would fire them.

use crate::config::{ConfigError, InstanceConfig};
use crate::machine::{
    Action, Effects, Input, Instance, MemberId, ReceivedAdvert, TrackerId, Transition,
};
use crate::time::Time;
use crate::types::AdvertInterval;
use std::net::IpAddr;

/// An input that owns its data, so a script can be stored and replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptInput {
    Startup,
    Shutdown,
    Advert {
        src: IpAddr,
        priority: u8,
        interval: AdvertInterval,
        addresses: Vec<IpAddr>,
    },
    LinkDown,
    LinkUp,
    TrackerDown(TrackerId),
    TrackerUp(TrackerId),
    TrackerWeight(i32),
    PriorityOverride(Option<u8>),
    SyncGroupHold(Option<MemberId>),
    SyncGroupMaster(MemberId),
    AdminDisable,
    AdminEnable,
    ConfigChanged(Box<InstanceConfig>),
}

impl ScriptInput {
    /// An advert without an address list (the list is then not compared).
    pub fn advert(src: IpAddr, priority: u8, interval: AdvertInterval) -> Self {
        ScriptInput::Advert {
            src,
            priority,
            interval,
            addresses: Vec::new(),
        }
    }

    /// The engine input this stands for.
    pub fn as_input(&self) -> Input<'_> {
        match self {
            ScriptInput::Startup => Input::Startup,
            ScriptInput::Shutdown => Input::Shutdown,
            ScriptInput::Advert {
                src,
                priority,
                interval,
                addresses,
            } => Input::Advert(ReceivedAdvert {
                src: *src,
                priority: *priority,
                interval: *interval,
                addresses,
            }),
            ScriptInput::LinkDown => Input::LinkDown,
            ScriptInput::LinkUp => Input::LinkUp,
            ScriptInput::TrackerDown(id) => Input::TrackerDown(*id),
            ScriptInput::TrackerUp(id) => Input::TrackerUp(*id),
            ScriptInput::TrackerWeight(w) => Input::TrackerWeight(*w),
            ScriptInput::PriorityOverride(p) => Input::PriorityOverride(*p),
            ScriptInput::SyncGroupHold(m) => Input::SyncGroupHold(*m),
            ScriptInput::SyncGroupMaster(m) => Input::SyncGroupMaster(*m),
            ScriptInput::AdminDisable => Input::AdminDisable,
            ScriptInput::AdminEnable => Input::AdminEnable,
            ScriptInput::ConfigChanged(c) => Input::ConfigChanged(c),
        }
    }
}

/// Something the instance did, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Action { at: Time, action: Action },
    Transition(Transition),
}

impl Record {
    /// Whether this is timer bookkeeping rather than something visible on the wire or on
    /// the host; recordings of other implementations usually lack it.
    pub fn is_timer_bookkeeping(&self) -> bool {
        matches!(
            self,
            Record::Action {
                action: Action::ArmTimer { .. } | Action::CancelTimer { .. },
                ..
            }
        )
    }
}

/// Run `steps` (sorted by time) through a new instance of `config`, firing its timers at
/// their deadlines in between, and afterwards until `until`.
pub fn replay(
    config: InstanceConfig,
    steps: &[(Time, ScriptInput)],
    until: Time,
) -> Result<Vec<Record>, ConfigError> {
    let mut instance = Instance::new(config)?;
    let mut records = Vec::new();
    let mut fx = Effects::default();
    for (at, input) in steps {
        run_timers_until(&mut instance, *at, &mut fx, &mut records);
        fx.clear();
        instance.handle(input.as_input(), *at, &mut fx);
        collect(&fx, *at, &mut records);
    }
    run_timers_until(&mut instance, until, &mut fx, &mut records);
    Ok(records)
}

fn run_timers_until(instance: &mut Instance, until: Time, fx: &mut Effects, out: &mut Vec<Record>) {
    while let Some((timer, deadline)) = instance.next_deadline() {
        if deadline > until {
            break;
        }
        fx.clear();
        instance.handle(Input::TimerFired(timer), deadline, fx);
        collect(fx, deadline, out);
    }
}

fn collect(fx: &Effects, at: Time, out: &mut Vec<Record>) {
    out.extend(
        fx.actions
            .iter()
            .map(|&action| Record::Action { at, action }),
    );
    out.extend(fx.transitions.iter().copied().map(Record::Transition));
}
