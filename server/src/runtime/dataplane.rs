//! The data-plane thread: one single-threaded runtime, one state shared by three kinds of
//! task (commands, timers, one reader per socket) that never hold it across an await.

use super::board::{Identity, InterfaceCounters, LiveStatus, StatusBoard};
use super::clock::Clock;
use super::instance::{Phase, RunningInstance};
use super::outbox::{RoundOutbox, TransitionLog};
use super::precise_timer::PreciseTimer;
use super::standby::{Cover, Datagram, Standby};
use super::sync::{SyncGroupPlan, SyncGroups};
use super::timers::TimerQueue;
use super::{Command, HostOpsHandle, Iface, InstanceId, InstancePlan, Recorded, Recorder};
use crate::convert;
use crate::logging::{DEFAULT_WINDOW, RateLimiter};
use crate::net::garp::{GarpRequest, GarpService};
use crate::net::link::LinkEvent;
use crate::net::mmsg::{RecvBatch, SendBatch};
use crate::net::socket::{AdvertSocket, Received};
use crate::trackers::TrackerResult;
use crate::trackers::book::{self, Applied, TrackerBook};
use havip_proto::v1;
use havip_vrrp::packet::{
    self, AdvertFields, DecodeContext, EncodeContext, check_ttl, decode, peek_vrid,
};
use havip_vrrp::{
    Action, AdvertVerdict, Effects, Family, Input, Instance, MemberId, Reason, ReceivedAdvert,
    State, Timer,
};
use std::cell::{Ref, RefCell, RefMut};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

/// Packets handled per wake-up of a socket before the timers get a turn, so a flood on one
/// interface cannot starve adverts.
const RECV_BATCH: usize = 256;
/// Datagrams read per system call: a burst from a segment's masters, which advertise
/// together (see the engine's advert slots), comes in a few calls.
const RECV_SLOTS: usize = 32;
/// The grid that wake-ups for timers other than adverts are rounded up to (see
/// [`wake_time`]). What it adds shows in every takeover: from the last advert heard to the
/// first sent as master at 10 ms adverts (Master_Down_Interval 36.09 ms), the median was
/// 36.86 ms with a 500 µs grid, 36.42 ms with none, and keepalived's 36.28 ms. A burst of
/// adverts arrives over a few hundred microseconds, so this grid still merges a burst's
/// Master_Down_Timers into a few wake-ups.
const TIMER_GRID: std::time::Duration = std::time::Duration::from_micros(100);
/// Receive coalescing, as a NIC's rx-usecs: when a wake-up finds a burst arriving (at
/// least [`COALESCE_MIN_BURST`] datagrams, fewer than a full read), the thread pauses
/// this long before reading again, so the rest of the burst is read in one go instead of
/// a wake-up every few datagrams. A segment's masters send their adverts in a few bursts
/// per interval (the engine's advert slots), and the host delivers each a datagram at a
/// time: without the pause a backup of 255 instances at 10 ms woke 2 800 times a second,
/// and each wake-up on a virtual machine costs more than handling the datagrams it brings
/// (docs/BENCHMARKS-ANALYSIS.md).
/// Never longer than the time to the next timer, so no advert or takeover is late for
/// it; at most this much later in noticing an advert, against Master_Down_Intervals of
/// 30 ms and more.
const RECV_COALESCE: std::time::Duration = std::time::Duration::from_micros(500);
/// A lone advert (one instance, or a quiet segment) is handled at once, never paused on.
const COALESCE_MIN_BURST: usize = 2;
/// A pause shorter than this is not worth the sleep.
const COALESCE_MIN_PAUSE: std::time::Duration = std::time::Duration::from_micros(50);
/// The most datagrams read before a Master_Down_Timer fires: about what a full socket
/// receive buffer holds, so the whole backlog is read but a flood arriving as fast as it is
/// read cannot hold the timer back for ever.
const DRAIN_BEFORE_TAKEOVER: usize = 20_000;
/// Room for the largest VRRP packet with its IPv4 header.
const RECV_BUFFER: usize = crate::net::socket::RECV_BUF_LEN;

pub(super) struct Deps {
    pub host_ops: HostOpsHandle,
    pub garp: GarpService,
    pub recorder: Arc<dyn Recorder>,
    pub board: Arc<StatusBoard>,
    /// The clock the data plane and the standby sender share.
    pub clock: Clock,
    pub standby: Option<Standby>,
}

/// Entry point of the data-plane thread.
pub(super) fn run(deps: Deps, commands: mpsc::UnboundedReceiver<Command>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the data-plane runtime; no instance will run");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, main(deps, commands));
}

/// The data plane, shared by the tasks of its thread. Every entry into it is a round
/// ([`Shared::round`]), so that what a round records reaches the recorder together, when
/// the round ends, whichever task ran it.
#[derive(Clone)]
struct Shared(Rc<RefCell<DataPlane>>);

impl Shared {
    fn round(&self) -> Round<'_> {
        Round(self.0.borrow_mut())
    }

    fn peek(&self) -> Ref<'_, DataPlane> {
        self.0.borrow()
    }
}

/// The data plane, borrowed for one round.
struct Round<'a>(RefMut<'a, DataPlane>);

impl Deref for Round<'_> {
    type Target = DataPlane;

    fn deref(&self) -> &DataPlane {
        &self.0
    }
}

impl DerefMut for Round<'_> {
    fn deref_mut(&mut self) -> &mut DataPlane {
        &mut self.0
    }
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        self.0.outbox.hand_over();
    }
}

/// A fresh board entry for a plan, named for metrics.
fn live_status(plan: &InstancePlan) -> Arc<LiveStatus> {
    Arc::new(LiveStatus::new(
        SystemTime::now(),
        Identity {
            name: plan.name.clone(),
            interface: plan.spec.interface.clone(),
            vrid: plan.spec.vrid.get(),
        },
    ))
}

async fn main(deps: Deps, mut commands: mpsc::UnboundedReceiver<Command>) {
    let wake = Rc::new(Notify::new());
    let shared = Shared(Rc::new(RefCell::new(DataPlane::new(deps, wake.clone()))));
    let timers = tokio::task::spawn_local(run_timers(shared.clone(), wake));
    while let Some(command) = commands.recv().await {
        let stop = DataPlane::on_command(&shared, command);
        if stop {
            break;
        }
    }
    timers.abort();
    let mut dp = shared.round();
    for (_, channel) in dp.channels.drain() {
        if let Some(reader) = channel.reader {
            reader.abort();
        }
    }
    info!("data plane stopped");
}

async fn run_timers(shared: Shared, wake: Rc<Notify>) {
    let mut precise = match PreciseTimer::new() {
        Ok(timer) => Some(timer),
        Err(e) => {
            warn!(error = %e, "{NO_PRECISE_TIMER}");
            None
        }
    };
    loop {
        let (next, clock) = {
            let dp = shared.peek();
            (dp.timers.peek(), dp.clock)
        };
        match next {
            Some(deadline) => {
                let at = clock.instant(deadline);
                let slept = tokio::select! {
                    slept = sleep_until(precise.as_ref(), at) => slept,
                    () = wake.notified() => continue,
                };
                if let Err(e) = slept {
                    // Not expected from a timerfd that was made; if it happens, the coarse
                    // timer is still a timer, and saying so once is enough.
                    warn!(error = %e, "{NO_PRECISE_TIMER}");
                    precise = None;
                    continue;
                }
            }
            None => {
                wake.notified().await;
                continue;
            }
        }
        shared.round().fire_due_timers();
    }
}

const NO_PRECISE_TIMER: &str = "the data plane's precise timer (timerfd) is unavailable; adverts fall back to tokio's millisecond timer and leave up to 2 ms after their slot";

/// Sleeps until `at` on the precise timer, or on tokio's when there is none.
async fn sleep_until(precise: Option<&PreciseTimer>, at: Instant) -> std::io::Result<()> {
    match precise {
        Some(timer) => timer.sleep_until(at).await,
        None => {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            Ok(())
        }
    }
}

