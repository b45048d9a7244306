//! Who made a request, for the audit history: the unix peer's uid (SO_PEERCRED), or the
//! TCP peer's address.

use crate::manager::Actor;
use tonic::Request;
use tonic::transport::server::{TcpConnectInfo, UdsConnectInfo};

pub(super) fn of<T>(request: &Request<T>) -> Actor {
    if let Some(info) = request.extensions().get::<UdsConnectInfo>() {
        if let Some(cred) = info.peer_cred {
            return Actor(format!("uid:{}", cred.uid()));
        }
        return Actor("unix:unknown".into());
    }
    if let Some(info) = request.extensions().get::<TcpConnectInfo>()
        && let Some(addr) = info.remote_addr
    {
        return Actor(format!("tcp:{addr}"));
    }
    Actor("unknown".into())
}
