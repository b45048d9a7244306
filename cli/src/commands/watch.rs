//! watch: prints events as they come and survives dropped connections and daemon
//! restarts by resuming after the last event printed, so nothing is lost or repeated.
//! With --exec it runs a notify hook per state change, one at a time and in order; with
//! --cursor-file it records each event once handled and resumes after it when restarted.

use std::error::Error as _;
use std::time::Duration;

use havip_proto::v1::event_service_client::EventServiceClient;
use havip_proto::v1::{Event, EventKind, WatchEventsRequest};
use tonic::Code;
use tonic::transport::Channel;

use super::Ctx;
use super::cursor::Cursor;
use super::hook::{self, Hook};
use super::inflight;
use crate::args::{EventKindArg, WatchArgs};
use crate::error::CliError;
use crate::output::format;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

pub async fn run(ctx: &Ctx, args: &WatchArgs) -> Result<(), CliError> {
    let mut hook = args
        .exec
        .as_deref()
        .map(|command| Hook::new(command, args.shell, args.exec_timeout))
        .transpose()?;
    let cursor = args.cursor_file.as_deref().map(Cursor::open).transpose()?;
    let marker = args.cursor_file.as_deref().map(inflight::path_for);
    if let (true, Some(marker), Some(cursor)) = (hook.is_some(), &marker, &cursor) {
        // A hook left running or unrecorded by a watch that was killed: see inflight.rs.
        if let Some(done) = inflight::recover(marker).await
            && cursor.read()?.is_none_or(|seq| seq < done)
        {
            cursor.write(done)?;
        }
        inflight::clear(marker);
        hook = hook.map(|h| h.with_marker(marker.clone()));
    }
    let start = match &cursor {
        Some(cursor) => cursor.read()?.or(args.since),
        None => args.since,
    };
    let mut stop = stop_signal();
    let Some(channel) = first_connection(ctx, hook.is_some(), &mut stop).await? else {
        return Ok(());
    };
    let mut client = EventServiceClient::new(channel);
    let handler = Handler {
        hook,
        cursor,
        marker,
    };
    let mut position = Position::new(start);
    let mut retry = FIRST_RETRY;
    loop {
        let request = request(args, position.resume_after());
        let status = match stream(
            ctx,
            &mut client,
            request,
            &mut position,
            &handler,
            &mut stop,
        )
        .await?
        {
            Ended::Clean | Ended::Stopped => return Ok(()),
            Ended::Failed(status) => status,
        };
        if position.take_progress() {
            retry = FIRST_RETRY;
        }
        match status.code() {
            Code::ResourceExhausted if status.source().is_none() => {
                position.fell_behind(resume_seq_in(status.message()));
            }
            _ if is_transient(&status) => {}
            // OUT_OF_RANGE (the seq asked for is no longer kept) and every other refusal
            // would fail the same way again.
            _ => return Err(status.into()),
        }
        eprintln!(
            "havipctl: lost the event stream ({}); reconnecting in {}, {}",
            describe(&status),
            humantime::format_duration(retry),
            position.describe()
        );
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// The first connection. A daemon that cannot be reached at all is a setup problem for a
/// person at a terminal: said at once. A notify service (--exec) waits for it instead, as
/// it waits through a restart later on: it may start while havipd is still starting or
/// restarting. `None` when stopped while waiting.
async fn first_connection(
    ctx: &Ctx,
    patient: bool,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tonic::transport::Channel>, CliError> {
    let mut retry = FIRST_RETRY;
    loop {
        match ctx.connect().await {
            Ok(channel) => return Ok(Some(channel)),
            Err(e) if patient => eprintln!(
                "havipctl: {e}; trying again in {}",
                humantime::format_duration(retry)
            ),
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = stop.changed() => return Ok(None),
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// Turns true on Ctrl-C or SIGTERM, which is how a watch is meant to end. It is looked at
/// only between events, so that a hook that is running finishes and is recorded first.
fn stop_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| eprintln!("havipctl: cannot listen for SIGTERM: {e}"))
            .ok();
        let terminate = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                eprintln!("havipctl: cannot listen for Ctrl-C: {e}");
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = terminate => {}
            () = interrupt => {}
        }
        let _ = tx.send(true);
        // Keeps the sender, so that receivers see the change rather than a closed channel.
        std::future::pending::<()>().await;
    });
    rx
}

/// What happens to each event besides printing it.
#[derive(Debug)]
struct Handler {
    hook: Option<Hook>,
    cursor: Option<Cursor>,
    marker: Option<std::path::PathBuf>,
}

impl Handler {
    /// The hook (for a state change), then the cursor: an event counts as handled only
    /// once its hook has exited.
    async fn handle(&self, event: &Event) -> Result<(), CliError> {
        if let Some(hook) = &self.hook
            && hook::is_state_change(event)
        {
            hook.run(event).await?;
        }
        if let Some(cursor) = &self.cursor {
            cursor.write(event.seq)?;
        }
        if let Some(marker) = &self.marker {
            inflight::clear(marker);
        }
        Ok(())
    }
}

fn request(args: &WatchArgs, after_seq: Option<u64>) -> WatchEventsRequest {
    WatchEventsRequest {
        after_seq,
        instances: args.instances.clone(),
        kinds: args.kinds.iter().map(|k| event_kind(*k) as i32).collect(),
    }
}

fn event_kind(kind: EventKindArg) -> EventKind {
    match kind {
        EventKindArg::StateChanged => EventKind::StateChanged,
        EventKindArg::InstanceCreated => EventKind::InstanceCreated,
        EventKindArg::InstanceUpdated => EventKind::InstanceUpdated,
        EventKindArg::InstanceDeleted => EventKind::InstanceDeleted,
        EventKindArg::DaemonStarted => EventKind::DaemonStarted,
        EventKindArg::DaemonStopping => EventKind::DaemonStopping,
        EventKindArg::EventsLost => EventKind::EventsLost,
        EventKindArg::TrackerChanged => EventKind::TrackerChanged,
        EventKindArg::DualMaster => EventKind::DualMaster,
    }
}

enum Ended {
    /// havipd closed the stream with OK: it has nothing more to send.
    Clean,
    /// Ctrl-C or SIGTERM.
    Stopped,
    Failed(tonic::Status),
}

/// Prints one stream's events until it ends. Only output errors are returned as errors;
/// everything the stream does is an `Ended`, for the caller to decide about.
async fn stream(
    ctx: &Ctx,
    client: &mut EventServiceClient<Channel>,
    request: WatchEventsRequest,
    position: &mut Position,
    handler: &Handler,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Ended, CliError> {
    if *stop.borrow() {
        return Ok(Ended::Stopped);
    }
    let request = tonic::Request::new(request);
    // The deadline covers getting the stream started, not the stream, which has none.
    let mut events = match tokio::time::timeout(ctx.timeout, client.watch_events(request)).await {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => return Ok(Ended::Failed(status)),
        Err(_) => {
            return Ok(Ended::Failed(tonic::Status::unavailable(format!(
                "no answer within {}",
                humantime::format_duration(ctx.timeout)
            ))));
        }
    };
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.changed() => return Ok(Ended::Stopped),
            next = events.message() => next,
        };
        match next {
            Ok(Some(event)) => {
                if position.is_new(&event) {
                    print(ctx, &event)?;
                    handler.handle(&event).await?;
                    position.printed(event.seq);
                }
            }
            Ok(None) => return Ok(Ended::Clean),
            Err(status) => return Ok(Ended::Failed(status)),
        }
    }
}

