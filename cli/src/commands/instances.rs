//! create-instance, update-instance, delete-instance, get-instance and list-instances:
//! flags to requests, responses to text.

use std::collections::BTreeMap;

use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::{
    AuthType, Authentication, ChecksumMode, CreateInstanceRequest, DeleteInstanceRequest,
    GetInstanceRequest, Instance, InstanceSpec, InstanceStatus, ListInstancesRequest, State,
    UpdateInstanceRequest, UpdateInstanceResponse,
};
use pbjson_types::FieldMask;

use super::{Ctx, trackers};
use crate::args::{
    ChecksumArg, CreateArgs, DeleteArgs, GetArgs, Label, ListArgs, SpecFlags, UpdateArgs,
};
use crate::error::CliError;
use crate::output::format::{self, Clock};
use crate::output::table::{Table, key_values};

pub async fn create(ctx: &Ctx, args: &CreateArgs) -> Result<(), CliError> {
    let mut client = InstanceServiceClient::new(ctx.connect().await?);
    let instance = ctx
        .call(create_request(args), |r| client.create_instance(r))
        .await?;
    if !ctx.out.is_table() {
        return ctx.out.message(&instance);
    }
    if args.write.dry_run {
        ctx.out.line(&format!(
            "would create {} (dry run, nothing changed)",
            instance.name
        ))
    } else {
        ctx.out.line(&format!(
            "created {} (revision {})",
            instance.name, instance.revision
        ))
    }
}

pub async fn update(ctx: &Ctx, args: &UpdateArgs) -> Result<(), CliError> {
    let mut client = InstanceServiceClient::new(ctx.connect().await?);
    let response = ctx
        .call(update_request(args), |r| client.update_instance(r))
        .await?;
    if ctx.out.is_table() {
        ctx.out
            .line(&update_summary(&args.name, &response, args.write.dry_run))
    } else {
        ctx.out.message(&response)
    }
}

pub async fn delete(ctx: &Ctx, args: &DeleteArgs) -> Result<(), CliError> {
    let mut client = InstanceServiceClient::new(ctx.connect().await?);
    let request = DeleteInstanceRequest {
        name: args.name.clone(),
        expected_revision: args.revision.unwrap_or(0),
        comment: args.comment.clone().unwrap_or_default(),
    };
    let response = ctx.call(request, |r| client.delete_instance(r)).await?;
    if ctx.out.is_table() {
        ctx.out.line(&format!("deleted {}", args.name))
    } else {
        ctx.out.message(&response)
    }
}

pub async fn get(ctx: &Ctx, args: &GetArgs) -> Result<(), CliError> {
    let mut client = InstanceServiceClient::new(ctx.connect().await?);
    let request = GetInstanceRequest {
        name: args.name.clone(),
    };
    let instance = ctx.call(request, |r| client.get_instance(r)).await?;
    if ctx.out.is_table() {
        ctx.out.text(&instance_view(&instance, &ctx.clock))
    } else {
        ctx.out.message(&instance)
    }
}

pub async fn list(ctx: &Ctx, args: &ListArgs) -> Result<(), CliError> {
    let mut client = InstanceServiceClient::new(ctx.connect().await?);
    let request = ListInstancesRequest {
        label_selector: labels(&args.labels),
    };
    let mut response = ctx.call(request, |r| client.list_instances(r)).await?;
    if !ctx.out.is_table() {
        return ctx.out.message(&response);
    }
    if response.instances.is_empty() {
        // On stderr, so that a script reading stdout finds no rows rather than a message.
        eprintln!("no instances");
        return Ok(());
    }
    response.instances.sort_by(|a, b| a.name.cmp(&b.name));
    ctx.out
        .text(&instances_table(&response.instances, &ctx.clock))
}

pub fn create_request(args: &CreateArgs) -> CreateInstanceRequest {
    let mut spec = InstanceSpec {
        interface: args.interface.clone(),
        vrid: args.vrid,
        virtual_addresses: args.vips.clone(),
        ..Default::default()
    };
    set_spec_flags(&args.spec, &mut spec, &mut Vec::new());
    CreateInstanceRequest {
        name: args.name.clone(),
        spec: Some(spec),
        validate_only: args.write.dry_run,
        comment: args.write.comment.clone().unwrap_or_default(),
    }
}

