//! InstanceService: protobuf in, manager requests, protobuf out.

use super::actor;
use crate::error::Error;
use crate::manager::ManagerHandle;
use crate::spec::validate_comment;
use havip_proto::v1::{self, instance_service_server::InstanceService};
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub(super) struct Instances {
    manager: ManagerHandle,
}

impl Instances {
    pub fn new(manager: ManagerHandle) -> Self {
        Instances { manager }
    }
}

#[tonic::async_trait]
impl InstanceService for Instances {
    async fn create_instance(
        &self,
        request: Request<v1::CreateInstanceRequest>,
    ) -> Result<Response<v1::Instance>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        validate_comment("comment", &r.comment).map_err(Error::from)?;
        let spec = r.spec.unwrap_or_default();
        let instance = self
            .manager
            .create(r.name, spec, r.validate_only, actor, r.comment)
            .await?;
        Ok(Response::new(instance))
    }

    async fn update_instance(
        &self,
        request: Request<v1::UpdateInstanceRequest>,
    ) -> Result<Response<v1::UpdateInstanceResponse>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        validate_comment("comment", &r.comment).map_err(Error::from)?;
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let updated = self
            .manager
            .update(
                r.name,
                r.spec.unwrap_or_default(),
                mask,
                r.expected_revision,
                r.validate_only,
                actor,
                r.comment,
            )
            .await?;
        Ok(Response::new(v1::UpdateInstanceResponse {
            changed: !updated.changed_fields.is_empty(),
            changed_fields: updated.changed_fields,
            instance: Some(updated.instance),
        }))
    }

    async fn delete_instance(
        &self,
        request: Request<v1::DeleteInstanceRequest>,
    ) -> Result<Response<v1::DeleteInstanceResponse>, Status> {
        let actor = actor::of(&request);
        let r = request.into_inner();
        validate_comment("comment", &r.comment).map_err(Error::from)?;
        self.manager
            .delete(r.name, r.expected_revision, actor, r.comment)
            .await?;
        Ok(Response::new(v1::DeleteInstanceResponse {}))
    }

    async fn get_instance(
        &self,
        request: Request<v1::GetInstanceRequest>,
    ) -> Result<Response<v1::Instance>, Status> {
        Ok(Response::new(
            self.manager.get(request.into_inner().name).await?,
        ))
    }

    async fn list_instances(
        &self,
        request: Request<v1::ListInstancesRequest>,
    ) -> Result<Response<v1::ListInstancesResponse>, Status> {
        let instances = self
            .manager
            .list(request.into_inner().label_selector)
            .await?;
        Ok(Response::new(v1::ListInstancesResponse { instances }))
    }
}
