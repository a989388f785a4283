//! `runtime::Error`: why a command was not carried out. Each has a stable code
//! the API turns into a problem document.

use std::fmt;

use bpmn::{Diagnostic, Severity};
use engine::Rejection;

#[derive(Clone, Debug)]
pub enum Error {
    Store(store::Error),
    /// The BPMN files have errors (each with the name of its file); nothing was deployed.
    Deploy(Vec<(String, Diagnostic)>),
    /// The engine refused the input; the instance is unchanged.
    Rejected(Rejection),
    NotFound { what: &'static str, id: String },
    /// The worker's lease on the job ran out; the job may be with another worker now.
    LeaseExpired { job: String },
    /// Another worker holds the job.
    LeaseHeld { job: String, worker: String },
    /// The claimant's rights do not cover what it asked for.
    Forbidden(String),
    /// A worker's lease runs on the job and the request did not show its token.
    LeaseRequired { job: String, worker: String },
    /// A message with this id is still buffered.
    DuplicateMessage(String),
    InvalidInput(String),
    /// A decision's evaluation failed (a hit policy violated, an expression that cannot be evaluated).
    DecisionFailed(String),
    /// Applying the command failed inside Baton (a panic, caught). Nothing of
    /// the command was written; the instance it was applied to, when known,
    /// has an `engine_fault` incident.
    Fault(Fault),
    /// More commands wait for the commit loop than it holds
    /// ([`crate::Options::queue_capacity`]): this one was not taken; retry shortly.
    Overloaded { waiting: usize },
}

/// Where a command failed inside Baton, and how.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The instance the failing step was applied to (`None` for a start, or outside any step).
    pub instance_id: Option<String>,
    pub site: engine::FaultSite,
    /// The panic's message, or what was too large.
    pub message: String,
    pub cause: FaultCause,
}

/// Why a command was stopped and undone inside an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultCause {
    /// A defect in Baton: a panic, caught.
    Defect,
    /// The instance's variables would have grown past [`engine::MAX_VARIABLES_BYTES`].
    VariablesTooLarge,
}

impl Fault {
    /// A fault from a caught panic's payload.
    pub fn from_panic(instance_id: Option<String>, site: engine::FaultSite, payload: &(dyn std::any::Any + Send)) -> Fault {
        Fault { instance_id, site, message: panic_message(payload), cause: FaultCause::Defect }
    }

    /// An input that would have made an instance's variables `bytes` large.
    pub fn variables_too_large(instance_id: Option<String>, site: engine::FaultSite, bytes: usize) -> Fault {
        let message = format!(
            "the instance's variables would take about {bytes} bytes; the limit is {} (every scope together)",
            engine::MAX_VARIABLES_BYTES
        );
        Fault { instance_id, site, message, cause: FaultCause::VariablesTooLarge }
    }
}

/// The message a caught panic carried.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl Error {
    /// The stable code of this error (`docs/errors/<code>.md`).
    pub fn code(&self) -> &str {
        match self {
            Error::Store(e) if e.is_unavailable() => "store-unavailable",
            Error::Store(_) => "store-failed",
            Error::Deploy(_) => "deployment-invalid",
            Error::Rejected(rejection) => rejection.code.as_str(),
            Error::NotFound { what: "workflow", .. } => "workflow-not-found",
            Error::NotFound { what: "instance", .. } => "instance-not-found",
            Error::NotFound { what: "job", .. } => "job-not-found",
            Error::NotFound { what: "task", .. } => "task-not-found",
            Error::NotFound { what: "incident", .. } => "incident-not-found",
            Error::NotFound { what: "form", .. } => "form-not-found",
            Error::NotFound { what: "decision", .. } => "decision-not-found",
            Error::NotFound { what: "open user task", .. } => "task-not-found",
            Error::NotFound { .. } => "not-found",
            Error::LeaseExpired { .. } => "job-lease-expired",
            Error::LeaseHeld { .. } => "job-leased-to-another-worker",
            Error::LeaseRequired { .. } => "job-lease-required",
            Error::Forbidden(_) => "forbidden",
            Error::DuplicateMessage(_) => "message-already-published",
            Error::InvalidInput(_) => "invalid-input",
            Error::DecisionFailed(_) => "decision-failed",
            Error::Fault(Fault { cause: FaultCause::VariablesTooLarge, .. }) => "variables-too-large",
            Error::Fault(_) => "engine-fault",
            Error::Overloaded { .. } => "overloaded",
        }
    }
}

impl From<store::Error> for Error {
    fn from(error: store::Error) -> Error {
        Error::Store(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store(e) => write!(f, "{e}"),
            Error::Deploy(diagnostics) => {
                let errors: Vec<String> =
                    diagnostics.iter().filter(|(_, d)| d.severity == Severity::Error).map(|(resource, d)| format!("{resource}: {d}")).collect();
                write!(f, "the deployment has {} error(s): {}", errors.len(), errors.join("; "))
            }
            Error::Rejected(rejection) => write!(f, "{}", rejection.message),
            Error::NotFound { what, id } => write!(f, "{what} {id} does not exist"),
            Error::LeaseExpired { job } => write!(f, "the lease on job {job} ran out; it may be with another worker now"),
            Error::LeaseHeld { job, worker } => write!(f, "job {job} is leased to worker '{worker}'"),
            Error::Forbidden(what) => write!(f, "{what}"),
            Error::LeaseRequired { job, worker } => write!(
                f,
                "job {job} is leased to worker '{worker}': send the lease its activation returned, or (an operator) override it"
            ),
            Error::DuplicateMessage(id) => write!(f, "a message with id '{id}' was already published and is still buffered"),
            Error::InvalidInput(message) | Error::DecisionFailed(message) => write!(f, "{message}"),
            Error::Fault(fault) if fault.cause == FaultCause::VariablesTooLarge => match &fault.instance_id {
                Some(id) => write!(f, "{}: nothing of it was written, and instance {id} has a variables_too_large incident", fault.message),
                None => write!(f, "{}: nothing of it was written", fault.message),
            },
            Error::Overloaded { waiting } => write!(
                f,
                "the server has {waiting} commands waiting to be written, the most it holds; nothing of this one was taken: retry shortly"
            ),
            Error::Fault(fault) => match &fault.instance_id {
                Some(id) => write!(
                    f,
                    "Baton failed while applying this to instance {id}: {}; nothing of it was written and the instance has an engine_fault incident",
                    fault.message
                ),
                None => write!(f, "Baton failed while applying this: {}; nothing of it was written", fault.message),
            },
        }
    }
}

impl std::error::Error for Error {}
