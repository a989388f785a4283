//! Runs scenario files against a fresh [`World`] per scenario.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::{HistoryEvent, Input, Key, Millis, Status, SubscriptionKind};
use serde_json::Value as Json;

use crate::format::*;
use crate::world::{World, WorldError};

/// The default virtual start time (FORMAT.md).
pub const DEFAULT_CLOCK: &str = "2026-01-01T00:00:00Z";

/// The result of one scenario.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub file: String,
    pub name: String,
    pub passed: bool,
    /// 1-based step that failed; absent when the file or its deployment failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Outcome {
    /// The report line of FORMAT.md.
    pub fn line(&self) -> String {
        if self.passed {
            return format!("ok   {} :: {}", self.file, self.name);
        }
        let message = self.message.as_deref().unwrap_or("failed");
        match (self.step, &self.action) {
            (Some(step), Some(action)) => format!("FAIL {} :: {}: step {step} ({action}): {message}", self.file, self.name),
            (Some(step), None) => format!("FAIL {} :: {}: step {step}: {message}", self.file, self.name),
            _ => format!("FAIL {} :: {}: {message}", self.file, self.name),
        }
    }
}

/// Every `*.yaml` file under the given files and folders, sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut stack = vec![path.clone()];
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
                for entry in entries {
                    let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
                    let entry_path = entry.path();
                    if entry_path.is_dir() {
                        stack.push(entry_path);
                    } else if entry_path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                        files.push(entry_path);
                    }
                }
            }
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    files.sort();
    Ok(files)
}

/// How scenarios run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// An error end event nobody catches raises an incident (Camunda 8's way) instead of failing the instance.
    pub uncaught_errors_incident: bool,
}

/// Runs every scenario of one file.
pub fn run_file(path: &Path) -> Vec<Outcome> {
    run_file_with(path, RunOptions::default())
}

/// Runs every scenario of one file with `options`.
pub fn run_file_with(path: &Path, options: RunOptions) -> Vec<Outcome> {
    let display = path.display().to_string();
    let file_failure = |message: String| {
        vec![Outcome { file: display.clone(), name: "(file)".into(), passed: false, step: None, action: None, message: Some(message) }]
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => return file_failure(format!("cannot read the file: {error}")),
    };
    let file: File = match serde_norway::from_str(&text) {
        Ok(file) => file,
        Err(error) => return file_failure(format!("{display} is not a valid scenario file: {error}")),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let scenarios = match file.scenarios {
        Some(scenarios) => {
            if file.name.is_some() || file.steps.is_some() || file.deploy_error.is_some() {
                return file_failure(format!("{display}: a file with 'scenarios:' takes only 'deploy:' and 'clock:' beside it"));
            }
            let mut names = std::collections::BTreeSet::new();
            for scenario in &scenarios {
                if !names.insert(scenario.name.clone()) {
                    return file_failure(format!("{display}: the scenario name '{}' is used twice", scenario.name));
                }
            }
            scenarios
                .into_iter()
                .map(|s| Scenario {
                    deploy: s.deploy.or_else(|| file.deploy.clone()),
                    clock: s.clock.or_else(|| file.clock.clone()),
                    ..s
                })
                .collect()
        }
        None => match file.name {
            Some(name) => vec![Scenario { name, deploy: file.deploy, clock: file.clock, steps: file.steps, deploy_error: file.deploy_error }],
            None => return file_failure(format!("{display}: a scenario needs a 'name:' (or a list under 'scenarios:')")),
        },
    };
    scenarios.into_iter().map(|scenario| run_scenario(&display, base, scenario, options)).collect()
}

fn run_scenario(file: &str, base: &Path, scenario: Scenario, options: RunOptions) -> Outcome {
    let mut outcome = Outcome { file: file.to_string(), name: scenario.name.clone(), passed: false, step: None, action: None, message: None };
    // A panic anywhere (a defect) fails this scenario alone; the run goes on.
    let executed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(base, scenario, options)))
        .unwrap_or_else(|payload| Err(Failure::setup(format!("Baton panicked: {}", runtime::panic_message(payload.as_ref())))));
    match executed {
        Ok(()) => outcome.passed = true,
        Err(failure) => {
            outcome.step = failure.step;
            outcome.action = failure.action;
            outcome.message = Some(failure.message);
        }
    }
    outcome
}

