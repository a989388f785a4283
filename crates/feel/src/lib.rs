//! FEEL (Friendly Enough Expression Language, DMN 1.x) for Baton's expressions.
//!
//! An [`Expression`] is parsed once, when a workflow is deployed, and evaluated
//! many times against the variables visible to an element. Evaluation is pure
//! and bounded: it reads no clock (`now()` and `today()` give the time the
//! caller passes, the engine's step; `uuid()` and `random number()` derive from
//! a seed it passes), does no I/O, and stops with
//! [`EvalError`] when it has spent its fuel or would build a value larger than
//! [`Limits`] allow, so a hostile expression cannot hang or exhaust the engine.
//!
//! FEEL's own semantics are kept where they matter to workflows: unknown names
//! and type mismatches evaluate to `null`, `and`/`or` use three-valued logic,
//! numbers are decimals (`0.1 + 0.2 = 0.3`), lists are 1-indexed.
//!
//! This crate exists because no Rust FEEL crate can be used in a pure core; see
//! `docs/design.md` ("Expressions").

mod builtins;
mod eval;
mod lexer;
mod parser;
mod ranges;
pub mod temporal;
mod value;

use std::fmt;
use std::sync::Arc;

pub use builtins::parse_timestamp;
pub use value::Value;

/// Bounds applied to parsing and evaluation.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest accepted expression source, in bytes.
    pub max_source_bytes: usize,
    /// Deepest accepted nesting of the syntax tree.
    pub max_depth: usize,
    /// Evaluation steps (nodes visited, iterations run) before giving up.
    pub fuel: u64,
    /// Largest list or context an evaluation may build.
    pub max_collection_len: usize,
    /// Longest string an evaluation may build, in bytes.
    pub max_string_bytes: usize,
    /// Bytes of values an evaluation may copy from its variables or build,
    /// all told (about what the values take in JSON): a loop that copies a
    /// large variable on every turn stops here, long before memory runs out.
    pub max_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_source_bytes: 16 * 1024,
        max_depth: 64,
        fuel: 200_000,
        max_collection_len: 100_000,
        max_string_bytes: 1024 * 1024,
        max_bytes: 64 * 1024 * 1024,
    };
}

/// The deepest nesting of lists and contexts a result may have to be stored
/// as a variable: the same bound the API puts on variables it is sent, so a
/// variable an expression builds can always be read back.
pub const MAX_JSON_DEPTH: usize = 64;

/// A parsed FEEL expression. Cheap to clone.
#[derive(Clone)]
pub struct Expression {
    source: Arc<str>,
    ast: Arc<parser::Node>,
    names: Arc<[String]>,
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expression({:?})", &*self.source)
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Why an expression could not be parsed. `offset` is a byte offset into the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Why an evaluation stopped without a value. Type errors are not here: FEEL
/// turns them into `null`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// The expression ran longer than [`Limits::fuel`] allows.
    OutOfFuel,
    /// The expression built a list, context or string over the limits.
    TooLarge(String),
    /// The value cannot be turned into JSON (a range, a function).
    NotJson(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::OutOfFuel => f.write_str("the expression ran past its evaluation budget"),
            EvalError::TooLarge(what) => write!(f, "the expression built a value that is too large: {what}"),
            EvalError::NotJson(what) => write!(f, "the result cannot be stored as a variable: {what}"),
        }
    }
}

impl std::error::Error for EvalError {}

/// Where an expression finds the values of the names it uses.
pub trait Variables {
    fn get(&self, name: &str) -> Option<&serde_json::Value>;

    /// The FEEL value of a name: by default its JSON, read as FEEL. A scope
    /// that holds FEEL values (dates, durations: a DMN evaluation's) gives them as they are.
    fn get_value(&self, name: &str) -> Option<Value> {
        self.get(name).map(Value::from_json)
    }

    /// Calls a function the scope defines (a DMN business knowledge model),
    /// with its arguments evaluated; `None` when the scope has no such function.
    fn call(&self, _name: &str, _arguments: Vec<Value>) -> Option<Result<Value, EvalError>> {
        None
    }

