//! Day-to-day operations end to end: demote and promote (with and without expiry, also
//! across a restart), who did it and why in the history, owners refused, and disable /
//! enable of a running instance.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::checks::{config_changes, instance, last_reason_into, wait_until, wait_vip};
use havip_e2e::vrrp::{create, millis, spec, state, status, wait_state};
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::{self, State};
use std::time::Duration;
use tonic::Code;

const VIP: &str = "10.0.0.100";
const SETTLE: Duration = Duration::from_secs(15);

struct Pair {
    _lab: Lab,
    a: Host,
    b: Host,
    da: Daemon,
    db: Daemon,
}

/// a (priority 150) and b (priority 100), VRRPv3, 100 ms adverts, preemption on; a serves.
async fn pair(tag: &str) -> Pair {
    let mut lab = Lab::new(tag);
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let b = lab.host("b", Some("10.0.0.2/24"), None);
    let da = Daemon::start(&a, "a");
    let db = Daemon::start(&b, "b");
    create(&da, "vip", spec(51, 3, 150, 100, &format!("{VIP}/24"))).await;
    create(&db, "vip", spec(51, 3, 100, 100, &format!("{VIP}/24"))).await;
    let p = Pair {
        _lab: lab,
        a,
        b,
        da,
        db,
    };
    p.serves(true).await;
    p
}

impl Pair {
    /// `a_master`: a is master with the VIP and b backup, or the other way round.
    async fn serves(&self, a_master: bool) {
        let (m, mh, bk, bh) = if a_master {
            (&self.da, &self.a, &self.db, &self.b)
        } else {
            (&self.db, &self.b, &self.da, &self.a)
        };
        wait_state(m, "vip", State::Master, SETTLE).await;
        wait_state(bk, "vip", State::Backup, SETTLE).await;
        wait_vip(mh, VIP, true).await;
        wait_vip(bh, VIP, false).await;
    }
}

fn request(
    priority: Option<u32>,
    duration_ms: Option<i64>,
    reason: &str,
) -> v1::OverridePriorityRequest {
    v1::OverridePriorityRequest {
        name: "vip".into(),
        priority,
        duration: duration_ms.and_then(millis),
        reason: reason.into(),
    }
}

async fn demote(d: &Daemon, r: v1::OverridePriorityRequest) -> Result<v1::Instance, tonic::Status> {
    d.maintenance()
        .await
        .demote(r)
        .await
        .map(|r| r.into_inner())
}

async fn promote(
    d: &Daemon,
    r: v1::OverridePriorityRequest,
) -> Result<v1::Instance, tonic::Status> {
    d.maintenance()
        .await
        .promote(r)
        .await
        .map(|r| r.into_inner())
}

