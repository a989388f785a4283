//! DMN XML to the decision model. Every expression is parsed here, in the
//! scope of the names the file defines; one that does not parse is kept as a
//! problem of its decision (reported as a diagnostic; evaluating it is an error).

use std::collections::BTreeMap;

use feel::{Expression, UnaryTests};
use roxmltree::Node;

use crate::model::*;
use crate::Diagnostic;

/// The DMN 1.1 to 1.5 namespaces all name the same elements.
fn is_dmn(node: Node) -> bool {
    node.tag_name().namespace().is_some_and(|ns| ns.contains("DMN") || ns.contains("dmn")) && node.is_element()
}

fn child<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children().find(|c| is_dmn(*c) && c.tag_name().name() == name)
}

fn children<'a>(node: Node<'a, 'a>, name: &'a str) -> impl Iterator<Item = Node<'a, 'a>> + 'a {
    node.children().filter(move |c| is_dmn(*c) && c.tag_name().name() == name)
}

fn text_of(node: Option<Node>) -> Option<String> {
    let text = child(node?, "text")?;
    Some(text.children().filter_map(|c| c.text()).collect::<String>())
}

/// An `href="#id"` reference's id.
fn href(node: Node) -> Option<String> {
    let target = node.attribute("href")?;
    Some(target.rsplit_once('#').map_or(target, |(_, id)| id).to_string())
}

/// The names and functions every expression of a file may use.
struct Scope {
    names: Vec<String>,
    functions: Vec<String>,
}

impl Scope {
    fn with(&self, more: &[String]) -> Scope {
        self.with_functions(more, &[])
    }

    fn with_functions(&self, more: &[String], functions: &[String]) -> Scope {
        let mut names = self.names.clone();
        names.extend(more.iter().cloned());
        let mut all = self.functions.clone();
        all.extend(functions.iter().cloned());
        Scope { names, functions: all }
    }

    fn expression(&self, text: &str, problems: &mut Vec<String>) -> Expr {
        match Expression::parse_in_scope(text.trim(), &self.names, &self.functions) {
            Ok(expression) => Expr::Feel(expression),
            Err(error) => {
                problems.push(format!("'{}': {}", text.trim(), error.message));
                Expr::Invalid(error.message)
            }
        }
    }

    fn tests(&self, text: &str, problems: &mut Vec<String>) -> Tests {
        match UnaryTests::parse_in_scope(text, &self.names, &self.functions) {
            Ok(tests) => Tests::Feel(tests),
            Err(error) => {
                problems.push(format!("the input entry '{}': {}", text.trim(), error.message));
                Tests::Invalid(error.message)
            }
        }
    }
}

