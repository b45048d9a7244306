//! The RFC rules of the state machine, one test each, named after the section they come
//! from; then whole-network simulations and randomised invariants. RFC 9568 keeps RFC
//! 5798's section numbers (§6.4.3 is the Master state in both).

use super::*;
use crate::config::InstanceConfig;
use crate::conformance::{Record, ScriptInput, replay};
use crate::time::Time;
use crate::types::{AdvertInterval, Version, Vrid};
use core::time::Duration;
use proptest::prelude::*;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cs(n: u16) -> AdvertInterval {
    AdvertInterval::from_centis(n).unwrap()
}

const ME: &str = "10.0.0.2";
const VIP: &str = "10.0.0.100";

fn config() -> InstanceConfig {
    InstanceConfig::new(Vrid::new(51).unwrap(), ip(ME), vec![ip(VIP)])
}

fn config_with(f: impl FnOnce(&mut InstanceConfig)) -> InstanceConfig {
    let mut c = config();
    f(&mut c);
    c
}

/// Drives one instance by hand: feed an input at a time, look at what came out.
struct Harness {
    instance: Instance,
    fx: Effects,
}

impl Harness {
    fn new(config: InstanceConfig) -> Self {
        Harness {
            instance: Instance::new(config).unwrap(),
            fx: Effects::default(),
        }
    }

    fn started(config: InstanceConfig) -> Self {
        let mut h = Harness::new(config);
        h.feed(0, Input::Startup);
        h
    }

    fn feed(&mut self, ms: u64, input: Input<'_>) -> &Effects {
        self.fx.clear();
        self.instance
            .handle(input, Time::from_millis(ms), &mut self.fx);
        &self.fx
    }

    fn advert(&mut self, ms: u64, from: &str, priority: u8) -> &Effects {
        let interval = self.instance.config().advert_interval;
        self.advert_with(ms, from, priority, interval)
    }

    fn advert_with(
        &mut self,
        ms: u64,
        from: &str,
        priority: u8,
        interval: AdvertInterval,
    ) -> &Effects {
        self.feed(
            ms,
            Input::Advert(ReceivedAdvert {
                src: ip(from),
                priority,
                interval,
                addresses: &[],
            }),
        )
    }

    /// Fire every timer due up to `ms`, each at its own deadline; returns the transitions.
    /// `fx` then holds everything those firings did.
    fn run_until(&mut self, ms: u64) -> Vec<Transition> {
        self.fx.clear();
        while let Some((timer, deadline)) = self.instance.next_deadline() {
            if deadline > Time::from_millis(ms) {
                break;
            }
            self.instance
                .handle(Input::TimerFired(timer), deadline, &mut self.fx);
        }
        self.fx.transitions.clone()
    }

    fn state(&self) -> State {
        self.instance.state()
    }

    fn make_master(config: InstanceConfig) -> Self {
        let mut h = Harness::started(config);
        h.run_until(10_000);
        assert_eq!(h.state(), State::Master);
        h
    }
}

fn sends(fx: &Effects) -> Vec<u8> {
    fx.actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert { priority } => Some(*priority),
            _ => None,
        })
        .collect()
}

fn has(fx: &Effects, action: Action) -> bool {
    fx.actions.contains(&action)
}

fn only_transition(fx: &Effects) -> Transition {
    assert_eq!(fx.transitions.len(), 1, "{:?}", fx.transitions);
    fx.transitions[0]
}

// ----- RFC 9568 §6.4.1 Initialize --------------------------------------------------------

/// RFC 9568 §6.4.1: a non-owner starts as backup with Master_Down_Timer = Master_Down_Interval.
#[test]
fn rfc9568_6_4_1_startup_non_owner_becomes_backup() {
    let mut h = Harness::new(config());
    let fx = h.feed(0, Input::Startup).clone();
    let t = only_transition(&fx);
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::Initialize, State::Backup, Reason::Startup)
    );
    // priority 100 at 1 s: 3 s + 156/256 s.
    let mdi = Duration::from_nanos(3_609_375_000);
    assert_eq!(h.instance.master_down_interval(), mdi);
    assert!(has(
        &fx,
        Action::ArmTimer {
            timer: Timer::MasterDown,
            deadline: Time::ZERO + mdi
        }
    ));
    assert!(sends(&fx).is_empty(), "a backup does not advertise");
}

/// RFC 9568 §6.4.1: the address owner (priority 255) advertises, announces its addresses and
/// is master at once. Its addresses are its own, so none are added.
#[test]
fn rfc9568_6_4_1_address_owner_starts_as_master() {
    let mut h = Harness::new(config_with(|c| {
        c.priority = 255;
        c.primary_address = ip(VIP);
    }));
    let fx = h.feed(0, Input::Startup).clone();
    let t = only_transition(&fx);
    assert_eq!((t.to, t.reason), (State::Master, Reason::AddressOwner));
    assert_eq!(sends(&fx), vec![255]);
    assert!(has(&fx, Action::SendGratuitous { count: 5 }));
    assert!(
        !fx.actions
            .iter()
            .any(|a| matches!(a, Action::AddVips { .. }))
    );
    // VRID 51's slots are 750 ms into each second (see masters_advertise_on_shared_slots).
    assert_eq!(
        h.instance.deadline(Timer::Advert),
        Some(Time::from_millis(750))
    );
}

// ----- RFC 9568 §6.4.2 Backup ------------------------------------------------------------

/// RFC 9568 §6.4.2: when the Master_Down_Timer fires, the backup adds the addresses,
/// advertises, sends gratuitous ARP and becomes master, exactly at Master_Down_Interval.
#[test]
fn rfc9568_6_4_2_master_down_timer_makes_backup_master() {
    let mut h = Harness::started(config());
    h.advert(100, "10.0.0.1", 150);
    // Up to just after the takeover (3709.375 ms), before its next advert slot (3750 ms).
    let transitions = h.run_until(3710);
    assert_eq!(transitions.len(), 1);
    let t = transitions[0];
    assert_eq!(t.to, State::Master);
    assert_eq!(
        t.reason,
        Reason::MasterDownTimerExpired {
            last_master: Some(ip("10.0.0.1"))
        }
    );
    assert_eq!(
        t.at,
        Time::from_millis(100) + Duration::from_nanos(3_609_375_000)
    );
    assert!(has(
        &h.fx,
        Action::AddVips {
            accept_traffic: true
        }
    ));
    assert_eq!(sends(&h.fx), vec![100]);
    assert!(has(&h.fx, Action::SendGratuitous { count: 5 }));
}

/// RFC 9568 §6.4.2 takes over when the Master_Down_Timer fires. A timer that fires long
/// after its deadline (500 ms late, at a 1 s interval) fired after this router was itself
/// stalled, so the silence it measured is partly its own: the timer starts again, and a
/// master heard in that time keeps it a backup.
#[test]
fn a_master_down_timer_fired_late_after_a_stall_starts_again() {
    let mut h = Harness::started(config());
    h.advert(100, "10.0.0.1", 150);
    let deadline = h.instance.deadline(Timer::MasterDown).unwrap();
    assert_eq!(
        deadline,
        Time::from_millis(100) + Duration::from_nanos(3_609_375_000)
    );
    let fx = h.feed(4210, Input::TimerFired(Timer::MasterDown)).clone();
    assert!(fx.transitions.is_empty(), "no takeover on a late timer");
    assert_eq!(
        fx.master_down_deferred,
        Some(Time::from_millis(4210) - deadline)
    );
    assert!(has(
        &fx,
        Action::ArmTimer {
            timer: Timer::MasterDown,
            deadline: Time::from_millis(4210) + Duration::from_nanos(3_609_375_000)
        }
    ));
    assert_eq!(h.state(), State::Backup);
    // The master, stalled with us, is heard again.
    assert_eq!(
        h.advert(4212, "10.0.0.1", 150).verdict,
        Some(AdvertVerdict::Accepted)
    );
    assert!(h.run_until(7000).is_empty());
    // Each silence gets its own grace: the advert ended the last one.
    let fx = h.feed(8500, Input::TimerFired(Timer::MasterDown)).clone();
    assert!(fx.transitions.is_empty());
    assert!(fx.master_down_deferred.is_some());
}

/// The stall grace is given once per silence: a master that stays silent through it is
/// replaced when the timer fires again, however late (RFC 9568 §6.4.2).
#[test]
fn the_stall_grace_is_given_once_per_silence() {
    let mut h = Harness::started(config());
    h.advert(100, "10.0.0.1", 150);
    h.feed(4210, Input::TimerFired(Timer::MasterDown));
    // Due at 7819.375 ms, and late again.
    let fx = h.feed(9000, Input::TimerFired(Timer::MasterDown)).clone();
    assert_eq!(fx.master_down_deferred, None);
    let t = only_transition(&fx);
    assert_eq!(t.to, State::Master);
    assert_eq!(
        t.reason,
        Reason::MasterDownTimerExpired {
            last_master: Some(ip("10.0.0.1"))
        }
    );
}

