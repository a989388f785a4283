//! The compiled workflow model: a flat arena of elements and sequence flows,
//! with every reference resolved to an index and every expression parsed.

use std::collections::BTreeMap;

use feel::Expression;

use crate::timer::TimerDefinition;

/// Index of an element in [`Workflow::elements`].
pub type ElementIdx = usize;
/// Index of a sequence flow in [`Workflow::flows`].
pub type FlowIdx = usize;

/// One executable BPMN process, ready for the engine.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// The BPMN process id: the workflow's key.
    pub process_id: String,
    pub name: Option<String>,
    pub executable: bool,
    /// `zeebe:versionTag`, which call activities can bind to.
    pub version_tag: Option<String>,
    /// Element 0 is the process itself.
    pub elements: Vec<Element>,
    pub flows: Vec<Flow>,
    pub element_by_id: BTreeMap<String, ElementIdx>,
    /// The forms embedded in the process (`zeebe:userTaskForm`), by their id: Camunda Form JSON.
    pub forms: BTreeMap<String, String>,
    /// Length of the longest path through the model; the engine bounds its
    /// steps per input with it.
    pub size_hint: usize,
}

impl Workflow {
    pub const ROOT: ElementIdx = 0;

    pub fn element(&self, id: &str) -> Option<&Element> {
        self.element_by_id.get(id).map(|&i| &self.elements[i])
    }

    /// The none start event of a scope (the process or an embedded subprocess).
    pub fn none_start(&self, scope: ElementIdx) -> Option<ElementIdx> {
        self.elements[scope].children.iter().copied().find(|&child| {
            matches!(self.elements[child].kind, Kind::StartEvent { trigger: Trigger::None, .. })
        })
    }

    /// The compensation event subprocess of a subprocess, if it has one.
    pub fn compensation_event_subprocess(&self, scope: ElementIdx) -> Option<ElementIdx> {
        self.event_subprocess_starts(scope)
            .find(|&start| matches!(self.elements[start].kind, Kind::StartEvent { trigger: Trigger::Compensation, .. }))
            .and_then(|start| self.elements[start].parent)
    }

    /// The start events of a scope's event subprocesses.
    pub fn event_subprocess_starts(&self, scope: ElementIdx) -> impl Iterator<Item = ElementIdx> + '_ {
        self.elements[scope]
            .children
            .iter()
            .copied()
            .filter(|&c| matches!(self.elements[c].kind, Kind::SubProcess { triggered_by_event: true }))
            .flat_map(move |sub| {
                self.elements[sub].children.iter().copied().filter(|&c| matches!(self.elements[c].kind, Kind::StartEvent { .. }))
            })
    }
}

#[derive(Clone, Debug)]
pub struct Flow {
    pub id: String,
    pub source: ElementIdx,
    pub target: ElementIdx,
    pub condition: Option<Expression>,
    /// Whether the XML has a condition, even one that failed to parse (and was reported).
    pub declares_condition: bool,
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug)]
pub struct Element {
    pub id: String,
    /// The BPMN tag (`serviceTask`, `exclusiveGateway`, ...); `process` for the process.
    pub tag: String,
    pub name: Option<String>,
    /// The element's `<documentation>`, for people and for AI agents choosing tools.
    pub documentation: Option<String>,
    pub kind: Kind,
    /// The scope that contains the element (the process or a subprocess);
    /// `None` only for the process itself.
    pub parent: Option<ElementIdx>,
    pub incoming: Vec<FlowIdx>,
    pub outgoing: Vec<FlowIdx>,
    pub default_flow: Option<FlowIdx>,
    /// Boundary events attached to this activity.
    pub boundary_events: Vec<ElementIdx>,
    /// Elements directly inside this scope.
    pub children: Vec<ElementIdx>,
    pub inputs: Vec<Mapping>,
    pub outputs: Vec<Mapping>,
    pub loop_characteristics: Option<LoopCharacteristics>,
    /// `zeebe:properties`: name and value pairs for the applications around the engine (given to workers with its jobs).
    pub properties: BTreeMap<String, String>,
    /// `zeebe:executionListeners`: jobs that must complete before the element
    /// starts its work, and before it is left; and a user task's `zeebe:taskListeners`.
    pub listeners: Vec<Listener>,
    /// `isForCompensation`: a compensation handler, run only when compensation is thrown, never by a sequence flow.
    pub for_compensation: bool,
    /// For an activity with a compensation boundary event: the handler associated with that event.
    pub compensation_handler: Option<ElementIdx>,
    /// For an ad-hoc subprocess (a `SubProcess` whose tag is `adHocSubProcess`): how it runs.
    pub ad_hoc: Option<Box<AdHoc>>,
    pub line: u32,
    pub column: u32,
}

