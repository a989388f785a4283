//! An in-memory, single-threaded host for the engine with a virtual clock:
//! deployments, many instances, message buffering and correlation, signal
//! broadcasts, child instances and timers. Deterministic: the same calls give
//! the same results.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bpmn::{Diagnostic, Kind, Trigger, Workflow};
use engine::{Effect, HistoryEntry, Input, InstanceState, Key, Millis, ParentRef, Rejection, StartOptions, Status, SubscriptionKind, Variables};

/// Most instances one world holds: a recursion that fans out ends in incidents, not in memory exhaustion.
pub const MAX_INSTANCES: usize = 100_000;

/// One deployed version of a workflow.
#[derive(Clone)]
pub struct Deployed {
    pub workflow: Arc<Workflow>,
    pub version: u32,
    pub xml: Arc<str>,
    /// Which `deploy` call brought this version (call activities can bind to it).
    pub deployment: usize,
}

pub struct Instance {
    /// Start order (0-based); also the tie-breaker for everything "oldest".
    pub seq: usize,
    pub state: InstanceState,
    pub deployed: Deployed,
}

#[derive(Clone, Debug)]
struct BufferedMessage {
    name: String,
    correlation_key: String,
    variables: Variables,
    expires_at: Millis,
    message_id: Option<String>,
    /// Processes it was correlated to: a message reaches each process at most once.
    correlated: BTreeSet<String>,
}

/// A start timer of a deployed workflow (a timer start event).
#[derive(Clone, Debug)]
struct StartTimer {
    process_id: String,
    version: u32,
    element: String,
    due_at: Millis,
    /// Firings left and the repetition (`bpmn::timer::next_due`).
    repeat: Option<(Option<u32>, String)>,
}

/// Why a deployment or a command was refused.
#[derive(Clone, Debug)]
pub enum WorldError {
    Deploy(Vec<Diagnostic>),
    Rejected(Rejection),
    /// A command named something that does not exist (a process, an instance).
    NotFound(String),
    /// A message with this id is still buffered.
    DuplicateMessage(String),
}

impl std::fmt::Display for WorldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorldError::Deploy(diagnostics) => {
                let errors: Vec<String> =
                    diagnostics.iter().filter(|d| d.severity == bpmn::Severity::Error).map(|d| d.to_string()).collect();
                write!(f, "deployment refused: {}", errors.join("; "))
            }
            WorldError::Rejected(rejection) => write!(f, "refused: {rejection}"),
            WorldError::NotFound(what) => write!(f, "{what}"),
            WorldError::DuplicateMessage(id) => write!(f, "a message with id '{id}' was already published and is still buffered"),
        }
    }
}

impl WorldError {
    pub fn code(&self) -> &str {
        match self {
            WorldError::Deploy(_) => "deploy-refused",
            WorldError::Rejected(rejection) => rejection.code.as_str(),
            WorldError::NotFound(_) => "not-found",
            WorldError::DuplicateMessage(_) => "message-already-published",
        }
    }
}

#[derive(Default)]
pub struct World {
    pub now: Millis,
    /// Versions per process id, oldest first.
    deployments: BTreeMap<String, Vec<Deployed>>,
    pub instances: Vec<Instance>,
    index: BTreeMap<String, usize>,
    /// Per instance (by seq): its history, in order.
    pub history: BTreeMap<usize, Vec<HistoryEntry>>,
    messages: Vec<BufferedMessage>,
    start_timers: Vec<StartTimer>,
    /// Effects not yet carried out, with the instance that produced them.
    pending: VecDeque<(usize, Effect)>,
    /// Instances started by a message with a correlation key: (process id, key) by seq.
    message_started: BTreeMap<usize, (String, String)>,
    deployments_made: usize,
}

impl World {
    pub fn new(now: Millis) -> World {
        World { now, ..World::default() }
    }

    /// Deploys every executable process of a BPMN file. Identical content deployed again keeps its version.
    pub fn deploy(&mut self, xml: &str) -> Result<Vec<(String, u32)>, WorldError> {
        let import = bpmn::import(xml);
        let workflows = import.into_workflows().map_err(WorldError::Deploy)?;
        self.deployments_made += 1;
        let deployment = self.deployments_made;
        let mut deployed = Vec::new();
        for workflow in workflows {
            let versions = self.deployments.entry(workflow.process_id.clone()).or_default();
            if let Some(last) = versions.last() {
                if &*last.xml == xml {
                    deployed.push((workflow.process_id.clone(), last.version));
                    continue;
                }
            }
            let version = versions.len() as u32 + 1;
            let entry = Deployed { workflow: Arc::new(workflow), version, xml: xml.into(), deployment };
            versions.push(entry.clone());
            deployed.push((entry.workflow.process_id.clone(), version));
            self.schedule_start_timers(&entry);
        }
        Ok(deployed)
    }

