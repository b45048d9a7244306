//! havipd's command line: every flag also has a HAVIP_* environment variable.

use crate::api::Listen;
use clap::{Parser, ValueEnum};
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
        HAVIP_EVENT_RETENTION=7d havipd"
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

    /// How long events and transitions are kept (config changes are kept for good).
    #[arg(long, env = "HAVIP_EVENT_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub event_retention: Duration,
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
}
