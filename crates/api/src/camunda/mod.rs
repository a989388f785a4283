//! The second face: a subset of Camunda 8's Orchestration Cluster REST API
//! under `/v2`, so Camunda's own clients (job workers, starters, the
//! Modeler's deploy button) run against Baton unchanged.
//!
//! Written from Camunda's documented wire contract (paths, field names,
//! status codes, the problem body), not from its specification files; see
//! `docs/camunda-compatibility.md` for what is served and what differs.
//! Every write goes through the same runtime commands as `/v1`, behind the
//! same door and role table (`ROUTES` below); only the shapes differ. Keys
//! are 64-bit integers ([`keys`]); Baton's default tenant is Camunda's
//! `<default>`.

pub(crate) mod instances;
pub mod schemas;
pub mod keys;
mod tasks;
pub(crate) mod work;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use serde_json::{json, Value};

use crate::access::{Access, Role, Role::*};
use crate::error::ApiError;
use crate::routes::AppState;

const READERS: &[Role] = &[Operator, Viewer];
const DEFINITION_READERS: &[Role] = &[Developer, Operator, Viewer];
const TASK_READERS: &[Role] = &[User, Operator, Viewer];

/// Method, path, summary, who may call it: the served subset.
pub const ROUTES: &[(&str, &str, &str, Access)] = &[
    ("get", "/v2/status", "Whether the cluster can take work: 204, or 503 when the commit loop or the store is down", Access::Public),
    ("get", "/v2/topology", "The cluster: one broker, one partition (Baton's node)", Access::Roles(&[Developer, Operator, Worker, Starter, User, Viewer])),
    ("post", "/v2/deployments", "Deploy BPMN, DMN and form files (multipart `resources`, optional `tenantId`), all or nothing", Access::Roles(&[Developer])),
    ("post", "/v2/process-instances", "Create a process instance by process definition id (and version) or key, with variables", Access::Roles(&[Starter, User])),
    ("post", "/v2/process-instances/search", "Search process instances", Access::Roles(READERS)),
    ("get", "/v2/process-instances/{processInstanceKey}", "Get a process instance", Access::Roles(READERS)),
    ("post", "/v2/process-instances/{processInstanceKey}/cancellation", "Cancel a process instance", Access::Roles(&[Operator])),
    ("post", "/v2/process-definitions/search", "Search deployed process definitions", Access::Roles(DEFINITION_READERS)),
    ("get", "/v2/process-definitions/{processDefinitionKey}", "Get a process definition", Access::Roles(DEFINITION_READERS)),
    ("get", "/v2/process-definitions/{processDefinitionKey}/xml", "Get a process definition's BPMN XML", Access::Roles(DEFINITION_READERS)),
    ("post", "/v2/jobs/activation", "Activate jobs of a type (long poll up to requestTimeout)", Access::Roles(&[Worker])),
    ("post", "/v2/jobs/{jobKey}/completion", "Complete a job, with variables and a job result", Access::Roles(&[Worker])),
    ("post", "/v2/jobs/{jobKey}/failure", "Fail a job: retries left, back-off, message", Access::Roles(&[Worker])),
    ("post", "/v2/jobs/{jobKey}/error", "Throw a BPMN error from a job", Access::Roles(&[Worker])),
    ("patch", "/v2/jobs/{jobKey}", "Change a job's retries, and the end of its lease (timeout from now)", Access::Roles(&[Operator])),
    ("post", "/v2/jobs/search", "Search open jobs", Access::Roles(READERS)),
    ("post", "/v2/messages/publication", "Publish a message (time to live, message id)", Access::Roles(&[Starter])),
    ("post", "/v2/messages/correlation", "Correlate a message now (no time to live): the instance that took it", Access::Roles(&[Starter])),
    ("post", "/v2/signals/broadcast", "Broadcast a signal", Access::Roles(&[Starter])),
    ("post", "/v2/user-tasks/search", "Search user tasks", Access::Roles(TASK_READERS)),
    ("get", "/v2/user-tasks/{userTaskKey}", "Get a user task", Access::Roles(TASK_READERS)),
    ("post", "/v2/user-tasks/{userTaskKey}/assignment", "Assign a user task", Access::Roles(&[User, Operator])),
    ("delete", "/v2/user-tasks/{userTaskKey}/assignee", "Unassign a user task", Access::Roles(&[User, Operator])),
    ("post", "/v2/user-tasks/{userTaskKey}/completion", "Complete a user task", Access::Roles(&[User])),
    ("get", "/v2/user-tasks/{userTaskKey}/form", "A user task's form (embedded or deployed); 204 when it has none", Access::Roles(TASK_READERS)),
    ("post", "/v2/incidents/search", "Search incidents", Access::Roles(READERS)),
    ("get", "/v2/incidents/{incidentKey}", "Get an incident", Access::Roles(READERS)),
    ("post", "/v2/incidents/{incidentKey}/resolution", "Resolve an incident", Access::Roles(&[Operator])),
    ("post", "/v2/variables/search", "Search the variables of a process instance", Access::Roles(READERS)),
    ("post", "/v2/element-instances/search", "Search the element instances of a process instance", Access::Roles(READERS)),
    ("get", "/v2/element-instances/{elementInstanceKey}", "Get an element instance", Access::Roles(READERS)),
    ("put", "/v2/element-instances/{elementInstanceKey}/variables", "Set variables on an element instance's scope", Access::Roles(&[Operator])),
];

