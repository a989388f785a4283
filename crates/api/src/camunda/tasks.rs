//! User tasks (Camunda's own kind, `zeebe:userTask`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::Variables;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{TaskFilter, TaskState};

use super::keys::{self, Key};
use super::{baton_key, gather_rows, search_result, tenant_in, tenant_out, OrDefault, SearchRequest};
use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller};
use crate::routes::{read, time, AppState};
use crate::tenancy;

type Answer = Result<Response, ApiError>;

/// Camunda's default priority, for tasks whose model sets none.
const DEFAULT_PRIORITY: i64 = 50;

/// A task with what its instance knows of it (none when the instance is gone).
type Found = (store::TaskRow, Option<store::InstanceRow>);

fn task_json(state: &AppState, (task, instance): &Found) -> Value {
    let number = instance.as_ref().map_or(0, |i| i.number);
    let version = instance.as_ref().map_or(0, |i| i.version);
    let open = instance.as_ref().and_then(|i| i.state.user_tasks.get(&task.local_key));
    let workflow = state.handle.workflows.get(&task.tenant, &task.process_id, version);
    let element = workflow.as_ref().and_then(|w| w.element(&task.element_id));
    let task_state = match (task.completed_at, open.and_then(|t| t.transition.as_ref())) {
        (Some(_), _) => "COMPLETED",
        (None, None) => "CREATED",
        (None, Some(transition)) => match transition.event {
            bpmn::ListenerEvent::Creating => "CREATING",
            bpmn::ListenerEvent::Assigning => "ASSIGNING",
            bpmn::ListenerEvent::Updating => "UPDATING",
            bpmn::ListenerEvent::Canceling => "CANCELING",
            _ => "COMPLETING",
        },
    };
    json!({
        "name": element.and_then(|e| e.name.clone()),
        "state": task_state,
        "assignee": task.assignee,
        "elementId": task.element_id,
        "candidateGroups": task.candidate_groups,
        "candidateUsers": task.candidate_users,
        "processDefinitionId": task.process_id,
        "creationDate": time(task.created_at),
        "completionDate": task.completed_at.map(time),
        "followUpDate": task.follow_up,
        "dueDate": task.due,
        "tenantId": tenant_out(&task.tenant),
        "externalFormReference": null,
        "processDefinitionVersion": version,
        "customHeaders": {},
        "priority": task.priority.unwrap_or(DEFAULT_PRIORITY),
        "userTaskKey": keys::render_inside(number, task.local_key),
        "elementInstanceKey": open.map_or(Value::Null, |t| keys::render_inside(number, t.element_instance)),
        "processName": workflow.as_ref().and_then(|w| w.name.clone()),
        "processDefinitionKey": state.handle.workflows.find(&task.tenant, &task.process_id, version).map(|l| keys::definition(l.deployment, l.place)),
        "processInstanceKey": Key::instance(number).render(),
        "rootProcessInstanceKey": null,
        "formKey": task.form_key,
        "tags": [],
    })
}

/// `POST /v2/user-tasks/search`: every state unless `state` says which.
pub async fn search(State(state): State<AppState>, Caller(caller): Caller, Body(request): Body<SearchRequest>) -> Answer {
    let (asked, window) = request.open(&super::schemas::user_task(), &["candidateGroup"], "user tasks answer in creation order")?;
    let text = |field: &str| asked.text(field);
    let mut filter = TaskFilter {
        tenants: tenancy::scope(caller.as_ref(), tenant_in(text("tenantId")?))?,
        assignee: text("assignee")?,
        candidate_group: text("candidateGroup")?,
        process_id: text("processDefinitionId")?,
        state: match text("state")?.as_deref() {
            None => TaskState::All,
            Some("CREATED") => TaskState::Open,
            Some("COMPLETED") => TaskState::Completed,
            // The states of a change under way are open tasks; the items' own state decides.
            Some(_) => TaskState::Open,
        },
        ..TaskFilter::default()
    };
    let instance = text("processInstanceKey")?.map(|k| Key::parse("processInstanceKey", &k)).transpose()?;
    let by_key = match text("userTaskKey")? {
        Some(key) => Some(baton_key(&state, "user task", &key).await?),
        None => None,
    };
    let reading = state.clone();
    let (items, next) = read(&state, move |txn| {
        let Some(instance_id) = super::instance_named(txn, instance)? else { return Ok((Vec::new(), None)) };
        filter.instance_id = instance_id;
        let rows = |txn: &mut dyn store::ReadTxn, page: &store::PageRequest| -> Result<store::Page<store::TaskRow>, ApiError> {
            match &by_key {
                Some(key) => Ok(super::one_row(txn.task(key)?.filter(|t| filter.matches(t)), page)),
                None => Ok(txn.tasks(&filter, page)?),
            }
        };
        gather_rows(txn, &window, &asked, rows, |txn, task| {
            // A user sees the tasks it may work on.
            if caller.as_ref().is_some_and(|c| !c.may_see_task(&task)) {
                return Ok(None);
            }
            let instance = txn.instance(&task.instance_id)?;
            Ok(Some(task_json(&reading, &(task, instance))))
        })
    })
    .await?;
    Ok(Json(search_result(items, next)).into_response())
}

