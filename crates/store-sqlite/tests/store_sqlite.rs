//! The SQLite store passes the store conformance suite, keeps what it
//! committed across a reopen, and refuses files from a newer schema.

use std::sync::atomic::{AtomicUsize, Ordering};

use store::{InstanceFilter, InstanceRow, PageRequest, Store, Write};
use store_sqlite::SqliteStore;

/// A file named `name` in a new folder, removed with the folder when the test ends.
fn temp_path(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix("baton-store-test-").tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// A new file `name` as a Baton of schema `version` left it, and a plain
/// connection to it (no store: the rows an older Baton wrote go in by hand).
fn file_at_schema(name: &str, version: i64) -> (tempfile::TempDir, std::path::PathBuf, rusqlite::Connection) {
    let (dir, path) = temp_path(name);
    let connection = rusqlite::Connection::open(&path).unwrap();
    store_sqlite::migrate_steps(&connection, 0, version).unwrap();
    (dir, path, connection)
}

#[test]
fn the_sqlite_store_passes_the_conformance_suite() {
    let (dir, _) = temp_path("suite.db");
    let next = AtomicUsize::new(0);
    store::conformance::run(&|| {
        let path = dir.path().join(format!("suite-{}.db", next.fetch_add(1, Ordering::SeqCst)));
        Box::new(SqliteStore::open(&path).expect("the store opens"))
    });
}

#[test]
fn committed_rows_survive_a_reopen_and_uncommitted_ones_do_not() {
    let (_dir, path) = temp_path("reopen.db");
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
    let (_dir, path) = temp_path("newer.db");
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
    let (_dir, path, connection) = file_at_schema("v1.db", 1);
    let mut row = store::conformance::instance("kept", "p", engine::Status::Running, 1);
    row.state.variables.insert("order".into(), serde_json::json!({"id": "A-1", "lines": [1, 2]}));
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
    let by_order = InstanceFilter { variable: Some(("order".into(), serde_json::json!({"lines": [1, 2], "id": "A-1"}))), ..InstanceFilter::default() };
    assert_eq!(read.instances(&by_order, &PageRequest::first(10)).unwrap().items.len(), 1, "its variables were indexed as the file was upgraded");
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

/// Schema 18 keeps jobs in their key's B-tree and finds an instance's jobs
/// by the key's prefix: jobs written by schema 17 come through whole, an
/// instance's list holds its own jobs and not those of an instance whose id
/// starts the same, and deleting an instance deletes its jobs alone.
/// Schema 30 keeps a completed task's candidate groups: the completed
/// tasks a file of schema 29 holds are listed by group after it opens.
#[test]
fn completed_tasks_of_schema_29_are_listed_by_their_groups() {
    let (_dir, path, connection) = file_at_schema("v29.db", 29);
    for (key, groups, created, completed) in [("i1.4", r#"["auditors","clerks"]"#, 10, Some(20)), ("i2.4", r#"["auditors"]"#, 30, None)] {
        connection
            .execute(
                &format!("INSERT INTO tasks ({}) VALUES (?, 'i', 4, 'p', 'review', NULL, ?, '[]', NULL, NULL, NULL, NULL, ?, 'default', ?, NULL)", store_sql::TASK_COLUMNS),
                rusqlite::params![key, groups, created, completed],
            )
            .unwrap();
    }
    // What schema 29 kept of them: the open task's group.
    connection.execute("INSERT INTO task_candidates (task_key, grp, task_created_at) VALUES ('i2.4', 'auditors', 30)", []).unwrap();
    drop(connection);
    let store = SqliteStore::open(&path).unwrap();
    let mut read = store.read().unwrap();
    let mut of_group = |group: &str, state: store::TaskState| {
        let filter = store::TaskFilter { candidate_group: Some(group.into()), state, ..store::TaskFilter::default() };
        read.tasks(&filter, &PageRequest::first(10)).unwrap().items.into_iter().map(|t| t.key).collect::<Vec<_>>()
    };
    assert_eq!(of_group("auditors", store::TaskState::Completed), ["i1.4"]);
    assert_eq!(of_group("clerks", store::TaskState::Completed), ["i1.4"]);
    assert_eq!(of_group("auditors", store::TaskState::Open), ["i2.4"]);
    assert_eq!(of_group("auditors", store::TaskState::All), ["i1.4", "i2.4"]);
    assert!(of_group("clerks", store::TaskState::Open).is_empty());
}

#[test]
fn jobs_of_schema_17_are_kept_and_found_by_their_instance() {
    let (_dir, path, connection) = file_at_schema("v17.db", 17);
    for (key, instance, local) in [("i1.3", "i1", 3), ("i1.12", "i1", 12), ("i10.3", "i10", 3)] {
        connection
            .execute(
                "INSERT INTO jobs (key, instance_id, local_key, process_id, element_id, job_type, retries, state, not_before,
                 error_message, worker, lease_until, created_at, lease, tenant)
                 VALUES (?, ?, ?, 'p', 'task', 'work', 3, 'activatable', NULL, 'failed once', 'w', 40, ?, 'lease-1', 'default')",
                rusqlite::params![key, instance, local, local * 10],
            )
            .unwrap();
    }
    drop(connection);
    let store = SqliteStore::open(&path).unwrap();
    let mut read = store.read().unwrap();
    let job = read.job("i1.12").unwrap().expect("kept");
    assert_eq!(
        (job.instance_id.as_str(), job.local_key, job.error_message.as_deref(), job.lease.as_deref(), job.created_at),
        ("i1", 12, Some("failed once"), Some("lease-1"), 120)
    );
    let of = |read: &mut Box<dyn store::ReadTxn + '_>, instance: &str| {
        let filter = store::JobFilter { instance_id: Some(instance.into()), ..store::JobFilter::default() };
        read.jobs(&filter, &PageRequest::first(10)).unwrap().items.into_iter().map(|j| j.key).collect::<Vec<_>>()
    };
    assert_eq!(of(&mut read, "i1"), ["i1.3", "i1.12"], "in the order they were created");
    assert_eq!(of(&mut read, "i10"), ["i10.3"]);
    drop(read);
    let mut write = store.write().unwrap();
    write.apply(Write::DeleteInstance { id: "i1".into() }).unwrap();
    write.commit().unwrap();
    let mut read = store.read().unwrap();
    assert_eq!((of(&mut read, "i1").len(), of(&mut read, "i10")), (0, vec!["i10.3".to_string()]));
}

/// Step 19 holds the timers and jobs of the instances suspended when it
/// runs, so that the polls' new indexes leave them out; a running
/// instance's stay free.
#[test]
fn step_19_holds_what_suspended_instances_wait_for() {
    let (_dir, path, connection) = file_at_schema("v18.db", 18);
    connection
        .execute_batch(
            "INSERT INTO instances (id, process_id, version, status, started_at, incidents, waiting, update_count, history_count, state, number)
             VALUES ('run', 'p', 1, 'running', 1, 0, '[]', 1, 0, '{}', 1), ('sus', 'p', 1, 'suspended', 1, 0, '[]', 1, 0, '{}', 2);
             INSERT INTO timers (instance_id, local_key, element_id, due_at) VALUES ('sus', 1, 't', 5), ('run', 1, 't', 9);
             INSERT INTO jobs (key, instance_id, local_key, process_id, element_id, job_type, retries, state, created_at)
             VALUES ('sus.2', 'sus', 2, 'p', 'task', 'work', 3, 'activatable', 1), ('run.2', 'run', 2, 'p', 'task', 'work', 3, 'activatable', 2);",
        )
        .unwrap();
    drop(connection);
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut select = raw.prepare("SELECT instance_id, held FROM timers UNION ALL SELECT instance_id, held FROM jobs ORDER BY 1, 2").unwrap();
    let held: Vec<(String, i64)> = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect();
    let expected: Vec<(String, i64)> = [("run", 0), ("run", 0), ("sus", 1), ("sus", 1)].map(|(id, held)| (id.to_string(), held)).to_vec();
    assert_eq!(held, expected);
    let mut read = store.read().unwrap();
    assert_eq!(read.next_due().unwrap(), Some(9));
    assert_eq!(read.activatable_jobs("work", &None, 10, 10).unwrap().iter().map(|j| j.key.as_str()).collect::<Vec<_>>(), ["run.2"]);
}

/// A file whose job keys are not their instance's id, a dot and the job's
/// number cannot take step 18 (its instances' jobs would not be found):
/// it is refused by name, and left as it was.
#[test]
fn a_job_key_of_another_form_stops_step_18() {
    let (_dir, path, connection) = file_at_schema("odd.db", 17);
    connection
        .execute_batch(
            "INSERT INTO jobs (key, instance_id, local_key, process_id, element_id, job_type, retries, state, created_at)
             VALUES ('odd-7', 'i1', 7, 'p', 'task', 'work', 3, 'activatable', 1)",
        )
        .unwrap();
    drop(connection);
    let error = SqliteStore::open(&path).err().expect("refused");
    assert!(error.is_corrupt() && error.to_string().contains("job odd-7"), "{error}");
    let connection = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    let kept: i64 = connection.query_row("SELECT count(*) FROM jobs WHERE key = 'odd-7'", [], |row| row.get(0)).unwrap();
    assert_eq!((version, kept), (17, 1));
}

/// Issue 16, item 2: states and history entries are stored compactly from
/// schema 15 on. A file that holds them as JSON text (schema 14) reads the
/// same, history filters included; a row written again takes the compact form.
#[test]
fn json_rows_of_schema_14_read_and_are_rewritten_compactly() {
    let (_dir, path, connection) = file_at_schema("v14.db", 14);
    let mut row = store::conformance::instance("old", "p", engine::Status::Running, 1);
    row.number = 1;
    row.history_count = 2;
    row.state.variables.insert("n".into(), serde_json::json!(5));
    connection
        .execute(
            "INSERT INTO instances (id, process_id, version, status, business_key, parent_id, started_at, ended_at, incidents, waiting,
             start_key, update_count, history_count, state, tenant, number) VALUES ('old', 'p', 1, 'running', NULL, NULL, 1, NULL, 0, '[]', NULL, 1, 2, ?, 'default', 1)",
            [serde_json::to_string(&row.state).unwrap()],
        )
        .unwrap();
    connection.execute("INSERT INTO variables VALUES ('n', 'number', 5, 'old')", []).unwrap();
    // The conformance suite's entry (a task completed), with the event asked for.
    let entry = |element_id: &str, event: engine::HistoryEvent| {
        let mut entry = store::conformance::history_row("old", 1, element_id).entry;
        entry.event = event;
        entry
    };
    for (seq, written) in [(1, entry("a", engine::HistoryEvent::Activated)), (2, entry("b", engine::HistoryEvent::Completed))] {
        connection
            .execute("INSERT INTO history (instance_id, seq, entry) VALUES ('old', ?, ?)", rusqlite::params![seq, serde_json::to_string(&written).unwrap()])
            .unwrap();
    }
    drop(connection);

    let store = SqliteStore::open(&path).unwrap();
    let mut read = store.read().unwrap();
    assert_eq!(read.instance("old").unwrap(), Some(row.clone()));
    let completed = store::HistoryFilter { event: Some(engine::HistoryEvent::Completed), ..store::HistoryFilter::default() };
    let found = read.history("old", &completed, &PageRequest::first(10)).unwrap().items;
    assert_eq!(found.iter().map(|h| (h.seq, h.entry.clone())).collect::<Vec<_>>(), [(2, entry("b", engine::HistoryEvent::Completed))]);
    drop(read);

    // Written again, with a changed variable: its old entry in the index is
    // found from the JSON state, and the new row is a BLOB.
    row.state.variables.insert("n".into(), serde_json::json!(6));
    row.update_count = 2;
    let mut write = store.write().unwrap();
    write.apply(Write::IndexVariables { instance_id: "old".into(), changes: store::VariableChanges::Whole(row.state.variables.clone()) }).unwrap();
    write.put_instance(&row).unwrap();
    write
        .apply(Write::AppendHistory(store::HistoryRow { instance_id: "old".into(), seq: 3, entry: entry("c", engine::HistoryEvent::Completed) }))
        .unwrap();
    write.commit().unwrap();
    let mut read = store.read().unwrap();
    assert_eq!(read.instance("old").unwrap(), Some(row.clone()));
    let found = read.history("old", &completed, &PageRequest::first(1)).unwrap();
    assert_eq!((found.items.len(), found.items[0].seq, found.next.is_some()), (1, 2, true), "a page of one, with more after it");
    let rest = read.history("old", &completed, &PageRequest { after: found.next, ..PageRequest::first(1) }).unwrap();
    assert_eq!(rest.items.iter().map(|h| h.seq).collect::<Vec<_>>(), [3]);
    let by = |value: i64| InstanceFilter { variable: Some(("n".into(), serde_json::json!(value))), ..InstanceFilter::default() };
    assert_eq!(read.instances(&by(5), &PageRequest::first(10)).unwrap().items.len(), 0, "the old entry went");
    assert_eq!(read.instances(&by(6), &PageRequest::first(10)).unwrap().items.len(), 1);
    drop(read);
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let kinds: Vec<String> = connection
        .prepare("SELECT typeof(state) FROM instances UNION ALL SELECT typeof(entry) FROM history ORDER BY 1")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["blob", "blob", "text", "text"], "the rewritten state and the new entry are compact; the old entries stay as they were");
}

