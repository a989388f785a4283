//! The state of one instance. Everything here is serializable and ordered
//! (`BTreeMap`, `Vec`), so the same inputs always give byte-identical state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::table::Table;

/// JSON variables of one scope.
pub type Variables = serde_json::Map<String, serde_json::Value>;

/// A key local to an instance: element instances, jobs, timers, user tasks,
/// subscriptions and incidents share one counter. The runtime makes it global
/// by pairing it with the instance id.
pub type Key = u64;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Suspended,
    Completed,
    Cancelled,
    /// Ended by an uncaught error end event.
    Failed,
}

impl Status {
    pub fn is_ended(self) -> bool {
        matches!(self, Status::Completed | Status::Cancelled | Status::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Suspended => "suspended",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
        }
    }
}

/// Where a child instance reports back to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParentRef {
    pub instance_id: String,
    pub element_instance: Key,
    /// The parent's own depth.
    pub depth: u32,
    /// The call activity's element id.
    #[serde(default)]
    pub element_id: String,
}

/// An element at a moment: the end event that completed an instance, the
/// last send task it completed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElementAt {
    pub element_id: String,
    pub element_name: Option<String>,
    pub at: Millis,
}

/// Why a `failed` instance failed: the error nobody caught, and where it was thrown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub code: String,
    pub message: Option<String>,
    pub element_id: String,
    /// The element the token came from to the error end event: where a rerun starts by default.
    #[serde(default)]
    pub after: Option<String>,
}

fn first_run() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// The schema version of this blob.
    pub schema: u32,
    pub id: String,
    pub process_id: String,
    pub version: u32,
    pub status: Status,
    pub business_key: Option<String>,
    /// The variables the instance was started with; never changed.
    pub input: Variables,
    /// The instance's own scope: its current variables (kept after it ends).
    pub variables: Variables,
    /// How many times `variables` changed: a store that indexes them writes
    /// its index again only when this moved since it last did.
    #[serde(default)]
    pub variables_changes: u64,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    /// For `failed`: the error code of the uncaught error end event.
    pub error_code: Option<String>,
    /// For `cancelled`: why, as the canceller said (or as the engine did, for a cancelled child).
    #[serde(default)]
    pub cancel_reason: Option<String>,
    pub parent: Option<ParentRef>,
    /// How many call activities deep this instance is (0 for an instance started from outside).
    pub depth: u32,
    /// How many inputs changed this instance.
    pub update_count: u64,
    pub next_key: Key,
    /// The key of the element instance of the process itself (it holds the
    /// instance's variables).
    pub root: Key,
    /// Active element instances.
    pub element_instances: Table<ElementInstance>,
    pub jobs: Table<Job>,
    pub timers: Table<Timer>,
    pub user_tasks: Table<UserTask>,
    pub subscriptions: Table<Subscription>,
    pub incidents: Table<Incident>,
    /// Armed conditional events: each looks at its condition again when a variable it reads changes.
    #[serde(default)]
    pub conditions: Table<ConditionWait>,
    /// When an input last changed it (its start, at first).
    #[serde(default)]
    pub updated_at: Millis,
    /// Who started it and who last changed it, as the runtime was told
    /// (`None`: the engine itself, such as a timer).
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub updated_by: Option<String>,
    /// What identifies it to the outside world, apart from its variables.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// For `completed`: the end event of its own scope that was reached last.
    #[serde(default)]
    pub end: Option<ElementAt>,
    /// For `failed`: the error nobody caught.
    #[serde(default)]
    pub error: Option<ErrorRecord>,
    /// Which execution this is: 1, then one more for every rerun.
    #[serde(default = "first_run")]
    pub run: u32,
    /// The send task it completed last (its last communication).
    #[serde(default)]
    pub last_send_task: Option<ElementAt>,
    /// An error end event nobody catches raises an incident (as Camunda 8
    /// does) instead of failing the instance; chosen when the instance starts.
    #[serde(default)]
    pub uncaught_errors_incident: bool,
    /// The start event the instance enters once the process's start listeners have completed.
    #[serde(default)]
    pub pending_start: Option<usize>,
    /// Terminations that wait for user tasks' canceling listeners.
    #[serde(default)]
    pub pending_terminations: Vec<PendingTermination>,
}

/// A termination that waits for the canceling listeners of user tasks inside
/// what it terminates, and what happens once it is done (as Camunda 8 holds
/// an interrupted task's termination, and what follows it, until they complete).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingTermination {
    /// The element instances it terminates, with everything inside them.
    pub keys: Vec<Key>,
    /// The user tasks whose canceling listeners still run.
    pub waiting: Vec<Key>,
    pub then: AfterTermination,
}

