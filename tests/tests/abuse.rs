//! API abuse end to end: every validation rule over gRPC (INVALID_ARGUMENT naming the
//! field), an oversized request, 1000 watchers and one more, watchers that never read, and a
//! flood of requests while the daemon is the master of a pair. The daemon stays within a
//! memory bound and its backup never sees it miss adverts.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::report_tracker;
use havip_e2e::daemon::{connect_unix, connect_unix_small_window};
use havip_e2e::vrrp::{create, millis, spec, status, wait_state};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::event_service_client::EventServiceClient;
use havip_proto::v1::history_service_client::HistoryServiceClient;
use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::maintenance_service_client::MaintenanceServiceClient;
use havip_proto::v1::sync_group_service_client::SyncGroupServiceClient;
use havip_proto::v1::{
    self, CreateInstanceRequest, GetInstanceRequest, HistoryFilter, InstanceSpec,
    ListInstancesRequest, ListTransitionsRequest, State, UpdateInstanceRequest, WatchEventsRequest,
};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

const MIB: u64 = 1024;

fn base() -> InstanceSpec {
    spec(51, 3, 100, 100, "10.0.0.100/24")
}

/// A spec breaking one rule, on a VRID no instance uses (so the one-router-per-VRID rule
/// does not answer first).
fn with(f: impl FnOnce(&mut InstanceSpec)) -> InstanceSpec {
    let mut s = base();
    s.vrid = 99;
    f(&mut s);
    s
}

fn dur(seconds: i64, nanos: i32) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds, nanos })
}

fn script(f: impl FnOnce(&mut v1::ScriptCheck)) -> InstanceSpec {
    let mut c = v1::ScriptCheck {
        path: "/usr/local/bin/check".into(),
        ..Default::default()
    };
    f(&mut c);
    tracker(v1::Tracker {
        name: "t".into(),
        weight: 0,
        check: Some(v1::tracker::Check::Script(c)),
    })
}

fn tracker(t: v1::Tracker) -> InstanceSpec {
    with(|s| s.trackers = vec![t])
}

fn report(name: &str, check: &str, weight: i32) -> v1::Tracker {
    report_tracker(name, check, weight)
}

fn over(priority: u32, f: impl FnOnce(&mut v1::PriorityOverride)) -> InstanceSpec {
    let mut o = v1::PriorityOverride {
        priority,
        ..Default::default()
    };
    f(&mut o);
    with(|s| s.priority_override = Some(o))
}

fn mk(name: &'static str, spec: InstanceSpec) -> Call {
    Call::Create(name, Box::new(spec))
}

