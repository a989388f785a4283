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
            Ok(_) => {
                return Err(Failure(
                    "--vars-json must be a JSON object, for example '{\"amount\": 50}'".into(),
                ))
            }
            Err(e) => return Err(Failure(format!("--vars-json is not JSON: {e}"))),
        },
        None => Map::new(),
    };
    for var in vars {
        let (name, value) = var
            .split_once('=')
            .ok_or_else(|| Failure(format!("--var {var}: write name=value")))?;
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        all.insert(name.to_string(), value);
    }
    Ok(all)
}

/// `--label name=value` arguments, as a map.
pub fn labels(args: &[String]) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    args.iter()
        .map(|arg| {
            let (name, value) = arg
                .split_once('=')
                .ok_or_else(|| Failure(format!("--label {arg}: write name=value")))?;
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
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
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Lists every page; prints JSON lines or a table of `columns` (header, field).
async fn list(
    client: &Client,
    path: &str,
    json_lines: bool,
    columns: &[(&str, &str)],
) -> Result<(), Failure> {
    let mut rows = Vec::new();
    client
        .all(path, |item| {
            if json_lines {
                say!("{item}");
            } else {
                rows.push(
                    columns
                        .iter()
                        .map(|(_, field)| text(&item[*field]))
                        .collect(),
                );
            }
        })
        .await?;
    if !json_lines {
        table(&columns.iter().map(|(h, _)| *h).collect::<Vec<_>>(), &rows);
    }
    Ok(())
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

pub async fn deploy(client: &Client, files: &[PathBuf]) -> Result<(), Failure> {
    let mut resources = Vec::new();
    for file in files {
        let bytes = std::fs::read(file)
            .map_err(|e| Failure(format!("cannot read {}: {e}", file.display())))?;
        let xml = bpmn::decode(&bytes).map_err(|d| Failure(format!("{}: {d}", file.display())))?;
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        resources.push(json!({"name": name, "xml": xml}));
    }
    let answer = client
        .post(
            "/v1/workflows",
            &json!({"resources": resources, "tenant": client.tenant()}),
        )
        .await?;
    for warning in answer["diagnostics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        eprintln!(
            "warning: {}:{}:{}: [{}] {}",
            text(&warning["resource"]),
            warning["line"],
            warning["column"],
            text(&warning["code"]),
            text(&warning["message"])
        );
    }
    // What was deployed, by kind; a kind the deployment did not hold prints nothing, workflows always.
    for (field, id, heading) in [("workflows", "workflow", "WORKFLOW"), ("decisions", "decision_id", "DECISION"), ("forms", "form_id", "FORM")] {
        let rows: Vec<Vec<String>> = answer[field]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|d| {
                let created = if d["created"] == json!(true) { "new" } else { "unchanged" };
                vec![text(&d[id]), text(&d["version"]), created.into()]
            })
            .collect();
        if field == "workflows" || !rows.is_empty() {
            table(&[heading, "VERSION", "DEPLOYED"], &rows);
        }
    }
    Ok(())
}

pub async fn count_instances(client: &Client, workflow: Option<String>, version: Option<u32>, json_out: bool) -> Result<(), Failure> {
    let pairs = [("tenant", client.tenant()), ("workflow", workflow), ("version", version.map(|v| v.to_string()))];
    let answer = client.get(&format!("/v1/instances/counts{}", query(&pairs))).await?;
    if json_out {
        say!("{answer}");
        return Ok(());
    }
    let statuses = ["running", "suspended", "completed", "cancelled", "failed"];
    let mut rows: Vec<Vec<String>> = statuses.iter().map(|s| vec![s.to_string(), text(&answer["by_status"][*s])]).collect();
    rows.push(vec!["with incidents".into(), text(&answer["with_incidents"])]);
    rows.push(vec!["total".into(), text(&answer["total"])]);
    table(&["STATUS", "INSTANCES"], &rows);
    Ok(())
}

pub async fn list_decisions(client: &Client, decision_id: Option<String>, json_lines: bool) -> Result<(), Failure> {
    let columns = [
        ("TENANT", "tenant"),
        ("DECISION", "decision_id"),
        ("VERSION", "version"),
        ("NAME", "name"),
        ("FILE", "resource"),
        ("DEPLOYED", "deployed_at"),
    ];
    let path = format!("/v1/decisions{}", query(&[("tenant", client.tenant()), ("decision_id", decision_id)]));
    list(client, &path, json_lines, &columns).await
}

pub async fn show_decision(client: &Client, decision_id: &str, version: Option<u32>, xml: bool) -> Result<(), Failure> {
    let pairs = [("tenant", client.tenant()), ("version", version.map(|v| v.to_string()))];
    let answer = client.get(&format!("/v1/decisions/{}{}", encode(decision_id), query(&pairs))).await?;
    if xml {
        say!("{}", text(&answer["xml"]));
    } else {
        let mut shown = answer.clone();
        if let Some(map) = shown.as_object_mut() {
            map.remove("xml");
        }
        say!("{shown}");
    }
    Ok(())
}

pub async fn decide(client: &Client, decision_id: &str, variables: Map<String, Value>, version: Option<u32>) -> Result<(), Failure> {
    let body = json!({"variables": variables, "version": version, "tenant": client.tenant()});
    let answer = client.post(&format!("/v1/decisions/{}/evaluate", encode(decision_id)), &body).await?;
    say!("{answer}");
    Ok(())
}

pub async fn list_forms(client: &Client, form_id: Option<String>, json_lines: bool) -> Result<(), Failure> {
    let columns = [
        ("TENANT", "tenant"),
        ("FORM", "form_id"),
        ("VERSION", "version"),
        ("VERSION TAG", "version_tag"),
        ("FILE", "resource"),
        ("DEPLOYED", "deployed_at"),
    ];
    let path = format!("/v1/forms{}", query(&[("tenant", client.tenant()), ("form_id", form_id)]));
    list(client, &path, json_lines, &columns).await
}

pub async fn show_form(client: &Client, form_id: &str, version: Option<u32>) -> Result<(), Failure> {
    let pairs = [("tenant", client.tenant()), ("version", version.map(|v| v.to_string()))];
    show(client, &format!("/v1/forms/{}{}", encode(form_id), query(&pairs))).await
}

pub async fn show_task_form(client: &Client, key: &str) -> Result<(), Failure> {
    show(client, &format!("/v1/tasks/{}/form", encode(key))).await
}

pub async fn list_workflows(client: &Client, json_lines: bool) -> Result<(), Failure> {
    let columns = [
        ("TENANT", "tenant"),
        ("WORKFLOW", "workflow"),
        ("VERSION", "version"),
        ("NAME", "name"),
        ("VERSION TAG", "version_tag"),
        ("DEPLOYED", "deployed_at"),
    ];
    list(
        client,
        &format!("/v1/workflows{}", query(&[("tenant", client.tenant())])),
        json_lines,
        &columns,
    )
    .await
}

/// A deployed workflow (the latest version, or one): its fields, or with `--xml` its BPMN.
pub async fn show_workflow(
    client: &Client,
    key: &str,
    version: Option<u32>,
    xml: bool,
) -> Result<(), Failure> {
    let tenant = query(&[("tenant", client.tenant())]);
    let path = match version {
        Some(v) => format!("/v1/workflows/{}/versions/{v}{tenant}", encode(key)),
        None => format!("/v1/workflows/{}{tenant}", encode(key)),
    };
    let workflow = client.get(&path).await?;
    if xml {
        say!("{}", text(&workflow["xml"]));
        return Ok(());
    }
    for field in ["workflow", "version", "name", "version_tag", "deployed_at"] {
        say!("{field:<12} {}", text(&workflow[field]));
    }
    Ok(())
}

/// Prints what a GET answers: JSON as one line, text as it is.
pub async fn show(client: &Client, path: &str) -> Result<(), Failure> {
    let answer = client.get(path).await?;
    match answer {
        Value::String(text) => say!("{}", text.trim_end()),
        other => say!("{other}"),
    }
    Ok(())
}

pub async fn show_task(client: &Client, key: &str) -> Result<(), Failure> {
    show(client, &format!("/v1/tasks/{}", encode(key))).await
}

/// How a command by hand claims a job: the worker's lease, or an override.
#[derive(Debug, clap::Args)]
pub struct ClaimArgs {
    /// The worker's name, as it activated the job.
    #[arg(long)]
    worker: Option<String>,
    /// The lease token activation returned.
    #[arg(long)]
    lease: Option<String>,
    /// Finish the job whoever holds it (takes operator; recorded in history).
    #[arg(long = "override")]
    override_lease: bool,
    #[arg(long)]
    reason: Option<String>,
}

impl ClaimArgs {
    pub fn with(self, mut body: Value) -> Value {
        body["worker"] = json!(self.worker);
        body["lease"] = json!(self.lease);
        body["override"] = json!(self.override_lease);
        body["reason"] = json!(self.reason);
        body
    }
}

/// Completes, fails or throws an error from a job by hand (what `baton worker` does per job).
pub async fn job_command(
    client: &Client,
    key: &str,
    action: &str,
    body: Value,
) -> Result<(), Failure> {
    client
        .post(&format!("/v1/jobs/{}/{action}", encode(key)), &body)
        .await?;
    eprintln!("{action}: {key}");
    Ok(())
}

/// `baton jobs activate`: the jobs one poll took, each a line of JSON.
pub async fn activate_jobs(client: &Client, job_type: String, worker: String, max_jobs: usize, lease_ms: i64, timeout_ms: u64) -> Result<(), Failure> {
    let mut body = json!({"type": job_type, "worker": worker, "max_jobs": max_jobs, "lease_ms": lease_ms, "timeout_ms": timeout_ms});
    if let Some(tenant) = client.tenant() {
        body["tenants"] = json!([tenant]);
    }
    let activated = client.post("/v1/jobs/activate", &body).await?;
    for job in activated["jobs"].as_array().into_iter().flatten() {
        say!("{job}");
    }
    Ok(())
}

/// `baton jobs stream`: each job a line of JSON on stdout, as it comes.
pub async fn stream_jobs(client: &Client, job_type: String, worker: String, window: usize, lease_ms: i64, limit: Option<u64>) -> Result<(), Failure> {
    let mut body = json!({"type": job_type, "worker": worker, "window": window, "lease_ms": lease_ms});
    if let Some(limit) = limit {
        body["limit"] = json!(limit);
    }
    if let Some(tenant) = client.tenant() {
        body["tenants"] = json!([tenant]);
    }
    let mut stream = client.open_stream("/v1/jobs/stream", &body).await?;
    let mut buffer = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = stream.chunk() => chunk.map_err(|e| Failure(format!("the job stream was cut: {e}")))?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(chunk) = chunk else { return Ok(()) };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(problem) = serde_json::from_str::<Value>(line).ok().and_then(|v| v.get("problem").cloned()) {
                return Err(Failure(format!("the server ended the stream: {}: {}", problem["code"].as_str().unwrap_or("?"), problem["detail"].as_str().unwrap_or(""))));
            }
            say!("{line}");
        }
    }
}

