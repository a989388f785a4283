//! The PostgreSQL store passes the store conformance suite on a real server,
//! keeps what it committed across a reconnect, refuses a database from a
//! newer schema, and answers every query the API makes through an index.

use store::{Store, Write};
use store_postgres::{testing, PostgresStore};

fn fresh() -> PostgresStore {
    PostgresStore::open(&testing::fresh_database()).expect("the store opens")
}

#[test]
fn the_postgres_store_passes_the_conformance_suite() {
    store::conformance::run(&|| Box::new(fresh()));
}

#[test]
fn committed_rows_survive_a_reopen_and_uncommitted_ones_do_not() {
    let url = testing::fresh_database();
    {
        let store = PostgresStore::open(&url).unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance("kept", "p", engine::Status::Running, 1)))).unwrap();
        txn.commit().unwrap();
        let mut txn = store.write().unwrap();
        txn.apply(Write::PutInstance(Box::new(store::conformance::instance("lost", "p", engine::Status::Running, 2)))).unwrap();
        // The node "crashes" here: the transaction is never committed, its connection goes.
        std::mem::forget(txn);
    }
    let store = PostgresStore::open(&url).unwrap();
    let mut read = store.read().unwrap();
    assert!(read.instance("kept").unwrap().is_some());
    assert!(read.instance("lost").unwrap().is_none());
}

#[test]
fn a_database_from_a_newer_baton_is_refused() {
    let url = testing::fresh_database();
    let store = PostgresStore::open(&url).unwrap();
    store.batch_execute("UPDATE baton_schema SET version = version + 1").unwrap();
    drop(store);
    let error = PostgresStore::open(&url).err().expect("refused");
    assert!(error.is_corrupt(), "{error}");
    assert!(error.message().contains("upgrade Baton"), "{error}");
}

#[test]
fn nodes_opening_one_new_database_at_once_migrate_it_once() {
    let url = testing::fresh_database();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            // Each opens (the later ones wait for the migration, then for the writer's lock) and closes.
            std::thread::spawn(move || PostgresStore::open(&url).map(drop))
        })
        .collect();
    for node in opened {
        node.join().unwrap().expect("every node opens the database in turn");
    }
    let store = PostgresStore::open(&url).unwrap();
    let mut read = store.read().unwrap();
    assert!(read.workflows().unwrap().is_empty());
}

/// Several nodes on one database: what one node's transaction claims (jobs,
/// timers, start timers) the other skips instead of waiting for it or
/// taking it too, and once the first commits, what it released is free again.
#[test]
fn two_nodes_claim_each_job_and_timer_once() {
    use store::*;
    let url = testing::fresh_database();
    let (a, b) = (PostgresStore::open(&url).unwrap(), PostgresStore::open(&url).unwrap());
    let mut writes = Vec::new();
    for n in 0..4 {
        let id = format!("i{n}");
        writes.push(Write::PutInstance(Box::new(InstanceRow { number: n + 1, ..conformance::instance(&id, "p", engine::Status::Running, 0) })));
        for k in 0..3 {
            let mut job = JobRow {
                key: format!("{id}.{k}"),
                instance_id: id.clone(),
                tenant: DEFAULT_TENANT.into(),
                local_key: k,
                process_id: "p".into(),
                element_id: "task".into(),
                job_type: "work".into(),
                retries: 3,
                state: engine::JobState::Activatable,
                not_before: None,
                error_message: None,
                worker: None,
                lease_until: None,
                created_at: i64::try_from(n * 3 + k).unwrap(),
                lease: None,
            };
            job.created_at += 1;
            writes.push(Write::PutJob(job));
        }
        writes.push(Write::PutTimer(TimerRow { instance_id: id.clone(), tenant: DEFAULT_TENANT.into(), local_key: 9, element_id: "t".into(), due_at: 5 }));
    }
    for element in ["s1", "s2"] {
        writes.push(Write::PutStartTimer(StartTimerRow { process_id: "p".into(), tenant: DEFAULT_TENANT.into(), version: 1, element_id: element.into(), due_at: 5, repeat: None }));
    }
    let mut txn = a.write().unwrap();
    for write in writes {
        txn.apply(write).unwrap();
    }
    txn.commit().unwrap();

    let mut on_a = a.write().unwrap();
    let jobs_a = on_a.claim_jobs("work", &None, 10, 5).unwrap();
    let (starts_a, timers_a) = on_a.claim_due_timers(10, 3).unwrap();
    assert_eq!((jobs_a.len(), starts_a.len(), timers_a.len()), (5, 2, 1));
    let mut on_b = b.write().unwrap();
    let jobs_b = on_b.claim_jobs("work", &None, 10, 100).unwrap();
    let (starts_b, timers_b) = on_b.claim_due_timers(10, 100).unwrap();
    assert_eq!((jobs_b.len(), starts_b.len(), timers_b.len()), (7, 0, 3), "b skips what a holds, without waiting");
    let keys_a: Vec<_> = jobs_a.iter().map(|j| j.key.clone()).collect();
    assert!(jobs_b.iter().all(|j| !keys_a.contains(&j.key)), "no job is claimed twice");
    let timers_of_a: Vec<_> = timers_a.iter().map(|t| t.instance_id.clone()).collect();
    assert!(timers_b.iter().all(|t| !timers_of_a.contains(&t.instance_id)), "no timer is claimed twice");
    drop(on_b);
    // a hands its jobs out (leases them) and commits; b finds the rest only.
    for mut job in jobs_a {
        job.lease_until = Some(1_000);
        job.lease = Some("lease".into());
        job.worker = Some("w".into());
        on_a.apply(Write::PutJob(job)).unwrap();
    }
    on_a.commit().unwrap();
    let mut on_b = b.write().unwrap();
    assert_eq!(on_b.claim_jobs("work", &None, 10, 100).unwrap().len(), 7, "what a leased is not free; the rest is");
}

