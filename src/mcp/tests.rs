use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::read::parse_line;
use super::*;
use crate::clock::ManualClock;
use crate::compile::Policy;
use crate::decision::Decision;
use crate::engine::{Decider, Engine};
use crate::error::{HostError, StoreError};
use crate::grant::Grant;
use crate::store::{MemoryStore, Reservation};

const POLICY: &str = r#"{"version":"1","default":"deny","hide":["drop_*"],
  "tools":{
    "read":{},
    "scan":{"limits":[{"counter":"scan","window":"minute","max":1}]},
    "stop_scan":{"action":"deny","reason":"Stopping scans breaks monitoring"},
    "transfer":{"action":"approve","reason":"moves money"}}}"#;

fn engine() -> Engine<ManualClock, MemoryStore> {
    let policy = Policy::from_json_str(POLICY).unwrap();
    Engine::with_parts(policy, ManualClock::new(1_000_000), MemoryStore::new())
}

fn gateway() -> Gateway {
    Gateway::new(Grant::new("alice"), GatewayOptions::default())
}

fn call(id: u64, tool: &str, args: Value) -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}})
        .to_string()
        .into_bytes()
}

fn to_client(out: &[Output]) -> &Value {
    out.iter()
        .find_map(|o| match o {
            Output::ToClient(v) => Some(v),
            _ => None,
        })
        .unwrap_or_else(|| panic!("nothing for the client in {out:?}"))
}

fn audits(out: &[Output]) -> Vec<&AuditRecord> {
    out.iter()
        .filter_map(|o| match o {
            Output::Audit(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn init(gw: &mut Gateway, e: &dyn Decider, version: &str, elicitation: bool) {
    let caps = if elicitation {
        json!({"elicitation": {}})
    } else {
        json!({})
    };
    let req = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": version, "capabilities": caps,
        "clientInfo": {"name": "test-client", "version": "9.9"}}});
    assert_eq!(
        gw.from_client(e, req.to_string().as_bytes()),
        [Output::Forward]
    );
    let res = json!({"jsonrpc":"2.0","id":0,"result":{"protocolVersion": version,
        "capabilities": {"tools": {}}, "serverInfo": {"name": "s", "version": "1"}}});
    // The gateway advertises `listChanged` (it sends that notification after a reload).
    let mut advertised = res.clone();
    advertised["result"]["capabilities"]["tools"]["listChanged"] = json!(true);
    assert_eq!(
        gw.from_server(e, res.to_string().as_bytes()),
        [Output::ToClient(advertised.clone())]
    );
    // A server that advertises it already is passed as it is.
    let mut gw2 = gateway();
    gw2.from_client(e, req.to_string().as_bytes());
    assert_eq!(
        gw2.from_server(e, advertised.to_string().as_bytes()),
        [Output::Forward]
    );
}

#[test]
fn allowed_call_is_forwarded_and_audited_when_answered() {
    let (e, mut gw) = (engine(), gateway());
    init(&mut gw, &e, "2025-11-25", false);
    assert_eq!(gw.grant().attrs["client"], "test-client");
    assert_eq!(gw.grant().attrs["client_version"], "9.9");
    let out = gw.from_client(&e, &call(1, "read", json!({"a": 1})));
    assert_eq!(out, [Output::Forward]);
    assert_eq!(gw.in_flight(), (1, 0));
    let out = gw.from_server(&e, br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#);
    assert_eq!(out.last(), Some(&Output::Forward));
    let a = audits(&out);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].upstream, Some("ok"));
    assert_eq!(a[0].tool, "read");
    assert_eq!(a[0].args_canonical, r#"{"a":1}"#);
    assert_eq!(a[0].decision["decision"], "allow");
    assert_eq!(gw.in_flight(), (0, 0));
}

#[test]
fn deny_limit_and_hidden_are_answered_locally() {
    let (e, mut gw) = (engine(), gateway());
    let out = gw.from_client(&e, &call(1, "stop_scan", json!({})));
    let answer = to_client(&out);
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["isError"], true);
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "Stopping scans breaks monitoring"
    );
    assert_eq!(
        answer["result"]["_meta"][DECISION_META]["rule"],
        "/tools/stop_scan/action"
    );
    assert_eq!(audits(&out)[0].upstream, None);

    assert_eq!(
        gw.from_client(&e, &call(2, "scan", json!({}))),
        [Output::Forward]
    );
    let out = gw.from_client(&e, &call(3, "scan", json!({})));
    let answer = to_client(&out);
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.ends_with("(retry in 60 s)"), "{text}");
    assert_eq!(
        answer["result"]["_meta"][DECISION_META]["decision"],
        "limit"
    );
    assert_eq!(
        answer["result"]["_meta"][DECISION_META]["retry_after_ms"],
        60_000
    );

    let out = gw.from_client(&e, &call(4, "drop_table", json!({})));
    assert_eq!(
        to_client(&out),
        &json!({"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"Unknown tool: drop_table"}})
    );
}

#[test]
fn malformed_input_is_refused_never_forwarded() {
    let (e, mut gw) = (engine(), gateway());
    let out = gw.from_client(&e, b"this is not json");
    assert_eq!(to_client(&out)["error"]["code"], PARSE_ERROR);
    assert_eq!(to_client(&out)["id"], Value::Null);
    let out = gw.from_client(
        &e,
        br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}}]"#,
    );
    assert_eq!(to_client(&out)["error"]["code"], INVALID_REQUEST);
    let out = gw.from_client(
        &e,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
    );
    assert_eq!(to_client(&out)["error"]["code"], INVALID_PARAMS);
    let out = gw.from_client(&e, &call(2, "read", json!([1])));
    assert_eq!(to_client(&out)["error"]["code"], INVALID_PARAMS);
    // Duplicate keys: the gateway and the server must never read different values.
    let out = gw.from_client(
        &e,
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read","name":"drop_db"}}"#,
    );
    assert_eq!(to_client(&out)["error"]["code"], PARSE_ERROR);
    // Arguments deeper than the reader's own limit are denied by the policy, not a parse error.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"read","arguments":{{"a":{}1{}}}}}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let out = gw.from_client(&e, deep.as_bytes());
    assert_eq!(
        to_client(&out)["result"]["_meta"][DECISION_META]["message"],
        "arguments are nested deeper than 64 levels"
    );
    assert_eq!(gw.in_flight(), (0, 0));
}

