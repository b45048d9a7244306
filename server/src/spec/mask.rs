//! `UpdateInstance`'s field mask: which spec fields a request changes.

use super::Violation;
use havip_proto::v1::InstanceSpec;

/// Every path a mask may name (relative to the spec; a leading `spec.` and lowerCamelCase
/// are accepted too).
pub const MASKABLE_FIELDS: &[&str] = &[
    "interface",
    "vrid",
    "version",
    "priority",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "accept_mode",
    "virtual_addresses",
    "unicast_source",
    "unicast_peers",
    "auth",
    "auth.type",
    "auth.password",
    "vmac",
    "garp",
    "garp.repeat",
    "garp.delay",
    "garp.refresh",
    "garp.refresh_repeat",
    "v3_ipv4_checksum",
    "description",
    "labels",
    "disabled",
    "trackers",
    "priority_override",
];

/// `fooBar.bazQux` → `foo_bar.baz_qux`, without a leading `spec.`.
fn canonical(path: &str) -> String {
    let path = path.trim();
    let path = path.strip_prefix("spec.").unwrap_or(path);
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The spec after applying `patch`'s values for the fields in `mask` to `current`. An empty
/// mask replaces the whole spec. A patch that carries a redacted password (as returned by
/// GetInstance: empty, `password_set`) keeps the stored one, so a spec read back and applied
/// again does not lose its password. A whole-spec replacement without a priority override
/// keeps the current one: an override is an operator's demote or promote, and re-applying
/// a config file (`apply -f`, run by config management) must not lift it behind their back;
/// ClearOverride, or a mask naming `priority_override`, does.
pub fn apply_mask(
    current: &InstanceSpec,
    patch: InstanceSpec,
    mask: &[String],
) -> Result<InstanceSpec, Violation> {
    let keep_password = patch
        .auth
        .as_ref()
        .is_some_and(|a| a.password.is_empty() && a.password_set);
    let keep_override = mask.is_empty() && patch.priority_override.is_none();
    let mut next = if mask.is_empty() {
        patch
    } else {
        let mut next = current.clone();
        for raw in mask {
            let path = canonical(raw);
            if !MASKABLE_FIELDS.contains(&path.as_str()) {
                return Err(Violation::new(
                    "update_mask",
                    format!(
                        "{raw:?} is not a spec field; use one of: {}",
                        MASKABLE_FIELDS.join(", ")
                    ),
                ));
            }
            copy_field(&mut next, &patch, &path);
        }
        next
    };
    if keep_password && let (Some(auth), Some(stored)) = (next.auth.as_mut(), current.auth.as_ref())
    {
        auth.password.clone_from(&stored.password);
    }
    if keep_override {
        next.priority_override
            .clone_from(&current.priority_override);
    }
    Ok(next)
}

fn copy_field(to: &mut InstanceSpec, from: &InstanceSpec, path: &str) {
    let auth = |s: &InstanceSpec| s.auth.clone().unwrap_or_default();
    let garp = |s: &InstanceSpec| s.garp.unwrap_or_default();
    match path {
        "interface" => to.interface.clone_from(&from.interface),
        "vrid" => to.vrid = from.vrid,
        "version" => to.version = from.version,
        "priority" => to.priority = from.priority,
        "advert_interval" => to.advert_interval = from.advert_interval,
        "preempt" => to.preempt = from.preempt,
        "preempt_delay" => to.preempt_delay = from.preempt_delay,
        "accept_mode" => to.accept_mode = from.accept_mode,
        "virtual_addresses" => to.virtual_addresses.clone_from(&from.virtual_addresses),
        "unicast_source" => to.unicast_source.clone_from(&from.unicast_source),
        "unicast_peers" => to.unicast_peers.clone_from(&from.unicast_peers),
        "auth" => to.auth.clone_from(&from.auth),
        "auth.type" => to.auth.get_or_insert_with(Default::default).r#type = auth(from).r#type,
        "auth.password" => {
            to.auth.get_or_insert_with(Default::default).password = auth(from).password
        }
        "vmac" => to.vmac = from.vmac,
        "garp" => to.garp.clone_from(&from.garp),
        "garp.repeat" => to.garp.get_or_insert_with(Default::default).repeat = garp(from).repeat,
        "garp.delay" => to.garp.get_or_insert_with(Default::default).delay = garp(from).delay,
        "garp.refresh" => to.garp.get_or_insert_with(Default::default).refresh = garp(from).refresh,
        "garp.refresh_repeat" => {
            to.garp.get_or_insert_with(Default::default).refresh_repeat = garp(from).refresh_repeat
        }
        "v3_ipv4_checksum" => to.v3_ipv4_checksum = from.v3_ipv4_checksum,
        "description" => to.description.clone_from(&from.description),
        "labels" => to.labels.clone_from(&from.labels),
        "disabled" => to.disabled = from.disabled,
        "trackers" => to.trackers.clone_from(&from.trackers),
        "priority_override" => to.priority_override.clone_from(&from.priority_override),
        _ => {}
    }
}
