//! How specs and lists are kept in SQLite text columns (proto3 JSON via pbjson), and the
//! redaction that keeps passwords out of the audit trail.

use super::error::StoreError;
use havip_proto::v1;
use std::path::Path;
use std::sync::Arc;

pub(crate) fn spec_to_json(instance: &str, spec: &v1::InstanceSpec) -> Result<String, StoreError> {
    // pbjson refuses enum values it does not know; the manager validates, so this is a bug
    // upstream, reported rather than stored half-right.
    serde_json::to_string(spec).map_err(|e| StoreError::InvalidCommit {
        instance: instance.to_owned(),
        detail: format!("its spec cannot be encoded as JSON: {e}"),
    })
}

pub(crate) fn spec_from_json(
    path: &Arc<Path>,
    what: &str,
    json: &str,
) -> Result<v1::InstanceSpec, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        path: Arc::clone(path),
        detail: format!("{what} is not a valid InstanceSpec: {e}"),
    })
}

/// The spec as the audit trail keeps it: the PASS password replaced by `password_set`, so
/// the history never holds a secret.
pub(crate) fn redacted(spec: &v1::InstanceSpec) -> v1::InstanceSpec {
    let mut spec = spec.clone();
    if let Some(auth) = spec.auth.as_mut() {
        auth.password_set = auth.password_set || !auth.password.is_empty();
        auth.password.clear();
    }
    spec
}

pub(crate) fn strings_to_json(items: &[String]) -> String {
    // Serialising strings into JSON cannot fail; the fallback keeps the column valid JSON.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn strings_from_json(
    path: &Arc<Path>,
    what: &str,
    json: &str,
) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        path: Arc::clone(path),
        detail: format!("{what} is not a JSON array of strings: {e}"),
    })
}

pub(crate) fn decode<M: prost::Message + Default>(
    path: &Arc<Path>,
    what: &str,
    body: &[u8],
) -> Result<M, StoreError> {
    M::decode(body).map_err(|e| StoreError::Corrupt {
        path: Arc::clone(path),
        detail: format!("{what} cannot be decoded: {e}"),
    })
}

/// A database integer as u64; a negative one means the file was changed behind our back.
pub(crate) fn to_u64(path: &Arc<Path>, what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        path: Arc::clone(path),
        detail: format!("{what} is negative ({v})"),
    })
}

/// A u64 as SQLite's signed integer. Seqs and revisions never come near 2^63.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_the_password_and_says_one_is_set() {
        let spec = v1::InstanceSpec {
            auth: Some(v1::Authentication {
                r#type: v1::AuthType::Pass as i32,
                password: "secret".into(),
                password_set: false,
            }),
            ..Default::default()
        };
        let r = redacted(&spec);
        let auth = r.auth.unwrap();
        assert_eq!(auth.password, "");
        assert!(auth.password_set);
        assert_eq!(redacted(&v1::InstanceSpec::default()).auth, None);
    }

    #[test]
    fn specs_round_trip_through_json() {
        let path: Arc<Path> = Arc::from(Path::new("t.db"));
        let spec = v1::InstanceSpec {
            interface: "eth0".into(),
            vrid: 51,
            priority: Some(150),
            virtual_addresses: vec!["10.0.0.100/24".into()],
            ..Default::default()
        };
        let json = spec_to_json("a", &spec).unwrap();
        assert_eq!(spec_from_json(&path, "x", &json).unwrap(), spec);
        assert!(matches!(
            spec_from_json(&path, "x", "{not json"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
