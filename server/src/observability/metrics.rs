//! Prometheus metrics. Per-instance and store figures are read at scrape time from the
//! status board, the store's counters and the event bus, so the data plane only bumps
//! atomics it bumps anyway; RPC counts and latencies are recorded by the API's tower layer
//! (`api/rpc_layer.rs`).
//!
//! Per instance, labelled `name`, `interface`, `vrid`:
//! - `havip_instance_state{state}`: one series per state (init, backup, master, fault,
//!   disabled), 1 for the current one and 0 for the others, so
//!   `havip_instance_state{state="master"} == 1` selects masters;
//! - `havip_instance_effective_priority`;
//! - `havip_instance_adverts_sent_total` (`…_sent_by_standby_total` of them from the
//!   standby sender), `havip_instance_adverts_received_total`;
//! - `havip_instance_bad_packets_total{reason}` (every reason, zeros included);
//! - `havip_instance_transitions_total{to, reason}` (the engine's reason labels);
//! - `havip_instance_garps_sent_total`;
//! - `havip_instance_dual_master_total`: dual-master episodes (another master heard while
//!   master), as the DUAL_MASTER events report them;
//! - `havip_instance_master_advert_age_seconds`: since the last advert accepted from the
//!   master; absent until one was heard.
//!
//! Per VRRP socket, labelled `interface`, `family`, `reason`:
//! `havip_interface_bad_packets_total` for packets no instance can be charged with
//! (`unknown_vrid`, `truncated`, `oversized`, `malformed`).
//!
//! Daemon-wide: `havip_grpc_server_handled_total{service, method, code}` and the
//! `havip_grpc_server_handling_seconds` histogram (for WatchEvents, the stream's life);
//! `havip_event_subscribers`; `havip_store_queue_depth`, `havip_store_lost_events_total`,
//! `havip_store_failing`, the `havip_store_write_seconds` histogram;
//! `havip_otlp_export_failures_total{signal}`; `havip_build_info{version}`.

use crate::events::EventBus;
use crate::runtime::{LiveStatus, StatusBoard};
use crate::store::{LatencyHistogram, Store};
use havip_vrrp::State;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The registry and the metrics recorded as things happen; clones share them.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    handled: Family<RpcLabels, Counter>,
    latency: Family<RpcLabels, Histogram, fn() -> Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    method: String,
    code: &'static str,
}

/// 0.5 ms to about 16 s.
fn rpc_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Where the scrape-time figures come from.
#[derive(Clone, Debug)]
pub struct Sources {
    pub board: Arc<StatusBoard>,
    pub store: Store,
    pub bus: EventBus,
}

impl Metrics {
    /// RPC metrics only (tests of the API layer).
    pub fn new() -> Metrics {
        Metrics::build(None)
    }

    /// Everything the daemon exposes.
    pub fn for_daemon(sources: Sources) -> Metrics {
        Metrics::build(Some(sources))
    }

    fn build(sources: Option<Sources>) -> Metrics {
        let mut registry = Registry::default();
        let handled = Family::<RpcLabels, Counter>::default();
        let latency: Family<RpcLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(rpc_histogram);
        registry.register(
            "havip_grpc_server_handled",
            "RPCs completed, by method and gRPC status code",
            handled.clone(),
        );
        registry.register(
            "havip_grpc_server_handling_seconds",
            "How long RPCs took, by method and code (for WatchEvents: how long the stream lasted)",
            latency.clone(),
        );
        registry.register_collector(Box::new(DaemonCollector));
        if let Some(sources) = sources {
            registry.register_collector(Box::new(InstanceCollector {
                board: sources.board,
            }));
            registry.register_collector(Box::new(StoreCollector {
                store: sources.store,
                bus: sources.bus,
            }));
        }
        Metrics {
            inner: Arc::new(Inner {
                registry,
                handled,
                latency,
            }),
        }
    }

    /// An RPC ended. `path` is the HTTP/2 path (`/havip.v1.InstanceService/GetInstance`);
    /// paths that name no method (UNIMPLEMENTED) are counted under "unknown", so a client
    /// that makes paths up cannot create series without end.
    pub fn rpc_done(&self, path: &str, code: tonic::Code, elapsed: Duration) {
        let (service, method) = match (code, split_path(path)) {
            (tonic::Code::Unimplemented, _) | (_, None) => ("unknown", "unknown"),
            (_, Some(parts)) => parts,
        };
        let labels = RpcLabels {
            service: service.to_owned(),
            method: method.to_owned(),
            code: code_name(code),
        };
        self.inner.handled.get_or_create(&labels).inc();
        self.inner
            .latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text format (0.0.4).
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    };
    (ok(service) && ok(method)).then_some((service, method))
}

/// The gRPC spec's name of a status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

fn state_label(state: State) -> &'static str {
    match state {
        State::Initialize => "init",
        State::Backup => "backup",
        State::Master => "master",
        State::Fault => "fault",
        State::Disabled => "disabled",
    }
}

