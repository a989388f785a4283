//! The execution machinery behind [`crate::start`] and [`crate::step`].
//!
//! Work runs from a FIFO queue rather than by recursion, so long chains of
//! elements cannot overflow the stack, and the number of work items per input
//! is bounded ([`MAX_STEPS_PER_INPUT`]); what is left when the budget runs out
//! is parked as incidents, so no token is lost.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bpmn::{
    ElementIdx, FlowIdx, GatewayKind, JobDefinition, Kind, ListenerEvent, LoopCharacteristics, MessageDefinition, Property, TaskKind, Throw,
    Trigger, UserTaskDefinition, Workflow,
};
use feel::Expression;
use serde_json::Value as Json;

use crate::state::*;
use crate::{Effect, Input, Rejection, RejectionCode, StartOptions, MAX_CALL_DEPTH, MAX_ELEMENT_INSTANCES, MAX_LABELS, MAX_LABEL_CHARS, MAX_STEPS_PER_INPUT, MAX_VARIABLES_BYTES};

enum Work {
    /// A token arrives at `element` inside the scope `scope` (through `flow`).
    Arrive { element: ElementIdx, scope: Key, flow: Option<FlowIdx> },
    /// Run the activation of an element instance: input mappings, then its behaviour.
    Activate { ei: Key },
    /// Run the completion of an element instance: output mappings, then leave it.
    Complete { ei: Key },
    /// The scope may have no tokens left.
    ScopeCheck { scope: Key },
}

struct Machine<'a> {
    wf: &'a Workflow,
    st: &'a mut InstanceState,
    now: Millis,
    effects: Vec<Effect>,
    queue: VecDeque<Work>,
    steps: usize,
    /// Bytes of variable values written by this input, about, as JSON: the
    /// input stops at [`MAX_VARIABLES_BYTES`] as it does at [`MAX_STEPS_PER_INPUT`],
    /// so memory cannot run away inside one step.
    written: usize,
    /// What completed an element instance in this input (its job, task or
    /// payload), for the history entry that records the completion.
    completions: BTreeMap<Key, HistoryDetail>,
    /// The element a token last came from to an error end event, in this input.
    error_after: Option<String>,
    /// Variables written since conditions were last looked at, while any is
    /// armed: the scope written, the name, and whether it was created.
    touched: Vec<(Key, String, bool)>,
    /// Conditional events armed since conditions were last looked at: each looks once, whatever changed.
    fresh: Vec<Key>,
}

/// A failure that becomes an incident on an element instance.
struct Failure {
    kind: IncidentKind,
    message: String,
}

impl Failure {
    fn expression(message: impl Into<String>) -> Failure {
        Failure { kind: IncidentKind::Expression, message: message.into() }
    }
}

type Outcome = Result<(), Failure>;

pub(crate) fn start(
    wf: &Workflow,
    version: u32,
    id: String,
    options: StartOptions,
    now: Millis,
) -> Result<(InstanceState, Vec<Effect>), Rejection> {
    let start_event = match &options.start_event {
        Some(element_id) => match wf.element_by_id.get(element_id) {
            Some(&index)
                if matches!(wf.elements[index].kind, Kind::StartEvent { .. }) && wf.elements[index].parent == Some(Workflow::ROOT) =>
            {
                index
            }
            _ => {
                return Err(Rejection::new(
                    RejectionCode::NoStartEvent,
                    format!("'{element_id}' is not a start event of process '{}'", wf.process_id),
                ))
            }
        },
        None => wf.none_start(Workflow::ROOT).ok_or_else(|| {
            Rejection::new(
                RejectionCode::NoStartEvent,
                format!("process '{}' has no none start event; it starts only by message, timer or signal", wf.process_id),
            )
        })?,
    };
    let labels = options.labels.iter().map(|(name, value)| (name.clone(), Some(value.clone()))).collect();
    check_labels(&BTreeMap::new(), &labels)?;
    let mut st = InstanceState {
        schema: InstanceState::SCHEMA,
        id,
        process_id: wf.process_id.clone(),
        version,
        status: Status::Running,
        business_key: options.business_key,
        input: options.variables.clone(),
        variables: options.variables,
        variables_changes: 0,
        started_at: now,
        ended_at: None,
        error_code: None,
        cancel_reason: None,
        depth: options.parent.as_ref().map_or(0, |p| p.depth + 1),
        parent: options.parent,
        update_count: 0,
        next_key: 1,
        root: 0,
        element_instances: Table::new(),
        jobs: Table::new(),
        timers: Table::new(),
        user_tasks: Table::new(),
        subscriptions: Table::new(),
        incidents: Table::new(),
        conditions: Table::new(),
        updated_at: now,
        created_by: None,
        updated_by: None,
        labels: options.labels,
        end: None,
        error: None,
        run: 1,
        last_send_task: None,
        uncaught_errors_incident: options.uncaught_errors_incident,
        pending_start: Some(start_event),
        pending_terminations: Vec::new(),
    };
    let mut m = Machine::new(wf, &mut st, now);
    let root = m.create_ei(Workflow::ROOT, None, 1);
    m.st.root = root;
    m.open_event_subprocess_starts(root);
    // The process's start listeners first (none: the start event at once).
    m.queue.push_back(Work::Activate { ei: root });
    m.run();
    m.st.update_count = 1;
    let effects = std::mem::take(&mut m.effects);
    Ok((st, effects))
}

pub(crate) fn step(wf: &Workflow, st: &mut InstanceState, input: Input, now: Millis) -> Result<Vec<Effect>, Rejection> {
    let mut m = Machine::new(wf, st, now);
    m.check(&input)?;
    m.apply(input);
    m.run();
    m.st.update_count += 1;
    m.st.updated_at = now;
    Ok(m.effects)
}

pub(crate) fn fault(st: &mut InstanceState, site: crate::FaultSite, message: String, now: Millis, too_large: bool) -> Vec<Effect> {
    use crate::FaultSite;
    let (element_instance, element_id) = match site {
        FaultSite::Job(key) => st.jobs.get(&key).map(|j| (j.element_instance, j.element_id.clone())),
        FaultSite::Task(key) => st.user_tasks.get(&key).map(|t| (t.element_instance, t.element_id.clone())),
        FaultSite::Timer(key) => st.timers.get(&key).map(|t| (t.element_instance, t.element_id.clone())),
        FaultSite::Subscription(key) => st.subscriptions.get(&key).map(|s| (s.element_instance, s.element_id.clone())),
        FaultSite::ElementInstance(key) => st.element_instances.get(&key).map(|ei| (ei.key, ei.element_id.clone())),
        FaultSite::Incident(key) => st.incidents.get(&key).map(|i| (i.element_instance, i.element_id.clone())),
        FaultSite::Instance => None,
    }
    .unwrap_or_else(|| (st.root, st.process_id.clone()));
    let timer = match site {
        FaultSite::Timer(key) if st.timers.contains_key(&key) => Some(key),
        _ => None,
    };
    let key = st.next_key;
    st.next_key += 1;
    let incident = Incident { key, element_instance, element_id, kind: if too_large { IncidentKind::VariablesTooLarge { timer } } else { IncidentKind::EngineFault { timer } }, message, created_at: now };
    st.incidents.insert(key, incident.clone());
    st.update_count += 1;
    let mut effects = vec![Effect::IncidentRaised { incident }];
    if let Some(timer) = timer {
        effects.push(Effect::TimerRemoved { key: timer });
    }
    effects
}

fn reject<T>(code: RejectionCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}

/// Refuses label changes that would leave an instance with an empty or
/// overlong label, or with more than [`MAX_LABELS`].
fn check_labels(current: &BTreeMap<String, String>, changes: &BTreeMap<String, Option<String>>) -> Result<(), Rejection> {
    for (name, value) in changes {
        let too_long = |text: &str| text.chars().count() > MAX_LABEL_CHARS;
        if name.is_empty() || too_long(name) || value.as_deref().is_some_and(too_long) {
            return reject(
                RejectionCode::InvalidLabels,
                format!("label '{name}': a name is 1 to {MAX_LABEL_CHARS} characters and a value at most {MAX_LABEL_CHARS}"),
            );
        }
    }
    let added = changes.iter().filter(|(name, value)| value.is_some() && !current.contains_key(*name)).count();
    let removed = changes.iter().filter(|(name, value)| value.is_none() && current.contains_key(*name)).count();
    if current.len() + added - removed > MAX_LABELS {
        return reject(RejectionCode::InvalidLabels, format!("an instance has at most {MAX_LABELS} labels"));
    }
    Ok(())
}