struct Failure {
    step: Option<usize>,
    action: Option<String>,
    message: String,
}

impl Failure {
    fn setup(message: impl Into<String>) -> Failure {
        Failure { step: None, action: None, message: message.into() }
    }
}

fn execute(base: &Path, scenario: Scenario, options: RunOptions) -> Result<(), Failure> {
    let clock = scenario.clock.as_deref().unwrap_or(DEFAULT_CLOCK);
    let start = feel::parse_timestamp(clock).ok_or_else(|| Failure::setup(format!("clock '{clock}' is not an ISO 8601 date and time")))?;
    let mut world = World::new(start.as_millisecond());
    world.set_uncaught_errors_incident(options.uncaught_errors_incident);
    let mut deploy_refusal = None;
    for spec in scenario.deploy.unwrap_or_default() {
        let (name, xml) = match spec {
            DeploySpec::Path(relative) => {
                let path = base.join(&relative);
                let xml = std::fs::read_to_string(&path).map_err(|e| Failure::setup(format!("cannot read {}: {e}", path.display())))?;
                (relative, xml)
            }
            DeploySpec::Inline(model) => (model.name, model.xml),
        };
        if let Err(error) = world.deploy_file(&name, &xml) {
            deploy_refusal = Some((name, error));
            break;
        }
    }
    if let Some(expected) = scenario.deploy_error {
        let Some((name, error)) = deploy_refusal else {
            return Err(Failure::setup("the deployment was accepted, but the scenario expects it to be refused"));
        };
        let WorldError::Deploy(diagnostics) = error else { return Err(Failure::setup(format!("{name}: {error}"))) };
        let errors: Vec<_> = diagnostics.iter().map(|(_, d)| d).filter(|d| d.severity == bpmn::Severity::Error).collect();
        if errors.iter().any(|d| d.message.is_empty()) || errors.is_empty() {
            return Err(Failure::setup(format!("{name}: refused without a clear message")));
        }
        if let Some(element) = &expected.element {
            let named = errors.iter().any(|d| d.element.as_ref() == Some(element) && expected.code.as_ref().is_none_or(|c| c == &d.code));
            if !named {
                let listed: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
                return Err(Failure::setup(format!("no diagnostic names '{element}'; got: {}", listed.join("; "))));
            }
        } else if let Some(code) = &expected.code {
            if !errors.iter().any(|d| &d.code == code) {
                return Err(Failure::setup(format!("no diagnostic has code '{code}'")));
            }
        }
        return Ok(());
    }
    if let Some((name, error)) = deploy_refusal {
        return Err(Failure::setup(format!("{name}: {error}")));
    }
    let mut runner = Runner { world, current: None, aliases: BTreeMap::new() };
    for (index, step) in scenario.steps.unwrap_or_default().into_iter().enumerate() {
        let number = index + 1;
        runner.step(step).map_err(|(action, message)| Failure { step: Some(number), action: Some(action), message })?;
    }
    Ok(())
}

struct Runner {
    world: World,
    current: Option<usize>,
    aliases: BTreeMap<String, usize>,
}

/// An action of a step, ready to run.
type Action = Box<dyn FnOnce(&mut Runner) -> Result<(), Refusal>>;

/// A step failure: the action's name and what went wrong.
type StepResult = Result<(), (String, String)>;

fn duration_ms(text: &str, now: Millis) -> Result<Millis, String> {
    let span = bpmn::timer::parse_duration(text)?;
    Ok(bpmn::timer::add(now, span)? - now)
}