/// Issue 16: a transaction writes each instance's history as one row, not a
/// row per entry; a row holds at most 64 entries, and pages read across rows
/// in order.
#[test]
fn history_is_written_a_row_per_instance_and_transaction() {
    let (_dir, path) = temp_path("chunks.db");
    let store = SqliteStore::open(&path).unwrap();
    let append = |instance: &str, seqs: std::ops::RangeInclusive<u64>| {
        let mut write = store.write().unwrap();
        for seq in seqs {
            write.apply(Write::AppendHistory(store::conformance::history_row(instance, seq, &format!("e{seq}")))).unwrap();
        }
        write.commit().unwrap();
    };
    append("a", 1..=4);
    append("b", 1..=3);
    append("a", 5..=204);
    append("a", 205..=205);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let rows: Vec<(String, u64, u64)> = connection
        .prepare("SELECT instance_id, seq, entries FROM history ORDER BY instance_id, seq")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("a".to_string(), 4, 4),
            ("a".into(), 68, 64),
            ("a".into(), 132, 64),
            ("a".into(), 196, 64),
            ("a".into(), 204, 8),
            ("a".into(), 205, 1),
            ("b".into(), 3, 3),
        ]
    );
    drop(connection);
    let mut read = store.read().unwrap();
    let mut seqs = Vec::new();
    let mut after = None;
    loop {
        let page = read.history("a", &store::HistoryFilter::default(), &PageRequest { after, ..PageRequest::first(50) }).unwrap();
        seqs.extend(page.items.iter().map(|h| {
            assert_eq!(h.entry.element_id, format!("e{}", h.seq));
            h.seq
        }));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seqs, (1..=205).collect::<Vec<_>>());
}