/// Two nodes starting instances at once never give one number twice: each
/// takes its own block from the database's sequence.
#[test]
fn two_nodes_give_instance_numbers_that_never_collide() {
    use store::*;
    let url = testing::fresh_database();
    let nodes = [PostgresStore::open(&url).unwrap(), PostgresStore::open(&url).unwrap()];
    let mut given = std::collections::BTreeSet::new();
    for round in 0..150 {
        for (n, node) in nodes.iter().enumerate() {
            let mut txn = node.write().unwrap();
            let number = txn.next_instance_number(None).unwrap();
            txn.put_instance_if(&InstanceRow { number, ..conformance::instance(&format!("{n}-{round}"), "p", engine::Status::Running, 0) }, None).unwrap();
            txn.commit().unwrap();
            assert!(given.insert(number), "{number} was given twice");
        }
    }
    let reopened = PostgresStore::open(&url).unwrap();
    let number = reopened.write().unwrap().next_instance_number(None).unwrap();
    assert!(number > *given.last().unwrap(), "a node started later gives new numbers ({number})");
}

/// A lock ([`store::Lock`]) taken by one node's transaction makes another
/// node's wait until the first ends; a kept message's sequence number that
/// another node took meanwhile is a conflict, not an overwrite.
#[test]
fn a_lock_waits_for_the_other_node_and_a_taken_message_number_is_a_conflict() {
    use store::*;
    let url = testing::fresh_database();
    let (a, b) = (PostgresStore::open(&url).unwrap(), PostgresStore::open(&url).unwrap());
    let lock = Lock::Correlation { tenant: DEFAULT_TENANT, name: "paid", correlation_key: "order-1" };
    let mut on_a = a.write().unwrap();
    on_a.lock(&lock).unwrap();
    on_a.instance("nobody").unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let mut on_b = b.write().unwrap();
            on_b.lock(&Lock::Correlation { tenant: DEFAULT_TENANT, name: "paid", correlation_key: "order-1" }).unwrap();
            on_b.instance("nobody").unwrap();
            on_b.commit().unwrap();
        });
        // b waits at the server for a's lock: seen in pg_locks, not guessed with a sleep.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if testing::count(&url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "b never waited for a's lock");
        }
        assert!(!waiter.is_finished(), "b waits while a holds the lock");
        on_a.commit().unwrap();
        waiter.join().expect("b goes on once a committed");
    });

    let message = |name: &str| MessageRow {
        seq: 7,
        tenant: DEFAULT_TENANT.into(),
        name: name.into(),
        correlation_key: "k".into(),
        variables: Default::default(),
        published_at: 1,
        expires_at: 100,
        message_id: None,
        correlated: Vec::new(),
    };
    let mut on_a = a.write().unwrap();
    on_a.apply(Write::PutMessage(message("first"))).unwrap();
    on_a.commit().unwrap();
    let mut on_b = b.write().unwrap();
    on_b.apply(Write::PutMessage(message("second"))).unwrap();
    let error = on_b.commit().err().expect("b's message took a number a kept");
    assert!(error.is_conflict(), "{error}");
    let mut on_b = b.write().unwrap();
    on_b.apply(Write::PutMessage(MessageRow { correlated: vec!["p".into()], ..message("first") })).unwrap();
    on_b.commit().expect("the same message, its recipients updated");
    let kept = a.read().unwrap().buffered_messages(DEFAULT_TENANT, "first", "k", 2).unwrap();
    assert_eq!(kept[0].correlated, ["p"]);
}

