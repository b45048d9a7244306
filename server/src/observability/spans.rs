//! The spans havipd opens, in one place so their names and fields stay alike: one per RPC
//! (`api/rpc_layer.rs`), one per state transition (the data plane), one per tracker run
//! (the hook for the trackers). Each records its OpenTelemetry trace id in a `trace_id`
//! field, which is how the id reaches every text and JSON log line inside the span.

use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Record the span's trace id in its `trace_id` field (every span here declares it).
/// Reading the context starts the OpenTelemetry span, so a parent must be set before.
/// Without the OpenTelemetry layer (unit tests) this does nothing.
pub fn record_trace_id(span: &Span) {
    if span.is_disabled() {
        return;
    }
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
    }
}

/// The span of one state change; the data plane logs the change inside it. A root span:
/// a transition is caused by the network or a timer, not by the code that happens to run.
pub fn transition(instance: &str, from: &str, to: &str, reason: &str) -> Span {
    let span = tracing::info_span!(
        target: "havipd::transition",
        parent: None,
        "vrrp.transition",
        instance,
        from,
        to,
        reason,
        trace_id = Empty,
    );
    record_trace_id(&span);
    span
}

/// The span of one tracker run (a script, a file or an interface check): the hook for the
/// tracker runner. Wrap each run in it (`run.instrument(spans::tracker_run(..))`) and
/// record `result` ("ok", "failed", "timeout") and `weight` when it ends; the run's log
/// lines then carry the trace id, and the run is exported with `--otlp-endpoint`.
pub fn tracker_run(instance: &str, tracker: &str, kind: &str) -> Span {
    let span = tracing::info_span!(
        target: "havipd::tracker",
        parent: None,
        "vrrp.tracker_run",
        instance,
        tracker,
        kind,
        result = Empty,
        weight = Empty,
        trace_id = Empty,
    );
    record_trace_id(&span);
    span
}
