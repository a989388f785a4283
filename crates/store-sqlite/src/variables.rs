//! The `variables` table: each instance's own variables, one entry each,
//! keyed by name, kind and value, so that instances are found by variable
//! through an index (schema 14). Kept up as instances are written and
//! deleted; an entry is found again from the value in the instance's stored row.

use rusqlite::{Connection, OptionalExtension};
use store::{Error, Result, VariableChanges, VariableEntries};

use crate::sql_error;

/// A variable's value as the `variables` index keeps it: its kind, and a
/// value that compares as JSON does. Numbers are one kind whatever their
/// form (2 and 2.0 are equal); lists and contexts are canonical JSON text,
/// keys sorted at every level, since contexts keep the order their keys came in.
pub(crate) fn variable_entry(value: &serde_json::Value) -> (&'static str, rusqlite::types::Value) {
    use rusqlite::types::Value as Sql;
    use serde_json::Value as Json;
    match value {
        Json::Null => ("null", Sql::Integer(0)),
        Json::Bool(b) => (if *b { "true" } else { "false" }, Sql::Integer(0)),
        Json::Number(n) => ("number", n.as_i64().map_or_else(|| Sql::Real(n.as_f64().unwrap_or(f64::NAN)), Sql::Integer)),
        Json::String(s) => ("text", Sql::Text(s.clone())),
        Json::Array(_) => ("array", Sql::Text(canonical(value))),
        Json::Object(_) => ("object", Sql::Text(canonical(value))),
    }
}

/// JSON text with every context's keys sorted.
fn canonical(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().collect())
            }
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Writes the entries of an instance's variables that changed in the
/// `variables` index, called before its new row is written; with the
/// variables whole, finds what the index holds from the stored row (none
/// for a new instance) first. Returns how many statements it ran.
pub(crate) fn index_variables(connection: &Connection, instance_id: &str, changes: VariableChanges) -> Result<u64> {
    let (entries, read) = match changes {
        VariableChanges::Known(entries) => (entries, 0),
        VariableChanges::Whole(variables) => (VariableEntries::bring(&mut stored_variables(connection, instance_id)?, &variables), 1),
    };
    let VariableEntries { dropped, added } = entries;
    for (name, value) in &dropped {
        drop_entry(connection, instance_id, name, value)?;
    }
    for (name, value) in &added {
        add_entry(connection, instance_id, name, value)?;
    }
    Ok(read + (dropped.len() + added.len()) as u64)
}

pub(crate) fn add_entry(connection: &Connection, instance_id: &str, name: &str, value: &serde_json::Value) -> Result<()> {
    on_entry(connection, "INSERT OR IGNORE INTO variables (name, kind, value, instance_id) VALUES (?, ?, ?, ?)", instance_id, name, value)
}

fn drop_entry(connection: &Connection, instance_id: &str, name: &str, value: &serde_json::Value) -> Result<()> {
    on_entry(connection, "DELETE FROM variables WHERE name = ? AND kind = ? AND value = ? AND instance_id = ?", instance_id, name, value)
}

/// Runs `sql` on the entry of variable `name` = `value` of an instance (its key, in key order).
fn on_entry(connection: &Connection, sql: &str, instance_id: &str, name: &str, value: &serde_json::Value) -> Result<()> {
    let (kind, value) = variable_entry(value);
    connection.prepare_cached(sql).and_then(|mut s| s.execute(rusqlite::params![name, kind, value, instance_id])).map_err(sql_error)?;
    Ok(())
}

/// Drops the entries of every variable in an instance's stored row (it is
/// being deleted). Returns how many statements it ran.
pub(crate) fn unindex_variables(connection: &Connection, instance_id: &str) -> Result<u64> {
    let stored = stored_variables(connection, instance_id)?;
    for (name, value) in &stored {
        drop_entry(connection, instance_id, name, value)?;
    }
    Ok(stored.len() as u64 + 1)
}

/// The instance's own variables in its stored row (none when it has no row
/// yet), from its state as stored (`crate::txn::from_stored`).
fn stored_variables(connection: &Connection, instance_id: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let state: Option<engine::InstanceState> = connection
        .prepare_cached("SELECT state FROM instances WHERE id = ?")
        .and_then(|mut s| s.query_row([instance_id], |row| crate::txn::from_stored(row.get_ref(0)?)).optional())
        .map_err(|e| match e {
            rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
                Error::corrupt(format!("instance {instance_id}: its state does not read: {e}"))
            }
            other => sql_error(other),
        })?;
    Ok(state.map(|state| state.variables).unwrap_or_default())
}
