//! The flags of the day-to-day commands: demote/promote/clear-override, disable/enable,
//! report-health, the sync-group subcommands and import-keepalived.

use clap::{Args, Subcommand};
use pbjson_types::Duration;

use super::parse_duration;

pub const DEMOTE_EXAMPLES: &str = "\
Demote lowers the instance's priority (to 1 unless --priority says otherwise), so that a \
backup with a higher priority takes over (if it preempts). The override is recorded in \
the config history and lasts until --for runs out or 'havipctl clear-override'.

Examples:
  # Hand the VIP to the other node for an hour of maintenance
  havipctl demote web --for 1h --reason 'kernel update'

  # A softer demotion that still beats a third, lower node
  havipctl demote web --priority 90 --reason 'drain slowly'

  # Done early: back to the configured priority
  havipctl clear-override web --reason 'maintenance finished'";

pub const PROMOTE_EXAMPLES: &str = "\
Promote raises the instance's priority (to 254 unless --priority says otherwise), so that \
it takes over from the current master (which needs preemption on this node).

Examples:
  havipctl promote web --reason 'fail back to node a'
  havipctl promote web --priority 200 --for 30m";

pub const CLEAR_OVERRIDE_EXAMPLES: &str = "\
Examples:
  havipctl clear-override web
  havipctl clear-override web --reason 'maintenance finished'";

pub const DISABLE_EXAMPLES: &str = "\
A disabled instance takes no part in VRRP and holds no addresses (its state is DISABLED), \
so a backup takes over at once. It stays disabled across havipd restarts until enabled.

Examples:
  havipctl disable web --comment 'decommissioning node a'
  havipctl enable web";

pub const ENABLE_EXAMPLES: &str = "\
Examples:
  havipctl enable web
  havipctl enable web --comment 'node a is back'";

pub const REPORT_HEALTH_EXAMPLES: &str = "\
Feeds the trackers that follow CHECK (created with --track-report NAME:CHECK). A report \
holds for --ttl; without a fresh one by then the check counts as failing, so a reporter \
that dies cannot leave the instance healthy. Report more often than the ttl.

Examples:
  # From a cron job or a systemd timer every 10 s
  havipctl report-health mysql-replication --healthy --ttl 30s --detail 'lag 0.2s'

  # The application noticed a problem
  havipctl report-health mysql-replication --failing --detail 'replication stopped'";

pub const SYNC_GROUP_EXAMPLES: &str = "\
A sync group keeps instances in the same state (keepalived's vrrp_sync_group): when one \
member goes to FAULT the others go to BACKUP, when one becomes MASTER the others follow. \
An instance belongs to at most one group.

Examples:
  havipctl sync-group create db --instance mysql-vip --instance backup-vip
  havipctl sync-group update db --instance mysql-vip,backup-vip,admin-vip --revision 3
  havipctl sync-group get db
  havipctl sync-group list -o json
  havipctl sync-group delete db --comment 'split the VIPs'";

pub const IMPORT_EXAMPLES: &str = "\
Reads a keepalived.conf (with its includes) and prints the havip instances and sync groups \
it describes, in the file format of 'havipctl apply -f', on stdout. Everything it does not \
carry over is listed on stderr with file:line and why, including the notify scripts, with \
the 'havipctl watch --exec' command that replaces them.

Examples:
  # Look first: the YAML on stdout, the report on stderr
  havipctl import-keepalived /etc/keepalived/keepalived.conf > havip.yaml
  havipctl apply -f havip.yaml --dry-run
  havipctl apply -f havip.yaml

  # Or in one go (instances first, then sync groups), or only check it with havipd
  havipctl import-keepalived /etc/keepalived/keepalived.conf --apply
  havipctl import-keepalived /etc/keepalived/keepalived.conf --dry-run

  # A file with conditional lines (@main …), as 'keepalived -i main' would read it
  havipctl import-keepalived keepalived.conf --config-id main

Exit status: 0 when the file was read (whatever was not carried over), 1 when it cannot be \
read or parsed (the error names file:line), or when --apply fails.";

#[derive(Debug, Args)]
pub struct OverrideArgs {
    /// The instance
    pub name: String,

    /// The priority to use, 1-254 (demote: 1, promote: 254)
    #[arg(long, value_name = "N")]
    pub priority: Option<u32>,

    /// How long the override lasts, e.g. 30m, 2h (default: until clear-override)
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Why: recorded in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ClearOverrideArgs {
    /// The instance
    pub name: String,

    /// Why: recorded in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ToggleArgs {
    /// The instance
    pub name: String,

    /// Why: recorded with the change in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportHealthArgs {
    /// The check name that --track-report trackers follow
    pub check: String,

    /// The check passes
    #[arg(long, required_unless_present = "failing", conflicts_with = "failing")]
    pub healthy: bool,

    /// The check fails
    #[arg(long)]
    pub failing: bool,

    /// How long this report holds; without a new one by then the check fails
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub ttl: Duration,

    /// Words for the history and the events, e.g. 'replication lag 3s'
    #[arg(long, value_name = "TEXT")]
    pub detail: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SyncGroupCommand {
    /// Create a sync group of existing instances
    #[command(after_help = SYNC_GROUP_EXAMPLES)]
    Create(SyncGroupWriteArgs),
    /// Replace a sync group's members
    #[command(after_help = SYNC_GROUP_EXAMPLES)]
    Update(SyncGroupUpdateArgs),
    /// Remove a sync group (its instances keep running on their own)
    #[command(after_help = SYNC_GROUP_EXAMPLES)]
    Delete(SyncGroupDeleteArgs),
    /// Show a sync group
    #[command(after_help = SYNC_GROUP_EXAMPLES)]
    Get(SyncGroupGetArgs),
    /// List sync groups
    #[command(after_help = SYNC_GROUP_EXAMPLES)]
    List,
}

#[derive(Debug, Args)]
pub struct SyncGroupWriteArgs {
    /// The group's name (same syntax as instance names)
    pub name: String,

    /// A member instance; repeat, or separate with commas
    #[arg(
        long = "instance",
        value_name = "NAME",
        value_delimiter = ',',
        required = true
    )]
    pub instances: Vec<String>,

    /// Why: recorded in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncGroupUpdateArgs {
    #[command(flatten)]
    pub group: SyncGroupWriteArgs,

    /// Refuse unless the group is still at this revision (see sync-group get)
    #[arg(long, value_name = "R")]
    pub revision: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SyncGroupDeleteArgs {
    pub name: String,

    /// Why: recorded in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncGroupGetArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The keepalived configuration, e.g. /etc/keepalived/keepalived.conf
    #[arg(value_name = "FILE")]
    pub file: String,

    /// Create or update the instances and sync groups in havipd, as 'apply -f' does
    #[arg(long)]
    pub apply: bool,

    /// Check everything with havipd and say what --apply would do; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Evaluate conditional lines (@ID …, @^ID …) for this config id, as 'keepalived -i ID'
    /// (default: the host name up to the first dot, as keepalived)
    #[arg(long, value_name = "ID")]
    pub config_id: Option<String>,

    /// Why: recorded with every change in havipd's config history (--apply)
    #[arg(long, value_name = "WHY")]
    pub comment: Option<String>,
}
