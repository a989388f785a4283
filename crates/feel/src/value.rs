//! FEEL values and their mapping to and from JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::EvalError;

/// A FEEL value. `==` is structural (FEEL's own equality is `eval::values_equal`).
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Decimal),
    String(String),
    List(Vec<Value>),
    Context(BTreeMap<String, Value>),
    Date(jiff::civil::Date),
    /// A date and time: local, at an offset, or in a named zone.
    DateTime(crate::temporal::DateTime),
    Time(crate::temporal::Time),
    Duration(crate::temporal::Duration),
    Range(Box<Range>),
    /// A function defined in FEEL (`function(a, b) a + b`), with the names it closed over.
    Function(std::sync::Arc<Function>),
}

/// A user-defined function: its parameters, its body, and the values of the names around it.
#[derive(Debug)]
pub struct Function {
    pub(crate) parameters: Vec<String>,
    pub(crate) body: crate::parser::Node,
    pub(crate) captured: Vec<(String, Value)>,
}

/// A FEEL range such as `[1..10)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub start: Value,
    pub start_included: bool,
    pub end: Value,
    pub end_included: bool,
    /// Written as a comparison (`< 10`, `= 10`, `!= 10`): not equal to the
    /// same range written with brackets (`(null..10)`), as FEEL 1.5 says.
    pub comparison: Option<&'static str>,
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Number(a), Number(b)) => a == b,
            (String(a), String(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Context(a), Context(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (DateTime(a), DateTime(b)) => a == b,
            (Time(a), Time(b)) => a == b,
            (Duration(a), Duration(b)) => a == b,
            (Range(a), Range(b)) => a == b,
            (Function(a), Function(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Value {
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => number_from_json(n).map(Value::Number).unwrap_or(Value::Null),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => {
                Value::Context(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// Converts to JSON. Dates, date-times and durations become ISO 8601
    /// strings. A value nested deeper than [`crate::MAX_JSON_DEPTH`] is refused.
    pub fn to_json(&self) -> Result<serde_json::Value, EvalError> {
        self.to_json_within(crate::MAX_JSON_DEPTH)
    }

    fn to_json_within(&self, depth: usize) -> Result<serde_json::Value, EvalError> {
        if matches!(self, Value::List(_) | Value::Context(_)) && depth == 0 {
            return Err(EvalError::TooLarge(format!("a value nested more than {} levels deep", crate::MAX_JSON_DEPTH)));
        }
        Ok(match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(d) => number_to_json(*d),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(|item| item.to_json_within(depth - 1)).collect::<Result<_, _>>()?)
            }
            Value::Context(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| Ok((k.clone(), v.to_json_within(depth - 1)?))).collect::<Result<_, EvalError>>()?,
            ),
            Value::Date(_) | Value::DateTime(_) | Value::Time(_) | Value::Duration(_) => serde_json::Value::String(self.to_string()),
            Value::Range(_) => return Err(EvalError::NotJson("a range".into())),
            Value::Function(_) => return Err(EvalError::NotJson("a function".into())),
        })
    }

    /// About how many bytes the value takes (as JSON would), counted without
    /// recursion, whatever its depth.
    pub fn approximate_bytes(&self) -> usize {
        let mut bytes = 0usize;
        let mut stack = vec![self];
        while let Some(value) = stack.pop() {
            bytes = bytes.saturating_add(match value {
                Value::String(s) => s.len() + 2,
                Value::List(items) => {
                    stack.extend(items);
                    2 + items.len()
                }
                Value::Context(map) => {
                    stack.extend(map.values());
                    2 + map.keys().map(|k| k.len() + 4).sum::<usize>()
                }
                _ => 8,
            });
        }
        bytes
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Context(_) => "context",
            Value::Date(_) => "date",
            Value::DateTime(_) => "date and time",
            Value::Time(_) => "time",
            Value::Duration(crate::temporal::Duration::DaysTime(_)) => "days and time duration",
            Value::Duration(crate::temporal::Duration::YearsMonths(_)) => "years and months duration",
            Value::Range(_) => "range",
            Value::Function(_) => "function",
        }
    }
}

fn number_from_json(n: &serde_json::Number) -> Option<Decimal> {
    if let Some(i) = n.as_i64() {
        return Some(Decimal::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(Decimal::from(u));
    }
    let text = n.to_string();
    Decimal::from_str(&text).ok().or_else(|| Decimal::from_scientific(&text).ok())
}

pub(crate) fn number_to_json(d: Decimal) -> serde_json::Value {
    let d = d.normalize();
    if d.scale() == 0 {
        if let Some(i) = d.to_i64() {
            return serde_json::Value::from(i);
        }
    }
    d.to_f64().and_then(serde_json::Number::from_f64).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
}

impl fmt::Display for Value {
    /// The text `string(value)` gives.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(d) => write!(f, "{}", d.normalize()),
            Value::String(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_nested(f, item)?;
                }
                f.write_str("]")
            }
            Value::Context(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: ")?;
                    write_nested(f, v)?;
                }
                f.write_str("}")
            }
            Value::Date(d) => write!(f, "{}", crate::temporal::DateText(*d)),
            Value::DateTime(t) => write!(f, "{t}"),
            Value::Time(t) => write!(f, "{t}"),
            Value::Duration(d) => write!(f, "{d}"),
            Value::Function(function) => write!(f, "function({})", function.parameters.join(", ")),
            Value::Range(r) if r.comparison == Some("!=") => {
                f.write_str("!= ")?;
                write_nested(f, &r.start)
            }
            Value::Range(r) => {
                f.write_str(if r.start_included { "[" } else { "(" })?;
                write_nested(f, &r.start)?;
                f.write_str("..")?;
                write_nested(f, &r.end)?;
                f.write_str(if r.end_included { "]" } else { ")" })
            }
        }
    }
}

fn write_nested(f: &mut fmt::Formatter<'_>, value: &Value) -> fmt::Result {
    match value {
        Value::String(s) => write!(f, "{s:?}"),
        other => write!(f, "{other}"),
    }
}
