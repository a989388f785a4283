//! Deployed workflow versions and DMN files, compiled the first time they are needed.
//!
//! Versions are never deleted, so a long-lived server holds every version
//! ever deployed. Compiling them all at start made a restart, and the
//! server's memory, grow with that history (a thousand versions of a
//! 105-element model: 107 KB of compiled model each against 12.5 KB of XML).
//! A version is kept as its XML and compiled once, by whichever caller needs
//! it first: the commit loop for an instance's step, or the API showing one.
//! A version deployed in this process is compiled already (its deploy
//! compiled it before the command entered the commit loop). DMN files are
//! kept the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bpmn::Workflow;

/// Source text compiled once, by the first caller that needs the result.
pub struct CompiledOnce<T> {
    source: Arc<str>,
    /// The compiled form, or why the source no longer compiles.
    compiled: OnceLock<Result<Arc<T>, String>>,
}

impl<T> CompiledOnce<T> {
    /// Stored source: compiled when first asked for.
    pub(crate) fn stored(source: Arc<str>) -> CompiledOnce<T> {
        CompiledOnce { source, compiled: OnceLock::new() }
    }

    /// Source compiled already (deployed by this process).
    pub(crate) fn compiled(source: Arc<str>, compiled: Arc<T>) -> CompiledOnce<T> {
        CompiledOnce { source, compiled: OnceLock::from(Ok(compiled)) }
    }

    pub fn is_compiled(&self) -> bool {
        self.compiled.get().is_some()
    }

    /// The compiled form: `compile` runs on the first call (once, whichever
    /// thread asks first), the same `Arc` after. An error means source that
    /// compiled when it was deployed no longer does with this build of Baton.
    pub(crate) fn get(&self, compile: impl FnOnce(&str) -> Result<T, String>) -> Result<Arc<T>, String> {
        self.compiled.get_or_init(|| compile(&self.source).map(Arc::new)).clone()
    }
}

/// One deployed version's model: its XML, and the workflow compiled from it once asked for.
pub struct DeployedModel {
    process_id: String,
    name: Option<String>,
    version_tag: Option<String>,
    /// The whole file's XML (shared by its processes), compiled to this process.
    compiled: CompiledOnce<Workflow>,
    /// Compilations from stored XML, counted for the core that read it
    /// (none for a version compiled by its deploy).
    compilations: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for DeployedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployedModel").field("process_id", &self.process_id).field("compiled", &self.compiled.is_compiled()).finish()
    }
}

impl DeployedModel {
    /// A version read from the store: compiled when first asked for.
    pub(crate) fn stored(row: &store::WorkflowRow, xml: Arc<str>, compilations: Arc<AtomicU64>) -> DeployedModel {
        DeployedModel {
            process_id: row.process_id.clone(),
            name: row.name.clone(),
            version_tag: row.version_tag.clone(),
            compiled: CompiledOnce::stored(xml),
            compilations: Some(compilations),
        }
    }

    /// A version compiled already (deployed by this process).
    pub(crate) fn compiled(workflow: Arc<Workflow>, xml: Arc<str>) -> DeployedModel {
        DeployedModel {
            process_id: workflow.process_id.clone(),
            name: workflow.name.clone(),
            version_tag: workflow.version_tag.clone(),
            compiled: CompiledOnce::compiled(xml, workflow),
            compilations: None,
        }
    }

    pub fn process_id(&self) -> &str {
        &self.process_id
    }

    /// Whether it has been compiled (or found not to compile) in this process.
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_compiled()
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `zeebe:versionTag`, which call activities can bind to.
    pub fn version_tag(&self) -> Option<&str> {
        self.version_tag.as_deref()
    }

    /// The compiled workflow (compiled now if nothing needed it before). An
    /// error says which process no longer compiles and why.
    pub fn workflow(&self) -> Result<Arc<Workflow>, String> {
        self.compiled.get(|xml| {
            if let Some(compilations) = &self.compilations {
                compilations.fetch_add(1, Ordering::Relaxed);
            }
            let import = bpmn::import(xml);
            let why = import.diagnostics.iter().find(|d| d.severity == bpmn::Severity::Error).map(ToString::to_string);
            import
                .into_workflows()
                .ok()
                .and_then(|mut workflows| {
                    let at = workflows.iter().position(|w| w.process_id == self.process_id)?;
                    Some(workflows.swap_remove(at))
                })
                .ok_or_else(|| {
                    let why = why.unwrap_or_else(|| "the process is no longer in its file".into());
                    format!("the deployed workflow {} no longer compiles ({why})", self.process_id)
                })
        })
    }
}