#[test]
fn other_messages_pass_through_and_ids_are_kept_apart() {
    let (e, mut gw) = (engine(), gateway());
    for line in [
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"logging/setLevel","params":{"level":"info"}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#,
    ] {
        assert_eq!(gw.from_client(&e, line.as_bytes()), [Output::Forward]);
    }
    // The server asks the client something with id 1 while the client's call 1 is in flight.
    assert_eq!(
        gw.from_client(&e, &call(1, "read", json!({}))),
        [Output::Forward]
    );
    let server_request =
        br#"{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{}}"#;
    assert_eq!(gw.from_server(&e, server_request), [Output::Forward]);
    // The client's answer to it goes to the server; the call is still waiting.
    let client_answer = br#"{"jsonrpc":"2.0","id":1,"result":{"role":"assistant"}}"#;
    assert_eq!(gw.from_client(&e, client_answer), [Output::Forward]);
    assert_eq!(gw.in_flight(), (2, 0));
    let out = gw.from_server(&e, br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#);
    assert_eq!(audits(&out).len(), 1);
    // Unparseable server output is the client's to see.
    assert_eq!(gw.from_server(&e, b"garbage"), [Output::Forward]);
}

#[test]
fn tools_list_results_are_filtered() {
    let (e, mut gw) = (engine(), gateway());
    let req = br#"{"jsonrpc":"2.0","id":"l1","method":"tools/list","params":{}}"#;
    assert_eq!(gw.from_client(&e, req), [Output::Forward]);
    let res = json!({"jsonrpc":"2.0","id":"l1","result":{"tools":[
        {"name":"read","inputSchema":{"type":"object"}},
        {"name":"stop_scan"},{"name":"drop_db"},{"name":"unknown"},{"name":"transfer"}],
        "nextCursor":"c2"}});
    let out = gw.from_server(&e, res.to_string().as_bytes());
    let answer = to_client(&out);
    let names: Vec<&str> = answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read", "transfer"]);
    assert_eq!(answer["result"]["nextCursor"], "c2");
    assert_eq!(answer["id"], "l1");
    // A list with nothing to remove passes as it came.
    assert_eq!(gw.from_client(&e, req), [Output::Forward]);
    let res = br#"{"jsonrpc":"2.0","id":"l1","result":{"tools":[{"name":"read"}]}}"#;
    assert_eq!(gw.from_server(&e, res), [Output::Forward]);
}

#[test]
fn refunds_follow_the_upstream_outcome() {
    let (e, mut gw) = (engine(), gateway());
    // A JSON-RPC error: the tool never ran, the charge is refunded.
    assert_eq!(
        gw.from_client(&e, &call(1, "scan", json!({}))),
        [Output::Forward]
    );
    let out = gw.from_server(
        &e,
        br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"boom"}}"#,
    );
    assert!(audits(&out)[0].refunded);
    assert_eq!(audits(&out)[0].upstream, Some("error"));
    // An isError result: the tool ran, the charge stays.
    assert_eq!(
        gw.from_client(&e, &call(2, "scan", json!({}))),
        [Output::Forward]
    );
    let out = gw.from_server(
        &e,
        br#"{"jsonrpc":"2.0","id":2,"result":{"isError":true,"content":[]}}"#,
    );
    assert!(!audits(&out)[0].refunded);
    assert_eq!(audits(&out)[0].upstream, Some("tool_error"));
    let out = gw.from_client(&e, &call(3, "scan", json!({})));
    assert_eq!(to_client(&out)["result"]["isError"], true);
}

