//! The JSON Schema of each `/v2` request and answer, written from what the
//! handlers take and give (and checked against every exchange in the API's
//! tests, as `/v1`'s are). Field names are Camunda's; the schemas are Baton's.

use serde_json::{json, Value};

use super::tasks::SERVED_ACTIONS;
use crate::schemas::{any_object, answer, boolean, integer, json_answer, list, map_of, one_of, or_null, request, string, text, Operation};

fn key() -> Value {
    json!({ "type": "string", "pattern": "^[1-9][0-9]{0,18}$" })
}

fn page_request() -> Value {
    request(&[], &[("limit", integer(1)), ("after", string()), ("from", integer(0)), ("before", string())])
}

fn search_request() -> Value {
    request(&[], &[("filter", any_object()), ("page", page_request()), ("sort", list(any_object()))])
}

fn search_answer(item: Value) -> Value {
    answer(&[
        ("items", list(item)),
        ("page", answer(&[("totalItems", integer(0)), ("hasMoreTotalItems", boolean()), ("startCursor", or_null(string())), ("endCursor", or_null(string()))])),
    ])
}

fn date() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

pub(crate) fn process_instance() -> Value {
    answer(&[
        ("processDefinitionId", string()),
        ("processDefinitionName", or_null(string())),
        ("processDefinitionVersion", integer(1)),
        ("processDefinitionVersionTag", or_null(string())),
        ("startDate", date()),
        ("endDate", or_null(date())),
        ("state", one_of(&["ACTIVE", "COMPLETED", "TERMINATED"])),
        ("hasIncident", boolean()),
        ("tenantId", string()),
        ("processInstanceKey", key()),
        ("processDefinitionKey", or_null(key())),
        ("parentProcessInstanceKey", or_null(key())),
        ("parentElementInstanceKey", or_null(key())),
        ("rootProcessInstanceKey", json!({ "type": "null" })),
        ("tags", list(string())),
        ("businessId", or_null(string())),
    ])
}

pub(crate) fn process_definition() -> Value {
    answer(&[
        ("name", or_null(string())),
        ("resourceName", string()),
        ("version", integer(1)),
        ("versionTag", or_null(string())),
        ("processDefinitionId", string()),
        ("tenantId", string()),
        ("processDefinitionKey", key()),
        ("hasStartForm", boolean()),
        ("state", one_of(&["ACTIVE"])),
    ])
}

fn activated_job() -> Value {
    answer(&[
        ("type", string()),
        ("processDefinitionId", string()),
        ("processDefinitionVersion", integer(1)),
        ("elementId", string()),
        ("customHeaders", map_of(string())),
        ("worker", or_null(string())),
        ("retries", integer(0)),
        ("deadline", or_null(integer(0))),
        ("variables", any_object()),
        ("tenantId", string()),
        ("jobKey", or_null(key())),
        ("processInstanceKey", key()),
        ("processDefinitionKey", or_null(key())),
        ("elementInstanceKey", or_null(key())),
        ("kind", one_of(&["BPMN_ELEMENT", "EXECUTION_LISTENER", "TASK_LISTENER"])),
        ("listenerEventType", one_of(&["UNSPECIFIED", "START", "END", "CREATING", "ASSIGNING", "UPDATING", "COMPLETING", "CANCELING"])),
        ("userTask", json!({ "type": "null" })),
        ("tags", list(string())),
        ("rootProcessInstanceKey", json!({ "type": "null" })),
    ])
}

pub(crate) fn user_task() -> Value {
    answer(&[
        ("name", or_null(string())),
        ("state", one_of(&["CREATING", "CREATED", "ASSIGNING", "UPDATING", "COMPLETING", "COMPLETED", "CANCELING"])),
        ("assignee", or_null(string())),
        ("elementId", string()),
        ("candidateGroups", list(string())),
        ("candidateUsers", list(string())),
        ("processDefinitionId", string()),
        ("creationDate", date()),
        ("completionDate", or_null(date())),
        ("followUpDate", or_null(string())),
        ("dueDate", or_null(string())),
        ("tenantId", string()),
        ("externalFormReference", json!({ "type": "null" })),
        ("processDefinitionVersion", integer(0)),
        ("customHeaders", map_of(string())),
        ("priority", json!({ "type": "integer" })),
        ("userTaskKey", or_null(key())),
        ("elementInstanceKey", or_null(key())),
        ("processName", or_null(string())),
        ("processDefinitionKey", or_null(key())),
        ("processInstanceKey", key()),
        ("rootProcessInstanceKey", json!({ "type": "null" })),
        ("formKey", or_null(string())),
        ("tags", list(string())),
    ])
}