/// `GET /v2/user-tasks/{userTaskKey}`.
pub async fn get_one(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let baton = baton_key(&state, "user task", &key).await?;
    let task = crate::routes::visible_task(&state, caller.as_ref(), &baton).await?;
    let instance_id = task.instance_id.clone();
    let instance = read(&state, move |txn| Ok(txn.instance(&instance_id)?)).await?;
    Ok(Json(task_json(&state, &(task, instance))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignmentRequest {
    assignee: Option<String>,
    allow_override: Option<bool>,
    action: Option<String>,
}

/// `POST /v2/user-tasks/{userTaskKey}/assignment`: `allowOverride: false`
/// claims (refused while someone else holds it); otherwise an operator
/// assigns, and a user claims for itself.
pub async fn assign(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Path(key): Path<String>, Body(request): Body<AssignmentRequest>) -> Answer {
    refuse_action(request.action.as_deref())?;
    let Some(assignee) = request.assignee.filter(|a| !a.is_empty()) else {
        return Err(ApiError::new("request-invalid", "assignee is missing: name who takes the task (unassign with DELETE .../assignee)"));
    };
    let baton = baton_key(&state, "user task", &key).await?;
    let operator = caller.as_ref().is_none_or(|c| c.has(crate::access::Role::Operator));
    if request.allow_override != Some(false) && operator {
        crate::routes::visible_task(&state, caller.as_ref(), &baton).await?;
        return crate::routes::task_action(&state, &actor, baton, runtime::TaskAction::Assign(assignee)).await;
    }
    crate::routes::claim_task_as(&state, &actor, caller.as_ref(), baton, assignee).await
}

/// `DELETE /v2/user-tasks/{userTaskKey}/assignee`.
pub async fn unassign(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let baton = baton_key(&state, "user task", &key).await?;
    crate::routes::unclaim_task_as(&state, &actor, caller.as_ref(), baton).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompletionRequest {
    variables: Option<Variables>,
    action: Option<String>,
}

/// `POST /v2/user-tasks/{userTaskKey}/completion`.
pub async fn complete(State(state): State<AppState>, actor: Actor, Caller(caller): Caller, Path(key): Path<String>, OrDefault(request): OrDefault<CompletionRequest>) -> Answer {
    refuse_action(request.action.as_deref())?;
    let baton = baton_key(&state, "user task", &key).await?;
    crate::routes::complete_task_as(&state, &actor, caller.as_ref(), baton, request.variables.unwrap_or_default()).await
}

/// The actions a user task operation may name: its own event's.
pub(crate) const SERVED_ACTIONS: &[&str] = &["", "assign", "claim", "complete", "unassign"];

/// Camunda lets a caller name its action (for listeners to read); Baton's listeners see the event only.
fn refuse_action(action: Option<&str>) -> Result<(), ApiError> {
    match action {
        None => Ok(()),
        Some(action) if SERVED_ACTIONS.contains(&action) => Ok(()),
        Some(other) => Err(ApiError::new("request-invalid", format!("a custom action ('{other}') is not served: Baton's listeners see the event only"))),
    }
}

/// `GET /v2/user-tasks/{userTaskKey}/form`: the task's form (embedded or
/// deployed), or 204 when it has none Baton can give (generated, external or none).
pub async fn form(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let baton = baton_key(&state, "user task", &key).await?;
    let (task, form) = crate::forms::open_task_form(&state, caller.as_ref(), &baton).await?;
    let (Some(schema), Some(form_id)) = (form.schema.filter(|_| matches!(form.source, runtime::forms::FormSource::Embedded | runtime::forms::FormSource::Deployed)), form.form_id) else {
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    };
    Ok(Json(json!({
        "tenantId": tenant_out(&task.tenant),
        "formId": form_id,
        "schema": schema.to_string(),
        "version": form.version.unwrap_or(1),
        "formKey": keys::render_inside(Key::parse("userTaskKey", &key)?.number, task.local_key),
    }))
    .into_response())
}
