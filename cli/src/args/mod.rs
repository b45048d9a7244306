//! The command line: subcommands, flags and the value parsers that turn malformed input
//! into usage errors (exit code 2) before anything is sent to havipd.
//!
//! Range rules (vrid 1-255, priority 1-255, …) are deliberately left to havipd, which owns
//! them and explains a refusal field by field; parsing here only checks that a value has
//! the right shape.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pbjson_types::{Duration, Timestamp};

use crate::connect::{Server, parse_server};

mod operations;
mod trackers;

pub use operations::{
    ClearOverrideArgs, ImportArgs, OverrideArgs, ReportHealthArgs, SyncGroupCommand, ToggleArgs,
};
pub use trackers::TrackerFlags;

/// Where havipd listens when neither --server nor HAVIP_SERVER says otherwise.
pub const DEFAULT_SERVER: &str = "unix:///run/havip/havipd.sock";

const ABOUT: &str = "Control havipd, the havip VRRP failover daemon";

const LONG_ABOUT: &str = "\
Control havipd, the havip VRRP failover daemon.

havipctl creates, changes, inspects and removes VRRP instances (a virtual IP address that \
moves to a standby router when the active one fails), follows their state changes live, \
and reads the history havipd keeps, all through havipd's gRPC API.";

const TOP_AFTER_HELP: &str = "\
Output:
  -o table  aligned text for people (the default)
  -o json   the API's proto3 JSON; commands that stream or page (watch, history, apply)
            print one object per line
  -o yaml   the same data as YAML; streams print one document per entry, separated by ---

Moving from keepalived: 'havipctl import-keepalived /etc/keepalived/keepalived.conf'.

Exit status: 0 success, 1 refused by havipd or failed, 2 bad usage.

Run 'havipctl <command> --help' for a command's options and examples.";

const CREATE_EXAMPLES: &str = concat!(
    crate::tracker_help!(),
    "

Examples:
  # Two-node unicast setup, as cloud HAVIPs (e.g. Tencent Cloud) need: run on each node
  # with its own --priority, --unicast-src and --peer.
  havipctl create-instance web --interface eth0 --vrid 51 --priority 50 \\
      --vip 10.0.0.100/24 --version 2 --unicast-src 10.0.0.11 --peer 10.0.0.12 \\
      --auth-pass 1111 --no-preempt

  # Multicast VRRPv3 with two addresses and a fast advert interval
  havipctl create-instance db --interface eth1 --vrid 10 --priority 150 \\
      --vip 192.168.10.5/24,192.168.10.6/24 --advert-interval 100ms --label service=mysql

  # Follow the uplink (FAULT while it is down) and a check script (-20 while it fails)
  havipctl create-instance web --interface eth0 --vrid 51 --vip 10.0.0.100/24 \\
      --track-interface eth0 --track-script haproxy:/etc/havip/check_haproxy.sh:-20

  # Check a spec without creating anything
  havipctl create-instance web --interface eth0 --vrid 51 --vip 10.0.0.100/24 --dry-run"
);

const UPDATE_EXAMPLES: &str = concat!(
    "Only the fields named by flags change; --vip, --peer, --label and the tracker flags replace \
the whole list.

",
    crate::tracker_help!(),
    "

Examples:
  # Make this node the preferred master
  havipctl update-instance web --priority 150 --comment 'move traffic to node a'

  # Go back from unicast peers to multicast
  havipctl update-instance web --clear-peers --clear-unicast-src

  # Change the addresses, but only if nobody changed the instance since revision 7
  havipctl update-instance web --vip 10.0.0.100/24,10.0.0.101/24 --revision 7

  # Take the instance out of service, and later back in (or: havipctl disable/enable)
  havipctl update-instance web --disabled
  havipctl update-instance web --enable

  # Replace the trackers: the uplink, and a check script that costs 20 when it fails
  havipctl update-instance web --track-interface eth0 \\
      --track-script 'name=haproxy,path=/etc/havip/check_haproxy.sh,interval=2s,fall=2,weight=-20'
  havipctl update-instance web --clear-trackers"
);

