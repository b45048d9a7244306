//! Conversions between the engine's and the runtime's types and the API's protobuf types,
//! in one place so the API, the store and the data plane say things the same way.

use havip_proto::v1;
use havip_vrrp::{Reason, RivalMaster, RivalOutcome, State};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn state(s: State) -> v1::State {
    match s {
        State::Initialize => v1::State::Init,
        State::Backup => v1::State::Backup,
        State::Master => v1::State::Master,
        State::Fault => v1::State::Fault,
        State::Disabled => v1::State::Disabled,
    }
}

/// A master heard another master: the DUAL_MASTER event's payload.
pub fn dual_master(r: &RivalMaster) -> v1::DualMaster {
    v1::DualMaster {
        peer_address: r.from.to_string(),
        peer_priority: u32::from(r.priority),
        priority: u32::from(r.our_priority),
        outcome: match r.outcome {
            RivalOutcome::StayedMaster => v1::DualMasterOutcome::StayedMaster,
            RivalOutcome::SteppedDown => v1::DualMasterOutcome::SteppedDown,
        } as i32,
    }
}

/// The outcome as a log field.
pub fn rival_outcome_label(o: RivalOutcome) -> &'static str {
    match o {
        RivalOutcome::StayedMaster => "stayed_master",
        RivalOutcome::SteppedDown => "stepped_down",
    }
}

pub fn reason(r: &Reason) -> v1::TransitionReason {
    reason_described(r, r.to_string())
}

/// A reason with the runtime's words for it (trackers and sync group members by name).
pub fn reason_described(r: &Reason, description: String) -> v1::TransitionReason {
    v1::TransitionReason {
        code: r.label().to_owned(),
        description,
        peer_address: r.peer().map(|p| p.to_string()).unwrap_or_default(),
    }
}

pub fn timestamp(t: SystemTime) -> pbjson_types::Timestamp {
    let (seconds, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i32::try_from(d.subsec_nanos()).unwrap_or(0),
        ),
        // Before 1970: only a badly set clock gets here; show the epoch rather than fail.
        Err(_) => (0, 0),
    };
    pbjson_types::Timestamp { seconds, nanos }
}

/// The wall-clock time of a protobuf timestamp; `None` when it is out of range.
pub fn system_time(t: &pbjson_types::Timestamp) -> Option<SystemTime> {
    let secs = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

pub fn duration(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789);
        assert_eq!(system_time(&timestamp(t)), Some(t));
        assert_eq!(
            system_time(&pbjson_types::Timestamp {
                seconds: -1,
                nanos: 0
            }),
            None
        );
    }

    #[test]
    fn reasons_carry_code_text_and_peer() {
        let r = reason(&Reason::HigherPriorityAdvert {
            from: "10.0.0.1".parse().unwrap(),
            priority: 150,
        });
        assert_eq!(r.code, "higher_priority_advert");
        assert_eq!(r.peer_address, "10.0.0.1");
        assert!(r.description.contains("150"));
    }
}
