//! The handlers: parse, call the runtime (writes) or the store (reads), answer.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{HistoryEvent, InstanceState, Variables};
use runtime::{Audit, Command, Handle, PublishCommand, Reply, StartCommand, TaskAction};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{IncidentFilter, InstanceFilter, JobFilter, Page, PageRequest, ReadTxn, TaskFilter};

use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller, Params, DEPLOY_LIMIT};
use crate::tenancy;

/// What every handler reads, behind one reference count: axum clones the
/// state for each middleware and handler a request passes, and a clone of
/// parts counted apart cost an atomic add (and a drop a subtract) per part.
#[derive(Clone)]
pub struct AppState(pub(crate) std::sync::Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppParts {
    pub handle: Handle,
    /// The tokens the door checks, reloaded after a change (none without authentication).
    pub tokens: Option<std::sync::Arc<crate::access::Tokens>>,
    /// What each client may do per second and at once.
    pub limits: std::sync::Arc<crate::limits::Limits>,
    /// How a user signs in to the console: what `GET /v1/sign-in` answers.
    pub sign_in: std::sync::Arc<Value>,
    /// The console pages' Content-Security-Policy (it names the issuer's token endpoint when there is one).
    pub page_policy: std::sync::Arc<String>,
    /// Instance ids by number, for Camunda's keys (`camunda::keys::Numbers`).
    pub numbers: std::sync::Arc<crate::camunda::keys::Numbers>,
    /// The connection cap, when served by [`crate::serve_with`].
    pub connections: Option<std::sync::Arc<crate::connections::Connections>>,
}

pub(crate) type Answer = Result<Response, ApiError>;

/// Default and largest page sizes.
const DEFAULT_LIMIT: usize = 100;
/// Longest long poll a worker may ask for.
pub(crate) const MAX_POLL_MS: u64 = 60_000;
/// Longest job lease.
pub(crate) const MAX_LEASE_MS: i64 = 24 * 3_600_000;
/// Longest backoff and message time to live: ten years, far from where times overflow.
pub(crate) const MAX_WAIT_MS: i64 = 10 * 365 * 24 * 3_600_000;

pub(crate) fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

pub(crate) fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

/// Runs a read on a blocking thread: store reads may touch the disk.
pub(crate) async fn read<T: Send + 'static>(
    state: &AppState,
    query: impl FnOnce(&mut dyn ReadTxn) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.handle.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut txn = store.read()?;
        query(txn.as_mut())
    })
    .await
    .map_err(|_| ApiError::new("store-failed", "a read was interrupted"))?
}

/// Applies a command on behalf of `actor` (a worker's commands fall back to
/// the worker's name), with the operator's `reason` where there is one.
pub(crate) async fn call(
    state: &AppState,
    actor: &Actor,
    fallback: Option<&str>,
    reason: Option<String>,
    command: Command,
) -> Result<Reply, ApiError> {
    let audit = Audit {
        actor: Some(actor.or(fallback)),
        reason,
        tenants: actor.tenants.clone(),
        ..Audit::default()
    };
    state
        .handle
        .call_as(audit, command)
        .await
        .map_err(ApiError::from)
}

pub(crate) fn page_request(
    after: Option<String>,
    limit: Option<usize>,
) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > PageRequest::MAX_LIMIT {
        return Err(ApiError::new(
            "query-invalid",
            format!("limit must be between 1 and {}", PageRequest::MAX_LIMIT),
        ));
    }
    // An empty cursor is no cursor: the first page.
    Ok(PageRequest {
        after: after.filter(|a| !a.is_empty()),
        limit,
    })
}

pub(crate) fn page_json<T>(page: Page<T>, view: impl Fn(&T) -> Value) -> Value {
    json!({ "items": page.items.iter().map(view).collect::<Vec<_>>(), "next": page.next })
}

// ----- health -----

pub async fn healthz() -> &'static str {
    "ok"
}

/// How long a failed commit keeps the server unready, unless one succeeds first.
const UNREADY_AFTER_FAILED_COMMIT: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn readyz(State(state): State<AppState>) -> Answer {
    // Damage stays until the file is restored: only a restart on a sound file clears it.
    if state.handle.damage().is_some() {
        return Err(ApiError::new(
            "store-unavailable",
            "the database was found damaged (the server's log says where); restore it from a backup and restart, `baton check` lists the damage",
        ));
    }
    // Without the commit loop no write can be answered, however well reads go.
    if !state.handle.is_running() {
        return Err(ApiError::new(
            "store-unavailable",
            "the commit loop is not running; no write can be answered",
        ));
    }
    // Recent only: with no traffic no commit would ever clear it, so after a
    // while the server says ready again, and the next failing commit says otherwise.
    if let Some(ago) = state.handle.failing_since().filter(|ago| *ago < UNREADY_AFTER_FAILED_COMMIT) {
        return Err(ApiError::new(
            "store-unavailable",
            format!("the last commit failed {} s ago and none has succeeded since (a full disk, a lost database: the server's log says which); writes are not taken", ago.as_secs()),
        ));
    }
    read(&state, |txn| Ok(txn.next_due()?)).await?;
    Ok("ready".into_response())
}

/// A copy of the database, made on a blocking thread (`Store::backup`) into
/// a temporary file, then streamed: the file is removed once open, so
/// nothing is left behind however the download ends.
pub async fn backup(State(state): State<AppState>, actor: Actor) -> Answer {
    if actor.tenants.is_some() {
        return Err(ApiError::new(
            "forbidden",
            "a backup holds every tenant's data: only an admin who reaches every tenant may take one",
        ));
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("baton-backup-{}-{n}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let store = state.handle.store.clone();
    let target = file.clone();
    let made = tokio::task::spawn_blocking(move || store.backup(&target))
        .await
        .map_err(|_| ApiError::new("store-failed", "the backup was interrupted"))?;
    match made {
        None => {
            return Err(ApiError::new(
                "backup-not-supported",
                "this server's store is not a file: back a PostgreSQL database up with its own tools (pg_dump, base backups); the memory store keeps nothing",
            ))
        }
        Some(Err(error)) => {
            let _ = std::fs::remove_file(&file);
            return Err(error.into());
        }
        Some(Ok(())) => {}
    }
    let opened = tokio::fs::File::open(&file).await;
    let _ = tokio::fs::remove_file(&file).await;
    let opened = opened.map_err(|_| ApiError::new("store-failed", "the backup file could not be read back"))?;
    let size = opened.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(opened));
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.sqlite3".to_string()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"baton-backup.db\"".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}

pub async fn metrics(State(state): State<AppState>) -> Answer {
    let open = read(&state, |txn| Ok(txn.count_instances()?)).await?;
    let mut text = state.handle.metrics.render(&open);
    state.limits.render(&mut text);
    if let Some(connections) = &state.connections {
        use std::fmt::Write as _;
        let _ = writeln!(text, "# HELP baton_connections_open Client connections open now (at most baton_connections_max).\n# TYPE baton_connections_open gauge");
        let _ = writeln!(text, "baton_connections_open {}", connections.open());
        let _ = writeln!(text, "# HELP baton_connections_max The most client connections served at once (--max-connections).\n# TYPE baton_connections_max gauge");
        let _ = writeln!(text, "baton_connections_max {}", connections.max());
        let _ = writeln!(text, "# HELP baton_connections_refused_total Connections answered 503 (or closed) because every slot was taken.\n# TYPE baton_connections_refused_total counter");
        let _ = writeln!(text, "baton_connections_refused_total {}", connections.refused());
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

// ----- workflows -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    resources: Vec<Resource>,
    /// The tenant to deploy to; see [`tenancy::one`].
    tenant: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resource {
    name: String,
    /// The file's text: BPMN XML, or a form's JSON for a `*.form` file.
    xml: String,
}

pub async fn deploy(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Body(request): Body<DeployRequest, DEPLOY_LIMIT>,
) -> Answer {
    if request.resources.is_empty() {
        return Err(ApiError::new(
            "request-invalid",
            "resources is empty: send at least one BPMN, DMN or form file",
        ));
    }
    let tenant = tenancy::one(caller.as_ref(), request.tenant)?;
    let files = request
        .resources
        .into_iter()
        .map(|r| (r.name, r.xml))
        .collect();
    let command = Command::Deploy {
        tenant: tenant.clone(),
        files,
    };
    let Reply::Deployed(deployed) = call(&state, &actor, None, None, command).await? else {
        unreachable!("deploy answers with versions")
    };
    // Each deployed thing: its id under its own name, its version, and whether that version is new.
    let listed = |things: Vec<(String, u32, bool)>, id: &str| -> Vec<Value> {
        things.into_iter().map(|(key, version, created)| json!({ id: key, "tenant": tenant, "version": version, "created": created })).collect()
    };
    let (workflows, decisions, forms) =
        (listed(deployed.workflows, "workflow"), listed(deployed.decisions, "decision_id"), listed(deployed.forms, "form_id"));
    // Warnings travel with the answer; errors refused the deployment.
    let warnings = diagnostics_json(&deployed.warnings);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "workflows": workflows, "forms": forms, "decisions": decisions, "diagnostics": warnings })),
    )
        .into_response())
}

