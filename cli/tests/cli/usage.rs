//! Usage errors, an unreachable daemon, where the server address comes from, and help.

use crate::fake::Fake;
use crate::{command, havipctl, run_command};

#[tokio::test]
async fn malformed_values_are_usage_errors_and_nothing_is_sent() {
    let fake = Fake::start().await;
    let create = ["create-instance", "web", "--interface", "eth0"];
    for bad in [
        &["--vrid", "abc", "--vip", "10.0.0.100/24"][..],
        &["--vrid", "51", "--vip", "10.0.0.100"],
        &["--vrid", "51", "--vip", "10.0.0.100/24,not-an-ip/24"],
        &[
            "--vrid",
            "51",
            "--vip",
            "10.0.0.100/24",
            "--advert-interval",
            "soon",
        ],
        &["--vrid", "51"],
    ] {
        let args: Vec<&str> = create.iter().chain(bad).copied().collect();
        let run = fake.run(&args).await;
        run.expect_code(2);
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
    }
    let run = fake.run(&["update-instance", "web"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("nothing to change"), "{}", run.stderr);
    let run = fake
        .run(&["update-instance", "web", "--preempt", "--no-preempt"])
        .await;
    run.expect_code(2);
    let run = fake.run(&["history", "--since", "last tuesday"]).await;
    run.expect_code(2);
    let run = fake.run(&["frobnicate"]).await;
    run.expect_code(2);
    assert_eq!(fake.data().calls, 0, "usage errors must not reach havipd");
}

#[tokio::test]
async fn an_unreachable_daemon_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("unix://{}/havipd.sock", dir.path().display());
    let run = havipctl(&["--server", &url, "list-instances"]).await;
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!(
            "error: cannot reach havipd at {url}: No such file or directory. \
             Is havipd running? Set --server or HAVIP_SERVER.\n"
        )
    );
    // watch too gives up at once when the daemon was never there.
    let run = havipctl(&["--server", &url, "watch"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("Is havipd running?"), "{}", run.stderr);
}

#[tokio::test]
async fn tcp_works_too() {
    let fake = Fake::start_tcp().await;
    assert!(fake.url.starts_with("http://127.0.0.1:"), "{}", fake.url);
    let run = fake.run(&["list-instances"]).await;
    run.expect_code(0);
    assert_eq!(run.stderr, "no instances\n");
    assert_eq!(fake.data().lists.len(), 1);
}

#[tokio::test]
async fn plain_http_beyond_loopback_and_tls_files_without_https_are_refused() {
    let run = havipctl(&["--server", "http://10.0.0.1:50051", "list-instances"]).await;
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("plain http:// is only for a havipd on this host"),
        "{}",
        run.stderr
    );
    let run = havipctl(&[
        "--server",
        "unix:///run/havip/havipd.sock",
        "--tls-ca",
        "ca.pem",
        "list-instances",
    ])
    .await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("are for an https:// server"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn completions_and_man_pages_need_no_daemon() {
    for shell in ["bash", "zsh", "fish"] {
        let run = havipctl(&["completions", shell]).await;
        run.expect_code(0);
        assert!(
            run.stdout.contains("create-instance"),
            "{shell}: {}",
            run.stdout
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let run = havipctl(&["man", "--out-dir", out.to_str().unwrap()]).await;
    run.expect_code(0);
    let top = std::fs::read_to_string(out.join("havipctl.1")).unwrap();
    assert!(
        top.starts_with(".ie \\n(.g .ds Aq"),
        "roff: {}",
        &top[..40.min(top.len())]
    );
    assert!(top.contains("havipctl"));
    assert!(out.join("havipctl-create-instance.1").exists());
}

#[tokio::test]
async fn the_server_can_come_from_the_environment() {
    let fake = Fake::start().await;
    let mut cmd = command(&["list-instances"]);
    cmd.env("HAVIP_SERVER", &fake.url);
    let run = run_command(cmd, None).await;
    run.expect_code(0);
    assert_eq!(run.stderr, "no instances\n");
    assert_eq!(fake.data().lists.len(), 1);

    // --server wins over the environment.
    let mut cmd = command(&["--server", &fake.url, "list-instances"]);
    cmd.env("HAVIP_SERVER", "unix:///nonexistent/havipd.sock");
    run_command(cmd, None).await.expect_code(0);
}

#[tokio::test]
async fn every_command_has_examples() {
    let run = havipctl(&["--help"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("VRRP"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Run 'havipctl <command> --help'"),
        "{}",
        run.stdout
    );
    for command in [
        "create-instance",
        "update-instance",
        "delete-instance",
        "get-instance",
        "list-instances",
        "watch",
        "history",
        "apply",
        "demote",
        "promote",
        "clear-override",
        "disable",
        "enable",
        "report-health",
        "sync-group",
        "sync-group create",
        "sync-group update",
        "sync-group delete",
        "sync-group get",
        "sync-group list",
        "import-keepalived",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let run = havipctl(&args).await;
        run.expect_code(0);
        assert!(
            run.stdout.contains("\nExamples:\n"),
            "{command}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!("  havipctl {command} ")),
            "{command} has no example of itself: {}",
            run.stdout
        );
    }
}