    /// A type the scope defines (a DMN item definition), as what it is made
    /// of: `list<number>`, `context<a: string, b: t_other>`, a built-in type,
    /// or `Any`. `None`: no such type.
    fn type_definition(&self, _name: &str) -> Option<String> {
        None
    }

    /// As [`Variables::call`], with the arguments by parameter name.
    fn call_named(&self, _name: &str, _arguments: Vec<(String, Value)>) -> Option<Result<Value, EvalError>> {
        None
    }

    /// The time `now()` and `today()` give (milliseconds since 1970, UTC): the
    /// step's, never the wall clock's. `None`: they are null.
    fn clock(&self) -> Option<i64> {
        None
    }

    /// Where `uuid()` and `random number()` start, so that a replay gives the
    /// same values. `None`: they are null.
    fn seed(&self) -> Option<u64> {
        None
    }
}

impl Variables for serde_json::Map<String, serde_json::Value> {
    fn get(&self, name: &str) -> Option<&serde_json::Value> {
        serde_json::Map::get(self, name)
    }
}

impl Variables for std::collections::BTreeMap<String, serde_json::Value> {
    fn get(&self, name: &str) -> Option<&serde_json::Value> {
        std::collections::BTreeMap::get(self, name)
    }
}

/// No variables at all.
pub struct NoVariables;

impl Variables for NoVariables {
    fn get(&self, _name: &str) -> Option<&serde_json::Value> {
        None
    }
}

