//! The third face: the Zeebe gateway's gRPC service (`gateway_protocol.Gateway`)
//! on its own port, for the workers and starters written with Zeebe's gRPC
//! clients (`pyzeebe`, the Zeebe Java and Go clients).
//!
//! Served without generated code: [`wire`] holds the messages (written from
//! the wire contract), and [`Gateway`] routes each call by its path to a
//! handler. The handlers do what `/v2`'s do, through the same shared
//! functions (`routes.rs`, `camunda`), with the same keys, roles and
//! tenants; a token comes in the `authorization` metadata as on HTTP.

pub mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use runtime::{Command, PublishCommand, StartCommand};
use serde_json::{Map, Value};
use tonic::codegen::{http, Body, StdError};
use tonic::server::{Grpc, NamedService, ServerStreamingService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::access::{Access, Principal, Role::*};
use crate::camunda::keys::{self, Key};
use crate::camunda::{baton_key, tenant_in, tenant_out};
use crate::error::ApiError;
use crate::extract::Actor;
use crate::routes::{call, read, AppState};
use crate::tenancy;
use wire::*;

type Reply<T> = Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;

/// Each served call and who may make it (the roles of its `/v2` counterpart).
pub const CALLS: &[(&str, Access)] = &[
    ("Topology", Access::Roles(&[Developer, Operator, Worker, Starter, User, Viewer])),
    ("DeployResource", Access::Roles(&[Developer])),
    ("CreateProcessInstance", Access::Roles(&[Starter, User])),
    ("CreateProcessInstanceWithResult", Access::Roles(&[Starter, User])),
    ("CancelProcessInstance", Access::Roles(&[Operator])),
    ("ActivateJobs", Access::Roles(&[Worker])),
    ("StreamActivatedJobs", Access::Roles(&[Worker])),
    ("CompleteJob", Access::Roles(&[Worker])),
    ("FailJob", Access::Roles(&[Worker])),
    ("ThrowError", Access::Roles(&[Worker])),
    ("UpdateJobRetries", Access::Roles(&[Operator])),
    ("UpdateJobTimeout", Access::Roles(&[Operator])),
    ("PublishMessage", Access::Roles(&[Starter])),
    ("BroadcastSignal", Access::Roles(&[Starter])),
    ("SetVariables", Access::Roles(&[Operator])),
    ("ResolveIncident", Access::Roles(&[Operator])),
];

/// The gRPC status for an API error (by its HTTP status), its detail as the message.
fn status(error: ApiError) -> Status {
    let message = format!("{}: {}", error.code, error.detail);
    if error.code == "overloaded" {
        // Zeebe's backpressure: its clients retry this code on their own.
        return Status::resource_exhausted(message);
    }
    match error.http_status() {
        400 | 413 | 415 | 422 => Status::invalid_argument(message),
        401 => Status::unauthenticated(message),
        403 => Status::permission_denied(message),
        404 => Status::not_found(message),
        409 => Status::failed_precondition(message),
        429 => Status::resource_exhausted(message),
        501 => Status::unimplemented(message),
        503 => Status::unavailable(message),
        408 | 504 => Status::deadline_exceeded(message),
        _ => Status::internal(message),
    }
}

/// The service: the API's state and the door's rules.
#[derive(Clone)]
pub struct Gateway {
    state: AppState,
    security: Arc<crate::guard::Security>,
}

impl NamedService for Gateway {
    const NAME: &'static str = "gateway_protocol.Gateway";
}

/// Who calls, checked against the call's roles: `None` without authentication.
async fn caller(gateway: &Gateway, metadata: &tonic::metadata::MetadataMap, call: &str) -> Result<Option<Principal>, Status> {
    let security = &gateway.security;
    let authorization = metadata.get("authorization").and_then(|v| v.to_str().ok());
    let principal = match (&security.tokens, &security.oidc) {
        (Some(tokens), _) => Some(tokens.authenticate(authorization, gateway.state.handle.clock.now())),
        (None, Some(oidc)) => Some(oidc.authenticate(authorization).await),
        (None, None) => None,
    };
    let Some(principal) = principal else { return Ok(None) };
    let principal = principal.map_err(|_| Status::unauthenticated("this server needs a valid token in the authorization metadata (Bearer ...)"))?;
    let needed = CALLS.iter().find(|(name, _)| *name == call).map_or(Access::Roles(&[]), |(_, access)| *access);
    if !principal.may_call(needed) {
        return Err(Status::permission_denied(format!("{} may not call {call}", principal.name)));
    }
    Ok(Some(principal))
}

fn actor(principal: Option<&Principal>) -> Actor {
    Actor { name: principal.map(|p| p.name.clone()), tenants: principal.and_then(|p| p.tenants.clone()) }
}

/// A JSON object sent as text (variables, headers); empty text is none.
fn object(field: &str, text: &str) -> Result<Map<String, Value>, Status> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    crate::extract::check_depth(field, text.as_bytes()).map_err(Status::invalid_argument)?;
    match serde_json::from_str(text) {
        Ok(Value::Object(members)) => Ok(members),
        _ => Err(Status::invalid_argument(format!("{field} must be a JSON object"))),
    }
}

