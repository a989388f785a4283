//! Evaluating decisions: each required decision once, business knowledge
//! models as functions, decision tables by their hit policy.

use std::cell::RefCell;
use std::collections::BTreeMap;

use feel::{EvalError, Value, Variables};
use rust_decimal::Decimal;

use crate::model::*;

/// Deepest chain of decisions and function calls one evaluation may follow.
const MAX_DEPTH: usize = 64;

pub(crate) struct Run<'d> {
    pub(crate) definitions: &'d Definitions,
    pub(crate) inputs: &'d BTreeMap<String, Value>,
    /// The time `now()` and `today()` give (milliseconds since 1970); `None`: they are null.
    pub(crate) clock: Option<i64>,
    /// Decisions evaluated so far, by index: each runs once per evaluation.
    decided: RefCell<BTreeMap<usize, Result<Value, String>>>,
    /// Which rules matched in each decision table evaluated (decision name, rule numbers from 1).
    pub(crate) matched: RefCell<Vec<(String, Vec<usize>)>>,
    depth: RefCell<usize>,
}

impl<'d> Run<'d> {
    pub(crate) fn new(definitions: &'d Definitions, inputs: &'d BTreeMap<String, Value>) -> Run<'d> {
        Run { definitions, inputs, clock: None, decided: RefCell::new(BTreeMap::new()), matched: RefCell::new(Vec::new()), depth: RefCell::new(0) }
    }

    fn deeper<T>(&self, what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        {
            let mut depth = self.depth.borrow_mut();
            if *depth >= MAX_DEPTH {
                return Err(format!("{what}: decisions and functions call each other more than {MAX_DEPTH} deep"));
            }
            *depth += 1;
        }
        let result = f();
        *self.depth.borrow_mut() -= 1;
        result
    }

    pub(crate) fn decision(&self, index: usize) -> Result<Value, String> {
        if let Some(done) = self.decided.borrow().get(&index) {
            return done.clone();
        }
        let decision = &self.definitions.decisions[index];
        let result = self.deeper(&decision.name, || {
            let expression = decision.expression.as_ref().ok_or_else(|| format!("decision '{}' has no decision logic", decision.name))?;
            let scope = Scope { run: self, locals: Vec::new(), functions: Vec::new() };
            let value = scope.boxed(expression, Some(&decision.name))?;
            Ok(conform_to(self.definitions, value, decision.type_ref.as_deref(), 0))
        });
        self.decided.borrow_mut().insert(index, result.clone());
        result
    }

    /// Calls a business knowledge model or decision service with positional or named arguments.
    fn call_element(&self, element: Element, arguments: Arguments) -> Result<Value, String> {
        // A call with more or fewer arguments than the function has parameters has no answer.
        let count = match element {
            Element::Bkm(index) => self.definitions.bkms[index].parameters.len(),
            Element::Service(index) => self.definitions.services[index].input_data.len() + self.definitions.services[index].input_decisions.len(),
            _ => 0,
        };
        if matches!(&arguments, Arguments::Positional(values) if values.len() != count) {
            return Ok(Value::Null);
        }
        match element {
            Element::Bkm(index) => {
                let bkm = &self.definitions.bkms[index];
                let body = bkm.body.as_ref().ok_or_else(|| format!("business knowledge model '{}' has no logic", bkm.name))?;
                self.deeper(&bkm.name, || {
                    let locals = arguments.bind(&bkm.parameters);
                    // An argument that does not conform to its parameter's type makes the call null.
                    let mut locals = locals;
                    for ((_, value), type_ref) in locals.iter_mut().zip(&bkm.parameter_types) {
                        let conformed = conform_to(self.definitions, value.clone(), type_ref.as_deref(), 0);
                        if conformed == Value::Null && *value != Value::Null {
                            return Ok(Value::Null);
                        }
                        *value = conformed;
                    }
                    let scope = Scope { run: self, locals, functions: Vec::new() };
                    // Logic that is a function definition is the function the model returns.
                    scope.boxed(body, None)
                    .map(|result| conform_to(self.definitions, result, bkm.result_type.as_deref(), 0))
                })
            }
            Element::Service(index) => {
                let service = &self.definitions.services[index];
                // The service's parameters: its input data, then its input decisions.
                let parameters: Vec<String> = service
                    .input_data
                    .iter()
                    .chain(&service.input_decisions)
                    .filter_map(|id| self.name_of(id))
                    .collect();
                // Each parameter as its input data's or input decision's type allows (else null).
                let types = service.input_data.iter().chain(&service.input_decisions).map(|id| match self.definitions.by_id.get(id) {
                    Some(Element::Input(i)) => self.definitions.inputs[*i].type_ref.clone(),
                    Some(Element::Decision(i)) => self.definitions.decisions[*i].type_ref.clone(),
                    _ => None,
                });
                let mut given = BTreeMap::new();
                for ((name, value), type_ref) in arguments.bind(&parameters).into_iter().zip(types) {
                    let conformed = conform_to(self.definitions, value.clone(), type_ref.as_deref(), 0);
                    // An argument of another type: the service is not invoked.
                    if conformed == Value::Null && value != Value::Null {
                        return Ok(Value::Null);
                    }
                    given.insert(name, conformed);
                }
                let mut inner = Run::new(self.definitions, &given);
                inner.clock = self.clock;
                // The service's input decisions are given, not evaluated.
                for id in &service.input_decisions {
                    if let (Some(Element::Decision(i)), Some(name)) = (self.definitions.by_id.get(id), self.name_of(id)) {
                        inner.decided.borrow_mut().insert(*i, Ok(given.get(&name).cloned().unwrap_or(Value::Null)));
                    }
                }
                let mut results = BTreeMap::new();
                for id in &service.outputs {
                    if let Some(Element::Decision(i)) = self.definitions.by_id.get(id) {
                        results.insert(self.definitions.decisions[*i].name.clone(), inner.decision(*i)?);
                    }
                }
                let result = if results.len() == 1 { results.into_values().next().unwrap_or(Value::Null) } else { Value::Context(results) };
                // The service's type is a function type: its result conforms to the function's output type.
                let output = service.type_ref.as_deref().and_then(|t| self.definitions.types.get(t)).and_then(|t| t.output.clone());
                Ok(conform_to(self.definitions, result, output.as_deref(), 0))
            }
            _ => Err("not a function".into()),
        }
    }

    pub(crate) fn invoke(&self, name: &str, arguments: &BTreeMap<String, Value>) -> Result<Value, String> {
        match self.definitions.by_name.get(name) {
            Some(element @ (Element::Bkm(_) | Element::Service(_))) => self.call_element(*element, Arguments::Named(arguments.clone())),
            _ => Err(format!("no business knowledge model or decision service '{name}'")),
        }
    }

    fn name_of(&self, id: &str) -> Option<String> {
        Some(match self.definitions.by_id.get(id)? {
            Element::Decision(i) => self.definitions.decisions[*i].name.clone(),
            Element::Input(i) => self.definitions.inputs[*i].name.clone(),
            Element::Bkm(i) => self.definitions.bkms[*i].name.clone(),
            Element::Service(i) => self.definitions.services[*i].name.clone(),
        })
    }
}

