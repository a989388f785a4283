//! The runtime's logic, independent of threads and clocks: every command runs
//! against a store transaction at a given `now`, drives the engine, and turns
//! the engine's effects into rows and into further engine inputs (messages
//! correlated to waiting instances, signals broadcast, child instances started
//! and their parents told, timers fired). The service wraps it in a commit
//! loop; `baton test` wraps it in a virtual clock.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bpmn::{Kind, Trigger, Workflow};
use engine::{
    Effect, FaultSite, Input, InstanceState, JobState, ParentRef, RejectionCode, StartOptions,
    Status, SubscriptionKind as EngineSubscription, Variables,
};
use store::{
    HistoryRow, IncidentRow, InstanceRow, JobRow, MessageRow, StartTimerRow, SubscriptionKind,
    SubscriptionRow, TaskRow, TimerRow, WorkflowRow, Write, WriteTxn,
};

use crate::cache::{InstanceCache, Loaded};
use crate::metrics::Counts;
use crate::model::DeployedModel;
use crate::{Error, Fault, FaultCause};

/// Most instances one command may fault (each gets an incident and the
/// command runs again without it) before the command gives up.
pub const MAX_FAULTS_PER_COMMAND: usize = 8;

/// Most instances one command may start through call activities, message and signal start events.
pub const MAX_STARTS_PER_COMMAND: usize = 10_000;

/// One deployed version of a workflow.
#[derive(Clone)]
pub struct Deployed {
    /// The tenant it was deployed to; its instances belong to it.
    pub tenant: String,
    /// Its model, compiled the first time it is needed.
    pub model: Arc<DeployedModel>,
    pub version: u32,
    pub deployment: u64,
}

impl Deployed {
    pub fn process_id(&self) -> &str {
        self.model.process_id()
    }

    /// The compiled workflow (compiled now if nothing needed it before). A
    /// stored model that no longer compiles is a fault of the command that
    /// needed it: nothing of that command is written.
    pub fn workflow(&self) -> Result<Arc<Workflow>, Error> {
        self.model.workflow().map_err(|message| Error::Fault(Fault { instance_id: None, site: FaultSite::Instance, message, cause: FaultCause::Defect }))
    }
}

/// The compiled workflows by tenant, process id and version, shared read-only with
/// the API (to name elements and read waits without parsing XML per request).
#[derive(Clone, Default)]
pub struct Registry(Arc<RwLock<Published>>);

#[derive(Default)]
struct Published {
    by_version: BTreeMap<(String, String, u32), Arc<DeployedModel>>,
    /// Each deployment's workflows, by tenant and process id: a workflow
    /// version's place in its deployment is its index here.
    by_deployment: BTreeMap<u64, Vec<(String, String, u32)>>,
    /// Where each version sits in `by_deployment`.
    places: BTreeMap<(String, String, u32), (u64, u32)>,
}

/// One deployed workflow version as the registry lists it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub tenant: String,
    pub process_id: String,
    pub version: u32,
    pub deployment: u64,
    /// Its index among its deployment's workflows (by tenant and process id).
    pub place: u32,
    pub model: Arc<DeployedModel>,
}

/// A tenant's process id: the key versions count under.
type WorkflowKey = (String, String);

impl Registry {
    fn published(&self) -> std::sync::RwLockReadGuard<'_, Published> {
        // A writer that panicked left a complete map behind: each update replaces it whole.
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A version's compiled workflow (compiled now, on this thread, if nothing needed it before).
    pub fn get(&self, tenant: &str, process_id: &str, version: u32) -> Option<Arc<Workflow>> {
        let model = self.published().by_version.get(&(tenant.to_string(), process_id.to_string(), version)).cloned()?;
        model.workflow().ok()
    }

    /// A workflow version with its deployment and its place in it.
    pub fn find(&self, tenant: &str, process_id: &str, version: u32) -> Option<Listed> {
        let published = self.published();
        let key = (tenant.to_string(), process_id.to_string(), version);
        let (deployment, place) = *published.places.get(&key)?;
        let model = published.by_version.get(&key)?.clone();
        Some(Listed { tenant: key.0, process_id: key.1, version, deployment, place, model })
    }

    /// The workflow version at `place` in `deployment`.
    pub fn at(&self, deployment: u64, place: u32) -> Option<Listed> {
        let (tenant, process_id, version) = {
            let published = self.published();
            published.by_deployment.get(&deployment)?.get(place as usize)?.clone()
        };
        self.find(&tenant, &process_id, version)
    }

    /// Compiles the latest version of each workflow that is not compiled
    /// yet; returns how many compiled. A service runs it on a thread of its
    /// own when it starts, so the first start of each workflow after a
    /// restart compiles nothing on the commit loop; an older version is
    /// compiled when an instance of it is first stepped.
    pub fn compile_latest(&self) -> usize {
        let latest: Vec<Arc<DeployedModel>> = {
            let published = self.published();
            // Versions in ascending order: the last of each workflow stays.
            let mut latest: BTreeMap<(&str, &str), &Arc<DeployedModel>> = BTreeMap::new();
            for ((tenant, process_id, _), model) in &published.by_version {
                latest.insert((tenant, process_id), model);
            }
            latest.into_values().filter(|model| !model.is_compiled()).cloned().collect()
        };
        latest.iter().filter(|model| model.workflow().is_ok()).count()
    }

    /// Every deployed version, by tenant, process id and version.
    pub fn list(&self) -> Vec<Listed> {
        let published = self.published();
        published
            .by_version
            .iter()
            .filter_map(|((tenant, process_id, version), model)| {
                let &(deployment, place) = published.places.get(&(tenant.clone(), process_id.clone(), *version))?;
                Some(Listed { tenant: tenant.clone(), process_id: process_id.clone(), version: *version, deployment, place, model: model.clone() })
            })
            .collect()
    }

    fn publish(&self, workflows: &BTreeMap<WorkflowKey, Vec<Deployed>>) {
        let mut published = Published::default();
        for d in workflows.values().flatten() {
            let key = (d.tenant.clone(), d.process_id().to_string(), d.version);
            published.by_version.insert(key.clone(), d.model.clone());
            published.by_deployment.entry(d.deployment).or_default().push(key);
        }
        for (deployment, keys) in &mut published.by_deployment {
            keys.sort();
            for (place, key) in keys.iter().enumerate() {
                published.places.insert(key.clone(), (*deployment, place as u32));
            }
        }
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = published;
    }
}

/// Makes instance ids: sequential in tests, UUID v7 in the server.
pub trait IdSource: Send {
    fn next_instance_id(&mut self) -> String;
    /// A token for a job's lease: unguessable in the server.
    fn next_lease(&mut self) -> String;
}

/// `i1`, `i2`, ...: deterministic, for tests and `baton test`.
#[derive(Default)]
pub struct SequentialIds {
    next: u64,
    leases: u64,
}

impl IdSource for SequentialIds {
    fn next_instance_id(&mut self) -> String {
        self.next += 1;
        format!("i{}", self.next)
    }

    fn next_lease(&mut self) -> String {
        self.leases += 1;
        format!("lease-{}", self.leases)
    }
}

/// UUID v7 (time-ordered) instance ids, for the server.
pub struct UuidIds;

impl IdSource for UuidIds {
    fn next_instance_id(&mut self) -> String {
        uuid::Uuid::now_v7().to_string()
    }

    fn next_lease(&mut self) -> String {
        // 122 random bits.
        uuid::Uuid::new_v4().simple().to_string()
    }
}

/// What a command run without a savepoint came to ([`Core::unguarded`]).
#[derive(Debug)]
pub enum Unguarded<T> {
    /// Its answer; the transaction holds its writes, if it made any.
    Done(Result<T, Error>),
    /// It failed after writing: the transaction must not commit, and the
    /// batch runs again with a savepoint for each command.
    NeedsSavepoints,
}

/// How a worker (or an operator) claims the right to finish a job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claim {
    /// The worker's name, as it activated the job.
    pub worker: Option<String>,
    /// The lease token activation returned.
    pub lease: Option<String>,
    /// The job's key alone proves the right to finish it, as in Camunda 8, whose
    /// clients know no lease (the `/v2` API); not recorded as an override.
    pub key_holds: bool,
    /// Finish the job whoever holds it (an operator's explicit override; recorded in history).
    pub override_lease: bool,
    /// The only job types the claimant may finish (a worker's token may list them); `None`: any.
    pub job_types: Option<Vec<String>>,
}

impl Claim {
    /// A claim by a worker with its lease.
    pub fn lease(worker: &str, lease: &str) -> Claim {
        Claim {
            worker: Some(worker.to_string()),
            lease: Some(lease.to_string()),
            ..Claim::default()
        }
    }
}

/// Files of a deployment, read and checked: the work of a deployment that
/// grows with the size of its models, done before it reaches the commit loop.
#[derive(Debug, Default)]
pub struct Imported {
    /// Each BPMN file's name, XML and executable workflows.
    workflows: Vec<(String, String, Vec<Arc<Workflow>>)>,
    /// Each form file's name, JSON, form id and version tag.
    forms: Vec<(String, String, String, Option<String>)>,
    /// Each DMN file's name, definitions and XML.
    decisions: Vec<(String, Arc<dmn::Definitions>, String)>,
    warnings: Vec<(String, bpmn::Diagnostic)>,
}

impl Imported {
    /// Reads every file, all or nothing: every problem of every file, or what they hold.
    pub fn read(files: &[(String, String)]) -> Result<Imported, Error> {
        let mut imported = Imported::default();
        let mut problems = Vec::new();
        for (name, xml) in files {
            if crate::decisions::is_dmn_file(name) {
                match dmn::import(xml) {
                    Ok(definitions) => imported.decisions.push((name.clone(), Arc::new(definitions), xml.clone())),
                    Err(diagnostics) => problems.extend(
                        diagnostics.into_iter().map(|d| (name.clone(), bpmn::Diagnostic::error(&d.code, d.element.as_deref(), (0, 0), d.message))),
                    ),
                }
                continue;
            }
            if crate::forms::is_form_file(name) {
                match crate::forms::read_form(xml) {
                    Ok((form_id, version_tag)) => imported.forms.push((name.clone(), xml.clone(), form_id, version_tag)),
                    Err(diagnostic) => problems.push((name.clone(), diagnostic)),
                }
                continue;
            }
            let import = bpmn::import(xml);
            imported.warnings.extend(
                import
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == bpmn::Severity::Warning)
                    .map(|d| (name.clone(), d.clone())),
            );
            match import.into_workflows() {
                Ok(workflows) => {
                    for workflow in &workflows {
                        let retention = workflow.elements[Workflow::ROOT].properties.get(RETENTION_PROPERTY);
                        if let Some(Err(why)) = retention.map(|value| retention_ms(value)) {
                            let message = format!("the process property {RETENTION_PROPERTY}: {why}");
                            problems.push((name.clone(), bpmn::Diagnostic::error("retention-invalid", Some(&workflow.process_id), (0, 0), message)));
                        }
                    }
                    imported.workflows.push((name.clone(), xml.clone(), workflows.into_iter().map(Arc::new).collect()))
                }
                Err(diagnostics) => problems.extend(diagnostics.into_iter().map(|d| (name.clone(), d))),
            }
        }
        if problems.is_empty() {
            Ok(imported)
        } else {
            Err(Error::Deploy(problems))
        }
    }
}

