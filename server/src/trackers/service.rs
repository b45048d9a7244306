//! The tracker service: one task on the main runtime that owns every tracker's health
//! (rise/fall, report expiry, interface state) and forwards results to the data plane, plus
//! one small task per script or file tracker that only measures.

use super::book::{Health, TrackerResult};
use super::file;
use super::interface::Links;
use super::report::Reports;
use super::risefall::RiseFall;
use super::script::{self, Context, Outcome};
use crate::error::Error;
use crate::net::link::LinkEvent;
use crate::net::netlink::Netlink;
use crate::runtime::{InstanceId, RuntimeHandle};
use crate::spec::{Check, ScriptCheck, TrackerSpec, Violation, is_name};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

/// The longest a health report may hold.
pub const MAX_REPORT_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_REPORT_DETAIL: usize = 1024;

/// How the manager, the link watcher and the API talk to the tracker service.
#[derive(Clone, Debug)]
pub struct TrackerService {
    tx: mpsc::UnboundedSender<Msg>,
}

#[derive(Debug)]
enum Msg {
    Configure {
        id: InstanceId,
        instance: Arc<str>,
        trackers: Vec<TrackerSpec>,
    },
    Remove {
        id: InstanceId,
    },
    Link(LinkEvent),
    Report {
        check: String,
        healthy: bool,
        ttl: Option<Duration>,
        detail: String,
        reply: oneshot::Sender<Vec<String>>,
    },
    /// From a script probe.
    Ran {
        id: InstanceId,
        probe: u64,
        outcome: Outcome,
    },
    /// From a file probe.
    Read {
        id: InstanceId,
        probe: u64,
        health: Health,
        detail: String,
    },
    /// From an interface lookup.
    LookedUp {
        name: String,
        epoch: u64,
        found: Result<Option<(u32, bool)>, String>,
    },
}

impl TrackerService {
    /// Start the service on the current (main) runtime. Results go to `runtime`.
    pub fn spawn(runtime: RuntimeHandle, netlink: Netlink) -> TrackerService {
        let (tx, rx) = mpsc::unbounded_channel();
        let service = Service {
            runtime,
            netlink,
            tx: tx.downgrade(),
            instances: HashMap::new(),
            links: Links::default(),
            lookups: HashSet::new(),
            reports: Reports::default(),
            reports_checked: Instant::now(),
            next_probe: 1,
        };
        tokio::spawn(service.run(rx));
        TrackerService { tx }
    }

    /// The trackers of an instance, replacing what it had. Send after the data plane got
    /// the instance's plan, so that results never arrive before the plan.
    pub fn configure(&self, id: InstanceId, instance: Arc<str>, trackers: Vec<TrackerSpec>) {
        let _ = self.tx.send(Msg::Configure {
            id,
            instance,
            trackers,
        });
    }

    /// Stop following an instance's trackers.
    pub fn remove(&self, id: InstanceId) {
        let _ = self.tx.send(Msg::Remove { id });
    }

    /// A link event, for interface trackers.
    pub fn link_event(&self, event: LinkEvent) {
        let _ = self.tx.send(Msg::Link(event));
    }

    /// An application's health report for `check`. Returns the instances that follow it.
    pub async fn report(
        &self,
        check: String,
        healthy: bool,
        ttl: Option<Duration>,
        detail: String,
    ) -> Result<Vec<String>, Error> {
        let mut violations = Vec::new();
        if !is_name(&check) {
            violations.push(Violation::new(
                "check",
                format!("{check:?} is not a check name: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"),
            ));
        }
        if ttl.is_some_and(|t| t > MAX_REPORT_TTL) {
            violations.push(Violation::new(
                "ttl",
                "is longer than the 1 day allowed; report more often",
            ));
        }
        if detail.len() > MAX_REPORT_DETAIL {
            violations.push(Violation::new(
                "detail",
                format!("is {} bytes; at most {MAX_REPORT_DETAIL}", detail.len()),
            ));
        }
        if !violations.is_empty() {
            return Err(Error::Invalid(violations));
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Report {
                check,
                healthy,
                ttl: ttl.filter(|t| !t.is_zero()),
                detail,
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }
}

/// Whether a tracker follows the interface `name`.
fn follows_interface(name: &str) -> impl Fn(&Check) -> bool + '_ {
    move |c| matches!(c, Check::Interface { interface } if interface == name)
}

/// Whether a tracker follows the health report `check`.
fn follows_report(check: &str) -> impl Fn(&Check) -> bool + '_ {
    move |c| matches!(c, Check::Report { check: followed } if followed == check)
}