/// The spec carries only the fields given, and the mask names exactly those: an empty
/// mask would mean "replace the whole spec".
pub fn update_request(args: &UpdateArgs) -> UpdateInstanceRequest {
    let mut spec = InstanceSpec::default();
    let mut mask = Vec::new();
    if let Some(interface) = &args.interface {
        spec.interface.clone_from(interface);
        mask.push("interface");
    }
    if let Some(vrid) = args.vrid {
        spec.vrid = vrid;
        mask.push("vrid");
    }
    if !args.vips.is_empty() {
        spec.virtual_addresses.clone_from(&args.vips);
        mask.push("virtual_addresses");
    }
    set_spec_flags(&args.spec, &mut spec, &mut mask);
    // The undoing flags conflict with the flags they undo (clap enforces it), so no path
    // is pushed twice.
    if args.preempt {
        spec.preempt = Some(true);
        mask.push("preempt");
    }
    if args.enable {
        spec.disabled = false;
        mask.push("disabled");
    }
    if args.no_vmac {
        spec.vmac = false;
        mask.push("vmac");
    }
    if args.clear_peers {
        spec.unicast_peers.clear();
        mask.push("unicast_peers");
    }
    if args.clear_unicast_src {
        spec.unicast_source.clear();
        mask.push("unicast_source");
    }
    if args.no_auth {
        spec.auth = Some(Authentication {
            r#type: AuthType::None as i32,
            ..Default::default()
        });
        mask.push("auth");
    }
    if args.clear_labels {
        spec.labels.clear();
        mask.push("labels");
    }
    if args.clear_trackers {
        spec.trackers.clear();
        mask.push("trackers");
    }
    UpdateInstanceRequest {
        name: args.name.clone(),
        spec: Some(spec),
        update_mask: Some(FieldMask {
            paths: mask.into_iter().map(str::to_owned).collect(),
        }),
        expected_revision: args.revision.unwrap_or(0),
        validate_only: args.write.dry_run,
        comment: args.write.comment.clone().unwrap_or_default(),
    }
}

/// Copies the flags given into `spec` and names each field set in `mask`.
fn set_spec_flags(flags: &SpecFlags, spec: &mut InstanceSpec, mask: &mut Vec<&'static str>) {
    if let Some(version) = flags.vrrp_version {
        spec.version = Some(version);
        mask.push("version");
    }
    if let Some(priority) = flags.priority {
        spec.priority = Some(priority);
        mask.push("priority");
    }
    if let Some(interval) = &flags.advert_interval {
        spec.advert_interval = Some(*interval);
        mask.push("advert_interval");
    }
    if flags.no_preempt {
        spec.preempt = Some(false);
        mask.push("preempt");
    }
    if let Some(delay) = &flags.preempt_delay {
        spec.preempt_delay = Some(*delay);
        mask.push("preempt_delay");
    }
    if let Some(source) = flags.unicast_src {
        spec.unicast_source = source.to_string();
        mask.push("unicast_source");
    }
    if !flags.peers.is_empty() {
        spec.unicast_peers = flags.peers.iter().map(ToString::to_string).collect();
        mask.push("unicast_peers");
    }
    if let Some(password) = &flags.auth_pass {
        spec.auth = Some(Authentication {
            r#type: AuthType::Pass as i32,
            password: password.clone(),
            password_set: false,
        });
        mask.push("auth");
    }
    if flags.vmac {
        spec.vmac = true;
        mask.push("vmac");
    }
    if let Some(repeat) = flags.garp_repeat {
        spec.garp.get_or_insert_default().repeat = Some(repeat);
        mask.push("garp.repeat");
    }
    if let Some(delay) = &flags.garp_delay {
        spec.garp.get_or_insert_default().delay = Some(*delay);
        mask.push("garp.delay");
    }
    if let Some(refresh) = &flags.garp_refresh {
        spec.garp.get_or_insert_default().refresh = Some(*refresh);
        mask.push("garp.refresh");
    }
    if let Some(checksum) = flags.checksum {
        spec.v3_ipv4_checksum = match checksum {
            ChecksumArg::PseudoHeader => ChecksumMode::PseudoHeader,
            ChecksumArg::MessageOnly => ChecksumMode::MessageOnly,
        } as i32;
        mask.push("v3_ipv4_checksum");
    }
    if let Some(description) = &flags.description {
        spec.description.clone_from(description);
        mask.push("description");
    }
    if !flags.labels.is_empty() {
        spec.labels = labels(&flags.labels);
        mask.push("labels");
    }
    if flags.disabled {
        spec.disabled = true;
        mask.push("disabled");
    }
    if !flags.trackers.is_empty() {
        spec.trackers = flags.trackers.trackers();
        mask.push("trackers");
    }
}