/// A call's arguments: by position, or by parameter name.
enum Arguments {
    Positional(Vec<Value>),
    Named(BTreeMap<String, Value>),
}

impl Arguments {
    fn bind(&self, parameters: &[String]) -> Vec<(String, Value)> {
        parameters
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let value = match self {
                    Arguments::Positional(values) => values.get(i).cloned(),
                    Arguments::Named(values) => values.get(name).cloned(),
                };
                (name.clone(), value.unwrap_or(Value::Null))
            })
            .collect()
    }
}

/// What names mean where an expression is evaluated.
struct Scope<'r, 'd> {
    run: &'r Run<'d>,
    /// Parameters and context entries, innermost last.
    locals: Vec<(String, Value)>,
    /// Functions defined by context entries: name, parameters, body.
    functions: Vec<(String, Vec<String>, Boxed)>,
}

impl Variables for Scope<'_, '_> {
    fn get(&self, _name: &str) -> Option<&serde_json::Value> {
        None
    }

    fn get_value(&self, name: &str) -> Option<Value> {
        if let Some((_, value)) = self.locals.iter().rev().find(|(n, _)| n == name) {
            return Some(value.clone());
        }
        if let Some(value) = self.run.inputs.get(name) {
            return Some(value.clone());
        }
        match self.run.definitions.by_name.get(name)? {
            Element::Decision(i) => Some(self.run.decision(*i).unwrap_or(Value::Null)),
            Element::Input(_) => Some(Value::Null),
            // A business knowledge model named as a value (passed to another) is its function, when its logic is FEEL.
            Element::Bkm(i) => match &self.run.definitions.bkms[*i].body {
                Some(Boxed::Literal(Expr::Feel(expression))) => Some(expression.function(self.run.definitions.bkms[*i].parameters.clone())),
                _ => None,
            },
            Element::Service(_) => None,
        }
    }

