//! apply: makes havipd's instances match a file of `{name, spec}` entries. Every entry's
//! spec replaces the instance's whole spec, guarded by the revision just read, so applying
//! the same file twice changes nothing the second time.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::{
    CreateInstanceRequest, DeleteInstanceRequest, GetInstanceRequest, InstanceSpec,
    ListInstancesRequest, UpdateInstanceRequest,
};
use serde::{Deserialize, Serialize};
use tonic::Code;
use tonic::transport::Channel;

use super::Ctx;
use crate::args::ApplyArgs;
use crate::error::CliError;

/// One instance as the file describes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub spec: InstanceSpec,
}

/// What apply did (or, with --dry-run, would do) to one instance.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub name: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    pub dry_run: bool,
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
    /// "created web", "updated web (priority, virtual_addresses)", "would delete old", …
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
        if self.changed_fields.is_empty() {
            format!("{verb} {}", self.name)
        } else {
            format!("{verb} {} ({})", self.name, self.changed_fields.join(", "))
        }
    }
}

pub async fn run(ctx: &Ctx, args: &ApplyArgs) -> Result<(), CliError> {
    let path = if args.file == "-" {
        "<stdin>"
    } else {
        args.file.as_str()
    };
    let entries = parse(path, &read(&args.file, path)?)?;
    if args.prune && entries.is_empty() {
        return Err(CliError::BadFile {
            path: path.to_owned(),
            message: "has no entries; refusing to --prune, which would delete every instance"
                .to_owned(),
        });
    }

    let mut client = InstanceServiceClient::new(ctx.connect().await?);
    let mut failed = 0;
    for (index, entry) in entries.iter().enumerate() {
        match apply_entry(ctx, &mut client, entry, args).await {
            Ok(outcome) => show(ctx, &outcome)?,
            Err(source) => {
                failed += 1;
                CliError::Entry {
                    path: path.to_owned(),
                    number: index + 1,
                    name: entry.name.clone(),
                    source: Box::new(source),
                }
                .report();
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} of {} entries failed{}",
            entries.len(),
            if args.prune {
                "; nothing was pruned"
            } else {
                ""
            }
        )));
    }
    if args.prune {
        prune(ctx, &mut client, &entries, args).await?;
    }
    if args.dry_run && ctx.out.is_table() {
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
pub fn parse(path: &str, text: &str) -> Result<Vec<Entry>, CliError> {
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
                "expected a list of entries, each with a name and a spec (see 'havipctl apply --help')".to_owned(),
            ));
        }
    };

    let mut entries = Vec::with_capacity(items.len());
    let mut numbers: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let number = index + 1;
        let name = item
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unnamed")
            .to_owned();
        let entry: Entry = serde_path_to_error::deserialize(item).map_err(|e| CliError::Entry {
            path: path.to_owned(),
            number,
            name: name.clone(),
            source: Box::new(CliError::Invalid(field_error(&e))),
        })?;
        if let Some(first) = numbers.insert(entry.name.clone(), number) {
            return Err(bad_file(format!(
                "entries {first} and {number} both describe {}",
                entry.name
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
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

async fn apply_entry(
    ctx: &Ctx,
    client: &mut InstanceServiceClient<Channel>,
    entry: &Entry,
    args: &ApplyArgs,
) -> Result<Outcome, CliError> {
    let comment = args.comment.clone().unwrap_or_default();
    let outcome = |action, changed_fields| Outcome {
        name: entry.name.clone(),
        action,
        changed_fields,
        dry_run: args.dry_run,
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
                validate_only: args.dry_run,
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
                validate_only: args.dry_run,
                comment,
            };
            ctx.call(request, |r| client.create_instance(r)).await?;
            Ok(outcome(Action::Created, Vec::new()))
        }
        Err(e) => Err(e),
    }
}

async fn prune(
    ctx: &Ctx,
    client: &mut InstanceServiceClient<Channel>,
    entries: &[Entry],
    args: &ApplyArgs,
) -> Result<(), CliError> {
    let keep: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
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
        if !args.dry_run {
            let request = DeleteInstanceRequest {
                name: instance.name.clone(),
                expected_revision: instance.revision,
                comment: args.comment.clone().unwrap_or_default(),
            };
            ctx.call(request, |r| client.delete_instance(r))
                .await
                .map_err(|e| CliError::Prune {
                    name: instance.name.clone(),
                    source: Box::new(e),
                })?;
        }
        show(
            ctx,
            &Outcome {
                name: instance.name,
                action: Action::Deleted,
                changed_fields: Vec::new(),
                dry_run: args.dry_run,
            },
        )?;
    }
    Ok(())
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

    fn error_lines(result: Result<Vec<Entry>, CliError>) -> Vec<String> {
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
        .unwrap();
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
        let entries = parse("help.yaml", &example).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].spec.unicast_peers, ["10.0.0.12"]);
        assert_eq!(entries[0].spec.auth.as_ref().unwrap().password, "1111");
    }

    #[test]
    fn json_files_parse_as_json() {
        let entries = parse(
            "all.json",
            r#"[{"name": "web", "spec": {"interface": "eth0", "vrid": 51, "virtualAddresses": ["10.0.0.100/24"]}}]"#,
        )
        .unwrap();
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
    }

    #[test]
    fn outcome_lines() {
        let outcome = |action, fields: &[&str], dry_run| Outcome {
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
            r#"{"name":"web","action":"updated","changedFields":["priority"],"dryRun":false}"#
        );
    }
}
