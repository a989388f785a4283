//! The OpenAPI 3.1 document, built from [`crate::ROUTES`] (paths, summaries)
//! and [`crate::schemas`] (what each request and answer holds).

use serde_json::{json, Map, Value};

use crate::schemas::{components, operation};
use crate::ROUTES;

pub fn openapi() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, _, _) in ROUTES {
        let Some(schemas) = operation(method, path) else { continue };
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        parameters.extend(schemas.query.iter().map(|(name, schema)| json!({ "name": name, "in": "query", "required": false, "schema": schema })));
        if *method == "post" {
            parameters.push(json!({
                "name": "X-Baton-Actor",
                "in": "header",
                "required": false,
                "description": "Who makes the request; recorded on what it changes (a worker's name stands in for job commands; else `anonymous`).",
                "schema": { "type": "string", "minLength": 1, "maxLength": crate::extract::MAX_ACTOR_BYTES }
            }));
        }
        let (status, content) = schemas.success;
        let success = match content {
            Some((media_type, schema)) => json!({ "description": "Done", "content": { media_type: { "schema": schema } } }),
            None => json!({ "description": "Done; nothing to return" }),
        };
        let mut operation = json!({
            "operationId": operation_id(method, path),
            "summary": summary,
            "parameters": parameters,
            "responses": {
                status.to_string(): success,
                "default": { "description": "A problem", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
            }
        });
        if let Some((optional, schema)) = schemas.body {
            operation["requestBody"] = json!({ "required": !optional, "content": { "application/json": { "schema": schema } } });
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Baton", "version": env!("CARGO_PKG_VERSION"), "description": "A durable workflow engine for BPMN 2.0." },
        "paths": paths,
        "components": { "schemas": components() }
    })
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
