//! The router, called without a socket: happy paths, every kind of bad
//! input, the OpenAPI document, and the error pages.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use runtime::{ManualClock, Options, SequentialIds, Service};
use serde_json::{json, Value};
use store::MemoryStore;
use tower::ServiceExt;

const T0: i64 = 1_767_225_600_000;

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <process id="order" isExecutable="true">
    <startEvent id="start"/>
    <serviceTask id="charge"><extensionElements><zeebe:taskDefinition type="charge"/></extensionElements></serviceTask>
    <userTask id="approve"><extensionElements><zeebe:assignmentDefinition candidateGroups="managers"/></extensionElements></userTask>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <sequenceFlow id="f2" sourceRef="charge" targetRef="approve"/>
    <sequenceFlow id="f3" sourceRef="approve" targetRef="end"/>
  </process>
</definitions>"#;

/// One service task of type `bulk`: jobs for the bulk routes.
const BULK: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="b">
  <process id="bulk" isExecutable="true">
    <startEvent id="start"/>
    <serviceTask id="work"><extensionElements><zeebe:taskDefinition type="bulk"/></extensionElements></serviceTask>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
  </process>
</definitions>"#;

/// The dish decision of the scenarios (a UNIQUE decision table).
const DISH: &str = include_str!("../../../tests/scenarios/decisions.dmn");

mod camunda;
mod contract;
mod forms;
mod tenants;
mod zeebe;

/// The store the API tests run on: memory, unless `BATON_TEST_STORE` says
/// `sqlite` (a new file) or `postgres` (a new database on the test server,
/// as `scripts/test` runs them a second time).
fn test_store(scratch: &std::path::Path) -> Arc<dyn store::Store> {
    match std::env::var("BATON_TEST_STORE").as_deref() {
        Ok("postgres") => Arc::new(store_postgres::PostgresStore::open(&store_postgres::testing::fresh_database()).unwrap()),
        Ok("sqlite") => Arc::new(store_sqlite::SqliteStore::open(&scratch.join("api.db")).unwrap()),
        Ok("memory") | Err(_) => Arc::new(MemoryStore::new()),
        Ok(other) => panic!("BATON_TEST_STORE={other}: use memory, sqlite or postgres"),
    }
}

struct App {
    router: Router,
    clock: Arc<ManualClock>,
    service: Option<Service>,
    /// The OpenAPI document every exchange is checked against.
    document: Value,
    /// The documented operations that answered with success, as `method template`.
    covered: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// The lease of each job activated through `send_as`, by key.
    leases: std::sync::Mutex<std::collections::HashMap<String, Value>>,
    /// Where a file store keeps its files; dropped after the service (fields drop in order).
    _scratch: tempfile::TempDir,
}

impl App {
    fn new() -> App {
        App::on(test_store)
    }

