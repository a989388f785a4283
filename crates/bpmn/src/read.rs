//! Reads BPMN 2.0 XML into [`Workflow`]s, collecting every problem as a
//! [`Diagnostic`] instead of stopping at the first.

use std::collections::BTreeMap;

use feel::Expression;
use roxmltree::{Document, Node, ParsingOptions};

use crate::model::*;
use crate::timer::TimerDefinition;
use crate::{Definitions, Diagnostic, Import, Severity};

pub const BPMN: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
pub const BPMNDI: &str = "http://www.omg.org/spec/BPMN/20100524/DI";
pub const DC: &str = "http://www.omg.org/spec/DD/20100524/DC";
pub const DI: &str = "http://www.omg.org/spec/DD/20100524/DI";
pub const ZEEBE: &str = "http://camunda.org/schema/zeebe/1.0";
pub const CAMUNDA: &str = "http://camunda.org/schema/1.0/bpmn";

/// Largest accepted file.
pub const MAX_XML_BYTES: usize = 8 * 1024 * 1024;
/// Deepest accepted element nesting.
pub const MAX_XML_DEPTH: usize = 128;
const MAX_XML_NODES: u32 = 1_000_000;

pub(crate) fn import(xml: &str) -> Import {
    let mut diagnostics = Vec::new();
    if xml.len() > MAX_XML_BYTES {
        diagnostics.push(Diagnostic::error(
            "xml-too-large",
            None,
            (1, 1),
            format!("the file is {} bytes; the limit is {MAX_XML_BYTES}", xml.len()),
        ));
        return Import { definitions: None, diagnostics, work: 0 };
    }
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_XML_NODES, ..ParsingOptions::default() };
    let doc = match Document::parse_with_options(xml, options) {
        Ok(doc) => doc,
        Err(error) => {
            let pos = error.pos();
            let code = match error {
                roxmltree::Error::DtdDetected => "xml-dtd",
                roxmltree::Error::NodesLimitReached => "xml-too-large",
                _ => "xml-malformed",
            };
            let message = match code {
                "xml-dtd" => "the file has a DOCTYPE; Baton refuses DTDs and entity declarations".to_string(),
                _ => format!("the file is not well-formed XML: {error}"),
            };
            diagnostics.push(Diagnostic::error(code, None, (pos.row, pos.col), message));
            return Import { definitions: None, diagnostics, work: 0 };
        }
    };
    let mut work = 0;
    if let Some(deep) = too_deep(&doc, &mut work) {
        let pos = doc.text_pos_at(deep.range().start);
        diagnostics.push(Diagnostic::error(
            "xml-too-deep",
            None,
            (pos.row, pos.col),
            format!("elements are nested more than {MAX_XML_DEPTH} levels deep"),
        ));
        return Import { definitions: None, diagnostics, work };
    }
    let root = doc.root_element();
    if !is(root, BPMN, "definitions") {
        let pos = doc.text_pos_at(root.range().start);
        let namespace = root.tag_name().namespace().unwrap_or("no namespace");
        diagnostics.push(Diagnostic::error(
            "not-bpmn",
            None,
            (pos.row, pos.col),
            format!(
                "the root element is <{}> in {namespace}; a BPMN file starts with <definitions> in {BPMN}",
                root.tag_name().name()
            ),
        ));
        return Import { definitions: None, diagnostics, work };
    }
    let mut reader = Reader::new(&doc);
    reader.read_root_definitions(root);
    let mut workflows = Vec::new();
    for process in root.children().filter(|n| is(*n, BPMN, "process")) {
        if let Some(workflow) = reader.process(process) {
            workflows.push(workflow);
        }
    }
    if workflows.iter().all(|w| !w.executable) {
        let pos = doc.text_pos_at(root.range().start);
        reader.diagnostics.push(Diagnostic::error(
            "no-executable-process",
            None,
            (pos.row, pos.col),
            if workflows.is_empty() {
                "the file has no <process>".to_string()
            } else {
                "no process is marked isExecutable=\"true\"; Baton runs only executable processes".to_string()
            },
        ));
    }
    let diagram = read_diagram(root);
    diagnostics.append(&mut reader.diagnostics);
    work += reader.positions.counted.get() + reader.work;
    Import { definitions: Some(Definitions { workflows, diagram }), diagnostics, work }
}

/// Line and column (both from 1, the column in characters) of byte offsets
/// in a file, each found in constant time. roxmltree's `text_pos_at` counts
/// from the start of the file on every call, and the reader asks for a
/// position per element: that made reading a model quadratic in its size.
struct Positions<'a> {
    text: &'a str,
    /// Line and column at a character boundary every `POSITION_STRIDE` bytes or so,
    /// in order of offset.
    marks: Vec<(usize, u32, u32)>,
    /// Characters counted so far, building the marks and since.
    counted: std::cell::Cell<u64>,
}

const POSITION_STRIDE: usize = 1024;

impl<'a> Positions<'a> {
    fn new(text: &'a str) -> Self {
        let mut marks = Vec::with_capacity(text.len() / POSITION_STRIDE + 1);
        let (mut line, mut column, mut next) = (1, 1, 0);
        for (offset, c) in text.char_indices() {
            if offset >= next {
                marks.push((offset, line, column));
                next = offset + POSITION_STRIDE;
            }
            (line, column) = if c == '\n' { (line + 1, 1) } else { (line, column + 1) };
        }
        Positions { text, marks, counted: std::cell::Cell::new(text.len() as u64) }
    }

    /// At most `POSITION_STRIDE` bytes are counted, from the last mark before `offset`.
    fn at(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let Some(&(start, line, column)) = self.marks[..self.marks.partition_point(|m| m.0 <= offset)].last() else {
            return (1, 1);
        };
        let between = self.text.get(start..offset).unwrap_or("");
        self.counted.set(self.counted.get() + between.len() as u64);
        between.chars().fold((line, column), |(line, column), c| if c == '\n' { (line + 1, 1) } else { (line, column + 1) })
    }
}

/// The first element nested too deep, if any; `visited` counts the elements looked at.
fn too_deep<'a>(doc: &'a Document<'a>, visited: &mut u64) -> Option<Node<'a, 'a>> {
    let mut stack = vec![(doc.root(), 0usize)];
    while let Some((node, depth)) = stack.pop() {
        *visited += 1;
        if depth > MAX_XML_DEPTH {
            return Some(node);
        }
        stack.extend(node.children().filter(Node::is_element).map(|c| (c, depth + 1)));
    }
    None
}

fn is(node: Node, namespace: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(namespace)
}

fn read_diagram(root: Node) -> Diagram {
    let mut diagram = Diagram::default();
    let number = |n: Node, a: &str| n.attribute(a).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    for node in root.descendants() {
        if is(node, BPMNDI, "BPMNShape") {
            if let (Some(element), Some(bounds)) =
                (node.attribute("bpmnElement"), node.children().find(|c| is(*c, DC, "Bounds")))
            {
                diagram.shapes.insert(
                    element.to_string(),
                    Bounds {
                        x: number(bounds, "x"),
                        y: number(bounds, "y"),
                        width: number(bounds, "width"),
                        height: number(bounds, "height"),
                    },
                );
            }
        } else if is(node, BPMNDI, "BPMNEdge") {
            if let Some(element) = node.attribute("bpmnElement") {
                let points = node
                    .children()
                    .filter(|c| is(*c, DI, "waypoint"))
                    .map(|p| Point { x: number(p, "x"), y: number(p, "y") })
                    .collect();
                diagram.edges.insert(element.to_string(), points);
            }
        }
    }
    diagram
}

/// A reference between elements that can be resolved only once the whole process is read.
struct PendingFlow {
    id: String,
    declares_condition: bool,
    source: Option<String>,
    target: Option<String>,
    condition: Option<Expression>,
    position: (u32, u32),
}

struct Reader<'a, 'input> {
    positions: Positions<'input>,
    /// Children searched while linking (see [`Import::work`]).
    work: u64,
    /// The definitions' `targetNamespace`: a QName reference in it names an element of this file.
    target_namespace: Option<&'a str>,
    diagnostics: Vec<Diagnostic>,
    /// message id -> (name, correlation key)
    messages: BTreeMap<String, MessageDefinition>,
    errors: BTreeMap<String, Option<String>>,
    escalations: BTreeMap<String, Option<String>>,
    signals: BTreeMap<String, String>,
}

/// Work state for one process.
struct ProcessBuilder {
    elements: Vec<Element>,
    flows: Vec<PendingFlow>,
    /// Boundary element -> attachedToRef id.
    attachments: Vec<(ElementIdx, String)>,
    /// Element -> `default` flow id.
    defaults: Vec<(ElementIdx, String)>,
    diagnostics: Vec<Diagnostic>,
    /// Elements refused as unsupported: their one diagnostic says all, so the
    /// flows to and from them (and what only they lead to) raise no more.
    unsupported: Vec<String>,
    /// `<association>`s, source id -> target id: a compensation boundary event's handler.
    associations: Vec<(String, String)>,
    /// Compensation throw event -> its `activityRef`.
    compensation_targets: Vec<(ElementIdx, String)>,
}

impl<'a, 'input> Reader<'a, 'input> {
    fn new(doc: &'a Document<'input>) -> Self {
        Reader {
            positions: Positions::new(doc.input_text()),
            work: 0,
            target_namespace: doc.root_element().attribute("targetNamespace"),
            diagnostics: Vec::new(),
            messages: BTreeMap::new(),
            errors: BTreeMap::new(),
            escalations: BTreeMap::new(),
            signals: BTreeMap::new(),
        }
    }

