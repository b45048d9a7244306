//! One vrrp_instance to one havip instance spec, keyword by keyword.

use std::net::IpAddr;
use std::rc::Rc;

use havip_proto::v1::{AuthType, Authentication, GarpSettings, InstanceSpec};
use pbjson_types::Duration;

use super::convert::{self, Context};
use super::names::Names;
use super::notify::Hooks;
use super::tree::Statement;
use super::values::{self, arg};
use super::{Finding, ImportedInstance, Location, ParseError};

/// The sync group an instance belongs to, as the instance needs to know it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub group: String,
    /// `sync_group_tracking_weight`: keep the members' tracker weights.
    pub tracking_weight: bool,
    /// The group's track_* blocks, which apply to every member: shared, not copied for
    /// each member, which made a group of many members and many blocks quadratic.
    pub group_trackers: Rc<[Statement]>,
}

/// The most trackers one instance may have: havipd's own limit (server/src/spec/
/// trackers.rs), checked as they are added so that a sync group's trackers, repeated for
/// every member, cannot grow an import without bound.
const MAX_TRACKERS: usize = 64;

/// An error once `spec` has more trackers than havipd takes.
fn check_tracker_count(
    spec: &InstanceSpec,
    keepalived_name: &str,
    location: &Location,
    group: Option<&str>,
) -> Result<(), ParseError> {
    if spec.trackers.len() <= MAX_TRACKERS {
        return Ok(());
    }
    Err(ParseError::new(
        location,
        format!(
            "vrrp_instance {keepalived_name} has more than {MAX_TRACKERS} trackers{}, but \
             havipd takes at most {MAX_TRACKERS} per instance; track fewer interfaces, \
             scripts and files (one check script can test several things)",
            group
                .map(|g| format!(" with those of its sync group {g}"))
                .unwrap_or_default()
        ),
    ))
}

const STATE: &str = "havip has no initial state: every instance starts as BACKUP and becomes \
                     MASTER when it hears no better master for Master_Down_Interval (at once \
                     with priority 255, as the owner of the addresses); the priorities and \
                     preemption decide who is master, as they do in keepalived once it runs";

/// Records a notify keyword's script line in `hooks`; false for any other keyword.
pub fn notify_hook(hooks: &mut Hooks, st: &Statement) -> Result<bool, ParseError> {
    let slot = match st.keyword.as_str() {
        "notify_master" => &mut hooks.master,
        "notify_backup" => &mut hooks.backup,
        "notify_fault" => &mut hooks.fault,
        "notify_stop" => &mut hooks.stop,
        "notify" => &mut hooks.any,
        _ => return Ok(false),
    };
    *slot = Some(arg(st)?.to_owned());
    Ok(true)
}

