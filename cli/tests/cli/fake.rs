//! An in-memory stand-in for havipd: the three gRPC services on a unix socket in a fresh
//! temporary directory, with just enough behaviour to exercise havipctl (defaults filled
//! in, revisions, field masks, BadRequest details, pages, a scriptable event stream), and
//! a record of every request for the tests to inspect.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration as StdDuration;

use havip_proto::v1::event_service_server::{EventService, EventServiceServer};
use havip_proto::v1::history_service_server::{HistoryService, HistoryServiceServer};
use havip_proto::v1::instance_service_server::{InstanceService, InstanceServiceServer};
use havip_proto::v1::maintenance_service_server::{MaintenanceService, MaintenanceServiceServer};
use havip_proto::v1::sync_group_service_server::{SyncGroupService, SyncGroupServiceServer};
use havip_proto::v1::tracker::Check;
use havip_proto::v1::{
    AuthType, Authentication, ChangeKind, ChecksumMode, ConfigChange, CreateInstanceRequest,
    DeleteInstanceRequest, DeleteInstanceResponse, Event, GetInstanceRequest, HistoryFilter,
    Instance, InstanceSpec, InstanceStatus, ListConfigChangesRequest, ListConfigChangesResponse,
    ListInstancesRequest, ListInstancesResponse, ListTransitionsRequest, ListTransitionsResponse,
    State, Transition, UpdateInstanceRequest, UpdateInstanceResponse, WatchEventsRequest,
};
use havip_proto::v1::{
    ClearOverrideRequest, CreateSyncGroupRequest, DeleteSyncGroupRequest, DeleteSyncGroupResponse,
    GetSyncGroupRequest, ListSyncGroupsRequest, ListSyncGroupsResponse, OverridePriorityRequest,
    PriorityOverride, ReportHealthRequest, ReportHealthResponse, SyncGroup, UpdateSyncGroupRequest,
};
use pbjson_types::{Duration, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream, UnixListenerStream};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The fake serves at most this many history entries per page, so that a default
/// `history` (50 entries) takes several pages.
pub const MAX_PAGE: usize = 25;

/// How the next WatchEvents calls end; each call takes the first remaining plan, and
/// calls after the last plan replay everything and end cleanly.
#[derive(Debug, Clone)]
pub enum WatchPlan {
    /// Send this many events, then fail with this status.
    FailAfter(usize, Code, String),
    /// Send this many events, then keep the stream open until the client goes away.
    Hold(usize),
    /// Send every stored event, then each one given to [`Fake::push_event`], until
    /// [`Fake::drop_streams`] ends the stream with UNAVAILABLE.
    Live,
}

#[derive(Debug, Default)]
pub struct Data {
    pub instances: BTreeMap<String, Instance>,
    /// Newest first, as the API returns them.
    pub transitions: Vec<Transition>,
    /// Newest first.
    pub config_changes: Vec<ConfigChange>,
    /// The events that WatchEvents replays, in seq order.
    pub events: Vec<Event>,
    /// Events with a seq below this are "pruned": asking for them is OUT_OF_RANGE.
    pub oldest_kept_seq: u64,
    pub watch_plans: Vec<WatchPlan>,
    pub sync_groups: BTreeMap<String, SyncGroup>,
    /// Events that a WatchEvents call still open (a `Hold` plan) sends as they are pushed
    /// here with [`Fake::push_event`].
    pub live: Vec<mpsc::Sender<Event>>,

    // What havipctl sent.
    pub creates: Vec<CreateInstanceRequest>,
    pub updates: Vec<UpdateInstanceRequest>,
    pub deletes: Vec<DeleteInstanceRequest>,
    pub lists: Vec<ListInstancesRequest>,
    pub watches: Vec<WatchEventsRequest>,
    /// (page_size, page_token, filter) of every history call.
    pub history_calls: Vec<(u32, String, Option<HistoryFilter>)>,
    pub demotes: Vec<OverridePriorityRequest>,
    pub promotes: Vec<OverridePriorityRequest>,
    pub clears: Vec<ClearOverrideRequest>,
    pub reports: Vec<ReportHealthRequest>,
    pub group_creates: Vec<CreateSyncGroupRequest>,
    pub group_updates: Vec<UpdateSyncGroupRequest>,
    pub group_deletes: Vec<DeleteSyncGroupRequest>,
    pub calls: usize,
}

