//! Read and write transactions over one connection.

use std::sync::MutexGuard;

use rusqlite::types::ToSql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::rows::*;
use store_sql::*;
use store::{Error, ReadTxn, Result, WriteTxn};

use crate::history::PendingHistory;
use crate::{sql_error, SqliteStore};

/// A statement's text made from the column lists once, on first use: the
/// commit thread runs the hot ones tens of thousands of times a second, and
/// formatting each anew cost it more than looking up the prepared statement.
macro_rules! sql_once {
    ($($format:tt)*) => {{
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!($($format)*));
        SQL.as_str()
    }};
}

/// The placeholders of a whole instance row, in [`INSTANCE_COLUMNS`]' order.
const INSTANCE_VALUES: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// An instance row's values, in [`INSTANCE_COLUMNS`]' order, for
/// `execute` (a macro: `params!` borrows what it encodes, which must live
/// through the call).
macro_rules! instance_params {
    ($i:expr) => {
        params![
            $i.id,
            $i.process_id,
            $i.version,
            enum_text(&$i.status)?,
            $i.business_key,
            $i.parent_id,
            $i.started_at,
            $i.ended_at,
            $i.incidents,
            to_json(&$i.waiting)?,
            $i.start_key,
            $i.update_count,
            $i.history_count,
            to_compact(&$i.state)?,
            $i.tenant,
            $i.number
        ]
    };
}

enum Conn<'a> {
    Writer {
        guard: MutexGuard<'a, Connection>,
        store: &'a SqliteStore,
    },
    Reader {
        store: &'a SqliteStore,
        connection: Option<Connection>,
    },
}

/// Virtual machine steps every read of this process took: what a query
/// costs, counted by SQLite itself (a read that scans a table of 100 000 rows
/// takes hundreds of thousands; one through an index, a handful per row it returns).
static VM_STEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// [`VM_STEPS`] so far: for tests that bound what a query may cost.
#[doc(hidden)]
pub fn vm_steps() -> u64 {
    VM_STEPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Adds what `statement` took since it was last counted.
pub(crate) fn count_steps(statement: &rusqlite::Statement<'_>) {
    let steps = statement.reset_status(rusqlite::StatementStatus::VmStep);
    VM_STEPS.fetch_add(u64::try_from(steps).unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

pub struct SqliteTxn<'a> {
    conn: Conn<'a>,
    finished: bool,
    /// Statements run, counted into the store's [`WriteCounters`] when a write transaction commits.
    statements: std::cell::Cell<u64>,
    /// How `instance_counts` moves with the instances this transaction
    /// wrote, not yet written there: a batch's hundred instances move a few
    /// counts, written once at commit ([`SqliteTxn::write_counts`]), where
    /// triggers ran two statements per instance and made SQLite keep a
    /// statement journal for every insert.
    counts: Counts,
    /// `counts` when the open savepoint began, to go back to with it.
    counts_at_savepoint: Option<Counts>,
    /// History appended and not yet written: each instance's entries go
    /// into one row when the transaction commits or a savepoint begins
    /// ([`crate::history`]).
    history: PendingHistory,
    /// The highest instance number stored, once this transaction has read
    /// it, kept up as it writes instances: a batch that starts a hundred
    /// asks the index once, not a hundred times. Forgotten where it could
    /// fall (a rollback to a savepoint, an instance deleted).
    last_number: std::cell::Cell<Option<u64>>,
    /// The instances this transaction wrote that run without incidents as
    /// written, with the version and the columns an update in place leaves
    /// alone: a later write of one in place is kept in [`Self::deferred`].
    running_written: RunningWritten,
    /// `running_written` when the open savepoint began.
    running_at_savepoint: Option<RunningWritten>,
    /// Instances written again in place in this transaction and not yet in
    /// SQLite: the row last given for each, and the version its stored row
    /// has. Written when the transaction commits, a savepoint begins, or it
    /// reads instances or writes one otherwise: the ten branches of a
    /// fork that complete in one turn write their instance once, not ten
    /// times. Only rows whose stored one runs without incidents and keeps
    /// its columns are kept, so that writing them is one update in place.
    deferred: std::collections::HashMap<String, Deferred, foldhash::fast::RandomState>,
}

/// An instance's write kept back: the row encoded, the version its stored
/// row has, and what the row holds of [`InPlace`].
struct Deferred {
    row: InPlaceUpdate,
    base: u64,
    in_place: InPlace,
}

/// An instance's row as an update in place binds it, encoded once: what a
/// write kept back holds (a clone of the row's state cost as much as the
/// update it saved).
struct InPlaceUpdate {
    id: String,
    process_id: String,
    version: u32,
    business_key: Option<String>,
    parent_id: Option<String>,
    started_at: i64,
    start_key: Option<String>,
    tenant: String,
    number: u64,
    ended_at: Option<i64>,
    waiting: String,
    update_count: u64,
    history_count: u64,
    state: Vec<u8>,
    status: String,
    incidents: u32,
}

impl InPlaceUpdate {
    fn of(row: &InstanceRow) -> Result<InPlaceUpdate> {
        Ok(InPlaceUpdate {
            id: row.id.clone(),
            process_id: row.process_id.clone(),
            version: row.version,
            business_key: row.business_key.clone(),
            parent_id: row.parent_id.clone(),
            started_at: row.started_at,
            start_key: row.start_key.clone(),
            tenant: row.tenant.clone(),
            number: row.number,
            ended_at: row.ended_at,
            waiting: to_json(&row.waiting)?,
            update_count: row.update_count,
            history_count: row.history_count,
            state: to_compact(&row.state)?,
            status: enum_text(&row.status)?,
            incidents: row.incidents,
        })
    }

    fn still_running(&self) -> bool {
        self.status == "running" && self.incidents == 0
    }

    fn count_key(&self) -> CountKey {
        (self.tenant.clone(), self.process_id.clone(), self.version, self.status.clone(), self.incidents > 0)
    }
}

/// An instance's version and the columns an update in place leaves alone
/// (`IN_PLACE_COLUMNS_HELD`): process, version, business key, parent, start
/// time, start key, tenant, number.
type InPlace = (u64, String, u32, Option<String>, Option<String>, i64, Option<String>, String, u64);
type RunningWritten = std::collections::HashMap<String, InPlace, foldhash::fast::RandomState>;

fn in_place(row: &InstanceRow) -> InPlace {
    (
        row.update_count,
        row.process_id.clone(),
        row.version,
        row.business_key.clone(),
        row.parent_id.clone(),
        row.started_at,
        row.start_key.clone(),
        row.tenant.clone(),
        row.number,
    )
}

/// Whether two rows hold the same columns of [`InPlace`] but the version.
fn same_columns(a: &InPlace, b: &InPlace) -> bool {
    (&a.1, a.2, &a.3, &a.4, a.5, &a.6, &a.7, a.8) == (&b.1, b.2, &b.3, &b.4, b.5, &b.6, &b.7, b.8)
}

/// What a row of `instance_counts` is keyed by: tenant, workflow, version, status, has open incidents.
type CountKey = (String, String, u32, String, bool);
/// Moves of the instance counts in this transaction (foldhash: a start and
/// an end each move one).
type Counts = std::collections::HashMap<CountKey, i64, foldhash::fast::RandomState>;

impl<'a> SqliteTxn<'a> {
    pub(crate) fn writer(store: &'a SqliteStore, guard: MutexGuard<'a, Connection>) -> SqliteTxn<'a> {
        SqliteTxn {
            conn: Conn::Writer { guard, store },
            finished: false,
            statements: std::cell::Cell::new(0),
            counts: Counts::default(),
            counts_at_savepoint: None,
            history: PendingHistory::default(),
            last_number: std::cell::Cell::new(None),
            running_written: RunningWritten::default(),
            running_at_savepoint: None,
            deferred: Default::default(),
        }
    }

    pub(crate) fn reader(store: &'a SqliteStore, connection: Connection) -> SqliteTxn<'a> {
        SqliteTxn {
            conn: Conn::Reader {
                store,
                connection: Some(connection),
            },
            finished: false,
            statements: std::cell::Cell::new(0),
            counts: Counts::default(),
            counts_at_savepoint: None,
            history: PendingHistory::default(),
            last_number: std::cell::Cell::new(None),
            running_written: RunningWritten::default(),
            running_at_savepoint: None,
            deferred: Default::default(),
        }
    }

    fn ran(&self, statements: u64) {
        self.statements.set(self.statements.get() + statements);
    }

    /// Writes the instance's row whole: inserted, or every column set if it is stored.
    // An upsert, not a replace: a replace deletes and inserts, in the table and every index.
    fn upsert_instance(&self, i: &InstanceRow) -> Result<()> {
        self.wrote_number(i.number);
        self.execute(
            &format!(
                "INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES {INSTANCE_VALUES} ON CONFLICT (id) DO UPDATE SET \
                 process_id = excluded.process_id, version = excluded.version, status = excluded.status, business_key = excluded.business_key, \
                 parent_id = excluded.parent_id, started_at = excluded.started_at, ended_at = excluded.ended_at, incidents = excluded.incidents, \
                 waiting = excluded.waiting, start_key = excluded.start_key, update_count = excluded.update_count, \
                 history_count = excluded.history_count, state = excluded.state, tenant = excluded.tenant"
            ),
            instance_params!(i),
        )
    }

    /// Keeps [`SqliteTxn::last_number`] up with an instance written with `number`.
    fn wrote_number(&self, number: u64) {
        if let Some(last) = self.last_number.get() {
            self.last_number.set(Some(last.max(number)));
        }
    }

    /// An instance counted under `from` now counts under `to` (`None`: not at all).
    fn recount(&mut self, from: Option<CountKey>, to: Option<CountKey>) {
        if from == to {
            return;
        }
        if let Some(key) = from {
            *self.counts.entry(key).or_default() -= 1;
        }
        if let Some(key) = to {
            *self.counts.entry(key).or_default() += 1;
        }
    }

    /// The count key of the instance `id` as stored, if it is.
    fn stored_count_key(&self, id: &str) -> Result<Option<CountKey>> {
        self.query_one(
            "SELECT tenant, process_id, version, status, incidents > 0 FROM instances WHERE id = ?",
            params![id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
        )
    }

    /// Writes what `counts` holds into `instance_counts` (one statement per
    /// count that moved, and one more per count that fell), dropping counts that reach zero.
    fn write_counts(&mut self) -> Result<()> {
        let moved: Vec<(CountKey, i64)> = self.counts.drain().filter(|(_, by)| *by != 0).collect();
        for ((tenant, process_id, version, status, with_incidents), by) in moved {
            self.execute(
                "INSERT INTO instance_counts (tenant, process_id, version, status, with_incidents, count) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT DO UPDATE SET count = count + excluded.count",
                params![tenant, process_id, version, status, with_incidents, by],
            )?;
            if by < 0 {
                self.execute(
                    "DELETE FROM instance_counts WHERE tenant = ? AND process_id = ? AND version = ? AND status = ? AND with_incidents = ? AND count <= 0",
                    params![tenant, process_id, version, status, with_incidents],
                )?;
            }
        }
        Ok(())
    }

    /// Writes the history appended so far ([`crate::history`]).
    fn write_history(&mut self) -> Result<()> {
        let statements = match &self.conn {
            Conn::Writer { guard, store } => self.history.write(guard, &store.history_ends)?,
            Conn::Reader { .. } => return Ok(()),
        };
        self.ran(statements);
        Ok(())
    }

    fn db(&self) -> &Connection {
        match &self.conn {
            Conn::Writer { guard, .. } => guard,
            Conn::Reader { connection, .. } => connection
                .as_ref()
                .expect("a reader keeps its connection until dropped"),
        }
    }
}

impl Drop for SqliteTxn<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // A write transaction dropped without commit rolls back; a read one just ends.
            let _ = self.db().execute_batch("ROLLBACK");
        }
        if let Conn::Reader { store, connection } = &mut self.conn {
            if let Some(connection) = connection.take() {
                store.return_reader(connection);
            }
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::other(format!("cannot encode a row: {e}")))
}

/// The compact form (MessagePack, [`store::compact`]) an instance's state
/// and a history entry are stored in, as a BLOB.
fn to_compact<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    store::compact::encode(value)
}