/// `baton jobs report`: many outcomes in one request; each job's outcome printed.
pub async fn report_jobs(client: &Client, worker: String, file: &str) -> Result<(), Failure> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Failure(format!("cannot read the outcomes from stdin: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure(format!("cannot read {file}: {e}")))?
    };
    let jobs: Value = serde_json::from_str(&text).map_err(|e| Failure(format!("{file}: not JSON ({e}); give an array of outcomes")))?;
    if !jobs.is_array() {
        return Err(Failure(format!("{file}: give an array of outcomes, such as [{{\"key\": \"...\", \"lease\": \"...\", \"complete\": {{}}}}]")));
    }
    let answer = client.post("/v1/jobs/report", &json!({"worker": worker, "jobs": jobs})).await?;
    let mut refused = 0;
    for job in answer["jobs"].as_array().into_iter().flatten() {
        let key = job["key"].as_str().unwrap_or("?");
        if job["ok"] == true {
            say!("{key}\tok");
        } else {
            refused += 1;
            say!("{key}\t{}: {}", job["problem"]["code"].as_str().unwrap_or("?"), job["problem"]["detail"].as_str().unwrap_or(""));
        }
    }
    if refused > 0 {
        return Err(Failure(format!("{refused} of the outcomes were refused")));
    }
    Ok(())
}

