//! Sync groups in the data plane (keepalived's vrrp_sync_group): which instances belong
//! together. Every member runs in this one data plane, so coordinating them is a matter of
//! feeding the other members' engines right after a member's transition, synchronously.

use super::InstanceId;
use std::collections::HashMap;
use std::sync::Arc;

/// A sync group as the manager hands it to the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupPlan {
    pub name: Arc<str>,
    pub members: Vec<InstanceId>,
}

/// Every group, by member.
#[derive(Debug, Default)]
pub(super) struct SyncGroups {
    by_member: HashMap<InstanceId, Arc<SyncGroupPlan>>,
}

impl SyncGroups {
    /// Replace every group.
    pub fn set(&mut self, groups: Vec<SyncGroupPlan>) {
        self.by_member.clear();
        for g in groups {
            let g = Arc::new(g);
            for &m in &g.members {
                self.by_member.insert(m, g.clone());
            }
        }
    }

    pub fn group_of(&self, id: InstanceId) -> Option<&Arc<SyncGroupPlan>> {
        self.by_member.get(&id)
    }

    /// The other members of `id`'s group.
    pub fn others(&self, id: InstanceId) -> Vec<InstanceId> {
        self.group_of(id)
            .map(|g| g.members.iter().copied().filter(|&m| m != id).collect())
            .unwrap_or_default()
    }

    pub fn members(&self) -> impl Iterator<Item = InstanceId> + '_ {
        self.by_member.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_others() {
        let mut s = SyncGroups::default();
        s.set(vec![SyncGroupPlan {
            name: Arc::from("db"),
            members: vec![InstanceId(1), InstanceId(2), InstanceId(3)],
        }]);
        assert_eq!(s.others(InstanceId(2)), [InstanceId(1), InstanceId(3)]);
        assert!(s.others(InstanceId(9)).is_empty());
        assert_eq!(s.group_of(InstanceId(3)).map(|g| &*g.name), Some("db"));
        s.set(Vec::new());
        assert!(s.group_of(InstanceId(3)).is_none());
    }
}