#[test]
fn upstream_gone_answers_every_waiting_request_and_refunds() {
    let (e, mut gw) = (engine(), gateway());
    gw.from_client(&e, &call(1, "scan", json!({})));
    gw.from_client(&e, br#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#);
    let out = gw.upstream_gone(&e);
    let errors: Vec<&Value> = out
        .iter()
        .filter_map(|o| match o {
            Output::ToClient(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|v| v["error"]["code"] == INTERNAL_ERROR));
    let a = audits(&out);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].upstream, Some("gone"));
    assert!(a[0].refunded);
    // Refunded: the budget of one is free again (on a new session: this one's server is gone).
    let mut gw = gateway();
    assert_eq!(
        gw.from_client(&e, &call(3, "scan", json!({}))),
        [Output::Forward]
    );
}

fn elicitation_id(out: &[Output]) -> Value {
    let ask = to_client(out);
    assert_eq!(ask["method"], "elicitation/create");
    let schema = &ask["params"]["requestedSchema"];
    assert_eq!(schema["properties"]["approve"]["type"], "boolean");
    let message = ask["params"]["message"].as_str().unwrap();
    assert!(message.contains("transfer") && message.contains("alice"));
    assert!(message.contains(r#"{"amount":5}"#) && message.contains("moves money"));
    ask["id"].clone()
}

#[test]
fn elicitation_accept_forwards_once_decline_and_timeout_refuse() {
    let (e, mut gw) = (engine(), gateway());
    init(&mut gw, &e, "2025-11-25", true);
    let out = gw.from_client(&e, &call(1, "transfer", json!({"amount": 5})));
    let own = elicitation_id(&out);
    assert_eq!(to_client(&out)["params"]["mode"], "form");
    assert_eq!(gw.in_flight(), (0, 1));
    let accept =
        json!({"jsonrpc":"2.0","id":own,"result":{"action":"accept","content":{"approve":true}}});
    let out = gw.from_client(&e, accept.to_string().as_bytes());
    let Some(Output::ToServer(sent)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(sent["id"], 1);
    assert_eq!(sent["params"]["arguments"], json!({"amount": 5}));
    // The approval was used once: the same call is asked again.
    let out = gw.from_client(&e, &call(2, "transfer", json!({"amount": 5})));
    let own = elicitation_id(&out);
    let decline = json!({"jsonrpc":"2.0","id":own,"result":{"action":"decline"}});
    let out = gw.from_client(&e, decline.to_string().as_bytes());
    let answer = to_client(&out);
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["isError"], true);
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("declined")
    );
    // `approve: false` is no approval either.
    let out = gw.from_client(&e, &call(3, "transfer", json!({"amount": 5})));
    let own = elicitation_id(&out);
    let no =
        json!({"jsonrpc":"2.0","id":own,"result":{"action":"accept","content":{"approve":false}}});
    let out = gw.from_client(&e, no.to_string().as_bytes());
    assert_eq!(to_client(&out)["result"]["isError"], true);
    // No answer in time.
    let out = gw.from_client(&e, &call(4, "transfer", json!({"amount": 5})));
    let own = elicitation_id(&out);
    assert!(gw.next_deadline().is_some());
    let out = gw.expire(Instant::now() + Duration::from_secs(121));
    let answer = to_client(&out);
    assert_eq!(answer["id"], 4);
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no answer within 120 s")
    );
    // A late answer approves nothing and goes nowhere harmful (to the server as an unknown
    // response id, as any stray response would).
    let late =
        json!({"jsonrpc":"2.0","id":own,"result":{"action":"accept","content":{"approve":true}}});
    assert_eq!(
        gw.from_client(&e, late.to_string().as_bytes()),
        [Output::Forward]
    );
    let out = gw.from_client(&e, &call(5, "transfer", json!({"amount": 5})));
    assert_eq!(to_client(&out)["method"], "elicitation/create");
}