    /// An app on the store `make` makes (called off the async threads:
    /// PostgreSQL's client blocks on a runtime of its own).
    /// An app on the store `make` opens; a file store keeps its files in `scratch`,
    /// a folder of the app's own that goes when the app does.
    fn on(make: fn(scratch: &std::path::Path) -> Arc<dyn store::Store>) -> App {
        let clock = Arc::new(ManualClock::new(T0));
        let started = clock.clone();
        let scratch = tempfile::Builder::new().prefix("baton-api-test-").tempdir().unwrap();
        let folder = scratch.path().to_path_buf();
        let service = std::thread::spawn(move || {
            Service::start(make(&folder), started, Box::new(SequentialIds::default()), Options::default())
        })
        .join()
        .unwrap()
        .unwrap();
        App {
            router: api::router(service.handle.clone()),
            clock,
            service: Some(service),
            document: api::openapi(),
            covered: Default::default(),
            leases: Default::default(),
            _scratch: scratch,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, String, Value) {
        self.send_as(None, method, path, body).await
    }

    /// A request (on behalf of `actor`, when given), checked with its answer against the OpenAPI document.
    async fn send_as(
        &self,
        actor: Option<&str>,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, String, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(actor) = actor {
            request = request.header("x-baton-actor", actor);
        }
        let request = request
            .body(body.clone().map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if content_type.starts_with("application/x-ndjson") {
            // A stream's lines (a stream with a limit ends), heartbeats left out.
            let lines = String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
            Value::Array(lines)
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if path.starts_with("/v1/jobs/activate") || path.starts_with("/v1/jobs/stream") {
            let jobs = if path.starts_with("/v1/jobs/stream") { &value } else { &value["jobs"] };
            for job in jobs.as_array().into_iter().flatten() {
                self.leases.lock().unwrap().insert(
                    job["key"].as_str().unwrap_or_default().to_string(),
                    job["lease"].clone(),
                );
            }
        }
        if let Some(operation) = contract::exchange(
            &self.document,
            method,
            path,
            body.as_deref(),
            status.as_u16(),
            &content_type,
            &value,
        ) {
            self.covered.lock().unwrap().insert(operation);
        }
        (status, content_type, value)
    }

    async fn json(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, value) = self.send(method, path, Some(body.to_string())).await;
        (status, value)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_runs_through_the_api() {
    let app = App::new();
    let (status, deployed) = app
        .json(
            "POST",
            "/v1/workflows",
            json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    assert_eq!(
        deployed["workflows"],
        json!([{"workflow": "order", "tenant": "default", "version": 1, "created": true}])
    );
    let (_, again) = app
        .json(
            "POST",
            "/v1/workflows",
            json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]}),
        )
        .await;
    assert_eq!(
        again["workflows"][0]["created"],
        json!(false),
        "identical content keeps its version"
    );
    let (status, started) = app
        .json(
            "POST",
            "/v1/instances",
            json!({"workflow": "order", "variables": {"amount": 5}, "business_key": "o-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = started["id"].as_str().unwrap().to_string();
    let (status, activated) = app
        .json(
            "POST",
            "/v1/jobs/activate",
            json!({"type": "charge", "worker": "w1", "max_jobs": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    let job = &activated["jobs"][0];
    assert_eq!(
        (
            job["element_id"].clone(),
            job["variables"]["amount"].clone()
        ),
        (json!("charge"), json!(5))
    );
    // The job's fields, then what its worker needs, in this order (the
    // answer is written from the row, not built as a map first).
    let fields: Vec<&str> = job.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "key", "tenant", "type", "instance_id", "workflow", "element_id", "retries", "state", "worker", "lease_until",
            "not_before", "error_message", "created_at", "variables", "lease", "headers", "properties", "listener"
        ],
        "{job}"
    );
    assert_eq!(
        (&job["type"], &job["state"], &job["worker"], &job["not_before"], &job["listener"], &job["instance_id"]),
        (&json!("charge"), &json!("activatable"), &json!("w1"), &Value::Null, &Value::Null, &json!(id)),
        "{job}"
    );
    assert!(job["lease"].is_string() && job["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{job}");
    let key = job["key"].as_str().unwrap();
    let (status, _) = app
        .json(
            "POST",
            &format!("/v1/jobs/{key}/complete"),
            json!({"worker": "w1", "lease": app.lease(key), "variables": {"receipt": "r-9"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, tasks) = app
        .send("GET", "/v1/tasks?candidate_group=managers", None)
        .await
        .into_json();
    let task = tasks["items"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/tasks/{task}/claim"),
            json!({"assignee": "ann"})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/tasks/{task}/claim"),
            json!({"assignee": "bob"})
        )
        .await
        .1["code"],
        json!("task-claimed")
    );
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/tasks/{task}/complete"),
            json!({"variables": {"ok": true}})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, instance) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    assert_eq!(instance["status"], json!("completed"));
    assert_eq!(instance["input"], json!({"amount": 5}));
    assert_eq!(
        instance["variables"],
        json!({"amount": 5, "receipt": "r-9", "ok": true})
    );
    let (_, history) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?limit=100"),
            None,
        )
        .await
        .into_json();
    let ended: Vec<(String, String)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["state"] != json!("activated"))
        .map(|h| {
            (
                h["element"].as_str().unwrap().to_string(),
                h["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ["start", "charge", "approve", "end", "order"]
        .iter()
        .map(|e| (e.to_string(), "completed".to_string()))
        .collect();
    assert_eq!(ended, expected);
    let (_, listed) = app
        .send(
            "GET",
            "/v1/instances?status=completed&business_key=o-1&variable=amount=5",
            None,
        )
        .await
        .into_json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let (_, other) = app
        .json("POST", "/v1/instances", json!({"workflow": "order"}))
        .await;
    let other = other["id"].as_str().unwrap();
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/instances/{other}/cancel"),
            json!({"reason": "duplicate order"})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, cancelled) = app
        .send("GET", &format!("/v1/instances/{other}"), None)
        .await
        .into_json();
    assert_eq!(
        (
            cancelled["status"].clone(),
            cancelled["cancel_reason"].clone()
        ),
        (json!("cancelled"), json!("duplicate order"))
    );
    let (_, again) = app
        .json("POST", &format!("/v1/instances/{other}/cancel"), json!({}))
        .await;
    assert_eq!(again["code"], json!("instance-ended"));
}

trait IntoJson {
    fn into_json(self) -> (StatusCode, Value);
}

impl IntoJson for (StatusCode, String, Value) {
    fn into_json(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_problem_with_its_code_and_nothing_is_written() {
    let app = App::new();
    let broken = MODEL.replace(r#"targetRef="end""#, r#"targetRef="nowhere""#);
    let huge = format!(
        r#"{{"workflow": "order", "variables": {{"blob": "{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    // Method, path, body, status, code, a phrase the detail must contain.
    type Case<'a> = (&'a str, String, Option<String>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/instances".into(),
            Some("{not json".into()),
            400,
            "request-invalid",
            "key must be a string",
        ),
        (
            "POST",
            "/v1/instances".into(),
            Some(r#"{"workflow": "order", "colour": "red"}"#.into()),
            400,
            "request-invalid",
            "unknown field `colour`",
        ),
        (
            "POST",
            "/v1/instances".into(),
            Some(r#"{"workflow": 7}"#.into()),
            400,
            "request-invalid",
            "invalid type: integer `7`",
        ),
        (
            "POST",
            "/v1/instances".into(),
            Some(r#"{"workflow": "order", "variables": [1]}"#.into()),
            400,
            "request-invalid",
            "expected a map",
        ),
        (
            "POST",
            "/v1/instances".into(),
            Some(huge),
            413,
            "body-too-large",
            "1048576 bytes",
        ),
        (
            "POST",
            "/v1/instances".into(),
            Some(r#"{"workflow": "ghost"}"#.into()),
            404,
            "workflow-not-found",
            "ghost",
        ),
        (
            "GET",
            "/v1/instances/nope".into(),
            None,
            404,
            "instance-not-found",
            "nope",
        ),
        (
            "POST",
            "/v1/instances/nope/cancel".into(),
            None,
            404,
            "instance-not-found",
            "nope",
        ),
        (
            "POST",
            "/v1/jobs/nope.1/complete".into(),
            None,
            404,
            "job-not-found",
            "nope.1",
        ),
        (
            "POST",
            "/v1/tasks/nope.1/complete".into(),
            None,
            404,
            "task-not-found",
            "nope.1",
        ),
        (
            "POST",
            "/v1/incidents/nope.1/resolve".into(),
            None,
            404,
            "incident-not-found",
            "nope.1",
        ),
        (
            "GET",
            "/v1/workflows/ghost".into(),
            None,
            404,
            "workflow-not-found",
            "ghost",
        ),
        (
            "GET",
            "/v1/instances?status=sleeping".into(),
            None,
            400,
            "query-invalid",
            "sleeping",
        ),
        (
            "GET",
            "/v1/instances?limit=0".into(),
            None,
            400,
            "query-invalid",
            "limit",
        ),
        (
            "GET",
            "/v1/instances?colour=red".into(),
            None,
            400,
            "query-invalid",
            "unknown field `colour`",
        ),
        (
            "GET",
            "/v1/instances?started_after=yesterday".into(),
            None,
            400,
            "query-invalid",
            "yesterday",
        ),
        (
            "GET",
            "/v1/instances?after=nope".into(),
            None,
            400,
            "query-invalid",
            "not a cursor",
        ),
        (
            "GET",
            "/v1/instances/nope/history?after=x".into(),
            None,
            404,
            "instance-not-found",
            "nope",
        ),
        (
            "GET",
            "/v1/jobs?after=12".into(),
            None,
            400,
            "query-invalid",
            "not a cursor",
        ),
        (
            "GET",
            "/v1/workflows?after=order".into(),
            None,
            400,
            "query-invalid",
            "not a cursor",
        ),
        (
            "POST",
            "/v1/messages".into(),
            Some(r#"{"name": "m", "ttl_ms": 36383835858111614976}"#.into()),
            400,
            "request-invalid",
            "out of range",
        ),
        (
            "POST",
            "/v1/messages".into(),
            Some(r#"{"name": "m", "ttl_ms": 400000000000}"#.into()),
            400,
            "request-invalid",
            "ten years",
        ),
        (
            "POST",
            "/v1/messages".into(),
            Some(r#"{"name": "m", "ttl_ms": 1.5}"#.into()),
            400,
            "request-invalid",
            "not a whole number",
        ),
        (
            "POST",
            "/v1/jobs/activate".into(),
            Some(r#"{"type": "charge", "worker": "w", "max_jobs": 0}"#.into()),
            400,
            "request-invalid",
            "max_jobs",
        ),
        (
            "POST",
            "/v1/messages".into(),
            Some(r#"{"name": ""}"#.into()),
            400,
            "request-invalid",
            "name is empty",
        ),
        (
            "GET",
            "/v1/nowhere".into(),
            None,
            404,
            "route-not-found",
            "no endpoint",
        ),
        (
            "DELETE",
            "/v1/instances".into(),
            None,
            405,
            "method-not-allowed",
            "method",
        ),
        (
            "POST",
            "/v1/workflows".into(),
            Some(json!({"resources": [{"name": "broken.bpmn", "xml": broken}]}).to_string()),
            422,
            "deployment-invalid",
            "nowhere",
        ),
        (
            "POST",
            "/v1/workflows".into(),
            Some(json!({"resources": [{"name": "x.bpmn", "xml": "<definitions"}]}).to_string()),
            422,
            "deployment-invalid",
            "well-formed",
        ),
    ];
    for (method, path, body, status, code, detail) in cases {
        let (actual_status, content_type, problem) = app.send(method, &path, body).await;
        assert_eq!(actual_status.as_u16(), status, "{method} {path}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{method} {path}");
        assert_eq!(problem["code"], json!(code), "{method} {path}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{method} {path}: {problem}"
        );
        assert_eq!(problem["status"], json!(status));
    }
    let (_, workflows) = app.send("GET", "/v1/workflows", None).await.into_json();
    assert_eq!(
        workflows["items"],
        json!([]),
        "the refused deployments left nothing behind"
    );
    // Whole numbers written as floats are whole numbers (JSON Schema's `integer`).
    let (status, polled) = app
        .json(
            "POST",
            "/v1/jobs/activate",
            json!({"type": "t", "worker": "w", "max_jobs": 2.0, "timeout_ms": 0.0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{polled}");
    let (status, problem) = app
        .send(
            "POST",
            "/v1/instances",
            Some(r#"{"workflow": "x", "version": 1.5}"#.into()),
        )
        .await
        .into_json();
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("request-invalid"))
    );
    let (status, problem) = app
        .send_as(
            Some("\tnobody"),
            "POST",
            "/v1/signals",
            Some(r#"{"name": "s"}"#.into()),
        )
        .await
        .into_json();
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("request-invalid")),
        "a control character in the actor"
    );
    let (_, problem) = app
        .json(
            "POST",
            "/v1/workflows",
            json!({"resources": [{"name": "broken.bpmn", "xml": broken}]}),
        )
        .await;
    assert_eq!(
        problem["diagnostics"][0]["element"],
        json!("f3"),
        "the diagnostics come with the problem"
    );
}

/// Issue 17, item 1: variables nested deeper than the API takes are refused
/// before anything is written (a body that deep used to be committed, and
/// then its instance could never be read back); the deepest that is taken
/// reads back, alone and in the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_nested_too_deep_are_refused_and_the_deepest_taken_reads_back() {
    let app = App::new();
    app.deploy(&[("order.bpmn", MODEL)]).await;
    // `levels` arrays inside the body's object, its variables' object and the variable's own.
    let nested = |levels: usize| format!(r#"{{"workflow": "order", "variables": {{"deep": {}1{}}}}}"#, "[".repeat(levels), "]".repeat(levels));
    let (status, problem) = app.send("POST", "/v1/instances", Some(nested(api::MAX_JSON_DEPTH))).await.into_json();
    assert_eq!((status, &problem["code"]), (StatusCode::BAD_REQUEST, &json!("request-invalid")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(&format!("{} levels deep", api::MAX_JSON_DEPTH + 2)), "{problem}");
    let (_, listed) = app.send("GET", "/v1/instances", None).await.into_json();
    assert_eq!(listed["items"], json!([]), "nothing was started");
    let (status, started) = app.send("POST", "/v1/instances", Some(nested(api::MAX_JSON_DEPTH - 2))).await.into_json();
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["id"].as_str().unwrap();
    let (status, instance) = app.send("GET", &format!("/v1/instances/{id}"), None).await.into_json();
    assert_eq!(status, StatusCode::OK, "{instance}");
    assert!(instance["variables"]["deep"].is_array());
    let (status, _) = app.send("GET", "/v1/instances", None).await.into_json();
    assert_eq!(status, StatusCode::OK, "the list reads it back too");
    // Brackets inside strings are text, not nesting.
    let text = format!(r#"{{"workflow": "order", "variables": {{"note": "{}"}}}}"#, "[{".repeat(200));
    assert_eq!(app.send("POST", "/v1/instances", Some(text)).await.0, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_ran_out_cannot_complete_and_a_job_completes_once() {
    let app = App::new();
    app.json(
        "POST",
        "/v1/workflows",
        json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]}),
    )
    .await;
    app.json("POST", "/v1/instances", json!({"workflow": "order"}))
        .await;
    let (_, activated) = app
        .json(
            "POST",
            "/v1/jobs/activate",
            json!({"type": "charge", "worker": "slow", "lease_ms": 1000}),
        )
        .await;
    let key = activated["jobs"][0]["key"].as_str().unwrap().to_string();
    app.clock.advance(1001);
    let slow = app.lease(&key);
    let (_, expired) = app
        .json(
            "POST",
            &format!("/v1/jobs/{key}/complete"),
            json!({"worker": "slow", "lease": slow}),
        )
        .await;
    assert_eq!(expired["code"], json!("job-lease-expired"), "{expired}");
    let (_, again) = app
        .json(
            "POST",
            "/v1/jobs/activate",
            json!({"type": "charge", "worker": "fast"}),
        )
        .await;
    assert_eq!(again["jobs"][0]["key"], json!(key));
    let (_, held) = app
        .json(
            "POST",
            &format!("/v1/jobs/{key}/complete"),
            json!({"worker": "slow", "lease": slow}),
        )
        .await;
    assert_eq!(held["code"], json!("job-leased-to-another-worker"));
    // Leaving the lease out, or naming another worker, does not get round it.
    let (status, bare) = app
        .json("POST", &format!("/v1/jobs/{key}/complete"), json!({}))
        .await;
    assert_eq!(
        (status, bare["code"].clone()),
        (StatusCode::CONFLICT, json!("job-lease-required"))
    );
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/jobs/{key}/fail"),
            json!({"worker": "fast", "retries": 1})
        )
        .await
        .1["code"],
        json!("job-lease-required")
    );
    // An operator may finish it over the lease, on the record.
    let overridden = app
        .json_as(
            "ops",
            "POST",
            &format!("/v1/jobs/{key}/complete"),
            json!({"override": true, "reason": "the worker is gone"}),
        )
        .await;
    assert_eq!(overridden.0, StatusCode::NO_CONTENT, "{}", overridden.1);
    let (status, twice) = app
        .json(
            "POST",
            &format!("/v1/jobs/{key}/complete"),
            json!({"worker": "fast", "lease": app.lease(&key)}),
        )
        .await;
    assert_eq!(
        (status, twice["code"].clone()),
        (StatusCode::NOT_FOUND, json!("job-not-found"))
    );
    let instance = key.rsplit_once('.').unwrap().0;
    let (_, history) = app
        .send(
            "GET",
            &format!("/v1/instances/{instance}/history?element=charge&event=completed"),
            None,
        )
        .await
        .into_json();
    let entry = &history["items"][0];
    assert_eq!(
        (entry["actor"].clone(), entry["reason"].clone()),
        (
            json!("ops"),
            json!("the worker's lease was overridden: the worker is gone")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_follow_their_cursors_and_a_long_poll_wakes_for_a_new_job() {
    let app = App::new();
    app.json(
        "POST",
        "/v1/workflows",
        json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]}),
    )
    .await;
    for _ in 0..5 {
        app.json("POST", "/v1/instances", json!({"workflow": "order"}))
            .await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/instances?limit=2".to_string();
    loop {
        let (_, page) = app.send("GET", &path, None).await.into_json();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/instances?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["i1", "i2", "i3", "i4", "i5"]);
    // Take all five jobs, then poll for a sixth that arrives while the poll waits.
    app.json(
        "POST",
        "/v1/jobs/activate",
        json!({"type": "charge", "worker": "w", "max_jobs": 10}),
    )
    .await;
    let router = app.router.clone();
    let poll = tokio::spawn(async move {
        let body = json!({"type": "charge", "worker": "w", "timeout_ms": 30000}).to_string();
        let request = Request::builder()
            .method("POST")
            .uri("/v1/jobs/activate")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    });
    tokio::task::yield_now().await;
    app.json("POST", "/v1/instances", json!({"workflow": "order"}))
        .await;
    let polled = poll.await.unwrap();
    assert_eq!(polled["jobs"].as_array().unwrap().len(), 1, "{polled}");
    assert_eq!(polled["jobs"][0]["instance_id"], json!("i6"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_exists_and_every_error_code_has_a_page() {
    let app = App::new();
    let document = api::openapi();
    for (method, path, ..) in api::ROUTES {
        let concrete = path
            .replace("{key}", "k")
            .replace("{id}", "i")
            .replace("{version}", "1");
        let (_, _, answer) = app
            .send(&method.to_uppercase(), &concrete, Some("{}".into()))
            .await;
        assert!(
            answer["code"] != json!("route-not-found")
                && answer["code"] != json!("method-not-allowed"),
            "{method} {path}: {answer}"
        );
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is missing from the OpenAPI document"
        );
    }
    // The route table (which the CLI is checked against) and the schemas name the same fields.
    for (method, path, _, body, query) in api::ROUTES {
        let schemas = api::schemas::operation(method, path)
            .unwrap_or_else(|| panic!("{method} {path} has no schemas"));
        let documented: Vec<&str> = schemas.query.iter().map(|(name, _)| *name).collect();
        assert_eq!(&documented, query, "{method} {path}: query parameters");
        let properties: Vec<String> = schemas
            .body
            .as_ref()
            .and_then(|schema| schema["properties"].as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let listed: Vec<String> = body.iter().map(|f| f.to_string()).collect();
        assert_eq!(properties, listed, "{method} {path}: body fields");
    }
    let (_, served) = app.send("GET", "/v1/openapi.json", None).await.into_json();
    assert_eq!(served, document);
    // Links name operations that exist, so a stateful client can follow them.
    let ids: Vec<Value> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| {
            ops.as_object()
                .unwrap()
                .values()
                .map(|op| op["operationId"].clone())
        })
        .collect();
    let mut links = 0;
    for operations in document["paths"].as_object().unwrap().values() {
        for operation in operations.as_object().unwrap().values() {
            for response in operation["responses"].as_object().unwrap().values() {
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    assert!(
                        ids.contains(&link["operationId"]),
                        "a link to a missing operation: {link}"
                    );
                    links += 1;
                }
            }
        }
    }
    assert!(links >= 20, "{links} links");
    let mut unique: Vec<String> = ids
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        api::ROUTES.len() + api::camunda::ROUTES.len(),
        "every operation has its own operationId"
    );
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors");
    for (code, status, _) in api::ERRORS {
        let page = std::fs::read_to_string(docs.join(format!("{code}.md")))
            .unwrap_or_else(|_| panic!("docs/errors/{code}.md is missing"));
        assert!(
            page.contains(&status.to_string()),
            "docs/errors/{code}.md does not state its status {status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer() {
    let app = App::new();
    assert_eq!(app.send("GET", "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(app.send("GET", "/readyz", None).await.0, StatusCode::OK);
    app.json(
        "POST",
        "/v1/workflows",
        json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]}),
    )
    .await;
    app.json("POST", "/v1/instances", json!({"workflow": "order"}))
        .await;
    let (status, content_type, text) = app.send("GET", "/metrics", None).await;
    assert_eq!(
        (status, content_type.starts_with("text/plain")),
        (StatusCode::OK, true)
    );
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains("baton_instances_started_total 1"), "{text}");
    assert!(
        text.contains("baton_instances{status=\"running\"} 1"),
        "{text}"
    );
    assert!(text.contains("baton_commit_batch_size_count"), "{text}");
    // The commit loop's thread has run a deploy and a start: its CPU time is counted.
    let commit_cpu = text
        .lines()
        .find_map(|line| line.strip_prefix("baton_commit_thread_cpu_seconds_total "))
        .and_then(|value| value.parse::<f64>().ok());
    assert!(commit_cpu.is_some_and(|seconds| seconds > 0.0), "{text}");
    // The started instance was written, so the core keeps it decoded.
    assert!(text.contains("baton_instance_cache_entries 1"), "{text}");
    assert!(
        text.contains("baton_instance_cache_lookups_total{result=\"hit\"}"),
        "{text}"
    );
}

/// Issue 9, item 6: readiness says when the commit loop is not running, since
/// no write can be answered then (health only says the process is up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_commit_loop_is_not_running() {
    let mut app = App::new();
    assert_eq!(app.send("GET", "/readyz", None).await.0, StatusCode::OK);
    if let Some(service) = app.service.take() {
        service.stop();
    }
    let (status, _, problem) = app.send("GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["code"], "store-unavailable");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("commit loop is not running"),
        "{problem}"
    );
    assert_eq!(app.send("GET", "/healthz", None).await.0, StatusCode::OK);
}

/// Issue 17, item 5: readiness says no while commits fail though reads
/// work (a full disk), and yes again once a commit succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_commits_fail_and_recovers_after_one_succeeds() {
    static STORE: std::sync::OnceLock<Arc<store::MemoryStore>> = std::sync::OnceLock::new();
    let app = App::on(|_| STORE.get_or_init(|| Arc::new(store::MemoryStore::new())).clone());
    let store = STORE.get().unwrap().clone();
    app.deploy(&[("order.bpmn", MODEL)]).await;
    assert_eq!(app.send("GET", "/readyz", None).await.0, StatusCode::OK);
    store.refuse_commits(true);
    let (status, problem) = app.json("POST", "/v1/instances", json!({"workflow": "order"})).await;
    assert_eq!((status, &problem["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("store-unavailable")), "{problem}");
    let (status, _, problem) = app.send("GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("the last commit failed"), "{problem}");
    assert_eq!(app.send("GET", "/v1/instances", None).await.0, StatusCode::OK, "reads still work");
    store.refuse_commits(false);
    let (status, _) = app.json("POST", "/v1/instances", json!({"workflow": "order"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.send("GET", "/readyz", None).await.0, StatusCode::OK);
}

const PARENT: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <process id="parent" isExecutable="true">
    <startEvent id="start"/>
    <callActivity id="call"><extensionElements><zeebe:calledElement processId="order"/></extensionElements></callActivity>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <sequenceFlow id="f2" sourceRef="call" targetRef="end"/>
  </process>
</definitions>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_called_instances_incident_is_seen_from_its_root() {
    let app = App::new();
    let resources = json!({"resources": [{"name": "order.bpmn", "xml": MODEL}, {"name": "parent.bpmn", "xml": PARENT}]});
    assert_eq!(
        app.json("POST", "/v1/workflows", resources).await.0,
        StatusCode::CREATED
    );
    let root = app.start(json!({"workflow": "parent"})).await;
    let other = app.start(json!({"workflow": "parent"})).await;
    let (_, activated) = app
        .json(
            "POST",
            "/v1/jobs/activate",
            json!({"type": "charge", "worker": "w1", "max_jobs": 5}),
        )
        .await;
    let job = activated["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| {
            j["instance_id"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{root}/"))
        })
        .unwrap();
    let (child, key) = (
        job["instance_id"].as_str().unwrap().to_string(),
        job["key"].as_str().unwrap().to_string(),
    );
    let failed = app.json("POST", &format!("/v1/jobs/{}/fail", key.replace('/', "%2F")), json!({"worker": "w1", "lease": job["lease"], "retries": 0, "message": "card declined"})).await;
    assert_eq!(failed.0, StatusCode::NO_CONTENT, "{}", failed.1);

    let (_, shown) = app
        .send("GET", &format!("/v1/instances/{root}"), None)
        .await
        .into_json();
    assert_eq!(
        (
            shown["incidents"].clone(),
            shown["descendant_incidents"].clone()
        ),
        (json!(0), json!(1)),
        "{shown}"
    );
    let (_, shown) = app
        .send(
            "GET",
            &format!("/v1/instances/{}", child.replace('/', "%2F")),
            None,
        )
        .await
        .into_json();
    assert_eq!(
        (
            shown["incidents"].clone(),
            shown["descendant_incidents"].clone()
        ),
        (json!(1), json!(0))
    );
    let (_, listed) = app
        .send("GET", "/v1/instances?has_incidents=true", None)
        .await
        .into_json();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [root.as_str(), child.as_str()],
        "the root is found by its child's incident; the other root is not"
    );
    let (_, clean) = app
        .send("GET", "/v1/instances?has_incidents=false", None)
        .await
        .into_json();
    let clean: Vec<&str> = clean["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(
        clean.contains(&other.as_str()) && !clean.contains(&root.as_str()),
        "{clean:?}"
    );
    let (_, own) = app
        .send("GET", &format!("/v1/incidents?instance_id={root}"), None)
        .await
        .into_json();
    assert_eq!(own["items"], json!([]));
    let (_, all) = app
        .send(
            "GET",
            &format!("/v1/incidents?instance_id={root}&descendants=true"),
            None,
        )
        .await
        .into_json();
    let incidents = all["items"].as_array().unwrap();
    assert_eq!(
        (
            incidents.len(),
            incidents[0]["instance_id"].clone(),
            incidents[0]["message"].clone()
        ),
        (1, json!(child), json!("card declined"))
    );
    let (status, everything) = app
        .send("GET", "/v1/incidents?descendants=true", None)
        .await
        .into_json();
    assert_eq!(
        (status, everything["items"].as_array().unwrap().len()),
        (StatusCode::OK, 1),
        "without instance_id: every incident"
    );

    let incident = incidents[0]["key"].as_str().unwrap().replace('/', "%2F");
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/jobs/{}/retries", key.replace('/', "%2F")),
            json!({"retries": 1})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/incidents/{incident}/resolve"),
            json!({})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, shown) = app
        .send("GET", &format!("/v1/instances/{root}"), None)
        .await
        .into_json();
    assert_eq!(
        shown["descendant_incidents"],
        json!(0),
        "a resolved incident no longer counts"
    );
}

const LETTER: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <process id="letter" isExecutable="true">
    <startEvent id="start"/>
    <serviceTask id="print" name="Print the letter"><extensionElements><zeebe:taskDefinition type="print"/></extensionElements></serviceTask>
    <sendTask id="post" name="Post it"><extensionElements><zeebe:taskDefinition type="post"/></extensionElements></sendTask>
    <userTask id="check" name="Check the answer"/>
    <exclusiveGateway id="again" default="done"/>
    <endEvent id="end" name="Answered"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="print"/>
    <sequenceFlow id="f2" sourceRef="print" targetRef="post"/>
    <sequenceFlow id="f3" sourceRef="post" targetRef="check"/>
    <sequenceFlow id="f4" sourceRef="check" targetRef="again"/>
    <sequenceFlow id="retry" sourceRef="again" targetRef="print"><conditionExpression>=resend = true</conditionExpression></sequenceFlow>
    <sequenceFlow id="done" sourceRef="again" targetRef="end"/>
  </process>
</definitions>"#;

impl App {
    /// A request made on behalf of `actor`.
    async fn json_as(
        &self,
        actor: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self
            .send_as(Some(actor), method, path, Some(body.to_string()))
            .await;
        (status, value)
    }

    /// Deploys BPMN files, which must be accepted.
    async fn deploy(&self, files: &[(&str, &str)]) {
        let resources: Vec<Value> = files
            .iter()
            .map(|(name, xml)| json!({"name": name, "xml": xml}))
            .collect();
        let (status, answer) = self
            .json("POST", "/v1/workflows", json!({ "resources": resources }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }

    /// Starts an instance, which must start; its id.
    async fn start(&self, body: Value) -> String {
        let (status, started) = self.json("POST", "/v1/instances", body).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        started["id"].as_str().unwrap().to_string()
    }

    /// The lease the last activation of job `key` returned.
    fn lease(&self, key: &str) -> Value {
        self.leases
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn only_job(&self, job_type: &str, worker: &str) -> (String, u64) {
        let (_, activated) = self
            .json(
                "POST",
                "/v1/jobs/activate",
                json!({"type": job_type, "worker": worker, "max_jobs": 1}),
            )
            .await;
        let job = &activated["jobs"][0];
        (
            job["key"]
                .as_str()
                .unwrap_or_else(|| panic!("no {job_type} job: {activated}"))
                .to_string(),
            job["retries"].as_u64().unwrap(),
        )
    }
}

/// Issue 10: the record of an instance, read back through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_keeps_its_record_who_did_what_and_its_audit_log() {
    let app = App::new();
    app.deploy(&[("letter.bpmn", LETTER)]).await;
    let start = json!({"workflow": "letter", "business_key": "case-9", "labels": {"person": "p-17", "channel": "mail"}});
    let (status, started) = app.json_as("ann", "POST", "/v1/instances", start).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["id"].as_str().unwrap().to_string();

    // The printer fails once, then prints; the worker is the actor when no header names one.
    let (key, retries) = app.only_job("print", "printer-7").await;
    let (_, shown) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    let wait = &shown["waits"][0];
    assert_eq!(
        (
            wait["kind"].clone(),
            wait["job"]["key"].clone(),
            wait["job"]["worker"].clone()
        ),
        (json!("job"), json!(key), json!("printer-7"))
    );
    assert_eq!(
        wait["job"]["lease_until"],
        json!("2026-01-01T00:05:00Z"),
        "the default lease is five minutes"
    );
    app.json("POST", &format!("/v1/jobs/{key}/fail"), json!({"worker": "printer-7", "lease": app.lease(&key), "retries": retries - 1, "message": "paper jam"})).await;
    app.clock.advance(1_000);
    let (again, _) = app.only_job("print", "printer-7").await;
    assert_eq!(again, key);
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/jobs/{key}/complete"),
            json!({"worker": "printer-7", "lease": app.lease(&key), "variables": {"pages": 2}})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    // Posting fails for good: an incident, fixed by an operator with a reason.
    let (post, _) = app.only_job("post", "postie").await;
    let failed = app.json("POST", &format!("/v1/jobs/{post}/fail"), json!({"worker": "postie", "lease": app.lease(&post), "retries": 0, "message": "no stamps"})).await;
    assert_eq!(failed.0, StatusCode::NO_CONTENT, "{}", failed.1);
    let (_, incidents) = app
        .send("GET", &format!("/v1/incidents?instance_id={id}"), None)
        .await
        .into_json();
    let incident = incidents["items"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(
        app.json_as(
            "bob",
            "POST",
            &format!("/v1/jobs/{post}/retries"),
            json!({"retries": 1, "reason": "stamps bought"})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.json_as(
            "bob",
            "POST",
            &format!("/v1/incidents/{incident}/resolve"),
            json!({"reason": "stamps bought"})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (post, _) = app.only_job("post", "postie").await;
    app.json(
        "POST",
        &format!("/v1/jobs/{post}/complete"),
        json!({"worker": "postie", "lease": app.lease(&post)}),
    )
    .await;
    // The answer asks for the letter again once: the loop drawn with a gateway counts iterations.
    let (_, tasks) = app
        .send("GET", &format!("/v1/tasks?instance_id={id}"), None)
        .await
        .into_json();
    let task = tasks["items"][0]["key"].as_str().unwrap().to_string();
    let (_, shown) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    assert_eq!(
        (
            shown["waits"][0]["kind"].clone(),
            shown["waits"][0]["task"]["key"].clone()
        ),
        (json!("user_task"), json!(task))
    );
    assert_eq!(
        app.json_as(
            "carol",
            "POST",
            &format!("/v1/tasks/{task}/complete"),
            json!({"variables": {"resend": true}})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = app
        .json_as(
            "dan",
            "POST",
            &format!("/v1/instances/{id}/labels"),
            json!({"labels": {"channel": null, "attempt": "2"}, "reason": "resent"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, shown) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    assert_eq!(shown["created_by"], json!("ann"));
    assert_eq!(shown["updated_by"], json!("dan"));
    assert_eq!(shown["created_at"], json!("2026-01-01T00:00:00Z"));
    assert_eq!(shown["updated_at"], json!("2026-01-01T00:00:01Z"));
    assert_eq!(shown["labels"], json!({"person": "p-17", "attempt": "2"}));
    assert_eq!(
        (shown["root_id"].clone(), shown["run"].clone()),
        (json!(id), json!(1))
    );
    assert_eq!(shown["last_send_task"]["element"], json!("post"));
    assert_eq!(shown["last_send_task"]["element_name"], json!("Post it"));
    let (_, by_label) = app
        .send("GET", "/v1/instances?label=person=p-17", None)
        .await
        .into_json();
    assert_eq!(by_label["items"].as_array().unwrap().len(), 1);
    let (_, by_old_label) = app
        .send("GET", "/v1/instances?label=channel=mail", None)
        .await
        .into_json();
    assert_eq!(
        by_old_label["items"],
        json!([]),
        "a removed label no longer finds it"
    );

    let (_, history) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?limit=1000"),
            None,
        )
        .await
        .into_json();
    let entries = history["items"].as_array().unwrap();
    let find = |event: &str, element: &str| {
        entries
            .iter()
            .filter(|e| e["event"] == json!(event) && e["element"] == json!(element))
            .cloned()
            .collect::<Vec<_>>()
    };
    let failed = find("job_failed", "print");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (
            failed[0]["message"].clone(),
            failed[0]["retries"].clone(),
            failed[0]["actor"].clone()
        ),
        (json!("paper jam"), json!(2), json!("printer-7"))
    );
    assert_eq!(failed[0]["job"]["attempt"], json!(1));
    let printed = find("completed", "print");
    assert_eq!(
        printed[0]["job"],
        json!({"key": key, "type": "print", "attempt": 2}),
        "the second attempt printed"
    );
    assert_eq!(printed[0]["variables"], json!({"pages": 2}));
    assert_eq!(printed[0]["element_name"], json!("Print the letter"));
    assert_eq!(printed[0]["iteration"], json!(1));
    let raised = find("incident_raised", "post");
    assert_eq!(
        (
            raised[0]["incident"]["kind"].clone(),
            raised[0]["message"].clone()
        ),
        (json!("job_no_retries"), json!("no stamps"))
    );
    let resolved = find("incident_resolved", "post");
    assert_eq!(
        (resolved[0]["actor"].clone(), resolved[0]["reason"].clone()),
        (json!("bob"), json!("stamps bought")),
        "kept after resolution"
    );
    assert_eq!(find("retries_set", "post")[0]["retries"], json!(1));
    let (_, resolved) = app
        .send(
            "GET",
            &format!("/v1/incidents?state=resolved&instance_id={id}"),
            None,
        )
        .await
        .into_json();
    let resolved = &resolved["items"][0];
    assert_eq!(
        (
            resolved["key"].clone(),
            resolved["state"].clone(),
            resolved["resolved_by"].clone()
        ),
        (json!(incident), json!("resolved"), json!("bob"))
    );
    let (_, open) = app
        .send("GET", &format!("/v1/incidents?instance_id={id}"), None)
        .await
        .into_json();
    assert_eq!(open["items"], json!([]));
    let checked = find("completed", "check");
    assert_eq!(
        checked[0]["task"],
        json!({"key": task, "completed_by": "carol"})
    );
    let printing = find("activated", "print");
    assert_eq!(
        printing
            .iter()
            .map(|e| e["iteration"].clone())
            .collect::<Vec<_>>(),
        [json!(1), json!(2)],
        "a loop drawn with a gateway counts"
    );
    assert_eq!(
        find("labels_set", "letter")[0]["names"],
        json!(["attempt", "channel"])
    );

    // Filters: a kind of entry, an element, the current run.
    let (_, only) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?event=job_failed"),
            None,
        )
        .await
        .into_json();
    assert_eq!(only["items"].as_array().unwrap().len(), 2, "{only}");
    let (_, printing) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?element=print&run=current"),
            None,
        )
        .await
        .into_json();
    assert!(printing["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["element"] == json!("print")));
    let (status, problem) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?event=exploded"),
            None,
        )
        .await
        .into_json();
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("query-invalid"))
    );

    // A label too long is refused by name, and nothing changes.
    let (status, problem) = app
        .json(
            "POST",
            &format!("/v1/instances/{id}/labels"),
            json!({"labels": {"note": "x".repeat(300)}}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid-labels"))
    );
    let (status, problem) = app
        .send(
            "POST",
            "/v1/instances",
            Some(json!({"workflow": "letter"}).to_string()),
        )
        .await
        .into_json();
    assert_eq!(status, StatusCode::CREATED, "{problem}");
    let (_, anonymous) = app
        .send(
            "GET",
            &format!("/v1/instances/{}", problem["id"].as_str().unwrap()),
            None,
        )
        .await
        .into_json();
    assert_eq!(anonymous["created_by"], json!("anonymous"));
}

/// Issue 10: how an instance ended, and what a called instance inherits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_instance_says_how_and_a_called_one_knows_its_lineage() {
    let failing = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="f">
  <error id="boom" errorCode="BOOM"/>
  <process id="failing" isExecutable="true">
    <startEvent id="s"/>
    <endEvent id="blow" name="Blow up"><errorEventDefinition errorRef="boom"/></endEvent>
    <sequenceFlow id="g1" sourceRef="s" targetRef="blow"/>
  </process>
</definitions>"#;
    let app = App::new();
    let resources = json!({"resources": [{"name": "order.bpmn", "xml": MODEL}, {"name": "parent.bpmn", "xml": PARENT}, {"name": "failing.bpmn", "xml": failing}]});
    assert_eq!(
        app.json("POST", "/v1/workflows", resources).await.0,
        StatusCode::CREATED
    );
    let (_, failed) = app
        .json("POST", "/v1/instances", json!({"workflow": "failing"}))
        .await;
    let (_, failed) = app
        .send(
            "GET",
            &format!("/v1/instances/{}", failed["id"].as_str().unwrap()),
            None,
        )
        .await
        .into_json();
    assert_eq!(failed["status"], json!("failed"));
    assert_eq!(
        (
            failed["error"]["code"].clone(),
            failed["error"]["element"].clone()
        ),
        (json!("BOOM"), json!("blow"))
    );
    assert_eq!(
        failed["end"],
        Value::Null,
        "an error end event fails the instance; it did not complete there"
    );

    let root = app
        .start(json!({"workflow": "parent", "business_key": "order-5"}))
        .await;
    let (_, children) = app
        .send("GET", &format!("/v1/instances?root_id={root}"), None)
        .await
        .into_json();
    let family = children["items"].as_array().unwrap();
    assert_eq!(family.len(), 2, "the root and its child");
    let child = family.iter().find(|i| i["id"] != json!(root)).unwrap();
    let (_, child) = app
        .send(
            "GET",
            &format!(
                "/v1/instances/{}",
                child["id"].as_str().unwrap().replace('/', "%2F")
            ),
            None,
        )
        .await
        .into_json();
    assert_eq!(
        (
            child["parent_id"].clone(),
            child["parent_element"].clone(),
            child["root_id"].clone(),
            child["business_key"].clone()
        ),
        (json!(root), json!("call"), json!(root), json!("order-5"))
    );
    let (status, _) = app
        .json_as(
            "erin",
            "POST",
            &format!("/v1/instances/{root}/cancel"),
            json!({"reason": "customer withdrew"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, shown) = app
        .send("GET", &format!("/v1/instances/{root}"), None)
        .await
        .into_json();
    assert_eq!(
        (shown["cancel_reason"].clone(), shown["updated_by"].clone()),
        (json!("customer withdrew"), json!("erin"))
    );
    let (_, history) = app
        .send(
            "GET",
            &format!("/v1/instances/{root}/history?event=cancelled"),
            None,
        )
        .await
        .into_json();
    assert_eq!(
        (
            history["items"][0]["actor"].clone(),
            history["items"][0]["reason"].clone()
        ),
        (json!("erin"), json!("customer withdrew"))
    );

    let (_, completed) = app
        .json("POST", "/v1/instances", json!({"workflow": "failing"}))
        .await;
    assert!(completed["id"].is_string());
}

const JOURNEY: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="j">
  <message id="reply" name="reply"><extensionElements><zeebe:subscription correlationKey="=person"/></extensionElements></message>
  <process id="journey" isExecutable="true">
    <startEvent id="s"/>
    <receiveTask id="wait_reply" name="Wait for the reply" messageRef="reply"/>
    <boundaryEvent id="reminder" name="Daily reminder" attachedToRef="wait_reply" cancelActivity="false">
      <timerEventDefinition><timeCycle>R2/P1D</timeCycle></timerEventDefinition>
    </boundaryEvent>
    <boundaryEvent id="deadline" name="Three days" attachedToRef="wait_reply">
      <timerEventDefinition><timeDuration>P3D</timeDuration></timerEventDefinition>
    </boundaryEvent>
    <endEvent id="reminded"/>
    <endEvent id="dropout" name="Dropped out"/>
    <endEvent id="replied" name="Replied"/>
    <sequenceFlow id="a" sourceRef="s" targetRef="wait_reply"/>
    <sequenceFlow id="b" sourceRef="wait_reply" targetRef="replied"/>
    <sequenceFlow id="c" sourceRef="reminder" targetRef="reminded"/>
    <sequenceFlow id="d" sourceRef="deadline" targetRef="dropout"/>
  </process>
</definitions>"#;

/// Issue 10: what an instance waits for and until when; timers, messages
/// and subscriptions listed; a deadline moved by an operator; a dropout
/// readable as its end event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_timers_messages_and_subscriptions_are_visible_and_a_timer_can_be_moved() {
    let app = App::new();
    app.deploy(&[("journey.bpmn", JOURNEY)]).await;
    let id = app
        .start(json!({"workflow": "journey", "variables": {"person": "p-1"}}))
        .await;

    let (_, shown) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    let waits = shown["waits"].as_array().unwrap();
    assert_eq!(waits.len(), 1, "{shown}");
    let wait = &waits[0];
    assert_eq!(
        (
            wait["element"].clone(),
            wait["element_name"].clone(),
            wait["kind"].clone()
        ),
        (
            json!("wait_reply"),
            json!("Wait for the reply"),
            json!("message")
        )
    );
    assert_eq!(
        wait["message"],
        json!({"name": "reply", "correlation_key": "p-1"})
    );
    assert_eq!(wait["since"], json!("2026-01-01T00:00:00Z"));
    let boundary = wait["boundary"].as_array().unwrap();
    let reminder = boundary
        .iter()
        .find(|b| b["element"] == json!("reminder"))
        .unwrap();
    assert_eq!(
        (
            reminder["due_at"].clone(),
            reminder["repetitions_left"].clone()
        ),
        (json!("2026-01-02T00:00:00Z"), json!(1))
    );
    let deadline = boundary
        .iter()
        .find(|b| b["element"] == json!("deadline"))
        .unwrap();
    assert_eq!(
        (deadline["element_name"].clone(), deadline["due_at"].clone()),
        (json!("Three days"), json!("2026-01-04T00:00:00Z"))
    );
    assert_eq!(
        shown["next_due_at"],
        json!("2026-01-02T00:00:00Z"),
        "the summary's 'wait until'"
    );

    let (_, timers) = app
        .send("GET", &format!("/v1/timers?instance_id={id}"), None)
        .await
        .into_json();
    let listed: Vec<(Value, Value)> = timers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["element"].clone(), t["kind"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("reminder"), json!("boundary")),
            (json!("deadline"), json!("boundary"))
        ]
    );
    let (_, subscriptions) = app
        .send("GET", "/v1/subscriptions?kind=message", None)
        .await
        .into_json();
    assert_eq!(subscriptions["items"][0]["correlation_key"], json!("p-1"));

    // A message for someone else waits an hour, then is undelivered.
    let published = app
        .json(
            "POST",
            "/v1/messages",
            json!({"name": "reply", "correlation_key": "p-2", "ttl_ms": 3_600_000}),
        )
        .await;
    assert!(published.0.is_success(), "{}", published.1);
    let (_, buffered) = app.send("GET", "/v1/messages", None).await.into_json();
    assert_eq!(
        (
            buffered["items"][0]["correlation_key"].clone(),
            buffered["items"][0]["ttl_left_ms"].clone()
        ),
        (json!("p-2"), json!(3_600_000))
    );

    // The operator moves the deadline to one hour from now; two hours later the participant has dropped out.
    let deadline_key = deadline["timer"].as_str().unwrap().to_string();
    let moved = app
        .json_as(
            "ops",
            "POST",
            &format!("/v1/timers/{deadline_key}/reschedule"),
            json!({"due_at": "2026-01-01T01:00:00Z", "reason": "campaign ends early"}),
        )
        .await;
    assert_eq!(moved.0, StatusCode::NO_CONTENT, "{}", moved.1);
    let (_, timers) = app
        .send("GET", &format!("/v1/timers?instance_id={id}"), None)
        .await
        .into_json();
    assert_eq!(
        timers["items"][0]["element"],
        json!("deadline"),
        "now first in due order"
    );
    app.clock.advance(2 * 3_600_000);
    app.service
        .as_ref()
        .unwrap()
        .handle
        .call(runtime::Command::Tick)
        .await
        .unwrap();
    let (_, ended) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    assert_eq!(ended["status"], json!("completed"));
    assert_eq!(
        (
            ended["end"]["element"].clone(),
            ended["end"]["element_name"].clone()
        ),
        (json!("dropout"), json!("Dropped out"))
    );
    assert_eq!(ended["waits"], json!([]));
    let (_, history) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?event=timer_rescheduled"),
            None,
        )
        .await
        .into_json();
    let moved = &history["items"][0];
    assert_eq!(
        (
            moved["actor"].clone(),
            moved["reason"].clone(),
            moved["due_at"].clone()
        ),
        (
            json!("ops"),
            json!("campaign ends early"),
            json!("2026-01-01T01:00:00Z")
        )
    );
    let (_, undelivered) = app
        .send("GET", "/v1/messages?state=undelivered", None)
        .await
        .into_json();
    assert_eq!(
        undelivered["items"][0]["undelivered_because"],
        json!("no subscription matched it before it expired")
    );
    let (status, problem) = app
        .json(
            "POST",
            "/v1/timers/nope.1/reschedule",
            json!({"due_at": "2026-01-01T01:00:00Z"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::NOT_FOUND, json!("timer-not-found"))
    );
}

const STAGE: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="g">
  <error id="rejected" errorCode="REJECTED"/>
  <process id="stage" isExecutable="true">
    <startEvent id="s"/>
    <serviceTask id="check" name="Compliance check"><extensionElements><zeebe:taskDefinition type="comply"/></extensionElements></serviceTask>
    <exclusiveGateway id="ok" default="pass"/>
    <endEvent id="fail" name="Rejected"><errorEventDefinition errorRef="rejected"/></endEvent>
    <endEvent id="done" name="Approved"/>
    <sequenceFlow id="a" sourceRef="s" targetRef="check"/>
    <sequenceFlow id="b" sourceRef="check" targetRef="ok"/>
    <sequenceFlow id="bad" sourceRef="ok" targetRef="fail"><conditionExpression>=compliant = false</conditionExpression></sequenceFlow>
    <sequenceFlow id="pass" sourceRef="ok" targetRef="done"/>
  </process>
</definitions>"#;

/// Issue 10, item 3: a stage fails, is fixed and runs again; the runs are
/// told apart in the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_instance_runs_again_from_where_it_failed_and_its_runs_are_grouped() {
    let app = App::new();
    app.deploy(&[("stage.bpmn", STAGE)]).await;
    let id = app
        .start(json!({"workflow": "stage", "variables": {"case": 7}}))
        .await;
    let (status, problem) = app
        .json("POST", &format!("/v1/instances/{id}/rerun"), json!({}))
        .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::CONFLICT, json!("instance-not-ended")),
        "a running instance does not rerun"
    );

    let (job, _) = app.only_job("comply", "checker").await;
    app.json(
        "POST",
        &format!("/v1/jobs/{job}/complete"),
        json!({"worker": "checker", "lease": app.lease(&job), "variables": {"compliant": false}}),
    )
    .await;
    let (_, failed) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    assert_eq!(
        (failed["status"].clone(), failed["error"]["code"].clone()),
        (json!("failed"), json!("REJECTED"))
    );

    let (status, problem) = app
        .json(
            "POST",
            &format!("/v1/instances/{id}/rerun"),
            json!({"from": "nowhere"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("element-not-found"))
    );
    let rerun = app
        .json_as(
            "fay",
            "POST",
            &format!("/v1/instances/{id}/rerun"),
            json!({"reason": "rules fixed"}),
        )
        .await;
    assert_eq!(rerun.0, StatusCode::NO_CONTENT, "{}", rerun.1);
    let (_, running) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    assert_eq!(
        (
            running["status"].clone(),
            running["run"].clone(),
            running["error"].clone()
        ),
        (json!("running"), json!(2), Value::Null)
    );
    assert_eq!(
        running["variables"],
        json!({"case": 7}),
        "the run starts from the original input"
    );
    assert_eq!(
        running["waits"][0]["element"],
        json!("check"),
        "from the stage that decided the failure"
    );

    let (job, _) = app.only_job("comply", "checker").await;
    app.json(
        "POST",
        &format!("/v1/jobs/{job}/complete"),
        json!({"worker": "checker", "lease": app.lease(&job), "variables": {"compliant": true}}),
    )
    .await;
    let (_, done) = app
        .send("GET", &format!("/v1/instances/{id}"), None)
        .await
        .into_json();
    assert_eq!(
        (done["status"].clone(), done["end"]["element"].clone()),
        (json!("completed"), json!("done"))
    );

    let (_, all) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?element=check&event=completed"),
            None,
        )
        .await
        .into_json();
    let runs: Vec<Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["run"].clone())
        .collect();
    assert_eq!(runs, [json!(1), json!(2)], "each run's stage is kept");
    let (_, current) = app
        .send(
            "GET",
            &format!("/v1/instances/{id}/history?run=current"),
            None,
        )
        .await
        .into_json();
    let current = current["items"].as_array().unwrap();
    assert!(current.iter().all(|e| e["run"] == json!(2)) && !current.is_empty());
    let marker = current
        .iter()
        .find(|e| e["event"] == json!("rerun"))
        .unwrap();
    assert_eq!(
        (
            marker["actor"].clone(),
            marker["reason"].clone(),
            marker["message"].clone()
        ),
        (
            json!("fay"),
            json!("rules fixed"),
            json!("run 2 from 'check'")
        )
    );
}

/// Issue 10, item 7: every route, called as a client would, answers what
/// the OpenAPI document says (each exchange is checked as it happens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_as_its_openapi_schema_says() {
    let app = App::new();
    let ok = |(status, value): (StatusCode, Value)| -> Value {
        assert!(status.is_success(), "{status}: {value}");
        value
    };
    let form = json!({"id": "approval", "components": [{"type": "checkbox", "key": "ok", "label": "OK"}]}).to_string();
    let resources = json!({"resources": [
        {"name": "order.bpmn", "xml": MODEL},
        {"name": "journey.bpmn", "xml": JOURNEY},
        {"name": "approval.form", "xml": form},
        {"name": "dish.dmn", "xml": DISH},
    ]});
    ok(app.json("POST", "/v1/workflows", resources).await);
    ok(app.json("POST", "/v1/decisions/dish/evaluate", json!({"variables": {"season": "Fall", "guestCount": 4}})).await);
    for path in [
        "/v1/decisions",
        "/v1/decisions/dish?version=1",
        "/v1/forms",
        "/v1/forms/approval?version=1",
        "/v1/workflows",
        "/v1/workflows/order",
        "/v1/workflows/order/versions/1",
        "/v1/openapi.json",
        "/v1/sign-in",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        ok(app.send("GET", path, None).await.into_json());
    }
    let started = ok(app
        .json_as(
            "ann",
            "POST",
            "/v1/instances",
            json!({"workflow": "order", "labels": {"customer": "c-1"}, "business_key": "o-1"}),
        )
        .await);
    let id = started["id"].as_str().unwrap().to_string();
    for path in [
        "/v1/instances?label=customer=c-1&has_incidents=false&limit=5".to_string(),
        format!("/v1/instances/{id}"),
        "/v1/instances/counts?workflow=order".to_string(),
        format!("/v1/instances/{id}/history?run=current"),
    ] {
        ok(app.send("GET", &path, None).await.into_json());
    }
    for (action, body) in [
        ("suspend", json!({"reason": "r"})),
        ("resume", json!({})),
        ("variables", json!({"variables": {"amount": 3}})),
        ("labels", json!({"labels": {"tier": "gold"}})),
    ] {
        ok(app
            .json("POST", &format!("/v1/instances/{id}/{action}"), body)
            .await);
    }
    // A job that fails for good, its retries restored, its incident resolved, then completed.
    let (key, _) = app.only_job("charge", "w").await;
    ok(app
        .json(
            "POST",
            &format!("/v1/jobs/{key}/fail"),
            json!({"worker": "w", "lease": app.lease(&key), "retries": 0, "message": "declined"}),
        )
        .await);
    let incidents = ok(app
        .send(
            "GET",
            &format!("/v1/incidents?instance_id={id}&state=open"),
            None,
        )
        .await
        .into_json());
    let incident = incidents["items"][0]["key"].as_str().unwrap().to_string();
    ok(app
        .json(
            "POST",
            &format!("/v1/jobs/{key}/retries"),
            json!({"retries": 2}),
        )
        .await);
    ok(app
        .json(
            "POST",
            &format!("/v1/incidents/{incident}/resolve"),
            json!({"reason": "card replaced"}),
        )
        .await);
    ok(app
        .send("GET", "/v1/jobs?type=charge&state=activatable", None)
        .await
        .into_json());
    let (key, _) = app.only_job("charge", "w").await;
    ok(app
        .json(
            "POST",
            &format!("/v1/jobs/{key}/complete"),
            json!({"worker": "w", "lease": app.lease(&key), "variables": {"paid": true}}),
        )
        .await);
    // The user task, passed around and completed.
    let tasks = ok(app
        .send("GET", "/v1/tasks?candidate_group=managers", None)
        .await
        .into_json());
    let task = tasks["items"][0]["key"].as_str().unwrap().to_string();
    ok(app.send("GET", &format!("/v1/tasks/{task}/form"), None).await.into_json());
    ok(app
        .send("GET", &format!("/v1/tasks/{task}"), None)
        .await
        .into_json());
    ok(app
        .json(
            "POST",
            &format!("/v1/tasks/{task}/claim"),
            json!({"assignee": "ann"}),
        )
        .await);
    ok(app
        .json("POST", &format!("/v1/tasks/{task}/unclaim"), json!({}))
        .await);
    ok(app
        .json(
            "POST",
            &format!("/v1/tasks/{task}/assign"),
            json!({"assignee": "bob"}),
        )
        .await);
    ok(app.json("POST", &format!("/v1/tasks/{task}/update"), json!({"due": "2026-03-01T00:00:00Z", "priority": 5, "candidate_groups": []})).await);
    ok(app
        .json(
            "POST",
            &format!("/v1/tasks/{task}/complete"),
            json!({"variables": {"ok": true}}),
        )
        .await);
    // Run it again, move its token, cancel it.
    ok(app
        .json(
            "POST",
            &format!("/v1/instances/{id}/rerun"),
            json!({"reason": "again"}),
        )
        .await);
    ok(app
        .json(
            "POST",
            &format!("/v1/instances/{id}/modify"),
            json!({"activate": ["approve"], "terminate": ["charge"]}),
        )
        .await);
    ok(app
        .json(
            "POST",
            &format!("/v1/instances/{id}/cancel"),
            json!({"reason": "done testing"}),
        )
        .await);
    ok(app
        .send(
            "GET",
            &format!("/v1/incidents?instance_id={id}&state=resolved"),
            None,
        )
        .await
        .into_json());
    // A worker's error that nothing catches.
    ok(app
        .json("POST", "/v1/instances", json!({"workflow": "order"}))
        .await);
    let (key, _) = app.only_job("charge", "w").await;
    ok(app.json("POST", &format!("/v1/jobs/{key}/error"), json!({"worker": "w", "lease": app.lease(&key), "code": "NOPE", "message": "no such card"})).await);
    // Waits: timers, subscriptions, messages, signals.
    let journey = ok(app
        .json(
            "POST",
            "/v1/instances",
            json!({"workflow": "journey", "variables": {"person": "p-9"}}),
        )
        .await);
    let journey = journey["id"].as_str().unwrap().to_string();
    let timers = ok(app
        .send("GET", &format!("/v1/timers?instance_id={journey}"), None)
        .await
        .into_json());
    let timer = timers["items"][0]["key"].as_str().unwrap().to_string();
    ok(app
        .send("GET", "/v1/timers?due_before=2026-02-01T00:00:00Z", None)
        .await
        .into_json());
    ok(app
        .json(
            "POST",
            &format!("/v1/timers/{timer}/reschedule"),
            json!({"due_at": "2026-01-01T12:00:00Z"}),
        )
        .await);
    ok(app
        .send("GET", "/v1/subscriptions?kind=message&name=reply", None)
        .await
        .into_json());
    ok(app.json("POST", "/v1/messages", json!({"name": "reply", "correlation_key": "nobody", "ttl_ms": 60000, "message_id": "m-1"})).await);
    ok(app
        .send("GET", "/v1/messages?state=buffered&name=reply", None)
        .await
        .into_json());
    ok(app
        .json(
            "POST",
            "/v1/signals",
            json!({"name": "ping", "variables": {"at": 1}}),
        )
        .await);
    ok(app.json("POST", "/v1/conditionals/evaluate", json!({"variables": {"x": 1}})).await);
    // Tokens (an open server lets anyone manage them; with --auth token only admins).
    let created = ok(app.json("POST", "/v1/tokens", json!({"name": "mailer", "roles": ["worker"], "job_types": ["mail"], "expires_at": "2027-01-01T00:00:00Z"})).await);
    let (status, taken) = app
        .json(
            "POST",
            "/v1/tokens",
            json!({"name": "mailer", "roles": ["viewer"]}),
        )
        .await;
    assert_eq!(
        (status, taken["code"].clone()),
        (StatusCode::CONFLICT, json!("token-name-taken"))
    );
    ok(app.send("GET", "/v1/tokens", None).await.into_json());
    // Without authentication nobody in particular calls, and every route is open.
    let me = ok(app.send("GET", "/v1/me", None).await.into_json());
    assert_eq!((&me["authenticated"], &me["tenants"]), (&json!(false), &Value::Null));
    assert_eq!(me["may"].as_array().unwrap().len(), api::access::ACCESS.len());
    ok(app
        .json(
            "POST",
            &format!("/v1/tokens/{}/revoke", created["id"].as_str().unwrap()),
            json!({}),
        )
        .await);

    // A backup is a copy of a file: on a store that is one, an SQLite file that a store opens again.
    let on_file = App::on(|scratch| Arc::new(store_sqlite::SqliteStore::open(&scratch.join("api.db")).unwrap()));
    let (status, content_type, copy) = on_file.send("GET", "/v1/backup", None).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/vnd.sqlite3"));
    assert!(copy.as_str().unwrap().starts_with("SQLite format 3"), "an SQLite file");
    app.covered.lock().unwrap().extend(on_file.covered.lock().unwrap().iter().cloned());
    if std::env::var("BATON_TEST_STORE").is_err() {
        let (status, _, problem) = app.send("GET", "/v1/backup", None).await;
        assert_eq!((status, &problem["code"]), (StatusCode::CONFLICT, &json!("backup-not-supported")), "the memory store is no file");
    }

    // The cancelled instance: kept until a time, then for ever, then deleted with its history.
    let (status, problem) = app.json("POST", &format!("/v1/instances/{id}/keep"), json!({})).await;
    assert_eq!((status, &problem["code"]), (StatusCode::BAD_REQUEST, &json!("request-invalid")), "until must be given, null or a time");
    ok(app.json("POST", &format!("/v1/instances/{id}/keep"), json!({"until": "2031-01-01T00:00:00Z", "reason": "audit"})).await);
    let kept = ok(app.send("GET", &format!("/v1/instances/{id}"), None).await.into_json());
    assert_eq!(kept["delete_at"], json!("2031-01-01T00:00:00Z"), "{kept}");
    ok(app.json("POST", &format!("/v1/instances/{id}/keep"), json!({"until": null})).await);
    assert_eq!(ok(app.send("GET", &format!("/v1/instances/{id}"), None).await.into_json())["delete_at"], Value::Null);
    // The cancelled instance, deleted with its history; then it is not there.
    ok(app.json("POST", &format!("/v1/instances/{id}/delete"), json!({"reason": "the tour is over"})).await);
    let (status, _, problem) = app.send("GET", &format!("/v1/instances/{id}"), None).await;
    assert_eq!((status, &problem["code"]), (StatusCode::NOT_FOUND, &json!("instance-not-found")));

    // Jobs in bulk: two pushed on a stream that ends after them, reported in one request.
    ok(app.json("POST", "/v1/workflows", json!({"resources": [{"name": "bulk.bpmn", "xml": BULK}]})).await);
    for _ in 0..2 {
        ok(app.json("POST", "/v1/instances", json!({"workflow": "bulk"})).await);
    }
    let streamed = ok(app.json("POST", "/v1/jobs/stream", json!({"type": "bulk", "worker": "w", "window": 2, "limit": 2})).await);
    let reports: Vec<Value> = streamed.as_array().unwrap().iter().map(|job| json!({"key": job["key"], "lease": job["lease"], "complete": {"variables": {"done": true}}})).collect();
    assert_eq!(reports.len(), 2, "{streamed}");
    let reported = ok(app.json("POST", "/v1/jobs/report", json!({"worker": "w", "jobs": reports})).await);
    assert_eq!(reported["jobs"][0]["ok"], json!(true), "{reported}");

    let covered = app.covered.lock().unwrap().clone();
    let missing: Vec<String> = api::ROUTES
        .iter()
        .map(|(method, path, ..)| format!("{method} {path}"))
        .filter(|op| !covered.contains(op))
        .collect();
    assert!(
        missing.is_empty(),
        "routes this tour did not reach: {missing:?}"
    );
}

/// Issue 11, item 7: a web page cannot write through a visitor's browser
/// (forms, `text/plain` fetches, other origins), and DNS rebinding cannot reach
/// a server on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_cannot_be_turned_against_the_server() {
    use api::guard::{is_loopback_host, Security};
    for host in [
        "localhost",
        "LOCALHOST:80",
        "127.0.0.1",
        "127.0.0.2:7444",
        "[::1]:7444",
        "app.localhost",
        "App.LocalHost:7444",
        "localhost.",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "localhost.evil.example",
        "evil-localhost",
        "127.0.0.1.nip.io",
        "evil.example",
        "10.0.0.1:7444",
        "[::2]:1",
        "",
    ] {
        assert!(!is_loopback_host(host), "{host}");
    }
    let app = App::new();
    let security = Security {
        loopback_hosts_only: true,
        allowed_origins: vec!["https://console.example.org".into()],
        ..Security::default()
    };
    let router = api::router_with(app.service.as_ref().unwrap().handle.clone(), security);
    let send = |method: &str, headers: &[(&str, &str)], body: &str| {
        let mut request = Request::builder().method(method).uri("/v1/signals");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let allow = response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_string());
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)["code"].clone(),
                allow,
            )
        }
    };
    let signal = r#"{"name": "s"}"#;
    let json = ("content-type", "application/json");
    let local = ("host", "localhost:7444");
    // Writes that a page can send without asking: refused.
    for content_type in [
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, code, _) =
            send("POST", &[local, ("content-type", content_type)], signal).await;
        assert_eq!(
            (status.as_u16(), code),
            (415, json!("unsupported-media-type")),
            "{content_type}"
        );
    }
    assert_eq!(
        send("POST", &[local], "").await.1,
        json!("unsupported-media-type"),
        "no content type, no body"
    );
    let not_a_write = Request::builder()
        .method("POST")
        .uri("/healthz")
        .header("host", "localhost")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        router.clone().oneshot(not_a_write).await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "a route that takes no POST says so first"
    );
    assert_eq!(
        send(
            "POST",
            &[local, ("content-type", "application/json; charset=utf-8")],
            signal
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    // DNS rebinding: a name that is not loopback.
    let (status, code, _) = send(
        "POST",
        &[("host", "rebound.evil.example:7444"), json],
        signal,
    )
    .await;
    assert_eq!((status.as_u16(), code), (421, json!("host-not-allowed")));
    assert_eq!(
        send("GET", &[("host", "evil.example")], "").await.1,
        json!("host-not-allowed"),
        "reads too"
    );
    assert_eq!(
        send("POST", &[("host", "[::1]:7444"), json], signal)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // Other origins: refused unless configured; configured ones get CORS headers and preflights.
    let (status, code, _) = send(
        "POST",
        &[local, json, ("origin", "https://evil.example")],
        signal,
    )
    .await;
    assert_eq!((status.as_u16(), code), (403, json!("origin-not-allowed")));
    let (status, _, allow) = send(
        "POST",
        &[local, json, ("origin", "https://console.example.org")],
        signal,
    )
    .await;
    assert_eq!(
        (status, allow.as_deref()),
        (StatusCode::NO_CONTENT, Some("https://console.example.org"))
    );
    let (status, _, allow) = send(
        "OPTIONS",
        &[
            local,
            ("origin", "https://console.example.org"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(
        (status, allow.as_deref()),
        (StatusCode::NO_CONTENT, Some("https://console.example.org"))
    );
    let (status, _, allow) = send(
        "POST",
        &[local, json, ("origin", "http://localhost:7444")],
        signal,
    )
    .await;
    assert_eq!(
        (status, allow),
        (StatusCode::NO_CONTENT, None),
        "the server's own pages are same-origin"
    );
}

/// `docs/access.md`'s table, as `api::access::ACCESS` says it.
fn access_table() -> String {
    let mut table = String::from("| method | route | who may call it |\n|---|---|---|\n");
    let v2 = api::camunda::ROUTES.iter().map(|(method, path, _, access)| (method, path, access));
    for (method, path, access) in api::access::ACCESS.iter().map(|(method, path, access)| (method, path, access)).chain(v2) {
        let who = match access {
            api::access::Access::Public => "anyone, without a token".to_string(),
            api::access::Access::Roles(roles) => roles
                .iter()
                .map(|r| format!("`{}`", r.as_str()))
                .chain(["`admin`".to_string()])
                .collect::<Vec<_>>()
                .join(", "),
        };
        table.push_str(&format!(
            "| {} | `{path}` | {who} |\n",
            method.to_uppercase()
        ));
    }
    table
}

/// Issue 11, items 1, 2 and 4: with tokens on, every route answers each role
/// as the access table says (allowed, or 403), no token gets 401, the table
/// covers every route and matches docs/access.md, and the actor is the token's holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_access_table_says() {
    use api::access::{access, new_token, Access, Role, TokenRequest, Tokens};
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/access.md"))
            .unwrap();
    assert!(
        docs.contains(&access_table()),
        "docs/access.md must hold this table:\n{}",
        access_table()
    );
    let app = App::new();
    let mut secrets = Vec::new();
    let mut rows = Vec::new();
    for role in Role::ALL {
        let request = TokenRequest {
            name: format!("{}-bot", role.as_str()),
            roles: vec![role.as_str().into()],
            ..TokenRequest::default()
        };
        let (secret, row) = new_token(request, T0).unwrap();
        secrets.push((role, secret));
        rows.push(row);
    }
    let tokens = Arc::new(Tokens::default());
    tokens.replace(rows);
    let security = api::guard::Security {
        tokens: Some(tokens),
        ..api::guard::Security::default()
    };
    let router = api::router_with(app.service.as_ref().unwrap().handle.clone(), security);
    let send = |method: &str, path: &str, token: Option<&str>| {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Body::from("{}")).unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)["code"].clone(),
            )
        }
    };
    let mut checked = 0;
    let routes = api::ROUTES.iter().map(|(method, path, ..)| (method, path)).chain(api::camunda::ROUTES.iter().map(|(method, path, ..)| (method, path)));
    for (method, path) in routes {
        let rule = access(method, path)
            .unwrap_or_else(|| panic!("{method} {path} is not in api::access::ACCESS"));
        // Camunda's keys (`{jobKey}`, ...) are integers.
        let concrete: Vec<String> = path.split('/').map(|s| if s.starts_with('{') && s.ends_with("Key}") { "8388609".to_string() } else { s.to_string() }).collect();
        let concrete = concrete
            .join("/")
            .replace("{key}", "k.1")
            .replace("{id}", "i")
            .replace("{version}", "1");
        let verb = method.to_uppercase();
        let (status, code) = send(&verb, &concrete, None).await;
        match rule {
            Access::Public => assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is public"
            ),
            Access::Roles(_) => assert_eq!(
                (status, code),
                (StatusCode::UNAUTHORIZED, json!("unauthenticated")),
                "{method} {path} without a token"
            ),
        }
        for (role, secret) in &secrets {
            let (status, code) = send(&verb, &concrete, Some(secret)).await;
            let allowed = match rule {
                Access::Public => true,
                Access::Roles(roles) => *role == Role::Admin || roles.contains(role),
            };
            if allowed {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{method} {path} as {}: {status} {code}",
                    role.as_str()
                );
            } else {
                assert_eq!(
                    (status, code),
                    (StatusCode::FORBIDDEN, json!("forbidden")),
                    "{method} {path} as {}",
                    role.as_str()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 70 * 7, "{checked} checks");
    // What /v2 does not serve answers 501 to every role, not 403.
    for (role, secret) in &secrets {
        assert_eq!(send("POST", "/v2/batch-operations/search", Some(secret)).await.0, StatusCode::NOT_IMPLEMENTED, "{}", role.as_str());
    }
    // Camunda's clients send the token as a Basic password (CAMUNDA_AUTH_STRATEGY=BASIC).
    use base64::Engine as _;
    let viewer = &secrets.iter().find(|(role, _)| *role == Role::Viewer).unwrap().1;
    let basic = |user_and_password: &str| base64::engine::general_purpose::STANDARD.encode(user_and_password);
    for (header, expected) in [
        (format!("Basic {}", basic(&format!("anyone:{viewer}"))), StatusCode::OK),
        (format!("Basic {}", basic("anyone:baton_0000")), StatusCode::UNAUTHORIZED),
        ("Basic %%%".to_string(), StatusCode::UNAUTHORIZED),
    ] {
        let request = Request::builder().method("POST").uri("/v2/process-instances/search").header("content-type", "application/json").header("authorization", header.clone()).body(Body::from("{}")).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), expected, "{header}");
    }
    // An unknown or revoked token is refused the same way, whatever it asks for.
    assert_eq!(
        send("GET", "/v1/instances/nope", Some("baton_0000")).await,
        (StatusCode::UNAUTHORIZED, json!("unauthenticated"))
    );
    assert_eq!(
        send("GET", "/v1/instances/nope", None).await.1,
        send("GET", "/v1/instances/does-it-exist", None).await.1,
        "no hint of what exists"
    );
}

/// Issue 11, items 2, 3 and 4: a token narrows what its holder may do: a
/// starter's workflows, a worker's job types, a user's tasks (candidates
/// only), a viewer's view of variables; the actor is the token's holder
/// whatever the client declares; an expired token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_narrows_what_its_holder_may_do() {
    use api::access::{new_token, TokenRequest, Tokens};
    let app = App::new();
    app.deploy(&[("order.bpmn", MODEL), ("parent.bpmn", PARENT)])
        .await;
    let token = |name: &str, roles: &[&str], change: &dyn Fn(&mut TokenRequest)| {
        let mut request = TokenRequest {
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..TokenRequest::default()
        };
        change(&mut request);
        new_token(request, T0).unwrap()
    };
    let (shop, shop_row) = token("shop", &["starter"], &|r| {
        r.workflows = Some(vec!["order".into()])
    });
    let (biller, biller_row) = token("biller", &["worker"], &|r| {
        r.job_types = Some(vec!["charge".into()])
    });
    let (ann, ann_row) = token("ann", &["user"], &|r| r.groups = vec!["managers".into()]);
    let (bob, bob_row) = token("bob", &["user"], &|_| {});
    let (olga, olga_row) = token("olga", &["operator"], &|_| {});
    let (vic, vic_row) = token("vic", &["viewer"], &|r| r.hide_variables = true);
    let (late, late_row) = token("late", &["admin"], &|r| {
        r.expires_at = Some("2025-12-31T00:00:00Z".into())
    });
    let tokens = Arc::new(Tokens::default());
    tokens.replace(vec![
        shop_row, biller_row, ann_row, bob_row, olga_row, vic_row, late_row,
    ]);
    let security = api::guard::Security {
        tokens: Some(tokens),
        ..api::guard::Security::default()
    };
    let router = api::router_with(app.service.as_ref().unwrap().handle.clone(), security);
    let call = |token: &str, method: &str, path: &str, body: Value| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .header("x-baton-actor", "mallory")
            .body(Body::from(body.to_string()))
            .unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    // A starter starts its workflows only.
    let (status, started) = call(
        &shop,
        "POST",
        "/v1/instances",
        json!({"workflow": "order", "variables": {"card": "4111"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &shop,
            "POST",
            "/v1/instances",
            json!({"workflow": "parent"})
        )
        .await
        .1["code"],
        json!("forbidden")
    );
    // A worker takes its job types only; what it does is recorded as its own, not as the header claims.
    assert_eq!(
        call(
            &biller,
            "POST",
            "/v1/jobs/activate",
            json!({"type": "ship", "worker": "b"})
        )
        .await
        .1["code"],
        json!("forbidden")
    );
    let (_, activated) = call(
        &biller,
        "POST",
        "/v1/jobs/activate",
        json!({"type": "charge", "worker": "b"}),
    )
    .await;
    let job = activated["jobs"][0]["key"].as_str().unwrap().to_string();
    let lease = activated["jobs"][0]["lease"].clone();
    assert_eq!(
        call(
            &biller,
            "POST",
            &format!("/v1/jobs/{job}/complete"),
            json!({"override": true})
        )
        .await
        .1["code"],
        json!("forbidden"),
        "overriding takes operator"
    );
    assert_eq!(
        call(
            &biller,
            "POST",
            &format!("/v1/jobs/{job}/complete"),
            json!({"worker": "b", "lease": app.lease(&job), "lease": lease})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    // The user task is for managers: bob does not see it, ann does.
    let (_, listed) = call(&bob, "GET", "/v1/tasks", json!({})).await;
    assert_eq!(listed["items"], json!([]));
    let (_, listed) = call(&ann, "GET", "/v1/tasks", json!({})).await;
    let task = listed["items"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(
        call(&bob, "GET", &format!("/v1/tasks/{task}"), json!({}))
            .await
            .1["code"],
        json!("task-not-found")
    );
    assert_eq!(
        call(
            &bob,
            "POST",
            &format!("/v1/tasks/{task}/complete"),
            json!({})
        )
        .await
        .1["code"],
        json!("task-not-found")
    );
    assert_eq!(
        call(
            &ann,
            "POST",
            &format!("/v1/tasks/{task}/claim"),
            json!({"assignee": "bob"})
        )
        .await
        .1["code"],
        json!("forbidden"),
        "assigning takes operator"
    );
    assert_eq!(
        call(
            &olga,
            "POST",
            &format!("/v1/tasks/{task}/assign"),
            json!({"assignee": "ann"})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            &ann,
            "POST",
            &format!("/v1/tasks/{task}/complete"),
            json!({"variables": {"ok": true}})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    // Who did what, as the tokens say.
    let (_, history) = call(
        &olga,
        "GET",
        &format!("/v1/instances/{id}/history?event=completed"),
        json!({}),
    )
    .await;
    let by = |element: &str| {
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["element"] == json!(element))
            .map(|e| e["actor"].clone())
    };
    assert_eq!(
        (by("charge"), by("approve")),
        (Some(json!("biller")), Some(json!("ann")))
    );
    let (_, shown) = call(&olga, "GET", &format!("/v1/instances/{id}"), json!({})).await;
    assert_eq!(
        (
            shown["created_by"].clone(),
            shown["variables"]["card"].clone()
        ),
        (json!("shop"), json!("4111"))
    );
    // A viewer whose token hides variables reads the instance without them.
    let (_, hidden) = call(&vic, "GET", &format!("/v1/instances/{id}"), json!({})).await;
    assert_eq!(
        (
            hidden["variables"].clone(),
            hidden["input"].clone(),
            hidden["status"].clone()
        ),
        (json!("[hidden]"), json!("[hidden]"), json!("completed"))
    );
    // An expired token is no token.
    assert_eq!(
        call(&late, "GET", "/v1/instances", json!({})).await,
        (
            StatusCode::UNAUTHORIZED,
            call(&late, "GET", "/v1/tokens", json!({})).await.1
        )
    );
}

/// A store that passes through to a memory store until `DAMAGED` is set,
/// then answers every read as SQLite does a damaged file.
struct Damageable(MemoryStore);

static DAMAGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl store::Store for Damageable {
    fn read(&self) -> store::Result<Box<dyn store::ReadTxn + '_>> {
        if DAMAGED.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(store::Error::corrupt("database disk image is malformed (/secret/path/baton.db)"));
        }
        self.0.read()
    }

    fn write(&self) -> store::Result<Box<dyn store::WriteTxn + '_>> {
        self.0.write()
    }
}

/// Issue 17, item 5: a read that finds the database damaged answers 500
/// `store-damaged` without the store's words (they go to the log), and from
/// then on `/readyz` says the server is not ready, even when reads work
/// again: damage stays until the file is restored and the server restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_a_read_finds_makes_the_server_not_ready_until_it_restarts() {
    let app = App::on(|_| Arc::new(Damageable(MemoryStore::new())));
    assert_eq!(app.send("GET", "/readyz", None).await.0, StatusCode::OK);
    DAMAGED.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, _, problem) = app.send("GET", "/v1/instances", None).await;
    DAMAGED.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!((status, problem["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("store-damaged")), "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("store failure #") && !detail.contains("/secret/path") && !detail.contains("malformed"), "{detail}");
    let (status, _, problem) = app.send("GET", "/readyz", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("store-unavailable")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("damaged"), "{problem}");
    // Reads work again; the server still says it is not ready.
    assert_eq!(app.send("GET", "/v1/instances", None).await.0, StatusCode::OK);
    assert_eq!(app.send("GET", "/readyz", None).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

/// Issue 17, item 4: the bodies being served at once are bounded, so memory
/// is not what runs out first: past the bound a request is answered 503
/// `overloaded` with `Retry-After`, before its body is read; its room comes
/// back when the request holding it is answered; /metrics shows both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_past_what_the_server_serves_at_once_are_answered_overloaded() {
    let app = App::new();
    app.deploy(&[("order.bpmn", MODEL)]).await;
    let limits = api::limits::LimitSettings { body_bytes_in_all: 4_000, ..api::limits::LimitSettings::default() };
    let security = api::guard::Security { limits, ..api::guard::Security::default() };
    let router = api::router_with(app.service.as_ref().unwrap().handle.clone(), security);
    let start = |body: Body, length: usize| {
        Request::builder()
            .method("POST")
            .uri("/v1/instances")
            .header("content-type", "application/json")
            .header("content-length", length)
            .body(body)
            .unwrap()
    };
    let metrics = || async {
        let request = Request::builder().uri("/metrics").body(Body::empty()).unwrap();
        let answer = router.clone().oneshot(request).await.unwrap();
        String::from_utf8(answer.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };
    // A start of 3 000 bytes whose body is still arriving holds its room.
    let slow = format!("{{\"workflow\": \"order\"{}}}", " ".repeat(3_000 - 21));
    assert_eq!(slow.len(), 3_000);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(2);
    sender.send(Ok(axum::body::Bytes::copy_from_slice(&slow.as_bytes()[..1_000]))).await.unwrap();
    let held = tokio::spawn(router.clone().oneshot(start(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver)), 3_000)));
    while !metrics().await.contains("baton_request_body_bytes 3000\n") {
        tokio::task::yield_now().await;
    }
    let large = json!({"workflow": "order", "variables": {"note": "x".repeat(1_500)}}).to_string();
    let refused = router.clone().oneshot(start(Body::from(large.clone()), large.len())).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem: Value = serde_json::from_slice(&refused.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(problem["code"], "overloaded", "{problem}");
    // Camunda's API says it as Camunda does, and keeps the header.
    let camunda = json!({"processDefinitionId": "order", "variables": {"note": "x".repeat(1_500)}}).to_string();
    let request = Request::builder()
        .method("POST")
        .uri("/v2/process-instances")
        .header("content-type", "application/json")
        .header("content-length", camunda.len())
        .body(Body::from(camunda))
        .unwrap();
    let refused = router.clone().oneshot(request).await.unwrap();
    assert_eq!((refused.status(), refused.headers()["retry-after"].to_str().unwrap()), (StatusCode::SERVICE_UNAVAILABLE, "1"));
    let problem: Value = serde_json::from_slice(&refused.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!((problem["title"].as_str(), problem["code"].as_str()), (Some("RESOURCE_EXHAUSTED"), Some("overloaded")), "{problem}");
    // What still fits is served.
    let small = json!({"workflow": "order"}).to_string();
    assert_eq!(router.clone().oneshot(start(Body::from(small.clone()), small.len())).await.unwrap().status(), StatusCode::CREATED);
    // The slow body arrives; once it is answered its room is free again.
    sender.send(Ok(axum::body::Bytes::copy_from_slice(&slow.as_bytes()[1_000..]))).await.unwrap();
    drop(sender);
    assert_eq!(held.await.unwrap().unwrap().status(), StatusCode::CREATED);
    assert_eq!(router.clone().oneshot(start(Body::from(large.clone()), large.len())).await.unwrap().status(), StatusCode::CREATED);
    let counted = metrics().await;
    assert!(counted.contains("baton_requests_refused_total{limit=\"body_bytes\"} 2\n"), "{counted}");
    assert!(counted.contains("baton_request_body_bytes 0\n"), "{counted}");
}

/// Issue 11, item 9: one client cannot starve the others: starts and
/// publications per second and long polls at once are limited per client,
/// and /metrics counts what the limits refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_starve_the_others() {
    let app = App::new();
    app.deploy(&[("order.bpmn", MODEL)]).await;
    let limits = api::limits::LimitSettings {
        starts_per_second: 2.0,
        publications_per_second: 1.0,
        polls_at_once: 1,
        polls_in_all: 2,
        ..api::limits::LimitSettings::default()
    };
    let security = api::guard::Security {
        limits,
        ..api::guard::Security::default()
    };
    let router = api::router_with(app.service.as_ref().unwrap().handle.clone(), security);
    let call = |actor: &str, path: &str, body: Value| {
        let request = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json")
            .header("x-baton-actor", actor)
            .body(Body::from(body.to_string()))
            .unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)["code"].clone(),
            )
        }
    };
    let start = json!({"workflow": "order"});
    assert_eq!(
        call("shop", "/v1/instances", start.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call("shop", "/v1/instances", start.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call("shop", "/v1/instances", start.clone()).await,
        (StatusCode::TOO_MANY_REQUESTS, json!("rate-limited")),
        "a burst of two, then two a second"
    );
    assert_eq!(
        call("till", "/v1/instances", start.clone()).await.0,
        StatusCode::CREATED,
        "another client has its own allowance"
    );
    let message = json!({"name": "m", "correlation_key": "k"});
    assert_eq!(
        call("shop", "/v1/messages", message.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call("shop", "/v1/messages", message).await.1,
        json!("rate-limited")
    );
    // One long poll at a time per worker.
    let resources = json!({"resources": [{"name": "letter.bpmn", "xml": LETTER}]});
    assert_eq!(
        app.json("POST", "/v1/workflows", resources).await.0,
        StatusCode::CREATED
    );
    let metrics = || async {
        let request = Request::builder()
            .uri("/metrics")
            .body(Body::empty())
            .unwrap();
        let bytes = router
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let first = tokio::spawn(call(
        "w",
        "/v1/jobs/activate",
        json!({"type": "print", "worker": "w", "timeout_ms": 30_000}),
    ));
    let mut waiting = false;
    for _ in 0..10_000 {
        waiting = metrics().await.contains("baton_long_polls 1");
        if waiting {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(waiting, "the first poll waits");
    let second = call(
        "w",
        "/v1/jobs/activate",
        json!({"type": "print", "worker": "w", "timeout_ms": 30_000}),
    )
    .await;
    assert_eq!(
        second,
        (StatusCode::TOO_MANY_REQUESTS, json!("too-many-polls"))
    );
    assert_eq!(
        call(
            "w",
            "/v1/jobs/activate",
            json!({"type": "print", "worker": "w"})
        )
        .await
        .0,
        StatusCode::OK,
        "a poll that does not wait takes no place"
    );
    assert_eq!(
        call(
            "v",
            "/v1/jobs/activate",
            json!({"type": "nothing", "worker": "v"})
        )
        .await
        .0,
        StatusCode::OK,
        "another worker has its own places"
    );
    // Two long polls in all: a second client's is taken, a third client's is refused.
    let second_client = tokio::spawn(call("v", "/v1/jobs/activate", json!({"type": "nothing", "worker": "v", "timeout_ms": 1_000})));
    let mut both = false;
    for _ in 0..10_000 {
        both = metrics().await.contains("baton_long_polls 2");
        if both {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(both, "two polls wait");
    let (status, problem) = call("u", "/v1/jobs/activate", json!({"type": "nothing", "worker": "u", "timeout_ms": 1_000})).await;
    assert_eq!((status, problem), (StatusCode::TOO_MANY_REQUESTS, json!("too-many-polls")), "the server's cap, whoever asks");
    assert_eq!(second_client.await.unwrap().0, StatusCode::OK);
    // A print job ends the first poll, and frees its place.
    assert_eq!(
        call("till", "/v1/instances", json!({"workflow": "letter"}))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    assert!(metrics().await.contains("baton_long_polls 0"));
    let metrics = metrics().await;
    for line in [
        "baton_requests_refused_total{limit=\"starts\"} 1",
        "baton_requests_refused_total{limit=\"publications\"} 1",
        "baton_requests_refused_total{limit=\"polls\"} 1",
        "baton_requests_refused_total{limit=\"polls_in_all\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

/// A burst of new connections larger than the standard listener's queue
/// of 128 waits in the server's queue until it is accepted. Past a full
/// queue the kernel drops a connection's first packet and the client sends
/// it again only a second later: the slowest W3 instance over HTTP took a
/// second while the bench's clients opened their connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connections_waits_in_the_listeners_queue_not_a_second_for_a_resend() {
    use std::time::Duration;
    let listener = api::connections::listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let address = listener.local_addr().unwrap();
    // Nothing accepts them: each stays in the queue, as while the server is
    // busy. Each is given less than the second after which a client sends
    // a dropped packet again.
    let connects: Vec<_> = (0..300)
        .map(|_| tokio::spawn(tokio::time::timeout(Duration::from_millis(900), tokio::net::TcpStream::connect(address))))
        .collect();
    let mut queued = 0;
    for connect in connects {
        if matches!(connect.await.unwrap(), Ok(Ok(_))) {
            queued += 1;
        }
    }
    assert_eq!(queued, 300, "connections set up without waiting for a resend");
    drop(listener);
}

/// Issue 11, item 9: a client that sends its request headers too slowly is
/// cut off instead of holding a connection (and a file) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_to_send_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    use std::time::Duration;
    let app = App::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let handle = app.service.as_ref().unwrap().handle.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let header_timeout = Duration::from_millis(300);
    let served = tokio::spawn(api::serve_with(
        listener,
        handle,
        api::guard::Security::default(),
        None,
        header_timeout,
        async move {
            let _ = stopped.await;
        },
    ));
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        // A safety net for the test itself, far beyond the server's limit.
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            .unwrap();
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        (
            read.is_ok(),
            started.elapsed(),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    })
    .await
    .unwrap();
    let (closed, took, text) = answer;
    assert!(closed, "the server closed the connection");
    assert!(
        took < Duration::from_secs(10),
        "within its limit, not the test's: {took:?}"
    );
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // A client that sends its request in time is answered as usual.
    let ok = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

/// Issue 11, item 6: what the database said (SQL, file paths) stays in the
/// server's log; the client gets a reference to it.
#[test]
fn a_store_failure_does_not_show_the_client_sql_or_paths() {
    let failure = runtime::Error::Store(store::Error::other(
        "near \"SELEKT\": syntax error in /var/lib/baton/baton.db",
    ));
    let problem = api::ApiError::from(failure);
    assert_eq!(problem.code, "store-failed");
    assert!(
        !problem.detail.contains("SELEKT") && !problem.detail.contains("/var/lib"),
        "{}",
        problem.detail
    );
    assert!(
        problem.detail.contains("store failure #"),
        "{}",
        problem.detail
    );
}

/// Issue 12, item 3 (and issue 16): the counts by status and incidents move
/// with every instance, per workflow version, without listing instances.
#[tokio::test]
async fn instance_counts_follow_each_instance() {
    let app = App::new();
    app.deploy(&[("order.bpmn", MODEL)]).await;
    let ids = [
        app.start(json!({"workflow": "order"})).await,
        app.start(json!({"workflow": "order"})).await,
        app.start(json!({"workflow": "order"})).await,
    ];
    let (status, _) = app.json("POST", &format!("/v1/instances/{}/cancel", ids[0]), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, activated) = app
        .json("POST", "/v1/jobs/activate", json!({"type": "charge", "worker": "w", "max_jobs": 1}))
        .await;
    let job = &activated["jobs"][0];
    let (status, _) = app
        .json(
            "POST",
            &format!("/v1/jobs/{}/fail", job["key"].as_str().unwrap()),
            json!({"worker": "w", "lease": job["lease"], "retries": 0, "message": "declined"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, counts) = app.send("GET", "/v1/instances/counts?workflow=order", None).await.into_json();
    assert_eq!(status, StatusCode::OK, "{counts}");
    assert_eq!(counts["total"], 3);
    assert_eq!(counts["by_status"], json!({"running": 2, "suspended": 0, "completed": 0, "cancelled": 1, "failed": 0}));
    assert_eq!(counts["with_incidents"], 1);
    let (_, none) = app.send("GET", "/v1/instances/counts?workflow=order&version=2", None).await.into_json();
    assert_eq!(none["total"], 0);
}

/// Issue 13, item 1: a decision deployed beside BPMN is evaluated directly,
/// with its version and the rules that matched; a failing one answers why.
#[tokio::test]
async fn a_deployed_decision_is_evaluated_directly() {
    let app = App::new();
    let (status, deployed) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "dish.dmn", "xml": DISH}]})).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    assert_eq!(deployed["decisions"], json!([{"decision_id": "dish", "tenant": "default", "version": 1, "created": true}]));
    let (status, answer) = app.json("POST", "/v1/decisions/dish/evaluate", json!({"variables": {"season": "Spring", "guestCount": 6}})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"], "Steak");
    assert_eq!(answer["matched"], json!([{"decision": "Dish", "rules": [4]}]));
    let (status, failed) = app.json("POST", "/v1/decisions/dish/evaluate", json!({"variables": {"season": "Summer", "guestCount": 200}})).await;
    assert_eq!((status, failed["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("decision-failed")), "{failed}");
    assert!(failed["detail"].as_str().unwrap().contains("rules 6, 7 matched"), "{failed}");
    let (status, missing) = app.json("POST", "/v1/decisions/nowhere/evaluate", json!({})).await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("decision-not-found")));
    // A broken DMN file refuses the deployment, naming the decision.
    let broken = DISH.replace("&lt;= 8</text>", "&lt;= </text>");
    let (status, refused) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "dish.dmn", "xml": broken}]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((refused["diagnostics"][0]["code"].as_str(), refused["diagnostics"][0]["element"].as_str()), (Some("expression-invalid"), Some("dish")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_hoc_subprocess_s_job_decides_what_runs_in_it() {
    let app = App::new();
    let model = include_str!("../../../tests/scenarios/ad-hoc.bpmn");
    let (status, deployed) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "ad-hoc.bpmn", "xml": model}]})).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    let (_, started) = app.json("POST", "/v1/instances", json!({"workflow": "agent"})).await;
    let id = started["id"].as_str().unwrap().to_string();
    let (_, activated) = app.json("POST", "/v1/jobs/activate", json!({"type": "ai-agent", "worker": "agent"})).await;
    let job = &activated["jobs"][0];
    let key = job["key"].as_str().unwrap().to_string();
    let elements: Vec<&str> = job["variables"]["adHocSubProcessElements"].as_array().unwrap().iter().map(|e| e["elementId"].as_str().unwrap()).collect();
    assert_eq!(elements, ["a_search", "a_clock"], "{job}");
    let lease = app.lease(&key);
    // A result naming what the subprocess cannot activate is refused, and the job stays.
    let wrong = json!({"worker": "agent", "lease": lease, "result": {"type": "adHocSubProcess", "activateElements": [{"elementId": "a_end"}]}});
    let (status, refused) = app.json("POST", &format!("/v1/jobs/{key}/complete"), wrong).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("element-not-found")), "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("a_search, a_clock"), "{refused}");
    let decide = json!({"worker": "agent", "lease": lease, "result": {"activateElements": [{"elementId": "a_search", "variables": {"toolCall": {"id": "c1", "orderNumber": "A-7"}}}]}});
    let (status, _) = app.json("POST", &format!("/v1/jobs/{key}/complete"), decide).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, search) = app.json("POST", "/v1/jobs/activate", json!({"type": "search", "worker": "tools"})).await;
    assert_eq!(search["jobs"][0]["variables"]["orderNumber"], json!("A-7"), "fromAi() gave the tool call's value: {search}");
    let (_, history) = app.send("GET", &format!("/v1/instances/{id}/history?event=job_completed"), None).await.into_json();
    assert_eq!(history["items"].as_array().unwrap().iter().map(|e| e["element"].as_str().unwrap()).collect::<Vec<_>>(), ["a_agent"], "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_task_listeners_see_each_change_first_and_may_correct_or_deny_it() {
    let app = App::new();
    let model = include_str!("../../../tests/scenarios/task-listeners.bpmn");
    let (status, deployed) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "review.bpmn", "xml": model}]})).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    app.json("POST", "/v1/instances", json!({"workflow": "review", "variables": {"owner": null}})).await;
    let (_, tasks) = app.send("GET", "/v1/tasks", None).await.into_json();
    assert_eq!(tasks["items"], json!([]), "a task its creating listeners have not let through is not listed yet");
    let take = async |job_type: &str| {
        let (_, activated) = app.json("POST", "/v1/jobs/activate", json!({"type": job_type, "worker": "listeners"})).await;
        let job = activated["jobs"][0].clone();
        assert!(job.is_object(), "no {job_type} job: {activated}");
        let key = job["key"].as_str().unwrap().to_string();
        (key.clone(), app.lease(&key), job)
    };
    let (key, lease, job) = take("prepare").await;
    assert_eq!(job["listener"], json!("creating"), "{job}");
    assert_eq!(job["headers"]["io.camunda.zeebe:action"], json!("create"), "{job}");
    let correct = json!({"worker": "listeners", "lease": lease, "result": {"type": "userTask", "corrections": {"candidateGroups": ["clerks"]}}});
    assert_eq!(app.json("POST", &format!("/v1/jobs/{key}/complete"), correct).await.0, StatusCode::NO_CONTENT);
    let (_, tasks) = app.send("GET", "/v1/tasks", None).await.into_json();
    let task = tasks["items"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(tasks["items"][0]["candidate_groups"], json!(["clerks"]), "{tasks}");
    // An update goes through the updating listener.
    let (status, _) = app.json("POST", &format!("/v1/tasks/{task}/update"), json!({"priority": 7})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (key, lease, job) = take("on-update").await;
    assert_eq!(job["headers"]["io.camunda.zeebe:changedAttributes"], json!("[\"priority\"]"), "{job}");
    app.json("POST", &format!("/v1/jobs/{key}/complete"), json!({"worker": "listeners", "lease": lease})).await;
    let (_, shown) = app.send("GET", &format!("/v1/tasks/{task}"), None).await.into_json();
    assert_eq!(shown["priority"], json!(7), "{shown}");
    assert_eq!(shown["properties"], json!({"team": "finance"}), "the element's zeebe:properties come with the task");
    // The completing listener sees the variables the task would complete with, and denies.
    app.json("POST", &format!("/v1/tasks/{task}/complete"), json!({"variables": {"approved": "maybe"}})).await;
    let (_, busy) = app.json("POST", &format!("/v1/tasks/{task}/complete"), json!({"variables": {"approved": true}})).await;
    assert_eq!(busy["code"], json!("task-in-transition"), "{busy}");
    let (key, lease, job) = take("validate").await;
    assert_eq!(job["variables"]["approved"], json!("maybe"), "{job}");
    let deny = json!({"worker": "listeners", "lease": lease, "result": {"denied": true, "deniedReason": "yes or no"}});
    app.json("POST", &format!("/v1/jobs/{key}/complete"), deny).await;
    let (status, shown) = app.send("GET", &format!("/v1/tasks/{task}"), None).await.into_json();
    assert_eq!((status, shown["state"].as_str()), (StatusCode::OK, Some("open")), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluating_conditionals_starts_the_workflows_whose_start_conditions_hold() {
    let app = App::new();
    let model = include_str!("../../../tests/scenarios/conditional-events.bpmn");
    let (status, deployed) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "conditional.bpmn", "xml": model}]})).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    let (status, answer) = app.json("POST", "/v1/conditionals/evaluate", json!({"variables": {"stock": 0}})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut started: Vec<&str> = answer["instances"].as_array().unwrap().iter().map(|i| i["start_event"].as_str().unwrap()).collect();
    started.sort();
    assert_eq!(started, ["r_empty", "r_low"], "{answer}");
    let id = answer["instances"][0]["id"].as_str().unwrap();
    let (_, instance) = app.send("GET", &format!("/v1/instances/{id}"), None).await.into_json();
    assert_eq!((instance["workflow"].as_str(), instance["variables"]["stock"].as_i64()), (Some("restock"), Some(0)), "{instance}");
    let (_, none) = app.json("POST", "/v1/conditionals/evaluate", json!({"variables": {"stock": 50}, "workflow": "restock"})).await;
    assert_eq!(none["instances"], json!([]));
}

/// Reads a job stream's body line by line, heartbeats left out.
struct Lines {
    body: Body,
    buffer: String,
}

impl Lines {
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find('\n') {
                let line: String = self.buffer.drain(..=end).collect();
                if line.trim().is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&line).unwrap());
            }
            let frame = tokio::time::timeout(std::time::Duration::from_secs(30), self.body.frame()).await.expect("a line within 30 s")?;
            if let Ok(data) = frame.unwrap().into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}

/// Issue 16, item 3: a stream pushes jobs as they are created but never
/// more than its window unreported; a report of many jobs answers each, and
/// frees the places of those that left the worker's hands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stream_keeps_to_its_window_and_a_report_answers_each_job() {
    let app = App::new();
    app.json("POST", "/v1/workflows", json!({"resources": [{"name": "bulk.bpmn", "xml": BULK}]})).await;
    for _ in 0..3 {
        app.json("POST", "/v1/instances", json!({"workflow": "bulk"})).await;
    }
    let request = Request::builder()
        .method("POST")
        .uri("/v1/jobs/stream")
        .header("content-type", "application/json")
        .body(Body::from(json!({"type": "bulk", "worker": "w", "window": 2, "lease_ms": 60000}).to_string()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut lines = Lines { body: response.into_body(), buffer: String::new() };
    let first = lines.next().await.unwrap();
    let second = lines.next().await.unwrap();
    assert_eq!((first["lease_until"].as_str(), second["lease_until"].as_str()), (Some("2026-01-01T00:01:00Z"), Some("2026-01-01T00:01:00Z")));
    // The window is full: the third job waits for the stream, activatable.
    let (_, waiting) = app.send("GET", "/v1/jobs?type=bulk", None).await.into_json();
    let held: Vec<&Value> = waiting["items"].as_array().unwrap().iter().filter(|job| job["worker"] == json!("w")).collect();
    assert_eq!(held.len(), 2, "{waiting}");
    app.clock.advance(1_000);

    // A malformed entry refuses the whole report: nothing is applied.
    let (status, problem) = app
        .json("POST", "/v1/jobs/report", json!({"worker": "w", "jobs": [
            {"key": first["key"], "lease": first["lease"], "complete": {}},
            {"key": second["key"], "lease": second["lease"], "complete": {}, "fail": {"retries": 1}},
        ]}))
        .await;
    assert_eq!((status, &problem["code"]), (StatusCode::BAD_REQUEST, &json!("request-invalid")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("jobs[1]"), "{problem}");
    let (_, open) = app.send("GET", "/v1/jobs?type=bulk", None).await.into_json();
    assert_eq!(open["items"].as_array().unwrap().len(), 3, "nothing was completed: {open}");

    // One done, one with a lease that is not the worker's, one that does not exist.
    let (status, reported) = app
        .json("POST", "/v1/jobs/report", json!({"worker": "w", "jobs": [
            {"key": first["key"], "lease": first["lease"], "complete": {"variables": {"done": true}}},
            {"key": second["key"], "lease": "not-the-lease", "error": {"code": "nope"}},
            {"key": "i9/9", "lease": "x", "fail": {"retries": 0, "message": "gone"}},
        ]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reported}");
    let outcomes: Vec<(Value, Value)> = reported["jobs"].as_array().unwrap().iter().map(|j| (j["ok"].clone(), j["problem"]["code"].clone())).collect();
    assert_eq!(outcomes[0], (json!(true), Value::Null), "{reported}");
    assert_eq!(outcomes[1].0, json!(false), "{reported}");
    assert_eq!(outcomes[2], (json!(false), json!("job-not-found")), "{reported}");
    assert_eq!(reported["jobs"][0]["key"], first["key"]);

    // The first job's place is free: the third comes, taken after the report (its lease runs from then).
    let third = lines.next().await.unwrap();
    assert_eq!(third["lease_until"], json!("2026-01-01T00:01:01Z"), "{third}");
    assert_ne!(third["key"], second["key"]);

    // The second job is still the worker's; its lease running out frees its place too.
    app.json("POST", "/v1/instances", json!({"workflow": "bulk"})).await;
    app.clock.advance(60_000);
    let again = lines.next().await.unwrap();
    assert!(again["key"].is_string(), "a place came free when a lease ran out: {again}");
    drop(lines);

    // A stream with a limit ends after it.
    let (status, _, ended) = app.send("POST", "/v1/jobs/stream", Some(json!({"type": "bulk", "worker": "v", "window": 5, "limit": 1}).to_string())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended.as_array().unwrap().len(), 1, "{ended}");
    for (body, code) in [
        (json!({"type": "bulk", "worker": "w", "window": 0}), "request-invalid"),
        (json!({"type": "bulk", "worker": "w", "window": 1001}), "request-invalid"),
        (json!({"type": "bulk", "worker": "w", "window": 1, "limit": 0}), "request-invalid"),
        (json!({"type": "bulk", "worker": "w"}), "request-invalid"),
    ] {
        let (status, problem) = app.json("POST", "/v1/jobs/stream", body.clone()).await;
        assert_eq!((status, &problem["code"]), (StatusCode::BAD_REQUEST, &json!(code)), "{body}: {problem}");
    }
    let (status, problem) = app.json("POST", "/v1/jobs/report", json!({"worker": "w", "jobs": []})).await;
    assert_eq!((status, &problem["code"]), (StatusCode::BAD_REQUEST, &json!("request-invalid")), "{problem}");
}