/// What a deployment did: each process with its version and whether that
/// version is new, and the warnings of the files, by file name.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// This deployment's number (the next deployment's, when nothing in it was new).
    pub deployment: u64,
    pub workflows: Vec<(String, u32, bool)>,
    /// The file each workflow and form came from, by its id.
    pub resources: BTreeMap<String, String>,
    /// Each form file's id, version and whether that version is new.
    pub forms: Vec<(String, u32, bool)>,
    /// Each DMN decision's id, version and whether that version is new.
    pub decisions: Vec<(String, u32, bool)>,
    pub warnings: Vec<(String, bpmn::Diagnostic)>,
}

/// What a publication did: its sequence number, and the instances that
/// received it at once (waiting for it, or started by it; at most one per workflow).
#[derive(Clone, Debug, PartialEq)]
pub struct Publication {
    pub seq: u64,
    pub receivers: Vec<String>,
}

/// Who made a command, and why (for operator actions): kept on the
/// instance (`created_by`, `updated_by`) and on the history entries the
/// command wrote. `actor: None` is the engine itself (a timer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Audit {
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// Put the reason on every history entry the command writes, not only on operator actions
    /// (a job finished by overriding its worker's lease).
    pub reason_on_every_entry: bool,
    /// The tenants the caller reaches (`None`: every one). A command aimed at
    /// an instance, job, task or incident of another tenant is refused as if
    /// it did not exist.
    pub tenants: store::Tenants,
}