/// Diagnostics as the API shows them: each with the file it is about.
pub(crate) fn diagnostics_json(diagnostics: &[(String, bpmn::Diagnostic)]) -> Value {
    let items = diagnostics.iter().map(|(resource, diagnostic)| {
        let mut value = serde_json::to_value(diagnostic).unwrap_or_default();
        value["resource"] = json!(resource);
        value
    });
    Value::Array(items.collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    tenant: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// Which tenant's workflow a request about one workflow means.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantParams {
    tenant: Option<String>,
}

fn workflow_json(row: &store::WorkflowRow, with_xml: bool) -> Value {
    let mut value = json!({
        "workflow": row.process_id,
        "tenant": row.tenant,
        "version": row.version,
        "name": row.name,
        "version_tag": row.version_tag,
        "deployed_at": time(row.deployed_at),
    });
    if with_xml {
        value["xml"] = json!(row.xml);
    }
    value
}

pub async fn list_workflows(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<ListParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let page = page_request(params.after, params.limit)?;
    let rows = read(&state, |txn| Ok(txn.workflows()?)).await?;
    let rows = rows
        .into_iter()
        .filter(|r| store::reaches(&tenants, &r.tenant))
        .map(|r| (format!("{}/{}/{:010}", r.tenant, r.process_id, r.version), r))
        .collect();
    let (rows, next) = page_by_name(rows, &page)?;
    ok(json!({ "items": rows.iter().map(|r| workflow_json(r, false)).collect::<Vec<_>>(), "next": next }))
}

/// The version asked for, or else the latest, of something versioned (a form, a decision).
pub(crate) fn asked_version<T>(versions: &[T], asked: Option<u32>, version_of: impl Fn(&T) -> u32) -> Option<&T> {
    match asked {
        Some(version) => versions.iter().find(|v| version_of(v) == version),
        None => versions.last(),
    }
}

/// A page of rows that are few enough to read whole (workflows, forms), each
/// named "tenant/id/version" with the version in ten digits, so names sort as
/// the rows do and a name is the cursor.
pub(crate) fn page_by_name<T>(mut rows: Vec<(String, T)>, page: &PageRequest) -> Result<(Vec<T>, Option<String>), ApiError> {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(after) = &page.after {
        let shaped = after.rsplit_once('/').is_some_and(|(key, version)| {
            !key.is_empty() && version.len() == 10 && version.bytes().all(|b| b.is_ascii_digit())
        });
        if !shaped {
            return Err(store::Error::bad_cursor(after).into());
        }
        rows.retain(|(cursor, _)| cursor > after);
    }
    let limit = page.bounded_limit();
    let next = (rows.len() > limit).then(|| rows[limit - 1].0.clone());
    rows.truncate(limit);
    Ok((rows.into_iter().map(|(_, row)| row).collect(), next))
}

pub async fn get_workflow(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Params(params): Params<TenantParams>,
) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), params.tenant)?;
    let rows = read(&state, |txn| Ok(txn.workflows()?)).await?;
    let latest = rows
        .iter()
        .filter(|r| r.process_id == key && r.tenant == tenant)
        .max_by_key(|r| r.version);
    match latest {
        Some(row) => ok(workflow_json(row, true)),
        None => Err(ApiError::new(
            "workflow-not-found",
            format!("workflow {key} is not deployed"),
        )),
    }
}

pub async fn get_workflow_version(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((key, version)): Path<(String, String)>,
    Params(params): Params<TenantParams>,
) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), params.tenant)?;
    let number: u32 = version.parse().map_err(|_| {
        ApiError::new(
            "request-invalid",
            format!("'{version}' is not a version number"),
        )
    })?;
    let found = read(&state, move |txn| Ok(txn.workflow(&tenant, &key, number)?)).await?;
    match found {
        Some(row) => ok(workflow_json(&row, true)),
        None => Err(ApiError::new(
            "workflow-not-found",
            format!("that workflow has no version {number}"),
        )),
    }
}

// ----- instances -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    workflow: String,
    #[serde(default, deserialize_with = "crate::extract::whole::optional")]
    version: Option<u32>,
    #[serde(default)]
    variables: Variables,
    business_key: Option<String>,
    request_id: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    /// The tenant whose workflow to start; see [`tenancy::one`].
    tenant: Option<String>,
}

