//! One test per rule: each names the field it expects to be blamed.

use super::*;
use havip_proto::v1::{AuthType, Authentication, InstanceSpec};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn good() -> InstanceSpec {
    normalize(InstanceSpec {
        interface: "eth0".into(),
        vrid: 51,
        virtual_addresses: vec!["10.0.0.100/24".into()],
        ..Default::default()
    })
}

fn with(f: impl FnOnce(&mut InstanceSpec)) -> InstanceSpec {
    let mut s = good();
    f(&mut s);
    s
}

fn dur(ms: i64) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: ms / 1000,
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap(),
    }
}

/// The fields blamed for a spec, or an empty list when it is valid.
fn blamed(spec: InstanceSpec) -> Vec<String> {
    match validate_spec(spec) {
        Ok(_) => vec![],
        Err(SpecError::Invalid(v)) => v.into_iter().map(|v| v.field).collect(),
        Err(SpecError::Precondition(p)) => vec![format!("precondition: {p}")],
    }
}

#[test]
fn a_good_spec_validates_into_runtime_terms() {
    let v = validate_spec(good()).unwrap();
    assert_eq!(v.vrid.get(), 51);
    assert_eq!(
        v.vips,
        vec![Vip {
            addr: ip("10.0.0.100"),
            prefix_len: 24
        }]
    );
    assert_eq!(v.identity(), ("eth0".into(), 51, havip_vrrp::Family::Ipv4));
    assert!(v.peers.is_empty());
    let engine = v.engine_config(ip("10.0.0.2"));
    assert_eq!(engine.primary_address, ip("10.0.0.2"));
    assert_eq!(engine.validate(), Ok(()));
}

