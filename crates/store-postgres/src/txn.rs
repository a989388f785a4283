//! Read and write transactions over one connection.

use std::sync::MutexGuard;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures_util::future::{maybe_done, poll_fn, MaybeDone};
use tokio_postgres::types::{FromSql, Json, ToSql};
use tokio_postgres::{Client, Row, Statement};
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::rows::*;
use store_sql::*;
use store::{Error, Lock, News, ReadTxn, Result, WriteTxn};

use crate::{Connection, PostgresStore};

type Value = Box<dyn ToSql + Sync + Send>;

/// Owned statement parameters, for a write that is sent later.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        vec![$(Box::new($value) as Value),*]
    };
}

/// A write not sent yet: writes need no answer, so they wait and go to the
/// server together, pipelined, with whatever must be sent next (a read,
/// the end of a command, the commit): one round trip for all of them.
enum Pending {
    /// A statement, and what it is when it must change exactly one row.
    Execute(Statement, Vec<Value>, Option<Checked>),
    Batch(&'static str),
}

/// A write that must change exactly one row, or someone else wrote first.
enum Checked {
    /// An instance, and the version it was read at.
    Instance { id: String, stored: Option<u64> },
    /// A kept message, at its sequence number.
    Message { seq: u64 },
}

impl Checked {
    fn conflict(&self) -> Error {
        match self {
            Checked::Instance { id, stored } => Error::conflict(format!(
                "instance {id} changed since it was read ({} then)",
                stored.map_or_else(|| "not there".to_string(), |v| format!("version {v}"))
            )),
            Checked::Message { seq } => Error::conflict(format!("another node kept a message with sequence number {seq}")),
        }
    }
}

/// What one request of a pipeline answered.
enum Answer {
    Written(u64),
    Rows(Vec<Row>),
}

type Request<'c> = Pin<Box<dyn Future<Output = Result<Answer, tokio_postgres::Error>> + Send + 'c>>;

/// A read to send after what is pending: its statement and values.
type Query<'c> = (&'c Statement, &'c [&'c (dyn ToSql + Sync)]);

/// Sends `pending`, then `query` if any, in this order on one connection
/// without waiting in between, and waits for every answer. Each request goes
/// out on its future's first poll, so the futures are polled in order.
async fn pipeline<'c>(client: &'c Client, pending: &'c [Pending], refs: &'c [Vec<&'c (dyn ToSql + Sync)>], query: Option<Query<'c>>) -> Result<Sent, tokio_postgres::Error> {
    let mut requests: Vec<MaybeDone<Request<'c>>> = pending
        .iter()
        .zip(refs)
        .map(|(pending, values)| {
            let request: Request<'c> = match pending {
                Pending::Execute(statement, _, _) => Box::pin(async move { client.execute(statement, values).await.map(Answer::Written) }),
                Pending::Batch(sql) => Box::pin(async move { client.batch_execute(sql).await.map(|()| Answer::Written(0)) }),
            };
            maybe_done(request)
        })
        .collect();
    if let Some((statement, values)) = query {
        let request: Request<'c> = Box::pin(async move { client.query(statement, values).await.map(Answer::Rows) });
        requests.push(maybe_done(request));
    }
    poll_fn(|cx| {
        let mut done = true;
        for request in requests.iter_mut() {
            done &= Pin::new(request).poll(cx).is_ready();
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    let mut written = 0;
    let mut rows = Vec::new();
    let mut failed = None;
    let mut conflict = None;
    for (index, request) in requests.iter_mut().enumerate() {
        match Pin::new(request).take_output() {
            Some(Ok(Answer::Written(n))) => {
                written += n;
                if let Some(Pending::Execute(_, _, Some(checked))) = pending.get(index) {
                    if n != 1 && conflict.is_none() {
                        conflict = Some(checked.conflict());
                    }
                }
            }
            Some(Ok(Answer::Rows(r))) => rows = r,
            // The first failure is the cause; those after it only say the transaction is aborted.
            Some(Err(error)) => {
                failed.get_or_insert(error);
            }
            None => {}
        }
    }
    match failed {
        Some(error) => Err(error),
        None => Ok(Sent { written, rows, conflict }),
    }
}

/// What a pipeline's answers said.
struct Sent {
    written: u64,
    rows: Vec<Row>,
    /// A checked write that changed no row: someone else wrote first.
    conflict: Option<Error>,
}

enum Conn<'a> {
    Writer(MutexGuard<'a, Option<Connection>>),
    /// A pooled connection, given back to `PostgresTxn::store` when the transaction ends.
    Reader(Option<Box<Connection>>),
}

pub struct PostgresTxn<'a> {
    store: &'a PostgresStore,
    conn: Conn<'a>,
    finished: bool,
    /// Writes (and savepoint statements) not sent yet, in order.
    pending: Vec<Pending>,
    /// Where in `pending` the open savepoint's `SAVEPOINT` waits, while it has
    /// not been sent: rolling back to it then only drops what follows.
    savepoint_at: Option<usize>,
    /// What failed when pending writes were sent. A write learns of its
    /// failure only later, maybe in another command's round trip, so after
    /// one the transaction can no longer commit: the whole batch fails, as on
    /// any store error, and nothing of it is kept.
    failed: Option<Error>,
    /// What the other nodes hear of when this transaction commits.
    news: News,
}

impl<'a> PostgresTxn<'a> {
    /// A write transaction; its `BEGIN` waits to go with the first read or the commit.
    pub(crate) fn writer(store: &'a PostgresStore, guard: MutexGuard<'a, Option<Connection>>) -> PostgresTxn<'a> {
        let pending = vec![Pending::Batch("BEGIN")];
        PostgresTxn { store, conn: Conn::Writer(guard), finished: false, pending, savepoint_at: None, failed: None, news: News::default() }
    }

    pub(crate) fn reader(store: &'a PostgresStore, connection: Connection) -> PostgresTxn<'a> {
        PostgresTxn { store, conn: Conn::Reader(Some(Box::new(connection))), finished: false, pending: Vec::new(), savepoint_at: None, failed: None, news: News::default() }
    }

    fn db(&mut self) -> Result<&mut Connection> {
        match &mut self.conn {
            Conn::Writer(guard) => guard.as_mut(),
            Conn::Reader(connection) => connection.as_deref_mut(),
        }
        .ok_or_else(|| Error::unavailable("the transaction's connection is gone"))
    }

    fn writable(&self) -> Result<()> {
        match self.conn {
            Conn::Writer(_) => Ok(()),
            Conn::Reader(_) => Err(Error::other("a read transaction cannot write")),
        }
    }

    /// Sends what is pending, and `query` after it, in one round trip.
    fn send(&mut self, query: Option<(&str, &[&(dyn ToSql + Sync)])>) -> Result<Vec<Row>> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.pending.is_empty() && query.is_none() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        self.savepoint_at = None;
        let counters = &self.store.counters;
        let db = self.db()?;
        let statement = query.map(|(sql, _)| db.statement(sql)).transpose()?;
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = pending
            .iter()
            .map(|p| match p {
                Pending::Execute(_, values, _) => values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect(),
                Pending::Batch(_) => Vec::new(),
            })
            .collect();
        let query = statement.as_ref().zip(query.map(|(_, values)| values));
        let sent = db.wait(pipeline(db.client(), &pending, &refs, query)).and_then(|sent| match sent.conflict {
            Some(conflict) => Err(conflict),
            None => Ok(sent),
        });
        counters.round_trip(pending.len() + usize::from(query.is_some()), sent.as_ref().map_or(0, |sent| sent.written));
        match sent {
            Ok(sent) => Ok(sent.rows),
            Err(error) => {
                if !pending.is_empty() {
                    self.failed = Some(error.clone());
                }
                Err(error)
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.send(None).map(drop)
    }

    fn rows(&mut self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        if self.store.is_explaining() {
            self.flush()?;
            let db = self.db()?;
            let plan = db.wait(db.client().query(&format!("EXPLAIN {sql}"), values))?;
            let lines = plan.iter().filter_map(|row| row.try_get::<_, String>(0).ok()).collect();
            self.store.keep_plan(crate::Plan { sql: sql.to_string(), lines });
        }
        self.send(Some((sql, values)))
    }

    fn query<T>(&mut self, sql: &str, values: &[&(dyn ToSql + Sync)], map: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
        self.rows(sql, values)?.iter().map(map).collect()
    }

    fn query_one<T>(&mut self, sql: &str, values: &[&(dyn ToSql + Sync)], map: fn(&Row) -> Result<T>) -> Result<Option<T>> {
        self.rows(sql, values)?.first().map(map).transpose()
    }

    /// A write: prepared now (once per connection), sent with what goes next.
    fn execute(&mut self, sql: &str, values: Vec<Value>) -> Result<()> {
        self.writable()?;
        let statement = self.db()?.statement(sql)?;
        self.pending.push(Pending::Execute(statement, values, None));
        Ok(())
    }
}

impl Drop for PostgresTxn<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // A write transaction dropped without commit rolls back (what it
            // had not sent yet goes nowhere); a read one just ends. A connection
            // that cannot even roll back is dropped, and replaced on next use.
            self.pending.clear();
            let rolled_back = self.db().and_then(|db| db.batch("ROLLBACK"));
            if rolled_back.is_err() {
                match &mut self.conn {
                    Conn::Writer(guard) => **guard = None,
                    Conn::Reader(connection) => *connection = None,
                }
            }
        }
        if let Conn::Reader(connection) = &mut self.conn {
            if let Some(connection) = connection.take() {
                self.store.return_reader(*connection);
            }
        }
    }
}

