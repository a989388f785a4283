//! Deterministic simulation of the runtime: a seed chooses a schedule of
//! starts, job activations and completions (some delivered twice, some after
//! their lease ran out), message publications, clock advances and crashes (a
//! transaction applied and abandoned before commit, then the core reloaded
//! from the store), each on one of three cores (nodes) over one store, each
//! with its own cache: a core's copy of an instance goes stale when another
//! core writes it, and its next write there is a conflict, which it meets as
//! the commit loop does (read again, run again). After every step the
//! invariants hold; at the end every instance can finish. A failure prints
//! its seed: `SEED=n cargo test -p runtime simulation` replays it.

use std::collections::BTreeSet;

use runtime::{Core, Error, IdSource, PublishCommand, StartCommand};
use store::{HistoryRow, InstanceFilter, JobFilter, MemoryStore, PageRequest, Store};

const T0: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="sim">
  <message id="m" name="go"><extensionElements><zeebe:subscription correlationKey="=key"/></extensionElements></message>
  <process id="sim" isExecutable="true">
    <startEvent id="start"/>
    <serviceTask id="a"><extensionElements><zeebe:taskDefinition type="sim"/></extensionElements></serviceTask>
    <exclusiveGateway id="choose" default="to_wait"/>
    <serviceTask id="b"><extensionElements><zeebe:taskDefinition type="sim"/></extensionElements></serviceTask>
    <intermediateCatchEvent id="wait"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <exclusiveGateway id="merge"/>
    <parallelGateway id="fork"/>
    <serviceTask id="c"><extensionElements><zeebe:taskDefinition type="sim"/></extensionElements></serviceTask>
    <intermediateCatchEvent id="nap"><timerEventDefinition><timeDuration>PT10M</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <parallelGateway id="join"/>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="a"/>
    <sequenceFlow id="f2" sourceRef="a" targetRef="choose"/>
    <sequenceFlow id="to_b" sourceRef="choose" targetRef="b"><conditionExpression>=fast</conditionExpression></sequenceFlow>
    <sequenceFlow id="to_wait" sourceRef="choose" targetRef="wait"/>
    <sequenceFlow id="f3" sourceRef="b" targetRef="merge"/>
    <sequenceFlow id="f4" sourceRef="wait" targetRef="merge"/>
    <sequenceFlow id="f5" sourceRef="merge" targetRef="fork"/>
    <sequenceFlow id="f6" sourceRef="fork" targetRef="c"/>
    <sequenceFlow id="f7" sourceRef="fork" targetRef="nap"/>
    <sequenceFlow id="f8" sourceRef="c" targetRef="join"/>
    <sequenceFlow id="f9" sourceRef="nap" targetRef="join"/>
    <sequenceFlow id="f10" sourceRef="join" targetRef="end"/>
  </process>
</definitions>"#;

/// SplitMix64: enough randomness for schedules, and the same for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How many cores (nodes) share the store.
const CORES: usize = 3;

/// Instance ids and leases of one core: `n<core>i<k>`, so cores never give the same.
struct NodeIds {
    node: usize,
    next: u64,
}

impl IdSource for NodeIds {
    fn next_instance_id(&mut self) -> String {
        self.next += 1;
        format!("n{}i{}", self.node, self.next)
    }

    fn next_lease(&mut self) -> String {
        self.next += 1;
        format!("n{}lease{}", self.node, self.next)
    }
}

