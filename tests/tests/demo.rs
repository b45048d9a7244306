//! The README's main command, `deploy/demo.sh`, keeps working: it fails a master over,
//! reports the outage, and leaves no namespace behind.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::daemon::test_bin;
use havip_e2e::netns_available;
use std::process::Command;

#[test]
fn the_demo_fails_over_and_cleans_up() {
    if !netns_available() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = Command::new("bash")
        .arg(root.join("deploy/demo.sh"))
        .env("HAVIPD", test_bin("e2e-havipd"))
        .env("HAVIPCTL", test_bin("e2e-havipctl"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the demo failed:\n{text}");
    assert!(text.contains("the VIP moved to b"), "{text}");
    assert!(
        text.contains("[b watch]") && text.contains("BACKUP → MASTER"),
        "{text}"
    );
    let moved: u64 = text
        .split("the VIP moved to b ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    // A sanity bound only (the failover tests hold the protocol's timing): the
    // Master_Down_Interval is 3609 ms for priority 100 at 1 s.
    assert!(moved <= 3609 + 1000, "{moved} ms\n{text}");
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&namespaces.stdout);
    assert!(
        !left.contains("hvdemo"),
        "the demo left namespaces behind: {left}"
    );
}
