//! `baton bench`: end-to-end throughput and latency of the durable runtime.
//!
//! Workloads: W1 start -> one service task -> end; W2 ten service tasks in a
//! row; W3 a parallel gateway to ten service tasks and a join; W4 an exclusive
//! gateway on `amount > 100` (amount = i % 200) to one of two service tasks.
//!
//! `embedded` runs the runtime in this process and the workers through its
//! library handle; `http` serves the real API on a loopback port and runs the
//! workers (activate in batches of up to 200, complete each job with its own
//! call, concurrently, or with `--batched-reports` all of a batch in one
//! request) and the starters over HTTP, in this same process, or
//! with `--separate` in a process of their own (this binary again, as
//! `bench --drive-server URL`), so that this process's CPU is the server's
//! alone. Every completed instance is checked: completed, and every task it
//! should have run (and no other) reported done.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::{Command, Handle, Options, Reply, Service, StartCommand, SystemClock, UuidIds};
use serde_json::{json, Value};
use store::{InstanceFilter, PageRequest, Store};

use crate::client::Failure;
use hyper::body::Bytes;
use wire::Wire;

mod wire;

/// The job type every benchmark task uses.
const JOB_TYPE: &str = "bench-work";
/// Jobs a worker asks for at once.
const BATCH: usize = 200;
/// Workers polling at once.
const WORKERS: usize = 4;
/// Starts in flight at once when no rate is given.
const STARTERS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    W1,
    W2,
    W3,
    W4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchStore {
    Memory,
    Sqlite,
    /// The database `--postgres` names, in a new schema of its own.
    Postgres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Embedded,
    Http,
    /// Starters and workers through Camunda's API (`/v2`), as Camunda's clients call it.
    CamundaRest,
}

pub struct BenchOptions {
    pub workload: Workload,
    pub store: BenchStore,
    pub mode: Mode,
    pub instances: usize,
    pub rate: Option<f64>,
    /// A closed loop: this many instances in flight, a start for each that ends.
    pub in_flight: Option<usize>,
    /// Instances run first and not measured.
    pub warmup: usize,
    /// With `--store postgres`: the database to measure in.
    pub postgres: Option<String>,
    /// Nodes on the one database (more than one only on PostgreSQL).
    pub nodes: usize,
    /// Starters and workers in a process of their own, not in the server's.
    pub separate: bool,
    /// With SQLite: the folder the database is made in and left in.
    pub keep: Option<std::path::PathBuf>,
    /// With `--mode http`: each batch of jobs a worker took is completed in
    /// one request (`POST /v1/jobs/report`), as `baton worker` does, not one
    /// request per job.
    pub batched_reports: bool,
    /// Read what the run left in the database, table by table ([`Kept`]).
    pub report: bool,
}

fn task(id: &str) -> String {
    format!(
        r#"<serviceTask id="{id}"><extensionElements><zeebe:taskDefinition type="{JOB_TYPE}"/></extensionElements></serviceTask>"#
    )
}

fn flow(id: &str, from: &str, to: &str) -> String {
    format!(r#"<sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"/>"#)
}

/// The model of a workload and the tasks each instance `i` must run.
fn workload(kind: Workload) -> (String, fn(usize) -> Vec<String>) {
    let body = match kind {
        Workload::W1 => format!(
            r#"<startEvent id="s"/>{}<endEvent id="e"/>{}{}"#,
            task("t1"),
            flow("f1", "s", "t1"),
            flow("f2", "t1", "e")
        ),
        Workload::W2 => {
            let tasks: String = (1..=10).map(|n| task(&format!("t{n}"))).collect();
            let mut flows = flow("f0", "s", "t1");
            for n in 1..10 {
                flows.push_str(&flow(
                    &format!("f{n}"),
                    &format!("t{n}"),
                    &format!("t{}", n + 1),
                ));
            }
            flows.push_str(&flow("f10", "t10", "e"));
            format!(r#"<startEvent id="s"/>{tasks}<endEvent id="e"/>{flows}"#)
        }
        Workload::W3 => {
            let tasks: String = (1..=10).map(|n| task(&format!("t{n}"))).collect();
            let mut flows = flow("f0", "s", "fork") + &flow("f99", "join", "e");
            for n in 1..=10 {
                flows.push_str(&flow(&format!("a{n}"), "fork", &format!("t{n}")));
                flows.push_str(&flow(&format!("b{n}"), &format!("t{n}"), "join"));
            }
            format!(
                r#"<startEvent id="s"/><parallelGateway id="fork"/>{tasks}<parallelGateway id="join"/><endEvent id="e"/>{flows}"#
            )
        }
        Workload::W4 => format!(
            r#"<startEvent id="s"/><exclusiveGateway id="gw" default="to_small"/>{}{}<endEvent id="e1"/><endEvent id="e2"/>{}
            <sequenceFlow id="to_large" sourceRef="gw" targetRef="large"><conditionExpression>=amount &gt; 100</conditionExpression></sequenceFlow>
            {}{}{}"#,
            task("large"),
            task("small"),
            flow("f1", "s", "gw"),
            flow("to_small", "gw", "small"),
            flow("f3", "large", "e1"),
            flow("f4", "small", "e2"),
        ),
    };
    let expected: fn(usize) -> Vec<String> = match kind {
        Workload::W1 => |_| vec!["t1".into()],
        Workload::W2 | Workload::W3 => |_| (1..=10).map(|n| format!("t{n}")).collect(),
        Workload::W4 => |i| {
            vec![if i % 200 > 100 {
                "large".into()
            } else {
                "small".into()
            }]
        },
    };
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="bench"><process id="bench" isExecutable="true">{body}</process></definitions>"#
    );
    (xml, expected)
}

/// The figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub workload: String,
    pub store: String,
    pub mode: String,
    pub nodes: usize,
    pub instances: usize,
    pub offered_rate: Option<f64>,
    /// In a closed loop: the instances kept in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<usize>,
    /// Instances run before the measured ones, not measured.
    pub warmup: usize,
    pub seconds: f64,
    pub instances_per_s: f64,
    pub jobs_per_s: f64,
    /// CPU of this process: the server's, and the clients' too unless they run apart.
    pub cpu_s_per_1000: f64,
    /// With the clients in a process of their own: the server's CPU alone (this process's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s_per_1000: Option<f64>,
    /// With the clients in a process of their own: theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients_cpu_s_per_1000: Option<f64>,
    /// CPU the whole machine spent while the run was measured (every
    /// process, not only Baton's: a busy machine shows here).
    pub machine_cpu_s_per_1000: f64,
    /// The machine's load average (1, 5 and 15 minutes) when the run began.
    pub load_average: [f64; 3],
    /// Whether the starters and workers ran in a process of their own.
    pub separate: bool,
    /// Whether the workers completed each batch of jobs in one request.
    pub batched_reports: bool,
    /// CPU time of the commit loops' threads per job (each job is a start's
    /// share, its activation and its completion): the serial work that caps a node.
    pub commit_thread_us_per_job: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub peak_memory_mb: f64,
    /// With SQLite: the database's files (log included) at the end, per
    /// instance the run kept (the warm-up's too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_bytes_per_instance: Option<f64>,
    pub commits: u64,
    pub mean_batch: f64,
    /// Batches run again because another node wrote what they read (with several nodes).
    pub conflicts_retried: u64,
    /// Requests the server answered 503 or 429 (busy: nothing done) and the clients sent again.
    pub busy_retried: u64,
    pub verified: usize,
    /// What the run cost the database, per instance (not with the memory store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseCost>,
    /// With `--report`: what the run left, by table and index, the largest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<Vec<Kept>>,
}