pub(crate) fn read(xml: &str) -> Result<(Definitions, Vec<Diagnostic>), Diagnostic> {
    let document = roxmltree::Document::parse_with_options(xml, roxmltree::ParsingOptions { allow_dtd: false, ..Default::default() })
        .map_err(|e| Diagnostic::error("dmn-malformed", None, format!("the file is not well-formed XML: {e}")))?;
    let root = document.root_element();
    if !is_dmn(root) || root.tag_name().name() != "definitions" {
        return Err(Diagnostic::error("dmn-malformed", None, "the file is not DMN: its root is not <definitions> in a DMN namespace".into()));
    }
    let mut names = Vec::new();
    let mut functions = Vec::new();
    for node in root.children().filter(|c| is_dmn(*c)) {
        let Some(name) = node.attribute("name") else { continue };
        match node.tag_name().name() {
            "inputData" | "decision" => names.push(name.to_string()),
            "businessKnowledgeModel" | "decisionService" => functions.push(name.to_string()),
            _ => {}
        }
    }
    let scope = Scope { names, functions };
    let mut definitions = Definitions {
        id: root.attribute("id").unwrap_or_default().to_string(),
        name: root.attribute("name").unwrap_or_default().to_string(),
        namespace: root.attribute("namespace").unwrap_or_default().to_string(),
        ..Definitions::default()
    };
    let mut diagnostics = Vec::new();
    for node in children(root, "itemDefinition") {
        if let Some(name) = node.attribute("name") {
            definitions.types.insert(name.to_string(), item_type(node));
        }
    }
    for node in root.children().filter(|c| is_dmn(*c)) {
        let id = node.attribute("id").unwrap_or_default().to_string();
        let name = node.attribute("name").unwrap_or_default().to_string();
        let type_ref = child(node, "variable").and_then(|v| v.attribute("typeRef")).map(str::to_string);
        match node.tag_name().name() {
            "inputData" => definitions.inputs.push(InputData { id, name, type_ref }),
            "decision" => {
                let mut problems = Vec::new();
                let requires = requirements(node);
                let expression = boxed_of(node, &scope, &mut problems);
                for problem in &problems {
                    diagnostics.push(Diagnostic::error("expression-invalid", Some(&id), format!("decision '{name}': {problem}")));
                }
                if expression.is_none() {
                    diagnostics.push(Diagnostic::error("decision-logic-missing", Some(&id), format!("decision '{name}' has no decision logic")));
                }
                // Camunda 8's `<zeebe:versionTag value="..."/>`, which a business rule task can bind to.
                let version_tag = child(node, "extensionElements")
                    .and_then(|e| e.children().find(|c| c.tag_name().name() == "versionTag"))
                    .and_then(|t| t.attribute("value"))
                    .map(str::to_string);
                definitions.decisions.push(Decision { id, name, type_ref, requires, expression, version_tag });
            }
            "businessKnowledgeModel" => {
                let mut problems = Vec::new();
                let logic = child(node, "encapsulatedLogic");
                let formal: Vec<Node> = logic.map(|l| children(l, "formalParameter").filter(|p| p.attribute("name").is_some()).collect()).unwrap_or_default();
                let parameters: Vec<String> = formal.iter().filter_map(|p| p.attribute("name").map(str::to_string)).collect();
                let parameter_types: Vec<Option<String>> = formal.iter().map(|p| p.attribute("typeRef").map(str::to_string)).collect();
                let result_type = logic
                    .and_then(|l| l.children().find(|c| is_dmn(*c) && c.tag_name().name() != "formalParameter"))
                    .and_then(|c| c.attribute("typeRef"))
                    .map(str::to_string);
                let body = logic.and_then(|l| boxed_of(l, &scope.with(&parameters), &mut problems));
                for problem in &problems {
                    diagnostics.push(Diagnostic::error("expression-invalid", Some(&id), format!("business knowledge model '{name}': {problem}")));
                }
                definitions.bkms.push(Bkm { id, name, parameters, parameter_types, result_type, body, requires: requirements(node) });
            }
            "decisionService" => {
                let refs = |what: &str| children(node, what).filter_map(href).collect::<Vec<_>>();
                definitions.services.push(DecisionService {
                    id,
                    name,
                    type_ref: child(node, "variable").and_then(|v| v.attribute("typeRef")).map(str::to_string),
                    outputs: refs("outputDecision"),
                    encapsulated: refs("encapsulatedDecision"),
                    input_decisions: refs("inputDecision"),
                    input_data: refs("inputData"),
                });
            }
            _ => {}
        }
    }
    Ok((definitions, diagnostics))
}

/// An item definition or component: its base type, collection flag and components.
fn item_type(node: Node) -> ItemType {
    let base = child(node, "typeRef").and_then(|t| t.text()).or_else(|| node.attribute("typeRef")).map(|t| t.trim().to_string());
    ItemType {
        base,
        collection: node.attribute("isCollection") == Some("true"),
        components: children(node, "itemComponent").filter_map(|c| Some((c.attribute("name")?.to_string(), item_type(c)))).collect(),
        function: child(node, "functionItem").is_some(),
        output: child(node, "functionItem").and_then(|f| f.attribute("outputTypeRef")).map(|t| t.trim().to_string()),
    }
}

fn requirements(node: Node) -> Requirements {
    let mut requires = Requirements::default();
    for requirement in children(node, "informationRequirement") {
        if let Some(decision) = child(requirement, "requiredDecision").and_then(href) {
            requires.decisions.push(decision);
        }
        if let Some(input) = child(requirement, "requiredInput").and_then(href) {
            requires.inputs.push(input);
        }
    }
    for requirement in children(node, "knowledgeRequirement") {
        if let Some(knowledge) = child(requirement, "requiredKnowledge").and_then(href) {
            requires.knowledge.push(knowledge);
        }
    }
    requires
}

