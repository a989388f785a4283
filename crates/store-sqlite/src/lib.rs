//! Baton's store in one SQLite file.
//!
//! One writer connection, used only by the runtime's commit loop: each write
//! transaction is `BEGIN IMMEDIATE` ... `COMMIT`, and the file runs in WAL
//! mode. The commit writes the transaction's frames to the log; making them
//! durable is [`Store::sync`]'s, an `fdatasync` of the log through a handle of
//! its own, which the runtime calls on another thread and waits for before it
//! answers anyone (`synchronous=NORMAL` on the writer: SQLite itself syncs
//! only around checkpoints). So a transaction acknowledged survives a crash or
//! a power cut, and the commit thread does not wait for the disk. Where the
//! log cannot be opened a second time the writer keeps `synchronous=FULL`,
//! and each commit syncs before it returns. Readers take connections from a
//! small pool and never block the writer. Rows are plain columns where queries need them; an instance's
//! state and a history entry are compact BLOBs (`store::compact`), or JSON
//! text in rows written before schema 15.

mod checkpointer;
mod history;
mod log_vfs;
mod schema;
mod txn;
mod variables;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;
use store::{Error, ReadTxn, Result, Store, WriteTxn};

pub use schema::{migrate_steps, SCHEMA_VERSION};
pub use txn::{vm_steps, SqliteTxn};

/// Readers kept open for reuse.
const READER_POOL: usize = 8;

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    counters: WriteCounters,
    /// The end of each instance's history, as far as the writer knows it ([`history::HistoryEnds`]).
    history_ends: history::HistoryEnds,
    /// The write-ahead log (`<file>-wal`), opened again for [`Store::sync`];
    /// `None` where it could not be, and the writer syncs at each commit.
    wal: Option<std::fs::File>,
    /// Copies the log into the file beside the writer (its hook asks).
    #[cfg_attr(not(test), allow(dead_code, reason = "held for its thread, which its drop stops"))]
    checkpointer: checkpointer::Checkpointer,
    /// `<file>.lock`, locked for as long as the store is open: one Baton per
    /// database file. Declared last, so dropped after the connections.
    _lock: std::fs::File,
}

/// What the writer connection wrote since the store opened ([`store::Written`]),
/// as of its last commit.
#[derive(Default)]
struct WriteCounters {
    statements: AtomicU64,
    commits: AtomicU64,
    rows: AtomicU64,
    wal_bytes: AtomicU64,
    /// The file's page size: a frame of the log holds one page.
    page_size: u64,
    /// Pages and rows the writer had written when the store opened
    /// (creating or migrating the file), which are not counted.
    pages_at_open: u64,
    rows_at_open: u64,
}

impl SqliteStore {
    /// Counts a commit of `statements` statements on `writer`.
    pub(crate) fn committed(&self, writer: &Connection, statements: u64) {
        self.counters.committed(writer, statements);
        // The file's size is looked at now and then, not at every commit.
        if self.counters.commits.load(Ordering::Relaxed) % 512 == 0 {
            size_writer_cache(writer);
        }
    }
}

/// Opens the write-ahead log of the file at `path` a second time, for
/// [`Store::sync`], and lets the writer's commits leave the syncing to it.
/// The writer has the log open already (SQLite opens it with the file's first
/// read, and keeps it, and this one handle, for as long as the writer is
/// open); were it missing, the writer keeps syncing at each commit.
///
/// `fdatasync` on any handle of a file writes all of its data that is not on
/// disk yet, whoever wrote it. A crash loses no more than before: SQLite
/// still syncs the log before a checkpoint copies it into the file and syncs
/// the file before it starts the log again, and a frame not yet synced is
/// one no one was answered about (each frame's checksum covers those before
/// it, so recovery stops where the durable ones end).
fn open_log(path: &Path, writer: &Connection) -> Result<Option<std::fs::File>> {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    let Ok(log) = std::fs::File::open(PathBuf::from(name)) else { return Ok(None) };
    writer.execute_batch("PRAGMA synchronous=NORMAL;").map_err(sql_error)?;
    Ok(Some(log))
}

/// KiB of pages the writer's cache may hold while the file is smaller than 1 GiB, and after.
const SMALL_CACHE_KIB: i64 = 4 * 1024;
const LARGE_CACHE_KIB: i64 = 64 * 1024;

