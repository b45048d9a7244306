//! A VRRP node in the lab running havipd or keepalived with many instances, set up the
//! same way for both so their numbers compare.

use havip_e2e::keepalived::Keepalived;
use havip_e2e::vrrp::millis;
use havip_e2e::{Daemon, Host};
use havip_proto::v1::{self, CreateInstanceRequest, InstanceSpec};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Havipd,
    Keepalived,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Havipd => "havipd",
            Impl::Keepalived => "keepalived",
        }
    }
}

/// The instances a node runs: VRIDs `first..=last`, each with one VIP.
#[derive(Clone, Debug)]
pub struct Setup {
    pub version: u32,
    pub interval: Duration,
    pub unicast: bool,
    pub vrids: std::ops::RangeInclusive<u8>,
    /// The interfaces to run on (one instance per VRID on each).
    pub interfaces: Vec<String>,
    /// VIP of (interface index, vrid): "10.0.0.100/24" for a single instance, /32s else.
    pub single_vip: Option<String>,
    /// keepalived only: a notify_master script, called as keepalived calls notify scripts.
    pub notify_master: Option<String>,
}

impl Setup {
    pub fn vip(&self, iface: usize, vrid: u8) -> String {
        match &self.single_vip {
            Some(v) => v.clone(),
            None => format!("10.{}.{}.{vrid}/32", 100 + iface, 0),
        }
    }

    pub fn count(&self) -> usize {
        self.vrids.clone().count() * self.interfaces.len()
    }

    fn advert_int_keepalived(&self) -> String {
        let s = self.interval.as_secs_f64();
        if self.version == 2 {
            format!("{}", s.round() as u64)
        } else {
            format!("{s}")
        }
    }
}

pub enum Proc {
    Havipd(Daemon),
    Keepalived(Keepalived),
}

pub struct Node {
    pub host: Host,
    pub kind: Impl,
    pub proc: Option<Proc>,
    pub name: String,
    pub setup: Setup,
    pub priority: u32,
    pub me: String,
    pub peer: String,
}

