//! What the SQL stores (`store-sqlite`, `store-postgres`) share: each table's
//! columns in the order their row mappings read them, the shape of the list
//! queries (a page in an index's order, either way), and enums as the text
//! serde gives them. No driver: each store binds values and maps rows with
//! its own, and writes the SQL where their dialects differ (placeholders,
//! JSON, lists of tenants).

use serde::Serialize;
use store::{Error, Result};

pub const WORKFLOW_COLUMNS: &str = "process_id, version, deployment, name, version_tag, xml, deployed_at, tenant";
pub const INSTANCE_COLUMNS: &str = "id, process_id, version, status, business_key, parent_id, started_at, ended_at, incidents, waiting, start_key, update_count, history_count, state, tenant, number";
pub const JOB_COLUMNS: &str = "key, instance_id, local_key, process_id, element_id, job_type, retries, state, not_before, error_message, worker, lease_until, created_at, lease, tenant";
pub const TASK_COLUMNS: &str = "key, instance_id, local_key, process_id, element_id, assignee, candidate_groups, candidate_users, due, follow_up, priority, form_key, created_at, tenant, completed_at, completed_by";
pub const FORM_COLUMNS: &str = "tenant, form_id, version, deployment, version_tag, resource, schema, deployed_at";
pub const DECISION_COLUMNS: &str = "tenant, decision_id, version, deployment, name, definitions_id, resource, xml, deployed_at";
pub const INCIDENT_COLUMNS: &str = "key, instance_id, local_key, process_id, element_id, kind, message, created_at, resolved_at, resolved_by, tenant";
pub const SUBSCRIPTION_COLUMNS: &str = "instance_id, local_key, element_id, kind, name, correlation_key, opened_at, tenant";
pub const MESSAGE_COLUMNS: &str = "seq, name, correlation_key, variables, published_at, expires_at, message_id, correlated, tenant";
pub const TOKEN_COLUMNS: &str = "id, name, hash, roles, job_types, workflows, groups, hide_variables, created_at, expires_at, revoked_at, tenants";
pub const TIMER_COLUMNS: &str = "instance_id, local_key, element_id, due_at, tenant";

/// A page of a list in its (time, key) order, `direction` "" or " DESC".
pub fn paged_sql(columns: &str, table: &str, filter: &str, (time_column, key_column): (&str, &str), direction: &str, limit: usize) -> String {
    format!("SELECT {columns} FROM {table} {filter} ORDER BY {time_column}{direction}, {key_column}{direction} LIMIT {limit}")
}

/// A page of instances by `lead` (a column its own index leads with), then start time and id.
pub fn ordered_instances_sql(lead: &str, descending: bool, filter_sql: &str, limit: usize) -> String {
    let direction = if descending { " DESC" } else { "" };
    format!("SELECT {INSTANCE_COLUMNS} FROM instances {filter_sql} ORDER BY {lead}{direction}, started_at{direction}, id{direction} LIMIT {limit}")
}

/// What a list of jobs reads by tenant (each store's `list`): the conditions
/// its index has before the tenant, with `?` for the one value given.
/// `jobs_by_type` (type, tenant, ...) for one type, `jobs_failed` for the
/// failed ones (few among many), else `jobs_by_tenant`.
pub fn job_list_lead(filter: &store::JobFilter) -> (&'static str, Option<&str>) {
    match (&filter.job_type, filter.state) {
        (Some(job_type), _) => ("job_type = ? AND ", Some(job_type.as_str())),
        (None, Some(engine::JobState::Failed)) => ("state = 'failed' AND ", None),
        (None, _) => ("", None),
    }
}

/// A job state as a condition written out, not bound: a planner uses a
/// partial index (`jobs_failed`) only for a condition it can see implies
/// the index's.
pub fn job_state_sql(state: engine::JobState) -> Result<String> {
    Ok(format!("state = '{}'", enum_text(&state)?))
}

/// What a list of incidents reads by tenant (as [`job_list_lead`]): one
/// workflow's through `incidents_open_by_process` (open ones) or
/// `incidents_by_process` (process, tenant, ...); open ones (the usual
/// list) through `incidents_open`, which resolved ones do not fill; others
/// through `incidents_by_tenant`.
pub fn incident_list_lead(filter: &store::IncidentFilter) -> (&'static str, Option<&str>) {
    let open = filter.state == store::IncidentState::Open;
    match (&filter.process_id, open) {
        (Some(process_id), true) => ("process_id = ? AND resolved_at IS NULL AND ", Some(process_id.as_str())),
        (Some(process_id), false) => ("process_id = ? AND ", Some(process_id.as_str())),
        (None, true) => ("resolved_at IS NULL AND ", None),
        (None, false) => ("", None),
    }
}

/// The condition that keeps the incidents in `state` (`None` for all).
pub fn incident_state_sql(state: store::IncidentState) -> Option<&'static str> {
    match state {
        store::IncidentState::Open => Some("resolved_at IS NULL"),
        store::IncidentState::Resolved => Some("resolved_at IS NOT NULL"),
        store::IncidentState::All => None,
    }
}

/// An enum as the text serde gives it (`running`, `activatable`, ...).
pub fn enum_text<T: Serialize>(value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => Ok(text),
        _ => Err(Error::other("an enum did not encode as text")),
    }
}

/// The tables whose rows belong to one instance (column `instance_id`):
/// what deleting an instance deletes besides its own row.
pub const INSTANCE_TABLES: [&str; 9] = ["history", "jobs", "timers", "subscriptions", "tasks", "incidents", "labels", "requests", "deletions"];
