//! Crash safety end to end. havipd is killed with SIGKILL in the middle of a burst of API
//! writes (creates, updates and deletes from several clients at once) and of state
//! transitions; after each restart its database passes `PRAGMA integrity_check`, every
//! change answered OK is there with the content it was answered with, and the event
//! sequence has no hole. Restarting a master, cleanly or by a crash, changes states only as
//! VRRP requires: the restarted daemon starts in BACKUP and takes over again only after
//! Master_Down_Interval (with preemption), or stays BACKUP (without).

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::{self, transitions};
use havip_e2e::faults::integrity_check;
use havip_e2e::vrrp::{create, master_down_interval, spec, wait_state, when};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::{
    self, CreateInstanceRequest, DeleteInstanceRequest, InstanceSpec, ListConfigChangesRequest,
    ListInstancesRequest, State, UpdateInstanceRequest,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tonic::transport::Channel;

/// Concurrent writers, each with instances of its own, so that every instance has one
/// well-defined sequence of answered changes.
const WRITERS: usize = 4;
const SLOTS_PER_WRITER: usize = 5;
const ROUNDS: usize = 3;

/// What an instance must look like after a restart.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    Absent,
    /// `revision` is `None` for a change that was sent but never answered.
    Present {
        revision: Option<u64>,
        description: String,
    },
}

#[derive(Clone, Debug)]
struct Slot {
    name: String,
    vrid: u32,
    /// Toggles `disabled` on every update: a transition with every config change.
    flapper: bool,
    /// Where the last OK answer left it.
    acked: Expect,
    /// A request sent and not answered when the daemon died: its outcome, had it been made.
    pending: Option<Expect>,
}

/// Every OK answer: (revision, instance, kind); for a delete, the revision it deleted.
type Acks = Arc<Mutex<Vec<(u64, String, v1::ChangeKind)>>>;

fn slots() -> Vec<Slot> {
    let mut slots = Vec::new();
    for w in 0..WRITERS {
        for s in 0..SLOTS_PER_WRITER {
            slots.push(Slot {
                name: format!("w{w}s{s}"),
                vrid: u32::try_from(10 + w * SLOTS_PER_WRITER + s).unwrap(),
                flapper: s == 0,
                acked: Expect::Absent,
                pending: None,
            });
        }
    }
    slots
}

fn instance_spec(vrid: u32, description: &str, disabled: bool) -> InstanceSpec {
    let mut s = spec(vrid, 3, 100, 100, &format!("10.1.0.{vrid}/32"));
    s.description = description.into();
    s.disabled = disabled;
    s
}