pub(crate) fn incident() -> Value {
    answer(&[
        ("processDefinitionId", string()),
        ("errorType", string()),
        ("errorMessage", string()),
        ("elementId", string()),
        ("creationTime", date()),
        ("state", one_of(&["ACTIVE", "RESOLVED"])),
        ("tenantId", string()),
        ("incidentKey", or_null(key())),
        ("processDefinitionKey", or_null(key())),
        ("processInstanceKey", key()),
        ("rootProcessInstanceKey", json!({ "type": "null" })),
        ("elementInstanceKey", or_null(key())),
        ("jobKey", or_null(key())),
    ])
}

pub(crate) fn variable() -> Value {
    answer(&[
        ("name", string()),
        ("value", string()),
        ("isTruncated", boolean()),
        ("tenantId", string()),
        ("variableKey", key()),
        ("scopeKey", key()),
        ("processInstanceKey", key()),
        ("rootProcessInstanceKey", json!({ "type": "null" })),
    ])
}

pub(crate) fn job() -> Value {
    answer(&[
        ("customHeaders", map_of(string())),
        ("deadline", or_null(date())),
        ("deniedReason", json!({ "type": "null" })),
        ("elementId", string()),
        ("elementInstanceKey", or_null(key())),
        ("endTime", json!({ "type": "null" })),
        ("errorCode", json!({ "type": "null" })),
        ("errorMessage", or_null(string())),
        ("hasFailedWithRetriesLeft", boolean()),
        ("isDenied", json!({ "type": "null" })),
        ("jobKey", or_null(key())),
        ("kind", one_of(&["BPMN_ELEMENT", "EXECUTION_LISTENER", "TASK_LISTENER"])),
        ("listenerEventType", one_of(&["UNSPECIFIED", "START", "END", "CREATING", "ASSIGNING", "UPDATING", "COMPLETING", "CANCELING"])),
        ("processDefinitionId", string()),
        ("processDefinitionKey", or_null(key())),
        ("processInstanceKey", key()),
        ("rootProcessInstanceKey", json!({ "type": "null" })),
        ("retries", integer(0)),
        ("state", one_of(&["CREATED", "FAILED"])),
        ("tenantId", string()),
        ("type", string()),
        ("worker", string()),
        ("creationTime", date()),
        ("lastUpdateTime", json!({ "type": "null" })),
    ])
}

pub(crate) fn element_instance() -> Value {
    answer(&[
        ("processDefinitionId", string()),
        ("startDate", date()),
        ("endDate", or_null(date())),
        ("elementId", string()),
        ("elementName", string()),
        ("type", string()),
        ("state", one_of(&["ACTIVE", "COMPLETED", "TERMINATED"])),
        ("hasIncident", boolean()),
        ("tenantId", string()),
        ("elementInstanceKey", or_null(key())),
        ("processInstanceKey", key()),
        ("rootProcessInstanceKey", json!({ "type": "null" })),
        ("processDefinitionKey", or_null(key())),
        ("incidentKey", or_null(key())),
    ])
}

fn topology() -> Value {
    let partition = answer(&[("partitionId", integer(1)), ("role", one_of(&["leader"])), ("health", one_of(&["healthy"]))]);
    let broker = answer(&[("nodeId", integer(0)), ("host", string()), ("port", integer(0)), ("partitions", list(partition)), ("version", string())]);
    answer(&[
        ("brokers", list(broker)),
        ("clusterId", json!({ "type": "null" })),
        ("clusterSize", integer(1)),
        ("partitionsCount", integer(1)),
        ("replicationFactor", integer(1)),
        ("gatewayVersion", string()),
        ("lastCompletedChangeId", string()),
    ])
}

