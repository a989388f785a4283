//! Trace snapshots, one element family each. Refresh with `UPDATE_EXPECT=1`
//! and read the diff: the trace is the behaviour.

use expect_test::{expect, Expect};
use serde_json::json;

use engine::{Input, RejectionCode};

use crate::support::*;

fn check(trace: &str, expected: Expect) {
    expected.assert_eq(trace);
}

#[test]
fn sequence_of_jobs_merges_variables() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/>{}{}<endEvent id="end"/>{}{}{}"#,
        task("a"),
        task("b"),
        flow("f1", "start", "a"),
        flow("f2", "a", "b"),
        flow("f3", "b", "end")
    ));
    let mut d = Driver::start(&wf, json!({"x": 1}));
    d.complete("a", json!({"y": 2}));
    d.complete("b", json!({"x": 10}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + a (serviceTask)
          job+ 4 a type=a retries=3
          = running waiting=["a"] vars={"x":1}
        > complete a
          job- 4
          ✓ a (serviceTask)
          + b (serviceTask)
          job+ 6 b type=b retries=3
          = running waiting=["b"] vars={"x":1,"y":2}
        > complete b
          job- 6
          ✓ b (serviceTask)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"x":10,"y":2}
    "#]]);
}

#[test]
fn exclusive_gateway_without_match_raises_an_incident_that_resolves() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/><exclusiveGateway id="gw"/>{}{}{}{}{}"#,
        task("big"),
        task("small"),
        flow("f1", "start", "gw"),
        conditional("to_big", "gw", "big", "=amount &gt; 100"),
        conditional("to_small", "gw", "small", "=amount &lt; 10"),
    ));
    let mut d = Driver::start(&wf, json!({"amount": 50}));
    d.input("set amount", Input::SetVariables { element_instance: None, variables: vars(json!({"amount": 500})) });
    let incident = *d.state.incidents.keys().next().unwrap();
    d.input("resolve", Input::ResolveIncident { incident });
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + gw (exclusiveGateway)
          incident+ 4 gw no_flow_taken: no condition of an outgoing flow of 'gw' is true and it has no default flow; fix the variables and resolve the incident
          · incident_raised gw
          = running waiting=[] vars={"amount":50}
        > set amount
          · variables_set p
          = running waiting=[] vars={"amount":500}
        > resolve
          incident- 4
          · incident_resolved gw
          ✓ gw (exclusiveGateway)
          + big (serviceTask)
          job+ 6 big type=big retries=3
          = running waiting=["big"] vars={"amount":500}
    "#]]);
}

#[test]
fn parallel_join_fires_once_after_every_branch() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/><parallelGateway id="fork"/>{}{}<parallelGateway id="join"/><endEvent id="end"/>{}{}{}{}{}{}"#,
        task("a"),
        task("b"),
        flow("f1", "start", "fork"),
        flow("f2", "fork", "a"),
        flow("f3", "fork", "b"),
        flow("f4", "a", "join"),
        flow("f5", "b", "join"),
        flow("f6", "join", "end")
    ));
    let mut d = Driver::start(&wf, json!({}));
    d.complete("b", json!({}));
    d.complete("a", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + fork (parallelGateway)
          ✓ fork (parallelGateway)
          + a (serviceTask)
          + b (serviceTask)
          job+ 6 a type=a retries=3
          job+ 7 b type=b retries=3
          = running waiting=["a", "b"] vars={}
        > complete b
          job- 7
          ✓ b (serviceTask)
          = running waiting=["a"] vars={}
        > complete a
          job- 6
          ✓ a (serviceTask)
          + join (parallelGateway)
          ✓ join (parallelGateway)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={}
    "#]]);
}