/// A silence after a spell as master is a new silence: a backup that took over after
/// using its stall grace, and was then preempted back to backup, gets the grace again.
#[test]
fn the_stall_grace_starts_over_after_a_spell_as_master() {
    let mut h = Harness::started(config());
    h.advert(100, "10.0.0.1", 150);
    h.feed(4210, Input::TimerFired(Timer::MasterDown));
    let fx = h.feed(9000, Input::TimerFired(Timer::MasterDown)).clone();
    assert_eq!(only_transition(&fx).to, State::Master);
    let fx = h.advert(9100, "10.0.0.1", 200).clone();
    assert_eq!(only_transition(&fx).to, State::Backup);
    let deadline = h.instance.deadline(Timer::MasterDown).unwrap();
    let late = (deadline + Duration::from_millis(500))
        .since_origin()
        .as_millis() as u64;
    let fx = h.feed(late, Input::TimerFired(Timer::MasterDown)).clone();
    assert!(fx.transitions.is_empty());
    assert!(fx.master_down_deferred.is_some());
}

/// A timer only a little late (under an eighth of the interval, here 100 ms of 1 s) is an
/// ordinary wake-up, and a master that stopped with priority 0 (RFC 9568 §6.4.2) said it
/// is gone: both take over at once.
#[test]
fn a_slightly_late_timer_or_a_priority_zero_master_takes_over_at_once() {
    let mut h = Harness::started(config());
    h.advert(100, "10.0.0.1", 150);
    let fx = h.feed(3809, Input::TimerFired(Timer::MasterDown)).clone();
    assert_eq!(only_transition(&fx).to, State::Master);

    let mut h = Harness::started(config());
    h.advert(0, "10.0.0.1", 150);
    h.advert(1000, "10.0.0.1", 0);
    let fx = h.feed(3000, Input::TimerFired(Timer::MasterDown)).clone();
    assert_eq!(fx.master_down_deferred, None);
    assert_eq!(
        only_transition(&fx).reason,
        Reason::PriorityZeroFrom {
            from: ip("10.0.0.1")
        }
    );
}

/// At 10 ms adverts the threshold is its 2 ms floor, not 1.25 ms.
#[test]
fn at_short_intervals_a_stall_is_a_wake_more_than_2_ms_late() {
    let ten_ms = config_with(|c| {
        c.version = Version::V3;
        c.advert_interval = cs(1);
    });
    let mut h = Harness::started(ten_ms.clone());
    h.advert(0, "10.0.0.1", 150);
    let deadline = h.instance.deadline(Timer::MasterDown).unwrap();
    let late_ms = |extra: u64| {
        (deadline + Duration::from_millis(extra))
            .since_origin()
            .as_millis() as u64
    };
    let fx = h
        .feed(late_ms(2), Input::TimerFired(Timer::MasterDown))
        .clone();
    assert_eq!(
        only_transition(&fx).to,
        State::Master,
        "1.9 ms late: no stall"
    );

    let mut h = Harness::started(ten_ms);
    h.advert(0, "10.0.0.1", 150);
    let fx = h
        .feed(late_ms(3), Input::TimerFired(Timer::MasterDown))
        .clone();
    assert!(fx.transitions.is_empty(), "2.9 ms late: a stall");
    assert!(fx.master_down_deferred.is_some());
}

/// RFC 9568 §6.4.2: every advert from the master resets the Master_Down_Timer.
#[test]
fn rfc9568_6_4_2_adverts_keep_the_backup_waiting() {
    let mut h = Harness::started(config());
    for ms in (0..20_000).step_by(1000) {
        assert!(h.run_until(ms).is_empty());
        let fx = h.advert(ms, "10.0.0.1", 150);
        assert_eq!(fx.verdict, Some(AdvertVerdict::Accepted));
    }
    assert_eq!(h.state(), State::Backup);
    assert_eq!(h.instance.status().master, Some(ip("10.0.0.1")));
    assert_eq!(h.instance.status().master_priority, Some(150));
}

/// RFC 9568 §6.4.2: a v3 backup sets Master_Adver_Interval to the advertised interval and
/// recomputes Skew_Time and Master_Down_Interval from it.
#[test]
fn rfc9568_6_4_2_v3_backup_adopts_the_masters_interval() {
    let mut h = Harness::started(config());
    let fx = h.advert_with(0, "10.0.0.1", 150, cs(10)).clone();
    assert_eq!(h.instance.status().master_adver_interval, cs(10));
    // 3 × 100 ms + 156 × 10 cs / 256 = 360.9375 ms.
    let mdi = Duration::from_nanos(360_937_500);
    assert_eq!(h.instance.master_down_interval(), mdi);
    assert!(has(
        &fx,
        Action::ArmTimer {
            timer: Timer::MasterDown,
            deadline: Time::ZERO + mdi
        }
    ));
}

/// RFC 3768 §7.1: a v2 router discards an advert whose interval differs from its own.
#[test]
fn rfc3768_7_1_v2_drops_adverts_with_another_interval() {
    let mut h = Harness::started(config_with(|c| c.version = Version::V2));
    let deadline = h.instance.deadline(Timer::MasterDown);
    let fx = h.advert_with(500, "10.0.0.1", 150, cs(200)).clone();
    assert_eq!(
        fx.verdict,
        Some(AdvertVerdict::Dropped(DropReason::IntervalMismatch {
            received: cs(200),
            expected: cs(100)
        }))
    );
    assert_eq!(
        h.instance.deadline(Timer::MasterDown),
        deadline,
        "timer untouched"
    );
    assert_eq!(h.instance.status().master, None);
}

/// RFC 3768 §6.4.2: a v2 backup keeps its own interval, whatever the master's.
#[test]
fn rfc3768_6_4_2_v2_backup_uses_its_own_interval() {
    let mut h = Harness::started(config_with(|c| c.version = Version::V2));
    h.advert(0, "10.0.0.1", 150);
    assert_eq!(h.instance.status().master_adver_interval, cs(100));
    assert_eq!(
        h.instance.master_down_interval(),
        Duration::from_nanos(3_609_375_000)
    );
}

/// RFC 9568 §6.4.2: priority 0 from the master → Master_Down_Timer = Skew_Time, and the
/// transition names the stopping master.
#[test]
fn rfc9568_6_4_2_priority_zero_means_take_over_after_skew_time() {
    let mut h = Harness::started(config());
    h.advert(0, "10.0.0.1", 150);
    let fx = h.advert(1000, "10.0.0.1", 0).clone();
    let skew = Duration::from_nanos(609_375_000);
    assert!(has(
        &fx,
        Action::ArmTimer {
            timer: Timer::MasterDown,
            deadline: Time::from_millis(1000) + skew
        }
    ));
    let t = h.run_until(5000);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t[0].reason,
        Reason::PriorityZeroFrom {
            from: ip("10.0.0.1")
        }
    );
    assert_eq!(t[0].at, Time::from_millis(1000) + skew);
}

/// RFC 9568 §6.4.2: with preemption on, a lower-priority advert is discarded, so the
/// Master_Down_Timer runs out and the backup takes over, naming the preempted master.
#[test]
fn rfc9568_6_4_2_preempt_takes_over_from_a_lower_priority_master() {
    let mut h = Harness::started(config());
    let deadline = h.instance.deadline(Timer::MasterDown).unwrap();
    for ms in (0..3000).step_by(1000) {
        let fx = h.advert(ms, "10.0.0.1", 50);
        assert_eq!(fx.verdict, Some(AdvertVerdict::Ignored));
    }
    assert_eq!(h.instance.deadline(Timer::MasterDown), Some(deadline));
    let t = h.run_until(10_000);
    assert_eq!(
        t[0].reason,
        Reason::PreemptedLowerPriorityMaster {
            master: ip("10.0.0.1"),
            priority: 50
        }
    );
    assert_eq!(t[0].at, deadline);
}

/// RFC 9568 §6.4.2: with preemption off, any master is accepted, lower priority or not.
#[test]
fn rfc9568_6_4_2_no_preempt_keeps_a_lower_priority_master() {
    let mut h = Harness::started(config_with(|c| c.preempt = false));
    for ms in (0..30_000).step_by(1000) {
        h.run_until(ms);
        assert_eq!(
            h.advert(ms, "10.0.0.1", 50).verdict,
            Some(AdvertVerdict::Accepted)
        );
    }
    assert_eq!(h.state(), State::Backup);
}

/// RFC 9568 §6.4.2: an equal-priority master is accepted by a preempting backup (only a
/// strictly lower priority is discarded).
#[test]
fn rfc9568_6_4_2_equal_priority_master_is_not_preempted() {
    let mut h = Harness::started(config());
    for ms in (0..30_000).step_by(1000) {
        h.run_until(ms);
        h.advert(ms, "10.0.0.1", 100);
    }
    assert_eq!(h.state(), State::Backup);
}