fn deployment() -> Value {
    let process = answer(&[
        ("processDefinitionId", string()),
        ("processDefinitionVersion", integer(1)),
        ("resourceName", or_null(string())),
        ("tenantId", string()),
        ("processDefinitionKey", key()),
    ]);
    let decision = answer(&[
        ("decisionDefinitionId", string()),
        ("version", integer(1)),
        ("name", string()),
        ("tenantId", string()),
        ("decisionRequirementsId", string()),
        ("decisionDefinitionKey", key()),
        ("decisionRequirementsKey", key()),
    ]);
    let requirements = answer(&[
        ("decisionRequirementsId", string()),
        ("decisionRequirementsName", string()),
        ("version", integer(1)),
        ("resourceName", string()),
        ("tenantId", string()),
        ("decisionRequirementsKey", key()),
    ]);
    let form = answer(&[("formId", string()), ("version", integer(1)), ("resourceName", string()), ("tenantId", string()), ("formKey", key())]);
    let item = answer(&[
        ("processDefinition", or_null(process)),
        ("decisionDefinition", or_null(decision)),
        ("decisionRequirements", or_null(requirements)),
        ("form", or_null(form)),
        ("resource", json!({ "type": "null" })),
    ]);
    answer(&[("deploymentKey", key()), ("tenantId", string()), ("deployments", list(item))])
}