impl Runner {
    fn step(&mut self, step: Step) -> StepResult {
        let Step {
            start,
            complete_job,
            fail_job,
            throw_error,
            complete_task,
            claim_task,
            update_task,
            publish_message,
            broadcast_signal,
            evaluate_conditionals,
            advance_time,
            set_variables,
            cancel,
            suspend,
            resume,
            update_retries,
            resolve_incident,
            modify,
            expect,
            expect_rejection,
            code,
        } = step;
        let mut actions: Vec<(&str, Action)> = Vec::new();
        if let Some(a) = start {
            actions.push(("start", Box::new(move |r| r.start(a))));
        }
        if let Some(a) = complete_job {
            actions.push(("complete_job", Box::new(move |r| {
                let (seq, job) = r.find_job(&a, a.element.as_deref(), a.job_type.as_deref())?;
                r.apply(seq, Input::CompleteJob { job, variables: a.variables, result: a.result })
            })));
        }
        if let Some(a) = fail_job {
            actions.push(("fail_job", Box::new(move |r| {
                let (seq, job) = r.find_job(&a, a.element.as_deref(), a.job_type.as_deref())?;
                let backoff_ms = match &a.backoff {
                    Some(text) => duration_ms(text, r.world.now).map_err(Refusal::invalid)?,
                    None => 0,
                };
                r.apply(seq, Input::FailJob { job, retries: a.retries, message: a.message, backoff_ms, variables: Default::default() })
            })));
        }
        if let Some(a) = throw_error {
            actions.push(("throw_error", Box::new(move |r| {
                let (seq, job) = r.find_job(&a, a.element.as_deref(), a.job_type.as_deref())?;
                r.apply(seq, Input::ThrowError { job, code: a.code, message: a.message, variables: a.variables })
            })));
        }
        if let Some(a) = complete_task {
            actions.push(("complete_task", Box::new(move |r| {
                let (seq, task) = r.find_task(&a, &a.element)?;
                r.apply(seq, Input::CompleteUserTask { task, variables: a.variables })
            })));
        }
        if let Some(a) = claim_task {
            actions.push(("claim_task", Box::new(move |r| {
                let (seq, task) = r.find_task(&a, &a.element)?;
                r.apply(seq, Input::AssignUserTask { task, assignee: Some(a.assignee), claim: true })
            })));
        }
        if let Some(a) = update_task {
            actions.push(("update_task", Box::new(move |r| {
                let (seq, task) = r.find_task(&a, &a.element)?;
                r.apply(seq, Input::UpdateUserTask { task, changes: a.changes })
            })));
        }
        if let Some(a) = publish_message {
            actions.push(("publish_message", Box::new(move |r| {
                let correlation_key = match a.correlation_key {
                    None | Some(Json::Null) => String::new(),
                    Some(Json::String(s)) => s,
                    Some(other) => other.to_string(),
                };
                let ttl_ms = match &a.ttl {
                    Some(text) => duration_ms(text, r.world.now).map_err(Refusal::invalid)?,
                    None => 0,
                };
                r.world.publish(&a.name, &correlation_key, a.variables, ttl_ms, a.message_id).map_err(Refusal::from)
            })));
        }
        if let Some(a) = evaluate_conditionals {
            actions.push(("evaluate_conditionals", Box::new(move |r| r.world.evaluate_conditionals(a.workflow.as_deref(), a.variables).map(|_| ()).map_err(Refusal::from))));
        }
        if let Some(a) = broadcast_signal {
            actions.push(("broadcast_signal", Box::new(move |r| r.world.broadcast(&a.name, a.variables).map_err(Refusal::from))));
        }
        if let Some(text) = advance_time {
            actions.push(("advance_time", Box::new(move |r| {
                let by = duration_ms(&text, r.world.now).map_err(Refusal::invalid)?;
                r.world.advance(by).map_err(Refusal::from)
            })));
        }
        if let Some(a) = set_variables {
            actions.push(("set_variables", Box::new(move |r| {
                let seq = r.instance(&a.target())?;
                r.apply(seq, Input::SetVariables { element_instance: None, variables: a.variables })
            })));
        }
        for (name, target, input) in [("cancel", cancel, Input::Cancel { reason: None }), ("suspend", suspend, Input::Suspend), ("resume", resume, Input::Resume)] {
            if let Some(target) = target {
                actions.push((name, Box::new(move |r| {
                    let seq = r.instance(&target)?;
                    r.apply(seq, input)
                })));
            }
        }
        if let Some(a) = update_retries {
            actions.push(("update_retries", Box::new(move |r| {
                let (seq, job) = r.find_job(&a, a.element.as_deref(), a.job_type.as_deref())?;
                r.apply(seq, Input::UpdateRetries { job, retries: a.retries })
            })));
        }
        if let Some(a) = resolve_incident {
            actions.push(("resolve_incident", Box::new(move |r| {
                let (seq, incident) = r.find_incident(&a, &a.element)?;
                r.apply(seq, Input::ResolveIncident { incident })
            })));
        }
        if let Some(a) = modify {
            actions.push(("modify", Box::new(move |r| {
                let seq = r.instance(&a.target())?;
                r.apply(seq, Input::Modify { activate: a.activate, terminate: a.terminate })
            })));
        }
        if let Some(expect) = expect {
            if !actions.is_empty() || expect_rejection.is_some() || code.is_some() {
                return Err(("expect".into(), "an 'expect' step takes no action, expect_rejection or code beside it".into()));
            }
            return self.expect(expect).map_err(|message| ("expect".to_string(), message));
        }
        if actions.len() != 1 {
            let names: Vec<&str> = actions.iter().map(|(n, _)| *n).collect();
            return Err(("step".into(), format!("a step needs exactly one action or 'expect'; found {names:?}")));
        }
        if code.is_some() && expect_rejection != Some(true) {
            return Err(("step".into(), "'code' goes with 'expect_rejection: true'".into()));
        }
        let (name, action) = actions.pop().expect("one action");
        let result = action(self);
        match (result, expect_rejection == Some(true)) {
            (Ok(()), false) => Ok(()),
            (Ok(()), true) => Err((name.into(), "expected the action to be refused, but it was accepted".into())),
            (Err(refusal), false) => Err((name.into(), refusal.message)),
            // A fault inside Baton is a defect, never the refusal a scenario expects.
            (Err(refusal), true) if refusal.code == "engine-fault" => Err((name.into(), refusal.message)),
            (Err(refusal), true) => match code {
                Some(expected) if expected != refusal.code => {
                    Err((name.into(), format!("refused with code '{}', expected '{expected}': {}", refusal.code, refusal.message)))
                }
                _ => Ok(()),
            },
        }
    }

