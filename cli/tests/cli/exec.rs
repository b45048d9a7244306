//! watch --exec: every state change runs the hook once, in order, never two at once,
//! across a kill -9 and restart of havipctl (with a cursor file) and across streams that
//! the daemon drops. The hook logs its start and end around a short sleep, so an overlap
//! or a repeat shows in the log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use havip_proto::v1::event::Payload;
use havip_proto::v1::{Event, EventKind, State};

use crate::fake::{FIXED, Fake, HANG_GUARD, WatchPlan, transition, ts};
use crate::watch::events;

/// A hook that appends "start SEQ ARGS… STDIN-SEQ" and, 200 ms later, "end SEQ".
fn hook(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("hook.log");
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             read -r json\n\
             seq=$(printf '%s' \"$json\" | sed -n 's/.*\"seq\":\"\\{{0,1\\}}\\([0-9]*\\).*/\\1/p')\n\
             echo \"start $HAVIP_SEQ $* $seq\" >> {log}\n\
             sleep 0.2\n\
             echo \"end $HAVIP_SEQ\" >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, log)
}

fn state_event(seq: u64) -> Event {
    let (from, to) = if seq.is_multiple_of(2) {
        (State::Master, State::Backup)
    } else {
        (State::Backup, State::Master)
    };
    Event {
        seq,
        time: ts(FIXED + i64::try_from(seq).unwrap()),
        kind: EventKind::StateChanged as i32,
        instance: "web".into(),
        payload: Some(Payload::StateChanged(transition(seq, "web", from, to, 0))),
    }
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The log must be start/end pairs of the same seq, one after another, for exactly
/// `seqs` in that order.
#[track_caller]
fn assert_once_in_order(log: &Path, seqs: &[u64]) {
    let lines = log_lines(log);
    let mut expected = Vec::new();
    for seq in seqs {
        expected.push(format!("start {seq}"));
        expected.push(format!("end {seq}"));
    }
    let got: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got, expected, "the hook's log:\n{}", lines.join("\n"));
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited in vain for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_state_change_once_in_order_with_keepalived_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (script, log) = hook(dir.path());
    let fake = Fake::start().await;
    fake.data().events = events(7);
    let run = fake
        .run(&["watch", "--since", "0", "--exec", script.to_str().unwrap()])
        .await;
    run.expect_code(0);
    // Events 3 and 6 are config changes: printed, but no hook.
    assert_once_in_order(&log, &[1, 2, 4, 5, 7]);
    let lines = log_lines(&log);
    assert_eq!(lines[0], "start 1 INSTANCE web MASTER 100 1");
    assert_eq!(lines[2], "start 2 INSTANCE web BACKUP 100 2");
    assert_eq!(run.stdout.lines().count(), 7, "every event is printed too");
}

#[tokio::test]
async fn a_failing_hook_is_logged_and_the_next_event_goes_on() {
    let fake = Fake::start().await;
    fake.data().events = events(2);
    let run = fake
        .run(&[
            "watch",
            "--since",
            "0",
            "--shell",
            "--exec",
            "echo \"$3\" >&2; exit 3",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stderr,
        "MASTER\nhavipctl: the hook for event 1 (web MASTER) failed (exit status: 3); going on with the next event\n\
         BACKUP\nhavipctl: the hook for event 2 (web BACKUP) failed (exit status: 3); going on with the next event\n"
    );
    let run = fake.run(&["watch", "--exec", "/bin/x | y"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("add --shell"), "{}", run.stderr);
    fake.run(&["watch", "--shell"]).await.expect_code(2);
    fake.run(&["watch", "--exec", "/bin/true", "--kind", "state-changed"])
        .await
        .expect_code(2);
}

#[tokio::test]
async fn a_kill_9_and_a_restart_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (script, log) = hook(dir.path());
    let cursor = dir.path().join("state/cursor");
    let fake = Fake::start().await;
    fake.data().watch_plans = vec![WatchPlan::Live, WatchPlan::Live];
    let args = [
        "watch",
        "--exec",
        script.to_str().unwrap(),
        "--cursor-file",
        cursor.to_str().unwrap(),
        "-o",
        "json",
    ];

    let mut first = fake.command(&args).spawn().unwrap();
    wait_for("the first watch", || fake.data().watches.len() == 1).await;
    for seq in 1..=5 {
        fake.push_event(state_event(seq)).await;
    }
    // Killed while the hook of event 3 runs: its supervisor finishes it.
    wait_for("event 3's hook", || {
        log_lines(&log).iter().any(|l| l.starts_with("start 3 "))
    })
    .await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    for seq in 6..=8 {
        fake.push_event(state_event(seq)).await;
    }

    let mut second = fake.command(&args).spawn().unwrap();
    // Recorded, not only run: the cursor is written once the hook has exited.
    wait_for("event 8 recorded", || {
        std::fs::read_to_string(&cursor).is_ok_and(|c| c == "8\n")
    })
    .await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();
    assert_once_in_order(&log, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let watches = fake.data().watches.clone();
    assert_eq!(watches[0].after_seq, None, "no cursor yet: new events only");
    assert_eq!(
        watches[1].after_seq,
        Some(3),
        "after the last hook that completed"
    );
}

#[tokio::test]
async fn a_dropped_stream_resumes_after_the_last_hook() {
    let dir = tempfile::tempdir().unwrap();
    let (script, log) = hook(dir.path());
    let cursor = dir.path().join("cursor");
    std::fs::write(&cursor, "2\n").unwrap();
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        data.events = (1..=4).map(state_event).collect();
        // Live first; then, after the drop, a replay that ends the stream cleanly.
        data.watch_plans = vec![WatchPlan::Live];
    }
    let args = [
        "watch",
        "--exec",
        script.to_str().unwrap(),
        "--cursor-file",
        cursor.to_str().unwrap(),
        "--since",
        "0",
    ];
    let child = fake.command(&args).spawn().unwrap();
    wait_for("events 3 and 4", || log_lines(&log).len() == 4).await;
    fake.push_event(state_event(5)).await;
    wait_for("event 5", || log_lines(&log).len() == 6).await;
    for seq in 6..=7 {
        fake.data().events.push(state_event(seq));
    }
    fake.drop_streams();
    let output = tokio::time::timeout(HANG_GUARD, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    // The cursor (2) wins over --since 0; 6 and 7 come with the replay after the drop.
    assert_once_in_order(&log, &[3, 4, 5, 6, 7]);
    let after: Vec<Option<u64>> = fake.data().watches.iter().map(|w| w.after_seq).collect();
    assert_eq!(after, [Some(2), Some(5)]);
}