#[test]
fn input_required_for_stateless_clients_and_forged_state_approves_nothing() {
    let (e, mut gw) = (engine(), gateway());
    init(&mut gw, &e, STATELESS_VERSION, false);
    let out = gw.from_client(&e, &call(1, "transfer", json!({"amount": 5})));
    let answer = to_client(&out);
    assert_eq!(answer["result"]["resultType"], "input_required");
    let state = answer["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_owned();
    let ask = &answer["result"]["inputRequests"]["approve"];
    assert_eq!(ask["method"], "elicitation/create");

    let retry = |id: u64, state: &str, args: Value| {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"transfer",
          "arguments":args,"requestState":state,
          "inputResponses":{"approve":{"action":"accept","content":{"approve":true}}}}})
        .to_string()
        .into_bytes()
    };
    // Forged state: asked again.
    let out = gw.from_client(
        &e,
        &retry(2, "io.mcp-policy/state/99/ap-x", json!({"amount": 5})),
    );
    assert_eq!(to_client(&out)["result"]["resultType"], "input_required");
    // The real state for another call (other arguments): approves nothing, and is used up.
    let out = gw.from_client(&e, &retry(3, &state, json!({"amount": 6})));
    assert_eq!(to_client(&out)["result"]["resultType"], "input_required");
    let out = gw.from_client(&e, &retry(4, &state, json!({"amount": 5})));
    assert_eq!(to_client(&out)["result"]["resultType"], "input_required");
    // A fresh state for this exact call: forwarded, with the approval fields stripped.
    let state = to_client(&out)["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = gw.from_client(&e, &retry(5, &state, json!({"amount": 5})));
    let Some(Output::ToServer(sent)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(sent["params"].get("requestState"), None);
    assert_eq!(sent["params"].get("inputResponses"), None);
    // Replayed: approves nothing.
    let out = gw.from_client(&e, &retry(6, &state, json!({"amount": 5})));
    assert_eq!(to_client(&out)["result"]["resultType"], "input_required");
    // Declined, cancelled, or accepted without approving: answered as refused (with the
    // audit line), not asked again; the next call is asked afresh.
    let responses = [
        json!({"action": "decline"}),
        json!({"action": "cancel"}),
        json!({"action": "accept", "content": {"approve": false}}),
    ];
    for (k, response) in responses.into_iter().enumerate() {
        let k = k as u64;
        let asked = gw.from_client(&e, &call(10 + k, "transfer", json!({"amount": 5})));
        let state = to_client(&asked)["result"]["requestState"].clone();
        let no = json!({"jsonrpc":"2.0","id":20 + k,"method":"tools/call","params":{
            "name":"transfer","arguments":{"amount": 5},"requestState":state,
            "inputResponses":{"approve": response}}});
        let refused = gw.from_client(&e, no.to_string().as_bytes());
        let answer = to_client(&refused);
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("was not approved"), "{answer}");
        assert_eq!(audits(&refused).len(), 1);
    }
}

#[test]
fn a_servers_own_request_state_passes_through_untouched() {
    let (e, mut gw) = (engine(), gateway());
    init(&mut gw, &e, STATELESS_VERSION, false);
    // An allowed tool whose server asked for input itself: its state and the client's
    // answers are the server's, forwarded byte for byte.
    let line = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read",
      "arguments":{"path":"/a"},"requestState":"server-state-1",
      "inputResponses":{"confirm":{"action":"accept","content":{"ok":true}}}}})
    .to_string();
    assert_eq!(gw.from_client(&e, line.as_bytes()), [Output::Forward]);
}

#[test]
fn out_of_band_approval_says_how() {
    let (e, mut gw) = (engine(), gateway());
    init(&mut gw, &e, "2025-06-18", false);
    let out = gw.from_client(&e, &call(1, "transfer", json!({"amount": 5})));
    let answer = to_client(&out);
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    let id = answer["result"]["_meta"][DECISION_META]["approval_id"]
        .as_str()
        .unwrap();
    assert!(text.contains(id) && text.contains("elicitation"), "{text}");
    let mut gw = Gateway::new(
        Grant::new("alice"),
        GatewayOptions {
            approve_command: Some("mcp-policy approve ID --store redis://127.0.0.1:6379".into()),
            ..GatewayOptions::default()
        },
    );
    let out = gw.from_client(&e, &call(1, "transfer", json!({"amount": 5})));
    let text = to_client(&out)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains(&format!("mcp-policy approve {id} --store redis://")),
        "{text}"
    );
    e.record_approval(id).unwrap();
    assert_eq!(
        gw.from_client(&e, &call(2, "transfer", json!({"amount": 5}))),
        [Output::Forward]
    );
}

#[test]
fn a_stateless_request_names_its_version_and_client_itself() {
    // 2026-07-28 has no initialize: each request's _meta says who and which version.
    let (e, mut gw) = (engine(), gateway());
    let req = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer",
        "arguments":{"amount":5},"_meta":{META_PROTOCOL_VERSION: STATELESS_VERSION,
        META_CLIENT_INFO: {"name":"new-client","version":"2.0"}}}});
    let out = gw.from_client(&e, req.to_string().as_bytes());
    assert_eq!(to_client(&out)["result"]["resultType"], "input_required");
    assert_eq!(gw.grant().attrs["client"], "new-client");
    assert_eq!(gw.grant().attrs["client_version"], "2.0");
    // Its refusals carry the resultType that version requires; older versions' do not.
    let req = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"stop_scan",
        "_meta":{META_PROTOCOL_VERSION: STATELESS_VERSION}}});
    let out = gw.from_client(&e, req.to_string().as_bytes());
    assert_eq!(to_client(&out)["result"]["resultType"], "complete");
    let out = gw.from_client(&e, &call(3, "stop_scan", json!({})));
    assert_eq!(to_client(&out)["result"].get("resultType"), None);
}

