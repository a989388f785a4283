//! Jobs, messages, signals and incidents.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::Variables;
use runtime::{Command, PublishCommand};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{IncidentFilter, IncidentState};

use super::keys::{self, Key};
use super::{baton_key, gather_rows, no_content, search_result, tenant_in, tenant_out, OrDefault, SearchRequest};
use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller};
use crate::routes::{call, claim, read, time, ActivateRequest, AppState, MAX_POLL_MS};
use crate::tenancy;

type Answer = Result<Response, ApiError>;

/// How long an activation waits for jobs when the request says `requestTimeout: 0`.
const DEFAULT_POLL_MS: u64 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActivationRequest {
    #[serde(rename = "type")]
    job_type: String,
    worker: Option<String>,
    timeout: i64,
    max_jobs_to_activate: usize,
    fetch_variable: Option<Vec<String>>,
    request_timeout: Option<i64>,
    tenant_ids: Option<Vec<String>>,
    tenant_filter: Option<String>,
}

/// `POST /v2/jobs/activation`: the same activation as `/v1`, answered as Camunda's activated jobs.
pub async fn activate(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<ActivationRequest>) -> Answer {
    // PROVIDED: the tenants given (none given: all the caller's); ASSIGNED: all the caller's.
    let assigned = match request.tenant_filter.as_deref() {
        None | Some("PROVIDED") => false,
        Some("ASSIGNED") => true,
        Some(other) => return Err(ApiError::new("request-invalid", format!("tenantFilter is PROVIDED or ASSIGNED, not '{other}'"))),
    };
    // Camunda: 0 waits the default time, a negative value does not wait; Baton waits at most a minute.
    let timeout_ms = match request.request_timeout.unwrap_or(0) {
        0 => DEFAULT_POLL_MS,
        wait if wait < 0 => 0,
        wait => (wait as u64).min(MAX_POLL_MS),
    };
    let tenants = request.tenant_ids.filter(|_| !assigned).map(|ids| ids.into_iter().filter_map(|t| tenant_in(Some(t))).collect());
    let activation = ActivateRequest {
        job_type: request.job_type,
        worker: request.worker.filter(|w| !w.is_empty()).unwrap_or_else(|| "default".into()),
        max_jobs: request.max_jobs_to_activate,
        lease_ms: request.timeout,
        timeout_ms,
        tenants,
    };
    let jobs = crate::routes::activate(&state, caller.as_ref(), activation).await?;
    // The completions that follow name these instances by number.
    for job in &jobs {
        state.numbers.remember(job.instance_number, &job.job.instance_id);
    }
    let fetch = request.fetch_variable.filter(|names| !names.is_empty());
    let items: Vec<Value> = jobs.iter().map(|activated| activated_json(&state, activated, fetch.as_deref())).collect();
    Ok(Json(json!({ "jobs": items })).into_response())
}

fn activated_json(state: &AppState, activated: &runtime::ActivatedJob, fetch: Option<&[String]>) -> Value {
    let job = &activated.job;
    let variables: serde_json::Map<String, Value> = activated
        .variables
        .iter()
        .filter(|(name, _)| fetch.is_none_or(|names| names.iter().any(|n| n == *name)))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let (kind, event) = job_kind(activated.listener);
    let number = activated.instance_number;
    json!({
        "type": job.job_type,
        "processDefinitionId": job.process_id,
        "processDefinitionVersion": activated.version,
        "elementId": job.element_id,
        "customHeaders": activated.headers,
        "worker": job.worker,
        "retries": job.retries,
        "deadline": job.lease_until,
        "variables": variables,
        "tenantId": tenant_out(&job.tenant),
        "jobKey": keys::render_inside(number, job.local_key),
        "processInstanceKey": Key::instance(number).render(),
        "processDefinitionKey": state.handle.workflows.find(&job.tenant, &job.process_id, activated.version).map(|l| keys::definition(l.deployment, l.place)),
        "elementInstanceKey": keys::render_inside(number, activated.element_instance),
        "kind": kind,
        "listenerEventType": event,
        "userTask": null,
        "tags": [],
        "rootProcessInstanceKey": null,
    })
}

