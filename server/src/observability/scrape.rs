//! The metrics endpoint: plain HTTP/1.1 on `--metrics-listen`, `GET /metrics` and nothing
//! else. Read-only and unauthenticated, as Prometheus expects; bind it to loopback or a
//! management address.

use super::Metrics;
use crate::logging::RateLimiter;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

/// Scrapers served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;
/// A scraper has this long to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on --metrics-listen {addr}: {source}")]
pub struct ScrapeError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// The running endpoint; dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Bind now (so a bad address stops the daemon at start) and serve in the background.
    pub async fn start(addr: SocketAddr, metrics: Metrics) -> Result<MetricsServer, ScrapeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ScrapeError { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ScrapeError { addr, source })?;
        info!(%addr, "metrics at http://{addr}/metrics");
        let task = tokio::spawn(accept(listener, metrics));
        Ok(MetricsServer { addr, task })
    }

    /// Where it listens (the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, metrics: Metrics) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Owned here, so stopping the accept loop ends every connection too.
    let mut connections = JoinSet::new();
    let mut warnings = RateLimiter::new(crate::logging::DEFAULT_WINDOW);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if let Some(suppressed) = warnings.check("accept", Instant::now()) {
                    warn!(error = %e, suppressed, "accepting a metrics connection failed");
                }
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
            });
            // A scraper that goes away mid-request is its own business.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "havipd serves only /metrics here\n".into(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET /metrics\n".into(),
        );
    }
    match metrics.render() {
        Ok(text) => reply(StatusCode::OK, CONTENT_TYPE, text),
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "the metrics could not be encoded; see havipd's log\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testns::{NetNs, skip};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request, as a scraper sends it.
    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn serves_metrics_and_nothing_else() {
        if skip("serves_metrics_and_nothing_else") {
            return;
        }
        // Listener and client live in a namespace of their own, never the machine's.
        let ns = NetNs::new("scrape");
        ns.run(|| async {
            let metrics = Metrics::new();
            metrics.rpc_done(
                "/havip.v1.InstanceService/ListInstances",
                tonic::Code::Ok,
                Duration::ZERO,
            );
            let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), metrics)
                .await
                .unwrap();
            let addr = server.local_addr();
            let ok = get(addr, "/metrics").await;
            assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
            assert!(ok.contains(CONTENT_TYPE), "{ok}");
            assert!(ok.contains("method=\"ListInstances\""), "{ok}");
            let missing = get(addr, "/").await;
            assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        });
    }
}
