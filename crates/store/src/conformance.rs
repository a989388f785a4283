//! The one test suite every store passes. A store's test calls [`run`] with a
//! function that makes a fresh, empty store.

use engine::{HistoryEntry, HistoryEvent, InstanceState, JobState, Status, Variables};

use crate::rows::*;
use crate::{Lock, ReadTxn, Store};

/// Runs every check, each on a fresh store; panics with the check's name on failure.
pub fn run(make: &dyn Fn() -> Box<dyn Store>) {
    type Check = (&'static str, fn(&dyn Store));
    let checks: [Check; 23] = [
        (
            "rolling back to a savepoint undoes one command's writes only",
            savepoints,
        ),
        ("rows come back as they were written", roundtrip),
        (
            "a write transaction reads its own writes and others see them after commit",
            visibility,
        ),
        (
            "a write transaction dropped without commit leaves nothing",
            rollback,
        ),
        (
            "activatable jobs respect type, state, backoff, lease and instance status",
            activatable_jobs,
        ),
        (
            "every tenant's free jobs are read and merged by age",
            free_jobs_of_several_tenants,
        ),
        ("instances are listed in pages and filtered", instance_pages),
        (
            "subscriptions are found oldest first and deleted",
            subscriptions,
        ),
        ("buffered messages expire and are found by id", messages),
        ("timers fall due in order, start timers count", timers),
        ("history keeps its order across pages", history),
        (
            "jobs, tasks and incidents are listed and filtered",
            other_lists,
        ),
        (
            "an instance sees the incidents of the instances it called",
            descendant_incidents,
        ),
        (
            "tokens are kept, listed by name and revoked in place",
            tokens,
        ),
        (
            "completed tasks stay listed as such; forms and decisions keep every version",
            completed_tasks_and_forms,
        ),
        (
            "instance counts follow every write of an instance, and a rollback",
            instance_counts,
        ),
        (
            "each tenant keeps its own workflows, requests, jobs, messages and signals",
            tenants,
        ),
        (
            "lists of several tenants merge each one's rows in order, page after page",
            lists_of_several_tenants,
        ),
        (
            "a message start's check for an active instance of its key follows the instance's end and deletion",
            started_by_key,
        ),
        (
            "instances are found by number, and the last number given is known",
            instance_numbers,
        ),
        (
            "an instance written by someone else since it was read is a conflict",
            instance_versions,
        ),
        (
            "claims find what is due, numbers are new, deployments are counted, locks are taken",
            claims,
        ),
        (
            "an instance is deleted with every row of it, and scheduled deletions fall due in order",
            deletions,
        ),
    ];
    for (name, check) in checks {
        let store = make();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(store.as_ref())));
        if let Err(panic) = outcome {
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("store conformance check failed: {name}: {detail}");
        }
    }
}

pub fn state(id: &str, status: Status) -> InstanceState {
    InstanceState {
        schema: InstanceState::SCHEMA,
        id: id.to_string(),
        process_id: "p".into(),
        version: 1,
        variables_changes: 0,
        status,
        business_key: None,
        input: Variables::new(),
        variables: Variables::new(),
        started_at: 0,
        ended_at: None,
        error_code: None,
        cancel_reason: None,
        parent: None,
        depth: 0,
        update_count: 1,
        next_key: 1,
        root: 0,
        element_instances: engine::Table::new(),
        jobs: engine::Table::new(),
        timers: engine::Table::new(),
        user_tasks: engine::Table::new(),
        subscriptions: engine::Table::new(),
        incidents: engine::Table::new(),
        updated_at: 0,
        created_by: None,
        updated_by: None,
        labels: Default::default(),
        end: None,
        error: None,
        run: 1,
        last_send_task: None,
        uncaught_errors_incident: false,
        pending_start: None,
        conditions: Default::default(),
        pending_terminations: Vec::new(),
    }
}

pub fn instance(id: &str, process_id: &str, status: Status, started_at: i64) -> InstanceRow {
    let mut state = state(id, status);
    state.process_id = process_id.to_string();
    state.started_at = started_at;
    InstanceRow {
        id: id.to_string(),
        number: 0,
        process_id: process_id.to_string(),
        tenant: DEFAULT_TENANT.into(),
        version: 1,
        status,
        business_key: None,
        parent_id: None,
        started_at,
        ended_at: None,
        incidents: 0,
        waiting: Vec::new(),
        start_key: None,
        update_count: 1,
        history_count: 0,
        state,
    }
}

fn job(key: &str, instance_id: &str, job_type: &str, created_at: i64) -> JobRow {
    JobRow {
        key: key.to_string(),
        instance_id: instance_id.to_string(),
        local_key: 1,
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        element_id: "task".into(),
        job_type: job_type.to_string(),
        retries: 3,
        state: JobState::Activatable,
        not_before: None,
        error_message: None,
        worker: None,
        lease_until: None,
        lease: None,
        created_at,
    }
}

fn task(key: &str, instance_id: &str, created_at: i64) -> TaskRow {
    TaskRow {
        key: key.to_string(),
        instance_id: instance_id.to_string(),
        local_key: key.rsplit('.').next().and_then(|k| k.parse().ok()).unwrap_or(1),
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        element_id: "t".into(),
        assignee: None,
        candidate_groups: vec![],
        candidate_users: vec![],
        due: None,
        follow_up: None,
        priority: None,
        form_key: None,
        created_at,
        completed_at: None,
        completed_by: None,
    }
}

fn write(store: &dyn Store, writes: Vec<Write>) {
    let mut txn = store.write().expect("a write transaction");
    for w in writes {
        txn.apply(w).expect("the write applies");
    }
    txn.commit().expect("the commit succeeds");
}

fn roundtrip(store: &dyn Store) {
    let workflow = WorkflowRow {
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        version: 2,
        deployment: 7,
        name: Some("P".into()),
        version_tag: Some("v2".into()),
        xml: "<definitions/>".into(),
        deployed_at: 5,
    };
    let mut row = instance("i1", "p", Status::Running, 10);
    row.business_key = Some("order-1".into());
    row.waiting = vec!["job".into()];
    row.state
        .variables
        .insert("x".into(), serde_json::json!({"deep": [1, 2.5, "é"]}));
    let job = job("i1.1", "i1", "work", 10);
    let timer = TimerRow {
        instance_id: "i1".into(),
        tenant: DEFAULT_TENANT.into(),
        local_key: 2,
        element_id: "t".into(),
        due_at: 99,
    };
    let task = TaskRow {
        key: "i1.3".into(),
        instance_id: "i1".into(),
        local_key: 3,
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        element_id: "review".into(),
        assignee: Some("ann".into()),
        candidate_groups: vec!["a".into(), "b".into()],
        candidate_users: vec![],
        due: Some("2026-01-01T00:00:00Z".into()),
        follow_up: None,
        priority: Some(50),
        form_key: None,
        created_at: 10,
        completed_at: None,
        completed_by: None,
    };
    let incident = IncidentRow {
        key: "i1.4".into(),
        instance_id: "i1".into(),
        local_key: 4,
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        element_id: "gw".into(),
        kind: "expression".into(),
        message: "boom".into(),
        created_at: 11,
        resolved_at: None,
        resolved_by: None,
    };
    let start_timer = StartTimerRow {
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        version: 2,
        element_id: "s".into(),
        due_at: 50,
        repeat: Some((Some(2), "PT1H".into())),
    };
    write(
        store,
        vec![
            Write::PutWorkflow(workflow.clone()),
            Write::PutInstance(Box::new(row.clone())),
            Write::PutRequest {
                tenant: DEFAULT_TENANT.into(),
                request_id: "req-1".into(),
                instance_id: "i1".into(),
            },
            Write::PutJob(job.clone()),
            Write::PutTimer(timer.clone()),
            Write::PutTask(task.clone()),
            Write::PutIncident(incident.clone()),
            Write::PutStartTimer(start_timer.clone()),
        ],
    );
    let mut read = store.read().unwrap();
    assert_eq!(read.workflows().unwrap(), vec![workflow.clone()]);
    assert_eq!(
        read.workflow(DEFAULT_TENANT, "p", 2).unwrap(),
        Some(workflow)
    );
    assert_eq!(read.workflow(DEFAULT_TENANT, "p", 1).unwrap(), None);
    assert_eq!(read.instance("i1").unwrap(), Some(row));
    assert_eq!(read.instance("nope").unwrap(), None);
    assert_eq!(
        read.instance_by_request(DEFAULT_TENANT, "req-1").unwrap(),
        Some("i1".into())
    );
    assert_eq!(read.job("i1.1").unwrap(), Some(job));
    assert_eq!(read.due_timers(100, 10).unwrap(), vec![timer]);
    assert_eq!(read.task("i1.3").unwrap(), Some(task));
    assert_eq!(read.incident("i1.4").unwrap(), Some(incident));
    assert_eq!(read.start_timers().unwrap(), vec![start_timer]);
    assert_eq!(read.count_instances().unwrap(), vec![(Status::Running, 1)]);
}

fn visibility(store: &dyn Store) {
    let mut txn = store.write().unwrap();
    txn.apply(Write::PutInstance(Box::new(instance(
        "i1",
        "p",
        Status::Running,
        1,
    ))))
    .unwrap();
    assert!(
        txn.instance("i1").unwrap().is_some(),
        "a transaction sees its own write"
    );
    txn.apply(Write::PutJob(job("i1.1", "i1", "work", 1)))
        .unwrap();
    assert_eq!(txn.activatable_jobs("work", &None, 1, 10).unwrap().len(), 1);
    txn.apply(Write::DeleteJob { key: "i1.1".into() }).unwrap();
    assert!(
        txn.job("i1.1").unwrap().is_none(),
        "a transaction sees its own delete"
    );
    txn.commit().unwrap();
    let mut read = store.read().unwrap();
    assert!(read.instance("i1").unwrap().is_some());
    assert!(read.job("i1.1").unwrap().is_none());
}

fn rollback(store: &dyn Store) {
    write(
        store,
        vec![Write::PutInstance(Box::new(instance(
            "kept",
            "p",
            Status::Running,
            1,
        )))],
    );
    {
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(instance(
            "lost",
            "p",
            Status::Running,
            2,
        ))))
        .unwrap();
        let mut replaced = instance("kept", "p", Status::Completed, 1);
        replaced.update_count = 9;
        txn.apply(Write::PutInstance(Box::new(replaced))).unwrap();
        txn.apply(Write::PutJob(job("lost.1", "lost", "work", 2)))
            .unwrap();
        // Dropped without commit.
    }
    let mut read = store.read().unwrap();
    assert!(read.instance("lost").unwrap().is_none());
    assert!(read.job("lost.1").unwrap().is_none());
    assert_eq!(
        read.instance("kept").unwrap().unwrap().status,
        Status::Running,
        "the replaced row is back"
    );
}

