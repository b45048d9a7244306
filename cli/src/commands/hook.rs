//! watch --exec: the notify hook run for each state change, keepalived's way: the command
//! with `INSTANCE NAME STATE PRIORITY` appended, the event as proto3 JSON on stdin.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use havip_proto::v1::event::Payload;
use havip_proto::v1::{Event, State, Transition};
use tokio::io::AsyncWriteExt;

use crate::error::CliError;
use crate::output::format;
use crate::words::{self, WordsError};

/// A parsed --exec command.
#[derive(Debug, Clone)]
pub struct Hook {
    /// The program and its own arguments; for --shell, /bin/sh -c CMD and $0.
    argv: Vec<String>,
    timeout: Option<Duration>,
    /// With a cursor file: run through `havipctl run-hook`, which records the run here.
    marker: Option<PathBuf>,
}

impl Hook {
    pub fn new(command: &str, shell: bool, timeout: Option<Duration>) -> Result<Self, CliError> {
        let argv = if shell {
            vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                command.to_owned(),
                "havipctl-hook".to_owned(),
            ]
        } else {
            words::split(command).map_err(|e| {
                CliError::Invalid(match e {
                    WordsError::NeedsShell(_) => format!(
                        "--exec {command:?}: {e}; add --shell to run it with /bin/sh -c \
                         (the arguments are then $1-$4)"
                    ),
                    _ => format!("--exec {command:?}: {e}"),
                })
            })?
        };
        Ok(Self {
            argv,
            timeout,
            marker: None,
        })
    }

    /// Runs hooks through the supervisor that records them in `marker`.
    pub fn with_marker(mut self, marker: PathBuf) -> Self {
        self.marker = Some(marker);
        self
    }

    /// Runs the hook for `event` if it is a state change, to the end, and logs a failure.
    /// Only a hook that cannot be started at all is an error: a hook that fails is the
    /// hook's business, and holding back every later notification for it would be worse.
    pub async fn run(&self, event: &Event) -> Result<(), CliError> {
        let Some(Payload::StateChanged(t)) = &event.payload else {
            return Ok(());
        };
        let state = keepalived_state(t.to);
        let priority = t.priority.to_string();
        let mut argv = self.argv.clone();
        argv.extend([
            "INSTANCE".to_owned(),
            t.instance.clone(),
            state.clone(),
            priority.clone(),
        ]);
        let mut command = match &self.marker {
            Some(marker) => {
                let exe = std::env::current_exe().map_err(|e| {
                    CliError::Failed(format!("cannot find havipctl's own program: {e}"))
                })?;
                let mut command = tokio::process::Command::new(exe);
                command
                    .arg("run-hook")
                    .arg("--marker")
                    .arg(marker)
                    .args(["--seq", &event.seq.to_string()]);
                if let Some(limit) = self.timeout {
                    command.args(["--timeout-ms", &limit.as_millis().to_string()]);
                }
                command.arg("--").args(&argv);
                command
            }
            None => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]);
                command
            }
        };
        command
            .env("HAVIP_INSTANCE", &t.instance)
            .env("HAVIP_STATE", &state)
            .env("HAVIP_FROM_STATE", keepalived_state(t.from))
            .env("HAVIP_PRIORITY", &priority)
            .env("HAVIP_SEQ", event.seq.to_string())
            .env("HAVIP_REASON", format::reason(t.reason.as_ref()))
            .stdin(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| CliError::Failed(format!("cannot run the hook {}: {e}", self.argv[0])))?;
        if let Some(mut stdin) = child.stdin.take() {
            let json = serde_json::to_string(event)? + "\n";
            // A hook that does not read its input is fine: a closed pipe is not an error.
            let _ = stdin.write_all(json.as_bytes()).await;
        }
        let what = format!("event {} ({} {state})", event.seq, t.instance);
        // The supervisor keeps its own time: killing it would orphan the hook.
        let timeout = if self.marker.is_some() {
            None
        } else {
            self.timeout
        };
        let status = match timeout {
            None => child.wait().await,
            Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let _ = child.kill().await;
                    eprintln!(
                        "havipctl: the hook for {what} ran longer than {} and was killed; \
                         going on with the next event",
                        humantime::format_duration(limit)
                    );
                    return Ok(());
                }
            },
        };
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!(
                "havipctl: the hook for {what} failed ({status}); going on with the next event"
            ),
            Err(e) => eprintln!("havipctl: cannot wait for the hook for {what}: {e}"),
        }
        Ok(())
    }
}

/// The state as keepalived's notify scripts spell it: MASTER, BACKUP, FAULT; STOP for an
/// instance that stopped taking part (INIT on shutdown, DISABLED).
pub fn keepalived_state(state: i32) -> String {
    match State::try_from(state) {
        Ok(State::Master) => "MASTER".to_owned(),
        Ok(State::Backup) => "BACKUP".to_owned(),
        Ok(State::Fault) => "FAULT".to_owned(),
        Ok(State::Init | State::Disabled) => "STOP".to_owned(),
        Ok(State::Unspecified) | Err(_) => format::state(state),
    }
}

/// Whether the event is one a hook runs for.
pub fn is_state_change(event: &Event) -> bool {
    matches!(
        event.payload,
        Some(Payload::StateChanged(Transition { .. }))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_spelled_as_keepalived_does() {
        assert_eq!(keepalived_state(State::Master as i32), "MASTER");
        assert_eq!(keepalived_state(State::Backup as i32), "BACKUP");
        assert_eq!(keepalived_state(State::Fault as i32), "FAULT");
        assert_eq!(keepalived_state(State::Init as i32), "STOP");
        assert_eq!(keepalived_state(State::Disabled as i32), "STOP");
    }

    #[test]
    fn commands_that_need_a_shell_say_so() {
        let err = Hook::new("/bin/a | b", false, None).unwrap_err();
        assert!(err.to_string().contains("add --shell"), "{err}");
        assert!(Hook::new("/bin/a | b", true, None).is_ok());
        assert_eq!(
            Hook::new("/etc/havip/notify.sh 'x y'", false, None)
                .unwrap()
                .argv,
            ["/etc/havip/notify.sh", "x y"]
        );
    }
}
