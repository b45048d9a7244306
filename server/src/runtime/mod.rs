//! The runtime: carries out what the engine decides, for every instance, on a dedicated
//! data-plane thread.
//!
//! One thread runs a single-threaded tokio runtime that owns every engine instance, one
//! shared timer queue, and one raw socket per (interface, family). Work that may wait —
//! netlink calls for addresses and VMACs, gratuitous ARP pacing, database writes — is
//! handed to other tasks through channels that never block, so a slow netlink call or a
//! slow disk never delays another instance's advert.

mod board;
mod clock;
mod dataplane;
mod host_ops;
mod instance;
mod outbox;
mod precise_timer;
mod realtime;
mod standby;
mod sync;
mod timers;

pub use board::{
    Counters, INTERFACE_BAD_REASONS, Identity, InterfaceCounters, LiveStatus, ReasonView, Snapshot,
    StatusBoard,
};
pub use host_ops::{HostOps, HostOpsHandle};
pub use sync::SyncGroupPlan;

/// The addresses an instance installs when master (IPv6: the virtual router's link-local
/// address first), with their prefix lengths.
pub fn vips_to_install(spec: &Validated) -> Vec<crate::spec::Vip> {
    instance::RunningInstance::vips_for(spec)
}

use crate::net::link::LinkEvent;
use crate::spec::Validated;
use crate::trackers::TrackerResult;
use havip_proto::v1;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The data plane's handle on an instance; stable for the instance's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(pub u64);

/// An interface as the runtime needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub mac: Option<[u8; 6]>,
    pub addresses: Vec<(IpAddr, u8)>,
}

/// What the manager asks the data plane to run.
#[derive(Clone, Debug)]
pub struct InstancePlan {
    pub id: InstanceId,
    pub name: Arc<str>,
    pub spec: Validated,
    /// The interface as it was when the plan was made; `None` when it does not exist
    /// (yet): the instance waits for it.
    pub iface: Option<Iface>,
}

/// Something the data plane records for the event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Transition(v1::Transition),
    TrackerChange {
        instance: String,
        change: v1::TrackerChange,
    },
    /// A master heard another master (once per episode: the engine limits it).
    DualMaster {
        instance: String,
        dual: v1::DualMaster,
    },
}

/// Where transitions, tracker changes and dual-master reports go: the store (which
/// publishes them on the event bus once written), in the daemon. Must not block.
pub trait Recorder: Send + Sync + 'static {
    /// What one round of the data plane (a timer wake-up, a batch of adverts, a command)
    /// recorded, in order. A whole segment failing over at once is one round, and handing
    /// it over whole lets the store write it in one transaction instead of starting on
    /// the first transition while the rest queue behind that write.
    fn record(&self, round: Vec<Recorded>);
}

