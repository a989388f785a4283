//! Forms at the API: the deployed forms, and the form a user task is completed with.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Value};
use store::FormRow;

use crate::error::ApiError;
use crate::extract::{Caller, Params};
use crate::routes::{asked_version, ok, page_by_name, page_request, read, time, visible_task, Answer, AppState};
use crate::tenancy;

fn form_json(form: &FormRow, with_schema: bool) -> Value {
    let mut value = json!({
        "form_id": form.form_id,
        "tenant": form.tenant,
        "version": form.version,
        "version_tag": form.version_tag,
        "deployment": form.deployment,
        "resource": form.resource,
        "deployed_at": time(form.deployed_at),
    });
    if with_schema {
        value["schema"] = serde_json::from_str(&form.schema).unwrap_or(Value::Null);
    }
    value
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormListParams {
    tenant: Option<String>,
    form_id: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// Every version of every deployed form the caller's tenants have, paged like workflows.
pub async fn list_forms(State(state): State<AppState>, Caller(caller): Caller, Params(params): Params<FormListParams>) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let page = page_request(params.after, params.limit)?;
    let forms = read(&state, move |txn| Ok(txn.forms(&tenants, params.form_id.as_deref())?)).await?;
    let named = forms.into_iter().map(|f| (format!("{}/{}/{:010}", f.tenant, f.form_id, f.version), f)).collect();
    let (forms, next) = page_by_name(named, &page)?;
    ok(json!({ "items": forms.iter().map(|f| form_json(f, false)).collect::<Vec<_>>(), "next": next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormParams {
    tenant: Option<String>,
    version: Option<u32>,
}

/// One form with its schema: the latest version, or the one asked for.
pub async fn get_form(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(form_id): Path<String>,
    Params(params): Params<FormParams>,
) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), params.tenant)?;
    let (lookup, scope) = (form_id.clone(), Some(vec![tenant.clone()]));
    let versions = read(&state, move |txn| Ok(txn.forms(&scope, Some(&lookup))?)).await?;
    let found = asked_version(&versions, params.version, |v| v.version);
    let version = params.version.map_or(String::new(), |v| format!(" version {v}"));
    let found = found.ok_or_else(|| ApiError::new("form-not-found", format!("form {form_id}{version} is not deployed to tenant {tenant}")))?;
    ok(form_json(found, true))
}

/// The form to complete an open user task with: embedded in its process,
/// deployed (the version its binding picks), generated from its input
/// variables, external (only its reference), or none; with the variables the
/// task sees, to fill it.
pub async fn task_form(State(state): State<AppState>, Caller(caller): Caller, Path(key): Path<String>) -> Answer {
    let (_, form) = open_task_form(&state, caller.as_ref(), &key).await?;
    ok(json!({
        "source": form.source.as_str(),
        "form_id": form.form_id,
        "version": form.version,
        "reference": form.reference,
        "schema": form.schema,
        "variables": form.variables,
    }))
}

/// An open task the caller sees, and its form.
pub(crate) async fn open_task_form(state: &AppState, caller: Option<&crate::access::Principal>, key: &str) -> Result<(store::TaskRow, runtime::forms::TaskForm), ApiError> {
    let task = visible_task(state, caller, key).await?;
    if task.completed_at.is_some() {
        return Err(ApiError::new("task-not-found", format!("user task {key} was completed; it has no form to fill")));
    }
    let registry = state.handle.workflows.clone();
    let row = task.clone();
    let form = read(state, move |txn| {
        let task = row;
        let instance = txn
            .instance(&task.instance_id)?
            .ok_or_else(|| ApiError::new("task-not-found", format!("user task {} has no instance", task.key)))?;
        let workflow = registry.get(&instance.tenant, &instance.process_id, instance.version);
        let row = txn.workflow(&instance.tenant, &instance.process_id, instance.version)?;
        let (Some(workflow), Some(row)) = (workflow, row) else {
            return Err(ApiError::new("workflow-not-found", format!("{} v{} is not deployed", instance.process_id, instance.version)));
        };
        Ok(runtime::forms::task_form(txn, &workflow, row.deployment, &instance.tenant, &instance.state, task.local_key)?)
    })
    .await?;
    Ok((task, form))
}
