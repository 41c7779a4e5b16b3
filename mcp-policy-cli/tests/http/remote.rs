//! A remote upstream (`--upstream URL`): servers that forget their sessions (`404`, or `400`
//! and a refused `ping`), a scripted server's `400` in a session it still knows, a client that
//! leaves before the answer, HTTPS trust (`--upstream-ca`, the system roots), an unreachable
//! server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::http::{free_port, http};
use mcp_policy_test_support::peers::peers;
use serde_json::{Value, json};

use crate::e2e::{
    EVERYTHING, EVERYTHING_POLICY, FIXTURE, FIXTURE_POLICY, everything_http_on, fixture_http,
    fixture_http_on, sdk_client, sdk_new,
};
use crate::gateway::{
    BIN, Gateway, POLICY, audit_records, call, initialize, post_and_leave, session_with, text,
};

#[test]
fn a_server_that_forgets_its_session_ends_the_gateways_session() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("forgets");
    let policy = t.write("p.json", FIXTURE_POLICY);
    let (server, port) = fixture_http(peers, None);
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let gw = Gateway::remote(&policy, &upstream, &[]);
    let sid = session_with(&gw.addr, None, FIXTURE);
    let echo = |id| call(&gw.addr, None, &sid, id, "echo", json!({"text": "hi"}));
    assert_eq!(text(&echo(1).answer()), "echo: hi");

    // The server restarts on the same port and knows no session: it answers 404.
    drop(server);
    let server = fixture_http_on(peers, &port, None);
    let answer = echo(2).answer();
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("ended the session"), "{message}");

    // The gateway's session ended with it: its client is told to start a new one (404,
    // as the transport says), and the new one works.
    let until = Instant::now() + Duration::from_secs(5);
    let mut status = echo(3).status;
    while status != 404 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        status = echo(3).status;
    }
    assert_eq!(status, 404);
    let fresh = session_with(&gw.addr, None, FIXTURE);
    let again = call(&gw.addr, None, &fresh, 4, "echo", json!({"text": "again"}));
    assert_eq!(text(&again.answer()), "echo: again");
    assert!(gw.stderr().contains("ended its session"), "{}", gw.stderr());
    drop(gw);
    drop(server);
}

#[test]
fn a_server_that_answers_400_for_a_forgotten_session_ends_the_gateways_session() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("forgets-400");
    let policy = t.write("p.json", EVERYTHING_POLICY);
    let port = free_port().to_string();
    let server = everything_http_on(peers, &port);
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let gw = Gateway::remote(&policy, &upstream, &[]);
    let sid = session_with(&gw.addr, None, EVERYTHING);
    let echo = |sid: &str, id| call(&gw.addr, None, sid, id, "echo", json!({"message": "hi"}));
    assert_eq!(text(&echo(&sid, 1).answer()), "Echo: hi");

    // Restarted on the same port, server-everything knows no session and answers 400 (not
    // 404): the gateway's ping in the session is refused too, so the session ended.
    drop(server);
    let server = everything_http_on(peers, &port);
    let answer = echo(&sid, 2).answer();
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("ended the session (HTTP 400, and to a ping in the session)"),
        "{message}"
    );
    let until = Instant::now() + Duration::from_secs(5);
    let mut status = echo(&sid, 3).status;
    while status != 404 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        status = echo(&sid, 3).status;
    }
    assert_eq!(status, 404);
    let fresh = session_with(&gw.addr, None, EVERYTHING);
    assert_eq!(text(&echo(&fresh, 4).answer()), "Echo: hi");
    drop(gw);
    drop(server);
}

/// A scripted streamable-HTTP server for one failure: it answers `tools/call` with `400` in
/// a session it still knows (so a `ping` in that session works), except a call of `slow`,
/// answered (200) after 600 ms. One request per connection. Counts the pings that name its
/// session; stops when dropped.
struct Scripted400 {
    addr: String,
    pings: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl Scripted400 {
    fn start() -> Scripted400 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let (pings, stop) = (
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (pings2, stop2) = (Arc::clone(&pings), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                serve_one(stream, &pings2);
            }
        });
        Scripted400 { addr, pings, stop }
    }
}