pub fn convert(
    s: &Statement,
    name: &str,
    keepalived_name: &str,
    membership: Option<&Membership>,
    cx: &mut Context,
) -> Result<ImportedInstance, ParseError> {
    let strict_default = !cx.globals.strict;
    let mut spec = InstanceSpec {
        description: format!("keepalived vrrp_instance {keepalived_name}"),
        priority: Some(100),
        preempt: Some(true),
        accept_mode: Some(strict_default),
        ..Default::default()
    };
    let mut version: Option<(u32, Location)> = None;
    let mut advert: Option<(Duration, Statement)> = None;
    let mut vips: Vec<(IpAddr, u8)> = Vec::new();
    let mut auth: Option<(Authentication, Location)> = None;
    let mut garp = GarpSettings {
        repeat: cx.globals.garp_repeat,
        delay: cx.globals.garp_delay,
        refresh: cx.globals.garp_refresh,
        refresh_repeat: cx.globals.garp_refresh_repeat,
    };
    let mut hooks = Hooks::default();
    let mut notify_lines = Vec::new();
    let mut tracker_names = Names::default();
    let mut tracker_lines = Vec::new();
    let mut excluded = Vec::new();

    for st in s.block.iter().flatten() {
        let location = &st.location;
        match st.keyword.as_str() {
            "state" => cx.findings.push(Finding::dropped(location, "state", STATE)),
            "interface" => spec.interface = arg(st)?.to_owned(),
            "virtual_router_id" => spec.vrid = values::int_arg(st, 1u32, 255)?,
            "priority" => spec.priority = Some(values::int_arg(st, 1u32, 255)?),
            "advert_int" => advert = Some((values::seconds_arg(st, 255)?, st.clone())),
            "version" | "vrrp_version" => {
                version = Some((values::int_arg(st, 2u32, 3)?, location.clone()));
            }
            "nopreempt" | "no_preempt" => spec.preempt = Some(false),
            "preempt" => spec.preempt = Some(true),
            "preempt_delay" => spec.preempt_delay = Some(values::seconds_arg(st, 1000)?),
            "accept" => spec.accept_mode = Some(true),
            "no_accept" => spec.accept_mode = Some(false),
            "strict_mode" => {
                if values::bool_arg(st)? {
                    spec.accept_mode = Some(false);
                    cx.findings.push(Finding::changed(
                        location,
                        "strict_mode",
                        "carried over as accept mode off; the rest of strict mode is not",
                    ));
                }
            }
            "authentication" => auth = Some((authentication(st, cx)?, location.clone())),
            "unicast_src_ip" => spec.unicast_source = values::ip(st, arg(st)?)?.to_string(),
            "mcast_src_ip" => {
                spec.unicast_source = values::ip(st, arg(st)?)?.to_string();
                cx.findings.push(Finding::note(
                    location,
                    "mcast_src_ip",
                    "carried over as unicast_source, which is the address adverts are sent \
                     from by multicast too",
                ));
            }
            "unicast_peer" => {
                for peer in st.block.iter().flatten() {
                    spec.unicast_peers
                        .push(values::ip(peer, &peer.keyword)?.to_string());
                    if !peer.args.is_empty() {
                        cx.findings.push(Finding::dropped(
                            &peer.location,
                            &peer.args[0],
                            "havip accepts adverts with TTL 255 only, as RFC 9568 says; no \
                             min_ttl/max_ttl",
                        ));
                    }
                }
            }
            "virtual_ipaddress" => {
                for item in st.block.iter().flatten() {
                    if let Some(vip) = address(item, &spec.interface, cx)? {
                        vips.push(vip);
                    }
                }
            }
            "virtual_ipaddress_excluded" => {
                for item in st.block.iter().flatten() {
                    if let Some(vip) = address(item, &spec.interface, cx)? {
                        excluded.push((vip, item.location.clone()));
                    }
                }
            }
            "track_interface" | "track_script" | "track_file" => {
                for (tracker, line) in convert::trackers(st, &mut tracker_names, cx)? {
                    spec.trackers.push(tracker);
                    tracker_lines.push(line);
                }
                check_tracker_count(&spec, keepalived_name, &st.location, None)?;
            }
            "garp_master_delay" => garp.delay = Some(values::seconds_arg(st, 3600)?),
            "garp_master_repeat" => garp.repeat = Some(values::int_arg(st, 1u32, 255)?),
            "garp_master_refresh" => garp.refresh = Some(values::seconds_arg(st, 3600)?),
            "garp_master_refresh_repeat" => {
                garp.refresh_repeat = Some(values::int_arg(st, 1u32, 255)?);
            }
            "use_vmac" => {
                spec.vmac = true;
                if !st.args.is_empty() {
                    cx.findings.push(Finding::dropped(
                        location,
                        "use_vmac",
                        format!(
                            "the name and MAC given ({}): havipd names the VMAC interface \
                             vrrp4.IFINDEX.VRID and uses the RFC's MAC 00:00:5e:00:01:VRID",
                            st.args.join(" ")
                        ),
                    ));
                }
            }
            "smtp_alert" => cx.findings.push(Finding::dropped(
                location,
                "smtp_alert",
                "havip sends no mail; send it from a hook run by havipctl watch --exec",
            )),
            "check_unicast_src" => cx.findings.push(Finding::note(
                location,
                "check_unicast_src",
                "nothing to carry over: havip always checks that unicast adverts come from \
                 a listed peer",
            )),
            "native_ipv6" => cx.findings.push(Finding::note(
                location,
                "native_ipv6",
                "nothing to carry over: the virtual addresses decide the family",
            )),
            keyword if notify_hook(&mut hooks, st)? => {
                notify_lines.push((keyword.to_owned(), st.clone()));
            }
            keyword => cx.findings.push(Finding::dropped(
                location,
                keyword,
                instance_reason(keyword),
            )),
        }
    }

    if spec.interface.is_empty() {
        return Err(ParseError::new(
            &s.location,
            format!(
                "vrrp_instance {keepalived_name} has no interface: havip needs the interface \
                 its addresses go on"
            ),
        ));
    }
    if spec.vrid == 0 {
        return Err(ParseError::new(
            &s.location,
            format!("vrrp_instance {keepalived_name} has no virtual_router_id"),
        ));
    }
    let Some(first) = vips.first().copied() else {
        return Err(ParseError::new(
            &s.location,
            format!("vrrp_instance {keepalived_name} has no virtual_ipaddress"),
        ));
    };
    if vips.iter().any(|(a, _)| a.is_ipv4() != first.0.is_ipv4()) {
        return Err(ParseError::new(
            &s.location,
            format!(
                "vrrp_instance {keepalived_name} mixes IPv4 and IPv6 in virtual_ipaddress; \
                 keepalived refuses that too"
            ),
        ));
    }
    for ((addr, len), location) in excluded {
        if addr.is_ipv4() == first.0.is_ipv4() {
            cx.findings.push(Finding::changed(
                &location,
                "virtual_ipaddress_excluded",
                format!(
                    "{addr}/{len} is carried over as an ordinary virtual address: it moves \
                     with the master as in keepalived, but havip has no excluded addresses, \
                     so it is also listed in the adverts (a keepalived peer that lists it \
                     only as excluded will notice the difference)"
                ),
            ));
            vips.push((addr, len));
        } else {
            cx.findings.push(Finding::dropped(
                &location,
                "virtual_ipaddress_excluded",
                format!(
                    "{addr}/{len} is of the other address family, and a havip instance has \
                     one: create a second instance (VRRP version 3) for it"
                ),
            ));
        }
    }
    spec.virtual_addresses = vips.iter().map(|(a, l)| format!("{a}/{l}")).collect();

    let version = match version {
        Some((v, location)) if v == 2 && first.0.is_ipv6() => {
            cx.findings.push(Finding::changed(
                &location,
                "version",
                "IPv6 needs VRRP version 3; keepalived uses 3 for it too",
            ));
            3
        }
        Some((v, _)) => v,
        None if first.0.is_ipv6() => 3,
        // keepalived's default is version 2, havip's 3: written out.
        None => cx.globals.version.unwrap_or(2),
    };
    spec.version = Some(version);
    spec.advert_interval = Some(advert_interval(advert, version, cx));

    if let Some((mut authentication, location)) = auth {
        if version == 3 {
            cx.findings.push(Finding::dropped(
                &location,
                "authentication",
                "VRRP version 3 has no authentication; keepalived ignores it too",
            ));
        } else {
            if authentication.password.chars().count() > 8 {
                authentication.password = authentication.password.chars().take(8).collect();
                cx.findings.push(Finding::changed(
                    &location,
                    "auth_pass",
                    "cut to its first 8 characters, the ones keepalived uses",
                ));
            }
            spec.auth = Some(authentication);
        }
    }
    spec.garp = Some(GarpSettings {
        repeat: Some(garp.repeat.unwrap_or(5)),
        delay: Some(garp.delay.unwrap_or(Duration {
            seconds: 5,
            nanos: 0,
        })),
        refresh: Some(garp.refresh.unwrap_or_default()),
        refresh_repeat: Some(garp.refresh_repeat.unwrap_or(1)),
    });

    if let Some(membership) = membership {
        group_trackers(
            &mut spec,
            keepalived_name,
            &tracker_lines,
            membership,
            &mut tracker_names,
            cx,
        )?;
    }

    if !hooks.is_empty() {
        let command = hooks.command(&[name.to_owned()]);
        let mut first: Option<Location> = None;
        for (keyword, st) in notify_lines {
            let mut message = match &first {
                None => format!(
                    "replaced by havipctl watch --exec, which runs hooks one at a time, in \
                     order, and resumes after a restart without losing or repeating one; \
                     for this instance: {command}"
                ),
                Some(line) => format!(
                    "replaced by havipctl watch --exec: the command at line {} runs it too",
                    line.line
                ),
            };
            first.get_or_insert_with(|| st.location.clone());
            if st.args.len() > 1 {
                message.push_str(&format!(
                    " (the hook runs as havipctl's user, not {}: set User= in \
                     havip-notify.service)",
                    st.args[1..].join(" ")
                ));
            }
            if name != keepalived_name {
                message.push_str(&format!(
                    " (hooks get the havip name {name} where keepalived passed {keepalived_name})"
                ));
            }
            cx.findings
                .push(Finding::dropped(&st.location, &keyword, message));
        }
    }

    Ok(ImportedInstance {
        name: name.to_owned(),
        keepalived_name: keepalived_name.to_owned(),
        location: s.location.clone(),
        spec,
    })
}

