//! Session-less 2026-07-28 requests: one upstream per caller, the policy in `input_required`
//! terms, routing headers that must agree with the body (and the id a mismatch answers).

use std::time::Duration;

use mcp_policy_test_support::http::{Resp, http};
use mcp_policy_test_support::peers::need;
use serde_json::{Value, json};

use crate::gateway::{ACCEPT, all_gone, pids, setup, text};

/// A 2026-07-28 request: no session, the version in a header and in `params._meta`.
fn stateless(addr: &str, token: &str, id: Value, method: &str, params: Value) -> Resp {
    let auth = format!("Bearer {token}");
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"}});
    let name = params["name"].as_str().unwrap_or_default().to_owned();
    let mut headers = vec![
        ACCEPT,
        ("Authorization", auth.as_str()),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if !name.is_empty() {
        headers.push(("Mcp-Name", &name));
    }
    let body = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params});
    http(addr, "POST", &headers, body.to_string().as_bytes())
}

#[test]
fn session_less_2026_07_28_requests_share_one_upstream_per_caller() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("stateless");
    // Two serving threads here (the default is one): concurrent callers cross threads.
    let gw = s.gateway(&["--keys", &s.keys, "--threads", "2"]);
    let addr = gw.addr.clone();

    // Concurrent requests with the same id from one caller: each gets its own answer,
    // under its own id.
    let calls: Vec<_> = (0..6)
        .map(|k| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let args =
                    json!({"name": "slow", "arguments": {"ms": 150, "tag": format!("-{k}")}});
                (
                    k,
                    stateless(&addr, "tok-alice", json!(1), "tools/call", args),
                )
            })
        })
        .collect();
    for call in calls {
        let (k, res) = call.join().unwrap();
        assert_eq!(res.status, 200, "{res:?}");
        assert!(res.header("mcp-session-id").is_none(), "{res:?}");
        let answer = res.answer();
        assert_eq!(answer["id"], 1, "{answer}");
        assert_eq!(text(&answer), format!("ran slow-{k}"));
    }

    // The policy, in 2026-07-28 terms: limits, hidden tools, approvals as input_required.
    for _ in 0..3 {
        let res = stateless(
            &addr,
            "tok-alice",
            json!("e"),
            "tools/call",
            json!({"name": "echo"}),
        );
        assert_eq!(text(&res.answer()), "ran echo");
    }
    let limited = stateless(
        &addr,
        "tok-alice",
        json!("e"),
        "tools/call",
        json!({"name": "echo"}),
    )
    .answer();
    assert_eq!(limited["id"], "e");
    assert_eq!(limited["result"]["resultType"], "complete", "{limited}");
    assert_eq!(
        limited["result"]["_meta"]["io.mcp-policy/decision"]["decision"],
        "limit"
    );
    // Bob's budget is his own.
    let bob = stateless(
        &addr,
        "tok-bob",
        json!(9),
        "tools/call",
        json!({"name": "echo"}),
    );
    assert_eq!(text(&bob.answer()), "ran echo");
    let hidden = stateless(
        &addr,
        "tok-alice",
        json!(2),
        "tools/call",
        json!({"name": "secret"}),
    );
    assert_eq!(hidden.answer()["error"]["code"], -32602);
    let transfer = json!({"name": "transfer", "arguments": {"amount": 5}});
    let asked = stateless(&addr, "tok-alice", json!(3), "tools/call", transfer.clone()).answer();
    assert_eq!(asked["id"], 3);
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let mut retry = transfer.clone();
    retry["requestState"] = asked["result"]["requestState"].clone();
    retry["inputResponses"] =
        json!({"approve": {"action": "accept", "content": {"approve": true}}});
    let done = stateless(&addr, "tok-alice", json!(4), "tools/call", retry.clone()).answer();
    assert_eq!(done["id"], 4);
    assert_eq!(text(&done), "ran transfer", "{done}");
    // The same state again approves nothing; another caller's state neither.
    let replay = stateless(&addr, "tok-alice", json!(5), "tools/call", retry.clone()).answer();
    assert_eq!(replay["result"]["resultType"], "input_required", "{replay}");
    let stolen = stateless(&addr, "tok-bob", json!(5), "tools/call", retry).answer();
    assert_eq!(stolen["result"]["resultType"], "input_required", "{stolen}");

    // Anything else passes through; a notification is acknowledged and goes nowhere.
    let listed = stateless(&addr, "tok-alice", json!(6), "tools/list", json!({})).answer();
    let names = listed["result"]["tools"].to_string();
    assert!(
        names.contains("echo") && !names.contains("secret"),
        "{names}"
    );
    let auth = "Bearer tok-alice";
    let note = http(
        &addr,
        "POST",
        &[
            ACCEPT,
            ("Authorization", auth),
            ("MCP-Protocol-Version", "2026-07-28"),
        ],
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
    );
    assert_eq!(note.status, 202, "{note:?}");

    // Routing headers must say what the message says.
    let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo",
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                 "io.modelcontextprotocol/clientCapabilities":{}}}});
    for (header, value) in [
        ("Mcp-Name", "slow"),
        ("Mcp-Method", "tools/list"),
        ("MCP-Protocol-Version", "2026-07-29"),
    ] {
        let mut headers = vec![ACCEPT, ("Authorization", auth), (header, value)];
        if header != "MCP-Protocol-Version" {
            headers.push(("MCP-Protocol-Version", "2026-07-28"));
        }
        let res = http(&addr, "POST", &headers, body.to_string().as_bytes());
        assert_eq!(res.status, 400, "{header}: {res:?}");
        assert_eq!(res.answer()["error"]["code"], -32020, "{res:?}");
    }
    // A handshake-era client still needs its session.
    let old = http(
        &addr,
        "POST",
        &[
            ACCEPT,
            ("Authorization", auth),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(old.status, 400, "{old:?}");
    // No credential: 401, as for everything.
    let none = http(
        &addr,
        "POST",
        &[ACCEPT, ("MCP-Protocol-Version", "2026-07-28")],
        body.to_string().as_bytes(),
    );
    assert_eq!(none.status, 401);

    // One upstream per caller (alice, bob), whatever the number of requests; stopped with
    // the gateway.
    assert_eq!(pids(&s.piddir).len(), 2, "{}", gw.stderr());
    drop(gw);
    assert!(all_gone(&s.piddir, Duration::from_secs(10)));
}

/// A session-less request whose `Mcp-Name` or `Mcp-Method` header disagrees with its body is
/// refused with `-32020`, answering the request's own id (JSON-RPC wants it whenever it
/// could be read).
#[test]
fn a_header_mismatch_answers_the_requests_own_id() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("mismatch");
    let gw = s.gateway(&["--keys", &s.keys]);
    let addr = gw.addr.as_str();
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"}});
    let body = json!({"jsonrpc":"2.0","id":5,"method":"tools/call",
        "params":{"name":"echo","arguments":{},"_meta":meta}})
    .to_string();
    for (header, value) in [("Mcp-Name", "other"), ("Mcp-Method", "tools/list")] {
        let res = http(
            addr,
            "POST",
            &[
                ACCEPT,
                ("Authorization", "Bearer tok-alice"),
                ("MCP-Protocol-Version", "2026-07-28"),
                (header, value),
            ],
            body.as_bytes(),
        );
        assert_eq!(res.status, 400, "{res:?}");
        let answer = res.answer();
        assert_eq!(answer["error"]["code"], -32020, "{answer}");
        assert_eq!(answer["id"], 5, "{header}: {answer}");
    }
    // Text that cannot be read still gets id null.
    let res = http(
        addr,
        "POST",
        &[
            ACCEPT,
            ("Authorization", "Bearer tok-alice"),
            ("MCP-Protocol-Version", "2026-07-28"),
        ],
        b"{not json",
    );
    assert_eq!(res.status, 400, "{res:?}");
    assert_eq!(res.answer()["id"], Value::Null);
}
