//! BPMN 2.0 XML to a validated, compiled workflow model.
//!
//! [`import`] reads a file and returns the model *and* every problem found in
//! it, each a [`Diagnostic`] with a stable code, the element id and the
//! line:column, so a modeller fixes a file in one pass. It reads BPMN with any
//! namespace prefix, the Zeebe extensions (`zeebe:taskDefinition`,
//! `zeebe:ioMapping`, ...) and the Camunda 7 attributes users bring
//! (`camunda:topic`, `camunda:assignee`, ...), and keeps the diagram.
//!
//! Hostile XML is refused with a diagnostic, never a panic or a hang: DTDs and
//! entities, files over [`read::MAX_XML_BYTES`], nesting over
//! [`read::MAX_XML_DEPTH`].
//!
//! This crate does no I/O and reads no clock: it takes text and returns data.

mod decode;
pub mod model;
pub mod read;
pub mod timer;

use std::fmt;

pub use decode::decode;
pub use model::*;

/// How bad a problem is: errors stop a deployment, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a BPMN file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable, kebab-case; listed in `docs/diagnostics.md`.
    pub code: String,
    /// The id of the element (or sequence flow) at fault, if there is one.
    pub element: Option<String>,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn error(code: &str, element: Option<&str>, (line, column): (u32, u32), message: String) -> Diagnostic {
        Diagnostic { severity: Severity::Error, code: code.to_string(), element: element.map(str::to_string), line, column, message }
    }

    pub fn warning(code: &str, element: Option<&str>, position: (u32, u32), message: String) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, element, position, message) }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {severity}[{}]", self.line, self.column, self.code)?;
        if let Some(element) = &self.element {
            write!(f, " {element}:")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Everything read from one BPMN file.
#[derive(Clone, Debug)]
pub struct Definitions {
    /// One per `<process>`, in file order.
    pub workflows: Vec<Workflow>,
    pub diagram: Diagram,
}

/// The result of reading a file: the model when the XML could be read at all,
/// and every diagnostic.
#[derive(Clone, Debug)]
pub struct Import {
    pub definitions: Option<Definitions>,
    pub diagnostics: Vec<Diagnostic>,
    /// How much reading the file took, counted rather than timed: elements
    /// visited, characters counted to give line and column, and children
    /// searched while linking. It grows in proportion to the file (a test
    /// holds the importer to that).
    pub work: u64,
}

impl Import {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }

    /// The executable workflows, if the file has no error.
    pub fn into_workflows(self) -> Result<Vec<Workflow>, Vec<Diagnostic>> {
        if self.has_errors() {
            return Err(self.diagnostics);
        }
        let definitions = self.definitions.expect("a file without errors was read");
        Ok(definitions.workflows.into_iter().filter(|w| w.executable).collect())
    }
}

/// Reads a BPMN file. Never panics.
pub fn import(xml: &str) -> Import {
    read::import(xml)
}
