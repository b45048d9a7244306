//! MaintenanceService: demote, promote and clear overrides through the manager (they are
//! config changes), health reports to the tracker service.

use super::actor;
use crate::error::Error;
use crate::manager::{ManagerHandle, OverrideKind};
use crate::spec::Violation;
use crate::trackers::TrackerService;
use havip_proto::v1::{self, maintenance_service_server::MaintenanceService};
use std::time::Duration;
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub(super) struct Maintenance {
    manager: ManagerHandle,
    trackers: TrackerService,
}

impl Maintenance {
    pub fn new(manager: ManagerHandle, trackers: TrackerService) -> Self {
        Maintenance { manager, trackers }
    }

    async fn set(
        &self,
        request: Request<v1::OverridePriorityRequest>,
        kind: OverrideKind,
    ) -> Result<Response<v1::Instance>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        let duration = duration("duration", r.duration.as_ref())?;
        let instance = self
            .manager
            .set_override(r.name, kind, r.priority, duration, r.reason, actor)
            .await?;
        Ok(Response::new(instance))
    }
}

/// A protobuf duration as a std one; `None` when unset.
fn duration(field: &str, d: Option<&pbjson_types::Duration>) -> Result<Option<Duration>, Error> {
    let Some(d) = d else { return Ok(None) };
    let secs = u64::try_from(d.seconds).ok();
    let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000);
    match (secs, nanos) {
        (Some(s), Some(n)) => Ok(Some(Duration::new(s, n))),
        _ => Err(Violation::new(field, "must be a non-negative duration").into()),
    }
}

#[tonic::async_trait]
impl MaintenanceService for Maintenance {
    async fn demote(
        &self,
        request: Request<v1::OverridePriorityRequest>,
    ) -> Result<Response<v1::Instance>, Status> {
        self.set(request, OverrideKind::Demote).await
    }

    async fn promote(
        &self,
        request: Request<v1::OverridePriorityRequest>,
    ) -> Result<Response<v1::Instance>, Status> {
        self.set(request, OverrideKind::Promote).await
    }

    async fn clear_override(
        &self,
        request: Request<v1::ClearOverrideRequest>,
    ) -> Result<Response<v1::Instance>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        crate::spec::validate_comment("reason", &r.reason).map_err(Error::from)?;
        let instance = self.manager.clear_override(r.name, r.reason, actor).await?;
        Ok(Response::new(instance))
    }

    async fn report_health(
        &self,
        request: Request<v1::ReportHealthRequest>,
    ) -> Result<Response<v1::ReportHealthResponse>, Status> {
        let r = request.into_inner();
        let ttl = duration("ttl", r.ttl.as_ref())?;
        let instances = self
            .trackers
            .report(r.check, r.healthy, ttl, r.detail)
            .await?;
        Ok(Response::new(v1::ReportHealthResponse { instances }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |seconds, nanos| Some(pbjson_types::Duration { seconds, nanos });
        assert_eq!(duration("ttl", None).unwrap(), None);
        assert_eq!(
            duration("ttl", d(2, 500).as_ref()).unwrap(),
            Some(Duration::new(2, 500))
        );
        assert!(duration("ttl", d(-1, 0).as_ref()).is_err());
        assert!(duration("ttl", d(0, -5).as_ref()).is_err());
    }
}