/// What follows a termination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterTermination {
    Nothing,
    /// An interrupting boundary event goes on in `scope`.
    Boundary { boundary: usize, scope: Key, variables: Variables },
    /// An interrupting event subprocess starts in `scope`.
    EventSubprocess { scope: Key, event_subprocess: usize, start: usize, variables: Variables },
    /// A terminate end event completes.
    Complete { element_instance: Key },
    EndInstance { status: Status, error_code: Option<String> },
    /// A multi-instance body whose completion condition held completes.
    FinishMultiInstance { body: Key },
    ScopeCheck { scope: Key },
}

/// About how many bytes a value takes as JSON, counted without recursion
/// (whatever its depth).
pub fn json_bytes(value: &serde_json::Value) -> usize {
    let mut bytes = 0usize;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        bytes = bytes.saturating_add(match value {
            serde_json::Value::String(s) => s.len() + 2,
            serde_json::Value::Array(items) => {
                stack.extend(items);
                2 + items.len()
            }
            serde_json::Value::Object(map) => {
                stack.extend(map.values());
                2 + map.keys().map(|k| k.len() + 4).sum::<usize>()
            }
            _ => 8,
        });
    }
    bytes
}

impl InstanceState {
    /// About how many bytes, as JSON, the instance's variables take: its
    /// input, its own and every element instance's. It walks them all, as
    /// writing the state does.
    pub fn variables_bytes(&self) -> usize {
        let scopes = [&self.input, &self.variables].into_iter().chain(self.element_instances.values().map(|ei| &ei.variables));
        scopes.flatten().fold(0usize, |bytes, (name, value)| bytes.saturating_add(name.len() + 4 + json_bytes(value)))
    }

    /// The variable scopes visible from an element instance, innermost first
    /// (the instance's own scope last).
    pub fn scope_chain(&self, key: Key) -> Vec<&Variables> {
        let mut chain = Vec::new();
        let mut current = self.element_instances.get(&key);
        while let Some(ei) = current {
            if ei.key != self.root {
                chain.push(&ei.variables);
            }
            current = ei.parent.and_then(|p| self.element_instances.get(&p));
        }
        chain.push(&self.variables);
        chain
    }

