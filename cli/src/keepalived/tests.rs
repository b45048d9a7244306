//! The importer as a whole: every keyword it maps or reports, includes, line numbers,
//! quoting, errors, the committed examples, and that no input makes it panic.

use std::path::Path;

use havip_proto::v1::tracker::Check;
use havip_proto::v1::{AuthType, InstanceSpec};
use pbjson_types::Duration;
use proptest::prelude::*;

use super::*;

const MAIN: &str = "/etc/keepalived/keepalived.conf";

fn import_with(loader: &MemLoader, text: &str) -> Result<Import, ParseError> {
    parse(Path::new(MAIN), text, loader, &Options::default())
}

fn import(text: &str) -> Import {
    import_with(&MemLoader::new(), text).unwrap()
}

fn only_spec(text: &str) -> InstanceSpec {
    let import = import(text);
    assert_eq!(import.instances.len(), 1, "{import:#?}");
    import.instances[0].spec.clone()
}

/// "LINE KEYWORD KIND" of every finding, for compact assertions.
fn findings(import: &Import) -> Vec<String> {
    import
        .findings
        .iter()
        .map(|f| format!("{} {} {}", f.location.line, f.keyword, f.kind.label()))
        .collect()
}

fn secs(seconds: i64, nanos: i32) -> Option<Duration> {
    Some(Duration { seconds, nanos })
}

const MINIMAL: &str = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.100/24\n }\n}\n";

#[test]
fn the_examples_import_to_the_committed_yaml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    for dir in ["standing", "dual-backup"] {
        for node in ["a", "b"] {
            let conf = root.join(dir).join(format!("keepalived-{node}.conf"));
            let text = std::fs::read_to_string(&conf).unwrap();
            let import = parse(
                Path::new(&format!("/etc/keepalived/keepalived-{node}.conf")),
                &text,
                &MemLoader::new(),
                &Options::default(),
            )
            .unwrap();
            let yaml = to_yaml(&import, &format!("keepalived-{node}.conf")).unwrap();
            let committed =
                std::fs::read_to_string(root.join(dir).join(format!("havip-{node}.yaml"))).unwrap();
            assert_eq!(
                yaml, committed,
                "deploy/examples/{dir}/havip-{node}.yaml is stale: regenerate it with \
                 havipctl import-keepalived deploy/examples/{dir}/keepalived-{node}.conf"
            );
            // And it is a file apply -f takes.
            let document = crate::commands::apply::parse("x.yaml", &yaml).unwrap();
            assert_eq!(document.instances[0].spec, import.instances[0].spec);
        }
    }
}

#[test]
fn the_guide_s_instance_maps_field_by_field() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let text = std::fs::read_to_string(root.join("dual-backup/keepalived-a.conf")).unwrap();
    let import = import(&text);
    let i = &import.instances[0];
    assert_eq!(
        (i.name.as_str(), i.keepalived_name.as_str()),
        ("VI_1", "VI_1")
    );
    let s = &i.spec;
    assert_eq!(s.interface, "eth0");
    assert_eq!((s.vrid, s.version, s.priority), (51, Some(2), Some(50)));
    assert_eq!(s.preempt, Some(false));
    assert_eq!(s.advert_interval, secs(1, 0));
    assert_eq!(s.virtual_addresses, ["10.0.0.100/24"]);
    assert_eq!(s.unicast_source, "10.0.0.11");
    assert_eq!(s.unicast_peers, ["10.0.0.12"]);
    let auth = s.auth.clone().unwrap();
    assert_eq!(
        (auth.r#type, auth.password.as_str()),
        (AuthType::Pass as i32, "1111")
    );
    let garp = s.garp.unwrap();
    assert_eq!((garp.delay, garp.refresh), (secs(1, 0), secs(5, 0)));
    assert_eq!(s.trackers.len(), 2);
    assert_eq!(s.trackers[0].name, "eth0");
    let Some(Check::Script(script)) = &s.trackers[1].check else {
        panic!("{:?}", s.trackers[1])
    };
    assert_eq!(s.trackers[1].weight, 0, "a failing check is FAULT");
    assert_eq!(script.path, "/etc/keepalived/check_haproxy.sh");
    assert_eq!(
        (script.interval, script.fall, script.rise),
        (secs(5, 0), Some(2), Some(1))
    );
    assert_eq!(script.user, "root", "from script_user");
    let report = findings(&import);
    for expected in [
        "4 notification_email not carried over",
        "10 router_id not carried over",
        "11 vrrp_garp_interval not carried over",
        "13 enable_script_security not carried over",
        "27 state not carried over",
        "44 notify_master not carried over",
        "47 notify_stop not carried over",
    ] {
        assert!(
            report.contains(&expected.to_owned()),
            "{expected}: {report:#?}"
        );
    }
    let notify = import
        .findings
        .iter()
        .find(|f| f.keyword == "notify_master")
        .unwrap();
    assert!(
        notify.message.contains(
            "havipctl watch --instance VI_1 --cursor-file /var/lib/havip-notify/cursor --shell \
             --exec 'case \"$3\" in MASTER) /etc/keepalived/notify.sh MASTER ;;"
        ),
        "{notify}"
    );
    assert!(
        notify
            .to_string()
            .starts_with("keepalived.conf:44: notify_master: not carried over: ")
    );
}