const STATES: [State; 5] = [
    State::Initialize,
    State::Backup,
    State::Master,
    State::Fault,
    State::Disabled,
];

type Labels = Vec<(&'static str, String)>;

fn with(labels: &Labels, key: &'static str, value: &str) -> Labels {
    let mut l = labels.clone();
    l.push((key, value.to_owned()));
    l
}

fn histogram(m: &mut MetricEncoder<'_>, h: &LatencyHistogram) -> fmt::Result {
    // The encoder wants each bucket's own count; the store keeps them cumulative.
    let mut previous = 0;
    let buckets: Vec<(f64, u64)> = h
        .buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let own = cumulative.saturating_sub(previous);
            previous = cumulative;
            (bound, own)
        })
        .collect();
    m.encode_histogram::<NoLabelSet>(
        h.sum_seconds,
        h.count,
        &buckets,
        None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
    )
}

#[derive(Debug)]
struct DaemonCollector;

impl Collector for DaemonCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let mut m = enc.encode_descriptor(
            "havip_build_info",
            "The running havipd's version",
            None,
            MetricType::Gauge,
        )?;
        m.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?
            .encode_gauge(&1i64)?;
        let mut m = enc.encode_descriptor(
            "havip_otlp_export_failures",
            "OTLP exports that failed (their batch was dropped), by signal",
            None,
            MetricType::Counter,
        )?;
        for (signal, n) in super::otlp::SIGNALS
            .iter()
            .zip(super::otlp::export_failures())
        {
            m.encode_family(&[("signal", *signal)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct InstanceCollector {
    board: Arc<StatusBoard>,
}

/// Reads one counter of a row.
type RowValue = fn(&Row) -> u64;

struct Row {
    labels: Labels,
    live: Arc<LiveStatus>,
    state: State,
    priority: u8,
}

impl Collector for InstanceCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let mut rows: Vec<Row> = self
            .board
            .entries()
            .into_iter()
            .map(|live| {
                let snapshot = live.snapshot();
                let id = &live.identity;
                Row {
                    labels: vec![
                        ("name", id.name.to_string()),
                        ("interface", id.interface.clone()),
                        ("vrid", id.vrid.to_string()),
                    ],
                    state: snapshot.state,
                    priority: snapshot.effective_priority,
                    live,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.labels.cmp(&b.labels));

        let mut m = enc.encode_descriptor(
            "havip_instance_state",
            "1 for the instance's current state, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            for state in STATES {
                m.encode_family(&with(&r.labels, "state", state_label(state)))?
                    .encode_gauge(&i64::from(r.state == state))?;
            }
        }
        let mut m = enc.encode_descriptor(
            "havip_instance_effective_priority",
            "The priority the instance advertises now (trackers included)",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            m.encode_family(&r.labels)?
                .encode_gauge(&i64::from(r.priority))?;
        }
        let counters: [(&str, &str, RowValue); 5] = [
            ("havip_instance_adverts_sent", "Adverts sent", |r| {
                r.live.counters.adverts_sent.load(RELAXED)
            }),
            (
                "havip_instance_adverts_sent_by_standby",
                "Of the adverts sent, those the standby sender sent while the data plane was late",
                |r| r.live.counters.adverts_sent_by_standby.load(RELAXED),
            ),
            (
                "havip_instance_adverts_received",
                "Valid adverts received",
                |r| r.live.counters.adverts_received.load(RELAXED),
            ),
            (
                "havip_instance_garps_sent",
                "Gratuitous ARPs and unsolicited neighbour advertisements sent",
                |r| r.live.counters.garps_sent.load(RELAXED),
            ),
            (
                "havip_instance_dual_master",
                "Dual-master episodes: another master heard while master",
                |r| r.live.counters.dual_masters.load(RELAXED),
            ),
        ];
        for (name, help, value) in counters {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for r in &rows {
                m.encode_family(&r.labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value(r), None)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "havip_instance_bad_packets",
            "VRRP packets dropped, by reason",
            None,
            MetricType::Counter,
        )?;
        for r in &rows {
            for (reason, n) in r.live.counters.all_bad_packets() {
                m.encode_family(&with(&r.labels, "reason", reason))?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "havip_instance_transitions",
            "State transitions, by new state and reason",
            None,
            MetricType::Counter,
        )?;
        for r in &rows {
            for ((to, reason), n) in r.live.counters.transitions_by_reason() {
                let labels = with(&with(&r.labels, "to", state_label(to)), "reason", reason);
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "havip_interface_bad_packets",
            "VRRP packets dropped that no instance can be charged with (unknown VRID, too \
             short to name one, oversized, malformed), by interface, family and reason",
            None,
            MetricType::Counter,
        )?;
        for c in self.board.interfaces() {
            let labels: Labels = vec![
                ("interface", c.interface.clone()),
                (
                    "family",
                    match c.family {
                        havip_vrrp::Family::Ipv4 => "ipv4",
                        havip_vrrp::Family::Ipv6 => "ipv6",
                    }
                    .to_owned(),
                ),
            ];
            for (reason, n) in c.all_bad_packets() {
                m.encode_family(&with(&labels, "reason", reason))?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "havip_instance_master_advert_age_seconds",
            "Seconds since the last advert accepted from the master (absent until one was heard)",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            if let Some(age) = r.live.counters.since_master_advert() {
                m.encode_family(&r.labels)?
                    .encode_gauge(&age.as_secs_f64())?;
            }
        }
        Ok(())
    }
}

const RELAXED: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;

#[derive(Debug)]
struct StoreCollector {
    store: Store,
    bus: EventBus,
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let stats = self.store.stats();
        enc.encode_descriptor(
            "havip_event_subscribers",
            "Open WatchEvents streams",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&(self.bus.subscriber_count() as u64))?;
        enc.encode_descriptor(
            "havip_store_queue_depth",
            "Transitions and events waiting to be written to the database",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&(stats.queued_events as u64))?;
        enc.encode_descriptor(
            "havip_store_lost_events",
            "Transitions and events dropped because the write queue was full",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, u64>(&stats.lost_events, None)?;
        enc.encode_descriptor(
            "havip_store_failing",
            "1 while writes to the database fail (the writer retries)",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&i64::from(stats.failing))?;
        let mut m = enc.encode_descriptor(
            "havip_store_write_seconds",
            "How long each database write transaction took",
            None,
            MetricType::Histogram,
        )?;
        histogram(&mut m, &stats.write_latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcs_are_counted_by_method_and_code_with_bounded_labels() {
        let m = Metrics::new();
        let ms = Duration::from_millis(3);
        m.rpc_done("/havip.v1.InstanceService/GetInstance", tonic::Code::Ok, ms);
        m.rpc_done("/havip.v1.InstanceService/GetInstance", tonic::Code::Ok, ms);
        m.rpc_done(
            "/havip.v1.InstanceService/GetInstance",
            tonic::Code::NotFound,
            ms,
        );
        m.rpc_done("/made.Up/Path", tonic::Code::Unimplemented, ms);
        m.rpc_done("/x/../../etc", tonic::Code::Unknown, ms);
        let text = m.render().unwrap();
        assert!(
            text.contains(
                "havip_grpc_server_handled_total{service=\"havip.v1.InstanceService\",method=\"GetInstance\",code=\"OK\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("method=\"GetInstance\",code=\"NOT_FOUND\"} 1"));
        assert!(text.contains(
            "havip_grpc_server_handled_total{service=\"unknown\",method=\"unknown\",code=\"UNIMPLEMENTED\"} 1"
        ));
        assert!(!text.contains("made.Up") && !text.contains("etc"), "{text}");
        assert!(text.contains("havip_grpc_server_handling_seconds_bucket{"));
        assert!(text.contains("havip_build_info{version="));
    }

    #[test]
    fn instances_are_read_from_the_board_at_scrape_time() {
        use crate::runtime::{Identity, InstanceId};
        let board = Arc::new(StatusBoard::default());
        let live = Arc::new(LiveStatus::new(
            std::time::SystemTime::now(),
            Identity {
                name: "web".into(),
                interface: "eth0".into(),
                vrid: 51,
            },
        ));
        board.insert(InstanceId(1), live.clone());
        let collector = InstanceCollector { board };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        let render = |r: &Registry| {
            let mut out = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut out, r).unwrap();
            out
        };
        let labels = "name=\"web\",interface=\"eth0\",vrid=\"51\"";
        let text = render(&registry);
        assert!(
            text.contains(&format!(
                "havip_instance_state{{{labels},state=\"init\"}} 1"
            )),
            "{text}"
        );
        assert!(!text.contains("havip_instance_master_advert_age_seconds{"));

        live.update(|s| {
            s.state = State::Master;
            s.effective_priority = 150;
        });
        live.counters.adverts_sent.fetch_add(7, RELAXED);
        live.counters.adverts_sent_by_standby.fetch_add(2, RELAXED);
        live.counters.bad_packet("bad_checksum");
        live.counters
            .count_transition(State::Master, "master_down_timer");
        live.counters.heard_master();
        let text = render(&registry);
        for line in [
            format!("havip_instance_state{{{labels},state=\"master\"}} 1"),
            format!("havip_instance_state{{{labels},state=\"init\"}} 0"),
            format!("havip_instance_effective_priority{{{labels}}} 150"),
            format!("havip_instance_adverts_sent_total{{{labels}}} 7"),
            format!("havip_instance_adverts_sent_by_standby_total{{{labels}}} 2"),
            format!("havip_instance_bad_packets_total{{{labels},reason=\"bad_checksum\"}} 1"),
            format!(
                "havip_instance_transitions_total{{{labels},to=\"master\",reason=\"master_down_timer\"}} 1"
            ),
        ] {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(text.contains("havip_instance_master_advert_age_seconds{"));
    }
}
