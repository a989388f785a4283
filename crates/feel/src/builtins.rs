//! FEEL's built-in functions. Arguments are positional. A wrong argument type
//! gives `null`, as FEEL specifies.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

use crate::eval::{compare, values_equal, Evaluator};
use crate::value::Value;
use crate::temporal;
use crate::EvalError;

/// Name, least and most arguments (`usize::MAX`: any number).
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("@", 1, 1),
    ("not", 1, 1),
    ("is", 2, 2),
    ("string", 1, 1),
    ("number", 1, 3),
    ("is defined", 1, 1),
    ("get or else", 2, 2),
    ("string length", 1, 1),
    ("substring", 2, 3),
    ("upper case", 1, 1),
    ("lower case", 1, 1),
    ("substring before", 2, 2),
    ("substring after", 2, 2),
    ("contains", 2, 2),
    ("starts with", 2, 2),
    ("ends with", 2, 2),
    ("trim", 1, 1),
    ("matches", 2, 3),
    ("replace", 3, 4),
    ("split", 2, 2),
    ("string join", 1, 2),
    ("count", 1, 1),
    ("min", 1, usize::MAX),
    ("max", 1, usize::MAX),
    ("sum", 1, usize::MAX),
    ("mean", 1, usize::MAX),
    ("product", 1, usize::MAX),
    ("all", 1, usize::MAX),
    ("any", 1, usize::MAX),
    ("sublist", 2, 3),
    ("append", 1, usize::MAX),
    ("concatenate", 0, usize::MAX),
    ("insert before", 3, 3),
    ("remove", 2, 2),
    ("reverse", 1, 1),
    ("index of", 2, 2),
    ("union", 0, usize::MAX),
    ("distinct values", 1, 1),
    ("flatten", 1, 1),
    ("list contains", 2, 2),
    ("abs", 1, 1),
    ("floor", 1, 2),
    ("ceiling", 1, 2),
    ("decimal", 2, 2),
    ("round", 1, 2),
    ("round up", 1, 2),
    ("round down", 1, 2),
    ("round half up", 1, 2),
    ("round half down", 1, 2),
    ("exp", 1, 1),
    ("log", 1, 1),
    ("median", 1, usize::MAX),
    ("mode", 1, usize::MAX),
    ("stddev", 1, usize::MAX),
    ("list replace", 3, 3),
    ("context", 1, 1),
    ("is empty", 1, 1),
    ("fromAi", 1, 5),
    ("to base64", 1, 1),
    ("is blank", 1, 1),
    ("partition", 2, 2),
    ("duplicate values", 1, 1),
    ("and", 1, usize::MAX),
    ("or", 1, usize::MAX),
    ("extract", 2, 2),
    ("put", 3, 3),
    ("put all", 1, usize::MAX),
    ("assert", 2, 3),
    ("from json", 1, 1),
    ("to json", 1, 1),
    ("last day of month", 1, 1),
    ("sort", 1, 2),
    ("range", 1, 1),
    ("day of year", 1, 1),
    ("week of year", 1, 1),
    ("modulo", 2, 2),
    ("sqrt", 1, 1),
    ("odd", 1, 1),
    ("even", 1, 1),
    ("date", 1, 3),
    ("date and time", 1, 2),
    ("time", 1, 4),
    ("duration", 1, 1),
    ("years and months duration", 2, 2),
    ("day of week", 1, 1),
    ("month of year", 1, 1),
    ("context put", 3, 3),
    ("get value", 2, 2),
    ("get entries", 1, 1),
    ("context merge", 1, 1),
];

/// Checks a call at parse time: the function exists and takes that many arguments.
pub(crate) fn check(name: &str, arguments: usize) -> Result<(), String> {
    if crate::ranges::NAMES.contains(&name) {
        return if arguments == 2 { Ok(()) } else { Err(format!("{name}() takes 2 arguments, not {arguments}")) };
    }
    if matches!(name, "now" | "today" | "uuid" | "random number") {
        return if arguments == 0 { Ok(()) } else { Err(format!("{name}() takes no arguments")) };
    }
    let Some((_, least, most)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
        return Err(format!("unknown function '{name}'"));
    };
    if arguments < *least || arguments > *most {
        let expected = match (*least, *most) {
            (l, m) if l == m => format!("{l}"),
            (l, usize::MAX) => format!("at least {l}"),
            (l, m) => format!("{l} to {m}"),
        };
        return Err(format!("{name}() takes {expected} arguments, not {arguments}"));
    }
    Ok(())
}

