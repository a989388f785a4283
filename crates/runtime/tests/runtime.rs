//! The service: commands committed in groups, leases, idempotence, recovery;
//! and a deterministic simulation of the core with crashes.

mod simulation;

use std::sync::Arc;
use std::time::Duration;

use runtime::{
    Claim, Command, Error, ManualClock, Options, Reply, SequentialIds, Service, StartCommand,
};
use store::{MemoryStore, Store};

const T0: i64 = 1_767_225_600_000;

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <process id="work" isExecutable="true">
    <startEvent id="start"/>
    <serviceTask id="task"><extensionElements><zeebe:taskDefinition type="do"/></extensionElements></serviceTask>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
  </process>
  <process id="nap" isExecutable="true">
    <startEvent id="n_start"/>
    <intermediateCatchEvent id="n_wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <endEvent id="n_end"/>
    <sequenceFlow id="n1" sourceRef="n_start" targetRef="n_wait"/>
    <sequenceFlow id="n2" sourceRef="n_wait" targetRef="n_end"/>
  </process>
</definitions>"#;

fn service(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Service {
    Service::start(
        store,
        clock,
        Box::new(SequentialIds::default()),
        Options::default(),
    )
    .expect("the service starts")
}

/// A service whose ids continue after those already in the store.
fn service_on(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Service {
    service(store, clock)
}

async fn deploy(service: &Service) {
    let reply = service
        .handle
        .call(Command::Deploy {
            tenant: store::DEFAULT_TENANT.into(),
            files: vec![("m.bpmn".into(), MODEL.into())],
        })
        .await
        .unwrap();
    assert!(
        matches!(reply, Reply::Deployed(ref d) if d.workflows.len() == 2),
        "{reply:?}"
    );
}

async fn start(service: &Service, process: &str, request_id: Option<&str>) -> String {
    let command = StartCommand {
        process_id: process.into(),
        request_id: request_id.map(str::to_string),
        ..StartCommand::default()
    };
    match service.handle.call(Command::Start(command)).await.unwrap() {
        Reply::Started(id) => id,
        other => panic!("{other:?}"),
    }
}

/// A database file in a new folder, removed with the folder when the test ends.
fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix("baton-runtime-test-").tempdir().unwrap();
    let path = dir.path().join("baton.db");
    (dir, path)
}

/// A core loaded from what `store` holds, numbering from the start.
fn core_on(store: &dyn Store) -> runtime::Core {
    let mut read = store.read().unwrap();
    runtime::Core::load(read.as_mut(), Box::new(SequentialIds::default())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_share_commits_and_every_one_is_answered() {
    let clock = Arc::new(ManualClock::new(T0));
    let service = service(Arc::new(MemoryStore::new()), clock);
    deploy(&service).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let handle = service.handle.clone();
        tasks.push(tokio::spawn(async move {
            handle
                .call(Command::Start(StartCommand {
                    process_id: "work".into(),
                    ..StartCommand::default()
                }))
                .await
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Ok(Reply::Started(_))));
    }
    let (commits, commands) = service.handle.metrics.commits();
    assert_eq!(commands, 201, "every command was committed");
    assert!(commits <= commands);
    let jobs = service
        .handle
        .activate("do".into(), "w".into(), 500, 60_000, Duration::ZERO, None)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 200);
    service.stop();
}

/// A clock whose reading waits while it is closed: a test holds the commit
/// loop at the start of a turn (it reads the clock first), so that what is
/// sent meanwhile makes the next batch, in the order it was sent.
struct GatedClock {
    now: i64,
    /// Closed, and how many readers wait.
    state: std::sync::Mutex<(bool, usize)>,
    changed: std::sync::Condvar,
}

impl GatedClock {
    fn new(now: i64) -> GatedClock {
        GatedClock { now, state: std::sync::Mutex::new((false, 0)), changed: std::sync::Condvar::new() }
    }

    fn set_closed(&self, closed: bool) {
        self.state.lock().unwrap().0 = closed;
        self.changed.notify_all();
    }

    /// Returns once a reader waits at the closed gate.
    fn wait_for_reader(&self) {
        let mut state = self.state.lock().unwrap();
        while state.1 == 0 {
            state = self.changed.wait(state).unwrap();
        }
    }
}

impl runtime::Clock for GatedClock {
    fn now(&self) -> i64 {
        let mut state = self.state.lock().unwrap();
        if state.0 {
            state.1 += 1;
            self.changed.notify_all();
            while state.0 {
                state = self.changed.wait(state).unwrap();
            }
            state.1 -= 1;
        }
        self.now
    }
}

/// Polls a future once (it runs up to its first wait), without a runtime.
fn poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(future.poll(&mut context).is_pending(), "it waits for the commit loop");
}

/// Issue 16: the activations of a batch run after its other commands, so a
/// worker asking in the batch that creates a job gets it in that commit,
/// not at its next poll in a later turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_asking_in_the_batch_that_creates_a_job_gets_it() {
    let clock = Arc::new(GatedClock::new(T0));
    let service = Service::start(Arc::new(MemoryStore::new()), clock.clone(), Box::new(SequentialIds::default()), Options::default())
        .expect("the service starts");
    deploy(&service).await;
    // The loop is held in the turn of an instance that makes no job.
    clock.set_closed(true);
    let handle = service.handle.clone();
    let held = tokio::spawn(async move { handle.call(Command::Start(StartCommand { process_id: "nap".into(), ..StartCommand::default() })).await });
    let waiting = clock.clone();
    tokio::task::spawn_blocking(move || waiting.wait_for_reader()).await.unwrap();
    // Sent while it is held, the ask first: they make the next batch together.
    let handle = &service.handle;
    let mut asked = Box::pin(handle.activate("do".into(), "w".into(), 10, 60_000, Duration::ZERO, None));
    let mut started = Box::pin(handle.call(Command::Start(StartCommand { process_id: "work".into(), ..StartCommand::default() })));
    poll_once(asked.as_mut());
    poll_once(started.as_mut());
    clock.set_closed(false);
    assert!(matches!(held.await.unwrap(), Ok(Reply::Started(_))));
    let Ok(Reply::Started(id)) = started.await else { panic!("the start is answered") };
    let jobs = asked.await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.job.instance_id.as_str()).collect::<Vec<_>>(), [id.as_str()], "the job of the start beside it");
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_hands_the_job_to_another_worker_and_completion_is_once() {
    let clock = Arc::new(ManualClock::new(T0));
    let service = service(Arc::new(MemoryStore::new()), clock.clone());
    deploy(&service).await;
    start(&service, "work", None).await;
    let handle = &service.handle;
    let first = handle
        .activate(
            "do".into(),
            "alice".into(),
            10,
            10_000,
            Duration::ZERO,
            None,
        )
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let key = first[0].job.key.clone();
    assert!(
        handle
            .activate("do".into(), "bob".into(), 10, 10_000, Duration::ZERO, None)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    clock.advance(10_001);
    let second = handle
        .activate("do".into(), "bob".into(), 10, 10_000, Duration::ZERO, None)
        .await
        .unwrap();
    assert_eq!(
        second
            .iter()
            .map(|j| j.job.key.as_str())
            .collect::<Vec<_>>(),
        [key.as_str()],
        "the same job, to bob"
    );
    let complete = |claim: Claim| Command::CompleteJob {
        key: key.clone(),
        claim,
        variables: Default::default(),
        result: None,
    };
    let alices = first[0].job.lease.clone().unwrap();
    let bobs = second[0].job.lease.clone().unwrap();
    assert_ne!(alices, bobs, "each activation has its own lease");
    let late = handle.call(complete(Claim::lease("alice", &alices))).await;
    assert!(matches!(late, Err(Error::LeaseHeld { .. })), "{late:?}");
    // Leaving the lease out does not get round it (it used to, by leaving out the worker).
    let bare = handle.call(complete(Claim::default())).await;
    assert_eq!(bare.unwrap_err().code(), "job-lease-required");
    handle
        .call(complete(Claim::lease("bob", &bobs)))
        .await
        .unwrap();
    let again = handle.call(complete(Claim::lease("bob", &bobs))).await;
    assert_eq!(again.unwrap_err().code(), "job-not-found");
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_with_a_request_id_is_idempotent() {
    let clock = Arc::new(ManualClock::new(T0));
    let service = service(Arc::new(MemoryStore::new()), clock);
    deploy(&service).await;
    let first = start(&service, "work", Some("order-7")).await;
    let second = start(&service, "work", Some("order-7")).await;
    assert_eq!(first, second);
    let third = start(&service, "work", Some("order-8")).await;
    assert_ne!(first, third);
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_that_fell_due_while_the_server_was_down_fires_after_the_restart() {
    let (_dir, path) = temp_db();
    let clock = Arc::new(ManualClock::new(T0));
    let id = {
        let store = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
        let service = service(store, clock.clone());
        deploy(&service).await;
        let id = start(&service, "nap", None).await;
        service.stop();
        id
    };
    clock.advance(2 * 3_600_000);
    let store = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
    let service = service(store.clone(), clock);
    service.handle.call(Command::Tick).await.unwrap();
    let row = store.read().unwrap().instance(&id).unwrap().unwrap();
    assert_eq!(
        row.status,
        engine::Status::Completed,
        "the late timer fired at once"
    );
    service.stop();
}

/// Issue 10: the record (actor, labels, run, history with its actors and
/// runs, resolved incidents) is kept by the SQLite store across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_record_survives_a_restart() {
    let (_dir, path) = temp_db();
    let clock = Arc::new(ManualClock::new(T0));
    let as_ann = || runtime::Audit {
        actor: Some("ann".into()),
        reason: Some("checked".into()),
        ..Default::default()
    };
    let id = {
        let store = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
        let service = service(store.clone(), clock.clone());
        deploy(&service).await;
        let labels = [("customer".to_string(), "c-1".to_string())].into();
        let command = StartCommand {
            process_id: "work".into(),
            labels,
            ..StartCommand::default()
        };
        let Reply::Started(id) = service
            .handle
            .call_as(as_ann(), Command::Start(command))
            .await
            .unwrap()
        else {
            panic!()
        };
        let job = format!(
            "{id}.{}",
            store
                .read()
                .unwrap()
                .jobs(&store::JobFilter::default(), &store::PageRequest::first(10))
                .unwrap()
                .items[0]
                .local_key
        );
        let fail = Command::FailJob {
            key: job.clone(),
            claim: Claim::default(),
            retries: 0,
            message: "down".into(),
            backoff_ms: 0,
            variables: Default::default(),
        };
        service.handle.call(fail).await.unwrap();
        service
            .handle
            .call_as(
                as_ann(),
                Command::UpdateRetries {
                    key: job.clone(),
                    retries: 1,
                },
            )
            .await
            .unwrap();
        let incident = store
            .read()
            .unwrap()
            .incidents(
                &store::IncidentFilter::default(),
                &store::PageRequest::first(10),
            )
            .unwrap()
            .items[0]
            .key
            .clone();
        service
            .handle
            .call_as(as_ann(), Command::ResolveIncident { key: incident })
            .await
            .unwrap();
        service
            .handle
            .call(Command::CompleteJob {
                key: job,
                claim: Claim::default(),
                variables: Default::default(),
                result: None,
            })
            .await
            .unwrap();
        let rerun = Command::Instance {
            instance_id: id.clone(),
            input: engine::Input::Rerun { from: None },
        };
        service.handle.call_as(as_ann(), rerun).await.unwrap();
        service.stop();
        id
    };
    let store = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
    let service = service(store.clone(), clock);
    let mut read = store.read().unwrap();
    let row = read.instance(&id).unwrap().unwrap();
    assert_eq!(
        (
            row.state.created_by.as_deref(),
            row.state.updated_by.as_deref(),
            row.state.run
        ),
        (Some("ann"), Some("ann"), 2)
    );
    assert_eq!(
        row.state.labels.get("customer").map(String::as_str),
        Some("c-1")
    );
    let by_label = store::InstanceFilter {
        label: Some(("customer".into(), "c-1".into())),
        ..Default::default()
    };
    assert_eq!(
        read.instances(&by_label, &store::PageRequest::first(10))
            .unwrap()
            .items
            .len(),
        1
    );
    let resolved = store::IncidentFilter {
        state: store::IncidentState::Resolved,
        ..Default::default()
    };
    let resolved = read
        .incidents(&resolved, &store::PageRequest::first(10))
        .unwrap()
        .items;
    assert_eq!(resolved[0].resolved_by.as_deref(), Some("ann"));
    let history = read
        .history(
            &id,
            &store::HistoryFilter::default(),
            &store::PageRequest::first(1000),
        )
        .unwrap()
        .items;
    let rerun = history
        .iter()
        .find(|h| h.entry.event == engine::HistoryEvent::Rerun)
        .unwrap();
    assert_eq!(
        (
            rerun.entry.actor.as_deref(),
            rerun.entry.reason.as_deref(),
            rerun.entry.run
        ),
        (Some("ann"), Some("checked"), 2)
    );
    let failed = history
        .iter()
        .find(|h| h.entry.event == engine::HistoryEvent::JobFailed)
        .unwrap();
    assert_eq!(
        (
            failed
                .entry
                .detail
                .as_ref()
                .and_then(|d| d.message.as_deref()),
            failed.entry.run
        ),
        (Some("down"), 1)
    );
    drop(read);
    service.stop();
}

/// Regression: a core rebuilt with a fresh sequential id source (found by the
/// simulation, seed 0) reused an id and overwrote the existing instance.
#[test]
fn a_start_never_replaces_an_existing_instance() {
    let store = MemoryStore::new();
    let fresh_core = || core_on(&store);
    let mut core = fresh_core();
    let mut txn = store.write().unwrap();
    core.deploy(
        txn.as_mut(),
        store::DEFAULT_TENANT,
        &[("m.bpmn".into(), MODEL.into())],
        T0,
    )
    .unwrap();
    let first = core
        .start(
            txn.as_mut(),
            StartCommand {
                process_id: "work".into(),
                ..StartCommand::default()
            },
            T0,
        )
        .unwrap();
    txn.commit().unwrap();
    let mut again = fresh_core();
    let mut txn = store.write().unwrap();
    let refused = again
        .start(
            txn.as_mut(),
            StartCommand {
                process_id: "work".into(),
                ..StartCommand::default()
            },
            T0,
        )
        .unwrap_err();
    // The store refuses to write a new instance over a stored one: a
    // conflict, on which the commit loop runs the command again (drawing a
    // new id).
    assert!(
        matches!(&refused, runtime::Error::Store(error) if error.is_conflict()),
        "{refused}"
    );
    drop(txn);
    let kept = store.read().unwrap().instance(&first).unwrap().unwrap();
    assert_eq!(kept.update_count, 1, "the first instance is as its start left it");
}

const TWO_TASKS: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <process id="two" isExecutable="true">
    <startEvent id="start"/>
    <serviceTask id="a"><extensionElements><zeebe:taskDefinition type="do"/></extensionElements></serviceTask>
    <serviceTask id="b"><extensionElements><zeebe:taskDefinition type="do"/></extensionElements></serviceTask>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="a"/>
    <sequenceFlow id="f2" sourceRef="a" targetRef="b"/>
    <sequenceFlow id="f3" sourceRef="b" targetRef="end"/>
  </process>
</definitions>"#;

/// The core keeps decoded instances between commands. A transaction that
/// does not commit must not leave its states behind: after it, the instance
/// is what the store says (its first job still open), not what the lost
/// transaction made of it (the second task active).
#[test]
fn the_instance_cache_forgets_a_transaction_that_did_not_commit() {
    let store = MemoryStore::new();
    let mut core = core_on(&store);
    let mut txn = store.write().unwrap();
    core.deploy(
        txn.as_mut(),
        store::DEFAULT_TENANT,
        &[("m.bpmn".into(), TWO_TASKS.into())],
        T0,
    )
    .unwrap();
    let id = core
        .start(
            txn.as_mut(),
            StartCommand {
                process_id: "two".into(),
                ..StartCommand::default()
            },
            T0,
        )
        .unwrap();
    let jobs = core
        .activate_jobs(txn.as_mut(), "do", "w", 10, 60_000, T0)
        .unwrap();
    txn.commit().unwrap();
    assert_eq!(jobs.len(), 1);
    let (key, local) = (jobs[0].job.key.clone(), jobs[0].job.local_key);
    assert_eq!(core.cache_stats().0, 1, "the started instance is cached");
    let complete = |core: &mut runtime::Core, txn: &mut dyn store::WriteTxn| {
        core.input(
            txn,
            &id,
            engine::Input::CompleteJob {
                job: local,
                variables: Default::default(),
                result: None,
            },
            T0 + 1,
        )
    };

    // Completed, then lost: the transaction is dropped (a failed commit), and the core reloads.
    let mut txn = store.write().unwrap();
    complete(&mut core, txn.as_mut()).unwrap();
    drop(txn);
    core.reload(store.read().unwrap().as_mut()).unwrap();
    assert_eq!(core.cache_stats().0, 0);

    let mut txn = store.write().unwrap();
    complete(&mut core, txn.as_mut()).expect("the job is still open after the lost transaction");
    txn.commit().unwrap();
    let row = store.read().unwrap().instance(&id).unwrap().unwrap();
    assert!(store.read().unwrap().job(&key).unwrap().is_none());
    let active: Vec<&str> = row
        .state
        .element_instances
        .values()
        .map(|ei| ei.element_id.as_str())
        .collect();
    assert_eq!(active, ["two", "b"]);
}

fn incidents_of(store: &dyn Store, id: &str) -> Vec<store::IncidentRow> {
    let filter = store::IncidentFilter {
        instance_id: Some(id.to_string()),
        ..Default::default()
    };
    store
        .read()
        .unwrap()
        .incidents(&filter, &store::PageRequest::first(100))
        .unwrap()
        .items
}

/// Issue 9, item 6: a step that panics (here a panic injected into the
/// engine call, as a defect would) becomes an `engine_fault` incident of its
/// instance; the commit loop, every other instance and every later command
/// carry on; a restart does not fail again; resolving retries the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_panics_faults_its_instance_alone_and_survives_a_restart() {
    let (_dir, path) = temp_db();
    let clock = Arc::new(ManualClock::new(T0));
    let store: Arc<dyn Store> = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
    let doomed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let chosen = doomed.clone();
    let inject = runtime::PanicInjection(Arc::new(move |id: &str, input: &engine::Input| {
        chosen.lock().unwrap().iter().any(|d| d == id)
            && matches!(
                input,
                engine::Input::TimerFired { .. } | engine::Input::CompleteJob { .. }
            )
    }));
    let options = Options {
        inject_panic: Some(inject),
        ..Options::default()
    };
    let service = Service::start(
        store.clone(),
        clock.clone(),
        Box::new(SequentialIds::default()),
        options,
    )
    .unwrap();
    deploy(&service).await;
    let faulty_nap = start(&service, "nap", None).await;
    let healthy_nap = start(&service, "nap", None).await;
    let faulty_work = start(&service, "work", None).await;
    let healthy_work = start(&service, "work", None).await;
    doomed
        .lock()
        .unwrap()
        .extend([faulty_nap.clone(), faulty_work.clone()]);

    // Both timers fall due in one turn: one faults, the other fires.
    clock.advance(2 * 3_600_000);
    service.handle.call(Command::Tick).await.unwrap();
    let status = |id: &str| store.read().unwrap().instance(id).unwrap().unwrap().status;
    assert_eq!(status(&healthy_nap), engine::Status::Completed);
    assert_eq!(status(&faulty_nap), engine::Status::Running);
    let faults = incidents_of(store.as_ref(), &faulty_nap);
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(
        (faults[0].kind.as_str(), faults[0].element_id.as_str()),
        ("engine_fault", "n_wait")
    );
    assert!(
        faults[0].message.contains("a panic injected by a test"),
        "{}",
        faults[0].message
    );
    assert_eq!(
        store.read().unwrap().next_due().unwrap(),
        None,
        "the faulted timer is off the schedule, so it does not fail on every turn"
    );

    // A job completion that panics answers engine-fault; the instance refuses inputs until resolved.
    let jobs = service
        .handle
        .activate("do".into(), "w".into(), 10, 60_000, Duration::ZERO, None)
        .await
        .unwrap();
    let key_of = |id: &str| {
        jobs.iter()
            .find(|j| j.job.instance_id == id)
            .unwrap()
            .job
            .key
            .clone()
    };
    let complete = |key: String| {
        let lease = jobs
            .iter()
            .find(|j| j.job.key == key)
            .and_then(|j| j.job.lease.clone())
            .unwrap();
        Command::CompleteJob {
            key,
            claim: Claim::lease("w", &lease),
            variables: Default::default(),
            result: None,
        }
    };
    let failed = service
        .handle
        .call(complete(key_of(&faulty_work)))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), "engine-fault", "{failed}");
    assert!(
        matches!(&failed, Error::Fault(f) if f.instance_id.as_deref() == Some(faulty_work.as_str())),
        "{failed:?}"
    );
    let again = service
        .handle
        .call(complete(key_of(&faulty_work)))
        .await
        .unwrap_err();
    assert_eq!(again.code(), "instance-faulted", "{again}");
    // Commands run without savepoints; the panic sent its batch round again,
    // each command in a savepoint, to undo it and record the fault. The
    // refusal after it wrote nothing, and needed no second run.
    assert_eq!(service.handle.metrics.reruns(), 1);
    service
        .handle
        .call(complete(key_of(&healthy_work)))
        .await
        .unwrap();
    assert_eq!(status(&healthy_work), engine::Status::Completed);
    assert_eq!(
        incidents_of(store.as_ref(), &faulty_work)[0].element_id,
        "task"
    );
    assert!(service.handle.is_running(), "the commit loop survived");
    service.stop();

    // A restart on the same file neither panics nor faults again; resolving fires the timer.
    let service = service_on(store.clone(), clock.clone());
    service.handle.call(Command::Tick).await.unwrap();
    assert_eq!(incidents_of(store.as_ref(), &faulty_nap).len(), 1);
    service
        .handle
        .call(Command::ResolveIncident {
            key: faults[0].key.clone(),
        })
        .await
        .unwrap();
    service.handle.call(Command::Tick).await.unwrap();
    assert_eq!(
        status(&faulty_nap),
        engine::Status::Completed,
        "resolving retried the timer"
    );
    assert!(incidents_of(store.as_ref(), &faulty_nap).is_empty());
    service.stop();
}