/// Preempt delay (keepalived's `preempt_delay`): a lower-priority master is tolerated for
/// the delay after it is first heard, then preempted.
#[test]
fn preempt_delay_postpones_preemption() {
    let mut h = Harness::started(config_with(|c| c.preempt_delay = Duration::from_secs(10)));
    let fx = h.advert(500, "10.0.0.1", 50).clone();
    assert_eq!(fx.verdict, Some(AdvertVerdict::Accepted));
    assert!(has(
        &fx,
        Action::ArmTimer {
            timer: Timer::PreemptDelay,
            deadline: Time::from_millis(10_500)
        }
    ));
    let mut took_over = None;
    for ms in (1500..30_000).step_by(1000) {
        if let Some(t) = h.run_until(ms).first() {
            took_over = Some(*t);
            break;
        }
        h.advert(ms, "10.0.0.1", 50);
    }
    let t = took_over.expect("the backup preempts once the delay has passed");
    assert!(t.at > Time::from_millis(10_500), "{t}");
    assert!(matches!(
        t.reason,
        Reason::PreemptedLowerPriorityMaster { .. }
    ));
}

/// RFC 9568 §6.4.2: Shutdown in Backup cancels the Master_Down_Timer and goes to Initialize.
#[test]
fn rfc9568_6_4_2_backup_shutdown() {
    let mut h = Harness::started(config());
    let fx = h.feed(100, Input::Shutdown).clone();
    assert!(has(
        &fx,
        Action::CancelTimer {
            timer: Timer::MasterDown
        }
    ));
    assert_eq!(only_transition(&fx).to, State::Initialize);
    assert!(sends(&fx).is_empty());
    assert_eq!(h.instance.next_deadline(), None);
}

// ----- RFC 9568 §6.4.3 Master ------------------------------------------------------------

/// RFC 9568 §6.4.3: the master advertises every Advertisement_Interval, on a fixed cadence
/// even when the runtime wakes it late.
#[test]
fn rfc9568_6_4_3_master_advertises_every_interval() {
    let mut h = Harness::make_master(config_with(|c| c.advert_interval = cs(10)));
    let start = h.instance.deadline(Timer::Advert).unwrap();
    // Woken 30 ms late: the next deadline stays on the 100 ms grid.
    h.fx.clear();
    h.instance.handle(
        Input::TimerFired(Timer::Advert),
        start + Duration::from_millis(30),
        &mut h.fx,
    );
    assert_eq!(sends(&h.fx), vec![100]);
    assert_eq!(
        h.instance.deadline(Timer::Advert),
        Some(start + Duration::from_millis(100))
    );
    // Woken more than a whole interval late: go on from the next slot after now.
    let late = start + Duration::from_millis(450);
    h.fx.clear();
    h.instance
        .handle(Input::TimerFired(Timer::Advert), late, &mut h.fx);
    assert_eq!(
        h.instance.deadline(Timer::Advert),
        Some(start + Duration::from_millis(500))
    );
}

/// RFC 9568 §6.4.3: a higher-priority advert makes the master a backup: it stops
/// advertising, gives up the addresses and arms the Master_Down_Timer from the new master's
/// interval.
#[test]
fn rfc9568_6_4_3_master_yields_to_higher_priority() {
    let mut h = Harness::make_master(config());
    let fx = h.advert_with(20_000, "10.0.0.1", 200, cs(50)).clone();
    let t = only_transition(&fx);
    assert_eq!(t.to, State::Backup);
    assert_eq!(
        t.reason,
        Reason::HigherPriorityAdvert {
            from: ip("10.0.0.1"),
            priority: 200
        }
    );
    assert!(has(&fx, Action::RemoveVips));
    assert!(has(
        &fx,
        Action::CancelTimer {
            timer: Timer::Advert
        }
    ));
    // Ours, not the RFC's: one parting advert at our own priority, so the winner learns
    // it was contested (see rfc9568_6_4_3_a_healed_partition_ends_with_one_master_and_garps).
    assert_eq!(sends(&fx), vec![100]);
    assert_eq!(h.instance.status().master_adver_interval, cs(50));
    assert_eq!(
        h.instance.deadline(Timer::MasterDown),
        Some(Time::from_millis(20_000) + h.instance.master_down_interval())
    );
    assert_eq!(h.instance.status().master, Some(ip("10.0.0.1")));
}

/// RFC 9568 §6.4.3: at equal priority the higher primary address wins.
#[test]
fn rfc9568_6_4_3_equal_priority_higher_address_wins() {
    let mut h = Harness::make_master(config());
    let fx = h.advert(20_000, "10.0.0.3", 100).clone();
    assert_eq!(
        only_transition(&fx).reason,
        Reason::EqualPriorityHigherAddress {
            from: ip("10.0.0.3"),
            priority: 100
        }
    );
    let mut h = Harness::make_master(config());
    let fx = h.advert(20_000, "10.0.0.1", 100).clone();
    assert!(
        fx.transitions.is_empty(),
        "a lower address does not win the tie"
    );
    assert_eq!(h.state(), State::Master);
}

/// RFC 9568 §6.4.3: a master that hears a lower priority re-advertises at once to assert
/// itself, instead of waiting for its timer.
#[test]
fn rfc9568_6_4_3_master_answers_lower_priority_at_once() {
    let mut h = Harness::make_master(config());
    let fx = h.advert(20_000, "10.0.0.1", 50).clone();
    assert_eq!(sends(&fx), vec![100]);
    assert_eq!(fx.verdict, Some(AdvertVerdict::Ignored));
    assert!(fx.transitions.is_empty());
}

/// RFC 9568 §6.4.3, lower priority: the master stays master, and the first advert of another
/// master starts a dual-master episode: reported once, with a burst of gratuitous ARPs to
/// win back clients that followed the other master. Later adverts of the same episode are
/// not news; one after a quiet Master_Down_Interval starts a new episode.
#[test]
fn rfc9568_6_4_3_a_lower_priority_master_is_reported_once_per_episode() {
    let mut h = Harness::make_master(config());
    let repeat = h.instance.config().garp.repeat;
    let fx = h.advert(20_000, "10.0.0.1", 50).clone();
    assert_eq!(
        fx.rival_master,
        Some(RivalMaster {
            from: ip("10.0.0.1"),
            priority: 50,
            our_priority: 100,
            outcome: RivalOutcome::StayedMaster,
        })
    );
    assert!(has(&fx, Action::SendGratuitous { count: repeat }));
    assert_eq!(h.state(), State::Master);
    // The same episode: adverts every second, from this router or another.
    for (ms, from) in [
        (21_000, "10.0.0.1"),
        (22_000, "10.0.0.3"),
        (23_000, "10.0.0.1"),
    ] {
        let fx = h.advert(ms, from, 50).clone();
        assert_eq!(fx.rival_master, None, "at {ms} ms");
        assert!(!has(&fx, Action::SendGratuitous { count: repeat }));
    }
    // Quiet for longer than Master_Down_Interval: the next one is a new episode.
    let later = 23_000 + u64::try_from(h.instance.master_down_interval().as_millis()).unwrap() + 1;
    h.run_until(later);
    let fx = h.advert(later, "10.0.0.1", 50).clone();
    assert!(fx.rival_master.is_some());
    assert!(has(&fx, Action::SendGratuitous { count: repeat }));
}

/// RFC 9568 §6.4.3, higher priority, and equal priority with a higher address: the master
/// steps down, and reports who it stepped down for.
#[test]
fn rfc9568_6_4_3_stepping_down_for_another_master_is_reported() {
    for (from, priority) in [("10.0.0.1", 200), ("10.0.0.3", 100)] {
        let mut h = Harness::make_master(config());
        let fx = h.advert(20_000, from, priority).clone();
        assert_eq!(
            fx.rival_master,
            Some(RivalMaster {
                from: ip(from),
                priority,
                our_priority: 100,
                outcome: RivalOutcome::SteppedDown,
            }),
            "{from} {priority}"
        );
        assert_eq!(h.state(), State::Backup);
    }
    // Equal priority, lower address: the tie is ours, we stay.
    let mut h = Harness::make_master(config());
    let fx = h.advert(20_000, "10.0.0.1", 100).clone();
    assert_eq!(
        fx.rival_master.map(|r| r.outcome),
        Some(RivalOutcome::StayedMaster)
    );
}

/// A stepping down is reported even inside an episode (it ends it), and leaving MASTER
/// ends the episode, so the next mastership reports again.
#[test]
fn leaving_master_ends_the_dual_master_episode() {
    let mut h = Harness::make_master(config());
    assert!(h.advert(20_000, "10.0.0.1", 50).rival_master.is_some());
    let fx = h.advert(20_500, "10.0.0.3", 200).clone();
    assert_eq!(
        fx.rival_master.map(|r| (r.from, r.outcome)),
        Some((ip("10.0.0.3"), RivalOutcome::SteppedDown))
    );
    // 10.0.0.3 goes silent: master again, and the lower one is news again.
    let t = h.run_until(40_000);
    assert_eq!(t.last().map(|t| t.to), Some(State::Master));
    assert!(h.advert(40_000, "10.0.0.1", 50).rival_master.is_some());
}

