//! Probes that watch from outside the daemons: when an address appears on a host (netlink
//! monitor), and what a client pinging the VIP saw.

use havip_e2e::Host;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Reports the moment an address is added on a host.
pub struct AddressWatch {
    child: Child,
    added: mpsc::Receiver<(String, SystemTime)>,
}

impl AddressWatch {
    pub fn start(host: &Host) -> AddressWatch {
        let mut child = Command::new("ip")
            .args(["-n", &host.ns, "-o", "monitor", "address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, added) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let at = SystemTime::now();
                if line.starts_with("Deleted") {
                    continue;
                }
                let mut words = line.split_whitespace();
                if words.any(|w| w == "inet" || w == "inet6")
                    && let Some(addr) = words.next()
                    && tx
                        .send((addr.split('/').next().unwrap_or_default().to_owned(), at))
                        .is_err()
                {
                    break;
                }
            }
        });
        // Let the monitor subscribe before anything it must see happens.
        std::thread::sleep(Duration::from_millis(100));
        AddressWatch { child, added }
    }

    /// When `addr` was added, waiting up to `within`.
    pub fn wait_for(&self, addr: &str, within: Duration) -> Option<SystemTime> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.added.recv_timeout(left) {
                Ok((a, at)) if a == addr => return Some(at),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Every address added so far, with when.
    pub fn drain(&self) -> Vec<(String, SystemTime)> {
        self.added.try_iter().collect()
    }
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How often the client pings: an outage it sees is up to this much longer than the real
/// one.
pub const PING_INTERVAL_MS: f64 = 2.0;

/// A client pinging an address every [`PING_INTERVAL_MS`]; the longest gap between replies
/// is the outage it saw.
pub struct Pinger {
    child: Child,
}

impl Pinger {
    pub fn start(client: &Host, target: &str) -> Pinger {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &client.ns,
                "ping",
                "-D",
                "-n",
                "-i",
                &format!("{}", PING_INTERVAL_MS / 1000.0),
                "-W",
                "1",
                target,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        Pinger { child }
    }

    /// Stop and return the longest gap between consecutive replies after `from`.
    pub fn stop(mut self, from: SystemTime) -> Option<Duration> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).ok()?),
            nix::sys::signal::Signal::SIGINT,
        );
        let out = self.child.stdout.take()?;
        let from = from.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
        let mut times: Vec<f64> = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect();
        let _ = self.child.wait();
        times.retain(|t| *t >= from - 1.0);
        times.sort_by(f64::total_cmp);
        let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        (times.len() > 2).then(|| Duration::from_secs_f64(gap))
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