async fn read_channel(shared: Shared, key: ChannelKey, socket: Rc<AdvertSocket>) {
    let mut batch = RecvBatch::new(RECV_SLOTS, RECV_BUFFER);
    loop {
        // Wait for a batch, then drain what else is queued without waiting, up to a
        // limit, so a flood cannot starve the timers.
        let first = socket.recv_batch(&mut batch).await;
        let handled = {
            let mut dp = shared.round();
            match first {
                Ok(count) => {
                    dp.on_batch(key, &socket, &batch);
                    count + dp.drain_channel(key, RECV_BATCH.saturating_sub(count))
                }
                Err(e) => {
                    dp.warn_channel(key, "recv", &e);
                    0
                }
            }
        };
        if handled == 0 {
            // The socket failed (logged): a persistent error must not spin the thread.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        } else if handled >= RECV_BATCH {
            tokio::task::yield_now().await;
        } else if handled >= COALESCE_MIN_BURST {
            let pause = shared.peek().coalescing_pause();
            if let Some(pause) = pause {
                // Deliberately blocking, not a tokio sleep: a thread waiting in epoll is
                // woken by every datagram that arrives, which is the cost this avoids.
                std::thread::sleep(pause);
            }
        }
    }
}

/// A socket is shared by every instance on an interface and family.
type ChannelKey = (u32, Family);

struct Channel {
    socket: Rc<AdvertSocket>,
    /// Bad packets no instance can be charged with.
    counters: Arc<InterfaceCounters>,
    /// Instances that receive here, by VRID.
    members: HashMap<u8, InstanceId>,
    /// Instances that send from here without receiving (VMAC instances).
    senders: usize,
    multicast_members: usize,
    joined: bool,
    reader: Option<JoinHandle<()>>,
    /// Adverts the timers fired, sent together once they have all run; and whose each is.
    outbox: SendBatch,
    outbox_senders: Vec<InstanceId>,
    /// The socket as the standby sender holds it, made when a master here is first
    /// covered.
    standby_socket: Option<Arc<std::os::fd::OwnedFd>>,
}

pub(super) struct DataPlane {
    clock: Clock,
    deps: Deps,
    wake: Rc<Notify>,
    instances: HashMap<InstanceId, RunningInstance>,
    channels: HashMap<ChannelKey, Channel>,
    ifaces: HashMap<u32, Iface>,
    timers: TimerQueue,
    fx: Effects,
    send_buf: Vec<u8>,
    /// While the timers fire: adverts go to their channel's outbox instead of straight
    /// out, and these channels have some to flush.
    batching_sends: bool,
    outboxes_to_flush: Vec<ChannelKey>,
    /// Receive buffers of [`Self::drain_channel`] (the reader tasks have their own),
    /// allocated on first use.
    drain_batch: Option<RecvBatch>,
    addr_buf: Vec<IpAddr>,
    warnings: RateLimiter<(u64, &'static str)>,
    /// Each instance's trackers, kept across the restarts an update may need, removed when
    /// the instance is deleted.
    books: HashMap<InstanceId, TrackerBook>,
    sync: SyncGroups,
    /// Members whose state changed, for their groups to follow; drained by the outermost
    /// `carry_out`, so a change that causes changes is handled in order, without recursion.
    sync_pending: Vec<(InstanceId, State)>,
    syncing: bool,
    /// What this round recorded and logged (see [`Round`]).
    outbox: RoundOutbox,
}

impl DataPlane {
    fn new(deps: Deps, wake: Rc<Notify>) -> Self {
        let outbox = RoundOutbox::new(Arc::clone(&deps.recorder));
        DataPlane {
            clock: deps.clock,
            deps,
            wake,
            instances: HashMap::new(),
            channels: HashMap::new(),
            ifaces: HashMap::new(),
            timers: TimerQueue::default(),
            fx: Effects::default(),
            send_buf: Vec::with_capacity(RECV_BUFFER),
            batching_sends: false,
            outboxes_to_flush: Vec::new(),
            drain_batch: None,
            addr_buf: Vec::with_capacity(255),
            warnings: RateLimiter::new(DEFAULT_WINDOW),
            books: HashMap::new(),
            sync: SyncGroups::default(),
            sync_pending: Vec::new(),
            syncing: false,
            outbox,
        }
    }

    // ----- commands ----------------------------------------------------------------------

    /// Returns true when the data plane should stop.
    fn on_command(shared: &Shared, command: Command) -> bool {
        let mut dp = shared.round();
        match command {
            Command::Start(plan) => dp.start(shared, *plan),
            Command::Update(plan) => dp.update(shared, *plan),
            Command::Stop { id, done } => {
                dp.stop(id);
                dp.books.remove(&id);
                dp.deps.host_ops.flush(done);
            }
            Command::Link(event) => dp.on_link_event(event),
            Command::Tracker { id, result } => dp.on_tracker_result(id, result),
            Command::SyncGroups(groups) => dp.on_sync_groups(groups),
            Command::VmacReady { id, result } => dp.on_vmac_ready(shared, id, result),
            Command::InterfaceFound { id, iface } => dp.on_interface_found(shared, id, iface),
            Command::HostError { id, error } => {
                if let Some(inst) = dp.instances.get(&id) {
                    inst.live.update(|s| s.error = error);
                }
            }
            Command::Shutdown { done } => {
                let ids: Vec<InstanceId> = dp.instances.keys().copied().collect();
                for id in ids {
                    dp.stop(id);
                }
                dp.deps.host_ops.flush(done);
                return true;
            }
        }
        false
    }

    fn start(&mut self, shared: &Shared, plan: InstancePlan) {
        if self.instances.contains_key(&plan.id) {
            warn!(instance = %plan.name, "start of an instance that is already running ignored");
            return;
        }
        self.configure_book(shared, &plan);
        let Some(iface) = plan.iface.clone() else {
            return self.wait_for_interface(plan);
        };
        self.ifaces.insert(iface.index, iface.clone());
        let source = match plan.spec.unicast_source {
            Some(s) => s,
            None => {
                match self.implicit_source(&plan.spec, iface.index, None, &self.installed_vips()) {
                    Some(s) => s,
                    None => {
                        self.fail_start(&plan, "the interface has no address to send adverts from");
                        return;
                    }
                }
            }
        };
        let engine = match Instance::new(plan.spec.engine_config(source)) {
            Ok(e) => e,
            Err(e) => {
                self.fail_start(&plan, &e.to_string());
                return;
            }
        };
        let live = live_status(&plan);
        self.deps.board.insert(plan.id, live.clone());
        let inst = RunningInstance::new(&plan, &iface, engine, live, source);
        let id = inst.id;
        let waiting_for_vmac = inst.phase == Phase::WaitingForVmac;
        self.instances.insert(id, inst);
        self.publish_trackers(id);
        if waiting_for_vmac {
            let vrid = plan.spec.vrid;
            let mac = havip_vrrp::config::virtual_mac(plan.spec.family, vrid);
            let family_digit = if plan.spec.family == Family::Ipv4 {
                4
            } else {
                6
            };
            let name = format!("vrrp{family_digit}.{}.{}", iface.index, vrid.get());
            self.deps.host_ops.ensure_vmac(id, iface.index, name, mac);
            return;
        }
        self.begin(shared, id);
    }

    /// The instance's interface does not exist: keep the instance, detached, until an
    /// interface of that name appears.
    fn wait_for_interface(&mut self, plan: InstancePlan) {
        let placeholder = plan.spec.unicast_source.unwrap_or(match plan.spec.family {
            Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        });
        let engine = match Instance::new(plan.spec.engine_config(placeholder)) {
            Ok(e) => e,
            Err(e) => return self.fail_start(&plan, &e.to_string()),
        };
        let live = live_status(&plan);
        live.update(|s| {
            s.error = Some(format!(
                "interface {} does not exist; the instance starts when it appears",
                plan.spec.interface
            ));
        });
        self.deps.board.insert(plan.id, live.clone());
        let none = Iface {
            index: 0,
            name: plan.spec.interface.clone(),
            up: false,
            mac: None,
            addresses: Vec::new(),
        };
        let mut inst = RunningInstance::new(&plan, &none, engine, live, placeholder);
        inst.phase = Phase::Detached;
        // Every start and config change of the instance comes here while the interface is
        // missing: one line per window.
        if let Some(suppressed) = self
            .warnings
            .check((plan.id.0, "no_interface"), Instant::now())
        {
            warn!(instance = %plan.name, interface = %plan.spec.interface, suppressed, "interface does not exist; waiting for it");
        }
        self.instances.insert(plan.id, inst);
        self.publish_trackers(plan.id);
    }

