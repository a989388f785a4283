//! What instances wait on, across instances: pending timers (and moving
//! one), buffered and undelivered messages, open subscriptions.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bpmn::{Kind, Workflow};
use runtime::Command;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{MessageFilter, MessageState, SubscriptionFilter, SubscriptionKind, TimerFilter};

use crate::error::ApiError;
use crate::extract::{Actor, Body, Caller, Params};
use crate::routes::{
    call, ok, page_json, page_request, parse_time, read, repetitions_json, time, Answer, AppState,
};
use crate::tenancy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerParams {
    tenant: Option<String>,
    instance_id: Option<String>,
    due_before: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// What kind of timer an element is: a catch event, a boundary event, the
/// start of an event subprocess.
fn timer_kind(workflow: &Workflow, element_id: &str) -> &'static str {
    match workflow
        .element_by_id
        .get(element_id)
        .map(|&e| &workflow.elements[e].kind)
    {
        Some(Kind::Boundary { .. }) => "boundary",
        Some(Kind::StartEvent { .. }) => "event_subprocess",
        _ => "intermediate",
    }
}

/// Pending timers in due order. The first page (of a list not narrowed to
/// one instance) starts with the timer start events of deployed workflows.
pub async fn list_timers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<TimerParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let page = page_request(params.after.clone(), params.limit)?;
    let due_before = parse_time("due_before", params.due_before)?;
    let with_starts = params.after.is_none() && params.instance_id.is_none();
    let filter = TimerFilter {
        tenants: tenants.clone(),
        instance_id: params.instance_id,
        due_before,
    };
    let registry = state.handle.workflows.clone();
    let (starts, found) = read(&state, move |txn| {
        let starts = if with_starts {
            txn.start_timers()?
        } else {
            Vec::new()
        };
        let starts: Vec<_> = starts
            .into_iter()
            .filter(|start| store::reaches(&tenants, &start.tenant))
            .collect();
        let found = txn.timers(&filter, &page)?;
        // Each instance once: its version names the model, its state the repetitions left.
        let mut instances = BTreeMap::new();
        for timer in &found.items {
            if !instances.contains_key(&timer.instance_id) {
                instances.insert(timer.instance_id.clone(), txn.instance(&timer.instance_id)?);
            }
        }
        let items: Vec<Value> = found
            .items
            .iter()
            .map(|timer| {
                let instance = instances.get(&timer.instance_id).and_then(Option::as_ref);
                let workflow =
                    instance.and_then(|i| registry.get(&i.tenant, &i.process_id, i.version));
                let engine_timer = instance.and_then(|i| i.state.timers.get(&timer.local_key));
                let element = workflow.as_ref().and_then(|w| {
                    w.element_by_id
                        .get(&timer.element_id)
                        .map(|&e| &w.elements[e])
                });
                let repetitions = repetitions_json(
                    engine_timer
                        .and_then(|t| t.repeat.as_ref())
                        .map(|r| r.remaining),
                );
                json!({
                    "key": store::item_key(&timer.instance_id, timer.local_key),
                    "tenant": timer.tenant,
                    "instance_id": timer.instance_id,
                    "workflow": instance.map(|i| &i.process_id),
                    "version": instance.map(|i| i.version),
                    "element": timer.element_id,
                    "element_name": element.and_then(|e| e.name.clone()),
                    "kind": workflow.as_ref().map(|w| timer_kind(w, &timer.element_id)),
                    "due_at": time(timer.due_at),
                    "repetitions_left": repetitions,
                })
            })
            .collect();
        Ok((
            starts,
            store::Page {
                items,
                next: found.next,
            },
        ))
    })
    .await?;
    let mut items: Vec<Value> = starts
        .iter()
        .filter(|s| due_before.is_none_or(|t| s.due_at <= t))
        .map(|start| {
            let workflow =
                state
                    .handle
                    .workflows
                    .get(&start.tenant, &start.process_id, start.version);
            let element = workflow.as_ref().and_then(|w| {
                w.element_by_id
                    .get(&start.element_id)
                    .map(|&e| &w.elements[e])
            });
            json!({
                "key": null,
                "tenant": start.tenant,
                "instance_id": null,
                "workflow": start.process_id,
                "version": start.version,
                "element": start.element_id,
                "element_name": element.and_then(|e| e.name.clone()),
                "kind": "start",
                "due_at": time(start.due_at),
                "repetitions_left": repetitions_json(start.repeat.as_ref().map(|(left, _)| *left)),
            })
        })
        .collect();
    items.extend(found.items);
    ok(json!({ "items": items, "next": found.next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// The new due time, RFC 3339.
    due_at: String,
    reason: Option<String>,
}

/// Moves a pending timer: `<instance id>.<timer key>`.
pub async fn reschedule_timer(
    State(state): State<AppState>,
    actor: Actor,
    Caller(caller): Caller,
    Path(key): Path<String>,
    Body(request): Body<RescheduleRequest>,
) -> Answer {
    let due_at = request
        .due_at
        .parse::<jiff::Timestamp>()
        .map_err(|_| {
            ApiError::new(
                "request-invalid",
                format!(
                    "due_at '{}' is not a date and time such as 2026-01-01T00:00:00Z",
                    request.due_at
                ),
            )
        })?
        .as_millisecond();
    let not_found = || ApiError::new("timer-not-found", format!("timer {key} does not exist"));
    let (instance_id, local) = key.rsplit_once('.').ok_or_else(not_found)?;
    let local: u64 = local.parse().map_err(|_| not_found())?;
    let lookup = (instance_id.to_string(), local);
    let timer = read(&state, move |txn| Ok(txn.timer(&lookup.0, lookup.1)?)).await?;
    if !timer.is_some_and(|timer| tenancy::sees(caller.as_ref(), &timer.tenant)) {
        return Err(not_found());
    }
    let input = engine::Input::RescheduleTimer {
        timer: local,
        due_at,
    };
    call(
        &state,
        &actor,
        None,
        request.reason,
        Command::Instance {
            instance_id: instance_id.to_string(),
            input,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageParams {
    tenant: Option<String>,
    /// `buffered` (default) or `undelivered`.
    state: Option<String>,
    name: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// Messages published with a time to live: still waiting for a subscriber,
/// or expired before any process took them.
pub async fn list_messages(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<MessageParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let message_state = match params.state.as_deref() {
        None | Some("buffered") => MessageState::Buffered,
        Some("undelivered") => MessageState::Undelivered,
        Some(other) => {
            return Err(ApiError::new(
                "query-invalid",
                format!("state '{other}' is not buffered or undelivered"),
            ))
        }
    };
    let page = page_request(params.after, params.limit)?;
    let now = state.handle.clock.now();
    let filter = MessageFilter {
        tenants,
        state: message_state,
        name: params.name,
    };
    let found = read(&state, move |txn| Ok(txn.messages(&filter, now, &page)?)).await?;
    ok(page_json(found, |m| {
        json!({
            "seq": m.seq,
            "tenant": m.tenant,
            "name": m.name,
            "correlation_key": m.correlation_key,
            "message_id": m.message_id,
            "variables": m.variables,
            "published_at": time(m.published_at),
            "expires_at": time(m.expires_at),
            "ttl_left_ms": (m.expires_at - now).max(0),
            "correlated_to": m.correlated,
            "undelivered_because": (message_state == MessageState::Undelivered).then_some("no subscription matched it before it expired"),
        })
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionParams {
    tenant: Option<String>,
    instance_id: Option<String>,
    /// `message` or `signal`.
    kind: Option<String>,
    name: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// Open message and signal subscriptions: who waits for what name and key.
pub async fn list_subscriptions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<SubscriptionParams>,
) -> Answer {
    let tenants = tenancy::scope(caller.as_ref(), params.tenant)?;
    let kind = match params.kind.as_deref() {
        None => None,
        Some("message") => Some(SubscriptionKind::Message),
        Some("signal") => Some(SubscriptionKind::Signal),
        Some(other) => {
            return Err(ApiError::new(
                "query-invalid",
                format!("kind '{other}' is not message or signal"),
            ))
        }
    };
    let page = page_request(params.after, params.limit)?;
    let filter = SubscriptionFilter {
        tenants,
        instance_id: params.instance_id,
        kind,
        name: params.name,
    };
    let found = read(&state, move |txn| Ok(txn.subscriptions(&filter, &page)?)).await?;
    ok(page_json(found, |s| {
        json!({
            "instance_id": s.instance_id,
            "tenant": s.tenant,
            "element": s.element_id,
            "kind": s.kind,
            "name": s.name,
            "correlation_key": (s.kind == SubscriptionKind::Message).then_some(&s.correlation_key),
            "opened_at": time(s.opened_at),
        })
    }))
}