/// A state or history entry as stored: a BLOB in the compact form, or JSON
/// text, as files written before schema 15 hold it (their rows change form
/// when next written).
pub(crate) fn from_stored<T: DeserializeOwned>(value: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<T> {
    match value {
        rusqlite::types::ValueRef::Blob(bytes) => store::compact::decode(bytes).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
        }),
        rusqlite::types::ValueRef::Text(text) => serde_json::from_slice(text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        }),
        other => Err(rusqlite::Error::InvalidColumnType(0, "stored value".into(), other.data_type())),
    }
}

fn from_json<T: DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    from_stored(rusqlite::types::ValueRef::Text(text.as_bytes()))
}


/// An enum stored as its name (`enum_text`), read without going through JSON.
fn enum_from<T: DeserializeOwned>(text: String) -> rusqlite::Result<T> {
    use serde::de::IntoDeserializer;
    T::deserialize(text.as_str().into_deserializer())
        .map_err(|e: serde::de::value::Error| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// Where an instance is counted in `instance_counts`.
fn count_key(row: &InstanceRow) -> Result<CountKey> {
    Ok((row.tenant.clone(), row.process_id.clone(), row.version, enum_text(&row.status)?, row.incidents > 0))
}

/// The count key of the stored row an update in place of `row` replaces:
/// its tenant, workflow and version, running, without incidents.
fn running_count_key(row: &InstanceRow) -> CountKey {
    (row.tenant.clone(), row.process_id.clone(), row.version, "running".to_string(), false)
}

/// Decoding failures mean the file holds what this version cannot read.
pub(crate) fn read_error(error: rusqlite::Error) -> Error {
    match error {
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            Error::corrupt(error.to_string())
        }
        other => sql_error(other),
    }
}


fn workflow_row(row: &Row) -> rusqlite::Result<WorkflowRow> {
    Ok(WorkflowRow {
        process_id: row.get(0)?,
        version: row.get(1)?,
        deployment: row.get(2)?,
        name: row.get(3)?,
        version_tag: row.get(4)?,
        xml: row.get(5)?,
        deployed_at: row.get(6)?,
        tenant: row.get(7)?,
    })
}


fn instance_row(row: &Row) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: row.get(0)?,
        process_id: row.get(1)?,
        version: row.get(2)?,
        status: enum_from(row.get(3)?)?,
        business_key: row.get(4)?,
        parent_id: row.get(5)?,
        started_at: row.get(6)?,
        ended_at: row.get(7)?,
        incidents: row.get(8)?,
        waiting: from_json(&row.get::<_, String>(9)?)?,
        start_key: row.get(10)?,
        update_count: row.get(11)?,
        history_count: row.get(12)?,
        state: from_stored(row.get_ref(13)?)?,
        tenant: row.get(14)?,
        number: row.get(15)?,
    })
}


fn job_row(row: &Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        key: row.get(0)?,
        instance_id: row.get(1)?,
        local_key: row.get(2)?,
        process_id: row.get(3)?,
        element_id: row.get(4)?,
        job_type: row.get(5)?,
        retries: row.get(6)?,
        state: enum_from(row.get(7)?)?,
        not_before: row.get(8)?,
        error_message: row.get(9)?,
        worker: row.get(10)?,
        lease_until: row.get(11)?,
        created_at: row.get(12)?,
        lease: row.get(13)?,
        tenant: row.get(14)?,
    })
}


fn task_row(row: &Row) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        key: row.get(0)?,
        instance_id: row.get(1)?,
        local_key: row.get(2)?,
        process_id: row.get(3)?,
        element_id: row.get(4)?,
        assignee: row.get(5)?,
        candidate_groups: from_json(&row.get::<_, String>(6)?)?,
        candidate_users: from_json(&row.get::<_, String>(7)?)?,
        due: row.get(8)?,
        follow_up: row.get(9)?,
        priority: row.get(10)?,
        form_key: row.get(11)?,
        created_at: row.get(12)?,
        tenant: row.get(13)?,
        completed_at: row.get(14)?,
        completed_by: row.get(15)?,
    })
}


fn form_row(row: &Row) -> rusqlite::Result<FormRow> {
    Ok(FormRow {
        tenant: row.get(0)?,
        form_id: row.get(1)?,
        version: row.get(2)?,
        deployment: row.get(3)?,
        version_tag: row.get(4)?,
        resource: row.get(5)?,
        schema: row.get(6)?,
        deployed_at: row.get(7)?,
    })
}


fn decision_row(row: &Row) -> rusqlite::Result<DecisionRow> {
    Ok(DecisionRow {
        tenant: row.get(0)?,
        decision_id: row.get(1)?,
        version: row.get(2)?,
        deployment: row.get(3)?,
        name: row.get(4)?,
        definitions_id: row.get(5)?,
        resource: row.get(6)?,
        xml: row.get(7)?,
        deployed_at: row.get(8)?,
    })
}


fn incident_row(row: &Row) -> rusqlite::Result<IncidentRow> {
    Ok(IncidentRow {
        key: row.get(0)?,
        instance_id: row.get(1)?,
        local_key: row.get(2)?,
        process_id: row.get(3)?,
        element_id: row.get(4)?,
        kind: row.get(5)?,
        message: row.get(6)?,
        created_at: row.get(7)?,
        resolved_at: row.get(8)?,
        resolved_by: row.get(9)?,
        tenant: row.get(10)?,
    })
}


fn subscription_row(row: &Row) -> rusqlite::Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        instance_id: row.get(0)?,
        local_key: row.get(1)?,
        element_id: row.get(2)?,
        kind: enum_from(row.get(3)?)?,
        name: row.get(4)?,
        correlation_key: row.get(5)?,
        opened_at: row.get(6)?,
        tenant: row.get(7)?,
    })
}


fn message_row(row: &Row) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        seq: row.get(0)?,
        name: row.get(1)?,
        correlation_key: row.get(2)?,
        variables: from_json(&row.get::<_, String>(3)?)?,
        published_at: row.get(4)?,
        expires_at: row.get(5)?,
        message_id: row.get(6)?,
        correlated: from_json(&row.get::<_, String>(7)?)?,
        tenant: row.get(8)?,
    })
}


fn token_row(row: &Row) -> rusqlite::Result<TokenRow> {
    let list = |text: Option<String>| text.map(|t| from_json::<Vec<String>>(&t)).transpose();
    Ok(TokenRow {
        id: row.get(0)?,
        name: row.get(1)?,
        hash: row.get(2)?,
        roles: from_json(&row.get::<_, String>(3)?)?,
        job_types: list(row.get(4)?)?,
        workflows: list(row.get(5)?)?,
        groups: from_json(&row.get::<_, String>(6)?)?,
        hide_variables: row.get(7)?,
        created_at: row.get(8)?,
        expires_at: row.get(9)?,
        revoked_at: row.get(10)?,
        tenants: from_json(&row.get::<_, String>(11)?)?,
    })
}


fn timer_row(row: &Row) -> rusqlite::Result<TimerRow> {
    Ok(TimerRow {
        instance_id: row.get(0)?,
        local_key: row.get(1)?,
        element_id: row.get(2)?,
        due_at: row.get(3)?,
        tenant: row.get(4)?,
    })
}

/// Adds `tenant IN (...)` to a list query's conditions when the filter names tenants.
fn in_tenants(
    conditions: &mut Vec<String>,
    values: &mut Vec<Box<dyn ToSql>>,
    tenants: &Tenants,
) -> Result<()> {
    match tenants.as_deref() {
        // One tenant (a token of one, or `?tenant=`): an equality, which an
        // index that leads with the tenant answers in the list's order.
        Some([tenant]) => {
            conditions.push("tenant = ?".to_string());
            values.push(Box::new(tenant.clone()));
        }
        Some(tenants) => {
            conditions.push("tenant IN (SELECT value FROM json_each(?))".to_string());
            values.push(Box::new(to_json(&tenants)?));
        }
        None => {}
    }
    Ok(())
}

