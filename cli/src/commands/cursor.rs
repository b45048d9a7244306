//! The cursor file of `watch --cursor-file`: the seq of the last event handled, replaced
//! atomically (a temporary file in the same folder, fsync, rename, fsync of the folder),
//! so that after a crash it holds either the old seq or the new one, never a torn write.
//!
//! The folder must not be writable by other users unless it is sticky and ours (like /tmp
//! for root): anyone who can write there could swap the file for one that makes watch
//! skip events or run hooks again, or plant a symlink where the temporary file goes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::CliError;

#[derive(Debug)]
pub struct Cursor {
    path: PathBuf,
    dir: PathBuf,
    temp: PathBuf,
}

impl Cursor {
    /// Checks the folder (creating it, 0700, if missing) and the file if it exists.
    pub fn open(path: &Path) -> Result<Self, CliError> {
        let bad = |message: String| CliError::BadFile {
            path: path.display().to_string(),
            message,
        };
        let name = path
            .file_name()
            .ok_or_else(|| bad("names no file".to_owned()))?
            .to_string_lossy()
            .into_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| bad(format!("cannot create its folder: {e}")))?;
        }
        let meta =
            fs::metadata(&dir).map_err(|e| bad(format!("cannot inspect its folder: {e}")))?;
        let uid = nix::unistd::Uid::effective().as_raw();
        let mode = meta.permissions().mode();
        let world_writable = mode & 0o002 != 0;
        let sticky_and_ours = mode & 0o1000 != 0 && meta.uid() == uid;
        if world_writable && !sticky_and_ours {
            return Err(bad(format!(
                "its folder {} is writable by every user, who could replace the cursor and \
                 make watch skip or repeat events: use a folder only havipctl's user can \
                 write, e.g. /var/lib/havip-notify (StateDirectory= in a systemd unit)",
                dir.display()
            )));
        }
        if let Ok(file) = fs::symlink_metadata(path)
            && (file.uid() != uid || !file.is_file())
        {
            return Err(bad(
                "is not a regular file owned by havipctl's user; remove it or choose another"
                    .to_owned(),
            ));
        }
        Ok(Self {
            temp: dir.join(format!(".{name}.tmp")),
            path: path.to_path_buf(),
            dir,
        })
    }

    /// The seq recorded, or `None` when there is no file yet.
    pub fn read(&self) -> Result<Option<u64>, CliError> {
        match fs::read_to_string(&self.path) {
            Ok(text) => text.trim().parse().map(Some).map_err(|_| CliError::BadFile {
                path: self.path.display().to_string(),
                message: format!(
                    "holds {:?}, not an event seq: fix it, or remove it to start with new events",
                    text.trim()
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CliError::ReadFile {
                path: self.path.display().to_string(),
                source,
            }),
        }
    }

    /// Records `seq` durably.
    pub fn write(&self, seq: u64) -> Result<(), CliError> {
        let failed = |what: &str, e: std::io::Error| {
            CliError::Failed(format!(
                "cannot record event {seq} in {}: {what}: {e}",
                self.path.display()
            ))
        };
        // A leftover from a crash is ours (the folder is checked): start afresh.
        let _ = fs::remove_file(&self.temp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.temp)
            .map_err(|e| failed("create the temporary file", e))?;
        file.write_all(format!("{seq}\n").as_bytes())
            .map_err(|e| failed("write", e))?;
        file.sync_all().map_err(|e| failed("fsync", e))?;
        drop(file);
        fs::rename(&self.temp, &self.path).map_err(|e| failed("rename", e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| failed("fsync the folder", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/cursor");
        let cursor = Cursor::open(&path).unwrap();
        assert_eq!(cursor.read().unwrap(), None);
        cursor.write(41).unwrap();
        cursor.write(42).unwrap();
        assert_eq!(cursor.read().unwrap(), Some(42));
        assert_eq!(fs::read_to_string(&path).unwrap(), "42\n");
        let mode = fs::metadata(dir.path().join("state"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "a folder it creates is private");
        assert!(!dir.path().join("state/.cursor.tmp").exists());
    }

    #[test]
    fn a_world_writable_folder_is_refused_unless_sticky_and_ours() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = Cursor::open(&dir.path().join("cursor")).unwrap_err();
        assert!(err.to_string().contains("writable by every user"), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        Cursor::open(&dir.path().join("cursor")).unwrap();
    }

    #[test]
    fn a_garbled_cursor_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        fs::write(&path, "12x").unwrap();
        let err = Cursor::open(&path).unwrap().read().unwrap_err();
        assert!(err.to_string().contains("not an event seq"), "{err}");
    }
}
