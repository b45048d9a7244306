//! create-instance, update-instance, delete-instance, get-instance and list-instances.

use havip_proto::v1::{AuthType, Instance, ListInstancesResponse, UpdateInstanceResponse};

use crate::fake::{Fake, instance, local_time, now};

const TENCENT: &[&str] = &[
    "create-instance",
    "web",
    "--interface",
    "eth0",
    "--vrid",
    "51",
    "--priority",
    "50",
    "--vip",
    "10.0.0.100/24",
    "--version",
    "2",
    "--unicast-src",
    "10.0.0.11",
    "--peer",
    "10.0.0.12",
    "--auth-pass",
    "1111",
    "--no-preempt",
];

#[tokio::test]
async fn create_then_get_as_table_json_and_yaml() {
    let fake = Fake::start().await;
    let run = fake.run(TENCENT).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "created web (revision 1)\n");
    assert_eq!(run.stderr, "");

    let sent = fake.data().creates[0].clone();
    let spec = sent.spec.unwrap();
    assert_eq!(spec.unicast_peers, ["10.0.0.12"]);
    assert_eq!(spec.preempt, Some(false));
    assert_eq!(spec.auth.unwrap().r#type, AuthType::Pass as i32);
    assert!(!sent.validate_only);

    let run = fake.run(&["get-instance", "web"]).await;
    run.expect_code(0);
    for line in [
        "State:             BACKUP since ",
        "Name:              web\n",
        "Priority:          50\n",
        "Interface:         eth0\n",
        "VRID:              51\n",
        "Version:           2\n",
        "Virtual IPs:       10.0.0.100/24\n",
        "Peers:             10.0.0.12 (from 10.0.0.11)\n",
        "Advert interval:   1s\n",
        "Preempt:           no\n",
        "Auth:              password (set)\n",
        &format!(
            "Revision:          1 (updated {} (3d ago))\n",
            local_time(now() - 180)
        ),
    ] {
        assert!(run.stdout.contains(line), "no {line:?} in\n{}", run.stdout);
    }
    assert!(run.stdout.starts_with("Name:"), "{}", run.stdout);

    // JSON is the proto3 JSON mapping of the Instance and parses back into it.
    let run = fake.run(&["get-instance", "web", "-o", "json"]).await;
    run.expect_code(0);
    let from_json: Instance = serde_json::from_str(&run.stdout).unwrap();
    let stored = fake.data().instances["web"].clone();
    assert_eq!(
        from_json.spec.as_ref().unwrap().unicast_peers,
        ["10.0.0.12"]
    );
    assert_eq!(from_json.revision, stored.revision);
    assert_eq!(from_json.create_time, stored.create_time);
    assert!(
        run.stdout.contains("\"virtualAddresses\": [")
            && run.stdout.contains("\"revision\": \"1\""),
        "proto3 JSON uses lowerCamelCase and quotes 64-bit integers:\n{}",
        run.stdout
    );

    let run = fake.run(&["-o", "yaml", "get-instance", "web"]).await;
    run.expect_code(0);
    let from_yaml: Instance = yaml_serde::from_str(&run.stdout).unwrap();
    assert_eq!(from_yaml, from_json);
    assert!(run.stdout.contains("name: web\n"), "{}", run.stdout);
}

#[tokio::test]
async fn dry_run_validates_and_changes_nothing() {
    let fake = Fake::start().await;
    let mut args = TENCENT.to_vec();
    args.push("--dry-run");
    let run = fake.run(&args).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "would create web (dry run, nothing changed)\n");
    assert!(fake.data().creates[0].validate_only);
    assert!(fake.data().instances.is_empty());
}

#[tokio::test]
async fn invalid_argument_names_each_field_and_exits_1() {
    let fake = Fake::start().await;
    let run = fake
        .run(&[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "0",
            "--vip",
            "10.0.0.100/24",
        ])
        .await;
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: the instance spec is invalid\n  field vrid: must be 1-255, not 0\n"
    );
    assert!(fake.data().instances.is_empty());
}

