//! The store: havipd's SQLite database (sqlx, WAL) of instance config, the config audit
//! trail, the state transition log and the event log that watch streams replay.

mod codec;
mod error;
mod time;
mod token;
mod types;

pub use error::{StoreError, Unavailable};
pub use types::{
    ConfigCommit, HistoryQuery, InstanceIdentity, Page, PruneReport, StoreOptions, StoreStats,
    StoredInstance,
};
