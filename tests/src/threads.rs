//! A daemon's threads, seen from outside: found by name in /proc, their scheduling policy
//! and allowed CPUs read, and one of them stopped for a while with ptrace while the rest of
//! the process runs on, as a host stalling that thread's vCPU would stop it.

use nix::sys::ptrace;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::time::Duration;

/// The /proc folder of `pid`'s thread named `name`.
pub fn task_dir(pid: Pid, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .map(|task| task.path())
        .find(|dir| std::fs::read_to_string(dir.join("comm")).is_ok_and(|comm| comm.trim() == name))
}

/// The thread id of `pid`'s thread named `name`.
pub fn thread_id(pid: Pid, name: &str) -> Option<Pid> {
    let dir = task_dir(pid, name)?;
    let tid = dir.file_name()?.to_str()?.parse().ok()?;
    Some(Pid::from_raw(tid))
}

/// A thread's scheduling policy, from /proc (field 41 of `stat`: 0 = SCHED_OTHER, 2 =
/// SCHED_RR).
pub fn policy(pid: Pid, name: &str) -> Option<u32> {
    let stat = std::fs::read_to_string(task_dir(pid, name)?.join("stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    // stat's field 41 is the 39th after the state (field 3).
    rest.split_whitespace().nth(38)?.parse().ok()
}

/// The CPUs a thread may run on (`Cpus_allowed_list` of its status: "0", "0-1", "0,2-3").
pub fn allowed_cpus(pid: Pid, name: &str) -> Option<Vec<usize>> {
    let status = std::fs::read_to_string(task_dir(pid, name)?.join("status")).ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Stops thread `tid` for `how_long`, then lets it go on; the process's other threads run
/// throughout. Blocks the calling thread meanwhile (ptrace answers only the thread that
/// attached).
pub fn freeze(tid: Pid, how_long: Duration) -> nix::Result<()> {
    ptrace::seize(tid, ptrace::Options::empty())?;
    ptrace::interrupt(tid)?;
    // The thread stops at the next moment the kernel gets to it; wait for that.
    loop {
        match waitpid(tid, Some(WaitPidFlag::__WALL))? {
            WaitStatus::PtraceEvent(..) | WaitStatus::Stopped(..) => break,
            _ => continue,
        }
    }
    std::thread::sleep(how_long);
    ptrace::detach(tid, None)
}