/// The advert interval in the steps the version allows, rounded with a note if needed.
fn advert_interval(
    advert: Option<(Duration, Statement)>,
    version: u32,
    cx: &mut Context,
) -> Duration {
    let Some((interval, st)) = advert else {
        return Duration {
            seconds: 1,
            nanos: 0,
        };
    };
    let nanos = values::nanos(&interval);
    let (step, min, max, unit) = if version == 2 {
        (
            1_000_000_000i128,
            1_000_000_000i128,
            255_000_000_000i128,
            "whole seconds",
        )
    } else {
        (
            10_000_000,
            10_000_000,
            40_950_000_000,
            "steps of 10 ms from 0.01 to 40.95 s",
        )
    };
    let rounded = ((nanos + step / 2) / step * step).clamp(min, max);
    let result = values::from_nanos(rounded);
    if rounded != nanos {
        cx.findings.push(Finding::changed(
            &st.location,
            "advert_int",
            format!(
                "{} s becomes {} s: VRRP version {version} advertises in {unit}",
                values::seconds_text(&interval),
                values::seconds_text(&result)
            ),
        ));
    }
    result
}

fn authentication(st: &Statement, cx: &mut Context) -> Result<Authentication, ParseError> {
    let mut kind = None;
    let mut password = None;
    for item in st.block.iter().flatten() {
        match item.keyword.as_str() {
            "auth_type" => kind = Some((arg(item)?.to_ascii_uppercase(), item.location.clone())),
            "auth_pass" => password = Some(arg(item)?.to_owned()),
            other => cx.findings.push(Finding::dropped(
                &item.location,
                other,
                "not an authentication keyword havip knows",
            )),
        }
    }
    match kind {
        Some((kind, _)) if kind == "PASS" => Ok(Authentication {
            r#type: AuthType::Pass as i32,
            password: password.unwrap_or_default(),
            password_set: false,
        }),
        Some((kind, location)) => {
            cx.findings.push(Finding::dropped(
                &location,
                "auth_type",
                format!(
                    "{kind}: havip implements only PASS; the instance runs without authentication"
                ),
            ));
            Ok(Authentication {
                r#type: AuthType::None as i32,
                ..Default::default()
            })
        }
        None => Err(ParseError::new(
            &st.location,
            "authentication needs auth_type PASS (and auth_pass)",
        )),
    }
}