/// Each command of a batch is isolated: one that faults leaves the others' writes.
#[test]
fn a_fault_in_one_command_of_a_batch_keeps_the_others() {
    let store = MemoryStore::new();
    let mut core = core_on(&store);
    let mut txn = store.write().unwrap();
    core.deploy(
        txn.as_mut(),
        store::DEFAULT_TENANT,
        &[("m.bpmn".into(), MODEL.into())],
        T0,
    )
    .unwrap();
    let first = core
        .start(
            txn.as_mut(),
            StartCommand {
                process_id: "work".into(),
                ..StartCommand::default()
            },
            T0,
        )
        .unwrap();
    txn.commit().unwrap();
    core.inject_panic(Some(runtime::PanicInjection(Arc::new(
        |_: &str, input: &engine::Input| matches!(input, engine::Input::SetVariables { .. }),
    ))));
    let mut txn = store.write().unwrap();
    let set = engine::Input::SetVariables {
        element_instance: None,
        variables: Default::default(),
    };
    let faulted = core
        .isolated(txn.as_mut(), T0, |core, tx| {
            core.input(tx, &first, set.clone(), T0)
        })
        .unwrap_err();
    assert_eq!(faulted.code(), "engine-fault");
    let second = core
        .isolated(txn.as_mut(), T0, |core, tx| {
            core.start(
                tx,
                StartCommand {
                    process_id: "work".into(),
                    ..StartCommand::default()
                },
                T0,
            )
        })
        .unwrap();
    txn.commit().unwrap();
    let mut read = store.read().unwrap();
    assert_eq!(
        read.instance(&first).unwrap().unwrap().status,
        engine::Status::Running,
        "the faulted step wrote nothing"
    );
    assert_eq!(read.instance(&first).unwrap().unwrap().incidents, 1);
    assert!(
        read.instance(&second).unwrap().is_some(),
        "the next command of the batch committed"
    );
}

