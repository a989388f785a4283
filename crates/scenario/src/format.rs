//! The scenario file format (`conformance/FORMAT.md`): a public contract, so
//! every struct refuses unknown keys.

use serde::Deserialize;
use serde_json::Value as Json;

/// A file: one scenario, or several under `scenarios:` sharing a `deploy:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub name: Option<String>,
    pub deploy: Option<Vec<DeploySpec>>,
    pub clock: Option<String>,
    pub steps: Option<Vec<Step>>,
    pub deploy_error: Option<DeployError>,
    pub scenarios: Option<Vec<Scenario>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub deploy: Option<Vec<DeploySpec>>,
    pub clock: Option<String>,
    pub steps: Option<Vec<Step>>,
    pub deploy_error: Option<DeployError>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum DeploySpec {
    Path(String),
    Inline(InlineModel),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineModel {
    pub name: String,
    pub xml: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployError {
    pub element: Option<String>,
    pub code: Option<String>,
}

/// One step: exactly one action or `expect`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub start: Option<Start>,
    pub complete_job: Option<JobAction>,
    pub fail_job: Option<FailJob>,
    pub throw_error: Option<ThrowError>,
    pub complete_task: Option<TaskAction>,
    pub claim_task: Option<ClaimTask>,
    pub update_task: Option<UpdateTask>,
    pub publish_message: Option<PublishMessage>,
    pub broadcast_signal: Option<BroadcastSignal>,
    /// Baton's extension: Camunda's evaluate-conditionals call (conditional start events of the processes).
    pub evaluate_conditionals: Option<EvaluateConditionals>,
    pub advance_time: Option<String>,
    pub set_variables: Option<SetVariables>,
    pub cancel: Option<Target>,
    pub suspend: Option<Target>,
    pub resume: Option<Target>,
    pub update_retries: Option<UpdateRetries>,
    pub resolve_incident: Option<ResolveIncident>,
    pub modify: Option<Modify>,
    pub expect: Option<Expect>,
    pub expect_rejection: Option<bool>,
    pub code: Option<String>,
}

/// Which instance an action or expectation is about.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

pub type Variables = serde_json::Map<String, Json>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub process: String,
    #[serde(default)]
    pub variables: Variables,
    pub business_key: Option<String>,
    pub version: Option<u32>,
    #[serde(rename = "as")]
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobAction {
    pub element: Option<String>,
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    #[serde(default)]
    pub variables: Variables,
    /// For an ad-hoc subprocess's job: its decision (Camunda's job result fields).
    #[serde(default)]
    pub result: Option<engine::JobResult>,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailJob {
    pub element: Option<String>,
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    pub retries: u32,
    #[serde(default)]
    pub message: String,
    pub backoff: Option<String>,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrowError {
    pub element: Option<String>,
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub variables: Variables,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskAction {
    pub element: String,
    #[serde(default)]
    pub variables: Variables,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimTask {
    pub element: String,
    pub assignee: String,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

/// Changes a user task's dates, candidates or priority (Camunda's field names: `dueDate`, `priority`, ...).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    pub element: String,
    pub changes: engine::TaskCorrections,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishMessage {
    pub name: String,
    pub correlation_key: Option<Json>,
    #[serde(default)]
    pub variables: Variables,
    pub ttl: Option<String>,
    pub message_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastSignal {
    pub name: String,
    #[serde(default)]
    pub variables: Variables,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateConditionals {
    #[serde(default)]
    pub variables: Variables,
    pub workflow: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetVariables {
    pub variables: Variables,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRetries {
    pub element: Option<String>,
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    pub retries: u32,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveIncident {
    pub element: String,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modify {
    #[serde(default)]
    pub activate: Vec<String>,
    #[serde(default)]
    pub terminate: Vec<String>,
    pub instance: Option<String>,
    pub instance_of: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub instance: Option<String>,
    pub instance_of: Option<String>,
    pub status: Option<String>,
    pub waiting: Option<Vec<String>>,
    pub completed: Option<Vec<String>>,
    pub completed_include: Option<Vec<String>>,
    pub not_completed: Option<Vec<String>>,
    pub terminated: Option<Vec<String>>,
    pub terminated_include: Option<Vec<String>>,
    pub jobs: Option<Vec<ExpectJob>>,
    pub tasks: Option<Vec<ExpectTask>>,
    pub variables: Option<Variables>,
    pub variables_absent: Option<Vec<String>>,
    pub incidents: Option<Vec<ExpectIncident>>,
    pub timers: Option<Vec<ExpectTimer>>,
    pub subscriptions: Option<Vec<ExpectSubscription>>,
    pub error_code: Option<String>,
    pub instances: Option<Vec<ExpectInstances>>,
}

#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectJob {
    pub element: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectTask {
    pub element: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_users: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectIncident {
    pub element: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectTimer {
    pub element: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectSubscription {
    pub element: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_key: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectInstances {
    pub process: String,
    pub status: String,
    pub count: usize,
}

/// Actions that can name their instance.
pub trait Targeted {
    fn target(&self) -> Target;
}

macro_rules! targeted {
    ($($name:ident),*) => {$(
        impl Targeted for $name {
            fn target(&self) -> Target {
                Target { instance: self.instance.clone(), instance_of: self.instance_of.clone() }
            }
        }
    )*};
}

targeted!(JobAction, FailJob, ThrowError, TaskAction, ClaimTask, UpdateTask, SetVariables, UpdateRetries, ResolveIncident, Modify);

impl Targeted for Target {
    fn target(&self) -> Target {
        self.clone()
    }
}

impl Targeted for Expect {
    fn target(&self) -> Target {
        Target { instance: self.instance.clone(), instance_of: self.instance_of.clone() }
    }
}
