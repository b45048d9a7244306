//! havipd: the havip daemon. The engine ([`havip_vrrp`]) decides, the runtime carries out,
//! the API translates, the store records.

pub mod api;
pub mod args;
pub mod convert;
pub mod daemon;
pub mod error;
pub mod events;
pub mod logging;
pub mod manager;
pub mod net;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod trackers;

use clap::Parser;
use std::process::ExitCode;

/// Run the daemon with the process's arguments; what `havipd` does.
pub fn main() -> ExitCode {
    // Started again as the helper that runs a tracker script as another user?
    if let Some(code) = trackers::run_as_main() {
        return code;
    }
    let args = args::Args::parse();
    if let Err(e) = daemon::init_logging(&args) {
        eprintln!("havipd: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("havipd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "havipd failed");
            eprintln!("havipd: {e}");
            ExitCode::FAILURE
        }
    }
}