/// Decoding failures mean the database holds what this version cannot read.
fn get<'r, T: FromSql<'r>>(row: &'r Row, index: usize) -> Result<T> {
    row.try_get(index).map_err(|e| Error::corrupt(format!("column {index}: {e}")))
}

/// An integer column as the unsigned type the row has.
fn int<T: TryFrom<i64>>(row: &Row, index: usize) -> Result<T> {
    let value: i64 = get(row, index)?;
    T::try_from(value).map_err(|_| Error::corrupt(format!("column {index}: {value} is out of range")))
}

fn opt_int<T: TryFrom<i64>>(row: &Row, index: usize) -> Result<Option<T>> {
    let value: Option<i64> = get(row, index)?;
    value
        .map(|v| T::try_from(v).map_err(|_| Error::corrupt(format!("column {index}: {v} is out of range"))))
        .transpose()
}

fn json<T: DeserializeOwned>(row: &Row, index: usize) -> Result<T> {
    Ok(get::<Json<T>>(row, index)?.0)
}

fn opt_json<T: DeserializeOwned>(row: &Row, index: usize) -> Result<Option<T>> {
    Ok(get::<Option<Json<T>>>(row, index)?.map(|j| j.0))
}


fn enum_from<T: DeserializeOwned>(row: &Row, index: usize) -> Result<T> {
    let text: String = get(row, index)?;
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| Error::corrupt(format!("column {index}: {e}")))
}

/// An instance row's values, in [`INSTANCE_COLUMNS`] order and then its variables.
fn instance_values(i: &InstanceRow) -> Result<Vec<Value>> {
    Ok(values![
        i.id.clone(),
        i.process_id.clone(),
        i64::from(i.version),
        enum_text(&i.status)?,
        i.business_key.clone(),
        i.parent_id.clone(),
        i.started_at,
        i.ended_at,
        i64::from(i.incidents),
        raw(&i.waiting)?,
        i.start_key.clone(),
        big(i.update_count)?,
        big(i.history_count)?,
        raw(&i.state)?,
        i.tenant.clone(),
        big(i.number)?,
        raw(&i.state.variables)?,
    ])
}

/// `$1, $2, ... $n`.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// What an update of an instance sets: every column but its id and number, from
/// [`instance_values`]' places once the number (the 16th) is taken out.
const INSTANCE_UPDATES: &str = "process_id = $2, version = $3, status = $4, business_key = $5, parent_id = $6, started_at = $7, \
     ended_at = $8, incidents = $9, waiting = $10, start_key = $11, update_count = $12, history_count = $13, state = $14, \
     tenant = $15, variables = $16";

/// A value as JSON text, encoded now (a write is sent later, without the row it came from).
fn raw<T: Serialize + ?Sized>(value: &T) -> Result<Json<Box<serde_json::value::RawValue>>> {
    serde_json::value::to_raw_value(value).map(Json).map_err(|e| Error::other(format!("cannot encode a row: {e}")))
}

/// Unsigned numbers go into `BIGINT`s.
fn big(value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::other(format!("{value} is beyond what the store keeps")))
}


fn workflow_row(row: &Row) -> Result<WorkflowRow> {
    Ok(WorkflowRow {
        process_id: get(row, 0)?,
        version: int(row, 1)?,
        deployment: int(row, 2)?,
        name: get(row, 3)?,
        version_tag: get(row, 4)?,
        xml: get(row, 5)?,
        deployed_at: get(row, 6)?,
        tenant: get(row, 7)?,
    })
}


fn instance_row(row: &Row) -> Result<InstanceRow> {
    Ok(InstanceRow {
        id: get(row, 0)?,
        process_id: get(row, 1)?,
        version: int(row, 2)?,
        status: enum_from(row, 3)?,
        business_key: get(row, 4)?,
        parent_id: get(row, 5)?,
        started_at: get(row, 6)?,
        ended_at: get(row, 7)?,
        incidents: int(row, 8)?,
        waiting: json(row, 9)?,
        start_key: get(row, 10)?,
        update_count: int(row, 11)?,
        history_count: int(row, 12)?,
        state: json(row, 13)?,
        tenant: get(row, 14)?,
        number: int(row, 15)?,
    })
}


fn job_row(row: &Row) -> Result<JobRow> {
    Ok(JobRow {
        key: get(row, 0)?,
        instance_id: get(row, 1)?,
        local_key: int(row, 2)?,
        process_id: get(row, 3)?,
        element_id: get(row, 4)?,
        job_type: get(row, 5)?,
        retries: int(row, 6)?,
        state: enum_from(row, 7)?,
        not_before: get(row, 8)?,
        error_message: get(row, 9)?,
        worker: get(row, 10)?,
        lease_until: get(row, 11)?,
        created_at: get(row, 12)?,
        lease: get(row, 13)?,
        tenant: get(row, 14)?,
    })
}


fn task_row(row: &Row) -> Result<TaskRow> {
    Ok(TaskRow {
        key: get(row, 0)?,
        instance_id: get(row, 1)?,
        local_key: int(row, 2)?,
        process_id: get(row, 3)?,
        element_id: get(row, 4)?,
        assignee: get(row, 5)?,
        candidate_groups: json(row, 6)?,
        candidate_users: json(row, 7)?,
        due: get(row, 8)?,
        follow_up: get(row, 9)?,
        priority: get(row, 10)?,
        form_key: get(row, 11)?,
        created_at: get(row, 12)?,
        tenant: get(row, 13)?,
        completed_at: get(row, 14)?,
        completed_by: get(row, 15)?,
    })
}


fn form_row(row: &Row) -> Result<FormRow> {
    Ok(FormRow {
        tenant: get(row, 0)?,
        form_id: get(row, 1)?,
        version: int(row, 2)?,
        deployment: int(row, 3)?,
        version_tag: get(row, 4)?,
        resource: get(row, 5)?,
        schema: get(row, 6)?,
        deployed_at: get(row, 7)?,
    })
}


fn decision_row(row: &Row) -> Result<DecisionRow> {
    Ok(DecisionRow {
        tenant: get(row, 0)?,
        decision_id: get(row, 1)?,
        version: int(row, 2)?,
        deployment: int(row, 3)?,
        name: get(row, 4)?,
        definitions_id: get(row, 5)?,
        resource: get(row, 6)?,
        xml: get(row, 7)?,
        deployed_at: get(row, 8)?,
    })
}