/// A value that is either literal text or a FEEL expression (`=` prefix).
#[derive(Clone, Debug, PartialEq)]
pub enum Property {
    Literal(String),
    Expression(Expression),
}

/// A Zeebe input or output mapping: `target` receives the value of `source`.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub source: Property,
    pub target: String,
}

/// An ad-hoc subprocess as Camunda 8.8 runs it: its inner elements run when
/// they are activated, by `activeElementsCollection` on entering or by its
/// job's result, each in an inner instance of its own.
#[derive(Clone, Debug, Default)]
pub struct AdHoc {
    /// `zeebe:adHoc activeElementsCollection`: the ids of the elements to activate on entering.
    pub active_elements: Option<Expression>,
    /// Evaluated each time an inner flow completes; without one, the
    /// subprocess completes when no inner flow runs.
    pub completion_condition: Option<Expression>,
    /// When the completion condition holds: terminate the inner flows still running (else wait for them).
    pub cancel_remaining: bool,
    /// `zeebe:adHoc outputCollection` and `outputElement`: one item per completed inner flow.
    pub output_collection: Option<String>,
    pub output_element: Option<Expression>,
    /// The job-worker implementation (`zeebe:taskDefinition`): a job decides
    /// what to activate and when the subprocess is done; a new job comes after
    /// each inner flow completes.
    pub job: Option<JobDefinition>,
    /// The elements that can be activated: the inner elements no sequence flow leads to.
    pub activatable: Vec<ElementIdx>,
}

#[derive(Clone, Debug)]
pub enum LoopCharacteristics {
    /// Boxed: the largest of an element's parts, on few of its elements.
    MultiInstance(Box<MultiInstance>),
    /// BPMN standard loop: repeat while `condition` holds, at most `maximum` times.
    Standard { condition: Option<Expression>, test_before: bool, maximum: Option<u64> },
}

#[derive(Clone, Debug)]
pub struct MultiInstance {
    pub sequential: bool,
    pub input_collection: Option<Expression>,
    /// Number of iterations when there is no input collection.
    pub cardinality: Option<Expression>,
    pub input_element: Option<String>,
    pub output_collection: Option<String>,
    pub output_element: Option<Expression>,
    pub completion_condition: Option<Expression>,
}

// Models are built once per deployment and read in place, so variant size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Kind {
    Process,
    SubProcess { triggered_by_event: bool },
    CallActivity(CallActivity),
    Task(TaskKind),
    StartEvent { trigger: Trigger, interrupting: bool },
    EndEvent(Throw),
    IntermediateCatch(Trigger),
    IntermediateThrow(Throw),
    Boundary { attached_to: ElementIdx, trigger: Trigger, cancel_activity: bool },
    Gateway(GatewayKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayKind {
    Exclusive,
    Parallel,
    Inclusive,
    EventBased,
}

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum TaskKind {
    /// Work for a job worker: service, send, business rule and script tasks
    /// with a task definition, and message throw events.
    Job(JobDefinition),
    /// Boxed: the largest definition, on a few elements of a model.
    User(Box<UserTaskDefinition>),
    /// A FEEL script whose result is stored in a variable.
    Script { expression: Expression, result_variable: Option<String> },
    /// A business rule task that evaluates a DMN decision (`zeebe:calledDecision`).
    Decision(CalledDecision),
    Receive(MessageDefinition),
    /// Manual and plain tasks: nothing to do, the token passes.
    PassThrough,
}

/// When a listener runs: an execution listener around any element's work,
/// or a user task listener (`zeebe:taskListeners`) before a change to its task takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerEvent {
    /// After the input mappings, before the element does its work.
    Start,
    /// After the output mappings, before the token leaves.
    End,
    /// Before a user task is created (its listeners may correct it, not deny it).
    Creating,
    /// Before a user task's assignee changes.
    Assigning,
    /// Before a user task's due date, follow-up date, priority or candidates change.
    Updating,
    /// Before a user task completes.
    Completing,
    /// Before a user task ends because its element is terminated (neither denied nor corrected).
    Canceling,
}

impl ListenerEvent {
    /// Whether it is a user task listener's event.
    pub fn is_task_event(self) -> bool {
        !matches!(self, ListenerEvent::Start | ListenerEvent::End)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListenerEvent::Start => "start",
            ListenerEvent::End => "end",
            ListenerEvent::Creating => "creating",
            ListenerEvent::Assigning => "assigning",
            ListenerEvent::Updating => "updating",
            ListenerEvent::Completing => "completing",
            ListenerEvent::Canceling => "canceling",
        }
    }
}

