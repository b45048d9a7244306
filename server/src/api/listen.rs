//! Where the API listens: a unix socket (the default, access by file permissions and
//! SO_PEERCRED) or TCP (TLS, see `tls.rs`). Binding comes first, so that readiness is
//! announced only once the API can be reached.

use super::ApiError;
use nix::unistd::{Gid, Group};
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::str::FromStr;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
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

/// A listener bound by [`Listen::bind`], served by [`super::serve`].
#[derive(Debug)]
pub struct Bound {
    listen: Listen,
    incoming: Incoming,
}

#[derive(Debug)]
enum Incoming {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

/// The gid `--socket-group` names: a group name, or a number.
pub fn resolve_group(name: &str) -> Result<Gid, ApiError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Gid::from_raw(gid));
    }
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(ApiError::Refused(format!(
            "--socket-group {name:?}: no such group; create it (groupadd {name}) or give an existing group or gid"
        ))),
        Err(e) => Err(ApiError::Refused(format!(
            "--socket-group {name:?}: cannot look the group up: {e}"
        ))),
    }
}

impl Listen {
    /// Bind the listener. A unix socket's folder is created if missing and must be safe
    /// (see [`crate::fsguard`]); a socket left by a crash is replaced; the socket gets
    /// mode 0660 and, with `group`, that group.
    pub async fn bind(&self, group: Option<Gid>) -> Result<Bound, ApiError> {
        let io_err = |source| ApiError::Listen {
            listen: self.to_string(),
            source,
        };
        let incoming = match self {
            Listen::Unix(path) => {
                // 0750: members of --socket-group must reach the socket.
                crate::fsguard::prepare_parent(path, "--listen", 0o750)?;
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
                if let Some(gid) = group {
                    std::os::unix::fs::chown(path, None, Some(gid.as_raw())).map_err(|e| {
                        ApiError::Refused(format!(
                            "cannot give {} to group {gid} (--socket-group): {e}",
                            path.display()
                        ))
                    })?;
                }
                Incoming::Unix(listener, path.clone())
            }
            Listen::Tcp(addr) => Incoming::Tcp(TcpListener::bind(addr).await.map_err(io_err)?),
        };
        info!(listen = %self, "API listening");
        Ok(Bound {
            listen: self.clone(),
            incoming,
        })
    }
}

impl Bound {
    pub fn listen(&self) -> &Listen {
        &self.listen
    }

    pub(super) async fn serve(
        self,
        router: super::ApiRouter,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ApiError> {
        match self.incoming {
            Incoming::Unix(listener, path) => {
                let result = router
                    .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                    .await;
                let _ = std::fs::remove_file(path);
                Ok(result?)
            }
            Incoming::Tcp(listener) => Ok(router
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                .await?),
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

    #[test]
    fn socket_groups_by_name_or_number() {
        assert_eq!(resolve_group("0").unwrap(), Gid::from_raw(0));
        assert_eq!(resolve_group("root").unwrap(), Gid::from_raw(0));
        let err = resolve_group("no-such-group-havip")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such group"), "{err}");
    }
}