    /// Every variable an element instance sees: its own over its scopes', by name.
    pub fn visible_variables(&self, key: Key) -> Variables {
        let mut all = Variables::new();
        for scope in self.scope_chain(key).into_iter().rev() {
            all.extend(scope.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all
    }

    /// The id of the instance at the top of its call chain (its own id when nobody called it).
    pub fn root_id(&self) -> &str {
        self.id.split('/').next().unwrap_or(&self.id)
    }

    pub const SCHEMA: u32 = 1;

    /// Open jobs a worker may take now: activatable, past any backoff, and the instance running.
    pub fn open_jobs(&self, now: Millis) -> impl Iterator<Item = &Job> {
        let running = self.status == Status::Running;
        self.jobs.values().filter(move |j| running && j.state == JobState::Activatable && j.not_before.is_none_or(|t| t <= now))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElementInstance {
    pub key: Key,
    /// Index of the element in its workflow version.
    pub element: usize,
    pub element_id: String,
    /// The element instance of the enclosing scope; `None` for the process.
    pub parent: Option<Key>,
    pub state: ElementState,
    /// Local variables of this scope (the process's own are `InstanceState::variables`).
    pub variables: Variables,
    pub started_at: Millis,
    /// 1-based iteration number for multi-instance and loop iterations; 1 otherwise.
    pub loop_counter: u32,
    /// For scopes: tokens that arrived at joining gateways inside this scope,
    /// per gateway element and incoming flow.
    pub joins: BTreeMap<usize, BTreeMap<usize, u32>>,
    pub multi_instance: Option<MultiInstanceBody>,
    /// For call activities: the child instance started for it.
    pub child_instance: Option<String>,
    /// How many times its element was entered in its scope, this one included
    /// (a loop drawn with gateways counts 1, 2, 3, ...).
    #[serde(default = "first_run")]
    pub iteration: u32,
    /// For scopes: how many times each element was entered inside it.
    #[serde(default)]
    pub entries: BTreeMap<usize, u32>,
    /// How many of its start, and of its end, execution listeners have completed.
    #[serde(default)]
    pub listened: (u32, u32),
    /// For scopes: the activities completed inside that compensation can undo, oldest first.
    #[serde(default)]
    pub compensable: Vec<Compensable>,
    /// For a compensation handler: what it runs for.
    #[serde(default)]
    pub compensating: Option<Compensating>,
    /// For an ad-hoc subprocess (not its inner instances): where it stands.
    #[serde(default)]
    pub ad_hoc: Option<AdHocState>,
}

/// Where an ad-hoc subprocess stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdHocState {
    /// It completes as soon as no inner flow runs: it has no completion
    /// condition and no job, or its condition held, or its job said so.
    pub done: bool,
}

/// What a running compensation handler reports to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compensating {
    /// The compensation throw event that waits for it, if one does.
    pub throw: Option<Key>,
}

/// A completed activity that compensation can undo, kept in the scope it
/// completed in; when that scope (a subprocess) completes, its records move
/// to the scope around it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compensable {
    /// The completed activity (element index).
    pub activity: usize,
    /// What undoes it: the handler its compensation boundary event is associated
    /// with, or the compensation event subprocess of the subprocess it is.
    pub handler: usize,
    /// The subprocesses the record moved out of, innermost first: compensating
    /// the outermost (`activityRef`) compensates what ran inside it.
    #[serde(default)]
    pub via: Vec<usize>,
    /// For a compensation event subprocess: the subprocess's own records and
    /// local variables when it completed, which the event subprocess runs with.
    #[serde(default)]
    pub inner: Vec<Compensable>,
    #[serde(default)]
    pub variables: Variables,
}

impl Compensable {
    /// The activity of the scope the record is kept in that it belongs to.
    pub fn outermost(&self) -> usize {
        self.via.last().copied().unwrap_or(self.activity)
    }
}

/// What a multi-instance body still has to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultiInstanceBody {
    /// The input collection, evaluated once when the body was activated.
    pub items: Vec<serde_json::Value>,
    /// The next iteration to start (0-based).
    pub next_index: usize,
    pub completed: usize,
    /// Output elements by iteration, in input order.
    pub outputs: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementState {
    /// Waiting for an outside input (job, user task, timer, message, child)
    /// or for its children to finish.
    Active,
    /// Stuck on an incident; resolving it runs this phase again.
    Incident(Phase),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Activate,
    Complete,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub key: Key,
    pub element_instance: Key,
    pub element_id: String,
    pub job_type: String,
    pub retries: u32,
    pub state: JobState,
    /// After a failure with backoff, the job is handed out again only from this time on.
    pub not_before: Option<Millis>,
    pub error_message: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub created_at: Millis,
    /// How many times a worker failed it; the attempt under way is `failures + 1`.
    #[serde(default)]
    pub failures: u32,
    /// For an execution listener's job: when it runs.
    #[serde(default)]
    pub listener: Option<bpmn::ListenerEvent>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Can be handed to a worker (after `not_before`, while the instance runs).
    Activatable,
    /// Out of retries, or its error was not caught: an incident is open.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub key: Key,
    /// The element instance that owns the timer: the catch event, the activity
    /// a boundary timer is attached to, the event-based gateway, or the scope
    /// of an event subprocess.
    pub element_instance: Key,
    /// The timer event element.
    pub element: usize,
    pub element_id: String,
    pub due_at: Millis,
    /// Firings left after this one for cycles (`None`: forever); absent for one-shot timers.
    pub repeat: Option<TimerRepeat>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerRepeat {
    pub remaining: Option<u32>,
    /// An ISO 8601 duration or a cron pattern (`bpmn::timer::next_due`).
    pub every: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserTask {
    pub key: Key,
    pub element_instance: Key,
    pub element_id: String,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub candidate_users: Vec<String>,
    pub due: Option<String>,
    pub follow_up: Option<String>,
    pub priority: Option<i64>,
    pub form_key: Option<String>,
    pub created_at: Millis,
    /// A change that waits for the task's listeners (`zeebe:taskListeners`).
    #[serde(default)]
    pub transition: Option<TaskTransition>,
}

/// A change to a user task that its listeners see first: each may correct
/// the task, and (but for creating) deny the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskTransition {
    pub event: bpmn::ListenerEvent,
    /// How many of the event's listeners have completed.
    pub done: u32,
    /// Assigning: the assignee asked for (`None` unassigns). Creating: the
    /// assignee the process gave, assigned once the task is created.
    pub assignee: Option<String>,
    /// Updating: the changes asked for.
    pub changes: crate::TaskCorrections,
    /// Completing: the variables it completes with.
    pub variables: Variables,
    /// What the listeners corrected so far.
    pub corrections: crate::TaskCorrections,
    /// Who asked (the command's words: `claim`, `assign`, `complete`, `update`).
    pub action: String,
}

/// A conditional event that is armed, owned like a subscription: the catch
/// event, the activity of a boundary event, the event-based gateway, or the
/// scope of an event subprocess.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionWait {
    pub key: Key,
    pub element_instance: Key,
    /// The conditional event element.
    pub element: usize,
    pub element_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub key: Key,
    pub element_instance: Key,
    /// The catching event (or receive task) element.
    pub element: usize,
    pub element_id: String,
    pub kind: SubscriptionKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionKind {
    Message { name: String, correlation_key: String },
    Signal { name: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub key: Key,
    pub element_instance: Key,
    pub element_id: String,
    pub kind: IncidentKind,
    pub message: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum IncidentKind {
    /// A job failed with no retries left.
    JobNoRetries { job: Key },
    /// A worker threw an error that no boundary event or event subprocess catches.
    UnhandledError { job: Key, code: String },
    /// An expression could not be evaluated (or gave a value of the wrong type).
    Expression,
    /// No outgoing flow of an exclusive or inclusive gateway could be taken.
    NoFlowTaken,
    /// The called process of a call activity is not deployed.
    CalledProcessMissing,
    /// A business rule task's decision is not deployed, or its evaluation failed.
    DecisionEvaluation,
    /// An error end event's error is caught by nothing (with `uncaught_errors_incident`).
    UncaughtError,
    /// The instance ran too many steps without waiting: a cycle without a wait state.
    StepLimit,
    /// A call activity would nest instances deeper than `MAX_CALL_DEPTH` (a recursion that does not end).
    CallDepth,
    /// Applying an input failed inside Baton itself (a defect, such as a
    /// panic). The instance refuses every input but cancel and resolve until
    /// it is resolved; resolving fires `timer` again when the fault happened
    /// as it fired, and lets outside inputs (job completions, messages) come again.
    EngineFault { timer: Option<Key> },
    /// An input would have made the instance's variables larger than
    /// [`crate::MAX_VARIABLES_BYTES`], so it was not applied. The instance
    /// waits as after an engine fault: set smaller variables (or cancel),
    /// then resolve.
    VariablesTooLarge { timer: Option<Key> },
}

impl IncidentKind {
    pub fn name(&self) -> &'static str {
        match self {
            IncidentKind::JobNoRetries { .. } => "job_no_retries",
            IncidentKind::UnhandledError { .. } => "unhandled_error",
            IncidentKind::Expression => "expression",
            IncidentKind::NoFlowTaken => "no_flow_taken",
            IncidentKind::CalledProcessMissing => "called_process_missing",
            IncidentKind::DecisionEvaluation => "decision_evaluation",
            IncidentKind::UncaughtError => "unhandled_error_event",
            IncidentKind::StepLimit => "step_limit",
            IncidentKind::CallDepth => "call_depth",
            IncidentKind::EngineFault { .. } => "engine_fault",
            IncidentKind::VariablesTooLarge { .. } => "variables_too_large",
        }
    }
}

/// One record of what happened, appended in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Millis,
    pub element_instance: Key,
    pub element_id: String,
    /// The BPMN element type (`serviceTask`, `exclusiveGateway`, `process`, ...);
    /// `multiInstanceBody` for the body of a multi-instance activity.
    pub element_type: String,
    pub event: HistoryEvent,
    pub loop_counter: u32,
    /// For ended element instances: when they started.
    pub started_at: Millis,
    #[serde(default)]
    pub element_name: Option<String>,
    /// The instance's run this happened in.
    #[serde(default = "first_run")]
    pub run: u32,
    /// The element instance's iteration in its scope ([`ElementInstance::iteration`]).
    #[serde(default = "first_run")]
    pub iteration: u32,
    /// Who made the command this happened in (set by the runtime; `None`: the engine itself).
    #[serde(default)]
    pub actor: Option<String>,
    /// Why, as the operator said (operator actions only; set by the runtime).
    #[serde(default)]
    pub reason: Option<String>,
    /// `None` for the common entry that has nothing beyond its element (kept small: most entries are such).
    #[serde(default)]
    pub detail: Option<Box<HistoryDetail>>,
}

/// What happened, beyond the element: which job or task, what payload,
/// which incident. Only the fields that apply are set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryDetail {
    pub job: Option<JobRef>,
    /// The user task that completed the element instance.
    pub task: Option<Key>,
    pub incident: Option<IncidentRef>,
    /// The variables a job, task, message or operator brought, up to
    /// [`MAX_HISTORY_PAYLOAD`] bytes of JSON; beyond it `{"truncated": bytes}`.
    pub variables: Option<serde_json::Value>,
    /// For variable changes from outside: the names changed.
    pub names: Vec<String>,
    /// A job failure's or an incident's message.
    pub message: Option<String>,
    /// Retries left after a job failure, or set by an operator.
    pub retries: Option<u32>,
    /// A timer's new due time.
    pub due_at: Option<Millis>,
    /// The decision a business rule task evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionRef>,
}

/// Which decision a business rule task evaluated, and how it came out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRef {
    pub decision_id: String,
    pub version: u32,
    /// For each decision table evaluated (the decision and those it required):
    /// its decision's name and the numbers of the rules that matched, from 1.
    pub matched: Vec<(String, Vec<usize>)>,
}