/// Issue 16, item 2: a command runs without a savepoint. One that fails
/// having written nothing stands (its refusal is its answer); one that fails
/// after writing asks for the batch to run again with savepoints, since its
/// writes cannot be undone alone; a store that cannot count its changes
/// runs the command in a savepoint at once.
#[test]
fn a_command_that_failed_after_writing_asks_for_savepoints() {
    let store = MemoryStore::new();
    let mut core = core_on(&store);
    let refused = || Error::NotFound { what: "job", id: "j".into() };
    let row = store::conformance::instance("written", "p", engine::Status::Running, T0);
    let mut txn = store.write().unwrap();
    let done = core.unguarded(txn.as_mut(), T0, |_, _| Ok::<_, Error>(7));
    assert!(matches!(done, runtime::Unguarded::Done(Ok(7))), "{done:?}");
    let nothing_written = core.unguarded(txn.as_mut(), T0, |_, _| Err::<(), _>(refused()));
    assert!(matches!(nothing_written, runtime::Unguarded::Done(Err(Error::NotFound { .. }))), "{nothing_written:?}");
    let written = core.unguarded(txn.as_mut(), T0, |_, tx| {
        tx.put_instance(&row).map_err(Error::Store)?;
        Err::<(), _>(refused())
    });
    assert!(matches!(written, runtime::Unguarded::NeedsSavepoints), "{written:?}");
    let panicked = core.unguarded(txn.as_mut(), T0, |_, _| -> Result<(), Error> { panic!("a defect") });
    assert!(matches!(panicked, runtime::Unguarded::NeedsSavepoints), "{panicked:?}");
}