/// Each built-in's parameter names, one list per signature (FEEL's own names).
fn parameters(name: &str) -> &'static [&'static [&'static str]] {
    match name {
        "not" => &[&["negand"]],
        "is" => &[&["value1", "value2"]],
        "string" => &[&["from"]],
        "number" => &[&["from", "grouping separator", "decimal separator"]],
        "string length" | "upper case" | "lower case" | "trim" => &[&["string"]],
        "substring" => &[&["string", "start position", "length"]],
        "substring before" | "substring after" | "contains" | "starts with" | "ends with" => &[&["string", "match"]],
        "matches" => &[&["input", "pattern", "flags"]],
        "replace" => &[&["input", "pattern", "replacement", "flags"]],
        "split" => &[&["string", "delimiter"]],
        "string join" => &[&["list", "delimiter"]],
        "decimal" | "round" | "round up" | "round down" | "round half up" | "round half down" | "floor" | "ceiling" => &[&["n", "scale"]],
        "abs" => &[&["n"]],
        "modulo" => &[&["dividend", "divisor"]],
        "sqrt" | "exp" | "log" | "odd" | "even" => &[&["number"]],
        "date" => &[&["from"], &["year", "month", "day"]],
        "date and time" => &[&["from"], &["date", "time"]],
        "time" => &[&["from"], &["hour", "minute", "second", "offset"]],
        "duration" => &[&["from"]],
        "years and months duration" => &[&["from", "to"]],
        "day of week" | "day of year" | "week of year" | "month of year" => &[&["date"]],
        "list contains" => &[&["list", "element"]],
        "count" | "min" | "max" | "sum" | "mean" | "median" | "mode" | "stddev" | "product" | "all" | "any" | "reverse"
        | "distinct values" | "flatten" => &[&["list"]],
        "sublist" => &[&["list", "start position", "length"]],
        "append" => &[&["list", "item"]],
        "insert before" => &[&["list", "position", "newItem"]],
        "remove" => &[&["list", "position"]],
        "index of" => &[&["list", "match"]],
        "list replace" => &[&["list", "position", "newItem"], &["list", "match", "newItem"]],
        "before" | "after" | "meets" | "met by" | "overlaps" | "overlaps before" | "overlaps after" | "finishes" | "finished by"
        | "includes" | "during" | "starts" | "started by" | "coincides" => &[&["point1", "point2"], &["point", "range"], &["range", "point"], &["range1", "range2"]],
        "range" => &[&["from"]],
        "context" => &[&["entries"]],
        "is empty" => &[&["list"]],
        "fromAi" => &[&["value", "description", "type", "schema", "options"]],
        "to base64" => &[&["value"]],
        "is blank" => &[&["string"]],
        "partition" => &[&["list", "size"]],
        "duplicate values" | "and" | "or" => &[&["list"]],
        "extract" => &[&["string", "pattern"]],
        "put" => &[&["context", "key", "value"]],
        "put all" => &[&["contexts"]],
        "assert" => &[&["value", "condition", "cause"]],
        "from json" | "to json" => &[&["value"]],
        "last day of month" => &[&["date"]],
        "sort" => &[&["list", "precedes"]],
        "context put" => &[&["context", "key", "value"], &["context", "keys", "value"]],
        "context merge" => &[&["contexts"]],
        "get value" => &[&["m", "key"]],
        "get entries" => &[&["m"]],
        "get or else" => &[&["value", "default"]],
        "is defined" => &[&["value"]],
        _ => &[],
    }
}

/// Whether `name` is a built-in function (of any number of arguments).
pub(crate) fn is_builtin(name: &str) -> bool {
    matches!(name, "now" | "today" | "uuid" | "random number") || crate::ranges::NAMES.contains(&name) || FUNCTIONS.iter().any(|(n, ..)| *n == name)
}

/// Whether `name` is a built-in that takes named arguments.
pub(crate) fn has_parameters(name: &str) -> bool {
    !parameters(name).is_empty()
}

/// Named arguments in the order of the built-in's parameters (a missing one is null).
pub(crate) fn order_named<T: Default>(name: &str, named: Vec<(String, T)>) -> Result<Vec<T>, String> {
    let signature = parameters(name)
        .iter()
        .find(|signature| named.iter().all(|(n, _)| signature.contains(&n.as_str())))
        .ok_or_else(|| {
            let given: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
            format!("{name}() has no parameters named {}", given.join(", "))
        })?;
    let mut named = named;
    // Up to the last one named, and at least the ones the function needs: those left out are null.
    let least = FUNCTIONS.iter().find(|(n, ..)| *n == name).map_or(0, |(_, least, _)| *least);
    let last = signature.iter().rposition(|p| named.iter().any(|(n, _)| n == p)).unwrap_or(0).max(least.saturating_sub(1)).min(signature.len() - 1);
    Ok(signature[..=last]
        .iter()
        .map(|parameter| match named.iter().position(|(n, _)| n == parameter) {
            Some(i) => named.swap_remove(i).1,
            None => T::default(),
        })
        .collect())
}

/// The items of a list argument, or of the arguments themselves (`sum(1, 2)`).
fn items(mut arguments: Vec<Value>) -> Option<Vec<Value>> {
    if arguments.len() == 1 {
        match arguments.pop()? {
            Value::List(items) => Some(items),
            single => Some(vec![single]),
        }
    } else {
        Some(arguments)
    }
}

fn numbers(arguments: Vec<Value>) -> Option<Vec<Decimal>> {
    items(arguments)?.into_iter().map(|v| if let Value::Number(n) = v { Some(n) } else { None }).collect()
}

fn text(value: &Value) -> Option<&str> {
    if let Value::String(s) = value {
        Some(s)
    } else {
        None
    }
}