fn variables(field: &str, text: &str) -> Result<engine::Variables, Status> {
    Ok(object(field, text)?.into_iter().collect())
}

fn key_text(key: i64) -> String {
    key.to_string()
}

/// The key of the object `local` inside instance `number`; 0 where it does not fit a key.
fn inside(number: u64, local: u64) -> i64 {
    Key::inside(number, local).map_or(0, Key::as_i64)
}

fn definition_key(state: &AppState, tenant: &str, process_id: &str, version: u32) -> i64 {
    state.handle.workflows.find(tenant, process_id, version).map_or(0, |l| keys::definition_value(l.deployment, l.place))
}

/// A unary call: a handler of the request, on behalf of the caller.
struct Unary<Req, Resp> {
    gateway: Gateway,
    name: &'static str,
    handler: fn(Gateway, Option<Principal>, Req) -> Reply<Resp>,
}

impl<Req: Send + 'static, Resp: Send + 'static> UnaryService<Req> for Unary<Req, Resp> {
    type Response = Resp;
    type Future = Reply<Response<Resp>>;

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        let (gateway, name, handler) = (self.gateway.clone(), self.name, self.handler);
        Box::pin(async move {
            let principal = caller(&gateway, request.metadata(), name).await?;
            handler(gateway, principal, request.into_inner()).await.map(Response::new)
        })
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// A server-streaming call.
struct Streaming<Req, Resp> {
    gateway: Gateway,
    name: &'static str,
    handler: fn(Gateway, Option<Principal>, Req) -> Reply<Stream<Resp>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> ServerStreamingService<Req> for Streaming<Req, Resp> {
    type Response = Resp;
    type ResponseStream = Stream<Resp>;
    type Future = Reply<Response<Stream<Resp>>>;

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        let (gateway, name, handler) = (self.gateway.clone(), self.name, self.handler);
        Box::pin(async move {
            let principal = caller(&gateway, request.metadata(), name).await?;
            handler(gateway, principal, request.into_inner()).await.map(Response::new)
        })
    }
}

/// The codec of a call; clients may send gzip-compressed messages (Zeebe's Node client does).
fn grpc<Resp: prost::Message + Send + 'static, Req: prost::Message + Default + Send + 'static>() -> Grpc<ProstCodec<Resp, Req>> {
    Grpc::new(ProstCodec::default()).accept_compressed(tonic::codec::CompressionEncoding::Gzip)
}

/// What a call answers: always an HTTP response (a failure is a gRPC status in it).
type Answer = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

impl<B> tonic::codegen::Service<http::Request<B>> for Gateway
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Answer {
        let gateway = self.clone();
        let call = request.uri().path().strip_prefix("/gateway_protocol.Gateway/").unwrap_or_default().to_string();
        macro_rules! unary {
            ($name:literal, $handler:expr) => {{
                let service = Unary { gateway, name: $name, handler: $handler };
                Box::pin(async move { Ok(grpc().unary(service, request).await) })
            }};
        }
        macro_rules! streaming {
            ($name:literal, $handler:expr) => {{
                let service = Streaming { gateway, name: $name, handler: $handler };
                Box::pin(async move { Ok(grpc().server_streaming(service, request).await) })
            }};
        }
        match call.as_str() {
            "Topology" => unary!("Topology", topology),
            "DeployResource" => unary!("DeployResource", deploy),
            "CreateProcessInstance" => unary!("CreateProcessInstance", create),
            "CreateProcessInstanceWithResult" => unary!("CreateProcessInstanceWithResult", create_with_result),
            "CancelProcessInstance" => unary!("CancelProcessInstance", cancel),
            "ActivateJobs" => streaming!("ActivateJobs", activate),
            "StreamActivatedJobs" => streaming!("StreamActivatedJobs", stream_jobs),
            "CompleteJob" => unary!("CompleteJob", complete),
            "FailJob" => unary!("FailJob", fail),
            "ThrowError" => unary!("ThrowError", throw_error),
            "UpdateJobRetries" => unary!("UpdateJobRetries", update_retries),
            "UpdateJobTimeout" => unary!("UpdateJobTimeout", update_timeout),
            "PublishMessage" => unary!("PublishMessage", publish),
            "BroadcastSignal" => unary!("BroadcastSignal", broadcast),
            "SetVariables" => unary!("SetVariables", set_variables),
            "ResolveIncident" => unary!("ResolveIncident", resolve_incident),
            other => {
                let message = format!("{other} is part of Zeebe's gateway that Baton does not serve; docs/camunda-compatibility.md lists what it does");
                Box::pin(async move { Ok(Status::unimplemented(message).into_http()) })
            }
        }
    }
}

