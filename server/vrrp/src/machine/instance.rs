//! One virtual router: its state, its timers and the RFC rules that move it.

use crate::config::{ConfigError, InstanceConfig};
use crate::machine::effects::{
    Action, AdvertVerdict, DropReason, Effects, RivalMaster, RivalOutcome, Timer,
};
use crate::machine::input::{Input, MemberId, ReceivedAdvert, TrackerId};
use crate::machine::transition::{Reason, State, Transition};
use crate::time::Time;
use crate::timing;
use crate::types::{AdvertInterval, Version, priority};
use core::time::Duration;
use std::net::IpAddr;

/// How many groups masters' adverts are spread over within an interval, by VRID: one
/// burst of every instance's adverts per interval is cheapest to wake for, but a burst of
/// 255 takes the host a millisecond and more to deliver, which shows as jitter; four keep
/// bursts to about 64 adverts.
pub const ADVERT_PHASES: u8 = 4;

/// Another router as last heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Peer {
    addr: IpAddr,
    priority: u8,
}

/// What the running Master_Down_Timer will mean when it fires, so the transition can say
/// why: silence, a stopping master, or a lower-priority master being preempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takeover {
    Silence,
    /// Silence that has already been measured again after a stall of our own (see
    /// [`STALL_LATENESS_MIN`]): the next firing takes over however late it is. Whatever
    /// starts a new silence sets [`Takeover::Silence`] again.
    SilenceAfterStall,
    PriorityZero(IpAddr),
    Preempt(Peer),
}

/// What another master's advert means to a master (see `Instance::note_rival`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rival {
    /// The master this one just preempted, still heard: expected, not news.
    Expected,
    /// The first advert of a dual-master episode.
    NewEpisode,
    /// Another advert of the episode already reported.
    SameEpisode,
}

/// A snapshot of an instance for status queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub effective_priority: u8,
    /// The current master's address: ours when master, the last accepted sender's when
    /// backup.
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    /// The interval the master advertises (v3 backups adopt it).
    pub master_adver_interval: AdvertInterval,
    /// When the current state was entered.
    pub since: Time,
    pub last_reason: Option<Reason>,
}

/// The state machine of one VRRP instance.
#[derive(Clone, Debug)]
pub struct Instance {
    config: InstanceConfig,
    /// `config.advertised_addresses()`, kept so adverts need no allocation.
    advertised: Vec<IpAddr>,
    state: State,
    /// Between Startup and Shutdown.
    started: bool,
    admin_disabled: bool,
    link_up: bool,
    /// Sorted; any entry holds the instance in Fault.
    failed_trackers: Vec<TrackerId>,
    tracker_weight: i32,
    priority_override: Option<u8>,
    /// Set while another member of the sync group is in FAULT (the one named).
    sync_hold: Option<MemberId>,
    effective_priority: u8,
    master_adver_interval: AdvertInterval,
    master: Option<Peer>,
    takeover: Takeover,
    preempt_delay_passed: bool,
    deadlines: [Option<Time>; Timer::COUNT],
    since: Time,
    last_reason: Option<Reason>,
    /// While master: when another master was last heard, i.e. the dual-master episode in
    /// progress; `None` when there is none.
    rival_heard: Option<Time>,
    /// While master: the lower-priority master this one preempted, and when. Its adverts
    /// that were already on the way, and its parting advert, are expected: not a dual
    /// master worth an event.
    preempted: Option<(IpAddr, Time)>,
    /// While master: when it last answered another router's advert at once (RFC 9568
    /// §6.4.3), a lower-priority one [0] and a priority-0 one [1]. Limited to one answer of
    /// each kind per Advertisement_Interval, so a flood of valid adverts (any host on the
    /// link can send them) cannot make it send a flood; kept apart so that a master
    /// leaving just after a lower-priority advert was answered is still answered at once.
    last_answer: [Option<Time>; 2],
}

/// A Master_Down_Timer that fires later than this, or than an eighth of the master's
/// interval if that is longer, fired after this router itself was stalled (a paused VM, a
/// host starved of CPU). The silence it measured is then partly our own: a master that
/// was stalled with us (one host, one hypervisor) has not had the chance to advertise, and
/// the kernel may still hold adverts from one elsewhere. So the timer is started again
/// from the moment we run, once per silence: the master is judged on a Master_Down_Interval
/// we actually watched. This goes beyond RFC 9568 §6.4.2, which takes over when the timer
/// fires; it only ever delays a takeover, by at most one Master_Down_Interval, and only
/// after a stall, so a master that is really gone is still replaced.
pub const STALL_LATENESS_MIN: Duration = Duration::from_millis(2);