    fn start(&mut self, action: Start) -> Result<(), Refusal> {
        let seq = self.world.start(&action.process, action.version, action.variables, action.business_key).map_err(Refusal::from)?;
        self.current = Some(seq);
        if let Some(alias) = action.alias {
            self.aliases.insert(alias, seq);
        }
        Ok(())
    }

    fn apply(&mut self, seq: usize, input: Input) -> Result<(), Refusal> {
        self.world.step(seq, input).map_err(Refusal::from)
    }

    fn instance(&self, target: &Target) -> Result<usize, Refusal> {
        if let Some(alias) = &target.instance {
            return self.aliases.get(alias).copied().ok_or_else(|| Refusal::invalid(format!("no instance was started 'as: {alias}'")));
        }
        if let Some(process) = &target.instance_of {
            return self
                .world
                .instances()
                .iter()
                .find(|i| &i.state.process_id == process)
                .map(|i| i.seq)
                .ok_or_else(|| Refusal::invalid(format!("no instance of process '{process}' was started")));
        }
        self.current.ok_or_else(|| Refusal::invalid("no instance has been started yet"))
    }

    /// The oldest open job that matches in the instance and its descendants;
    /// failing that, any job that matches, so the engine says why it refuses.
    fn find_job(&self, target: &dyn Targeted, element: Option<&str>, job_type: Option<&str>) -> Result<(usize, Key), Refusal> {
        let seq = self.instance(&target.target())?;
        let now = self.world.now;
        let matches = |j: &&engine::Job| element.is_none_or(|e| j.element_id == e) && job_type.is_none_or(|t| j.job_type == t);
        let family = self.world.family(seq);
        let oldest = |open: bool| {
            family
                .iter()
                .flat_map(|instance| {
                    let state = &instance.state;
                    let jobs: Vec<&engine::Job> = if open { state.open_jobs(now).collect() } else { state.jobs.values().collect() };
                    jobs.into_iter().filter(matches).map(move |j| (j.created_at, instance.seq, j.key))
                })
                .min()
        };
        match oldest(true).or_else(|| oldest(false)) {
            Some((_, s, key)) => Ok((s, key)),
            None => Err(Refusal { code: "job-not-found".into(), message: format!("no job {} is open", describe(element, job_type)) }),
        }
    }

