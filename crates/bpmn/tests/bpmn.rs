//! The BPMN importer against real files, hostile files and one fixture per diagnostic.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpmn::{import, Diagnostic, Kind, Property, Severity, TaskKind, Throw, Trigger};

/// Counts the bytes this test process holds, to weigh a compiled model
/// (nextest runs each test in a process of its own).
struct Counting;

static HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HELD.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// Wraps process content in a definitions element with the usual namespaces.
fn model(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d">
{body}
</bpmn:definitions>"#
    )
}

fn errors(xml: &str) -> Vec<Diagnostic> {
    import(xml).diagnostics.into_iter().filter(|d| d.severity == Severity::Error).collect()
}

#[track_caller]
fn assert_error(xml: &str, code: &str, element: &str) {
    let errors = errors(xml);
    assert!(
        errors.iter().any(|d| d.code == code && d.element.as_deref() == Some(element) && d.line > 0),
        "expected {code} on {element}, got {errors:#?}"
    );
}

fn bpmn_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the corpus folder is readable") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            bpmn_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "bpmn") {
            out.push(path);
        }
    }
}

#[test]
fn every_miwg_file_is_read_quickly_without_panic() {
    let corpus = shared().join("corpus/miwg");
    let mut files = Vec::new();
    bpmn_files(&corpus, &mut files);
    assert!(files.len() > 800, "the MIWG corpus should hold over 800 models, found {} in {}", files.len(), corpus.display());
    let mut references = 0;
    let mut malformed = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let started = Instant::now();
        let diagnostics = match bpmn::decode(&bytes) {
            Ok(xml) => import(&xml).diagnostics,
            Err(diagnostic) => vec![diagnostic],
        };
        assert!(started.elapsed() < Duration::from_secs(1), "{} took {:?}", file.display(), started.elapsed());
        let xml_problems: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.code.starts_with("xml-")).collect();
        for problem in &xml_problems {
            assert!(problem.line > 0 && problem.column > 0, "{}: {problem} has no position", file.display());
        }
        malformed += usize::from(!xml_problems.is_empty());
        if file.components().any(|c| c.as_os_str() == "Reference") {
            references += 1;
            assert!(xml_problems.is_empty(), "{}: a reference model gave XML errors: {xml_problems:?}", file.display());
        }
    }
    assert_eq!(references, 21);
    assert_eq!(malformed, 4, "the four GenMyModel files with Latin-1 bytes in UTF-8 are the malformed ones");
}

#[test]
fn hostile_xml_is_refused_quickly() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><definitions>&lol2;</definitions>"#;
    assert_eq!(errors(bomb)[0].code, "xml-dtd");
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let started = Instant::now();
    assert_eq!(errors(&deep)[0].code, "xml-too-deep");
    assert!(started.elapsed() < Duration::from_secs(2));
    let huge = model(&format!("<!-- {} -->", "x".repeat(9 * 1024 * 1024)));
    assert_eq!(errors(&huge)[0].code, "xml-too-large");
    let malformed = errors("<bpmn:definitions><bpmn:process id='p'>");
    assert_eq!(malformed[0].code, "xml-malformed");
    assert!(malformed[0].line >= 1);
    assert_eq!(errors("<html/>")[0].code, "not-bpmn");
    assert_eq!(errors("")[0].code, "xml-malformed");
}

/// Line and column of a diagnostic far into a file, past lines of
/// multi-byte text: the column counts characters, as editors do.
#[test]
fn positions_count_lines_and_characters_far_into_a_file() {
    let filler = "<!-- ééé ünïcödé -->\n".repeat(300);
    let xml = model(&format!(
        "<bpmn:process id=\"p\" isExecutable=\"true\">\n{filler}<bpmn:startEvent id=\"s\"/>\n<!-- é -->  <bpmn:sequenceFlow id=\"f\" sourceRef=\"s\" targetRef=\"nowhere\"/></bpmn:process>"
    ));
    let flow = errors(&xml).into_iter().find(|d| d.element.as_deref() == Some("f")).expect("the dangling flow is reported");
    // Line 1 is the XML declaration, 2 <definitions>, 3 <process>, then the filler and the start event.
    assert_eq!((flow.line, flow.column), (3 + 300 + 2, 13));
}