/// Priority 0 is a master leaving, not a rival claiming the role (RFC 9568 §6.4.3).
#[test]
fn rfc9568_6_4_3_priority_zero_is_not_a_dual_master() {
    let mut h = Harness::make_master(config());
    let fx = h.advert(20_000, "10.0.0.1", 0).clone();
    assert_eq!(fx.rival_master, None);
    assert!(!has(
        &fx,
        Action::SendGratuitous {
            count: h.instance.config().garp.repeat
        }
    ));
}

/// A master that preempted a lower-priority one hears that one's adverts in flight and its
/// parting advert: expected, so no report. If it is still advertising after
/// Master_Down_Interval, it did not step down: that is a dual master.
#[test]
fn the_master_just_preempted_is_not_a_dual_master_unless_it_stays() {
    let mut h = Harness::started(config_with(|c| c.priority = 200));
    h.advert(0, "10.0.0.1", 100);
    let t = h.run_until(10_000);
    assert_eq!(
        t.last().map(|t| t.reason),
        Some(Reason::PreemptedLowerPriorityMaster {
            master: ip("10.0.0.1"),
            priority: 100
        })
    );
    let became = h.instance.status().since;
    let at = |ms: u64| {
        u64::try_from(
            (became + Duration::from_millis(ms))
                .since_origin()
                .as_millis(),
        )
        .unwrap()
    };
    assert_eq!(h.advert(at(1), "10.0.0.1", 100).rival_master, None);
    let mdi = u64::try_from(h.instance.master_down_interval().as_millis()).unwrap();
    h.run_until(at(mdi + 10));
    let fx = h.advert(at(mdi + 10), "10.0.0.1", 100).clone();
    assert_eq!(
        fx.rival_master.map(|r| (r.from, r.outcome)),
        Some((ip("10.0.0.1"), RivalOutcome::StayedMaster))
    );
    // Another router is news at once.
    let mut h = Harness::started(config_with(|c| c.priority = 200));
    h.advert(0, "10.0.0.1", 100);
    h.run_until(10_000);
    let became = h.instance.status().since;
    let ms = u64::try_from(
        (became + Duration::from_millis(1))
            .since_origin()
            .as_millis(),
    )
    .unwrap();
    assert!(h.advert(ms, "10.0.0.3", 100).rival_master.is_some());
}

/// RFC 9568 §6.4.3 answers a lower-priority advert at once; ours, not the RFC's: at most one
/// answer per Advertisement_Interval, so a flood of valid adverts (anyone on the link can
/// send them) does not become a flood of ours. The Adver_Timer keeps the cadence.
#[test]
fn answers_to_a_flood_of_lower_priority_adverts_are_limited() {
    let mut h = Harness::make_master(config());
    h.run_until(19_999);
    let mut sent = 0;
    let mut garps = 0;
    // 10 000 adverts in one second, interleaved with the timers.
    for i in 0..10_000u64 {
        let ms = 20_000 + i / 10;
        h.run_until(ms);
        sent += sends(&h.fx).len();
        let fx = h.advert(ms, "10.0.0.1", 50).clone();
        sent += sends(&fx).len();
        garps += fx
            .actions
            .iter()
            .filter(|a| matches!(a, Action::SendGratuitous { .. }))
            .count();
    }
    assert!(sent <= 3, "{sent} adverts sent in one second of flood");
    assert_eq!(garps, 1, "one burst of gratuitous ARPs for the episode");
    assert_eq!(h.state(), State::Master);
    assert!(h.instance.deadline(Timer::Advert).is_some());
    // A master leaving right after an answer is still answered at once: its backups
    // would otherwise take over after Skew_Time. Then priority 0 is limited too.
    assert_eq!(sends(h.advert(21_000, "10.0.0.1", 50)), vec![100]);
    assert_eq!(sends(h.advert(21_001, "10.0.0.1", 0)), vec![100]);
    assert!(sends(h.advert(21_002, "10.0.0.3", 0)).is_empty());
}

/// RFC 9568 §6.4.3: priority 0 from another router → send an advert and reset Adver_Timer,
/// here to the next advert slot (at most an interval later; see
/// `masters_advertise_on_shared_slots`).
#[test]
fn rfc9568_6_4_3_master_answers_priority_zero() {
    let mut h = Harness::make_master(config());
    let fx = h.advert(20_050, "10.0.0.1", 0).clone();
    assert_eq!(sends(&fx), vec![100]);
    assert_eq!(
        h.instance.deadline(Timer::Advert),
        Some(Time::from_millis(20_750))
    );
}

/// Ours, not the RFC's: the advert after one sent at once (on becoming master, or an
/// answer) is due on the VRID's next slot, never later than the interval RFC 9568 §6.4.3
/// resets the Adver_Timer to. Slots recur every Advertisement_Interval, at one of
/// ADVERT_PHASES offsets chosen by VRID (51 % 4 = 3: three quarters in). So masters that
/// took over at different moments advertise together, and a runtime serving many wakes a
/// few times per interval for all of them.
#[test]
fn masters_advertise_on_shared_slots() {
    let interval = config_with(|c| c.advert_interval = cs(10));
    let mut deadlines = Vec::new();
    for started_at in [1_234, 1_777, 1_999] {
        let mut h = Harness::new(interval.clone());
        h.feed(started_at, Input::Startup);
        let took_over = h.instance.deadline(Timer::MasterDown).unwrap();
        h.fx.clear();
        h.instance
            .handle(Input::TimerFired(Timer::MasterDown), took_over, &mut h.fx);
        assert_eq!(only_transition(&h.fx).to, State::Master);
        let at = h.instance.deadline(Timer::Advert).unwrap();
        assert!(
            at > took_over && at - took_over <= Duration::from_millis(100),
            "took over at {took_over}, next advert at {at}"
        );
        assert_eq!(
            at.since_origin().as_nanos() % 100_000_000,
            75_000_000,
            "{at} is not on VRID 51's slot"
        );
        deadlines.push(at);
    }
    assert_ne!(deadlines[0], deadlines[1], "took over at different moments");
    // Another VRID has another phase: a quarter in for VRID 1.
    let mut other = Harness::new(config_with(|c| {
        c.advert_interval = cs(10);
        c.vrid = Vrid::new(1).unwrap();
    }));
    other.feed(1_234, Input::Startup);
    let took_over = other.instance.deadline(Timer::MasterDown).unwrap();
    other.instance.handle(
        Input::TimerFired(Timer::MasterDown),
        took_over,
        &mut other.fx,
    );
    assert_eq!(
        other.instance.deadline(Timer::Advert),
        Some(Time::from_millis(1_625))
    );
    // A late wake-up keeps the slot; one more than an interval late starts on the next.
    let mut h = Harness::make_master(interval);
    let due = h.instance.deadline(Timer::Advert).unwrap();
    h.fx.clear();
    h.instance.handle(
        Input::TimerFired(Timer::Advert),
        due + Duration::from_millis(250),
        &mut h.fx,
    );
    assert_eq!(
        h.instance.deadline(Timer::Advert),
        Some(due + Duration::from_millis(300))
    );
}

/// RFC 9568 §6.4.3: Shutdown in Master: cancel Adver_Timer, send priority 0, and (ours, not
/// the RFC's words) remove the virtual addresses.
#[test]
fn rfc9568_6_4_3_master_shutdown_sends_priority_zero() {
    let mut h = Harness::make_master(config());
    let fx = h.feed(20_000, Input::Shutdown).clone();
    assert_eq!(sends(&fx), vec![0]);
    assert!(has(&fx, Action::RemoveVips));
    assert!(has(
        &fx,
        Action::CancelTimer {
            timer: Timer::Advert
        }
    ));
    let t = only_transition(&fx);
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::Master, State::Initialize, Reason::Shutdown)
    );
}

/// RFC 9568 §6.1 Accept_Mode and §6.4.3: a non-owner master accepts traffic for the
/// addresses only with Accept_Mode.
#[test]
fn rfc9568_6_1_accept_mode() {
    let mut h = Harness::started(config_with(|c| c.accept_mode = false));
    h.run_until(10_000);
    assert!(has(
        &h.fx,
        Action::AddVips {
            accept_traffic: false
        }
    ));
    let mut h = Harness::started(config_with(|c| c.accept_mode = true));
    h.run_until(10_000);
    assert!(has(
        &h.fx,
        Action::AddVips {
            accept_traffic: true
        }
    ));
}

/// Our own advert coming back (multicast loop, a mirrored port) must not count as a rival.
#[test]
fn own_adverts_are_ignored() {
    let mut h = Harness::make_master(config());
    let fx = h.advert(20_000, ME, 200).clone();
    assert_eq!(fx.verdict, Some(AdvertVerdict::Ignored));
    assert_eq!(h.state(), State::Master);
}

/// keepalived logs a VIP list that differs from its own; we flag it for the runtime to count.
#[test]
fn a_different_address_list_is_flagged() {
    let mut h = Harness::started(config());
    let theirs = [ip("10.0.0.101")];
    let fx = h.feed(
        0,
        Input::Advert(ReceivedAdvert {
            src: ip("10.0.0.1"),
            priority: 150,
            interval: cs(100),
            addresses: &theirs,
        }),
    );
    assert_eq!(fx.address_mismatch_from, Some(ip("10.0.0.1")));
    assert_eq!(fx.verdict, Some(AdvertVerdict::Accepted));
    let ours = [ip(VIP)];
    let fx = h.feed(
        10,
        Input::Advert(ReceivedAdvert {
            src: ip("10.0.0.1"),
            priority: 150,
            interval: cs(100),
            addresses: &ours,
        }),
    );
    assert_eq!(fx.address_mismatch_from, None);
}