/// One writer: goes round its slots creating, updating (a flapper toggles `disabled`) and
/// deleting, one request at a time, noting each answer. Ends at the first error, which must
/// come after the kill.
async fn writer(
    mut client: InstanceServiceClient<Channel>,
    slots: Arc<Mutex<Vec<Slot>>>,
    mine: Vec<usize>,
    acks: Acks,
    killed: Arc<AtomicBool>,
    tag: String,
) {
    let mut n = 0u64;
    loop {
        for &i in &mine {
            n += 1;
            let slot = slots.lock().unwrap()[i].clone();
            let description = format!("{tag}-{n}");
            let present = |revision| Expect::Present {
                revision,
                description: description.clone(),
            };
            let result = match &slot.acked {
                Expect::Absent => {
                    slots.lock().unwrap()[i].pending = Some(present(None));
                    client
                        .create_instance(CreateInstanceRequest {
                            name: slot.name.clone(),
                            spec: Some(instance_spec(slot.vrid, &description, false)),
                            validate_only: false,
                            comment: String::new(),
                        })
                        .await
                        .map(|r| {
                            (
                                present(Some(r.into_inner().revision)),
                                v1::ChangeKind::Create,
                            )
                        })
                }
                Expect::Present { revision, .. } if !slot.flapper && n.is_multiple_of(4) => {
                    slots.lock().unwrap()[i].pending = Some(Expect::Absent);
                    let revision = revision.unwrap();
                    client
                        .delete_instance(DeleteInstanceRequest {
                            name: slot.name.clone(),
                            expected_revision: revision,
                            comment: String::new(),
                        })
                        .await
                        .map(|_| (Expect::Absent, v1::ChangeKind::Delete))
                }
                Expect::Present { revision, .. } => {
                    slots.lock().unwrap()[i].pending = Some(present(None));
                    let mut patch = instance_spec(slot.vrid, &description, n.is_multiple_of(2));
                    patch.priority = Some(u32::try_from(50 + n % 100).unwrap());
                    let mut paths = vec!["description".to_owned(), "priority".to_owned()];
                    if slot.flapper {
                        paths.push("disabled".into());
                    }
                    client
                        .update_instance(UpdateInstanceRequest {
                            name: slot.name.clone(),
                            spec: Some(patch),
                            update_mask: Some(pbjson_types::FieldMask { paths }),
                            expected_revision: revision.unwrap(),
                            validate_only: false,
                            comment: String::new(),
                        })
                        .await
                        .map(|r| {
                            let revision = r.into_inner().instance.unwrap().revision;
                            (present(Some(revision)), v1::ChangeKind::Update)
                        })
                }
            };
            match result {
                Ok((now, kind)) => {
                    let revision = match &now {
                        Expect::Present { revision, .. } => revision.unwrap(),
                        // The revision the delete removed (its own is not answered).
                        Expect::Absent => match &slot.acked {
                            Expect::Present { revision, .. } => revision.unwrap(),
                            Expect::Absent => unreachable!(),
                        },
                    };
                    acks.lock()
                        .unwrap()
                        .push((revision, slot.name.clone(), kind));
                    let mut all = slots.lock().unwrap();
                    all[i].acked = now;
                    all[i].pending = None;
                }
                Err(status) => {
                    assert!(
                        killed.load(Ordering::SeqCst),
                        "{} failed before the kill: {status:?}",
                        slot.name
                    );
                    return;
                }
            }
        }
    }
}