fn topology(_: Gateway, _: Option<Principal>, _: TopologyRequest) -> Reply<TopologyResponse> {
    Box::pin(async move {
        let partition = Partition { partition_id: 1, role: 0, health: 0 };
        let broker = BrokerInfo { node_id: 0, host: "localhost".into(), port: 0, partitions: vec![partition], version: crate::camunda::API_LEVEL.into() };
        Ok(TopologyResponse { brokers: vec![broker], cluster_size: 1, partitions_count: 1, replication_factor: 1, gateway_version: crate::camunda::API_LEVEL.into() })
    })
}

fn deploy(gateway: Gateway, principal: Option<Principal>, request: DeployResourceRequest) -> Reply<DeployResourceResponse> {
    Box::pin(async move {
        let state = &gateway.state;
        if request.resources.is_empty() {
            return Err(Status::invalid_argument("no resources: send at least one BPMN, DMN or form file"));
        }
        let mut files = Vec::new();
        for resource in request.resources {
            let text = String::from_utf8(resource.content).map_err(|_| Status::invalid_argument(format!("resource {} is not UTF-8 text", resource.name)))?;
            files.push((resource.name, text));
        }
        let tenant = tenancy::one(principal.as_ref(), tenant_in(Some(request.tenant_id).filter(|t| !t.is_empty()))).map_err(status)?;
        let command = Command::Deploy { tenant: tenant.clone(), files };
        let runtime::Reply::Deployed(deployed) = call(state, &actor(principal.as_ref()), None, None, command).await.map_err(status)? else {
            return Err(Status::internal("deploy answered without versions"));
        };
        let key = deployed.deployment as i64;
        let listing = crate::camunda::instances::listing(state, &tenant, deployed).await.map_err(status)?;
        let tenant_id = tenant_out(&tenant).to_string();
        let mut deployments = Vec::new();
        for p in listing.processes {
            let process = ProcessMetadata { bpmn_process_id: p.id, version: p.version as i32, process_definition_key: p.key, resource_name: p.resource, tenant_id: tenant_id.clone() };
            deployments.push(Deployment { process: Some(process), ..Deployment::default() });
        }
        for d in listing.decisions {
            let decision = DecisionMetadata {
                dmn_decision_id: d.id,
                dmn_decision_name: d.name,
                version: d.version as i32,
                decision_key: d.key,
                dmn_decision_requirements_id: d.requirements_id,
                decision_requirements_key: d.requirements_key,
                tenant_id: tenant_id.clone(),
            };
            deployments.push(Deployment { decision: Some(decision), ..Deployment::default() });
        }
        for r in listing.requirements {
            let requirements = DecisionRequirementsMetadata {
                dmn_decision_requirements_name: r.id.clone(),
                dmn_decision_requirements_id: r.id,
                version: r.version as i32,
                decision_requirements_key: r.key,
                resource_name: r.resource,
                tenant_id: tenant_id.clone(),
            };
            deployments.push(Deployment { decision_requirements: Some(requirements), ..Deployment::default() });
        }
        for f in listing.forms {
            let form = FormMetadata { form_id: f.id, version: f.version as i32, form_key: f.key, resource_name: f.resource, tenant_id: tenant_id.clone() };
            deployments.push(Deployment { form: Some(form), ..Deployment::default() });
        }
        Ok(DeployResourceResponse { key, deployments, tenant_id })
    })
}