/// A decision's result, as the runtime gives it back to the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionOutcome {
    pub value: serde_json::Value,
    pub decision: DecisionRef,
}

/// Largest variable payload kept in a history entry, in bytes of JSON.
pub const MAX_HISTORY_PAYLOAD: usize = 4096;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRef {
    pub key: Key,
    pub job_type: String,
    /// 1 for the first attempt, one more after every failure.
    pub attempt: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRef {
    pub key: Key,
    pub kind: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEvent {
    Activated,
    Completed,
    Terminated,
    IncidentRaised,
    /// An incident was resolved by an operator, or closed because its element ended.
    IncidentResolved,
    JobFailed,
    /// Variables set from outside (not by a completion, which has its own entry).
    VariablesSet,
    LabelsSet,
    Cancelled,
    Suspended,
    Resumed,
    Modified,
    RetriesSet,
    TimerRescheduled,
    Rerun,
    /// An execution listener's job completed.
    ListenerCompleted,
    /// A job that does not complete its element completed: an ad-hoc subprocess's, which decides what runs in it.
    JobCompleted,
}

impl HistoryEvent {
    /// Whether the entry records an element instance's life (rather than something done to it).
    pub fn is_element_event(self) -> bool {
        matches!(self, HistoryEvent::Activated | HistoryEvent::Completed | HistoryEvent::Terminated)
    }

    /// Whether an operator made it happen (so it carries a reason).
    pub fn is_operator_action(self) -> bool {
        matches!(
            self,
            HistoryEvent::IncidentResolved
                | HistoryEvent::VariablesSet
                | HistoryEvent::LabelsSet
                | HistoryEvent::Cancelled
                | HistoryEvent::Suspended
                | HistoryEvent::Resumed
                | HistoryEvent::Modified
                | HistoryEvent::RetriesSet
                | HistoryEvent::TimerRescheduled
                | HistoryEvent::Rerun
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEvent::Activated => "activated",
            HistoryEvent::Completed => "completed",
            HistoryEvent::Terminated => "terminated",
            HistoryEvent::IncidentRaised => "incident_raised",
            HistoryEvent::IncidentResolved => "incident_resolved",
            HistoryEvent::JobFailed => "job_failed",
            HistoryEvent::VariablesSet => "variables_set",
            HistoryEvent::LabelsSet => "labels_set",
            HistoryEvent::Cancelled => "cancelled",
            HistoryEvent::Suspended => "suspended",
            HistoryEvent::Resumed => "resumed",
            HistoryEvent::Modified => "modified",
            HistoryEvent::RetriesSet => "retries_set",
            HistoryEvent::TimerRescheduled => "timer_rescheduled",
            HistoryEvent::Rerun => "rerun",
            HistoryEvent::ListenerCompleted => "listener_completed",
            HistoryEvent::JobCompleted => "job_completed",
        }
    }
}

/// How many bytes `value` takes as JSON, counted without writing them anywhere.
fn json_size(value: &Variables) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// A payload as a history entry keeps it: whole up to [`MAX_HISTORY_PAYLOAD`]
/// bytes of JSON, else a marker with its size.
pub fn bounded_payload(variables: &Variables) -> Option<serde_json::Value> {
    if variables.is_empty() {
        return None;
    }
    let size = json_size(variables);
    Some(if size <= MAX_HISTORY_PAYLOAD {
        serde_json::Value::Object(variables.clone())
    } else {
        serde_json::json!({ "truncated": size, "names": variables.keys().collect::<Vec<_>>() })
    })
}
