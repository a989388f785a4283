//! Random interleavings of starts, message publications, signal broadcasts
//! and clock advances against waiting instances. After every operation: no
//! running instance has lost its tokens, no message reached two instances of
//! one process, and no timer fired before its due time.

use engine::{HistoryEvent, Status};
use proptest::prelude::*;
use scenario::World;
use serde_json::json;

const T0: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="interleavings">
  <message id="m" name="m"><extensionElements><zeebe:subscription correlationKey="=key"/></extensionElements></message>
  <signal id="s" name="s"/>
  <process id="fan" isExecutable="true">
    <startEvent id="fan_start"/>
    <parallelGateway id="fan_fork"/>
    <intermediateCatchEvent id="fan_msg"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <intermediateCatchEvent id="fan_t30"><timerEventDefinition><timeDuration>PT30M</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <intermediateCatchEvent id="fan_sig"><signalEventDefinition signalRef="s"/></intermediateCatchEvent>
    <parallelGateway id="fan_join"/>
    <endEvent id="fan_end"/>
    <sequenceFlow id="a1" sourceRef="fan_start" targetRef="fan_fork"/>
    <sequenceFlow id="a2" sourceRef="fan_fork" targetRef="fan_msg"/>
    <sequenceFlow id="a3" sourceRef="fan_fork" targetRef="fan_t30"/>
    <sequenceFlow id="a4" sourceRef="fan_fork" targetRef="fan_sig"/>
    <sequenceFlow id="a5" sourceRef="fan_msg" targetRef="fan_join"/>
    <sequenceFlow id="a6" sourceRef="fan_t30" targetRef="fan_join"/>
    <sequenceFlow id="a7" sourceRef="fan_sig" targetRef="fan_join"/>
    <sequenceFlow id="a8" sourceRef="fan_join" targetRef="fan_end"/>
  </process>
  <process id="race" isExecutable="true">
    <startEvent id="race_start"/>
    <eventBasedGateway id="race_gw"/>
    <intermediateCatchEvent id="race_msg"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <intermediateCatchEvent id="race_t45"><timerEventDefinition><timeDuration>PT45M</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <intermediateCatchEvent id="race_sig"><signalEventDefinition signalRef="s"/></intermediateCatchEvent>
    <endEvent id="race_end"/>
    <sequenceFlow id="b1" sourceRef="race_start" targetRef="race_gw"/>
    <sequenceFlow id="b2" sourceRef="race_gw" targetRef="race_msg"/>
    <sequenceFlow id="b3" sourceRef="race_gw" targetRef="race_t45"/>
    <sequenceFlow id="b4" sourceRef="race_gw" targetRef="race_sig"/>
    <sequenceFlow id="b5" sourceRef="race_msg" targetRef="race_end"/>
    <sequenceFlow id="b6" sourceRef="race_t45" targetRef="race_end"/>
    <sequenceFlow id="b7" sourceRef="race_sig" targetRef="race_end"/>
  </process>
  <process id="nag" isExecutable="true">
    <startEvent id="nag_start"/>
    <receiveTask id="nag_wait" messageRef="m"/>
    <boundaryEvent id="nag_t10" attachedToRef="nag_wait" cancelActivity="false"><timerEventDefinition><timeCycle>R3/PT10M</timeCycle></timerEventDefinition></boundaryEvent>
    <boundaryEvent id="nag_stop" attachedToRef="nag_wait"><signalEventDefinition signalRef="s"/></boundaryEvent>
    <endEvent id="nag_end"/>
    <endEvent id="nag_nagged"/>
    <endEvent id="nag_stopped"/>
    <sequenceFlow id="c1" sourceRef="nag_start" targetRef="nag_wait"/>
    <sequenceFlow id="c2" sourceRef="nag_wait" targetRef="nag_end"/>
    <sequenceFlow id="c3" sourceRef="nag_t10" targetRef="nag_nagged"/>
    <sequenceFlow id="c4" sourceRef="nag_stop" targetRef="nag_stopped"/>
  </process>
</definitions>"#;

