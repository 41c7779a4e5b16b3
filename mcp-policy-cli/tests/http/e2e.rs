//! The pinned end-to-end peers the suites drive (`tests/e2e/setup.sh`, through
//! `mcp_policy_test_support::peers`): the official Python SDK's clients, run as scripts that
//! print their steps, and two servers over streamable HTTP, server-everything and the SDK
//! fixture server; with the policies the suites put in front of them.

use std::process::{Command, Stdio};
use std::time::Duration;

use mcp_policy_test_support::http::free_port;
use mcp_policy_test_support::peers::repo;
use mcp_policy_test_support::process::{KillOnDrop, Stderr};
use serde_json::Value;

pub(crate) use mcp_policy_test_support::mcp::{EVERYTHING_POLICY, decision};

/// How long a server may take to say it listens.
const STARTS: Duration = Duration::from_secs(60);

/// The policy in front of the fixture server.
pub(crate) const FIXTURE_POLICY: &str = r#"{"version":"1","default":"allow","tools":{
  "fail":{"action":"deny","reason":"no failing"},
  "echo":{"limits":[{"counter":"e","window":"minute","max":2}]},
  "reject":{"limits":[{"counter":"r","window":"minute","max":1}]},
  "progress":{"action":"approve","reason":"a person checks long jobs"}}}"#;

/// The fixture SDK server's name.
pub(crate) const FIXTURE: &str = "mcp-policy-e2e-fixture";

/// server-everything's name.
pub(crate) const EVERYTHING: &str = "mcp-servers/everything";

/// The SDK's `ClientSession` over streamable HTTP (2025-11-25, with a session).
pub(crate) fn sdk_client(peers: &Value, url: &str, token: &str, args: &[&str]) -> Vec<Value> {
    sdk_script("client_http_gateway.py", peers, url, token, args)
}

/// `mcp.Client` (2026-07-28, or `--mode auto`) over streamable HTTP.
pub(crate) fn sdk_new(peers: &Value, url: &str, token: &str, args: &[&str]) -> Vec<Value> {
    sdk_script("client_new.py", peers, url, token, args)
}

/// [`sdk_new`] as ada (`tok-ada`), running `steps` and approving every elicitation.
pub(crate) fn sdk_new_approving(peers: &Value, url: &str, steps: &Value) -> Vec<Value> {
    let steps = steps.to_string();
    let args = ["--elicit-content", r#"{"approve": true}"#, "steps", &steps];
    sdk_new(peers, url, "tok-ada", &args)
}

/// The steps a Python SDK client script printed (it must have finished its run).
fn sdk_script(name: &str, peers: &Value, url: &str, token: &str, args: &[&str]) -> Vec<Value> {
    let script = repo().join("mcp-policy-cli/tests/e2e").join(name);
    let out = Command::new(peers["E2E_PYTHON"].as_str().unwrap())
        .arg(script)
        .args(args)
        .arg("--")
        .arg(url)
        .env("MCP_GATEWAY_TOKEN", token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["kind"] == "summary"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines.into_iter().filter(|l| l["kind"] == "step").collect()
}

/// server-everything in its streamable-HTTP mode on this port.
pub(crate) fn everything_http_on(peers: &Value, port: &str) -> KillOnDrop {
    let js = peers["E2E_SERVER_EVERYTHING_JS"].as_str().unwrap();
    let mut server = Command::new("node")
        .args([js, "streamableHttp"])
        .env("PORT", port)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read to the end on a thread of its own: the server never blocks on a full pipe.
    let stderr = Stderr::capture(&mut server);
    let ready = stderr.wait_for(STARTS, |l| l.contains("listening on port").then_some(()));
    assert!(ready.is_some(), "server-everything did not start");
    KillOnDrop(server)
}

/// The fixture SDK server over streamable HTTP on a free port (HTTPS with `tls`: certificate
/// and key files); the child and its port.
pub(crate) fn fixture_http(peers: &Value, tls: Option<(&str, &str)>) -> (KillOnDrop, String) {
    let port = free_port().to_string();
    (fixture_http_on(peers, &port, tls), port)
}

/// The fixture SDK server over streamable HTTP on this port.
pub(crate) fn fixture_http_on(peers: &Value, port: &str, tls: Option<(&str, &str)>) -> KillOnDrop {
    let python = peers["E2E_PYTHON"].as_str().unwrap();
    let fixture = peers["E2E_FIXTURE_SERVER"].as_str().unwrap();
    let mut cmd = Command::new(python);
    cmd.args([fixture, "--http", port]);
    if let Some((cert, key)) = tls {
        cmd.args([cert, key]);
    }
    let mut server = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read to the end on a thread of its own: the server never blocks on a full pipe.
    let stderr = Stderr::capture(&mut server);
    let ready = stderr.wait_for(STARTS, |l| l.contains("listening").then_some(()));
    assert!(ready.is_some(), "the fixture server did not start");
    KillOnDrop(server)
}