const DELETE_EXAMPLES: &str = "\
Examples:
  havipctl delete-instance web
  havipctl delete-instance web --revision 7 --comment 'service moved to k8s'";

const GET_EXAMPLES: &str = "\
Examples:
  havipctl get-instance web
  havipctl get-instance web -o json | jq -r .status.state
  havipctl get-instance web -o yaml";

const LIST_EXAMPLES: &str = "\
Examples:
  havipctl list-instances
  havipctl list-instances --label service=mysql --label env=prod
  havipctl list-instances -o json";

const WATCH_EXAMPLES: &str = "\
Examples:
  # Follow every state change from now on
  havipctl watch --kind state-changed

  # Replay everything after event 1200 for two instances, then keep following
  havipctl watch --since 1200 --instance web,db

  # Feed another program, one JSON object per line
  havipctl watch -o json | jq -c 'select(.kind == \"EVENT_KIND_STATE_CHANGED\")'

  # Run a notify hook for every state change, as keepalived's notify scripts, resuming
  # after the last completed run when restarted
  havipctl watch --exec /etc/havip/notify.sh --cursor-file /var/lib/havip-notify/cursor

  # keepalived's notify_master/notify_backup in one shell command ($1-$4 as below)
  havipctl watch --shell --exec 'case \"$3\" in MASTER) /etc/havip/up.sh ;; BACKUP) /etc/havip/down.sh ;; esac'

watch reconnects by itself when the connection drops or havipd is unavailable, resuming \
after the last event it printed, so no event is lost or printed twice. It ends on Ctrl-C, \
or when havipd closes the stream.

--exec CMD runs CMD once per state change, in order and one at a time, with keepalived's \
notify arguments appended: INSTANCE NAME STATE PRIORITY (e.g. INSTANCE web MASTER 150), \
STATE being MASTER, BACKUP, FAULT, or STOP for an instance that stopped (a transition to \
INIT on shutdown, or to DISABLED). The event is on its standard input as one line of \
proto3 JSON, and HAVIP_INSTANCE, HAVIP_STATE, HAVIP_FROM_STATE, HAVIP_PRIORITY, HAVIP_SEQ \
and HAVIP_REASON are set. CMD is split into words like a shell word list (quotes and \
backslashes work) and run without a shell; with --shell it is run by /bin/sh -c, the \
arguments being $1-$4. A run that exits non-zero is logged on stderr and the next event \
goes on: a failing hook must not hold back every later notification. With --exec, watch \
also waits for havipd when it cannot reach it at start, as a service should.

--cursor-file F records the seq of each event once it is handled (the hook has exited), \
atomically, so that a restarted watch resumes after it: nothing lost, nothing run twice \
except a hook that was interrupted while running. Without the file, watch starts with \
new events (or --since); when the file exists it wins over --since. Its folder must not \
be writable by other users (unless it is sticky and ours, like /tmp for root).";

const HISTORY_EXAMPLES: &str = "\
Examples:
  havipctl history --instance web --since 2h
  havipctl history --since 2026-11-26T10:00:00Z --until 2026-11-26T12:00:00Z --limit 500
  havipctl history --config --instance web
  havipctl history -o json --since 3d | jq -r .reason.code

TIME is an RFC 3339 time (2026-11-26T10:00:00Z, 2026-11-26T11:00:00+01:00) or an age \
meaning that long ago (90s, 10m, 2h, 3d).";

