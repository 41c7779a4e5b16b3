//! Who may call: bearer tokens from a keys file (401s, a session bound to its credential,
//! revocation while running), the trusted header, the safe defaults (body limit, `Origin`
//! and `Host`, health, session and media-type rules, batches, hidden tools), and the flags a
//! non-loopback address needs.

use std::process::Command;
use std::time::{Duration, Instant};

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::http::{http, path_get};
use mcp_policy_test_support::peers::need;
use serde_json::json;

use crate::gateway::{
    ACCEPT, BIN, POLICY, call, initialize, keys_file, pids, session, setup, text,
};

#[test]
fn callers_need_a_valid_credential_and_revoked_tokens_stop_working() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("auth");
    let gw = s.gateway(&["--keys", &s.keys]);
    let addr = gw.addr.as_str();

    // Missing, wrong, malformed: 401, and nothing started.
    let missing = initialize(addr, None);
    assert_eq!(missing.status, 401, "{missing:?}");
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(initialize(addr, Some("tok-mallory")).status, 401);
    let basic = http(
        addr,
        "POST",
        &[ACCEPT, ("Authorization", "Basic dG9rLWFsaWNl")],
        b"{}",
    );
    assert_eq!(basic.status, 401);
    std::thread::sleep(Duration::from_millis(300));
    assert!(pids(&s.piddir).is_empty(), "an upstream started for a 401");

    // Valid tokens: each caller is its own grant.
    let alice = session(addr, Some("tok-alice"));
    let bob = session(addr, Some("tok-bob"));
    let a = call(addr, Some("tok-alice"), &alice, 1, "echo", json!({}));
    assert_eq!(text(&a.answer()), "ran echo", "{a:?}");
    // A session belongs to the credential that opened it.
    let stolen = call(addr, Some("tok-bob"), &alice, 2, "echo", json!({}));
    assert_eq!(stolen.status, 404, "{stolen:?}");
    // A session id without a credential: 401 first.
    assert_eq!(call(addr, None, &alice, 3, "echo", json!({})).status, 401);

    // Revoking bob (the keys file changes) locks him out of his open session too.
    std::fs::write(&s.keys, keys_file(&[("tok-alice", "alice")])).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(addr, Some("tok-bob"), &bob, 4, "echo", json!({}));
        if r.status == 401 {
            break;
        }
        assert!(Instant::now() < until, "bob still admitted: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(initialize(addr, Some("tok-bob")).status, 401);
    let still = call(addr, Some("tok-alice"), &alice, 5, "echo", json!({}));
    assert_eq!(text(&still.answer()), "ran echo");
    assert!(gw.stderr().contains("keys reloaded (1)"), "{}", gw.stderr());
}