fn savepoints(store: &dyn Store) {
    let mut txn = store.write().unwrap();
    txn.apply(Write::PutInstance(Box::new(instance(
        "first",
        "p",
        Status::Running,
        1,
    ))))
    .unwrap();
    txn.savepoint().unwrap();
    txn.apply(Write::PutInstance(Box::new(instance(
        "undone",
        "p",
        Status::Running,
        2,
    ))))
    .unwrap();
    txn.apply(Write::PutInstance(Box::new(instance(
        "first",
        "p",
        Status::Completed,
        1,
    ))))
    .unwrap();
    txn.rollback_to_savepoint().unwrap();
    assert!(
        txn.instance("undone").unwrap().is_none(),
        "the command's insert is gone"
    );
    assert_eq!(
        txn.instance("first").unwrap().unwrap().status,
        Status::Running,
        "the command's update is gone"
    );
    txn.savepoint().unwrap();
    txn.apply(Write::PutInstance(Box::new(instance(
        "kept",
        "p",
        Status::Running,
        3,
    ))))
    .unwrap();
    txn.release_savepoint().unwrap();

    // History: what a rolled-back command appended goes, what came before it
    // stays, even when the command read the history (which a store may take
    // as the moment to write what it holds back).
    let seqs = |txn: &mut Box<dyn crate::WriteTxn + '_>| -> Vec<u64> {
        let page = txn.history("kept", &HistoryFilter::default(), &PageRequest::first(100)).unwrap();
        page.items.iter().map(|h| h.seq).collect()
    };
    txn.apply(Write::AppendHistory(history_row("kept", 1, "before"))).unwrap();
    txn.savepoint().unwrap();
    txn.apply(Write::AppendHistory(history_row("kept", 2, "undone"))).unwrap();
    assert_eq!(seqs(&mut txn), [1, 2], "a command reads what it appended");
    txn.apply(Write::AppendHistory(history_row("kept", 3, "undone"))).unwrap();
    txn.rollback_to_savepoint().unwrap();
    assert_eq!(seqs(&mut txn), [1]);
    txn.savepoint().unwrap();
    txn.apply(Write::AppendHistory(history_row("kept", 2, "after"))).unwrap();
    txn.release_savepoint().unwrap();
    txn.commit().unwrap();
    let mut read = store.read().unwrap();
    assert!(read.instance("first").unwrap().is_some() && read.instance("kept").unwrap().is_some());
    assert!(read.instance("undone").unwrap().is_none());
    let history = read.history("kept", &HistoryFilter::default(), &PageRequest::first(100)).unwrap().items;
    assert_eq!(
        history.iter().map(|h| (h.seq, h.entry.element_id.as_str())).collect::<Vec<_>>(),
        [(1, "before"), (2, "after")]
    );
}

fn activatable_jobs(store: &dyn Store) {
    let mut backoff = job("a.2", "a", "work", 2);
    backoff.not_before = Some(100);
    let mut leased = job("a.3", "a", "work", 3);
    leased.lease_until = Some(50);
    let mut failed = job("a.4", "a", "work", 4);
    failed.state = JobState::Failed;
    write(
        store,
        vec![
            Write::PutInstance(Box::new(instance("a", "p", Status::Running, 1))),
            Write::PutInstance(Box::new(instance("s", "p", Status::Suspended, 1))),
            Write::PutJob(job("a.1", "a", "work", 1)),
            Write::PutJob(backoff),
            Write::PutJob(leased),
            Write::PutJob(failed),
            Write::PutJob(job("a.5", "a", "other", 5)),
            Write::PutJob(job("s.1", "s", "work", 0)),
        ],
    );
    let mut read = store.read().unwrap();
    let keys = |jobs: Vec<JobRow>| jobs.into_iter().map(|j| j.key).collect::<Vec<_>>();
    assert_eq!(
        keys(read.activatable_jobs("work", &None, 10, 10).unwrap()),
        ["a.1"]
    );
    assert_eq!(
        keys(read.activatable_jobs("work", &None, 60, 10).unwrap()),
        ["a.1", "a.3"],
        "an expired lease frees the job"
    );
    assert_eq!(
        keys(read.activatable_jobs("work", &None, 100, 10).unwrap()),
        ["a.1", "a.2", "a.3"],
        "backoff over"
    );
    assert_eq!(
        keys(read.activatable_jobs("work", &None, 100, 2).unwrap()),
        ["a.1", "a.2"],
        "the limit holds, oldest first"
    );
    assert_eq!(
        keys(read.activatable_jobs("other", &None, 0, 10).unwrap()),
        ["a.5"]
    );
    drop(read);
    // A lease changes the worker, the lease and its token alone; a key not
    // stored is left so.
    write(
        store,
        vec![
            Write::LeaseJob { key: "a.1".into(), worker: Some("w".into()), lease_until: Some(80), lease: Some("t".into()) },
            Write::LeaseJob { key: "a.9".into(), worker: Some("w".into()), lease_until: Some(80), lease: None },
        ],
    );
    let mut read = store.read().unwrap();
    assert_eq!(
        read.job("a.1").unwrap(),
        Some(JobRow { worker: Some("w".into()), lease_until: Some(80), lease: Some("t".into()), ..job("a.1", "a", "work", 1) })
    );
    assert_eq!(read.job("a.9").unwrap(), None);
    assert_eq!(keys(read.activatable_jobs("work", &None, 70, 10).unwrap()), ["a.3"], "a leased job waits for its lease");
    assert_eq!(keys(read.activatable_jobs("work", &None, 100, 10).unwrap()), ["a.1", "a.2", "a.3"], "and comes back in its place");
}

