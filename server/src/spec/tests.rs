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