#[test]
fn defaults_are_keepalived_s_written_out() {
    let s = only_spec(MINIMAL);
    assert_eq!(s.version, Some(2), "keepalived's default, not havip's 3");
    assert_eq!(
        (s.priority, s.preempt, s.accept_mode),
        (Some(100), Some(true), Some(true))
    );
    assert_eq!(s.advert_interval, secs(1, 0));
    let garp = s.garp.unwrap();
    assert_eq!(
        (garp.repeat, garp.delay, garp.refresh, garp.refresh_repeat),
        (Some(5), secs(5, 0), secs(0, 0), Some(1))
    );
    assert_eq!(s.description, "keepalived vrrp_instance VI_1");
    // A VIP without a prefix is a host address, as keepalived installs it.
    let s = only_spec(&MINIMAL.replace("10.0.0.100/24", "10.0.0.100"));
    assert_eq!(s.virtual_addresses, ["10.0.0.100/32"]);
}

#[test]
fn global_defaults_reach_the_instances() {
    let text = format!(
        "global_defs {{\n vrrp_version 3\n vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 3\n \
         vrrp_garp_master_refresh 60\n vrrp_garp_master_refresh_repeat 2\n vrrp_strict\n \
         script_user nobody nogroup\n}}\n\
         vrrp_script chk {{\n script \"/bin/true\"\n}}\n{}",
        MINIMAL.replace(
            "}\n}\n",
            "}\n track_script {\n  chk\n }\n garp_master_repeat 4\n}\n"
        )
    );
    let import = import(&text);
    let s = &import.instances[0].spec;
    assert_eq!(s.version, Some(3));
    let garp = s.garp.unwrap();
    assert_eq!(
        (garp.repeat, garp.delay, garp.refresh, garp.refresh_repeat),
        (Some(4), secs(2, 0), secs(60, 0), Some(2))
    );
    assert_eq!(s.accept_mode, Some(false), "vrrp_strict");
    let Some(Check::Script(script)) = &s.trackers[0].check else {
        panic!()
    };
    assert_eq!(script.user, "nobody");
    assert_eq!(
        findings(&import),
        ["7 vrrp_strict changed", "8 script_user not carried over"]
    );
    let min = import_with(
        &MemLoader::new(),
        &format!("global_defs {{\n vrrp_min_garp true\n}}\n{MINIMAL}"),
    )
    .unwrap();
    let garp = min.instances[0].spec.garp.unwrap();
    assert_eq!((garp.repeat, garp.delay), (Some(1), secs(0, 0)));
}