/// Sizes the writer's page cache for the file as it is now.
///
/// While the file is smaller than 1 GiB, a large cache costs more than it
/// saves: when SQLite rebalances a b-tree it parks a page for a moment at
/// the number of the page holding the lock byte (at 1 GiB), which raises the
/// cache's highest page number above the file's size, and the commit then
/// drops pages past the end of the file by walking every page in the cache
/// (`pcache1TruncateUnsafe`): 15 % of the commit thread's samples with a
/// 64 MiB cache on a W1 run over HTTP, 2.4 % with 4 MiB, and 7 to 27 % less
/// commit-thread CPU per job in five of six alternated runs
/// (docs/benchmarks.md). From 1 GiB on that page lies inside the file, the
/// walk never happens, and the writer may keep 64 MiB: a batch of a few
/// hundred commands then neither spills dirty pages before its commit nor
/// reads back pages it just let go.
fn size_writer_cache(writer: &Connection) {
    let sizes = writer.query_row("SELECT page_count * page_size, cache_size FROM pragma_page_count, pragma_page_size, pragma_cache_size", [], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
    });
    let Ok((file, cache)) = sizes else { return };
    let kib = if file >= 1 << 30 { LARGE_CACHE_KIB } else { SMALL_CACHE_KIB };
    if cache != -kib {
        // A cache left as it was only costs time.
        let _ = writer.execute_batch(&format!("PRAGMA cache_size=-{kib};"));
    }
}

impl WriteCounters {
    fn committed(&self, writer: &Connection, statements: u64) {
        self.statements.fetch_add(statements, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.rows.store(writer.total_changes().saturating_sub(self.rows_at_open), Ordering::Relaxed);
        let pages = wal_pages_written(writer).saturating_sub(self.pages_at_open);
        self.wal_bytes.store(pages * (self.page_size + 24), Ordering::Relaxed);
    }
}

/// Pages the connection has written to the write-ahead log since it opened
/// (SQLite's own count), each in a frame of the page and a 24-byte header.
fn wal_pages_written(connection: &Connection) -> u64 {
    let (mut pages, mut highest) = (0, 0);
    // SAFETY: the handle is the live connection's, borrowed for the call;
    // sqlite3_db_status only reads counters into the two integers given.
    let status = unsafe {
        rusqlite::ffi::sqlite3_db_status(connection.handle(), rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE, &mut pages, &mut highest, 0)
    };
    if status == rusqlite::ffi::SQLITE_OK { u64::try_from(pages).unwrap_or(0) } else { 0 }
}

pub(crate) fn sql_error(error: rusqlite::Error) -> Error {
    match &error {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Error::unavailable(error.to_string())
        }
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::DiskFull
            ) =>
        {
            Error::unavailable(error.to_string())
        }
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) =>
        {
            Error::corrupt(error.to_string())
        }
        _ => Error::other(error.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    ///
    /// Only one store may have a file open at a time, across processes: two
    /// servers on one file would each believe they are its only writer. The
    /// store holds an exclusive lock on `<file>.lock` for its whole life (the
    /// operating system drops it when the process ends, however it ends), and
    /// refuses a file whose lock another process holds, naming that process.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let lock = lock(path)?;
        let mut writer = connect_writer(path)?;
        schema::migrate(&writer)?;
        // Readers keep SQLite's 2 MiB; the writer's cache is sized for the file.
        size_writer_cache(&writer);
        let checkpointer = checkpointer::Checkpointer::start(&mut writer, connect(path)?)?;
        let page_size = writer.pragma_query_value(None, "page_size", |row| row.get(0)).map_err(sql_error)?;
        let (pages_at_open, rows_at_open) = (wal_pages_written(&writer), writer.total_changes());
        let wal = open_log(path, &writer)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            counters: WriteCounters { page_size, pages_at_open, rows_at_open, ..WriteCounters::default() },
            history_ends: history::HistoryEnds::default(),
            wal,
            checkpointer,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer
            .lock()
            .map_err(|_| Error::unavailable("the writer connection's lock is poisoned"))
    }

    pub(crate) fn take_reader(&self) -> Result<Connection> {
        let pooled = self
            .readers
            .lock()
            .map_err(|_| Error::unavailable("the reader pool's lock is poisoned"))?
            .pop();
        match pooled {
            Some(connection) => Ok(connection),
            None => connect(&self.path),
        }
    }

    pub(crate) fn return_reader(&self, connection: Connection) {
        if let Ok(mut readers) = self.readers.lock() {
            if readers.len() < READER_POOL {
                readers.push(connection);
            }
        }
    }
}