fn print(ctx: &Ctx, event: &Event) -> Result<(), CliError> {
    if ctx.out.is_table() {
        ctx.out.line(&format::event_line(event, &ctx.clock))
    } else {
        ctx.out.record(event)
    }
}

/// Where the stream stands: what to ask for after a reconnect.
#[derive(Debug)]
struct Position {
    /// The seq to resume after; `None` asks for live events only.
    after: Option<u64>,
    /// Whether an event was printed since the last `take_progress`.
    progress: bool,
}

impl Position {
    fn new(since: Option<u64>) -> Self {
        Self {
            after: since,
            progress: false,
        }
    }

    fn resume_after(&self) -> Option<u64> {
        self.after
    }

    /// Whether the event is after everything printed. havipd never repeats a seq; this
    /// makes sure that a daemon that did could not make watch print an event twice.
    fn is_new(&self, event: &Event) -> bool {
        self.after.is_none_or(|after| event.seq > after)
    }

    fn printed(&mut self, seq: u64) {
        self.after = Some(seq);
        self.progress = true;
    }

    fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progress)
    }

    /// After RESOURCE_EXHAUSTED. The last event printed is the exact resume point; the
    /// seq havipd names matters only when nothing was printed yet and there is no point.
    fn fell_behind(&mut self, named: Option<u64>) {
        if self.after.is_none() {
            self.after = named;
        }
    }

    fn describe(&self) -> String {
        match self.after {
            Some(seq) => format!("resuming after event {seq}"),
            None => "following new events".to_owned(),
        }
    }
}

