//! Priority overrides (demote / promote) as config changes of `spec.priority_override`:
//! durable, revisioned, in the config history with who and why, and cleared by the manager
//! itself when they lapse (also at start, for one that lapsed while havipd was down).

use super::task::{Manager, not_found, store_error};
use super::{Actor, OverrideKind};
use crate::error::Error;
use crate::runtime::InstancePlan;
use crate::spec::{Violation, changed_fields, normalize, validate_spec};
use crate::store::ConfigCommit;
use havip_proto::v1::{self, ChangeKind};
use havip_vrrp::priority;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// The longest override: a year. Longer is a configuration change, not maintenance.
const MAX_OVERRIDE: Duration = Duration::from_secs(366 * 24 * 3600);

/// The comment of the change that clears a lapsed override.
pub const EXPIRED_COMMENT: &str = "override expired";

impl Manager {
    /// When the next override lapses.
    pub(super) fn next_expiry(&self) -> Option<SystemTime> {
        self.instances
            .values()
            .filter_map(|m| m.validated.priority_override.as_ref()?.expires)
            .min()
    }

    /// Clear every override that has lapsed, as changes by havipd.
    pub(super) async fn expire_overrides(&mut self) {
        let now = SystemTime::now();
        let lapsed: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, m)| {
                m.validated
                    .priority_override
                    .as_ref()
                    .and_then(|o| o.expires)
                    .is_some_and(|t| t <= now)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in lapsed {
            match self
                .change_override(&name, None, Actor::daemon(), EXPIRED_COMMENT.to_owned())
                .await
            {
                Ok(_) => info!(instance = %name, "priority override expired and was cleared"),
                Err(e) => {
                    if let Some(suppressed) = self
                        .warnings
                        .check("override_expiry", std::time::Instant::now())
                    {
                        warn!(instance = %name, error = %e, suppressed, "cannot clear an expired priority override; trying again shortly");
                    }
                    self.expiry_retry =
                        Some(tokio::time::Instant::now() + super::task::EXPIRY_RETRY);
                }
            }
        }
    }

    pub(super) async fn set_override(
        &mut self,
        name: String,
        kind: OverrideKind,
        priority: Option<u32>,
        duration: Option<Duration>,
        reason: String,
        actor: Actor,
    ) -> Result<v1::Instance, Error> {
        let current = self.instances.get(&name).ok_or_else(|| not_found(&name))?;
        let verb = match kind {
            OverrideKind::Demote => "demote",
            OverrideKind::Promote => "promote",
        };
        if current.validated.is_address_owner() {
            return Err(Error::Precondition(format!(
                "instance {name} owns its virtual addresses (priority 255) and is always master; it cannot be {verb}d: change its priority, or disable it"
            )));
        }
        let default = match kind {
            OverrideKind::Demote => 1,
            OverrideKind::Promote => u32::from(priority::MAX_NON_OWNER),
        };
        let p = priority.unwrap_or(default);
        let mut violations = Vec::new();
        if !(1..=u32::from(priority::MAX_NON_OWNER)).contains(&p) {
            violations.push(Violation::new(
                "priority",
                format!("{p} is not an override priority: use 1-254"),
            ));
        }
        if let Some(d) = duration
            && (d.is_zero() || d > MAX_OVERRIDE)
        {
            violations.push(Violation::new(
                "duration",
                "must be longer than 0 and at most 366 days; leave it unset for an override until cleared",
            ));
        }
        if reason.len() > 1024 {
            violations.push(Violation::new(
                "reason",
                format!("is {} bytes; at most 1024", reason.len()),
            ));
        }
        if !violations.is_empty() {
            return Err(Error::Invalid(violations));
        }
        let expires = duration.map(|d| crate::convert::timestamp(SystemTime::now() + d));
        let comment = if reason.is_empty() {
            format!("{verb} to priority {p}")
        } else {
            reason.clone()
        };
        let o = v1::PriorityOverride {
            priority: p,
            expires,
            reason,
        };
        self.change_override(&name, Some(o), actor, comment).await
    }

    pub(super) async fn clear_override(
        &mut self,
        name: String,
        reason: String,
        actor: Actor,
    ) -> Result<v1::Instance, Error> {
        let comment = if reason.is_empty() {
            "override cleared".to_owned()
        } else {
            reason
        };
        self.change_override(&name, None, actor, comment).await
    }

    /// Commit `spec.priority_override = new` and apply it. Needs nothing from the host, so
    /// an override can be set or cleared even while the instance's interface is missing.
    async fn change_override(
        &mut self,
        name: &str,
        new: Option<v1::PriorityOverride>,
        actor: Actor,
        comment: String,
    ) -> Result<v1::Instance, Error> {
        let current = self.instances.get(name).ok_or_else(|| not_found(name))?;
        let old_spec = current.validated.spec.clone();
        let mut spec = old_spec.clone();
        spec.priority_override = new;
        let validated = validate_spec(normalize(spec))?;
        let changed = changed_fields(&old_spec, &validated.spec);
        if changed.is_empty() {
            return Ok(self.view(name, current));
        }
        let revision = self.new_revision();
        let now = SystemTime::now();
        self.store
            .commit_config(ConfigCommit {
                kind: ChangeKind::Update,
                instance: name.to_owned(),
                revision,
                actor: actor.0,
                comment,
                changed_fields: changed,
                old_spec: Some(old_spec),
                new_spec: Some(validated.spec.clone()),
                identity: Some(super::task::identity_of(&validated)),
                time: now,
            })
            .await
            .map_err(store_error)?;
        self.last_revision = revision;
        let interface = validated.interface.clone();
        let m = self
            .instances
            .get_mut(name)
            .ok_or_else(|| not_found(name))?;
        m.validated = validated.clone();
        m.revision = revision;
        m.update_time = now;
        let id = m.id;
        if self.started {
            // The interface only matters if the instance has to start afresh; one that is
            // missing now makes it wait for it, as at start.
            let iface = self.lookup(&interface).await.ok().flatten();
            self.runtime.update(InstancePlan {
                id,
                name: Arc::from(name),
                spec: validated,
                iface: iface.as_ref().map(super::task::iface_of),
            })?;
        }
        info!(instance = %name, revision, "priority override changed");
        let m = self.instances.get(name).ok_or_else(|| not_found(name))?;
        Ok(self.view(name, m))
    }
}