fn instance_pages(store: &dyn Store) {
    let mut writes = Vec::new();
    for n in 0..5 {
        let mut row = instance(
            &format!("i{n}"),
            if n % 2 == 0 { "even" } else { "odd" },
            Status::Running,
            100 + n,
        );
        row.business_key = Some(format!("bk{n}"));
        row.state.variables.insert("n".into(), serde_json::json!(n));
        if n == 0 {
            row.state.variables.insert("doc".into(), serde_json::json!({"b": null, "a": [1, "x", {"c": true}]}));
        }
        writes.push(Write::IndexVariables { instance_id: row.id.clone(), changes: VariableChanges::Whole(row.state.variables.clone()) });
        let parity = if n % 2 == 0 { "even" } else { "odd" };
        row.state.labels = [
            ("parity".to_string(), parity.to_string()),
            ("n".to_string(), n.to_string()),
        ]
        .into();
        writes.push(Write::PutLabels {
            instance_id: row.id.clone(),
            labels: row.state.labels.clone(),
        });
        if n == 3 {
            row.status = Status::Completed;
            row.ended_at = Some(200);
            row.state.status = Status::Completed;
        }
        if n == 4 {
            row.incidents = 1;
            row.waiting = vec!["user_task".into()];
        }
        writes.push(Write::PutInstance(Box::new(row)));
    }
    write(store, writes);
    let mut read = store.read().unwrap();
    let all = InstanceFilter::default();
    let first = read.instances(&all, &PageRequest::first(2)).unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["i0", "i1"]
    );
    let second = read
        .instances(
            &all,
            &PageRequest {
                after: first.next.clone(),
                limit: 2,
            },
        )
        .unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["i2", "i3"]
    );
    let third = read
        .instances(
            &all,
            &PageRequest {
                after: second.next.clone(),
                limit: 2,
            },
        )
        .unwrap();
    assert_eq!(
        third
            .items
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["i4"]
    );
    assert_eq!(third.next, None, "the last page has no cursor");
    for bad in ["", "nope", "x:i1"] {
        let after = PageRequest {
            after: Some(bad.into()),
            limit: 2,
        };
        assert!(
            read.instances(&all, &after).unwrap_err().is_bad_cursor(),
            "instances after '{bad}'"
        );
        assert!(
            read.jobs(&JobFilter::default(), &after)
                .unwrap_err()
                .is_bad_cursor(),
            "jobs after '{bad}'"
        );
        assert!(
            read.history("i0", &HistoryFilter::default(), &after)
                .unwrap_err()
                .is_bad_cursor(),
            "history after '{bad}'"
        );
    }
    let ids = |read: &mut dyn crate::ReadTxn, filter: InstanceFilter| -> Vec<String> {
        read.instances(&filter, &PageRequest::first(100))
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                process_id: Some("even".into()),
                ..all.clone()
            }
        ),
        ["i0", "i2", "i4"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                status: Some(Status::Completed),
                ..all.clone()
            }
        ),
        ["i3"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                business_key: Some("bk1".into()),
                ..all.clone()
            }
        ),
        ["i1"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                waiting: Some("user_task".into()),
                ..all.clone()
            }
        ),
        ["i4"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                has_incidents: Some(true),
                ..all.clone()
            }
        ),
        ["i4"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                started_after: Some(102),
                started_before: Some(104),
                ..all.clone()
            }
        ),
        ["i2", "i3"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                ended_after: Some(150),
                ..all.clone()
            }
        ),
        ["i3"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                variable: Some(("n".into(), serde_json::json!(2))),
                ..all.clone()
            }
        ),
        ["i2"]
    );
    let by_variable = |read: &mut dyn crate::ReadTxn, name: &str, value: serde_json::Value| ids(read, InstanceFilter { variable: Some((name.into(), value)), ..all.clone() });
    assert_eq!(by_variable(read.as_mut(), "n", serde_json::json!("2")), Vec::<String>::new(), "text is not a number");
    assert_eq!(by_variable(read.as_mut(), "doc", serde_json::json!({"a": [1, "x", {"c": true}], "b": null})), ["i0"], "a context, whatever its keys' order");
    assert_eq!(by_variable(read.as_mut(), "doc", serde_json::json!({"a": [1, "x"], "b": null})), Vec::<String>::new());
    assert_eq!(by_variable(read.as_mut(), "missing", serde_json::Value::Null), Vec::<String>::new(), "a missing variable is not null");
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                label: Some(("parity".into(), "odd".into())),
                ..all.clone()
            }
        ),
        ["i1", "i3"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                label: Some(("n".into(), "4".into())),
                ..all.clone()
            }
        ),
        ["i4"]
    );
    drop(read);
    // New labels replace the old ones.
    let mut relabelled = instance("i1", "odd", Status::Running, 101);
    relabelled.state.labels = [("parity".to_string(), "none".to_string())].into();
    write(
        store,
        vec![
            Write::PutLabels {
                instance_id: "i1".into(),
                labels: relabelled.state.labels.clone(),
            },
            Write::PutInstance(Box::new(relabelled)),
        ],
    );
    let mut read = store.read().unwrap();
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                label: Some(("parity".into(), "odd".into())),
                ..all.clone()
            }
        ),
        ["i3"]
    );
    assert_eq!(
        ids(
            read.as_mut(),
            InstanceFilter {
                label: Some(("n".into(), "1".into())),
                ..all
            }
        ),
        Vec::<String>::new()
    );
    // Newest first, through the same pages backwards; and one version of a workflow.
    let mut newest = Vec::new();
    let mut after = None;
    loop {
        let filter = InstanceFilter { descending: true, ..InstanceFilter::default() };
        let page = read.instances(&filter, &PageRequest { after: after.clone(), limit: 2 }).unwrap();
        newest.extend(page.items.iter().map(|i| (i.started_at, i.id.clone())));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut oldest = read.instances(&InstanceFilter::default(), &PageRequest::first(1000)).unwrap().items;
    oldest.reverse();
    assert_eq!(newest, oldest.iter().map(|i| (i.started_at, i.id.clone())).collect::<Vec<_>>(), "newest first is oldest first reversed");
    assert!(newest.len() > 2, "several pages were read");
    // By workflow, then by status, either way, page by page: every instance once, in that order.
    for order in [InstanceOrder::Workflow, InstanceOrder::Status] {
        for descending in [false, true] {
            let filter = InstanceFilter { order, descending, ..InstanceFilter::default() };
            let mut listed = Vec::new();
            let mut after = None;
            loop {
                let page = read.instances(&filter, &PageRequest { after: after.clone(), limit: 2 }).unwrap();
                listed.extend(page.items.iter().map(|i| (order.lead(i).unwrap().to_string(), i.started_at, i.id.clone())));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let mut expected = listed.clone();
            expected.sort();
            if descending {
                expected.reverse();
            }
            assert_eq!(listed, expected, "{order:?} descending={descending}");
            assert_eq!(listed.len(), oldest.len(), "every instance once");
        }
    }
    let version_two = InstanceFilter { version: Some(2), ..InstanceFilter::default() };
    assert!(read.instances(&version_two, &PageRequest::first(1000)).unwrap().items.iter().all(|i| i.version == 2));
}

fn subscription(
    instance_id: &str,
    key: u64,
    kind: SubscriptionKind,
    name: &str,
    correlation_key: &str,
    opened_at: i64,
) -> SubscriptionRow {
    SubscriptionRow {
        instance_id: instance_id.into(),
        tenant: DEFAULT_TENANT.into(),
        local_key: key,
        element_id: "e".into(),
        kind,
        name: name.into(),
        correlation_key: correlation_key.into(),
        opened_at,
    }
}

fn subscriptions(store: &dyn Store) {
    write(
        store,
        vec![
            Write::PutSubscription(subscription(
                "b",
                1,
                SubscriptionKind::Message,
                "paid",
                "k",
                5,
            )),
            Write::PutSubscription(subscription(
                "a",
                1,
                SubscriptionKind::Message,
                "paid",
                "k",
                5,
            )),
            Write::PutSubscription(subscription(
                "c",
                1,
                SubscriptionKind::Message,
                "paid",
                "k",
                1,
            )),
            Write::PutSubscription(subscription(
                "d",
                1,
                SubscriptionKind::Message,
                "paid",
                "other",
                0,
            )),
            Write::PutSubscription(subscription(
                "e",
                1,
                SubscriptionKind::Signal,
                "alarm",
                "",
                3,
            )),
        ],
    );
    let mut read = store.read().unwrap();
    let found: Vec<String> = read
        .message_subscriptions(DEFAULT_TENANT, "paid", "k")
        .unwrap()
        .into_iter()
        .map(|s| s.instance_id)
        .collect();
    assert_eq!(found, ["c", "a", "b"]);
    assert_eq!(
        read.signal_subscriptions(DEFAULT_TENANT, "alarm")
            .unwrap()
            .len(),
        1
    );
    assert!(
        read.signal_subscriptions(DEFAULT_TENANT, "paid")
            .unwrap()
            .is_empty(),
        "kinds do not mix"
    );
    let listed = |read: &mut dyn crate::ReadTxn,
                  filter: SubscriptionFilter,
                  page: PageRequest|
     -> Page<SubscriptionRow> { read.subscriptions(&filter, &page).unwrap() };
    let first = listed(
        read.as_mut(),
        SubscriptionFilter::default(),
        PageRequest::first(2),
    );
    assert_eq!(
        first
            .items
            .iter()
            .map(|s| s.instance_id.as_str())
            .collect::<Vec<_>>(),
        ["d", "c"],
        "oldest first"
    );
    let rest = listed(
        read.as_mut(),
        SubscriptionFilter::default(),
        PageRequest {
            after: first.next,
            limit: 10,
        },
    );
    assert_eq!(
        rest.items
            .iter()
            .map(|s| s.instance_id.as_str())
            .collect::<Vec<_>>(),
        ["e", "a", "b"]
    );
    let signals = listed(
        read.as_mut(),
        SubscriptionFilter {
            kind: Some(SubscriptionKind::Signal),
            ..SubscriptionFilter::default()
        },
        PageRequest::first(10),
    );
    assert_eq!(signals.items.len(), 1);
    let of_a = listed(
        read.as_mut(),
        SubscriptionFilter {
            instance_id: Some("a".into()),
            name: Some("paid".into()),
            ..SubscriptionFilter::default()
        },
        PageRequest::first(10),
    );
    assert_eq!(of_a.items.len(), 1);
    drop(read);
    write(
        store,
        vec![Write::DeleteSubscription {
            instance_id: "c".into(),
            local_key: 1,
        }],
    );
    assert_eq!(
        store
            .read()
            .unwrap()
            .message_subscriptions(DEFAULT_TENANT, "paid", "k")
            .unwrap()
            .len(),
        2
    );
}

fn messages(store: &dyn Store) {
    let message = |seq: u64, key: &str, expires_at: i64, id: Option<&str>| MessageRow {
        seq,
        tenant: DEFAULT_TENANT.into(),
        name: "paid".into(),
        correlation_key: key.into(),
        variables: Variables::new(),
        published_at: 0,
        expires_at,
        message_id: id.map(str::to_string),
        correlated: vec!["p".into()],
    };
    write(
        store,
        vec![
            Write::PutMessage(message(1, "k", 100, Some("m-1"))),
            Write::PutMessage(message(2, "k", 50, None)),
            Write::PutMessage(message(3, "x", 100, None)),
        ],
    );
    let mut read = store.read().unwrap();
    assert_eq!(read.last_message_seq().unwrap(), 3, "the highest kept");
    assert!(read.expired_messages(49, 10).unwrap().is_empty());
    assert_eq!(read.expired_messages(100, 10).unwrap(), [2, 1, 3], "in the order they expire");
    assert_eq!(read.expired_messages(100, 2).unwrap(), [2, 1], "within the limit");
    assert_eq!(
        read.buffered_messages(DEFAULT_TENANT, "paid", "k", 10)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        read.buffered_messages(DEFAULT_TENANT, "paid", "k", 50)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        [1],
        "expired at 50"
    );
    assert_eq!(
        read.message_by_id(DEFAULT_TENANT, "m-1", 10)
            .unwrap()
            .map(|m| m.correlated),
        Some(vec!["p".to_string()])
    );
    assert_eq!(
        read.message_by_id(DEFAULT_TENANT, "m-1", 100).unwrap(),
        None,
        "an expired message no longer holds its id"
    );
    drop(read);
    let mut untaken = message(4, "u", 60, None);
    untaken.correlated.clear();
    untaken.published_at = 1;
    write(store, vec![Write::PutMessage(untaken)]);
    let mut read = store.read().unwrap();
    let seqs = |read: &mut dyn crate::ReadTxn,
                state: MessageState,
                now: i64,
                page: PageRequest|
     -> (Vec<u64>, Option<String>) {
        let found = read
            .messages(
                &MessageFilter {
                    state,
                    name: None,
                    tenants: None,
                },
                now,
                &page,
            )
            .unwrap();
        (found.items.iter().map(|m| m.seq).collect(), found.next)
    };
    let (first, next) = seqs(
        read.as_mut(),
        MessageState::Buffered,
        10,
        PageRequest::first(2),
    );
    assert_eq!(first, [1, 2]);
    assert_eq!(
        seqs(
            read.as_mut(),
            MessageState::Buffered,
            10,
            PageRequest {
                after: next,
                limit: 10
            }
        )
        .0,
        [3, 4]
    );
    assert_eq!(
        seqs(
            read.as_mut(),
            MessageState::Buffered,
            55,
            PageRequest::first(10)
        )
        .0,
        [1, 3, 4],
        "2 expired at 50"
    );
    assert_eq!(
        seqs(
            read.as_mut(),
            MessageState::Undelivered,
            55,
            PageRequest::first(10)
        )
        .0,
        Vec::<u64>::new(),
        "2 was taken before it expired"
    );
    assert_eq!(
        seqs(
            read.as_mut(),
            MessageState::Undelivered,
            60,
            PageRequest::first(10)
        )
        .0,
        [4],
        "expired with nobody taking it"
    );
    drop(read);
    write(store, vec![Write::DeleteMessage { seq: 1 }]);
    assert_eq!(
        store
            .read()
            .unwrap()
            .buffered_messages(DEFAULT_TENANT, "paid", "k", 10)
            .unwrap()
            .len(),
        1
    );
}

fn timers(store: &dyn Store) {
    let timer = |instance: &str, key: u64, due_at: i64| TimerRow {
        instance_id: instance.into(),
        tenant: DEFAULT_TENANT.into(),
        local_key: key,
        element_id: "t".into(),
        due_at,
    };
    write(
        store,
        vec![
            Write::PutInstance(Box::new(instance("a", "p", Status::Running, 0))),
            Write::PutInstance(Box::new(instance("b", "p", Status::Running, 0))),
            Write::PutInstance(Box::new(instance("s", "p", Status::Suspended, 0))),
            Write::PutTimer(timer("s", 1, 1)),
            Write::PutJob(job("s.2", "s", "work", 1)),
            Write::HoldWaits { instance_id: "s".into(), held: true },
            Write::PutTimer(timer("b", 1, 30)),
            Write::PutTimer(timer("a", 2, 10)),
            Write::PutTimer(timer("a", 1, 20)),
            Write::PutStartTimer(StartTimerRow {
                process_id: "p".into(),
                tenant: DEFAULT_TENANT.into(),
                version: 1,
                element_id: "s".into(),
                due_at: 5,
                repeat: None,
            }),
        ],
    );
    let mut read = store.read().unwrap();
    let due: Vec<(String, u64)> = read
        .due_timers(25, 10)
        .unwrap()
        .into_iter()
        .map(|t| (t.instance_id, t.local_key))
        .collect();
    assert_eq!(due, [("a".to_string(), 2), ("a".to_string(), 1)]);
    assert_eq!(read.due_timers(100, 1).unwrap().len(), 1, "the limit holds");
    assert_eq!(
        read.next_due().unwrap(),
        Some(5),
        "start timers count, a suspended instance's timer does not"
    );
    let keys = |page: &Page<TimerRow>| {
        page.items
            .iter()
            .map(|t| format!("{}.{}", t.instance_id, t.local_key))
            .collect::<Vec<_>>()
    };
    let first = read
        .timers(&TimerFilter::default(), &PageRequest::first(2))
        .unwrap();
    assert_eq!(
        keys(&first),
        ["s.1", "a.2"],
        "every pending timer, suspended or not, in due order"
    );
    let rest = read
        .timers(
            &TimerFilter::default(),
            &PageRequest {
                after: first.next,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(keys(&rest), ["a.1", "b.1"]);
    let of_a = read
        .timers(
            &TimerFilter {
                instance_id: Some("a".into()),
                due_before: Some(15),
                tenants: None,
            },
            &PageRequest::first(10),
        )
        .unwrap();
    assert_eq!(keys(&of_a), ["a.2"]);
    assert_eq!(read.timer("b", 1).unwrap().map(|t| t.due_at), Some(30));
    assert_eq!(read.timer("b", 2).unwrap(), None);
    drop(read);
    write(
        store,
        vec![
            Write::DeleteStartTimers {
                tenant: DEFAULT_TENANT.into(),
                process_id: "p".into(),
            },
            Write::DeleteTimer {
                instance_id: "a".into(),
                local_key: 2,
            },
        ],
    );
    assert_eq!(store.read().unwrap().next_due().unwrap(), Some(20));
    assert!(store.read().unwrap().activatable_jobs("work", &None, 100, 10).unwrap().is_empty(), "a suspended instance's job waits");
    // Resumed: its timer and its job are due and free again.
    write(
        store,
        vec![
            Write::PutInstance(Box::new(InstanceRow { update_count: 1, ..instance("s", "p", Status::Running, 0) })),
            Write::HoldWaits { instance_id: "s".into(), held: false },
        ],
    );
    let mut read = store.read().unwrap();
    assert_eq!(read.next_due().unwrap(), Some(1));
    assert_eq!(read.due_timers(25, 10).unwrap().iter().map(|t| t.instance_id.as_str()).collect::<Vec<_>>(), ["s", "a"]);
    assert_eq!(read.activatable_jobs("work", &None, 100, 10).unwrap().iter().map(|j| j.key.as_str()).collect::<Vec<_>>(), ["s.2"]);
}

fn history(store: &dyn Store) {
    let entry = |n: u64| history_row("i", n, &format!("e{n}"));
    write(
        store,
        (1..=12)
            .map(|n| Write::AppendHistory(entry(n)))
            .chain([Write::AppendHistory(HistoryRow {
                instance_id: "other".into(),
                ..entry(1)
            })])
            .collect(),
    );
    let mut read = store.read().unwrap();
    let first = read
        .history("i", &HistoryFilter::default(), &PageRequest::first(10))
        .unwrap();
    assert_eq!(
        first.items.iter().map(|h| h.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    let rest = read
        .history(
            "i",
            &HistoryFilter::default(),
            &PageRequest {
                after: first.next,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|h| h.seq).collect::<Vec<_>>(),
        [11, 12]
    );
    assert_eq!(rest.next, None);
    drop(read);

    // Filters: entries of run 2, an element, a kind of entry; pages count matches only.
    let mut tagged: Vec<Write> = Vec::new();
    for n in 1..=6u64 {
        let mut row = entry(n);
        row.instance_id = "f".into();
        row.entry.run = if n > 3 { 2 } else { 1 };
        row.entry.element_id = if n % 2 == 0 {
            "even".into()
        } else {
            "odd".into()
        };
        row.entry.event = if n == 5 {
            HistoryEvent::IncidentRaised
        } else {
            HistoryEvent::Completed
        };
        tagged.push(Write::AppendHistory(row));
    }
    write(store, tagged);
    let mut read = store.read().unwrap();
    let mut seqs = |filter: HistoryFilter, limit: usize| -> Vec<u64> {
        read.history("f", &filter, &PageRequest::first(limit))
            .unwrap()
            .items
            .iter()
            .map(|h| h.seq)
            .collect()
    };
    assert_eq!(
        seqs(
            HistoryFilter {
                run: Some(2),
                ..HistoryFilter::default()
            },
            10
        ),
        [4, 5, 6]
    );
    assert_eq!(
        seqs(
            HistoryFilter {
                element_id: Some("even".into()),
                ..HistoryFilter::default()
            },
            2
        ),
        [2, 4],
        "a page of matches"
    );
    assert_eq!(
        seqs(
            HistoryFilter {
                event: Some(HistoryEvent::IncidentRaised),
                ..HistoryFilter::default()
            },
            10
        ),
        [5]
    );
    assert_eq!(
        seqs(
            HistoryFilter {
                element_type: Some("task".into()),
                run: Some(1),
                ..HistoryFilter::default()
            },
            10
        ),
        [1, 2, 3]
    );
    drop(read);

    // A row written again with a seq that exists replaces it, in place; one that
    // fills a gap goes where its seq says.
    let mut again = entry(5);
    again.entry.element_id = "rewritten".into();
    write(
        store,
        vec![
            Write::AppendHistory(again),
            Write::AppendHistory(entry(14)),
            Write::AppendHistory(entry(13)),
        ],
    );
    let all = store
        .read()
        .unwrap()
        .history("i", &HistoryFilter::default(), &PageRequest::first(100))
        .unwrap()
        .items;
    assert_eq!(
        all.iter().map(|h| h.seq).collect::<Vec<_>>(),
        (1..=14).collect::<Vec<_>>()
    );
    assert_eq!(all[4].entry.element_id, "rewritten");
    assert_eq!(all[5].entry.element_id, "e6");
    assert_eq!(all[12].entry.element_id, "e13");
}

fn other_lists(store: &dyn Store) {
    let mut failed = job("b.1", "b", "mail", 2);
    failed.state = JobState::Failed;
    let task = |key: &str, assignee: Option<&str>, groups: &[&str]| TaskRow {
        key: key.into(),
        instance_id: "a".into(),
        local_key: 1,
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        element_id: "t".into(),
        assignee: assignee.map(str::to_string),
        candidate_groups: groups.iter().map(|g| g.to_string()).collect(),
        candidate_users: vec![],
        due: None,
        follow_up: None,
        priority: None,
        form_key: None,
        created_at: 1,
        completed_at: None,
        completed_by: None,
    };
    write(
        store,
        vec![
            Write::PutJob(job("a.1", "a", "mail", 1)),
            Write::PutJob(failed),
            Write::PutTask(task("a.1", Some("ann"), &["sales"])),
            Write::PutTask(task("a.2", None, &["ops", "sales"])),
            Write::PutIncident(IncidentRow {
                key: "b.9".into(),
                instance_id: "b".into(),
                local_key: 9,
                process_id: "q".into(),
                tenant: DEFAULT_TENANT.into(),
                element_id: "x".into(),
                kind: "expression".into(),
                message: "m".into(),
                created_at: 1,
                resolved_at: None,
                resolved_by: None,
            }),
        ],
    );
    let mut read = store.read().unwrap();
    let page = PageRequest::first(10);
    assert_eq!(
        read.jobs(
            &JobFilter {
                state: Some(JobState::Failed),
                ..JobFilter::default()
            },
            &page
        )
        .unwrap()
        .items
        .len(),
        1
    );
    assert_eq!(
        read.jobs(
            &JobFilter {
                job_type: Some("mail".into()),
                ..JobFilter::default()
            },
            &page
        )
        .unwrap()
        .items
        .len(),
        2
    );
    assert_eq!(
        read.tasks(
            &TaskFilter {
                assignee: Some("ann".into()),
                ..TaskFilter::default()
            },
            &page
        )
        .unwrap()
        .items
        .len(),
        1
    );
    assert_eq!(
        read.tasks(
            &TaskFilter {
                candidate_group: Some("sales".into()),
                ..TaskFilter::default()
            },
            &page
        )
        .unwrap()
        .items
        .len(),
        2
    );
    assert_eq!(
        read.incidents(
            &IncidentFilter {
                process_id: Some("q".into()),
                ..IncidentFilter::default()
            },
            &page
        )
        .unwrap()
        .items
        .len(),
        1
    );
    assert_eq!(
        read.incidents(
            &IncidentFilter {
                instance_id: Some("a".into()),
                ..IncidentFilter::default()
            },
            &page
        )
        .unwrap()
        .items
        .len(),
        0
    );
    drop(read);
    // A group's open tasks follow each write of a task: its groups changed,
    // named twice, completed, deleted, its instance deleted.
    let mut again = task("a.2", None, &["ops"]);
    again.created_at = 2;
    write(
        store,
        vec![
            Write::PutTask(again),
            Write::PutTask(task("a.3", None, &["sales", "sales"])),
            Write::CompleteTask { key: "a.1".into(), at: 5, by: Some("ann".into()) },
        ],
    );
    let of_group = |store: &dyn Store, group: &str, state: TaskState| -> Vec<String> {
        let filter = TaskFilter { candidate_group: Some(group.into()), state, ..TaskFilter::default() };
        store.read().unwrap().tasks(&filter, &PageRequest::first(10)).unwrap().items.into_iter().map(|t| t.key).collect()
    };
    assert_eq!(of_group(store, "sales", TaskState::Open), ["a.3"]);
    assert_eq!(of_group(store, "sales", TaskState::Completed), ["a.1"]);
    assert_eq!(of_group(store, "sales", TaskState::All), ["a.1", "a.3"]);
    assert_eq!(of_group(store, "ops", TaskState::Open), ["a.2"]);
    // A group's completed tasks too: one written as completed, and in list
    // order (created, then key), a page at a time.
    let mut done = task("a.4", None, &["sales", "ops"]);
    (done.created_at, done.completed_at) = (0, Some(6));
    write(store, vec![Write::PutTask(done)]);
    assert_eq!(of_group(store, "sales", TaskState::Completed), ["a.4", "a.1"]);
    assert_eq!(of_group(store, "sales", TaskState::All), ["a.4", "a.1", "a.3"]);
    assert_eq!(of_group(store, "ops", TaskState::Open), ["a.2"]);
    assert_eq!(of_group(store, "ops", TaskState::Completed), ["a.4"]);
    let completed = TaskFilter { candidate_group: Some("sales".into()), state: TaskState::Completed, ..TaskFilter::default() };
    let first = store.read().unwrap().tasks(&completed, &PageRequest::first(1)).unwrap();
    assert_eq!(first.items.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["a.4"]);
    let next = PageRequest { after: first.next, limit: 1 };
    let second = store.read().unwrap().tasks(&completed, &next).unwrap();
    assert_eq!(second.items.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["a.1"]);
    write(store, vec![Write::DeleteTask { key: "a.4".into() }]);
    assert_eq!(of_group(store, "ops", TaskState::All), ["a.2"]);
    write(store, vec![Write::DeleteTask { key: "a.3".into() }]);
    assert!(of_group(store, "sales", TaskState::Open).is_empty());
    write(store, vec![Write::PutInstance(Box::new(instance("a", "p", Status::Completed, 1)))]);
    write(store, vec![Write::DeleteInstance { id: "a".into() }]);
    assert!(of_group(store, "ops", TaskState::Open).is_empty());
    assert!(of_group(store, "sales", TaskState::All).is_empty());
}

fn instance_versions(store: &dyn Store) {
    // A store may find the conflict at the write or, at the latest, when the transaction commits.
    let mut row = instance("v", "p", Status::Running, 1);
    let mut txn = store.write().unwrap();
    txn.put_instance_if(&row, None).unwrap();
    txn.commit().unwrap();
    let mut txn = store.write().unwrap();
    let again = txn.put_instance_if(&row, None).and_then(|()| txn.commit()).unwrap_err();
    assert!(again.is_conflict(), "a new instance that exists already: {again}");
    row.update_count = 2;
    let mut txn = store.write().unwrap();
    txn.put_instance_if(&row, Some(1)).unwrap();
    txn.commit().unwrap();
    // Another writer read version 1 and writes its version 2 over ours: refused, and nothing changes.
    let mut stale = row.clone();
    stale.business_key = Some("stale".into());
    let mut txn = store.write().unwrap();
    let refused = txn.put_instance_if(&stale, Some(1)).and_then(|()| txn.commit()).unwrap_err();
    assert!(refused.is_conflict() && refused.is_unavailable(), "{refused}");
    let kept = store.read().unwrap().instance("v").unwrap().unwrap();
    assert_eq!((kept.update_count, kept.business_key), (2, None));
    // Read at the version the store holds: written.
    let mut txn = store.write().unwrap();
    row.update_count = 3;
    txn.put_instance_if(&row, Some(2)).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.read().unwrap().instance("v").unwrap().unwrap().update_count, 3);
}

fn instance_numbers(store: &dyn Store) {
    assert_eq!(store.read().unwrap().last_instance_number().unwrap(), 0, "an empty store has given no number");
    let numbered = |id: &str, number: u64| InstanceRow { number, ..instance(id, "p", Status::Running, 1) };
    write(store, vec![Write::PutInstance(Box::new(numbered("a", 7))), Write::PutInstance(Box::new(numbered("b", 3)))]);
    let mut txn = store.write().unwrap();
    assert_eq!(txn.last_instance_number().unwrap(), 7);
    txn.put_instance(&numbered("c", 12)).unwrap();
    assert_eq!(txn.last_instance_number().unwrap(), 12, "a write transaction sees its own numbers");
    txn.savepoint().unwrap();
    txn.put_instance(&numbered("d", 20)).unwrap();
    assert_eq!(txn.last_instance_number().unwrap(), 20);
    txn.rollback_to_savepoint().unwrap();
    assert_eq!(txn.last_instance_number().unwrap(), 12, "a number rolled back to a savepoint is gone");
    txn.apply(Write::DeleteInstance { id: "c".into() }).unwrap();
    assert_eq!(txn.last_instance_number().unwrap(), 7, "a deleted instance's number is no longer the last");
    drop(txn);
    let mut txn = store.read().unwrap();
    assert_eq!(txn.last_instance_number().unwrap(), 7, "a dropped transaction's number is gone");
    assert_eq!(txn.instance_id_by_number(3).unwrap(), Some("b".to_string()));
    assert_eq!(txn.instance_id_by_number(7).unwrap(), Some("a".to_string()));
    assert_eq!(txn.instance("a").unwrap().map(|i| i.number), Some(7));
    assert_eq!(txn.instance_number("b").unwrap(), Some((3, 1)));
    assert_eq!(txn.instance_number("c").unwrap(), None);
    assert!(txn.instance_id_by_number(12).unwrap().is_none());
    assert!(txn.instance_id_by_number(0).unwrap().is_none(), "0 is no instance's number");
    drop(txn);
    // Writing an instance again keeps its number.
    write(store, vec![Write::PutInstance(Box::new(InstanceRow { update_count: 2, ..numbered("a", 7) }))]);
    assert_eq!(store.read().unwrap().instance_id_by_number(7).unwrap(), Some("a".to_string()));
}

/// What several writers on one store use, as one writer sees it: claims
/// find what the plain lookups find, a new instance number is one no
/// instance has and none given before, the last deployment is the highest key, and a lock is
/// taken (again, too) without waiting.
fn claims(store: &dyn Store) {
    let start_timer = |element_id: &str, due_at: i64| StartTimerRow {
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        version: 1,
        element_id: element_id.into(),
        due_at,
        repeat: None,
    };
    let timer = TimerRow { instance_id: "a".into(), tenant: DEFAULT_TENANT.into(), local_key: 1, element_id: "t".into(), due_at: 10 };
    let mut leased = job("a.2", "a", "work", 2);
    leased.lease_until = Some(50);
    assert_eq!(store.read().unwrap().last_deployment().unwrap(), 0, "nothing deployed yet");
    write(
        store,
        vec![
            Write::PutInstance(Box::new(InstanceRow { number: 5, ..instance("a", "p", Status::Running, 1) })),
            Write::PutJob(job("a.1", "a", "work", 1)),
            Write::PutJob(leased),
            Write::PutTimer(timer),
            Write::PutStartTimer(start_timer("early", 5)),
            Write::PutStartTimer(start_timer("late", 50)),
            Write::PutWorkflow(WorkflowRow {
                process_id: "p".into(),
                tenant: DEFAULT_TENANT.into(),
                version: 1,
                deployment: 3,
                name: None,
                version_tag: None,
                xml: "<definitions/>".into(),
                deployed_at: 1,
            }),
            Write::PutDecision(DecisionRow {
                tenant: DEFAULT_TENANT.into(),
                decision_id: "d".into(),
                version: 1,
                deployment: 4,
                name: "d".into(),
                definitions_id: "defs".into(),
                resource: "d.dmn".into(),
                xml: "<definitions/>".into(),
                deployed_at: 1,
            }),
        ],
    );
    assert_eq!(store.read().unwrap().last_deployment().unwrap(), 4, "the highest key, a decision's here");
    let mut txn = store.write().unwrap();
    txn.lock(&Lock::Deployments).unwrap();
    txn.lock(&Lock::Correlation { tenant: DEFAULT_TENANT, name: "m", correlation_key: "k" }).unwrap();
    txn.lock(&Lock::Deployments).unwrap();
    let keys = |jobs: Vec<JobRow>| jobs.into_iter().map(|j| j.key).collect::<Vec<_>>();
    assert_eq!(keys(txn.claim_jobs("work", &None, 10, 10).unwrap()), ["a.1"]);
    assert_eq!(keys(txn.claim_jobs("work", &None, 60, 10).unwrap()), ["a.1", "a.2"], "a lease that ran out");
    let (starts, timers) = txn.claim_due_timers(20, 10).unwrap();
    assert_eq!(starts.iter().map(|t| t.element_id.as_str()).collect::<Vec<_>>(), ["early"]);
    assert_eq!(timers.iter().map(|t| (t.instance_id.as_str(), t.local_key)).collect::<Vec<_>>(), [("a", 1)]);
    let (starts, timers) = txn.claim_due_timers(20, 1).unwrap();
    assert_eq!((starts.len(), timers.len()), (1, 0), "start timers first, within the limit");
    let first = txn.next_instance_number(None).unwrap();
    assert!(first != 5 && first > 0, "a number no instance has ({first})");
    txn.put_instance(&InstanceRow { number: first, ..instance("b", "p", Status::Running, 2) }).unwrap();
    let second = txn.next_instance_number(Some(first)).unwrap();
    assert!(![0, 5, first].contains(&second), "{second} after {first}");
    txn.put_instance(&InstanceRow { number: second, ..instance("c", "p", Status::Running, 3) }).unwrap();
    txn.commit().unwrap();
    let mut txn = store.write().unwrap();
    let third = txn.next_instance_number(None).unwrap();
    assert!(![0, 5, first, second].contains(&third), "{third} after {second}, in a new transaction");
}

/// The `seq`th history entry of an instance: a task at `element_id` completed at time `seq`.
pub fn history_row(instance_id: &str, seq: u64, element_id: &str) -> HistoryRow {
    HistoryRow {
        instance_id: instance_id.into(),
        seq,
        entry: HistoryEntry {
            at: seq as i64,
            element_instance: seq,
            element_id: element_id.into(),
            element_type: "task".into(),
            event: HistoryEvent::Completed,
            loop_counter: 1,
            started_at: 0,
            element_name: None,
            run: 1,
            iteration: 1,
            actor: None,
            reason: None,
            detail: None,
        },
    }
}

fn deletions(store: &dyn Store) {
    let numbered = |id: &str, number: u64, status: Status| InstanceRow { number, ..instance(id, "p", status, i64::try_from(number).unwrap()) };
    let history = |id: &str, seq: u64| history_row(id, seq, "e");
    let timer = |id: &str| TimerRow { instance_id: id.into(), tenant: DEFAULT_TENANT.into(), local_key: 1, element_id: "t".into(), due_at: 5 };
    let mut writes = Vec::new();
    for (id, number) in [("a", 1), ("b", 2)] {
        let mut row = numbered(id, number, Status::Completed);
        row.state.labels = [("region".to_string(), "eu".to_string())].into();
        writes.extend([
            Write::PutInstance(Box::new(row)),
            Write::PutJob(job(&format!("{id}.1"), id, "work", 1)),
            Write::PutTimer(timer(id)),
            Write::PutSubscription(subscription(id, 2, SubscriptionKind::Message, "m", "k", 1)),
            Write::PutTask(task(&format!("{id}.3"), id, 1)),
            Write::PutIncident(incident(id, 4, 1)),
            Write::AppendHistory(history(id, 1)),
            Write::AppendHistory(history(id, 2)),
            Write::PutLabels { instance_id: id.into(), labels: [("region".to_string(), "eu".to_string())].into() },
            Write::PutRequest { tenant: DEFAULT_TENANT.into(), request_id: format!("r-{id}"), instance_id: id.into() },
        ]);
    }
    writes.push(Write::PutInstance(Box::new(numbered("c", 3, Status::Running))));
    // A request id that named `a`, then `c`: it is `c`'s when `a` goes.
    writes.push(Write::PutRequest { tenant: DEFAULT_TENANT.into(), request_id: "r-moved".into(), instance_id: "a".into() });
    writes.push(Write::PutRequest { tenant: DEFAULT_TENANT.into(), request_id: "r-moved".into(), instance_id: "c".into() });
    writes.push(Write::ScheduleDeletion { instance_id: "a".into(), at: 50 });
    writes.push(Write::ScheduleDeletion { instance_id: "b".into(), at: 20 });
    writes.push(Write::ScheduleDeletion { instance_id: "c".into(), at: 70 });
    writes.push(Write::ScheduleDeletion { instance_id: "b".into(), at: 30 });
    writes.push(Write::ScheduleDeletion { instance_id: "d".into(), at: 10 });
    writes.push(Write::CancelDeletion { instance_id: "d".into() });
    write(store, writes);
    let mut read = store.read().unwrap();
    assert!(read.due_deletions(10, 10).unwrap().is_empty());
    assert_eq!(read.due_deletions(40, 10).unwrap(), ["b"], "b was scheduled again, for 30");
    assert_eq!((read.scheduled_deletion("b").unwrap(), read.scheduled_deletion("d").unwrap()), (Some(30), None));
    assert_eq!(read.due_deletions(100, 2).unwrap(), ["b", "a"], "in due order, within the limit");
    let counted = |read: &mut dyn ReadTxn| read.instance_counts(&None).unwrap().iter().map(|c| c.count).sum::<u64>();
    assert_eq!(counted(read.as_mut()), 3);
    drop(read);

    let mut txn = store.write().unwrap();
    txn.apply(Write::DeleteInstance { id: "b".into() }).unwrap();
    drop(txn);
    assert!(store.read().unwrap().instance("b").unwrap().is_some(), "a dropped transaction deleted nothing");

    write(store, vec![Write::DeleteInstance { id: "a".into() }]);
    let mut read = store.read().unwrap();
    assert!(read.instance("a").unwrap().is_none());
    assert!(read.instance_id_by_number(1).unwrap().is_none());
    assert!(read.job("a.1").unwrap().is_none());
    assert!(read.timer("a", 1).unwrap().is_none());
    assert!(read.task("a.3").unwrap().is_none());
    assert!(read.incident("a.4").unwrap().is_none());
    assert!(read.history("a", &HistoryFilter::default(), &PageRequest::first(10)).unwrap().items.is_empty());
    assert!(read.instance_by_request(DEFAULT_TENANT, "r-a").unwrap().is_none());
    assert_eq!(read.instance_by_request(DEFAULT_TENANT, "r-moved").unwrap().as_deref(), Some("c"));
    let subscriptions = read.subscriptions(&SubscriptionFilter::default(), &PageRequest::first(10)).unwrap().items;
    assert_eq!(subscriptions.iter().map(|s| s.instance_id.as_str()).collect::<Vec<_>>(), ["b"]);
    let labelled = InstanceFilter { label: Some(("region".into(), "eu".into())), ..InstanceFilter::default() };
    assert_eq!(read.instances(&labelled, &PageRequest::first(10)).unwrap().items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(read.due_deletions(100, 10).unwrap(), ["b", "c"], "its scheduled deletion went with it");
    assert_eq!(counted(read.as_mut()), 2, "the counts follow");
    assert!(read.job("b.1").unwrap().is_some() && read.history("b", &HistoryFilter::default(), &PageRequest::first(10)).unwrap().items.len() == 2, "b keeps its rows");
}

fn instance_counts(store: &dyn Store) {
    let counts = |txn: &mut dyn ReadTxn, tenants: &Tenants| -> Vec<(String, u32, &'static str, bool, u64)> {
        let mut rows: Vec<_> = txn
            .instance_counts(tenants)
            .unwrap()
            .into_iter()
            .map(|c| (c.process_id, c.version, c.status.as_str(), c.with_incidents, c.count))
            .collect();
        rows.sort();
        rows
    };
    let mut other = instance("c", "p", Status::Running, 3);
    other.tenant = "acme".into();
    let mut second = instance("d", "p", Status::Running, 4);
    second.version = 2;
    write(
        store,
        vec![
            Write::PutInstance(Box::new(instance("a", "p", Status::Running, 1))),
            Write::PutInstance(Box::new(instance("b", "p", Status::Running, 2))),
            Write::PutInstance(Box::new(other)),
            Write::PutInstance(Box::new(second)),
            Write::PutInstance(Box::new(instance("e", "q", Status::Running, 5))),
        ],
    );
    let mut txn = store.write().unwrap();
    // An instance written again unchanged counts once.
    txn.put_instance(&instance("a", "p", Status::Running, 1)).unwrap();
    let mut incident = instance("b", "p", Status::Running, 2);
    incident.incidents = 2;
    txn.put_instance(&incident).unwrap();
    txn.put_instance(&instance("e", "q", Status::Completed, 5)).unwrap();
    txn.savepoint().unwrap();
    txn.put_instance(&instance("a", "p", Status::Cancelled, 1)).unwrap();
    txn.put_instance(&instance("f", "q", Status::Running, 6)).unwrap();
    txn.rollback_to_savepoint().unwrap();
    txn.commit().unwrap();
    let mut read = store.read().unwrap();
    assert_eq!(
        counts(read.as_mut(), &Some(vec![DEFAULT_TENANT.into()])),
        [
            ("p".to_string(), 1, "running", false, 1),
            ("p".to_string(), 1, "running", true, 1),
            ("p".to_string(), 2, "running", false, 1),
            ("q".to_string(), 1, "completed", false, 1),
        ],
        "no empty counts, and the rolled back command counted nothing"
    );
    assert_eq!(counts(read.as_mut(), &Some(vec!["acme".into()])), [("p".to_string(), 1, "running", false, 1)]);
    assert_eq!(counts(read.as_mut(), &None).len(), 5);
    assert_eq!(read.count_instances().unwrap(), [(Status::Completed, 1), (Status::Running, 4)]);
    drop(read);

    // As the runtime writes: an instance ends in place, a new one starts;
    // the transaction's own counts show what it wrote before it commits.
    let mut txn = store.write().unwrap();
    let stored = txn.instance_version("d").unwrap();
    let mut ended = instance("d", "p", Status::Completed, 4);
    ended.version = 2;
    ended.update_count = 2;
    txn.put_instance_if(&ended, stored).unwrap();
    txn.put_instance_if(&instance("g", "q", Status::Running, 7), None).unwrap();
    let in_flight = counts(txn.as_mut(), &Some(vec![DEFAULT_TENANT.into()]));
    assert!(in_flight.contains(&("p".to_string(), 2, "completed", false, 1)) && in_flight.contains(&("q".to_string(), 1, "running", false, 1)), "{in_flight:?}");
    assert!(!in_flight.iter().any(|c| c.0 == "p" && c.1 == 2 && c.2 == "running"), "{in_flight:?}");
    txn.commit().unwrap();
    let mut read = store.read().unwrap();
    assert_eq!(read.count_instances().unwrap(), [(Status::Completed, 2), (Status::Running, 4)]);
}

fn completed_tasks_and_forms(store: &dyn Store) {
    let task = |key: &str, created_at: i64| task(key, "a", created_at);
    let decision = |tenant: &str, decision_id: &str, version: u32| DecisionRow {
        tenant: tenant.into(),
        decision_id: decision_id.into(),
        version,
        deployment: version as u64,
        name: "Discount".into(),
        definitions_id: "d".into(),
        resource: "discount.dmn".into(),
        xml: format!("<definitions v=\"{version}\"/>"),
        deployed_at: 7,
    };
    let form = |tenant: &str, form_id: &str, version: u32| FormRow {
        tenant: tenant.into(),
        form_id: form_id.into(),
        version,
        deployment: version as u64,
        version_tag: (version == 1).then(|| "v1".to_string()),
        resource: format!("{form_id}.form"),
        schema: format!("{{\"id\":\"{form_id}\",\"components\":[],\"v\":{version}}}"),
        deployed_at: 5,
    };
    write(
        store,
        vec![
            Write::PutTask(task("a.1", 1)),
            Write::PutTask(task("a.2", 2)),
            Write::PutTask(task("a.3", 3)),
            Write::CompleteTask { key: "a.2".into(), at: 9, by: Some("ann".into()) },
            Write::CompleteTask { key: "a.3".into(), at: 10, by: Some("bob".into()) },
            // Completing a task that is not there changes nothing.
            Write::CompleteTask { key: "zz".into(), at: 11, by: None },
            Write::PutForm(form("default", "order", 1)),
            Write::PutForm(form("default", "order", 2)),
            Write::PutForm(form("default", "leave", 1)),
            Write::PutForm(form("acme", "order", 1)),
            Write::PutDecision(decision("default", "discount", 1)),
            Write::PutDecision(decision("default", "discount", 2)),
            Write::PutDecision(decision("acme", "discount", 1)),
        ],
    );
    let mut read = store.read().unwrap();
    let page = PageRequest::first(10);
    let keys = |read: &mut Box<dyn ReadTxn + '_>, filter: TaskFilter| -> Vec<String> {
        read.tasks(&filter, &page).unwrap().items.into_iter().map(|t| t.key).collect()
    };
    assert_eq!(keys(&mut read, TaskFilter::default()), ["a.1"], "open tasks only, by default");
    assert_eq!(keys(&mut read, TaskFilter { state: TaskState::Completed, ..TaskFilter::default() }), ["a.2", "a.3"]);
    assert_eq!(keys(&mut read, TaskFilter { state: TaskState::All, ..TaskFilter::default() }), ["a.1", "a.2", "a.3"]);
    assert_eq!(
        keys(&mut read, TaskFilter { state: TaskState::Completed, completed_by: Some("bob".into()), ..TaskFilter::default() }),
        ["a.3"]
    );
    let done = read.task("a.2").unwrap().unwrap();
    assert_eq!((done.completed_at, done.completed_by.as_deref()), (Some(9), Some("ann")));
    assert_eq!(read.task("zz").unwrap(), None);
    let ids = |forms: Vec<FormRow>| forms.into_iter().map(|f| (f.tenant, f.form_id, f.version)).collect::<Vec<_>>();
    let all = read.forms(&None, None).unwrap();
    assert_eq!(all[1], form("default", "leave", 1), "a form comes back as it was written");
    assert_eq!(
        ids(all),
        [
            ("acme".to_string(), "order".to_string(), 1),
            ("default".to_string(), "leave".to_string(), 1),
            ("default".to_string(), "order".to_string(), 1),
            ("default".to_string(), "order".to_string(), 2),
        ]
    );
    assert_eq!(
        ids(read.forms(&Some(vec!["default".into()]), Some("order")).unwrap()),
        [("default".to_string(), "order".to_string(), 1), ("default".to_string(), "order".to_string(), 2)]
    );
    assert!(read.forms(&Some(vec!["beta".into()]), None).unwrap().is_empty());
    let decisions = read.decisions(&Some(vec!["default".into()]), Some("discount")).unwrap();
    assert_eq!(decisions, [decision("default", "discount", 1), decision("default", "discount", 2)]);
    assert_eq!(read.decisions(&None, None).unwrap().len(), 3);
}

fn incident(instance_id: &str, local_key: u64, created_at: i64) -> IncidentRow {
    IncidentRow {
        key: format!("{instance_id}.{local_key}"),
        instance_id: instance_id.to_string(),
        local_key,
        process_id: "p".into(),
        tenant: DEFAULT_TENANT.into(),
        element_id: "x".into(),
        kind: "expression".into(),
        message: "m".into(),
        created_at,
        resolved_at: None,
        resolved_by: None,
    }
}

fn descendant_incidents(store: &dyn Store) {
    // "a" called "a/3", which called "a/3/7"; "a0" and "ab" are other roots whose ids
    // sort right beside a's descendants, and "a/3" has an incident of its own too.
    let mut writes: Vec<Write> = ["a", "a/3", "a/3/7", "a0", "ab", "b"]
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let mut row = instance(id, "p", Status::Running, n as i64);
            row.incidents = u32::from(!["a", "b"].contains(id));
            Write::PutInstance(Box::new(row))
        })
        .collect();
    writes.extend([
        Write::PutIncident(incident("a/3/7", 1, 10)),
        Write::PutIncident(incident("a/3", 2, 11)),
        Write::PutIncident(incident("a0", 1, 12)),
        Write::PutIncident(incident("ab", 1, 13)),
    ]);
    write(store, writes);
    let mut read = store.read().unwrap();
    assert_eq!(
        read.descendant_incidents("a").unwrap(),
        2,
        "a child's and a grandchild's"
    );
    assert_eq!(
        read.descendant_incidents("a/3").unwrap(),
        1,
        "the child's own incident is not its descendants'"
    );
    assert_eq!(read.descendant_incidents("a/3/7").unwrap(), 0);
    assert_eq!(
        read.descendant_incidents("a0").unwrap(),
        0,
        "a root whose id follows a/ is no descendant"
    );
    let page = PageRequest::first(10);
    let keys = |read: &mut dyn crate::ReadTxn, filter: IncidentFilter| -> Vec<String> {
        read.incidents(&filter, &page)
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.key)
            .collect()
    };
    let of_a = IncidentFilter {
        instance_id: Some("a".into()),
        ..IncidentFilter::default()
    };
    assert_eq!(
        keys(read.as_mut(), of_a.clone()),
        Vec::<String>::new(),
        "a has none of its own"
    );
    assert_eq!(
        keys(
            read.as_mut(),
            IncidentFilter {
                with_descendants: true,
                ..of_a
            }
        ),
        ["a/3/7.1", "a/3.2"]
    );
    let child = IncidentFilter {
        instance_id: Some("a/3".into()),
        with_descendants: true,
        ..IncidentFilter::default()
    };
    assert_eq!(keys(read.as_mut(), child), ["a/3/7.1", "a/3.2"]);
    let ids = |read: &mut dyn crate::ReadTxn, has: bool| -> Vec<String> {
        let filter = InstanceFilter {
            has_incidents: Some(has),
            ..InstanceFilter::default()
        };
        read.instances(&filter, &page)
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(
        ids(read.as_mut(), true),
        ["a", "a/3", "a/3/7", "a0", "ab"],
        "the root is found by its descendants' incidents"
    );
    assert_eq!(ids(read.as_mut(), false), ["b"]);
    drop(read);

    // A resolved incident no longer counts, but stays listed as resolved, with who resolved it.
    write(
        store,
        vec![Write::ResolveIncident {
            key: "a/3/7.1".into(),
            at: 20,
            by: Some("ops".into()),
        }],
    );
    let mut read = store.read().unwrap();
    assert_eq!(read.descendant_incidents("a").unwrap(), 1);
    let of_a = IncidentFilter {
        instance_id: Some("a".into()),
        with_descendants: true,
        ..IncidentFilter::default()
    };
    assert_eq!(
        keys(read.as_mut(), of_a.clone()),
        ["a/3.2"],
        "open ones by default"
    );
    let resolved = read
        .incidents(
            &IncidentFilter {
                state: IncidentState::Resolved,
                ..of_a.clone()
            },
            &page,
        )
        .unwrap()
        .items;
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].resolved_at, resolved[0].resolved_by.as_deref()),
        (Some(20), Some("ops"))
    );
    assert_eq!(
        keys(
            read.as_mut(),
            IncidentFilter {
                state: IncidentState::All,
                ..of_a
            }
        )
        .len(),
        2
    );
    drop(read);
    write(
        store,
        vec![
            Write::ResolveIncident {
                key: "a/3.2".into(),
                at: 21,
                by: None,
            },
            Write::ResolveIncident {
                key: "a0.1".into(),
                at: 21,
                by: None,
            },
        ],
    );
    let mut read = store.read().unwrap();
    let mut with_incidents = ids(read.as_mut(), true);
    with_incidents.sort();
    // The rows' own counts say a/3 and a0 still have theirs; only descendants' rows are looked up.
    assert!(
        !with_incidents.contains(&"a".to_string()),
        "a's descendants have none open: {with_incidents:?}"
    );
    let family = InstanceFilter {
        root_id: Some("a".into()),
        ..InstanceFilter::default()
    };
    let listed: Vec<String> = read
        .instances(&family, &page)
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        listed,
        ["a", "a/3", "a/3/7"],
        "a root and everything it called"
    );
}