impl<'a> Machine<'a> {
    fn new(wf: &'a Workflow, st: &'a mut InstanceState, now: Millis) -> Machine<'a> {
        Machine {
            wf,
            st,
            now,
            effects: Vec::new(),
            queue: VecDeque::new(),
            steps: 0,
            written: 0,
            completions: BTreeMap::new(),
            error_after: None,
            touched: Vec::new(),
            fresh: Vec::new(),
        }
    }

    // ----- validation: every refusal is decided here, before anything changes -----

    fn check(&self, input: &Input) -> Result<(), Rejection> {
        let status = self.st.status;
        if let Input::Rerun { from } = input {
            return self.check_rerun(from.as_deref());
        }
        if status.is_ended() {
            return reject(RejectionCode::InstanceEnded, format!("instance {} has ended ({})", self.st.id, status.as_str()));
        }
        if !matches!(input, Input::Cancel { .. } | Input::ResolveIncident { .. }) {
            // Setting variables is how an instance stopped for its variables' size is mended.
            let stops = |kind: &IncidentKind| match kind {
                IncidentKind::EngineFault { .. } => true,
                IncidentKind::VariablesTooLarge { .. } => !matches!(input, Input::SetVariables { .. }),
                _ => false,
            };
            if let Some(faulted) = self.st.incidents.values().find(|i| stops(&i.kind)) {
                return reject(
                    RejectionCode::InstanceFaulted,
                    format!(
                        "instance {} stopped at '{}' (incident {}, {}: {}); resolve the incident to let it go on",
                        self.st.id, faulted.element_id, faulted.key, faulted.kind.name(), faulted.message
                    ),
                );
            }
        }
        let suspended = status == Status::Suspended;
        let must_run = |what: &str| -> Result<(), Rejection> {
            if suspended {
                return reject(RejectionCode::InstanceSuspended, format!("instance {} is suspended; {what} until it is resumed", self.st.id));
            }
            Ok(())
        };
        match input {
            Input::CompleteJob { job, .. } | Input::FailJob { job, .. } | Input::ThrowError { job, .. } => {
                must_run("no job can be completed or failed")?;
                let Some(found) = self.st.jobs.get(job) else {
                    return reject(RejectionCode::JobNotFound, format!("job {job} does not exist (it was completed, cancelled or never created)"));
                };
                if found.state != JobState::Activatable {
                    return reject(RejectionCode::JobNotActivatable, format!("job {job} has an open incident; resolve it first"));
                }
                if let Input::CompleteJob { result, variables, .. } = input {
                    if found.listener.is_some_and(ListenerEvent::is_task_event) && !variables.is_empty() {
                        return reject(
                            RejectionCode::InvalidJobResult,
                            "a user task listener's job completes without variables (as in Camunda 8); correct the task with the result's corrections".to_string(),
                        );
                    }
                    if let Some(result) = result {
                        self.check_job_result(found, result)?;
                    }
                }
            }
            Input::UpdateRetries { job, .. } => {
                if !self.st.jobs.contains_key(job) {
                    return reject(RejectionCode::JobNotFound, format!("job {job} does not exist"));
                }
            }
            Input::CompleteUserTask { task, .. } => {
                must_run("no task can be completed")?;
                self.task_at_rest(*task)?;
            }
            Input::UpdateUserTask { task, changes } => {
                self.task_at_rest(*task)?;
                if changes.assignee.is_some() {
                    return reject(RejectionCode::InvalidVariables, "an update changes dates, candidates and priority; assign or claim the task to change its assignee".to_string());
                }
            }
            Input::AssignUserTask { task, assignee, claim } => {
                let found = self.task_at_rest(*task)?;
                if *claim {
                    if let (Some(current), Some(new)) = (&found.assignee, assignee) {
                        if current != new {
                            return reject(RejectionCode::TaskClaimed, format!("user task {task} is already assigned to {current}"));
                        }
                    }
                }
            }
            Input::TimerFired { timer } => {
                must_run("no timer fires")?;
                let Some(found) = self.st.timers.get(timer) else {
                    return reject(RejectionCode::TimerNotFound, format!("timer {timer} does not exist"));
                };
                if found.due_at > self.now {
                    let due = jiff::Timestamp::from_millisecond(found.due_at).map_or_else(|_| format!("{} ms", found.due_at), |t| t.to_string());
                    return reject(RejectionCode::TimerNotDue, format!("timer {timer} is due at {due}, not before"));
                }
            }
            Input::MessageCorrelated { subscription, .. } | Input::SignalReceived { subscription, .. } => {
                must_run("no message or signal is correlated")?;
                if !self.st.subscriptions.contains_key(subscription) {
                    return reject(RejectionCode::SubscriptionNotFound, format!("subscription {subscription} does not exist"));
                }
            }
            Input::ChildCompleted { element_instance, .. }
            | Input::ChildFailed { element_instance, .. }
            | Input::ChildCancelled { element_instance }
            | Input::ChildNotStarted { element_instance, .. }
            | Input::DecisionEvaluated { element_instance, .. } => {
                if !self.st.element_instances.contains_key(element_instance) {
                    return reject(RejectionCode::ElementInstanceNotFound, format!("element instance {element_instance} is not active"));
                }
            }
            Input::Cancel { .. } => {}
            Input::SetLabels { labels } => check_labels(&self.st.labels, labels)?,
            Input::Rerun { .. } => {}
            Input::RescheduleTimer { timer, .. } => {
                if !self.st.timers.contains_key(timer) {
                    return reject(RejectionCode::TimerNotFound, format!("timer {timer} does not exist"));
                }
            }
            Input::Suspend => must_run("it cannot be suspended again")?,
            Input::Resume => {
                if !suspended {
                    return reject(RejectionCode::InstanceNotSuspended, format!("instance {} is not suspended", self.st.id));
                }
            }
            Input::SetVariables { element_instance, .. } => {
                if let Some(key) = element_instance {
                    if !self.st.element_instances.contains_key(key) {
                        return reject(RejectionCode::ElementInstanceNotFound, format!("element instance {key} is not active"));
                    }
                }
            }
            Input::ResolveIncident { incident } => {
                let Some(found) = self.st.incidents.get(incident) else {
                    return reject(RejectionCode::IncidentNotFound, format!("incident {incident} does not exist"));
                };
                if let IncidentKind::JobNoRetries { job } | IncidentKind::UnhandledError { job, .. } = found.kind {
                    if self.st.jobs.get(&job).is_some_and(|j| j.retries == 0) {
                        return reject(
                            RejectionCode::RetriesExhausted,
                            format!("job {job} has no retries left; update its retries before resolving incident {incident}"),
                        );
                    }
                }
            }
            Input::Modify { activate, terminate } => {
                for id in activate {
                    let Some(&element) = self.wf.element_by_id.get(id) else {
                        return reject(RejectionCode::ElementNotFound, format!("process '{}' has no element '{id}'", self.wf.process_id));
                    };
                    if self.modification_scope(element).is_none() {
                        return reject(
                            RejectionCode::ElementNotFound,
                            format!("'{id}' cannot be activated: its enclosing subprocess has no active instance"),
                        );
                    }
                }
                for id in terminate {
                    if !self.st.element_instances.values().any(|ei| &ei.element_id == id && ei.key != self.st.root) {
                        return reject(RejectionCode::ElementNotFound, format!("no active instance of '{id}' to terminate"));
                    }
                }
            }
        }
        Ok(())
    }

    // ----- applying an input -----

    /// The user task, if it exists and no earlier change waits for its listeners.
    fn task_at_rest(&self, task: Key) -> Result<&UserTask, Rejection> {
        let Some(found) = self.st.user_tasks.get(&task) else {
            return reject(RejectionCode::TaskNotFound, format!("user task {task} does not exist"));
        };
        match &found.transition {
            Some(transition) => reject(
                RejectionCode::TaskInTransition,
                format!("user task {task} waits for its {} listeners to finish an earlier change; try again when they have", transition.event.as_str()),
            ),
            None => Ok(found),
        }
    }

    /// A job result fits its job: an ad-hoc subprocess's names elements it can
    /// activate; a user task listener's denies only what may be denied, and
    /// corrects the assignee on creating only when the process gave none.
    fn check_job_result(&self, job: &Job, result: &crate::JobResult) -> Result<(), Rejection> {
        let invalid = |message: String| reject(RejectionCode::InvalidJobResult, message);
        if let Some(event) = job.listener.filter(|e| e.is_task_event()) {
            if result.kind.as_deref().is_some_and(|k| k != "userTask") || result.is_for_ad_hoc() {
                return invalid(format!("job {} is a user task listener's: its result is of type userTask (denied, deniedReason, corrections)", job.key));
            }
            if result.denied && event == ListenerEvent::Creating {
                return invalid("a creating listener cannot deny the task's creation".to_string());
            }
            if event == ListenerEvent::Canceling && (result.denied || result.corrections.is_some()) {
                return invalid("a canceling listener neither denies the cancellation nor corrects the task".to_string());
            }
            let task = self.st.user_tasks.values().find(|t| t.element_instance == job.element_instance);
            let given = task.is_some_and(|t| t.assignee.is_some() || t.transition.as_ref().is_some_and(|tr| tr.assignee.is_some()));
            if event == ListenerEvent::Creating && given && result.corrections.as_ref().is_some_and(|c| c.assignee.is_some()) {
                return invalid("a creating listener corrects the assignee only when the process gave none; an assigning listener can".to_string());
            }
            return Ok(());
        }
        let ad_hoc = self
            .st
            .element_instances
            .get(&job.element_instance)
            .filter(|ei| ei.ad_hoc.is_some() && job.listener.is_none())
            .and_then(|ei| self.wf.elements[ei.element].ad_hoc.as_deref());
        let Some(ad_hoc) = ad_hoc else {
            return invalid(format!("job {} takes no result: only an ad-hoc subprocess's and a user task listener's jobs do", job.key));
        };
        if result.kind.as_deref().is_some_and(|k| k != "adHocSubProcess") || result.is_for_task() {
            return invalid(format!("job {} is an ad-hoc subprocess's: its result is of type adHocSubProcess (activateElements, isCompletionConditionFulfilled, isCancelRemainingInstances)", job.key));
        }
        if result.is_completion_condition_fulfilled && !result.activate_elements.is_empty() {
            return invalid("a job result either activates elements or fulfills the completion condition, not both".to_string());
        }
        for activate in &result.activate_elements {
            if !ad_hoc.activatable.iter().any(|&e| self.wf.elements[e].id == activate.element_id) {
                let known: Vec<&str> = ad_hoc.activatable.iter().map(|&e| self.wf.elements[e].id.as_str()).collect();
                return reject(
                    RejectionCode::ElementNotFound,
                    format!("'{}' is not an element the ad-hoc subprocess '{}' can activate (those are: {})", activate.element_id, job.element_id, known.join(", ")),
                );
            }
        }
        Ok(())
    }

    fn apply(&mut self, input: Input) {
        match input {
            Input::CompleteJob { job, variables, result } => {
                let Some(job) = self.remove_job(job) else { return };
                let ad_hoc = self.st.element_instances.get(&job.element_instance).is_some_and(|ei| ei.ad_hoc.is_some());
                if ad_hoc && job.listener.is_none() {
                    let detail = HistoryDetail { job: Some(Self::job_ref(&job)), variables: bounded_payload(&variables), ..HistoryDetail::default() };
                    self.absorb(job.element_instance, variables);
                    self.note(Some(job.element_instance), HistoryEvent::JobCompleted, detail);
                    self.ad_hoc_decided(job.element_instance, result.unwrap_or_default());
                    return;
                }
                if job.listener.is_some_and(ListenerEvent::is_task_event) {
                    self.task_listener_completed(&job, result.unwrap_or_default());
                    return;
                }
                if let Some(event) = job.listener {
                    // A listener's variables apply to its element; the element goes on where it stopped.
                    let detail = HistoryDetail { job: Some(Self::job_ref(&job)), variables: bounded_payload(&variables), ..HistoryDetail::default() };
                    self.absorb(job.element_instance, variables);
                    self.note(Some(job.element_instance), HistoryEvent::ListenerCompleted, detail);
                    let Some(ei) = self.st.element_instances.get_mut(&job.element_instance) else { return };
                    match event {
                        ListenerEvent::Start => {
                            ei.listened.0 += 1;
                            self.queue.push_back(Work::Activate { ei: job.element_instance });
                        }
                        ListenerEvent::End => {
                            ei.listened.1 += 1;
                            self.queue.push_back(Work::Complete { ei: job.element_instance });
                        }
                        // Handled above.
                        ListenerEvent::Creating | ListenerEvent::Assigning | ListenerEvent::Updating | ListenerEvent::Completing | ListenerEvent::Canceling => {}
                    }
                    return;
                }
                let detail = HistoryDetail { job: Some(Self::job_ref(&job)), variables: bounded_payload(&variables), ..HistoryDetail::default() };
                self.completions.insert(job.element_instance, detail);
                self.absorb(job.element_instance, variables);
                self.queue.push_back(Work::Complete { ei: job.element_instance });
            }
            Input::FailJob { job, retries, message, backoff_ms, variables } => {
                let now = self.now;
                let Some(found) = self.st.jobs.get_mut(&job) else { return };
                let failed = HistoryDetail {
                    job: Some(Self::job_ref(found)),
                    message: Some(message.clone()),
                    retries: Some(retries),
                    variables: bounded_payload(&variables),
                    ..HistoryDetail::default()
                };
                found.failures += 1;
                found.retries = retries;
                found.error_message = Some(message.clone());
                let owner = found.element_instance;
                self.note(Some(owner), HistoryEvent::JobFailed, failed);
                if !variables.is_empty() {
                    self.set_local(owner, variables);
                }
                let Some(found) = self.st.jobs.get_mut(&job) else { return };
                if retries == 0 {
                    found.state = JobState::Failed;
                    found.not_before = None;
                    let (ei, element_id) = (found.element_instance, found.element_id.clone());
                    let updated = found.clone();
                    self.effects.push(Effect::JobUpdated { job: updated });
                    self.raise_incident(ei, &element_id, IncidentKind::JobNoRetries { job }, message);
                } else {
                    found.not_before = (backoff_ms > 0).then_some(now.saturating_add(backoff_ms));
                    let updated = found.clone();
                    self.effects.push(Effect::JobUpdated { job: updated });
                }
            }
            Input::ThrowError { job, code, message, variables } => {
                let Some(ei) = self.st.jobs.get(&job).map(|j| j.element_instance) else { return };
                if self.find_error_catch(ei, &code).is_some() {
                    self.remove_job(job);
                    self.throw_error(ei, &code, variables);
                } else {
                    let Some(found) = self.st.jobs.get_mut(&job) else { return };
                    found.state = JobState::Failed;
                    found.error_message = Some(message.clone());
                    let (element_id, updated) = (found.element_id.clone(), found.clone());
                    self.effects.push(Effect::JobUpdated { job: updated });
                    let text = if message.is_empty() {
                        format!("the worker threw error '{code}', which nothing catches")
                    } else {
                        format!("the worker threw error '{code}' ({message}), which nothing catches")
                    };
                    self.raise_incident(ei, &element_id, IncidentKind::UnhandledError { job, code }, text);
                }
            }
            Input::UpdateRetries { job, retries } => {
                let Some(found) = self.st.jobs.get_mut(&job) else { return };
                found.retries = retries;
                let updated = found.clone();
                self.effects.push(Effect::JobUpdated { job: updated.clone() });
                let detail = HistoryDetail { job: Some(Self::job_ref(&updated)), retries: Some(retries), ..HistoryDetail::default() };
                self.note(Some(updated.element_instance), HistoryEvent::RetriesSet, detail);
            }
            Input::CompleteUserTask { task, variables } => {
                self.change_user_task(task, TaskTransition { variables, ..task_transition(ListenerEvent::Completing, "complete") });
            }
            Input::AssignUserTask { task, assignee, claim } => {
                let action = if claim { "claim" } else { "assign" };
                self.change_user_task(task, TaskTransition { assignee, ..task_transition(ListenerEvent::Assigning, action) });
            }
            Input::UpdateUserTask { task, changes } => {
                self.change_user_task(task, TaskTransition { changes, ..task_transition(ListenerEvent::Updating, "update") });
            }
            Input::TimerFired { timer } => self.fire_timer(timer),
            Input::MessageCorrelated { subscription, variables } | Input::SignalReceived { subscription, variables } => {
                let subscription = self.st.subscriptions[&subscription].clone();
                if subscription.element_instance != self.st.root || !variables.is_empty() {
                    let detail = HistoryDetail { variables: bounded_payload(&variables), ..HistoryDetail::default() };
                    self.completions.insert(subscription.element_instance, detail);
                }
                self.trigger_catch(subscription.element_instance, subscription.element, variables, Some(subscription.key));
            }
            Input::ChildCompleted { element_instance, variables } => {
                let ei = &self.st.element_instances[&element_instance];
                if let Kind::CallActivity(call) = &self.wf.elements[ei.element].kind {
                    if call.propagate_all_child_variables || !self.wf.elements[ei.element].outputs.is_empty() {
                        self.absorb(element_instance, variables);
                    }
                }
                if let Some(ei) = self.st.element_instances.get_mut(&element_instance) {
                    ei.child_instance = None;
                }
                self.queue.push_back(Work::Complete { ei: element_instance });
            }
            Input::ChildFailed { element_instance, code } => {
                if let Some(ei) = self.st.element_instances.get_mut(&element_instance) {
                    ei.child_instance = None;
                }
                self.throw_error(element_instance, &code, Variables::new());
            }
            Input::ChildCancelled { element_instance } => {
                if let Some(ei) = self.st.element_instances.get_mut(&element_instance) {
                    ei.child_instance = None;
                }
                let element_id = self.st.element_instances[&element_instance].element_id.clone();
                self.terminate(element_instance);
                self.cancel_instance(Some(format!("the child instance started by '{element_id}' was cancelled")));
            }
            Input::ChildNotStarted { element_instance, message } => {
                if let Some(ei) = self.st.element_instances.get_mut(&element_instance) {
                    ei.child_instance = None;
                }
                self.fail(element_instance, Phase::Activate, Failure { kind: IncidentKind::CalledProcessMissing, message });
            }
            Input::DecisionEvaluated { element_instance, outcome } => match outcome {
                Ok(DecisionOutcome { value, decision }) => {
                    let element = self.st.element_instances[&element_instance].element;
                    let Kind::Task(TaskKind::Decision(called)) = &self.wf.elements[element].kind else { return };
                    let variables = Variables::from_iter([(called.result_variable.clone(), value)]);
                    let detail = HistoryDetail { decision: Some(decision), variables: bounded_payload(&variables), ..HistoryDetail::default() };
                    self.completions.insert(element_instance, detail);
                    self.absorb(element_instance, variables);
                    self.queue.push_back(Work::Complete { ei: element_instance });
                }
                Err(message) => self.fail(element_instance, Phase::Activate, Failure { kind: IncidentKind::DecisionEvaluation, message }),
            },
            Input::Cancel { reason } => {
                self.note(None, HistoryEvent::Cancelled, HistoryDetail { message: reason.clone(), ..HistoryDetail::default() });
                self.cancel_instance(reason)
            }
            Input::Suspend => {
                self.note(None, HistoryEvent::Suspended, HistoryDetail::default());
                self.st.status = Status::Suspended
            }
            Input::Resume => {
                self.note(None, HistoryEvent::Resumed, HistoryDetail::default());
                self.st.status = Status::Running;
                // Timers that fell due while the instance was suspended fire now, in due order.
                let mut due: Vec<(Millis, Key)> =
                    self.st.timers.values().filter(|t| t.due_at <= self.now).map(|t| (t.due_at, t.key)).collect();
                due.sort();
                for (_, key) in due {
                    if self.st.timers.contains_key(&key) && !self.st.status.is_ended() {
                        self.fire_timer(key);
                        self.run();
                    }
                }
            }
            Input::SetVariables { element_instance, variables } => {
                let detail = HistoryDetail {
                    names: variables.keys().cloned().collect(),
                    variables: bounded_payload(&variables),
                    ..HistoryDetail::default()
                };
                self.note(element_instance, HistoryEvent::VariablesSet, detail);
                self.wrote_all(&variables);
                let scope = element_instance.filter(|&k| k != self.st.root);
                for name in variables.keys() {
                    let created = match scope {
                        Some(scope) => self.st.element_instances.get(&scope).is_some_and(|ei| !ei.variables.contains_key(name)),
                        None => !self.st.variables.contains_key(name),
                    };
                    self.touch(scope.unwrap_or(self.st.root), name, created);
                }
                match scope {
                    Some(scope) => {
                        if let Some(ei) = self.st.element_instances.get_mut(&scope) {
                            ei.variables.extend(variables);
                        }
                    }
                    None => {
                        self.st.variables.extend(variables);
                        self.st.variables_changes += 1;
                    }
                }
            }
            Input::ResolveIncident { incident } => self.resolve_incident(incident),
            Input::SetLabels { labels } => {
                let detail = HistoryDetail { names: labels.keys().cloned().collect(), ..HistoryDetail::default() };
                self.note(None, HistoryEvent::LabelsSet, detail);
                for (name, value) in labels {
                    match value {
                        Some(value) => self.st.labels.insert(name, value),
                        None => self.st.labels.remove(&name),
                    };
                }
            }
            Input::RescheduleTimer { timer, due_at } => {
                let Some(found) = self.st.timers.get_mut(&timer) else { return };
                found.due_at = due_at;
                let (owner, rescheduled) = (found.element_instance, found.clone());
                self.effects.push(Effect::TimerScheduled { timer: rescheduled });
                self.note(Some(owner), HistoryEvent::TimerRescheduled, HistoryDetail { due_at: Some(due_at), ..HistoryDetail::default() });
            }
            Input::Rerun { from } => self.rerun(from),
            Input::Modify { activate, terminate } => {
                let message = format!("activate [{}], terminate [{}]", activate.join(", "), terminate.join(", "));
                self.note(None, HistoryEvent::Modified, HistoryDetail { message: Some(message), ..HistoryDetail::default() });
                for id in &activate {
                    let Some(&element) = self.wf.element_by_id.get(id) else { continue };
                    let Some(scope) = self.modification_scope(element) else { continue };
                    let ei = self.create_ei(element, Some(scope), 1);
                    self.queue.push_back(Work::Activate { ei });
                }
                for id in &terminate {
                    let keys: Vec<Key> = self
                        .st
                        .element_instances
                        .values()
                        .filter(|ei| &ei.element_id == id && ei.key != self.st.root)
                        .map(|ei| ei.key)
                        .collect();
                    for key in keys {
                        if let Some(parent) = self.st.element_instances.get(&key).and_then(|ei| ei.parent) {
                            self.terminate_then(vec![key], AfterTermination::ScopeCheck { scope: parent });
                        }
                    }
                }
            }
        }
    }

    /// Where a rerun starts: the element named, else for a failed instance
    /// the element before its error end event, else the none start event.
    fn rerun_from(&self, from: Option<&str>) -> Option<ElementIdx> {
        let chosen = from.or_else(|| self.st.error.as_ref().and_then(|e| e.after.as_deref()));
        match chosen {
            Some(id) => self.wf.element_by_id.get(id).copied(),
            None => self.wf.none_start(Workflow::ROOT),
        }
    }

    fn check_rerun(&self, from: Option<&str>) -> Result<(), Rejection> {
        if !self.st.status.is_ended() {
            return reject(
                RejectionCode::InstanceNotEnded,
                format!("instance {} is {}; only an ended instance runs again", self.st.id, self.st.status.as_str()),
            );
        }
        if self.st.parent.is_some() {
            return reject(
                RejectionCode::InstanceNotEnded,
                format!("instance {} was called by another instance; rerun its root instance {}", self.st.id, self.st.root_id()),
            );
        }
        match self.rerun_from(from) {
            Some(element) if self.wf.elements[element].parent == Some(Workflow::ROOT) && !matches!(self.wf.elements[element].kind, Kind::Boundary { .. }) => {
                let event_subprocess_start = matches!(self.wf.elements[element].kind, Kind::StartEvent { .. }) && from.is_some() && self.wf.none_start(Workflow::ROOT) != Some(element);
                if event_subprocess_start {
                    return reject(RejectionCode::ElementNotFound, format!("'{}' starts by its event; rerun from the none start event or an activity", self.wf.elements[element].id));
                }
                Ok(())
            }
            Some(element) => reject(
                RejectionCode::ElementNotFound,
                format!("'{}' is not an element of the process's own scope; a rerun starts there", self.wf.elements[element].id),
            ),
            None => reject(
                RejectionCode::ElementNotFound,
                match from {
                    Some(id) => format!("process '{}' has no element '{id}'", self.wf.process_id),
                    None => format!("process '{}' has no none start event; name an element to rerun from", self.wf.process_id),
                },
            ),
        }
    }

    /// Starts the instance's next run: its original input, a fresh process
    /// scope, and a token at the element a rerun starts from.
    fn rerun(&mut self, from: Option<String>) {
        let Some(element) = self.rerun_from(from.as_deref()) else { return };
        self.st.run += 1;
        self.st.status = Status::Running;
        self.st.ended_at = None;
        self.st.end = None;
        self.st.error = None;
        self.st.error_code = None;
        self.st.cancel_reason = None;
        self.st.variables = self.st.input.clone();
        self.st.variables_changes += 1;
        let root = self.create_ei(Workflow::ROOT, None, 1);
        self.st.root = root;
        let message = Some(format!("run {} from '{}'", self.st.run, self.wf.elements[element].id));
        self.note(Some(root), HistoryEvent::Rerun, HistoryDetail { message, ..HistoryDetail::default() });
        self.open_event_subprocess_starts(root);
        self.queue.push_back(Work::Arrive { element, scope: root, flow: None });
    }

    /// The element instance to activate `element` in for a modification.
    fn modification_scope(&self, element: ElementIdx) -> Option<Key> {
        let parent = self.wf.elements[element].parent?;
        if parent == Workflow::ROOT {
            return Some(self.st.root);
        }
        self.st.element_instances.values().find(|ei| ei.element == parent && ei.multi_instance.is_none()).map(|ei| ei.key)
    }

    // ----- the run loop -----

    fn run(&mut self) {
        loop {
            while let Some(work) = self.queue.pop_front() {
                if self.st.status.is_ended() {
                    self.queue.clear();
                    return;
                }
                if self.steps >= MAX_STEPS_PER_INPUT || self.written > MAX_VARIABLES_BYTES {
                    self.park(work);
                    continue;
                }
                self.steps += 1;
                match work {
                    Work::Arrive { element, scope, flow } => self.arrive(element, scope, flow),
                    Work::Activate { ei } => self.activate(ei),
                    Work::Complete { ei } => self.complete(ei),
                    Work::ScopeCheck { scope } => self.scope_check(scope),
                }
            }
            if self.st.status.is_ended() {
                return;
            }
            // Conditions look at what changed once every token has moved on.
            if self.fire_conditions() {
                continue;
            }
            // Inclusive joins fire only when no token in flight can still reach them.
            if !self.fire_inclusive_joins() {
                return;
            }
        }
    }

    /// Turns work left over when the step budget is spent into incidents, so no token is lost.
    fn park(&mut self, work: Work) {
        let message = if self.written > MAX_VARIABLES_BYTES {
            format!("the instance wrote more than {MAX_VARIABLES_BYTES} bytes of variables without waiting; keep large documents outside the workflow")
        } else {
            format!("the instance ran {MAX_STEPS_PER_INPUT} steps without waiting; is there a cycle without a task, timer or message in it?")
        };
        match work {
            Work::Arrive { element, scope, .. } => {
                if self.st.element_instances.contains_key(&scope) {
                    let ei = self.create_ei(element, Some(scope), 1);
                    self.fail(ei, Phase::Activate, Failure { kind: IncidentKind::StepLimit, message });
                }
            }
            Work::Activate { ei } => self.fail(ei, Phase::Activate, Failure { kind: IncidentKind::StepLimit, message }),
            Work::Complete { ei } => self.fail(ei, Phase::Complete, Failure { kind: IncidentKind::StepLimit, message }),
            Work::ScopeCheck { scope } => self.scope_check(scope),
        }
    }

    fn next_key(&mut self) -> Key {
        let key = self.st.next_key;
        self.st.next_key += 1;
        key
    }

    fn history(&mut self, ei: &ElementInstance, event: HistoryEvent) {
        let detail = if event == HistoryEvent::Completed { self.completions.remove(&ei.key).unwrap_or_default() } else { HistoryDetail::default() };
        self.history_with(ei, event, detail);
    }

    fn history_with(&mut self, ei: &ElementInstance, event: HistoryEvent, detail: HistoryDetail) {
        let entry = self.entry(ei, event, detail);
        self.effects.push(Effect::History { entry });
    }

    /// The history entry of `event` on `ei`.
    fn entry(&self, ei: &ElementInstance, event: HistoryEvent, detail: HistoryDetail) -> HistoryEntry {
        let element = &self.wf.elements[ei.element];
        let element_type = if self.is_body(ei) {
            "multiInstanceBody".to_string()
        } else if self.is_ad_hoc_inner(ei) {
            "adHocSubProcessInnerInstance".to_string()
        } else {
            element.tag.clone()
        };
        HistoryEntry {
            at: self.now,
            element_instance: ei.key,
            element_id: ei.element_id.clone(),
            element_type,
            event,
            loop_counter: ei.loop_counter,
            started_at: ei.started_at,
            element_name: element.name.clone(),
            run: self.st.run,
            iteration: ei.iteration,
            actor: None,
            reason: None,
            detail: (detail != HistoryDetail::default()).then(|| Box::new(detail)),
        }
    }

    /// Records something done to element instance `key` (the instance itself
    /// when it is gone or `None`): an incident, a job failure, an operator action.
    fn note(&mut self, key: Option<Key>, event: HistoryEvent, detail: HistoryDetail) {
        let ei = key.and_then(|k| self.st.element_instances.get(&k)).or_else(|| self.st.element_instances.get(&self.st.root));
        if let Some(entry) = ei.map(|ei| self.entry(ei, event, detail)) {
            self.effects.push(Effect::History { entry });
        }
    }

    fn job_ref(job: &Job) -> JobRef {
        JobRef { key: job.key, job_type: job.job_type.clone(), attempt: job.failures + 1 }
    }

    fn create_ei(&mut self, element: ElementIdx, parent: Option<Key>, loop_counter: u32) -> Key {
        let key = self.next_key();
        let iteration = match parent.and_then(|p| self.st.element_instances.get_mut(&p)) {
            Some(scope) => {
                let entered = scope.entries.entry(element).or_insert(0);
                *entered += 1;
                *entered
            }
            None => 1,
        };
        let ei = ElementInstance {
            key,
            element,
            element_id: self.wf.elements[element].id.clone(),
            parent,
            state: ElementState::Active,
            variables: Variables::new(),
            started_at: self.now,
            loop_counter,
            joins: BTreeMap::new(),
            multi_instance: None,
            child_instance: None,
            iteration,
            entries: BTreeMap::new(),
            listened: (0, 0),
            compensable: Vec::new(),
            compensating: None,
            ad_hoc: None,
        };
        self.history(&ei, HistoryEvent::Activated);
        self.st.element_instances.insert(key, ei);
        key
    }

    fn arrive(&mut self, element: ElementIdx, scope: Key, flow: Option<FlowIdx>) {
        if !self.st.element_instances.contains_key(&scope) {
            return;
        }
        let el = &self.wf.elements[element];
        if let (Kind::EndEvent(Throw::Error { .. }), Some(flow)) = (&el.kind, flow) {
            // Back past gateways with one way in: a rerun repeats the work that decided, not only the decision.
            let mut source = self.wf.flows[flow].source;
            for _ in 0..self.wf.elements.len() {
                match &self.wf.elements[source] {
                    e if matches!(e.kind, Kind::Gateway(_)) && e.incoming.len() == 1 => source = self.wf.flows[e.incoming[0]].source,
                    _ => break,
                }
            }
            self.error_after = Some(self.wf.elements[source].id.clone());
        }
        let joining = matches!(el.kind, Kind::Gateway(GatewayKind::Parallel | GatewayKind::Inclusive)) && el.incoming.len() > 1;
        if let (true, Some(flow)) = (joining, flow) {
            let Some(scope_ei) = self.st.element_instances.get_mut(&scope) else { return };
            *scope_ei.joins.entry(element).or_default().entry(flow).or_insert(0) += 1;
            if matches!(el.kind, Kind::Gateway(GatewayKind::Parallel)) {
                self.fire_parallel_join(element, scope);
            }
            return;
        }
        if self.st.element_instances.len() >= MAX_ELEMENT_INSTANCES {
            let ei = self.create_ei(element, Some(scope), 1);
            let message = format!("the instance holds {MAX_ELEMENT_INSTANCES} element instances, the most it may");
            self.fail(ei, Phase::Activate, Failure { kind: IncidentKind::StepLimit, message });
            return;
        }
        if let Some(LoopCharacteristics::Standard { test_before: true, .. }) = &el.loop_characteristics {
            // A while-loop that should not run even once: the token passes the activity by.
            match self.loop_again(scope, element, 1) {
                Ok(true) => {}
                Ok(false) => {
                    match self.outgoing_flows(scope, element) {
                        Ok(flows) if flows.is_empty() => self.queue.push_back(Work::ScopeCheck { scope }),
                        Ok(flows) => {
                            for flow in flows {
                                self.queue.push_back(Work::Arrive { element: self.wf.flows[flow].target, scope, flow: Some(flow) });
                            }
                        }
                        Err(failure) => {
                            let ei = self.create_ei(element, Some(scope), 1);
                            self.fail(ei, Phase::Activate, failure);
                        }
                    }
                    return;
                }
                Err(failure) => {
                    let ei = self.create_ei(element, Some(scope), 1);
                    self.fail(ei, Phase::Activate, failure);
                    return;
                }
            }
        }
        let ei = self.create_ei(element, Some(scope), 1);
        self.queue.push_back(Work::Activate { ei });
    }

    fn fire_parallel_join(&mut self, gateway: ElementIdx, scope: Key) {
        let incoming = &self.wf.elements[gateway].incoming;
        let Some(scope_ei) = self.st.element_instances.get_mut(&scope) else { return };
        let arrivals = scope_ei.joins.get(&gateway).cloned().unwrap_or_default();
        if !incoming.iter().all(|flow| arrivals.get(flow).copied().unwrap_or(0) > 0) {
            return;
        }
        consume_one_each(scope_ei, gateway, incoming);
        let ei = self.create_ei(gateway, Some(scope), 1);
        self.queue.push_back(Work::Activate { ei });
    }

    /// Fires every inclusive join that no other token can still reach. Returns whether one fired.
    fn fire_inclusive_joins(&mut self) -> bool {
        let mut fired = false;
        let candidates: Vec<(Key, ElementIdx)> = self
            .st
            .element_instances
            .values()
            .flat_map(|ei| {
                ei.joins
                    .iter()
                    .filter(|(g, arrivals)| {
                        matches!(self.wf.elements[**g].kind, Kind::Gateway(GatewayKind::Inclusive)) && arrivals.values().any(|&n| n > 0)
                    })
                    .map(move |(g, _)| (ei.key, *g))
            })
            .collect();
        for (scope, gateway) in candidates {
            if self.inclusive_join_can_fire(scope, gateway) {
                let incoming = self.wf.elements[gateway].incoming.clone();
                let Some(scope_ei) = self.st.element_instances.get_mut(&scope) else { continue };
                consume_one_each(scope_ei, gateway, &incoming);
                let ei = self.create_ei(gateway, Some(scope), 1);
                self.queue.push_back(Work::Activate { ei });
                fired = true;
            }
        }
        fired
    }

    fn inclusive_join_can_fire(&self, scope: Key, gateway: ElementIdx) -> bool {
        let scope_ei = &self.st.element_instances[&scope];
        let arrivals = &scope_ei.joins[&gateway];
        let all_arrived = self.wf.elements[gateway].incoming.iter().all(|f| arrivals.get(f).copied().unwrap_or(0) > 0);
        if all_arrived {
            return true;
        }
        let mut tokens: Vec<ElementIdx> =
            self.st.element_instances.values().filter(|ei| ei.parent == Some(scope)).map(|ei| ei.element).collect();
        tokens.extend(scope_ei.joins.iter().filter(|(g, a)| **g != gateway && a.values().any(|&n| n > 0)).map(|(g, _)| *g));
        !tokens.iter().any(|&from| self.can_reach(from, gateway))
    }

    /// Whether a token at `from` can still arrive at `target` through flows and boundary events.
    fn can_reach(&self, from: ElementIdx, target: ElementIdx) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(element) = stack.pop() {
            if !seen.insert(element) {
                continue;
            }
            let el = &self.wf.elements[element];
            for &flow in &el.outgoing {
                let next = self.wf.flows[flow].target;
                if next == target {
                    return true;
                }
                stack.push(next);
            }
            stack.extend(el.boundary_events.iter().copied());
        }
        false
    }

    // ----- activation -----

    fn activate(&mut self, key: Key) {
        let Some(ei) = self.st.element_instances.get(&key) else { return };
        let element = ei.element;
        if let Some(ElementState::Incident(_)) = Some(&ei.state) {
            // A resolved incident put it back to Active before queueing; anything else is stale.
            return;
        }
        let is_iteration = ei.parent.is_some_and(|p| self.st.element_instances.get(&p).is_some_and(|p| p.multi_instance.is_some()));
        if !is_iteration {
            if let Some(LoopCharacteristics::MultiInstance(_)) = &self.wf.elements[element].loop_characteristics {
                if let Err(failure) = self.activate_multi_instance_body(key) {
                    self.fail(key, Phase::Activate, failure);
                }
                return;
            }
        }
        if let Some(LoopCharacteristics::Standard { .. }) = &self.wf.elements[element].loop_characteristics {
            // Each iteration sees its number, as BPMN's loopCounter.
            if let Some(ei) = self.st.element_instances.get_mut(&key) {
                ei.variables.insert("loopCounter".to_string(), Json::from(ei.loop_counter));
            }
        }
        let (started, _) = self.st.element_instances[&key].listened;
        // The input mappings apply once; the start listeners run after them, one by one.
        if started == 0 {
            if let Err(failure) = self.apply_inputs(key) {
                self.fail(key, Phase::Activate, failure);
                return;
            }
        }
        if let Some(listener) = self.listener(element, ListenerEvent::Start, started) {
            if let Err(failure) = self.create_job(key, &listener, Some(ListenerEvent::Start)) {
                self.fail(key, Phase::Activate, failure);
            }
            return;
        }
        if let Err(failure) = self.behave(key) {
            self.fail(key, Phase::Activate, failure);
        }
    }

    /// The element's `index`th execution listener of `event`, if it has one.
    fn listener(&self, element: ElementIdx, event: ListenerEvent, index: u32) -> Option<JobDefinition> {
        self.wf.elements[element].listeners.iter().filter(|l| l.event == event).nth(index as usize).map(|l| l.job.clone())
    }

    /// Counts a value written to a variable against [`MAX_VARIABLES_BYTES`] for this input.
    fn wrote(&mut self, value: &Json) {
        self.written = self.written.saturating_add(crate::state::json_bytes(value));
    }

    fn wrote_all(&mut self, variables: &Variables) {
        for (name, value) in variables {
            self.written = self.written.saturating_add(name.len() + crate::state::json_bytes(value));
        }
    }

    fn apply_inputs(&mut self, key: Key) -> Outcome {
        let element = &self.wf.elements[self.st.element_instances[&key].element];
        for mapping in &element.inputs {
            let value = self.property_value(key, &mapping.source)?;
            self.wrote(&value);
            let created = self.st.element_instances.get(&key).is_some_and(|ei| !ei.variables.contains_key(&mapping.target));
            self.touch(key, &mapping.target, created);
            if let Some(ei) = self.st.element_instances.get_mut(&key) {
                ei.variables.insert(mapping.target.clone(), value);
            }
        }
        Ok(())
    }

    /// What an element does once its input mappings are applied.
    fn behave(&mut self, key: Key) -> Outcome {
        let ei = &self.st.element_instances[&key];
        let (element, scope) = (ei.element, ei.parent.unwrap_or(self.st.root));
        let el = &self.wf.elements[element];
        match &el.kind {
            // Activated once, when the instance starts (after its start listeners): it enters its start event.
            Kind::Process => {
                if let Some(start) = self.st.pending_start.take() {
                    self.queue.push_back(Work::Arrive { element: start, scope: key, flow: None });
                }
            }
            Kind::StartEvent { .. } | Kind::IntermediateCatch(Trigger::Link { .. }) => self.queue.push_back(Work::Complete { ei: key }),
            Kind::Task(TaskKind::PassThrough) => {
                self.open_boundary_events(key)?;
                self.queue.push_back(Work::Complete { ei: key });
            }
            Kind::Task(TaskKind::Job(job)) | Kind::EndEvent(Throw::Job(job)) | Kind::IntermediateThrow(Throw::Job(job)) => {
                self.open_boundary_events(key)?;
                self.create_job(key, job, None)?;
            }
            Kind::Task(TaskKind::User(task)) => {
                self.open_boundary_events(key)?;
                self.create_user_task(key, task)?;
            }
            Kind::Task(TaskKind::Script { expression, result_variable }) => {
                let value = self.evaluate(key, expression)?;
                self.open_boundary_events(key)?;
                if let Some(name) = result_variable {
                    self.absorb(key, Variables::from_iter([(name.clone(), value)]));
                }
                self.queue.push_back(Work::Complete { ei: key });
            }
            Kind::Task(TaskKind::Receive(message)) => {
                self.open_boundary_events(key)?;
                self.open_message_subscription(key, key, element, message)?;
            }
            Kind::Task(TaskKind::Decision(called)) => {
                let decision_id = match &called.decision_id {
                    Property::Literal(text) => text.clone(),
                    Property::Expression(expression) => match self.evaluate(key, expression)? {
                        Json::String(s) => s,
                        other => return Err(Failure::expression(format!("the decision id evaluated to {other}, not a string"))),
                    },
                };
                self.open_boundary_events(key)?;
                let variables = self.visible_variables(key);
                let binding = called.binding.clone();
                self.effects.push(Effect::EvaluateDecision { element_instance: key, decision_id, binding, variables });
            }
            Kind::IntermediateCatch(trigger) => self.open_catch(key, key, element, trigger)?,
            Kind::Gateway(GatewayKind::Exclusive) => {
                let flow = self.choose_flows(key, element, true)?;
                self.leave(key, flow);
            }
            Kind::Gateway(GatewayKind::Inclusive) => {
                let flows = self.choose_flows(key, element, false)?;
                self.leave(key, flows);
            }
            Kind::Gateway(GatewayKind::Parallel) => {
                let flows = el.outgoing.clone();
                self.leave(key, flows);
            }
            Kind::Gateway(GatewayKind::EventBased) => {
                for &flow in &el.outgoing {
                    let target = self.wf.flows[flow].target;
                    match &self.wf.elements[target].kind {
                        Kind::IntermediateCatch(trigger) => self.open_catch(key, key, target, trigger)?,
                        Kind::Task(TaskKind::Receive(message)) => self.open_message_subscription(key, key, target, message)?,
                        _ => {}
                    }
                }
            }
            Kind::SubProcess { .. } if el.ad_hoc.is_some() => self.activate_ad_hoc(key)?,
            Kind::SubProcess { triggered_by_event } => {
                self.open_boundary_events(key)?;
                self.open_event_subprocess_starts(key);
                match self.wf.none_start(element) {
                    Some(start) if !triggered_by_event => self.queue.push_back(Work::Arrive { element: start, scope: key, flow: None }),
                    // An event subprocess activated by a modification has nothing to run until its event comes.
                    _ => self.queue.push_back(Work::ScopeCheck { scope: key }),
                }
            }
            Kind::CallActivity(call) => {
                let process_id = match &call.process_id {
                    Property::Literal(text) => text.clone(),
                    Property::Expression(expression) => match self.evaluate(key, expression)? {
                        Json::String(s) => s,
                        other => return Err(Failure::expression(format!("the called process id evaluated to {other}, not a string"))),
                    },
                };
                if self.st.depth + 1 >= MAX_CALL_DEPTH {
                    return Err(Failure {
                        kind: IncidentKind::CallDepth,
                        message: format!("calling '{process_id}' would nest instances {MAX_CALL_DEPTH} deep; does the recursion end?"),
                    });
                }
                self.open_boundary_events(key)?;
                let variables = if call.propagate_all_parent_variables { self.visible_variables(key) } else { Variables::new() };
                let mut variables = variables;
                variables.extend(self.st.element_instances[&key].variables.clone());
                // The child's id derives from the parent's, so no outside state is needed to find it.
                let instance_id = format!("{}/{key}", self.st.id);
                if let Some(ei) = self.st.element_instances.get_mut(&key) {
                    ei.child_instance = Some(instance_id.clone());
                }
                let binding = call.binding.clone();
                self.effects.push(Effect::StartChild { element_instance: key, instance_id, process_id, binding, variables });
            }
            Kind::EndEvent(throw) | Kind::IntermediateThrow(throw) => {
                let is_end = matches!(el.kind, Kind::EndEvent(_));
                match throw {
                    Throw::None | Throw::Link { .. } | Throw::Job(_) => {}
                    Throw::Terminate => {
                        let siblings: Vec<Key> =
                            self.st.element_instances.values().filter(|e| e.parent == Some(scope) && e.key != key).map(|e| e.key).collect();
                        if let Some(scope_ei) = self.st.element_instances.get_mut(&scope) {
                            scope_ei.joins.clear();
                        }
                        // The end event completes once its siblings are terminated.
                        self.terminate_then(siblings, AfterTermination::Complete { element_instance: key });
                        return Ok(());
                    }
                    Throw::Error { code } => {
                        let code = code.clone();
                        let element_id = el.id.clone();
                        // As Camunda 8 does (when asked): an error nobody catches is an incident on its end event.
                        if self.st.uncaught_errors_incident && self.find_error_catch(scope, &code).is_none() {
                            return Err(Failure {
                                kind: IncidentKind::UncaughtError,
                                message: format!("error '{code}' thrown by '{element_id}' is not caught by any boundary event or event subprocess"),
                            });
                        }
                        // The end event has done its part; the error then ends its scope.
                        self.end_ei(key, HistoryEvent::Completed);
                        self.throw_error_from_end_event(scope, &code, &element_id);
                        return Ok(());
                    }
                    Throw::Escalation { code } => {
                        let code = code.clone();
                        if self.throw_escalation(key, scope, &code) {
                            return Ok(());
                        }
                    }
                    Throw::Signal { name } => {
                        let name = self.text_value(key, name)?;
                        let variables = self.visible_variables(key);
                        self.effects.push(Effect::BroadcastSignal { name, variables });
                    }
                    Throw::Compensate { activity, wait } => {
                        // Waiting, the event is completed by the last of its handlers ([`Self::leave`]).
                        if self.compensate(key, scope, *activity, *wait) > 0 && *wait {
                            return Ok(());
                        }
                    }
                }
                if let (false, Throw::Link { name }) = (is_end, throw) {
                    let scope_element = self.st.element_instances[&scope].element;
                    let target = self.wf.elements[scope_element]
                        .children
                        .iter()
                        .copied()
                        .find(|&c| matches!(&self.wf.elements[c].kind, Kind::IntermediateCatch(Trigger::Link { name: n }) if n == name))
                        .ok_or_else(|| Failure::expression(format!("no link catch event named '{name}' in this scope")))?;
                    self.end_ei(key, HistoryEvent::Completed);
                    self.queue.push_back(Work::Arrive { element: target, scope, flow: None });
                    return Ok(());
                }
                self.queue.push_back(Work::Complete { ei: key });
            }
            Kind::Boundary { .. } => self.queue.push_back(Work::Complete { ei: key }),
        }
        Ok(())
    }

    /// Chooses the outgoing flows of an exclusive (`first`) or inclusive gateway.
    fn choose_flows(&mut self, key: Key, element: ElementIdx, first: bool) -> Result<Vec<FlowIdx>, Failure> {
        let el = &self.wf.elements[element];
        if el.outgoing.len() == 1 && el.outgoing.iter().all(|&f| self.wf.flows[f].condition.is_none()) {
            return Ok(el.outgoing.clone());
        }
        let mut chosen = Vec::new();
        for &flow in &el.outgoing {
            if Some(flow) == el.default_flow {
                continue;
            }
            let Some(condition) = &self.wf.flows[flow].condition else { continue };
            if self.evaluate(key, condition)? == Json::Bool(true) {
                chosen.push(flow);
                if first {
                    break;
                }
            }
        }
        if chosen.is_empty() {
            match el.default_flow {
                Some(default) => chosen.push(default),
                None => {
                    return Err(Failure {
                        kind: IncidentKind::NoFlowTaken,
                        message: format!(
                            "no condition of an outgoing flow of '{}' is true and it has no default flow; fix the variables and resolve the incident",
                            el.id
                        ),
                    })
                }
            }
        }
        Ok(chosen)
    }

    // ----- completion -----

    fn complete(&mut self, key: Key) {
        let Some(ei) = self.st.element_instances.get(&key) else { return };
        if matches!(ei.state, ElementState::Incident(_)) {
            return;
        }
        let element = ei.element;
        if self.is_ad_hoc_inner(ei) {
            self.ad_hoc_flow_completed(key);
            return;
        }
        if ei.compensating.is_some() && !self.wf.elements[element].for_compensation {
            // A subprocess brought back to host its compensation event subprocess
            // is done when that is: it has no outputs to map or flows to take again.
            self.leave(key, Vec::new());
            return;
        }
        let (_, ended) = ei.listened;
        // The output mappings apply once; the end listeners run after them, one by one.
        if ended == 0 {
            if let Err(failure) = self.apply_outputs(key) {
                self.fail(key, Phase::Complete, failure);
                return;
            }
        }
        if let Some(listener) = self.listener(element, ListenerEvent::End, ended) {
            if let Err(failure) = self.create_job(key, &listener, Some(ListenerEvent::End)) {
                self.fail(key, Phase::Complete, failure);
            }
            return;
        }
        if key == self.st.root {
            // The process's end listeners have run: the instance is done.
            self.end_instance(Status::Completed, None);
            return;
        }
        let is_iteration = self.is_iteration(key);
        let flows = if is_iteration {
            Vec::new()
        } else {
            match self.outgoing_flows(key, element) {
                Ok(flows) => flows,
                Err(failure) => {
                    self.fail(key, Phase::Complete, failure);
                    return;
                }
            }
        };
        if !is_iteration {
            if let Some(LoopCharacteristics::Standard { .. }) = &self.wf.elements[element].loop_characteristics {
                let loop_counter = self.st.element_instances[&key].loop_counter;
                match self.loop_again(key, element, loop_counter + 1) {
                    Ok(true) => {
                        let scope = self.scope_of(key);
                        self.end_ei(key, HistoryEvent::Completed);
                        let next = self.create_ei(element, Some(scope), loop_counter + 1);
                        self.queue.push_back(Work::Activate { ei: next });
                        return;
                    }
                    Ok(false) => {}
                    Err(failure) => {
                        self.fail(key, Phase::Complete, failure);
                        return;
                    }
                }
            }
        }
        self.leave(key, flows);
    }

    /// Whether a standard loop runs iteration `next` (1-based), judged from the
    /// scope of `key`: before the iteration with `testBefore`, else after the
    /// one before it. `loopMaximum` caps the iterations.
    fn loop_again(&self, key: Key, element: ElementIdx, next: u32) -> Result<bool, Failure> {
        let Some(LoopCharacteristics::Standard { condition, test_before, maximum }) = &self.wf.elements[element].loop_characteristics else {
            return Ok(false);
        };
        if maximum.is_some_and(|max| u64::from(next) > max) {
            return Ok(false);
        }
        let Some(condition) = condition else { return Ok(false) };
        let counter = if *test_before { next } else { next - 1 };
        let overlay = Variables::from_iter([("loopCounter".to_string(), Json::from(counter))]);
        let mut chain = vec![&overlay];
        chain.extend(self.scope_chain(key));
        condition
            .evaluate(&self.view(chain))
            .map(|value| value == Json::Bool(true))
            .map_err(|error| Failure::expression(format!("the loop condition '{}' failed: {error}", condition.source())))
    }

    /// Whether an element instance is (or is becoming) the body of a multi-instance activity.
    fn is_body(&self, ei: &ElementInstance) -> bool {
        ei.multi_instance.is_some()
            || (matches!(self.wf.elements[ei.element].loop_characteristics, Some(LoopCharacteristics::MultiInstance(_)))
                && ei.parent.is_none_or(|p| self.st.element_instances.get(&p).is_none_or(|p| p.multi_instance.is_none())))
    }

    /// The scope an element instance lives in (the instance's own for the process).
    fn scope_of(&self, key: Key) -> Key {
        self.st.element_instances.get(&key).and_then(|ei| ei.parent).unwrap_or(self.st.root)
    }

    fn is_iteration(&self, key: Key) -> bool {
        let Some(ei) = self.st.element_instances.get(&key) else { return false };
        ei.multi_instance.is_none()
            && ei.parent.is_some_and(|p| self.st.element_instances.get(&p).is_some_and(|p| p.multi_instance.is_some()))
    }

    /// Output mappings of an element instance; a multi-instance body maps its
    /// outputs when the last iteration is done ([`Self::map_outputs`]).
    fn apply_outputs(&mut self, key: Key) -> Outcome {
        if self.st.element_instances[&key].multi_instance.is_some() {
            return Ok(());
        }
        let ei = &self.st.element_instances[&key];
        if let (Some(_), Some(name)) = (ei.ad_hoc, self.wf.elements[ei.element].ad_hoc.as_ref().and_then(|a| a.output_collection.clone())) {
            let value = ei.variables.get(&name).cloned().unwrap_or(Json::Array(Vec::new()));
            let scope = self.scope_of(key);
            self.propagate(scope, name, value);
        }
        self.map_outputs(key)
    }

    /// Evaluates the element's output mappings and writes them to the enclosing scope.
    fn map_outputs(&mut self, key: Key) -> Outcome {
        let ei = &self.st.element_instances[&key];
        let el = &self.wf.elements[ei.element];
        if el.outputs.is_empty() {
            return Ok(());
        }
        let scope = ei.parent.unwrap_or(self.st.root);
        let mut results = Vec::with_capacity(el.outputs.len());
        for mapping in &el.outputs {
            results.push((mapping.target.clone(), self.property_value(key, &mapping.source)?));
        }
        for (name, value) in results {
            self.propagate(scope, name, value);
        }
        Ok(())
    }

    /// The flows an activity or event leaves by: unconditional ones, true
    /// conditional ones, else the default.
    fn outgoing_flows(&mut self, key: Key, element: ElementIdx) -> Result<Vec<FlowIdx>, Failure> {
        let el = &self.wf.elements[element];
        let mut flows = Vec::with_capacity(el.outgoing.len());
        let mut conditional = false;
        for &flow in &el.outgoing {
            if Some(flow) == el.default_flow {
                continue;
            }
            match &self.wf.flows[flow].condition {
                None => flows.push(flow),
                Some(condition) => {
                    conditional = true;
                    if self.evaluate(key, condition)? == Json::Bool(true) {
                        flows.push(flow);
                    }
                }
            }
        }
        if flows.is_empty() {
            if let Some(default) = el.default_flow {
                flows.push(default);
            } else if conditional {
                return Err(Failure {
                    kind: IncidentKind::NoFlowTaken,
                    message: format!("no condition of an outgoing flow of '{}' is true and it has no default flow", el.id),
                });
            }
        }
        Ok(flows)
    }

    /// Ends an element instance as completed and sends tokens down `flows`
    /// (or lets its scope check whether it is done).
    fn leave(&mut self, key: Key, flows: Vec<FlowIdx>) {
        let Some(ended) = self.end_ei(key, HistoryEvent::Completed) else { return };
        let scope = ended.parent.unwrap_or(self.st.root);
        if let Some(Compensating { throw: Some(throw) }) = ended.compensating {
            let pending = self.st.element_instances.values().any(|ei| ei.compensating == Some(Compensating { throw: Some(throw) }));
            if !pending && self.st.element_instances.contains_key(&throw) {
                // The throw event is still in its scope, so the scope has nothing to check yet.
                self.queue.push_back(Work::Complete { ei: throw });
                return;
            }
        }
        if let Some(scope_ei) = self.st.element_instances.get(&scope) {
            if scope_ei.multi_instance.is_some() {
                self.iteration_completed(scope, &ended);
                return;
            }
        }
        if flows.is_empty() {
            self.queue.push_back(Work::ScopeCheck { scope });
        }
        for flow in flows {
            self.queue.push_back(Work::Arrive { element: self.wf.flows[flow].target, scope, flow: Some(flow) });
        }
    }

    fn scope_check(&mut self, scope: Key) {
        let Some(scope_ei) = self.st.element_instances.get(&scope) else { return };
        if scope_ei.joins.values().any(|arrivals| arrivals.values().any(|&n| n > 0)) {
            return;
        }
        if scope_ei.multi_instance.is_some() || matches!(scope_ei.state, ElementState::Incident(_)) || scope_ei.ad_hoc.is_some_and(|a| !a.done) {
            return;
        }
        // The process's end listeners already run: the instance ends when they are done.
        if self.st.jobs.values().any(|j| j.element_instance == scope && j.listener == Some(ListenerEvent::End)) {
            return;
        }
        if self.st.element_instances.values().any(|ei| ei.parent == Some(scope)) {
            return;
        }
        if scope == self.st.root && self.wf.elements[Workflow::ROOT].listeners.is_empty() {
            self.end_instance(Status::Completed, None);
        } else {
            self.queue.push_back(Work::Complete { ei: scope });
        }
    }

    fn end_instance(&mut self, status: Status, error_code: Option<String>) {
        let root = self.st.root;
        let children: Vec<Key> = self.st.element_instances.values().filter(|ei| ei.parent == Some(root)).map(|ei| ei.key).collect();
        if self.cancels_with_listeners(&children) {
            self.terminate_then(children, AfterTermination::EndInstance { status, error_code });
            return;
        }
        for child in children {
            self.terminate(child);
        }
        self.end_ei(root, if status == Status::Completed { HistoryEvent::Completed } else { HistoryEvent::Terminated });
        if status != Status::Completed {
            self.st.end = None;
        }
        self.st.status = status;
        self.st.ended_at = Some(self.now);
        self.st.error_code = error_code.clone();
        self.effects.push(Effect::InstanceEnded { status, variables: self.st.variables.clone(), error_code });
        self.queue.clear();
    }

    fn cancel_instance(&mut self, reason: Option<String>) {
        self.st.cancel_reason = reason;
        self.end_instance(Status::Cancelled, None);
    }

    // ----- ending element instances -----

    /// Removes an element instance and everything it owns, and records how it ended.
    fn end_ei(&mut self, key: Key, event: HistoryEvent) -> Option<ElementInstance> {
        self.close_owned(key);
        let mut ei = self.st.element_instances.remove(&key)?;
        self.history(&ei, event);
        if event == HistoryEvent::Completed {
            self.keep_compensable(&mut ei);
            let element = &self.wf.elements[ei.element];
            let at = || ElementAt { element_id: ei.element_id.clone(), element_name: element.name.clone(), at: self.now };
            if matches!(element.kind, Kind::EndEvent(_)) && ei.parent == Some(self.st.root) {
                self.st.end = Some(at());
            } else if element.tag == "sendTask" && ei.multi_instance.is_none() {
                self.st.last_send_task = Some(at());
            }
        }
        Some(ei)
    }

    /// Keeps what compensation could undo of a completed element instance in
    /// the scope around it: the activity itself when it has a compensation
    /// handler (each iteration of a multi-instance activity, each run of a
    /// loop); a subprocess with a compensation event subprocess, with what it
    /// keeps; else what was kept inside it. A compensation handler's own work
    /// is not compensated again, and a scope that is terminated keeps nothing.
    fn keep_compensable(&mut self, ended: &mut ElementInstance) {
        let Some(parent) = ended.parent.filter(|_| ended.compensating.is_none()) else { return };
        let (element, inner) = (ended.element, std::mem::take(&mut ended.compensable));
        let el = &self.wf.elements[element];
        let record = |handler, inner, variables| Compensable { activity: element, handler, via: Vec::new(), inner, variables };
        let is_ad_hoc_inner = self.st.element_instances.get(&parent).is_some_and(|p| p.ad_hoc.is_some() && p.element == element);
        let records = if ended.multi_instance.is_some() || is_ad_hoc_inner {
            inner
        } else if let Some(handler) = el.compensation_handler {
            vec![record(handler, Vec::new(), ended.variables.clone())]
        } else if let (Kind::SubProcess { triggered_by_event: false }, Some(handler)) = (&el.kind, self.wf.compensation_event_subprocess(element)) {
            vec![record(handler, inner, ended.variables.clone())]
        } else {
            // Each record keeps the local variables of the scopes it completed in (the innermost win).
            inner
                .into_iter()
                .map(|mut r| {
                    r.via.push(element);
                    for (name, value) in &ended.variables {
                        r.variables.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                    r
                })
                .collect()
        };
        if let (false, Some(scope)) = (records.is_empty(), self.st.element_instances.get_mut(&parent)) {
            scope.compensable.extend(records);
        }
    }

    /// Throws compensation from `throw` in `scope`: starts the handlers of the
    /// completed activities kept in the scope (and, from an event subprocess,
    /// in the scope around it), or of the one `activity` names, the last
    /// completed first. Each record is used once. Returns how many started.
    fn compensate(&mut self, throw: Key, scope: Key, activity: Option<ElementIdx>, wait: bool) -> usize {
        let mut targets = vec![scope];
        if let Some(ei) = self.st.element_instances.get(&scope) {
            if matches!(self.wf.elements[ei.element].kind, Kind::SubProcess { triggered_by_event: true }) {
                targets.extend(ei.parent);
            }
        }
        let mut started = 0;
        for target in targets {
            let Some(target_ei) = self.st.element_instances.get_mut(&target) else { continue };
            let (chosen, kept): (Vec<Compensable>, Vec<Compensable>) =
                std::mem::take(&mut target_ei.compensable).into_iter().partition(|r| activity.is_none_or(|a| r.outermost() == a));
            target_ei.compensable = kept;
            for record in chosen.into_iter().rev() {
                self.start_compensation_handler(target, record, wait.then_some(throw));
                started += 1;
            }
        }
        started
    }

    fn start_compensation_handler(&mut self, scope: Key, record: Compensable, throw: Option<Key>) {
        let start = self.wf.elements[record.handler]
            .children
            .iter()
            .copied()
            .find(|&c| matches!(self.wf.elements[c].kind, Kind::StartEvent { trigger: Trigger::Compensation, .. }));
        match start {
            Some(start) => {
                // The subprocess comes back, as it was when it completed, to host its compensation event subprocess.
                let host = self.create_ei(record.activity, Some(scope), 1);
                if let Some(ei) = self.st.element_instances.get_mut(&host) {
                    ei.compensating = Some(Compensating { throw });
                    ei.compensable = record.inner;
                    ei.variables = record.variables;
                }
                self.start_event_subprocess(host, record.handler, start, false, Variables::new());
            }
            None => {
                // The handler sees the local variables of the activity it undoes as they were when it completed.
                let handler = self.create_ei(record.handler, Some(scope), 1);
                if let Some(ei) = self.st.element_instances.get_mut(&handler) {
                    ei.compensating = Some(Compensating { throw });
                    ei.variables = record.variables;
                }
                self.queue.push_back(Work::Activate { ei: handler });
            }
        }
    }

    /// Whether any of these element instances holds a user task whose canceling listeners must run before it ends.
    fn cancels_with_listeners(&self, keys: &[Key]) -> bool {
        keys.iter().any(|&key| !self.canceling_tasks(key).is_empty())
    }

    /// The user tasks inside `key` (itself included) that have canceling listeners.
    /// Walks up from the open tasks, not down the subtree: an instance has few
    /// tasks, and this runs whenever anything is terminated.
    fn canceling_tasks(&self, key: Key) -> Vec<Key> {
        let inside = |mut current: Option<Key>| {
            while let Some(at) = current {
                if at == key {
                    return true;
                }
                current = self.st.element_instances.get(&at).and_then(|ei| ei.parent);
            }
            false
        };
        self.st
            .user_tasks
            .values()
            .filter(|task| {
                self.st.element_instances.get(&task.element_instance).is_some_and(|ei| {
                    self.wf.elements[ei.element].listeners.iter().any(|l| l.event == ListenerEvent::Canceling)
                })
            })
            .filter(|task| inside(Some(task.element_instance)))
            .map(|task| task.key)
            .collect()
    }

    /// Terminates `keys`, with everything inside them, then does `then`. A
    /// user task inside with canceling listeners first runs them (Camunda 8
    /// holds the termination, and what follows it, until they complete):
    /// everything else inside is terminated now; the task, and the scopes
    /// around it, end when its listeners are done, and `then` follows.
    fn terminate_then(&mut self, keys: Vec<Key>, then: AfterTermination) {
        let waiting: Vec<Key> = keys.iter().flat_map(|&key| self.canceling_tasks(key)).collect();
        if waiting.is_empty() {
            for key in keys {
                self.terminate(key);
            }
            self.after_termination(then);
            return;
        }
        // Keep the tasks' element instances and the scopes around them; end the rest now.
        let mut kept = BTreeSet::new();
        for task in &waiting {
            let mut current = self.st.user_tasks.get(task).map(|t| t.element_instance);
            while let Some(key) = current {
                kept.insert(key);
                if keys.contains(&key) {
                    break;
                }
                current = self.st.element_instances.get(&key).and_then(|ei| ei.parent);
            }
        }
        for &key in &kept {
            let children: Vec<Key> = self.st.element_instances.values().filter(|c| c.parent == Some(key) && !kept.contains(&c.key)).map(|c| c.key).collect();
            for child in children {
                self.terminate(child);
            }
            // Nothing in what is being terminated may fire or be worked on any more.
            self.close_owned_catches(key);
        }
        for &key in &keys {
            if !kept.contains(&key) {
                self.terminate(key);
            }
        }
        for &task in &waiting {
            let already = self.st.user_tasks.get(&task).and_then(|t| t.transition.as_ref()).is_some_and(|t| t.event == ListenerEvent::Canceling);
            if !already {
                // A change under way (a completion its listeners look at) gives way to the cancellation.
                if let Some(found) = self.st.user_tasks.get_mut(&task) {
                    found.transition = None;
                }
                let open: Vec<Key> = self.st.jobs.values().filter(|j| self.st.user_tasks.get(&task).is_some_and(|t| t.element_instance == j.element_instance)).map(|j| j.key).collect();
                for job in open {
                    self.remove_job(job);
                }
                if let Err(failure) = self.begin_task_transition(task, task_transition(ListenerEvent::Canceling, "cancel")) {
                    // A listener whose job cannot be created does not hold the termination up: the incident says why.
                    self.task_listener_failed(task, failure);
                }
            }
        }
        let canceling = |t: &UserTask| t.transition.as_ref().is_some_and(|tr| tr.event == ListenerEvent::Canceling);
        let still: Vec<Key> = waiting.into_iter().filter(|t| self.st.user_tasks.get(t).is_some_and(canceling)).collect();
        if still.is_empty() {
            for key in keys {
                self.terminate(key);
            }
            self.after_termination(then);
        } else {
            self.st.pending_terminations.push(PendingTermination { keys, waiting: still, then });
        }
    }

    /// A user task's canceling listeners are done: the terminations waiting for it go on.
    fn task_canceled(&mut self, task: Key) {
        for pending in &mut self.st.pending_terminations {
            pending.waiting.retain(|t| *t != task);
        }
        let (ready, waiting): (Vec<PendingTermination>, Vec<PendingTermination>) =
            std::mem::take(&mut self.st.pending_terminations).into_iter().partition(|p| p.waiting.is_empty());
        self.st.pending_terminations = waiting;
        for pending in ready {
            for key in pending.keys {
                if self.st.element_instances.contains_key(&key) {
                    self.terminate(key);
                }
            }
            self.after_termination(pending.then);
        }
    }

    /// What follows a termination, once it is done.
    fn after_termination(&mut self, then: AfterTermination) {
        match then {
            AfterTermination::Nothing => {}
            AfterTermination::Boundary { boundary, scope, variables } => {
                if self.st.element_instances.contains_key(&scope) {
                    let ei = self.create_ei(boundary, Some(scope), 1);
                    self.absorb(ei, variables);
                    self.queue.push_back(Work::Complete { ei });
                }
            }
            AfterTermination::EventSubprocess { scope, event_subprocess, start, variables } => {
                if self.st.element_instances.contains_key(&scope) {
                    let sub = self.create_ei(event_subprocess, Some(scope), 1);
                    let start_ei = self.create_ei(start, Some(sub), 1);
                    self.absorb(start_ei, variables);
                    self.queue.push_back(Work::Complete { ei: start_ei });
                }
            }
            AfterTermination::Complete { element_instance } => self.queue.push_back(Work::Complete { ei: element_instance }),
            AfterTermination::EndInstance { status, error_code } => {
                if !self.st.status.is_ended() {
                    self.end_instance(status, error_code);
                }
            }
            AfterTermination::FinishMultiInstance { body } => {
                if self.st.element_instances.contains_key(&body) {
                    self.finish_multi_instance(body);
                }
            }
            AfterTermination::ScopeCheck { scope } => self.queue.push_back(Work::ScopeCheck { scope }),
        }
    }

    /// Terminates an element instance and, first, everything inside it.
    fn terminate(&mut self, key: Key) {
        let mut order = Vec::new();
        let mut stack = vec![key];
        while let Some(current) = stack.pop() {
            order.push(current);
            stack.extend(self.st.element_instances.values().filter(|ei| ei.parent == Some(current)).map(|ei| ei.key));
        }
        for current in order.into_iter().rev() {
            if let Some(child) = self.st.element_instances.get(&current).and_then(|ei| ei.child_instance.clone()) {
                self.effects.push(Effect::CancelChild { instance_id: child });
            }
            self.end_ei(current, HistoryEvent::Terminated);
        }
    }

    /// Closes the jobs, timers, user tasks, subscriptions and incidents an element instance owns.
    fn close_owned(&mut self, key: Key) {
        let jobs: Vec<Key> = self.st.jobs.values().filter(|j| j.element_instance == key).map(|j| j.key).collect();
        for job in jobs {
            self.remove_job(job);
        }
        self.close_owned_catches(key);
        let tasks: Vec<Key> = self.st.user_tasks.values().filter(|t| t.element_instance == key).map(|t| t.key).collect();
        for task in tasks {
            self.st.user_tasks.remove(&task);
            self.effects.push(Effect::UserTaskRemoved { key: task, completed: false });
        }
        let incidents: Vec<Key> = self.st.incidents.values().filter(|i| i.element_instance == key).map(|i| i.key).collect();
        for incident in incidents {
            let Some(closed) = self.st.incidents.remove(&incident) else { continue };
            self.effects.push(Effect::IncidentResolved { key: incident });
            let message = Some("closed: its element instance ended".to_string());
            let detail = HistoryDetail { incident: Some(IncidentRef { key: incident, kind: closed.kind.name().to_string() }), message, ..HistoryDetail::default() };
            self.note(Some(key), HistoryEvent::IncidentResolved, detail);
        }
    }

    fn remove_job(&mut self, job: Key) -> Option<Job> {
        let removed = self.st.jobs.remove(&job);
        if removed.is_some() {
            self.effects.push(Effect::JobRemoved { key: job });
        }
        removed
    }

    // ----- incidents -----

    fn fail(&mut self, key: Key, phase: Phase, failure: Failure) {
        // Anything the failed activation opened is closed, so resolving starts clean.
        if phase == Phase::Activate {
            self.close_owned(key);
        }
        let Some(ei) = self.st.element_instances.get_mut(&key) else { return };
        ei.state = ElementState::Incident(phase);
        let element_id = ei.element_id.clone();
        self.raise_incident(key, &element_id, failure.kind, failure.message);
    }

    fn raise_incident(&mut self, ei: Key, element_id: &str, kind: IncidentKind, message: String) {
        let key = self.next_key();
        let incident = Incident { key, element_instance: ei, element_id: element_id.to_string(), kind, message, created_at: self.now };
        let detail = HistoryDetail {
            incident: Some(IncidentRef { key, kind: incident.kind.name().to_string() }),
            message: Some(incident.message.clone()),
            ..HistoryDetail::default()
        };
        self.st.incidents.insert(key, incident.clone());
        self.effects.push(Effect::IncidentRaised { incident });
        self.note(Some(ei), HistoryEvent::IncidentRaised, detail);
    }

    fn resolve_incident(&mut self, key: Key) {
        let Some(incident) = self.st.incidents.remove(&key) else { return };
        self.effects.push(Effect::IncidentResolved { key });
        let detail = HistoryDetail {
            incident: Some(IncidentRef { key, kind: incident.kind.name().to_string() }),
            message: Some(incident.message.clone()),
            ..HistoryDetail::default()
        };
        self.note(Some(incident.element_instance), HistoryEvent::IncidentResolved, detail);
        match incident.kind {
            IncidentKind::JobNoRetries { job } | IncidentKind::UnhandledError { job, .. } => {
                if let Some(found) = self.st.jobs.get_mut(&job) {
                    found.state = JobState::Activatable;
                    found.not_before = None;
                    let updated = found.clone();
                    self.effects.push(Effect::JobUpdated { job: updated });
                }
            }
            IncidentKind::EngineFault { timer } | IncidentKind::VariablesTooLarge { timer } => {
                // The timer that was firing goes back on the schedule (it fires on the next turn).
                if let Some(timer) = timer.and_then(|t| self.st.timers.get(&t)) {
                    let timer = timer.clone();
                    self.effects.push(Effect::TimerScheduled { timer });
                }
            }
            _ => {
                let Some(ei) = self.st.element_instances.get_mut(&incident.element_instance) else { return };
                let ElementState::Incident(phase) = ei.state else { return };
                ei.state = ElementState::Active;
                let ei = incident.element_instance;
                self.queue.push_back(match phase {
                    Phase::Activate => Work::Activate { ei },
                    Phase::Complete => Work::Complete { ei },
                });
            }
        }
    }

    // ----- variables -----

    fn scope_chain(&self, key: Key) -> Vec<&Variables> {
        self.st.scope_chain(key)
    }

    /// The variables an expression reads, with the step's time and a seed for its random values.
    fn view<'v>(&self, chain: Vec<&'v Variables>) -> ScopeView<'v> {
        ScopeView { chain, now: self.now, seed: seed_of(&self.st.id, self.st.update_count, self.st.next_key) }
    }

    fn visible_variables(&self, key: Key) -> Variables {
        self.st.visible_variables(key)
    }

    fn evaluate(&self, key: Key, expression: &Expression) -> Result<Json, Failure> {
        let view = self.view(self.scope_chain(key));
        expression
            .evaluate(&view)
            .map_err(|error| Failure::expression(format!("the expression '{}' failed: {error}", expression.source())))
    }

    fn property_value(&self, key: Key, property: &Property) -> Result<Json, Failure> {
        match property {
            Property::Literal(text) => Ok(Json::String(text.clone())),
            Property::Expression(expression) => self.evaluate(key, expression),
        }
    }

    fn text_value(&self, key: Key, property: &Property) -> Result<String, Failure> {
        match self.property_value(key, property)? {
            Json::String(s) => Ok(s),
            Json::Number(n) => Ok(n.to_string()),
            other => {
                let source = if let Property::Expression(e) = property { e.source() } else { "" };
                Err(Failure::expression(format!("the expression '{source}' gave {other}, where text is needed")))
            }
        }
    }

    /// Sets `name` in the nearest scope (from `scope` up) that has it, else in the instance's scope.
    fn propagate(&mut self, scope: Key, name: String, value: Json) {
        self.wrote(&value);
        let mut current = Some(scope);
        while let Some(key) = current.filter(|&k| k != self.st.root) {
            // An ad-hoc subprocess's inner instance keeps what its flow writes (Camunda 8 does so).
            let inner = self.st.element_instances.get(&key).is_some_and(|ei| self.is_ad_hoc_inner(ei));
            let Some(ei) = self.st.element_instances.get(&key) else { break };
            let exists = ei.variables.contains_key(&name);
            if inner || exists {
                self.touch(key, &name, !exists);
                if let Some(ei) = self.st.element_instances.get_mut(&key) {
                    ei.variables.insert(name, value);
                }
                return;
            }
            current = ei.parent;
        }
        let root = self.st.root;
        self.touch(root, &name, !self.st.variables.contains_key(&name));
        self.st.variables.insert(name, value);
        self.st.variables_changes += 1;
    }

    /// Sets variables in an element instance's own scope.
    fn set_local(&mut self, key: Key, variables: Variables) {
        self.wrote_all(&variables);
        for name in variables.keys() {
            let created = self.st.element_instances.get(&key).is_some_and(|ei| !ei.variables.contains_key(name));
            self.touch(key, name, created);
        }
        if let Some(ei) = self.st.element_instances.get_mut(&key) {
            ei.variables.extend(variables);
        }
    }

    /// Takes variables from a worker, user, message or child into an element
    /// instance: kept local when the element has output mappings (only they
    /// decide what leaves), propagated otherwise.
    fn absorb(&mut self, key: Key, variables: Variables) {
        let Some(element) = self.st.element_instances.get(&key).map(|ei| ei.element) else { return };
        if !self.wf.elements[element].outputs.is_empty() {
            self.set_local(key, variables);
        } else {
            for (name, value) in variables {
                self.propagate(key, name, value);
            }
        }
    }

    // ----- jobs and user tasks -----

    fn create_job(&mut self, key: Key, job: &JobDefinition, listener: Option<ListenerEvent>) -> Outcome {
        let job_type = self.text_value(key, &job.job_type)?;
        let retries = match &job.retries {
            Property::Literal(text) => text.trim().parse::<u32>().unwrap_or(3),
            Property::Expression(expression) => match self.evaluate(key, expression)? {
                Json::Number(n) if n.as_u64().is_some_and(|r| r <= u64::from(u32::MAX)) => n.as_u64().unwrap_or(3) as u32,
                other => return Err(Failure::expression(format!("retries evaluated to {other}, not a whole number"))),
            },
        };
        let job_key = self.next_key();
        let ei = &self.st.element_instances[&key];
        let created = Job {
            key: job_key,
            element_instance: key,
            element_id: ei.element_id.clone(),
            job_type,
            retries,
            state: JobState::Activatable,
            not_before: None,
            error_message: None,
            headers: job.headers.iter().cloned().collect(),
            created_at: self.now,
            failures: 0,
            listener,
        };
        self.st.jobs.insert(job_key, created.clone());
        self.effects.push(Effect::JobCreated { job: created });
        Ok(())
    }

    fn create_user_task(&mut self, key: Key, task: &UserTaskDefinition) -> Outcome {
        let optional_text = |m: &Self, p: &Option<Property>| -> Result<Option<String>, Failure> {
            match p {
                None => Ok(None),
                Some(p) => match m.property_value(key, p)? {
                    Json::Null => Ok(None),
                    Json::String(s) if s.is_empty() => Ok(None),
                    Json::String(s) => Ok(Some(s)),
                    other => Ok(Some(other.to_string())),
                },
            }
        };
        let list = |m: &Self, p: &Option<Property>| -> Result<Vec<String>, Failure> {
            let Some(p) = p else { return Ok(Vec::new()) };
            Ok(match m.property_value(key, p)? {
                Json::String(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
                Json::Array(items) => items.into_iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect(),
                Json::Null => Vec::new(),
                other => return Err(Failure::expression(format!("a candidate list evaluated to {other}, not a list of names"))),
            })
        };
        let assignee = optional_text(self, &task.assignee)?;
        let candidate_groups = list(self, &task.candidate_groups)?;
        let candidate_users = list(self, &task.candidate_users)?;
        let due = optional_text(self, &task.due_date)?;
        let follow_up = optional_text(self, &task.follow_up_date)?;
        let priority = match optional_text(self, &task.priority)? {
            None => None,
            Some(text) => Some(text.trim().parse::<i64>().map_err(|_| Failure::expression(format!("priority '{text}' is not a whole number")))?),
        };
        let task_key = self.next_key();
        let created = UserTask {
            key: task_key,
            element_instance: key,
            element_id: self.st.element_instances[&key].element_id.clone(),
            assignee,
            candidate_groups,
            candidate_users,
            due,
            follow_up,
            priority,
            form_key: task.form_key.clone(),
            created_at: self.now,
            transition: None,
        };
        let element = self.st.element_instances[&key].element;
        let mut created = created;
        // With assigning listeners, the process's assignee is assigned once the task exists, as a change they see.
        let assign_later = if self.listener(element, ListenerEvent::Assigning, 0).is_some() { created.assignee.take() } else { None };
        self.st.user_tasks.insert(task_key, created);
        if self.listener(element, ListenerEvent::Creating, 0).is_some() {
            let transition = TaskTransition { assignee: assign_later, ..task_transition(ListenerEvent::Creating, "create") };
            return self.begin_task_transition(task_key, transition);
        }
        self.task_created(task_key, assign_later);
        Ok(())
    }

    /// The task exists for the world: it is announced, then given the process's assignee if that waited.
    fn task_created(&mut self, task_key: Key, assign_later: Option<String>) {
        let Some(task) = self.st.user_tasks.get(&task_key) else { return };
        self.effects.push(Effect::UserTaskCreated { task: task.clone() });
        if let Some(assignee) = assign_later {
            let transition = TaskTransition { assignee: Some(assignee), ..task_transition(ListenerEvent::Assigning, "assign") };
            if let Err(failure) = self.begin_task_transition(task_key, transition) {
                self.task_listener_failed(task_key, failure);
            }
        }
    }

    /// Starts a change its listeners see first; without listeners it takes effect now.
    fn begin_task_transition(&mut self, task_key: Key, transition: TaskTransition) -> Outcome {
        let Some(task) = self.st.user_tasks.get_mut(&task_key) else { return Ok(()) };
        task.transition = Some(transition);
        self.next_task_listener(task_key)
    }

    /// Creates the job of the change's next listener, or makes the change when all have completed.
    fn next_task_listener(&mut self, task_key: Key) -> Outcome {
        let Some(task) = self.st.user_tasks.get(&task_key) else { return Ok(()) };
        let Some(transition) = &task.transition else { return Ok(()) };
        let (ei, event) = (task.element_instance, transition.event);
        let Some(element) = self.st.element_instances.get(&ei).map(|ei| ei.element) else { return Ok(()) };
        let Some(listener) = self.listener(element, event, transition.done) else {
            self.finish_task_transition(task_key);
            return Ok(());
        };
        // The listener sees the task as the change would leave it, with the corrections so far.
        let mut seen = task.clone();
        apply_transition(&mut seen, transition);
        let changed = changed_attributes(task, &seen);
        let mut listener = listener;
        let header = |name: &str| format!("io.camunda.zeebe:{name}");
        let list = |items: &[String]| Json::from(items.to_vec()).to_string();
        listener.headers.extend([
            (header("userTaskKey"), format!("{}.{task_key}", self.st.id)),
            (header("action"), transition.action.clone()),
            (header("assignee"), seen.assignee.clone().unwrap_or_default()),
            (header("candidateGroups"), list(&seen.candidate_groups)),
            (header("candidateUsers"), list(&seen.candidate_users)),
            (header("dueDate"), seen.due.clone().unwrap_or_default()),
            (header("followUpDate"), seen.follow_up.clone().unwrap_or_default()),
            (header("formKey"), seen.form_key.clone().unwrap_or_default()),
            (header("priority"), seen.priority.map(|p| p.to_string()).unwrap_or_default()),
            (header("changedAttributes"), list(&changed)),
        ]);
        self.create_job(ei, &listener, Some(event))
    }

    /// All the change's listeners agreed: it takes effect, with their corrections.
    fn finish_task_transition(&mut self, task_key: Key) {
        let Some(task) = self.st.user_tasks.get_mut(&task_key) else { return };
        let Some(transition) = task.transition.take() else { return };
        apply_transition(task, &transition);
        match transition.event {
            ListenerEvent::Creating => self.task_created(task_key, transition.assignee),
            ListenerEvent::Completing => self.complete_user_task(task_key, transition.variables),
            ListenerEvent::Canceling => self.task_canceled(task_key),
            _ => {
                let updated = task.clone();
                self.effects.push(Effect::UserTaskUpdated { task: updated });
            }
        }
    }

    /// A listener's job could not be created: the change is not made, and an incident says why.
    fn task_listener_failed(&mut self, task_key: Key, failure: Failure) {
        let Some(task) = self.st.user_tasks.get_mut(&task_key) else { return };
        let Some(transition) = task.transition.take() else { return };
        let (ei, element_id) = (task.element_instance, task.element_id.clone());
        let message = format!("the {} listener's job could not be created, so the change was not made: {}", transition.event.as_str(), failure.message);
        self.raise_incident(ei, &element_id, failure.kind, message);
    }

    /// A user task listener's job completed: it denied the change, or the next listener runs.
    fn task_listener_completed(&mut self, job: &Job, result: crate::JobResult) {
        let Some(task_key) = self.st.user_tasks.values().find(|t| t.element_instance == job.element_instance).map(|t| t.key) else { return };
        let mut detail = HistoryDetail { job: Some(Self::job_ref(job)), task: Some(task_key), ..HistoryDetail::default() };
        if result.denied {
            detail.message = Some(match &result.denied_reason {
                Some(reason) => format!("denied: {reason}"),
                None => "denied".to_string(),
            });
        }
        self.note(Some(job.element_instance), HistoryEvent::ListenerCompleted, detail);
        let Some(transition) = self.st.user_tasks.get_mut(&task_key).and_then(|t| t.transition.as_mut()) else { return };
        if result.denied {
            // The task stays as it was; no correction applies.
            if let Some(task) = self.st.user_tasks.get_mut(&task_key) {
                task.transition = None;
            }
            return;
        }
        if let Some(corrections) = result.corrections {
            transition.corrections.merge(corrections);
        }
        transition.done += 1;
        if let Err(failure) = self.next_task_listener(task_key) {
            self.task_listener_failed(task_key, failure);
        }
    }

    /// Completes a user task with `variables`: its element goes on.
    fn complete_user_task(&mut self, task_key: Key, variables: Variables) {
        let Some(task) = self.st.user_tasks.remove(&task_key) else { return };
        self.effects.push(Effect::UserTaskRemoved { key: task.key, completed: true });
        let detail = HistoryDetail { task: Some(task.key), variables: bounded_payload(&variables), ..HistoryDetail::default() };
        self.completions.insert(task.element_instance, detail);
        self.absorb(task.element_instance, variables);
        self.queue.push_back(Work::Complete { ei: task.element_instance });
    }

    /// Starts a change to a user task from outside: through its listeners when it has any for the change.
    fn change_user_task(&mut self, task_key: Key, transition: TaskTransition) {
        if let Err(failure) = self.begin_task_transition(task_key, transition) {
            self.task_listener_failed(task_key, failure);
        }
    }

    // ----- catch events: timers, messages, signals -----

    /// Opens what `element` waits for, owned by the element instance `owner`;
    /// expressions are evaluated in the scope of `context`.
    fn open_catch(&mut self, owner: Key, context: Key, element: ElementIdx, trigger: &Trigger) -> Outcome {
        match trigger {
            Trigger::Timer(timer) => {
                let text = self.text_value(context, timer.property())?;
                let schedule = timer.schedule(&text, self.now).map_err(Failure::expression)?;
                let key = self.next_key();
                let created = Timer {
                    key,
                    element_instance: owner,
                    element,
                    element_id: self.wf.elements[element].id.clone(),
                    due_at: schedule.due_ms,
                    repeat: schedule.repeat.map(|r| TimerRepeat { remaining: r.remaining, every: r.every }),
                };
                self.st.timers.insert(key, created.clone());
                self.effects.push(Effect::TimerScheduled { timer: created });
            }
            Trigger::Message(message) => self.open_message_subscription(owner, context, element, message)?,
            Trigger::Signal { name } => {
                let name = self.text_value(context, name)?;
                self.open_subscription(owner, element, SubscriptionKind::Signal { name });
            }
            Trigger::Conditional(_) => {
                let key = self.next_key();
                let armed = ConditionWait { key, element_instance: owner, element, element_id: self.wf.elements[element].id.clone() };
                self.st.conditions.insert(key, armed);
                self.fresh.push(key);
            }
            // Compensation is thrown inside the instance, never awaited from outside.
            Trigger::None | Trigger::Error { .. } | Trigger::Escalation { .. } | Trigger::Link { .. } | Trigger::Compensation => {}
        }
        Ok(())
    }

    fn open_message_subscription(&mut self, owner: Key, context: Key, element: ElementIdx, message: &MessageDefinition) -> Outcome {
        let name = self.text_value(context, &message.name)?;
        let correlation_key = match &message.correlation_key {
            Some(key) => self.text_value(context, key)?,
            None => String::new(),
        };
        self.open_subscription(owner, element, SubscriptionKind::Message { name, correlation_key });
        Ok(())
    }

    fn open_subscription(&mut self, owner: Key, element: ElementIdx, kind: SubscriptionKind) {
        let key = self.next_key();
        let created = Subscription { key, element_instance: owner, element, element_id: self.wf.elements[element].id.clone(), kind };
        self.st.subscriptions.insert(key, created.clone());
        self.effects.push(Effect::SubscriptionOpened { subscription: created });
    }

    /// Opens the timers, messages and signals of an activity's boundary events.
    /// A multi-instance activity's are opened once, on its body: its
    /// iterations open none of their own.
    fn open_boundary_events(&mut self, key: Key) -> Outcome {
        if self.is_iteration(key) {
            return Ok(());
        }
        let Some(element) = self.st.element_instances.get(&key).map(|ei| ei.element) else { return Ok(()) };
        for &boundary in &self.wf.elements[element].boundary_events {
            if let Kind::Boundary { trigger, .. } = &self.wf.elements[boundary].kind {
                self.open_catch(key, key, boundary, trigger)?;
            }
        }
        Ok(())
    }

    /// Opens the start events of the event subprocesses in a scope. A failure
    /// here raises an incident on the scope but does not stop its main flow.
    fn open_event_subprocess_starts(&mut self, scope: Key) {
        let element = self.st.element_instances[&scope].element;
        let starts: Vec<ElementIdx> = self.wf.event_subprocess_starts(element).collect();
        for start in starts {
            if let Kind::StartEvent { trigger, .. } = &self.wf.elements[start].kind {
                if let Err(failure) = self.open_catch(scope, scope, start, trigger) {
                    let element_id = self.wf.elements[start].id.clone();
                    self.raise_incident(scope, &element_id, failure.kind, failure.message);
                }
            }
        }
    }

    fn fire_timer(&mut self, key: Key) {
        let Some(timer) = self.st.timers.get(&key).cloned() else { return };
        // A repeating timer is rescheduled before it triggers: a non-interrupting
        // boundary or event subprocess keeps it; an interrupting one closes it with its owner.
        let next = timer.repeat.as_ref().filter(|r| r.remaining != Some(0)).and_then(|r| {
            let due_at = bpmn::timer::next_due(&r.every, timer.due_at).ok()?;
            Some(Timer { due_at, repeat: Some(TimerRepeat { remaining: r.remaining.map(|n| n - 1), every: r.every.clone() }), ..timer.clone() })
        });
        match next {
            Some(next) => {
                self.st.timers.insert(key, next.clone());
                self.effects.push(Effect::TimerScheduled { timer: next });
            }
            None => {
                self.st.timers.remove(&key);
                self.effects.push(Effect::TimerRemoved { key });
            }
        }
        self.trigger_catch(timer.element_instance, timer.element, Variables::new(), None);
    }

    /// A timer, message or signal arrived for `element`, owned by the element instance `owner`.
    fn trigger_catch(&mut self, owner: Key, element: ElementIdx, variables: Variables, subscription: Option<Key>) {
        // A non-interrupting boundary event or event subprocess start stays
        // subscribed while its activity or scope is active: every message or
        // signal starts its path again.
        let keeps_subscription = matches!(
            self.wf.elements[element].kind,
            Kind::Boundary { cancel_activity: false, .. } | Kind::StartEvent { interrupting: false, .. }
        );
        if let (Some(subscription), false) = (subscription, keeps_subscription) {
            if self.st.subscriptions.remove(&subscription).is_some() {
                self.effects.push(Effect::SubscriptionClosed { key: subscription });
            }
        }
        let Some(owner_ei) = self.st.element_instances.get(&owner) else { return };
        let owner_element = owner_ei.element;
        let owner_scope = owner_ei.parent;
        match &self.wf.elements[element].kind {
            Kind::Boundary { cancel_activity, .. } => {
                let scope = owner_scope.unwrap_or(self.st.root);
                let then = AfterTermination::Boundary { boundary: element, scope, variables };
                if *cancel_activity {
                    self.terminate_then(vec![owner], then);
                } else {
                    self.after_termination(then);
                }
            }
            Kind::StartEvent { interrupting, .. } => {
                // An event subprocess start inside the scope `owner`.
                let event_subprocess = self.wf.elements[element].parent.unwrap_or(Workflow::ROOT);
                self.start_event_subprocess(owner, event_subprocess, element, *interrupting, variables);
            }
            _ if owner_element == element => {
                // The catch event or receive task itself waited.
                self.absorb(owner, variables);
                self.queue.push_back(Work::Complete { ei: owner });
            }
            _ => {
                // An event-based gateway: the first event wins; ending the
                // gateway closes the other events' timers and subscriptions.
                let scope = owner_scope.unwrap_or(self.st.root);
                self.end_ei(owner, HistoryEvent::Completed);
                let ei = self.create_ei(element, Some(scope), 1);
                self.absorb(ei, variables);
                self.queue.push_back(Work::Complete { ei });
            }
        }
    }

    fn start_event_subprocess(&mut self, scope: Key, event_subprocess: ElementIdx, start: ElementIdx, interrupting: bool, variables: Variables) {
        let then = AfterTermination::EventSubprocess { scope, event_subprocess, start, variables };
        if interrupting {
            let children: Vec<Key> = self.st.element_instances.values().filter(|ei| ei.parent == Some(scope)).map(|ei| ei.key).collect();
            // Nothing else in the scope may start now.
            self.close_owned_catches(scope);
            if let Some(scope_ei) = self.st.element_instances.get_mut(&scope) {
                scope_ei.joins.clear();
            }
            self.terminate_then(children, then);
        } else {
            self.after_termination(then);
        }
    }

    /// Closes the timers, subscriptions and conditions an element instance owns, leaving its jobs and tasks.
    fn close_owned_catches(&mut self, key: Key) {
        let conditions: Vec<Key> = self.st.conditions.values().filter(|c| c.element_instance == key).map(|c| c.key).collect();
        for condition in conditions {
            self.st.conditions.remove(&condition);
        }
        let timers: Vec<Key> = self.st.timers.values().filter(|t| t.element_instance == key).map(|t| t.key).collect();
        for timer in timers {
            self.st.timers.remove(&timer);
            self.effects.push(Effect::TimerRemoved { key: timer });
        }
        let subscriptions: Vec<Key> = self.st.subscriptions.values().filter(|s| s.element_instance == key).map(|s| s.key).collect();
        for subscription in subscriptions {
            self.st.subscriptions.remove(&subscription);
            self.effects.push(Effect::SubscriptionClosed { key: subscription });
        }
    }

    // ----- errors and escalations -----

    /// Where an error thrown at element instance `from` is caught: the
    /// element instance that handles it and the catching event element.
    ///
    /// Scope by scope from `from` outward: first the error event subprocesses
    /// of the scope the error is thrown in, then the error boundary events of
    /// that scope's activity, then the enclosing scope (BPMN 2.0.2 10.5.6;
    /// Camunda 7 and 8 agree). In each, a catch naming the code wins over a
    /// catch-all. A scope an interrupting event subprocess has taken over does
    /// not offer the error to its event subprocesses again (the error comes
    /// out of one of them).
    fn find_error_catch(&self, from: Key, code: &str) -> Option<(Key, ElementIdx)> {
        let matches = |trigger: &Trigger, exact: bool| match trigger {
            Trigger::Error { code: Some(c) } => exact && c == code,
            Trigger::Error { code: None } => !exact,
            _ => false,
        };
        let mut current = Some(from);
        let mut from_interrupting_event_subprocess = false;
        while let Some(key) = current {
            let ei = self.st.element_instances.get(&key)?;
            let el = &self.wf.elements[ei.element];
            // Event subprocesses of this scope (a multi-instance body is no scope: its iterations are).
            let is_scope = matches!(el.kind, Kind::Process | Kind::SubProcess { .. }) && ei.multi_instance.is_none();
            if is_scope && !from_interrupting_event_subprocess {
                for exact in [true, false] {
                    for start in self.wf.event_subprocess_starts(ei.element) {
                        if let Kind::StartEvent { trigger, .. } = &self.wf.elements[start].kind {
                            if matches(trigger, exact) {
                                return Some((key, start));
                            }
                        }
                    }
                }
            }
            // Boundary events of this activity (on a multi-instance body, not its iterations).
            if !self.is_iteration(key) {
                for exact in [true, false] {
                    for &boundary in &el.boundary_events {
                        if let Kind::Boundary { trigger, .. } = &self.wf.elements[boundary].kind {
                            if matches(trigger, exact) {
                                return Some((key, boundary));
                            }
                        }
                    }
                }
            }
            from_interrupting_event_subprocess = self.is_interrupting_event_subprocess(ei.element);
            current = ei.parent;
        }
        None
    }

    /// Whether an element is an event subprocess whose start event interrupts its scope.
    fn is_interrupting_event_subprocess(&self, element: ElementIdx) -> bool {
        matches!(self.wf.elements[element].kind, Kind::SubProcess { triggered_by_event: true })
            && self.wf.elements[element]
                .children
                .iter()
                .any(|&c| matches!(self.wf.elements[c].kind, Kind::StartEvent { interrupting: true, .. }))
    }

    /// Throws an error from element instance `from`; returns whether something caught it.
    fn throw_error(&mut self, from: Key, code: &str, variables: Variables) -> bool {
        let Some((handler, catch)) = self.find_error_catch(from, code) else { return false };
        match &self.wf.elements[catch].kind {
            Kind::Boundary { .. } => {
                let scope = self.scope_of(handler);
                self.terminate_then(vec![handler], AfterTermination::Boundary { boundary: catch, scope, variables });
            }
            _ => {
                let event_subprocess = self.wf.elements[catch].parent.unwrap_or(Workflow::ROOT);
                self.start_event_subprocess(handler, event_subprocess, catch, true, variables);
            }
        }
        true
    }

    /// An error end event in `scope` threw `code`: caught, or the instance fails
    /// (and a parent instance hears of it).
    fn throw_error_from_end_event(&mut self, scope: Key, code: &str, element_id: &str) {
        if self.throw_error(scope, code, Variables::new()) {
            return;
        }
        // The scope itself may be the catcher (its boundary); throw_error looked
        // from the scope up, so nothing catches: the instance fails.
        let message = Some(format!("error '{code}' thrown by '{element_id}' was not caught"));
        let after = self.error_after.take();
        self.st.error = Some(ErrorRecord { code: code.to_string(), message, element_id: element_id.to_string(), after });
        self.end_instance(Status::Failed, Some(code.to_string()));
    }

    /// Throws an escalation from the element instance `from` in `scope`;
    /// returns whether an interrupting catch ended the thrower. An escalation
    /// nobody catches changes nothing.
    fn throw_escalation(&mut self, from: Key, scope: Key, code: &str) -> bool {
        let catches = |trigger: &Trigger| matches!(trigger, Trigger::Escalation { code: c } if c.as_deref().is_none_or(|c| c == code));
        let mut current = Some(scope);
        while let Some(key) = current {
            let Some(ei) = self.st.element_instances.get(&key) else { return false };
            let (element, parent) = (ei.element, ei.parent);
            let el = &self.wf.elements[element];
            // First an event subprocess of the scope, then a boundary event of the scope's activity.
            if matches!(el.kind, Kind::Process | Kind::SubProcess { .. }) && ei.multi_instance.is_none() {
                let start = self.wf.event_subprocess_starts(element).find(|&s| {
                    matches!(&self.wf.elements[s].kind, Kind::StartEvent { trigger, .. } if catches(trigger))
                });
                if let Some(start) = start {
                    let interrupting = matches!(self.wf.elements[start].kind, Kind::StartEvent { interrupting: true, .. });
                    let event_subprocess = self.wf.elements[start].parent.unwrap_or(Workflow::ROOT);
                    self.start_event_subprocess(key, event_subprocess, start, interrupting, Variables::new());
                    return interrupting;
                }
            }
            if key != from && !self.is_iteration(key) {
                let boundary = el.boundary_events.iter().copied().find(|&b| {
                    matches!(&self.wf.elements[b].kind, Kind::Boundary { trigger, .. } if catches(trigger))
                });
                if let Some(boundary) = boundary {
                    let interrupting = matches!(self.wf.elements[boundary].kind, Kind::Boundary { cancel_activity: true, .. });
                    self.trigger_catch(key, boundary, Variables::new(), None);
                    return interrupting;
                }
            }
            current = parent;
        }
        false
    }

    // ----- conditional events -----

    /// Notes that `name` was written in `scope`, for the conditions armed (none: nothing to note).
    fn touch(&mut self, scope: Key, name: &str, created: bool) {
        if !self.st.conditions.is_empty() {
            self.touched.push((scope, name.to_string(), created));
        }
    }

    /// Looks at the armed conditions that were just armed, or read a variable
    /// written since they last looked in a scope they see (as their filter
    /// allows), oldest first; each that is true fires once. Returns whether one fired.
    fn fire_conditions(&mut self) -> bool {
        if self.st.conditions.is_empty() {
            self.touched.clear();
            self.fresh.clear();
            return false;
        }
        let touched = std::mem::take(&mut self.touched);
        let fresh = std::mem::take(&mut self.fresh);
        let waits: Vec<ConditionWait> = self.st.conditions.values().cloned().collect();
        let mut fired = false;
        for wait in waits {
            // An earlier one may have ended its owner.
            if !self.st.conditions.contains_key(&wait.key) {
                continue;
            }
            let (Kind::Boundary { trigger: Trigger::Conditional(conditional), .. }
            | Kind::StartEvent { trigger: Trigger::Conditional(conditional), .. }
            | Kind::IntermediateCatch(Trigger::Conditional(conditional))) = &self.wf.elements[wait.element].kind
            else {
                continue;
            };
            let reads = conditional.condition.names();
            let sees = |scope: Key| {
                let mut current = Some(wait.element_instance);
                while let Some(key) = current {
                    if key == scope {
                        return true;
                    }
                    current = self.st.element_instances.get(&key).and_then(|ei| ei.parent);
                }
                scope == self.st.root
            };
            let relevant = fresh.contains(&wait.key)
                || touched.iter().any(|(scope, name, created)| {
                    reads.contains(name) && (if *created { conditional.on_create } else { conditional.on_update }) && sees(*scope)
                });
            if !relevant {
                continue;
            }
            match self.evaluate(wait.element_instance, &conditional.condition) {
                Ok(Json::Bool(true)) => {
                    fired = true;
                    self.trigger_catch(wait.element_instance, wait.element, Variables::new(), None);
                }
                Ok(_) => {}
                Err(failure) => self.raise_incident(wait.element_instance, &wait.element_id, failure.kind, failure.message),
            }
        }
        fired
    }

    // ----- ad-hoc subprocesses -----

    /// Whether an element instance is an inner instance of an ad-hoc
    /// subprocess: the scope one activated element's flow runs in.
    fn is_ad_hoc_inner(&self, ei: &ElementInstance) -> bool {
        ei.ad_hoc.is_none() && ei.parent.and_then(|p| self.st.element_instances.get(&p)).is_some_and(|p| p.ad_hoc.is_some() && p.element == ei.element)
    }

    /// Enters an ad-hoc subprocess: `adHocSubProcessElements` and the output
    /// collection in its scope, then the elements `activeElementsCollection`
    /// names, or the job that decides.
    fn activate_ad_hoc(&mut self, key: Key) -> Outcome {
        let element = self.st.element_instances[&key].element;
        let wf = self.wf;
        let Some(ad_hoc) = wf.elements[element].ad_hoc.as_deref() else { return Ok(()) };
        self.open_boundary_events(key)?;
        self.open_event_subprocess_starts(key);
        let described = Json::Array(ad_hoc.activatable.iter().map(|&e| describe_for_ad_hoc(&wf.elements[e])).collect());
        if let Some(ei) = self.st.element_instances.get_mut(&key) {
            ei.variables.insert("adHocSubProcessElements".into(), described);
            if let Some(name) = &ad_hoc.output_collection {
                ei.variables.insert(name.clone(), Json::Array(Vec::new()));
            }
            ei.ad_hoc = Some(AdHocState { done: ad_hoc.job.is_none() && ad_hoc.completion_condition.is_none() });
        }
        if let Some(job) = &ad_hoc.job {
            return self.create_job(key, job, None);
        }
        let Some(expression) = &ad_hoc.active_elements else { return Ok(()) };
        let ids = match self.evaluate(key, expression)? {
            Json::Array(ids) => ids,
            other => return Err(Failure::expression(format!("activeElementsCollection '{}' gave {other}, not a list of element ids", expression.source()))),
        };
        let mut chosen = Vec::with_capacity(ids.len());
        for id in ids {
            let found = id.as_str().and_then(|id| ad_hoc.activatable.iter().copied().find(|&e| wf.elements[e].id == id));
            chosen.push(found.ok_or_else(|| Failure::expression(format!("activeElementsCollection names {id}, which is not an element the ad-hoc subprocess can activate")))?);
        }
        for element in chosen {
            self.start_ad_hoc_flow(key, element, Variables::new());
        }
        Ok(())
    }

    /// Starts `element` in a new inner instance of the ad-hoc subprocess `ad_hoc`, which holds `variables`.
    fn start_ad_hoc_flow(&mut self, ad_hoc: Key, element: ElementIdx, variables: Variables) {
        let Some(ad_hoc_element) = self.st.element_instances.get(&ad_hoc).map(|ei| ei.element) else { return };
        let inner = self.create_ei(ad_hoc_element, Some(ad_hoc), 1);
        if let Some(ei) = self.st.element_instances.get_mut(&inner) {
            ei.variables = variables;
        }
        self.queue.push_back(Work::Arrive { element, scope: inner, flow: None });
    }

    /// An inner flow of an ad-hoc subprocess ended: its output element joins
    /// the output collection; then the completion condition is asked, or the
    /// job that decides is created again.
    fn ad_hoc_flow_completed(&mut self, inner: Key) {
        let Some(ei) = self.st.element_instances.get(&inner) else { return };
        let (element, ad_hoc) = (ei.element, self.scope_of(inner));
        let wf = self.wf;
        let Some(definition) = wf.elements[element].ad_hoc.as_deref() else { return };
        if let (Some(name), Some(expression)) = (&definition.output_collection, &definition.output_element) {
            match self.evaluate(inner, expression) {
                Ok(value) => {
                    if let Some(Json::Array(items)) = self.st.element_instances.get_mut(&ad_hoc).and_then(|ei| ei.variables.get_mut(name)) {
                        items.push(value);
                    }
                }
                Err(failure) => self.raise_incident(ad_hoc, &wf.elements[element].id.clone(), failure.kind, failure.message),
            }
        }
        self.end_ei(inner, HistoryEvent::Completed);
        let done = self.st.element_instances.get(&ad_hoc).and_then(|ei| ei.ad_hoc).is_some_and(|a| a.done);
        if let (Some(job), false) = (&definition.job, done) {
            // One job at a time: the one a worker may still hold is replaced.
            let open: Vec<Key> = self.st.jobs.values().filter(|j| j.element_instance == ad_hoc && j.listener.is_none()).map(|j| j.key).collect();
            for job in open {
                self.remove_job(job);
            }
            if let Err(failure) = self.create_job(ad_hoc, job, None) {
                self.raise_incident(ad_hoc, &wf.elements[element].id.clone(), failure.kind, failure.message);
            }
        } else if let (None, Some(condition), false) = (&definition.job, &definition.completion_condition, done) {
            match self.evaluate(ad_hoc, condition) {
                Ok(Json::Bool(true)) => self.ad_hoc_fulfilled(ad_hoc, definition.cancel_remaining),
                Ok(_) => {}
                Err(failure) => self.raise_incident(ad_hoc, &wf.elements[element].id.clone(), failure.kind, failure.message),
            }
        }
        self.queue.push_back(Work::ScopeCheck { scope: ad_hoc });
    }

    /// The job of an ad-hoc subprocess completed with its decision.
    fn ad_hoc_decided(&mut self, ad_hoc: Key, result: crate::JobResult) {
        let Some(element) = self.st.element_instances.get(&ad_hoc).map(|ei| ei.element) else { return };
        let wf = self.wf;
        if result.is_completion_condition_fulfilled {
            self.ad_hoc_fulfilled(ad_hoc, result.is_cancel_remaining_instances);
        }
        for activate in result.activate_elements {
            // check() refused ids that name no activatable element.
            let Some(target) = wf.elements[element].ad_hoc.as_deref().and_then(|a| a.activatable.iter().copied().find(|&e| wf.elements[e].id == activate.element_id)) else { continue };
            self.start_ad_hoc_flow(ad_hoc, target, activate.variables);
        }
        self.queue.push_back(Work::ScopeCheck { scope: ad_hoc });
    }

    /// The ad-hoc subprocess may complete: at once, its inner flows terminated
    /// (`cancel_remaining`), or when the last of them ends.
    fn ad_hoc_fulfilled(&mut self, ad_hoc: Key, cancel_remaining: bool) {
        let Some(element) = self.st.element_instances.get(&ad_hoc).map(|ei| ei.element) else { return };
        if let Some(state) = self.st.element_instances.get_mut(&ad_hoc).and_then(|ei| ei.ad_hoc.as_mut()) {
            state.done = true;
        }
        if cancel_remaining {
            let inner: Vec<Key> = self.st.element_instances.values().filter(|ei| ei.parent == Some(ad_hoc) && ei.element == element).map(|ei| ei.key).collect();
            self.terminate_then(inner, AfterTermination::ScopeCheck { scope: ad_hoc });
        }
    }

    // ----- multi-instance -----

    fn activate_multi_instance_body(&mut self, key: Key) -> Outcome {
        let Some(element) = self.st.element_instances.get(&key).map(|ei| ei.element) else { return Ok(()) };
        let wf = self.wf;
        let Some(mi) = multi_instance(wf, element) else { return Ok(()) };
        let items = match (&mi.input_collection, &mi.cardinality) {
            (Some(collection), _) => match self.evaluate(key, collection)? {
                Json::Array(items) => items,
                other => return Err(Failure::expression(format!("the input collection '{}' evaluated to {other}, not a list", collection.source()))),
            },
            (None, Some(cardinality)) => match self.evaluate(key, cardinality)? {
                Json::Number(n) if n.as_u64().is_some() => vec![Json::Null; n.as_u64().unwrap_or(0).min(MAX_ELEMENT_INSTANCES as u64) as usize],
                other => return Err(Failure::expression(format!("the loop cardinality evaluated to {other}, not a whole number"))),
            },
            (None, None) => Vec::new(),
        };
        self.apply_inputs(key)?;
        self.open_boundary_events(key)?;
        let count = items.len();
        let Some(ei) = self.st.element_instances.get_mut(&key) else { return Ok(()) };
        ei.multi_instance = Some(MultiInstanceBody { items, next_index: 0, completed: 0, outputs: vec![Json::Null; count] });
        if let Some(output) = &mi.output_collection {
            // The output collection exists from the start, so iterations update it in place.
            ei.variables.insert(output.clone(), Json::Array(vec![Json::Null; count]));
        }
        if count == 0 {
            self.finish_multi_instance(key);
            return Ok(());
        }
        let first_batch = if mi.sequential { 1 } else { count };
        for _ in 0..first_batch {
            self.start_iteration(key);
        }
        Ok(())
    }

    fn start_iteration(&mut self, body: Key) {
        let Some(element) = self.st.element_instances.get(&body).map(|ei| ei.element) else { return };
        let wf = self.wf;
        let Some(mi) = multi_instance(wf, element) else { return };
        let Some(mi_state) = self.st.element_instances.get_mut(&body).and_then(|b| b.multi_instance.as_mut()) else { return };
        let index = mi_state.next_index;
        let Some(item) = mi_state.items.get(index).cloned() else { return };
        mi_state.next_index += 1;
        self.wrote(&item);
        let iteration = self.create_ei(element, Some(body), index as u32 + 1);
        if let Some(iteration_ei) = self.st.element_instances.get_mut(&iteration) {
            iteration_ei.variables.insert("loopCounter".to_string(), Json::from(index + 1));
            if let Some(name) = &mi.input_element {
                iteration_ei.variables.insert(name.clone(), item);
            }
        }
        self.queue.push_back(Work::Activate { ei: iteration });
    }

    fn iteration_completed(&mut self, body: Key, iteration: &ElementInstance) {
        let wf = self.wf;
        // Only an iteration of the body's own activity ends into the body
        // (boundary events of a multi-instance activity live beside the body).
        let Some(mi) = multi_instance(wf, iteration.element) else { return };
        // The output element is evaluated in the iteration's scope, which has just ended:
        // evaluate it against the iteration's variables on top of the body's scope.
        let mut output = Json::Null;
        if let Some(expression) = &mi.output_element {
            let mut chain = vec![&iteration.variables];
            chain.extend(self.scope_chain(body));
            match expression.evaluate(&self.view(chain)) {
                Ok(value) => output = value,
                Err(error) => {
                    let message = format!("the output element '{}' failed: {error}", expression.source());
                    let element_id = iteration.element_id.clone();
                    self.raise_incident(body, &element_id, IncidentKind::Expression, message);
                }
            }
        } else if let Some(name) = &mi.input_element {
            output = iteration.variables.get(name).cloned().unwrap_or(Json::Null);
        }
        let index = (iteration.loop_counter as usize).saturating_sub(1);
        self.wrote(&output);
        let Some(body_ei) = self.st.element_instances.get_mut(&body) else { return };
        let Some(state) = body_ei.multi_instance.as_mut() else { return };
        state.completed += 1;
        let in_range = index < state.outputs.len();
        if in_range {
            state.outputs[index] = output.clone();
        }
        let (completed, total, next_index) = (state.completed, state.items.len(), state.next_index);
        if let Some(name) = &mi.output_collection {
            // The collection is changed in place: copying it whole on every
            // iteration made a multi-instance cost the square of its size.
            match body_ei.variables.get_mut(name) {
                Some(Json::Array(collection)) if collection.len() == state.outputs.len() => {
                    if in_range {
                        collection[index] = output;
                    }
                }
                _ => {
                    body_ei.variables.insert(name.clone(), Json::Array(state.outputs.clone()));
                }
            }
        }
        let done_by_condition = match &mi.completion_condition {
            Some(condition) => {
                let mut view_vars = Variables::new();
                view_vars.insert("numberOfInstances".into(), Json::from(total));
                view_vars.insert("numberOfCompletedInstances".into(), Json::from(completed));
                view_vars.insert("numberOfActiveInstances".into(), Json::from(next_index.saturating_sub(completed)));
                let mut chain = vec![&view_vars];
                chain.extend(self.scope_chain(body));
                condition.evaluate(&self.view(chain)).map(|v| v == Json::Bool(true)).unwrap_or(false)
            }
            None => false,
        };
        if done_by_condition {
            let running: Vec<Key> = self.st.element_instances.values().filter(|ei| ei.parent == Some(body)).map(|ei| ei.key).collect();
            self.terminate_then(running, AfterTermination::FinishMultiInstance { body });
        } else if completed == total {
            self.finish_multi_instance(body);
        } else if mi.sequential && next_index < total {
            self.start_iteration(body);
        }
    }

    fn finish_multi_instance(&mut self, body: Key) {
        let Some(element) = self.st.element_instances.get(&body).map(|ei| ei.element) else { return };
        let wf = self.wf;
        let Some(mi) = multi_instance(wf, element) else { return };
        let scope = self.scope_of(body);
        if let Some(name) = &mi.output_collection {
            let value = self.st.element_instances[&body].variables.get(name).cloned().unwrap_or(Json::Array(Vec::new()));
            self.propagate(scope, name.clone(), value);
        }
        if let Err(failure) = self.map_outputs(body) {
            self.fail(body, Phase::Complete, failure);
            return;
        }
        let flows = match self.outgoing_flows(body, element) {
            Ok(flows) => flows,
            Err(failure) => {
                self.fail(body, Phase::Complete, failure);
                return;
            }
        };
        self.leave(body, flows);
    }
}

