//! Statements to havip: global_defs, vrrp_script and track_file first (instances refer
//! to them, wherever they stand), then the sync groups' membership, then the instances,
//! then the groups.

use std::collections::BTreeMap;
use std::rc::Rc;

use havip_proto::v1::tracker::Check;
use havip_proto::v1::{FileCheck, InterfaceCheck, Tracker};
use pbjson_types::Duration;

use super::instance::{self, Membership};
use super::loader::Loader;
use super::names::{self, Names};
use super::notify::Hooks;
use super::scripts::{self, Checks};
use super::tree::Statement;
use super::values::{self, arg};
use super::{Finding, Import, ImportedGroup, ParseError};

/// The global_defs settings that instances inherit.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    pub version: Option<u32>,
    pub garp_delay: Option<Duration>,
    pub garp_repeat: Option<u32>,
    pub garp_refresh: Option<Duration>,
    pub garp_refresh_repeat: Option<u32>,
    pub strict: bool,
    pub script_user: Option<String>,
}

/// What the conversion works with.
pub struct Context {
    pub globals: Globals,
    pub checks: Checks,
    pub findings: Vec<Finding>,
}

const MAIL: &str = "havip sends no mail; send it from a hook run by havipctl watch --exec";
const LVS: &str = "keepalived's load balancer (LVS) half; havip replaces only the VRRP \
                   half: keep keepalived (without vrrp_instance) or ipvsadm for it";

pub fn convert(statements: &[Statement], loader: &dyn Loader) -> Result<Import, ParseError> {
    let mut cx = Context {
        globals: Globals::default(),
        checks: Checks::default(),
        findings: Vec::new(),
    };
    for s in statements.iter().filter(|s| s.keyword == "global_defs") {
        globals(s, &mut cx)?;
    }
    for s in statements {
        match s.keyword.as_str() {
            "vrrp_script" => {
                let name = scripts::block_name(s)?.to_owned();
                let script = scripts::script(
                    s,
                    cx.globals.script_user.as_deref(),
                    loader,
                    &mut cx.findings,
                )?;
                cx.checks.scripts.insert(name, script);
            }
            "track_file" | "vrrp_track_file" => {
                let name = scripts::block_name(s)?.to_owned();
                let file = scripts::track_file(s, &mut cx.findings)?;
                cx.checks.files.insert(name, file);
            }
            _ => {}
        }
    }

    // Which group each instance is in, before the instances are read.
    let groups: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.keyword == "vrrp_sync_group")
        .collect();
    let mut membership: BTreeMap<String, Membership> = BTreeMap::new();
    for g in &groups {
        let name = scripts::block_name(g)?;
        let group_trackers: Rc<[Statement]> = g
            .block
            .iter()
            .flatten()
            .filter(|st| st.keyword.starts_with("track_"))
            .cloned()
            .collect();
        let tracking_weight = g
            .block
            .iter()
            .flatten()
            .any(|st| st.keyword == "sync_group_tracking_weight");
        for st in g.block.iter().flatten().filter(|st| st.keyword == "group") {
            for (member, _) in member_words(st) {
                membership.insert(
                    member,
                    Membership {
                        group: name.to_owned(),
                        tracking_weight,
                        group_trackers: Rc::clone(&group_trackers),
                    },
                );
            }
        }
    }

    let mut import = Import::default();
    let mut instance_names = Names::default();
    let mut havip_names: BTreeMap<String, String> = BTreeMap::new();
    for s in statements {
        match s.keyword.as_str() {
            "global_defs" | "vrrp_script" | "track_file" | "vrrp_track_file"
            | "vrrp_sync_group" => {}
            "vrrp_instance" => {
                let keepalived_name = scripts::block_name(s)?.to_owned();
                let name = claim(
                    &mut instance_names,
                    &keepalived_name,
                    s,
                    &mut cx,
                    "instance",
                );
                let imported = instance::convert(
                    s,
                    &name,
                    &keepalived_name,
                    membership.get(&keepalived_name),
                    &mut cx,
                )?;
                havip_names.insert(keepalived_name, name);
                import.instances.push(imported);
            }
            other => cx.findings.push(Finding::dropped(
                &s.location,
                other,
                top_level_reason(other),
            )),
        }
    }

    let mut group_names = Names::default();
    for g in groups {
        import
            .sync_groups
            .push(sync_group(g, &havip_names, &mut group_names, &mut cx)?);
    }
    import.findings = cx.findings;
    Ok(import)
}

/// The havip name of a vrrp_instance or vrrp_sync_group, reporting any change.
fn claim(
    names: &mut Names,
    keepalived: &str,
    s: &Statement,
    cx: &mut Context,
    what: &str,
) -> String {
    let (sanitised, changed) = names::sanitise(keepalived);
    let (name, renamed) = names.claim(&sanitised);
    if changed || renamed {
        cx.findings.push(Finding::changed(
            &s.location,
            &s.keyword,
            format!(
                "{keepalived} becomes the {what} {name}{}",
                if renamed {
                    " (another one already has the name it would get)"
                } else {
                    " (havip names are letters, digits, '-', '_' and '.')"
                }
            ),
        ));
    }
    name
}