/// The schemas of a `/v2` operation (a route of [`super::ROUTES`]).
pub fn operation(method: &str, path: &str) -> Option<Operation> {
    let ok = |schema: Value| (200, json_answer(schema));
    let done = (204, None);
    let op = |body: Option<Value>, success| Operation { query: Vec::new(), body, success };
    let operation_reference = ("operationReference", integer(1));
    let variables = || ("variables", or_null(any_object()));
    Some(match (method, path) {
        ("get", "/v2/status") => op(None, done),
        ("get", "/v2/topology") => op(None, ok(topology())),
        // Multipart: described in the summary; the JSON contract check does not read it.
        ("post", "/v2/deployments") => Operation { query: Vec::new(), body: None, success: ok(deployment()) },
        ("post", "/v2/process-instances") => op(
            Some(request(
                &[],
                &[
                    ("processDefinitionId", text(1)),
                    ("processDefinitionKey", key()),
                    ("processDefinitionVersion", json!({ "type": "integer", "minimum": -1 })),
                    ("variables", any_object()),
                    ("tenantId", string()),
                    ("businessId", string()),
                    ("awaitCompletion", boolean()),
                    operation_reference.clone(),
                    // Served only empty.
                    ("tags", json!({ "type": "array", "items": string(), "maxItems": 0 })),
                    ("requestTimeout", json!({ "type": "integer" })),
                    ("fetchVariables", list(string())),
                    ("startInstructions", json!({ "type": "array", "items": any_object(), "maxItems": 0 })),
                    ("runtimeInstructions", json!({ "type": "array", "items": any_object(), "maxItems": 0 })),
                ],
            )),
            ok(answer(&[
                ("processDefinitionId", string()),
                ("processDefinitionVersion", integer(1)),
                ("tenantId", string()),
                ("variables", any_object()),
                ("processDefinitionKey", or_null(key())),
                ("processInstanceKey", key()),
                ("tags", list(string())),
                ("businessId", or_null(string())),
            ])),
        ),
        ("post", "/v2/process-instances/search") => op(Some(search_request()), ok(search_answer(process_instance()))),
        ("get", "/v2/process-instances/{processInstanceKey}") => op(None, ok(process_instance())),
        ("post", "/v2/process-instances/{processInstanceKey}/cancellation") => op(Some(request(&[], &[operation_reference])), done),
        ("post", "/v2/process-definitions/search") => op(Some(search_request()), ok(search_answer(process_definition()))),
        ("get", "/v2/process-definitions/{processDefinitionKey}") => op(None, ok(process_definition())),
        ("get", "/v2/process-definitions/{processDefinitionKey}/xml") => op(None, (200, Some(("text/xml", string())))),
        ("post", "/v2/jobs/activation") => op(
            Some(request(
                &["type", "timeout", "maxJobsToActivate"],
                &[
                    ("type", text(1)),
                    ("worker", string()),
                    ("timeout", integer(1)),
                    ("maxJobsToActivate", integer(1)),
                    ("fetchVariable", list(string())),
                    ("requestTimeout", json!({ "type": "integer" })),
                    ("tenantIds", list(string())),
                    ("tenantFilter", one_of(&["PROVIDED", "ASSIGNED"])),
                ],
            )),
            ok(answer(&[("jobs", list(activated_job()))])),
        ),
        ("post", "/v2/jobs/{jobKey}/completion") => op(Some(request(&[], &[variables(), ("result", crate::schemas::job_result())])), done),
        ("post", "/v2/jobs/{jobKey}/failure") => op(
            Some(request(&[], &[("retries", integer(0)), ("errorMessage", string()), ("retryBackOff", integer(0)), variables()])),
            done,
        ),
        ("post", "/v2/jobs/{jobKey}/error") => op(Some(request(&["errorCode"], &[("errorCode", text(1)), ("errorMessage", or_null(string())), variables()])), done),
        ("patch", "/v2/jobs/{jobKey}") => op(
            Some(request(&["changeset"], &[("changeset", request(&[], &[("retries", or_null(integer(0))), ("timeout", or_null(integer(0)))])), operation_reference])),
            done,
        ),
        ("post", "/v2/jobs/search") => op(Some(search_request()), ok(search_answer(job()))),
        ("get", "/v2/user-tasks/{userTaskKey}/form") => op(
            None,
            ok(answer(&[("tenantId", string()), ("formId", string()), ("schema", string()), ("version", integer(1)), ("formKey", or_null(key()))])),
        ),
        ("get", "/v2/incidents/{incidentKey}") => op(None, ok(incident())),
        ("post", "/v2/element-instances/search") => op(Some(search_request()), ok(search_answer(element_instance()))),
        ("get", "/v2/element-instances/{elementInstanceKey}") => op(None, ok(element_instance())),
        ("post", "/v2/messages/publication") => op(
            Some(request(
                &["name"],
                &[("name", text(1)), ("correlationKey", string()), ("timeToLive", integer(0)), ("messageId", string()), ("variables", any_object()), ("tenantId", string())],
            )),
            ok(answer(&[("tenantId", string()), ("messageKey", key())])),
        ),
        ("post", "/v2/messages/correlation") => op(
            Some(request(&["name"], &[("name", text(1)), ("correlationKey", string()), ("variables", any_object()), ("tenantId", string())])),
            ok(answer(&[("tenantId", string()), ("messageKey", key()), ("processInstanceKey", key())])),
        ),
        ("post", "/v2/signals/broadcast") => op(
            Some(request(&["signalName"], &[("signalName", text(1)), ("variables", any_object()), ("tenantId", string())])),
            ok(answer(&[("tenantId", string()), ("signalKey", string())])),
        ),
        ("post", "/v2/user-tasks/search") => op(Some(search_request()), ok(search_answer(user_task()))),
        ("get", "/v2/user-tasks/{userTaskKey}") => op(None, ok(user_task())),
        ("post", "/v2/user-tasks/{userTaskKey}/assignment") => op(
            Some(request(&[], &[("assignee", string()), ("allowOverride", or_null(boolean())), ("action", or_null(one_of(SERVED_ACTIONS)))])),
            done,
        ),
        ("delete", "/v2/user-tasks/{userTaskKey}/assignee") => op(None, done),
        ("post", "/v2/user-tasks/{userTaskKey}/completion") => op(Some(request(&[], &[variables(), ("action", or_null(one_of(SERVED_ACTIONS)))])), done),
        ("post", "/v2/incidents/search") => op(Some(search_request()), ok(search_answer(incident()))),
        ("post", "/v2/incidents/{incidentKey}/resolution") => op(Some(request(&[], &[operation_reference])), done),
        ("post", "/v2/variables/search") => op(Some(search_request()), ok(search_answer(variable()))),
        ("put", "/v2/element-instances/{elementInstanceKey}/variables") => op(
            Some(request(&["variables"], &[("variables", any_object()), ("local", boolean()), operation_reference])),
            done,
        ),
        _ => return None,
    })
}
