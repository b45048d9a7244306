//! One instance as the data plane runs it: the engine plus what carrying out its actions
//! needs (where to send from and to, where the addresses go, what to count).

use super::board::LiveStatus;
use super::standby::CoverHandle;
use super::{Iface, InstanceId, InstancePlan};
use crate::spec::{Validated, Vip};
use havip_vrrp::config::virtual_link_local;
use havip_vrrp::packet::MULTICAST_V4;
use havip_vrrp::packet::MULTICAST_V6;
use havip_vrrp::{Family, Instance, Time};
use std::net::IpAddr;
use std::sync::Arc;

/// Where an instance is in its life on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for its VMAC interface to be created.
    WaitingForVmac,
    /// Taking part in VRRP (in whatever engine state).
    Running,
    /// Its interface was removed; it comes back when an interface of that name does.
    Detached,
}

#[derive(Debug)]
pub(super) struct RunningInstance {
    pub id: InstanceId,
    pub name: Arc<str>,
    pub spec: Validated,
    pub engine: Instance,
    pub phase: Phase,
    /// The interface adverts are received on and whose link state counts.
    pub link_index: u32,
    /// The interface adverts and announcements leave from: the VMAC when there is one.
    pub send_index: u32,
    /// The MAC gratuitous ARPs announce.
    pub send_mac: Option<[u8; 6]>,
    /// Where the VIPs are installed.
    pub vip_index: u32,
    pub vmac_index: Option<u32>,
    /// The address adverts come from.
    pub source: IpAddr,
    /// The addresses installed when master, with prefixes (IPv6: the virtual router's
    /// link-local first).
    pub vips: Vec<Vip>,
    /// The same addresses, shared with the GARP service.
    pub announce: Arc<[IpAddr]>,
    pub live: Arc<LiveStatus>,
    /// The deadline the timer queue holds for this instance.
    pub scheduled: Option<Time>,
    pub last_status: Option<havip_vrrp::Status>,
    /// What the engine was told about trackers, the override and the sync group, so only
    /// changes are fed (a new engine starts from nothing and is told everything).
    pub fed: Fed,
    /// Set while the instance waits in INIT for its trackers' first results.
    pub awaiting_trackers: bool,
    /// While master: the copy of its advert the standby sender repeats if the data plane
    /// is late. Dropping it withdraws it.
    pub cover: Option<CoverHandle>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Fed {
    pub faults: Vec<havip_vrrp::TrackerId>,
    pub weight: i32,
    pub priority_override: Option<u8>,
    pub hold: Option<InstanceId>,
}

impl RunningInstance {
    /// The addresses to install, as the engine advertises them.
    pub fn vips_for(spec: &Validated) -> Vec<Vip> {
        let mut vips = spec.vips.clone();
        if spec.family == Family::Ipv6
            && !vips.first().is_some_and(
                |v| matches!(v.addr, IpAddr::V6(a) if havip_vrrp::config::is_link_local(&a)),
            )
        {
            vips.insert(
                0,
                Vip {
                    addr: IpAddr::V6(virtual_link_local(spec.vrid)),
                    prefix_len: 64,
                },
            );
        }
        vips
    }

    pub fn new(
        plan: &InstancePlan,
        iface: &Iface,
        engine: Instance,
        live: Arc<LiveStatus>,
        source: IpAddr,
    ) -> Self {
        let vips = Self::vips_for(&plan.spec);
        let announce: Arc<[IpAddr]> = vips.iter().map(|v| v.addr).collect();
        RunningInstance {
            id: plan.id,
            name: plan.name.clone(),
            spec: plan.spec.clone(),
            engine,
            phase: if plan.spec.vmac {
                Phase::WaitingForVmac
            } else {
                Phase::Running
            },
            link_index: iface.index,
            send_index: iface.index,
            send_mac: iface.mac,
            vip_index: iface.index,
            vmac_index: None,
            source,
            vips,
            announce,
            live,
            scheduled: None,
            last_status: None,
            fed: Fed::default(),
            awaiting_trackers: false,
            cover: None,
        }
    }

    /// The destinations of an advert: the peers, or the multicast group.
    pub fn destinations(&self) -> Destinations<'_> {
        if self.spec.peers.is_empty() {
            Destinations::Multicast(match self.spec.family {
                Family::Ipv4 => IpAddr::V4(MULTICAST_V4),
                Family::Ipv6 => IpAddr::V6(MULTICAST_V6),
            })
        } else {
            Destinations::Unicast(&self.spec.peers)
        }
    }

    pub fn is_multicast(&self) -> bool {
        self.spec.peers.is_empty()
    }

    pub fn uses_implicit_source(&self) -> bool {
        self.spec.unicast_source.is_none()
    }
}

pub(super) enum Destinations<'a> {
    Multicast(IpAddr),
    Unicast(&'a [IpAddr]),
}

impl Destinations<'_> {
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (one, many): (Option<IpAddr>, &[IpAddr]) = match self {
            Destinations::Multicast(g) => (Some(*g), &[]),
            Destinations::Unicast(peers) => (None, peers),
        };
        one.into_iter().chain(many.iter().copied())
    }
}
