//! The running service: one commit-loop thread owns the [`Core`] and the
//! store's writer. Callers send commands through a bounded queue and wait for
//! the answer, which comes only after the transaction holding the command has
//! committed.
//!
//! **Group commit.** The loop takes every command that arrived while the
//! previous transaction was being written (up to [`Options::max_batch`]),
//! applies them all in one transaction, commits once (one fsync), then answers
//! them all. Under load, batches grow and the cost of durability is shared.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::{Input, Variables};
use store::{Store, WriteTxn};
use tokio::sync::{oneshot, Notify};

use crate::core::{
    ActivatedJob, Audit, Claim, Core, IdSource, Imported, PublishCommand, Registry, StartCommand, Unguarded,
};
use crate::metrics::Metrics;
use crate::{panic_message, Error, Fault, FaultCause};

/// The time source: the wall clock in production, something else in tests.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        // A clock before 1970 is a broken machine; 0 keeps the arithmetic sane.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock moved by hand, for tests: time passes only when a test says so.
#[cfg(feature = "test-util")]
pub struct ManualClock(std::sync::atomic::AtomicI64);

#[cfg(feature = "test-util")]
impl ManualClock {
    pub fn new(now: i64) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(now))
    }

    pub fn advance(&self, by_ms: i64) {
        self.0.fetch_add(by_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(feature = "test-util")]
impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Most commands committed in one transaction.
    pub max_batch: usize,
    /// Most commands waiting for the commit loop; beyond it callers are told to retry.
    pub queue_capacity: usize,
    /// Most timers fired per transaction.
    pub max_timers_per_batch: usize,
    /// Most decoded instances kept between commands ([`crate::core::Core::set_cache_capacity`]).
    pub cache_capacity: usize,
    /// An error end event nobody catches raises an incident, as Camunda 8 does, instead of failing the instance.
    pub uncaught_errors_incident: bool,
    /// How long an ended instance is kept before it is deleted with its
    /// history (`None`: for ever); a workflow's `baton:retention` property overrides it.
    pub retention_ms: Option<i64>,
    /// Other nodes write to the same store ([`crate::core::Core::shared_store`]): each
    /// batch learns what they deployed, and cached instances are checked before use.
    pub shared_store: bool,
    /// Makes chosen engine steps panic, to test that a fault stays with its instance.
    #[cfg(feature = "test-util")]
    pub inject_panic: Option<PanicInjection>,
}

/// Whether to make a step panic, given the instance id and the input.
#[cfg(feature = "test-util")]
pub type PanicWhen = dyn Fn(&str, &Input) -> bool + Send + Sync;

/// Which steps to make panic.
#[cfg(feature = "test-util")]
#[derive(Clone)]
pub struct PanicInjection(pub Arc<PanicWhen>);

#[cfg(feature = "test-util")]
impl std::fmt::Debug for PanicInjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PanicInjection")
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_batch: 2_000,
            queue_capacity: 50_000,
            max_timers_per_batch: 1_000,
            cache_capacity: crate::cache::DEFAULT_CAPACITY,
            uncaught_errors_incident: false,
            retention_ms: None,
            shared_store: false,
            #[cfg(feature = "test-util")]
            inject_panic: None,
        }
    }
}

/// What a user task command does.
#[derive(Clone, Debug)]
pub enum TaskAction {
    Complete(Variables),
    Claim(String),
    Unclaim,
    Assign(String),
    /// Changes its dates, candidates or priority (`""` and `[]` clear).
    Update(engine::TaskCorrections),
}

/// A command for the commit loop.
#[derive(Clone, Debug)]
pub enum Command {
    /// Deploys BPMN, DMN and form files (name, text) to a tenant. The files
    /// are read where the command is sent ([`Handle::call_as`]), off the
    /// commit loop, and reach it as [`Command::DeployImported`].
    Deploy {
        tenant: String,
        files: Vec<(String, String)>,
    },
    /// Deploys files already read ([`Imported::read`]).
    DeployImported {
        tenant: String,
        files: Arc<Imported>,
    },
    Start(StartCommand),
    /// An input for an instance (cancel, suspend, resume, set variables, modify).
    Instance {
        instance_id: String,
        input: Input,
    },
    Activate {
        job_type: String,
        worker: String,
        max: usize,
        lease_ms: i64,
    },
    CompleteJob {
        key: String,
        claim: Claim,
        variables: Variables,
        /// For an ad-hoc subprocess's job: what to activate in it, or that it is done.
        result: Option<engine::JobResult>,
    },
    FailJob {
        key: String,
        claim: Claim,
        retries: u32,
        message: String,
        backoff_ms: i64,
        /// Set on the job's element instance (its local scope).
        variables: Variables,
    },
    ThrowError {
        key: String,
        claim: Claim,
        code: String,
        message: String,
        variables: Variables,
    },
    UpdateRetries {
        key: String,
        retries: u32,
    },
    /// Moves the end of an activated job's lease to `lease_ms` from now (Camunda's job timeout).
    ExtendLease {
        key: String,
        lease_ms: i64,
    },
    Task {
        key: String,
        action: TaskAction,
    },
    Publish(PublishCommand),
    Broadcast {
        tenant: String,
        name: String,
        variables: Variables,
    },
    /// Starts the workflows whose conditional start events `variables` make true.
    EvaluateConditionals {
        tenant: String,
        workflow: Option<String>,
        variables: Variables,
    },
    ResolveIncident {
        key: String,
    },
    /// Creates, changes or revokes an API token.
    PutToken(store::TokenRow),
    /// Deletes an ended instance now, with its history and every row of it.
    DeleteInstance { instance_id: String },
    /// Keeps an ended instance until `until`, when it is deleted (`None`: for ever).
    KeepInstance { instance_id: String, until: Option<i64> },
    /// Evaluates a deployed decision (the latest version, or `version`) with
    /// variables; writes nothing.
    Evaluate {
        tenant: String,
        decision_id: String,
        version: Option<u32>,
        variables: Variables,
    },
    /// Does nothing itself; the turn it causes fires due timers (for manual clocks).
    Tick,
}

