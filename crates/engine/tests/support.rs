//! Helpers: build models, drive an instance, render what happened as text.

use bpmn::Workflow;
use engine::{Effect, HistoryEvent, Input, InstanceState, Millis, StartOptions, Variables};

pub const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Wraps process content in a definitions element with the usual namespaces.
pub fn workflow(body: &str) -> Workflow {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
<error id="E1" errorCode="E1"/>
<escalation id="X1" escalationCode="X1"/>
<signal id="S1" name="S1"/>
<message id="M1" name="M1"><extensionElements><zeebe:subscription correlationKey="=key"/></extensionElements></message>
<process id="p" isExecutable="true">{body}</process>
</definitions>"#
    );
    let import = bpmn::import(&xml);
    let diagnostics = import.diagnostics.clone();
    let mut workflows = import.into_workflows().unwrap_or_else(|_| panic!("the fixture has errors: {diagnostics:#?}"));
    workflows.remove(0)
}

pub fn vars(json: serde_json::Value) -> Variables {
    json.as_object().cloned().unwrap_or_default()
}

/// One line per effect, in a form that reads well in a snapshot.
pub fn render_effect(effect: &Effect) -> String {
    match effect {
        Effect::History { entry } => {
            let sign = match entry.event {
                HistoryEvent::Activated => "+",
                HistoryEvent::Completed => "✓",
                HistoryEvent::Terminated => "✗",
                other => return format!("· {} {}", other.as_str(), entry.element_id),
            };
            let looped = if entry.loop_counter > 1 { format!(" #{}", entry.loop_counter) } else { String::new() };
            format!("{sign} {} ({}){looped}", entry.element_id, entry.element_type)
        }
        Effect::JobCreated { job } => format!("job+ {} {} type={} retries={}", job.key, job.element_id, job.job_type, job.retries),
        Effect::JobUpdated { job } => format!("job~ {} retries={} state={:?}", job.key, job.retries, job.state),
        Effect::JobRemoved { key } => format!("job- {key}"),
        Effect::TimerScheduled { timer } => format!("timer+ {} {} due=+{}ms", timer.key, timer.element_id, timer.due_at - T0),
        Effect::TimerRemoved { key } => format!("timer- {key}"),
        Effect::UserTaskCreated { task } => format!("task+ {} {} assignee={:?} groups={:?}", task.key, task.element_id, task.assignee, task.candidate_groups),
        Effect::UserTaskUpdated { task } => format!("task~ {} assignee={:?}", task.key, task.assignee),
        Effect::UserTaskRemoved { key, completed } => format!("task- {key}{}", if *completed { " completed" } else { "" }),
        Effect::SubscriptionOpened { subscription } => format!("sub+ {} {} {:?}", subscription.key, subscription.element_id, subscription.kind),
        Effect::SubscriptionClosed { key } => format!("sub- {key}"),
        Effect::IncidentRaised { incident } => format!("incident+ {} {} {}: {}", incident.key, incident.element_id, incident.kind.name(), incident.message),
        Effect::IncidentResolved { key } => format!("incident- {key}"),
        Effect::StartChild { instance_id, process_id, .. } => format!("start-child {instance_id} {process_id}"),
        Effect::CancelChild { instance_id } => format!("cancel-child {instance_id}"),
        Effect::EvaluateDecision { decision_id, variables, .. } => format!("decide {decision_id} with {}", serde_json::Value::Object(variables.clone())),
        Effect::BroadcastSignal { name, .. } => format!("signal {name}"),
        Effect::InstanceEnded { status, error_code, .. } => format!("ended {} {}", status.as_str(), error_code.as_deref().unwrap_or("")),
    }
}

/// Drives one instance and records a trace.
pub struct Driver<'w> {
    pub workflow: &'w Workflow,
    pub state: InstanceState,
    pub now: Millis,
    pub trace: String,
}

impl<'w> Driver<'w> {
    pub fn start(workflow: &'w Workflow, variables: serde_json::Value) -> Driver<'w> {
        let options = StartOptions { variables: vars(variables), ..StartOptions::default() };
        let (state, effects) = engine::start(workflow, 1, "i1".into(), options, T0).expect("the instance starts");
        let mut driver = Driver { workflow, state, now: T0, trace: String::new() };
        driver.record("start", &effects);
        driver
    }

    fn record(&mut self, title: &str, effects: &[Effect]) {
        self.trace.push_str(&format!("> {title}\n"));
        for effect in effects {
            self.trace.push_str(&format!("  {}\n", render_effect(effect)));
        }
        let waiting = engine::waiting(self.workflow, &self.state);
        self.trace.push_str(&format!(
            "  = {} waiting={:?} vars={}\n",
            self.state.status.as_str(),
            waiting,
            serde_json::Value::Object(self.state.variables.clone())
        ));
    }

    pub fn input(&mut self, title: &str, input: Input) {
        match engine::step(self.workflow, &mut self.state, input, self.now) {
            Ok(effects) => self.record(title, &effects),
            Err(rejection) => self.trace.push_str(&format!("> {title}\n  rejected {rejection}\n")),
        }
    }

    pub fn job(&self, element: &str) -> u64 {
        self.state.jobs.values().find(|j| j.element_id == element).unwrap_or_else(|| panic!("no job of {element}")).key
    }

    pub fn complete(&mut self, element: &str, variables: serde_json::Value) {
        let job = self.job(element);
        self.input(&format!("complete {element}"), Input::CompleteJob { job, variables: vars(variables), result: None });
    }

    pub fn correlate(&mut self, element: &str, variables: serde_json::Value) {
        let subscription = self.state.subscriptions.values().find(|s| s.element_id == element).expect("a subscription").key;
        let input = match &self.state.subscriptions[&subscription].kind {
            engine::SubscriptionKind::Message { .. } => Input::MessageCorrelated { subscription, variables: vars(variables) },
            engine::SubscriptionKind::Signal { .. } => Input::SignalReceived { subscription, variables: vars(variables) },
        };
        self.input(&format!("correlate {element}"), input);
    }

    pub fn fire_timer(&mut self, element: &str) {
        let timer = self.state.timers.values().find(|t| t.element_id == element).expect("a timer").clone();
        self.now = self.now.max(timer.due_at);
        self.input(&format!("fire {element}"), Input::TimerFired { timer: timer.key });
    }
}

pub fn task(id: &str) -> String {
    format!(r#"<serviceTask id="{id}"><extensionElements><zeebe:taskDefinition type="{id}"/></extensionElements></serviceTask>"#)
}

pub fn flow(id: &str, from: &str, to: &str) -> String {
    format!(r#"<sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"/>"#)
}

pub fn conditional(id: &str, from: &str, to: &str, condition: &str) -> String {
    format!(r#"<sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"><conditionExpression>{condition}</conditionExpression></sequenceFlow>"#)
}