#[test]
fn inclusive_join_waits_only_for_tokens_that_can_arrive() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/><inclusiveGateway id="fork"/>{}{}{}<inclusiveGateway id="join"/><endEvent id="end"/>
        {}{}{}{}{}{}{}{}{}"#,
        task("a"),
        task("b"),
        task("a2"),
        flow("f1", "start", "fork"),
        conditional("fa", "fork", "a", "=x"),
        conditional("fb", "fork", "b", "=y"),
        flow("f4", "a", "a2"),
        flow("f5", "a2", "join"),
        flow("f6", "b", "join"),
        flow("f7", "join", "end"),
        "",
        ""
    ));
    let mut d = Driver::start(&wf, json!({"x": true, "y": true}));
    d.complete("b", json!({}));
    d.complete("a", json!({}));
    d.complete("a2", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + fork (inclusiveGateway)
          ✓ fork (inclusiveGateway)
          + a (serviceTask)
          + b (serviceTask)
          job+ 6 a type=a retries=3
          job+ 7 b type=b retries=3
          = running waiting=["a", "b"] vars={"x":true,"y":true}
        > complete b
          job- 7
          ✓ b (serviceTask)
          = running waiting=["a"] vars={"x":true,"y":true}
        > complete a
          job- 6
          ✓ a (serviceTask)
          + a2 (serviceTask)
          job+ 9 a2 type=a2 retries=3
          = running waiting=["a2"] vars={"x":true,"y":true}
        > complete a2
          job- 9
          ✓ a2 (serviceTask)
          + join (inclusiveGateway)
          ✓ join (inclusiveGateway)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"x":true,"y":true}
    "#]]);
}

#[test]
fn worker_error_is_caught_by_a_boundary_event_on_the_subprocess() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/>
        <subProcess id="sub"><startEvent id="s_start"/>{}<endEvent id="s_end"/>{}{}</subProcess>
        <boundaryEvent id="caught" attachedToRef="sub"><errorEventDefinition errorRef="E1"/></boundaryEvent>
        {}<endEvent id="end"/><endEvent id="end_err"/>{}{}{}{}"#,
        task("inner"),
        flow("s1", "s_start", "inner"),
        flow("s2", "inner", "s_end"),
        task("handle"),
        flow("f1", "start", "sub"),
        flow("f2", "sub", "end"),
        flow("f3", "caught", "handle"),
        flow("f4", "handle", "end_err")
    ));
    let mut d = Driver::start(&wf, json!({}));
    let job = d.job("inner");
    d.input("throw E1", Input::ThrowError { job, code: "E1".into(), message: "bad".into(), variables: vars(json!({"reason": "bad"})) });
    d.complete("handle", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + sub (subProcess)
          + s_start (startEvent)
          ✓ s_start (startEvent)
          + inner (serviceTask)
          job+ 6 inner type=inner retries=3
          = running waiting=["inner"] vars={}
        > throw E1
          job- 6
          ✗ inner (serviceTask)
          ✗ sub (subProcess)
          + caught (boundaryEvent)
          ✓ caught (boundaryEvent)
          + handle (serviceTask)
          job+ 9 handle type=handle retries=3
          = running waiting=["handle"] vars={"reason":"bad"}
        > complete handle
          job- 9
          ✓ handle (serviceTask)
          + end_err (endEvent)
          ✓ end_err (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"reason":"bad"}
    "#]]);
}