/// What one node commits, the others hear (jobs, ends, deployments, tokens),
/// and a node does not hear its own news.
#[test]
fn a_node_hears_what_another_commits_and_not_its_own() {
    use store::*;
    let url = testing::fresh_database();
    let (a, b) = (PostgresStore::open(&url).unwrap(), PostgresStore::open(&url).unwrap());
    let heard = |store: &PostgresStore| {
        let (sender, received) = std::sync::mpsc::channel();
        let sender = std::sync::Mutex::new(sender);
        assert!(store.listen(Box::new(move |news| {
            let _ = sender.lock().unwrap().send(news);
        })));
        received
    };
    let (on_a, on_b) = (heard(&a), heard(&b));
    // The listeners connect on their own threads: a commit now may come
    // before they listen, so commit until b hears (a hears nothing of it).
    let mut news = None;
    for n in 0..50 {
        let mut txn = a.write().unwrap();
        let mut row = conformance::instance(&format!("ended{n}"), "p", engine::Status::Completed, 0);
        row.number = n + 1;
        txn.apply(Write::PutInstance(Box::new(row))).unwrap();
        txn.commit().unwrap();
        if let Ok(heard) = on_b.recv_timeout(std::time::Duration::from_millis(200)) {
            news = Some(heard);
            break;
        }
    }
    assert_eq!(news, Some(News { ended: true, ..News::default() }), "b hears that an instance ended");
    let mut first = None;
    for version in 1..50 {
        let mut txn = b.write().unwrap();
        txn.apply(Write::PutWorkflow(WorkflowRow {
            process_id: "p".into(),
            tenant: DEFAULT_TENANT.into(),
            version,
            deployment: u64::from(version),
            name: None,
            version_tag: None,
            xml: "<definitions/>".into(),
            deployed_at: 1,
        }))
        .unwrap();
        txn.commit().unwrap();
        if let Ok(heard) = on_a.recv_timeout(std::time::Duration::from_millis(200)) {
            first = Some(heard);
            break;
        }
    }
    assert_eq!(first, Some(News { deployed: true, ..News::default() }), "a hears b's deployment, and nothing of its own before it");
    assert!(on_b.try_recv().is_err(), "b does not hear its own deployment");
}

#[test]
fn an_unreachable_server_is_unavailable_with_its_address_and_no_password() {
    let error = PostgresStore::open("postgres://baton:secret@127.0.0.1:1/baton").err().expect("refused");
    assert!(error.is_unavailable(), "{error}");
    assert!(error.message().contains("127.0.0.1:1") && !error.message().contains("secret"), "{error}");
}

/// Large tables: a plan that reads one of these from end to end costs what
/// the whole database holds.
const LARGE: [&str; 9] = ["instances", "jobs", "timers", "subscriptions", "tasks", "incidents", "history", "messages", "labels"];