/// Every config change, oldest first, page by page.
async fn all_config_changes(d: &Daemon) -> Vec<v1::ConfigChange> {
    let mut h = d.history().await;
    let mut token = String::new();
    let mut out = Vec::new();
    loop {
        let page = h
            .list_config_changes(ListConfigChangesRequest {
                filter: None,
                page_size: 500,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.changes);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    out.reverse();
    out
}

/// Compares what the restarted daemon holds with what was answered, then takes what it
/// holds as the new starting point.
async fn check_acknowledged(d: &Daemon, slots: &mut [Slot]) -> usize {
    let listed = d
        .instances()
        .await
        .list_instances(ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .instances;
    let actual: BTreeMap<String, (u64, String)> = listed
        .into_iter()
        .map(|i| {
            let description = i.spec.map(|s| s.description).unwrap_or_default();
            (i.name, (i.revision, description))
        })
        .collect();
    let mut unanswered_made = 0;
    for slot in slots.iter_mut() {
        let now = match actual.get(&slot.name) {
            None => Expect::Absent,
            Some((revision, description)) => Expect::Present {
                revision: Some(*revision),
                description: description.clone(),
            },
        };
        let matches_pending = match (&slot.pending, &now) {
            (Some(Expect::Absent), Expect::Absent) => true,
            (
                Some(Expect::Present {
                    description: want, ..
                }),
                Expect::Present { description, .. },
            ) => want == description,
            _ => false,
        };
        assert!(
            now == slot.acked || matches_pending,
            "{}: after the restart {now:?}, but the last OK answer left {:?} (unanswered: {:?}); log:\n{}",
            slot.name,
            slot.acked,
            slot.pending,
            d.log()
        );
        if now != slot.acked {
            unanswered_made += 1;
        }
        slot.acked = now;
        slot.pending = None;
    }
    unanswered_made
}

#[tokio::test]
async fn kill9_during_a_burst_keeps_every_acknowledged_change() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("crash");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let mut daemon = Daemon::start(&host, "crash");
    let db = daemon.db_path();
    let mut slots = slots();
    let acks: Acks = Arc::default();

    for round in 0..ROUNDS {
        let shared = Arc::new(Mutex::new(slots.clone()));
        let killed = Arc::new(AtomicBool::new(false));
        let acked_before = acks.lock().unwrap().len();
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let mine: Vec<usize> = (w * SLOTS_PER_WRITER..(w + 1) * SLOTS_PER_WRITER).collect();
            tasks.push(tokio::spawn(writer(
                daemon.instances().await,
                Arc::clone(&shared),
                mine,
                Arc::clone(&acks),
                Arc::clone(&killed),
                format!("r{round}w{w}"),
            )));
        }
        // A different moment in each round, so the kill meets the writes in different steps.
        tokio::time::sleep(Duration::from_millis(1500 + 700 * round as u64)).await;
        killed.store(true, Ordering::SeqCst);
        daemon.kill9();
        for t in tasks {
            t.await.unwrap();
        }
        slots = shared.lock().unwrap().clone();
        let answered = acks.lock().unwrap().len() - acked_before;
        let unanswered = slots.iter().filter(|s| s.pending.is_some()).count();
        assert!(
            answered >= 20,
            "round {round}: only {answered} changes answered"
        );

        // The file as the crash left it, before anything opens it again.
        assert_eq!(integrity_check(&db).await, "ok", "round {round}");

        daemon.restart();
        let made = check_acknowledged(&daemon, &mut slots).await;
        eprintln!(
            "round {round}: {answered} changes answered before the kill, {unanswered} in flight, {made} of those were made"
        );

        let changes = all_config_changes(&daemon).await;
        let recorded: BTreeSet<(u64, String, i32)> = changes
            .iter()
            .map(|c| (c.revision, c.instance.clone(), c.kind))
            .collect();
        for (revision, name, kind) in acks.lock().unwrap().iter() {
            let found = match kind {
                // A delete's answer carries no revision: it took one above the instance's.
                v1::ChangeKind::Delete => recorded.iter().any(|(r, n, k)| {
                    *r > *revision && n == name && *k == v1::ChangeKind::Delete as i32
                }),
                _ => recorded.contains(&(*revision, name.clone(), *kind as i32)),
            };
            assert!(
                found,
                "the answered {kind:?} of {name} (revision {revision}) is not in the history"
            );
        }

        let events = checks::events_after(&daemon, 0).await;
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs.first(), Some(&1), "round {round}");
        if let Some(w) = seqs.windows(2).find(|w| w[1] != w[0] + 1) {
            panic!(
                "round {round}: the event seqs jump from {} to {}",
                w[0], w[1]
            );
        }
        let lost = events
            .iter()
            .filter(|e| e.kind == v1::EventKind::EventsLost as i32)
            .count();
        let transitions = events
            .iter()
            .filter(|e| e.kind == v1::EventKind::StateChanged as i32)
            .count();
        assert_eq!(lost, 0, "nothing was lost: the store never failed");
        assert!(transitions > 0, "the burst made transitions");
        eprintln!(
            "round {round}: {} events, seqs 1..={} without a hole, {transitions} transitions",
            events.len(),
            seqs.last().unwrap()
        );
    }
}

/// How the master is restarted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Restart {
    Clean,
    Crash,
}

/// (from, to, reason) of each transition, for comparing with what VRRP requires.
fn steps(ts: &[v1::Transition]) -> Vec<(State, State, String)> {
    ts.iter()
        .map(|t| {
            (
                State::try_from(t.from).unwrap(),
                State::try_from(t.to).unwrap(),
                t.reason.clone().unwrap_or_default().code,
            )
        })
        .collect()
}

fn step(from: State, to: State, reason: &str) -> (State, State, String) {
    (from, to, reason.to_owned())
}

const INTERVAL: Duration = Duration::from_millis(100);

