//! keepalived (Debian's package) as a VRRP peer inside a lab namespace.

use crate::lab::Host;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The keepalived settings a test varies.
#[derive(Clone, Debug)]
pub struct KeepalivedConfig {
    pub version: u32,
    pub priority: u32,
    pub advert_int: &'static str,
    pub vip: String,
    pub unicast_src: Option<String>,
    pub unicast_peers: Vec<String>,
    pub auth_pass: Option<String>,
    pub nopreempt: bool,
}

impl KeepalivedConfig {
    pub fn render(&self, router_id: &str) -> String {
        let mut s = format!(
            "global_defs {{\n  router_id {router_id}\n  vrrp_version {}\n  enable_script_security\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
             priority {}\n  advert_int {}\n  garp_master_delay 1\n",
            self.version, self.priority, self.advert_int
        );
        if self.nopreempt {
            s.push_str("  nopreempt\n");
        }
        if let Some(p) = &self.auth_pass {
            s.push_str(&format!(
                "  authentication {{\n    auth_type PASS\n    auth_pass {p}\n  }}\n"
            ));
        }
        if let Some(src) = &self.unicast_src {
            s.push_str(&format!("  unicast_src_ip {src}\n  unicast_peer {{\n"));
            for p in &self.unicast_peers {
                s.push_str(&format!("    {p}\n"));
            }
            s.push_str("  }\n");
        }
        s.push_str(&format!(
            "  virtual_ipaddress {{\n    {}\n  }}\n}}\n",
            self.vip
        ));
        s
    }
}

/// A running keepalived. Dropping it kills it.
#[derive(Debug)]
pub struct Keepalived {
    pub dir: PathBuf,
    child: Option<Child>,
}

/// Whether keepalived is installed (CI installs it).
pub fn available() -> bool {
    let found = Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty());
    assert!(
        found,
        "keepalived not found: install it with `apt-get install -y keepalived`; .ci/run does this"
    );
    found
}

impl Keepalived {
    pub fn start(host: &Host, name: &str, config: &KeepalivedConfig) -> Keepalived {
        Keepalived::start_with_text(host, name, &config.render(name))
    }

    /// Start keepalived with a configuration written out in full.
    pub fn start_with_text(host: &Host, name: &str, config: &str) -> Keepalived {
        let dir = std::env::temp_dir().join(format!("{}-{name}", host.ns));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("keepalived.conf");
        std::fs::write(&conf, config).unwrap();
        let log = std::fs::File::create(dir.join("keepalived.log")).unwrap();
        // The command line BASELINE.md's figures were measured with: no detailed logging,
        // which the benchmark would otherwise charge to keepalived.
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns, "keepalived", "-n", "-l"])
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(dir.join("keepalived.pid"))
            .arg("-r")
            .arg(dir.join("vrrp.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let k = Keepalived {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !k.log().contains("Entering BACKUP STATE")
            && !k.log().contains("Entering MASTER STATE")
        {
            assert!(
                Instant::now() < deadline,
                "keepalived did not start; log:\n{}",
                k.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        k
    }

    /// The VRRP child process, the one that does the work (keepalived forks it).
    pub fn vrrp_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("vrrp.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keepalived.log")).unwrap_or_default()
    }

    /// SIGTERM: keepalived sends priority 0 and removes its VIPs.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(
                Pid::from_raw(i32::try_from(child.id()).unwrap()),
                Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let vrrp = self.vrrp_pid();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The VRRP child usually follows its killed parent out, but under load one has been
        // seen to outlive it, orphaned in a namespace that no longer had a name. Kill it
        // too, once its command line shows it is this keepalived and not a reused PID.
        if let Some(pid) = vrrp
            && is_ours(pid, &self.dir)
            && let Ok(pid) = i32::try_from(pid)
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether process `pid` is a keepalived started with its files in `dir`.
fn is_ours(pid: u32, dir: &std::path::Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.starts_with("keepalived") && cmdline.contains(&*dir.to_string_lossy())
}
