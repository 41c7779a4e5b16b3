//! The `mcp-policy` command, run as a subprocess: real binary, real files, real pipes. One
//! binary in suites, one a command (this file is their harness).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::peers::repo;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

/// Starts the binary in the repository root with all three standard streams piped.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = spawn(args);
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The command may exit before reading (an unusable policy): a broken pipe is fine.
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const SCANNER: &str = "examples/policies/security-scanner.json";

mod check;
mod eval;
mod explain;
mod scaffold;
mod schema;
mod sections;
mod test_files;