fn labels(labels: &[Label]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect()
}

/// "updated web: priority, virtual_addresses (revision 4)", or "unchanged web (revision 3)".
pub fn update_summary(name: &str, response: &UpdateInstanceResponse, dry_run: bool) -> String {
    let revision = response.instance.as_ref().map_or(0, |i| i.revision);
    let fields = response.changed_fields.join(", ");
    match (response.changed, dry_run) {
        (true, false) => format!("updated {name}: {fields} (revision {revision})"),
        (true, true) => format!("would update {name}: {fields} (dry run, nothing changed)"),
        (false, false) => format!("unchanged {name} (revision {revision})"),
        (false, true) => format!("unchanged {name} (dry run)"),
    }
}

/// get-instance's key/value view.
pub fn instance_view(instance: &Instance, clock: &Clock) -> String {
    let spec = instance.spec.clone().unwrap_or_default();
    let status = instance.status.clone().unwrap_or_default();
    let mut rows = vec![
        ("Name", instance.name.clone()),
        (
            "State",
            format!(
                "{} since {}",
                format::state(status.state),
                clock.time(status.state_since.as_ref())
            ),
        ),
        ("Priority", priority_text(&spec, &status, "effective ")),
        ("Master", master_text(&status)),
        ("Interface", spec.interface.clone()),
        ("VRID", spec.vrid.to_string()),
        ("Version", optional(spec.version)),
        ("Virtual IPs", list_or_dash(&spec.virtual_addresses)),
        ("Peers", peers_text(&spec)),
        (
            "Advert interval",
            format::duration(spec.advert_interval.as_ref()),
        ),
        ("Preempt", preempt_text(&spec)),
        (
            "Accept mode",
            spec.accept_mode.map_or("-".to_owned(), yes_no),
        ),
        ("Auth", auth_text(&spec)),
        ("VMAC", yes_no(spec.vmac)),
        ("GARP", garp_text(&spec)),
        ("v3 IPv4 checksum", checksum_text(spec.v3_ipv4_checksum)),
        ("Labels", labels_text(&spec.labels)),
    ];
    if !spec.description.is_empty() {
        rows.push(("Description", spec.description.clone()));
    }
    if spec.disabled {
        rows.push(("Disabled", "yes".to_owned()));
    }
    if let Some(text) = trackers::override_text(spec.priority_override.as_ref(), clock) {
        rows.push(("Override", text));
    }
    if !status.sync_group.is_empty() {
        rows.push(("Sync group", status.sync_group.clone()));
    }
    rows.extend([
        (
            "Revision",
            format!(
                "{} (updated {})",
                instance.revision,
                clock.time(instance.update_time.as_ref())
            ),
        ),
        ("Created", clock.time(instance.create_time.as_ref())),
        (
            "Last reason",
            or_dash(format::reason(status.last_reason.as_ref())),
        ),
        (
            "Timers",
            format!(
                "master down {}, skew {}",
                format::duration(status.master_down_interval.as_ref()),
                format::duration(status.skew_time.as_ref())
            ),
        ),
    ]);
    let counters = status.counters.unwrap_or_default();
    // Only when it happened: most hosts never stall the data plane.
    let by_standby = match counters.adverts_sent_by_standby {
        0 => String::new(),
        n => format!(" ({n} by the standby sender)"),
    };
    rows.push((
        "Counters",
        format!(
            "adverts sent {}{by_standby}, received {}; transitions {}, became master {}; GARPs sent {}",
            counters.adverts_sent,
            counters.adverts_received,
            counters.transitions,
            counters.became_master,
            counters.garps_sent
        ),
    ));
    if !counters.bad_packets.is_empty() {
        let mut bad: Vec<_> = counters.bad_packets.iter().collect();
        bad.sort();
        let bad: Vec<String> = bad.iter().map(|(why, n)| format!("{why} {n}")).collect();
        rows.push(("Bad packets", bad.join(", ")));
    }
    if !status.error.is_empty() {
        rows.push(("Error", status.error.clone()));
    }
    let mut view = key_values(&rows);
    view.push_str(&trackers::table(&spec.trackers, &status.trackers));
    view
}

