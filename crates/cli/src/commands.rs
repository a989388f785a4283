//! The client commands: each one request (or a page walk), printed as a table
//! for people or, with `--json`, one JSON object per line.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::client::{encode, Client, Failure};

/// Parses `--var k=v` (JSON when it parses as JSON, text otherwise) and `--vars-json`.
pub fn variables(vars: &[String], vars_json: Option<&str>) -> Result<Map<String, Value>, Failure> {
    let mut all = match vars_json {
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Failure("--vars-json must be a JSON object, for example '{\"amount\": 50}'".into())),
            Err(e) => return Err(Failure(format!("--vars-json is not JSON: {e}"))),
        },
        None => Map::new(),
    };
    for var in vars {
        let (name, value) = var.split_once('=').ok_or_else(|| Failure(format!("--var {var}: write name=value")))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        all.insert(name.to_string(), value);
    }
    Ok(all)
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as aligned columns.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Lists every page; prints JSON lines or a table of `columns` (header, field).
async fn list(client: &Client, path: &str, json_lines: bool, columns: &[(&str, &str)]) -> Result<(), Failure> {
    let mut rows = Vec::new();
    client
        .all(path, |item| {
            if json_lines {
                say!("{item}");
            } else {
                rows.push(columns.iter().map(|(_, field)| text(&item[*field])).collect());
            }
        })
        .await?;
    if !json_lines {
        table(&columns.iter().map(|(h, _)| *h).collect::<Vec<_>>(), &rows);
    }
    Ok(())
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v)))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

pub async fn deploy(client: &Client, files: &[PathBuf]) -> Result<(), Failure> {
    let mut resources = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| Failure(format!("cannot read {}: {e}", file.display())))?;
        let xml = bpmn::decode(&bytes).map_err(|d| Failure(format!("{}: {d}", file.display())))?;
        let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
        resources.push(json!({"name": name, "xml": xml}));
    }
    let answer = client.post("/v1/workflows", &json!({"resources": resources})).await?;
    for warning in answer["diagnostics"].as_array().map(Vec::as_slice).unwrap_or_default() {
        eprintln!("warning: {}:{}:{}: [{}] {}", text(&warning["resource"]), warning["line"], warning["column"], text(&warning["code"]), text(&warning["message"]));
    }
    let rows: Vec<Vec<String>> = answer["workflows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|w| vec![text(&w["workflow"]), text(&w["version"]), if w["created"] == json!(true) { "new".into() } else { "unchanged".into() }])
        .collect();
    table(&["WORKFLOW", "VERSION", "DEPLOYED"], &rows);
    Ok(())
}

pub struct StartArgs {
    pub workflow: String,
    pub version: Option<u32>,
    pub variables: Map<String, Value>,
    pub business_key: Option<String>,
    pub request_id: Option<String>,
}

pub async fn start(client: &Client, args: StartArgs) -> Result<(), Failure> {
    let body = json!({
        "workflow": args.workflow,
        "version": args.version,
        "variables": args.variables,
        "business_key": args.business_key,
        "request_id": args.request_id,
    });
    let answer = client.post("/v1/instances", &body).await?;
    say!("{}", text(&answer["id"]));
    Ok(())
}

/// Which instances `baton instances list` shows.
#[derive(Debug, clap::Args)]
pub struct InstanceListArgs {
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    workflow: Option<String>,
    #[arg(long)]
    business_key: Option<String>,
    /// Only instances with (true) or without (false) open incidents, their own or those of instances they called.
    #[arg(long, value_name = "BOOL")]
    has_incidents: Option<bool>,
    /// Only the instances this instance called.
    #[arg(long)]
    parent: Option<String>,
}

pub async fn list_instances(client: &Client, filter: InstanceListArgs, json_lines: bool) -> Result<(), Failure> {
    let InstanceListArgs { status, workflow, business_key, has_incidents, parent } = filter;
    let pairs = [
        ("status", status),
        ("workflow", workflow),
        ("business_key", business_key),
        ("has_incidents", has_incidents.map(|b| b.to_string())),
        ("parent_id", parent),
    ];
    let path = format!("/v1/instances{}", query(&pairs));
    let columns = [
        ("ID", "id"),
        ("WORKFLOW", "workflow"),
        ("VERSION", "version"),
        ("STATUS", "status"),
        ("STARTED", "started_at"),
        ("ENDED", "ended_at"),
        ("INCIDENTS", "incidents"),
        ("CALLED INCIDENTS", "descendant_incidents"),
    ];
    list(client, &path, json_lines, &columns).await
}

pub async fn show_instance(client: &Client, id: &str, json_lines: bool) -> Result<(), Failure> {
    let instance = client.get(&format!("/v1/instances/{}", encode(id))).await?;
    if json_lines {
        say!("{instance}");
        return Ok(());
    }
    let fields = [
        "id",
        "workflow",
        "version",
        "status",
        "business_key",
        "parent_id",
        "started_at",
        "ended_at",
        "incidents",
        "descendant_incidents",
        "waiting",
        "tokens",
        "update_count",
        "error_code",
        "cancel_reason",
    ];
    for field in fields {
        say!("{field:<20} {}", text(&instance[field]));
    }
    say!("{:<20} {}", "input", instance["input"]);
    say!("{:<20} {}", "variables", instance["variables"]);
    Ok(())
}

