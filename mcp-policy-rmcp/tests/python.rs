//! The example server (`examples/guarded.rs`) driven by the official Python SDK (`mcp`,
//! pinned by `mcp-policy-cli/tests/e2e/setup.sh`), over stdio and over streamable HTTP with
//! bearer tokens: allow, deny, limit, hidden, list filtering, approval by elicitation
//! (2025-11-25) and by `input_required` (2026-07-28), two tokens with separate budgets, and a
//! bad token refused with 401.
//!
//! Without python3 these tests are skipped with a loud message, except in CI (the `CI`
//! environment variable set), where they fail. Everything listens on 127.0.0.1 only and every
//! process is bounded in time and stopped by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mcp_policy_test_support::peers::{peers, repo};
use serde_json::{Value, json};

struct Env {
    python: String,
    scripts: PathBuf,
    example: PathBuf,
}

/// The venv (setup.sh, once) and the example binary (built once).
fn env() -> Option<&'static Env> {
    static ENV: OnceLock<Option<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        // The pinned Python SDK (setup.sh, once; it needs Node too, for the npm parts).
        let paths = peers()?;
        // The example, built by the same cargo with the same profile.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "-p",
            "mcp-policy-rmcp",
            "--example",
            "guarded",
            "--message-format=json",
        ]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let out = build
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo build runs");
        assert!(out.status.success(), "building the example failed");
        let example = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["target"]["name"] == "guarded")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("the example's executable");
        Some(Env {
            python: paths["E2E_PYTHON"].as_str().unwrap().to_owned(),
            scripts: repo().join("mcp-policy-cli/tests/e2e"),
            example,
        })
    })
    .as_ref()
}