async fn pair_member(d: &Daemon, me: &Host, other: &Host, priority: u32, preempt: bool) {
    let addr = |h: &Host| {
        h.ipv4
            .clone()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let mut s = spec(51, 3, priority, 100, "10.0.0.100/24");
    s.preempt = Some(preempt);
    s.unicast_source = addr(me);
    s.unicast_peers = vec![addr(other)];
    create(d, "vip", s).await;
}

/// A (priority 150) is master, B (100) backup; A's daemon is restarted. Returns the
/// transitions of A and of B from the moment of the restart on, once things settled.
async fn restart_the_master(tag: &str, how: Restart, preempt: bool) {
    let mut lab = Lab::new(tag);
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let mut da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    pair_member(&da, &a, &b, 150, preempt).await;
    pair_member(&db, &b, &a, 100, preempt).await;
    let settle = Duration::from_secs(10);
    wait_state(&da, "vip", State::Master, settle).await;
    wait_state(&db, "vip", State::Backup, settle).await;
    let a_before = transitions(&da, "vip").await.len();
    let b_before = transitions(&db, "vip").await.len();

    match how {
        Restart::Clean => da.stop(),
        Restart::Crash => da.kill9(),
    }
    // B takes over (after Skew_Time on a priority 0 advert, or Master_Down_Interval).
    wait_state(&db, "vip", State::Master, settle).await;
    da.restart();
    let restarted = SystemTime::now();
    let (a_final, b_final) = if preempt {
        (State::Master, State::Backup)
    } else {
        (State::Backup, State::Master)
    };
    wait_state(&da, "vip", a_final, settle).await;
    wait_state(&db, "vip", b_final, settle).await;
    // Many Master_Down_Intervals with nothing more happening.
    tokio::time::sleep(master_down_interval(3, 100, INTERVAL) * 8).await;
    assert_eq!(havip_e2e::vrrp::state(&da, "vip").await, a_final);
    assert_eq!(havip_e2e::vrrp::state(&db, "vip").await, b_final);

    let a_all = transitions(&da, "vip").await;
    let b_all = transitions(&db, "vip").await;
    let a_after = &a_all[a_before..];
    let b_after = &b_all[b_before..];
    eprintln!("{tag}: A {:?}", steps(a_after));
    eprintln!("{tag}: B {:?}", steps(b_after));

    // A: a clean stop is recorded (MASTER → INIT); a crash records nothing. Back up, it
    // starts in BACKUP as RFC 9568 §6.4.1 says for a priority below 255, never MASTER at once.
    let mut want_a = Vec::new();
    if how == Restart::Clean {
        want_a.push(step(State::Master, State::Init, "shutdown"));
    }
    want_a.push(step(State::Init, State::Backup, "startup"));
    if preempt {
        // B's adverts carry a lower priority: A waits out Master_Down_Interval, then preempts.
        want_a.push(step(
            State::Backup,
            State::Master,
            "preempted_lower_priority",
        ));
    }
    assert_eq!(
        steps(a_after),
        want_a,
        "A's transitions; log:\n{}",
        da.log()
    );

    // B: takes over once (priority 0 from a clean stop: after Skew_Time; silence after a
    // crash: after Master_Down_Interval), and gives way once when A preempts.
    let takeover = match how {
        Restart::Clean => "priority_zero",
        Restart::Crash => "master_down_timer",
    };
    let mut want_b = vec![step(State::Backup, State::Master, takeover)];
    if preempt {
        want_b.push(step(State::Master, State::Backup, "higher_priority_advert"));
    }
    assert_eq!(
        steps(b_after),
        want_b,
        "B's transitions; log:\n{}",
        db.log()
    );

    // The restarted A listened for a whole Master_Down_Interval before taking over.
    let backup_at = a_after
        .iter()
        .find(|t| t.to == State::Backup as i32)
        .map(when)
        .unwrap();
    assert!(backup_at >= restarted - Duration::from_secs(5));
    if preempt {
        let master_at = a_after
            .iter()
            .find(|t| t.to == State::Master as i32)
            .map(when)
            .unwrap();
        let waited = master_at.duration_since(backup_at).unwrap_or_default();
        assert!(
            waited >= INTERVAL * 3,
            "A took over {waited:?} after starting, before Master_Down_Interval"
        );
        eprintln!("{tag}: A waited {waited:?} in BACKUP before preempting");
    }
}

#[tokio::test]
async fn clean_restart_of_the_master() {
    if netns_available() {
        restart_the_master("rsclean", Restart::Clean, true).await;
    }
}

#[tokio::test]
async fn kill9_restart_of_the_master() {
    if netns_available() {
        restart_the_master("rskill", Restart::Crash, true).await;
    }
}

#[tokio::test]
async fn kill9_restart_of_the_master_without_preemption() {
    if netns_available() {
        restart_the_master("rsnopre", Restart::Crash, false).await;
    }
}