/// Issue 16: an instance's history appended again after a commit of the
/// same store's writer is written without first looking for stored rows
/// after it (one statement, not two); an entry written again with a seq
/// already stored is still found and merged, also over rows written earlier
/// in the same transaction, after a rollback to a savepoint undid rows the
/// transaction had written, and after the instance was deleted and its id
/// used again.
#[test]
fn history_appended_after_the_writers_own_commit_is_not_looked_up_first() {
    let (_dir, path) = temp_path("ends.db");
    let store = SqliteStore::open(&path).unwrap();
    let statements = || store.written().unwrap().unwrap().statements;
    let append = |seqs: &[(u64, &str)]| {
        let before = statements();
        let mut write = store.write().unwrap();
        for (seq, name) in seqs {
            write.apply(Write::AppendHistory(store::conformance::history_row("a", *seq, name))).unwrap();
        }
        write.commit().unwrap();
        statements() - before
    };
    let read = || -> Vec<(u64, String)> {
        let mut read = store.read().unwrap();
        let page = read.history("a", &store::HistoryFilter::default(), &PageRequest::first(100)).unwrap();
        page.items.into_iter().map(|h| (h.seq, h.entry.element_id)).collect()
    };
    assert_eq!(append(&[(1, "e1"), (2, "e2")]), 2, "a first append looks first");
    assert_eq!(append(&[(3, "e3")]), 1, "appended after the writer's own commit: the insert alone");
    assert_eq!(append(&[(4, "e4"), (5, "e5")]), 1);
    // Written again: looked up, and merged.
    assert_eq!(append(&[(4, "again")]), 4, "the lookup, the row holding 4 and 5 read and deleted, one inserted");
    assert_eq!(read(), [(1, "e1"), (2, "e2"), (3, "e3"), (4, "again"), (5, "e5")].map(|(seq, name)| (seq, name.to_string())));
    // Rows the transaction wrote in a savepoint (a read of history writes
    // what is pending) and rolled back: nothing is learned from it.
    let mut write = store.write().unwrap();
    write.savepoint().unwrap();
    write.apply(Write::AppendHistory(store::conformance::history_row("a", 6, "undone"))).unwrap();
    write.history("a", &store::HistoryFilter::default(), &PageRequest::first(10)).unwrap();
    write.rollback_to_savepoint().unwrap();
    write.commit().unwrap();
    assert_eq!(append(&[(6, "e6")]), 2, "the end learned (6, undone) is past the stored one: it looks");
    assert_eq!(append(&[(6, "e6 again")]), 4, "written again: looked up and merged");
    // Written twice in one transaction (a savepoint writes what is pending),
    // the second time over the first: what the writer knew from before is
    // no longer the end.
    let mut write = store.write().unwrap();
    write.apply(Write::AppendHistory(store::conformance::history_row("a", 7, "e7"))).unwrap();
    write.savepoint().unwrap();
    write.release_savepoint().unwrap();
    write.apply(Write::AppendHistory(store::conformance::history_row("a", 7, "e7 again"))).unwrap();
    write.commit().unwrap();
    assert_eq!(read().last(), Some(&(7, "e7 again".to_string())));
    assert_eq!(read().len(), 7);
    // Deleted, and the id used again: the old end is not trusted.
    let mut write = store.write().unwrap();
    write.apply(Write::DeleteInstance { id: "a".into() }).unwrap();
    write.commit().unwrap();
    assert_eq!(append(&[(1, "new")]), 2, "after a deletion it looks again");
    assert_eq!(read(), [(1, "new".to_string())]);
}

/// Issue 16, item 2: what the store reports it wrote is what reached the
/// file: the bytes of its write-ahead log (a 32-byte header, then a frame per
/// page written), the statements and the rows.
#[test]
fn what_the_store_says_it_wrote_is_what_the_log_holds() {
    let (_dir, path) = temp_path("written.db");
    // Made and closed first: the log starts empty when the file is opened again.
    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open(&path).unwrap();
    let before = store.written().unwrap().unwrap();
    assert_eq!(before, store::Written::default(), "nothing written yet");
    let mut write = store.write().unwrap();
    for n in 0..20 {
        let mut row = store::conformance::instance(&format!("i-{n}"), "p", engine::Status::Running, n);
        row.number = u64::try_from(n).unwrap() + 1;
        write.put_instance(&row).unwrap();
    }
    write.commit().unwrap();
    let written = store.written().unwrap().unwrap().since(&before);
    // Each instance is looked up (is it stored already?) and inserted; the
    // twenty move one row of `instance_counts`, written once at the commit.
    assert_eq!((written.statements, written.rows, written.commits), (41, 21, 1), "{written:?}");
    let log = std::fs::metadata(path.with_extension("db-wal")).unwrap().len();
    assert_eq!(log, 32 + written.wal_bytes, "{written:?}");
}

