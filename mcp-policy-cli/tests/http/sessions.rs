//! Session lifetimes and the upstreams behind them: DELETE (gone before its `204`), idle
//! sessions and `--max-sessions`, a client hanging up mid-call, hot reload in an open session,
//! SIGTERM during a call (one event loop and two) and SIGKILL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mcp_policy_test_support::http::{http, path_get};
use mcp_policy_test_support::peers::need;
use serde_json::json;

use crate::gateway::{all_gone, call, initialize, pids, session, setup, text};

#[test]
fn delete_and_idle_sessions_stop_their_upstreams() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("sessions");
    let gw = s.gateway(&["--session-idle", "1s", "--max-sessions", "1"]);
    let addr = gw.addr.as_str();
    let sid = session(addr, None);
    assert_eq!(pids(&s.piddir).len(), 1);
    // --max-sessions 1: a second session waits for the first to end.
    assert_eq!(initialize(addr, None).status, 503);
    let gone = http(addr, "DELETE", &[("Mcp-Session-Id", &sid)], b"");
    assert_eq!(gone.status, 204, "{gone:?}");
    assert!(all_gone(&s.piddir, Duration::from_secs(10)));
    assert_eq!(call(addr, None, &sid, 1, "echo", json!({})).status, 404);

    // Idle past --session-idle: ended, its upstream stopped.
    let idle = session(addr, None);
    assert_eq!(pids(&s.piddir).len(), 2);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(all_gone(&s.piddir, Duration::from_secs(10)));
    assert_eq!(call(addr, None, &idle, 1, "echo", json!({})).status, 404);
    assert!(gw.stderr().contains("idle for"), "{}", gw.stderr());
}

#[test]
fn a_sigkilled_gateway_closes_its_upstreams_stdin() {
    // SIGKILL gives the gateway no time to stop its upstreams. The kernel closes its end of
    // their pipes, so a server that ends at the end of its input (as MCP stdio servers do;
    // this one, and server-everything) is gone too.
    if !need(&["python3"]) {
        return;
    }
    let s = setup("sigkill");
    let mut gw = s.gateway(&[]);
    let (a, b) = (session(&gw.addr, None), session(&gw.addr, None));
    assert_ne!(a, b);
    assert_eq!(pids(&s.piddir).len(), 2);
    gw.signal("-KILL");
    assert!(gw.wait(Duration::from_secs(10)).is_some());
    assert!(all_gone(&s.piddir, Duration::from_secs(10)));
}

#[test]
fn sigterm_lets_a_call_in_flight_finish_then_stops_every_upstream() {
    sigterm_while_a_call_runs("sigterm", &["--threads", "1"]);
}

#[test]
fn sigterm_with_two_event_loops() {
    sigterm_while_a_call_runs("sigterm2", &["--threads", "2"]);
}

fn sigterm_while_a_call_runs(name: &str, flags: &[&str]) {
    if !need(&["python3"]) {
        return;
    }
    let s = setup(name);
    let mut gw = s.gateway(flags);
    let addr = gw.addr.clone();
    let sid = session(&addr, None);
    let other_sid = session(&addr, None);
    let started = Instant::now();
    let caller = {
        let addr = addr.clone();
        let sid = sid.clone();
        std::thread::spawn(move || call(&addr, None, &sid, 1, "slow", json!({"ms": 1500})))
    };
    std::thread::sleep(Duration::from_millis(400));
    gw.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    // While the call runs: no new sessions, health says stopping, open sessions still served
    // (a client answering an approval needs that).
    assert_eq!(initialize(&addr, None).status, 503);
    assert_eq!(path_get(&addr, "/healthz"), 503);
    let other = call(&addr, None, &other_sid, 2, "echo", json!({}));
    assert_eq!(text(&other.answer()), "ran echo", "{other:?}");
    let answer = caller.join().unwrap();
    assert_eq!(text(&answer.answer()), "ran slow", "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let status = gw.wait(Duration::from_secs(15)).expect("the gateway exits");
    assert!(status.success(), "{status:?}\n{}", gw.stderr());
    assert!(all_gone(&s.piddir, Duration::from_secs(5)));
    assert_eq!(pids(&s.piddir).len(), 2);
}

#[test]
fn a_client_that_disconnects_mid_call_leaves_the_session_usable_and_policy_reloads() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("disconnect");
    let gw = s.gateway(&[]);
    let addr = gw.addr.as_str();
    let sid = session(addr, None);
    // Send a slow call and hang up before its answer.
    {
        let mut stream = TcpStream::connect(addr).unwrap();
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{"ms":500}}}"#;
        write!(
            stream,
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: {sid}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(700));
    let next = call(addr, None, &sid, 8, "echo", json!({}));
    assert_eq!(text(&next.answer()), "ran echo", "{next:?}");

    // Hot reload: echo denied from now on, in the open session too.
    std::fs::write(
        &s.policy,
        r#"{"version":"1","default":"deny","tools":{"echo":{"action":"deny","reason":"echo is off"}}}"#,
    )
    .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(addr, None, &sid, 9, "echo", json!({})).answer();
        if text(&r) == "echo is off" {
            break;
        }
        assert!(Instant::now() < until, "not reloaded: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A session ended by DELETE leaves the gateway before the `204` is sent: a request that
/// names it right after, on the same keep-alive connection, is answered `404` and never
/// reaches the server (it used to be forwarded in about half of the tries).
#[test]
fn a_deleted_session_is_gone_before_its_204() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("deleted");
    let gw = s.gateway(&[]);
    let addr = gw.addr.as_str();
    for round in 0..10 {
        let sid = session(addr, None);
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
            "params":{"name":"echo","arguments":{}}})
        .to_string();
        // Both requests in one write: the second is read as soon as the first is answered.
        let requests = format!(
            "DELETE /mcp HTTP/1.1\r\nHost: {addr}\r\nMcp-Session-Id: {sid}\r\n\
             Content-Length: 0\r\n\r\n\
             POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMcp-Session-Id: {sid}\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{call}",
            call.len()
        );
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(requests.as_bytes()).unwrap();
        let mut raw = String::new();
        let _ = stream.read_to_string(&mut raw);
        let statuses: Vec<&str> = raw
            .split("\r\n")
            .filter(|line| line.starts_with("HTTP/1.1 "))
            .collect();
        assert_eq!(
            statuses,
            ["HTTP/1.1 204 No Content", "HTTP/1.1 404 Not Found"],
            "round {round}: {raw}"
        );
    }
}