    fn clock(&self) -> Option<i64> {
        self.run.clock
    }

    fn type_definition(&self, name: &str) -> Option<String> {
        self.run.definitions.types.get(name).map(type_text)
    }

    fn seed(&self) -> Option<u64> {
        self.run.clock.map(|ms| ms as u64)
    }

    fn call_named(&self, name: &str, arguments: Vec<(String, Value)>) -> Option<Result<Value, EvalError>> {
        let result = Scope::call_named(self, name, Arguments::Named(arguments.into_iter().collect()))?;
        Some(Ok(result.unwrap_or(Value::Null)))
    }

    fn call(&self, name: &str, arguments: Vec<Value>) -> Option<Result<Value, EvalError>> {
        let result = Scope::call_named(self, name, Arguments::Positional(arguments))?;
        // An error inside a called function is FEEL's null for the caller.
        Some(Ok(result.unwrap_or(Value::Null)))
    }
}

impl Scope<'_, '_> {
    fn call_named(&self, name: &str, arguments: Arguments) -> Option<Result<Value, String>> {
        if let Some((_, parameters, body)) = self.functions.iter().rev().find(|(n, ..)| n == name) {
            let mut locals = self.locals.clone();
            locals.extend(arguments.bind(parameters));
            let scope = Scope { run: self.run, locals, functions: self.functions.clone() };
            return Some(scope.boxed(body, None));
        }
        let element = *self.run.definitions.by_name.get(name)?;
        matches!(element, Element::Bkm(_) | Element::Service(_)).then(|| self.run.call_element(element, arguments))
    }

    fn expr(&self, expr: &Expr) -> Result<Value, String> {
        match expr {
            Expr::Feel(expression) => expression.evaluate_value(self).map_err(|e| format!("'{}': {e}", expression.source())),
            Expr::Null => Ok(Value::Null),
            Expr::Invalid(message) => Err(message.clone()),
        }
    }

