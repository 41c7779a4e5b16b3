//! `mcp-policy proxy` (stdio) between real MCP clients and real MCP servers, all from the
//! registries and pinned (`tests/e2e/setup.sh` installs them into `target/e2e` on first use).
//! One binary in two suites: `tools` (tool calls, approvals, real servers, the Inspector) and
//! `surface` (resources, prompts, completion, subscriptions, annotations, `list_changed`);
//! this file is their harness:
//!
//! - clients: the official Python SDK (`ClientSession` over `stdio_client`, 2025-11-25; and
//!   `mcp.Client` in `2026-07-28` and `auto` modes), and the MCP Inspector's CLI;
//! - servers: `@modelcontextprotocol/server-everything` and `server-filesystem` (npm),
//!   `mcp-server-time` and `mcp-server-git` (PyPI).
//!
//! Without Python or Node these tests are skipped with a loud message, except in CI (the
//! `CI` environment variable set), where a missing part fails them.

use std::process::Command;

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::mcp::{
    EVERYTHING_POLICY, audit_records, decision, error_decision, text,
};
use mcp_policy_test_support::peers::{peer, peers};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

/// What a client script printed: its connect line, its steps, its summary.
struct Run {
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    fn steps(&self) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["kind"] == "step").collect()
    }
    fn step(&self, n: usize) -> &Value {
        self.steps()
            .get(n)
            .copied()
            .unwrap_or_else(|| panic!("no step {n}: {:#?}\n{}", self.lines, self.stderr))
    }
    fn connect(&self) -> &Value {
        self.lines
            .iter()
            .find(|l| l["kind"] == "connect")
            .unwrap_or_else(|| panic!("no connect line: {:#?}\n{}", self.lines, self.stderr))
    }
}

/// Runs a client script with `args` in front of `proxy -- server`.
fn client(peers: &Value, script: &str, args: &[&str], proxy: &[String], server: &[String]) -> Run {
    let mut cmd = Command::new(peer(peers, "E2E_PYTHON"));
    cmd.arg(peer(peers, script))
        .args(args)
        .arg("--")
        .arg(BIN)
        .arg("proxy");
    cmd.args(proxy).arg("--").args(server);
    let out = cmd.output().expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Run {
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn everything(peers: &Value) -> Vec<String> {
    vec![peer(peers, "E2E_SERVER_EVERYTHING"), "stdio".into()]
}

/// Names in a list step's field.
fn names<'a>(step: &'a Value, field: &str) -> Vec<&'a str> {
    step[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {step}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

mod surface;
mod tools;