/// Checks the structure of the database file at `path`, read-only (nothing
/// is written, not even a schema upgrade; a running server may hold it), and
/// returns the problems found (none: it is sound). Quick (`PRAGMA
/// quick_check`) reads every page and checks each b-tree; full
/// (`integrity_check`) also matches every index to its table. Both read the
/// whole file: seconds per gigabyte.
pub fn check_file(path: &Path, full: bool) -> Result<Vec<String>> {
    read_ahead(path);
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(sql_error)?;
    let pragma = if full { "PRAGMA integrity_check(100)" } else { "PRAGMA quick_check(100)" };
    let found: rusqlite::Result<Vec<String>> = connection
        .prepare(pragma)
        .and_then(|mut statement| statement.query_map([], |row| row.get::<_, String>(0))?.collect());
    Ok(match found {
        Ok(lines) => lines.into_iter().filter(|line| line != "ok").collect(),
        // So damaged that the check itself cannot run.
        Err(error) => vec![error.to_string()],
    })
}

/// Reads the file at `path` from start to end, in large reads, when it fits
/// in the memory the system says is available (less 512 MiB), so that the check
/// after it finds its pages in the page cache. The check walks each b-tree
/// in key order, which on a file not in the cache is one small random read
/// per page: measured on the session machine's virtual disk, 1.2 MB/s, so
/// hours for an 18.7 GB file, where reading it in order runs at 58 MB/s.
/// Where the size of memory cannot be read (not Linux), nothing is read.
fn read_ahead(path: &Path) {
    use std::io::Read;
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|info| {
        let line = info.lines().find(|line| line.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    let Ok(mut file) = std::fs::File::open(path) else { return };
    let fits = match (available, file.metadata()) {
        (Some(available), Ok(metadata)) => metadata.len().saturating_add(512 << 20) <= available,
        _ => false,
    };
    if !fits {
        return;
    }
    let mut buffer = vec![0u8; 4 << 20];
    while matches!(file.read(&mut buffer), Ok(n) if n > 0) {}
}

/// What [`repair_file`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Repair {
    /// The full check found nothing: the file was left alone.
    Sound,
    /// The file was rebuilt from its tables; the damaged one (and its log)
    /// was moved to `kept`, beside it.
    Rebuilt { kept: PathBuf },
}

/// Rebuilds a damaged database file from its tables, when the damage is
/// where it can be rebuilt from: an index (every index is made again from
/// its table) or pages no table uses. Each table's rows (with their rowids),
/// read through the write-ahead log so that every commit is in them, are
/// copied into a new file before any index exists there, so nothing is
/// read from the damaged file's indexes (SQLite's `VACUUM INTO` copies
/// indexes whole, damage and all); then the indexes and triggers are made,
/// and the new file must pass the full check. Only then does it take the
/// damaged file's place; the damaged file and its log are kept beside it
/// (`<file>.damaged`). Damage in a table's own pages fails the copy:
/// nothing is changed, and the error says so (restore from a backup then).
/// Takes the file's lock: no server may be running on it.
pub fn repair_file(path: &Path) -> Result<Repair> {
    let _lock = lock(path)?;
    if check_file(path, true)?.is_empty() {
        return Ok(Repair::Sound);
    }
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let rebuilt = with_suffix(".rebuilt");
    let _ = std::fs::remove_file(&rebuilt);
    if let Err(error) = copy_tables(path, &rebuilt) {
        let _ = std::fs::remove_file(&rebuilt);
        return Err(Error::corrupt(format!(
            "the damage is in the tables themselves ({error}), so the file cannot be rebuilt from them; nothing was changed: restore it from a backup"
        )));
    }
    let left = check_file(&rebuilt, true)?;
    if !left.is_empty() {
        let _ = std::fs::remove_file(&rebuilt);
        return Err(Error::corrupt(format!("the rebuilt file is not sound either ({}); nothing was changed: restore it from a backup", left.join("; "))));
    }
    let kept = with_suffix(".damaged");
    let moved = std::fs::rename(path, &kept)
        .and_then(|()| match std::fs::rename(with_suffix("-wal"), with_suffix(".damaged-wal")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .and_then(|()| {
            let _ = std::fs::remove_file(with_suffix("-shm"));
            std::fs::rename(&rebuilt, path)
        });
    moved.map_err(|e| Error::unavailable(format!("cannot put the rebuilt file {} in place of {}: {e}", rebuilt.display(), path.display())))?;
    Ok(Repair::Rebuilt { kept })
}

/// Makes `to` from the tables of `from` (read only): the tables and their
/// rows first, then the indexes, triggers and views, and the schema version.
fn copy_tables(from: &Path, to: &Path) -> rusqlite::Result<()> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(to, flags)?;
    let source = format!("file:{}?mode=ro", from.to_string_lossy().replace('?', "%3f").replace('#', "%23"));
    connection.execute("ATTACH DATABASE ? AS damaged", [source])?;
    let schema: Vec<(String, String, String)> = connection
        .prepare("SELECT type, name, sql FROM damaged.sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let without_rowid: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'damaged' AND wr")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    connection.execute_batch("BEGIN")?;
    for (_, table, sql) in schema.iter().filter(|(kind, ..)| kind == "table") {
        connection.execute_batch(sql)?;
        let columns: Vec<String> = connection
            .prepare("SELECT name FROM pragma_table_info(?, 'damaged')")?
            .query_map([table], |row| row.get::<_, String>(0))?
            .map(|name| name.map(|name| format!("\"{}\"", name.replace('"', "\"\""))))
            .collect::<rusqlite::Result<_>>()?;
        let mut columns = columns.join(", ");
        if !without_rowid.contains(table) {
            columns = format!("rowid, {columns}");
        }
        let table = table.replace('"', "\"\"");
        connection.execute_batch(&format!("INSERT INTO main.\"{table}\" ({columns}) SELECT {columns} FROM damaged.\"{table}\""))?;
    }
    for (_, _, sql) in schema.iter().filter(|(kind, ..)| kind != "table") {
        connection.execute_batch(sql)?;
    }
    let version: i64 = connection.query_row("PRAGMA damaged.user_version", [], |row| row.get(0))?;
    connection.execute_batch(&format!("PRAGMA main.user_version = {version}; COMMIT; DETACH DATABASE damaged"))?;
    Ok(())
}

/// Takes the exclusive lock of the database file at `path`, writing who holds it into the lock file.
fn lock(path: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot open the lock file {}: {e}",
                lock_path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another process".to_string()
            } else {
                holder.to_string()
            };
            return Err(Error::unavailable(format!(
                "{} is in use by {holder}; only one Baton may open a database file at a time (lock file {})",
                path.display(),
                lock_path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::unavailable(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            )));
        }
    }
    let holder = format!(
        "process {} ({})",
        std::process::id(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()));
    written.map_err(|e| {
        Error::unavailable(format!(
            "cannot write the lock file {}: {e}",
            lock_path.display()
        ))
    })?;
    Ok(file)
}

