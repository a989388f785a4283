//! `/v2`, Camunda's API: a whole order through it, every exchange checked
//! against the OpenAPI document, keys, tenants and problems in Camunda's shape.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{App, IntoJson, DISH, MODEL};

const ORDER: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <message id="m" name="paid"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>
  <process id="shop" name="Shop" isExecutable="true">
    <extensionElements><zeebe:userTaskForm id="approval">{"id":"approval","type":"default","components":[{"type":"checkbox","key":"approved","label":"Approved"}]}</zeebe:userTaskForm></extensionElements>
    <startEvent id="start"/>
    <serviceTask id="charge"><extensionElements><zeebe:taskDefinition type="charge"/><zeebe:taskHeaders><zeebe:header key="currency" value="EUR"/></zeebe:taskHeaders></extensionElements></serviceTask>
    <intermediateCatchEvent id="wait"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <userTask id="approve" name="Approve"><extensionElements><zeebe:userTask/><zeebe:formDefinition formKey="camunda-forms:bpmn:approval"/><zeebe:assignmentDefinition candidateGroups="managers"/></extensionElements></userTask>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <sequenceFlow id="f2" sourceRef="charge" targetRef="wait"/>
    <sequenceFlow id="f3" sourceRef="wait" targetRef="approve"/>
    <sequenceFlow id="f4" sourceRef="approve" targetRef="end"/>
  </process>
</definitions>"#;