fn ipv4(h: &Host) -> String {
    h.ipv4
        .clone()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl Node {
    pub async fn start(
        kind: Impl,
        host: &Host,
        name: &str,
        setup: &Setup,
        priority: u32,
        peer: &Host,
    ) -> Node {
        let mut node = Node {
            host: host.clone(),
            kind,
            proc: None,
            name: name.to_owned(),
            setup: setup.clone(),
            priority,
            me: ipv4(host),
            peer: ipv4(peer),
        };
        node.launch().await;
        node
    }

    async fn launch(&mut self) {
        match self.kind {
            Impl::Havipd => {
                let daemon = match self.proc.take() {
                    Some(Proc::Havipd(mut d)) => {
                        d.restart();
                        d
                    }
                    _ => {
                        let d =
                            Daemon::start_with(&self.host, &self.name, &["--log-level", "info"]);
                        self.create_instances(&d).await;
                        d
                    }
                };
                self.proc = Some(Proc::Havipd(daemon));
            }
            Impl::Keepalived => {
                // The old one goes first: dropping it removes its folder, which the new one
                // reuses.
                self.proc = None;
                let k =
                    Keepalived::start_with_text(&self.host, &self.name, &self.keepalived_conf());
                self.proc = Some(Proc::Keepalived(k));
            }
        }
    }

    async fn create_instances(&self, d: &Daemon) {
        let mut c = d.instances().await;
        for (i, iface) in self.setup.interfaces.iter().enumerate() {
            for vrid in self.setup.vrids.clone() {
                let mut spec = InstanceSpec {
                    interface: iface.clone(),
                    vrid: u32::from(vrid),
                    version: Some(self.setup.version),
                    priority: Some(self.priority),
                    advert_interval: millis(
                        i64::try_from(self.setup.interval.as_millis()).unwrap_or(1000),
                    ),
                    virtual_addresses: vec![self.setup.vip(i, vrid)],
                    garp: Some(v1::GarpSettings {
                        repeat: Some(1),
                        delay: millis(0),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                if self.setup.unicast {
                    spec.unicast_source = self.me.clone();
                    spec.unicast_peers = vec![self.peer.clone()];
                }
                c.create_instance(CreateInstanceRequest {
                    name: format!("{iface}-{vrid}"),
                    spec: Some(spec),
                    validate_only: false,
                    comment: String::new(),
                })
                .await
                .unwrap_or_else(|e| panic!("creating {iface}-{vrid}: {e:?}\n{}", d.log()));
            }
        }
    }

    fn keepalived_conf(&self) -> String {
        let mut s = format!(
            "global_defs {{\n  router_id {}\n  vrrp_version {}\n  enable_script_security\n  script_user root\n}}\n",
            self.name, self.setup.version
        );
        for (i, iface) in self.setup.interfaces.iter().enumerate() {
            for vrid in self.setup.vrids.clone() {
                let _ = write!(
                    s,
                    "vrrp_instance VI_{i}_{vrid} {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id {vrid}\n  priority {}\n  advert_int {}\n  garp_master_delay 0\n  garp_master_repeat 1\n",
                    self.priority,
                    self.setup.advert_int_keepalived()
                );
                if self.setup.unicast {
                    let _ = write!(
                        s,
                        "  unicast_src_ip {}\n  unicast_peer {{\n    {}\n  }}\n",
                        self.me, self.peer
                    );
                }
                if let Some(script) = &self.setup.notify_master {
                    let _ = writeln!(s, "  notify_master \"{script} {vrid}\"");
                }
                let _ = write!(
                    s,
                    "  virtual_ipaddress {{\n    {} dev {iface}\n  }}\n}}\n",
                    self.setup.vip(i, vrid)
                );
            }
        }
        s
    }

    /// The process whose CPU and memory count: havipd, or keepalived's VRRP child.
    pub fn pid(&self) -> Option<u32> {
        match self.proc.as_ref()? {
            Proc::Havipd(d) => d.pid().map(|p| u32::try_from(p.as_raw()).unwrap_or(0)),
            Proc::Keepalived(k) => k.vrrp_pid(),
        }
    }

    /// SIGTERM: a clean stop (priority 0 adverts).
    pub fn stop(&mut self) {
        match self.proc.as_mut() {
            Some(Proc::Havipd(d)) => d.stop(),
            Some(Proc::Keepalived(k)) => k.stop(),
            None => {}
        }
    }

    pub async fn restart(&mut self) {
        self.launch().await;
    }

    pub fn daemon(&self) -> Option<&Daemon> {
        match self.proc.as_ref()? {
            Proc::Havipd(d) => Some(d),
            Proc::Keepalived(_) => None,
        }
    }

    pub fn keepalived(&self) -> Option<&Keepalived> {
        match self.proc.as_ref()? {
            Proc::Keepalived(k) => Some(k),
            Proc::Havipd(_) => None,
        }
    }

    /// The daemon's log, for a report on why a pair misbehaved.
    pub fn log(&self) -> String {
        match self.proc.as_ref() {
            Some(Proc::Havipd(d)) => d.log(),
            Some(Proc::Keepalived(k)) => k.log(),
            None => String::new(),
        }
    }

    /// How many of this node's VIPs are on its interfaces now.
    pub fn vips_held(&self) -> usize {
        let out = self.host.exec(&["ip", "-o", "addr", "show"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        for (i, _) in self.setup.interfaces.iter().enumerate() {
            for vrid in self.setup.vrids.clone() {
                let vip = self.setup.vip(i, vrid);
                let addr = vip.split('/').next().unwrap_or_default();
                if text.contains(&format!(" {addr}/")) {
                    n += 1;
                }
            }
        }
        n
    }
}
