//! Network namespaces: a bridge in its own namespace, one veth from it to each host.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Run a command; panic with its output when it fails.
pub fn run(cmd: &[&str]) -> Output {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run a command, returning whether it worked.
pub fn try_run(cmd: &[&str]) -> bool {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A host on the lab's segment: a namespace with `eth0` wired to the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: String,
    /// The bridge-side end of the host's veth (in the bridge namespace).
    pub port: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

impl Host {
    /// Run a command inside the host's namespace.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(cmd);
        run(&full)
    }

    pub fn try_exec(&self, cmd: &[&str]) -> bool {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(cmd);
        try_run(&full)
    }

    /// The addresses on eth0, as `ip -o addr` prints them ("10.0.0.1/24", …).
    pub fn addresses(&self) -> Vec<String> {
        let out = run(&["ip", "-n", &self.ns, "-o", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet" || *w == "inet6")?;
                words.next().map(str::to_owned)
            })
            .collect()
    }

    /// The MAC address of eth0.
    pub fn mac(&self) -> String {
        let out = run(&["ip", "-n", &self.ns, "-o", "link", "show", "dev", "eth0"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut words = text.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .unwrap_or_else(|| panic!("no MAC address on eth0 of {}: {text}", self.ns))
            .to_owned()
    }

    /// The IPv6 link-local address of eth0 (what VRRPv3 over IPv6 sends from): the first
    /// listed, so read it before a VRRP master adds the virtual router's own.
    pub fn link_local(&self) -> std::net::Ipv6Addr {
        let out = run(&[
            "ip", "-n", &self.ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                w.find(|w| *w == "inet6")?;
                w.next()?.split('/').next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no link-local address on eth0 of {}: {text}", self.ns))
    }

    /// The link-layer address this host's neighbour table holds for `addr` on eth0, if
    /// any (ARP for IPv4, neighbour discovery for IPv6).
    pub fn neighbour(&self, addr: &str) -> Option<String> {
        let out = run(&["ip", "-n", &self.ns, "neigh", "show", addr, "dev", "eth0"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut words = text.split_whitespace();
        words
            .find(|w| *w == "lladdr")
            .and_then(|_| words.next())
            .map(str::to_owned)
    }

    pub fn has_address(&self, addr: &str) -> bool {
        self.addresses()
            .iter()
            .any(|a| a.split('/').next() == Some(addr))
    }
}

/// A segment: one bridge namespace and any number of hosts. Dropping it removes every
/// namespace it made.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    pub bridge_ns: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// A new, empty segment. `tag` goes into the namespace names to tell tests apart.
    pub fn new(tag: &str) -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("hv{}-{n}-{tag}", std::process::id());
        let bridge_ns = format!("{prefix}-br");
        let mut lab = Lab {
            prefix,
            bridge_ns: bridge_ns.clone(),
            namespaces: Vec::new(),
        };
        lab.add_namespace(&bridge_ns);
        run(&[
            "ip", "-n", &bridge_ns, "link", "add", "br0", "type", "bridge",
        ]);
        // No STP, no forwarding delay: ports forward as soon as they are up.
        run(&[
            "ip",
            "-n",
            &bridge_ns,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        run(&["ip", "-n", &bridge_ns, "link", "set", "br0", "up"]);
        lab
    }

    fn add_namespace(&mut self, ns: &str) {
        run(&["ip", "netns", "add", ns]);
        self.namespaces.push(ns.to_owned());
        run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }

    /// Add a host named `name` with the given addresses on its eth0 (e.g. "10.0.0.1/24",
    /// "2001:db8::1/64"). IPv6 DAD is off, so addresses are usable at once.
    pub fn host(&mut self, name: &str, ipv4: Option<&str>, ipv6: Option<&str>) -> Host {
        let ns = format!("{}-{name}", self.prefix);
        self.add_namespace(&ns);
        let port = format!("p-{name}");
        run(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            &ns,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.bridge_ns,
        ]);
        run(&[
            "ip",
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            &port,
            "master",
            "br0",
        ]);
        run(&["ip", "-n", &self.bridge_ns, "link", "set", &port, "up"]);
        for key in [
            "net.ipv6.conf.all.accept_dad",
            "net.ipv6.conf.default.accept_dad",
        ] {
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                &format!("{key}=0"),
            ]);
        }
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.eth0.accept_dad=0",
        ]);
        if let Some(a) = ipv4 {
            run(&["ip", "-n", &ns, "addr", "add", a, "dev", "eth0"]);
        }
        if let Some(a) = ipv6 {
            run(&["ip", "-n", &ns, "addr", "add", a, "dev", "eth0", "nodad"]);
        }
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        Host {
            ns,
            port,
            ipv4: ipv4.map(str::to_owned),
            ipv6: ipv6.map(str::to_owned),
        }
    }

    /// Cut a host off the segment at the bridge: its eth0 loses carrier, as when a cable
    /// is pulled or a cloud NIC is detached.
    pub fn unplug(&self, host: &Host) {
        run(&[
            "ip",
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            &host.port,
            "down",
        ]);
    }

    pub fn plug(&self, host: &Host) {
        run(&["ip", "-n", &self.bridge_ns, "link", "set", &host.port, "up"]);
    }

    /// Bridge port isolation on (or off) for a host's port: isolated hosts cannot reach
    /// each other, not even by multicast, but still reach every host that is not isolated,
    /// and their links stay up. Isolating two nodes partitions them from each other while
    /// a client still sees both, as when a link or switch between them fails.
    pub fn isolate(&self, host: &Host, on: bool) {
        run(&[
            "bridge",
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            "dev",
            &host.port,
            "isolated",
            if on { "on" } else { "off" },
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Best effort: a namespace whose processes are still exiting goes a moment later.
            for _ in 0..20 {
                if try_run(&["ip", "netns", "del", ns]) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}
