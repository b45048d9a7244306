//! sync-group create, update, delete, get and list.

use havip_proto::v1::sync_group_service_client::SyncGroupServiceClient;
use havip_proto::v1::{
    CreateSyncGroupRequest, DeleteSyncGroupRequest, GetSyncGroupRequest, ListSyncGroupsRequest,
    SyncGroup, UpdateSyncGroupRequest,
};

use super::Ctx;
use crate::args::SyncGroupCommand;
use crate::error::CliError;
use crate::output::table::{Table, key_values};

pub async fn run(ctx: &Ctx, command: &SyncGroupCommand) -> Result<(), CliError> {
    let mut client = SyncGroupServiceClient::new(ctx.connect().await?);
    match command {
        SyncGroupCommand::Create(args) => {
            let request = CreateSyncGroupRequest {
                group: Some(SyncGroup {
                    name: args.name.clone(),
                    instances: args.instances.clone(),
                    revision: 0,
                }),
                comment: args.comment.clone().unwrap_or_default(),
            };
            let group = ctx.call(request, |r| client.create_sync_group(r)).await?;
            written(ctx, "created", &group)
        }
        SyncGroupCommand::Update(args) => {
            let request = UpdateSyncGroupRequest {
                group: Some(SyncGroup {
                    name: args.group.name.clone(),
                    instances: args.group.instances.clone(),
                    revision: 0,
                }),
                expected_revision: args.revision.unwrap_or(0),
                comment: args.group.comment.clone().unwrap_or_default(),
            };
            let group = ctx.call(request, |r| client.update_sync_group(r)).await?;
            written(ctx, "updated", &group)
        }
        SyncGroupCommand::Delete(args) => {
            let request = DeleteSyncGroupRequest {
                name: args.name.clone(),
                comment: args.comment.clone().unwrap_or_default(),
            };
            let response = ctx.call(request, |r| client.delete_sync_group(r)).await?;
            if ctx.out.is_table() {
                ctx.out.line(&format!("deleted sync group {}", args.name))
            } else {
                ctx.out.message(&response)
            }
        }
        SyncGroupCommand::Get(args) => {
            let request = GetSyncGroupRequest {
                name: args.name.clone(),
            };
            let group = ctx.call(request, |r| client.get_sync_group(r)).await?;
            if ctx.out.is_table() {
                ctx.out.text(&group_view(&group))
            } else {
                ctx.out.message(&group)
            }
        }
        SyncGroupCommand::List => {
            let mut response = ctx
                .call(ListSyncGroupsRequest {}, |r| client.list_sync_groups(r))
                .await?;
            if !ctx.out.is_table() {
                return ctx.out.message(&response);
            }
            if response.groups.is_empty() {
                // On stderr, so that a script reading stdout finds no rows.
                eprintln!("no sync groups");
                return Ok(());
            }
            response.groups.sort_by(|a, b| a.name.cmp(&b.name));
            ctx.out.text(&groups_table(&response.groups))
        }
    }
}

fn written(ctx: &Ctx, verb: &str, group: &SyncGroup) -> Result<(), CliError> {
    if ctx.out.is_table() {
        ctx.out.line(&format!(
            "{verb} sync group {}: {} (revision {})",
            group.name,
            group.instances.join(", "),
            group.revision
        ))
    } else {
        ctx.out.message(group)
    }
}

pub fn group_view(group: &SyncGroup) -> String {
    key_values(&[
        ("Name", group.name.clone()),
        ("Instances", group.instances.join(", ")),
        ("Revision", group.revision.to_string()),
    ])
}

pub fn groups_table(groups: &[SyncGroup]) -> String {
    let mut table = Table::new(&["NAME", "INSTANCES", "REVISION"]);
    for group in groups {
        table.push(vec![
            group.name.clone(),
            group.instances.join(","),
            group.revision.to_string(),
        ]);
    }
    table.render()
}
