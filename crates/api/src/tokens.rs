//! API tokens, for admins: create (the secret is in that answer only), list, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use runtime::Command;
use serde_json::{json, Value};

use crate::access::{new_token, TokenRequest};
use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller};
use crate::routes::{call, ok, read, time, AppState, Answer, Empty};

fn token_json(row: &store::TokenRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "roles": row.roles,
        "job_types": row.job_types,
        "workflows": row.workflows,
        "groups": row.groups,
        "tenants": row.tenants,
        "hide_variables": row.hide_variables,
        "created_at": time(row.created_at),
        "expires_at": row.expires_at.map(time),
        "revoked_at": row.revoked_at.map(time),
    })
}

/// The door's copy of the tokens, after a change committed.
async fn reload(state: &AppState) -> Result<(), ApiError> {
    if let Some(tokens) = state.tokens.clone() {
        let rows = read(state, |txn| Ok(txn.tokens()?)).await?;
        tokens.replace(rows);
    }
    Ok(())
}

/// Keeps the door's copy of the tokens as other nodes change them (a token
/// revoked on one node is refused on every node once it hears of it).
pub(crate) fn follow(handle: runtime::Handle, tokens: std::sync::Arc<crate::access::Tokens>) {
    tokio::spawn(async move {
        loop {
            handle.tokens_changed.notified().await;
            let store = handle.store.clone();
            match tokio::task::spawn_blocking(move || store.read().and_then(|mut r| r.tokens())).await {
                Ok(Ok(rows)) => tokens.replace(rows),
                // Not readable now: the next change (or the reconnect's news) reads again.
                _ => eprintln!("baton: cannot read the tokens another node changed; keeping the ones known"),
            }
        }
    });
}

pub async fn create_token(State(state): State<AppState>, actor: Actor, Body(request): Body<TokenRequest>) -> Answer {
    let (token, row) = new_token(request, state.handle.clock.now()).map_err(|e| ApiError::new("request-invalid", e))?;
    let name = row.name.clone();
    let taken = read(&state, move |txn| Ok(txn.tokens()?.iter().any(|t| t.name == name && t.revoked_at.is_none()))).await?;
    if taken {
        return Err(ApiError::new("token-name-taken", format!("a token named '{}' exists; revoke it first or choose another name", row.name)));
    }
    call(&state, &actor, None, None, Command::PutToken(row.clone())).await?;
    reload(&state).await?;
    let mut answer = token_json(&row);
    answer["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub async fn list_tokens(State(state): State<AppState>) -> Answer {
    let rows = read(&state, |txn| Ok(txn.tokens()?)).await?;
    ok(json!({ "items": rows.iter().map(token_json).collect::<Vec<_>>(), "next": null }))
}

pub async fn revoke_token(State(state): State<AppState>, actor: Actor, Path(id): Path<String>, Body(_): Body<Empty>) -> Answer {
    let lookup = id.clone();
    let found = read(&state, move |txn| Ok(txn.tokens()?.into_iter().find(|t| t.id == lookup))).await?;
    let mut row = found.ok_or_else(|| ApiError::new("token-not-found", format!("token {id} does not exist")))?;
    if row.revoked_at.is_none() {
        row.revoked_at = Some(state.handle.clock.now());
        call(&state, &actor, None, None, Command::PutToken(row)).await?;
        reload(&state).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How the door lets people in, for the console's sign-in page: `none`, `token`
/// or `oidc` (with the issuer and, when configured, the console's client and
/// the issuer's endpoints for the authorization-code flow with PKCE).
pub(crate) fn sign_in_json(security: &crate::guard::Security) -> serde_json::Value {
    match (&security.tokens, &security.oidc) {
        (Some(_), _) => json!({ "method": "token", "oidc": null }),
        (None, Some(oidc)) => json!({
            "method": "oidc",
            "oidc": {
                "issuer": oidc.issuer(),
                "client_id": oidc.sign_in.as_ref().map(|s| &s.client_id),
                "scopes": oidc.sign_in.as_ref().map(|s| &s.scopes),
                "authorization_endpoint": oidc.sign_in.as_ref().map(|s| &s.authorization_endpoint),
                "token_endpoint": oidc.sign_in.as_ref().map(|s| &s.token_endpoint),
            },
        }),
        (None, None) => json!({ "method": "none", "oidc": null }),
    }
}

pub async fn sign_in(State(state): State<AppState>) -> Answer {
    ok(state.sign_in.as_ref().clone())
}

/// Who the caller is, as its token says, and every route it may call. Without
/// authentication nobody in particular is calling, and every route is open.
pub async fn me(Caller(caller): Caller, actor: Actor) -> Answer {
    let may: Vec<String> = crate::access::ACCESS
        .iter()
        .filter(|(_, _, access)| caller.as_ref().is_none_or(|c| c.may_call(*access)))
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    let answer = match &caller {
        Some(caller) => json!({
            "authenticated": true,
            "name": caller.name,
            "roles": caller.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "tenants": caller.tenants,
            "groups": caller.groups,
            "job_types": caller.job_types,
            "workflows": caller.workflows,
            "hide_variables": caller.hide_variables,
            "may": may,
        }),
        None => json!({
            "authenticated": false,
            "name": actor.name,
            "roles": [],
            "tenants": null,
            "groups": [],
            "job_types": null,
            "workflows": null,
            "hide_variables": false,
            "may": may,
        }),
    };
    ok(answer)
}