/// Issue 15: with a realistic amount of data (20 000 instances, each with a
/// job, a timer, a subscription, a task, an incident, a label and a buffered
/// message, and one instance with 5 000 history entries) and fresh
/// statistics, every read the runtime and the API make is planned through an
/// index: no sequential scan of a large table, whatever the filter.
#[test]
fn every_query_the_api_makes_uses_an_index() {
    use store::*;
    let store = fresh();
    let mut txn = store.write().unwrap();
    txn.apply(Write::PutInstance(Box::new(conformance::instance("template", "p", engine::Status::Running, 0)))).unwrap();
    let entry = engine::HistoryEntry {
        at: 1,
        element_instance: 1,
        element_id: "task".into(),
        element_type: "serviceTask".into(),
        event: engine::HistoryEvent::Activated,
        loop_counter: 0,
        started_at: 1,
        element_name: None,
        run: 1,
        iteration: 1,
        actor: None,
        reason: None,
        detail: None,
    };
    txn.apply(Write::AppendHistory(HistoryRow { instance_id: "template".into(), seq: 1, entry })).unwrap();
    txn.commit().unwrap();
    store
        .batch_execute(
            "INSERT INTO instances (id, number, tenant, process_id, version, status, business_key, parent_id, started_at, ended_at, incidents, waiting, start_key, update_count, history_count, state, variables)
               SELECT 'i' || lpad(n::text, 6, '0'), n, 'default', 'p' || (n % 20), 1, CASE WHEN n % 3 = 0 THEN 'completed' ELSE 'running' END,
                      'bk' || n, CASE WHEN n % 10 = 0 THEN 'i' || lpad((n - 1)::text, 6, '0') END, n, NULL, n % 2, '[\"job\"]', 'k' || n, 1, 1, t.state, jsonb_build_object('order', n)
               FROM generate_series(1, 20000) AS n, (SELECT state FROM instances WHERE id = 'template') AS t;
             INSERT INTO requests SELECT 'default', 'r' || n, 'i' || lpad(n::text, 6, '0') FROM generate_series(1, 20000) AS n;
             INSERT INTO jobs SELECT 'i' || lpad(n::text, 6, '0') || '.1', 'i' || lpad(n::text, 6, '0'), 1, 'p', 'task', 'type' || (n % 10), 3,
                      CASE WHEN n % 4 = 0 THEN 'failed' ELSE 'activatable' END, NULL, NULL, NULL, NULL, n, NULL, 'default'
               FROM generate_series(1, 20000) AS n;
             INSERT INTO timers SELECT 'i' || lpad(n::text, 6, '0'), 2, 'wait', n + 1000, 'default' FROM generate_series(1, 20000) AS n;
             INSERT INTO subscriptions SELECT 'i' || lpad(n::text, 6, '0'), 3, 'catch', CASE WHEN n % 5 = 0 THEN 'signal' ELSE 'message' END,
                      'm' || (n % 50), CASE WHEN n % 5 = 0 THEN '' ELSE 'k' || n END, n, 'default'
               FROM generate_series(1, 20000) AS n;
             INSERT INTO tasks SELECT 'i' || lpad(n::text, 6, '0') || '.4', 'i' || lpad(n::text, 6, '0'), 4, CASE WHEN n % 200 = 0 THEN 'rare' ELSE 'p' END, 'review',
                      CASE WHEN n % 2 = 0 THEN 'alice' END, ('[\"g' || (n % 7) || '\"]')::jsonb, '[]', NULL, NULL, NULL, NULL, n, 'default',
                      CASE WHEN n % 3 = 0 THEN n + 5 END, CASE WHEN n % 3 = 0 THEN 'bob' END
               FROM generate_series(1, 20000) AS n;
             INSERT INTO task_candidates SELECT key, candidate_groups->>0, created_at, completed_at IS NOT NULL FROM tasks;
             INSERT INTO incidents SELECT 'i' || lpad(n::text, 6, '0') || '.5', 'i' || lpad(n::text, 6, '0'), 5, 'p' || (n % 20), 'task', 'job_failed',
                      'boom', n, CASE WHEN n % 2 = 0 THEN n + 1 END, NULL, 'default'
               FROM generate_series(1, 20000) AS n;
             INSERT INTO history SELECT 'i' || lpad(n::text, 6, '0'), 1, h.entry FROM generate_series(1, 20000) AS n, (SELECT entry FROM history WHERE instance_id = 'template') AS h;
             INSERT INTO history SELECT 'i000001', n, h.entry FROM generate_series(2, 5000) AS n, (SELECT entry FROM history WHERE instance_id = 'template') AS h;
             INSERT INTO messages SELECT n, 'm' || (n % 50), 'k' || n, '{}', n, n + CASE WHEN n % 2 = 0 THEN 100000 ELSE 10 END, 'id' || n, '[]', 'default'
               FROM generate_series(1, 20000) AS n;
             INSERT INTO labels SELECT 'region', 'r' || (n % 10), 'i' || lpad(n::text, 6, '0') FROM generate_series(1, 20000) AS n;
             ANALYZE;",
        )
        .unwrap();
    let first = PageRequest::first(50);
    let deep = |cursor: &str| PageRequest { after: Some(cursor.to_string()), limit: 50 };
    let tenants: Tenants = Some(vec!["default".into()]);
    let plans = store.explained(|store| {
        let mut r = store.read().unwrap();
        r.instance("i000042").unwrap();
        r.instance_id_by_number(42).unwrap();
        r.instance_number("i000042").unwrap();
        r.last_instance_number().unwrap();
        let filters = [
            InstanceFilter::default(),
            InstanceFilter { tenants: tenants.clone(), ..InstanceFilter::default() },
            InstanceFilter { tenants: Some(vec!["default".into(), "acme".into()]), descending: true, ..InstanceFilter::default() },
            InstanceFilter { status: Some(engine::Status::Running), ..InstanceFilter::default() },
            InstanceFilter { process_id: Some("p3".into()), ..InstanceFilter::default() },
            InstanceFilter { process_id: Some("p3".into()), version: Some(1), ..InstanceFilter::default() },
            InstanceFilter { business_key: Some("bk42".into()), ..InstanceFilter::default() },
            InstanceFilter { waiting: Some("job".into()), ..InstanceFilter::default() },
            InstanceFilter { has_incidents: Some(true), ..InstanceFilter::default() },
            InstanceFilter { started_after: Some(19_000), ..InstanceFilter::default() },
            InstanceFilter { parent_id: Some("i000009".into()), ..InstanceFilter::default() },
            InstanceFilter { variable: Some(("order".into(), serde_json::json!(42))), ..InstanceFilter::default() },
            InstanceFilter { label: Some(("region".into(), "r3".into())), ..InstanceFilter::default() },
            InstanceFilter { root_id: Some("i000042".into()), ..InstanceFilter::default() },
            InstanceFilter { order: InstanceOrder::Workflow, ..InstanceFilter::default() },
            InstanceFilter { order: InstanceOrder::Status, descending: true, ..InstanceFilter::default() },
            InstanceFilter { descending: true, ..InstanceFilter::default() },
            InstanceFilter { tenants: tenants.clone(), status: Some(engine::Status::Completed), ..InstanceFilter::default() },
            InstanceFilter { tenants: tenants.clone(), process_id: Some("p7".into()), ..InstanceFilter::default() },
            InstanceFilter { tenants: tenants.clone(), order: InstanceOrder::Workflow, descending: true, ..InstanceFilter::default() },
        ];
        for filter in &filters {
            let page = r.instances(filter, &first).unwrap();
            if let Some(next) = page.next {
                r.instances(filter, &deep(&next)).unwrap();
            }
        }
        r.instance_by_request("default", "r42").unwrap();
        r.message_started_active("default", "p2", "k42").unwrap();
        let page = r.history("i000001", &HistoryFilter::default(), &first).unwrap();
        r.history("i000001", &HistoryFilter::default(), &deep(&page.next.unwrap())).unwrap();
        r.history("i000001", &HistoryFilter { element_id: Some("task".into()), ..HistoryFilter::default() }, &first).unwrap();
        r.job("i000042.1").unwrap();
        for filter in [
            JobFilter::default(),
            JobFilter { job_type: Some("type3".into()), ..JobFilter::default() },
            JobFilter { instance_id: Some("i000042".into()), ..JobFilter::default() },
            JobFilter { state: Some(engine::JobState::Failed), ..JobFilter::default() },
        ] {
            let page = r.jobs(&filter, &first).unwrap();
            if let Some(next) = page.next {
                r.jobs(&filter, &deep(&next)).unwrap();
            }
        }
        r.activatable_jobs("type3", &None, 50_000, 32).unwrap();
        r.activatable_jobs("type3", &tenants, 50_000, 32).unwrap();
        r.task("i000042.4").unwrap();
        for filter in [
            TaskFilter::default(),
            TaskFilter { assignee: Some("alice".into()), ..TaskFilter::default() },
            TaskFilter { assignee: Some("nobody".into()), ..TaskFilter::default() },
            TaskFilter { tenants: tenants.clone(), ..TaskFilter::default() },
            TaskFilter { candidate_group: Some("g3".into()), ..TaskFilter::default() },
            TaskFilter { instance_id: Some("i000042".into()), ..TaskFilter::default() },
            TaskFilter { state: TaskState::Completed, ..TaskFilter::default() },
            TaskFilter { process_id: Some("rare".into()), ..TaskFilter::default() },
            TaskFilter { completed_by: Some("bob".into()), state: TaskState::Completed, ..TaskFilter::default() },
            TaskFilter { assignee: Some("alice".into()), state: TaskState::Completed, ..TaskFilter::default() },
            TaskFilter { tenants: tenants.clone(), state: TaskState::Completed, ..TaskFilter::default() },
            TaskFilter { candidate_group: Some("g3".into()), state: TaskState::Completed, ..TaskFilter::default() },
            TaskFilter { candidate_group: Some("g3".into()), state: TaskState::All, ..TaskFilter::default() },
        ] {
            let page = r.tasks(&filter, &first).unwrap();
            if let Some(next) = page.next {
                r.tasks(&filter, &deep(&next)).unwrap();
            }
        }
        r.incident("i000042.5").unwrap();
        for filter in [
            IncidentFilter::default(),
            IncidentFilter { instance_id: Some("i000042".into()), ..IncidentFilter::default() },
            IncidentFilter { instance_id: Some("i000042".into()), with_descendants: true, ..IncidentFilter::default() },
            IncidentFilter { state: IncidentState::All, ..IncidentFilter::default() },
            IncidentFilter { process_id: Some("p3".into()), ..IncidentFilter::default() },
            IncidentFilter { process_id: Some("p3".into()), state: IncidentState::All, ..IncidentFilter::default() },
        ] {
            let page = r.incidents(&filter, &first).unwrap();
            if let Some(next) = page.next {
                r.incidents(&filter, &deep(&next)).unwrap();
            }
        }
        r.descendant_incidents("i000042").unwrap();
        for filter in [TimerFilter::default(), TimerFilter { instance_id: Some("i000042".into()), ..TimerFilter::default() }, TimerFilter { due_before: Some(1_500), ..TimerFilter::default() }] {
            let page = r.timers(&filter, &first).unwrap();
            if let Some(next) = page.next {
                r.timers(&filter, &deep(&next)).unwrap();
            }
        }
        r.timer("i000042", 2).unwrap();
        for filter in [
            SubscriptionFilter::default(),
            SubscriptionFilter { instance_id: Some("i000042".into()), ..SubscriptionFilter::default() },
        ] {
            let page = r.subscriptions(&filter, &first).unwrap();
            if let Some(next) = page.next {
                r.subscriptions(&filter, &deep(&next)).unwrap();
            }
        }
        for filter in [
            MessageFilter::default(),
            MessageFilter { state: MessageState::Undelivered, ..MessageFilter::default() },
            MessageFilter { name: Some("m7".into()), ..MessageFilter::default() },
        ] {
            let page = r.messages(&filter, 15_000, &first).unwrap();
            if let Some(next) = page.next {
                r.messages(&filter, 15_000, &deep(&next)).unwrap();
            }
        }
        r.message_subscriptions("default", "m42", "k42").unwrap();
        r.signal_subscriptions("default", "m5").unwrap();
        r.buffered_messages("default", "m42", "k42", 15_000).unwrap();
        r.message_by_id("default", "id42", 15_000).unwrap();
        r.due_timers(1_500, 64).unwrap();
        r.expired_messages(15_000, 100).unwrap();
        r.next_due().unwrap();
        r.start_timers().unwrap();
        r.instance_counts(&None).unwrap();
        r.last_deployment().unwrap();
        drop(r);
        // What a node claims, in its write transaction.
        let mut w = store.write().unwrap();
        w.claim_jobs("type3", &None, 50_000, 32).unwrap();
        w.claim_jobs("type3", &tenants, 50_000, 32).unwrap();
        w.claim_due_timers(1_500, 64).unwrap();
    });
    assert!(plans.len() > 60, "{} queries explained", plans.len());
    // A worker's call reads its tenants' ranges of `jobs_free` and stops at
    // the limit, never the type's jobs by `jobs_by_type` with a sort (the
    // plan the planner chose while it thought few rows would pass the
    // running check); and no query is costly enough to be compiled first.
    let activations: Vec<&store_postgres::Plan> = plans.iter().filter(|plan| plan.sql.contains("state = 'activatable' AND NOT held")).collect();
    assert_eq!(activations.len(), 4, "activatable_jobs and claim_jobs, with and without tenants");
    for plan in activations {
        let scans: Vec<&String> = plan.lines.iter().filter(|line| line.contains(" on jobs")).collect();
        assert!(scans.iter().all(|line| line.contains("using jobs_free")), "{}", plan.lines.join("\n"));
    }
    // A tasklist's "assigned to me", where few are: through its index, not
    // a walk of every open task.
    let mine: Vec<&store_postgres::Plan> =
        plans.iter().filter(|plan| plan.sql.contains("FROM tasks") && plan.sql.contains("assignee =") && plan.sql.contains("completed_at IS NULL")).collect();
    assert_eq!(mine.len(), 3, "alice's first and next page, nobody's");
    for plan in mine {
        assert!(plan.lines.iter().any(|line| line.contains("using tasks_open_by_assignee")), "{}", plan.lines.join("\n"));
    }
    // The lists of jobs, incidents, timers, subscriptions and messages read
    // a tenant's range of an index in their order (schema 9), never an
    // index that walks other tenants' rows or sorts the whole list.
    let by_tenant: Vec<&store_postgres::Plan> = plans
        .iter()
        .filter(|plan| plan.sql.ends_with(" LIMIT 51") && ["jobs", "incidents", "timers", "subscriptions", "messages"].iter().any(|t| plan.sql.contains(&format!("FROM {t} WHERE tenant = $1 "))))
        .collect();
    assert!(by_tenant.len() >= 14, "{} lists read by tenant", by_tenant.len());
    for plan in by_tenant {
        let table = plan.sql.split(" FROM ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap();
        let through = if plan.sql.contains("job_type =") {
            "jobs_by_type".to_string()
        } else if table == "incidents" && plan.sql.contains("process_id =") {
            // One workflow's, by its index; or, where they are many (here
            // one in twenty), the tenant's in order, which fills the page
            // as soon (the planner's choice on this data).
            let (own, tenants) = if plan.sql.contains("resolved_at IS NULL") { ("incidents_open_by_process", "incidents_open") } else { ("incidents_by_process", "incidents_by_tenant") };
            if plan.lines.iter().any(|line| line.contains(&format!("using {own}"))) { own } else { tenants }.to_string()
        } else if plan.sql.contains("state = 'failed'") {
            "jobs_failed".to_string()
        } else if plan.sql.contains("resolved_at IS NULL") {
            "incidents_open".to_string()
        } else {
            format!("{table}_by_tenant")
        };
        // A name's rows (messages, subscriptions) have an index of their own, as good.
        let named = plan.sql.contains(" name = ") && plan.lines.iter().any(|line| line.contains(&format!("on {table}_by_name")));
        assert!(named || plan.lines.iter().any(|line| line.contains(&format!("using {through}"))), "{}\n{}", plan.sql, plan.lines.join("\n"));
    }
    // The instances with incidents, found from the instances that have some
    // and the open incidents of called ones, not by testing every instance.
    let with_incidents: Vec<&store_postgres::Plan> = plans.iter().filter(|plan| plan.sql.contains("FROM instances WHERE id IN (WITH RECURSIVE up")).collect();
    assert_eq!(with_incidents.len(), 2, "the first and the next page");
    for plan in with_incidents {
        let lines = plan.lines.join("\n");
        assert!(lines.contains("using instances_with_incidents") && lines.contains("using incidents_open_of_called"), "{lines}");
    }
    // Lists of instances by status or workflow, a filter of either or an
    // order by it, read a tenant's range of the index that has it after the
    // tenant (schema 13), in order: no sort of the tenant's instances.
    let instance_lists: Vec<&store_postgres::Plan> = plans
        .iter()
        .filter(|plan| plan.sql.starts_with("SELECT id, ") && plan.sql.contains("FROM instances WHERE tenant = $1 AND") && (plan.sql.contains("status = $2") || plan.sql.contains("process_id = $2") || plan.sql.contains("ORDER BY process_id")))
        .collect();
    assert!(instance_lists.len() >= 8, "{} lists of instances by status or workflow", instance_lists.len());
    for plan in instance_lists {
        let through = if plan.sql.contains("status = $2") || plan.sql.contains("ORDER BY status") { "instances_by_status" } else { "instances_by_process" };
        let lines = plan.lines.join("\n");
        assert!(lines.contains(&format!("using {through}")) && !lines.contains("Sort"), "{}\n{lines}", plan.sql);
    }
    // One workflow's open tasks (67 of 13 334), through their index in order.
    let of_workflow: Vec<&store_postgres::Plan> = plans.iter().filter(|plan| plan.sql.contains("FROM tasks") && plan.sql.contains("process_id =")).collect();
    assert_eq!(of_workflow.len(), 2, "the first and the next page of rare's");
    for plan in of_workflow {
        let lines = plan.lines.join("\n");
        assert!(lines.contains("using tasks_open_by_process") && !lines.contains("Sort"), "{lines}");
    }
    // A group's open, completed and all tasks, from the group's rows of
    // `task_candidates` in order: by state for one state, by group for both.
    let of_group: Vec<&store_postgres::Plan> = plans.iter().filter(|plan| plan.sql.contains("FROM task_candidates")).collect();
    assert_eq!(of_group.len(), 6, "the first and the next page of g3's open, completed and all tasks");
    for plan in of_group {
        let index = if plan.sql.contains("completed_at IS") { "task_candidates_by_state" } else { "task_candidates_by_group" };
        assert!(plan.lines.iter().any(|line| line.contains(&format!("using {index}"))), "{}\n{}", plan.sql, plan.lines.join("\n"));
        assert!(!plan.lines.iter().any(|line| line.contains("Sort")), "{}", plan.lines.join("\n"));
    }
    let compiled: Vec<&String> = plans.iter().filter(|plan| plan.lines.iter().any(|line| line.trim() == "JIT:")).map(|plan| &plan.sql).collect();
    assert!(compiled.is_empty(), "{compiled:?}");
    let scans: Vec<String> = plans
        .iter()
        .filter(|plan| plan.lines.iter().any(|line| LARGE.iter().any(|table| line.contains(&format!("Seq Scan on {table} ")) || line.ends_with(&format!("Seq Scan on {table}")))))
        .map(|plan| format!("{}\n  {}", plan.sql, plan.lines.join("\n  ")))
        .collect();
    assert!(scans.is_empty(), "{} queries scan a large table:\n{}", scans.len(), scans.join("\n\n"));
}

/// Issue 15, item 7: a database that this release of Baton left (a dump in
/// `tests/fixtures`) opens in this Baton, every row reads back, and its
/// instances run on. The next release that changes the schema keeps this
/// fixture and adds its own: each one must upgrade and run.
#[test]
fn a_database_of_release_0_1_opens_reads_back_and_runs_on() {
    let url = testing::fresh_database();
    testing::execute(&url, include_str!("fixtures/release-0.1.sql"));
    let store = std::sync::Arc::new(PostgresStore::open(&url).expect("this Baton opens it"));
    {
        let mut read = store.read().unwrap();
        assert_eq!(read.workflows().unwrap().len(), 1);
        let instances = read.instances(&store::InstanceFilter::default(), &store::PageRequest::first(10)).unwrap().items;
        assert_eq!(instances.len(), 3);
        for instance in &instances {
            assert!(read.history(&instance.id, &store::HistoryFilter::default(), &store::PageRequest::first(100)).unwrap().items.len() >= 3);
        }
        assert_eq!(read.jobs(&store::JobFilter::default(), &store::PageRequest::first(10)).unwrap().items.len(), 1, "the third instance's check");
        assert_eq!(read.tasks(&store::TaskFilter::default(), &store::PageRequest::first(10)).unwrap().items.len(), 1, "the second one's approval");
        assert_eq!(read.message_subscriptions("default", "paid", "o1").unwrap().len(), 1, "the first one waits for its payment");
        assert_eq!(read.buffered_messages("default", "paid", "o9", 0).unwrap().len(), 1);
        assert_eq!(read.tokens().unwrap().len(), 1);
        let counted: u64 = read.instance_counts(&None).unwrap().iter().map(|c| c.count).sum();
        assert_eq!(counted, 3);
    }
    let service = runtime::Service::start(store.clone(), std::sync::Arc::new(runtime::SystemClock), Box::new(runtime::UuidIds), runtime::Options::default()).unwrap();
    let handle = service.handle.clone();
    let published = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(handle.call(runtime::Command::Publish(runtime::PublishCommand {
            name: "paid".into(),
            correlation_key: "o1".into(),
            ..runtime::PublishCommand::default()
        })))
    })
    .join()
    .unwrap();
    assert!(published.is_ok(), "{published:?}");
    service.stop();
    let mut read = store.read().unwrap();
    let completed = store::InstanceFilter { status: Some(engine::Status::Completed), ..store::InstanceFilter::default() };
    assert_eq!(read.instances(&completed, &store::PageRequest::first(10)).unwrap().items.len(), 1, "the payment completed the first instance");
}

