//! havipd: the havip daemon. The engine ([`havip_vrrp`]) decides, the runtime carries out,
//! the API translates, the store records.

pub mod api;
pub mod args;
pub mod convert;
pub mod daemon;
pub mod error;
pub mod events;
pub mod fsguard;
pub mod logging;
pub mod manager;
pub mod net;
pub mod notify;
pub mod observability;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod trackers;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// Run the daemon with the process's arguments; what `havipd` does.
pub fn main() -> ExitCode {
    // Started again as the helper that runs a tracker script as another user?
    if let Some(code) = trackers::run_as_main() {
        return code;
    }
    let args = args::Args::parse();
    if args.man_page {
        return print_man_page();
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
    // The OTLP exporter opens its channel on the runtime, so set up inside it.
    let telemetry = {
        let _inside = runtime.enter();
        match observability::init(&args) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("havipd: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let result = runtime.block_on(daemon::run(args));
    if let Err(e) = &result {
        tracing::error!(error = %e, "havipd failed");
        eprintln!("havipd: {e}");
    }
    // The runtime's workers still run: the exporters send their last batch through it.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// `havipd --man-page`: havipd(8) in roff, from the command-line definition.
fn print_man_page() -> ExitCode {
    let man = clap_mangen::Man::new(args::Args::command()).section("8");
    let mut out = Vec::new();
    if let Err(e) = man.render(&mut out) {
        eprintln!("havipd: cannot render the man page: {e}");
        return ExitCode::FAILURE;
    }
    use std::io::Write;
    match std::io::stdout().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("havipd: cannot write the man page: {e}");
            ExitCode::FAILURE
        }
    }
}