struct Sim {
    store: MemoryStore,
    cores: Vec<Core>,
    now: i64,
    rng: Rng,
    /// Jobs a worker holds: (key, worker).
    /// Jobs a worker took: key, worker, lease.
    held: Vec<(String, String, String)>,
    /// Jobs whose completion was accepted.
    completed: BTreeSet<String>,
    started: usize,
    crashes: usize,
    /// Writes refused because another core had written the instance since.
    conflicts: usize,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let store = MemoryStore::new();
        let load = |node: usize| {
            let mut read = store.read().unwrap();
            let mut core = Core::load(read.as_mut(), Box::new(NodeIds { node, next: 0 })).unwrap();
            core.shared_store = true;
            core
        };
        {
            let mut first = load(0);
            let mut txn = store.write().unwrap();
            first.deploy(
                txn.as_mut(),
                store::DEFAULT_TENANT,
                &[("sim.bpmn".into(), MODEL.into())],
                T0,
            )
            .unwrap();
            txn.commit().unwrap();
        }
        let cores = (0..CORES).map(load).collect();
        Sim {
            store,
            cores,
            now: T0,
            rng: Rng(seed),
            held: Vec::new(),
            completed: BTreeSet::new(),
            started: 0,
            crashes: 0,
            conflicts: 0,
        }
    }

    /// Runs one operation on a core the seed picks, in a transaction that
    /// commits when it succeeds. A conflict (the core's copy of an instance
    /// was stale) rolls back; the core reads the store again and runs it again.
    fn commit<T>(
        &mut self,
        operation: impl Fn(&mut Core, &mut dyn store::WriteTxn, i64) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let at = self.rng.below(CORES as u64) as usize;
        loop {
            let mut txn = self.store.write().unwrap();
            let result = operation(&mut self.cores[at], txn.as_mut(), self.now);
            match result {
                Ok(value) => {
                    txn.commit().unwrap();
                    return Ok(value);
                }
                Err(Error::Store(error)) if error.is_conflict() => {
                    drop(txn);
                    self.conflicts += 1;
                    let mut read = self.store.read().unwrap();
                    self.cores[at].reload(read.as_mut()).unwrap();
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn start(&mut self) {
        let key = format!("k{}", self.started % 4);
        let fast = self.rng.below(2) == 0;
        let variables = serde_json::json!({"key": key, "fast": fast})
            .as_object()
            .cloned()
            .unwrap();
        self.commit(|core, tx, now| {
            core.start(
                tx,
                StartCommand {
                    process_id: "sim".into(),
                    variables: variables.clone(),
                    ..StartCommand::default()
                },
                now,
            )
        })
        .unwrap();
        self.started += 1;
    }

    fn activate(&mut self) {
        let worker = format!("w{}", self.rng.below(3));
        let lease = (1 + self.rng.below(5) as i64) * MINUTE;
        let max = 1 + self.rng.below(4) as usize;
        let jobs = self
            .commit(|core, tx, now| core.activate_jobs(tx, "sim", &worker, max, lease, now))
            .unwrap();
        // A job handed out again (its lease ran out) now belongs to the new worker.
        for job in jobs {
            self.held.retain(|(key, ..)| key != &job.job.key);
            self.held.push((
                job.job.key.clone(),
                worker.clone(),
                job.job.lease.clone().unwrap_or_default(),
            ));
        }
    }

    fn complete(&mut self, again: bool) {
        if self.held.is_empty() {
            return;
        }
        let index = self.rng.below(self.held.len() as u64) as usize;
        let (key, worker, lease) = if again {
            self.held[index].clone()
        } else {
            self.held.remove(index)
        };
        let result = self.commit(|core, tx, now| {
            let job = core.job_for(tx, &key, &runtime::Claim::lease(&worker, &lease), now)?;
            core.input(
                tx,
                &job.instance_id,
                engine::Input::CompleteJob {
                    job: job.local_key,
                    variables: Default::default(),
                    result: None,
                },
                now,
            )
        });
        if result.is_ok() {
            assert!(
                self.completed.insert(key.clone()),
                "job {key} was completed twice"
            );
        }
    }

    fn publish(&mut self) {
        let command = PublishCommand {
            name: "go".into(),
            correlation_key: format!("k{}", self.rng.below(4)),
            ttl_ms: self.rng.below(3) as i64 * 5 * MINUTE,
            ..PublishCommand::default()
        };
        self.commit(|core, tx, now| core.publish(tx, command.clone(), now))
            .unwrap();
    }

    fn advance(&mut self) {
        self.now += (1 + self.rng.below(15) as i64) * MINUTE;
        self.commit(|core, tx, now| core.fire_due(tx, now, usize::MAX))
            .unwrap();
    }

    /// A crash in the middle of a transaction: it never commits, and the core
    /// comes back from what the store holds. (The id source keeps counting, as
    /// UUIDs would never repeat after a real restart.)
    fn crash(&mut self) {
        let at = self.rng.below(CORES as u64) as usize;
        let core = &mut self.cores[at];
        {
            let mut txn = self.store.write().unwrap();
            let now = self.now + 30 * MINUTE;
            let _ = core.fire_due(txn.as_mut(), now, usize::MAX);
            let _ = core.start(
                txn.as_mut(),
                StartCommand {
                    process_id: "sim".into(),
                    ..StartCommand::default()
                },
                now,
            );
        }
        let mut read = self.store.read().unwrap();
        core.reload(read.as_mut()).unwrap();
        self.crashes += 1;
    }

    fn instances(&self) -> Vec<store::InstanceRow> {
        let mut read = self.store.read().unwrap();
        read.instances(
            &InstanceFilter::default(),
            &PageRequest::first(PageRequest::MAX_LIMIT),
        )
        .unwrap()
        .items
    }

    fn history(&self, id: &str) -> Vec<HistoryRow> {
        let mut read = self.store.read().unwrap();
        read.history(
            id,
            &store::HistoryFilter::default(),
            &PageRequest::first(PageRequest::MAX_LIMIT),
        )
        .unwrap()
        .items
    }

    /// What must hold after every step; returns the instances it read.
    fn check(&self) -> Vec<store::InstanceRow> {
        let instances = self.instances();
        let jobs = {
            let mut read = self.store.read().unwrap();
            read.jobs(
                &JobFilter::default(),
                &PageRequest::first(PageRequest::MAX_LIMIT),
            )
            .unwrap()
            .items
        };
        for instance in &instances {
            let state = &instance.state;
            if state.status == engine::Status::Running {
                assert!(
                    !state.jobs.is_empty()
                        || !state.timers.is_empty()
                        || !state.subscriptions.is_empty()
                        || !state.incidents.is_empty(),
                    "instance {} runs but waits for nothing",
                    instance.id
                );
            } else {
                assert!(
                    state.element_instances.is_empty(),
                    "ended instance {} holds tokens",
                    instance.id
                );
            }
            // The job rows are exactly the instance's jobs.
            let mut from_rows: Vec<u64> = jobs
                .iter()
                .filter(|j| j.instance_id == instance.id)
                .map(|j| j.local_key)
                .collect();
            from_rows.sort();
            assert_eq!(
                from_rows,
                state.jobs.keys().copied().collect::<Vec<_>>(),
                "job rows of {} differ from its state",
                instance.id
            );
        }
        assert!(
            jobs.iter()
                .all(|j| instances.iter().any(|i| i.id == j.instance_id)),
            "a job row has no instance"
        );
        instances
    }

    /// What the history must show at the end. History is only appended to,
    /// so an entry that breaks this once breaks it at the end as well; read
    /// once, not after every step, since reading it is most of a seed's cost.
    fn check_history(&self) {
        for instance in self.instances() {
            // No timer fired early: `nap` completes at least ten minutes after it started.
            for entry in self.history(&instance.id).iter().map(|h| &h.entry) {
                if entry.element_id == "nap" && entry.event == engine::HistoryEvent::Completed {
                    assert!(
                        entry.at - entry.started_at >= 10 * MINUTE,
                        "the timer of {} fired early",
                        instance.id
                    );
                }
            }
        }
    }

    /// Finishes everything: all instances must be able to complete.
    fn drain(&mut self) {
        for _ in 0..200 {
            self.now += 20 * MINUTE;
            for key in 0..4 {
                let command = PublishCommand {
                    name: "go".into(),
                    correlation_key: format!("k{key}"),
                    ..PublishCommand::default()
                };
                self.commit(|core, tx, now| core.publish(tx, command.clone(), now))
                    .unwrap();
            }
            self.commit(|core, tx, now| core.fire_due(tx, now, usize::MAX))
                .unwrap();
            let jobs = self
                .commit(|core, tx, now| core.activate_jobs(tx, "sim", "drain", 1000, MINUTE, now))
                .unwrap();
            for job in jobs {
                let key = job.job.key.clone();
                self.commit(|core, tx, now| {
                    core.input(
                        tx,
                        &job.job.instance_id,
                        engine::Input::CompleteJob {
                            job: job.job.local_key,
                            variables: Default::default(),
                            result: None,
                        },
                        now,
                    )
                })
                .unwrap();
                assert!(
                    self.completed.insert(key.clone()),
                    "job {key} was completed twice"
                );
            }
            if self
                .check()
                .iter()
                .all(|i| i.status == engine::Status::Completed)
            {
                return;
            }
        }
        let stuck: Vec<String> = self
            .instances()
            .iter()
            .filter(|i| i.status != engine::Status::Completed)
            .map(|i| i.id.clone())
            .collect();
        panic!("instances that never finished: {stuck:?}");
    }
}

/// Runs one seed; returns how many crashes and instances it had, and how
/// often a core's copy of an instance was stale (read again, or a conflict).
fn simulate(seed: u64) -> (usize, usize, usize) {
    let mut sim = Sim::new(seed);
    for _ in 0..150 {
        match sim.rng.below(20) {
            0..=3 if sim.started < 30 => sim.start(),
            0..=3 => sim.activate(),
            4..=7 => sim.activate(),
            8..=11 => sim.complete(false),
            12 => sim.complete(true),
            13..=14 => sim.publish(),
            15..=17 => sim.advance(),
            _ => sim.crash(),
        }
        sim.check();
    }
    sim.drain();
    sim.check_history();
    let stale: u64 = sim.cores.iter().map(Core::stale_copies).sum();
    (sim.crashes, sim.started, sim.conflicts + stale as usize)
}

#[test]
fn seeded_schedules_with_crashes_keep_every_invariant() {
    // SEED replays one schedule; BATON_SIM_SEEDS runs that many (scripts/test: 10 000, in release),
    // from BATON_SIM_FIRST on (0 unless given), so a long run can be split across machines.
    let first: u64 = std::env::var("BATON_SIM_FIRST").map_or(0, |n| n.parse().expect("BATON_SIM_FIRST is a number"));
    let seeds: Vec<u64> = match (std::env::var("SEED"), std::env::var("BATON_SIM_SEEDS")) {
        (Ok(seed), _) => vec![seed.parse().expect("SEED is a number")],
        (_, Ok(count)) => (first..first + count.parse::<u64>().expect("BATON_SIM_SEEDS is a number")).collect(),
        _ => (first..first + 40).collect(),
    };
    // The seeds shared among the machine's cores: each seed is a world of its own.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(seeds.len()).max(1);
    let outcomes: Vec<Result<(usize, usize, usize), (u64, String)>> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..threads)
            .map(|thread| {
                let seeds = &seeds;
                scope.spawn(move || {
                    let mut totals = (0, 0, 0);
                    for &seed in seeds.iter().skip(thread).step_by(threads) {
                        match std::panic::catch_unwind(|| simulate(seed)) {
                            Ok((c, i, k)) => totals = (totals.0 + c, totals.1 + i, totals.2 + k),
                            Err(panic) => {
                                let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                                return Err((seed, message.unwrap_or_default()));
                            }
                        }
                    }
                    Ok(totals)
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().expect("a simulation thread")).collect()
    });
    let (mut crashes, mut instances, mut stale) = (0, 0, 0);
    for outcome in outcomes {
        match outcome {
            Ok((c, i, k)) => {
                crashes += c;
                instances += i;
                stale += k;
            }
            Err((seed, message)) => panic!("simulation failed with seed {seed} (replay: SEED={seed} cargo test -p runtime simulation): {message}"),
        }
    }
    assert!(
        crashes > 0 && instances > 0 && stale > 0,
        "the schedules must crash, start instances and meet stale copies ({crashes} crashes, {instances} instances, {stale} stale copies)"
    );
}