/// Starts an instance as a creation request names it: its id, tenant, process id and version asked.
async fn start(gateway: &Gateway, principal: Option<&Principal>, request: CreateProcessInstanceRequest) -> Result<String, Status> {
    if !request.start_instructions.is_empty() {
        return Err(Status::unimplemented("start instructions are not served by Baton"));
    }
    let state = &gateway.state;
    let (tenant, process_id, version) = if request.process_definition_key != 0 {
        let (deployment, place) = keys::parse_definition("processDefinitionKey", &key_text(request.process_definition_key)).map_err(status)?;
        let listed = state.handle.workflows.at(deployment, place).ok_or_else(|| Status::not_found(format!("no process definition has key {}", request.process_definition_key)))?;
        (listed.tenant, listed.process_id, Some(listed.version))
    } else {
        let tenant = tenancy::one(principal, tenant_in(Some(request.tenant_id).filter(|t| !t.is_empty()))).map_err(status)?;
        let version = u32::try_from(request.version).ok().filter(|&v| v > 0);
        (tenant, request.bpmn_process_id, version)
    };
    let command = StartCommand { tenant, process_id, version, variables: variables("variables", &request.variables)?, ..StartCommand::default() };
    crate::routes::start(state, &actor(principal), principal, command).await.map_err(status)
}

fn create(gateway: Gateway, principal: Option<Principal>, request: CreateProcessInstanceRequest) -> Reply<CreateProcessInstanceResponse> {
    Box::pin(async move {
        let id = start(&gateway, principal.as_ref(), request).await?;
        let row = read(&gateway.state, move |txn| Ok(txn.instance(&id)?)).await.map_err(status)?.ok_or_else(|| Status::internal("the instance just started is gone"))?;
        Ok(CreateProcessInstanceResponse {
            process_definition_key: definition_key(&gateway.state, &row.tenant, &row.process_id, row.version),
            bpmn_process_id: row.process_id.clone(),
            version: row.version as i32,
            process_instance_key: Key::instance(row.number).as_i64(),
            tenant_id: tenant_out(&row.tenant).to_string(),
        })
    })
}

fn create_with_result(gateway: Gateway, principal: Option<Principal>, request: CreateProcessInstanceWithResultRequest) -> Reply<CreateProcessInstanceWithResultResponse> {
    Box::pin(async move {
        let creation = request.request.unwrap_or_default();
        let id = start(&gateway, principal.as_ref(), creation).await?;
        let timeout = (request.request_timeout > 0).then_some(request.request_timeout);
        let row = crate::camunda::instances::await_completion(&gateway.state, &id, timeout).await.map_err(status)?;
        let wanted = request.fetch_variables;
        let variables: Map<String, Value> = row.state.variables.iter().filter(|(name, _)| wanted.is_empty() || wanted.contains(name)).map(|(n, v)| (n.clone(), v.clone())).collect();
        Ok(CreateProcessInstanceWithResultResponse {
            process_definition_key: definition_key(&gateway.state, &row.tenant, &row.process_id, row.version),
            bpmn_process_id: row.process_id.clone(),
            version: row.version as i32,
            process_instance_key: Key::instance(row.number).as_i64(),
            variables: Value::Object(variables).to_string(),
            tenant_id: tenant_out(&row.tenant).to_string(),
        })
    })
}

