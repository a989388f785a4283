//! Issue 12, item 5: a user task is completed with its form: one embedded in
//! the process, one deployed beside it (picked by its binding), one generated
//! from the task's inputs, or none; completed tasks stay listed.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{App, IntoJson};

const EMBEDDED: &str = r#"{"id": "review-form", "components": [{"type": "textfield", "key": "comment", "label": "Comment"}]}"#;

fn model() -> String {
    let escaped = EMBEDDED.replace('"', "&quot;");
    format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <process id="leave" isExecutable="true">
    <extensionElements><zeebe:userTaskForm id="UserTaskForm_1">{escaped}</zeebe:userTaskForm></extensionElements>
    <startEvent id="start"/>
    <parallelGateway id="fork"/>
    <userTask id="review"><extensionElements><zeebe:formDefinition formKey="camunda-forms:bpmn:UserTaskForm_1"/></extensionElements></userTask>
    <userTask id="latest"><extensionElements><zeebe:formDefinition formId="request"/></extensionElements></userTask>
    <userTask id="pinned"><extensionElements><zeebe:formDefinition formId="request" bindingType="deployment"/></extensionElements></userTask>
    <userTask id="tagged"><extensionElements><zeebe:formDefinition formId="request" bindingType="versionTag" versionTag="v1"/></extensionElements></userTask>
    <userTask id="inputs"><extensionElements><zeebe:ioMapping><zeebe:input source="=days" target="days"/><zeebe:input source="=true" target="paid"/></zeebe:ioMapping></extensionElements></userTask>
    <userTask id="plain"/>
    <userTask id="portal"><extensionElements><zeebe:formDefinition externalReference="https://forms.example/leave"/></extensionElements></userTask>
    <userTask id="absent"><extensionElements><zeebe:formDefinition formId="nowhere"/></extensionElements></userTask>
    <sequenceFlow id="f0" sourceRef="start" targetRef="fork"/>
    <sequenceFlow id="f1" sourceRef="fork" targetRef="review"/>
    <sequenceFlow id="f2" sourceRef="fork" targetRef="latest"/>
    <sequenceFlow id="f3" sourceRef="fork" targetRef="pinned"/>
    <sequenceFlow id="f4" sourceRef="fork" targetRef="tagged"/>
    <sequenceFlow id="f5" sourceRef="fork" targetRef="inputs"/>
    <sequenceFlow id="f6" sourceRef="fork" targetRef="plain"/>
    <sequenceFlow id="f7" sourceRef="fork" targetRef="portal"/>
    <sequenceFlow id="f8" sourceRef="fork" targetRef="absent"/>
  </process>
</definitions>"#
    )
}