#[test]
fn uncaught_worker_error_becomes_an_incident_and_error_end_event_fails_the_instance() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/>{}<endEvent id="boom"><errorEventDefinition errorRef="E1"/></endEvent>{}{}"#,
        task("a"),
        flow("f1", "start", "a"),
        flow("f2", "a", "boom")
    ));
    let mut d = Driver::start(&wf, json!({}));
    let job = d.job("a");
    d.input("throw OTHER", Input::ThrowError { job, code: "OTHER".into(), message: String::new(), variables: vars(json!({})) });
    let incident = *d.state.incidents.keys().next().unwrap();
    d.input("resolve", Input::ResolveIncident { incident });
    d.complete("a", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + a (serviceTask)
          job+ 4 a type=a retries=3
          = running waiting=["a"] vars={}
        > throw OTHER
          job~ 4 retries=3 state=Failed
          incident+ 5 a unhandled_error: the worker threw error 'OTHER', which nothing catches
          · incident_raised a
          = running waiting=["a"] vars={}
        > resolve
          incident- 5
          · incident_resolved a
          job~ 4 retries=3 state=Activatable
          = running waiting=["a"] vars={}
        > complete a
          job- 4
          ✓ a (serviceTask)
          + boom (endEvent)
          ✓ boom (endEvent)
          ✗ p (process)
          ended failed E1
          = failed waiting=[] vars={}
    "#]]);
}

#[test]
fn timers_catch_and_interrupt() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/>
        <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
        {}<boundaryEvent id="deadline" attachedToRef="work"><timerEventDefinition><timeDuration>PT30M</timeDuration></timerEventDefinition></boundaryEvent>
        <endEvent id="end"/><endEvent id="late"/>{}{}{}{}"#,
        task("work"),
        flow("f1", "start", "wait"),
        flow("f2", "wait", "work"),
        flow("f3", "work", "end"),
        flow("f4", "deadline", "late")
    ));
    let mut d = Driver::start(&wf, json!({}));
    let timer = *d.state.timers.keys().next().unwrap();
    d.input("fire too early", Input::TimerFired { timer });
    d.fire_timer("wait");
    d.fire_timer("deadline");
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + wait (intermediateCatchEvent)
          timer+ 4 wait due=+3600000ms
          = running waiting=["wait"] vars={}
        > fire too early
          rejected timer-not-due: timer 4 is due at 2026-01-01T01:00:00Z, not before
        > fire wait
          timer- 4
          ✓ wait (intermediateCatchEvent)
          + work (serviceTask)
          timer+ 6 deadline due=+5400000ms
          job+ 7 work type=work retries=3
          = running waiting=["work"] vars={}
        > fire deadline
          timer- 6
          job- 7
          ✗ work (serviceTask)
          + deadline (boundaryEvent)
          ✓ deadline (boundaryEvent)
          + late (endEvent)
          ✓ late (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={}
    "#]]);
}

#[test]
fn user_task_is_claimed_and_completed() {
    let wf = workflow(
        r#"<startEvent id="start"/><userTask id="review"><extensionElements><zeebe:assignmentDefinition candidateGroups="=groups"/></extensionElements></userTask>
        <endEvent id="end"/><sequenceFlow id="f1" sourceRef="start" targetRef="review"/><sequenceFlow id="f2" sourceRef="review" targetRef="end"/>"#,
    );
    let mut d = Driver::start(&wf, json!({"groups": ["sales", "ops"]}));
    let task = *d.state.user_tasks.keys().next().unwrap();
    d.input("claim ann", Input::AssignUserTask { task, assignee: Some("ann".into()), claim: true });
    d.input("claim bob", Input::AssignUserTask { task, assignee: Some("bob".into()), claim: true });
    d.input("complete", Input::CompleteUserTask { task, variables: vars(json!({"ok": true})) });
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + review (userTask)
          task+ 4 review assignee=None groups=["sales", "ops"]
          = running waiting=["review"] vars={"groups":["sales","ops"]}
        > claim ann
          task~ 4 assignee=Some("ann")
          = running waiting=["review"] vars={"groups":["sales","ops"]}
        > claim bob
          rejected task-claimed: user task 4 is already assigned to ann
        > complete
          task- 4 completed
          ✓ review (userTask)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"groups":["sales","ops"],"ok":true}
    "#]]);
}

