//! Wiring: open the store, start the data plane and its helpers, restore the instances,
//! serve the API, and stop cleanly on SIGTERM/SIGINT.

use crate::api::{self, Services};
use crate::args::{Args, LogFormat};
use crate::manager::Manager;
use crate::net::garp::{GarpLimits, GarpService};
use crate::net::link::watch_links;
use crate::net::netlink::Netlink;
use crate::runtime::{HostOps, Recorder, RuntimeHandle};
use crate::store::{Store, StoreOptions};
use crate::trackers::TrackerService;
use havip_proto::v1;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot talk to the kernel over netlink: {0}")]
    Net(#[from] crate::net::NetError),
    #[error("cannot start the data plane: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Api(#[from] api::ApiError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("invalid --log-level {0:?}: {1}")]
    LogFilter(String, String),
}

pub fn init_logging(args: &Args) -> Result<(), DaemonError> {
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| DaemonError::LogFilter(args.log_level.clone(), e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless; keep the first.
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// Transitions go to the store, which never blocks the data plane.
struct StoreRecorder(Store);

impl Recorder for StoreRecorder {
    fn transition(&self, transition: v1::Transition) {
        self.0.record_transition(transition);
    }

    fn tracker_change(&self, instance: &str, change: v1::TrackerChange) {
        self.0.record_tracker_change(instance, change);
    }
}

fn daemon_event(store: &Store, kind: v1::EventKind, detail: String) {
    store.record_daemon_event(
        kind,
        v1::DaemonEvent {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            detail,
        },
    );
}

pub async fn run(args: Args) -> Result<(), DaemonError> {
    let (store, bus) = Store::open(StoreOptions {
        event_retention: args.event_retention,
        subscriber_buffer: args.watch_buffer as usize,
        ..StoreOptions::new(args.db.clone())
    })
    .await?;
    info!(db = %args.db.display(), "store open");

    let netlink = Netlink::connect().await?;
    let garp = GarpService::spawn(GarpLimits::default())?;
    let host_ops = HostOps::spawn(netlink.clone());
    let recorder: Arc<dyn Recorder> = Arc::new(StoreRecorder(store.clone()));
    let runtime =
        RuntimeHandle::spawn(host_ops.clone(), garp, recorder).map_err(DaemonError::Runtime)?;

    let trackers = TrackerService::spawn(runtime.clone(), netlink.clone());
    let mut links = watch_links().await?;
    let link_runtime = runtime.clone();
    let link_trackers = trackers.clone();
    tokio::spawn(async move {
        while let Some(event) = links.next().await {
            link_trackers.link_event(event.clone());
            if link_runtime.link_event(event).is_err() {
                break;
            }
        }
    });

    let manager =
        Manager::start(store.clone(), runtime, netlink, host_ops, trackers.clone()).await?;
    daemon_event(
        &store,
        v1::EventKind::DaemonStarted,
        format!("listening on {}", args.listen),
    );

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let services = Services {
        manager: manager.clone(),
        store: store.clone(),
        bus,
        trackers,
    };
    let listen = args.listen.clone();
    let server = tokio::spawn(async move {
        api::serve(&listen, services, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let served = tokio::select! {
        _ = term.recv() => { info!(signal = "SIGTERM", "stopping"); None }
        _ = int.recv() => { info!(signal = "SIGINT", "stopping"); None }
        r = server => Some(r),
    };

    daemon_event(
        &store,
        v1::EventKind::DaemonStopping,
        "stopping: instances step down".into(),
    );
    if let Err(e) = manager.shutdown().await {
        warn!(error = %e, "stopping the instances failed");
    }
    let _ = stop_tx.send(());
    if let Err(e) = store.close().await {
        error!(error = %e, "closing the store failed; the last events may not be saved");
    }
    info!("stopped");
    match served {
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(e)) => {
            error!(error = %e, "the API server task failed");
            Ok(())
        }
        _ => Ok(()),
    }
}
