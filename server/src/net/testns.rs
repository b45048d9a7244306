//! Network namespaces for tests, so that no test ever sends a packet, adds an address or
//! creates an interface in the machine's own network namespace.
//!
//! Each [`NetNs`] is a fresh namespace with a unique name (`hvnet-<pid>-<n>-<tag>`),
//! deleted when the value is dropped, on success, failure or panic alike. Code under test
//! runs through [`NetNs::run`]: on a new thread that enters the namespace with `setns`,
//! verifies it is no longer in the namespace of PID 1 (refusing to go on otherwise), and
//! only then builds a current-thread tokio runtime. Sockets and netlink connections made
//! there belong to the namespace for their whole life, whichever thread uses them later.
//!
//! Tests call [`skip`] first: with `HAVIP_SKIP_NETNS=1` they return early saying so;
//! otherwise a machine where namespaces cannot be made fails them with a message that says
//! why.

use super::{Netlink, primary_address};
use havip_vrrp::types::Family;
use nix::sched::{CloneFlags, setns};
use socket2::{Domain, Protocol, Socket, Type};
use std::fs::{self, File};
use std::future::Future;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const PREFIX: &str = "hvnet-";
const NETNS_DIR: &str = "/var/run/netns";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether to skip a namespace test (`HAVIP_SKIP_NETNS=1`), printing that it was skipped.
pub fn skip(test: &str) -> bool {
    let skip = std::env::var("HAVIP_SKIP_NETNS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!(
            "SKIPPED {test}: HAVIP_SKIP_NETNS=1 (this test needs root and network namespaces)"
        );
    }
    skip
}

/// A network namespace that exists as long as this value.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `hvnet-<pid>-<n>-<tag>` with loopback up and IPv6 DAD off for every
    /// interface made in it (so link-local addresses are usable at once; tests that need
    /// DAD turn it back on for their interface).
    pub fn new(tag: &str) -> NetNs {
        remove_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}-{tag}", std::process::id());
        if let Err(e) = command("ip", &["netns", "add", &name]) {
            panic!(
                "cannot create network namespace {name}: {e}\nthese tests need root (CAP_SYS_ADMIN) \
                 and iproute2; set HAVIP_SKIP_NETNS=1 to skip them"
            );
        }
        let ns = NetNs { name };
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>`; panics with ip's message if it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        command("ip", &full).unwrap_or_else(|e| panic!("ip {}: {e}", full.join(" ")))
    }

    /// `ip netns exec <ns> <cmd>`; panics if it fails.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        command("ip", &full).unwrap_or_else(|e| panic!("ip {}: {e}", full.join(" ")))
    }

    /// Runs `f` and the future it returns inside the namespace, on a thread of its own with
    /// a current-thread tokio runtime, and returns the result. A panic inside is re-raised
    /// here.
    pub fn run<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        thread::scope(|scope| {
            let worker = thread::Builder::new()
                .name(format!("ns {}", self.name))
                .spawn_scoped(scope, || {
                    enter(&self.name);
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("tokio runtime");
                    runtime.block_on(f())
                })
                .expect("spawn namespace thread");
            match worker.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = command("ip", &["netns", "del", &self.name]) {
            eprintln!(
                "warning: cannot delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// A veth pair: `a_if` in `a`, `b_if` in `b`, both up. Created from inside `a` and never
/// visible in the machine's namespace.
pub fn veth(a: &NetNs, a_if: &str, b: &NetNs, b_if: &str) {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// Namespaces `a` and `b` joined by veth `va` – `vb`, holding 192.0.2.1/24 and 192.0.2.2/24.
pub fn ipv4_pair() -> (NetNs, NetNs) {
    let a = NetNs::new("a");
    let b = NetNs::new("b");
    veth(&a, "va", &b, "vb");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "va"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "vb"]);
    (a, b)
}

/// Moves the calling thread into namespace `name`, and makes sure it worked.
fn enter(name: &str) {
    let file = File::open(format!("{NETNS_DIR}/{name}"))
        .unwrap_or_else(|e| panic!("cannot open namespace {name}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("setns into {name} failed: {e}"));
    assert_not_in_root_namespace();
}

/// Panics unless the calling thread is in a network namespace other than the one the test
/// process was started in (its main thread's, which never moves) and, where PID 1's can be
/// read (sandboxes may hide it), other than PID 1's.
pub fn assert_not_in_root_namespace() {
    let ns = |path: &str| fs::metadata(path).map(|m| (m.dev(), m.ino()));
    let refuse = |why: String| -> ! { panic!("refusing to run network code: {why}") };
    let this_thread = ns("/proc/thread-self/ns/net")
        .unwrap_or_else(|e| refuse(format!("cannot stat /proc/thread-self/ns/net: {e}")));
    let process_start = ns("/proc/self/ns/net")
        .unwrap_or_else(|e| refuse(format!("cannot stat /proc/self/ns/net: {e}")));
    if this_thread == process_start {
        refuse("this thread is in the network namespace the tests were started in".into());
    }
    if let Ok(init) = ns("/proc/1/ns/net")
        && this_thread == init
    {
        refuse("this thread is in PID 1's network namespace".into());
    }
}

/// Deletes namespaces a crashed or killed test process left behind (its pid is gone).
fn remove_stale() {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && fs::metadata(format!("/proc/{pid}")).is_err() {
            let _ = command("ip", &["netns", "del", &name]);
        }
    }
}

fn command(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        ))
    }
}

/// The usable (non-tentative) link-local address of `ifname`, waiting up to 10 s for it:
/// the kernel adds it as the link comes up and clears its tentative flag from a work queue
/// a moment later, even with DAD off.
pub async fn usable_link_local(nl: &Netlink, ifname: &str) -> Ipv6Addr {
    for _ in 0..100 {
        let info = nl.interface(ifname).await.unwrap().unwrap();
        if let Some(IpAddr::V6(a)) = primary_address(&info, Family::Ipv6) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{ifname} has no usable link-local address after 10 s");
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).unwrap_or_else(|e| panic!("no interface {name}: {e}"))
}

/// Every frame seen on one interface (an `AF_PACKET` socket, `ETH_P_ALL`), for counting
/// what the code under test put on the wire. Open it inside the namespace; it can be read
/// from any thread afterwards.
#[derive(Debug)]
pub struct Capture {
    socket: Socket,
}

const ETH_P_ALL: u16 = 0x0003;

impl Capture {
    pub fn open(ifindex: u32) -> Capture {
        assert_not_in_root_namespace();
        let protocol = Protocol::from(i32::from(ETH_P_ALL.to_be()));
        let socket =
            Socket::new(Domain::PACKET, Type::RAW, Some(protocol)).expect("AF_PACKET socket");
        let addr = super::sys::packet_addr(ifindex, ETH_P_ALL, [0; 6]).expect("ifindex fits");
        socket
            .bind(&addr)
            .expect("bind the capture to its interface");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("SO_RCVTIMEO");
        socket.set_recv_buffer_size(8 << 20).expect("SO_RCVBUF");
        Capture { socket }
    }

    /// The next frame, or `None` once `deadline` has passed.
    pub fn next_frame(&self, deadline: Instant) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        loop {
            match (&self.socket).read(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Some(buf);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("capture failed: {e}"),
            }
        }
    }
}
