//! Instance specs as the API carries them (`havip.v1.InstanceSpec`): defaults, validation
//! into what the runtime needs, field masks, and the list of fields a change touched.
//!
//! Trackers and the priority override are checked in `trackers.rs`; what needs the host
//! (script security, users) in `host.rs`, which the manager runs for new specs only, so a
//! stored instance whose script became insecure still loads (and its tracker fails).
//!
//! Every rule lives here or in the engine's [`havip_vrrp::InstanceConfig::validate`], so
//! `CreateInstance`, `UpdateInstance` and `apply` refuse the same things with the same words.

mod defaults;
mod diff;
mod host;
mod mask;
mod trackers;
mod validate;

pub use defaults::{normalize, redact};
pub use diff::changed_fields;
pub use host::check_trackers_on_host;
pub use mask::{MASKABLE_FIELDS, apply_mask};
pub use trackers::{
    Check, DEFAULT_SCRIPT_INTERVAL, MAX_WEIGHT, OverrideSpec, ScriptCheck, TrackerSpec,
};
pub use validate::{
    InterfaceFacts, MAX_COMMENT_LEN, Validated, Vip, check_against_interface, is_name,
    validate_comment, validate_name, validate_spec,
};

use std::fmt;

/// One broken rule: the field (as a path into the request, e.g. `spec.vrid`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Why a spec cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The request itself is wrong (INVALID_ARGUMENT): every rule it breaks.
    #[error("invalid instance spec: {}", join(.0))]
    Invalid(Vec<Violation>),
    /// The request is fine but this host cannot serve it now (FAILED_PRECONDITION).
    #[error("{0}")]
    Precondition(String),
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