#[test]
fn script_and_mappings_keep_task_variables_local() {
    let wf = workflow(
        r#"<startEvent id="start"/>
        <scriptTask id="double"><extensionElements><zeebe:script expression="=amount * 2" resultVariable="doubled"/></extensionElements></scriptTask>
        <serviceTask id="price"><extensionElements><zeebe:taskDefinition type="price"/><zeebe:ioMapping><zeebe:input source="=doubled + 1" target="price_in"/><zeebe:output source="=total" target="order_total"/></zeebe:ioMapping></extensionElements></serviceTask>
        <endEvent id="end"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="double"/><sequenceFlow id="f2" sourceRef="double" targetRef="price"/><sequenceFlow id="f3" sourceRef="price" targetRef="end"/>"#,
    );
    let mut d = Driver::start(&wf, json!({"amount": 20}));
    d.complete("price", json!({"total": 41}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + double (scriptTask)
          ✓ double (scriptTask)
          + price (serviceTask)
          job+ 5 price type=price retries=3
          = running waiting=["price"] vars={"amount":20,"doubled":40}
        > complete price
          job- 5
          ✓ price (serviceTask)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"amount":20,"doubled":40,"order_total":41}
    "#]]);
}

#[test]
fn terminate_end_event_ends_every_branch() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/><parallelGateway id="fork"/>{}{}<endEvent id="end_a"/><endEvent id="stop"><terminateEventDefinition/></endEvent>{}{}{}{}{}"#,
        task("a"),
        task("b"),
        flow("f1", "start", "fork"),
        flow("f2", "fork", "a"),
        flow("f3", "fork", "b"),
        flow("f4", "a", "end_a"),
        flow("f5", "b", "stop")
    ));
    let mut d = Driver::start(&wf, json!({}));
    d.complete("b", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + fork (parallelGateway)
          ✓ fork (parallelGateway)
          + a (serviceTask)
          + b (serviceTask)
          job+ 6 a type=a retries=3
          job+ 7 b type=b retries=3
          = running waiting=["a", "b"] vars={}
        > complete b
          job- 7
          ✓ b (serviceTask)
          + stop (endEvent)
          job- 6
          ✗ a (serviceTask)
          ✓ stop (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={}
    "#]]);
}

#[test]
fn suspend_cancel_and_modify() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/>{}{}<endEvent id="end"/>{}{}{}"#,
        task("a"),
        task("b"),
        flow("f1", "start", "a"),
        flow("f2", "a", "b"),
        flow("f3", "b", "end")
    ));
    let mut d = Driver::start(&wf, json!({}));
    d.input("suspend", Input::Suspend);
    let job = d.job("a");
    d.input("complete while suspended", Input::CompleteJob { job, variables: vars(json!({})), result: None });
    d.input("resume", Input::Resume);
    d.input("move a to b", Input::Modify { activate: vec!["b".into()], terminate: vec!["a".into()] });
    d.input("cancel", Input::Cancel { reason: Some("customer withdrew".into()) });
    assert_eq!(d.state.cancel_reason.as_deref(), Some("customer withdrew"));
    d.input("cancel again", Input::Cancel { reason: None });
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + a (serviceTask)
          job+ 4 a type=a retries=3
          = running waiting=["a"] vars={}
        > suspend
          · suspended p
          = suspended waiting=["a"] vars={}
        > complete while suspended
          rejected instance-suspended: instance i1 is suspended; no job can be completed or failed until it is resumed
        > resume
          · resumed p
          = running waiting=["a"] vars={}
        > move a to b
          · modified p
          + b (serviceTask)
          job- 4
          ✗ a (serviceTask)
          job+ 6 b type=b retries=3
          = running waiting=["b"] vars={}
        > cancel
          · cancelled p
          job- 6
          ✗ b (serviceTask)
          ✗ p (process)
          ended cancelled 
          = cancelled waiting=[] vars={}
        > cancel again
          rejected instance-ended: instance i1 has ended (cancelled)
    "#]]);
}

