//! The defaults an unset field takes, filled in once at create time so the stored spec says
//! everything explicitly, and the redaction of secrets in what the API returns.

use havip_proto::v1::{AuthType, Authentication, ChecksumMode, GarpSettings, InstanceSpec};
use pbjson_types::Duration;

/// Default priority of a backup (RFC 9568 §5.2.4 suggests 100).
pub const DEFAULT_PRIORITY: u32 = 100;
pub const DEFAULT_VERSION: u32 = 3;

fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

/// Fill every unset field with its default. Idempotent.
pub fn normalize(mut spec: InstanceSpec) -> InstanceSpec {
    spec.version.get_or_insert(DEFAULT_VERSION);
    spec.priority.get_or_insert(DEFAULT_PRIORITY);
    spec.advert_interval.get_or_insert(seconds(1));
    spec.preempt.get_or_insert(true);
    spec.preempt_delay.get_or_insert(seconds(0));
    spec.accept_mode.get_or_insert(true);
    let auth = spec.auth.get_or_insert_with(Authentication::default);
    if auth.r#type == AuthType::Unspecified as i32 {
        auth.r#type = AuthType::None as i32;
    }
    auth.password_set = false;
    let garp = spec.garp.get_or_insert_with(GarpSettings::default);
    garp.repeat.get_or_insert(5);
    garp.delay.get_or_insert(seconds(5));
    garp.refresh.get_or_insert(seconds(0));
    garp.refresh_repeat.get_or_insert(1);
    if spec.v3_ipv4_checksum == ChecksumMode::Unspecified as i32 {
        spec.v3_ipv4_checksum = ChecksumMode::PseudoHeader as i32;
    }
    super::trackers::normalize_trackers(&mut spec.trackers);
    spec.interface = spec.interface.trim().to_owned();
    spec.unicast_source = spec.unicast_source.trim().to_owned();
    spec
}

/// The spec as the API shows it: the password replaced by `password_set`.
pub fn redact(mut spec: InstanceSpec) -> InstanceSpec {
    if let Some(auth) = spec.auth.as_mut() {
        auth.password_set = !auth.password.is_empty();
        auth.password.clear();
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_fills_every_default_and_is_idempotent() {
        let spec = normalize(InstanceSpec::default());
        assert_eq!(spec.version, Some(3));
        assert_eq!(spec.priority, Some(100));
        assert_eq!(spec.advert_interval, Some(seconds(1)));
        assert_eq!(spec.preempt, Some(true));
        assert_eq!(spec.accept_mode, Some(true));
        assert_eq!(
            spec.auth.as_ref().map(|a| a.r#type),
            Some(AuthType::None as i32)
        );
        let garp = spec.garp.unwrap_or_default();
        assert_eq!((garp.repeat, garp.refresh_repeat), (Some(5), Some(1)));
        assert_eq!(spec.v3_ipv4_checksum, ChecksumMode::PseudoHeader as i32);
        assert_eq!(normalize(spec.clone()), spec);
    }

    #[test]
    fn explicit_values_are_kept() {
        let spec = normalize(InstanceSpec {
            priority: Some(50),
            preempt: Some(false),
            ..Default::default()
        });
        assert_eq!((spec.priority, spec.preempt), (Some(50), Some(false)));
    }

    #[test]
    fn redact_hides_the_password_but_says_one_is_set() {
        let spec = InstanceSpec {
            auth: Some(Authentication {
                r#type: AuthType::Pass as i32,
                password: "1111".into(),
                password_set: false,
            }),
            ..Default::default()
        };
        let auth = redact(spec).auth.unwrap_or_default();
        assert_eq!(auth.password, "");
        assert!(auth.password_set);
    }
}
