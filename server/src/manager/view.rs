//! An instance as the API shows it: the stored spec (password redacted) with the live
//! status from the data plane's board.

use super::task::Managed;
use crate::convert;
use crate::runtime::LiveStatus;
use crate::spec::redact;
use havip_proto::v1;
use std::sync::atomic::Ordering;

pub(super) fn instance(
    name: &str,
    m: &Managed,
    live: Option<&LiveStatus>,
    sync_group: Option<&str>,
) -> v1::Instance {
    v1::Instance {
        name: name.to_owned(),
        spec: Some(redact(m.validated.spec.clone())),
        status: live.map(|l| status(l, sync_group)),
        revision: m.revision,
        create_time: Some(convert::timestamp(m.create_time)),
        update_time: Some(convert::timestamp(m.update_time)),
    }
}

fn status(live: &LiveStatus, sync_group: Option<&str>) -> v1::InstanceStatus {
    let s = live.snapshot();
    let c = &live.counters;
    v1::InstanceStatus {
        state: convert::state(s.state) as i32,
        effective_priority: u32::from(s.effective_priority),
        master_address: s.master.map(|a| a.to_string()).unwrap_or_default(),
        master_priority: s.master_priority.map(u32::from).unwrap_or_default(),
        master_advert_interval: Some(convert::duration(s.master_advert_interval)),
        state_since: Some(convert::timestamp(s.since)),
        last_reason: s.last_reason.map(|r| v1::TransitionReason {
            code: r.code.to_owned(),
            description: r.description,
            peer_address: r.peer.map(|p| p.to_string()).unwrap_or_default(),
        }),
        counters: Some(v1::Counters {
            adverts_sent: c.adverts_sent.load(Ordering::Relaxed),
            adverts_sent_by_standby: c.adverts_sent_by_standby.load(Ordering::Relaxed),
            adverts_received: c.adverts_received.load(Ordering::Relaxed),
            bad_packets: c
                .bad_packets()
                .into_iter()
                .map(|(r, n)| (r.to_owned(), n))
                .collect(),
            transitions: c.transitions.load(Ordering::Relaxed),
            garps_sent: c.garps_sent.load(Ordering::Relaxed),
            became_master: c.became_master.load(Ordering::Relaxed),
        }),
        master_down_interval: Some(convert::duration(s.master_down_interval)),
        skew_time: Some(convert::duration(s.skew_time)),
        error: s.error.unwrap_or_default(),
        trackers: s
            .trackers
            .into_iter()
            .map(|t| v1::TrackerStatus {
                name: t.name.to_string(),
                healthy: t.healthy,
                detail: t.detail,
                since: Some(convert::timestamp(t.since)),
                priority_change: t.priority_change,
                timeouts: t.timeouts,
            })
            .collect(),
        sync_group: sync_group.unwrap_or_default().to_owned(),
    }
}