fn incident_row(row: &Row) -> Result<IncidentRow> {
    Ok(IncidentRow {
        key: get(row, 0)?,
        instance_id: get(row, 1)?,
        local_key: int(row, 2)?,
        process_id: get(row, 3)?,
        element_id: get(row, 4)?,
        kind: get(row, 5)?,
        message: get(row, 6)?,
        created_at: get(row, 7)?,
        resolved_at: get(row, 8)?,
        resolved_by: get(row, 9)?,
        tenant: get(row, 10)?,
    })
}


fn subscription_row(row: &Row) -> Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        instance_id: get(row, 0)?,
        local_key: int(row, 1)?,
        element_id: get(row, 2)?,
        kind: enum_from(row, 3)?,
        name: get(row, 4)?,
        correlation_key: get(row, 5)?,
        opened_at: get(row, 6)?,
        tenant: get(row, 7)?,
    })
}


fn message_row(row: &Row) -> Result<MessageRow> {
    Ok(MessageRow {
        seq: int(row, 0)?,
        name: get(row, 1)?,
        correlation_key: get(row, 2)?,
        variables: json(row, 3)?,
        published_at: get(row, 4)?,
        expires_at: get(row, 5)?,
        message_id: get(row, 6)?,
        correlated: json(row, 7)?,
        tenant: get(row, 8)?,
    })
}


fn token_row(row: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: get(row, 0)?,
        name: get(row, 1)?,
        hash: get(row, 2)?,
        roles: json(row, 3)?,
        job_types: opt_json(row, 4)?,
        workflows: opt_json(row, 5)?,
        groups: json(row, 6)?,
        hide_variables: get(row, 7)?,
        created_at: get(row, 8)?,
        expires_at: get(row, 9)?,
        revoked_at: get(row, 10)?,
        tenants: json(row, 11)?,
    })
}


const START_TIMER_COLUMNS: &str = "process_id, element_id, version, due_at, repeat, tenant";

fn start_timer_row(row: &Row) -> Result<StartTimerRow> {
    Ok(StartTimerRow {
        process_id: get(row, 0)?,
        element_id: get(row, 1)?,
        version: int(row, 2)?,
        due_at: get(row, 3)?,
        repeat: opt_json(row, 4)?,
        tenant: get(row, 5)?,
    })
}

fn timer_row(row: &Row) -> Result<TimerRow> {
    Ok(TimerRow {
        instance_id: get(row, 0)?,
        local_key: int(row, 1)?,
        element_id: get(row, 2)?,
        due_at: get(row, 3)?,
        tenant: get(row, 4)?,
    })
}

/// `INSERT ... ON CONFLICT (key) DO UPDATE` every other column: a replace
/// that is one UPDATE when the row exists (what the counting trigger sees).
fn upsert(table: &str, columns: &str, key: &str) -> String {
    let names: Vec<&str> = columns.split(", ").collect();
    let placeholders = (1..=names.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let keys: Vec<&str> = key.split(", ").collect();
    let updates = names
        .iter()
        .filter(|name| !keys.contains(name))
        .map(|name| format!("{name} = EXCLUDED.{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({key}) DO UPDATE SET {updates}")
}

/// A list query's conditions and the values they bind, numbered as they come.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    /// Binds `value`, returning its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    fn push(&mut self, condition: String) {
        self.sql.push(condition);
    }

    /// `column = value` when the filter gives a value.
    fn equal(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            let p = self.bind(value.clone());
            self.push(format!("{column} = {p}"));
        }
    }

    /// `tenant = ...` when the filter names one tenant, `tenant = ANY(...)` when several.
    fn tenants(&mut self, tenants: &Tenants) {
        match tenants.as_deref() {
            // One tenant: an equality, which an index that leads with the
            // tenant answers in the list's order (`= ANY` of one it sorts).
            Some([tenant]) => {
                let p = self.bind(tenant.clone());
                self.push(format!("tenant = {p}"));
            }
            Some(tenants) => {
                let p = self.bind(tenants.to_vec());
                self.push(format!("tenant = ANY({p})"));
            }
            None => {}
        }
    }

    fn where_clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

// The queries of every turn of the commit loop and every poll walk the
// timers (or a type's free jobs) in order through their index and stop at the
// limit; whether the instance runs is a lookup by key for each row they pass
// (a subquery in the condition, so the planner cannot start from the
// instances instead: as a join it hashes every running instance). The
// planner cannot know the subquery's value: asked whether it equals
// `running`, it guesses that one row in two hundred passes, and rather than
// stop early in the poll's index it reads every activatable job of the type
// and sorts them. Asked whether it is none of the other statuses, it
// guesses almost every row passes, which is the truth: the rows of
// suspended instances are held out of those indexes, and an ended
// instance keeps nothing to take or fire. Tests check the plans.

/// Whether the row's instance (`{table}.instance_id`) is running: its
/// status is none of the others.
macro_rules! instance_running {
    ($table:literal) => {
        concat!(
            "(SELECT instances.status FROM instances WHERE instances.id = ",
            $table,
            ".instance_id) NOT IN ('suspended', 'completed', 'cancelled', 'failed')"
        )
    };
}

/// Timers of running instances due at `$1`, in due order, at most `$2`.
pub(crate) const DUE_TIMERS: &str = concat!(
    "SELECT instance_id, local_key, element_id, due_at, tenant FROM timers WHERE due_at <= $1 AND NOT held AND ",
    instance_running!("timers"),
    " ORDER BY due_at, instance_id, local_key LIMIT $2"
);

/// [`DUE_TIMERS`], each locked for this transaction, skipping those another node holds.
pub(crate) const CLAIM_DUE_TIMERS: &str = concat!(
    "SELECT instance_id, local_key, element_id, due_at, tenant FROM timers WHERE due_at <= $1 AND NOT held AND ",
    instance_running!("timers"),
    " ORDER BY due_at, instance_id, local_key LIMIT $2 FOR UPDATE OF timers SKIP LOCKED"
);

/// Start timers due at `$1`, at most `$2`, each locked for this transaction, skipping those another node holds.
const CLAIM_START_TIMERS: &str =
    "SELECT process_id, element_id, version, due_at, repeat, tenant FROM start_timers WHERE due_at <= $1 \
     ORDER BY due_at, tenant, process_id, element_id LIMIT $2 FOR UPDATE SKIP LOCKED";

/// The first due time of a timer whose instance runs, or of a start timer.
pub(crate) const NEXT_DUE: &str = concat!(
    "SELECT LEAST((SELECT due_at FROM timers WHERE NOT held AND ",
    instance_running!("timers"),
    " ORDER BY due_at LIMIT 1), (SELECT MIN(due_at) FROM start_timers))"
);

/// The instances with open incidents, their own or a descendant's (schema
/// 11), as the SQLite store finds them (its `WITH_INCIDENTS`): those whose
/// row counts some (`instances_with_incidents`), and the ancestors of the
/// instances of open incidents, each the id up to its last `/`.
const WITH_INCIDENTS: &str = r#"WITH RECURSIVE up(id) AS (
       SELECT regexp_replace(instance_id, '/[^/]*$', '') COLLATE "C" FROM incidents
       WHERE resolved_at IS NULL AND strpos(instance_id, '/') > 0
       UNION SELECT regexp_replace(id, '/[^/]*$', '') COLLATE "C" FROM up WHERE strpos(id, '/') > 0)
     SELECT id FROM up UNION ALL SELECT id FROM instances WHERE incidents > 0"#;

