//! Jobs in bulk, for workers that do many: a stream that pushes jobs as they
//! are created (`POST /v1/jobs/stream`), and one request that reports many
//! jobs' outcomes (`POST /v1/jobs/report`). The one-job routes are in
//! [`crate::routes`]; these share their checks and their answers.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use engine::Variables;
use runtime::{ActivatedJob, Claim, Command, JobStream};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::access::Principal;
use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller};
use crate::limits::PollPermit;
use crate::routes::{call, check_taking, claim, ok, Answer, AppState, MAX_WAIT_MS};

/// An empty line this often on a quiet stream: the worker knows the server
/// is there, and the server learns soon that a worker has gone.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// The most jobs one stream may hold unreported, and one report may carry.
pub(crate) const MAX_BATCH: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    #[serde(rename = "type")]
    pub(crate) job_type: String,
    pub(crate) worker: String,
    /// Jobs handed out and not yet reported, at most.
    #[serde(deserialize_with = "crate::extract::whole::required")]
    pub(crate) window: usize,
    #[serde(default = "crate::routes::default_lease", deserialize_with = "crate::extract::whole::required")]
    pub(crate) lease_ms: i64,
    /// End the stream after this many jobs.
    #[serde(default, deserialize_with = "crate::extract::whole::optional")]
    pub(crate) limit: Option<u64>,
    pub(crate) tenants: Option<Vec<String>>,
}

/// A stream of jobs for a caller: the checks every way of taking jobs makes,
/// and one of the caller's long-poll places, held for as long as the stream is open.
pub(crate) fn open(state: &AppState, caller: Option<&Principal>, request: StreamRequest) -> Result<(mpsc::Receiver<Result<ActivatedJob, runtime::Error>>, PollPermit), ApiError> {
    let tenants = check_taking(caller, &request.job_type, &request.worker, ("window", request.window), request.lease_ms, request.tenants)?;
    if request.limit == Some(0) {
        return Err(ApiError::new("request-invalid", "limit must be at least 1 (leave it out for no limit)"));
    }
    let client = caller.map_or_else(|| request.worker.clone(), |c| c.name.clone());
    let place = state.limits.poll(&client)?;
    let asked = JobStream { job_type: request.job_type, worker: request.worker, window: request.window, lease_ms: request.lease_ms, tenants, limit: request.limit };
    Ok((state.handle.stream_jobs(asked), place))
}

/// A stream's line: the job as activation answers it.
fn line_of(job: &runtime::ActivatedJob) -> Result<String, ApiError> {
    let mut line = serde_json::to_string(&crate::routes::ActivatedJson::of(job))
        .map_err(|e| ApiError::new("engine-fault", format!("job {} could not be written as JSON: {e}", job.job.key)))?;
    line.push('\n');
    Ok(line)
}

/// `POST /v1/jobs/stream`: one job per line (newline-delimited JSON, as
/// activation answers each), as they are created, within the window; an
/// empty line every ten seconds when there is none; a last line
/// `{"problem": {...}}` if the stream fails.
pub async fn stream_jobs(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<StreamRequest>) -> Answer {
    let window = request.window;
    let (mut jobs, place) = open(&state, caller.as_ref(), request)?;
    let (lines, body) = mpsc::channel::<Result<String, Infallible>>(window);
    tokio::spawn(async move {
        let _place = place;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let line = tokio::select! {
                job = jobs.recv() => match job.map(|job| job.map_err(ApiError::from).and_then(|job| line_of(&job))) {
                    Some(Ok(line)) => line,
                    Some(Err(error)) => {
                        let (_, problem) = error.problem();
                        let _ = lines.send(Ok(format!("{}\n", json!({ "problem": problem })))).await;
                        break;
                    }
                    None => break,
                },
                _ = heartbeat.tick() => "\n".to_string(),
                // The worker hung up: the jobs' receiver goes, and with it the stream.
                () = lines.closed() => break,
            };
            if lines.send(Ok(line)).await.is_err() {
                break;
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson"), (header::CACHE_CONTROL, "no-store")], body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    worker: String,
    jobs: Vec<JobReport>,
}

/// One job's outcome: exactly one of `complete`, `fail` and `error`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobReport {
    key: String,
    lease: Option<String>,
    complete: Option<Completion>,
    fail: Option<Failure>,
    error: Option<Thrown>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    #[serde(default)]
    pub(crate) variables: Variables,
    pub(crate) result: Option<engine::JobResult>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    #[serde(deserialize_with = "crate::extract::whole::required")]
    pub(crate) retries: u32,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default, deserialize_with = "crate::extract::whole::required")]
    pub(crate) backoff_ms: i64,
    #[serde(default)]
    pub(crate) variables: Variables,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thrown {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) variables: Variables,
}

