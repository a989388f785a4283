//! Property tests over generated, well-structured models: random branching,
//! nesting and timers, driven by random choices of which job completes or
//! which timer fires. After every step the instance must be consistent; at the
//! end every token is gone, every join fired once per fork, and replaying the
//! same inputs gives byte-identical state and effects.

use std::collections::BTreeMap;

use bpmn::{Kind, TaskKind, Workflow};
use engine::{Effect, ElementState, HistoryEvent, Input, InstanceState, StartOptions, Status};
use proptest::prelude::*;

use crate::support::{vars, workflow, T0};

#[derive(Clone, Debug)]
enum Block {
    Task,
    Timer(u8),
    Parallel(Vec<Vec<Block>>),
    Exclusive(Vec<Vec<Block>>),
    Inclusive(Vec<Vec<Block>>),
    Sub(Vec<Block>),
    /// A task (`None`) or a subprocess, perhaps multi-instance, with a boundary event.
    Guarded { sub: Option<Vec<Block>>, multi: Option<(bool, u8)>, boundary: Boundary, interrupting: bool },
}

#[derive(Clone, Debug)]
enum Boundary {
    Timer(u8),
    Cycle(u8),
    Signal,
}

fn guarded() -> impl Strategy<Value = Block> {
    let sub = prop::option::of(prop::collection::vec(block(), 0..3));
    let multi = prop::option::of((any::<bool>(), 0u8..4));
    let boundary = prop_oneof![(1u8..90).prop_map(Boundary::Timer), (1u8..90).prop_map(Boundary::Cycle), Just(Boundary::Signal)];
    (sub, multi, boundary, any::<bool>()).prop_map(|(sub, multi, boundary, interrupting)| Block::Guarded { sub, multi, boundary, interrupting })
}

fn block() -> impl Strategy<Value = Block> {
    let leaf = prop_oneof![4 => Just(Block::Task), 1 => (1u8..90).prop_map(Block::Timer)];
    leaf.prop_recursive(3, 24, 4, |inner| {
        let chain = prop::collection::vec(inner, 0..3);
        let branches = prop::collection::vec(chain.clone(), 2..4);
        prop_oneof![
            branches.clone().prop_map(Block::Parallel),
            branches.clone().prop_map(Block::Exclusive),
            branches.prop_map(Block::Inclusive),
            chain.prop_map(Block::Sub),
        ]
    })
}

/// Builds BPMN elements and flows for a chain of blocks.
struct Builder {
    next: usize,
    xml: String,
    /// fork id -> join id, to check that joins fire once per fork.
    pairs: Vec<(String, String)>,
}

