//! `mcp-policy proxy` as a subprocess between the test (the client, on real pipes) and a
//! line-level MCP server (`tests/support/line_server.py`, Python's standard library only), for
//! what depends on exact bytes and process lifetimes: passthrough byte for byte, the upstream
//! crashing mid-call, the client closing, signals, malformed and oversized lines, hot reload,
//! refunds, the audit log and the metrics. The registry servers and SDK clients are in `tests/stdio/`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::process::{Stderr, alive, wait_dead, wait_exit};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

fn server_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/line_server.py")
}

/// The proxy under test, with the test as its client.
struct Proxy {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Stderr,
}

const WAIT: Duration = Duration::from_secs(15);

impl Proxy {
    fn start(policy: impl AsRef<Path>, extra: &[&str], server_env: &[(&str, &str)]) -> Proxy {
        let mut cmd = Command::new(BIN);
        cmd.arg("proxy").arg("--policy").arg(policy.as_ref());
        cmd.args(extra);
        cmd.arg("--").arg("python3").arg(server_script());
        for (k, v) in server_env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = Stderr::capture(&mut child);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Proxy {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn send_json(&mut self, v: Value) {
        self.send(&v.to_string());
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("the proxy answered in time")
    }

    /// The next message with this id (other messages are skipped and returned too).
    fn answer(&self, id: Value) -> Value {
        let until = Instant::now() + WAIT;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer with id {id}"));
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("id") == Some(&id) && v.get("method").is_none() {
                return v;
            }
        }
    }

    fn initialize(&mut self) -> Value {
        self.send_json(
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},
            "clientInfo":{"name":"proxy-test","version":"1.0"}}}),
        );
        let answer = self.answer(json!(0));
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        answer
    }

    fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        self.send_json(json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":tool,"arguments":args}}));
        self.answer(json!(id))
    }

    fn close_stdin(&mut self) {
        self.stdin.take();
    }

    fn wait(&mut self) -> Option<i32> {
        wait_exit(&mut self.child, WAIT)
            .expect("the proxy did not exit")
            .code()
    }

    /// What the proxy wrote to stderr since the last call, up to a pause of 200 ms.
    fn stderr_text(&self) -> String {
        self.stderr.fresh(Duration::from_millis(200))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
}

const POLICY: &str = r#"{"version":"1","default":"deny","hide":["secret"],
  "tools":{
    "echo":{"limits":[{"counter":"echo","window":"minute","max":2}]},
    "crash":{}, "fail":{"limits":[{"counter":"fail","window":"minute","max":1}]},
    "toolerr":{"limits":[{"counter":"toolerr","window":"minute","max":1}]}, "slow":{},
    "hold":{}, "release_all":{},
    "transfer":{"action":"approve","reason":"moves money"}}}"#;