/// One request that breaks one rule.
enum Call {
    Create(&'static str, Box<InstanceSpec>),
    CreateCommented(String),
    Update(Vec<&'static str>),
    Group(v1::SyncGroup),
    Demote(Option<u32>, Option<pbjson_types::Duration>, String),
    Clear(String),
    Report(&'static str, Option<pbjson_types::Duration>, String),
    History(String, Option<pbjson_types::Timestamp>),
    Watch(Vec<i32>),
}

struct Clients {
    instances: InstanceServiceClient<Channel>,
    groups: SyncGroupServiceClient<Channel>,
    maintenance: MaintenanceServiceClient<Channel>,
    history: HistoryServiceClient<Channel>,
    events: EventServiceClient<Channel>,
}

impl Clients {
    async fn call(&mut self, call: Call) -> Result<(), Status> {
        match call {
            Call::Create(name, spec) => self
                .instances
                .create_instance(CreateInstanceRequest {
                    name: name.into(),
                    spec: Some(*spec),
                    validate_only: false,
                    comment: String::new(),
                })
                .await
                .map(drop),
            Call::CreateCommented(comment) => self
                .instances
                .create_instance(CreateInstanceRequest {
                    name: "x".into(),
                    spec: Some(with(|s| s.vrid = 99)),
                    validate_only: false,
                    comment,
                })
                .await
                .map(drop),
            Call::Update(paths) => self
                .instances
                .update_instance(UpdateInstanceRequest {
                    name: "base".into(),
                    spec: Some(base()),
                    update_mask: Some(pbjson_types::FieldMask {
                        paths: paths.into_iter().map(str::to_owned).collect(),
                    }),
                    ..Default::default()
                })
                .await
                .map(drop),
            Call::Group(group) => self
                .groups
                .create_sync_group(v1::CreateSyncGroupRequest {
                    group: Some(group),
                    comment: String::new(),
                })
                .await
                .map(drop),
            Call::Demote(priority, duration, reason) => self
                .maintenance
                .demote(v1::OverridePriorityRequest {
                    name: "base".into(),
                    priority,
                    duration,
                    reason,
                })
                .await
                .map(drop),
            Call::Clear(reason) => self
                .maintenance
                .clear_override(v1::ClearOverrideRequest {
                    name: "base".into(),
                    reason,
                })
                .await
                .map(drop),
            Call::Report(check, ttl, detail) => self
                .maintenance
                .report_health(v1::ReportHealthRequest {
                    check: check.into(),
                    healthy: true,
                    ttl,
                    detail,
                })
                .await
                .map(drop),
            Call::History(page_token, since) => self
                .history
                .list_transitions(ListTransitionsRequest {
                    filter: Some(HistoryFilter {
                        since,
                        ..Default::default()
                    }),
                    page_size: 10,
                    page_token,
                })
                .await
                .map(drop),
            Call::Watch(kinds) => self
                .events
                .watch_events(WatchEventsRequest {
                    after_seq: None,
                    instances: vec![],
                    kinds,
                })
                .await
                .map(drop),
        }
    }
}

fn group(name: &str, members: &[&str]) -> v1::SyncGroup {
    v1::SyncGroup {
        name: name.into(),
        instances: members.iter().map(|m| (*m).to_owned()).collect(),
        revision: 0,
    }
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<(&'static str, &'static str, Call)> {
    let long = |n: usize| "x".repeat(n);
    let c = mk;
    let s = |f: fn(&mut InstanceSpec)| mk("x", with(f));
    vec![
        // Names and interfaces.
        ("name syntax", "name", c("-x", base())),
        (
            "name length",
            "name",
            c(Box::leak(long(64).into_boxed_str()), base()),
        ),
        (
            "empty interface",
            "spec.interface",
            s(|s| s.interface.clear()),
        ),
        (
            "interface with /",
            "spec.interface",
            s(|s| s.interface = "eth0/1".into()),
        ),
        (
            "interface length",
            "spec.interface",
            s(|s| s.interface = "e".repeat(16)),
        ),
        // VRID, version, priority.
        ("vrid 0", "spec.vrid", s(|s| s.vrid = 0)),
        ("vrid 256", "spec.vrid", s(|s| s.vrid = 256)),
        ("version 4", "spec.version", s(|s| s.version = Some(4))),
        ("priority 0", "spec.priority", s(|s| s.priority = Some(0))),
        (
            "priority 256",
            "spec.priority",
            s(|s| s.priority = Some(256)),
        ),
        (
            "255 without owning",
            "spec.priority",
            s(|s| s.priority = Some(255)),
        ),
        // Virtual addresses.
        (
            "no vip",
            "spec.virtual_addresses",
            s(|s| s.virtual_addresses.clear()),
        ),
        (
            "256 vips",
            "spec.virtual_addresses",
            s(|s| {
                s.virtual_addresses = (0..256)
                    .map(|i| format!("10.9.{}.{}", i / 250, i % 250 + 1))
                    .collect();
            }),
        ),
        (
            "vip syntax",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["10.0.0.300".into()]),
        ),
        (
            "vip prefix",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["10.0.0.100/33".into()]),
        ),
        (
            "vip unspecified",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["0.0.0.0".into()]),
        ),
        (
            "vip loopback",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["127.0.0.5".into()]),
        ),
        (
            "vip multicast",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["224.0.0.18".into()]),
        ),
        (
            "vip broadcast",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["255.255.255.255".into()]),
        ),
        (
            "vip v6 loopback",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["::1".into()]),
        ),
        (
            "vip v6 multicast",
            "spec.virtual_addresses[0]",
            s(|s| s.virtual_addresses = vec!["ff02::12".into()]),
        ),
        (
            "two families",
            "spec.virtual_addresses[1]",
            s(|s| s.virtual_addresses.push("2001:db8::100/64".into())),
        ),
        (
            "vip twice",
            "spec.virtual_addresses[1]",
            s(|s| s.virtual_addresses.push("10.0.0.100/24".into())),
        ),
        (
            "ipv6 needs v3",
            "spec.version",
            s(|s| {
                s.version = Some(2);
                s.advert_interval = millis(1000);
                s.virtual_addresses = vec!["2001:db8::100/64".into()];
            }),
        ),
        // Timers.
        (
            "v2 whole seconds",
            "spec.advert_interval",
            s(|s| s.version = Some(2)),
        ),
        (
            "v3 below 10 ms",
            "spec.advert_interval",
            s(|s| s.advert_interval = millis(5)),
        ),
        (
            "v3 not in cs",
            "spec.advert_interval",
            s(|s| s.advert_interval = millis(15)),
        ),
        (
            "v3 above 40.95 s",
            "spec.advert_interval",
            s(|s| s.advert_interval = millis(41_000)),
        ),
        (
            "negative interval",
            "spec.advert_interval",
            s(|s| s.advert_interval = dur(-1, 0)),
        ),
        (
            "bad nanos",
            "spec.advert_interval",
            s(|s| s.advert_interval = dur(1, 2_000_000_000)),
        ),
        (
            "preempt delay",
            "spec.preempt_delay",
            s(|s| s.preempt_delay = dur(1001, 0)),
        ),
        (
            "negative preempt delay",
            "spec.preempt_delay",
            s(|s| s.preempt_delay = dur(-5, 0)),
        ),
        // Unicast.
        (
            "source syntax",
            "spec.unicast_source",
            s(|s| s.unicast_source = "ten".into()),
        ),
        (
            "source family",
            "spec.unicast_source",
            s(|s| s.unicast_source = "2001:db8::1".into()),
        ),
        (
            "source is a vip",
            "spec.unicast_source",
            s(|s| s.unicast_source = "10.0.0.100".into()),
        ),
        (
            "source elsewhere",
            "spec.unicast_source",
            s(|s| s.unicast_source = "10.0.0.9".into()),
        ),
        (
            "65 peers",
            "spec.unicast_peers",
            s(|s| {
                s.unicast_peers = (1..=65).map(|i| format!("10.0.1.{i}")).collect();
            }),
        ),
        (
            "peer syntax",
            "spec.unicast_peers[0]",
            s(|s| s.unicast_peers = vec!["peer".into()]),
        ),
        (
            "peer multicast",
            "spec.unicast_peers[0]",
            s(|s| s.unicast_peers = vec!["224.0.0.18".into()]),
        ),
        (
            "peer family",
            "spec.unicast_peers[0]",
            s(|s| s.unicast_peers = vec!["2001:db8::2".into()]),
        ),
        (
            "peer twice",
            "spec.unicast_peers[1]",
            s(|s| s.unicast_peers = vec!["10.0.0.2".into(), "10.0.0.2".into()]),
        ),
        (
            "peer is the source",
            "spec.unicast_peers[0]",
            s(|s| {
                s.unicast_source = "10.0.0.1".into();
                s.unicast_peers = vec!["10.0.0.1".into()];
            }),
        ),
        // Authentication.
        (
            "password without PASS",
            "spec.auth.password",
            s(|s| {
                s.auth = Some(v1::Authentication {
                    r#type: v1::AuthType::None as i32,
                    password: "p".into(),
                    password_set: false,
                });
            }),
        ),
        (
            "PASS in v3",
            "spec.auth.type",
            s(|s| {
                s.auth = Some(v1::Authentication {
                    r#type: v1::AuthType::Pass as i32,
                    password: "p".into(),
                    password_set: false,
                });
            }),
        ),
        (
            "PASS too long",
            "spec.auth.password",
            s(|s| {
                s.version = Some(2);
                s.advert_interval = millis(1000);
                s.auth = Some(v1::Authentication {
                    r#type: v1::AuthType::Pass as i32,
                    password: "123456789".into(),
                    password_set: false,
                });
            }),
        ),
        (
            "unknown auth type",
            "spec.auth.type",
            s(|s| {
                s.auth = Some(v1::Authentication {
                    r#type: 9,
                    password: String::new(),
                    password_set: false,
                });
            }),
        ),
        // GARP, checksum, labels, description.
        (
            "garp repeat 0",
            "spec.garp.repeat",
            s(|s| {
                s.garp = Some(v1::GarpSettings {
                    repeat: Some(0),
                    ..Default::default()
                })
            }),
        ),
        (
            "garp repeat 256",
            "spec.garp.repeat",
            s(|s| {
                s.garp = Some(v1::GarpSettings {
                    repeat: Some(256),
                    ..Default::default()
                })
            }),
        ),
        (
            "garp refresh repeat",
            "spec.garp.refresh_repeat",
            s(|s| {
                s.garp = Some(v1::GarpSettings {
                    refresh_repeat: Some(0),
                    ..Default::default()
                })
            }),
        ),
        (
            "garp delay",
            "spec.garp.delay",
            s(|s| {
                s.garp = Some(v1::GarpSettings {
                    delay: dur(3601, 0),
                    ..Default::default()
                })
            }),
        ),
        (
            "garp refresh",
            "spec.garp.refresh",
            s(|s| {
                s.garp = Some(v1::GarpSettings {
                    refresh: dur(-1, 0),
                    ..Default::default()
                })
            }),
        ),
        (
            "checksum mode",
            "spec.v3_ipv4_checksum",
            s(|s| s.v3_ipv4_checksum = 7),
        ),
        (
            "65 labels",
            "spec.labels",
            s(|s| s.labels = (0..65).map(|i| (format!("k{i}"), "v".into())).collect()),
        ),
        (
            "label key",
            "spec.labels[bad key]",
            s(|s| s.labels = BTreeMap::from([("bad key".into(), "v".into())])),
        ),
        (
            "label value",
            "spec.labels[k]",
            s(|s| s.labels = BTreeMap::from([("k".into(), "v".repeat(256))])),
        ),
        (
            "description",
            "spec.description",
            s(|s| s.description = "d".repeat(1025)),
        ),
        // Trackers.
        (
            "65 trackers",
            "spec.trackers",
            s(|s| {
                s.trackers = (0..65)
                    .map(|i| report_tracker(&format!("t{i}"), "app", 0))
                    .collect()
            }),
        ),
        (
            "tracker name",
            "spec.trackers[0].name",
            mk("x", tracker(report("-t", "app", 0))),
        ),
        (
            "tracker twice",
            "spec.trackers[1].name",
            s(|s| s.trackers = vec![report_tracker("t", "a", 0), report_tracker("t", "b", 0)]),
        ),
        (
            "tracker weight",
            "spec.trackers[0].weight",
            mk("x", tracker(report("t", "app", 255))),
        ),
        (
            "tracker without check",
            "spec.trackers[0]",
            mk(
                "x",
                tracker(v1::Tracker {
                    name: "t".into(),
                    weight: 0,
                    check: None,
                }),
            ),
        ),
        (
            "tracked interface",
            "spec.trackers[0].interface.interface",
            mk(
                "x",
                tracker(havip_e2e::checks::interface_tracker("t", "a/b", 0)),
            ),
        ),
        (
            "script path",
            "spec.trackers[0].script.path",
            mk("x", script(|c| c.path = "check.sh".into())),
        ),
        (
            "65 script args",
            "spec.trackers[0].script.args",
            mk("x", script(|c| c.args = vec!["a".into(); 65])),
        ),
        (
            "script arg NUL",
            "spec.trackers[0].script.args[0]",
            mk("x", script(|c| c.args = vec!["a\0b".into()])),
        ),
        (
            "script user",
            "spec.trackers[0].script.user",
            mk("x", script(|c| c.user = "-root".into())),
        ),
        (
            "script interval",
            "spec.trackers[0].script.interval",
            mk("x", script(|c| c.interval = millis(5))),
        ),
        (
            "script interval 2h",
            "spec.trackers[0].script.interval",
            mk("x", script(|c| c.interval = dur(7200, 0))),
        ),
        (
            "script timeout 0",
            "spec.trackers[0].script.timeout",
            mk(
                "x",
                script(|c| {
                    c.interval = millis(1000);
                    c.timeout = millis(0);
                }),
            ),
        ),
        (
            "script timeout",
            "spec.trackers[0].script.timeout",
            mk(
                "x",
                script(|c| {
                    c.interval = millis(1000);
                    c.timeout = millis(2000);
                }),
            ),
        ),
        (
            "script rise",
            "spec.trackers[0].script.rise",
            mk("x", script(|c| c.rise = Some(0))),
        ),
        (
            "script fall",
            "spec.trackers[0].script.fall",
            mk("x", script(|c| c.fall = Some(101))),
        ),
        (
            "insecure script",
            "spec.trackers[0].script.path",
            mk("x", script(|c| c.path = "/nonexistent/check".into())),
        ),
        (
            "file path",
            "spec.trackers[0].file.path",
            mk(
                "x",
                tracker(havip_e2e::checks::file_tracker(
                    "t",
                    std::path::Path::new("relative"),
                    0,
                )),
            ),
        ),
        (
            "report check",
            "spec.trackers[0].report.check",
            mk("x", tracker(report("t", "a b", 0))),
        ),
        // The priority override.
        (
            "override priority 0",
            "spec.priority_override.priority",
            mk("x", over(0, |_| {})),
        ),
        (
            "override priority 255",
            "spec.priority_override.priority",
            mk("x", over(255, |_| {})),
        ),
        (
            "override of an owner",
            "spec.priority_override",
            mk("x", {
                let mut s = over(10, |_| {});
                s.priority = Some(255);
                s
            }),
        ),
        (
            "override expiry",
            "spec.priority_override.expires",
            mk(
                "x",
                over(10, |o| {
                    o.expires = Some(pbjson_types::Timestamp {
                        seconds: -5,
                        nanos: 0,
                    })
                }),
            ),
        ),
        (
            "override in the past",
            "spec.priority_override.expires",
            mk(
                "x",
                over(10, |o| {
                    o.expires = Some(pbjson_types::Timestamp {
                        seconds: 1_000_000,
                        nanos: 0,
                    })
                }),
            ),
        ),
        (
            "override reason",
            "spec.priority_override.reason",
            mk("x", over(10, |o| o.reason = "r".repeat(1025))),
        ),
        // Other requests.
        (
            "comment",
            "comment",
            Call::CreateCommented("c".repeat(1025)),
        ),
        (
            "update mask",
            "update_mask",
            Call::Update(vec!["no_such_field"]),
        ),
        (
            "group name",
            "group.name",
            Call::Group(group("-g", &["base"])),
        ),
        (
            "group without members",
            "group.instances",
            Call::Group(group("g", &[])),
        ),
        (
            "group of 65",
            "group.instances",
            Call::Group(v1::SyncGroup {
                name: "g".into(),
                instances: (0..65).map(|i| format!("m{i}")).collect(),
                revision: 0,
            }),
        ),
        (
            "group member twice",
            "group.instances[1]",
            Call::Group(group("g", &["base", "base"])),
        ),
        (
            "group member missing",
            "group.instances[0]",
            Call::Group(group("g", &["nosuch"])),
        ),
        (
            "group member taken",
            "group.instances[0]",
            Call::Group(group("g2", &["grouped"])),
        ),
        (
            "demote priority 0",
            "priority",
            Call::Demote(Some(0), None, String::new()),
        ),
        (
            "demote priority 255",
            "priority",
            Call::Demote(Some(255), None, String::new()),
        ),
        (
            "demote for 0 s",
            "duration",
            Call::Demote(None, dur(0, 0), String::new()),
        ),
        (
            "demote for 400 days",
            "duration",
            Call::Demote(None, dur(400 * 86400, 0), String::new()),
        ),
        (
            "demote for -1 s",
            "duration",
            Call::Demote(None, dur(-1, 0), String::new()),
        ),
        (
            "demote reason",
            "reason",
            Call::Demote(None, None, "r".repeat(1025)),
        ),
        ("clear reason", "reason", Call::Clear("r".repeat(1025))),
        (
            "report check",
            "check",
            Call::Report("a b", None, String::new()),
        ),
        (
            "report ttl",
            "ttl",
            Call::Report("app", dur(86401, 0), String::new()),
        ),
        (
            "report negative ttl",
            "ttl",
            Call::Report("app", dur(-1, 0), String::new()),
        ),
        (
            "report detail",
            "detail",
            Call::Report("app", None, "d".repeat(1025)),
        ),
        (
            "page token",
            "page_token",
            Call::History("garbage".into(), None),
        ),
        (
            "history time",
            "filter.since",
            Call::History(
                String::new(),
                Some(pbjson_types::Timestamp {
                    seconds: -1,
                    nanos: 0,
                }),
            ),
        ),
        ("event kind", "kinds", Call::Watch(vec![99])),
        // Hundreds of violations at once still make a status that fits in a reply.
        (
            "255 bad vips",
            "spec.virtual_addresses[0]",
            s(|s| {
                s.virtual_addresses = (0..255)
                    .map(|i| format!("{}.bad.address.{i}", "x".repeat(200)))
                    .collect();
            }),
        ),
    ]
}

