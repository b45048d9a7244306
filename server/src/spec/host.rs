//! The tracker rules that depend on the host: scripts must be secure (see
//! [`crate::trackers::security`]) and users must exist. Checked for new and changed specs;
//! blocking (filesystem and user database), so the manager runs it off the async workers.

use super::trackers::{Check, TrackerSpec};
use super::{SpecError, Validated, Violation};

/// Check `validated`'s script trackers against this host, except those `skip` says were
/// accepted before (an update must not be refused for a tracker it does not touch: it may
/// be the demote that takes a broken node out of service).
pub fn check_trackers_on_host(
    validated: &Validated,
    skip: impl Fn(&TrackerSpec) -> bool,
) -> Result<(), SpecError> {
    let mut violations = Vec::new();
    for (i, t) in validated.trackers.iter().enumerate() {
        if skip(t) {
            continue;
        }
        let Check::Script(s) = &t.check else { continue };
        let at = format!("spec.trackers[{i}].script");
        if let Err(why) = crate::trackers::security::check_script(&s.path) {
            violations.push(Violation::new(format!("{at}.path"), why));
        }
        if let Some(user) = &s.user {
            match nix::unistd::User::from_name(user) {
                Ok(Some(_)) => {}
                Ok(None) => violations.push(Violation::new(
                    format!("{at}.user"),
                    format!("there is no user {user} on this host; create it or leave the field empty to run as havipd's user"),
                )),
                Err(e) => violations.push(Violation::new(
                    format!("{at}.user"),
                    format!("cannot look up user {user}: {e}"),
                )),
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(SpecError::Invalid(violations))
    }
}
