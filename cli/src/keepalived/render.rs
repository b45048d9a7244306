//! An import in the file format of `havipctl apply -f`: a YAML list with a comment naming
//! the keepalived block of each entry, or the same list as JSON.

use crate::commands::apply::{GroupBody, RawEntry};

use super::Import;

fn entries(import: &Import) -> Vec<(String, RawEntry)> {
    let instances = import.instances.iter().map(|i| {
        (
            format!("vrrp_instance {} ({})", i.keepalived_name, i.location),
            RawEntry {
                name: i.name.clone(),
                spec: Some(i.spec.clone()),
                sync_group: None,
            },
        )
    });
    let groups = import.sync_groups.iter().map(|g| {
        (
            format!("vrrp_sync_group {} ({})", g.keepalived_name, g.location),
            RawEntry {
                name: g.name.clone(),
                spec: None,
                sync_group: Some(GroupBody {
                    instances: g.instances.clone(),
                }),
            },
        )
    });
    instances.chain(groups).collect()
}

/// The YAML file; `source` names the keepalived file in its first line.
pub fn to_yaml(import: &Import, source: &str) -> Result<String, yaml_serde::Error> {
    let mut out = format!(
        "# havip instances and sync groups imported from {source} by havipctl \
         import-keepalived.\n# Apply with: havipctl apply -f FILE (see 'havipctl apply --help').\n"
    );
    if import.instances.is_empty() && import.sync_groups.is_empty() {
        out.push_str("# The configuration has no vrrp_instance.\n[]\n");
        return Ok(out);
    }
    for (comment, entry) in entries(import) {
        out.push_str(&format!("\n# keepalived {comment}\n"));
        out.push_str(&yaml_serde::to_string(&[entry])?);
    }
    Ok(out)
}

/// The same list as pretty JSON.
pub fn to_json(import: &Import) -> Result<String, serde_json::Error> {
    let list: Vec<RawEntry> = entries(import).into_iter().map(|(_, e)| e).collect();
    Ok(serde_json::to_string_pretty(&list)? + "\n")
}
