//! Trackers: what else decides whether an instance should be master (keepalived's
//! track_interface, track_script, track_file, plus health reports pushed through the API).
//!
//! Split by who owns what:
//! - the probes run on the daemon's main runtime, never on the data-plane thread: the
//!   [`TrackerService`] task (`service.rs`) owns every tracker's health (rise/fall, report
//!   expiry, interface state from link events) and runs one task per script or file
//!   tracker (`script.rs`, `file.rs`) that only measures;
//! - the data plane keeps a [`book::TrackerBook`] per instance: the latest result of each
//!   tracker, what it contributes to the priority, which trackers hold the instance in
//!   FAULT, and the names and details transitions and events show.
//!
//! Nothing here ever waits on an instance: results reach the data plane through its
//! command channel, which never blocks.

pub mod book;
mod file;
mod interface;
mod report;
mod risefall;
mod runas;
mod script;
pub mod security;
mod service;

pub use book::{Health, TrackerResult};
pub use runas::run_as_main;
pub use service::{MAX_REPORT_TTL, TrackerService};