async fn clear(d: &Daemon, reason: &str) -> v1::Instance {
    d.maintenance()
        .await
        .clear_override(v1::ClearOverrideRequest {
            name: "vip".into(),
            reason: reason.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Demote hands the VIP to the backup (priority 1 by default), promote takes it (254 by
/// default); each is a config change with the caller and the reason in the history; clear
/// puts things back.
#[tokio::test]
async fn demote_and_promote_move_the_vip_and_are_in_the_history() {
    if !netns_available() {
        return;
    }
    let p = pair("mdp").await;
    let before = instance(&p.da, "vip").await.revision;
    let demoted = demote(&p.da, request(None, None, "kernel upgrade"))
        .await
        .unwrap();
    assert!(demoted.revision > before);
    let o = demoted.spec.unwrap().priority_override.unwrap();
    assert_eq!((o.priority, o.reason.as_str()), (1, "kernel upgrade"));
    assert_eq!(o.expires, None);
    p.serves(false).await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 1);
    let reason = last_reason_into(&p.db, "vip", State::Master).await;
    assert_eq!(reason.code, "preempted_lower_priority", "{reason:?}");

    let changes = config_changes(&p.da, "vip").await;
    let last = changes.last().unwrap();
    assert_eq!(last.changed_fields, ["priority_override"]);
    assert_eq!(last.comment, "kernel upgrade");
    assert_eq!(last.actor, "uid:0");
    assert_eq!(last.kind, v1::ChangeKind::Update as i32);

    // Re-applying the whole spec without the override (apply -f) does not lift it.
    let mut spec = instance(&p.da, "vip").await.spec.unwrap();
    spec.priority_override = None;
    spec.description = "re-applied".into();
    let updated =
        p.da.instances()
            .await
            .update_instance(v1::UpdateInstanceRequest {
                name: "vip".into(),
                spec: Some(spec),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
    assert_eq!(updated.changed_fields, ["description"]);
    assert_eq!(status(&p.da, "vip").await.effective_priority, 1);

    clear(&p.da, "upgrade done").await;
    p.serves(true).await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 150);
    assert!(
        instance(&p.da, "vip")
            .await
            .spec
            .unwrap()
            .priority_override
            .is_none()
    );
    assert_eq!(
        config_changes(&p.da, "vip").await.last().unwrap().comment,
        "upgrade done"
    );
    // Clearing again changes nothing.
    let rev = instance(&p.da, "vip").await.revision;
    assert_eq!(clear(&p.da, "again").await.revision, rev);

    // Promote the backup: b takes over at 254.
    promote(&p.db, request(None, None, "")).await.unwrap();
    p.serves(false).await;
    assert_eq!(status(&p.db, "vip").await.effective_priority, 254);
    assert_eq!(
        config_changes(&p.db, "vip").await.last().unwrap().comment,
        "promote to priority 254",
        "without a reason the comment says what was done"
    );
    clear(&p.db, "").await;
    p.serves(true).await;

    // Bad requests name the field.
    let err = demote(&p.da, request(Some(255), None, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = demote(&p.da, request(None, Some(0), "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = demote(
        &p.da,
        v1::OverridePriorityRequest {
            name: "nope".into(),
            ..request(None, None, "")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

/// An override with a duration lapses by itself: havipd clears it as a config change of
/// its own ("override expired") and the node takes the VIP back.
#[tokio::test]
async fn an_override_with_a_duration_expires() {
    if !netns_available() {
        return;
    }
    let p = pair("mexp").await;
    let demoted = demote(&p.da, request(Some(50), Some(2000), "short maintenance"))
        .await
        .unwrap();
    assert!(
        demoted
            .spec
            .unwrap()
            .priority_override
            .unwrap()
            .expires
            .is_some()
    );
    p.serves(false).await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 50);
    p.serves(true).await;
    assert!(
        instance(&p.da, "vip")
            .await
            .spec
            .unwrap()
            .priority_override
            .is_none()
    );
    let last = config_changes(&p.da, "vip").await.pop().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.comment.as_str()),
        ("havipd", "override expired")
    );
    assert_eq!(last.changed_fields, ["priority_override"]);
}

/// An override that lapsed while havipd was down is cleared at start, before the instance
/// runs, and recorded as havipd's change.
#[tokio::test]
async fn an_override_that_lapsed_while_down_is_cleared_at_start() {
    if !netns_available() {
        return;
    }
    let mut p = pair("mrst").await;
    demote(&p.da, request(None, Some(1500), "reboot"))
        .await
        .unwrap();
    p.serves(false).await;
    p.da.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    p.da.restart();
    let i = instance(&p.da, "vip").await;
    assert!(
        i.spec.unwrap().priority_override.is_none(),
        "cleared at start"
    );
    let last = config_changes(&p.da, "vip").await.pop().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.comment.as_str()),
        ("havipd", "override expired")
    );
    p.serves(true).await;
}

/// An override without expiry survives a restart.
#[tokio::test]
async fn an_override_survives_a_restart() {
    if !netns_available() {
        return;
    }
    let mut p = pair("mkeep").await;
    demote(&p.da, request(Some(20), None, "keep me down"))
        .await
        .unwrap();
    p.serves(false).await;
    p.da.stop();
    p.da.restart();
    wait_state(&p.da, "vip", State::Backup, SETTLE).await;
    assert_eq!(status(&p.da, "vip").await.effective_priority, 20);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state(&p.db, "vip").await, State::Master);
}

/// The address owner (priority 255) is master by definition: no override.
#[tokio::test]
async fn the_address_owner_cannot_be_overridden() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("mown");
    let a = lab.host("a", Some("10.0.0.1/24"), None);
    let da = Daemon::start(&a, "a");
    let mut s = spec(51, 3, 255, 100, "10.0.0.1/24");
    s.unicast_source = "10.0.0.1".into();
    create(&da, "vip", s).await;
    wait_state(&da, "vip", State::Master, SETTLE).await;
    for result in [
        demote(&da, request(None, None, "")).await,
        promote(&da, request(None, None, "")).await,
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("priority 255"), "{err:?}");
    }
}

async fn set_disabled(d: &Daemon, disabled: bool) {
    d.instances()
        .await
        .update_instance(v1::UpdateInstanceRequest {
            name: "vip".into(),
            spec: Some(v1::InstanceSpec {
                disabled,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["disabled".into()],
            }),
            comment: if disabled { "off" } else { "on" }.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Disabling a running master hands over at once (priority 0: the backup takes over after
/// Skew_Time) and holds the instance in DISABLED; enabling it brings it back, and it
/// preempts.
#[tokio::test]
async fn disable_and_enable_live() {
    if !netns_available() {
        return;
    }
    let p = pair("mdis").await;
    set_disabled(&p.da, true).await;
    wait_state(&p.da, "vip", State::Disabled, SETTLE).await;
    p.serves_b_with_a_disabled().await;
    let reason = last_reason_into(&p.db, "vip", State::Master).await;
    assert_eq!(reason.code, "priority_zero", "{reason:?}");
    assert_eq!(
        last_reason_into(&p.da, "vip", State::Disabled).await.code,
        "admin_disabled"
    );
    // It stays disabled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state(&p.da, "vip").await, State::Disabled);
    set_disabled(&p.da, false).await;
    p.serves(true).await;
    wait_until("a enabled", SETTLE, &p.da, || async {
        last_reason_into(&p.da, "vip", State::Master).await.code == "preempted_lower_priority"
    })
    .await;
}

impl Pair {
    async fn serves_b_with_a_disabled(&self) {
        wait_state(&self.db, "vip", State::Master, SETTLE).await;
        wait_vip(&self.b, VIP, true).await;
        wait_vip(&self.a, VIP, false).await;
    }
}
