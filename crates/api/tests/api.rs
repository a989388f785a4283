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

struct App {
    router: Router,
    clock: Arc<ManualClock>,
    service: Option<Service>,
}

impl App {
    fn new() -> App {
        let clock = Arc::new(ManualClock::new(T0));
        let service = Service::start(Arc::new(MemoryStore::new()), clock.clone(), Box::new(SequentialIds::default()), Options::default()).unwrap();
        App { router: api::router(service.handle.clone()), clock, service: Some(service) }
    }

    async fn send(&self, method: &str, path: &str, body: Option<String>) -> (StatusCode, String, Value) {
        let request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        let request = request.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
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
    let (status, deployed) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]})).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    assert_eq!(deployed["workflows"], json!([{"workflow": "order", "version": 1, "created": true}]));
    let (_, again) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]})).await;
    assert_eq!(again["workflows"][0]["created"], json!(false), "identical content keeps its version");
    let (status, started) = app.json("POST", "/v1/instances", json!({"workflow": "order", "variables": {"amount": 5}, "business_key": "o-1"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = started["id"].as_str().unwrap().to_string();
    let (status, activated) = app.json("POST", "/v1/jobs/activate", json!({"type": "charge", "worker": "w1", "max_jobs": 5})).await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    let job = &activated["jobs"][0];
    assert_eq!((job["element_id"].clone(), job["variables"]["amount"].clone()), (json!("charge"), json!(5)));
    let key = job["key"].as_str().unwrap();
    let (status, _) = app.json("POST", &format!("/v1/jobs/{key}/complete"), json!({"worker": "w1", "variables": {"receipt": "r-9"}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, tasks) = app.send("GET", "/v1/tasks?candidate_group=managers", None).await.into_json();
    let task = tasks["items"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(app.json("POST", &format!("/v1/tasks/{task}/claim"), json!({"assignee": "ann"})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.json("POST", &format!("/v1/tasks/{task}/claim"), json!({"assignee": "bob"})).await.1["code"], json!("task-claimed"));
    assert_eq!(app.json("POST", &format!("/v1/tasks/{task}/complete"), json!({"variables": {"ok": true}})).await.0, StatusCode::NO_CONTENT);
    let (_, instance) = app.send("GET", &format!("/v1/instances/{id}"), None).await.into_json();
    assert_eq!(instance["status"], json!("completed"));
    assert_eq!(instance["input"], json!({"amount": 5}));
    assert_eq!(instance["variables"], json!({"amount": 5, "receipt": "r-9", "ok": true}));
    let (_, history) = app.send("GET", &format!("/v1/instances/{id}/history?limit=100"), None).await.into_json();
    let ended: Vec<(String, String)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["state"] != json!("activated"))
        .map(|h| (h["element"].as_str().unwrap().to_string(), h["state"].as_str().unwrap().to_string()))
        .collect();
    let expected: Vec<(String, String)> = ["start", "charge", "approve", "end", "order"].iter().map(|e| (e.to_string(), "completed".to_string())).collect();
    assert_eq!(ended, expected);
    let (_, listed) = app.send("GET", "/v1/instances?status=completed&business_key=o-1&variable=amount=5", None).await.into_json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let (_, other) = app.json("POST", "/v1/instances", json!({"workflow": "order"})).await;
    let other = other["id"].as_str().unwrap();
    assert_eq!(app.json("POST", &format!("/v1/instances/{other}/cancel"), json!({"reason": "duplicate order"})).await.0, StatusCode::NO_CONTENT);
    let (_, cancelled) = app.send("GET", &format!("/v1/instances/{other}"), None).await.into_json();
    assert_eq!((cancelled["status"].clone(), cancelled["cancel_reason"].clone()), (json!("cancelled"), json!("duplicate order")));
    let (_, again) = app.json("POST", &format!("/v1/instances/{other}/cancel"), json!({})).await;
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
    let huge = format!(r#"{{"workflow": "order", "variables": {{"blob": "{}"}}}}"#, "x".repeat(2 * 1024 * 1024));
    // Method, path, body, status, code, a phrase the detail must contain.
    type Case<'a> = (&'a str, String, Option<String>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("POST", "/v1/instances".into(), Some("{not json".into()), 400, "request-invalid", "key must be a string"),
        ("POST", "/v1/instances".into(), Some(r#"{"workflow": "order", "colour": "red"}"#.into()), 400, "request-invalid", "unknown field `colour`"),
        ("POST", "/v1/instances".into(), Some(r#"{"workflow": 7}"#.into()), 400, "request-invalid", "invalid type: integer `7`"),
        ("POST", "/v1/instances".into(), Some(r#"{"workflow": "order", "variables": [1]}"#.into()), 400, "request-invalid", "expected a map"),
        ("POST", "/v1/instances".into(), Some(huge), 413, "body-too-large", "1048576 bytes"),
        ("POST", "/v1/instances".into(), Some(r#"{"workflow": "ghost"}"#.into()), 404, "workflow-not-found", "ghost"),
        ("GET", "/v1/instances/nope".into(), None, 404, "instance-not-found", "nope"),
        ("POST", "/v1/instances/nope/cancel".into(), None, 404, "instance-not-found", "nope"),
        ("POST", "/v1/jobs/nope.1/complete".into(), None, 404, "job-not-found", "nope.1"),
        ("POST", "/v1/tasks/nope.1/complete".into(), None, 404, "task-not-found", "nope.1"),
        ("POST", "/v1/incidents/nope.1/resolve".into(), None, 404, "incident-not-found", "nope.1"),
        ("GET", "/v1/workflows/ghost".into(), None, 404, "workflow-not-found", "ghost"),
        ("GET", "/v1/instances?status=sleeping".into(), None, 400, "query-invalid", "sleeping"),
        ("GET", "/v1/instances?limit=0".into(), None, 400, "query-invalid", "limit"),
        ("GET", "/v1/instances?colour=red".into(), None, 400, "query-invalid", "unknown field `colour`"),
        ("GET", "/v1/instances?started_after=yesterday".into(), None, 400, "query-invalid", "yesterday"),
        ("POST", "/v1/jobs/activate".into(), Some(r#"{"type": "charge", "worker": "w", "max_jobs": 0}"#.into()), 400, "request-invalid", "max_jobs"),
        ("POST", "/v1/messages".into(), Some(r#"{"name": ""}"#.into()), 400, "request-invalid", "name is empty"),
        ("GET", "/v1/nowhere".into(), None, 404, "route-not-found", "no endpoint"),
        ("DELETE", "/v1/instances".into(), None, 405, "method-not-allowed", "method"),
        ("POST", "/v1/workflows".into(), Some(json!({"resources": [{"name": "broken.bpmn", "xml": broken}]}).to_string()), 422, "deployment-invalid", "nowhere"),
        ("POST", "/v1/workflows".into(), Some(json!({"resources": [{"name": "x.bpmn", "xml": "<definitions"}]}).to_string()), 422, "deployment-invalid", "well-formed"),
    ];
    for (method, path, body, status, code, detail) in cases {
        let (actual_status, content_type, problem) = app.send(method, &path, body).await;
        assert_eq!(actual_status.as_u16(), status, "{method} {path}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{method} {path}");
        assert_eq!(problem["code"], json!(code), "{method} {path}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{method} {path}: {problem}");
        assert_eq!(problem["status"], json!(status));
    }
    let (_, workflows) = app.send("GET", "/v1/workflows", None).await.into_json();
    assert_eq!(workflows["items"], json!([]), "the refused deployments left nothing behind");
    let (_, problem) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "broken.bpmn", "xml": broken}]})).await;
    assert_eq!(problem["diagnostics"][0]["element"], json!("f3"), "the diagnostics come with the problem");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_ran_out_cannot_complete_and_a_job_completes_once() {
    let app = App::new();
    app.json("POST", "/v1/workflows", json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]})).await;
    app.json("POST", "/v1/instances", json!({"workflow": "order"})).await;
    let (_, activated) = app.json("POST", "/v1/jobs/activate", json!({"type": "charge", "worker": "slow", "lease_ms": 1000})).await;
    let key = activated["jobs"][0]["key"].as_str().unwrap().to_string();
    app.clock.advance(1001);
    let (_, expired) = app.json("POST", &format!("/v1/jobs/{key}/complete"), json!({"worker": "slow"})).await;
    assert_eq!(expired["code"], json!("job-lease-expired"), "{expired}");
    let (_, again) = app.json("POST", "/v1/jobs/activate", json!({"type": "charge", "worker": "fast"})).await;
    assert_eq!(again["jobs"][0]["key"], json!(key));
    let (_, held) = app.json("POST", &format!("/v1/jobs/{key}/complete"), json!({"worker": "slow"})).await;
    assert_eq!(held["code"], json!("job-leased-to-another-worker"));
    assert_eq!(app.json("POST", &format!("/v1/jobs/{key}/complete"), json!({"worker": "fast"})).await.0, StatusCode::NO_CONTENT);
    let (status, twice) = app.json("POST", &format!("/v1/jobs/{key}/complete"), json!({"worker": "fast"})).await;
    assert_eq!((status, twice["code"].clone()), (StatusCode::NOT_FOUND, json!("job-not-found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_follow_their_cursors_and_a_long_poll_wakes_for_a_new_job() {
    let app = App::new();
    app.json("POST", "/v1/workflows", json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]})).await;
    for _ in 0..5 {
        app.json("POST", "/v1/instances", json!({"workflow": "order"})).await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/instances?limit=2".to_string();
    loop {
        let (_, page) = app.send("GET", &path, None).await.into_json();
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/instances?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["i1", "i2", "i3", "i4", "i5"]);
    // Take all five jobs, then poll for a sixth that arrives while the poll waits.
    app.json("POST", "/v1/jobs/activate", json!({"type": "charge", "worker": "w", "max_jobs": 10})).await;
    let router = app.router.clone();
    let poll = tokio::spawn(async move {
        let body = json!({"type": "charge", "worker": "w", "timeout_ms": 30000}).to_string();
        let request = Request::builder().method("POST").uri("/v1/jobs/activate").header("content-type", "application/json").body(Body::from(body)).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    });
    tokio::task::yield_now().await;
    app.json("POST", "/v1/instances", json!({"workflow": "order"})).await;
    let polled = poll.await.unwrap();
    assert_eq!(polled["jobs"].as_array().unwrap().len(), 1, "{polled}");
    assert_eq!(polled["jobs"][0]["instance_id"], json!("i6"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_exists_and_every_error_code_has_a_page() {
    let app = App::new();
    let document = api::openapi();
    for (method, path, ..) in api::ROUTES {
        let concrete = path.replace("{key}", "k").replace("{id}", "i").replace("{version}", "1");
        let (_, _, answer) = app.send(&method.to_uppercase(), &concrete, Some("{}".into())).await;
        assert!(answer["code"] != json!("route-not-found") && answer["code"] != json!("method-not-allowed"), "{method} {path}: {answer}");
        assert!(document["paths"][path][method].is_object(), "{method} {path} is missing from the OpenAPI document");
    }
    let (_, served) = app.send("GET", "/v1/openapi.json", None).await.into_json();
    assert_eq!(served, document);
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors");
    for (code, status, _) in api::ERRORS {
        let page = std::fs::read_to_string(docs.join(format!("{code}.md"))).unwrap_or_else(|_| panic!("docs/errors/{code}.md is missing"));
        assert!(page.contains(&status.to_string()), "docs/errors/{code}.md does not state its status {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer() {
    let app = App::new();
    assert_eq!(app.send("GET", "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(app.send("GET", "/readyz", None).await.0, StatusCode::OK);
    app.json("POST", "/v1/workflows", json!({"resources": [{"name": "order.bpmn", "xml": MODEL}]})).await;
    app.json("POST", "/v1/instances", json!({"workflow": "order"})).await;
    let (status, content_type, text) = app.send("GET", "/metrics", None).await;
    assert_eq!((status, content_type.starts_with("text/plain")), (StatusCode::OK, true));
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains("baton_instances_started_total 1"), "{text}");
    assert!(text.contains("baton_instances{status=\"running\"} 1"), "{text}");
    assert!(text.contains("baton_commit_batch_size_count"), "{text}");
    // The started instance was written, so the core keeps it decoded.
    assert!(text.contains("baton_instance_cache_entries 1"), "{text}");
    assert!(text.contains("baton_instance_cache_lookups_total{result=\"hit\"}"), "{text}");
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
    assert!(problem["detail"].as_str().unwrap().contains("commit loop is not running"), "{problem}");
    assert_eq!(app.send("GET", "/healthz", None).await.0, StatusCode::OK);
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
    assert_eq!(app.json("POST", "/v1/workflows", resources).await.0, StatusCode::CREATED);
    let (_, started) = app.json("POST", "/v1/instances", json!({"workflow": "parent"})).await;
    let root = started["id"].as_str().unwrap().to_string();
    let (_, other) = app.json("POST", "/v1/instances", json!({"workflow": "parent"})).await;
    let other = other["id"].as_str().unwrap().to_string();
    let (_, activated) = app.json("POST", "/v1/jobs/activate", json!({"type": "charge", "worker": "w1", "max_jobs": 5})).await;
    let job = activated["jobs"].as_array().unwrap().iter().find(|j| j["instance_id"].as_str().unwrap().starts_with(&format!("{root}/"))).unwrap();
    let (child, key) = (job["instance_id"].as_str().unwrap().to_string(), job["key"].as_str().unwrap().to_string());
    let failed = app.json("POST", &format!("/v1/jobs/{}/fail", key.replace('/', "%2F")), json!({"worker": "w1", "retries": 0, "message": "card declined"})).await;
    assert_eq!(failed.0, StatusCode::NO_CONTENT, "{}", failed.1);

    let (_, shown) = app.send("GET", &format!("/v1/instances/{root}"), None).await.into_json();
    assert_eq!((shown["incidents"].clone(), shown["descendant_incidents"].clone()), (json!(0), json!(1)), "{shown}");
    let (_, shown) = app.send("GET", &format!("/v1/instances/{}", child.replace('/', "%2F")), None).await.into_json();
    assert_eq!((shown["incidents"].clone(), shown["descendant_incidents"].clone()), (json!(1), json!(0)));
    let (_, listed) = app.send("GET", "/v1/instances?has_incidents=true", None).await.into_json();
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [root.as_str(), child.as_str()], "the root is found by its child's incident; the other root is not");
    let (_, clean) = app.send("GET", "/v1/instances?has_incidents=false", None).await.into_json();
    let clean: Vec<&str> = clean["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(clean.contains(&other.as_str()) && !clean.contains(&root.as_str()), "{clean:?}");
    let (_, own) = app.send("GET", &format!("/v1/incidents?instance_id={root}"), None).await.into_json();
    assert_eq!(own["items"], json!([]));
    let (_, all) = app.send("GET", &format!("/v1/incidents?instance_id={root}&descendants=true"), None).await.into_json();
    let incidents = all["items"].as_array().unwrap();
    assert_eq!((incidents.len(), incidents[0]["instance_id"].clone(), incidents[0]["message"].clone()), (1, json!(child), json!("card declined")));
    let (status, problem) = app.send("GET", "/v1/incidents?descendants=true", None).await.into_json();
    assert_eq!((status, problem["code"].clone()), (StatusCode::BAD_REQUEST, json!("query-invalid")));

    let incident = incidents[0]["key"].as_str().unwrap().replace('/', "%2F");
    assert_eq!(app.json("POST", &format!("/v1/jobs/{}/retries", key.replace('/', "%2F")), json!({"retries": 1})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.json("POST", &format!("/v1/incidents/{incident}/resolve"), json!({})).await.0, StatusCode::NO_CONTENT);
    let (_, shown) = app.send("GET", &format!("/v1/instances/{root}"), None).await.into_json();
    assert_eq!(shown["descendant_incidents"], json!(0), "a resolved incident no longer counts");
}