/// Adds `column = value` to a list query's conditions when the filter gives a value.
fn equal(
    conditions: &mut Vec<String>,
    values: &mut Vec<Box<dyn ToSql>>,
    column: &str,
    value: &Option<String>,
) {
    if let Some(value) = value {
        conditions.push(format!("{column} = ?"));
        values.push(Box::new(value.clone()));
    }
}

// The queries of every turn of the commit loop and every poll. CROSS JOIN
// keeps SQLite walking the timers (or a type's jobs) in order through their
// index, stopping at the limit, instead of starting from every running
// instance: their cost does not grow with the number of instances (measured
// with 100 000 waiting timers: 23 ms a call before, 5 to 31 µs after).

/// Timers of running instances due at `?1`, in due order, at most `?2`.
const DUE_TIMERS: &str = "SELECT timers.instance_id, timers.local_key, timers.element_id, timers.due_at, timers.tenant FROM timers
     CROSS JOIN instances ON instances.id = timers.instance_id
     WHERE timers.due_at <= ? AND timers.held = 0 AND instances.status = 'running'
     ORDER BY timers.due_at, timers.instance_id, timers.local_key LIMIT ?";

/// The first timer, in due order, whose instance runs: `timers_due` holds
/// no suspended instance's timers (`held`), so this reads one.
const NEXT_DUE: &str =
    "SELECT timers.due_at FROM timers CROSS JOIN instances ON instances.id = timers.instance_id
     WHERE timers.held = 0 AND instances.status = 'running' ORDER BY timers.due_at LIMIT 1";

/// Jobs of type `?1` and tenant `?4` a worker may take at `?2`, at most
/// `?3`, none younger than `?5`, in the order of `jobs_free`: read twice a
/// tenant ([`SqliteTxn::activatable_jobs`]), for the jobs never leased nor
/// backed off (`free_at` 0: in creation order, so the age bound ends the
/// range too) and for those whose lease ran out or whose backoff passed
/// (`came_back`: `free_at` from 1 to `?2`, in the order they came free).
/// Neither walks the jobs that workers hold, that wait to be tried again,
/// whose instance is suspended (`held`) or that are another tenant's.
fn free_jobs_sql(came_back: bool) -> &'static str {
    fn sql(free: &str) -> String {
        let columns = JOB_COLUMNS.split(", ").map(|c| format!("jobs.{c}")).collect::<Vec<_>>().join(", ");
        format!(
            "SELECT {columns} FROM jobs CROSS JOIN instances ON instances.id = jobs.instance_id
             WHERE jobs.job_type = ?1 AND jobs.tenant = ?4 AND jobs.state = 'activatable' AND jobs.held = 0
               AND {free} AND jobs.created_at <= ?5 AND instances.status = 'running'
             ORDER BY jobs.free_at, jobs.created_at, jobs.key LIMIT ?3"
        )
    }
    static NEVER_TAKEN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sql("jobs.free_at = 0"));
    static CAME_BACK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sql("jobs.free_at >= 1 AND jobs.free_at <= ?2"));
    if came_back { CAME_BACK.as_str() } else { NEVER_TAKEN.as_str() }
}

/// The tenants that have jobs of type `?1` in `jobs_free`, in order, each
/// found by one seek past the one before (the index leads with the type,
/// then the tenant): a worker of every tenant reads each one's free jobs.
const FREE_JOB_TENANTS: &str = "WITH RECURSIVE present(tenant) AS (
       SELECT (SELECT tenant FROM jobs WHERE job_type = ?1 AND state = 'activatable' AND held = 0 ORDER BY tenant LIMIT 1)
       UNION ALL
       SELECT (SELECT jobs.tenant FROM jobs WHERE jobs.job_type = ?1 AND jobs.state = 'activatable' AND jobs.held = 0
                 AND jobs.tenant > present.tenant ORDER BY jobs.tenant LIMIT 1)
       FROM present WHERE present.tenant IS NOT NULL)
     SELECT tenant FROM present WHERE tenant IS NOT NULL";

/// The instances with open incidents, their own or a descendant's (schema
/// 25), found from them rather than by testing every instance in list
/// order (a few with incidents among many cost a walk of all): those whose
/// row counts open incidents of their own (the partial index
/// `instances_with_incidents` holds only them), and the ancestors of the
/// instances of open incidents (a descendant's id is its ancestor's, a `/`
/// and more: `store::descendant_range`), each the id up to its last `/`.
const WITH_INCIDENTS: &str = "WITH RECURSIVE up(id) AS (
       SELECT rtrim(rtrim(instance_id, replace(instance_id, '/', '')), '/') FROM incidents
       WHERE resolved_at IS NULL AND instr(instance_id, '/') > 0
       UNION SELECT rtrim(rtrim(id, replace(id, '/', '')), '/') FROM up WHERE instr(id, '/') > 0)
     SELECT id FROM up UNION ALL SELECT id FROM instances WHERE incidents > 0";

/// A table listed in pages: its name, columns, order and row mapping.
struct Table<T: 'static> {
    name: &'static str,
    columns: &'static str,
    order: (&'static str, &'static str),
    map: fn(&Row) -> rusqlite::Result<T>,
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Table<T> {}

const INSTANCES: Table<InstanceRow> = Table {
    name: "instances",
    columns: INSTANCE_COLUMNS,
    order: ("started_at", "id"),
    map: instance_row,
};
const JOBS: Table<JobRow> = Table {
    name: "jobs",
    columns: JOB_COLUMNS,
    order: ("created_at", "key"),
    map: job_row,
};
const TASKS: Table<TaskRow> = Table {
    name: "tasks",
    columns: TASK_COLUMNS,
    order: ("created_at", "key"),
    map: task_row,
};
/// Tasks of a candidate group (`grp = ?`), in list order through
/// `task_candidates_by_state` (open or completed) or
/// `task_candidates_by_group` (both).
const TASKS_OF_GROUP: Table<TaskRow> = Table {
    name: "task_candidates CROSS JOIN tasks ON tasks.key = task_candidates.task_key",
    columns: TASK_COLUMNS,
    order: ("task_created_at", "task_key"),
    map: task_row,
};
const INCIDENTS: Table<IncidentRow> = Table {
    name: "incidents",
    columns: INCIDENT_COLUMNS,
    order: ("created_at", "key"),
    map: incident_row,
};
// Keys as text, in the order the rows' cursors sort (see `store::Cursor`).
const TIMERS: Table<TimerRow> = Table {
    name: "timers",
    columns: TIMER_COLUMNS,
    order: ("due_at", "(instance_id || '.' || local_key)"),
    map: timer_row,
};
const SUBSCRIPTIONS: Table<SubscriptionRow> = Table {
    name: "subscriptions",
    columns: SUBSCRIPTION_COLUMNS,
    order: ("opened_at", "(instance_id || '.' || local_key)"),
    map: subscription_row,
};
const MESSAGES: Table<MessageRow> = Table {
    name: "messages",
    columns: MESSAGE_COLUMNS,
    order: ("published_at", "printf('%020d', seq)"),
    map: message_row,
};

