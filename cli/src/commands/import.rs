//! import-keepalived: a keepalived.conf to the apply file format on stdout and the report
//! on stderr; with --apply or --dry-run, through apply's own code path instead.

use std::path::Path;

use super::Ctx;
use super::apply::{self, Document, Entry, GroupEntry, Options};
use crate::args::ImportArgs;
use crate::error::CliError;
use crate::keepalived::{self, Import};

pub async fn run(ctx: &Ctx, args: &ImportArgs) -> Result<(), CliError> {
    let options = keepalived::Options {
        config_id: args.config_id.clone().or_else(host_config_id),
    };
    let import = keepalived::parse_file(Path::new(&args.file), &options)
        .map_err(|e| CliError::Failed(format!("cannot import: {e}")))?;
    report(&import);
    if args.apply || args.dry_run {
        let apply_options = Options {
            prune: false,
            dry_run: args.dry_run,
            comment: Some(
                args.comment
                    .clone()
                    .unwrap_or_else(|| format!("havipctl import-keepalived {}", args.file)),
            ),
        };
        return apply::apply(ctx, &args.file, &document(&import), &apply_options).await;
    }
    let text = if ctx.out.format == crate::args::OutputFormat::Json {
        keepalived::to_json(&import)?
    } else {
        let source = Path::new(&args.file)
            .file_name()
            .map_or_else(|| args.file.clone(), |n| n.to_string_lossy().into_owned());
        keepalived::to_yaml(&import, &source)?
    };
    ctx.out.text(&text)
}

/// The report on stderr, one finding a line, then a summary.
fn report(import: &Import) {
    for finding in &import.findings {
        eprintln!("{finding}");
    }
    let dropped = import
        .findings
        .iter()
        .filter(|f| f.kind == keepalived::FindingKind::NotCarried)
        .count();
    eprintln!(
        "imported {} instance{} and {} sync group{}; {dropped} keyword{} not carried over (above)",
        import.instances.len(),
        plural(import.instances.len()),
        import.sync_groups.len(),
        plural(import.sync_groups.len()),
        plural(dropped),
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The import as apply's document: entries numbered as they are printed.
pub fn document(import: &Import) -> Document {
    let mut number = 0;
    let mut next = || {
        number += 1;
        number
    };
    Document {
        instances: import
            .instances
            .iter()
            .map(|i| Entry {
                number: next(),
                name: i.name.clone(),
                spec: i.spec.clone(),
            })
            .collect(),
        sync_groups: import
            .sync_groups
            .iter()
            .map(|g| GroupEntry {
                number: next(),
                name: g.name.clone(),
                instances: g.instances.clone(),
            })
            .collect(),
    }
}

/// keepalived's default config id: the host name up to the first dot.
fn host_config_id() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let id = name.split('.').next().unwrap_or(name);
    (!id.is_empty()).then(|| id.to_owned())
}