pub(crate) const APPLY_EXAMPLES: &str = "\
FILE is a YAML or JSON list of instances and sync groups, in the API's field names \
(snake_case or lowerCamelCase; durations as \"1s\" or \"0.100s\"):

  - name: web
    spec:
      interface: eth0
      vrid: 51
      version: 2
      priority: 50
      virtual_addresses: [10.0.0.100/24]
      unicast_source: 10.0.0.11
      unicast_peers: [10.0.0.12]
      preempt: false
      auth: {type: AUTH_TYPE_PASS, password: \"1111\"}
      trackers:
        - {name: eth0, interface: {interface: eth0}}
        - name: haproxy
          weight: -20
          script: {path: /etc/havip/check_haproxy.sh, interval: 2s, fall: 2}
  - name: db
    sync_group:
      instances: [web, mysql-vip]

An entry with a spec is an instance; an entry with a sync_group is a sync group of the \
instances it lists (instances are applied first, then sync groups, whatever the order in \
the file). Each entry's spec replaces the instance's spec as a whole, and a group's list \
replaces its members; applying the same file again changes nothing. Entries are numbered \
from 1 in error messages. 'havipctl import-keepalived' writes this format.

Examples:
  havipctl apply -f instances.yaml
  havipctl apply -f instances.yaml --dry-run
  havipctl apply -f instances.yaml --prune --comment 'release 42'
  generate-config | havipctl apply -f -";

/// Where the flags that every command takes are listed in help, apart from the command's own.
const GLOBAL: &str = "Global options";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "havipctl",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = TOP_AFTER_HELP
)]
pub struct Cli {
    /// Where havipd listens: unix:///PATH, https://HOST:PORT, or http://127.0.0.1:PORT
    /// for a havipd on this host started with --insecure
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "HAVIP_SERVER",
        value_name = "URL",
        default_value = DEFAULT_SERVER,
        value_parser = parse_server
    )]
    pub server: Server,

    /// Output format
    #[arg(
        short,
        long,
        global = true,
        help_heading = GLOBAL,
        value_name = "FORMAT",
        value_enum,
        default_value_t = OutputFormat::Table
    )]
    pub output: OutputFormat,

    /// How long to wait for havipd to connect and answer, e.g. 10s, 500ms
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_timeout
    )]
    pub timeout: StdDuration,

    /// With https://: the CA certificate (PEM) that signed havipd's certificate; without
    /// it, the system's CA certificates are trusted
    #[arg(long, global = true, help_heading = GLOBAL, env = "HAVIP_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,

    /// With https://: a client certificate (PEM) for havipd's mutual TLS; its subject is
    /// recorded as the author of changes
    #[arg(long, global = true, help_heading = GLOBAL, env = "HAVIP_CLIENT_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert
    #[arg(long, global = true, help_heading = GLOBAL, env = "HAVIP_CLIENT_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a VRRP instance
    #[command(after_help = CREATE_EXAMPLES)]
    CreateInstance(CreateArgs),
    /// Change some fields of an instance
    #[command(after_help = UPDATE_EXAMPLES)]
    UpdateInstance(UpdateArgs),
    /// Remove an instance (it releases its virtual addresses)
    #[command(after_help = DELETE_EXAMPLES)]
    DeleteInstance(DeleteArgs),
    /// Show an instance's configuration and live status
    #[command(after_help = GET_EXAMPLES)]
    GetInstance(GetArgs),
    /// List instances
    #[command(after_help = LIST_EXAMPLES)]
    ListInstances(ListArgs),
    /// Follow events (state changes, config changes) as they happen
    #[command(after_help = WATCH_EXAMPLES)]
    Watch(WatchArgs),
    /// Show past state transitions, or config changes with --config
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Make havipd's instances and sync groups match a file: create, update and optionally prune
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// Lower an instance's priority for a while, so that a backup takes over
    #[command(after_help = operations::DEMOTE_EXAMPLES)]
    Demote(OverrideArgs),
    /// Raise an instance's priority for a while, so that it takes over
    #[command(after_help = operations::PROMOTE_EXAMPLES)]
    Promote(OverrideArgs),
    /// Lift a demote or promote before it runs out
    #[command(after_help = operations::CLEAR_OVERRIDE_EXAMPLES)]
    ClearOverride(ClearOverrideArgs),
    /// Take an instance out of service: it releases its addresses and takes no part in VRRP
    #[command(after_help = operations::DISABLE_EXAMPLES)]
    Disable(ToggleArgs),
    /// Put a disabled instance back in service
    #[command(after_help = operations::ENABLE_EXAMPLES)]
    Enable(ToggleArgs),
    /// Report the health of a check that --track-report trackers follow
    #[command(after_help = operations::REPORT_HEALTH_EXAMPLES)]
    ReportHealth(ReportHealthArgs),
    /// Create, change, show and remove sync groups (instances that change state together)
    #[command(subcommand, after_help = operations::SYNC_GROUP_EXAMPLES)]
    SyncGroup(SyncGroupCommand),
    /// Turn a keepalived.conf into havip instances (see the report on stderr)
    #[command(after_help = operations::IMPORT_EXAMPLES)]
    ImportKeepalived(ImportArgs),
    /// Internal: runs one notify hook for 'watch --exec --cursor-file' and records its end
    #[command(hide = true)]
    RunHook(RunHookArgs),
    /// Ask havipd whether it serves (grpc.health.v1); exit status 0 only if it does
    #[command(after_help = HEALTH_EXAMPLES)]
    Health(HealthArgs),
    /// Print a shell completion script
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Write man pages for havipctl and each of its commands
    #[command(after_help = MAN_EXAMPLES)]
    Man(ManArgs),
}

