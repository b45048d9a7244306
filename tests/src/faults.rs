//! Storage faults for the end-to-end tests, each a guard that undoes its fault when dropped
//! (also when the test fails): a small tmpfs of the test's own (filled up for "disk full"), a
//! lock on a database held by another process (this one), write errors injected into a
//! running havipd with strace, and an ext4 on a loop device that the kernel remounts
//! read-only. Plus SQLite's own integrity check of a stopped daemon's file.
//!
//! Why strace for "read-only": Linux refuses to remount a filesystem read-only while a file
//! on it is open for writing (EBUSY), and `chattr +i` does not stop writes through a file
//! descriptor that is already open; an ext4 that goes read-only after an error can't be
//! made writable again without unmounting it. Failing havipd's `pwrite64` calls with EROFS
//! is what a filesystem gone read-only looks like to SQLite, and it can be lifted.

use nix::unistd::Pid;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row, SqliteConnection};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static MOUNTS: AtomicU32 = AtomicU32::new(0);

/// A tmpfs of `size` mounted on a fresh folder under the system's temporary folder, mode
/// 0700 as havipd wants its database folder. Unmounted and removed on drop.
#[derive(Debug)]
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(tag: &str, size: &str) -> Tmpfs {
        let n = MOUNTS.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("havip-e2e-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let opts = format!("size={size},mode=0700");
        crate::lab::run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &opts,
            "tmpfs",
            path.to_str().unwrap(),
        ]);
        Tmpfs { path }
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }

    /// Writes a file until the filesystem has no block left.
    pub fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0xa5u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", self.path.display()),
            }
        }
        // The last partial block too.
        while f.write(&[0xa5]).is_ok_and(|n| n == 1) {}
    }

    /// Removes the filler: the space is free again.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let p = self.path.to_str().unwrap_or_default().to_owned();
        // A daemon still holding a file there would make a plain umount fail: detach it
        // then, it goes when the last file is closed.
        if !crate::lab::try_run(&["umount", &p]) {
            let _ = crate::lab::try_run(&["umount", "-l", &p]);
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A small ext4 filesystem in a file, mounted through a loop device with
/// `errors=remount-ro`, so that [`Self::fail`] makes the kernel remount it read-only as it
/// does after a disk error: the real thing, but for good (it cannot be made writable
/// again while a file on it is open). Unmounted, detached and removed on drop.
#[derive(Debug)]
pub struct Ext4 {
    pub path: PathBuf,
    image: PathBuf,
    device: String,
}

impl Ext4 {
    pub fn mount(tag: &str) -> Ext4 {
        let n = MOUNTS.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("havip-e2e-{}-{n}-{tag}", std::process::id()));
        let path = base.with_extension("mnt");
        let image = base.with_extension("img");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let image_s = image.to_str().unwrap().to_owned();
        crate::lab::run(&["mkfs.ext4", "-q", "-F", &image_s]);
        let out = crate::lab::run(&["losetup", "-f", "--show", &image_s]);
        let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let guard = Ext4 {
            path,
            image,
            device,
        };
        let p = guard.path.to_str().unwrap();
        crate::lab::run(&["mount", "-o", "errors=remount-ro", &guard.device, p]);
        crate::lab::run(&["chmod", "0700", p]);
        guard
    }

    /// Reports a filesystem error as ext4 would on a failing disk: the kernel remounts it
    /// read-only at once.
    pub fn fail(&self) {
        let name = Path::new(&self.device)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        std::fs::write(
            format!("/sys/fs/ext4/{name}/trigger_fs_error"),
            "havip e2e: simulated disk error\n",
        )
        .unwrap();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let line = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == self.path.to_str())
            .unwrap_or_default()
            .to_owned();
        let options = line.split_whitespace().nth(3).unwrap_or_default();
        assert!(
            options.split(',').any(|o| o == "ro" || o == "emergency_ro"),
            "the filesystem did not go read-only: {line}"
        );
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let p = self.path.to_str().unwrap_or_default().to_owned();
        if !crate::lab::try_run(&["umount", &p]) {
            let _ = crate::lab::try_run(&["umount", "-l", &p]);
        }
        let _ = crate::lab::try_run(&["losetup", "-d", &self.device]);
        let _ = std::fs::remove_dir(&self.path);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// A connection of the test's own to a daemon's database, as another process would open it.
pub async fn open_db(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// `PRAGMA integrity_check` of a database no daemon has open (the first answer row; "ok"
/// when the file is intact).
pub async fn integrity_check(path: &Path) -> String {
    let mut conn = open_db(path).await;
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let lines: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    let _ = sqlx::Connection::close(conn).await;
    lines.join("\n")
}

/// Copies a database's WAL back into it and truncates the WAL to nothing. SQLite reuses a
/// checkpointed WAL in place, so on a disk that fills up afterwards the database can go on
/// committing into the blocks it already has; with the WAL emptied, the next commit needs
/// new blocks, as a database that keeps growing eventually does.
pub async fn truncate_wal(path: &Path) {
    let mut conn = open_db(path).await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = sqlx::Connection::close(conn).await;
}

/// The write lock of a database, held by this process: in WAL mode `BEGIN EXCLUSIVE` takes
/// the WAL write lock (readers go on, every other writer gets SQLITE_BUSY). Dropping the
/// guard closes the connection, which releases it.
#[derive(Debug)]
pub struct DbLock {
    conn: Option<SqliteConnection>,
}

impl DbLock {
    pub async fn take(path: &Path) -> DbLock {
        let mut conn = open_db(path).await;
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .unwrap();
        DbLock { conn: Some(conn) }
    }

    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// Every `pwrite64` (SQLite's only way of writing its files), `fsync` and `fdatasync` of a
/// process fails with `errno` (e.g. "EROFS") while the guard lives: strace attached to all
/// its threads. Dropping the guard stops strace, which detaches and leaves the process as
/// it was.
#[derive(Debug)]
pub struct WriteErrors {
    strace: Child,
    pid: Pid,
}

impl WriteErrors {
    pub fn inject(pid: Pid, errno: &str) -> WriteErrors {
        let calls = "pwrite64,fsync,fdatasync";
        let strace = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-p"])
            .arg(pid.to_string())
            .arg("-e")
            .arg(format!("trace={calls}"))
            .arg("-e")
            .arg(format!("inject={calls}:error={errno}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run strace (apt-get install strace): {e}"));
        let mut guard = WriteErrors { strace, pid };
        // Attached once every thread shows a tracer.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !guard.attached() {
            if let Ok(Some(status)) = guard.strace.try_wait() {
                panic!("strace exited with {status} before attaching to {pid}");
            }
            assert!(Instant::now() < deadline, "strace did not attach to {pid}");
            std::thread::sleep(Duration::from_millis(20));
        }
        guard
    }

    fn attached(&self) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return false;
        };
        tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("TracerPid:"))
                        .map(|v| v.trim() != "0")
                })
                .unwrap_or(true)
        })
    }
}

impl Drop for WriteErrors {
    fn drop(&mut self) {
        // SIGINT makes strace detach from every thread before it exits.
        let pid = Pid::from_raw(i32::try_from(self.strace.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.strace.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.strace.kill();
        let _ = self.strace.wait();
    }
}

/// A line of `/proc/PID/status` in KiB (VmRSS, VmHWM, ...).
pub fn proc_status_kib(pid: Pid, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