/// One row per element instance, in the order they started: its end state
/// (`completed`, `terminated`) or `active`, with start and end times.
pub async fn history(client: &Client, id: &str, json_lines: bool) -> Result<(), Failure> {
    let mut order: Vec<u64> = Vec::new();
    let mut rows: std::collections::BTreeMap<u64, Value> = std::collections::BTreeMap::new();
    client
        .all(&format!("/v1/instances/{}/history", encode(id)), |entry| {
            let key = entry["element_instance"].as_u64().unwrap_or_default();
            if !rows.contains_key(&key) {
                order.push(key);
            }
            let state = if entry["state"] == json!("activated") { "active" } else { entry["state"].as_str().unwrap_or("") };
            rows.insert(
                key,
                json!({
                    "element": entry["element"],
                    "element_type": entry["element_type"],
                    "state": state,
                    "started_at": entry["started_at"],
                    "ended_at": entry["ended_at"],
                    "loop_counter": entry["loop_counter"],
                }),
            );
        })
        .await?;
    let ordered: Vec<&Value> = order.iter().map(|key| &rows[key]).collect();
    if json_lines {
        for row in ordered {
            say!("{row}");
        }
        return Ok(());
    }
    let fields = ["element", "element_type", "state", "started_at", "ended_at", "loop_counter"];
    let table_rows: Vec<Vec<String>> = ordered.iter().map(|row| fields.iter().map(|f| text(&row[*f])).collect()).collect();
    table(&["ELEMENT", "TYPE", "STATE", "STARTED", "ENDED", "LOOP"], &table_rows);
    Ok(())
}

pub async fn instance_command(client: &Client, id: &str, action: &str, body: Value) -> Result<(), Failure> {
    client.post(&format!("/v1/instances/{}/{action}", encode(id)), &body).await?;
    eprintln!("{action}: {id}");
    Ok(())
}

pub async fn list_jobs(client: &Client, job_type: Option<String>, json_lines: bool) -> Result<(), Failure> {
    let path = format!("/v1/jobs{}", query(&[("type", job_type)]));
    let columns = [("KEY", "key"), ("TYPE", "type"), ("ELEMENT", "element_id"), ("RETRIES", "retries"), ("STATE", "state"), ("WORKER", "worker"), ("LEASE UNTIL", "lease_until")];
    list(client, &path, json_lines, &columns).await
}

pub async fn list_tasks(client: &Client, assignee: Option<String>, group: Option<String>, json_lines: bool) -> Result<(), Failure> {
    let path = format!("/v1/tasks{}", query(&[("assignee", assignee), ("candidate_group", group)]));
    let columns = [("KEY", "key"), ("ELEMENT", "element_id"), ("WORKFLOW", "workflow"), ("ASSIGNEE", "assignee"), ("GROUPS", "candidate_groups"), ("DUE", "due")];
    list(client, &path, json_lines, &columns).await
}

pub async fn task_command(client: &Client, key: &str, action: &str, body: Value) -> Result<(), Failure> {
    client.post(&format!("/v1/tasks/{}/{action}", encode(key)), &body).await?;
    eprintln!("{action}: {key}");
    Ok(())
}

pub async fn publish(client: &Client, name: &str, key: Option<String>, variables: Map<String, Value>, ttl_ms: i64, message_id: Option<String>) -> Result<(), Failure> {
    let body = json!({"name": name, "correlation_key": key.unwrap_or_default(), "variables": variables, "ttl_ms": ttl_ms, "message_id": message_id});
    client.post("/v1/messages", &body).await?;
    eprintln!("published: {name}");
    Ok(())
}

pub async fn signal(client: &Client, name: &str, variables: Map<String, Value>) -> Result<(), Failure> {
    client.post("/v1/signals", &json!({"name": name, "variables": variables})).await?;
    eprintln!("broadcast: {name}");
    Ok(())
}

pub async fn list_incidents(client: &Client, instance: Option<String>, descendants: bool, workflow: Option<String>, json_lines: bool) -> Result<(), Failure> {
    let path = format!("/v1/incidents{}", query(&[("instance_id", instance), ("descendants", descendants.then(|| "true".to_string())), ("workflow", workflow)]));
    let columns = [("KEY", "key"), ("INSTANCE", "instance_id"), ("ELEMENT", "element_id"), ("KIND", "kind"), ("MESSAGE", "message")];
    list(client, &path, json_lines, &columns).await
}

pub async fn resolve_incident(client: &Client, key: &str) -> Result<(), Failure> {
    client.post(&format!("/v1/incidents/{}/resolve", encode(key)), &json!({})).await?;
    eprintln!("resolved: {key}");
    Ok(())
}
