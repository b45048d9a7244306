//! The end-to-end test lab: network namespaces joined by a bridge, havipd daemons and
//! keepalived running inside them, gRPC clients to drive them.
//!
//! Safety: nothing here touches the machine's own network namespace. Every interface is
//! created directly inside a namespace this lab made (`ip link add … netns …`), every
//! namespace has a unique name, and all of them are deleted when the [`Lab`] is dropped,
//! also when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod checks;
pub mod daemon;
pub mod faults;
pub mod inject;
pub mod keepalived;
pub mod lab;
pub mod netns;
pub mod otlp;
pub mod pki;
pub mod threads;
pub mod vrrp;

pub use daemon::Daemon;
pub use lab::{Host, Lab};

/// Whether namespace tests can run here. They need root. Without it they fail with a
/// clear message, unless HAVIP_SKIP_NETNS=1 says to skip them (for non-root developers).
pub fn netns_available() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if root {
        return true;
    }
    if std::env::var("HAVIP_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("skipped: needs root for network namespaces (HAVIP_SKIP_NETNS=1)");
        return false;
    }
    panic!(
        "this test needs root to create network namespaces; run the tests as root \
         (CI does), or set HAVIP_SKIP_NETNS=1 to skip them"
    );
}