    fn fail_start(&mut self, plan: &InstancePlan, why: &str) {
        error!(instance = %plan.name, interface = %plan.spec.interface, error = why, "cannot start instance");
        let live = live_status(plan);
        live.update(|s| s.error = Some(format!("cannot start on {}: {why}", plan.spec.interface)));
        self.deps.board.insert(plan.id, live);
    }

    /// Attach to the sockets and let the engine start.
    fn begin(&mut self, shared: &Shared, id: InstanceId) {
        if let Err(e) = self.attach(shared, id) {
            let report = self.warnings.check((id.0, "open_socket"), Instant::now());
            if let Some(inst) = self.instances.get(&id) {
                // Link flaps retry this: one line per window.
                if let Some(suppressed) = report {
                    error!(instance = %inst.name, error = %e, suppressed, "cannot open the VRRP socket");
                }
                inst.live
                    .update(|s| s.error = Some(format!("cannot open the VRRP socket: {e}")));
            }
            return;
        }
        let (up, disabled) = match self.instances.get(&id) {
            Some(inst) => (
                self.ifaces.get(&inst.link_index).is_none_or(|i| i.up),
                inst.spec.disabled,
            ),
            None => return,
        };
        if !up {
            self.feed(id, Input::LinkDown);
        }
        if disabled {
            self.feed(id, Input::AdminDisable);
        }
        // A new engine knows nothing: tell it the trackers, the override and the sync
        // group's hold before it starts, so it starts in the right state.
        self.apply_trackers(id);
        self.apply_override(id);
        self.apply_hold(id);
        if self
            .books
            .get(&id)
            .is_some_and(|b| b.in_grace(Instant::now()))
        {
            // Wait in INIT for the trackers' first word (or the end of their grace, which
            // configure_book set a timer for), so the start does not pass through FAULT.
            if let Some(inst) = self.instances.get_mut(&id) {
                inst.awaiting_trackers = true;
            }
            return;
        }
        self.feed(id, Input::Startup);
    }

    /// Start an instance that waited for its trackers, once none is in its grace any more
    /// (all answered, or the grace ended).
    fn end_tracker_wait(&mut self, id: InstanceId) {
        let waiting = self.instances.get(&id).is_some_and(|i| i.awaiting_trackers);
        let in_grace = self
            .books
            .get(&id)
            .is_some_and(|b| b.in_grace(Instant::now()));
        if !waiting || in_grace {
            return;
        }
        if let Some(inst) = self.instances.get_mut(&id) {
            inst.awaiting_trackers = false;
        }
        self.feed(id, Input::Startup);
    }

    fn update(&mut self, shared: &Shared, plan: InstancePlan) {
        self.configure_book(shared, &plan);
        let Some(inst) = self.instances.get(&plan.id) else {
            return self.start(shared, plan);
        };
        let old = &inst.spec;
        let restart = old.interface != plan.spec.interface
            || old.family != plan.spec.family
            || old.vrid != plan.spec.vrid
            || old.version != plan.spec.version
            || old.vmac != plan.spec.vmac
            || inst.phase != Phase::Running;
        if restart {
            self.stop(plan.id);
            return self.start(shared, plan);
        }
        let was_multicast = inst.is_multicast();
        let was_disabled = inst.spec.disabled;
        let old_vips = inst.vips.clone();
        let source = match plan.spec.unicast_source {
            Some(s) => s,
            None => self
                .implicit_source(
                    &plan.spec,
                    inst.link_index,
                    Some(inst.source),
                    &self.installed_vips(),
                )
                .unwrap_or(inst.source),
        };
        let config = plan.spec.engine_config(source);
        let Some(inst) = self.instances.get_mut(&plan.id) else {
            return;
        };
        inst.name = plan.name.clone();
        inst.spec = plan.spec.clone();
        inst.source = source;
        inst.vips = RunningInstance::vips_for(&plan.spec);
        inst.announce = inst.vips.iter().map(|v| v.addr).collect();
        let vips_changed = old_vips != inst.vips;
        let now_multicast = inst.is_multicast();
        let now_disabled = inst.spec.disabled;
        let key = (inst.link_index, inst.spec.family);
        if was_multicast != now_multicast {
            self.change_multicast_membership(key, now_multicast);
        }
        self.feed(plan.id, Input::ConfigChanged(&config));
        // A prefix-only change does not change what the engine advertises, so it says
        // nothing; the installed addresses still have to follow.
        if vips_changed
            && let Some(inst) = self.instances.get(&plan.id)
            && inst.engine.state() == State::Master
            && !inst.engine.config().is_address_owner()
        {
            self.deps
                .host_ops
                .ensure_vips(inst.id, inst.vip_index, inst.vips.clone());
        }
        match (was_disabled, now_disabled) {
            (false, true) => self.feed(plan.id, Input::AdminDisable),
            (true, false) => self.feed(plan.id, Input::AdminEnable),
            _ => {}
        }
        // Trackers added, removed or retuned, and demote/promote, apply live.
        self.apply_trackers(plan.id);
        self.apply_override(plan.id);
        self.publish_trackers(plan.id);
    }

    fn stop(&mut self, id: InstanceId) {
        if self
            .instances
            .get(&id)
            .is_some_and(|i| i.phase == Phase::Running)
        {
            self.feed(id, Input::Shutdown);
        }
        self.detach(id);
        if let Some(inst) = self.instances.remove(&id) {
            // Whatever the engine did, nothing of ours stays on the interface.
            self.deps.host_ops.clear_vips(id);
            if let Some(index) = inst.vmac_index {
                self.deps.host_ops.delete_link(index);
            }
        }
        self.deps.board.remove(id);
    }

    fn on_vmac_ready(&mut self, shared: &Shared, id: InstanceId, result: Result<Iface, String>) {
        let Some(inst) = self.instances.get_mut(&id) else {
            // Stopped meanwhile: the VMAC is not wanted any more.
            if let Ok(vmac) = result {
                self.deps.host_ops.delete_link(vmac.index);
            }
            return;
        };
        match result {
            Ok(vmac) => {
                inst.send_index = vmac.index;
                inst.vip_index = vmac.index;
                inst.vmac_index = Some(vmac.index);
                inst.send_mac = vmac.mac;
                inst.phase = Phase::Running;
                inst.live.update(|s| s.error = None);
                self.ifaces.insert(vmac.index, vmac);
                self.begin(shared, id);
            }
            Err(e) => {
                if let Some(suppressed) = self.warnings.check((id.0, "vmac"), Instant::now()) {
                    error!(instance = %inst.name, error = %e, suppressed, "cannot create the VMAC interface");
                }
                inst.live
                    .update(|s| s.error = Some(format!("cannot create the VMAC interface: {e}")));
            }
        }
    }

    // ----- sockets -----------------------------------------------------------------------

    fn attach(&mut self, shared: &Shared, id: InstanceId) -> Result<(), crate::net::NetError> {
        let Some(inst) = self.instances.get(&id) else {
            return Ok(());
        };
        let family = inst.spec.family;
        let vrid = inst.spec.vrid.get();
        let recv_key = (inst.link_index, family);
        let send_key = (inst.send_index, family);
        let multicast = inst.is_multicast();
        let link_name = inst.spec.interface.clone();
        let send_name = self
            .ifaces
            .get(&inst.send_index)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| link_name.clone());
        self.open_channel(shared, recv_key, &link_name, true)?;
        if send_key != recv_key
            && let Err(e) = self.open_channel(shared, send_key, &send_name, false)
        {
            self.close_if_unused(recv_key);
            return Err(e);
        }
        if let Some(ch) = self.channels.get_mut(&recv_key) {
            ch.members.insert(vrid, id);
        }
        if send_key != recv_key
            && let Some(ch) = self.channels.get_mut(&send_key)
        {
            ch.senders += 1;
        }
        if multicast {
            self.change_multicast_membership(recv_key, true);
        }
        Ok(())
    }

