//! The OpenAPI 3.1 document, built from [`crate::ROUTES`] and the error table.

use serde_json::{json, Map, Value};

use crate::{ERRORS, ROUTES};

pub fn openapi() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, body, query) in ROUTES {
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        parameters.extend(query.iter().map(|name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } })));
        let mut operation = json!({
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": { "description": "OK (201 Created for deployments, starts and publications; 204 No Content for commands)" },
                "default": { "description": "A problem", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
            }
        });
        if !body.is_empty() {
            let properties: Map<String, Value> = body.iter().map(|field| (field.to_string(), json!({}))).collect();
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "type": "object", "properties": properties, "additionalProperties": false } } }
            });
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Baton", "version": env!("CARGO_PKG_VERSION"), "description": "A durable workflow engine for BPMN 2.0." },
        "paths": paths,
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "code", "detail"],
                    "properties": {
                        "type": { "type": "string" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "code": { "type": "string", "enum": ERRORS.iter().map(|(code, _, _)| *code).collect::<Vec<_>>() },
                        "detail": { "type": "string" }
                    }
                }
            }
        }
    })
}
