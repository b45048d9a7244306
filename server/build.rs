//! Rebuilds havipd when a migration changes: `sqlx::migrate!` embeds the top-level
//! migrations folder at compile time, and Cargo does not watch files outside the crate.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