/// The supervisor of one hook run (see commands/inflight.rs).
#[derive(Debug, Args)]
pub struct RunHookArgs {
    #[arg(long)]
    pub marker: String,
    #[arg(long)]
    pub seq: u64,
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// The hook's command line, after --
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

const HEALTH_EXAMPLES: &str = "\
Examples:
  havipctl health
  havipctl health --service havip.v1.InstanceService
  havipctl --server https://10.0.0.11:50051 --tls-ca ca.pem health

A readiness probe (Kubernetes exec probe, a load balancer check) can run it as is.";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  havipctl completions bash > /etc/bash_completion.d/havipctl
  havipctl completions zsh > \"${fpath[1]}/_havipctl\"
  havipctl completions fish > ~/.config/fish/completions/havipctl.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  havipctl man --out-dir /usr/local/share/man/man1
  havipd --man-page > /usr/local/share/man/man8/havipd.8";

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// A service to ask about, e.g. havip.v1.InstanceService (default: the whole server)
    #[arg(long, value_name = "NAME", default_value = "")]
    pub service: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The folder to write havipctl.1 and havipctl-COMMAND.1 into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Instance name: letters, digits, '-', '_' and '.', at most 63 characters
    pub name: String,

    /// Interface to run on, e.g. eth0
    #[arg(long, value_name = "IF")]
    pub interface: String,

    /// Virtual router id, 1-255; the same on every router of the group
    #[arg(long, value_name = "N")]
    pub vrid: u32,

