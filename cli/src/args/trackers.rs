//! The tracker flags of create-instance and update-instance (`--track-interface`,
//! `--track-script`, `--track-file`, `--track-report`) and their one syntax: a short form
//! `NAME:TARGET[:WEIGHT]` for the common case, and a `key=value,…` form that can set every
//! field.

use clap::Args;
use havip_proto::v1::tracker::Check;
use havip_proto::v1::{FileCheck, HealthReportCheck, InterfaceCheck, ScriptCheck, Tracker};

use super::parse_duration;

/// The tracker syntax, shown in create-instance's and update-instance's `--help`; a macro
/// so that `concat!` can put it in front of their examples.
#[macro_export]
#[doc(hidden)]
macro_rules! tracker_help {
    () => {
        "\
Trackers (keepalived's track_interface, track_script, track_file) decide together with \
VRRP who should be master. Each flag takes a short form or a key=value list:

  --track-interface IF[:WEIGHT]                     e.g. eth1, eth1:-20
  --track-script NAME:PATH[:WEIGHT]                 e.g. haproxy:/usr/local/bin/check_haproxy:-20
  --track-file NAME:PATH[:WEIGHT]                   e.g. drain:/run/drain:-1
  --track-report NAME:CHECK[:WEIGHT]                e.g. repl:mysql-replication
  --track-script 'name=haproxy,path=/usr/local/bin/check_haproxy,arg=--port,arg=8080,\\
                  interval=2s,timeout=1s,rise=2,fall=2,user=haproxy,weight=-20'

Keys: name, weight; interface (interface); path, arg (repeat for several), user, interval, \
timeout, rise, fall (script); path (file); check (report). A value cannot contain a comma; \
for such arguments use a wrapper script or 'havipctl apply -f'.

WEIGHT as in keepalived: negative is added to the priority while the tracker fails, \
positive while it is healthy, 0 (the default, but 1 for files) puts the instance in FAULT \
while it fails. A file's value is multiplied by its weight. On update-instance the tracker \
flags replace the whole list; --clear-trackers removes every tracker."
    };
}

/// Tracker flags shared by create-instance and update-instance.
#[derive(Debug, Default, Args)]
pub struct TrackerFlags {
    /// Follow an interface's link: IF[:WEIGHT] or key=value list; repeat for several
    #[arg(long, value_name = "IF[:WEIGHT]", value_parser = parse_interface_tracker, help_heading = "Trackers")]
    pub track_interface: Vec<Tracker>,

    /// Run a check script: NAME:PATH[:WEIGHT] or
    /// name=N,path=P[,arg=A…][,interval=D][,timeout=D][,rise=N][,fall=N][,user=U][,weight=W]
    #[arg(long, value_name = "NAME:PATH[:WEIGHT]", value_parser = parse_script_tracker, help_heading = "Trackers")]
    pub track_script: Vec<Tracker>,

    /// Read an integer from a file: NAME:PATH[:WEIGHT] (weight defaults to 1)
    #[arg(long, value_name = "NAME:PATH[:WEIGHT]", value_parser = parse_file_tracker, help_heading = "Trackers")]
    pub track_file: Vec<Tracker>,

    /// Follow health reports ('havipctl report-health CHECK'): NAME:CHECK[:WEIGHT]
    #[arg(long, value_name = "NAME:CHECK[:WEIGHT]", value_parser = parse_report_tracker, help_heading = "Trackers")]
    pub track_report: Vec<Tracker>,
}

impl TrackerFlags {
    /// Every tracker given, in the order of the kinds (interfaces, scripts, files,
    /// reports) and, within a kind, the order given.
    pub fn trackers(&self) -> Vec<Tracker> {
        self.track_interface
            .iter()
            .chain(&self.track_script)
            .chain(&self.track_file)
            .chain(&self.track_report)
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.track_interface.is_empty()
            && self.track_script.is_empty()
            && self.track_file.is_empty()
            && self.track_report.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Interface,
    Script,
    File,
    Report,
}

impl Kind {
    /// The key that names the target in the key=value form.
    fn target_key(self) -> &'static str {
        match self {
            Kind::Interface => "interface",
            Kind::Script | Kind::File => "path",
            Kind::Report => "check",
        }
    }

