//! import-keepalived: placeholder until the parser lands.

use super::Ctx;
use crate::args::ImportArgs;
use crate::error::CliError;

pub async fn run(_ctx: &Ctx, _args: &ImportArgs) -> Result<(), CliError> {
    Err(CliError::Failed("not yet".into()))
}