/// Every rule, one request each: INVALID_ARGUMENT, a message naming the field, and (for the
/// rules checked by havipd's own code) a google.rpc.BadRequest violation for that field.
/// Nothing is created by any of them.
#[tokio::test]
async fn every_validation_rule_answers_invalid_argument_naming_the_field() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("abval");
    let host = lab.host("a", Some("10.0.0.1/24"), Some("2001:db8::1/64"));
    let d = Daemon::start(&host, "abval");
    create(&d, "base", base()).await;
    create(&d, "grouped", spec(52, 3, 100, 100, "10.0.0.101/24")).await;
    let channel = d.channel().await;
    let mut clients = Clients {
        instances: InstanceServiceClient::new(channel.clone()),
        groups: SyncGroupServiceClient::new(channel.clone()),
        maintenance: MaintenanceServiceClient::new(channel.clone()),
        history: HistoryServiceClient::new(channel.clone()),
        events: EventServiceClient::new(channel),
    };
    clients
        .groups
        .create_sync_group(v1::CreateSyncGroupRequest {
            group: Some(group("g1", &["grouped"])),
            comment: String::new(),
        })
        .await
        .unwrap();
    let revision_before = havip_e2e::checks::instance(&d, "base").await.revision;

    let cases = cases();
    let count = cases.len();
    let mut failures = Vec::new();
    for (what, field, call) in cases {
        let err = match clients.call(call).await {
            Ok(()) => {
                failures.push(format!("{what}: accepted"));
                continue;
            }
            Err(e) => e,
        };
        if err.code() != Code::InvalidArgument {
            failures.push(format!("{what}: {:?} {}", err.code(), err.message()));
            continue;
        }
        if !err.message().contains(field) {
            failures.push(format!(
                "{what}: the message does not name {field}: {}",
                err.message()
            ));
        }
        let named: Vec<String> = err
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        // Only tonic's own decoding errors come without details; ours all have them.
        let plain = matches!(field, "filter.since" | "kinds");
        if !plain && !named.iter().any(|f| f == field) {
            failures.push(format!("{what}: expected {field}, got {named:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} rules misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{count} invalid requests, each refused naming its field");
    // None of them changed anything.
    let names: Vec<String> = d
        .instances()
        .await
        .list_instances(ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .instances
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["base", "grouped"]);
    assert_eq!(
        havip_e2e::checks::instance(&d, "base").await.revision,
        revision_before
    );
}

/// A request over the 1 MiB limit is refused with RESOURCE_EXHAUSTED saying both sizes and
/// what to do; one under it but breaking a rule gets INVALID_ARGUMENT; the daemon goes on.
#[tokio::test]
async fn an_oversized_request_is_refused_and_the_daemon_goes_on() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("abbig");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let d = Daemon::start(&host, "abbig");
    let rss_before = d.memory_kib("VmRSS");
    let mut c = d.instances().await;
    for size in [2 << 20, 64 << 20] {
        let err = c
            .create_instance(CreateInstanceRequest {
                name: "big".into(),
                spec: Some(with(|s| s.description = "d".repeat(size))),
                validate_only: false,
                comment: String::new(),
            })
            .await
            .unwrap_err();
        eprintln!("{size} bytes: {:?} {}", err.code(), err.message());
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(
            err.message()
                .contains("more than the 1048576 bytes havipd accepts")
                && err.message().contains("split a bulk change"),
            "{}",
            err.message()
        );
    }
    let err = c
        .create_instance(CreateInstanceRequest {
            name: "big".into(),
            spec: Some(with(|s| s.description = "d".repeat(1000 << 10))),
            validate_only: false,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("spec.description"));
    // A name of 512 KiB: not found, and the answer, which names it, still fits in a reply.
    let err = c
        .get_instance(GetInstanceRequest {
            name: "n".repeat(512 << 10),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().len() <= 2048, "{}", err.message().len());
    create(&d, "after", base()).await;
    let rss_after = d.memory_kib("VmRSS");
    eprintln!("RSS {rss_before} KiB before, {rss_after} KiB after the oversized requests");
    assert!(
        rss_after < rss_before + 64 * MIB,
        "an oversized request was kept"
    );
}

/// Opens `n` live watch streams spread over connections of at most 200 streams each
/// (havipd allows 256 per connection).
async fn open_watchers(
    d: &Daemon,
    n: usize,
    small_window: bool,
    after_seq: Option<u64>,
) -> Vec<tonic::Streaming<v1::Event>> {
    let mut out = Vec::with_capacity(n);
    let mut client = None;
    for i in 0..n {
        if i % 200 == 0 {
            let channel = if small_window {
                connect_unix_small_window(&d.socket()).await
            } else {
                connect_unix(&d.socket()).await
            };
            client = Some(EventServiceClient::new(channel));
        }
        let stream = client
            .as_mut()
            .unwrap()
            .watch_events(WatchEventsRequest {
                after_seq,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("watcher {i}: {e:?}"))
            .into_inner();
        out.push(stream);
    }
    out
}

/// 1000 watchers (the default --max-watchers) all get a live event; the 1001st is refused
/// with RESOURCE_EXHAUSTED naming the limit; closing one makes room for another.
#[tokio::test]
async fn a_thousand_watchers_and_one_too_many() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("abwat");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let d = Daemon::start(&host, "abwat");
    let rss_before = d.memory_kib("VmRSS");
    let started = Instant::now();
    let mut watchers = open_watchers(&d, 1000, false, None).await;
    eprintln!("1000 watchers opened in {:?}", started.elapsed());
    let mut extra = EventServiceClient::new(connect_unix(&d.socket()).await);
    let refused = extra
        .watch_events(WatchEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("1000") && refused.message().contains("--max-watchers"),
        "{}",
        refused.message()
    );

    create(&d, "web", base()).await;
    for (i, w) in watchers.iter_mut().enumerate() {
        // DAEMON_STARTED may come first: it is written after the API is up.
        loop {
            let e = tokio::time::timeout(Duration::from_secs(10), w.next())
                .await
                .unwrap_or_else(|_| panic!("watcher {i} got nothing"))
                .unwrap()
                .unwrap();
            if e.kind == v1::EventKind::InstanceCreated as i32 {
                break;
            }
        }
    }
    let rss_with = d.memory_kib("VmRSS");
    eprintln!("RSS {rss_before} KiB before, {rss_with} KiB with 1000 watchers");
    assert!(
        rss_with < rss_before + 200 * MIB,
        "1000 idle watchers cost {} KiB",
        rss_with - rss_before
    );

    // A closed stream gives its place back (once the daemon saw the client's reset).
    drop(watchers.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match extra.watch_events(WatchEventsRequest::default()).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no room after closing a watcher: {e:?}"),
        }
    }
}

/// 300 watchers that never read (small HTTP/2 windows, as a stuck client has) while
/// thousands of events are published: a reading watcher gets every one; each stuck one is
/// cut off at its buffer and, when it finally reads, gets RESOURCE_EXHAUSTED naming the seq
/// to resume after; their watcher slots are freed; the daemon's memory stays bounded.
#[tokio::test]
async fn watchers_that_never_read_are_cut_off_and_memory_stays_bounded() {
    if !netns_available() {
        return;
    }
    const STUCK: usize = 300;
    let mut lab = Lab::new("abslow");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let d = Daemon::start_with(&host, "abslow", &["--max-watchers", "310"]);
    // Ten instances follow one reported check: each report that flips it is ten
    // TRACKER_CHANGED events and ten transitions, without a config change to wait for.
    for i in 0..10u32 {
        let mut s = spec(60 + i, 3, 100, 100, &format!("10.0.2.{}/32", i + 1));
        s.trackers = vec![report_tracker("app", "app", 0)];
        create(&d, &format!("i{i}"), s).await;
    }
    let mut m = d.maintenance().await;
    let report = |healthy: bool| v1::ReportHealthRequest {
        check: "app".into(),
        healthy,
        ttl: None,
        detail: String::new(),
    };
    m.report_health(report(true)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_before = d.memory_kib("VmRSS");

    let mut client = d.events().await;
    let mut fast = client
        .watch_events(WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let fast_reader = tokio::spawn(async move {
        let mut seqs: Vec<u64> = Vec::new();
        let mut resumed = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), fast.next()).await {
                Ok(Some(Ok(e))) => seqs.push(e.seq),
                // This test's one thread sends the flood and reads it, so the reader is
                // sometimes 1024 events behind and cut off like any slow watcher. It then
                // resumes where it was, as a client should, and must miss nothing.
                Ok(Some(Err(status))) if status.code() == Code::ResourceExhausted => {
                    resumed += 1;
                    fast = client
                        .watch_events(WatchEventsRequest {
                            after_seq: seqs.last().copied(),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner();
                }
                other => break (seqs, resumed, format!("{other:?}")),
            }
        }
    });
    let stuck = open_watchers(&d, STUCK - 1, true, None).await;
    // One more on a connection of its own: the one that reads again at the end (on a shared
    // connection the streams nobody reads hold the connection's window, so reading one of
    // them would wait for them).
    let mut sleeper = open_watchers(&d, 1, true, None).await;
    let rss_open = d.memory_kib("VmRSS");

    let flips = 400;
    let started = Instant::now();
    for i in 0..flips {
        m.report_health(report(i % 2 == 1)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_flood = d.memory_kib("VmRSS");
    let (seqs, resumed, end) = fast_reader.await.unwrap();
    eprintln!("the reading watcher resumed {resumed} times; its stream ended with {end}");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "the reading watcher got every event"
    );
    eprintln!(
        "{} events published in {:?}; RSS {rss_before} KiB before, {rss_open} KiB with {STUCK} stuck watchers, {rss_flood} KiB after the events",
        seqs.len(),
        started.elapsed()
    );
    assert!(seqs.len() > 3000, "only {} events", seqs.len());
    assert!(
        rss_flood < rss_before + 256 * MIB,
        "stuck watchers grew the daemon by {} KiB",
        rss_flood - rss_before
    );

    // The cut-off ones freed their watcher slots: new watchers can open although the stuck
    // streams are still open.
    let mut more = EventServiceClient::new(connect_unix(&d.socket()).await);
    for i in 0..20 {
        more.watch_events(WatchEventsRequest::default())
            .await
            .unwrap_or_else(|e| panic!("watcher {i} after the cut-off: {e:?}"));
    }

    // A stuck one that finally reads: what it had, then where to resume.
    let first = &mut sleeper[0];
    let mut last = None;
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(10), first.next()).await {
            Ok(Some(Ok(e))) => {
                if let Some(l) = last {
                    assert_eq!(e.seq, l + 1, "no gap before the cut-off");
                }
                last = Some(e.seq);
            }
            Ok(Some(Err(status))) => break status,
            other => panic!("expected the cut-off, got {other:?}"),
        }
    };
    drop(stuck);
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let resume = last.unwrap_or(seqs[0] - 1);
    assert!(
        err.message().contains(&format!("after_seq={resume}")),
        "{}",
        err.message()
    );
}

/// Captures the adverts a host receives with tshark, for the jitter report.
struct Capture(Child);

impl Capture {
    async fn start(host: &Host) -> Capture {
        let child = Command::new("ip")
            .args([
                "netns", "exec", &host.ns, "tshark", "-i", "eth0", "-l", "-n",
            ])
            .args([
                "-f",
                "ip proto 112",
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
                "-Y",
                "vrrp.virt_rtr_id == 51",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tshark");
        // tshark needs a moment before it captures.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Capture(child)
    }

    /// Gaps between adverts, in ms.
    fn stop(self) -> Vec<f64> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let out = self
            .0
            .wait_with_output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let times: Vec<f64> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        times.windows(2).map(|w| (w[1] - w[0]) * 1000.0).collect()
    }
}

/// Thousands of requests from 32 clients at once (reads, history pages, invalid creates,
/// updates) at the master of a pair: its peak memory stays under 256 MiB, and the backup
/// never misses enough adverts to take over.
#[tokio::test]
async fn a_request_flood_keeps_memory_bounded_and_adverts_on_time() {
    if !netns_available() {
        return;
    }
    const TASKS: usize = 32;
    const PER_TASK: u64 = 250;
    let mut lab = Lab::new("abflood");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    for (d, me, other, prio) in [
        (&da, "10.0.0.1", "10.0.0.2", 150),
        (&db, "10.0.0.2", "10.0.0.1", 100),
    ] {
        let mut s = base();
        s.unicast_source = me.into();
        s.unicast_peers = vec![other.into()];
        s.priority = Some(prio);
        create(d, "vip", s).await;
    }
    create(&da, "load", spec(52, 3, 100, 1000, "10.0.0.101/24")).await;
    wait_state(&da, "vip", State::Master, Duration::from_secs(10)).await;
    wait_state(&db, "vip", State::Backup, Duration::from_secs(10)).await;
    let became_master = status(&db, "vip")
        .await
        .counters
        .unwrap_or_default()
        .became_master;
    let rss_before = da.memory_kib("VmRSS");
    let capture = Capture::start(&b).await;

    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let channel = da.channel().await;
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut c = InstanceServiceClient::new(channel.clone());
            let mut h = HistoryServiceClient::new(channel);
            for n in 0..PER_TASK {
                let ok = match n % 10 {
                    0..=3 => c
                        .get_instance(GetInstanceRequest { name: "vip".into() })
                        .await
                        .is_ok(),
                    4 | 5 => c
                        .list_instances(ListInstancesRequest::default())
                        .await
                        .is_ok(),
                    6 => h
                        .list_transitions(ListTransitionsRequest {
                            page_size: 100,
                            ..Default::default()
                        })
                        .await
                        .is_ok(),
                    7 | 8 => {
                        // Refused by validation: the cheapest way to make the daemon work.
                        let e = c
                            .create_instance(CreateInstanceRequest {
                                name: format!("bad{t}-{n}"),
                                spec: Some(with(|s| s.vrid = 0)),
                                validate_only: false,
                                comment: String::new(),
                            })
                            .await
                            .unwrap_err();
                        e.code() == Code::InvalidArgument
                    }
                    _ => c
                        .update_instance(UpdateInstanceRequest {
                            name: "load".into(),
                            spec: Some(InstanceSpec {
                                description: format!("flood {t} {n}"),
                                ..Default::default()
                            }),
                            update_mask: Some(pbjson_types::FieldMask {
                                paths: vec!["description".into()],
                            }),
                            ..Default::default()
                        })
                        .await
                        .is_ok(),
                };
                assert!(ok, "request {n} of task {t} failed");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = started.elapsed();
    let total = done.load(Ordering::Relaxed);
    let gaps = capture.stop();
    let rss_after = da.memory_kib("VmRSS");
    let peak = da.memory_kib("VmHWM");
    let rate = total as f64 / took.as_secs_f64();
    let worst = gaps.iter().copied().fold(0.0, f64::max);
    let mean = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    eprintln!(
        "{total} requests in {took:?} ({rate:.0}/s); RSS {rss_before} KiB before, {rss_after} KiB after, peak {peak} KiB; {} adverts captured at the backup, gaps mean {mean:.1} ms, worst {worst:.1} ms (interval 100 ms)",
        gaps.len() + 1
    );
    assert_eq!(total, TASKS as u64 * PER_TASK);
    assert!(peak < 256 * MIB, "peak RSS {peak} KiB");
    assert_eq!(vrrp_state(&db).await, State::Backup);
    assert_eq!(
        status(&db, "vip")
            .await
            .counters
            .unwrap_or_default()
            .became_master,
        became_master,
        "the backup took over during the flood: the master's adverts were late"
    );
    assert!(!gaps.is_empty(), "tshark captured no adverts");
}

async fn vrrp_state(d: &Daemon) -> State {
    havip_e2e::vrrp::state(d, "vip").await
}