#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Data>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        // A test that panicked while holding the lock has failed already.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake daemon; stops when dropped.
pub struct Fake {
    shared: Shared,
    pub url: String,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Fake {
    /// On a unix socket, as havipd listens by default.
    pub async fn start() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("havipd.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let url = format!("unix://{}", path.display());
        Self::serve(UnixListenerStream::new(listener), url, dir)
    }

    /// On a TCP port of the loopback address.
    pub async fn start_tcp() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        Self::serve(
            TcpListenerStream::new(listener),
            url,
            tempfile::tempdir().unwrap(),
        )
    }

    fn serve<S, IO>(incoming: S, url: String, dir: tempfile::TempDir) -> Fake
    where
        S: Stream<Item = std::io::Result<IO>> + Send + 'static,
        IO: tonic::transport::server::Connected
            + tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + Send
            + Unpin
            + 'static,
    {
        let shared = Shared::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder()
            .add_service(InstanceServiceServer::new(shared.clone()))
            .add_service(EventServiceServer::new(shared.clone()))
            .add_service(HistoryServiceServer::new(shared.clone()))
            .add_service(MaintenanceServiceServer::new(shared.clone()))
            .add_service(SyncGroupServiceServer::new(shared.clone()));
        tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Fake {
            shared,
            url,
            _dir: dir,
            stop: Some(stop),
        }
    }

    pub fn data(&self) -> MutexGuard<'_, Data> {
        self.shared.lock()
    }

    /// Stores an event for later replays and sends it to every stream held open.
    pub async fn push_event(&self, event: Event) {
        let senders = {
            let mut data = self.data();
            data.events.push(event.clone());
            data.live.clone()
        };
        for sender in senders {
            let _ = sender.send(event.clone()).await;
        }
    }

    /// Ends every stream held open with UNAVAILABLE, as a daemon going away would.
    pub fn drop_streams(&self) {
        self.data().live.clear();
    }
}