#[test]
fn examined_and_passed_through() {
    let t = Temp::new("basic");
    let policy = t.write("p.json", POLICY);
    let log = t.path("server.log");
    let mut p = Proxy::start(&policy, &[], &[("LINE_SERVER_LOG", log.to_str().unwrap())]);
    let init = p.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "line-server");

    // Lines not examined reach the server byte for byte: odd spacing, escapes, key order.
    let odd =
        r#"{ "params" : {"z":1, "a":"\u00e9\n"},"method":"raw/echo","id":"r-1" ,"jsonrpc":"2.0"}"#;
    p.send(odd);
    assert_eq!(p.answer(json!("r-1"))["result"]["raw"], odd);
    // A notification passes too, and what the server sends back reaches the client.
    p.send(r#"{"jsonrpc":"2.0","method":"ping/notify","params":{"level":"info","data":"x"}}"#);
    let note: Value = serde_json::from_str(&p.next_line()).unwrap();
    assert_eq!(note["method"], "notifications/message");
    assert_eq!(note["params"]["data"], "x");

    // tools/list: hidden, denied-by-default and unlisted tools are removed; the rest kept.
    p.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    let list = p.answer(json!(1));
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "crash", "fail", "toolerr", "slow"]);
    assert_eq!(list["result"]["nextCursor"], "page-2");

    // allow, then limit with the retry text and the decision in _meta.
    assert_eq!(text(&p.call(2, "echo", json!({"m": 1}))), r#"{"m": 1}"#);
    assert_eq!(text(&p.call(3, "echo", json!({"m": 2}))), r#"{"m": 2}"#);
    let limited = p.call(4, "echo", json!({"m": 3}));
    assert_eq!(limited["result"]["isError"], true);
    assert!(text(&limited).ends_with("(retry in 60 s)"), "{limited}");
    let decision = &limited["result"]["_meta"]["io.mcp-policy/decision"];
    assert_eq!(decision["decision"], "limit");
    assert_eq!(decision["counter"], "echo");

    // Hidden: unknown. Unlisted under default deny: a tool error saying so.
    let hidden = p.call(5, "secret", json!({}));
    assert_eq!(
        hidden["error"],
        json!({"code": -32602, "message": "Unknown tool: secret"})
    );
    let unlisted = p.call(6, "nope", json!({}));
    assert_eq!(unlisted["result"]["isError"], true);

    // Malformed and oversized lines get parse errors; the proxy keeps going.
    p.send("this is not json");
    assert_eq!(p.answer(Value::Null)["error"]["code"], -32700);
    p.send(&format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"raw/echo","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5 << 20)
    ));
    let big = p.answer(Value::Null);
    assert_eq!(big["error"]["code"], -32700);
    assert!(
        big["error"]["message"]
            .as_str()
            .unwrap()
            .contains("size limit")
    );
    p.send(r#"[{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo"}}]"#);
    assert_eq!(p.answer(Value::Null)["error"]["code"], -32600);
    p.send(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"arguments":{}}}"#);
    assert_eq!(p.answer(json!(9))["error"]["code"], -32602);
    assert_eq!(
        p.call(10, "slow", json!({"ms": 1}))["result"]["content"][0]["text"],
        "slow done"
    );

    // Nothing refused ever reached the server.
    p.close_stdin();
    assert_eq!(p.wait(), Some(0));
    let seen = std::fs::read_to_string(&log).unwrap();
    for absent in [
        "secret",
        "nope",
        r#""m":3"#,
        "not json",
        "xxxxxxxx",
        r#""id":9"#,
    ] {
        assert!(
            !seen.contains(absent),
            "{absent} reached the server:\n{seen}"
        );
    }
}