#[test]
fn every_instance_keyword() {
    let text = r#"
vrrp_script chk_a {
    script "/usr/local/bin/check a 'b c'"
    interval 2
    timeout 1
    weight 10
    rise 3
    fall 4
    user haproxy
    init_fail
}
track_file drain {
    file "/run/drain"
    weight -5
    init_file 0
}
vrrp_instance web {
    state MASTER
    interface eth1
    virtual_router_id 7
    priority 150
    advert_int 0.5
    version 3
    preempt_delay 30
    no_accept
    mcast_src_ip 192.0.2.1
    virtual_ipaddress {
        192.0.2.100/24 dev eth1 label eth1:vip
        192.0.2.101/24 dev eth9
        192.0.2.102 brd 192.0.2.255 scope global
    }
    virtual_ipaddress_excluded {
        192.0.2.200/24
        2001:db8::1/64
    }
    track_interface {
        eth1
        eth2 weight -30
    }
    track_script {
        chk_a weight -40
        chk_missing
    }
    track_file {
        drain
    }
    garp_master_delay 0
    garp_master_repeat 2
    garp_master_refresh 30
    garp_master_refresh_repeat 3
    use_vmac vrrp.7
    smtp_alert
    dont_track_primary
    virtual_routes {
        0.0.0.0/0 via 192.0.2.1
    }
    authentication {
        auth_type PASS
        auth_pass secret
    }
    notify "/etc/keepalived/any.sh"
    debug
}
"#;
    let mut loader = MemLoader::new();
    loader
        .programs
        .insert("pidof".into(), "/usr/bin/pidof".into());
    let import = import_with(&loader, text).unwrap();
    let s = &import.instances[0].spec;
    assert_eq!(s.interface, "eth1");
    assert_eq!((s.vrid, s.version, s.priority), (7, Some(3), Some(150)));
    assert_eq!(s.advert_interval, secs(0, 500_000_000));
    assert_eq!(s.preempt_delay, secs(30, 0));
    assert_eq!(s.accept_mode, Some(false));
    assert_eq!(s.unicast_source, "192.0.2.1");
    assert!(s.unicast_peers.is_empty(), "multicast");
    assert_eq!(
        s.virtual_addresses,
        ["192.0.2.100/24", "192.0.2.102/32", "192.0.2.200/24"]
    );
    assert!(s.vmac);
    assert_eq!(s.auth, None, "v3 has no authentication");
    let garp = s.garp.unwrap();
    assert_eq!(
        (garp.repeat, garp.delay, garp.refresh, garp.refresh_repeat),
        (Some(2), secs(0, 0), secs(30, 0), Some(3))
    );
    let trackers: Vec<(&str, i32)> = s
        .trackers
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(
        trackers,
        [("eth1", 0), ("eth2", -30), ("chk_a", -40), ("drain", -5)]
    );
    let Some(Check::Script(script)) = &s.trackers[2].check else {
        panic!()
    };
    assert_eq!(script.path, "/usr/local/bin/check");
    assert_eq!(script.args, ["a", "b c"]);
    assert_eq!((script.interval, script.timeout), (secs(2, 0), secs(1, 0)));
    assert_eq!(
        (script.rise, script.fall, script.user.as_str()),
        (Some(3), Some(4), "haproxy")
    );
    let Some(Check::File(file)) = &s.trackers[3].check else {
        panic!()
    };
    assert_eq!(file.path, "/run/drain");
    assert_eq!(
        findings(&import),
        [
            "10 init_fail not carried over",
            "15 init_file not carried over",
            "18 state not carried over",
            "26 mcast_src_ip note",
            "28 label not carried over",
            "29 192.0.2.101/24 not carried over",
            "30 brd not carried over",
            "30 scope not carried over",
            "33 virtual_ipaddress_excluded changed",
            "34 virtual_ipaddress_excluded not carried over",
            "42 chk_missing not carried over",
            "51 use_vmac not carried over",
            "52 smtp_alert not carried over",
            "53 dont_track_primary not carried over",
            "54 virtual_routes not carried over",
            "57 authentication not carried over",
            "61 notify not carried over",
            "62 debug not carried over",
        ]
    );
    let notify = import
        .findings
        .iter()
        .find(|f| f.keyword == "notify")
        .unwrap();
    assert!(notify.message.ends_with(
        "havipctl watch --instance web --cursor-file /var/lib/havip-notify/cursor --exec /etc/keepalived/any.sh"
    ), "{notify}");
}

#[test]
fn v2_intervals_round_to_seconds_and_long_passwords_are_cut() {
    let text = MINIMAL.replace(
        "virtual_router_id 51",
        "virtual_router_id 51\n advert_int 1.6\n authentication {\n  auth_type PASS\n  auth_pass 123456789\n }",
    );
    let import = import(&text);
    let s = &import.instances[0].spec;
    assert_eq!(s.advert_interval, secs(2, 0));
    assert_eq!(s.auth.clone().unwrap().password, "12345678");
    assert_eq!(
        findings(&import),
        ["4 advert_int changed", "5 auth_pass changed"]
    );
    let f = &import.findings[0];
    assert_eq!(
        f.message,
        "1.6 s becomes 2 s: VRRP version 2 advertises in whole seconds"
    );
}

