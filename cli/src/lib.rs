//! havipctl, the command-line client of havipd: parses the command line, runs one
//! command against havipd's gRPC API, and turns the outcome into output and an exit code.

mod args;
mod commands;
mod connect;
mod error;
pub mod keepalived;
mod output;
mod words;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command};
use crate::error::CliError;

/// Runs havipctl with the process's arguments: 0 on success, 1 when havipd refuses or
/// anything fails, 2 for bad usage.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    if let Command::UpdateInstance(update) = &cli.command
        && !update.has_changes()
    {
        let message = format!(
            "nothing to change: name at least one field, e.g. 'havipctl update-instance {} --priority 150'",
            update.name
        );
        // Built so that the usage line in the message is update-instance's own.
        let mut command = Cli::command();
        command.build();
        let e = match command.find_subcommand_mut("update-instance") {
            Some(update_command) => {
                update_command.error(ErrorKind::MissingRequiredArgument, message)
            }
            None => command.error(ErrorKind::MissingRequiredArgument, message),
        };
        return clap_exit(&e);
    }
    if let Command::RunHook(args) = &cli.command {
        return commands::inflight::supervise(args);
    }
    // One thread is plenty for one command at a time, and keeps the client light.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return CliError::Failed(format!("cannot start the async runtime: {e}")).report(),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// Prints clap's message (help and version included) and exits as clap would: 0 for
/// help and version, 2 for usage errors.
fn clap_exit(e: &clap::Error) -> ExitCode {
    // Nothing more can be done if even this write fails.
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}
