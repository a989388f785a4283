//! The scenario format (`baton test`): a file of any content is run in a
//! folder of its own; what it deploys must be inline or missing. A scenario
//! that fails is an outcome; a panic is a defect (libFuzzer's panic hook
//! aborts even where the runner catches one).
#![no_main]

use std::sync::atomic::{AtomicUsize, Ordering};

static RUNS: AtomicUsize = AtomicUsize::new(0);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("baton-fuzz-scenario-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{}.yaml", RUNS.fetch_add(1, Ordering::Relaxed) % 2));
    if std::fs::write(&file, data).is_ok() {
        let _ = scenario::run_file(&file);
    }
});
