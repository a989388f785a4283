//! `baton worker --type T -- CMD ARGS...`: a job worker in any language.
//!
//! For each job, CMD runs with the job's variables as JSON on stdin and
//! `BATON_JOB_KEY`, `BATON_JOB_TYPE`, `BATON_INSTANCE_ID`, `BATON_ELEMENT_ID`,
//! the task's headers (`BATON_HEADERS` as a JSON object, and each as
//! `BATON_HEADER_<NAME>`, the name upper-cased with other characters as `_`)
//! and its `zeebe:properties` (`BATON_PROPERTIES`) in its environment. Exit 0
//! completes the job with the JSON object CMD printed (nothing printed: no
//! variables), or, when it printed `{"error": {"code": "...", "message": "...",
//! "variables": {...}}}`, throws that BPMN error; for an ad-hoc subprocess's
//! job, `{"result": {"type": "adHocSubProcess", "activateElements": [...]},
//! "variables": {...}}` completes it with that decision; any other exit fails it with
//! the last lines of stderr and one retry fewer. A command still running when
//! the job's lease ends is killed, and the job failed. CMD is run as it is
//! given, never through a shell.
//!
//! Jobs come on one stream (`POST /v1/jobs/stream`) whose window is the
//! worker's concurrency, and outcomes go back together (`POST
//! /v1/jobs/report`): all those that finished while the last report was on
//! its way, in one request. What a run decided is sent again, every half
//! second, while the server cannot take it (down, restarting, 503), until
//! the job's lease ends: work done is not redone.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::client::{Client, Failure};

/// How long to wait before asking again when the server cannot be reached.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// How much of stderr a failure message keeps.
const STDERR_LINES: usize = 10;
const STDERR_BYTES: usize = 4096;

/// The most outcomes, and about the most bytes, one report carries (the server takes 1 000 and 1 MiB).
const REPORT_JOBS: usize = 1000;
const REPORT_BYTES: usize = 900 * 1024;

pub struct WorkerOptions {
    pub job_type: String,
    pub name: String,
    pub concurrency: usize,
    pub lease_ms: i64,
    pub command: Vec<String>,
    /// Stop after this many jobs (for scripts and tests); run forever without it.
    pub max_jobs: Option<usize>,
}

/// What one job's run decided, as an entry of a report.
struct Outcome {
    key: String,
    entry: Value,
    /// Until then the job is this worker's to report.
    lease_ends: Instant,
    /// Sent before without an answer: a job found gone was done by that send.
    resent: bool,
}

