//! The decision model: a file's decisions, input data, business knowledge
//! models and decision services, each expression parsed.

use std::collections::BTreeMap;

use feel::{Expression, UnaryTests};

#[derive(Clone, Debug, Default)]
pub struct Definitions {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub decisions: Vec<Decision>,
    pub inputs: Vec<InputData>,
    pub bkms: Vec<Bkm>,
    pub services: Vec<DecisionService>,
    /// Item definitions (the file's own types), by name.
    pub types: BTreeMap<String, ItemType>,
    pub(crate) by_id: BTreeMap<String, Element>,
    pub(crate) by_name: BTreeMap<String, Element>,
}

/// An item definition: a base type, a list of one, or a context of components.
#[derive(Clone, Debug, Default)]
pub struct ItemType {
    /// The type it refines (`number`, or another item definition).
    pub base: Option<String>,
    pub collection: bool,
    /// For a structure: each component's name and type.
    pub components: Vec<(String, ItemType)>,
    /// A function type: values are not checked.
    pub function: bool,
    /// A function type's result type (`functionItem outputTypeRef`): a decision service's results conform to it.
    pub output: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Element {
    Decision(usize),
    Input(usize),
    Bkm(usize),
    Service(usize),
}

#[derive(Clone, Debug)]
pub struct InputData {
    pub id: String,
    pub name: String,
    pub type_ref: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Requirements {
    /// Ids of the decisions, input data and knowledge it requires.
    pub decisions: Vec<String>,
    pub inputs: Vec<String>,
    pub knowledge: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Decision {
    pub id: String,
    pub name: String,
    pub type_ref: Option<String>,
    pub requires: Requirements,
    /// `None` for a decision without logic (a diagnostic says so).
    pub expression: Option<Boxed>,
    /// `zeebe:versionTag`: what a business rule task's `bindingType="versionTag"` names.
    pub version_tag: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Bkm {
    pub id: String,
    pub name: String,
    pub parameters: Vec<String>,
    /// Each parameter's `typeRef`: an argument that does not conform makes the call null.
    pub parameter_types: Vec<Option<String>>,
    /// The logic's `typeRef`: the result conforms to it.
    pub result_type: Option<String>,
    pub body: Option<Boxed>,
    pub requires: Requirements,
}

#[derive(Clone, Debug)]
pub struct DecisionService {
    pub id: String,
    pub name: String,
    /// The service's `variable typeRef` (a function type whose output its result conforms to).
    pub type_ref: Option<String>,
    pub outputs: Vec<String>,
    pub encapsulated: Vec<String>,
    pub input_decisions: Vec<String>,
    pub input_data: Vec<String>,
}

/// A FEEL expression as read: parsed, empty (null), or not parseable (its error).
#[derive(Clone, Debug)]
pub enum Expr {
    Feel(Expression),
    Null,
    Invalid(String),
}

#[derive(Clone, Debug)]
pub enum Tests {
    Feel(UnaryTests),
    Invalid(String),
}

/// DMN's boxed expressions.
#[derive(Clone, Debug)]
pub enum Boxed {
    Literal(Expr),
    Table(Box<DecisionTable>),
    /// Entries in order; the last one without a name is the context's result.
    Context(Vec<(Option<String>, Boxed)>),
    List(Vec<Boxed>),
    Relation { columns: Vec<String>, rows: Vec<Vec<Boxed>> },
    Invocation { function: String, bindings: Vec<(String, Boxed)> },
    Function { parameters: Vec<String>, body: Box<Boxed> },
    /// if, then, else.
    Conditional(Box<[Boxed; 3]>),
    /// in, match.
    Filter(Box<[Boxed; 2]>),
    /// DMN 1.5's boxed `for` (in, return), `some` and `every` (in, satisfies), over `variable`.
    Iterator { kind: IteratorKind, variable: String, parts: Box<[Boxed; 2]> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IteratorKind {
    For,
    Some,
    Every,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HitPolicy {
    Unique,
    Any,
    Priority,
    First,
    RuleOrder,
    OutputOrder,
    Collect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    Sum,
    Count,
    Min,
    Max,
}

#[derive(Clone, Debug)]
pub struct DecisionTable {
    pub hit_policy: HitPolicy,
    pub aggregation: Option<Aggregation>,
    pub inputs: Vec<TableInput>,
    pub outputs: Vec<TableOutput>,
    pub rules: Vec<TableRule>,
}

#[derive(Clone, Debug)]
pub struct TableInput {
    pub label: Option<String>,
    pub expression: Expr,
    pub allowed: Option<Tests>,
}

#[derive(Clone, Debug)]
pub struct TableOutput {
    pub name: Option<String>,
    /// The allowed values as one FEEL list, in priority order.
    pub allowed: Option<Expr>,
    pub default: Option<Expr>,
}

#[derive(Clone, Debug)]
pub struct TableRule {
    pub inputs: Vec<Tests>,
    pub outputs: Vec<Expr>,
}
