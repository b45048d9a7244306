//! Reaching havipd: parsing `--server`, opening the gRPC channel over a unix socket or
//! TCP, and running a unary call under `--timeout`.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::CliError;

/// A parsed `--server` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// As the user wrote it, for messages.
    pub url: String,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    /// An `http://host:port` URI.
    Http(String),
}

/// Accepts `unix:///absolute/path`, `unix:relative/path` and `http://host:port`.
pub fn parse_server(s: &str) -> Result<Server, String> {
    let target = if let Some(rest) = s.strip_prefix("unix:") {
        // `unix://` is followed by an absolute path; plain `unix:` by any path (gRPC's
        // naming rules), so `unix://run/x` is a mistake rather than a relative path.
        let path = match rest.strip_prefix("//") {
            Some(abs) if abs.starts_with('/') => abs,
            Some(_) => {
                return Err(
                    "a unix:// address needs an absolute path, e.g. unix:///run/havip/havipd.sock"
                        .to_owned(),
                );
            }
            None => rest,
        };
        if path.is_empty() {
            return Err("no socket path".to_owned());
        }
        Target::Unix(PathBuf::from(path))
    } else if s.starts_with("https://") {
        return Err(
            "TLS (https://) is not supported yet; use unix:///PATH or http://HOST:PORT".to_owned(),
        );
    } else if s.starts_with("http://") {
        let uri: Uri = s.parse().map_err(|e| format!("not a valid URL: {e}"))?;
        if uri.port_u16().is_none() {
            return Err("no port; write it as http://HOST:PORT".to_owned());
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err("havipd serves no path; write it as http://HOST:PORT".to_owned());
        }
        Target::Http(s.to_owned())
    } else {
        return Err("not a havipd address; use unix:///PATH or http://HOST:PORT".to_owned());
    };
    Ok(Server {
        url: s.to_owned(),
        target,
    })
}

/// Opens a connection now, so that an unreachable daemon is reported before any work.
pub async fn connect(server: &Server, timeout: Duration) -> Result<Channel, CliError> {
    let unreachable = |(reason, hint)| CliError::Unreachable {
        server: server.url.clone(),
        reason,
        hint,
    };
    let connecting = async {
        match &server.target {
            Target::Unix(path) => {
                let path = path.clone();
                // tonic wants a URI even for a custom connector; this one is never dialled.
                Endpoint::from_static("http://[::]:50051")
                    .connect_timeout(timeout)
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }))
                    .await
            }
            Target::Http(uri) => {
                Endpoint::from_shared(uri.clone())?
                    .connect_timeout(timeout)
                    .connect()
                    .await
            }
        }
    };
    // connect_timeout bounds only the socket's connect; this also bounds the HTTP/2
    // handshake, which a process that is not havipd may never complete.
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(unreachable(diagnose(&e))),
        Err(_) => Err(unreachable((
            format!(
                "no connection within {}",
                humantime::format_duration(timeout)
            ),
            NOT_RUNNING,
        ))),
    }
}

const NOT_RUNNING: &str = "Is havipd running? Set --server or HAVIP_SERVER.";
const NO_PERMISSION: &str = "Run havipctl as root, or as a user that may use havipd's socket.";

/// The message of the deepest error in the chain, which names the actual problem
/// ("No such file or directory") where tonic's own says only "transport error", and
/// what to do about it.
fn diagnose(error: &(dyn std::error::Error + 'static)) -> (String, &'static str) {
    let mut deepest = error;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    let Some(io) = deepest.downcast_ref::<std::io::Error>() else {
        return (deepest.to_string(), NOT_RUNNING);
    };
    let hint = if io.kind() == std::io::ErrorKind::PermissionDenied {
        NO_PERMISSION
    } else {
        NOT_RUNNING
    };
    let text = io.to_string();
    // "(os error 2)" helps nobody who reads the sentence around it.
    let reason = match io.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_owned(),
        None => text,
    };
    (reason, hint)
}

/// Runs one unary call, telling havipd the deadline too so that it can give up early.
pub async fn call<Req, Resp, F, Fut>(
    server: &Server,
    timeout: Duration,
    message: Req,
    rpc: F,
) -> Result<Resp, CliError>
where
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    match tokio::time::timeout(timeout, rpc(request)).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(CliError::from(status)),
        Err(_) => Err(CliError::Timeout {
            server: server.url.clone(),
            timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses() {
        let s = parse_server("unix:///run/havip/havipd.sock").unwrap();
        assert_eq!(s.target, Target::Unix("/run/havip/havipd.sock".into()));
        let s = parse_server("unix:havipd.sock").unwrap();
        assert_eq!(s.target, Target::Unix("havipd.sock".into()));
        assert!(parse_server("unix://run/havipd.sock").is_err());
        assert!(parse_server("unix:").is_err());
    }

    #[test]
    fn tcp_addresses() {
        let s = parse_server("http://127.0.0.1:50051").unwrap();
        assert_eq!(s.target, Target::Http("http://127.0.0.1:50051".into()));
        assert!(parse_server("http://[::1]:50051/").is_ok());
        assert!(parse_server("http://localhost").is_err());
        assert!(parse_server("http://localhost:1/api").is_err());
        assert!(parse_server("localhost:50051").is_err());
    }

    #[test]
    fn https_is_refused_until_tls_exists() {
        let err = parse_server("https://havip.example:50051").unwrap_err();
        assert!(err.contains("TLS (https://) is not supported yet"), "{err}");
    }

    #[test]
    fn a_socket_without_permission_gets_its_own_hint() {
        let denied = std::io::Error::from_raw_os_error(13);
        assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            diagnose(&denied),
            ("Permission denied".to_owned(), NO_PERMISSION)
        );
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(
            diagnose(&refused),
            ("Connection refused".to_owned(), NOT_RUNNING)
        );
    }

    #[tokio::test]
    async fn a_missing_socket_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("unix://{}/havipd.sock", dir.path().display());
        let server = parse_server(&url).unwrap();
        let err = connect(&server, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot reach havipd at {url}: No such file or directory. \
                 Is havipd running? Set --server or HAVIP_SERVER."
            )
        );
    }
}