fn cancel(gateway: Gateway, principal: Option<Principal>, request: CancelProcessInstanceRequest) -> Reply<Empty> {
    Box::pin(async move {
        let text = key_text(request.process_instance_key);
        let key = Key::parse("processInstanceKey", &text).map_err(status)?;
        if key.local != 0 {
            return Err(Status::not_found(format!("no process instance has key {text}")));
        }
        let id = crate::camunda::instance_of(&gateway.state, key, "process instance", &text).await.map_err(status)?;
        crate::routes::instance_input(&gateway.state, &actor(principal.as_ref()), None, id, engine::Input::Cancel { reason: None }).await.map_err(status)?;
        Ok(Empty {})
    })
}

fn activated(state: &AppState, job: &runtime::ActivatedJob, fetch: &[String]) -> ActivatedJob {
    let variables: Map<String, Value> = job.variables.iter().filter(|(name, _)| fetch.is_empty() || fetch.contains(name)).map(|(n, v)| (n.clone(), v.clone())).collect();
    let number = job.instance_number;
    ActivatedJob {
        key: inside(number, job.job.local_key),
        r#type: job.job.job_type.clone(),
        process_instance_key: Key::instance(number).as_i64(),
        bpmn_process_id: job.job.process_id.clone(),
        process_definition_version: job.version as i32,
        process_definition_key: definition_key(state, &job.job.tenant, &job.job.process_id, job.version),
        element_id: job.job.element_id.clone(),
        element_instance_key: inside(number, job.element_instance),
        custom_headers: serde_json::to_string(&job.headers).unwrap_or_else(|_| "{}".into()),
        worker: job.job.worker.clone().unwrap_or_default(),
        retries: job.job.retries as i32,
        deadline: job.job.lease_until.unwrap_or(0),
        variables: Value::Object(variables).to_string(),
        tenant_id: tenant_out(&job.job.tenant).to_string(),
    }
}

/// What a worker asks an activation for: its job type, name, lease and tenants.
struct Asking {
    job_type: String,
    worker: String,
    lease_ms: i64,
    tenant_ids: Vec<String>,
}

impl Asking {
    /// The worker's name (Zeebe allows none: `default`) and the tenants asked for (none: every one the caller has).
    fn who(&self) -> (String, Option<Vec<String>>) {
        let worker = if self.worker.is_empty() { "default".to_string() } else { self.worker.clone() };
        let tenants = (!self.tenant_ids.is_empty()).then(|| self.tenant_ids.iter().filter_map(|t| tenant_in(Some(t.clone()))).collect());
        (worker, tenants)
    }
}

/// One activation: up to `max` jobs, waiting up to `wait_ms` for some.
async fn take(gateway: &Gateway, principal: Option<&Principal>, asking: &Asking, max: usize, wait_ms: u64) -> Result<Vec<runtime::ActivatedJob>, Status> {
    let (worker, tenants) = asking.who();
    let activation = crate::routes::ActivateRequest { job_type: asking.job_type.clone(), worker, max_jobs: max, lease_ms: asking.lease_ms, timeout_ms: wait_ms, tenants };
    let jobs = crate::routes::activate(&gateway.state, principal, activation).await.map_err(status)?;
    // The completions that follow name these instances by number.
    for job in &jobs {
        gateway.state.numbers.remember(job.instance_number, &job.job.instance_id);
    }
    Ok(jobs)
}

/// How long an activation waits when the request says `requestTimeout: 0`.
const DEFAULT_POLL_MS: u64 = 10_000;