#[test]
fn plain_tool_calls_are_read_as_the_full_reader_reads_them() {
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"read","arguments":{{"a":{}1{}}}}}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let plain = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"a":[1,{"b":null}]}}}"#,
        r#" {"params":{"arguments":null,"name":"re\u0061d"},"method":"tools/call","id":"x"} "#,
        r#"{"id":null,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":2.5,"method":"tools/call","params":{"na\u006de":"read","_meta":{"k":[1]}}}"#,
    ];
    let other = [
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["read"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","name":"drop_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"a":{"b":1,"b":2}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","_meta":{"a":1,"a":1}}}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1,"a":2},"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","requestState":"s"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":[1]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"read"}}"#,
        r#"{"jsonrpc":2,"id":1,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"},"extra":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}} x"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}"#,
        deep.as_str(),
    ];
    for line in plain {
        let fast = envelope::CallRequest::read(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
        let whole = parse_line(line.as_bytes()).unwrap();
        assert_eq!(fast.id.as_ref(), whole.get("id").filter(|id| !id.is_null()));
        assert_eq!(Some(fast.tool.as_ref()), whole["params"]["name"].as_str());
        assert_eq!(
            fast.arguments.as_ref(),
            whole["params"].get("arguments").filter(|a| a.is_object())
        );
        assert_eq!(fast.meta.as_ref(), whole["params"].get("_meta"));
    }
    for line in other {
        assert!(
            envelope::CallRequest::read(line.as_bytes()).is_none(),
            "{line}"
        );
    }
    // Not UTF-8, in a value or in a key: read whole, which refuses it.
    for line in [
        &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read\",\"arguments\":{\"a\":\"\xff\"}}}"[..],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read\",\"arguments\":{\"\xff\":1}}}",
    ] {
        assert!(envelope::CallRequest::read(line).is_none());
        let (e, mut gw) = (engine(), gateway());
        assert_eq!(to_client(&gw.from_client(&e, line))["error"]["code"], PARSE_ERROR);
    }
}

#[test]
fn numeric_and_text_ids_are_kept_apart() {
    let (e, mut gw) = (engine(), gateway());
    for line in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":"1","method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":-1,"method":"tools/call","params":{"name":"read"}}"#,
    ] {
        assert_eq!(gw.from_client(&e, line.as_bytes()), [Output::Forward]);
    }
    assert_eq!(gw.in_flight(), (4, 0));
    let out = gw.from_server(&e, br#"{"jsonrpc":"2.0","id":"1","result":{}}"#);
    assert_eq!(audits(&out).len(), 1);
    assert_eq!(gw.in_flight(), (3, 0));
    let out = gw.upstream_gone(&e);
    let ids: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Output::ToClient(v) => Some(v["id"].to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["-1", "1", "1.0"]);
}

/// An decider that counts the calls that reach its store.
struct Counting<'a> {
    inner: &'a dyn Decider,
    store_calls: std::cell::Cell<u32>,
}

impl Decider for Counting<'_> {
    fn decide(
        &self,
        subject: crate::subject::Subject<'_>,
        args: &Value,
        grant: &Grant,
    ) -> Decision {
        self.store_calls.set(self.store_calls.get() + 1);
        self.inner.decide(subject, args, grant)
    }
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError> {
        self.store_calls.set(self.store_calls.get() + 1);
        self.inner.record_approval(approval_id)
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        self.store_calls.set(self.store_calls.get() + 1);
        self.inner.release(reservation)
    }
    fn policy(&self) -> Arc<Policy> {
        self.inner.policy()
    }
}