/// The command each outcome is, whichever route brought it (one job's, or a
/// report of many), with the checks it needs first.
impl Completion {
    pub(crate) fn command(self, key: String, claim: Claim) -> Command {
        Command::CompleteJob { key, claim, variables: self.variables, result: self.result }
    }
}

impl Failure {
    pub(crate) fn command(self, key: String, claim: Claim) -> Result<Command, ApiError> {
        if !(0..=MAX_WAIT_MS).contains(&self.backoff_ms) {
            return Err(ApiError::new("request-invalid", format!("backoff_ms must be between 0 and {MAX_WAIT_MS} (ten years)")));
        }
        Ok(Command::FailJob { key, claim, retries: self.retries, message: self.message, backoff_ms: self.backoff_ms, variables: self.variables })
    }
}

impl Thrown {
    pub(crate) fn command(self, key: String, claim: Claim) -> Result<Command, ApiError> {
        if self.code.is_empty() {
            return Err(ApiError::new("request-invalid", "code is empty: name the BPMN error"));
        }
        Ok(Command::ThrowError { key, claim, code: self.code, message: self.message, variables: self.variables })
    }
}

/// `POST /v1/jobs/report`: many jobs' outcomes in one request, applied as
/// if each had been sent alone (each its own command, committed together
/// where the commit loop can). The answer lists each job's outcome in the
/// request's order: `{"key", "ok": true}` or `{"key", "ok": false,
/// "problem"}`. A malformed entry refuses the whole request, before any is
/// applied.
pub async fn report_jobs(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Body(request): Body<ReportRequest>) -> Answer {
    if request.worker.is_empty() {
        return Err(ApiError::new("request-invalid", "worker must not be empty: name yourself"));
    }
    if request.jobs.is_empty() || request.jobs.len() > MAX_BATCH {
        return Err(ApiError::new("request-invalid", format!("jobs must hold between 1 and {MAX_BATCH} outcomes")));
    }
    let mut commands = Vec::with_capacity(request.jobs.len());
    for (index, report) in request.jobs.into_iter().enumerate() {
        let claim = claim(caller.as_ref(), Some(request.worker.clone()), report.lease, false)?;
        let key = report.key;
        let in_entry = |error: ApiError| ApiError::new("request-invalid", format!("jobs[{index}]: {}", error.detail));
        let command = match (report.complete, report.fail, report.error) {
            (Some(done), None, None) => done.command(key.clone(), claim),
            (None, Some(failed), None) => failed.command(key.clone(), claim).map_err(in_entry)?,
            (None, None, Some(thrown)) => thrown.command(key.clone(), claim).map_err(in_entry)?,
            _ => return Err(ApiError::new("request-invalid", format!("jobs[{index}] ({key}): give exactly one of complete, fail and error"))),
        };
        commands.push((key, command));
    }
    // Every command is queued before any is awaited, so the commit loop can take them in one turn.
    let worker = request.worker.as_str();
    let outcomes = futures_util::future::join_all(commands.into_iter().map(|(key, command)| {
        let (state, actor) = (&state, &actor);
        async move { (key, call(state, actor, Some(worker), None, command).await) }
    }))
    .await;
    let jobs: Vec<Value> = outcomes
        .into_iter()
        .map(|(key, outcome)| match outcome {
            Ok(_) => json!({ "key": key, "ok": true }),
            Err(error) => json!({ "key": key, "ok": false, "problem": error.problem().1 }),
        })
        .collect();
    ok(json!({ "jobs": jobs }))
}