pub async fn start_instance(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Body(request): Body<StartRequest>,
) -> Answer {
    let command = StartCommand {
        tenant: tenancy::one(caller.as_ref(), request.tenant)?,
        process_id: request.workflow,
        version: request.version,
        variables: request.variables,
        business_key: request.business_key,
        request_id: request.request_id,
        labels: request.labels,
    };
    let id = start(&state, &actor, caller.as_ref(), command).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// Starts an instance for a caller who may start the workflow, within the caller's start rate: its id.
pub(crate) async fn start(state: &AppState, actor: &Actor, caller: Option<&crate::access::Principal>, command: StartCommand) -> Result<String, ApiError> {
    if let Some(caller) = caller.filter(|c| !c.may_start(&command.process_id)) {
        return Err(forbidden(caller, format!("start workflow '{}'", command.process_id)));
    }
    state.limits.start(&actor.or(None))?;
    let Reply::Started(id) = call(state, actor, None, None, Command::Start(command)).await? else {
        unreachable!("start answers with an id")
    };
    Ok(id)
}

/// Where tokens are: element instances with nothing active inside them.
fn tokens(state: &InstanceState) -> Vec<String> {
    state
        .element_instances
        .values()
        .filter(|ei| {
            ei.key != state.root
                && !state
                    .element_instances
                    .values()
                    .any(|child| child.parent == Some(ei.key))
        })
        .map(|ei| ei.element_id.clone())
        .collect()
}

/// An instance, with the open incidents of the instances it called
/// (`descendant_incidents`) beside its own.
fn instance_json((row, descendant_incidents): &(store::InstanceRow, u32), full: bool) -> Value {
    let state = &row.state;
    let element_at = |at: &engine::ElementAt| json!({ "element": at.element_id, "element_name": at.element_name, "at": time(at.at) });
    let mut value = json!({
        "id": row.id,
        "workflow": row.process_id,
        "tenant": row.tenant,
        "version": row.version,
        "status": row.status.as_str(),
        "business_key": row.business_key,
        "labels": state.labels,
        "parent_id": row.parent_id,
        "parent_element": state.parent.as_ref().map(|p| &p.element_id),
        "root_id": state.root_id(),
        "run": state.run,
        "created_at": time(state.started_at),
        "created_by": state.created_by,
        "updated_at": time(state.updated_at.max(state.started_at)),
        "updated_by": state.updated_by,
        "started_at": time(row.started_at),
        "ended_at": row.ended_at.map(time),
        "incidents": row.incidents,
        "descendant_incidents": descendant_incidents,
        "waiting": row.waiting,
        "update_count": row.update_count,
        "end": state.end.as_ref().map(element_at),
        "cancel_reason": state.cancel_reason,
        "error": state.error.as_ref().map(|e| json!({ "code": e.code, "message": e.message, "element": e.element_id })),
        "last_send_task": state.last_send_task.as_ref().map(element_at),
        "next_due_at": state.timers.values().map(|t| t.due_at).min().map(time),
    });
    if full {
        value["input"] = json!(state.input);
        value["variables"] = json!(state.variables);
        value["tokens"] = json!(tokens(state));
        value["error_code"] = json!(state.error_code);
    }
    value
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceParams {
    tenant: Option<String>,
    status: Option<String>,
    workflow: Option<String>,
    version: Option<u32>,
    business_key: Option<String>,
    waiting: Option<String>,
    has_incidents: Option<bool>,
    started_after: Option<String>,
    started_before: Option<String>,
    ended_after: Option<String>,
    ended_before: Option<String>,
    /// `name=json`, for example `amount=150` or `customer="ada"`.
    variable: Option<String>,
    parent_id: Option<String>,
    /// `name=value`.
    label: Option<String>,
    root_id: Option<String>,
    /// `started` (the default), `workflow` or `status` (then start time); `-` before one for the other way round.
    order: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

pub(crate) fn parse_time(name: &str, value: Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            text.parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
                .map_err(|_| {
                    ApiError::new(
                        "query-invalid",
                        format!(
                            "{name} '{text}' is not a date and time such as 2026-01-01T00:00:00Z"
                        ),
                    )
                })
        })
        .transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountParams {
    tenant: Option<String>,
    workflow: Option<String>,
    version: Option<u32>,
}

/// How many instances there are by status, with own open incidents, and per
/// workflow version: read from counts kept as instances are written, so the
/// answer costs the number of workflow versions, not of instances.
pub async fn count_instances(State(state): State<AppState>, Caller(caller): Caller, Params(params): Params<CountParams>) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let rows = read(&state, move |txn| Ok(txn.instance_counts(&tenants)?)).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| params.workflow.as_ref().is_none_or(|w| &r.process_id == w) && params.version.is_none_or(|v| r.version == v))
        .collect();
    let mut by_status: serde_json::Map<String, Value> = STATUSES.iter().map(|s| (s.as_str().to_string(), json!(0))).collect();
    let mut total = 0;
    let mut with_incidents = 0;
    for row in &rows {
        total += row.count;
        if row.with_incidents {
            with_incidents += row.count;
        }
        let count = by_status.entry(row.status.as_str()).or_insert(json!(0));
        *count = json!(count.as_u64().unwrap_or(0) + row.count);
    }
    let items: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "tenant": r.tenant, "workflow": r.process_id, "version": r.version, "status": r.status.as_str(), "with_incidents": r.with_incidents, "count": r.count }))
        .collect();
    ok(json!({ "total": total, "by_status": by_status, "with_incidents": with_incidents, "items": items }))
}

const STATUSES: [engine::Status; 5] =
    [engine::Status::Running, engine::Status::Suspended, engine::Status::Completed, engine::Status::Cancelled, engine::Status::Failed];

pub async fn list_instances(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<InstanceParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let status = params
        .status
        .map(|s| serde_json::from_value::<engine::Status>(json!(s)).map_err(|_| ApiError::new("query-invalid", format!("status '{s}' is not one of running, suspended, completed, cancelled, failed"))))
        .transpose()?;
    let variable = params
        .variable
        .map(|text| {
            let (name, value) = text.split_once('=').ok_or_else(|| {
                ApiError::new(
                    "query-invalid",
                    "variable takes name=json, for example amount=150",
                )
            })?;
            // JSON when it reads as JSON (amount=150, ok=true, name="ada"), else the text itself (name=ada).
            let value: Value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
            Ok::<_, ApiError>((name.to_string(), value))
        })
        .transpose()?;
    let label = params
        .label
        .map(|text| {
            let (name, value) = text.split_once('=').ok_or_else(|| {
                ApiError::new(
                    "query-invalid",
                    "label takes name=value, for example customer=c-42",
                )
            })?;
            Ok::<_, ApiError>((name.to_string(), value.to_string()))
        })
        .transpose()?;
    if let Some(waiting) = &params.waiting {
        if !["job", "user_task", "timer", "message", "signal", "condition", "call"].contains(&waiting.as_str()) {
            return Err(ApiError::new("query-invalid", format!("waiting '{waiting}' is not one of job, user_task, timer, message, signal, condition, call")));
        }
    }
    if params.version.is_some() && params.workflow.is_none() {
        return Err(ApiError::new("query-invalid", "version needs workflow: a version is one workflow's"));
    }
    let order_text = params.order.as_deref().unwrap_or("started");
    let (descending, key) = match order_text.strip_prefix('-') {
        Some(key) => (true, key),
        None => (false, order_text),
    };
    let order = match key {
        "started" => store::InstanceOrder::Started,
        "workflow" => store::InstanceOrder::Workflow,
        "status" => store::InstanceOrder::Status,
        _ => {
            return Err(ApiError::new(
                "query-invalid",
                format!("order '{order_text}' is not one of started, workflow, status (each may start with '-' for the other way round)"),
            ))
        }
    };
    let filter = InstanceFilter {
        tenants,
        status,
        process_id: params.workflow,
        version: params.version,
        order,
        descending,
        business_key: params.business_key,
        waiting: params.waiting,
        has_incidents: params.has_incidents,
        started_after: parse_time("started_after", params.started_after)?,
        started_before: parse_time("started_before", params.started_before)?,
        ended_after: parse_time("ended_after", params.ended_after)?,
        ended_before: parse_time("ended_before", params.ended_before)?,
        variable,
        parent_id: params.parent_id,
        label,
        root_id: params.root_id,
    };
    let page = page_request(params.after, params.limit)?;
    let found = read(&state, move |txn| {
        let Page { items, next } = txn.instances(&filter, &page)?;
        let items = items
            .into_iter()
            .map(|row| {
                let count = descendant_incidents(txn, &row)?;
                Ok((row, count))
            })
            .collect::<Result<_, store::Error>>()?;
        Ok(Page { items, next })
    })
    .await?;
    ok(page_json(found, |row| instance_json(row, false)))
}

