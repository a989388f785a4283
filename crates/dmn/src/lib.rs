//! DMN decisions for Baton: a DMN 1.1–1.5 file read into decisions, input
//! data, business knowledge models and decision services, and a decision
//! evaluated against input values. FEEL is Baton's own (`feel`), shared with
//! BPMN expressions. Pure: no I/O, no clock.
//!
//! Supported: decision tables (every hit policy, COLLECT aggregations,
//! default outputs, input and output values), literal expressions, contexts
//! (with function entries), lists, relations, invocations, function
//! definitions, conditionals and filters; business knowledge models and
//! decision services called from FEEL or by invocation; required decisions
//! evaluated once each. Types: a result that is not of its decision's
//! built-in type is null.

mod eval;
mod model;
mod read;
pub mod tck;

use std::collections::BTreeMap;

pub use feel::Value;
pub use model::*;

/// A problem of a DMN file. Errors stop a deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: String,
    /// The id of the element it is about.
    pub element: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn error(code: &str, element: Option<&str>, message: String) -> Diagnostic {
        Diagnostic { code: code.into(), element: element.map(str::to_string), message }
    }
}

/// Whether text looks like a DMN file (its root element is DMN's `definitions`).
pub fn is_dmn(text: &str) -> bool {
    let head = &text[..text.len().min(4096)];
    head.contains("<definitions") && (head.contains("/DMN/") || head.contains("dmn"))
}

/// Reads a DMN file leniently: the model, with every expression that does not
/// parse kept as an error of its decision, and the diagnostics.
pub fn read(xml: &str) -> Result<(Definitions, Vec<Diagnostic>), Diagnostic> {
    let (mut definitions, diagnostics) = read::read(xml)?;
    read::index(&mut definitions);
    Ok((definitions, diagnostics))
}

/// Reads a DMN file for deployment: refused with every problem when it has any.
pub fn import(xml: &str) -> Result<Definitions, Vec<Diagnostic>> {
    let (definitions, diagnostics) = read(xml).map_err(|d| vec![d])?;
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    if definitions.decisions.is_empty() {
        return Err(vec![Diagnostic::error("decision-missing", None, "the file defines no decision".into())]);
    }
    Ok(definitions)
}

/// A decision's result, and which rules of each decision table matched.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub value: Value,
    /// For each decision table evaluated: its decision's name and the numbers (from 1) of the rules that matched.
    pub matched: Vec<(String, Vec<usize>)>,
}

impl Definitions {
    /// A decision by id, or else by name.
    pub fn decision(&self, key: &str) -> Option<&Decision> {
        self.decision_index(key).map(|i| &self.decisions[i])
    }

    fn decision_index(&self, key: &str) -> Option<usize> {
        [self.by_id.get(key), self.by_name.get(key)].into_iter().flatten().find_map(|e| match e {
            Element::Decision(i) => Some(*i),
            _ => None,
        })
    }

    /// Evaluates the decision `key` (an id or a name), and the decisions it
    /// requires, with these input values (by input data name; a required
    /// decision given here is taken as given).
    pub fn evaluate(&self, key: &str, inputs: &BTreeMap<String, Value>) -> Result<Evaluation, String> {
        self.evaluate_at(key, inputs, None)
    }

    /// As [`Definitions::evaluate`], with the time `now()` and `today()` give
    /// (milliseconds since 1970, UTC: the engine's step, never read here).
    pub fn evaluate_at(&self, key: &str, inputs: &BTreeMap<String, Value>, now: Option<i64>) -> Result<Evaluation, String> {
        let index = self.decision_index(key).ok_or_else(|| format!("no decision '{key}' in {}", self.name))?;
        let mut run = eval::Run::new(self, inputs);
        run.clock = now;
        let value = run.decision(index)?;
        Ok(Evaluation { value, matched: run.matched.take() })
    }

    /// Calls a business knowledge model or a decision service by name with named arguments.
    pub fn invoke(&self, name: &str, arguments: &BTreeMap<String, Value>) -> Result<Value, String> {
        let empty = BTreeMap::new();
        let run = eval::Run::new(self, &empty);
        run.invoke(name, arguments)
    }
}