#[tokio::test]
async fn list_filters_by_label_and_sorts_by_name() {
    let fake = Fake::start().await;
    {
        let mut data = fake.data();
        for (name, vrid, vip, labels) in [
            (
                "web",
                51,
                "10.0.0.100/24",
                &[("service", "nginx"), ("env", "prod")][..],
            ),
            (
                "db",
                52,
                "10.0.0.200/24",
                &[("service", "mysql"), ("env", "prod")],
            ),
            (
                "db-test",
                53,
                "10.9.0.200/24",
                &[("service", "mysql"), ("env", "test")],
            ),
        ] {
            data.instances
                .insert(name.into(), instance(name, vrid, vip, labels));
        }
    }
    let run = fake.run(&["list-instances"]).await;
    run.expect_code(0);
    let since = local_time(now() - 600);
    assert_eq!(
        run.stdout,
        format!(
            "\
NAME     STATE   PRIO  INTERFACE  VRID  VIPS           MASTER     SINCE
db       MASTER  100   eth0       52    10.0.0.200/24  10.0.0.11  {since} (3d ago)
db-test  MASTER  100   eth0       53    10.9.0.200/24  10.0.0.11  {since} (3d ago)
web      MASTER  100   eth0       51    10.0.0.100/24  10.0.0.11  {since} (3d ago)
"
        )
    );

    let run = fake
        .run(&[
            "list-instances",
            "--label",
            "service=mysql",
            "--label",
            "env=prod",
            "-o",
            "json",
        ])
        .await;
    run.expect_code(0);
    let selector = fake.data().lists.last().unwrap().label_selector.clone();
    assert_eq!(selector.len(), 2);
    assert_eq!(selector["service"], "mysql");
    let response: ListInstancesResponse = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = response.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["db"]);

    let run = fake
        .run(&["list-instances", "--label", "service=none"])
        .await;
    run.expect_code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "no instances\n");
}

#[tokio::test]
async fn update_sends_a_mask_of_the_flags_given_and_prints_what_changed() {
    let fake = Fake::start().await;
    fake.data()
        .instances
        .insert("web".into(), instance("web", 51, "10.0.0.100/24", &[]));

    let run = fake
        .run(&[
            "update-instance",
            "web",
            "--priority",
            "150",
            "--vip",
            "10.0.0.100/24,10.0.0.101/24",
            "--garp-refresh",
            "1m",
            "--comment",
            "node a takes over",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "updated web: priority, virtual_addresses, garp.refresh (revision 2)\n"
    );
    let sent = fake.data().updates[0].clone();
    let mut mask = sent.update_mask.unwrap().paths;
    mask.sort();
    assert_eq!(mask, ["garp.refresh", "priority", "virtual_addresses"]);
    assert_eq!(sent.comment, "node a takes over");
    assert_eq!(sent.expected_revision, 0);

    // The same values again change nothing and keep the revision.
    let run = fake
        .run(&["update-instance", "web", "--priority", "150"])
        .await;
    run.expect_code(0);
    assert_eq!(run.stdout, "unchanged web (revision 2)\n");

    // JSON is the UpdateInstanceResponse.
    let run = fake
        .run(&["update-instance", "web", "--priority", "160", "-o", "json"])
        .await;
    run.expect_code(0);
    let response: UpdateInstanceResponse = serde_json::from_str(&run.stdout).unwrap();
    assert!(response.changed);
    assert_eq!(response.changed_fields, ["priority"]);
}

#[tokio::test]
async fn clear_peers_goes_back_to_multicast() {
    let fake = Fake::start().await;
    fake.run(TENCENT).await.expect_code(0);
    let run = fake
        .run(&[
            "update-instance",
            "web",
            "--clear-peers",
            "--clear-unicast-src",
            "--preempt",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "updated web: preempt, unicast_source, unicast_peers (revision 2)\n"
    );
    let stored = fake.data().instances["web"].spec.clone().unwrap();
    assert!(stored.unicast_peers.is_empty());
    assert_eq!(stored.unicast_source, "");
    let run = fake.run(&["get-instance", "web"]).await;
    assert!(
        run.stdout.contains("Peers:             multicast\n"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_stale_revision_is_refused() {
    let fake = Fake::start().await;
    let mut web = instance("web", 51, "10.0.0.100/24", &[]);
    web.revision = 3;
    fake.data().instances.insert("web".into(), web);

    let run = fake
        .run(&[
            "update-instance",
            "web",
            "--priority",
            "150",
            "--revision",
            "2",
        ])
        .await;
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: web is at revision 3, not 2: someone changed it; read it again\n"
    );
    assert_eq!(
        fake.data().instances["web"].spec.as_ref().unwrap().priority,
        Some(100)
    );

    let run = fake
        .run(&["delete-instance", "web", "--revision", "2"])
        .await;
    run.expect_code(1);
    assert!(fake.data().instances.contains_key("web"));

    let run = fake
        .run(&[
            "delete-instance",
            "web",
            "--revision",
            "3",
            "--comment",
            "moved to k8s",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.stdout, "deleted web\n");
    assert_eq!(fake.data().deletes.last().unwrap().comment, "moved to k8s");
    assert!(fake.data().instances.is_empty());
}

#[tokio::test]
async fn unknown_instances_are_reported() {
    let fake = Fake::start().await;
    for args in [
        &["get-instance", "nope"][..],
        &["delete-instance", "nope"],
        &["update-instance", "nope", "--priority", "1"],
    ] {
        let run = fake.run(args).await;
        run.expect_code(1);
        assert_eq!(run.stderr, "error: no instance named nope\n", "{args:?}");
        assert_eq!(run.stdout, "");
    }
}