/// The open incidents of the instances `row` called. A called instance with
/// an open incident is running, so its caller waits on a call activity: an
/// instance that waits on none has none to count (and costs no query).
fn descendant_incidents(
    txn: &mut dyn ReadTxn,
    row: &store::InstanceRow,
) -> Result<u32, store::Error> {
    if row.waiting.iter().any(|kind| kind == "call") {
        txn.descendant_incidents(&row.id)
    } else {
        Ok(0)
    }
}

/// An instance the caller may see; one of another tenant is as good as absent.
async fn instance_row(
    state: &AppState,
    caller: Option<&crate::access::Principal>,
    id: String,
) -> Result<store::InstanceRow, ApiError> {
    let lookup = id.clone();
    let row = read(state, move |txn| Ok(txn.instance(&lookup)?)).await?;
    row.filter(|row| tenancy::sees(caller, &row.tenant))
        .ok_or_else(|| {
            ApiError::new(
                "instance-not-found",
                format!("instance {id} does not exist"),
            )
        })
}

pub async fn get_instance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Answer {
    let lookup = id.clone();
    let found = read(&state, move |txn| {
        let Some(row) = txn
            .instance(&lookup)?
            .filter(|row| tenancy::sees(caller.as_ref(), &row.tenant))
        else {
            return Ok(None);
        };
        let count = descendant_incidents(txn, &row)?;
        let delete_at = txn.scheduled_deletion(&lookup)?;
        // Workers and leases live on the job rows, not in the instance's state.
        let filter = JobFilter {
            instance_id: Some(lookup.clone()),
            ..JobFilter::default()
        };
        let jobs = txn
            .jobs(&filter, &PageRequest::first(PageRequest::MAX_LIMIT))?
            .items;
        Ok(Some(((row, count), jobs, delete_at)))
    })
    .await?;
    let (found, jobs, delete_at) = found.ok_or_else(|| {
        ApiError::new(
            "instance-not-found",
            format!("instance {id} does not exist"),
        )
    })?;
    let mut value = instance_json(&found, true);
    value["delete_at"] = json!(delete_at.map(time));
    let row = &found.0;
    value["waits"] = match state
        .handle
        .workflows
        .get(&row.tenant, &row.process_id, row.version)
    {
        Some(workflow) => json!(engine::waits(&workflow, &row.state)
            .iter()
            .map(|w| wait_json(&row.id, w, &jobs))
            .collect::<Vec<_>>()),
        None => json!([]),
    };
    ok(value)
}

/// A waiting token, as an operator reads it: what it waits for, since when, until when.
fn wait_json(instance_id: &str, wait: &engine::Wait, jobs: &[store::JobRow]) -> Value {
    let global = |local: u64| format!("{instance_id}.{local}");
    let job = wait.job.as_ref().map(|job| {
        let row = jobs.iter().find(|r| r.local_key == job.key);
        json!({
            "key": global(job.key),
            "type": job.job_type,
            "retries": job.retries,
            "worker": row.and_then(|r| r.worker.clone()),
            "lease_until": row.and_then(|r| r.lease_until).map(time),
        })
    });
    let task = wait.task.as_ref().map(|task| {
        json!({ "key": global(task.key), "assignee": task.assignee, "candidate_groups": task.candidate_groups, "due": task.due })
    });
    let mut value = json!({
        "element": wait.element,
        "element_name": wait.element_name,
        "kind": wait.kind,
        "since": time(wait.since),
        "loop_counter": wait.loop_counter,
        "job": job,
        "task": task,
        "child": wait.child.as_ref().map(|child| json!({ "instance_id": child })),
        "events": wait.events.iter().map(|e| armed_json(instance_id, e)).collect::<Vec<_>>(),
        "boundary": wait.boundary.iter().map(|e| armed_json(instance_id, e)).collect::<Vec<_>>(),
    });
    if let Some(event) = &wait.event {
        for (field, armed) in armed_json(instance_id, event)
            .as_object()
            .into_iter()
            .flatten()
        {
            if ["due_at", "timer", "repetitions_left", "message", "signal", "condition"]
                .contains(&field.as_str())
            {
                value[field] = armed.clone();
            }
        }
    }
    value
}

/// A timer's repetitions left: `None` for a one-shot timer, `Some(None)` for
/// a cycle without end (`"unbounded"`), else the number.
pub(crate) fn repetitions_json(repeat: Option<Option<u32>>) -> Value {
    match repeat {
        None => Value::Null,
        Some(None) => json!("unbounded"),
        Some(Some(left)) => json!(left),
    }
}

