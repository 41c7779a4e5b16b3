//! The command on a shared Redis store: `eval --store`, `proxy --store` and `approve`, as
//! subprocesses, against a real `redis-server` each test starts on a free loopback port.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::redis::RedisServer;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

const POLICY: &str = r#"{"version":"1","default":"deny","tools":{
  "scan":{"limits":[{"counter":"scan","window":"minute","max":10}]},
  "echo":{"limits":[{"counter":"echo","window":"minute","max":2}]},
  "transfer":{"action":"approve","reason":"moves money"}}}"#;

#[test]
fn two_eval_processes_share_one_budget() {
    let redis = RedisServer::start();
    let dir = Temp::new("eval");
    let policy = dir.join("p.json");
    std::fs::write(&policy, POLICY).unwrap();
    // Both replays run at once, 15 calls each, all inside one minute: 10 admitted in all.
    let input: String = (0..15)
        .map(|i| {
            format!(
                "{{\"tool\":\"scan\",\"grant\":\"alice\",\"at\":{}}}\n",
                1_763_712_000_000u64 + i
            )
        })
        .collect();
    let spawn = || {
        let mut child = Command::new(BIN)
            .args(["eval", "--store", &redis.url(), "--policy"])
            .arg(&policy)
            .env("MCP_POLICY_REDIS_PREFIX", "eval-test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child
    };
    let (a, b) = (spawn(), spawn());
    let mut allowed = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            match v["decision"].as_str() {
                Some("allow") => allowed += 1,
                Some("limit") => assert!(v["retry_after_ms"].as_u64().unwrap() > 0),
                other => panic!("unexpected {other:?}: {v}"),
            }
        }
    }
    assert_eq!(allowed, 10);
}

#[test]
fn approve_exit_codes() {
    let redis = RedisServer::start();
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    let o = run(&[
        "approve",
        "ap-00000000000000000000000000000000",
        "--store",
        &redis.url(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown or expired approval id"));
    let o = run(&["approve", "ap-1", "--store", "memory"]);
    assert_eq!(o.status.code(), Some(2));
    let port = RedisServer::free_port();
    let o = run(&[
        "approve",
        "ap-1",
        "--store",
        &format!("redis://127.0.0.1:{port}"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("could not connect to redis"));
}

/// A proxy in front of the line-level test server, on the shared store.
struct Proxy {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Proxy {
    fn start(policy: &PathBuf, store: &str) -> Proxy {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/line_server.py");
        let mut child = Command::new(BIN)
            .args(["proxy", "--store", store, "--policy"])
            .arg(policy)
            .arg("--")
            .arg("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut p = Proxy { child, lines };
        p.send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}));
        p.answer(0);
        p
    }
    fn send(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }
    fn answer(&mut self, id: u64) -> Value {
        for line in self.lines.by_ref() {
            let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
            if v["id"] == json!(id) {
                return v;
            }
        }
        panic!("the proxy closed before answering {id}");
    }
    fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        self.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}}));
        self.answer(id)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn proxies_share_budgets_and_out_of_band_approvals() {
    let redis = RedisServer::start();
    let dir = Temp::new("proxy");
    let policy = dir.join("p.json");
    std::fs::write(&policy, POLICY).unwrap();
    let url = redis.url();
    let mut a = Proxy::start(&policy, &url);
    let mut b = Proxy::start(&policy, &url);

    // One budget of 2 per minute for the grant, across both proxies.
    assert!(a.call(1, "echo", json!({}))["result"]["isError"].is_null());
    assert!(b.call(1, "echo", json!({}))["result"]["isError"].is_null());
    let limited = a.call(2, "echo", json!({}));
    assert_eq!(
        limited["result"]["_meta"]["io.mcp-policy/decision"]["decision"],
        "limit"
    );

    // No elicitation on this client: the answer says how an operator approves.
    let held = a.call(3, "transfer", json!({"amount": 5}));
    let text = held["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = held["result"]["_meta"]["io.mcp-policy/decision"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains(&format!("mcp-policy approve {id} --store {url}")),
        "{text}"
    );
    let o = Command::new(BIN)
        .args(["approve", &id, "--store", &url])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Recorded in the shared store: the identical call goes through on the other proxy, once.
    let through = b.call(2, "transfer", json!({"amount": 5}));
    assert_eq!(
        through["result"]["content"][0]["text"], r#"{"amount": 5}"#,
        "{through}"
    );
    let again = a.call(4, "transfer", json!({"amount": 5}));
    assert_eq!(
        again["result"]["_meta"]["io.mcp-policy/decision"]["decision"],
        "approve"
    );
}