/// A change to a user task, before its details are filled in.
fn task_transition(event: ListenerEvent, action: &str) -> TaskTransition {
    TaskTransition {
        event,
        done: 0,
        assignee: None,
        changes: crate::TaskCorrections::default(),
        variables: Variables::new(),
        corrections: crate::TaskCorrections::default(),
        action: action.to_string(),
    }
}

/// The task as the change leaves it: what was asked, then the listeners' corrections.
fn apply_transition(task: &mut UserTask, transition: &TaskTransition) {
    match transition.event {
        ListenerEvent::Assigning => task.assignee = transition.assignee.clone(),
        ListenerEvent::Updating => transition.changes.apply_to(task),
        _ => {}
    }
    transition.corrections.apply_to(task);
}

/// The attributes (Camunda's names) in which `after` differs from `before`.
fn changed_attributes(before: &UserTask, after: &UserTask) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            changed.push(name.to_string());
        }
    };
    check("assignee", before.assignee != after.assignee);
    check("candidateGroupsList", before.candidate_groups != after.candidate_groups);
    check("candidateUsersList", before.candidate_users != after.candidate_users);
    check("dueDate", before.due != after.due);
    check("followUpDate", before.follow_up != after.follow_up);
    check("priority", before.priority != after.priority);
    changed
}

