//! How get-instance shows trackers and a priority override: configuration (kind, target,
//! weight) next to live status (healthy, what it adds to the priority, detail).

use havip_proto::v1::tracker::Check;
use havip_proto::v1::{PriorityOverride, Tracker, TrackerStatus};

use crate::output::format::Clock;
use crate::output::table::Table;

/// "interface", "script", "file", "report".
pub fn kind(tracker: &Tracker) -> &'static str {
    match &tracker.check {
        Some(Check::Interface(_)) => "interface",
        Some(Check::Script(_)) => "script",
        Some(Check::File(_)) => "file",
        Some(Check::Report(_)) => "report",
        None => "-",
    }
}

/// What the tracker follows: the interface, the command line, the file, the check name.
pub fn target(tracker: &Tracker) -> String {
    match &tracker.check {
        Some(Check::Interface(i)) => i.interface.clone(),
        Some(Check::Script(s)) => std::iter::once(s.path.as_str())
            .chain(s.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        Some(Check::File(f)) => f.path.clone(),
        Some(Check::Report(r)) => r.check.clone(),
        None => "-".to_owned(),
    }
}

/// The tracker's detail, with how many runs were killed at their timeout, if any.
fn detail(status: &TrackerStatus) -> String {
    match status.timeouts {
        0 => status.detail.clone(),
        1 => format!("{} (1 run timed out)", status.detail),
        n => format!("{} ({n} runs timed out)", status.detail),
    }
}

/// The "Trackers:" section under get-instance's key/value view; empty without trackers.
/// A tracker the daemon reports no status for (yet) shows "-".
pub fn table(trackers: &[Tracker], statuses: &[TrackerStatus]) -> String {
    if trackers.is_empty() && statuses.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&[
        "NAME", "KIND", "TARGET", "WEIGHT", "HEALTHY", "PRIORITY", "DETAIL",
    ]);
    for tracker in trackers {
        let status = statuses.iter().find(|s| s.name == tracker.name);
        table.push(vec![
            tracker.name.clone(),
            kind(tracker).to_owned(),
            target(tracker),
            tracker.weight.to_string(),
            status.map_or("-".to_owned(), |s| yes_no(s.healthy)),
            status.map_or("-".to_owned(), |s| format!("{:+}", s.priority_change)),
            status.map_or(String::new(), detail),
        ]);
    }
    // Status for a tracker the spec no longer names (a daemon mid-update): still shown.
    for status in statuses {
        if !trackers.iter().any(|t| t.name == status.name) {
            table.push(vec![
                status.name.clone(),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                yes_no(status.healthy),
                format!("{:+}", status.priority_change),
                detail(status),
            ]);
        }
    }
    let mut text = "Trackers:\n".to_owned();
    for line in table.render().lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// "1 until 2026-11-26 13:00:00 (in 57m): kernel update", or `None` without an override.
pub fn override_text(o: Option<&PriorityOverride>, clock: &Clock) -> Option<String> {
    let o = o.filter(|o| o.priority != 0)?;
    let until = match &o.expires {
        Some(_) => format!("until {}", clock.time(o.expires.as_ref())),
        None => "until cleared".to_owned(),
    };
    let mut text = format!("priority {} {until}", o.priority);
    if !o.reason.is_empty() {
        text.push_str(&format!(": {}", o.reason));
    }
    Some(text)
}

/// A one-line summary of an override for the demote/promote commands.
pub fn override_summary(o: &PriorityOverride, clock: &Clock) -> String {
    let until = if o.expires.is_some() {
        format!("until {}", clock.time_plain(o.expires.as_ref()))
    } else {
        "until cleared".to_owned()
    };
    format!("priority {} {until}", o.priority)
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_proto::v1::{InterfaceCheck, ScriptCheck};
    use pbjson_types::Timestamp;

    fn clock() -> Clock {
        Clock {
            now: "2026-11-26T12:03:00Z".parse().unwrap(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn trackers_show_config_and_status_side_by_side() {
        let trackers = vec![
            Tracker {
                name: "eth0".into(),
                weight: 0,
                check: Some(Check::Interface(InterfaceCheck {
                    interface: "eth0".into(),
                })),
            },
            Tracker {
                name: "haproxy".into(),
                weight: -20,
                check: Some(Check::Script(ScriptCheck {
                    path: "/etc/havip/check_haproxy.sh".into(),
                    args: vec!["--port".into(), "80".into()],
                    ..Default::default()
                })),
            },
        ];
        let statuses = vec![TrackerStatus {
            name: "haproxy".into(),
            healthy: false,
            detail: "exit status 1".into(),
            since: None,
            priority_change: -20,
            ..Default::default()
        }];
        assert_eq!(
            table(&trackers, &statuses),
            "\
Trackers:
  NAME     KIND       TARGET                                 WEIGHT  HEALTHY  PRIORITY  DETAIL
  eth0     interface  eth0                                   0       -        -
  haproxy  script     /etc/havip/check_haproxy.sh --port 80  -20     no       -20       exit status 1
"
        );
        assert_eq!(table(&[], &[]), "");
    }

    #[test]
    fn overrides_say_until_when_and_why() {
        let o = PriorityOverride {
            priority: 1,
            expires: Some(Timestamp {
                seconds: 1_795_694_400 + 3600,
                nanos: 0,
            }),
            reason: "kernel update".into(),
        };
        assert_eq!(
            override_text(Some(&o), &clock()).unwrap(),
            "priority 1 until 2026-11-26 13:00:00 (in 57m): kernel update"
        );
        let forever = PriorityOverride {
            priority: 254,
            ..Default::default()
        };
        assert_eq!(
            override_text(Some(&forever), &clock()).unwrap(),
            "priority 254 until cleared"
        );
        assert_eq!(override_text(None, &clock()), None);
        assert_eq!(
            override_text(Some(&PriorityOverride::default()), &clock()),
            None
        );
    }
}
