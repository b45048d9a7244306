//! apply: makes havipd's instances and sync groups match a file of entries, each a name
//! with a `spec` (an instance) or a `sync_group`. Every entry replaces what it names as a
//! whole, guarded by the revision just read, so applying the same file twice changes
//! nothing the second time. import-keepalived --apply comes through here too.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::sync_group_service_client::SyncGroupServiceClient;
use havip_proto::v1::{
    CreateInstanceRequest, CreateSyncGroupRequest, DeleteInstanceRequest, DeleteSyncGroupRequest,
    GetInstanceRequest, GetSyncGroupRequest, InstanceSpec, ListInstancesRequest,
    ListSyncGroupsRequest, SyncGroup, UpdateInstanceRequest, UpdateSyncGroupRequest,
};
use serde::{Deserialize, Serialize};
use tonic::Code;
use tonic::transport::Channel;

use super::Ctx;
use crate::args::ApplyArgs;
use crate::error::CliError;

/// A whole file: its instances and its sync groups, each with its entry number.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Document {
    pub instances: Vec<Entry>,
    pub sync_groups: Vec<GroupEntry>,
}

impl Document {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.sync_groups.is_empty()
    }

    fn len(&self) -> usize {
        self.instances.len() + self.sync_groups.len()
    }
}

/// One instance as the file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Counted from 1 in the file, as people count.
    pub number: usize,
    pub name: String,
    pub spec: InstanceSpec,
}

/// One sync group as the file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEntry {
    pub number: usize,
    pub name: String,
    pub instances: Vec<String>,
}

/// An entry as written: a name and exactly one of the two bodies.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<InstanceSpec>,
    #[serde(default, alias = "syncGroup", skip_serializing_if = "Option::is_none")]
    pub sync_group: Option<GroupBody>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    pub instances: Vec<String>,
}

/// What apply did (or, with --dry-run, would do) to one instance or sync group.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Instance,
    SyncGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

impl Outcome {
    /// "created web", "updated web (priority, virtual_addresses)", "would delete old",
    /// "created sync group db", …
    pub fn text(&self) -> String {
        let verb = match (self.action, self.dry_run) {
            (Action::Created, false) => "created",
            (Action::Created, true) => "would create",
            (Action::Updated, false) => "updated",
            (Action::Updated, true) => "would update",
            (Action::Unchanged, _) => "unchanged",
            (Action::Deleted, false) => "deleted",
            (Action::Deleted, true) => "would delete",
        };
        let what = match self.kind {
            Kind::Instance => self.name.clone(),
            Kind::SyncGroup => format!("sync group {}", self.name),
        };
        if self.changed_fields.is_empty() {
            format!("{verb} {what}")
        } else {
            format!("{verb} {what} ({})", self.changed_fields.join(", "))
        }
    }
}

/// How to apply: the flags of apply -f, which import-keepalived --apply shares.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub prune: bool,
    pub dry_run: bool,
    pub comment: Option<String>,
}

pub async fn run(ctx: &Ctx, args: &ApplyArgs) -> Result<(), CliError> {
    let path = if args.file == "-" {
        "<stdin>"
    } else {
        args.file.as_str()
    };
    let document = parse(path, &read(&args.file, path)?)?;
    let options = Options {
        prune: args.prune,
        dry_run: args.dry_run,
        comment: args.comment.clone(),
    };
    apply(ctx, path, &document, &options).await
}

