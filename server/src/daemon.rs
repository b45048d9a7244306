//! Wiring: check the access settings, open the store, start the data plane and its helpers,
//! restore the instances, serve the API and the metrics, tell systemd, and stop cleanly on
//! SIGTERM/SIGINT.

use crate::api::{self, ApiOptions, Services};
use crate::args::Args;
use crate::manager::Manager;
use crate::net::garp::{GarpLimits, GarpService};
use crate::net::link::watch_links;
use crate::net::netlink::Netlink;
use crate::observability::metrics::Sources;
use crate::observability::{Metrics, MetricsServer};
use crate::runtime::{HostOps, Recorded, Recorder, RuntimeHandle, Scheduling};
use crate::store::{RecordBatch, Store, StoreOptions};
use crate::trackers::TrackerService;
use havip_proto::v1;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

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
    #[error("{0}")]
    Metrics(#[from] crate::observability::ScrapeError),
    #[error("{0}")]
    UnsafeDir(#[from] crate::fsguard::UnsafeDir),
}

/// Transitions go to the store, which never blocks the data plane; a round's records go
/// together, so the writer sees the whole round at once.
struct StoreRecorder(Store);

impl Recorder for StoreRecorder {
    fn record(&self, round: Vec<Recorded>) {
        let mut batch = RecordBatch::with_capacity(round.len());
        for recorded in round {
            match recorded {
                Recorded::Transition(transition) => batch.transition(transition),
                Recorded::TrackerChange { instance, change } => {
                    batch.tracker_change(instance, change);
                }
                Recorded::DualMaster { instance, dual } => batch.dual_master(instance, dual),
            }
        }
        self.0.record_batch(batch);
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
    // Refuse a bad access setting before anything is created.
    let tls = api::tls::server_config(
        &args.listen,
        &api::tls::TlsFiles {
            cert: args.tls_cert.clone(),
            key: args.tls_key.clone(),
            client_ca: args.tls_client_ca.clone(),
        },
        args.insecure,
    )?;
    let socket_group = args
        .socket_group
        .as_deref()
        .map(api::resolve_group)
        .transpose()?;
    // Only havipd reads the database: 0700, as the store makes it.
    crate::fsguard::prepare_parent(&args.db, "--db", 0o700)?;
    // Bound before anything runs: an address in use or refused stops the daemon before it
    // touches the database or an interface (and before it would have to undo anything).
    // Connections wait in the backlog until the API is served.
    let bound = args.listen.bind(socket_group).await?;

    let (store, bus) = Store::open(StoreOptions {
        event_retention: args.event_retention,
        subscriber_buffer: args.watch_buffer as usize,
        max_queued_events: args.max_queued_events as usize,
        ..StoreOptions::new(args.db.clone())
    })
    .await?;
    info!(db = %args.db.display(), "store open");

    let netlink = Netlink::connect().await?;
    let garp = GarpService::spawn(GarpLimits::default())?;
    let host_ops = HostOps::spawn(netlink.clone());
    let recorder: Arc<dyn Recorder> = Arc::new(StoreRecorder(store.clone()));
    let runtime = RuntimeHandle::spawn(
        host_ops.clone(),
        garp,
        recorder,
        Scheduling {
            realtime_priority: args.realtime_priority,
            standby_sender: args.standby_sender,
        },
    )
    .map_err(DaemonError::Runtime)?;
    let metrics = Metrics::for_daemon(Sources {
        board: runtime.board().clone(),
        store: store.clone(),
        bus: bus.clone(),
    });
    let _metrics_server = match args.metrics_listen {
        Some(addr) => Some(MetricsServer::start(addr, metrics.clone()).await?),
        None => None,
    };

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
    let options = ApiOptions {
        tls,
        max_watchers: args.max_watchers as usize,
        metrics,
    };
    let server = tokio::spawn(async move {
        api::serve(bound, services, options, async {
            let _ = stop_rx.await;
        })
        .await
    });
    // The stored instances are running and the API is bound: ready.
    crate::notify::ready(&format!("serving the API on {}", args.listen));
    let served = tokio::select! {
        _ = term.recv() => { info!(signal = "SIGTERM", "stopping"); None }
        _ = int.recv() => { info!(signal = "SIGINT", "stopping"); None }
        r = server => Some(r),
    };

    crate::notify::stopping();
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