    fn schedule_start_timers(&mut self, deployed: &Deployed) {
        let process_id = &deployed.workflow.process_id;
        // A new version replaces the start timers of older ones.
        self.start_timers.retain(|t| &t.process_id != process_id);
        for &child in &deployed.workflow.elements[Workflow::ROOT].children {
            let element = &deployed.workflow.elements[child];
            if let Kind::StartEvent { trigger: Trigger::Timer(timer), .. } = &element.kind {
                // Validation evaluated and checked this text when the workflow was imported.
                let Ok(schedule) = timer.text_without_variables().and_then(|text| timer.schedule(&text, self.now)) else { continue };
                self.start_timers.push(StartTimer {
                    process_id: process_id.clone(),
                    version: deployed.version,
                    element: element.id.clone(),
                    due_at: schedule.due_ms,
                    repeat: schedule.repeat.map(|r| (r.remaining, r.every)),
                });
            }
        }
    }

    pub fn latest(&self, process_id: &str) -> Option<&Deployed> {
        self.deployments.get(process_id)?.last()
    }

    fn version(&self, process_id: &str, version: Option<u32>) -> Result<Deployed, WorldError> {
        let versions = self.deployments.get(process_id).ok_or_else(|| WorldError::NotFound(format!("process '{process_id}' is not deployed")))?;
        match version {
            None => Ok(versions.last().expect("a deployed process has a version").clone()),
            Some(v) => versions
                .iter()
                .find(|d| d.version == v)
                .cloned()
                .ok_or_else(|| WorldError::NotFound(format!("process '{process_id}' has no version {v}"))),
        }
    }

    /// The version of `process_id` a call activity binds to.
    fn bound_version(&self, process_id: &str, binding: &bpmn::Binding, caller_deployment: usize) -> Result<Deployed, String> {
        let versions = self.deployments.get(process_id).ok_or_else(|| format!("the called process '{process_id}' is not deployed"))?;
        let found = match binding {
            bpmn::Binding::Latest => versions.last(),
            bpmn::Binding::Deployment => versions.iter().find(|d| d.deployment == caller_deployment),
            bpmn::Binding::VersionTag(tag) => versions.iter().rev().find(|d| d.workflow.version_tag.as_ref() == Some(tag)),
        };
        found.cloned().ok_or_else(|| match binding {
            bpmn::Binding::Deployment => format!("the called process '{process_id}' was not deployed together with its caller"),
            bpmn::Binding::VersionTag(tag) => format!("no version of the called process '{process_id}' has the version tag '{tag}'"),
            bpmn::Binding::Latest => format!("the called process '{process_id}' is not deployed"),
        })
    }

    pub fn instance(&self, seq: usize) -> &Instance {
        &self.instances[seq]
    }

    pub fn seq_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Starts an instance; returns its seq.
    pub fn start(
        &mut self,
        process_id: &str,
        version: Option<u32>,
        variables: Variables,
        business_key: Option<String>,
    ) -> Result<usize, WorldError> {
        let deployed = self.version(process_id, version)?;
        let options = StartOptions { variables, business_key, ..StartOptions::default() };
        let seq = self.start_with(deployed, format!("i{}", self.instances.len() + 1), options)?;
        self.settle();
        Ok(seq)
    }

    fn start_with(&mut self, deployed: Deployed, id: String, options: StartOptions) -> Result<usize, WorldError> {
        let (state, effects) = engine::start(&deployed.workflow, deployed.version, id.clone(), options, self.now).map_err(WorldError::Rejected)?;
        let seq = self.instances.len();
        self.index.insert(id, seq);
        self.instances.push(Instance { seq, state, deployed });
        self.pending.extend(effects.into_iter().map(|e| (seq, e)));
        Ok(seq)
    }