/// Camunda's job kind and listener event for a job (a listener's, or an element's own).
fn job_kind(listener: Option<bpmn::ListenerEvent>) -> (&'static str, &'static str) {
    let Some(event) = listener else { return ("BPMN_ELEMENT", "UNSPECIFIED") };
    let name = match event {
        bpmn::ListenerEvent::Start => "START",
        bpmn::ListenerEvent::End => "END",
        bpmn::ListenerEvent::Creating => "CREATING",
        bpmn::ListenerEvent::Assigning => "ASSIGNING",
        bpmn::ListenerEvent::Updating => "UPDATING",
        bpmn::ListenerEvent::Completing => "COMPLETING",
        bpmn::ListenerEvent::Canceling => "CANCELING",
    };
    let kind = if matches!(event, bpmn::ListenerEvent::Start | bpmn::ListenerEvent::End) { "EXECUTION_LISTENER" } else { "TASK_LISTENER" };
    (kind, name)
}

/// The claim of a `/v2` call: the job key itself, as Camunda's clients hold no lease.
pub(crate) fn key_claim(caller: Option<&crate::access::Principal>) -> Result<runtime::Claim, ApiError> {
    Ok(runtime::Claim { key_holds: true, ..claim(caller, None, None, false)? })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompletionRequest {
    variables: Option<Variables>,
    result: Option<engine::JobResult>,
}

/// `POST /v2/jobs/{jobKey}/completion`.
pub async fn complete(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Path(key): Path<String>, OrDefault(request): OrDefault<CompletionRequest>) -> Answer {
    let command = Command::CompleteJob { key: baton_key(&state, "job", &key).await?, claim: key_claim(caller.as_ref())?, variables: request.variables.unwrap_or_default(), result: request.result };
    call(&state, &actor, None, None, command).await?;
    no_content()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FailureRequest {
    #[serde(default)]
    retries: u32,
    error_message: Option<String>,
    #[serde(default)]
    retry_back_off: i64,
    variables: Option<Variables>,
}

/// `POST /v2/jobs/{jobKey}/failure`.
pub async fn fail(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Path(key): Path<String>, OrDefault(request): OrDefault<FailureRequest>) -> Answer {
    if !(0..=crate::routes::MAX_WAIT_MS).contains(&request.retry_back_off) {
        return Err(ApiError::new("request-invalid", format!("retryBackOff must be between 0 and {} (ten years)", crate::routes::MAX_WAIT_MS)));
    }
    let command = Command::FailJob {
        key: baton_key(&state, "job", &key).await?,
        claim: key_claim(caller.as_ref())?,
        retries: request.retries,
        message: request.error_message.unwrap_or_default(),
        backoff_ms: request.retry_back_off,
        variables: request.variables.unwrap_or_default(),
    };
    call(&state, &actor, None, None, command).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErrorRequest {
    error_code: String,
    error_message: Option<String>,
    variables: Option<Variables>,
}

/// `POST /v2/jobs/{jobKey}/error`.
pub async fn throw_error(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Path(key): Path<String>, Body(request): Body<ErrorRequest>) -> Answer {
    if request.error_code.is_empty() {
        return Err(ApiError::new("request-invalid", "errorCode is empty: name the BPMN error"));
    }
    let command = Command::ThrowError {
        key: baton_key(&state, "job", &key).await?,
        claim: key_claim(caller.as_ref())?,
        code: request.error_code,
        message: request.error_message.unwrap_or_default(),
        variables: request.variables.unwrap_or_default(),
    };
    call(&state, &actor, None, None, command).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobUpdateRequest {
    changeset: JobChangeset,
    operation_reference: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobChangeset {
    retries: Option<u32>,
    timeout: Option<i64>,
}

/// `PATCH /v2/jobs/{jobKey}`: its retries, and the end of its lease (`timeout`, from now).
pub async fn update_job(State(state): State<AppState>, actor: Actor, Path(key): Path<String>, Body(request): Body<JobUpdateRequest>) -> Answer {
    let _ = request.operation_reference;
    let JobChangeset { retries, timeout } = request.changeset;
    if retries.is_none() && timeout.is_none() {
        return Err(ApiError::new("request-invalid", "changeset is empty: give retries, timeout or both"));
    }
    if timeout.is_some_and(|t| !(1..=crate::routes::MAX_LEASE_MS).contains(&t)) {
        return Err(ApiError::new("request-invalid", format!("timeout must be between 1 and {} ms", crate::routes::MAX_LEASE_MS)));
    }
    let job = baton_key(&state, "job", &key).await?;
    // The lease first: it is the change that can be refused (no lease running), before anything changed.
    if let Some(lease_ms) = timeout {
        call(&state, &actor, None, None, Command::ExtendLease { key: job.clone(), lease_ms }).await?;
    }
    if let Some(retries) = retries {
        call(&state, &actor, None, None, Command::UpdateRetries { key: job, retries }).await?;
    }
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicationRequest {
    name: String,
    #[serde(default)]
    correlation_key: String,
    #[serde(default)]
    time_to_live: i64,
    message_id: Option<String>,
    #[serde(default)]
    variables: Variables,
    tenant_id: Option<String>,
}

/// `POST /v2/messages/publication`: the message key is Baton's publication sequence number.
pub async fn publish(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Body(request): Body<PublicationRequest>) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), tenant_in(request.tenant_id))?;
    let command = PublishCommand {
        tenant: tenant.clone(),
        name: request.name,
        correlation_key: request.correlation_key,
        variables: request.variables,
        ttl_ms: request.time_to_live,
        message_id: request.message_id,
    };
    let seq = crate::routes::publish(&state, &actor, command, "timeToLive").await?.seq;
    Ok(Json(json!({ "tenantId": tenant_out(&tenant), "messageKey": seq.to_string() })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CorrelationRequest {
    name: String,
    #[serde(default)]
    correlation_key: String,
    #[serde(default)]
    variables: Variables,
    tenant_id: Option<String>,
}

/// `POST /v2/messages/correlation`: delivered now or not at all (no time to
/// live); 404 when no instance waits for it and no start event takes it.
pub async fn correlate(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Body(request): Body<CorrelationRequest>) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), tenant_in(request.tenant_id))?;
    let name = request.name.clone();
    let command = PublishCommand { tenant: tenant.clone(), name: request.name, correlation_key: request.correlation_key, variables: request.variables, ttl_ms: 0, message_id: None };
    let publication = crate::routes::publish(&state, &actor, command, "timeToLive").await?;
    let Some(receiver) = publication.receivers.first().cloned() else {
        return Err(ApiError::new("subscription-not-found", format!("no instance waits for message '{name}' with this correlation key, and no start event takes it")));
    };
    let number = read(&state, move |txn| Ok(txn.instance_number(&receiver)?)).await?.map_or(0, |(number, _)| number);
    Ok(Json(json!({ "tenantId": tenant_out(&tenant), "messageKey": publication.seq.to_string(), "processInstanceKey": Key::instance(number).render() })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BroadcastRequest {
    signal_name: String,
    #[serde(default)]
    variables: Variables,
    tenant_id: Option<String>,
}

/// `POST /v2/signals/broadcast`. Baton keeps no record of a signal: its key is `0`.
pub async fn broadcast(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Body(request): Body<BroadcastRequest>) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), tenant_in(request.tenant_id))?;
    crate::routes::broadcast(&state, &actor, tenant.clone(), request.signal_name, request.variables).await?;
    Ok(Json(json!({ "tenantId": tenant_out(&tenant), "signalKey": "0" })).into_response())
}

/// Camunda's error type for an incident kind.
fn error_type(kind: &str) -> &'static str {
    match kind {
        "job_no_retries" => "JOB_NO_RETRIES",
        "unhandled_error" | "uncaught_error" => "UNHANDLED_ERROR_EVENT",
        "expression" => "EXTRACT_VALUE_ERROR",
        "no_flow_taken" => "CONDITION_ERROR",
        "called_process_missing" | "call_depth" => "CALLED_ELEMENT_ERROR",
        "decision_evaluation" => "DECISION_EVALUATION_ERROR",
        _ => "UNKNOWN",
    }
}

/// `POST /v2/incidents/search`.
pub async fn search_incidents(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<SearchRequest>) -> Answer {
    let (asked, window) = request.open(&super::schemas::incident(), &[], "incidents answer in creation order")?;
    let text = |field: &str| asked.text(field);
    let mut filter = IncidentFilter {
        tenants: tenancy::scope(caller.as_ref(), tenant_in(text("tenantId")?))?,
        process_id: text("processDefinitionId")?,
        ..IncidentFilter::default()
    };
    filter.state = match text("state")?.as_deref() {
        Some("ACTIVE") => IncidentState::Open,
        Some("RESOLVED") => IncidentState::Resolved,
        _ => IncidentState::All,
    };
    let instance = text("processInstanceKey")?.map(|k| Key::parse("processInstanceKey", &k)).transpose()?;
    let reading = state.clone();
    let (items, next) = read(&state, move |txn| {
        let Some(instance_id) = super::instance_named(txn, instance)? else { return Ok((Vec::new(), None)) };
        filter.instance_id = instance_id;
        gather_rows(txn, &window, &asked, |txn, page| Ok(txn.incidents(&filter, page)?), |txn, incident| {
            let instance = txn.instance(&incident.instance_id)?;
            Ok(Some(incident_json(&reading, &(incident, instance))))
        })
    })
    .await?;
    Ok(Json(search_result(items, next)).into_response())
}

/// An incident as Camunda answers it, with what its instance knows of it.
fn incident_json(state: &AppState, (incident, instance): &(store::IncidentRow, Option<store::InstanceRow>)) -> Value {
    let number = instance.as_ref().map_or(0, |i| i.number);
    let version = instance.as_ref().map_or(0, |i| i.version);
    let open = instance.as_ref().and_then(|i| i.state.incidents.get(&incident.local_key));
    let job = open.and_then(|i| match i.kind {
        engine::IncidentKind::JobNoRetries { job } | engine::IncidentKind::UnhandledError { job, .. } => Some(job),
        _ => None,
    });
    json!({
        "processDefinitionId": incident.process_id,
        "errorType": error_type(&incident.kind),
        "errorMessage": incident.message,
        "elementId": incident.element_id,
        "creationTime": time(incident.created_at),
        "state": if incident.resolved_at.is_some() { "RESOLVED" } else { "ACTIVE" },
        "tenantId": tenant_out(&incident.tenant),
        "incidentKey": keys::render_inside(number, incident.local_key),
        "processDefinitionKey": state.handle.workflows.find(&incident.tenant, &incident.process_id, version).map(|l| keys::definition(l.deployment, l.place)),
        "processInstanceKey": Key::instance(number).render(),
        "rootProcessInstanceKey": null,
        "elementInstanceKey": open.map_or(Value::Null, |i| keys::render_inside(number, i.element_instance)),
        "jobKey": job.map(|job| keys::render_inside(number, job)),
    })
}

/// `POST /v2/jobs/search`: open jobs (Baton keeps no row for a job once it is done).
pub async fn search_jobs(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<SearchRequest>) -> Answer {
    let (asked, window) = request.open(&super::schemas::job(), &[], "jobs answer in creation order")?;
    let text = |field: &str| asked.text(field);
    let mut filter = store::JobFilter { tenants: tenancy::scope(caller.as_ref(), tenant_in(text("tenantId")?))?, job_type: text("type")?, ..store::JobFilter::default() };
    // A job failed with retries left is activatable in Baton and FAILED to Camunda: the items' own state decides.
    filter.state = None;
    let (process_id, element_id) = (text("processDefinitionId")?, text("elementId")?);
    let instance = text("processInstanceKey")?.map(|k| Key::parse("processInstanceKey", &k)).transpose()?;
    let reading = state.clone();
    let (items, next) = read(&state, move |txn| {
        let Some(instance_id) = super::instance_named(txn, instance)? else { return Ok((Vec::new(), None)) };
        filter.instance_id = instance_id;
        gather_rows(txn, &window, &asked, |txn, page| Ok(txn.jobs(&filter, page)?), |txn, job| {
            // Cheap checks before reading the instance: the filter would refuse the item anyway.
            if process_id.as_ref().is_some_and(|p| p != &job.process_id) || element_id.as_ref().is_some_and(|e| e != &job.element_id) {
                return Ok(None);
            }
            let instance = txn.instance(&job.instance_id)?;
            Ok(Some(job_json(&reading, &job, instance.as_ref())))
        })
    })
    .await?;
    Ok(Json(search_result(items, next)).into_response())
}

fn job_json(state: &AppState, job: &store::JobRow, instance: Option<&store::InstanceRow>) -> Value {
    let number = instance.map_or(0, |i| i.number);
    let version = instance.map_or(0, |i| i.version);
    let open = instance.and_then(|i| i.state.jobs.get(&job.local_key));
    let (kind, event) = job_kind(open.and_then(|j| j.listener));
    json!({
        "customHeaders": open.map(|j| j.headers.clone()).unwrap_or_default(),
        "deadline": job.lease_until.map(time),
        "deniedReason": null,
        "elementId": job.element_id,
        "elementInstanceKey": open.map_or(Value::Null, |j| keys::render_inside(number, j.element_instance)),
        "endTime": null,
        "errorCode": null,
        "errorMessage": job.error_message,
        "hasFailedWithRetriesLeft": job.error_message.is_some() && job.retries > 0,
        "isDenied": null,
        "jobKey": keys::render_inside(number, job.local_key),
        "kind": kind,
        "listenerEventType": event,
        "processDefinitionId": job.process_id,
        "processDefinitionKey": state.handle.workflows.find(&job.tenant, &job.process_id, version).map(|l| keys::definition(l.deployment, l.place)),
        "processInstanceKey": Key::instance(number).render(),
        "rootProcessInstanceKey": null,
        "retries": job.retries,
        "state": match job.state { engine::JobState::Activatable if job.error_message.is_some() => "FAILED", engine::JobState::Activatable => "CREATED", engine::JobState::Failed => "FAILED" },
        "tenantId": tenant_out(&job.tenant),
        "type": job.job_type,
        "worker": job.worker.clone().unwrap_or_default(),
        "creationTime": time(job.created_at),
        "lastUpdateTime": null,
    })
}

/// `GET /v2/incidents/{incidentKey}`.
pub async fn get_incident(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let baton = baton_key(&state, "incident", &key).await?;
    let found = read(&state, move |txn| {
        let Some(incident) = txn.incident(&baton)? else { return Ok(None) };
        let instance = txn.instance(&incident.instance_id)?;
        Ok(Some((incident, instance)))
    })
    .await?;
    let found = found.filter(|(incident, _)| tenancy::sees(caller.as_ref(), &incident.tenant));
    let found = found.ok_or_else(|| ApiError::new("incident-not-found", format!("no incident has key {key}")))?;
    Ok(Json(incident_json(&state, &found)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolutionRequest {
    operation_reference: Option<u64>,
}

/// `POST /v2/incidents/{incidentKey}/resolution`.
pub async fn resolve_incident(State(state): State<AppState>, actor: Actor, Path(key): Path<String>, OrDefault(request): OrDefault<ResolutionRequest>) -> Answer {
    let _ = request.operation_reference;
    call(&state, &actor, None, None, Command::ResolveIncident { key: baton_key(&state, "incident", &key).await? }).await?;
    no_content()
}
