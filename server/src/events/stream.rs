//! One watcher's stream: replay from the store in pages, then the live buffer.

use super::{Registration, WatchError};
use crate::store::{EventsFilter, Reader};
use futures::Stream;
use havip_proto::v1;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Events per replay query.
const REPLAY_PAGE: u32 = 256;

/// The events of one watcher: `Stream<Item = Result<v1::Event, WatchError>>`. After an
/// error it ends.
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Result<v1::Event, WatchError>> + Send>>,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = Result<v1::Event, WatchError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// What `EventBus::subscribe` hands over.
pub(super) struct Start {
    /// Never read: held so that dropping the stream unregisters the subscriber.
    pub(super) _registration: Registration,
    pub(super) reader: Reader,
    pub(super) filter: EventsFilter,
    pub(super) after_seq: Option<u64>,
    pub(super) live_from: u64,
    pub(super) rx: mpsc::Receiver<Arc<v1::Event>>,
    pub(super) overflowed: Arc<AtomicBool>,
}

impl EventStream {
    pub(super) fn new(start: Start) -> Self {
        // Without after_seq there is nothing to replay: start as if everything before
        // live_from had been delivered.
        let last_delivered = start.after_seq.unwrap_or(start.live_from - 1);
        let state = State {
            phase: Phase::Replay,
            replay_after: last_delivered,
            last_delivered,
            page: VecDeque::new(),
            start,
        };
        let inner = futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        });
        Self {
            inner: Box::pin(inner),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Replay,
    Live,
    Done,
}

struct State {
    phase: Phase,
    /// The replay continues with seqs above this.
    replay_after: u64,
    last_delivered: u64,
    page: VecDeque<v1::Event>,
    /// Owns the registration, so dropping the stream unregisters the subscriber.
    start: Start,
}

impl State {
    async fn next(&mut self) -> Option<Result<v1::Event, WatchError>> {
        loop {
            if let Some(event) = self.page.pop_front() {
                self.last_delivered = event.seq;
                return Some(Ok(event));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::Replay => {
                    if let Err(e) = self.fetch_page().await {
                        self.phase = Phase::Done;
                        return Some(Err(e));
                    }
                }
                Phase::Live => match self.start.rx.recv().await {
                    // Live events start at live_from, after anything replayed; the check
                    // only guards the invariant.
                    Some(event) if event.seq > self.last_delivered => {
                        self.last_delivered = event.seq;
                        return Some(Ok(Arc::unwrap_or_clone(event)));
                    }
                    Some(_) => {}
                    None => {
                        self.phase = Phase::Done;
                        return Some(Err(if self.start.overflowed.load(Ordering::SeqCst) {
                            WatchError::FellBehind {
                                resume_after: self.last_delivered,
                            }
                        } else {
                            WatchError::ShuttingDown
                        }));
                    }
                },
            }
        }
    }

    /// Loads the next replay page, or moves to the live phase when the replay is done.
    async fn fetch_page(&mut self) -> Result<(), WatchError> {
        let live_from = self.start.live_from;
        if self.replay_after + 1 >= live_from {
            self.phase = Phase::Live;
            return Ok(());
        }
        let page = self
            .start
            .reader
            .events_page(
                self.replay_after,
                live_from,
                &self.start.filter,
                REPLAY_PAGE,
            )
            .await?;
        // Pruning deletes a prefix, and the page was read in the same snapshot as
        // oldest_kept: if nothing above replay_after was pruned, the page is complete
        // (missing seqs were filtered out); otherwise events were lost to retention.
        if page.oldest_kept > self.replay_after + 1 {
            return Err(WatchError::Pruned {
                oldest_kept: page.oldest_kept,
            });
        }
        let full = page.events.len() >= usize::try_from(REPLAY_PAGE).unwrap_or(usize::MAX);
        self.replay_after = match page.events.last() {
            Some(last) if full => last.seq,
            _ => live_from - 1,
        };
        self.page.extend(page.events);
        Ok(())
    }
}
