//! Where havipd may put its files (the database with its WAL, the API socket): never in a
//! folder where another user could create, replace or rename them. The folder itself must
//! not be writable by every user unless it is sticky and ours; every folder above it must
//! not be writable by every user unless sticky (like /tmp), and each must belong to us or
//! to root, since a folder's owner can rename what is inside.

use nix::unistd::{Uid, geteuid};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

const WORLD_WRITABLE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// A folder that is not safe to write in, or that could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum UnsafeDir {
    #[error(
        "{flag}: the folder {dir} is writable by every user (mode {mode:04o}), so anyone could replace havipd's files there; use a folder only havipd's user can write, e.g. /var/lib/havip or /run/havip (mode 0750)"
    )]
    WorldWritable {
        flag: &'static str,
        dir: PathBuf,
        mode: u32,
    },
    #[error(
        "{flag}: the folder {dir} is writable by every user and not sticky (mode {mode:04o}), so anyone could rename {below} inside it; use folders that only root or havipd's user can write"
    )]
    AncestorWorldWritable {
        flag: &'static str,
        dir: PathBuf,
        below: PathBuf,
        mode: u32,
    },
    #[error(
        "{flag}: the folder {dir} belongs to uid {owner}, neither havipd's user (uid {me}) nor root, so its owner could replace havipd's files; chown it or use another folder"
    )]
    Owner {
        flag: &'static str,
        dir: PathBuf,
        owner: u32,
        me: u32,
    },
    #[error("{flag}: cannot create or inspect the folder {dir}: {source}")]
    Io {
        flag: &'static str,
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Create `file`'s folder if missing (with `mode`, less the umask) and check it and the
/// folders above it. `flag` names the option the path came from, for the message.
pub fn prepare_parent(file: &Path, flag: &'static str, mode: u32) -> Result<(), UnsafeDir> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |source| UnsafeDir::Io {
        flag,
        dir: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io)?;
    // The real path: a symlink's target is what gets written to.
    let real = dir.canonicalize().map_err(io)?;
    check(&real, flag, geteuid())
}

fn check(dir: &Path, flag: &'static str, me: Uid) -> Result<(), UnsafeDir> {
    let meta = |d: &Path| {
        std::fs::metadata(d).map_err(|source| UnsafeDir::Io {
            flag,
            dir: d.to_owned(),
            source,
        })
    };
    let owned_by_us_or_root = |uid: u32| uid == me.as_raw() || uid == 0;

    let m = meta(dir)?;
    let mode = m.mode() & 0o7777;
    if mode & WORLD_WRITABLE != 0 && !(mode & STICKY != 0 && m.uid() == me.as_raw()) {
        return Err(UnsafeDir::WorldWritable {
            flag,
            dir: dir.to_owned(),
            mode,
        });
    }
    if !owned_by_us_or_root(m.uid()) {
        return Err(UnsafeDir::Owner {
            flag,
            dir: dir.to_owned(),
            owner: m.uid(),
            me: me.as_raw(),
        });
    }
    let mut below = dir;
    for ancestor in dir.ancestors().skip(1) {
        let m = meta(ancestor)?;
        let mode = m.mode() & 0o7777;
        if mode & WORLD_WRITABLE != 0 && mode & STICKY == 0 {
            return Err(UnsafeDir::AncestorWorldWritable {
                flag,
                dir: ancestor.to_owned(),
                below: below.to_owned(),
                mode,
            });
        }
        if !owned_by_us_or_root(m.uid()) {
            return Err(UnsafeDir::Owner {
                flag,
                dir: ancestor.to_owned(),
                owner: m.uid(),
                me: me.as_raw(),
            });
        }
        below = ancestor;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_private_folder_is_created_and_accepted() {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("state/havip.db");
        prepare_parent(&db, "--db", 0o700).unwrap();
        let mode = std::fs::metadata(root.path().join("state")).unwrap().mode() & 0o777;
        assert_eq!(
            mode & 0o007,
            0,
            "created without access for others: {mode:o}"
        );
    }

    #[test]
    fn a_world_writable_folder_is_refused_unless_sticky_and_ours() {
        let root = tempfile::tempdir().unwrap();
        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let err = prepare_parent(&open.join("havip.db"), "--db", 0o700).unwrap_err();
        assert!(matches!(err, UnsafeDir::WorldWritable { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("--db: the folder") && text.contains("mode 0777"),
            "{text}"
        );

        // Sticky and owned by us (tests run as the owner of what they create): accepted.
        chmod(&open, 0o1777);
        prepare_parent(&open.join("havip.db"), "--db", 0o700).unwrap();
        // Sticky but someone else's: refused.
        let err = check(&open.canonicalize().unwrap(), "--db", Uid::from_raw(4242)).unwrap_err();
        assert!(matches!(err, UnsafeDir::WorldWritable { .. }), "{err}");
    }

    #[test]
    fn a_world_writable_folder_above_is_refused_unless_sticky() {
        let root = tempfile::tempdir().unwrap();
        let open = root.path().join("open");
        let inner = open.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        chmod(&open, 0o777);
        let err = prepare_parent(&inner.join("havipd.sock"), "--listen", 0o750).unwrap_err();
        assert!(
            matches!(err, UnsafeDir::AncestorWorldWritable { .. }),
            "{err}"
        );
        chmod(&open, 0o1777);
        prepare_parent(&inner.join("havipd.sock"), "--listen", 0o750).unwrap();
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let me = geteuid();
        if me.is_root() {
            // Root owns what it creates; pretend to be another user instead.
            let err = check(
                &root.path().canonicalize().unwrap(),
                "--db",
                Uid::from_raw(4242),
            );
            // The temp folder is root's, and root is always trusted: accepted.
            assert!(err.is_ok(), "{err:?}");
            let dir = root.path().join("theirs");
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(4242), None).unwrap();
            let err = check(&dir.canonicalize().unwrap(), "--db", me).unwrap_err();
            assert!(matches!(err, UnsafeDir::Owner { owner: 4242, .. }), "{err}");
        }
    }
}
