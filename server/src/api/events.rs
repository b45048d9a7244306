//! EventService: the ordered, resumable event stream.

use crate::error::Error;
use crate::events::{EventBus, WatchError, WatchRequest};
use futures::{Stream, StreamExt};
use havip_proto::v1::{self, event_service_server::EventService};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub(super) struct Events {
    bus: EventBus,
    /// One permit per watcher the bus feeds: `--max-watchers`.
    watchers: Arc<Semaphore>,
    max_watchers: usize,
}

impl Events {
    pub fn new(bus: EventBus, max_watchers: usize) -> Self {
        let max_watchers = max_watchers.clamp(1, Semaphore::MAX_PERMITS);
        Events {
            bus,
            watchers: Arc::new(Semaphore::new(max_watchers)),
            max_watchers,
        }
    }
}

fn status(e: WatchError) -> Status {
    Status::from(match e {
        WatchError::FellBehind { resume_after } => Error::ResourceExhausted(format!(
            "this watcher fell behind and was cut off so it could not slow the daemon; reconnect with after_seq={resume_after} to continue with nothing lost"
        )),
        WatchError::Pruned { oldest_kept } => Error::OutOfRange(format!(
            "the events asked for were pruned (the retention period passed); the oldest kept is seq {oldest_kept}: reconnect with after_seq={} or later",
            oldest_kept.saturating_sub(1)
        )),
        WatchError::Ahead {
            after_seq,
            last_seq,
        } => Error::OutOfRange(format!(
            "after_seq={after_seq} is beyond the newest event ({last_seq}); was the database replaced? reconnect with after_seq={last_seq} or lower"
        )),
        WatchError::Store(e) => Error::Unavailable(format!("cannot read stored events: {e}")),
        WatchError::ShuttingDown => {
            Error::Unavailable("havipd is shutting down; reconnect once it is back".into())
        }
    })
}

#[tonic::async_trait]
impl EventService for Events {
    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<v1::Event, Status>> + Send>>;

    async fn watch_events(
        &self,
        request: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let Ok(permit) = self.watchers.clone().try_acquire_owned() else {
            return Err(Error::ResourceExhausted(format!(
                "havipd already serves {} event streams, its limit (--max-watchers); close a watcher that is not needed (havipctl watch), or raise --max-watchers",
                self.max_watchers
            ))
            .into());
        };
        let r = request.into_inner();
        let kinds = r
            .kinds
            .iter()
            .map(|&k| {
                v1::EventKind::try_from(k)
                    .map_err(|_| Status::invalid_argument(format!("kinds: unknown event kind {k}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The bus holds the permit while it feeds the stream: it is returned when the
        // stream ends, and also when a watcher that stopped reading is cut off.
        let stream = self
            .bus
            .subscribe_holding(
                WatchRequest {
                    after_seq: r.after_seq,
                    instances: r.instances,
                    kinds,
                },
                permit,
            )
            .map_err(status)?;
        Ok(Response::new(Box::pin(
            stream.map(|item| item.map_err(status)),
        )))
    }
}
