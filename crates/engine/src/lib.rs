//! The token machine: `(workflow, instance state, input, now) -> new state + effects`.
//!
//! [`start`] creates an instance and [`step`] applies one [`Input`] to it. Each
//! call runs the instance forward until every token waits (on a job, a user
//! task, a timer, a message, a join) or the instance ends, and returns the
//! [`Effect`]s the runtime must carry out: create a job, schedule a timer,
//! append history, start a child instance, ...
//!
//! The engine is pure and synchronous: it does no I/O, reads no clock (time
//! comes in as `now`) and draws no random numbers (keys come from a counter in
//! the state), so the same inputs from the same state always give
//! byte-identical state and effects. A refused input is a [`Rejection`] and
//! leaves the state untouched; a business failure (retries exhausted, an
//! expression that fails at run time) is an incident in the state, never an
//! `Err` and never a panic. Work per input is bounded: a cycle without a wait
//! state becomes an incident, not a hang.

mod machine;
pub mod state;
mod table;
mod waits;

use std::fmt;

use bpmn::Workflow;
use serde::Serialize;

pub use state::*;
pub use waits::{waits, ArmedEvent, Wait};

/// Most work items one input may run before the rest are parked as incidents.
pub const MAX_STEPS_PER_INPUT: usize = 100_000;
/// Deepest nesting of instances through call activities (Camunda 8's default `maxProcessDepth`).
pub const MAX_CALL_DEPTH: u32 = 1000;
/// Most labels one instance may carry.
pub const MAX_LABELS: usize = 32;
/// Longest label name or value, in characters.
pub const MAX_LABEL_CHARS: usize = 256;
/// Most element instances one instance may hold at once.
pub const MAX_ELEMENT_INSTANCES: usize = 10_000;
/// The most an instance's variables may take, about, as JSON: every scope
/// together ([`InstanceState::variables_bytes`]).
pub const MAX_VARIABLES_BYTES: usize = 16 * 1024 * 1024;

/// How an instance is started.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    pub variables: Variables,
    pub business_key: Option<String>,
    /// Start at this start event (a message, timer or signal start event)
    /// instead of the none start event.
    pub start_event: Option<String>,
    pub parent: Option<ParentRef>,
    pub labels: std::collections::BTreeMap<String, String>,
    /// An error end event nobody catches raises an incident (Camunda 8's way) instead of failing the instance.
    pub uncaught_errors_incident: bool,
}

/// What a job decided, beyond its variables (Camunda 8's job result, with
/// its field names): an ad-hoc subprocess's job says what to activate in it
/// or that it is done; a user task listener's job may deny the change it
/// listens to, or correct the task.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobResult {
    /// `"adHocSubProcess"` or `"userTask"`, as Camunda's clients send it; it may be left out.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub activate_elements: Vec<ActivateElement>,
    #[serde(default)]
    pub is_completion_condition_fulfilled: bool,
    #[serde(default)]
    pub is_cancel_remaining_instances: bool,
    /// A user task listener refuses the change (assigning, updating, completing).
    #[serde(default)]
    pub denied: bool,
    #[serde(default)]
    pub denied_reason: Option<String>,
    #[serde(default)]
    pub corrections: Option<TaskCorrections>,
}

impl JobResult {
    fn is_for_ad_hoc(&self) -> bool {
        !self.activate_elements.is_empty() || self.is_completion_condition_fulfilled || self.is_cancel_remaining_instances
    }

    fn is_for_task(&self) -> bool {
        self.denied || self.denied_reason.is_some() || self.corrections.is_some()
    }
}

/// What a user task listener changes in its task before the change it
/// listens to takes effect. Left out (`null`): unchanged; `""` or `[]`: cleared.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskCorrections {
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub due_date: Option<String>,
    #[serde(default)]
    pub follow_up_date: Option<String>,
    #[serde(default)]
    pub candidate_users: Option<Vec<String>>,
    #[serde(default)]
    pub candidate_groups: Option<Vec<String>>,
    #[serde(default)]
    pub priority: Option<i64>,
}

