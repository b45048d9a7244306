//! Turning API values into text for people: times, ages, durations, enum names, and the
//! one-line rendering of events and transitions.

use havip_proto::v1::{
    ChangeKind, ConfigChangeSummary, DaemonEvent, DualMaster, DualMasterOutcome, Event, EventKind,
    State, Transition, TransitionReason, event::Payload,
};
use jiff::tz::TimeZone;
use pbjson_types::{Duration, Timestamp};

/// "Now" and the local time zone, read once so that every line of one output agrees.
#[derive(Debug, Clone)]
pub struct Clock {
    pub now: jiff::Timestamp,
    pub tz: TimeZone,
}

impl Clock {
    pub fn system() -> Self {
        Self {
            now: jiff::Timestamp::now(),
            tz: TimeZone::system(),
        }
    }

    /// "2026-11-26 12:00:01 (3m ago)" in local time; "-" when unset.
    pub fn time(&self, ts: Option<&Timestamp>) -> String {
        match ts.and_then(to_jiff) {
            Some(t) => format!("{} ({})", self.local(t), age(self.now.duration_since(t))),
            None => "-".to_owned(),
        }
    }

    /// "2026-11-26 12:00:01" in local time; "-" when unset. For lines that are read later,
    /// such as a log of events, where an age would be stale by then.
    pub fn time_plain(&self, ts: Option<&Timestamp>) -> String {
        match ts.and_then(to_jiff) {
            Some(t) => self.local(t),
            None => "-".to_owned(),
        }
    }

    fn local(&self, t: jiff::Timestamp) -> String {
        self.tz
            .to_datetime(t)
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    }
}

fn to_jiff(ts: &Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(ts.seconds, ts.nanos).ok()
}

/// A coarse age in one unit, "42s ago", "3m ago", "5h ago", "12d ago"; "in 2s" for a time
/// ahead of the local clock.
pub fn age(elapsed: jiff::SignedDuration) -> String {
    let secs = elapsed.as_secs();
    let magnitude = secs.unsigned_abs();
    let text = match magnitude {
        0..60 => format!("{magnitude}s"),
        60..3600 => format!("{}m", magnitude / 60),
        3600..172_800 => format!("{}h", magnitude / 3600),
        _ => format!("{}d", magnitude / 86_400),
    };
    if secs < 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// humantime's spelling ("1s", "100ms", "1m 30s"); "-" when unset.
pub fn duration(d: Option<&Duration>) -> String {
    let Some(d) = d else { return "-".to_owned() };
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(secs), Ok(nanos)) => {
            humantime::format_duration(std::time::Duration::new(secs, nanos)).to_string()
        }
        // Negative durations mean nothing here; show them raw rather than hide them.
        _ => format!("{}s {}ns", d.seconds, d.nanos),
    }
}

/// "MASTER" for `STATE_MASTER`; the number for a state this build does not know.
pub fn state(value: i32) -> String {
    match State::try_from(value) {
        Ok(s) => strip_prefix(s.as_str_name(), "STATE_"),
        Err(_) => format!("STATE({value})"),
    }
}

/// "state-changed" for `EVENT_KIND_STATE_CHANGED`, the spelling `--kind` takes.
pub fn kind(value: i32) -> String {
    match EventKind::try_from(value) {
        Ok(k) => strip_prefix(k.as_str_name(), "EVENT_KIND_")
            .to_lowercase()
            .replace('_', "-"),
        Err(_) => format!("kind({value})"),
    }
}

/// "update" for `CHANGE_KIND_UPDATE`.
pub fn change_kind(value: i32) -> String {
    match ChangeKind::try_from(value) {
        Ok(k) => strip_prefix(k.as_str_name(), "CHANGE_KIND_").to_lowercase(),
        Err(_) => format!("change({value})"),
    }
}

fn strip_prefix(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}

/// The reason's description, falling back to its code, naming the peer if the
/// description does not already.
pub fn reason(reason: Option<&TransitionReason>) -> String {
    let Some(r) = reason else {
        return String::new();
    };
    let mut text = if r.description.is_empty() {
        r.code.clone()
    } else {
        r.description.clone()
    };
    if !r.peer_address.is_empty() && !text.contains(&r.peer_address) {
        text.push_str(&format!(" (peer {})", r.peer_address));
    }
    text
}

/// "BACKUP → MASTER".
pub fn states(t: &Transition) -> String {
    format!("{} → {}", state(t.from), state(t.to))
}

/// "BACKUP → MASTER: master-down timer expired (last master seen: 10.0.0.1)".
pub fn transition(t: &Transition) -> String {
    let why = reason(t.reason.as_ref());
    if why.is_empty() {
        states(t)
    } else {
        format!("{}: {why}", states(t))
    }
}

