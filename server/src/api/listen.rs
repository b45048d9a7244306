//! Where the API listens: a unix socket (the default, access by file permissions and
//! SO_PEERCRED) or TCP.

use super::ApiError;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::str::FromStr;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::server::Router;
use tracing::info;

/// The default API address.
pub const DEFAULT_LISTEN: &str = "unix:///run/havip/havipd.sock";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if path.is_empty() {
                return Err(format!("{s:?}: the unix socket path is empty"));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            return addr.parse().map(Listen::Tcp).map_err(|_| {
                format!(
                    "{s:?}: expected tcp://HOST:PORT with an IP address, e.g. tcp://127.0.0.1:50051"
                )
            });
        }
        Err(format!(
            "{s:?} is not a listen address: use unix:///path/to/socket or tcp://HOST:PORT"
        ))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
            Listen::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

impl Listen {
    pub(super) async fn serve(
        &self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ApiError> {
        let io_err = |source| ApiError::Listen {
            listen: self.to_string(),
            source,
        };
        match self {
            Listen::Unix(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io_err)?;
                }
                if path.exists() {
                    // A socket file left by a crash is removed; one that answers is in use.
                    if tokio::net::UnixStream::connect(path).await.is_ok() {
                        return Err(ApiError::InUse(self.to_string()));
                    }
                    std::fs::remove_file(path).map_err(io_err)?;
                }
                let listener = UnixListener::bind(path).map_err(io_err)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                    .map_err(io_err)?;
                info!(listen = %self, "API listening");
                let result = router
                    .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                    .await;
                let _ = std::fs::remove_file(path);
                Ok(result?)
            }
            Listen::Tcp(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(io_err)?;
                info!(listen = %self, "API listening");
                Ok(router
                    .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                    .await?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp_and_refuses_the_rest() {
        assert_eq!(
            DEFAULT_LISTEN.parse(),
            Ok(Listen::Unix("/run/havip/havipd.sock".into()))
        );
        assert_eq!(
            "unix:/tmp/x.sock".parse(),
            Ok(Listen::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(
            "tcp://127.0.0.1:50051".parse(),
            Ok(Listen::Tcp("127.0.0.1:50051".parse().unwrap()))
        );
        assert!("tcp://localhost:1".parse::<Listen>().is_err());
        assert!("http://x".parse::<Listen>().is_err());
        assert!("unix://".parse::<Listen>().is_err());
    }
}