#[test]
fn a_cycle_without_a_wait_state_becomes_an_incident() {
    let wf = workflow(&format!(
        r#"<startEvent id="start"/><exclusiveGateway id="loop" default="again"/><endEvent id="end"/>{}{}{}"#,
        flow("f1", "start", "loop"),
        r#"<sequenceFlow id="again" sourceRef="loop" targetRef="loop"/>"#,
        conditional("out", "loop", "end", "=done")
    ));
    let d = Driver::start(&wf, json!({}));
    let incidents: Vec<_> = d.state.incidents.values().map(|i| (i.element_id.clone(), i.kind.name())).collect();
    assert_eq!(incidents, [("loop".to_string(), "step_limit")]);
    assert_eq!(d.state.status, engine::Status::Running);
    assert_eq!(d.state.element_instances.len(), 2, "the root and the parked token");
}

/// Memory cannot run away inside one input: a multi-instance whose
/// iterations finish at once, each giving a 10 KB output, stops once the
/// input has written `MAX_VARIABLES_BYTES` of variables, as a cycle stops at
/// its step budget: what is left is parked as an incident, no token lost.
#[test]
fn an_input_that_writes_too_many_variables_stops_as_a_cycle_does() {
    let wf = workflow(
        r#"<startEvent id="start"/>
        <task id="grow"><multiInstanceLoopCharacteristics isSequential="true"><extensionElements><zeebe:loopCharacteristics inputCollection="=for i in 1..3000 return i" inputElement="i" outputCollection="pages" outputElement="=string join(for j in 1..100 return &quot;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx&quot;, &quot;&quot;)"/></extensionElements></multiInstanceLoopCharacteristics></task>
        <endEvent id="end"/><sequenceFlow id="f1" sourceRef="start" targetRef="grow"/><sequenceFlow id="f2" sourceRef="grow" targetRef="end"/>"#,
    );
    let d = Driver::start(&wf, json!({}));
    let incidents: Vec<_> = d.state.incidents.values().map(|i| (i.element_id.as_str(), i.kind.name(), i.message.as_str())).collect();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!((incidents[0].0, incidents[0].1), ("grow", "step_limit"));
    assert!(incidents[0].2.contains("bytes of variables"), "{}", incidents[0].2);
    assert_eq!(d.state.status, engine::Status::Running);
    let bytes = d.state.variables_bytes();
    assert!(bytes < engine::MAX_VARIABLES_BYTES * 2, "{bytes}");
}

#[test]
fn multi_instance_collects_outputs_in_input_order() {
    let wf = workflow(
        r#"<startEvent id="start"/>
        <serviceTask id="work"><extensionElements><zeebe:taskDefinition type="work"/></extensionElements>
          <multiInstanceLoopCharacteristics><extensionElements><zeebe:loopCharacteristics inputCollection="=items" inputElement="item" outputCollection="results" outputElement="=item * 10"/></extensionElements></multiInstanceLoopCharacteristics></serviceTask>
        <endEvent id="end"/><sequenceFlow id="f1" sourceRef="start" targetRef="work"/><sequenceFlow id="f2" sourceRef="work" targetRef="end"/>"#,
    );
    let mut d = Driver::start(&wf, json!({"items": [1, 2]}));
    let jobs: Vec<u64> = d.state.jobs.keys().copied().collect();
    d.input("complete second", Input::CompleteJob { job: jobs[1], variables: vars(json!({})), result: None });
    d.input("complete first", Input::CompleteJob { job: jobs[0], variables: vars(json!({})), result: None });
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + work (multiInstanceBody)
          + work (serviceTask)
          + work (serviceTask) #2
          job+ 6 work type=work retries=3
          job+ 7 work type=work retries=3
          = running waiting=["work", "work"] vars={"items":[1,2]}
        > complete second
          job- 7
          ✓ work (serviceTask) #2
          = running waiting=["work"] vars={"items":[1,2]}
        > complete first
          job- 6
          ✓ work (serviceTask)
          ✓ work (multiInstanceBody)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"items":[1,2],"results":[10,20]}
    "#]]);
}