impl Builder {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn flow(&mut self, from: &str, to: &str, condition: Option<String>) -> String {
        let id = self.id("f");
        match condition {
            Some(c) => self.xml.push_str(&format!(
                r#"<sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"><conditionExpression>{c}</conditionExpression></sequenceFlow>"#
            )),
            None => self.xml.push_str(&format!(r#"<sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"/>"#)),
        }
        id
    }

    /// Emits the chain after `from`; returns the id of its last element.
    fn chain(&mut self, blocks: &[Block], from: &str) -> String {
        let mut last = from.to_string();
        for block in blocks {
            last = self.block(block, &last);
        }
        last
    }

    /// Emits a subprocess `id` (with `loops` characteristics) running `chain` between its start and end.
    fn subprocess(&mut self, id: &str, loops: &str, chain: &[Block]) {
        let start = self.id("ss");
        let end = self.id("se");
        let outer = std::mem::take(&mut self.xml);
        self.xml.push_str(&format!(r#"<startEvent id="{start}"/><endEvent id="{end}"/>"#));
        let last = self.chain(chain, &start);
        self.flow(&last, &end, None);
        let inner = std::mem::replace(&mut self.xml, outer);
        self.xml.push_str(&format!(r#"<subProcess id="{id}">{loops}{inner}</subProcess>"#));
    }

    fn block(&mut self, block: &Block, from: &str) -> String {
        match block {
            Block::Task => {
                let id = self.id("t");
                self.xml.push_str(&format!(r#"<serviceTask id="{id}"><extensionElements><zeebe:taskDefinition type="work"/></extensionElements></serviceTask>"#));
                self.flow(from, &id, None);
                id
            }
            Block::Timer(minutes) => {
                let id = self.id("timer");
                self.xml.push_str(&format!(
                    r#"<intermediateCatchEvent id="{id}"><timerEventDefinition><timeDuration>PT{minutes}M</timeDuration></timerEventDefinition></intermediateCatchEvent>"#
                ));
                self.flow(from, &id, None);
                id
            }
            Block::Sub(chain) => {
                let id = self.id("sub");
                self.subprocess(&id, "", chain);
                self.flow(from, &id, None);
                id
            }
            Block::Guarded { sub, multi, boundary, interrupting } => {
                let id = self.id("g");
                let loops = match multi {
                    Some((sequential, count)) => format!(
                        r#"<multiInstanceLoopCharacteristics isSequential="{sequential}"><loopCardinality>{count}</loopCardinality></multiInstanceLoopCharacteristics>"#
                    ),
                    None => String::new(),
                };
                match sub {
                    None => self.xml.push_str(&format!(
                        r#"<serviceTask id="{id}"><extensionElements><zeebe:taskDefinition type="work"/></extensionElements>{loops}</serviceTask>"#
                    )),
                    Some(chain) => self.subprocess(&id, &loops, chain),
                }
                self.flow(from, &id, None);
                let catch = self.id("b");
                let definition = match boundary {
                    Boundary::Timer(m) => format!("<timerEventDefinition><timeDuration>PT{m}M</timeDuration></timerEventDefinition>"),
                    Boundary::Cycle(m) => format!("<timerEventDefinition><timeCycle>R/PT{m}M</timeCycle></timerEventDefinition>"),
                    Boundary::Signal => r#"<signalEventDefinition signalRef="S1"/>"#.to_string(),
                };
                self.xml.push_str(&format!(
                    r#"<boundaryEvent id="{catch}" attachedToRef="{id}" cancelActivity="{interrupting}">{definition}</boundaryEvent>"#
                ));
                // An interrupting path rejoins the chain; a non-interrupting one ends on its own.
                let merge = self.id("m");
                self.xml.push_str(&format!(r#"<exclusiveGateway id="{merge}"/>"#));
                self.flow(&id, &merge, None);
                if *interrupting {
                    self.flow(&catch, &merge, None);
                } else {
                    let end = self.id("be");
                    self.xml.push_str(&format!(r#"<endEvent id="{end}"/>"#));
                    self.flow(&catch, &end, None);
                }
                merge
            }
            Block::Parallel(branches) | Block::Exclusive(branches) | Block::Inclusive(branches) => {
                let (tag, prefix) = match block {
                    Block::Parallel(_) => ("parallelGateway", "par"),
                    Block::Exclusive(_) => ("exclusiveGateway", "xor"),
                    _ => ("inclusiveGateway", "or"),
                };
                let fork = self.id(prefix);
                let join = self.id(prefix);
                let n = self.next;
                // The last branch is the default of a choice; the others have conditions on `seed`.
                let default_flow_index = branches.len() - 1;
                let mut default_flow = None;
                self.flow(from, &fork, None);
                for (k, branch) in branches.iter().enumerate() {
                    let first = match branch.first() {
                        Some(_) => {
                            let marker = self.id("t");
                            self.xml.push_str(&format!(r#"<task id="{marker}"/>"#));
                            marker
                        }
                        None => join.clone(),
                    };
                    let condition = match block {
                        Block::Parallel(_) => None,
                        _ if k == default_flow_index => None,
                        Block::Exclusive(_) => Some(format!("=modulo(seed + {n}, {}) = {k}", branches.len())),
                        _ => Some(format!("=modulo(seed + {n} * {}, 3) != 0", k + 2)),
                    };
                    let is_default = condition.is_none() && !matches!(block, Block::Parallel(_));
                    let flow = self.flow(&fork, &first, condition);
                    if is_default {
                        default_flow = Some(flow);
                    }
                    if first != join {
                        let last = self.chain(branch, &first);
                        self.flow(&last, &join, None);
                    }
                }
                let default = default_flow.map(|d| format!(r#" default="{d}""#)).unwrap_or_default();
                self.xml.push_str(&format!(r#"<{tag} id="{fork}"{default}/><{tag} id="{join}"/>"#));
                self.pairs.push((fork, join.clone()));
                join
            }
        }
    }
}

fn build(blocks: &[Block], terminate_branch: bool) -> (Workflow, Vec<(String, String)>) {
    let mut b = Builder { next: 0, xml: String::from(r#"<startEvent id="start"/><endEvent id="end"/>"#), pairs: Vec::new() };
    if terminate_branch {
        // A parallel branch that ends the whole instance when its task completes.
        b.xml.push_str(r#"<parallelGateway id="top"/><serviceTask id="killer"><extensionElements><zeebe:taskDefinition type="kill"/></extensionElements></serviceTask><endEvent id="stop"><terminateEventDefinition/></endEvent>"#);
        b.flow("start", "top", None);
        b.flow("top", "killer", None);
        b.flow("killer", "stop", None);
        let last = b.chain(blocks, "top");
        b.flow(&last, "end", None);
    } else {
        let last = b.chain(blocks, "start");
        b.flow(&last, "end", None);
    }
    (workflow(&b.xml), b.pairs)
}

/// Checks what must hold after every step.
fn check_consistency(wf: &Workflow, state: &InstanceState) -> Result<(), TestCaseError> {
    for ei in state.element_instances.values() {
        if let Some(parent) = ei.parent {
            prop_assert!(state.element_instances.contains_key(&parent), "element instance {} lost its scope", ei.element_id);
        }
    }
    for job in state.jobs.values() {
        let owner = state.element_instances.get(&job.element_instance);
        prop_assert!(owner.is_some(), "job {} has no element instance", job.key);
        prop_assert!(matches!(wf.elements[owner.unwrap().element].kind, Kind::Task(TaskKind::Job(_))));
    }
    for ei in state.element_instances.values() {
        let is_body = ei.multi_instance.is_some();
        if matches!(wf.elements[ei.element].kind, Kind::Task(TaskKind::Job(_))) && ei.state == ElementState::Active && !is_body {
            let jobs = state.jobs.values().filter(|j| j.element_instance == ei.key).count();
            prop_assert_eq!(jobs, 1, "a waiting task has exactly one job");
        }
    }
    for timer in state.timers.values() {
        prop_assert!(state.element_instances.contains_key(&timer.element_instance), "timer {} has no owner", timer.key);
        // A multi-instance activity's boundary events belong to its body, never to an iteration.
        let owner = &state.element_instances[&timer.element_instance];
        let in_body = owner.parent.is_some_and(|p| state.element_instances[&p].multi_instance.is_some());
        prop_assert!(!(in_body && matches!(wf.elements[timer.element].kind, Kind::Boundary { .. })), "iteration {} owns a boundary timer", owner.key);
    }
    for subscription in state.subscriptions.values() {
        prop_assert!(state.element_instances.contains_key(&subscription.element_instance), "subscription {} has no owner", subscription.key);
    }
    if state.status == Status::Running {
        prop_assert!(
            !state.jobs.is_empty() || !state.timers.is_empty() || !state.incidents.is_empty() || !state.subscriptions.is_empty(),
            "a running instance waits for something"
        );
    }
    if state.status.is_ended() {
        prop_assert!(state.element_instances.is_empty() && state.jobs.is_empty() && state.timers.is_empty(), "an ended instance holds no token");
    }
    Ok(())
}

/// Runs the instance to its end, choosing with `choices`; returns the state and every effect.
fn drive(wf: &Workflow, seed: u32, choices: &[u16]) -> Result<(InstanceState, Vec<Effect>, Vec<Input>), TestCaseError> {
    let options = StartOptions { variables: vars(serde_json::json!({"seed": seed})), ..StartOptions::default() };
    let (mut state, mut effects) = engine::start(wf, 1, "i".into(), options, T0).expect("starts");
    check_consistency(wf, &state)?;
    let mut now = T0;
    let mut inputs = Vec::new();
    for step in 0..400 {
        let choice = choices[step % choices.len()];
        let jobs: Vec<u64> = state.open_jobs(now).map(|j| j.key).collect();
        let next_timer = state.timers.values().min_by_key(|t| (t.due_at, t.key)).map(|t| (t.due_at, t.key));
        let signals: Vec<u64> = state.subscriptions.values().map(|s| s.key).collect();
        let input = match (jobs.is_empty(), next_timer) {
            _ if !signals.is_empty() && (choice % 5 == 1 || (jobs.is_empty() && next_timer.is_none())) => {
                Input::SignalReceived { subscription: signals[usize::from(choice) % signals.len()], variables: vars(serde_json::json!({})) }
            }
            (true, None) => break,
            (false, Some(_)) | (false, None) if !choice.is_multiple_of(3) || next_timer.is_none() => {
                let job = jobs[usize::from(choice) % jobs.len()];
                Input::CompleteJob { job, variables: vars(serde_json::json!({ format!("v{}", choice % 4): choice })), result: None }
            }
            (_, Some((due, timer))) => {
                now = now.max(due);
                Input::TimerFired { timer }
            }
            _ => unreachable!(),
        };
        inputs.push(input.clone());
        effects.extend(engine::step(wf, &mut state, input, now).map_err(|r| TestCaseError::fail(r.to_string()))?);
        check_consistency(wf, &state)?;
    }
    Ok((state, effects, inputs))
}

fn completions(effects: &[Effect]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for effect in effects {
        if let Effect::History { entry } = effect {
            if entry.event == HistoryEvent::Completed {
                *counts.entry(entry.element_id.clone()).or_insert(0) += 1;
            }
        }
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_models_run_to_completion_without_losing_tokens(
        blocks in prop::collection::vec(block(), 1..4),
        seed in 0u32..1000,
        choices in prop::collection::vec(any::<u16>(), 1..16),
    ) {
        let (wf, pairs) = build(&blocks, false);
        let (state, effects, _) = drive(&wf, seed, &choices)?;
        prop_assert_eq!(state.status, Status::Completed);
        let counts = completions(&effects);
        for (fork, join) in &pairs {
            prop_assert_eq!(counts.get(fork), counts.get(join), "join {} fires once per activation of fork {}", join, fork);
        }
        prop_assert_eq!(counts.get("end"), Some(&1));
    }

    #[test]
    fn terminate_leaves_no_token(
        blocks in prop::collection::vec(block(), 1..3),
        seed in 0u32..1000,
        choices in prop::collection::vec(any::<u16>(), 1..16),
    ) {
        let (wf, _) = build(&blocks, true);
        let (state, effects, _) = drive(&wf, seed, &choices)?;
        prop_assert_eq!(state.status, Status::Completed);
        prop_assert!(state.element_instances.is_empty() && state.jobs.is_empty() && state.timers.is_empty());
        let counts = completions(&effects);
        prop_assert!(counts.contains_key("stop") || counts.contains_key("end"));
    }

    #[test]
    fn the_same_inputs_give_byte_identical_state_and_effects(
        blocks in prop::collection::vec(block(), 1..4),
        seed in 0u32..1000,
        choices in prop::collection::vec(any::<u16>(), 1..16),
    ) {
        let (wf, _) = build(&blocks, false);
        let (first_state, first_effects, inputs) = drive(&wf, seed, &choices)?;
        // Replay the recorded inputs from a fresh start.
        let options = StartOptions { variables: vars(serde_json::json!({"seed": seed})), ..StartOptions::default() };
        let (mut state, mut effects) = engine::start(&wf, 1, "i".into(), options, T0).expect("starts");
        let mut now = T0;
        for input in inputs {
            if let Input::TimerFired { timer } = &input {
                now = now.max(state.timers[timer].due_at);
            }
            effects.extend(engine::step(&wf, &mut state, input, now).expect("the replay is accepted"));
        }
        prop_assert_eq!(serde_json::to_string(&state).unwrap(), serde_json::to_string(&first_state).unwrap());
        prop_assert_eq!(serde_json::to_string(&effects).unwrap(), serde_json::to_string(&first_effects).unwrap());
    }
}

fn with_guards() -> impl Strategy<Value = Vec<Block>> {
    prop::collection::vec(prop_oneof![3 => guarded(), 1 => block()], 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Issue 9, item 4: boundary events (timer, cycle, signal; interrupting
    /// or not) on tasks and subprocesses, multi-instance (sequential or
    /// parallel) or not: the engine never panics and keeps its invariants
    /// after every step, whichever job, timer or signal comes first.
    #[test]
    fn boundary_events_on_multi_instance_and_plain_activities_keep_the_invariants(
        blocks in with_guards(),
        seed in 0u32..1000,
        choices in prop::collection::vec(any::<u16>(), 1..40),
    ) {
        let (wf, _) = build(&blocks, false);
        drive(&wf, seed, &choices)?;
    }
}