/// A commit that fails while the store stays unreachable (PostgreSQL
/// restarting): the instances the batch changed must not stay in the cache
/// as they were in the transaction that never committed. The cache used to
/// be cleared only when the store could be read right away, so a later
/// command wrote the lost change back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_leaves_nothing_in_the_cache_even_while_the_store_is_down() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemoryStore::new());
    let service = service(store.clone(), clock);
    deploy(&service).await;
    let id = start(&service, "nap", None).await;
    let set = |name: &str| Command::Instance {
        instance_id: id.clone(),
        input: engine::Input::SetVariables {
            element_instance: None,
            variables: serde_json::json!({ name: 1 }).as_object().unwrap().clone(),
        },
    };
    store.fail_at_next_commit();
    let lost = service.handle.call(set("lost")).await;
    assert_eq!(lost.unwrap_err().code(), "store-unavailable");
    let refused = service.handle.call(set("refused")).await;
    assert_eq!(refused.unwrap_err().code(), "store-unavailable", "the store is still down");
    store.end_outage();
    service.handle.call(set("kept")).await.unwrap();
    let row = store.read().unwrap().instance(&id).unwrap().unwrap();
    let names: Vec<&String> = row.state.variables.keys().collect();
    assert_eq!(names, ["kept"], "only what committed");
    service.stop();
}

/// Issue 15, item 3, on the runtime's side: two cores (nodes) on one store,
/// each with its cache. Node A keeps an instance it started; node B changes
/// it; A's next command on it finds its copy stale (the store's version
/// check), reads it again and applies the command on what B wrote: no change
/// is lost to a stale copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_copy_is_stale_reads_again_and_loses_no_change() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemoryStore::new());
    let a = service(store.clone(), clock.clone());
    deploy(&a).await;
    let id = start(&a, "nap", None).await;
    let b = Service::start(store.clone(), clock, Box::new(SequentialIds::default()), Options::default()).expect("node b starts");
    let set = |name: &str| Command::Instance {
        instance_id: id.clone(),
        input: engine::Input::SetVariables {
            element_instance: None,
            variables: serde_json::json!({ name: 1 }).as_object().unwrap().clone(),
        },
    };
    b.handle.call(set("from_b")).await.unwrap();
    a.handle.call(set("from_a")).await.expect("a reads the instance again and applies its command");
    let row = store.read().unwrap().instance(&id).unwrap().unwrap();
    let mut names: Vec<&String> = row.state.variables.keys().collect();
    names.sort();
    assert_eq!(names, ["from_a", "from_b"], "neither node's change was lost");
    a.stop();
    b.stop();
}

/// A node whose batch looked for deployments before another node deployed a
/// workflow with a timer start event, then finds that timer due in the same
/// batch (its row committed meanwhile), learns the workflow and starts the
/// instance, instead of moving the timer on with no instance started.
#[test]
fn a_start_timer_of_a_workflow_another_node_just_deployed_starts_its_instance() {
    let store = store::MemoryStore::new();
    let mut stale = runtime::Core::load(store.read().unwrap().as_mut(), Box::new(runtime::SequentialIds::default())).unwrap();
    stale.shared_store = true;
    let mut deploying = runtime::Core::load(store.read().unwrap().as_mut(), Box::new(runtime::SequentialIds::default())).unwrap();
    deploying.shared_store = true;
    let model = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
      <process id="tick" isExecutable="true">
        <startEvent id="s"><timerEventDefinition><timeCycle>R2/PT1M</timeCycle></timerEventDefinition></startEvent>
        <sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/>
      </process>
    </definitions>"#;
    let mut txn = store.write().unwrap();
    deploying.deploy(txn.as_mut(), store::DEFAULT_TENANT, &[("tick.bpmn".into(), model.into())], T0).unwrap();
    txn.commit().unwrap();
    let mut txn = store.write().unwrap();
    let fired = stale.fire_due(txn.as_mut(), T0 + 60_000, 10).unwrap();
    txn.commit().unwrap();
    assert_eq!(fired, 1);
    let started = store.read().unwrap().instances(&store::InstanceFilter::default(), &store::PageRequest::first(10)).unwrap().items;
    assert_eq!(started.len(), 1, "the occurrence started its instance");
}

const RETAINED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="r">
  <process id="quick" isExecutable="true">
    <startEvent id="q_start"/><sequenceFlow id="q1" sourceRef="q_start" targetRef="q_end"/><endEvent id="q_end"/>
  </process>
  <process id="kept" isExecutable="true">
    <extensionElements><zeebe:properties><zeebe:property name="baton:retention" value="forever"/></zeebe:properties></extensionElements>
    <startEvent id="k_start"/><sequenceFlow id="k1" sourceRef="k_start" targetRef="k_end"/><endEvent id="k_end"/>
  </process>
  <process id="brief" isExecutable="true">
    <extensionElements><zeebe:properties><zeebe:property name="baton:retention" value="PT10S"/></zeebe:properties></extensionElements>
    <startEvent id="b_start"/><sequenceFlow id="b1" sourceRef="b_start" targetRef="b_wait"/>
    <intermediateCatchEvent id="b_wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow id="b2" sourceRef="b_wait" targetRef="b_end"/><endEvent id="b_end"/>
  </process>
</definitions>"#;

/// The SQLite file's bytes, its write-ahead log's included.
fn file_bytes(db: &std::path::Path) -> u64 {
    let wal = db.with_extension("db-wal");
    std::fs::metadata(db).map_or(0, |m| m.len()) + std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Issue 16, item 4: a message published with a time to live is listed as
/// undelivered once it expires with nobody taking it, and deleted when the
/// server's retention has passed since then (a few at a time, as ended
/// instances are); without a retention it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_go_when_the_retention_has_passed_since_they_expired() {
    for retention_ms in [Some(120_000), None] {
        let clock = Arc::new(ManualClock::new(T0));
        let (_dir, db) = temp_db();
        let store: Arc<dyn Store> = Arc::new(store_sqlite::SqliteStore::open(&db).unwrap());
        let options = Options { retention_ms, ..Options::default() };
        let service = Service::start(store.clone(), clock.clone(), Box::new(SequentialIds::default()), options).unwrap();
        let publish = |key: &str, ttl_ms: i64| {
            let command = runtime::PublishCommand { name: "paid".into(), correlation_key: key.into(), ttl_ms, ..runtime::PublishCommand::default() };
            service.handle.call(Command::Publish(command))
        };
        publish("short", 1_000).await.unwrap();
        publish("long", 600_000).await.unwrap();
        let undelivered = |now: i64| {
            let filter = store::MessageFilter { state: store::MessageState::Undelivered, ..store::MessageFilter::default() };
            let page = store.read().unwrap().messages(&filter, now, &store::PageRequest::first(10)).unwrap();
            page.items.into_iter().map(|m| m.correlation_key).collect::<Vec<_>>()
        };
        let kept = || store.read().unwrap().messages(&store::MessageFilter::default(), 0, &store::PageRequest::first(10)).unwrap().items.len();
        // Expired a minute ago: listed as undelivered, and kept.
        clock.advance(61_000);
        service.handle.call(Command::Tick).await.unwrap();
        assert_eq!(undelivered(T0 + 61_000), ["short"]);
        assert_eq!(kept(), 2);
        // Two minutes and more since it expired: gone, with the retention.
        clock.advance(61_000);
        service.handle.call(Command::Tick).await.unwrap();
        match retention_ms {
            Some(_) => {
                assert!(undelivered(T0 + 122_000).is_empty(), "deleted once the retention passed");
                assert_eq!(kept(), 1, "the one still buffered stays");
                assert!(service.handle.metrics.render(&[]).contains("baton_messages_deleted_total 1"));
            }
            None => assert_eq!((undelivered(T0 + 122_000), kept()), (vec!["short".to_string()], 2), "no retention: kept"),
        }
        service.stop();
    }
}