pub fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn secs(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

/// A fixed time (2026-11-26T12:00:00Z) for what is printed without an age.
pub const FIXED: i64 = 1_795_694_400;

/// The fake's "now" for what is printed with an age: three and a half days before the
/// real clock, rounded to the minute, so that every age that havipctl prints is
/// "3d ago", however slow the machine is.
pub fn now() -> i64 {
    static NOW: OnceLock<i64> = OnceLock::new();
    *NOW.get_or_init(|| {
        let then = jiff::Timestamp::now().as_second() - 84 * 3600;
        then - then.rem_euclid(60)
    })
}

/// `seconds` as havipctl prints it with TZ=UTC: "2026-11-26 12:00:00".
pub fn local_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .unwrap()
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// What havipd documents for fields left unset at creation.
fn fill_defaults(spec: &mut InstanceSpec) {
    spec.version.get_or_insert(3);
    spec.priority.get_or_insert(100);
    spec.advert_interval.get_or_insert(Duration {
        seconds: 1,
        nanos: 0,
    });
    spec.preempt.get_or_insert(true);
    spec.preempt_delay.get_or_insert_default();
    spec.accept_mode.get_or_insert(true);
    spec.auth.get_or_insert(Authentication {
        r#type: AuthType::None as i32,
        ..Default::default()
    });
    let garp = spec.garp.get_or_insert_default();
    garp.repeat.get_or_insert(5);
    garp.delay.get_or_insert(Duration {
        seconds: 5,
        nanos: 0,
    });
    garp.refresh.get_or_insert_default();
    garp.refresh_repeat.get_or_insert(1);
    if spec.v3_ipv4_checksum == ChecksumMode::Unspecified as i32 {
        spec.v3_ipv4_checksum = ChecksumMode::PseudoHeader as i32;
    }
}

fn validate(spec: &InstanceSpec) -> Result<(), Status> {
    let mut details = ErrorDetails::new();
    if !(1..=255).contains(&spec.vrid) {
        details.add_bad_request_violation("vrid", format!("must be 1-255, not {}", spec.vrid));
    }
    if spec.virtual_addresses.is_empty() {
        details.add_bad_request_violation("virtual_addresses", "at least one address is needed");
    }
    if spec.interface.is_empty() {
        details.add_bad_request_violation("interface", "is required");
    }
    if details.has_bad_request_violations() {
        return Err(Status::with_error_details(
            Code::InvalidArgument,
            "the instance spec is invalid",
            details,
        ));
    }
    Ok(())
}

/// Copies one field (a field-mask path) from `src` into `dst`.
fn copy_field(path: &str, dst: &mut InstanceSpec, src: &InstanceSpec) -> Result<(), Status> {
    let src_garp = src.garp.unwrap_or_default();
    match path {
        "interface" => dst.interface.clone_from(&src.interface),
        "vrid" => dst.vrid = src.vrid,
        "version" => dst.version = src.version,
        "priority" => dst.priority = src.priority,
        "advert_interval" => dst.advert_interval = src.advert_interval,
        "preempt" => dst.preempt = src.preempt,
        "preempt_delay" => dst.preempt_delay = src.preempt_delay,
        "accept_mode" => dst.accept_mode = src.accept_mode,
        "virtual_addresses" => dst.virtual_addresses.clone_from(&src.virtual_addresses),
        "unicast_source" => dst.unicast_source.clone_from(&src.unicast_source),
        "unicast_peers" => dst.unicast_peers.clone_from(&src.unicast_peers),
        "auth" => dst.auth.clone_from(&src.auth),
        "vmac" => dst.vmac = src.vmac,
        "garp.repeat" => dst.garp.get_or_insert_default().repeat = src_garp.repeat,
        "garp.delay" => dst.garp.get_or_insert_default().delay = src_garp.delay,
        "garp.refresh" => dst.garp.get_or_insert_default().refresh = src_garp.refresh,
        "garp.refresh_repeat" => {
            dst.garp.get_or_insert_default().refresh_repeat = src_garp.refresh_repeat;
        }
        "v3_ipv4_checksum" => dst.v3_ipv4_checksum = src.v3_ipv4_checksum,
        "description" => dst.description.clone_from(&src.description),
        "labels" => dst.labels.clone_from(&src.labels),
        "disabled" => dst.disabled = src.disabled,
        "trackers" => dst.trackers.clone_from(&src.trackers),
        other => {
            return Err(Status::with_error_details(
                Code::InvalidArgument,
                format!("cannot update {other:?}"),
                ErrorDetails::with_bad_request_violation(
                    "update_mask",
                    format!("unknown path {other:?}"),
                ),
            ));
        }
    }
    Ok(())
}

const PATHS: &[&str] = &[
    "interface",
    "vrid",
    "version",
    "priority",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "accept_mode",
    "virtual_addresses",
    "unicast_source",
    "unicast_peers",
    "auth",
    "vmac",
    "garp.repeat",
    "garp.delay",
    "garp.refresh",
    "garp.refresh_repeat",
    "v3_ipv4_checksum",
    "description",
    "labels",
    "disabled",
    "trackers",
];

fn changed_fields(old: &InstanceSpec, new: &InstanceSpec) -> Vec<String> {
    PATHS
        .iter()
        .filter(|path| {
            let mut copy = old.clone();
            copy_field(path, &mut copy, new).is_ok() && copy != *old
        })
        .map(|path| (*path).to_owned())
        .collect()
}

/// As havipd answers: the password is never sent back.
fn redacted(instance: &Instance) -> Instance {
    let mut instance = instance.clone();
    if let Some(auth) = instance.spec.as_mut().and_then(|s| s.auth.as_mut()) {
        auth.password_set = !auth.password.is_empty();
        auth.password.clear();
    }
    instance
}

fn not_found(name: &str) -> Status {
    Status::not_found(format!("no instance named {name}"))
}

fn check_revision(instance: &Instance, expected: u64) -> Result<(), Status> {
    if expected != 0 && expected != instance.revision {
        return Err(Status::aborted(format!(
            "{} is at revision {}, not {expected}: someone changed it; read it again",
            instance.name, instance.revision
        )));
    }
    Ok(())
}

impl Data {
    fn record_change(
        &mut self,
        instance: &str,
        revision: u64,
        kind: ChangeKind,
        fields: Vec<String>,
        comment: &str,
    ) {
        self.config_changes.insert(
            0,
            ConfigChange {
                instance: instance.to_owned(),
                revision,
                kind: kind as i32,
                actor: "uid:0".into(),
                time: ts(now()),
                changed_fields: fields,
                comment: comment.to_owned(),
                ..Default::default()
            },
        );
    }
}

#[tonic::async_trait]
impl InstanceService for Shared {
    async fn create_instance(
        &self,
        request: Request<CreateInstanceRequest>,
    ) -> Result<Response<Instance>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.creates.push(request.clone());
        let mut spec = request.spec.unwrap_or_default();
        validate(&spec)?;
        if data.instances.contains_key(&request.name) {
            return Err(Status::already_exists(format!(
                "{} exists already",
                request.name
            )));
        }
        fill_defaults(&mut spec);
        let instance = Instance {
            name: request.name.clone(),
            status: Some(InstanceStatus {
                state: if spec.disabled {
                    State::Disabled
                } else {
                    State::Backup
                } as i32,
                effective_priority: spec.priority.unwrap_or_default(),
                master_address: "10.0.0.12".into(),
                master_priority: 150,
                master_advert_interval: secs(1),
                state_since: ts(now() - 180),
                ..Default::default()
            }),
            spec: Some(spec),
            revision: 1,
            create_time: ts(now() - 180),
            update_time: ts(now() - 180),
        };
        if !request.validate_only {
            data.instances
                .insert(request.name.clone(), instance.clone());
            data.record_change(
                &request.name,
                1,
                ChangeKind::Create,
                Vec::new(),
                &request.comment,
            );
        }
        Ok(Response::new(redacted(&instance)))
    }

    async fn update_instance(
        &self,
        request: Request<UpdateInstanceRequest>,
    ) -> Result<Response<UpdateInstanceResponse>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.updates.push(request.clone());
        let current = data
            .instances
            .get(&request.name)
            .cloned()
            .ok_or_else(|| not_found(&request.name))?;
        check_revision(&current, request.expected_revision)?;
        let old = current.spec.clone().unwrap_or_default();
        let given = request.spec.unwrap_or_default();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut new = if paths.is_empty() {
            let mut replacement = given;
            fill_defaults(&mut replacement);
            replacement
        } else {
            let mut merged = old.clone();
            for path in &paths {
                copy_field(path, &mut merged, &given)?;
            }
            merged
        };
        validate(&new)?;
        // An auth update without a password keeps the stored one, as havipd does.
        if let (Some(new_auth), Some(old_auth)) = (new.auth.as_mut(), old.auth.as_ref())
            && new_auth.r#type == old_auth.r#type
            && new_auth.password.is_empty()
        {
            new_auth.password.clone_from(&old_auth.password);
        }
        let fields = changed_fields(&old, &new);
        let mut instance = current;
        if !fields.is_empty() {
            instance.spec = Some(new);
            instance.revision += 1;
            instance.update_time = ts(now());
            if !request.validate_only {
                data.instances
                    .insert(request.name.clone(), instance.clone());
                data.record_change(
                    &request.name,
                    instance.revision,
                    ChangeKind::Update,
                    fields.clone(),
                    &request.comment,
                );
            }
        }
        Ok(Response::new(UpdateInstanceResponse {
            instance: Some(redacted(&instance)),
            changed: !fields.is_empty(),
            changed_fields: fields,
        }))
    }

    async fn delete_instance(
        &self,
        request: Request<DeleteInstanceRequest>,
    ) -> Result<Response<DeleteInstanceResponse>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.deletes.push(request.clone());
        let current = data
            .instances
            .get(&request.name)
            .ok_or_else(|| not_found(&request.name))?;
        check_revision(current, request.expected_revision)?;
        let revision = current.revision;
        data.instances.remove(&request.name);
        data.record_change(
            &request.name,
            revision,
            ChangeKind::Delete,
            Vec::new(),
            &request.comment,
        );
        Ok(Response::new(DeleteInstanceResponse {}))
    }

    async fn get_instance(
        &self,
        request: Request<GetInstanceRequest>,
    ) -> Result<Response<Instance>, Status> {
        let name = request.into_inner().name;
        let mut data = self.lock();
        data.calls += 1;
        let instance = data.instances.get(&name).ok_or_else(|| not_found(&name))?;
        Ok(Response::new(redacted(instance)))
    }

    async fn list_instances(
        &self,
        request: Request<ListInstancesRequest>,
    ) -> Result<Response<ListInstancesResponse>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.lists.push(request.clone());
        // Reverse name order: havipctl must not rely on the daemon's order.
        let instances = data
            .instances
            .values()
            .rev()
            .filter(|i| {
                let labels = &i
                    .spec
                    .as_ref()
                    .map(|s| s.labels.clone())
                    .unwrap_or_default();
                request
                    .label_selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(redacted)
            .collect();
        Ok(Response::new(ListInstancesResponse { instances }))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for Shared {
    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let request = request.into_inner();
        let (events, plan, live) = {
            let mut data = self.lock();
            data.calls += 1;
            data.watches.push(request.clone());
            let after = request.after_seq.unwrap_or(0);
            if request.after_seq.is_some() && after + 1 < data.oldest_kept_seq {
                return Err(Status::out_of_range(format!(
                    "events after {after} are no longer kept; the oldest kept is {}",
                    data.oldest_kept_seq
                )));
            }
            let events: Vec<Event> = data
                .events
                .iter()
                .filter(|e| e.seq > after)
                .filter(|e| request.instances.is_empty() || request.instances.contains(&e.instance))
                .filter(|e| request.kinds.is_empty() || request.kinds.contains(&e.kind))
                .cloned()
                .collect();
            let plan = if data.watch_plans.is_empty() {
                None
            } else {
                Some(data.watch_plans.remove(0))
            };
            // Registered under the same lock as the snapshot: no pushed event is missed.
            let live = if matches!(plan, Some(WatchPlan::Live)) {
                let (live_tx, live_rx) = mpsc::channel(10_000);
                data.live.push(live_tx);
                Some(live_rx)
            } else {
                None
            };
            (events, plan, live)
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let count = match &plan {
                Some(WatchPlan::FailAfter(n, ..) | WatchPlan::Hold(n)) => *n,
                Some(WatchPlan::Live) | None => events.len(),
            };
            for event in events.into_iter().take(count) {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            match plan {
                Some(WatchPlan::FailAfter(_, code, message)) => {
                    let _ = tx.send(Err(Status::new(code, message))).await;
                }
                Some(WatchPlan::Hold(_)) => tx.closed().await,
                Some(WatchPlan::Live) => {
                    let Some(mut live) = live else { return };
                    while let Some(event) = live.recv().await {
                        let wanted = (request.instances.is_empty()
                            || request.instances.contains(&event.instance))
                            && (request.kinds.is_empty() || request.kinds.contains(&event.kind));
                        if wanted && tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    let _ = tx
                        .send(Err(Status::unavailable("havipd is restarting")))
                        .await;
                }
                // Dropping tx ends the stream with OK.
                None => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn bad_priority(priority: u32) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("priority {priority} is out of range"),
        ErrorDetails::with_bad_request_violation("priority", "must be 1-254"),
    )
}

impl Shared {
    fn set_override(
        &self,
        request: OverridePriorityRequest,
        default: u32,
        promote: bool,
    ) -> Result<Response<Instance>, Status> {
        let mut data = self.lock();
        data.calls += 1;
        if promote {
            data.promotes.push(request.clone());
        } else {
            data.demotes.push(request.clone());
        }
        let priority = request.priority.unwrap_or(default);
        if !(1..=254).contains(&priority) {
            return Err(bad_priority(priority));
        }
        let instance = data
            .instances
            .get_mut(&request.name)
            .ok_or_else(|| not_found(&request.name))?;
        let spec = instance.spec.get_or_insert_default();
        spec.priority_override = Some(PriorityOverride {
            priority,
            expires: request.duration.map(|d| Timestamp {
                seconds: FIXED + d.seconds,
                nanos: 0,
            }),
            reason: request.reason.clone(),
        });
        instance.status.get_or_insert_default().effective_priority = priority;
        instance.revision += 1;
        Ok(Response::new(redacted(instance)))
    }
}

#[tonic::async_trait]
impl MaintenanceService for Shared {
    async fn demote(
        &self,
        request: Request<OverridePriorityRequest>,
    ) -> Result<Response<Instance>, Status> {
        self.set_override(request.into_inner(), 1, false)
    }

    async fn promote(
        &self,
        request: Request<OverridePriorityRequest>,
    ) -> Result<Response<Instance>, Status> {
        self.set_override(request.into_inner(), 254, true)
    }

    async fn clear_override(
        &self,
        request: Request<ClearOverrideRequest>,
    ) -> Result<Response<Instance>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.clears.push(request.clone());
        let instance = data
            .instances
            .get_mut(&request.name)
            .ok_or_else(|| not_found(&request.name))?;
        let spec = instance.spec.get_or_insert_default();
        spec.priority_override = None;
        let priority = spec.priority.unwrap_or(100);
        instance.status.get_or_insert_default().effective_priority = priority;
        Ok(Response::new(redacted(instance)))
    }

    async fn report_health(
        &self,
        request: Request<ReportHealthRequest>,
    ) -> Result<Response<ReportHealthResponse>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.reports.push(request.clone());
        let instances = data
            .instances
            .values()
            .filter(|i| {
                i.spec.as_ref().is_some_and(|s| {
                    s.trackers.iter().any(
                        |t| matches!(&t.check, Some(Check::Report(r)) if r.check == request.check),
                    )
                })
            })
            .map(|i| i.name.clone())
            .collect();
        Ok(Response::new(ReportHealthResponse { instances }))
    }
}

impl Data {
    /// Members must exist and belong to no other group.
    fn check_members(&self, group: &SyncGroup) -> Result<(), Status> {
        let mut details = ErrorDetails::new();
        for (i, member) in group.instances.iter().enumerate() {
            if !self.instances.contains_key(member) {
                details.add_bad_request_violation(
                    format!("group.instances[{i}]"),
                    format!("no instance named {member}"),
                );
            } else if let Some(other) = self
                .sync_groups
                .values()
                .find(|g| g.name != group.name && g.instances.contains(member))
            {
                details.add_bad_request_violation(
                    format!("group.instances[{i}]"),
                    format!("{member} belongs to sync group {} already", other.name),
                );
            }
        }
        if details.has_bad_request_violations() {
            return Err(Status::with_error_details(
                Code::InvalidArgument,
                format!("cannot make sync group {}", group.name),
                details,
            ));
        }
        Ok(())
    }

    fn set_membership(&mut self, group: &str, members: &[String]) {
        for instance in self.instances.values_mut() {
            let status = instance.status.get_or_insert_default();
            if members.contains(&instance.name) {
                status.sync_group = group.to_owned();
            } else if status.sync_group == group {
                status.sync_group.clear();
            }
        }
    }
}

fn no_group(name: &str) -> Status {
    Status::not_found(format!("no sync group named {name}"))
}

#[tonic::async_trait]
impl SyncGroupService for Shared {
    async fn create_sync_group(
        &self,
        request: Request<CreateSyncGroupRequest>,
    ) -> Result<Response<SyncGroup>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.group_creates.push(request.clone());
        let mut group = request.group.unwrap_or_default();
        if data.sync_groups.contains_key(&group.name) {
            return Err(Status::already_exists(format!(
                "sync group {} exists already",
                group.name
            )));
        }
        data.check_members(&group)?;
        group.revision = 1;
        data.set_membership(&group.name, &group.instances);
        data.sync_groups.insert(group.name.clone(), group.clone());
        Ok(Response::new(group))
    }

    async fn update_sync_group(
        &self,
        request: Request<UpdateSyncGroupRequest>,
    ) -> Result<Response<SyncGroup>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.group_updates.push(request.clone());
        let mut group = request.group.unwrap_or_default();
        let current = data
            .sync_groups
            .get(&group.name)
            .cloned()
            .ok_or_else(|| no_group(&group.name))?;
        if request.expected_revision != 0 && request.expected_revision != current.revision {
            return Err(Status::aborted(format!(
                "sync group {} is at revision {}, not {}",
                group.name, current.revision, request.expected_revision
            )));
        }
        data.check_members(&group)?;
        group.revision = current.revision + u64::from(current.instances != group.instances);
        data.set_membership(&group.name, &group.instances);
        data.sync_groups.insert(group.name.clone(), group.clone());
        Ok(Response::new(group))
    }

    async fn delete_sync_group(
        &self,
        request: Request<DeleteSyncGroupRequest>,
    ) -> Result<Response<DeleteSyncGroupResponse>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.group_deletes.push(request.clone());
        if data.sync_groups.remove(&request.name).is_none() {
            return Err(no_group(&request.name));
        }
        data.set_membership(&request.name, &[]);
        Ok(Response::new(DeleteSyncGroupResponse {}))
    }

    async fn get_sync_group(
        &self,
        request: Request<GetSyncGroupRequest>,
    ) -> Result<Response<SyncGroup>, Status> {
        let name = request.into_inner().name;
        let mut data = self.lock();
        data.calls += 1;
        data.sync_groups
            .get(&name)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| no_group(&name))
    }

    async fn list_sync_groups(
        &self,
        _request: Request<ListSyncGroupsRequest>,
    ) -> Result<Response<ListSyncGroupsResponse>, Status> {
        let mut data = self.lock();
        data.calls += 1;
        // Reverse name order: havipctl must not rely on the daemon's order.
        let groups = data.sync_groups.values().rev().cloned().collect();
        Ok(Response::new(ListSyncGroupsResponse { groups }))
    }
}