fn integer(value: &Value) -> Option<i64> {
    if let Value::Number(n) = value {
        if n.fract().is_zero() {
            return n.to_i64();
        }
    }
    None
}

fn number(n: impl Into<Decimal>) -> Value {
    Value::Number(n.into())
}

pub(crate) fn call(ev: &mut Evaluator<'_>, name: &str, arguments: Vec<Value>) -> Result<Value, EvalError> {
    // Work proportional to the size of the arguments.
    let size: usize = arguments.iter().map(|a| if let Value::List(l) = a { l.len() } else { 1 }).sum();
    ev.burn(size as u64)?;
    let result = dispatch(name, arguments).unwrap_or(Value::Null);
    match &result {
        Value::String(s) => ev.check_string(s)?,
        Value::List(l) => ev.check_len(l.len(), "list")?,
        _ => {}
    }
    ev.spend_bytes(result.approximate_bytes())?;
    Ok(result)
}

/// The string functions, which take a list of one string as that string (DMN's singleton list conversion).
const TAKE_SINGLETONS: &[&str] = &[
    "string length", "upper case", "lower case", "substring", "substring before", "substring after", "contains", "starts with", "ends with", "trim",
    "matches", "replace", "split",
];

fn dispatch(name: &str, arguments: Vec<Value>) -> Option<Value> {
    let arguments = if TAKE_SINGLETONS.contains(&name) {
        arguments
            .into_iter()
            .map(|argument| match argument {
                Value::List(mut items) if items.len() == 1 => items.pop().unwrap_or(Value::Null),
                other => other,
            })
            .collect()
    } else {
        arguments
    };
    let a = &arguments;
    // The range functions take two arguments; other built-ins (`concatenate()`) may take none.
    if let [first, second] = a.as_slice() {
        if let Some(result) = crate::ranges::call(name, first, second) {
            return Some(result.map_or(Value::Null, Value::Bool));
        }
    }
    Some(match name {
        // The same type and the same value (a date is not a date and time at midnight).
        "is" => Value::Bool(a[0].type_name() == a[1].type_name() && a[0] == a[1]),
        "not" => match a[0] {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        "string" => match &a[0] {
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        },
        "number" => {
            // With separators: `number("1 000,5", " ", ",")`.
            let mut source = text(&a[0])?.trim().to_string();
            let separator = |v: Option<&Value>| match v {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) if [" ", ",", "."].contains(&s.as_str()) => Some(Some(s.clone())),
                _ => None,
            };
            let (grouping, decimal) = (separator(a.get(1))?, separator(a.get(2))?);
            if grouping.is_some() && grouping == decimal {
                return None;
            }
            if let Some(grouping) = grouping {
                source = source.replace(&grouping, "");
            }
            if let Some(decimal) = decimal {
                source = source.replace(&decimal, ".");
            }
            number(Decimal::from_str(&source).or_else(|_| Decimal::from_scientific(&source)).ok()?)
        }
        "is defined" => Value::Bool(a[0] != Value::Null),
        "get or else" => {
            if a[0] == Value::Null {
                a[1].clone()
            } else {
                a[0].clone()
            }
        }
        "string length" => number(text(&a[0])?.chars().count() as u64),
        "substring" => {
            let chars: Vec<char> = text(&a[0])?.chars().collect();
            let start = integer(&a[1])?;
            let start = if start > 0 { usize::try_from(start - 1).ok()? } else { chars.len().checked_sub(usize::try_from(-start).ok()?)? };
            let start = start.min(chars.len());
            let end = match a.get(2) {
                // A length with a fraction counts its whole characters.
                Some(length) => start.saturating_add(usize::try_from(num(length)?.trunc().to_i64()?).ok()?).min(chars.len()),
                None => chars.len(),
            };
            Value::String(chars[start..end].iter().collect())
        }
        "upper case" => Value::String(text(&a[0])?.to_uppercase()),
        "lower case" => Value::String(text(&a[0])?.to_lowercase()),
        "substring before" => {
            let (s, m) = (text(&a[0])?, text(&a[1])?);
            Value::String(s.find(m).map_or("", |i| &s[..i]).to_string())
        }
        "substring after" => {
            let (s, m) = (text(&a[0])?, text(&a[1])?);
            Value::String(s.find(m).map_or("", |i| &s[i + m.len()..]).to_string())
        }
        "contains" => Value::Bool(text(&a[0])?.contains(text(&a[1])?)),
        "starts with" => Value::Bool(text(&a[0])?.starts_with(text(&a[1])?)),
        "ends with" => Value::Bool(text(&a[0])?.ends_with(text(&a[1])?)),
        "trim" => Value::String(text(&a[0])?.trim().to_string()),
        "matches" => Value::Bool(pattern(&a[1], a.get(2))?.is_match(text(&a[0])?)),
        "replace" => {
            let replacement = xpath_replacement(text(&a[2])?);
            Value::String(pattern(&a[1], a.get(3))?.replace_all(text(&a[0])?, replacement.as_str()).into_owned())
        }
        "split" => Value::List(pattern(&a[1], None)?.split(text(&a[0])?).map(|part| Value::String(part.to_string())).collect()),
        "string join" => {
            let items = match &a[0] {
                Value::List(items) => items.clone(),
                Value::Null => return None,
                single => vec![single.clone()],
            };
            let delimiter = match a.get(1) {
                Some(Value::Null) | None => "",
                Some(d) => text(d)?,
            };
            let parts: Option<Vec<&str>> = items.iter().filter(|v| **v != Value::Null).map(text).collect();
            Value::String(parts?.join(delimiter))
        }
        "count" => match &a[0] {
            Value::List(items) => number(items.len() as u64),
            _ => return None,
        },
        "min" | "max" => {
            let items = items(arguments)?;
            let mut best: Option<Value> = None;
            for item in items {
                best = Some(match best {
                    None => item,
                    Some(current) => {
                        let ordering = compare(&item, &current)?;
                        let better = if name == "min" { ordering.is_lt() } else { ordering.is_gt() };
                        if better {
                            item
                        } else {
                            current
                        }
                    }
                });
            }
            best?
        }
        "sum" => {
            let numbers = numbers(arguments)?;
            numbers.into_iter().try_fold(Decimal::ZERO, |acc, n| acc.checked_add(n)).map(Value::Number)?
        }
        "product" => {
            let numbers = numbers(arguments)?;
            if numbers.is_empty() {
                return None;
            }
            numbers.into_iter().try_fold(Decimal::ONE, |acc, n| acc.checked_mul(n)).map(Value::Number)?
        }
        "mean" => {
            let numbers = numbers(arguments)?;
            if numbers.is_empty() {
                return None;
            }
            let count = Decimal::from(numbers.len() as u64);
            let total = numbers.into_iter().try_fold(Decimal::ZERO, |acc, n| acc.checked_add(n))?;
            number(total.checked_div(count)?)
        }
        "all" | "any" => {
            let items = items(arguments)?;
            let (decisive, default) = if name == "all" { (false, true) } else { (true, false) };
            let mut saw_other = false;
            for item in &items {
                match item {
                    Value::Bool(b) if *b == decisive => return Some(Value::Bool(decisive)),
                    Value::Bool(_) => {}
                    _ => saw_other = true,
                }
            }
            if saw_other {
                Value::Null
            } else {
                Value::Bool(default)
            }
        }
        "sublist" => {
            let Value::List(items) = &a[0] else { return None };
            let start = integer(&a[1])?;
            let start = if start > 0 { usize::try_from(start - 1).ok()? } else { items.len().checked_sub(usize::try_from(-start).ok()?)? };
            if start >= items.len() {
                return Some(Value::List(Vec::new()));
            }
            let end = match a.get(2) {
                Some(length) => start.saturating_add(usize::try_from(integer(length)?).ok()?).min(items.len()),
                None => items.len(),
            };
            Value::List(items[start..end].to_vec())
        }
        "append" => {
            let mut args = arguments.into_iter();
            let Value::List(mut items) = args.next()? else { return None };
            items.extend(args);
            Value::List(items)
        }
        "concatenate" => {
            let mut all = Vec::new();
            for argument in arguments {
                let Value::List(items) = argument else { return None };
                all.extend(items);
            }
            Value::List(all)
        }
        "insert before" => {
            let Value::List(mut items) = a[0].clone() else { return None };
            let position = usize::try_from(integer(&a[1])?).ok()?.checked_sub(1)?;
            if position > items.len() {
                return None;
            }
            items.insert(position, a[2].clone());
            Value::List(items)
        }
        "remove" => {
            let Value::List(mut items) = a[0].clone() else { return None };
            let position = usize::try_from(integer(&a[1])?).ok()?.checked_sub(1)?;
            if position >= items.len() {
                return None;
            }
            items.remove(position);
            Value::List(items)
        }
        "reverse" => {
            let Value::List(mut items) = a[0].clone() else { return None };
            items.reverse();
            Value::List(items)
        }
        "index of" => {
            let Value::List(items) = &a[0] else { return None };
            Value::List(
                items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| values_equal(item, &a[1]) == Some(true))
                    .map(|(i, _)| number(i as u64 + 1))
                    .collect(),
            )
        }
        "union" | "distinct values" => {
            let mut all = Vec::new();
            let lists = if name == "union" { arguments } else { vec![a[0].clone()] };
            for list in lists {
                let Value::List(items) = list else { return None };
                for item in items {
                    if !all.iter().any(|seen| values_equal(seen, &item) == Some(true)) {
                        all.push(item);
                    }
                }
            }
            Value::List(all)
        }
        "flatten" => {
            fn flatten_into(value: Value, out: &mut Vec<Value>) {
                match value {
                    Value::List(items) => items.into_iter().for_each(|i| flatten_into(i, out)),
                    other => out.push(other),
                }
            }
            let mut out = Vec::new();
            let Value::List(_) = &a[0] else { return None };
            flatten_into(a[0].clone(), &mut out);
            Value::List(out)
        }
        "list contains" => {
            let Value::List(items) = &a[0] else { return None };
            Value::Bool(items.iter().any(|item| values_equal(item, &a[1]) == Some(true)))
        }
        "abs" => match &a[0] {
            Value::Number(n) => number(n.abs()),
            Value::Duration(d) => Value::Duration(d.abs()),
            _ => return None,
        },
        "floor" => number(round_to(num(&a[0])?, scale_of(a.get(1))?, RoundingStrategy::ToNegativeInfinity)?),
        "ceiling" => number(round_to(num(&a[0])?, scale_of(a.get(1))?, RoundingStrategy::ToPositiveInfinity)?),
        "decimal" => number(round_to(num(&a[0])?, scale_of(a.get(1))?, RoundingStrategy::MidpointNearestEven)?),
        "round" | "round up" | "round down" | "round half up" | "round half down" => {
            let scale = scale_of(a.get(1))?;
            let strategy = match name {
                "round up" => RoundingStrategy::AwayFromZero,
                "round down" => RoundingStrategy::ToZero,
                "round half down" => RoundingStrategy::MidpointTowardZero,
                "round half up" => RoundingStrategy::MidpointAwayFromZero,
                _ => RoundingStrategy::MidpointNearestEven,
            };
            number(round_to(num(&a[0])?, scale, strategy)?)
        }
        "exp" => number(num(&a[0])?.checked_exp()?),
        "log" => {
            let n = num(&a[0])?;
            if n <= Decimal::ZERO {
                return None;
            }
            number(n.checked_ln()?)
        }
        "median" => {
            let mut numbers = numbers(arguments)?;
            if numbers.is_empty() {
                return Some(Value::Null);
            }
            numbers.sort();
            let middle = numbers.len() / 2;
            if numbers.len() % 2 == 1 {
                number(numbers[middle])
            } else {
                number(numbers[middle - 1].checked_add(numbers[middle])?.checked_div(Decimal::TWO)?)
            }
        }
        "mode" => {
            let mut numbers = numbers(arguments)?;
            numbers.sort();
            let mut counts: Vec<(Decimal, usize)> = Vec::new();
            for n in numbers {
                match counts.last_mut() {
                    Some((last, count)) if *last == n => *count += 1,
                    _ => counts.push((n, 1)),
                }
            }
            let most = counts.iter().map(|(_, c)| *c).max().unwrap_or(0);
            Value::List(counts.into_iter().filter(|(_, c)| *c == most).map(|(n, _)| Value::Number(n)).collect())
        }
        "stddev" => {
            let numbers = numbers(arguments)?;
            if numbers.len() < 2 {
                return None;
            }
            let count = Decimal::from(numbers.len() as u64);
            let mean = numbers.iter().try_fold(Decimal::ZERO, |acc, n| acc.checked_add(*n))?.checked_div(count)?;
            let squares = numbers.iter().try_fold(Decimal::ZERO, |acc, n| acc.checked_add((*n - mean).checked_mul(*n - mean)?))?;
            number(squares.checked_div(count - Decimal::ONE)?.sqrt()?)
        }
        "day of year" => number(date_of(&a[0])?.day_of_year()),
        "week of year" => number(date_of(&a[0])?.iso_week_date().week()),
        "list replace" => {
            let mut items = match a[0].clone() {
                Value::List(items) => items,
                Value::Null => return None,
                single => vec![single],
            };
            // A position with a fraction counts its whole part.
            let position = num(&a[1])?.trunc().to_i64()?;
            let index = if position > 0 { usize::try_from(position - 1).ok()? } else { items.len().checked_sub(usize::try_from(-position).ok()?)? };
            *items.get_mut(index)? = a[2].clone();
            Value::List(items)
        }
        "range" => {
            // A range literal in a string: "[1..10)", "]1..10[", "< 10", ">= @\"2026-01-01\"".
            let source = text(&a[0])?.trim();
            let source = source.replacen(']', "(", usize::from(source.starts_with(']')));
            let source = if source.ends_with('[') { format!("{})", &source[..source.len() - 1]) } else { source };
            if let Some(op) = ["<=", ">=", "<", ">", "="].iter().find(|op| source.starts_with(**op)) {
                let endpoint = crate::Expression::parse(source[op.len()..].trim()).ok()?.evaluate_value(&crate::NoVariables).ok()?;
                if endpoint == Value::Null {
                    return None;
                }
                let (start, start_included, end, end_included) = match *op {
                    "<" => (Value::Null, false, endpoint, false),
                    "<=" => (Value::Null, false, endpoint, true),
                    ">" => (endpoint, false, Value::Null, false),
                    ">=" => (endpoint, true, Value::Null, false),
                    _ => (endpoint.clone(), true, endpoint, true),
                };
                let comparison = Some(*op);
                return Some(Value::Range(Box::new(crate::value::Range { start, start_included, end, end_included, comparison })));
            }
            let expression = crate::Expression::parse(&source).ok()?;
            // Its endpoints are literals: numbers, strings, `@"..."` temporal literals or null.
            let literal = |node: &crate::parser::Node| {
                use crate::parser::Node;
                match node {
                    Node::Number(_) | Node::Str(_) | Node::Null => true,
                    Node::Neg(inner) => matches!(**inner, Node::Number(_)),
                    // `@"..."` and the temporal functions of a literal string: `date("2026-01-01")`.
                    Node::Call(name, arguments) => {
                        matches!(name.as_str(), "@" | "date" | "date and time" | "time" | "duration") && matches!(arguments.as_slice(), [Node::Str(_)])
                    }
                    _ => false,
                }
            };
            match &*expression.ast {
                crate::parser::Node::Range { start, end, .. } if literal(start) && literal(end) => {}
                _ => return None,
            }
            match expression.evaluate_value(&crate::NoVariables).ok()? {
                Value::Range(range) if range.start != Value::Null || range.end != Value::Null => {
                    let bounded = range.start != Value::Null && range.end != Value::Null;
                    // Both ends of the same type (or one unbounded), the start not after the end.
                    if bounded && (range.start.type_name() != range.end.type_name() || compare(&range.start, &range.end)? == std::cmp::Ordering::Greater) {
                        return None;
                    }
                    Value::Range(range)
                }
                _ => return None,
            }
        }
        // FEEL-Scala's: the string's UTF-8 bytes in standard base64.
        "to base64" => Value::String(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text(&a[0])?)),
        // Camunda 8's AI agent marker: the value is the variable the agent's tool call set.
        "fromAi" => a[0].clone(),
        // FEEL-Scala's (Camunda 8's) extensions.
        "is empty" => match &a[0] {
            Value::List(items) => Value::Bool(items.is_empty()),
            _ => return None,
        },
        "is blank" => Value::Bool(text(&a[0])?.trim().is_empty()),
        "partition" => {
            let Value::List(items) = &a[0] else { return None };
            let size = usize::try_from(integer(&a[1])?).ok().filter(|s| *s > 0)?;
            Value::List(items.chunks(size).map(|chunk| Value::List(chunk.to_vec())).collect())
        }
        "duplicate values" => {
            let Value::List(items) = &a[0] else { return None };
            let mut duplicates: Vec<Value> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let again = items[i + 1..].iter().any(|other| values_equal(item, other) == Some(true));
                if again && !duplicates.iter().any(|d| values_equal(d, item) == Some(true)) {
                    duplicates.push(item.clone());
                }
            }
            Value::List(duplicates)
        }
        "and" | "or" => return dispatch(if name == "and" { "all" } else { "any" }, arguments),
        "extract" => {
            let regex = pattern(&a[1], None)?;
            Value::List(regex.find_iter(text(&a[0])?).map(|m| Value::String(m.as_str().to_string())).collect())
        }
        "put" => return dispatch("context put", arguments),
        "put all" => return dispatch("context merge", vec![Value::List(items(arguments)?)]),
        // An assertion that fails is null here; Camunda fails the evaluation (an incident), as Baton's callers do for null where a value is needed.
        "assert" if a[1] == Value::Bool(true) => a[0].clone(),
        "assert" => return None,
        "from json" => Value::from_json(&serde_json::from_str(text(&a[0])?).ok()?),
        "to json" => Value::String(a[0].to_json().ok()?.to_string()),
        "last day of month" => Value::Date(date_of(&a[0])?.last_of_month()),
        "sort" => {
            let Value::List(items) = &a[0] else { return None };
            let mut sorted = items.clone();
            let mut comparable = true;
            sorted.sort_by(|x, y| compare(x, y).unwrap_or_else(|| {
                comparable = false;
                std::cmp::Ordering::Equal
            }));
            if !comparable {
                return None;
            }
            Value::List(sorted)
        }
        "context" => {
            let entries = match &a[0] {
                Value::List(entries) => entries.clone(),
                single => vec![single.clone()],
            };
            let mut map = BTreeMap::new();
            for entry in entries {
                let Value::Context(entry) = entry else { return None };
                let key = text(entry.get("key")?)?.to_string();
                if map.contains_key(&key) {
                    return None;
                }
                map.insert(key, entry.get("value")?.clone());
            }
            Value::Context(map)
        }
        "modulo" => {
            let (dividend, divisor) = (num(&a[0])?, num(&a[1])?);
            if divisor.is_zero() {
                return None;
            }
            // FEEL's modulo takes the sign of the divisor.
            let remainder = dividend.checked_rem(divisor)?;
            if !remainder.is_zero() && (remainder.is_sign_negative() != divisor.is_sign_negative()) {
                number(remainder + divisor)
            } else {
                number(remainder)
            }
        }
        "sqrt" => number(num(&a[0])?.sqrt()?),
        "odd" => Value::Bool(integer(&a[0])? % 2 != 0),
        "even" => Value::Bool(integer(&a[0])? % 2 == 0),
        "date" => {
            if a.len() == 3 {
                let (y, m, d) = (integer(&a[0])?, integer(&a[1])?, integer(&a[2])?);
                Value::Date(jiff::civil::Date::new(i16::try_from(y).ok()?, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()?)
            } else {
                match &a[0] {
                    Value::String(s) => Value::Date(temporal::parse_date(s.trim())?),
                    Value::DateTime(t) => Value::Date(t.civil.date()),
                    Value::Date(d) => Value::Date(*d),
                    _ => return None,
                }
            }
        }
        "@" => {
            let literal = text(&a[0])?;
            let kind = if literal.trim_start_matches('-').starts_with('P') {
                "duration"
            } else if literal.contains('T') {
                "date and time"
            } else if literal.contains(':') {
                "time"
            } else {
                "date"
            };
            return dispatch(kind, arguments);
        }
        "date and time" => match (&a[0], a.get(1)) {
            (Value::String(s), None) => Value::DateTime(temporal::DateTime::parse(s)?),
            (Value::DateTime(t), None) => Value::DateTime(t.clone()),
            (Value::Date(d), None) => Value::DateTime(temporal::DateTime { civil: d.to_datetime(jiff::civil::Time::midnight()), zone: temporal::Zone::Local }),
            (Value::Date(d), Some(Value::Time(t))) => Value::DateTime(temporal::DateTime { civil: d.to_datetime(t.civil), zone: t.zone.clone() }),
            (Value::DateTime(dt), Some(Value::Time(t))) => Value::DateTime(temporal::DateTime { civil: dt.civil.date().to_datetime(t.civil), zone: t.zone.clone() }),
            (Value::DateTime(dt), Some(Value::String(zone))) => {
                let instant = dt.instant()?;
                let tz = jiff::tz::TimeZone::get(zone).ok()?;
                Value::DateTime(temporal::DateTime { civil: instant.to_zoned(tz.clone()).datetime(), zone: temporal::Zone::Named(tz, zone.clone()) })
            }
            _ => return None,
        },
        "time" => match (&a[0], a.len()) {
            (Value::String(s), 1) => Value::Time(temporal::Time::parse(s)?),
            (Value::Time(t), 1) => Value::Time(t.clone()),
            (Value::DateTime(dt), 1) => Value::Time(temporal::Time { civil: dt.civil.time(), zone: dt.zone.clone() }),
            (Value::Date(_), 1) => Value::Time(temporal::Time { civil: jiff::civil::Time::midnight(), zone: temporal::Zone::Offset(jiff::tz::Offset::UTC) }),
            (_, 3 | 4) => {
                let (h, m) = (integer(&a[0])?, integer(&a[1])?);
                let seconds = num(&a[2])?;
                let whole = seconds.trunc().to_i64()?;
                let nanos = ((seconds - seconds.trunc()) * Decimal::from(1_000_000_000)).trunc().to_i64()?;
                let civil = jiff::civil::Time::new(i8::try_from(h).ok()?, i8::try_from(m).ok()?, i8::try_from(whole).ok()?, i32::try_from(nanos).ok()?).ok()?;
                let zone = match a.get(3) {
                    None | Some(Value::Null) => temporal::Zone::Local,
                    Some(Value::Duration(temporal::Duration::DaysTime(n))) => {
                        temporal::Zone::Offset(jiff::tz::Offset::from_seconds(i32::try_from(n / temporal::SECOND).ok()?).ok()?)
                    }
                    _ => return None,
                };
                Value::Time(temporal::Time { civil, zone })
            }
            _ => return None,
        },
        "duration" => Value::Duration(temporal::Duration::parse(text(&a[0])?)?),
        "years and months duration" => {
            let (from, to) = (date_of(&a[0])?, date_of(&a[1])?);
            let mut months = (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month()) - i64::from(from.month());
            // A month counts once its day is reached.
            if months > 0 && to.day() < from.day() {
                months -= 1;
            } else if months < 0 && to.day() > from.day() {
                months += 1;
            }
            Value::Duration(temporal::Duration::YearsMonths(months))
        }
        "day of week" => {
            let date = date_of(&a[0])?;
            let names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
            Value::String(names[usize::try_from(date.weekday().to_monday_zero_offset()).ok()?].to_string())
        }
        "month of year" => {
            let date = date_of(&a[0])?;
            let names = [
                "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
                "December",
            ];
            Value::String(names[usize::try_from(date.month() - 1).ok()?].to_string())
        }
        "context put" => {
            // A key, or a path of keys into nested contexts.
            let keys: Vec<String> = match &a[1] {
                Value::String(key) => vec![key.clone()],
                Value::List(keys) if !keys.is_empty() => keys.iter().map(|k| text(k).map(str::to_string)).collect::<Option<_>>()?,
                _ => return None,
            };
            fn put(context: &Value, keys: &[String], value: Value) -> Option<Value> {
                let Value::Context(map) = context else { return None };
                let mut map = map.clone();
                match keys {
                    [key] => {
                        map.insert(key.clone(), value);
                    }
                    [key, rest @ ..] => {
                        let inner = map.get(key).cloned().unwrap_or(Value::Context(BTreeMap::new()));
                        map.insert(key.clone(), put(&inner, rest, value)?);
                    }
                    [] => return None,
                }
                Some(Value::Context(map))
            }
            put(&a[0], &keys, a[2].clone())?
        }
        "get value" => {
            let Value::Context(map) = &a[0] else { return None };
            map.get(text(&a[1])?).cloned().unwrap_or(Value::Null)
        }
        "get entries" => {
            let Value::Context(map) = &a[0] else { return None };
            Value::List(
                map.iter()
                    .map(|(k, v)| {
                        Value::Context(BTreeMap::from([("key".to_string(), Value::String(k.clone())), ("value".to_string(), v.clone())]))
                    })
                    .collect(),
            )
        }
        "context merge" => {
            let contexts = match &a[0] {
                Value::List(contexts) => contexts.clone(),
                single => vec![single.clone()],
            };
            let mut merged = BTreeMap::new();
            for context in contexts {
                let Value::Context(map) = context else { return None };
                merged.extend(map.clone());
            }
            Value::Context(merged)
        }
        _ => return None,
    })
}