/// The route of everything else under `/v2`.
const NOT_SERVED: &str = "/v2/{*rest}";

/// Who may call `method` `path` (a `/v2` route template). Anyone the door
/// lets in may learn that an operation is not served.
pub fn access(method: &str, path: &str) -> Option<Access> {
    if path == NOT_SERVED {
        return Some(Access::Roles(&[Developer, Operator, Worker, Starter, User, Viewer]));
    }
    ROUTES.iter().find(|(m, p, _, _)| m.eq_ignore_ascii_case(method) && *p == path).map(|(_, _, _, access)| *access)
}

/// The `/v2` routes, to merge into the API's router.
pub fn routes(router: Router<AppState>) -> Router<AppState> {
    let handlers: [(&str, MethodRouter<AppState>); 19] = [
        ("/v2/topology", get(instances::topology)),
        ("/v2/deployments", post(instances::deploy).layer(axum::extract::DefaultBodyLimit::max(crate::extract::DEPLOY_LIMIT))),
        ("/v2/process-instances", post(instances::create)),
        ("/v2/process-instances/search", post(instances::search)),
        ("/v2/process-instances/{processInstanceKey}", get(instances::get_one)),
        ("/v2/process-instances/{processInstanceKey}/cancellation", post(instances::cancel)),
        ("/v2/process-definitions/search", post(instances::search_definitions)),
        ("/v2/process-definitions/{processDefinitionKey}", get(instances::get_definition)),
        ("/v2/process-definitions/{processDefinitionKey}/xml", get(instances::definition_xml)),
        ("/v2/jobs/activation", post(work::activate)),
        ("/v2/jobs/{jobKey}", patch(work::update_job)),
        ("/v2/jobs/{jobKey}/completion", post(work::complete)),
        ("/v2/jobs/{jobKey}/failure", post(work::fail)),
        ("/v2/jobs/{jobKey}/error", post(work::throw_error)),
        ("/v2/messages/publication", post(work::publish)),
        ("/v2/signals/broadcast", post(work::broadcast)),
        ("/v2/user-tasks/search", post(tasks::search)),
        ("/v2/user-tasks/{userTaskKey}", get(tasks::get_one)),
        ("/v2/incidents/search", post(work::search_incidents)),
    ];
    let mut router = handlers.into_iter().fold(router, |router, (path, method)| router.route(path, method));
    router = router.route("/v2/user-tasks/{userTaskKey}/assignment", post(tasks::assign));
    router = router.route("/v2/user-tasks/{userTaskKey}/assignee", delete(tasks::unassign));
    router = router.route("/v2/user-tasks/{userTaskKey}/completion", post(tasks::complete));
    router = router.route("/v2/incidents/{incidentKey}/resolution", post(work::resolve_incident));
    router = router.route("/v2/variables/search", post(instances::search_variables));
    router = router.route("/v2/messages/correlation", post(work::correlate));
    router = router.route("/v2/status", get(instances::status));
    router = router.route("/v2/jobs/search", post(work::search_jobs));
    router = router.route("/v2/user-tasks/{userTaskKey}/form", get(tasks::form));
    router = router.route("/v2/incidents/{incidentKey}", get(work::get_incident));
    router = router.route("/v2/element-instances/search", post(instances::search_element_instances));
    router = router.route("/v2/element-instances/{elementInstanceKey}", get(instances::get_element_instance));
    router = router.route("/v2/element-instances/{elementInstanceKey}/variables", put(instances::set_variables));
    router.route(NOT_SERVED, axum::routing::any(not_served))
}

