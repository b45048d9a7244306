//! Who made a request, for the audit history: the unix peer's uid (SO_PEERCRED), the
//! subject of the client certificate over mutual TLS, or the TCP peer's address.

use crate::manager::Actor;
use tonic::Request;
use tonic::transport::server::UdsConnectInfo;

pub(super) fn of<T>(request: &Request<T>) -> Actor {
    if let Some(info) = request.extensions().get::<UdsConnectInfo>() {
        if let Some(cred) = info.peer_cred {
            return Actor(format!("uid:{}", cred.uid()));
        }
        return Actor("unix:unknown".into());
    }
    // Present only over TLS with a client CA, after rustls verified the chain.
    if let Some(certs) = request.peer_certs()
        && let Some(leaf) = certs.first()
    {
        return match super::tls::subject(leaf) {
            Some(subject) => Actor(format!("cert:{subject}")),
            None => Actor("cert:unreadable".into()),
        };
    }
    if let Some(addr) = request.remote_addr() {
        return Actor(format!("tcp:{addr}"));
    }
    Actor("unknown".into())
}
