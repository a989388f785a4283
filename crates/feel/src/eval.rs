//! The tree-walking evaluator. Every node visited and every iteration run
//! spends one unit of fuel, so evaluation time is bounded by [`Limits::fuel`].

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, MathematicalOps};

use crate::builtins;
use crate::temporal::{self, Duration as Dur, Zone};
use crate::parser::{BinOp, Node};
use crate::value::{Range, Value};
use crate::{EvalError, Limits, Variables};

pub(crate) struct Evaluator<'v> {
    variables: &'v dyn Variables,
    pub(crate) limits: Limits,
    fuel_left: u64,
    /// What is left of [`Limits::max_bytes`].
    bytes_left: usize,
    /// Names bound inside the expression (iteration variables, `item`,
    /// earlier context entries), innermost last.
    frames: Vec<(String, Value)>,
    /// How many random values this evaluation has drawn.
    draws: u64,
    /// Set when a `for` or quantifier met a range it cannot walk (`"a".."z"`): the result is null.
    unwalkable: bool,
}

impl<'v> Evaluator<'v> {
    pub(crate) fn new(variables: &'v dyn Variables, limits: &Limits) -> Self {
        Evaluator { variables, limits: *limits, fuel_left: limits.fuel, bytes_left: limits.max_bytes, frames: Vec::new(), draws: 0, unwalkable: false }
    }

    pub(crate) fn burn(&mut self, units: u64) -> Result<(), EvalError> {
        self.fuel_left = self.fuel_left.checked_sub(units).ok_or(EvalError::OutOfFuel)?;
        Ok(())
    }

    /// Counts `bytes` of values copied or built against [`Limits::max_bytes`].
    pub(crate) fn spend_bytes(&mut self, bytes: usize) -> Result<(), EvalError> {
        self.bytes_left = self.bytes_left.checked_sub(bytes).ok_or_else(|| {
            EvalError::TooLarge(format!("more than {} bytes of values copied and built", self.limits.max_bytes))
        })?;
        Ok(())
    }

    pub(crate) fn check_len(&self, len: usize, what: &str) -> Result<(), EvalError> {
        if len > self.limits.max_collection_len {
            return Err(EvalError::TooLarge(format!("a {what} of more than {} entries", self.limits.max_collection_len)));
        }
        Ok(())
    }