/// `ADDR[/LEN] [dev IF] [label L] [brd B] [scope S] …`; `None` for an address that is not
/// carried over (on another interface).
fn address(
    item: &Statement,
    interface: &str,
    cx: &mut Context,
) -> Result<Option<(IpAddr, u8)>, ParseError> {
    let text = &item.keyword;
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text.as_str(), None),
    };
    let addr: IpAddr = values::ip(item, addr)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        // keepalived's default: a host address.
        None => max,
        Some(len) => values::int(item, len, 0u8, max)?,
    };
    let mut args = item.args.iter();
    let mut keep = true;
    while let Some(option) = args.next() {
        let takes_value = matches!(
            option.as_str(),
            "dev"
                | "label"
                | "brd"
                | "broadcast"
                | "scope"
                | "peer"
                | "preferred_lft"
                | "track_group"
        );
        let value = if takes_value { args.next() } else { None };
        match (option.as_str(), value) {
            ("dev", Some(dev)) if dev == interface || interface.is_empty() => {}
            ("dev", Some(dev)) => {
                keep = false;
                cx.findings.push(Finding::dropped(
                    &item.location,
                    text,
                    format!(
                        "on {dev}, not the instance's interface {interface}: a havip instance \
                         puts its addresses on its own interface; create an instance on {dev} \
                         for it"
                    ),
                ));
            }
            ("label", Some(label)) => cx.findings.push(Finding::dropped(
                &item.location,
                "label",
                format!("{label}: havipd adds addresses without a label"),
            )),
            (option, value) => cx.findings.push(Finding::dropped(
                &item.location,
                option,
                format!(
                    "{}havipd adds the address with the prefix length alone",
                    value.map(|v| format!("{v}: ")).unwrap_or_default()
                ),
            )),
        }
    }
    Ok(keep.then_some((addr, len)))
}

