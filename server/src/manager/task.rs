//! The manager task: validate, commit durably, then change the running instance.

use super::groups::Group;
use super::view;
use super::{Actor, ManagerHandle, Request, Updated};
use crate::error::Error;
use crate::net::netlink::{InterfaceInfo, Netlink};
use crate::runtime::{Iface, InstanceId, InstancePlan, RuntimeHandle};
use crate::spec::{
    InterfaceFacts, Validated, Violation, apply_mask, changed_fields, check_against_interface,
    check_trackers_on_host, normalize, validate_name, validate_spec,
};
use crate::store::{ConfigCommit, InstanceIdentity, Store};
use crate::trackers::TrackerService;
use havip_proto::v1::{self, ChangeKind};
use havip_vrrp::Family;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// How many requests may wait for the manager before callers wait to hand theirs over.
const QUEUE: usize = 1024;

/// The longest the manager sleeps between looks at the wall clock, so an override still
/// lapses on time if the clock was set back or forward meanwhile.
const EXPIRY_CHECK: std::time::Duration = std::time::Duration::from_secs(30);
/// How long to wait before trying again to clear an expired override that could not be
/// committed (the database failing).
pub(super) const EXPIRY_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// One instance as configured.
pub(super) struct Managed {
    pub id: InstanceId,
    pub validated: Validated,
    pub revision: u64,
    pub create_time: SystemTime,
    pub update_time: SystemTime,
}

/// The manager's state; see the module comment of [`super`].
pub struct Manager {
    pub(super) store: Store,
    pub(super) runtime: RuntimeHandle,
    netlink: Netlink,
    pub(super) trackers: TrackerService,
    pub(super) instances: BTreeMap<String, Managed>,
    /// Sync groups by name.
    pub(super) groups: BTreeMap<String, Group>,
    next_id: u64,
    pub(super) last_revision: u64,
    /// Set after clearing an expired override failed: when to try again.
    pub(super) expiry_retry: Option<tokio::time::Instant>,
    /// Whether the restored instances were handed to the data plane (changes made while
    /// restoring only change what will be started).
    pub(super) started: bool,
    /// Keeps a failure that repeats (an override that cannot be cleared while the
    /// database fails) to one log line per window.
    pub(super) warnings: crate::logging::RateLimiter<&'static str>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("instances", &self.instances.len())
            .field("last_revision", &self.last_revision)
            .finish()
    }
}

impl Manager {
    /// Restore the stored instances, remove addresses a crashed daemon may have left
    /// behind, start the instances, and serve requests.
    pub async fn start(
        store: Store,
        runtime: RuntimeHandle,
        netlink: Netlink,
        host_ops: crate::runtime::HostOpsHandle,
        trackers: TrackerService,
    ) -> Result<ManagerHandle, crate::store::StoreError> {
        let stored = store.load_instances().await?;
        let stored_groups = store.load_sync_groups().await?;
        let mut manager = Manager {
            last_revision: store.last_revision(),
            store,
            runtime,
            netlink,
            trackers,
            instances: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_id: 1,
            expiry_retry: None,
            started: false,
            warnings: crate::logging::RateLimiter::new(crate::logging::DEFAULT_WINDOW),
        };
        let mut plans = Vec::new();
        for s in stored {
            let name = s.name.clone();
            let validated = match validate_spec(normalize(s.spec)) {
                Ok(v) => v,
                Err(e) => {
                    error!(instance = %name, error = %e, "a stored instance does not validate with this version of havipd; it is not loaded (run the version that created it, or remove it from the database)");
                    continue;
                }
            };
            let id = manager.new_id();
            let iface = manager.lookup(&validated.interface).await.ok().flatten();
            if let Some(info) = &iface
                && !validated.is_address_owner()
            {
                let vips = crate::runtime::vips_to_install(&validated);
                host_ops.remove_addresses(info.index, vips).await;
            }
            plans.push(InstancePlan {
                id,
                name: Arc::from(name.as_str()),
                spec: validated.clone(),
                iface: iface.as_ref().map(iface_of),
            });
            manager.instances.insert(
                name,
                Managed {
                    id,
                    validated,
                    revision: s.revision,
                    create_time: s.create_time,
                    update_time: s.update_time,
                },
            );
        }
        manager.restore_groups(stored_groups);
        // Overrides that lapsed while the daemon was down are cleared before anything
        // starts, so no instance runs with one even briefly.
        manager.expire_overrides().await;
        for plan in &mut plans {
            if let Some(m) = manager.instances.get(&*plan.name) {
                plan.spec = m.validated.clone();
            }
        }
        let restored = plans.len();
        manager.started = true;
        for plan in plans {
            let trackers = plan.spec.trackers.clone();
            let (id, name) = (plan.id, plan.name.clone());
            if let Err(e) = manager.runtime.start(plan) {
                error!(error = %e, "cannot start a restored instance");
            }
            manager.trackers.configure(id, name, trackers);
        }
        info!(
            instances = restored,
            sync_groups = manager.groups.len(),
            "instances restored from the store"
        );
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(manager.run(rx));
        Ok(ManagerHandle { requests: tx })
    }