/// Failures that a reconnect can cure: havipd unavailable (restarting, or its socket not
/// yet there) or the connection broken under the stream. A broken connection reaches us
/// as UNKNOWN, INTERNAL or CANCELLED with the transport error as the status's source,
/// which a status that havipd itself sent never has.
fn is_transient(status: &tonic::Status) -> bool {
    match status.code() {
        Code::Unavailable => true,
        Code::Unknown | Code::Internal | Code::Cancelled | Code::ResourceExhausted => {
            status.source().is_some()
        }
        _ => false,
    }
}

fn describe(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {}", status.code(), status.message())
    }
}

/// The seq named in a fell-behind message such as "client fell behind; resume after seq
/// 1234": the number after the last "seq" in it.
fn resume_seq_in(message: &str) -> Option<u64> {
    let (_, rest) = message.rsplit_once("seq")?;
    let digits: String = rest
        .trim_start_matches([' ', '=', ':', '#'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Event {
        Event {
            seq,
            ..Default::default()
        }
    }

    #[test]
    fn the_resume_point_is_the_last_event_printed() {
        let mut p = Position::new(None);
        assert_eq!(p.resume_after(), None);
        assert!(p.is_new(&event(5)));
        p.printed(5);
        assert_eq!(p.resume_after(), Some(5));
        assert!(!p.is_new(&event(5)));
        assert!(!p.is_new(&event(4)));
        assert!(p.is_new(&event(6)));
        assert!(p.take_progress());
        assert!(!p.take_progress());
    }

    #[test]
    fn falling_behind_resumes_after_what_was_printed() {
        let mut p = Position::new(Some(10));
        p.printed(12);
        p.fell_behind(Some(20));
        assert_eq!(
            p.resume_after(),
            Some(12),
            "resuming after 20 would lose 13-20"
        );

        let mut live = Position::new(None);
        live.fell_behind(Some(20));
        assert_eq!(live.resume_after(), Some(20));
    }

    #[test]
    fn the_seq_named_in_a_fell_behind_message() {
        assert_eq!(
            resume_seq_in("client fell behind; resume after seq 1234"),
            Some(1234)
        );
        assert_eq!(
            resume_seq_in("slow client: resume with after_seq=77"),
            Some(77)
        );
        assert_eq!(resume_seq_in("fell behind at seq #5."), Some(5));
        assert_eq!(resume_seq_in("fell behind"), None);
        assert_eq!(resume_seq_in("seq unknown"), None);
    }

    #[test]
    fn which_failures_are_retried() {
        assert!(is_transient(&tonic::Status::unavailable("restarting")));
        let reset = tonic::Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(reset.source().is_some());
        assert!(is_transient(&reset), "{reset:?}");
        assert!(!is_transient(&tonic::Status::internal("bug in havipd")));
        assert!(!is_transient(&tonic::Status::out_of_range(
            "oldest kept is 100"
        )));
        assert!(!is_transient(&tonic::Status::invalid_argument("bad kind")));
    }
}
