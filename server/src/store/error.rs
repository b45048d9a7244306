//! The store's error type, and the mapping from SQLite's result codes to what a caller (and
//! an operator reading the message) can act on.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What went wrong in the store. Messages name the database file, say what was wrong and
/// what to do about it, because they end up in RPC replies and logs read by operators.
///
/// `Clone` because one write failure answers every config change waiting in the batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be written (or read) right now. Transitions and events are kept
    /// queued and retried; config changes are refused.
    #[error(
        "database {path} {cause} ({detail}): {advice}; config changes are refused until \
         it is fixed, VRRP keeps running",
        path = path.display(),
        advice = cause.advice()
    )]
    Unavailable {
        path: Arc<Path>,
        cause: Unavailable,
        detail: String,
    },
    /// The file is damaged, is not a havip database, or holds a row this version cannot
    /// read.
    #[error(
        "database {path} is corrupt or not a havip database ({detail}): stop havipd and \
         restore the file from a backup, or move it aside to start with an empty one",
        path = path.display()
    )]
    Corrupt { path: Arc<Path>, detail: String },
    /// A uniqueness rule of the schema refused the change (the manager checks first; this
    /// is the backstop). The message says which rule.
    #[error("{detail}")]
    Conflict { detail: String },
    /// An update or delete named an instance that has no row.
    #[error("instance {instance:?} is not in the database")]
    NotFound { instance: String },
    /// An update or delete named a sync group that has no row.
    #[error("sync group {group:?} is not in the database")]
    SyncGroupNotFound { group: String },
    /// A config change that cannot be recorded as given (a bug in the caller).
    #[error("config change of instance {instance:?} cannot be recorded: {detail}")]
    InvalidCommit { instance: String, detail: String },
    /// A page token that this store did not issue for this query.
    #[error(
        "invalid page token {token:?}: {reason}; pass the next_page_token of the previous \
         response unchanged, with the same filter, or no token to start from the newest"
    )]
    BadPageToken { token: String, reason: String },
    /// Applying the schema migrations at open failed.
    #[error(
        "migrating database {path} failed ({detail}): if it was written by a newer havipd, \
         run that version or restore a backup made for this one",
        path = path.display()
    )]
    Migration { path: Arc<Path>, detail: String },
    /// The store was closed (the daemon is stopping).
    #[error("the store is closed: havipd is shutting down")]
    Closed,
    /// Anything SQLite or sqlx reported that fits none of the above.
    #[error("database {path}: unexpected error: {detail}", path = path.display())]
    Database { path: Arc<Path>, detail: String },
}

impl StoreError {
    /// Whether this is a temporary condition of the store (the API answers UNAVAILABLE):
    /// the database is locked, read-only, full or failing, or the daemon is stopping.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Closed)
    }

    /// Classifies an sqlx error. `path` names the file in the message.
    pub(crate) fn from_sqlx(path: &Arc<Path>, err: &sqlx::Error) -> Self {
        let path = Arc::clone(path);
        let detail = err.to_string();
        match err {
            sqlx::Error::Database(db) => {
                let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
                match classify(code) {
                    Class::Unavailable(cause) => Self::Unavailable {
                        cause: refine(&path, cause),
                        path,
                        detail,
                    },
                    Class::Corrupt => Self::Corrupt { path, detail },
                    Class::Constraint | Class::Other => Self::Database { path, detail },
                }
            }
            sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => Self::Unavailable {
                cause: refine(&path, Unavailable::Io),
                path,
                detail,
            },
            sqlx::Error::PoolTimedOut => Self::Unavailable {
                path,
                cause: Unavailable::Busy,
                detail,
            },
            sqlx::Error::PoolClosed => Self::Closed,
            sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
                Self::Corrupt { path, detail }
            }
            _ => Self::Database { path, detail },
        }
    }

    /// The SQLite extended result code of a constraint violation, if `err` is one.
    pub(crate) fn constraint_code(err: &sqlx::Error) -> Option<i32> {
        let sqlx::Error::Database(db) = err else {
            return None;
        };
        let code = db.code().and_then(|c| c.parse::<i32>().ok())?;
        matches!(classify(code), Class::Constraint).then_some(code)
    }
}

/// Why the database is unavailable; each cause has its own advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Another process holds a lock on the file.
    Busy,
    /// The file or its filesystem is read-only.
    ReadOnly,
    /// The filesystem is full.
    DiskFull,
    /// The disk or filesystem reports I/O errors.
    Io,
    /// The file cannot be opened or created.
    CantOpen,
    /// SQLite ran out of memory.
    NoMemory,
    /// SQLite would not switch the file to WAL journal mode (it reports the mode it kept).
    NoWal,
}