/// Jobs of type `$1` a worker may take at `$2`, oldest first, at most `$3`,
/// of the tenants `$4` (null: every tenant that has some, each found by one
/// seek past the one before), each followed by `lock`. Of each tenant, two
/// ranges of `jobs_free`: the jobs never leased nor backed off (`free_at`
/// 0, in creation order) and those whose lease ran out or whose backoff
/// passed (in the order they came free), merged by age. None holds the
/// jobs workers hold, a suspended instance's (`held`) or another tenant's.
fn free_jobs_sql(lock: &str) -> String {
    let branch = |free: &str| {
        format!(
            "SELECT free.* FROM tenants CROSS JOIN LATERAL (
               SELECT {JOB_COLUMNS} FROM jobs WHERE job_type = $1 AND tenant = tenants.tenant AND state = 'activatable' AND NOT held
                 AND {free} AND {}
               ORDER BY free_at, created_at, key LIMIT $3 {lock}) AS free",
            instance_running!("jobs")
        )
    };
    format!(
        "WITH RECURSIVE present(tenant) AS (
           (SELECT tenant FROM jobs WHERE job_type = $1 AND state = 'activatable' AND NOT held AND $4::text[] IS NULL ORDER BY tenant LIMIT 1)
           UNION ALL
           SELECT (SELECT later.tenant FROM jobs AS later WHERE later.job_type = $1 AND later.state = 'activatable' AND NOT later.held
                     AND later.tenant > present.tenant ORDER BY later.tenant LIMIT 1)
           FROM present WHERE present.tenant IS NOT NULL),
         tenants(tenant) AS (SELECT unnest($4::text[]) UNION SELECT tenant FROM present WHERE tenant IS NOT NULL)
         SELECT * FROM ({} UNION ALL {}) AS free ORDER BY created_at, key LIMIT $3",
        branch("free_at = 0"),
        branch("free_at > 0 AND free_at <= $2")
    )
}

/// What a worker may take now, as [`free_jobs_sql`] reads it.
pub(crate) fn activatable_jobs_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| free_jobs_sql(""));
    SQL.as_str()
}

/// [`activatable_jobs_sql`], each job locked for this transaction: jobs that
/// another node is handing out are skipped, not waited for.
pub(crate) fn claim_jobs_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| free_jobs_sql("FOR UPDATE OF jobs SKIP LOCKED"));
    SQL.as_str()
}

/// A table listed in pages: its name, columns, order and row mapping.
struct Table<T: 'static> {
    name: &'static str,
    columns: &'static str,
    order: (&'static str, &'static str),
    map: fn(&Row) -> Result<T>,
}

const INSTANCES: Table<InstanceRow> = Table { name: "instances", columns: INSTANCE_COLUMNS, order: ("started_at", "id"), map: instance_row };
const JOBS: Table<JobRow> = Table { name: "jobs", columns: JOB_COLUMNS, order: ("created_at", "key"), map: job_row };
const TASKS: Table<TaskRow> = Table { name: "tasks", columns: TASK_COLUMNS, order: ("created_at", "key"), map: task_row };
/// Tasks of a candidate group (`grp = ...`), in list order through
/// `task_candidates_by_state` (open or completed) or `task_candidates_by_group` (both).
const TASKS_OF_GROUP: Table<TaskRow> = Table {
    name: "task_candidates JOIN tasks ON tasks.key = task_candidates.task_key",
    columns: TASK_COLUMNS,
    order: ("task_created_at", "task_key"),
    map: task_row,
};
const INCIDENTS: Table<IncidentRow> = Table { name: "incidents", columns: INCIDENT_COLUMNS, order: ("created_at", "key"), map: incident_row };
// Keys as text, in the order the rows' cursors sort (see `store::Cursor`).
const TIMERS: Table<TimerRow> = Table { name: "timers", columns: TIMER_COLUMNS, order: ("due_at", "(instance_id || '.' || local_key)"), map: timer_row };
const SUBSCRIPTIONS: Table<SubscriptionRow> = Table {
    name: "subscriptions",
    columns: SUBSCRIPTION_COLUMNS,
    order: ("opened_at", "(instance_id || '.' || local_key)"),
    map: subscription_row,
};
const MESSAGES: Table<MessageRow> = Table {
    name: "messages",
    columns: MESSAGE_COLUMNS,
    order: ("published_at", "(lpad(seq::text, 20, '0') COLLATE \"C\")"),
    map: message_row,
};

impl PostgresTxn<'_> {
    /// A task's row, inserted or written again whole.
    fn put_task(&mut self, t: TaskRow) -> Result<()> {
        self.execute(
            &upsert("tasks", TASK_COLUMNS, "key"),
            values![
                t.key,
                t.instance_id,
                big(t.local_key)?,
                t.process_id,
                t.element_id,
                t.assignee,
                Json(t.candidate_groups),
                Json(t.candidate_users),
                t.due,
                t.follow_up,
                t.priority,
                t.form_key,
                t.created_at,
                t.tenant,
                t.completed_at,
                t.completed_by,
            ]
        )
    }

    /// A page of a list of jobs, incidents, timers, subscriptions or
    /// messages, as the SQLite store reads it (`SqliteTxn::list` there):
    /// `other` adds the filter's conditions but the tenants; one instance's
    /// rows are read as filtered; any other list by tenant, each tenant's
    /// page from its range of an index that leads with the tenant (after
    /// `lead`), merged (`store::merge_tenant_pages`).
    fn list<T: Cursor>(
        &mut self,
        table: &Table<T>,
        tenants: &Tenants,
        of_instance: bool,
        (lead, lead_value): (&str, Option<&str>),
        other: impl Fn(&mut Conditions) -> Result<()>,
        page: &PageRequest,
    ) -> Result<Page<T>> {
        if of_instance {
            let mut c = Conditions::default();
            c.tenants(tenants);
            other(&mut c)?;
            return self.page(table, c, page);
        }
        let listed = store::tenants_to_list(tenants, |after| self.tenant_after(table.name, (lead, lead_value), after))?;
        let mut pages = Vec::with_capacity(listed.len());
        for tenant in listed {
            let mut c = Conditions::default();
            let p = c.bind(tenant);
            c.push(format!("tenant = {p}"));
            other(&mut c)?;
            pages.push(self.page(table, c, page)?);
        }
        store::merge_tenant_pages(pages, page, false)
    }

    /// The least tenant above `after` (any, for `None`) with rows in `table`
    /// that pass `lead` (`?` for its value, as [`Self::list`] takes it): one
    /// seek in an index that leads with the tenant, after `lead`'s columns.
    fn tenant_after(&mut self, table: &str, (lead, lead_value): (&str, Option<&str>), after: Option<&str>) -> Result<Option<String>> {
        let mut c = Conditions::default();
        let lead = match lead_value {
            Some(value) => lead.replace('?', &c.bind(value.to_string())),
            None => lead.to_string(),
        };
        let (beyond, from) = match after {
            Some(tenant) => (">", tenant),
            None => (">=", ""),
        };
        let p = c.bind(from.to_string());
        let sql = format!("SELECT tenant FROM {table} WHERE {lead}tenant {beyond} {p} ORDER BY tenant LIMIT 1");
        self.query_one(&sql, &c.refs(), |row| get(row, 0))
    }

    fn page<T: Cursor>(&mut self, table: &Table<T>, conditions: Conditions, page: &PageRequest) -> Result<Page<T>> {
        self.page_in_order(table, conditions, page, false)
    }

    /// A page in the table's order, or (`descending`) the other way: the
    /// same index, walked backwards.
    fn page_in_order<T: Cursor>(&mut self, table: &Table<T>, mut conditions: Conditions, page: &PageRequest, descending: bool) -> Result<Page<T>> {
        let (beyond, direction) = if descending { ("<", " DESC") } else { (">", "") };
        let (time_column, key_column) = table.order;
        if let Some(after) = &page.after {
            let (time, key) = split_cursor(after)?;
            // A row value: the index seeks to it, so a page deep in the list costs what the first does.
            let t = conditions.bind(time);
            let k = conditions.bind(key.to_string());
            conditions.push(format!("({time_column}, {key_column}) {beyond} ({t}, {k})"));
        }
        let limit = page.bounded_limit();
        let sql = paged_sql(table.columns, table.name, &conditions.where_clause(), table.order, direction, limit + 1);
        let mut items = self.query(&sql, &conditions.refs(), table.map)?;
        let next = (items.len() > limit).then(|| items[limit - 1].cursor());
        items.truncate(limit);
        Ok(Page { items, next })
    }
}