/// Applies a parsed document: instances in file order, then sync groups (their members
/// must exist first), then, with prune and only if everything else worked, deletes the
/// sync groups and then the instances that the document does not name.
pub async fn apply(
    ctx: &Ctx,
    path: &str,
    document: &Document,
    options: &Options,
) -> Result<(), CliError> {
    if options.prune && document.is_empty() {
        return Err(CliError::BadFile {
            path: path.to_owned(),
            message: "has no entries; refusing to --prune, which would delete every instance"
                .to_owned(),
        });
    }

    let channel = ctx.connect().await?;
    let mut instances = InstanceServiceClient::new(channel.clone());
    let mut groups = SyncGroupServiceClient::new(channel);
    let mut failed = 0;
    let mut report = |number: usize, name: &str, source: CliError| {
        failed += 1;
        CliError::Entry {
            path: path.to_owned(),
            number,
            name: name.to_owned(),
            source: Box::new(source),
        }
        .report();
    };
    for entry in &document.instances {
        match apply_instance(ctx, &mut instances, entry, options).await {
            Ok(outcome) => show(ctx, &outcome)?,
            Err(source) => report(entry.number, &entry.name, source),
        }
    }
    for entry in &document.sync_groups {
        match apply_group(ctx, &mut groups, entry, options).await {
            Ok(outcome) => show(ctx, &outcome)?,
            Err(source) => report(entry.number, &entry.name, source),
        }
    }
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} of {} entries failed{}",
            document.len(),
            if options.prune {
                "; nothing was pruned"
            } else {
                ""
            }
        )));
    }
    if options.prune {
        prune_groups(ctx, &mut groups, document, options).await?;
        prune_instances(ctx, &mut instances, document, options).await?;
    }
    if options.dry_run && ctx.out.is_table() {
        eprintln!("dry run: nothing was changed");
    }
    Ok(())
}

fn read(file: &str, path: &str) -> Result<String, CliError> {
    let read_error = |source| CliError::ReadFile {
        path: path.to_owned(),
        source,
    };
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(read_error)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).map_err(read_error)
    }
}

/// Checks the whole file before anything is sent, so that a typo in the last entry does
/// not leave the first ones applied.
pub fn parse(path: &str, text: &str) -> Result<Document, CliError> {
    let bad_file = |message: String| CliError::BadFile {
        path: path.to_owned(),
        message,
    };
    // JSON is YAML too, but serde_json explains JSON mistakes better.
    let document: serde_json::Value = if path.ends_with(".json") {
        serde_json::from_str(text).map_err(|e| bad_file(e.to_string()))?
    } else {
        yaml_serde::from_str(text).map_err(|e| bad_file(e.to_string()))?
    };
    let items = match document {
        serde_json::Value::Array(items) => items,
        // A file with nothing but comments.
        serde_json::Value::Null => Vec::new(),
        _ => {
            return Err(bad_file(
                "expected a list of entries, each a name with a spec or a sync_group (see 'havipctl apply --help')".to_owned(),
            ));
        }
    };

    let mut document = Document::default();
    let mut instance_numbers: HashMap<String, usize> = HashMap::new();
    let mut group_numbers: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let number = index + 1;
        let name = item
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unnamed")
            .to_owned();
        let entry_error = |message: String| CliError::Entry {
            path: path.to_owned(),
            number,
            name: name.clone(),
            source: Box::new(CliError::Invalid(message)),
        };
        let raw: RawEntry =
            serde_path_to_error::deserialize(item).map_err(|e| entry_error(field_error(&e)))?;
        let (numbers, kind) = match (raw.spec, raw.sync_group) {
            (Some(spec), None) => {
                document.instances.push(Entry {
                    number,
                    name: raw.name.clone(),
                    spec,
                });
                (&mut instance_numbers, "")
            }
            (None, Some(group)) => {
                document.sync_groups.push(GroupEntry {
                    number,
                    name: raw.name.clone(),
                    instances: group.instances,
                });
                (&mut group_numbers, "sync group ")
            }
            (Some(_), Some(_)) => {
                return Err(entry_error(
                    "has both a spec and a sync_group; an entry is one or the other".to_owned(),
                ));
            }
            (None, None) => {
                return Err(entry_error(
                    "needs a spec (an instance) or a sync_group (a sync group)".to_owned(),
                ));
            }
        };
        if let Some(first) = numbers.insert(raw.name.clone(), number) {
            return Err(bad_file(format!(
                "entries {first} and {number} both describe {kind}{}",
                raw.name
            )));
        }
    }
    Ok(document)
}

/// "spec.vrid: invalid type: string \"x\", expected u32"; without the path at the top.
fn field_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path == "." {
        e.inner().to_string()
    } else {
        format!("{path}: {}", e.inner())
    }
}

