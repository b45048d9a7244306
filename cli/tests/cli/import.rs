//! import-keepalived: YAML on stdout and the report on stderr; --apply and --dry-run go
//! through apply's code path, instances before sync groups.

use std::path::Path;

use crate::fake::Fake;

const CONF: &str = r#"! two instances in a sync group
global_defs {
    router_id node_a
}
vrrp_sync_group DB {
    group {
        mysql
        backup_vip
    }
}
vrrp_instance mysql {
    state MASTER
    interface eth0
    virtual_router_id 10
    priority 150
    virtual_ipaddress {
        10.0.0.10/24
    }
    notify_master "/etc/keepalived/up.sh"
}
vrrp_instance backup_vip {
    interface eth0
    virtual_router_id 11
    virtual_ipaddress {
        10.0.0.11/24
    }
}
"#;

fn write(dir: &Path) -> String {
    let path = dir.join("keepalived.conf");
    std::fs::write(&path, CONF).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn without_apply_it_prints_the_file_and_the_report_and_asks_havipd_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path());
    // No --server: an import alone never connects.
    let run = crate::havipctl(&["import-keepalived", &file]).await;
    run.expect_code(0);
    assert!(run.stdout.starts_with(
        "# havip instances and sync groups imported from keepalived.conf by havipctl import-keepalived.\n"
    ));
    assert!(run.stdout.contains("\n# keepalived vrrp_sync_group DB (keepalived.conf:5)\n- name: DB\n  sync_group:\n    instances:\n    - mysql\n    - backup_vip\n"), "{}", run.stdout);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            "keepalived.conf:3: router_id: not carried over: keepalived names the node with it in mails and SNMP; havip has neither, and names nodes by their havipd address",
            "keepalived.conf:12: state: not carried over: havip has no initial state: every instance starts as BACKUP and becomes MASTER when it hears no better master for Master_Down_Interval (at once with priority 255, as the owner of the addresses); the priorities and preemption decide who is master, as they do in keepalived once it runs",
            "keepalived.conf:19: notify_master: not carried over: replaced by havipctl watch --exec, which runs hooks one at a time, in order, and resumes after a restart without losing or repeating one; for this instance: havipctl watch --instance mysql --cursor-file /var/lib/havip-notify/cursor --shell --exec 'case \"$3\" in MASTER) /etc/keepalived/up.sh ;; esac'",
            "imported 2 instances and 1 sync group; 3 keywords not carried over (above)",
        ]
    );
    // The output is a file apply -f takes.
    let yaml = dir.path().join("havip.yaml");
    std::fs::write(&yaml, &run.stdout).unwrap();
    let fake = Fake::start().await;
    let applied = fake.run(&["apply", "-f", yaml.to_str().unwrap()]).await;
    applied.expect_code(0);
    assert_eq!(
        applied.stdout,
        "created mysql\ncreated backup_vip\ncreated sync group DB\n"
    );

    let json = crate::havipctl(&["import-keepalived", &file, "-o", "json"]).await;
    json.expect_code(0);
    let list: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(list[2]["sync_group"]["instances"][1], "backup_vip");
}

#[tokio::test]
async fn apply_creates_instances_then_groups_and_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path());
    let fake = Fake::start().await;

    let run = fake.run(&["import-keepalived", &file, "--dry-run"]).await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "would create mysql\nwould create backup_vip\nwould create sync group DB\n"
    );
    assert!(
        run.stderr.ends_with("dry run: nothing was changed\n"),
        "{}",
        run.stderr
    );
    {
        let data = fake.data();
        assert!(data.instances.is_empty() && data.sync_groups.is_empty());
        assert!(data.creates.iter().all(|c| c.validate_only));
    }

    let run = fake.run(&["import-keepalived", &file, "--apply"]).await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "created mysql\ncreated backup_vip\ncreated sync group DB\n"
    );
    {
        let data = fake.data();
        let mysql = data.instances["mysql"].spec.as_ref().unwrap();
        assert_eq!(
            (mysql.vrid, mysql.priority, mysql.version),
            (10, Some(150), Some(2))
        );
        assert_eq!(data.sync_groups["DB"].instances, ["mysql", "backup_vip"]);
        assert_eq!(
            data.creates[2].comment,
            format!("havipctl import-keepalived {file}")
        );
    }
    // Again: nothing to do.
    let run = fake.run(&["import-keepalived", &file, "--apply"]).await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "unchanged mysql\nunchanged backup_vip\nunchanged sync group DB\n"
    );
}

#[tokio::test]
async fn an_unreadable_or_broken_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.conf");
    let run = crate::havipctl(&["import-keepalived", missing.to_str().unwrap()]).await;
    run.expect_code(1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot import: cannot read {}: ",
            missing.display()
        )),
        "{}",
        run.stderr
    );
    let broken = dir.path().join("broken.conf");
    std::fs::write(&broken, "vrrp_instance X {\n  priority 300\n}\n").unwrap();
    let run = crate::havipctl(&["import-keepalived", broken.to_str().unwrap()]).await;
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: cannot import: broken.conf:2: priority: '300' is not a whole number from 1 to 255\n"
    );
    assert_eq!(run.stdout, "");
}