    fn detach(&mut self, id: InstanceId) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        inst.cover = None;
        let family = inst.spec.family;
        let vrid = inst.spec.vrid.get();
        let recv_key = (inst.link_index, family);
        let send_key = (inst.send_index, family);
        let multicast = inst.is_multicast();
        let member = self
            .channels
            .get(&recv_key)
            .is_some_and(|ch| ch.members.get(&vrid) == Some(&id));
        if !member {
            return;
        }
        if let Some(ch) = self.channels.get_mut(&recv_key) {
            ch.members.remove(&vrid);
        }
        if multicast {
            self.change_multicast_membership(recv_key, false);
        }
        if send_key != recv_key
            && let Some(ch) = self.channels.get_mut(&send_key)
        {
            ch.senders = ch.senders.saturating_sub(1);
        }
        self.close_if_unused(recv_key);
        self.close_if_unused(send_key);
    }

    fn open_channel(
        &mut self,
        shared: &Shared,
        key: ChannelKey,
        ifname: &str,
        receive: bool,
    ) -> Result<(), crate::net::NetError> {
        if let Some(ch) = self.channels.get_mut(&key) {
            if receive && ch.reader.is_none() {
                ch.reader = Some(tokio::task::spawn_local(read_channel(
                    shared.clone(),
                    key,
                    ch.socket.clone(),
                )));
            }
            return Ok(());
        }
        let socket = Rc::new(AdvertSocket::open(key.1, key.0, ifname)?);
        let counters = self.deps.board.interface(ifname, key.1);
        let reader = receive
            .then(|| tokio::task::spawn_local(read_channel(shared.clone(), key, socket.clone())));
        debug!(ifindex = key.0, interface = ifname, family = %key.1, "opened VRRP socket");
        self.channels.insert(
            key,
            Channel {
                socket,
                counters,
                members: HashMap::new(),
                senders: 0,
                multicast_members: 0,
                joined: false,
                reader,
                outbox: SendBatch::default(),
                outbox_senders: Vec::new(),
                standby_socket: None,
            },
        );
        Ok(())
    }

    fn close_if_unused(&mut self, key: ChannelKey) {
        let unused = self
            .channels
            .get(&key)
            .is_some_and(|ch| ch.members.is_empty() && ch.senders == 0);
        if unused && let Some(ch) = self.channels.remove(&key) {
            if let Some(reader) = ch.reader {
                reader.abort();
            }
            debug!(ifindex = key.0, family = %key.1, "closed VRRP socket");
        }
    }

    fn change_multicast_membership(&mut self, key: ChannelKey, join: bool) {
        let Some(ch) = self.channels.get_mut(&key) else {
            return;
        };
        if join {
            ch.multicast_members += 1;
        } else {
            ch.multicast_members = ch.multicast_members.saturating_sub(1);
        }
        let want = ch.multicast_members > 0;
        if want == ch.joined {
            return;
        }
        let result = if want {
            ch.socket.join_multicast()
        } else {
            ch.socket.leave_multicast()
        };
        match result {
            Ok(()) => ch.joined = want,
            Err(e) => {
                if let Some(suppressed) = self
                    .warnings
                    .check((u64::from(key.0), "multicast"), Instant::now())
                {
                    warn!(ifindex = key.0, family = %key.1, error = %e, suppressed, "changing the VRRP multicast membership failed");
                }
            }
        }
    }

    fn warn_channel(&mut self, key: ChannelKey, what: &'static str, e: &dyn std::fmt::Display) {
        if let Some(suppressed) = self
            .warnings
            .check((u64::from(key.0), what), Instant::now())
        {
            warn!(ifindex = key.0, family = %key.1, error = %e, suppressed, "VRRP socket {what} failed");
        }
    }

    /// A datagram no instance can be charged with was dropped: one line per window and
    /// reason, with the count of those not logged.
    fn warn_datagram(&mut self, key: ChannelKey, reason: &'static str, e: &dyn std::fmt::Display) {
        if let Some(suppressed) = self
            .warnings
            .check((u64::from(key.0), reason), Instant::now())
        {
            warn!(ifindex = key.0, family = %key.1, reason, error = %e, suppressed, "dropped a bad VRRP datagram");
        }
    }

    // ----- receive -----------------------------------------------------------------------

    /// How long a reader may pause to let a burst finish arriving: [`RECV_COALESCE`], cut
    /// short by the next timer (the queue's earliest entry, which may be stale and early:
    /// that only makes the pause shorter). None when too short to bother.
    fn coalescing_pause(&self) -> Option<std::time::Duration> {
        coalescing_pause(self.timers.peek(), self.clock.now())
    }

    /// Handle every datagram of a batch just received on a channel's socket: a packet, or
    /// a bad datagram (counted on the interface; the next one may be fine).
    fn on_batch(&mut self, key: ChannelKey, socket: &AdvertSocket, batch: &RecvBatch) {
        for i in 0..batch.len() {
            match socket.received(batch, i) {
                Some(Ok(rx)) => self.on_packet(key, batch.buffer(i), &rx),
                Some(Err(e)) => {
                    // One bad datagram says nothing about the socket: count it and read
                    // on. (Backing off here would let a flood of oversized datagrams fill
                    // the socket and push real adverts out.)
                    let reason = e.datagram_fault().unwrap_or("recv");
                    if let Some(ch) = self.channels.get(&key) {
                        ch.counters.bad_packet(reason);
                    }
                    self.warn_datagram(key, reason, &e);
                }
                None => break,
            }
        }
    }

    /// Handle up to about `limit` datagrams already queued on a channel's socket, without
    /// waiting (a whole batch at a time); how many there were.
    fn drain_channel(&mut self, key: ChannelKey, limit: usize) -> usize {
        let Some(socket) = self.channels.get(&key).map(|ch| ch.socket.clone()) else {
            return 0;
        };
        let mut batch = self
            .drain_batch
            .take()
            .unwrap_or_else(|| RecvBatch::new(RECV_SLOTS, RECV_BUFFER));
        let mut handled = 0;
        while handled < limit {
            match socket.try_recv_batch(&mut batch) {
                Ok(0) => break,
                Ok(count) => {
                    handled += count;
                    self.on_batch(key, &socket, &batch);
                }
                Err(e) => {
                    self.warn_channel(key, "recv", &e);
                    break;
                }
            }
        }
        self.drain_batch = Some(batch);
        handled
    }

    fn on_packet(&mut self, key: ChannelKey, buf: &[u8], rx: &Received) {
        let Some(msg) = buf.get(rx.payload.clone()) else {
            return;
        };
        let Some(channel) = self.channels.get(&key) else {
            return;
        };
        let Some(vrid) = peek_vrid(msg) else {
            // Too short to name a VRID, so no instance to charge it to.
            channel.counters.bad_packet("truncated");
            return;
        };
        let Some(&id) = channel.members.get(&vrid) else {
            // RFC 9568 §7.1: not for a virtual router of ours; discarded and counted per
            // interface (RFC 2787's vrrpRouterVrIdErrors).
            channel.counters.bad_packet("unknown_vrid");
            if let Some(suppressed) = self.warnings.check(
                (u64::from(key.0) << 8 | u64::from(vrid), "unknown_vrid"),
                Instant::now(),
            ) {
                debug!(ifindex = key.0, vrid, src = %rx.src, suppressed, "advert for a VRID no instance here serves");
            }
            return;
        };
        let now = self.clock.now();
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let counters = &inst.live.counters;
        let verdict = if let Err(e) = check_ttl(rx.ttl) {
            Err(e.reason())
        } else if !inst.spec.peers.is_empty() && !inst.spec.peers.contains(&rx.src) {
            Err("not_a_peer")
        } else {
            let ctx = DecodeContext {
                family: inst.spec.family,
                src: rx.src,
                dst: rx.dst,
                auth: &inst.engine.config().auth,
            };
            match decode(msg, &ctx) {
                Err(e) => Err(e.reason()),
                Ok(advert) if advert.version != inst.spec.version => Err("unsupported_version"),
                Ok(advert) => {
                    self.addr_buf.clear();
                    self.addr_buf.extend(advert.addresses());
                    Ok((advert.priority, advert.interval))
                }
            }
        };
        let (priority, interval) = match verdict {
            Ok(v) => v,
            Err(reason) => {
                counters.bad_packet(reason);
                if let Some(suppressed) = self.warnings.check((id.0, reason), Instant::now()) {
                    warn!(instance = %inst.name, src = %rx.src, reason, suppressed, "dropped a bad VRRP packet");
                }
                return;
            }
        };
        counters.adverts_received.fetch_add(1, Ordering::Relaxed);
        let mut fx = std::mem::take(&mut self.fx);
        fx.clear();
        inst.engine.handle(
            Input::Advert(ReceivedAdvert {
                src: rx.src,
                priority,
                interval,
                addresses: &self.addr_buf,
            }),
            now,
            &mut fx,
        );
        self.carry_out(id, &mut fx);
        self.fx = fx;
    }

    // ----- timers ------------------------------------------------------------------------

    fn fire_due_timers(&mut self) {
        // Masters advertise on shared slots (the engine's advert cadence), so one wake-up
        // fires many adverts: one sendmmsg per interface instead of a sendmsg each.
        self.batching_sends = true;
        self.fire_timers_due_now();
        self.batching_sends = false;
        self.flush_outboxes();
    }

    fn fire_timers_due_now(&mut self) {
        let mut now = self.clock.now();
        while let Some((deadline, id)) = self.timers.pop_due(now) {
            let Some(inst) = self.instances.get_mut(&id) else {
                continue;
            };
            if inst.scheduled != Some(deadline) {
                continue;
            }
            inst.scheduled = None;
            if inst
                .engine
                .deadline(Timer::MasterDown)
                .is_some_and(|d| d <= now)
            {
                // A backup is about to declare its master down. If this thread was kept
                // from running (a loaded host, a flood of junk), the master's adverts may
                // be waiting in the socket behind the junk: read what is queued first, so
                // the master is judged on what it sent, not on when we got the CPU.
                let key = (inst.link_index, inst.spec.family);
                self.drain_channel(key, DRAIN_BEFORE_TAKEOVER);
                now = self.clock.now();
            }
            let Some(inst) = self.instances.get_mut(&id) else {
                continue;
            };
            let mut fx = std::mem::take(&mut self.fx);
            fx.clear();
            // Each instance's own moment: in a burst (many instances timing out together)
            // the last is carried out a little later than the first, and its transition
            // and events say so.
            inst.engine.fire_due_timers(self.clock.now(), &mut fx);
            self.carry_out(id, &mut fx);
            self.fx = fx;
        }
        if self.timers.len() > 4 * self.instances.len() + 1024 {
            self.timers.compact(queued_entry(&self.instances));
        }
        // What fired may have left a stale entry at the front; the thread must not wake
        // for it.
        self.discard_stale_timers();
    }

    /// Queue the instance's next wake-up, and keep the front of the queue live.
    ///
    /// A backup's Master_Down_Timer moves later on every advert. The new deadline is pushed
    /// and the old entry left in the heap, stale (re-arming is a push, never a search);
    /// stale entries at the front are dropped at once, so the thread sleeps until the
    /// earliest deadline still wanted. A healthy backup then never wakes for its timers,
    /// only for the adverts that keep pushing them back.
    fn reschedule(&mut self, id: InstanceId) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let next = inst
            .engine
            .next_deadline()
            .map(|(timer, deadline)| wake_time(timer, deadline));
        if inst.scheduled == next {
            return;
        }
        let superseded = inst.scheduled;
        inst.scheduled = next;
        let front_moved = self
            .timers
            .requeue(id, superseded, next, queued_entry(&self.instances));
        if front_moved {
            self.wake.notify_one();
        }
    }

    /// Drop stale entries from the front of the timer queue.
    fn discard_stale_timers(&mut self) {
        self.timers
            .discard_stale_front(queued_entry(&self.instances));
    }

    // ----- carrying out --------------------------------------------------------------------

    /// Feed one input to an instance and carry out what follows.
    fn feed(&mut self, id: InstanceId, input: Input<'_>) {
        let now = self.clock.now();
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let mut fx = std::mem::take(&mut self.fx);
        fx.clear();
        inst.engine.handle(input, now, &mut fx);
        self.carry_out(id, &mut fx);
        self.fx = fx;
    }

    fn carry_out(&mut self, id: InstanceId, fx: &mut Effects) {
        if let Some(inst) = self.instances.get_mut(&id)
            && inst.cover.is_some()
            && inst.engine.state() != State::Master
        {
            // No longer master: the standby must not speak for it, whatever follows.
            inst.cover = None;
        }
        for action in &fx.actions {
            match *action {
                Action::SendAdvert { priority } => self.send_advert(id, priority),
                Action::AddVips { .. } => {
                    if let Some(inst) = self.instances.get(&id) {
                        self.deps
                            .host_ops
                            .ensure_vips(id, inst.vip_index, inst.vips.clone());
                    }
                }
                Action::RemoveVips => self.deps.host_ops.clear_vips(id),
                Action::SendGratuitous { count } => self.announce(id, count),
                // The timer queue follows next_deadline(); the actions are for the record.
                Action::ArmTimer { .. } | Action::CancelTimer { .. } => {}
            }
        }
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        match fx.verdict {
            Some(AdvertVerdict::Dropped(reason)) => inst.live.counters.bad_packet(reason.label()),
            // Only a master's adverts are accepted (or a rival's that makes a master step
            // down, which makes the rival the master).
            Some(AdvertVerdict::Accepted) => inst.live.counters.heard_master(),
            _ => {}
        }
        if let Some(from) = fx.address_mismatch_from {
            inst.live
                .counters
                .address_list_mismatches
                .fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = self
                .warnings
                .check((id.0, "address_mismatch"), Instant::now())
            {
                warn!(instance = %inst.name, from = %from, suppressed, "the other router advertises different virtual addresses; check that both are configured alike");
            }
        }
        if let Some(late) = fx.master_down_deferred {
            // A stall hits every instance at once: one line for the host, not one each.
            if let Some(suppressed) = self
                .warnings
                .check((0, "master_down_after_stall"), Instant::now())
            {
                warn!(
                    instance = %inst.name,
                    late_ms = late.as_secs_f64() * 1000.0,
                    suppressed,
                    "the Master_Down_Timer fired late, so havipd itself was stalled (host starved of CPU, VM paused); watching the master for one more Master_Down_Interval before taking over"
                );
            }
        }
        if let Some(rival) = fx.rival_master {
            inst.live
                .counters
                .dual_masters
                .fetch_add(1, Ordering::Relaxed);
            // The engine reports once per episode, so this line and the event are rare.
            warn!(
                instance = %inst.name,
                peer = %rival.from,
                peer_priority = rival.priority,
                priority = rival.our_priority,
                outcome = convert::rival_outcome_label(rival.outcome),
                "another router is master too (dual master)"
            );
            self.outbox.push(Recorded::DualMaster {
                instance: inst.name.to_string(),
                dual: convert::dual_master(&rival),
            });
        }
        for t in &fx.transitions {
            self.record(id, t);
        }
        if self.sync.group_of(id).is_some() {
            self.sync_pending
                .extend(fx.transitions.iter().map(|t| (id, t.to)));
        }
        self.publish_status(id);
        self.reschedule(id);
        if !self.syncing && !self.sync_pending.is_empty() {
            self.syncing = true;
            self.follow_sync_groups();
            self.syncing = false;
        }
    }

    fn send_advert(&mut self, id: InstanceId, priority: u8) {
        if priority == 0
            && let Some(inst) = self.instances.get_mut(&id)
        {
            // Withdrawn before the last word goes out, so the standby cannot follow it.
            inst.cover = None;
        }
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let key = (inst.send_index, inst.spec.family);
        let Some(channel) = self.channels.get_mut(&key) else {
            return;
        };
        let destinations = inst.destinations();
        // The standby's copy, while it may still be this advert.
        let cover = inst.cover.as_ref().filter(|c| {
            priority != 0
                && c.channel == key
                && c.interval == inst.engine.config().advert_interval.as_duration()
                && c.datagrams.len() == destinations.iter().count()
        });
        let mut still_covered = cover.is_some();
        for (index, dst) in destinations.iter().enumerate() {
            let result = encode_advert(inst, priority, dst, &mut self.send_buf)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    still_covered &=
                        cover.is_some_and(|c| c.repeats(index, inst.source, dst, &self.send_buf));
                    if self.batching_sends {
                        channel
                            .socket
                            .queue(&mut channel.outbox, inst.source, dst, &self.send_buf)
                            .map(|()| channel.outbox_senders.push(id))
                            .map_err(|e| e.to_string())
                    } else {
                        channel
                            .socket
                            .send(inst.source, dst, &self.send_buf)
                            .map(|()| count_sent(inst))
                            .map_err(|e| e.to_string())
                    }
                });
            if let Err(e) = result {
                count_send_error(inst, dst, &e, &mut self.warnings);
            }
        }
        if self.batching_sends
            && !channel.outbox.is_empty()
            && !self.outboxes_to_flush.contains(&key)
        {
            self.outboxes_to_flush.push(key);
        }
        match (&self.deps.standby, cover) {
            (Some(standby), Some(cover)) if still_covered => cover.stamp(standby.now()),
            (Some(_), _) if priority != 0 => self.renew_cover(id, priority),
            _ => {}
        }
    }

    /// Gives the standby sender a copy of a master's advert (see [`super::standby`]), in
    /// place of the one it had; withdraws the old one if no copy can be made.
    fn renew_cover(&mut self, id: InstanceId, priority: u8) {
        let Some(standby) = &self.deps.standby else {
            return;
        };
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        inst.cover = None;
        let key = (inst.send_index, inst.spec.family);
        let Some(channel) = self.channels.get_mut(&key) else {
            return;
        };
        let socket = match &channel.standby_socket {
            Some(socket) => socket.clone(),
            None => match channel.socket.duplicate() {
                Ok(fd) => channel.standby_socket.insert(Arc::new(fd)).clone(),
                Err(e) => {
                    if let Some(suppressed) =
                        self.warnings.check((0, "standby_socket"), Instant::now())
                    {
                        warn!(interface = %channel.socket.ifname(), error = %e, suppressed, "cannot give the standby sender this interface's socket; its masters are not covered when the data plane stalls");
                    }
                    return;
                }
            },
        };
        let mut datagrams = Vec::new();
        for dst in inst.destinations().iter() {
            let mut wire = Vec::new();
            let framed = encode_advert(inst, priority, dst, &mut self.send_buf)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    channel
                        .socket
                        .wire(inst.source, dst, &self.send_buf, &mut wire)
                        .map_err(|e| e.to_string())
                });
            match framed {
                Ok(message_at) => datagrams.push(Datagram {
                    src: inst.source,
                    dst,
                    wire,
                    message_at,
                }),
                // Sending it failed too, and said so.
                Err(_) => return,
            }
        }
        let cover = Cover::new(
            inst.name.clone(),
            key,
            inst.engine.config().advert_interval.as_duration(),
            socket,
            datagrams,
            inst.live.clone(),
        );
        inst.cover = Some(standby.cover(id, cover));
    }

    /// Sends the adverts the timers queued, one system call per interface (or a few).
    fn flush_outboxes(&mut self) {
        for key in std::mem::take(&mut self.outboxes_to_flush) {
            let Some(channel) = self.channels.get_mut(&key) else {
                continue;
            };
            let senders = std::mem::take(&mut channel.outbox_senders);
            let mut senders_in_order = senders.iter();
            let instances = &self.instances;
            let warnings = &mut self.warnings;
            channel.socket.flush(&mut channel.outbox, |dst, outcome| {
                let Some(inst) = senders_in_order.next().and_then(|id| instances.get(id)) else {
                    return;
                };
                match outcome {
                    Ok(()) => count_sent(inst),
                    Err(e) => count_send_error(inst, dst, &e.to_string(), warnings),
                }
            });
            // Keep the allocation for the next round.
            let mut senders = senders;
            senders.clear();
            channel.outbox_senders = senders;
        }
    }

    fn announce(&mut self, id: InstanceId, count: u32) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let Some(mac) = inst.send_mac else {
            debug!(instance = %inst.name, "no MAC address known for the interface; gratuitous announcements skipped");
            return;
        };
        self.deps.garp.request(GarpRequest::new(
            inst.send_index,
            mac,
            inst.announce.clone(),
            count,
            inst.live.counters.garps_sent.clone(),
        ));
    }

    fn record(&mut self, id: InstanceId, t: &havip_vrrp::Transition) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let status = inst.engine.status();
        let counters = &inst.live.counters;
        counters.transitions.fetch_add(1, Ordering::Relaxed);
        counters.count_transition(t.to, t.reason.label());
        if t.to == State::Master {
            counters.became_master.fetch_add(1, Ordering::Relaxed);
        }
        let description = self.describe(id, &t.reason);
        self.outbox.log_transition(TransitionLog {
            instance: inst.name.clone(),
            from: t.from,
            to: t.to,
            reason_code: t.reason.label(),
            reason: description.clone(),
            priority: status.effective_priority,
        });
        self.outbox.push(Recorded::Transition(v1::Transition {
            instance: inst.name.to_string(),
            from: convert::state(t.from) as i32,
            to: convert::state(t.to) as i32,
            reason: Some(convert::reason_described(&t.reason, description)),
            priority: u32::from(status.effective_priority),
            master_address: status.master.map(|m| m.to_string()).unwrap_or_default(),
            time: Some(convert::timestamp(self.clock.wall(t.at))),
            seq: 0,
        }));
    }

    fn publish_status(&mut self, id: InstanceId) {
        let clock = self.clock;
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let status = inst.engine.status();
        if inst.last_status == Some(status) {
            return;
        }
        let described = status.last_reason.map(|r| super::ReasonView {
            code: r.label(),
            description: self.describe(id, &r),
            peer: r.peer(),
        });
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        inst.last_status = Some(status);
        let mdi = inst.engine.master_down_interval();
        let skew = inst.engine.skew_time();
        inst.live.update(|s| {
            s.state = status.state;
            s.effective_priority = status.effective_priority;
            s.master = status.master;
            s.master_priority = status.master_priority;
            s.master_advert_interval = status.master_adver_interval.as_duration();
            s.since = clock.wall(status.since);
            s.last_reason = described;
            s.master_down_interval = mdi;
            s.skew_time = skew;
        });
    }

    // ----- trackers, overrides, sync groups ------------------------------------------------

    /// The reason of a transition in words, with the names the engine only knows as ids:
    /// "tracker haproxy failed (exit status 1: connection refused)", "sync group db:
    /// member web became MASTER".
    fn describe(&self, id: InstanceId, reason: &Reason) -> String {
        match *reason {
            Reason::TrackerFailed { tracker } => self
                .books
                .get(&id)
                .and_then(|b| b.failure(tracker))
                .unwrap_or_else(|| reason.to_string()),
            Reason::SyncGroup { member, became } => {
                let group = self.sync.group_of(id).map(|g| g.name.clone());
                let name = self
                    .instances
                    .get(&InstanceId(member.0))
                    .map(|i| i.name.clone());
                match (group, name) {
                    (Some(group), Some(name)) => format!(
                        "sync group {group}: member {name} {}",
                        Reason::sync_group_verb(became)
                    ),
                    _ => reason.to_string(),
                }
            }
            _ => reason.to_string(),
        }
    }

    fn configure_book(&mut self, shared: &Shared, plan: &InstancePlan) {
        let book = self.books.entry(plan.id).or_default();
        book.configure(&plan.spec.trackers, SystemTime::now(), Instant::now());
        if book.in_grace(Instant::now()) {
            // A tracker that stays silent counts as failing once its grace is over.
            let (shared, id) = (shared.clone(), plan.id);
            tokio::task::spawn_local(async move {
                tokio::time::sleep(book::GRACE).await;
                shared.round().grace_over(id);
            });
        }
    }

    fn grace_over(&mut self, id: InstanceId) {
        self.apply_trackers(id);
        self.publish_trackers(id);
        self.end_tracker_wait(id);
    }

    fn on_tracker_result(&mut self, id: InstanceId, result: TrackerResult) {
        let Some(book) = self.books.get_mut(&id) else {
            // The instance was deleted meanwhile.
            return;
        };
        let change = match book.apply(result, SystemTime::now(), Instant::now()) {
            Applied::Unknown => return,
            Applied::Quiet => {
                self.publish_trackers(id);
                return;
            }
            Applied::Notable(change) => change,
        };
        // The weight first: it cannot change the state, and the event can then carry the
        // priority that results, ahead of any transition the tracker causes.
        self.apply_weight(id);
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let effective = inst.engine.effective_priority();
        info!(
            instance = %inst.name,
            tracker = %change.name,
            healthy = change.healthy,
            detail = %change.detail,
            priority_change = change.priority_change,
            effective_priority = effective,
            "tracker changed"
        );
        self.outbox.push(Recorded::TrackerChange {
            instance: inst.name.to_string(),
            change: v1::TrackerChange {
                tracker: change.name.to_string(),
                healthy: change.healthy,
                detail: change.detail,
                priority_change: change.priority_change,
                effective_priority: u32::from(effective),
            },
        });
        self.apply_faults(id);
        self.publish_trackers(id);
        self.end_tracker_wait(id);
    }

    /// Tell the engine what changed in the trackers' verdict.
    fn apply_trackers(&mut self, id: InstanceId) {
        self.apply_weight(id);
        self.apply_faults(id);
    }

    fn apply_weight(&mut self, id: InstanceId) {
        let weight = self.books.get(&id).map_or(0, |b| b.weight(Instant::now()));
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.fed.weight != weight {
            inst.fed.weight = weight;
            self.feed(id, Input::TrackerWeight(weight));
        }
    }

    fn apply_faults(&mut self, id: InstanceId) {
        let faults = self
            .books
            .get(&id)
            .map(|b| b.faults(Instant::now()))
            .unwrap_or_default();
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut inst.fed.faults, faults.clone());
        // New failures first: a tracker that fails while another recovers must not let
        // the instance leave FAULT for a moment.
        for &t in faults.iter().filter(|t| !old.contains(t)) {
            self.feed(id, Input::TrackerDown(t));
        }
        for &t in old.iter().filter(|t| !faults.contains(t)) {
            self.feed(id, Input::TrackerUp(t));
        }
    }

    fn apply_override(&mut self, id: InstanceId) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let wanted = inst.spec.priority_override.as_ref().map(|o| o.priority);
        if inst.fed.priority_override != wanted {
            inst.fed.priority_override = wanted;
            self.feed(id, Input::PriorityOverride(wanted));
        }
    }

    fn publish_trackers(&self, id: InstanceId) {
        if let (Some(inst), Some(book)) = (self.instances.get(&id), self.books.get(&id)) {
            let views = book.views(Instant::now());
            inst.live.update(|s| s.trackers = views);
        }
    }

    fn on_sync_groups(&mut self, groups: Vec<SyncGroupPlan>) {
        let before: Vec<InstanceId> = self.sync.members().collect();
        self.sync.set(groups);
        let mut affected: Vec<InstanceId> = self.sync.members().chain(before).collect();
        affected.sort_unstable();
        affected.dedup();
        for id in affected {
            self.apply_hold(id);
        }
        // Names of groups show in reasons; the board shows the last one.
        for id in self.instances.keys().copied().collect::<Vec<_>>() {
            if let Some(inst) = self.instances.get_mut(&id) {
                inst.last_status = None;
            }
            self.publish_status(id);
        }
    }

    /// The member of `id`'s group that holds it (another member in FAULT), if any.
    fn holder(&self, id: InstanceId) -> Option<InstanceId> {
        self.sync.others(id).into_iter().find(|m| {
            self.instances
                .get(m)
                .is_some_and(|i| i.engine.state() == State::Fault)
        })
    }

    fn apply_hold(&mut self, id: InstanceId) {
        let holder = self.holder(id);
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.fed.hold != holder {
            inst.fed.hold = holder;
            self.feed(id, Input::SyncGroupHold(holder.map(|h| MemberId(h.0))));
        }
    }

    /// keepalived's vrrp_sync_group, after members changed state: a member in FAULT holds
    /// the others out of MASTER until no member is in FAULT; a member that became MASTER
    /// brings the others along. Feeding them may change more members; the loop takes
    /// those too, until nothing changes.
    fn follow_sync_groups(&mut self) {
        let mut rounds = 0usize;
        while let Some((id, to)) = self.sync_pending.pop() {
            rounds += 1;
            if rounds > 64 * (self.instances.len() + 1) {
                // Cannot happen (every step moves a member towards a fixed point); a
                // guard so a bug can never hang the data plane.
                error!(
                    instance = id.0,
                    "sync group coordination did not settle; stopping it for now"
                );
                self.sync_pending.clear();
                break;
            }
            let others = self.sync.others(id);
            if to == State::Master {
                for &other in &others {
                    self.feed(other, Input::SyncGroupMaster(MemberId(id.0)));
                }
            }
            for other in others {
                self.apply_hold(other);
            }
        }
    }

    // ----- links and addresses -------------------------------------------------------------

    fn on_link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Link { index, name, up } => {
                let iface = self.ifaces.entry(index).or_insert_with(|| Iface {
                    index,
                    name: name.clone(),
                    up,
                    mac: None,
                    addresses: Vec::new(),
                });
                let changed = iface.up != up;
                iface.up = up;
                iface.name.clone_from(&name);
                if changed {
                    for id in self.instances_on(index) {
                        self.feed(id, if up { Input::LinkUp } else { Input::LinkDown });
                    }
                }
                self.reattach_by_name(&name);
            }
            LinkEvent::LinkRemoved { index, name } => {
                self.ifaces.remove(&index);
                for id in self.instances_on(index) {
                    self.feed(id, Input::LinkDown);
                    self.detach(id);
                    if let Some(inst) = self.instances.get_mut(&id) {
                        inst.phase = Phase::Detached;
                        inst.live.update(|s| {
                            s.error = Some(format!(
                                "interface {name} was removed; waiting for it to come back"
                            ));
                        });
                    }
                }
            }
            LinkEvent::AddressAdded {
                index,
                addr,
                prefix_len,
            } => {
                if let Some(iface) = self.ifaces.get_mut(&index)
                    && !iface.addresses.iter().any(|(a, _)| *a == addr)
                {
                    iface.addresses.push((addr, prefix_len));
                }
                self.refresh_sources(index, addr);
            }
            LinkEvent::AddressRemoved { index, addr, .. } => {
                if let Some(iface) = self.ifaces.get_mut(&index) {
                    iface.addresses.retain(|(a, _)| *a != addr);
                }
                self.refresh_sources(index, addr);
            }
        }
    }

    fn instances_on(&self, index: u32) -> Vec<InstanceId> {
        self.instances
            .values()
            .filter(|i| i.link_index == index && i.phase == Phase::Running)
            .map(|i| i.id)
            .collect()
    }

    /// An interface that was missing came back (maybe with a new index): ask for a fresh
    /// description of it, with its addresses, and restart its instances on it.
    fn reattach_by_name(&mut self, name: &str) {
        let waiting = self
            .instances
            .values()
            .filter(|i| i.phase == Phase::Detached && i.spec.interface == name)
            .map(|i| i.id);
        for id in waiting.collect::<Vec<_>>() {
            self.deps.host_ops.describe(id, name.to_owned());
        }
    }

    fn on_interface_found(&mut self, shared: &Shared, id: InstanceId, iface: Option<Iface>) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        if inst.phase != Phase::Detached {
            return;
        }
        let Some(iface) = iface else { return };
        let plan = InstancePlan {
            id,
            name: inst.name.clone(),
            spec: inst.spec.clone(),
            iface: Some(iface),
        };
        info!(instance = %plan.name, interface = %plan.spec.interface, "interface is there; starting the instance");
        self.instances.remove(&id);
        self.deps.board.remove(id);
        self.start(shared, plan);
    }

    /// Every virtual address an instance here installs; none of them is ever a source.
    fn installed_vips(&self) -> HashSet<IpAddr> {
        self.instances
            .values()
            .flat_map(|i| i.vips.iter().map(|v| v.addr))
            .collect()
    }

    /// The address an instance without a configured source sends from: the interface's
    /// primary address of the family (IPv6: link-local), never one of the virtual
    /// addresses any instance here installs (`ours`). Linear in the interface's addresses:
    /// this runs for every instance on every address change.
    fn implicit_source(
        &self,
        spec: &crate::spec::Validated,
        index: u32,
        current: Option<IpAddr>,
        ours: &HashSet<IpAddr>,
    ) -> Option<IpAddr> {
        let iface = self.ifaces.get(&index)?;
        let own = RunningInstance::vips_for(spec);
        let usable = |a: &IpAddr| {
            Family::of(a) == spec.family
                && !ours.contains(a)
                && !own.iter().any(|v| v.addr == *a)
                && match a {
                    IpAddr::V6(v6) => havip_vrrp::config::is_link_local(v6),
                    IpAddr::V4(_) => true,
                }
        };
        // Keep the current source while it is still there: no reason to move.
        if let Some(c) = current
            && usable(&c)
            && iface.addresses.iter().any(|(a, _)| *a == c)
        {
            return Some(c);
        }
        iface.addresses.iter().map(|(a, _)| *a).find(usable)
    }

    /// An address came or went on an interface: instances that send from its primary
    /// address follow it. Our own VIPs coming and going (every failover) change nothing.
    fn refresh_sources(&mut self, index: u32, changed: IpAddr) {
        let ours = self.installed_vips();
        if ours.contains(&changed) {
            return;
        }
        let ids: Vec<InstanceId> = self
            .instances
            .values()
            .filter(|i| i.link_index == index && i.uses_implicit_source())
            .map(|i| i.id)
            .collect();
        for id in ids {
            let Some(inst) = self.instances.get(&id) else {
                continue;
            };
            let current = inst.source;
            match self.implicit_source(&inst.spec, index, Some(current), &ours) {
                Some(source) if source != current => {
                    info!(instance = %inst.name, old = %current, new = %source, "the interface's primary address changed; adverts now come from the new one");
                    let config = inst.spec.engine_config(source);
                    if let Some(inst) = self.instances.get_mut(&id) {
                        inst.source = source;
                        inst.live.update(|s| s.error = None);
                    }
                    self.feed(id, Input::ConfigChanged(&config));
                }
                Some(_) => {}
                None => {
                    inst.live.update(|s| {
                        s.error = Some(format!(
                            "interface {} has no address to send adverts from (still using {current})",
                            inst.spec.interface
                        ));
                    });
                }
            }
        }
    }
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("instances", &self.instances.len())
            .field("channels", &self.channels.len())
            .finish()
    }
}