async fn apply_instance(
    ctx: &Ctx,
    client: &mut InstanceServiceClient<Channel>,
    entry: &Entry,
    options: &Options,
) -> Result<Outcome, CliError> {
    let comment = options.comment.clone().unwrap_or_default();
    let outcome = |action, changed_fields| Outcome {
        kind: Kind::Instance,
        name: entry.name.clone(),
        action,
        changed_fields,
        dry_run: options.dry_run,
    };
    let get = GetInstanceRequest {
        name: entry.name.clone(),
    };
    match ctx.call(get, |r| client.get_instance(r)).await {
        Ok(current) => {
            let request = UpdateInstanceRequest {
                name: entry.name.clone(),
                spec: Some(entry.spec.clone()),
                // No mask: the file's spec replaces the whole spec.
                update_mask: None,
                // Refuses the update if someone changed the instance since it was read.
                expected_revision: current.revision,
                validate_only: options.dry_run,
                comment,
            };
            let response = ctx.call(request, |r| client.update_instance(r)).await?;
            Ok(if response.changed {
                outcome(Action::Updated, response.changed_fields)
            } else {
                outcome(Action::Unchanged, Vec::new())
            })
        }
        Err(e) if e.status().is_some_and(|s| s.code() == Code::NotFound) => {
            let request = CreateInstanceRequest {
                name: entry.name.clone(),
                spec: Some(entry.spec.clone()),
                validate_only: options.dry_run,
                comment,
            };
            ctx.call(request, |r| client.create_instance(r)).await?;
            Ok(outcome(Action::Created, Vec::new()))
        }
        Err(e) => Err(e),
    }
}

/// Sync groups have no validate_only: a dry run reads the group and only reports.
async fn apply_group(
    ctx: &Ctx,
    client: &mut SyncGroupServiceClient<Channel>,
    entry: &GroupEntry,
    options: &Options,
) -> Result<Outcome, CliError> {
    let comment = options.comment.clone().unwrap_or_default();
    let outcome = |action, changed_fields| Outcome {
        kind: Kind::SyncGroup,
        name: entry.name.clone(),
        action,
        changed_fields,
        dry_run: options.dry_run,
    };
    let group = SyncGroup {
        name: entry.name.clone(),
        instances: entry.instances.clone(),
        revision: 0,
    };
    let get = GetSyncGroupRequest {
        name: entry.name.clone(),
    };
    match ctx.call(get, |r| client.get_sync_group(r)).await {
        Ok(current) if current.instances == entry.instances => {
            Ok(outcome(Action::Unchanged, Vec::new()))
        }
        Ok(current) => {
            if !options.dry_run {
                let request = UpdateSyncGroupRequest {
                    group: Some(group),
                    expected_revision: current.revision,
                    comment,
                };
                ctx.call(request, |r| client.update_sync_group(r)).await?;
            }
            Ok(outcome(Action::Updated, vec!["instances".to_owned()]))
        }
        Err(e) if e.status().is_some_and(|s| s.code() == Code::NotFound) => {
            if !options.dry_run {
                let request = CreateSyncGroupRequest {
                    group: Some(group),
                    comment,
                };
                ctx.call(request, |r| client.create_sync_group(r)).await?;
            }
            Ok(outcome(Action::Created, Vec::new()))
        }
        Err(e) => Err(e),
    }
}

/// First, because a group may hold an instance that is about to be pruned.
async fn prune_groups(
    ctx: &Ctx,
    client: &mut SyncGroupServiceClient<Channel>,
    document: &Document,
    options: &Options,
) -> Result<(), CliError> {
    let keep: HashSet<&str> = document
        .sync_groups
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let listed = ctx
        .call(ListSyncGroupsRequest {}, |r| client.list_sync_groups(r))
        .await?;
    let mut doomed: Vec<_> = listed
        .groups
        .into_iter()
        .filter(|g| !keep.contains(g.name.as_str()))
        .map(|g| g.name)
        .collect();
    doomed.sort();
    for name in doomed {
        if !options.dry_run {
            let request = DeleteSyncGroupRequest {
                name: name.clone(),
                comment: options.comment.clone().unwrap_or_default(),
            };
            ctx.call(request, |r| client.delete_sync_group(r))
                .await
                .map_err(|e| CliError::Prune {
                    name: format!("sync group {name}"),
                    source: Box::new(e),
                })?;
        }
        show(ctx, &deleted(Kind::SyncGroup, name, options))?;
    }
    Ok(())
}

