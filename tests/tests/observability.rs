//! What havipd tells operators, end to end: the Prometheus metrics after a failover, spans
//! and logs exported to an OTLP collector (with the caller's trace carried over and the
//! trace id in the JSON log lines), and a flood of bad packets that leaves only a few log
//! lines, with the count of what was suppressed.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::netns::{http_get, run_in};
use havip_e2e::otlp::{self, Collector};
use havip_e2e::vrrp::{create, spec, wait_state};
use havip_e2e::{Daemon, Lab, netns_available};
use havip_proto::v1::{CreateInstanceRequest, State};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const METRICS: &str = "127.0.0.1:9108";

/// The value of one series ("name{labels}" exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn scrape(d: &Daemon) -> String {
    let response = http_get(&d.ns, METRICS, "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

#[tokio::test]
async fn metrics_after_a_failover() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("metrics");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let da = Daemon::start_with(&a, "a", &["--metrics-listen", METRICS]);
    let db = Daemon::start_with(&b, "b", &["--metrics-listen", METRICS]);
    create(&da, "vip", spec(51, 3, 150, 100, "10.0.0.100/24")).await;
    create(&db, "vip", spec(51, 3, 100, 100, "10.0.0.100/24")).await;
    let settle = Duration::from_secs(10);
    wait_state(&da, "vip", State::Master, settle).await;
    wait_state(&db, "vip", State::Backup, settle).await;

    let labels = r#"name="vip",interface="eth0",vrid="51""#;
    let series = |name: &str, extra: &str| {
        if extra.is_empty() {
            format!("{name}{{{labels}}}")
        } else {
            format!("{name}{{{labels},{extra}}}")
        }
    };
    // The backup hears the master.
    let text = scrape(&db);
    assert_eq!(
        value(&text, &series("havip_instance_state", r#"state="backup""#)),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &series("havip_instance_state", r#"state="master""#)),
        Some(0.0)
    );
    assert_eq!(
        value(&text, &series("havip_instance_effective_priority", "")),
        Some(100.0)
    );
    assert!(value(&text, &series("havip_instance_adverts_received_total", "")).unwrap() > 0.0);
    let age = value(
        &text,
        &series("havip_instance_master_advert_age_seconds", ""),
    )
    .unwrap();
    assert!(age < 5.0, "the master's adverts are {age} s old");

    // The master's link goes: the backup takes over.
    lab.unplug(&a);
    wait_state(&db, "vip", State::Master, settle).await;
    let text = scrape(&db);
    for (series, want) in [
        (series("havip_instance_state", r#"state="master""#), 1.0),
        (series("havip_instance_state", r#"state="backup""#), 0.0),
        (
            series(
                "havip_instance_transitions_total",
                r#"to="master",reason="master_down_timer""#,
            ),
            1.0,
        ),
        (
            series(
                "havip_instance_transitions_total",
                r#"to="backup",reason="startup""#,
            ),
            1.0,
        ),
        (
            series("havip_instance_bad_packets_total", r#"reason="bad_checksum""#),
            0.0,
        ),
        (
            r#"havip_grpc_server_handled_total{service="havip.v1.InstanceService",method="CreateInstance",code="OK"}"#.to_owned(),
            1.0,
        ),
    ] {
        assert_eq!(value(&text, &series), Some(want), "{series} in\n{text}");
    }
    // Counters that grow with time, and the daemon-wide figures.
    for series in [
        series("havip_instance_adverts_sent_total", ""),
        series("havip_instance_garps_sent_total", ""),
        r#"havip_grpc_server_handling_seconds_count{service="havip.v1.InstanceService",method="GetInstance",code="OK"}"#.to_owned(),
        "havip_store_write_seconds_count".to_owned(),
    ] {
        let v = value(&text, &series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert!(v > 0.0, "{series} = {v}");
    }
    for series in [
        "havip_event_subscribers",
        "havip_store_queue_depth",
        "havip_store_lost_events_total",
    ] {
        assert!(value(&text, series).is_some(), "{series} missing:\n{text}");
    }

    // Each transition's log line carries its trace id (text format).
    let log = db.log();
    let line = log
        .lines()
        .find(|l| l.contains("state change") && l.contains("master_down_timer"))
        .unwrap_or_else(|| panic!("no takeover line in\n{log}"));
    let id = line
        .split("trace_id=")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_hexdigit).count());
    assert_eq!(id, Some(32), "a 32-digit trace id on {line}");
}

#[tokio::test]
async fn spans_and_logs_reach_an_otlp_collector() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("otlp");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let collector = Collector::start(&a.ns, "127.0.0.1:4317");
    let mut d = Daemon::start_with(
        &a,
        "a",
        &[
            "--otlp-endpoint",
            "http://127.0.0.1:4317",
            "--log-format",
            "json",
        ],
    );

    // The caller is part of a trace: the RPC's span joins it.
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let mut request = tonic::Request::new(CreateInstanceRequest {
        name: "web".into(),
        spec: Some(spec(51, 3, 100, 100, "10.0.0.100/24")),
        validate_only: false,
        comment: String::new(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{caller_trace}-{caller_span}-01")
            .parse()
            .unwrap(),
    );
    d.instances().await.create_instance(request).await.unwrap();
    wait_state(&d, "web", State::Master, Duration::from_secs(10)).await;
    // A clean stop exports what is still buffered.
    d.stop();

    let (rpc, takeover) = collector.with(|got| {
        assert!(
            got.services.iter().all(|s| s == "havipd") && !got.services.is_empty(),
            "{:?}",
            got.services
        );
        let rpc = got
            .spans
            .iter()
            .find(|s| s.name == "havip.v1.InstanceService/CreateInstance")
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no CreateInstance span among {:?}",
                    got.spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            });
        let takeover = got
            .spans
            .iter()
            .find(|s| {
                s.name == "vrrp.transition"
                    && otlp::attribute(&s.attributes, "to").as_deref() == Some("MASTER")
            })
            .cloned()
            .expect("a span for the takeover");
        (rpc, takeover)
    });
    assert_eq!(otlp::hex(&rpc.trace_id), caller_trace);
    assert_eq!(otlp::hex(&rpc.parent_span_id), caller_span);
    assert_eq!(
        otlp::attribute(&rpc.attributes, "code").as_deref(),
        Some("OK")
    );
    assert_eq!(
        otlp::attribute(&rpc.attributes, "rpc.method").as_deref(),
        Some("CreateInstance")
    );
    assert_eq!(
        otlp::attribute(&takeover.attributes, "reason").as_deref(),
        Some("master_down_timer")
    );
    assert_eq!(
        otlp::attribute(&takeover.attributes, "instance").as_deref(),
        Some("web")
    );
    let takeover_trace = otlp::hex(&takeover.trace_id);

    // The log line of the takeover was exported in that trace...
    collector.with(|got| {
        let record = got.logs.iter().find(|r| {
            otlp::text(r.body.as_ref()).as_deref() == Some("state change")
                && otlp::hex(&r.trace_id) == takeover_trace
        });
        assert!(
            record.is_some(),
            "no exported 'state change' log record in trace {takeover_trace}; {} records",
            got.logs.len()
        );
    });
    // ...and the JSON log line names the same trace.
    let log = d.log();
    let json_line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "state change" && v["span"]["to"] == "MASTER")
        .unwrap_or_else(|| panic!("no JSON takeover line in\n{log}"));
    assert_eq!(json_line["span"]["trace_id"], takeover_trace.as_str());
}

/// A VRRPv3 advert for VRID 51 (keepalived's, from the design notes) with its checksum
/// broken.
fn bad_checksum_advert() -> Vec<u8> {
    let mut m = vec![
        0x31, 0x33, 0xc8, 0x01, 0x00, 0x64, 0x44, 0x02, 0xc0, 0x00, 0x02, 0x64,
    ];
    m[7] ^= 0xff;
    m
}

/// Send `count` bad adverts to 224.0.0.18 from the attacker's namespace, about 5000 a
/// second.
fn flood(ns: &str, from: Ipv4Addr, count: usize) {
    run_in(ns, || async move {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
        // TTL 255, as VRRP requires, so the packet is judged on its content.
        socket.set_multicast_ttl_v4(255).unwrap();
        socket.set_multicast_if_v4(&from).unwrap();
        let to = SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 18), 0).into();
        let packet = bad_checksum_advert();
        for i in 0..count {
            // The kernel may drop some when its buffer is full; what arrives is enough.
            let _ = socket.send_to(&packet, &to);
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
}

#[tokio::test]
async fn a_flood_of_bad_packets_logs_a_few_lines_with_a_count() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("flood");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let x = lab.host("x", Some("10.0.0.66/24"), None);
    let d = Daemon::start_with(&a, "a", &["--metrics-listen", METRICS]);
    create(&d, "vip", spec(51, 3, 100, 100, "10.0.0.100/24")).await;
    wait_state(&d, "vip", State::Master, Duration::from_secs(10)).await;

    const WARNING: &str = "dropped a bad VRRP packet";
    let started = Instant::now();
    flood(&x.ns, Ipv4Addr::new(10, 0, 0, 66), 15_000);
    let flooded = started.elapsed();
    let bad = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("havip_instance_bad_packets_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    // Wait for the data plane to have counted what arrived.
    let mut counted = 0.0;
    for _ in 0..100 {
        counted = bad(&scrape(&d));
        if counted >= 1000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted >= 1000.0, "only {counted} bad packets counted");
    let lines = d.log().lines().filter(|l| l.contains(WARNING)).count();
    // One line per 10 s window per reason; the flood took a few seconds.
    let windows = flooded.as_secs() / 10 + 2;
    assert!(
        (1..=usize::try_from(windows).unwrap()).contains(&lines),
        "{lines} warning lines for {counted} bad packets in {flooded:?}:\n{}",
        d.log()
    );

    // After the window, the next bad packet is reported with the count of those suppressed.
    let window = Duration::from_secs(10) + Duration::from_millis(500);
    tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    flood(&x.ns, Ipv4Addr::new(10, 0, 0, 66), 1);
    let mut reported = None;
    for _ in 0..100 {
        reported = d
            .log()
            .lines()
            .filter(|l| l.contains(WARNING))
            .filter_map(|l| {
                let n = l.split("suppressed=").nth(1)?;
                n.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .filter(|&n| n > 0);
        if reported.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reported = reported.unwrap_or_else(|| panic!("no line with suppressed=N:\n{}", d.log()));
    assert!(
        reported as f64 >= counted - 10.0,
        "suppressed={reported}, but {counted} bad packets were counted"
    );
}