    /// Applies an input to an instance and carries out everything that follows.
    pub fn step(&mut self, seq: usize, input: Input) -> Result<(), WorldError> {
        self.step_quietly(seq, input)?;
        self.settle();
        Ok(())
    }

    fn step_quietly(&mut self, seq: usize, input: Input) -> Result<(), WorldError> {
        let instance = &mut self.instances[seq];
        let effects = engine::step(&instance.deployed.workflow, &mut instance.state, input, self.now).map_err(WorldError::Rejected)?;
        self.pending.extend(effects.into_iter().map(|e| (seq, e)));
        Ok(())
    }

    /// Carries out pending effects until none are left.
    fn settle(&mut self) {
        while let Some((seq, effect)) = self.pending.pop_front() {
            match effect {
                Effect::History { entry } => self.history.entry(seq).or_default().push(entry),
                Effect::SubscriptionOpened { subscription } => {
                    if let SubscriptionKind::Message { name, correlation_key } = &subscription.kind {
                        self.correlate_buffered(seq, subscription.key, name, correlation_key);
                    }
                }
                Effect::StartChild { element_instance, instance_id, process_id, binding, variables } => {
                    let state = &self.instances[seq].state;
                    let parent = ParentRef { instance_id: state.id.clone(), element_instance, depth: state.depth };
                    let started = if self.instances.len() >= MAX_INSTANCES {
                        Err(format!("the world holds {MAX_INSTANCES} instances, the most a scenario may start"))
                    } else {
                        Ok(())
                    };
                    let started = started.and_then(|()| match self.bound_version(&process_id, &binding, self.instances[seq].deployed.deployment) {
                        Ok(deployed) => {
                            let options = StartOptions { variables, parent: Some(parent), ..StartOptions::default() };
                            self.start_with(deployed, instance_id, options).map(|_| ()).map_err(|e| e.to_string())
                        }
                        Err(message) => Err(message),
                    });
                    if let Err(message) = started {
                        let _ = self.step_quietly(seq, Input::ChildNotStarted { element_instance, message });
                    }
                }
                Effect::CancelChild { instance_id } => {
                    if let Some(child) = self.seq_of(&instance_id) {
                        let _ = self.step_quietly(child, Input::Cancel);
                    }
                }
                Effect::BroadcastSignal { name, variables } => self.deliver_signal(&name, &variables),
                Effect::InstanceEnded { status, variables, error_code } => {
                    self.start_buffered_for(seq);
                    let Some(parent) = self.instances[seq].state.parent.clone() else { continue };
                    let Some(parent_seq) = self.seq_of(&parent.instance_id) else { continue };
                    let element_instance = parent.element_instance;
                    let input = match status {
                        Status::Completed => Input::ChildCompleted { element_instance, variables },
                        Status::Failed => Input::ChildFailed { element_instance, code: error_code.unwrap_or_default() },
                        _ => Input::ChildCancelled { element_instance },
                    };
                    // The parent may have ended (it cancelled this child); then there is no one to tell.
                    let _ = self.step_quietly(parent_seq, input);
                }
                _ => {}
            }
        }
    }

    /// A message subscription just opened: hand it a buffered message, if one waits.
    fn correlate_buffered(&mut self, seq: usize, subscription: Key, name: &str, correlation_key: &str) {
        if self.instances[seq].state.status != Status::Running {
            return;
        }
        let process_id = self.instances[seq].state.process_id.clone();
        let now = self.now;
        let found = self.messages.iter_mut().find(|m| {
            m.expires_at > now && m.name == name && m.correlation_key == correlation_key && !m.correlated.contains(&process_id)
        });
        if let Some(message) = found {
            message.correlated.insert(process_id);
            let variables = message.variables.clone();
            let _ = self.step_quietly(seq, Input::MessageCorrelated { subscription, variables });
        }
    }