    fn boxed(&self, boxed: &Boxed, decision: Option<&str>) -> Result<Value, String> {
        match boxed {
            Boxed::Literal(expr) => self.expr(expr),
            Boxed::Table(table) => self.table(table, decision),
            Boxed::Context(entries) => {
                let mut scope = Scope { run: self.run, locals: self.locals.clone(), functions: self.functions.clone() };
                let mut map = BTreeMap::new();
                let last = entries.len().saturating_sub(1);
                for (i, (name, value)) in entries.iter().enumerate() {
                    if let (Some(name), Boxed::Function { parameters, body }) = (name, value) {
                        scope.functions.push((name.clone(), parameters.clone(), (**body).clone()));
                        // A function whose body is FEEL is also a value of the context (`library.multiply(2, 3)`).
                        if let Boxed::Literal(Expr::Feel(expression)) = &**body {
                            map.insert(name.clone(), expression.function(parameters.clone()));
                        }
                        continue;
                    }
                    let result = scope.boxed(value, None)?;
                    match name {
                        Some(name) => {
                            scope.locals.push((name.clone(), result.clone()));
                            map.insert(name.clone(), result);
                        }
                        None if i == last => return Ok(result),
                        None => {}
                    }
                }
                Ok(Value::Context(map))
            }
            Boxed::List(items) => Ok(Value::List(items.iter().map(|item| self.boxed(item, None)).collect::<Result<_, _>>()?)),
            Boxed::Relation { columns, rows } => {
                let mut list = Vec::new();
                for row in rows {
                    let mut map = BTreeMap::new();
                    for (column, cell) in columns.iter().zip(row) {
                        map.insert(column.clone(), self.boxed(cell, None)?);
                    }
                    list.push(Value::Context(map));
                }
                Ok(Value::List(list))
            }
            Boxed::Invocation { function, bindings } => {
                let mut named = BTreeMap::new();
                for (name, value) in bindings {
                    named.insert(name.clone(), self.boxed(value, None)?);
                }
                self.call_named(function, Arguments::Named(named)).unwrap_or_else(|| Err(format!("'{function}' is not a function this decision can call")))
            }
            // A function whose body is FEEL is a value (a decision may give one to another).
            Boxed::Function { parameters, body } => match &**body {
                Boxed::Literal(Expr::Feel(expression)) => Ok(expression.closure(parameters.clone(), self.locals.clone())),
                _ => Err("a function definition whose body is not a FEEL expression is not a value here".into()),
            },
            Boxed::Conditional(parts) => {
                let [condition, then, otherwise] = &**parts;
                match self.boxed(condition, None)? {
                    Value::Bool(true) => self.boxed(then, None),
                    Value::Bool(false) | Value::Null => self.boxed(otherwise, None),
                    // A condition that is not a boolean has no answer.
                    _ => Ok(Value::Null),
                }
            }
            Boxed::Filter(parts) => {
                let [input, condition] = &**parts;
                let items = match self.boxed(input, None)? {
                    Value::List(items) => items,
                    Value::Null => return Ok(Value::Null),
                    single => vec![single],
                };
                let mut kept = Vec::new();
                for item in items {
                    let mut locals = self.locals.clone();
                    if let Value::Context(map) = &item {
                        locals.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    locals.push(("item".into(), item.clone()));
                    let scope = Scope { run: self.run, locals, functions: self.functions.clone() };
                    match scope.boxed(condition, None)? {
                        Value::Bool(true) => kept.push(item),
                        Value::Bool(false) | Value::Null => {}
                        // A match that is not a boolean leaves no answer.
                        _ => return Ok(Value::Null),
                    }
                }
                Ok(Value::List(kept))
            }
            Boxed::Iterator { kind, variable, parts } => {
                let [input, body] = &**parts;
                let items = match self.boxed(input, None)? {
                    Value::List(items) => items,
                    Value::Null => return Ok(Value::Null),
                    single => vec![single],
                };
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    let mut locals = self.locals.clone();
                    locals.push((variable.clone(), item));
                    let scope = Scope { run: self.run, locals, functions: self.functions.clone() };
                    results.push(scope.boxed(body, None)?);
                }
                // `some` and `every` answer only for true and false.
                let booleans = results.iter().all(|r| matches!(r, Value::Bool(_)));
                Ok(match kind {
                    IteratorKind::For => Value::List(results),
                    _ if !booleans => Value::Null,
                    IteratorKind::Some => Value::Bool(results.contains(&Value::Bool(true))),
                    IteratorKind::Every => Value::Bool(results.iter().all(|r| *r == Value::Bool(true))),
                })
            }
        }
    }

    fn tests(&self, tests: &Tests, input: &Value) -> Result<bool, String> {
        match tests {
            Tests::Feel(tests) => tests.matches(input, self).map_err(|e| format!("'{}': {e}", tests.source())),
            Tests::Invalid(message) => Err(message.clone()),
        }
    }