// ----- gratuitous ARP --------------------------------------------------------------------

/// keepalived's garp_master_delay / garp_master_refresh: a second burst after the delay,
/// then a refresh every period while master, and nothing once backup.
#[test]
fn gratuitous_arp_second_burst_and_refresh() {
    let mut h = Harness::started(config_with(|c| {
        c.garp.delay = Some(Duration::from_secs(1));
        c.garp.refresh = Some(Duration::from_secs(5));
        c.garp.refresh_repeat = 2;
    }));
    let mut garps = Vec::new();
    let mut now = 0;
    while now <= 20_000 {
        if let Some((timer, deadline)) = h.instance.next_deadline() {
            now = deadline.since_origin().as_millis() as u64;
            h.fx.clear();
            h.instance
                .handle(Input::TimerFired(timer), deadline, &mut h.fx);
            for a in &h.fx.actions {
                if let Action::SendGratuitous { count } = a {
                    garps.push((now, *count));
                }
            }
        }
    }
    let took_over = 3609;
    assert_eq!(
        garps,
        vec![
            (took_over, 5),
            (took_over + 1000, 5),
            (took_over + 5000, 2),
            (took_over + 10_000, 2),
            (took_over + 15_000, 2),
        ]
    );
    let fx = h.advert(30_000, "10.0.0.9", 200).clone();
    assert!(has(
        &fx,
        Action::CancelTimer {
            timer: Timer::GarpRefresh
        }
    ));
}

// ----- Fault, Disabled, priority ---------------------------------------------------------

/// The interface going down puts a master in Fault: addresses removed, no priority-0 advert
/// (the link cannot carry it). Back up: Initialize, then Backup.
#[test]
fn link_down_faults_and_link_up_restarts() {
    let mut h = Harness::make_master(config());
    let fx = h.feed(20_000, Input::LinkDown).clone();
    let t = only_transition(&fx);
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::Master, State::Fault, Reason::InterfaceDown)
    );
    assert!(has(&fx, Action::RemoveVips));
    assert!(sends(&fx).is_empty());
    assert_eq!(h.instance.next_deadline(), None, "no timers run in Fault");
    assert!(h.advert(20_500, "10.0.0.1", 150).transitions.is_empty());
    let fx = h.feed(21_000, Input::LinkUp).clone();
    let path: Vec<_> = fx
        .transitions
        .iter()
        .map(|t| (t.from, t.to, t.reason))
        .collect();
    assert_eq!(
        path,
        vec![
            (State::Fault, State::Initialize, Reason::InterfaceUp),
            (State::Initialize, State::Backup, Reason::Startup),
        ]
    );
}

/// A link already down at start-up starts the instance in Fault.
#[test]
fn starting_with_the_link_down_is_a_fault() {
    let mut h = Harness::new(config());
    h.feed(0, Input::LinkDown);
    let fx = h.feed(0, Input::Startup).clone();
    assert_eq!(only_transition(&fx).to, State::Fault);
}

/// A failed tracker puts the master in Fault and, the link being fine, tells the backups
/// with priority 0 so they take over after Skew_Time. The instance stays in Fault until
/// every failed tracker recovers.
#[test]
fn tracker_failure_faults_with_priority_zero() {
    let mut h = Harness::make_master(config());
    let fx = h.feed(20_000, Input::TrackerDown(TrackerId(1))).clone();
    assert_eq!(sends(&fx), vec![0]);
    assert_eq!(
        only_transition(&fx).reason,
        Reason::TrackerFailed {
            tracker: TrackerId(1)
        }
    );
    h.feed(20_100, Input::TrackerDown(TrackerId(2)));
    assert!(
        h.feed(20_200, Input::TrackerUp(TrackerId(1)))
            .transitions
            .is_empty()
    );
    assert_eq!(h.state(), State::Fault);
    let fx = h.feed(20_300, Input::TrackerUp(TrackerId(2))).clone();
    assert_eq!(fx.transitions.last().map(|t| t.to), Some(State::Backup));
    assert_eq!(fx.transitions[0].reason, Reason::TrackersRecovered);
}

/// Effective priority = configured + weights, kept within 1–254; never moved to or from
/// 255 (RFC 9568 §5.2.4 reserves 255 for the owner).
#[test]
fn rfc9568_5_2_4_effective_priority_stays_within_1_to_254() {
    let mut h = Harness::started(config());
    h.feed(0, Input::TrackerWeight(200));
    assert_eq!(h.instance.effective_priority(), 254);
    h.feed(0, Input::TrackerWeight(-500));
    assert_eq!(h.instance.effective_priority(), 1);
    h.feed(0, Input::TrackerWeight(-30));
    assert_eq!(h.instance.effective_priority(), 70);
    h.feed(0, Input::PriorityOverride(Some(255)));
    assert_eq!(h.instance.effective_priority(), 254);
    h.feed(0, Input::PriorityOverride(None));
    assert_eq!(h.instance.effective_priority(), 70);

    let mut owner = Harness::started(config_with(|c| {
        c.priority = 255;
        c.primary_address = ip(VIP);
    }));
    owner.feed(0, Input::TrackerWeight(-100));
    owner.feed(0, Input::PriorityOverride(Some(10)));
    assert_eq!(owner.instance.effective_priority(), 255);
}

/// A master whose priority changes says so at once, so a better backup can preempt.
#[test]
fn a_master_announces_a_priority_change_at_once() {
    let mut h = Harness::make_master(config());
    let fx = h.feed(20_000, Input::TrackerWeight(-60)).clone();
    assert_eq!(sends(&fx), vec![40]);
    assert!(
        h.feed(20_001, Input::TrackerWeight(-60)).actions.is_empty(),
        "no change, no advert"
    );
}

/// An operator's disable sends priority 0 from a master and holds the instance in Disabled
/// through link and tracker events; enable restarts it.
#[test]
fn admin_disable_and_enable() {
    let mut h = Harness::make_master(config());
    let fx = h.feed(20_000, Input::AdminDisable).clone();
    assert_eq!(sends(&fx), vec![0]);
    assert!(has(&fx, Action::RemoveVips));
    assert_eq!(only_transition(&fx).reason, Reason::AdminDisabled);
    assert!(h.feed(20_100, Input::LinkDown).transitions.is_empty());
    assert!(h.feed(20_200, Input::LinkUp).transitions.is_empty());
    let fx = h.feed(21_000, Input::AdminEnable).clone();
    let to: Vec<_> = fx.transitions.iter().map(|t| t.to).collect();
    assert_eq!(to, vec![State::Initialize, State::Backup]);
}

/// An instance created disabled stays disabled when the daemon starts it.
#[test]
fn disabled_before_startup_stays_disabled() {
    let mut h = Harness::new(config());
    h.feed(0, Input::AdminDisable);
    assert_eq!(h.state(), State::Disabled);
    assert!(h.feed(0, Input::Startup).transitions.is_empty());
    assert_eq!(h.instance.next_deadline(), None);
    let fx = h.feed(10, Input::AdminEnable).clone();
    assert_eq!(fx.transitions.last().map(|t| t.to), Some(State::Backup));
}

// ----- sync groups (keepalived's vrrp_sync_group) ------------------------------------------

const WEB: MemberId = MemberId(7);

/// keepalived vrrp_sync_group: when one member goes to FAULT the others leave MASTER. A
/// held master steps down to BACKUP with a priority-0 advert (so the other router takes
/// over after Skew_Time, as it does for the faulted member) and gives up its addresses;
/// the transition names the member that caused it.
#[test]
fn sync_group_fault_of_a_member_makes_a_master_step_down() {
    let mut h = Harness::make_master(config());
    let fx = h.feed(20_000, Input::SyncGroupHold(Some(WEB))).clone();
    assert_eq!(sends(&fx), vec![0]);
    assert!(has(&fx, Action::RemoveVips));
    let t = only_transition(&fx);
    assert_eq!(
        (t.from, t.to, t.reason),
        (
            State::Master,
            State::Backup,
            Reason::SyncGroup {
                member: WEB,
                became: State::Fault
            }
        )
    );
    assert_eq!(t.reason.label(), "sync_group");
    assert_eq!(t.reason.to_string(), "sync group member #7 is in FAULT");
    assert!(
        h.feed(20_100, Input::SyncGroupHold(Some(MemberId(8))))
            .transitions
            .is_empty(),
        "a second faulted member changes nothing"
    );
}