impl TaskCorrections {
    /// Takes a later listener's corrections over these.
    pub fn merge(&mut self, later: TaskCorrections) {
        self.assignee = later.assignee.or(self.assignee.take());
        self.due_date = later.due_date.or(self.due_date.take());
        self.follow_up_date = later.follow_up_date.or(self.follow_up_date.take());
        self.candidate_users = later.candidate_users.or(self.candidate_users.take());
        self.candidate_groups = later.candidate_groups.or(self.candidate_groups.take());
        self.priority = later.priority.or(self.priority.take());
    }

    /// Writes what it says into a task: `""` clears a text, `[]` a list.
    pub fn apply_to(&self, task: &mut UserTask) {
        let text = |value: &String| Some(value.clone()).filter(|v| !v.is_empty());
        if let Some(assignee) = &self.assignee {
            task.assignee = text(assignee);
        }
        if let Some(due) = &self.due_date {
            task.due = text(due);
        }
        if let Some(follow_up) = &self.follow_up_date {
            task.follow_up = text(follow_up);
        }
        if let Some(users) = &self.candidate_users {
            task.candidate_users = users.clone();
        }
        if let Some(groups) = &self.candidate_groups {
            task.candidate_groups = groups.clone();
        }
        if let Some(priority) = self.priority {
            task.priority = Some(priority);
        }
    }
}

/// An element for an ad-hoc subprocess to activate, with the variables its inner instance starts with.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivateElement {
    pub element_id: String,
    #[serde(default)]
    pub variables: Variables,
}

/// An input from outside the instance.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// `result` is for an ad-hoc subprocess's job only: what to activate in it, or that it is done.
    CompleteJob { job: Key, variables: Variables, result: Option<JobResult> },
    /// `retries` is the number left after this failure; 0 raises an incident.
    /// `variables` are set on the job's element instance (its local scope), as Camunda 8 does.
    FailJob { job: Key, retries: u32, message: String, backoff_ms: Millis, variables: Variables },
    ThrowError { job: Key, code: String, message: String, variables: Variables },
    UpdateRetries { job: Key, retries: u32 },
    CompleteUserTask { task: Key, variables: Variables },
    /// `claim: true` is refused when someone else holds the task; `false` (re)assigns or, with `None`, unassigns.
    AssignUserTask { task: Key, assignee: Option<String>, claim: bool },
    /// Changes a user task's due date, follow-up date, candidates or priority (not its assignee).
    UpdateUserTask { task: Key, changes: TaskCorrections },
    TimerFired { timer: Key },
    MessageCorrelated { subscription: Key, variables: Variables },
    SignalReceived { subscription: Key, variables: Variables },
    /// A child instance started by a call activity completed.
    ChildCompleted { element_instance: Key, variables: Variables },
    /// A child instance ended with an error nobody in it caught.
    ChildFailed { element_instance: Key, code: String },
    /// A child instance was cancelled from outside.
    ChildCancelled { element_instance: Key },
    /// The child instance could not be started (its process is not deployed).
    ChildNotStarted { element_instance: Key, message: String },
    /// The decision a business rule task asked for was evaluated: its result
    /// (and which decision and rules), or why it could not be.
    DecisionEvaluated { element_instance: Key, outcome: Result<DecisionOutcome, String> },
    /// Ends the instance and everything in it; the reason is kept on the instance.
    Cancel { reason: Option<String> },
    Suspend,
    Resume,
    /// Sets variables on a scope (the instance's own scope when `None`).
    SetVariables { element_instance: Option<Key>, variables: Variables },
    ResolveIncident { incident: Key },
    /// Activates elements (by id) and terminates every active instance of others.
    Modify { activate: Vec<String>, terminate: Vec<String> },
    /// Sets labels (`Some`) and removes them (`None`).
    SetLabels { labels: std::collections::BTreeMap<String, Option<String>> },
    /// Moves a pending timer to a new due time.
    RescheduleTimer { timer: Key, due_at: Millis },
    /// Runs an ended instance again (its next run) with its original input,
    /// from an element of the process's own scope: by default the start
    /// event, or for a failed instance the element before the error end event.
    Rerun { from: Option<String> },
}