#[derive(Debug)]
pub enum Reply {
    Deployed(crate::core::Deployment),
    Started(String),
    Activated(Vec<ActivatedJob>),
    Published(crate::core::Publication),
    ConditionsEvaluated(Vec<crate::core::ConditionalStart>),
    Decided(engine::DecisionOutcome),
    Done,
}

struct Envelope {
    command: Command,
    audit: Audit,
    reply: oneshot::Sender<Result<Reply, Error>>,
}

enum Message {
    Command(Box<Envelope>),
    /// Run a turn now (another node deployed).
    Wake,
    Stop,
}

/// A cheap, cloneable way to talk to the commit loop: its clones share one
/// [`Shared`] behind one reference count, so a clone (the API makes several
/// per request) is one atomic add, not one per part; with a count per part a
/// request's clones and drops were 4 % of the API threads' time under W3.
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

impl std::ops::Deref for Handle {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every clone of a [`Handle`] shares.
pub struct Shared {
    sender: SyncSender<Message>,
    /// Woken after every commit that may have made jobs activatable.
    pub jobs_changed: Arc<Notify>,
    /// Woken after a commit in which an instance ended (see [`Handle::await_end`]).
    pub instances_ended: Arc<Notify>,
    /// Woken when another node made or revoked API tokens (the API reloads its copy).
    pub tokens_changed: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The compiled workflows, to read instances against their models.
    pub workflows: Registry,
    stopped: Arc<AtomicBool>,
    /// True while the commit loop's thread runs; readiness reports it.
    running: Arc<AtomicBool>,
    /// When the last commit failed (not for a conflict), until one succeeds: readiness reports it.
    write_failure: Arc<std::sync::Mutex<Option<Instant>>>,
    /// What the store said when it was first found damaged: readiness fails from then on.
    damage: Arc<std::sync::Mutex<Option<String>>>,
    /// Jobs handed out on this node's streams and not yet reported.
    pub(crate) streamed: Arc<crate::streams::StreamedJobs>,
    /// Most commands waiting for the commit loop ([`Options::queue_capacity`]).
    queue_capacity: usize,
}

/// The commit loop's thread; joining it waits for the last commit.
pub struct Service {
    pub handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Loads the workflows and starts the commit loop. Recovery needs nothing
    /// more: due timers fire on the first turn, expired leases free their jobs.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Box<dyn IdSource>,
        options: Options,
    ) -> Result<Service, Error> {
        let mut core = {
            let mut read = store.read()?;
            Core::load(read.as_mut(), ids)?
        };
        core.set_cache_capacity(options.cache_capacity);
        core.uncaught_errors_incident = options.uncaught_errors_incident;
        core.shared_store = options.shared_store;
        core.retention_ms = options.retention_ms;
        #[cfg(feature = "test-util")]
        core.inject_panic(options.inject_panic.clone());
        let (sender, receiver) = mpsc::sync_channel(options.queue_capacity);
        let handle = Handle(Arc::new(Shared {
            sender,
            jobs_changed: Arc::new(Notify::new()),
            instances_ended: Arc::new(Notify::new()),
            tokens_changed: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
            store: store.clone(),
            clock: clock.clone(),
            workflows: core.registry(),
            stopped: Arc::new(AtomicBool::new(false)),
            running: Arc::new(AtomicBool::new(true)),
            write_failure: Arc::new(std::sync::Mutex::new(None)),
            damage: Arc::default(),
            streamed: Arc::default(),
            queue_capacity: options.queue_capacity,
        }));
        let warm = handle.workflows.clone();
        // Off the commit loop, before anyone asks. Should the thread not
        // start, each version is still compiled when first needed.
        let _ = std::thread::Builder::new().name("baton-compile".into()).spawn(move || warm.compile_latest());
        let answering = Answering::start(Settler {
            store: store.clone(),
            jobs_changed: handle.jobs_changed.clone(),
            instances_ended: handle.instances_ended.clone(),
            metrics: handle.metrics.clone(),
            damage: handle.damage.clone(),
            failed: None,
            unsynced: false,
        });
        let looped = CommitLoop {
            core,
            store,
            clock,
            options,
            receiver,
            metrics: handle.metrics.clone(),
            write_failure: handle.write_failure.clone(),
            damage: handle.damage.clone(),
            stale: false,
            next_sweep: i64::MIN,
            next_due_committed: None,
            answering,
        };
        if looped.options.shared_store {
            handle.listen();
        }
        let running = RunningFlag(handle.running.clone());
        let thread = std::thread::Builder::new()
            .name("baton-commit".into())
            .spawn(move || {
                // Lowered when the loop ends, however it ends (a panic too).
                let _running = running;
                looped.run()
            })
            .map_err(|e| Error::InvalidInput(format!("cannot start the commit loop: {e}")))?;
        Ok(Service {
            handle,
            thread: Some(thread),
        })
    }