    fn table(&self, table: &DecisionTable, decision: Option<&str>) -> Result<Value, String> {
        let mut inputs = Vec::with_capacity(table.inputs.len());
        for input in &table.inputs {
            let value = self.expr(&input.expression)?;
            // A value outside the input's allowed values is an error of the table.
            if let Some(allowed) = &input.allowed {
                if !matches!(value, Value::Null) && !self.tests(allowed, &value)? {
                    return Err(format!("the input {} is {value}, which is not one of its allowed values", input.label.as_deref().unwrap_or("?")));
                }
            }
            inputs.push(value);
        }
        let mut hits = Vec::new();
        for (number, rule) in table.rules.iter().enumerate() {
            let mut all = true;
            for (test, value) in rule.inputs.iter().zip(&inputs) {
                if !self.tests(test, value)? {
                    all = false;
                    break;
                }
            }
            if all {
                hits.push(number);
            }
        }
        self.run.matched.borrow_mut().push((decision.unwrap_or_default().to_string(), hits.iter().map(|n| n + 1).collect()));
        let single = table.outputs.len() <= 1;
        let output = |rule: usize| -> Result<Vec<Value>, String> {
            table.rules[rule].outputs.iter().map(|e| self.expr(e)).collect()
        };
        let shape = |values: Vec<Value>| -> Value {
            if single {
                values.into_iter().next().unwrap_or(Value::Null)
            } else {
                Value::Context(table.outputs.iter().zip(values).map(|(o, v)| (o.name.clone().unwrap_or_default(), v)).collect())
            }
        };
        if hits.is_empty() {
            let defaults: Vec<Value> = table.outputs.iter().map(|o| o.default.as_ref().map_or(Ok(Value::Null), |d| self.expr(d))).collect::<Result<_, _>>()?;
            let any_default = table.outputs.iter().any(|o| o.default.is_some());
            return Ok(match table.hit_policy {
                HitPolicy::Collect if table.aggregation == Some(Aggregation::Count) => Value::Number(Decimal::ZERO),
                _ if any_default => shape(defaults),
                _ => Value::Null,
            });
        }
        let rows: Vec<Vec<Value>> = hits.iter().map(|&rule| output(rule)).collect::<Result<_, _>>()?;
        let numbers = || hits.iter().map(|n| (n + 1).to_string()).collect::<Vec<_>>().join(", ");
        Ok(match table.hit_policy {
            HitPolicy::Unique => {
                if rows.len() > 1 {
                    return Err(format!("hit policy UNIQUE, but rules {} matched", numbers()));
                }
                shape(rows.into_iter().next().unwrap_or_default())
            }
            HitPolicy::Any => {
                if rows.windows(2).any(|pair| pair[0] != pair[1]) {
                    return Err(format!("hit policy ANY, but rules {} matched with different outputs", numbers()));
                }
                shape(rows.into_iter().next().unwrap_or_default())
            }
            HitPolicy::First => shape(rows.into_iter().next().unwrap_or_default()),
            HitPolicy::RuleOrder => Value::List(rows.into_iter().map(shape).collect()),
            HitPolicy::Priority | HitPolicy::OutputOrder => {
                let orders: Vec<Option<Vec<Value>>> = table
                    .outputs
                    .iter()
                    .map(|o| match o.allowed.as_ref().map(|a| self.expr(a)) {
                        Some(Ok(Value::List(values))) => Some(values),
                        _ => None,
                    })
                    .collect();
                let rank = |row: &Vec<Value>| -> Vec<usize> {
                    row.iter()
                        .zip(&orders)
                        .map(|(value, order)| order.as_ref().and_then(|o| o.iter().position(|v| v == value)).unwrap_or(usize::MAX))
                        .collect()
                };
                let mut ranked: Vec<(Vec<usize>, usize, Vec<Value>)> = rows.into_iter().enumerate().map(|(i, row)| (rank(&row), i, row)).collect();
                ranked.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                if table.hit_policy == HitPolicy::Priority {
                    shape(ranked.into_iter().next().map(|(_, _, row)| row).unwrap_or_default())
                } else {
                    Value::List(ranked.into_iter().map(|(_, _, row)| shape(row)).collect())
                }
            }
            HitPolicy::Collect => {
                let values: Vec<Value> = rows.into_iter().map(shape).collect();
                match table.aggregation {
                    None => Value::List(values),
                    Some(Aggregation::Count) => Value::Number(Decimal::from(values.len())),
                    Some(aggregation) => {
                        let numbers: Option<Vec<Decimal>> = values.iter().map(|v| if let Value::Number(n) = v { Some(*n) } else { None }).collect();
                        match (numbers, aggregation) {
                            (Some(numbers), Aggregation::Sum) => numbers.iter().try_fold(Decimal::ZERO, |sum, n| sum.checked_add(*n)).map_or(Value::Null, Value::Number),
                            (Some(numbers), Aggregation::Min) => numbers.into_iter().min().map_or(Value::Null, Value::Number),
                            (Some(numbers), Aggregation::Max) => numbers.into_iter().max().map_or(Value::Null, Value::Number),
                            _ => Value::Null,
                        }
                    }
                }
            }
        })
    }
}