fn connect(path: &Path) -> Result<Connection> {
    let connection = Connection::open(path)
        .map_err(|e| Error::unavailable(format!("cannot open {}: {e}", path.display())))?;
    configure(connection)
}

/// The writer's connection: its log written a commit at a time ([`log_vfs`]).
fn connect_writer(path: &Path) -> Result<Connection> {
    log_vfs::register()?;
    let connection = Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), log_vfs::NAME)
        .map_err(|e| Error::unavailable(format!("cannot open {}: {e}", path.display())))?;
    configure(connection)
}

fn configure(connection: Connection) -> Result<Connection> {
    // WAL lets readers run beside the writer; FULL makes every commit
    // durable, until the writer hands syncing to `Store::sync` (`open_log`).
    // Each command runs in a savepoint, whose journal of the pages it changed
    // is kept in memory: in a file it cost a write call per page, a fifth of
    // the commit thread's time (it is never made durable either way).
    connection
        .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;")
        .map_err(sql_error)?;
    // The query planner's stability guarantee: a statement's plan never
    // depends on the values bound to it. Without it SQLite prepared a
    // statement again whenever a bound LIMIT or a value that a partial
    // index's condition might match changed (every activation: 3 % of the
    // commit thread). Every statement here is written for one index, and
    // `hot_queries_cost_the_same_over_100_000_waiting_timers_and_open_jobs`
    // checks the plans the hot ones get.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(sql_error)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

impl Store for SqliteStore {
    fn written(&self) -> Option<Result<store::Written>> {
        let counters = &self.counters;
        Some(Ok(store::Written {
            statements: counters.statements.load(Ordering::Relaxed),
            round_trips: 0,
            rows: counters.rows.load(Ordering::Relaxed),
            wal_bytes: counters.wal_bytes.load(Ordering::Relaxed),
            commits: counters.commits.load(Ordering::Relaxed),
        }))
    }

    fn footprint(&self) -> Option<Result<Vec<store::Footprint>>> {
        // SQLite's `dbstat` table: every page of the file with the b-tree
        // it belongs to. A table's rows are its leaves' cells (its interior
        // cells only point); an index's entries, and a `WITHOUT ROWID`
        // table's rows, are the cells of every page. Reads every page: a
        // report's, not a request's.
        let read = || -> Result<Vec<store::Footprint>> {
            let connection = self.take_reader()?;
            let found = connection
                .prepare(
                    "SELECT d.name, coalesce(m.tbl_name, d.name),
                            sum(CASE WHEN d.pagetype = 'leaf' OR (d.pagetype = 'internal' AND (m.type = 'index' OR m.sql LIKE '%WITHOUT ROWID%')) THEN d.ncell ELSE 0 END),
                            sum(d.pgsize)
                     FROM dbstat AS d LEFT JOIN sqlite_schema AS m ON m.name = d.name GROUP BY d.name ORDER BY 4 DESC, 1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map([], |row| Ok(store::Footprint { name: row.get(0)?, table: row.get(1)?, rows: row.get(2)?, bytes: row.get(3)? }))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(sql_error);
            self.return_reader(connection);
            found
        };
        Some(read())
    }

    fn defers_sync(&self) -> bool {
        self.wal.is_some()
    }

    fn sync(&self) -> Result<()> {
        match &self.wal {
            Some(log) => log.sync_data().map_err(|e| Error::unavailable(format!("writing the database's log to disk failed: {e}"))),
            None => Ok(()),
        }
    }

    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let connection = self.take_reader()?;
        // A read transaction sees one snapshot.
        connection.execute_batch("BEGIN").map_err(sql_error)?;
        Ok(Box::new(SqliteTxn::reader(self, connection)))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let writer = self.writer()?;
        writer.execute_batch("BEGIN IMMEDIATE").map_err(sql_error)?;
        Ok(Box::new(SqliteTxn::writer(self, writer)))
    }

    /// `VACUUM INTO` on a reader: one read transaction's snapshot, written
    /// compactly to the new file; the writer carries on meanwhile (WAL).
    fn backup(&self, to: &Path) -> Option<Result<()>> {
        Some((|| {
            let target = to.to_str().ok_or_else(|| Error::other(format!("{} is not a UTF-8 path", to.display())))?;
            let connection = self.take_reader()?;
            let copied = connection.execute("VACUUM INTO ?1", [target]).map_err(sql_error);
            self.return_reader(connection);
            copied.map(|_| ())
        })())
    }
}

#[cfg(test)]
mod syncing {
    use store::Store;

    /// The writer leaves syncing to `Store::sync` (SQLite syncs only around
    /// checkpoints), on a new file and on one opened again, whose log SQLite
    /// opened with its first read.
    #[test]
    fn the_writer_leaves_syncing_to_the_log_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        for _ in 0..2 {
            let store = crate::SqliteStore::open(&path).unwrap();
            assert!(store.defers_sync());
            let synchronous: i64 = store.writer.lock().unwrap().query_row("PRAGMA synchronous", [], |row| row.get(0)).unwrap();
            assert_eq!(synchronous, 1, "NORMAL");
            let mut txn = store.write().unwrap();
            txn.apply(store::Write::ScheduleDeletion { instance_id: "i".into(), at: 1 }).unwrap();
            txn.commit().unwrap();
            store.sync().unwrap();
        }
    }
}