fn gone() -> Error {
    Error::Unavailable("havipd is shutting down; retry once it is back".into())
}

/// One tracker as the service follows it.
#[derive(Debug)]
struct Tracked {
    spec: TrackerSpec,
    /// The probe task measuring it (scripts and files); its results carry `probe`.
    probe: u64,
    task: Option<JoinHandle<()>>,
    /// Scripts: the health after rise/fall.
    rise_fall: RiseFall,
    timeouts: u64,
    /// What the data plane has, so unchanged results are not sent again.
    last_sent: Option<TrackerResult>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[derive(Debug)]
struct Followed {
    name: Arc<str>,
    trackers: Vec<Tracked>,
}

struct Service {
    runtime: RuntimeHandle,
    netlink: Netlink,
    tx: mpsc::WeakUnboundedSender<Msg>,
    instances: HashMap<InstanceId, Followed>,
    links: Links,
    lookups: HashSet<String>,
    reports: Reports,
    reports_checked: Instant,
    next_probe: u64,
}

impl Service {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        loop {
            let expiry = self.reports.next_expiry(Instant::now());
            let msg = match expiry {
                Some(at) => tokio::select! {
                    msg = rx.recv() => msg,
                    () = tokio::time::sleep_until(at) => {
                        self.reports_lapsed();
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(msg) = msg else { break };
            self.handle(msg);
        }
        debug!("tracker service stopped");
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Configure {
                id,
                instance,
                trackers,
            } => self.configure(id, instance, trackers),
            Msg::Remove { id } => {
                self.instances.remove(&id);
            }
            Msg::Link(event) => {
                for name in self.links.event(&event) {
                    self.refresh_where(follows_interface(&name));
                }
            }
            Msg::Report {
                check,
                healthy,
                ttl,
                detail,
                reply,
            } => {
                self.reports
                    .record(&check, healthy, ttl, detail, Instant::now());
                let followers = self.refresh_where(follows_report(&check));
                let _ = reply.send(followers);
            }
            Msg::Ran { id, probe, outcome } => self.script_ran(id, probe, outcome),
            Msg::Read {
                id,
                probe,
                health,
                detail,
            } => {
                if let Some((id, i)) = self.find_probe(id, probe) {
                    self.forward(id, i, health, detail);
                }
            }
            Msg::LookedUp { name, epoch, found } => {
                match found {
                    Ok(found) => {
                        self.lookups.remove(&name);
                        if self.links.looked_up(&name, epoch, found) {
                            self.refresh_where(follows_interface(&name));
                        }
                    }
                    // The lookup asks again by itself, so it stays in `lookups`.
                    Err(e) => {
                        warn!(interface = %name, error = %e, "cannot look up a tracked interface; its trackers count as failing until a retry succeeds");
                        let detail = format!("cannot query interface {name}: {e}");
                        for (id, i) in self.matching(follows_interface(&name)) {
                            self.forward(id, i, Health::Failing, detail.clone());
                        }
                    }
                }
            }
        }
    }

    fn configure(&mut self, id: InstanceId, instance: Arc<str>, specs: Vec<TrackerSpec>) {
        let mut old = self
            .instances
            .remove(&id)
            .map(|f| f.trackers)
            .unwrap_or_default();
        let mut trackers = Vec::with_capacity(specs.len());
        for spec in specs {
            let previous = old
                .iter()
                .position(|t| t.spec.name == spec.name)
                .map(|i| old.swap_remove(i));
            let tracked = match previous {
                // Same target: keep the health; a new interval or timeout needs a new
                // probe, a new weight nothing here.
                Some(mut t) if t.spec.check.same_target(&spec.check) => {
                    let retimed = t.spec.check != spec.check;
                    t.spec = spec;
                    if retimed {
                        self.start_probe(id, &instance, &mut t);
                    }
                    t
                }
                _ => {
                    let mut t = Tracked {
                        spec,
                        probe: 0,
                        task: None,
                        rise_fall: RiseFall::default(),
                        timeouts: 0,
                        last_sent: None,
                    };
                    self.start_probe(id, &instance, &mut t);
                    t
                }
            };
            trackers.push(tracked);
        }
        drop(old);
        let interfaces: Vec<String> = trackers
            .iter()
            .filter_map(|t| match &t.spec.check {
                Check::Interface { interface } => Some(interface.clone()),
                _ => None,
            })
            .collect();
        self.instances.insert(
            id,
            Followed {
                name: instance,
                trackers,
            },
        );
        for name in interfaces {
            if !self.links.known(&name) {
                self.look_up(name);
            }
        }
        let count = self.instances.get(&id).map_or(0, |f| f.trackers.len());
        for i in 0..count {
            self.refresh(id, i);
        }
    }

