//! Issue 11, item 5: two tenants side by side. Each deploys the same process
//! id, runs instances that wait on the same job types, message, signal and
//! timer, and then every route of the API is tried with one tenant's token
//! against the other's things: nothing of the other tenant is seen, found,
//! changed, correlated or signalled.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{App, T0};

/// Every branch waits on something else: two jobs, a user task, a message, a signal, a timer.
fn order(name: &str) -> String {
    let branches = ["charge", "ship", "approve", "paid", "alarm", "wait"];
    let flows: String = branches
        .iter()
        .map(|b| format!(r#"<sequenceFlow id="to_{b}" sourceRef="fork" targetRef="{b}"/><endEvent id="end_{b}"/><sequenceFlow id="from_{b}" sourceRef="{b}" targetRef="end_{b}"/>"#))
        .collect();
    format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <message id="m" name="paid"><extensionElements><zeebe:subscription correlationKey="=key"/></extensionElements></message>
  <message id="go" name="go"/>
  <signal id="s" name="alarm"/>
  <process id="order" name="{name}" isExecutable="true">
    <startEvent id="start"/>
    <sequenceFlow id="to_fork" sourceRef="start" targetRef="fork"/>
    <parallelGateway id="fork"/>
    <serviceTask id="charge"><extensionElements><zeebe:taskDefinition type="charge"/></extensionElements></serviceTask>
    <serviceTask id="ship"><extensionElements><zeebe:taskDefinition type="ship"/></extensionElements></serviceTask>
    <userTask id="approve"><extensionElements><zeebe:assignmentDefinition candidateGroups="managers"/></extensionElements></userTask>
    <intermediateCatchEvent id="paid"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <intermediateCatchEvent id="alarm"><signalEventDefinition signalRef="s"/></intermediateCatchEvent>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    {flows}
  </process>
  <process id="kickoff" isExecutable="true">
    <startEvent id="by_message"><messageEventDefinition messageRef="go"/></startEvent>
    <startEvent id="by_signal"><signalEventDefinition signalRef="s"/></startEvent>
    <endEvent id="done"/>
    <sequenceFlow id="k1" sourceRef="by_message" targetRef="done"/>
    <sequenceFlow id="k2" sourceRef="by_signal" targetRef="done"/>
  </process>
</definitions>"#
    )
}

/// What a route must answer when one tenant's token reaches for the other's things.
enum Expect {
    /// 404 with this code: the other tenant's thing is as good as absent.
    Hidden(&'static str),
    /// 403: the request named the other tenant.
    Refused,
    /// 2xx, and every item of `field` (a list) is the caller's tenant's.
    OnlyOwn(&'static str),
    /// 200, and each entry of `jobs` answers 404 with this code (a report of many jobs).
    HiddenEach(&'static str),
    /// Not tenant data (the caller's own token list, probes, the API's description).
    Untenanted,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_cannot_see_change_or_signal_each_other() {
    use api::access::{new_token, TokenRequest, Tokens};
    use Expect::*;
    let app = App::new();
    let everything = [
        "developer",
        "operator",
        "worker",
        "starter",
        "user",
        "viewer",
    ];
    let token = |name: &str, tenants: &[&str]| {
        new_token(
            TokenRequest {
                name: name.into(),
                roles: everything.iter().map(|r| r.to_string()).collect(),
                groups: vec!["managers".into()],
                tenants: tenants.iter().map(|t| t.to_string()).collect(),
                ..TokenRequest::default()
            },
            T0,
        )
        .unwrap()
    };
    let (acme, acme_row) = token("acme-ops", &["acme"]);
    let (beta, beta_row) = token("beta-ops", &["beta"]);
    let (both, both_row) = token("auditor", &["acme", "beta"]);
    let tokens = Arc::new(Tokens::default());
    tokens.replace(vec![acme_row, beta_row, both_row]);
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
    let ok = |(status, body): (StatusCode, Value)| {
        assert!(status.is_success(), "{status} {body}");
        body
    };

    // Each tenant deploys the same process ids (different content) and gets version 1 of each.
    for (secret, tenant) in [(&acme, "acme"), (&beta, "beta")] {
        let xml = order(&format!("order of {tenant}"));
        let deployed = ok(call(
            secret,
            "POST",
            "/v1/workflows",
            json!({"resources": [{"name": "order.bpmn", "xml": xml}]}),
        )
        .await);
        assert_eq!(
            deployed["workflows"][0],
            json!({"workflow": "order", "tenant": tenant, "version": 1, "created": true})
        );
    }
    // The same request id starts one instance in each tenant.
    let start = |secret: &str| {
        call(
            secret,
            "POST",
            "/v1/instances",
            json!({"workflow": "order", "request_id": "r-1", "variables": {"key": "k"}}),
        )
    };
    let acme_id = ok(start(&acme).await)["id"].as_str().unwrap().to_string();
    let beta_id = ok(start(&beta).await)["id"].as_str().unwrap().to_string();
    assert_ne!(acme_id, beta_id);
    assert_eq!(
        ok(start(&beta).await)["id"],
        json!(beta_id),
        "a repeated request id finds its own tenant's instance"
    );
    // Workers of each tenant take their own tenant's jobs only; a failure with no retries left raises an incident in each.
    let mut leases = Vec::new();
    for (secret, id) in [(&acme, &acme_id), (&beta, &beta_id)] {
        let jobs = ok(call(
            secret,
            "POST",
            "/v1/jobs/activate",
            json!({"type": "ship", "worker": "w", "max_jobs": 10}),
        )
        .await)["jobs"]
            .clone();
        assert_eq!(
            jobs.as_array().unwrap().len(),
            1,
            "one ship job per tenant: {jobs}"
        );
        assert_eq!(jobs[0]["instance_id"], json!(id));
        let key = jobs[0]["key"].as_str().unwrap().to_string();
        ok(call(
            secret,
            "POST",
            &format!("/v1/jobs/{key}/fail"),
            json!({"worker": "w", "lease": jobs[0]["lease"], "retries": 0, "message": "no stock"}),
        )
        .await);
        leases.push(key);
    }
    // The dish decision is only beta's; acme has its own.
    let dish = include_str!("../../../tests/scenarios/decisions.dmn");
    let acme_dish = dish.replace(r#"<decision id="dish""#, r#"<decision id="acme_dish""#);
    ok(call(&acme, "POST", "/v1/workflows", json!({"resources": [{"name": "dish.dmn", "xml": acme_dish}]})).await);
    ok(call(&beta, "POST", "/v1/workflows", json!({"resources": [{"name": "dish.dmn", "xml": dish}]})).await);
    // A form each: `leave` is only beta's.
    for (secret, form_id) in [(&acme, "expenses"), (&beta, "leave")] {
        let form = json!({"id": form_id, "components": []}).to_string();
        ok(call(secret, "POST", "/v1/workflows", json!({"resources": [{"name": "f.form", "xml": form}]})).await);
    }
    // A message kept for a minute in each tenant, nobody waiting for it.
    for secret in [&acme, &beta] {
        ok(call(
            secret,
            "POST",
            "/v1/messages",
            json!({"name": "note", "ttl_ms": 60000}),
        )
        .await);
    }
    // Beta's things, as beta lists them.
    let first = |body: Value, field: &str| {
        body["items"][0][field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in {body}"))
            .to_string()
    };
    let beta_job = first(
        ok(call(&beta, "GET", "/v1/jobs?type=charge", json!({})).await),
        "key",
    );
    let beta_task = first(ok(call(&beta, "GET", "/v1/tasks", json!({})).await), "key");
    let beta_timer = first(ok(call(&beta, "GET", "/v1/timers", json!({})).await), "key");
    let beta_incident = first(
        ok(call(&beta, "GET", "/v1/incidents", json!({})).await),
        "key",
    );
    assert!(
        beta_job.starts_with(&beta_id)
            && beta_task.starts_with(&beta_id)
            && beta_timer.starts_with(&beta_id)
            && beta_incident.starts_with(&beta_id)
    );

    // Every route, with acme's token, against beta.
    let id = &beta_id;
    let tries: Vec<(&str, &str, String, Value, Expect)> = vec![
        (
            "post",
            "/v1/workflows",
            "/v1/workflows".into(),
            json!({"resources": [{"name": "o.bpmn", "xml": order("x")}], "tenant": "beta"}),
            Refused,
        ),
        (
            "get",
            "/v1/workflows",
            "/v1/workflows".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/workflows",
            "/v1/workflows?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "get",
            "/v1/workflows/{key}",
            "/v1/workflows/order?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "get",
            "/v1/workflows/{key}/versions/{version}",
            "/v1/workflows/order/versions/1?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "post",
            "/v1/instances",
            "/v1/instances".into(),
            json!({"workflow": "order", "tenant": "beta"}),
            Refused,
        ),
        (
            "get",
            "/v1/instances",
            "/v1/instances".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/instances",
            "/v1/instances?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "get",
            "/v1/instances/{id}",
            format!("/v1/instances/{id}"),
            json!({}),
            Hidden("instance-not-found"),
        ),
        (
            "get",
            "/v1/instances/{id}/history",
            format!("/v1/instances/{id}/history"),
            json!({}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/cancel",
            format!("/v1/instances/{id}/cancel"),
            json!({}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/suspend",
            format!("/v1/instances/{id}/suspend"),
            json!({}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/resume",
            format!("/v1/instances/{id}/resume"),
            json!({}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/variables",
            format!("/v1/instances/{id}/variables"),
            json!({"variables": {"x": 1}}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/labels",
            format!("/v1/instances/{id}/labels"),
            json!({"labels": {"x": "1"}}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/modify",
            format!("/v1/instances/{id}/modify"),
            json!({"terminate": ["charge"]}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/rerun",
            format!("/v1/instances/{id}/rerun"),
            json!({}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/delete",
            format!("/v1/instances/{id}/delete"),
            json!({}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/instances/{id}/keep",
            format!("/v1/instances/{id}/keep"),
            json!({"until": null}),
            Hidden("instance-not-found"),
        ),
        (
            "post",
            "/v1/jobs/activate",
            "/v1/jobs/activate".into(),
            json!({"type": "charge", "worker": "w", "max_jobs": 10}),
            OnlyOwn("jobs"),
        ),
        (
            "post",
            "/v1/jobs/activate",
            "/v1/jobs/activate".into(),
            json!({"type": "charge", "worker": "w", "tenants": ["beta"]}),
            Refused,
        ),
        (
            "post",
            "/v1/jobs/stream",
            "/v1/jobs/stream".into(),
            json!({"type": "charge", "worker": "w", "window": 1, "tenants": ["beta"]}),
            Refused,
        ),
        (
            "post",
            "/v1/jobs/report",
            "/v1/jobs/report".into(),
            json!({"worker": "w", "jobs": [{"key": beta_job, "complete": {}}, {"key": beta_job, "fail": {"retries": 0}}]}),
            HiddenEach("job-not-found"),
        ),
        (
            "get",
            "/v1/jobs",
            "/v1/jobs".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/jobs",
            "/v1/jobs?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "post",
            "/v1/jobs/{key}/complete",
            format!("/v1/jobs/{beta_job}/complete"),
            json!({"override": true}),
            Hidden("job-not-found"),
        ),
        (
            "post",
            "/v1/jobs/{key}/fail",
            format!("/v1/jobs/{beta_job}/fail"),
            json!({"override": true, "retries": 0}),
            Hidden("job-not-found"),
        ),
        (
            "post",
            "/v1/jobs/{key}/error",
            format!("/v1/jobs/{beta_job}/error"),
            json!({"override": true, "code": "x"}),
            Hidden("job-not-found"),
        ),
        (
            "post",
            "/v1/jobs/{key}/retries",
            format!("/v1/jobs/{}/retries", leases[1]),
            json!({"retries": 3}),
            Hidden("job-not-found"),
        ),
        (
            "get",
            "/v1/tasks",
            "/v1/tasks".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/tasks",
            "/v1/tasks?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "get",
            "/v1/tasks/{key}",
            format!("/v1/tasks/{beta_task}"),
            json!({}),
            Hidden("task-not-found"),
        ),
        (
            "get",
            "/v1/tasks/{key}/form",
            format!("/v1/tasks/{beta_task}/form"),
            json!({}),
            Hidden("task-not-found"),
        ),
        ("get", "/v1/decisions", "/v1/decisions".into(), json!({}), OnlyOwn("items")),
        ("get", "/v1/decisions", "/v1/decisions?tenant=beta".into(), json!({}), Refused),
        ("get", "/v1/decisions/{decision_id}", "/v1/decisions/dish".into(), json!({}), Hidden("decision-not-found")),
        ("post", "/v1/decisions/{decision_id}/evaluate", "/v1/decisions/dish/evaluate".into(), json!({}), Hidden("decision-not-found")),
        ("post", "/v1/decisions/{decision_id}/evaluate", "/v1/decisions/dish/evaluate".into(), json!({"tenant": "beta"}), Refused),
        ("get", "/v1/forms", "/v1/forms".into(), json!({}), OnlyOwn("items")),
        ("get", "/v1/instances/counts", "/v1/instances/counts".into(), json!({}), OnlyOwn("items")),
        ("get", "/v1/instances/counts", "/v1/instances/counts?tenant=beta".into(), json!({}), Refused),
        ("get", "/v1/forms", "/v1/forms?tenant=beta".into(), json!({}), Refused),
        ("get", "/v1/forms/{form_id}", "/v1/forms/leave".into(), json!({}), Hidden("form-not-found")),
        ("get", "/v1/forms/{form_id}", "/v1/forms/leave?tenant=beta".into(), json!({}), Refused),
        (
            "post",
            "/v1/tasks/{key}/claim",
            format!("/v1/tasks/{beta_task}/claim"),
            json!({"assignee": "acme-ops"}),
            Hidden("task-not-found"),
        ),
        (
            "post",
            "/v1/tasks/{key}/unclaim",
            format!("/v1/tasks/{beta_task}/unclaim"),
            json!({}),
            Hidden("task-not-found"),
        ),
        (
            "post",
            "/v1/tasks/{key}/assign",
            format!("/v1/tasks/{beta_task}/assign"),
            json!({"assignee": "acme-ops"}),
            Hidden("task-not-found"),
        ),
        (
            "post",
            "/v1/tasks/{key}/update",
            format!("/v1/tasks/{beta_task}/update"),
            json!({"priority": 1}),
            Hidden("task-not-found"),
        ),
        (
            "post",
            "/v1/tasks/{key}/complete",
            format!("/v1/tasks/{beta_task}/complete"),
            json!({}),
            Hidden("task-not-found"),
        ),
        (
            "post",
            "/v1/messages",
            "/v1/messages".into(),
            json!({"name": "paid", "correlation_key": "k", "tenant": "beta"}),
            Refused,
        ),
        (
            "get",
            "/v1/messages",
            "/v1/messages".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/messages",
            "/v1/messages?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "post",
            "/v1/signals",
            "/v1/signals".into(),
            json!({"name": "alarm", "tenant": "beta"}),
            Refused,
        ),
        (
            "post",
            "/v1/conditionals/evaluate",
            "/v1/conditionals/evaluate".into(),
            json!({"variables": {}, "tenant": "beta"}),
            Refused,
        ),
        (
            "get",
            "/v1/subscriptions",
            "/v1/subscriptions".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/subscriptions",
            "/v1/subscriptions?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "get",
            "/v1/timers",
            "/v1/timers".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/timers",
            "/v1/timers?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "post",
            "/v1/timers/{key}/reschedule",
            format!("/v1/timers/{beta_timer}/reschedule"),
            json!({"due_at": "2030-01-01T00:00:00Z"}),
            Hidden("timer-not-found"),
        ),
        (
            "get",
            "/v1/incidents",
            "/v1/incidents".into(),
            json!({}),
            OnlyOwn("items"),
        ),
        (
            "get",
            "/v1/incidents",
            "/v1/incidents?tenant=beta".into(),
            json!({}),
            Refused,
        ),
        (
            "post",
            "/v1/incidents/{key}/resolve",
            format!("/v1/incidents/{beta_incident}/resolve"),
            json!({}),
            Hidden("incident-not-found"),
        ),
        (
            "post",
            "/v1/tokens",
            "/v1/tokens".into(),
            json!({}),
            Untenanted,
        ),
        (
            "get",
            "/v1/tokens",
            "/v1/tokens".into(),
            json!({}),
            Untenanted,
        ),
        (
            "post",
            "/v1/tokens/{id}/revoke",
            "/v1/tokens/x/revoke".into(),
            json!({}),
            Untenanted,
        ),
        // A backup holds every tenant: an admin of one tenant may not take it.
        ("get", "/v1/backup", "/v1/backup".into(), json!({}), Refused),
        (
            "get",
            "/v1/openapi.json",
            "/v1/openapi.json".into(),
            json!({}),
            Untenanted,
        ),
        ("get", "/v1/sign-in", "/v1/sign-in".into(), json!({}), Untenanted),
        ("get", "/healthz", "/healthz".into(), json!({}), Untenanted),
        ("get", "/readyz", "/readyz".into(), json!({}), Untenanted),
        ("get", "/metrics", "/metrics".into(), json!({}), Untenanted),
        ("get", "/v1/me", "/v1/me".into(), json!({}), Untenanted),
    ];
    for (method, _, path, body, expect) in &tries {
        let (status, answer) = call(&acme, &method.to_uppercase(), path, body.clone()).await;
        match expect {
            Hidden(code) => assert_eq!(
                (status, &answer["code"]),
                (StatusCode::NOT_FOUND, &json!(code)),
                "{method} {path}: {answer}"
            ),
            Refused => assert_eq!(
                (status, &answer["code"]),
                (StatusCode::FORBIDDEN, &json!("forbidden")),
                "{method} {path}: {answer}"
            ),
            OnlyOwn(field) => {
                assert!(status.is_success(), "{method} {path}: {status} {answer}");
                let items = answer[*field]
                    .as_array()
                    .unwrap_or_else(|| panic!("{method} {path}: {answer}"));
                assert!(
                    !items.is_empty(),
                    "{method} {path} lists acme's own: {answer}"
                );
                assert!(
                    items.iter().all(|item| item["tenant"] == json!("acme")),
                    "{method} {path}: {answer}"
                );
            }
            HiddenEach(code) => {
                assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
                let entries = answer["jobs"].as_array().unwrap_or_else(|| panic!("{method} {path}: {answer}"));
                assert!(entries.iter().all(|e| e["ok"] == json!(false) && e["problem"]["code"] == json!(code)), "{method} {path}: {answer}");
            }
            Untenanted => {}
        }
    }
    let tried: std::collections::BTreeSet<(&str, &str)> =
        tries.iter().map(|(m, t, ..)| (*m, *t)).collect();
    for (method, path, ..) in api::ROUTES {
        assert!(
            tried.contains(&(*method, *path)),
            "{method} {path} is not tried across the tenant boundary"
        );
    }

    // The caller learns its own tenants and what it may call, nothing of beta's.
    let me = ok(call(&acme, "GET", "/v1/me", json!({})).await);
    assert_eq!((&me["name"], &me["tenants"]), (&json!("acme-ops"), &json!(["acme"])));
    let may: Vec<&str> = me["may"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(may.contains(&"post /v1/instances/{id}/cancel") && !may.contains(&"post /v1/tokens"), "{may:?}");

    // Nothing of beta's changed: its instance still waits on all it waited on, its job and incident are as they were.
    let seen_by_beta = ok(call(&beta, "GET", &format!("/v1/instances/{beta_id}"), json!({})).await);
    assert_eq!(seen_by_beta["status"], json!("running"));
    assert_eq!(seen_by_beta["labels"], json!({}));
    assert_eq!(seen_by_beta["incidents"], json!(1));
    let waiting: Vec<&str> = seen_by_beta["waits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["element"].as_str().unwrap())
        .collect();
    for element in ["charge", "approve", "paid", "alarm", "wait"] {
        assert!(
            waiting.contains(&element),
            "beta still waits on {element}: {waiting:?}"
        );
    }

    // A message and a signal in acme reach acme's instance and start acme's kickoff, never beta's.
    ok(call(
        &acme,
        "POST",
        "/v1/messages",
        json!({"name": "paid", "correlation_key": "k"}),
    )
    .await);
    ok(call(&acme, "POST", "/v1/signals", json!({"name": "alarm"})).await);
    ok(call(&acme, "POST", "/v1/messages", json!({"name": "go"})).await);
    let names = |body: Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["element"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        names(ok(call(&acme, "GET", "/v1/subscriptions", json!({})).await)).is_empty(),
        "acme's message and signal arrived"
    );
    let mut beta_waits = names(ok(call(&beta, "GET", "/v1/subscriptions", json!({})).await));
    beta_waits.sort();
    assert_eq!(
        beta_waits,
        ["alarm", "paid"],
        "beta's instance still waits for both"
    );
    let kickoffs = |secret: &str| {
        let secret = secret.to_string();
        let call = &call;
        async move {
            ok(call(&secret, "GET", "/v1/instances?workflow=kickoff", json!({})).await)["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(
        (kickoffs(&acme).await, kickoffs(&beta).await),
        (2, 0),
        "acme's message and signal started acme's kickoff twice, beta's never"
    );
    // A message id is per tenant: beta may use the one acme used.
    ok(call(
        &acme,
        "POST",
        "/v1/messages",
        json!({"name": "late", "message_id": "m-1", "ttl_ms": 60000}),
    )
    .await);
    assert_eq!(
        call(
            &acme,
            "POST",
            "/v1/messages",
            json!({"name": "late", "message_id": "m-1", "ttl_ms": 60000})
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    ok(call(
        &beta,
        "POST",
        "/v1/messages",
        json!({"name": "late", "message_id": "m-1", "ttl_ms": 60000}),
    )
    .await);

    // A token of both tenants sees both, and narrows to one with ?tenant=.
    let all = ok(call(&both, "GET", "/v1/instances?workflow=order", json!({})).await);
    let mut tenants: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tenant"].as_str().unwrap())
        .collect();
    tenants.sort();
    assert_eq!(tenants, ["acme", "beta"]);
    let one = ok(call(
        &both,
        "GET",
        "/v1/instances?workflow=order&tenant=beta",
        json!({}),
    )
    .await);
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0]["id"], json!(beta_id));
    // Each tenant reads its own version 1 of the same process id.
    let read_name = |secret: &str| {
        let secret = secret.to_string();
        let call = &call;
        async move {
            ok(call(&secret, "GET", "/v1/workflows/order/versions/1", json!({})).await)["name"]
                .clone()
        }
    };
    assert_eq!(
        (read_name(&acme).await, read_name(&beta).await),
        (json!("order of acme"), json!("order of beta"))
    );
    // A token of two tenants names the one it deploys to; the default tenant is not among its.
    let (status, refused) =
        call(&both, "POST", "/v1/instances", json!({"workflow": "order"})).await;
    assert_eq!(
        (status, &refused["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden")),
        "{refused}"
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("tenant 'default'"),
        "{refused}"
    );
}