impl Expression {
    /// Parses FEEL source (without a leading `=`).
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        Self::parse_with(source, &Limits::DEFAULT)
    }

    pub fn parse_with(source: &str, limits: &Limits) -> Result<Expression, ParseError> {
        if source.len() > limits.max_source_bytes {
            return Err(ParseError {
                message: format!(
                    "the expression is {} bytes long; the limit is {}",
                    source.len(),
                    limits.max_source_bytes
                ),
                offset: 0,
            });
        }
        let tokens = lexer::tokenize(source)?;
        let ast = parser::parse(&tokens, source.len(), limits.max_depth)?;
        ast.check_calls().map_err(|message| ParseError { message, offset: 0 })?;
        let mut names = Vec::new();
        ast.free_names(&mut names);
        names.sort();
        names.dedup();
        Ok(Expression { source: source.into(), ast: Arc::new(ast), names: names.into() })
    }

    /// Parses FEEL source in a scope whose `names` may have spaces or other
    /// characters DMN allows (`Applicant Age`), and whose `functions` may be
    /// called besides the built-ins.
    pub fn parse_in_scope(source: &str, names: &[String], functions: &[String]) -> Result<Expression, ParseError> {
        let limits = Limits::DEFAULT;
        let tokens = scoped_tokens(source, names, functions, &limits)?;
        let ast = parser::parse(&tokens, source.len(), limits.max_depth)?;
        // A name in scope may hold a function (a decision whose logic is one): calling it is checked when it runs.
        let callable: Vec<String> = names.iter().chain(functions).cloned().collect();
        ast.check_calls_besides(&callable).map_err(|message| ParseError { message, offset: 0 })?;
        let mut found = Vec::new();
        ast.free_names(&mut found);
        found.sort();
        found.dedup();
        Ok(Expression { source: source.into(), ast: Arc::new(ast), names: found.into() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// A function value whose body is this expression (a DMN function definition).
    pub fn function(&self, parameters: Vec<String>) -> Value {
        self.closure(parameters, Vec::new())
    }

    /// A function value whose body is this expression and that sees `captured` (the names around its definition).
    pub fn closure(&self, parameters: Vec<String>, captured: Vec<(String, Value)>) -> Value {
        Value::Function(Arc::new(value::Function { parameters, body: (*self.ast).clone(), captured }))
    }

    /// The variable names the expression reads (sorted, without duplicates).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// What the expression asks an AI agent for: one `{name, description,
    /// type, schema, options}` per `fromAi(value, ...)` call in it, the name
    /// being the last name of the value's path (`toolCall.orderId` asks for
    /// `orderId`). Literal arguments are kept; others are `null`.
    pub fn ai_parameters(&self) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        self.ast.visit(&mut |node| {
            let parser::Node::Call(function, arguments) = node else { return };
            if function != "fromAi" {
                return;
            }
            let name = match arguments.first() {
                Some(parser::Node::Path(_, name) | parser::Node::Name(name)) => name.clone(),
                _ => return,
            };
            let literal = |index: usize| {
                arguments
                    .get(index)
                    .and_then(|argument| eval::Evaluator::new(&NoVariables, &Limits::DEFAULT).eval(argument).ok())
                    .and_then(|value| value.to_json().ok())
                    .unwrap_or(serde_json::Value::Null)
            };
            found.push(serde_json::json!({
                "name": name,
                "description": literal(1),
                "type": literal(2),
                "schema": literal(3),
                "options": literal(4),
            }));
        });
        found
    }

    /// Evaluates to a FEEL value.
    pub fn evaluate_value(&self, variables: &dyn Variables) -> Result<Value, EvalError> {
        self.evaluate_value_with(variables, &Limits::DEFAULT)
    }

    pub fn evaluate_value_with(&self, variables: &dyn Variables, limits: &Limits) -> Result<Value, EvalError> {
        eval::Evaluator::new(variables, limits).eval(&self.ast)
    }

    /// Evaluates to JSON, the form variables are stored in.
    pub fn evaluate(&self, variables: &dyn Variables) -> Result<serde_json::Value, EvalError> {
        self.evaluate_value(variables)?.to_json()
    }
}

fn scoped_tokens(source: &str, names: &[String], functions: &[String], limits: &Limits) -> Result<Vec<lexer::Token>, ParseError> {
    if source.len() > limits.max_source_bytes {
        return Err(ParseError { message: format!("the expression is {} bytes long; the limit is {}", source.len(), limits.max_source_bytes), offset: 0 });
    }
    let known: Vec<String> = names.iter().chain(functions).filter(|n| n.contains(|c: char| !c.is_alphanumeric() && c != '_')).cloned().collect();
    lexer::tokenize_in_scope(source, &known)
}

/// A decision table's input entry: `-` (anything), positive unary tests
/// separated by commas (`< 10`, `[1..5]`, `"gold", "silver"`, `? > 3`), or
/// `not(...)` of them.
#[derive(Clone, Debug)]
pub struct UnaryTests {
    source: Arc<str>,
    negated: bool,
    /// Empty for `-`.
    tests: Arc<[parser::Node]>,
}

impl UnaryTests {
    pub fn parse_in_scope(source: &str, names: &[String], functions: &[String]) -> Result<UnaryTests, ParseError> {
        let text = source.trim();
        if text == "-" || text.is_empty() {
            return Ok(UnaryTests { source: source.into(), negated: false, tests: Arc::new([]) });
        }
        let (negated, inner) = match text.strip_prefix("not").map(str::trim_start) {
            Some(rest) if rest.starts_with('(') && rest.ends_with(')') => (true, &rest[1..rest.len() - 1]),
            _ => (false, text),
        };
        let limits = Limits::DEFAULT;
        let tokens = scoped_tokens(inner, names, functions, &limits)?;
        let tests = parser::parse_unary_tests(&tokens, inner.len(), limits.max_depth)?;
        for test in &tests {
            test.check_calls_besides(functions).map_err(|message| ParseError { message, offset: 0 })?;
        }
        Ok(UnaryTests { source: source.into(), negated, tests: tests.into() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `input` passes: any test passing (none for `not(...)`); `-` passes everything.
    pub fn matches(&self, input: &Value, variables: &dyn Variables) -> Result<bool, EvalError> {
        if self.tests.is_empty() {
            return Ok(true);
        }
        let mut evaluator = eval::Evaluator::new(variables, &Limits::DEFAULT);
        let mut any = false;
        for test in self.tests.iter() {
            if evaluator.unary_test(input, test)? {
                any = true;
                break;
            }
        }
        Ok(any != self.negated)
    }
}

#[cfg(test)]
mod tests;