    fn start_probe(&mut self, id: InstanceId, instance: &Arc<str>, t: &mut Tracked) {
        if let Some(task) = t.task.take() {
            task.abort();
        }
        let probe = self.next_probe;
        self.next_probe += 1;
        t.probe = probe;
        let tx = self.tx.clone();
        t.task = match &t.spec.check {
            Check::Script(check) => {
                let ctx = Context {
                    instance: instance.clone(),
                    tracker: t.spec.name.clone(),
                };
                Some(tokio::spawn(run_script(check.clone(), ctx, id, probe, tx)))
            }
            Check::File { path } => Some(tokio::spawn(read_file(path.clone(), id, probe, tx))),
            Check::Interface { .. } | Check::Report { .. } => None,
        };
    }

    fn look_up(&mut self, name: String) {
        if !self.lookups.insert(name.clone()) {
            return;
        }
        let epoch = self.links.epoch(&name);
        let netlink = self.netlink.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let lookup = || async {
                match netlink.interface(&name).await {
                    Ok(info) => Ok(info.map(|i| (i.index, i.up))),
                    Err(e) => Err(e.to_string()),
                }
            };
            let report = |found| {
                let Some(tx) = tx.upgrade() else { return false };
                let name = name.clone();
                tx.send(Msg::LookedUp { name, epoch, found }).is_ok()
            };
            look_up_until_answered(lookup, report).await;
        });
    }

    /// Every (instance, tracker index) whose check matches.
    fn matching(&self, pred: impl Fn(&Check) -> bool) -> Vec<(InstanceId, usize)> {
        self.instances
            .iter()
            .flat_map(|(id, f)| {
                f.trackers
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| pred(&t.spec.check))
                    .map(|(i, _)| (*id, i))
            })
            .collect()
    }

    /// Re-evaluate the passive trackers (interfaces, reports) whose check matches; returns
    /// the names of their instances.
    fn refresh_where(&mut self, pred: impl Fn(&Check) -> bool) -> Vec<String> {
        let mut names = BTreeSet::new();
        for (id, i) in self.matching(pred) {
            if let Some(f) = self.instances.get(&id) {
                names.insert(f.name.to_string());
            }
            self.refresh(id, i);
        }
        names.into_iter().collect()
    }

    /// Forward the current health of a passive tracker, when it is known.
    fn refresh(&mut self, id: InstanceId, i: usize) {
        let Some(t) = self.instances.get(&id).and_then(|f| f.trackers.get(i)) else {
            return;
        };
        let now = Instant::now();
        let state = match &t.spec.check {
            Check::Interface { interface } => self.links.health(interface),
            Check::Report { check } => Some(self.reports.health(check, now)),
            Check::Script(_) | Check::File { .. } => None,
        };
        if let Some((health, detail)) = state {
            self.forward(id, i, health, detail);
        }
    }

    fn reports_lapsed(&mut self) {
        let now = Instant::now();
        let lapsed = self.reports.lapsed(self.reports_checked, now);
        self.reports_checked = now;
        for check in lapsed {
            self.refresh_where(follows_report(&check));
        }
    }

    fn find_probe(&self, id: InstanceId, probe: u64) -> Option<(InstanceId, usize)> {
        let f = self.instances.get(&id)?;
        let i = f.trackers.iter().position(|t| t.probe == probe)?;
        Some((id, i))
    }

    /// A script run: rise/fall decide the health; the detail always tells the latest run.
    fn script_ran(&mut self, id: InstanceId, probe: u64, outcome: Outcome) {
        let Some((id, i)) = self.find_probe(id, probe) else {
            // From a probe that was replaced or removed meanwhile.
            return;
        };
        let Some(t) = self
            .instances
            .get_mut(&id)
            .and_then(|f| f.trackers.get_mut(i))
        else {
            return;
        };
        let Check::Script(check) = &t.spec.check else {
            return;
        };
        if outcome.timed_out {
            t.timeouts += 1;
        }
        let (healthy, progress) = t.rise_fall.observe(outcome.ok, check.rise, check.fall);
        let mut detail = outcome.detail;
        detail.push_str(progress.as_deref().unwrap_or_default());
        let health = if healthy {
            Health::Healthy
        } else {
            Health::Failing
        };
        self.forward(id, i, health, detail);
    }

    /// Send a result to the data plane, unless it is what the data plane already has.
    fn forward(&mut self, id: InstanceId, i: usize, health: Health, detail: String) {
        let Some(t) = self
            .instances
            .get_mut(&id)
            .and_then(|f| f.trackers.get_mut(i))
        else {
            return;
        };
        let result = TrackerResult {
            tracker: t.spec.name.clone(),
            health,
            detail,
            timeouts: t.timeouts,
        };
        if t.last_sent.as_ref() == Some(&result) {
            return;
        }
        t.last_sent = Some(result.clone());
        if self.runtime.tracker_result(id, result).is_err() {
            debug!("the data plane is gone; tracker results are dropped");
        }
    }
}

