//! DMN decisions at the API: the deployed ones, and evaluating one.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Value};
use store::DecisionRow;

use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller, Params};
use crate::routes::{asked_version, call, ok, page_by_name, page_request, read, time, Answer, AppState};
use crate::tenancy;

fn decision_json(row: &DecisionRow, with_xml: bool) -> Value {
    let mut value = json!({
        "decision_id": row.decision_id,
        "tenant": row.tenant,
        "version": row.version,
        "name": row.name,
        "definitions_id": row.definitions_id,
        "deployment": row.deployment,
        "resource": row.resource,
        "deployed_at": time(row.deployed_at),
    });
    if with_xml {
        value["xml"] = json!(row.xml);
    }
    value
}

/// Which decision ran, its version, and which rules of each table matched.
pub(crate) fn decision_ref_json(decision: &engine::DecisionRef) -> Value {
    json!({
        "decision_id": decision.decision_id,
        "version": decision.version,
        "matched": decision.matched.iter().map(|(name, rules)| json!({ "decision": name, "rules": rules })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionListParams {
    tenant: Option<String>,
    decision_id: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// Every version of every deployed decision the caller's tenants have, paged like workflows.
pub async fn list_decisions(State(state): State<AppState>, Caller(caller): Caller, Params(params): Params<DecisionListParams>) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let page = page_request(params.after, params.limit)?;
    let rows = read(&state, move |txn| Ok(txn.decisions(&tenants, params.decision_id.as_deref())?)).await?;
    let named = rows.into_iter().map(|d| (format!("{}/{}/{:010}", d.tenant, d.decision_id, d.version), d)).collect();
    let (rows, next) = page_by_name(named, &page)?;
    ok(json!({ "items": rows.iter().map(|d| decision_json(d, false)).collect::<Vec<_>>(), "next": next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionParams {
    tenant: Option<String>,
    version: Option<u32>,
}

/// One decision with its DMN file: the latest version, or the one asked for.
pub async fn get_decision(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(decision_id): Path<String>,
    Params(params): Params<DecisionParams>,
) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), params.tenant)?;
    let (lookup, scope) = (decision_id.clone(), Some(vec![tenant.clone()]));
    let versions = read(&state, move |txn| Ok(txn.decisions(&scope, Some(&lookup))?)).await?;
    let found = asked_version(&versions, params.version, |v| v.version);
    let version = params.version.map_or(String::new(), |v| format!(" version {v}"));
    let found = found.ok_or_else(|| ApiError::new("decision-not-found", format!("decision {decision_id}{version} is not deployed to tenant {tenant}")))?;
    ok(decision_json(found, true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    #[serde(default)]
    variables: engine::Variables,
    version: Option<u32>,
    tenant: Option<String>,
}

/// Evaluates a deployed decision with variables; writes nothing.
pub async fn evaluate_decision(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(decision_id): Path<String>,
    Body(request): Body<EvaluateRequest>,
) -> Answer {
    let tenant = tenancy::one(caller.as_ref(), request.tenant)?;
    let command = runtime::Command::Evaluate { tenant: tenant.clone(), decision_id, version: request.version, variables: request.variables };
    let runtime::Reply::Decided(outcome) = call(&state, &actor, None, None, command).await? else {
        unreachable!("evaluate answers with a decision")
    };
    let mut answer = decision_ref_json(&outcome.decision);
    answer["tenant"] = json!(tenant);
    answer["result"] = outcome.value;
    ok(answer)
}
