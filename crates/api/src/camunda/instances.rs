//! Topology, deployments, process instances and definitions, variables.

use axum::extract::{Multipart, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{Status, Variables};
use runtime::{Command, Reply, StartCommand};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use store::InstanceFilter;

use super::keys::{self, Key};
use super::{gather_listed, schemas, search_result, tenant_in, tenant_out, OrDefault, SearchRequest};
use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller};
use crate::routes::{call, instance_input, read, time, AppState};
use crate::tenancy;

type Answer = Result<Response, ApiError>;

pub async fn topology() -> Json<Value> {
    Json(json!({
        "brokers": [{
            "nodeId": 0,
            "host": "localhost",
            "port": 0,
            "partitions": [{ "partitionId": 1, "role": "leader", "health": "healthy" }],
            "version": super::API_LEVEL,
        }],
        "clusterId": null,
        "clusterSize": 1,
        "partitionsCount": 1,
        "replicationFactor": 1,
        "gatewayVersion": super::API_LEVEL,
        "lastCompletedChangeId": "-1",
    }))
}

/// `GET /v2/status`: Baton's readiness (`/readyz`) as Camunda answers it.
pub async fn status(state: State<AppState>) -> Answer {
    crate::routes::readyz(state).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// `POST /v2/deployments`: multipart, a `resources` part per file and an optional `tenantId`.
pub async fn deploy(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, mut form: Multipart) -> Answer {
    let mut files = Vec::new();
    let mut tenant = None;
    let bad = |error: axum::extract::multipart::MultipartError| ApiError::new("request-invalid", format!("the multipart body is not valid: {}", error.body_text()));
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("resources") => {
                let name = field.file_name().unwrap_or("resource.bpmn").to_string();
                let bytes = field.bytes().await.map_err(bad)?;
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::new("request-invalid", format!("resource {name} is not UTF-8 text")))?;
                files.push((name, text));
            }
            Some("tenantId") => tenant = Some(field.text().await.map_err(bad)?),
            other => return Err(ApiError::new("request-invalid", format!("part '{}' is not served: send resources (files) and tenantId", other.unwrap_or("")))),
        }
    }
    if files.is_empty() {
        return Err(ApiError::new("request-invalid", "no resources: send at least one file as a 'resources' part"));
    }
    let tenant = tenancy::one(caller.as_ref(), tenant_in(tenant))?;
    let command = Command::Deploy { tenant: tenant.clone(), files };
    let Reply::Deployed(deployed) = call(&state, &actor, None, None, command).await? else {
        unreachable!("deploy answers with versions")
    };
    let listing = listing(&state, &tenant, deployed.clone()).await?;
    let entry = |kind: &str, value: Value| {
        let mut entry = json!({ "processDefinition": null, "decisionDefinition": null, "decisionRequirements": null, "form": null, "resource": null });
        entry[kind] = value;
        entry
    };
    let tenant_id = tenant_out(&tenant);
    let mut deployments = Vec::new();
    for p in &listing.processes {
        let value = json!({ "processDefinitionId": p.id, "processDefinitionVersion": p.version, "resourceName": p.resource, "tenantId": tenant_id, "processDefinitionKey": p.key.to_string() });
        deployments.push(entry("processDefinition", value));
    }
    for d in &listing.decisions {
        let value = json!({ "decisionDefinitionId": d.id, "version": d.version, "name": d.name, "tenantId": tenant_id, "decisionRequirementsId": d.requirements_id, "decisionDefinitionKey": d.key.to_string(), "decisionRequirementsKey": d.requirements_key.to_string() });
        deployments.push(entry("decisionDefinition", value));
    }
    for r in &listing.requirements {
        let value = json!({ "decisionRequirementsId": r.id, "decisionRequirementsName": r.id, "version": r.version, "resourceName": r.resource, "tenantId": tenant_id, "decisionRequirementsKey": r.key.to_string() });
        deployments.push(entry("decisionRequirements", value));
    }
    for f in &listing.forms {
        let value = json!({ "formId": f.id, "version": f.version, "resourceName": f.resource, "tenantId": tenant_id, "formKey": f.key.to_string() });
        deployments.push(entry("form", value));
    }
    Ok(Json(json!({
        "deploymentKey": deployed.deployment.to_string(),
        "tenantId": tenant_out(&tenant),
        "deployments": deployments,
    }))
    .into_response())
}

