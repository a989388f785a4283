//! Baton's store on PostgreSQL.
//!
//! The same tables as the SQLite store, in PostgreSQL's types: integers are
//! `BIGINT`, what queries look into is `JSONB`, what is only read back whole
//! (an instance's state, a history entry) is `JSON`, which keeps its text as
//! written. Keys and ids compare bytewise (`COLLATE "C"`), whatever the
//! database's locale, so cursors order exactly as the other stores do.
//!
//! One writer connection serves the node's commit loop; readers come from a
//! small pool. A read transaction is `REPEATABLE READ, READ ONLY` (one
//! snapshot, as a SQLite read sees); a write transaction is `READ COMMITTED`
//! and commits with the server's default `synchronous_commit=on`, so what is
//! acknowledged survives a crash of the database server too. A connection that
//! broke (the server restarted, the network dropped) is replaced on next use;
//! while none can be made, every call fails with [`Error::unavailable`].
//!
//! Any number of nodes may write one database at once: instance writes
//! carry their version, jobs and due timers are claimed with `FOR UPDATE
//! SKIP LOCKED`, what must happen one at a time takes an advisory lock
//! ([`store::Lock`]), and a commit tells the other nodes what it changed
//! with `NOTIFY` ([`store::News`], heard through [`Store::listen`]).

mod listen;
mod schema;
mod txn;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls, Statement};
use store::{Error, ReadTxn, Result, Store, WriteTxn};

pub use schema::SCHEMA_VERSION;
pub use txn::PostgresTxn;

/// Readers kept open for reuse.
const READER_POOL: usize = 8;
/// How many instance numbers a node takes from the database's sequence at
/// a time (the sequence's increment, set in schema version 3).
pub(crate) const NUMBER_BLOCK: u64 = 64;
/// Prepared statements kept per connection; beyond it the cache starts again.
const STATEMENT_CACHE: usize = 512;

/// One connection and the statements prepared on it. Its socket is served
/// by a small runtime of its own, driven by the thread that waits for an
/// answer (no other thread is woken on the way), so calls must not be made
/// on a thread that drives async tasks.
pub(crate) struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
    /// `Some` until dropped.
    runtime: Option<Runtime>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Without waiting: a store may be dropped on a thread that drives async tasks.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Connection {
    /// Waits for `future` (a call on this connection), serving the socket meanwhile.
    pub(crate) fn wait<T>(&self, future: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>) -> Result<T> {
        match &self.runtime {
            Some(runtime) => runtime.block_on(future).map_err(pg_error),
            None => Err(Error::unavailable("the connection was closed")),
        }
    }

    /// The statement for `sql`, prepared once per connection.
    pub(crate) fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.wait(self.client.prepare(sql))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `sql` (one or more statements, no parameters).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        self.wait(self.client.batch_execute(sql))
    }

    fn is_usable(&self) -> bool {
        !self.client.is_closed()
    }
}

/// What a store sent PostgreSQL since it opened: for the bench's cost per
/// instance, which does not depend on the machine.
#[derive(Debug, Default)]
pub struct Counters {
    statements: AtomicU64,
    round_trips: AtomicU64,
    rows_written: AtomicU64,
    commits: AtomicU64,
}

impl Counters {
    pub(crate) fn round_trip(&self, statements: usize, rows_written: u64) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.statements.fetch_add(statements as u64, Ordering::Relaxed);
        self.rows_written.fetch_add(rows_written, Ordering::Relaxed);
    }

    pub(crate) fn commit(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters, with the server's position in its log as `wal_bytes`.
    fn read(&self, wal_position: u64) -> store::Written {
        store::Written {
            statements: self.statements.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
            rows: self.rows_written.load(Ordering::Relaxed),
            wal_bytes: wal_position,
            commits: self.commits.load(Ordering::Relaxed),
        }
    }
}

pub struct PostgresStore {
    config: tokio_postgres::Config,
    /// The address without its password, for messages.
    shown: String,
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    /// While set, every query is also `EXPLAIN`ed and its plan kept: the
    /// test that no query the API makes scans a large table reads them.
    explaining: AtomicBool,
    plans: Mutex<Vec<Plan>>,
    pub(crate) counters: Counters,
    /// Instance numbers this node took from the sequence and has not given yet: `[next, end)`.
    pub(crate) numbers: Mutex<(u64, u64)>,
    /// The channel this store's commits `NOTIFY` (one per schema).
    pub(crate) channel: String,
    /// Told apart from other stores' news, so a node does not wake for its own.
    pub(crate) origin: String,
    /// Lowered when the store is dropped: its listener stops.
    listening: std::sync::Arc<AtomicBool>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listening.store(false, Ordering::SeqCst);
    }
}

