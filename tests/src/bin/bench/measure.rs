//! Measuring processes and summarising samples: CPU time and RSS from /proc, medians and
//! spreads.

use std::time::{Duration, Instant};

/// Clock ticks per second for /proc/PID/stat.
fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
}

/// User + system CPU time a process has used so far (all its threads).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields we want come after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the man page, so utime (14) is index 11, stime 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = ticks_per_second();
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
}

/// Resident memory of a process, in bytes.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU share of one core a process uses over `window`.
pub fn cpu_share(pid: u32, window: Duration) -> Option<f64> {
    let before = cpu_time(pid)?;
    let start = Instant::now();
    std::thread::sleep(window);
    let after = cpu_time(pid)?;
    let elapsed = start.elapsed();
    Some((after - before).as_secs_f64() / elapsed.as_secs_f64())
}

/// The median and spread of a set of samples.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub p99: f64,
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn summarize(samples: &[f64]) -> Summary {
    let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return Summary::default();
    }
    Summary {
        n: s.len(),
        median: percentile(&s, 50.0),
        min: s[0],
        max: s[s.len() - 1],
        p99: percentile(&s, 99.0),
    }
}

impl Summary {
    /// "353 ms (349–361, n=10)".
    pub fn ms(&self) -> String {
        if self.n == 0 {
            return "—".into();
        }
        format!(
            "{:.0} ms ({:.0}–{:.0}, n={})",
            self.median, self.min, self.max, self.n
        )
    }

    /// "4.1 % (3.9–4.4)".
    pub fn percent(&self) -> String {
        if self.n == 0 {
            return "—".into();
        }
        format!("{:.1} % ({:.1}–{:.1})", self.median, self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let s = summarize(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((s.n, s.median, s.min, s.max), (3, 2.0, 1.0, 3.0));
    }

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        assert!(cpu_time(pid).is_some());
        assert!(rss(pid).unwrap_or(0) > 0);
    }
}