async fn prune_instances(
    ctx: &Ctx,
    client: &mut InstanceServiceClient<Channel>,
    document: &Document,
    options: &Options,
) -> Result<(), CliError> {
    let keep: HashSet<&str> = document.instances.iter().map(|e| e.name.as_str()).collect();
    let listed = ctx
        .call(ListInstancesRequest::default(), |r| {
            client.list_instances(r)
        })
        .await?;
    let mut doomed: Vec<_> = listed
        .instances
        .into_iter()
        .filter(|i| !keep.contains(i.name.as_str()))
        .collect();
    doomed.sort_by(|a, b| a.name.cmp(&b.name));
    for instance in doomed {
        // DeleteInstance has no validate_only: a dry run only reports.
        if !options.dry_run {
            let request = DeleteInstanceRequest {
                name: instance.name.clone(),
                expected_revision: instance.revision,
                comment: options.comment.clone().unwrap_or_default(),
            };
            ctx.call(request, |r| client.delete_instance(r))
                .await
                .map_err(|e| CliError::Prune {
                    name: instance.name.clone(),
                    source: Box::new(e),
                })?;
        }
        show(ctx, &deleted(Kind::Instance, instance.name, options))?;
    }
    Ok(())
}

fn deleted(kind: Kind, name: String, options: &Options) -> Outcome {
    Outcome {
        kind,
        name,
        action: Action::Deleted,
        changed_fields: Vec::new(),
        dry_run: options.dry_run,
    }
}

