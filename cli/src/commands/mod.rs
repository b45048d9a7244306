//! One module per group of subcommands; this one hands each command what it needs.

pub mod apply;
pub mod cursor;
pub mod history;
pub mod hook;
pub mod import;
pub mod inflight;
pub mod instances;
pub mod maintenance;
pub mod ops;
pub mod sync_groups;
pub mod trackers;
pub mod watch;

use std::future::Future;
use std::time::Duration;

use tonic::transport::Channel;

use crate::args::{Cli, Command};
use crate::connect::{self, ClientTls, Server};
use crate::error::CliError;
use crate::output::Out;
use crate::output::format::Clock;

/// What every command uses: where havipd is, how long to wait, where output goes.
#[derive(Debug)]
pub struct Ctx {
    pub server: Server,
    pub timeout: Duration,
    pub out: Out,
    pub clock: Clock,
}

impl Ctx {
    pub async fn connect(&self) -> Result<Channel, CliError> {
        connect::connect(&self.server, self.timeout).await
    }

    /// One unary call under `--timeout`.
    pub async fn call<Req, Resp, F, Fut>(&self, message: Req, rpc: F) -> Result<Resp, CliError>
    where
        F: FnOnce(tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        connect::call(&self.server, self.timeout, message, rpc).await
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    // These need no havipd.
    match &cli.command {
        Command::Completions(args) => return ops::completions(args),
        Command::Man(args) => return ops::man(args),
        _ => {}
    }
    let ctx = Ctx {
        server: cli.server.with_tls(ClientTls {
            ca: cli.tls_ca,
            cert: cli.tls_cert,
            key: cli.tls_key,
        })?,
        timeout: cli.timeout,
        out: Out::new(cli.output),
        clock: Clock::system(),
    };
    match cli.command {
        Command::CreateInstance(args) => instances::create(&ctx, &args).await,
        Command::UpdateInstance(args) => instances::update(&ctx, &args).await,
        Command::DeleteInstance(args) => instances::delete(&ctx, &args).await,
        Command::GetInstance(args) => instances::get(&ctx, &args).await,
        Command::ListInstances(args) => instances::list(&ctx, &args).await,
        Command::Watch(args) => watch::run(&ctx, &args).await,
        Command::History(args) => history::run(&ctx, &args).await,
        Command::Apply(args) => apply::run(&ctx, &args).await,
        Command::Demote(args) => {
            maintenance::override_priority(&ctx, &args, maintenance::Direction::Demote).await
        }
        Command::Promote(args) => {
            maintenance::override_priority(&ctx, &args, maintenance::Direction::Promote).await
        }
        Command::ClearOverride(args) => maintenance::clear_override(&ctx, &args).await,
        Command::Disable(args) => maintenance::toggle(&ctx, &args, true).await,
        Command::Enable(args) => maintenance::toggle(&ctx, &args, false).await,
        Command::ReportHealth(args) => maintenance::report_health(&ctx, &args).await,
        Command::SyncGroup(command) => sync_groups::run(&ctx, &command).await,
        Command::ImportKeepalived(args) => import::run(&ctx, &args).await,
        // Run by main() before any runtime exists.
        Command::RunHook(_) => Ok(()),
        Command::Health(args) => ops::health(&ctx, &args).await,
        Command::Completions(_) | Command::Man(_) => Ok(()),
    }
}