#[test]
fn a_rejected_input_leaves_the_state_untouched() {
    let wf = workflow(&format!(r#"<startEvent id="start"/>{}<endEvent id="end"/>{}{}"#, task("a"), flow("f1", "start", "a"), flow("f2", "a", "end")));
    let d = Driver::start(&wf, json!({}));
    let mut state = d.state.clone();
    let before = serde_json::to_string(&state).unwrap();
    let inputs = [
        Input::CompleteJob { job: 999, variables: vars(json!({})), result: None },
        Input::Resume,
        Input::TimerFired { timer: 1 },
        Input::ResolveIncident { incident: 5 },
        Input::Modify { activate: vec!["ghost".into()], terminate: vec![] },
        Input::Modify { activate: vec![], terminate: vec!["end".into()] },
    ];
    for input in inputs {
        let rejection = engine::step(&wf, &mut state, input.clone(), T0).expect_err("refused");
        assert_ne!(rejection.message, "", "{input:?}");
        assert_eq!(serde_json::to_string(&state).unwrap(), before, "{input:?} changed the state");
    }
    let job = d.job("a");
    engine::step(&wf, &mut state, Input::FailJob { job, retries: 0, message: "x".into(), backoff_ms: 0, variables: Default::default() }, T0).unwrap();
    let incident = *state.incidents.keys().next().unwrap();
    let rejection = engine::step(&wf, &mut state, Input::ResolveIncident { incident }, T0).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::RetriesExhausted);
}

#[test]
fn receive_task_with_a_message_boundary_and_a_repeating_timer() {
    let wf = workflow(
        r#"<startEvent id="start"/><receiveTask id="wait" messageRef="M1"/>
        <boundaryEvent id="remind" attachedToRef="wait" cancelActivity="false"><timerEventDefinition><timeCycle>R2/PT10M</timeCycle></timerEventDefinition></boundaryEvent>
        <boundaryEvent id="abort" attachedToRef="wait"><signalEventDefinition signalRef="S1"/></boundaryEvent>
        <endEvent id="end"/><endEvent id="reminded"/><endEvent id="aborted"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/><sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
        <sequenceFlow id="f3" sourceRef="remind" targetRef="reminded"/><sequenceFlow id="f4" sourceRef="abort" targetRef="aborted"/>"#,
    );
    let mut d = Driver::start(&wf, json!({"key": "k-1"}));
    d.fire_timer("remind");
    d.fire_timer("remind");
    d.correlate("wait", json!({"paid": true}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + wait (receiveTask)
          timer+ 4 remind due=+600000ms
          sub+ 5 abort Signal { name: "S1" }
          sub+ 6 wait Message { name: "M1", correlation_key: "k-1" }
          = running waiting=["wait"] vars={"key":"k-1"}
        > fire remind
          timer+ 4 remind due=+1200000ms
          + remind (boundaryEvent)
          ✓ remind (boundaryEvent)
          + reminded (endEvent)
          ✓ reminded (endEvent)
          = running waiting=["wait"] vars={"key":"k-1"}
        > fire remind
          timer- 4
          + remind (boundaryEvent)
          ✓ remind (boundaryEvent)
          + reminded (endEvent)
          ✓ reminded (endEvent)
          = running waiting=["wait"] vars={"key":"k-1"}
        > correlate wait
          sub- 6
          sub- 5
          ✓ wait (receiveTask)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"key":"k-1","paid":true}
    "#]]);
}

#[test]
fn event_based_gateway_closes_the_losers() {
    let wf = workflow(
        r#"<startEvent id="start"/><eventBasedGateway id="gw"/>
        <intermediateCatchEvent id="msg"><messageEventDefinition messageRef="M1"/></intermediateCatchEvent>
        <intermediateCatchEvent id="sig"><signalEventDefinition signalRef="S1"/></intermediateCatchEvent>
        <intermediateCatchEvent id="late"><timerEventDefinition><timeDuration>P1D</timeDuration></timerEventDefinition></intermediateCatchEvent>
        <endEvent id="end"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/><sequenceFlow id="f2" sourceRef="gw" targetRef="msg"/>
        <sequenceFlow id="f3" sourceRef="gw" targetRef="sig"/><sequenceFlow id="f4" sourceRef="gw" targetRef="late"/>
        <sequenceFlow id="f5" sourceRef="msg" targetRef="end"/><sequenceFlow id="f6" sourceRef="sig" targetRef="end"/><sequenceFlow id="f7" sourceRef="late" targetRef="end"/>"#,
    );
    let mut d = Driver::start(&wf, json!({"key": "k"}));
    d.correlate("sig", json!({"level": 2}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + gw (eventBasedGateway)
          sub+ 4 msg Message { name: "M1", correlation_key: "k" }
          sub+ 5 sig Signal { name: "S1" }
          timer+ 6 late due=+86400000ms
          = running waiting=["gw"] vars={"key":"k"}
        > correlate sig
          sub- 5
          timer- 6
          sub- 4
          ✓ gw (eventBasedGateway)
          + sig (intermediateCatchEvent)
          ✓ sig (intermediateCatchEvent)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"key":"k","level":2}
    "#]]);
}

#[test]
fn event_subprocess_and_escalation() {
    let wf = workflow(
        r#"<startEvent id="start"/>
        <subProcess id="sub"><startEvent id="s_start"/>
          <intermediateThrowEvent id="s_up"><escalationEventDefinition escalationRef="X1"/></intermediateThrowEvent>
          <userTask id="s_task"/><endEvent id="s_end"/>
          <sequenceFlow id="s1" sourceRef="s_start" targetRef="s_up"/><sequenceFlow id="s2" sourceRef="s_up" targetRef="s_task"/><sequenceFlow id="s3" sourceRef="s_task" targetRef="s_end"/>
        </subProcess>
        <endEvent id="end"/><sequenceFlow id="f1" sourceRef="start" targetRef="sub"/><sequenceFlow id="f2" sourceRef="sub" targetRef="end"/>
        <subProcess id="on_escalation" triggeredByEvent="true">
          <startEvent id="e_start" isInterrupting="false"><escalationEventDefinition escalationRef="X1"/></startEvent>
          <endEvent id="e_end"/><sequenceFlow id="e1" sourceRef="e_start" targetRef="e_end"/>
        </subProcess>
        <subProcess id="on_signal" triggeredByEvent="true">
          <startEvent id="g_start"><signalEventDefinition signalRef="S1"/></startEvent>
          <endEvent id="g_end"/><sequenceFlow id="g1" sourceRef="g_start" targetRef="g_end"/>
        </subProcess>"#,
    );
    let mut d = Driver::start(&wf, json!({}));
    d.correlate("g_start", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          sub+ 2 g_start Signal { name: "S1" }
          + start (startEvent)
          ✓ start (startEvent)
          + sub (subProcess)
          + s_start (startEvent)
          ✓ s_start (startEvent)
          + s_up (intermediateThrowEvent)
          + on_escalation (subProcess)
          + e_start (startEvent)
          ✓ e_start (startEvent)
          ✓ s_up (intermediateThrowEvent)
          + e_end (endEvent)
          + s_task (userTask)
          task+ 11 s_task assignee=None groups=[]
          ✓ e_end (endEvent)
          ✓ on_escalation (subProcess)
          = running waiting=["s_task"] vars={}
        > correlate g_start
          sub- 2
          task- 11
          ✗ s_task (userTask)
          ✗ sub (subProcess)
          + on_signal (subProcess)
          + g_start (startEvent)
          ✓ g_start (startEvent)
          + g_end (endEvent)
          ✓ g_end (endEvent)
          ✓ on_signal (subProcess)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={}
    "#]]);
}

#[test]
fn link_events_and_a_standard_loop() {
    let wf = workflow(
        r#"<startEvent id="start"/><intermediateThrowEvent id="go"><linkEventDefinition name="L"/></intermediateThrowEvent>
        <intermediateCatchEvent id="here"><linkEventDefinition name="L"/></intermediateCatchEvent>
        <serviceTask id="again"><extensionElements><zeebe:taskDefinition type="again"/></extensionElements>
          <standardLoopCharacteristics><loopCondition>=loopCounter &lt; 2</loopCondition></standardLoopCharacteristics></serviceTask>
        <endEvent id="end"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="go"/><sequenceFlow id="f2" sourceRef="here" targetRef="again"/><sequenceFlow id="f3" sourceRef="again" targetRef="end"/>"#,
    );
    let mut d = Driver::start(&wf, json!({}));
    d.complete("again", json!({}));
    d.complete("again", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + go (intermediateThrowEvent)
          ✓ go (intermediateThrowEvent)
          + here (intermediateCatchEvent)
          ✓ here (intermediateCatchEvent)
          + again (serviceTask)
          job+ 6 again type=again retries=3
          = running waiting=["again"] vars={}
        > complete again
          job- 6
          ✓ again (serviceTask)
          + again (serviceTask) #2
          job+ 8 again type=again retries=3
          = running waiting=["again"] vars={}
        > complete again
          job- 8
          ✓ again (serviceTask) #2
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={}
    "#]]);
}

#[test]
fn call_activity_starts_a_child_and_takes_its_variables() {
    let wf = workflow(
        r#"<startEvent id="start"/><callActivity id="call"><extensionElements><zeebe:calledElement processId="child"/></extensionElements></callActivity>
        <endEvent id="end"/><sequenceFlow id="f1" sourceRef="start" targetRef="call"/><sequenceFlow id="f2" sourceRef="call" targetRef="end"/>"#,
    );
    let mut d = Driver::start(&wf, json!({"x": 1}));
    let call = d.state.element_instances.values().find(|ei| ei.element_id == "call").unwrap().key;
    d.input("child completed", Input::ChildCompleted { element_instance: call, variables: vars(json!({"y": 2})) });
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + call (callActivity)
          start-child i1/3 child
          = running waiting=["call"] vars={"x":1}
        > child completed
          ✓ call (callActivity)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={"x":1,"y":2}
    "#]]);
}

#[test]
fn sequential_multi_instance_runs_one_iteration_at_a_time() {
    let wf = workflow(
        r#"<startEvent id="start"/>
        <serviceTask id="step"><extensionElements><zeebe:taskDefinition type="step"/></extensionElements>
          <multiInstanceLoopCharacteristics isSequential="true"><loopCardinality>=2</loopCardinality></multiInstanceLoopCharacteristics></serviceTask>
        <endEvent id="end"/><sequenceFlow id="f1" sourceRef="start" targetRef="step"/><sequenceFlow id="f2" sourceRef="step" targetRef="end"/>"#,
    );
    let mut d = Driver::start(&wf, json!({}));
    d.complete("step", json!({}));
    d.complete("step", json!({}));
    check(&d.trace, expect![[r#"
        > start
          + p (process)
          + start (startEvent)
          ✓ start (startEvent)
          + step (multiInstanceBody)
          + step (serviceTask)
          job+ 5 step type=step retries=3
          = running waiting=["step"] vars={}
        > complete step
          job- 5
          ✓ step (serviceTask)
          + step (serviceTask) #2
          job+ 7 step type=step retries=3
          = running waiting=["step"] vars={}
        > complete step
          job- 7
          ✓ step (serviceTask) #2
          ✓ step (multiInstanceBody)
          + end (endEvent)
          ✓ end (endEvent)
          ✓ p (process)
          ended completed 
          = completed waiting=[] vars={}
    "#]]);
}
