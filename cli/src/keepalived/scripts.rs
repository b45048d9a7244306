//! vrrp_script and track_file blocks: the checks that vrrp_instance's track_script and
//! track_file refer to by name.

use std::collections::BTreeMap;
use std::path::Path;

use havip_proto::v1::ScriptCheck;
use pbjson_types::Duration;

use super::loader::Loader;
use super::tree::Statement;
use super::values::{self, arg};
use super::{Finding, Location, ParseError};
use crate::words::{self, WordsError};

/// A vrrp_script, as havip's ScriptCheck plus what trackers need to know about it.
#[derive(Debug, Clone)]
pub struct Script {
    pub check: ScriptCheck,
    pub weight: i32,
}

/// A track_file block.
#[derive(Debug, Clone)]
pub struct TrackFile {
    pub path: String,
    pub weight: i32,
}

/// The longest interval or timeout taken, an hour: a check that runs less often is not a
/// health check.
const MAX_SECONDS: i64 = 3600;

pub fn script(
    s: &Statement,
    script_user: Option<&str>,
    loader: &dyn Loader,
    findings: &mut Vec<Finding>,
) -> Result<Script, ParseError> {
    let name = block_name(s)?;
    let mut check = ScriptCheck::default();
    let mut weight = 0;
    let mut line = None;
    for st in s.block.iter().flatten() {
        match st.keyword.as_str() {
            "script" => {
                // A statement with several words is a script with arguments too.
                line = Some((st.args.join(" "), st.location.clone()));
            }
            "interval" => check.interval = Some(values::seconds_arg(st, MAX_SECONDS)?),
            "timeout" => check.timeout = Some(values::seconds_arg(st, MAX_SECONDS)?),
            "rise" => check.rise = Some(values::int_arg(st, 1u32, 1_000_000)?),
            "fall" => check.fall = Some(values::int_arg(st, 1u32, 1_000_000)?),
            "weight" => {
                weight = values::int_arg(st, -253, 253)?;
                reverse(st, findings);
            }
            "user" => {
                check.user = arg(st)?.to_owned();
                if let Some(group) = st.args.get(1) {
                    findings.push(Finding::dropped(
                        &st.location,
                        "user",
                        format!(
                            "the group {group}: havipd runs a script with its user's own \
                             groups"
                        ),
                    ));
                }
            }
            "init_fail" => findings.push(Finding::dropped(
                &st.location,
                "init_fail",
                "havipd decides a script's first state from its first runs (rise/fall)",
            )),
            other => findings.push(Finding::dropped(
                &st.location,
                other,
                "not a vrrp_script keyword havip knows",
            )),
        }
    }
    let Some((line, location)) = line else {
        return Err(ParseError::new(
            &s.location,
            format!("vrrp_script {name} has no script line"),
        ));
    };
    set_command(&mut check, &line, &location, loader, findings)?;
    if check.user.is_empty()
        && let Some(user) = script_user
    {
        check.user = user.to_owned();
    }
    // keepalived's default interval is 1 s, havip's too; written out so the YAML says it.
    check.interval.get_or_insert(Duration {
        seconds: 1,
        nanos: 0,
    });
    Ok(Script { check, weight })
}

/// Splits the script line into the program and its arguments, or hands a line that needs
/// a shell to /bin/sh -c (and says so).
fn set_command(
    check: &mut ScriptCheck,
    line: &str,
    location: &Location,
    loader: &dyn Loader,
    findings: &mut Vec<Finding>,
) -> Result<(), ParseError> {
    match words::split(line) {
        Ok(mut words) => {
            let program = words.remove(0);
            check.path = if program.starts_with('/') {
                program
            } else if let Some(found) = loader.find_program(&program) {
                findings.push(Finding::changed(
                    location,
                    "script",
                    format!(
                        "{program} is run as {}: havipd needs an absolute path",
                        found.display()
                    ),
                ));
                found.display().to_string()
            } else {
                findings.push(Finding::changed(
                    location,
                    "script",
                    format!(
                        "{program} is not an absolute path and is not in /usr/local/sbin, \
                         /usr/local/bin, /usr/sbin, /usr/bin, /sbin or /bin: havipd will \
                         refuse it until you write its full path"
                    ),
                ));
                program
            };
            check.args = words;
            Ok(())
        }
        Err(WordsError::NeedsShell(what)) => {
            findings.push(Finding::changed(
                location,
                "script",
                format!(
                    "{line:?} needs a shell ({what}): it is run as /bin/sh -c, as keepalived \
                     1.x did (keepalived 2.x runs no shell and would pass the shell's words as \
                     arguments); better, put the command in a script file"
                ),
            ));
            check.path = "/bin/sh".to_owned();
            check.args = vec!["-c".to_owned(), line.to_owned()];
            Ok(())
        }
        Err(e) => Err(ParseError::new(location, format!("script {line:?}: {e}"))),
    }
}

pub fn track_file(s: &Statement, findings: &mut Vec<Finding>) -> Result<TrackFile, ParseError> {
    let name = block_name(s)?;
    let mut path = None;
    let mut weight = 1;
    for st in s.block.iter().flatten() {
        match st.keyword.as_str() {
            "file" => path = Some(arg(st)?.to_owned()),
            "weight" => {
                weight = values::int_arg(st, -2_147_483_647, 2_147_483_647)?;
                reverse(st, findings);
            }
            "init_file" => findings.push(Finding::dropped(
                &st.location,
                "init_file",
                "havipd does not create or write the file; create it before the instance \
                 (e.g. echo 0 > FILE)",
            )),
            other => findings.push(Finding::dropped(
                &st.location,
                other,
                "not a track_file keyword havip knows",
            )),
        }
    }
    let path = path.ok_or_else(|| {
        ParseError::new(&s.location, format!("track_file {name} has no file line"))
    })?;
    if !Path::new(&path).is_absolute() {
        findings.push(Finding::changed(
            &s.location,
            "file",
            format!("{path} is not an absolute path: havipd will refuse it until it is"),
        ));
    }
    Ok(TrackFile { path, weight })
}

/// `weight N reverse`: havip's weights have no reverse.
pub fn reverse(st: &Statement, findings: &mut Vec<Finding>) {
    if let Some(word) = st.args.get(1)
        && word == "reverse"
    {
        findings.push(Finding::dropped(
            &st.location,
            "reverse",
            "havip weights cannot be reversed: the weight applies in its usual direction, \
             which is the opposite of what this line asks; rework the check so that it \
             fails when it should lower the priority",
        ));
    }
}

/// The name after `vrrp_script`/`track_file` and the block it needs.
pub fn block_name(s: &Statement) -> Result<&str, ParseError> {
    let name = arg(s)?;
    if s.block.is_none() {
        return Err(ParseError::new(
            &s.location,
            format!(
                "{} {name} needs a block: {} {name} {{ … }}",
                s.keyword, s.keyword
            ),
        ));
    }
    Ok(name)
}

/// Scripts and files by name; a second definition replaces the first, as in keepalived.
#[derive(Debug, Default)]
pub struct Checks {
    pub scripts: BTreeMap<String, Script>,
    pub files: BTreeMap<String, TrackFile>,
}
