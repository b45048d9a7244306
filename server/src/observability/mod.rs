//! What havipd tells operators about itself: log lines (text or JSON) that carry the trace
//! id of the span they belong to; spans for every RPC, transition and tracker run, exported
//! over OTLP with `--otlp-endpoint`; and Prometheus metrics with `--metrics-listen`.
//!
//! Spans always get OpenTelemetry trace ids, exporter or not, so the log lines of one RPC
//! (or one transition) can be found together, and a client's `traceparent` carries over.

pub mod metrics;
mod otlp;
mod scrape;
pub mod spans;

pub use metrics::Metrics;
pub use scrape::{MetricsServer, ScrapeError};

use crate::args::{Args, LogFormat};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use tracing_subscriber::filter::{EnvFilter, FilterFn, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// Why logging or export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ObservabilityError {
    #[error("invalid --log-level {0:?}: {1}")]
    LogFilter(String, String),
    #[error(
        "invalid --otlp-endpoint {endpoint:?}: {reason}; give the collector's OTLP/gRPC address, e.g. http://127.0.0.1:4317"
    )]
    Otlp { endpoint: String, reason: String },
}

/// The providers behind the tracing layers; [`Telemetry::shutdown`] exports what is still
/// buffered.
#[derive(Debug)]
pub struct Telemetry {
    tracer: SdkTracerProvider,
    logger: Option<SdkLoggerProvider>,
}

/// Crates whose log records must not be exported over OTLP: the exporter itself uses them,
/// and exporting their records would feed the exporter its own traffic.
const NOT_EXPORTED: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "opentelemetry",
];

/// Install the global subscriber: the log format on stderr, the trace-id layer and, with
/// `--otlp-endpoint`, the exporters. Must run inside the tokio runtime (the gRPC exporter
/// opens its channel on it).
pub fn init(args: &Args) -> Result<Telemetry, ObservabilityError> {
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| ObservabilityError::LogFilter(args.log_level.clone(), e.to_string()))?;
    let exporters = match &args.otlp_endpoint {
        Some(endpoint) => Some(otlp::exporters(endpoint)?),
        None => None,
    };
    let mut tracer = SdkTracerProvider::builder().with_resource(otlp::resource());
    let mut logger = None;
    if let Some(exporters) = exporters {
        tracer = tracer.with_batch_exporter(exporters.spans);
        logger = Some(
            SdkLoggerProvider::builder()
                .with_resource(otlp::resource())
                .with_batch_exporter(exporters.logs)
                .build(),
        );
    }
    let tracer = tracer.build();

    // Colours only for a person at a terminal: not in journald, files or pipes.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match args.log_format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    // Only havipd's own spans become OpenTelemetry spans: the libraries' (h2, sqlx, …)
    // would bury them, and cost an allocation each.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer("havipd"))
        .with_filter(Targets::new().with_target("havipd", tracing::Level::TRACE));
    let logs = logger.as_ref().map(|provider| {
        OpenTelemetryTracingBridge::new(provider).with_filter(FilterFn::new(|meta| {
            !NOT_EXPORTED.iter().any(|t| meta.target().starts_with(t))
        }))
    });
    // A second initialisation (tests) is harmless; keep the first.
    let _ = Registry::default()
        .with(fmt)
        .with(spans)
        .with(logs)
        .with(filter)
        .try_init();
    Ok(Telemetry { tracer, logger })
}

impl Telemetry {
    /// Export what is buffered and stop the exporters. Blocks for at most a few seconds
    /// per signal (the exporters' timeout); call it after the daemon stopped, outside the
    /// runtime's worker threads.
    pub fn shutdown(self) {
        // Errors here mean the collector did not take the last batch; the exporter already
        // counted and reported that (see otlp.rs), and the process is exiting.
        let _ = self.tracer.shutdown();
        if let Some(logger) = self.logger {
            let _ = logger.shutdown();
        }
    }
}