/// Commands to the data plane.
#[derive(Debug)]
pub(crate) enum Command {
    Start(Box<InstancePlan>),
    Update(Box<InstancePlan>),
    Stop {
        id: InstanceId,
        done: oneshot::Sender<()>,
    },
    Link(LinkEvent),
    /// From the tracker service: a tracker's latest result.
    Tracker {
        id: InstanceId,
        result: TrackerResult,
    },
    /// From the manager: every sync group, replacing the previous set.
    SyncGroups(Vec<SyncGroupPlan>),
    /// From the host-ops task: a VMAC is ready (or not) for an instance.
    VmacReady {
        id: InstanceId,
        result: Result<Iface, String>,
    },
    /// From the host-ops task: the interface a detached instance waits for, described.
    InterfaceFound {
        id: InstanceId,
        iface: Option<Iface>,
    },
    /// From the host-ops task: an operation for this instance failed, or worked again.
    HostError {
        id: InstanceId,
        error: Option<String>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// How the data plane's threads are scheduled.
#[derive(Clone, Copy, Debug)]
pub struct Scheduling {
    /// SCHED_RR priority of the data plane and the standby sender; 0 for ordinary.
    pub realtime_priority: u8,
    /// Whether a standby sender, on a CPU of its own, repeats masters' adverts while the
    /// data plane's CPU does not run (with at least two CPUs).
    pub standby_sender: bool,
}

/// The manager's handle on the data plane.
#[derive(Clone, Debug)]
pub struct RuntimeHandle {
    commands: mpsc::UnboundedSender<Command>,
    board: Arc<StatusBoard>,
}

/// The data plane has stopped (it only stops at shutdown, or if its thread died).
#[derive(Debug, thiserror::Error)]
#[error("the data plane is not running (it stopped or its thread failed; see the daemon log)")]
pub struct RuntimeGone;

impl RuntimeHandle {
    /// Start the data-plane thread. `host_ops` performs netlink work on the caller's
    /// runtime; `garp` sends announcements; `recorder` receives every transition.
    pub fn spawn(
        host_ops: HostOpsHandle,
        garp: crate::net::garp::GarpService,
        recorder: Arc<dyn Recorder>,
        scheduling: Scheduling,
    ) -> std::io::Result<RuntimeHandle> {
        let (tx, rx) = mpsc::unbounded_channel();
        let board = Arc::new(StatusBoard::default());
        let clock = clock::Clock::start();
        let placement = scheduling
            .standby_sender
            .then(standby::Placement::choose)
            .flatten();
        let standby = match &placement {
            Some(placement) => {
                let standby =
                    standby::Standby::spawn(clock, placement, scheduling.realtime_priority)?;
                tracing::info!(
                    cpu = placement.standby_cpu,
                    "the standby sender runs on its own CPU, to repeat masters' adverts when the data plane's CPU stalls"
                );
                Some(standby)
            }
            None if scheduling.standby_sender => {
                tracing::info!(
                    "one CPU: no standby sender (it needs a CPU the data plane does not run on)"
                );
                None
            }
            None => None,
        };
        let deps = dataplane::Deps {
            host_ops: host_ops.clone(),
            garp,
            recorder,
            board: board.clone(),
            clock,
            standby,
        };
        host_ops.attach(tx.clone());
        let realtime_priority = scheduling.realtime_priority;
        std::thread::Builder::new()
            .name("havip-dataplane".into())
            .spawn(move || {
                if let Some(placement) = placement
                    && let Err(e) = placement.pin_data_plane()
                {
                    tracing::warn!(error = %e, "cannot keep the data plane off the standby sender's CPU; the standby covers a stalled data plane only when the two happen to run on different CPUs");
                }
                if realtime_priority > 0 {
                    match realtime::make_current_thread_realtime(realtime_priority) {
                        Ok(()) => tracing::info!(
                            priority = realtime_priority,
                            "the data plane runs under SCHED_RR"
                        ),
                        Err(e) => tracing::warn!(
                            priority = realtime_priority,
                            error = %e,
                            "cannot give the data plane real-time priority; it runs with ordinary priority, and on a busy machine a short advert interval may see false failovers (give havipd CAP_SYS_NICE or LimitRTPRIO, or pass --realtime-priority 0 to silence this)"
                        ),
                    }
                }
                dataplane::run(deps, rx)
            })?;
        Ok(RuntimeHandle {
            commands: tx,
            board,
        })
    }

    pub fn board(&self) -> &Arc<StatusBoard> {
        &self.board
    }

    pub fn start(&self, plan: InstancePlan) -> Result<(), RuntimeGone> {
        self.send(Command::Start(Box::new(plan)))
    }

    pub fn update(&self, plan: InstancePlan) -> Result<(), RuntimeGone> {
        self.send(Command::Update(Box::new(plan)))
    }

    /// Stop an instance: priority-0 advert if master, addresses and VMAC removed. Resolves
    /// when that is done.
    pub async fn stop(&self, id: InstanceId) -> Result<(), RuntimeGone> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Stop { id, done })?;
        wait.await.map_err(|_| RuntimeGone)
    }

    /// A tracker's latest result, from the tracker service.
    pub fn tracker_result(&self, id: InstanceId, result: TrackerResult) -> Result<(), RuntimeGone> {
        self.send(Command::Tracker { id, result })
    }

    /// Every sync group, replacing what the data plane had.
    pub fn set_sync_groups(&self, groups: Vec<SyncGroupPlan>) -> Result<(), RuntimeGone> {
        self.send(Command::SyncGroups(groups))
    }

    /// Feed a link or address change.
    pub fn link_event(&self, event: LinkEvent) -> Result<(), RuntimeGone> {
        self.send(Command::Link(event))
    }

    /// Stop every instance as [`Self::stop`] does, then the data plane.
    pub async fn shutdown(&self) -> Result<(), RuntimeGone> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Shutdown { done })?;
        wait.await.map_err(|_| RuntimeGone)
    }

    fn send(&self, c: Command) -> Result<(), RuntimeGone> {
        self.commands.send(c).map_err(|_| RuntimeGone)
    }
}
