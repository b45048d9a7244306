//! Hostile packets at a master, end to end: an attacker on the segment crafts VRRP packets
//! byte by byte (wrong TTL, version, type, checksum, length, address count, interval,
//! password, VRID, source) with a higher priority than the master's. None may move the
//! master, and each is counted under its reason, in the instance's status and in the
//! Prometheus metrics. A correct higher-priority advert does move it (the control). Then a
//! flood of 100 000 such packets a second: the master keeps advertising (its backup never
//! takes over), its answers do not multiply, the API keeps answering and the log stays
//! short.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::{events, wait_until};
use havip_e2e::inject::{
    Advert, Checksum, GROUP_V4, GROUP_V6, Injector4, Injector6, KernelHeader4, flood4,
    ipv4_datagram,
};
use havip_e2e::netns::{http_get, run_in, thread_in};
use havip_e2e::vrrp::{self, create, spec, wait_state};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, ListInstancesRequest, State};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

const METRICS: &str = "127.0.0.1:9108";
const MASTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const BACKUP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
const PASSWORD: &str = "s3cret";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Where a dropped packet is counted.
#[derive(Clone, Copy, Debug)]
enum Counted {
    /// Under this reason in the named instance's status and metrics.
    Instance(&'static str, &'static str),
    /// On the interface (no instance can be charged with it), in the metrics only.
    Interface(&'static str),
}

/// How a packet leaves the attacker.
#[derive(Clone, Debug)]
enum Wire {
    /// An IPv4 datagram with the header we wrote.
    Raw(Vec<u8>),
    /// A payload in a datagram the kernel builds (and fragments): for oversized ones.
    Kernel(Vec<u8>, Ipv4Addr),
    /// An IPv6 message from a source to a destination, with this hop limit.
    V6(Vec<u8>, Ipv6Addr, Ipv6Addr, u8),
}

#[derive(Clone, Debug)]
struct Case {
    what: &'static str,
    wire: Wire,
    counted: Counted,
}

/// A VRRP message from `src` to `dst` in an IPv4 datagram with this TTL.
fn v4(advert: &Advert, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    ipv4_datagram(src, dst, ttl, &advert.message(src.into(), dst.into()))
}

fn instance_bad(status: &v1::InstanceStatus) -> HashMap<String, u64> {
    status
        .counters
        .clone()
        .unwrap_or_default()
        .bad_packets
        .into_iter()
        .collect()
}

fn scrape(ns: &str) -> String {
    let response = http_get(ns, METRICS, "/metrics");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of one series ("name{labels}" exactly as exposed), or 0 if absent.
fn series(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn interface_series(family: &str, reason: &str) -> String {
    format!(
        r#"havip_interface_bad_packets_total{{interface="eth0",family="{family}",reason="{reason}"}}"#
    )
}

fn instance_series(name: &str, vrid: u32, reason: &str) -> String {
    format!(
        r#"havip_instance_bad_packets_total{{name="{name}",interface="eth0",vrid="{vrid}",reason="{reason}"}}"#
    )
}

fn send(attacker: &Host, wire: &Wire, copies: usize) {
    let wire = wire.clone();
    run_in(&attacker.ns, || async move {
        for _ in 0..copies {
            match &wire {
                Wire::Raw(d) => Injector4::open("eth0").send(d).unwrap(),
                Wire::Kernel(payload, dst) => {
                    KernelHeader4::open("eth0").send(payload, *dst).unwrap();
                }
                Wire::V6(m, src, dst, hops) => {
                    let index = nix::net::if_::if_nametoindex("eth0").unwrap();
                    Injector6::open("eth0", index, *src)
                        .send(m, *dst, *hops)
                        .unwrap();
                }
            }
        }
    });
}

/// Send each case three times and check that it was counted where it should be, while
/// every instance stays MASTER with its VIP and makes no transition.
async fn run_cases(
    d: &Daemon,
    master: &Host,
    attacker: &Host,
    instances: &[(&str, u32, &str)],
    cases: &[Case],
    family: &str,
) {
    let before: HashMap<&str, v1::InstanceStatus> = {
        let mut m = HashMap::new();
        for (name, ..) in instances {
            m.insert(*name, vrrp::status(d, name).await);
        }
        m
    };
    let mut expected_metrics: HashMap<String, f64> = HashMap::new();
    for case in cases {
        let scrape_before = scrape(&master.ns);
        let status_before = match case.counted {
            Counted::Instance(name, _) => Some(instance_bad(&vrrp::status(d, name).await)),
            Counted::Interface(_) => None,
        };
        send(attacker, &case.wire, 3);
        match case.counted {
            Counted::Instance(name, reason) => {
                let was = status_before.unwrap().get(reason).copied().unwrap_or(0);
                let what = format!("{} counted as {reason} on {name}", case.what);
                wait_until(&what, Duration::from_secs(5), d, || async {
                    let now = instance_bad(&vrrp::status(d, name).await);
                    now.get(reason).copied().unwrap_or(0) >= was + 3
                })
                .await;
                let vrid = instances.iter().find(|i| i.0 == name).unwrap().1;
                let s = instance_series(name, vrid, reason);
                *expected_metrics.entry(s).or_default() += 3.0;
                eprintln!("{:<48} → {name}: {reason}", case.what);
            }
            Counted::Interface(reason) => {
                let s = interface_series(family, reason);
                let was = series(&scrape_before, &s);
                let what = format!("{} counted as {reason} on eth0", case.what);
                wait_until(&what, Duration::from_secs(5), d, || async {
                    series(&scrape(&master.ns), &s) >= was + 3.0
                })
                .await;
                *expected_metrics.entry(s).or_default() += 3.0;
                eprintln!("{:<48} → eth0: {reason}", case.what);
            }
        }
        // Nothing moved.
        for (name, _, vip) in instances {
            let s = vrrp::status(d, name).await;
            assert_eq!(
                s.state,
                State::Master as i32,
                "{name} after {}: {s:?}\n{}",
                case.what,
                d.log()
            );
            assert!(master.has_address(vip), "{vip} gone after {}", case.what);
            let c = s.counters.unwrap_or_default();
            let was = before[name].counters.clone().unwrap_or_default();
            assert_eq!(c.transitions, was.transitions, "{name} after {}", case.what);
        }
    }
    // The metrics count what the API counts.
    let text = scrape(&master.ns);
    for (s, want) in expected_metrics {
        assert!(series(&text, &s) >= want, "{s} < {want} in\n{text}");
    }
    for (name, ..) in instances {
        assert!(
            events(d, name, v1::EventKind::DualMaster).await.is_empty(),
            "no hostile packet is a rival master"
        );
    }
}

/// The control: a correct higher-priority advert moves the master to BACKUP (and it reports
/// the other master); once the sender goes quiet it is master again.
async fn control(
    d: &Daemon,
    master: &Host,
    attacker: &Host,
    name: &str,
    vip: &str,
    wire: Wire,
    from: IpAddr,
) {
    let mut watch = vrrp::Transitions::follow(d, name).await;
    send(attacker, &wire, 1);
    let t = watch.next_to(State::Backup, Duration::from_secs(5)).await;
    let reason = t.reason.unwrap();
    assert_eq!(reason.code, "higher_priority_advert", "{reason:?}");
    assert_eq!(reason.peer_address, from.to_string());
    wait_until(
        &format!("{vip} removed"),
        Duration::from_secs(5),
        d,
        || async { !master.has_address(vip) },
    )
    .await;
    let duals = events(d, name, v1::EventKind::DualMaster).await;
    let Some(v1::event::Payload::DualMaster(dual)) = duals.last().and_then(|e| e.payload.clone())
    else {
        panic!("no dual-master event on {name}: {duals:?}");
    };
    assert_eq!(dual.peer_address, from.to_string());
    assert_eq!(dual.peer_priority, 254);
    assert_eq!(dual.outcome, v1::DualMasterOutcome::SteppedDown as i32);
    eprintln!("control on {name}: BACKUP for {from} (priority 254), then MASTER again");
    watch.next_to(State::Master, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn hostile_ipv4_packets_do_not_move_the_master_and_are_counted() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("hostile4");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let x = lab.host("x", Some("10.0.0.66/24"), None);
    let d = Daemon::start_with(&a, "a", &["--metrics-listen", METRICS]);
    // v3, multicast, 100 ms; v2 with PASS, 1 s; v3 unicast with one peer (10.0.0.2, which
    // does not exist: the instance is master alone).
    create(&d, "v3", spec(51, 3, 100, 100, "10.0.0.100/24")).await;
    let mut v2 = spec(52, 2, 100, 1000, "10.0.0.101/24");
    v2.auth = Some(v1::Authentication {
        r#type: v1::AuthType::Pass as i32,
        password: PASSWORD.into(),
        password_set: false,
    });
    create(&d, "v2", v2).await;
    let mut uni = spec(53, 3, 100, 100, "10.0.0.102/24");
    uni.unicast_source = MASTER.to_string();
    uni.unicast_peers = vec![BACKUP.to_string()];
    create(&d, "uni", uni).await;
    for name in ["v3", "v2", "uni"] {
        wait_state(&d, name, State::Master, Duration::from_secs(10)).await;
    }
    let instances = [
        ("v3", 51, "10.0.0.100"),
        ("v2", 52, "10.0.0.101"),
        ("uni", 53, "10.0.0.102"),
    ];

    let vip51 = [ip("10.0.0.100")];
    let vip52 = [ip("10.0.0.101")];
    let vip53 = [ip("10.0.0.102")];
    let good3 = Advert::v3(51, 254, 10, &vip51);
    let good2 = Advert::v2(52, 254, 1, &vip52).pass(PASSWORD);
    let group = |a: &Advert, ttl| Wire::Raw(v4(a, ATTACKER, GROUP_V4, ttl));
    let on_v3 = |reason| Counted::Instance("v3", reason);
    let on_v2 = |reason| Counted::Instance("v2", reason);
    let cases = vec![
        Case {
            what: "priority 254, TTL 254",
            wire: group(&good3, 254),
            counted: on_v3("ttl_not_255"),
        },
        Case {
            what: "priority 254, TTL 1",
            wire: group(&good3, 1),
            counted: on_v3("ttl_not_255"),
        },
        Case {
            what: "version 4",
            wire: group(
                &Advert {
                    version: 4,
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("unsupported_version"),
        },
        Case {
            what: "a v2 advert at a v3 instance",
            wire: group(&Advert::v2(51, 254, 1, &vip51), 255),
            counted: on_v3("unsupported_version"),
        },
        Case {
            what: "type 2",
            wire: group(
                &Advert {
                    packet_type: 2,
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("not_advertisement"),
        },
        Case {
            what: "bad checksum",
            wire: group(
                &Advert {
                    checksum: Checksum::Wrong,
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("bad_checksum"),
        },
        Case {
            what: "truncated to 6 bytes",
            wire: group(
                &Advert {
                    truncate: Some(6),
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("truncated"),
        },
        Case {
            what: "cut inside its address",
            wire: group(
                &Advert {
                    truncate: Some(10),
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("address_count_mismatch"),
        },
        Case {
            what: "address count 0",
            wire: group(
                &Advert {
                    addresses: vec![],
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("no_addresses"),
        },
        Case {
            what: "address count 5, one address",
            wire: group(
                &Advert {
                    count: Some(5),
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("address_count_mismatch"),
        },
        Case {
            what: "4 bytes more than the count says",
            wire: group(
                &Advert {
                    trailing: vec![0; 4],
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("trailing_bytes"),
        },
        Case {
            what: "interval 0 (v3)",
            wire: group(
                &Advert {
                    interval: 0,
                    ..good3.clone()
                },
                255,
            ),
            counted: on_v3("zero_interval"),
        },
        Case {
            what: "advert interval 0 (v2)",
            wire: group(
                &Advert {
                    interval: 0,
                    ..good2.clone()
                },
                255,
            ),
            counted: on_v2("zero_interval"),
        },
        Case {
            what: "wrong PASS password (v2)",
            wire: group(&good2.clone().pass("guess"), 255),
            counted: on_v2("auth_mismatch"),
        },
        Case {
            what: "no authentication at a PASS instance (v2)",
            wire: group(&Advert::v2(52, 254, 1, &vip52), 255),
            counted: on_v2("auth_mismatch"),
        },
        Case {
            what: "another advert interval (v2, 2 s)",
            wire: group(
                &Advert {
                    interval: 2,
                    ..good2.clone()
                },
                255,
            ),
            counted: on_v2("interval_mismatch"),
        },
        Case {
            what: "unicast from a non-peer",
            wire: Wire::Raw(v4(&Advert::v3(53, 254, 10, &vip53), ATTACKER, MASTER, 255)),
            counted: Counted::Instance("uni", "not_a_peer"),
        },
        Case {
            what: "unknown VRID 99",
            wire: group(
                &Advert {
                    vrid: 99,
                    ..good3.clone()
                },
                255,
            ),
            counted: Counted::Interface("unknown_vrid"),
        },
        Case {
            what: "one byte: too short to name a VRID",
            wire: group(
                &Advert {
                    truncate: Some(1),
                    ..good3.clone()
                },
                255,
            ),
            counted: Counted::Interface("truncated"),
        },
        Case {
            what: "5000 bytes: larger than any advert",
            wire: Wire::Kernel(
                Advert {
                    trailing: vec![0; 4988],
                    ..good3.clone()
                }
                .message(ATTACKER.into(), MASTER.into()),
                MASTER,
            ),
            counted: Counted::Interface("oversized"),
        },
    ];
    run_cases(&d, &a, &x, &instances, &cases, "ipv4").await;

    // The controls: correct adverts with a higher priority move each master. The peer
    // check is by source: the same advert as the non-peer's, from the peer, does.
    let from_peer = Wire::Raw(v4(&Advert::v3(53, 254, 10, &vip53), BACKUP, MASTER, 255));
    for (name, vip, wire, from) in [
        ("v3", "10.0.0.100", group(&good3, 255), ATTACKER),
        ("v2", "10.0.0.101", group(&good2, 255), ATTACKER),
        ("uni", "10.0.0.102", from_peer, BACKUP),
    ] {
        control(&d, &a, &x, name, vip, wire, from.into()).await;
    }
}

#[tokio::test]
async fn hostile_ipv6_packets_do_not_move_the_master_and_are_counted() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("hostile6");
    let a = lab.host("a", None, Some("2001:db8::1/64"));
    let x = lab.host("x", None, Some("2001:db8::66/64"));
    let d = Daemon::start_with(&a, "a", &["--metrics-listen", METRICS]);
    create(&d, "v6", spec(61, 3, 100, 100, "2001:db8::100/64")).await;
    wait_state(&d, "v6", State::Master, Duration::from_secs(10)).await;
    let src = x.link_local();
    let vips = [ip("fe80::1"), ip("2001:db8::100")];
    let good = Advert::v3(61, 254, 10, &vips);
    let at_group = |adv: &Advert, hops| {
        Wire::V6(
            adv.message(src.into(), GROUP_V6.into()),
            src,
            GROUP_V6,
            hops,
        )
    };
    let on = |reason| Counted::Instance("v6", reason);
    let cases = vec![
        Case {
            what: "priority 254, hop limit 254",
            wire: at_group(&good, 254),
            counted: on("ttl_not_255"),
        },
        Case {
            what: "bad checksum",
            wire: at_group(
                &Advert {
                    checksum: Checksum::Wrong,
                    ..good.clone()
                },
                255,
            ),
            counted: on("bad_checksum"),
        },
        Case {
            what: "a VRRPv2 advert over IPv6",
            wire: at_group(&Advert::v2(61, 254, 1, &vips), 255),
            counted: on("family_mismatch"),
        },
        Case {
            what: "first address not link-local",
            wire: at_group(&Advert::v3(61, 254, 10, &[ip("2001:db8::100")]), 255),
            counted: on("first_address_not_link_local"),
        },
        Case {
            what: "address count lying",
            wire: at_group(
                &Advert {
                    count: Some(3),
                    ..good.clone()
                },
                255,
            ),
            counted: on("address_count_mismatch"),
        },
        Case {
            what: "unknown VRID 99",
            wire: at_group(
                &Advert {
                    vrid: 99,
                    ..good.clone()
                },
                255,
            ),
            counted: Counted::Interface("unknown_vrid"),
        },
    ];
    run_cases(&d, &a, &x, &[("v6", 61, "2001:db8::100")], &cases, "ipv6").await;
    control(
        &d,
        &a,
        &x,
        "v6",
        "2001:db8::100",
        at_group(&good, 255),
        src.into(),
    )
    .await;
}

/// Datagrams the kernel dropped because a raw socket's receive buffer was full, summed over
/// the raw sockets of a host's namespace (the last column of /proc/net/raw).
fn raw_socket_drops(host: &Host) -> u64 {
    let out = host.exec(&["cat", "/proc/net/raw"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// CPU time (user + system) a daemon's process has used so far.
fn cpu_time(d: &Daemon) -> Duration {
    let pid = d.pid().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields 14 and 15 (utime, stime), after the command name in parentheses.
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    let ticks = u64::try_from(
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    Duration::from_millis((fields[0] + fields[1]) * 1000 / ticks)
}

/// Percentiles of latencies, for the report.
fn summary(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no calls".into();
    }
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
    format!(
        "{} calls: p50 {:?}, p99 {:?}, max {:?}",
        v.len(),
        at(0.5),
        at(0.99),
        v[v.len() - 1]
    )
}

/// A flood of 100 000 hostile packets a second for 10 s at the VRRP group, from an attacker
/// next to a master (150) and its backup (100): every kind of bad packet above, plus valid
/// lower-priority adverts (a rival the master must answer, at most once an interval).
#[tokio::test]
async fn a_flood_of_hostile_packets_stops_neither_adverts_nor_the_api() {
    if !netns_available() {
        return;
    }
    const RATE: u64 = 100_000;
    const FLOOD: Duration = Duration::from_secs(10);
    const INTERVAL_MS: u64 = 100;
    let mut lab = Lab::new("hflood");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let x = lab.host("x", Some("10.0.0.66/24"), None);
    let da = Daemon::start_with(&a, "a", &["--metrics-listen", METRICS]);
    let db = Daemon::start_with(&b, "b", &["--metrics-listen", METRICS]);
    let interval = i64::try_from(INTERVAL_MS).unwrap();
    create(&da, "vip", spec(51, 3, 150, interval, "10.0.0.100/24")).await;
    create(&db, "vip", spec(51, 3, 100, interval, "10.0.0.100/24")).await;
    wait_state(&da, "vip", State::Master, Duration::from_secs(10)).await;
    wait_state(&db, "vip", State::Backup, Duration::from_secs(10)).await;

    let vips = [ip("10.0.0.100")];
    let good = Advert::v3(51, 254, 10, &vips);
    let at_group = |a: &Advert, ttl| v4(a, ATTACKER, GROUP_V4, ttl);
    let bad = [
        at_group(&good, 254),
        at_group(
            &Advert {
                version: 4,
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                packet_type: 2,
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                checksum: Checksum::Wrong,
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                truncate: Some(6),
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                addresses: vec![],
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                count: Some(5),
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                interval: 0,
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                vrid: 99,
                ..good.clone()
            },
            255,
        ),
        at_group(
            &Advert {
                truncate: Some(1),
                ..good.clone()
            },
            255,
        ),
    ];
    // Valid, lower priority: the master answers (RFC 9568 §6.4.3), at most once an interval.
    let rival = at_group(&Advert::v3(51, 50, 10, &vips), 255);
    let mut datagrams: Vec<Vec<u8>> = bad.to_vec();
    datagrams.push(rival);

    let drops_before = (raw_socket_drops(&a), raw_socket_drops(&b));
    let cpu_before = (cpu_time(&da), cpu_time(&db));
    let a_before = vrrp::status(&da, "vip").await.counters.unwrap_or_default();
    let b_before = vrrp::status(&db, "vip").await.counters.unwrap_or_default();
    let log_lines_before = da.log().lines().count();
    let scrape_before = scrape(&a.ns);
    let bad_total = |text: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("havip_instance_bad_packets_total{")
                    || l.starts_with("havip_interface_bad_packets_total{")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };

    let flood = thread_in(&x.ns, move || flood4("eth0", datagrams, RATE, FLOOD, 2, 64));
    let started = Instant::now();
    let mut gets = Vec::new();
    let mut lists = Vec::new();
    // How long since the backup last accepted an advert from the master, sampled each
    // second (its adverts_received also counts the attacker's valid adverts).
    let age_series =
        r#"havip_instance_master_advert_age_seconds{name="vip",interface="eth0",vrid="51"}"#;
    let mut b_ages = Vec::new();
    let mut next_sample = Instant::now() + Duration::from_secs(1);
    while !flood.is_finished() {
        let t = Instant::now();
        let s = tokio::time::timeout(Duration::from_secs(5), vrrp::status(&da, "vip"))
            .await
            .expect("GetInstance did not answer within 5 s during the flood");
        gets.push(t.elapsed());
        assert_eq!(s.state, State::Master as i32, "the master moved: {s:?}");
        let t = Instant::now();
        let mut c = da.instances().await;
        tokio::time::timeout(
            Duration::from_secs(5),
            c.list_instances(ListInstancesRequest::default()),
        )
        .await
        .expect("ListInstances did not answer within 5 s during the flood")
        .unwrap();
        lists.push(t.elapsed());
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            let s = vrrp::status(&db, "vip").await;
            assert_eq!(s.state, State::Backup as i32, "the backup moved: {s:?}");
            assert_eq!(s.master_address, MASTER.to_string());
            b_ages.push(series(&scrape(&b.ns), age_series));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = flood.join().unwrap();
    let flooded = started.elapsed();
    let drops = (
        raw_socket_drops(&a) - drops_before.0,
        raw_socket_drops(&b) - drops_before.1,
    );
    let cpu = (cpu_time(&da) - cpu_before.0, cpu_time(&db) - cpu_before.1);
    let scrape_after = scrape(&a.ns);
    let counted = bad_total(&scrape_after) - bad_total(&scrape_before);
    let a_after = vrrp::status(&da, "vip").await;
    let b_after = vrrp::status(&db, "vip").await;
    let ac = a_after.counters.clone().unwrap_or_default();
    let bc = b_after.counters.clone().unwrap_or_default();
    // What the flood wrote (the API calls above log at debug level too; they are not it).
    let new_log_lines: Vec<String> = da
        .log()
        .lines()
        .skip(log_lines_before)
        .filter(|l| !l.contains("havipd::rpc"))
        .map(str::to_owned)
        .collect();
    let adverts_sent = ac.adverts_sent - a_before.adverts_sent;
    let expected_adverts = FLOOD.as_millis() as u64 / INTERVAL_MS;

    eprintln!(
        "flood: {} datagrams sent in {:?} = {:.0}/s ({} failed sendmmsg calls); the master \
         counted {counted} bad = {:.0}/s",
        report.sent,
        report.elapsed,
        report.rate(),
        report.errors,
        counted / flooded.as_secs_f64()
    );
    eprintln!(
        "datagrams dropped by a full socket receive buffer: {} at the master, {} at the backup",
        drops.0, drops.1
    );
    eprintln!(
        "CPU used during the flood: {:?} by the master's havipd, {:?} by the backup's",
        cpu.0, cpu.1
    );
    eprintln!("GetInstance during the flood: {}", summary(gets.clone()));
    eprintln!("ListInstances during the flood: {}", summary(lists.clone()));
    eprintln!(
        "the master sent {adverts_sent} adverts (≈{expected_adverts} on its cadence); at the \
         backup, seconds since the master's last advert, sampled each second: {b_ages:?}"
    );
    eprintln!("{} new log lines on the master:", new_log_lines.len());
    for l in &new_log_lines {
        eprintln!("  {l}");
    }

    // Neither router moved.
    assert_eq!(a_after.state, State::Master as i32);
    assert_eq!(b_after.state, State::Backup as i32);
    let a_before_transitions = a_before.transitions;
    assert_eq!(ac.transitions, a_before_transitions, "{ac:?}");
    assert_eq!(bc.transitions, b_before.transitions, "{bc:?}");
    assert_eq!(bc.became_master, 0);
    // The backup kept hearing the master: never as long as Master_Down_Interval (0.36 s)
    // without an advert, give or take a sample taken while the machine was busy.
    assert!(b_ages.len() >= 5, "{b_ages:?}");
    assert!(
        b_ages.iter().all(|&age| age < 1.0),
        "the backup went a second without the master's adverts: {b_ages:?}"
    );
    // The master answered the rival at most about once an interval: no flood of its own.
    assert!(
        adverts_sent <= expected_adverts * 2 + 20,
        "{adverts_sent} adverts in {FLOOD:?} at a {INTERVAL_MS} ms interval"
    );
    // The API answered throughout (generous: the machine is shared).
    for l in gets.iter().chain(&lists) {
        assert!(*l < Duration::from_secs(2), "an API call took {l:?}");
    }
    assert!(
        gets.len() >= 10,
        "only {} GetInstance calls in {flooded:?}",
        gets.len()
    );
    // The flood was counted, and the log says so in a few lines.
    assert!(counted > 1000.0, "only {counted} bad packets counted");
    assert!(
        new_log_lines.len() <= 40,
        "{} log lines during the flood",
        new_log_lines.len()
    );
    // The valid rival is one dual-master episode, not one per advert.
    let duals = events(&da, "vip", v1::EventKind::DualMaster).await;
    assert_eq!(duals.len(), 1, "{duals:?}");
    assert!(
        events(&db, "vip", v1::EventKind::DualMaster)
            .await
            .is_empty()
    );
}
