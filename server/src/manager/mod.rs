//! The manager: the single writer of configuration. Every RPC that reads or changes
//! instances becomes a request to this one task, so validation, the durable commit and
//! the change to the running instance happen in one order with no locks spread across
//! handlers (GoBGP's mgmtOperation, holo's northbound callbacks).

mod groups;
mod overrides;
mod task;
mod view;

pub use overrides::EXPIRED_COMMENT;
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

/// Which way an operator moves an instance's priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideKind {
    /// Default priority 1: a backup takes over (with preemption).
    Demote,
    /// Default priority 254: this router takes over (with preemption).
    Promote,
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
    Override {
        name: String,
        kind: OverrideKind,
        priority: Option<u32>,
        duration: Option<std::time::Duration>,
        reason: String,
        actor: Actor,
        reply: oneshot::Sender<Result<v1::Instance, Error>>,
    },
    ClearOverride {
        name: String,
        reason: String,
        actor: Actor,
        reply: oneshot::Sender<Result<v1::Instance, Error>>,
    },
    CreateGroup {
        group: v1::SyncGroup,
        actor: Actor,
        comment: String,
        reply: oneshot::Sender<Result<v1::SyncGroup, Error>>,
    },
    UpdateGroup {
        group: v1::SyncGroup,
        expected_revision: u64,
        actor: Actor,
        comment: String,
        reply: oneshot::Sender<Result<v1::SyncGroup, Error>>,
    },
    DeleteGroup {
        name: String,
        actor: Actor,
        comment: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    GetGroup {
        name: String,
        reply: oneshot::Sender<Result<v1::SyncGroup, Error>>,
    },
    ListGroups {
        reply: oneshot::Sender<Vec<v1::SyncGroup>>,
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

    /// Demote or promote an instance: a priority override, as a config change. `duration`
    /// `None` lasts until cleared.
    pub async fn set_override(
        &self,
        name: String,
        kind: OverrideKind,
        priority: Option<u32>,
        duration: Option<std::time::Duration>,
        reason: String,
        actor: Actor,
    ) -> Result<v1::Instance, Error> {
        self.ask(|reply| Request::Override {
            name,
            kind,
            priority,
            duration,
            reason,
            actor,
            reply,
        })
        .await?
    }

    /// Lift an instance's override (nothing changes when it has none).
    pub async fn clear_override(
        &self,
        name: String,
        reason: String,
        actor: Actor,
    ) -> Result<v1::Instance, Error> {
        self.ask(|reply| Request::ClearOverride {
            name,
            reason,
            actor,
            reply,
        })
        .await?
    }

    pub async fn create_group(
        &self,
        group: v1::SyncGroup,
        actor: Actor,
        comment: String,
    ) -> Result<v1::SyncGroup, Error> {
        self.ask(|reply| Request::CreateGroup {
            group,
            actor,
            comment,
            reply,
        })
        .await?
    }

    pub async fn update_group(
        &self,
        group: v1::SyncGroup,
        expected_revision: u64,
        actor: Actor,
        comment: String,
    ) -> Result<v1::SyncGroup, Error> {
        self.ask(|reply| Request::UpdateGroup {
            group,
            expected_revision,
            actor,
            comment,
            reply,
        })
        .await?
    }

    pub async fn delete_group(
        &self,
        name: String,
        actor: Actor,
        comment: String,
    ) -> Result<(), Error> {
        self.ask(|reply| Request::DeleteGroup {
            name,
            actor,
            comment,
            reply,
        })
        .await?
    }

    pub async fn get_group(&self, name: String) -> Result<v1::SyncGroup, Error> {
        self.ask(|reply| Request::GetGroup { name, reply }).await?
    }

    pub async fn list_groups(&self) -> Result<Vec<v1::SyncGroup>, Error> {
        self.ask(|reply| Request::ListGroups { reply }).await
    }

    /// Stop every instance (priority 0, addresses removed) and the manager.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.ask(|reply| Request::Shutdown { reply }).await
    }
}
