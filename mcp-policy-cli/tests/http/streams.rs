//! POST streams cut before their answer: resumed with `Last-Event-ID`, at most sixteen kept
//! per session, the oldest dropped first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mcp_policy_test_support::http::http;
use mcp_policy_test_support::peers::need;
use serde_json::{Value, json};

use crate::gateway::{ACCEPT, setup, text};

/// A session of a raw client that declares elicitation (approvals come on its POST streams).
fn elicitation_session(addr: &str) -> String {
    let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},
        "clientInfo":{"name":"raw","version":"0"}}});
    let init = http(addr, "POST", &[ACCEPT], body.to_string().as_bytes());
    let sid = init.header("mcp-session-id").unwrap().to_owned();
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let with_sid = [ACCEPT, ("Mcp-Session-Id", sid.as_str())];
    assert_eq!(http(addr, "POST", &with_sid, note).status, 202);
    sid
}

/// Sends a `tools/call` of `transfer` (which needs approval) on session `sid`, reads the first
/// event of its SSE stream (the gateway's elicitation) and hangs up. Returns that event's id
/// and the elicitation's request id.
fn cut_after_first_event(addr: &str, sid: &str, id: u64) -> (String, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"transfer","arguments":{{"amount":3}}}}}}"#
    );
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: {sid}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    // Until the first event is complete (the body is chunked: the event's blank line is
    // followed by the chunk's CRLF).
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("}\n\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    let event_id = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no event id: {text}"))
        .trim()
        .to_owned();
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let ask: Value = serde_json::from_str(data).unwrap();
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    (event_id, ask["id"].clone())
}

#[test]
fn a_post_stream_cut_before_its_answer_resumes_with_last_event_id() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("resume");
    let gw = s.gateway(&[]);
    let addr = gw.addr.as_str();
    // A client that can answer elicitations: approvals come on the POST's SSE stream.
    let sid = elicitation_session(addr);
    let with_sid = [ACCEPT, ("Mcp-Session-Id", sid.as_str())];

    // The call needs approval: its stream opens with the gateway's elicitation (event id
    // STREAM-0); the client reads that one event and hangs up.
    let (event_id, ask_id) = cut_after_first_event(addr, &sid, 5);
    assert!(event_id.ends_with("-0"), "{event_id}");
    std::thread::sleep(Duration::from_millis(300));

    // The human approves (a POST of its own); the answer waits on the parked stream.
    let yes = json!({"jsonrpc":"2.0","id":ask_id,"result":{"action":"accept","content":{"approve":true}}});
    assert_eq!(
        http(addr, "POST", &with_sid, yes.to_string().as_bytes()).status,
        202
    );
    std::thread::sleep(Duration::from_millis(300));

    // A stream id that is not parked: 404.
    let stream_no = event_id.split('-').next().unwrap();
    let wrong = format!("{}-0", stream_no.parse::<u64>().unwrap() + 100);
    let sse = ("Accept", "text/event-stream");
    let sid_h = ("Mcp-Session-Id", sid.as_str());
    let res = http(addr, "GET", &[sse, sid_h, ("Last-Event-ID", &wrong)], b"");
    assert_eq!(res.status, 404, "{res:?}");
    // Resumed after event 0: the elicitation is not sent again; the answer comes, numbered
    // after it, and the stream ends.
    let res = http(
        addr,
        "GET",
        &[sse, sid_h, ("Last-Event-ID", &event_id)],
        b"",
    );
    assert_eq!(res.status, 200, "{res:?}");
    let messages = res.messages();
    assert_eq!(messages.len(), 1, "{res:?}");
    assert_eq!(messages[0]["id"], 5);
    assert_eq!(text(&messages[0]), "ran transfer", "{res:?}");
    assert!(
        res.body.contains(&format!("id: {stream_no}-1\n")),
        "{res:?}"
    );
    // Taken: it cannot be resumed twice.
    let res = http(
        addr,
        "GET",
        &[sse, sid_h, ("Last-Event-ID", &event_id)],
        b"",
    );
    assert_eq!(res.status, 404, "{res:?}");
}

#[test]
fn at_most_sixteen_cut_streams_are_kept_per_session_the_oldest_dropped_first() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("parked");
    // Held approvals time out after a second: every cut stream then holds its call's answer.
    let gw = s.gateway(&["--approval-timeout", "1s"]);
    let addr = gw.addr.as_str();
    let sid = elicitation_session(addr);
    // 17 streams cut one after another: the first parked is the first dropped.
    let cut: Vec<String> = (0..17u64)
        .map(|i| {
            let (event_id, _) = cut_after_first_event(addr, &sid, 100 + i);
            std::thread::sleep(Duration::from_millis(50));
            event_id
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let sse = ("Accept", "text/event-stream");
    let sid_h = ("Mcp-Session-Id", sid.as_str());
    let res = http(addr, "GET", &[sse, sid_h, ("Last-Event-ID", &cut[0])], b"");
    assert_eq!(res.status, 404, "the oldest was dropped: {res:?}");
    for (i, event_id) in cut.iter().enumerate().skip(1) {
        let res = http(addr, "GET", &[sse, sid_h, ("Last-Event-ID", event_id)], b"");
        assert_eq!(res.status, 200, "stream {i} was kept: {res:?}");
        let messages = res.messages();
        assert_eq!(messages.len(), 1, "{res:?}");
        assert_eq!(messages[0]["id"], 100 + i as u64, "{res:?}");
    }
}