/// keepalived vrrp_sync_group: the members stay out of MASTER until the faulted member
/// recovers. A held backup whose Master_Down_Timer fires keeps watching instead of taking
/// over; once the hold is lifted the protocol resumes and the next expiry takes over.
#[test]
fn sync_group_held_backup_does_not_take_over_until_released() {
    let mut h = Harness::started(config());
    h.feed(0, Input::SyncGroupHold(Some(WEB)));
    let mdi = h.instance.master_down_interval();
    let mdi_ms = u64::try_from(mdi.as_millis()).unwrap();
    assert!(h.run_until(10 * mdi_ms).is_empty(), "held: no takeover");
    assert_eq!(h.state(), State::Backup);
    assert!(
        h.instance.deadline(Timer::MasterDown).is_some(),
        "still watching for a master"
    );
    h.feed(10 * mdi_ms, Input::SyncGroupHold(None));
    let t = h.run_until(12 * mdi_ms);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, State::Master);
    assert!(matches!(t[0].reason, Reason::MasterDownTimerExpired { .. }));
}

/// A hold that arrives before start-up applies from the start: the instance starts as a
/// backup and stays one.
#[test]
fn sync_group_hold_before_startup() {
    let mut h = Harness::new(config());
    h.feed(0, Input::SyncGroupHold(Some(WEB)));
    h.feed(0, Input::Startup);
    assert!(h.run_until(30_000).is_empty());
    assert_eq!(h.state(), State::Backup);
}

/// keepalived vrrp_sync_group: when one member becomes MASTER the others follow at once,
/// without waiting for their own Master_Down_Timer, even against a master they would not
/// preempt.
#[test]
fn sync_group_master_makes_a_backup_master_at_once() {
    let mut h = Harness::started(config_with(|c| c.preempt = false));
    h.advert(100, "10.0.0.1", 200);
    let fx = h.feed(200, Input::SyncGroupMaster(WEB)).clone();
    let t = only_transition(&fx);
    assert_eq!(
        (t.from, t.to, t.reason),
        (
            State::Backup,
            State::Master,
            Reason::SyncGroup {
                member: WEB,
                became: State::Master
            }
        )
    );
    assert_eq!(t.reason.to_string(), "sync group member #7 became MASTER");
    assert!(has(
        &fx,
        Action::AddVips {
            accept_traffic: true
        }
    ));
    assert_eq!(sends(&fx), vec![100]);
}

/// SyncGroupMaster moves only an unheld backup: a held one stays (the group is held
/// because a member is in FAULT), and Fault, Disabled and Master are left alone.
#[test]
fn sync_group_master_is_ignored_when_held_or_not_backup() {
    let mut h = Harness::started(config());
    h.feed(0, Input::SyncGroupHold(Some(MemberId(8))));
    assert!(
        h.feed(10, Input::SyncGroupMaster(WEB))
            .transitions
            .is_empty()
    );
    h.feed(20, Input::SyncGroupHold(None));
    h.feed(30, Input::LinkDown);
    assert!(
        h.feed(40, Input::SyncGroupMaster(WEB))
            .transitions
            .is_empty()
    );
    assert_eq!(h.state(), State::Fault);
    let mut m = Harness::make_master(config());
    assert!(m.feed(20_000, Input::SyncGroupMaster(WEB)).is_empty());
    let mut d = Harness::started(config());
    d.feed(0, Input::AdminDisable);
    assert!(
        d.feed(10, Input::SyncGroupMaster(WEB))
            .transitions
            .is_empty()
    );
}

/// The address owner is master by definition (RFC 9568 §6.4.1) and its addresses are the
/// interface's own: the sync group does not hold it.
#[test]
fn sync_group_does_not_hold_the_address_owner() {
    let mut owner = Harness::started(config_with(|c| {
        c.priority = 255;
        c.primary_address = ip(VIP);
    }));
    assert_eq!(owner.state(), State::Master);
    assert!(owner.feed(10, Input::SyncGroupHold(Some(WEB))).is_empty());
    assert_eq!(owner.state(), State::Master);
}

/// Two members of one group on one router, coordinated as the runtime does it: a tracker
/// failure of one sends the other from MASTER to BACKUP; recovery lifts the hold; the
/// first to become MASTER again brings the other along.
#[test]
fn sync_group_members_move_together() {
    let mut web = Harness::make_master(config());
    let mut db = Harness::make_master(config_with(|c| {
        c.vrid = Vrid::new(52).unwrap();
        c.virtual_addresses = vec![ip("10.0.0.101")];
    }));
    let fx = web.feed(20_000, Input::TrackerDown(TrackerId(1))).clone();
    assert_eq!(only_transition(&fx).to, State::Fault);
    // The runtime tells the other members that web is in FAULT.
    let fx = db.feed(20_000, Input::SyncGroupHold(Some(WEB))).clone();
    assert_eq!(only_transition(&fx).to, State::Backup);
    // web recovers; the hold is lifted.
    let fx = web.feed(30_000, Input::TrackerUp(TrackerId(1))).clone();
    assert_eq!(fx.transitions.last().map(|t| t.to), Some(State::Backup));
    db.feed(30_000, Input::SyncGroupHold(None));
    // web becomes master first (its timer); db follows at once.
    let t = web.run_until(40_000);
    assert_eq!(t.last().map(|t| t.to), Some(State::Master));
    let fx = db.feed(40_000, Input::SyncGroupMaster(WEB)).clone();
    assert_eq!(only_transition(&fx).to, State::Master);
}

/// Timer firings that are early or stale (the runtime raced a cancel) change nothing.
#[test]
fn stale_and_early_timer_firings_are_ignored() {
    let mut h = Harness::started(config());
    assert!(
        h.feed(1000, Input::TimerFired(Timer::MasterDown))
            .is_empty()
    );
    assert!(h.feed(9000, Input::TimerFired(Timer::Advert)).is_empty());
    assert_eq!(h.state(), State::Backup);
}

// ----- configuration changes -------------------------------------------------------------

/// New addresses on a master apply live: installed, announced, advertised; no state flap.
#[test]
fn live_address_change_on_a_master_does_not_flap() {
    let mut h = Harness::make_master(config());
    let new = config_with(|c| c.virtual_addresses.push(ip("10.0.0.101")));
    let fx = h.feed(20_000, Input::ConfigChanged(&new)).clone();
    assert!(fx.transitions.is_empty());
    assert!(has(
        &fx,
        Action::AddVips {
            accept_traffic: true
        }
    ));
    assert!(has(&fx, Action::SendGratuitous { count: 5 }));
    assert_eq!(sends(&fx), vec![100]);
    assert_eq!(h.instance.advertised_addresses().len(), 2);
}

/// A new interval on a master takes effect at once: advert now, then on the new cadence.
#[test]
fn live_interval_change_on_a_master() {
    let mut h = Harness::make_master(config());
    let new = config_with(|c| c.advert_interval = cs(10));
    let fx = h.feed(20_000, Input::ConfigChanged(&new)).clone();
    assert!(fx.transitions.is_empty());
    assert_eq!(sends(&fx), vec![100]);
    // The next of VRID 51's slots at the new interval: 75 ms into each 100 ms.
    assert_eq!(
        h.instance.deadline(Timer::Advert),
        Some(Time::from_millis(20_075))
    );
}

/// A priority change on a backup applies without a transition.
#[test]
fn live_priority_change_on_a_backup() {
    let mut h = Harness::started(config());
    h.advert(0, "10.0.0.1", 150);
    let new = config_with(|c| c.priority = 120);
    let fx = h.feed(100, Input::ConfigChanged(&new)).clone();
    assert!(fx.transitions.is_empty());
    assert_eq!(h.instance.effective_priority(), 120);
}

/// A new VRID is a different virtual router: the old one stops (priority 0), the new one
/// starts from Initialize.
#[test]
fn identity_change_restarts_the_protocol() {
    let mut h = Harness::make_master(config());
    let new = config_with(|c| c.vrid = Vrid::new(52).unwrap());
    let fx = h.feed(20_000, Input::ConfigChanged(&new)).clone();
    assert_eq!(sends(&fx), vec![0]);
    assert!(has(&fx, Action::RemoveVips));
    let path: Vec<_> = fx.transitions.iter().map(|t| (t.to, t.reason)).collect();
    assert_eq!(
        path,
        vec![
            (State::Initialize, Reason::ConfigChange),
            (State::Backup, Reason::Startup)
        ]
    );
}

/// Becoming the address owner restarts as master at once (RFC 9568 §6.4.1).
#[test]
fn becoming_the_owner_restarts_as_master() {
    let mut h = Harness::started(config());
    let new = config_with(|c| {
        c.priority = 255;
        c.primary_address = ip(VIP);
    });
    let fx = h.feed(100, Input::ConfigChanged(&new)).clone();
    assert_eq!(
        fx.transitions.last().map(|t| t.reason),
        Some(Reason::AddressOwner)
    );
}

/// An invalid config never reaches the engine in practice; if it does, nothing changes.
#[test]
fn an_invalid_config_change_is_ignored() {
    let mut h = Harness::make_master(config());
    let bad = config_with(|c| c.priority = 0);
    assert!(h.feed(20_000, Input::ConfigChanged(&bad)).is_empty());
    assert_eq!(h.instance.config().priority, 100);
}

// ----- conformance replay ----------------------------------------------------------------

