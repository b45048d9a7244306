//! havipctl against a real havipd: what a new user following the README does, and the
//! output formats and exit codes.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::{Daemon, Lab, netns_available};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn havipctl(d: &Daemon, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_e2e-havipctl"))
        .arg("--server")
        .arg(d.url())
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_readme_walkthrough() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("cli");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start(&host, "cli");

    let out = havipctl(
        &daemon,
        &[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--priority",
            "100",
            "--vip",
            "10.0.0.100/24",
            "--advert-interval",
            "100ms",
            "--label",
            "service=web",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("web"), "{}", text(&out));

    // The lone instance becomes master; get-instance -o json shows it.
    let mut json = serde_json::Value::Null;
    for _ in 0..100 {
        let out = havipctl(&daemon, &["get-instance", "web", "-o", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        json = serde_json::from_slice(&out.stdout).unwrap();
        if json["status"]["state"] == "STATE_MASTER" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(json["status"]["state"], "STATE_MASTER", "{json}");
    assert_eq!(json["name"], "web");
    assert_eq!(json["spec"]["vrid"], 51);

    let out = havipctl(&daemon, &["list-instances"]);
    assert!(out.status.success());
    let listing = text(&out);
    assert!(
        listing.contains("NAME") && listing.contains("web") && listing.contains("MASTER"),
        "{listing}"
    );

    let out = havipctl(&daemon, &["history"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("MASTER"), "{}", text(&out));

    let out = havipctl(&daemon, &["history", "--config", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert!(
        first["actor"].as_str().unwrap().starts_with("uid:"),
        "{first}"
    );

    // watch --since 0 replays what happened; stop it after a moment.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_e2e-havipctl"))
        .args([
            "--server",
            &daemon.url(),
            "watch",
            "--since",
            "0",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.len() >= 3,
        "created, daemon started, state changes: {lines:?}"
    );
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| {
            l["seq"]
                .as_str()
                .map_or_else(|| l["seq"].as_u64().unwrap(), |s| s.parse().unwrap())
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[test]
fn refusals_exit_1_and_name_the_field_usage_errors_exit_2() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("clierr");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start(&host, "clierr");
    let out = havipctl(
        &daemon,
        &[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "0",
            "--vip",
            "10.0.0.100/24",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("vrid"), "{}", text(&out));

    let out = havipctl(&daemon, &["get-instance", "nope"]);
    assert_eq!(out.status.code(), Some(1));

    let out = havipctl(&daemon, &["create-instance", "web", "--vrid", "abc"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