/// What one table or index holds after a run, per instance the run started
/// (warm-up included): where each instance's disk goes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Kept {
    pub name: String,
    /// The table an index belongs to (its own name for a table).
    pub table: String,
    /// Rows of a table, entries of an index.
    pub rows_per_instance: f64,
    pub bytes_per_instance: f64,
}

/// What one instance cost the database, on average over a run: figures that
/// do not depend on the machine.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseCost {
    /// Statements that write transactions ran, reads among them.
    pub statements: f64,
    /// Times the store waited for the server (writes go together with the next
    /// read or the commit); 0 for SQLite, in this process.
    pub round_trips: f64,
    /// Rows the statements inserted, updated or deleted (triggers' not counted).
    pub rows_written: f64,
    /// Bytes of write-ahead log the server wrote (every byte it must make durable).
    pub wal_bytes: f64,
    pub commits: f64,
}

/// CPU seconds this process used so far (all threads), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the whole machine has spent (every core, every process:
/// user, nice, system, interrupts and steal, not idle or waiting), from /proc/stat.
fn machine_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|fields| fields.split_whitespace().filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| ticks.get(i)).sum::<f64>() / 100.0
}

/// The load average over 1, 5 and 15 minutes, from /proc/loadavg.
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0.0));
    [(); 3].map(|_| fields.next().unwrap_or(0.0))
}

/// The bytes of the files in a folder.
fn folder_bytes(folder: &std::path::Path) -> u64 {
    let files = std::fs::read_dir(folder).into_iter().flatten().flatten();
    files.filter_map(|file| file.metadata().ok()).map(|m| m.len()).sum()
}

/// Peak resident memory (VmHWM) in MiB.
fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A successful answer to `POST path`, read as the bench needs it (the
/// fields it does not read are skipped, not built into a JSON tree).
fn read<T: serde::de::DeserializeOwned>(path: &str, answer: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(answer)
        .map_err(|e| Failure(format!("the answer to POST {path} is not what the bench expects ({e}): {}", String::from_utf8_lossy(answer))))
}

/// What `POST /v1/instances` answers, as far as the bench reads it.
#[derive(serde::Deserialize)]
struct Started {
    id: String,
}

/// What `POST /v2/process-instances` answers, as far as the bench reads it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CamundaStarted {
    process_instance_key: String,
}

/// An activation's answer.
#[derive(serde::Deserialize)]
struct Activated<J> {
    jobs: Vec<J>,
}

/// A job `POST /v1/jobs/activate` answered.
#[derive(serde::Deserialize)]
struct Job {
    key: String,
    element_id: String,
    lease: String,
    instance_id: String,
}

/// A job `POST /v2/jobs/activation` answered.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CamundaJob {
    job_key: String,
    element_id: String,
    process_instance_key: String,
}

/// A completion's body: Baton's names the worker and its lease; Camunda's has neither.
#[derive(serde::Serialize)]
struct Completion<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<&'a str>,
    variables: Done<'a>,
}

/// The variable a bench task sets, `done_<element id>` true, so the check
/// can see which tasks ran ([`verify`] reads it back); it serializes as the
/// variables of a completion.
struct Done<'a>(&'a str);

/// How a [`Done`] variable's name begins.
const DONE: &str = "done_";

impl Done<'_> {
    /// The variables as the runtime takes them.
    fn variables(&self) -> serde_json::Map<String, Value> {
        [(self.to_string(), Value::Bool(true))].into_iter().collect()
    }
}

impl std::fmt::Display for Done<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{DONE}{}", self.0)
    }
}

impl serde::Serialize for Done<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&format_args!("{self}"), &true)?;
        map.end()
    }
}