/// One deployed thing as Camunda's deploy answers list it: id, version, file, key.
pub(crate) struct Listed {
    pub id: String,
    pub version: u32,
    pub resource: String,
    pub key: i64,
}

/// A deployed decision, with its requirements graph.
pub(crate) struct ListedDecision {
    pub id: String,
    pub version: u32,
    pub name: String,
    pub requirements_id: String,
    pub key: i64,
    pub requirements_key: i64,
}

/// What a deployment answer lists: each thing the deployment named, at the
/// version it has now (new, or unchanged), keyed by the deployment that
/// brought that version. Both Camunda faces (`/v2`, gRPC) render it.
pub(crate) struct Listing {
    pub processes: Vec<Listed>,
    pub decisions: Vec<ListedDecision>,
    pub requirements: Vec<Listed>,
    pub forms: Vec<Listed>,
}

pub(crate) async fn listing(state: &AppState, tenant: &str, deployed: runtime::Deployment) -> Result<Listing, ApiError> {
    let registry = state.handle.workflows.clone();
    let tenant = tenant.to_string();
    read(state, move |txn| {
        let tenants = Some(vec![tenant.clone()]);
        let processes = deployed
            .workflows
            .iter()
            .filter_map(|(id, version, _)| {
                let found = registry.find(&tenant, id, *version)?;
                let resource = deployed.resources.get(id).cloned().unwrap_or_default();
                Some(Listed { id: id.clone(), version: *version, resource, key: keys::definition_value(found.deployment, found.place) })
            })
            .collect();
        // A thing's place: its index among the things of its kind its deployment brought, by id.
        let place = |deployment: u64, id: &str, ids: &[(u64, String)]| ids.iter().filter(|(d, _)| *d == deployment).position(|(_, other)| other == id).unwrap_or(0);
        let decision_rows = txn.decisions(&tenants, None)?;
        let mut decision_ids: Vec<(u64, String)> = decision_rows.iter().map(|r| (r.deployment, r.decision_id.clone())).collect();
        let mut graph_ids: Vec<(u64, String)> = decision_rows.iter().map(|r| (r.deployment, r.definitions_id.clone())).collect();
        decision_ids.sort();
        graph_ids.sort();
        graph_ids.dedup();
        let mut decisions = Vec::new();
        let mut requirements: Vec<Listed> = Vec::new();
        for (id, version, _) in &deployed.decisions {
            let Some(row) = decision_rows.iter().find(|r| &r.decision_id == id && r.version == *version) else { continue };
            let requirements_key = keys::deployed(keys::Kind::Requirements, row.deployment, place(row.deployment, &row.definitions_id, &graph_ids));
            decisions.push(ListedDecision {
                id: id.clone(),
                version: *version,
                name: row.name.clone(),
                requirements_id: row.definitions_id.clone(),
                key: keys::deployed(keys::Kind::Decision, row.deployment, place(row.deployment, id, &decision_ids)),
                requirements_key,
            });
            if !requirements.iter().any(|r| r.key == requirements_key) {
                requirements.push(Listed { id: row.definitions_id.clone(), version: *version, resource: row.resource.clone(), key: requirements_key });
            }
        }
        let form_rows = txn.forms(&tenants, None)?;
        let mut form_ids: Vec<(u64, String)> = form_rows.iter().map(|r| (r.deployment, r.form_id.clone())).collect();
        form_ids.sort();
        let forms = deployed
            .forms
            .iter()
            .filter_map(|(id, version, _)| {
                let row = form_rows.iter().find(|r| &r.form_id == id && r.version == *version)?;
                Some(Listed { id: id.clone(), version: *version, resource: row.resource.clone(), key: keys::deployed(keys::Kind::Form, row.deployment, place(row.deployment, id, &form_ids)) })
            })
            .collect();
        Ok(Listing { processes, decisions, requirements, forms })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRequest {
    process_definition_id: Option<String>,
    process_definition_key: Option<String>,
    process_definition_version: Option<i64>,
    #[serde(default)]
    variables: Variables,
    tenant_id: Option<String>,
    business_id: Option<String>,
    #[serde(default)]
    await_completion: bool,
    operation_reference: Option<u64>,
    #[serde(default)]
    tags: Vec<String>,
    request_timeout: Option<i64>,
    fetch_variables: Option<Vec<String>>,
    start_instructions: Option<Vec<Value>>,
    runtime_instructions: Option<Vec<Value>>,
}

/// `POST /v2/process-instances`.
pub async fn create(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Body(request): Body<CreateRequest>) -> Answer {
    let unserved = [
        (!request.tags.is_empty(), "tags"),
        (request.start_instructions.as_ref().is_some_and(|s| !s.is_empty()), "startInstructions"),
        (request.runtime_instructions.as_ref().is_some_and(|s| !s.is_empty()), "runtimeInstructions"),
    ];
    if let Some((_, field)) = unserved.iter().find(|(asked, _)| *asked) {
        // A served operation with a part Baton does not serve: the request asks what this server does not do (400, as a filter it does not serve).
        return Err(ApiError::new("request-invalid", format!("{field} is not served by Baton; docs/camunda-compatibility.md says what is")));
    }
    let _ = request.operation_reference;
    let (tenant, process_id, version) = match (request.process_definition_key, request.process_definition_id) {
        (Some(key), None) => {
            let (deployment, place) = keys::parse_definition("processDefinitionKey", &key)?;
            let listed = state.handle.workflows.at(deployment, place).ok_or_else(|| ApiError::new("workflow-not-found", format!("no process definition has key {key}")))?;
            (listed.tenant, listed.process_id, Some(listed.version))
        }
        (None, Some(id)) => {
            let version = match request.process_definition_version {
                None | Some(-1) => None,
                Some(v) => Some(u32::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| ApiError::new("request-invalid", format!("processDefinitionVersion {v} is not a version (1, 2, ... or -1 for the latest)")))?),
            };
            (tenancy::one(caller.as_ref(), tenant_in(request.tenant_id))?, id, version)
        }
        _ => return Err(ApiError::new("request-invalid", "name the process by exactly one of processDefinitionId and processDefinitionKey")),
    };
    let command = StartCommand { tenant, process_id, version, variables: request.variables, business_key: request.business_id, ..StartCommand::default() };
    let (tenant, process_id, business_key) = (command.tenant.clone(), command.process_id.clone(), command.business_key.clone());
    let id = crate::routes::start(&state, &actor, caller.as_ref(), command).await?;
    // Without a wait, the number and version are all the answer needs: read without the state.
    let (number, version, variables) = if request.await_completion {
        let row = await_completion(&state, &id, request.request_timeout).await?;
        let wanted = request.fetch_variables.filter(|names| !names.is_empty());
        let variables: Map<String, Value> = row.state.variables.iter().filter(|(name, _)| wanted.as_ref().is_none_or(|w| w.contains(name))).map(|(n, v)| (n.clone(), v.clone())).collect();
        (row.number, row.version, variables)
    } else {
        let started = id.clone();
        let (number, version) = read(&state, move |txn| Ok(txn.instance_number(&started)?)).await?.ok_or_else(|| ApiError::new("instance-not-found", "the instance just started is gone"))?;
        state.numbers.remember(number, &id);
        (number, version, Map::new())
    };
    let answer = json!({
        "processDefinitionId": process_id,
        "processDefinitionVersion": version,
        "tenantId": tenant_out(&tenant),
        "variables": variables,
        "processDefinitionKey": definition_key(&state, &tenant, &process_id, version),
        "processInstanceKey": Key::instance(number).render(),
        "tags": [],
        "businessId": business_key,
    });
    Ok(Json(answer).into_response())
}

/// How long a creation with `awaitCompletion` waits when `requestTimeout` is 0 or absent.
const DEFAULT_AWAIT_MS: u64 = 10_000;

/// Waits for a started instance to complete (`awaitCompletion`): its row; a
/// timeout is 504 and an instance ended another way 409, as Camunda answers.
pub(crate) async fn await_completion(state: &AppState, id: &str, request_timeout: Option<i64>) -> Result<store::InstanceRow, ApiError> {
    let wait = match request_timeout.unwrap_or(0) {
        wait if wait <= 0 => DEFAULT_AWAIT_MS,
        wait => (wait as u64).min(crate::routes::MAX_POLL_MS),
    };
    match state.handle.await_end(id, std::time::Duration::from_millis(wait)).await? {
        Some(row) if row.status == Status::Completed => Ok(row),
        Some(row) => Err(ApiError::new("instance-ended", format!("the process instance ended {} without completing", row.status.as_str()))),
        None => Err(ApiError::new("await-timed-out", format!("the process instance did not complete within {wait} ms (requestTimeout); it runs on"))),
    }
}

fn definition_key(state: &AppState, tenant: &str, process_id: &str, version: u32) -> Value {
    state.handle.workflows.find(tenant, process_id, version).map_or(Value::Null, |l| json!(keys::definition(l.deployment, l.place)))
}

/// A process instance as Camunda's searches answer it; `parent_number` is its caller's number.
fn instance_json(state: &AppState, row: &store::InstanceRow, parent_number: Option<u64>) -> Value {
    let workflow = state.handle.workflows.get(&row.tenant, &row.process_id, row.version);
    json!({
        "processDefinitionId": row.process_id,
        "processDefinitionName": workflow.as_ref().and_then(|w| w.name.clone()),
        "processDefinitionVersion": row.version,
        "processDefinitionVersionTag": workflow.as_ref().and_then(|w| w.version_tag.clone()),
        "startDate": time(row.started_at),
        "endDate": row.ended_at.map(time),
        "state": match row.status { Status::Completed => "COMPLETED", Status::Cancelled | Status::Failed => "TERMINATED", Status::Running | Status::Suspended => "ACTIVE" },
        "hasIncident": row.incidents > 0,
        "tenantId": tenant_out(&row.tenant),
        "processInstanceKey": Key::instance(row.number).render(),
        "processDefinitionKey": definition_key(state, &row.tenant, &row.process_id, row.version),
        "parentProcessInstanceKey": parent_number.map(|n| Key::instance(n).render()),
        "parentElementInstanceKey": parent_number.zip(row.state.parent.as_ref()).map(|(n, p)| keys::render_inside(n, p.element_instance)),
        "rootProcessInstanceKey": null,
        "tags": [],
        "businessId": row.business_key,
    })
}

/// Reads an instance and its caller's number.
fn with_parent(txn: &mut dyn store::ReadTxn, row: store::InstanceRow) -> Result<(store::InstanceRow, Option<u64>), ApiError> {
    let parent = match &row.parent_id {
        Some(parent) => txn.instance_number(parent)?.map(|(number, _)| number),
        None => None,
    };
    Ok((row, parent))
}

/// `POST /v2/process-instances/search`.
pub async fn search(State(state): State<AppState>, Caller(caller): Caller, Body(mut request): Body<SearchRequest>) -> Answer {
    let (order, descending) = instance_order(&request.take_sort())?;
    let (filter, window) = request.open(&schemas::process_instance(), &[], "")?;
    let mut wanted = InstanceFilter { tenants: tenancy::scope(caller.as_ref(), None)?, order, descending, ..InstanceFilter::default() };
    if let Some(tenant) = filter.text("tenantId")? {
        wanted.tenants = tenancy::scope(caller.as_ref(), tenant_in(Some(tenant)))?;
    }
    wanted.process_id = filter.text("processDefinitionId")?;
    wanted.version = filter.text("processDefinitionVersion")?.and_then(|v| v.parse().ok());
    if let Some(status) = filter.text("state")? {
        wanted.status = match status.as_str() {
            "ACTIVE" => Some(Status::Running),
            "COMPLETED" => Some(Status::Completed),
            // Baton's failed instances are TERMINATED too: the items' own state decides.
            "TERMINATED" => None,
            other => return Err(ApiError::new("request-invalid", format!("filter state: '{other}' is not ACTIVE, COMPLETED or TERMINATED"))),
        };
    }
    wanted.has_incidents = filter.text("hasIncident")?.and_then(|flag| flag.parse().ok());
    let by_key = filter.text("processInstanceKey")?.map(|k| Key::parse("processInstanceKey", &k)).transpose()?;
    let parent = filter.text("parentProcessInstanceKey")?.map(|k| Key::parse("parentProcessInstanceKey", &k)).transpose()?;
    let reading = state.clone();
    let found = read(&state, move |txn| {
        let Some(parent_id) = super::instance_named(txn, parent)? else { return Ok((Vec::new(), None)) };
        wanted.parent_id = parent_id;
        let rows = |txn: &mut dyn store::ReadTxn, page: &store::PageRequest| -> Result<store::Page<store::InstanceRow>, ApiError> {
            let Some(key) = by_key else { return Ok(txn.instances(&wanted, page)?) };
            let row = match txn.instance_id_by_number(key.number)? {
                Some(id) => txn.instance(&id)?,
                None => None,
            };
            Ok(super::one_row(row.filter(|row| matches(&wanted, row)), page))
        };
        super::gather_rows(txn, &window, &filter, rows, |txn, row| {
            let (row, parent) = with_parent(txn, row)?;
            Ok(Some(instance_json(&reading, &row, parent)))
        })
    })
    .await?;
    let (items, next) = found;
    Ok(Json(search_result(items, next)).into_response())
}

/// The order of an instance search: by start time (the default), process id or state, either way.
fn instance_order(sort: &[Value]) -> Result<(store::InstanceOrder, bool), ApiError> {
    let [first, rest @ ..] = sort else { return Ok((store::InstanceOrder::Started, false)) };
    if !rest.is_empty() {
        return Err(ApiError::new("request-invalid", "sort: Baton sorts instances by one field (then by start time)"));
    }
    let order = match first["field"].as_str() {
        Some("startDate") => store::InstanceOrder::Started,
        Some("processDefinitionId") => store::InstanceOrder::Workflow,
        Some("state") => store::InstanceOrder::Status,
        other => return Err(ApiError::new("request-invalid", format!("sort: instances sort by startDate, processDefinitionId or state, not {}", other.unwrap_or("nothing")))),
    };
    let descending = match first["order"].as_str() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => return Err(ApiError::new("request-invalid", format!("sort: order is ASC or DESC, not {other}"))),
    };
    Ok((order, descending))
}

/// Whether one instance found by key passes the rest of a search's filter.
fn matches(filter: &InstanceFilter, row: &store::InstanceRow) -> bool {
    store::reaches(&filter.tenants, &row.tenant)
        && filter.process_id.as_ref().is_none_or(|p| p == &row.process_id)
        && filter.version.is_none_or(|v| v == row.version)
        && filter.status.is_none_or(|s| s == row.status)
        && filter.has_incidents.is_none_or(|has| has == (row.incidents > 0))
        && filter.parent_id.as_ref().is_none_or(|p| row.parent_id.as_ref() == Some(p))
}

/// The instance a process instance key names, as the caller may see it.
async fn visible_instance(state: &AppState, caller: Option<&crate::access::Principal>, text: &str) -> Result<(store::InstanceRow, Option<u64>), ApiError> {
    let key = Key::parse("processInstanceKey", text)?;
    let missing = || ApiError::new("instance-not-found", format!("no process instance has key {text}"));
    if key.local != 0 {
        return Err(missing());
    }
    let found = read(state, move |txn| {
        let Some(id) = txn.instance_id_by_number(key.number)? else { return Ok(None) };
        let Some(row) = txn.instance(&id)? else { return Ok(None) };
        with_parent(txn, row).map(Some)
    })
    .await?;
    found.filter(|(row, _)| tenancy::sees(caller, &row.tenant)).ok_or_else(missing)
}

/// `GET /v2/process-instances/{processInstanceKey}`.
pub async fn get_one(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let (row, parent) = visible_instance(&state, caller.as_ref(), &key).await?;
    Ok(Json(instance_json(&state, &row, parent)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OperationRequest {
    operation_reference: Option<u64>,
}

/// `POST /v2/process-instances/{processInstanceKey}/cancellation`.
pub async fn cancel(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Path(key): Path<String>, OrDefault(request): OrDefault<OperationRequest>) -> Answer {
    let _ = request.operation_reference;
    let (row, _) = visible_instance(&state, caller.as_ref(), &key).await?;
    instance_input(&state, &actor, None, row.id, engine::Input::Cancel { reason: None }).await
}

fn definition_json(listed: &runtime::Listed) -> Value {
    json!({
        "name": listed.model.name(),
        "resourceName": format!("{}.bpmn", listed.process_id),
        "version": listed.version,
        "versionTag": listed.model.version_tag(),
        "processDefinitionId": listed.process_id,
        "tenantId": tenant_out(&listed.tenant),
        "processDefinitionKey": keys::definition(listed.deployment, listed.place),
        "hasStartForm": false,
        "state": "ACTIVE",
    })
}

/// `POST /v2/process-definitions/search`: every deployed version, by process id and version.
pub async fn search_definitions(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<SearchRequest>) -> Answer {
    let (filter, window) = request.open(&schemas::process_definition(), &[], "definitions answer by key")?;
    let listed = state
        .handle
        .workflows
        .list()
        .into_iter()
        .filter(|l| tenancy::sees(caller.as_ref(), &l.tenant))
        .map(|l| (format!("{:0>20}", keys::definition(l.deployment, l.place)), definition_json(&l)))
        .collect();
    let (items, next) = gather_listed(&window, &filter, listed)?;
    Ok(Json(search_result(items, next)).into_response())
}

async fn visible_definition(state: &AppState, caller: Option<&crate::access::Principal>, key: &str) -> Result<runtime::Listed, ApiError> {
    let (deployment, place) = keys::parse_definition("processDefinitionKey", key)?;
    state
        .handle
        .workflows
        .at(deployment, place)
        .filter(|l| tenancy::sees(caller, &l.tenant))
        .ok_or_else(|| ApiError::new("workflow-not-found", format!("no process definition has key {key}")))
}

/// `GET /v2/process-definitions/{processDefinitionKey}`.
pub async fn get_definition(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    Ok(Json(definition_json(&visible_definition(&state, caller.as_ref(), &key).await?)).into_response())
}

/// `GET /v2/process-definitions/{processDefinitionKey}/xml`.
pub async fn definition_xml(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let listed = visible_definition(&state, caller.as_ref(), &key).await?;
    let row = read(&state, move |txn| Ok(txn.workflow(&listed.tenant, &listed.process_id, listed.version)?)).await?;
    let row = row.ok_or_else(|| ApiError::new("workflow-not-found", format!("no process definition has key {key}")))?;
    Ok(([(header::CONTENT_TYPE, "text/xml")], row.xml).into_response())
}

/// `POST /v2/variables/search`: the variables of one process instance (a
/// `processInstanceKey` filter is required: Baton keeps variables inside
/// each instance, not in a table of their own).
pub async fn search_variables(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<SearchRequest>) -> Answer {
    let (filter, window) = request.open(&schemas::variable(), &[], "variables answer by scope and name")?;
    let key = filter.required("processInstanceKey", "Baton searches the variables of one process instance")?;
    let (row, _) = visible_instance(&state, caller.as_ref(), &key).await?;
    let hidden = caller.as_ref().is_some_and(|c| c.hide_variables);
    let instance_key = Key::instance(row.number).render();
    let scopes = std::iter::once((instance_key.clone(), &row.state.variables)).chain(
        row.state.element_instances.values().filter(|ei| !ei.variables.is_empty()).map(|ei| (keys::render_inside(row.number, ei.key).as_str().unwrap_or_default().to_string(), &ei.variables)),
    );
    let mut rows = Vec::new();
    for (scope_key, variables) in scopes {
        for (variable, value) in variables.iter() {
            let item = json!({
                "name": variable,
                "value": if hidden { "\"[hidden]\"".to_string() } else { value.to_string() },
                "isTruncated": false,
                "tenantId": tenant_out(&row.tenant),
                "variableKey": scope_key,
                "scopeKey": scope_key,
                "processInstanceKey": instance_key,
                "rootProcessInstanceKey": null,
            });
            rows.push((format!("{scope_key:0>20}/{variable}"), item));
        }
    }
    let (items, next) = gather_listed(&window, &filter, rows)?;
    Ok(Json(search_result(items, next)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetVariablesRequest {
    variables: Variables,
    #[serde(default)]
    local: bool,
    operation_reference: Option<u64>,
}

/// `PUT /v2/element-instances/{elementInstanceKey}/variables`: on the process
/// instance's scope (a process instance key), or on an element instance's.
pub async fn set_variables(State(state): State<AppState>, actor: Actor, Path(key): Path<String>, Body(request): Body<SetVariablesRequest>) -> Answer {
    let _ = request.operation_reference;
    let parsed = Key::parse("elementInstanceKey", &key)?;
    let id = super::instance_of(&state, parsed, "element instance", &key).await?;
    // Camunda's `local: false` propagates a variable up to where it is defined; Baton's input sets it on the scope named.
    let _ = request.local;
    let element_instance = (parsed.local != 0).then_some(parsed.local);
    instance_input(&state, &actor, None, id, engine::Input::SetVariables { element_instance, variables: request.variables }).await
}

/// Camunda's element type for Baton's (the BPMN tag, `multiInstanceBody`, ...).
fn element_type(tag: &str) -> &'static str {
    const TYPES: &[&str] = &[
        "PROCESS", "SUB_PROCESS", "EVENT_SUB_PROCESS", "AD_HOC_SUB_PROCESS", "AD_HOC_SUB_PROCESS_INNER_INSTANCE", "START_EVENT",
        "INTERMEDIATE_CATCH_EVENT", "INTERMEDIATE_THROW_EVENT", "BOUNDARY_EVENT", "END_EVENT", "SERVICE_TASK", "RECEIVE_TASK",
        "USER_TASK", "MANUAL_TASK", "TASK", "EXCLUSIVE_GATEWAY", "INCLUSIVE_GATEWAY", "PARALLEL_GATEWAY", "EVENT_BASED_GATEWAY",
        "SEQUENCE_FLOW", "MULTI_INSTANCE_BODY", "CALL_ACTIVITY", "BUSINESS_RULE_TASK", "SCRIPT_TASK", "SEND_TASK",
    ];
    let mut snake = String::new();
    for c in tag.chars() {
        if c.is_ascii_uppercase() && !snake.is_empty() {
            snake.push('_');
        }
        snake.push(c.to_ascii_uppercase());
    }
    // An event subprocess is a subProcess whose tag Baton keeps; `adHocSubProcess` splits as AD_HOC.
    TYPES.iter().find(|t| **t == snake).copied().unwrap_or("UNKNOWN")
}

/// One element instance, as Camunda's searches answer it.
struct ElementRow {
    key: u64,
    element_id: String,
    name: Option<String>,
    tag: String,
    started_at: i64,
    ended_at: Option<i64>,
    state: &'static str,
    incident: Option<u64>,
}

fn element_json(state: &AppState, row: &store::InstanceRow, element: &ElementRow) -> Value {
    json!({
        "processDefinitionId": row.process_id,
        "startDate": time(element.started_at),
        "endDate": element.ended_at.map(time),
        "elementId": element.element_id,
        "elementName": element.name.clone().unwrap_or_else(|| element.element_id.clone()),
        "type": element_type(&element.tag),
        "state": element.state,
        "hasIncident": element.incident.is_some(),
        "tenantId": tenant_out(&row.tenant),
        "elementInstanceKey": if element.key == row.state.root { json!(Key::instance(row.number).render()) } else { keys::render_inside(row.number, element.key) },
        "processInstanceKey": Key::instance(row.number).render(),
        "rootProcessInstanceKey": null,
        "processDefinitionKey": definition_key(state, &row.tenant, &row.process_id, row.version),
        "incidentKey": element.incident.map(|i| keys::render_inside(row.number, i)),
    })
}

/// Every element instance of an instance: ended ones from its history, the others from its state.
fn element_rows(txn: &mut dyn store::ReadTxn, state: &AppState, row: &store::InstanceRow) -> Result<Vec<ElementRow>, ApiError> {
    let workflow = state.handle.workflows.get(&row.tenant, &row.process_id, row.version);
    let mut rows = Vec::new();
    let mut page = store::PageRequest::first(store::PageRequest::MAX_LIMIT);
    loop {
        let found = txn.history(&row.id, &store::HistoryFilter::default(), &page)?;
        for entry in found.items.iter().map(|h| &h.entry) {
            let state = match entry.event {
                engine::HistoryEvent::Completed => "COMPLETED",
                engine::HistoryEvent::Terminated => "TERMINATED",
                _ => continue,
            };
            rows.push(ElementRow {
                key: entry.element_instance,
                element_id: entry.element_id.clone(),
                name: entry.element_name.clone(),
                tag: entry.element_type.clone(),
                started_at: entry.started_at,
                ended_at: Some(entry.at),
                state,
                incident: None,
            });
        }
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    for ei in row.state.element_instances.values() {
        let element = workflow.as_ref().and_then(|w| w.elements.get(ei.element));
        let incident = row.state.incidents.values().find(|i| i.element_instance == ei.key).map(|i| i.key);
        rows.push(ElementRow {
            key: ei.key,
            element_id: ei.element_id.clone(),
            name: element.and_then(|e| e.name.clone()),
            tag: if ei.multi_instance.is_some() { "multiInstanceBody".into() } else { element.map_or_else(String::new, |e| e.tag.clone()) },
            started_at: ei.started_at,
            ended_at: None,
            state: "ACTIVE",
            incident,
        });
    }
    rows.sort_by_key(|r| r.key);
    Ok(rows)
}

/// `POST /v2/element-instances/search`: the element instances of one process
/// instance (a `processInstanceKey` filter is required), in creation order.
pub async fn search_element_instances(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<SearchRequest>) -> Answer {
    let (filter, window) = request.open(&schemas::element_instance(), &[], "element instances answer in creation order")?;
    let key = filter.required("processInstanceKey", "Baton searches the element instances of one process instance")?;
    let (row, _) = visible_instance(&state, caller.as_ref(), &key).await?;
    let reading = state.clone();
    let (row, elements) = read(&state, move |txn| {
        let elements = element_rows(txn, &reading, &row)?;
        Ok((row, elements))
    })
    .await?;
    let listed = elements.iter().map(|e| (format!("{:020}", e.key), element_json(&state, &row, e))).collect();
    let (items, next) = gather_listed(&window, &filter, listed)?;
    Ok(Json(search_result(items, next)).into_response())
}

/// `GET /v2/element-instances/{elementInstanceKey}`.
pub async fn get_element_instance(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let parsed = Key::parse("elementInstanceKey", &key)?;
    let instance_key = Key::instance(parsed.number).render();
    let (row, _) = visible_instance(&state, caller.as_ref(), &instance_key).await.map_err(|_| ApiError::new("element-instance-not-found", format!("no element instance has key {key}")))?;
    let local = if parsed.local == 0 { row.state.root } else { parsed.local };
    let reading = state.clone();
    let (row, found) = read(&state, move |txn| {
        let found = element_rows(txn, &reading, &row)?.into_iter().find(|e| e.key == local);
        Ok((row, found))
    })
    .await?;
    let found = found.ok_or_else(|| ApiError::new("element-instance-not-found", format!("no element instance has key {key}")))?;
    Ok(Json(element_json(&state, &row, &found)).into_response())
}