impl Drop for Scripted400 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One request of [`Scripted400`]'s, answered.
fn serve_one(stream: TcpStream, pings: &AtomicU32) {
    const SESSION: &str = "scripted-1";
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (mut length, mut in_session, mut line) = (0, false, String::new());
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = lower.strip_prefix("mcp-session-id:") {
            in_session = v.trim() == SESSION;
        }
        line.clear();
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = message["id"].clone();
    let (status, answer) = match message["method"].as_str() {
        Some("initialize") => (
            "200 OK",
            json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "1"}}}),
        ),
        Some("ping") if in_session => {
            pings.fetch_add(1, Ordering::SeqCst);
            ("200 OK", json!({"jsonrpc": "2.0", "id": id, "result": {}}))
        }
        // A notification (no id): accepted.
        Some(_) if id.is_null() => ("202 Accepted", Value::Null),
        Some("tools/call") if message["params"]["name"] == "slow" => {
            std::thread::sleep(Duration::from_millis(600));
            let text = json!([{"type": "text", "text": "slow done"}]);
            (
                "200 OK",
                json!({"jsonrpc": "2.0", "id": id, "result": {"content": text}}),
            )
        }
        Some(_) => (
            "400 Bad Request",
            json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32600, "message": "Bad Request: scripted"}}),
        ),
        None => ("400 Bad Request", Value::Null),
    };
    let body = if answer.is_null() {
        String::new()
    } else {
        answer.to_string()
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nMcp-Session-Id: {SESSION}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_client_that_leaves_before_the_remote_servers_answer_loses_no_audit() {
    // Memory store, remote server: the call goes up from the request's task. The client
    // hangs up while the server takes 600 ms to answer; the exchange goes on, and the
    // answer is audited.
    let t = Temp::new("leaves-remote");
    let policy = t.write("p.json", FIXTURE_POLICY);
    let audit = t.path("audit.jsonl");
    let audit_s = audit.display().to_string();
    let server = Scripted400::start();
    let upstream = format!("http://{}/mcp", server.addr);
    let gw = Gateway::remote(&policy, &upstream, &["--audit", &audit_s]);
    let sid = session_with(&gw.addr, None, "scripted");
    // Answered (and nothing else on its way up after it: the next call goes up directly).
    let first = call(&gw.addr, None, &sid, 1, "slow", json!({}));
    assert_eq!(text(&first.answer()), "slow done");
    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
        "params":{"name":"slow","arguments":{}}});
    post_and_leave(&gw.addr, &sid, &body, Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(10);
    let slow = || -> Vec<Value> {
        let all = audit_records(&audit);
        all.into_iter().filter(|r| r["tool"] == "slow").collect()
    };
    while slow().len() < 2 {
        assert!(Instant::now() < deadline, "the call was not audited");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(slow()[1]["upstream"], "ok", "{:?}", slow());
    drop(gw);
    drop(server);
}

#[test]
fn a_400_in_a_session_the_server_still_knows_keeps_the_session() {
    let t = Temp::new("keeps-400");
    let policy = t.write("p.json", FIXTURE_POLICY);
    let server = Scripted400::start();
    let upstream = format!("http://{}/mcp", server.addr);
    let gw = Gateway::remote(&policy, &upstream, &[]);
    let sid = session_with(&gw.addr, None, "scripted");
    for (id, expected_pings) in [(1, 1), (2, 2)] {
        // The call fails as the server said; a ping in its session is answered, so the
        // session goes on: the next call is sent to the server again, not answered 404.
        let res = call(&gw.addr, None, &sid, id, "anything", json!({}));
        assert_eq!(res.status, 200, "{res:?}");
        let answer = res.answer();
        assert_eq!(answer["error"]["code"], -32603, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.ends_with("HTTP 400 Bad Request"), "{message}");
        assert_eq!(server.pings.load(Ordering::SeqCst), expected_pings);
    }
    drop(gw);
}

#[test]
fn https_upstream_trusts_the_system_roots_or_the_given_ca() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("tls");
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = t.write("cert.pem", &made.cert.pem());
    let key = t.write("key.pem", &made.signing_key.serialize_pem());
    let (server, port) = fixture_http(peers, Some((&cert, &key)));
    let policy = t.write("p.json", FIXTURE_POLICY);

    // Trusted through --upstream-ca: both eras work over TLS.
    for host in ["127.0.0.1", "localhost"] {
        let upstream = format!("https://{host}:{port}/mcp");
        let gw = Gateway::start(
            &[
                "--policy",
                &policy,
                "--upstream",
                &upstream,
                "--upstream-ca",
                &cert,
            ],
            &[],
            &[],
        );
        let url = format!("http://{}/mcp", gw.addr);
        let steps = json!([{"op": "call", "name": "echo", "args": {"text": "tls"}},
                           {"op": "call", "name": "fail", "args": {"message": "x"}}]);
        let run = sdk_client(peers, &url, "unused", &["steps", &steps.to_string()]);
        assert_eq!(text(&run[0]), "echo: tls", "{host}: {}", run[0]);
        assert_eq!(text(&run[1]), "no failing");
        let run = sdk_new(peers, &url, "unused", &["steps", &steps.to_string()]);
        assert_eq!(text(&run[0]), "echo: tls", "{host}: {}", run[0]);
    }

    // Not trusted (the system's roots only): every request is answered -32603, naming TLS.
    let upstream = format!("https://127.0.0.1:{port}/mcp");
    let gw = Gateway::remote(&policy, &upstream, &[]);
    let init = initialize(&gw.addr, None);
    let answer = init.answer();
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("TLS") && message.contains("certificate"),
        "{message}"
    );
    drop(gw);
    drop(server);

    // --upstream-ca without https, or naming no certificate: the gateway does not start.
    let empty = t.write("empty.pem", "");
    for (url, ca) in [
        ("http://127.0.0.1:1/mcp", cert.as_str()),
        ("https://127.0.0.1:1/mcp", empty.as_str()),
    ] {
        let out = Command::new(BIN)
            .args(["proxy", "--listen", "127.0.0.1:0", "--policy", &policy])
            .args(["--upstream", url, "--upstream-ca", ca])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream-ca"));
    }
}

#[test]
fn upstream_url_unreachable_is_an_error_answer() {
    let t = Temp::new("unreachable");
    let policy = t.write("p.json", POLICY);
    let port = free_port();
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let gw = Gateway::remote(&policy, &upstream, &[]);
    let init = initialize(&gw.addr, None);
    assert_eq!(init.status, 200, "{init:?}");
    let answer = init.answer();
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{answer}"
    );

    // Ended sessions leave no thread behind.
    let threads = || -> usize {
        std::fs::read_to_string(format!("/proc/{}/status", gw.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let open_and_end = || {
        let init = initialize(&gw.addr, None);
        let sid = init.header("mcp-session-id").unwrap().to_owned();
        let gone = http(&gw.addr, "DELETE", &[("Mcp-Session-Id", &sid)], b"");
        assert_eq!(gone.status, 204);
    };
    open_and_end();
    std::thread::sleep(Duration::from_millis(500));
    let before = threads();
    for _ in 0..5 {
        open_and_end();
    }
    let until = Instant::now() + Duration::from_secs(10);
    while threads() > before && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        threads() <= before,
        "{} threads, {before} before",
        threads()
    );
}
