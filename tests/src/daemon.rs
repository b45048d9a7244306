//! A havipd running inside a lab namespace, with its own database and unix socket in a
//! temporary folder, and gRPC clients for it. Readiness is what systemd would see: the
//! daemon's READY=1 on a NOTIFY_SOCKET in its folder.

use crate::lab::Host;
use havip_proto::v1::event_service_client::EventServiceClient;
use havip_proto::v1::history_service_client::HistoryServiceClient;
use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::maintenance_service_client::MaintenanceServiceClient;
use havip_proto::v1::sync_group_service_client::SyncGroupServiceClient;
use hyper_util::rt::TokioIo;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// A havipd process. Dropping it kills the process (SIGKILL) if it still runs.
#[derive(Debug)]
pub struct Daemon {
    pub ns: String,
    pub dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
    /// Where the daemon sends READY=1 and STOPPING=1 (its NOTIFY_SOCKET).
    notify: UnixDatagram,
}

/// A binary this package builds (`e2e-havipd`, `e2e-havipctl`): next to the running
/// executable (a binary in target/<profile>) or in the folder above it (a test executable
/// in target/<profile>/deps).
pub fn test_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let here = exe.parent().unwrap();
    let candidates = [here.join(name), here.parent().unwrap_or(here).join(name)];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing next to {}; build it with cargo build -p havip-e2e",
                exe.display()
            )
        })
}

pub fn havipd_bin() -> PathBuf {
    test_bin("e2e-havipd")
}

impl Daemon {
    /// Start havipd in `host`'s namespace with a fresh folder for its files.
    pub fn start(host: &Host, name: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("{}-{name}", host.ns));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Daemon::launch(&host.ns, dir, &[])
    }

    /// Start havipd with extra command-line arguments.
    pub fn start_with(host: &Host, name: &str, extra: &[&str]) -> Daemon {
        let dir = std::env::temp_dir().join(format!("{}-{name}", host.ns));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Daemon::launch(&host.ns, dir, extra)
    }

    /// Start the daemon again after [`Self::stop`] or [`Self::kill9`], with the same
    /// database, socket and arguments.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a daemon that still runs");
        self.child = Some(Daemon::spawn(&self.ns, &self.dir, &self.extra));
        self.wait_ready();
    }

    fn launch(ns: &str, dir: PathBuf, extra: &[&str]) -> Daemon {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let notify = UnixDatagram::bind(dir.join("notify.sock")).unwrap();
        let child = Daemon::spawn(ns, &dir, &extra);
        let mut daemon = Daemon {
            ns: ns.to_owned(),
            dir,
            extra,
            child: Some(child),
            notify,
        };
        daemon.wait_ready();
        daemon
    }

    /// The command that runs havipd in `ns` with its files in `dir`; `--db` and `--listen`
    /// point into `dir` unless `extra` gives them.
    fn command(ns: &str, dir: &Path, extra: &[String]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(havipd_bin());
        if !extra.iter().any(|a| a == "--db") {
            cmd.arg("--db").arg(dir.join("havip.db"));
        }
        if !extra.iter().any(|a| a == "--listen") {
            cmd.arg("--listen")
                .arg(format!("unix://{}", dir.join("havipd.sock").display()));
        }
        if !extra.iter().any(|a| a == "--log-level") {
            cmd.args(["--log-level", "havipd=debug,info"]);
        }
        cmd.args(extra)
            .env("NOTIFY_SOCKET", dir.join("notify.sock"))
            .stdin(Stdio::null());
        cmd
    }

    fn spawn(ns: &str, dir: &Path, extra: &[String]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("havipd.log"))
            .unwrap();
        Daemon::command(ns, dir, extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Run havipd in `host`'s namespace with `args`, expecting it to refuse to start:
    /// returns its output once it exited (within 30 s).
    pub fn run_to_exit(host: &Host, name: &str, args: &[&str]) -> Output {
        let dir = std::env::temp_dir().join(format!("{}-{name}", host.ns));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let mut child = Daemon::command(&host.ns, &dir, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("havipd {args:?} did not exit within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    /// What the daemon told its NOTIFY_SOCKET since the last call, one string per message.
    pub fn notifications(&self) -> Vec<String> {
        self.notify.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.notify.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    /// The database file: `--db` when the test gave one, else the one in its folder.
    pub fn db_path(&self) -> PathBuf {
        self.extra
            .iter()
            .position(|a| a == "--db")
            .and_then(|i| self.extra.get(i + 1))
            .map_or_else(|| self.dir.join("havip.db"), PathBuf::from)
    }

    /// A `/proc/PID/status` figure of the running daemon in KiB: "VmRSS" (resident now),
    /// "VmHWM" (the peak resident size since it started).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.pid().expect("the daemon runs");
        crate::faults::proc_status_kib(pid, field)
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("havipd.sock")
    }

    /// The server URL havipctl takes.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("havipd.log")).unwrap_or_default()
    }

    /// Wait for READY=1 (the instances are restored and the API listens), failing early
    /// with the log if the daemon exits instead.
    fn wait_ready(&mut self) {
        self.notify.set_nonblocking(false).unwrap();
        self.notify
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.notify.recv(&mut buf)
                && String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1")
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "havipd exited with {status} before it was ready; its log:\n{}",
                    self.log()
                );
            }
        }
        panic!(
            "havipd did not send READY=1 within 30 s; its log:\n{}",
            self.log()
        );
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<Pid> {
        self.child
            .as_ref()
            .map(|c| Pid::from_raw(i32::try_from(c.id()).unwrap()))
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = kill(pid, Signal::SIGTERM);
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.success(),
                        "havipd exited with {status}; log:\n{}",
                        self.log()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "havipd did not stop within 20 s of SIGTERM; log:\n{}",
                        self.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A channel to the API.
    pub async fn channel(&self) -> Channel {
        connect_unix(&self.socket()).await
    }

    pub async fn instances(&self) -> InstanceServiceClient<Channel> {
        InstanceServiceClient::new(self.channel().await)
    }

    pub async fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel().await)
    }

    pub async fn history(&self) -> HistoryServiceClient<Channel> {
        HistoryServiceClient::new(self.channel().await)
    }

    pub async fn maintenance(&self) -> MaintenanceServiceClient<Channel> {
        MaintenanceServiceClient::new(self.channel().await)
    }

    pub async fn sync_groups(&self) -> SyncGroupServiceClient<Channel> {
        SyncGroupServiceClient::new(self.channel().await)
    }
}

/// A tonic channel over a unix socket.
pub async fn connect_unix(path: &Path) -> Channel {
    connect_unix_with(path, Endpoint::from_static("http://[::]:50051")).await
}

/// A channel whose HTTP/2 receive windows are small, so a client that stops reading
/// stops the server's sending after a few KiB instead of megabytes: what a slow watcher
/// looks like to the daemon.
pub async fn connect_unix_small_window(path: &Path) -> Channel {
    let endpoint = Endpoint::from_static("http://[::]:50051")
        .initial_stream_window_size(Some(8 * 1024))
        .initial_connection_window_size(Some(8 * 1024));
    connect_unix_with(path, endpoint).await
}

async fn connect_unix_with(path: &Path, endpoint: Endpoint) -> Channel {
    let path = path.to_owned();
    endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // Keep the database and log of a failed test for a post-mortem.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
