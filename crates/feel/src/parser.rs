//! A precedence-climbing parser for the FEEL expression grammar.

use rust_decimal::Decimal;

use crate::lexer::{Tok, Token};
use crate::ParseError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A call's arguments by parameter name, in the order written.
type NamedArguments = Vec<(String, Node)>;

/// How a range was written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RangeForm {
    /// `[1..10)`.
    Bracketed,
    /// `1..10` in a `for`: it may walk down.
    Bare,
    /// `< 10`, `= 10`, `!= 10`.
    Comparison(&'static str),
}

#[derive(Clone, Debug, Default)]
pub(crate) enum Node {
    /// Also what a named argument left out stands for.
    #[default]
    Null,
    Bool(bool),
    Number(Decimal),
    Str(String),
    Name(String),
    List(Vec<Node>),
    Context(Vec<(String, Node)>),
    Range { start: Box<Node>, start_included: bool, end: Box<Node>, end_included: bool, form: RangeForm },
    Neg(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Between(Box<Node>, Box<Node>, Box<Node>),
    /// `value in test`: the test is a value, a list, a range or a [`Node::UnaryTest`].
    In(Box<Node>, Box<Node>),
    /// `< 5` on the right of `in`.
    UnaryTest(BinOp, Box<Node>),
    /// `value in (test, test, ...)`: any of the positive unary tests passes.
    InAny(Box<Node>, Vec<Node>),
    /// `value instance of type`.
    InstanceOf(Box<Node>, String),
    /// `function(a, b) body`.
    Function(Vec<String>, Box<Node>),
    /// Calling what an expression gives (`(function(x) x + 1)(2)`, `f.g(1)`).
    Invoke(Box<Node>, Vec<Node>),
    /// Calling a function that is not a built-in with named arguments (a business knowledge model, a function value).
    CallNamed(String, Vec<(String, Node)>),
    /// Calling what an expression gives with named arguments.
    InvokeNamed(Box<Node>, Vec<(String, Node)>),
    If(Box<Node>, Box<Node>, Box<Node>),
    /// Iteration contexts, body, and whether the body reads `partial`.
    For(Vec<(String, Node)>, Box<Node>, bool),
    Quantified { every: bool, contexts: Vec<(String, Node)>, condition: Box<Node> },
    Path(Box<Node>, String),
    Filter(Box<Node>, Box<Node>),
    Call(String, Vec<Node>),
}

impl Node {
    /// Checks every function call against the built-ins, so an unknown
    /// function or a wrong argument count is reported at deploy time.
    pub(crate) fn check_calls(&self) -> Result<(), String> {
        self.check_calls_besides(&[])
    }

