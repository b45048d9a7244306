//! demote, promote, clear-override, disable, enable, report-health, sync-group and the
//! tracker flags: what havipctl sends, prints and how it exits.

use havip_proto::v1::tracker::Check;
use havip_proto::v1::{HealthReportCheck, Instance, ScriptCheck, State, Tracker, TrackerStatus};

use crate::fake::{Fake, instance};

fn with_instances(fake: &Fake, names: &[&str]) {
    let mut data = fake.data();
    for (i, name) in names.iter().enumerate() {
        let vrid = u32::try_from(i).unwrap() + 1;
        data.instances.insert(
            (*name).to_owned(),
            instance(name, vrid, &format!("10.0.0.{}/24", 100 + vrid), &[]),
        );
    }
}

#[tokio::test]
async fn demote_promote_and_clear() {
    let fake = Fake::start().await;
    with_instances(&fake, &["web"]);

    let run = fake
        .run(&["demote", "web", "--for", "1h", "--reason", "kernel update"])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "demoted web: priority 1 until 2026-11-26 13:00:00; now MASTER, priority 1\n"
    );
    {
        let data = fake.data();
        let request = &data.demotes[0];
        assert_eq!(request.priority, None, "the default is havipd's");
        assert_eq!(request.duration.unwrap().seconds, 3600);
        assert_eq!(request.reason, "kernel update");
    }

    let run = fake
        .run(&["promote", "web", "--priority", "200", "-o", "json"])
        .await;
    run.expect_code(0);
    let json: Instance = serde_json::from_str(&run.stdout).unwrap();
    let o = json.spec.unwrap().priority_override.unwrap();
    assert_eq!((o.priority, o.expires), (200, None));

    let run = fake
        .run(&["clear-override", "web", "--reason", "done"])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "cleared the override of web; now MASTER, priority 100\n"
    );
    assert_eq!(fake.data().clears[0].reason, "done");

    // havipd's refusals are shown with their fields and exit 1.
    let run = fake.run(&["demote", "web", "--priority", "255"]).await;
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: priority 255 is out of range\n  field priority: must be 1-254\n"
    );
    let run = fake.run(&["promote", "nope"]).await;
    run.expect_code(1);
    assert_eq!(run.stderr, "error: no instance named nope\n");
    // Bad usage exits 2 before anything is sent.
    let calls = fake.data().calls;
    fake.run(&["demote", "web", "--for", "a while"])
        .await
        .expect_code(2);
    fake.run(&["demote"]).await.expect_code(2);
    assert_eq!(fake.data().calls, calls);
}