#[derive(Clone, Debug)]
enum Op {
    Start { process: usize, key: u8 },
    Publish { key: u8, ttl_minutes: i64 },
    Broadcast,
    Advance { minutes: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..3, 0u8..3).prop_map(|(process, key)| Op::Start { process, key }),
        3 => (0u8..3, prop_oneof![Just(0i64), Just(20), Just(120)]).prop_map(|(key, ttl_minutes)| Op::Publish { key, ttl_minutes }),
        1 => Just(Op::Broadcast),
        3 => (1i64..40).prop_map(|minutes| Op::Advance { minutes }),
    ]
}

/// The least time each timer element waits after its element instance starts.
fn minimum_wait(element: &str) -> Option<i64> {
    match element {
        "fan_t30" => Some(30 * MINUTE),
        "race_t45" => Some(45 * MINUTE),
        "nag_t10" => Some(10 * MINUTE),
        _ => None,
    }
}

fn check(world: &World, published: usize) -> Result<(), TestCaseError> {
    let instances = world.instances();
    for instance in &instances {
        let state = &instance.state;
        if state.status == Status::Running {
            prop_assert!(
                !state.subscriptions.is_empty() || !state.timers.is_empty() || !state.incidents.is_empty(),
                "running instance {} waits for nothing", state.id
            );
        }
        if state.status.is_ended() {
            prop_assert!(state.element_instances.is_empty() && state.timers.is_empty() && state.subscriptions.is_empty());
        }
        for timer in state.timers.values() {
            prop_assert!(timer.due_at >= world.now || state.status != Status::Running, "a due timer was left unfired");
        }
    }
    // A message reaches at most one instance of each process.
    for n in 0..published {
        let name = format!("m{n}");
        for process in ["fan", "race", "nag"] {
            let receivers = instances
                .iter()
                .filter(|i| i.state.process_id == process && i.state.variables.contains_key(&name))
                .count();
            prop_assert!(receivers <= 1, "message {n} reached {receivers} instances of {process}");
        }
    }
    // No timer fired early: a boundary cycle fires at +10, +20, +30 minutes; the others once.
    for seq in 0..instances.len() {
        let history = world.history(seq);
        let mut cycle_firings = 0;
        for entry in history.iter().filter(|e| e.event == HistoryEvent::Completed) {
            let Some(wait) = minimum_wait(&entry.element_id) else { continue };
            let started = if entry.element_id == "nag_t10" {
                cycle_firings += 1;
                let activity = history.iter().find(|e| e.element_id == "nag_wait").map(|e| e.at).unwrap_or(T0);
                activity + (wait * cycle_firings)
            } else {
                // Behind an event-based gateway the timer starts with the gateway.
                let waits_from = if entry.element_id == "race_t45" { "race_gw" } else { entry.element_id.as_str() };
                history.iter().find(|e| e.element_id == waits_from && e.event == HistoryEvent::Activated).map(|e| e.at + wait).unwrap_or(T0)
            };
            prop_assert!(entry.at >= started, "instance {seq}: {} fired at {} before {}", entry.element_id, entry.at, started);
        }
        prop_assert!(cycle_firings <= 3, "the R3 cycle fired {cycle_firings} times");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_events_lose_no_token_and_correlate_once(ops in prop::collection::vec(op(), 1..40)) {
        let mut world = World::new(T0);
        world.deploy(MODEL).expect("the model deploys");
        let mut published = 0;
        for op in ops {
            match op {
                Op::Start { process, key } => {
                    let process = ["fan", "race", "nag"][process];
                    let variables = json!({"key": key.to_string()}).as_object().cloned().unwrap();
                    world.start(process, None, variables, None).expect("starts");
                }
                Op::Publish { key, ttl_minutes } => {
                    let variables = json!({ format!("m{published}"): true }).as_object().cloned().unwrap();
                    world.publish("m", &key.to_string(), variables, ttl_minutes * MINUTE, None).expect("publishes");
                    published += 1;
                }
                Op::Broadcast => world.broadcast("s", Default::default()).expect("broadcasts"),
                Op::Advance { minutes } => world.advance(minutes * MINUTE).expect("advances"),
            }
            check(&world, published)?;
        }
    }
}
