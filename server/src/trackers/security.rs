//! Script security, as keepalived's `enable_script_security`: a script havipd runs (as
//! root, or as another user) must be impossible for anyone but root to change. So the
//! executable and every directory above it must be owned by root and not writable by group
//! or others; otherwise a local user could swap in their own program and have it run with
//! the daemon's privileges.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const WRITABLE_BY_GROUP_OR_OTHERS: u32 = 0o022;
const STICKY: u32 = 0o1000;
const EXECUTABLE: u32 = 0o111;

/// Why a script may not be run, or `Ok` when it may. Blocking (it reads the filesystem):
/// call it off the async runtime's workers.
pub fn check_script(path: &Path) -> Result<(), String> {
    let resolved = std::fs::canonicalize(path).map_err(|e| {
        format!(
            "cannot use {}: {e}; give the absolute path of an executable",
            path.display()
        )
    })?;
    let meta = std::fs::metadata(&resolved)
        .map_err(|e| format!("cannot read {}: {e}", resolved.display()))?;
    let shown = if resolved == path {
        path.display().to_string()
    } else {
        format!("{} (→ {})", path.display(), resolved.display())
    };
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.mode() & EXECUTABLE == 0 {
        return Err(format!(
            "{shown} is not executable (mode {:04o}); chmod 0755 it",
            meta.mode() & 0o7777
        ));
    }
    check_entry(&shown, &meta, false)?;
    // Both the path as given (its symlinks live in those directories) and where it leads.
    for dir in ancestors(path).chain(ancestors(&resolved)) {
        let meta =
            std::fs::metadata(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        check_entry(&dir.display().to_string(), &meta, true)?;
    }
    Ok(())
}

fn ancestors(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    path.ancestors().skip(1).map(Path::to_path_buf)
}

fn check_entry(shown: &str, meta: &std::fs::Metadata, dir: bool) -> Result<(), String> {
    let what = if dir { "directory " } else { "" };
    if meta.uid() != 0 {
        return Err(format!(
            "{what}{shown} is owned by uid {}, not root; scripts and the directories above them must belong to root (chown root)",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    // A root-owned sticky directory (like /tmp) lets others add entries, but not replace
    // or remove root's, so what root put there stays root's.
    let sticky_dir = dir && mode & STICKY != 0;
    if mode & WRITABLE_BY_GROUP_OR_OTHERS != 0 && !sticky_dir {
        return Err(format!(
            "{what}{shown} is writable by group or others (mode {mode:04o}); scripts and the directories above them must be writable only by root (chmod go-w)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script_in(dir: &Path, mode: u32) -> PathBuf {
        let p = dir.join("check.sh");
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A temporary directory with `mode`, under the system's temporary folder (root-owned
    /// and sticky on the machines that run these tests as root).
    fn dir(mode: u32) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        d
    }

    fn root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    #[test]
    fn a_root_owned_script_in_a_root_owned_directory_is_accepted() {
        if !root() {
            return;
        }
        let d = dir(0o755);
        assert_eq!(check_script(&script_in(d.path(), 0o755)), Ok(()));
    }

    #[test]
    fn a_group_writable_directory_is_refused() {
        let d = dir(0o775);
        let err = check_script(&script_in(d.path(), 0o755)).unwrap_err();
        assert!(
            err.contains("writable by group or others") || err.contains("not root"),
            "{err}"
        );
        if root() {
            assert!(err.contains(&d.path().display().to_string()), "{err}");
        }
    }

    #[test]
    fn a_writable_or_non_executable_script_is_refused() {
        let d = dir(0o755);
        let err = check_script(&script_in(d.path(), 0o757)).unwrap_err();
        assert!(
            err.contains("writable") || err.contains("not root"),
            "{err}"
        );
        let err = check_script(&script_in(d.path(), 0o644)).unwrap_err();
        assert!(err.contains("not executable"), "{err}");
    }

    #[test]
    fn a_script_owned_by_another_user_is_refused() {
        if !root() {
            return;
        }
        let d = dir(0o755);
        let p = script_in(d.path(), 0o755);
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let err = check_script(&p).unwrap_err();
        assert!(err.contains("owned by uid 65534"), "{err}");
    }

    #[test]
    fn a_missing_script_is_refused() {
        let err = check_script(Path::new("/nonexistent/check")).unwrap_err();
        assert!(err.contains("/nonexistent/check"), "{err}");
    }

    #[test]
    fn a_symlink_is_checked_where_it_leads() {
        if !root() {
            return;
        }
        let good = dir(0o755);
        let bad = dir(0o777);
        let target = script_in(bad.path(), 0o755);
        let link = good.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = check_script(&link).unwrap_err();
        assert!(err.contains("writable by group or others"), "{err}");
    }
}