/// A recorded sequence replays to the same wire-visible actions at the same times.
#[test]
fn conformance_replay_of_a_takeover_and_a_return() {
    let master = ip("10.0.0.1");
    let steps = vec![
        (Time::ZERO, ScriptInput::Startup),
        (
            Time::from_millis(100),
            ScriptInput::advert(master, 150, cs(100)),
        ),
        (
            Time::from_millis(1100),
            ScriptInput::advert(master, 150, cs(100)),
        ),
        // The master goes silent; we take over at 1100 + 3609.375 ms.
        (
            Time::from_millis(6000),
            ScriptInput::advert(master, 150, cs(100)),
        ),
    ];
    let config = config_with(|c| c.garp.delay = None);
    let records = replay(config, &steps, Time::from_millis(7000)).unwrap();
    let visible: Vec<Record> = records
        .into_iter()
        .filter(|r| !r.is_timer_bookkeeping())
        .collect();
    let takeover = Time::from_millis(1100) + Duration::from_nanos(3_609_375_000);
    let expected = vec![
        Record::Transition(Transition {
            from: State::Initialize,
            to: State::Backup,
            reason: Reason::Startup,
            at: Time::ZERO,
        }),
        Record::Action {
            at: takeover,
            action: Action::AddVips {
                accept_traffic: true,
            },
        },
        Record::Action {
            at: takeover,
            action: Action::SendAdvert { priority: 100 },
        },
        Record::Action {
            at: takeover,
            action: Action::SendGratuitous { count: 5 },
        },
        Record::Transition(Transition {
            from: State::Backup,
            to: State::Master,
            reason: Reason::MasterDownTimerExpired {
                last_master: Some(master),
            },
            at: takeover,
        }),
        // The next adverts on VRID 51's slots, 750 ms into each second.
        Record::Action {
            at: Time::from_millis(4750),
            action: Action::SendAdvert { priority: 100 },
        },
        Record::Action {
            at: Time::from_millis(5750),
            action: Action::SendAdvert { priority: 100 },
        },
        // The parting advert of a master that steps down (ours, not the RFC's; see
        // rfc9568_6_4_3_a_healed_partition_ends_with_one_master_and_garps).
        Record::Action {
            at: Time::from_millis(6000),
            action: Action::SendAdvert { priority: 100 },
        },
        Record::Action {
            at: Time::from_millis(6000),
            action: Action::RemoveVips,
        },
        Record::Transition(Transition {
            from: State::Master,
            to: State::Backup,
            reason: Reason::HigherPriorityAdvert {
                from: master,
                priority: 150,
            },
            at: Time::from_millis(6000),
        }),
    ];
    assert_eq!(visible, expected);
}

// ----- whole-network simulation ----------------------------------------------------------

/// A LAN of instances of one VRID: an advert reaches every other live router one
/// millisecond after it is sent, so simultaneous timers really race.
struct Lan {
    routers: Vec<(Instance, bool)>,
    in_flight: Vec<(Time, usize, IpAddr, u8, AdvertInterval)>,
    now: Time,
    transitions: Vec<(usize, Transition)>,
    /// Partitioned: adverts reach no other router, every router is still up.
    cut: bool,
    rivals: Vec<(usize, RivalMaster)>,
    /// Gratuitous ARP bursts: who sent one, and when.
    garps: Vec<(usize, Time)>,
}

const LATENCY: Duration = Duration::from_millis(1);

impl Lan {
    fn new(configs: Vec<InstanceConfig>) -> Self {
        let mut lan = Lan {
            routers: configs
                .into_iter()
                .map(|c| (Instance::new(c).unwrap(), true))
                .collect(),
            in_flight: Vec::new(),
            now: Time::ZERO,
            transitions: Vec::new(),
            cut: false,
            rivals: Vec::new(),
            garps: Vec::new(),
        };
        for i in 0..lan.routers.len() {
            lan.deliver(i, Input::Startup);
        }
        lan
    }

    fn deliver(&mut self, i: usize, input: Input<'_>) {
        let mut fx = Effects::default();
        self.routers[i].0.handle(input, self.now, &mut fx);
        self.transitions
            .extend(fx.transitions.iter().map(|t| (i, *t)));
        self.rivals.extend(fx.rival_master.map(|r| (i, r)));
        let sender = self.routers[i].0.config().primary_address;
        let interval = self.routers[i].0.config().advert_interval;
        for action in fx.actions {
            if let Action::SendGratuitous { .. } = action {
                self.garps.push((i, self.now));
            }
            if self.cut {
                continue;
            }
            if let Action::SendAdvert { priority } = action {
                for j in 0..self.routers.len() {
                    if j != i {
                        self.in_flight
                            .push((self.now + LATENCY, j, sender, priority, interval));
                    }
                }
            }
        }
    }