/// Issue 16, item 4: with a retention of two minutes, ended instances go
/// with their history once it runs out, a few at a time; a workflow's own
/// retention (`forever`, ten seconds) overrides the server's; and under a
/// steady load of instances and of publications nobody takes, the SQLite
/// file stops growing once the period is reached (the space of deleted
/// rows is used again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_instances_go_when_their_retention_runs_out_and_the_file_stops_growing() {
    let clock = Arc::new(ManualClock::new(T0));
    let (_dir, db) = temp_db();
    let store: Arc<dyn Store> = Arc::new(store_sqlite::SqliteStore::open(&db).unwrap());
    let options = Options { retention_ms: Some(120_000), ..Options::default() };
    let service = Service::start(store.clone(), clock.clone(), Box::new(SequentialIds::default()), options).unwrap();
    let files = vec![("r.bpmn".to_string(), RETAINED.to_string())];
    service.handle.call(Command::Deploy { tenant: store::DEFAULT_TENANT.into(), files }).await.unwrap();
    let kept = start(&service, "kept", None).await;
    let brief = start(&service, "brief", None).await;
    let waiting = start(&service, "quick", None).await;
    let refused = service.handle.call(Command::DeleteInstance { instance_id: brief.clone() }).await;
    assert!(matches!(&refused, Err(Error::Rejected(r)) if r.code == engine::RejectionCode::InstanceNotEnded), "{refused:?}");

    let mut sizes = Vec::new();
    for round in 0..16 {
        for n in 0..200 {
            start(&service, "quick", None).await;
            if n % 2 == 0 {
                let command = runtime::PublishCommand { name: "nobody".into(), correlation_key: format!("{round}-{n}"), ttl_ms: 10_000, ..runtime::PublishCommand::default() };
                service.handle.call(Command::Publish(command)).await.unwrap();
            }
        }
        if round == 0 {
            // Ends the brief one's wait: it is kept ten seconds from then.
            clock.advance(3_600_000);
        }
        clock.advance(30_000);
        // Turns: each deletes up to a hundred, and the next goes on while more are due.
        for _ in 0..8 {
            service.handle.call(Command::Tick).await.unwrap();
        }
        sizes.push(file_bytes(&db));
    }
    let mut read = store.read().unwrap();
    assert!(read.instance(&kept).unwrap().is_some(), "kept for ever, as its workflow says");
    assert!(read.instance(&brief).unwrap().is_none(), "gone ten seconds after it ended");
    assert!(read.history(&brief, &store::HistoryFilter::default(), &store::PageRequest::first(10)).unwrap().items.is_empty(), "its history too");
    assert!(read.instance(&waiting).unwrap().is_none());
    let left = read.count_instances().unwrap().iter().map(|(_, n)| n).sum::<u64>();
    assert!(left <= 5 * 200 + 1, "what ended more than two minutes ago is gone: {left} instances left");
    let messages = read.messages(&store::MessageFilter { state: store::MessageState::Undelivered, ..store::MessageFilter::default() }, i64::MAX, &store::PageRequest::first(1000)).unwrap().items.len();
    assert!(messages <= 5 * 100, "what expired more than two minutes ago is gone: {messages} messages left");
    drop(read);
    // Before the first deletions (two minutes are four rounds) each round adds its 200 instances.
    let early_round = (sizes[4] - sizes[0]) / 4;
    let late_growth = sizes[15].saturating_sub(sizes[9]);
    assert!(late_growth < early_round, "the file stopped growing: {late_growth} bytes over six late rounds, {early_round} a round before deletions began ({sizes:?})");
    let metrics = service.handle.metrics.render(&[]);
    assert!(metrics.contains("baton_instances_deleted_total "), "{metrics}");
    assert!(metrics.contains("baton_messages_deleted_total "), "{metrics}");
    // Deleted on request: an ended instance, at once.
    service.handle.call(Command::DeleteInstance { instance_id: kept.clone() }).await.unwrap();
    assert!(store.read().unwrap().instance(&kept).unwrap().is_none());
    service.stop();
}

/// Issue 17, item 1: an input that would make an instance's variables larger
/// than `engine::MAX_VARIABLES_BYTES` is not applied. Its instance gets a
/// `variables_too_large` incident and takes nothing but smaller variables,
/// resolve or cancel; every other instance carries on; a start that large is
/// refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_would_make_the_variables_too_large_stops_its_instance_alone() {
    let (_dir, path) = temp_db();
    let clock = Arc::new(ManualClock::new(T0));
    let store: Arc<dyn Store> = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
    let service = service(store.clone(), clock.clone());
    deploy(&service).await;
    let blob = |bytes: usize| engine::Variables::from_iter([("blob".to_string(), serde_json::json!("x".repeat(bytes)))]);
    let too_large = engine::MAX_VARIABLES_BYTES + 1;

    let refused = service.handle.call(Command::Start(StartCommand { process_id: "work".into(), variables: blob(too_large), ..StartCommand::default() })).await.unwrap_err();
    assert_eq!(refused.code(), "variables-too-large", "{refused}");
    assert!(store.read().unwrap().instance_counts(&None).unwrap().is_empty(), "no instance was made");

    let big = start(&service, "work", None).await;
    let other = start(&service, "work", None).await;
    let jobs = service.handle.activate("do".into(), "w".into(), 10, 60_000, Duration::ZERO, None).await.unwrap();
    let complete = |id: &str, variables: engine::Variables| {
        let job = &jobs.iter().find(|j| j.job.instance_id == id).unwrap().job;
        Command::CompleteJob { key: job.key.clone(), claim: Claim::lease("w", job.lease.as_deref().unwrap()), variables, result: None }
    };
    let failed = service.handle.call(complete(&big, blob(too_large))).await.unwrap_err();
    assert_eq!(failed.code(), "variables-too-large", "{failed}");
    let incidents = incidents_of(store.as_ref(), &big);
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!((incidents[0].kind.as_str(), incidents[0].element_id.as_str()), ("variables_too_large", "task"));
    assert!(incidents[0].message.contains("the limit is"), "{}", incidents[0].message);
    let instance = store.read().unwrap().instance(&big).unwrap().unwrap();
    assert!(instance.state.variables.get("blob").is_none(), "nothing of the completion was written");

    // The other instance carries on; this one takes nothing but smaller variables, then a resolve.
    service.handle.call(complete(&other, blob(10))).await.unwrap();
    let status = |id: &str| store.read().unwrap().instance(id).unwrap().unwrap().status;
    assert_eq!(status(&other), engine::Status::Completed);
    let again = service.handle.call(complete(&big, blob(10))).await.unwrap_err();
    assert_eq!(again.code(), "instance-faulted", "{again}");
    let mended = engine::Input::SetVariables { element_instance: None, variables: blob(10) };
    service.handle.call(Command::Instance { instance_id: big.clone(), input: mended }).await.unwrap();
    service.handle.call(Command::ResolveIncident { key: incidents[0].key.clone() }).await.unwrap();
    service.handle.call(complete(&big, blob(10))).await.unwrap();
    assert_eq!(status(&big), engine::Status::Completed);
    service.stop();
}