impl SqliteTxn<'_> {
    fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        map: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut statement = self.db().prepare_cached(sql).map_err(sql_error)?;
        let rows = statement
            .query_map(params, map)
            .map_err(sql_error)?
            .collect::<rusqlite::Result<Vec<T>>>()
            .map_err(read_error);
        count_steps(&statement);
        self.ran(1);
        rows
    }

    fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        map: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut statement = self.db().prepare_cached(sql).map_err(sql_error)?;
        let row = statement
            .query_row(params, map)
            .optional()
            .map_err(read_error);
        count_steps(&statement);
        self.ran(1);
        row
    }

    /// A statement without parameters or rows, prepared once.
    fn run_prepared(&self, sql: &str) -> Result<()> {
        self.db().prepare_cached(sql).and_then(|mut statement| statement.execute([])).map(|_| ()).map_err(sql_error)
    }

    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<()> {
        self.execute_counted(sql, params).map(|_| ())
    }

    /// Runs a statement that writes; returns how many rows it changed.
    fn execute_counted(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize> {
        let mut statement = self.db().prepare_cached(sql).map_err(sql_error)?;
        let changed = statement.execute(params).map_err(sql_error)?;
        self.ran(1);
        Ok(changed)
    }

    /// A task's row, inserted or written again whole.
    fn put_task(&self, t: &TaskRow) -> Result<()> {
        self.execute(
            &format!("INSERT OR REPLACE INTO tasks ({TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            params![
                t.key,
                t.instance_id,
                t.local_key,
                t.process_id,
                t.element_id,
                t.assignee,
                to_json(&t.candidate_groups)?,
                to_json(&t.candidate_users)?,
                t.due,
                t.follow_up,
                t.priority,
                t.form_key,
                t.created_at,
                t.tenant,
                t.completed_at,
                t.completed_by
            ]
        )
    }

    /// A page of a list of jobs, incidents, timers, subscriptions or
    /// messages: `other` adds the filter's conditions but the tenants. One
    /// instance's rows (`of_instance`: few, found by key) are read as they
    /// are filtered. Any other list is read by tenant, since its table's
    /// index in list order leads with the tenant (after `lead`: the
    /// equalities an index of a filtered list has before it, as SQL and an
    /// optional value), so that one tenant's rows are one range of it and
    /// no tenant's page walks another's rows: the page of each tenant named,
    /// or of each that has rows (found by one seek each past the one
    /// before), merged (`store::merge_tenant_pages`).
    fn list<T: Cursor>(
        &self,
        table: &Table<T>,
        tenants: &Tenants,
        of_instance: bool,
        (lead, lead_value): (&str, Option<&str>),
        other: impl Fn(&mut Vec<String>, &mut Vec<Box<dyn ToSql>>) -> Result<()>,
        page: &PageRequest,
    ) -> Result<Page<T>> {
        if of_instance {
            let (mut conditions, mut values) = (Vec::new(), Vec::new());
            in_tenants(&mut conditions, &mut values, tenants)?;
            other(&mut conditions, &mut values)?;
            return self.page(table, conditions, values, page);
        }
        let listed = store::tenants_to_list(tenants, |after| self.tenant_after(table.name, (lead, lead_value), after))?;
        let mut pages = Vec::with_capacity(listed.len());
        for tenant in listed {
            let mut conditions = vec!["tenant = ?".to_string()];
            let mut values: Vec<Box<dyn ToSql>> = vec![Box::new(tenant)];
            other(&mut conditions, &mut values)?;
            pages.push(self.page(table, conditions, values, page)?);
        }
        store::merge_tenant_pages(pages, page, false)
    }

    /// The least tenant above `after` (any, for `None`) with rows in `table`
    /// that pass `lead` (as [`Self::list`] takes it): one seek in an index
    /// that leads with the tenant, after `lead`'s columns.
    fn tenant_after(&self, table: &str, (lead, lead_value): (&str, Option<&str>), after: Option<&str>) -> Result<Option<String>> {
        let (beyond, from) = match after {
            Some(tenant) => (">", tenant),
            None => (">=", ""),
        };
        let sql = format!("SELECT tenant FROM {table} WHERE {lead}tenant {beyond} ? ORDER BY tenant LIMIT 1");
        let mut params: Vec<&dyn ToSql> = lead_value.iter().map(|v| v as &dyn ToSql).collect();
        params.push(&from);
        self.query_one(&sql, &params, |row| row.get(0))
    }

    /// A page of a table ordered by `(time_column, key_column)`, with extra conditions.
    fn page<T: Cursor>(
        &self,
        table: &Table<T>,
        conditions: Vec<String>,
        values: Vec<Box<dyn ToSql>>,
        page: &PageRequest,
    ) -> Result<Page<T>> {
        self.page_in_order(table, conditions, values, page, false)
    }

    /// A page in the table's order, or (`descending`) the other way: the
    /// same index, walked backwards.
    fn page_in_order<T: Cursor>(
        &self,
        table: &Table<T>,
        mut conditions: Vec<String>,
        mut values: Vec<Box<dyn ToSql>>,
        page: &PageRequest,
        descending: bool,
    ) -> Result<Page<T>> {
        let (beyond, direction) = if descending { ("<", " DESC") } else { (">", "") };
        let Table {
            name: table,
            columns,
            order: (time_column, key_column),
            map,
        } = *table;
        if let Some(after) = &page.after {
            let (time, key) = split_cursor(after)?;
            // A row value: SQLite seeks the index to it, so a page deep in the list costs what the first does.
            conditions.push(format!("({time_column}, {key_column}) {beyond} (?, ?)"));
            values.push(Box::new(time));
            values.push(Box::new(key.to_string()));
        }
        let limit = page.bounded_limit();
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = paged_sql(columns, table, &filter, (time_column, key_column), direction, limit + 1);
        let mut statement = self.db().prepare(&sql).map_err(sql_error)?;
        let rows = statement
            .query_map(params_from_iter(values.iter()), map)
            .map_err(sql_error)?;
        let items = rows
            .collect::<rusqlite::Result<Vec<T>>>()
            .map_err(read_error);
        count_steps(&statement);
        let mut items = items?;
        let next = (items.len() > limit).then(|| items[limit - 1].cursor());
        items.truncate(limit);
        Ok(Page { items, next })
    }
}

