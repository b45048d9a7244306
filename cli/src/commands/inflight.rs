//! The record of a hook in flight, next to the cursor file, so that a havipctl killed
//! while a hook runs (kill -9, a crash) neither loses nor repeats it after a restart.
//!
//! With a cursor file, hooks are run through `havipctl run-hook`, a small supervisor that
//! writes "running SEQ PID START" when it starts and "done SEQ" when the hook has exited.
//! The supervisor outlives a killed watch, so a restarted watch finds one of three things:
//! the supervisor still running (it waits for it, so two hooks never overlap, then takes
//! the event as handled), "done" (the hook completed but was not recorded: recorded now),
//! or "running" from a process that is gone (the hook was interrupted: it runs again).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::args::RunHookArgs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Running { seq: u64, pid: u32, start: u64 },
    Done { seq: u64 },
}

impl Marker {
    fn text(&self) -> String {
        match self {
            Marker::Running { seq, pid, start } => format!("running {seq} {pid} {start}\n"),
            Marker::Done { seq } => format!("done {seq}\n"),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["running", seq, pid, start] => Some(Marker::Running {
                seq: seq.parse().ok()?,
                pid: pid.parse().ok()?,
                start: start.parse().ok()?,
            }),
            ["done", seq] => Some(Marker::Done {
                seq: seq.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// Where the marker of the cursor `cursor` lives: ".NAME.hook" beside it.
pub fn path_for(cursor: &Path) -> PathBuf {
    let name = cursor
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    cursor.with_file_name(format!(".{name}.hook"))
}

pub fn read(path: &Path) -> Option<Marker> {
    Marker::parse(&fs::read_to_string(path).ok()?)
}

/// Replaces the marker atomically (the cursor's folder is checked to be safe).
pub fn write(path: &Path, marker: &Marker) -> std::io::Result<()> {
    // ".cursor.hook.tmp": not with_extension, which would give the cursor's own ".cursor.tmp".
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let _ = fs::remove_file(&temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(marker.text().as_bytes())?;
    file.sync_all()?;
    fs::rename(&temp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub fn clear(path: &Path) {
    let _ = fs::remove_file(path);
}

/// When process `pid` started (clock ticks since boot, /proc/PID/stat field 22): with
/// the pid it names one process, whatever pids are reused.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What a starting watch does about a marker left behind: waits for a hook still running,
/// and returns the seq of a hook that completed but was not recorded.
pub async fn recover(path: &Path) -> Option<u64> {
    let mut said = false;
    loop {
        match read(path)? {
            Marker::Done { seq } => return Some(seq),
            Marker::Running { seq, pid, start } => {
                if process_start(pid) != Some(start) {
                    // Interrupted: it runs again when the event is replayed.
                    eprintln!(
                        "havipctl: the hook for event {seq} was interrupted by a crash; it \
                         runs again"
                    );
                    clear(path);
                    return None;
                }
                if !said {
                    eprintln!(
                        "havipctl: the hook for event {seq} (pid {pid}) is still running \
                         from before a restart; waiting for it"
                    );
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `havipctl run-hook`: runs the hook, recording its start and end in the marker. Exits
/// with the hook's status (1 when it was killed or could not run).
pub fn supervise(args: &RunHookArgs) -> ExitCode {
    let pid = std::process::id();
    let Some(start) = process_start(pid) else {
        eprintln!("havipctl run-hook: cannot read /proc/{pid}/stat");
        return ExitCode::FAILURE;
    };
    let marker = Path::new(&args.marker);
    if let Err(e) = write(
        marker,
        &Marker::Running {
            seq: args.seq,
            pid,
            start,
        },
    ) {
        eprintln!("havipctl run-hook: cannot write {}: {e}", marker.display());
        return ExitCode::FAILURE;
    }
    let Some((program, rest)) = args.command.split_first() else {
        return ExitCode::FAILURE;
    };
    // stdin, stdout, stderr and the environment pass through to the hook.
    let code = match std::process::Command::new(program).args(rest).spawn() {
        Ok(mut child) => wait(&mut child, args.timeout_ms.map(Duration::from_millis)),
        Err(e) => {
            eprintln!("havipctl: cannot run the hook {program}: {e}");
            1
        }
    };
    if let Err(e) = write(marker, &Marker::Done { seq: args.seq }) {
        eprintln!("havipctl run-hook: cannot write {}: {e}", marker.display());
    }
    ExitCode::from(code)
}

/// The child's exit code, killing it after `timeout`; 1 when it has none.
fn wait(child: &mut std::process::Child, timeout: Option<Duration>) -> u8 {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1);
            }
            Ok(None) => {}
            Err(_) => return 1,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("havipctl: the hook ran longer than its --exec-timeout and was killed");
            return 124;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for marker in [
            Marker::Running {
                seq: 7,
                pid: 42,
                start: 123_456,
            },
            Marker::Done { seq: 8 },
        ] {
            assert_eq!(Marker::parse(&marker.text()), Some(marker));
        }
        assert_eq!(Marker::parse("done x"), None);
        assert_eq!(
            path_for(Path::new("/var/lib/n/cursor")),
            PathBuf::from("/var/lib/n/.cursor.hook")
        );
    }

    #[test]
    fn this_process_has_a_start_time() {
        let start = process_start(std::process::id()).unwrap();
        assert_eq!(process_start(std::process::id()), Some(start));
    }
}