/// An element as `adHocSubProcessElements` describes it to whoever chooses what to activate.
fn describe_for_ad_hoc(element: &bpmn::Element) -> Json {
    let parameters: Vec<Json> = element
        .inputs
        .iter()
        .filter_map(|mapping| match &mapping.source {
            Property::Expression(expression) => Some(expression.ai_parameters()),
            Property::Literal(_) => None,
        })
        .flatten()
        .collect();
    serde_json::json!({
        "elementId": element.id,
        "elementName": element.name,
        "documentation": element.documentation,
        "properties": element.properties,
        "parameters": parameters,
    })
}

/// The multi-instance characteristics of an element, which every body and iteration has.
fn multi_instance(wf: &Workflow, element: ElementIdx) -> Option<&bpmn::MultiInstance> {
    match &wf.elements[element].loop_characteristics {
        Some(LoopCharacteristics::MultiInstance(mi)) => Some(mi),
        _ => None,
    }
}

fn consume_one_each(scope_ei: &mut ElementInstance, gateway: ElementIdx, incoming: &[FlowIdx]) {
    let arrivals = scope_ei.joins.entry(gateway).or_default();
    for flow in incoming {
        if let Some(count) = arrivals.get_mut(flow) {
            *count -= 1;
            if *count == 0 {
                arrivals.remove(flow);
            }
        }
    }
    if arrivals.is_empty() {
        scope_ei.joins.remove(&gateway);
    }
}

/// The variables visible from an element instance: inner scopes shadow outer ones.
struct ScopeView<'a> {
    chain: Vec<&'a Variables>,
    /// The step's time: what `now()` and `today()` give.
    now: Millis,
    /// Where `uuid()` and `random number()` start: the instance and how far it has come, so a replay gives the same.
    seed: u64,
}

impl feel::Variables for ScopeView<'_> {
    fn get(&self, name: &str) -> Option<&Json> {
        self.chain.iter().find_map(|scope| scope.get(name))
    }

    fn clock(&self) -> Option<i64> {
        Some(self.now)
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }
}

/// A seed from the instance's id and its counters (FNV-1a): the same step replayed gives the same.
fn seed_of(id: &str, update_count: u64, next_key: Key) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes().chain(update_count.to_le_bytes()).chain(next_key.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