/// Whether a timer-queue entry is the one its instance is waiting for (every other entry is
/// stale: the instance moved its wake-up, or is gone).
fn queued_entry(
    instances: &HashMap<InstanceId, RunningInstance>,
) -> impl Fn(InstanceId, havip_vrrp::Time) -> bool + '_ {
    |id, t| instances.get(&id).is_some_and(|i| i.scheduled == Some(t))
}

/// When the data plane wakes for `timer`, due at `deadline`.
///
/// An advert wakes it at its slot, to the microsecond: its timing is what backups judge
/// the master by, and the precise timer is there for it. Every other timer wakes it on the
/// next [`TIMER_GRID`] mark. A backup's Master_Down_Timer is pushed back by every advert,
/// and a burst of adverts arrives over a few hundred microseconds; when the master goes
/// quiet, the backups' deadlines are as spread as their last adverts were, and on the grid
/// a burst's worth of them share one wake-up instead of one each.
fn wake_time(timer: Timer, deadline: havip_vrrp::Time) -> havip_vrrp::Time {
    if timer == Timer::Advert {
        return deadline;
    }
    let grid = TIMER_GRID.as_nanos();
    let on_grid = deadline.since_origin().as_nanos().div_ceil(grid) * grid;
    match u64::try_from(on_grid) {
        Ok(nanos) => havip_vrrp::Time::from_duration(std::time::Duration::from_nanos(nanos)),
        Err(_) => deadline,
    }
}

