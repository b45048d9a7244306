//! Runs the real `havipctl` binary against an in-process fake havipd and checks what it
//! prints and how it exits.

// As clippy.toml says for #[test] functions: in tests a panic is a failed assertion. The
// helpers here (the fake daemon, the runner) are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply;
mod exec;
mod fake;
mod history;
mod import;
mod instances;
mod maintenance;
mod usage;
mod watch;

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use fake::{Fake, HANG_GUARD};

/// What one run of havipctl did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing everything the run printed if it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:#?}");
        self
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// The command with a fixed time zone and no HAVIP_SERVER from the caller's environment.
pub fn command(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_havipctl"));
    command
        .args(args)
        .env("TZ", "UTC")
        .env_remove("HAVIP_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

pub async fn run_command(mut command: tokio::process::Command, stdin: Option<&str>) -> Run {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        // Closing it is the end of the file for havipctl.
        drop(pipe);
    }
    let output = tokio::time::timeout(HANG_GUARD, child.wait_with_output())
        .await
        .expect("havipctl hung")
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// havipctl with these arguments and nothing else.
pub async fn havipctl(args: &[&str]) -> Run {
    run_command(command(args), None).await
}

impl Fake {
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--server", self.url.as_str()];
        all.extend_from_slice(args);
        all
    }

    /// havipctl against this fake.
    pub async fn run(&self, args: &[&str]) -> Run {
        havipctl(&self.args(args)).await
    }

    /// havipctl against this fake, with `stdin` on its standard input.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_command(command(&self.args(args)), Some(stdin)).await
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        command(&self.args(args))
    }
}