/// A job a bench worker took.
struct Taken {
    key: String,
    element: String,
    lease: String,
    /// Its instance, as the start answered it (an id, or Camunda's key).
    instance: String,
}

/// What the closed loop waits on: how many jobs of each instance have
/// completed, and the starter waiting for an instance to end. An instance
/// ends with the completion of its last job, which runs its end event in
/// the same command.
#[derive(Default)]
struct Ends {
    instances: std::sync::Mutex<HashMap<String, Ending>>,
}

#[derive(Default)]
struct Ending {
    completed: usize,
    waiter: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Ends {
    /// A job of `instance` completed; `per_instance` jobs end it.
    fn completed(&self, instance: &str, per_instance: usize) {
        let Ok(mut instances) = self.instances.lock() else { return };
        let ending = instances.entry(instance.to_string()).or_default();
        ending.completed += 1;
        if ending.completed >= per_instance {
            if let Some(waiter) = ending.waiter.take() {
                let _ = waiter.send(());
                instances.remove(instance);
            }
        }
    }

    /// Waits until `instance` has ended (at once if it has).
    async fn ended(&self, instance: &str, per_instance: usize) {
        let (waiter, ended) = tokio::sync::oneshot::channel();
        {
            let Ok(mut instances) = self.instances.lock() else { return };
            let ending = instances.entry(instance.to_string()).or_default();
            if ending.completed >= per_instance {
                instances.remove(instance);
                return;
            }
            ending.waiter = Some(waiter);
        }
        let _ = ended.await;
    }
}

/// How the benchmark talks to Baton: the library handle or HTTP.
#[derive(Clone)]
struct Link {
    via: Via,
    /// Requests the server answered 503 or 429 (it did nothing and asked to
    /// be asked later), sent again; shared by this link's clones.
    retried: Arc<AtomicU64>,
}

#[derive(Clone)]
enum Via {
    Embedded(Handle),
    Http(Arc<Wire>),
    Camunda(Arc<Wire>),
}

impl Link {
    fn new(via: Via) -> Link {
        Link { via, retried: Arc::default() }
    }

