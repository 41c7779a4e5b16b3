//! `--traces`: OpenTelemetry spans over OTLP/HTTP, received by a small OTLP receiver in
//! Python that decodes them with the official messages (`tests/e2e/otlp_receiver.py`,
//! `opentelemetry-proto` pinned): each decided call is a span in the caller's trace (from
//! `params._meta.traceparent` or the `traceparent` header), the server gets the gateway's
//! span as its parent, no argument reaches a span, and the last spans are exported on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::http::{Resp, http};
use mcp_policy_test_support::peers::{peers, repo};
use mcp_policy_test_support::process::KillOnDrop;
use serde_json::{Value, json};

use crate::gateway::{ACCEPT, Gateway, session, setup, text};

/// The receiver, writing the spans it gets to `file`; its port.
fn receiver(python: &str, file: &Path) -> (KillOnDrop, u16) {
    let script = repo().join("mcp-policy-cli/tests/e2e/otlp_receiver.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the receiver did not start: {line:?}"));
    (KillOnDrop(child), port)
}

/// The spans received so far.
fn spans(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (up to 15 s) until `n` spans were received.
fn spans_at_least(file: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = spans(file);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} spans of {n}: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `tools/call` with `meta` as its `params._meta` and `headers` besides the session's.
fn traced_call(
    addr: &str,
    sid: &str,
    (id, tool): (u64, &str),
    meta: Option<Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut params = json!({"name": tool, "arguments": {"note": "hunter2"}});
    if let Some(meta) = meta {
        params["_meta"] = meta;
    }
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params});
    let auth = "Bearer tok-alice";
    let mut all = vec![ACCEPT, ("Mcp-Session-Id", sid), ("Authorization", auth)];
    all.extend_from_slice(headers);
    http(addr, "POST", &all, body.to_string().as_bytes())
}

fn span_of<'a>(spans: &'a [Value], trace: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["trace_id"] == trace)
        .unwrap_or_else(|| panic!("no span in trace {trace}: {spans:?}"))
}

/// The span id the server was given as its parent, from the mini server's answer.
fn forwarded(answer: &Value) -> (String, String) {
    let text = text(answer);
    let tp = text
        .split_once(" traceparent=")
        .unwrap_or_else(|| panic!("no traceparent reached the server: {text}"))
        .1;
    let parts: Vec<&str> = tp.split('-').collect();
    (parts[1].to_owned(), parts[2].to_owned())
}

#[test]
fn each_decision_is_a_span_in_the_callers_trace_and_the_server_continues_it() {
    let Some(peers) = peers() else {
        return;
    };
    let python = peers["E2E_PYTHON"].as_str().unwrap();
    let t = Temp::new("traces");
    let out = t.path("spans.jsonl");
    let (_receiver, port) = receiver(python, &out);
    let s = setup("traces-gw");
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("PIDDIR", s.piddir.to_str().unwrap()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", "gw-under-test"),
    ];
    let gw = Gateway::start(
        &["--policy", &s.policy, "--keys", &s.keys, "--traces"],
        &["python3", &s.server],
        &env,
    );
    let sid = session(&gw.addr, Some("tok-alice"));

    // 1. In the caller's trace by `_meta` (SEP-414); the server's parent is the gateway's span.
    let (t1, p1) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let tp1 = format!("00-{t1}-{p1}-01");
    let a1 = traced_call(
        &gw.addr,
        &sid,
        (1, "echo"),
        Some(json!({"traceparent": tp1})),
        &[],
    )
    .answer();
    let (seen_trace, seen_parent) = forwarded(&a1);
    assert_eq!(seen_trace, t1, "{a1}");
    assert_ne!(
        seen_parent, p1,
        "the server's parent is the gateway's own span"
    );
    // 2. A denial, in its caller's trace.
    let t2 = "4bf92f3577b34da6a3ce929d0e0e4736";
    let tp2 = format!("00-{t2}-00f067aa0ba902b7-01");
    let a2 = traced_call(
        &gw.addr,
        &sid,
        (2, "rm"),
        Some(json!({"traceparent": tp2})),
        &[],
    )
    .answer();
    assert_eq!(a2["result"]["isError"], true, "{a2}");
    // 3. The HTTP header, when the message carries no trace of its own.
    let (t3, p3) = ("5b8aa5a2d2c872e8321cf37308d69df2", "051581bf3cb55c13");
    let tp3 = format!("00-{t3}-{p3}-01");
    let a3 = traced_call(&gw.addr, &sid, (3, "echo"), None, &[("traceparent", &tp3)]).answer();
    assert_eq!(forwarded(&a3).0, t3, "{a3}");
    // 4. No trace from the caller: a new one, still continued by the server.
    let a4 = traced_call(&gw.addr, &sid, (4, "echo"), None, &[]).answer();
    let (t4, p4) = forwarded(&a4);

    let got = spans_at_least(&out, 4);
    let s1 = span_of(&got, t1);
    assert_eq!(s1["parent_span_id"], p1);
    assert_eq!(s1["span_id"], seen_parent);
    assert_eq!(s1["name"], "tools/call echo");
    assert_eq!(s1["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(s1["service"], "gw-under-test");
    let attrs = &s1["attributes"];
    assert_eq!(attrs["mcp.method.name"], "tools/call");
    assert_eq!(attrs["gen_ai.tool.name"], "echo");
    assert_eq!(attrs["mcp_policy.decision"], "allow");
    assert_eq!(attrs["mcp_policy.rule"], "/tools/echo");
    assert_eq!(attrs["mcp_policy.upstream"], "ok");
    let s2 = span_of(&got, t2);
    assert_eq!(s2["parent_span_id"], "00f067aa0ba902b7");
    assert_eq!(s2["attributes"]["mcp_policy.decision"], "deny");
    assert_eq!(s2["attributes"]["mcp_policy.rule"], "/default");
    assert_eq!(span_of(&got, t3)["parent_span_id"], p3);
    let s4 = span_of(&got, &t4);
    assert_eq!(
        (s4["span_id"].as_str(), s4["parent_span_id"].as_str()),
        (Some(p4.as_str()), Some(""))
    );
    // Arguments never reach a span.
    let all = std::fs::read_to_string(&out).unwrap();
    assert!(!all.contains("hunter2"), "{all}");
    drop(gw);
}

#[test]
fn the_last_spans_are_exported_when_the_gateway_stops() {
    let Some(peers) = peers() else {
        return;
    };
    let python = peers["E2E_PYTHON"].as_str().unwrap();
    let t = Temp::new("traces-stop");
    let out = t.path("spans.jsonl");
    let (_receiver, port) = receiver(python, &out);
    let s = setup("traces-stop-gw");
    let endpoint = format!("http://127.0.0.1:{port}");
    // Batches every minute: only the stop can export this span in time.
    let env = [
        ("PIDDIR", s.piddir.to_str().unwrap()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
    ];
    let mut gw = Gateway::start(
        &["--policy", &s.policy, "--keys", &s.keys],
        &["python3", &s.server],
        &env,
    );
    let sid = session(&gw.addr, Some("tok-alice"));
    let answer = traced_call(&gw.addr, &sid, (1, "slow"), None, &[]).answer();
    assert!(text(&answer).starts_with("ran slow"), "{answer}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(spans(&out).is_empty(), "exported before the stop");
    gw.signal("-TERM");
    assert!(
        gw.wait(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let got = spans_at_least(&out, 1);
    assert_eq!(got[0]["attributes"]["gen_ai.tool.name"], "slow");
    assert_eq!(got[0]["service"], "mcp-policy");
}