impl ReadTxn for SqliteTxn<'_> {
    fn workflows(&mut self) -> Result<Vec<WorkflowRow>> {
        self.query(
            &format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows ORDER BY tenant, process_id, version"
            ),
            &[],
            workflow_row,
        )
    }

    fn workflow(
        &mut self,
        tenant: &str,
        process_id: &str,
        version: u32,
    ) -> Result<Option<WorkflowRow>> {
        self.query_one(
            &format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE tenant = ? AND process_id = ? AND version = ?"),
            params![tenant, process_id, version],
            workflow_row,
        )
    }

    fn instance(&mut self, id: &str) -> Result<Option<InstanceRow>> {
        // Reads instances' rows: those kept back first.
        self.write_deferred()?;
        self.query_one(
            &format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = ?"),
            params![id],
            instance_row,
        )
    }

    fn instance_id_by_number(&mut self, number: u64) -> Result<Option<String>> {
        if number == 0 {
            return Ok(None);
        }
        self.query_one("SELECT id FROM instances WHERE number = ? AND number > 0", params![number], |row| row.get(0))
    }

    fn instance_number(&mut self, id: &str) -> Result<Option<(u64, u32)>> {
        self.query_one("SELECT number, version FROM instances WHERE id = ?", params![id], |row| Ok((row.get(0)?, row.get(1)?)))
    }

    fn last_instance_number(&mut self) -> Result<u64> {
        if let Some(last) = self.last_number.get() {
            return Ok(last);
        }
        let last: Option<u64> = self.query_one("SELECT max(number) FROM instances WHERE number > 0", &[], |row| row.get(0))?.flatten();
        let last = last.unwrap_or(0);
        self.last_number.set(Some(last));
        Ok(last)
    }

    fn instance_version(&mut self, id: &str) -> Result<Option<u64>> {
        // Reads instances' rows: those kept back first.
        self.write_deferred()?;
        self.query_one("SELECT update_count FROM instances WHERE id = ?", params![id], |row| row.get(0))
    }

    fn last_message_seq(&mut self) -> Result<u64> {
        let last: Option<u64> = self.query_one("SELECT max(seq) FROM messages", &[], |row| row.get(0))?.flatten();
        Ok(last.unwrap_or(0))
    }

    fn instances(
        &mut self,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<Page<InstanceRow>> {
        // Reads instances' rows: those kept back first.
        self.write_deferred()?;
        let by_tenant = store::instances_tenant_by_tenant(
            self,
            filter,
            page,
            |txn, after| txn.tenant_after("instances", ("", None), after),
            |txn, one, page| txn.instances(one, page),
        );
        if let Some(merged) = by_tenant {
            return merged;
        }
        let mut conditions = Vec::new();
        let mut values: Vec<Box<dyn ToSql>> = Vec::new();
        in_tenants(&mut conditions, &mut values, &filter.tenants)?;
        if let Some(status) = filter.status {
            conditions.push("status = ?".to_string());
            values.push(Box::new(enum_text(&status)?));
        }
        equal(
            &mut conditions,
            &mut values,
            "process_id",
            &filter.process_id,
        );
        if let Some(version) = filter.version {
            conditions.push("version = ?".to_string());
            values.push(Box::new(version));
        }
        equal(
            &mut conditions,
            &mut values,
            "business_key",
            &filter.business_key,
        );
        if let Some(waiting) = &filter.waiting {
            conditions.push(
                "EXISTS (SELECT 1 FROM json_each(instances.waiting) WHERE value = ?)".to_string(),
            );
            values.push(Box::new(waiting.clone()));
        }
        if let Some(has) = filter.has_incidents {
            conditions.push(format!("{}id IN ({WITH_INCIDENTS})", if has { "" } else { "NOT " }));
        }
        for (column, op, value) in [
            ("started_at", ">=", filter.started_after),
            ("started_at", "<", filter.started_before),
            ("ended_at", ">=", filter.ended_after),
            ("ended_at", "<", filter.ended_before),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} {op} ?"));
                values.push(Box::new(value));
            }
        }
        if let Some((name, value)) = &filter.variable {
            // The instance's own variables, through their index (`variables`):
            // the value given is taken apart as the index's entries were.
            let (kind, value) = crate::variables::variable_entry(value);
            conditions.push("id IN (SELECT instance_id FROM variables WHERE name = ? AND kind = ? AND value = ?)".to_string());
            values.push(Box::new(name.clone()));
            values.push(Box::new(kind));
            values.push(Box::new(value));
        }
        equal(&mut conditions, &mut values, "parent_id", &filter.parent_id);
        if let Some((name, value)) = &filter.label {
            conditions.push(
                "id IN (SELECT instance_id FROM labels WHERE name = ? AND value = ?)".to_string(),
            );
            values.push(Box::new(name.clone()));
            values.push(Box::new(value.clone()));
        }
        if let Some(root) = &filter.root_id {
            let (from, to) = descendant_range(root);
            conditions.push("(id = ? OR (id >= ? AND id < ?))".to_string());
            values.push(Box::new(root.clone()));
            values.push(Box::new(from));
            values.push(Box::new(to));
        }
        let lead = match filter.order {
            InstanceOrder::Started => return self.page_in_order(&INSTANCES, conditions, values, page, filter.descending),
            InstanceOrder::Workflow => "process_id",
            InstanceOrder::Status => "status",
        };
        // By the lead column, then start time and id: a tenant's range of
        // the index that has it after the tenant (instances_by_process,
        // instances_by_status), walked either way.
        if let Some(after) = &page.after {
            let (lead_value, time, id) = filter.order.split(after)?;
            let beyond = if filter.descending { "<" } else { ">" };
            conditions.push(format!("({lead}, started_at, id) {beyond} (?, ?, ?)"));
            values.push(Box::new(lead_value.unwrap_or("").to_string()));
            values.push(Box::new(time));
            values.push(Box::new(id.to_string()));
        }
        let limit = page.bounded_limit();
        let filter_sql = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = ordered_instances_sql(lead, filter.descending, &filter_sql, limit + 1);
        let mut statement = self.db().prepare(&sql).map_err(sql_error)?;
        let rows = statement.query_map(params_from_iter(values.iter()), instance_row).map_err(sql_error)?;
        let items = rows.collect::<rusqlite::Result<Vec<InstanceRow>>>().map_err(read_error);
        count_steps(&statement);
        let mut items = items?;
        let next = (items.len() > limit).then(|| filter.order.cursor(&items[limit - 1]));
        items.truncate(limit);
        Ok(Page { items, next })
    }

    fn instance_by_request(&mut self, tenant: &str, request_id: &str) -> Result<Option<String>> {
        self.query_one(
            "SELECT instance_id FROM requests WHERE tenant = ? AND request_id = ?",
            params![tenant, request_id],
            |row| row.get(0),
        )
    }

    fn message_started_active(
        &mut self,
        tenant: &str,
        process_id: &str,
        correlation_key: &str,
    ) -> Result<bool> {
        // Reads instances' rows: those kept back first.
        self.write_deferred()?;
        let found = self.query_one(
            "SELECT 1 FROM instances WHERE tenant = ? AND process_id = ? AND start_key = ? AND status IN ('running', 'suspended') LIMIT 1",
            params![tenant, process_id, correlation_key],
            |row| row.get::<_, i64>(0),
        )?;
        Ok(found.is_some())
    }

    fn history(
        &mut self,
        instance_id: &str,
        filter: &HistoryFilter,
        page: &PageRequest,
    ) -> Result<Page<HistoryRow>> {
        let after = sequence_cursor(page.after.as_deref())?;
        // What this transaction appended reads too.
        self.write_history()?;
        let page = crate::history::read(self.db(), instance_id, after, filter, page.bounded_limit())?;
        self.ran(1);
        Ok(page)
    }

    fn job(&mut self, key: &str) -> Result<Option<JobRow>> {
        self.query_one(
            sql_once!("SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?"),
            params![key],
            job_row,
        )
    }

    fn jobs(&mut self, filter: &JobFilter, page: &PageRequest) -> Result<Page<JobRow>> {
        let other = |conditions: &mut Vec<String>, values: &mut Vec<Box<dyn ToSql>>| {
            equal(conditions, values, "job_type", &filter.job_type);
            if let Some(instance_id) = &filter.instance_id {
                let (from, to) = store::item_keys_of(instance_id);
                conditions.push("key >= ? AND key < ?".to_string());
                values.push(Box::new(from));
                values.push(Box::new(to));
            }
            if let Some(state) = filter.state {
                conditions.push(job_state_sql(state)?);
            }
            Ok(())
        };
        self.list(&JOBS, &filter.tenants, filter.instance_id.is_some(), job_list_lead(filter), other, page)
    }

    fn activatable_jobs(
        &mut self,
        job_type: &str,
        tenants: &Tenants,
        now: i64,
        limit: usize,
    ) -> Result<Vec<JobRow>> {
        // Reads instances' rows: those kept back first.
        self.write_deferred()?;
        let tenants = match tenants {
            Some(tenants) => store::each_tenant(tenants),
            None => self.query(FREE_JOB_TENANTS, params![job_type], |row| row.get(0))?,
        };
        // Oldest first: of each tenant, those never taken and those that
        // came back; once `limit` are found, none younger than the last.
        let mut jobs: Vec<JobRow> = Vec::new();
        for tenant in &tenants {
            let youngest = if jobs.len() < limit { i64::MAX } else { jobs[limit - 1].created_at };
            for came_back in [false, true] {
                jobs.extend(self.query(free_jobs_sql(came_back), params![job_type, now, limit as i64, tenant, youngest], job_row)?);
            }
            jobs.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
            jobs.truncate(limit);
        }
        Ok(jobs)
    }

    fn task(&mut self, key: &str) -> Result<Option<TaskRow>> {
        self.query_one(
            &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE key = ?"),
            params![key],
            task_row,
        )
    }

    fn tasks(&mut self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<TaskRow>> {
        let mut conditions = Vec::new();
        let mut values: Vec<Box<dyn ToSql>> = Vec::new();
        in_tenants(&mut conditions, &mut values, &filter.tenants)?;
        equal(&mut conditions, &mut values, "assignee", &filter.assignee);
        // A task's candidate groups are rows of `task_candidates` (schema
        // 24; completed ones kept since 30), in list order by group and
        // state: a group's tasks are read from there, not found by reading
        // every task's list.
        let mut table = &TASKS;
        if let Some(group) = &filter.candidate_group {
            table = &TASKS_OF_GROUP;
            conditions.push("grp = ?".to_string());
            values.push(Box::new(group.clone()));
            match filter.state {
                TaskState::Open => conditions.push("completed = 0".to_string()),
                TaskState::Completed => conditions.push("completed = 1".to_string()),
                TaskState::All => {}
            }
        }
        equal(
            &mut conditions,
            &mut values,
            "process_id",
            &filter.process_id,
        );
        equal(
            &mut conditions,
            &mut values,
            "instance_id",
            &filter.instance_id,
        );
        equal(&mut conditions, &mut values, "completed_by", &filter.completed_by);
        conditions.push(
            match filter.state {
                TaskState::Open => "completed_at IS NULL",
                TaskState::Completed => "completed_at IS NOT NULL",
                TaskState::All => "1",
            }
            .to_string(),
        );
        self.page(table, conditions, values, page)
    }

    fn decisions(&mut self, tenants: &Tenants, decision_id: Option<&str>) -> Result<Vec<DecisionRow>> {
        let tenants = tenants.as_ref().map(to_json).transpose()?;
        self.query(
            &format!(
                "SELECT {DECISION_COLUMNS} FROM decisions WHERE (?1 IS NULL OR tenant IN (SELECT value FROM json_each(?1))) AND (?2 IS NULL OR decision_id = ?2) ORDER BY tenant, decision_id, version"
            ),
            params![tenants, decision_id],
            decision_row,
        )
    }

    fn forms(&mut self, tenants: &Tenants, form_id: Option<&str>) -> Result<Vec<FormRow>> {
        let tenants = tenants.as_ref().map(to_json).transpose()?;
        self.query(
            &format!(
                "SELECT {FORM_COLUMNS} FROM forms WHERE (?1 IS NULL OR tenant IN (SELECT value FROM json_each(?1))) AND (?2 IS NULL OR form_id = ?2) ORDER BY tenant, form_id, version"
            ),
            params![tenants, form_id],
            form_row,
        )
    }

    fn incident(&mut self, key: &str) -> Result<Option<IncidentRow>> {
        self.query_one(
            &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE key = ?"),
            params![key],
            incident_row,
        )
    }

    fn incidents(
        &mut self,
        filter: &IncidentFilter,
        page: &PageRequest,
    ) -> Result<Page<IncidentRow>> {
        let other = |conditions: &mut Vec<String>, values: &mut Vec<Box<dyn ToSql>>| {
            conditions.extend(incident_state_sql(filter.state).map(str::to_string));
            if let Some(instance_id) = &filter.instance_id {
                if filter.with_descendants {
                    let (from, to) = store::descendant_range(instance_id);
                    conditions.push("(instance_id = ? OR (instance_id >= ? AND instance_id < ?))".to_string());
                    values.push(Box::new(instance_id.clone()));
                    values.push(Box::new(from));
                    values.push(Box::new(to));
                } else {
                    conditions.push("instance_id = ?".to_string());
                    values.push(Box::new(instance_id.clone()));
                }
            }
            equal(conditions, values, "process_id", &filter.process_id);
            Ok(())
        };
        self.list(&INCIDENTS, &filter.tenants, filter.instance_id.is_some(), incident_list_lead(filter), other, page)
    }

    fn timers(&mut self, filter: &TimerFilter, page: &PageRequest) -> Result<Page<TimerRow>> {
        let other = |conditions: &mut Vec<String>, values: &mut Vec<Box<dyn ToSql>>| {
            equal(conditions, values, "instance_id", &filter.instance_id);
            if let Some(due) = filter.due_before {
                conditions.push("due_at <= ?".to_string());
                values.push(Box::new(due));
            }
            Ok(())
        };
        self.list(&TIMERS, &filter.tenants, filter.instance_id.is_some(), ("", None), other, page)
    }

    fn timer(&mut self, instance_id: &str, local_key: u64) -> Result<Option<TimerRow>> {
        self.query_one(
            &format!("SELECT {TIMER_COLUMNS} FROM timers WHERE instance_id = ? AND local_key = ?"),
            params![instance_id, local_key],
            timer_row,
        )
    }

    fn subscriptions(
        &mut self,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<SubscriptionRow>> {
        let other = |conditions: &mut Vec<String>, values: &mut Vec<Box<dyn ToSql>>| {
            equal(conditions, values, "instance_id", &filter.instance_id);
            if let Some(kind) = filter.kind {
                conditions.push("kind = ?".to_string());
                values.push(Box::new(enum_text(&kind)?));
            }
            equal(conditions, values, "name", &filter.name);
            Ok(())
        };
        self.list(&SUBSCRIPTIONS, &filter.tenants, filter.instance_id.is_some(), ("", None), other, page)
    }

    fn messages(
        &mut self,
        filter: &MessageFilter,
        now: i64,
        page: &PageRequest,
    ) -> Result<Page<MessageRow>> {
        let other = |conditions: &mut Vec<String>, values: &mut Vec<Box<dyn ToSql>>| {
            // `+`: not a range of `messages_by_expiry`, which SQLite took
            // (walking every message of every tenant, then sorting them)
            // where one tenant's range of `messages_by_tenant` is in order.
            conditions.push(match filter.state {
                MessageState::Buffered => "+expires_at > ?".to_string(),
                MessageState::Undelivered => "+expires_at <= ? AND correlated = '[]'".to_string(),
            });
            values.push(Box::new(now));
            equal(conditions, values, "name", &filter.name);
            Ok(())
        };
        self.list(&MESSAGES, &filter.tenants, false, ("", None), other, page)
    }

    fn tokens(&mut self) -> Result<Vec<TokenRow>> {
        self.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name, id"),
            &[],
            token_row,
        )
    }

    fn descendant_incidents(&mut self, instance_id: &str) -> Result<u32> {
        let (from, to) = store::descendant_range(instance_id);
        let count = self.query_one(
            "SELECT COUNT(*) FROM incidents WHERE instance_id >= ? AND instance_id < ? AND resolved_at IS NULL",
            params![from, to],
            |row| row.get::<_, u32>(0),
        )?;
        Ok(count.unwrap_or(0))
    }

    fn message_subscriptions(
        &mut self,
        tenant: &str,
        name: &str,
        correlation_key: &str,
    ) -> Result<Vec<SubscriptionRow>> {
        self.query(
            &format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = ? AND kind = 'message' AND name = ? AND correlation_key = ?
                 ORDER BY opened_at, instance_id, local_key"
            ),
            params![tenant, name, correlation_key],
            subscription_row,
        )
    }

    fn signal_subscriptions(&mut self, tenant: &str, name: &str) -> Result<Vec<SubscriptionRow>> {
        self.query(
            &format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = ? AND kind = 'signal' AND name = ? ORDER BY opened_at, instance_id, local_key"
            ),
            params![tenant, name],
            subscription_row,
        )
    }

    fn buffered_messages(
        &mut self,
        tenant: &str,
        name: &str,
        correlation_key: &str,
        now: i64,
    ) -> Result<Vec<MessageRow>> {
        self.query(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant = ? AND name = ? AND correlation_key = ? AND expires_at > ? ORDER BY seq"),
            params![tenant, name, correlation_key, now],
            message_row,
        )
    }

    fn message_by_id(
        &mut self,
        tenant: &str,
        message_id: &str,
        now: i64,
    ) -> Result<Option<MessageRow>> {
        self.query_one(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant = ? AND message_id = ? AND expires_at > ? ORDER BY seq LIMIT 1"),
            params![tenant, message_id, now],
            message_row,
        )
    }

    fn due_timers(&mut self, now: i64, limit: usize) -> Result<Vec<TimerRow>> {
        // Reads instances' rows: those kept back first.
        self.write_deferred()?;
        self.query(
            DUE_TIMERS,
            params![now, limit.min(i64::MAX as usize) as i64],
            timer_row,
        )
    }

    fn scheduled_deletion(&mut self, instance_id: &str) -> Result<Option<i64>> {
        self.query_one("SELECT at FROM deletions WHERE instance_id = ?", params![instance_id], |row| Ok(row.get(0)?))
    }

    fn due_deletions(&mut self, now: i64, limit: usize) -> Result<Vec<String>> {
        self.query(
            "SELECT instance_id FROM deletions WHERE at <= ? ORDER BY at, instance_id LIMIT ?",
            params![now, limit.min(i64::MAX as usize) as i64],
            |row| Ok(row.get(0)?),
        )
    }

    fn expired_messages(&mut self, before: i64, limit: usize) -> Result<Vec<u64>> {
        self.query(
            "SELECT seq FROM messages WHERE expires_at <= ? ORDER BY expires_at, seq LIMIT ?",
            params![before, limit.min(i64::MAX as usize) as i64],
            |row| row.get(0),
        )
    }

    fn next_due(&mut self) -> Result<Option<i64>> {
        // Reads instances' rows: those kept back first.
        self.write_deferred()?;
        let timer: Option<i64> = self.query_one(NEXT_DUE, &[], |row| row.get(0))?;
        let start: Option<i64> = self
            .query_one("SELECT MIN(due_at) FROM start_timers", &[], |row| {
                row.get(0)
            })?
            .flatten();
        Ok(timer.into_iter().chain(start).min())
    }

    fn start_timers(&mut self) -> Result<Vec<StartTimerRow>> {
        let sql = "SELECT process_id, element_id, version, due_at, repeat, tenant FROM start_timers ORDER BY due_at, tenant, process_id, element_id";
        self.query(sql, &[], |row| {
            let repeat: Option<String> = row.get(4)?;
            Ok(StartTimerRow {
                tenant: row.get(5)?,
                process_id: row.get(0)?,
                element_id: row.get(1)?,
                version: row.get(2)?,
                due_at: row.get(3)?,
                repeat: repeat.map(|r| from_json(&r)).transpose()?,
            })
        })
    }

    fn instance_counts(&mut self, tenants: &Tenants) -> Result<Vec<InstanceCount>> {
        // What this transaction wrote counts too.
        self.write_counts()?;
        let tenants = tenants.as_ref().map(to_json).transpose()?;
        self.query(
            "SELECT tenant, process_id, version, status, with_incidents, count FROM instance_counts \
             WHERE (?1 IS NULL OR tenant IN (SELECT value FROM json_each(?1))) AND count > 0 \
             ORDER BY tenant, process_id, version, status, with_incidents",
            params![tenants],
            |row| {
                Ok(InstanceCount {
                    tenant: row.get(0)?,
                    process_id: row.get(1)?,
                    version: row.get(2)?,
                    status: enum_from(row.get(3)?)?,
                    with_incidents: row.get(4)?,
                    count: row.get(5)?,
                })
            },
        )
    }
}