/// Issue 16, item 2: an instance written again in place sets only what
/// changed; its counts, its indexes and every column still follow it,
/// including one the update in place does not set (then it is written whole).
#[test]
fn an_instance_written_again_keeps_its_counts_indexes_and_columns() {
    let (_dir, path) = temp_path("again.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut row = store::conformance::instance("a", "p", engine::Status::Running, 1);
    row.number = 1;
    let write = |row: &InstanceRow, stored: Option<u64>| {
        let mut write = store.write().unwrap();
        write.put_instance_if(row, stored).unwrap();
        write.commit().unwrap();
    };
    let counts = || {
        let mut read = store.read().unwrap();
        let mut counts: Vec<_> = read.instance_counts(&None).unwrap().into_iter().map(|c| (c.status, c.with_incidents, c.count)).collect();
        counts.sort_by_key(|c| format!("{c:?}"));
        counts
    };
    write(&row, None);
    assert_eq!(counts(), [(engine::Status::Running, false, 1)]);
    // In place, status unchanged.
    row.update_count = 2;
    row.history_count = 3;
    row.state.variables.insert("n".into(), serde_json::json!(1));
    write(&row, Some(1));
    // In place, an incident and then the end: the counts move.
    row.update_count = 3;
    row.incidents = 1;
    write(&row, Some(2));
    assert_eq!(counts(), [(engine::Status::Running, true, 1)]);
    row.update_count = 4;
    row.incidents = 0;
    row.status = engine::Status::Completed;
    row.ended_at = Some(9);
    write(&row, Some(3));
    assert_eq!(counts(), [(engine::Status::Completed, false, 1)]);
    // A column the update in place leaves alone: the row is written whole.
    row.update_count = 5;
    row.business_key = Some("order-7".into());
    write(&row, Some(4));
    let mut read = store.read().unwrap();
    assert_eq!(read.instance("a").unwrap(), Some(row.clone()));
    let by_status = InstanceFilter { status: Some(engine::Status::Completed), ..InstanceFilter::default() };
    assert_eq!(read.instances(&by_status, &PageRequest::first(10)).unwrap().items.len(), 1, "found through the status index");
    let by_key = InstanceFilter { business_key: Some("order-7".into()), ..InstanceFilter::default() };
    assert_eq!(read.instances(&by_key, &PageRequest::first(10)).unwrap().items.len(), 1, "found through the business key's index");
}

/// Issue 9, item 9: two servers on one file are refused, not silently unsafe.
#[test]
fn a_second_store_on_one_file_is_refused_while_the_first_is_open() {
    let (_dir, path) = temp_path("locked.db");
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

/// Issue 16, item 1: no step costs more because the database is bigger.
/// With 100 000 running instances, each waiting on a timer, with an open
/// job and a scheduled deletion, every query the commit loop, the workers'
/// polls and the API's first pages make visits a few rows, counted by
/// SQLite's own virtual machine steps (not by time): a scan of one of these
/// tables would take hundreds of thousands. The `variable=` filter too: it
/// read every instance's state (700 000 steps here) until the variables
/// had an index of their own.
#[test]
fn hot_queries_cost_the_same_over_100_000_waiting_timers_and_open_jobs() {
    use store::*;
    const ROWS: i64 = 100_000;
    /// Generous for a page of up to a hundred rows through an index, far below a scan.
    const MOST_STEPS: u64 = 20_000;
    let (_dir, path) = temp_path("big.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance("template", "p", engine::Status::Running, 0)))).unwrap();
        txn.commit().unwrap();
    }
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        let columns = store_sql::INSTANCE_COLUMNS;
        let copied: Vec<String> = columns
            .split(", ")
            .map(|c| match c {
                "id" => "'i' || n.i".to_string(),
                "number" => "n.i".to_string(),
                "started_at" => "n.i".to_string(),
                other => format!("t.{other}"),
            })
            .collect();
        // Another tenant's 32 instances, started after the 100 000.
        let acme_instances: Vec<String> = columns
            .split(", ")
            .map(|c| match c {
                "id" => "'a' || n.i".to_string(),
                "number" => format!("{ROWS} + n.i"),
                "started_at" => format!("{ROWS} + n.i"),
                "tenant" => "'acme'".to_string(),
                other => format!("t.{other}"),
            })
            .collect();
        raw.execute_batch(&format!(
            "BEGIN;
             CREATE TEMP TABLE n (i INTEGER PRIMARY KEY);
             WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {ROWS}) INSERT INTO n SELECT i FROM k;
             INSERT INTO instances ({columns}) SELECT {} FROM n, instances AS t WHERE t.id = 'template';
             INSERT INTO instances ({columns}) SELECT {acme_instances} FROM n, instances AS t WHERE t.id = 'template' AND n.i <= 32;
             INSERT INTO timers (instance_id, local_key, element_id, due_at, tenant) SELECT 'i' || i, 1, 'wait', 10000000 + i, 'default' FROM n;
             INSERT INTO timers (instance_id, local_key, element_id, due_at, tenant) SELECT 'i' || i, 7, 'wait', 10000000 + {ROWS} + i, 'acme' FROM n WHERE i <= 32;
             INSERT INTO subscriptions ({subscriptions}) SELECT 'i' || i, 3, 'catch', 'message', 'paid', 'k' || i, i, 'default' FROM n;
             INSERT INTO subscriptions ({subscriptions}) SELECT 'i' || i, 8, 'catch', 'message', 'paid', 'k' || i, {ROWS} + i, 'acme' FROM n WHERE i <= 32;
             INSERT INTO incidents ({incidents}) SELECT 'i' || i || '.6', 'i' || i, 6, 'p', 'task', 'job_failed', 'boom', i, CASE WHEN i <= {ROWS} - 32 THEN i + 1 END, NULL, 'default' FROM n;
             INSERT INTO incidents ({incidents}) SELECT 'i' || i || '.11', 'i' || i, 11, 'q', 'task', 'job_failed', 'boom', 3 * {ROWS} + i, 3 * {ROWS} + i + 1, NULL, 'default' FROM n WHERE i <= 32;
             UPDATE instances SET incidents = 1 WHERE number > {ROWS} - 32 AND number <= {ROWS};
             INSERT INTO jobs ({}) SELECT 'i' || i || '.2', 'i' || i, 2, 'p', 'task', 'work', 3, 'activatable', NULL, NULL, NULL, NULL, i, NULL, 'default' FROM n;
             INSERT INTO jobs ({}) SELECT 'i' || i || '.9', 'i' || i, 9, 'p', 'task', 'work', 3, 'activatable', NULL, NULL, NULL, NULL, {ROWS} + i, NULL, 'acme' FROM n WHERE i <= 32;
             INSERT INTO jobs ({}) SELECT 'i' || i || '.10', 'i' || i, 10, 'p', 'task', 'mail', 0, 'failed', NULL, 'down', NULL, NULL, 2 * {ROWS} + i, NULL, 'default' FROM n WHERE i <= 32;
             INSERT INTO tasks ({tasks}) SELECT 'i' || i || '.4', 'i' || i, 4, 'p', 'review', CASE WHEN i > {ROWS} - 32 THEN 'alice' END, '[]', '[]',
                      NULL, NULL, NULL, NULL, i, 'default', NULL, NULL FROM n;
             INSERT INTO tasks ({tasks}) SELECT 'i' || i || '.5', 'i' || i, 5, 'p', 'review', NULL, '[\"reviewers\"]', '[]', NULL, NULL, NULL, NULL, {ROWS} + i, 'acme', NULL, NULL
               FROM n WHERE i <= 32;
             INSERT INTO tasks ({tasks}) SELECT 'i' || i || '.12', 'i' || i, 12, 'q', 'sign', NULL, '[]', '[]', NULL, NULL, NULL, NULL, 3 * {ROWS} + i, 'default', NULL, NULL
               FROM n WHERE i <= 32;
             INSERT INTO tasks ({tasks}) SELECT 'i' || i || '.13', 'i' || i, 13, 'p', 'approve', CASE WHEN i > {ROWS} - 32 THEN 'carol' END,
                      CASE WHEN i > {ROWS} - 32 THEN '[\"auditors\"]' ELSE '[\"clerks\"]' END, '[]',
                      NULL, NULL, NULL, NULL, i, CASE WHEN i > {ROWS} - 32 THEN 'acme' ELSE 'default' END, i + 1, CASE WHEN i > {ROWS} - 32 THEN 'carol' ELSE 'dave' END FROM n;
             INSERT INTO task_candidates (task_key, grp, task_created_at) SELECT 'i' || i || '.5', 'reviewers', {ROWS} + i FROM n WHERE i <= 32;
             INSERT INTO task_candidates (task_key, grp, task_created_at, completed)
               SELECT 'i' || i || '.13', CASE WHEN i > {ROWS} - 32 THEN 'auditors' ELSE 'clerks' END, i, 1 FROM n;
             INSERT INTO messages (seq, name, correlation_key, variables, published_at, expires_at, message_id, correlated, tenant)
               SELECT i, 'paid', 'k' || i, '{{}}', i, 100 + i, NULL, '[]', 'default' FROM n;
             INSERT INTO messages (seq, name, correlation_key, variables, published_at, expires_at, message_id, correlated, tenant)
               SELECT {ROWS} + i, 'paid', 'k' || i, '{{}}', {ROWS} + i, 100000000 + i, NULL, '[]', 'acme' FROM n WHERE i <= 32;
             INSERT INTO deletions (instance_id, at) SELECT 'i' || i, 20000000 + i FROM n;
             INSERT INTO variables (instance_id, name, kind, value) SELECT 'i' || i, 'order', 'text', 'A-' || i FROM n;
             COMMIT; ANALYZE;",
            copied.join(", "),
            store_sql::JOB_COLUMNS,
            store_sql::JOB_COLUMNS,
            store_sql::JOB_COLUMNS,
            tasks = store_sql::TASK_COLUMNS,
            subscriptions = store_sql::SUBSCRIPTION_COLUMNS,
            acme_instances = acme_instances.join(", "),
            incidents = store_sql::INCIDENT_COLUMNS,
        ))
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let cost = |what: &str, read: &mut dyn FnMut()| {
        let before = store_sqlite::vm_steps();
        read();
        let steps = store_sqlite::vm_steps() - before;
        assert!(steps > 0, "{what}: counted");
        assert!(steps < MOST_STEPS, "{what} took {steps} steps over {ROWS} rows");
        steps
    };
    let mut r = store.read().unwrap();
    let first = PageRequest::first(50);
    let acme: Tenants = Some(vec!["acme".into()]);
    let mut costs = vec![
        ("next_due", cost("next_due", &mut || assert_eq!(r.next_due().unwrap(), Some(10_000_001)))),
        ("due_timers, none due", cost("due_timers", &mut || assert!(r.due_timers(5, 100).unwrap().is_empty()))),
        ("due_timers, all due", cost("due_timers", &mut || assert_eq!(r.due_timers(i64::MAX, 100).unwrap().len(), 100))),
        ("activatable_jobs", cost("activatable_jobs", &mut || assert_eq!(r.activatable_jobs("work", &None, 0, 32).unwrap().len(), 32))),
        // Another tenant's 32 jobs of the same type, younger than all the
        // default tenant's: its worker passes over none of those.
        ("activatable_jobs, one tenant of two", cost("activatable_jobs", &mut || {
            let found = r.activatable_jobs("work", &Some(vec!["acme".into()]), 0, 32).unwrap();
            assert_eq!(found.len(), 32);
            assert!(found.iter().all(|j| j.tenant == "acme"), "{found:?}");
        })),
        ("activatable_jobs, its tenant named", cost("activatable_jobs", &mut || {
            assert_eq!(r.activatable_jobs("work", &Some(vec!["default".into()]), 0, 32).unwrap().len(), 32)
        })),
        ("due_deletions", cost("due_deletions", &mut || assert_eq!(r.due_deletions(i64::MAX, 100).unwrap().len(), 100))),
        ("expired_messages, none", cost("expired_messages", &mut || assert!(r.expired_messages(10, 100).unwrap().is_empty()))),
        ("expired_messages, all", cost("expired_messages", &mut || assert_eq!(r.expired_messages(i64::MAX, 100).unwrap().len(), 100))),
        ("instance", cost("instance", &mut || assert!(r.instance("i50000").unwrap().is_some()))),
        ("instance_version", cost("instance_version", &mut || assert!(r.instance_version("i50000").unwrap().is_some()))),
        ("last_instance_number", cost("last_instance_number", &mut || assert_eq!(r.last_instance_number().unwrap(), ROWS as u64 + 32))),
        ("instance_counts", cost("instance_counts", &mut || assert!(!r.instance_counts(&None).unwrap().is_empty()))),
        ("instances, first page", cost("instances", &mut || assert_eq!(r.instances(&InstanceFilter::default(), &first).unwrap().items.len(), 50))),
        ("jobs, first page", cost("jobs", &mut || assert_eq!(r.jobs(&JobFilter::default(), &first).unwrap().items.len(), 50))),
        ("timers, first page", cost("timers", &mut || assert_eq!(r.timers(&TimerFilter::default(), &first).unwrap().items.len(), 50))),
        ("instances by variable", cost("instances", &mut || {
            let filter = InstanceFilter { variable: Some(("order".into(), serde_json::json!("A-777"))), ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 1)
        })),
        // A tasklist: the 32 newest of 100 000 open tasks are alice's, and
        // another tenant has 32 younger still.
        ("tasks assigned to one", cost("tasks", &mut || {
            let filter = TaskFilter { assignee: Some("alice".into()), ..TaskFilter::default() };
            assert_eq!(r.tasks(&filter, &first).unwrap().items.len(), 32)
        })),
        ("tasks of one tenant", cost("tasks", &mut || {
            let filter = TaskFilter { tenants: Some(vec!["acme".into()]), ..TaskFilter::default() };
            assert_eq!(r.tasks(&filter, &first).unwrap().items.len(), 32)
        })),
        ("tasks of one candidate group", cost("tasks", &mut || {
            let filter = TaskFilter { candidate_group: Some("reviewers".into()), ..TaskFilter::default() };
            let found = r.tasks(&filter, &first).unwrap().items;
            assert_eq!(found.len(), 32);
            assert!(found.iter().all(|t| t.candidate_groups == ["reviewers"]), "{found:?}");
        })),
        ("jobs of one instance", cost("jobs", &mut || {
            let filter = JobFilter { instance_id: Some("i77".into()), ..JobFilter::default() };
            assert_eq!(r.jobs(&filter, &first).unwrap().items.len(), 1)
        })),
        // Lists of one tenant, whose 32 rows are the newest, behind 100 000
        // of another's; one type's jobs; the open incidents, the 32 newest
        // behind 99 968 resolved ones.
        ("instances with incidents", cost("instances", &mut || {
            let filter = InstanceFilter { has_incidents: Some(true), ..InstanceFilter::default() };
            let found = r.instances(&filter, &first).unwrap().items;
            assert_eq!(found.iter().map(|i| i.started_at).collect::<Vec<_>>(), ((ROWS - 31)..=ROWS).collect::<Vec<i64>>(), "those of the 32 open incidents");
        })),
        ("instances of two tenants", cost("instances", &mut || {
            let filter = InstanceFilter { tenants: Some(vec!["acme".into(), "beta".into()]), ..InstanceFilter::default() };
            let found = r.instances(&filter, &first).unwrap().items;
            assert_eq!(found.iter().map(|i| i.started_at).collect::<Vec<_>>(), (ROWS + 1..=ROWS + 32).collect::<Vec<i64>>());
        })),
        // A tenant's instances by status or workflow, filtered or in that
        // order: its range of the index that has it after the tenant (the
        // default tenant's by status sorted its 100 000; a status none had
        // walked them). Every tenant's: a page of each, merged.
        ("instances of one tenant, running", cost("instances", &mut || {
            let filter = InstanceFilter { tenants: acme.clone(), status: Some(engine::Status::Running), ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 32)
        })),
        ("instances of one tenant and workflow", cost("instances", &mut || {
            let filter = InstanceFilter { tenants: acme.clone(), process_id: Some("p".into()), ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 32)
        })),
        ("instances of one tenant by workflow", cost("instances", &mut || {
            let filter = InstanceFilter { tenants: acme.clone(), order: InstanceOrder::Workflow, ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 32)
        })),
        ("instances of one tenant by status", cost("instances", &mut || {
            let filter = InstanceFilter { tenants: acme.clone(), order: InstanceOrder::Status, ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 32)
        })),
        ("instances of the default tenant by status, the latest first", cost("instances", &mut || {
            let filter = InstanceFilter { tenants: Some(vec!["default".into()]), order: InstanceOrder::Status, descending: true, ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 50)
        })),
        ("instances of the default tenant, suspended (none)", cost("instances", &mut || {
            let filter = InstanceFilter { tenants: Some(vec!["default".into()]), status: Some(engine::Status::Suspended), ..InstanceFilter::default() };
            assert!(r.instances(&filter, &first).unwrap().items.is_empty())
        })),
        ("instances, running", cost("instances", &mut || {
            let filter = InstanceFilter { status: Some(engine::Status::Running), ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 50)
        })),
        ("instances by workflow", cost("instances", &mut || {
            let filter = InstanceFilter { order: InstanceOrder::Workflow, descending: true, ..InstanceFilter::default() };
            assert_eq!(r.instances(&filter, &first).unwrap().items.len(), 50)
        })),
        ("jobs of one tenant", cost("jobs", &mut || {
            let filter = JobFilter { tenants: acme.clone(), ..JobFilter::default() };
            assert_eq!(r.jobs(&filter, &first).unwrap().items.len(), 32)
        })),
        ("jobs of one type", cost("jobs", &mut || {
            let filter = JobFilter { job_type: Some("work".into()), ..JobFilter::default() };
            let page = r.jobs(&filter, &first).unwrap();
            assert_eq!(page.items.iter().map(|j| j.created_at).collect::<Vec<_>>(), (1..=50).collect::<Vec<i64>>());
            let next = r.jobs(&filter, &PageRequest { after: page.next, limit: 50 }).unwrap();
            assert_eq!(next.items.first().map(|j| j.created_at), Some(51), "the next page goes on where the first ended");
        })),
        ("failed jobs", cost("jobs", &mut || {
            let filter = JobFilter { state: Some(engine::JobState::Failed), ..JobFilter::default() };
            assert_eq!(r.jobs(&filter, &first).unwrap().items.len(), 32)
        })),
        ("jobs of one type and tenant", cost("jobs", &mut || {
            let filter = JobFilter { job_type: Some("work".into()), tenants: acme.clone(), ..JobFilter::default() };
            assert_eq!(r.jobs(&filter, &first).unwrap().items.len(), 32)
        })),
        ("incidents, open", cost("incidents", &mut || {
            let found = r.incidents(&IncidentFilter::default(), &first).unwrap().items;
            assert_eq!(found.len(), 32);
            assert!(found.iter().all(|i| i.resolved_at.is_none()));
        })),
        // One workflow's incidents (32, resolved, behind 100 000 of
        // another's) and open tasks (32 behind 100 032).
        ("incidents of one workflow", cost("incidents", &mut || {
            let filter = IncidentFilter { process_id: Some("q".into()), state: IncidentState::All, ..IncidentFilter::default() };
            let found = r.incidents(&filter, &first).unwrap().items;
            assert_eq!(found.len(), 32);
            assert!(found.iter().all(|i| i.process_id == "q"));
        })),
        ("open incidents of one workflow (none)", cost("incidents", &mut || {
            let filter = IncidentFilter { process_id: Some("q".into()), ..IncidentFilter::default() };
            assert!(r.incidents(&filter, &first).unwrap().items.is_empty());
        })),
        ("open tasks of one workflow", cost("tasks", &mut || {
            let filter = TaskFilter { process_id: Some("q".into()), ..TaskFilter::default() };
            let found = r.tasks(&filter, &first).unwrap().items;
            assert_eq!(found.iter().map(|t| t.created_at).collect::<Vec<_>>(), (3 * ROWS + 1..=3 * ROWS + 32).collect::<Vec<i64>>());
        })),
        // Completed tasks: 100 000, the 32 newest carol's, of another tenant.
        ("tasks completed by one", cost("tasks", &mut || {
            let filter = TaskFilter { completed_by: Some("carol".into()), state: TaskState::Completed, ..TaskFilter::default() };
            assert_eq!(r.tasks(&filter, &first).unwrap().items.len(), 32)
        })),
        ("completed tasks assigned to one", cost("tasks", &mut || {
            let filter = TaskFilter { assignee: Some("carol".into()), state: TaskState::Completed, ..TaskFilter::default() };
            assert_eq!(r.tasks(&filter, &first).unwrap().items.len(), 32)
        })),
        ("completed tasks of one tenant", cost("tasks", &mut || {
            let filter = TaskFilter { tenants: acme.clone(), state: TaskState::Completed, ..TaskFilter::default() };
            assert_eq!(r.tasks(&filter, &first).unwrap().items.len(), 32)
        })),
        // The 32 newest of them the auditors', the rest the clerks'.
        ("completed tasks of one candidate group", cost("tasks", &mut || {
            let filter = TaskFilter { candidate_group: Some("auditors".into()), state: TaskState::Completed, ..TaskFilter::default() };
            let found = r.tasks(&filter, &first).unwrap().items;
            assert_eq!(found.iter().map(|t| t.created_at).collect::<Vec<_>>(), (ROWS - 31..=ROWS).collect::<Vec<i64>>());
        })),
        ("tasks of one candidate group, open or completed", cost("tasks", &mut || {
            let filter = TaskFilter { candidate_group: Some("auditors".into()), state: TaskState::All, ..TaskFilter::default() };
            assert_eq!(r.tasks(&filter, &first).unwrap().items.len(), 32)
        })),
        ("open tasks of a group whose tasks are all completed (none)", cost("tasks", &mut || {
            let filter = TaskFilter { candidate_group: Some("clerks".into()), ..TaskFilter::default() };
            assert!(r.tasks(&filter, &first).unwrap().items.is_empty());
        })),
        ("timers of one tenant", cost("timers", &mut || {
            let filter = TimerFilter { tenants: acme.clone(), ..TimerFilter::default() };
            assert_eq!(r.timers(&filter, &first).unwrap().items.len(), 32)
        })),
        ("subscriptions of one tenant", cost("subscriptions", &mut || {
            let filter = SubscriptionFilter { tenants: acme.clone(), ..SubscriptionFilter::default() };
            assert_eq!(r.subscriptions(&filter, &first).unwrap().items.len(), 32)
        })),
        ("messages of one tenant", cost("messages", &mut || {
            let filter = MessageFilter { tenants: acme.clone(), ..MessageFilter::default() };
            assert_eq!(r.messages(&filter, 0, &first).unwrap().items.len(), 32)
        })),
        ("subscriptions of every tenant", cost("subscriptions", &mut || {
            let page = r.subscriptions(&SubscriptionFilter::default(), &first).unwrap();
            assert_eq!(page.items.iter().map(|s| s.opened_at).collect::<Vec<_>>(), (1..=50).collect::<Vec<i64>>(), "both tenants' merged in order");
        })),
    ];
    drop(r);
    let mut w = store.write().unwrap();
    costs.push(("claim_jobs", cost("claim_jobs", &mut || assert_eq!(w.claim_jobs("work", &None, 0, 32).unwrap().len(), 32))));
    costs.push(("claim_due_timers", cost("claim_due_timers", &mut || assert_eq!(w.claim_due_timers(i64::MAX, 100).unwrap().1.len(), 100))));
    drop(w);
    // Taken jobs keep their rows while workers hold them: a worker asking
    // for more passes over none of them, however many are out.
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("UPDATE jobs SET worker = 'w', lease_until = 1000000000000, lease = 'l' WHERE created_at <= ?", [ROWS - 32]).unwrap();
    }
    let mut r = store.read().unwrap();
    costs.push(("activatable_jobs, all but 32 taken", cost("activatable_jobs", &mut || {
        let found = r.activatable_jobs("work", &None, 0, 32).unwrap();
        assert_eq!(found.iter().map(|j| j.created_at).min(), Some(ROWS - 31), "the jobs not taken, and only they");
        assert_eq!(found.len(), 32);
    })));
    costs.push(("activatable_jobs, leases ended", cost("activatable_jobs", &mut || {
        assert_eq!(r.activatable_jobs("work", &None, 1000000000000, 32).unwrap().iter().map(|j| j.created_at).collect::<Vec<_>>(), (1..=32).collect::<Vec<i64>>(), "oldest first again")
    })));
    drop(r);
    // Suspended, every instance keeps its timers and jobs, held (as
    // `Write::HoldWaits` holds them): the next due time and a worker's call
    // pass over none of them.
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch("UPDATE instances SET status = 'suspended'; UPDATE timers SET held = 1; UPDATE jobs SET held = 1;").unwrap();
    }
    let mut r = store.read().unwrap();
    costs.push(("next_due, all suspended", cost("next_due", &mut || assert_eq!(r.next_due().unwrap(), None))));
    costs.push(("activatable_jobs, all suspended", cost("activatable_jobs", &mut || assert!(r.activatable_jobs("work", &None, 0, 32).unwrap().is_empty()))));
    drop(r);
    eprintln!("virtual machine steps over {ROWS} rows: {costs:?}");
}