fn config_change(c: &ConfigChangeSummary) -> String {
    let mut text = format!("revision {}", c.revision);
    if !c.actor.is_empty() {
        text.push_str(&format!(" by {}", c.actor));
    }
    if !c.changed_fields.is_empty() {
        text.push_str(&format!(": {}", c.changed_fields.join(", ")));
    }
    if !c.comment.is_empty() {
        text.push_str(&format!(" ({:?})", c.comment));
    }
    text
}

fn daemon(d: &DaemonEvent) -> String {
    match (d.version.is_empty(), d.detail.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("havipd {}", d.version),
        (true, false) => d.detail.clone(),
        (false, false) => format!("havipd {}: {}", d.version, d.detail),
    }
}

fn tracker_change(t: &havip_proto::v1::TrackerChange) -> String {
    let health = if t.healthy { "healthy" } else { "failing" };
    let mut line = format!("tracker {} {health}", t.tracker);
    if !t.detail.is_empty() {
        line.push_str(&format!(" ({})", t.detail));
    }
    line.push_str(&format!(
        "; priority {:+} → {}",
        t.priority_change, t.effective_priority
    ));
    line
}

fn dual_master(d: &DualMaster) -> String {
    let outcome = match DualMasterOutcome::try_from(d.outcome) {
        Ok(DualMasterOutcome::StayedMaster) => "; stayed master and re-announced the addresses",
        Ok(DualMasterOutcome::SteppedDown) => "; stepped down to BACKUP",
        _ => "",
    };
    format!(
        "{} (priority {}) is master too, ours {}{outcome}",
        d.peer_address, d.peer_priority, d.priority
    )
}