/// Anything else under `/v2`: Camunda has it, Baton does not serve it.
async fn not_served(request: Request) -> ApiError {
    ApiError::new(
        "camunda-operation-not-served",
        format!("{} {} is part of Camunda's API that Baton does not serve; docs/camunda-compatibility.md lists what it does", request.method(), request.uri().path()),
    )
}

/// Turns every problem answered under `/v2` (by a handler, the door or the
/// role check) into Camunda's shape: `title` a rejection name, `instance`
/// the path; `type` and `code` still name Baton's error and its page.
pub async fn problems(request: Request, inner: impl AsyncFnOnce(Request) -> Response) -> Response {
    // Every request passes here: `/v1`'s go through without a copy of their path.
    if !request.uri().path().starts_with("/v2/") {
        return inner(request).await;
    }
    let path = request.uri().path().to_string();
    let response = inner(request).await;
    let is_problem = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (parts.status, "").into_response();
    };
    let mut problem: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    problem["title"] = json!(if problem["code"] == "overloaded" { "RESOURCE_EXHAUSTED" } else { rejection(parts.status) });
    problem["instance"] = json!(path);
    // The other headers stay (Retry-After among them); the length is the new body's.
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(problem.to_string()))
}

/// Camunda's name for a rejection with this status.
fn rejection(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 415 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "INVALID_STATE",
        429 => "RESOURCE_EXHAUSTED",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// The Camunda API level `/v2` follows, which the topology reports as the version.
pub(crate) const API_LEVEL: &str = "8.8.0";

/// Camunda's name for Baton's default tenant.
const DEFAULT_TENANT: &str = "<default>";

/// A tenant as Camunda's clients name it.
pub(crate) fn tenant_out(tenant: &str) -> &str {
    if tenant == store::DEFAULT_TENANT {
        DEFAULT_TENANT
    } else {
        tenant
    }
}

/// A tenant a client named, as Baton names it.
pub(crate) fn tenant_in(tenant: Option<String>) -> Option<String> {
    tenant.map(|t| if t == DEFAULT_TENANT { store::DEFAULT_TENANT.to_string() } else { t })
}

/// A search request's page: `limit` and an `after` cursor (from `endCursor`).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SearchPage {
    limit: Option<usize>,
    after: Option<String>,
    from: Option<usize>,
    before: Option<String>,
}

impl SearchPage {
    fn window(self) -> Result<Window, ApiError> {
        if self.before.is_some() {
            return Err(ApiError::new("request-invalid", "page: Baton pages forward, with from or after (the endCursor of the page before); before is not served"));
        }
        let from = self.from.unwrap_or(0);
        if from > MAX_FROM {
            return Err(ApiError::new("request-invalid", format!("page: from is at most {MAX_FROM}; page on with after (the endCursor)")));
        }
        let page = crate::routes::page_request(self.after, self.limit)?;
        Ok(Window { after: page.after, from, limit: page.limit })
    }
}

/// Largest `from`: skipping costs reading what is skipped.
const MAX_FROM: usize = 10_000;

/// Most rows one search reads to fill its page: a filter that admits few
/// items answers a short page, and its `endCursor` leads on from where it stopped.
const MAX_SCANNED: usize = 10_000;

/// Which items of a search a page holds: after the cursor, skipping `from`
/// items the filter admits, at most `limit`.
pub(crate) struct Window {
    after: Option<String>,
    from: usize,
    limit: usize,
}

/// What a search's read of one page of rows gives: each row as (its cursor, the item), and the cursor after them.
pub(crate) type Fetched = Result<(Vec<(String, Value)>, Option<String>), ApiError>;

