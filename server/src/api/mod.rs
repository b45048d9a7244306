//! The gRPC API: tonic services that only translate between protobuf and the manager,
//! the store and the event bus, plus standard health and reflection services.

mod actor;
mod events;
mod history;
mod instances;
mod listen;
mod maintenance;
mod syncgroups;

pub use listen::{DEFAULT_LISTEN, Listen};

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

/// Largest request accepted; a spec with 255 IPv6 addresses is a few KiB.
const MAX_REQUEST_BYTES: usize = 1 << 20;

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
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    listen: &Listen,
    services: Services,
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

    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            InstanceServiceServer::new(instances::Instances::new(services.manager.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            EventServiceServer::new(events::Events::new(services.bus.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            HistoryServiceServer::new(history::History::new(services.store.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            MaintenanceServiceServer::new(maintenance::Maintenance::new(
                services.manager.clone(),
                services.trackers.clone(),
            ))
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            SyncGroupServiceServer::new(syncgroups::SyncGroups::new(services.manager.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        );
    listen.serve(router, shutdown).await
}
