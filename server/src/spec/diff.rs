//! Which spec fields differ between two normalized specs: what a config change touched, as
//! recorded in history and shown by `havipctl update-instance`.

use havip_proto::v1::InstanceSpec;

/// The paths (as in [`super::MASKABLE_FIELDS`]) whose values differ, in spec order.
pub fn changed_fields(old: &InstanceSpec, new: &InstanceSpec) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            out.push(name.to_owned());
        }
    };
    check("interface", old.interface != new.interface);
    check("vrid", old.vrid != new.vrid);
    check("version", old.version != new.version);
    check("priority", old.priority != new.priority);
    check(
        "advert_interval",
        old.advert_interval != new.advert_interval,
    );
    check("preempt", old.preempt != new.preempt);
    check("preempt_delay", old.preempt_delay != new.preempt_delay);
    check("accept_mode", old.accept_mode != new.accept_mode);
    check(
        "virtual_addresses",
        old.virtual_addresses != new.virtual_addresses,
    );
    check("unicast_source", old.unicast_source != new.unicast_source);
    check("unicast_peers", old.unicast_peers != new.unicast_peers);
    let (oa, na) = (
        old.auth.clone().unwrap_or_default(),
        new.auth.clone().unwrap_or_default(),
    );
    check("auth.type", oa.r#type != na.r#type);
    check("auth.password", oa.password != na.password);
    check("vmac", old.vmac != new.vmac);
    let (og, ng) = (old.garp.unwrap_or_default(), new.garp.unwrap_or_default());
    check("garp.repeat", og.repeat != ng.repeat);
    check("garp.delay", og.delay != ng.delay);
    check("garp.refresh", og.refresh != ng.refresh);
    check(
        "garp.refresh_repeat",
        og.refresh_repeat != ng.refresh_repeat,
    );
    check(
        "v3_ipv4_checksum",
        old.v3_ipv4_checksum != new.v3_ipv4_checksum,
    );
    check("description", old.description != new.description);
    check("labels", old.labels != new.labels);
    check("disabled", old.disabled != new.disabled);
    check("trackers", old.trackers != new.trackers);
    check(
        "priority_override",
        old.priority_override != new.priority_override,
    );
    out
}