/// [`DataPlane::coalescing_pause`] with the next timer's deadline and the time now.
fn coalescing_pause(
    next_timer: Option<havip_vrrp::Time>,
    now: havip_vrrp::Time,
) -> Option<std::time::Duration> {
    let pause = match next_timer {
        Some(deadline) => RECV_COALESCE.min(deadline.saturating_since(now)),
        None => RECV_COALESCE,
    };
    (pause >= COALESCE_MIN_PAUSE).then_some(pause)
}

/// Encodes `inst`'s advert at `priority` for `dst` into `buf`.
fn encode_advert(
    inst: &RunningInstance,
    priority: u8,
    dst: IpAddr,
    buf: &mut Vec<u8>,
) -> Result<(), packet::EncodeError> {
    let config = inst.engine.config();
    let fields = AdvertFields {
        version: config.version,
        vrid: config.vrid,
        priority,
        interval: config.advert_interval,
        addresses: inst.engine.advertised_addresses(),
        auth: &config.auth,
    };
    let ctx = EncodeContext {
        src: inst.source,
        dst,
        v3_ipv4_checksum: inst.spec.checksum,
    };
    packet::encode(&fields, &ctx, buf)
}

fn count_sent(inst: &RunningInstance) {
    inst.live
        .counters
        .adverts_sent
        .fetch_add(1, Ordering::Relaxed);
}

