//! Scenario files (`baton test`): a workflow, a script of inputs and what must
//! be true after each step, run on an in-memory [`World`] with a virtual clock.
//!
//! The format is a public contract (`conformance/FORMAT.md` in the shared
//! folder): unknown keys are refused with the key and the file named. The same
//! runner is the engine's conformance suite and the way users test their own
//! workflows.
//!
//! Everything here is deterministic and in memory: no clock is read and no
//! file is written; files are read only to load scenarios and models.

pub mod format;
pub mod run;
pub mod world;

pub use run::{collect, run_file, run_file_with, Outcome, RunOptions};
pub use world::World;

/// Runs every scenario under `paths`; the outcomes are in file order.
pub fn run_paths(paths: &[std::path::PathBuf]) -> Result<Vec<Outcome>, String> {
    Ok(collect(paths)?.iter().flat_map(|file| run_file(file)).collect())
}
