//! Health reports pushed through `MaintenanceService.ReportHealth`: the latest report per
//! check, held in memory until its ttl runs out. No report yet, or an expired one, is
//! failing.

use super::book::Health;
use std::collections::HashMap;
use tokio::time::Instant;

#[derive(Clone, Debug)]
struct Report {
    healthy: bool,
    detail: String,
    /// `None`: holds until the next report.
    expires: Option<Instant>,
    ttl: Option<std::time::Duration>,
}

#[derive(Debug, Default)]
pub(super) struct Reports {
    latest: HashMap<String, Report>,
}

impl Reports {
    pub fn record(
        &mut self,
        check: &str,
        healthy: bool,
        ttl: Option<std::time::Duration>,
        detail: String,
        now: Instant,
    ) {
        self.latest.insert(
            check.to_owned(),
            Report {
                healthy,
                detail,
                expires: ttl.map(|t| now + t),
                ttl,
            },
        );
    }

    /// What a tracker following `check` says at `now`.
    pub fn health(&self, check: &str, now: Instant) -> (Health, String) {
        let Some(r) = self.latest.get(check) else {
            return (Health::Failing, format!("no report for {check} yet"));
        };
        let words = if r.detail.is_empty() {
            if r.healthy {
                "reported healthy".to_owned()
            } else {
                "reported failing".to_owned()
            }
        } else {
            r.detail.clone()
        };
        match (r.expires, r.ttl) {
            (Some(at), Some(ttl)) if at <= now => (
                Health::Failing,
                format!(
                    "no report for {check} within {} (last: {words})",
                    humantime::format_duration(ttl)
                ),
            ),
            _ if r.healthy => (Health::Healthy, words),
            _ => (Health::Failing, words),
        }
    }

    /// The next moment a report lapses, if any is still running.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.latest
            .values()
            .filter_map(|r| r.expires)
            .filter(|&at| at > now)
            .min()
    }

    /// The checks whose report lapsed in `(after, now]`.
    pub fn lapsed(&self, after: Instant, now: Instant) -> Vec<String> {
        self.latest
            .iter()
            .filter(|(_, r)| r.expires.is_some_and(|at| at > after && at <= now))
            .map(|(c, _)| c.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn before_the_first_report_after_it_and_after_the_ttl() {
        let mut r = Reports::default();
        let t0 = Instant::now();
        assert_eq!(r.health("db", t0).0, Health::Failing);
        r.record(
            "db",
            true,
            Some(Duration::from_secs(5)),
            "lag 0 s".into(),
            t0,
        );
        assert_eq!(r.health("db", t0), (Health::Healthy, "lag 0 s".to_owned()));
        assert_eq!(r.next_expiry(t0), Some(t0 + Duration::from_secs(5)));
        let later = t0 + Duration::from_secs(6);
        assert_eq!(r.lapsed(t0, later), ["db"]);
        let (h, detail) = r.health("db", later);
        assert_eq!(h, Health::Failing);
        assert!(detail.starts_with("no report for db within 5s"), "{detail}");
        r.record("db", false, None, String::new(), later);
        assert_eq!(
            r.health("db", later + Duration::from_secs(3600)),
            (Health::Failing, "reported failing".to_owned())
        );
        assert_eq!(r.next_expiry(later), None);
    }
}