/// list-instances' table.
pub fn instances_table(instances: &[Instance], clock: &Clock) -> String {
    let mut table = Table::new(&[
        "NAME",
        "STATE",
        "PRIO",
        "INTERFACE",
        "VRID",
        "VIPS",
        "MASTER",
        "SINCE",
    ]);
    for instance in instances {
        let spec = instance.spec.clone().unwrap_or_default();
        let status = instance.status.clone().unwrap_or_default();
        table.push(vec![
            instance.name.clone(),
            format::state(status.state),
            priority_text(&spec, &status, ""),
            spec.interface.clone(),
            spec.vrid.to_string(),
            list_or_dash(&spec.virtual_addresses),
            or_dash(status.master_address.clone()),
            clock.time(status.state_since.as_ref()),
        ]);
    }
    table.render()
}

/// The configured priority, and the effective one when trackers have moved it away:
/// "100", or "100 (effective 80)".
fn priority_text(spec: &InstanceSpec, status: &InstanceStatus, label: &str) -> String {
    match spec.priority {
        Some(p) if status.effective_priority == 0 || status.effective_priority == p => {
            p.to_string()
        }
        Some(p) => format!("{p} ({label}{})", status.effective_priority),
        None => "-".to_owned(),
    }
}

fn master_text(status: &InstanceStatus) -> String {
    if status.master_address.is_empty() {
        return "none seen".to_owned();
    }
    let who = if status.state == State::Master as i32 {
        format!("{} (this router)", status.master_address)
    } else {
        status.master_address.clone()
    };
    format!(
        "{who}, priority {}, adverts every {}",
        status.master_priority,
        format::duration(status.master_advert_interval.as_ref())
    )
}

fn peers_text(spec: &InstanceSpec) -> String {
    let peers = if spec.unicast_peers.is_empty() {
        "multicast".to_owned()
    } else {
        spec.unicast_peers.join(", ")
    };
    if spec.unicast_source.is_empty() {
        peers
    } else {
        format!("{peers} (from {})", spec.unicast_source)
    }
}

fn preempt_text(spec: &InstanceSpec) -> String {
    let delay = spec
        .preempt_delay
        .as_ref()
        .filter(|d| d.seconds != 0 || d.nanos != 0);
    match (spec.preempt, delay) {
        (Some(true), Some(delay)) => format!("yes, after {}", format::duration(Some(delay))),
        (Some(true), None) => "yes".to_owned(),
        (Some(false), _) => "no".to_owned(),
        (None, _) => "-".to_owned(),
    }
}