    /// Finishes the commands in flight, commits them, and stops.
    pub fn stop(mut self) {
        self.handle.stopped.store(true, Ordering::SeqCst);
        let _ = self.handle.sender.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Handle {
    /// Wakes this node's waiters for what other nodes commit: long polls for
    /// jobs, waits for an end, the API's copy of the tokens; and the commit
    /// loop, to learn a deployment now rather than at its next turn.
    fn listen(&self) {
        let (jobs, ended, tokens, wake) = (self.jobs_changed.clone(), self.instances_ended.clone(), self.tokens_changed.clone(), self.sender.clone());
        self.store.listen(Box::new(move |news: store::News| {
            if news.jobs {
                jobs.notify_waiters();
            }
            if news.ended {
                ended.notify_waiters();
            }
            if news.tokens {
                tokens.notify_waiters();
            }
            if news.deployed {
                // A full queue has commands for the loop already, which learns then.
                let _ = wake.try_send(Message::Wake);
            }
        }));
    }
}

/// CPU time the calling thread has used so far (user and system), where the
/// system tells it.
fn thread_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes only into the timespec it is given.
        let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        (read == 0).then(|| Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0)))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Lowers the `running` flag when dropped.
struct RunningFlag(Arc<AtomicBool>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Handle {
    /// Whether the commit loop is running: no write can be answered without it.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst) && !self.stopped.load(Ordering::SeqCst)
    }

    /// How long ago the last commit failed, when none has succeeded since
    /// (the store takes no writes: a full disk, a lost database).
    pub fn failing_since(&self) -> Option<Duration> {
        self.write_failure.lock().ok().and_then(|failed| failed.map(|at| at.elapsed()))
    }

    /// Keeps what the store said when a read found the database damaged
    /// (the first words alone): what is damaged stays so until it is
    /// restored, so the server is not ready again until it is restarted on
    /// a sound file. The commit loop notes its own failures.
    pub fn note_damage(&self, what: &str) {
        note_damage(&self.damage, what);
    }

    /// What the store said when it was first found damaged, if it was.
    pub fn damage(&self) -> Option<String> {
        self.damage.lock().ok().and_then(|damage| damage.clone())
    }

    /// Sends a command and waits until its transaction has committed.
    /// Applies a command as no one in particular (see [`Handle::call_as`]).
    pub async fn call(&self, command: Command) -> Result<Reply, Error> {
        self.call_as(Audit::default(), command).await
    }

    /// Applies a command on behalf of `audit.actor`, and answers once it is committed.
    pub async fn call_as(&self, audit: Audit, command: Command) -> Result<Reply, Error> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(Error::Store(store::Error::unavailable(
                "the server is shutting down",
            )));
        }
        // Reading models costs time in proportion to their size: it is done
        // here, on a blocking thread, so that the commit loop only gives
        // versions and writes rows.
        let command = match command {
            Command::Deploy { tenant, files } => {
                let imported = tokio::task::spawn_blocking(move || Imported::read(&files)).await.map_err(|error| {
                    let message = if error.is_panic() { panic_message(&*error.into_panic()) } else { error.to_string() };
                    Error::Fault(Fault { instance_id: None, site: engine::FaultSite::Instance, message, cause: FaultCause::Defect })
                })??;
                Command::DeployImported { tenant, files: Arc::new(imported) }
            }
            command => command,
        };
        // A job reported frees its place in a stream's window ([`crate::streams`]).
        let reported = if self.streamed.holds_any() { crate::streams::reported_job(&command).map(str::to_string) } else { None };
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send(Message::Command(Box::new(Envelope {
            command,
            audit,
            reply,
        }))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.record_overloaded();
                return Err(Error::Overloaded { waiting: self.queue_capacity });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::Store(store::Error::unavailable(
                    "the commit loop has stopped",
                )))
            }
        }
        let outcome = answer.await.map_err(|_| {
            Error::Store(store::Error::unavailable(
                "the commit loop stopped before answering",
            ))
        })?;
        self.streamed.settled(reported.as_deref(), &outcome);
        outcome
    }

    /// Whether shutting down has begun ([`Handle::begin_shutdown`]).
    pub fn is_stopping(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Starts shutting down: no new command is taken, and long polls answer
    /// at once with what they have. Commands already queued still commit.
    pub fn begin_shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.jobs_changed.notify_waiters();
    }

    /// Waits up to `timeout` for the instance to end: its row once it has
    /// ended, `None` if it is still running then (or the server stops).
    /// Each commit that ends any instance wakes every waiter, who reads its
    /// own instance again: a read per waiter per such commit.
    pub async fn await_end(&self, id: &str, timeout: Duration) -> Result<Option<store::InstanceRow>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            // Registered before reading, so an end committed in between is not missed.
            let notified = self.instances_ended.notified();
            let store = self.store.clone();
            let lookup = id.to_string();
            let row = tokio::task::spawn_blocking(move || store.read()?.instance(&lookup))
                .await
                .map_err(|_| Error::Store(store::Error::unavailable("a read was interrupted")))?
                .map_err(Error::Store)?;
            let Some(row) = row else {
                return Err(Error::NotFound { what: "instance", id: id.to_string() });
            };
            if row.status.is_ended() {
                return Ok(Some(row));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopped.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Activates jobs of the `tenants` (`None`: every one), waiting up to
    /// `timeout` for some to appear (long poll).
    pub async fn activate(
        &self,
        job_type: String,
        worker: String,
        max: usize,
        lease_ms: i64,
        timeout: Duration,
        tenants: store::Tenants,
    ) -> Result<Vec<ActivatedJob>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            // Registered before asking, so a commit in between is not missed.
            let notified = self.jobs_changed.notified();
            let command = Command::Activate {
                job_type: job_type.clone(),
                worker: worker.clone(),
                max,
                lease_ms,
            };
            let audit = Audit {
                tenants: tenants.clone(),
                ..Audit::default()
            };
            let Reply::Activated(jobs) = self.call_as(audit, command).await? else {
                unreachable!("activate answers with jobs")
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if !jobs.is_empty() || left.is_zero() || self.stopped.load(Ordering::SeqCst) {
                return Ok(jobs);
            }
            // Wake at a commit, or within a second to notice leases that ran out.
            let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), notified).await;
            if self.stopped.load(Ordering::SeqCst) {
                return Ok(Vec::new());
            }
        }
    }
}

