//! EventService: the ordered, resumable event stream.

use crate::error::Error;
use crate::events::{EventBus, WatchError, WatchRequest};
use futures::{Stream, StreamExt};
use havip_proto::v1::{self, event_service_server::EventService};
use std::pin::Pin;
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub(super) struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Events { bus }
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
        let r = request.into_inner();
        let kinds = r
            .kinds
            .iter()
            .map(|&k| {
                v1::EventKind::try_from(k)
                    .map_err(|_| Status::invalid_argument(format!("kinds: unknown event kind {k}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stream = self
            .bus
            .subscribe(WatchRequest {
                after_seq: r.after_seq,
                instances: r.instances,
                kinds,
            })
            .map_err(status)?;
        Ok(Response::new(Box::pin(
            stream.map(|item| item.map_err(status)),
        )))
    }
}
