//! What every request and response of the API looks like, as JSON Schema
//! (2020-12, as OpenAPI 3.1 uses it). Responses list every member they carry
//! as required and allow no others, so a test that validates real answers
//! (`tests/api.rs`) fails as soon as a handler and its schema drift apart.

use serde_json::{json, Map, Value};

use crate::ERRORS;

/// The schemas of one operation.
pub struct Operation {
    /// Query parameters: name and schema.
    pub query: Vec<(&'static str, Value)>,
    /// The JSON body (`{}` when a write takes nothing).
    pub body: Option<Value>,
    /// The status of success, and the content type and schema of its body (none for 204).
    pub success: (u16, Option<(&'static str, Value)>),
}

pub(crate) fn string() -> Value {
    json!({ "type": "string" })
}

pub(crate) fn text(min: usize) -> Value {
    json!({ "type": "string", "minLength": min })
}

pub(crate) fn integer(min: i64) -> Value {
    json!({ "type": "integer", "minimum": min })
}

fn between(min: i64, max: i64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

pub(crate) fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

pub(crate) fn one_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

pub(crate) fn list(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

pub(crate) fn map_of(values: Value) -> Value {
    json!({ "type": "object", "additionalProperties": values })
}

pub(crate) fn any_object() -> Value {
    json!({ "type": "object" })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema`, or null.
pub(crate) fn or_null(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

/// An answer: every member present (null when it has no value), no others.
pub(crate) fn answer(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| (name.to_string(), schema.clone()))
        .collect();
    json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
}

/// A request body: the `required` members must be there; unknown members are refused.
pub(crate) fn request(required: &[&str], properties: &[(&str, Value)]) -> Value {
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| (name.to_string(), schema.clone()))
        .collect();
    json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
}

fn page_of(item: &str) -> Value {
    answer(&[
        ("items", list(reference(item))),
        ("next", or_null(string())),
    ])
}

/// The lease token activation returned, proving the worker holds the job.
fn lease() -> (&'static str, Value) {
    ("lease", or_null(string()))
}

/// What a job decided besides its variables (Camunda 8's job result, its
/// field names): an ad-hoc subprocess's job, or a user task listener's.
pub(crate) fn job_result() -> Value {
    let text_list = or_null(list(string()));
    request(
        &[],
        &[
            ("type", one_of(&["adHocSubProcess", "userTask"])),
            ("activateElements", list(request(&["elementId"], &[("elementId", string()), ("variables", any_object())]))),
            ("isCompletionConditionFulfilled", boolean()),
            ("isCancelRemainingInstances", boolean()),
            ("denied", boolean()),
            ("deniedReason", or_null(string())),
            (
                "corrections",
                or_null(request(
                    &[],
                    &[
                        ("assignee", or_null(string())),
                        ("dueDate", or_null(string())),
                        ("followUpDate", or_null(string())),
                        ("candidateUsers", text_list.clone()),
                        ("candidateGroups", text_list),
                        ("priority", or_null(json!({"type": "integer"}))),
                    ],
                )),
            ),
        ],
    )
}

fn retries() -> Value {
    between(0, u32::MAX.into())
}

/// Labels: at most 32, names of 1 to 256 characters, values of at most 256 (`value` says what a value may be).
fn labels(value: Value) -> Value {
    json!({
        "type": "object",
        "maxProperties": engine::MAX_LABELS,
        "propertyNames": { "minLength": 1, "maxLength": engine::MAX_LABEL_CHARS },
        "additionalProperties": value
    })
}

/// What `access::check_tenant` takes as a tenant's name.
const TENANT_NAME: &str = "[A-Za-z0-9._-]{1,64}";

/// A tenant's name.
fn tenant() -> Value {
    json!({ "type": "string", "pattern": format!("^{TENANT_NAME}$") })
}

/// The `tenant` query parameter of a list: only that tenant (one the caller reaches).
fn tenant_query() -> (&'static str, Value) {
    ("tenant", tenant())
}

fn reason() -> (&'static str, Value) {
    ("reason", or_null(string()))
}

/// `after` (the `next` cursor of the page before, of the form `pattern`) and `limit`.
fn paging_by(pattern: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "after",
            json!({ "type": "string", "pattern": pattern, "description": "the `next` of the page before" }),
        ),
        (
            "limit",
            json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
        ),
    ]
}

/// Paging of lists ordered by a time and a key: cursors are `<time>:<key>`.
fn paging() -> Vec<(&'static str, Value)> {
    paging_by("^(-?[0-9]+:.+)?$")
}

const STATUSES: &[&str] = &["running", "suspended", "completed", "cancelled", "failed"];
const WAITING: &[&str] = &["job", "user_task", "timer", "message", "signal", "condition", "call"];
const HISTORY_EVENTS: &[&str] = &[
    "activated",
    "completed",
    "terminated",
    "incident_raised",
    "incident_resolved",
    "job_failed",
    "variables_set",
    "labels_set",
    "cancelled",
    "suspended",
    "resumed",
    "modified",
    "retries_set",
    "timer_rescheduled",
    "rerun",
    "listener_completed",
    "job_completed",
];

fn instance_members() -> Vec<(&'static str, Value)> {
    let element_at = || {
        or_null(answer(&[
            ("element", string()),
            ("element_name", or_null(string())),
            ("at", time()),
        ]))
    };
    vec![
        ("id", string()),
        ("workflow", string()),
        ("tenant", tenant()),
        ("version", integer(1)),
        ("status", one_of(STATUSES)),
        ("business_key", or_null(string())),
        ("labels", map_of(string())),
        ("parent_id", or_null(string())),
        ("parent_element", or_null(string())),
        ("root_id", string()),
        ("run", integer(1)),
        ("created_at", time()),
        ("created_by", or_null(string())),
        ("updated_at", time()),
        ("updated_by", or_null(string())),
        ("started_at", time()),
        ("ended_at", or_null(time())),
        ("incidents", integer(0)),
        ("descendant_incidents", integer(0)),
        ("waiting", list(one_of(WAITING))),
        ("update_count", integer(0)),
        ("end", element_at()),
        ("cancel_reason", or_null(string())),
        (
            "error",
            or_null(answer(&[
                ("code", string()),
                ("message", or_null(string())),
                ("element", string()),
            ])),
        ),
        ("last_send_task", element_at()),
        ("next_due_at", or_null(time())),
    ]
}

fn armed_event() -> Value {
    answer(&[
        ("element", string()),
        ("element_name", or_null(string())),
        ("kind", one_of(&["timer", "message", "signal", "condition"])),
        ("timer", or_null(string())),
        ("due_at", or_null(time())),
        (
            "repetitions_left",
            json!({ "anyOf": [integer(0), { "const": "unbounded" }, { "type": "null" }] }),
        ),
        (
            "message",
            or_null(answer(&[
                ("name", string()),
                ("correlation_key", or_null(string())),
            ])),
        ),
        ("signal", or_null(answer(&[("name", string())]))),
        ("condition", or_null(string())),
    ])
}

fn wait() -> Value {
    let mut schema = answer(&[
        ("element", string()),
        ("element_name", or_null(string())),
        (
            "kind",
            one_of(&[
                "job",
                "user_task",
                "timer",
                "message",
                "signal",
                "condition",
                "call",
                "gateway",
            ]),
        ),
        ("since", time()),
        ("loop_counter", integer(1)),
        (
            "job",
            or_null(answer(&[
                ("key", string()),
                ("type", string()),
                ("retries", integer(0)),
                ("worker", or_null(string())),
                ("lease_until", or_null(time())),
            ])),
        ),
        (
            "task",
            or_null(answer(&[
                ("key", string()),
                ("assignee", or_null(string())),
                ("candidate_groups", list(string())),
                ("due", or_null(string())),
            ])),
        ),
        ("child", or_null(answer(&[("instance_id", string())]))),
        ("events", list(reference("ArmedEvent"))),
        ("boundary", list(reference("ArmedEvent"))),
    ]);
    // A token waiting on a catch event of its own carries that event's members too.
    let armed = armed_event();
    for member in ["timer", "due_at", "repetitions_left", "message", "signal", "condition"] {
        schema["properties"][member] = armed["properties"][member].clone();
    }
    schema
}

fn decision_members(with_xml: bool) -> Vec<(&'static str, Value)> {
    let mut members = vec![
        ("decision_id", string()),
        ("tenant", tenant()),
        ("version", integer(1)),
        ("name", string()),
        ("definitions_id", string()),
        ("deployment", integer(1)),
        ("resource", string()),
        ("deployed_at", time()),
    ];
    if with_xml {
        members.push(("xml", string()));
    }
    members
}

fn form_members(with_schema: bool) -> Vec<(&'static str, Value)> {
    let mut members = vec![
        ("form_id", string()),
        ("tenant", tenant()),
        ("version", integer(1)),
        ("version_tag", or_null(string())),
        ("deployment", integer(1)),
        ("resource", string()),
        ("deployed_at", time()),
    ];
    if with_schema {
        members.push(("schema", any_object()));
    }
    members
}

fn job_members() -> Vec<(&'static str, Value)> {
    vec![
        ("key", string()),
        ("tenant", tenant()),
        ("type", string()),
        ("instance_id", string()),
        ("workflow", string()),
        ("element_id", string()),
        ("retries", integer(0)),
        ("state", one_of(&["activatable", "failed"])),
        ("worker", or_null(string())),
        ("lease_until", or_null(time())),
        ("not_before", or_null(time())),
        ("error_message", or_null(string())),
        ("created_at", time()),
    ]
}

fn token_members() -> Vec<(&'static str, Value)> {
    vec![
        ("id", string()),
        ("name", string()),
        ("roles", list(string())),
        ("job_types", or_null(list(string()))),
        ("workflows", or_null(list(string()))),
        ("groups", list(string())),
        ("tenants", list(string())),
        ("hide_variables", boolean()),
        ("created_at", time()),
        ("expires_at", or_null(time())),
        ("revoked_at", or_null(time())),
    ]
}

fn workflow_members() -> Vec<(&'static str, Value)> {
    vec![
        ("workflow", string()),
        ("tenant", tenant()),
        ("version", integer(1)),
        ("name", or_null(string())),
        ("version_tag", or_null(string())),
        ("deployed_at", time()),
    ]
}

/// The shared schemas the operations refer to.
pub fn components() -> Value {
    let mut instance_detail = instance_members();
    instance_detail.extend([
        ("input", any_object()),
        ("variables", any_object()),
        ("tokens", list(string())),
        ("error_code", or_null(string())),
        ("waits", list(reference("Wait"))),
        ("delete_at", or_null(time())),
    ]);
    let mut activated = job_members();
    activated.extend([
        ("variables", any_object()),
        ("headers", map_of(string())),
        ("properties", map_of(string())),
        ("listener", or_null(one_of(&["start", "end", "creating", "assigning", "updating", "completing"]))),
        ("lease", string()),
    ]);
    let mut workflow_detail = workflow_members();
    workflow_detail.push(("xml", string()));
    let problem = json!({
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": string(),
            "title": string(),
            "status": integer(400),
            "code": one_of(&ERRORS.iter().map(|(code, _, _)| *code).collect::<Vec<_>>()),
            "detail": string(),
            "diagnostics": list(reference("Diagnostic")),
            // Under /v2, Camunda's member: the path the problem is about.
            "instance": string(),
        },
        "additionalProperties": false
    });
    json!({
        "Problem": problem,
        "Diagnostic": answer(&[
            ("severity", one_of(&["error", "warning"])),
            ("code", string()),
            ("element", or_null(string())),
            ("line", integer(0)),
            ("column", integer(0)),
            ("message", string()),
            ("resource", string()),
        ]),
        "Workflow": answer(&workflow_members()),
        "Token": answer(&token_members()),
        "WorkflowDetail": answer(&workflow_detail),
        "Instance": answer(&instance_members()),
        "InstanceDetail": answer(&instance_detail),
        "Wait": wait(),
        "ArmedEvent": armed_event(),
        "HistoryEntry": answer(&[
            ("seq", integer(1)),
            ("at", time()),
            ("event", one_of(HISTORY_EVENTS)),
            ("element", string()),
            ("element_name", or_null(string())),
            ("element_type", string()),
            ("element_instance", integer(0)),
            ("state", or_null(one_of(&["activated", "completed", "terminated"]))),
            ("started_at", or_null(time())),
            ("ended_at", or_null(time())),
            ("loop_counter", integer(1)),
            ("iteration", integer(1)),
            ("run", integer(1)),
            ("actor", or_null(string())),
            ("reason", or_null(string())),
            ("job", or_null(answer(&[("key", string()), ("type", string()), ("attempt", integer(1))]))),
            ("task", or_null(answer(&[("key", string()), ("completed_by", or_null(string()))]))),
            ("incident", or_null(answer(&[("key", string()), ("kind", string())]))),
            ("variables", or_null(any_object())),
            ("names", list(string())),
            ("message", or_null(string())),
            ("retries", or_null(integer(0))),
            ("due_at", or_null(time())),
            (
                "decision",
                or_null(answer(&[
                    ("decision_id", string()),
                    ("version", integer(1)),
                    ("matched", list(answer(&[("decision", string()), ("rules", list(integer(1)))]))),
                ])),
            ),
        ]),
        "Job": answer(&job_members()),
        "ActivatedJob": answer(&activated),
        "Task": answer(&[
            ("key", string()),
            ("tenant", tenant()),
            ("instance_id", string()),
            ("workflow", string()),
            ("element_id", string()),
            ("assignee", or_null(string())),
            ("candidate_groups", list(string())),
            ("candidate_users", list(string())),
            ("due", or_null(string())),
            ("follow_up", or_null(string())),
            ("priority", or_null(json!({ "type": "integer" }))),
            ("form_key", or_null(string())),
            ("created_at", time()),
            ("state", one_of(&["open", "completed"])),
            ("completed_at", or_null(time())),
            ("completed_by", or_null(string())),
            ("properties", map_of(string())),
        ]),
        "Decision": answer(&decision_members(false)),
        "DecisionDetail": answer(&decision_members(true)),
        "DecisionEvaluation": answer(&[
            ("decision_id", string()),
            ("version", integer(1)),
            ("matched", list(answer(&[("decision", string()), ("rules", list(integer(1)))]))),
            ("tenant", tenant()),
            ("result", json!({})),
        ]),
        "Form": answer(&form_members(false)),
        "FormDetail": answer(&form_members(true)),
        "TaskForm": answer(&[
            ("source", one_of(&["embedded", "deployed", "generated", "external", "none"])),
            ("form_id", or_null(string())),
            ("version", or_null(integer(1))),
            ("reference", or_null(string())),
            ("schema", or_null(any_object())),
            ("variables", any_object()),
        ]),
        "Incident": answer(&[
            ("key", string()),
            ("tenant", tenant()),
            ("instance_id", string()),
            ("workflow", string()),
            ("element_id", string()),
            ("kind", string()),
            ("message", string()),
            ("created_at", time()),
            ("state", one_of(&["open", "resolved"])),
            ("resolved_at", or_null(time())),
            ("resolved_by", or_null(string())),
        ]),
        "Timer": answer(&[
            ("key", or_null(string())),
            ("tenant", tenant()),
            ("instance_id", or_null(string())),
            ("workflow", or_null(string())),
            ("version", or_null(integer(1))),
            ("element", string()),
            ("element_name", or_null(string())),
            ("kind", or_null(one_of(&["intermediate", "boundary", "event_subprocess", "start"]))),
            ("due_at", time()),
            ("repetitions_left", json!({ "anyOf": [integer(0), { "const": "unbounded" }, { "type": "null" }] })),
        ]),
        "Message": answer(&[
            ("seq", integer(0)),
            ("tenant", tenant()),
            ("name", string()),
            ("correlation_key", string()),
            ("message_id", or_null(string())),
            ("variables", any_object()),
            ("published_at", time()),
            ("expires_at", time()),
            ("ttl_left_ms", integer(0)),
            ("correlated_to", list(string())),
            ("undelivered_because", or_null(string())),
        ]),
        "Subscription": answer(&[
            ("instance_id", string()),
            ("tenant", tenant()),
            ("element", string()),
            ("kind", one_of(&["message", "signal"])),
            ("name", string()),
            ("correlation_key", or_null(string())),
            ("opened_at", time()),
        ]),
    })
}

pub(crate) fn json_answer(schema: Value) -> Option<(&'static str, Value)> {
    Some(("application/json", schema))
}

/// The schemas of the operation at `method` `path` (a path of [`crate::ROUTES`]).
pub fn operation(method: &str, path: &str) -> Option<Operation> {
    let none = |status: u16| (status, None);
    let done = none(204);
    let ok = |schema: Value| (200, json_answer(schema));
    let plain = (200, Some(("text/plain", string())));
    let op = |query: Vec<(&'static str, Value)>, body: Option<Value>, success| Operation {
        query,
        body,
        success,
    };
    let reason_only = || Some(request(&[], &[reason()]));
    let variables = || ("variables", any_object());
    Some(match (method, path) {
        ("post", "/v1/workflows") => op(
            vec![],
            Some(request(
                &["resources"],
                &[
                    (
                        "resources",
                        json!({ "type": "array", "minItems": 1, "items": request(&["name", "xml"], &[("name", text(1)), ("xml", string())]) }),
                    ),
                    ("tenant", or_null(tenant())),
                ],
            )),
            (
                201,
                json_answer(answer(&[
                    (
                        "workflows",
                        list(answer(&[
                            ("workflow", string()),
                            ("tenant", tenant()),
                            ("version", integer(1)),
                            ("created", boolean()),
                        ])),
                    ),
                    (
                        "decisions",
                        list(answer(&[
                            ("decision_id", string()),
                            ("tenant", tenant()),
                            ("version", integer(1)),
                            ("created", boolean()),
                        ])),
                    ),
                    (
                        "forms",
                        list(answer(&[
                            ("form_id", string()),
                            ("tenant", tenant()),
                            ("version", integer(1)),
                            ("created", boolean()),
                        ])),
                    ),
                    ("diagnostics", list(reference("Diagnostic"))),
                ])),
            ),
        ),
        ("get", "/v1/instances/counts") => op(
            vec![tenant_query(), ("workflow", string()), ("version", between(1, u32::MAX.into()))],
            None,
            ok(answer(&[
                ("total", integer(0)),
                ("by_status", answer(&STATUSES.iter().map(|s| (*s, integer(0))).collect::<Vec<_>>())),
                ("with_incidents", integer(0)),
                (
                    "items",
                    list(answer(&[
                        ("tenant", tenant()),
                        ("workflow", string()),
                        ("version", integer(1)),
                        ("status", one_of(STATUSES)),
                        ("with_incidents", boolean()),
                        ("count", integer(1)),
                    ])),
                ),
            ])),
        ),
        ("get", "/v1/decisions") => {
            let mut query = vec![tenant_query(), ("decision_id", string())];
            query.extend(paging_by("^(.+/.+/[0-9]{10})?$"));
            op(query, None, ok(page_of("Decision")))
        }
        ("get", "/v1/decisions/{decision_id}") => op(
            vec![tenant_query(), ("version", between(1, u32::MAX.into()))],
            None,
            ok(reference("DecisionDetail")),
        ),
        ("post", "/v1/decisions/{decision_id}/evaluate") => op(
            vec![],
            Some(request(&[], &[variables(), ("version", or_null(between(1, u32::MAX.into()))), ("tenant", or_null(tenant()))])),
            ok(reference("DecisionEvaluation")),
        ),
        ("get", "/v1/forms") => {
            let mut query = vec![tenant_query(), ("form_id", string())];
            query.extend(paging_by("^(.+/.+/[0-9]{10})?$"));
            op(query, None, ok(page_of("Form")))
        }
        ("get", "/v1/forms/{form_id}") => op(
            vec![tenant_query(), ("version", between(1, u32::MAX.into()))],
            None,
            ok(reference("FormDetail")),
        ),
        ("get", "/v1/workflows") => {
            let mut query = vec![tenant_query()];
            query.extend(paging_by("^(.+/.+/[0-9]{10})?$"));
            op(query, None, ok(page_of("Workflow")))
        }
        ("get", "/v1/workflows/{key}") | ("get", "/v1/workflows/{key}/versions/{version}") => {
            op(vec![tenant_query()], None, ok(reference("WorkflowDetail")))
        }
        ("post", "/v1/instances") => op(
            vec![],
            Some(request(
                &["workflow"],
                &[
                    ("workflow", text(1)),
                    ("version", or_null(between(1, u32::MAX.into()))),
                    variables(),
                    ("business_key", or_null(string())),
                    ("request_id", or_null(string())),
                    (
                        "labels",
                        labels(json!({ "type": "string", "maxLength": engine::MAX_LABEL_CHARS })),
                    ),
                    ("tenant", or_null(tenant())),
                ],
            )),
            (201, json_answer(answer(&[("id", string())]))),
        ),
        ("get", "/v1/instances") => {
            let mut query = vec![
                tenant_query(),
                ("status", one_of(STATUSES)),
                ("workflow", string()),
                ("version", between(1, u32::MAX.into())),
                ("business_key", string()),
                ("waiting", one_of(WAITING)),
                ("has_incidents", boolean()),
                ("started_after", time()),
                ("started_before", time()),
                ("ended_after", time()),
                ("ended_before", time()),
                (
                    "variable",
                    json!({ "type": "string", "pattern": "^[^=]+=.*$", "description": "name=json" }),
                ),
                ("parent_id", string()),
                (
                    "label",
                    json!({ "type": "string", "pattern": "^[^=]+=.*$", "description": "name=value" }),
                ),
                ("root_id", string()),
                ("order", one_of(&["started", "-started", "workflow", "-workflow", "status", "-status"])),
            ];
            query.extend(paging());
            op(query, None, ok(page_of("Instance")))
        }
        ("get", "/v1/instances/{id}") => op(vec![], None, ok(reference("InstanceDetail"))),
        ("get", "/v1/instances/{id}/history") => {
            let mut query = vec![
                ("element", string()),
                ("element_type", string()),
                ("event", one_of(HISTORY_EVENTS)),
                (
                    "run",
                    json!({ "type": "string", "pattern": "^([0-9]+|current)$" }),
                ),
            ];
            query.extend(paging_by("^[0-9]*$"));
            op(query, None, ok(page_of("HistoryEntry")))
        }
        (
            "post",
            "/v1/instances/{id}/cancel"
            | "/v1/instances/{id}/delete"
            | "/v1/instances/{id}/suspend"
            | "/v1/instances/{id}/resume",
        ) => op(vec![], reason_only(), done),
        ("post", "/v1/instances/{id}/variables") => op(
            vec![],
            Some(request(&["variables"], &[variables(), reason()])),
            done,
        ),
        ("post", "/v1/instances/{id}/labels") => {
            let mut changes = labels(or_null(
                json!({ "type": "string", "maxLength": engine::MAX_LABEL_CHARS }),
            ));
            changes["minProperties"] = json!(1);
            op(
                vec![],
                Some(request(&["labels"], &[("labels", changes), reason()])),
                done,
            )
        }
        ("post", "/v1/instances/{id}/modify") => {
            let mut body = request(
                &[],
                &[
                    ("activate", list(string())),
                    ("terminate", list(string())),
                    reason(),
                ],
            );
            // At least one element to activate or to terminate.
            body["anyOf"] = json!([
                { "required": ["activate"], "properties": { "activate": { "minItems": 1 } } },
                { "required": ["terminate"], "properties": { "terminate": { "minItems": 1 } } }
            ]);
            op(vec![], Some(body), done)
        }
        ("post", "/v1/instances/{id}/rerun") => op(
            vec![],
            Some(request(&[], &[("from", or_null(string())), reason()])),
            done,
        ),
        ("post", "/v1/jobs/activate") => op(
            vec![],
            Some(request(
                &["type", "worker"],
                &[
                    ("type", text(1)),
                    ("worker", text(1)),
                    ("max_jobs", between(1, 1000)),
                    ("lease_ms", between(1, crate::routes::MAX_LEASE_MS)),
                    ("timeout_ms", between(0, crate::routes::MAX_POLL_MS as i64)),
                    (
                        "tenants",
                        or_null(json!({ "type": "array", "minItems": 1, "items": tenant() })),
                    ),
                ],
            )),
            ok(answer(&[("jobs", list(reference("ActivatedJob")))])),
        ),
        ("post", "/v1/jobs/stream") => op(
            vec![],
            Some(request(
                &["type", "worker", "window"],
                &[
                    ("type", text(1)),
                    ("worker", text(1)),
                    ("window", between(1, crate::jobs::MAX_BATCH as i64)),
                    ("lease_ms", between(1, crate::routes::MAX_LEASE_MS)),
                    ("limit", or_null(between(1, i64::MAX))),
                    ("tenants", or_null(json!({ "type": "array", "minItems": 1, "items": tenant() }))),
                ],
            )),
            // The schema is each line's: a job, or a last `{"problem": ...}` that ends a failed stream; an empty line is a heartbeat.
            (
                200,
                Some((
                    "application/x-ndjson",
                    json!({
                        "description": "Each line: an ActivatedJob; or, last, the problem that ended the stream. An empty line is a heartbeat.",
                        "oneOf": [reference("ActivatedJob"), answer(&[("problem", reference("Problem"))])]
                    }),
                )),
            ),
        ),
        ("post", "/v1/jobs/report") => {
            let outcome = |required: &[&str], members: &[(&str, Value)]| or_null(request(required, members));
            let entry = request(
                &["key"],
                &[
                    ("key", text(1)),
                    lease(),
                    ("complete", outcome(&[], &[variables(), ("result", or_null(job_result()))])),
                    ("fail", outcome(&["retries"], &[("retries", retries()), ("message", string()), ("backoff_ms", between(0, crate::routes::MAX_WAIT_MS)), variables()])),
                    ("error", outcome(&["code"], &[("code", text(1)), ("message", string()), variables()])),
                ],
            );
            let body = request(&["worker", "jobs"], &[("worker", text(1)), ("jobs", json!({ "type": "array", "minItems": 1, "maxItems": crate::jobs::MAX_BATCH, "items": entry }))]);
            let result = json!({
                "type": "object",
                "required": ["key", "ok"],
                "properties": { "key": string(), "ok": boolean(), "problem": reference("Problem") },
                "additionalProperties": false
            });
            op(vec![], Some(body), ok(answer(&[("jobs", list(result))])))
        }
        ("get", "/v1/jobs") => {
            let mut query = vec![
                tenant_query(),
                ("type", string()),
                ("instance_id", string()),
                ("state", one_of(&["activatable", "failed"])),
            ];
            query.extend(paging());
            op(query, None, ok(page_of("Job")))
        }
        ("post", "/v1/jobs/{key}/complete") => op(
            vec![],
            Some(request(
                &[],
                &[
                    ("worker", or_null(string())),
                    lease(),
                    ("override", boolean()),
                    reason(),
                    variables(),
                    ("result", or_null(job_result())),
                ],
            )),
            done,
        ),
        ("post", "/v1/jobs/{key}/fail") => op(
            vec![],
            Some(request(
                &["retries"],
                &[
                    ("worker", or_null(string())),
                    lease(),
                    ("override", boolean()),
                    reason(),
                    ("retries", retries()),
                    ("message", string()),
                    ("backoff_ms", between(0, crate::routes::MAX_WAIT_MS)),
                    variables(),
                ],
            )),
            done,
        ),
        ("post", "/v1/jobs/{key}/error") => op(
            vec![],
            Some(request(
                &["code"],
                &[
                    ("worker", or_null(string())),
                    lease(),
                    ("override", boolean()),
                    reason(),
                    ("code", text(1)),
                    ("message", string()),
                    variables(),
                ],
            )),
            done,
        ),
        ("post", "/v1/jobs/{key}/retries") => op(
            vec![],
            Some(request(&["retries"], &[("retries", retries()), reason()])),
            done,
        ),
        ("get", "/v1/tasks") => {
            let mut query = vec![
                tenant_query(),
                ("assignee", string()),
                ("candidate_group", string()),
                ("workflow", string()),
                ("instance_id", string()),
                ("state", one_of(&["open", "completed", "all"])),
                ("completed_by", string()),
            ];
            query.extend(paging());
            op(query, None, ok(page_of("Task")))
        }
        ("get", "/v1/tasks/{key}") => op(vec![], None, ok(reference("Task"))),
        ("get", "/v1/tasks/{key}/form") => op(vec![], None, ok(reference("TaskForm"))),
        ("post", "/v1/tasks/{key}/claim" | "/v1/tasks/{key}/assign") => op(
            vec![],
            Some(request(&["assignee"], &[("assignee", text(1))])),
            done,
        ),
        ("post", "/v1/tasks/{key}/unclaim") => op(vec![], Some(request(&[], &[])), done),
        ("post", "/v1/tasks/{key}/update") => op(
            vec![],
            Some(request(
                &[],
                &[
                    ("due", or_null(string())),
                    ("follow_up", or_null(string())),
                    ("priority", or_null(json!({"type": "integer"}))),
                    ("candidate_groups", or_null(list(string()))),
                    ("candidate_users", or_null(list(string()))),
                ],
            )),
            done,
        ),
        ("post", "/v1/tasks/{key}/complete") => {
            op(vec![], Some(request(&[], &[variables()])), done)
        }
        ("post", "/v1/messages") => op(
            vec![],
            Some(request(
                &["name"],
                &[
                    ("name", text(1)),
                    ("correlation_key", string()),
                    variables(),
                    ("ttl_ms", between(0, crate::routes::MAX_WAIT_MS)),
                    ("message_id", or_null(string())),
                    ("tenant", or_null(tenant())),
                ],
            )),
            (201, json_answer(answer(&[("seq", integer(0))]))),
        ),
        ("get", "/v1/messages") => {
            let mut query = vec![
                tenant_query(),
                ("state", one_of(&["buffered", "undelivered"])),
                ("name", string()),
            ];
            query.extend(paging());
            op(query, None, ok(page_of("Message")))
        }
        ("post", "/v1/signals") => op(
            vec![],
            Some(request(
                &["name"],
                &[
                    ("name", text(1)),
                    variables(),
                    ("tenant", or_null(tenant())),
                ],
            )),
            done,
        ),
        ("post", "/v1/conditionals/evaluate") => op(
            vec![],
            Some(request(&[], &[variables(), ("workflow", or_null(text(1))), ("tenant", or_null(tenant()))])),
            ok(answer(&[(
                "instances",
                list(answer(&[("id", string()), ("workflow", string()), ("version", integer(1)), ("start_event", string())])),
            )])),
        ),
        ("get", "/v1/subscriptions") => {
            let mut query = vec![
                tenant_query(),
                ("instance_id", string()),
                ("kind", one_of(&["message", "signal"])),
                ("name", string()),
            ];
            query.extend(paging());
            op(query, None, ok(page_of("Subscription")))
        }
        ("get", "/v1/timers") => {
            let mut query = vec![
                tenant_query(),
                ("instance_id", string()),
                ("due_before", time()),
            ];
            query.extend(paging());
            op(query, None, ok(page_of("Timer")))
        }
        ("post", "/v1/instances/{id}/keep") => op(vec![], Some(request(&["until"], &[("until", or_null(time())), reason()])), done),
        ("post", "/v1/timers/{key}/reschedule") => op(
            vec![],
            Some(request(&["due_at"], &[("due_at", time()), reason()])),
            done,
        ),
        ("get", "/v1/incidents") => {
            let mut query = vec![
                tenant_query(),
                ("state", one_of(&["open", "resolved", "all"])),
                ("instance_id", string()),
                ("descendants", boolean()),
                ("workflow", string()),
            ];
            query.extend(paging());
            op(query, None, ok(page_of("Incident")))
        }
        ("post", "/v1/incidents/{key}/resolve") => op(vec![], reason_only(), done),
        ("post", "/v1/tokens") => {
            let mut created = token_members();
            created.push((
                "token",
                json!({ "type": "string", "pattern": "^baton_[0-9a-f]{64}$" }),
            ));
            op(
                vec![],
                Some(request(
                    &["name", "roles"],
                    &[
                        (
                            "name",
                            json!({ "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]*[!-~][ -~]*$" }),
                        ),
                        (
                            "roles",
                            json!({ "type": "array", "minItems": 1, "items": one_of(&crate::access::Role::ALL.map(crate::access::Role::as_str)) }),
                        ),
                        ("job_types", or_null(list(string()))),
                        ("workflows", or_null(list(string()))),
                        ("groups", list(string())),
                        (
                            "tenants",
                            list(
                                json!({ "type": "string", "pattern": format!("^({TENANT_NAME}|\\*)$") }),
                            ),
                        ),
                        ("hide_variables", boolean()),
                        ("expires_at", or_null(time())),
                    ],
                )),
                (201, json_answer(answer(&created))),
            )
        }
        ("get", "/v1/tokens") => op(vec![], None, ok(page_of("Token"))),
        ("get", "/v1/sign-in") => op(
            vec![],
            None,
            ok(answer(&[
                ("method", one_of(&["none", "token", "oidc"])),
                (
                    "oidc",
                    or_null(answer(&[
                        ("issuer", string()),
                        ("client_id", or_null(string())),
                        ("scopes", or_null(string())),
                        ("authorization_endpoint", or_null(string())),
                        ("token_endpoint", or_null(string())),
                    ])),
                ),
            ])),
        ),
        ("get", "/v1/me") => op(
            vec![],
            None,
            ok(answer(&[
                ("authenticated", boolean()),
                ("name", or_null(string())),
                ("roles", list(one_of(&crate::access::Role::ALL.map(crate::access::Role::as_str)))),
                ("tenants", or_null(list(tenant()))),
                ("groups", list(string())),
                ("job_types", or_null(list(string()))),
                ("workflows", or_null(list(string()))),
                ("hide_variables", boolean()),
                ("may", list(json!({ "type": "string", "pattern": "^(get|post) /" }))),
            ])),
        ),
        ("post", "/v1/tokens/{id}/revoke") => op(vec![], Some(request(&[], &[])), done),
        ("get", "/v1/openapi.json") => op(vec![], None, ok(any_object())),
        ("get", "/healthz" | "/readyz" | "/metrics") => op(vec![], None, plain),
        ("get", "/v1/backup") => op(vec![], None, (200, Some(("application/vnd.sqlite3", json!({ "type": "string", "format": "binary" }))))),
        _ => return None,
    })
}