/// Whether the columns an update in place leaves alone (those its indexes
/// hold, and the count row's) are stored as parameters ?2 to ?9 have them:
/// the workflow, version, business key, parent, start, start key, tenant and number.
const IN_PLACE_COLUMNS_HELD: &str = "process_id = ?2 AND version = ?3 AND business_key IS ?4 AND parent_id IS ?5 \
     AND started_at = ?6 AND start_key IS ?7 AND tenant = ?8 AND number = ?9";

impl SqliteTxn<'_> {
    /// Writes an instance whose stored row (version `stored`) runs without
    /// incidents and has the row's columns that an update in place leaves
    /// alone, in place; returns the rows changed (0: it was not so).
    fn update_running_in_place(&self, row: &InPlaceUpdate, stored: Option<u64>) -> Result<usize> {
        static UPDATES: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
            ["", ", status = ?16, incidents = ?17"].map(|status_set| {
                format!(
                    "UPDATE instances SET ended_at = ?10, waiting = ?11, update_count = ?12, history_count = ?13, state = ?14{status_set} \
                     WHERE id = ?1 AND update_count = ?15 AND status = 'running' AND incidents = 0 AND {IN_PLACE_COLUMNS_HELD}"
                )
            })
        });
        let still_running = row.still_running();
        let sql = &UPDATES[usize::from(!still_running)];
        let values: [&dyn ToSql; 17] = [
            &row.id,
            &row.process_id,
            &row.version,
            &row.business_key,
            &row.parent_id,
            &row.started_at,
            &row.start_key,
            &row.tenant,
            &row.number,
            &row.ended_at,
            &row.waiting,
            &row.update_count,
            &row.history_count,
            &row.state,
            &stored,
            &row.status,
            &row.incidents
        ];
        // The statement for one that goes on running takes the first fifteen.
        self.execute_counted(sql, &values[..if still_running { 15 } else { 17 }])
    }

    /// Writes the instances kept in [`Self::deferred`]: each an update in
    /// place of a stored row this transaction wrote (its counts moved when
    /// it was kept).
    fn write_deferred(&mut self) -> Result<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        for (id, Deferred { row, base, in_place }) in std::mem::take(&mut self.deferred) {
            if self.update_running_in_place(&row, Some(base))? != 1 {
                return Err(Error::other(format!("instance {id}: its row was not as this transaction wrote it")));
            }
            if row.still_running() {
                self.running_written.insert(id, in_place);
            } else {
                self.running_written.remove(&id);
            }
        }
        Ok(())
    }

    /// Writes an instance's row now (see [`WriteTxn::put_instance_if`]).
    fn write_instance_now(&mut self, row: &InstanceRow, stored: Option<u64>) -> Result<()> {
        if stored.is_none() {
            // A new instance: a plain insert, which refuses an id that is
            // stored already by itself, where a lookup first cost a statement.
            return match self.execute(sql_once!("INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES {INSTANCE_VALUES}"), instance_params!(row)) {
                Ok(()) => {
                    self.wrote_number(row.number);
                    self.recount(None, Some(count_key(row)?));
                    Ok(())
                }
                Err(error) => match self.instance_version(&row.id)? {
                    Some(held) => Err(Error::instance_changed(&row.id, stored, Some(held))),
                    None => Err(error),
                },
            };
        }
        // Most writes of an instance are of one that ran without incidents
        // when it was last written: neither its count row nor any column an
        // index holds changes, unless it ends (or has an incident) now. One
        // statement checks all that, and the version it replaces, as it
        // writes; only where it matches nothing (the instance had ended, or
        // had an incident, or was written meanwhile) does the lookup below
        // say which. Status and incidents are set only where they change,
        // so an instance that goes on running leaves its status index alone.
        let still_running = row.status == engine::Status::Running && row.incidents == 0;
        let changed = self.update_running_in_place(&InPlaceUpdate::of(row)?, stored)?;
        if changed == 1 {
            if !still_running {
                self.recount(Some(running_count_key(row)), Some(count_key(row)?));
            }
            return Ok(());
        }
        // One writer per file: this holds unless Baton itself is wrong, and
        // costs one lookup by key, which also says whether the columns an
        // update in place leaves alone are as the row has them.
        let held = self.query_one(
            &format!("SELECT update_count, status, incidents, {IN_PLACE_COLUMNS_HELD} FROM instances WHERE id = ?1"),
            params![row.id, row.process_id, row.version, row.business_key, row.parent_id, row.started_at, row.start_key, row.tenant, row.number],
            |held| Ok((held.get::<_, u64>(0)?, held.get::<_, String>(1)?, held.get::<_, u32>(2)?, held.get::<_, bool>(3)?)),
        )?;
        if held.as_ref().map(|h| h.0) != stored {
            return Err(Error::instance_changed(&row.id, stored, held.map(|h| h.0)));
        }
        match held {
            // A new instance.
            None => {
                self.upsert_instance(row)?;
                self.recount(None, Some(count_key(row)?));
                Ok(())
            }
            // An instance written again in place: only the columns that
            // changed are set, so SQLite leaves alone the indexes (start,
            // workflow, business key, parent, number, and status unless it
            // changed): the upsert rewrote them all.
            Some((_, held_status, incidents, in_place)) if in_place => {
                let status = enum_text(&row.status)?;
                let recounted = held_status != status || (incidents > 0) != (row.incidents > 0);
                let sql = if recounted {
                    "UPDATE instances SET status = ?, incidents = ?, ended_at = ?, waiting = ?, update_count = ?, history_count = ?, state = ? WHERE id = ?"
                } else {
                    "UPDATE instances SET incidents = ?2, ended_at = ?3, waiting = ?4, update_count = ?5, history_count = ?6, state = ?7 WHERE id = ?8"
                };
                self.execute(
                    sql,
                    params![
                        status,
                        row.incidents,
                        row.ended_at,
                        to_json(&row.waiting)?,
                        row.update_count,
                        row.history_count,
                        to_compact(&row.state)?,
                        row.id
                    ],
                )?;
                if recounted {
                    // In place: the tenant, workflow and version are as stored.
                    let was = (row.tenant.clone(), row.process_id.clone(), row.version, held_status, incidents > 0);
                    self.recount(Some(was), Some(count_key(row)?));
                }
                Ok(())
            }
            Some(_) => self.put_instance(row),
        }
    }

    /// Notes how an instance's row now stands in SQLite, as this transaction wrote it.
    fn wrote_instance(&mut self, row: &InstanceRow) {
        if row.status == engine::Status::Running && row.incidents == 0 {
            self.running_written.insert(row.id.clone(), in_place(row));
        } else {
            self.running_written.remove(&row.id);
        }
    }
}