    /// Publishes a message: it reaches at most one waiting instance per process
    /// (the one that waited longest), starts instances through message start
    /// events, and is kept for its time to live for subscribers still to come.
    pub fn publish(
        &mut self,
        name: &str,
        correlation_key: &str,
        variables: Variables,
        ttl_ms: Millis,
        message_id: Option<String>,
    ) -> Result<(), WorldError> {
        let now = self.now;
        self.messages.retain(|m| m.expires_at > now);
        if let Some(id) = &message_id {
            if self.messages.iter().any(|m| m.message_id.as_ref() == Some(id)) {
                return Err(WorldError::DuplicateMessage(id.clone()));
            }
        }
        let mut correlated = BTreeSet::new();
        // Waiting subscriptions, oldest first.
        let mut candidates: Vec<(String, usize, Key)> = Vec::new();
        for instance in &self.instances {
            if instance.state.status != Status::Running {
                continue;
            }
            for subscription in instance.state.subscriptions.values() {
                if let SubscriptionKind::Message { name: n, correlation_key: k } = &subscription.kind {
                    if n == name && k == correlation_key {
                        candidates.push((instance.state.process_id.clone(), instance.seq, subscription.key));
                    }
                }
            }
        }
        for (process_id, seq, key) in candidates {
            if correlated.contains(&process_id) {
                continue;
            }
            if self.step_quietly(seq, Input::MessageCorrelated { subscription: key, variables: variables.clone() }).is_ok() {
                correlated.insert(process_id);
            }
        }
        // Message start events.
        let starts = self.start_events(|trigger| {
            matches!(trigger, Trigger::Message(message) if matches!(&message.name, bpmn::Property::Literal(n) if n == name))
        });
        for (deployed, element) in starts {
            if correlated.contains(&deployed.workflow.process_id) || self.start_blocked(&deployed.workflow.process_id, correlation_key) {
                continue;
            }
            correlated.insert(deployed.workflow.process_id.clone());
            self.start_by_message(deployed, element, variables.clone(), correlation_key)?;
        }
        if ttl_ms > 0 {
            self.messages.push(BufferedMessage {
                name: name.to_string(),
                correlation_key: correlation_key.to_string(),
                variables,
                expires_at: now + ttl_ms,
                message_id,
                correlated,
            });
        }
        self.settle();
        Ok(())
    }

    /// The start events of the latest version of every process whose trigger matches.
    fn start_events(&self, matches: impl Fn(&Trigger) -> bool) -> Vec<(Deployed, String)> {
        self.deployments
            .values()
            .filter_map(|versions| versions.last())
            .filter_map(|deployed| start_event_of(deployed, &matches).map(|element| (deployed.clone(), element)))
            .collect()
    }

    /// Whether an active instance of the process was started by a message with this correlation key.
    fn start_blocked(&self, process_id: &str, correlation_key: &str) -> bool {
        !correlation_key.is_empty()
            && self.message_started.iter().any(|(&seq, (p, k))| {
                p == process_id && k == correlation_key && !self.instances[seq].state.status.is_ended()
            })
    }

    fn start_by_message(&mut self, deployed: Deployed, element: String, variables: Variables, correlation_key: &str) -> Result<usize, WorldError> {
        let process_id = deployed.workflow.process_id.clone();
        let options = StartOptions { variables, start_event: Some(element), ..StartOptions::default() };
        let id = format!("i{}", self.instances.len() + 1);
        let seq = self.start_with(deployed, id, options)?;
        if !correlation_key.is_empty() {
            self.message_started.insert(seq, (process_id, correlation_key.to_string()));
        }
        Ok(seq)
    }

    /// An instance started by a message ended: a buffered message with the same key may start the next.
    fn start_buffered_for(&mut self, seq: usize) {
        let Some((process_id, correlation_key)) = self.message_started.remove(&seq) else { return };
        let Some(deployed) = self.latest(&process_id).cloned() else { return };
        let now = self.now;
        for index in 0..self.messages.len() {
            let message = &self.messages[index];
            if message.expires_at <= now || message.correlation_key != correlation_key || message.correlated.contains(&process_id) {
                continue;
            }
            let start = start_event_of(&deployed, |trigger| {
                matches!(trigger, Trigger::Message(m) if matches!(&m.name, bpmn::Property::Literal(n) if *n == message.name))
            });
            if let Some(element) = start {
                let variables = message.variables.clone();
                self.messages[index].correlated.insert(process_id.clone());
                let _ = self.start_by_message(deployed, element, variables, &correlation_key);
                return;
            }
        }
    }

    /// Broadcasts a signal to every waiting subscription and signal start event.
    pub fn broadcast(&mut self, name: &str, variables: Variables) -> Result<(), WorldError> {
        self.deliver_signal(name, &variables);
        self.settle();
        Ok(())
    }