    fn short_form(self) -> &'static str {
        match self {
            Kind::Interface => "IF[:WEIGHT]",
            Kind::Script | Kind::File => "NAME:PATH[:WEIGHT]",
            Kind::Report => "NAME:CHECK[:WEIGHT]",
        }
    }

    fn default_weight(self) -> i32 {
        // keepalived's track_file weight defaults to 1: the file's value is the change.
        if self == Kind::File { 1 } else { 0 }
    }
}

pub fn parse_interface_tracker(s: &str) -> Result<Tracker, String> {
    parse(s, Kind::Interface)
}

pub fn parse_script_tracker(s: &str) -> Result<Tracker, String> {
    parse(s, Kind::Script)
}

pub fn parse_file_tracker(s: &str) -> Result<Tracker, String> {
    parse(s, Kind::File)
}

pub fn parse_report_tracker(s: &str) -> Result<Tracker, String> {
    parse(s, Kind::Report)
}

fn parse(s: &str, kind: Kind) -> Result<Tracker, String> {
    let first = s.split(',').next().unwrap_or_default();
    if first.contains('=') {
        parse_keys(s, kind)
    } else {
        parse_short(s, kind)
    }
}

/// `NAME:TARGET[:WEIGHT]`, or `IF[:WEIGHT]` for interfaces. A last part that is an
/// integer is the weight, so a path may itself contain ':'.
fn parse_short(s: &str, kind: Kind) -> Result<Tracker, String> {
    let usage = || {
        format!(
            "expected {} or a key=value list (see --help)",
            kind.short_form()
        )
    };
    let (body, weight) = match s.rsplit_once(':') {
        Some((body, last)) if last.parse::<i32>().is_ok() || last.starts_with(['-', '+']) => {
            let weight = last
                .parse::<i32>()
                .map_err(|_| format!("'{last}' is not a weight (an integer, e.g. -20)"))?;
            (body, weight)
        }
        _ => (s, kind.default_weight()),
    };
    let (name, target) = if kind == Kind::Interface {
        (body, body)
    } else {
        body.split_once(':').ok_or_else(usage)?
    };
    if name.is_empty() || target.is_empty() {
        return Err(usage());
    }
    Ok(tracker(name, weight, kind, target, ScriptCheck::default()))
}

fn parse_keys(s: &str, kind: Kind) -> Result<Tracker, String> {
    let mut name = None;
    let mut target = None;
    let mut weight = kind.default_weight();
    let mut script = ScriptCheck::default();
    for pair in s.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("'{pair}' is not key=value"))?;
        let script_only = |key: &str| {
            if kind == Kind::Script {
                Ok(())
            } else {
                Err(format!("'{key}' applies to --track-script only"))
            }
        };
        match key {
            "name" => name = Some(value),
            "weight" => {
                weight = value
                    .parse()
                    .map_err(|_| format!("weight '{value}' is not an integer"))?;
            }
            k if k == kind.target_key() => target = Some(value),
            "arg" => {
                script_only(key)?;
                script.args.push(value.to_owned());
            }
            "user" => {
                script_only(key)?;
                script.user = value.to_owned();
            }
            "interval" => {
                script_only(key)?;
                script.interval =
                    Some(parse_duration(value).map_err(|e| format!("interval: {e}"))?);
            }
            "timeout" => {
                script_only(key)?;
                script.timeout = Some(parse_duration(value).map_err(|e| format!("timeout: {e}"))?);
            }
            "rise" | "fall" => {
                script_only(key)?;
                let n = value
                    .parse()
                    .map_err(|_| format!("{key} '{value}' is not a count"))?;
                if key == "rise" {
                    script.rise = Some(n);
                } else {
                    script.fall = Some(n);
                }
            }
            other => return Err(format!("unknown key '{other}' (see --help for the keys)")),
        }
    }
    let target = target.ok_or_else(|| format!("'{}=' is missing", kind.target_key()))?;
    // An interface tracker is named after its interface unless named otherwise.
    let name = match (name, kind) {
        (Some(name), _) => name,
        (None, Kind::Interface) => target,
        (None, _) => return Err("'name=' is missing".to_owned()),
    };
    if name.is_empty() || target.is_empty() {
        return Err("name and target must not be empty".to_owned());
    }
    Ok(tracker(name, weight, kind, target, script))
}