/// Fills a page: `fetch` reads the next rows after a cursor and answers each
/// as (its cursor, the item), and the end cursor of what it read; the items
/// the filter admits fill the window. The page's `endCursor` is the cursor of
/// the last row read, `None` when the rows ran out.
pub(crate) fn gather(window: &Window, asked: &Asked, mut fetch: impl FnMut(&store::PageRequest) -> Fetched) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let mut page = store::PageRequest { after: window.after.clone(), limit: (window.from + window.limit).clamp(1, store::PageRequest::MAX_LIMIT) };
    let (mut items, mut skip, mut scanned) = (Vec::new(), window.from, 0);
    loop {
        let (rows, next) = fetch(&page)?;
        for (cursor, item) in rows {
            scanned += 1;
            if asked.admits(&item) {
                if skip > 0 {
                    skip -= 1;
                } else {
                    items.push(item);
                }
            }
            if items.len() == window.limit || scanned >= MAX_SCANNED {
                return Ok((items, Some(cursor)));
            }
        }
        match next {
            Some(next) => page.after = Some(next),
            None => return Ok((items, None)),
        }
    }
}

/// [`gather`] over store rows: `rows` reads a page of them, `render` answers
/// each (reading what else it needs), `None` leaving it out.
pub(crate) fn gather_rows<T: store::Cursor>(
    txn: &mut dyn store::ReadTxn,
    window: &Window,
    asked: &Asked,
    mut rows: impl FnMut(&mut dyn store::ReadTxn, &store::PageRequest) -> Result<store::Page<T>, ApiError>,
    mut render: impl FnMut(&mut dyn store::ReadTxn, T) -> Result<Option<Value>, ApiError>,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    gather(window, asked, |page| {
        let found = rows(txn, page)?;
        let mut items = Vec::new();
        for row in found.items {
            let cursor = row.cursor();
            if let Some(item) = render(txn, row)? {
                items.push((cursor, item));
            }
        }
        Ok((items, found.next))
    })
}

/// One row found by its key, as a page: on the first read only (a read past its cursor finds nothing).
pub(crate) fn one_row<T>(row: Option<T>, page: &store::PageRequest) -> store::Page<T> {
    store::Page { items: row.filter(|_| page.after.is_none()).into_iter().collect(), next: None }
}

/// [`gather`] over items already in memory, each with its sort key (the cursor).
pub(crate) fn gather_listed(window: &Window, asked: &Asked, mut listed: Vec<(String, Value)>) -> Result<(Vec<Value>, Option<String>), ApiError> {
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut listed = Some(listed);
    gather(window, asked, |page| {
        let rows: Vec<(String, Value)> = listed.take().unwrap_or_default().into_iter().filter(|(cursor, _)| page.after.as_ref().is_none_or(|after| cursor > after)).collect();
        Ok((rows, None))
    })
}

/// A search request's body: `filter` and `page`; `sort` is refused (Baton
/// answers in its own order, which each search names).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchRequest {
    #[serde(default)]
    filter: serde_json::Map<String, Value>,
    #[serde(default)]
    page: SearchPage,
    #[serde(default)]
    sort: Vec<Value>,
}

impl SearchRequest {
    /// The sort asked for, for a search that serves one; the rest of the request stays.
    fn take_sort(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.sort)
    }

    /// The filter and the page of a search whose items have the fields of
    /// `item` (a schema of [`schemas`]) and the store-side fields `extra`,
    /// answered in `order`. Each condition is checked here, so applying it
    /// later cannot fail.
    fn open(self, item: &Value, extra: &[&str], order: &str) -> Result<(Asked, Window), ApiError> {
        if !self.sort.is_empty() {
            return Err(ApiError::new("request-invalid", format!("sort is not served by this search: {order}")));
        }
        Ok((Asked::new(self.filter, item, extra)?, self.page.window()?))
    }
}

/// The operators of Camunda's advanced filters that Baton applies.
const OPERATORS: &[&str] = &["$eq", "$neq", "$exists", "$in", "$notIn", "$like", "$gt", "$gte", "$lt", "$lte"];

/// A search's filter, its fields and operators checked. Equality on the
/// fields the store indexes narrows the read ([`Asked::text`]); every
/// condition is then applied to each item as answered ([`Asked::admits`]),
/// so a page may hold fewer items than its limit (`endCursor` leads on).
pub(crate) struct Asked {
    conditions: serde_json::Map<String, Value>,
    /// Fields the items do not have: the store applies them (equality only).
    store_side: Vec<String>,
}