    /// Virtual address with prefix length; repeat, or separate with commas
    #[arg(
        long = "vip",
        value_name = "ADDR/LEN",
        required = true,
        value_delimiter = ',',
        value_parser = parse_vip
    )]
    pub vips: Vec<String>,

    #[command(flatten)]
    pub spec: SpecFlags,

    #[command(flatten)]
    pub write: WriteFlags,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The instance to change
    pub name: String,

    /// Move the instance to another interface
    #[arg(long, value_name = "IF")]
    pub interface: Option<String>,

    /// Change the virtual router id
    #[arg(long, value_name = "N")]
    pub vrid: Option<u32>,

    /// Replace the virtual addresses; repeat, or separate with commas
    #[arg(long = "vip", value_name = "ADDR/LEN", value_delimiter = ',', value_parser = parse_vip)]
    pub vips: Vec<String>,

    #[command(flatten)]
    pub spec: SpecFlags,

    /// Take over from lower-priority masters again (undoes --no-preempt)
    #[arg(long, conflicts_with = "no_preempt")]
    pub preempt: bool,

    /// Put a disabled instance back in service (undoes --disabled)
    #[arg(long, conflicts_with = "disabled")]
    pub enable: bool,

    /// Stop using a virtual MAC address (undoes --vmac)
    #[arg(long, conflicts_with = "vmac")]
    pub no_vmac: bool,

    /// Remove all unicast peers: send adverts by multicast again
    #[arg(long, conflicts_with = "peers")]
    pub clear_peers: bool,

    /// Send adverts from the interface's primary address again
    #[arg(long, conflicts_with = "unicast_src")]
    pub clear_unicast_src: bool,

    /// Turn authentication off (undoes --auth-pass)
    #[arg(long, conflicts_with = "auth_pass")]
    pub no_auth: bool,

    /// Remove all labels
    #[arg(long, conflicts_with = "labels")]
    pub clear_labels: bool,

    /// Remove every tracker
    #[arg(
        long,
        help_heading = "Trackers",
        conflicts_with_all = ["track_interface", "track_script", "track_file", "track_report"]
    )]
    pub clear_trackers: bool,

    /// Refuse the change unless the instance is still at this revision (see get-instance)
    #[arg(long, value_name = "R")]
    pub revision: Option<u64>,

    #[command(flatten)]
    pub write: WriteFlags,
}

impl UpdateArgs {
    /// Whether any flag asks for a change; an update without one is a usage error.
    pub fn has_changes(&self) -> bool {
        let s = &self.spec;
        self.interface.is_some()
            || self.vrid.is_some()
            || !self.vips.is_empty()
            || s.priority.is_some()
            || s.vrrp_version.is_some()
            || s.advert_interval.is_some()
            || s.no_preempt
            || s.preempt_delay.is_some()
            || s.unicast_src.is_some()
            || !s.peers.is_empty()
            || s.auth_pass.is_some()
            || s.vmac
            || !s.labels.is_empty()
            || s.description.is_some()
            || s.disabled
            || s.garp_repeat.is_some()
            || s.garp_delay.is_some()
            || s.garp_refresh.is_some()
            || s.checksum.is_some()
            || !s.trackers.is_empty()
            || self.clear_trackers
            || self.preempt
            || self.enable
            || self.no_vmac
            || self.clear_peers
            || self.clear_unicast_src
            || self.no_auth
            || self.clear_labels
    }
}

/// Spec fields that create-instance and update-instance share. Every one is optional:
/// on create an absent flag takes havipd's default, on update it leaves the field alone.
#[derive(Debug, Default, Args)]
pub struct SpecFlags {
    /// Priority 1-254, or 255 when this router owns the addresses (new instances: 100)
    #[arg(long, value_name = "N")]
    pub priority: Option<u32>,

