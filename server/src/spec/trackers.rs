//! The rules for an instance's trackers and priority override, and their validated forms
//! as the runtime uses them.

use super::validate::{Checker, is_name};
use havip_proto::v1::{self, tracker::Check as CheckProto};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// keepalived's weight range: enough to move any priority to either end.
pub const MAX_WEIGHT: i32 = 254;
const MAX_TRACKERS: usize = 64;
const MIN_SCRIPT_INTERVAL: Duration = Duration::from_millis(10);
const MAX_SCRIPT_INTERVAL: Duration = Duration::from_secs(3600);
const MAX_RISE_FALL: u32 = 100;
const MAX_ARGS: usize = 64;
const MAX_ARG_LEN: usize = 4096;
const MAX_PATH_LEN: usize = 4096;
const MAX_USER_LEN: usize = 32;
const MAX_REASON_LEN: usize = 1024;
pub const DEFAULT_SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_RISE_FALL: u32 = 1;

/// One tracker, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerSpec {
    pub name: Arc<str>,
    /// keepalived's weight: negative is added while failing, positive while healthy, 0
    /// means a failure is FAULT. A file tracker multiplies the value it reads by it.
    pub weight: i32,
    pub check: Check,
}

/// What a tracker looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Interface { interface: String },
    Script(ScriptCheck),
    File { path: PathBuf },
    Report { check: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptCheck {
    pub path: PathBuf,
    pub args: Vec<String>,
    /// `None`: the daemon's own user.
    pub user: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

impl TrackerSpec {
    pub fn is_file(&self) -> bool {
        matches!(self.check, Check::File { .. })
    }
}

impl Check {
    /// Whether two checks look at the same thing (timing aside): the tracker service keeps
    /// a retuned tracker's rise/fall state, and measures a retargeted one afresh.
    pub fn same_target(&self, other: &Check) -> bool {
        match (self, other) {
            (Check::Interface { interface: a }, Check::Interface { interface: b }) => a == b,
            (Check::Script(a), Check::Script(b)) => {
                a.path == b.path && a.args == b.args && a.user == b.user
            }
            (Check::File { path: a }, Check::File { path: b }) => a == b,
            (Check::Report { check: a }, Check::Report { check: b }) => a == b,
            _ => false,
        }
    }
}

/// An operator's priority override, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideSpec {
    pub priority: u8,
    pub expires: Option<SystemTime>,
    pub reason: String,
}

/// Fill the defaults of the trackers' unset fields (script timing). Idempotent.
pub(super) fn normalize_trackers(trackers: &mut [v1::Tracker]) {
    for t in trackers {
        if let Some(CheckProto::Script(s)) = t.check.as_mut() {
            let interval = *s
                .interval
                .get_or_insert(crate::convert::duration(DEFAULT_SCRIPT_INTERVAL));
            s.timeout.get_or_insert(interval);
            s.rise.get_or_insert(DEFAULT_RISE_FALL);
            s.fall.get_or_insert(DEFAULT_RISE_FALL);
        }
    }
}

impl Checker {
    pub(super) fn trackers(&mut self, given: &[v1::Tracker]) -> Vec<TrackerSpec> {
        if given.len() > MAX_TRACKERS {
            self.fail(
                "spec.trackers",
                format!("{} trackers given; at most {MAX_TRACKERS}", given.len()),
            );
        }
        let mut names = BTreeSet::new();
        let mut out = Vec::with_capacity(given.len());
        for (i, t) in given.iter().enumerate() {
            let at = format!("spec.trackers[{i}]");
            let mut ok = true;
            if !is_name(&t.name) {
                ok = false;
                self.fail(
                    format!("{at}.name"),
                    format!("{:?} is not a tracker name: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", t.name),
                );
            } else if !names.insert(t.name.as_str()) {
                ok = false;
                self.fail(
                    format!("{at}.name"),
                    format!(
                        "{} is used by an earlier tracker; names are unique within an instance",
                        t.name
                    ),
                );
            }
            if !(-MAX_WEIGHT..=MAX_WEIGHT).contains(&t.weight) {
                ok = false;
                self.fail(
                    format!("{at}.weight"),
                    format!(
                        "{} is out of range: use -{MAX_WEIGHT} to {MAX_WEIGHT} (0: a failure means FAULT)",
                        t.weight
                    ),
                );
            }
            let check = match &t.check {
                None => {
                    self.fail(
                        at.clone(),
                        "needs one check: interface, script, file or report",
                    );
                    None
                }
                Some(CheckProto::Interface(c)) => self.tracked_interface(&at, &c.interface),
                Some(CheckProto::Script(c)) => self.script(&at, c),
                Some(CheckProto::File(c)) => self
                    .absolute_path(&format!("{at}.file.path"), &c.path)
                    .map(|path| Check::File { path }),
                Some(CheckProto::Report(c)) => {
                    if is_name(&c.check) {
                        Some(Check::Report {
                            check: c.check.clone(),
                        })
                    } else {
                        self.fail(
                            format!("{at}.report.check"),
                            format!("{:?} is not a check name: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", c.check),
                        );
                        None
                    }
                }
            };
            if let (true, Some(check)) = (ok, check) {
                out.push(TrackerSpec {
                    name: Arc::from(t.name.as_str()),
                    weight: t.weight,
                    check,
                });
            }
        }
        out
    }

    fn tracked_interface(&mut self, at: &str, name: &str) -> Option<Check> {
        let field = format!("{at}.interface.interface");
        if super::validate::is_interface_name(name) {
            Some(Check::Interface {
                interface: name.to_owned(),
            })
        } else {
            self.fail(
                field,
                format!("{name:?} is not an interface name: 1-15 characters, no '/', ':' or spaces (e.g. eth1)"),
            );
            None
        }
    }

    fn absolute_path(&mut self, field: &str, path: &str) -> Option<PathBuf> {
        let p = PathBuf::from(path);
        if path.is_empty() || !p.is_absolute() || path.len() > MAX_PATH_LEN || path.contains('\0') {
            self.fail(
                field,
                format!("{path:?} is not an absolute path (e.g. /usr/local/bin/check_haproxy)"),
            );
            return None;
        }
        Some(p)
    }

    fn script(&mut self, at: &str, c: &v1::ScriptCheck) -> Option<Check> {
        let path = self.absolute_path(&format!("{at}.script.path"), &c.path);
        let before = self.violations.len();
        if c.args.len() > MAX_ARGS {
            self.fail(
                format!("{at}.script.args"),
                format!("{} arguments; at most {MAX_ARGS}", c.args.len()),
            );
        }
        for (j, a) in c.args.iter().enumerate() {
            if a.len() > MAX_ARG_LEN || a.contains('\0') {
                self.fail(
                    format!("{at}.script.args[{j}]"),
                    format!("at most {MAX_ARG_LEN} bytes and no NUL character"),
                );
            }
        }
        let user_ok = c.user.is_empty()
            || (c.user.len() <= MAX_USER_LEN
                && !c.user.starts_with('-')
                && c.user
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | '$')));
        if !user_ok {
            self.fail(
                format!("{at}.script.user"),
                format!("{:?} is not a user name", c.user),
            );
        }
        let interval = self.duration(
            &format!("{at}.script.interval"),
            c.interval.as_ref(),
            MAX_SCRIPT_INTERVAL,
        );
        if let Some(i) = interval
            && i < MIN_SCRIPT_INTERVAL
        {
            self.fail(
                format!("{at}.script.interval"),
                format!(
                    "{} is too short: use 10ms to 1h",
                    humantime::format_duration(i)
                ),
            );
        }
        // Bounded by the interval (checked next), not on its own: a default timeout that
        // copied a bad interval is the interval's fault alone.
        let timeout = self.duration(
            &format!("{at}.script.timeout"),
            c.timeout.as_ref(),
            Duration::MAX,
        );
        if let (Some(t), Some(i)) = (timeout, interval)
            && (t.is_zero() || t > i)
        {
            self.fail(
                format!("{at}.script.timeout"),
                format!(
                    "{} is not between 0 and the interval ({}): a run must end before the next one is due",
                    humantime::format_duration(t),
                    humantime::format_duration(i)
                ),
            );
        }
        let mut count = |field: &str, n: Option<u32>| -> u32 {
            let n = n.unwrap_or(DEFAULT_RISE_FALL);
            if !(1..=MAX_RISE_FALL).contains(&n) {
                self.fail(
                    format!("{at}.script.{field}"),
                    format!("{n} is out of range: use 1-{MAX_RISE_FALL} consecutive results"),
                );
            }
            n
        };
        let rise = count("rise", c.rise);
        let fall = count("fall", c.fall);
        if self.violations.len() != before {
            return None;
        }
        Some(Check::Script(ScriptCheck {
            path: path?,
            args: c.args.clone(),
            user: (!c.user.is_empty()).then(|| c.user.clone()),
            interval: interval?,
            timeout: timeout?,
            rise,
            fall,
        }))
    }

    pub(super) fn priority_override(
        &mut self,
        given: Option<&v1::PriorityOverride>,
        priority: Option<u8>,
    ) -> Option<OverrideSpec> {
        let o = given?;
        let mut ok = true;
        if priority == Some(havip_vrrp::priority::OWNER) {
            ok = false;
            self.fail(
                "spec.priority_override",
                "the address owner (priority 255) is always master; its priority cannot be overridden",
            );
        }
        let p = u8::try_from(o.priority)
            .ok()
            .filter(|p| (1..=havip_vrrp::priority::MAX_NON_OWNER).contains(p));
        if p.is_none() {
            ok = false;
            self.fail(
                "spec.priority_override.priority",
                format!("{} is not an override priority: use 1-254", o.priority),
            );
        }
        let expires = match &o.expires {
            None => None,
            Some(t) => match crate::convert::system_time(t) {
                Some(t) => Some(t),
                None => {
                    ok = false;
                    self.fail(
                        "spec.priority_override.expires",
                        "is not a valid time after 1970",
                    );
                    None
                }
            },
        };
        if o.reason.len() > MAX_REASON_LEN {
            ok = false;
            self.fail(
                "spec.priority_override.reason",
                format!("is {} bytes; at most {MAX_REASON_LEN}", o.reason.len()),
            );
        }
        Some(OverrideSpec {
            priority: p.filter(|_| ok)?,
            expires,
            reason: o.reason.clone(),
        })
    }
}
