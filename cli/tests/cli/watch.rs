//! watch: output formats, filters, and resuming after a broken stream with no event lost
//! or printed twice.

use havip_proto::v1::event::Payload;
use havip_proto::v1::{ConfigChangeSummary, Event, EventKind, State, WatchEventsRequest};
use tokio::io::AsyncBufReadExt;
use tonic::Code;

use crate::fake::{FIXED, Fake, HANG_GUARD, WatchPlan, transition, ts};

/// Events 1..=count: state changes of "web", a config change of "db" every third.
pub fn events(count: u64) -> Vec<Event> {
    (1..=count)
        .map(|seq| {
            let time = ts(FIXED + i64::try_from(seq).unwrap());
            if seq.is_multiple_of(3) {
                Event {
                    seq,
                    time,
                    kind: EventKind::InstanceUpdated as i32,
                    instance: "db".into(),
                    payload: Some(Payload::ConfigChanged(ConfigChangeSummary {
                        revision: seq,
                        actor: "uid:0".into(),
                        changed_fields: vec!["priority".into()],
                        comment: String::new(),
                        ..Default::default()
                    })),
                }
            } else {
                let (from, to) = if seq.is_multiple_of(2) {
                    (State::Master, State::Backup)
                } else {
                    (State::Backup, State::Master)
                };
                Event {
                    seq,
                    time,
                    kind: EventKind::StateChanged as i32,
                    instance: "web".into(),
                    payload: Some(Payload::StateChanged(transition(seq, "web", from, to, 0))),
                }
            }
        })
        .collect()
}

fn seqs_of_json_lines(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .map(|line| serde_json::from_str::<Event>(line).unwrap().seq)
        .collect()
}

fn after_seqs(watches: &[WatchEventsRequest]) -> Vec<Option<u64>> {
    watches.iter().map(|w| w.after_seq).collect()
}

#[tokio::test]
async fn resumes_after_unavailable_with_no_gap_and_no_duplicate() {
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        data.events = events(10);
        data.watch_plans = vec![WatchPlan::FailAfter(
            4,
            Code::Unavailable,
            "havipd is restarting".into(),
        )];
    }
    let run = fake.run(&["watch", "--since", "0", "-o", "json"]).await;
    run.expect_code(0);
    assert_eq!(
        seqs_of_json_lines(&run.stdout),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(after_seqs(&fake.data().watches), [Some(0), Some(4)]);
    assert_eq!(
        run.stderr,
        "havipctl: lost the event stream (Unavailable: havipd is restarting); \
         reconnecting in 100ms, resuming after event 4\n"
    );
}

#[tokio::test]
async fn survives_several_failures_in_a_row() {
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        data.events = events(9);
        data.watch_plans = vec![
            WatchPlan::FailAfter(2, Code::Unavailable, "restarting".into()),
            // Fails before sending anything: the resume point must not move.
            WatchPlan::FailAfter(0, Code::Unavailable, "still restarting".into()),
            WatchPlan::FailAfter(3, Code::Unavailable, "again".into()),
        ];
    }
    let run = fake.run(&["-o", "json", "watch", "--since", "0"]).await;
    run.expect_code(0);
    assert_eq!(seqs_of_json_lines(&run.stdout), (1..=9).collect::<Vec<_>>());
    assert_eq!(
        after_seqs(&fake.data().watches),
        [Some(0), Some(2), Some(2), Some(5)]
    );
}

#[tokio::test]
async fn resumes_after_falling_behind() {
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        data.events = events(8);
        // havipd names where to resume; what was printed is the exact point, and here they agree.
        data.watch_plans = vec![WatchPlan::FailAfter(
            5,
            Code::ResourceExhausted,
            "client fell behind; resume after seq 5".into(),
        )];
    }
    let run = fake.run(&["watch", "--since", "0", "-o", "json"]).await;
    run.expect_code(0);
    assert_eq!(seqs_of_json_lines(&run.stdout), (1..=8).collect::<Vec<_>>());
    assert_eq!(after_seqs(&fake.data().watches), [Some(0), Some(5)]);
}

#[tokio::test]
async fn a_live_watch_that_falls_behind_at_once_resumes_where_havipd_says() {
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        data.events = events(6);
        data.watch_plans = vec![WatchPlan::FailAfter(
            0,
            Code::ResourceExhausted,
            "client fell behind; resume after seq 3".into(),
        )];
    }
    let run = fake.run(&["watch", "-o", "json"]).await;
    run.expect_code(0);
    assert_eq!(after_seqs(&fake.data().watches), [None, Some(3)]);
    assert_eq!(seqs_of_json_lines(&run.stdout), [4, 5, 6]);
}

#[tokio::test]
async fn a_pruned_seq_is_an_error() {
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        data.events = events(20);
        data.oldest_kept_seq = 10;
    }
    let run = fake.run(&["watch", "--since", "3"]).await;
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: events after 3 are no longer kept; the oldest kept is 10\n"
    );
    assert_eq!(fake.data().watches.len(), 1, "no retry of a refusal");
}

#[tokio::test]
async fn table_lines_and_filters() {
    let fake = Fake::start().await;
    fake.data().events = events(4);
    let run = fake
        .run(&[
            "watch",
            "--since",
            "1",
            "--instance",
            "web,db",
            "--kind",
            "state-changed",
            "--kind",
            "instance-updated",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "\
2026-11-26 12:00:02       2  web           state-changed     MASTER → BACKUP: master-down timer expired (last master seen: 10.0.0.12)
2026-11-26 12:00:03       3  db            instance-updated  revision 3 by uid:0: priority
2026-11-26 12:00:04       4  web           state-changed     MASTER → BACKUP: master-down timer expired (last master seen: 10.0.0.12)
"
    );
    let request = fake.data().watches[0].clone();
    assert_eq!(request.instances, ["web", "db"]);
    assert_eq!(
        request.kinds,
        [
            EventKind::StateChanged as i32,
            EventKind::InstanceUpdated as i32
        ]
    );
}

#[tokio::test]
async fn yaml_prints_one_document_per_event() {
    let fake = Fake::start().await;
    fake.data().events = events(3);
    let run = fake.run(&["watch", "--since", "0", "-o", "yaml"]).await;
    run.expect_code(0);
    let documents: Vec<&str> = run
        .stdout
        .split("---\n")
        .filter(|d| !d.is_empty())
        .collect();
    assert_eq!(documents.len(), 3, "{}", run.stdout);
    for (document, seq) in documents.iter().zip(1..) {
        let event: Event = yaml_serde::from_str(document).unwrap();
        assert_eq!(event.seq, seq);
    }
}

#[tokio::test]
async fn ctrl_c_stops_watching_with_success() {
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        data.events = events(2);
        data.watch_plans = vec![WatchPlan::Hold(2)];
    }
    let mut child = fake.command(&["watch", "--since", "0"]).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Each event is flushed as it comes: both lines arrive while the stream is still open.
    for seq in ["1", "2"] {
        let line = tokio::time::timeout(HANG_GUARD, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(line.split_whitespace().nth(2), Some(seq), "{line}");
    }
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(HANG_GUARD, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