    /// VRRP version: 2 (RFC 3768, IPv4 only) or 3 (RFC 9568) (new instances: 3)
    #[arg(
        long = "version",
        value_name = "2|3",
        value_parser = clap::value_parser!(u32).range(2..=3)
    )]
    pub vrrp_version: Option<u32>,

    /// How often the master advertises, e.g. 1s, 100ms; whole seconds for v2 (new instances: 1s)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub advert_interval: Option<Duration>,

    /// Never take over from a lower-priority master that is working
    #[arg(long)]
    pub no_preempt: bool,

    /// Tolerate a lower-priority master this long before taking over, e.g. 30s
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub preempt_delay: Option<Duration>,

    /// Send adverts from this address of the interface (default: its primary address)
    #[arg(long, value_name = "IP")]
    pub unicast_src: Option<IpAddr>,

    /// Send adverts by unicast to this peer instead of multicast; repeat, or separate
    /// with commas
    #[arg(long = "peer", value_name = "IP", value_delimiter = ',')]
    pub peers: Vec<IpAddr>,

    /// VRRPv2 simple password authentication, 1-8 characters
    #[arg(long, value_name = "PASSWORD")]
    pub auth_pass: Option<String>,

    /// Use a virtual MAC address (00:00:5e:00:01:VRID) on a macvlan interface
    #[arg(long)]
    pub vmac: bool,

    /// Label for selecting instances; repeat for several
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<Label>,

    /// Free text describing the instance
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Take no part in VRRP and hold no addresses until enabled
    #[arg(long)]
    pub disabled: bool,

    /// Gratuitous ARPs (IPv6: neighbour adverts) per address on becoming master (new instances: 5)
    #[arg(long, value_name = "N", help_heading = "Gratuitous ARP")]
    pub garp_repeat: Option<u32>,

    /// Send a second burst this long after becoming master; 0s for none (new instances: 5s)
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Gratuitous ARP"
    )]
    pub garp_delay: Option<Duration>,

    /// Repeat them this often while master; 0s for never (new instances: 0s)
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "Gratuitous ARP"
    )]
    pub garp_refresh: Option<Duration>,

    /// How VRRPv3 over IPv4 checksums the adverts it sends (new instances:
    /// pseudo-header, as keepalived does)
    #[arg(long, value_enum, value_name = "MODE")]
    pub checksum: Option<ChecksumArg>,

    #[command(flatten)]
    pub trackers: TrackerFlags,
}

/// Flags of the commands that change configuration.
#[derive(Debug, Default, Args)]
pub struct WriteFlags {
    /// Why: recorded with the change in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub comment: Option<String>,

    /// Check everything, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChecksumArg {
    /// Over the IPv4 pseudo-header and the message (keepalived, FRR, Wireshark)
    PseudoHeader,
    /// Over the VRRP message only (RFC 9568's wording)
    MessageOnly,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The instance to remove
    pub name: String,

    /// Refuse unless the instance is still at this revision (see get-instance)
    #[arg(long, value_name = "R")]
    pub revision: Option<u64>,

    /// Why: recorded in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The instance to show
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only instances with this label; repeat to require several
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<Label>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Replay stored events after this sequence number first (default: only new events)
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,

    /// Only events of this instance; repeat, or separate with commas
    #[arg(long = "instance", value_name = "NAME", value_delimiter = ',')]
    pub instances: Vec<String>,

    /// Only events of this kind; repeat, or separate with commas
    #[arg(
        long = "kind",
        value_name = "KIND",
        value_enum,
        value_delimiter = ',',
        conflicts_with = "exec"
    )]
    pub kinds: Vec<EventKindArg>,

    /// Run CMD for every state change, with keepalived's notify arguments (see below)
    #[arg(long, value_name = "CMD", help_heading = "Notify hooks")]
    pub exec: Option<String>,

    /// Run the --exec command with /bin/sh -c instead of directly
    #[arg(long, requires = "exec", help_heading = "Notify hooks")]
    pub shell: bool,

    /// Give up on a hook that runs longer than this and kill it (default: wait)
    #[arg(
        long,
        value_name = "DURATION",
        requires = "exec",
        value_parser = parse_timeout,
        help_heading = "Notify hooks"
    )]
    pub exec_timeout: Option<StdDuration>,

    /// Record the last event handled here and resume after it when restarted
    #[arg(long, value_name = "FILE", help_heading = "Notify hooks")]
    pub cursor_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventKindArg {
    StateChanged,
    InstanceCreated,
    InstanceUpdated,
    InstanceDeleted,
    DaemonStarted,
    DaemonStopping,
    EventsLost,
    TrackerChanged,
    DualMaster,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this instance
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// Only entries at or after TIME
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Timestamp>,

    /// Only entries before TIME
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<Timestamp>,

    /// Show at most this many entries, newest first
    #[arg(
        long,
        value_name = "N",
        default_value_t = 50,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub limit: u32,

    /// Show configuration changes instead of state transitions
    #[arg(long)]
    pub config: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The file to apply, or - for standard input
    #[arg(short, long, value_name = "FILE")]
    pub file: String,

    /// Also delete the instances and sync groups that the file does not name
    #[arg(long)]
    pub prune: bool,

    /// Check every entry with havipd and say what would happen, change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Why: recorded with every change in havipd's config history
    #[arg(long, value_name = "WHY")]
    pub comment: Option<String>,
}

