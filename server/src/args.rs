//! havipd's command line: every flag also has a HAVIP_* environment variable.

use crate::api::Listen;
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// havipd — VRRP failover daemon with a gRPC API.
///
/// Runs VRRP instances (v2 and v3, IPv4 and IPv6, unicast or multicast) created and changed
/// at run time with havipctl or any gRPC client. Configuration and every state transition
/// are kept in SQLite.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "havipd",
    version,
    after_help = "EXAMPLES:\n  \
        havipd                                   # defaults: /var/lib/havip/havip.db, unix:///run/havip/havipd.sock\n  \
        havipd --db /tmp/h.db --listen unix:///tmp/havipd.sock --log-format json\n  \
        HAVIP_EVENT_RETENTION=7d havipd\n  \
        havipd --listen tcp://10.0.0.11:50051 --tls-cert srv.pem --tls-key srv.key --tls-client-ca ca.pem\n  \
        havipd --metrics-listen 127.0.0.1:9108 --otlp-endpoint http://127.0.0.1:4317"
)]
pub struct Args {
    /// The SQLite database; its folder is created if missing.
    #[arg(long, env = "HAVIP_DB", default_value = "/var/lib/havip/havip.db")]
    pub db: PathBuf,

    /// Where the API listens: unix:///path or tcp://HOST:PORT.
    #[arg(long, env = "HAVIP_LISTEN", default_value = crate::api::listen_default(), value_parser = parse_listen)]
    pub listen: Listen,

    /// Log line format.
    #[arg(long, env = "HAVIP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Which logs to show, as a tracing filter (e.g. "info", "havipd=debug").
    #[arg(long, env = "HAVIP_LOG", default_value = "info")]
    pub log_level: String,

    /// How many events a watcher may have waiting before it is cut off (it then resumes
    /// with after_seq; nothing is lost).
    #[arg(long, env = "HAVIP_WATCH_BUFFER", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub watch_buffer: u32,

    /// How many transitions and events may wait in memory while the database cannot be
    /// written (locked, read-only, disk full). Past it new ones are dropped and counted; once
    /// the database is back, one EVENTS_LOST event says how many.
    #[arg(long, env = "HAVIP_MAX_QUEUED_EVENTS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_queued_events: u32,

    /// Real-time (SCHED_RR) priority of the data-plane thread, 1-99, so that a busy machine
    /// cannot delay adverts past Master_Down_Interval; 0 runs it with ordinary priority.
    /// Needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least this (the systemd unit sets
    /// LimitRTPRIO); without either havipd warns once and runs with ordinary priority.
    #[arg(long, env = "HAVIP_REALTIME_PRIORITY", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=99))]
    pub realtime_priority: u8,

    /// Run a standby sender: a second thread, kept on a CPU the data plane does not use,
    /// that repeats a master's adverts while the data plane's CPU is not running (a
    /// virtual machine's host stops a vCPU for 100 ms at times, longer than backups wait
    /// at short advert intervals). Needs two CPUs; `false` runs without it, and the data
    /// plane may then use every CPU.
    #[arg(long, env = "HAVIP_STANDBY_SENDER", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub standby_sender: bool,

    /// How long events and transitions are kept (config changes are kept for good).
    #[arg(long, env = "HAVIP_EVENT_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub event_retention: Duration,

    /// How many WatchEvents streams may be open at once; more are refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "HAVIP_MAX_WATCHERS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_watchers: u32,

    /// The group that owns the unix socket (mode 0660), so its members may use havipctl
    /// without root. A name or a numeric gid.
    #[arg(long, env = "HAVIP_SOCKET_GROUP", value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// The server certificate chain (PEM) for a tcp:// listen address.
    #[arg(long, env = "HAVIP_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "HAVIP_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to: turns on mutual TLS,
    /// and the certificate's subject is recorded as the actor of every change.
    #[arg(
        long,
        env = "HAVIP_TLS_CLIENT_CA",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// Allow a tcp:// listen address without TLS; only a loopback address is accepted.
    #[arg(long, env = "HAVIP_INSECURE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub insecure: bool,

    /// Serve Prometheus metrics over plain HTTP at http://ADDR/metrics (e.g. 127.0.0.1:9108).
    #[arg(long, env = "HAVIP_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Export spans and logs over OTLP/gRPC to this collector, e.g. http://127.0.0.1:4317
    /// (https:// verifies the collector against the system's CA certificates).
    #[arg(long, env = "HAVIP_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Print the man page (roff) on stdout and exit; for packaging.
    #[arg(long, hide = true)]
    pub man_page: bool,
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    s.parse()
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 30d or 12h: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_and_overrides() {
        let a = Args::try_parse_from(["havipd"]).unwrap();
        assert_eq!(a.db, PathBuf::from("/var/lib/havip/havip.db"));
        assert_eq!(a.event_retention, Duration::from_secs(30 * 86400));
        let a = Args::try_parse_from([
            "havipd",
            "--listen",
            "tcp://127.0.0.1:7000",
            "--event-retention",
            "12h",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(a.listen, Listen::Tcp("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(a.event_retention, Duration::from_secs(12 * 3600));
        assert_eq!(a.log_format, LogFormat::Json);
        assert!(Args::try_parse_from(["havipd", "--listen", "bogus"]).is_err());
    }

    #[test]
    fn access_and_observability_flags() {
        let a = Args::try_parse_from(["havipd"]).unwrap();
        assert_eq!(a.max_watchers, 1000);
        assert_eq!(a.max_queued_events, 100_000);
        assert_eq!(a.realtime_priority, 10);
        assert!(a.standby_sender, "on by default");
        let off = Args::try_parse_from(["havipd", "--standby-sender", "false"]).unwrap();
        assert!(!off.standby_sender);
        assert!(Args::try_parse_from(["havipd", "--standby-sender", "maybe"]).is_err());
        assert!(!a.insecure);
        assert!(a.tls_cert.is_none() && a.metrics_listen.is_none() && a.otlp_endpoint.is_none());
        let a = Args::try_parse_from([
            "havipd",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
            "--metrics-listen",
            "127.0.0.1:9108",
            "--socket-group",
            "havip",
            "--max-watchers",
            "5",
        ])
        .unwrap();
        assert_eq!(a.tls_client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(a.metrics_listen, Some("127.0.0.1:9108".parse().unwrap()));
        assert_eq!(a.socket_group.as_deref(), Some("havip"));
        assert_eq!(a.max_watchers, 5);
        // A certificate needs its key, and the client CA needs a server certificate.
        assert!(Args::try_parse_from(["havipd", "--tls-cert", "c.pem"]).is_err());
        assert!(Args::try_parse_from(["havipd", "--tls-client-ca", "ca.pem"]).is_err());
        assert!(Args::try_parse_from(["havipd", "--max-watchers", "0"]).is_err());
        assert!(Args::try_parse_from(["havipd", "--max-queued-events", "0"]).is_err());
        let a = Args::try_parse_from(["havipd", "--max-queued-events", "5"]).unwrap();
        assert_eq!(a.max_queued_events, 5);
    }
}