/// Whether a command's outcome may have changed the store. A refused command
/// was rolled back to its savepoint; an activation that found no job and a
/// tick wrote nothing.
fn may_have_written(result: &Result<Reply, Error>) -> bool {
    match result {
        // The command was rolled back; the fault's incident stays.
        Err(Error::Fault(_)) => true,
        Err(_) => false,
        Ok(Reply::Activated(jobs)) => !jobs.is_empty(),
        // Evaluating a decision writes nothing.
        Ok(Reply::Decided(_)) => false,
        Ok(Reply::ConditionsEvaluated(started)) => !started.is_empty(),
        Ok(Reply::Done | Reply::Deployed(_) | Reply::Started(_) | Reply::Published(_)) => true,
    }
}

/// How many times a batch runs when an instance it wrote was written by someone else meanwhile.
const MAX_CONFLICT_TRIES: u32 = 3;

/// How one transaction of the commit loop went.
enum Attempt {
    /// Nothing was written: no commit, the answers stand.
    ReadOnly(Vec<Result<Reply, Error>>),
    Committed(Vec<Result<Reply, Error>>),
    /// Rolled back: every caller gets this error.
    Failed(Error),
    /// No transaction could begin (the store is unreachable); nothing ran.
    NotBegun(Error),
}

struct CommitLoop {
    core: Core,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    options: Options,
    receiver: Receiver<Message>,
    metrics: Arc<Metrics>,
    write_failure: Arc<std::sync::Mutex<Option<Instant>>>,
    /// [`Handle::damage`], shared.
    damage: Arc<std::sync::Mutex<Option<String>>>,
    /// A batch failed and the core could not reload what the store holds
    /// (the store was unreachable): nothing runs until it has.
    stale: bool,
    /// When (the clock's ms) to look for ended instances to delete next.
    next_sweep: i64,
    /// The next timer due, as the last turn's transaction left the store
    /// (read before its commit, kept once it committed): the wait for the
    /// next command needs no read transaction of its own then. `None`: not
    /// known (the last turn wrote nothing, or failed), so it is read.
    next_due_committed: Option<Option<i64>>,
    /// Where each turn's answers go: see [`Answering`].
    answering: Answering,
}

/// What one turn answers, and whom its commit may concern.
struct Answers {
    replies: Vec<(oneshot::Sender<Result<Reply, Error>>, Result<Reply, Error>)>,
    /// The turn committed: its answers wait for the commit to be durable,
    /// and the long polls for jobs are woken.
    committed: bool,
    /// An instance ended in the commit: the waiters for an end are woken.
    ended: bool,
}

