//! Probes that watch from outside the daemons: when an address appears on a host (netlink
//! monitor), and what a client pinging the VIP saw.

use havip_e2e::Host;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

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

/// A client sending an ICMP echo request to an address every [`PING_INTERVAL_MS`], on a
/// fixed schedule whether or not replies come; the longest gap between replies is the
/// outage it saw. Its own sender rather than iputils ping, because ping slows to one
/// request per 10 ms while replies are missing, which is exactly during the outage.
pub struct Pinger {
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<std::io::Result<Vec<SystemTime>>>>,
}

impl Pinger {
    pub fn start(client: &Host, target: &str) -> Pinger {
        let target: Ipv4Addr = target.parse().expect("the VIP the bench pings is IPv4");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let worker = havip_e2e::netns::thread_in(&client.ns, move || ping(target, &stopped));
        Pinger {
            stop,
            worker: Some(worker),
        }
    }

    /// Stop and return the longest gap between consecutive replies after `from`.
    pub fn stop(mut self, from: SystemTime) -> Option<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        let replies = match self.worker.take()?.join() {
            Ok(Ok(replies)) => replies,
            Ok(Err(e)) => {
                eprintln!("the ping probe failed: {e}");
                return None;
            }
            Err(_) => return None,
        };
        longest_gap(&replies, from)
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The longest gap between consecutive replies from a second before `from` on; `None`
/// when too few replies came to tell.
fn longest_gap(replies: &[SystemTime], from: SystemTime) -> Option<Duration> {
    let since = from.checked_sub(Duration::from_secs(1))?;
    let mut times: Vec<SystemTime> = replies.iter().copied().filter(|t| *t >= since).collect();
    times.sort_unstable();
    let gap = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default())
        .max()?;
    (times.len() > 2).then_some(gap)
}

/// Sends echo requests to `target` every [`PING_INTERVAL_MS`] until `stop`, and returns
/// when each reply came. A request that would go out late is skipped, not sent in a burst.
fn ping(target: Ipv4Addr, stop: &AtomicBool) -> std::io::Result<Vec<SystemTime>> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    socket.set_nonblocking(true)?;
    let to = SockAddr::from(SocketAddrV4::new(target, 0));
    // Only the low 16 bits go on the wire; pingers in other trials use other ids.
    let id = (std::process::id() as u16) ^ (NEXT_ID.fetch_add(1, Ordering::Relaxed) << 8);
    let period = Duration::from_secs_f64(PING_INTERVAL_MS / 1000.0);
    let start = Instant::now();
    let mut replies = Vec::new();
    let mut buf = [0u8; 1500];
    let mut seq: u16 = 0;
    let mut slot: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let _ = socket.send_to(&echo_request(id, seq), &to);
        seq = seq.wrapping_add(1);
        slot += 1;
        let mut next = start + period * slot;
        let now = Instant::now();
        if next < now {
            // Late (the machine was busy): go on with the next slot still ahead.
            slot = (now - start).as_nanos().div_ceil(period.as_nanos()) as u32;
            next = start + period * slot;
        }
        // Collect replies until the next request is due. The wait is ppoll's, whose
        // timeout is a high-resolution timer: a socket receive timeout (SO_RCVTIMEO)
        // counts in scheduler ticks and would stretch every 2 ms wait to 4 or 8.
        loop {
            let left = next.saturating_duration_since(Instant::now());
            if left < Duration::from_micros(20) {
                break;
            }
            let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
            match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            loop {
                match (&socket).read(&mut buf) {
                    Ok(n) if is_echo_reply(&buf[..n], id) => replies.push(SystemTime::now()),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(replies)
}

static NEXT_ID: AtomicU16 = AtomicU16::new(0);

/// An ICMP echo request (RFC 792) with a small payload.
fn echo_request(id: u16, seq: u16) -> [u8; 16] {
    let mut packet = [0u8; 16];
    packet[0] = 8; // echo request
    packet[4..6].copy_from_slice(&id.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..].copy_from_slice(b"havip-bn");
    let checksum = internet_checksum(&packet);
    packet[2..4].copy_from_slice(&checksum.to_be_bytes());
    packet
}

/// Whether an IPv4 datagram (a raw socket delivers the IP header) is an echo reply to
/// this pinger.
fn is_echo_reply(datagram: &[u8], id: u16) -> bool {
    let Some(&first) = datagram.first() else {
        return false;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    match datagram.get(header_len..header_len + 8) {
        Some(icmp) => icmp[0] == 0 && icmp[4..6] == id.to_be_bytes(),
        None => false,
    }
}

fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_checksums_to_zero_and_its_reply_is_recognised() {
        let request = echo_request(0x1234, 7);
        assert_eq!(
            internet_checksum(&request),
            0,
            "a valid checksum sums to zero"
        );
        let mut reply = vec![0x45u8];
        reply.resize(20, 0);
        reply.extend_from_slice(&request);
        reply[20] = 0;
        assert!(is_echo_reply(&reply, 0x1234));
        assert!(!is_echo_reply(&reply, 0x1235), "another pinger's reply");
        reply[20] = 8;
        assert!(!is_echo_reply(&reply, 0x1234), "a request, not a reply");
        assert!(!is_echo_reply(&reply[..24], 0x1234), "truncated");
    }

    #[test]
    fn the_outage_is_the_longest_gap_between_replies_after_the_fault() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let before = t0 - Duration::from_millis(1500);
        let replies = [before, ms(0), ms(2), ms(4), ms(40), ms(42), ms(44)];
        assert_eq!(
            longest_gap(&replies, t0),
            Some(Duration::from_millis(36)),
            "the gap before the window does not count"
        );
        assert_eq!(longest_gap(&[ms(0), ms(2)], t0), None, "too few replies");
    }
}
