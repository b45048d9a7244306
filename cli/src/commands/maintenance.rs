//! demote, promote, clear-override, disable, enable and report-health: the day-to-day
//! operations on a running instance.

use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::maintenance_service_client::MaintenanceServiceClient;
use havip_proto::v1::{
    ClearOverrideRequest, Instance, InstanceSpec, OverridePriorityRequest, ReportHealthRequest,
    UpdateInstanceRequest,
};
use pbjson_types::FieldMask;

use super::{Ctx, trackers};
use crate::args::{ClearOverrideArgs, OverrideArgs, ReportHealthArgs, ToggleArgs};
use crate::error::CliError;
use crate::output::format;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Demote,
    Promote,
}

pub fn override_request(args: &OverrideArgs) -> OverridePriorityRequest {
    OverridePriorityRequest {
        name: args.name.clone(),
        priority: args.priority,
        duration: args.duration,
        reason: args.reason.clone().unwrap_or_default(),
    }
}

pub async fn override_priority(
    ctx: &Ctx,
    args: &OverrideArgs,
    direction: Direction,
) -> Result<(), CliError> {
    let mut client = MaintenanceServiceClient::new(ctx.connect().await?);
    let request = override_request(args);
    let instance = match direction {
        Direction::Demote => ctx.call(request, |r| client.demote(r)).await?,
        Direction::Promote => ctx.call(request, |r| client.promote(r)).await?,
    };
    if !ctx.out.is_table() {
        return ctx.out.message(&instance);
    }
    let verb = match direction {
        Direction::Demote => "demoted",
        Direction::Promote => "promoted",
    };
    let what = instance
        .spec
        .as_ref()
        .and_then(|s| s.priority_override.as_ref())
        .map_or_else(
            || "the override is not in effect".to_owned(),
            |o| trackers::override_summary(o, &ctx.clock),
        );
    ctx.out.line(&format!(
        "{verb} {}: {what}; now {}",
        instance.name,
        state_text(&instance)
    ))
}

pub async fn clear_override(ctx: &Ctx, args: &ClearOverrideArgs) -> Result<(), CliError> {
    let mut client = MaintenanceServiceClient::new(ctx.connect().await?);
    let request = ClearOverrideRequest {
        name: args.name.clone(),
        reason: args.reason.clone().unwrap_or_default(),
    };
    let instance = ctx.call(request, |r| client.clear_override(r)).await?;
    if !ctx.out.is_table() {
        return ctx.out.message(&instance);
    }
    ctx.out.line(&format!(
        "cleared the override of {}; now {}",
        instance.name,
        state_text(&instance)
    ))
}

/// "MASTER, priority 150".
fn state_text(instance: &Instance) -> String {
    let status = instance.status.clone().unwrap_or_default();
    format!(
        "{}, priority {}",
        format::state(status.state),
        status.effective_priority
    )
}

/// disable and enable: an update of `disabled` alone.
pub fn toggle_request(args: &ToggleArgs, disabled: bool) -> UpdateInstanceRequest {
    UpdateInstanceRequest {
        name: args.name.clone(),
        spec: Some(InstanceSpec {
            disabled,
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["disabled".to_owned()],
        }),
        expected_revision: 0,
        validate_only: false,
        comment: args.comment.clone().unwrap_or_default(),
    }
}

pub async fn toggle(ctx: &Ctx, args: &ToggleArgs, disabled: bool) -> Result<(), CliError> {
    let mut client = InstanceServiceClient::new(ctx.connect().await?);
    let response = ctx
        .call(toggle_request(args, disabled), |r| {
            client.update_instance(r)
        })
        .await?;
    if !ctx.out.is_table() {
        return ctx.out.message(&response);
    }
    let revision = response.instance.as_ref().map_or(0, |i| i.revision);
    let line = match (disabled, response.changed) {
        (true, true) => format!("disabled {} (revision {revision})", args.name),
        (false, true) => format!("enabled {} (revision {revision})", args.name),
        (true, false) => format!("{} was disabled already", args.name),
        (false, false) => format!("{} was enabled already", args.name),
    };
    ctx.out.line(&line)
}

pub fn report_request(args: &ReportHealthArgs) -> ReportHealthRequest {
    ReportHealthRequest {
        check: args.check.clone(),
        // clap makes exactly one of --healthy and --failing present.
        healthy: args.healthy,
        ttl: Some(args.ttl),
        detail: args.detail.clone().unwrap_or_default(),
    }
}

pub async fn report_health(ctx: &Ctx, args: &ReportHealthArgs) -> Result<(), CliError> {
    let mut client = MaintenanceServiceClient::new(ctx.connect().await?);
    let response = ctx
        .call(report_request(args), |r| client.report_health(r))
        .await?;
    if !ctx.out.is_table() {
        return ctx.out.message(&response);
    }
    if response.instances.is_empty() {
        // Not an error: the reporter may start before the instance that follows it is
        // created. But a typo in the check name would look the same, so say it.
        eprintln!(
            "warning: no instance follows check {}; trackers follow it with \
             --track-report NAME:{}",
            args.check, args.check
        );
        return Ok(());
    }
    let health = if args.healthy { "healthy" } else { "failing" };
    ctx.out.line(&format!(
        "reported {} {health} for {}; followed by {}",
        args.check,
        format::duration(Some(&args.ttl)),
        response.instances.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("havipctl").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    #[test]
    fn demote_sends_what_was_given_and_leaves_the_rest_to_havipd() {
        let Command::Demote(args) =
            command(&["demote", "web", "--for", "1h", "--reason", "kernel update"])
        else {
            panic!("not demote")
        };
        let request = override_request(&args);
        assert_eq!(request.name, "web");
        assert_eq!(request.priority, None, "havipd's default: 1 for demote");
        assert_eq!(request.duration.unwrap().seconds, 3600);
        assert_eq!(request.reason, "kernel update");

        let Command::Promote(args) = command(&["promote", "web", "--priority", "200"]) else {
            panic!("not promote")
        };
        let request = override_request(&args);
        assert_eq!(request.priority, Some(200));
        assert_eq!(request.duration, None, "until cleared");
    }

    #[test]
    fn disable_and_enable_change_only_disabled() {
        let Command::Disable(args) = command(&["disable", "web", "--comment", "bye"]) else {
            panic!("not disable")
        };
        let request = toggle_request(&args, true);
        assert_eq!(request.update_mask.unwrap().paths, ["disabled"]);
        assert!(request.spec.unwrap().disabled);
        assert_eq!(request.comment, "bye");
    }

    #[test]
    fn report_health_needs_exactly_one_verdict() {
        let Command::ReportHealth(args) = command(&["report-health", "repl", "--failing"]) else {
            panic!("not report-health")
        };
        let request = report_request(&args);
        assert!(!request.healthy);
        assert_eq!(request.ttl.unwrap().seconds, 30, "the default ttl");
        for bad in [
            &["report-health", "repl"][..],
            &["report-health", "repl", "--healthy", "--failing"],
            &["report-health", "repl", "--healthy", "--ttl", "soon"],
        ] {
            let err = Cli::try_parse_from(std::iter::once("havipctl").chain(bad.iter().copied()))
                .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
