//! Moving from keepalived, end to end: the Tencent Cloud guide's two setups
//! (deploy/examples) imported with `havipctl import-keepalived --apply` onto a pair of
//! havipd nodes, which then fail over when the master's link is cut; and the notify hook
//! (`havipctl watch --exec`) running every state change once, in order, across restarts
//! of itself and of the daemon.
//!
//! The imported instances carry track_interface and vrrp_script trackers, which need the
//! daemon's tracker support.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::daemon::test_bin;
use havip_e2e::vrrp::{state, wait_state};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, ListTransitionsRequest, State};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn havipctl(d: &Daemon, args: &[&str]) -> Output {
    Command::new(test_bin("e2e-havipctl"))
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

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples")
}

/// The example for `node`, with the lab's addresses for the guide's and a check script
/// that passes (there is no HAProxy in the lab) in place of /etc/keepalived's. Each node
/// gets its own script: rewriting one the other node's daemon is already running fails
/// with ETXTBSY.
fn node_config(setup: &str, node: &str, dir: &Path) -> PathBuf {
    let check = dir.join(format!("check_haproxy-{node}.sh"));
    std::fs::write(&check, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&check, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(
        examples()
            .join(setup)
            .join(format!("keepalived-{node}.conf")),
    )
    .unwrap()
    .replace("10.0.0.11", "10.0.0.1")
    .replace("10.0.0.12", "10.0.0.2")
    .replace("/etc/keepalived/check_haproxy.sh", check.to_str().unwrap());
    let conf = dir.join(format!("keepalived-{node}.conf"));
    std::fs::write(&conf, text).unwrap();
    conf
}

async fn wait_vip(h: &Host, present: bool, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while h.has_address("10.0.0.100") != present {
        assert!(
            tokio::time::Instant::now() < deadline,
            "VIP present={present} expected on {}: {:?}",
            h.ns,
            h.addresses()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn imported_pair_fails_over(setup: &str, tag: &str) {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new(tag);
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    let dir = std::env::temp_dir().join(format!("{}-conf", a.ns));
    std::fs::create_dir_all(&dir).unwrap();
    for (daemon, node) in [(&da, "a"), (&db, "b")] {
        let conf = node_config(setup, node, &dir);
        let out = havipctl(
            daemon,
            &["import-keepalived", conf.to_str().unwrap(), "--apply"],
        );
        assert!(out.status.success(), "import on {node}: {}", text(&out));
        assert!(text(&out).contains("created VI_1"), "{}", text(&out));
    }
    let settle = Duration::from_secs(10);
    // Standing: a (priority 50) is master, b (30) backup. Dual backup: equal priorities,
    // so either may win; the other must back it up.
    let (master_daemon, master, backup_daemon, backup) = if setup == "standing" {
        wait_state(&da, "VI_1", State::Master, settle).await;
        (&da, &a, &db, &b)
    } else {
        let deadline = tokio::time::Instant::now() + settle;
        loop {
            match (state(&da, "VI_1").await, state(&db, "VI_1").await) {
                (State::Master, State::Backup) => break (&da, &a, &db, &b),
                (State::Backup, State::Master) => break (&db, &b, &da, &a),
                other => assert!(
                    tokio::time::Instant::now() < deadline,
                    "no single master: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_state(backup_daemon, "VI_1", State::Backup, settle).await;
    wait_vip(master, true, settle).await;
    assert!(!backup.has_address("10.0.0.100"), "exactly one holder");

    // The master's link goes: track_interface eth0 puts it in FAULT and the backup, no
    // longer hearing it, takes the VIP over.
    lab.unplug(master);
    wait_state(backup_daemon, "VI_1", State::Master, settle).await;
    wait_vip(backup, true, settle).await;
    wait_state(master_daemon, "VI_1", State::Fault, settle).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_standing_master_example_imports_and_fails_over() {
    imported_pair_fails_over("standing", "kaimp-st").await;
}

#[tokio::test]
async fn the_dual_backup_example_imports_and_fails_over() {
    imported_pair_fails_over("dual-backup", "kaimp-db").await;
}

/// `watch --exec` with a hook that logs "start SEQ STATE" and "end SEQ" around a sleep.
fn start_watch(daemon: &Daemon, dir: &Path) -> Child {
    let hook = dir.join("hook.sh");
    let log = dir.join("hook.log");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"start $HAVIP_SEQ $3\" >> {log}\nsleep 0.1\necho \"end $HAVIP_SEQ\" >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    Command::new(test_bin("e2e-havipctl"))
        .arg("--server")
        .arg(daemon.url())
        .args(["watch", "--since", "0", "--exec"])
        .arg(&hook)
        .arg("--cursor-file")
        .arg(dir.join("state/cursor"))
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("watch.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

fn hook_log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("hook.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn transitions(daemon: &Daemon) -> Vec<v1::Transition> {
    let mut h = daemon.history().await;
    let mut all = h
        .list_transitions(ListTransitionsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .transitions;
    all.sort_by_key(|t| t.seq);
    all
}

async fn wait_hooks(dir: &Path, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while hook_log(dir)
        .iter()
        .filter(|l| l.starts_with("end "))
        .count()
        < count
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} hooks expected; log: {:?}; watch's stderr:\n{}",
            hook_log(dir),
            std::fs::read_to_string(dir.join("watch.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn watch_exec_runs_every_state_change_once_in_order_across_restarts() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("kaexec");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let mut daemon = Daemon::start(&a, "a");
    let dir = std::env::temp_dir().join(format!("{}-exec", a.ns));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = havipctl(
        &daemon,
        &[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--vip",
            "10.0.0.100/24",
            "--advert-interval",
            "100ms",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let settle = Duration::from_secs(10);
    wait_state(&daemon, "web", State::Master, settle).await;

    let mut watch = start_watch(&daemon, &dir);
    // Changes while it runs: disable (STOP), enable (BACKUP, then MASTER).
    for step in ["disable", "enable"] {
        let out = havipctl(&daemon, &[step, "web"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    wait_state(&daemon, "web", State::Master, settle).await;
    let so_far = transitions(&daemon).await.len();
    wait_hooks(&dir, so_far).await;

    // havipctl is killed; changes happen while it is away.
    watch.kill().unwrap();
    watch.wait().unwrap();
    for step in ["disable", "enable"] {
        let out = havipctl(&daemon, &[step, "web"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    wait_state(&daemon, "web", State::Master, settle).await;
    let mut watch = start_watch(&daemon, &dir);

    // The daemon restarts under the running watch (its shutdown is a change too).
    daemon.stop();
    daemon.restart();
    wait_state(&daemon, "web", State::Master, settle).await;
    let all = transitions(&daemon).await;
    wait_hooks(&dir, all.len()).await;
    watch.kill().unwrap();
    watch.wait().unwrap();

    let mut expected = Vec::new();
    for t in &all {
        let state = match State::try_from(t.to).unwrap() {
            State::Master => "MASTER",
            State::Backup => "BACKUP",
            State::Fault => "FAULT",
            State::Init | State::Disabled => "STOP",
            State::Unspecified => "?",
        };
        expected.push(format!("start {} {state}", t.seq));
        expected.push(format!("end {}", t.seq));
    }
    assert_eq!(hook_log(&dir), expected, "transitions: {all:#?}");
    assert!(all.len() >= 8, "enough changes to mean something: {all:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_notify_unit_passes_systemd_analyze_verify() {
    let Ok(which) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    assert!(which.status.success());
    let dir = std::env::temp_dir().join(format!("havip-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The unit names /usr/local/bin/havipctl, which verify wants to exist: point it at the
    // test build instead.
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/havip-notify.service"),
    )
    .unwrap()
    .replace(
        "/usr/local/bin/havipctl",
        test_bin("e2e-havipctl").to_str().unwrap(),
    );
    let path = dir.join("havip-notify.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "verify has no complaint"
    );
}
