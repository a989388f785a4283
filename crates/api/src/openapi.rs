//! The OpenAPI 3.1 document, built from [`crate::ROUTES`] (paths, summaries)
//! and [`crate::schemas`] (what each request and answer holds).

use serde_json::{json, Map, Value};

use crate::schemas::{components, operation};
use crate::ROUTES;

pub fn openapi() -> Value {
    let mut paths = Map::new();
    let v1 = ROUTES.iter().map(|(method, path, summary, _, _)| (*method, *path, *summary, operation(method, path)));
    // Camunda's API (crate::camunda): its paths and field names, Baton's schemas.
    let v2 = crate::camunda::ROUTES.iter().map(|(method, path, summary, _)| (*method, *path, *summary, crate::camunda::schemas::operation(method, path)));
    for (method, path, summary, schemas) in v1.chain(v2) {
        let Some(schemas) = schemas else { continue };
        let (method, path) = (&method, &path);
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                let schema = if name.ends_with("Key") {
                    json!({ "type": "string", "pattern": "^[1-9][0-9]{0,18}$" })
                } else if name == "version" { json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX }) } else { json!({ "type": "string", "minLength": 1 }) };
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        parameters.extend(schemas.query.iter().map(|(name, schema)| json!({ "name": name, "in": "query", "required": false, "schema": schema })));
        // Activation changes no instance, so it records no actor.
        if *method == "post" && !matches!(*path, "/v1/jobs/activate" | "/v1/jobs/stream") {
            parameters.push(json!({
                "name": "X-Baton-Actor",
                "in": "header",
                "required": false,
                "description": "Who makes the request; recorded on what it changes (a worker's name stands in for job commands; else `anonymous`).",
                "schema": { "type": "string", "minLength": 1, "maxLength": crate::extract::MAX_ACTOR_BYTES, "pattern": "^[!-~]([ -~]*[!-~])?$" }
            }));
        }
        let (status, content) = schemas.success;
        let mut success = match content {
            Some((media_type, schema)) => json!({ "description": "Done", "content": { media_type: { "schema": schema } } }),
            None => json!({ "description": "Done; nothing to return" }),
        };
        let links = links(method, path);
        if !links.is_empty() {
            success["links"] = Value::Object(links);
        }
        let mut operation = json!({
            "operationId": operation_id(method, path),
            "summary": summary,
            "parameters": parameters,
            "responses": {
                status.to_string(): success,
                "default": { "description": "A problem", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
            }
        });
        // Non-public routes take a bearer token when the server runs with authentication.
        if crate::access::access(method, path) != Some(crate::access::Access::Public) {
            operation["security"] = json!([{ "bearer": [] }, {}]);
        }
        if let Some(schema) = schemas.body {
            // Every write says application/json, an empty one too (`{}`): the door refuses others.
            operation["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
        }
        if (*method, *path) == ("post", "/v2/deployments") {
            let files = json!({ "type": "object", "required": ["resources"], "properties": {
                "resources": { "type": "array", "items": { "type": "string", "contentMediaType": "application/octet-stream" } },
                "tenantId": { "type": "string" } } });
            operation["requestBody"] = json!({ "required": true, "content": { "multipart/form-data": { "schema": files } } });
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Baton", "version": env!("CARGO_PKG_VERSION"), "description": "A durable workflow engine for BPMN 2.0." },
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "An API token (`baton tokens create`), with `baton serve --auth token`." } }
        }
    })
}

/// What a client can do next with what an operation answered: the links a
/// stateful client (or fuzzer) follows from a new workflow, instance or job.
fn links(method: &str, path: &str) -> Map<String, Value> {
    let follow = |targets: &[(&str, &str)], parameter: &str, value: &str| -> Map<String, Value> {
        targets
            .iter()
            .map(|(name, target)| {
                let (method, path) = target.split_once(' ').unwrap_or(("get", target));
                (name.to_string(), json!({ "operationId": operation_id(method, path), "parameters": { parameter: value } }))
            })
            .collect()
    };
    match (method, path) {
        ("post", "/v1/workflows") => follow(
            &[("GetWorkflow", "get /v1/workflows/{key}"), ("GetFirstVersion", "get /v1/workflows/{key}/versions/{version}")],
            "key",
            "$response.body#/workflows/0/workflow",
        ),
        ("post", "/v1/instances") => follow(
            &[
                ("GetInstance", "get /v1/instances/{id}"),
                ("GetHistory", "get /v1/instances/{id}/history"),
                ("SetVariables", "post /v1/instances/{id}/variables"),
                ("SetLabels", "post /v1/instances/{id}/labels"),
                ("Suspend", "post /v1/instances/{id}/suspend"),
                ("Resume", "post /v1/instances/{id}/resume"),
                ("Modify", "post /v1/instances/{id}/modify"),
                ("Cancel", "post /v1/instances/{id}/cancel"),
                ("Rerun", "post /v1/instances/{id}/rerun"),
                ("Delete", "post /v1/instances/{id}/delete"),
                ("Keep", "post /v1/instances/{id}/keep"),
            ],
            "id",
            "$response.body#/id",
        ),
        ("post", "/v1/jobs/activate") => follow(
            &[
                ("Complete", "post /v1/jobs/{key}/complete"),
                ("Fail", "post /v1/jobs/{key}/fail"),
                ("ThrowError", "post /v1/jobs/{key}/error"),
                ("SetRetries", "post /v1/jobs/{key}/retries"),
            ],
            "key",
            "$response.body#/jobs/0/key",
        ),
        ("get", "/v1/tasks") => follow(
            &[
                ("GetTask", "get /v1/tasks/{key}"),
                ("Claim", "post /v1/tasks/{key}/claim"),
                ("Assign", "post /v1/tasks/{key}/assign"),
                ("Update", "post /v1/tasks/{key}/update"),
                ("Complete", "post /v1/tasks/{key}/complete"),
            ],
            "key",
            "$response.body#/items/0/key",
        ),
        ("get", "/v1/incidents") => follow(&[("Resolve", "post /v1/incidents/{key}/resolve")], "key", "$response.body#/items/0/key"),
        ("get", "/v1/timers") => follow(&[("Reschedule", "post /v1/timers/{key}/reschedule")], "key", "$response.body#/items/0/key"),
        _ => Map::new(),
    }
}

/// `get /v1/instances/{id}/history` → `get_instances_id_history`: stable and unique per route.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != "v1")
        .map(|segment| segment.trim_matches(|c| c == '{' || c == '}').replace(['.', '-'], "_"))
        .collect();
    format!("{method}_{}", words.join("_"))
}