/// What the runtime must do after a step. The state already reflects it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    JobCreated { job: Job },
    /// Retries, backoff or state of a job changed.
    JobUpdated { job: Job },
    JobRemoved { key: Key },
    TimerScheduled { timer: Timer },
    TimerRemoved { key: Key },
    UserTaskCreated { task: UserTask },
    UserTaskUpdated { task: UserTask },
    /// A user task ended: `completed` by someone, or removed with its element (a boundary event, a cancellation).
    UserTaskRemoved { key: Key, completed: bool },
    SubscriptionOpened { subscription: Subscription },
    SubscriptionClosed { key: Key },
    IncidentRaised { incident: Incident },
    IncidentResolved { key: Key },
    History { entry: HistoryEntry },
    /// Start an instance of `process_id` (latest version) with id `instance_id`
    /// as a child of this element instance.
    StartChild { element_instance: Key, instance_id: String, process_id: String, binding: bpmn::Binding, variables: Variables },
    /// Evaluate the tenant's decision `decision_id` (the version the binding
    /// picks) with `variables`, and answer with [`Input::DecisionEvaluated`].
    EvaluateDecision { element_instance: Key, decision_id: String, binding: bpmn::Binding, variables: Variables },
    CancelChild { instance_id: String },
    BroadcastSignal { name: String, variables: Variables },
    /// The instance ended; with a parent, the runtime tells it.
    InstanceEnded { status: Status, variables: Variables, error_code: Option<String> },
}

/// Why an input was refused. The state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub code: RejectionCode,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectionCode {
    InstanceEnded,
    InstanceSuspended,
    InstanceNotSuspended,
    InstanceNotEnded,
    NoStartEvent,
    JobNotFound,
    JobNotActivatable,
    TaskNotFound,
    TaskClaimed,
    TimerNotFound,
    TimerNotDue,
    SubscriptionNotFound,
    IncidentNotFound,
    RetriesExhausted,
    ElementNotFound,
    ElementInstanceNotFound,
    InvalidVariables,
    /// A job result that is not for this job, or asks what cannot be.
    InvalidJobResult,
    /// A user task waits for its listeners to agree to an earlier change.
    TaskInTransition,
    InvalidLabels,
    InstanceFaulted,
}

impl RejectionCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::InstanceEnded => "instance-ended",
            RejectionCode::InstanceSuspended => "instance-suspended",
            RejectionCode::InstanceNotSuspended => "instance-not-suspended",
            RejectionCode::InstanceNotEnded => "instance-not-ended",
            RejectionCode::NoStartEvent => "no-start-event",
            RejectionCode::JobNotFound => "job-not-found",
            RejectionCode::JobNotActivatable => "job-not-activatable",
            RejectionCode::TaskNotFound => "task-not-found",
            RejectionCode::TaskClaimed => "task-claimed",
            RejectionCode::TimerNotFound => "timer-not-found",
            RejectionCode::TimerNotDue => "timer-not-due",
            RejectionCode::SubscriptionNotFound => "subscription-not-found",
            RejectionCode::IncidentNotFound => "incident-not-found",
            RejectionCode::RetriesExhausted => "retries-exhausted",
            RejectionCode::ElementNotFound => "element-not-found",
            RejectionCode::ElementInstanceNotFound => "element-instance-not-found",
            RejectionCode::InvalidVariables => "invalid-variables",
            RejectionCode::InvalidJobResult => "invalid-job-result",
            RejectionCode::TaskInTransition => "task-in-transition",
            RejectionCode::InvalidLabels => "invalid-labels",
            RejectionCode::InstanceFaulted => "instance-faulted",
        }
    }
}

