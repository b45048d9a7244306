//! HistoryService: transitions and config changes, filtered and paginated.

use crate::convert;
use crate::error::Error;
use crate::store::{HistoryQuery, Store, StoreError};
use havip_proto::v1::{self, history_service_server::HistoryService};
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub(super) struct History {
    store: Store,
}

impl History {
    pub fn new(store: Store) -> Self {
        History { store }
    }
}

fn query(
    filter: Option<v1::HistoryFilter>,
    page_size: u32,
    page_token: String,
) -> Result<HistoryQuery, Status> {
    let f = filter.unwrap_or_default();
    let time = |field: &str, t: Option<pbjson_types::Timestamp>| {
        t.map(|t| {
            convert::system_time(&t).ok_or_else(|| {
                Status::invalid_argument(format!("filter.{field}: the time is out of range"))
            })
        })
        .transpose()
    };
    Ok(HistoryQuery {
        instance: (!f.instance.is_empty()).then_some(f.instance),
        since: time("since", f.since)?,
        until: time("until", f.until)?,
        page_size,
        page_token: (!page_token.is_empty()).then_some(page_token),
    })
}

fn store_status(e: StoreError) -> Status {
    Status::from(match e {
        StoreError::BadPageToken { .. } => Error::Invalid(vec![crate::spec::Violation::new(
            "page_token",
            e.to_string(),
        )]),
        e if e.is_unavailable() => Error::Unavailable(e.to_string()),
        e => Error::Internal(e.to_string()),
    })
}

#[tonic::async_trait]
impl HistoryService for History {
    async fn list_transitions(
        &self,
        request: Request<v1::ListTransitionsRequest>,
    ) -> Result<Response<v1::ListTransitionsResponse>, Status> {
        let r = request.into_inner();
        let q = query(r.filter, r.page_size, r.page_token)?;
        let page = self
            .store
            .list_transitions(&q)
            .await
            .map_err(store_status)?;
        Ok(Response::new(v1::ListTransitionsResponse {
            transitions: page.items,
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn list_config_changes(
        &self,
        request: Request<v1::ListConfigChangesRequest>,
    ) -> Result<Response<v1::ListConfigChangesResponse>, Status> {
        let r = request.into_inner();
        let q = query(r.filter, r.page_size, r.page_token)?;
        let page = self
            .store
            .list_config_changes(&q)
            .await
            .map_err(store_status)?;
        let changes = page
            .items
            .into_iter()
            .map(|mut c| {
                c.old_spec = c.old_spec.map(crate::spec::redact);
                c.new_spec = c.new_spec.map(crate::spec::redact);
                c
            })
            .collect();
        Ok(Response::new(v1::ListConfigChangesResponse {
            changes,
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}