fn tokens(store: &dyn Store) {
    let token = |id: &str, name: &str| TokenRow {
        id: id.into(),
        name: name.into(),
        hash: format!("hash-of-{id}"),
        roles: vec!["worker".into()],
        job_types: Some(vec!["mail".into()]),
        workflows: None,
        groups: vec!["ops".into()],
        tenants: vec!["acme".into()],
        hide_variables: true,
        created_at: 5,
        expires_at: Some(50),
        revoked_at: None,
    };
    write(
        store,
        vec![
            Write::PutToken(token("t2", "zed")),
            Write::PutToken(token("t1", "ann")),
        ],
    );
    let listed = store.read().unwrap().tokens().unwrap();
    assert_eq!(
        listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["ann", "zed"]
    );
    assert_eq!(listed[0], token("t1", "ann"), "every field comes back");
    let mut revoked = token("t2", "zed");
    revoked.revoked_at = Some(9);
    write(store, vec![Write::PutToken(revoked)]);
    let listed = store.read().unwrap().tokens().unwrap();
    assert_eq!((listed.len(), listed[1].revoked_at), (2, Some(9)));
}

fn free_jobs_of_several_tenants(store: &dyn Store) {
    let mut writes = Vec::new();
    for (id, tenant) in [("a", "acme"), ("b", "beta")] {
        let mut row = instance(id, "p", Status::Running, 1);
        row.tenant = tenant.into();
        writes.push(Write::PutInstance(Box::new(row)));
    }
    for (key, tenant, created_at, lease_until) in
        [("a.1", "acme", 1, None), ("b.1", "beta", 1, None), ("a.2", "acme", 4, None), ("b.2", "beta", 2, Some(5)), ("b.3", "beta", 3, None), ("a.3", "acme", 0, Some(50))]
    {
        let mut free = job(key, &key[..1], "work", created_at);
        free.tenant = tenant.into();
        free.lease_until = lease_until;
        writes.push(Write::PutJob(free));
    }
    write(store, writes);
    let mut read = store.read().unwrap();
    let keys = |jobs: Vec<JobRow>| jobs.into_iter().map(|j| j.key).collect::<Vec<_>>();
    let both = Some(vec!["beta".to_string(), "acme".to_string()]);
    assert_eq!(keys(read.activatable_jobs("work", &both, 10, 10).unwrap()), ["a.1", "b.1", "b.2", "b.3", "a.2"]);
    assert_eq!(keys(read.activatable_jobs("work", &None, 10, 3).unwrap()), ["a.1", "b.1", "b.2"], "the oldest of every tenant's");
    assert_eq!(keys(read.activatable_jobs("work", &None, 50, 2).unwrap()), ["a.3", "a.1"], "a lease that ran out, in its place by age");
    assert_eq!(keys(read.activatable_jobs("work", &Some(vec!["acme".into()]), 50, 10).unwrap()), ["a.3", "a.1", "a.2"]);
}