#[tokio::test]
async fn disable_and_enable_update_only_disabled() {
    let fake = Fake::start().await;
    with_instances(&fake, &["web"]);
    let run = fake
        .run(&["disable", "web", "--comment", "decommissioning"])
        .await;
    run.expect_code(0);
    assert_eq!(run.stdout, "disabled web (revision 2)\n");
    let run = fake.run(&["disable", "web"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "web was disabled already\n");
    let run = fake.run(&["enable", "web"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "enabled web (revision 3)\n");
    let data = fake.data();
    assert_eq!(data.updates.len(), 3);
    for update in &data.updates {
        assert_eq!(update.update_mask.as_ref().unwrap().paths, ["disabled"]);
    }
    assert_eq!(data.updates[0].comment, "decommissioning");
    assert!(data.updates[0].spec.as_ref().unwrap().disabled);
    assert!(!data.updates[2].spec.as_ref().unwrap().disabled);
}

#[tokio::test]
async fn report_health_names_the_followers_or_warns_that_there_are_none() {
    let fake = Fake::start().await;
    with_instances(&fake, &["db", "web"]);
    fake.data()
        .instances
        .get_mut("db")
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .trackers
        .push(Tracker {
            name: "repl".into(),
            weight: -50,
            check: Some(Check::Report(HealthReportCheck {
                check: "mysql-replication".into(),
            })),
        });
    let run = fake
        .run(&[
            "report-health",
            "mysql-replication",
            "--healthy",
            "--ttl",
            "1m",
            "--detail",
            "lag 0.2s",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "reported mysql-replication healthy for 1m; followed by db\n"
    );
    let request = fake.data().reports[0].clone();
    assert!(request.healthy);
    assert_eq!(request.ttl.unwrap().seconds, 60);
    assert_eq!(request.detail, "lag 0.2s");

    let run = fake.run(&["report-health", "typo", "--failing"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("warning: no instance follows check typo")
    );
    assert!(!fake.data().reports[1].healthy);

    fake.run(&["report-health", "x"]).await.expect_code(2);
}

#[tokio::test]
async fn sync_groups_from_create_to_delete() {
    let fake = Fake::start().await;
    with_instances(&fake, &["mysql-vip", "backup-vip", "admin-vip"]);

    let run = fake
        .run(&[
            "sync-group",
            "create",
            "db",
            "--instance",
            "mysql-vip",
            "--instance",
            "backup-vip",
            "--comment",
            "as in keepalived",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "created sync group db: mysql-vip, backup-vip (revision 1)\n"
    );
    assert_eq!(fake.data().group_creates[0].comment, "as in keepalived");

    let run = fake.run(&["get-instance", "mysql-vip"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("\nSync group:        db\n"),
        "{}",
        run.stdout
    );

    let run = fake
        .run(&[
            "sync-group",
            "update",
            "db",
            "--instance",
            "mysql-vip,backup-vip,admin-vip",
            "--revision",
            "1",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "updated sync group db: mysql-vip, backup-vip, admin-vip (revision 2)\n"
    );
    let run = fake
        .run(&[
            "sync-group",
            "update",
            "db",
            "--instance",
            "mysql-vip",
            "--revision",
            "1",
        ])
        .await;
    run.expect_code(1);
    assert_eq!(run.stderr, "error: sync group db is at revision 2, not 1\n");

    let run = fake.run(&["sync-group", "get", "db"]).await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "Name:       db\nInstances:  mysql-vip, backup-vip, admin-vip\nRevision:   2\n"
    );
    let run = fake.run(&["sync-group", "list"]).await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "NAME  INSTANCES                       REVISION\ndb    mysql-vip,backup-vip,admin-vip  2\n"
    );
    let run = fake
        .run(&[
            "sync-group",
            "create",
            "other",
            "--instance",
            "mysql-vip,ghost",
        ])
        .await;
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: cannot make sync group other\n  \
         field group.instances[0]: mysql-vip belongs to sync group db already\n  \
         field group.instances[1]: no instance named ghost\n"
    );

    let run = fake.run(&["sync-group", "delete", "db"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "deleted sync group db\n");
    let run = fake.run(&["sync-group", "list"]).await;
    run.expect_code(0);
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("", "no sync groups\n")
    );
    fake.run(&["sync-group", "create", "x"])
        .await
        .expect_code(2);
}

#[tokio::test]
async fn tracker_flags_on_create_and_update() {
    let fake = Fake::start().await;
    let run = fake
        .run(&[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--vip",
            "10.0.0.100/24",
            "--track-interface",
            "eth0",
            "--track-script",
            "name=haproxy,path=/etc/havip/check_haproxy.sh,interval=2s,fall=2,weight=-20",
            "--track-file",
            "drain:/run/havip/drain",
            "--track-report",
            "repl:mysql-replication:-50",
        ])
        .await;
    run.expect_code(0);
    let spec = fake.data().creates[0].spec.clone().unwrap();
    let names: Vec<(&str, i32)> = spec
        .trackers
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(
        names,
        [("eth0", 0), ("haproxy", -20), ("drain", 1), ("repl", -50)]
    );
    let Some(Check::Script(script)) = &spec.trackers[1].check else {
        panic!("{:?}", spec.trackers[1])
    };
    assert_eq!(
        script,
        &ScriptCheck {
            path: "/etc/havip/check_haproxy.sh".into(),
            interval: Some(pbjson_types::Duration {
                seconds: 2,
                nanos: 0
            }),
            fall: Some(2),
            ..Default::default()
        }
    );

    // The live status next to the configuration in get-instance.
    {
        let mut data = fake.data();
        let status = data
            .instances
            .get_mut("web")
            .unwrap()
            .status
            .as_mut()
            .unwrap();
        status.state = State::Backup as i32;
        status.trackers = vec![
            TrackerStatus {
                name: "eth0".into(),
                healthy: true,
                detail: "up".into(),
                since: None,
                priority_change: 0,
                ..Default::default()
            },
            TrackerStatus {
                name: "haproxy".into(),
                healthy: false,
                detail: "exit status 1".into(),
                since: None,
                priority_change: -20,
                ..Default::default()
            },
        ];
    }
    let run = fake.run(&["get-instance", "web"]).await;
    run.expect_code(0);
    let trackers = &run.stdout[run.stdout.find("Trackers:").unwrap()..];
    assert_eq!(
        trackers,
        "\
Trackers:
  NAME     KIND       TARGET                       WEIGHT  HEALTHY  PRIORITY  DETAIL
  eth0     interface  eth0                         0       yes      +0        up
  haproxy  script     /etc/havip/check_haproxy.sh  -20     no       -20       exit status 1
  drain    file       /run/havip/drain             1       -        -
  repl     report     mysql-replication            -50     -        -
"
    );

    let run = fake
        .run(&["update-instance", "web", "--track-interface", "eth1:-10"])
        .await;
    run.expect_code(0);
    assert_eq!(run.stdout, "updated web: trackers (revision 2)\n");
    let run = fake
        .run(&["update-instance", "web", "--clear-trackers"])
        .await;
    run.expect_code(0);
    {
        let data = fake.data();
        assert_eq!(
            data.updates[1].update_mask.as_ref().unwrap().paths,
            ["trackers"]
        );
        let spec = data.instances["web"].spec.as_ref().unwrap();
        assert!(spec.trackers.is_empty());
    }
    let run = fake
        .run(&[
            "update-instance",
            "web",
            "--clear-trackers",
            "--track-file",
            "a:/b",
        ])
        .await;
    run.expect_code(2);
    let run = fake
        .run(&["update-instance", "web", "--track-script", "haproxy"])
        .await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("expected NAME:PATH[:WEIGHT]"),
        "{}",
        run.stderr
    );
}
