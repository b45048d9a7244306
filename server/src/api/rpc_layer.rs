//! A tower layer around every RPC: a span (method, gRPC code, duration) that joins the
//! caller's trace when it sends a W3C `traceparent`, and the RPC metrics. The code is read
//! where gRPC puts it: in the response headers for a trailers-only reply (most errors),
//! otherwise in the trailers at the end of the body, so a stream (WatchEvents) is measured
//! until it ends.

use crate::observability::Metrics;
use crate::observability::metrics::code_name;
use crate::observability::spans::record_trace_id;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Bytes;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;
use tonic::Code;
use tower::{Layer, Service};
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Wraps the API's routes.
#[derive(Clone, Debug)]
pub struct RpcLayer {
    metrics: Metrics,
}

impl RpcLayer {
    pub fn new(metrics: Metrics) -> Self {
        RpcLayer { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RpcService<S> {
    inner: S,
    metrics: Metrics,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RpcService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let span = rpc_span(&path, request.headers());
        let mut finish = Finish {
            path,
            started: Instant::now(),
            metrics: self.metrics.clone(),
            span: span.clone(),
            code: None,
            ended: false,
        };
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let mut response = future.await?;
                explain_oversized(response.headers_mut());
                // A trailers-only reply carries grpc-status in its headers.
                finish.code = grpc_status(response.headers());
                let (parts, body) = response.into_parts();
                let body = Observed {
                    inner: body,
                    finish: Some(finish),
                };
                Ok(Response::from_parts(parts, tonic::body::Body::new(body)))
            }
            .instrument(span),
        )
    }
}

fn rpc_span(path: &str, headers: &HeaderMap) -> Span {
    let full = path.trim_start_matches('/');
    let (service, method) = full.split_once('/').unwrap_or((full, ""));
    let span = tracing::info_span!(
        target: "havipd::rpc",
        "rpc",
        otel.name = full,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        code = Empty,
        duration_ms = Empty,
        trace_id = Empty,
    );
    // Join the caller's trace, if it sent one.
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Fails only when tracing has no OpenTelemetry layer (unit tests).
        let _ = span.set_parent(parent);
    }
    record_trace_id(&span);
    span
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// tonic refuses a request over the size limit before any handler runs, with OUT_OF_RANGE
/// and a message that says neither what the limit is for nor what to do. gRPC's code for it
/// is RESOURCE_EXHAUSTED; the reply is rewritten to that, with a message that does.
fn explain_oversized(headers: &mut HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    if status.code() != Code::OutOfRange {
        return;
    }
    let Some(rest) = status
        .message()
        .strip_prefix("Error, decoded message length too large: found ")
    else {
        return;
    };
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty());
    let (Some(found), Some(limit)) = (numbers.next(), numbers.next()) else {
        return;
    };
    let explained = tonic::Status::resource_exhausted(format!(
        "the request is {found} bytes, more than the {limit} bytes havipd accepts; send less \
         in one request (an instance spec takes a few KiB: split a bulk change into several \
         requests)"
    ));
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if explained.add_header(headers).is_err() {
        // Cannot happen for this ASCII message; the original reply goes out unchanged then.
        tracing::debug!("could not rewrite an oversized request's status");
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

/// Records the RPC when dropped: at the end of the body, or when the client went away.
struct Finish {
    path: String,
    started: Instant,
    metrics: Metrics,
    span: Span,
    code: Option<Code>,
    /// The body was read to its end (a missing code then is UNKNOWN, not CANCELLED).
    ended: bool,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let code = match (self.code, self.ended) {
            (Some(code), _) => code,
            (None, true) => Code::Unknown,
            // Dropped before the end: the client cancelled or the connection broke.
            (None, false) => Code::Cancelled,
        };
        let elapsed = self.started.elapsed();
        self.metrics.rpc_done(&self.path, code, elapsed);
        let name = code_name(code);
        let span = &self.span;
        span.record("code", name);
        span.record("rpc.grpc.status_code", code as i32);
        span.record("duration_ms", elapsed.as_millis() as u64);
        if code != Code::Ok {
            span.record("otel.status_code", "ERROR");
        }
        tracing::debug!(
            target: "havipd::rpc",
            parent: span,
            code = name,
            duration_ms = elapsed.as_millis() as u64,
            "rpc done"
        );
    }
}