#[test]
fn scripts_that_need_a_shell_run_under_sh_and_say_so() {
    let text = format!(
        "vrrp_script chk {{\n script \"pidof haproxy | grep -q .\"\n}}\n{}",
        MINIMAL.replace(
            " virtual_router_id 51",
            " virtual_router_id 51\n track_script {\n  chk\n }"
        )
    );
    let import = import(&text);
    let Some(Check::Script(script)) = &import.instances[0].spec.trackers[0].check else {
        panic!()
    };
    assert_eq!(script.path, "/bin/sh");
    assert_eq!(script.args, ["-c", "pidof haproxy | grep -q ."]);
    assert_eq!(findings(&import), ["2 script changed"]);
    assert!(
        import.findings[0]
            .message
            .contains("needs a shell (a pipe '|')")
    );

    // A bare program name is looked up; one that cannot be found is said so.
    let text = text.replace("pidof haproxy | grep -q .", "killall -0 haproxy");
    let import = import_with(&MemLoader::new(), &text).unwrap();
    let Some(Check::Script(script)) = &import.instances[0].spec.trackers[0].check else {
        panic!()
    };
    assert_eq!(script.path, "killall");
    assert!(
        import.findings[0]
            .message
            .contains("is not an absolute path")
    );
}

#[test]
fn sync_groups_with_their_rules() {
    let text = r#"
vrrp_script chk { script /bin/true
 weight -20 }
vrrp_sync_group DB {
    group {
        mysql vip.2
        ghost
    }
    track_interface {
        eth3 weight -10
    }
    notify_master "/etc/keepalived/db.sh up"
    smtp_alert
}
vrrp_instance mysql {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress { 10.0.0.1/24 }
    track_script { chk }
}
vrrp_instance vip.2 {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress { 10.0.0.2/24 }
}
"#;
    let import = import(text);
    assert_eq!(import.sync_groups.len(), 1);
    let g = &import.sync_groups[0];
    assert_eq!(
        (g.name.as_str(), g.instances.clone()),
        ("DB", vec!["mysql".to_owned(), "vip.2".to_owned()])
    );
    let mysql = &import.instances[0].spec;
    let trackers: Vec<(&str, i32)> = mysql
        .trackers
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(
        trackers,
        [("chk", 0), ("eth3", -10)],
        "weights zeroed in a group; the group's trackers added"
    );
    assert_eq!(import.instances[1].spec.trackers.len(), 1);
    assert_eq!(
        findings(&import),
        [
            "7 ghost not carried over",
            "9 track_interface changed",
            "12 notify_master not carried over",
            "13 smtp_alert not carried over",
            "19 chk changed",
        ]
    );
    let yaml = to_yaml(&import, "keepalived.conf").unwrap();
    let document = crate::commands::apply::parse("x.yaml", &yaml).unwrap();
    assert_eq!(document.sync_groups[0].instances, ["mysql", "vip.2"]);
}

#[test]
fn names_are_sanitised_and_collisions_numbered() {
    let one = MINIMAL.replace("VI_1", "\"web vip\"");
    let two = MINIMAL.replace("VI_1", "web/vip").replace("51", "52");
    let import = import(&format!("{one}{two}"));
    let names: Vec<&str> = import.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["web-vip", "web-vip-2"]);
    assert_eq!(
        findings(&import),
        ["1 vrrp_instance changed", "8 vrrp_instance changed"]
    );
}

#[test]
fn includes_globs_and_relative_paths() {
    let loader = MemLoader::new()
        .with("/etc/keepalived/conf.d/b.conf", "vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress { 10.0.0.2/24 }\n smtp_alert\n}\n")
        .with("/etc/keepalived/conf.d/a.conf", "include ../scripts/chk.conf\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1/24 }\n track_script { chk }\n}\n")
        .with("/etc/keepalived/scripts/chk.conf", "vrrp_script chk {\n script /bin/true\n bogus\n}\n");
    let import = import_with(
        &loader,
        "global_defs {\n router_id x\n}\ninclude conf.d/*.conf\ninclude /nowhere/*.conf\n",
    )
    .unwrap();
    let names: Vec<&str> = import.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["A", "B"], "in glob order");
    assert_eq!(import.instances[0].spec.trackers.len(), 1);
    let report: Vec<String> = import
        .findings
        .iter()
        .map(|f| format!("{}: {}", f.location, f.keyword))
        .collect();
    assert_eq!(
        report,
        [
            "conf.d/b.conf:5: smtp_alert",
            "keepalived.conf:2: router_id",
            "keepalived.conf:5: include",
            "scripts/chk.conf:3: bogus",
        ]
    );

    let err = import_with(&loader, "\ninclude conf.d/missing.conf\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "keepalived.conf:2: cannot read the included file /etc/keepalived/conf.d/missing.conf: entity not found"
    );
    let looping = MemLoader::new().with("/etc/keepalived/self.conf", "include self.conf\n");
    let err = import_with(&looping, "include self.conf\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("self.conf:1: includes nest more than 8 deep"),
        "{err}"
    );
}