/// A scale for rounding: a number, its fraction dropped, from -6111 to 6176
/// (DMN's decimal128 range); none given is 0.
fn scale_of(scale: Option<&Value>) -> Option<i64> {
    let scale = match scale {
        None => return Some(0),
        Some(scale) => num(scale)?.trunc().to_i64()?,
    };
    (-6111..=6176).contains(&scale).then_some(scale)
}

/// `n` rounded to `scale` decimal places (a negative scale rounds to tens, hundreds, ...).
fn round_to(n: Decimal, scale: i64, strategy: RoundingStrategy) -> Option<Decimal> {
    if scale >= 0 {
        return Some(n.round_dp_with_strategy(u32::try_from(scale.min(28)).ok()?, strategy));
    }
    let factor = Decimal::from_i128_with_scale(10i128.checked_pow(u32::try_from(-scale).ok()?)?, 0);
    n.checked_div(factor)?.round_dp_with_strategy(0, strategy).checked_mul(factor)
}

/// An XPath replacement (`$1`, `\$`) as the regex crate writes it (`${1}`, `$$`).
fn xpath_replacement(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len() + 8);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{digits}}}"));
            }
            other => out.push(other),
        }
    }
    out
}

/// A regular expression with FEEL's flags (`i`, `s`, `m`, `x`); patterns are
/// bounded in compiled size, and matching takes linear time.
fn pattern(source: &Value, flags: Option<&Value>) -> Option<regex::Regex> {
    // Null flags are no flags; `q` (XML Schema) takes the pattern as literal text.
    let flags = match flags {
        None | Some(Value::Null) => "",
        Some(flags) => text(flags)?,
    };
    let literal = flags.contains('q');
    let source = if literal { regex::escape(text(source)?) } else { xpath_pattern(text(source)?, flags.contains('x'), flags.contains('s'))? };
    let mut builder = regex::RegexBuilder::new(&source);
    builder.size_limit(1 << 20).dfa_size_limit(1 << 20);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            's' => builder.dot_matches_new_line(true),
            'm' => builder.multi_line(true),
            // `x` is applied by xpath_pattern; `q` by escaping.
            'x' | 'q' => &mut builder,
            _ => return None,
        };
    }
    builder.build().ok()
}