    /// As [`Node::check_calls`], with `functions` of the scope callable too.
    pub(crate) fn check_calls_besides(&self, functions: &[String]) -> Result<(), String> {
        // A name the expression binds (a context entry, a parameter, an iteration
        // variable) may hold a function; calling it is checked when it runs.
        let mut bound: Vec<String> = Vec::new();
        self.visit(&mut |node| match node {
            Node::Context(entries) => bound.extend(entries.iter().map(|(k, _)| k.clone())),
            Node::Function(parameters, _) => bound.extend(parameters.iter().cloned()),
            Node::For(contexts, ..) | Node::Quantified { contexts, .. } => bound.extend(contexts.iter().map(|(n, _)| n.clone())),
            _ => {}
        });
        let mut result = Ok(());
        self.visit(&mut |node| {
            match node {
                Node::Call(name, arguments) if result.is_ok() && !functions.contains(name) && !bound.contains(name) => {
                    result = crate::builtins::check(name, arguments.len());
                }
                Node::CallNamed(name, _) if result.is_ok() && !functions.contains(name) && !bound.contains(name) => {
                    result = Err(format!("unknown function '{name}'"));
                }
                _ => {}
            }
        });
        result
    }

    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        match self {
            Node::Null | Node::Bool(_) | Node::Number(_) | Node::Str(_) | Node::Name(_) => {}
            Node::List(items) | Node::Call(_, items) => items.iter().for_each(|n| n.visit(f)),
            Node::Context(entries) => entries.iter().for_each(|(_, n)| n.visit(f)),
            Node::For(contexts, body, _) | Node::Quantified { contexts, condition: body, .. } => {
                contexts.iter().for_each(|(_, n)| n.visit(f));
                body.visit(f);
            }
            Node::Range { start: a, end: b, .. }
            | Node::Binary(_, a, b)
            | Node::And(a, b)
            | Node::Or(a, b)
            | Node::In(a, b)
            | Node::Filter(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Node::Neg(n) | Node::UnaryTest(_, n) | Node::Path(n, _) | Node::InstanceOf(n, _) | Node::Function(_, n) => n.visit(f),
            Node::Invoke(n, arguments) => {
                n.visit(f);
                arguments.iter().for_each(|a| a.visit(f));
            }
            Node::CallNamed(_, arguments) => arguments.iter().for_each(|(_, a)| a.visit(f)),
            Node::InvokeNamed(n, arguments) => {
                n.visit(f);
                arguments.iter().for_each(|(_, a)| a.visit(f));
            }
            Node::InAny(n, tests) => {
                n.visit(f);
                tests.iter().for_each(|t| t.visit(f));
            }
            Node::Between(a, b, c) | Node::If(a, b, c) => {
                a.visit(f);
                b.visit(f);
                c.visit(f);
            }
        }
    }

    /// Collects the names read from outside the expression.
    pub(crate) fn free_names(&self, out: &mut Vec<String>) {
        self.collect_names(&mut Vec::new(), out);
    }

    fn collect_names(&self, bound: &mut Vec<String>, out: &mut Vec<String>) {
        match self {
            Node::Null | Node::Bool(_) | Node::Number(_) | Node::Str(_) => {}
            Node::Name(name) => {
                if !bound.contains(name) {
                    out.push(name.clone());
                }
            }
            Node::List(items) | Node::Call(_, items) => items.iter().for_each(|n| n.collect_names(bound, out)),
            Node::Context(entries) => {
                let depth = bound.len();
                for (key, value) in entries {
                    value.collect_names(bound, out);
                    bound.push(key.clone());
                }
                bound.truncate(depth);
            }
            Node::Range { start, end, .. } => {
                start.collect_names(bound, out);
                end.collect_names(bound, out);
            }
            Node::Neg(n) | Node::UnaryTest(_, n) | Node::InstanceOf(n, _) => n.collect_names(bound, out),
            Node::Function(parameters, body) => {
                let depth = bound.len();
                bound.extend(parameters.iter().cloned());
                body.collect_names(bound, out);
                bound.truncate(depth);
            }
            Node::Invoke(n, arguments) => {
                n.collect_names(bound, out);
                arguments.iter().for_each(|a| a.collect_names(bound, out));
            }
            Node::CallNamed(_, arguments) => arguments.iter().for_each(|(_, a)| a.collect_names(bound, out)),
            Node::InvokeNamed(n, arguments) => {
                n.collect_names(bound, out);
                arguments.iter().for_each(|(_, a)| a.collect_names(bound, out));
            }
            Node::InAny(n, tests) => {
                n.collect_names(bound, out);
                tests.iter().for_each(|t| t.collect_names(bound, out));
            }
            Node::Path(n, _) => n.collect_names(bound, out),
            Node::Binary(_, a, b) | Node::And(a, b) | Node::Or(a, b) | Node::In(a, b) => {
                a.collect_names(bound, out);
                b.collect_names(bound, out);
            }
            Node::Filter(list, condition) => {
                list.collect_names(bound, out);
                bound.push("item".into());
                condition.collect_names(bound, out);
                bound.pop();
            }
            Node::Between(a, b, c) | Node::If(a, b, c) => {
                a.collect_names(bound, out);
                b.collect_names(bound, out);
                c.collect_names(bound, out);
            }
            Node::For(contexts, body, _) | Node::Quantified { contexts, condition: body, .. } => {
                let depth = bound.len();
                for (name, source) in contexts {
                    source.collect_names(bound, out);
                    bound.push(name.clone());
                }
                if matches!(self, Node::For(..)) {
                    bound.push("partial".into());
                }
                body.collect_names(bound, out);
                bound.truncate(depth);
            }
        }
    }
}

pub(crate) fn parse(tokens: &[Token], source_len: usize, max_depth: usize) -> Result<Node, ParseError> {
    if tokens.is_empty() {
        return Err(ParseError { message: "the expression is empty".into(), offset: 0 });
    }
    let mut parser = Parser { tokens, pos: 0, source_len, depth: 0, max_depth, copied: 0 };
    let node = parser.expression()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(ParseError { message: format!("unexpected {} after the end of the expression", describe(&token.tok)), offset: token.offset });
    }
    Ok(node)
}