/// Two nodes (services) on one database, sharing a clock the test moves.
fn two_nodes(url: &str, clock: std::sync::Arc<runtime::ManualClock>) -> [runtime::Service; 2] {
    [0, 1].map(|_| {
        let store = std::sync::Arc::new(PostgresStore::open(url).unwrap());
        let options = runtime::Options { shared_store: true, ..runtime::Options::default() };
        runtime::Service::start(store, clock.clone(), Box::new(runtime::UuidIds), options).unwrap()
    })
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

const JOB_MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <process id="work" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <serviceTask id="t"><extensionElements><zeebe:taskDefinition type="far"/></extensionElements></serviceTask>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>"#;

/// Issue 15, item 3: a workflow deployed on one node starts on the other at
/// once; a long poll on one node gets the job another node created; and a
/// wait for an instance's end on one node returns when another node ends
/// it (it has no timer of its own to look again: only the other node's
/// `NOTIFY` can wake it before its 30 s are up).
#[test]
fn a_node_learns_deployments_and_wakes_for_jobs_and_ends_made_on_another() {
    use runtime::{Command, Reply, StartCommand};
    let url = testing::fresh_database();
    let clock = std::sync::Arc::new(runtime::ManualClock::new(1_000_000));
    let [a, b] = two_nodes(&url, clock);
    let (on_a, on_b) = (a.handle.clone(), b.handle.clone());
    block_on(async move {
        let deploy = Command::Deploy { tenant: store::DEFAULT_TENANT.into(), files: vec![("work.bpmn".into(), JOB_MODEL.into())] };
        on_a.call(deploy).await.expect("a deploys");
        let start = || Command::Start(StartCommand { process_id: "work".into(), ..StartCommand::default() });
        let Ok(Reply::Started(id)) = on_b.call(start()).await else { panic!("b starts what a deployed, at once") };
        let jobs = on_a.activate("far".into(), "w".into(), 10, 60_000, std::time::Duration::from_secs(30), None).await.unwrap();
        assert_eq!(jobs.len(), 1, "a hands out the job b created");
        let waiting = {
            let on_b = on_b.clone();
            let id = id.clone();
            tokio::spawn(async move { on_b.await_end(&id, std::time::Duration::from_secs(30)).await })
        };
        // The poll on b waits for a job that a creates.
        let polling = {
            let on_b = on_b.clone();
            tokio::spawn(async move { on_b.activate("far".into(), "w".into(), 10, 60_000, std::time::Duration::from_secs(30), None).await })
        };
        let started = std::time::Instant::now();
        let job = &jobs[0].job;
        let claim = runtime::Claim::lease("w", job.lease.as_deref().unwrap());
        on_a.call(Command::CompleteJob { key: job.key.clone(), claim, variables: Default::default(), result: None }).await.expect("a completes it");
        let ended = waiting.await.unwrap().unwrap().expect("b hears that the instance ended");
        assert_eq!(ended.status, engine::Status::Completed);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "woken by a's news, not by its timeout");
        on_a.call(start()).await.expect("a starts another");
        let polled = polling.await.unwrap().unwrap();
        assert_eq!(polled.len(), 1, "b's long poll got the job a created");
    });
    a.stop();
    b.stop();
}