fn tracker(name: &str, weight: i32, kind: Kind, target: &str, script: ScriptCheck) -> Tracker {
    let check = match kind {
        Kind::Interface => Check::Interface(InterfaceCheck {
            interface: target.to_owned(),
        }),
        Kind::Script => Check::Script(ScriptCheck {
            path: target.to_owned(),
            ..script
        }),
        Kind::File => Check::File(FileCheck {
            path: target.to_owned(),
        }),
        Kind::Report => Check::Report(HealthReportCheck {
            check: target.to_owned(),
        }),
    };
    Tracker {
        name: name.to_owned(),
        weight,
        check: Some(check),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbjson_types::Duration;

    fn script(t: &Tracker) -> &ScriptCheck {
        match &t.check {
            Some(Check::Script(s)) => s,
            other => panic!("not a script: {other:?}"),
        }
    }

    #[test]
    fn short_forms() {
        let t = parse_interface_tracker("eth1").unwrap();
        assert_eq!((t.name.as_str(), t.weight), ("eth1", 0));
        assert_eq!(
            t.check,
            Some(Check::Interface(InterfaceCheck {
                interface: "eth1".into()
            }))
        );
        assert_eq!(parse_interface_tracker("eth1:-20").unwrap().weight, -20);

        let t = parse_script_tracker("haproxy:/usr/local/bin/check_haproxy:-20").unwrap();
        assert_eq!((t.name.as_str(), t.weight), ("haproxy", -20));
        assert_eq!(script(&t).path, "/usr/local/bin/check_haproxy");

        // No weight: the path keeps its colons.
        let t = parse_script_tracker("x:/opt/a:b").unwrap();
        assert_eq!(script(&t).path, "/opt/a:b");

        let t = parse_file_tracker("drain:/run/drain").unwrap();
        assert_eq!(t.weight, 1, "keepalived's track_file default");
        assert_eq!(
            t.check,
            Some(Check::File(FileCheck {
                path: "/run/drain".into()
            }))
        );
        let t = parse_report_tracker("repl:mysql-replication:+10").unwrap();
        assert_eq!(t.weight, 10);
        assert_eq!(
            t.check,
            Some(Check::Report(HealthReportCheck {
                check: "mysql-replication".into()
            }))
        );
    }

    #[test]
    fn the_key_value_form_sets_every_script_field() {
        let t = parse_script_tracker(
            "name=haproxy,path=/usr/local/bin/check_haproxy,arg=--port,arg=8080,interval=2s,\
             timeout=1s,rise=2,fall=3,user=haproxy,weight=-20",
        )
        .unwrap();
        assert_eq!((t.name.as_str(), t.weight), ("haproxy", -20));
        let s = script(&t);
        assert_eq!(s.path, "/usr/local/bin/check_haproxy");
        assert_eq!(s.args, ["--port", "8080"]);
        assert_eq!(
            s.interval,
            Some(Duration {
                seconds: 2,
                nanos: 0
            })
        );
        assert_eq!(
            s.timeout,
            Some(Duration {
                seconds: 1,
                nanos: 0
            })
        );
        assert_eq!((s.rise, s.fall), (Some(2), Some(3)));
        assert_eq!(s.user, "haproxy");

        let t = parse_interface_tracker("interface=eth1,weight=-5").unwrap();
        assert_eq!((t.name.as_str(), t.weight), ("eth1", -5));
        let t = parse_interface_tracker("name=uplink,interface=eth1").unwrap();
        assert_eq!(t.name, "uplink");
    }

    #[test]
    fn mistakes_are_explained() {
        for (parser, bad, says) in [
            (
                parse_script_tracker as fn(&str) -> Result<Tracker, String>,
                "haproxy",
                "expected NAME:PATH[:WEIGHT]",
            ),
            (parse_script_tracker, "name=x", "'path=' is missing"),
            (parse_script_tracker, "path=/x", "'name=' is missing"),
            (
                parse_script_tracker,
                "name=x,path=/x,rise=many",
                "not a count",
            ),
            (
                parse_script_tracker,
                "name=x,path=/x,colour=red",
                "unknown key",
            ),
            (
                parse_file_tracker,
                "name=x,path=/x,interval=1s",
                "--track-script only",
            ),
            (parse_interface_tracker, "eth0:-x", "not a weight"),
            (
                parse_script_tracker,
                "name=x,path=/x,interval=soon",
                "interval:",
            ),
        ] {
            let err = parser(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
