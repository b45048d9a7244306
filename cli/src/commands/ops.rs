//! health, completions and man: for readiness probes and for packaging.

use std::io::Write;

use clap::CommandFactory;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::Ctx;
use crate::args::{Cli, CompletionsArgs, HealthArgs, ManArgs};
use crate::error::CliError;

pub async fn health(ctx: &Ctx, args: &HealthArgs) -> Result<(), CliError> {
    let mut client = HealthClient::new(ctx.connect().await?);
    let request = HealthCheckRequest {
        service: args.service.clone(),
    };
    let response = ctx.call(request, |r| client.check(r)).await?;
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    let name = status.as_str_name();
    if ctx.out.is_table() {
        ctx.out.line(name)?;
    } else {
        ctx.out.message(&serde_json::json!({ "status": name }))?;
    }
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "havipd at {} is not serving ({name})",
            ctx.server.url
        )))
    }
}

pub fn completions(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "havipctl", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

pub fn man(args: &ManArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.out_dir).map_err(|source| CliError::ReadFile {
        path: args.out_dir.display().to_string(),
        source,
    })?;
    clap_mangen::generate_to(Cli::command(), &args.out_dir).map_err(|e| {
        CliError::Failed(format!(
            "cannot write the man pages into {}: {e}",
            args.out_dir.display()
        ))
    })?;
    eprintln!("man pages written to {}", args.out_dir.display());
    Ok(())
}