/// SQLite's index of instances' own variables follows every change, written
/// a variable at a time: a job completion that changes one and adds one is
/// found by the new values and no longer by the old; across a restart too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_found_by_their_variables_as_they_change() {
    let (_dir, path) = temp_db();
    let clock = Arc::new(ManualClock::new(T0));
    let store: Arc<dyn Store> = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
    let service = service(store.clone(), clock.clone());
    deploy(&service).await;
    let vars = |v: serde_json::Value| v.as_object().cloned().unwrap().into_iter().collect::<engine::Variables>();
    let reply = service.handle.call(Command::Start(StartCommand { process_id: "work".into(), variables: vars(serde_json::json!({"a": 1, "b": 2})), ..StartCommand::default() })).await.unwrap();
    let Reply::Started(id) = reply else { panic!("{reply:?}") };
    let found = |name: &str, value: serde_json::Value| {
        let filter = store::InstanceFilter { variable: Some((name.into(), value)), ..store::InstanceFilter::default() };
        store.read().unwrap().instances(&filter, &store::PageRequest::first(10)).unwrap().items.iter().map(|i| i.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(found("b", serde_json::json!(2)), [id.clone()]);
    let jobs = service.handle.activate("do".into(), "w".into(), 10, 60_000, Duration::ZERO, None).await.unwrap();
    let job = &jobs[0].job;
    let complete = Command::CompleteJob { key: job.key.clone(), claim: Claim::lease("w", job.lease.as_deref().unwrap()), variables: vars(serde_json::json!({"b": 3.0, "c": {"x": [1]}})), result: None };
    service.handle.call(complete).await.unwrap();
    assert_eq!(found("b", serde_json::json!(2)), Vec::<String>::new(), "the old value is gone");
    assert_eq!(found("b", serde_json::json!(3)), [id.clone()], "3.0 is 3");
    assert_eq!(found("c", serde_json::json!({"x": [1]})), [id.clone()]);
    assert_eq!(found("a", serde_json::json!(1)), [id.clone()], "what did not change is still found");
    // A running instance, changed after a restart (its state read back from the file, not the cache).
    let reply = service.handle.call(Command::Start(StartCommand { process_id: "nap".into(), variables: vars(serde_json::json!({"a": 1})), ..StartCommand::default() })).await.unwrap();
    let Reply::Started(napping) = reply else { panic!("{reply:?}") };
    assert_eq!(found("a", serde_json::json!(1)), [id.clone(), napping.clone()]);
    service.stop();
    let service = service_on(store.clone(), clock.clone());
    let renamed = engine::Input::SetVariables { element_instance: None, variables: vars(serde_json::json!({"a": "one"})) };
    service.handle.call(Command::Instance { instance_id: napping.clone(), input: renamed }).await.unwrap();
    assert_eq!(found("a", serde_json::json!(1)), [id.clone()]);
    assert_eq!(found("a", serde_json::json!("one")), [napping.clone()]);
    // A deleted instance is no longer found (store-sqlite's tests check its entries go too).
    service.handle.call(Command::Instance { instance_id: napping.clone(), input: engine::Input::Cancel { reason: None } }).await.unwrap();
    service.handle.call(Command::DeleteInstance { instance_id: napping.clone() }).await.unwrap();
    assert_eq!(found("a", serde_json::json!("one")), Vec::<String>::new());
    service.stop();
}

/// Issue 16, item 2: states are stored in a positional binary form
/// (`store::compact`: MessagePack with fields by place, not by name), in
/// SQLite files as in memory. A field moved, or added anywhere but at the end
/// with `#[serde(default)]`, would make the states files already hold read
/// wrongly or not at all. `tests/stored-states.hex` holds states as this form
/// wrote them (a job waiting, a timer waiting, a completed instance with its
/// history); they must decode to what the engine makes today. Re-pin
/// (`BATON_PIN_STORED_FORM=1`) only for a change that old files survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_in_the_stored_form_of_earlier_builds_read_unchanged() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let service = service(store.clone(), clock.clone());
    deploy(&service).await;
    let mut variables = serde_json::Map::new();
    variables.insert("order".into(), serde_json::json!({"id": "A-1", "lines": [1, 2.5, "x", null, true]}));
    let started = |process: &str| StartCommand { process_id: process.into(), variables: variables.clone(), business_key: Some("key-1".into()), ..StartCommand::default() };
    let working = match service.handle.call(Command::Start(started("work"))).await.unwrap() {
        Reply::Started(id) => id,
        other => panic!("{other:?}"),
    };
    let napping = match service.handle.call(Command::Start(started("nap"))).await.unwrap() {
        Reply::Started(id) => id,
        other => panic!("{other:?}"),
    };
    let done = start(&service, "work", None).await;
    let jobs = service.handle.activate("do".into(), "w".into(), 10, 60_000, Duration::ZERO, None).await.unwrap();
    let job = jobs.iter().find(|job| job.job.instance_id == done).expect("a job of the third instance");
    let claim = Claim::lease("w", job.job.lease.as_deref().unwrap());
    let mut output = serde_json::Map::new();
    output.insert("approved".into(), serde_json::json!(true));
    service.handle.call(Command::CompleteJob { key: job.job.key.clone(), claim, variables: output, result: None }).await.unwrap();
    service.stop();

    let mut read = store.read().unwrap();
    let states: Vec<engine::InstanceState> = [&working, &napping, &done].iter().map(|id| read.instance(id).unwrap().expect("stored").state).collect();
    let history: Vec<engine::HistoryEntry> =
        read.history(&done, &store::HistoryFilter::default(), &store::PageRequest::first(100)).unwrap().items.into_iter().map(|row| row.entry).collect();
    assert!(history.len() >= 6, "{history:?}");
    assert_eq!(pinned("stored-states.hex", &states), states);
    assert_eq!(pinned("stored-history.hex", &history), history);
}

/// What `tests/<name>` holds (one value in the stored form per line, as
/// hex), written from `values` first when `BATON_PIN_STORED_FORM` is set.
fn pinned<T: serde::Serialize + serde::de::DeserializeOwned>(name: &str, values: &[T]) -> Vec<T> {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(name);
    if std::env::var_os("BATON_PIN_STORED_FORM").is_some() {
        let lines: Vec<String> = values.iter().map(|value| store::compact::encode(value).unwrap().iter().map(|b| format!("{b:02x}")).collect()).collect();
        std::fs::write(&fixture, lines.join("\n") + "\n").unwrap();
    }
    std::fs::read_to_string(&fixture)
        .unwrap()
        .lines()
        .map(|line| {
            let bytes: Vec<u8> = (0..line.len()).step_by(2).map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap()).collect();
            store::compact::decode(&bytes).expect("a value an earlier build stored reads")
        })
        .collect()
}

/// Issue 16: a node that learns what another deployed reads only that, and
/// compiles a version only when something needs it: never one it compiled
/// before, so a deployment costs the other nodes the same however many came
/// before it.
#[test]
fn a_node_compiles_only_what_other_nodes_deployed_since_it_looked() {
    let store = MemoryStore::new();
    let node = || {
        let mut core = core_on(&store);
        core.shared_store = true;
        core
    };
    let (mut deploying, mut learning) = (node(), node());
    let mut deploy = |xml: &str| {
        let mut txn = store.write().unwrap();
        deploying.deploy(txn.as_mut(), store::DEFAULT_TENANT, &[("m.bpmn".into(), xml.into())], T0).unwrap();
        txn.commit().unwrap();
        deploying.committed();
    };
    deploy(MODEL);
    deploy(TWO_TASKS);
    let mut read = store.read().unwrap();
    learning.learn_deployments(read.as_mut()).unwrap();
    assert_eq!(learning.workflows_compiled(), 0, "learning compiles nothing");
    let registry = learning.registry();
    // MODEL holds two processes, TWO_TASKS one.
    for process_id in ["work", "nap", "two"] {
        assert!(registry.get(store::DEFAULT_TENANT, process_id, 1).is_some(), "{process_id}");
    }
    assert_eq!(learning.workflows_compiled(), 3);
    drop(read);
    deploy(RETAINED);
    let mut read = store.read().unwrap();
    learning.learn_deployments(read.as_mut()).unwrap();
    // It knows every one, those from before too, and compiles only the new.
    let registry = learning.registry();
    for process_id in ["work", "nap", "two", "quick", "kept", "brief"] {
        assert!(registry.get(store::DEFAULT_TENANT, process_id, 1).is_some(), "{process_id}");
    }
    // RETAINED holds three processes.
    assert_eq!(learning.workflows_compiled(), 6, "the third deployment alone is compiled");
    // With nothing new, nothing is compiled.
    learning.learn_deployments(read.as_mut()).unwrap();
    for process_id in ["work", "nap", "two", "quick", "kept", "brief"] {
        assert!(registry.get(store::DEFAULT_TENANT, process_id, 1).is_some(), "{process_id}");
    }
    assert_eq!(learning.workflows_compiled(), 6);
    // What a core deployed itself was compiled before it was deployed.
    assert_eq!(deploying.workflows_compiled(), 0);
}

fn start_on(core: &mut runtime::Core, store: &MemoryStore, process_id: &str) -> Result<String, Error> {
    let mut txn = store.write().unwrap();
    let command = StartCommand { process_id: process_id.into(), ..StartCommand::default() };
    let started = core.start(txn.as_mut(), command, T0)?;
    txn.commit().unwrap();
    core.committed();
    Ok(started)
}

/// Issue 17: a restart compiles no model; each version is compiled when
/// something first needs it, once. (It once compiled every version ever
/// deployed: a thousand versions of a 105-element model took 0.35 s and
/// 195 MB before the server answered.)
#[test]
fn a_restart_compiles_only_the_versions_it_uses() {
    let store = MemoryStore::new();
    {
        let mut first = core_on(&store);
        for xml in [MODEL, TWO_TASKS] {
            let mut txn = store.write().unwrap();
            first.deploy(txn.as_mut(), store::DEFAULT_TENANT, &[("m.bpmn".into(), xml.into())], T0).unwrap();
            txn.commit().unwrap();
        }
        start_on(&mut first, &store, "two").unwrap();
    }
    // Its ids go on from where the first left off, as UUIDs would never meet.
    struct Later(u64);
    impl runtime::IdSource for Later {
        fn next_instance_id(&mut self) -> String {
            self.0 += 1;
            format!("later{}", self.0)
        }

        fn next_lease(&mut self) -> String {
            self.next_instance_id()
        }
    }
    let mut read = store.read().unwrap();
    let mut restarted = runtime::Core::load(read.as_mut(), Box::new(Later(0))).unwrap();
    drop(read);
    assert_eq!(restarted.workflows_compiled(), 0, "a restart compiles nothing");
    // The instance started before the restart runs on: its version is compiled for its step.
    let mut txn = store.write().unwrap();
    let jobs = restarted.activate_jobs(txn.as_mut(), "do", "w", 10, 60_000, T0).unwrap();
    txn.commit().unwrap();
    assert_eq!(jobs.len(), 1);
    let mut txn = store.write().unwrap();
    let job = &jobs[0].job;
    let input = engine::Input::CompleteJob { job: job.local_key, variables: Default::default(), result: None };
    restarted.input(txn.as_mut(), &job.instance_id, input, T0).unwrap();
    txn.commit().unwrap();
    assert_eq!(restarted.workflows_compiled(), 1);
    start_on(&mut restarted, &store, "two").unwrap();
    start_on(&mut restarted, &store, "two").unwrap();
    assert_eq!(restarted.workflows_compiled(), 1, "compiled once");
    start_on(&mut restarted, &store, "work").unwrap();
    assert_eq!(restarted.workflows_compiled(), 2, "the file's other process is not compiled with it");
}

