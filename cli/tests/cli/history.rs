//! history: pages, --limit, filters, formats, and --config.

use havip_proto::v1::{State, Transition};

use crate::fake::{Fake, MAX_PAGE, local_time, now, transition};

/// `count` transitions of "web" and "db" alternately, a minute apart, newest first.
fn seed(fake: &Fake, count: u64) {
    fake.data().transitions = (0..count)
        .map(|i| {
            let seq = count - i;
            let name = if seq.is_multiple_of(2) { "web" } else { "db" };
            transition(
                seq,
                name,
                State::Backup,
                State::Master,
                60 * i64::try_from(i).unwrap(),
            )
        })
        .collect();
}

#[tokio::test]
async fn pages_are_followed_up_to_the_limit() {
    let fake = Fake::start().await;
    seed(&fake, 120);
    let run = fake.run(&["history", "--limit", "60", "-o", "json"]).await;
    run.expect_code(0);
    let seqs: Vec<u64> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Transition>(line).unwrap().seq)
        .collect();
    assert_eq!(
        seqs,
        (61..=120).rev().collect::<Vec<_>>(),
        "newest first, no gap"
    );
    let calls = fake.data().history_calls.clone();
    let pages: Vec<(u32, &str)> = calls
        .iter()
        .map(|(size, token, _)| (*size, token.as_str()))
        .collect();
    assert_eq!(pages, [(60, ""), (35, "25"), (10, "50")]);
    assert!(run.stderr.contains("there are more"), "{}", run.stderr);
}

#[tokio::test]
async fn the_default_limit_is_50() {
    let fake = Fake::start().await;
    seed(&fake, 120);
    let run = fake.run(&["history"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout.lines().count(), 1 + 50, "header and 50 rows");
    let pages = fake.data().history_calls.len();
    assert_eq!(
        pages,
        50usize.div_ceil(MAX_PAGE),
        "the fake serves {MAX_PAGE} per page"
    );
}

#[tokio::test]
async fn a_short_history_is_shown_whole() {
    let fake = Fake::start().await;
    seed(&fake, 2);
    let run = fake.run(&["history"]).await;
    run.expect_code(0);
    assert_eq!(run.stderr, "");
    let (newest, older) = (local_time(now()), local_time(now() - 60));
    assert_eq!(
        run.stdout,
        format!(
            "\
TIME                          INSTANCE  TRANSITION       REASON                                                   PRIO  MASTER
{newest} (3d ago)  web       BACKUP → MASTER  master-down timer expired (last master seen: 10.0.0.12)  100   10.0.0.11
{older} (3d ago)  db        BACKUP → MASTER  master-down timer expired (last master seen: 10.0.0.12)  100   10.0.0.11
"
        )
    );
}

#[tokio::test]
async fn filters_are_sent_to_havipd() {
    let fake = Fake::start().await;
    seed(&fake, 40);
    let rfc3339 = |seconds| jiff::Timestamp::from_second(seconds).unwrap().to_string();
    // Written with an offset, to show that any offset is understood.
    let until = jiff::Timestamp::from_second(now())
        .unwrap()
        .display_with_offset(jiff::tz::offset(2))
        .to_string();
    let run = fake
        .run(&[
            "history",
            "--instance",
            "web",
            "--since",
            &rfc3339(now() - 20 * 60),
            "--until",
            &until,
        ])
        .await;
    run.expect_code(0);
    let (_, _, filter) = fake.data().history_calls[0].clone();
    let filter = filter.unwrap();
    assert_eq!(filter.instance, "web");
    assert_eq!(filter.since.unwrap().seconds, now() - 20 * 60);
    assert_eq!(filter.until.unwrap().seconds, now());
    // web's transitions 20, 18, ... 2 minutes before now(); now() itself is excluded.
    assert_eq!(run.stdout.lines().count(), 1 + 10, "{}", run.stdout);
    assert!(run.stdout.lines().skip(1).all(|l| l.contains(" web ")));

    // A relative age is that long before now.
    fake.run(&["history", "--since", "2h"]).await.expect_code(0);
    let (_, _, filter) = fake.data().history_calls.last().unwrap().clone();
    let since = filter.unwrap().since.unwrap().seconds;
    let two_hours_ago = jiff::Timestamp::now().as_second() - 7200;
    assert!(
        (two_hours_ago - 60..=two_hours_ago).contains(&since),
        "--since 2h sent {since}, two hours ago is {two_hours_ago}"
    );
}

#[tokio::test]
async fn config_changes_with_config() {
    let fake = Fake::start().await;
    let create = [
        "create-instance",
        "web",
        "--interface",
        "eth0",
        "--vrid",
        "51",
        "--vip",
        "10.0.0.100/24",
    ];
    fake.run(&create).await.expect_code(0);
    fake.run(&[
        "update-instance",
        "web",
        "--priority",
        "150",
        "--comment",
        "swap roles",
    ])
    .await
    .expect_code(0);
    let run = fake.run(&["history", "--config"]).await;
    run.expect_code(0);
    let time = local_time(now());
    assert_eq!(
        run.stdout,
        format!(
            "\
TIME                          INSTANCE  REV  CHANGE  BY     FIELDS    COMMENT
{time} (3d ago)  web       2    update  uid:0  priority  swap roles
{time} (3d ago)  web       1    create  uid:0  -
"
        )
    );
}

#[tokio::test]
async fn an_empty_history_says_so_on_stderr() {
    let fake = Fake::start().await;
    let run = fake.run(&["history", "--instance", "web"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "no transitions\n");
}