fn activate(gateway: Gateway, principal: Option<Principal>, request: ActivateJobsRequest) -> Reply<Stream<ActivateJobsResponse>> {
    Box::pin(async move {
        let wait_ms = match request.request_timeout {
            0 => DEFAULT_POLL_MS,
            wait if wait < 0 => 0,
            wait => (wait as u64).min(crate::routes::MAX_POLL_MS),
        };
        let max = usize::try_from(request.max_jobs_to_activate).unwrap_or(0);
        let asking = Asking { job_type: request.r#type, worker: request.worker, lease_ms: request.timeout, tenant_ids: request.tenant_ids };
        let jobs = take(&gateway, principal.as_ref(), &asking, max, wait_ms).await?;
        let answer = ActivateJobsResponse { jobs: jobs.iter().map(|job| activated(&gateway.state, job, &request.fetch_variable)).collect() };
        Ok(Box::pin(tokio_stream::once(Ok(answer))) as Stream<ActivateJobsResponse>)
    })
}

/// Jobs pushed to the worker as they are created, for as long as it listens
/// (Zeebe's job streaming), through Baton's job streams: at most
/// [`STREAM_WINDOW`] unreported at once, as many as Zeebe's Java client
/// keeps active by default.
fn stream_jobs(gateway: Gateway, principal: Option<Principal>, request: StreamActivatedJobsRequest) -> Reply<Stream<ActivatedJob>> {
    Box::pin(async move {
        let asking = Asking { job_type: request.r#type, worker: request.worker, lease_ms: request.timeout, tenant_ids: request.tenant_ids };
        let (worker, tenants) = asking.who();
        let asked = crate::jobs::StreamRequest { job_type: asking.job_type, worker, window: STREAM_WINDOW, lease_ms: asking.lease_ms, limit: None, tenants };
        let (mut jobs, place) = crate::jobs::open(&gateway.state, principal.as_ref(), asked).map_err(status)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_WINDOW);
        tokio::spawn(async move {
            let _place = place;
            while let Some(job) = jobs.recv().await {
                let job = match job {
                    Ok(job) => job,
                    Err(error) => {
                        let _ = sender.send(Err(status(ApiError::from(error)))).await;
                        return;
                    }
                };
                // The completions that follow name this instance by number.
                gateway.state.numbers.remember(job.instance_number, &job.job.instance_id);
                // A worker gone after activation leaves its jobs to their leases.
                if sender.send(Ok(activated(&gateway.state, &job, &request.fetch_variable))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver)) as Stream<ActivatedJob>)
    })
}

/// Jobs a Zeebe stream holds unreported, at most.
const STREAM_WINDOW: usize = 32;

/// Baton's key of a job, incident or element instance's object.
async fn baton(gateway: &Gateway, what: &'static str, key: i64) -> Result<String, Status> {
    baton_key(&gateway.state, what, &key_text(key)).await.map_err(status)
}

fn complete(gateway: Gateway, principal: Option<Principal>, request: CompleteJobRequest) -> Reply<Empty> {
    Box::pin(async move {
        let key = baton(&gateway, "job", request.job_key).await?;
        let claim = crate::camunda::work::key_claim(principal.as_ref()).map_err(status)?;
        let command = Command::CompleteJob { key, claim, variables: variables("variables", &request.variables)?, result: None };
        call(&gateway.state, &actor(principal.as_ref()), None, None, command).await.map_err(status)?;
        Ok(Empty {})
    })
}

fn fail(gateway: Gateway, principal: Option<Principal>, request: FailJobRequest) -> Reply<Empty> {
    Box::pin(async move {
        let failure_variables = variables("variables", &request.variables)?;
        if !(0..=crate::routes::MAX_WAIT_MS).contains(&request.retry_back_off) {
            return Err(Status::invalid_argument(format!("retryBackOff must be between 0 and {} (ten years)", crate::routes::MAX_WAIT_MS)));
        }
        let key = baton(&gateway, "job", request.job_key).await?;
        let claim = crate::camunda::work::key_claim(principal.as_ref()).map_err(status)?;
        let retries = u32::try_from(request.retries).unwrap_or(0);
        let command = Command::FailJob { key, claim, retries, message: request.error_message, backoff_ms: request.retry_back_off, variables: failure_variables };
        call(&gateway.state, &actor(principal.as_ref()), None, None, command).await.map_err(status)?;
        Ok(Empty {})
    })
}

fn throw_error(gateway: Gateway, principal: Option<Principal>, request: ThrowErrorRequest) -> Reply<Empty> {
    Box::pin(async move {
        if request.error_code.is_empty() {
            return Err(Status::invalid_argument("errorCode is empty: name the BPMN error"));
        }
        let key = baton(&gateway, "job", request.job_key).await?;
        let claim = crate::camunda::work::key_claim(principal.as_ref()).map_err(status)?;
        let command = Command::ThrowError { key, claim, code: request.error_code, message: request.error_message, variables: variables("variables", &request.variables)? };
        call(&gateway.state, &actor(principal.as_ref()), None, None, command).await.map_err(status)?;
        Ok(Empty {})
    })
}

fn update_retries(gateway: Gateway, principal: Option<Principal>, request: UpdateJobRetriesRequest) -> Reply<Empty> {
    Box::pin(async move {
        let retries = u32::try_from(request.retries).map_err(|_| Status::invalid_argument("retries must not be negative"))?;
        let key = baton(&gateway, "job", request.job_key).await?;
        call(&gateway.state, &actor(principal.as_ref()), None, None, Command::UpdateRetries { key, retries }).await.map_err(status)?;
        Ok(Empty {})
    })
}

fn update_timeout(gateway: Gateway, principal: Option<Principal>, request: UpdateJobTimeoutRequest) -> Reply<Empty> {
    Box::pin(async move {
        if !(1..=crate::routes::MAX_LEASE_MS).contains(&request.timeout) {
            return Err(Status::invalid_argument(format!("timeout must be between 1 and {} ms", crate::routes::MAX_LEASE_MS)));
        }
        let key = baton(&gateway, "job", request.job_key).await?;
        call(&gateway.state, &actor(principal.as_ref()), None, None, Command::ExtendLease { key, lease_ms: request.timeout }).await.map_err(status)?;
        Ok(Empty {})
    })
}

fn publish(gateway: Gateway, principal: Option<Principal>, request: PublishMessageRequest) -> Reply<KeyResponse> {
    Box::pin(async move {
        let tenant = tenancy::one(principal.as_ref(), tenant_in(Some(request.tenant_id).filter(|t| !t.is_empty()))).map_err(status)?;
        let command = PublishCommand {
            tenant: tenant.clone(),
            name: request.name,
            correlation_key: request.correlation_key,
            variables: variables("variables", &request.variables)?,
            ttl_ms: request.time_to_live,
            message_id: Some(request.message_id).filter(|id| !id.is_empty()),
        };
        let publication = crate::routes::publish(&gateway.state, &actor(principal.as_ref()), command, "timeToLive").await.map_err(status)?;
        Ok(KeyResponse { key: publication.seq as i64, tenant_id: tenant_out(&tenant).to_string() })
    })
}

fn broadcast(gateway: Gateway, principal: Option<Principal>, request: BroadcastSignalRequest) -> Reply<KeyResponse> {
    Box::pin(async move {
        let tenant = tenancy::one(principal.as_ref(), tenant_in(Some(request.tenant_id).filter(|t| !t.is_empty()))).map_err(status)?;
        let values = variables("variables", &request.variables)?;
        crate::routes::broadcast(&gateway.state, &actor(principal.as_ref()), tenant.clone(), request.signal_name, values).await.map_err(status)?;
        Ok(KeyResponse { key: 0, tenant_id: tenant_out(&tenant).to_string() })
    })
}

fn set_variables(gateway: Gateway, principal: Option<Principal>, request: SetVariablesRequest) -> Reply<SetVariablesResponse> {
    Box::pin(async move {
        let text = key_text(request.element_instance_key);
        let key = Key::parse("elementInstanceKey", &text).map_err(status)?;
        let id = crate::camunda::instance_of(&gateway.state, key, "element instance", &text).await.map_err(status)?;
        let input = engine::Input::SetVariables { element_instance: (key.local != 0).then_some(key.local), variables: variables("variables", &request.variables)? };
        crate::routes::instance_input(&gateway.state, &actor(principal.as_ref()), None, id, input).await.map_err(status)?;
        Ok(SetVariablesResponse { key: 0 })
    })
}

fn resolve_incident(gateway: Gateway, principal: Option<Principal>, request: ResolveIncidentRequest) -> Reply<Empty> {
    Box::pin(async move {
        let key = baton(&gateway, "incident", request.incident_key).await?;
        call(&gateway.state, &actor(principal.as_ref()), None, None, Command::ResolveIncident { key }).await.map_err(status)?;
        Ok(Empty {})
    })
}

/// Serves the gateway on `listener` (HTTP/2, plain text) until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, handle: runtime::Handle, security: crate::guard::Security, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
    let state = crate::app_state(handle, &security, None);
    let gateway = Gateway { state, security: Arc::new(security) };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(gateway)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| e.to_string())
}