/// The boxed expression directly inside `node` (a decision, a context entry, a binding...).
fn boxed_of(node: Node, scope: &Scope, problems: &mut Vec<String>) -> Option<Boxed> {
    node.children().filter(|c| is_dmn(*c)).find_map(|c| boxed(c, scope, problems))
}

fn boxed(node: Node, scope: &Scope, problems: &mut Vec<String>) -> Option<Boxed> {
    Some(match node.tag_name().name() {
        "literalExpression" => {
            let text = text_of(Some(node)).unwrap_or_default();
            if text.trim().is_empty() {
                Boxed::Literal(Expr::Null)
            } else {
                Boxed::Literal(scope.expression(&text, problems))
            }
        }
        "decisionTable" => Boxed::Table(Box::new(table(node, scope, problems))),
        "context" => {
            let mut local = Vec::new();
            let mut local_functions = Vec::new();
            let mut entries = Vec::new();
            for entry in children(node, "contextEntry") {
                let name = child(entry, "variable").and_then(|v| v.attribute("name")).map(str::to_string);
                let value = boxed_of(entry, &scope.with_functions(&local, &local_functions), problems).unwrap_or(Boxed::Literal(Expr::Null));
                if let Some(name) = &name {
                    // An entry that defines a function is called by name in the entries after it.
                    if matches!(value, Boxed::Function { .. }) {
                        local_functions.push(name.clone());
                    }
                    local.push(name.clone());
                }
                entries.push((name, value));
            }
            Boxed::Context(entries)
        }
        "list" => Boxed::List(node.children().filter(|c| is_dmn(*c)).filter_map(|c| boxed(c, scope, problems)).collect()),
        "relation" => {
            let columns: Vec<String> = children(node, "column").filter_map(|c| c.attribute("name").map(str::to_string)).collect();
            let rows = children(node, "row").map(|row| row.children().filter(|c| is_dmn(*c)).filter_map(|c| boxed(c, scope, problems)).collect()).collect();
            Boxed::Relation { columns, rows }
        }
        "invocation" => {
            let function = child(node, "literalExpression").and_then(|l| text_of(Some(l))).unwrap_or_default().trim().to_string();
            let bindings = children(node, "binding")
                .map(|binding| {
                    let name = child(binding, "parameter").and_then(|p| p.attribute("name")).unwrap_or_default().to_string();
                    (name, boxed_of(binding, scope, problems).unwrap_or(Boxed::Literal(Expr::Null)))
                })
                .collect();
            Boxed::Invocation { function, bindings }
        }
        "functionDefinition" => {
            let parameters: Vec<String> = children(node, "formalParameter").filter_map(|p| p.attribute("name").map(str::to_string)).collect();
            let kind = node.attribute("kind").unwrap_or("FEEL");
            if kind != "FEEL" {
                problems.push(format!("a {kind} function definition cannot run in Baton (FEEL functions only)"));
            }
            let body = boxed_of(node, &scope.with(&parameters), problems).unwrap_or(Boxed::Literal(Expr::Null));
            Boxed::Function { parameters, body: Box::new(body) }
        }
        "conditional" => {
            let part = |name: &str, problems: &mut Vec<String>| {
                child(node, name).and_then(|p| boxed_of(p, scope, problems)).unwrap_or(Boxed::Literal(Expr::Null))
            };
            let condition = part("if", problems);
            let then = part("then", problems);
            let otherwise = part("else", problems);
            Boxed::Conditional(Box::new([condition, then, otherwise]))
        }
        "filter" => {
            let input = child(node, "in").and_then(|p| boxed_of(p, scope, problems)).unwrap_or(Boxed::Literal(Expr::Null));
            let condition = child(node, "match").and_then(|p| boxed_of(p, &scope.with(&["item".into()]), problems)).unwrap_or(Boxed::Literal(Expr::Null));
            Boxed::Filter(Box::new([input, condition]))
        }
        "for" | "some" | "every" => {
            let (kind, body) = match node.tag_name().name() {
                "for" => (IteratorKind::For, "return"),
                "some" => (IteratorKind::Some, "satisfies"),
                _ => (IteratorKind::Every, "satisfies"),
            };
            let variable = node.attribute("iteratorVariable").unwrap_or("item").to_string();
            let input = child(node, "in").and_then(|p| boxed_of(p, scope, problems)).unwrap_or(Boxed::Literal(Expr::Null));
            let body = child(node, body).and_then(|p| boxed_of(p, &scope.with(std::slice::from_ref(&variable)), problems)).unwrap_or(Boxed::Literal(Expr::Null));
            Boxed::Iterator { kind, variable, parts: Box::new([input, body]) }
        }
        _ => return None,
    })
}