fn auth_text(spec: &InstanceSpec) -> String {
    match spec
        .auth
        .as_ref()
        .map(|a| (AuthType::try_from(a.r#type), a.password_set))
    {
        Some((Ok(AuthType::Pass), true)) => "password (set)".to_owned(),
        Some((Ok(AuthType::Pass), false)) => "password (not set)".to_owned(),
        Some((Ok(AuthType::None | AuthType::Unspecified), _)) | None => "none".to_owned(),
        Some((Err(_), _)) => "unknown".to_owned(),
    }
}

fn garp_text(spec: &InstanceSpec) -> String {
    let Some(garp) = &spec.garp else {
        return "-".to_owned();
    };
    let refresh = match &garp.refresh {
        Some(every) if every.seconds != 0 || every.nanos != 0 => format!(
            "refresh every {} ({} each)",
            format::duration(Some(every)),
            optional(garp.refresh_repeat)
        ),
        _ => "no refresh".to_owned(),
    };
    format!(
        "{} on becoming master, again after {}; {refresh}",
        optional(garp.repeat),
        format::duration(garp.delay.as_ref())
    )
}

fn checksum_text(mode: i32) -> String {
    match ChecksumMode::try_from(mode) {
        Ok(ChecksumMode::PseudoHeader) => "pseudo-header".to_owned(),
        Ok(ChecksumMode::MessageOnly) => "message-only".to_owned(),
        Ok(ChecksumMode::Unspecified) | Err(_) => "-".to_owned(),
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<_> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    or_dash(pairs.join(", "))
}

fn optional(value: Option<u32>) -> String {
    value.map_or("-".to_owned(), |v| v.to_string())
}

fn list_or_dash(items: &[String]) -> String {
    or_dash(items.join(","))
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;
    use havip_proto::v1::{Counters, GarpSettings, TransitionReason};
    use pbjson_types::{Duration, Timestamp};

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("havipctl").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    fn update(args: &[&str]) -> UpdateInstanceRequest {
        let mut all = vec!["update-instance", "web"];
        all.extend(args);
        match command(&all) {
            Command::UpdateInstance(a) => update_request(&a),
            other => panic!("parsed {other:?}"),
        }
    }

    fn mask(request: &UpdateInstanceRequest) -> Vec<&str> {
        request
            .update_mask
            .as_ref()
            .unwrap()
            .paths
            .iter()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn create_sends_every_flag_given() {
        let Command::CreateInstance(args) = command(&[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--priority",
            "50",
            "--vip",
            "10.0.0.100/24",
            "--version",
            "2",
            "--unicast-src",
            "10.0.0.11",
            "--peer",
            "10.0.0.12",
            "--auth-pass",
            "1111",
            "--no-preempt",
            "--label",
            "service=web",
            "--garp-refresh",
            "1m",
            "--checksum",
            "message-only",
            "--comment",
            "initial setup",
            "--dry-run",
        ]) else {
            panic!("not create")
        };
        let request = create_request(&args);
        assert_eq!(request.name, "web");
        assert!(request.validate_only);
        assert_eq!(request.comment, "initial setup");
        let spec = request.spec.unwrap();
        assert_eq!(
            spec,
            InstanceSpec {
                interface: "eth0".into(),
                vrid: 51,
                version: Some(2),
                priority: Some(50),
                preempt: Some(false),
                virtual_addresses: vec!["10.0.0.100/24".into()],
                unicast_source: "10.0.0.11".into(),
                unicast_peers: vec!["10.0.0.12".into()],
                auth: Some(Authentication {
                    r#type: AuthType::Pass as i32,
                    password: "1111".into(),
                    password_set: false,
                }),
                garp: Some(GarpSettings {
                    refresh: Some(Duration {
                        seconds: 60,
                        nanos: 0
                    }),
                    ..Default::default()
                }),
                v3_ipv4_checksum: ChecksumMode::MessageOnly as i32,
                labels: [("service".to_owned(), "web".to_owned())].into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn create_leaves_unset_fields_to_the_daemon() {
        let Command::CreateInstance(args) = command(&[
            "create-instance",
            "web",
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--vip",
            "10.0.0.100/24",
        ]) else {
            panic!("not create")
        };
        let spec = create_request(&args).spec.unwrap();
        assert_eq!(spec.priority, None);
        assert_eq!(spec.preempt, None);
        assert_eq!(spec.advert_interval, None);
        assert_eq!(spec.garp, None);
    }

    #[test]
    fn update_masks_exactly_the_fields_given() {
        let request = update(&["--priority", "150"]);
        assert_eq!(mask(&request), ["priority"]);
        assert_eq!(request.spec.as_ref().unwrap().priority, Some(150));
        assert_eq!(request.expected_revision, 0);

        let request = update(&[
            "--vip",
            "10.0.0.100/24,10.0.0.101/24",
            "--advert-interval",
            "100ms",
            "--garp-refresh",
            "30s",
            "--garp-repeat",
            "3",
            "--revision",
            "7",
        ]);
        let mut paths = mask(&request);
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "advert_interval",
                "garp.refresh",
                "garp.repeat",
                "virtual_addresses"
            ]
        );
        let spec = request.spec.unwrap();
        assert_eq!(spec.virtual_addresses, ["10.0.0.100/24", "10.0.0.101/24"]);
        assert_eq!(
            spec.advert_interval,
            Some(Duration {
                seconds: 0,
                nanos: 100_000_000
            })
        );
        assert_eq!(spec.garp.unwrap().repeat, Some(3));
        assert_eq!(request.expected_revision, 7);
    }

    #[test]
    fn update_undo_flags_set_the_field_back() {
        let request = update(&[
            "--clear-peers",
            "--clear-unicast-src",
            "--preempt",
            "--enable",
            "--no-auth",
        ]);
        let mut paths = mask(&request);
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "auth",
                "disabled",
                "preempt",
                "unicast_peers",
                "unicast_source"
            ]
        );
        let spec = request.spec.unwrap();
        assert!(spec.unicast_peers.is_empty());
        assert_eq!(spec.preempt, Some(true));
        assert!(!spec.disabled);
        assert_eq!(spec.auth.unwrap().r#type, AuthType::None as i32);
    }

    #[test]
    fn update_labels_replace_the_map() {
        let request = update(&["--label", "env=prod", "--label", "tier=db"]);
        assert_eq!(mask(&request), ["labels"]);
        assert_eq!(
            request.spec.unwrap().labels,
            BTreeMap::from([("env".into(), "prod".into()), ("tier".into(), "db".into())])
        );
        let request = update(&["--clear-labels"]);
        assert_eq!(mask(&request), ["labels"]);
        assert!(request.spec.unwrap().labels.is_empty());
    }

    #[test]
    fn an_update_with_nothing_to_change_is_noticed() {
        let Command::UpdateInstance(args) = command(&["update-instance", "web", "--revision", "3"])
        else {
            panic!("not update")
        };
        assert!(!args.has_changes());
        let Command::UpdateInstance(args) =
            command(&["update-instance", "web", "--description", ""])
        else {
            panic!("not update")
        };
        assert!(args.has_changes());
    }

    #[test]
    fn update_summaries() {
        let response = |changed, fields: &[&str]| UpdateInstanceResponse {
            instance: Some(Instance {
                revision: 4,
                ..Default::default()
            }),
            changed,
            changed_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        };
        assert_eq!(
            update_summary(
                "web",
                &response(true, &["priority", "virtual_addresses"]),
                false
            ),
            "updated web: priority, virtual_addresses (revision 4)"
        );
        assert_eq!(
            update_summary("web", &response(false, &[]), false),
            "unchanged web (revision 4)"
        );
        assert_eq!(
            update_summary("web", &response(true, &["priority"]), true),
            "would update web: priority (dry run, nothing changed)"
        );
    }

    fn sample() -> Instance {
        let t = |seconds| Some(Timestamp { seconds, nanos: 0 });
        let d = |seconds| Some(Duration { seconds, nanos: 0 });
        Instance {
            name: "web".into(),
            spec: Some(InstanceSpec {
                interface: "eth0".into(),
                vrid: 51,
                version: Some(2),
                priority: Some(50),
                advert_interval: d(1),
                preempt: Some(false),
                preempt_delay: d(0),
                accept_mode: Some(true),
                virtual_addresses: vec!["10.0.0.100/24".into()],
                unicast_source: "10.0.0.11".into(),
                unicast_peers: vec!["10.0.0.12".into()],
                auth: Some(Authentication {
                    r#type: AuthType::Pass as i32,
                    password: String::new(),
                    password_set: true,
                }),
                garp: Some(GarpSettings {
                    repeat: Some(5),
                    delay: d(5),
                    refresh: d(0),
                    refresh_repeat: Some(1),
                }),
                v3_ipv4_checksum: ChecksumMode::PseudoHeader as i32,
                labels: [
                    ("service".to_owned(), "web".to_owned()),
                    ("env".to_owned(), "prod".to_owned()),
                ]
                .into(),
                ..Default::default()
            }),
            status: Some(InstanceStatus {
                state: State::Master as i32,
                effective_priority: 40,
                master_address: "10.0.0.11".into(),
                master_priority: 40,
                master_advert_interval: d(1),
                state_since: t(1_795_687_200),
                last_reason: Some(TransitionReason {
                    code: "master_down_timer".into(),
                    description: "master-down timer expired (last master seen: 10.0.0.12)".into(),
                    peer_address: "10.0.0.12".into(),
                }),
                counters: Some(Counters {
                    adverts_sent: 1200,
                    adverts_sent_by_standby: 4,
                    adverts_received: 300,
                    bad_packets: [("bad_ttl".to_owned(), 1), ("bad_checksum".to_owned(), 3)].into(),
                    transitions: 2,
                    garps_sent: 10,
                    became_master: 1,
                }),
                master_down_interval: Some(Duration {
                    seconds: 3,
                    nanos: 800_000_000,
                }),
                skew_time: Some(Duration {
                    seconds: 0,
                    nanos: 800_000_000,
                }),
                error: String::new(),
                ..Default::default()
            }),
            revision: 3,
            create_time: t(1_795_680_000),
            update_time: t(1_795_686_000),
        }
    }

    fn clock() -> Clock {
        Clock {
            now: "2026-11-26T10:03:00Z".parse().unwrap(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn get_instance_view() {
        assert_eq!(
            instance_view(&sample(), &clock()),
            "\
Name:              web
State:             MASTER since 2026-11-26 10:00:00 (3m ago)
Priority:          50 (effective 40)
Master:            10.0.0.11 (this router), priority 40, adverts every 1s
Interface:         eth0
VRID:              51
Version:           2
Virtual IPs:       10.0.0.100/24
Peers:             10.0.0.12 (from 10.0.0.11)
Advert interval:   1s
Preempt:           no
Accept mode:       yes
Auth:              password (set)
VMAC:              no
GARP:              5 on becoming master, again after 5s; no refresh
v3 IPv4 checksum:  pseudo-header
Labels:            env=prod, service=web
Revision:          3 (updated 2026-11-26 09:40:00 (23m ago))
Created:           2026-11-26 08:00:00 (2h ago)
Last reason:       master-down timer expired (last master seen: 10.0.0.12)
Timers:            master down 3s 800ms, skew 800ms
Counters:          adverts sent 1200 (4 by the standby sender), received 300; transitions 2, became master 1; GARPs sent 10
Bad packets:       bad_checksum 3, bad_ttl 1
"
        );
    }

    #[test]
    fn list_instances_table() {
        let mut multicast = sample();
        multicast.name = "db-primary".into();
        let spec = multicast.spec.as_mut().unwrap();
        spec.unicast_peers.clear();
        spec.virtual_addresses = vec!["192.168.10.5/24".into(), "192.168.10.6/24".into()];
        spec.priority = Some(100);
        let status = multicast.status.as_mut().unwrap();
        status.state = State::Backup as i32;
        status.effective_priority = 100;
        status.master_address = "192.168.10.2".into();
        assert_eq!(
            instances_table(&[multicast, sample()], &clock()),
            "\
NAME        STATE   PRIO     INTERFACE  VRID  VIPS                             MASTER        SINCE
db-primary  BACKUP  100      eth0       51    192.168.10.5/24,192.168.10.6/24  192.168.10.2  2026-11-26 10:00:00 (3m ago)
web         MASTER  50 (40)  eth0       51    10.0.0.100/24                    10.0.0.11     2026-11-26 10:00:00 (3m ago)
"
        );
    }
}