/// A `KEY=VALUE` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// `ADDR/LEN`, returned in canonical form (e.g. IPv6 in lower case, shortest form).
pub fn parse_vip(s: &str) -> Result<String, String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or("no prefix length; write it as ADDR/LEN, e.g. 10.0.0.100/24")?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("'{addr}' is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|len| *len <= max)
        .ok_or_else(|| format!("'{len}' is not a prefix length (0-{max})"))?;
    Ok(format!("{addr}/{len}"))
}

/// `KEY=VALUE`; the value may be empty, the key may not.
pub fn parse_label(s: &str) -> Result<Label, String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok(Label {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
        _ => Err("expected KEY=VALUE, e.g. service=mysql".to_owned()),
    }
}

/// A humantime duration ("1s", "100ms", "1m 30s") as a protobuf Duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 1s, 100ms)"))?;
    let seconds = i64::try_from(d.as_secs()).map_err(|_| "too long".to_owned())?;
    let nanos = i32::try_from(d.subsec_nanos()).map_err(|_| "too long".to_owned())?;
    Ok(Duration { seconds, nanos })
}

fn parse_timeout(s: &str) -> Result<StdDuration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("the timeout must be longer than 0s".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (expected e.g. 10s, 500ms)")),
    }
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    parse_time_at(s, jiff::Timestamp::now())
}