/// The latest version of each workflow can be compiled off the commit loop
/// (a service does so on a thread of its own when it starts); older
/// versions wait until an instance of theirs needs them.
#[test]
fn the_latest_versions_are_compiled_ahead_and_the_older_left() {
    let store = MemoryStore::new();
    {
        let mut first = core_on(&store);
        for xml in [MODEL, TWO_TASKS, &TWO_TASKS.replace(r#"id="b""#, r#"id="b2""#).replace(r#"targetRef="b""#, r#"targetRef="b2""#).replace(r#"sourceRef="b""#, r#"sourceRef="b2""#)] {
            let mut txn = store.write().unwrap();
            first.deploy(txn.as_mut(), store::DEFAULT_TENANT, &[("m.bpmn".into(), xml.into())], T0).unwrap();
            txn.commit().unwrap();
        }
    }
    let restarted = core_on(&store);
    let registry = restarted.registry();
    // work and nap (MODEL), and version 2 of two; not version 1 of two.
    assert_eq!(registry.compile_latest(), 3);
    assert_eq!(restarted.workflows_compiled(), 3);
    assert!(registry.find(store::DEFAULT_TENANT, "two", 2).unwrap().model.is_compiled());
    assert!(!registry.find(store::DEFAULT_TENANT, "two", 1).unwrap().model.is_compiled());
    assert_eq!(registry.compile_latest(), 0, "nothing is compiled twice");
}

/// A stored model that no longer compiles (a later Baton refusing what an
/// earlier one accepted) no longer stops the server from starting: the
/// commands that need it fail, naming it, and everything else runs.
#[test]
fn a_stored_model_that_no_longer_compiles_fails_only_what_needs_it() {
    let store = MemoryStore::new();
    let mut first = core_on(&store);
    let mut txn = store.write().unwrap();
    first.deploy(txn.as_mut(), store::DEFAULT_TENANT, &[("m.bpmn".into(), MODEL.into())], T0).unwrap();
    let broken = MODEL.replace(r#"id="work""#, r#"id="broken""#).replace(r#"targetRef="end""#, r#"targetRef="nowhere""#);
    txn.apply(store::Write::PutWorkflow(store::WorkflowRow {
        process_id: "broken".into(),
        tenant: store::DEFAULT_TENANT.into(),
        version: 1,
        deployment: 2,
        name: None,
        version_tag: None,
        xml: broken,
        deployed_at: T0,
    }))
    .unwrap();
    txn.commit().unwrap();
    drop(first);
    let mut restarted = core_on(&store);
    let Err(Error::Fault(fault)) = start_on(&mut restarted, &store, "broken") else { panic!("a start of the broken model is refused") };
    assert!(fault.message.contains("the deployed workflow broken no longer compiles"), "{}", fault.message);
    assert!(fault.message.contains("nowhere"), "the reason is given: {}", fault.message);
    start_on(&mut restarted, &store, "work").unwrap();
    assert!(restarted.registry().get(store::DEFAULT_TENANT, "broken", 1).is_none());
}

/// The same for a DMN decision: read at start, compiled when first evaluated.
#[test]
fn a_stored_decision_that_no_longer_compiles_fails_only_its_evaluations() {
    const DISH: &str = include_str!("../../../tests/scenarios/decisions.dmn");
    let store = MemoryStore::new();
    let mut first = core_on(&store);
    let mut txn = store.write().unwrap();
    first.deploy(txn.as_mut(), store::DEFAULT_TENANT, &[("dish.dmn".into(), DISH.into())], T0).unwrap();
    txn.apply(store::Write::PutDecision(store::DecisionRow {
        tenant: store::DEFAULT_TENANT.into(),
        decision_id: "broken".into(),
        version: 1,
        deployment: 2,
        name: "Broken".into(),
        definitions_id: "b".into(),
        resource: "broken.dmn".into(),
        xml: DISH.replace(r#"id="dish""#, r#"id="broken""#).replace("<decisionTable", "<decisionTabel"),
        deployed_at: T0,
    }))
    .unwrap();
    txn.commit().unwrap();
    drop(first);
    let restarted = core_on(&store);
    let variables: engine::Variables = serde_json::json!({"season": "Spring", "guestCount": 6}).as_object().cloned().unwrap();
    let Err(Error::DecisionFailed(why)) = restarted.evaluate_decision(store::DEFAULT_TENANT, "broken", None, &variables, T0) else {
        panic!("the broken decision is refused")
    };
    assert!(why.contains("the deployed decision broken v1 no longer compiles"), "{why}");
    let dish = restarted.evaluate_decision(store::DEFAULT_TENANT, "dish", None, &variables, T0).unwrap();
    assert_eq!(dish.value, "Steak");
}

/// A memory store that counts its read transactions.
struct CountedReads {
    inner: MemoryStore,
    reads: std::sync::atomic::AtomicUsize,
}

impl Store for CountedReads {
    fn read(&self) -> store::Result<Box<dyn store::ReadTxn + '_>> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.read()
    }

    fn write(&self) -> store::Result<Box<dyn store::WriteTxn + '_>> {
        self.inner.write()
    }
}

/// Issue 16: the commit loop learns when the next timer is due from the
/// transaction it just committed, not from a read transaction of its own
/// before every wait (a reader whose page cache each commit had reset);
/// the timers its turns scheduled still fire when due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_reads_the_next_due_timer_in_the_turn_it_commits() {
    let counted = Arc::new(CountedReads { inner: MemoryStore::new(), reads: Default::default() });
    let clock = Arc::new(ManualClock::new(T0));
    let service = service(counted.clone(), clock.clone());
    deploy(&service).await;
    let before = counted.reads.load(std::sync::atomic::Ordering::Relaxed);
    let mut naps = Vec::new();
    for _ in 0..20 {
        naps.push(start(&service, "nap", None).await);
    }
    let reads = counted.reads.load(std::sync::atomic::Ordering::Relaxed) - before;
    // A turn that commits leaves no read behind it; an idle second's tick may.
    assert!(reads < 5, "{reads} read transactions for 20 turns that each committed");
    clock.advance(2 * 3_600_000);
    service.handle.call(Command::Tick).await.unwrap();
    let mut read = counted.inner.read().unwrap();
    for nap in &naps {
        assert_eq!(read.instance(nap).unwrap().unwrap().status, engine::Status::Completed, "{nap}");
    }
    assert_eq!(read.next_due().unwrap(), None);
}

/// A store whose writes wait while its gate is shut.
struct Gated {
    inner: MemoryStore,
    shut: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Told each time a writer finds the gate shut.
    held: tokio::sync::Notify,
}

impl Store for Gated {
    fn read(&self) -> store::Result<Box<dyn store::ReadTxn + '_>> {
        self.inner.read()
    }

    fn write(&self) -> store::Result<Box<dyn store::WriteTxn + '_>> {
        let mut shut = self.shut.lock().unwrap();
        if *shut {
            self.held.notify_one();
        }
        while *shut {
            shut = self.opened.wait(shut).unwrap();
        }
        drop(shut);
        self.inner.write()
    }
}