fn show(ctx: &Ctx, outcome: &Outcome) -> Result<(), CliError> {
    if ctx.out.is_table() {
        ctx.out.line(&outcome.text())
    } else {
        ctx.out.record(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_lines(result: Result<Document, CliError>) -> Vec<String> {
        result.map(|_| ()).unwrap_err().report_lines()
    }

    #[test]
    fn yaml_entries_take_either_spelling_of_field_names() {
        let entries = parse(
            "all.yaml",
            "
# two routers' worth of config
- name: web
  spec:
    interface: eth0
    vrid: 51
    virtual_addresses: [10.0.0.100/24]
    advertInterval: 0.100s
    unicastPeers: [10.0.0.12]
    auth: {type: AUTH_TYPE_PASS, password: '1111'}
- name: db
  spec: {interface: eth1, vrid: 52, virtualAddresses: ['192.168.1.5/24'], preempt: false}
",
        )
        .unwrap()
        .instances;
        assert_eq!(entries.len(), 2);
        let web = &entries[0].spec;
        assert_eq!(web.vrid, 51);
        assert_eq!(web.virtual_addresses, ["10.0.0.100/24"]);
        assert_eq!(web.advert_interval.unwrap().nanos, 100_000_000);
        assert_eq!(web.auth.as_ref().unwrap().password, "1111");
        assert_eq!(entries[1].name, "db");
        assert_eq!(entries[1].spec.preempt, Some(false));
    }

    #[test]
    fn the_example_in_the_help_parses() {
        let help = crate::args::APPLY_EXAMPLES;
        let start = help.find("  - name:").unwrap();
        let end = start + help[start..].find("\n\n").unwrap();
        let example: String = help[start..end]
            .lines()
            .map(|line| format!("{}\n", line.strip_prefix("  ").unwrap()))
            .collect();
        let document = parse("help.yaml", &example).unwrap();
        let entries = &document.instances;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].spec.unicast_peers, ["10.0.0.12"]);
        assert_eq!(entries[0].spec.auth.as_ref().unwrap().password, "1111");
        assert_eq!(entries[0].spec.trackers.len(), 2);
        assert_eq!(entries[0].spec.trackers[1].weight, -20);
        assert_eq!(
            document.sync_groups,
            [GroupEntry {
                number: 2,
                name: "db".into(),
                instances: vec!["web".into(), "mysql-vip".into()]
            }]
        );
    }

    #[test]
    fn json_files_parse_as_json() {
        let entries = parse(
            "all.json",
            r#"[{"name": "web", "spec": {"interface": "eth0", "vrid": 51, "virtualAddresses": ["10.0.0.100/24"]}}]"#,
        )
        .unwrap()
        .instances;
        assert_eq!(entries[0].spec.interface, "eth0");
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let text = "
- name: web
  spec: {interface: eth0, vrid: 51}
- name: db
  spec: {interface: eth1, vrid: fifty-two}
";
        let lines = error_lines(parse("all.yaml", text));
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("error: all.yaml: entry 2 (db): spec.vrid: invalid"),
            "{lines:?}"
        );

        let lines = error_lines(parse("all.yaml", "- name: web\n  spec: {vird: 51}\n"));
        assert!(
            lines[0].starts_with("error: all.yaml: entry 1 (web): spec.vird: unknown field `vird`"),
            "{lines:?}"
        );
    }

    #[test]
    fn malformed_files_are_refused_whole() {
        let lines = error_lines(parse("all.yaml", "name: web\nspec: {}\n"));
        assert!(lines[0].contains("expected a list of entries"), "{lines:?}");
        let lines = error_lines(parse("all.yaml", "- [unclosed\n"));
        assert!(lines[0].starts_with("error: all.yaml: "), "{lines:?}");
        let twice = "- {name: web, spec: {vrid: 1}}\n- {name: db, spec: {vrid: 2}}\n- {name: web, spec: {vrid: 3}}\n";
        assert_eq!(
            error_lines(parse("all.yaml", twice)),
            ["error: all.yaml: entries 1 and 3 both describe web"]
        );
        assert!(parse("all.yaml", "# nothing yet\n").unwrap().is_empty());
        let both = "- {name: db, spec: {vrid: 1}, sync_group: {instances: [a]}}\n";
        assert_eq!(
            error_lines(parse("all.yaml", both)),
            [
                "error: all.yaml: entry 1 (db): has both a spec and a sync_group; an entry is one or the other"
            ]
        );
        assert_eq!(
            error_lines(parse("all.yaml", "- {name: db}\n")),
            [
                "error: all.yaml: entry 1 (db): needs a spec (an instance) or a sync_group (a sync group)"
            ]
        );
        // An instance and a group may share a name; two groups may not.
        let groups = "- {name: db, spec: {vrid: 1}}\n- {name: db, syncGroup: {instances: [db]}}\n- {name: db, sync_group: {instances: [x]}}\n";
        assert_eq!(
            error_lines(parse("all.yaml", groups)),
            ["error: all.yaml: entries 2 and 3 both describe sync group db"]
        );
    }

    #[test]
    fn outcome_lines() {
        let outcome = |action, fields: &[&str], dry_run| Outcome {
            kind: Kind::Instance,
            name: "web".into(),
            action,
            changed_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            dry_run,
        };
        assert_eq!(outcome(Action::Created, &[], false).text(), "created web");
        assert_eq!(
            outcome(Action::Updated, &["priority", "virtual_addresses"], false).text(),
            "updated web (priority, virtual_addresses)"
        );
        assert_eq!(
            outcome(Action::Unchanged, &[], true).text(),
            "unchanged web"
        );
        assert_eq!(
            outcome(Action::Deleted, &[], true).text(),
            "would delete web"
        );
        assert_eq!(
            serde_json::to_string(&outcome(Action::Updated, &["priority"], false)).unwrap(),
            r#"{"kind":"instance","name":"web","action":"updated","changedFields":["priority"],"dryRun":false}"#
        );
        let group = Outcome {
            kind: Kind::SyncGroup,
            name: "db".into(),
            action: Action::Created,
            changed_fields: Vec::new(),
            dry_run: true,
        };
        assert_eq!(group.text(), "would create sync group db");
        assert_eq!(
            serde_json::to_string(&group).unwrap(),
            r#"{"kind":"syncGroup","name":"db","action":"created","dryRun":true}"#
        );
    }
}
