//! SyncGroupService: protobuf in, manager requests, protobuf out.

use super::actor;
use crate::error::Error;
use crate::manager::ManagerHandle;
use crate::spec::validate_comment;
use havip_proto::v1::{self, sync_group_service_server::SyncGroupService};
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub(super) struct SyncGroups {
    manager: ManagerHandle,
}

impl SyncGroups {
    pub fn new(manager: ManagerHandle) -> Self {
        SyncGroups { manager }
    }
}

#[tonic::async_trait]
impl SyncGroupService for SyncGroups {
    async fn create_sync_group(
        &self,
        request: Request<v1::CreateSyncGroupRequest>,
    ) -> Result<Response<v1::SyncGroup>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        validate_comment("comment", &r.comment).map_err(Error::from)?;
        let group = self
            .manager
            .create_group(r.group.unwrap_or_default(), actor, r.comment)
            .await?;
        Ok(Response::new(group))
    }

    async fn update_sync_group(
        &self,
        request: Request<v1::UpdateSyncGroupRequest>,
    ) -> Result<Response<v1::SyncGroup>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        validate_comment("comment", &r.comment).map_err(Error::from)?;
        let group = self
            .manager
            .update_group(
                r.group.unwrap_or_default(),
                r.expected_revision,
                actor,
                r.comment,
            )
            .await?;
        Ok(Response::new(group))
    }

    async fn delete_sync_group(
        &self,
        request: Request<v1::DeleteSyncGroupRequest>,
    ) -> Result<Response<v1::DeleteSyncGroupResponse>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        validate_comment("comment", &r.comment).map_err(Error::from)?;
        self.manager.delete_group(r.name, actor, r.comment).await?;
        Ok(Response::new(v1::DeleteSyncGroupResponse {}))
    }

    async fn get_sync_group(
        &self,
        request: Request<v1::GetSyncGroupRequest>,
    ) -> Result<Response<v1::SyncGroup>, Status> {
        Ok(Response::new(
            self.manager.get_group(request.into_inner().name).await?,
        ))
    }

    async fn list_sync_groups(
        &self,
        _request: Request<v1::ListSyncGroupsRequest>,
    ) -> Result<Response<v1::ListSyncGroupsResponse>, Status> {
        Ok(Response::new(v1::ListSyncGroupsResponse {
            groups: self.manager.list_groups().await?,
        }))
    }
}