/// Issue 17, item 4: while the commit loop cannot write, commands queue up
/// to the queue's capacity and every one past it is refused at once as
/// `overloaded` (503 with Retry-After over HTTP), counted; those queued are
/// answered once the store writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_past_a_full_queue_are_refused_as_overloaded_and_counted() {
    let gated = Arc::new(Gated { inner: MemoryStore::new(), shut: std::sync::Mutex::new(false), opened: std::sync::Condvar::new(), held: tokio::sync::Notify::new() });
    let clock = Arc::new(ManualClock::new(T0));
    let options = Options { queue_capacity: 2, ..Options::default() };
    let store: Arc<dyn Store> = gated.clone();
    let service = tokio::task::spawn_blocking(move || Service::start(store, clock, Box::new(SequentialIds::default()), options)).await.unwrap().unwrap();
    deploy(&service).await;
    // The loop's next transaction (it begins one at least every second) waits at the shut gate.
    *gated.shut.lock().unwrap() = true;
    gated.held.notified().await;
    let starts: Vec<_> = (0..10)
        .map(|_| {
            let handle = service.handle.clone();
            tokio::spawn(async move { handle.call(Command::Start(StartCommand { process_id: "work".into(), ..StartCommand::default() })).await })
        })
        .collect();
    while service.handle.metrics.overloaded() < 8 {
        tokio::task::yield_now().await;
    }
    *gated.shut.lock().unwrap() = false;
    gated.opened.notify_all();
    let mut refused = Vec::new();
    let mut started = 0;
    for start in starts {
        match start.await.unwrap() {
            Ok(Reply::Started(_)) => started += 1,
            Err(error) => refused.push((error.code().to_string(), error.to_string())),
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((started, refused.len()), (2, 8), "two queued, the rest refused: {refused:?}");
    assert!(refused.iter().all(|(code, message)| code == "overloaded" && message.contains("2 commands waiting")), "{refused:?}");
    assert_eq!(service.handle.metrics.overloaded(), 8);
    let text = service.handle.metrics.render(&[]);
    assert!(text.contains("baton_commands_refused_total{reason=\"queue_full\"} 8\n"), "{text}");
    service.stop();
}

/// A store whose commits are durable only once synced
/// ([`Store::defers_sync`]), with a sync that waits while its gate is shut
/// and can be made to fail.
struct DeferredSync {
    inner: MemoryStore,
    /// Shut, and whether a sync waits at it.
    gate: std::sync::Mutex<(bool, bool)>,
    changed: std::sync::Condvar,
    syncs: std::sync::atomic::AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

impl DeferredSync {
    fn new() -> DeferredSync {
        DeferredSync {
            inner: MemoryStore::new(),
            gate: std::sync::Mutex::new((false, false)),
            changed: std::sync::Condvar::new(),
            syncs: Default::default(),
            fail: Default::default(),
        }
    }

    fn shut(&self, shut: bool) {
        self.gate.lock().unwrap().0 = shut;
        self.changed.notify_all();
    }

    /// Returns once a sync waits at the shut gate.
    fn wait_for_sync(&self) {
        let mut gate = self.gate.lock().unwrap();
        while !gate.1 {
            gate = self.changed.wait(gate).unwrap();
        }
    }

    /// Whether `count` instances of `process_id` (or more) are committed.
    fn holds_instances(&self, process_id: &str, count: usize) -> bool {
        let mut read = self.inner.read().unwrap();
        let filter = store::InstanceFilter { process_id: Some(process_id.into()), ..Default::default() };
        read.instances(&filter, &store::PageRequest::first(10)).unwrap().items.len() >= count
    }
}

impl Store for DeferredSync {
    fn read(&self) -> store::Result<Box<dyn store::ReadTxn + '_>> {
        self.inner.read()
    }

    fn write(&self) -> store::Result<Box<dyn store::WriteTxn + '_>> {
        self.inner.write()
    }

    fn defers_sync(&self) -> bool {
        true
    }

    fn sync(&self) -> store::Result<()> {
        let mut gate = self.gate.lock().unwrap();
        while gate.0 {
            gate.1 = true;
            self.changed.notify_all();
            gate = self.changed.wait(gate).unwrap();
        }
        gate.1 = false;
        self.syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(store::Error::unavailable("the disk said no"));
        }
        Ok(())
    }
}

/// A service on a [`DeferredSync`] store, with the model deployed.
async fn deferred_service() -> (Arc<DeferredSync>, Service) {
    let deferred = Arc::new(DeferredSync::new());
    let store: Arc<dyn Store> = deferred.clone();
    let clock = Arc::new(ManualClock::new(T0));
    let service = tokio::task::spawn_blocking(move || Service::start(store, clock, Box::new(SequentialIds::default()), Options::default())).await.unwrap().unwrap();
    deploy(&service).await;
    (deferred, service)
}

fn start_work(service: &Service) -> tokio::task::JoinHandle<Result<Reply, Error>> {
    let handle = service.handle.clone();
    tokio::spawn(async move { handle.call(Command::Start(StartCommand { process_id: "work".into(), ..StartCommand::default() })).await })
}

/// Issue 16: where the store leaves syncing to its caller, a commit is
/// answered only once a sync begun after it has returned, and the commit
/// loop does not wait for it: the next batch commits while the sync of the
/// one before is still under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_waits_for_its_commit_to_be_synced_and_the_loop_does_not() {
    let (deferred, service) = deferred_service().await;
    assert!(deferred.syncs.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the deployment was synced before it was answered");
    deferred.shut(true);
    let first = start_work(&service);
    let waiting = deferred.clone();
    tokio::task::spawn_blocking(move || waiting.wait_for_sync()).await.unwrap();
    assert!(deferred.holds_instances("work", 1), "committed");
    // Its sync is held, and so is its answer; the loop goes on meanwhile.
    let second = start_work(&service);
    while !deferred.holds_instances("work", 2) {
        tokio::task::yield_now().await;
    }
    assert!(!first.is_finished() && !second.is_finished(), "no answer before the sync");
    let synced = deferred.syncs.load(std::sync::atomic::Ordering::SeqCst);
    deferred.shut(false);
    assert!(matches!(first.await.unwrap(), Ok(Reply::Started(_))));
    assert!(matches!(second.await.unwrap(), Ok(Reply::Started(_))));
    assert!(deferred.syncs.load(std::sync::atomic::Ordering::SeqCst) > synced);
    assert!(service.handle.metrics.render(&[]).contains("baton_sync_seconds_count"));
    service.stop();
}

/// A sync that fails answers its commits with the error (they may not be on
/// disk), and the server takes no more writes and is not ready until it is
/// restarted: a later sync could succeed without writing what this one did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_answers_an_error_and_stops_the_writes() {
    let (deferred, service) = deferred_service().await;
    deferred.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = start_work(&service).await.unwrap().expect_err("the sync failed");
    assert!(refused.to_string().contains("the disk said no"), "{refused}");
    let damage = service.handle.damage().expect("noted");
    assert!(damage.contains("may not be on disk"), "{damage}");
    deferred.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let later = start_work(&service).await.unwrap().expect_err("no writes after a failed sync");
    assert!(later.to_string().contains("restarted"), "{later}");
    service.stop();
}

/// Issue 16: a suspended instance's timers and jobs are held in the SQLite
/// store, out of the indexes the polls read (`timers_due`, `jobs_free`), so
/// that suspending many instances costs the commit loop nothing; resumed,
/// they are due and free again, and a timer that fell due meanwhile fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_instances_timers_and_jobs_are_held_until_it_resumes() {
    let (_dir, path) = temp_db();
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(store_sqlite::SqliteStore::open(&path).unwrap());
    let service = service(store.clone(), clock.clone());
    deploy(&service).await;
    let napping = start(&service, "nap", None).await;
    let working = start(&service, "work", None).await;
    let held = || -> Vec<(String, i64)> {
        let raw = rusqlite::Connection::open(&path).unwrap();
        let mut select = raw.prepare("SELECT instance_id, held FROM timers UNION ALL SELECT instance_id, held FROM jobs ORDER BY 1").unwrap();
        select.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    let mut expected = vec![(napping.clone(), 0), (working.clone(), 0)];
    expected.sort();
    assert_eq!(held(), expected);
    let input = |id: &str, input: engine::Input| Command::Instance { instance_id: id.to_string(), input };
    for id in [&napping, &working] {
        service.handle.call(input(id, engine::Input::Suspend)).await.unwrap();
    }
    assert!(held().iter().all(|(_, held)| *held == 1), "{:?}", held());
    assert_eq!(store.read().unwrap().next_due().unwrap(), None, "no timer is due while its instance is suspended");
    assert!(store.read().unwrap().activatable_jobs("do", &None, T0, 10).unwrap().is_empty());
    clock.advance(2 * 3_600_000);
    service.handle.call(Command::Tick).await.unwrap();
    assert_eq!(store.read().unwrap().instance(&napping).unwrap().unwrap().status, engine::Status::Suspended);
    for id in [&napping, &working] {
        service.handle.call(input(id, engine::Input::Resume)).await.unwrap();
    }
    assert_eq!(store.read().unwrap().instance(&napping).unwrap().unwrap().status, engine::Status::Completed, "its timer fell due meanwhile");
    assert_eq!(held(), [(working.clone(), 0)], "the job is free again");
    assert_eq!(store.read().unwrap().activatable_jobs("do", &None, T0 + 2 * 3_600_000, 10).unwrap().len(), 1);
    service.stop();
}