/// A host whose store blocks may handle a server message where it cannot block unless
/// `may_refund` says otherwise: no other message from the server reaches the store.
#[test]
fn only_messages_that_may_refund_reach_the_store() {
    let e = engine();
    let counting = Counting {
        inner: &e,
        store_calls: std::cell::Cell::new(0),
    };
    let mut gw = gateway();
    init(&mut gw, &e, "2025-11-25", false);
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    gw.from_client(&e, list.to_string().as_bytes());
    for (id, tool) in [(2, "read"), (3, "read"), (4, "scan")] {
        assert_eq!(
            gw.from_client(&e, &call(id, tool, json!({}))),
            [Output::Forward]
        );
    }
    let server: [(Value, bool); 7] = [
        (
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}),
            false,
        ),
        (
            json!({"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}),
            false,
        ),
        (
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read"},{"name":"drop_all"}]}}),
            false,
        ),
        (
            json!({"jsonrpc":"2.0","id":2,"result":{"content":[]}}),
            false,
        ),
        (
            json!({"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":true}}),
            false,
        ),
        (
            json!({"jsonrpc":"2.0","id":99,"error":{"code":-1,"message":"not ours"}}),
            true,
        ),
        (
            json!({"jsonrpc":"2.0","id":4,"error":{"code":-32603,"message":"failed"}}),
            true,
        ),
    ];
    for (message, may_refund) in server {
        let line = message.to_string();
        let read = ServerMessage::read(line.as_bytes());
        assert_eq!(read.may_refund(), may_refund, "{line}");
        let before = counting.store_calls.get();
        gw.from_server_message(&counting, read);
        if !may_refund {
            assert_eq!(counting.store_calls.get(), before, "{line}");
        }
    }
    // The failed call's charge (a limited tool's) was refunded: a store call.
    assert_eq!(counting.store_calls.get(), 1);
}

/// Polls a future that never waits (the memory store answers at once) to its end.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn a_decision_made_by_the_host_gives_what_the_gateways_own_gives() {
    let options = GatewayOptions {
        audit: false,
        ..GatewayOptions::default()
    };
    let own_engine = engine();
    let host_engine = crate::AsyncEngine::with_parts(
        Policy::from_json_str(POLICY).unwrap(),
        ManualClock::new(1_000_000),
        MemoryStore::new(),
    );
    let mut own = Gateway::new(Grant::new("alice"), options.clone());
    let mut host = Gateway::new(Grant::new("alice"), options);
    init(&mut own, &own_engine, "2025-11-25", true);
    init(&mut host, &own_engine, "2025-11-25", true);
    let stateless = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read",
        "_meta":{META_PROTOCOL_VERSION:"2026-07-28",
            META_CLIENT_INFO:{"name":"other-client","version":"2"}}}});
    let lines: Vec<Vec<u8>> = vec![
        call(1, "read", json!({"path": "/x"})),
        call(2, "scan", json!({})),
        call(3, "scan", json!({})),
        call(4, "stop_scan", json!({})),
        call(5, "drop_db", json!({})),
        call(6, "transfer", json!({"amount": 5})),
        call(7, "nope", json!({})),
        br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"read"}}"#.to_vec(),
        stateless.to_string().into_bytes(),
    ];
    let mut decided = 0;
    for line in &lines {
        let expected = own.from_client(&own_engine, line);
        let message = ClientMessage::read(line);
        let got = match host.call_to_decide(&message) {
            Some(call) => {
                decided += 1;
                // Decided for the grant the gateway's own decision was for.
                assert_eq!(&call.grant, own.grant());
                let decision = ready(host_engine.evaluate(call.tool, call.args, &call.grant));
                host.from_client_decided(&message, decision, 0).unwrap()
            }
            None => panic!("{}", String::from_utf8_lossy(line)),
        };
        assert_eq!(got, expected, "{}", String::from_utf8_lossy(line));
        assert_eq!(host.grant(), own.grant());
    }
    assert_eq!(decided, lines.len());
    // The stateless call's client identity reached the grants decided for.
    assert_eq!(host.grant().attrs["client"], "other-client");
    // Anything else is the gateway's to handle: no call to decide, and nothing done.
    for line in [
        &br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#[..],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","requestState":"s"}}"#,
        br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
    ] {
        let message = ClientMessage::read(line);
        assert!(host.call_to_decide(&message).is_none());
        let allow = own_engine.evaluate("read", &json!({}), host.grant());
        assert!(allow.is_allowed());
        assert_eq!(host.from_client_decided(&message, allow, 0), None);
    }
    assert_eq!(host.in_flight(), own.in_flight());
    // The server went away: the call decided meanwhile is answered with the same error and
    // not forwarded; its reservation is the host's to refund.
    assert!(!host.is_gone());
    own.upstream_gone(&own_engine);
    host.upstream_gone(&own_engine);
    assert!(host.is_gone());
    let host_engine = crate::AsyncEngine::with_parts(
        Policy::from_json_str(POLICY).unwrap(),
        ManualClock::new(1_000_000),
        MemoryStore::new(),
    );
    let line = call(10, "scan", json!({}));
    let expected = own.from_client(&engine(), &line);
    let message = ClientMessage::read(&line);
    let call = host.call_to_decide(&message).unwrap();
    let mut decision = ready(host_engine.evaluate(call.tool, call.args, &call.grant));
    assert!(decision.is_allowed());
    let reservation = decision.reservation.take().unwrap();
    let got = host.from_client_decided(&message, decision, 0).unwrap();
    assert_eq!(to_client(&got), to_client(&expected));
    assert_eq!(to_client(&got)["error"]["code"], INTERNAL_ERROR);
    assert!(!got.contains(&Output::Forward));
    ready(host_engine.release(reservation)).unwrap();
    // Refunded: the budget of one is free again.
    let again = ready(host_engine.evaluate("scan", &json!({}), host.grant()));
    assert!(again.is_allowed());
}