/// Deploys files as Camunda's clients do: multipart, one `resources` part each.
async fn deploy(app: &App, files: &[(&str, &str)], tenant: Option<&str>) -> (StatusCode, Value) {
    let boundary = "baton-boundary";
    let mut body = String::new();
    for (name, text) in files {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"resources\"; filename=\"{name}\"\r\nContent-Type: application/xml\r\n\r\n{text}\r\n"));
    }
    if let Some(tenant) = tenant {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"tenantId\"\r\n\r\n{tenant}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let request = Request::builder()
        .method("POST")
        .uri("/v2/deployments")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let value: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    if let Some(operation) = super::contract::exchange(&app.document, "POST", "/v2/deployments", None, status.as_u16(), &content_type, &value) {
        app.covered.lock().unwrap().insert(operation);
    }
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_runs_through_camundas_api_and_every_route_is_called() {
    let app = App::new();
    let (status, deployed) = deploy(&app, &[("shop.bpmn", ORDER), ("order.bpmn", MODEL)], None).await;
    assert_eq!(status, StatusCode::OK, "{deployed}");
    assert_eq!(deployed["tenantId"], json!("<default>"));
    let definitions: Vec<&Value> = deployed["deployments"].as_array().unwrap().iter().map(|d| &d["processDefinition"]).collect();
    let shop = definitions.iter().find(|d| d["processDefinitionId"] == json!("shop")).unwrap();
    assert_eq!(shop["resourceName"], json!("shop.bpmn"));
    let definition_key = shop["processDefinitionKey"].as_str().unwrap().to_string();

    let (status, _, _) = app.send("GET", "/v2/status", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, topology) = app.send("GET", "/v2/topology", None).await.into_json();
    assert_eq!(topology["partitionsCount"], json!(1));
    let (_, found) = app.json("POST", "/v2/process-definitions/search", json!({"filter": {"processDefinitionId": "shop"}})).await;
    assert_eq!(found["items"][0]["processDefinitionKey"], json!(definition_key));
    let (_, one) = app.send("GET", &format!("/v2/process-definitions/{definition_key}"), None).await.into_json();
    assert_eq!(one["name"], json!("Shop"));
    let (status, _, xml) = app.send("GET", &format!("/v2/process-definitions/{definition_key}/xml"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(xml.as_str().unwrap().contains("zeebe:taskDefinition"));

    // Started by id, and by key; the keys are the instance's number, made 64-bit.
    let (status, first) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": "shop", "variables": {"orderId": "o-1"}})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = app.json("POST", "/v2/process-instances", json!({"processDefinitionKey": definition_key, "variables": {"orderId": "o-2"}})).await;
    let (first_key, second_key) = (first["processInstanceKey"].as_str().unwrap().to_string(), second["processInstanceKey"].as_str().unwrap().to_string());
    assert_eq!(first["processDefinitionKey"], json!(definition_key));
    assert_eq!(first_key.parse::<u64>().unwrap() >> 23, 1, "the first instance has number 1");
    assert_eq!(second_key.parse::<u64>().unwrap() >> 23, 2);

    // A worker takes both jobs, fails one back, completes them.
    let activation = json!({"type": "charge", "worker": "w", "timeout": 60_000, "maxJobsToActivate": 5, "requestTimeout": -1});
    let (_, taken) = app.json("POST", "/v2/jobs/activation", activation.clone()).await;
    let jobs = taken["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 2, "{taken}");
    assert_eq!(jobs[0]["customHeaders"], json!({"currency": "EUR"}));
    assert_eq!(jobs[0]["processInstanceKey"], json!(first_key));
    assert_eq!(jobs[0]["variables"], json!({"orderId": "o-1"}));
    let job = |i: usize| jobs[i]["jobKey"].as_str().unwrap().to_string();
    let (_, open) = app.json("POST", "/v2/jobs/search", json!({"filter": {"type": "charge", "processInstanceKey": first_key}})).await;
    assert_eq!((open["items"][0]["jobKey"].clone(), open["items"][0]["worker"].clone(), open["items"][0]["state"].clone()), (json!(job(0)), json!("w"), json!("CREATED")), "{open}");
    let (status, _) = app.json("PATCH", &format!("/v2/jobs/{}", job(0)), json!({"changeset": {"timeout": 120_000}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the running lease moves");
    let (status, _) = app.json("POST", &format!("/v2/jobs/{}/failure", job(1)), json!({"retries": 0, "errorMessage": "bank down", "variables": {"attempts": 1}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, incidents) = app.json("POST", "/v2/incidents/search", json!({"filter": {"processInstanceKey": second_key, "state": "ACTIVE"}})).await;
    assert_eq!(incidents["items"][0]["errorType"], json!("JOB_NO_RETRIES"), "{incidents}");
    assert_eq!(incidents["items"][0]["jobKey"], json!(job(1)));
    let incident = incidents["items"][0]["incidentKey"].as_str().unwrap().to_string();
    let (_, one) = app.send("GET", &format!("/v2/incidents/{incident}"), None).await.into_json();
    assert_eq!(one["errorMessage"], json!("bank down"));
    let (status, _) = app.json("PATCH", &format!("/v2/jobs/{}", job(1)), json!({"changeset": {"retries": 2}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.send("POST", &format!("/v2/incidents/{incident}/resolution"), None).await.into_json();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.json("POST", &format!("/v2/jobs/{}/completion", job(0)), json!({"variables": {"charged": true}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut assigned = activation.clone();
    assigned["tenantFilter"] = json!("ASSIGNED");
    let (_, again) = app.json("POST", "/v2/jobs/activation", assigned).await;
    assert_eq!(again["jobs"][0]["jobKey"], json!(job(1)), "the resolved job is handed out again, to the tenants the caller has");
    assert_eq!(again["jobs"][0]["variables"]["attempts"], json!(1), "the failure's variables are on the job's element instance");
    let (status, error) = app.json("POST", &format!("/v2/jobs/{}/error", job(1)), json!({"errorCode": "NOBODY_CATCHES"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{error}");

    // The second order is stuck at an incident: cancel it.
    let (status, _) = app.json("POST", &format!("/v2/process-instances/{second_key}/cancellation"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, cancelled) = app.send("GET", &format!("/v2/process-instances/{second_key}"), None).await.into_json();
    assert_eq!(cancelled["state"], json!("TERMINATED"));

    // The first is paid, then approved.
    let (status, nobody) = app.json("POST", "/v2/messages/correlation", json!({"name": "paid", "correlationKey": "o-9"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{nobody}");
    let (_, published) = app.json("POST", "/v2/messages/publication", json!({"name": "paid", "correlationKey": "o-9", "timeToLive": 60_000})).await;
    assert_eq!(published["tenantId"], json!("<default>"));
    let (_, correlated) = app.json("POST", "/v2/messages/correlation", json!({"name": "paid", "correlationKey": "o-1", "variables": {"paid": true}})).await;
    assert_eq!(correlated["processInstanceKey"], json!(first_key));
    let (_, tasks) = app.json("POST", "/v2/user-tasks/search", json!({"filter": {"state": "CREATED"}})).await;
    let task = tasks["items"][0].clone();
    assert_eq!((task["name"].clone(), task["candidateGroups"].clone(), task["priority"].clone()), (json!("Approve"), json!(["managers"]), json!(50)));
    let task_key = task["userTaskKey"].as_str().unwrap().to_string();
    for (method, path, body) in [
        ("POST", "assignment", Some(json!({"assignee": "ada"}))),
        ("DELETE", "assignee", None),
        ("POST", "assignment", Some(json!({"assignee": "bob", "allowOverride": false}))),
    ] {
        let (status, _, answer) = app.send(method, &format!("/v2/user-tasks/{task_key}/{path}"), body.map(|b| b.to_string())).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{method} {path}: {answer}");
    }
    let (_, held) = app.send("GET", &format!("/v2/user-tasks/{task_key}"), None).await.into_json();
    assert_eq!(held["assignee"], json!("bob"));
    let (status, _) = app.json("POST", &format!("/v2/user-tasks/{task_key}/assignment"), json!({"assignee": "cy", "allowOverride": false})).await;
    assert_eq!(status, StatusCode::CONFLICT, "a claim while someone else holds the task is refused");
    let scope = task["elementInstanceKey"].as_str().unwrap().to_string();
    let (_, form) = app.send("GET", &format!("/v2/user-tasks/{task_key}/form"), None).await.into_json();
    assert_eq!(form["formId"], json!("approval"), "{form}");
    assert!(form["schema"].as_str().unwrap().contains("\"approved\""));
    let (_, elements) = app.json("POST", "/v2/element-instances/search", json!({"filter": {"processInstanceKey": first_key}})).await;
    let seen: Vec<(&str, &str, &str)> = elements["items"].as_array().unwrap().iter().map(|e| (e["elementId"].as_str().unwrap(), e["type"].as_str().unwrap(), e["state"].as_str().unwrap())).collect();
    assert_eq!(seen, [("shop", "PROCESS", "ACTIVE"), ("start", "START_EVENT", "COMPLETED"), ("charge", "SERVICE_TASK", "COMPLETED"), ("wait", "INTERMEDIATE_CATCH_EVENT", "COMPLETED"), ("approve", "USER_TASK", "ACTIVE")]);
    assert_eq!(elements["items"][0]["elementInstanceKey"], json!(first_key), "the process's element instance has the instance's key");
    let (_, element) = app.send("GET", &format!("/v2/element-instances/{scope}"), None).await.into_json();
    assert_eq!((element["elementId"].clone(), element["state"].clone()), (json!("approve"), json!("ACTIVE")));
    let (status, _) = app.json("PUT", &format!("/v2/element-instances/{first_key}/variables"), json!({"variables": {"note": "rush"}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.json("PUT", &format!("/v2/element-instances/{scope}/variables"), json!({"variables": {"local": 1}, "local": true})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.json("POST", &format!("/v2/user-tasks/{task_key}/completion"), json!({"variables": {"approved": true}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Camunda's advanced filters and a sort.
    let search = |filter: Value, sort: Value| app.json("POST", "/v2/process-instances/search", json!({"filter": filter, "sort": sort}));
    let keys = |answer: &Value| answer["items"].as_array().unwrap().iter().map(|i| i["processInstanceKey"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (_, both) = search(json!({"processDefinitionId": {"$in": ["shop", "nope"]}}), json!([{"field": "startDate", "order": "DESC"}])).await;
    assert_eq!(keys(&both), [second_key.clone(), first_key.clone()], "{both}");
    let (_, like) = search(json!({"processDefinitionId": {"$like": "sh*"}, "state": {"$neq": "COMPLETED"}, "hasIncident": false}), json!([])).await;
    assert_eq!(keys(&like), [second_key.clone()], "the first has completed, the second was cancelled (TERMINATED)");
    let (_, later) = search(json!({"startDate": {"$gt": "2020-01-01T00:00:00Z"}, "endDate": {"$exists": true}}), json!([])).await;
    assert_eq!(keys(&later), [first_key.clone(), second_key.clone()], "both have ended");
    let (_, none) = search(json!({"startDate": {"$lt": "2020-01-01T00:00:00Z"}}), json!([])).await;
    assert_eq!(keys(&none), Vec::<String>::new());
    let (_, done) = app.json("POST", "/v2/process-instances/search", json!({"filter": {"processDefinitionId": "shop", "state": "COMPLETED"}})).await;
    assert_eq!(done["items"].as_array().unwrap().len(), 1, "{done}");
    assert_eq!(done["items"][0]["processInstanceKey"], json!(first_key));
    assert_eq!(done["page"]["totalItems"], json!(1));
    let (_, variables) = app.json("POST", "/v2/variables/search", json!({"filter": {"processInstanceKey": first_key}})).await;
    let names: Vec<(&str, &str)> = variables["items"].as_array().unwrap().iter().map(|v| (v["name"].as_str().unwrap(), v["value"].as_str().unwrap())).collect();
    assert_eq!(names, [("approved", "true"), ("charged", "true"), ("note", "\"rush\""), ("orderId", "\"o-1\""), ("paid", "true")]);
    let (_, completed) = app.json("POST", "/v2/user-tasks/search", json!({"filter": {"processInstanceKey": first_key}})).await;
    assert_eq!(completed["items"][0]["state"], json!("COMPLETED"));
    let (_, signalled) = app.json("POST", "/v2/signals/broadcast", json!({"signalName": "nobody-listens"})).await;
    assert_eq!(signalled["tenantId"], json!("<default>"));

    let covered = app.covered.lock().unwrap().clone();
    let missing: Vec<String> = api::camunda::ROUTES.iter().map(|(method, path, ..)| format!("{method} {path}")).filter(|op| !covered.contains(op)).collect();
    assert!(missing.is_empty(), "not called with success: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camundas_api_answers_problems_in_camundas_shape() {
    let app = App::new();
    let problem = |status: u16, title: &str, path: &str, detail: &str, answer: &Value| {
        assert_eq!(answer["status"], json!(status), "{answer}");
        assert_eq!(answer["title"], json!(title), "{answer}");
        assert_eq!(answer["instance"], json!(path), "{answer}");
        assert!(answer["detail"].as_str().unwrap().contains(detail), "{answer}");
    };
    let (_, answer) = app.send("GET", "/v2/process-instances/8388608", None).await.into_json();
    problem(404, "NOT_FOUND", "/v2/process-instances/8388608", "no process instance has key 8388608", &answer);
    let (_, answer) = app.send("GET", "/v2/process-instances/x12", None).await.into_json();
    problem(400, "INVALID_ARGUMENT", "/v2/process-instances/x12", "is not a key", &answer);
    let (_, answer) = app.json("POST", "/v2/jobs/8388609/completion", json!({})).await;
    problem(404, "NOT_FOUND", "/v2/jobs/8388609/completion", "no job has key 8388609", &answer);
    let (_, answer) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": "nope"})).await;
    problem(404, "NOT_FOUND", "/v2/process-instances", "nope", &answer);
    let (_, answer) = app.json("POST", "/v2/process-instances/search", json!({"filter": {"variables": []}})).await;
    problem(400, "INVALID_ARGUMENT", "/v2/process-instances/search", "filter variables is not served", &answer);
    let (_, answer) = app.json("POST", "/v2/process-instances/search", json!({"filter": {"state": {"$regex": "A.*"}}})).await;
    problem(400, "INVALID_ARGUMENT", "/v2/process-instances/search", "$regex", &answer);
    let (_, answer) = app.json("POST", "/v2/user-tasks/search", json!({"filter": {"candidateGroup": {"$in": ["a"]}}})).await;
    problem(400, "INVALID_ARGUMENT", "/v2/user-tasks/search", "equality only", &answer);
    let (_, answer) = app.json("POST", "/v2/jobs/search", json!({"sort": [{"field": "type"}]})).await;
    problem(400, "INVALID_ARGUMENT", "/v2/jobs/search", "sort is not served", &answer);
    let (_, answer) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": "nope", "tags": ["x"]})).await;
    problem(400, "INVALID_ARGUMENT", "/v2/process-instances", "tags is not served", &answer);
    let (_, answer) = app.json("POST", "/v2/batch-operations/search", json!({})).await;
    problem(501, "NOT_IMPLEMENTED", "/v2/batch-operations/search", "POST /v2/batch-operations/search", &answer);
    let (_, answer) = app.send("GET", "/v2/clock", None).await.into_json();
    problem(501, "NOT_IMPLEMENTED", "/v2/clock", "GET /v2/clock", &answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camundas_default_tenant_is_batons_default_and_other_tenants_stay_apart() {
    let app = App::new();
    let (status, deployed) = deploy(&app, &[("order.bpmn", MODEL)], Some("acme")).await;
    assert_eq!(status, StatusCode::OK, "{deployed}");
    assert_eq!(deployed["deployments"][0]["processDefinition"]["tenantId"], json!("acme"));
    let (status, _) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": "order"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the default tenant has no order workflow");
    let (status, started) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": "order", "tenantId": "acme"})).await;
    assert_eq!((status, started["tenantId"].clone()), (StatusCode::OK, json!("acme")));
    let (_, jobs) = app.json("POST", "/v2/jobs/activation", json!({"type": "charge", "timeout": 1000, "maxJobsToActivate": 1, "requestTimeout": -1, "tenantIds": ["<default>"]})).await;
    assert_eq!(jobs["jobs"], json!([]), "asked for the default tenant's jobs only");
    let (_, jobs) = app.json("POST", "/v2/jobs/activation", json!({"type": "charge", "timeout": 1000, "maxJobsToActivate": 1, "requestTimeout": -1, "tenantIds": ["acme"]})).await;
    assert_eq!(jobs["jobs"][0]["tenantId"], json!("acme"));
}

const QUICK: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="q">
  <message id="hello" name="hello"/>
  <message id="go" name="go"><extensionElements><zeebe:subscription correlationKey="=k"/></extensionElements></message>
  <process id="quick" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/></process>
  <process id="inbox" isExecutable="true"><startEvent id="s2"><messageEventDefinition messageRef="hello"/></startEvent><sequenceFlow id="f2" sourceRef="s2" targetRef="e2"/><endEvent id="e2"/></process>
  <process id="waiter" isExecutable="true"><startEvent id="s3"/><sequenceFlow id="f3" sourceRef="s3" targetRef="c"/>
    <intermediateCatchEvent id="c"><messageEventDefinition messageRef="go"/></intermediateCatchEvent><sequenceFlow id="f4" sourceRef="c" targetRef="e3"/><endEvent id="e3"/></process>
</definitions>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_awaits_completion_and_messages_correlate_now_or_not_at_all() {
    let app = App::new();
    let (status, _) = deploy(&app, &[("quick.bpmn", QUICK)], None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, done) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": "quick", "variables": {"a": 1, "b": 2}, "awaitCompletion": true, "fetchVariables": ["a"]})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["variables"], json!({"a": 1}), "only the variables asked for");
    let (_, waiting) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": "waiter", "variables": {"k": "w-1"}, "awaitCompletion": true, "requestTimeout": 1})).await;
    assert_eq!((waiting["status"].clone(), waiting["title"].clone(), waiting["code"].clone()), (json!(504), json!("DEADLINE_EXCEEDED"), json!("await-timed-out")), "{waiting}");
    let (_, found) = app.json("POST", "/v2/process-instances/search", json!({"filter": {"processDefinitionId": "waiter"}})).await;
    let waiter = found["items"][0]["processInstanceKey"].clone();
    assert_eq!(found["items"][0]["state"], json!("ACTIVE"), "the instance runs on after the wait ended");

    let (status, correlated) = app.json("POST", "/v2/messages/correlation", json!({"name": "go", "correlationKey": "w-1"})).await;
    assert_eq!(status, StatusCode::OK, "{correlated}");
    assert_eq!(correlated["processInstanceKey"], waiter);
    let (_, ended) = app.send("GET", &format!("/v2/process-instances/{}", waiter.as_str().unwrap()), None).await.into_json();
    assert_eq!(ended["state"], json!("COMPLETED"));
    let (_, started) = app.json("POST", "/v2/messages/correlation", json!({"name": "hello"})).await;
    let (_, inbox) = app.send("GET", &format!("/v2/process-instances/{}", started["processInstanceKey"].as_str().unwrap()), None).await.into_json();
    assert_eq!(inbox["processDefinitionId"], json!("inbox"), "a message start event took it");
    let (status, nobody) = app.json("POST", "/v2/messages/correlation", json!({"name": "go", "correlationKey": "w-1"})).await;
    assert_eq!((status, nobody["title"].clone()), (StatusCode::NOT_FOUND, json!("NOT_FOUND")), "correlation keeps nothing: the waiter is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_lists_its_processes_decisions_and_forms_with_keys_by_kind() {
    let app = App::new();
    let form = r#"{"id":"approval","type":"default","components":[]}"#;
    let (status, deployed) = deploy(&app, &[("order.bpmn", MODEL), ("dish.dmn", DISH), ("approval.form", form)], None).await;
    assert_eq!(status, StatusCode::OK, "{deployed}");
    let of = |kind: &str| deployed["deployments"].as_array().unwrap().iter().filter(|d| !d[kind].is_null()).map(|d| d[kind].clone()).collect::<Vec<_>>();
    let (processes, decisions, graphs, forms) = (of("processDefinition"), of("decisionDefinition"), of("decisionRequirements"), of("form"));
    assert_eq!(processes.len(), 1);
    assert!(!decisions.is_empty(), "{deployed}");
    assert_eq!((graphs.len(), graphs[0]["resourceName"].clone()), (1, json!("dish.dmn")));
    assert_eq!((forms[0]["formId"].clone(), forms[0]["resourceName"].clone()), (json!("approval"), json!("approval.form")));
    let mut keys: Vec<String> = [&processes, &decisions, &graphs, &forms].iter().flat_map(|list| list.iter()).map(|d| {
        ["processDefinitionKey", "decisionDefinitionKey", "formKey"].iter().find_map(|k| d[*k].as_str()).or(d["decisionRequirementsKey"].as_str()).unwrap().to_string()
    }).collect();
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), count, "every thing has its own key: {keys:?}");
    assert_eq!(decisions[0]["decisionRequirementsKey"], graphs[0]["decisionRequirementsKey"]);
    // Deployed again unchanged, each keeps its version and its key.
    let (_, again) = deploy(&app, &[("dish.dmn", DISH)], None).await;
    let again_decisions: Vec<Value> = again["deployments"].as_array().unwrap().iter().filter(|d| !d["decisionDefinition"].is_null()).map(|d| d["decisionDefinition"].clone()).collect();
    assert_eq!(again_decisions, decisions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_page_with_from_and_after_and_fill_pages_past_what_the_filter_refuses() {
    let app = App::new();
    deploy(&app, &[("quick.bpmn", QUICK)], None).await;
    let mut started = Vec::new();
    for i in 0..6 {
        let process = if i % 3 == 2 { "waiter" } else { "quick" };
        let (_, created) = app.json("POST", "/v2/process-instances", json!({"processDefinitionId": process, "variables": {"k": format!("k{i}")}})).await;
        started.push((process, created["processInstanceKey"].as_str().unwrap().to_string()));
    }
    let quick: Vec<String> = started.iter().filter(|(p, _)| *p == "quick").map(|(_, k)| k.clone()).collect();
    let keys = |answer: &Value| answer["items"].as_array().unwrap().iter().map(|i| i["processInstanceKey"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    // A filter the store does not index ($like) admits 4 of 6 rows: pages of 3 still hold 3.
    let filter = json!({"processDefinitionId": {"$like": "qu*"}});
    let (_, first) = app.json("POST", "/v2/process-instances/search", json!({"filter": filter, "page": {"limit": 3}})).await;
    assert_eq!(keys(&first), quick[..3], "{first}");
    let cursor = first["page"]["endCursor"].clone();
    let (_, rest) = app.json("POST", "/v2/process-instances/search", json!({"filter": filter, "page": {"limit": 3, "after": cursor}})).await;
    assert_eq!(keys(&rest), quick[3..]);
    assert_eq!(rest["page"]["endCursor"], Value::Null, "the rows ran out");
    let (_, skipped) = app.json("POST", "/v2/process-instances/search", json!({"filter": filter, "page": {"from": 1, "limit": 2}})).await;
    assert_eq!(keys(&skipped), quick[1..3], "from skips what the filter admits");
    let (_, definitions) = app.json("POST", "/v2/process-definitions/search", json!({"page": {"from": 1, "limit": 1}})).await;
    assert_eq!(definitions["items"].as_array().unwrap().len(), 1);
    let (status, _) = app.json("POST", "/v2/process-instances/search", json!({"page": {"before": "x"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