/// An XPath (XML Schema) regular expression as the regex crate reads it:
/// with `x`, whitespace outside character classes goes; `.` does not match
/// `\r` (nor `\n`) unless `s`; class subtraction `[a-z-[aeiou]]` is `--`;
/// `\p{IsBasicLatin}` is the block. Back references have no translation: `None`.
fn xpath_pattern(source: &str, extended: bool, dot_all: bool) -> Option<String> {
    let mut out = String::with_capacity(source.len() + 8);
    let mut chars = source.chars().peekable();
    let mut class_depth = 0;
    while let Some(c) = chars.next() {
        if extended && class_depth == 0 && c.is_whitespace() {
            continue;
        }
        match c {
            '\\' => {
                // With `x` the whitespace is gone before the escape is read (`\ s` is `\s`).
                let mut next = chars.next()?;
                while extended && next.is_whitespace() {
                    next = chars.next()?;
                }
                match next {
                    'p' | 'P' if chars.peek() == Some(&'{') => {
                        let mut name = String::new();
                        for n in chars.by_ref() {
                            if n == '}' {
                                break;
                            }
                            if n.is_whitespace() && !extended {
                                return None;
                            }
                            if !n.is_whitespace() {
                                name.push(n);
                            }
                        }
                        let name = name.trim_start_matches('{');
                        match name {
                            "IsBasicLatin" if next == 'p' => out.push_str(r"[\x00-\x7F]"),
                            "IsBasicLatin" => out.push_str(r"[^\x00-\x7F]"),
                            block if block.starts_with("Is") => return None,
                            category => out.push_str(&format!("\\{next}{{{category}}}")),
                        }
                    }
                    digit if digit.is_ascii_digit() && class_depth == 0 => return None,
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '[' => {
                class_depth += 1;
                out.push('[');
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            '-' if class_depth > 0 && chars.peek() == Some(&'[') => out.push_str("--"),
            '.' if class_depth == 0 && !dot_all => out.push_str(r"[^\n\r]"),
            other => out.push(other),
        }
    }
    Some(out)
}

fn num(value: &Value) -> Option<Decimal> {
    if let Value::Number(n) = value {
        Some(*n)
    } else {
        None
    }
}

fn date_of(value: &Value) -> Option<jiff::civil::Date> {
    match value {
        Value::Date(d) => Some(*d),
        Value::DateTime(t) => Some(t.civil.date()),
        _ => None,
    }
}

/// A date and time with `Z` or an offset; a local date-time is read as UTC.
pub fn parse_timestamp(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Some(timestamp);
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}