/// A child process killed on drop.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example over HTTP on a free loopback port, with tokens `a` (alice) and `b` (bob).
fn http_server(env: &Env) -> (Kill, String) {
    let mut child = Command::new(&env.example)
        .args([
            "http", "--port", "0", "--token", "a=alice", "--token", "b=bob",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let kill = Kill(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the listening line")
        .to_owned();
    (kill, url)
}

/// Runs a client script (bounded by `timeout`), returns its summary and steps.
fn run(
    env: &Env,
    script: &str,
    args: &[&str],
    steps: &Value,
    target: &[&str],
) -> (Value, Vec<Value>) {
    let mut child = Command::new(&env.python)
        .arg(env.scripts.join(script))
        .args(["--timeout", "10", "--total-timeout", "30"])
        .args(args)
        .arg("steps")
        .arg(steps.to_string())
        .arg("--")
        .args(target)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{script} ran over 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let lines: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summary = lines
        .iter()
        .find(|l| l["kind"] == "summary")
        .cloned()
        .unwrap_or_else(|| panic!("no summary from {script}:\n{out}\n{err}"));
    assert_eq!(summary["ok"], true, "{script}: {summary:#}\n{out}\n{err}");
    let steps = lines.into_iter().filter(|l| l["kind"] == "step").collect();
    (summary, steps)
}

/// The common scenario: list filtering, allow, deny, hidden, limit, approval by elicitation.
fn legacy_steps() -> Value {
    json!([
        {"op": "list-tools", "expect": {"tools": ["echo", "scan", "transfer"], "no_tools": ["drop_db", "stop_scan"]}},
        {"op": "call", "name": "echo", "args": {"text": "hi"}, "expect": {"status": "ok", "text": "hi"}},
        {"op": "call", "name": "stop_scan", "expect": {"status": "is-error",
            "text": ["Stopping scans breaks compliance monitoring", "\"decision\": \"deny\"", "io.mcp-policy/decision"]}},
        {"op": "call", "name": "drop_db", "expect": {"status": "error", "code": -32602, "text": "Unknown tool: drop_db"}},
        {"op": "call", "name": "scan", "expect": {"status": "ok"}},
        {"op": "call", "name": "scan", "expect": {"status": "ok"}},
        {"op": "call", "name": "scan", "expect": {"status": "is-error", "text": ["\"decision\": \"limit\"", "retry in"]}},
        {"op": "call", "name": "transfer", "args": {"amount": 5},
            "expect": {"status": "ok", "text": "transferred 5", "elicitations": 1}}
    ])
}

#[test]
fn stdio_2025_11_25() {
    let Some(env) = env() else { return };
    let example = env.example.to_string_lossy().into_owned();
    let (summary, _) = run(
        env,
        "client_legacy.py",
        &[],
        &legacy_steps(),
        &[&example, "stdio"],
    );
    assert_eq!(summary["protocol_version"], "2025-11-25");
}

#[test]
fn stdio_2026_07_28_input_required() {
    let Some(env) = env() else { return };
    let example = env.example.to_string_lossy().into_owned();
    let steps = json!([
        {"op": "call", "name": "echo", "args": {"text": "hi"}, "expect": {"status": "ok"}},
        {"op": "call", "name": "stop_scan", "expect": {"status": "is-error", "text": "\"decision\": \"deny\""}},
        {"op": "call", "name": "drop_db", "expect": {"status": "error", "code": -32602}},
        // Answered by the SDK's input_required driver: the elicitation, then the retry.
        {"op": "call", "name": "transfer", "args": {"amount": 5},
            "expect": {"status": "ok", "text": "transferred 5", "elicitations": 1}}
    ]);
    let (summary, steps) = run(
        env,
        "client_new.py",
        &["--mode", "2026-07-28"],
        &steps,
        &[&example, "stdio"],
    );
    assert_eq!(summary["protocol_version"], "2026-07-28");
    let wire = steps[3]["events"]["wire"].to_string();
    assert!(
        wire.contains("input_required") && wire.contains("requestState"),
        "{wire}"
    );
    // Declined: one question, then the call is answered as not approved.
    let declined = json!([
        {"op": "call", "name": "transfer", "args": {"amount": 6},
            "expect": {"status": "is-error", "text": "not approved: the user declined", "elicitations": 1}}
    ]);
    run(
        env,
        "client_new.py",
        &["--mode", "2026-07-28", "--elicit", "decline"],
        &declined,
        &[&example, "stdio"],
    );
}

#[test]
fn http_tokens_budgets_and_both_eras() {
    let Some(env) = env() else { return };
    let (_server, url) = http_server(env);

    // A bad token, and none: 401 before MCP sees the request.
    for auth in ["Authorization: Bearer nope\r\n", ""] {
        assert_eq!(status_of(&url, auth), 401, "{auth:?}");
    }

    // alice (token a), 2025-11-25: the whole scenario, her scan budget used up.
    run(
        env,
        "client_http.py",
        &["--token", "a"],
        &legacy_steps(),
        &[&url],
    );
    let third_scan =
        json!([{"op": "call", "name": "scan", "expect": {"status": "is-error", "text": "limit"}}]);
    run(
        env,
        "client_http.py",
        &["--token", "a"],
        &third_scan,
        &[&url],
    );

    // bob (token b) has a budget of his own, and approves through input_required (2026-07-28).
    let bob = json!([
        {"op": "call", "name": "scan", "expect": {"status": "ok"}},
        {"op": "call", "name": "scan", "expect": {"status": "ok"}},
        {"op": "call", "name": "scan", "expect": {"status": "is-error", "text": "limit"}},
        {"op": "call", "name": "transfer", "args": {"amount": 7},
            "expect": {"status": "ok", "text": "transferred 7", "elicitations": 1}},
        {"op": "call", "name": "drop_db", "expect": {"status": "error", "code": -32602}},
        {"op": "list-tools", "expect": {"tools": ["echo"], "no_tools": ["drop_db", "stop_scan"]}}
    ]);
    let (summary, steps) = run(
        env,
        "client_http.py",
        &["--mode", "2026-07-28", "--token", "b"],
        &bob,
        &[&url],
    );
    assert_eq!(summary["protocol_version"], "2026-07-28");
    let wire = steps[3]["events"]["wire"].to_string();
    assert!(wire.contains("input_required"), "{wire}");
    assert!(wire.contains("Caller: bob"), "{wire}");

    // The raw input_required answer, as a 2026-07-28 client sees it.
    let raw = json!([{"op": "call", "name": "transfer", "args": {"amount": 9},
        "expect": {"status": "input-required", "text": ["io.mcp-policy/state/", "\"decision\": \"approve\""]}}]);
    run(
        env,
        "client_http.py",
        &[
            "--mode",
            "2026-07-28",
            "--input-required",
            "raw",
            "--token",
            "b",
        ],
        &raw,
        &[&url],
    );
}

/// The HTTP status of a POST to `url` with the `auth` header line.
fn status_of(url: &str, auth: &str) -> u16 {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
