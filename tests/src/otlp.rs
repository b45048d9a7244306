//! A minimal OTLP/gRPC collector for the tests: it accepts trace and log exports on an
//! address inside a lab namespace and keeps what it received.

use crate::netns::spawn_in;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tonic::{Request, Response, Status};

/// What the collector received.
#[derive(Debug, Default)]
pub struct Received {
    pub spans: Vec<Span>,
    pub logs: Vec<LogRecord>,
    /// `service.name` of every export's resource.
    pub services: Vec<String>,
}

#[derive(Clone, Debug, Default)]
struct Sink(Arc<Mutex<Received>>);

fn service_name(attrs: &[KeyValue]) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| text(kv.value.as_ref()))
}

/// A string attribute's or body's text.
pub fn text(v: Option<&AnyValue>) -> Option<String> {
    match v?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value of a span's or log record's attribute, as text.
pub fn attribute(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(kv.value.as_ref()))
}

/// Lower-case hex, as trace ids are printed.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut got = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            if let Some(name) = rs
                .resource
                .as_ref()
                .and_then(|r| service_name(&r.attributes))
            {
                got.services.push(name);
            }
            for ss in rs.scope_spans {
                got.spans.extend(ss.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let mut got = self.0.lock().unwrap();
        for rl in request.into_inner().resource_logs {
            if let Some(name) = rl
                .resource
                .as_ref()
                .and_then(|r| service_name(&r.attributes))
            {
                got.services.push(name);
            }
            for sl in rl.scope_logs {
                got.logs.extend(sl.log_records);
            }
        }
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// The collector, listening inside a namespace until dropped.
#[derive(Debug)]
pub struct Collector {
    sink: Sink,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Listen on `addr` (e.g. "127.0.0.1:4317") inside `ns`.
    pub fn start(ns: &str, addr: &str) -> Collector {
        let sink = Sink::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server_sink = sink.clone();
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        let thread = spawn_in(ns, move || async move {
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            ready_tx.send(()).unwrap();
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(server_sink.clone()))
                .add_service(LogsServiceServer::new(server_sink))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
                .unwrap();
        });
        ready_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the OTLP collector did not start");
        Collector {
            sink,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Look at what was received so far.
    pub fn with<R>(&self, f: impl FnOnce(&Received) -> R) -> R {
        f(&self.sink.0.lock().unwrap())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