fn started_by_key(store: &dyn Store) {
    let started = |id: &str, key: Option<&str>, status: Status| {
        let mut row = instance(id, "p", status, 1);
        row.start_key = key.map(str::to_string);
        Write::PutInstance(Box::new(row))
    };
    let active = |store: &dyn Store, key: &str| store.read().unwrap().message_started_active(DEFAULT_TENANT, "p", key).unwrap();
    write(store, vec![started("a", Some("k"), Status::Running), started("b", Some("k2"), Status::Completed), started("c", None, Status::Running)]);
    assert!(active(store, "k"));
    assert!(!active(store, "k2"), "its one instance has ended");
    assert!(!active(store, "k3"));
    // Another instance of the key, then the first ends: the other is active.
    write(store, vec![started("d", Some("k"), Status::Suspended), started("a", Some("k"), Status::Completed)]);
    assert!(active(store, "k"), "a suspended one is still active");
    write(store, vec![Write::DeleteInstance { id: "d".into() }]);
    assert!(!active(store, "k"), "the one left has ended");
    // A rolled back start leaves nothing behind.
    let mut txn = store.write().unwrap();
    txn.apply(started("e", Some("k4"), Status::Running)).unwrap();
    drop(txn);
    assert!(!active(store, "k4"));
}

fn lists_of_several_tenants(store: &dyn Store) {
    // Three tenants' jobs, incidents (some resolved) and timers, their times interleaved.
    let rows = [("a", "acme", 5), ("b", "beta", 1), ("c", "default", 3), ("d", "acme", 2), ("e", "beta", 4), ("f", "default", 6), ("g", "acme", 7)];
    let mut writes = Vec::new();
    for (id, tenant, at) in rows {
        // Two workflows, one's id the other's and more (a merge that sorted
        // cursors as text would put it first), and two statuses.
        let process = if at % 3 == 0 { "p-x" } else { "p" };
        let mut row = instance(id, process, if at % 2 == 0 { Status::Completed } else { Status::Running }, at);
        row.tenant = tenant.into();
        writes.push(Write::PutInstance(Box::new(row)));
        let mut job = job(&format!("{id}.1"), id, if at % 2 == 0 { "even" } else { "odd" }, at);
        job.tenant = tenant.into();
        writes.push(Write::PutJob(job));
        let mut incident = incident(id, 2, at);
        incident.tenant = tenant.into();
        incident.resolved_at = (at == 4 || at == 5).then_some(9);
        writes.push(Write::PutIncident(incident));
        writes.push(Write::PutTimer(TimerRow { instance_id: id.into(), tenant: tenant.into(), local_key: 3, element_id: "wait".into(), due_at: 100 - at }));
    }
    write(store, writes);
    let mut read = store.read().unwrap();
    // Every page of two, joined: the whole list in order.
    fn whole<T: Cursor>(mut page: impl FnMut(&PageRequest) -> Page<T>, id: fn(&T) -> String) -> Vec<String> {
        let (mut ids, mut request) = (Vec::new(), PageRequest::first(2));
        loop {
            let found = page(&request);
            ids.extend(found.items.iter().map(id));
            match found.next {
                Some(next) => request = PageRequest { after: Some(next), limit: 2 },
                None => return ids,
            }
        }
    }
    let job_ids = |read: &mut Box<dyn crate::ReadTxn + '_>, filter: JobFilter| whole(|page| read.jobs(&filter, page).unwrap(), |j| j.instance_id.clone());
    assert_eq!(job_ids(&mut read, JobFilter::default()), ["b", "d", "c", "e", "a", "f", "g"]);
    let two = Some(vec!["acme".to_string(), "beta".to_string()]);
    assert_eq!(job_ids(&mut read, JobFilter { tenants: two.clone(), ..JobFilter::default() }), ["b", "d", "e", "a", "g"]);
    assert_eq!(job_ids(&mut read, JobFilter { job_type: Some("odd".into()), ..JobFilter::default() }), ["b", "c", "a", "g"]);
    assert_eq!(job_ids(&mut read, JobFilter { job_type: Some("even".into()), tenants: two.clone(), ..JobFilter::default() }), ["d", "e"]);
    let open = whole(|page| read.incidents(&IncidentFilter::default(), page).unwrap(), |i| i.instance_id.clone());
    assert_eq!(open, ["b", "d", "c", "f", "g"], "open incidents, every tenant's");
    let resolved = IncidentFilter { state: IncidentState::Resolved, tenants: two.clone(), ..IncidentFilter::default() };
    assert_eq!(whole(|page| read.incidents(&resolved, page).unwrap(), |i| i.instance_id.clone()), ["e", "a"]);
    let timers = whole(|page| read.timers(&TimerFilter::default(), page).unwrap(), |t| t.instance_id.clone());
    assert_eq!(timers, ["g", "f", "a", "e", "c", "d", "b"], "in due order");
    // Instances of a token of two tenants, in start order either way.
    for descending in [false, true] {
        let filter = InstanceFilter { tenants: two.clone(), descending, ..InstanceFilter::default() };
        let mut expected = vec!["b", "d", "e", "a", "g"];
        if descending {
            expected.reverse();
        }
        assert_eq!(whole(|page| read.instances(&filter, page).unwrap(), |i| i.id.clone()), expected, "descending: {descending}");
    }
    // Every tenant's, or two tenants', instances by status or workflow
    // (read tenant by tenant by the SQL stores, as by start for several).
    let instance_ids = |read: &mut Box<dyn crate::ReadTxn + '_>, filter: InstanceFilter| whole(|page| read.instances(&filter, page).unwrap(), |i| i.id.clone());
    assert_eq!(instance_ids(&mut read, InstanceFilter { status: Some(Status::Running), ..InstanceFilter::default() }), ["b", "c", "a", "g"]);
    assert_eq!(instance_ids(&mut read, InstanceFilter { process_id: Some("p-x".into()), ..InstanceFilter::default() }), ["c", "f"]);
    let by_workflow = InstanceFilter { order: InstanceOrder::Workflow, ..InstanceFilter::default() };
    assert_eq!(instance_ids(&mut read, by_workflow.clone()), ["b", "d", "e", "a", "g", "c", "f"]);
    assert_eq!(instance_ids(&mut read, InstanceFilter { descending: true, ..by_workflow }), ["f", "c", "g", "a", "e", "d", "b"]);
    let by_status = InstanceFilter { order: InstanceOrder::Status, descending: true, ..InstanceFilter::default() };
    assert_eq!(instance_ids(&mut read, by_status.clone()), ["g", "a", "c", "b", "f", "e", "d"]);
    let two_by_status = InstanceFilter { tenants: two.clone(), descending: false, ..by_status };
    assert_eq!(instance_ids(&mut read, two_by_status), ["d", "e", "b", "a", "g"]);
    let none = Some(vec!["nobody".to_string()]);
    assert!(read.jobs(&JobFilter { tenants: none, ..JobFilter::default() }, &PageRequest::first(2)).unwrap().items.is_empty());
}

