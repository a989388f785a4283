//! What an instance waits for, read from its state: one [`Wait`] per waiting
//! token, with the job, user task, timer, message, signal or child it waits
//! on, and the catch events armed beside it (boundary deadlines and
//! reminders). A read, never a step: it costs a pass over the state.

use std::collections::BTreeMap;

use bpmn::{GatewayKind, Kind, Workflow};
use serde::Serialize;

use crate::state::*;

/// A token that waits, and for what.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Wait {
    pub element_instance: Key,
    pub element: String,
    pub element_name: Option<String>,
    /// `job`, `user_task`, `timer`, `message`, `signal`, `call` or `gateway`.
    pub kind: &'static str,
    /// When the element instance began to wait.
    pub since: Millis,
    pub loop_counter: u32,
    pub job: Option<Job>,
    pub task: Option<UserTask>,
    /// The catch the token itself waits on (a timer, message or signal catch event, a receive task).
    pub event: Option<ArmedEvent>,
    /// The called instance.
    pub child: Option<String>,
    /// For an event-based gateway: the events it waits on, the first of which wins.
    pub events: Vec<ArmedEvent>,
    /// Catch events attached to the waiting activity (deadlines, reminders, messages).
    pub boundary: Vec<ArmedEvent>,
}

/// A catch event that is armed: a timer with its next due time, or a
/// message or signal subscription.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmedEvent {
    pub element: String,
    pub element_name: Option<String>,
    /// `timer`, `message`, `signal` or `condition`.
    pub kind: &'static str,
    pub key: Key,
    pub due_at: Option<Millis>,
    /// For a repeating timer: firings left after the next (`None` with `repeats`: forever).
    pub repeats: bool,
    pub repetitions_left: Option<u32>,
    pub message: Option<String>,
    pub correlation_key: Option<String>,
    pub signal: Option<String>,
    /// For a conditional event: the condition it waits to be true.
    pub condition: Option<String>,
}

/// Every waiting token of the instance, in element instance order. Catch
/// events that belong to a scope rather than to a waiting element (the
/// start events of event subprocesses) are waits of their own, with the
/// kind of their trigger.
pub fn waits(workflow: &Workflow, state: &InstanceState) -> Vec<Wait> {
    let name = |element: usize| workflow.elements.get(element).and_then(|e| e.name.clone());
    let mut armed: BTreeMap<Key, Vec<(usize, ArmedEvent)>> = BTreeMap::new();
    for timer in state.timers.values() {
        let event = ArmedEvent {
            element: timer.element_id.clone(),
            element_name: name(timer.element),
            kind: "timer",
            key: timer.key,
            due_at: Some(timer.due_at),
            repeats: timer.repeat.is_some(),
            repetitions_left: timer.repeat.as_ref().and_then(|r| r.remaining),
            message: None,
            correlation_key: None,
            signal: None,
            condition: None,
        };
        armed.entry(timer.element_instance).or_default().push((timer.element, event));
    }
    for subscription in state.subscriptions.values() {
        let (kind, message, correlation_key, signal) = match &subscription.kind {
            SubscriptionKind::Message { name, correlation_key } => ("message", Some(name.clone()), Some(correlation_key.clone()), None),
            SubscriptionKind::Signal { name } => ("signal", None, None, Some(name.clone())),
        };
        let event = ArmedEvent {
            element: subscription.element_id.clone(),
            element_name: name(subscription.element),
            kind,
            key: subscription.key,
            due_at: None,
            repeats: false,
            repetitions_left: None,
            message,
            correlation_key,
            signal,
            condition: None,
        };
        armed.entry(subscription.element_instance).or_default().push((subscription.element, event));
    }
    for wait in state.conditions.values() {
        let condition = match workflow.elements.get(wait.element).map(|e| &e.kind) {
            Some(
                Kind::Boundary { trigger: bpmn::Trigger::Conditional(c), .. }
                | Kind::StartEvent { trigger: bpmn::Trigger::Conditional(c), .. }
                | Kind::IntermediateCatch(bpmn::Trigger::Conditional(c)),
            ) => Some(c.condition.source().to_string()),
            _ => None,
        };
        let event = ArmedEvent {
            element: wait.element_id.clone(),
            element_name: name(wait.element),
            kind: "condition",
            key: wait.key,
            due_at: None,
            repeats: false,
            repetitions_left: None,
            message: None,
            correlation_key: None,
            signal: None,
            condition,
        };
        armed.entry(wait.element_instance).or_default().push((wait.element, event));
    }
    let jobs: BTreeMap<Key, &Job> = state.jobs.values().map(|j| (j.element_instance, j)).collect();
    let tasks: BTreeMap<Key, &UserTask> = state.user_tasks.values().map(|t| (t.element_instance, t)).collect();

    let mut waits = Vec::new();
    for ei in state.element_instances.values() {
        let Some(element) = workflow.elements.get(ei.element) else { continue };
        let mut own = armed.remove(&ei.key).unwrap_or_default();
        let is_scope = matches!(element.kind, Kind::Process | Kind::SubProcess { .. }) || ei.multi_instance.is_some();
        if is_scope {
            // What a scope itself has armed: the start events of its event subprocesses.
            for (_, event) in own {
                let mut scoped = wait(ei, event.element_name.clone(), event.kind);
                scoped.element.clone_from(&event.element);
                scoped.event = Some(event);
                waits.push(scoped);
            }
            continue;
        }
        let kind = match &element.kind {
            Kind::Gateway(GatewayKind::EventBased) => "gateway",
            Kind::CallActivity(_) if ei.child_instance.is_some() => "call",
            _ if jobs.contains_key(&ei.key) => "job",
            _ if tasks.contains_key(&ei.key) => "user_task",
            Kind::IntermediateCatch(_) | Kind::Task(bpmn::TaskKind::Receive(_)) => {
                match own.iter().find(|(e, _)| *e == ei.element) {
                    Some((_, event)) => event.kind,
                    None => continue,
                }
            }
            _ => continue,
        };
        let mut wait = Wait {
            job: jobs.get(&ei.key).map(|j| Job::clone(j)),
            task: tasks.get(&ei.key).map(|t| UserTask::clone(t)),
            child: ei.child_instance.clone(),
            ..self::wait(ei, element.name.clone(), kind)
        };
        if kind == "gateway" {
            wait.events = own.drain(..).map(|(_, event)| event).collect();
        } else {
            if let Some(index) = own.iter().position(|(e, _)| *e == ei.element) {
                wait.event = Some(own.remove(index).1);
            }
            wait.boundary = own.into_iter().map(|(_, event)| event).collect();
        }
        waits.push(wait);
    }
    waits
}

fn wait(ei: &ElementInstance, element_name: Option<String>, kind: &'static str) -> Wait {
    Wait {
        element_instance: ei.key,
        element: ei.element_id.clone(),
        element_name,
        kind,
        since: ei.started_at,
        loop_counter: ei.loop_counter,
        job: None,
        task: None,
        event: None,
        child: None,
        events: Vec::new(),
        boundary: Vec::new(),
    }
}
