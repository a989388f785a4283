//! `engine::waits`: what each waiting token waits for, read from the state.

use serde_json::json;

use crate::support::{workflow, Driver, T0};

const DAY: i64 = 86_400_000;

#[test]
fn an_event_based_gateway_waits_on_each_of_its_events() {
    let wf = workflow(
        r#"<startEvent id="start"/><eventBasedGateway id="gw" name="First answer"/>
        <intermediateCatchEvent id="msg"><messageEventDefinition messageRef="M1"/></intermediateCatchEvent>
        <intermediateCatchEvent id="sig"><signalEventDefinition signalRef="S1"/></intermediateCatchEvent>
        <intermediateCatchEvent id="late" name="A day"><timerEventDefinition><timeDuration>P1D</timeDuration></timerEventDefinition></intermediateCatchEvent>
        <endEvent id="end"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="gw"/><sequenceFlow id="f2" sourceRef="gw" targetRef="msg"/>
        <sequenceFlow id="f3" sourceRef="gw" targetRef="sig"/><sequenceFlow id="f4" sourceRef="gw" targetRef="late"/>
        <sequenceFlow id="f5" sourceRef="msg" targetRef="end"/><sequenceFlow id="f6" sourceRef="sig" targetRef="end"/><sequenceFlow id="f7" sourceRef="late" targetRef="end"/>"#,
    );
    let d = Driver::start(&wf, json!({"key": "k-1"}));
    let waits = engine::waits(&wf, &d.state);
    assert_eq!(waits.len(), 1);
    let gateway = &waits[0];
    assert_eq!((gateway.element.as_str(), gateway.element_name.as_deref(), gateway.kind), ("gw", Some("First answer"), "gateway"));
    let events: Vec<(&str, &str)> = gateway.events.iter().map(|e| (e.element.as_str(), e.kind)).collect();
    assert_eq!(events.len(), 3);
    for expected in [("msg", "message"), ("sig", "signal"), ("late", "timer")] {
        assert!(events.contains(&expected), "{events:?}");
    }
    let timer = gateway.events.iter().find(|e| e.kind == "timer").unwrap();
    assert_eq!((timer.due_at, timer.element_name.as_deref()), (Some(T0 + DAY), Some("A day")));
    let message = gateway.events.iter().find(|e| e.kind == "message").unwrap();
    assert_eq!((message.message.as_deref(), message.correlation_key.as_deref()), (Some("M1"), Some("k-1")));
}

#[test]
fn an_event_subprocess_start_waits_beside_the_tasks_and_a_call_waits_for_its_child() {
    let wf = workflow(
        r#"<startEvent id="start"/><parallelGateway id="fork"/>
        <callActivity id="call"><extensionElements><zeebe:calledElement processId="child"/></extensionElements></callActivity>
        <userTask id="review"/>
        <subProcess id="escalate" triggeredByEvent="true">
          <startEvent id="weekly" isInterrupting="false"><timerEventDefinition><timeCycle>R/P7D</timeCycle></timerEventDefinition></startEvent>
          <endEvent id="escalated"/><sequenceFlow id="e1" sourceRef="weekly" targetRef="escalated"/>
        </subProcess>
        <endEvent id="end1"/><endEvent id="end2"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="fork"/><sequenceFlow id="f2" sourceRef="fork" targetRef="call"/>
        <sequenceFlow id="f3" sourceRef="fork" targetRef="review"/><sequenceFlow id="f4" sourceRef="call" targetRef="end1"/>
        <sequenceFlow id="f5" sourceRef="review" targetRef="end2"/>"#,
    );
    let d = Driver::start(&wf, json!({}));
    let waits = engine::waits(&wf, &d.state);
    let kinds: Vec<(&str, &str)> = waits.iter().map(|w| (w.element.as_str(), w.kind)).collect();
    assert_eq!(kinds, [("weekly", "timer"), ("call", "call"), ("review", "user_task")], "in element instance order");
    let weekly = waits[0].event.as_ref().unwrap();
    assert_eq!((weekly.due_at, weekly.repeats, weekly.repetitions_left), (Some(T0 + 7 * DAY), true, None), "forever");
    assert!(waits[1].child.as_deref().is_some_and(|child| child.starts_with("i1/")));
    assert!(waits[2].task.is_some());
}
