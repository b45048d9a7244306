//! Sync groups (keepalived's vrrp_sync_group) as configuration: validated, committed with a
//! revision and a history entry, restored at start, and handed to the data plane, which
//! makes the members change state together.

use super::Actor;
use super::task::{Manager, store_error};
use crate::error::Error;
use crate::runtime::SyncGroupPlan;
use crate::spec::{Violation, is_name};
use crate::store::{StoredSyncGroup, SyncGroupCommit};
use havip_proto::v1::{self, ChangeKind};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::{info, warn};

/// More members than any sensible group; keeps a request from naming thousands.
const MAX_MEMBERS: usize = 64;

/// One group as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Group {
    pub members: Vec<String>,
    pub revision: u64,
}

fn group_not_found(name: &str) -> Error {
    Error::NotFound(format!(
        "sync group {name} does not exist; list-sync-groups shows the ones that do"
    ))
}

impl Manager {
    /// The group `instance` belongs to.
    pub(super) fn group_of(&self, instance: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|(_, g)| g.members.iter().any(|m| m == instance))
            .map(|(n, _)| n.as_str())
    }

    fn proto(name: &str, g: &Group) -> v1::SyncGroup {
        v1::SyncGroup {
            name: name.to_owned(),
            instances: g.members.clone(),
            revision: g.revision,
        }
    }

    /// Take the stored groups, dropping members whose instance did not load (a group is
    /// only as good as the instances it holds) and groups left empty.
    pub(super) fn restore_groups(&mut self, stored: Vec<StoredSyncGroup>) {
        for g in stored {
            let (members, missing): (Vec<String>, Vec<String>) = g
                .members
                .into_iter()
                .partition(|m| self.instances.contains_key(m));
            if !missing.is_empty() {
                warn!(sync_group = %g.name, missing = ?missing, "members of a stored sync group were not loaded; the group runs without them");
            }
            if members.is_empty() {
                warn!(sync_group = %g.name, "a stored sync group has no loaded member; it is not restored");
                continue;
            }
            self.groups.insert(
                g.name,
                Group {
                    members,
                    revision: g.revision,
                },
            );
        }
        self.push_groups();
    }

    /// Hand every group to the data plane.
    fn push_groups(&self) {
        let plans = self
            .groups
            .iter()
            .map(|(name, g)| SyncGroupPlan {
                name: Arc::from(name.as_str()),
                members: g
                    .members
                    .iter()
                    .filter_map(|m| self.instances.get(m).map(|i| i.id))
                    .collect(),
            })
            .collect();
        if self.runtime.set_sync_groups(plans).is_err() {
            warn!("the data plane is gone; sync groups not applied");
        }
    }

    /// The rules of a group: a name, at least one member, members that exist, are listed
    /// once and belong to no other group.
    fn check_group(&self, g: &v1::SyncGroup) -> Result<(), Error> {
        let mut violations = Vec::new();
        if !is_name(&g.name) {
            violations.push(Violation::new(
                "group.name",
                format!("{:?} is not a valid sync group name: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", g.name),
            ));
        }
        if g.instances.is_empty() {
            violations.push(Violation::new(
                "group.instances",
                "a sync group needs at least one member instance",
            ));
        }
        if g.instances.len() > MAX_MEMBERS {
            violations.push(Violation::new(
                "group.instances",
                format!("{} members; at most {MAX_MEMBERS}", g.instances.len()),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, m) in g.instances.iter().enumerate() {
            let field = format!("group.instances[{i}]");
            if !seen.insert(m.as_str()) {
                violations.push(Violation::new(field, format!("{m} is listed twice")));
            } else if !self.instances.contains_key(m) {
                violations.push(Violation::new(
                    field,
                    format!("instance {m} does not exist; create it first"),
                ));
            } else if let Some(other) = self.group_of(m)
                && other != g.name
            {
                violations.push(Violation::new(
                    field,
                    format!("instance {m} already belongs to sync group {other}; an instance is in at most one group, remove it there first"),
                ));
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(violations))
        }
    }

    pub(super) async fn create_group(
        &mut self,
        g: v1::SyncGroup,
        actor: Actor,
        comment: String,
    ) -> Result<v1::SyncGroup, Error> {
        if self.groups.contains_key(&g.name) {
            return Err(Error::AlreadyExists(format!(
                "sync group {} already exists; change it with update-sync-group or pick another name",
                g.name
            )));
        }
        self.check_group(&g)?;
        let revision = self.new_revision();
        self.store
            .commit_sync_group(SyncGroupCommit {
                kind: ChangeKind::Create,
                group: g.name.clone(),
                revision,
                actor: actor.0,
                comment,
                changed_fields: Vec::new(),
                old_members: None,
                new_members: Some(g.instances.clone()),
                time: SystemTime::now(),
            })
            .await
            .map_err(store_error)?;
        self.last_revision = revision;
        let group = Group {
            members: g.instances,
            revision,
        };
        let out = Self::proto(&g.name, &group);
        info!(sync_group = %g.name, members = ?group.members, revision, "sync group created");
        self.groups.insert(g.name, group);
        self.push_groups();
        Ok(out)
    }

    pub(super) async fn update_group(
        &mut self,
        g: v1::SyncGroup,
        expected_revision: u64,
        actor: Actor,
        comment: String,
    ) -> Result<v1::SyncGroup, Error> {
        let current = self
            .groups
            .get(&g.name)
            .ok_or_else(|| group_not_found(&g.name))?;
        if expected_revision != 0 && expected_revision != current.revision {
            return Err(Error::StaleGroupRevision {
                name: g.name,
                current: current.revision,
                expected: expected_revision,
            });
        }
        self.check_group(&g)?;
        if current.members == g.instances {
            return Ok(Self::proto(&g.name, current));
        }
        let old = current.members.clone();
        let revision = self.new_revision();
        self.store
            .commit_sync_group(SyncGroupCommit {
                kind: ChangeKind::Update,
                group: g.name.clone(),
                revision,
                actor: actor.0,
                comment,
                changed_fields: vec!["instances".to_owned()],
                old_members: Some(old),
                new_members: Some(g.instances.clone()),
                time: SystemTime::now(),
            })
            .await
            .map_err(store_error)?;
        self.last_revision = revision;
        let group = Group {
            members: g.instances,
            revision,
        };
        let out = Self::proto(&g.name, &group);
        info!(sync_group = %g.name, members = ?group.members, revision, "sync group updated");
        self.groups.insert(g.name, group);
        self.push_groups();
        Ok(out)
    }

    pub(super) async fn delete_group(
        &mut self,
        name: String,
        actor: Actor,
        comment: String,
    ) -> Result<(), Error> {
        let current = self
            .groups
            .get(&name)
            .ok_or_else(|| group_not_found(&name))?;
        let revision = self.new_revision();
        self.store
            .commit_sync_group(SyncGroupCommit {
                kind: ChangeKind::Delete,
                group: name.clone(),
                revision,
                actor: actor.0,
                comment,
                changed_fields: Vec::new(),
                old_members: Some(current.members.clone()),
                new_members: None,
                time: SystemTime::now(),
            })
            .await
            .map_err(store_error)?;
        self.last_revision = revision;
        self.groups.remove(&name);
        info!(sync_group = %name, revision, "sync group deleted");
        self.push_groups();
        Ok(())
    }

    pub(super) fn get_group(&self, name: &str) -> Result<v1::SyncGroup, Error> {
        self.groups
            .get(name)
            .map(|g| Self::proto(name, g))
            .ok_or_else(|| group_not_found(name))
    }

    pub(super) fn list_groups(&self) -> Vec<v1::SyncGroup> {
        self.groups.iter().map(|(n, g)| Self::proto(n, g)).collect()
    }
}