/// A store on a new file in `dir`, with a table `filler (id, x)` for its tests to fill the log with.
#[cfg(test)]
pub(crate) fn store_with_filler(dir: &Path) -> SqliteStore {
    let store = SqliteStore::open(&dir.join("log.db")).unwrap();
    store.writer.lock().unwrap().execute_batch("CREATE TABLE filler (id INTEGER PRIMARY KEY, x BLOB)").unwrap();
    store
}

#[cfg(test)]
mod checkpoints {
    /// A transaction of 50 pages and more.
    fn commit_50_pages(writer: &rusqlite::Connection) {
        writer
            .execute_batch(
                "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
                 INSERT INTO filler (x) SELECT zeroblob(4000) FROM n; COMMIT;",
            )
            .unwrap();
    }

    /// The log keeps 1 000 pages and more (SQLite's default interval) until
    /// it reaches [`crate::checkpointer::CHECKPOINT_PAGES`]: a checkpoint copies each hot
    /// page once for all that time.
    #[test]
    fn the_log_is_copied_into_the_file_every_ten_thousand_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store_with_filler(dir.path());
        let writer = store.writer.lock().unwrap();
        for _ in 0..30 {
            commit_50_pages(&writer);
        }
        // (busy, frames in the log, frames copied): an automatic checkpoint
        // at 1 000 pages would have started the log again.
        let (_, frames, _): (i64, i64, i64) =
            writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).unwrap();
        assert!(frames > 1_000 && frames < i64::from(crate::checkpointer::CHECKPOINT_PAGES), "{frames} frames in the log");
    }

    /// Past the limit the writer's commit only asks: the checkpoint thread
    /// copies the log as far as it may (here a reader's snapshot holds half
    /// of it back, as the writer's appends meanwhile would), the writer's
    /// next commit past the limit copies what is left, and the log starts
    /// over at the commit after.
    #[test]
    fn the_log_is_copied_by_a_thread_of_its_own_and_then_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store_with_filler(dir.path());
        let writer = store.writer.lock().unwrap();
        let commit = || commit_50_pages(&writer);
        for _ in 0..100 {
            commit();
        }
        let reader = rusqlite::Connection::open(dir.path().join("log.db")).unwrap();
        reader.execute_batch("BEGIN; SELECT COUNT(*) FROM filler;").unwrap();
        // 205 commits of 50 pages and more in all: past the limit.
        for _ in 0..105 {
            commit();
        }
        // Had the writer copied the log itself, the thread would never finish one.
        let (frames, copied) = store.checkpointer.wait_for(1);
        assert!(frames >= crate::checkpointer::CHECKPOINT_PAGES, "{frames} frames in the log");
        assert!(copied > 4_000 && copied < frames, "the thread copied {copied} of {frames} frames");
        reader.execute_batch("COMMIT").unwrap();
        // The writer copies the rest; the next transaction starts the log over.
        commit();
        commit();
        let (_, frames, _): (i64, i64, i64) =
            writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).unwrap();
        assert!(frames < 1_000, "{frames} frames in the log: it did not start over");
    }
}

#[cfg(test)]
mod writer_cache {
    use super::{size_writer_cache, SMALL_CACHE_KIB};

    fn cache_kib(connection: &rusqlite::Connection) -> i64 {
        connection.query_row("PRAGMA cache_size", [], |row| row.get(0)).unwrap()
    }

    /// Below 1 GiB the writer keeps the small cache, from the open on, and a
    /// writer found in the large band while the file is small is moved back.
    #[test]
    fn a_file_below_a_gibibyte_gets_the_small_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("cache.db")).unwrap();
        let writer = store.writer.lock().unwrap();
        assert_eq!(cache_kib(&writer), -SMALL_CACHE_KIB);
        writer.execute_batch("PRAGMA cache_size=-65536;").unwrap();
        size_writer_cache(&writer);
        assert_eq!(cache_kib(&writer), -SMALL_CACHE_KIB);
    }
}
