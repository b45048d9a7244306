//! The manager: the single writer of configuration. Every RPC that reads or changes
//! instances becomes a request to this one task, so validation, the durable commit and
//! the change to the running instance happen in one order with no locks spread across
//! handlers (GoBGP's mgmtOperation, holo's northbound callbacks).

mod task;
mod view;

pub use task::Manager;
pub(crate) use task::iface_of;

use crate::error::Error;
use havip_proto::v1;
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};

/// Who asked: "uid:0" over the unix socket, a certificate subject over mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn daemon() -> Self {
        Actor("havipd".into())
    }
}

/// The result of an update.
#[derive(Clone, Debug)]
pub struct Updated {
    pub instance: v1::Instance,
    pub changed_fields: Vec<String>,
}

pub(crate) enum Request {
    Create {
        name: String,
        spec: v1::InstanceSpec,
        validate_only: bool,
        actor: Actor,
        comment: String,
        reply: oneshot::Sender<Result<v1::Instance, Error>>,
    },
    Update {
        name: String,
        spec: v1::InstanceSpec,
        mask: Vec<String>,
        expected_revision: u64,
        validate_only: bool,
        actor: Actor,
        comment: String,
        reply: oneshot::Sender<Result<Updated, Error>>,
    },
    Delete {
        name: String,
        expected_revision: u64,
        actor: Actor,
        comment: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Get {
        name: String,
        reply: oneshot::Sender<Result<v1::Instance, Error>>,
    },
    List {
        labels: BTreeMap<String, String>,
        reply: oneshot::Sender<Vec<v1::Instance>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// How the API talks to the manager.
#[derive(Clone, Debug)]
pub struct ManagerHandle {
    requests: mpsc::Sender<Request>,
}

fn gone() -> Error {
    Error::Unavailable("havipd is shutting down; retry once it is back".into())
}

impl ManagerHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(make(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }

    pub async fn create(
        &self,
        name: String,
        spec: v1::InstanceSpec,
        validate_only: bool,
        actor: Actor,
        comment: String,
    ) -> Result<v1::Instance, Error> {
        self.ask(|reply| Request::Create {
            name,
            spec,
            validate_only,
            actor,
            comment,
            reply,
        })
        .await?
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        name: String,
        spec: v1::InstanceSpec,
        mask: Vec<String>,
        expected_revision: u64,
        validate_only: bool,
        actor: Actor,
        comment: String,
    ) -> Result<Updated, Error> {
        self.ask(|reply| Request::Update {
            name,
            spec,
            mask,
            expected_revision,
            validate_only,
            actor,
            comment,
            reply,
        })
        .await?
    }

    pub async fn delete(
        &self,
        name: String,
        expected_revision: u64,
        actor: Actor,
        comment: String,
    ) -> Result<(), Error> {
        self.ask(|reply| Request::Delete {
            name,
            expected_revision,
            actor,
            comment,
            reply,
        })
        .await?
    }

    pub async fn get(&self, name: String) -> Result<v1::Instance, Error> {
        self.ask(|reply| Request::Get { name, reply }).await?
    }

    pub async fn list(&self, labels: BTreeMap<String, String>) -> Result<Vec<v1::Instance>, Error> {
        self.ask(|reply| Request::List { labels, reply }).await
    }

    /// Stop every instance (priority 0, addresses removed) and the manager.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.ask(|reply| Request::Shutdown { reply }).await
    }
}
