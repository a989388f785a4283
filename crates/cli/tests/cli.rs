//! The real `baton` binary: exit codes, stdout for data, stderr for messages.

mod durability;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn baton(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("baton runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared() -> PathBuf {
    std::env::var_os("BATON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_json_over_the_whole_miwg_corpus_is_one_parseable_document() {
    let mut files = Vec::new();
    let mut stack = vec![shared().join("corpus/miwg")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "bpmn") {
                files.push(path.display().to_string());
            }
        }
    }
    let mut args = vec!["validate", "--json"];
    args.extend(files.iter().map(String::as_str));
    let output = baton(&args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "errors in the corpus give exit 1, never a panic"
    );
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&output)).expect("one JSON document");
    assert_eq!(report["files"].as_array().unwrap().len(), files.len());
    assert!(report["errors"].as_u64().unwrap() > 0);
    let malformed: Vec<&serde_json::Value> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["diagnostics"].as_array().unwrap())
        .filter(|d| d["code"].as_str().unwrap().starts_with("xml-"))
        .collect();
    assert_eq!(malformed.len(), 4);
    assert!(malformed
        .iter()
        .all(|d| d["line"].as_u64().unwrap() > 0 && d["column"].as_u64().unwrap() > 0));
}

#[test]
fn validate_prints_code_element_and_position() {
    let ok = baton(&["validate", "examples/order/order.bpmn"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(stdout(&ok), "", "a valid file prints no diagnostics");
    let bad = shared().join("conformance/cases/16-deploy-errors/badtimer.bpmn");
    let output = baton(&["validate", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("badtimer.bpmn:5:")
            && text.contains("error[timer-invalid] bad_wait: 'PT1X' is not an ISO 8601 duration"),
        "{text}"
    );
    let missing = baton(&["validate", "no/such/file.bpmn"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).contains("file-unreadable"));
}

#[test]
fn test_runs_the_conformance_cases_and_ends_with_the_summary() {
    let cases = shared().join("conformance/cases");
    let output = baton(&["test", cases.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let last = text.lines().last().unwrap();
    let passed: usize = last
        .strip_suffix(" passed, 0 failed")
        .expect("the summary line")
        .parse()
        .unwrap();
    assert!(passed >= 46);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok   ")).count(),
        passed
    );
}

/// Issue 13: the DMN TCK's cases through `baton dmn-tck`, a line per failure
/// and the totals; the count may only go up (docs/dmn.md lists why the rest fail).
#[test]
fn the_dmn_tck_runs_and_passes_what_it_passed() {
    let output = baton(&["dmn-tck", shared().join("dmn-tck").to_str().unwrap(), "--failures"]);
    let text = stdout(&output);
    let last = text.lines().last().unwrap();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("{last}"));
    assert!(last.contains(" failed, 0 skipped of 3495"), "{last}");
    assert!(passed >= 3461, "{last}");
    assert_eq!(text.lines().filter(|l| l.starts_with("FAIL ")).count(), 3495 - passed);
    // docs/dmn-tck-failures.txt says why each failing result fails: it is this run's output.
    let documented = std::fs::read_to_string(workspace().join("docs/dmn-tck-failures.txt")).unwrap();
    let documented: Vec<&str> = documented.lines().filter(|l| !l.starts_with('#')).collect();
    let ran: Vec<&str> = text.lines().collect();
    let gone: Vec<&&str> = documented.iter().filter(|l| !ran.contains(l)).collect();
    let new: Vec<&&str> = ran.iter().filter(|l| !documented.contains(l)).collect();
    assert!(gone.is_empty() && new.is_empty(), "regenerate docs/dmn-tck-failures.txt (its first line says how); no longer so: {gone:#?}\nnew: {new:#?}");
}

/// Issue 13, item 8: `--uncaught-errors incident` does as Camunda 8 does with an error nobody catches.
#[test]
fn uncaught_errors_become_incidents_when_asked() {
    let cases = workspace().join("tests/camunda-errors");
    let with = baton(&["test", "--uncaught-errors", "incident", cases.to_str().unwrap()]);
    assert_eq!(with.status.code(), Some(0), "{}", stdout(&with));
    let without = baton(&["test", cases.to_str().unwrap()]);
    assert_eq!(without.status.code(), Some(1), "by default the instance fails: {}", stdout(&without));
    assert!(stdout(&without).contains("expected running, got failed"));
}

#[test]
fn test_exits_non_zero_on_failure_and_prints_json_per_scenario() {
    let fixture = workspace().join("crates/scenario/tests/fixtures/must-fail.yaml");
    let output = baton(&["test", "--json", fixture.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 15);
    assert!(lines
        .iter()
        .all(|l| l["passed"] == false && l["message"].is_string()));
    assert!(String::from_utf8_lossy(&output.stderr).contains("0 passed, 15 failed"));
}

#[test]
fn test_refuses_paths_that_hold_nothing() {
    let output = baton(&["test", "no/such/folder"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no/such/folder does not exist"));
}

#[test]
fn serve_refuses_a_database_it_does_not_know() {
    let output = baton(&[
        "serve",
        "--db",
        "mysql://localhost/baton",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("use sqlite://FILE"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn client_commands_say_when_the_server_is_not_there() {
    let output = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["instances", "list"])
        .env("BATON_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is `baton serve` running?"));
}

/// `baton bench` itself works and verifies its runs: a few hundred instances of each workload.
#[test]
fn bench_runs_every_workload_and_checks_every_instance() {
    for (workload, store, mode, extra) in [
        ("w1", "memory", "embedded", &[][..]),
        ("w2", "sqlite", "http", &[]),
        ("w3", "sqlite", "embedded", &[]),
        ("w4", "memory", "http", &[]),
        // Workers apart, completing each batch of jobs in one request.
        ("w3", "memory", "http", &["--separate", "--batched-reports"]),
    ] {
        // With BATON_TEST_STORE=postgres (scripts/test's second run), the durable runs go to PostgreSQL.
        let postgres = std::env::var("BATON_TEST_STORE").as_deref() == Ok("postgres");
        let store = if postgres && store == "sqlite" { "postgres" } else { store };
        let mut args = vec!["bench", "--workload", workload, "--store", store, "--mode", mode, "--instances", "200", "--json"];
        let server = store_postgres::testing::server;
        let url = if store == "postgres" { server() } else { String::new() };
        if store == "postgres" {
            args.extend(["--postgres", url.as_str()]);
        }
        args.extend(extra);
        let output = baton(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{workload}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!(
            report["verified"],
            serde_json::json!(200),
            "{workload}: {report}"
        );
        for field in [
            "instances_per_s",
            "cpu_s_per_1000",
            "p50_ms",
            "p99_ms",
            "commits",
            "mean_batch",
        ] {
            assert!(
                report[field].is_number(),
                "{workload}: {field} missing from {report}"
            );
        }
        assert!(report["commits"].as_u64().unwrap() > 0);
        assert_eq!(report["batched_reports"], serde_json::json!(extra.contains(&"--batched-reports")), "{report}");
        // Issue 16, item 2: what the commit thread and a durable store spent per instance.
        assert!(report["commit_thread_us_per_job"].as_f64().is_some_and(|us| us > 0.0), "{workload}: {report}");
        if store != "memory" {
            let database = &report["database"];
            for field in ["statements", "rows_written", "wal_bytes", "commits"] {
                assert!(database[field].as_f64().is_some_and(|n| n > 0.0), "{workload}: {field} in {report}");
            }
        }
    }
    let output = baton(&[
        "bench",
        "--workload",
        "w1",
        "--instances",
        "100",
        "--rate",
        "500",
        "--store",
        "memory",
    ]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("offered 500/s"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // Issue 16, item 5: a closed loop keeps a fixed number of instances in
    // flight, each start waiting for an end, through each face.
    for mode in ["embedded", "http", "camunda-rest"] {
        // A warm-up first: every instance is checked, only the measured ones give latencies.
        let output = baton(&["bench", "--workload", "w2", "--store", "memory", "--mode", mode, "--instances", "40", "--in-flight", "4", "--warmup", "12", "--json"]);
        assert_eq!(output.status.code(), Some(0), "{mode}: {}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!((report["verified"].as_u64(), report["in_flight"].as_u64(), report["warmup"].as_u64()), (Some(40), Some(4), Some(12)), "{mode}: {report}");
    }
    // Issue 16, item 5: the starters and workers in a process of their own,
    // in a closed loop after a warm-up and as fast as they can: the server's
    // CPU and theirs apart, the whole machine's beside them.
    for extra in [&["--in-flight", "4", "--warmup", "10"][..], &[]] {
        let mut args = vec!["bench", "--workload", "w2", "--store", "sqlite", "--mode", "camunda-rest", "--instances", "30", "--separate", "--json"];
        args.extend(extra);
        let output = baton(&args);
        assert_eq!(output.status.code(), Some(0), "{extra:?}: {}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!((report["verified"].as_u64(), report["separate"].as_bool()), (Some(30), Some(true)), "{report}");
        let cpu = |field: &str| report[field].as_f64().unwrap_or_else(|| panic!("{field} missing from {report}"));
        assert!(cpu("server_cpu_s_per_1000") > 0.0 && cpu("clients_cpu_s_per_1000") > 0.0, "{report}");
        assert_eq!(cpu("server_cpu_s_per_1000"), cpu("cpu_s_per_1000"), "this process is the server alone: {report}");
        assert!(cpu("machine_cpu_s_per_1000") > 0.0 && report["load_average"].as_array().is_some_and(|l| l.len() == 3), "{report}");
        assert!(cpu("disk_bytes_per_instance") > 1000.0, "a W2 instance keeps its rows and history: {report}");
    }
    // Issue 16, item 6: a run's database kept (`--keep`) to serve again or
    // measure a restart on; into an empty folder only.
    let kept = tempfile::tempdir().unwrap();
    let folder = kept.path().to_str().unwrap();
    let output = baton(&["bench", "--workload", "w1", "--instances", "50", "--keep", folder]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    {
        use store::Store;
        let store = store_sqlite::SqliteStore::open(&kept.path().join("bench.db")).unwrap();
        let counted = store.read().unwrap().count_instances().unwrap();
        assert_eq!(counted, [(engine::Status::Completed, 50)], "the kept file holds the run's instances");
    }
    let refused = baton(&["bench", "--workload", "w1", "--instances", "5", "--keep", folder]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("the folder is not empty"), "{}", String::from_utf8_lossy(&refused.stderr));
    // Issue 16, item 5: `--report` prints what the run left, table by table
    // and index by index, per instance (a W1 instance: one row, two of
    // history, three variables; its job gone with it).
    let output = baton(&["bench", "--workload", "w1", "--instances", "40", "--warmup", "10", "--report", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let kept = |name: &str| report["kept"].as_array().and_then(|kept| kept.iter().find(|t| t["name"] == name)).cloned().unwrap_or_else(|| panic!("{name} in {report}"));
    assert_eq!(kept("instances")["rows_per_instance"].as_f64(), Some(1.0), "{report}");
    assert_eq!(kept("variables")["rows_per_instance"].as_f64(), Some(3.0), "amount, i and done_t1: {report}");
    assert_eq!(kept("jobs")["rows_per_instance"].as_f64(), Some(0.0), "{report}");
    assert_eq!((kept("instances_by_status")["table"].as_str(), kept("instances_by_status")["rows_per_instance"].as_f64()), (Some("instances"), Some(1.0)), "{report}");
    assert!(kept("instances")["bytes_per_instance"].as_f64().is_some_and(|b| b > 0.0), "{report}");
    let output = baton(&["bench", "--workload", "w1", "--instances", "20", "--report"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("kept            per instance, by table and index") && text.contains("instances_by_status (of instances)"), "{text}");
    let refused = baton(&["bench", "--workload", "w1", "--store", "memory", "--report"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--report reads what the run left in its database"), "{}", String::from_utf8_lossy(&refused.stderr));
    let refused = baton(&["bench", "--workload", "w1", "--separate"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--separate runs the clients in another process"), "{}", String::from_utf8_lossy(&refused.stderr));
    let refused = baton(&["bench", "--workload", "w1", "--in-flight", "0"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--in-flight must be at least 1"), "{}", String::from_utf8_lossy(&refused.stderr));
    // Issue 15, item 6: three nodes on one PostgreSQL database, every instance checked.
    let url = store_postgres::testing::server();
    let output = baton(&["bench", "--workload", "w3", "--store", "postgres", "--postgres", &url, "--nodes", "3", "--mode", "http", "--instances", "100", "--report", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!((report["nodes"].as_u64(), report["verified"].as_u64()), (Some(3), Some(100)), "{report}");
    let instances = report["kept"].as_array().and_then(|kept| kept.iter().find(|t| t["name"] == "instances")).cloned().unwrap_or_default();
    assert_eq!(instances["rows_per_instance"].as_f64(), Some(1.0), "what the run left, as PostgreSQL counts it: {report}");
    assert!(report["database"]["round_trips"].is_number() && report["conflicts_retried"].is_number(), "{report}");
    let refused = baton(&["bench", "--workload", "w1", "--store", "sqlite", "--nodes", "2"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--nodes takes 1, or more with --store postgres"), "{}", String::from_utf8_lossy(&refused.stderr));
}

/// Issue 10, item 5: every route of the API has a CLI form, and every field
/// of it an argument (or a reason why the command sets it itself).
#[test]
fn every_route_and_field_of_the_api_is_reachable_from_the_cli() {
    use clap::CommandFactory;
    use cli::reach::{Carried, REACH};
    let mut root = cli::Cli::command();
    // Global arguments (--tenant) reach every subcommand once the tree is built.
    root.build();
    let mut missing = Vec::new();
    for (method, path, _, body, query) in api::ROUTES {
        let Some((_, _, words, carried)) =
            REACH.iter().find(|(m, p, _, _)| m == method && p == path)
        else {
            missing.push(format!("{method} {path}: no command in cli::reach::REACH"));
            continue;
        };
        let mut command = &root;
        for word in words.split(' ') {
            match command.find_subcommand(word) {
                Some(sub) => command = sub,
                None => {
                    missing.push(format!("{method} {path}: `baton {words}` does not exist"));
                    break;
                }
            }
        }
        let fields = body
            .iter()
            .chain(query.iter())
            .filter(|f| !["after", "limit"].contains(f));
        for field in fields {
            let arg = match carried.iter().find(|(name, _)| name == field) {
                Some((_, Carried::ByCommand(why))) => {
                    assert!(!why.is_empty());
                    continue;
                }
                Some((_, Carried::Arg(arg))) => *arg,
                None => field,
            };
            if !command.get_arguments().any(|a| a.get_id() == arg) {
                missing.push(format!(
                    "{method} {path}: field `{field}` has no argument `{arg}` on `baton {words}`"
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the CLI cannot reach:\n{}",
        missing.join("\n")
    );
}