pub async fn run(client: Client, mut options: WorkerOptions) -> Result<(), Failure> {
    // Looked up on PATH once, not on every job's exec.
    if let Some(found) = options.command.first().and_then(|program| on_path(program)) {
        options.command[0] = found;
    }
    let client = Arc::new(client);
    let options = Arc::new(options);
    let (outcomes, decided) = mpsc::unbounded_channel();
    let reporter = tokio::spawn(report_all(client.clone(), options.name.clone(), decided));
    // The stream's window keeps jobs in hand to the concurrency; after a new
    // stream is opened, jobs of the last one may still run, and these slots
    // keep the commands running at once within it.
    let slots = Arc::new(Semaphore::new(options.concurrency));
    let mut running = tokio::task::JoinSet::new();
    let mut received = 0usize;
    eprintln!("baton worker: taking '{}' jobs as '{}', {} at a time", options.job_type, options.name, options.concurrency);
    'streams: while options.max_jobs.is_none_or(|max| received < max) {
        let mut body = json!({"type": options.job_type, "worker": options.name, "window": options.concurrency, "lease_ms": options.lease_ms});
        if let Some(max) = options.max_jobs {
            body["limit"] = json!(max - received);
        }
        if let Some(tenant) = client.tenant() {
            body["tenants"] = json!([tenant]);
        }
        let opened = tokio::select! {
            opened = client.open_stream("/v1/jobs/stream", &body) => opened,
            _ = tokio::signal::ctrl_c() => break,
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(failure) => {
                // The server may be restarting: keep trying, a little later.
                eprintln!("baton worker: {failure}; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let mut buffer = Vec::new();
        loop {
            let chunk = tokio::select! {
                chunk = stream.chunk() => chunk,
                _ = tokio::signal::ctrl_c() => break 'streams,
            };
            match chunk {
                Ok(Some(bytes)) => buffer.extend_from_slice(&bytes),
                // The limit was reached, or the server is stopping.
                Ok(None) => continue 'streams,
                Err(error) => {
                    eprintln!("baton worker: the job stream was cut ({error}); opening another");
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue 'streams;
                }
            }
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if line.trim_ascii().is_empty() {
                    continue; // a heartbeat
                }
                let job: Value = match serde_json::from_slice(&line) {
                    Ok(job) => job,
                    Err(error) => {
                        eprintln!("baton worker: a line of the job stream is not JSON ({error}); opening another");
                        continue 'streams;
                    }
                };
                if let Some(problem) = job.get("problem") {
                    eprintln!("baton worker: the server ended the job stream: {}: {}", problem["code"].as_str().unwrap_or("?"), problem["detail"].as_str().unwrap_or(""));
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue 'streams;
                }
                received += 1;
                let (options, outcomes, slots) = (options.clone(), outcomes.clone(), slots.clone());
                running.spawn(async move {
                    let Ok(_slot) = slots.acquire_owned().await else { return };
                    let _ = outcomes.send(handle(&options, &job).await);
                });
            }
            while running.try_join_next().is_some() {}
        }
    }
    // Finish the jobs in hand, and report them.
    while running.join_next().await.is_some() {}
    drop(outcomes);
    reporter.await.map_err(|_| Failure("the worker's reporter stopped".into()))
}

/// Runs a job's command and says what it decided.
async fn handle(options: &WorkerOptions, job: &Value) -> Outcome {
    let key = job["key"].as_str().unwrap_or_default().to_string();
    // The lease runs from the activation: until it ends, the job is this worker's to finish.
    let lease_ends = Instant::now() + std::time::Duration::from_millis(u64::try_from(options.lease_ms).unwrap_or(0));
    let lease = &job["lease"];
    let entry = match run_command(options, job).await {
        // `{"error": {"code": ...}}`: a BPMN error for the process to catch.
        Ok(Value::Object(printed)) if printed.len() == 1 && printed.get("error").is_some_and(|e| e["code"].as_str().is_some_and(|c| !c.is_empty())) => {
            let error = &printed["error"];
            let variables = error.get("variables").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({}));
            json!({"key": key, "lease": lease, "error": {"code": error["code"], "message": error["message"].as_str().unwrap_or_default(), "variables": variables}})
        }
        // `{"result": {"type": "adHocSubProcess", ...}, "variables": {...}}`: an ad-hoc subprocess's decision.
        Ok(Value::Object(printed))
            if printed.get("result").is_some_and(|r| r["type"] == "adHocSubProcess") && printed.keys().all(|k| k == "result" || k == "variables") =>
        {
            let variables = printed.get("variables").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({}));
            json!({"key": key, "lease": lease, "complete": {"variables": variables, "result": printed["result"]}})
        }
        Ok(variables) => json!({"key": key, "lease": lease, "complete": {"variables": variables}}),
        Err(message) => {
            let retries = job["retries"].as_u64().unwrap_or(1).saturating_sub(1);
            eprintln!("baton worker: job {key} failed ({retries} retries left): {message}");
            json!({"key": key, "lease": lease, "fail": {"retries": retries, "message": message}})
        }
    };
    Outcome { key, entry, lease_ends, resent: false }
}