pin_project_lite::pin_project! {
    /// The response body, watched for the trailers and the end.
    struct Observed<B> {
        #[pin]
        inner: B,
        finish: Option<Finish>,
    }
}

impl<B> Body for Observed<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(trailers), Some(finish)) = (f.trailers_ref(), this.finish.as_mut())
                    && let Some(code) = grpc_status(trailers)
                {
                    finish.code = Some(code);
                }
            }
            Some(Err(_)) => {
                if let Some(finish) = this.finish.as_mut() {
                    finish.code.get_or_insert(Code::Internal);
                }
            }
            None => {
                if let Some(mut finish) = this.finish.take() {
                    finish.ended = true;
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::convert::Infallible;

    fn service(
        status: Option<&'static str>,
        trailer: Option<&'static str>,
    ) -> impl Service<
        Request<()>,
        Response = Response<tonic::body::Body>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<tonic::body::Body>, Infallible>>,
    > + Clone {
        tower::service_fn(move |_req: Request<()>| async move {
            let body = Full::new(Bytes::from_static(b"x")).with_trailers(async move {
                trailer.map(|code| {
                    let mut t = HeaderMap::new();
                    t.insert("grpc-status", http::HeaderValue::from_static(code));
                    Ok(t)
                })
            });
            let mut response = Response::new(tonic::body::Body::new(body));
            if let Some(code) = status {
                response
                    .headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static(code));
            }
            Ok::<_, Infallible>(response)
        })
    }

    async fn call<S>(svc: &mut RpcService<S>, path: &str, read_body: bool)
    where
        S: Service<Request<()>, Response = Response<tonic::body::Body>, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let request = Request::builder().uri(path).body(()).unwrap();
        let response = svc.call(request).await.unwrap();
        if read_body {
            response.into_body().collect().await.unwrap();
        }
    }

    #[test]
    fn an_oversized_request_is_resource_exhausted_with_the_sizes_and_what_to_do() {
        let mut headers = HeaderMap::new();
        tonic::Status::out_of_range(
            "Error, decoded message length too large: found 2097157 bytes, the limit is: 1048576 bytes",
        )
        .add_header(&mut headers)
        .unwrap();
        explain_oversized(&mut headers);
        let status = tonic::Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status
                .message()
                .starts_with("the request is 2097157 bytes, more than the 1048576 bytes"),
            "{}",
            status.message()
        );
        // Any other OUT_OF_RANGE (a pruned watch) is left alone.
        let mut headers = HeaderMap::new();
        tonic::Status::out_of_range("after_seq=9 is beyond the newest event")
            .add_header(&mut headers)
            .unwrap();
        explain_oversized(&mut headers);
        assert_eq!(
            tonic::Status::from_header_map(&headers).unwrap().code(),
            Code::OutOfRange
        );
    }

    #[tokio::test]
    async fn codes_come_from_headers_or_trailers_and_cancels_count() {
        let metrics = Metrics::new();
        let layer = RpcLayer::new(metrics.clone());
        let path = "/havip.v1.InstanceService/GetInstance";
        // OK in the trailers.
        call(&mut layer.layer(service(None, Some("0"))), path, true).await;
        // NOT_FOUND as a trailers-only reply.
        call(&mut layer.layer(service(Some("5"), None)), path, true).await;
        // The client went away before the end.
        call(&mut layer.layer(service(None, Some("0"))), path, false).await;
        let text = metrics.render().unwrap();
        for code in ["OK", "NOT_FOUND", "CANCELLED"] {
            assert!(
                text.contains(&format!(
                    "havip_grpc_server_handled_total{{service=\"havip.v1.InstanceService\",method=\"GetInstance\",code=\"{code}\"}} 1"
                )),
                "{code} missing from\n{text}"
            );
        }
    }
}
