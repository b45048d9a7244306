//! Reaching havipd: parsing `--server`, opening the gRPC channel over a unix socket, TLS
//! (`https://`, with a client certificate for mutual TLS) or plain TCP to a loopback
//! address (`http://`), and running a unary call under `--timeout`.

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::error::CliError;

/// A parsed `--server` value, with the TLS files that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// As the user wrote it, for messages.
    pub url: String,
    pub target: Target,
    /// From --tls-ca, --tls-cert and --tls-key; used with an https:// target only.
    pub tls: ClientTls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    /// An `http://host:port` URI to a loopback address: havipd with `--insecure`.
    Http(String),
    /// An `https://host:port` URI; `host` is the name havipd's certificate must carry.
    Https {
        uri: String,
        host: String,
    },
}

/// The client side of TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA that signed havipd's certificate; the system's CAs when absent.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTls {
    fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

impl Server {
    /// Attach the TLS files; refuses them for a target that does not use TLS, and a
    /// certificate without its key (or the reverse).
    pub fn with_tls(mut self, tls: ClientTls) -> Result<Server, CliError> {
        if tls.is_set() && !matches!(self.target, Target::Https { .. }) {
            return Err(CliError::Invalid(format!(
                "--tls-ca, --tls-cert and --tls-key are for an https:// server, but --server is {}",
                self.url
            )));
        }
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(CliError::Invalid(
                "a client certificate needs its key: give both --tls-cert and --tls-key".into(),
            ));
        }
        self.tls = tls;
        Ok(self)
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Accepts `unix:///absolute/path`, `unix:relative/path`, `https://host:port` and
/// `http://host:port` with a loopback host.
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
    } else if let Some(scheme) = ["https", "http"]
        .into_iter()
        .find(|scheme| s.starts_with(&format!("{scheme}://")))
    {
        let uri: Uri = s.parse().map_err(|e| format!("not a valid URL: {e}"))?;
        if uri.port_u16().is_none() {
            return Err(format!("no port; write it as {scheme}://HOST:PORT"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!(
                "havipd serves no path; write it as {scheme}://HOST:PORT"
            ));
        }
        let host = uri.host().unwrap_or_default().to_owned();
        if scheme == "https" {
            Target::Https {
                uri: s.to_owned(),
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            }
        } else if is_loopback(&host) {
            Target::Http(s.to_owned())
        } else {
            return Err(format!(
                "plain http:// is only for a havipd on this host (a loopback address, havipd --insecure); {host} needs https://{host}:PORT with --tls-ca"
            ));
        }
    } else {
        return Err(
            "not a havipd address; use unix:///PATH, https://HOST:PORT or http://127.0.0.1:PORT"
                .to_owned(),
        );
    };
    Ok(Server {
        url: s.to_owned(),
        target,
        tls: ClientTls::default(),
    })
}

fn read_pem(flag: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::ReadFile {
        path: format!("{flag} {}", path.display()),
        source,
    })
}

fn tls_config(host: &str, tls: &ClientTls) -> Result<ClientTlsConfig, CliError> {
    let mut config = ClientTlsConfig::new().domain_name(host);
    config = match &tls.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read_pem("--tls-ca", ca)?)),
        None => config.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        config = config.identity(Identity::from_pem(
            read_pem("--tls-cert", cert)?,
            read_pem("--tls-key", key)?,
        ));
    }
    Ok(config)
}

/// Opens a connection now, so that an unreachable daemon is reported before any work.
pub async fn connect(server: &Server, timeout: Duration) -> Result<Channel, CliError> {
    let unreachable = |(reason, hint)| CliError::Unreachable {
        server: server.url.clone(),
        reason,
        hint,
    };
    // Read the TLS files before connecting, so a missing one is named as such.
    let tls = match &server.target {
        Target::Https { host, .. } => Some(tls_config(host, &server.tls)?),
        _ => None,
    };
    let https = tls.is_some();
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
            Target::Https { uri, .. } => {
                Endpoint::from_shared(uri.clone())?
                    .tls_config(tls.clone().unwrap_or_else(ClientTlsConfig::new))?
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
        Ok(Err(e)) => Err(unreachable(diagnose(&e, https))),
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
const TLS_FAILED: &str = "Check --tls-ca (the CA that signed havipd's certificate, whose names must include the server's host) and, if havipd wants client certificates, --tls-cert and --tls-key.";

/// Whether a connection error is TLS refusing (a certificate, a handshake) rather than
/// the network.
fn is_tls_failure(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "certificate",
        "handshake",
        "tls",
        "alert",
        "unknownissuer",
        "notvalidforname",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// The message of the deepest error in the chain, which names the actual problem
/// ("No such file or directory") where tonic's own says only "transport error", and
/// what to do about it.
fn diagnose(error: &(dyn std::error::Error + 'static), https: bool) -> (String, &'static str) {
    let mut deepest = error;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    if https && is_tls_failure(&deepest.to_string()) {
        return (deepest.to_string(), TLS_FAILED);
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
        assert!(parse_server("http://localhost:50051").is_ok());
        assert!(parse_server("http://localhost").is_err());
        assert!(parse_server("http://localhost:1/api").is_err());
        assert!(parse_server("localhost:50051").is_err());
    }

    #[test]
    fn plain_http_is_for_loopback_and_https_for_the_rest() {
        let err = parse_server("http://10.0.0.1:50051").unwrap_err();
        assert!(err.contains("https://10.0.0.1:PORT"), "{err}");
        let s = parse_server("https://havip.example:50051").unwrap();
        assert_eq!(
            s.target,
            Target::Https {
                uri: "https://havip.example:50051".into(),
                host: "havip.example".into()
            }
        );
        let s = parse_server("https://[2001:db8::1]:50051").unwrap();
        assert!(matches!(s.target, Target::Https { ref host, .. } if host == "2001:db8::1"));
        assert!(parse_server("https://havip.example").is_err());
    }

    #[test]
    fn tls_files_only_with_https_and_a_key_with_its_certificate() {
        let ca = ClientTls {
            ca: Some("ca.pem".into()),
            ..ClientTls::default()
        };
        let unix = parse_server("unix:///run/havip/havipd.sock").unwrap();
        let err = unix.with_tls(ca.clone()).unwrap_err().to_string();
        assert!(err.contains("are for an https:// server"), "{err}");
        let https = parse_server("https://h:1").unwrap();
        assert!(https.clone().with_tls(ca).is_ok());
        let half = ClientTls {
            cert: Some("c.pem".into()),
            ..ClientTls::default()
        };
        let err = https.with_tls(half).unwrap_err().to_string();
        assert!(err.contains("give both --tls-cert and --tls-key"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_tls_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let server = parse_server("https://havip.example:50051")
            .unwrap()
            .with_tls(ClientTls {
                ca: Some(dir.path().join("ca.pem")),
                ..ClientTls::default()
            })
            .unwrap();
        let err = connect(&server, Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read --tls-ca "), "{err}");
        assert!(err.contains("ca.pem"), "{err}");
    }

    #[test]
    fn a_socket_without_permission_gets_its_own_hint() {
        let denied = std::io::Error::from_raw_os_error(13);
        assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            diagnose(&denied, false),
            ("Permission denied".to_owned(), NO_PERMISSION)
        );
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(
            diagnose(&refused, true),
            ("Connection refused".to_owned(), NOT_RUNNING)
        );
        let untrusted = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(diagnose(&untrusted, true).1, TLS_FAILED);
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