fn table(node: Node, scope: &Scope, problems: &mut Vec<String>) -> DecisionTable {
    let hit_policy = match node.attribute("hitPolicy").unwrap_or("UNIQUE") {
        "ANY" => HitPolicy::Any,
        "PRIORITY" => HitPolicy::Priority,
        "FIRST" => HitPolicy::First,
        "RULE ORDER" => HitPolicy::RuleOrder,
        "OUTPUT ORDER" => HitPolicy::OutputOrder,
        "COLLECT" => HitPolicy::Collect,
        _ => HitPolicy::Unique,
    };
    let aggregation = match node.attribute("aggregation") {
        Some("SUM") => Some(Aggregation::Sum),
        Some("COUNT") => Some(Aggregation::Count),
        Some("MIN") => Some(Aggregation::Min),
        Some("MAX") => Some(Aggregation::Max),
        _ => None,
    };
    let inputs = children(node, "input")
        .map(|input| {
            let expression = child(input, "inputExpression");
            let text = text_of(expression).unwrap_or_default();
            TableInput {
                label: input.attribute("label").map(str::to_string).or_else(|| Some(text.trim().to_string())),
                expression: if text.trim().is_empty() { Expr::Null } else { scope.expression(&text, problems) },
                allowed: text_of(child(input, "inputValues")).map(|t| scope.tests(&t, problems)),
            }
        })
        .collect::<Vec<_>>();
    let outputs: Vec<TableOutput> = children(node, "output")
        .map(|output| TableOutput {
            name: output.attribute("name").map(str::to_string),
            allowed: text_of(child(output, "outputValues")).and_then(|t| priority_values(&t, scope, problems)),
            default: text_of(child(output, "defaultOutputEntry")).map(|t| scope.expression(&t, problems)),
        })
        .collect();
    let rules = children(node, "rule")
        .map(|rule| TableRule {
            inputs: children(rule, "inputEntry").map(|e| scope.tests(&text_of(Some(e)).unwrap_or_default(), problems)).collect(),
            outputs: children(rule, "outputEntry")
                .map(|e| {
                    let text = text_of(Some(e)).unwrap_or_default();
                    if text.trim().is_empty() || text.trim() == "-" {
                        Expr::Null
                    } else {
                        scope.expression(&text, problems)
                    }
                })
                .collect(),
        })
        .collect();
    DecisionTable { hit_policy, aggregation, inputs, outputs, rules }
}

/// An output's allowed values, in priority order (for PRIORITY and OUTPUT
/// ORDER): the comma-separated values are read as one FEEL list.
fn priority_values(text: &str, scope: &Scope, problems: &mut Vec<String>) -> Option<Expr> {
    match scope.expression(&format!("[{text}]"), problems) {
        Expr::Feel(list) => Some(Expr::Feel(list)),
        _ => None,
    }
}

/// Names keyed for lookups.
pub(crate) fn index(definitions: &mut Definitions) {
    let mut by_id = BTreeMap::new();
    let mut by_name = BTreeMap::new();
    for (i, decision) in definitions.decisions.iter().enumerate() {
        by_id.insert(decision.id.clone(), Element::Decision(i));
        by_name.insert(decision.name.clone(), Element::Decision(i));
    }
    for (i, input) in definitions.inputs.iter().enumerate() {
        by_id.insert(input.id.clone(), Element::Input(i));
        by_name.insert(input.name.clone(), Element::Input(i));
    }
    for (i, bkm) in definitions.bkms.iter().enumerate() {
        by_id.insert(bkm.id.clone(), Element::Bkm(i));
        by_name.insert(bkm.name.clone(), Element::Bkm(i));
    }
    for (i, service) in definitions.services.iter().enumerate() {
        by_id.insert(service.id.clone(), Element::Service(i));
        by_name.insert(service.name.clone(), Element::Service(i));
    }
    definitions.by_id = by_id;
    definitions.by_name = by_name;
}