fn matches(filter: Option<&HistoryFilter>, instance: &str, time: Option<&Timestamp>) -> bool {
    let Some(f) = filter else { return true };
    let seconds = time.map_or(0, |t| t.seconds);
    (f.instance.is_empty() || f.instance == instance)
        && f.since.as_ref().is_none_or(|s| seconds >= s.seconds)
        && f.until.as_ref().is_none_or(|u| seconds < u.seconds)
}

/// One page of `items` from the offset in `token`, at most MAX_PAGE long.
fn page<T: Clone>(items: &[T], page_size: u32, token: &str) -> Result<(Vec<T>, String), Status> {
    let start: usize = if token.is_empty() {
        0
    } else {
        token
            .parse()
            .map_err(|_| Status::invalid_argument("bad page token"))?
    };
    let size = if page_size == 0 {
        100
    } else {
        page_size as usize
    }
    .min(MAX_PAGE);
    let end = (start + size).min(items.len());
    let next = if end < items.len() {
        end.to_string()
    } else {
        String::new()
    };
    Ok((items[start.min(end)..end].to_vec(), next))
}

#[tonic::async_trait]
impl HistoryService for Shared {
    async fn list_transitions(
        &self,
        request: Request<ListTransitionsRequest>,
    ) -> Result<Response<ListTransitionsResponse>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.history_calls.push((
            request.page_size,
            request.page_token.clone(),
            request.filter.clone(),
        ));
        let selected: Vec<Transition> = data
            .transitions
            .iter()
            .filter(|t| matches(request.filter.as_ref(), &t.instance, t.time.as_ref()))
            .cloned()
            .collect();
        let (transitions, next_page_token) =
            page(&selected, request.page_size, &request.page_token)?;
        Ok(Response::new(ListTransitionsResponse {
            transitions,
            next_page_token,
        }))
    }

    async fn list_config_changes(
        &self,
        request: Request<ListConfigChangesRequest>,
    ) -> Result<Response<ListConfigChangesResponse>, Status> {
        let request = request.into_inner();
        let mut data = self.lock();
        data.calls += 1;
        data.history_calls.push((
            request.page_size,
            request.page_token.clone(),
            request.filter.clone(),
        ));
        let selected: Vec<ConfigChange> = data
            .config_changes
            .iter()
            .filter(|c| matches(request.filter.as_ref(), &c.instance, c.time.as_ref()))
            .cloned()
            .collect();
        let (changes, next_page_token) = page(&selected, request.page_size, &request.page_token)?;
        Ok(Response::new(ListConfigChangesResponse {
            changes,
            next_page_token,
        }))
    }
}