#[test]
fn refunds_follow_the_upstream_outcome_and_the_audit_log_says_so() {
    let t = Temp::new("refund");
    let policy = t.write("p.json", POLICY);
    let audit = t.path("audit.jsonl");
    let mut p = Proxy::start(&policy, &["--audit", audit.to_str().unwrap()], &[]);
    p.initialize();
    // A JSON-RPC error: refunded, so the budget of 1 admits the next call.
    assert_eq!(p.call(1, "fail", json!({}))["error"]["code"], -32000);
    assert_eq!(p.call(2, "fail", json!({}))["error"]["code"], -32000);
    // isError: the tool ran; its charge stays.
    assert_eq!(p.call(3, "toolerr", json!({}))["result"]["isError"], true);
    let limited = p.call(4, "toolerr", json!({}));
    assert_eq!(
        limited["result"]["_meta"]["io.mcp-policy/decision"]["decision"],
        "limit"
    );
    p.close_stdin();
    assert_eq!(p.wait(), Some(0));
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calls: Vec<&Value> = lines.iter().filter(|l| l.get("tool").is_some()).collect();
    assert_eq!(calls.len(), 4, "{lines:?}");
    for c in &calls {
        assert_eq!(c["grant"], "local");
        assert!(c["session"].is_string());
        assert!(c["ts"].as_str().unwrap().ends_with('Z'));
        assert_eq!(c["args_sha256"].as_str().unwrap().len(), 64);
        assert!(c["policy_us"].is_u64() && c["total_us"].is_u64());
        assert!(c.get("args").is_none(), "raw arguments only when asked for");
    }
    // sha256("{}")
    assert_eq!(
        calls[0]["args_sha256"],
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(calls[0]["upstream"], "error");
    assert_eq!(calls[0]["refunded"], true);
    assert_eq!(calls[2]["upstream"], "tool_error");
    assert!(calls[2].get("refunded").is_none());
    assert_eq!(calls[3]["decision"], "limit");
    assert!(calls[3].get("upstream").is_none());
    assert!(lines.iter().any(|l| l["event"] == "start"));
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|p| l.contains(p)))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[test]
fn the_stdio_proxy_serves_metrics_on_a_listener_of_their_own() {
    let t = Temp::new("metrics");
    let policy = t.write("p.json", POLICY);
    let mut p = Proxy::start(&policy, &["--metrics", "127.0.0.1:0"], &[]);
    let addr = p
        .stderr
        .wait_for(WAIT, |l| {
            let rest = l.strip_prefix("mcp-policy proxy: metrics at http://")?;
            Some(rest.trim_end_matches("/metrics").to_owned())
        })
        .expect("the metrics address on stderr");
    p.initialize();
    assert_eq!(p.call(1, "fail", json!({}))["error"]["code"], -32000);
    assert_eq!(p.call(2, "toolerr", json!({}))["result"]["isError"], true);
    assert_eq!(
        p.call(3, "toolerr", json!({}))["result"]["_meta"]["io.mcp-policy/decision"]["decision"],
        "limit"
    );
    p.call(4, "nope", json!({}));
    let res = mcp_policy_test_support::http::get(&addr, "/metrics");
    assert_eq!(res.status, 200);
    let m = &res.body;
    let decisions = "mcp_policy_decisions_total";
    assert_eq!(sample(m, decisions, &[r#"verdict="allow""#]), 2.0, "{m}");
    assert_eq!(
        sample(
            m,
            decisions,
            &[r#"verdict="limit""#, r#"rule="/tools/toolerr/limits/0""#]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(m, decisions, &[r#"verdict="deny""#, r#"rule="/default""#]),
        1.0,
        "{m}"
    );
    let upstream = "mcp_policy_upstream_calls_total";
    assert_eq!(sample(m, upstream, &[r#"outcome="error""#]), 1.0, "{m}");
    assert_eq!(
        sample(m, upstream, &[r#"outcome="tool_error""#]),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(m, "mcp_policy_refunds_total", &[r#"kind="tool""#]),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(m, "mcp_policy_limits_hit_total", &[r#"counter="toolerr""#]),
        1.0,
        "{m}"
    );
    assert_eq!(sample(m, "mcp_policy_sessions", &[]), 1.0, "{m}");
    p.close_stdin();
    assert_eq!(p.wait(), Some(0));
    // No HTTP port of its own: `--metrics` needs an address here.
    let out = Command::new(BIN)
        .args([
            "proxy",
            "--policy",
            policy.as_str(),
            "--metrics",
            "--",
            "python3",
        ])
        .arg(server_script())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--metrics: the stdio proxy has no HTTP port"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn upstream_crash_mid_call_answers_the_waiting_calls_and_exits_nonzero() {
    let t = Temp::new("crash");
    let policy = t.write("p.json", POLICY);
    let audit = t.path("audit.jsonl");
    let mut p = Proxy::start(&policy, &["--audit", audit.to_str().unwrap()], &[]);
    let init = p.initialize();
    let server_pid = init["result"]["serverInfo"]["pid"].as_u64().unwrap();
    p.send_json(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{"ms":5000}}}));
    p.send_json(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crash"}}));
    let a = p.answer(json!(1));
    assert_eq!(a["error"]["code"], -32603, "{a}");
    let exit = p.wait();
    assert_ne!(exit, Some(0));
    assert!(wait_dead(server_pid));
    let audit = std::fs::read_to_string(&audit).unwrap();
    assert!(audit.contains(r#""upstream":"gone""#), "{audit}");
    assert!(p.stderr_text().contains("the MCP server exited"));
}

#[test]
fn client_closing_delivers_in_flight_answers_and_leaves_no_orphan() {
    let t = Temp::new("close");
    let policy = t.write("p.json", POLICY);
    let mut p = Proxy::start(&policy, &[], &[]);
    let init = p.initialize();
    let server_pid = init["result"]["serverInfo"]["pid"].as_u64().unwrap();
    assert!(alive(server_pid));
    p.send_json(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{"ms":300}}}));
    p.close_stdin();
    // The answer in flight still arrives after the client closed its side.
    assert_eq!(text(&p.answer(json!(1))), "slow done");
    assert_eq!(p.wait(), Some(0));
    assert!(
        wait_dead(server_pid),
        "the upstream {server_pid} was left running"
    );
}

#[test]
fn sigterm_stops_the_proxy_and_its_upstream() {
    let t = Temp::new("term");
    let policy = t.write("p.json", POLICY);
    let mut p = Proxy::start(&policy, &[], &[]);
    let init = p.initialize();
    let server_pid = init["result"]["serverInfo"]["pid"].as_u64().unwrap();
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(p.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(p.wait(), Some(0));
    assert!(
        wait_dead(server_pid),
        "the upstream {server_pid} was left running"
    );
}

#[test]
fn hot_reload_keeps_counters_and_a_broken_edit_keeps_the_old_policy() {
    let t = Temp::new("reload");
    let policy = t.write("p.json", POLICY);
    let audit = t.path("audit.jsonl");
    let mut p = Proxy::start(&policy, &["--audit", audit.to_str().unwrap()], &[]);
    p.initialize();
    let a = p.call(1, "echo", json!({}));
    assert!(a["result"]["isError"].is_null(), "{a}");
    // Raise the max; same counter, window and reset: the one use is kept.
    std::fs::write(&policy, POLICY.replace(r#""max":2}]},"#, r#""max":3}]},"#)).unwrap();
    let until = Instant::now() + WAIT;
    loop {
        let audit_text = std::fs::read_to_string(&audit).unwrap_or_default();
        if audit_text.contains(r#""event":"reload""#) {
            break;
        }
        assert!(Instant::now() < until, "no reload logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let a = p.call(2, "echo", json!({}));
    assert!(a["result"]["isError"].is_null(), "{a}");
    // Two used of three; the next is the last.
    let a = p.call(3, "echo", json!({}));
    assert!(a["result"]["isError"].is_null(), "{a}");
    let a = p.call(4, "echo", json!({}));
    assert_eq!(a["result"]["isError"], true, "{a}");

    // A broken edit: reported, and the running policy stays.
    std::fs::write(
        &policy,
        r#"{"version":"1","default":"allow","tools":{"echo":{"limit":[]}}}"#,
    )
    .unwrap();
    let until = Instant::now() + WAIT;
    loop {
        let audit_text = std::fs::read_to_string(&audit).unwrap_or_default();
        // The watcher may also catch the file half-written (truncated, then written): that
        // is rejected too; the test waits for the rejection of the finished edit.
        if audit_text.contains(r#""event":"reload_rejected""#)
            && audit_text.contains("unknown field `limit`")
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "no rejected reload logged:\n{audit_text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let hidden = p.call(5, "secret", json!({}));
    assert_eq!(
        hidden["error"]["code"], -32602,
        "the old policy still hides it"
    );
    p.close_stdin();
    assert_eq!(p.wait(), Some(0));
    let err = p.stderr_text();
    assert!(err.contains("the running policy stays"), "{err}");
}

/// Read system calls the process made so far (`syscr` in /proc/PID/io).
fn read_calls(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("syscr:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn an_idle_proxy_does_not_keep_reading_its_policy() {
    // The watcher's own reads of the policy (open, read, close) are events in the watched
    // directory too; taken for edits, they made it re-read the file every 50 ms, forever.
    let t = Temp::new("idle");
    let policy = t.write("p.json", POLICY);
    let mut p = Proxy::start(&policy, &[], &[]);
    p.initialize();
    // Touch the directory once, so that the watcher reads the policy at least once.
    t.write("other.txt", "x");
    std::thread::sleep(Duration::from_millis(500));
    let pid = p.child.id();
    let before = read_calls(pid);
    std::thread::sleep(Duration::from_millis(1500));
    let reads = read_calls(pid) - before;
    // Looping, it made about 4 reads per re-read, 20 re-reads a second (over 100 here).
    assert!(reads < 20, "{reads} reads in 1.5 s of idleness");
    // And an edit is still seen.
    std::fs::write(&policy, POLICY.replace(r#""max":2}]},"#, r#""max":3}]},"#)).unwrap();
    let until = Instant::now() + WAIT;
    while !p.stderr_text().contains("reloaded") {
        assert!(Instant::now() < until, "the edit was not seen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unusable_policy_or_command_exits_2() {
    let t = Temp::new("bad");
    let policy = t.write("p.json", r#"{"version":"2","default":"deny"}"#);
    let o = Command::new(BIN)
        .args(["proxy", "--policy"])
        .arg(&policy)
        .args(["--", "python3", "-c", "pass"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("p.json:1:12: /version"), "{err}");
    let good = t.write("ok.json", POLICY);
    let o = Command::new(BIN)
        .args(["proxy", "--policy"])
        .arg(&good)
        .args(["--", "/nonexistent/server"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot start"));
    assert!(o.stdout.is_empty(), "stdout carries protocol messages only");
}

/// The proxy's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn memory_stays_bounded_with_thousands_in_flight() {
    let t = Temp::new("inflight");
    let policy = t.write("p.json", POLICY);
    let mut p = Proxy::start(&policy, &[], &[]);
    p.initialize();
    let before = rss_kib(p.child.id());
    let n = 5000u64;
    for id in 1..=n {
        p.send_json(json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":"hold","arguments":{"n":id}}}));
    }
    // Every call is in flight at the server; the proxy holds one small record each.
    p.send_json(json!({"jsonrpc":"2.0","id":n + 1,"method":"tools/call",
        "params":{"name":"release_all","arguments":{}}}));
    let mut answered = 0u64;
    let mut during = 0;
    loop {
        let v: Value = serde_json::from_str(&p.next_line()).unwrap();
        if v["id"] == json!(n + 1) {
            assert_eq!(text(&v), n.to_string());
            break;
        }
        if answered == 0 {
            // Measured while the answers stream back: everything is still in flight.
            during = rss_kib(p.child.id());
        }
        assert_eq!(text(&v), "released");
        answered += 1;
    }
    assert_eq!(answered, n);
    assert!(
        during < before + 32 * 1024,
        "{n} calls in flight took {} KiB",
        during - before
    );
}

#[test]
fn a_client_that_never_reads_does_not_grow_the_proxy() {
    let t = Temp::new("noread");
    let policy = t.write("p.json", POLICY);
    let mut cmd = Command::new(BIN);
    cmd.arg("proxy").arg("--policy").arg(&policy);
    cmd.arg("--").arg("python3").arg(server_script());
    // stdout piped and never read: the proxy's writes block once the pipe is full.
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // 2,000 answers of 64 KiB each: 128 MiB the proxy would have to keep if it buffered.
        let pad = "x".repeat(64 * 1024);
        for id in 1..=2000u64 {
            let line = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                "params":{"name":"echo","arguments":{"pad":pad}}})
            .to_string();
            if stdin.write_all(line.as_bytes()).is_err() || stdin.write_all(b"\n").is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let rss = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = writer.join();
    assert!(rss < 48 * 1024, "the proxy grew to {rss} KiB");
}

#[test]
fn a_flood_of_pipelined_calls_is_answered_in_full() {
    // Both pipes fill at once: the proxy writes calls to the upstream while the upstream
    // writes answers back. Neither direction may wait on the other (a deadlock here once).
    let t = Temp::new("flood");
    let policy = t.write("p.json", r#"{"version":"1","default":"allow"}"#);
    let n = 20_000u64;
    let mut input = String::new();
    input.push_str(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"flood","version":"1"}}})
        .to_string());
    input.push('\n');
    for id in 1..=n {
        input.push_str(
            &json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":"echo","arguments":{"pad":"x".repeat(100)}}})
            .to_string(),
        );
        input.push('\n');
    }
    let calls = t.write("calls.jsonl", &input);
    let mut child = Command::new(BIN)
        .arg("proxy")
        .arg("--policy")
        .arg(&policy)
        .arg("--")
        .arg("python3")
        .arg(server_script())
        .stdin(std::fs::File::open(&calls).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let answered = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("xxxxxxxxxx"))
            .count();
        let _ = tx.send(answered);
    });
    let answered = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answered, Ok(n as usize));
}