/// One event as a line: time, seq, instance, kind, what happened. The narrow columns are
/// padded to typical widths so that a stream of lines mostly lines up; a stream cannot
/// know its widest cell in advance.
pub fn event_line(event: &Event, clock: &Clock) -> String {
    let detail = match &event.payload {
        Some(Payload::StateChanged(t)) => transition(t),
        Some(Payload::ConfigChanged(c)) => config_change(c),
        Some(Payload::Daemon(d)) => daemon(d),
        Some(Payload::TrackerChanged(t)) => tracker_change(t),
        Some(Payload::DualMaster(d)) => dual_master(d),
        None => String::new(),
    };
    let instance = if event.instance.is_empty() {
        "-"
    } else {
        &event.instance
    };
    let line = format!(
        "{}  {:>6}  {:<12}  {:<16}  {}",
        clock.time_plain(event.time.as_ref()),
        event.seq,
        instance,
        kind(event.kind),
        detail
    );
    line.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_proto::v1::{ConfigChangeSummary, TransitionReason};

    fn utc_clock(now: &str) -> Clock {
        Clock {
            now: now.parse().unwrap(),
            tz: TimeZone::UTC,
        }
    }

    fn ts(rfc3339: &str) -> Timestamp {
        let t: jiff::Timestamp = rfc3339.parse().unwrap();
        Timestamp {
            seconds: t.as_second(),
            nanos: t.subsec_nanosecond(),
        }
    }

    #[test]
    fn times_are_local_with_an_age() {
        let clock = utc_clock("2026-11-26T12:03:30Z");
        assert_eq!(
            clock.time(Some(&ts("2026-11-26T12:00:01.5Z"))),
            "2026-11-26 12:00:01 (3m ago)"
        );
        assert_eq!(
            clock.time_plain(Some(&ts("2026-11-26T12:00:01Z"))),
            "2026-11-26 12:00:01"
        );
        assert_eq!(clock.time(None), "-");

        let plus_one = Clock {
            tz: TimeZone::fixed(jiff::tz::offset(1)),
            ..clock
        };
        assert_eq!(
            plus_one.time_plain(Some(&ts("2026-11-26T12:00:01Z"))),
            "2026-11-26 13:00:01"
        );
    }

    #[test]
    fn ages_use_one_coarse_unit() {
        let secs = jiff::SignedDuration::from_secs;
        assert_eq!(age(secs(0)), "0s ago");
        assert_eq!(age(secs(59)), "59s ago");
        assert_eq!(age(secs(60)), "1m ago");
        assert_eq!(age(secs(3599)), "59m ago");
        assert_eq!(age(secs(3600)), "1h ago");
        assert_eq!(age(secs(47 * 3600)), "47h ago");
        assert_eq!(age(secs(3 * 86_400)), "3d ago");
        assert_eq!(age(secs(-2)), "in 2s");
    }

    #[test]
    fn durations_read_like_the_flags_that_set_them() {
        let d = |seconds, nanos| duration(Some(&Duration { seconds, nanos }));
        assert_eq!(d(1, 0), "1s");
        assert_eq!(d(0, 100_000_000), "100ms");
        assert_eq!(d(90, 0), "1m 30s");
        assert_eq!(d(0, 0), "0s");
        assert_eq!(duration(None), "-");
    }

    #[test]
    fn enum_names_lose_their_prefix() {
        assert_eq!(state(State::Master as i32), "MASTER");
        assert_eq!(state(42), "STATE(42)");
        assert_eq!(kind(EventKind::StateChanged as i32), "state-changed");
        assert_eq!(kind(EventKind::DaemonStopping as i32), "daemon-stopping");
        assert_eq!(change_kind(ChangeKind::Update as i32), "update");
    }

    #[test]
    fn state_change_events_read_as_a_sentence() {
        let event = Event {
            seq: 42,
            time: Some(ts("2026-11-26T12:00:01Z")),
            kind: EventKind::StateChanged as i32,
            instance: "web".into(),
            payload: Some(Payload::StateChanged(Transition {
                instance: "web".into(),
                from: State::Backup as i32,
                to: State::Master as i32,
                reason: Some(TransitionReason {
                    code: "master_down_timer".into(),
                    description: "master-down timer expired (last master seen: 10.0.0.1)".into(),
                    peer_address: "10.0.0.1".into(),
                }),
                ..Default::default()
            })),
        };
        assert_eq!(
            event_line(&event, &utc_clock("2026-11-26T12:00:02Z")),
            "2026-11-26 12:00:01      42  web           state-changed     \
             BACKUP → MASTER: master-down timer expired (last master seen: 10.0.0.1)"
        );
    }

    #[test]
    fn config_and_daemon_events() {
        let clock = utc_clock("2026-11-26T12:00:02Z");
        let updated = Event {
            seq: 7,
            time: Some(ts("2026-11-26T12:00:01Z")),
            kind: EventKind::InstanceUpdated as i32,
            instance: "db".into(),
            payload: Some(Payload::ConfigChanged(ConfigChangeSummary {
                revision: 4,
                actor: "uid:0".into(),
                changed_fields: vec!["priority".into(), "virtual_addresses".into()],
                comment: "move traffic".into(),
                ..Default::default()
            })),
        };
        assert_eq!(
            event_line(&updated, &clock),
            "2026-11-26 12:00:01       7  db            instance-updated  \
             revision 4 by uid:0: priority, virtual_addresses (\"move traffic\")"
        );
        let started = Event {
            seq: 1,
            time: Some(ts("2026-11-26T12:00:01Z")),
            kind: EventKind::DaemonStarted as i32,
            instance: String::new(),
            payload: Some(Payload::Daemon(DaemonEvent {
                version: "0.1.0".into(),
                detail: String::new(),
            })),
        };
        assert_eq!(
            event_line(&started, &clock),
            "2026-11-26 12:00:01       1  -             daemon-started    havipd 0.1.0"
        );
    }

    #[test]
    fn dual_master_events_name_the_other_master() {
        let event = Event {
            seq: 9,
            time: Some(ts("2026-11-26T12:00:01Z")),
            kind: EventKind::DualMaster as i32,
            instance: "web".into(),
            payload: Some(Payload::DualMaster(DualMaster {
                peer_address: "10.0.0.2".into(),
                peer_priority: 100,
                priority: 150,
                outcome: DualMasterOutcome::StayedMaster as i32,
            })),
        };
        assert_eq!(
            event_line(&event, &utc_clock("2026-11-26T12:00:02Z")),
            "2026-11-26 12:00:01       9  web           dual-master       \
             10.0.0.2 (priority 100) is master too, ours 150; stayed master and re-announced \
             the addresses"
        );
    }

    #[test]
    fn reasons_fall_back_to_the_code_and_name_the_peer_once() {
        let r = |code: &str, description: &str, peer: &str| {
            reason(Some(&TransitionReason {
                code: code.into(),
                description: description.into(),
                peer_address: peer.into(),
            }))
        };
        assert_eq!(r("interface_down", "", ""), "interface_down");
        assert_eq!(
            r(
                "higher_priority_advert",
                "higher-priority advert",
                "10.0.0.1"
            ),
            "higher-priority advert (peer 10.0.0.1)"
        );
        assert_eq!(
            r("x", "advert from 10.0.0.1", "10.0.0.1"),
            "advert from 10.0.0.1"
        );
        assert_eq!(reason(None), "");
    }
}