/// A sync group's trackers, and keepalived's rule that members' script and file weights
/// count as 0 (a failure is FAULT for the whole group) unless sync_group_tracking_weight.
fn group_trackers(
    spec: &mut InstanceSpec,
    keepalived_name: &str,
    lines: &[Location],
    membership: &Membership,
    names: &mut Names,
    cx: &mut Context,
) -> Result<(), ParseError> {
    use havip_proto::v1::tracker::Check;
    if !membership.tracking_weight {
        for (tracker, line) in spec.trackers.iter_mut().zip(lines) {
            let weighted = matches!(tracker.check, Some(Check::Script(_) | Check::File(_)));
            if weighted && tracker.weight != 0 {
                cx.findings.push(Finding::changed(
                    line,
                    &tracker.name,
                    format!(
                        "weight {} becomes 0 because the instance is in the sync group {}: \
                         keepalived does the same, so that a failure puts the whole group in \
                         FAULT (sync_group_tracking_weight keeps the weights)",
                        tracker.weight, membership.group
                    ),
                ));
                tracker.weight = 0;
            }
        }
    }
    for block in membership.group_trackers.iter() {
        for (tracker, _) in convert::trackers(block, names, cx)? {
            spec.trackers.push(tracker);
        }
        check_tracker_count(
            spec,
            keepalived_name,
            &block.location,
            Some(&membership.group),
        )?;
    }
    Ok(())
}

fn instance_reason(keyword: &str) -> &'static str {
    match keyword {
        "dont_track_primary" => {
            "havipd always follows the instance's own interface: its link going down is FAULT"
        }
        "track_process" => {
            "track a process with a check script instead, e.g. --track-script \
             name=haproxy,path=/usr/bin/pidof,arg=haproxy"
        }
        "track_bfd" => "havip has no BFD",
        "track_src_ip" => "havipd reports a missing source address as the instance's error",
        "garp_lower_prio_delay"
        | "garp_lower_prio_repeat"
        | "garp_extra_if"
        | "garp_extra_if_vmac" => "havip has no such gratuitous ARP setting",
        "lower_prio_no_advert" | "higher_prio_send_advert" => {
            "havip answers adverts as RFC 9568 says"
        }
        "virtual_routes" | "virtual_rules" => {
            "havip moves only addresses; add routes and rules from a hook run by havipctl \
             watch --exec"
        }
        "mcast_dst_ip" => "havip always uses 224.0.0.18 / ff02::12 for multicast",
        "unicast_ttl" => "havip always sends with TTL 255, as RFC 9568 says",
        "old_unicast_checksum" => {
            "havip accepts both VRRPv3 checksum forms and sends keepalived's current one"
        }
        "down_timer_adverts" => "havip's master-down timer is the RFC's: 3 intervals plus skew",
        "vmac_xmit_base" | "use_vmac_addr" | "use_ipvlan" => {
            "havipd decides itself which interface carries the adverts; no ipvlan"
        }
        "notify_deleted" | "notify_master_rx_lower_pri" | "notify_priority_changes" => {
            "havip has no such notification; havipctl watch shows every event"
        }
        _ => "not a vrrp_instance keyword havip knows",
    }
}