    /// Run timers and deliveries up to `until`, in time order across routers. A dead
    /// router neither fires timers nor hears anything.
    fn run_until(&mut self, until: Time) {
        loop {
            let timer = self
                .routers
                .iter()
                .enumerate()
                .filter(|(_, (_, live))| *live)
                .filter_map(|(i, (r, _))| r.next_deadline().map(|(t, d)| (d, i, t)))
                .min();
            let packet = (0..self.in_flight.len()).min_by_key(|&k| self.in_flight[k].0);
            let packet_first = match (timer, packet) {
                (Some((d, ..)), Some(k)) => self.in_flight[k].0 <= d,
                (None, Some(_)) => true,
                _ => false,
            };
            if packet_first {
                let Some(k) = packet else { break };
                let (at, to, src, priority, interval) = self.in_flight.remove(k);
                if at > until {
                    self.in_flight.push((at, to, src, priority, interval));
                    break;
                }
                self.now = at;
                if self.routers[to].1 {
                    self.deliver(
                        to,
                        Input::Advert(ReceivedAdvert {
                            src,
                            priority,
                            interval,
                            addresses: &[],
                        }),
                    );
                }
                continue;
            }
            match timer {
                Some((deadline, i, timer)) if deadline <= until => {
                    self.now = deadline;
                    self.deliver(i, Input::TimerFired(timer));
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn kill(&mut self, i: usize) {
        self.routers[i].1 = false;
        self.in_flight
            .retain(|p| p.2 != self.routers[i].0.config().primary_address);
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&i| self.routers[i].1 && self.routers[i].0.state() == State::Master)
            .collect()
    }
}

fn node(addr: &str, priority: u8, preempt: bool) -> InstanceConfig {
    InstanceConfig {
        priority,
        preempt,
        ..InstanceConfig::new(Vrid::new(51).unwrap(), ip(addr), vec![ip(VIP)])
    }
}

/// RFC 9568 §6.4: the higher priority ends up master; when it dies, the backup takes over
/// exactly Master_Down_Interval after the last advert it heard.
#[test]
fn rfc9568_6_4_two_routers_elect_and_fail_over() {
    let mut lan = Lan::new(vec![
        node("10.0.0.1", 150, true),
        node("10.0.0.2", 100, true),
    ]);
    // Killed between two adverts (they go out on whole seconds), so the last one sent is
    // the last one heard.
    lan.run_until(Time::from_millis(10_500));
    assert_eq!(lan.masters(), vec![0]);
    let last_advert = lan.routers[0].0.deadline(Timer::Advert).unwrap() - Duration::from_secs(1);
    lan.kill(0); // crashed: no more adverts
    lan.run_until(Time::from_millis(20_000));
    assert_eq!(lan.masters(), vec![1]);
    let (_, t) = *lan.transitions.last().unwrap();
    assert_eq!(
        t.at - last_advert,
        LATENCY + Duration::from_nanos(3_609_375_000)
    );
}

/// Tencent Cloud's "dual backup" mode: equal priorities, no preemption. Exactly one master
/// (RFC 9568 §6.4.3: the higher address wins the tie), and the survivor keeps the role when
/// the other returns.
#[test]
fn rfc9568_6_4_3_dual_backup_converges_and_does_not_flap() {
    let mut lan = Lan::new(vec![
        node("10.0.0.1", 50, false),
        node("10.0.0.2", 50, false),
    ]);
    lan.run_until(Time::from_millis(10_000));
    assert_eq!(
        lan.masters(),
        vec![1],
        "equal priority: the higher address wins"
    );
    lan.kill(1);
    lan.run_until(Time::from_millis(20_000));
    assert_eq!(lan.masters(), vec![0]);
    lan.routers[1].1 = true;
    lan.now = Time::from_millis(20_000);
    lan.deliver(1, Input::Shutdown);
    lan.deliver(1, Input::Startup);
    lan.run_until(Time::from_millis(60_000));
    assert_eq!(
        lan.masters(),
        vec![0],
        "no preemption: the old master stays backup"
    );
}

/// Partition and heal. Cut off from each other, both routers become master. After the heal
/// exactly one is master (the higher priority) within one Advertisement_Interval plus
/// Skew_Time, whichever router's advert crosses first (RFC 9568 §6.4.3); both report the
/// other as a dual master, and the survivor re-announces its addresses after the heal, so
/// clients that followed the loser come back.
#[test]
fn rfc9568_6_4_3_a_healed_partition_ends_with_one_master_and_garps() {
    // Heal at every phase of the two routers' advert cadences, so each side's advert is
    // the first across in some runs.
    for offset in (0..1000).step_by(50) {
        let mut lan = Lan::new(vec![
            node("10.0.0.1", 150, true),
            node("10.0.0.2", 100, true),
        ]);
        lan.run_until(Time::from_millis(10_000));
        assert_eq!(lan.masters(), vec![0]);
        lan.cut = true;
        lan.run_until(Time::from_millis(20_000));
        assert_eq!(lan.masters(), vec![0, 1], "partitioned: both are master");
        assert!(lan.rivals.is_empty());
        let heal = Time::from_millis(20_000 + offset);
        lan.run_until(heal);
        lan.cut = false;
        lan.run_until(Time::from_millis(30_000));
        assert_eq!(lan.masters(), vec![0], "offset {offset}");
        let (i, t) = *lan.transitions.last().unwrap();
        assert_eq!((i, t.to), (1, State::Backup));
        let limit = Duration::from_secs(1) + lan.routers[1].0.skew_time();
        assert!(
            t.at - heal <= limit + LATENCY,
            "offset {offset}: one master {:?} after the heal",
            t.at - heal
        );
        let seen: Vec<(usize, IpAddr, RivalOutcome)> = lan
            .rivals
            .iter()
            .map(|(i, r)| (*i, r.from, r.outcome))
            .collect();
        assert_eq!(
            seen,
            if seen.first().map(|s| s.0) == Some(0) {
                vec![
                    (0, ip("10.0.0.2"), RivalOutcome::StayedMaster),
                    (1, ip("10.0.0.1"), RivalOutcome::SteppedDown),
                ]
            } else {
                vec![
                    (1, ip("10.0.0.1"), RivalOutcome::SteppedDown),
                    (0, ip("10.0.0.2"), RivalOutcome::StayedMaster),
                ]
            },
            "offset {offset}"
        );
        assert!(
            lan.garps.iter().any(|&(i, at)| i == 0 && at >= heal),
            "offset {offset}: the survivor re-announces its addresses after the heal"
        );
    }
}

/// A clean stop (priority 0) hands over after Skew_Time, not Master_Down_Interval.
#[test]
fn rfc9568_6_4_3_clean_stop_hands_over_after_skew_time() {
    let mut lan = Lan::new(vec![
        node("10.0.0.1", 150, true),
        node("10.0.0.2", 100, true),
    ]);
    lan.run_until(Time::from_millis(10_000));
    lan.deliver(0, Input::Shutdown);
    lan.routers[0].1 = false;
    lan.run_until(Time::from_millis(20_000));
    let (i, t) = *lan.transitions.last().unwrap();
    assert_eq!(i, 1);
    assert_eq!(
        t.reason,
        Reason::PriorityZeroFrom {
            from: ip("10.0.0.1")
        }
    );
    assert_eq!(
        t.at - Time::from_millis(10_000),
        LATENCY + Duration::from_nanos(609_375_000)
    );
}

// ----- invariants under random inputs ----------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Advert {
        from: u8,
        priority: u8,
        interval: u16,
    },
    Wait(u16),
    LinkDown,
    LinkUp,
    TrackerDown(u8),
    TrackerUp(u8),
    Weight(i16),
    Override(Option<u8>),
    SyncHold(Option<u8>),
    SyncMaster(u8),
    Disable,
    Enable,
    Shutdown,
    Startup,
    Reconfigure {
        priority: u8,
        interval: u16,
        preempt: bool,
        vips: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..5, 0u8..=255, prop_oneof![Just(100u16), 1u16..=4095]).prop_map(
            |(from, priority, interval)| Op::Advert { from, priority, interval }
        ),
        4 => (1u16..5000).prop_map(Op::Wait),
        1 => Just(Op::LinkDown),
        1 => Just(Op::LinkUp),
        1 => (0u8..3).prop_map(Op::TrackerDown),
        1 => (0u8..3).prop_map(Op::TrackerUp),
        1 => (-300i16..300).prop_map(Op::Weight),
        1 => proptest::option::of(1u8..=255).prop_map(Op::Override),
        1 => proptest::option::of(0u8..3).prop_map(Op::SyncHold),
        1 => (0u8..3).prop_map(Op::SyncMaster),
        1 => Just(Op::Disable),
        1 => Just(Op::Enable),
        1 => Just(Op::Shutdown),
        1 => Just(Op::Startup),
        1 => (1u8..=255, prop_oneof![Just(100u16), 1u16..=4095], any::<bool>(), 1u8..4)
            .prop_map(|(priority, interval, preempt, vips)| Op::Reconfigure { priority, interval, preempt, vips }),
    ]
}

proptest! {
    /// Whatever happens, in any order: the timers match the state (a master has its
    /// Adver_Timer and no Master_Down_Timer, a backup the reverse, Fault/Disabled/Initialize
    /// none); addresses are added only on becoming or being master and removed only on
    /// leaving it; transitions chain; the effective priority is 255 only for the owner.
    #[test]
    fn invariants_hold_under_any_input_sequence(ops in proptest::collection::vec(op(), 1..120), v2 in any::<bool>()) {
        let version = if v2 { Version::V2 } else { Version::V3 };
        let base = config_with(|c| c.version = version);
        let mut instance = Instance::new(base.clone()).unwrap();
        let mut fx = Effects::default();
        let mut now = Time::ZERO;
        let mut holds_vips = false;
        instance.handle(Input::Startup, now, &mut fx);
        for op in ops {
            let before = instance.state();
            fx.clear();
            let peers = ["10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
            let config;
            match op {
                Op::Advert { from, priority, interval } => {
                    let interval = if v2 { cs(100) } else { cs(interval) };
                    instance.handle(Input::Advert(ReceivedAdvert {
                        src: ip(peers[usize::from(from) - 1]), priority, interval, addresses: &[],
                    }), now, &mut fx);
                }
                Op::Wait(ms) => {
                    now = now + Duration::from_millis(u64::from(ms));
                    instance.fire_due_timers(now, &mut fx);
                }
                Op::LinkDown => instance.handle(Input::LinkDown, now, &mut fx),
                Op::LinkUp => instance.handle(Input::LinkUp, now, &mut fx),
                Op::TrackerDown(t) => instance.handle(Input::TrackerDown(TrackerId(t.into())), now, &mut fx),
                Op::TrackerUp(t) => instance.handle(Input::TrackerUp(TrackerId(t.into())), now, &mut fx),
                Op::Weight(w) => instance.handle(Input::TrackerWeight(w.into()), now, &mut fx),
                Op::Override(p) => instance.handle(Input::PriorityOverride(p), now, &mut fx),
                Op::SyncHold(m) => instance.handle(Input::SyncGroupHold(m.map(|m| MemberId(m.into()))), now, &mut fx),
                Op::SyncMaster(m) => instance.handle(Input::SyncGroupMaster(MemberId(m.into())), now, &mut fx),
                Op::Disable => instance.handle(Input::AdminDisable, now, &mut fx),
                Op::Enable => instance.handle(Input::AdminEnable, now, &mut fx),
                Op::Shutdown => instance.handle(Input::Shutdown, now, &mut fx),
                Op::Startup => instance.handle(Input::Startup, now, &mut fx),
                Op::Reconfigure { priority, interval, preempt, vips } => {
                    config = InstanceConfig {
                        priority: if priority == 255 { 254 } else { priority },
                        advert_interval: if v2 { cs(100 * (interval % 3 + 1)) } else { cs(interval) },
                        preempt,
                        virtual_addresses: (0..vips).map(|i| ip(&format!("10.0.0.{}", 100 + i))).collect(),
                        ..base.clone()
                    };
                    instance.handle(Input::ConfigChanged(&config), now, &mut fx);
                }
            }
            let mut state = before;
            for t in &fx.transitions {
                prop_assert_eq!(t.from, state, "transitions chain");
                prop_assert!(t.at == now || t.at <= now, "transitions are not in the future");
                state = t.to;
            }
            prop_assert_eq!(state, instance.state());
            for a in &fx.actions {
                match a {
                    Action::AddVips { .. } => holds_vips = true,
                    Action::RemoveVips => {
                        prop_assert!(holds_vips, "removes only what it added");
                        holds_vips = false;
                    }
                    Action::ArmTimer { deadline, .. } => prop_assert!(*deadline >= now),
                    _ => {}
                }
            }
            let s = instance.state();
            prop_assert_eq!(holds_vips, s == State::Master, "VIPs held exactly while master");
            prop_assert_eq!(instance.deadline(Timer::Advert).is_some(), s == State::Master);
            prop_assert_eq!(instance.deadline(Timer::MasterDown).is_some(), s == State::Backup);
            if matches!(s, State::Fault | State::Disabled | State::Initialize) {
                prop_assert_eq!(instance.next_deadline(), None);
            }
            prop_assert!(instance.effective_priority() >= 1);
            prop_assert!(instance.effective_priority() <= 254);
        }
    }
}