// ---- hostile input: the bounds the fuzz target (fuzz/fuzz_targets/keepalived_import.rs)
// cannot reach with its small inputs, and the inputs it found ---------------------------

/// An include of something endless was read until memory ran out; it now stops one byte
/// past the bound and says why.
#[test]
fn an_include_of_an_endless_file_is_refused_with_the_bound() {
    let err = parse(
        Path::new(MAIN),
        "include /dev/zero\n",
        &FsLoader,
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "keepalived.conf:1: cannot read the included file /dev/zero: larger than 4 MiB, and a \
         keepalived configuration is a few kilobytes: is it the right file?"
    );
}

#[test]
fn files_over_4_mib_are_refused_from_any_loader() {
    let big = "# padding\n".repeat((4 << 20) / 10 + 1);
    let loader = MemLoader::new().with("/etc/keepalived/big.conf", &big);
    let err = import_with(&loader, "include big.conf\n").unwrap_err();
    assert!(
        err.to_string().starts_with(
            "keepalived.conf:1: cannot read the included file /etc/keepalived/big.conf: larger \
             than 4 MiB"
        ),
        "{err}"
    );
    let err = import_with(&MemLoader::new(), &big).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/etc/keepalived/keepalived.conf: larger than 4 MiB"),
        "{err}"
    );
}

#[test]
fn includes_adding_up_to_over_16_mib_are_refused() {
    let part = "# padding\n".repeat((3 << 20) / 10);
    let mut loader = MemLoader::new();
    for n in 0..6 {
        loader = loader.with(&format!("/etc/keepalived/conf.d/{n}.conf"), &part);
    }
    let err = import_with(&loader, "include conf.d/*.conf\n").unwrap_err();
    assert!(
        err.to_string().starts_with(
            "keepalived.conf:1: cannot read the included file /etc/keepalived/conf.d/5.conf: \
             with it the configuration and its includes are larger than 16 MiB in all"
        ),
        "{err}"
    );
}

/// Found while probing the importer with large inputs: a sync group's track_* blocks are
/// repeated for every member, so 400 members and 400 blocks (48 kB) made 160 000 trackers
/// and a megabyte of such a group gigabytes. havipd takes 64 trackers an instance, so the
/// import now stops at the 65th, naming the instance and the group.
#[test]
fn trackers_past_havipd_s_limit_are_refused_as_they_are_added() {
    let instances: String = (0..400)
        .map(|i| format!("vrrp_instance a{i} {{\n interface e\n virtual_router_id 1\n virtual_ipaddress {{ 10.0.0.1 }}\n}}\n"))
        .collect();
    let members: String = (0..400).map(|i| format!(" a{i}\n")).collect();
    let tracks: String = (0..400)
        .map(|i| format!(" track_interface {{ e{i} }}\n"))
        .collect();
    let text = format!("{instances}vrrp_sync_group G {{\n group {{\n{members} }}\n{tracks}}}\n");
    let err = import_with(&MemLoader::new(), &text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "keepalived.conf:2468: vrrp_instance a0 has more than 64 trackers with those of its \
         sync group G, but havipd takes at most 64 per instance; track fewer interfaces, \
         scripts and files (one check script can test several things)"
    );

    // An instance's own trackers: 64 are imported, 65 are not.
    let own = |n: usize| {
        let items: String = (0..n).map(|i| format!("  e{i}\n")).collect();
        MINIMAL.replace(
            " interface eth0\n",
            &format!(" interface eth0\n track_interface {{\n{items} }}\n"),
        )
    };
    assert_eq!(only_spec(&own(64)).trackers.len(), 64);
    let err = import_with(&MemLoader::new(), &own(65)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("keepalived.conf:3: vrrp_instance VI_1 has more than 64 trackers, but"),
        "{err}"
    );
}