impl Unavailable {
    fn advice(self) -> &'static str {
        match self {
            Self::Busy => {
                "another process holds a lock on it; find it (e.g. `fuser -v` on the file) \
                 and stop it"
            }
            Self::ReadOnly => "check the file's permissions and the filesystem",
            Self::DiskFull => "free space on its filesystem",
            Self::Io => {
                "check that its filesystem is mounted read-write and the disk is healthy (the \
                 kernel log, dmesg, says more)"
            }
            Self::CantOpen => "check that its folder exists and is writable by havipd",
            Self::NoMemory => "check the machine's memory",
            Self::NoWal => {
                "put the database on a local filesystem that supports shared memory (not NFS)"
            }
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Busy => "is locked",
            Self::ReadOnly => "is read-only",
            Self::DiskFull => "is on a full disk",
            Self::Io => "has I/O errors",
            Self::CantOpen => "cannot be opened",
            Self::NoMemory => "cannot be used: out of memory",
            Self::NoWal => "cannot use WAL journal mode",
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    Unavailable(Unavailable),
    Corrupt,
    Constraint,
    Other,
}

/// Maps an SQLite (extended) result code to what it means for havipd. The primary code is
/// the low byte (<https://www.sqlite.org/rescode.html>).
fn classify(code: i32) -> Class {
    match code & 0xff {
        5 | 6 => Class::Unavailable(Unavailable::Busy), // SQLITE_BUSY, SQLITE_LOCKED
        7 => Class::Unavailable(Unavailable::NoMemory), // SQLITE_NOMEM
        8 => Class::Unavailable(Unavailable::ReadOnly), // SQLITE_READONLY
        10 | 22 => Class::Unavailable(Unavailable::Io), // SQLITE_IOERR, SQLITE_NOLFS
        13 => Class::Unavailable(Unavailable::DiskFull), // SQLITE_FULL
        14 => Class::Unavailable(Unavailable::CantOpen), // SQLITE_CANTOPEN
        11 | 26 => Class::Corrupt,                      // SQLITE_CORRUPT, SQLITE_NOTADB
        19 => Class::Constraint,                        // SQLITE_CONSTRAINT
        _ => Class::Other,
    }
}

/// SQLite reports a write refused by a read-only filesystem (EROFS) as an I/O error
/// (SQLITE_IOERR_WRITE): a filesystem the kernel remounted read-only after errors is the
/// usual way a running daemon's database becomes read-only, and "read-only" is what the
/// operator must hear then.
fn refine(path: &Path, cause: Unavailable) -> Unavailable {
    if cause != Unavailable::Io {
        return cause;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match nix::sys::statvfs::statvfs(dir) {
        Ok(fs) if fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) => {
            Unavailable::ReadOnly
        }
        _ => cause,
    }
}

/// SQLITE_CONSTRAINT_PRIMARYKEY: here, an instance name that already exists.
pub(crate) const CONSTRAINT_PRIMARYKEY: i32 = 1555;
/// SQLITE_CONSTRAINT_UNIQUE: here, UNIQUE(interface, vrid, family).
pub(crate) const CONSTRAINT_UNIQUE: i32 = 2067;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_map_to_what_an_operator_can_act_on() {
        // Extended codes carry the primary code in their low byte.
        let cases = [
            (5, Class::Unavailable(Unavailable::Busy)),
            (517, Class::Unavailable(Unavailable::Busy)), // SQLITE_BUSY_SNAPSHOT
            (6, Class::Unavailable(Unavailable::Busy)),
            (8, Class::Unavailable(Unavailable::ReadOnly)),
            (1032, Class::Unavailable(Unavailable::ReadOnly)), // SQLITE_READONLY_DBMOVED
            (13, Class::Unavailable(Unavailable::DiskFull)),
            (10, Class::Unavailable(Unavailable::Io)),
            (3338, Class::Unavailable(Unavailable::Io)), // SQLITE_IOERR_FSYNC
            (14, Class::Unavailable(Unavailable::CantOpen)),
            (11, Class::Corrupt),
            (26, Class::Corrupt),
            (CONSTRAINT_UNIQUE, Class::Constraint),
            (CONSTRAINT_PRIMARYKEY, Class::Constraint),
            (1, Class::Other),
        ];
        for (code, want) in cases {
            assert_eq!(classify(code), want, "code {code}");
        }
    }

    #[test]
    fn messages_name_the_file_the_problem_and_the_remedy() {
        let err = StoreError::Unavailable {
            path: Arc::from(Path::new("/var/lib/havip/havip.db")),
            cause: Unavailable::ReadOnly,
            detail: "attempt to write a readonly database".into(),
        };
        let msg = err.to_string();
        assert!(err.is_unavailable());
        assert!(
            msg.contains("/var/lib/havip/havip.db is read-only"),
            "{msg}"
        );
        assert!(msg.contains("check the file's permissions"), "{msg}");
        assert!(msg.contains("VRRP keeps running"), "{msg}");
        assert!(
            !StoreError::NotFound {
                instance: "a".into()
            }
            .is_unavailable()
        );
        assert!(StoreError::Closed.is_unavailable());
    }

    #[test]
    fn an_io_error_is_read_only_only_on_a_read_only_filesystem() {
        // The read-only case needs a read-only mount (root): storage.rs covers the
        // daemon's side of it end to end.
        let tmp = tempfile::tempdir().unwrap();
        let here = tmp.path().join("havip.db");
        assert_eq!(refine(&here, Unavailable::Io), Unavailable::Io);
        assert_eq!(refine(&here, Unavailable::Busy), Unavailable::Busy);
        assert_eq!(
            refine(Path::new("relative.db"), Unavailable::Io),
            Unavailable::Io
        );
    }
}
