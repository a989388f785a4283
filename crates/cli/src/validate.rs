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

/// Reads a file as UTF-8 text (a byte-order mark is dropped); a problem is a diagnostic.
pub fn read_bpmn(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error("file-unreadable", None, (0, 0), format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() > bpmn::read::MAX_XML_BYTES {
        return Err(Diagnostic::error(
            "xml-too-large",
            None,
            (1, 1),
            format!("the file is {} bytes; the limit is {}", bytes.len(), bpmn::read::MAX_XML_BYTES),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let (line, column) = position_of(bytes, e.utf8_error().valid_up_to());
        Diagnostic::error("xml-encoding", None, (line, column), "the file is not UTF-8 text; save it as UTF-8".into())
    })
}

fn position_of(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset - before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
    (line as u32, column as u32)
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
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        for report in &reports {
            for diagnostic in &report.diagnostics {
                println!("{}:{diagnostic}", report.path);
            }
            if report.valid {
                eprintln!("{}: ok ({})", report.path, report.workflows.join(", "));
            }
        }
        eprintln!("{} file(s), {errors} error(s), {warnings} warning(s)", reports.len());
    }
    i32::from(errors > 0)
}