/// Positive unary tests separated by commas (a decision table's input entry):
/// each a comparison with an endpoint (`< 10`), or an expression (a value, a
/// range, a list, or a condition on `?`).
pub(crate) fn parse_unary_tests(tokens: &[Token], source_len: usize, max_depth: usize) -> Result<Vec<Node>, ParseError> {
    let mut parser = Parser { tokens, pos: 0, source_len, depth: 0, max_depth, copied: 0 };
    let mut tests = Vec::new();
    loop {
        let test = if let Some(op) = parser.comparison_op() {
            parser.pos += 1;
            Node::UnaryTest(op, Box::new(parser.additive()?))
        } else {
            parser.expression()?
        };
        tests.push(test);
        if !parser.eat_sym(",") {
            break;
        }
    }
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(ParseError { message: format!("unexpected {} after the unary tests", describe(&token.tok)), offset: token.offset });
    }
    Ok(tests)
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Number(n) => format!("number {n}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Name(n) | Tok::QuotedName(n) => format!("'{n}'"),
        Tok::Sym(s) => format!("'{s}'"),
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    source_len: usize,
    depth: usize,
    max_depth: usize,
    /// Nodes copied so far: `= x` holds `x` as both ends of its range.
    copied: usize,
}

/// The most nodes a parse may copy: as many as the longest source has
/// tokens. Without it `= = = … x` doubles its tree at every `=`.
const MAX_COPIED_NODES: usize = 16 * 1024;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.source_len, |t| t.offset)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError { message: message.into(), offset: self.offset() })
    }

    fn is_sym(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(s)) if *s == symbol)
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(n)) if n == keyword)
    }

    fn eat_sym(&mut self, symbol: &str) -> bool {
        let found = self.is_sym(symbol);
        if found {
            self.pos += 1;
        }
        found
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_sym(&mut self, symbol: &str) -> Result<(), ParseError> {
        if self.eat_sym(symbol) {
            return Ok(());
        }
        match self.peek() {
            Some(tok) => self.error(format!("expected '{symbol}' but found {}", describe(tok))),
            None => self.error(format!("expected '{symbol}' but the expression ended")),
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), ParseError> {
        if self.eat_keyword(keyword) {
            return Ok(());
        }
        match self.peek() {
            Some(tok) => self.error(format!("expected '{keyword}' but found {}", describe(tok))),
            None => self.error(format!("expected '{keyword}' but the expression ended")),
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Name(n)) if !is_reserved(&n) => {
                self.pos += 1;
                Ok(n)
            }
            Some(Tok::QuotedName(n)) => {
                self.pos += 1;
                Ok(n)
            }
            Some(tok) => self.error(format!("expected a name but found {}", describe(&tok))),
            None => self.error("expected a name but the expression ended"),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return self.error(format!("the expression is nested more than {} levels deep", self.max_depth));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Node, ParseError> {
        self.enter()?;
        let node = if self.eat_keyword("if") {
            let condition = self.expression()?;
            self.expect_keyword("then")?;
            let then = self.expression()?;
            self.expect_keyword("else")?;
            let otherwise = self.expression()?;
            Node::If(Box::new(condition), Box::new(then), Box::new(otherwise))
        } else if self.eat_keyword("for") {
            let contexts = self.iteration_contexts()?;
            self.expect_keyword("return")?;
            let body = self.expression()?;
            let mut reads_partial = false;
            body.visit(&mut |node| reads_partial |= matches!(node, Node::Name(n) if n == "partial"));
            Node::For(contexts, Box::new(body), reads_partial)
        } else if self.is_keyword("some") || self.is_keyword("every") {
            let every = self.is_keyword("every");
            self.pos += 1;
            let contexts = self.iteration_contexts()?;
            self.expect_keyword("satisfies")?;
            Node::Quantified { every, contexts, condition: Box::new(self.expression()?) }
        } else {
            self.disjunction()?
        };
        self.depth -= 1;
        Ok(node)
    }

    fn iteration_contexts(&mut self) -> Result<Vec<(String, Node)>, ParseError> {
        let mut contexts = Vec::new();
        loop {
            let name = self.name()?;
            self.expect_keyword("in")?;
            let source = self.disjunction()?;
            let source = if self.eat_sym("..") {
                let end = self.disjunction()?;
                Node::Range { start: Box::new(source), start_included: true, end: Box::new(end), end_included: true, form: RangeForm::Bare }
            } else {
                source
            };
            contexts.push((name, source));
            if !self.eat_sym(",") {
                return Ok(contexts);
            }
        }
    }

    fn disjunction(&mut self) -> Result<Node, ParseError> {
        let mut left = self.conjunction()?;
        while self.eat_keyword("or") {
            left = Node::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Node, ParseError> {
        let mut left = self.comparison()?;
        while self.eat_keyword("and") {
            left = Node::And(Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison_op(&self) -> Option<BinOp> {
        match self.peek() {
            Some(Tok::Sym("=")) => Some(BinOp::Eq),
            Some(Tok::Sym("!=")) => Some(BinOp::Ne),
            Some(Tok::Sym("<")) => Some(BinOp::Lt),
            Some(Tok::Sym("<=")) => Some(BinOp::Le),
            Some(Tok::Sym(">")) => Some(BinOp::Gt),
            Some(Tok::Sym(">=")) => Some(BinOp::Ge),
            _ => None,
        }
    }

    fn comparison(&mut self) -> Result<Node, ParseError> {
        let left = self.additive()?;
        if let Some(op) = self.comparison_op() {
            self.pos += 1;
            return Ok(Node::Binary(op, Box::new(left), Box::new(self.additive()?)));
        }
        if self.eat_keyword("between") {
            let low = self.additive()?;
            self.expect_keyword("and")?;
            let high = self.additive()?;
            return Ok(Node::Between(Box::new(left), Box::new(low), Box::new(high)));
        }
        if self.eat_keyword("in") {
            // `in (t1, t2, ...)`: a list of positive unary tests; else one test (a range, a list, a value, `< 5`).
            if self.is_sym("(") {
                let save = self.pos;
                self.pos += 1;
                if let Ok(tests) = self.unary_test_list() {
                    if self.eat_sym(")") {
                        return Ok(Node::InAny(Box::new(left), tests));
                    }
                }
                self.pos = save;
            }
            let test = if let Some(op) = self.comparison_op() {
                self.pos += 1;
                Node::UnaryTest(op, Box::new(self.additive()?))
            } else {
                self.additive()?
            };
            return Ok(Node::In(Box::new(left), Box::new(test)));
        }
        if self.eat_keyword("instance") {
            self.expect_keyword("of")?;
            return Ok(Node::InstanceOf(Box::new(left), self.type_name()?));
        }
        Ok(left)
    }

    /// Positive unary tests separated by commas, up to (not including) what ends them.
    fn unary_test_list(&mut self) -> Result<Vec<Node>, ParseError> {
        let mut tests = Vec::new();
        loop {
            let test = if let Some(op) = self.comparison_op() {
                self.pos += 1;
                Node::UnaryTest(op, Box::new(self.additive()?))
            } else {
                self.expression()?
            };
            tests.push(test);
            if !self.eat_sym(",") {
                return Ok(tests);
            }
        }
    }

    /// A type as `instance of` names it: `number`, `date and time`,
    /// `list<number>`, `context<a: number>`, `function<number>->number`.
    fn type_name(&mut self) -> Result<String, ParseError> {
        let mut words = Vec::new();
        while let Some(Tok::Name(word)) = self.peek() {
            words.push(word.clone());
            self.pos += 1;
        }
        if words.is_empty() {
            return self.error("'instance of' needs a type");
        }
        let mut name = words.join(" ");
        if self.eat_sym("<") {
            let mut depth = 1;
            name.push('<');
            while depth > 0 {
                let Some(token) = self.tokens.get(self.pos) else { return self.error("a type's '<' is not closed") };
                self.pos += 1;
                match &token.tok {
                    Tok::Sym("<") => depth += 1,
                    Tok::Sym(">") => depth -= 1,
                    _ => {}
                }
                if depth > 0 {
                    name.push_str(&match &token.tok {
                        Tok::Name(n) | Tok::QuotedName(n) => format!("{n} "),
                        Tok::Sym(s) => (*s).to_string(),
                        other => format!("{other:?}"),
                    });
                }
            }
            name = format!("{}>", name.trim_end());
            // A function type's result: `function<number>->number`.
            if self.is_sym("-") && matches!(self.tokens.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Sym(">"))) {
                self.pos += 2;
                name = format!("{name}->{}", self.type_name()?);
            }
        }
        Ok(name)
    }

    fn additive(&mut self) -> Result<Node, ParseError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.eat_sym("+") {
                BinOp::Add
            } else if self.eat_sym("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            left = Node::Binary(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Node, ParseError> {
        let mut left = self.exponent()?;
        loop {
            let op = if self.eat_sym("*") {
                BinOp::Mul
            } else if self.eat_sym("/") {
                BinOp::Div
            } else {
                return Ok(left);
            };
            left = Node::Binary(op, Box::new(left), Box::new(self.exponent()?));
        }
    }

    fn exponent(&mut self) -> Result<Node, ParseError> {
        let mut left = self.unary()?;
        while self.eat_sym("**") {
            left = Node::Binary(BinOp::Pow, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.eat_sym("-") {
            self.enter()?;
            let operand = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Neg(Box::new(operand)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Node, ParseError> {
        let mut node = self.primary()?;
        loop {
            if self.eat_sym(".") {
                let mut key = self.name()?;
                // The properties whose names have two words: `time offset`, `start included`, `end included`.
                if let Some(Tok::Name(next)) = self.peek() {
                    if matches!((key.as_str(), next.as_str()), ("time", "offset") | ("start" | "end", "included")) {
                        key = format!("{key} {next}");
                        self.pos += 1;
                    }
                }
                node = Node::Path(Box::new(node), key);
            } else if self.is_sym("[") && !self.closes_range() {
                self.pos += 1;
                let condition = self.expression()?;
                self.expect_sym("]")?;
                node = Node::Filter(Box::new(node), Box::new(condition));
            } else if self.is_sym("(") {
                let function = match node {
                    Node::Name(function) => function,
                    other => {
                        self.pos += 1;
                        let (arguments, named) = self.call_arguments()?;
                        node = if named.is_empty() { Node::Invoke(Box::new(other), arguments) } else { Node::InvokeNamed(Box::new(other), named) };
                        continue;
                    }
                };
                self.pos += 1;
                let start = self.offset();
                let (mut arguments, named) = self.call_arguments()?;
                if !named.is_empty() {
                    // A built-in's named arguments go in its order; another function's wait for it to be known.
                    if crate::builtins::check(&function, named.len()).is_err() && !crate::builtins::has_parameters(&function) {
                        node = Node::CallNamed(function, named);
                        continue;
                    }
                    arguments = crate::builtins::order_named(&function, named)
                        .map_err(|message| ParseError { message, offset: start })?;
                }
                node = Node::Call(function, arguments);
            } else {
                return Ok(node);
            }
        }
    }

    /// A call's arguments after its `(`, through its `)`: positional ones, or
    /// named ones (`name: value`, a name of several words allowed: `start position`).
    fn call_arguments(&mut self) -> Result<(Vec<Node>, NamedArguments), ParseError> {
        let mut arguments = Vec::new();
        let mut named: Vec<(String, Node)> = Vec::new();
        if self.eat_sym(")") {
            return Ok((arguments, named));
        }
        loop {
            let mut words = 0;
            while matches!(self.tokens.get(self.pos + words).map(|t| &t.tok), Some(Tok::Name(_) | Tok::QuotedName(_))) {
                words += 1;
            }
            if words > 0 && matches!(self.tokens.get(self.pos + words).map(|t| &t.tok), Some(Tok::Sym(":"))) {
                let name: Vec<String> = self.tokens[self.pos..self.pos + words]
                    .iter()
                    .map(|t| match &t.tok {
                        Tok::Name(n) | Tok::QuotedName(n) => n.clone(),
                        _ => String::new(),
                    })
                    .collect();
                self.pos += words + 1;
                named.push((name.join(" "), self.expression()?));
            } else {
                if !named.is_empty() {
                    return self.error("positional arguments cannot follow named ones");
                }
                arguments.push(self.expression()?);
            }
            if self.eat_sym(")") {
                return Ok((arguments, named));
            }
            self.expect_sym(",")?;
        }
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let Some(tok) = self.peek().cloned() else {
            return self.error("the expression ended where a value was expected");
        };
        // A comparison with one endpoint is a range (FEEL 1.4): `< 10` is `(null..10)`, `= 10` is `[10..10]`.
        if let Some(op) = self.comparison_op() {
            self.pos += 1;
            let endpoint = Box::new(self.additive()?);
            let none = Box::new(Node::Null);
            let form = RangeForm::Comparison(match op {
                BinOp::Lt => "<",
                BinOp::Le => "<=",
                BinOp::Gt => ">",
                BinOp::Ge => ">=",
                BinOp::Ne => "!=",
                _ => "=",
            });
            return Ok(match op {
                BinOp::Lt | BinOp::Le => Node::Range { start: none, start_included: false, end: endpoint, end_included: op == BinOp::Le, form },
                BinOp::Gt | BinOp::Ge => Node::Range { start: endpoint, start_included: op == BinOp::Ge, end: none, end_included: false, form },
                _ => {
                    let mut nodes = 0;
                    endpoint.visit(&mut |_| nodes += 1);
                    self.copied += nodes;
                    if self.copied > MAX_COPIED_NODES {
                        return self.error("comparisons nested in comparisons (`= = …`) make this expression too large");
                    }
                    Node::Range { start: endpoint.clone(), start_included: true, end: endpoint, end_included: true, form }
                }
            });
        }
        self.enter()?;
        self.pos += 1;
        let node = match tok {
            Tok::Number(n) => Node::Number(n),
            Tok::Str(s) => Node::Str(s),
            Tok::QuotedName(n) => Node::Name(n),
            Tok::Name(n) => match n.as_str() {
                "true" => Node::Bool(true),
                "false" => Node::Bool(false),
                "null" => Node::Null,
                "@" => match self.peek().cloned() {
                    Some(Tok::Str(literal)) => {
                        self.pos += 1;
                        Node::Call("@".into(), vec![Node::Str(literal)])
                    }
                    _ => return self.error("'@' must be followed by a string: @\"2026-01-01\""),
                },
                "function" => {
                    self.expect_sym("(")?;
                    let mut parameters = Vec::new();
                    if !self.eat_sym(")") {
                        loop {
                            parameters.push(self.name()?);
                            // A parameter's type (`a: number`) is not checked.
                            if self.eat_sym(":") {
                                self.type_name()?;
                            }
                            if self.eat_sym(")") {
                                break;
                            }
                            self.expect_sym(",")?;
                        }
                    }
                    let body = self.expression()?;
                    self.depth -= 1;
                    return Ok(Node::Function(parameters, Box::new(body)));
                }
                "if" | "for" | "some" | "every" => {
                    self.pos -= 1;
                    let node = self.expression()?;
                    self.depth -= 1;
                    return Ok(node);
                }
                // `and(list)` and `or(list)`: FEEL-Scala's functions over a list of booleans.
                "and" | "or" if self.is_sym("(") => Node::Name(n),
                reserved if is_reserved(reserved) => {
                    self.pos -= 1;
                    return self.error(format!("unexpected keyword '{reserved}'"));
                }
                _ => Node::Name(n),
            },
            Tok::Sym("(") => {
                let first = self.expression()?;
                if self.eat_sym("..") {
                    self.range_rest(first, false)?
                } else {
                    self.expect_sym(")")?;
                    first
                }
            }
            Tok::Sym("]") => {
                let first = self.expression()?;
                self.expect_sym("..")?;
                self.range_rest(first, false)?
            }
            Tok::Sym("[") => {
                if self.eat_sym("]") {
                    Node::List(Vec::new())
                } else {
                    let first = self.expression()?;
                    if self.eat_sym("..") {
                        self.range_rest(first, true)?
                    } else {
                        let mut items = vec![first];
                        while self.eat_sym(",") {
                            items.push(self.expression()?);
                        }
                        self.expect_sym("]")?;
                        Node::List(items)
                    }
                }
            }
            Tok::Sym("{") => {
                let mut entries = Vec::new();
                if !self.eat_sym("}") {
                    loop {
                        let key = match self.peek().cloned() {
                            Some(Tok::Str(s)) => {
                                self.pos += 1;
                                s
                            }
                            _ => self.context_key()?,
                        };
                        self.expect_sym(":")?;
                        entries.push((key, self.expression()?));
                        if self.eat_sym("}") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                }
                Node::Context(entries)
            }
            other => {
                self.pos -= 1;
                return self.error(format!("unexpected {}", describe(&other)));
            }
        };
        self.depth -= 1;
        Ok(node)
    }

    /// A context key written as a name, which may run over several words and
    /// FEEL's additional name symbols (`foo bar`, `foo+bar`, `a.b`): everything up to the `:`.
    fn context_key(&mut self) -> Result<String, ParseError> {
        let mut key = self.name()?;
        loop {
            match self.peek().cloned() {
                Some(Tok::Name(word) | Tok::QuotedName(word)) => {
                    if !key.ends_with(['+', '-', '*', '/', '.']) {
                        key.push(' ');
                    }
                    key.push_str(&word);
                }
                Some(Tok::Sym(symbol @ ("+" | "-" | "*" | "/" | "."))) => key.push_str(symbol),
                _ => return Ok(key),
            }
            self.pos += 1;
        }
    }

    /// Whether the `[` here ends a range (`[1..10[`) rather than filtering
    /// what comes before it: nothing that could start a condition follows it.
    fn closes_range(&self) -> bool {
        match self.tokens.get(self.pos + 1).map(|t| &t.tok) {
            None => true,
            Some(Tok::Sym(s)) => matches!(*s, ")" | "]" | "," | "}" | "=" | "!=" | "<" | ">" | "<=" | ">=" | ":" | ".." | "."),
            Some(Tok::Name(n)) => matches!(n.as_str(), "and" | "or" | "then" | "else" | "return" | "satisfies" | "in"),
            _ => false,
        }
    }

    fn range_rest(&mut self, start: Node, start_included: bool) -> Result<Node, ParseError> {
        let end = self.expression()?;
        let end_included = if self.eat_sym("]") {
            true
        } else if self.eat_sym(")") || self.eat_sym("[") {
            false
        } else {
            return self.error("a range must end with ']', ')' or '['");
        };
        Ok(Node::Range { start: Box::new(start), start_included, end: Box::new(end), end_included, form: RangeForm::Bracketed })
    }
}

fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "and" | "or" | "if" | "then" | "else" | "for" | "in" | "return" | "some" | "every" | "satisfies" | "between" | "instance" | "function"
    )
}
