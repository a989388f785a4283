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
//! the job's lease ends is killed, and the job failed. What a run decided is
//! sent again, every half second, while the server cannot take it (down,
//! restarting, 503), until the job's lease ends: work done is not redone.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::client::{encode, Client, Failure};

/// How long to wait before asking again when the server cannot be reached.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// How much of stderr a failure message keeps.
const STDERR_LINES: usize = 10;
const STDERR_BYTES: usize = 4096;

pub struct WorkerOptions {
    pub job_type: String,
    pub name: String,
    pub concurrency: usize,
    pub lease_ms: i64,
    pub command: Vec<String>,
    /// Stop after this many jobs (for scripts and tests); run forever without it.
    pub max_jobs: Option<usize>,
}

pub async fn run(client: Client, options: WorkerOptions) -> Result<(), Failure> {
    let client = Arc::new(client);
    let options = Arc::new(options);
    let slots = Arc::new(Semaphore::new(options.concurrency));
    let mut handled = 0usize;
    eprintln!("baton worker: taking '{}' jobs as '{}', {} at a time", options.job_type, options.name, options.concurrency);
    loop {
        if options.max_jobs.is_some_and(|max| handled >= max) {
            break;
        }
        // Ask only for as many jobs as there are free slots.
        let first = slots.clone().acquire_owned().await.map_err(|_| Failure("the worker stopped".into()))?;
        let mut permits = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        let mut wanted = permits.len();
        if let Some(max) = options.max_jobs {
            wanted = wanted.min(max - handled);
        }
        let mut body = json!({"type": options.job_type, "worker": options.name, "max_jobs": wanted, "lease_ms": options.lease_ms, "timeout_ms": 10000});
        if let Some(tenant) = client.tenant() {
            body["tenants"] = json!([tenant]);
        }
        let activated = tokio::select! {
            answer = client.post("/v1/jobs/activate", &body) => answer,
            _ = tokio::signal::ctrl_c() => break,
        };
        let activated = match activated {
            Ok(activated) => activated,
            Err(failure) => {
                // The server may be restarting: keep trying, a little later.
                eprintln!("baton worker: {failure}; retrying");
                drop(permits);
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let jobs = activated["jobs"].as_array().cloned().unwrap_or_default();
        for job in jobs {
            let permit = permits.pop().expect("no more jobs than free slots were asked for");
            handled += 1;
            let (client, options) = (client.clone(), options.clone());
            tokio::spawn(async move {
                if let Err(failure) = handle(&client, &options, &job).await {
                    eprintln!("baton worker: job {}: {failure}", job["key"].as_str().unwrap_or("?"));
                }
                drop(permit);
            });
        }
    }
    // Wait for the jobs in hand.
    let _ = slots.acquire_many(options.concurrency as u32).await;
    Ok(())
}

async fn handle(client: &Client, options: &WorkerOptions, job: &Value) -> Result<(), Failure> {
    let key = job["key"].as_str().unwrap_or_default().to_string();
    // The lease runs from the activation: until it ends, the job is this worker's to finish.
    let lease_ends = tokio::time::Instant::now() + std::time::Duration::from_millis(u64::try_from(options.lease_ms).unwrap_or(0));
    let outcome = run_command(options, job).await;
    let (path, body) = match outcome {
        // `{"error": {"code": ...}}`: a BPMN error for the process to catch.
        Ok(Value::Object(printed)) if printed.len() == 1 && printed.get("error").is_some_and(|e| e["code"].is_string()) => {
            let error = &printed["error"];
            let body = json!({
                "worker": options.name,
                "lease": job["lease"],
                "code": error["code"],
                "message": error["message"].as_str().unwrap_or_default(),
                "variables": error.get("variables").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({})),
            });
            (format!("/v1/jobs/{}/error", encode(&key)), body)
        }
        // `{"result": {"type": "adHocSubProcess", ...}, "variables": {...}}`: an ad-hoc subprocess's decision.
        Ok(Value::Object(printed))
            if printed.get("result").is_some_and(|r| r["type"] == "adHocSubProcess") && printed.keys().all(|k| k == "result" || k == "variables") =>
        {
            let variables = printed.get("variables").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({}));
            let body = json!({"worker": options.name, "lease": job["lease"], "variables": variables, "result": printed["result"]});
            (format!("/v1/jobs/{}/complete", encode(&key)), body)
        }
        Ok(variables) => (format!("/v1/jobs/{}/complete", encode(&key)), json!({"worker": options.name, "lease": job["lease"], "variables": variables})),
        Err(message) => {
            let retries = job["retries"].as_u64().unwrap_or(1).saturating_sub(1);
            eprintln!("baton worker: job {key} failed ({retries} retries left): {message}");
            (format!("/v1/jobs/{}/fail", encode(&key)), json!({"worker": options.name, "lease": job["lease"], "retries": retries, "message": message}))
        }
    };
    deliver(client, &key, &path, &body, lease_ends).await
}

/// Sends what the command's run decided until the server has it: work done
/// is not dropped because the server was restarting. Until the lease ends
/// the job is this worker's, so a resent completion cannot meet another
/// worker's; after it, the job may be with another worker and this one gives
/// up. A completion that went through but whose answer was lost is found done
/// when resent (the job is gone), and counts as delivered.
async fn deliver(client: &Client, key: &str, path: &str, body: &Value, lease_ends: tokio::time::Instant) -> Result<(), Failure> {
    let mut resent = false;
    loop {
        match client.post_answered(path, body).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(failure)) if resent && failure.0.starts_with("job-not-found") => return Ok(()),
            Ok(Err(failure)) => return Err(failure),
            Err(failure) => {
                if tokio::time::Instant::now() + RETRY_AFTER >= lease_ends {
                    return Err(Failure(format!("{}; the job's lease ends, so it may go to another worker: given up", failure.0)));
                }
                eprintln!("baton worker: job {key}: {}; sending again", failure.0);
                resent = true;
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Runs the command for one job: its variables in, a JSON object out.
async fn run_command(options: &WorkerOptions, job: &Value) -> Result<Value, String> {
    let (program, args) = options.command.split_first().ok_or("no command to run")?;
    let mut command = tokio::process::Command::new(program);
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