/// Gives out the answers of turns in the order they came, once what they
/// committed is durable: at once where the store's commit is durable when it
/// returns; after [`Store::sync`] where the store leaves that to its caller.
#[derive(Clone)]
struct Settler {
    store: Arc<dyn Store>,
    jobs_changed: Arc<Notify>,
    instances_ended: Arc<Notify>,
    metrics: Arc<Metrics>,
    damage: Arc<std::sync::Mutex<Option<String>>>,
    /// A sync failed: what was committed since the last good one may not be
    /// on disk, so no answer is given from then on (and the damage noted
    /// stops the commit loop writing until the server is restarted).
    failed: Option<Error>,
    /// Commits may have been left unsynced by a sync thread that is gone:
    /// the next turn syncs, whether it committed or not.
    unsynced: bool,
}

impl Settler {
    fn settle(&mut self, turns: Vec<Answers>) {
        let committed = self.unsynced || turns.iter().any(|turn| turn.committed);
        if self.failed.is_none() && self.store.defers_sync() && committed {
            self.unsynced = false;
            let began = Instant::now();
            match self.store.sync() {
                Ok(()) => self.metrics.record_sync(began.elapsed()),
                Err(error) => {
                    note_damage(&self.damage, &format!("{error}: what was committed since the last sync may not be on disk"));
                    self.failed = Some(Error::Store(error));
                }
            }
        }
        for turn in turns {
            if let Some(error) = &self.failed {
                for (reply, _) in turn.replies {
                    let _ = reply.send(Err(error.clone()));
                }
                continue;
            }
            for (reply, result) in turn.replies {
                let _ = reply.send(result);
            }
            if turn.committed {
                self.jobs_changed.notify_waiters();
                if turn.ended {
                    self.instances_ended.notify_waiters();
                }
            }
        }
    }
}

/// Where the commit loop's answers go: to a thread of their own where the
/// store leaves syncing to its caller ([`Store::defers_sync`]), which waits
/// for the disk while the commit loop runs its next turn and makes durable
/// with one sync all the turns committed meanwhile; else (or should that
/// thread be gone) settled on the commit loop's thread.
struct Answering {
    here: Settler,
    apart: Option<(mpsc::Sender<Answers>, JoinHandle<()>)>,
}

impl Answering {
    fn start(settler: Settler) -> Answering {
        let apart = settler.store.defers_sync().then(|| {
            let (sender, receiver) = mpsc::channel::<Answers>();
            let mut apart = settler.clone();
            let thread = std::thread::Builder::new().name("baton-sync".into()).spawn(move || {
                while let Ok(first) = receiver.recv() {
                    let mut turns = vec![first];
                    turns.extend(receiver.try_iter());
                    apart.settle(turns);
                }
            });
            thread.ok().map(|thread| (sender, thread))
        });
        Answering { here: settler, apart: apart.flatten() }
    }

    fn answer(&mut self, answers: Answers) {
        let answers = match &self.apart {
            Some((sender, _)) => match sender.send(answers) {
                Ok(()) => return,
                // The thread is gone (it panicked; the answers it held went
                // with it, an error to their callers): settled here from now on.
                Err(mpsc::SendError(answers)) => {
                    self.apart = None;
                    self.here.unsynced = true;
                    answers
                }
            },
            None => answers,
        };
        self.here.settle(vec![answers]);
    }

    /// Waits until every answer sent is given.
    fn finish(&mut self) {
        if let Some((sender, thread)) = self.apart.take() {
            drop(sender);
            let _ = thread.join();
        }
    }
}

/// Most ended instances deleted in one turn, so a sweep never holds the commit loop long.
const DELETIONS_PER_TURN: usize = 100;
/// How often the commit loop looks for ended instances whose retention ran out.
const SWEEP_EVERY_MS: i64 = 1_000;

impl CommitLoop {
    /// After a transaction that did not commit: the core forgets what it
    /// learned in it (its cached instances; and what it deployed, by reloading
    /// what the store holds); if the store cannot be read now, the next turn
    /// tries again before anything else runs.
    fn forget_uncommitted(&mut self) {
        self.core.take_counts();
        self.core.forget_cached();
        if !self.core.holds_uncommitted_deployment() {
            return;
        }
        self.stale = match self.store.read() {
            Ok(mut read) => self.core.reload(read.as_mut()).is_err(),
            Err(_) => true,
        };
    }

