//! The runtime: Baton's engine driven against a store.
//!
//! [`core::Core`] holds the logic of running many instances: deployments and
//! versions, starting (idempotently), correlating messages to waiting
//! instances and buffering them for their time to live, broadcasting signals,
//! starting child instances and telling parents when they end, firing due
//! timers and timer start events, handing jobs to workers under a lease. Every
//! command runs in a store transaction; nothing is acknowledged before that
//! transaction commits.
//!
//! The core reads no clock and spawns nothing: the caller passes `now`. The
//! server's commit loop ([`service`]) and `baton test`'s virtual clock are
//! its two callers.

mod cache;
pub mod core;
pub mod decisions;
mod error;
pub mod forms;
pub mod metrics;
mod model;
pub mod service;
mod streams;

pub use crate::core::{retention_ms, ActivatedJob, Audit, Claim, ConditionalStart, Core, Deployed, Deployment, IdSource, Imported, Listed, Publication, PublishCommand, Registry, SequentialIds, StartCommand, Unguarded, UuidIds};
pub use model::DeployedModel;
pub use error::{panic_message, Error, Fault, FaultCause};
#[cfg(feature = "test-util")]
pub use service::{ManualClock, PanicInjection};
pub use streams::JobStream;
pub use service::{Clock, Command, Handle, Options, Reply, Service, SystemClock, TaskAction};
