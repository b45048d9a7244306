//! OTLP/gRPC exporters for spans and log records, over the workspace's tonic. An export
//! that fails is counted (for `/metrics`) and reported in the log at most once a minute
//! with the number of failures since, so an unreachable collector cannot flood the log.

use super::ObservabilityError;
use crate::logging::RateLimiter;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tonic::transport::ClientTlsConfig;

/// How long one export may take before it counts as failed.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a failing export is reported.
const REPORT_WINDOW: Duration = Duration::from_secs(60);

/// The signals exported, as the metrics label them.
pub const SIGNALS: [&str; 2] = ["spans", "logs"];

static FAILURES: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static REPORTS: Mutex<Option<RateLimiter<&'static str>>> = Mutex::new(None);

/// Exports that failed since start, by signal (the order of [`SIGNALS`]).
pub fn export_failures() -> [u64; 2] {
    [
        FAILURES[0].load(Ordering::Relaxed),
        FAILURES[1].load(Ordering::Relaxed),
    ]
}

/// Who is exporting: `service.name` havipd (always), its version, and what the standard
/// OTEL_RESOURCE_ATTRIBUTES variable adds.
pub(super) fn resource() -> Resource {
    Resource::builder()
        .with_service_name("havipd")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

pub(super) struct Exporters {
    pub spans: Reporting<opentelemetry_otlp::SpanExporter>,
    pub logs: Reporting<opentelemetry_otlp::LogExporter>,
}

/// Check the endpoint and build both exporters. Their channel connects lazily, so a
/// collector that is down now only delays the first export.
pub(super) fn exporters(endpoint: &str) -> Result<Exporters, ObservabilityError> {
    let invalid = |reason: String| ObservabilityError::Otlp {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| invalid(format!("not a URL: {e}")))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(invalid("the scheme must be http:// or https://".into())),
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    let tls = || ClientTlsConfig::new().with_native_roots();

    let mut spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT);
    if https {
        spans = spans.with_tls_config(tls());
    }
    let spans = spans.build().map_err(|e| invalid(e.to_string()))?;

    let mut logs = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT);
    if https {
        logs = logs.with_tls_config(tls());
    }
    let logs = logs.build().map_err(|e| invalid(e.to_string()))?;

    Ok(Exporters {
        spans: Reporting {
            inner: spans,
            signal: 0,
        },
        logs: Reporting {
            inner: logs,
            signal: 1,
        },
    })
}

/// An exporter that counts and reports its failures.
#[derive(Debug)]
pub(super) struct Reporting<E> {
    inner: E,
    /// Index into [`SIGNALS`].
    signal: usize,
}

impl<E> Reporting<E> {
    fn observe(&self, result: &OTelSdkResult) {
        let Err(e) = result else { return };
        let Some(counter) = FAILURES.get(self.signal) else {
            return;
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let signal = SIGNALS.get(self.signal).copied().unwrap_or("?");
        let suppressed = REPORTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| RateLimiter::new(REPORT_WINDOW))
            .check(signal, Instant::now());
        if let Some(suppressed) = suppressed {
            tracing::warn!(
                signal,
                error = %e,
                suppressed,
                "exporting over OTLP failed; the batch is dropped (is the collector at --otlp-endpoint up?)"
            );
        }
    }
}

impl SpanExporter for Reporting<opentelemetry_otlp::SpanExporter> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.observe(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl LogExporter for Reporting<opentelemetry_otlp::LogExporter> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.observe(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_before_anything_starts() {
        for bad in [
            "127.0.0.1:4317",
            "grpc://collector:4317",
            "http://",
            "not a url",
        ] {
            let err = exporters(bad).err().unwrap().to_string();
            assert!(err.contains("--otlp-endpoint"), "{bad}: {err}");
        }
    }
}