impl WriteTxn for SqliteTxn<'_> {
    fn put_instance_if(&mut self, row: &InstanceRow, stored: Option<u64>) -> Result<()> {
        if matches!(self.conn, Conn::Reader { .. }) {
            return Err(Error::other("a read transaction cannot write"));
        }
        // Written again in this transaction: kept, to be written once.
        if let Some(kept) = self.deferred.get_mut(&row.id) {
            if Some(kept.row.update_count) != stored {
                return Err(Error::instance_changed(&row.id, stored, Some(kept.row.update_count)));
            }
            let was = kept.row.count_key();
            kept.row = InPlaceUpdate::of(row)?;
            kept.in_place = in_place(row);
            let now = kept.row.count_key();
            self.recount(Some(was), Some(now));
            return Ok(());
        }
        let now = in_place(row);
        let in_place_of_written = self.running_written.get(&row.id).is_some_and(|written| {
            Some(written.0) == stored && same_columns(&now, written)
        });
        if let (true, Some(base)) = (in_place_of_written, stored) {
            self.recount(Some(running_count_key(row)), Some(count_key(row)?));
            self.deferred.insert(row.id.clone(), Deferred { row: InPlaceUpdate::of(row)?, base, in_place: now });
            return Ok(());
        }
        self.write_instance_now(row, stored)?;
        self.wrote_instance(row);
        Ok(())
    }

    fn put_instance(&mut self, i: &InstanceRow) -> Result<()> {
        if matches!(self.conn, Conn::Reader { .. }) {
            return Err(Error::other("a read transaction cannot write"));
        }
        self.write_deferred()?;
        let was = self.stored_count_key(&i.id)?;
        self.upsert_instance(i)?;
        self.recount(was, Some(count_key(i)?));
        self.wrote_instance(i);
        Ok(())
    }

    fn apply(&mut self, write: Write) -> Result<()> {
        if matches!(self.conn, Conn::Reader { .. }) {
            return Err(Error::other("a read transaction cannot write"));
        }
        match write {
            Write::PutWorkflow(w) => self.execute(
                &format!("INSERT OR REPLACE INTO workflows ({WORKFLOW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                params![w.process_id, w.version, w.deployment, w.name, w.version_tag, w.xml, w.deployed_at, w.tenant],
            ),
            Write::PutInstance(row) => self.put_instance(&row),
            Write::DeleteInstance { id } => {
                // Its history appended in this transaction is deleted with the rest, its row kept back too.
                self.write_history()?;
                self.write_deferred()?;
                self.running_written.remove(&id);
                if let Conn::Writer { store, .. } = &self.conn {
                    store.history_ends.forget(&id);
                }
                let was = self.stored_count_key(&id)?;
                self.recount(was, None);
                self.last_number.set(None);
                // `variables`, this store's own index of them, by their values in its state.
                self.ran(crate::variables::unindex_variables(self.db(), &id)?);
                let (from, to) = store::item_keys_of(&id);
                self.execute("DELETE FROM task_candidates WHERE task_key >= ? AND task_key < ?", params![from, to])?;
                for table in INSTANCE_TABLES {
                    // Jobs have no index by instance here (schema 18): their keys say whose they are.
                    if table == "jobs" {
                        self.execute("DELETE FROM jobs WHERE key >= ? AND key < ?", params![from, to])?;
                    } else {
                        self.execute(&format!("DELETE FROM {table} WHERE instance_id = ?"), params![id])?;
                    }
                }
                self.execute("DELETE FROM instances WHERE id = ?", params![id])
            }
            Write::CancelDeletion { instance_id } => self.execute("DELETE FROM deletions WHERE instance_id = ?", params![instance_id]),
            Write::ScheduleDeletion { instance_id, at } => {
                self.execute("INSERT OR REPLACE INTO deletions (instance_id, at) VALUES (?, ?)", params![instance_id, at])
            }
            Write::PutRequest { tenant, request_id, instance_id } => self.execute(
                "INSERT OR REPLACE INTO requests (tenant, request_id, instance_id) VALUES (?, ?, ?)",
                params![tenant, request_id, instance_id],
            ),
            // A job key is one job of one instance, made once: its instance,
            // element, type, creation and tenant never change. Written again
            // (taken, failed, given back), only the rest is set, so SQLite
            // updates the row and the indexes by state and by when it is
            // free, where a replace deleted and inserted it in all of them.
            Write::PutJob(j) => self.execute(
                sql_once!(
                    "INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET \
                     retries = excluded.retries, state = excluded.state, not_before = excluded.not_before, error_message = excluded.error_message, \
                     worker = excluded.worker, lease_until = excluded.lease_until, lease = excluded.lease"
                ),
                params![
                    j.key,
                    j.instance_id,
                    j.local_key,
                    j.process_id,
                    j.element_id,
                    j.job_type,
                    j.retries,
                    enum_text(&j.state)?,
                    j.not_before,
                    j.error_message,
                    j.worker,
                    j.lease_until,
                    j.created_at,
                    j.lease,
                    j.tenant
                ],
            ),
            // Only the lease: the row changes, and of its indexes only `jobs_free`.
            Write::LeaseJob { key, worker, lease_until, lease } => {
                self.execute("UPDATE jobs SET worker = ?, lease_until = ?, lease = ? WHERE key = ?", params![worker, lease_until, lease, key])
            }
            Write::DeleteJob { key } => self.execute("DELETE FROM jobs WHERE key = ?", params![key]),
            Write::HoldWaits { instance_id, held } => {
                let (from, to) = store::item_keys_of(&instance_id);
                self.execute("UPDATE jobs SET held = ? WHERE key >= ? AND key < ?", params![held, from, to])?;
                self.execute("UPDATE timers SET held = ? WHERE instance_id = ?", params![held, instance_id])
            }
            // Written by a step, which a suspended instance does not take:
            // a timer written is not held (its row's `held` starts at 0).
            Write::PutTimer(t) => self.execute(
                &format!("INSERT OR REPLACE INTO timers ({TIMER_COLUMNS}) VALUES (?, ?, ?, ?, ?)"),
                params![t.instance_id, t.local_key, t.element_id, t.due_at, t.tenant],
            ),
            Write::DeleteTimer { instance_id, local_key } => {
                self.execute("DELETE FROM timers WHERE instance_id = ? AND local_key = ?", params![instance_id, local_key])
            }
            Write::PutSubscription(s) => self.execute(
                &format!("INSERT OR REPLACE INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                params![s.instance_id, s.local_key, s.element_id, enum_text(&s.kind)?, s.name, s.correlation_key, s.opened_at, s.tenant],
            ),
            Write::DeleteSubscription { instance_id, local_key } => {
                self.execute("DELETE FROM subscriptions WHERE instance_id = ? AND local_key = ?", params![instance_id, local_key])
            }
            Write::PutTask(t) => {
                self.execute("DELETE FROM task_candidates WHERE task_key = ?", params![t.key])?;
                for group in &t.candidate_groups {
                    self.execute(
                        "INSERT OR IGNORE INTO task_candidates (task_key, grp, task_created_at, completed) VALUES (?, ?, ?, ?)",
                        params![t.key, group, t.created_at, t.completed_at.is_some()],
                    )?;
                }
                self.put_task(&t)
            }
            Write::DeleteTask { key } => {
                self.execute("DELETE FROM task_candidates WHERE task_key = ?", params![key])?;
                self.execute("DELETE FROM tasks WHERE key = ?", params![key])
            }
            Write::CompleteTask { key, at, by } => {
                self.execute("UPDATE task_candidates SET completed = 1 WHERE task_key = ?", params![key])?;
                self.execute("UPDATE tasks SET completed_at = ?, completed_by = ? WHERE key = ?", params![at, by, key])
            }
            Write::PutDecision(d) => self.execute(
                &format!("INSERT OR REPLACE INTO decisions ({DECISION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                params![d.tenant, d.decision_id, d.version, d.deployment, d.name, d.definitions_id, d.resource, d.xml, d.deployed_at],
            ),
            Write::PutForm(f) => self.execute(
                &format!("INSERT OR REPLACE INTO forms ({FORM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                params![f.tenant, f.form_id, f.version, f.deployment, f.version_tag, f.resource, f.schema, f.deployed_at],
            ),
            Write::PutIncident(i) => self.execute(
                &format!("INSERT OR REPLACE INTO incidents ({INCIDENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                params![i.key, i.instance_id, i.local_key, i.process_id, i.element_id, i.kind, i.message, i.created_at, i.resolved_at, i.resolved_by, i.tenant],
            ),
            Write::ResolveIncident { key, at, by } => {
                self.execute("UPDATE incidents SET resolved_at = ?, resolved_by = ? WHERE key = ?", params![at, by, key])
            }
            Write::AppendHistory(row) => {
                self.history.push(row);
                Ok(())
            }
            Write::PutMessage(m) => self.execute(
                &format!("INSERT OR REPLACE INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                params![
                    m.seq,
                    m.name,
                    m.correlation_key,
                    to_json(&m.variables)?,
                    m.published_at,
                    m.expires_at,
                    m.message_id,
                    to_json(&m.correlated)?,
                    m.tenant
                ],
            ),
            Write::DeleteMessage { seq } => self.execute("DELETE FROM messages WHERE seq = ?", params![seq]),
            Write::PutStartTimer(t) => self.execute(
                "INSERT OR REPLACE INTO start_timers (tenant, process_id, element_id, version, due_at, repeat) VALUES (?, ?, ?, ?, ?, ?)",
                params![t.tenant, t.process_id, t.element_id, t.version, t.due_at, t.repeat.as_ref().map(to_json).transpose()?],
            ),
            Write::DeleteStartTimers { tenant, process_id } => {
                self.execute("DELETE FROM start_timers WHERE tenant = ? AND process_id = ?", params![tenant, process_id])
            }
            Write::PutToken(t) => self.execute(
                &format!("INSERT OR REPLACE INTO tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                params![
                    t.id,
                    t.name,
                    t.hash,
                    to_json(&t.roles)?,
                    t.job_types.as_ref().map(to_json).transpose()?,
                    t.workflows.as_ref().map(to_json).transpose()?,
                    to_json(&t.groups)?,
                    t.hide_variables,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at,
                    to_json(&t.tenants)?
                ],
            ),
            Write::IndexVariables { instance_id, changes } => {
                // The whole variables are compared with the stored row's.
                if matches!(changes, store::VariableChanges::Whole(_)) {
                    self.write_deferred()?;
                }
                self.ran(crate::variables::index_variables(self.db(), &instance_id, changes)?);
                Ok(())
            }
            Write::PutLabels { instance_id, labels } => {
                self.execute("DELETE FROM labels WHERE instance_id = ?", params![instance_id])?;
                for (name, value) in &labels {
                    self.execute("INSERT INTO labels (name, value, instance_id) VALUES (?, ?, ?)", params![name, value, instance_id])?;
                }
                Ok(())
            }
        }
    }

    /// SQLite's count of rows changed on the connection (its triggers' too):
    /// only its movement matters.
    fn changes(&self) -> Option<u64> {
        match &self.conn {
            Conn::Writer { guard, .. } => Some(guard.total_changes()),
            Conn::Reader { .. } => None,
        }
    }

    // A command that needs a savepoint runs in one: prepared once, not parsed for every command.
    fn savepoint(&mut self) -> Result<()> {
        // What is pending stays if the savepoint is rolled back: written before it.
        self.write_history()?;
        self.write_deferred()?;
        self.run_prepared("SAVEPOINT command")?;
        self.counts_at_savepoint = Some(self.counts.clone());
        self.running_at_savepoint = Some(self.running_written.clone());
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.run_prepared("ROLLBACK TO command")?;
        self.run_prepared("RELEASE command")?;
        // Counts written since are undone with the rest; those not yet written go back too.
        if let Some(counts) = self.counts_at_savepoint.take() {
            self.counts = counts;
        }
        self.history.discard();
        // Rows kept back since were kept in it (it began by writing them).
        self.deferred.clear();
        if let Some(running) = self.running_at_savepoint.take() {
            self.running_written = running;
        }
        self.last_number.set(None);
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.run_prepared("RELEASE command")?;
        self.counts_at_savepoint = None;
        self.running_at_savepoint = None;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.write_deferred()?;
        self.write_history()?;
        self.write_counts()?;
        self.db().execute_batch("COMMIT").map_err(sql_error)?;
        self.finished = true;
        if let Conn::Writer { guard, store } = &self.conn {
            store.committed(guard, self.statements.get());
            self.history.committed(&store.history_ends);
        }
        Ok(())
    }
}

#[cfg(test)]
mod plans {
    /// Issue 16: the commit loop's and the polls' queries start from the timers
    /// or the jobs, through their index, never from all instances. Without
    /// statistics SQLite's plan does not depend on the data, so an empty file
    /// shows the plan of a full one.
    #[test]
    fn hot_queries_walk_their_own_index_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("plans.db")).unwrap();
        let connection = store.writer.lock().unwrap();
        for (sql, table, index) in [
            (super::DUE_TIMERS.to_string(), "timers", "timers_due"),
            (super::NEXT_DUE.to_string(), "timers", "timers_due"),
            // The console's sortable instance lists, deep in the list (a cursor), either way: a tenant's.
            (
                super::ordered_instances_sql("process_id", false, "WHERE tenant = ? AND (process_id, started_at, id) > (?, ?, ?)", 51),
                "instances",
                "instances_by_process",
            ),
            (
                super::ordered_instances_sql("status", true, "WHERE tenant = ? AND (status, started_at, id) < (?, ?, ?)", 51),
                "instances",
                "instances_by_status",
            ),
            // A page deep in the instance list seeks to its cursor (issue 12: paging through 100 000 instances).
            (
                super::paged_sql("id", "instances", "WHERE (started_at, id) > (?, ?)", ("started_at", "id"), "", 51),
                "instances",
                "instances_by_start",
            ),
        ] {
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let count = statement.parameter_count();
            let values: Vec<i64> = vec![0; count];
            let steps: Vec<String> = statement
                .query_map(rusqlite::params_from_iter(values), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(
                steps[0].contains(table) && steps[0].contains(index),
                "{sql}\nstarts with: {steps:?}"
            );
            if sql.contains(") > (?") || sql.contains(") < (?") {
                assert!(steps[0].starts_with("SEARCH"), "a cursor seeks, it does not scan from the start: {steps:?}");
            }
            assert!(
                !steps.iter().any(|s| s.starts_with("SCAN instances")),
                "{steps:?}"
            );
            assert!(
                !steps.iter().any(|s| s.contains("TEMP B-TREE")),
                "sorted in the index, not afterwards: {steps:?}"
            );
        }
    }

    /// A worker's call for jobs reads a range of `jobs_free` in its order
    /// (twice: never taken, and came back), and nothing else of the jobs.
    #[test]
    fn activation_reads_the_free_jobs_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("plans.db")).unwrap();
        let connection = store.writer.lock().unwrap();
        for (came_back, search) in [
            (false, "SEARCH jobs USING INDEX jobs_free (job_type=? AND tenant=? AND free_at=? AND created_at<?)"),
            (true, "SEARCH jobs USING INDEX jobs_free (job_type=? AND tenant=? AND free_at>? AND free_at<?)"),
        ] {
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {}", super::free_jobs_sql(came_back))).unwrap();
            let values = vec![0_i64; statement.parameter_count()];
            let steps: Vec<String> =
                statement.query_map(rusqlite::params_from_iter(values), |row| row.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
            assert_eq!(steps[0], search, "{steps:?}");
            assert!(!steps.iter().any(|s| s.starts_with("SCAN instances") || s.contains("TEMP B-TREE")), "{steps:?}");
        }
    }

    /// A worker of every tenant finds the tenants with free jobs of its
    /// type by a seek each in `jobs_free`, not by walking the jobs.
    #[test]
    fn the_tenants_with_free_jobs_are_found_by_seeks() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("plans.db")).unwrap();
        let connection = store.writer.lock().unwrap();
        let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {}", super::FREE_JOB_TENANTS)).unwrap();
        let steps: Vec<String> =
            statement.query_map(["t"], |row| row.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
        let searches: Vec<&String> = steps.iter().filter(|s| s.contains("jobs")).collect();
        assert_eq!(
            searches,
            ["SEARCH jobs USING COVERING INDEX jobs_free (job_type=?)", "SEARCH jobs USING COVERING INDEX jobs_free (job_type=? AND tenant>?)"],
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.contains("TEMP B-TREE")), "{steps:?}");
    }

    /// An instance's jobs are found by their keys' prefix (schema 18 keeps
    /// no index by instance), not by walking every job in creation order.
    #[test]
    fn an_instances_jobs_are_found_by_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("plans.db")).unwrap();
        let connection = store.writer.lock().unwrap();
        let sql = super::paged_sql("key", "jobs", "WHERE key >= ? AND key < ?", ("created_at", "key"), "", 51);
        let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = statement
            .query_map(rusqlite::params!["i1.", "i1/"], |row| row.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(steps[0].starts_with("SEARCH jobs USING PRIMARY KEY (key>? AND key<?)"), "{steps:?}");
    }

    /// A page deep in the instance list does the work of the first page:
    /// the cursor seeks the index instead of stepping over what came before.
    #[test]
    fn a_deep_page_costs_what_the_first_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("deep.db")).unwrap();
        let connection = store.writer.lock().unwrap();
        connection
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999)
                 INSERT INTO instances (id, process_id, version, status, started_at, incidents, waiting, update_count, history_count, state, tenant)
                 SELECT printf('i%06d', i), 'p', 1, 'running', i / 4, 0, '[]', 1, 0, '{}', 'default' FROM n;",
            )
            .unwrap();
        let steps = |after: Option<(i64, &str)>| {
            let filter = if after.is_some() { "WHERE (started_at, id) > (?, ?)" } else { "" };
            let sql = super::paged_sql(super::INSTANCE_COLUMNS, "instances", filter, ("started_at", "id"), "", 51);
            let mut statement = connection.prepare(&sql).unwrap();
            let rows: Vec<String> = match after {
                Some((time, id)) => statement.query_map(rusqlite::params![time, id], |r| r.get(0)).unwrap().map(Result::unwrap).collect(),
                None => statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect(),
            };
            assert_eq!(rows.len(), 51);
            statement.get_status(rusqlite::StatementStatus::VmStep)
        };
        let first = steps(None);
        let deep = steps(Some((4_750, "i019000")));
        assert!(deep <= first * 3, "the page after 19 000 rows took {deep} steps, the first {first}");
    }
}