/// What a start command asks for.
#[derive(Clone, Debug)]
pub struct StartCommand {
    pub tenant: String,
    pub process_id: String,
    pub version: Option<u32>,
    pub variables: Variables,
    pub business_key: Option<String>,
    /// Makes the start idempotent within the tenant: the same id returns the same instance.
    pub request_id: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Default for StartCommand {
    /// A start of nothing yet, in the default tenant.
    fn default() -> StartCommand {
        StartCommand {
            tenant: store::DEFAULT_TENANT.to_string(),
            process_id: String::new(),
            version: None,
            variables: Variables::new(),
            business_key: None,
            request_id: None,
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PublishCommand {
    /// Only the tenant's instances and workflows receive it.
    pub tenant: String,
    pub name: String,
    pub correlation_key: String,
    pub variables: Variables,
    pub ttl_ms: i64,
    pub message_id: Option<String>,
}

impl Default for PublishCommand {
    /// A publication of nothing yet, in the default tenant.
    fn default() -> PublishCommand {
        PublishCommand {
            tenant: store::DEFAULT_TENANT.to_string(),
            name: String::new(),
            correlation_key: String::new(),
            variables: Variables::new(),
            ttl_ms: 0,
            message_id: None,
        }
    }
}

/// A job handed to a worker, with what it needs to do the work.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ActivatedJob {
    pub job: JobRow,
    pub variables: Variables,
    pub headers: BTreeMap<String, String>,
    /// The element's `zeebe:properties`.
    pub properties: BTreeMap<String, String>,
    /// For an execution listener's job: `start` or `end`.
    pub listener: Option<bpmn::ListenerEvent>,
    /// Its instance's number ([`store::InstanceRow::number`]) and workflow version.
    pub instance_number: u64,
    pub version: u32,
    /// The local key of the element instance it works for.
    pub element_instance: u64,
}

/// The runtime's knowledge that is not in the store: the compiled workflows.
pub struct Core {
    workflows: BTreeMap<WorkflowKey, Vec<Deployed>>,
    /// Instances started from now on raise an incident for an error nobody catches, as Camunda 8 does (else they fail).
    pub uncaught_errors_incident: bool,
    /// How long an ended instance is kept ([`crate::Options::retention_ms`]).
    pub retention_ms: Option<i64>,
    /// Other cores write to the same store (several nodes on one database):
    /// a cached instance is used only after the store confirms it still holds
    /// that version (one lookup by key), since another core may have moved it on.
    pub shared_store: bool,
    /// Cached copies found stale (another core had written the instance) and read again.
    stale_copies: std::cell::Cell<u64>,
    /// The deployed DMN decisions, compiled.
    decisions: crate::decisions::Decisions,
    ids: Box<dyn IdSource>,
    last_deployment: u64,
    /// Workflow versions compiled from their stored XML so far ([`Core::workflows_compiled`]).
    compilations: Arc<AtomicU64>,
    /// A deployment since the last commit: what it compiled is not in the store yet.
    deployed_uncommitted: bool,
    last_message: u64,
    /// What commands did since [`Core::take_counts`] was last called.
    counts: Counts,
    /// Decoded states of running instances as the store holds them (see [`crate::cache`]).
    cache: RefCell<InstanceCache>,
    /// Who makes the command being applied ([`Core::set_audit`]).
    audit: Audit,
    registry: Registry,
    #[cfg(feature = "test-util")]
    inject_panic: Option<crate::service::PanicInjection>,
}

/// The id of an instance about to start, and where it came from.
enum NewId {
    /// Drawn from the core's [`IdSource`] for this start.
    Generated(String),
    /// Made by the engine from its caller's (a called instance's).
    Derived(String),
}

/// The instances one command has touched, kept in memory until it is done.
struct Session<'t> {
    tx: &'t mut dyn WriteTxn,
    now: i64,
    loaded: BTreeMap<String, Loaded>,
    pending: VecDeque<(String, Effect)>,
    starts: usize,
    counts: Counts,
    audit: Audit,
    /// What instances started in this session do with an error nobody catches.
    uncaught_errors_incident: bool,
    /// The last instance number given, once this session has started one
    /// (read from the store first: it sees what earlier commands wrote).
    last_number: Option<u64>,
}

impl Core {
    /// Reads every deployed workflow version from the store; each is
    /// compiled when something first needs it ([`DeployedModel`]).
    pub fn load(tx: &mut dyn store::ReadTxn, ids: Box<dyn IdSource>) -> Result<Core, Error> {
        let compilations = Arc::default();
        let (workflows, last_deployment) = read_all(tx, &BTreeMap::new(), &compilations)?;
        let (decisions, decided) = crate::decisions::Decisions::load(tx)?;
        let last_deployment = last_deployment.max(decided);
        let cache = RefCell::new(InstanceCache::new(crate::cache::DEFAULT_CAPACITY));
        Ok(Core {
            workflows,
            uncaught_errors_incident: false,
            retention_ms: None,
            shared_store: false,
            stale_copies: std::cell::Cell::new(0),
            decisions,
            ids,
            last_deployment,
            compilations,
            deployed_uncommitted: false,
            last_message: 0,
            counts: Counts::default(),
            cache,
            audit: Audit::default(),
            registry: Registry::default(),
            #[cfg(feature = "test-util")]
            inject_panic: None,
        })
        .inspect(|core| core.registry.publish(&core.workflows))
    }

    /// Evaluates the tenant's decision (its latest version, or `version`).
    pub fn evaluate_decision(&self, tenant: &str, decision_id: &str, version: Option<u32>, variables: &Variables, now: i64) -> Result<engine::DecisionOutcome, Error> {
        if !self.reaches(tenant) {
            return Err(Error::Forbidden(format!("the caller does not reach tenant '{tenant}'")));
        }
        let decision = match version {
            None => self.decisions.latest(tenant, decision_id),
            Some(version) => self.decisions.version(tenant, decision_id, version),
        }
        .ok_or_else(|| Error::NotFound {
            what: "decision",
            id: match version {
                Some(v) => format!("{decision_id} v{v} in tenant {tenant}"),
                None => format!("{decision_id} in tenant {tenant}"),
            },
        })?;
        crate::decisions::evaluate(decision, variables, now).map_err(Error::DecisionFailed)
    }

    /// The compiled workflows, as the API reads them.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Says who makes the commands applied from now on, and why.
    pub fn set_audit(&mut self, audit: Audit) {
        self.audit = audit;
    }

    /// A job finished over its worker's lease: every history entry of the command says so.
    pub fn note_override(&mut self, claim: &Claim) {
        if claim.override_lease {
            let why = self
                .audit
                .reason
                .take()
                .map_or(String::new(), |r| format!(": {r}"));
            self.audit.reason = Some(format!("the worker's lease was overridden{why}"));
            self.audit.reason_on_every_entry = true;
        }
    }

    /// Makes the steps `injection` picks panic inside the engine call, as a defect would.
    #[cfg(feature = "test-util")]
    pub fn inject_panic(&mut self, injection: Option<crate::service::PanicInjection>) {
        self.inject_panic = injection;
    }

    /// How many decoded instances to keep between commands (0: none).
    pub fn set_cache_capacity(&mut self, capacity: usize) {
        self.cache = RefCell::new(InstanceCache::new(capacity));
    }

    /// Instances in the cache, and its (hits, misses) so far.
    pub fn cache_stats(&self) -> (usize, (u64, u64)) {
        let cache = self.cache.borrow();
        (cache.len(), cache.hits_and_misses())
    }

    /// How many cached copies were found stale and read again ([`Core::shared_store`]).
    pub fn stale_copies(&self) -> u64 {
        self.stale_copies.get()
    }

    /// Forgets every cached instance (a transaction that may have written them did not commit).
    pub fn forget_cached(&mut self) {
        self.cache.get_mut().clear();
    }

    /// What it learned since the last commit is in the store now.
    pub fn committed(&mut self) {
        self.deployed_uncommitted = false;
    }

    /// Whether it compiled a deployment that did not commit ([`Core::reload`] forgets it).
    pub fn holds_uncommitted_deployment(&self) -> bool {
        self.deployed_uncommitted
    }

    /// When other cores write to the store: compiles what they deployed since
    /// this core last looked (one lookup when they deployed nothing). What
    /// it compiled before is kept: everything it holds is committed (an
    /// uncommitted deployment is forgotten by [`Core::reload`] first), so a
    /// version of the same deployment is the same model.
    pub fn learn_deployments(&mut self, tx: &mut dyn store::ReadTxn) -> Result<(), Error> {
        if self.shared_store && tx.last_deployment()? > self.last_deployment {
            let known = self
                .workflows
                .values()
                .flatten()
                .map(|d| ((d.tenant.clone(), d.process_id().to_string(), d.version, d.deployment), d.model.clone()))
                .collect();
            self.read_stored(tx, &known)?;
        }
        Ok(())
    }

    /// Workflow versions compiled from their stored XML so far: each once,
    /// when something first needed it (what this core deployed itself was
    /// compiled before it was deployed, and is not counted).
    pub fn workflows_compiled(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Reads every workflow version and decision the store holds, in place
    /// of what it had; the versions in `known` are taken from there, with
    /// whatever was compiled of them.
    fn read_stored(&mut self, tx: &mut dyn store::ReadTxn, known: &BTreeMap<CompiledKey, Arc<DeployedModel>>) -> Result<(), Error> {
        (self.workflows, self.last_deployment) = read_all(tx, known, &self.compilations)?;
        let (decisions, decided) = crate::decisions::Decisions::load(tx)?;
        self.decisions = decisions;
        self.last_deployment = self.last_deployment.max(decided);
        self.registry.publish(&self.workflows);
        Ok(())
    }

    /// After a transaction that did not commit: forgets the workflows it
    /// deployed and every cached instance (the cache may hold its writes).
    pub fn reload(&mut self, tx: &mut dyn store::ReadTxn) -> Result<(), Error> {
        self.cache.get_mut().clear();
        self.deployed_uncommitted = false;
        // Nothing kept: another core may have committed the deployment number this one gave up.
        self.read_stored(tx, &BTreeMap::new())
    }

    /// Runs one command without a savepoint, where the store counts its
    /// changes ([`store::WriteTxn::changes`]): a savepoint copies every page
    /// the command touches, a quarter of the commit thread on SQLite, and is
    /// needed only to undo a command that failed after it wrote. A command
    /// that succeeds, or fails having written nothing, stands as it is. One
    /// that failed after writing, faulted or panicked leaves the transaction
    /// with writes that must not commit: the answer is
    /// [`Unguarded::NeedsSavepoints`], and the caller abandons the
    /// transaction and runs the batch again, each command in a savepoint
    /// ([`Core::isolated`]). A store that cannot count runs it there at once.
    pub fn unguarded<T>(
        &mut self,
        tx: &mut dyn WriteTxn,
        now: i64,
        mut run: impl FnMut(&mut Core, &mut dyn WriteTxn) -> Result<T, Error>,
    ) -> Unguarded<T> {
        let Some(before) = tx.changes() else {
            return Unguarded::Done(self.isolated(tx, now, run));
        };
        match catch_unwind(AssertUnwindSafe(|| run(self, tx))) {
            Ok(Ok(value)) => Unguarded::Done(Ok(value)),
            // The transaction is in doubt: the whole batch fails anyway.
            Ok(Err(error @ Error::Store(_))) => Unguarded::Done(Err(error)),
            // A fault is recorded on its instance, in a savepoint.
            Ok(Err(Error::Fault(_))) => Unguarded::NeedsSavepoints,
            Ok(Err(error)) if tx.changes() == Some(before) => Unguarded::Done(Err(error)),
            Ok(Err(_)) => Unguarded::NeedsSavepoints,
            Err(_) => {
                // It unwound past `command`, which could not forget what it wrote.
                self.cache.get_mut().forget_written();
                Unguarded::NeedsSavepoints
            }
        }
    }

    /// Runs one command in a savepoint of `tx`, all or nothing, and contains
    /// a failure inside Baton itself: a command that panics (in the engine or
    /// here) is rolled back whole, the instance whose step failed gets an
    /// `engine_fault` incident (written in `tx`), and the command runs again;
    /// that instance now refuses inputs, so a broadcast, a publication or a
    /// batch of due timers still reaches every other instance. The answer is
    /// the fault when the command itself was for the faulted instance.
    ///
    /// On any error the command's writes are undone; what stays in `tx` is
    /// only the fault incidents, so the caller commits it either way.
    pub fn isolated<T>(
        &mut self,
        tx: &mut dyn WriteTxn,
        now: i64,
        mut run: impl FnMut(&mut Core, &mut dyn WriteTxn) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut first_fault: Option<Fault> = None;
        let mut faults = 0;
        loop {
            tx.savepoint()?;
            let result = match catch_unwind(AssertUnwindSafe(|| run(self, tx))) {
                Ok(result) => result,
                Err(payload) => {
                    // It unwound past `command`, which could not forget what it wrote.
                    self.cache.get_mut().forget_written();
                    Err(Error::Fault(Fault::from_panic(
                        None,
                        FaultSite::Instance,
                        payload.as_ref(),
                    )))
                }
            };
            let error = match result {
                Ok(value) => {
                    tx.release_savepoint()?;
                    return Ok(value);
                }
                Err(error) => error,
            };
            tx.rollback_to_savepoint()?;
            match (error, first_fault.take()) {
                (Error::Fault(fault), first) => {
                    let recorded = match &fault.instance_id {
                        Some(id) => self.record_fault(tx, id, &fault, now)?,
                        None => false,
                    };
                    let first = first.unwrap_or(fault);
                    faults += 1;
                    if !recorded || faults > MAX_FAULTS_PER_COMMAND {
                        return Err(Error::Fault(first));
                    }
                    first_fault = Some(first);
                }
                // The command was for the instance that just faulted.
                (Error::Rejected(rejection), Some(first))
                    if rejection.code == RejectionCode::InstanceFaulted =>
                {
                    return Err(Error::Fault(first))
                }
                (error, _) => return Err(error),
            }
        }
    }

    /// Gives an instance an `engine_fault` incident for a step that failed
    /// inside Baton. Returns false when there is no such instance to blame
    /// (it was being started by the command that failed).
    fn record_fault(
        &mut self,
        tx: &mut dyn WriteTxn,
        id: &str,
        fault: &Fault,
        now: i64,
    ) -> Result<bool, Error> {
        let mut session = Session::new(tx, now, Audit::default()).with_uncaught_errors_incident(self.uncaught_errors_incident);
        let loaded = match session.load(self, id) {
            Ok(loaded) => loaded,
            Err(Error::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error),
        };
        if loaded.state.status.is_ended() {
            return Ok(false);
        }
        let effects = match fault.cause {
            FaultCause::Defect => {
                let message = format!("Baton failed while applying an input here (a defect; the input was not applied): {}", fault.message);
                engine::fault(&mut loaded.state, fault.site, message, now)
            }
            FaultCause::VariablesTooLarge => {
                let message = format!("an input was not applied: {}", fault.message);
                engine::variables_too_large(&mut loaded.state, fault.site, message, now)
            }
        };
        loaded.changed = true;
        session.record(id, effects, false)?;
        self.settle(session)?;
        Ok(true)
    }

    /// Runs a command that may write instances; if it fails (and its writes
    /// are rolled back), the cache forgets what it wrote.
    fn command<T>(&mut self, run: impl FnOnce(&mut Core) -> Result<T, Error>) -> Result<T, Error> {
        self.cache.get_mut().begin_command();
        let result = run(self);
        if result.is_err() {
            self.cache.get_mut().forget_written();
        }
        result
    }

    /// What the commands since the last call did (started, ended, jobs activated and completed).
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    pub fn workflows(&self) -> impl Iterator<Item = &Deployed> {
        self.workflows.values().flatten()
    }

    fn versions(&self, tenant: &str, process_id: &str) -> Option<&Vec<Deployed>> {
        self.workflows
            .get(&(tenant.to_string(), process_id.to_string()))
    }

    pub fn deployed(&self, tenant: &str, process_id: &str, version: u32) -> Option<&Deployed> {
        // Versions are kept in order: a step's lookup costs the same however many there are.
        let versions = self.versions(tenant, process_id)?;
        versions.binary_search_by_key(&version, |d| d.version).ok().map(|at| &versions[at])
    }

    fn latest(&self, tenant: &str, process_id: &str) -> Option<&Deployed> {
        self.versions(tenant, process_id)?.last()
    }

    /// Whether the caller of the command being applied reaches `tenant`.
    pub fn reaches(&self, tenant: &str) -> bool {
        store::reaches(&self.audit.tenants, tenant)
    }

    /// `row`, found by `key`, if the caller reaches its tenant: another
    /// tenant's is refused exactly as an absent one, so no later check (a
    /// lease, a job type) can tell it exists.
    pub fn reached<T>(&self, row: Option<T>, tenant: impl Fn(&T) -> &str, what: &'static str, key: &str) -> Result<T, Error> {
        row.filter(|row| self.reaches(tenant(row))).ok_or_else(|| Error::NotFound { what, id: key.to_string() })
    }

    /// Refuses, as if it did not exist, a command aimed at an instance (or
    /// its job, task, incident or timer: `what` `id`) outside the tenants the
    /// command's caller reaches.
    pub fn check_reach(
        &mut self,
        tx: &mut dyn WriteTxn,
        instance_id: &str,
        what: &'static str,
        id: &str,
    ) -> Result<(), Error> {
        if self.audit.tenants.is_none() {
            return Ok(());
        }
        let cached = self.cache.get_mut().take(instance_id);
        let loaded = match cached {
            Some(loaded) => loaded,
            None => load_from_store(self, tx, instance_id).map_err(|error| match error {
                Error::NotFound { .. } => Error::NotFound {
                    what,
                    id: id.to_string(),
                },
                other => other,
            })?,
        };
        let reached = self.reaches(&loaded.deployed.tenant);
        self.cache
            .get_mut()
            .put(instance_id.to_string(), loaded, false);
        if reached {
            Ok(())
        } else {
            Err(Error::NotFound {
                what,
                id: id.to_string(),
            })
        }
    }

    /// Deploys the executable processes of BPMN files, and the forms of
    /// `*.form` files, to a tenant, all or nothing. A process whose XML (a form
    /// whose JSON) is unchanged keeps its version.
    pub fn deploy(
        &mut self,
        tx: &mut dyn WriteTxn,
        tenant: &str,
        files: &[(String, String)],
        now: i64,
    ) -> Result<Deployment, Error> {
        self.deploy_imported(tx, tenant, &Imported::read(files)?, now)
    }

    /// Deploys files already read ([`Imported::read`]): what is left is only
    /// what must be serial, giving versions and writing rows.
    pub fn deploy_imported(
        &mut self,
        tx: &mut dyn WriteTxn,
        tenant: &str,
        imported: &Imported,
        now: i64,
    ) -> Result<Deployment, Error> {
        let Imported { workflows: imported, forms, decisions: dmn_files, warnings } = imported;
        // Versions and the deployment key are read, then given: one deployment at a time.
        tx.lock(&store::Lock::Deployments)?;
        self.learn_deployments(tx)?;
        self.last_deployment += 1;
        self.deployed_uncommitted = true;
        let deployment = self.last_deployment;
        let mut result = Vec::new();
        let mut added = Vec::new();
        let mut resources = BTreeMap::new();
        for (name, xml, workflows) in imported {
            let shared_xml: Arc<str> = Arc::from(xml.as_str());
            for workflow in workflows {
                let process_id = workflow.process_id.clone();
                resources.insert(process_id.clone(), name.clone());
                let latest = self.latest(tenant, &process_id).map(|d| d.version);
                if let Some(version) = latest {
                    let row = tx.workflow(tenant, &process_id, version)?;
                    if row.is_some_and(|r| &r.xml == xml) {
                        result.push((process_id, version, false));
                        continue;
                    }
                }
                let version = latest.unwrap_or(0) + 1;
                tx.apply(Write::PutWorkflow(WorkflowRow {
                    process_id: process_id.clone(),
                    tenant: tenant.to_string(),
                    version,
                    deployment,
                    name: workflow.name.clone(),
                    version_tag: workflow.version_tag.clone(),
                    xml: xml.clone(),
                    deployed_at: now,
                }))?;
                let deployed = Deployed {
                    tenant: tenant.to_string(),
                    model: Arc::new(DeployedModel::compiled(workflow.clone(), shared_xml.clone())),
                    version,
                    deployment,
                };
                schedule_start_timers(tx, &deployed, now)?;
                added.push(deployed);
                result.push((process_id, version, true));
            }
        }
        let mut deployed_forms = Vec::new();
        for (resource, schema, form_id, version_tag) in forms {
            resources.insert(form_id.clone(), resource.clone());
            let versions = tx.forms(&Some(vec![tenant.to_string()]), Some(form_id))?;
            let latest = versions.last();
            if let Some(latest) = latest.filter(|f| &f.schema == schema) {
                deployed_forms.push((form_id.clone(), latest.version, false));
                continue;
            }
            let version = latest.map_or(1, |f| f.version + 1);
            tx.apply(Write::PutForm(store::FormRow {
                tenant: tenant.to_string(),
                form_id: form_id.clone(),
                version,
                deployment,
                version_tag: version_tag.clone(),
                resource: resource.clone(),
                schema: schema.clone(),
                deployed_at: now,
            }))?;
            deployed_forms.push((form_id.clone(), version, true));
        }
        let deployed_decisions = self.decisions.deploy(tx, tenant, dmn_files, deployment, now)?;
        let any = !added.is_empty();
        for deployed in added {
            self.workflows
                .entry((
                    deployed.tenant.clone(),
                    deployed.process_id().to_string(),
                ))
                .or_default()
                .push(deployed);
        }
        if any {
            self.registry.publish(&self.workflows);
        }
        Ok(Deployment {
            deployment,
            resources,
            workflows: result,
            forms: deployed_forms,
            decisions: deployed_decisions,
            warnings: warnings.clone(),
        })
    }

    pub fn start(
        &mut self,
        tx: &mut dyn WriteTxn,
        command: StartCommand,
        now: i64,
    ) -> Result<String, Error> {
        self.command(|core| core.start_command(tx, command, now))
    }

    fn start_command(
        &mut self,
        tx: &mut dyn WriteTxn,
        command: StartCommand,
        now: i64,
    ) -> Result<String, Error> {
        if let Some(request_id) = &command.request_id {
            tx.lock(&store::Lock::Request { tenant: &command.tenant, request_id })?;
            if let Some(existing) = tx.instance_by_request(&command.tenant, request_id)? {
                return Ok(existing);
            }
        }
        let deployed = match command.version {
            None => self.latest(&command.tenant, &command.process_id).cloned(),
            Some(v) => self
                .deployed(&command.tenant, &command.process_id, v)
                .cloned(),
        }
        .ok_or_else(|| Error::NotFound {
            what: "workflow",
            id: match command.version {
                Some(v) => format!("{} version {v}", command.process_id),
                None => command.process_id.clone(),
            },
        })?;
        let id = self.ids.next_instance_id();
        let mut session = Session::new(tx, now, self.audit.clone()).with_uncaught_errors_incident(self.uncaught_errors_incident);
        let options = StartOptions {
            variables: command.variables,
            business_key: command.business_key,
            labels: command.labels,
            ..StartOptions::default()
        };
        session.start_instance(deployed, NewId::Generated(id.clone()), options, None)?;
        if let Some(request_id) = command.request_id {
            session.tx.apply(Write::PutRequest {
                tenant: command.tenant,
                request_id,
                instance_id: id.clone(),
            })?;
        }
        self.settle(session)?;
        Ok(id)
    }

    /// Applies an input to an instance and everything that follows from it.
    pub fn input(
        &mut self,
        tx: &mut dyn WriteTxn,
        instance_id: &str,
        input: Input,
        now: i64,
    ) -> Result<(), Error> {
        self.command(|core| {
            let mut session = Session::new(tx, now, core.audit.clone()).with_uncaught_errors_incident(core.uncaught_errors_incident);
            session.step(core, instance_id, input)?;
            core.settle(session)
        })
    }

    pub fn publish(
        &mut self,
        tx: &mut dyn WriteTxn,
        command: PublishCommand,
        now: i64,
    ) -> Result<Publication, Error> {
        self.command(|core| core.publish_command(tx, command, now))
    }

    fn publish_command(
        &mut self,
        tx: &mut dyn WriteTxn,
        command: PublishCommand,
        now: i64,
    ) -> Result<Publication, Error> {
        tx.lock(&store::Lock::Correlation { tenant: &command.tenant, name: &command.name, correlation_key: &command.correlation_key })?;
        if let Some(id) = &command.message_id {
            if tx.message_by_id(&command.tenant, id, now)?.is_some() {
                return Err(Error::DuplicateMessage(id.clone()));
            }
        }
        let mut session = Session::new(tx, now, self.audit.clone()).with_uncaught_errors_incident(self.uncaught_errors_incident);
        let mut correlated: Vec<String> = Vec::new();
        let mut receivers = Vec::new();
        for subscription in session.tx.message_subscriptions(
            &command.tenant,
            &command.name,
            &command.correlation_key,
        )? {
            let (_, process_id) = session.process_of(self, &subscription.instance_id)?;
            if correlated.contains(&process_id)
                || session.status(self, &subscription.instance_id)? != Status::Running
            {
                continue;
            }
            let input = Input::MessageCorrelated {
                subscription: subscription.local_key,
                variables: command.variables.clone(),
            };
            match session.step(self, &subscription.instance_id, input) {
                Ok(()) => {
                    correlated.push(process_id);
                    receivers.push(subscription.instance_id.clone());
                }
                other => unless_failed(other)?,
            }
        }
        let named = |t: &Trigger| matches!(t, Trigger::Message(m) if matches!(&m.name, bpmn::Property::Literal(n) if n == &command.name));
        for (deployed, element) in self.start_events(&command.tenant, named)? {
            let process_id = deployed.process_id().to_string();
            if correlated.contains(&process_id)
                || (!command.correlation_key.is_empty()
                    && session.tx.message_started_active(
                        &command.tenant,
                        &process_id,
                        &command.correlation_key,
                    )?)
                || session.message_started_in_session(
                    &command.tenant,
                    &process_id,
                    &command.correlation_key,
                )
            {
                continue;
            }
            let id = self.ids.next_instance_id();
            let options = StartOptions {
                variables: command.variables.clone(),
                start_event: Some(element),
                ..StartOptions::default()
            };
            let key =
                (!command.correlation_key.is_empty()).then(|| command.correlation_key.clone());
            session.start_instance(deployed, NewId::Generated(id.clone()), options, key)?;
            correlated.push(process_id);
            receivers.push(id);
        }
        // Publication order, increasing across restarts as long as the clock
        // does, and past every message kept (another node may have published
        // at the same millisecond).
        let mut seq = (self.last_message + 1).max(u64::try_from(now).unwrap_or(0));
        if command.ttl_ms > 0 {
            seq = seq.max(session.tx.last_message_seq()? + 1);
        }
        self.last_message = seq;
        if command.ttl_ms > 0 {
            session.tx.apply(Write::PutMessage(MessageRow {
                seq,
                tenant: command.tenant,
                name: command.name,
                correlation_key: command.correlation_key,
                variables: command.variables,
                published_at: now,
                expires_at: now.saturating_add(command.ttl_ms),
                message_id: command.message_id,
                correlated,
            }))?;
        }
        self.settle(session)?;
        Ok(Publication { seq, receivers })
    }

    /// Delivers a signal to the tenant's waiting instances and signal start events.
    pub fn broadcast(
        &mut self,
        tx: &mut dyn WriteTxn,
        tenant: &str,
        name: &str,
        variables: Variables,
        now: i64,
    ) -> Result<(), Error> {
        self.command(|core| {
            let mut session = Session::new(tx, now, core.audit.clone()).with_uncaught_errors_incident(core.uncaught_errors_incident);
            session.deliver_signal(core, tenant, name, &variables)?;
            core.settle(session)
        })
    }

    /// Starts an instance at each conditional start event of the tenant's
    /// latest workflows (or of `workflow`'s) whose condition `variables` make
    /// true (Camunda's evaluate-conditionals call); returns the instances started.
    pub fn evaluate_conditionals(
        &mut self,
        tx: &mut dyn WriteTxn,
        tenant: &str,
        workflow: Option<&str>,
        variables: Variables,
        now: i64,
    ) -> Result<Vec<ConditionalStart>, Error> {
        self.command(|core| {
            let mut session = Session::new(tx, now, core.audit.clone()).with_uncaught_errors_incident(core.uncaught_errors_incident);
            let mut chosen = Vec::new();
            for ((of, process_id), versions) in &core.workflows {
                let Some(deployed) = versions.last().filter(|_| of == tenant && workflow.is_none_or(|w| w == process_id)) else { continue };
                let compiled = deployed.workflow()?;
                for &start in &compiled.elements[bpmn::Workflow::ROOT].children {
                    let element = &compiled.elements[start];
                    let Kind::StartEvent { trigger: Trigger::Conditional(conditional), .. } = &element.kind else { continue };
                    if conditional.condition.evaluate(&variables).is_ok_and(|v| v == serde_json::Value::Bool(true)) {
                        chosen.push((deployed.clone(), element.id.clone()));
                    }
                }
            }
            let mut started = Vec::with_capacity(chosen.len());
            for (deployed, start_event) in chosen {
                let id = core.ids.next_instance_id();
                let options = StartOptions { variables: variables.clone(), start_event: Some(start_event.clone()), ..StartOptions::default() };
                started.push(ConditionalStart { instance_id: id.clone(), workflow: deployed.process_id().to_string(), version: deployed.version, start_event });
                session.start_instance(deployed, NewId::Generated(id), options, None)?;
            }
            core.settle(session)?;
            Ok(started)
        })
    }

    /// Fires every timer due at `now` (each at its own due time), and timer start events.
    pub fn fire_due(
        &mut self,
        tx: &mut dyn WriteTxn,
        now: i64,
        limit: usize,
    ) -> Result<usize, Error> {
        self.command(|core| core.fire_due_command(tx, now, limit))
    }

    fn fire_due_command(
        &mut self,
        tx: &mut dyn WriteTxn,
        now: i64,
        limit: usize,
    ) -> Result<usize, Error> {
        // The commit loop asks on every turn; most turns nothing is due.
        if tx.next_due()?.is_none_or(|due| due > now) {
            return Ok(0);
        }
        let mut fired = 0;
        let (starts, timers) = tx.claim_due_timers(now, limit)?;
        for row in starts {
            self.fire_start_timer(tx, row, now)?;
            fired += 1;
        }
        for timer in timers {
            let mut session = Session::new(tx, now, Audit::default()).with_uncaught_errors_incident(self.uncaught_errors_incident);
            if session.status(self, &timer.instance_id)? == Status::Running {
                match session.step(
                    self,
                    &timer.instance_id,
                    Input::TimerFired {
                        timer: timer.local_key,
                    },
                ) {
                    Ok(()) => fired += 1,
                    // An earlier timer of this batch closed it (an interrupting boundary event).
                    Err(Error::Rejected(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            self.settle(session)?;
        }
        Ok(fired)
    }

    fn fire_start_timer(
        &mut self,
        tx: &mut dyn WriteTxn,
        row: StartTimerRow,
        now: i64,
    ) -> Result<(), Error> {
        match &row.repeat {
            Some((remaining, every)) if *remaining != Some(0) => {
                match bpmn::timer::next_due(every, row.due_at) {
                    Ok(next) => tx.apply(Write::PutStartTimer(StartTimerRow {
                        due_at: next,
                        repeat: Some((remaining.map(|n| n - 1), every.clone())),
                        ..row.clone()
                    }))?,
                    Err(_) => tx.apply(Write::DeleteStartTimers {
                        tenant: row.tenant.clone(),
                        process_id: row.process_id.clone(),
                    })?,
                }
            }
            _ => tx.apply(Write::DeleteStartTimers {
                tenant: row.tenant.clone(),
                process_id: row.process_id.clone(),
            })?,
        }
        if self.deployed(&row.tenant, &row.process_id, row.version).is_none() {
            // Deployed by another node after this batch looked (its timer row is visible now).
            self.learn_deployments(tx)?;
        }
        let Some(deployed) = self
            .deployed(&row.tenant, &row.process_id, row.version)
            .cloned()
        else {
            return Ok(());
        };
        let id = self.ids.next_instance_id();
        let mut session = Session::new(tx, now.max(row.due_at), Audit::default()).with_uncaught_errors_incident(self.uncaught_errors_incident);
        let options = StartOptions {
            start_event: Some(row.element_id),
            ..StartOptions::default()
        };
        session.start_instance(deployed, NewId::Generated(id), options, None)?;
        self.settle(session)
    }

    /// The ended instance `id` of a tenant the caller reaches; `then` says what the caller meant to do.
    fn ended_instance(&self, tx: &mut dyn WriteTxn, id: &str, then: &str) -> Result<(), Error> {
        let row = self.reached(tx.instance(id)?, |r| &r.tenant, "instance", id)?;
        if !row.status.is_ended() {
            return Err(Error::Rejected(engine::Rejection {
                code: engine::RejectionCode::InstanceNotEnded,
                message: format!("instance {id} is {}; cancel it first, then {then}", row.status.as_str()),
            }));
        }
        Ok(())
    }

    /// Keeps an ended instance until `until` (a time in ms), or for ever, in place of its retention.
    pub fn keep_instance(&mut self, tx: &mut dyn WriteTxn, id: &str, until: Option<i64>) -> Result<(), Error> {
        self.ended_instance(tx, id, "say how long it is kept")?;
        let write = match until {
            Some(at) => Write::ScheduleDeletion { instance_id: id.to_string(), at },
            None => Write::CancelDeletion { instance_id: id.to_string() },
        };
        tx.apply(write)?;
        Ok(())
    }

    /// Deletes an ended instance now, with its history and every row of it.
    pub fn delete_instance(&mut self, tx: &mut dyn WriteTxn, id: &str) -> Result<(), Error> {
        self.ended_instance(tx, id, "delete it")?;
        self.cache.get_mut().take(id);
        tx.apply(Write::DeleteInstance { id: id.to_string() })?;
        self.counts.instances_deleted += 1;
        Ok(())
    }

    /// Deletes up to `limit` ended instances whose retention ran out at
    /// `now`, then, within what is left of `limit`, buffered messages that
    /// expired at least the server's retention ago (kept that long for the
    /// list of undelivered ones); returns how many it looked at. An
    /// instance that runs again (a rerun) is no longer to be deleted: its
    /// next end schedules it again.
    pub fn delete_expired(&mut self, tx: &mut dyn WriteTxn, now: i64, limit: usize) -> Result<usize, Error> {
        let due = tx.due_deletions(now, limit)?;
        for id in &due {
            let running = tx.instance(id)?.is_some_and(|row| !row.status.is_ended());
            if running {
                tx.apply(Write::CancelDeletion { instance_id: id.clone() })?;
            } else {
                self.cache.get_mut().take(id);
                tx.apply(Write::DeleteInstance { id: id.clone() })?;
                self.counts.instances_deleted += 1;
            }
        }
        let mut looked = due.len();
        if let Some(retention) = self.retention_ms.filter(|_| looked < limit) {
            for seq in tx.expired_messages(now.saturating_sub(retention), limit - looked)? {
                tx.apply(Write::DeleteMessage { seq })?;
                self.counts.messages_deleted += 1;
                looked += 1;
            }
        }
        Ok(looked)
    }

    /// How long to keep an instance of `workflow` once it ended: its
    /// `baton:retention` property (an ISO 8601 duration, or `forever`), else the server's.
    fn retention_of(&self, workflow: &Workflow) -> Option<i64> {
        match workflow.elements[Workflow::ROOT].properties.get(RETENTION_PROPERTY) {
            Some(value) => retention_ms(value).ok().flatten(),
            None => self.retention_ms,
        }
    }

    /// Hands up to `max` jobs of `job_type` (of the caller's tenants) to `worker` for `lease_ms`.
    pub fn activate_jobs(
        &mut self,
        tx: &mut dyn WriteTxn,
        job_type: &str,
        worker: &str,
        max: usize,
        lease_ms: i64,
        now: i64,
    ) -> Result<Vec<ActivatedJob>, Error> {
        let mut activated = Vec::new();
        for mut job in tx.claim_jobs(job_type, &self.audit.tenants, now, max)? {
            job.worker = Some(worker.to_string());
            job.lease_until = Some(now.saturating_add(lease_ms));
            job.lease = Some(self.ids.next_lease());
            tx.apply(Write::LeaseJob {
                key: job.key.clone(),
                worker: job.worker.clone(),
                lease_until: job.lease_until,
                lease: job.lease.clone(),
            })?;
            let cached = self.cache.get_mut().take(&job.instance_id);
            let loaded = cached_or_stored(self, tx, &job.instance_id, cached)?;
            let variables = visible_variables(&loaded.state, job.local_key);
            let headers = loaded
                .state
                .jobs
                .get(&job.local_key)
                .map(|j| j.headers.clone())
                .unwrap_or_default();
            // A model that no longer compiles faults the job's completion, not every activation.
            let properties = loaded.deployed.workflow().ok().and_then(|w| w.element(&job.element_id).map(|e| e.properties.clone())).unwrap_or_default();
            let listener = loaded.state.jobs.get(&job.local_key).and_then(|j| j.listener);
            let element_instance = loaded.state.jobs.get(&job.local_key).map_or(0, |j| j.element_instance);
            let (instance_number, version) = (loaded.number, loaded.state.version);
            // Kept for the completion that follows.
            self.cache
                .get_mut()
                .put(job.instance_id.clone(), loaded, false);
            activated.push(ActivatedJob {
                job,
                variables,
                headers,
                properties,
                listener,
                instance_number,
                version,
                element_instance,
            });
        }
        self.counts.jobs_activated += activated.len() as u64;
        Ok(activated)
    }

    /// The job, if `claim` may finish it: while a lease runs, only with its
    /// token (or an explicit override); a lease that ran out is nobody's, so a
    /// late holder is told, and anyone else may finish the job.
    pub fn job_for(
        &self,
        tx: &mut dyn WriteTxn,
        key: &str,
        claim: &Claim,
        now: i64,
    ) -> Result<JobRow, Error> {
        let job = self.reached(tx.job(key)?, |job| &job.tenant, "job", key)?;
        if claim
            .job_types
            .as_ref()
            .is_some_and(|types| !types.contains(&job.job_type))
        {
            return Err(Error::Forbidden(format!(
                "the claimant may not work on '{}' jobs",
                job.job_type
            )));
        }
        if claim.override_lease || claim.key_holds {
            return Ok(job);
        }
        let running = job.lease_until.is_some_and(|until| until > now);
        let holder = job.worker.clone().unwrap_or_default();
        match (&claim.lease, running) {
            (Some(_), true) if claim.lease == job.lease => Ok(job),
            (Some(_), true) => Err(Error::LeaseHeld {
                job: key.to_string(),
                worker: holder,
            }),
            (Some(_), false) => Err(Error::LeaseExpired {
                job: key.to_string(),
            }),
            (None, true) => Err(Error::LeaseRequired {
                job: key.to_string(),
                worker: holder,
            }),
            (None, false) => Ok(job),
        }
    }

    /// Moves the end of a running lease to `lease_ms` from `now`; a job not
    /// under a lease has none to move.
    pub fn extend_lease(&mut self, tx: &mut dyn WriteTxn, key: &str, lease_ms: i64, now: i64) -> Result<(), Error> {
        let mut job = self.reached(tx.job(key)?, |job| &job.tenant, "job", key)?;
        if !job.lease_until.is_some_and(|until| until > now) {
            return Err(Error::LeaseExpired { job: key.to_string() });
        }
        job.lease_until = Some(now.saturating_add(lease_ms));
        tx.apply(Write::PutJob(job))?;
        Ok(())
    }

    /// The tenant's latest workflows with a start event `matches`, and that event.
    fn start_events(
        &self,
        tenant: &str,
        matches: impl Fn(&Trigger) -> bool,
    ) -> Result<Vec<(Deployed, String)>, Error> {
        let mut found = Vec::new();
        let latest = self.workflows.iter().filter(|((of, _), _)| of == tenant).filter_map(|(_, versions)| versions.last());
        for deployed in latest {
            if let Some(element) = start_event_of(&*deployed.workflow()?, &matches) {
                found.push((deployed.clone(), element));
            }
        }
        Ok(found)
    }

    /// Carries out pending effects until none are left, then writes every touched instance.
    fn settle(&mut self, mut session: Session<'_>) -> Result<(), Error> {
        while let Some((instance_id, effect)) = session.pending.pop_front() {
            session.carry_out(self, &instance_id, effect)?;
        }
        self.counts.add(&session.counts);
        session.flush(&self.cache)
    }
}

/// An instance a conditional start event started.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionalStart {
    pub instance_id: String,
    pub workflow: String,
    pub version: u32,
    pub start_event: String,
}

/// The outcome of an input that may well be refused (a subscription an
/// earlier delivery closed, a parent that has ended): a refusal is fine, but
/// a fault or a store failure stops the command.
fn unless_failed(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(error @ (Error::Fault(_) | Error::Store(_))) => Err(error),
        _ => Ok(()),
    }
}

/// A workflow version: tenant, process id, version, deployment.
type CompiledKey = (String, String, u32, u64);

/// Every workflow version the store holds, to be compiled when needed
/// (those in `known` taken from there, compiled or not); the last
/// deployment's number.
fn read_all(
    tx: &mut dyn store::ReadTxn,
    known: &BTreeMap<CompiledKey, Arc<DeployedModel>>,
    compilations: &Arc<AtomicU64>,
) -> Result<(BTreeMap<WorkflowKey, Vec<Deployed>>, u64), Error> {
    let mut workflows: BTreeMap<WorkflowKey, Vec<Deployed>> = BTreeMap::new();
    let mut last_deployment = 0;
    let mut rows = tx.workflows()?;
    rows.sort_by(|a, b| {
        (&a.tenant, &a.process_id, a.version).cmp(&(&b.tenant, &b.process_id, b.version))
    });
    // Each process of a file is stored with the whole file: its processes share one copy.
    let mut files: HashMap<(u64, &str), Arc<str>> = HashMap::new();
    let mut models = Vec::with_capacity(rows.len());
    for row in &rows {
        let key = (row.tenant.clone(), row.process_id.clone(), row.version, row.deployment);
        let model = match known.get(&key) {
            Some(model) => model.clone(),
            None => {
                let xml = files.entry((row.deployment, row.xml.as_str())).or_insert_with(|| Arc::from(row.xml.as_str())).clone();
                Arc::new(DeployedModel::stored(row, xml, compilations.clone()))
            }
        };
        models.push(model);
    }
    drop(files);
    for (row, model) in rows.into_iter().zip(models) {
        last_deployment = last_deployment.max(row.deployment);
        let deployed = Deployed {
            tenant: row.tenant.clone(),
            model,
            version: row.version,
            deployment: row.deployment,
        };
        workflows
            .entry((row.tenant, row.process_id))
            .or_default()
            .push(deployed);
    }
    // A deployment of forms alone numbers one too.
    let forms = tx.forms(&None, None)?;
    last_deployment = forms.iter().map(|f| f.deployment).fold(last_deployment, u64::max);
    Ok((workflows, last_deployment))
}

/// An instance as the store holds it, with its compiled workflow.
/// The cached copy of an instance when it is current, else the store's. On
/// a store no other core writes, a cached copy is always current.
fn cached_or_stored(core: &Core, tx: &mut dyn WriteTxn, id: &str, cached: Option<Loaded>) -> Result<Loaded, Error> {
    match cached {
        Some(loaded) if !core.shared_store || tx.instance_version(id)? == loaded.stored => Ok(loaded),
        Some(_) => {
            core.stale_copies.set(core.stale_copies.get() + 1);
            load_from_store(core, tx, id)
        }
        None => load_from_store(core, tx, id),
    }
}

fn load_from_store(core: &Core, tx: &mut dyn WriteTxn, id: &str) -> Result<Loaded, Error> {
    let row = tx.instance(id)?.ok_or_else(|| Error::NotFound {
        what: "instance",
        id: id.to_string(),
    })?;
    let deployed = core
        .deployed(&row.tenant, &row.process_id, row.version)
        .cloned()
        .ok_or_else(|| {
            Error::Store(store::Error::corrupt(format!(
                "instance {id} runs {} v{}, which is not deployed",
                row.process_id, row.version
            )))
        })?;
    Ok(Loaded {
        number: row.number,
        stored: Some(row.update_count),
        variables_indexed: Some(row.state.variables_changes),
        indexed_variables: row.state.variables.clone(),
        held: row.status == Status::Suspended,
        state: row.state,
        deployed,
        start_key: row.start_key,
        history_count: row.history_count,
        changed: false,
    })
}

/// The id of a start event of the process (not of a subprocess) whose trigger matches.
/// The process property that says how long its ended instances are kept.
pub const RETENTION_PROPERTY: &str = "baton:retention";

/// A retention as milliseconds: an ISO 8601 duration (`P30D`), or `forever` (`None`).
pub fn retention_ms(text: &str) -> Result<Option<i64>, String> {
    if text.trim().eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    let span = bpmn::timer::parse_duration(text)?;
    let ms = bpmn::timer::add(0, span)?;
    if ms <= 0 {
        return Err(format!("a retention of '{text}' keeps nothing: give a positive duration, or 'forever'"));
    }
    Ok(Some(ms))
}

pub fn start_event_of(workflow: &Workflow, matches: impl Fn(&Trigger) -> bool) -> Option<String> {
    workflow.elements[Workflow::ROOT]
        .children
        .iter()
        .find_map(|&child| match &workflow.elements[child].kind {
            Kind::StartEvent { trigger, .. } if matches(trigger) => {
                Some(workflow.elements[child].id.clone())
            }
            _ => None,
        })
}

fn schedule_start_timers(
    tx: &mut dyn WriteTxn,
    deployed: &Deployed,
    now: i64,
) -> Result<(), Error> {
    // A new version replaces the start timers of older ones.
    tx.apply(Write::DeleteStartTimers {
        tenant: deployed.tenant.clone(),
        process_id: deployed.process_id().to_string(),
    })?;
    let workflow = deployed.workflow()?;
    for &child in &workflow.elements[Workflow::ROOT].children {
        let element = &workflow.elements[child];
        if let Kind::StartEvent {
            trigger: Trigger::Timer(timer),
            ..
        } = &element.kind
        {
            // Validation evaluated and checked this text when the workflow was imported.
            let Ok(schedule) = timer
                .text_without_variables()
                .and_then(|text| timer.schedule(&text, now))
            else {
                continue;
            };
            tx.apply(Write::PutStartTimer(StartTimerRow {
                process_id: deployed.process_id().to_string(),
                tenant: deployed.tenant.clone(),
                version: deployed.version,
                element_id: element.id.clone(),
                due_at: schedule.due_ms,
                repeat: schedule.repeat.map(|r| (r.remaining, r.every)),
            }))?;
        }
    }
    Ok(())
}

/// The variables a job's element instance sees, inner scopes over outer; a
/// completing listener's job also sees the variables the task would complete with.
pub fn visible_variables(state: &InstanceState, job: u64) -> Variables {
    let mut all = scope_variables(state, job);
    let Some(found) = state.jobs.get(&job).filter(|j| j.listener == Some(bpmn::ListenerEvent::Completing)) else { return all };
    let completing = state.user_tasks.values().find(|t| t.element_instance == found.element_instance).and_then(|t| t.transition.as_ref());
    if let Some(transition) = completing {
        all.extend(transition.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    all
}

fn scope_variables(state: &InstanceState, job: u64) -> Variables {
    let mut chain = Vec::new();
    let mut current = state.jobs.get(&job).map(|j| j.element_instance);
    while let Some(key) = current {
        let Some(ei) = state.element_instances.get(&key) else {
            break;
        };
        if key != state.root {
            chain.push(&ei.variables);
        }
        current = ei.parent;
    }
    let mut all = state.variables.clone();
    for scope in chain.into_iter().rev() {
        all.extend(scope.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    all
}

/// What an instance's tokens wait for, for the `waiting` filter.
pub fn waiting_kinds(state: &InstanceState) -> Vec<String> {
    let mut kinds = Vec::new();
    let mut add = |kind: &str| {
        if !kinds.iter().any(|k| k == kind) {
            kinds.push(kind.to_string());
        }
    };
    if state
        .jobs
        .values()
        .any(|j| j.state == JobState::Activatable)
    {
        add("job");
    }
    if !state.user_tasks.is_empty() {
        add("user_task");
    }
    if !state.timers.is_empty() {
        add("timer");
    }
    for subscription in state.subscriptions.values() {
        match subscription.kind {
            EngineSubscription::Message { .. } => add("message"),
            EngineSubscription::Signal { .. } => add("signal"),
        }
    }
    if !state.conditions.is_empty() {
        add("condition");
    }
    // Only a call activity starts a child instance: no model is needed to tell.
    if state.element_instances.values().any(|ei| ei.child_instance.is_some()) {
        add("call");
    }
    kinds
}

impl<'t> Session<'t> {
    fn new(tx: &'t mut dyn WriteTxn, now: i64, audit: Audit) -> Session<'t> {
        Session {
            tx,
            now,
            loaded: BTreeMap::new(),
            pending: VecDeque::new(),
            starts: 0,
            counts: Counts::default(),
            audit,
            uncaught_errors_incident: false,
            last_number: None,
        }
    }

    /// Starts instances whose uncaught error end events raise incidents (Camunda 8's way).
    fn with_uncaught_errors_incident(mut self, incident: bool) -> Session<'t> {
        self.uncaught_errors_incident = incident;
        self
    }

    fn load(&mut self, core: &Core, id: &str) -> Result<&mut Loaded, Error> {
        if !self.loaded.contains_key(id) {
            let cached = core.cache.borrow_mut().take(id);
            let loaded = cached_or_stored(core, self.tx, id, cached)?;
            self.loaded.insert(id.to_string(), loaded);
        }
        self.loaded.get_mut(id).ok_or_else(|| Error::NotFound {
            what: "instance",
            id: id.to_string(),
        })
    }

    fn status(&mut self, core: &Core, id: &str) -> Result<Status, Error> {
        Ok(self.load(core, id)?.state.status)
    }

    /// The instance's tenant and process id.
    fn process_of(&mut self, core: &Core, id: &str) -> Result<(String, String), Error> {
        let loaded = self.load(core, id)?;
        Ok((
            loaded.deployed.tenant.clone(),
            loaded.state.process_id.clone(),
        ))
    }

    fn message_started_in_session(
        &self,
        tenant: &str,
        process_id: &str,
        correlation_key: &str,
    ) -> bool {
        !correlation_key.is_empty()
            && self.loaded.values().any(|l| {
                l.deployed.tenant == tenant
                    && l.state.process_id == process_id
                    && l.start_key.as_deref() == Some(correlation_key)
                    && !l.state.status.is_ended()
            })
    }

    fn step(&mut self, core: &Core, id: &str, input: Input) -> Result<(), Error> {
        let now = self.now;
        let release = !matches!(input, Input::UpdateRetries { .. });
        let completes_job = matches!(input, Input::CompleteJob { .. });
        let sets_labels = matches!(input, Input::SetLabels { .. });
        let actor = self.audit.actor.clone();
        let loaded = self.load(core, id)?;
        let site = FaultSite::of(&input);
        let workflow = match loaded.deployed.workflow() {
            Ok(workflow) => workflow,
            Err(Error::Fault(fault)) => return Err(Error::Fault(Fault { instance_id: Some(id.to_string()), site, ..fault })),
            Err(error) => return Err(error),
        };
        #[cfg(feature = "test-util")]
        let injected = core
            .inject_panic
            .as_ref()
            .is_some_and(|inject| (inject.0)(id, &input));
        let effects = match catch_unwind(AssertUnwindSafe(|| {
            let stepped = engine::step(&workflow, &mut loaded.state, input, now);
            // As a defect would: after the state changed, before anyone saw the effects.
            #[cfg(feature = "test-util")]
            if injected && stepped.is_ok() {
                panic!("a panic injected by a test");
            }
            stepped
        })) {
            Ok(stepped) => stepped.map_err(Error::Rejected)?,
            Err(payload) => {
                // The state is half applied: it must never be written or kept.
                self.loaded.remove(id);
                return Err(Error::Fault(Fault::from_panic(
                    Some(id.to_string()),
                    site,
                    payload.as_ref(),
                )));
            }
        };
        // The whole state is encoded to be written: measuring its variables costs no more.
        let bytes = loaded.state.variables_bytes();
        if bytes > engine::MAX_VARIABLES_BYTES {
            self.loaded.remove(id);
            return Err(Error::Fault(Fault::variables_too_large(Some(id.to_string()), site, bytes)));
        }
        loaded.changed = true;
        loaded.state.updated_by = actor;
        if sets_labels {
            let labels = loaded.state.labels.clone();
            self.tx.apply(Write::PutLabels {
                instance_id: id.to_string(),
                labels,
            })?;
        }
        self.counts.jobs_completed += u64::from(completes_job);
        self.record(id, effects, release)
    }

    fn start_instance(
        &mut self,
        deployed: Deployed,
        id: NewId,
        options: StartOptions,
        start_key: Option<String>,
    ) -> Result<(), Error> {
        // A new instance never replaces one. The store refuses to write a
        // new instance over a stored one (a conflict, so a generated id is
        // drawn again when the command is retried); an id the engine
        // derived is also looked up first, to say plainly what went wrong.
        let (id, look_up) = match id {
            NewId::Generated(id) => (id, false),
            NewId::Derived(id) => (id, true),
        };
        if self.loaded.contains_key(&id) || (look_up && self.tx.instance_version(&id)?.is_some()) {
            return Err(Error::InvalidInput(format!(
                "an instance with id {id} already exists"
            )));
        }
        self.starts += 1;
        if self.starts > MAX_STARTS_PER_COMMAND {
            return Err(Error::InvalidInput(format!(
                "one command may start at most {MAX_STARTS_PER_COMMAND} instances"
            )));
        }
        let options = StartOptions { uncaught_errors_incident: self.uncaught_errors_incident, ..options };
        let workflow = deployed.workflow()?;
        let started = catch_unwind(AssertUnwindSafe(|| {
            engine::start(
                &workflow,
                deployed.version,
                id.clone(),
                options,
                self.now,
            )
        }));
        let (mut state, effects) = match started {
            Ok(started) => started.map_err(Error::Rejected)?,
            // The instance does not exist yet: the caller decides whom to blame.
            Err(payload) => {
                return Err(Error::Fault(Fault::from_panic(
                    None,
                    FaultSite::Instance,
                    payload.as_ref(),
                )))
            }
        };
        let bytes = state.variables_bytes();
        if bytes > engine::MAX_VARIABLES_BYTES {
            return Err(Error::Fault(Fault::variables_too_large(None, FaultSite::Instance, bytes)));
        }
        let number = self.tx.next_instance_number(self.last_number)?;
        self.last_number = Some(number);
        self.counts.instances_started += 1;
        state.created_by = self.audit.actor.clone();
        state.updated_by = self.audit.actor.clone();
        if !state.labels.is_empty() {
            self.tx.apply(Write::PutLabels {
                instance_id: id.clone(),
                labels: state.labels.clone(),
            })?;
        }
        self.loaded.insert(
            id.clone(),
            Loaded {
                number,
                state,
                deployed,
                start_key,
                history_count: 0,
                stored: None,
                variables_indexed: None,
                indexed_variables: Variables::new(),
                held: false,
                changed: true,
            },
        );
        self.record(&id, effects, true)
    }

    /// Writes the rows an engine step's effects describe and queues the rest.
    fn record(
        &mut self,
        id: &str,
        effects: Vec<Effect>,
        release_leases: bool,
    ) -> Result<(), Error> {
        let loaded = self.loaded.get_mut(id).ok_or_else(|| Error::NotFound {
            what: "instance",
            id: id.to_string(),
        })?;
        let process_id = loaded.state.process_id.clone();
        let tenant = loaded.deployed.tenant.clone();
        let global = |local: u64| store::item_key(id, local);
        for effect in effects {
            // A job just created has no lease to keep: its key is new (the
            // instance's counter gave it), so there is nothing to look up.
            let created = matches!(effect, Effect::JobCreated { .. });
            match effect {
                Effect::JobCreated { job } | Effect::JobUpdated { job } => {
                    let key = global(job.key);
                    let held = if release_leases || created {
                        None
                    } else {
                        self.tx
                            .job(&key)?
                            .map(|j| (j.worker, j.lease_until, j.lease))
                    };
                    let (worker, lease_until, lease) = held.unwrap_or((None, None, None));
                    self.tx.apply(Write::PutJob(JobRow {
                        key,
                        instance_id: id.to_string(),
                        local_key: job.key,
                        process_id: process_id.clone(),
                        tenant: tenant.clone(),
                        element_id: job.element_id,
                        job_type: job.job_type,
                        retries: job.retries,
                        state: job.state,
                        not_before: job.not_before,
                        error_message: job.error_message,
                        worker,
                        lease_until,
                        lease,
                        created_at: job.created_at,
                    }))?;
                }
                Effect::JobRemoved { key } => {
                    self.tx.apply(Write::DeleteJob { key: global(key) })?
                }
                Effect::TimerScheduled { timer } => self.tx.apply(Write::PutTimer(TimerRow {
                    instance_id: id.to_string(),
                    tenant: tenant.clone(),
                    local_key: timer.key,
                    element_id: timer.element_id,
                    due_at: timer.due_at,
                }))?,
                Effect::TimerRemoved { key } => self.tx.apply(Write::DeleteTimer {
                    instance_id: id.to_string(),
                    local_key: key,
                })?,
                Effect::UserTaskCreated { task } | Effect::UserTaskUpdated { task } => {
                    self.tx.apply(Write::PutTask(TaskRow {
                        key: global(task.key),
                        instance_id: id.to_string(),
                        local_key: task.key,
                        process_id: process_id.clone(),
                        tenant: tenant.clone(),
                        element_id: task.element_id,
                        assignee: task.assignee,
                        candidate_groups: task.candidate_groups,
                        candidate_users: task.candidate_users,
                        due: task.due,
                        follow_up: task.follow_up,
                        priority: task.priority,
                        form_key: task.form_key,
                        created_at: task.created_at,
                        completed_at: None,
                        completed_by: None,
                    }))?
                }
                // A completed task stays listed (who completed it, when); any other end removes it.
                Effect::UserTaskRemoved { key, completed: true } => self.tx.apply(Write::CompleteTask {
                    key: global(key),
                    at: self.now,
                    by: self.audit.actor.clone(),
                })?,
                Effect::UserTaskRemoved { key, completed: false } => {
                    self.tx.apply(Write::DeleteTask { key: global(key) })?
                }
                Effect::SubscriptionOpened { subscription } => {
                    let (kind, name, correlation_key) = match &subscription.kind {
                        EngineSubscription::Message {
                            name,
                            correlation_key,
                        } => (
                            SubscriptionKind::Message,
                            name.clone(),
                            correlation_key.clone(),
                        ),
                        EngineSubscription::Signal { name } => {
                            (SubscriptionKind::Signal, name.clone(), String::new())
                        }
                    };
                    self.tx.apply(Write::PutSubscription(SubscriptionRow {
                        instance_id: id.to_string(),
                        tenant: tenant.clone(),
                        local_key: subscription.key,
                        element_id: subscription.element_id.clone(),
                        kind,
                        name,
                        correlation_key,
                        opened_at: self.now,
                    }))?;
                    if kind == SubscriptionKind::Message {
                        self.pending.push_back((
                            id.to_string(),
                            Effect::SubscriptionOpened { subscription },
                        ));
                    }
                }
                Effect::SubscriptionClosed { key } => self.tx.apply(Write::DeleteSubscription {
                    instance_id: id.to_string(),
                    local_key: key,
                })?,
                Effect::IncidentRaised { incident } => {
                    self.tx.apply(Write::PutIncident(IncidentRow {
                        key: global(incident.key),
                        instance_id: id.to_string(),
                        local_key: incident.key,
                        process_id: process_id.clone(),
                        tenant: tenant.clone(),
                        element_id: incident.element_id,
                        kind: incident.kind.name().to_string(),
                        message: incident.message,
                        created_at: incident.created_at,
                        resolved_at: None,
                        resolved_by: None,
                    }))?
                }
                Effect::IncidentResolved { key } => {
                    // The actor resolved it, or the engine closed it as its element ended.
                    let by = self.audit.actor.clone();
                    self.tx.apply(Write::ResolveIncident {
                        key: global(key),
                        at: self.now,
                        by,
                    })?
                }
                Effect::History { mut entry } => {
                    entry.actor.clone_from(&self.audit.actor);
                    if entry.event.is_operator_action() || self.audit.reason_on_every_entry {
                        entry.reason.clone_from(&self.audit.reason);
                    }
                    let Some(loaded) = self.loaded.get_mut(id) else {
                        continue;
                    };
                    loaded.history_count += 1;
                    let seq = loaded.history_count;
                    self.tx.apply(Write::AppendHistory(HistoryRow {
                        instance_id: id.to_string(),
                        seq,
                        entry,
                    }))?;
                }
                other => self.pending.push_back((id.to_string(), other)),
            }
        }
        Ok(())
    }

    /// Effects that reach beyond their instance.
    fn carry_out(&mut self, core: &mut Core, id: &str, effect: Effect) -> Result<(), Error> {
        match effect {
            Effect::SubscriptionOpened { subscription } => {
                let EngineSubscription::Message {
                    name,
                    correlation_key,
                } = subscription.kind
                else {
                    return Ok(());
                };
                if self.status(core, id)? != Status::Running {
                    return Ok(());
                }
                let (tenant, process_id) = self.process_of(core, id)?;
                self.tx.lock(&store::Lock::Correlation { tenant: &tenant, name: &name, correlation_key: &correlation_key })?;
                let waiting =
                    self.tx
                        .buffered_messages(&tenant, &name, &correlation_key, self.now)?;
                if let Some(mut message) = waiting
                    .into_iter()
                    .find(|m| !m.correlated.contains(&process_id))
                {
                    message.correlated.push(process_id);
                    let variables = message.variables.clone();
                    self.tx.apply(Write::PutMessage(message))?;
                    self.step(
                        core,
                        id,
                        Input::MessageCorrelated {
                            subscription: subscription.key,
                            variables,
                        },
                    )?;
                }
            }
            Effect::StartChild {
                element_instance,
                instance_id,
                process_id,
                binding,
                variables,
            } => {
                let (parent_depth, caller_deployment, business_key, call_element, tenant) = {
                    let loaded = self.load(core, id)?;
                    let call_element = loaded
                        .state
                        .element_instances
                        .get(&element_instance)
                        .map(|ei| ei.element_id.clone())
                        .unwrap_or_default();
                    (
                        loaded.state.depth,
                        loaded.deployed.deployment,
                        loaded.state.business_key.clone(),
                        call_element,
                        loaded.deployed.tenant.clone(),
                    )
                };
                // A call activity calls its own tenant's processes.
                let version = core.versions(&tenant, &process_id).and_then(|versions| {
                    binding.pick(versions, caller_deployment, |d| d.deployment, |d| d.model.version_tag())
                });
                let started = match version.cloned() {
                    Some(deployed) => {
                        let parent = ParentRef {
                            instance_id: id.to_string(),
                            element_instance,
                            depth: parent_depth,
                            element_id: call_element,
                        };
                        // A called instance works for the same business case as its caller.
                        let options = StartOptions {
                            variables,
                            parent: Some(parent),
                            business_key,
                            ..StartOptions::default()
                        };
                        self.start_instance(deployed, NewId::Derived(instance_id), options, None)
                    }
                    None => Err(Error::NotFound {
                        what: "workflow",
                        id: describe_binding(&process_id, &binding),
                    }),
                };
                if let Err(Error::Fault(fault)) = started {
                    // A child that fails as it starts is the call activity's fault.
                    let site = FaultSite::ElementInstance(element_instance);
                    return Err(Error::Fault(Fault {
                        instance_id: Some(id.to_string()),
                        site,
                        ..fault
                    }));
                }
                if let Err(error) = started {
                    let message = match error {
                        Error::NotFound { id, .. } => {
                            format!("the called process {id} is not deployed")
                        }
                        other => other.to_string(),
                    };
                    self.step(
                        core,
                        id,
                        Input::ChildNotStarted {
                            element_instance,
                            message,
                        },
                    )?;
                }
            }
            Effect::EvaluateDecision { element_instance, decision_id, binding, variables } => {
                let (tenant, caller_deployment) = {
                    let loaded = self.load(core, id)?;
                    (loaded.deployed.tenant.clone(), loaded.deployed.deployment)
                };
                // A business rule task evaluates its own tenant's decisions.
                let outcome = core
                    .decisions
                    .pick(&tenant, &decision_id, &binding, caller_deployment)
                    .and_then(|decision| crate::decisions::evaluate(decision, &variables, self.now));
                self.step(core, id, Input::DecisionEvaluated { element_instance, outcome })?;
            }
            Effect::CancelChild { instance_id }
                if self.loaded.contains_key(&instance_id)
                    || self.tx.instance(&instance_id)?.is_some() =>
            {
                // A child that already ended refuses; there is nothing left to cancel.
                let reason = Some(format!(
                    "its parent instance {id} was cancelled or left the call activity"
                ));
                unless_failed(self.step(core, &instance_id, Input::Cancel { reason }))?;
            }
            Effect::BroadcastSignal { name, variables } => {
                // A thrown signal reaches its own tenant only.
                let (tenant, _) = self.process_of(core, id)?;
                self.deliver_signal(core, &tenant, &name, &variables)?
            }
            Effect::InstanceEnded {
                status,
                variables,
                error_code,
            } => {
                match status {
                    Status::Completed => self.counts.instances_completed += 1,
                    Status::Cancelled => self.counts.instances_cancelled += 1,
                    Status::Failed => self.counts.instances_failed += 1,
                    Status::Running | Status::Suspended => {}
                }
                if let Some(keep) = core.retention_of(&*self.load(core, id)?.deployed.workflow()?) {
                    self.tx.apply(Write::ScheduleDeletion { instance_id: id.to_string(), at: self.now.saturating_add(keep) })?;
                }
                self.start_buffered_for(core, id)?;
                let Some(parent) = self.load(core, id)?.state.parent.clone() else {
                    return Ok(());
                };
                let element_instance = parent.element_instance;
                let input = match status {
                    Status::Completed => Input::ChildCompleted {
                        element_instance,
                        variables,
                    },
                    Status::Failed => Input::ChildFailed {
                        element_instance,
                        code: error_code.unwrap_or_default(),
                    },
                    _ => Input::ChildCancelled { element_instance },
                };
                // The parent may have ended (it cancelled this child); then there is no one to tell.
                unless_failed(self.step(core, &parent.instance_id, input))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn deliver_signal(
        &mut self,
        core: &mut Core,
        tenant: &str,
        name: &str,
        variables: &Variables,
    ) -> Result<(), Error> {
        for subscription in self.tx.signal_subscriptions(tenant, name)? {
            if self.status(core, &subscription.instance_id)? != Status::Running {
                continue;
            }
            // A subscription closed by an earlier delivery is simply skipped.
            let input = Input::SignalReceived {
                subscription: subscription.local_key,
                variables: variables.clone(),
            };
            unless_failed(self.step(core, &subscription.instance_id, input))?;
        }
        for (deployed, element) in core.start_events(
            tenant,
            |t| matches!(t, Trigger::Signal { name: bpmn::Property::Literal(n) } if n == name),
        )? {
            let id = core.ids.next_instance_id();
            let options = StartOptions {
                variables: variables.clone(),
                start_event: Some(element),
                ..StartOptions::default()
            };
            self.start_instance(deployed, NewId::Generated(id), options, None)?;
        }
        Ok(())
    }

    /// An instance started by a message ended: a buffered message with the same key may start the next.
    fn start_buffered_for(&mut self, core: &mut Core, id: &str) -> Result<(), Error> {
        let loaded = self.load(core, id)?;
        let (tenant, process_id, start_key) = (
            loaded.deployed.tenant.clone(),
            loaded.state.process_id.clone(),
            loaded.start_key.clone(),
        );
        let Some(correlation_key) = start_key else {
            return Ok(());
        };
        let Some(deployed) = core.latest(&tenant, &process_id).cloned() else {
            return Ok(());
        };
        // The process's message start events: (message name, element id).
        let workflow = deployed.workflow()?;
        let starts: Vec<(String, String)> = workflow.elements[Workflow::ROOT]
            .children
            .iter()
            .filter_map(|&c| match &workflow.elements[c].kind {
                Kind::StartEvent {
                    trigger: Trigger::Message(m),
                    ..
                } => match &m.name {
                    bpmn::Property::Literal(name) => {
                        Some((name.clone(), workflow.elements[c].id.clone()))
                    }
                    bpmn::Property::Expression(_) => None,
                },
                _ => None,
            })
            .collect();
        for (name, element) in starts {
            self.tx.lock(&store::Lock::Correlation { tenant: &tenant, name: &name, correlation_key: &correlation_key })?;
            let buffered = self
                .tx
                .buffered_messages(&tenant, &name, &correlation_key, self.now)?;
            if let Some(mut message) = buffered
                .into_iter()
                .find(|m| !m.correlated.contains(&process_id))
            {
                message.correlated.push(process_id.clone());
                let variables = message.variables.clone();
                self.tx.apply(Write::PutMessage(message))?;
                let new_id = core.ids.next_instance_id();
                let options = StartOptions {
                    variables,
                    start_event: Some(element),
                    ..StartOptions::default()
                };
                self.start_instance(deployed, NewId::Generated(new_id), options, Some(correlation_key))?;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Writes every instance this command changed, and keeps them all in the cache.
    fn flush(self, cache: &RefCell<InstanceCache>) -> Result<(), Error> {
        for (id, mut loaded) in self.loaded {
            if !loaded.changed {
                cache.borrow_mut().put(id, loaded, false);
                continue;
            }
            let state = loaded.state;
            if loaded.variables_indexed != Some(state.variables_changes) {
                let entries = store::VariableEntries::bring(&mut loaded.indexed_variables, &state.variables);
                if !entries.is_empty() {
                    self.tx.apply(Write::IndexVariables { instance_id: id.clone(), changes: store::VariableChanges::Known(entries) })?;
                }
                loaded.variables_indexed = Some(state.variables_changes);
            }
            let held = state.status == Status::Suspended;
            if held != loaded.held {
                self.tx.apply(Write::HoldWaits { instance_id: id.clone(), held })?;
                loaded.held = held;
            }
            let row = InstanceRow {
                id,
                number: loaded.number,
                process_id: state.process_id.clone(),
                tenant: loaded.deployed.tenant.clone(),
                version: state.version,
                status: state.status,
                business_key: state.business_key.clone(),
                parent_id: state.parent.as_ref().map(|p| p.instance_id.clone()),
                started_at: state.started_at,
                ended_at: state.ended_at,
                incidents: state.incidents.len() as u32,
                waiting: waiting_kinds(&state),
                start_key: loaded.start_key,
                update_count: state.update_count,
                history_count: loaded.history_count,
                state,
            };
            self.tx.put_instance_if(&row, loaded.stored)?;
            loaded.stored = Some(row.update_count);
            loaded.state = row.state;
            loaded.start_key = row.start_key;
            cache.borrow_mut().put(row.id, loaded, true);
        }
        Ok(())
    }
}

fn describe_binding(process_id: &str, binding: &bpmn::Binding) -> String {
    match binding {
        bpmn::Binding::Latest => format!("'{process_id}'"),
        bpmn::Binding::Deployment => format!("'{process_id}' (from the caller's deployment)"),
        bpmn::Binding::VersionTag(tag) => format!("'{process_id}' with version tag '{tag}'"),
    }
}