/// A listener: a job of its own type that must complete before what it listens to goes on.
#[derive(Clone, Debug)]
pub struct Listener {
    pub event: ListenerEvent,
    pub job: JobDefinition,
}

#[derive(Clone, Debug)]
pub struct CalledDecision {
    pub decision_id: Property,
    /// The variable the decision's result is stored in.
    pub result_variable: String,
    /// Which version of the decision: latest, deployed with the workflow, or by version tag.
    pub binding: Binding,
}

#[derive(Clone, Debug)]
pub struct JobDefinition {
    pub job_type: Property,
    pub retries: Property,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct UserTaskDefinition {
    pub assignee: Option<Property>,
    pub candidate_groups: Option<Property>,
    pub candidate_users: Option<Property>,
    pub due_date: Option<Property>,
    pub follow_up_date: Option<Property>,
    pub priority: Option<Property>,
    /// The form reference as written (kept on the task for applications that show it).
    pub form_key: Option<String>,
    pub form: Option<FormLink>,
}

/// The form a user task is completed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormLink {
    /// `formKey="camunda-forms:bpmn:ID"`: the process's `zeebe:userTaskForm` with this id.
    Embedded(String),
    /// `formId`: a form deployed beside the BPMN, in the version the binding picks.
    Deployed { form_id: String, binding: Binding },
    /// `externalReference`, or a form key Baton does not resolve: the application showing the task knows it.
    External(String),
}

#[derive(Clone, Debug)]
pub struct CallActivity {
    pub process_id: Property,
    pub binding: Binding,
    pub propagate_all_child_variables: bool,
    pub propagate_all_parent_variables: bool,
}

/// Which version of the called process a call activity starts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// The latest deployed version.
    Latest,
    /// The version deployed in the same deployment as the caller.
    Deployment,
    /// The latest version with this `zeebe:versionTag`.
    VersionTag(String),
}

impl Binding {
    /// The version a binding picks from `versions` (oldest first): the latest;
    /// the one deployed in `deployment` (the caller's); or the latest with the tag.
    pub fn pick<'v, T>(&self, versions: &'v [T], deployment: u64, deployment_of: impl Fn(&T) -> u64, tag_of: impl Fn(&T) -> Option<&str>) -> Option<&'v T> {
        match self {
            Binding::Latest => versions.last(),
            Binding::Deployment => versions.iter().find(|v| deployment_of(v) == deployment),
            Binding::VersionTag(tag) => versions.iter().rev().find(|v| tag_of(v) == Some(tag.as_str())),
        }
    }
}

#[derive(Clone, Debug)]
pub struct MessageDefinition {
    pub name: Property,
    pub correlation_key: Option<Property>,
}

/// What a catching event waits for.
#[derive(Clone, Debug)]
pub enum Trigger {
    None,
    Timer(TimerDefinition),
    Message(MessageDefinition),
    Signal { name: Property },
    /// `code: None` catches every error.
    Error { code: Option<String> },
    /// `code: None` catches every escalation.
    Escalation { code: Option<String> },
    Link { name: String },
    /// A compensation boundary event (it marks its activity as compensable) or
    /// the start of a compensation event subprocess.
    Compensation,
    /// Fires when its condition is true: when it is armed, and after each
    /// change to a variable the condition reads (Camunda 8.9's conditional events).
    Conditional(Conditional),
}

#[derive(Clone, Debug)]
pub struct Conditional {
    pub condition: Expression,
    /// `zeebe:conditionalFilter variableEvents`: which changes make it look again (both when not said).
    pub on_create: bool,
    pub on_update: bool,
}

/// What an end or intermediate throw event does.
#[derive(Clone, Debug)]
pub enum Throw {
    None,
    Terminate,
    Error { code: String },
    Escalation { code: String },
    Signal { name: Property },
    Link { name: String },
    /// A message throw event handed to a job worker.
    Job(JobDefinition),
    /// Compensates the completed activities of the scope (or the one `activity`
    /// names); with `wait`, the event is done when their handlers are.
    Compensate { activity: Option<ElementIdx>, wait: bool },
}

/// A shape or an edge of the diagram, kept so a UI can draw the model.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Diagram {
    pub shapes: BTreeMap<String, Bounds>,
    pub edges: BTreeMap<String, Vec<Point>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Bounds {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}
