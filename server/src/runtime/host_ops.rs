//! Host changes the data plane asks for but must not wait on: virtual addresses and VMAC
//! interfaces, made with netlink by one task on the daemon's main runtime. One task, in
//! order, so an add and the remove that follows it are applied in that order.

use super::{Command, Iface, InstanceId};
use crate::logging::{DEFAULT_WINDOW, RateLimiter};
use crate::net::host::{read_interface_sysctl, write_interface_sysctl};
use crate::net::netlink::Netlink;
use crate::net::vmac;
use crate::spec::Vip;
use havip_vrrp::Family;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// Set once the stopped task has been reported: it never comes back, so once is enough.
static STOPPED_REPORTED: AtomicBool = AtomicBool::new(false);

enum Op {
    EnsureVips {
        id: InstanceId,
        ifindex: u32,
        vips: Vec<Vip>,
    },
    ClearVips {
        id: InstanceId,
    },
    EnsureVmac {
        id: InstanceId,
        parent: u32,
        name: String,
        mac: [u8; 6],
    },
    DeleteLink {
        index: u32,
    },
    Describe {
        id: InstanceId,
        name: String,
    },
    RemoveAddresses {
        ifindex: u32,
        vips: Vec<Vip>,
        done: oneshot::Sender<()>,
    },
    Flush {
        done: oneshot::Sender<()>,
    },
}

/// The data plane's (and the manager's) way to ask for host changes.
#[derive(Clone)]
pub struct HostOpsHandle {
    ops: mpsc::UnboundedSender<Op>,
    dataplane: Arc<OnceLock<mpsc::UnboundedSender<Command>>>,
}

impl std::fmt::Debug for HostOpsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostOpsHandle")
    }
}

/// The task that carries the changes out.
#[derive(Debug)]
pub struct HostOps;

impl HostOps {
    /// Start the task on the current runtime.
    pub fn spawn(netlink: Netlink) -> HostOpsHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let dataplane = Arc::new(OnceLock::new());
        let worker = Worker {
            netlink,
            arp_guards: HashMap::new(),
            vmac_parents: HashMap::new(),
            installed: HashMap::new(),
            failing: HashSet::new(),
            dataplane: dataplane.clone(),
            warnings: RateLimiter::new(DEFAULT_WINDOW),
        };
        tokio::spawn(worker.run(rx));
        HostOpsHandle { ops: tx, dataplane }
    }
}

impl HostOpsHandle {
    pub(super) fn attach(&self, dataplane: mpsc::UnboundedSender<Command>) {
        let _ = self.dataplane.set(dataplane);
    }

    /// Make `ifindex` carry exactly `vips` for this instance.
    pub fn ensure_vips(&self, id: InstanceId, ifindex: u32, vips: Vec<Vip>) {
        self.send(Op::EnsureVips { id, ifindex, vips });
    }

    /// Remove whatever this instance installed.
    pub fn clear_vips(&self, id: InstanceId) {
        self.send(Op::ClearVips { id });
    }

    pub fn ensure_vmac(&self, id: InstanceId, parent: u32, name: String, mac: [u8; 6]) {
        self.send(Op::EnsureVmac {
            id,
            parent,
            name,
            mac,
        });
    }

    pub fn delete_link(&self, index: u32) {
        self.send(Op::DeleteLink { index });
    }

    /// Look the interface up; the answer goes to the data plane.
    pub(super) fn describe(&self, id: InstanceId, name: String) {
        self.send(Op::Describe { id, name });
    }

    /// Remove these addresses from an interface whoever put them there: at start-up, what
    /// a crashed daemon left behind.
    pub async fn remove_addresses(&self, ifindex: u32, vips: Vec<Vip>) {
        let (done, wait) = oneshot::channel();
        self.send(Op::RemoveAddresses {
            ifindex,
            vips,
            done,
        });
        let _ = wait.await;
    }

    /// `done` fires once everything asked before is carried out.
    pub fn flush(&self, done: oneshot::Sender<()>) {
        self.send(Op::Flush { done });
    }

    fn send(&self, op: Op) {
        if self.ops.send(op).is_err() && !STOPPED_REPORTED.swap(true, Ordering::Relaxed) {
            warn!(
                "the host-operations task has stopped; address and VMAC changes are no longer made"
            );
        }
    }
}