fn tenants(store: &dyn Store) {
    // Two tenants deploy the same process id and run instances that wait on
    // the same job type, message and signal, with the same request and message ids.
    let workflow = |tenant: &str| WorkflowRow {
        process_id: "p".into(),
        tenant: tenant.into(),
        version: 1,
        deployment: 1,
        name: None,
        version_tag: None,
        xml: format!("<{tenant}/>"),
        deployed_at: 1,
    };
    let mut writes = vec![
        Write::PutWorkflow(workflow("acme")),
        Write::PutWorkflow(workflow("beta")),
    ];
    for (id, tenant) in [("a", "acme"), ("b", "beta")] {
        let mut row = instance(id, "p", Status::Running, i64::from(id == "b"));
        row.tenant = tenant.into();
        row.start_key = Some("k".into());
        let mut job = job(&format!("{id}.1"), id, "work", 1);
        job.tenant = tenant.into();
        let mut incident = incident(id, 2, 1);
        incident.tenant = tenant.into();
        let mut message = subscription(id, 3, SubscriptionKind::Message, "paid", "k", 1);
        message.tenant = tenant.into();
        let mut signal = subscription(id, 4, SubscriptionKind::Signal, "alarm", "", 1);
        signal.tenant = tenant.into();
        let timer = TimerRow {
            instance_id: id.into(),
            tenant: tenant.into(),
            local_key: 5,
            element_id: "t".into(),
            due_at: 9,
        };
        let buffered = MessageRow {
            seq: u64::from(id == "b") + 1,
            tenant: tenant.into(),
            name: "paid".into(),
            correlation_key: "k".into(),
            variables: Variables::new(),
            published_at: 1,
            expires_at: 100,
            message_id: Some("m".into()),
            correlated: vec![],
        };
        let start_timer = StartTimerRow {
            process_id: "p".into(),
            tenant: tenant.into(),
            version: 1,
            element_id: "s".into(),
            due_at: 5,
            repeat: None,
        };
        writes.extend([
            Write::PutInstance(Box::new(row)),
            Write::PutRequest {
                tenant: tenant.into(),
                request_id: "r".into(),
                instance_id: id.into(),
            },
            Write::PutJob(job),
            Write::PutIncident(incident),
            Write::PutSubscription(message),
            Write::PutSubscription(signal),
            Write::PutTimer(timer),
            Write::PutMessage(buffered),
            Write::PutStartTimer(start_timer),
        ]);
    }
    write(store, writes);
    let acme = Some(vec!["acme".to_string()]);
    let page = PageRequest::first(10);
    let mut read = store.read().unwrap();
    assert_eq!(
        read.workflow("acme", "p", 1).unwrap().map(|w| w.xml),
        Some("<acme/>".into())
    );
    assert_eq!(
        read.workflow("beta", "p", 1).unwrap().map(|w| w.xml),
        Some("<beta/>".into()),
        "each tenant has its own version 1"
    );
    assert_eq!(read.workflow("gamma", "p", 1).unwrap(), None);
    assert_eq!(
        read.instance_by_request("beta", "r").unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(read.instance_by_request("gamma", "r").unwrap(), None);
    assert!(read.message_started_active("acme", "p", "k").unwrap());
    assert!(!read.message_started_active("gamma", "p", "k").unwrap());
    let keys = |jobs: Vec<JobRow>| jobs.into_iter().map(|j| j.key).collect::<Vec<_>>();
    assert_eq!(
        keys(read.activatable_jobs("work", &acme, 0, 10).unwrap()),
        ["a.1"]
    );
    assert_eq!(
        keys(read.activatable_jobs("work", &None, 0, 10).unwrap()),
        ["a.1", "b.1"]
    );
    assert!(read
        .activatable_jobs("work", &Some(vec!["gamma".into()]), 0, 10)
        .unwrap()
        .is_empty());
    let instances_of = |subscriptions: Vec<SubscriptionRow>| {
        subscriptions
            .into_iter()
            .map(|s| s.instance_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        instances_of(read.message_subscriptions("acme", "paid", "k").unwrap()),
        ["a"]
    );
    assert_eq!(
        instances_of(read.signal_subscriptions("beta", "alarm").unwrap()),
        ["b"]
    );
    assert_eq!(
        read.buffered_messages("beta", "paid", "k", 0)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(
        read.message_by_id("acme", "m", 0).unwrap().map(|m| m.seq),
        Some(1),
        "message ids are per tenant"
    );
    let only_a = |ids: Vec<String>| assert_eq!(ids, ["a"]);
    only_a(
        read.instances(
            &InstanceFilter {
                tenants: acme.clone(),
                ..InstanceFilter::default()
            },
            &page,
        )
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect(),
    );
    only_a(
        read.jobs(
            &JobFilter {
                tenants: acme.clone(),
                ..JobFilter::default()
            },
            &page,
        )
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.instance_id)
        .collect(),
    );
    only_a(
        read.incidents(
            &IncidentFilter {
                tenants: acme.clone(),
                ..IncidentFilter::default()
            },
            &page,
        )
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.instance_id)
        .collect(),
    );
    only_a(
        read.timers(
            &TimerFilter {
                tenants: acme.clone(),
                ..TimerFilter::default()
            },
            &page,
        )
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.instance_id)
        .collect(),
    );
    let subscriptions = read
        .subscriptions(
            &SubscriptionFilter {
                tenants: acme.clone(),
                ..SubscriptionFilter::default()
            },
            &page,
        )
        .unwrap();
    assert_eq!(subscriptions.items.len(), 2);
    assert!(subscriptions.items.iter().all(|s| s.tenant == "acme"));
    let messages = read
        .messages(
            &MessageFilter {
                tenants: acme.clone(),
                ..MessageFilter::default()
            },
            0,
            &page,
        )
        .unwrap();
    assert_eq!(
        messages.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1]
    );
    drop(read);
    let task = TaskRow { tenant: "beta".into(), ..task("b.6", "b", 1) };
    write(
        store,
        vec![
            Write::PutTask(task.clone()),
            Write::DeleteStartTimers {
                tenant: "acme".into(),
                process_id: "p".into(),
            },
        ],
    );
    let mut read = store.read().unwrap();
    assert!(read
        .tasks(
            &TaskFilter {
                tenants: acme.clone(),
                ..TaskFilter::default()
            },
            &page
        )
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        read.tasks(
            &TaskFilter {
                tenants: Some(vec!["beta".into()]),
                ..TaskFilter::default()
            },
            &page
        )
        .unwrap()
        .items,
        vec![task]
    );
    let start_timers = read.start_timers().unwrap();
    assert_eq!(
        start_timers
            .iter()
            .map(|t| t.tenant.as_str())
            .collect::<Vec<_>>(),
        ["beta"],
        "one tenant's new version leaves the other's start timers"
    );
}
