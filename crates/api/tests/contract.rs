//! Every request these tests make and every answer they get is checked
//! against the OpenAPI document: a request the server accepted must fit its
//! schema, and an answer must be what the document says for its status.

use serde_json::{json, Value};

/// The operation of `document` that `path` (without its query) is an instance of:
/// the template with the most literal segments in common wins.
fn template<'d>(document: &'d Value, method: &str, path: &str) -> Option<(&'d str, &'d Value)> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, operations) in document["paths"].as_object()? {
        let Some(operation) = operations.get(method) else { continue };
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&segments).all(|(part, segment)| {
            if part.starts_with('{') {
                true
            } else {
                literal += 1;
                part == segment
            }
        });
        if fits && best.is_none_or(|(score, ..)| literal > score) {
            best = Some((literal, template.as_str(), operation));
        }
    }
    best.map(|(_, template, operation)| (template, operation))
}

/// Fails with every way `instance` does not fit `schema` (which may refer to the document's components).
fn check(document: &Value, schema: &Value, instance: &Value, what: &str) {
    let mut root = schema.clone();
    if let Some(object) = root.as_object_mut() {
        object.insert("components".into(), document["components"].clone());
    }
    let validator = jsonschema::options().should_validate_formats(true).build(&root).unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not fit its schema:\n{}\n{instance}", errors.join("\n"));
}

/// A query value as the schema types it.
fn typed(value: &str, schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("integer") => value.parse::<i64>().map_or(json!(value), |n| json!(n)),
        Some("boolean") => value.parse::<bool>().map_or(json!(value), |b| json!(b)),
        _ => json!(value),
    }
}

/// Checks one exchange. Requests are checked only when the server took them
/// (tests send bad input on purpose); answers always. Returns the operation
/// (`method template`) when it succeeded.
pub fn exchange(document: &Value, method: &str, uri: &str, body: Option<&str>, status: u16, content_type: &str, answer: &Value) -> Option<String> {
    let method = method.to_lowercase();
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let Some((template, operation)) = template(document, &method, path) else {
        // Camunda's operations outside the served subset answer 501, with a problem.
        let not_served = status == 501 && path.starts_with("/v2/");
        assert!(status == 404 || status == 405 || not_served, "{method} {path} is not in the OpenAPI document, yet answered {status}");
        if not_served {
            check(document, &json!({ "$ref": "#/components/schemas/Problem" }), answer, &format!("{method} {path} problem"));
        }
        return None;
    };
    let what = format!("{method} {template}");
    let success = (200..300).contains(&status);
    if success {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            let parameter = operation["parameters"].as_array().into_iter().flatten().find(|p| p["name"] == json!(name) && p["in"] == json!("query"));
            let parameter = parameter.unwrap_or_else(|| panic!("{what}: query parameter `{name}` is not documented"));
            check(document, &parameter["schema"], &typed(&value, &parameter["schema"]), &format!("{what} query `{name}`"));
        }
        if let Some(text) = body.filter(|b| !b.trim().is_empty()) {
            let sent: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("{what}: the server took a body that is not JSON"));
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert!(!schema.is_null() || sent == json!({}), "{what} took a body it does not document: {sent}");
            if !schema.is_null() {
                check(document, schema, &sent, &format!("{what} request"));
            }
        }
        let documented = operation["responses"].as_object().and_then(|r| r.keys().find(|k| k.as_str() != "default").cloned());
        assert_eq!(documented.as_deref(), Some(status.to_string().as_str()), "{what} answered {status}, not its documented status");
        let response = &operation["responses"][status.to_string()];
        match response["content"].as_object().and_then(|c| c.iter().next()) {
            Some((media_type, content)) => {
                assert!(content_type.starts_with(media_type.as_str()), "{what}: content type {content_type}, documented {media_type}");
                if media_type == "application/x-ndjson" {
                    // Its schema is each line's.
                    for line in answer.as_array().unwrap_or_else(|| panic!("{what}: the lines of a stream")) {
                        check(document, &content["schema"], line, &format!("{what} line"));
                    }
                } else {
                    check(document, &content["schema"], answer, &format!("{what} answer"));
                }
            }
            None => assert_eq!(answer, &Value::String(String::new()), "{what} answered a body where it documents none"),
        }
        Some(what)
    } else {
        assert_eq!(content_type, "application/problem+json", "{what} answered {status} without a problem");
        check(document, &json!({ "$ref": "#/components/schemas/Problem" }), answer, &format!("{what} problem"));
        None
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) if std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).is_some() => {
                out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap());
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