impl Asked {
    fn new(conditions: serde_json::Map<String, Value>, item: &Value, extra: &[&str]) -> Result<Asked, ApiError> {
        let fields: Vec<&str> = item["properties"].as_object().map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
        for (field, condition) in &conditions {
            let known = fields.contains(&field.as_str()) || extra.contains(&field.as_str());
            if !known {
                let mut served: Vec<&str> = fields.iter().chain(extra).copied().collect();
                served.sort_unstable();
                return Err(ApiError::new("request-invalid", format!("filter {field} is not served by Baton; it filters by {}", served.join(", "))));
            }
            if let Value::Object(operators) = condition {
                for (operator, operand) in operators {
                    let fits = match operator.as_str() {
                        "$exists" => operand.is_boolean(),
                        "$in" | "$notIn" => operand.is_array(),
                        "$like" => operand.is_string(),
                        other => OPERATORS.contains(&other),
                    };
                    if !fits {
                        return Err(ApiError::new("request-invalid", format!("filter {field}: {operator} with {operand} is not an operator Baton applies ({})", OPERATORS.join(", "))));
                    }
                }
                if extra.contains(&field.as_str()) && !(operators.len() == 1 && operators.contains_key("$eq")) {
                    return Err(ApiError::new("request-invalid", format!("filter {field}: Baton compares it for equality only (a value, or {{\"$eq\": value}})")));
                }
            }
        }
        let store_side = extra.iter().map(|f| f.to_string()).collect();
        Ok(Asked { conditions, store_side })
    }

    /// A field's value when the filter asks for equality on it (a value or `{"$eq": value}`), as text.
    fn text(&self, field: &str) -> Result<Option<String>, ApiError> {
        let wanted = match self.conditions.get(field) {
            Some(Value::Object(operators)) if operators.len() == 1 => operators.get("$eq"),
            Some(Value::Object(_)) | None => None,
            Some(value) => Some(value),
        };
        wanted.map(|value| text_of(value).ok_or_else(|| ApiError::new("request-invalid", format!("filter {field}: expected a string, got {value}")))).transpose()
    }

    /// A field that must be there, compared for equality, as text.
    fn required(&self, field: &str, why: &str) -> Result<String, ApiError> {
        self.text(field)?.ok_or_else(|| ApiError::new("request-invalid", format!("filter {field} is required, as a value: {why}")))
    }

    /// Whether an item, as answered, meets every condition on its fields.
    fn admits(&self, item: &Value) -> bool {
        self.conditions.iter().filter(|(field, _)| !self.store_side.contains(field)).all(|(field, condition)| meets(&item[field.as_str()], condition))
    }
}

/// A value as filters compare it: text, or a number's or a boolean's text.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Whether `actual` meets `condition` (a value, or an object of operators).
fn meets(actual: &Value, condition: &Value) -> bool {
    let Value::Object(operators) = condition else { return same(actual, condition) };
    operators.iter().all(|(operator, operand)| match operator.as_str() {
        "$eq" => same(actual, operand),
        "$neq" => !same(actual, operand),
        "$exists" => operand.as_bool() == Some(!actual.is_null()),
        "$in" => operand.as_array().is_some_and(|values| values.iter().any(|v| same(actual, v))),
        "$notIn" => operand.as_array().is_some_and(|values| !values.iter().any(|v| same(actual, v))),
        "$like" => operand.as_str().zip(text_of(actual)).is_some_and(|(pattern, text)| like(pattern.as_bytes(), text.as_bytes())),
        ordering => order(actual, operand).is_some_and(|o| match ordering {
            "$gt" => o.is_gt(),
            "$gte" => o.is_ge(),
            "$lt" => o.is_lt(),
            _ => o.is_le(),
        }),
    })
}

fn same(actual: &Value, wanted: &Value) -> bool {
    !actual.is_null() && text_of(actual).is_some() && text_of(actual) == text_of(wanted)
}

/// How `actual` compares with `operand`: as numbers, as instants (dates), else as text.
fn order(actual: &Value, operand: &Value) -> Option<std::cmp::Ordering> {
    if let (Some(a), Some(b)) = (actual.as_f64(), operand.as_f64()) {
        return a.partial_cmp(&b);
    }
    let (a, b) = (actual.as_str()?, operand.as_str()?);
    match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        (Ok(a), Ok(b)) => Some(a.cmp(&b)),
        _ => Some(a.cmp(b)),
    }
}