/// How long a failed interface lookup waits before it asks again; the wait doubles
/// after each failure up to the second bound, so a lasting failure logs rarely.
const LOOKUP_RETRY_FIRST: Duration = Duration::from_millis(250);
const LOOKUP_RETRY_MAX: Duration = Duration::from_secs(10);

/// Asks `lookup` until it answers without an error, handing every outcome to `report`.
/// A failed lookup must not leave a tracker failing for good: without a link event
/// nothing else would ask again. Stops early when `report` says nobody is listening.
async fn look_up_until_answered<T, E, Fut>(
    mut lookup: impl FnMut() -> Fut,
    mut report: impl FnMut(Result<T, E>) -> bool,
) where
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = LOOKUP_RETRY_FIRST;
    loop {
        match lookup().await {
            Ok(found) => {
                report(Ok(found));
                return;
            }
            Err(e) => {
                if !report(Err(e)) {
                    return;
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LOOKUP_RETRY_MAX);
    }
}

async fn run_script(
    check: ScriptCheck,
    ctx: Context,
    id: InstanceId,
    probe: u64,
    tx: mpsc::WeakUnboundedSender<Msg>,
) {
    let mut ticks = tokio::time::interval(check.interval);
    // A run that took long (at most the timeout, which is at most the interval) delays
    // the next one rather than starting a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = script::run_once(&check, &ctx).await;
        let Some(tx) = tx.upgrade() else { return };
        if tx.send(Msg::Ran { id, probe, outcome }).is_err() {
            return;
        }
    }
}

async fn read_file(path: PathBuf, id: InstanceId, probe: u64, tx: mpsc::WeakUnboundedSender<Msg>) {
    let mut ticks = tokio::time::interval(file::INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (health, detail) = file::read_value(&path).await;
        let Some(tx) = tx.upgrade() else { return };
        if tx
            .send(Msg::Read {
                id,
                probe,
                health,
                detail,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    #[tokio::test(start_paused = true)]
    async fn a_failed_lookup_asks_again_backing_off_until_it_is_answered() {
        let started = Instant::now();
        let attempts = Cell::new(0);
        let reported = RefCell::new(Vec::new());
        look_up_until_answered(
            || {
                attempts.set(attempts.get() + 1);
                let n = attempts.get();
                async move { if n <= 3 { Err(n) } else { Ok(n) } }
            },
            |outcome| {
                reported.borrow_mut().push((started.elapsed(), outcome));
                true
            },
        )
        .await;
        let ms = Duration::from_millis;
        assert_eq!(
            reported.into_inner(),
            [
                (ms(0), Err(1)),
                (ms(250), Err(2)),
                (ms(750), Err(3)),
                (ms(1750), Ok(4)),
            ],
            "every outcome is reported, failures with a doubling wait between them"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lookups_stop_when_nobody_listens_and_waits_stop_growing() {
        let attempts = Cell::new(0);
        look_up_until_answered(
            || {
                attempts.set(attempts.get() + 1);
                async { Err::<(), _>(()) }
            },
            |_| attempts.get() < 3,
        )
        .await;
        assert_eq!(attempts.get(), 3, "no lookup after the report was refused");

        let started = Instant::now();
        let times = RefCell::new(Vec::new());
        look_up_until_answered(
            || {
                times.borrow_mut().push(started.elapsed());
                async { Err::<(), _>(()) }
            },
            |_| times.borrow().len() < 10,
        )
        .await;
        let times = times.into_inner();
        let last_wait = times[9] - times[8];
        assert_eq!(last_wait, LOOKUP_RETRY_MAX, "the wait is capped");
    }
}
