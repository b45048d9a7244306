//! The transitions and events the store queues: [`RecordBatch`] builds them (with the time
//! they were recorded) so that a group reaches the writer in one message.

use super::batch::Record;
use super::time;
use havip_proto::v1;
use std::time::SystemTime;

/// Transitions and events to queue together with [`super::Store::record_batch`]: the writer
/// receives them at once, so a burst (a segment failing over) is written in one
/// transaction rather than trickling in behind the write of its first member.
#[derive(Debug, Default)]
pub struct RecordBatch {
    pub(super) records: Vec<Record>,
}

impl RecordBatch {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: Vec::with_capacity(capacity),
        }
    }

    /// A transition (a transitions row and a STATE_CHANGED event carrying it). One without
    /// a time gets the time of this call.
    pub fn transition(&mut self, mut transition: v1::Transition) {
        let recorded = SystemTime::now();
        if transition.time.is_none() {
            transition.time = Some(time::to_timestamp(recorded));
        }
        self.records.push(Record::Transition {
            transition,
            recorded,
        });
    }

    /// A tracker change of `instance` (a TRACKER_CHANGED event).
    pub fn tracker_change(&mut self, instance: impl Into<String>, change: v1::TrackerChange) {
        self.instance_event(
            instance.into(),
            v1::EventKind::TrackerChanged,
            v1::event::Payload::TrackerChanged(change),
        );
    }

    /// A dual-master report of `instance` (a DUAL_MASTER event).
    pub fn dual_master(&mut self, instance: impl Into<String>, dual: v1::DualMaster) {
        self.instance_event(
            instance.into(),
            v1::EventKind::DualMaster,
            v1::event::Payload::DualMaster(dual),
        );
    }

    /// A daemon event (DAEMON_STARTED, DAEMON_STOPPING, ...).
    pub fn daemon_event(&mut self, kind: v1::EventKind, event: v1::DaemonEvent) {
        self.records.push(Record::Daemon {
            kind,
            event,
            time: SystemTime::now(),
        });
    }

    fn instance_event(
        &mut self,
        instance: String,
        kind: v1::EventKind,
        payload: v1::event::Payload,
    ) {
        self.records.push(Record::InstanceEvent {
            instance,
            kind,
            payload,
            time: SystemTime::now(),
        });
    }
}