fn top_level_reason(keyword: &str) -> &'static str {
    match keyword {
        "virtual_server" | "virtual_server_group" | "real_server" | "SSL" => LVS,
        "static_ipaddress" | "static_routes" | "static_rules" => {
            "havip moves only the virtual addresses; configure static addresses, routes \
             and rules with the system's network configuration"
        }
        "garp_group" => "havipd paces gratuitous ARPs itself, across all its instances",
        "vrrp_track_process" => {
            "track a process with a check script instead, e.g. --track-script \
             name=haproxy,path=/usr/bin/pidof,arg=haproxy"
        }
        "bfd_instance" => "havip has no BFD",
        "linkbeat_interfaces" => "havipd follows links through netlink; no polling needed",
        "net_namespace" | "net_namespace_ipvs" | "namespace_with_ipsets" => {
            "run havipd inside the namespace instead (ip netns exec NS havipd)"
        }
        "instance" | "use_pid_dir" | "child_wait_time" => {
            "a keepalived process setting; havipd is configured by its own flags"
        }
        _ => "not a keepalived keyword havip knows",
    }
}

fn globals(s: &Statement, cx: &mut Context) -> Result<(), ParseError> {
    let mut min_garp = false;
    for st in s.block.iter().flatten() {
        let g = &mut cx.globals;
        match st.keyword.as_str() {
            "vrrp_version" => g.version = Some(values::int_arg(st, 2u32, 3)?),
            "vrrp_garp_master_delay" => g.garp_delay = Some(values::seconds_arg(st, 3600)?),
            "vrrp_garp_master_repeat" => g.garp_repeat = Some(values::int_arg(st, 1u32, 255)?),
            "vrrp_garp_master_refresh" => g.garp_refresh = Some(values::seconds_arg(st, 3600)?),
            "vrrp_garp_master_refresh_repeat" => {
                g.garp_refresh_repeat = Some(values::int_arg(st, 1u32, 255)?);
            }
            "vrrp_min_garp" => min_garp = values::bool_arg(st)?,
            "vrrp_strict" => {
                g.strict = true;
                cx.findings.push(Finding::changed(
                    &st.location,
                    "vrrp_strict",
                    "carried over as accept mode off (no_accept) for every instance; the \
                     rest of strict mode is not: havip checks adverts as RFC 9568 says anyway",
                ));
            }
            "script_user" => {
                g.script_user = Some(arg(st)?.to_owned());
                if st.args.len() > 1 {
                    cx.findings.push(Finding::dropped(
                        &st.location,
                        "script_user",
                        "the group: havipd runs a script with its user's own groups",
                    ));
                }
            }
            "vrrp_check_unicast_src" => cx.findings.push(Finding::note(
                &st.location,
                "vrrp_check_unicast_src",
                "nothing to carry over: havip always checks that unicast adverts come from a \
                 listed peer",
            )),
            keyword => cx.findings.push(Finding::dropped(
                &st.location,
                keyword,
                global_reason(keyword),
            )),
        }
    }
    if min_garp {
        let g = &mut cx.globals;
        g.garp_repeat.get_or_insert(1);
        g.garp_delay.get_or_insert(Duration::default());
    }
    Ok(())
}

fn global_reason(keyword: &str) -> &'static str {
    match keyword {
        "router_id" => {
            "keepalived names the node with it in mails and SNMP; havip has neither, and \
             names nodes by their havipd address"
        }
        "notification_email"
        | "notification_email_from"
        | "smtp_server"
        | "smtp_connect_timeout"
        | "smtp_helo_name"
        | "smtp_alert"
        | "smtp_alert_vrrp"
        | "smtp_alert_checker"
        | "email_faults" => MAIL,
        "vrrp_garp_interval" | "vrrp_gna_interval" => {
            "havipd paces gratuitous ARPs and neighbour adverts itself, across all its \
             instances, rather than with a fixed delay per interface"
        }
        "vrrp_garp_lower_prio_delay" | "vrrp_garp_lower_prio_repeat" => {
            "havip sends no extra gratuitous ARPs when a master hears a lower priority"
        }
        "enable_script_security" => {
            "nothing to carry over: havipd always applies script security and refuses a \
             tracker script that root does not own or that others could write (the file or \
             any folder above it)"
        }
        k if k.starts_with("lvs_") || k.starts_with("checker_") => LVS,
        _ => "a global_defs setting havip has no equivalent for",
    }
}

/// A block's words, one per member, for lists like `group { a b }`.
pub fn member_words(s: &Statement) -> Vec<(String, super::Location)> {
    let mut words = s.words();
    words.remove(0); // the keyword
    words
}