pub struct StartArgs {
    pub workflow: String,
    pub version: Option<u32>,
    pub variables: Map<String, Value>,
    pub business_key: Option<String>,
    pub request_id: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

pub async fn start(client: &Client, args: StartArgs) -> Result<(), Failure> {
    let body = json!({
        "workflow": args.workflow,
        "version": args.version,
        "variables": args.variables,
        "business_key": args.business_key,
        "request_id": args.request_id,
        "labels": args.labels,
        "tenant": client.tenant(),
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
    /// With --workflow: only this version of it.
    #[arg(long, requires = "workflow")]
    version: Option<u32>,
    /// started (the default), workflow or status, then start time; -started etc. for the other way round.
    #[arg(long, allow_hyphen_values = true, value_parser = ["started", "-started", "workflow", "-workflow", "status", "-status"])]
    order: Option<String>,
    #[arg(long)]
    business_key: Option<String>,
    /// Only instances with (true) or without (false) open incidents, their own or those of instances they called.
    #[arg(long, value_name = "BOOL")]
    has_incidents: Option<bool>,
    /// Only the instances this instance called.
    #[arg(long)]
    parent: Option<String>,
    /// Only this root instance and the instances it called, directly or further down.
    #[arg(long)]
    root: Option<String>,
    /// Only instances with a token waiting for: job, user_task, timer, message, signal, call.
    #[arg(long)]
    waiting: Option<String>,
    /// Only instances with this label: name=value.
    #[arg(long, value_name = "NAME=VALUE")]
    label: Option<String>,
    /// Only instances whose own variable has this JSON value: name=json.
    #[arg(long, value_name = "NAME=JSON")]
    variable: Option<String>,
    /// Started at or after this time (RFC 3339).
    #[arg(long)]
    started_after: Option<String>,
    #[arg(long)]
    started_before: Option<String>,
    #[arg(long)]
    ended_after: Option<String>,
    #[arg(long)]
    ended_before: Option<String>,
}

pub async fn list_instances(
    client: &Client,
    filter: InstanceListArgs,
    json_lines: bool,
) -> Result<(), Failure> {
    let InstanceListArgs {
        status,
        workflow,
        version,
        order,
        business_key,
        has_incidents,
        parent,
        root,
        waiting,
        label,
        variable,
        started_after,
        started_before,
        ended_after,
        ended_before,
    } = filter;
    let pairs = [
        ("tenant", client.tenant()),
        ("status", status),
        ("workflow", workflow),
        ("version", version.map(|v| v.to_string())),
        ("order", order),
        ("business_key", business_key),
        ("has_incidents", has_incidents.map(|b| b.to_string())),
        ("parent_id", parent),
        ("root_id", root),
        ("waiting", waiting),
        ("label", label),
        ("variable", variable),
        ("started_after", started_after),
        ("started_before", started_before),
        ("ended_after", ended_after),
        ("ended_before", ended_before),
    ];
    let path = format!("/v1/instances{}", query(&pairs));
    let columns = [
        ("ID", "id"),
        ("TENANT", "tenant"),
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
        "labels",
        "parent_id",
        "parent_element",
        "root_id",
        "run",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "started_at",
        "ended_at",
        "delete_at",
        "incidents",
        "descendant_incidents",
        "waiting",
        "tokens",
        "update_count",
        "end",
        "error",
        "cancel_reason",
        "last_send_task",
    ];
    for field in fields {
        say!("{field:<20} {}", text(&instance[field]));
    }
    say!("{:<20} {}", "next_due_at", text(&instance["next_due_at"]));
    for wait in instance["waits"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        say!("{:<20} {}", "wait", describe_wait(wait));
    }
    say!("{:<20} {}", "input", instance["input"]);
    say!("{:<20} {}", "variables", instance["variables"]);
    Ok(())
}

/// One line for a waiting token: where, on what, since when, until when,
/// and what is armed beside it.
fn describe_wait(wait: &Value) -> String {
    let mut line = format!(
        "{} ({}) since {}",
        text(&wait["element"]),
        text(&wait["kind"]),
        text(&wait["since"])
    );
    if let Some(job) = wait["job"].as_object() {
        line.push_str(&format!(
            ", job {} worker {} lease until {}",
            text(&job["key"]),
            text(&job["worker"]),
            text(&job["lease_until"])
        ));
    }
    if let Some(task) = wait["task"].as_object() {
        line.push_str(&format!(
            ", task {} assignee {}",
            text(&task["key"]),
            text(&task["assignee"])
        ));
    }
    if !wait["due_at"].is_null() {
        line.push_str(&format!(", due {}", text(&wait["due_at"])));
    }
    if let Some(message) = wait["message"].as_object() {
        line.push_str(&format!(
            ", message {} key {}",
            text(&message["name"]),
            text(&message["correlation_key"])
        ));
    }
    if let Some(child) = wait["child"].as_object() {
        line.push_str(&format!(", child {}", text(&child["instance_id"])));
    }
    let armed = wait["events"]
        .as_array()
        .into_iter()
        .chain(wait["boundary"].as_array())
        .flatten();
    for event in armed {
        let due = if event["due_at"].is_null() {
            String::new()
        } else {
            format!(" due {}", text(&event["due_at"]))
        };
        line.push_str(&format!(
            "; {} {}{due}",
            text(&event["element"]),
            text(&event["kind"])
        ));
    }
    line
}

/// Which history entries `baton instances history` shows.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only entries of this element.
    #[arg(long)]
    element: Option<String>,
    /// Only entries of elements of this BPMN type (serviceTask, userTask, ...).
    #[arg(long = "type")]
    element_type: Option<String>,
    /// Only this kind of entry: activated, completed, terminated, incident_raised,
    /// incident_resolved, job_failed, variables_set, labels_set, cancelled, ...
    #[arg(long)]
    event: Option<String>,
    /// Only this run (a number, or `current`).
    #[arg(long)]
    run: Option<String>,
}

/// The audit log, one row per entry in order: when, what, which element,
/// its iteration and run, who, and the detail that applies.
pub async fn history(
    client: &Client,
    id: &str,
    filter: HistoryArgs,
    json_lines: bool,
) -> Result<(), Failure> {
    let HistoryArgs {
        element,
        element_type,
        event,
        run,
    } = filter;
    let path = format!(
        "/v1/instances/{}/history{}",
        encode(id),
        query(&[
            ("element", element),
            ("element_type", element_type),
            ("event", event),
            ("run", run)
        ])
    );
    let mut rows: Vec<Vec<String>> = Vec::new();
    client
        .all(&path, |entry| {
            if json_lines {
                say!("{entry}");
                return;
            }
            let mut detail: Vec<String> = Vec::new();
            if let Some(job) = entry["job"].as_object() {
                detail.push(format!(
                    "job {} attempt {}",
                    text(&job["key"]),
                    text(&job["attempt"])
                ));
            }
            if let Some(task) = entry["task"].as_object() {
                detail.push(format!("task {}", text(&task["key"])));
            }
            if let Some(incident) = entry["incident"].as_object() {
                detail.push(format!(
                    "incident {} ({})",
                    text(&incident["key"]),
                    text(&incident["kind"])
                ));
            }
            for field in ["message", "retries", "due_at", "reason"] {
                if !entry[field].is_null() {
                    detail.push(format!("{field}: {}", text(&entry[field])));
                }
            }
            if entry["names"].as_array().is_some_and(|n| !n.is_empty()) {
                detail.push(format!("names: {}", entry["names"]));
            }
            rows.push(vec![
                text(&entry["at"]),
                text(&entry["event"]),
                text(&entry["element"]),
                text(&entry["element_type"]),
                text(&entry["iteration"]),
                text(&entry["run"]),
                text(&entry["actor"]),
                detail.join("; "),
            ]);
        })
        .await?;
    if !json_lines {
        table(
            &[
                "AT", "EVENT", "ELEMENT", "TYPE", "ITER", "RUN", "ACTOR", "DETAIL",
            ],
            &rows,
        );
    }
    Ok(())
}

pub async fn instance_command(
    client: &Client,
    id: &str,
    action: &str,
    body: Value,
) -> Result<(), Failure> {
    client
        .post(&format!("/v1/instances/{}/{action}", encode(id)), &body)
        .await?;
    eprintln!("{action}: {id}");
    Ok(())
}

/// Which jobs `baton jobs list` shows.
#[derive(Debug, clap::Args)]
pub struct JobListArgs {
    #[arg(long = "type")]
    job_type: Option<String>,
    #[arg(long)]
    instance: Option<String>,
    /// activatable or failed.
    #[arg(long)]
    state: Option<String>,
}

pub async fn list_jobs(
    client: &Client,
    filter: JobListArgs,
    json_lines: bool,
) -> Result<(), Failure> {
    let JobListArgs {
        job_type,
        instance,
        state,
    } = filter;
    let path = format!(
        "/v1/jobs{}",
        query(&[
            ("tenant", client.tenant()),
            ("type", job_type),
            ("instance_id", instance),
            ("state", state)
        ])
    );
    let columns = [
        ("KEY", "key"),
        ("TYPE", "type"),
        ("ELEMENT", "element_id"),
        ("RETRIES", "retries"),
        ("STATE", "state"),
        ("WORKER", "worker"),
        ("LEASE UNTIL", "lease_until"),
    ];
    list(client, &path, json_lines, &columns).await
}

/// Which user tasks `baton tasks list` shows.
#[derive(Debug, clap::Args)]
pub struct TaskListArgs {
    #[arg(long)]
    assignee: Option<String>,
    /// A candidate group.
    #[arg(long)]
    group: Option<String>,
    #[arg(long)]
    workflow: Option<String>,
    #[arg(long)]
    instance: Option<String>,
    /// Completed tasks instead of open ones.
    #[arg(long, conflicts_with = "all")]
    completed: bool,
    /// Open and completed tasks.
    #[arg(long)]
    all: bool,
    /// Tasks this principal completed (implies --completed unless --all).
    #[arg(long)]
    completed_by: Option<String>,
}

pub async fn list_tasks(
    client: &Client,
    filter: TaskListArgs,
    json_lines: bool,
) -> Result<(), Failure> {
    let TaskListArgs {
        assignee,
        group,
        workflow,
        instance,
        completed,
        all,
        completed_by,
    } = filter;
    let state = match (all, completed || completed_by.is_some()) {
        (true, _) => Some("all".to_string()),
        (false, true) => Some("completed".to_string()),
        (false, false) => None,
    };
    let pairs = [
        ("tenant", client.tenant()),
        ("assignee", assignee),
        ("candidate_group", group),
        ("workflow", workflow),
        ("instance_id", instance),
        ("state", state),
        ("completed_by", completed_by),
    ];
    let path = format!("/v1/tasks{}", query(&pairs));
    let columns = [
        ("KEY", "key"),
        ("ELEMENT", "element_id"),
        ("WORKFLOW", "workflow"),
        ("ASSIGNEE", "assignee"),
        ("GROUPS", "candidate_groups"),
        ("DUE", "due"),
        ("STATE", "state"),
        ("COMPLETED BY", "completed_by"),
    ];
    list(client, &path, json_lines, &columns).await
}

pub async fn task_command(
    client: &Client,
    key: &str,
    action: &str,
    body: Value,
) -> Result<(), Failure> {
    client
        .post(&format!("/v1/tasks/{}/{action}", encode(key)), &body)
        .await?;
    eprintln!("{action}: {key}");
    Ok(())
}

pub async fn publish(
    client: &Client,
    name: &str,
    key: Option<String>,
    variables: Map<String, Value>,
    ttl_ms: i64,
    message_id: Option<String>,
) -> Result<(), Failure> {
    let body = json!({"name": name, "correlation_key": key.unwrap_or_default(), "variables": variables, "ttl_ms": ttl_ms, "message_id": message_id, "tenant": client.tenant()});
    client.post("/v1/messages", &body).await?;
    eprintln!("published: {name}");
    Ok(())
}

pub async fn signal(
    client: &Client,
    name: &str,
    variables: Map<String, Value>,
) -> Result<(), Failure> {
    client
        .post(
            "/v1/signals",
            &json!({"name": name, "variables": variables, "tenant": client.tenant()}),
        )
        .await?;
    eprintln!("broadcast: {name}");
    Ok(())
}

pub async fn evaluate_conditionals(client: &Client, variables: Map<String, Value>, workflow: Option<String>) -> Result<(), Failure> {
    let answer = client.post("/v1/conditionals/evaluate", &json!({"variables": variables, "workflow": workflow, "tenant": client.tenant()})).await?;
    let instances = answer["instances"].as_array().cloned().unwrap_or_default();
    for instance in &instances {
        println!("{}\t{} v{}\t{}", instance["id"].as_str().unwrap_or_default(), instance["workflow"].as_str().unwrap_or_default(), instance["version"], instance["start_event"].as_str().unwrap_or_default());
    }
    eprintln!("started: {}", instances.len());
    Ok(())
}

pub async fn list_incidents(
    client: &Client,
    state: &str,
    instance: Option<String>,
    descendants: bool,
    workflow: Option<String>,
    json_lines: bool,
) -> Result<(), Failure> {
    let pairs = [
        ("tenant", client.tenant()),
        ("state", Some(state.to_string())),
        ("instance_id", instance),
        ("descendants", descendants.then(|| "true".to_string())),
        ("workflow", workflow),
    ];
    let path = format!("/v1/incidents{}", query(&pairs));
    let columns = [
        ("KEY", "key"),
        ("INSTANCE", "instance_id"),
        ("ELEMENT", "element_id"),
        ("KIND", "kind"),
        ("STATE", "state"),
        ("RESOLVED BY", "resolved_by"),
        ("MESSAGE", "message"),
    ];
    list(client, &path, json_lines, &columns).await
}

pub async fn list_timers(
    client: &Client,
    instance: Option<String>,
    due_before: Option<String>,
    json_lines: bool,
) -> Result<(), Failure> {
    let path = format!(
        "/v1/timers{}",
        query(&[
            ("tenant", client.tenant()),
            ("instance_id", instance),
            ("due_before", due_before)
        ])
    );
    let columns = [
        ("KEY", "key"),
        ("WORKFLOW", "workflow"),
        ("ELEMENT", "element"),
        ("KIND", "kind"),
        ("DUE", "due_at"),
        ("REPEATS LEFT", "repetitions_left"),
    ];
    list(client, &path, json_lines, &columns).await
}

pub async fn reschedule_timer(
    client: &Client,
    key: &str,
    due_at: &str,
    reason: Option<String>,
) -> Result<(), Failure> {
    client
        .post(
            &format!("/v1/timers/{}/reschedule", encode(key)),
            &json!({"due_at": due_at, "reason": reason}),
        )
        .await?;
    eprintln!("rescheduled: {key} to {due_at}");
    Ok(())
}

pub async fn list_messages(
    client: &Client,
    undelivered: bool,
    name: Option<String>,
    json_lines: bool,
) -> Result<(), Failure> {
    let state = Some(
        if undelivered {
            "undelivered"
        } else {
            "buffered"
        }
        .to_string(),
    );
    let path = format!(
        "/v1/messages{}",
        query(&[
            ("tenant", client.tenant()),
            ("state", state),
            ("name", name)
        ])
    );
    let columns = [
        ("SEQ", "seq"),
        ("NAME", "name"),
        ("KEY", "correlation_key"),
        ("PUBLISHED", "published_at"),
        ("EXPIRES", "expires_at"),
        ("TAKEN BY", "correlated_to"),
    ];
    list(client, &path, json_lines, &columns).await
}

pub async fn list_subscriptions(
    client: &Client,
    instance: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    json_lines: bool,
) -> Result<(), Failure> {
    let path = format!(
        "/v1/subscriptions{}",
        query(&[
            ("tenant", client.tenant()),
            ("instance_id", instance),
            ("kind", kind),
            ("name", name)
        ])
    );
    let columns = [
        ("INSTANCE", "instance_id"),
        ("ELEMENT", "element"),
        ("KIND", "kind"),
        ("NAME", "name"),
        ("KEY", "correlation_key"),
        ("SINCE", "opened_at"),
    ];
    list(client, &path, json_lines, &columns).await
}

pub async fn job_retries(
    client: &Client,
    key: &str,
    retries: u32,
    reason: Option<String>,
) -> Result<(), Failure> {
    client
        .post(
            &format!("/v1/jobs/{}/retries", encode(key)),
            &json!({"retries": retries, "reason": reason}),
        )
        .await?;
    eprintln!("retries: {key} has {retries}");
    Ok(())
}

pub async fn resolve_incident(
    client: &Client,
    key: &str,
    reason: Option<String>,
) -> Result<(), Failure> {
    client
        .post(
            &format!("/v1/incidents/{}/resolve", encode(key)),
            &json!({"reason": reason}),
        )
        .await?;
    eprintln!("resolved: {key}");
    Ok(())
}