impl Instance {
    /// A new instance in Initialize. Nothing happens until [`Input::Startup`]. The link is
    /// assumed up; send [`Input::LinkDown`] first if it is not.
    pub fn new(config: InstanceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let advertised = config.advertised_addresses();
        let effective_priority = config.priority;
        let master_adver_interval = config.advert_interval;
        Ok(Instance {
            config,
            advertised,
            state: State::Initialize,
            started: false,
            admin_disabled: false,
            link_up: true,
            failed_trackers: Vec::new(),
            tracker_weight: 0,
            priority_override: None,
            sync_hold: None,
            effective_priority,
            master_adver_interval,
            master: None,
            takeover: Takeover::Silence,
            preempt_delay_passed: false,
            deadlines: [None; Timer::COUNT],
            since: Time::ZERO,
            last_reason: None,
            rival_heard: None,
            preempted: None,
            last_answer: [None; 2],
        })
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// The addresses adverts carry and the master installs (see
    /// [`InstanceConfig::advertised_addresses`]).
    pub fn advertised_addresses(&self) -> &[IpAddr] {
        &self.advertised
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    pub fn status(&self) -> Status {
        let master = match self.state {
            State::Master => Some(Peer {
                addr: self.config.primary_address,
                priority: self.effective_priority,
            }),
            State::Backup => self.master,
            _ => None,
        };
        Status {
            state: self.state,
            effective_priority: self.effective_priority,
            master: master.map(|p| p.addr),
            master_priority: master.map(|p| p.priority),
            master_adver_interval: self.master_adver_interval,
            since: self.since,
            last_reason: self.last_reason,
        }
    }

    /// Skew_Time for the current priority and master interval.
    pub fn skew_time(&self) -> Duration {
        timing::skew_time(
            self.config.version,
            self.effective_priority,
            self.master_adver_interval,
        )
    }

    /// Master_Down_Interval for the current priority and master interval.
    pub fn master_down_interval(&self) -> Duration {
        timing::master_down_interval(
            self.config.version,
            self.effective_priority,
            self.master_adver_interval,
        )
    }

    /// How late a Master_Down_Timer may fire before the silence it measured is put down
    /// to a stall of our own; see [`STALL_LATENESS_MIN`].
    fn stall_lateness(&self) -> Duration {
        (self.master_adver_interval.as_duration() / 8).max(STALL_LATENESS_MIN)
    }

    /// The deadline of `timer`, if armed.
    pub fn deadline(&self, timer: Timer) -> Option<Time> {
        self.deadlines[timer.index()]
    }

    /// The earliest armed timer: what the runtime's timer wheel waits for.
    pub fn next_deadline(&self) -> Option<(Timer, Time)> {
        Timer::ALL
            .iter()
            .filter_map(|&t| self.deadline(t).map(|d| (t, d)))
            .min_by_key(|&(t, d)| (d, t))
    }

    /// Fire, in deadline order, every timer due at `now`.
    pub fn fire_due_timers(&mut self, now: Time, fx: &mut Effects) {
        while let Some((timer, deadline)) = self.next_deadline() {
            if deadline > now {
                break;
            }
            self.handle(Input::TimerFired(timer), now, fx);
        }
    }

    /// Feed one input at time `now`; what follows is appended to `fx`.
    pub fn handle(&mut self, input: Input<'_>, now: Time, fx: &mut Effects) {
        match input {
            Input::Startup => self.on_startup(now, fx),
            Input::Shutdown => self.on_shutdown(now, fx),
            Input::Advert(advert) => self.on_advert(&advert, now, fx),
            Input::TimerFired(timer) => self.on_timer(timer, now, fx),
            Input::LinkDown => self.on_link_down(now, fx),
            Input::LinkUp => self.on_link_up(now, fx),
            Input::TrackerDown(id) => self.on_tracker_down(id, now, fx),
            Input::TrackerUp(id) => self.on_tracker_up(id, now, fx),
            Input::TrackerWeight(weight) => {
                self.tracker_weight = weight;
                self.on_priority_inputs_changed(now, fx);
            }
            Input::PriorityOverride(value) => {
                self.priority_override = value;
                self.on_priority_inputs_changed(now, fx);
            }
            Input::SyncGroupHold(member) => self.on_sync_group_hold(member, now, fx),
            Input::SyncGroupMaster(member) => self.on_sync_group_master(member, now, fx),
            Input::AdminDisable => self.on_admin_disable(now, fx),
            Input::AdminEnable => self.on_admin_enable(now, fx),
            Input::ConfigChanged(config) => self.on_config_changed(config, now, fx),
        }
    }

    // ----- lifecycle ---------------------------------------------------------------------

    fn on_startup(&mut self, now: Time, fx: &mut Effects) {
        if self.started {
            return;
        }
        self.started = true;
        if self.state == State::Initialize {
            self.start(now, fx);
        }
    }

    /// RFC 9568 §6.4.1: leave Initialize. Fault and Disabled take precedence over the
    /// protocol, since an instance that cannot or must not serve should not compete.
    fn start(&mut self, now: Time, fx: &mut Effects) {
        if self.admin_disabled {
            self.transition(State::Disabled, Reason::AdminDisabled, now, fx);
        } else if !self.link_up {
            self.transition(State::Fault, Reason::InterfaceDown, now, fx);
        } else if let Some(&tracker) = self.failed_trackers.first() {
            self.transition(State::Fault, Reason::TrackerFailed { tracker }, now, fx);
        } else if self.config.is_address_owner() {
            self.become_master(Reason::AddressOwner, now, fx);
        } else {
            self.become_backup(Reason::Startup, self.config.advert_interval, now, fx);
        }
    }

    /// RFC 9568 §6.4.2 / §6.4.3 Shutdown: a master sends priority 0 so its backups take
    /// over after Skew_Time instead of Master_Down_Interval.
    fn on_shutdown(&mut self, now: Time, fx: &mut Effects) {
        if !self.started {
            return;
        }
        self.started = false;
        if self.state != State::Initialize {
            self.leave_running_state(true, fx);
            self.transition(State::Initialize, Reason::Shutdown, now, fx);
        }
    }

    /// Stop taking part in the protocol: give up the addresses and every timer.
    /// `announce` says whether a master can still tell its backups (not when its link is
    /// down).
    fn leave_running_state(&mut self, announce: bool, fx: &mut Effects) {
        if self.state == State::Master {
            self.give_up_mastership(announce, self.config.is_address_owner(), fx);
        }
        self.forget_protocol_state(fx);
    }

    fn give_up_mastership(&mut self, announce: bool, owner: bool, fx: &mut Effects) {
        if announce {
            fx.actions.push(Action::SendAdvert {
                priority: priority::SHUTDOWN,
            });
        }
        // The owner's addresses are the interface's own; they are never removed.
        if !owner {
            fx.actions.push(Action::RemoveVips);
        }
    }

    fn forget_protocol_state(&mut self, fx: &mut Effects) {
        for timer in Timer::ALL {
            self.cancel(timer, fx);
        }
        self.master = None;
        self.takeover = Takeover::Silence;
        self.preempt_delay_passed = false;
    }

    fn become_master(&mut self, reason: Reason, now: Time, fx: &mut Effects) {
        self.cancel(Timer::MasterDown, fx);
        self.cancel(Timer::PreemptDelay, fx);
        let owner = self.config.is_address_owner();
        // RFC 9568 §6.4.3: the owner, or Accept_Mode, lets the master accept packets
        // addressed to the virtual addresses.
        if !owner {
            fx.actions.push(Action::AddVips {
                accept_traffic: self.config.accept_mode,
            });
        }
        fx.actions.push(Action::SendAdvert {
            priority: self.effective_priority,
        });
        fx.actions.push(Action::SendGratuitous {
            count: self.config.garp.repeat,
        });
        self.arm(Timer::Advert, self.next_advert_slot(now), fx);
        if let Some(delay) = self.config.garp.delay {
            self.arm(Timer::GarpDelay, now + delay, fx);
        }
        if let Some(refresh) = self.config.garp.refresh {
            self.arm(Timer::GarpRefresh, now + refresh, fx);
        }
        self.master = None;
        self.takeover = Takeover::Silence;
        self.preempt_delay_passed = false;
        self.rival_heard = None;
        self.last_answer = [None; 2];
        self.preempted = match reason {
            Reason::PreemptedLowerPriorityMaster { master, .. } => Some((master, now)),
            _ => None,
        };
        self.transition(State::Master, reason, now, fx);
    }

    fn become_backup(
        &mut self,
        reason: Reason,
        master_interval: AdvertInterval,
        now: Time,
        fx: &mut Effects,
    ) {
        for timer in [Timer::Advert, Timer::GarpDelay, Timer::GarpRefresh] {
            self.cancel(timer, fx);
        }
        self.master_adver_interval = master_interval;
        self.arm(Timer::MasterDown, now + self.master_down_interval(), fx);
        self.transition(State::Backup, reason, now, fx);
    }

    // ----- adverts -----------------------------------------------------------------------

    fn on_advert(&mut self, advert: &ReceivedAdvert<'_>, now: Time, fx: &mut Effects) {
        let running = matches!(self.state, State::Backup | State::Master);
        // Our own advert looped back carries no news.
        if !running || advert.src == self.config.primary_address {
            fx.verdict = Some(AdvertVerdict::Ignored);
            return;
        }
        // RFC 3768 §7.1: a v2 router MUST discard an advert whose interval differs from
        // the configured one; v3 instead adopts the master's (RFC 9568 §6.4.2).
        if self.config.version == Version::V2 && advert.interval != self.config.advert_interval {
            fx.verdict = Some(AdvertVerdict::Dropped(DropReason::IntervalMismatch {
                received: advert.interval,
                expected: self.config.advert_interval,
            }));
            return;
        }
        if !advert.addresses.is_empty() && !self.lists_same_addresses(advert.addresses) {
            fx.address_mismatch_from = Some(advert.src);
        }
        let verdict = match self.state {
            State::Master => self.master_receives(advert, now, fx),
            _ => self.backup_receives(advert, now, fx),
        };
        fx.verdict = Some(verdict);
    }

    /// RFC 9568 §6.4.2 (RFC 3768 §6.4.2): a backup hears an advert.
    fn backup_receives(
        &mut self,
        advert: &ReceivedAdvert<'_>,
        now: Time,
        fx: &mut Effects,
    ) -> AdvertVerdict {
        let sender = Peer {
            addr: advert.src,
            priority: advert.priority,
        };
        if advert.priority == priority::SHUTDOWN {
            // The master is stopping: take over after Skew_Time, not Master_Down_Interval.
            self.takeover = Takeover::PriorityZero(advert.src);
            self.arm(Timer::MasterDown, now + self.skew_time(), fx);
            return AdvertVerdict::Accepted;
        }
        let accept = !self.config.preempt
            || advert.priority >= self.effective_priority
            || self.within_preempt_delay(now, fx);
        if !accept {
            // Preemption: let the Master_Down_Timer run out and take over.
            self.takeover = Takeover::Preempt(sender);
            return AdvertVerdict::Ignored;
        }
        if self.config.version == Version::V3 {
            self.master_adver_interval = advert.interval;
        }
        self.master = Some(sender);
        self.takeover = Takeover::Silence;
        self.arm(Timer::MasterDown, now + self.master_down_interval(), fx);
        AdvertVerdict::Accepted
    }

    /// Whether a lower-priority master is still tolerated: the preempt delay starts when
    /// the first one is heard and ends when [`Timer::PreemptDelay`] fires.
    fn within_preempt_delay(&mut self, now: Time, fx: &mut Effects) -> bool {
        if self.config.preempt_delay.is_zero() || self.preempt_delay_passed {
            return false;
        }
        if self.deadline(Timer::PreemptDelay).is_none() {
            self.arm(Timer::PreemptDelay, now + self.config.preempt_delay, fx);
        }
        true
    }

    /// RFC 9568 §6.4.3 (RFC 3768 §6.4.3): a master hears another router.
    fn master_receives(
        &mut self,
        advert: &ReceivedAdvert<'_>,
        now: Time,
        fx: &mut Effects,
    ) -> AdvertVerdict {
        let ours = self.effective_priority;
        if advert.priority == priority::SHUTDOWN {
            // Another router is leaving; make sure everyone knows who the master is.
            self.answer(true, now, fx);
            return AdvertVerdict::Accepted;
        }
        // Only a master sends non-zero adverts: the sender believes it is master too.
        let rival = self.note_rival(advert.src, now);
        let higher = advert.priority > ours;
        let wins_tie = advert.priority == ours && advert.src > self.config.primary_address;
        let report = |outcome| RivalMaster {
            from: advert.src,
            priority: advert.priority,
            our_priority: ours,
            outcome,
        };
        if higher || wins_tie {
            let reason = if higher {
                Reason::HigherPriorityAdvert {
                    from: advert.src,
                    priority: advert.priority,
                }
            } else {
                Reason::EqualPriorityHigherAddress {
                    from: advert.src,
                    priority: advert.priority,
                }
            };
            // Stepping down ends the episode, so this is reported even within one: at
            // most once per mastership.
            if rival != Rival::Expected {
                fx.rival_master = Some(report(RivalOutcome::SteppedDown));
            }
            // Ours, not the RFC's: one parting advert at our own priority before we go
            // quiet. The winner then hears that it was contested even when its advert
            // reached us first (a healed partition), and re-announces the addresses to
            // the clients that followed us; to anyone else it is an ordinary advert.
            fx.actions.push(Action::SendAdvert { priority: ours });
            self.give_up_mastership(false, self.config.is_address_owner(), fx);
            let interval = match self.config.version {
                Version::V3 => advert.interval,
                Version::V2 => self.config.advert_interval,
            };
            self.become_backup(reason, interval, now, fx);
            self.master = Some(Peer {
                addr: advert.src,
                priority: advert.priority,
            });
            return AdvertVerdict::Accepted;
        }
        if rival == Rival::NewEpisode {
            fx.rival_master = Some(report(RivalOutcome::StayedMaster));
            // The clients may have followed the other master while the two could not
            // hear each other (keepalived's garp_lower_prio_repeat): win them back.
            fx.actions.push(Action::SendGratuitous {
                count: self.config.garp.repeat,
            });
        }
        // RFC 9568 §6.4.3: a lower-priority advert gets an immediate advert in reply, to
        // assert mastership and correct learning bridges, instead of waiting for the timer.
        self.answer(false, now, fx);
        AdvertVerdict::Ignored
    }

    /// What an advert from another master at `now` means. One dual-master episode lasts
    /// while such adverts keep coming less than Master_Down_Interval apart, and ends when
    /// this instance leaves MASTER. Adverts from the master this one just preempted
    /// (within Master_Down_Interval of the preemption) are expected.
    fn note_rival(&mut self, from: IpAddr, now: Time) -> Rival {
        let window = self.master_down_interval();
        if let Some((preempted, at)) = self.preempted
            && preempted == from
            && now.saturating_since(at) <= window
        {
            return Rival::Expected;
        }
        let new = self
            .rival_heard
            .is_none_or(|last| now.saturating_since(last) > window);
        self.rival_heard = Some(now);
        if new {
            Rival::NewEpisode
        } else {
            Rival::SameEpisode
        }
    }

    /// RFC 9568 §6.4.3: answer another router's advert with one of ours at once and reset
    /// the Adver_Timer, at most once per Advertisement_Interval (ours, not the RFC's: a
    /// flood of valid adverts must not turn into a flood of ours; the periodic adverts
    /// still go out).
    fn answer(&mut self, to_priority_zero: bool, now: Time, fx: &mut Effects) {
        let interval = self.config.advert_interval.as_duration();
        let last = &mut self.last_answer[usize::from(to_priority_zero)];
        if last.is_some_and(|last| now.saturating_since(last) < interval) {
            return;
        }
        *last = Some(now);
        self.send_advert_now(now, fx);
    }

    fn send_advert_now(&mut self, now: Time, fx: &mut Effects) {
        fx.actions.push(Action::SendAdvert {
            priority: self.effective_priority,
        });
        self.arm(Timer::Advert, self.next_advert_slot(now), fx);
    }

    fn lists_same_addresses(&self, theirs: &[IpAddr]) -> bool {
        theirs.len() == self.advertised.len() && theirs.iter().all(|a| self.advertised.contains(a))
    }

    // ----- timers ------------------------------------------------------------------------

    fn on_timer(&mut self, timer: Timer, now: Time, fx: &mut Effects) {
        let slot = &mut self.deadlines[timer.index()];
        let Some(deadline) = *slot else { return };
        if now < deadline {
            return;
        }
        *slot = None;
        match (timer, self.state) {
            (Timer::MasterDown, State::Backup) if self.sync_hold.is_some() => {
                // Held by the sync group: not master now, but keep watching, so the
                // protocol resumes where it is once the hold is lifted.
                self.arm(Timer::MasterDown, now + self.master_down_interval(), fx);
            }
            (Timer::MasterDown, State::Backup)
                if self.takeover == Takeover::Silence && now - deadline > self.stall_lateness() =>
            {
                self.takeover = Takeover::SilenceAfterStall;
                fx.master_down_deferred = Some(now - deadline);
                self.arm(Timer::MasterDown, now + self.master_down_interval(), fx);
            }
            (Timer::MasterDown, State::Backup) => {
                let reason = match self.takeover {
                    Takeover::Silence | Takeover::SilenceAfterStall => {
                        Reason::MasterDownTimerExpired {
                            last_master: self.master.map(|p| p.addr),
                        }
                    }
                    Takeover::PriorityZero(from) => Reason::PriorityZeroFrom { from },
                    Takeover::Preempt(peer) => Reason::PreemptedLowerPriorityMaster {
                        master: peer.addr,
                        priority: peer.priority,
                    },
                };
                self.become_master(reason, now, fx);
            }
            (Timer::Advert, State::Master) => {
                fx.actions.push(Action::SendAdvert {
                    priority: self.effective_priority,
                });
                let interval = self.config.advert_interval.as_duration();
                let next = if deadline + interval > now {
                    deadline + interval
                } else {
                    self.next_advert_slot(now)
                };
                self.arm(Timer::Advert, next, fx);
            }
            (Timer::PreemptDelay, State::Backup) => self.preempt_delay_passed = true,
            (Timer::GarpDelay, State::Master) => fx.actions.push(Action::SendGratuitous {
                count: self.config.garp.repeat,
            }),
            (Timer::GarpRefresh, State::Master) => {
                fx.actions.push(Action::SendGratuitous {
                    count: self.config.garp.refresh_repeat,
                });
                if let Some(period) = self.config.garp.refresh {
                    let next = self.next_on_cadence(deadline, period, now);
                    self.arm(Timer::GarpRefresh, next, fx);
                }
            }
            // A timer that outlived its state is harmless; the state change cancelled it
            // and the runtime delivered it anyway.
            _ => {}
        }
    }

    /// When the advert after one sent at `now` is due: the next of this VRID's slots,
    /// which recur every Advertisement_Interval on the time line, so at most one interval
    /// later (RFC 9568 §6.4.3 resets the Adver_Timer to the interval; an earlier advert
    /// only refreshes the backups sooner). Masters with the same interval then advertise
    /// together, in [`ADVERT_PHASES`] groups by VRID: a runtime serving many wakes a few
    /// times per interval for all of them instead of once per instance, and their backups
    /// receive a few bursts rather than a steady trickle.
    fn next_advert_slot(&self, now: Time) -> Time {
        let interval = self.config.advert_interval.as_duration();
        let period = interval.as_nanos();
        if period == 0 {
            return now + interval;
        }
        let phase = u128::from(self.config.vrid.get() % ADVERT_PHASES);
        let offset = period * phase / u128::from(ADVERT_PHASES);
        let now_ns = now.since_origin().as_nanos();
        let slot = if now_ns < offset {
            offset
        } else {
            offset + ((now_ns - offset) / period + 1) * period
        };
        match u64::try_from(slot) {
            Ok(nanos) => Time::from_duration(Duration::from_nanos(nanos)),
            Err(_) => now + interval,
        }
    }

    /// The next deadline of a periodic timer: on the old cadence, so a late wake-up does
    /// not push every later advert back, unless the runtime fell more than a period behind.
    fn next_on_cadence(&self, deadline: Time, period: Duration, now: Time) -> Time {
        let next = deadline + period;
        if next <= now { now + period } else { next }
    }

    fn arm(&mut self, timer: Timer, deadline: Time, fx: &mut Effects) {
        self.deadlines[timer.index()] = Some(deadline);
        fx.actions.push(Action::ArmTimer { timer, deadline });
    }

    fn cancel(&mut self, timer: Timer, fx: &mut Effects) {
        if self.deadlines[timer.index()].take().is_some() {
            fx.actions.push(Action::CancelTimer { timer });
        }
    }

    // ----- faults, priority, admin -------------------------------------------------------

    fn on_link_down(&mut self, now: Time, fx: &mut Effects) {
        if !self.link_up {
            return;
        }
        self.link_up = false;
        if matches!(self.state, State::Backup | State::Master) {
            // The link is gone, so a priority-0 advert could not leave anyway.
            self.leave_running_state(false, fx);
            self.transition(State::Fault, Reason::InterfaceDown, now, fx);
        }
    }

    fn on_link_up(&mut self, now: Time, fx: &mut Effects) {
        if self.link_up {
            return;
        }
        self.link_up = true;
        if self.state == State::Fault && self.failed_trackers.is_empty() {
            self.transition(State::Initialize, Reason::InterfaceUp, now, fx);
            self.start(now, fx);
        }
    }

    fn on_tracker_down(&mut self, id: TrackerId, now: Time, fx: &mut Effects) {
        let Err(pos) = self.failed_trackers.binary_search(&id) else {
            return;
        };
        self.failed_trackers.insert(pos, id);
        if matches!(self.state, State::Backup | State::Master) {
            // The link still works: tell the backups, so they take over after Skew_Time.
            self.leave_running_state(true, fx);
            self.transition(State::Fault, Reason::TrackerFailed { tracker: id }, now, fx);
        }
    }

    fn on_tracker_up(&mut self, id: TrackerId, now: Time, fx: &mut Effects) {
        let Ok(pos) = self.failed_trackers.binary_search(&id) else {
            return;
        };
        self.failed_trackers.remove(pos);
        if self.state == State::Fault && self.failed_trackers.is_empty() && self.link_up {
            self.transition(State::Initialize, Reason::TrackersRecovered, now, fx);
            self.start(now, fx);
        }
    }

    /// Effective priority = override, or configured + tracker weights, within 1–254. The
    /// owner's 255 never moves, and nothing else ever reaches 255 (RFC 9568 §5.2.4).
    fn compute_effective_priority(&self) -> u8 {
        if self.config.is_address_owner() {
            return priority::OWNER;
        }
        let wanted = match self.priority_override {
            Some(p) => i64::from(p),
            None => i64::from(self.config.priority) + i64::from(self.tracker_weight),
        };
        let clamped = wanted.clamp(1, i64::from(priority::MAX_NON_OWNER));
        u8::try_from(clamped).unwrap_or(priority::MAX_NON_OWNER)
    }

    fn on_priority_inputs_changed(&mut self, now: Time, fx: &mut Effects) {
        let new = self.compute_effective_priority();
        if new == self.effective_priority {
            return;
        }
        self.effective_priority = new;
        // A master announces its new priority at once, so a better backup can preempt
        // (or a worse one stops thinking about it) without waiting for the next advert.
        if self.state == State::Master {
            self.send_advert_now(now, fx);
        }
    }

    /// Whether the sync group can hold this instance: an address owner is master by
    /// definition, and stepping down would not free its addresses.
    fn holdable(&self) -> bool {
        !self.config.is_address_owner()
    }

    /// keepalived's vrrp_sync_group: while another member is in FAULT this one must not be
    /// master. A master steps down with a priority-0 advert, so the other router takes over
    /// after Skew_Time, as it does for the faulted member.
    fn on_sync_group_hold(&mut self, member: Option<MemberId>, now: Time, fx: &mut Effects) {
        let was_held = self.sync_hold.is_some();
        self.sync_hold = member.filter(|_| self.holdable());
        let Some(member) = self.sync_hold else {
            return;
        };
        if !was_held && self.state == State::Master {
            self.give_up_mastership(true, false, fx);
            let reason = Reason::SyncGroup {
                member,
                became: State::Fault,
            };
            self.become_backup(reason, self.config.advert_interval, now, fx);
        }
    }

    /// keepalived's vrrp_sync_group: when one member becomes master the others follow at
    /// once, so the group's addresses move together.
    fn on_sync_group_master(&mut self, member: MemberId, now: Time, fx: &mut Effects) {
        if self.state == State::Backup && self.sync_hold.is_none() {
            let reason = Reason::SyncGroup {
                member,
                became: State::Master,
            };
            self.become_master(reason, now, fx);
        }
    }

    fn on_admin_disable(&mut self, now: Time, fx: &mut Effects) {
        if self.admin_disabled {
            return;
        }
        self.admin_disabled = true;
        if self.state != State::Disabled {
            self.leave_running_state(true, fx);
            self.transition(State::Disabled, Reason::AdminDisabled, now, fx);
        }
    }

    fn on_admin_enable(&mut self, now: Time, fx: &mut Effects) {
        if !self.admin_disabled {
            return;
        }
        self.admin_disabled = false;
        if self.state == State::Disabled {
            self.transition(State::Initialize, Reason::AdminEnabled, now, fx);
            if self.started {
                self.start(now, fx);
            }
        }
    }

    // ----- configuration -----------------------------------------------------------------

    /// Apply a new configuration. An invalid one is ignored: the API validates with
    /// [`InstanceConfig::validate`] before anything reaches the engine.
    fn on_config_changed(&mut self, new: &InstanceConfig, now: Time, fx: &mut Effects) {
        if new.validate().is_err() || *new == self.config {
            return;
        }
        let old = core::mem::replace(&mut self.config, new.clone());
        self.advertised = self.config.advertised_addresses();
        let identity_changed = old.vrid != new.vrid
            || old.version != new.version
            || old.family != new.family
            || old.is_address_owner() != new.is_address_owner();
        if identity_changed {
            self.restart_for_config(old.is_address_owner(), now, fx);
            return;
        }
        let old_priority = self.effective_priority;
        self.effective_priority = self.compute_effective_priority();
        match self.state {
            State::Master => self.reconfigure_master(&old, old_priority, now, fx),
            State::Backup => self.reconfigure_backup(&old, now, fx),
            _ => self.master_adver_interval = new.advert_interval,
        }
    }

    /// A change no live update can express: stop as the old instance, start as the new.
    fn restart_for_config(&mut self, was_owner: bool, now: Time, fx: &mut Effects) {
        let running = matches!(self.state, State::Backup | State::Master);
        if self.state == State::Master {
            self.give_up_mastership(true, was_owner, fx);
        }
        self.forget_protocol_state(fx);
        self.effective_priority = self.compute_effective_priority();
        self.master_adver_interval = self.config.advert_interval;
        if running {
            self.transition(State::Initialize, Reason::ConfigChange, now, fx);
            self.start(now, fx);
        }
    }

    fn reconfigure_master(
        &mut self,
        old: &InstanceConfig,
        old_priority: u8,
        now: Time,
        fx: &mut Effects,
    ) {
        let new = &self.config;
        let addresses_changed = old.advertised_addresses() != self.advertised;
        if (addresses_changed || old.accept_mode != new.accept_mode) && !new.is_address_owner() {
            fx.actions.push(Action::AddVips {
                accept_traffic: new.accept_mode,
            });
        }
        if addresses_changed {
            fx.actions.push(Action::SendGratuitous {
                count: new.garp.repeat,
            });
        }
        if old.garp.refresh != new.garp.refresh {
            match new.garp.refresh {
                Some(period) => self.arm(Timer::GarpRefresh, now + period, fx),
                None => self.cancel(Timer::GarpRefresh, fx),
            }
        }
        self.master_adver_interval = self.config.advert_interval;
        let visible_change = addresses_changed
            || old_priority != self.effective_priority
            || old.advert_interval != self.config.advert_interval
            || old.auth != self.config.auth
            || old.primary_address != self.config.primary_address;
        if visible_change {
            self.send_advert_now(now, fx);
        }
    }

    fn reconfigure_backup(&mut self, old: &InstanceConfig, now: Time, fx: &mut Effects) {
        let interval_changed = old.advert_interval != self.config.advert_interval;
        // v2 always runs on its own interval; a v3 backup that has not heard a master yet
        // is waiting on its own interval too.
        if interval_changed && (self.config.version == Version::V2 || self.master.is_none()) {
            self.master_adver_interval = self.config.advert_interval;
            self.arm(Timer::MasterDown, now + self.master_down_interval(), fx);
        }
        if self.config.preempt_delay.is_zero() {
            self.cancel(Timer::PreemptDelay, fx);
        }
    }

    fn transition(&mut self, to: State, reason: Reason, now: Time, fx: &mut Effects) {
        let from = self.state;
        if to != State::Master {
            // Leaving MASTER ends any dual-master episode: the next one is news again.
            self.rival_heard = None;
            self.preempted = None;
        }
        self.state = to;
        self.since = now;
        self.last_reason = Some(reason);
        fx.transitions.push(Transition {
            from,
            to,
            reason,
            at: now,
        });
    }
}