#[test]
fn names() {
    for ok in ["web", "mysql-primary", "a.b_c-1", "9lives"] {
        assert!(validate_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "-x", ".x", "has space", "ünï", &"x".repeat(64), "a/b"] {
        assert_eq!(
            validate_name(bad).map_err(|v| v.field),
            Err("name".into()),
            "{bad}"
        );
    }
}

#[test]
fn vrid_must_be_1_to_255() {
    assert_eq!(blamed(with(|s| s.vrid = 0)), ["spec.vrid"]);
    assert_eq!(blamed(with(|s| s.vrid = 256)), ["spec.vrid"]);
    assert!(blamed(with(|s| s.vrid = 255)).is_empty());
}

#[test]
fn priority_must_be_1_to_255() {
    assert_eq!(blamed(with(|s| s.priority = Some(0))), ["spec.priority"]);
    assert_eq!(blamed(with(|s| s.priority = Some(256))), ["spec.priority"]);
    assert!(blamed(with(|s| s.priority = Some(254))).is_empty());
}

#[test]
fn priority_255_only_for_the_owner_of_the_addresses() {
    let v = validate_spec(with(|s| s.priority = Some(255))).unwrap();
    let not_owned = InterfaceFacts {
        addresses: vec![ip("10.0.0.2")],
        primary: Some(ip("10.0.0.2")),
    };
    match check_against_interface(&v, &not_owned) {
        Err(SpecError::Invalid(vs)) => assert_eq!(vs[0].field, "spec.priority"),
        other => panic!("{other:?}"),
    }
    let owned = InterfaceFacts {
        addresses: vec![ip("10.0.0.2"), ip("10.0.0.100")],
        primary: Some(ip("10.0.0.2")),
    };
    assert_eq!(check_against_interface(&v, &owned), Ok(ip("10.0.0.2")));
}

#[test]
fn v2_interval_is_whole_seconds() {
    let v2 = |ms| {
        with(|s| {
            s.version = Some(2);
            s.advert_interval = Some(dur(ms));
        })
    };
    assert_eq!(blamed(v2(100)), ["spec.advert_interval"]);
    assert_eq!(blamed(v2(1500)), ["spec.advert_interval"]);
    assert_eq!(blamed(v2(256_000)), ["spec.advert_interval"]);
    assert!(blamed(v2(3000)).is_empty());
}

#[test]
fn v3_interval_is_10ms_to_40_95s_in_10ms_steps() {
    let v3 = |ms| with(|s| s.advert_interval = Some(dur(ms)));
    assert!(blamed(v3(10)).is_empty());
    assert!(blamed(v3(40_950)).is_empty());
    assert_eq!(blamed(v3(5)), ["spec.advert_interval"]);
    assert_eq!(blamed(v3(15)), ["spec.advert_interval"]);
    assert_eq!(blamed(v3(41_000)), ["spec.advert_interval"]);
    assert_eq!(blamed(v3(0)), ["spec.advert_interval"]);
    assert_eq!(blamed(v3(-1000)), ["spec.advert_interval"]);
}

#[test]
fn version_must_be_2_or_3() {
    assert_eq!(blamed(with(|s| s.version = Some(4))), ["spec.version"]);
    assert_eq!(blamed(with(|s| s.version = Some(1))), ["spec.version"]);
}

#[test]
fn ipv6_needs_v3() {
    let spec = with(|s| {
        s.version = Some(2);
        s.virtual_addresses = vec!["2001:db8::100/64".into()];
    });
    assert_eq!(blamed(spec), ["spec.version"]);
}

#[test]
fn one_address_family_per_instance() {
    let spec =
        with(|s| s.virtual_addresses = vec!["10.0.0.100/24".into(), "2001:db8::1/64".into()]);
    assert_eq!(blamed(spec), ["spec.virtual_addresses[1]"]);
}

#[test]
fn virtual_addresses_parse_are_unique_and_usable() {
    assert_eq!(
        blamed(with(|s| s.virtual_addresses = vec![])),
        ["spec.virtual_addresses"]
    );
    assert_eq!(
        blamed(with(|s| s.virtual_addresses = vec!["10.0.0.300/24".into()])),
        ["spec.virtual_addresses[0]"]
    );
    assert_eq!(
        blamed(with(|s| s.virtual_addresses = vec!["10.0.0.1/33".into()])),
        ["spec.virtual_addresses[0]"]
    );
    assert_eq!(
        blamed(with(
            |s| s.virtual_addresses = vec!["10.0.0.1/24".into(), "10.0.0.1/32".into()]
        )),
        ["spec.virtual_addresses[1]"]
    );
    for bad in ["224.0.0.18", "127.0.0.1", "0.0.0.0", "255.255.255.255"] {
        assert_eq!(
            blamed(with(|s| s.virtual_addresses = vec![bad.into()])),
            ["spec.virtual_addresses[0]"],
            "{bad}"
        );
    }
    let bare = validate_spec(with(|s| s.virtual_addresses = vec!["10.0.0.7".into()])).unwrap();
    assert_eq!(
        bare.vips[0].prefix_len, 32,
        "a bare address is a host address"
    );
}

#[test]
fn pass_authentication_only_for_v2() {
    let pass = Some(Authentication {
        r#type: AuthType::Pass as i32,
        password: "1111".into(),
        password_set: false,
    });
    assert_eq!(blamed(with(|s| s.auth = pass.clone())), ["spec.auth.type"]);
    assert!(
        blamed(with(|s| {
            s.auth = pass.clone();
            s.version = Some(2);
        }))
        .is_empty()
    );
    let long = Some(Authentication {
        r#type: AuthType::Pass as i32,
        password: "123456789".into(),
        password_set: false,
    });
    assert_eq!(
        blamed(with(|s| {
            s.auth = long;
            s.version = Some(2);
        })),
        ["spec.auth.password"]
    );
}

#[test]
fn unicast_source_is_of_the_family_not_a_vip_and_on_the_interface() {
    assert_eq!(
        blamed(with(|s| s.unicast_source = "bogus".into())),
        ["spec.unicast_source"]
    );
    assert_eq!(
        blamed(with(|s| s.unicast_source = "fe80::1".into())),
        ["spec.unicast_source"]
    );
    assert_eq!(
        blamed(with(|s| s.unicast_source = "10.0.0.100".into())),
        ["spec.unicast_source"]
    );
    let v = validate_spec(with(|s| s.unicast_source = "10.0.0.9".into())).unwrap();
    let facts = InterfaceFacts {
        addresses: vec![ip("10.0.0.2")],
        primary: Some(ip("10.0.0.2")),
    };
    match check_against_interface(&v, &facts) {
        Err(SpecError::Invalid(vs)) => assert_eq!(vs[0].field, "spec.unicast_source"),
        other => panic!("{other:?}"),
    }
    let facts = InterfaceFacts {
        addresses: vec![ip("10.0.0.2"), ip("10.0.0.9")],
        primary: Some(ip("10.0.0.2")),
    };
    assert_eq!(check_against_interface(&v, &facts), Ok(ip("10.0.0.9")));
}

#[test]
fn no_source_and_no_address_is_a_precondition_failure() {
    let v = validate_spec(good()).unwrap();
    assert!(matches!(
        check_against_interface(&v, &InterfaceFacts::default()),
        Err(SpecError::Precondition(_))
    ));
}

#[test]
fn peers_are_unique_and_of_the_family() {
    let peers = |p: &[&str]| with(|s| s.unicast_peers = p.iter().map(|x| x.to_string()).collect());
    assert!(blamed(peers(&["10.0.0.1", "10.0.0.3"])).is_empty());
    assert_eq!(
        blamed(peers(&["10.0.0.1", "10.0.0.1"])),
        ["spec.unicast_peers[1]"]
    );
    assert_eq!(blamed(peers(&["2001:db8::1"])), ["spec.unicast_peers[0]"]);
    assert_eq!(blamed(peers(&["nope"])), ["spec.unicast_peers[0]"]);
    assert_eq!(blamed(peers(&["224.0.0.18"])), ["spec.unicast_peers[0]"]);
}

#[test]
fn interface_name_syntax() {
    for bad in ["", "a/b", "has space", "0123456789abcdef"] {
        assert_eq!(
            blamed(with(|s| s.interface = bad.into())),
            ["spec.interface"],
            "{bad}"
        );
    }
}

#[test]
fn garp_and_preempt_delay_ranges() {
    assert_eq!(
        blamed(with(|s| s.garp.as_mut().unwrap().repeat = Some(0))),
        ["spec.garp.repeat"]
    );
    assert_eq!(
        blamed(with(
            |s| s.garp.as_mut().unwrap().refresh = Some(dur(7_200_000))
        )),
        ["spec.garp.refresh"]
    );
    assert_eq!(
        blamed(with(|s| s.preempt_delay = Some(dur(1_001_000)))),
        ["spec.preempt_delay"]
    );
}

#[test]
fn labels_have_a_syntax() {
    assert_eq!(
        blamed(with(|s| {
            s.labels.insert("bad key".into(), "x".into());
        })),
        ["spec.labels[bad key]"]
    );
    assert!(
        blamed(with(|s| {
            s.labels
                .insert("app.kubernetes.io/name".into(), "mysql".into());
        }))
        .is_empty()
    );
}

/// The rules the tests above leave out, one row each: the spec and the one field blamed.
#[test]
fn the_remaining_rules_each_blame_their_field() {
    let neg = pbjson_types::Duration {
        seconds: -1,
        nanos: 0,
    };
    let bad_nanos = pbjson_types::Duration {
        seconds: 1,
        nanos: 1_000_000_000,
    };
    let auth = |t: i32, p: &str| {
        Some(Authentication {
            r#type: t,
            password: p.into(),
            password_set: false,
        })
    };
    let rows: Vec<(&str, &str, InstanceSpec)> = vec![
        (
            "256 addresses",
            "spec.virtual_addresses",
            with(|s| {
                s.virtual_addresses = (0..256u32)
                    .map(|i| format!("10.9.{}.{}", i / 250, i % 250 + 1))
                    .collect();
            }),
        ),
        (
            "v6 loopback",
            "spec.virtual_addresses[0]",
            with(|s| s.virtual_addresses = vec!["::1".into()]),
        ),
        (
            "v6 multicast",
            "spec.virtual_addresses[0]",
            with(|s| s.virtual_addresses = vec!["ff02::12".into()]),
        ),
        (
            "v6 unspecified",
            "spec.virtual_addresses[0]",
            with(|s| s.virtual_addresses = vec!["::".into()]),
        ),
        (
            "negative interval",
            "spec.advert_interval",
            with(|s| s.advert_interval = Some(neg)),
        ),
        (
            "nanos out of range",
            "spec.advert_interval",
            with(|s| s.advert_interval = Some(bad_nanos)),
        ),
        (
            "negative preempt delay",
            "spec.preempt_delay",
            with(|s| s.preempt_delay = Some(neg)),
        ),
        (
            "65 peers",
            "spec.unicast_peers",
            with(|s| s.unicast_peers = (1..=65).map(|i| format!("10.0.1.{i}")).collect()),
        ),
        (
            "peer is the source",
            "spec.unicast_peers[0]",
            with(|s| {
                s.unicast_source = "10.0.0.1".into();
                s.unicast_peers = vec!["10.0.0.1".into()];
            }),
        ),
        (
            "password without PASS",
            "spec.auth.password",
            with(|s| s.auth = auth(AuthType::None as i32, "p")),
        ),
        (
            "unknown auth type",
            "spec.auth.type",
            with(|s| s.auth = auth(9, "")),
        ),
        (
            "garp repeat 256",
            "spec.garp.repeat",
            with(|s| s.garp.as_mut().unwrap().repeat = Some(256)),
        ),
        (
            "garp refresh repeat 0",
            "spec.garp.refresh_repeat",
            with(|s| s.garp.as_mut().unwrap().refresh_repeat = Some(0)),
        ),
        (
            "garp delay over an hour",
            "spec.garp.delay",
            with(|s| s.garp.as_mut().unwrap().delay = Some(dur(3_601_000))),
        ),
        (
            "checksum mode",
            "spec.v3_ipv4_checksum",
            with(|s| s.v3_ipv4_checksum = 7),
        ),
        (
            "65 labels",
            "spec.labels",
            with(|s| s.labels = (0..65).map(|i| (format!("k{i}"), "v".into())).collect()),
        ),
        (
            "long label value",
            "spec.labels[k]",
            with(|s| {
                s.labels.insert("k".into(), "v".repeat(256));
            }),
        ),
        (
            "long description",
            "spec.description",
            with(|s| s.description = "d".repeat(1025)),
        ),
    ];
    for (what, field, spec) in rows {
        assert_eq!(blamed(spec), [field], "{what}");
    }
}

#[test]
fn comments_are_at_most_1024_bytes() {
    assert_eq!(validate_comment("comment", &"c".repeat(1024)), Ok(()));
    let v = validate_comment("reason", &"c".repeat(1025)).unwrap_err();
    assert_eq!(v.field, "reason");
    assert!(v.description.contains("at most 1024"), "{}", v.description);
}

#[test]
fn every_violation_is_reported_at_once() {
    let spec = with(|s| {
        s.vrid = 0;
        s.priority = Some(0);
        s.interface = String::new();
    });
    let mut fields = blamed(spec);
    fields.sort();
    assert_eq!(fields, ["spec.interface", "spec.priority", "spec.vrid"]);
}

#[test]
fn masks_change_only_the_named_fields() {
    let current = good();
    let patch = InstanceSpec {
        priority: Some(150),
        vrid: 99,
        ..Default::default()
    };
    let next = apply_mask(&current, patch, &["priority".into()]).unwrap();
    assert_eq!(next.priority, Some(150));
    assert_eq!(next.vrid, 51);
    assert_eq!(changed_fields(&current, &next), ["priority"]);
}

#[test]
fn masks_accept_camel_case_and_a_spec_prefix_and_refuse_unknown_paths() {
    let current = good();
    let patch = InstanceSpec {
        virtual_addresses: vec!["10.0.0.200/24".into()],
        ..Default::default()
    };
    let next = apply_mask(&current, patch.clone(), &["spec.virtualAddresses".into()]).unwrap();
    assert_eq!(next.virtual_addresses, ["10.0.0.200/24"]);
    let err = apply_mask(&current, patch, &["colour".into()]).unwrap_err();
    assert_eq!(err.field, "update_mask");
}

#[test]
fn nested_mask_paths() {
    let current = good();
    let mut patch = InstanceSpec::default();
    patch.garp.get_or_insert_with(Default::default).refresh = Some(dur(5000));
    let next = apply_mask(&current, patch, &["garp.refresh".into()]).unwrap();
    assert_eq!(next.garp.as_ref().and_then(|g| g.refresh), Some(dur(5000)));
    assert_eq!(
        next.garp.as_ref().and_then(|g| g.repeat),
        Some(5),
        "siblings are kept"
    );
}

#[test]
fn a_redacted_password_read_back_is_kept() {
    let current = with(|s| {
        s.version = Some(2);
        s.auth = Some(Authentication {
            r#type: AuthType::Pass as i32,
            password: "1111".into(),
            password_set: false,
        });
    });
    let read_back = redact(current.clone());
    let next = normalize(apply_mask(&current, read_back, &[]).unwrap());
    assert_eq!(
        next.auth.as_ref().map(|a| a.password.as_str()),
        Some("1111")
    );
    assert!(changed_fields(&current, &next).is_empty());
}

#[test]
fn empty_mask_replaces_everything() {
    let current = good();
    let replacement = with(|s| s.priority = Some(10));
    let next = apply_mask(&current, replacement.clone(), &[]).unwrap();
    assert_eq!(next, replacement);
}

// ----- trackers and the priority override --------------------------------------------------

mod trackers {
    use super::*;
    use havip_proto::v1::{
        FileCheck, HealthReportCheck, InterfaceCheck, PriorityOverride, ScriptCheck, Tracker,
        tracker::Check as C,
    };
    use std::os::unix::fs::PermissionsExt;

    fn script(path: &str) -> ScriptCheck {
        ScriptCheck {
            path: path.into(),
            ..Default::default()
        }
    }

    fn tracker(name: &str, weight: i32, check: C) -> Tracker {
        Tracker {
            name: name.into(),
            weight,
            check: Some(check),
        }
    }

    fn iface(name: &str) -> C {
        C::Interface(InterfaceCheck {
            interface: name.into(),
        })
    }

    /// A spec with these trackers, normalized as the manager does.
    fn with_trackers(trackers: Vec<Tracker>) -> InstanceSpec {
        normalize(with(|s| s.trackers = trackers))
    }

    fn with_script(f: impl FnOnce(&mut ScriptCheck)) -> InstanceSpec {
        let mut s = script("/usr/local/bin/check");
        f(&mut s);
        with_trackers(vec![tracker("s", 0, C::Script(s))])
    }

    #[test]
    fn every_kind_validates_into_runtime_terms() {
        let v = validate_spec(with_trackers(vec![
            tracker("eth1", -20, iface("eth1")),
            tracker(
                "haproxy",
                0,
                C::Script(script("/usr/local/bin/check_haproxy")),
            ),
            tracker(
                "prio",
                5,
                C::File(FileCheck {
                    path: "/run/havip/prio".into(),
                }),
            ),
            tracker(
                "app",
                30,
                C::Report(HealthReportCheck {
                    check: "replication".into(),
                }),
            ),
        ]))
        .unwrap();
        assert_eq!(v.trackers.len(), 4);
        assert_eq!(&*v.trackers[0].name, "eth1");
        assert_eq!(v.trackers[0].weight, -20);
        let Check::Script(s) = &v.trackers[1].check else {
            panic!("{:?}", v.trackers[1]);
        };
        // Defaults: every second, a run may take the whole interval, rise and fall 1.
        assert_eq!(s.interval, std::time::Duration::from_secs(1));
        assert_eq!(s.timeout, s.interval);
        assert_eq!((s.rise, s.fall, s.user.as_deref()), (1, 1, None));
    }

    #[test]
    fn normalize_fills_the_script_defaults_into_the_stored_spec() {
        let spec = with_script(|s| s.interval = Some(dur(250)));
        let Some(C::Script(s)) = spec.trackers[0].check.clone() else {
            panic!()
        };
        assert_eq!(s.interval, Some(dur(250)));
        assert_eq!(
            s.timeout,
            Some(dur(250)),
            "the timeout defaults to the interval"
        );
        assert_eq!((s.rise, s.fall), (Some(1), Some(1)));
        assert_eq!(normalize(spec.clone()), spec);
    }

    #[test]
    fn names_have_a_syntax_and_are_unique() {
        assert_eq!(
            blamed(with_trackers(vec![tracker("", 0, iface("eth1"))])),
            ["spec.trackers[0].name"]
        );
        assert_eq!(
            blamed(with_trackers(vec![tracker("has space", 0, iface("eth1"))])),
            ["spec.trackers[0].name"]
        );
        assert_eq!(
            blamed(with_trackers(vec![
                tracker("a", 0, iface("eth1")),
                tracker("a", 0, iface("eth2")),
            ])),
            ["spec.trackers[1].name"]
        );
    }

    #[test]
    fn weights_are_minus_254_to_254() {
        for ok in [-254, -1, 0, 1, 254] {
            assert!(
                blamed(with_trackers(vec![tracker("a", ok, iface("eth1"))])).is_empty(),
                "{ok}"
            );
        }
        for bad in [-255, 255, i32::MAX] {
            assert_eq!(
                blamed(with_trackers(vec![tracker("a", bad, iface("eth1"))])),
                ["spec.trackers[0].weight"],
                "{bad}"
            );
        }
    }

    #[test]
    fn a_tracker_needs_a_check() {
        let t = Tracker {
            name: "a".into(),
            weight: 0,
            check: None,
        };
        assert_eq!(blamed(with_trackers(vec![t])), ["spec.trackers[0]"]);
    }

    #[test]
    fn interface_names_have_a_syntax() {
        assert_eq!(
            blamed(with_trackers(vec![tracker("a", 0, iface("eth/1"))])),
            ["spec.trackers[0].interface.interface"]
        );
        assert_eq!(
            blamed(with_trackers(vec![tracker("a", 0, iface(""))])),
            ["spec.trackers[0].interface.interface"]
        );
    }

    #[test]
    fn script_paths_are_absolute() {
        assert_eq!(
            blamed(with_script(|s| s.path = "check.sh".into())),
            ["spec.trackers[0].script.path"]
        );
        assert_eq!(
            blamed(with_script(|s| s.path = String::new())),
            ["spec.trackers[0].script.path"]
        );
    }

    #[test]
    fn script_interval_is_10ms_to_1h_and_the_timeout_at_most_the_interval() {
        assert!(blamed(with_script(|s| s.interval = Some(dur(10)))).is_empty());
        assert!(blamed(with_script(|s| s.interval = Some(dur(3_600_000)))).is_empty());
        assert_eq!(
            blamed(with_script(|s| s.interval = Some(dur(5)))),
            ["spec.trackers[0].script.interval"]
        );
        assert_eq!(
            blamed(with_script(|s| s.interval = Some(dur(3_600_001)))),
            ["spec.trackers[0].script.interval"]
        );
        assert_eq!(
            blamed(with_script(|s| {
                s.interval = Some(dur(1000));
                s.timeout = Some(dur(1500));
            })),
            ["spec.trackers[0].script.timeout"]
        );
        assert_eq!(
            blamed(with_script(|s| s.timeout = Some(dur(0)))),
            ["spec.trackers[0].script.timeout"]
        );
        assert!(
            blamed(with_script(|s| {
                s.interval = Some(dur(2000));
                s.timeout = Some(dur(500));
            }))
            .is_empty()
        );
    }

    #[test]
    fn rise_and_fall_are_1_to_100() {
        assert_eq!(
            blamed(with_script(|s| s.rise = Some(0))),
            ["spec.trackers[0].script.rise"]
        );
        assert_eq!(
            blamed(with_script(|s| s.fall = Some(101))),
            ["spec.trackers[0].script.fall"]
        );
        assert!(
            blamed(with_script(|s| {
                s.rise = Some(100);
                s.fall = Some(3);
            }))
            .is_empty()
        );
    }

    #[test]
    fn script_user_and_arguments_have_a_syntax() {
        assert_eq!(
            blamed(with_script(|s| s.user = "bad user".into())),
            ["spec.trackers[0].script.user"]
        );
        assert_eq!(
            blamed(with_script(|s| s.args = vec!["ok".into(), "nul\0".into()])),
            ["spec.trackers[0].script.args[1]"]
        );
    }

    #[test]
    fn file_paths_are_absolute_and_report_checks_have_a_syntax() {
        let file =
            |p: &str| with_trackers(vec![tracker("f", 1, C::File(FileCheck { path: p.into() }))]);
        assert_eq!(blamed(file("prio")), ["spec.trackers[0].file.path"]);
        assert!(blamed(file("/run/prio")).is_empty());
        let report = |c: &str| {
            with_trackers(vec![tracker(
                "r",
                0,
                C::Report(HealthReportCheck { check: c.into() }),
            )])
        };
        assert_eq!(blamed(report("")), ["spec.trackers[0].report.check"]);
        assert_eq!(blamed(report("a b")), ["spec.trackers[0].report.check"]);
        assert!(blamed(report("db-lag")).is_empty());
    }

    #[test]
    fn at_most_64_trackers() {
        let many = (0..65)
            .map(|i| tracker(&format!("t{i}"), 0, iface("eth1")))
            .collect();
        assert_eq!(blamed(with_trackers(many)), ["spec.trackers"]);
    }

    #[test]
    fn override_priority_is_1_to_254_and_not_for_the_owner() {
        let o = |p: u32| {
            with(|s| {
                s.priority_override = Some(PriorityOverride {
                    priority: p,
                    expires: None,
                    reason: "maintenance".into(),
                })
            })
        };
        assert!(blamed(o(1)).is_empty());
        assert!(blamed(o(254)).is_empty());
        assert_eq!(blamed(o(0)), ["spec.priority_override.priority"]);
        assert_eq!(blamed(o(255)), ["spec.priority_override.priority"]);
        let mut owner = o(10);
        owner.priority = Some(255);
        assert_eq!(blamed(owner), ["spec.priority_override"]);
        let v = validate_spec(o(20)).unwrap();
        assert_eq!(v.priority_override.map(|o| o.priority), Some(20));
        let mut bad_time = o(20);
        if let Some(o) = bad_time.priority_override.as_mut() {
            o.expires = Some(pbjson_types::Timestamp {
                seconds: -5,
                nanos: 0,
            });
        }
        assert_eq!(blamed(bad_time), ["spec.priority_override.expires"]);
    }

    #[test]
    fn a_whole_spec_replacement_keeps_the_override_unless_it_names_one() {
        let demoted = with(|s| {
            s.priority_override = Some(PriorityOverride {
                priority: 1,
                expires: None,
                reason: "maintenance".into(),
            })
        });
        // apply -f of a file without the override: still demoted.
        let next = apply_mask(&demoted, with(|s| s.priority = Some(120)), &[]).unwrap();
        assert_eq!(next.priority_override, demoted.priority_override);
        assert_eq!(changed_fields(&demoted, &next), ["priority"]);
        // A spec that carries one replaces it; a mask naming the field clears it.
        let promoted = with(|s| {
            s.priority_override = Some(PriorityOverride {
                priority: 254,
                ..Default::default()
            })
        });
        let next = apply_mask(&demoted, promoted.clone(), &[]).unwrap();
        assert_eq!(next.priority_override, promoted.priority_override);
        let next = apply_mask(&demoted, good(), &["priority_override".into()]).unwrap();
        assert_eq!(next.priority_override, None);
    }

    #[test]
    fn trackers_and_the_override_are_maskable_and_diffed() {
        let current = good();
        let patch = with_trackers(vec![tracker("a", -10, iface("eth1"))]);
        let next = apply_mask(&current, patch, &["trackers".into()]).unwrap();
        assert_eq!(next.trackers.len(), 1);
        assert_eq!(changed_fields(&current, &next), ["trackers"]);
        let patch = with(|s| {
            s.priority_override = Some(PriorityOverride {
                priority: 1,
                ..Default::default()
            })
        });
        let next = apply_mask(&current, patch, &["spec.priorityOverride".into()]).unwrap();
        assert_eq!(changed_fields(&current, &next), ["priority_override"]);
    }

    // ----- host rules: script security (keepalived's enable_script_security), users -----

    fn root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    /// A script `check` in a fresh directory of mode `dir_mode`, and the spec tracking it.
    fn script_spec(dir_mode: u32, user: &str) -> (tempfile::TempDir, InstanceSpec) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("check");
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(dir_mode)).unwrap();
        let spec = with_trackers(vec![
            tracker("eth1", 0, iface("eth1")),
            tracker(
                "s",
                0,
                C::Script(ScriptCheck {
                    path: p.display().to_string(),
                    user: user.into(),
                    ..Default::default()
                }),
            ),
        ]);
        (d, spec)
    }

    fn host_blamed(spec: InstanceSpec) -> Vec<String> {
        let v = validate_spec(spec).unwrap();
        match check_trackers_on_host(&v, |_| false) {
            Ok(()) => vec![],
            Err(SpecError::Invalid(v)) => v.into_iter().map(|v| v.field).collect(),
            Err(SpecError::Precondition(p)) => vec![p],
        }
    }

    #[test]
    fn a_script_in_a_group_writable_directory_is_refused() {
        let (_d, spec) = script_spec(0o775, "");
        assert_eq!(host_blamed(spec), ["spec.trackers[1].script.path"]);
    }

    #[test]
    fn a_script_in_a_root_owned_0755_directory_is_accepted() {
        if !root() {
            return;
        }
        let (_d, spec) = script_spec(0o755, "");
        assert!(host_blamed(spec).is_empty());
    }

    #[test]
    fn the_user_must_exist() {
        if !root() {
            return;
        }
        let (_d, spec) = script_spec(0o755, "no-such-user-here");
        assert_eq!(host_blamed(spec), ["spec.trackers[1].script.user"]);
        let (_d, spec) = script_spec(0o755, "nobody");
        assert!(host_blamed(spec).is_empty());
    }

    #[test]
    fn trackers_accepted_before_are_not_checked_again() {
        let (_d, spec) = script_spec(0o777, "");
        let v = validate_spec(spec).unwrap();
        let accepted = v.trackers.clone();
        assert!(check_trackers_on_host(&v, |t| accepted.contains(t)).is_ok());
        assert!(check_trackers_on_host(&v, |_| false).is_err());
    }
}
