//! Running test code inside a lab namespace: a thread that enters the namespace with setns
//! (checking it left the machine's own), then runs a current-thread tokio runtime there.
//! Sockets made on it belong to the namespace: clients and listeners of the tests never
//! touch the machine's network.

use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::thread;

/// Enter `ns` on this thread, or panic.
fn enter(ns: &str) {
    let file = File::open(format!("/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("cannot open network namespace {ns}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("cannot enter network namespace {ns}: {e}"));
    // The process's own namespace (its main thread never moves) and, where it can be read
    // (sandboxes hide it), PID 1's: this thread must be in neither.
    let ns = |path: &str| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    let mine = ns("/proc/thread-self/ns/net").unwrap();
    assert_ne!(
        Some(mine),
        ns("/proc/self/ns/net").ok(),
        "still in the test process's network namespace; refusing to go on"
    );
    if let Ok(init) = ns("/proc/1/ns/net") {
        assert_ne!(
            mine, init,
            "in PID 1's network namespace; refusing to go on"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Run `f` inside `ns` and return what it returns; a panic inside is re-raised here.
pub fn run_in<F, Fut, R>(ns: &str, f: F) -> R
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = R>,
    R: Send,
{
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name(format!("in {ns}"))
            .spawn_scoped(scope, || {
                enter(ns);
                runtime().block_on(f())
            })
            .unwrap();
        match worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Run `f` inside `ns` in the background (a server for the test); it ends when the future
/// does.
pub fn spawn_in<F, Fut>(ns: &str, f: F) -> thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let ns = ns.to_owned();
    thread::Builder::new()
        .name(format!("server in {ns}"))
        .spawn(move || {
            enter(&ns);
            runtime().block_on(f());
        })
        .unwrap()
}

/// Run blocking code on a thread of its own inside `ns` (a packet flood next to the test's
/// own work); join the handle for what it returns.
pub fn thread_in<F, R>(ns: &str, f: F) -> thread::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let ns = ns.to_owned();
    thread::Builder::new()
        .name(format!("worker in {ns}"))
        .spawn(move || {
            enter(&ns);
            f()
        })
        .unwrap()
}

/// One HTTP/1.1 GET from inside `ns`, as a Prometheus scraper sends it; the whole response.
pub fn http_get(ns: &str, addr: &str, path: &str) -> String {
    let addr = addr.to_owned();
    let path = path.to_owned();
    run_in(ns, || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    })
}