/// The `variables` index follows an instance's variables, entry by entry,
/// and deleting the instance drops its entries (found by their values in
/// the stored row), leaving none behind.
#[test]
fn an_instances_variable_entries_follow_it_and_go_with_it() {
    use store::*;
    let (_dir, path) = temp_path("variables.db");
    let store = SqliteStore::open(&path).unwrap();
    let entries = || -> Vec<(String, String)> {
        let raw = rusqlite::Connection::open(&path).unwrap();
        let mut select = raw.prepare("SELECT name, kind FROM variables ORDER BY name").unwrap();
        select.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    let mut row = store::conformance::instance("v1", "p", engine::Status::Running, 1);
    let put = |row: &InstanceRow| {
        let mut txn = store.write().unwrap();
        txn.apply(Write::IndexVariables { instance_id: row.id.clone(), changes: store::VariableChanges::Whole(row.state.variables.clone()) }).unwrap();
        txn.apply(Write::PutInstance(Box::new(row.clone()))).unwrap();
        txn.commit().unwrap();
    };
    row.state.variables.insert("a".into(), serde_json::json!(1));
    row.state.variables.insert("b".into(), serde_json::json!({"x": [true]}));
    put(&row);
    assert_eq!(entries(), [("a".to_string(), "number".to_string()), ("b".to_string(), "object".to_string())]);
    row.state.variables.insert("a".into(), serde_json::json!("one"));
    row.state.variables.shift_remove("b");
    put(&row);
    assert_eq!(entries(), [("a".to_string(), "text".to_string())], "the changed entry replaced, the removed one dropped");
    let mut txn = store.write().unwrap();
    txn.apply(Write::DeleteInstance { id: "v1".into() }).unwrap();
    txn.commit().unwrap();
    assert!(entries().is_empty());
}

/// Issue 16: a running instance without incidents written again as one that
/// runs without incidents is one statement (the update checks the version
/// it replaces); one that ends, or was written meanwhile, takes the lookup
/// that says which, and a stale version is still refused.
#[test]
fn a_running_instance_written_again_is_one_statement() {
    let (_dir, path) = temp_path("in-place.db");
    let store = SqliteStore::open(&path).unwrap();
    let statements = || store.written().unwrap().unwrap().statements;
    let mut row = store::conformance::instance("r", "p", engine::Status::Running, 1);
    let mut write = store.write().unwrap();
    write.put_instance_if(&row, None).unwrap();
    write.commit().unwrap();
    let before = statements();
    row.update_count = 2;
    row.state.variables.insert("x".into(), serde_json::json!(1));
    let mut write = store.write().unwrap();
    write.put_instance_if(&row, Some(1)).unwrap();
    write.commit().unwrap();
    assert_eq!(statements() - before, 1, "one update, no lookup");
    let mut stale = row.clone();
    stale.update_count = 3;
    let mut write = store.write().unwrap();
    let refused = write.put_instance_if(&stale, Some(1)).unwrap_err();
    assert!(refused.is_conflict(), "{refused}");
    drop(write);
    let before = statements();
    row.status = engine::Status::Completed;
    row.update_count = 3;
    let mut write = store.write().unwrap();
    write.put_instance_if(&row, Some(2)).unwrap();
    write.commit().unwrap();
    // One update, then at the commit the counts' three statements (the
    // completed count up, the running one down and deleted at zero).
    assert_eq!(statements() - before, 4, "an end of one that ran is not looked up first");
    let mut read = store.read().unwrap();
    let stored = read.instance("r").unwrap().unwrap();
    assert_eq!((stored.update_count, stored.status), (3, engine::Status::Completed));
    assert_eq!(stored.state.variables.get("x"), Some(&serde_json::json!(1)));
    let counts = read.instance_counts(&store::Tenants::default()).unwrap();
    assert_eq!(counts.iter().map(|c| (c.status, c.count)).collect::<Vec<_>>(), [(engine::Status::Completed, 1)]);
    drop(read);
    // One that had an incident when written is looked up after the update
    // matched nothing, and its counts move from where it was.
    let mut troubled = store::conformance::instance("t", "p", engine::Status::Running, 1);
    troubled.incidents = 1;
    let mut write = store.write().unwrap();
    write.put_instance_if(&troubled, None).unwrap();
    write.commit().unwrap();
    troubled.incidents = 0;
    troubled.update_count = 2;
    let mut write = store.write().unwrap();
    write.put_instance_if(&troubled, Some(1)).unwrap();
    write.commit().unwrap();
    let mut read = store.read().unwrap();
    assert_eq!(read.instance("t").unwrap().unwrap().incidents, 0);
    let counts = read.instance_counts(&store::Tenants::default()).unwrap();
    let mut counts = counts.iter().map(|c| (c.status, c.with_incidents, c.count)).collect::<Vec<_>>();
    counts.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(counts, [(engine::Status::Completed, false, 1), (engine::Status::Running, false, 1)]);
}

/// Issue 16, item 2: an instance written again in one transaction (the ten
/// branches of a fork completing in one turn) is written to SQLite twice,
/// the first write and the last state at the commit, not once a write;
/// the transaction still reads it as last written, refuses a write of a
/// version it no longer holds, and a rollback to a savepoint takes back
/// what was kept since.
#[test]
fn an_instance_written_again_in_one_transaction_is_written_once_more_at_its_end() {
    use store::*;
    let (_dir, path) = temp_path("deferred.db");
    let store = SqliteStore::open(&path).unwrap();
    let statements = || store.written().unwrap().unwrap().statements;
    let mut row = conformance::instance("a", "p", engine::Status::Running, 1);
    {
        let mut write = store.write().unwrap();
        write.put_instance_if(&row, None).unwrap();
        write.commit().unwrap();
    }
    let version = |row: &mut InstanceRow, n: u64| {
        row.update_count = n;
        row.state.update_count = n;
    };
    let before = statements();
    let mut write = store.write().unwrap();
    for n in 1..=10 {
        let stored = Some(row.update_count);
        version(&mut row, n);
        write.put_instance_if(&row, stored).unwrap();
    }
    assert!(write.put_instance_if(&row, Some(3)).unwrap_err().is_conflict(), "a version it no longer holds");
    write.commit().unwrap();
    assert_eq!(statements() - before, 2, "the first update, and the last at the commit");
    assert_eq!(store.read().unwrap().instance("a").unwrap().map(|i| i.update_count), Some(10));
    let mut write = store.write().unwrap();
    for n in 11..=12 {
        let stored = Some(row.update_count);
        version(&mut row, n);
        write.put_instance_if(&row, stored).unwrap();
    }
    assert_eq!(write.instance_version("a").unwrap(), Some(12), "read as last written");
    write.commit().unwrap();
    // Kept back before a savepoint: written as it begins; kept within it: undone with it.
    let mut write = store.write().unwrap();
    for n in 13..=14 {
        let stored = Some(row.update_count);
        version(&mut row, n);
        write.put_instance_if(&row, stored).unwrap();
    }
    write.savepoint().unwrap();
    version(&mut row, 15);
    write.put_instance_if(&row, Some(14)).unwrap();
    version(&mut row, 16);
    write.put_instance_if(&row, Some(15)).unwrap();
    write.rollback_to_savepoint().unwrap();
    assert_eq!(write.instance_version("a").unwrap(), Some(14));
    version(&mut row, 15);
    row.status = engine::Status::Completed;
    write.put_instance_if(&row, Some(14)).unwrap();
    write.commit().unwrap();
    let mut read = store.read().unwrap();
    let stored = read.instance("a").unwrap().unwrap();
    assert_eq!((stored.update_count, stored.status), (15, engine::Status::Completed));
    let counts = read.instance_counts(&None).unwrap();
    assert_eq!(counts.iter().map(|c| (c.status, c.count)).collect::<Vec<_>>(), [(engine::Status::Completed, 1)], "{counts:?}");
}