fn request_form(version: u32) -> String {
    let tag = if version == 1 { r#", "versionTag": "v1""# } else { "" };
    format!(r#"{{"id": "request", "components": [{{"type": "number", "key": "days", "label": "Days (v{version})"}}]{tag}}}"#)
}

async fn deploy(app: &App, files: Value) -> Value {
    let (status, answer) = app.json("POST", "/v1/workflows", json!({ "resources": files })).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer
}

#[tokio::test]
async fn each_user_task_gets_the_form_its_model_links() {
    let app = App::new();
    // Version 1 of the form with the workflow; version 2 alone, later.
    let first = deploy(&app, json!([{"name": "leave.bpmn", "xml": model()}, {"name": "request.form", "xml": request_form(1)}])).await;
    assert_eq!(first["forms"], json!([{"form_id": "request", "tenant": "default", "version": 1, "created": true}]));
    let again = deploy(&app, json!([{"name": "request.form", "xml": request_form(1)}])).await;
    assert_eq!(again["forms"][0]["created"], false, "the same form keeps its version");
    let second = deploy(&app, json!([{"name": "request.form", "xml": request_form(2)}])).await;
    assert_eq!(second["forms"][0]["version"], 2);
    let (_, listed) = app.send("GET", "/v1/forms", None).await.into_json();
    let versions: Vec<(&str, u64, &str)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["form_id"].as_str().unwrap(), f["version"].as_u64().unwrap(), f["version_tag"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(versions, [("request", 1, "v1"), ("request", 2, "-")]);
    let (_, latest) = app.send("GET", "/v1/forms/request", None).await.into_json();
    assert_eq!(latest["schema"]["components"][0]["label"], "Days (v2)");

    let id = app.start(json!({"workflow": "leave", "variables": {"days": 3, "who": "ann"}})).await;
    let (_, tasks) = app.send("GET", &format!("/v1/tasks?instance_id={id}"), None).await.into_json();
    let key = |element: &str| -> String {
        let task = tasks["items"].as_array().unwrap().iter().find(|t| t["element_id"] == element).unwrap();
        task["key"].as_str().unwrap().to_string()
    };
    let form = |element: &'static str| {
        let path = format!("/v1/tasks/{}/form", key(element));
        let app = &app;
        async move { app.send("GET", &path, None).await.into_json() }
    };

    let (status, review) = form("review").await;
    assert_eq!(status, StatusCode::OK, "{review}");
    assert_eq!((review["source"].as_str(), review["form_id"].as_str()), (Some("embedded"), Some("UserTaskForm_1")));
    assert_eq!(review["schema"], serde_json::from_str::<Value>(EMBEDDED).unwrap());
    assert_eq!(review["variables"], json!({"days": 3, "who": "ann"}), "the variables to fill it");

    let label = |form: &Value| form["schema"]["components"][0]["label"].as_str().unwrap().to_string();
    let (_, latest) = form("latest").await;
    assert_eq!((latest["source"].as_str(), latest["version"].as_u64(), label(&latest)), (Some("deployed"), Some(2), "Days (v2)".into()));
    let (_, pinned) = form("pinned").await;
    assert_eq!((pinned["version"].as_u64(), label(&pinned)), (Some(1), "Days (v1)".into()), "deployed with the workflow");
    let (_, tagged) = form("tagged").await;
    assert_eq!(tagged["version"].as_u64(), Some(1), "the version tagged v1");

    let (_, inputs) = form("inputs").await;
    assert_eq!(inputs["source"], "generated");
    let fields: Vec<(&str, &str)> = inputs["schema"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["key"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [("days", "number"), ("paid", "checkbox")], "one field per input variable");

    let (_, plain) = form("plain").await;
    assert_eq!((plain["source"].as_str(), &plain["schema"]), (Some("none"), &Value::Null));
    let (_, portal) = form("portal").await;
    assert_eq!((portal["source"].as_str(), portal["reference"].as_str()), (Some("external"), Some("https://forms.example/leave")));
    let (status, absent) = form("absent").await;
    assert_eq!((status, absent["code"].as_str()), (StatusCode::NOT_FOUND, Some("form-not-found")), "{absent}");
    assert!(absent["detail"].as_str().unwrap().contains("nowhere"), "{absent}");

    // Completed: it leaves the open list, joins the completed one with who did it, and has no form any more.
    let review_key = key("review");
    let (status, _) = app.json_as("ann", "POST", &format!("/v1/tasks/{review_key}/complete"), json!({"variables": {"comment": "fine"}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, open) = app.send("GET", &format!("/v1/tasks?instance_id={id}"), None).await.into_json();
    assert_eq!(open["items"].as_array().unwrap().len(), 7);
    let (_, done) = app.send("GET", "/v1/tasks?state=completed&completed_by=ann", None).await.into_json();
    let done = &done["items"][0];
    assert_eq!((done["key"].as_str(), done["state"].as_str(), done["completed_by"].as_str()), (Some(review_key.as_str()), Some("completed"), Some("ann")));
    assert!(done["completed_at"].is_string());
    let (status, _) = app.send("GET", &format!("/v1/tasks/{review_key}/form"), None).await.into_json();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, again) = app.json_as("ann", "POST", &format!("/v1/tasks/{review_key}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a completed task cannot be completed twice: {again}");
    let (status, bad) = app.send("GET", "/v1/tasks?state=finished", None).await.into_json();
    assert_eq!((status, bad["code"].as_str()), (StatusCode::BAD_REQUEST, Some("query-invalid")));
}

#[tokio::test]
async fn a_bad_form_refuses_the_whole_deployment() {
    let app = App::new();
    let files = json!([{"name": "leave.bpmn", "xml": model()}, {"name": "broken.form", "xml": r#"{"components": []}"#}]);
    let (status, answer) = app.json("POST", "/v1/workflows", json!({ "resources": files })).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("deployment-invalid")), "{answer}");
    assert_eq!(answer["diagnostics"][0]["code"], "form-invalid");
    assert_eq!(answer["diagnostics"][0]["resource"], "broken.form");
    let (_, workflows) = app.send("GET", "/v1/workflows", None).await.into_json();
    assert_eq!(workflows["items"], json!([]), "nothing of it was deployed");
    // An embedded form key naming no embedded form is caught at deploy time.
    let dangling = model().replace("camunda-forms:bpmn:UserTaskForm_1", "camunda-forms:bpmn:Other");
    let (status, answer) = app.json("POST", "/v1/workflows", json!({"resources": [{"name": "leave.bpmn", "xml": dangling}]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((answer["diagnostics"][0]["code"].as_str(), answer["diagnostics"][0]["element"].as_str()), (Some("form-missing"), Some("review")));
}