/// An item definition as FEEL's type syntax writes it (`list<number>`,
/// `context<a: string>`), for `instance of`; allowed values do not narrow it.
fn type_text(item: &ItemType) -> String {
    let single = if item.function {
        "function".to_string()
    } else if !item.components.is_empty() {
        let members: Vec<String> = item.components.iter().map(|(name, component)| format!("{name}: {}", type_text(component))).collect();
        format!("context<{}>", members.join(", "))
    } else {
        item.base.clone().unwrap_or_else(|| "Any".to_string())
    };
    if item.collection {
        format!("list<{single}>")
    } else {
        single
    }
}

/// A value as a type of the file (an item definition) or a built-in one
/// allows: a list of conforming items for a collection (a single value stands
/// for a list of one), a context with every component conforming for a
/// structure; else null.
pub(crate) fn conform_to(definitions: &Definitions, value: Value, type_ref: Option<&str>, depth: usize) -> Value {
    let Some(type_ref) = type_ref else { return value };
    let Some(item) = definitions.types.get(type_ref).filter(|_| depth < 16) else { return conform(value, Some(type_ref)) };
    conform_item(definitions, value, item, depth)
}

fn conform_item(definitions: &Definitions, value: Value, item: &ItemType, depth: usize) -> Value {
    if item.function || matches!(value, Value::Null) {
        return value;
    }
    if item.collection {
        let items = match value {
            Value::List(items) => items,
            single => vec![single],
        };
        let element = ItemType { collection: false, ..item.clone() };
        let mut conformed = Vec::with_capacity(items.len());
        for one in items {
            let kept = conform_item(definitions, one.clone(), &element, depth + 1);
            if kept == Value::Null && one != Value::Null {
                return Value::Null;
            }
            conformed.push(kept);
        }
        return Value::List(conformed);
    }
    if !item.components.is_empty() {
        let Value::Context(map) = value else { return Value::Null };
        for (name, component) in &item.components {
            let Some(member) = map.get(name) else { return Value::Null };
            if *member != Value::Null && conform_item(definitions, member.clone(), component, depth + 1) == Value::Null {
                return Value::Null;
            }
        }
        return Value::Context(map);
    }
    conform_to(definitions, value, item.base.as_deref(), depth + 1)
}

/// A decision's result as its declared type allows: a value of another
/// built-in type is null; a single value in a list stands for itself where
/// the type is not a list.
pub(crate) fn conform(value: Value, type_ref: Option<&str>) -> Value {
    let Some(type_ref) = type_ref else { return value };
    let bare = type_ref.rsplit(':').next().unwrap_or(type_ref);
    let wanted = match bare {
        "number" | "string" | "boolean" | "date" | "dateTime" | "date and time" | "time" | "duration" | "days and time duration" | "years and months duration" => bare,
        _ => return value,
    };
    let value = match value {
        Value::List(mut items) if items.len() == 1 => items.pop().unwrap_or(Value::Null),
        other => other,
    };
    let fits = matches!(
        (&value, wanted),
        (Value::Null, _)
            | (Value::Number(_), "number")
            | (Value::String(_), "string")
            | (Value::Bool(_), "boolean")
            | (Value::Date(_), "date")
            | (Value::DateTime(_), "dateTime" | "date and time")
            | (Value::Duration(_), "duration" | "days and time duration" | "years and months duration")
            | (_, "time")
    );
    if fits {
        value
    } else {
        Value::Null
    }
}
