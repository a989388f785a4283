//! Baton's store in one SQLite file.
//!
//! One writer connection, used only by the runtime's commit loop: each write
//! transaction is `BEGIN IMMEDIATE` ... `COMMIT`, and the file runs in WAL mode
//! with `synchronous=FULL`, so a committed transaction survives a crash or a
//! power cut. Readers take connections from a small pool and never block the
//! writer. Rows are plain columns where queries need them and JSON where they
//! do not (an instance's state, a history entry, variables).

mod schema;
mod txn;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;
use store::{Error, ReadTxn, Result, Store, WriteTxn};

pub use txn::SqliteTxn;

/// Readers kept open for reuse.
const READER_POOL: usize = 8;

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

pub(crate) fn sql_error(error: rusqlite::Error) -> Error {
    match &error {
        rusqlite::Error::SqliteFailure(e, _) if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::unavailable(error.to_string())
        }
        rusqlite::Error::SqliteFailure(e, _) if matches!(e.code, rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::DiskFull) => {
            Error::unavailable(error.to_string())
        }
        _ => Error::other(error.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let writer = connect(path)?;
        schema::migrate(&writer)?;
        Ok(SqliteStore { path: path.to_path_buf(), writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer.lock().map_err(|_| Error::unavailable("the writer connection's lock is poisoned"))
    }

    pub(crate) fn take_reader(&self) -> Result<Connection> {
        let pooled = self.readers.lock().map_err(|_| Error::unavailable("the reader pool's lock is poisoned"))?.pop();
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

fn connect(path: &Path) -> Result<Connection> {
    let connection = Connection::open(path).map_err(|e| Error::unavailable(format!("cannot open {}: {e}", path.display())))?;
    // WAL lets readers run beside the writer; FULL makes every commit durable.
    connection
        .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=OFF;")
        .map_err(sql_error)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

impl Store for SqliteStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let connection = self.take_reader()?;
        // A read transaction sees one snapshot.
        connection.execute_batch("BEGIN").map_err(sql_error)?;
        Ok(Box::new(SqliteTxn::reader(self, connection)))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let writer = self.writer()?;
        writer.execute_batch("BEGIN IMMEDIATE").map_err(sql_error)?;
        Ok(Box::new(SqliteTxn::writer(writer)))
    }
}