    fn find_task(&self, target: &dyn Targeted, element: &str) -> Result<(usize, Key), Refusal> {
        let seq = self.instance(&target.target())?;
        self.world.family(seq)
            .iter()
            .flat_map(|i| i.state.user_tasks.values().filter(|t| t.element_id == element).map(move |t| (t.created_at, i.seq, t.key)))
            .min()
            .map(|(_, s, key)| (s, key))
            .ok_or_else(|| Refusal { code: "task-not-found".into(), message: format!("no user task of '{element}' is open") })
    }

    fn find_incident(&self, target: &dyn Targeted, element: &str) -> Result<(usize, Key), Refusal> {
        let seq = self.instance(&target.target())?;
        self.world.family(seq)
            .iter()
            .flat_map(|i| i.state.incidents.values().filter(|x| x.element_id == element).map(move |x| (x.created_at, i.seq, x.key)))
            .min()
            .map(|(_, s, key)| (s, key))
            .ok_or_else(|| Refusal { code: "incident-not-found".into(), message: format!("no incident is open on '{element}'") })
    }

    fn expect(&self, expect: Expect) -> Result<(), String> {
        if let Some(expected) = &expect.instances {
            for entry in expected {
                let count = self
                    .world
                    .instances()
                    .iter()
                    .filter(|i| i.state.process_id == entry.process && i.state.status.as_str() == entry.status)
                    .count();
                if count != entry.count {
                    return Err(format!("instances: expected {} {} instance(s) of '{}', found {count}", entry.count, entry.status, entry.process));
                }
            }
        }
        let only_instances = expect.instances.is_some()
            && expect.status.is_none()
            && expect.waiting.is_none()
            && expect.completed.is_none()
            && expect.completed_include.is_none()
            && expect.not_completed.is_none()
            && expect.terminated.is_none()
            && expect.terminated_include.is_none()
            && expect.jobs.is_none()
            && expect.tasks.is_none()
            && expect.variables.is_none()
            && expect.variables_absent.is_none()
            && expect.incidents.is_none()
            && expect.timers.is_none()
            && expect.subscriptions.is_none()
            && expect.error_code.is_none();
        if only_instances && expect.instance.is_none() && expect.instance_of.is_none() {
            return Ok(());
        }
        let seq = self.instance(&expect.target()).map_err(|r| r.message)?;
        let instance = self.world.instance(seq);
        let state = &instance.state;
        let workflow = &*instance.deployed.workflow().map_err(|e| e.to_string())?;
        if let Some(status) = &expect.status {
            if state.status.as_str() != status {
                let mut message = format!("status: expected {status}, got {}", state.status.as_str());
                if !state.incidents.is_empty() {
                    let incidents: Vec<String> = state.incidents.values().map(|i| format!("{}: {}", i.element_id, i.message)).collect();
                    message.push_str(&format!(" (open incidents: {})", incidents.join("; ")));
                }
                return Err(message);
            }
        }
        if let Some(expected) = &expect.waiting {
            same_multiset("waiting", expected, &engine::waiting(workflow, state))?;
        }
        let history = self.world.history(seq);
        let ended = |event: HistoryEvent| -> Vec<String> {
            history
                .iter()
                // Containers that are not elements of their own: the process, multi-instance bodies, ad-hoc inner instances.
                .filter(|h| h.event == event && !matches!(h.element_type.as_str(), "process" | "multiInstanceBody" | "adHocSubProcessInnerInstance"))
                .map(|h| h.element_id.clone())
                .collect()
        };
        let completed = ended(HistoryEvent::Completed);
        let terminated = ended(HistoryEvent::Terminated);
        if let Some(expected) = &expect.completed {
            same_multiset("completed", expected, &completed)?;
        }
        if let Some(expected) = &expect.completed_include {
            includes("completed_include", expected, &completed)?;
        }
        if let Some(expected) = &expect.not_completed {
            if let Some(found) = expected.iter().find(|e| completed.contains(e)) {
                return Err(format!("not_completed: '{found}' completed (completed: [{}])", completed.join(", ")));
            }
        }
        if let Some(expected) = &expect.terminated {
            same_multiset("terminated", expected, &terminated)?;
        }
        if let Some(expected) = &expect.terminated_include {
            includes("terminated_include", expected, &terminated)?;
        }
        let family = self.world.family(seq);
        let now = self.world.now;
        if let Some(expected) = &expect.jobs {
            let actual: Vec<ExpectJob> = family
                .iter()
                .flat_map(|i| i.state.open_jobs(now))
                .map(|j| ExpectJob { element: j.element_id.clone(), job_type: Some(j.job_type.clone()), retries: Some(j.retries) })
                .collect();
            match_items("jobs", expected, &actual, |e, a| {
                e.element == a.element && (e.job_type.is_none() || e.job_type == a.job_type) && (e.retries.is_none() || e.retries == a.retries)
            })?;
        }
        if let Some(expected) = &expect.tasks {
            let actual: Vec<ExpectTask> = family
                .iter()
                .flat_map(|i| i.state.user_tasks.values())
                .map(|t| ExpectTask {
                    element: t.element_id.clone(),
                    assignee: t.assignee.clone(),
                    candidate_groups: Some(t.candidate_groups.clone()),
                    candidate_users: Some(t.candidate_users.clone()),
                    due: t.due.clone(),
                    priority: t.priority,
                })
                .collect();
            match_items("tasks", expected, &actual, |e, a| {
                e.element == a.element
                    && (e.assignee.is_none() || e.assignee == a.assignee)
                    && (e.candidate_groups.is_none() || e.candidate_groups == a.candidate_groups)
                    && (e.candidate_users.is_none() || e.candidate_users == a.candidate_users)
                    && (e.due.is_none() || same_time(e.due.as_deref(), a.due.as_deref()))
                    && (e.priority.is_none() || e.priority == a.priority)
            })?;
        }
        if let Some(expected) = &expect.variables {
            for (name, value) in expected {
                match state.variables.get(name) {
                    Some(actual) if json_equal(value, actual) => {}
                    Some(actual) => return Err(format!("variables: {name} expected {value}, got {actual}")),
                    None => return Err(format!("variables: {name} expected {value}, but it is not set")),
                }
            }
        }
        if let Some(absent) = &expect.variables_absent {
            if let Some(name) = absent.iter().find(|n| state.variables.contains_key(*n)) {
                return Err(format!("variables_absent: {name} is set to {}", state.variables[name]));
            }
        }
        if let Some(expected) = &expect.incidents {
            let actual: Vec<ExpectIncident> = family
                .iter()
                .flat_map(|i| i.state.incidents.values())
                .map(|i| ExpectIncident { element: i.element_id.clone(), kind: Some(i.kind.name().to_string()) })
                .collect();
            match_items("incidents", expected, &actual, |e, a| e.element == a.element && (e.kind.is_none() || e.kind == a.kind))?;
        }
        if let Some(expected) = &expect.timers {
            let actual: Vec<ExpectTimer> = state
                .timers
                .values()
                .map(|t| ExpectTimer {
                    element: t.element_id.clone(),
                    due: jiff::Timestamp::from_millisecond(t.due_at).ok().map(|ts| ts.to_string()),
                })
                .collect();
            match_items("timers", expected, &actual, |e, a| e.element == a.element && (e.due.is_none() || same_time(e.due.as_deref(), a.due.as_deref())))?;
        }
        if let Some(expected) = &expect.subscriptions {
            let actual: Vec<ExpectSubscription> = state
                .subscriptions
                .values()
                .map(|s| match &s.kind {
                    SubscriptionKind::Message { name, correlation_key } => ExpectSubscription {
                        element: s.element_id.clone(),
                        message: Some(name.clone()),
                        signal: None,
                        correlation_key: Some(correlation_key.clone()),
                    },
                    SubscriptionKind::Signal { name } => {
                        ExpectSubscription { element: s.element_id.clone(), message: None, signal: Some(name.clone()), correlation_key: None }
                    }
                })
                .collect();
            match_items("subscriptions", expected, &actual, |e, a| {
                e.element == a.element
                    && (e.message.is_none() || e.message == a.message)
                    && (e.signal.is_none() || e.signal == a.signal)
                    && (e.correlation_key.is_none() || e.correlation_key == a.correlation_key)
            })?;
        }
        if let Some(expected) = &expect.error_code {
            if state.error_code.as_ref() != Some(expected) || state.status != Status::Failed {
                return Err(format!(
                    "error_code: expected {expected}, got {} (status {})",
                    state.error_code.as_deref().unwrap_or("none"),
                    state.status.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// Why an action was refused, with the code a scenario may expect.
struct Refusal {
    code: String,
    message: String,
}

impl Refusal {
    fn invalid(message: impl Into<String>) -> Refusal {
        Refusal { code: "invalid-step".into(), message: message.into() }
    }
}

impl From<WorldError> for Refusal {
    fn from(error: WorldError) -> Refusal {
        Refusal { code: error.code().to_string(), message: error.to_string() }
    }
}

fn describe(element: Option<&str>, job_type: Option<&str>) -> String {
    match (element, job_type) {
        (Some(e), Some(t)) => format!("of '{e}' with type '{t}'"),
        (Some(e), None) => format!("of '{e}'"),
        (None, Some(t)) => format!("with type '{t}'"),
        (None, None) => "at all".to_string(),
    }
}

fn same_multiset(key: &str, expected: &[String], actual: &[String]) -> Result<(), String> {
    let mut e = expected.to_vec();
    let mut a = actual.to_vec();
    e.sort();
    a.sort();
    if e != a {
        return Err(format!("{key}: expected [{}], got [{}]", expected.join(", "), actual.join(", ")));
    }
    Ok(())
}

fn includes(key: &str, expected: &[String], actual: &[String]) -> Result<(), String> {
    let mut left = actual.to_vec();
    for item in expected {
        match left.iter().position(|a| a == item) {
            Some(i) => {
                left.remove(i);
            }
            None => return Err(format!("{key}: '{item}' missing from [{}]", actual.join(", "))),
        }
    }
    Ok(())
}

/// Matches expected items (which may leave fields out) to actual ones, one to one.
fn match_items<T: serde::Serialize>(key: &str, expected: &[T], actual: &[T], matches: impl Fn(&T, &T) -> bool) -> Result<(), String> {
    let show = |items: &[T]| serde_json::to_string(items).unwrap_or_default();
    let failure = || format!("{key}: expected {}, got {}", show(expected), show(actual));
    if expected.len() != actual.len() {
        return Err(failure());
    }
    // Most specific expectations first, so a loose one does not take another's match.
    let mut order: Vec<usize> = (0..expected.len()).collect();
    let specificity = |item: &T| serde_json::to_value(item).ok().and_then(|v| v.as_object().map(|o| o.len())).unwrap_or(0);
    order.sort_by_key(|&i| std::cmp::Reverse(specificity(&expected[i])));
    let mut used = vec![false; actual.len()];
    for i in order {
        match (0..actual.len()).find(|&j| !used[j] && matches(&expected[i], &actual[j])) {
            Some(j) => used[j] = true,
            None => return Err(failure()),
        }
    }
    Ok(())
}

fn same_time(expected: Option<&str>, actual: Option<&str>) -> bool {
    match (expected.and_then(feel::parse_timestamp), actual.and_then(feel::parse_timestamp)) {
        (Some(e), Some(a)) => e == a,
        _ => expected == actual,
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub fn json_equal(expected: &Json, actual: &Json) -> bool {
    match (expected, actual) {
        (Json::Number(e), Json::Number(a)) => e.as_f64() == a.as_f64(),
        (Json::Array(e), Json::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(x, y)| json_equal(x, y)),
        (Json::Object(e), Json::Object(a)) => e.len() == a.len() && e.iter().all(|(k, v)| a.get(k).is_some_and(|w| json_equal(v, w))),
        _ => expected == actual,
    }
}
