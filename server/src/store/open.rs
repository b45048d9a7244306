//! Opening the database: its folder and file (private, since specs hold passwords), the
//! write connection with its pragmas, the migrations, and the read pool.

use super::error::{StoreError, Unavailable};
use super::types::StoreOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Row, SqliteConnection};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// The top-level migrations folder, embedded at build time (server/build.rs reruns the
/// build when it changes).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Creates the folder (0700) and the file (0600) when missing. Existing ones keep their
/// permissions: an operator may have chosen them.
pub(crate) async fn prepare_file(path: &Arc<Path>) -> Result<(), StoreError> {
    let owned = Arc::clone(path);
    let result = tokio::task::spawn_blocking(move || -> io::Result<()> {
        if let Some(dir) = owned.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&owned)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await;
    let io_error = match result {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(join) => io::Error::other(join.to_string()),
    };
    let cause = match io_error.kind() {
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
            Unavailable::ReadOnly
        }
        io::ErrorKind::StorageFull => Unavailable::DiskFull,
        _ => Unavailable::CantOpen,
    };
    Err(StoreError::Unavailable {
        path: Arc::clone(path),
        cause,
        detail: format!("creating it or its folder: {io_error}"),
    })
}

/// The write connection: WAL (checked), foreign keys on, `busy_timeout` from the options,
/// the migrations applied. `synchronous` is chosen per batch by the writer.
pub(crate) async fn connect_writer(
    path: &Arc<Path>,
    opts: &StoreOptions,
) -> Result<SqliteConnection, StoreError> {
    let mut conn = reconnect_writer(path, opts).await?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| StoreError::Migration {
            path: Arc::clone(path),
            detail: e.to_string(),
        })?;
    Ok(conn)
}

/// A write connection as [`connect_writer`] makes it, for a database this process has
/// already migrated: the writer replaces its connection with one when a failed write left
/// the old one unusable.
pub(crate) async fn reconnect_writer(
    path: &Arc<Path>,
    opts: &StoreOptions,
) -> Result<SqliteConnection, StoreError> {
    let db = |e: sqlx::Error| StoreError::from_sqlx(path, &e);
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(opts.busy_timeout)
        // The writer reports failures itself, once per episode; sqlx's per-statement
        // logging would repeat them on every retry.
        .disable_statement_logging()
        .connect()
        .await
        .map_err(db)?;
    // SQLite answers with the journal mode in effect, which is how a filesystem without
    // shared-memory support (where WAL cannot work) shows itself.
    let row = sqlx::query("PRAGMA journal_mode = WAL")
        .fetch_one(&mut conn)
        .await
        .map_err(db)?;
    let mode: String = row.try_get(0).map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable {
            path: Arc::clone(path),
            cause: Unavailable::NoWal,
            detail: format!("SQLite kept journal mode {mode:?}"),
        });
    }
    // Checkpoints are the checkpointer's job; this is only the safety net (checkpoint.rs).
    // 10,000 pages of 4 KiB: ~40 MB.
    sqlx::query("PRAGMA wal_autocheckpoint = 10000")
        .execute(&mut conn)
        .await
        .map_err(db)?;
    Ok(conn)
}

/// The checkpointer's connection: writable (a checkpoint writes the database file, and the
/// checkpointer restarts the WAL with a write of its own), never creating it (the writer
/// has). `synchronous = NORMAL`: its restart write only needs the WAL header synced, which
/// SQLite does at NORMAL; checkpoints sync the WAL and the database file at any level.
pub(crate) async fn connect_checkpointer(
    path: &Arc<Path>,
    opts: &StoreOptions,
) -> Result<SqliteConnection, StoreError> {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(opts.busy_timeout)
        .synchronous(SqliteSynchronous::Normal)
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|e| StoreError::from_sqlx(path, &e))
}

/// The read pool: read-only connections, so a bug in a reader cannot write.
pub(crate) async fn connect_readers(
    path: &Arc<Path>,
    opts: &StoreOptions,
) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(opts.busy_timeout)
        .disable_statement_logging();
    SqlitePoolOptions::new()
        .max_connections(opts.read_connections.max(1))
        .min_connections(0)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::from_sqlx(path, &e))
}
