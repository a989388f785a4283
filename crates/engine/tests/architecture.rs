//! Enforces the invariants of the pure core written in ARCHITECTURE.md:
//! `feel`, `bpmn` and `engine` do no I/O, read no clock, draw no random
//! numbers, depend on no async runtime, database or HTTP crate, and keep
//! iteration order deterministic.

use std::path::{Path, PathBuf};
use std::process::Command;

const CORE: &[&str] = &["feel", "bpmn", "engine"];

/// Crates the core must never depend on, even indirectly.
const FORBIDDEN_CRATES: &[&str] =
    &["tokio", "async-std", "sqlx", "rusqlite", "tokio-postgres", "postgres", "axum", "hyper", "reqwest", "rand", "getrandom", "mio"];

/// Source patterns the core must never contain, with the reason.
const FORBIDDEN_SOURCE: &[(&str, &str)] = &[
    ("SystemTime", "reads the wall clock; take `now` as an argument"),
    ("Instant::now", "reads the clock; take `now` as an argument"),
    ("Timestamp::now", "reads the wall clock; take `now` as an argument"),
    ("Zoned::now", "reads the wall clock; take `now` as an argument"),
    ("std::fs", "does file I/O; the shell reads files"),
    ("std::net", "does network I/O"),
    ("std::env", "reads the environment; pass configuration in"),
    ("std::thread", "spawns threads; the core is synchronous"),
    ("HashMap", "iterates in random order; use BTreeMap"),
    ("HashSet", "iterates in random order; use BTreeSet"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for krate in CORE {
        let output = Command::new(&cargo)
            .args(["tree", "--offline", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}"])
            .current_dir(workspace())
            .output()
            .expect("cargo tree runs");
        assert!(output.status.success(), "cargo tree -p {krate} failed: {}", String::from_utf8_lossy(&output.stderr));
        let tree = String::from_utf8_lossy(&output.stdout);
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            assert!(
                !FORBIDDEN_CRATES.contains(&name),
                "ARCHITECTURE.md, invariant 'the core is pure': crate `{krate}` depends on `{name}` ({line})"
            );
        }
    }
}

#[test]
fn the_core_source_reads_no_clock_and_does_no_io() {
    for krate in CORE {
        let mut files = Vec::new();
        let mut stack = vec![workspace().join("crates").join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("the source folder is readable") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert!(!files.is_empty(), "no source found for {krate}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file is readable");
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (pattern, why) in FORBIDDEN_SOURCE {
                    assert!(
                        !code.contains(pattern),
                        "ARCHITECTURE.md, invariant 'the core is pure': {}:{} uses `{pattern}`, which {why}",
                        file.display(),
                        number + 1
                    );
                }
            }
        }
    }
}
