//! The SQLite store passes the store conformance suite, keeps what it
//! committed across a reopen, and refuses files from a newer schema.

use std::sync::atomic::{AtomicUsize, Ordering};

use store::{InstanceRow, Store, Write};
use store_sqlite::SqliteStore;

fn temp_path(name: &str) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "baton-store-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    // A process id comes round again: what an earlier run left under it is not this test's.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_sqlite_store_passes_the_conformance_suite() {
    store::conformance::run(&|| {
        Box::new(SqliteStore::open(&temp_path("suite.db")).expect("the store opens"))
    });
}

#[test]
fn committed_rows_survive_a_reopen_and_uncommitted_ones_do_not() {
    let path = temp_path("reopen.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance(
            "kept",
            "p",
            engine::Status::Running,
            1,
        ))))
        .unwrap();
        txn.commit().unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance(
            "lost",
            "p",
            engine::Status::Running,
            2,
        ))))
        .unwrap();
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
    connection
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    drop(connection);
    let error = SqliteStore::open(&path).err().expect("refused");
    assert!(
        error.is_corrupt() && error.to_string().contains("schema version 99"),
        "{error}"
    );
}

/// A file written by the first schema gets each later step when a newer
/// Baton opens it, and keeps its rows (as the default tenant's).
#[test]
fn a_file_from_schema_1_is_brought_up_to_date() {
    let path = temp_path("v1.db");
    let connection = rusqlite::Connection::open(&path).unwrap();
    store_sqlite::migrate_steps(&connection, 0, 1).unwrap();
    let row = store::conformance::instance("kept", "p", engine::Status::Running, 1);
    connection
        .execute(
            "INSERT INTO instances (id, process_id, version, status, business_key, parent_id, started_at, ended_at, incidents, waiting,
             start_key, update_count, history_count, state) VALUES ('kept', 'p', 1, 'running', NULL, NULL, 1, NULL, 0, '[]', NULL, 1, 0, ?)",
            [serde_json::to_string(&row.state).unwrap()],
        )
        .unwrap();
    connection
        .execute_batch(
            "INSERT INTO workflows VALUES ('p', 1, 1, NULL, NULL, '<definitions/>', 1);
             INSERT INTO requests VALUES ('r-1', 'kept');
             INSERT INTO start_timers VALUES ('p', 's', 1, 50, NULL);",
        )
        .unwrap();
    drop(connection);
    let store = SqliteStore::open(&path).unwrap();
    let mut read = store.read().unwrap();
    assert_eq!(
        read.instance("kept").unwrap(),
        Some(InstanceRow { number: 1, ..row }),
        "the row comes back whole, as the default tenant's, numbered by its place in the file"
    );
    assert_eq!(read.last_instance_number().unwrap(), 1);
    assert!(read
        .workflow(store::DEFAULT_TENANT, "p", 1)
        .unwrap()
        .is_some());
    assert_eq!(
        read.instance_by_request(store::DEFAULT_TENANT, "r-1")
            .unwrap()
            .as_deref(),
        Some("kept")
    );
    assert_eq!(
        read.start_timers()
            .unwrap()
            .iter()
            .map(|t| t.tenant.as_str())
            .collect::<Vec<_>>(),
        [store::DEFAULT_TENANT]
    );
    drop(read);
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, store_sqlite::SCHEMA_VERSION);
}

/// Issue 9, item 9: two servers on one file are refused, not silently unsafe.
#[test]
fn a_second_store_on_one_file_is_refused_while_the_first_is_open() {
    let path = temp_path("locked.db");
    let first = SqliteStore::open(&path).unwrap();
    let refused = SqliteStore::open(&path)
        .err()
        .expect("the second open is refused");
    assert!(refused.is_unavailable());
    let message = refused.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "names the file: {message}"
    );
    assert!(
        message.contains(&format!("process {}", std::process::id())),
        "names the holder: {message}"
    );
    drop(first);
    let again = SqliteStore::open(&path).expect("the file is free once the first store is closed");
    drop(again);
}
