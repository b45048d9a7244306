//! What the data plane produced in the current round for others to see: events for the
//! [`Recorder`] and the log lines of its transitions. Both are held until the round ends;
//! then the events go first, in one call, and the log lines after. A burst (a segment
//! failing over) so reaches the store whole, in one transaction, and no event waits for
//! a log line or a span to be written.

use super::{Recorded, Recorder};
use crate::observability::spans;
use havip_vrrp::State;
use std::sync::Arc;
use tracing::info;

/// A transition's log line, written at the end of its round.
pub(super) struct TransitionLog {
    pub(super) instance: Arc<str>,
    pub(super) from: State,
    pub(super) to: State,
    pub(super) reason_code: &'static str,
    pub(super) reason: String,
    pub(super) priority: u8,
}

impl TransitionLog {
    fn write(&self) {
        // The span exports the transition with --otlp-endpoint and puts its trace id on
        // the log line.
        let span = spans::transition(
            &self.instance,
            self.from.name(),
            self.to.name(),
            self.reason_code,
        );
        let _entered = span.enter();
        info!(
            instance = %self.instance,
            from = %self.from,
            to = %self.to,
            reason = %self.reason,
            priority = self.priority,
            "state change"
        );
    }
}

pub(super) struct RoundOutbox {
    recorder: Arc<dyn Recorder>,
    pending: Vec<Recorded>,
    logs: Vec<TransitionLog>,
}

impl RoundOutbox {
    pub(super) fn new(recorder: Arc<dyn Recorder>) -> Self {
        Self {
            recorder,
            pending: Vec::new(),
            logs: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, recorded: Recorded) {
        self.pending.push(recorded);
    }

    pub(super) fn log_transition(&mut self, log: TransitionLog) {
        self.logs.push(log);
    }

    /// Hands over what the round recorded, if anything, then writes its log lines.
    pub(super) fn hand_over(&mut self) {
        if !self.pending.is_empty() {
            self.recorder.record(std::mem::take(&mut self.pending));
        }
        for log in self.logs.drain(..) {
            log.write();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_proto::v1;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Rounds(Mutex<Vec<Vec<Recorded>>>);

    impl Recorder for Rounds {
        fn record(&self, round: Vec<Recorded>) {
            self.0.lock().unwrap().push(round);
        }
    }

    fn transition(instance: &str) -> Recorded {
        Recorded::Transition(v1::Transition {
            instance: instance.into(),
            ..v1::Transition::default()
        })
    }

    #[test]
    fn a_round_is_handed_over_whole_in_order_and_only_when_it_ends() {
        let rounds = Arc::new(Rounds::default());
        let mut outbox = RoundOutbox::new(rounds.clone());
        outbox.push(transition("a"));
        outbox.push(Recorded::TrackerChange {
            instance: "b".into(),
            change: v1::TrackerChange::default(),
        });
        outbox.push(transition("c"));
        assert!(
            rounds.0.lock().unwrap().is_empty(),
            "held until the round ends"
        );

        outbox.hand_over();
        outbox.hand_over();
        outbox.push(transition("d"));
        outbox.hand_over();

        let got = rounds.0.lock().unwrap();
        assert_eq!(got.len(), 2, "one call per round that recorded something");
        assert_eq!(
            got[0],
            vec![
                transition("a"),
                Recorded::TrackerChange {
                    instance: "b".into(),
                    change: v1::TrackerChange::default(),
                },
                transition("c"),
            ]
        );
        assert_eq!(got[1], vec![transition("d")]);
    }

    /// Notes, in one list, when the recorder is called and when a log line is written.
    #[derive(Clone, Default)]
    struct Timeline(Arc<Mutex<Vec<String>>>);

    impl Recorder for Timeline {
        fn record(&self, round: Vec<Recorded>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("recorded {}", round.len()));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Timeline {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0
                .lock()
                .unwrap()
                .push(format!("logged {}", event.metadata().level()));
        }
    }

    #[test]
    fn a_rounds_events_go_before_its_log_lines_which_are_held_until_it_ends() {
        use tracing_subscriber::layer::SubscriberExt;

        let timeline = Timeline::default();
        let subscriber = tracing_subscriber::registry().with(timeline.clone());
        tracing::subscriber::with_default(subscriber, || {
            let mut outbox = RoundOutbox::new(Arc::new(timeline.clone()));
            for instance in ["a", "b"] {
                outbox.log_transition(TransitionLog {
                    instance: instance.into(),
                    from: State::Backup,
                    to: State::Master,
                    reason_code: "master_down_timer",
                    reason: "no advert for 3.6 s".into(),
                    priority: 100,
                });
                outbox.push(transition(instance));
            }
            assert!(
                timeline.0.lock().unwrap().is_empty(),
                "nothing before the end"
            );
            outbox.hand_over();
        });
        assert_eq!(
            *timeline.0.lock().unwrap(),
            ["recorded 2", "logged INFO", "logged INFO"],
            "no event waits for a log line"
        );
    }
}
