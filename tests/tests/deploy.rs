//! The deployment files stay true to the code: the systemd unit passes `systemd-analyze
//! verify` and keeps its capabilities and hardening; the DaemonSet is valid YAML with the
//! host network, two capabilities, a hostPath state folder and a health probe; the
//! environment file lists every HAVIP_* variable havipd has; the container file builds
//! with commands that exist; the man page renders.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::CommandFactory;
use havip_e2e::daemon::test_bin;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_serde::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// havipd's environment variables, from its command-line definition.
fn havipd_env() -> BTreeSet<String> {
    havipd::args::Args::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

/// `Key=value` lines of a unit file's [Service] and [Unit] sections.
fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_unit_verifies() {
    let unit_path = repo().join("deploy/systemd/havipd.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let d = directives(&unit);
    let get = |k: &str| {
        d.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("Type"), ["notify"]);
    assert_eq!(get("AmbientCapabilities"), ["CAP_NET_ADMIN CAP_NET_RAW"]);
    assert_eq!(get("CapabilityBoundingSet"), ["CAP_NET_ADMIN CAP_NET_RAW"]);
    assert_eq!(get("ProtectSystem"), ["strict"]);
    assert_eq!(get("StateDirectory"), ["havip"]);
    assert_eq!(get("RuntimeDirectory"), ["havip"]);
    assert_eq!(get("NoNewPrivileges"), ["yes"]);
    let families: BTreeSet<&str> = get("RestrictAddressFamilies")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    for f in ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"] {
        assert!(families.contains(f), "{f} is needed");
    }
    // VMAC instances write per-interface sysctls; this would make /proc/sys read-only.
    assert!(get("ProtectKernelTunables").is_empty());
    assert_eq!(get("ExecStart"), ["/usr/local/bin/havipd"]);

    // systemd-analyze checks the unit against a root where the binary is where ExecStart
    // says and systemd's own units exist; --man=no because havipd(8) is not installed here.
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok(),
        "systemd-analyze is missing: install the Debian package 'systemd' (.ci/run does) to check the unit"
    );
    let system_units = Path::new("/usr/lib/systemd/system");
    assert!(
        system_units.join("multi-user.target").exists(),
        "{} has no systemd units: install the Debian package 'systemd'",
        system_units.display()
    );
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
    std::fs::copy(test_bin("e2e-havipd"), r.join("usr/local/bin/havipd")).unwrap();
    std::fs::copy(&unit_path, r.join("etc/systemd/system/havipd.service")).unwrap();
    for entry in std::fs::read_dir(system_units).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(
                entry.path(),
                r.join("usr/lib/systemd/system").join(entry.file_name()),
            )
            .unwrap();
        }
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.display()))
        .arg("/etc/systemd/system/havipd.service")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys are only warnings: any output at all fails the check.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_daemonset_is_valid_and_minimal() {
    let text = read("deploy/kubernetes/daemonset.yaml");
    let docs: Vec<Value> = yaml_serde::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    assert_eq!(ds["apiVersion"], "apps/v1");
    let pod = get(ds, &["spec", "template", "spec"]);
    assert_eq!(pod["hostNetwork"], true);
    let selector = get(ds, &["spec", "selector", "matchLabels"]);
    assert_eq!(
        selector,
        get(ds, &["spec", "template", "metadata", "labels"]),
        "the selector matches the pod's labels"
    );
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let caps = get(c, &["securityContext", "capabilities"]);
    assert_eq!(strings(&caps["add"]), ["NET_ADMIN", "NET_RAW"]);
    assert_eq!(strings(&caps["drop"]), ["ALL"]);
    assert_eq!(
        get(c, &["securityContext", "allowPrivilegeEscalation"]).as_bool(),
        Some(false)
    );
    assert!(get(c, &["securityContext", "privileged"]).is_null());

    // The state folder is the node's, and the socket the probe asks is the one havipd serves.
    let state = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["hostPath"]["path"] == "/var/lib/havip")
        .expect("a hostPath volume for /var/lib/havip");
    let mounted = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|m| m["name"] == state["name"] && m["mountPath"] == "/var/lib/havip");
    assert!(mounted);
    let env: Vec<(String, String)> = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let known = havipd_env();
    for (name, _) in &env {
        assert!(
            known.contains(name) || name == "HAVIP_SERVER" || name == "NODE_IP",
            "{name} is not a havipd variable"
        );
    }
    let listen = env
        .iter()
        .find(|(n, _)| n == "HAVIP_LISTEN")
        .map(|(_, v)| v.clone())
        .unwrap();
    let probe = strings(get(c, &["readinessProbe", "exec", "command"]));
    assert_eq!(probe.first().map(String::as_str), Some("havipctl"));
    assert_eq!(probe.last().map(String::as_str), Some("health"));
    assert!(probe.contains(&listen), "{probe:?} asks {listen}");

    // The probe's command line parses as havipctl's.
    let out = Command::new(test_bin("e2e-havipctl"))
        .args(&probe[1..probe.len() - 1])
        .args(["health", "--help"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_environment_file_lists_every_variable() {
    let text = read("deploy/havipd.env");
    let listed: BTreeSet<String> = text
        .lines()
        .map(|l| l.trim_start_matches('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| k.starts_with("HAVIP_"))
        .collect();
    assert_eq!(listed, havipd_env());
}

#[test]
fn the_container_file_uses_commands_that_exist() {
    let text = read("deploy/container/Containerfile");
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "multi-stage: {stages:?}");
    assert!(stages[1].contains("debian:") && stages[1].contains("-slim"));
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/havipd\"]"));
    for (bin, args) in [
        ("e2e-havipd", &["--man-page"][..]),
        ("e2e-havipctl", &["completions", "bash"]),
    ] {
        let shown = format!("{} {}", bin.trim_start_matches("e2e-"), args.join(" "));
        assert!(text.contains(&shown), "the file runs {shown}");
        let out = Command::new(test_bin(bin)).args(args).output().unwrap();
        assert!(out.status.success(), "{shown}");
    }
    assert!(text.contains("havipctl man --out-dir"));
}

#[test]
fn the_man_page_renders_with_every_flag() {
    let out = Command::new(test_bin("e2e-havipd"))
        .arg("--man-page")
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH havipd 8"),
        "{}",
        &page[..200.min(page.len())]
    );
    for flag in [
        "otlp\\-endpoint",
        "metrics\\-listen",
        "tls\\-client\\-ca",
        "socket\\-group",
    ] {
        assert!(page.contains(flag), "{flag} missing");
    }
    assert!(
        !page.contains("man\\-page"),
        "the packaging flag stays hidden"
    );
}