/// A catch event that is armed: a timer's key (to reschedule it), next due
/// time and repetitions left, or a subscription's message or signal.
fn armed_json(instance_id: &str, event: &engine::ArmedEvent) -> Value {
    let repetitions = repetitions_json(event.repeats.then_some(event.repetitions_left));
    json!({
        "element": event.element,
        "element_name": event.element_name,
        "kind": event.kind,
        "timer": (event.kind == "timer").then(|| format!("{instance_id}.{}", event.key)),
        "due_at": event.due_at.map(time),
        "repetitions_left": repetitions,
        "message": event.message.as_ref().map(|name| json!({ "name": name, "correlation_key": event.correlation_key })),
        "signal": event.signal.as_ref().map(|name| json!({ "name": name })),
        "condition": event.condition,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    element: Option<String>,
    element_type: Option<String>,
    /// `activated`, `completed`, `incident_raised`, ... ([`HistoryEvent`]).
    event: Option<String>,
    /// A run number, or `current`.
    run: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// One history entry: an element instance's life (`state`, times) or
/// something done to it, with who did it and the detail that applies.
fn history_json(row: &store::HistoryRow) -> Value {
    let entry = &row.entry;
    let nothing = engine::HistoryDetail::default();
    let detail = entry.detail.as_deref().unwrap_or(&nothing);
    let global = |local: u64| format!("{}.{local}", row.instance_id);
    let element_event = entry.event.is_element_event();
    json!({
        "seq": row.seq,
        "at": time(entry.at),
        "event": entry.event.as_str(),
        "element": entry.element_id,
        "element_name": entry.element_name,
        "element_type": entry.element_type,
        "element_instance": entry.element_instance,
        "state": element_event.then(|| entry.event.as_str()),
        "started_at": element_event.then(|| time(entry.started_at)),
        "ended_at": (element_event && entry.event != HistoryEvent::Activated).then(|| time(entry.at)),
        "loop_counter": entry.loop_counter,
        "iteration": entry.iteration,
        "run": entry.run,
        "actor": entry.actor,
        "reason": entry.reason,
        "job": detail.job.as_ref().map(|j| json!({ "key": global(j.key), "type": j.job_type, "attempt": j.attempt })),
        "task": detail.task.map(|t| json!({ "key": global(t), "completed_by": entry.actor })),
        "incident": detail.incident.as_ref().map(|i| json!({ "key": global(i.key), "kind": i.kind })),
        "variables": detail.variables,
        "names": detail.names,
        "message": detail.message,
        "retries": detail.retries,
        "due_at": detail.due_at.map(time),
        "decision": detail.decision.as_ref().map(crate::decisions::decision_ref_json),
    })
}

pub async fn instance_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Params(params): Params<HistoryParams>,
) -> Answer {
    let row = instance_row(&state, caller.as_ref(), id.clone()).await?;
    let page = page_request(params.after, params.limit)?;
    let event = params
        .event
        .map(|e| {
            serde_json::from_value::<HistoryEvent>(json!(e)).map_err(|_| {
                ApiError::new(
                    "query-invalid",
                    format!("event '{e}' is not a kind of history entry; see the OpenAPI document"),
                )
            })
        })
        .transpose()?;
    let run = match params.run.as_deref() {
        None => None,
        Some("current") => Some(row.state.run),
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            ApiError::new(
                "query-invalid",
                format!("run '{text}' is not a run number or 'current'"),
            )
        })?),
    };
    let filter = store::HistoryFilter {
        element_id: params.element,
        element_type: params.element_type,
        event,
        run,
    };
    let found = read(&state, move |txn| Ok(txn.history(&id, &filter, &page)?)).await?;
    ok(page_json(found, history_json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    reason: Option<String>,
}

pub(crate) async fn instance_input(
    state: &AppState,
    actor: &Actor,
    reason: Option<String>,
    id: String,
    input: engine::Input,
) -> Answer {
    call(
        state,
        actor,
        None,
        reason,
        Command::Instance {
            instance_id: id,
            input,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn cancel_instance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(request): Body<CancelRequest>,
) -> Answer {
    instance_input(
        &state,
        &actor,
        request.reason.clone(),
        id,
        engine::Input::Cancel {
            reason: request.reason,
        },
    )
    .await
}

/// Deletes an ended instance with everything of it. Its history goes too,
/// so who deleted it and why are written to the server's log.
pub async fn delete_instance(State(state): State<AppState>, actor: Actor, Path(id): Path<String>, Body(request): Body<ReasonRequest>) -> Answer {
    call(&state, &actor, None, request.reason.clone(), Command::DeleteInstance { instance_id: id.clone() }).await?;
    let why = request.reason.map(|r| format!(": {r}")).unwrap_or_default();
    eprintln!("baton: instance {id} deleted by {}{why}", actor.or(None));
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepRequest {
    /// When to delete it (RFC 3339), or null for never; the key must be there.
    #[serde(default, deserialize_with = "present")]
    until: Option<Option<String>>,
    reason: Option<String>,
}

/// A key that is there, null or not.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Sets when an ended instance is deleted, or keeps it for ever.
pub async fn keep_instance(State(state): State<AppState>, actor: Actor, Path(id): Path<String>, Body(request): Body<KeepRequest>) -> Answer {
    let until = match request.until {
        None => return Err(ApiError::new("request-invalid", "until is required: a date and time such as 2027-01-01T00:00:00Z, or null to keep the instance for ever")),
        Some(None) => None,
        Some(Some(text)) => Some(
            text.parse::<jiff::Timestamp>()
                .map_err(|_| ApiError::new("request-invalid", format!("until '{}' is not a date and time such as 2027-01-01T00:00:00Z", text.chars().take(40).collect::<String>())))?
                .as_millisecond(),
        ),
    };
    call(&state, &actor, None, request.reason, Command::KeepInstance { instance_id: id, until }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The body of an operator action: why, kept in the instance's history.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    reason: Option<String>,
}

pub async fn suspend_instance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(request): Body<ReasonRequest>,
) -> Answer {
    instance_input(&state, &actor, request.reason, id, engine::Input::Suspend).await
}

pub async fn resume_instance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(request): Body<ReasonRequest>,
) -> Answer {
    instance_input(&state, &actor, request.reason, id, engine::Input::Resume).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariablesRequest {
    variables: Variables,
    reason: Option<String>,
}

pub async fn set_variables(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(request): Body<VariablesRequest>,
) -> Answer {
    let input = engine::Input::SetVariables {
        element_instance: None,
        variables: request.variables,
    };
    instance_input(&state, &actor, request.reason, id, input).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// An element of the process's own scope; by default the start event, or
    /// for a failed instance the element before its error end event.
    from: Option<String>,
    reason: Option<String>,
}

pub async fn rerun_instance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(request): Body<RerunRequest>,
) -> Answer {
    instance_input(
        &state,
        &actor,
        request.reason,
        id,
        engine::Input::Rerun { from: request.from },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    /// A label to set (`"k": "v"`) or remove (`"k": null`).
    labels: std::collections::BTreeMap<String, Option<String>>,
    reason: Option<String>,
}

pub async fn set_labels(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(request): Body<LabelsRequest>,
) -> Answer {
    if request.labels.is_empty() {
        return Err(ApiError::new(
            "request-invalid",
            "labels is empty: name a label to set or (with null) remove",
        ));
    }
    instance_input(
        &state,
        &actor,
        request.reason,
        id,
        engine::Input::SetLabels {
            labels: request.labels,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifyRequest {
    #[serde(default)]
    activate: Vec<String>,
    #[serde(default)]
    terminate: Vec<String>,
    reason: Option<String>,
}

pub async fn modify_instance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(request): Body<ModifyRequest>,
) -> Answer {
    if request.activate.is_empty() && request.terminate.is_empty() {
        return Err(ApiError::new(
            "request-invalid",
            "name elements to activate or terminate",
        ));
    }
    instance_input(
        &state,
        &actor,
        request.reason,
        id,
        engine::Input::Modify {
            activate: request.activate,
            terminate: request.terminate,
        },
    )
    .await
}

// ----- jobs -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    #[serde(rename = "type")]
    pub(crate) job_type: String,
    pub(crate) worker: String,
    #[serde(default = "one", deserialize_with = "crate::extract::whole::required")]
    pub(crate) max_jobs: usize,
    #[serde(
        default = "default_lease",
        deserialize_with = "crate::extract::whole::required"
    )]
    pub(crate) lease_ms: i64,
    #[serde(default, deserialize_with = "crate::extract::whole::required")]
    pub(crate) timeout_ms: u64,
    /// Only jobs of these tenants (all of the caller's when absent).
    pub(crate) tenants: Option<Vec<String>>,
}

fn one() -> usize {
    1
}

pub(crate) fn default_lease() -> i64 {
    300_000
}

fn job_json(job: &store::JobRow) -> Value {
    // Strings, numbers and a unit enum: `to_value` fails only for maps
    // keyed by something else, and `JobJson` holds none.
    serde_json::to_value(JobJson::of(job)).unwrap_or(Value::Null)
}

/// A job as the API shows it, serialized from the row as it is: activation
/// answers many at once, and building a `Value` of each first (its variables
/// copied into it) was a tenth of the API threads' time under W3.
#[derive(serde::Serialize)]
struct JobJson<'a> {
    key: &'a str,
    tenant: &'a str,
    #[serde(rename = "type")]
    job_type: &'a str,
    instance_id: &'a str,
    workflow: &'a str,
    element_id: &'a str,
    retries: u32,
    state: engine::JobState,
    worker: Option<&'a str>,
    lease_until: Option<String>,
    not_before: Option<String>,
    error_message: Option<&'a str>,
    created_at: String,
}

impl<'a> JobJson<'a> {
    fn of(job: &'a store::JobRow) -> Self {
        JobJson {
            key: &job.key,
            tenant: &job.tenant,
            job_type: &job.job_type,
            instance_id: &job.instance_id,
            workflow: &job.process_id,
            element_id: &job.element_id,
            retries: job.retries,
            state: job.state,
            worker: job.worker.as_deref(),
            lease_until: job.lease_until.map(time),
            not_before: job.not_before.map(time),
            error_message: job.error_message.as_deref(),
            created_at: time(job.created_at),
        }
    }
}

/// A job as activation hands it to its worker (a long poll's answer, a
/// stream's line): the job, then what the worker needs to do it.
#[derive(serde::Serialize)]
pub(crate) struct ActivatedJson<'a> {
    #[serde(flatten)]
    job: JobJson<'a>,
    variables: &'a Variables,
    // The proof of holding the job: in this answer only, never in lists.
    lease: Option<&'a str>,
    headers: &'a BTreeMap<String, String>,
    properties: &'a BTreeMap<String, String>,
    listener: Option<bpmn::ListenerEvent>,
}

impl<'a> ActivatedJson<'a> {
    pub(crate) fn of(activated: &'a runtime::ActivatedJob) -> Self {
        ActivatedJson {
            job: JobJson::of(&activated.job),
            variables: &activated.variables,
            lease: activated.job.lease.as_deref(),
            headers: &activated.headers,
            properties: &activated.properties,
            listener: activated.listener,
        }
    }
}

#[derive(serde::Serialize)]
struct ActivatedJobs<'a> {
    jobs: Vec<ActivatedJson<'a>>,
}