/// An RFC 3339 time, or an age ("10m", "3d") meaning that long before `now`.
pub fn parse_time_at(s: &str, now: jiff::Timestamp) -> Result<Timestamp, String> {
    let expected = "expected an RFC 3339 time like 2026-11-26T10:00:00Z or an age like 10m, 2h, 3d";
    let time = match s.parse::<jiff::Timestamp>() {
        Ok(time) => time,
        Err(_) => {
            let age = humantime::parse_duration(s).map_err(|_| expected.to_owned())?;
            let age = jiff::SignedDuration::try_from(age).map_err(|_| "too long ago".to_owned())?;
            now.checked_sub(age)
                .map_err(|_| "too long ago".to_owned())?
        }
    };
    Ok(Timestamp {
        seconds: time.as_second(),
        nanos: time.subsec_nanosecond(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("havipctl").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn vips_and_peers_take_repeats_and_comma_lists() {
        let cli = parse(&[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--vip",
            "10.0.0.100/24,10.0.0.101/24",
            "--vip",
            "2001:DB8::1/64",
            "--peer",
            "10.0.0.12,10.0.0.13",
            "--peer",
            "10.0.0.14",
        ])
        .unwrap();
        let Command::CreateInstance(args) = cli.command else {
            panic!("parsed {:?}", cli.command)
        };
        assert_eq!(
            args.vips,
            ["10.0.0.100/24", "10.0.0.101/24", "2001:db8::1/64"]
        );
        let peers: Vec<String> = args.spec.peers.iter().map(ToString::to_string).collect();
        assert_eq!(peers, ["10.0.0.12", "10.0.0.13", "10.0.0.14"]);
    }

    #[test]
    fn malformed_values_are_usage_errors() {
        let base = ["create-instance", "web", "--interface", "eth0"];
        for bad in [
            &["--vrid", "abc", "--vip", "10.0.0.1/24"][..],
            &["--vrid", "51", "--vip", "10.0.0.1"],
            &["--vrid", "51", "--vip", "10.0.0.1/33"],
            &["--vrid", "51", "--vip", "10.0.0.300/24"],
            &["--vrid", "51", "--vip", "10.0.0.1/24", "--peer", "nope"],
            &["--vrid", "51", "--vip", "10.0.0.1/24", "--version", "4"],
            &[
                "--vrid",
                "51",
                "--vip",
                "10.0.0.1/24",
                "--advert-interval",
                "fast",
            ],
            &["--vrid", "51", "--vip", "10.0.0.1/24", "--label", "novalue"],
            &["--vrid", "51", "--vip", "10.0.0.1/24", "--checksum", "crc"],
        ] {
            let args: Vec<&str> = base.iter().chain(bad).copied().collect();
            let err = parse(&args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?} gave {err}");
        }
        // --vip is required on create.
        let err = parse(&[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "1",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn contradicting_update_flags_are_refused() {
        for pair in [
            ["--preempt", "--no-preempt"],
            ["--enable", "--disabled"],
            ["--vmac", "--no-vmac"],
            ["--clear-peers", "--peer=10.0.0.1"],
            ["--clear-labels", "--label=a=b"],
            ["--no-auth", "--auth-pass=x"],
            ["--clear-unicast-src", "--unicast-src=10.0.0.1"],
        ] {
            let err = parse(&["update-instance", "web", pair[0], pair[1]]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{pair:?}");
        }
    }

    #[test]
    fn labels_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_label("expr=a=b").unwrap(),
            Label {
                key: "expr".into(),
                value: "a=b".into()
            }
        );
        assert_eq!(parse_label("empty=").unwrap().value, "");
        assert!(parse_label("=v").is_err());
        assert!(parse_label("v").is_err());
    }

    #[test]
    fn durations_become_protobuf_durations() {
        assert_eq!(
            parse_duration("100ms").unwrap(),
            Duration {
                seconds: 0,
                nanos: 100_000_000
            }
        );
        assert_eq!(
            parse_duration("1m 30s").unwrap(),
            Duration {
                seconds: 90,
                nanos: 0
            }
        );
        assert!(parse_duration("1").is_err());
        assert!(parse_timeout("0s").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_an_age() {
        let now: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let at = |s| parse_time_at(s, now).unwrap();
        assert_eq!(
            at("2026-11-26T10:00:00Z"),
            Timestamp {
                seconds: 1_795_687_200,
                nanos: 0
            }
        );
        assert_eq!(at("2026-11-26T11:00:00+01:00"), at("2026-11-26T10:00:00Z"));
        assert_eq!(at("2026-11-26T10:00:00.25Z").nanos, 250_000_000);
        assert_eq!(at("2h"), at("2026-11-26T10:00:00Z"));
        assert_eq!(at("10m").seconds, at("2026-11-26T11:50:00Z").seconds);
        assert_eq!(at("3d"), at("2026-11-23T12:00:00Z"));
        // A time without an offset is ambiguous, so it is refused rather than guessed.
        assert!(parse_time_at("2026-11-26T10:00:00", now).is_err());
        assert!(parse_time_at("yesterday", now).is_err());
    }

    #[test]
    fn server_urls_are_checked_while_parsing() {
        let cli = parse(&["list-instances", "--server", "http://127.0.0.1:50051"]).unwrap();
        assert_eq!(cli.server.url, "http://127.0.0.1:50051");
        let cli = parse(&[
            "list-instances",
            "--server",
            "https://h:1",
            "--tls-ca",
            "ca.pem",
        ])
        .unwrap();
        assert_eq!(cli.tls_ca, Some(PathBuf::from("ca.pem")));
        let err = parse(&["list-instances", "--server", "http://10.0.0.1:1"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[test]
    fn completions_and_man_pages_come_from_the_command_line_definition() {
        let cli = parse(&["completions", "zsh"]).unwrap();
        assert!(matches!(cli.command, Command::Completions(_)));
        assert!(parse(&["completions", "tcsh"]).is_err());
        let cli = parse(&["man", "--out-dir", "/tmp/x"]).unwrap();
        assert!(matches!(cli.command, Command::Man(_)));
        let cli = parse(&["health"]).unwrap();
        assert!(matches!(cli.command, Command::Health(ref h) if h.service.is_empty()));
    }
}
