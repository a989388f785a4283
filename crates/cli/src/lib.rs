//! The `baton` command line: argv is parsed here and nowhere else.
//!
//! Data goes to stdout, messages to stderr; every command exits non-zero on
//! failure. The commands themselves live in the other crates; this one only
//! parses, validates and prints.

pub mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "baton", version, about = "Baton, a durable workflow engine for BPMN 2.0")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check BPMN files: print every problem with its code, element and line:column.
    Validate {
        /// BPMN files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run scenario files (*.yaml) against the engine with a virtual clock.
    Test {
        /// Scenario files or folders holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print one JSON object per scenario instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate { files, json } => validate::run(&files, json),
        Command::Test { paths, json } => test(&paths, json),
    }
}

fn test(paths: &[PathBuf], json: bool) -> i32 {
    let files = match scenario::collect(paths) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("baton test: {message}");
            return 2;
        }
    };
    if files.is_empty() {
        eprintln!("baton test: no scenario files (*.yaml) under the given paths");
        return 2;
    }
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        for outcome in scenario::run_file(file) {
            if outcome.passed {
                passed += 1;
            } else {
                failed += 1;
            }
            if json {
                println!("{}", serde_json::to_string(&outcome).expect("an outcome serializes"));
            } else {
                println!("{}", outcome.line());
            }
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    if json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    i32::from(failed > 0)
}