/// Counts a failed advert on its instance, and says so (rate-limited per instance).
fn count_send_error(
    inst: &RunningInstance,
    dst: IpAddr,
    error: &str,
    warnings: &mut RateLimiter<(u64, &'static str)>,
) {
    inst.live
        .counters
        .send_errors
        .fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = warnings.check((inst.id.0, "send"), Instant::now()) {
        warn!(instance = %inst.name, dst = %dst, error, suppressed, "sending an advert failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_vrrp::Time;
    use std::time::Duration;

    #[test]
    fn a_reader_pauses_for_a_burst_but_never_past_the_next_timer() {
        let now = Time::from_millis(1_000);
        assert_eq!(coalescing_pause(None, now), Some(RECV_COALESCE));
        let far = now + Duration::from_millis(5);
        assert_eq!(coalescing_pause(Some(far), now), Some(RECV_COALESCE));
        let soon = now + Duration::from_micros(200);
        assert_eq!(
            coalescing_pause(Some(soon), now),
            Some(Duration::from_micros(200)),
            "cut short by the timer"
        );
        let imminent = now + Duration::from_micros(20);
        assert_eq!(coalescing_pause(Some(imminent), now), None, "not worth it");
        let overdue = now - Duration::from_millis(1);
        assert_eq!(coalescing_pause(Some(overdue), now), None, "a timer is due");
    }

    #[test]
    fn an_advert_wakes_the_thread_at_its_slot_to_the_nanosecond() {
        let slot = Time::from_duration(Duration::from_nanos(1_002_500_123));
        assert_eq!(wake_time(Timer::Advert, slot), slot);
    }

    #[test]
    fn other_timers_wake_on_the_grid_never_before_their_deadline() {
        let base = Time::from_millis(36);
        let burst: Vec<Time> = [1, 20, 61, 99]
            .iter()
            .map(|&us| base + Duration::from_micros(us))
            .collect();
        let woken: Vec<Time> = burst
            .iter()
            .map(|&d| wake_time(Timer::MasterDown, d))
            .collect();
        for (&deadline, &wake) in burst.iter().zip(&woken) {
            assert!(wake >= deadline, "woke before the deadline");
            assert!(wake - deadline < TIMER_GRID, "late by a whole grid step");
        }
        assert!(
            woken.iter().all(|&w| w == woken[0]),
            "a burst's deadlines within one grid step share one wake-up: {woken:?}"
        );
        assert_eq!(
            wake_time(Timer::PreemptDelay, base),
            base,
            "already on the grid"
        );
        assert_eq!(
            wake_time(Timer::GarpRefresh, base + Duration::from_nanos(1)),
            base + TIMER_GRID
        );
    }
}