    /// Resolves a reference attribute (`messageRef="tns:invoice"`): a QName
    /// whose prefix is bound, where the attribute is, to the definitions'
    /// `targetNamespace` names the element `invoice` of this file; an
    /// unprefixed one names it directly. Anything else is kept as written,
    /// so that it resolves to nothing and is reported as written.
    fn reference(&self, node: Node, value: &str) -> String {
        let value = value.trim();
        let Some((prefix, local)) = value.split_once(':') else { return value.to_string() };
        match (node.lookup_namespace_uri(Some(prefix)), self.target_namespace) {
            (Some(bound), Some(target)) if bound == target => local.to_string(),
            _ => value.to_string(),
        }
    }

    fn position(&self, node: Node) -> (u32, u32) {
        self.positions.at(node.range().start)
    }

    fn read_root_definitions(&mut self, root: Node) {
        for node in root.children().filter(Node::is_element) {
            let Some(id) = node.attribute("id") else { continue };
            if is(node, BPMN, "message") {
                let name = node.attribute("name").unwrap_or(id);
                let mut diagnostics = Vec::new();
                let name = property(name, id, self.position(node), &mut diagnostics);
                let correlation_key = extension(node, ZEEBE, "subscription")
                    .and_then(|s| s.attribute("correlationKey"))
                    .and_then(|key| property(key, id, self.position(node), &mut diagnostics));
                self.diagnostics.append(&mut diagnostics);
                if let Some(name) = name {
                    self.messages.insert(id.to_string(), MessageDefinition { name, correlation_key });
                }
            } else if is(node, BPMN, "error") {
                self.errors.insert(id.to_string(), node.attribute("errorCode").map(str::to_string));
            } else if is(node, BPMN, "escalation") {
                self.escalations.insert(id.to_string(), node.attribute("escalationCode").map(str::to_string));
            } else if is(node, BPMN, "signal") {
                self.signals.insert(id.to_string(), node.attribute("name").unwrap_or(id).to_string());
            }
        }
    }

    fn process(&mut self, node: Node) -> Option<Workflow> {
        let position = self.position(node);
        let Some(process_id) = node.attribute("id") else {
            self.diagnostics.push(Diagnostic::error("id-missing", None, position, "a <process> has no id attribute".into()));
            return None;
        };
        let executable = node.attribute("isExecutable") == Some("true");
        let mut builder = ProcessBuilder {
            elements: vec![Element::new(process_id, node.attribute("name"), Kind::Process, None, position)],
            flows: Vec::new(),
            attachments: Vec::new(),
            defaults: Vec::new(),
            diagnostics: Vec::new(),
            unsupported: Vec::new(),
            associations: Vec::new(),
            compensation_targets: Vec::new(),
        };
        self.scope(node, Workflow::ROOT, &mut builder);
        let mut workflow = self.link(process_id, node.attribute("name"), executable, &mut builder);
        workflow.version_tag = extension(node, ZEEBE, "versionTag").and_then(|t| t.attribute("value")).map(str::to_string);
        // The process's own: start before its start event, end once all else is done.
        workflow.elements[Workflow::ROOT].listeners = execution_listeners(node, process_id, position, &mut builder.diagnostics);
        workflow.elements[Workflow::ROOT].properties = properties(node);
        workflow.forms = embedded_forms(node, &workflow, &mut builder.diagnostics, |n| self.position(n));
        if !executable {
            // A process that is not meant to run is still read, so its problems are worth knowing, but none stops a deployment.
            for diagnostic in &mut builder.diagnostics {
                diagnostic.severity = Severity::Warning;
            }
        }
        self.diagnostics.append(&mut builder.diagnostics);
        Some(workflow)
    }

