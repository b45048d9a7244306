//! The gRPC API: tonic services that only translate between protobuf and the manager,
//! the store and the event bus, plus standard health and reflection services.

mod actor;
mod events;
mod history;
mod instances;
mod listen;
mod maintenance;
pub mod rpc_layer;
mod syncgroups;
pub mod tls;

pub use listen::{Bound, DEFAULT_LISTEN, Listen, resolve_group};

/// The default listen address, for clap.
pub const fn listen_default() -> &'static str {
    DEFAULT_LISTEN
}

use crate::events::EventBus;
use crate::manager::ManagerHandle;
use crate::store::Store;
use havip_proto::v1::event_service_server::EventServiceServer;
use havip_proto::v1::history_service_server::HistoryServiceServer;
use havip_proto::v1::instance_service_server::InstanceServiceServer;
use havip_proto::v1::maintenance_service_server::MaintenanceServiceServer;
use havip_proto::v1::sync_group_service_server::SyncGroupServiceServer;
use std::future::Future;
use std::time::Duration;
use tower::layer::util::{Identity, Stack};

/// Largest request accepted; a spec with 255 IPv6 addresses is a few KiB.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Largest response sent: ListInstances with thousands of instances, a history page, one
/// event. Beyond it the call fails with RESOURCE_EXHAUSTED instead of growing without end.
const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Streams one connection may have open; the watchers of all connections together are
/// bounded by `--max-watchers`.
const MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// Idle connections are probed, so a vanished client's watch streams end.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// The router with the API's layers.
pub(crate) type ApiRouter = tonic::transport::server::Router<Stack<rpc_layer::RpcLayer, Identity>>;

/// How the API is served, apart from what it serves.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// TLS for a TCP listener (from [`tls::server_config`]).
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// At most this many WatchEvents streams at once.
    pub max_watchers: usize,
    pub metrics: crate::observability::Metrics,
}

/// What the services need.
#[derive(Clone, Debug)]
pub struct Services {
    pub manager: ManagerHandle,
    pub store: Store,
    pub bus: EventBus,
    pub trackers: crate::trackers::TrackerService,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        listen: String,
        source: std::io::Error,
    },
    #[error("another havipd is already serving {0}; stop it first (or use another --listen)")]
    InUse(String),
    #[error("cannot build the reflection service: {0}")]
    Reflection(String),
    #[error("{0}")]
    Refused(String),
    #[error("{flag} {}: {reason}", path.display())]
    TlsFile {
        flag: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{0}")]
    UnsafeDir(#[from] crate::fsguard::UnsafeDir),
    #[error(
        "the TLS certificate or key is not usable: {0}; check --tls-cert, --tls-key and --tls-client-ca"
    )]
    Tls(tonic::transport::Error),
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serve on `bound` until `shutdown` resolves.
pub async fn serve(
    bound: Bound,
    services: Services,
    options: ApiOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<InstanceServiceServer<instances::Instances>>()
        .await;
    health_reporter
        .set_serving::<EventServiceServer<events::Events>>()
        .await;
    health_reporter
        .set_serving::<HistoryServiceServer<history::History>>()
        .await;
    health_reporter
        .set_serving::<MaintenanceServiceServer<maintenance::Maintenance>>()
        .await;
    health_reporter
        .set_serving::<SyncGroupServiceServer<syncgroups::SyncGroups>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(havip_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ApiError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(havip_proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ApiError::Reflection(e.to_string()))?;

    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some(tls) = options.tls {
        builder = builder.tls_config(tls).map_err(ApiError::Tls)?;
    }
    let router = builder
        .layer(rpc_layer::RpcLayer::new(options.metrics))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            InstanceServiceServer::new(instances::Instances::new(services.manager.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            EventServiceServer::new(events::Events::new(
                services.bus.clone(),
                options.max_watchers,
            ))
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            HistoryServiceServer::new(history::History::new(services.store.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            MaintenanceServiceServer::new(maintenance::Maintenance::new(
                services.manager.clone(),
                services.trackers.clone(),
            ))
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            SyncGroupServiceServer::new(syncgroups::SyncGroups::new(services.manager.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        );
    bound.serve(router, shutdown).await
}
