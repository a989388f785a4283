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

/// Direct dependencies only one crate may have: (dependency, the crates allowed it, the rule).
const OWNED_DEPENDENCIES: &[(&str, &[&str], &str)] = &[
    ("rusqlite", &["store-sqlite"], "only store-* crates know SQL"),
    ("axum", &["api"], "only api serves HTTP"),
    ("clap", &["cli"], "only cli knows argv"),
    // The CLI's client commands talk to the server; no other crate makes HTTP requests.
    ("reqwest", &["cli"], "only cli makes HTTP requests, as the server's client"),
];

#[test]
fn sql_http_and_argv_each_live_in_one_crate() {
    for entry in std::fs::read_dir(workspace().join("crates")).expect("the crates folder is readable") {
        let dir = entry.expect("an entry").path();
        let krate = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a crate has a Cargo.toml");
        let dependencies = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
        for (dependency, allowed, rule) in OWNED_DEPENDENCIES {
            let uses = dependencies.lines().any(|line| line.trim_start().starts_with(&format!("{dependency}.")) || line.trim_start().starts_with(&format!("{dependency} ")));
            assert!(
                !uses || allowed.contains(&krate.as_str()),
                "ARCHITECTURE.md, invariant '{rule}': crates/{krate}/Cargo.toml depends on `{dependency}`"
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