    /// POSTs until the server takes the request: a 503 or 429 is sent again
    /// after a pause that doubles up to a second. (A long run must outlast a
    /// moment's overload; an error that may have left the request done is not
    /// retried: a start sent twice would start two instances.)
    async fn post(&self, wire: &Wire, path: &str, body: &impl serde::Serialize) -> Result<Bytes, Failure> {
        let body = Bytes::from(serde_json::to_vec(body).map_err(|e| Failure(format!("POST {path}: {e}")))?);
        let mut pause = Duration::from_millis(5);
        loop {
            let answer = wire.post(path, body.clone()).await?;
            if answer.status.is_success() {
                return Ok(answer.body);
            }
            if !matches!(answer.status.as_u16(), 503 | 429) {
                return Err(crate::client::problem(answer.status, &String::from_utf8_lossy(&answer.body)));
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Starts instance `i`; returns its id (Camunda's key through `/v2`).
    async fn start(&self, i: usize) -> Result<String, Failure> {
        let variables = json!({"amount": i % 200, "i": i});
        match &self.via {
            Via::Embedded(handle) => {
                let command = StartCommand {
                    process_id: "bench".into(),
                    variables: variables.as_object().cloned().unwrap_or_default(),
                    ..StartCommand::default()
                };
                match handle.call(Command::Start(command)).await.map_err(|e| Failure(e.to_string()))? {
                    Reply::Started(id) => Ok(id),
                    other => Err(Failure(format!("a start answered {other:?}"))),
                }
            }
            Via::Http(wire) => {
                let answer = self.post(wire, "/v1/instances", &json!({"workflow": "bench", "variables": variables})).await?;
                read::<Started>("/v1/instances", &answer).map(|started| started.id)
            }
            Via::Camunda(wire) => {
                let answer = self.post(wire, "/v2/process-instances", &json!({"processDefinitionId": "bench", "variables": variables})).await?;
                read::<CamundaStarted>("/v2/process-instances", &answer).map(|started| started.process_instance_key)
            }
        }
    }

    /// Takes jobs.
    async fn activate(&self, worker: &str) -> Result<Vec<Taken>, Failure> {
        match &self.via {
            Via::Embedded(handle) => {
                let jobs = handle
                    .activate(
                        JOB_TYPE.into(),
                        worker.into(),
                        BATCH,
                        60_000,
                        Duration::from_millis(200),
                        None,
                    )
                    .await
                    .map_err(|e| Failure(e.to_string()))?;
                Ok(jobs
                    .into_iter()
                    .map(|j| Taken { key: j.job.key, element: j.job.element_id, lease: j.job.lease.unwrap_or_default(), instance: j.job.instance_id })
                    .collect())
            }
            Via::Http(wire) => {
                let body = json!({"type": JOB_TYPE, "worker": worker, "max_jobs": BATCH, "lease_ms": 60000, "timeout_ms": 200});
                let answer = self.post(wire, "/v1/jobs/activate", &body).await?;
                let jobs = read::<Activated<Job>>("/v1/jobs/activate", &answer)?.jobs;
                Ok(jobs.into_iter().map(|j| Taken { key: j.key, element: j.element_id, lease: j.lease, instance: j.instance_id }).collect())
            }
            Via::Camunda(wire) => {
                let body = json!({"type": JOB_TYPE, "worker": worker, "maxJobsToActivate": BATCH, "timeout": 60000, "requestTimeout": 200});
                let answer = self.post(wire, "/v2/jobs/activation", &body).await?;
                let jobs = read::<Activated<CamundaJob>>("/v2/jobs/activation", &answer)?.jobs;
                // Camunda's clients hold no lease (no such field): the key is the proof.
                Ok(jobs.into_iter().map(|j| Taken { key: j.job_key, element: j.element_id, lease: String::new(), instance: j.process_instance_key }).collect())
            }
        }
    }

    /// Completes every job of `jobs` in one request (`POST /v1/jobs/report`,
    /// Baton's own API: `--batched-reports` takes `--mode http`), each
    /// reporting itself as [`Link::complete`] does.
    async fn complete_all(&self, worker: &str, jobs: &[Taken]) -> Result<(), Failure> {
        let Via::Http(wire) = &self.via else {
            return Err(Failure("a report of many jobs needs Baton's own API (--mode http)".into()));
        };
        let entries: Vec<Value> = jobs
            .iter()
            .map(|taken| json!({"key": taken.key, "lease": taken.lease, "complete": {"variables": Done(&taken.element)}}))
            .collect();
        let answer = self.post(wire, "/v1/jobs/report", &json!({"worker": worker, "jobs": entries})).await?;
        let answer: Value = read("/v1/jobs/report", &answer)?;
        let outcomes = answer["jobs"].as_array().map(Vec::as_slice).unwrap_or_default();
        if outcomes.len() != jobs.len() {
            return Err(Failure(format!("a report of {} jobs was answered with {} outcomes: {answer}", jobs.len(), outcomes.len())));
        }
        match outcomes.iter().find(|outcome| outcome["ok"] != true) {
            Some(refused) => Err(Failure(format!("a job's completion was refused: {refused}"))),
            None => Ok(()),
        }
    }

    async fn complete(
        &self,
        worker: &str,
        key: String,
        element: &str,
        lease: &str,
    ) -> Result<(), Failure> {
        let done = Done(element);
        match &self.via {
            Via::Embedded(handle) => {
                let claim = runtime::Claim::lease(worker, lease);
                let command = Command::CompleteJob {
                    key,
                    claim,
                    variables: done.variables(),
                    result: None,
                };
                handle
                    .call(command)
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure(e.to_string()))
            }
            Via::Http(wire) => {
                let path = format!("/v1/jobs/{}/complete", crate::client::encode(&key));
                self.post(wire, &path, &Completion { worker: Some(worker), lease: Some(lease), variables: done }).await.map(|_| ())
            }
            Via::Camunda(wire) => {
                let completion = Completion { worker: None, lease: None, variables: done };
                self.post(wire, &format!("/v2/jobs/{key}/completion"), &completion).await.map(|_| ())
            }
        }
    }
}

pub async fn run(options: BenchOptions) -> Result<Report, Failure> {
    // Fresh for each run: a directory left by a killed run whose process id came back must not be reused.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let directory = match &options.keep {
        Some(folder) => {
            if options.store != BenchStore::Sqlite {
                return Err(Failure("--keep keeps a SQLite file: it takes --store sqlite".into()));
            }
            if std::fs::read_dir(folder).is_ok_and(|mut entries| entries.next().is_some()) {
                return Err(Failure(format!("--keep {}: the folder is not empty; the run makes a new database", folder.display())));
            }
            folder.clone()
        }
        None => std::env::temp_dir().join(format!("baton-bench-{}-{started}", std::process::id())),
    };
    // On PostgreSQL, one store per node, each its own connections to the one schema.
    let mut postgres: Vec<Arc<store_postgres::PostgresStore>> = Vec::new();
    let store: Arc<dyn Store> = match options.store {
        BenchStore::Memory => Arc::new(store::MemoryStore::new()),
        BenchStore::Sqlite => {
            std::fs::create_dir_all(&directory).map_err(|e| Failure(e.to_string()))?;
            Arc::new(
                store_sqlite::SqliteStore::open(&directory.join("bench.db"))
                    .map_err(|e| Failure(e.to_string()))?,
            )
        }
        BenchStore::Postgres => {
            let url = options.postgres.as_deref().ok_or_else(|| Failure("--store postgres needs --postgres URL (or BATON_BENCH_POSTGRES)".into()))?;
            let schema = format!("baton_bench_{started}");
            let opened = tokio::task::block_in_place(|| store_postgres::PostgresStore::open_in_new_schema(url, &schema)).map_err(|e| Failure(e.to_string()))?;
            let opened = Arc::new(opened);
            postgres.push(opened.clone());
            for _ in 1..options.nodes {
                let node = tokio::task::block_in_place(|| store_postgres::PostgresStore::open_schema(url, &schema)).map_err(|e| Failure(e.to_string()))?;
                postgres.push(Arc::new(node));
            }
            opened
        }
    };
    let node_stores: Vec<Arc<dyn Store>> = match postgres.len() {
        0 => vec![store.clone()],
        _ => postgres.iter().map(|p| p.clone() as Arc<dyn Store>).collect(),
    };
    let shared_store = node_stores.len() > 1;
    let mut services = Vec::new();
    for node_store in node_stores.iter().cloned() {
        let options = Options { shared_store, ..Options::default() };
        let service = tokio::task::block_in_place(|| Service::start(node_store, Arc::new(SystemClock), Box::new(UuidIds), options)).map_err(|e| Failure(e.to_string()))?;
        services.push(service);
    }
    let handles: Vec<Handle> = services.iter().map(|s| s.handle.clone()).collect();
    let handle = handles[0].clone();
    let (xml, expected) = workload(options.workload);
    let deployed = handle
        .call(Command::Deploy {
            tenant: store::DEFAULT_TENANT.into(),
            files: vec![("bench.bpmn".into(), xml)],
        })
        .await
        .map_err(|e| Failure(e.to_string()))?;
    debug_assert!(matches!(deployed, Reply::Deployed(_)));

    // A link to each node: starters and workers take them in turn.
    let mut links = Vec::new();
    let mut addresses = Vec::new();
    let mut servers = Vec::new();
    for handle in &handles {
        match options.mode {
            Mode::Embedded => links.push(Link::new(Via::Embedded(handle.clone()))),
            Mode::Http | Mode::CamundaRest => {
                let listener = api::connections::listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                    .map_err(|e| Failure(e.to_string()))?;
                let address = listener.local_addr().map_err(|e| Failure(e.to_string()))?;
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                // Every starter is one client to the server (one address, no
                // actor), and the bench measures what the engine carries, not
                // the per-client start limit (`serve --max-starts-per-second`):
                // lifted here.
                let limits = api::limits::LimitSettings { starts_per_second: 1e9, ..Default::default() };
                let security = api::guard::Security { limits, ..api::guard::Security::for_listener(address) };
                let served = tokio::spawn(api::serve(listener, handle.clone(), security, async move {
                    let _ = stopped.await;
                }));
                addresses.push(format!("http://{address}"));
                links.push(link_to(options.mode, &format!("http://{address}"))?);
                servers.push((stop, served));
            }
        }
    }
    let links = Arc::new(links);
    let commits_now = || handles.iter().map(|h| h.metrics.commits()).fold((0, 0), |(c, n), (commits, commands)| (c + commits, n + commands));

    let tasks_per_instance = expected(0).len() as u64;
    let total_jobs = tasks_per_instance * options.instances as u64;
    // A warm-up first, on the same server: caches filled, the file grown,
    // the threads started, none of it measured.
    let clients = if options.separate { Clients::Apart(addresses) } else { Clients::Here(links) };
    if options.warmup > 0 {
        clients.drive(&options, expected, 0, options.warmup).await?;
    }
    let (commits_before, commands_before) = commits_now();
    let database_before = database_reading(&node_stores)?;
    let commit_thread_cpu = || handles.iter().map(|h| h.metrics.commit_thread_cpu()).sum::<Duration>();
    let commit_thread_cpu_before = commit_thread_cpu();
    let load_average = load_average();
    let machine_cpu_before = machine_cpu_seconds();
    let cpu_before = cpu_seconds();
    let Driven { seconds, retried, clients_cpu } = clients.drive(&options, expected, options.warmup, options.instances).await?;
    let cpu = cpu_seconds() - cpu_before;
    let machine_cpu = machine_cpu_seconds() - machine_cpu_before;
    let (commits_after, commands_after) = commits_now();
    let database_after = database_reading(&node_stores)?;
    let database = database_before.zip(database_after).map(|(before, after)| {
        let run = after.since(&before);
        let per_instance = |count: u64| count as f64 / options.instances as f64;
        DatabaseCost {
            statements: per_instance(run.statements),
            round_trips: per_instance(run.round_trips),
            rows_written: per_instance(run.rows),
            wal_bytes: per_instance(run.wal_bytes),
            commits: per_instance(run.commits),
        }
    });
    // Each node's commit thread, as of its last turn: every job's commands have been answered.
    let commit_thread_cpu = commit_thread_cpu().saturating_sub(commit_thread_cpu_before);
    for (stop, served) in servers {
        let _ = stop.send(());
        let _ = served.await;
    }

    // Check every instance: completed, and exactly the tasks it should have run.
    let started_instances = (options.warmup + options.instances) as f64;
    let kept = match options.report {
        false => None,
        true => {
            let footprint = store.clone();
            let tables = tokio::task::spawn_blocking(move || footprint.footprint())
                .await
                .map_err(|e| Failure(e.to_string()))?
                .ok_or_else(|| Failure("--report reads what the run left in its database: this store keeps nothing".into()))?
                .map_err(|e| Failure(e.to_string()))?;
            let per_instance = |count: u64| count as f64 / started_instances;
            Some(tables.into_iter().map(|t| Kept { rows_per_instance: per_instance(t.rows), bytes_per_instance: per_instance(t.bytes), name: t.name, table: t.table }).collect())
        }
    };
    let latencies =
        tokio::task::spawn_blocking(move || verify(store.as_ref(), options.warmup + options.instances, options.warmup, expected))
            .await
            .map_err(|e| Failure(e.to_string()))??;
    tokio::task::spawn_blocking(move || services.into_iter().for_each(Service::stop))
        .await
        .map_err(|e| Failure(e.to_string()))?;
    let disk_bytes = (options.store == BenchStore::Sqlite).then(|| folder_bytes(&directory));
    if options.keep.is_none() {
        let _ = std::fs::remove_dir_all(&directory);
    }

    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0) as f64
    };
    let conflicts_retried = handles.iter().map(|h| h.metrics.conflicts().0).sum();
    let commits = commits_after - commits_before;
    let commands = commands_after - commands_before;
    let per_1000 = |seconds: f64| seconds / options.instances as f64 * 1000.0;
    Ok(Report {
        workload: format!("{:?}", options.workload).to_lowercase(),
        store: format!("{:?}", options.store).to_lowercase(),
        mode: clap::ValueEnum::to_possible_value(&options.mode).map_or_else(String::new, |v| v.get_name().to_string()),
        nodes: options.nodes,
        instances: options.instances,
        offered_rate: options.rate,
        in_flight: options.in_flight,
        warmup: options.warmup,
        seconds,
        instances_per_s: options.instances as f64 / seconds,
        jobs_per_s: total_jobs as f64 / seconds,
        cpu_s_per_1000: per_1000(cpu),
        server_cpu_s_per_1000: options.separate.then(|| per_1000(cpu)),
        clients_cpu_s_per_1000: clients_cpu.map(per_1000),
        machine_cpu_s_per_1000: per_1000(machine_cpu),
        load_average,
        separate: options.separate,
        batched_reports: options.batched_reports,
        commit_thread_us_per_job: commit_thread_cpu.as_secs_f64() * 1e6 / total_jobs.max(1) as f64,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().copied().unwrap_or(0) as f64,
        peak_memory_mb: peak_memory_mb(),
        disk_bytes_per_instance: disk_bytes.map(|bytes| bytes as f64 / (options.warmup + options.instances) as f64),
        commits,
        mean_batch: if commits == 0 {
            0.0
        } else {
            commands as f64 / commits as f64
        },
        verified: latencies.len(),
        conflicts_retried,
        busy_retried: retried,
        database,
        kept,
    })
}

fn link_to(mode: Mode, server: &str) -> Result<Link, Failure> {
    let wire = Arc::new(Wire::new(server)?);
    Ok(match mode {
        Mode::CamundaRest => Link::new(Via::Camunda(wire)),
        Mode::Http | Mode::Embedded => Link::new(Via::Http(wire)),
    })
}

/// Where the starters and workers run.
enum Clients {
    /// In this process, beside the server.
    Here(Arc<Vec<Link>>),
    /// In a process of their own, against these servers.
    Apart(Vec<String>),
}

/// What driving instances took: seconds from the first start to the last
/// completion, requests sent again because the server was busy, and the
/// clients' CPU seconds when they ran apart.
struct Driven {
    seconds: f64,
    retried: u64,
    clients_cpu: Option<f64>,
}

impl Clients {
    async fn drive(&self, options: &BenchOptions, expected: fn(usize) -> Vec<String>, first: usize, count: usize) -> Result<Driven, Failure> {
        match self {
            Clients::Here(links) => {
                let (seconds, retried) = drive(links.clone(), options, expected, first, count).await?;
                Ok(Driven { seconds, retried, clients_cpu: None })
            }
            Clients::Apart(servers) => {
                let program = std::env::current_exe().map_err(|e| Failure(format!("this program's path: {e}")))?;
                let mode = clap::ValueEnum::to_possible_value(&options.mode).map_or_else(String::new, |v| v.get_name().to_string());
                let workload = format!("{:?}", options.workload).to_lowercase();
                let mut command = tokio::process::Command::new(program);
                command.args(["bench", "--workload", &workload, "--mode", &mode, "--instances", &count.to_string()]);
                command.args(["--drive-server", &servers.join(","), "--drive-first", &first.to_string()]);
                if let Some(rate) = options.rate {
                    command.args(["--rate", &rate.to_string()]);
                }
                if let Some(in_flight) = options.in_flight {
                    command.args(["--in-flight", &in_flight.to_string()]);
                }
                if options.batched_reports {
                    command.arg("--batched-reports");
                }
                // Its error output is read, not inherited, so that its reason
                // travels with the failure however this process's is kept.
                command.stdin(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).kill_on_drop(true);
                let output = command.output().await.map_err(|e| Failure(format!("the clients' process did not start: {e}")))?;
                let said = String::from_utf8_lossy(&output.stderr);
                if !output.status.success() {
                    let said = said.trim();
                    let said = if said.is_empty() { "nothing".to_string() } else { said.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect() };
                    return Err(Failure(format!("the clients' process failed ({}) and said: {said}", output.status)));
                }
                eprint!("{said}");
                let answer: Value = serde_json::from_slice(&output.stdout).map_err(|e| Failure(format!("the clients' process answered no report: {e}")))?;
                match (answer["seconds"].as_f64(), answer["retried"].as_u64(), answer["cpu_seconds"].as_f64()) {
                    (Some(seconds), Some(retried), Some(cpu)) => Ok(Driven { seconds, retried, clients_cpu: Some(cpu) }),
                    _ => Err(Failure(format!("the clients' process answered {answer}"))),
                }
            }
        }
    }
}

/// The clients' side of `--separate` (`bench --drive-server`): drives
/// instances `first..first + options.instances` against servers already
/// running the workload's model; the JSON line its parent reads.
pub async fn drive_against(servers: &[String], options: &BenchOptions, first: usize) -> Result<Value, Failure> {
    let links = servers.iter().map(|server| link_to(options.mode, server)).collect::<Result<Vec<Link>, Failure>>()?;
    if links.is_empty() {
        return Err(Failure("--drive-server names no server".into()));
    }
    let (_, expected) = workload(options.workload);
    let (seconds, retried) = drive(Arc::new(links), options, expected, first, options.instances).await?;
    Ok(json!({"seconds": seconds, "retried": retried, "cpu_seconds": cpu_seconds()}))
}

/// Counts `count` more jobs completed; the last of the run notes when it
/// ended (nanoseconds after `started`) in `finished_ns`.
fn count_completed(completed_jobs: &AtomicU64, finished_ns: &AtomicU64, started: Instant, total_jobs: u64, count: u64) {
    if completed_jobs.fetch_add(count, Ordering::Relaxed) + count == total_jobs {
        finished_ns.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Starts instances `first..first + count` (as fast as it can, at the
/// offered rate, or in a closed loop) while workers complete their jobs;
/// returns when every job has completed, with the seconds from the first
/// start to the last completion and the requests sent again because the
/// server was busy.
async fn drive(links: Arc<Vec<Link>>, options: &BenchOptions, expected: fn(usize) -> Vec<String>, first: usize, count: usize) -> Result<(f64, u64), Failure> {
    let retried = || links.iter().map(|link| link.retried.load(Ordering::Relaxed)).sum::<u64>();
    let retried_before = retried();
    let tasks_per_instance = expected(0).len() as u64;
    let total_jobs = tasks_per_instance * count as u64;
    let completed_jobs = Arc::new(AtomicU64::new(0));
    // When the last job completed, in nanoseconds after the first start: the
    // run's end, whenever the loop below notices it.
    let finished_ns = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let ends = Arc::new(Ends::default());
    let per_instance = tasks_per_instance as usize;
    let started = Instant::now();

    let mut workers = Vec::new();
    for w in 0..WORKERS.max(links.len()) {
        let (link, completed_jobs, finished_ns, done, ends) = (
            links[w % links.len()].clone(),
            completed_jobs.clone(),
            finished_ns.clone(),
            done.clone(),
            ends.clone(),
        );
        let closed_loop = options.in_flight.is_some();
        let batched = options.batched_reports;
        workers.push(tokio::spawn(async move {
            let name = format!("bench-{w}");
            while !done.load(Ordering::Relaxed) {
                let jobs = link.activate(&name).await?;
                if batched {
                    if jobs.is_empty() {
                        continue;
                    }
                    link.complete_all(&name, &jobs).await?;
                    if closed_loop {
                        for taken in &jobs {
                            ends.completed(&taken.instance, per_instance);
                        }
                    }
                    count_completed(&completed_jobs, &finished_ns, started, total_jobs, jobs.len() as u64);
                    continue;
                }
                // Like a worker with concurrency: each job completed by its
                // own call, all at once (polled together by this worker's
                // task: a task spawned per job cost the clients more than the call).
                let completions = jobs.into_iter().map(|taken| {
                    let (link, name, completed_jobs, finished_ns, ends) = (&link, &name, &completed_jobs, &finished_ns, &ends);
                    async move {
                        link.complete(name, taken.key, &taken.element, &taken.lease).await?;
                        if closed_loop {
                            ends.completed(&taken.instance, per_instance);
                        }
                        count_completed(completed_jobs, finished_ns, started, total_jobs, 1);
                        Ok::<(), Failure>(())
                    }
                });
                futures_util::future::try_join_all(completions).await?;
            }
            Ok::<(), Failure>(())
        }));
    }

    let starter = {
        let links = links.clone();
        let (rate, in_flight) = (options.rate, options.in_flight);
        let ends = ends.clone();
        tokio::spawn(async move {
            match (rate, in_flight) {
                // A closed loop: each of `in_flight` starters starts an
                // instance and waits for it to end before the next.
                (_, Some(in_flight)) => {
                    let next = Arc::new(AtomicU64::new(0));
                    let mut starters = Vec::new();
                    for s in 0..in_flight.min(count) {
                        let (link, next, ends) = (links[s % links.len()].clone(), next.clone(), ends.clone());
                        starters.push(tokio::spawn(async move {
                            loop {
                                let i = first + next.fetch_add(1, Ordering::Relaxed) as usize;
                                if i >= first + count {
                                    return Ok::<(), Failure>(());
                                }
                                let instance = link.start(i).await?;
                                ends.ended(&instance, per_instance).await;
                            }
                        }));
                    }
                    for s in starters {
                        s.await.map_err(|e| Failure(e.to_string()))??;
                    }
                }
                (Some(rate), None) => {
                    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    let mut pending = Vec::new();
                    for i in first..first + count {
                        tick.tick().await;
                        let link = links[i % links.len()].clone();
                        pending.push(tokio::spawn(async move { link.start(i).await }));
                    }
                    for p in pending {
                        p.await.map_err(|e| Failure(e.to_string()))??;
                    }
                }
                (None, None) => {
                    let next = Arc::new(AtomicU64::new(0));
                    let mut starters = Vec::new();
                    for s in 0..STARTERS.min(count.max(1)) {
                        let (link, next) = (links[s % links.len()].clone(), next.clone());
                        starters.push(tokio::spawn(async move {
                            loop {
                                let i = first + next.fetch_add(1, Ordering::Relaxed) as usize;
                                if i >= first + count {
                                    return Ok::<(), Failure>(());
                                }
                                link.start(i).await?;
                            }
                        }));
                    }
                    for s in starters {
                        s.await.map_err(|e| Failure(e.to_string()))??;
                    }
                }
            }
            Ok::<(), Failure>(())
        })
    };
    starter.await.map_err(|e| Failure(e.to_string()))??;
    let deadline = Instant::now() + Duration::from_secs(600);
    while completed_jobs.load(Ordering::Relaxed) < total_jobs {
        if Instant::now() > deadline {
            return Err(Failure(format!(
                "only {} of {total_jobs} jobs completed in 10 minutes",
                completed_jobs.load(Ordering::Relaxed)
            )));
        }
        if let Some(stopped) = workers.iter().position(|w| w.is_finished()) {
            // A worker ends only when something failed; say what.
            return match workers.swap_remove(stopped).await {
                Ok(Err(failure)) => Err(failure),
                _ => Err(Failure("a benchmark worker stopped early".into())),
            };
        }
        // Only how soon the run is noticed to be over depends on this; its
        // length is the last completion's time.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.map_err(|e| Failure(e.to_string()))??;
    }
    Ok((finished_ns.load(Ordering::Relaxed) as f64 / 1e9, retried() - retried_before))
}

/// What every node's store wrote so far, summed; `None` for the memory
/// store. On PostgreSQL every node reads the one server's log position, so
/// the log is counted once.
fn database_reading(stores: &[Arc<dyn Store>]) -> Result<Option<store::Written>, Failure> {
    let mut sum: Option<store::Written> = None;
    for store in stores {
        let Some(written) = tokio::task::block_in_place(|| store.written()) else { continue };
        let written = written.map_err(|e| Failure(e.to_string()))?;
        sum = Some(match sum {
            None => written,
            Some(sum) => store::Written {
                statements: sum.statements + written.statements,
                round_trips: sum.round_trips + written.round_trips,
                rows: sum.rows + written.rows,
                wal_bytes: sum.wal_bytes,
                commits: sum.commits + written.commits,
            },
        });
    }
    Ok(sum)
}

/// Reads every instance back; returns the start-to-complete latencies (ms), sorted.
/// Only instances from `measured` on (after the warm-up's) give a latency.
fn verify(
    store: &dyn Store,
    instances: usize,
    measured: usize,
    expected: fn(usize) -> Vec<String>,
) -> Result<Vec<i64>, Failure> {
    let mut read = store.read().map_err(|e| Failure(e.to_string()))?;
    let mut latencies = Vec::with_capacity(instances);
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    let mut seen = BTreeMap::new();
    loop {
        let found = read
            .instances(&InstanceFilter::default(), &page)
            .map_err(|e| Failure(e.to_string()))?;
        for row in &found.items {
            let i = row
                .state
                .input
                .get("i")
                .and_then(Value::as_u64)
                .ok_or_else(|| Failure(format!("instance {} has no index", row.id)))?
                as usize;
            if row.status != engine::Status::Completed {
                return Err(Failure(format!(
                    "instance {} (i = {i}) is {}, not completed",
                    row.id,
                    row.status.as_str()
                )));
            }
            let ran: Vec<String> = row
                .state
                .variables
                .keys()
                .filter_map(|k| k.strip_prefix(DONE).map(str::to_string))
                .collect();
            let mut want = expected(i);
            want.sort();
            let mut got = ran.clone();
            got.sort();
            if got != want {
                return Err(Failure(format!(
                    "instance {} (i = {i}) ran {got:?}, expected {want:?}",
                    row.id
                )));
            }
            if seen.insert(i, row.id.clone()).is_some() {
                return Err(Failure(format!("two instances have index {i}")));
            }
            if i >= measured {
                latencies.push(row.ended_at.unwrap_or(row.started_at) - row.started_at);
            }
        }
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    if seen.len() != instances {
        return Err(Failure(format!("found {} instances, expected {instances}", seen.len())));
    }
    latencies.sort_unstable();
    Ok(latencies)
}

pub fn print(report: &Report) {
    say!(
        "workload        {} ({} store, {} mode, {} node{}{})",
        report.workload,
        report.store,
        report.mode,
        report.nodes,
        if report.nodes == 1 { "" } else { "s" },
        report
            .offered_rate
            .map(|r| format!(", offered {r}/s"))
            .or_else(|| report.in_flight.map(|n| format!(", closed loop of {n} in flight")))
            .unwrap_or_default()
            + &if report.warmup > 0 { format!(", after {} not measured", report.warmup) } else { String::new() }
            + if report.separate { ", clients in a process of their own" } else { "" }
            + if report.batched_reports { ", each batch of jobs completed in one request" } else { "" }
    );
    say!(
        "machine         load average {:.2} {:.2} {:.2} at the start",
        report.load_average[0],
        report.load_average[1],
        report.load_average[2]
    );
    say!(
        "instances       {} completed and verified in {:.2} s",
        report.verified,
        report.seconds
    );
    say!(
        "throughput      {:.0} instances/s, {:.0} jobs/s",
        report.instances_per_s,
        report.jobs_per_s
    );
    match (report.server_cpu_s_per_1000, report.clients_cpu_s_per_1000) {
        (Some(server), Some(clients)) => say!(
            "cpu             s per 1000 instances: server {server:.3}, clients {clients:.3} (their own process), whole machine {:.3}",
            report.machine_cpu_s_per_1000
        ),
        _ => say!(
            "cpu             s per 1000 instances: {:.3} (this process, server and clients), whole machine {:.3}",
            report.cpu_s_per_1000,
            report.machine_cpu_s_per_1000
        ),
    }
    say!("commit thread   {:.1} µs of CPU per job", report.commit_thread_us_per_job);
    say!(
        "latency         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (start to complete)",
        report.p50_ms,
        report.p99_ms,
        report.max_ms
    );
    say!(
        "memory          {:.1} MiB peak resident{}",
        report.peak_memory_mb,
        report.disk_bytes_per_instance.map(|b| format!("; disk {b:.0} bytes per instance kept")).unwrap_or_default()
    );
    say!(
        "commits         {} ({:.1} commands per commit{})",
        report.commits,
        report.mean_batch,
        if report.nodes > 1 { format!(", {} run again after a conflict", report.conflicts_retried) } else { String::new() }
    );
    if report.busy_retried > 0 {
        say!("busy            {} requests answered 503 or 429 (nothing done) and sent again", report.busy_retried);
    }
    if let Some(cost) = &report.database {
        let round_trips = if cost.round_trips > 0.0 { format!(" in {:.1} round trips", cost.round_trips) } else { String::new() };
        say!(
            "database        per instance: {:.1} statements{round_trips}, {:.1} rows written, {:.0} WAL bytes, {:.3} commits",
            cost.statements,
            cost.rows_written,
            cost.wal_bytes,
            cost.commits
        );
    }
    if let Some(kept) = &report.kept {
        say!("kept            per instance, by table and index (what the run left; rows of a table, entries of an index):");
        let (holding, empty): (Vec<&Kept>, Vec<&Kept>) = kept.iter().partition(|t| t.rows_per_instance > 0.0);
        for t in holding {
            let of = if t.table == t.name { String::new() } else { format!(" (of {})", t.table) };
            say!("                {:<48} {:>8.2} rows {:>8.0} bytes", format!("{}{of}", t.name), t.rows_per_instance, t.bytes_per_instance);
        }
        if !empty.is_empty() {
            let bytes: f64 = empty.iter().map(|t| t.bytes_per_instance).sum();
            say!("                {:<48} {:>8} {:>13.0} bytes", format!("{} more, empty", empty.len()), "", bytes);
        }
    }
}