#[test]
fn a_servers_input_required_round_continues_the_call_without_a_new_decision() {
    let policy = r#"{"version":"1","default":"deny","tools":{
      "deploy":{"action":"approve","reason":"ships code",
                "limits":[{"counter":"d","window":"minute","max":1}]},
      "scan":{"limits":[{"counter":"s","window":"minute","max":1}]}}}"#;
    let e = Engine::with_parts(
        Policy::from_json_str(policy).unwrap(),
        ManualClock::new(1_000_000),
        MemoryStore::new(),
    );
    let mut gw = gateway();
    init(&mut gw, &e, STATELESS_VERSION, false);
    let retry = |id: u64, tool: &str, args: Value, state: &str| {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,
          "arguments":args,"requestState":state,
          "inputResponses":{"approve":{"action":"accept","content":{"approve":true}}}}})
        .to_string()
        .into_bytes()
    };
    let asks_input = |id: u64, state: &str| {
        json!({"jsonrpc":"2.0","id":id,"result":{"resultType":"input_required",
          "inputRequests":{"confirm":{"method":"elicitation/create","params":{}}},
          "requestState":state}})
        .to_string()
        .into_bytes()
    };
    let done = |id: u64| {
        json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":"ok"}]}})
            .to_string()
            .into_bytes()
    };
    let ours = |out: &[Output]| {
        to_client(out)["result"]["requestState"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let upstream = |out: &[Output]| audits(out).iter().map(|r| r.upstream).collect::<Vec<_>>();

    // The gateway's approval, then the server's own two rounds: asked once, charged once.
    let args = json!({"v": 1});
    let state = ours(&gw.from_client(&e, &call(1, "deploy", args.clone())));
    let out = gw.from_client(&e, &retry(2, "deploy", args.clone(), &state));
    assert!(matches!(out.first(), Some(Output::ToServer(_))), "{out:?}");
    let out = gw.from_server(&e, &asks_input(2, "srv-1"));
    assert_eq!(upstream(&out), [Some("input_required")]);
    assert_eq!(out.last(), Some(&Output::Forward));
    let out = gw.from_client(&e, &retry(3, "deploy", args.clone(), "srv-1"));
    assert_eq!(
        out,
        [Output::Forward],
        "the continued call was decided again"
    );
    assert_eq!(gw.from_server(&e, &asks_input(3, "srv-2")).len(), 2);
    // Waiting for the client's retry, the call counts as in flight (a host keeps its session).
    assert_eq!(gw.in_flight(), (0, 1));
    assert_eq!(
        gw.from_client(&e, &retry(4, "deploy", args.clone(), "srv-2")),
        [Output::Forward]
    );
    let out = gw.from_server(&e, &done(4));
    assert_eq!(upstream(&out), [Some("ok")]);
    assert_eq!(audits(&out)[0].decision["decision"], "allow");
    assert_eq!(gw.in_flight(), (0, 0));
    // The server's state is used once: replayed, the retry is a new call (asked again).
    let out = gw.from_client(&e, &retry(5, "deploy", args.clone(), "srv-2"));
    assert_eq!(to_client(&out)["result"]["resultType"], "input_required");
    // The one charge stayed: the next deploy, once approved, is over its limit.
    let state = ours(&gw.from_client(&e, &call(6, "deploy", args.clone())));
    let out = gw.from_client(&e, &retry(7, "deploy", args.clone(), &state));
    assert_eq!(
        to_client(&out)["result"]["_meta"][DECISION_META]["decision"],
        "limit"
    );

    // Another call's arguments do not continue it: decided anew (here, over the limit).
    let out = gw.from_client(&e, &call(10, "scan", json!({"a": 1})));
    assert_eq!(out.first(), Some(&Output::Forward));
    gw.from_server(&e, &asks_input(10, "srv-3"));
    let out = gw.from_client(&e, &retry(11, "scan", json!({"a": 2}), "srv-3"));
    assert_eq!(
        to_client(&out)["result"]["_meta"][DECISION_META]["decision"],
        "limit"
    );
    // ...and the state is gone with that attempt.
    let out = gw.from_client(&e, &retry(12, "scan", json!({"a": 1}), "srv-3"));
    assert_ne!(out.first(), Some(&Output::Forward));

    // The last round's JSON-RPC error refunds the call's one charge.
    let e = engine();
    let mut gw = gateway();
    init(&mut gw, &e, STATELESS_VERSION, false);
    assert_eq!(
        gw.from_client(&e, &call(20, "scan", json!({}))).first(),
        Some(&Output::Forward)
    );
    gw.from_server(&e, &asks_input(20, "srv-4"));
    assert_eq!(
        gw.from_client(&e, &retry(21, "scan", json!({}), "srv-4")),
        [Output::Forward]
    );
    let error = br#"{"jsonrpc":"2.0","id":21,"error":{"code":-32000,"message":"no"}}"#;
    let out = gw.from_server(&e, error);
    assert_eq!(upstream(&out), [Some("error")]);
    assert!(audits(&out)[0].refunded);
    // Refunded: the next scan is admitted; the server asks again, and the server goes away
    // before the retry: refunded too.
    assert_eq!(
        gw.from_client(&e, &call(22, "scan", json!({}))).first(),
        Some(&Output::Forward)
    );
    gw.from_server(&e, &asks_input(22, "srv-5"));
    let out = gw.upstream_gone(&e);
    assert_eq!(upstream(&out), [Some("gone")]);
    assert!(audits(&out)[0].refunded);
    assert!(gw.is_gone());
    // Nothing is forwarded any more: a request is answered at once, by the gateway.
    for request in [
        &br#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#[..],
        br#"{"jsonrpc":"2.0","id":"l","method":"tools/list","params":{"_meta":5}}"#,
    ] {
        let out = gw.from_client(&e, request);
        assert_eq!(to_client(&out)["error"]["code"], INTERNAL_ERROR, "{out:?}");
        assert_eq!(to_client(&out)["id"], "l");
    }
    // A call that comes after is not forwarded to the server that is gone: answered with an
    // error and refunded (the next one, on a new session, is admitted).
    let out = gw.from_client(&e, &call(25, "scan", json!({})));
    assert_eq!(to_client(&out)["error"]["code"], INTERNAL_ERROR);
    assert_eq!(upstream(&out), [Some("gone")]);
    assert!(audits(&out)[0].refunded);
    assert_eq!(gw.in_flight(), (0, 0));
    let mut gw = gateway();
    init(&mut gw, &e, STATELESS_VERSION, false);
    // An answer that is both an error and a request for input is an error: refunded, not
    // continued.
    assert_eq!(
        gw.from_client(&e, &call(26, "scan", json!({}))).first(),
        Some(&Output::Forward)
    );
    let both = br#"{"jsonrpc":"2.0","id":26,"error":{"code":1,"message":"x"},"result":{"resultType":"input_required","requestState":"srv-8"}}"#;
    let out = gw.from_server(&e, both);
    assert_eq!(upstream(&out), [Some("error")]);
    assert!(audits(&out)[0].refunded);
    assert_eq!(gw.in_flight(), (0, 0));
    // After a policy reload the retry is decided under the new policy.
    assert_eq!(
        gw.from_client(&e, &call(23, "scan", json!({}))).first(),
        Some(&Output::Forward)
    );
    gw.from_server(&e, &asks_input(23, "srv-6"));
    e.reload(Policy::from_json_str(&POLICY.replace("drop_*", "drop_*x")).unwrap());
    let out = gw.from_client(&e, &retry(24, "scan", json!({}), "srv-6"));
    assert_eq!(
        to_client(&out)["result"]["_meta"][DECISION_META]["decision"],
        "limit"
    );

    // Past the approval timeout, a server's state continues nothing.
    let mut gw = Gateway::new(
        Grant::new("alice"),
        GatewayOptions {
            approval_timeout: Duration::ZERO,
            ..GatewayOptions::default()
        },
    );
    let e = engine();
    init(&mut gw, &e, STATELESS_VERSION, false);
    gw.from_client(&e, &call(30, "scan", json!({})));
    gw.from_server(&e, &asks_input(30, "srv-7"));
    let out = gw.from_client(&e, &retry(31, "scan", json!({}), "srv-7"));
    // Decided anew: over the limit the first round was charged to.
    assert_eq!(
        to_client(&out)["result"]["_meta"][DECISION_META]["decision"],
        "limit"
    );
    assert_eq!(gw.next_deadline(), None);
}

#[test]
fn a_deep_input_required_answer_is_read_whole_and_still_continues() {
    // Past the envelope reader's depth the answer is read whole: the same fields count.
    let (e, mut gw) = (engine(), gateway());
    init(&mut gw, &e, STATELESS_VERSION, false);
    assert_eq!(
        gw.from_client(&e, &call(1, "scan", json!({}))).first(),
        Some(&Output::Forward)
    );
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"resultType":"input_required","requestState":"srv","inputRequests":{{"x":{}1{}}}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let out = gw.from_server(&e, deep.as_bytes());
    assert_eq!(audits(&out)[0].upstream, Some("input_required"));
    let retry = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"scan",
        "arguments":{},"requestState":"srv"}});
    assert_eq!(
        gw.from_client(&e, retry.to_string().as_bytes()),
        [Output::Forward]
    );
}