/// A query and the plan PostgreSQL chose for it, one line an element.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sql: String,
    pub lines: Vec<String>,
}

/// What PostgreSQL reported, as a store error: lost connections, a server
/// shutting down or out of resources, and transactions the server cancelled
/// to break a deadlock or a serialization conflict may succeed when tried
/// again, and so may a key that another node inserted first (conflicts:
/// the runtime runs its batch again on what the store holds now); anything
/// else is a store error. Messages carry the server's text,
/// never the statement.
pub(crate) fn pg_error(error: tokio_postgres::Error) -> Error {
    if error.is_closed() {
        return Error::unavailable("the connection to PostgreSQL was lost");
    }
    match error.code() {
        Some(code) => {
            let sqlstate = code.code();
            let message = error
                .as_db_error()
                .map_or_else(|| error.to_string(), |db| db.message().to_string());
            if sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "23505" {
                Error::conflict(format!("PostgreSQL: {message} ({sqlstate})"))
            } else if sqlstate.starts_with("08") || sqlstate.starts_with("53") || sqlstate.starts_with("57P") || sqlstate == "25006" {
                Error::unavailable(format!("PostgreSQL: {message} ({sqlstate})"))
            } else {
                Error::other(format!("PostgreSQL: {message} ({sqlstate})"))
            }
        }
        // No SQLSTATE: the connection failed underneath (I/O, a timeout).
        None => Error::unavailable(format!("PostgreSQL: {error}")),
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`
    /// or PostgreSQL's `key=value` form) and brings its schema up to date. Any
    /// number of nodes may open one database; the first to start migrates it,
    /// under an advisory lock, while the others wait.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::other(format!("'{}' is not a PostgreSQL address: {e}", shown(url))))?;
        PostgresStore::open_config(config, shown(url), true)
    }

    /// Opens a new schema `schema` of the database at `url`, which this store
    /// then keeps to: for benchmarks and tests that must start empty without
    /// the right to create databases.
    pub fn open_in_new_schema(url: &str, schema: &str) -> Result<PostgresStore> {
        if schema.is_empty() || !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(Error::other(format!("'{schema}' is not a schema name (lowercase letters, digits and _)")));
        }
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::other(format!("'{}' is not a PostgreSQL address: {e}", shown(url))))?;
        let store = PostgresStore::open_config(config.clone(), shown(url), false)?;
        store.writer()?.as_ref().ok_or_else(|| Error::unavailable("no connection"))?.batch(&format!("CREATE SCHEMA {schema}"))?;
        drop(store);
        config.options(format!("-c search_path={schema}"));
        PostgresStore::open_config(config, format!("{} (schema {schema})", shown(url)), true)
    }

    /// [`PostgresStore::open`] of a schema [`PostgresStore::open_in_new_schema`]
    /// made: another node of the same database.
    pub fn open_schema(url: &str, schema: &str) -> Result<PostgresStore> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::other(format!("'{}' is not a PostgreSQL address: {e}", shown(url))))?;
        config.options(format!("-c search_path={schema}"));
        PostgresStore::open_config(config, format!("{} (schema {schema})", shown(url)), true)
    }

    /// Connects, and with `migrate` brings the schema up to date.
    fn open_config(mut config: tokio_postgres::Config, shown: String, migrate: bool) -> Result<PostgresStore> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name(format!("baton {}", std::process::id()));
        }
        static STORES: AtomicU64 = AtomicU64::new(0);
        let mut store = PostgresStore {
            config,
            shown,
            writer: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            explaining: AtomicBool::new(false),
            plans: Mutex::new(Vec::new()),
            counters: Counters::default(),
            numbers: Mutex::new((0, 0)),
            channel: String::new(),
            origin: format!("{}.{}", std::process::id(), STORES.fetch_add(1, Ordering::Relaxed)),
            listening: std::sync::Arc::new(AtomicBool::new(true)),
        };
        let mut writer = store.connect()?;
        if migrate {
            schema::migrate(&mut writer)?;
        }
        let schema: String = writer.wait(writer.client().query_one("SELECT current_schema()::text", &[]))?.get(0);
        store.channel = format!("baton {schema}");
        *store.writer()? = Some(writer);
        Ok(store)
    }

    /// The address it was opened with, without the password.
    pub fn address(&self) -> &str {
        &self.shown
    }

    /// Where the server's write-ahead log is now, in bytes since its start:
    /// two readings apart are the bytes the server wrote between them.
    fn wal_position(&self) -> Result<u64> {
        let connection = self.take_reader()?;
        let row = connection
            .wait(connection.client().query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[]))?;
        self.return_reader(connection);
        let position: i64 = row.try_get(0).map_err(|e| Error::other(e.to_string()))?;
        Ok(u64::try_from(position).unwrap_or(0))
    }

    fn connect(&self) -> Result<Connection> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::unavailable(format!("cannot make a runtime for a PostgreSQL connection: {e}")))?;
        let (client, connection) = runtime.block_on(self.config.connect(NoTls)).map_err(|e| {
            let why = pg_error(e);
            Error::unavailable(format!("cannot connect to {}: {}", self.shown, why.message()))
        })?;
        // The socket is served whenever a caller waits on this runtime, until the client goes.
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            client,
            statements: HashMap::new(),
            runtime: Some(runtime),
        })
    }

    fn writer(&self) -> Result<MutexGuard<'_, Option<Connection>>> {
        self.writer
            .lock()
            .map_err(|_| Error::unavailable("the writer connection's lock is poisoned"))
    }

    fn take_reader(&self) -> Result<Connection> {
        loop {
            let pooled = self
                .readers
                .lock()
                .map_err(|_| Error::unavailable("the reader pool's lock is poisoned"))?
                .pop();
            match pooled {
                Some(connection) if connection.is_usable() => return Ok(connection),
                Some(_) => continue,
                None => return self.connect(),
            }
        }
    }

    pub(crate) fn return_reader(&self, connection: Connection) {
        if !connection.is_usable() {
            return;
        }
        if let Ok(mut readers) = self.readers.lock() {
            if readers.len() < READER_POOL {
                readers.push(connection);
            }
        }
    }

    /// Runs `sql` (several statements) outside any transaction, on a reader: for tests and tools.
    #[doc(hidden)]
    pub fn batch_execute(&self, sql: &str) -> Result<()> {
        let connection = self.take_reader()?;
        connection.batch(sql)?;
        self.return_reader(connection);
        Ok(())
    }

    /// Runs `reads` with every query `EXPLAIN`ed first, and returns the plans.
    #[doc(hidden)]
    pub fn explained(&self, reads: impl FnOnce(&PostgresStore)) -> Vec<Plan> {
        self.explaining.store(true, Ordering::SeqCst);
        reads(self);
        self.explaining.store(false, Ordering::SeqCst);
        self.plans.lock().map(|mut plans| std::mem::take(&mut *plans)).unwrap_or_default()
    }

    pub(crate) fn is_explaining(&self) -> bool {
        self.explaining.load(Ordering::Relaxed)
    }

    pub(crate) fn keep_plan(&self, plan: Plan) {
        if let Ok(mut plans) = self.plans.lock() {
            plans.push(plan);
        }
    }
}

/// `url` with its password replaced by `***`.
pub fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url
            .split_whitespace()
            .map(|pair| if pair.starts_with("password=") { "password=***" } else { pair })
            .collect::<Vec<_>>()
            .join(" ");
    };
    match rest.split_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl PostgresStore {
    /// Takes the next instance number from this node's block, and a new
    /// block from the sequence when it is spent (`fetch`, one round trip).
    pub(crate) fn next_number(&self, fetch: impl FnOnce() -> Result<u64>) -> Result<u64> {
        let mut numbers = self.numbers.lock().map_err(|_| Error::unavailable("the instance numbers' lock is poisoned"))?;
        if numbers.0 >= numbers.1 {
            let start = fetch()?;
            *numbers = (start, start + NUMBER_BLOCK);
        }
        let number = numbers.0;
        numbers.0 += 1;
        Ok(number)
    }
}

impl Store for PostgresStore {
    fn written(&self) -> Option<Result<store::Written>> {
        Some(self.wal_position().map(|position| self.counters.read(position)))
    }

    fn footprint(&self) -> Option<Result<Vec<store::Footprint>>> {
        // The schema's tables and indexes with their sizes; rows as
        // PostgreSQL's statistics count them, brought up to date first.
        let read = || -> Result<Vec<store::Footprint>> {
            let connection = self.take_reader()?;
            let tables = connection.wait(connection.client().query("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()", &[]))?;
            let tables: Vec<String> = tables.iter().map(|row| row.try_get(0)).collect::<std::result::Result<_, _>>().map_err(pg_error)?;
            if !tables.is_empty() {
                connection.batch(&format!("ANALYZE {}", tables.join(", ")))?;
            }
            let rows = connection.wait(connection.client().query(
                "SELECT c.relname::text, coalesce(t.relname, c.relname)::text, greatest(c.reltuples, 0)::bigint, pg_relation_size(c.oid)
                 FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                 LEFT JOIN pg_index AS i ON i.indexrelid = c.oid LEFT JOIN pg_class AS t ON t.oid = i.indrelid
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')
                 ORDER BY 4 DESC, 1",
                &[],
            ));
            self.return_reader(connection);
            rows?
                .iter()
                .map(|row| {
                    let count = |i: usize| row.try_get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0)).map_err(pg_error);
                    Ok(store::Footprint { name: row.try_get(0).map_err(pg_error)?, table: row.try_get(1).map_err(pg_error)?, rows: count(2)?, bytes: count(3)? })
                })
                .collect()
        };
        Some(read())
    }

    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let connection = self.take_reader()?;
        // A read transaction sees one snapshot.
        connection.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        Ok(Box::new(PostgresTxn::reader(self, connection)))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let mut writer = self.writer()?;
        if writer.as_ref().is_none_or(|c| !c.is_usable()) {
            // A new connection (the server restarted, the network dropped).
            *writer = None;
            *writer = Some(self.connect()?);
        }
        // `BEGIN` goes with the transaction's first read or its commit.
        Ok(Box::new(PostgresTxn::writer(self, writer)))
    }

    fn listen(&self, heard: Box<dyn Fn(store::News) + Send + Sync>) -> bool {
        let listener = listen::Listener {
            config: self.config.clone(),
            channel: self.channel.clone(),
            origin: self.origin.clone(),
            listening: self.listening.clone(),
        };
        listener.spawn(heard).is_ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(super::shown("postgres://baton:secret@db:5432/baton"), "postgres://baton:***@db:5432/baton");
        assert_eq!(super::shown("postgres://baton@db/baton"), "postgres://baton@db/baton");
        assert_eq!(super::shown("host=db password=secret user=baton"), "host=db password=*** user=baton");
    }
}

/// A PostgreSQL server for tests: `BATON_TEST_POSTGRES` when set (what
/// `scripts/test` starts), otherwise one that `scripts/postgres` starts on
/// first need and later test runs on this machine share, and empty databases in it.
#[doc(hidden)]
pub mod testing {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs `sql` on the server at `url`, on a runtime of its own.
    fn run(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute(sql).await
        })
    }

    /// Runs `sql` (statements, a dump) on the database at `url`.
    pub fn execute(url: &str, sql: &str) {
        run(url, sql).expect("the statements run");
    }

    /// The one number `sql` answers, on the server at `url`.
    pub fn count(url: &str, sql: &str) -> i64 {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime
            .block_on(async {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.query_one(sql, &[]).await
            })
            .expect("the query runs")
            .get(0)
    }

    /// The URL of the test server.
    pub fn server() -> String {
        if let Ok(url) = std::env::var("BATON_TEST_POSTGRES") {
            return url;
        }
        let dir = std::env::temp_dir().join("baton-test-postgres");
        std::fs::create_dir_all(&dir).expect("a folder for the test server's address");
        let lock = std::fs::File::create(dir.join("lock")).expect("the test server's lock file");
        lock.lock().expect("the test server's lock");
        if let Ok(url) = std::fs::read_to_string(dir.join("url")) {
            if run(url.trim(), "SELECT 1").is_ok() {
                return url.trim().to_string();
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres");
        let output = std::process::Command::new(script)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("scripts/postgres runs");
        assert!(output.status.success(), "scripts/postgres could not start a server");
        let url = String::from_utf8(output.stdout).expect("a URL").trim().to_string();
        std::fs::File::create(dir.join("url"))
            .and_then(|mut file| file.write_all(url.as_bytes()))
            .expect("the test server's address is kept");
        url
    }

    /// A new, empty database on the test server, by URL.
    pub fn fresh_database() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let server = server();
        let name = format!(
            "test_{}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros()),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        execute(&server, &format!("CREATE DATABASE {name}"));
        let (base, _) = server.rsplit_once('/').expect("a URL with a database");
        format!("{base}/{name}")
    }
}
