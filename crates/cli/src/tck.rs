//! `baton dmn-tck DIR`: the DMN TCK's test cases run against Baton's DMN
//! engine, a line per result and the totals. Every folder under DIR with
//! `*.dmn` models and `*-test-*.xml` files is one test group.

use std::path::{Path, PathBuf};

/// How the run ended, for the exit code and the summary.
#[derive(Default)]
struct Totals {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn folders(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    if entries.iter().any(|p| p.extension().is_some_and(|e| e == "dmn")) {
        out.push(root.to_path_buf());
    }
    for entry in entries.into_iter().filter(|p| p.is_dir()) {
        folders(&entry, out);
    }
}

/// Runs every test under `root`; prints `PASS`/`FAIL`/`SKIP` lines (only the
/// failures with `failures_only`) and the totals. Exit code 0 when all passed.
pub fn run(root: &Path, failures_only: bool) -> i32 {
    let mut groups = Vec::new();
    folders(root, &mut groups);
    if groups.is_empty() {
        eprintln!("baton: no DMN models under {}", root.display());
        return 2;
    }
    let mut totals = Totals::default();
    // The runner is outside the pure core: `now()` may read this machine's clock here.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for folder in groups {
        let group = folder.strip_prefix(root).unwrap_or(&folder).display().to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder).into_iter().flatten().flatten().map(|e| e.path()).collect();
        files.sort();
        for test_file in files.iter().filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains("-test-")) && p.extension().is_some_and(|e| e == "xml")) {
            let name = test_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let (model_name, cases) = match std::fs::read_to_string(test_file).map_err(|e| e.to_string()).and_then(|text| dmn::tck::parse(&text)) {
                Ok(parsed) => parsed,
                Err(error) => {
                    println!("SKIP {group}/{name}: the test file cannot be read: {error}");
                    totals.skipped += 1;
                    continue;
                }
            };
            let model = std::fs::read_to_string(folder.join(&model_name)).map_err(|e| format!("cannot read {model_name}: {e}")).and_then(|xml| {
                dmn::read(&xml).map(|(definitions, _)| definitions).map_err(|d| format!("{model_name}: {}", d.message))
            });
            for case in &cases {
                let results = match &model {
                    Ok(definitions) => dmn::tck::run(definitions, case, Some(now)),
                    Err(error) => case.results.iter().map(|r| (r.name.clone(), Err(error.clone()))).collect(),
                };
                for (result, verdict) in results {
                    let id = format!("{group}/{name} {} {result}", case.id);
                    match verdict {
                        Ok(()) => {
                            totals.passed += 1;
                            if !failures_only {
                                println!("PASS {id}");
                            }
                        }
                        Err(why) => {
                            totals.failed += 1;
                            println!("FAIL {id}: {why}");
                        }
                    }
                }
            }
        }
    }
    let all = totals.passed + totals.failed + totals.skipped;
    let percent = if all == 0 { 0.0 } else { totals.passed as f64 * 100.0 / all as f64 };
    println!("{} passed, {} failed, {} skipped of {all} ({percent:.1} %)", totals.passed, totals.failed, totals.skipped);
    i32::from(totals.failed + totals.skipped > 0)
}
