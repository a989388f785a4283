//! The conformance suite, the repository's own scenarios, and proof that the
//! runner reports what differs.

mod interleavings;

use std::path::{Path, PathBuf};

use scenario::{run_file, run_paths, Outcome};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared folder: `$BATON_SHARED`, else the one beside the repository.
fn shared() -> PathBuf {
    std::env::var_os("BATON_SHARED").map(PathBuf::from).unwrap_or_else(|| workspace().join("../shared"))
}

fn failures(outcomes: &[Outcome]) -> Vec<String> {
    outcomes.iter().filter(|o| !o.passed).map(Outcome::line).collect()
}

#[test]
fn every_conformance_case_passes() {
    let cases = shared().join("conformance/cases");
    let outcomes = run_paths(std::slice::from_ref(&cases)).unwrap_or_else(|e| panic!("cannot run {}: {e}", cases.display()));
    assert!(outcomes.len() >= 46, "expected at least 46 scenarios in {}, found {}", cases.display(), outcomes.len());
    assert_eq!(failures(&outcomes), Vec::<String>::new());
}

#[test]
fn the_repository_scenarios_and_examples_pass() {
    let outcomes = run_paths(&[workspace().join("tests/scenarios"), workspace().join("examples")]).unwrap();
    assert!(outcomes.len() >= 10, "found only {} scenarios", outcomes.len());
    assert_eq!(failures(&outcomes), Vec::<String>::new());
}

#[test]
fn the_runner_reports_every_difference() {
    let outcomes = run_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/must-fail.yaml"));
    let expected = [
        ("wrong status", "step 2 (expect): status: expected completed, got running"),
        ("wrong waiting", "waiting: expected [b], got [a]"),
        ("wrong variable", "variables: x expected 2, got 1"),
        ("wrong job count", r#"jobs: expected [{"element":"a"},{"element":"a"}], got [{"element":"a","type":"a","retries":3}]"#),
        ("wrong retries", r#"jobs: expected [{"element":"a","retries":5}]"#),
        ("accepted although a rejection was expected", "step 2 (complete_job): expected the action to be refused, but it was accepted"),
        ("refused although no rejection was expected", "step 2 (complete_job): no job of 'b' is open"),
        ("refused with another code", "refused with code 'job-not-found', expected 'instance-suspended'"),
        ("wrong completed list", "completed: expected [start, a, end], got [start, a, b, end]"),
        ("a deployment expected to fail is accepted", "the deployment was accepted, but the scenario expects it to be refused"),
        ("a variable expected absent is set", "variables_absent: x is set to 1"),
        ("wrong incidents", r#"incidents: expected [{"element":"a"}], got []"#),
        ("wrong timers", r#"timers: expected [{"element":"a"}], got []"#),
        ("wrong instance count", "instances: expected 2 running instance(s) of 'two', found 1"),
        ("an unknown alias", "no instance was started 'as: nobody'"),
    ];
    assert_eq!(outcomes.len(), expected.len());
    for (outcome, (name, message)) in outcomes.iter().zip(expected) {
        assert_eq!(outcome.name, name);
        assert!(!outcome.passed, "{name} should fail");
        assert!(outcome.line().contains(message), "{name}: expected the report to contain {message:?}, got {:?}", outcome.line());
    }
}

#[test]
fn unknown_keys_are_refused_with_the_key_and_the_file() {
    let outcomes = run_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unknown-key.yaml"));
    assert_eq!(outcomes.len(), 1);
    let line = outcomes[0].line();
    assert!(line.contains("unknown-key.yaml") && line.contains("unknown field `compleet_job`") && line.contains("line 5"), "{line}");
}

/// Issue 9, item 7: a long-lived instance costs the same at every step. A
/// reminder every hour leaves the instance's state the same size after 48
/// firings and after 2 000 (history grows by appended rows, never rewritten).
#[test]
fn a_repeating_timer_leaves_the_state_the_same_size_however_often_it_fires() {
    let model = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="c">
  <process id="remind" isExecutable="true">
    <startEvent id="s"/>
    <userTask id="wait"/>
    <boundaryEvent id="tick" attachedToRef="wait" cancelActivity="false"><timerEventDefinition><timeCycle>R/PT1H</timeCycle></timerEventDefinition></boundaryEvent>
    <endEvent id="e"/><endEvent id="e2"/>
    <sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/>
    <sequenceFlow id="f3" sourceRef="tick" targetRef="e2"/>
  </process>
</definitions>"#;
    let hour = 3_600_000;
    let mut world = scenario::World::new(1_767_225_600_000);
    world.deploy(model).unwrap();
    let seq = world.start("remind", None, Default::default(), None).unwrap();
    let size = |world: &scenario::World| serde_json::to_vec(&world.instance(seq).state).unwrap().len();
    world.advance(48 * hour).unwrap();
    let early = size(&world);
    world.advance(1_952 * hour).unwrap();
    let late = size(&world);
    // Only the digits of the growing key counter differ.
    assert!(late.abs_diff(early) <= 8, "the state grew from {early} to {late} bytes");
    let fired = world.history(seq).iter().filter(|e| e.element_id == "tick").count();
    assert_eq!(fired, 2 * 2_000, "each firing is an activated and a completed entry of the boundary event");
}