    fn new_id(&mut self) -> InstanceId {
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        id
    }

    pub(super) fn new_revision(&self) -> u64 {
        self.last_revision + 1
    }

    /// The next request; meanwhile, overrides that lapse are cleared.
    async fn next_request(&mut self, requests: &mut mpsc::Receiver<Request>) -> Option<Request> {
        loop {
            let now = SystemTime::now();
            let wait = match (self.next_expiry(), self.expiry_retry) {
                (None, _) => return requests.recv().await,
                (Some(_), Some(retry)) => {
                    retry.saturating_duration_since(tokio::time::Instant::now())
                }
                (Some(at), None) => at.duration_since(now).unwrap_or_default(),
            };
            tokio::select! {
                r = requests.recv() => return r,
                () = tokio::time::sleep(wait.min(EXPIRY_CHECK)) => {
                    self.expiry_retry = None;
                    self.expire_overrides().await;
                }
            }
        }
    }

    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        while let Some(request) = self.next_request(&mut requests).await {
            match request {
                Request::Create {
                    name,
                    spec,
                    validate_only,
                    actor,
                    comment,
                    reply,
                } => {
                    let r = self.create(name, spec, validate_only, actor, comment).await;
                    let _ = reply.send(r);
                }
                Request::Update {
                    name,
                    spec,
                    mask,
                    expected_revision,
                    validate_only,
                    actor,
                    comment,
                    reply,
                } => {
                    let r = self
                        .update(
                            name,
                            spec,
                            mask,
                            expected_revision,
                            validate_only,
                            actor,
                            comment,
                        )
                        .await;
                    let _ = reply.send(r);
                }
                Request::Delete {
                    name,
                    expected_revision,
                    actor,
                    comment,
                    reply,
                } => {
                    let r = self.delete(name, expected_revision, actor, comment).await;
                    let _ = reply.send(r);
                }
                Request::Get { name, reply } => {
                    let r = self
                        .instances
                        .get(&name)
                        .map(|m| self.view(&name, m))
                        .ok_or_else(|| not_found(&name));
                    let _ = reply.send(r);
                }
                Request::List { labels, reply } => {
                    let list = self
                        .instances
                        .iter()
                        .filter(|(_, m)| {
                            labels
                                .iter()
                                .all(|(k, v)| m.validated.spec.labels.get(k) == Some(v))
                        })
                        .map(|(name, m)| self.view(name, m))
                        .collect();
                    let _ = reply.send(list);
                }
                Request::Override {
                    name,
                    kind,
                    priority,
                    duration,
                    reason,
                    actor,
                    reply,
                } => {
                    let r = self
                        .set_override(name, kind, priority, duration, reason, actor)
                        .await;
                    let _ = reply.send(r);
                }
                Request::ClearOverride {
                    name,
                    reason,
                    actor,
                    reply,
                } => {
                    let r = self.clear_override(name, reason, actor).await;
                    let _ = reply.send(r);
                }
                Request::CreateGroup {
                    group,
                    actor,
                    comment,
                    reply,
                } => {
                    let r = self.create_group(group, actor, comment).await;
                    let _ = reply.send(r);
                }
                Request::UpdateGroup {
                    group,
                    expected_revision,
                    actor,
                    comment,
                    reply,
                } => {
                    let r = self
                        .update_group(group, expected_revision, actor, comment)
                        .await;
                    let _ = reply.send(r);
                }
                Request::DeleteGroup {
                    name,
                    actor,
                    comment,
                    reply,
                } => {
                    let r = self.delete_group(name, actor, comment).await;
                    let _ = reply.send(r);
                }
                Request::GetGroup { name, reply } => {
                    let _ = reply.send(self.get_group(&name));
                }
                Request::ListGroups { reply } => {
                    let _ = reply.send(self.list_groups());
                }
                Request::Shutdown { reply } => {
                    if let Err(e) = self.runtime.shutdown().await {
                        warn!(error = %e, "the data plane was already gone at shutdown");
                    }
                    let _ = reply.send(());
                    break;
                }
            }
        }
    }

    pub(super) fn view(&self, name: &str, m: &Managed) -> v1::Instance {
        view::instance(
            name,
            m,
            self.runtime.board().get(m.id).as_deref(),
            self.group_of(name),
        )
    }

    pub(super) async fn lookup(&self, interface: &str) -> Result<Option<InterfaceInfo>, Error> {
        self.netlink
            .interface(interface)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot query interface {interface}: {e}")))
    }

    /// Validate a spec completely: on its own, against the other instances, and against
    /// its interface. `except` is the instance being updated.
    async fn check(
        &self,
        spec: v1::InstanceSpec,
        except: Option<&str>,
    ) -> Result<(Validated, InterfaceInfo), Error> {
        let validated = validate_spec(normalize(spec))?;
        let old = except
            .and_then(|n| self.instances.get(n))
            .map(|m| &m.validated);
        if let Some(o) = &validated.priority_override
            && old.and_then(|m| m.priority_override.as_ref()) != Some(o)
            && o.expires.is_some_and(|t| t <= SystemTime::now())
        {
            return Err(Violation::new(
                "spec.priority_override.expires",
                "is in the past; give a time to come, or no expiry",
            )
            .into());
        }
        check_trackers_host(&validated, old).await?;
        let identity = validated.identity();
        if let Some((other, _)) = self
            .instances
            .iter()
            .find(|(n, m)| Some(n.as_str()) != except && m.validated.identity() == identity)
        {
            return Err(Error::AlreadyExists(format!(
                "instance {other} already runs VRID {} for {} on {}; use another VRID or update {other}",
                identity.1, identity.2, identity.0
            )));
        }
        let Some(info) = self.lookup(&validated.interface).await? else {
            return Err(Error::Precondition(format!(
                "interface {} does not exist on this host (in havipd's network namespace); create it first or name an existing one",
                validated.interface
            )));
        };
        let facts = self.facts(&info, &validated, except);
        check_against_interface(&validated, &facts)?;
        Ok((validated, info))
    }

    /// The interface's addresses, and the one an instance without a configured source
    /// would send from: never a virtual address of any instance here.
    fn facts(
        &self,
        info: &InterfaceInfo,
        validated: &Validated,
        except: Option<&str>,
    ) -> InterfaceFacts {
        let addresses: Vec<IpAddr> = info.addresses.iter().map(|a| a.addr).collect();
        let vips_here: Vec<IpAddr> = self
            .instances
            .iter()
            .filter(|(n, m)| Some(n.as_str()) != except && m.validated.interface == info.name)
            .flat_map(|(_, m)| m.validated.vips.iter().map(|v| v.addr))
            .chain(validated.vips.iter().map(|v| v.addr))
            .collect();
        let primary = addresses.iter().copied().find(|a| {
            Family::of(a) == validated.family
                && !vips_here.contains(a)
                && match a {
                    IpAddr::V6(v6) => havip_vrrp::config::is_link_local(v6),
                    IpAddr::V4(_) => true,
                }
        });
        InterfaceFacts { addresses, primary }
    }

    fn preview(&self, name: &str, validated: Validated, revision: u64) -> v1::Instance {
        let m = Managed {
            id: InstanceId(0),
            validated,
            revision,
            create_time: SystemTime::now(),
            update_time: SystemTime::now(),
        };
        view::instance(name, &m, None, self.group_of(name))
    }

    async fn create(
        &mut self,
        name: String,
        spec: v1::InstanceSpec,
        validate_only: bool,
        actor: Actor,
        comment: String,
    ) -> Result<v1::Instance, Error> {
        validate_name(&name)?;
        if self.instances.contains_key(&name) {
            return Err(Error::AlreadyExists(format!(
                "instance {name} already exists; change it with update-instance or pick another name"
            )));
        }
        let (validated, info) = self.check(spec, None).await?;
        if validate_only {
            return Ok(self.preview(&name, validated, 0));
        }
        let trackers = validated.trackers.clone();
        let revision = self.last_revision + 1;
        let now = SystemTime::now();
        self.store
            .commit_config(ConfigCommit {
                kind: ChangeKind::Create,
                instance: name.clone(),
                revision,
                actor: actor.0,
                comment,
                changed_fields: Vec::new(),
                old_spec: None,
                new_spec: Some(validated.spec.clone()),
                identity: Some(identity_of(&validated)),
                time: now,
            })
            .await
            .map_err(store_error)?;
        self.last_revision = revision;
        let id = self.new_id();
        let plan = InstancePlan {
            id,
            name: Arc::from(name.as_str()),
            spec: validated.clone(),
            iface: Some(iface_of(&info)),
        };
        self.instances.insert(
            name.clone(),
            Managed {
                id,
                validated,
                revision,
                create_time: now,
                update_time: now,
            },
        );
        self.runtime.start(plan)?;
        // After the plan, so the data plane knows the trackers before their results come.
        self.trackers
            .configure(id, Arc::from(name.as_str()), trackers);
        info!(instance = %name, revision, "instance created");
        let m = self.instances.get(&name).ok_or_else(|| not_found(&name))?;
        Ok(self.view(&name, m))
    }

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &mut self,
        name: String,
        patch: v1::InstanceSpec,
        mask: Vec<String>,
        expected_revision: u64,
        validate_only: bool,
        actor: Actor,
        comment: String,
    ) -> Result<Updated, Error> {
        let current = self.instances.get(&name).ok_or_else(|| not_found(&name))?;
        if expected_revision != 0 && expected_revision != current.revision {
            return Err(Error::StaleRevision {
                name,
                current: current.revision,
                expected: expected_revision,
            });
        }
        let old_spec = current.validated.spec.clone();
        let merged = apply_mask(&old_spec, patch, &mask)?;
        let (validated, info) = self.check(merged, Some(&name)).await?;
        let changed = changed_fields(&old_spec, &validated.spec);
        let current = self.instances.get(&name).ok_or_else(|| not_found(&name))?;
        if changed.is_empty() {
            return Ok(Updated {
                instance: self.view(&name, current),
                changed_fields: changed,
            });
        }
        if validate_only {
            return Ok(Updated {
                instance: self.preview(&name, validated, current.revision),
                changed_fields: changed,
            });
        }
        let revision = self.last_revision + 1;
        let now = SystemTime::now();
        self.store
            .commit_config(ConfigCommit {
                kind: ChangeKind::Update,
                instance: name.clone(),
                revision,
                actor: actor.0,
                comment,
                changed_fields: changed.clone(),
                old_spec: Some(old_spec),
                new_spec: Some(validated.spec.clone()),
                identity: Some(identity_of(&validated)),
                time: now,
            })
            .await
            .map_err(store_error)?;
        self.last_revision = revision;
        let m = self
            .instances
            .get_mut(&name)
            .ok_or_else(|| not_found(&name))?;
        m.validated = validated.clone();
        m.revision = revision;
        m.update_time = now;
        let id = m.id;
        let trackers = validated.trackers.clone();
        let plan = InstancePlan {
            id,
            name: Arc::from(name.as_str()),
            spec: validated,
            iface: Some(iface_of(&info)),
        };
        self.runtime.update(plan)?;
        self.trackers
            .configure(id, Arc::from(name.as_str()), trackers);
        info!(instance = %name, revision, changed = ?changed, "instance updated");
        let m = self.instances.get(&name).ok_or_else(|| not_found(&name))?;
        Ok(Updated {
            instance: self.view(&name, m),
            changed_fields: changed,
        })
    }

    async fn delete(
        &mut self,
        name: String,
        expected_revision: u64,
        actor: Actor,
        comment: String,
    ) -> Result<(), Error> {
        let current = self.instances.get(&name).ok_or_else(|| not_found(&name))?;
        if expected_revision != 0 && expected_revision != current.revision {
            return Err(Error::StaleRevision {
                name,
                current: current.revision,
                expected: expected_revision,
            });
        }
        if let Some(group) = self.group_of(&name) {
            return Err(Error::Precondition(format!(
                "instance {name} belongs to sync group {group}; remove it from the group (update-sync-group) or delete the group first"
            )));
        }
        let revision = self.last_revision + 1;
        self.store
            .commit_config(ConfigCommit {
                kind: ChangeKind::Delete,
                instance: name.clone(),
                revision,
                actor: actor.0,
                comment,
                changed_fields: Vec::new(),
                old_spec: Some(current.validated.spec.clone()),
                new_spec: None,
                identity: None,
                time: SystemTime::now(),
            })
            .await
            .map_err(store_error)?;
        self.last_revision = revision;
        if let Some(m) = self.instances.remove(&name) {
            self.trackers.remove(m.id);
            self.runtime.stop(m.id).await?;
        }
        info!(instance = %name, revision, "instance deleted");
        Ok(())
    }
}

