//! The SQLite store passes the store conformance suite, keeps what it
//! committed across a reopen, and refuses files from a newer schema.

use std::sync::atomic::{AtomicUsize, Ordering};

use store::{Store, Write};
use store_sqlite::SqliteStore;

fn temp_path(name: &str) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("baton-store-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_sqlite_store_passes_the_conformance_suite() {
    store::conformance::run(&|| Box::new(SqliteStore::open(&temp_path("suite.db")).expect("the store opens")));
}

#[test]
fn committed_rows_survive_a_reopen_and_uncommitted_ones_do_not() {
    let path = temp_path("reopen.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance("kept", "p", engine::Status::Running, 1)))).unwrap();
        txn.commit().unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance("lost", "p", engine::Status::Running, 2)))).unwrap();
        // The process "crashes" here: the transaction is never committed.
        std::mem::forget(txn);
    }
    let store = SqliteStore::open(&path).unwrap();
    let mut read = store.read().unwrap();
    assert!(read.instance("kept").unwrap().is_some());
    assert!(read.instance("lost").unwrap().is_none());
}

#[test]
fn a_file_from_a_newer_baton_is_refused() {
    let path = temp_path("newer.db");
    drop(SqliteStore::open(&path).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(connection);
    let error = SqliteStore::open(&path).err().expect("refused");
    assert!(error.is_corrupt() && error.to_string().contains("schema version 99"), "{error}");
}

/// A file written by the first schema (made by undoing every later step)
/// gets each step when a newer Baton opens it, and keeps its rows.
#[test]
fn a_file_from_schema_1_is_brought_up_to_date() {
    let path = temp_path("v1.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance("kept", "p", engine::Status::Running, 1)))).unwrap();
        txn.commit().unwrap();
    }
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch(
            "DROP INDEX incidents_by_instance; DROP TABLE labels; DROP INDEX subscriptions_by_opened; DROP INDEX messages_by_published;
             ALTER TABLE incidents DROP COLUMN resolved_at; ALTER TABLE incidents DROP COLUMN resolved_by; DROP TABLE tokens; ALTER TABLE jobs DROP COLUMN lease;
             PRAGMA user_version = 1",
        )
        .unwrap();
    drop(connection);
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.read().unwrap().instance("kept").unwrap().is_some());
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    let added: i64 = connection
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('incidents_by_instance', 'labels', 'labels_by_instance', 'subscriptions_by_opened', 'messages_by_published', 'tokens')", [], |row| row.get(0))
        .unwrap();
    assert_eq!((version, added), (store_sqlite::SCHEMA_VERSION, 6));
    let lease_column: i64 = connection.query_row("SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'lease'", [], |row| row.get(0)).unwrap();
    assert_eq!(lease_column, 1);
    let resolved_columns: i64 = connection
        .query_row("SELECT COUNT(*) FROM pragma_table_info('incidents') WHERE name IN ('resolved_at', 'resolved_by')", [], |row| row.get(0))
        .unwrap();
    assert_eq!(resolved_columns, 2);
}

/// Issue 9, item 9: two servers on one file are refused, not silently unsafe.
#[test]
fn a_second_store_on_one_file_is_refused_while_the_first_is_open() {
    let path = temp_path("locked.db");
    let first = SqliteStore::open(&path).unwrap();
    let refused = SqliteStore::open(&path).err().expect("the second open is refused");
    assert!(refused.is_unavailable());
    let message = refused.to_string();
    assert!(message.contains(&path.display().to_string()), "names the file: {message}");
    assert!(message.contains(&format!("process {}", std::process::id())), "names the holder: {message}");
    drop(first);
    let again = SqliteStore::open(&path).expect("the file is free once the first store is closed");
    drop(again);
}