fn sync_group(
    g: &Statement,
    havip_names: &BTreeMap<String, String>,
    names: &mut Names,
    cx: &mut Context,
) -> Result<ImportedGroup, ParseError> {
    let keepalived_name = scripts::block_name(g)?.to_owned();
    let name = claim(names, &keepalived_name, g, cx, "sync group");
    let mut instances = Vec::new();
    let mut hooks = Hooks::default();
    let mut notify_lines = Vec::new();
    for st in g.block.iter().flatten() {
        match st.keyword.as_str() {
            "group" => {
                for (member, location) in member_words(st) {
                    match havip_names.get(&member) {
                        Some(havip) if !instances.contains(havip) => instances.push(havip.clone()),
                        Some(_) => {}
                        None => cx.findings.push(Finding::dropped(
                            &location,
                            &member,
                            format!(
                                "no vrrp_instance {member} is defined, so it is left out of \
                                 the sync group {name}"
                            ),
                        )),
                    }
                }
            }
            "track_interface" | "track_script" | "track_file" => {
                cx.findings.push(Finding::changed(
                    &st.location,
                    &st.keyword,
                    "a sync group's trackers are added to each member instance, which is what \
                 they do in keepalived",
                ))
            }
            "sync_group_tracking_weight" => {}
            "global_tracking" => cx.findings.push(Finding::dropped(
                &st.location,
                "global_tracking",
                "deprecated in keepalived; the members' own tracker weights are kept",
            )),
            keyword if instance::notify_hook(&mut hooks, st)? => {
                notify_lines.push((keyword.to_owned(), st.location.clone()));
            }
            "smtp_alert" => cx
                .findings
                .push(Finding::dropped(&st.location, "smtp_alert", MAIL)),
            other => cx.findings.push(Finding::dropped(
                &st.location,
                other,
                "not a vrrp_sync_group keyword havip knows",
            )),
        }
    }
    if !hooks.is_empty() {
        let command = hooks.command(&instances);
        for (keyword, location) in notify_lines {
            cx.findings.push(Finding::dropped(
                &location,
                &keyword,
                format!(
                    "replaced by havipctl watch --exec, which runs a hook for each member's \
                     state changes (INSTANCE, not GROUP, as the first argument): {command}"
                ),
            ));
        }
    }
    Ok(ImportedGroup {
        name,
        keepalived_name,
        location: g.location.clone(),
        instances,
    })
}

/// The trackers of a track_interface, track_script or track_file block, each with the
/// line that made it.
pub fn trackers(
    s: &Statement,
    names: &mut Names,
    cx: &mut Context,
) -> Result<Vec<(Tracker, super::Location)>, ParseError> {
    let mut out = Vec::new();
    for item in s.block.iter().flatten() {
        let name = item.keyword.as_str();
        let weight = match item.args.first().map(String::as_str) {
            Some("weight") => {
                let text = item.args.get(1).ok_or_else(|| {
                    ParseError::new(&item.location, format!("{name}: weight needs a value"))
                })?;
                let (min, max) = if s.keyword == "track_file" {
                    (-2_147_483_647, 2_147_483_647)
                } else {
                    (-253, 253)
                };
                if item.args.get(2).is_some_and(|w| w == "reverse") {
                    cx.findings.push(Finding::dropped(
                        &item.location,
                        "reverse",
                        "havip weights cannot be reversed: the weight applies in its usual \
                         direction, the opposite of what this line asks",
                    ));
                }
                Some(values::int(item, text, min, max)?)
            }
            Some(other) if other != "noreverse" && other != "no_reverse" => {
                cx.findings.push(Finding::dropped(
                    &item.location,
                    other,
                    format!("not a {} option havip knows", s.keyword),
                ));
                None
            }
            _ => None,
        };
        let tracker = match s.keyword.as_str() {
            "track_interface" => Some(Tracker {
                name: String::new(),
                weight: weight.unwrap_or(0),
                check: Some(Check::Interface(InterfaceCheck {
                    interface: name.to_owned(),
                })),
            }),
            "track_script" => match cx.checks.scripts.get(name) {
                Some(script) => Some(Tracker {
                    name: String::new(),
                    weight: weight.unwrap_or(script.weight),
                    check: Some(Check::Script(script.check.clone())),
                }),
                None => {
                    cx.findings.push(Finding::dropped(
                        &item.location,
                        name,
                        format!("no vrrp_script {name} is defined; keepalived ignores it too"),
                    ));
                    None
                }
            },
            _ => match cx.checks.files.get(name) {
                Some(file) => Some(Tracker {
                    name: String::new(),
                    weight: weight.unwrap_or(file.weight),
                    check: Some(Check::File(FileCheck {
                        path: file.path.clone(),
                    })),
                }),
                None => {
                    cx.findings.push(Finding::dropped(
                        &item.location,
                        name,
                        format!("no track_file {name} is defined; keepalived ignores it too"),
                    ));
                    None
                }
            },
        };
        if let Some(mut tracker) = tracker {
            let (sanitised, _) = names::sanitise(name);
            let (unique, renamed) = names.claim(&sanitised);
            if renamed {
                cx.findings.push(Finding::changed(
                    &item.location,
                    name,
                    format!("the tracker is named {unique}: another tracker of the instance is named {sanitised}"),
                ));
            }
            tracker.name = unique;
            out.push((tracker, item.location.clone()));
        }
    }
    Ok(out)
}