    pub(crate) fn check_string(&self, s: &str) -> Result<(), EvalError> {
        if s.len() > self.limits.max_string_bytes {
            return Err(EvalError::TooLarge(format!("a string of more than {} bytes", self.limits.max_string_bytes)));
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some((_, value)) = self.frames.iter().rev().find(|(n, _)| n == name) {
            return Some(value.clone());
        }
        self.variables.get_value(name)
    }

    /// Two pseudo-random words from the scope's seed and this evaluation's count of draws (splitmix64).
    fn next_random(&mut self) -> Option<(u64, u64)> {
        let seed = self.variables.seed()?;
        self.draws += 1;
        let mut state = seed ^ self.draws.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Some((next(), next()))
    }

    /// A function value bound to a name (a parameter, a context entry, a decision).
    fn lookup_function(&self, name: &str) -> Option<std::sync::Arc<crate::value::Function>> {
        if let Some((_, Value::Function(function))) = self.frames.iter().rev().find(|(n, _)| n == name) {
            return Some(function.clone());
        }
        // A built-in's name is the built-in, unless a local name shadows it.
        if crate::builtins::is_builtin(name) {
            return None;
        }
        match self.variables.get_value(name) {
            Some(Value::Function(function)) => Some(function),
            _ => None,
        }
    }

    fn named_arguments(&mut self, arguments: &[(String, Node)]) -> Result<Vec<(String, Value)>, EvalError> {
        let mut named = Vec::with_capacity(arguments.len());
        for (name, argument) in arguments {
            named.push((name.clone(), self.eval(argument)?));
        }
        Ok(named)
    }

    /// Calls a FEEL function with named arguments: each parameter takes the argument of its name.
    fn apply_named(&mut self, function: &crate::value::Function, named: &[(String, Value)]) -> Result<Value, EvalError> {
        let values = function.parameters.iter().map(|p| named.iter().find(|(n, _)| n == p).map_or(Value::Null, |(_, v)| v.clone())).collect();
        self.apply(function, values)
    }

    /// Calls a FEEL function: its parameters bound over the names it closed over.
    pub(crate) fn apply(&mut self, function: &crate::value::Function, arguments: Vec<Value>) -> Result<Value, EvalError> {
        self.burn(1)?;
        let saved = std::mem::replace(&mut self.frames, function.captured.clone());
        for (i, parameter) in function.parameters.iter().enumerate() {
            self.frames.push((parameter.clone(), arguments.get(i).cloned().unwrap_or(Value::Null)));
        }
        let result = self.eval(&function.body);
        self.frames = saved;
        result
    }

    /// `sort(list, precedes)` and `list replace(list, match, newItem)`: built-ins that call a function.
    fn higher_order(&mut self, name: &str, arguments: Vec<Value>) -> Result<Value, EvalError> {
        match (name, arguments.as_slice()) {
            ("sort", [Value::List(items), Value::Function(precedes)]) => {
                // An insertion sort: each comparison is a call, bounded by fuel.
                let mut sorted: Vec<Value> = Vec::with_capacity(items.len());
                for item in items {
                    let mut at = sorted.len();
                    for (i, other) in sorted.iter().enumerate() {
                        if self.apply(precedes, vec![item.clone(), other.clone()])? == Value::Bool(true) {
                            at = i;
                            break;
                        }
                    }
                    sorted.insert(at, item.clone());
                }
                Ok(Value::List(sorted))
            }
            ("list replace", [Value::List(items), Value::Function(matches), new_item]) => {
                // The match takes an item and the new item, and answers true or false (else there is no answer).
                if matches.parameters.len() != 2 {
                    return Ok(Value::Null);
                }
                let mut replaced = Vec::with_capacity(items.len());
                for item in items {
                    let hit = match self.apply(matches, vec![item.clone(), new_item.clone()])? {
                        Value::Bool(hit) => hit,
                        _ => return Ok(Value::Null),
                    };
                    replaced.push(if hit { new_item.clone() } else { item.clone() });
                }
                Ok(Value::List(replaced))
            }
            _ => builtins::call(self, name, arguments),
        }
    }

    /// One positive unary test of an input entry against the input value:
    /// a comparison with an endpoint; else the test's value, with `?` standing
    /// for the input, matched as `in` matches it (equal, in the list, in the
    /// range), or `true` for a condition on `?`.
    pub(crate) fn unary_test(&mut self, input: &Value, test: &Node) -> Result<bool, EvalError> {
        if let Node::UnaryTest(op, operand) = test {
            let operand = self.eval(operand)?;
            return Ok(binary(*op, input, &operand) == Value::Bool(true));
        }
        self.frames.push(("?".into(), input.clone()));
        let value = self.eval(test);
        self.frames.pop();
        let value = value?;
        let mut names = Vec::new();
        test.free_names(&mut names);
        if names.iter().any(|n| n == "?") {
            if let Value::Bool(b) = value {
                return Ok(b);
            }
        }
        Ok(match &value {
            Value::Range(range) => range_contains(range, input) == Some(true),
            Value::List(items) if !matches!(input, Value::List(_)) => {
                items.iter().any(|item| match item {
                    Value::Range(range) => range_contains(range, input) == Some(true),
                    other => values_equal(input, other) == Some(true),
                })
            }
            other => values_equal(input, other) == Some(true),
        })
    }

    pub(crate) fn eval(&mut self, node: &Node) -> Result<Value, EvalError> {
        self.burn(1)?;
        Ok(match node {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(*n),
            Node::Str(s) => Value::String(s.clone()),
            Node::Name(name) => {
                let value = self.lookup(name).unwrap_or(Value::Null);
                self.spend_bytes(value.approximate_bytes())?;
                value
            }
            Node::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                Value::List(values)
            }
            Node::Context(entries) => {
                // Later entries may read earlier ones.
                let depth = self.frames.len();
                let mut map = BTreeMap::new();
                let mut duplicate = false;
                for (key, value_node) in entries {
                    let value = self.eval(value_node)?;
                    self.frames.push((key.clone(), value.clone()));
                    duplicate |= map.insert(key.clone(), value).is_some();
                }
                self.frames.truncate(depth);
                // A context that names a key twice is no context.
                if duplicate {
                    Value::Null
                } else {
                    Value::Context(map)
                }
            }
            Node::Range { start, start_included, end, end_included, form } => Value::Range(Box::new(Range {
                comparison: match form {
                    crate::parser::RangeForm::Comparison(op) => Some(*op),
                    _ => None,
                },
                start: self.eval(start)?,
                start_included: *start_included,
                end: self.eval(end)?,
                end_included: *end_included,
            })),
            Node::Neg(operand) => match self.eval(operand)? {
                Value::Number(n) => Value::Number(-n),
                Value::Duration(duration) => Value::Duration(duration.negate()),
                _ => Value::Null,
            },
            Node::Binary(op, left, right) => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                let value = binary(*op, &left, &right);
                if let Value::String(s) = &value {
                    self.check_string(s)?;
                    self.spend_bytes(s.len())?;
                }
                value
            }
            Node::And(left, right) => match self.eval(left)? {
                Value::Bool(false) => Value::Bool(false),
                l => match (l, self.eval(right)?) {
                    (_, Value::Bool(false)) => Value::Bool(false),
                    (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                    _ => Value::Null,
                },
            },
            Node::Or(left, right) => match self.eval(left)? {
                Value::Bool(true) => Value::Bool(true),
                l => match (l, self.eval(right)?) {
                    (_, Value::Bool(true)) => Value::Bool(true),
                    (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                    _ => Value::Null,
                },
            },
            Node::Between(value, low, high) => {
                let value = self.eval(value)?;
                let low = self.eval(low)?;
                let high = self.eval(high)?;
                match (compare(&value, &low), compare(&value, &high)) {
                    (Some(a), Some(b)) => Value::Bool(a != Ordering::Less && b != Ordering::Greater),
                    _ => Value::Null,
                }
            }
            Node::In(value, test) => {
                let value = self.eval(value)?;
                self.test(&value, test)?
            }
            Node::UnaryTest(..) => Value::Null,
            Node::InAny(value, tests) => {
                let value = self.eval(value)?;
                let mut any = false;
                for test in tests {
                    if self.unary_test(&value, test)? {
                        any = true;
                        break;
                    }
                }
                Value::Bool(any)
            }
            Node::InstanceOf(value, type_name) => {
                let value = self.eval(value)?;
                Value::Bool(self.instance_of(&value, type_name, 0))
            }
            Node::If(condition, then, otherwise) => {
                if self.eval(condition)? == Value::Bool(true) {
                    self.eval(then)?
                } else {
                    self.eval(otherwise)?
                }
            }
            Node::For(contexts, body, reads_partial) => {
                let outer = std::mem::replace(&mut self.unwalkable, false);
                let mut results = Vec::new();
                // What `partial` holds, in bytes: each turn copies it whole.
                let mut partial_bytes = 0usize;
                self.iterate(contexts, 0, &mut |ev| {
                    let value = if *reads_partial {
                        ev.burn(results.len() as u64)?;
                        ev.spend_bytes(partial_bytes)?;
                        ev.frames.push(("partial".into(), Value::List(results.clone())));
                        let value = ev.eval(body);
                        ev.frames.pop();
                        value
                    } else {
                        ev.eval(body)
                    };
                    let value = value?;
                    if *reads_partial {
                        partial_bytes = partial_bytes.saturating_add(value.approximate_bytes());
                    }
                    results.push(value);
                    ev.check_len(results.len(), "list")?;
                    Ok(true)
                })?;
                let unwalkable = std::mem::replace(&mut self.unwalkable, outer);
                if unwalkable {
                    Value::Null
                } else {
                    Value::List(results)
                }
            }
            Node::Quantified { every, contexts, condition } => {
                let every = *every;
                let mut outcome = every;
                self.iterate(contexts, 0, &mut |ev| {
                    let satisfied = ev.eval(condition)? == Value::Bool(true);
                    if satisfied != every {
                        outcome = !every;
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                Value::Bool(outcome)
            }
            Node::Path(base, key) => {
                let base = self.eval(base)?;
                path(&base, key)
            }
            Node::Filter(list, condition) => {
                let list = self.eval(list)?;
                self.filter(list, condition)?
            }
            Node::Function(parameters, body) => {
                // The function sees the names around it as they are now: the
                // evaluation's own, and those of the scope it reads (a business
                // knowledge model's parameters, for a function it returns).
                let mut captured = self.frames.clone();
                let mut free = Vec::new();
                body.free_names(&mut free);
                for name in free {
                    if parameters.contains(&name) || captured.iter().any(|(n, _)| *n == name) {
                        continue;
                    }
                    if let Some(value) = self.variables.get_value(&name) {
                        captured.push((name, value));
                    }
                }
                Value::Function(std::sync::Arc::new(crate::value::Function { parameters: parameters.clone(), body: (**body).clone(), captured }))
            }
            Node::Invoke(callee, arguments) => {
                let callee = self.eval(callee)?;
                let mut values = Vec::with_capacity(arguments.len());
                for argument in arguments {
                    values.push(self.eval(argument)?);
                }
                match callee {
                    Value::Function(function) => self.apply(&function, values)?,
                    _ => Value::Null,
                }
            }
            Node::InvokeNamed(callee, arguments) => {
                let callee = self.eval(callee)?;
                let named = self.named_arguments(arguments)?;
                match callee {
                    Value::Function(function) => self.apply_named(&function, &named)?,
                    _ => Value::Null,
                }
            }
            Node::CallNamed(function, arguments) => {
                let named = self.named_arguments(arguments)?;
                if let Some(callee) = self.lookup_function(function) {
                    return self.apply_named(&callee, &named);
                }
                match self.variables.call_named(function, named) {
                    Some(result) => {
                        self.burn(1)?;
                        result?
                    }
                    None => Value::Null,
                }
            }
            Node::Call(function, arguments) if function == "sort" && arguments.len() == 2 || function == "list replace" => {
                let mut values = Vec::with_capacity(arguments.len());
                for argument in arguments {
                    values.push(self.eval(argument)?);
                }
                match self.lookup_function(function) {
                    Some(callee) => self.apply(&callee, values)?,
                    None => self.higher_order(function, values)?,
                }
            }
            // The step's time and the instance's seed, never the machine's clock or randomness.
            Node::Call(function, arguments) if arguments.is_empty() && matches!(function.as_str(), "now" | "today" | "uuid" | "random number") => {
                match function.as_str() {
                    "now" => self.variables.clock().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()).map_or(Value::Null, |t| Value::DateTime(temporal::DateTime::from_timestamp(t))),
                    "today" => self.variables.clock().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()).map_or(Value::Null, |t| Value::Date(t.to_zoned(jiff::tz::TimeZone::UTC).date())),
                    "uuid" => match self.next_random() {
                        Some((a, b)) => {
                            // Version 4's layout; the bits come from the seed.
                            let bits = (u128::from(a) << 64 | u128::from(b)) & !(0xF000 << 64) & !(0xC000_0000_0000_0000) | (0x4000 << 64) | 0x8000_0000_0000_0000;
                            let hex = format!("{bits:032x}");
                            Value::String(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
                        }
                        None => Value::Null,
                    },
                    _ => match self.next_random() {
                        Some((a, _)) => Value::Number(Decimal::from(a >> 11) / Decimal::from(1u64 << 53)),
                        None => Value::Null,
                    },
                }
            }
            Node::Call(function, arguments) => {
                if function == "is defined" {
                    if let [Node::Name(name)] = arguments.as_slice() {
                        return Ok(Value::Bool(self.lookup(name).is_some()));
                    }
                }
                // A name bound here to a function value (a parameter, an entry) calls it;
                // then a function of the scope (a business knowledge model, with its
                // types checked); then a function value the scope holds (a decision's).
                let local = match self.frames.iter().rev().find(|(n, _)| n == function) {
                    Some((_, Value::Function(callee))) => Some(callee.clone()),
                    _ => None,
                };
                let mut values = Vec::with_capacity(arguments.len());
                for argument in arguments {
                    values.push(self.eval(argument)?);
                }
                if let Some(callee) = local {
                    return self.apply(&callee, values);
                }
                if crate::builtins::check(function, values.len()).is_err() {
                    if let Some(result) = self.variables.call(function, values.clone()) {
                        self.burn(1)?;
                        return result;
                    }
                }
                if let Some(callee) = self.lookup_function(function) {
                    return self.apply(&callee, values);
                }
                builtins::call(self, function, values)?
            }
        })
    }

    /// Runs `body` once per combination of the iteration contexts from `index`
    /// on. `body` returns `false` to stop early.
    fn iterate(
        &mut self,
        contexts: &[(String, Node)],
        index: usize,
        body: &mut dyn FnMut(&mut Self) -> Result<bool, EvalError>,
    ) -> Result<bool, EvalError> {
        let Some((name, source)) = contexts.get(index) else {
            return body(self);
        };
        // Only `a..b` walks down: `[2..1]` in brackets is no range to walk.
        let bracketed = matches!(source, Node::Range { form: crate::parser::RangeForm::Bracketed, .. });
        let items: Box<dyn Iterator<Item = Value>> = match self.eval(source)? {
            Value::List(items) => Box::new(items.into_iter()),
            Value::Range(range) => match (&range.start, &range.end) {
                (Value::Number(a), Value::Number(b)) => {
                    let (Some(a), Some(b)) = (a.to_i64(), b.to_i64()) else {
                        return Ok(true);
                    };
                    if a > b && bracketed {
                        self.unwalkable = true;
                        return Ok(true);
                    }
                    if a <= b {
                        Box::new((a..=b).map(|i| Value::Number(Decimal::from(i))))
                    } else {
                        Box::new((b..=a).rev().map(|i| Value::Number(Decimal::from(i))))
                    }
                }
                // Day by day, either way (`for d in @"2026-01-01"..@"2026-01-03"`).
                (Value::Date(a), Value::Date(b)) => {
                    let (a, b) = (*a, *b);
                    let days = (b - a).get_days().unsigned_abs() as usize;
                    self.check_len(days + 1, "range")?;
                    let step = if a <= b { 1 } else { -1 };
                    Box::new((0..=days as i64).filter_map(move |i| a.checked_add(jiff::Span::new().days(i * step)).ok().map(Value::Date)))
                }
                _ => {
                    self.unwalkable = true;
                    return Ok(true);
                }
            },
            Value::Null => return Ok(true),
            single => Box::new(std::iter::once(single)),
        };
        for item in items {
            self.burn(1)?;
            self.frames.push((name.clone(), item));
            let go_on = self.iterate(contexts, index + 1, body);
            self.frames.pop();
            if !go_on? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn filter(&mut self, list: Value, condition: &Node) -> Result<Value, EvalError> {
        // A condition that is a number without reference to the item is an index.
        let items = match list {
            Value::List(items) => items,
            Value::Null => return Ok(Value::Null),
            single => vec![single],
        };
        if let Value::Number(index) = self.eval(condition)? {
            let Some(index) = index.to_i64() else { return Ok(Value::Null) };
            let position = match index {
                i if i > 0 => usize::try_from(i - 1).ok(),
                i if i < 0 => usize::try_from(-i).ok().and_then(|back| items.len().checked_sub(back)),
                _ => None,
            };
            return Ok(position.and_then(|p| items.get(p).cloned()).unwrap_or(Value::Null));
        }
        let mut kept = Vec::new();
        for item in items {
            self.burn(1)?;
            let depth = self.frames.len();
            // A context's own entries come over `item` (`[{item: 1}][item > 0]` reads the entry).
            self.frames.push(("item".into(), item.clone()));
            if let Value::Context(entries) = &item {
                self.frames.extend(entries.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let keep = self.eval(condition);
            self.frames.truncate(depth);
            if keep? == Value::Bool(true) {
                kept.push(item);
            }
        }
        Ok(Value::List(kept))
    }

    fn test(&mut self, value: &Value, test: &Node) -> Result<Value, EvalError> {
        if let Node::UnaryTest(op, operand) = test {
            let operand = self.eval(operand)?;
            return Ok(binary(*op, value, &operand));
        }
        Ok(match self.eval(test)? {
            Value::List(candidates) => {
                let mut found = false;
                for candidate in &candidates {
                    let hit = match candidate {
                        Value::Range(range) => range_contains(range, value),
                        other => values_equal(value, other),
                    };
                    if hit == Some(true) {
                        found = true;
                        break;
                    }
                }
                Value::Bool(found)
            }
            Value::Range(range) => range_contains(&range, value).map_or(Value::Null, Value::Bool),
            other => values_equal(value, &other).map_or(Value::Null, Value::Bool),
        })
    }
}

impl Evaluator<'_> {
    /// Whether a value is of a FEEL type: `Any` holds everything, `Null` only
    /// null; null is of no other type; `list<T>` and `context<name: T, ...>`
    /// look inside (a context may have more entries than its type names); a
    /// type the scope defines (a DMN item definition) is what it is made of.
    fn instance_of(&self, value: &Value, type_name: &str, depth: usize) -> bool {
        // The parser keeps the words of a type apart (`context <a :string >`).
        let type_name = type_name.trim().replace(" <", "<").replace(" >", ">").replace(" :", ":");
        let type_name = type_name.as_str();
        if depth < 16 {
            if let Some(definition) = self.variables.type_definition(type_name) {
                return self.instance_of(value, &definition, depth + 1);
            }
        }
        if let Some(inner) = type_name.strip_prefix("list<").and_then(|t| t.strip_suffix('>')) {
            return matches!(value, Value::List(items) if items.iter().all(|i| self.instance_of(i, inner, depth + 1)));
        }
        if let Some(members) = type_name.strip_prefix("context<").and_then(|t| t.strip_suffix('>')) {
            let Value::Context(map) = value else { return false };
            return split_members(members)
                .iter()
                .all(|(name, member_type)| map.get(*name).is_some_and(|v| *v == Value::Null || self.instance_of(v, member_type, depth + 1)));
        }
        instance_of(value, type_name)
    }
}

/// `a: number, b: context<c: string>` as its names and types (commas inside `<...>` belong to the inner type).
fn split_members(members: &str) -> Vec<(&str, &str)> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in members.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&members[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&members[start..]);
    parts.into_iter().filter_map(|part| part.split_once(':')).map(|(name, t)| (name.trim(), t.trim())).collect()
}

/// Whether a value is of a built-in FEEL type: `Any` holds everything but null, `Null` only null.
fn instance_of(value: &Value, type_name: &str) -> bool {
    let type_name = type_name.trim();
    if type_name == "Any" {
        // Null is of no type but Null.
        return !matches!(value, Value::Null);
    }
    if type_name == "Null" {
        return matches!(value, Value::Null);
    }
    if type_name.starts_with("context") {
        return matches!(value, Value::Context(_));
    }
    if type_name.starts_with("range") {
        return matches!(value, Value::Range(_));
    }
    if type_name.starts_with("function") {
        return matches!(value, Value::Function(_));
    }
    matches!(
        (value, type_name),
        (Value::Number(_), "number")
            | (Value::String(_), "string")
            | (Value::Bool(_), "boolean")
            | (Value::Date(_), "date")
            | (Value::DateTime(_), "date and time")
            | (Value::Time(_), "time")
            | (Value::Duration(Dur::DaysTime(_)), "days and time duration")
            | (Value::Duration(Dur::YearsMonths(_)), "years and months duration")
    )
}

fn path(base: &Value, key: &str) -> Value {
    match base {
        Value::Context(map) => map.get(key).cloned().unwrap_or(Value::Null),
        Value::List(items) => Value::List(items.iter().map(|item| path(item, key)).collect()),
        Value::Range(range) => match key {
            "start" => range.start.clone(),
            "end" => range.end.clone(),
            "start included" => Value::Bool(range.start_included),
            "end included" => Value::Bool(range.end_included),
            _ => Value::Null,
        },
        Value::Date(date) => match key {
            "year" => Value::Number(date.year().into()),
            "month" => Value::Number(date.month().into()),
            "day" => Value::Number(date.day().into()),
            "weekday" => Value::Number(date.weekday().to_monday_one_offset().into()),
            _ => Value::Null,
        },
        Value::DateTime(dt) => {
            let civil = dt.civil;
            match key {
                "year" => Value::Number(civil.year().into()),
                "month" => Value::Number(civil.month().into()),
                "day" => Value::Number(civil.day().into()),
                "hour" => Value::Number(civil.hour().into()),
                "minute" => Value::Number(civil.minute().into()),
                "second" => Value::Number(civil.second().into()),
                "weekday" => Value::Number(civil.weekday().to_monday_one_offset().into()),
                "time offset" => dt.offset().map_or(Value::Null, |o| Value::Duration(Dur::DaysTime(i128::from(o.seconds()) * temporal::SECOND))),
                "timezone" => match &dt.zone {
                    Zone::Named(_, name) => Value::String(name.clone()),
                    _ => Value::Null,
                },
                _ => Value::Null,
            }
        }
        Value::Time(time) => match key {
            "hour" => Value::Number(time.civil.hour().into()),
            "minute" => Value::Number(time.civil.minute().into()),
            "second" => Value::Number(time.civil.second().into()),
            "time offset" => match &time.zone {
                Zone::Offset(o) => Value::Duration(Dur::DaysTime(i128::from(o.seconds()) * temporal::SECOND)),
                _ => Value::Null,
            },
            "timezone" => match &time.zone {
                Zone::Named(_, name) => Value::String(name.clone()),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Value::Duration(Dur::YearsMonths(months)) => match key {
            "years" => Value::Number((months / 12).into()),
            "months" => Value::Number((months % 12).into()),
            _ => Value::Null,
        },
        Value::Duration(Dur::DaysTime(nanos)) => temporal::duration_part(*nanos, key).and_then(|n| Decimal::try_from_i128_with_scale(n, 0).ok()).map_or(Value::Null, Value::Number),
        _ => Value::Null,
    }
}

pub(crate) fn binary(op: BinOp, left: &Value, right: &Value) -> Value {
    use Value::*;
    match op {
        BinOp::Eq => values_equal(left, right).map_or(Null, Bool),
        BinOp::Ne => values_equal(left, right).map_or(Null, |eq| Bool(!eq)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match compare(left, right) {
            Some(ordering) => Bool(match op {
                BinOp::Lt => ordering == Ordering::Less,
                BinOp::Le => ordering != Ordering::Greater,
                BinOp::Gt => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            }),
            None => Null,
        },
        BinOp::Add => match (left, right) {
            (Number(a), Number(b)) => a.checked_add(*b).map_or(Null, Number),
            (String(a), String(b)) => String(format!("{a}{b}")),
            (DateTime(_) | Date(_) | Time(_), Duration(_)) => temporal_plus(left, right, false),
            (Duration(_), DateTime(_) | Date(_) | Time(_)) => temporal_plus(right, left, false),
            (Duration(a), Duration(b)) => match (a, b) {
                (Dur::DaysTime(a), Dur::DaysTime(b)) => a.checked_add(*b).map_or(Null, |n| Duration(Dur::DaysTime(n))),
                (Dur::YearsMonths(a), Dur::YearsMonths(b)) => a.checked_add(*b).map_or(Null, |n| Duration(Dur::YearsMonths(n))),
                _ => Null,
            },
            _ => Null,
        },
        BinOp::Sub => match (left, right) {
            (Number(a), Number(b)) => a.checked_sub(*b).map_or(Null, Number),
            (DateTime(_) | Date(_) | Time(_), Duration(_)) => temporal_plus(left, right, true),
            (DateTime(a), DateTime(b)) => a.since(b).map_or(Null, |n| Duration(Dur::DaysTime(n))),
            (Date(a), Date(b)) => Duration(Dur::DaysTime(i128::from(a.since(*b).map(|s| s.get_days()).unwrap_or(0)) * temporal::DAY)),
            (Date(a), DateTime(b)) => date_at_midnight(*a).since(b).map_or(Null, |n| Duration(Dur::DaysTime(n))),
            (DateTime(a), Date(b)) => a.since(&date_at_midnight(*b)).map_or(Null, |n| Duration(Dur::DaysTime(n))),
            (Time(a), Time(b)) => a.since(b).map_or(Null, |n| Duration(Dur::DaysTime(n))),
            (Duration(a), Duration(b)) => binary(BinOp::Add, left, &Duration(b.negate())).pipe_if(matches!((a, b), (Dur::DaysTime(_), Dur::DaysTime(_)) | (Dur::YearsMonths(_), Dur::YearsMonths(_)))),
            _ => Null,
        },
        BinOp::Mul => match (left, right) {
            (Number(a), Number(b)) => a.checked_mul(*b).map_or(Null, Number),
            (Duration(d), Number(n)) | (Number(n), Duration(d)) => scale_duration(*d, *n, false),
            _ => Null,
        },
        BinOp::Div => match (left, right) {
            (Number(a), Number(b)) => a.checked_div(*b).map_or(Null, Number),
            (Duration(d), Number(n)) => scale_duration(*d, *n, true),
            (Duration(Dur::DaysTime(a)), Duration(Dur::DaysTime(b))) if *b != 0 => {
                // Nanoseconds past a decimal's 96 bits are null, not a panic.
                match (Decimal::try_from_i128_with_scale(*a, 0), Decimal::try_from_i128_with_scale(*b, 0)) {
                    (Ok(a), Ok(b)) => a.checked_div(b).map_or(Null, Number),
                    _ => Null,
                }
            }
            (Duration(Dur::YearsMonths(a)), Duration(Dur::YearsMonths(b))) if *b != 0 => Decimal::from(*a).checked_div(Decimal::from(*b)).map_or(Null, Number),
            _ => Null,
        },
        BinOp::Pow => match (left, right) {
            (Number(a), Number(b)) => {
                let result = if b.fract().is_zero() { b.to_i64().and_then(|e| a.checked_powi(e)) } else { a.checked_powd(*b) };
                result.map_or(Null, Number)
            }
            _ => Null,
        },
    }
}

trait PipeIf {
    fn pipe_if(self, keep: bool) -> Self;
}

impl PipeIf for Value {
    fn pipe_if(self, keep: bool) -> Value {
        if keep {
            self
        } else {
            Value::Null
        }
    }
}

/// A date where a date and time is: its midnight at UTC (DMN 1.5), so a local date and time and a date do not subtract.
fn date_at_midnight(date: jiff::civil::Date) -> temporal::DateTime {
    temporal::DateTime { civil: date.to_datetime(jiff::civil::Time::midnight()), zone: Zone::Offset(jiff::tz::Offset::UTC) }
}

/// A date, date and time or time moved by a duration (back, with `minus`).
fn temporal_plus(value: &Value, duration: &Value, minus: bool) -> Value {
    let Value::Duration(duration) = duration else { return Value::Null };
    let duration = if minus { duration.negate() } else { *duration };
    match (value, duration) {
        (Value::DateTime(dt), Dur::DaysTime(n)) => dt.add_nanos(n).map_or(Value::Null, Value::DateTime),
        (Value::DateTime(dt), Dur::YearsMonths(m)) => dt.add_months(m).map_or(Value::Null, Value::DateTime),
        // A date moves as its midnight at UTC does, and stays a date.
        (Value::Date(date), Dur::DaysTime(n)) => {
            let midnight = temporal::DateTime { civil: date.to_datetime(jiff::civil::Time::midnight()), zone: Zone::Local };
            midnight.add_nanos(n).map_or(Value::Null, |dt| Value::Date(dt.civil.date()))
        }
        (Value::Date(date), Dur::YearsMonths(m)) => temporal::add_months(*date, m).map_or(Value::Null, Value::Date),
        (Value::Time(time), Dur::DaysTime(n)) => time.add_nanos(n).map_or(Value::Null, Value::Time),
        _ => Value::Null,
    }
}

/// A duration times (or divided by) a number, of its own kind.
fn scale_duration(duration: Dur, factor: Decimal, divide: bool) -> Value {
    let apply = |amount: Decimal| if divide { amount.checked_div(factor) } else { amount.checked_mul(factor) };
    match duration {
        Dur::DaysTime(n) => Decimal::try_from_i128_with_scale(n, 0)
            .ok()
            .and_then(apply)
            .and_then(|d| d.round().to_i128())
            .map_or(Value::Null, |n| Value::Duration(Dur::DaysTime(n))),
        Dur::YearsMonths(m) => apply(Decimal::from(m))
            .and_then(|d| d.trunc().to_i64())
            .map_or(Value::Null, |m| Value::Duration(Dur::YearsMonths(m))),
    }
}

/// FEEL equality: `null` equals only `null`; values of different types are not comparable.
pub(crate) fn values_equal(left: &Value, right: &Value) -> Option<bool> {
    use Value::*;
    match (left, right) {
        (Null, Null) => Some(true),
        (Null, _) | (_, Null) => Some(false),
        (Bool(a), Bool(b)) => Some(a == b),
        (Number(a), Number(b)) => Some(a == b),
        (String(a), String(b)) => Some(a == b),
        (Date(a), Date(b)) => Some(a == b),
        (DateTime(a), DateTime(b)) => a.compare(b).map(|o| o == Ordering::Equal).or(Some(false)),
        (Time(a), Time(b)) => a.since(b).map(|d| d == 0).or(Some(false)),
        (Range(a), Range(b)) => Some(
            a.comparison == b.comparison
                && a.start_included == b.start_included
                && a.end_included == b.end_included
                && values_equal(&a.start, &b.start)?
                && values_equal(&a.end, &b.end)?,
        ),
        (Duration(a), Duration(b)) => a.compare(b).map(|o| o == Ordering::Equal),
        (List(a), List(b)) => {
            if a.len() != b.len() {
                return Some(false);
            }
            for (x, y) in a.iter().zip(b) {
                if !values_equal(x, y)? {
                    return Some(false);
                }
            }
            Some(true)
        }
        (Context(a), Context(b)) => {
            if a.len() != b.len() {
                return Some(false);
            }
            for (key, x) in a {
                let Some(y) = b.get(key) else { return Some(false) };
                if !values_equal(x, y)? {
                    return Some(false);
                }
            }
            Some(true)
        }
        _ => None,
    }
}

pub(crate) fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    use Value::*;
    match (left, right) {
        (Number(a), Number(b)) => Some(a.cmp(b)),
        (String(a), String(b)) => Some(a.cmp(b)),
        (Date(a), Date(b)) => Some(a.cmp(b)),
        (DateTime(a), DateTime(b)) => a.compare(b),
        (Time(a), Time(b)) => a.since(b).map(|d| d.cmp(&0)),
        (Duration(a), Duration(b)) => a.compare(b),
        _ => None,
    }
}

fn range_contains(range: &Range, value: &Value) -> Option<bool> {
    if range.comparison == Some("!=") {
        return values_equal(value, &range.start).map(|equal| !equal);
    }
    let after_start = match compare(value, &range.start)? {
        Ordering::Greater => true,
        Ordering::Equal => range.start_included,
        Ordering::Less => false,
    };
    let before_end = match compare(value, &range.end)? {
        Ordering::Less => true,
        Ordering::Equal => range.end_included,
        Ordering::Greater => false,
    };
    Some(after_start && before_end)
}