pub async fn activate_jobs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<ActivateRequest>,
) -> Answer {
    let jobs = activate(&state, caller.as_ref(), request).await?;
    Ok(Json(ActivatedJobs { jobs: jobs.iter().map(ActivatedJson::of).collect() }).into_response())
}

/// The checks every way of taking jobs makes (a poll, a stream, Zeebe's
/// gRPC calls): that the caller may take the type, that it and the worker
/// are named, how many at once (`how_many`: the field and its value), and
/// the lease. Answers the tenants to take jobs of.
pub(crate) fn check_taking(
    caller: Option<&crate::access::Principal>,
    job_type: &str,
    worker: &str,
    how_many: (&str, usize),
    lease_ms: i64,
    tenants: Option<Vec<String>>,
) -> Result<store::Tenants, ApiError> {
    if let Some(caller) = caller.filter(|c| !c.may_work_on(job_type)) {
        return Err(forbidden(caller, format!("take '{job_type}' jobs")));
    }
    if job_type.is_empty() || worker.is_empty() {
        return Err(ApiError::new("request-invalid", "type and worker must not be empty: name the job type and yourself"));
    }
    let (field, count) = how_many;
    if count == 0 || count > crate::jobs::MAX_BATCH {
        return Err(ApiError::new("request-invalid", format!("{field} must be between 1 and {}", crate::jobs::MAX_BATCH)));
    }
    if lease_ms <= 0 || lease_ms > MAX_LEASE_MS {
        return Err(ApiError::new("request-invalid", format!("lease_ms must be between 1 and {MAX_LEASE_MS}")));
    }
    tenancy::scope_of_list(caller, tenants)
}