/// Camunda's `$like`: `*` any run of characters, `?` one character.
fn like(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A search answer: the page's items, and Camunda's page description.
/// `totalItems` counts this page; `hasMoreTotalItems` says whether more follow
/// (Baton counts nothing it does not read).
fn search_result(items: Vec<Value>, next: Option<String>) -> Value {
    let count = items.len();
    json!({
        "items": items,
        "page": { "totalItems": count, "hasMoreTotalItems": next.is_some(), "startCursor": null, "endCursor": next },
    })
}

/// What a filter's instance key narrows a read to: `Some(None)` without a
/// key, `Some(Some(id))` for the instance it names, `None` when it names none
/// (so nothing is found).
pub(crate) fn instance_named(txn: &mut dyn store::ReadTxn, key: Option<keys::Key>) -> Result<Option<Option<String>>, ApiError> {
    match key {
        None => Ok(Some(None)),
        Some(key) => Ok(txn.instance_id_by_number(key.number)?.map(Some)),
    }
}

/// The id of the instance a key belongs to; a key of no instance is 404.
pub(crate) async fn instance_of(state: &AppState, key: keys::Key, what: &'static str, text: &str) -> Result<String, ApiError> {
    let number = key.number;
    if let Some(id) = state.numbers.get(number) {
        return Ok(id);
    }
    let found = crate::routes::read(state, move |txn| Ok(txn.instance_id_by_number(number)?)).await?;
    let id = found.ok_or_else(|| ApiError::new(not_found_code(what), format!("no {what} has key {text}")))?;
    state.numbers.remember(number, &id);
    Ok(id)
}

fn not_found_code(what: &str) -> &'static str {
    match what {
        "job" => "job-not-found",
        "user task" => "task-not-found",
        "incident" => "incident-not-found",
        _ => "instance-not-found",
    }
}

/// Baton's key of the object a Camunda key names (`<instance id>.<local>`).
pub(crate) async fn baton_key(state: &AppState, what: &'static str, text: &str) -> Result<String, ApiError> {
    let key = keys::Key::parse(&format!("{what} key"), text)?;
    if key.local == 0 {
        return Err(ApiError::new(not_found_code(what), format!("no {what} has key {text}")));
    }
    Ok(key.baton(&instance_of(state, key, what, text).await?))
}

/// A JSON body that may be left out (Camunda's clients send none where every member is optional).
pub struct OrDefault<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> axum::extract::FromRequest<S> for OrDefault<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let headers = request.headers();
        let empty = headers.get(header::CONTENT_TYPE).is_none() && headers.get(header::CONTENT_LENGTH).is_none_or(|length| length.as_bytes() == b"0");
        if empty {
            return Ok(OrDefault(T::default()));
        }
        let crate::extract::Body(value) = crate::extract::Body::<T>::from_request(request, state).await?;
        Ok(OrDefault(value))
    }
}

/// 204, as Camunda answers a change.
fn no_content() -> Result<Response, ApiError> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_stars_and_question_marks_without_backtracking_blowup() {
        for (pattern, text, expected) in [("sh*", "shop", true), ("*op", "shop", true), ("s?op", "shop", true), ("s?p", "shop", false), ("*", "", true), ("a*b*c", "aXbYc", true), ("a*b*c", "aXbY", false)] {
            assert_eq!(like(pattern.as_bytes(), text.as_bytes()), expected, "{pattern} ~ {text}");
        }
        // A hostile pattern stays linear-ish: this would take ages with naive recursion.
        let text = "a".repeat(10_000);
        assert!(!like(format!("{}b", "*a".repeat(50)).as_bytes(), text.as_bytes()));
    }

    #[test]
    fn conditions_compare_numbers_instants_and_text() {
        let meets_json = |actual: Value, condition: Value| meets(&actual, &condition);
        assert!(meets_json(json!(3), json!({"$gt": 2, "$lte": 3})));
        assert!(meets_json(json!("2026-12-01T10:00:00.000Z"), json!({"$gte": "2026-12-01T11:00:00+01:00"})), "instants, not text");
        assert!(meets_json(json!("ACTIVE"), json!({"$in": ["ACTIVE", "COMPLETED"], "$neq": "TERMINATED"})));
        assert!(meets_json(json!(null), json!({"$exists": false})));
        assert!(!meets_json(json!(null), json!("x")), "null equals nothing");
        assert!(meets_json(json!(1), json!("1")), "a number and its text are the same key");
    }
}