/// Issue 15, item 3: a timer start event fires once in the cluster. Both
/// nodes turn at once, again and again, while five occurrences are due;
/// five instances start, not ten.
#[test]
fn a_timer_start_event_fires_once_in_the_cluster() {
    use runtime::Command;
    let url = testing::fresh_database();
    let clock = std::sync::Arc::new(runtime::ManualClock::new(1_000_000));
    let [a, b] = two_nodes(&url, clock.clone());
    let model = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
      <process id="tick" isExecutable="true">
        <startEvent id="s"><timerEventDefinition><timeCycle>R5/PT1M</timeCycle></timerEventDefinition></startEvent>
        <sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/>
      </process>
    </definitions>"#;
    let (on_a, on_b) = (a.handle.clone(), b.handle.clone());
    block_on(async move {
        let deploy = Command::Deploy { tenant: store::DEFAULT_TENANT.into(), files: vec![("tick.bpmn".into(), model.into())] };
        on_a.call(deploy).await.unwrap();
        clock.advance(60 * 60 * 1000);
        // Each call is a turn of its node's commit loop, which fires what is due.
        let turn = |handle: runtime::Handle| async move {
            handle.call(Command::Activate { job_type: "nothing".into(), worker: "w".into(), max: 1, lease_ms: 1000 }).await.unwrap();
        };
        for _ in 0..10 {
            tokio::join!(turn(on_a.clone()), turn(on_b.clone()));
        }
    });
    let mut read = a.handle.store.read().unwrap();
    let started = read.instances(&store::InstanceFilter::default(), &store::PageRequest::first(100)).unwrap().items;
    assert_eq!(started.len(), 5, "one instance per occurrence: {:?}", started.iter().map(|i| i.started_at).collect::<Vec<_>>());
    drop(read);
    a.stop();
    b.stop();
}
