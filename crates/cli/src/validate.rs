//! `baton validate`: reads BPMN files and prints every diagnostic.

use std::path::{Path, PathBuf};

use bpmn::{Diagnostic, Severity};
use serde::Serialize;

#[derive(Serialize)]
struct FileReport {
    path: String,
    valid: bool,
    /// The executable processes in the file.
    workflows: Vec<String>,
    diagnostics: Vec<Diagnostic>,
}

#[derive(Serialize)]
struct Report {
    files: Vec<FileReport>,
    errors: usize,
    warnings: usize,
}

/// Reads a BPMN file as text; a problem is a diagnostic.
pub fn read_bpmn(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error("file-unreadable", None, (0, 0), format!("cannot read {}: {e}", path.display())))?;
    bpmn::decode(&bytes)
}

fn check(path: &Path) -> FileReport {
    let (workflows, diagnostics) = match read_bpmn(path) {
        Ok(xml) => {
            let import = bpmn::import(&xml);
            let workflows = import
                .definitions
                .as_ref()
                .map(|d| d.workflows.iter().filter(|w| w.executable).map(|w| w.process_id.clone()).collect())
                .unwrap_or_default();
            (workflows, import.diagnostics)
        }
        Err(diagnostic) => (Vec::new(), vec![diagnostic]),
    };
    let valid = !diagnostics.iter().any(|d| d.severity == Severity::Error);
    FileReport { path: path.display().to_string(), valid, workflows, diagnostics }
}

pub fn run(files: &[PathBuf], json: bool) -> i32 {
    let reports: Vec<FileReport> = files.iter().map(|f| check(f)).collect();
    let count = |severity| reports.iter().flat_map(|r| &r.diagnostics).filter(|d| d.severity == severity).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    if json {
        let report = Report { files: reports, errors, warnings };
        say!("{}", serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        for report in &reports {
            for diagnostic in &report.diagnostics {
                say!("{}:{diagnostic}", report.path);
            }
            if report.valid {
                eprintln!("{}: ok ({})", report.path, report.workflows.join(", "));
            }
        }
        eprintln!("{} file(s), {errors} error(s), {warnings} warning(s)", reports.len());
    }
    i32::from(errors > 0)
}