    /// Reads the flow elements directly inside `node` into the scope `scope`.
    fn scope(&mut self, node: Node, scope: ElementIdx, b: &mut ProcessBuilder) {
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().namespace() != Some(BPMN) {
                continue;
            }
            let name = child.tag_name().name();
            let position = self.position(child);
            // BPMN 2.0.2 makes `id` optional on what nothing references; such
            // an element gets a stable id from its place in the file, which no
            // XML id can collide with ('@' and ':' are not allowed in one).
            let id: std::borrow::Cow<str> = match child.attribute("id") {
                Some(id) => id.into(),
                None => format!("{name}@{}:{}", position.0, position.1).into(),
            };
            let id = id.as_ref();
            if name == "sequenceFlow" {
                let declared = child.children().find(|c| is(*c, BPMN, "conditionExpression"));
                let condition = declared.and_then(|c| condition(c, id, position, &mut b.diagnostics));
                b.flows.push(PendingFlow {
                    id: id.to_string(),
                    declares_condition: declared.is_some(),
                    source: child.attribute("sourceRef").map(|r| self.reference(child, r)),
                    target: child.attribute("targetRef").map(|r| self.reference(child, r)),
                    condition,
                    position,
                });
                continue;
            }
            if name == "association" {
                if let (Some(source), Some(target)) = (child.attribute("sourceRef"), child.attribute("targetRef")) {
                    b.associations.push((self.reference(child, source), self.reference(child, target)));
                }
                continue;
            }
            let kind = match name {
                "startEvent" | "endEvent" | "intermediateCatchEvent" | "intermediateThrowEvent" | "boundaryEvent" | "task"
                | "manualTask" | "serviceTask" | "sendTask" | "businessRuleTask" | "scriptTask" | "userTask" | "receiveTask"
                | "exclusiveGateway" | "parallelGateway" | "inclusiveGateway" | "eventBasedGateway" | "subProcess"
                | "callActivity" | "adHocSubProcess" => name,
                "complexGateway" | "transaction" => {
                    b.diagnostics.push(Diagnostic::error(
                        "unsupported-element",
                        Some(id),
                        position,
                        format!("<{name}> cannot be executed by Baton"),
                    ));
                    b.unsupported.push(id.to_string());
                    continue;
                }
                // Documentation, lanes, data and artifacts do not take part in execution.
                _ => continue,
            };
            let index = b.elements.len();
            let element_kind = self.element_kind(kind, child, id, index, position, b);
            let mut element = Element::new(id, child.attribute("name"), element_kind, Some(scope), position);
            element.tag = name.to_string();
            element.for_compensation = child.attribute("isForCompensation") == Some("true");
            // Where Baton's behaviour differs from Camunda 8's: Camunda 7's attributes, which Baton reads and Camunda 8 ignores.
            let camunda_7: Vec<&str> = ["type", "topic", "assignee", "candidateGroups", "candidateUsers", "dueDate", "followUpDate", "priority", "formKey"]
                .into_iter()
                .filter(|a| child.attribute((CAMUNDA, *a)).is_some())
                .collect();
            if !camunda_7.is_empty() {
                b.diagnostics.push(Diagnostic::warning(
                    "camunda-difference",
                    Some(id),
                    position,
                    format!("Baton reads Camunda 7's camunda:{}, which Camunda 8 ignores; for Camunda 8 write the zeebe: extension elements", camunda_7.join(", camunda:")),
                ));
            }
            element.documentation = child.children().find(|c| is(*c, BPMN, "documentation")).and_then(|d| d.text()).map(|t| t.trim().to_string());
            self.read_mappings_and_loops(child, id, position, &mut element, &mut b.diagnostics);
            if let Some(default) = child.attribute("default") {
                b.defaults.push((index, self.reference(child, default)));
            }
            if kind == "adHocSubProcess" {
                element.ad_hoc = Some(Box::new(ad_hoc(child, id, position, &mut b.diagnostics)));
            }
            b.elements.push(element);
            b.elements[scope].children.push(index);
            if kind == "subProcess" || kind == "adHocSubProcess" {
                self.scope(child, index, b);
            }
        }
    }

    fn element_kind(&mut self, kind: &str, node: Node, id: &str, index: ElementIdx, position: (u32, u32), b: &mut ProcessBuilder) -> Kind {
        let diagnostics = &mut b.diagnostics;
        match kind {
            "startEvent" => Kind::StartEvent {
                trigger: self.trigger(node, id, position, diagnostics),
                interrupting: node.attribute("isInterrupting") != Some("false"),
            },
            "intermediateCatchEvent" => Kind::IntermediateCatch(self.trigger(node, id, position, diagnostics)),
            "boundaryEvent" => {
                match node.attribute("attachedToRef") {
                    Some(attached) => b.attachments.push((index, self.reference(node, attached))),
                    None => diagnostics.push(Diagnostic::error(
                        "boundary-unattached",
                        Some(id),
                        position,
                        "the boundary event has no attachedToRef".into(),
                    )),
                }
                Kind::Boundary {
                    attached_to: Workflow::ROOT,
                    trigger: self.trigger(node, id, position, diagnostics),
                    cancel_activity: node.attribute("cancelActivity") != Some("false"),
                }
            }
            "endEvent" | "intermediateThrowEvent" => {
                let throw = self.throw(node, id, position, diagnostics);
                let compensated = node.children().find(|c| is(*c, BPMN, "compensateEventDefinition")).and_then(|c| c.attribute("activityRef"));
                if let (Throw::Compensate { .. }, Some(activity)) = (&throw, compensated) {
                    b.compensation_targets.push((index, self.reference(node, activity)));
                }
                if kind == "endEvent" { Kind::EndEvent(throw) } else { Kind::IntermediateThrow(throw) }
            }
            "task" | "manualTask" => Kind::Task(TaskKind::PassThrough),
            "businessRuleTask" if extension(node, ZEEBE, "calledDecision").is_some() && extension(node, ZEEBE, "taskDefinition").is_none() => {
                let called = extension(node, ZEEBE, "calledDecision");
                let decision_id = called.and_then(|c| c.attribute("decisionId")).filter(|d| !d.trim().is_empty()).and_then(|d| property(d, id, position, diagnostics));
                let result_variable = called.and_then(|c| c.attribute("resultVariable")).filter(|r| !r.trim().is_empty());
                let binding = binding(called, "called-decision-invalid", id, position, diagnostics);
                match (decision_id, result_variable) {
                    (Some(decision_id), Some(result_variable)) => {
                        Kind::Task(TaskKind::Decision(CalledDecision { decision_id, result_variable: result_variable.to_string(), binding }))
                    }
                    (decision_id, _) => {
                        let missing = if decision_id.is_none() { "decisionId" } else { "resultVariable" };
                        diagnostics.push(Diagnostic::error(
                            "called-decision-invalid",
                            Some(id),
                            position,
                            format!("the business rule task's zeebe:calledDecision has no {missing}"),
                        ));
                        Kind::Task(TaskKind::PassThrough)
                    }
                }
            }
            "serviceTask" | "sendTask" | "businessRuleTask" => match job_definition(node, id, position, diagnostics) {
                Some(job) => Kind::Task(TaskKind::Job(job)),
                None => {
                    let what = if node.attribute((CAMUNDA, "class")).is_some()
                        || node.attribute((CAMUNDA, "delegateExpression")).is_some()
                        || node.attribute((CAMUNDA, "expression")).is_some()
                    {
                        "uses a Java delegate (camunda:class, delegateExpression or expression); Baton hands work to job workers: use camunda:type=\"external\" with camunda:topic, or zeebe:taskDefinition"
                    } else {
                        "has no job type: add <zeebe:taskDefinition type=\"...\"/> (or camunda:type=\"external\" with camunda:topic)"
                    };
                    diagnostics.push(Diagnostic::error("job-type-missing", Some(id), position, format!("the task {what}")));
                    Kind::Task(TaskKind::PassThrough)
                }
            },
            "scriptTask" => {
                if let Some(script) = extension(node, ZEEBE, "script") {
                    let expression = script
                        .attribute("expression")
                        .and_then(|e| expression_property(e, id, position, diagnostics));
                    match expression {
                        Some(expression) => Kind::Task(TaskKind::Script {
                            expression,
                            result_variable: script.attribute("resultVariable").map(str::to_string),
                        }),
                        None => {
                            if script.attribute("expression").is_none() {
                                diagnostics.push(Diagnostic::error("script-invalid", Some(id), position, "zeebe:script has no expression".into()));
                            }
                            Kind::Task(TaskKind::PassThrough)
                        }
                    }
                } else if let Some(job) = job_definition(node, id, position, diagnostics) {
                    Kind::Task(TaskKind::Job(job))
                } else {
                    let format = node.attribute("scriptFormat").unwrap_or("unknown");
                    diagnostics.push(Diagnostic::error(
                        "script-unsupported",
                        Some(id),
                        position,
                        format!("the script task has a {format} script; Baton runs FEEL scripts (zeebe:script) or hands the task to a worker (zeebe:taskDefinition)"),
                    ));
                    Kind::Task(TaskKind::PassThrough)
                }
            }
            "userTask" => Kind::Task(TaskKind::User(Box::new(user_task(node, id, position, diagnostics)))),
            "receiveTask" => match self.message(node, node.attribute("messageRef"), id, position, true, diagnostics) {
                Some(message) => Kind::Task(TaskKind::Receive(message)),
                None => Kind::Task(TaskKind::PassThrough),
            },
            "exclusiveGateway" => Kind::Gateway(GatewayKind::Exclusive),
            "parallelGateway" => Kind::Gateway(GatewayKind::Parallel),
            "inclusiveGateway" => Kind::Gateway(GatewayKind::Inclusive),
            "eventBasedGateway" => Kind::Gateway(GatewayKind::EventBased),
            "subProcess" => Kind::SubProcess { triggered_by_event: node.attribute("triggeredByEvent") == Some("true") },
            "adHocSubProcess" => Kind::SubProcess { triggered_by_event: false },
            "callActivity" => {
                let called = extension(node, ZEEBE, "calledElement");
                let process_id = called
                    .and_then(|c| c.attribute("processId"))
                    .or_else(|| node.attribute("calledElement"))
                    .and_then(|p| property(p, id, position, diagnostics));
                let Some(process_id) = process_id else {
                    diagnostics.push(Diagnostic::error(
                        "called-element-missing",
                        Some(id),
                        position,
                        "the call activity does not say which process to call: add <zeebe:calledElement processId=\"...\"/>".into(),
                    ));
                    return Kind::Task(TaskKind::PassThrough);
                };
                let binding = binding(called, "called-element-invalid", id, position, diagnostics);
                Kind::CallActivity(CallActivity {
                    process_id,
                    binding,
                    propagate_all_child_variables: called.and_then(|c| c.attribute("propagateAllChildVariables")) != Some("false"),
                    propagate_all_parent_variables: called.and_then(|c| c.attribute("propagateAllParentVariables")) != Some("false"),
                })
            }
            _ => unreachable!("element_kind is called only for the names matched in scope()"),
        }
    }

    fn read_mappings_and_loops(&mut self, node: Node, id: &str, position: (u32, u32), element: &mut Element, diagnostics: &mut Vec<Diagnostic>) {
        element.listeners.extend(execution_listeners(node, id, position, diagnostics));
        if let Some(listeners) = extension(node, ZEEBE, "taskListeners") {
            if node.tag_name().name() != "userTask" {
                diagnostics.push(Diagnostic::error("listener-invalid", Some(id), position, "task listeners (zeebe:taskListeners) belong on user tasks".into()));
            }
            for listener in listeners.children().filter(|c| is(*c, ZEEBE, "taskListener")) {
                // Camunda 8.6 and 8.7 named some events differently; both spellings are read.
                let event = match listener.attribute("eventType") {
                    Some("creating" | "create") => ListenerEvent::Creating,
                    Some("assigning" | "assignment") => ListenerEvent::Assigning,
                    Some("updating" | "update") => ListenerEvent::Updating,
                    Some("completing" | "complete") => ListenerEvent::Completing,
                    Some("canceling" | "cancel") => ListenerEvent::Canceling,
                    other => {
                        diagnostics.push(Diagnostic::error(
                            "listener-invalid",
                            Some(id),
                            position,
                            format!(
                                "a task listener's eventType is {}, not creating, assigning, updating, completing or canceling",
                                other.map_or("missing".into(), |o| format!("'{o}'"))
                            ),
                        ));
                        continue;
                    }
                };
                element.listeners.extend(listener_job(listener, event, id, position, diagnostics));
            }
        }
        element.properties.extend(properties(node));
        if let Some(io) = extension(node, ZEEBE, "ioMapping") {
            for mapping in io.children().filter(Node::is_element) {
                let is_input = mapping.tag_name().name() == "input";
                // An input without a source maps its target to null, as Camunda 8 does.
                let source = mapping.attribute("source").filter(|s| !s.trim().is_empty()).or(if is_input { Some("=null") } else { None });
                let (Some(source), Some(target)) = (source, mapping.attribute("target").filter(|t| !t.trim().is_empty())) else {
                    diagnostics.push(Diagnostic::error("mapping-invalid", Some(id), position, "an output mapping lacks its source, or a mapping its target".into()));
                    continue;
                };
                let Some(source) = property(source, id, position, diagnostics) else { continue };
                let mapping_value = Mapping { source, target: target.to_string() };
                match mapping.tag_name().name() {
                    "input" => element.inputs.push(mapping_value),
                    "output" => element.outputs.push(mapping_value),
                    _ => {}
                }
            }
        }
        if let Some(mi) = node.children().find(|c| is(*c, BPMN, "multiInstanceLoopCharacteristics")) {
            let zeebe = extension(mi, ZEEBE, "loopCharacteristics");
            let expression_attr = |name: &str, diagnostics: &mut Vec<Diagnostic>| {
                zeebe.and_then(|z| z.attribute(name)).and_then(|e| expression_property(e, id, position, diagnostics))
            };
            let child_expression = |name: &str, diagnostics: &mut Vec<Diagnostic>| {
                mi.children()
                    .find(|c| is(*c, BPMN, name))
                    .and_then(|c| c.text())
                    .and_then(|t| expression_property(t.trim(), id, position, diagnostics))
            };
            let multi = MultiInstance {
                sequential: mi.attribute("isSequential") == Some("true"),
                input_collection: expression_attr("inputCollection", diagnostics),
                cardinality: child_expression("loopCardinality", diagnostics),
                input_element: zeebe.and_then(|z| z.attribute("inputElement")).map(str::to_string),
                output_collection: zeebe.and_then(|z| z.attribute("outputCollection")).map(str::to_string),
                output_element: expression_attr("outputElement", diagnostics),
                completion_condition: child_expression("completionCondition", diagnostics),
            };
            // One that is there but wrong has been reported already.
            let declared = zeebe.and_then(|z| z.attribute("inputCollection")).is_some()
                || mi.children().any(|c| is(c, BPMN, "loopCardinality"));
            if !declared {
                diagnostics.push(Diagnostic::error(
                    "multi-instance-invalid",
                    Some(id),
                    position,
                    "the multi-instance activity has neither an input collection (zeebe:loopCharacteristics inputCollection) nor a loopCardinality".into(),
                ));
            }
            element.loop_characteristics = Some(LoopCharacteristics::MultiInstance(Box::new(multi)));
        } else if let Some(standard) = node.children().find(|c| is(*c, BPMN, "standardLoopCharacteristics")) {
            let condition = standard
                .children()
                .find(|c| is(*c, BPMN, "loopCondition"))
                .and_then(|c| condition(c, id, position, diagnostics));
            diagnostics.push(Diagnostic::warning(
                "camunda-difference",
                Some(id),
                position,
                "Baton repeats the activity as BPMN 2.0.2's standard loop says; Camunda 8 does not run standard loops and refuses the model".into(),
            ));
            element.loop_characteristics = Some(LoopCharacteristics::Standard {
                condition,
                test_before: standard.attribute("testBefore") == Some("true"),
                maximum: standard.attribute("loopMaximum").and_then(|m| m.parse().ok()),
            });
        }
    }

    fn event_definitions<'n>(&self, node: Node<'n, 'n>, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<Node<'n, 'n>> {
        let definitions: Vec<Node> =
            node.children().filter(|c| c.is_element() && c.tag_name().namespace() == Some(BPMN) && c.tag_name().name().ends_with("EventDefinition")).collect();
        if definitions.len() > 1 {
            diagnostics.push(Diagnostic::error(
                "unsupported-event-definition",
                Some(id),
                position,
                "the event has several event definitions (a multiple event), which Baton cannot execute".into(),
            ));
        }
        definitions.first().copied()
    }

    fn trigger(&mut self, node: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Trigger {
        let Some(definition) = self.event_definitions(node, id, position, diagnostics) else { return Trigger::None };
        match definition.tag_name().name() {
            "timerEventDefinition" => {
                let timer = definition.children().filter(Node::is_element).find_map(|c| {
                    let text = c.text().unwrap_or("").trim();
                    let wrap: fn(Property) -> TimerDefinition = match c.tag_name().name() {
                        "timeDuration" => TimerDefinition::Duration,
                        "timeDate" => TimerDefinition::Date,
                        "timeCycle" => TimerDefinition::Cycle,
                        _ => return None,
                    };
                    Some((text.to_string(), wrap))
                });
                let Some((text, wrap)) = timer else {
                    diagnostics.push(Diagnostic::error("timer-invalid", Some(id), position, "the timer has no timeDuration, timeDate or timeCycle".into()));
                    return Trigger::None;
                };
                let Some(value) = property(&text, id, position, diagnostics) else { return Trigger::None };
                let timer = wrap(value);
                if let Err(message) = timer.check_literal() {
                    diagnostics.push(Diagnostic::error("timer-invalid", Some(id), position, message));
                }
                // A timer start event of the process has no variables: its expression is evaluated now.
                let starts_process = node.tag_name().name() == "startEvent" && node.parent().is_some_and(|p| is(p, BPMN, "process"));
                if starts_process && matches!(timer.property(), Property::Expression(_)) {
                    if let Err(message) = timer.text_without_variables().and_then(|text| timer.schedule(&text, 0).map(|_| ())) {
                        diagnostics.push(Diagnostic::error("timer-invalid", Some(id), position, message));
                    }
                }
                Trigger::Timer(timer)
            }
            "messageEventDefinition" => {
                let is_start = node.tag_name().name() == "startEvent" && node.parent().is_some_and(|p| is(p, BPMN, "process"));
                match self.message(definition, definition.attribute("messageRef"), id, position, !is_start, diagnostics) {
                    Some(message) => Trigger::Message(message),
                    // Reported; kept a message event so that no second problem
                    // (such as "more than one none start event") hides the first.
                    None => Trigger::Message(MessageDefinition {
                        name: Property::Literal(definition.attribute("messageRef").unwrap_or_default().to_string()),
                        correlation_key: None,
                    }),
                }
            }
            "signalEventDefinition" => match self.signal(definition, id, position, diagnostics) {
                Some(name) => Trigger::Signal { name },
                // Reported; kept a signal event so that no second problem hides the first.
                None => Trigger::Signal { name: Property::Literal(definition.attribute("signalRef").unwrap_or_default().to_string()) },
            },
            "errorEventDefinition" => Trigger::Error { code: self.error_code(definition, id, position, false, diagnostics) },
            "escalationEventDefinition" => Trigger::Escalation { code: self.escalation_code(definition, id, position, false, diagnostics) },
            "linkEventDefinition" => Trigger::Link { name: definition.attribute("name").unwrap_or(id).to_string() },
            "compensateEventDefinition" => Trigger::Compensation,
            "conditionalEventDefinition" => {
                let Some(condition) = definition.children().find(|c| is(*c, BPMN, "condition")).and_then(|c| condition(c, id, position, diagnostics)) else {
                    if !definition.children().any(|c| is(c, BPMN, "condition")) {
                        diagnostics.push(Diagnostic::error("condition-invalid", Some(id), position, "the conditional event has no <condition>".into()));
                    }
                    return Trigger::None;
                };
                let events = extension(definition, ZEEBE, "conditionalFilter").and_then(|f| f.attribute("variableEvents")).unwrap_or("create, update");
                let events: Vec<&str> = events.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
                if let Some(unknown) = events.iter().find(|e| !matches!(**e, "create" | "update")) {
                    diagnostics.push(Diagnostic::error("condition-invalid", Some(id), position, format!("variableEvents '{unknown}' is not create or update")));
                }
                let (on_create, on_update) = match events.is_empty() {
                    true => (true, true),
                    false => (events.contains(&"create"), events.contains(&"update")),
                };
                Trigger::Conditional(Conditional { condition, on_create, on_update })
            }
            other => {
                unsupported_definition(other, id, position, diagnostics);
                Trigger::None
            }
        }
    }

    fn throw(&mut self, node: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Throw {
        let Some(definition) = self.event_definitions(node, id, position, diagnostics) else { return Throw::None };
        match definition.tag_name().name() {
            "terminateEventDefinition" => Throw::Terminate,
            "errorEventDefinition" => match self.error_code(definition, id, position, true, diagnostics) {
                Some(code) => Throw::Error { code },
                None => Throw::None,
            },
            "escalationEventDefinition" => match self.escalation_code(definition, id, position, true, diagnostics) {
                Some(code) => Throw::Escalation { code },
                None => Throw::None,
            },
            "signalEventDefinition" => match self.signal(definition, id, position, diagnostics) {
                Some(name) => Throw::Signal { name },
                None => Throw::None,
            },
            "linkEventDefinition" => Throw::Link { name: definition.attribute("name").unwrap_or(id).to_string() },
            // The activity it names is resolved with the other references (`compensation_targets`).
            "compensateEventDefinition" => Throw::Compensate { activity: None, wait: definition.attribute("waitForCompletion") != Some("false") },
            "messageEventDefinition" => match job_definition(node, id, position, diagnostics) {
                Some(job) => Throw::Job(job),
                None => {
                    diagnostics.push(Diagnostic::error(
                        "job-type-missing",
                        Some(id),
                        position,
                        "a message throw event is sent by a job worker: add <zeebe:taskDefinition type=\"...\"/>".into(),
                    ));
                    Throw::None
                }
            },
            other => {
                unsupported_definition(other, id, position, diagnostics);
                Throw::None
            }
        }
    }

    fn message(&self, node: Node, reference: Option<&str>, id: &str, position: (u32, u32), needs_key: bool, diagnostics: &mut Vec<Diagnostic>) -> Option<MessageDefinition> {
        let Some(reference) = reference else {
            diagnostics.push(Diagnostic::error("message-missing", Some(id), position, "the element waits for a message but has no messageRef".into()));
            return None;
        };
        let Some(message) = self.messages.get(&self.reference(node, reference)) else {
            diagnostics.push(Diagnostic::error("message-missing", Some(id), position, format!("messageRef '{reference}' names no <message>")));
            return None;
        };
        if needs_key && message.correlation_key.is_none() {
            diagnostics.push(Diagnostic::error(
                "correlation-key-missing",
                Some(id),
                position,
                format!("message '{reference}' has no correlation key: add <zeebe:subscription correlationKey=\"=...\"/> to it"),
            ));
        }
        Some(message.clone())
    }

    fn signal(&self, definition: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<Property> {
        let reference = definition.attribute("signalRef");
        match reference.and_then(|r| self.signals.get(&self.reference(definition, r))) {
            Some(name) => property(name, id, position, diagnostics),
            None => {
                diagnostics.push(Diagnostic::error(
                    "signal-missing",
                    Some(id),
                    position,
                    format!("signalRef '{}' names no <signal>", reference.unwrap_or("")),
                ));
                None
            }
        }
    }

    fn error_code(&self, definition: Node, id: &str, position: (u32, u32), required: bool, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
        let reference = definition.attribute("errorRef").map(|r| (r, self.reference(definition, r)));
        code_of(&self.errors, "error", reference, id, position, required, diagnostics)
    }

    fn escalation_code(&self, definition: Node, id: &str, position: (u32, u32), required: bool, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
        let reference = definition.attribute("escalationRef").map(|r| (r, self.reference(definition, r)));
        code_of(&self.escalations, "escalation", reference, id, position, required, diagnostics)
    }

    /// Resolves references and checks the structure of a whole process.
    fn link(&mut self, process_id: &str, name: Option<&str>, executable: bool, b: &mut ProcessBuilder) -> Workflow {
        let mut elements = std::mem::take(&mut b.elements);
        let (pending, attachments, defaults) = (std::mem::take(&mut b.flows), std::mem::take(&mut b.attachments), std::mem::take(&mut b.defaults));
        let (unsupported, diagnostics) = (&b.unsupported, &mut b.diagnostics);
        let mut element_by_id = BTreeMap::new();
        for (index, element) in elements.iter().enumerate() {
            if element_by_id.insert(element.id.clone(), index).is_some() {
                diagnostics.push(Diagnostic::error("duplicate-id", Some(&element.id), (element.line, element.column), format!("the id '{}' is used twice", element.id)));
            }
        }
        // Each boundary event's scope before it moved to its activity's: one
        // pass over each such scope's children at the end, not one per event.
        let mut moved_from = vec![None; elements.len()];
        for (boundary, attached) in attachments {
            let position = (elements[boundary].line, elements[boundary].column);
            let id = elements[boundary].id.clone();
            match element_by_id.get(&attached).copied() {
                Some(activity) if is_activity(&elements[activity].kind) => {
                    elements[activity].boundary_events.push(boundary);
                    // A boundary event lives in the scope of its activity.
                    let scope = elements[activity].parent;
                    let old_scope = elements[boundary].parent.unwrap_or(Workflow::ROOT);
                    moved_from[boundary] = Some(old_scope);
                    if let Some(scope) = scope {
                        elements[scope].children.push(boundary);
                    }
                    elements[boundary].parent = scope;
                    if let Kind::Boundary { attached_to, .. } = &mut elements[boundary].kind {
                        *attached_to = activity;
                    }
                }
                Some(_) => diagnostics.push(Diagnostic::error("boundary-unattached", Some(&id), position, format!("the boundary event is attached to '{attached}', which is not an activity"))),
                None => diagnostics.push(Diagnostic::error("boundary-unattached", Some(&id), position, format!("the boundary event is attached to '{attached}', which does not exist"))),
            }
        }
        let scopes: std::collections::BTreeSet<ElementIdx> = moved_from.iter().flatten().copied().collect();
        for scope in scopes {
            self.work += elements[scope].children.len() as u64;
            elements[scope].children.retain(|&child| moved_from[child] != Some(scope));
        }
        link_compensation(&mut elements, &element_by_id, &b.associations, &b.compensation_targets, diagnostics);
        let mut flows = Vec::new();
        let mut flow_by_id = BTreeMap::new();
        for flow in pending {
            let mut resolve = |reference: &Option<String>, end: &str| -> Option<ElementIdx> {
                match reference {
                    None => {
                        diagnostics.push(Diagnostic::error(&format!("flow-{end}-missing"), Some(&flow.id), flow.position, format!("the sequence flow has no {end}Ref")));
                        None
                    }
                    Some(r) => match element_by_id.get(r) {
                        Some(&index) => Some(index),
                        // An element refused as unsupported already has its diagnostic.
                        None if unsupported.contains(r) => None,
                        None => {
                            diagnostics.push(Diagnostic::error(
                                &format!("flow-{end}-missing"),
                                Some(&flow.id),
                                flow.position,
                                format!("the sequence flow's {end} '{r}' is not an element of process '{process_id}'"),
                            ));
                            None
                        }
                    },
                }
            };
            let (Some(source), Some(target)) = (resolve(&flow.source, "source"), resolve(&flow.target, "target")) else { continue };
            if elements[source].parent != elements[target].parent {
                diagnostics.push(Diagnostic::error(
                    "flow-crosses-scope",
                    Some(&flow.id),
                    flow.position,
                    format!("the sequence flow connects '{}' and '{}', which are in different subprocesses", elements[source].id, elements[target].id),
                ));
                continue;
            }
            let index = flows.len();
            flow_by_id.insert(flow.id.clone(), index);
            elements[source].outgoing.push(index);
            elements[target].incoming.push(index);
            let (line, column) = flow.position;
            flows.push(Flow { id: flow.id, source, target, condition: flow.condition, declares_condition: flow.declares_condition, line, column });
        }
        for (element, default) in defaults {
            match flow_by_id.get(&default) {
                Some(&flow) if flows[flow].source == element => elements[element].default_flow = Some(flow),
                _ => diagnostics.push(Diagnostic::error(
                    "default-flow-invalid",
                    Some(&elements[element].id),
                    (elements[element].line, elements[element].column),
                    format!("the default flow '{default}' is not an outgoing sequence flow of this element"),
                )),
            }
        }
        for index in 0..elements.len() {
            if elements[index].ad_hoc.is_none() {
                continue;
            }
            let activatable: Vec<ElementIdx> = elements[index]
                .children
                .iter()
                .copied()
                .filter(|&c| {
                    let child = &elements[c];
                    child.incoming.is_empty()
                        && !child.for_compensation
                        && !matches!(child.kind, Kind::Boundary { .. } | Kind::SubProcess { triggered_by_event: true } | Kind::StartEvent { .. })
                })
                .collect();
            if let Some(ad_hoc) = elements[index].ad_hoc.as_mut() {
                ad_hoc.activatable = activatable;
            }
        }
        // A compiled version is held for as long as the server runs, one per
        // version ever deployed: it keeps no room to grow.
        elements.shrink_to_fit();
        flows.shrink_to_fit();
        for element in &mut elements {
            element.incoming.shrink_to_fit();
            element.outgoing.shrink_to_fit();
            element.children.shrink_to_fit();
            element.boundary_events.shrink_to_fit();
        }
        let workflow = Workflow {
            process_id: process_id.to_string(),
            name: name.map(str::to_string),
            executable,
            version_tag: None,
            forms: BTreeMap::new(),
            elements,
            flows,
            element_by_id,
            size_hint: 0,
        };
        self.work += check_structure(&workflow, !b.unsupported.is_empty(), diagnostics);
        let size_hint = workflow.elements.len() + workflow.flows.len();
        Workflow { size_hint, ..workflow }
    }
}

fn code_of(
    table: &BTreeMap<String, Option<String>>,
    what: &str,
    // As written, and resolved.
    reference: Option<(&str, String)>,
    id: &str,
    position: (u32, u32),
    required: bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<String> {
    match reference {
        None if !required => None,
        None => {
            diagnostics.push(Diagnostic::error(&format!("{what}-missing"), Some(id), position, format!("the event throws an {what} but names none ({what}Ref)")));
            None
        }
        Some((r, resolved)) => match table.get(&resolved) {
            Some(Some(code)) => Some(code.clone()),
            Some(None) => {
                diagnostics.push(Diagnostic::error(&format!("{what}-missing"), Some(id), position, format!("the {what} '{r}' has no {what}Code")));
                None
            }
            None => {
                diagnostics.push(Diagnostic::error(&format!("{what}-missing"), Some(id), position, format!("{what}Ref '{r}' names no <{what}>")));
                None
            }
        },
    }
}

/// Reports an event definition Baton cannot execute (conditional, cancel).
fn unsupported_definition(definition: &str, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.push(Diagnostic::error(
        "unsupported-event-definition",
        Some(id),
        position,
        format!("<{definition}> on this event cannot be executed by Baton"),
    ));
}

/// How an `<adHocSubProcess>` runs (its activatable elements are found once its flows are known).
fn ad_hoc(node: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> AdHoc {
    let zeebe = extension(node, ZEEBE, "adHoc");
    let expression = |name: &str, diagnostics: &mut Vec<Diagnostic>| {
        zeebe.and_then(|z| z.attribute(name)).filter(|e| !e.trim().is_empty()).and_then(|e| expression_property(e, id, position, diagnostics))
    };
    let completion_condition = node
        .children()
        .find(|c| is(*c, BPMN, "completionCondition"))
        .and_then(|c| c.text())
        .filter(|t| !t.trim().is_empty())
        .and_then(|t| expression_property(t.trim(), id, position, diagnostics));
    AdHoc {
        active_elements: expression("activeElementsCollection", diagnostics),
        completion_condition,
        cancel_remaining: node.attribute("cancelRemainingInstances") != Some("false"),
        output_collection: zeebe.and_then(|z| z.attribute("outputCollection")).filter(|o| !o.trim().is_empty()).map(str::to_string),
        output_element: expression("outputElement", diagnostics),
        job: extension(node, ZEEBE, "taskDefinition").and_then(|_| job_definition(node, id, position, diagnostics)),
        activatable: Vec::new(),
    }
}

/// Resolves what compensation refers to: the handler of each compensation
/// boundary event (the activity an `<association>` links it to, drawn either
/// way), and the activity a compensation throw event names (`activityRef`),
/// which must be in the throw's scope, or in the scope around the event
/// subprocess the throw is in.
fn link_compensation(
    elements: &mut [Element],
    by_id: &BTreeMap<String, ElementIdx>,
    associations: &[(String, String)],
    targets: &[(ElementIdx, String)],
    diagnostics: &mut Vec<Diagnostic>,
) {
    // Each end's partner in the first association that has it, either way round.
    let mut partner: BTreeMap<&str, &String> = BTreeMap::new();
    for (source, target) in associations {
        partner.entry(source.as_str()).or_insert(target);
        partner.entry(target.as_str()).or_insert(source);
    }
    for boundary in 0..elements.len() {
        let Kind::Boundary { attached_to, trigger: Trigger::Compensation, .. } = elements[boundary].kind else { continue };
        let (id, at) = (elements[boundary].id.clone(), (elements[boundary].line, elements[boundary].column));
        let associated = partner.get(id.as_str()).copied();
        match associated.map(|h| (h, by_id.get(h).copied())) {
            // Unattached: reported already.
            _ if attached_to == Workflow::ROOT => {}
            Some((_, Some(handler))) if elements[handler].for_compensation && is_activity(&elements[handler].kind) => {
                elements[attached_to].compensation_handler = Some(handler);
            }
            Some((handler, _)) => diagnostics.push(Diagnostic::error(
                "compensation-invalid",
                Some(&id),
                at,
                format!("the compensation boundary event is associated with '{handler}', which is not an activity marked isForCompensation=\"true\""),
            )),
            None => diagnostics.push(Diagnostic::error(
                "compensation-invalid",
                Some(&id),
                at,
                "the compensation boundary event has no handler: draw an association from it to an activity marked isForCompensation=\"true\"".into(),
            )),
        }
    }
    for (throw, activity) in targets {
        let scope = elements[*throw].parent;
        let around = scope.filter(|&s| matches!(elements[s].kind, Kind::SubProcess { triggered_by_event: true })).and_then(|s| elements[s].parent);
        match by_id.get(activity).copied() {
            Some(target) if is_activity(&elements[target].kind) && !elements[target].for_compensation && (elements[target].parent == scope || elements[target].parent == around) => {
                if let Kind::EndEvent(Throw::Compensate { activity, .. }) | Kind::IntermediateThrow(Throw::Compensate { activity, .. }) = &mut elements[*throw].kind {
                    *activity = Some(target);
                }
            }
            _ => diagnostics.push(Diagnostic::error(
                "compensation-invalid",
                Some(&elements[*throw].id),
                (elements[*throw].line, elements[*throw].column),
                format!("the compensation event's activityRef '{activity}' is not an activity in the event's scope"),
            )),
        }
    }
}

fn is_activity(kind: &Kind) -> bool {
    matches!(kind, Kind::Task(_) | Kind::SubProcess { triggered_by_event: false } | Kind::CallActivity(_))
}

/// Whether a boundary event or event subprocess around `element` catches error `code`.
/// `starts` is each scope's event subprocess start events ([`event_subprocess_starts_by_scope`]).
fn error_caught_around(workflow: &Workflow, starts: &BTreeMap<ElementIdx, Vec<ElementIdx>>, element: ElementIdx, code: Option<&str>, work: &mut u64) -> bool {
    let catches = |trigger: &Trigger| match trigger {
        Trigger::Error { code: Some(c) } => code == Some(c.as_str()),
        Trigger::Error { code: None } => true,
        _ => false,
    };
    let mut current = workflow.elements[element].parent;
    while let Some(scope) = current {
        let el = &workflow.elements[scope];
        *work += 1 + starts.get(&scope).map_or(0, Vec::len) as u64 + el.boundary_events.len() as u64;
        if matches!(el.kind, Kind::Process | Kind::SubProcess { .. })
            && starts.get(&scope).into_iter().flatten().any(|&s| matches!(&workflow.elements[s].kind, Kind::StartEvent { trigger, .. } if catches(trigger)))
        {
            return true;
        }
        if el.boundary_events.iter().any(|&b| matches!(&workflow.elements[b].kind, Kind::Boundary { trigger, .. } if catches(trigger))) {
            return true;
        }
        current = el.parent;
    }
    false
}

/// The start events of each scope's event subprocesses, found in one pass
/// (looking through a scope's children for each question would cost the
/// square of the scope's size over a whole model).
fn event_subprocess_starts_by_scope(workflow: &Workflow) -> BTreeMap<ElementIdx, Vec<ElementIdx>> {
    let mut starts: BTreeMap<ElementIdx, Vec<ElementIdx>> = BTreeMap::new();
    for (index, element) in workflow.elements.iter().enumerate() {
        let Some(subprocess) = element.parent else { continue };
        if matches!(element.kind, Kind::StartEvent { .. }) && matches!(workflow.elements[subprocess].kind, Kind::SubProcess { triggered_by_event: true }) {
            if let Some(scope) = workflow.elements[subprocess].parent {
                starts.entry(scope).or_default().push(index);
            }
        }
    }
    starts
}

/// Answers the scopes and event subprocesses it looked through (see [`Import::work`]).
fn check_structure(workflow: &Workflow, has_unsupported: bool, diagnostics: &mut Vec<Diagnostic>) -> u64 {
    let mut work = 0;
    let at = |e: &Element| (e.line, e.column);
    // Where Baton's default differs from Camunda 8: an error nobody catches.
    let starts = event_subprocess_starts_by_scope(workflow);
    for (index, element) in workflow.elements.iter().enumerate() {
        if let Kind::EndEvent(Throw::Error { code }) = &element.kind {
            if !error_caught_around(workflow, &starts, index, Some(code.as_str()), &mut work) {
                diagnostics.push(Diagnostic::warning(
                    "error-uncaught",
                    Some(&element.id),
                    at(element),
                    format!(
                        "nothing in this process catches error '{code}' (a calling process may): Baton then fails the instance, where Camunda 8 raises an incident; run with --uncaught-errors incident to do as Camunda 8 does"
                    ),
                ));
            }
        }
    }
    // A process's conditional start events each have a condition of their own (Camunda 8 refuses two alike).
    let mut conditions = BTreeMap::new();
    for &start in &workflow.elements[Workflow::ROOT].children {
        if let Kind::StartEvent { trigger: Trigger::Conditional(c), .. } = &workflow.elements[start].kind {
            if let Some(first) = conditions.insert(c.condition.source().trim().to_string(), start) {
                let element = &workflow.elements[start];
                diagnostics.push(Diagnostic::error(
                    "condition-invalid",
                    Some(&element.id),
                    (element.line, element.column),
                    format!("the conditional start event has the same condition as '{}'", workflow.elements[first].id),
                ));
            }
        }
    }
    for (index, element) in workflow.elements.iter().enumerate() {
        let id = Some(element.id.as_str());
        match &element.kind {
            Kind::SubProcess { triggered_by_event: false } if element.ad_hoc.is_some() => {
                let has = |f: fn(&Kind) -> bool| element.children.iter().any(|&c| f(&workflow.elements[c].kind));
                if has(|k| matches!(k, Kind::StartEvent { .. } | Kind::EndEvent(_))) {
                    diagnostics.push(Diagnostic::error("ad-hoc-invalid", id, at(element), "an ad-hoc subprocess has no start or end events: its elements run when they are activated".into()));
                }
                if !has(is_activity) {
                    diagnostics.push(Diagnostic::error("ad-hoc-invalid", id, at(element), "an ad-hoc subprocess needs at least one activity".into()));
                }
            }
            Kind::Process | Kind::SubProcess { triggered_by_event: false } => {
                let none_starts = element
                    .children
                    .iter()
                    .filter(|&&c| matches!(workflow.elements[c].kind, Kind::StartEvent { trigger: Trigger::None, .. }))
                    .count();
                let any_starts = element.children.iter().filter(|&&c| matches!(workflow.elements[c].kind, Kind::StartEvent { .. })).count();
                let is_process = index == Workflow::ROOT;
                if none_starts > 1 {
                    diagnostics.push(Diagnostic::error("start-event-invalid", id, at(element), "the scope has more than one none start event".into()));
                } else if any_starts == 0 {
                    diagnostics.push(Diagnostic::error("start-event-missing", id, at(element), "the scope has no start event".into()));
                } else if !is_process && none_starts == 0 {
                    diagnostics.push(Diagnostic::error("start-event-invalid", id, at(element), "an embedded subprocess must start with a none start event".into()));
                }
            }
            Kind::SubProcess { triggered_by_event: true } => {
                let starts: Vec<_> = element.children.iter().filter(|&&c| matches!(workflow.elements[c].kind, Kind::StartEvent { .. })).collect();
                if starts.len() != 1 || starts.iter().any(|&&s| matches!(workflow.elements[s].kind, Kind::StartEvent { trigger: Trigger::None, .. })) {
                    diagnostics.push(Diagnostic::error("start-event-invalid", id, at(element), "an event subprocess needs exactly one start event with a trigger (message, timer, signal, error or escalation)".into()));
                }
                if !element.incoming.is_empty() || !element.outgoing.is_empty() {
                    diagnostics.push(Diagnostic::error("event-subprocess-flows", id, at(element), "an event subprocess cannot have incoming or outgoing sequence flows".into()));
                }
            }
            Kind::StartEvent { trigger, .. } => {
                if !element.incoming.is_empty() {
                    diagnostics.push(Diagnostic::error("start-event-invalid", id, at(element), "a start event cannot have incoming sequence flows".into()));
                }
                let in_event_subprocess = element.parent.is_some_and(|p| matches!(workflow.elements[p].kind, Kind::SubProcess { triggered_by_event: true }));
                let allowed = match trigger {
                    Trigger::None | Trigger::Timer(_) | Trigger::Message(_) | Trigger::Signal { .. } | Trigger::Conditional(_) => true,
                    Trigger::Error { .. } | Trigger::Escalation { .. } | Trigger::Compensation => in_event_subprocess,
                    Trigger::Link { .. } => false,
                };
                if !allowed {
                    diagnostics.push(Diagnostic::error("start-event-invalid", id, at(element), "this kind of start event is allowed only in an event subprocess".into()));
                }
            }
            Kind::EndEvent(_)
                if !element.outgoing.is_empty() => {
                    diagnostics.push(Diagnostic::error("end-event-invalid", id, at(element), "an end event cannot have outgoing sequence flows".into()));
                }
            Kind::IntermediateCatch(Trigger::None) => {
                diagnostics.push(Diagnostic::error("catch-event-invalid", id, at(element), "the intermediate catch event has no timer, message, signal or link to wait for".into()));
            }
            Kind::IntermediateCatch(Trigger::Error { .. } | Trigger::Escalation { .. } | Trigger::Compensation) => {
                diagnostics.push(Diagnostic::error("catch-event-invalid", id, at(element), "errors, escalations and compensation are caught by boundary events or event subprocesses, not intermediate events".into()));
            }
            Kind::Boundary { trigger: Trigger::Compensation, .. } => {
                if !element.outgoing.is_empty() {
                    diagnostics.push(Diagnostic::error("compensation-invalid", id, at(element), "a compensation boundary event has no outgoing sequence flow: its handler is linked by an association".into()));
                }
            }
            Kind::Boundary { trigger, cancel_activity, .. } => {
                if matches!(trigger, Trigger::None | Trigger::Link { .. }) {
                    diagnostics.push(Diagnostic::error("boundary-invalid", id, at(element), "a boundary event needs a timer, message, signal, error or escalation definition".into()));
                }
                if matches!(trigger, Trigger::Error { .. }) && !cancel_activity {
                    diagnostics.push(Diagnostic::error("boundary-invalid", id, at(element), "an error boundary event always interrupts its activity".into()));
                }
                if element.outgoing.is_empty() {
                    diagnostics.push(Diagnostic::warning("boundary-no-outgoing", id, at(element), "the boundary event has no outgoing sequence flow".into()));
                }
            }
            Kind::Gateway(kind) => check_gateway(workflow, element, *kind, diagnostics),
            _ => {}
        }
        if element.for_compensation && !(element.incoming.is_empty() && element.outgoing.is_empty()) {
            diagnostics.push(Diagnostic::error("compensation-invalid", id, at(element), "a compensation handler is started by compensation, not by sequence flows: it can have none".into()));
        }
        if matches!(element.kind, Kind::Task(_) | Kind::CallActivity(_) | Kind::SubProcess { triggered_by_event: false } | Kind::Gateway(_) | Kind::EndEvent(_) | Kind::IntermediateThrow(_) | Kind::IntermediateCatch(_))
            && element.incoming.is_empty()
            && !element.for_compensation
            && !element.parent.is_some_and(|p| workflow.elements[p].ad_hoc.is_some())
            && !matches!(element.kind, Kind::IntermediateCatch(Trigger::Link { .. }))
            // What only an unsupported element leads to is not reported again.
            && !has_unsupported
        {
            diagnostics.push(Diagnostic::warning("element-unreachable", id, at(element), "no sequence flow leads to this element, so it never runs".into()));
        }
        if !matches!(element.kind, Kind::Gateway(_)) && element.outgoing.len() > 1 {
            // Conditional flows out of an activity: flows without a condition are always taken.
            let unconditioned_default = element.default_flow.is_some_and(|d| workflow.flows[d].condition.is_some());
            if unconditioned_default {
                diagnostics.push(Diagnostic::error("default-flow-invalid", id, at(element), "a default flow cannot have a condition".into()));
            }
        }
    }
    // Link events: every catch name is unique within its scope, every throw has a catch.
    let mut link_catches: BTreeMap<(Option<ElementIdx>, &str), usize> = BTreeMap::new();
    for element in &workflow.elements {
        if let Kind::IntermediateCatch(Trigger::Link { name }) = &element.kind {
            *link_catches.entry((element.parent, name.as_str())).or_default() += 1;
        }
    }
    for element in &workflow.elements {
        if let Kind::IntermediateThrow(Throw::Link { name }) = &element.kind {
            let catches = link_catches.get(&(element.parent, name.as_str())).copied().unwrap_or(0);
            if catches != 1 {
                diagnostics.push(Diagnostic::error(
                    "link-invalid",
                    Some(&element.id),
                    at(element),
                    format!("the link '{name}' needs exactly one catching link event in the same scope; found {catches}"),
                ));
            }
        }
    }
    work
}

fn check_gateway(workflow: &Workflow, element: &Element, kind: GatewayKind, diagnostics: &mut Vec<Diagnostic>) {
    let id = Some(element.id.as_str());
    let at = (element.line, element.column);
    if element.outgoing.is_empty() {
        diagnostics.push(Diagnostic::error("gateway-no-outgoing", id, at, "the gateway has no outgoing sequence flow".into()));
        return;
    }
    match kind {
        GatewayKind::Exclusive | GatewayKind::Inclusive if element.outgoing.len() > 1 => {
            for &flow in &element.outgoing {
                let flow = &workflow.flows[flow];
                let is_default = element.default_flow.is_some_and(|d| workflow.flows[d].id == flow.id);
                if !flow.declares_condition && !is_default {
                    diagnostics.push(Diagnostic::error(
                        "gateway-flow-unconditioned",
                        Some(&flow.id),
                        (flow.line, flow.column),
                        format!("the flow leaves the splitting gateway '{}' without a condition and is not its default flow", element.id),
                    ));
                }
                if flow.declares_condition && is_default {
                    diagnostics.push(Diagnostic::error("default-flow-invalid", Some(&flow.id), (flow.line, flow.column), "a default flow cannot have a condition".into()));
                }
            }
        }
        GatewayKind::EventBased => {
            if element.outgoing.len() < 2 {
                diagnostics.push(Diagnostic::error("event-gateway-invalid", id, at, "an event-based gateway needs at least two outgoing flows".into()));
            }
            for &flow in &element.outgoing {
                let target = &workflow.elements[workflow.flows[flow].target];
                let waits = matches!(
                    target.kind,
                    Kind::IntermediateCatch(Trigger::Timer(_) | Trigger::Message(_) | Trigger::Signal { .. }) | Kind::Task(TaskKind::Receive(_))
                );
                if !waits {
                    diagnostics.push(Diagnostic::error(
                        "event-gateway-invalid",
                        Some(&target.id),
                        (target.line, target.column),
                        "an event-based gateway may lead only to timer, message or signal catch events and receive tasks".into(),
                    ));
                }
            }
        }
        _ => {}
    }
}

impl Element {
    fn new(id: &str, name: Option<&str>, kind: Kind, parent: Option<ElementIdx>, (line, column): (u32, u32)) -> Element {
        Element {
            id: id.to_string(),
            tag: "process".to_string(),
            name: name.map(str::to_string),
            documentation: None,
            kind,
            parent,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            default_flow: None,
            boundary_events: Vec::new(),
            children: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            loop_characteristics: None,
            properties: BTreeMap::new(),
            listeners: Vec::new(),
            for_compensation: false,
            compensation_handler: None,
            ad_hoc: None,
            line,
            column,
        }
    }
}

/// The element's (or process's) `zeebe:executionListeners`, start and end.
fn execution_listeners(node: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Vec<Listener> {
    let Some(listeners) = extension(node, ZEEBE, "executionListeners") else { return Vec::new() };
    let mut read = Vec::new();
    for listener in listeners.children().filter(|c| is(*c, ZEEBE, "executionListener")) {
        let event = match listener.attribute("eventType") {
            Some("start") => ListenerEvent::Start,
            Some("end") => ListenerEvent::End,
            other => {
                diagnostics.push(Diagnostic::error(
                    "listener-invalid",
                    Some(id),
                    position,
                    format!("an execution listener's eventType is {}, not start or end", other.map_or("missing".into(), |o| format!("'{o}'"))),
                ));
                continue;
            }
        };
        read.extend(listener_job(listener, event, id, position, diagnostics));
    }
    read
}

/// An execution or task listener: its job type (literal, or an expression) and retries (3 unless said).
fn listener_job(listener: Node, event: ListenerEvent, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<Listener> {
    let Some(job_type) = listener.attribute("type").filter(|t| !t.trim().is_empty()) else {
        diagnostics.push(Diagnostic::error("listener-invalid", Some(id), position, "a listener has no job type".into()));
        return None;
    };
    let job_type = match job_type.trim_start().strip_prefix('=') {
        Some(_) => property(job_type, id, position, diagnostics)?,
        None => Property::Literal(job_type.to_string()),
    };
    let retries = property(listener.attribute("retries").filter(|r| !r.trim().is_empty()).unwrap_or("3"), id, position, diagnostics)?;
    Some(Listener { event, job: JobDefinition { job_type, retries, headers: Vec::new() } })
}

/// The child `<namespace:name>` of the node's `<extensionElements>`.
fn extension<'n>(node: Node<'n, 'n>, namespace: &str, name: &str) -> Option<Node<'n, 'n>> {
    node.children().find(|c| is(*c, BPMN, "extensionElements"))?.children().find(|c| is(*c, namespace, name))
}

fn job_definition(node: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<JobDefinition> {
    let headers = extension(node, ZEEBE, "taskHeaders")
        .map(|h| {
            h.children()
                .filter(|c| is(*c, ZEEBE, "header"))
                .filter_map(|c| Some((c.attribute("key")?.to_string(), c.attribute("value").unwrap_or("").to_string())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(definition) = extension(node, ZEEBE, "taskDefinition") {
        let job_type = definition.attribute("type").filter(|t| !t.trim().is_empty());
        let Some(job_type) = job_type else {
            diagnostics.push(Diagnostic::error("job-type-missing", Some(id), position, "zeebe:taskDefinition has no type".into()));
            return None;
        };
        // A type that is not `=...` is the job type as written, `${...}` included: Zeebe does not evaluate it.
        let job_type = match job_type.trim_start().strip_prefix('=') {
            Some(_) => property(job_type, id, position, diagnostics)?,
            None => Property::Literal(job_type.to_string()),
        };
        // An empty attribute is an absent one: the default retries.
        let retries = definition.attribute("retries").filter(|r| !r.trim().is_empty()).unwrap_or("3");
        let retries = property(retries, id, position, diagnostics)?;
        if let Property::Literal(text) = &retries {
            if text.trim().parse::<u32>().is_err() {
                diagnostics.push(Diagnostic::error("retries-invalid", Some(id), position, format!("retries '{text}' is not a whole number")));
            }
        }
        return Some(JobDefinition { job_type, retries, headers });
    }
    if node.attribute((CAMUNDA, "type")) == Some("external") {
        let topic = node.attribute((CAMUNDA, "topic")).filter(|t| !t.trim().is_empty());
        let Some(topic) = topic else {
            diagnostics.push(Diagnostic::error("job-type-missing", Some(id), position, "camunda:type=\"external\" needs a camunda:topic".into()));
            return None;
        };
        return Some(JobDefinition { job_type: Property::Literal(topic.to_string()), retries: Property::Literal("3".into()), headers });
    }
    None
}

fn user_task(node: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> UserTaskDefinition {
    let mut task = UserTaskDefinition::default();
    let mut prop = |value: Option<&str>| value.filter(|v| !v.is_empty()).and_then(|v| property(v, id, position, diagnostics));
    let assignment = extension(node, ZEEBE, "assignmentDefinition");
    let schedule = extension(node, ZEEBE, "taskSchedule");
    task.assignee = prop(assignment.and_then(|a| a.attribute("assignee")).or_else(|| node.attribute((CAMUNDA, "assignee"))));
    task.candidate_groups =
        prop(assignment.and_then(|a| a.attribute("candidateGroups")).or_else(|| node.attribute((CAMUNDA, "candidateGroups"))));
    task.candidate_users =
        prop(assignment.and_then(|a| a.attribute("candidateUsers")).or_else(|| node.attribute((CAMUNDA, "candidateUsers"))));
    task.due_date = prop(schedule.and_then(|s| s.attribute("dueDate")).or_else(|| node.attribute((CAMUNDA, "dueDate"))));
    task.follow_up_date = prop(schedule.and_then(|s| s.attribute("followUpDate")).or_else(|| node.attribute((CAMUNDA, "followUpDate"))));
    task.priority = prop(extension(node, ZEEBE, "priorityDefinition").and_then(|p| p.attribute("priority")).or_else(|| node.attribute((CAMUNDA, "priority"))));
    let definition = extension(node, ZEEBE, "formDefinition");
    let attribute = |name: &str| definition.and_then(|d| d.attribute(name)).filter(|v| !v.trim().is_empty());
    if let Some(form_id) = attribute("formId") {
        task.form_key = Some(form_id.to_string());
        let binding = binding(definition, "form-invalid", id, position, diagnostics);
        task.form = Some(FormLink::Deployed { form_id: form_id.to_string(), binding });
    } else if let Some(key) = attribute("formKey").or_else(|| node.attribute((CAMUNDA, "formKey"))) {
        task.form_key = Some(key.to_string());
        task.form = Some(match key.strip_prefix(EMBEDDED_FORM) {
            Some(form) => FormLink::Embedded(form.to_string()),
            None => FormLink::External(key.to_string()),
        });
    } else if let Some(reference) = attribute("externalReference") {
        task.form_key = Some(reference.to_string());
        task.form = Some(FormLink::External(reference.to_string()));
    }
    task
}

/// How a user task's `formKey` names a form embedded in its process.
const EMBEDDED_FORM: &str = "camunda-forms:bpmn:";

/// The forms embedded in a process (`<zeebe:userTaskForm id="...">JSON</zeebe:userTaskForm>`),
/// each checked to be a JSON object; and a diagnostic for every user task naming one that is not there.
fn embedded_forms(process: Node, workflow: &Workflow, diagnostics: &mut Vec<Diagnostic>, at: impl Fn(Node) -> (u32, u32)) -> BTreeMap<String, String> {
    let mut forms = BTreeMap::new();
    let extensions = process.children().filter(|c| is(*c, BPMN, "extensionElements"));
    for form in extensions.flat_map(|e| e.children()).filter(|c| is(*c, ZEEBE, "userTaskForm")) {
        let Some(id) = form.attribute("id") else { continue };
        let body: String = form.children().filter_map(|c| c.text()).collect();
        match serde_json::from_str::<serde_json::Value>(body.trim()) {
            Ok(serde_json::Value::Object(_)) => {
                forms.insert(id.to_string(), body.trim().to_string());
            }
            _ => diagnostics.push(Diagnostic::error("form-invalid", Some(id), at(form), "the embedded form is not a JSON object (a Camunda Form's schema)".into())),
        }
    }
    for element in &workflow.elements {
        let Kind::Task(TaskKind::User(user)) = &element.kind else { continue };
        if let UserTaskDefinition { form: Some(FormLink::Embedded(form)), .. } = &**user {
            if !forms.contains_key(form) {
                diagnostics.push(Diagnostic::error(
                    "form-missing",
                    Some(&element.id),
                    (element.line, element.column),
                    format!("the user task's form '{EMBEDDED_FORM}{form}' names no <zeebe:userTaskForm id=\"{form}\"> in its process"),
                ));
            }
        }
    }
    forms
}

/// The `bindingType` (and `versionTag`) of a `zeebe:calledElement` or `zeebe:formDefinition`.
fn binding(node: Option<Node>, code: &'static str, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Binding {
    match (node.and_then(|c| c.attribute("bindingType")), node.and_then(|c| c.attribute("versionTag"))) {
        (None | Some("latest"), _) => Binding::Latest,
        (Some("deployment"), _) => Binding::Deployment,
        (Some("versionTag"), Some(tag)) if !tag.is_empty() => Binding::VersionTag(tag.to_string()),
        (Some("versionTag"), _) => {
            diagnostics.push(Diagnostic::error(code, Some(id), position, "bindingType=\"versionTag\" needs a versionTag attribute".into()));
            Binding::Latest
        }
        (Some(other), _) => {
            diagnostics.push(Diagnostic::error(code, Some(id), position, format!("bindingType '{other}' is not one of latest, deployment, versionTag")));
            Binding::Latest
        }
    }
}

/// A property: `=expr` is FEEL, anything else literal text.
fn property(text: &str, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<Property> {
    match text.trim_start().strip_prefix('=') {
        Some(source) => expression(source, id, position, diagnostics).map(Property::Expression),
        None if is_juel(text, id, position, diagnostics) => None,
        None => Some(Property::Literal(text.to_string())),
    }
}

/// An attribute that is always an expression; the leading `=` is optional.
fn expression_property(text: &str, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<Expression> {
    if is_juel(text, id, position, diagnostics) {
        return None;
    }
    let source = text.trim_start();
    expression(source.strip_prefix('=').unwrap_or(source), id, position, diagnostics)
}

/// A `conditionExpression` or `loopCondition`: FEEL unless its `language` says otherwise.
fn condition(node: Node, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<Expression> {
    let text = node.text().unwrap_or("").trim();
    if let Some(language) = node.attribute("language").map(str::trim).filter(|l| !l.is_empty()) {
        if !language.to_ascii_lowercase().contains("feel") {
            diagnostics.push(Diagnostic::error(
                "expression-language",
                Some(id),
                position,
                format!("the condition '{text}' is written in {language}; Baton evaluates FEEL conditions, such as '=amount > 100'"),
            ));
            return None;
        }
    }
    expression_property(text, id, position, diagnostics)
}

/// Reports a `${...}` or `#{...}` (JUEL, Camunda 7) expression, which Baton
/// does not run, with the FEEL to write where the translation is plain.
fn is_juel(text: &str, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> bool {
    let juel = text.contains("${") || text.contains("#{");
    if juel {
        let advice = match juel_to_feel(text) {
            Some(feel) => format!("write '={feel}' instead"),
            None => "Baton's expressions are FEEL and start with '=', for example '=amount > 100'".to_string(),
        };
        diagnostics.push(Diagnostic::error(
            "expression-juel",
            Some(id),
            position,
            format!("'{text}' is a JUEL expression (Camunda 7); {advice}"),
        ));
    }
    juel
}

/// The FEEL for a JUEL expression that is one `${...}` of names, literals,
/// comparisons and `&&`, `||`, `!`, `==`; `None` for anything else (method
/// calls, properties, several parts), where no translation is plain.
fn juel_to_feel(text: &str) -> Option<String> {
    let text = text.trim();
    let body = text.strip_prefix("${").or_else(|| text.strip_prefix("#{"))?.strip_suffix('}')?;
    if body.contains(['{', '}', '(', ')', '.', '[', '?']) {
        return None;
    }
    let mut feel = String::new();
    let mut rest = body.trim();
    while let Some(c) = rest.chars().next() {
        let two = rest.get(..2).unwrap_or("");
        let (piece, taken) = match (two, c) {
            ("&&", _) => (" and ".to_string(), 2),
            ("||", _) => (" or ".to_string(), 2),
            ("==", _) => (" = ".to_string(), 2),
            ("!=", _) => (" != ".to_string(), 2),
            (_, '!') => ("not ".to_string(), 1),
            _ => (c.to_string(), c.len_utf8()),
        };
        feel.push_str(&piece);
        rest = &rest[taken..];
    }
    // Camunda 7's multi-instance counters are Camunda 8's numberOf... variables.
    let mut feel = feel.split_whitespace().collect::<Vec<_>>().join(" ");
    for (juel_name, feel_name) in [
        ("nrOfCompletedInstances", "numberOfCompletedInstances"),
        ("nrOfActiveInstances", "numberOfActiveInstances"),
        ("nrOfInstances", "numberOfInstances"),
    ] {
        feel = feel.replace(juel_name, feel_name);
    }
    if feel.starts_with("not ") {
        feel = format!("not({})", &feel[4..]);
    } else if feel.contains("not ") {
        return None;
    }
    Expression::parse(&feel).ok().map(|_| feel)
}

fn expression(source: &str, id: &str, position: (u32, u32), diagnostics: &mut Vec<Diagnostic>) -> Option<Expression> {
    match Expression::parse(source) {
        Ok(expression) => Some(expression),
        Err(error) => {
            diagnostics.push(Diagnostic::error(
                "expression-invalid",
                Some(id),
                position,
                format!("the expression '{source}' does not parse: {}", error.message),
            ));
            None
        }
    }
}

/// An element's (or the process's) `zeebe:properties`: name and value pairs.
fn properties(node: Node) -> BTreeMap<String, String> {
    let Some(properties) = extension(node, ZEEBE, "properties") else {
        return BTreeMap::new();
    };
    properties
        .children()
        .filter(|c| is(*c, ZEEBE, "property"))
        .filter_map(|property| Some((property.attribute("name")?.to_string(), property.attribute("value").unwrap_or_default().to_string())))
        .collect()
}