/// A stored instance as havipd would hold it after `create-instance NAME --interface eth0
/// --vrid VRID --vip VIP`.
pub fn instance(name: &str, vrid: u32, vip: &str, labels: &[(&str, &str)]) -> Instance {
    let mut spec = InstanceSpec {
        interface: "eth0".into(),
        vrid,
        virtual_addresses: vec![vip.into()],
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    };
    fill_defaults(&mut spec);
    Instance {
        name: name.into(),
        status: Some(InstanceStatus {
            state: State::Master as i32,
            effective_priority: 100,
            master_address: "10.0.0.11".into(),
            state_since: ts(now() - 600),
            ..Default::default()
        }),
        spec: Some(spec),
        revision: 1,
        create_time: ts(now() - 600),
        update_time: ts(now() - 600),
    }
}

pub fn transition(
    seq: u64,
    instance: &str,
    from: State,
    to: State,
    seconds_ago: i64,
) -> Transition {
    Transition {
        instance: instance.into(),
        from: from as i32,
        to: to as i32,
        reason: Some(havip_proto::v1::TransitionReason {
            code: "master_down_timer".into(),
            description: "master-down timer expired (last master seen: 10.0.0.12)".into(),
            peer_address: "10.0.0.12".into(),
        }),
        priority: 100,
        master_address: "10.0.0.11".into(),
        time: ts(now() - seconds_ago),
        seq,
    }
}

/// Long enough for a slow, shared machine; only there so that a bug cannot hang the run.
pub const HANG_GUARD: StdDuration = StdDuration::from_secs(120);