    fn deliver_signal(&mut self, name: &str, variables: &Variables) {
        let mut targets = Vec::new();
        for instance in &self.instances {
            if instance.state.status != Status::Running {
                continue;
            }
            for subscription in instance.state.subscriptions.values() {
                if matches!(&subscription.kind, SubscriptionKind::Signal { name: n } if n == name) {
                    targets.push((instance.seq, subscription.key));
                }
            }
        }
        for (seq, key) in targets {
            // A subscription closed by an earlier delivery is simply skipped.
            let _ = self.step_quietly(seq, Input::SignalReceived { subscription: key, variables: variables.clone() });
        }
        let starts = self.start_events(|trigger| matches!(trigger, Trigger::Signal { name: bpmn::Property::Literal(n) } if n == name));
        for (deployed, element) in starts {
            let options = StartOptions { variables: variables.clone(), start_event: Some(element), ..StartOptions::default() };
            let id = format!("i{}", self.instances.len() + 1);
            let _ = self.start_with(deployed, id, options);
        }
    }

    /// Moves the clock forward; timers fall due in due-time order, each at its own time.
    pub fn advance(&mut self, by_ms: Millis) {
        let target = self.now + by_ms;
        loop {
            let instance_timer = self
                .instances
                .iter()
                .filter(|i| i.state.status == Status::Running)
                .flat_map(|i| i.state.timers.values().map(move |t| (t.due_at, i.seq, t.key)))
                .filter(|(due, _, _)| *due <= target)
                .min();
            let start_timer = self.start_timers.iter().enumerate().filter(|(_, t)| t.due_at <= target).min_by_key(|(i, t)| (t.due_at, *i)).map(|(i, t)| (t.due_at, i));
            match (instance_timer, start_timer) {
                (Some((due, _, _)), Some((start_due, index))) if start_due < due => self.fire_start_timer(index, start_due),
                (None, Some((start_due, index))) => self.fire_start_timer(index, start_due),
                (Some((due, seq, key)), _) => {
                    self.now = self.now.max(due);
                    let _ = self.step(seq, Input::TimerFired { timer: key });
                }
                (None, None) => break,
            }
        }
        self.now = target;
    }

    fn fire_start_timer(&mut self, index: usize, due: Millis) {
        self.now = self.now.max(due);
        let timer = self.start_timers[index].clone();
        match timer.repeat {
            Some((remaining, every)) if remaining != Some(0) => match bpmn::timer::next_due(&every, due) {
                Ok(next) => {
                    self.start_timers[index].due_at = next;
                    self.start_timers[index].repeat = Some((remaining.map(|n| n - 1), every));
                }
                Err(_) => {
                    self.start_timers.remove(index);
                }
            },
            _ => {
                self.start_timers.remove(index);
            }
        }
        if let Ok(deployed) = self.version(&timer.process_id, Some(timer.version)) {
            let options = StartOptions { start_event: Some(timer.element), ..StartOptions::default() };
            let id = format!("i{}", self.instances.len() + 1);
            let _ = self.start_with(deployed, id, options);
            self.settle();
        }
    }

    /// The instance and its descendants (children of call activities), in start order.
    pub fn family(&self, seq: usize) -> Vec<usize> {
        let mut members = vec![seq];
        let mut index = 0;
        while index < members.len() {
            let id = &self.instances[members[index]].state.id;
            for instance in &self.instances {
                if instance.state.parent.as_ref().is_some_and(|p| &p.instance_id == id) {
                    members.push(instance.seq);
                }
            }
            index += 1;
        }
        members.sort();
        members
    }

    /// Pending timers of all running instances, as (due, instance, timer) in due order.
    pub fn due_timers(&self) -> Vec<(Millis, usize, Key)> {
        let mut timers: Vec<_> = self
            .instances
            .iter()
            .flat_map(|i| i.state.timers.values().map(move |t| (t.due_at, i.seq, t.key)))
            .collect();
        timers.sort();
        timers
    }
}

/// The id of a start event of the process (not of a subprocess) whose trigger matches.
fn start_event_of(deployed: &Deployed, matches: impl Fn(&Trigger) -> bool) -> Option<String> {
    let workflow = &deployed.workflow;
    workflow.elements[Workflow::ROOT].children.iter().find_map(|&child| match &workflow.elements[child].kind {
        Kind::StartEvent { trigger, .. } if matches(trigger) => Some(workflow.elements[child].id.clone()),
        _ => None,
    })
}
