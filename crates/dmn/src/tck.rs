//! The DMN TCK's test-case files (`*-test-*.xml`): input values and the
//! expected result of each decision, and running them against a model.
//! Reading the files from disk is the caller's (`baton dmn-tck`).

use std::collections::BTreeMap;

use feel::{Expression, NoVariables, Value};
use roxmltree::Node;
use rust_decimal::Decimal;

use crate::Definitions;

/// One test case of a file.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    /// For a business knowledge model or decision service under test: its name.
    pub invocable: Option<String>,
    pub inputs: BTreeMap<String, Value>,
    pub results: Vec<Expected>,
}

#[derive(Clone, Debug)]
pub struct Expected {
    /// The decision whose result is checked.
    pub name: String,
    /// The expected value; `None` when the file could not be read (the result then fails).
    pub value: Result<Value, String>,
    /// The test expects an error (the result is null, or the evaluation fails).
    pub error: bool,
}

fn element<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

fn elements<'a>(node: Node<'a, 'a>, name: &'a str) -> impl Iterator<Item = Node<'a, 'a>> + 'a {
    node.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The model the cases are for, and the cases.
pub fn parse(xml: &str) -> Result<(String, Vec<Case>), String> {
    let document = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = document.root_element();
    let model = element(root, "modelName").and_then(|m| m.text()).unwrap_or_default().trim().to_string();
    let mut cases = Vec::new();
    for case in elements(root, "testCase") {
        let mut inputs = BTreeMap::new();
        for input in elements(case, "inputNode") {
            let name = input.attribute("name").unwrap_or_default().to_string();
            // An input value the reader cannot make is null (its results will fail if it mattered).
            inputs.insert(name, value_of(input).unwrap_or(Value::Null));
        }
        let results = elements(case, "resultNode")
            .map(|result| Expected {
                name: result.attribute("name").unwrap_or_default().to_string(),
                value: element(result, "expected").map_or(Ok(Value::Null), value_of),
                error: result.attribute("errorResult") == Some("true"),
            })
            .collect();
        cases.push(Case {
            id: case.attribute("id").unwrap_or_default().to_string(),
            invocable: case.attribute("invocableName").map(str::to_string),
            inputs,
            results,
        });
    }
    Ok((model, cases))
}

/// The value inside a node: `<value>`, `<list>` of `<item>`s, or `<component>`s of a context.
fn value_of(node: Node) -> Result<Value, String> {
    if let Some(value) = element(node, "value") {
        return typed(value);
    }
    if let Some(list) = element(node, "list") {
        return Ok(Value::List(elements(list, "item").map(value_of).collect::<Result<_, _>>()?));
    }
    let components: Vec<Node> = elements(node, "component").collect();
    if !components.is_empty() {
        let mut map = BTreeMap::new();
        for component in components {
            map.insert(component.attribute("name").unwrap_or_default().to_string(), value_of(component)?);
        }
        return Ok(Value::Context(map));
    }
    Ok(Value::Null)
}

fn typed(value: Node) -> Result<Value, String> {
    let nil = value.attributes().any(|a| a.name() == "nil" && a.value() == "true");
    if nil {
        return Ok(Value::Null);
    }
    let text = value.text().unwrap_or_default();
    if let Some(list) = element(value, "list") {
        return Ok(Value::List(elements(list, "item").map(value_of).collect::<Result<_, _>>()?));
    }
    let kind = value.attributes().find(|a| a.name() == "type").map(|a| a.value().rsplit(':').next().unwrap_or_default().to_string());
    let feel = |function: &str| -> Result<Value, String> {
        let source = format!("{function}({})", serde_json::to_string(text.trim()).unwrap_or_default());
        let value = Expression::parse(&source).map_err(|e| e.to_string())?.evaluate_value(&NoVariables).map_err(|e| e.to_string())?;
        match value {
            Value::Null => Err(format!("{function} \"{}\" cannot be read", text.trim())),
            value => Ok(value),
        }
    };
    match kind.as_deref() {
        Some("decimal" | "double" | "integer" | "int" | "long" | "float") => {
            let trimmed = text.trim();
            match trimmed {
                "NaN" | "INF" | "-INF" => Ok(Value::Null),
                _ => trimmed
                    .parse::<Decimal>()
                    .or_else(|_| Decimal::from_scientific(trimmed))
                    .map(Value::Number)
                    .map_err(|_| format!("the number {trimmed} cannot be read")),
            }
        }
        Some("boolean") => Ok(Value::Bool(text.trim() == "true")),
        Some("date") => feel("date"),
        Some("dateTime") => feel("date and time"),
        Some("time") => feel("time"),
        Some("duration") => feel("duration"),
        _ => Ok(Value::String(text.to_string())),
    }
}

/// Each result of a case: its name, and whether it passed (else why not).
/// `now` is the time `now()` and `today()` give (the runner's clock: the TCK only checks their types).
pub fn run(definitions: &Definitions, case: &Case, now: Option<i64>) -> Vec<(String, Result<(), String>)> {
    case.results
        .iter()
        .map(|expected| {
            let outcome = match &case.invocable {
                // A service with several outputs answers a context: the result checked is the named output's.
                Some(invocable) if definitions.decision(invocable).is_none() => definitions.invoke(invocable, &case.inputs).map(|value| match value {
                    Value::Context(map) if map.contains_key(&expected.name) => map[&expected.name].clone(),
                    other => other,
                }),
                _ => definitions.evaluate_at(&expected.name, &case.inputs, now).map(|e| e.value),
            };
            let verdict = match (&expected.value, outcome) {
                (Err(unreadable), _) => Err(format!("the expected value cannot be read: {unreadable}")),
                (_, Err(error)) if expected.error => {
                    let _ = error;
                    Ok(())
                }
                (_, Ok(Value::Null)) if expected.error => Ok(()),
                (Ok(want), Ok(got)) if same(want, &got) => Ok(()),
                (Ok(want), Ok(got)) => Err(format!("expected {want}, got {got}")),
                (Ok(Value::Null), Err(_)) => Ok(()),
                (Ok(want), Err(error)) => Err(format!("expected {want}, the evaluation failed: {error}")),
            };
            (expected.name.clone(), verdict)
        })
        .collect()
}

/// Equal as the TCK compares results: numbers to within one part in 10^8
/// (the suite writes `exp`, `log` and `stddev` results with 8 to 13
/// decimals, and compound interest as binary floating point computes it,
/// wrong from the 13th digit on, while Baton computes with 28 decimal
/// digits), lists item by item, contexts entry by entry.
pub fn same(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => {
            let difference = (*a - *b).abs();
            difference.is_zero() || difference <= a.abs().max(Decimal::ONE) * Decimal::new(1, 8)
        }
        (Value::List(a), Value::List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (Value::Context(a), Value::Context(b)) => a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w))),
        _ => want == got,
    }
}
