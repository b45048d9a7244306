//! Script trackers: run an executable directly (no shell) every interval, as the
//! configured user, kill its whole process group at the timeout, and say what happened.
//! Runs on the main runtime; a hung script delays nothing but its own next run.

use super::runas::{RUN_AS_ARG, SELF_EXE};
use super::security;
use crate::spec::ScriptCheck;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, Uid, User};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// How much output the detail keeps (stdout, then stderr).
const OUTPUT_LIMIT: usize = 512;
/// After the script exits, how long its output may still take to arrive (a background
/// child it left behind may hold the pipes open; its output is not waited for).
const OUTPUT_GRACE: Duration = Duration::from_millis(100);
/// Scripts get a clean environment: a fixed PATH and who is asking.
const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What one run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Outcome {
    pub ok: bool,
    pub detail: String,
    pub timed_out: bool,
}

impl Outcome {
    fn failed(detail: String) -> Self {
        Outcome {
            ok: false,
            detail,
            timed_out: false,
        }
    }
}

/// Who is running, for the environment of the script.
#[derive(Clone, Debug)]
pub(super) struct Context {
    pub instance: Arc<str>,
    pub tracker: Arc<str>,
}

/// How the script will be started, decided off the async workers.
enum Launch {
    /// As the daemon's own user.
    Direct,
    /// Through the helper, as another user.
    As(String),
}

/// The security check and the user lookup touch the filesystem and the user database
/// (which may be remote): both run on the blocking pool.
fn prepare(check: &ScriptCheck) -> Result<Launch, String> {
    security::check_script(&check.path)?;
    let Some(user) = &check.user else {
        return Ok(Launch::Direct);
    };
    let account = User::from_name(user)
        .map_err(|e| format!("cannot look up user {user}: {e}"))?
        .ok_or_else(|| format!("there is no user {user} on this host"))?;
    if account.uid == Uid::effective() && account.gid == nix::unistd::Gid::effective() {
        Ok(Launch::Direct)
    } else {
        Ok(Launch::As(user.clone()))
    }
}

/// Kills a script's whole process group if the run is abandoned (the tracker was removed
/// or retuned mid-run, or havipd is stopping): dropping the child alone would leave what
/// the script started behind.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    /// The run ended normally: whatever the script left running in the background is its
    /// own business.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            // Already gone is fine: nothing left to kill.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// Run the script once.
pub(super) async fn run_once(check: &ScriptCheck, ctx: &Context) -> Outcome {
    let prepared = {
        let check = check.clone();
        tokio::task::spawn_blocking(move || prepare(&check)).await
    };
    let launch = match prepared {
        Ok(Ok(l)) => l,
        Ok(Err(why)) => return Outcome::failed(format!("not run: {why}")),
        Err(e) => return Outcome::failed(format!("not run: {e}")),
    };
    let mut cmd = match &launch {
        Launch::Direct => Command::new(&check.path),
        Launch::As(user) => {
            let mut c = Command::new(SELF_EXE);
            c.arg(RUN_AS_ARG).arg(user).arg("--").arg(&check.path);
            c
        }
    };
    cmd.args(&check.args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HAVIP_INSTANCE", &*ctx.instance)
        .env("HAVIP_TRACKER", &*ctx.tracker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills whatever it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::failed(format!("cannot run {}: {e}", check.path.display())),
    };
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut guard = GroupGuard(group);
    let stdout = child.stdout.take().map(|s| tokio::spawn(capture(s)));
    let stderr = child.stderr.take().map(|s| tokio::spawn(capture(s)));
    let waited = tokio::time::timeout(check.timeout, child.wait()).await;
    match waited {
        Ok(Ok(status)) => {
            guard.disarm();
            let output = join_output(stdout, stderr).await;
            Outcome {
                ok: status.success(),
                detail: describe(status, &output),
                timed_out: false,
            }
        }
        Ok(Err(e)) => Outcome::failed(format!("cannot wait for {}: {e}", check.path.display())),
        Err(_) => {
            // The whole group, now (the guard would only when the run is dropped).
            drop(guard);
            let _ = child.kill().await;
            let output = join_output(stdout, stderr).await;
            let mut detail = format!(
                "timed out after {}; killed",
                humantime::format_duration(check.timeout)
            );
            if !output.is_empty() {
                detail.push_str(": ");
                detail.push_str(&output);
            }
            Outcome {
                ok: false,
                detail,
                timed_out: true,
            }
        }
    }
}

/// Read everything (so the script never blocks on a full pipe), keep the first bytes.
async fn capture(mut pipe: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::with_capacity(OUTPUT_LIMIT);
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
            }
        }
    }
    kept
}

