//! The control plane end to end: a real havipd in a network namespace, real gRPC clients,
//! a real database. CRUD, validation, revisions, restarts, the event stream and history.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::{Daemon, Lab, checks, netns_available};
use havip_proto::v1::{
    self, CreateInstanceRequest, DeleteInstanceRequest, GetInstanceRequest, HistoryFilter,
    InstanceSpec, ListConfigChangesRequest, ListInstancesRequest, ListTransitionsRequest,
    UpdateInstanceRequest, WatchEventsRequest,
};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

fn spec(vrid: u32, vip: &str) -> InstanceSpec {
    InstanceSpec {
        interface: "eth0".into(),
        vrid,
        virtual_addresses: vec![vip.into()],
        advert_interval: Some(pbjson_types::Duration {
            seconds: 0,
            nanos: 100_000_000,
        }),
        ..Default::default()
    }
}

fn create(name: &str, spec: InstanceSpec) -> CreateInstanceRequest {
    CreateInstanceRequest {
        name: name.into(),
        spec: Some(spec),
        validate_only: false,
        comment: String::new(),
    }
}

async fn wait_for_state(d: &Daemon, name: &str, state: v1::State) -> v1::Instance {
    let mut client = d.instances().await;
    for _ in 0..300 {
        let i = client
            .get_instance(GetInstanceRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner();
        if i.status.as_ref().map(|s| s.state) == Some(state as i32) {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} did not reach {state:?}; log:\n{}", d.log());
}

#[tokio::test]
async fn create_get_list_update_delete() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("crud");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start(&host, "crud");
    let mut c = daemon.instances().await;

    let mut s = spec(51, "10.0.0.100/24");
    s.labels = BTreeMap::from([("service".into(), "web".into())]);
    let created = c
        .create_instance(create("web", s))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "web");
    assert!(created.revision > 0);
    let stored = created.spec.clone().unwrap();
    assert_eq!(stored.priority, Some(100), "defaults are filled in");
    assert_eq!(stored.version, Some(3));

    // A lone instance becomes master after Master_Down_Interval and installs its VIP.
    let master = wait_for_state(&daemon, "web", v1::State::Master).await;
    let status = master.status.unwrap();
    assert_eq!(status.master_address, "10.0.0.1");
    assert_eq!(status.last_reason.unwrap().code, "master_down_timer");
    for _ in 0..100 {
        if host.has_address("10.0.0.100") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(host.has_address("10.0.0.100"), "{:?}", host.addresses());

    c.create_instance(create("db", spec(52, "10.0.0.101/24")))
        .await
        .unwrap();
    let all = c
        .list_instances(ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.instances.len(), 2);
    let web_only = c
        .list_instances(ListInstancesRequest {
            label_selector: BTreeMap::from([("service".into(), "web".into())]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(web_only.instances.len(), 1);
    assert_eq!(web_only.instances[0].name, "web");

    let updated = c
        .update_instance(UpdateInstanceRequest {
            name: "web".into(),
            spec: Some(InstanceSpec {
                priority: Some(150),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["priority".into()],
            }),
            expected_revision: created.revision,
            validate_only: false,
            comment: "more weight".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(updated.changed);
    assert_eq!(updated.changed_fields, ["priority"]);
    let after = updated.instance.unwrap();
    assert!(after.revision > created.revision);
    assert_eq!(after.spec.unwrap().priority, Some(150));
    // A live change: still master, no flap.
    let still = wait_for_state(&daemon, "web", v1::State::Master).await;
    assert_eq!(still.status.unwrap().effective_priority, 150);

    c.delete_instance(DeleteInstanceRequest {
        name: "web".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let gone = c
        .get_instance(GetInstanceRequest { name: "web".into() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert!(!host.has_address("10.0.0.100"), "delete removes the VIP");
}

#[tokio::test]
async fn a_stale_revision_is_refused() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("rev");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start(&host, "rev");
    let mut c = daemon.instances().await;
    let created = c
        .create_instance(create("web", spec(51, "10.0.0.100/24")))
        .await
        .unwrap()
        .into_inner();
    let change = |rev, prio| UpdateInstanceRequest {
        name: "web".into(),
        spec: Some(InstanceSpec {
            priority: Some(prio),
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["priority".into()],
        }),
        expected_revision: rev,
        validate_only: false,
        comment: String::new(),
    };
    c.update_instance(change(created.revision, 120))
        .await
        .unwrap();
    let stale = c
        .update_instance(change(created.revision, 130))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    assert!(stale.message().contains("revision"));
    let now = c
        .get_instance(GetInstanceRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        now.spec.unwrap().priority,
        Some(120),
        "the stale write changed nothing"
    );
}

/// Every validation rule answers INVALID_ARGUMENT naming the field; a refused call changes
/// nothing, not the database and not the interface.
#[tokio::test]
async fn every_validation_rule_is_refused_and_changes_nothing() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("valid");
    let host = lab.host("a", Some("10.0.0.1/24"), Some("2001:db8::1/64"));
    let daemon = Daemon::start(&host, "valid");
    let mut c = daemon.instances().await;
    let before = host.addresses();

    let d = |ms: i64| {
        Some(pbjson_types::Duration {
            seconds: ms / 1000,
            nanos: i32::try_from(ms % 1000 * 1_000_000).unwrap(),
        })
    };
    let pass = Some(v1::Authentication {
        r#type: v1::AuthType::Pass as i32,
        password: "1111".into(),
        password_set: false,
    });
    let cases: Vec<(&str, &str, InstanceSpec)> = vec![
        ("bad name", "name", spec(51, "10.0.0.100/24")),
        ("vrid", "spec.vrid", spec(0, "10.0.0.100/24")),
        ("vrid", "spec.vrid", spec(256, "10.0.0.100/24")),
        (
            "priority",
            "spec.priority",
            InstanceSpec {
                priority: Some(0),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "priority",
            "spec.priority",
            InstanceSpec {
                priority: Some(256),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "owner",
            "spec.priority",
            InstanceSpec {
                priority: Some(255),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "v2 interval",
            "spec.advert_interval",
            InstanceSpec {
                version: Some(2),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "v3 interval",
            "spec.advert_interval",
            InstanceSpec {
                advert_interval: d(15),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "v3 interval",
            "spec.advert_interval",
            InstanceSpec {
                advert_interval: d(41_000),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "ipv6 needs v3",
            "spec.version",
            InstanceSpec {
                version: Some(2),
                advert_interval: d(1000),
                ..spec(51, "2001:db8::100/64")
            },
        ),
        (
            "one family",
            "spec.virtual_addresses[1]",
            InstanceSpec {
                virtual_addresses: vec!["10.0.0.100/24".into(), "2001:db8::100/64".into()],
                ..spec(51, "")
            },
        ),
        (
            "pass only v2",
            "spec.auth.type",
            InstanceSpec {
                auth: pass.clone(),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "source not on interface",
            "spec.unicast_source",
            InstanceSpec {
                unicast_source: "10.0.0.9".into(),
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "peers unique",
            "spec.unicast_peers[1]",
            InstanceSpec {
                unicast_peers: vec!["10.0.0.2".into(), "10.0.0.2".into()],
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "peers family",
            "spec.unicast_peers[0]",
            InstanceSpec {
                unicast_peers: vec!["2001:db8::2".into()],
                ..spec(51, "10.0.0.100/24")
            },
        ),
        (
            "bad vip",
            "spec.virtual_addresses[0]",
            spec(51, "10.0.0.300/24"),
        ),
    ];
    for (what, field, s) in cases {
        let name = if what == "bad name" { "-bad name" } else { "x" };
        let err = c.create_instance(create(name, s)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        let bad = err.get_details_bad_request().unwrap();
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert!(
            fields.iter().any(|f| f == field),
            "{what}: expected {field}, got {fields:?}"
        );
    }

    let unknown = c
        .create_instance(create(
            "x",
            InstanceSpec {
                interface: "nosuch0".into(),
                ..spec(51, "10.0.0.100/24")
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition, "{unknown:?}");

    c.create_instance(create("first", spec(51, "10.0.0.100/24")))
        .await
        .unwrap();
    let dup = c
        .create_instance(create("second", spec(51, "10.0.0.101/24")))
        .await
        .unwrap_err();
    assert_eq!(
        dup.code(),
        Code::AlreadyExists,
        "same interface, VRID and family"
    );
    let dup_name = c
        .create_instance(create("first", spec(52, "10.0.0.102/24")))
        .await
        .unwrap_err();
    assert_eq!(dup_name.code(), Code::AlreadyExists);

    // Nothing but "first" exists, in the API and in the history.
    let all = c
        .list_instances(ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.instances
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["first"]
    );
    let mut h = daemon.history().await;
    let changes = h
        .list_config_changes(ListConfigChangesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changes.changes.len(), 1);
    // validate_only changes nothing either.
    let mut preview = create("preview", spec(53, "10.0.0.103/24"));
    preview.validate_only = true;
    c.create_instance(preview).await.unwrap();
    assert!(
        c.get_instance(GetInstanceRequest {
            name: "preview".into()
        })
        .await
        .is_err()
    );
    let mut after = host.addresses();
    after.retain(|a| !a.starts_with("10.0.0.100/"));
    assert_eq!(after, before, "refused calls touched the interface");
}

/// After a restart every instance is back, with the same revision, and event sequence
/// numbers continue where they stopped.
#[tokio::test]
async fn a_restart_keeps_instances_and_the_event_sequence() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("restart");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let mut daemon = Daemon::start(&host, "restart");
    let mut c = daemon.instances().await;
    let created = c
        .create_instance(create("web", spec(51, "10.0.0.100/24")))
        .await
        .unwrap()
        .into_inner();
    wait_for_state(&daemon, "web", v1::State::Master).await;
    let before = checks::events_after(&daemon, 0).await;
    let last_seq = before.last().map(|e| e.seq).unwrap();
    assert!(
        before.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "no holes"
    );
    daemon.stop();

    daemon.restart();
    let mut c = daemon.instances().await;
    let back = c
        .get_instance(GetInstanceRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.revision, created.revision);
    wait_for_state(&daemon, "web", v1::State::Master).await;
    let after = checks::events_after(&daemon, 0).await;
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "history of events is kept"
    );
    let later: Vec<u64> = after[before.len()..].iter().map(|e| e.seq).collect();
    assert_eq!(
        later.first(),
        Some(&(last_seq + 1)),
        "the sequence continues: {later:?}"
    );
    assert!(
        after.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "no holes, no repeats across the restart"
    );
}

/// Transitions come from toggling `disabled` (BACKUP/MASTER ↔ DISABLED).
async fn toggle(d: &Daemon, name: &str, times: usize) {
    toggle_with(d.instances().await, name, times).await;
}

async fn toggle_with(
    mut c: v1::instance_service_client::InstanceServiceClient<tonic::transport::Channel>,
    name: &str,
    times: usize,
) {
    for i in 0..times {
        c.update_instance(UpdateInstanceRequest {
            name: name.into(),
            spec: Some(InstanceSpec {
                disabled: i % 2 == 0,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["disabled".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

/// A watcher that reconnects with the last seq it saw gets every later event exactly once,
/// in order, while transitions keep happening.
#[tokio::test]
async fn watch_resumes_exactly_once_across_a_reconnect() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("watch");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start(&host, "watch");
    let mut c = daemon.instances().await;
    c.create_instance(create("web", spec(51, "10.0.0.100/24")))
        .await
        .unwrap();

    let producer_client = daemon.instances().await;
    let producer = tokio::spawn(async move { toggle_with(producer_client, "web", 60).await });
    // Read some events, drop the stream mid-flight, resume from the last seq seen.
    let mut seen: Vec<u64> = Vec::new();
    for _round in 0..4 {
        let mut client = daemon.events().await;
        let mut stream = client
            .watch_events(WatchEventsRequest {
                after_seq: Some(seen.last().copied().unwrap_or(0)),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for _ in 0..25 {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(e))) => seen.push(e.seq),
                _ => break,
            }
        }
    }
    producer.await.unwrap();
    let tail = checks::events_after(&daemon, seen.last().copied().unwrap_or(0)).await;
    seen.extend(tail.iter().map(|e| e.seq));
    let everything: Vec<u64> = checks::events_after(&daemon, 0)
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seen, everything, "exactly once, in order, no gap");
    assert!(
        everything.len() > 100,
        "the test produced {} events",
        everything.len()
    );
}

/// History filters by instance and time, newest first, page by page with no overlap.
#[tokio::test]
async fn history_filters_and_pages() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("hist");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start(&host, "hist");
    let mut c = daemon.instances().await;
    c.create_instance(create("web", spec(51, "10.0.0.100/24")))
        .await
        .unwrap();
    c.create_instance(create("db", spec(52, "10.0.0.101/24")))
        .await
        .unwrap();
    toggle(&daemon, "web", 10).await;
    toggle(&daemon, "db", 4).await;
    // Let the batching writer catch up.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut h = daemon.history().await;
    let mut pages = 0;
    let mut token = String::new();
    let mut got: Vec<v1::Transition> = Vec::new();
    loop {
        let page = h
            .list_transitions(ListTransitionsRequest {
                filter: Some(HistoryFilter {
                    instance: "web".into(),
                    ..Default::default()
                }),
                page_size: 3,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.transitions.len() <= 3);
        got.extend(page.transitions);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(pages >= 4, "{pages} pages");
    assert!(got.iter().all(|t| t.instance == "web"));
    assert!(
        got.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first, no overlap"
    );
    let all = h
        .list_transitions(ListTransitionsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.transitions
            .iter()
            .filter(|t| t.instance == "web")
            .count(),
        got.len(),
        "paging lost nothing"
    );
    // A time window after everything is empty.
    let future = pbjson_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    let none = h
        .list_transitions(ListTransitionsRequest {
            filter: Some(HistoryFilter {
                since: Some(future),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.transitions.is_empty());
    let bad = h
        .list_transitions(ListTransitionsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

/// A watcher that stops reading is cut off with RESOURCE_EXHAUSTED naming where to resume,
/// while another watcher receives everything.
#[tokio::test]
async fn a_slow_watcher_is_cut_off_without_delaying_another() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("slow");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start_with(&host, "slow", &["--watch-buffer", "16"]);
    let mut c = daemon.instances().await;
    c.create_instance(create("web", spec(51, "10.0.0.100/24")))
        .await
        .unwrap();

    let mut fast_client = daemon.events().await;
    let mut fast = fast_client
        .watch_events(WatchEventsRequest {
            after_seq: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut slow_client = v1::event_service_client::EventServiceClient::new(
        havip_e2e::daemon::connect_unix_small_window(&daemon.socket()).await,
    );
    let mut slow = slow_client
        .watch_events(WatchEventsRequest {
            after_seq: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = slow.next().await.unwrap().unwrap();

    let fast_reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(5), fast.next()).await
        {
            seqs.push(e.seq);
        }
        seqs
    });
    toggle(&daemon, "web", 600).await;

    // Now the slow one reads: what was buffered, then the cut-off.
    let mut last = first.seq;
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
            Ok(Some(Ok(e))) => {
                assert_eq!(e.seq, last + 1, "no gap before the cut-off");
                last = e.seq;
            }
            Ok(Some(Err(status))) => break status,
            other => panic!("expected the slow watcher to be cut off, got {other:?}"),
        }
    };
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains(&format!("after_seq={last}")),
        "the error names the seq to resume after ({last}): {}",
        err.message()
    );
    let fast_seqs = fast_reader.await.unwrap();
    let everything: Vec<u64> = checks::events_after(&daemon, 0)
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(fast_seqs, everything, "the fast watcher got every event");
    // Resuming from the named seq continues with nothing lost.
    let resumed = checks::events_after(&daemon, last).await;
    assert_eq!(resumed.first().map(|e| e.seq), Some(last + 1));
}

/// Standard tooling works without our .proto files: reflection (v1 and v1alpha) lists the
/// services, and health says they serve.
#[tokio::test]
async fn reflection_and_health() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::{v1 as r1, v1alpha as r1a};
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("refl");
    let host = lab.host("a", Some("10.0.0.1/24"), None);
    let daemon = Daemon::start(&host, "refl");
    let expected = [
        "havip.v1.EventService",
        "havip.v1.HistoryService",
        "havip.v1.InstanceService",
    ];

    let mut v1c = r1::server_reflection_client::ServerReflectionClient::new(daemon.channel().await);
    let req = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = v1c
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        resp.message_response
    else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for e in expected {
        assert!(
            names.iter().any(|n| n == e),
            "v1 reflection lists {e}: {names:?}"
        );
    }

    let mut v1a =
        r1a::server_reflection_client::ServerReflectionClient::new(daemon.channel().await);
    let req = r1a::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            r1a::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = v1a
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(r1a::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        resp.message_response
    else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for e in expected {
        assert!(
            names.iter().any(|n| n == e),
            "v1alpha reflection lists {e}: {names:?}"
        );
    }

    let mut health = HealthClient::new(daemon.channel().await);
    for e in expected {
        let r = health
            .check(HealthCheckRequest { service: e.into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, 1, "{e} is SERVING");
    }
}
