//! apply: create, then nothing to do, then an update, then prune; dry runs; bad files.

use std::path::Path;

use crate::fake::{Fake, instance};

const TWO: &str = "\
- name: web
  spec:
    interface: eth0
    vrid: 51
    version: 2
    priority: 50
    virtual_addresses: [10.0.0.100/24]
    unicast_source: 10.0.0.11
    unicast_peers: [10.0.0.12]
    preempt: false
    auth: {type: AUTH_TYPE_PASS, password: '1111'}
- name: db
  spec:
    interface: eth1
    vrid: 52
    virtualAddresses: [192.168.10.5/24]
    advertInterval: 0.100s
    labels: {service: mysql}
";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn create_then_unchanged_then_update_then_prune() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "instances.yaml", TWO);

    let run = fake.run(&["apply", "-f", &file]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "created web\ncreated db\n");
    assert_eq!(fake.data().instances.len(), 2);

    // The same file again: the daemon is asked, and nothing changes.
    let run = fake.run(&["apply", "-f", &file]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "unchanged web\nunchanged db\n");
    {
        let data = fake.data();
        assert_eq!(data.instances["web"].revision, 1);
        let update = data.updates.last().unwrap();
        assert!(update.update_mask.is_none(), "a full-spec replace");
        assert_eq!(
            update.expected_revision, 1,
            "guarded by the revision just read"
        );
    }

    // An instance that is not in the file survives without --prune.
    fake.data()
        .instances
        .insert("old".into(), instance("old", 9, "10.9.9.9/24", &[]));
    let changed = TWO
        .replace("priority: 50", "priority: 60")
        .replace("[10.0.0.100/24]", "[10.0.0.100/24, 10.0.0.101/24]");
    let file = write(dir.path(), "instances.yaml", &changed);
    let run = fake.run(&["apply", "-f", &file]).await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "updated web (priority, virtual_addresses)\nunchanged db\n"
    );
    assert!(fake.data().instances.contains_key("old"));

    // Only db left in the file: web and old go.
    let only_db = &changed[changed.find("- name: db").unwrap()..];
    let file = write(dir.path(), "instances.yaml", only_db);
    let run = fake
        .run(&["apply", "-f", &file, "--prune", "--comment", "release 42"])
        .await;
    run.expect_code(0);
    assert_eq!(run.stdout, "unchanged db\ndeleted old\ndeleted web\n");
    let data = fake.data();
    let names: Vec<&String> = data.instances.keys().collect();
    assert_eq!(names, ["db"]);
    assert!(data.deletes.iter().all(|d| d.comment == "release 42"));
}

#[tokio::test]
async fn dry_run_says_what_would_happen_and_changes_nothing() {
    let fake = Fake::start().await;
    fake.data()
        .instances
        .insert("old".into(), instance("old", 9, "10.9.9.9/24", &[]));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "instances.yaml", TWO);
    let run = fake
        .run(&["apply", "-f", &file, "--prune", "--dry-run"])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "would create web\nwould create db\nwould delete old\n"
    );
    assert_eq!(run.stderr, "dry run: nothing was changed\n");
    let data = fake.data();
    assert!(data.creates.iter().all(|c| c.validate_only));
    assert!(data.deletes.is_empty());
    let names: Vec<&String> = data.instances.keys().collect();
    assert_eq!(names, ["old"]);
}

#[tokio::test]
async fn a_refused_entry_is_named_and_nothing_is_pruned() {
    let fake = Fake::start().await;
    fake.data()
        .instances
        .insert("old".into(), instance("old", 9, "10.9.9.9/24", &[]));
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "instances.yaml",
        &TWO.replace("vrid: 52", "vrid: 0"),
    );
    let run = fake.run(&["apply", "-f", &file, "--prune"]).await;
    run.expect_code(1);
    assert_eq!(run.stdout, "created web\n");
    assert_eq!(
        run.stderr,
        format!(
            "error: {file}: entry 2 (db): the instance spec is invalid\n  \
             field vrid: must be 1-255, not 0\n\
             error: 1 of 2 entries failed; nothing was pruned\n"
        )
    );
    assert!(fake.data().instances.contains_key("old"));
}

#[tokio::test]
async fn a_malformed_file_changes_nothing() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "instances.yaml",
        &TWO.replace("vrid: 52", "vrid: fifty-two"),
    );
    let run = fake.run(&["apply", "-f", &file]).await;
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with(&format!("error: {file}: entry 2 (db): spec.vrid: ")),
        "{}",
        run.stderr
    );
    assert_eq!(
        fake.data().calls,
        0,
        "the whole file is checked before anything is sent"
    );

    let run = fake
        .run(&["apply", "-f", "/nonexistent/instances.yaml"])
        .await;
    run.expect_code(1);
    assert!(
        run.stderr
            .starts_with("error: cannot read /nonexistent/instances.yaml: "),
        "{}",
        run.stderr
    );

    let empty = write(dir.path(), "empty.yaml", "# nothing here yet\n");
    let run = fake.run(&["apply", "-f", &empty, "--prune"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("refusing to --prune"), "{}", run.stderr);
    assert_eq!(fake.data().calls, 0);
}

#[tokio::test]
async fn json_from_stdin_with_json_output() {
    let fake = Fake::start().await;
    let json = r#"[{"name": "web", "spec": {"interface": "eth0", "vrid": 51, "virtualAddresses": ["10.0.0.100/24"]}}]"#;
    let run = fake
        .run_with_stdin(&["apply", "-f", "-", "-o", "json"], json)
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "{\"kind\":\"instance\",\"name\":\"web\",\"action\":\"created\",\"dryRun\":false}\n"
    );
    assert_eq!(fake.data().instances["web"].spec.as_ref().unwrap().vrid, 51);
}