/// Takes jobs for a caller who may work on their type, waiting up to
/// `timeout_ms` for some (a waiting poll takes one of the caller's places).
pub(crate) async fn activate(state: &AppState, caller: Option<&crate::access::Principal>, request: ActivateRequest) -> Result<Vec<runtime::ActivatedJob>, ApiError> {
    let tenants = check_taking(caller, &request.job_type, &request.worker, ("max_jobs", request.max_jobs), request.lease_ms, request.tenants)?;
    if request.timeout_ms > MAX_POLL_MS {
        return Err(ApiError::new(
            "request-invalid",
            format!("timeout_ms must be at most {MAX_POLL_MS}"),
        ));
    }
    let timeout = Duration::from_millis(request.timeout_ms);
    // Only a waiting poll takes a place: one that answers at once holds nothing.
    let client = caller.map_or_else(|| request.worker.clone(), |c| c.name.clone());
    let _place = if request.timeout_ms > 0 {
        Some(state.limits.poll(&client)?)
    } else {
        None
    };
    Ok(state
        .handle
        .activate(
            request.job_type,
            request.worker,
            request.max_jobs,
            request.lease_ms,
            timeout,
            tenants,
        )
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobParams {
    tenant: Option<String>,
    #[serde(rename = "type")]
    job_type: Option<String>,
    instance_id: Option<String>,
    state: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

pub async fn list_jobs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<JobParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let job_state = params
        .state
        .map(|s| {
            serde_json::from_value::<engine::JobState>(json!(s)).map_err(|_| {
                ApiError::new(
                    "query-invalid",
                    format!("state '{s}' is not one of activatable, failed"),
                )
            })
        })
        .transpose()?;
    let filter = JobFilter {
        tenants,
        job_type: params.job_type,
        instance_id: params.instance_id,
        state: job_state,
    };
    let page = page_request(params.after, params.limit)?;
    let found = read(&state, move |txn| Ok(txn.jobs(&filter, &page)?)).await?;
    ok(page_json(found, job_json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteJobRequest {
    worker: Option<String>,
    lease: Option<String>,
    #[serde(default, rename = "override")]
    override_lease: bool,
    reason: Option<String>,
    #[serde(default)]
    variables: Variables,
    /// For an ad-hoc subprocess's job: what to activate in it, or that it is done.
    result: Option<engine::JobResult>,
}

/// How a request claims a job; overriding a lease takes `operator` when tokens are on.
pub(crate) fn claim(
    caller: Option<&crate::access::Principal>,
    worker: Option<String>,
    lease: Option<String>,
    override_lease: bool,
) -> Result<runtime::Claim, ApiError> {
    if let Some(caller) = caller.filter(|c| override_lease && !c.has(crate::access::Role::Operator))
    {
        return Err(forbidden(
            caller,
            "override a worker's lease; that takes operator".into(),
        ));
    }
    // A worker's token may list its job types: the commit loop checks the job's, as it reads it anyway.
    let job_types = caller
        .filter(|c| !c.has(crate::access::Role::Admin))
        .and_then(|c| c.job_types.clone());
    Ok(runtime::Claim {
        worker,
        lease,
        override_lease,
        job_types,
        key_holds: false,
    })
}

/// A 403 naming who was refused what.
pub(crate) fn forbidden(caller: &crate::access::Principal, what: String) -> ApiError {
    ApiError::new(
        "forbidden",
        format!("{}'s token does not allow it to {what}", caller.name),
    )
}

pub async fn complete_job(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(request): Body<CompleteJobRequest>,
) -> Answer {
    let completion = crate::jobs::Completion { variables: request.variables, result: request.result };
    let claim = claim(caller.as_ref(), request.worker.clone(), request.lease, request.override_lease)?;
    call(&state, &actor, request.worker.as_deref(), request.reason, completion.command(key, claim)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailJobRequest {
    worker: Option<String>,
    lease: Option<String>,
    #[serde(default, rename = "override")]
    override_lease: bool,
    reason: Option<String>,
    #[serde(deserialize_with = "crate::extract::whole::required")]
    retries: u32,
    #[serde(default)]
    message: String,
    #[serde(default, deserialize_with = "crate::extract::whole::required")]
    backoff_ms: i64,
    #[serde(default)]
    variables: Variables,
}

pub async fn fail_job(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(request): Body<FailJobRequest>,
) -> Answer {
    let failure = crate::jobs::Failure { retries: request.retries, message: request.message, backoff_ms: request.backoff_ms, variables: request.variables };
    let claim = claim(caller.as_ref(), request.worker.clone(), request.lease, request.override_lease)?;
    let command = failure.command(key, claim)?;
    call(&state, &actor, request.worker.as_deref(), request.reason, command).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrowErrorRequest {
    worker: Option<String>,
    lease: Option<String>,
    #[serde(default, rename = "override")]
    override_lease: bool,
    reason: Option<String>,
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    variables: Variables,
}

pub async fn throw_error(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(request): Body<ThrowErrorRequest>,
) -> Answer {
    let thrown = crate::jobs::Thrown { code: request.code, message: request.message, variables: request.variables };
    let claim = claim(caller.as_ref(), request.worker.clone(), request.lease, request.override_lease)?;
    let command = thrown.command(key, claim)?;
    call(&state, &actor, request.worker.as_deref(), request.reason, command).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetriesRequest {
    #[serde(deserialize_with = "crate::extract::whole::required")]
    retries: u32,
    reason: Option<String>,
}

pub async fn update_retries(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    Body(request): Body<RetriesRequest>,
) -> Answer {
    call(
        &state,
        &actor,
        None,
        request.reason,
        Command::UpdateRetries {
            key,
            retries: request.retries,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- user tasks -----

/// A user task as the API answers it, with its element's `zeebe:properties` (`properties`, empty when it has none).
fn task_json(task: &store::TaskRow, properties: &BTreeMap<String, String>) -> Value {
    json!({
        "properties": properties,
        "key": task.key,
        "tenant": task.tenant,
        "instance_id": task.instance_id,
        "workflow": task.process_id,
        "element_id": task.element_id,
        "assignee": task.assignee,
        "candidate_groups": task.candidate_groups,
        "candidate_users": task.candidate_users,
        "due": task.due,
        "follow_up": task.follow_up,
        "priority": task.priority,
        "form_key": task.form_key,
        "created_at": time(task.created_at),
        "state": if task.completed_at.is_some() { "completed" } else { "open" },
        "completed_at": task.completed_at.map(time),
        "completed_by": task.completed_by,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskParams {
    tenant: Option<String>,
    assignee: Option<String>,
    candidate_group: Option<String>,
    workflow: Option<String>,
    instance_id: Option<String>,
    state: Option<String>,
    completed_by: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

pub async fn list_tasks(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<TaskParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let task_state = match params.state.as_deref() {
        None | Some("open") => store::TaskState::Open,
        Some("completed") => store::TaskState::Completed,
        Some("all") => store::TaskState::All,
        Some(other) => return Err(ApiError::new("query-invalid", format!("state '{other}' is not open, completed or all"))),
    };
    let filter = TaskFilter {
        tenants,
        assignee: params.assignee,
        candidate_group: params.candidate_group,
        process_id: params.workflow,
        instance_id: params.instance_id,
        state: task_state,
        completed_by: params.completed_by,
    };
    let page = page_request(params.after, params.limit)?;
    let registry = state.handle.workflows.clone();
    let (mut found, properties) = read(&state, move |txn| {
        let found = txn.tasks(&filter, &page)?;
        let properties = found.items.iter().map(|task| task_properties(txn, &registry, task)).collect::<Result<Vec<_>, store::Error>>()?;
        Ok((found, properties))
    })
    .await?;
    let by_key: BTreeMap<String, BTreeMap<String, String>> = found.items.iter().map(|t| t.key.clone()).zip(properties).collect();
    // A user sees the tasks it may work on (a page may then hold fewer; `next` still leads on).
    if let Some(caller) = caller {
        found.items.retain(|task| caller.may_see_task(task));
    }
    let none = BTreeMap::new();
    ok(page_json(found, |task| task_json(task, by_key.get(&task.key).unwrap_or(&none))))
}

/// The `zeebe:properties` of a task's element, in the workflow version its instance runs.
fn task_properties(txn: &mut dyn ReadTxn, registry: &runtime::Registry, task: &store::TaskRow) -> Result<BTreeMap<String, String>, store::Error> {
    let Some(instance) = txn.instance(&task.instance_id)? else { return Ok(BTreeMap::new()) };
    let workflow = registry.get(&instance.tenant, &instance.process_id, instance.version);
    Ok(workflow.and_then(|w| w.element(&task.element_id).map(|e| e.properties.clone())).unwrap_or_default())
}

/// A user task the caller may see; one it may not is as good as absent.
pub(crate) async fn visible_task(
    state: &AppState,
    caller: Option<&crate::access::Principal>,
    key: &str,
) -> Result<store::TaskRow, ApiError> {
    let lookup = key.to_string();
    let task = read(state, move |txn| Ok(txn.task(&lookup)?)).await?;
    task.filter(|task| {
        tenancy::sees(caller, &task.tenant) && caller.is_none_or(|c| c.may_see_task(task))
    })
    .ok_or_else(|| ApiError::new("task-not-found", format!("user task {key} does not exist")))
}

pub async fn get_task(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<String>,
) -> Answer {
    let task = visible_task(&state, caller.as_ref(), &key).await?;
    let registry = state.handle.workflows.clone();
    let row = task.clone();
    let properties = read(&state, move |txn| Ok(task_properties(txn, &registry, &row)?)).await?;
    ok(task_json(&task, &properties))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssigneeRequest {
    assignee: String,
}

pub(crate) async fn task_action(state: &AppState, actor: &Actor, key: String, action: TaskAction) -> Answer {
    call(state, actor, None, None, Command::Task { key, action }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn claim_task(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(request): Body<AssigneeRequest>,
) -> Answer {
    claim_task_as(&state, &actor, caller.as_ref(), key, request.assignee).await
}

/// Claims a task the caller sees, for itself (or, as an operator, for anyone).
pub(crate) async fn claim_task_as(state: &AppState, actor: &Actor, caller: Option<&crate::access::Principal>, key: String, assignee: String) -> Answer {
    visible_task(state, caller, &key).await?;
    if let Some(caller) = caller.filter(|c| c.name != assignee && !c.has(crate::access::Role::Operator)) {
        return Err(forbidden(caller, format!("claim a task for {assignee}; assigning to someone else takes operator")));
    }
    task_action(state, actor, key, TaskAction::Claim(assignee)).await
}

pub async fn unclaim_task(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(_): Body<Empty>,
) -> Answer {
    unclaim_task_as(&state, &actor, caller.as_ref(), key).await
}

/// Gives back a task the caller holds (or, as an operator, any task).
pub(crate) async fn unclaim_task_as(state: &AppState, actor: &Actor, caller: Option<&crate::access::Principal>, key: String) -> Answer {
    let task = visible_task(state, caller, &key).await?;
    if let Some(caller) = caller.filter(|c| task.assignee.as_deref() != Some(c.name.as_str()) && !c.has(crate::access::Role::Operator)) {
        return Err(forbidden(caller, "give back a task it does not hold".into()));
    }
    task_action(state, actor, key, TaskAction::Unclaim).await
}

pub async fn assign_task(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    Body(request): Body<AssigneeRequest>,
) -> Answer {
    task_action(&state, &actor, key, TaskAction::Assign(request.assignee)).await
}

/// A change to a user task's dates, candidates or priority; a member left out stays, `""` or `[]` clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskRequest {
    due: Option<String>,
    follow_up: Option<String>,
    priority: Option<i64>,
    candidate_groups: Option<Vec<String>>,
    candidate_users: Option<Vec<String>>,
}

pub async fn update_task(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(request): Body<UpdateTaskRequest>,
) -> Answer {
    visible_task(&state, caller.as_ref(), &key).await?;
    let changes = engine::TaskCorrections {
        assignee: None,
        due_date: request.due,
        follow_up_date: request.follow_up,
        priority: request.priority,
        candidate_groups: request.candidate_groups,
        candidate_users: request.candidate_users,
    };
    task_action(&state, &actor, key, TaskAction::Update(changes)).await
}

pub async fn complete_task(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(request): Body<VariablesRequestOptional>,
) -> Answer {
    complete_task_as(&state, &actor, caller.as_ref(), key, request.variables).await
}

/// Completes a task the caller may see and complete.
pub(crate) async fn complete_task_as(state: &AppState, actor: &Actor, caller: Option<&crate::access::Principal>, key: String, variables: Variables) -> Answer {
    let task = visible_task(state, caller, &key).await?;
    if let Some(caller) = caller.filter(|c| !c.may_complete_task(&task)) {
        let holder = task.assignee.as_deref().unwrap_or("nobody; claim it first");
        return Err(forbidden(caller, format!("complete a task assigned to {holder}")));
    }
    task_action(state, actor, key, TaskAction::Complete(variables)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariablesRequestOptional {
    #[serde(default)]
    variables: Variables,
}

// ----- messages, signals, incidents -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    name: String,
    #[serde(default)]
    correlation_key: String,
    #[serde(default)]
    variables: Variables,
    #[serde(default, deserialize_with = "crate::extract::whole::required")]
    ttl_ms: i64,
    message_id: Option<String>,
    /// The tenant whose instances may receive it; see [`tenancy::one`].
    tenant: Option<String>,
}

pub async fn publish_message(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Body(request): Body<PublishRequest>,
) -> Answer {
    let command = PublishCommand {
        tenant: tenancy::one(caller.as_ref(), request.tenant)?,
        name: request.name,
        correlation_key: request.correlation_key,
        variables: request.variables,
        ttl_ms: request.ttl_ms,
        message_id: request.message_id,
    };
    let seq = publish(&state, &actor, command, "ttl_ms").await?.seq;
    Ok((StatusCode::CREATED, Json(json!({ "seq": seq }))).into_response())
}

/// Publishes a message within the caller's rate: its sequence number and receivers. `ttl_field` names the time to live in errors.
pub(crate) async fn publish(state: &AppState, actor: &Actor, command: PublishCommand, ttl_field: &str) -> Result<runtime::Publication, ApiError> {
    if command.name.is_empty() {
        return Err(ApiError::new("request-invalid", "name is empty: name the message"));
    }
    state.limits.publish(&actor.or(None))?;
    if !(0..=MAX_WAIT_MS).contains(&command.ttl_ms) {
        return Err(ApiError::new("request-invalid", format!("{ttl_field} must be between 0 and {MAX_WAIT_MS} (ten years)")));
    }
    let Reply::Published(publication) = call(state, actor, None, None, Command::Publish(command)).await? else {
        unreachable!("publish answers with a sequence number")
    };
    Ok(publication)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    name: String,
    #[serde(default)]
    variables: Variables,
    /// The tenant whose instances receive it; see [`tenancy::one`].
    tenant: Option<String>,
}

pub async fn broadcast_signal(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Body(request): Body<SignalRequest>,
) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), request.tenant)?;
    broadcast(&state, &actor, tenant, request.name, request.variables).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Broadcasts a signal to one tenant's instances and workflows.
pub(crate) async fn broadcast(state: &AppState, actor: &Actor, tenant: String, name: String, variables: Variables) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::new("request-invalid", "name is empty: name the signal"));
    }
    call(state, actor, None, None, Command::Broadcast { tenant, name, variables }).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalsRequest {
    #[serde(default)]
    variables: Variables,
    /// Only this workflow's conditional start events (else every workflow's of the tenant).
    workflow: Option<String>,
    tenant: Option<String>,
}

/// Camunda's evaluate-conditionals call: each conditional start event of the
/// tenant's latest workflows whose condition the variables make true starts an instance.
pub async fn evaluate_conditionals(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Body(request): Body<ConditionalsRequest>,
) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), request.tenant)?;
    let command = Command::EvaluateConditionals { tenant, workflow: request.workflow, variables: request.variables };
    let Reply::ConditionsEvaluated(started) = call(&state, &actor, None, None, command).await? else {
        return Err(ApiError::new("engine-fault", "the commit loop answered another command"));
    };
    let instances: Vec<Value> = started
        .iter()
        .map(|s| json!({"id": s.instance_id, "workflow": s.workflow, "version": s.version, "start_event": s.start_event}))
        .collect();
    ok(json!({ "instances": instances }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    tenant: Option<String>,
    /// `open` (the default), `resolved` or `all`.
    state: Option<String>,
    instance_id: Option<String>,
    /// With `instance_id`: the incidents of the instances it called too.
    descendants: Option<bool>,
    workflow: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

fn incident_json(incident: &store::IncidentRow) -> Value {
    json!({
        "key": incident.key,
        "tenant": incident.tenant,
        "instance_id": incident.instance_id,
        "workflow": incident.process_id,
        "element_id": incident.element_id,
        "kind": incident.kind,
        "message": incident.message,
        "created_at": time(incident.created_at),
        "state": if incident.resolved_at.is_some() { "resolved" } else { "open" },
        "resolved_at": incident.resolved_at.map(time),
        "resolved_by": incident.resolved_by,
    })
}

pub async fn list_incidents(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<IncidentParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    // Without instance_id every incident is listed anyway, descendants or not.
    let with_descendants = params.descendants.unwrap_or(false);
    let incident_state = match params.state.as_deref() {
        None | Some("open") => store::IncidentState::Open,
        Some("resolved") => store::IncidentState::Resolved,
        Some("all") => store::IncidentState::All,
        Some(other) => {
            return Err(ApiError::new(
                "query-invalid",
                format!("state '{other}' is not open, resolved or all"),
            ))
        }
    };
    let filter = IncidentFilter {
        tenants,
        state: incident_state,
        instance_id: params.instance_id,
        with_descendants,
        process_id: params.workflow,
    };
    let page = page_request(params.after, params.limit)?;
    let found = read(&state, move |txn| Ok(txn.incidents(&filter, &page)?)).await?;
    ok(page_json(found, incident_json))
}

pub async fn resolve_incident(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    Body(request): Body<ReasonRequest>,
) -> Answer {
    call(
        &state,
        &actor,
        None,
        request.reason,
        Command::ResolveIncident { key },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Answers for paths and methods the API does not have.
pub async fn not_found() -> ApiError {
    ApiError::new(
        "route-not-found",
        "no endpoint at this path; see /v1/openapi.json",
    )
}