#[test]
fn conditional_lines_follow_the_config_id() {
    let text = MINIMAL.replace(
        " virtual_router_id 51",
        " virtual_router_id 51\n @main priority 150\n @^main priority 50",
    );
    let options = Options {
        config_id: Some("main".into()),
    };
    let import = parse(Path::new(MAIN), &text, &MemLoader::new(), &options).unwrap();
    assert_eq!(import.instances[0].spec.priority, Some(150));
    let options = Options {
        config_id: Some("backup".into()),
    };
    let import = parse(Path::new(MAIN), &text, &MemLoader::new(), &options).unwrap();
    assert_eq!(import.instances[0].spec.priority, Some(50));
    let err = import_with(&MemLoader::new(), &text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "keepalived.conf:4: @main: a conditional line, but no config id is known: pass --config-id"
    );
}

#[test]
fn quoting_and_one_line_blocks() {
    let text = "vrrp_instance \"my vip\" { interface 'eth0'\n virtual_router_id 51 ; \n virtual_ipaddress { 10.0.0.1/24 }\n}";
    // Words after the value are ignored, as keepalived ignores them.
    let import = import(text);
    assert_eq!(import.instances[0].name, "my-vip");
    assert_eq!(import.instances[0].spec.interface, "eth0");
    assert_eq!(import.instances[0].spec.vrid, 51);
    assert_eq!(import.instances[0].spec.virtual_addresses, ["10.0.0.1/24"]);
}

#[test]
fn garbage_is_an_error_naming_file_and_line() {
    for (text, expected) in [
        (
            "vrrp_instance VI_1 {\n interface eth0\n",
            "keepalived.conf:1: this block is never closed: a '}' is missing",
        ),
        (
            "}\n",
            "keepalived.conf:1: '}' closes no block: is there one too many?",
        ),
        (
            "\n{\n",
            "keepalived.conf:2: '{' opens a block but no keyword comes before it",
        ),
        (
            "vrrp_instance VI_1 {\n priority high\n}\n",
            "keepalived.conf:2: priority: 'high' is not a whole number from 1 to 255",
        ),
        (
            "vrrp_instance VI_1 {\n virtual_router_id 51\n}\n",
            "keepalived.conf:1: vrrp_instance VI_1 has no interface: havip needs the interface its addresses go on",
        ),
        (
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n}\n",
            "keepalived.conf:1: vrrp_instance VI_1 has no virtual_ipaddress",
        ),
        (
            "vrrp_instance VI_1\n",
            "keepalived.conf:1: vrrp_instance VI_1 needs a block: vrrp_instance VI_1 { … }",
        ),
        (
            "$IF=eth0\n",
            "keepalived.conf:1: $IF=eth0: parameter definitions ($NAME=VALUE) are not supported; write the values out, or import what 'keepalived -d' logs as the configuration in use",
        ),
        (
            "vrrp_instance X {\n virtual_ipaddress {\n  10.0.0.300\n }\n}\n",
            "keepalived.conf:3: 10.0.0.300: '10.0.0.300' is not an IPv4 or IPv6 address",
        ),
        (
            "vrrp_script c {\n interval 1\n}\n",
            "keepalived.conf:1: vrrp_script c has no script line",
        ),
        (
            "x \"unclosed\n",
            "keepalived.conf:1: a string opened with \" is not closed on this line",
        ),
    ] {
        let err = import_with(&MemLoader::new(), text).unwrap_err();
        assert_eq!(err.to_string(), expected, "{text:?}");
    }
}

#[test]
fn an_empty_configuration_imports_nothing() {
    let import = import("! nothing here\n# at all\n");
    assert!(import.instances.is_empty() && import.findings.is_empty());
    assert!(to_yaml(&import, "k.conf").unwrap().ends_with("[]\n"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = import_with(&MemLoader::new(), &text);
    }

    #[test]
    fn keepalived_shaped_text_never_panics(
        words in proptest::collection::vec(
            prop_oneof![
                Just("vrrp_instance"), Just("vrrp_script"), Just("vrrp_sync_group"), Just("{"),
                Just("}"), Just("\n"), Just("interface"), Just("eth0"), Just("virtual_router_id"),
                Just("51"), Just("virtual_ipaddress"), Just("10.0.0.1/24"), Just("track_script"),
                Just("group"), Just("include"), Just("*"), Just("\""), Just("'"), Just("@x"),
                Just("weight"), Just("-20"), Just("script"), Just("advert_int"), Just("0.001"),
                Just("\\"), Just("#"), Just("notify"), Just("track_file"), Just("file"),
            ],
            0..120,
        )
    ) {
        let text = words.join(" ");
        let loader = MemLoader::new().with("/etc/keepalived/x", &text);
        let _ = parse(Path::new(MAIN), &text, &loader, &Options { config_id: Some("x".into()) });
    }
}