impl Rejection {
    pub(crate) fn new(code: RejectionCode, message: impl Into<String>) -> Rejection {
        Rejection { code, message: message.into() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Rejection {}

/// Creates an instance of `workflow` (deployed as `version`) and runs it until it waits.
pub fn start(
    workflow: &Workflow,
    version: u32,
    id: String,
    options: StartOptions,
    now: Millis,
) -> Result<(InstanceState, Vec<Effect>), Rejection> {
    machine::start(workflow, version, id, options, now)
}

/// Applies one input to an instance and runs it until every token waits.
pub fn step(workflow: &Workflow, state: &mut InstanceState, input: Input, now: Millis) -> Result<Vec<Effect>, Rejection> {
    machine::step(workflow, state, input, now)
}

/// What an input was addressed to, kept (cheaply, before the input is
/// applied) so that a fault while applying it can be blamed on the right
/// element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSite {
    Job(Key),
    Task(Key),
    Timer(Key),
    Subscription(Key),
    ElementInstance(Key),
    Incident(Key),
    Instance,
}

impl FaultSite {
    pub fn of(input: &Input) -> FaultSite {
        match input {
            Input::CompleteJob { job, .. } | Input::FailJob { job, .. } | Input::ThrowError { job, .. } | Input::UpdateRetries { job, .. } => {
                FaultSite::Job(*job)
            }
            Input::CompleteUserTask { task, .. } | Input::AssignUserTask { task, .. } | Input::UpdateUserTask { task, .. } => FaultSite::Task(*task),
            Input::TimerFired { timer } | Input::RescheduleTimer { timer, .. } => FaultSite::Timer(*timer),
            Input::MessageCorrelated { subscription, .. } | Input::SignalReceived { subscription, .. } => FaultSite::Subscription(*subscription),
            Input::ChildCompleted { element_instance, .. }
            | Input::ChildFailed { element_instance, .. }
            | Input::ChildCancelled { element_instance }
            | Input::ChildNotStarted { element_instance, .. }
            | Input::DecisionEvaluated { element_instance, .. } => FaultSite::ElementInstance(*element_instance),
            Input::SetVariables { element_instance: Some(key), .. } => FaultSite::ElementInstance(*key),
            Input::ResolveIncident { incident } => FaultSite::Incident(*incident),
            Input::Cancel { .. }
            | Input::Suspend
            | Input::Resume
            | Input::SetVariables { element_instance: None, .. }
            | Input::Modify { .. }
            | Input::SetLabels { .. }
            | Input::Rerun { .. } => FaultSite::Instance,
        }
    }
}

/// Records that applying an input at `site` failed inside Baton (the
/// runtime caught a panic and threw the half-applied state away): an
/// `engine_fault` incident on the element the input was for. A timer that
/// was firing is kept in the state but its effect removes it from the
/// runtime's schedule until the incident is resolved, so it does not fire
/// (and fail) again on every turn.
pub fn fault(state: &mut InstanceState, site: FaultSite, message: String, now: Millis) -> Vec<Effect> {
    machine::fault(state, site, message, now, false)
}

/// Records that an input at `site` was not applied because it would have
/// made the instance's variables larger than [`MAX_VARIABLES_BYTES`]: a
/// `variables_too_large` incident, which stops the instance as an engine
/// fault does.
pub fn variables_too_large(state: &mut InstanceState, site: FaultSite, message: String, now: Millis) -> Vec<Effect> {
    machine::fault(state, site, message, now, true)
}

/// Where tokens wait now: the element ids of active element instances that
/// wait for outside input (tasks, catch events, event-based gateways, call
/// activities, multi-instance iterations), in key order.
pub fn waiting(workflow: &Workflow, state: &InstanceState) -> Vec<String> {
    use bpmn::Kind;
    state
        .element_instances
        .values()
        .filter(|ei| ei.multi_instance.is_none())
        .filter(|ei| {
            matches!(
                workflow.elements[ei.element].kind,
                Kind::Task(_)
                    | Kind::CallActivity(_)
                    | Kind::IntermediateCatch(_)
                    | Kind::Gateway(bpmn::GatewayKind::EventBased)
                    | Kind::IntermediateThrow(bpmn::Throw::Job(_))
                    | Kind::EndEvent(bpmn::Throw::Job(_))
            )
        })
        .map(|ei| ei.element_id.clone())
        .collect()
}