    fn run(mut self) {
        let mut stopping = false;
        while !stopping {
            let wait = self.time_to_next_timer();
            let mut batch = Vec::new();
            match self.receiver.recv_timeout(wait) {
                Ok(Message::Command(envelope)) => batch.push(*envelope),
                Ok(Message::Stop) => stopping = true,
                Ok(Message::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stopping = true,
            }
            // Everything that arrived meanwhile joins this transaction.
            while batch.len() < self.options.max_batch {
                match self.receiver.try_recv() {
                    Ok(Message::Command(envelope)) => batch.push(*envelope),
                    Ok(Message::Stop) => stopping = true,
                    Ok(Message::Wake) => {}
                    Err(_) => break,
                }
            }
            self.turn(batch);
            if let Some(cpu) = thread_cpu() {
                self.metrics.record_commit_thread_cpu(cpu);
            }
        }
        // Answer anything still queued: the server is going away.
        while let Ok(message) = self.receiver.try_recv() {
            let Message::Command(envelope) = message else { continue };
            let _ = envelope
                .reply
                .send(Err(Error::Store(store::Error::unavailable(
                    "the server is shutting down",
                ))));
        }
        // The last commits are durable, and answered, before the loop ends.
        self.answering.finish();
    }

    fn time_to_next_timer(&mut self) -> Duration {
        // A read transaction of its own cost a reader's page cache, reset
        // by every commit (3 % of the commit thread in W1 over HTTP).
        let next = match self.next_due_committed.take() {
            Some(next) => next,
            None => self.store.read().and_then(|mut read| read.next_due()).ok().flatten(),
        };
        match next {
            Some(due) => Duration::from_millis(
                u64::try_from(due - self.clock.now())
                    .unwrap_or(0)
                    .min(1_000),
            ),
            None => Duration::from_secs(1),
        }
    }

    /// One transaction: the batch's commands, then due timers; commit; answer.
    /// A batch that wrote an instance someone else wrote since it was read
    /// (another node, on a shared database) runs again on what the store
    /// holds now, a few times, before its callers get the conflict.
    fn turn(&mut self, batch: Vec<Envelope>) {
        // Writing to a damaged file can spread the damage: nothing is written
        // until the server is restarted on a sound one (readiness says why).
        if self.damage.lock().map_or(false, |damage| damage.is_some()) {
            for envelope in batch {
                let _ = envelope.reply.send(Err(Error::Store(store::Error::unavailable(
                    "the database was found damaged: writes are refused until the server is restarted on a sound file (the server's log says how to restore it)",
                ))));
            }
            return;
        }
        let started = Instant::now();
        let now = self.clock.now();
        let (inputs, replies): (Vec<(Command, Audit)>, Vec<_>) = batch.into_iter().map(|e| ((e.command, e.audit), e.reply)).unzip();
        let mut tries = 0;
        // Commands run without savepoints until one needs its writes undone.
        let mut guarded = false;
        let outcome = loop {
            let Some(attempted) = self.attempt(&inputs, now, guarded) else {
                // A command failed after it wrote: nothing of the batch is
                // kept, and it runs again with a savepoint per command.
                self.metrics.record_rerun();
                self.forget_uncommitted();
                guarded = true;
                continue;
            };
            tries += 1;
            match attempted {
                Attempt::Failed(Error::Store(error)) if error.is_conflict() && tries < MAX_CONFLICT_TRIES => {
                    // Nothing of it happened: forget what the core learned, read again, and retry.
                    self.metrics.record_conflict(true);
                    self.forget_uncommitted();
                }
                Attempt::Failed(Error::Store(error)) if error.is_conflict() => {
                    self.metrics.record_conflict(false);
                    break Attempt::Failed(Error::Store(error));
                }
                outcome => break outcome,
            }
        };
        let (results, committed, ended) = match outcome {
            Attempt::ReadOnly(results) => (results, false, false),
            Attempt::Committed(results) => {
                self.core.committed();
                self.note_write(None);
                let counts = self.core.take_counts();
                self.metrics.record_commit(results.len(), started.elapsed(), &counts);
                self.metrics.record_cache(self.core.cache_stats());
                (results, true, counts.instances_completed + counts.instances_cancelled + counts.instances_failed > 0)
            }
            Attempt::Failed(error) => {
                // Nothing of this batch happened; forget what the core learned in it.
                self.note_write(Some(&error));
                self.forget_uncommitted();
                (replies.iter().map(|_| Err(error.clone())).collect(), false, false)
            }
            Attempt::NotBegun(error) => {
                self.note_write(Some(&error));
                (replies.iter().map(|_| Err(error.clone())).collect(), false, false)
            }
        };
        // Every answer, refusals and reads too, waits for the commits before
        // it to be durable: none is given on the strength of one that is not.
        self.answering.answer(Answers { replies: replies.into_iter().zip(results).collect(), committed, ended });
    }

    /// Keeps what readiness says: a store failure (not another node's
    /// conflict) marks writes as failing, with the details in the log; a
    /// commit clears it. A damaged database stays noted ([`Handle::note_failure`]).
    fn note_write(&self, failure: Option<&Error>) {
        match failure {
            Some(Error::Store(error)) if error.is_corrupt() => note_damage(&self.damage, &error.to_string()),
            _ => {}
        }
        let Ok(mut failed) = self.write_failure.lock() else { return };
        match failure {
            None => *failed = None,
            Some(Error::Store(error)) if !error.is_conflict() => {
                if failed.is_none() {
                    eprintln!("baton: a commit failed, writes are not taken until one succeeds: {error}");
                }
                *failed = Some(Instant::now());
            }
            Some(_) => {}
        }
    }

    /// Applies `inputs` and due timers in one transaction and commits it if
    /// it wrote; `guarded`: each command in a savepoint of its own. `None`:
    /// unguarded, a command failed after it wrote, and the transaction was
    /// dropped (never when guarded).
    fn attempt(&mut self, inputs: &[(Command, Audit)], now: i64, guarded: bool) -> Option<Attempt> {
        if self.stale {
            let reloaded = self.store.read().map_err(Error::Store).and_then(|mut read| self.core.reload(read.as_mut()));
            match reloaded {
                Ok(()) => self.stale = false,
                Err(error) => return Some(Attempt::NotBegun(error)),
            }
        }
        let store = self.store.clone();
        let mut txn = match store.write() {
            Ok(txn) => txn,
            Err(error) => return Some(Attempt::NotBegun(Error::Store(error))),
        };
        // What other nodes deployed since this one last looked.
        if let Err(error) = self.core.learn_deployments(txn.as_mut()) {
            return Some(Attempt::Failed(error));
        }
        let mut results = Vec::with_capacity(inputs.len());
        let mut wrote = false;
        let mut broken: Option<Error> = None;
        // Activations run after the batch's other commands, so that a job
        // one of them creates goes to a worker already asking, in this
        // transaction: written once as created and taken in one commit, not
        // left for the worker's next poll and the next turn. The commands of
        // a batch came at once from their senders, in no order they could rely on.
        let activation = |(_, (command, _)): &(usize, &(Command, Audit))| matches!(command, Command::Activate { .. });
        let (activations, others): (Vec<_>, Vec<_>) = inputs.iter().enumerate().partition(activation);
        for (index, (command, audit)) in others.into_iter().chain(activations) {
            if let Some(error) = &broken {
                results.push((index, Err(error.clone())));
                continue;
            }
            // Each command is all or nothing within the batch, and a fault
            // in one is that command's (and its instance's) alone.
            self.core.set_audit(audit.clone());
            let run = |core: &mut Core, tx: &mut dyn WriteTxn| apply(core, tx, command.clone(), now);
            let result = if guarded {
                self.core.isolated(txn.as_mut(), now, run)
            } else {
                match self.core.unguarded(txn.as_mut(), now, run) {
                    Unguarded::Done(result) => result,
                    // Dropped, the transaction rolls back.
                    Unguarded::NeedsSavepoints => return None,
                }
            };
            if let Err(Error::Store(error)) = &result {
                // The transaction itself is in doubt: the whole batch fails below.
                broken = Some(Error::Store(error.clone()));
            }
            wrote |= may_have_written(&result);
            results.push((index, result));
        }
        // The answers in the order of the commands.
        results.sort_by_key(|(index, _)| *index);
        let results: Vec<Result<Reply, Error>> = results.into_iter().map(|(_, result)| result).collect();
        // Timers fire on no one's behalf.
        self.core.set_audit(Audit::default());
        let fired = match broken {
            Some(error) => Err(error),
            None => {
                let limit = self.options.max_timers_per_batch;
                match self.core.isolated(txn.as_mut(), now, |core, tx| core.fire_due(tx, now, limit)) {
                    // A timer that faulted is off the schedule now, with its incident: commit that.
                    Err(Error::Fault(_)) => Ok(1),
                    other => other,
                }
            }
        };
        // Ended instances whose retention ran out, a few at a time (and a
        // turn later again while more are due).
        let fired = match fired {
            Ok(fired) if now >= self.next_sweep => {
                match self.core.isolated(txn.as_mut(), now, |core, tx| core.delete_expired(tx, now, DELETIONS_PER_TURN)) {
                    Ok(deleted) => {
                        self.next_sweep = if deleted == DELETIONS_PER_TURN { now } else { now + SWEEP_EVERY_MS };
                        Ok(fired + deleted)
                    }
                    Err(error) => Err(error),
                }
            }
            other => other,
        };
        if !wrote && matches!(fired, Ok(0)) {
            // Everything was read-only (or refused and rolled back).
            // Nothing changed (polls that found no job, ticks): no commit, and no
            // one to wake, or every empty poll would wake every other poller.
            drop(txn);
            return Some(Attempt::ReadOnly(results));
        }
        // What is due next, with this turn's timers: read on the writer,
        // whose pages are warm, and trusted only once the turn commits.
        let next_due = if fired.is_ok() { txn.next_due().ok() } else { None };
        let committed = match fired {
            Ok(_) => txn.commit().map_err(Error::Store),
            Err(error) => Err(error),
        };
        self.next_due_committed = if committed.is_ok() { next_due } else { None };
        Some(match committed {
            Ok(()) => Attempt::Committed(results),
            Err(error) => Attempt::Failed(error),
        })
    }
}

/// Applies one command to the core, in the caller's transaction.
fn apply(
    core: &mut Core,
    tx: &mut dyn WriteTxn,
    command: Command,
    now: i64,
) -> Result<Reply, Error> {
    match command {
        Command::Deploy { tenant, files } => {
            core.deploy(tx, &tenant, &files, now).map(Reply::Deployed)
        }
        Command::DeployImported { tenant, files } => core.deploy_imported(tx, &tenant, &files, now).map(Reply::Deployed),
        Command::Start(start) => core.start(tx, start, now).map(Reply::Started),
        Command::Evaluate { tenant, decision_id, version, variables } => {
            core.evaluate_decision(&tenant, &decision_id, version, &variables, now).map(Reply::Decided)
        }
        Command::Instance { instance_id, input } => {
            core.check_reach(tx, &instance_id, "instance", &instance_id)?;
            core.input(tx, &instance_id, input, now)
                .map(|()| Reply::Done)
        }
        Command::Activate {
            job_type,
            worker,
            max,
            lease_ms,
        } => core
            .activate_jobs(tx, &job_type, &worker, max, lease_ms, now)
            .map(Reply::Activated),
        Command::CompleteJob {
            key,
            claim,
            variables,
            result,
        } => {
            let job = core.job_for(tx, &key, &claim, now)?;
            core.note_override(&claim);
            core.input(
                tx,
                &job.instance_id,
                Input::CompleteJob {
                    job: job.local_key,
                    variables,
                    result,
                },
                now,
            )
            .map(|()| Reply::Done)
        }
        Command::FailJob {
            key,
            claim,
            retries,
            message,
            backoff_ms,
            variables,
        } => {
            let job = core.job_for(tx, &key, &claim, now)?;
            core.note_override(&claim);
            let input = Input::FailJob {
                job: job.local_key,
                retries,
                message,
                backoff_ms,
                variables,
            };
            core.input(tx, &job.instance_id, input, now)
                .map(|()| Reply::Done)
        }
        Command::ThrowError {
            key,
            claim,
            code,
            message,
            variables,
        } => {
            let job = core.job_for(tx, &key, &claim, now)?;
            core.note_override(&claim);
            let input = Input::ThrowError {
                job: job.local_key,
                code,
                message,
                variables,
            };
            core.input(tx, &job.instance_id, input, now)
                .map(|()| Reply::Done)
        }
        Command::UpdateRetries { key, retries } => {
            let job = core.job_for(
                tx,
                &key,
                &Claim {
                    override_lease: true,
                    ..Claim::default()
                },
                now,
            )?;
            core.input(
                tx,
                &job.instance_id,
                Input::UpdateRetries {
                    job: job.local_key,
                    retries,
                },
                now,
            )
            .map(|()| Reply::Done)
        }
        Command::ExtendLease { key, lease_ms } => core.extend_lease(tx, &key, lease_ms, now).map(|()| Reply::Done),
        Command::Task { key, action } => {
            let task = core.reached(tx.task(&key)?, |task| &task.tenant, "task", &key)?;
            let local = task.local_key;
            let input = match action {
                TaskAction::Complete(variables) => Input::CompleteUserTask {
                    task: local,
                    variables,
                },
                TaskAction::Claim(assignee) => Input::AssignUserTask {
                    task: local,
                    assignee: Some(assignee),
                    claim: true,
                },
                TaskAction::Unclaim => Input::AssignUserTask {
                    task: local,
                    assignee: None,
                    claim: false,
                },
                TaskAction::Assign(assignee) => Input::AssignUserTask {
                    task: local,
                    assignee: Some(assignee),
                    claim: false,
                },
                TaskAction::Update(changes) => Input::UpdateUserTask {
                    task: local,
                    changes,
                },
            };
            core.input(tx, &task.instance_id, input, now)
                .map(|()| Reply::Done)
        }
        Command::Publish(publish) => core.publish(tx, publish, now).map(Reply::Published),
        Command::Broadcast {
            tenant,
            name,
            variables,
        } => core
            .broadcast(tx, &tenant, &name, variables, now)
            .map(|()| Reply::Done),
        Command::EvaluateConditionals { tenant, workflow, variables } => core
            .evaluate_conditionals(tx, &tenant, workflow.as_deref(), variables, now)
            .map(Reply::ConditionsEvaluated),
        Command::ResolveIncident { key } => {
            let incident = core.reached(tx.incident(&key)?, |incident| &incident.tenant, "incident", &key)?;
            core.input(
                tx,
                &incident.instance_id,
                Input::ResolveIncident {
                    incident: incident.local_key,
                },
                now,
            )
            .map(|()| Reply::Done)
        }
        Command::PutToken(row) => {
            tx.apply(store::Write::PutToken(row))?;
            Ok(Reply::Done)
        }
        Command::DeleteInstance { instance_id } => core.delete_instance(tx, &instance_id).map(|()| Reply::Done),
        Command::KeepInstance { instance_id, until } => core.keep_instance(tx, &instance_id, until).map(|()| Reply::Done),
        Command::Tick => Ok(Reply::Done),
    }
}

/// Notes in `damage` what the store said the first time it found the database damaged.
fn note_damage(damage: &std::sync::Mutex<Option<String>>, what: &str) {
    let Ok(mut damage) = damage.lock() else { return };
    if damage.is_none() {
        eprintln!("baton: the store says the database is damaged; the server is not ready until it is restarted on a sound file: {what}");
        *damage = Some(what.to_string());
    }
}