impl ReadTxn for PostgresTxn<'_> {
    fn workflows(&mut self) -> Result<Vec<WorkflowRow>> {
        self.query(&format!("SELECT {WORKFLOW_COLUMNS} FROM workflows ORDER BY tenant, process_id, version"), &[], workflow_row)
    }

    fn workflow(&mut self, tenant: &str, process_id: &str, version: u32) -> Result<Option<WorkflowRow>> {
        self.query_one(
            &format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE tenant = $1 AND process_id = $2 AND version = $3"),
            &[&tenant, &process_id, &i64::from(version)],
            workflow_row,
        )
    }

    fn instance(&mut self, id: &str) -> Result<Option<InstanceRow>> {
        self.query_one(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1"), &[&id], instance_row)
    }

    fn instance_id_by_number(&mut self, number: u64) -> Result<Option<String>> {
        let Ok(number) = i64::try_from(number) else { return Ok(None) };
        if number == 0 {
            return Ok(None);
        }
        self.query_one("SELECT id FROM instances WHERE number = $1 AND number > 0", &[&number], |row| get(row, 0))
    }

    fn instance_number(&mut self, id: &str) -> Result<Option<(u64, u32)>> {
        self.query_one("SELECT number, version FROM instances WHERE id = $1", &[&id], |row| Ok((int(row, 0)?, int(row, 1)?)))
    }

    fn last_instance_number(&mut self) -> Result<u64> {
        let last = self.query_one("SELECT max(number) FROM instances WHERE number > 0", &[], |row| opt_int::<u64>(row, 0))?;
        Ok(last.flatten().unwrap_or(0))
    }

    fn instance_version(&mut self, id: &str) -> Result<Option<u64>> {
        self.query_one("SELECT update_count FROM instances WHERE id = $1", &[&id], |row| int(row, 0))
    }

    fn last_message_seq(&mut self) -> Result<u64> {
        let last = self.query_one("SELECT max(seq) FROM messages", &[], |row| opt_int::<u64>(row, 0))?;
        Ok(last.flatten().unwrap_or(0))
    }

    fn instances(&mut self, filter: &InstanceFilter, page: &PageRequest) -> Result<Page<InstanceRow>> {
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
        let mut c = Conditions::default();
        c.tenants(&filter.tenants);
        if let Some(status) = filter.status {
            let p = c.bind(enum_text(&status)?);
            c.push(format!("status = {p}"));
        }
        c.equal("process_id", &filter.process_id);
        if let Some(version) = filter.version {
            let p = c.bind(i64::from(version));
            c.push(format!("version = {p}"));
        }
        c.equal("business_key", &filter.business_key);
        if let Some(waiting) = &filter.waiting {
            let p = c.bind(waiting.clone());
            c.push(format!("waiting ? {p}"));
        }
        if let Some(has) = filter.has_incidents {
            c.push(format!("{}id IN ({WITH_INCIDENTS})", if has { "" } else { "NOT " }));
        }
        for (column, op, value) in [
            ("started_at", ">=", filter.started_after),
            ("started_at", "<", filter.started_before),
            ("ended_at", ">=", filter.ended_after),
            ("ended_at", "<", filter.ended_before),
        ] {
            if let Some(value) = value {
                let p = c.bind(value);
                c.push(format!("{column} {op} {p}"));
            }
        }
        if let Some((name, value)) = &filter.variable {
            // The instance's own variables, JSON compared as JSON: containment
            // through instances_by_variables, then equality (containment alone
            // would let `{"a": [1, 2]}` match `[1]`).
            let n = c.bind(name.clone());
            let v = c.bind(Json(value.clone()));
            c.push(format!("variables @> jsonb_build_object({n}::text, {v}::jsonb) AND variables -> {n} = {v}::jsonb"));
        }
        c.equal("parent_id", &filter.parent_id);
        if let Some((name, value)) = &filter.label {
            let n = c.bind(name.clone());
            let v = c.bind(value.clone());
            c.push(format!("id IN (SELECT instance_id FROM labels WHERE name = {n} AND value = {v})"));
        }
        if let Some(root) = &filter.root_id {
            let (from, to) = descendant_range(root);
            let r = c.bind(root.clone());
            let f = c.bind(from);
            let t = c.bind(to);
            c.push(format!("(id = {r} OR (id >= {f} AND id < {t}))"));
        }
        let lead = match filter.order {
            InstanceOrder::Started => return self.page_in_order(&INSTANCES, c, page, filter.descending),
            InstanceOrder::Workflow => "process_id",
            InstanceOrder::Status => "status",
        };
        // By the lead column, then start time and id: a tenant's range of
        // the index that has it after the tenant (instances_by_process,
        // instances_by_status), walked either way.
        if let Some(after) = &page.after {
            let (lead_value, time, id) = filter.order.split(after)?;
            let beyond = if filter.descending { "<" } else { ">" };
            let l = c.bind(lead_value.unwrap_or("").to_string());
            let t = c.bind(time);
            let i = c.bind(id.to_string());
            c.push(format!("({lead}, started_at, id) {beyond} ({l}, {t}, {i})"));
        }
        let limit = page.bounded_limit();
        let sql = ordered_instances_sql(lead, filter.descending, &c.where_clause(), limit + 1);
        let mut items = self.query(&sql, &c.refs(), instance_row)?;
        let next = (items.len() > limit).then(|| filter.order.cursor(&items[limit - 1]));
        items.truncate(limit);
        Ok(Page { items, next })
    }

    fn instance_by_request(&mut self, tenant: &str, request_id: &str) -> Result<Option<String>> {
        self.query_one("SELECT instance_id FROM requests WHERE tenant = $1 AND request_id = $2", &[&tenant, &request_id], |row| get(row, 0))
    }

    fn message_started_active(&mut self, tenant: &str, process_id: &str, correlation_key: &str) -> Result<bool> {
        let found = self.query_one(
            "SELECT 1 FROM instances WHERE tenant = $1 AND process_id = $2 AND start_key = $3 AND status IN ('running', 'suspended') LIMIT 1",
            &[&tenant, &process_id, &correlation_key],
            |_| Ok(()),
        )?;
        Ok(found.is_some())
    }

    fn history(&mut self, instance_id: &str, filter: &HistoryFilter, page: &PageRequest) -> Result<Page<HistoryRow>> {
        let after = sequence_cursor(page.after.as_deref())?;
        let limit = page.bounded_limit();
        let mut c = Conditions::default();
        let i = c.bind(instance_id.to_string());
        let a = c.bind(i64::try_from(after).unwrap_or(i64::MAX));
        c.push(format!("instance_id = {i} AND seq > {a}"));
        // One instance's entries, read in order: the filters look into each entry.
        for (field, value) in [
            ("element_id", filter.element_id.clone()),
            ("element_type", filter.element_type.clone()),
            ("event", filter.event.map(|e| e.as_str().to_string())),
        ] {
            if let Some(value) = value {
                let p = c.bind(value);
                c.push(format!("entry ->> '{field}' = {p}"));
            }
        }
        if let Some(run) = filter.run {
            let p = c.bind(i64::from(run));
            c.push(format!("COALESCE((entry ->> 'run')::bigint, 1) = {p}"));
        }
        let sql = format!("SELECT instance_id, seq, entry FROM history {} ORDER BY seq LIMIT {}", c.where_clause(), limit + 1);
        let mut items = self.query(&sql, &c.refs(), |row| Ok(HistoryRow { instance_id: get(row, 0)?, seq: int(row, 1)?, entry: json(row, 2)? }))?;
        let next = (items.len() > limit).then(|| items[limit - 1].cursor());
        items.truncate(limit);
        Ok(Page { items, next })
    }

    fn job(&mut self, key: &str) -> Result<Option<JobRow>> {
        self.query_one(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE key = $1"), &[&key], job_row)
    }

    fn jobs(&mut self, filter: &JobFilter, page: &PageRequest) -> Result<Page<JobRow>> {
        let other = |c: &mut Conditions| {
            c.equal("job_type", &filter.job_type);
            c.equal("instance_id", &filter.instance_id);
            if let Some(state) = filter.state {
                c.push(job_state_sql(state)?);
            }
            Ok(())
        };
        self.list(&JOBS, &filter.tenants, filter.instance_id.is_some(), job_list_lead(filter), other, page)
    }

    fn activatable_jobs(&mut self, job_type: &str, tenants: &Tenants, now: i64, limit: usize) -> Result<Vec<JobRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(activatable_jobs_sql(), &[&job_type, &now, &limit, tenants], job_row)
    }

    fn task(&mut self, key: &str) -> Result<Option<TaskRow>> {
        self.query_one(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE key = $1"), &[&key], task_row)
    }

    fn tasks(&mut self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<TaskRow>> {
        let mut c = Conditions::default();
        c.tenants(&filter.tenants);
        c.equal("assignee", &filter.assignee);
        // A group's tasks from `task_candidates`, in list order by group and state.
        let mut table = &TASKS;
        if let Some(group) = &filter.candidate_group {
            let p = c.bind(group.clone());
            table = &TASKS_OF_GROUP;
            c.push(format!("grp = {p}"));
            match filter.state {
                TaskState::Open => c.push("NOT completed".to_string()),
                TaskState::Completed => c.push("completed".to_string()),
                TaskState::All => {}
            }
        }
        c.equal("process_id", &filter.process_id);
        c.equal("instance_id", &filter.instance_id);
        c.equal("completed_by", &filter.completed_by);
        match filter.state {
            TaskState::Open => c.push("completed_at IS NULL".to_string()),
            TaskState::Completed => c.push("completed_at IS NOT NULL".to_string()),
            TaskState::All => {}
        }
        self.page(table, c, page)
    }

    fn decisions(&mut self, tenants: &Tenants, decision_id: Option<&str>) -> Result<Vec<DecisionRow>> {
        self.query(
            &format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE ($1::text[] IS NULL OR tenant = ANY($1::text[])) AND ($2::text IS NULL OR decision_id = $2::text) ORDER BY tenant, decision_id, version"),
            &[tenants, &decision_id],
            decision_row,
        )
    }

    fn forms(&mut self, tenants: &Tenants, form_id: Option<&str>) -> Result<Vec<FormRow>> {
        self.query(
            &format!("SELECT {FORM_COLUMNS} FROM forms WHERE ($1::text[] IS NULL OR tenant = ANY($1::text[])) AND ($2::text IS NULL OR form_id = $2::text) ORDER BY tenant, form_id, version"),
            &[tenants, &form_id],
            form_row,
        )
    }

    fn incident(&mut self, key: &str) -> Result<Option<IncidentRow>> {
        self.query_one(&format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE key = $1"), &[&key], incident_row)
    }

    fn incidents(&mut self, filter: &IncidentFilter, page: &PageRequest) -> Result<Page<IncidentRow>> {
        let other = |c: &mut Conditions| {
            c.sql.extend(incident_state_sql(filter.state).map(str::to_string));
            if let Some(instance_id) = &filter.instance_id {
                if filter.with_descendants {
                    let (from, to) = store::descendant_range(instance_id);
                    let i = c.bind(instance_id.clone());
                    let f = c.bind(from);
                    let t = c.bind(to);
                    c.push(format!("(instance_id = {i} OR (instance_id >= {f} AND instance_id < {t}))"));
                } else {
                    let i = c.bind(instance_id.clone());
                    c.push(format!("instance_id = {i}"));
                }
            }
            c.equal("process_id", &filter.process_id);
            Ok(())
        };
        self.list(&INCIDENTS, &filter.tenants, filter.instance_id.is_some(), incident_list_lead(filter), other, page)
    }

    fn descendant_incidents(&mut self, instance_id: &str) -> Result<u32> {
        let (from, to) = store::descendant_range(instance_id);
        let count = self.query_one(
            "SELECT COUNT(*) FROM incidents WHERE instance_id >= $1 AND instance_id < $2 AND resolved_at IS NULL",
            &[&from, &to],
            |row| int::<u32>(row, 0),
        )?;
        Ok(count.unwrap_or(0))
    }

    fn timers(&mut self, filter: &TimerFilter, page: &PageRequest) -> Result<Page<TimerRow>> {
        let other = |c: &mut Conditions| {
            c.equal("instance_id", &filter.instance_id);
            if let Some(due) = filter.due_before {
                let p = c.bind(due);
                c.push(format!("due_at <= {p}"));
            }
            Ok(())
        };
        self.list(&TIMERS, &filter.tenants, filter.instance_id.is_some(), ("", None), other, page)
    }

    fn timer(&mut self, instance_id: &str, local_key: u64) -> Result<Option<TimerRow>> {
        self.query_one(
            &format!("SELECT {TIMER_COLUMNS} FROM timers WHERE instance_id = $1 AND local_key = $2"),
            &[&instance_id, &big(local_key)?],
            timer_row,
        )
    }

    fn subscriptions(&mut self, filter: &SubscriptionFilter, page: &PageRequest) -> Result<Page<SubscriptionRow>> {
        let other = |c: &mut Conditions| {
            c.equal("instance_id", &filter.instance_id);
            if let Some(kind) = filter.kind {
                let p = c.bind(enum_text(&kind)?);
                c.push(format!("kind = {p}"));
            }
            c.equal("name", &filter.name);
            Ok(())
        };
        self.list(&SUBSCRIPTIONS, &filter.tenants, filter.instance_id.is_some(), ("", None), other, page)
    }

    fn messages(&mut self, filter: &MessageFilter, now: i64, page: &PageRequest) -> Result<Page<MessageRow>> {
        let other = |c: &mut Conditions| {
            let p = c.bind(now);
            // `+ 0`: not a range of `messages_by_expiry`, which walks every
            // tenant's messages, where the tenant's range is in list order.
            c.push(match filter.state {
                MessageState::Buffered => format!("expires_at + 0 > {p}"),
                MessageState::Undelivered => format!("expires_at + 0 <= {p} AND correlated = '[]'::jsonb"),
            });
            c.equal("name", &filter.name);
            Ok(())
        };
        self.list(&MESSAGES, &filter.tenants, false, ("", None), other, page)
    }

    fn message_subscriptions(&mut self, tenant: &str, name: &str, correlation_key: &str) -> Result<Vec<SubscriptionRow>> {
        self.query(
            &format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = $1 AND kind = 'message' AND name = $2 AND correlation_key = $3
                 ORDER BY opened_at, instance_id, local_key"
            ),
            &[&tenant, &name, &correlation_key],
            subscription_row,
        )
    }

    fn signal_subscriptions(&mut self, tenant: &str, name: &str) -> Result<Vec<SubscriptionRow>> {
        self.query(
            &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = $1 AND kind = 'signal' AND name = $2 ORDER BY opened_at, instance_id, local_key"),
            &[&tenant, &name],
            subscription_row,
        )
    }

    fn buffered_messages(&mut self, tenant: &str, name: &str, correlation_key: &str, now: i64) -> Result<Vec<MessageRow>> {
        self.query(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant = $1 AND name = $2 AND correlation_key = $3 AND expires_at > $4 ORDER BY seq"),
            &[&tenant, &name, &correlation_key, &now],
            message_row,
        )
    }

    fn message_by_id(&mut self, tenant: &str, message_id: &str, now: i64) -> Result<Option<MessageRow>> {
        self.query_one(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant = $1 AND message_id = $2 AND expires_at > $3 ORDER BY seq LIMIT 1"),
            &[&tenant, &message_id, &now],
            message_row,
        )
    }

    fn due_timers(&mut self, now: i64, limit: usize) -> Result<Vec<TimerRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(DUE_TIMERS, &[&now, &limit], timer_row)
    }

    fn scheduled_deletion(&mut self, instance_id: &str) -> Result<Option<i64>> {
        self.query_one("SELECT at FROM deletions WHERE instance_id = $1", &[&instance_id], |row| get(row, 0))
    }

    fn due_deletions(&mut self, now: i64, limit: usize) -> Result<Vec<String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query("SELECT instance_id FROM deletions WHERE at <= $1 ORDER BY at, instance_id LIMIT $2", &[&now, &limit], |row| get(row, 0))
    }

    fn expired_messages(&mut self, before: i64, limit: usize) -> Result<Vec<u64>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query("SELECT seq FROM messages WHERE expires_at <= $1 ORDER BY expires_at, seq LIMIT $2", &[&before, &limit], |row| int(row, 0))
    }

    fn next_due(&mut self) -> Result<Option<i64>> {
        Ok(self.query_one(NEXT_DUE, &[], |row| get::<Option<i64>>(row, 0))?.flatten())
    }

    fn start_timers(&mut self) -> Result<Vec<StartTimerRow>> {
        self.query(&format!("SELECT {START_TIMER_COLUMNS} FROM start_timers ORDER BY due_at, tenant, process_id, element_id"), &[], start_timer_row)
    }

    fn last_deployment(&mut self) -> Result<u64> {
        let last = self.query_one(
            "SELECT GREATEST((SELECT MAX(deployment) FROM workflows), (SELECT MAX(deployment) FROM decisions), (SELECT MAX(deployment) FROM forms))",
            &[],
            |row| opt_int::<u64>(row, 0),
        )?;
        Ok(last.flatten().unwrap_or(0))
    }

    fn tokens(&mut self) -> Result<Vec<TokenRow>> {
        self.query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name, id"), &[], token_row)
    }

    fn instance_counts(&mut self, tenants: &Tenants) -> Result<Vec<InstanceCount>> {
        self.query(
            "SELECT tenant, process_id, version, status, with_incidents, SUM(count)::bigint FROM instance_counts \
             WHERE ($1::text[] IS NULL OR tenant = ANY($1::text[])) \
             GROUP BY tenant, process_id, version, status, with_incidents HAVING SUM(count) > 0 \
             ORDER BY tenant, process_id, version, status, with_incidents",
            &[tenants],
            |row| {
                Ok(InstanceCount {
                    tenant: get(row, 0)?,
                    process_id: get(row, 1)?,
                    version: int(row, 2)?,
                    status: enum_from(row, 3)?,
                    with_incidents: get(row, 4)?,
                    count: int(row, 5)?,
                })
            },
        )
    }
}