async fn join_output(
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
) -> String {
    let mut bytes = String::new();
    for task in [stdout, stderr].into_iter().flatten() {
        let abort = task.abort_handle();
        match tokio::time::timeout(OUTPUT_GRACE, task).await {
            Ok(Ok(b)) => {
                let b = String::from_utf8_lossy(&b);
                let b = b.trim();
                if !b.is_empty() {
                    if !bytes.is_empty() {
                        bytes.push(' ');
                    }
                    bytes.push_str(b);
                }
            }
            _ => abort.abort(),
        }
    }
    truncate(&collapse(&bytes), OUTPUT_LIMIT)
}

/// One line: newlines and runs of spaces become single spaces.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

fn describe(status: ExitStatus, output: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let mut d = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => "ended".to_owned(),
    };
    if !output.is_empty() {
        d.push_str(": ");
        d.push_str(output);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    fn check(path: &Path, timeout_ms: u64) -> ScriptCheck {
        ScriptCheck {
            path: path.to_path_buf(),
            args: vec!["x".into()],
            user: None,
            interval: Duration::from_millis(timeout_ms),
            timeout: Duration::from_millis(timeout_ms),
            rise: 1,
            fall: 1,
        }
    }

    fn ctx() -> Context {
        Context {
            instance: Arc::from("web"),
            tracker: Arc::from("t"),
        }
    }

    /// A script in a root-owned 0755 directory (these tests need root, as the daemon does).
    fn script(dir: &Path, body: &str) -> PathBuf {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.join("check");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn root() -> bool {
        Uid::effective().is_root()
    }

    #[tokio::test]
    async fn exit_status_and_output_make_the_detail() {
        if !root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = script(
            d.path(),
            "echo \"$1 $HAVIP_INSTANCE/$HAVIP_TRACKER\"\necho 'connection\n refused' >&2\nexit 3",
        );
        let o = run_once(&check(&p, 5000), &ctx()).await;
        assert!(!o.ok);
        assert_eq!(o.detail, "exit status 3: x web/t connection refused");
        let p = script(d.path(), "exit 0");
        let o = run_once(&check(&p, 5000), &ctx()).await;
        assert_eq!((o.ok, o.detail.as_str()), (true, "exit status 0"));
    }

    #[tokio::test]
    async fn a_hung_script_and_its_children_are_killed_at_the_timeout() {
        if !root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("child-pid");
        let p = script(
            d.path(),
            &format!(
                "sleep 1000 &\necho $! > {}\necho started\nwait",
                marker.display()
            ),
        );
        let started = std::time::Instant::now();
        let o = run_once(&check(&p, 300), &ctx()).await;
        assert!(o.timed_out && !o.ok, "{o:?}");
        assert!(
            o.detail.starts_with("timed out after 300ms; killed"),
            "{o:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the script's process group: it is gone too.
        assert!(
            gone(pid).await,
            "the script's child {pid} survived the timeout"
        );
    }

    #[tokio::test]
    async fn an_abandoned_run_kills_the_script_and_its_children() {
        if !root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("child-pid");
        let p = script(
            d.path(),
            &format!("sleep 1000 &\necho $! > {}\nwait", marker.display()),
        );
        let check = check(&p, 60_000);
        let run = tokio::spawn(async move { run_once(&check, &ctx()).await });
        for _ in 0..250 {
            if std::fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        run.abort();
        let _ = run.await;
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(gone(pid).await, "the script's child {pid} survived");
    }

    /// Whether a process ended (or is a zombie waiting for whoever inherited it).
    async fn gone(pid: i32) -> bool {
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            if stat.is_empty() || state == Some("Z") {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn an_insecure_script_is_not_run() {
        let d = tempfile::tempdir().unwrap();
        let p = script(d.path(), "exit 0");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let o = run_once(&check(&p, 1000), &ctx()).await;
        assert!(!o.ok);
        assert!(o.detail.starts_with("not run: "), "{o:?}");
    }

    #[test]
    fn long_output_is_cut_at_a_character_boundary() {
        let s = "é".repeat(400);
        let t = truncate(&s, 511);
        assert!(t.len() <= 511 + "…".len());
        assert!(t.ends_with('…'));
    }
}