#[test]
fn safe_defaults_body_limit_origin_host_health_and_session_rules() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("defaults");
    let gw = s.gateway(&["--max-message", "2000"]);
    let addr = gw.addr.as_str();
    assert_eq!(path_get(addr, "/healthz"), 200);
    assert_eq!(path_get(addr, "/elsewhere"), 404);

    let sid = session(addr, None);
    // Oversized body: 413 with a JSON-RPC parse error, nothing forwarded.
    let big = json!({"jsonrpc":"2.0","id":9,"method":"tools/call",
        "params":{"name":"echo","arguments":{"x":"y".repeat(5000)}}});
    let r = http(
        addr,
        "POST",
        &[ACCEPT, ("Mcp-Session-Id", &sid)],
        big.to_string().as_bytes(),
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.answer()["error"]["code"], -32700);

    // DNS rebinding: a foreign Origin or Host is refused before anything else.
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    let evil_origin = http(
        addr,
        "POST",
        &[
            ACCEPT,
            ("Mcp-Session-Id", &sid),
            ("Origin", "http://evil.example"),
        ],
        body,
    );
    assert_eq!(evil_origin.status, 403, "{evil_origin:?}");
    let evil_host = http(
        addr,
        "POST",
        &[
            ACCEPT,
            ("Mcp-Session-Id", &sid),
            ("Host", "evil.example:80"),
        ],
        body,
    );
    assert_eq!(evil_host.status, 403, "{evil_host:?}");
    let local_origin = http(
        addr,
        "POST",
        &[
            ACCEPT,
            ("Mcp-Session-Id", &sid),
            ("Origin", "http://localhost:5173"),
        ],
        body,
    );
    assert_eq!(local_origin.status, 200, "{local_origin:?}");
    assert_eq!(text(&local_origin.answer()), "ran echo");

    // Session rules: no id (not an initialize) 400, an unknown id 404, wrong type 415.
    assert_eq!(http(addr, "POST", &[ACCEPT], body).status, 400);
    assert_eq!(
        http(addr, "POST", &[ACCEPT, ("Mcp-Session-Id", "nope")], body).status,
        404
    );
    assert_eq!(
        http(
            addr,
            "POST",
            &[
                ACCEPT,
                ("Mcp-Session-Id", &sid),
                ("Content-Type", "text/plain")
            ],
            body
        )
        .status,
        415
    );
    // A batch is refused by the core's rule; a hidden tool is unknown.
    let batch = http(addr, "POST", &[ACCEPT, ("Mcp-Session-Id", &sid)], b"[1,2]");
    assert_eq!(batch.answer()["error"]["code"], -32600, "{batch:?}");
    let hidden = call(addr, None, &sid, 3, "secret", json!({}));
    assert_eq!(hidden.answer()["error"]["message"], "Unknown tool: secret");
    let list = http(
        addr,
        "POST",
        &[ACCEPT, ("Mcp-Session-Id", &sid)],
        br#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
    );
    let names: Vec<String> = list.answer()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["echo", "slow", "transfer"]);
}

#[test]
fn remote_addresses_need_a_flag_and_credentials() {
    let t = Temp::new("remote");
    let policy = t.write("p.json", POLICY);
    let out = Command::new(BIN)
        .args([
            "proxy",
            "--listen",
            "0.0.0.0:0",
            "--policy",
            &policy,
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
    let out = Command::new(BIN)
        .args([
            "proxy",
            "--listen",
            "0.0.0.0:0",
            "--allow-remote",
            "--policy",
            &policy,
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keys"));
}

#[test]
fn trusted_header_names_the_caller_only_when_enabled() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("trusted");
    let audit = s._t.path("audit.jsonl");
    let audit_s = audit.display().to_string();
    let gw = s.gateway(&[
        "--trusted-header",
        "X-Authenticated-User",
        "--audit",
        &audit_s,
    ]);
    let addr = gw.addr.as_str();
    // No header: 401.
    assert_eq!(initialize(addr, None).status, 401);
    let init_body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}});
    let init = http(
        addr,
        "POST",
        &[ACCEPT, ("X-Authenticated-User", "carol")],
        init_body.to_string().as_bytes(),
    );
    assert_eq!(init.status, 200, "{init:?}");
    let sid = init.header("mcp-session-id").unwrap().to_owned();
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    let as_carol = http(
        addr,
        "POST",
        &[
            ACCEPT,
            ("Mcp-Session-Id", &sid),
            ("X-Authenticated-User", "carol"),
        ],
        body,
    );
    assert_eq!(text(&as_carol.answer()), "ran echo");
    // Another identity cannot use carol's session.
    let as_dave = http(
        addr,
        "POST",
        &[
            ACCEPT,
            ("Mcp-Session-Id", &sid),
            ("X-Authenticated-User", "dave"),
        ],
        body,
    );
    assert_eq!(as_dave.status, 404);
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert!(audit_text.contains(r#""grant":"carol""#), "{audit_text}");

    // Without the flag the header means nothing (and with --keys, no token is a 401).
    let gw2 = s.gateway(&["--keys", &s.keys]);
    let refused = http(
        &gw2.addr,
        "POST",
        &[ACCEPT, ("X-Authenticated-User", "carol")],
        init_body.to_string().as_bytes(),
    );
    assert_eq!(refused.status, 401);
}