impl WriteTxn for PostgresTxn<'_> {
    fn put_instance_if(&mut self, i: &InstanceRow, stored: Option<u64>) -> Result<()> {
        self.writable()?;
        let mut values = instance_values(i)?;
        let sql = match stored {
            // New: an insert that adds nothing if the instance exists already.
            None => format!("INSERT INTO instances ({INSTANCE_COLUMNS}, variables) VALUES ({}) ON CONFLICT (id) DO NOTHING", placeholders(17)),
            // Known: an update of the version it was read at, and of no other (its number stays).
            Some(version) => {
                values.remove(15);
                values.push(Box::new(big(version)?));
                format!("UPDATE instances SET {INSTANCE_UPDATES} WHERE id = $1 AND update_count = $17")
            }
        };
        let statement = self.db()?.statement(&sql)?;
        self.pending.push(Pending::Execute(statement, values, Some(Checked::Instance { id: i.id.clone(), stored })));
        self.news.ended |= i.status.is_ended();
        Ok(())
    }

    fn put_instance(&mut self, i: &InstanceRow) -> Result<()> {
        // An upsert that keeps the number an instance was given.
        let sql = format!(
            "INSERT INTO instances ({INSTANCE_COLUMNS}, variables) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (id) DO UPDATE SET \
             process_id = EXCLUDED.process_id, version = EXCLUDED.version, status = EXCLUDED.status, business_key = EXCLUDED.business_key, \
             parent_id = EXCLUDED.parent_id, started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, incidents = EXCLUDED.incidents, \
             waiting = EXCLUDED.waiting, start_key = EXCLUDED.start_key, update_count = EXCLUDED.update_count, \
             history_count = EXCLUDED.history_count, state = EXCLUDED.state, tenant = EXCLUDED.tenant, variables = EXCLUDED.variables"
        );
        let values = instance_values(i)?;
        self.news.ended |= i.status.is_ended();
        self.execute(&sql, values)
    }

    fn apply(&mut self, write: Write) -> Result<()> {
        self.news.add(News::of(&write));
        match write {
            Write::PutWorkflow(w) => self.execute(
                &upsert("workflows", WORKFLOW_COLUMNS, "tenant, process_id, version"),
                values![w.process_id, i64::from(w.version), big(w.deployment)?, w.name, w.version_tag, w.xml, w.deployed_at, w.tenant],
            ),
            Write::PutInstance(row) => self.put_instance(&row),
            Write::DeleteInstance { id } => {
                let (from, to) = store::item_keys_of(&id);
                self.execute("DELETE FROM task_candidates WHERE task_key >= $1 AND task_key < $2", values![from, to])?;
                for table in INSTANCE_TABLES {
                    self.execute(&format!("DELETE FROM {table} WHERE instance_id = $1"), values![id.clone()])?;
                }
                self.execute("DELETE FROM instances WHERE id = $1", values![id])
            }
            Write::CancelDeletion { instance_id } => self.execute("DELETE FROM deletions WHERE instance_id = $1", values![instance_id]),
            Write::ScheduleDeletion { instance_id, at } => self.execute(
                "INSERT INTO deletions (instance_id, at) VALUES ($1, $2) ON CONFLICT (instance_id) DO UPDATE SET at = EXCLUDED.at",
                values![instance_id, at],
            ),
            Write::PutRequest { tenant, request_id, instance_id } => {
                self.execute(&upsert("requests", "tenant, request_id, instance_id", "tenant, request_id"), values![tenant, request_id, instance_id])
            }
            Write::PutJob(j) => self.execute(
                &upsert("jobs", JOB_COLUMNS, "key"),
                values![
                    j.key,
                    j.instance_id,
                    big(j.local_key)?,
                    j.process_id,
                    j.element_id,
                    j.job_type,
                    i64::from(j.retries),
                    enum_text(&j.state)?,
                    j.not_before,
                    j.error_message,
                    j.worker,
                    j.lease_until,
                    j.created_at,
                    j.lease,
                    j.tenant,
                ],
            ),
            Write::LeaseJob { key, worker, lease_until, lease } => {
                self.execute("UPDATE jobs SET worker = $2, lease_until = $3, lease = $4 WHERE key = $1", values![key, worker, lease_until, lease])
            }
            Write::DeleteJob { key } => self.execute("DELETE FROM jobs WHERE key = $1", values![key]),
            Write::PutTimer(t) => {
                self.execute(&upsert("timers", TIMER_COLUMNS, "instance_id, local_key"), values![t.instance_id, big(t.local_key)?, t.element_id, t.due_at, t.tenant])
            }
            Write::DeleteTimer { instance_id, local_key } => {
                self.execute("DELETE FROM timers WHERE instance_id = $1 AND local_key = $2", values![instance_id, big(local_key)?])
            }
            Write::PutSubscription(s) => self.execute(
                &upsert("subscriptions", SUBSCRIPTION_COLUMNS, "instance_id, local_key"),
                values![s.instance_id, big(s.local_key)?, s.element_id, enum_text(&s.kind)?, s.name, s.correlation_key, s.opened_at, s.tenant],
            ),
            Write::DeleteSubscription { instance_id, local_key } => {
                self.execute("DELETE FROM subscriptions WHERE instance_id = $1 AND local_key = $2", values![instance_id, big(local_key)?])
            }
            Write::PutTask(t) => {
                // A task's candidate groups, a row each (schema 10; completed ones kept since 16).
                self.execute("DELETE FROM task_candidates WHERE task_key = $1", values![t.key.clone()])?;
                if !t.candidate_groups.is_empty() {
                    self.execute(
                        "INSERT INTO task_candidates (task_key, grp, task_created_at, completed) SELECT DISTINCT $1, grp, $2::bigint, $4::boolean FROM unnest($3::text[]) AS grp",
                        values![t.key.clone(), t.created_at, t.candidate_groups.clone(), t.completed_at.is_some()],
                    )?;
                }
                self.put_task(t)
            }
            Write::DeleteTask { key } => {
                self.execute("DELETE FROM task_candidates WHERE task_key = $1", values![key.clone()])?;
                self.execute("DELETE FROM tasks WHERE key = $1", values![key])
            }
            Write::CompleteTask { key, at, by } => {
                self.execute("UPDATE task_candidates SET completed = true WHERE task_key = $1", values![key.clone()])?;
                self.execute("UPDATE tasks SET completed_at = $1, completed_by = $2 WHERE key = $3", values![at, by, key])
            }
            Write::PutDecision(d) => self.execute(
                &upsert("decisions", DECISION_COLUMNS, "tenant, decision_id, version"),
                values![d.tenant, d.decision_id, i64::from(d.version), big(d.deployment)?, d.name, d.definitions_id, d.resource, d.xml, d.deployed_at],
            ),
            Write::PutForm(f) => self.execute(
                &upsert("forms", FORM_COLUMNS, "tenant, form_id, version"),
                values![f.tenant, f.form_id, i64::from(f.version), big(f.deployment)?, f.version_tag, f.resource, f.schema, f.deployed_at],
            ),
            Write::PutIncident(i) => self.execute(
                &upsert("incidents", INCIDENT_COLUMNS, "key"),
                values![i.key, i.instance_id, big(i.local_key)?, i.process_id, i.element_id, i.kind, i.message, i.created_at, i.resolved_at, i.resolved_by, i.tenant],
            ),
            Write::ResolveIncident { key, at, by } => self.execute("UPDATE incidents SET resolved_at = $1, resolved_by = $2 WHERE key = $3", values![at, by, key]),
            Write::AppendHistory(h) => {
                self.execute(&upsert("history", "instance_id, seq, entry", "instance_id, seq"), values![h.instance_id, big(h.seq)?, raw(&h.entry)?])
            }
            // Kept, or its recipients updated; never another node's message that took the same number.
            Write::PutMessage(m) => {
                self.writable()?;
                let sql = format!(
                    "{} WHERE messages.tenant = EXCLUDED.tenant AND messages.name = EXCLUDED.name \
                     AND messages.correlation_key = EXCLUDED.correlation_key AND messages.published_at = EXCLUDED.published_at",
                    upsert("messages", MESSAGE_COLUMNS, "seq")
                );
                let statement = self.db()?.statement(&sql)?;
                let seq = m.seq;
                let values = values![big(m.seq)?, m.name, m.correlation_key, raw(&m.variables)?, m.published_at, m.expires_at, m.message_id, Json(m.correlated), m.tenant];
                self.pending.push(Pending::Execute(statement, values, Some(Checked::Message { seq })));
                Ok(())
            }
            Write::DeleteMessage { seq } => self.execute("DELETE FROM messages WHERE seq = $1", values![big(seq)?]),
            Write::PutStartTimer(t) => self.execute(
                &upsert("start_timers", "tenant, process_id, element_id, version, due_at, repeat", "tenant, process_id, element_id"),
                values![t.tenant, t.process_id, t.element_id, i64::from(t.version), t.due_at, t.repeat.map(Json)],
            ),
            Write::DeleteStartTimers { tenant, process_id } => {
                self.execute("DELETE FROM start_timers WHERE tenant = $1 AND process_id = $2", values![tenant, process_id])
            }
            Write::PutToken(t) => self.execute(
                &upsert("tokens", TOKEN_COLUMNS, "id"),
                values![
                    t.id,
                    t.name,
                    t.hash,
                    Json(t.roles),
                    t.job_types.map(Json),
                    t.workflows.map(Json),
                    Json(t.groups),
                    t.hide_variables,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at,
                    Json(t.tenants),
                ],
            ),
            // The instances' variables column, written with every instance, has its own index.
            Write::IndexVariables { .. } => Ok(()),
            Write::HoldWaits { instance_id, held } => {
                self.execute("UPDATE jobs SET held = $1 WHERE instance_id = $2", values![held, instance_id.clone()])?;
                self.execute("UPDATE timers SET held = $1 WHERE instance_id = $2", values![held, instance_id])
            }
            Write::PutLabels { instance_id, labels } => {
                self.execute("DELETE FROM labels WHERE instance_id = $1", values![instance_id.clone()])?;
                for (name, value) in labels {
                    self.execute("INSERT INTO labels (name, value, instance_id) VALUES ($1, $2, $3)", values![name, value, instance_id.clone()])?;
                }
                Ok(())
            }
        }
    }

    fn savepoint(&mut self) -> Result<()> {
        self.writable()?;
        self.savepoint_at = Some(self.pending.len());
        self.pending.push(Pending::Batch("SAVEPOINT command"));
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        match self.savepoint_at.take() {
            // Never sent: what followed it is dropped, and the server hears nothing.
            Some(at) => self.pending.truncate(at),
            // Sent: everything pending came after it.
            None => {
                self.pending.clear();
                self.pending.push(Pending::Batch("ROLLBACK TO SAVEPOINT command; RELEASE SAVEPOINT command"));
            }
        }
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        match self.savepoint_at.take() {
            // Never sent: nothing to release; its writes go with what comes next.
            Some(at) => {
                self.pending.remove(at);
            }
            None => self.pending.push(Pending::Batch("RELEASE SAVEPOINT command")),
        }
        Ok(())
    }

    fn lock(&mut self, lock: &Lock<'_>) -> Result<()> {
        // Within this schema's nodes; waited for at the server, in order with the writes before it.
        self.execute("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ' ' || $1, 0))", values![lock.name()])
    }

    fn next_instance_number(&mut self, _last: Option<u64>) -> Result<u64> {
        let store = self.store;
        store.next_number(|| {
            let row = self.query_one("SELECT nextval('instance_numbers')", &[], |row| int::<u64>(row, 0))?;
            row.ok_or_else(|| Error::corrupt("the instance number sequence answered nothing"))
        })
    }

    fn claim_jobs(&mut self, job_type: &str, tenants: &Tenants, now: i64, limit: usize) -> Result<Vec<JobRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(claim_jobs_sql(), &[&job_type, &now, &limit, tenants], job_row)
    }

    fn claim_due_timers(&mut self, now: i64, limit: usize) -> Result<(Vec<StartTimerRow>, Vec<TimerRow>)> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let starts = self.query(CLAIM_START_TIMERS, &[&now, &limit], start_timer_row)?;
        let left = limit - i64::try_from(starts.len()).unwrap_or(0);
        let timers = if left > 0 { self.query(CLAIM_DUE_TIMERS, &[&now, &left], timer_row)? } else { Vec::new() };
        Ok((starts, timers))
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.writable()?;
        if !self.news.is_empty() {
            // Heard by the other nodes' listeners once the commit is done, not before.
            let payload = format!("{} {}", self.news.to_letters(), self.store.origin);
            let channel = self.store.channel.clone();
            self.execute("SELECT pg_notify($1, $2)", values![channel, payload])?;
        }
        self.pending.push(Pending::Batch("COMMIT"));
        self.flush()?;
        self.finished = true;
        self.store.counters.commit();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The condition names every status but `running`, so a status added
    /// to the engine fails here (the match) until it is named.
    #[test]
    fn an_instance_runs_when_its_status_is_none_of_the_others() {
        use engine::Status::*;
        let condition = instance_running!("jobs");
        for status in [Running, Suspended, Completed, Cancelled, Failed] {
            match status {
                Running | Suspended | Completed | Cancelled | Failed => {}
            }
            assert_eq!(condition.contains(&format!("'{}'", status.as_str())), status != Running, "{condition}");
        }
    }
}
