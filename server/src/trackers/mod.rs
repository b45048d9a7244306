//! Trackers: what else decides whether an instance should be master (keepalived's
//! track_interface, track_script, track_file, plus health reports pushed through the API).

pub mod security;
