//! Running a tracker script as another user, with that user's supplementary groups.
//!
//! Setting the groups must happen between fork and exec, which std only offers through an
//! unsafe `pre_exec` (or the unstable `CommandExt::groups`). So havipd starts itself again
//! as a small helper (`/proc/self/exe __havipd-run-as USER -- PATH ARGS…`): the new process
//! is single-threaded and has no runtime yet, so it can safely call initgroups, setgid and
//! setuid before it replaces itself with the script. `havipd::main` hands control here
//! before parsing its usual arguments.

use nix::unistd::{Uid, User, execve, initgroups, setgid, setuid};
use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::ExitCode;

/// The first argument that makes havipd the helper.
pub(super) const RUN_AS_ARG: &str = "__havipd-run-as";

/// The executable that is havipd, even if the file was replaced by an upgrade meanwhile.
pub(super) const SELF_EXE: &str = "/proc/self/exe";

/// The helper's exit status when it cannot run the script (as a shell says "cannot
/// execute").
const CANNOT_RUN: u8 = 126;

/// When this process was started as the helper, switch user and run the script; returns
/// only when that failed (with the exit code to use). `None`: this is not the helper.
pub fn run_as_main() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(RUN_AS_ARG)) {
        return None;
    }
    let rest: Vec<OsString> = args.collect();
    let Err(why) = run_as(&rest);
    // The tracker shows this as the script's output.
    eprintln!("havipd: {why}");
    Some(ExitCode::from(CANNOT_RUN))
}

fn run_as(args: &[OsString]) -> Result<Infallible, String> {
    let [user, separator, path, script_args @ ..] = args else {
        return Err(format!("usage: {RUN_AS_ARG} USER -- PATH [ARGS...]"));
    };
    if separator != "--" {
        return Err(format!("usage: {RUN_AS_ARG} USER -- PATH [ARGS...]"));
    }
    let name = user.to_string_lossy().into_owned();
    let account = User::from_name(&name)
        .map_err(|e| format!("cannot look up user {name}: {e}"))?
        .ok_or_else(|| format!("there is no user {name}"))?;
    let cname = c_string(user.as_bytes(), "the user name")?;
    // Groups first, then the group, then the user: after setuid the rest is not allowed.
    initgroups(&cname, account.gid)
        .map_err(|e| format!("cannot set the supplementary groups of {name}: {e}"))?;
    setgid(account.gid).map_err(|e| format!("cannot switch to group {}: {e}", account.gid))?;
    setuid(account.uid).map_err(|e| format!("cannot switch to user {name}: {e}"))?;
    if Uid::effective() != account.uid || Uid::current() != account.uid {
        return Err(format!("switching to user {name} did not take effect"));
    }
    let cpath = c_string(path.as_bytes(), "the script path")?;
    let mut argv = vec![cpath.clone()];
    for a in script_args {
        argv.push(c_string(a.as_bytes(), "a script argument")?);
    }
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        if matches!(k.to_str(), Some("HOME" | "USER" | "LOGNAME")) {
            continue;
        }
        let mut entry = k.into_vec();
        entry.push(b'=');
        entry.extend(v.into_vec());
        env.push(c_string(&entry, "the environment")?);
    }
    for (k, v) in [
        ("HOME", account.dir.as_os_str()),
        ("USER", OsStr::new(&name)),
        ("LOGNAME", OsStr::new(&name)),
    ] {
        let mut entry = k.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend(v.as_bytes());
        env.push(c_string(&entry, "the environment")?);
    }
    execve(&cpath, &argv, &env)
        .map_err(|e| format!("cannot execute {}: {e}", path.to_string_lossy()))
}

fn c_string(bytes: &[u8], what: &str) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| format!("{what} contains a NUL byte"))
}