/// The host-dependent tracker rules (script security, users), off the async workers. Only
/// trackers that are new or changed are checked.
async fn check_trackers_host(validated: &Validated, old: Option<&Validated>) -> Result<(), Error> {
    let accepted: Vec<crate::spec::TrackerSpec> =
        old.map(|o| o.trackers.clone()).unwrap_or_default();
    let validated = validated.clone();
    tokio::task::spawn_blocking(move || {
        check_trackers_on_host(&validated, |t| accepted.contains(t))
    })
    .await
    .map_err(|e| Error::Internal(format!("checking the trackers failed: {e}")))?
    .map_err(Error::from)
}

pub(super) fn not_found(name: &str) -> Error {
    Error::NotFound(format!(
        "instance {name} does not exist; list-instances shows the ones that do"
    ))
}

pub(super) fn store_error(e: crate::store::StoreError) -> Error {
    if e.is_unavailable() {
        Error::Unavailable(format!("the change was not made: {e}"))
    } else {
        Error::Internal(format!("the change was not made: {e}"))
    }
}

pub(super) fn identity_of(v: &Validated) -> InstanceIdentity {
    InstanceIdentity {
        interface: v.interface.clone(),
        vrid: v.vrid.get(),
        family: match v.family {
            Family::Ipv4 => 4,
            Family::Ipv6 => 6,
        },
    }
}

pub(crate) fn iface_of(info: &InterfaceInfo) -> Iface {
    Iface {
        index: info.index,
        name: info.name.clone(),
        up: info.up,
        mac: info.mac,
        addresses: info
            .addresses
            .iter()
            .map(|a| (a.addr, a.prefix_len))
            .collect(),
    }
}