/// Sends outcomes as they are decided, all those waiting in one request,
/// until the server has each: work done is not dropped because the server
/// was restarting. Until its lease ends a job is this worker's, so a resent
/// outcome cannot meet another worker's; after it, the job may be with
/// another worker and this one gives up. A completion that went through but
/// whose answer was lost is found done when resent (the job is gone), and
/// counts as delivered.
async fn report_all(client: Arc<Client>, worker: String, mut decided: mpsc::UnboundedReceiver<Outcome>) {
    let mut waiting: VecDeque<Outcome> = VecDeque::new();
    // After the server refused a whole report, its outcomes go one at a time, so that only a bad one is refused.
    let mut alone = 0usize;
    loop {
        if waiting.is_empty() {
            match decided.recv().await {
                Some(outcome) => waiting.push_back(outcome),
                None => return,
            }
        }
        while let Ok(outcome) = decided.try_recv() {
            waiting.push_back(outcome);
        }
        let most = if alone > 0 { 1 } else { REPORT_JOBS };
        alone = alone.saturating_sub(1);
        let mut body = format!("{{\"worker\":{},\"jobs\":[", Value::String(worker.clone()));
        let mut batch = Vec::new();
        while let Some(outcome) = waiting.front() {
            let entry = outcome.entry.to_string();
            if !batch.is_empty() && (batch.len() >= most || body.len() + entry.len() > REPORT_BYTES) {
                break;
            }
            if !batch.is_empty() {
                body.push(',');
            }
            body.push_str(&entry);
            batch.extend(waiting.pop_front());
        }
        body.push_str("]}");
        match client.post_text_answered("/v1/jobs/report", body).await {
            Ok(Ok(answer)) => {
                let results = answer["jobs"].as_array().map(Vec::as_slice).unwrap_or_default();
                for (outcome, result) in batch.iter().zip(results) {
                    if result["ok"] == true {
                        continue;
                    }
                    let code = result["problem"]["code"].as_str().unwrap_or("?");
                    if outcome.resent && code == "job-not-found" {
                        continue;
                    }
                    eprintln!("baton worker: job {}: {code}: {}", outcome.key, result["problem"]["detail"].as_str().unwrap_or(""));
                }
            }
            Ok(Err(failure)) if batch.len() > 1 => {
                eprintln!("baton worker: a report of {} jobs was refused ({failure}); sending them one at a time", batch.len());
                alone = batch.len();
                for outcome in batch.into_iter().rev() {
                    waiting.push_front(outcome);
                }
            }
            Ok(Err(failure)) => eprintln!("baton worker: job {}: {failure}", batch.first().map_or("?", |o| o.key.as_str())),
            Err(failure) => {
                let now = Instant::now();
                let mut kept = 0;
                for mut outcome in batch.into_iter().rev() {
                    if now + RETRY_AFTER >= outcome.lease_ends {
                        eprintln!("baton worker: job {}: {}; the job's lease ends, so it may go to another worker: given up", outcome.key, failure.0);
                    } else {
                        outcome.resent = true;
                        waiting.push_front(outcome);
                        kept += 1;
                    }
                }
                if kept > 0 {
                    eprintln!("baton worker: {}; sending {kept} outcome(s) again", failure.0);
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Runs the command for one job: its variables in, a JSON object out.
async fn run_command(options: &WorkerOptions, job: &Value) -> Result<Value, String> {
    let (program, args) = options.command.split_first().ok_or("no command to run")?;
    let mut command = tokio::process::Command::new(program);
    // The worker's own environment, read once: each job adds its variables to it.
    static INHERITED: std::sync::OnceLock<Vec<(std::ffi::OsString, std::ffi::OsString)>> = std::sync::OnceLock::new();
    command.env_clear().envs(INHERITED.get_or_init(|| std::env::vars_os().collect()).iter().map(|(k, v)| (k, v)));
    for (name, value) in job["headers"].as_object().into_iter().flatten() {
        let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        command.env(format!("BATON_HEADER_{name}"), value.as_str().unwrap_or_default());
    }
    let mut child = command
        .args(args)
        .env("BATON_HEADERS", job["headers"].as_object().map_or_else(|| "{}".to_string(), |h| Value::Object(h.clone()).to_string()))
        .env("BATON_PROPERTIES", job["properties"].as_object().map_or_else(|| "{}".to_string(), |p| Value::Object(p.clone()).to_string()))
        .env("BATON_JOB_KEY", job["key"].as_str().unwrap_or_default())
        .env("BATON_JOB_TYPE", job["type"].as_str().unwrap_or_default())
        .env("BATON_INSTANCE_ID", job["instance_id"].as_str().unwrap_or_default())
        .env("BATON_ELEMENT_ID", job["element_id"].as_str().unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let input = job["variables"].to_string();
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    // The command may run for most of the lease: the rest is for reporting its
    // failure while the lease still holds (after it, the job may be with another worker).
    let deadline = std::time::Duration::from_millis(u64::try_from(options.lease_ms).unwrap_or(0) * 9 / 10);
    let output = match tokio::time::timeout(deadline, child.wait_with_output()).await {
        Ok(output) => output.map_err(|e| format!("{program} could not be waited for: {e}"))?,
        Err(_) => return Err(format!("{program} was still running near the end of the job's lease of {} ms; it was stopped", options.lease_ms)),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let mut tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
        if tail.len() > STDERR_BYTES {
            let cut = (tail.len() - STDERR_BYTES..tail.len()).find(|&i| tail.is_char_boundary(i)).unwrap_or(tail.len());
            tail = tail[cut..].to_string();
        }
        let status = output.status.code().map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
        return Err(if tail.is_empty() { format!("{program} ended with {status}") } else { format!("{program} ended with {status}: {tail}") });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stdout = stdout.trim();
    if stdout.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(stdout) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(format!("{program} succeeded but printed something that is not a JSON object: {}", &stdout[..stdout.len().min(200)])),
    }
}

/// Where a program named without a `/` is on PATH, as `execvp` would find
/// it: the first executable file of that name.
fn on_path(program: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return None;
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }).and_then(|found| found.into_os_string().into_string().ok())
}