/// A valid model of about `elements` elements and flows, in units of eleven
/// that exercise what the importer links and checks across a whole process:
/// a service task (every fourth with an output mapping), an error boundary event leading to
/// an error end event (caught by the process's event subprocess), a
/// compensation boundary event with its handler and association, and a pair
/// of link events carrying the flow on to the next unit.
fn generated_model(elements: usize) -> String {
    let mut body = String::from(
        r#"<error id="err" errorCode="E"/><process id="big" isExecutable="true"><startEvent id="s"/>
<subProcess id="catcher" triggeredByEvent="true"><startEvent id="cs"><errorEventDefinition errorRef="err"/></startEvent><endEvent id="ce"/><sequenceFlow id="cf" sourceRef="cs" targetRef="ce"/></subProcess>"#,
    );
    let mut previous = "s".to_string();
    for i in 0..elements / 11 {
        let mapping = if i % 4 == 0 { format!(r#"<zeebe:ioMapping><zeebe:output source="=x+{i}" target="y"/></zeebe:ioMapping>"#) } else { String::new() };
        body.push_str(&format!(
            r#"<serviceTask id="t{i}"><extensionElements><zeebe:taskDefinition type="w"/>{mapping}</extensionElements></serviceTask><sequenceFlow id="f{i}" sourceRef="{previous}" targetRef="t{i}"/><boundaryEvent id="b{i}" attachedToRef="t{i}"><errorEventDefinition errorRef="err"/></boundaryEvent><sequenceFlow id="g{i}" sourceRef="b{i}" targetRef="e{i}"/><endEvent id="e{i}"><errorEventDefinition errorRef="err"/></endEvent><boundaryEvent id="c{i}" attachedToRef="t{i}"><compensateEventDefinition/></boundaryEvent><task id="h{i}" isForCompensation="true"/><association id="a{i}" sourceRef="c{i}" targetRef="h{i}"/><intermediateThrowEvent id="m{i}"><linkEventDefinition name="L{i}"/></intermediateThrowEvent><sequenceFlow id="l{i}" sourceRef="t{i}" targetRef="m{i}"/><intermediateCatchEvent id="n{i}"><linkEventDefinition name="L{i}"/></intermediateCatchEvent>"#
        ));
        previous = format!("n{i}");
    }
    body.push_str(&format!(r#"<endEvent id="end"/><sequenceFlow id="fe" sourceRef="{previous}" targetRef="end"/></process>"#));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">{body}</definitions>"#
    )
}

/// Reading a model costs work in proportion to its size. Counted, not timed:
/// the importer's own count of what it visited, searched and counted, per
/// element, stays the same from 1 000 to 100 000 elements. (Positions were
/// once counted from the start of the file for every element, and a 16 000
/// task model took 14 s to validate.)
#[test]
fn reading_a_model_costs_work_in_proportion_to_its_size() {
    let mut per_element = Vec::new();
    for elements in [1_000, 10_000, 100_000] {
        let xml = generated_model(elements);
        let import = import(&xml);
        let problems: Vec<_> = import.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        assert!(problems.is_empty(), "{elements}: {problems:?}");
        let workflow = &import.definitions.as_ref().unwrap().workflows[0];
        let size = workflow.elements.len() + workflow.flows.len();
        assert!(size >= elements * 9 / 10, "{elements} asked for, {size} made");
        per_element.push((size, xml.len(), import.work as f64 / size as f64));
    }
    let (_, _, smallest) = per_element[0];
    for &(size, bytes, work) in &per_element {
        assert!(work < smallest * 1.2, "work per element grows: {per_element:?} ({size} elements, {bytes} bytes)");
    }
}

/// A server holds every version ever deployed compiled, so a compiled
/// element must stay small: this model's held 986 bytes apiece (vectors with
/// room to grow, a user task's and a multi-instance's definitions inline in
/// every element), now 485.
#[test]
fn a_compiled_model_holds_little_per_element() {
    let xml = generated_model(10_000);
    let before = HELD.load(std::sync::atomic::Ordering::Relaxed);
    let workflows = import(&xml).into_workflows().unwrap();
    let held = HELD.load(std::sync::atomic::Ordering::Relaxed) - before;
    let size = workflows[0].elements.len() + workflows[0].flows.len();
    let per_element = held / size;
    println!("{held} bytes held for {size} elements and flows: {per_element} each");
    assert!(per_element < 600, "a compiled element holds {per_element} bytes");
}

const VALID: &str = r#"<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="start"/>
  <bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="work" retries="5"/></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:endEvent id="end"/>
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
  <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
</bpmn:process>"#;

#[test]
fn a_valid_model_has_no_diagnostics() {
    let result = import(&model(VALID));
    assert_eq!(result.diagnostics, vec![]);
    let workflows = result.into_workflows().unwrap();
    assert_eq!(workflows.len(), 1);
    assert_eq!(workflows[0].process_id, "p");
}

#[test]
fn each_structural_problem_has_its_code() {
    let missing_target = VALID.replace(r#"targetRef="end""#, r#"targetRef="nowhere""#);
    assert_error(&model(&missing_target), "flow-target-missing", "f2");
    let gateway = r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:exclusiveGateway id="gw"/>
        <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="gw"/></bpmn:process>"#;
    assert_error(&model(gateway), "gateway-no-outgoing", "gw");
    let split = r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:exclusiveGateway id="gw"/>
        <bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>
        <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="gw"/>
        <bpmn:sequenceFlow id="a" sourceRef="gw" targetRef="e1"/>
        <bpmn:sequenceFlow id="b" sourceRef="gw" targetRef="e2"/></bpmn:process>"#;
    assert_error(&model(split), "gateway-flow-unconditioned", "a");
    assert_error(&model(split), "gateway-flow-unconditioned", "b");
    let timer = r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/>
        <bpmn:intermediateCatchEvent id="t"><bpmn:timerEventDefinition><bpmn:timeDuration>soon</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
        <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/></bpmn:process>"#;
    assert_error(&model(timer), "timer-invalid", "t");
    let complex = r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:complexGateway id="cx"/></bpmn:process>"#;
    assert_error(&model(complex), "unsupported-element", "cx");
    let juel = VALID.replace(r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>"#,
        r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"><bpmn:conditionExpression>${amount > 5}</bpmn:conditionExpression></bpmn:sequenceFlow>"#);
    assert_error(&model(&juel), "expression-juel", "f2");
    let untyped = VALID.replace(r#"<bpmn:extensionElements><zeebe:taskDefinition type="work" retries="5"/></bpmn:extensionElements>"#, "");
    assert_error(&model(&untyped), "job-type-missing", "task");
    let java = VALID.replace(r#"<bpmn:serviceTask id="task">"#, r#"<bpmn:serviceTask id="task" camunda:class="org.Example">"#)
        .replace(r#"<bpmn:extensionElements><zeebe:taskDefinition type="work" retries="5"/></bpmn:extensionElements>"#, "");
    assert!(errors(&model(&java)).iter().any(|d| d.code == "job-type-missing" && d.message.contains("Java delegate")));
    let not_executable = VALID.replace(r#"isExecutable="true""#, r#"isExecutable="false""#);
    assert_eq!(errors(&model(&not_executable)).iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["no-executable-process"]);
    let duplicate = VALID.replace(r#"<bpmn:endEvent id="end"/>"#, r#"<bpmn:endEvent id="end"/><bpmn:endEvent id="end"/>"#);
    assert_error(&model(&duplicate), "duplicate-id", "end");
}

#[test]
fn every_problem_is_reported_at_once() {
    let xml = model(r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/>
        <bpmn:exclusiveGateway id="gw"/>
        <bpmn:intermediateCatchEvent id="t"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1X</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
        <bpmn:scriptTask id="sc"><bpmn:extensionElements><zeebe:script expression="=1 +" resultVariable="x"/></bpmn:extensionElements></bpmn:scriptTask>
        <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="gw"/>
        <bpmn:sequenceFlow id="f2" sourceRef="s" targetRef="ghost"/>
        <bpmn:sequenceFlow id="f3" sourceRef="s" targetRef="t"/>
        <bpmn:sequenceFlow id="f4" sourceRef="t" targetRef="sc"/></bpmn:process>"#);
    let mut codes: Vec<String> = errors(&xml).into_iter().map(|d| format!("{}@{}", d.code, d.element.unwrap_or_default())).collect();
    codes.sort();
    assert_eq!(codes, ["expression-invalid@sc", "flow-target-missing@f2", "gateway-no-outgoing@gw", "timer-invalid@t"]);
}

#[test]
fn zeebe_extensions_are_read() {
    let xml = model(r#"<bpmn:message id="m" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>
<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:serviceTask id="job"><bpmn:extensionElements>
    <zeebe:taskDefinition type="=&quot;charge-&quot; + region" retries="=2"/>
    <zeebe:taskHeaders><zeebe:header key="k" value="v"/></zeebe:taskHeaders>
    <zeebe:ioMapping><zeebe:input source="=amount" target="total"/><zeebe:output source="=receipt" target="lastReceipt"/></zeebe:ioMapping>
  </bpmn:extensionElements>
  <bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:extensionElements>
    <zeebe:loopCharacteristics inputCollection="=items" inputElement="item" outputCollection="out" outputElement="=result"/>
  </bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics></bpmn:serviceTask>
  <bpmn:userTask id="user"><bpmn:extensionElements>
    <zeebe:assignmentDefinition assignee="=owner" candidateGroups="sales, support"/>
    <zeebe:taskSchedule dueDate="2026-02-01T00:00:00Z"/><zeebe:userTask/>
  </bpmn:extensionElements></bpmn:userTask>
  <bpmn:receiveTask id="wait" messageRef="m"/>
  <bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="child" propagateAllChildVariables="false"/></bpmn:extensionElements></bpmn:callActivity>
  <bpmn:endEvent id="e"/>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="job"/>
  <bpmn:sequenceFlow id="f2" sourceRef="job" targetRef="user"/>
  <bpmn:sequenceFlow id="f3" sourceRef="user" targetRef="wait"/>
  <bpmn:sequenceFlow id="f4" sourceRef="wait" targetRef="call"/>
  <bpmn:sequenceFlow id="f5" sourceRef="call" targetRef="e"/>
</bpmn:process>"#);
    let result = import(&xml);
    assert!(!result.has_errors(), "{:#?}", result.diagnostics);
    let workflow = &result.into_workflows().unwrap()[0];
    let job = workflow.element("job").unwrap();
    let Kind::Task(TaskKind::Job(definition)) = &job.kind else { panic!("a job task: {:?}", job.kind) };
    assert!(matches!(&definition.job_type, Property::Expression(e) if e.source() == r#""charge-" + region"#));
    assert_eq!(definition.headers, [("k".to_string(), "v".to_string())]);
    assert_eq!((job.inputs[0].target.as_str(), job.outputs[0].target.as_str()), ("total", "lastReceipt"));
    let Some(bpmn::LoopCharacteristics::MultiInstance(mi)) = &job.loop_characteristics else { panic!("multi-instance") };
    assert!(mi.sequential && mi.input_element.as_deref() == Some("item") && mi.output_collection.as_deref() == Some("out"));
    let Kind::Task(TaskKind::User(user)) = &workflow.element("user").unwrap().kind else { panic!("a user task") };
    assert_eq!(user.candidate_groups, Some(Property::Literal("sales, support".into())));
    assert!(matches!(&user.assignee, Some(Property::Expression(e)) if e.source() == "owner"));
    let Kind::Task(TaskKind::Receive(message)) = &workflow.element("wait").unwrap().kind else { panic!("a receive task") };
    assert_eq!(message.name, Property::Literal("paid".into()));
    let Kind::CallActivity(call) = &workflow.element("call").unwrap().kind else { panic!("a call activity") };
    assert!(!call.propagate_all_child_variables && call.propagate_all_parent_variables);
}

#[test]
fn camunda_7_attributes_and_any_prefix_are_read() {
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:c7="http://camunda.org/schema/1.0/bpmn" id="d">
  <process id="p" isExecutable="true">
    <startEvent id="s"/>
    <serviceTask id="ext" c7:type="external" c7:topic="invoice"/>
    <userTask id="approve" c7:assignee="demo" c7:candidateGroups="management" c7:candidateUsers="ann,bob" c7:dueDate="2026-03-01T00:00:00Z"/>
    <endEvent id="e"><terminateEventDefinition/></endEvent>
    <sequenceFlow id="f1" sourceRef="s" targetRef="ext"/>
    <sequenceFlow id="f2" sourceRef="ext" targetRef="approve"/>
    <sequenceFlow id="f3" sourceRef="approve" targetRef="e"/>
  </process>
</definitions>"#;
    let result = import(xml);
    assert!(!result.has_errors(), "{:#?}", result.diagnostics);
    let workflow = &result.into_workflows().unwrap()[0];
    let Kind::Task(TaskKind::Job(job)) = &workflow.element("ext").unwrap().kind else { panic!("an external task") };
    assert_eq!((job.job_type.clone(), job.retries.clone()), (Property::Literal("invoice".into()), Property::Literal("3".into())));
    let Kind::Task(TaskKind::User(user)) = &workflow.element("approve").unwrap().kind else { panic!("a user task") };
    assert_eq!(user.assignee, Some(Property::Literal("demo".into())));
    assert_eq!(user.candidate_users, Some(Property::Literal("ann,bob".into())));
    assert_eq!(user.due_date, Some(Property::Literal("2026-03-01T00:00:00Z".into())));
    assert!(matches!(workflow.element("e").unwrap().kind, Kind::EndEvent(Throw::Terminate)));
}

#[test]
fn several_processes_and_the_diagram_are_kept() {
    let xml = std::fs::read_to_string(shared().join("conformance/cases/02-exclusive-gateway/xor.bpmn")).unwrap();
    let workflows = import(&xml).into_workflows().unwrap();
    assert_eq!(workflows.iter().map(|w| w.process_id.as_str()).collect::<Vec<_>>(), ["xor", "xor_nodefault"]);
    let camunda = std::fs::read(shared().join("corpus/miwg/bpmn.io (Camunda Modeler) 18.6.1/A.1.0-export.bpmn")).unwrap();
    let definitions = import(&bpmn::decode(&camunda).unwrap()).definitions.unwrap();
    assert!(!definitions.diagram.shapes.is_empty() && !definitions.diagram.edges.is_empty());
    let flow = definitions.workflows[0].flows[0].id.clone();
    assert!(definitions.diagram.edges[&flow].len() >= 2, "an edge has its waypoints");
}

#[test]
fn timer_triggers_keep_their_kind() {
    let xml = std::fs::read_to_string(shared().join("conformance/cases/05-timers/timers.bpmn")).unwrap();
    let workflows = import(&xml).into_workflows().unwrap();
    let deadline = workflows.iter().find(|w| w.process_id == "deadline").unwrap();
    let Kind::Boundary { trigger: Trigger::Timer(bpmn::timer::TimerDefinition::Cycle(_)), cancel_activity: false, attached_to } =
        &deadline.element("reminder").unwrap().kind
    else {
        panic!("a non-interrupting cycle boundary timer")
    };
    assert_eq!(deadline.elements[*attached_to].id, "approve");
}

#[test]
fn every_diagnostic_code_is_documented() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagnostics.md")).unwrap();
    let mut codes = vec!["flow-source-missing", "flow-target-missing", "error-missing", "escalation-missing"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for file in ["src/read.rs", "src/decode.rs", "../cli/src/validate.rs"] {
        let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        for call in ["Diagnostic::error(", "Diagnostic::warning("] {
            for (at, _) in source.match_indices(call) {
                let argument = source[at + call.len()..].trim_start();
                if let Some(rest) = argument.strip_prefix('"') {
                    codes.push(rest[..rest.find('"').unwrap()].to_string());
                }
            }
        }
    }
    codes.sort();
    codes.dedup();
    assert!(codes.len() > 30, "found only {codes:?}");
    for code in codes {
        assert!(docs.contains(&format!("`{code}`")), "docs/diagnostics.md has no section for `{code}`");
    }
}

#[test]
fn a_condition_that_does_not_parse_is_reported_once_at_its_flow() {
    let xml = std::fs::read_to_string(shared().join("conformance/cases/16-deploy-errors/badexpr.bpmn")).unwrap();
    let errors = errors(&xml);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].code.as_str(), errors[0].element.as_deref(), errors[0].line), ("expression-invalid", Some("broken_condition"), 9));
}

/// Issue 9, item 1: BPMN 2.0.2 makes `id` optional on what nothing
/// references; an id-less flow or element gets a stable id from its place.
#[test]
fn elements_without_an_id_get_a_stable_one_from_their_place() {
    let xml = model(
        r#"<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:exclusiveGateway id="gw" default="f_default"/>
  <bpmn:endEvent id="e1"/>
  <bpmn:endEvent id="e2"/>
  <bpmn:sequenceFlow sourceRef="s" targetRef="gw"/>
  <bpmn:sequenceFlow sourceRef="gw" targetRef="e1"><bpmn:conditionExpression>=x &gt; 1</bpmn:conditionExpression></bpmn:sequenceFlow>
  <bpmn:sequenceFlow id="f_default" sourceRef="gw" targetRef="e2"/>
  <bpmn:task/>
</bpmn:process>"#,
    );
    let result = import(&xml);
    let found_errors: Vec<_> = result.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert!(found_errors.is_empty(), "{found_errors:#?}");
    let workflow = &result.into_workflows().unwrap()[0];
    let flow_ids: Vec<&str> = workflow.flows.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(flow_ids, ["sequenceFlow@8:3", "sequenceFlow@9:3", "f_default"]);
    assert!(workflow.element_by_id.contains_key("task@11:3"), "{:?}", workflow.element_by_id.keys());
    // The same file gives the same ids.
    let again = import(&xml).into_workflows().unwrap();
    assert_eq!(again[0].flows[0].id, "sequenceFlow@8:3");
    // Only a reference to an id that does not exist is an error, named as written.
    let dangling = xml.replace(r#"targetRef="e1""#, r#"targetRef="e9""#);
    let reported = errors(&dangling);
    assert_eq!(reported.len(), 1, "{reported:#?}");
    assert_eq!((reported[0].code.as_str(), reported[0].element.as_deref()), ("flow-target-missing", Some("sequenceFlow@9:3")));
    assert!(reported[0].message.contains("'e9'"), "{}", reported[0].message);
}

/// Issue 9, item 2: references are QNames; a prefix bound to the
/// definitions' targetNamespace names an element of this file.
#[test]
fn prefixed_references_resolve_through_the_target_namespace() {
    let xml = |message_ref: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:tns="http://example.com/billing" xmlns:other="http://example.com/other"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" targetNamespace="http://example.com/billing" id="d">
  <message id="invoice" name="invoice"/>
  <error id="late" errorCode="LATE"/>
  <signal id="stop" name="stop"/>
  <escalation id="up" escalationCode="UP"/>
  <process id="billing" isExecutable="true">
    <startEvent id="start"><messageEventDefinition messageRef="{message_ref}"/></startEvent>
    <serviceTask id="work" default="tns:f2"><extensionElements><zeebe:taskDefinition type="w"/></extensionElements></serviceTask>
    <boundaryEvent id="caught" attachedToRef="tns:work"><errorEventDefinition errorRef="tns:late"/></boundaryEvent>
    <boundaryEvent id="stopped" attachedToRef="tns:work"><signalEventDefinition signalRef="tns:stop"/></boundaryEvent>
    <intermediateThrowEvent id="raise"><escalationEventDefinition escalationRef="tns:up"/></intermediateThrowEvent>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="tns:start" targetRef="tns:work"/>
    <sequenceFlow id="f2" sourceRef="tns:work" targetRef="raise"/>
    <sequenceFlow id="f3" sourceRef="raise" targetRef="tns:end"/>
    <sequenceFlow id="f4" sourceRef="caught" targetRef="end"/>
    <sequenceFlow id="f5" sourceRef="stopped" targetRef="end"/>
  </process>
</definitions>"#
        )
    };
    let result = import(&xml("tns:invoice"));
    let found_errors: Vec<_> = result.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert!(found_errors.is_empty(), "{found_errors:#?}");
    let workflow = &result.into_workflows().unwrap()[0];
    let work = workflow.element_by_id["work"];
    assert_eq!(workflow.elements[work].boundary_events.len(), 2);
    assert_eq!(workflow.elements[work].default_flow.map(|f| workflow.flows[f].id.as_str()), Some("f2"));
    let caught = &workflow.elements[workflow.element_by_id["caught"]];
    assert!(matches!(&caught.kind, Kind::Boundary { trigger: Trigger::Error { code: Some(c) }, .. } if c == "LATE"));
    // A prefix bound elsewhere, or bound to nothing, is reported as that reference, as written, and alone.
    for unresolvable in ["other:invoice", "nope:invoice"] {
        let reported = errors(&xml(unresolvable));
        assert_eq!(reported.len(), 1, "{reported:#?}");
        assert_eq!(reported[0].code, "message-missing");
        assert!(reported[0].message.contains(&format!("'{unresolvable}'")), "{}", reported[0].message);
    }
}

/// Issue 9, item 8: JUEL is reported as JUEL wherever it appears, with the
/// FEEL to write when the translation is plain; another condition language as such.
#[test]
fn juel_and_other_languages_are_named_as_such() {
    let multi = |cardinality: &str, completion: &str| {
        model(&format!(
            r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/>
  <bpmn:task id="each"><bpmn:multiInstanceLoopCharacteristics>
    <bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>
    <bpmn:completionCondition>{completion}</bpmn:completionCondition>
  </bpmn:multiInstanceLoopCharacteristics></bpmn:task>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="each"/></bpmn:process>"#
        ))
    };
    let reported = errors(&multi("${count}", "${nrOfCompletedInstances == nrOfInstances}"));
    let codes: Vec<&str> = reported.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["expression-juel", "expression-juel"], "{reported:#?}");
    assert!(reported[0].message.contains("write '=count' instead"), "{}", reported[0].message);
    assert!(reported[1].message.contains("write '=numberOfCompletedInstances = numberOfInstances' instead"), "{}", reported[1].message);
    let hash = errors(&multi("#{items.size()}", "=true"));
    assert_eq!(hash.len(), 1);
    assert_eq!(hash[0].code, "expression-juel");
    assert!(!hash[0].message.contains("instead"), "no plain translation of a method call: {}", hash[0].message);
    let negated = VALID.replace(r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>"#,
        r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"><bpmn:conditionExpression>${!approved &amp;&amp; amount &gt;= 10}</bpmn:conditionExpression></bpmn:sequenceFlow>"#);
    assert_error(&model(&negated), "expression-juel", "f2");
    let and = VALID.replace(r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>"#,
        r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"><bpmn:conditionExpression>${approved &amp;&amp; amount &gt;= 10}</bpmn:conditionExpression></bpmn:sequenceFlow>"#);
    assert!(errors(&model(&and))[0].message.contains("write '=approved and amount >= 10' instead"));
    let groovy = VALID.replace(r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>"#,
        r#"<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" language="groovy">amount &gt; 5 &amp;&amp; ok</bpmn:conditionExpression></bpmn:sequenceFlow>"#);
    let reported = errors(&model(&groovy));
    assert_eq!(reported.len(), 1, "{reported:#?}");
    assert_eq!((reported[0].code.as_str(), reported[0].element.as_deref()), ("expression-language", Some("f2")));
    assert!(reported[0].message.contains("groovy"));
    let feel = groovy.replace(r#"language="groovy">amount &gt; 5 &amp;&amp; ok"#, r#"language="http://www.omg.org/spec/FEEL/20140401">=amount &gt; 5"#);
    assert!(errors(&model(&feel)).is_empty());
}

/// Issue 13, item 6: what real Camunda 8 models write, read as Camunda 8 reads it.
#[test]
fn the_small_things_of_real_models_read_as_camunda_reads_them() {
    let xml = model(
        r#"<bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:timerEventDefinition><bpmn:timeCycle>0/5 * * * * ?</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>
    <bpmn:serviceTask id="t"><bpmn:extensionElements>
      <zeebe:taskDefinition type="${true}" retries=""/>
      <zeebe:ioMapping><zeebe:input target="cleared"/></zeebe:ioMapping>
      <zeebe:properties><zeebe:property name="team" value="billing"/></zeebe:properties>
    </bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="end"/>
  </bpmn:process>"#,
    );
    assert_eq!(errors(&xml), [], "a cron step from a start value, an empty retries, a ${{...}} job type and an input without source all import");
    let workflow = import(&xml).into_workflows().unwrap().remove(0);
    let task = workflow.element("t").unwrap();
    let Kind::Task(TaskKind::Job(job)) = &task.kind else { panic!("{:?}", task.kind) };
    assert!(matches!(&job.job_type, Property::Literal(t) if t == "${true}"), "Zeebe does not evaluate it: {:?}", job.job_type);
    assert!(matches!(&job.retries, Property::Literal(r) if r == "3"), "empty is absent: the default");
    assert_eq!(task.inputs[0].target, "cleared");
    assert!(matches!(&task.inputs[0].source, Property::Expression(e) if e.source() == "null"), "no source maps to null");
    assert_eq!(task.properties.get("team").map(String::as_str), Some("billing"));
    // An output mapping still needs its source.
    let broken = xml.replace(r#"<zeebe:input target="cleared"/>"#, r#"<zeebe:output target="x"/>"#);
    assert_error(&broken, "mapping-invalid", "t");
}

/// A listener Baton cannot read is refused, never ignored.
#[test]
fn a_listener_baton_cannot_read_is_refused_by_name() {
    let task_listeners = model(
        r#"<bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="review"><bpmn:extensionElements><zeebe:taskListeners><zeebe:taskListener eventType="reviewing" type="check"/></zeebe:taskListeners></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
  </bpmn:process>"#,
    );
    assert_error(&task_listeners, "listener-invalid", "review");
    let bad = task_listeners.replace(
        r#"<zeebe:taskListeners><zeebe:taskListener eventType="reviewing" type="check"/></zeebe:taskListeners>"#,
        r#"<zeebe:executionListeners><zeebe:executionListener eventType="later" type="x"/></zeebe:executionListeners>"#,
    );
    assert_error(&bad, "listener-invalid", "review");
}

/// Issue 13, item 8: one unsupported element is one diagnostic, not a cascade
/// of flow and reachability errors about what touches it.
#[test]
fn an_unsupported_element_is_one_diagnostic() {
    let xml = model(
        r#"<bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:transaction id="tx"><bpmn:task id="a"/></bpmn:transaction>
    <bpmn:complexGateway id="cg"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="tx"/>
    <bpmn:sequenceFlow id="f2" sourceRef="tx" targetRef="cg"/>
    <bpmn:sequenceFlow id="f3" sourceRef="cg" targetRef="end"/>
  </bpmn:process>"#,
    );
    let diagnostics = import(&xml).diagnostics;
    let codes: Vec<(&str, Option<&str>)> = diagnostics.iter().map(|d| (d.code.as_str(), d.element.as_deref())).collect();
    assert_eq!(codes, [("unsupported-element", Some("tx")), ("unsupported-element", Some("cg"))], "{diagnostics:#?}");
    // A flow to an element that truly does not exist is still reported.
    let dangling = xml.replace(r#"targetRef="end""#, r#"targetRef="nowhere""#);
    assert_error(&dangling, "flow-target-missing", "f3");
}

#[test]
fn an_ad_hoc_subprocess_has_no_start_or_end_events_and_its_activatable_elements_are_those_without_incoming_flows() {
    let xml = model(
        r#"<bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:adHocSubProcess id="adhoc">
      <bpmn:task id="a"/><bpmn:task id="b"/><bpmn:task id="c"/>
      <bpmn:sequenceFlow id="inner" sourceRef="b" targetRef="c"/>
    </bpmn:adHocSubProcess>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="adhoc"/>
    <bpmn:sequenceFlow id="f2" sourceRef="adhoc" targetRef="end"/>
  </bpmn:process>"#,
    );
    let imported = import(&xml);
    assert!(imported.diagnostics.is_empty(), "{:#?}", imported.diagnostics);
    let workflow = &imported.into_workflows().unwrap()[0];
    let ad_hoc = workflow.element("adhoc").unwrap().ad_hoc.as_deref().unwrap();
    let activatable: Vec<&str> = ad_hoc.activatable.iter().map(|&e| workflow.elements[e].id.as_str()).collect();
    assert_eq!(activatable, ["a", "b"]);
    assert!(ad_hoc.cancel_remaining, "cancelRemainingInstances defaults to true");
    let with_start = xml.replace(r#"<bpmn:task id="a"/>"#, r#"<bpmn:startEvent id="a"/>"#);
    assert_error(&with_start, "ad-hoc-invalid", "adhoc");
}

/// Issue 13, item 8: validation warns where Baton runs a construct other than as Camunda 8 would.
#[test]
fn where_baton_differs_from_camunda_8_validation_warns() {
    let xml = model(
        r#"<bpmn:process id="p" isExecutable="true" xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="review" camunda:assignee="ann"/>
    <bpmn:task id="again"><bpmn:standardLoopCharacteristics loopMaximum="3"/></bpmn:task>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="again"/>
    <bpmn:sequenceFlow id="f3" sourceRef="again" targetRef="end"/>
  </bpmn:process>"#,
    );
    let imported = import(&xml);
    let warned: Vec<(&str, Option<&str>, Severity)> = imported.diagnostics.iter().map(|d| (d.code.as_str(), d.element.as_deref(), d.severity)).collect();
    assert_eq!(warned, [("camunda-difference", Some("review"), Severity::Warning), ("camunda-difference", Some("again"), Severity::Warning)]);
    assert!(imported.into_workflows().is_ok(), "warnings do not stop the deployment");
}