/// ARP settings changed on an interface that carries VMACs, to put back when the last
/// VMAC on it goes.
struct ArpGuard {
    name: String,
    /// (key, original value)
    saved: Vec<(&'static str, String)>,
    vmacs: usize,
}

/// The parent's ARP settings while it carries VMACs: answer ARP only for its own
/// addresses (arp_ignore=1, arp_filter=1), and never ask with a VIP as the sender address
/// (arp_announce=2), which would teach neighbours the parent's MAC for the VIP.
const ARP_GUARD: [(&str, &str); 3] = [
    ("arp_ignore", "1"),
    ("arp_filter", "1"),
    ("arp_announce", "2"),
];

struct Worker {
    netlink: Netlink,
    /// By parent interface index.
    arp_guards: HashMap<u32, ArpGuard>,
    /// VMAC index → parent index.
    vmac_parents: HashMap<u32, u32>,
    /// What each instance has installed, and where.
    installed: HashMap<InstanceId, (u32, Vec<Vip>)>,
    failing: HashSet<InstanceId>,
    dataplane: Arc<OnceLock<mpsc::UnboundedSender<Command>>>,
    /// Failures repeat with every transition or link flap: one line per window and kind
    /// (and instance), with the count of those left out.
    warnings: RateLimiter<(u64, &'static str)>,
}

impl Worker {
    async fn run(mut self, mut ops: mpsc::UnboundedReceiver<Op>) {
        while let Some(op) = ops.recv().await {
            match op {
                Op::EnsureVips { id, ifindex, vips } => self.ensure(id, ifindex, vips).await,
                Op::ClearVips { id } => self.clear(id).await,
                Op::EnsureVmac {
                    id,
                    parent,
                    name,
                    mac,
                } => {
                    let result = self.make_vmac(parent, &name, mac).await;
                    self.tell(Command::VmacReady { id, result });
                }
                Op::DeleteLink { index } => {
                    if let Err(e) = vmac::delete_link(&self.netlink, index).await
                        && let Some(suppressed) =
                            self.warnings.check((0, "delete_link"), Instant::now())
                    {
                        warn!(ifindex = index, error = %e, suppressed, "removing a VMAC interface failed");
                    }
                    self.release_arp_guard(index);
                }
                Op::Describe { id, name } => {
                    let iface = match self.netlink.interface(&name).await {
                        Ok(info) => info.as_ref().map(crate::manager::iface_of),
                        Err(e) => {
                            if let Some(suppressed) =
                                self.warnings.check((id.0, "describe"), Instant::now())
                            {
                                warn!(interface = %name, error = %e, suppressed, "looking up an interface failed");
                            }
                            None
                        }
                    };
                    self.tell(Command::InterfaceFound { id, iface });
                }
                Op::RemoveAddresses {
                    ifindex,
                    vips,
                    done,
                } => {
                    for vip in vips {
                        if let Err(e) = self
                            .netlink
                            .remove_address(ifindex, vip.addr, vip.prefix_len)
                            .await
                            && let Some(suppressed) =
                                self.warnings.check((0, "remove_leftover"), Instant::now())
                        {
                            warn!(ifindex, address = %vip.addr, error = %e, suppressed, "removing a left-over virtual address failed");
                        }
                    }
                    let _ = done.send(());
                }
                Op::Flush { done } => {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn make_vmac(&mut self, parent: u32, name: &str, mac: [u8; 6]) -> Result<Iface, String> {
        let index = vmac::ensure_macvlan(&self.netlink, parent, name, mac)
            .await
            .map_err(|e| e.to_string())?;
        info!(interface = name, ifindex = index, "VMAC interface ready");
        if let Err(e) = self.guard_arp(parent, index).await {
            warn!(interface = name, error = %e, "cannot make the parent interface leave ARP for the VMAC's addresses to the VMAC; clients may learn the parent's MAC for the VIP");
        }
        Ok(Iface {
            index,
            name: name.to_owned(),
            up: true,
            mac: Some(mac),
            addresses: Vec::new(),
        })
    }

    /// The parent of a VMAC must not answer ARP for the VIPs on the VMAC, or clients
    /// learn the parent's MAC and the VMAC is pointless (Linux answers ARP for any local
    /// address on any interface by default); see [`ARP_GUARD`].
    async fn guard_arp(&mut self, parent: u32, vmac_index: u32) -> Result<(), String> {
        if self.vmac_parents.insert(vmac_index, parent) == Some(parent) {
            return Ok(());
        }
        if let Some(guard) = self.arp_guards.get_mut(&parent) {
            guard.vmacs += 1;
            return Ok(());
        }
        let info = self
            .netlink
            .interface_by_index(parent)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("interface {parent} is gone"))?;
        let mut saved = Vec::with_capacity(ARP_GUARD.len());
        for (key, _) in ARP_GUARD {
            let old =
                read_interface_sysctl(Family::Ipv4, &info.name, key).map_err(|e| e.to_string())?;
            saved.push((key, old));
        }
        for (key, value) in ARP_GUARD {
            write_interface_sysctl(Family::Ipv4, &info.name, key, value)
                .map_err(|e| e.to_string())?;
        }
        let guard = ArpGuard {
            name: info.name.clone(),
            saved,
            vmacs: 1,
        };
        self.arp_guards.insert(parent, guard);
        Ok(())
    }

    fn release_arp_guard(&mut self, vmac_index: u32) {
        let Some(parent) = self.vmac_parents.remove(&vmac_index) else {
            return;
        };
        let Some(guard) = self.arp_guards.get_mut(&parent) else {
            return;
        };
        guard.vmacs = guard.vmacs.saturating_sub(1);
        if guard.vmacs > 0 {
            return;
        }
        if let Some(guard) = self.arp_guards.remove(&parent) {
            for (key, value) in &guard.saved {
                if let Err(e) = write_interface_sysctl(Family::Ipv4, &guard.name, key, value) {
                    warn!(interface = %guard.name, key, error = %e, "cannot restore an ARP setting");
                }
            }
        }
    }

    async fn ensure(&mut self, id: InstanceId, ifindex: u32, wanted: Vec<Vip>) {
        let (old_index, old) = self.installed.remove(&id).unwrap_or((ifindex, Vec::new()));
        let mut errors = Vec::new();
        for vip in old
            .iter()
            .filter(|v| old_index != ifindex || !wanted.contains(v))
        {
            if let Err(e) = self
                .netlink
                .remove_address(old_index, vip.addr, vip.prefix_len)
                .await
            {
                errors.push(format!("removing {}/{}: {e}", vip.addr, vip.prefix_len));
            }
        }
        let mut now = Vec::with_capacity(wanted.len());
        for vip in wanted {
            let already = old_index == ifindex && old.contains(&vip);
            if already {
                now.push(vip);
                continue;
            }
            match self
                .netlink
                .add_address(ifindex, vip.addr, vip.prefix_len)
                .await
            {
                Ok(()) => now.push(vip),
                Err(e) => errors.push(format!("adding {}/{}: {e}", vip.addr, vip.prefix_len)),
            }
        }
        self.installed.insert(id, (ifindex, now));
        self.report(id, errors);
    }

    async fn clear(&mut self, id: InstanceId) {
        let Some((ifindex, vips)) = self.installed.remove(&id) else {
            return;
        };
        let mut errors = Vec::new();
        for vip in vips {
            if let Err(e) = self
                .netlink
                .remove_address(ifindex, vip.addr, vip.prefix_len)
                .await
            {
                errors.push(format!("removing {}/{}: {e}", vip.addr, vip.prefix_len));
            }
        }
        self.report(id, errors);
    }

    fn report(&mut self, id: InstanceId, errors: Vec<String>) {
        if errors.is_empty() {
            if self.failing.remove(&id) {
                self.tell(Command::HostError { id, error: None });
            }
            return;
        }
        let message = errors.join("; ");
        if let Some(suppressed) = self.warnings.check((id.0, "vips"), Instant::now()) {
            warn!(instance_id = id.0, error = %message, suppressed, "changing virtual addresses failed");
        }
        self.failing.insert(id);
        self.tell(Command::HostError {
            id,
            error: Some(message),
        });
    }

    fn tell(&self, command: Command) {
        if let Some(dp) = self.dataplane.get() {
            let _ = dp.send(command);
        }
    }
}
