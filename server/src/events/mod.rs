//! The event bus: fans the events the store's writer has just committed out to the live
//! watch streams, and starts each stream with a replay from the database, so that a watcher
//! gets every event after its `after_seq` exactly once, in seq order, then live ones.
//!
//! # No gap, no duplicate
//!
//! The writer publishes a batch only after committing it, under the bus lock. A new
//! subscriber is registered under the same lock and notes `live_from`, the seq after the
//! last published one. Everything below `live_from` is therefore already in the database,
//! and everything from `live_from` on will reach its buffer: the stream replays
//! `after_seq < seq < live_from` from the store, then yields what its buffer holds.
//!
//! # Slow watchers
//!
//! Publishing never waits: each live event goes into each (matching) subscriber's bounded
//! buffer with `try_send`. A subscriber whose buffer is full is removed on the spot; its
//! stream yields what was buffered, then [`WatchError::FellBehind`] naming the last seq it
//! delivered, and ends. No other watcher and not the writer is slowed.

mod filter;
mod stream;

#[cfg(test)]
mod tests;

pub use stream::EventStream;

use crate::store::{Reader, StoreError};
use filter::Filter;
use havip_proto::v1;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// A handle on the bus; clones share it.
#[derive(Debug, Clone)]
pub struct EventBus {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    reader: Reader,
    buffer: usize,
}

#[derive(Debug)]
struct State {
    last_published: u64,
    next_id: u64,
    subscribers: HashMap<u64, Subscriber>,
    closed: bool,
}

#[derive(Debug)]
struct Subscriber {
    filter: Arc<Filter>,
    tx: mpsc::Sender<Arc<v1::Event>>,
    /// Set when the subscriber is removed because its buffer was full, so its stream can
    /// tell falling behind from the bus shutting down.
    overflowed: Arc<AtomicBool>,
    /// The API's watcher slot (`--max-watchers`), held while the bus feeds this subscriber
    /// and freed the moment it is removed: a client that stopped reading is cut off, and its
    /// stream, which may never be read again, must not keep the slot from other watchers.
    _slot: Option<OwnedSemaphorePermit>,
}

/// What a watcher asks for.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// Deliver events with seq > after_seq, replaying stored ones first. `None`: only
    /// events published from now on.
    pub after_seq: Option<u64>,
    /// Only these instances' events (all, daemon events included, when empty).
    pub instances: Vec<String>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<v1::EventKind>,
}

/// Why a watch stream ends (or cannot start). Every variant but `Store` tells the client
/// how to continue.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WatchError {
    /// The watcher did not keep up and was cut off; it has received every matching event up
    /// to `resume_after` and nothing later.
    #[error(
        "this watcher fell behind and was cut off; reconnect with after_seq={resume_after} \
         to continue where it left off"
    )]
    FellBehind { resume_after: u64 },
    /// Events the watcher asked for were pruned (older than the retention period).
    #[error(
        "events before seq {oldest_kept} are no longer kept; reconnect with after_seq={} to \
         get every event still kept, and read the history for older transitions",
        oldest_kept.saturating_sub(1)
    )]
    Pruned { oldest_kept: u64 },
    /// `after_seq` is beyond the newest event: it belongs to another (or a replaced)
    /// database, and waiting for the counter to reach it would skip events silently.
    #[error(
        "after_seq={after_seq} is ahead of the newest event ({last_seq}): it comes from \
         another or a replaced database; reconnect without after_seq, or with one of at \
         most {last_seq}"
    )]
    Ahead { after_seq: u64, last_seq: u64 },
    /// Reading the replay from the database failed.
    #[error("{0}")]
    Store(StoreError),
    /// The daemon is stopping.
    #[error("havipd is shutting down; reconnect with after_seq set to the last seq received")]
    ShuttingDown,
}

impl From<StoreError> for WatchError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Closed => Self::ShuttingDown,
            other => Self::Store(other),
        }
    }
}

impl EventBus {
    pub(crate) fn new(reader: Reader, last_seq: u64, buffer: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    last_published: last_seq,
                    next_id: 0,
                    subscribers: HashMap::new(),
                    closed: false,
                }),
                reader,
                buffer: buffer.max(1),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, and every update leaves the state whole.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a subscriber and returns its stream: a replay of stored events with
    /// `after_seq < seq < live_from` (live_from = last published + 1, noted under the bus
    /// lock), then live events, with no gap and no duplicate, in seq order, filtered.
    /// Dropping the stream unregisters it.
    pub fn subscribe(&self, req: WatchRequest) -> Result<EventStream, WatchError> {
        self.register(req, None)
    }

    /// [`Self::subscribe`], holding `slot` for as long as the subscriber is registered: until
    /// its stream is dropped, it falls behind, or the bus shuts down.
    pub fn subscribe_holding(
        &self,
        req: WatchRequest,
        slot: OwnedSemaphorePermit,
    ) -> Result<EventStream, WatchError> {
        self.register(req, Some(slot))
    }

    fn register(
        &self,
        req: WatchRequest,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<EventStream, WatchError> {
        let filter = Arc::new(Filter::new(&req.instances, &req.kinds));
        let (tx, rx) = mpsc::channel(self.shared.buffer);
        let overflowed = Arc::new(AtomicBool::new(false));
        let (id, live_from) = {
            let mut state = self.lock();
            if state.closed {
                return Err(WatchError::ShuttingDown);
            }
            if let Some(after_seq) = req.after_seq
                && after_seq > state.last_published
            {
                return Err(WatchError::Ahead {
                    after_seq,
                    last_seq: state.last_published,
                });
            }
            let id = state.next_id;
            state.next_id += 1;
            state.subscribers.insert(
                id,
                Subscriber {
                    filter: Arc::clone(&filter),
                    tx,
                    overflowed: Arc::clone(&overflowed),
                    _slot: slot,
                },
            );
            (id, state.last_published + 1)
        };
        Ok(stream::EventStream::new(stream::Start {
            _registration: Registration {
                bus: self.clone(),
                id,
            },
            reader: self.shared.reader.clone(),
            filter: filter.to_sql(),
            after_seq: req.after_seq,
            live_from,
            rx,
            overflowed,
        }))
    }

    /// The seq of the last event published (and so committed).
    pub fn last_published_seq(&self) -> u64 {
        self.lock().last_published
    }

    /// Live subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Hands committed events, in seq order, to every matching subscriber without waiting.
    pub(crate) fn publish(&self, events: Vec<v1::Event>) {
        if events.is_empty() {
            return;
        }
        let buffer = self.shared.buffer;
        let mut state = self.lock();
        for event in events {
            let event = Arc::new(event);
            state.last_published = event.seq;
            state.subscribers.retain(|id, sub| {
                if !sub.filter.matches(&event) {
                    return true;
                }
                match sub.tx.try_send(Arc::clone(&event)) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        sub.overflowed.store(true, Ordering::SeqCst);
                        tracing::info!(
                            subscriber = id,
                            seq = event.seq,
                            buffer,
                            "a watcher fell behind and is cut off"
                        );
                        false
                    }
                    Err(TrySendError::Closed(_)) => false,
                }
            });
        }
    }

    /// Ends every stream (after what it has buffered) with ShuttingDown, and refuses new
    /// subscribers.
    pub(crate) fn shutdown(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.subscribers.clear();
    }
}

/// Unregisters its subscriber when the stream is dropped (the client went away).
#[derive(Debug)]
struct Registration {
    bus: EventBus,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.bus.lock().subscribers.remove(&self.id);
    }
}
