//! The MCP layer on resources, prompts, completion and lists, message by message: what is
//! forwarded, what is answered, what is refunded, and how a 2026-07-28 list is marked.

use mcp_policy::mcp::{Gateway, GatewayOptions, Output};
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy};
use serde_json::{Value, json};

const POLICY: &str = r#"{"version":"1","default":"deny",
  "tools":{"peek":{"require":[{"path":"annotations.readOnlyHint","op":"eq","value":true}]}},
  "trust_annotations": true,
  "resources":{"file:///srv/*":{"rate_limit":"1/minute"},
               "file:///srv/secret*":{"action":"hide"}},
  "prompts":{"greet":{},"plan":{"action":"deny","reason":"plans stay private"}}}"#;

fn setup() -> (Engine<ManualClock, MemoryStore>, Gateway) {
    let engine = Engine::with_parts(
        Policy::from_json_str(POLICY).unwrap(),
        ManualClock::new(0),
        MemoryStore::new(),
    );
    (
        engine,
        Gateway::new(Grant::new("ada"), GatewayOptions::default()),
    )
}

fn request(id: u64, method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

fn answer(out: &[Output]) -> &Value {
    out.iter()
        .find_map(|o| match o {
            Output::ToClient(v) => Some(v),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no answer to the client: {out:?}"))
}

fn forwarded(out: &[Output]) -> bool {
    matches!(out.first(), Some(Output::Forward))
}

#[test]
fn reads_are_decided_on_the_normal_form_and_refunded_when_the_server_fails() {
    let (e, mut gw) = setup();
    let read = |id, uri: &str| request(id, "resources/read", json!({"uri": uri}));
    // Allowed, and the server fails it: refunded, so the next read fits in 1 a minute.
    assert!(forwarded(&gw.from_client(&e, &read(1, "file:///srv/a"))));
    let out = gw.from_server(
        &e,
        br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"Resource not found"}}"#,
    );
    let Some(Output::Audit(record)) = out.first() else {
        panic!("{out:?}")
    };
    assert!(record.refunded, "{record:?}");
    assert!(forwarded(
        &gw.from_client(&e, &read(2, "FILE://localhost/srv/./a"))
    ));
    gw.from_server(&e, br#"{"jsonrpc":"2.0","id":2,"result":{"contents":[]}}"#);
    let limited = gw.from_client(&e, &read(3, "file:///srv/b"));
    let limited = answer(&limited);
    assert_eq!(limited["error"]["code"], -32003);
    assert_eq!(
        limited["error"]["data"]["io.mcp-policy/decision"]["decision"],
        "limit"
    );
    // Hidden however spelled; escapes judged by where they lead; bad URIs refused.
    let hidden = gw.from_client(&e, &read(4, "file:///srv/%73ecret.txt"));
    assert_eq!(answer(&hidden)["error"]["code"], -32002);
    let escape = gw.from_client(&e, &read(5, "file:///srv/..%2F..%2Fetc/shadow"));
    assert_eq!(
        answer(&escape)["error"]["data"]["io.mcp-policy/decision"]["rule"],
        "/default"
    );
    let bad = gw.from_client(&e, &read(6, "file:///srv/%zz"));
    assert_eq!(answer(&bad)["error"]["code"], -32602);
    assert!(
        answer(&bad)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("%zz")
    );
    let missing = gw.from_client(&e, &request(7, "resources/read", json!({})));
    assert_eq!(answer(&missing)["error"]["code"], -32602);
}

#[test]
fn prompts_and_completion() {
    let (e, mut gw) = setup();
    let get = |id, name: &str| {
        request(
            id,
            "prompts/get",
            json!({"name": name, "arguments": {"who": "Ada"}}),
        )
    };
    assert!(forwarded(&gw.from_client(&e, &get(1, "greet"))));
    let denied = gw.from_client(&e, &get(2, "plan"));
    assert_eq!(answer(&denied)["error"]["message"], "plans stay private");
    let unlisted = gw.from_client(&e, &get(3, "other"));
    assert_eq!(answer(&unlisted)["error"]["code"], -32003);
    let bad = gw.from_client(
        &e,
        &request(4, "prompts/get", json!({"name": "greet", "arguments": [1]})),
    );
    assert_eq!(answer(&bad)["error"]["code"], -32602);
    let complete = |id, r: Value| {
        request(
            id,
            "completion/complete",
            json!({"ref": r, "argument": {"name": "a", "value": ""}}),
        )
    };
    assert!(forwarded(&gw.from_client(
        &e,
        &complete(5, json!({"type": "ref/prompt", "name": "greet"}))
    )));
    let refused = gw.from_client(
        &e,
        &complete(6, json!({"type": "ref/prompt", "name": "plan"})),
    );
    assert_eq!(answer(&refused)["error"]["message"], "Unknown prompt: plan");
    assert!(forwarded(&gw.from_client(
        &e,
        &complete(
            7,
            json!({"type": "ref/resource", "uri": "file:///srv/{name}"})
        )
    )));
    let refused = gw.from_client(
        &e,
        &complete(
            8,
            json!({"type": "ref/resource", "uri": "file:///etc/{name}"}),
        ),
    );
    assert_eq!(answer(&refused)["error"]["code"], -32002);
}

#[test]
fn a_listen_is_refused_whole_and_refunds_what_it_admitted() {
    let (e, mut gw) = setup();
    let listen = |id, uris: Value| {
        request(
            id,
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": uris}}),
        )
    };
    let out = gw.from_client(
        &e,
        &listen(1, json!(["file:///srv/a", "file:///etc/passwd"])),
    );
    assert_eq!(answer(&out)["error"]["code"], -32003);
    // The first URI's charge was released: a read of it still fits in 1 a minute.
    assert!(forwarded(&gw.from_client(
        &e,
        &request(2, "resources/read", json!({"uri": "file:///srv/a"}))
    )));
    let out = gw.from_client(&e, &listen(3, json!(["file:///srv/secret"])));
    assert_eq!(answer(&out)["error"]["code"], -32002);
}

#[test]
fn lists_are_filtered_and_a_2026_list_is_private_with_a_short_ttl() {
    let (e, mut gw) = setup();
    gw.from_client(&e, &request(1, "resources/list", json!({})));
    let out = gw.from_server(&e, json!({"jsonrpc": "2.0", "id": 1, "result": {
        "resources": [{"uri": "file:///srv/a", "name": "a"}, {"uri": "file:///srv/secret", "name": "s"},
                      {"uri": "file:///etc/passwd", "name": "p"}],
        "ttlMs": 600000, "cacheScope": "public", "nextCursor": "2"}}).to_string().as_bytes());
    let result = &answer(&out)["result"];
    assert_eq!(
        result["resources"],
        json!([{"uri": "file:///srv/a", "name": "a"}])
    );
    assert_eq!(
        (result["cacheScope"].as_str(), result["ttlMs"].as_u64()),
        (Some("private"), Some(50))
    );
    assert_eq!(result["nextCursor"], "2");
    // A 2025-11-25 list without those fields gets none added.
    gw.from_client(&e, &request(2, "prompts/list", json!({})));
    let out = gw.from_server(
        &e,
        br#"{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"greet"},{"name":"plan"}]}}"#,
    );
    assert_eq!(
        answer(&out)["result"],
        json!({"prompts": [{"name": "greet"}]})
    );
    gw.from_client(&e, &request(3, "resources/templates/list", json!({})));
    let out = gw.from_server(&e, br#"{"jsonrpc":"2.0","id":3,"result":{"resourceTemplates":[{"uriTemplate":"file:///srv/{x}"},{"uriTemplate":"file:///etc/{x}"}]}}"#);
    assert_eq!(
        answer(&out)["result"]["resourceTemplates"],
        json!([{"uriTemplate": "file:///srv/{x}"}])
    );
}

#[test]
fn annotations_count_once_the_tool_was_listed() {
    let (e, _) = setup();
    let options = GatewayOptions::default();
    let mut gw = Gateway::new(Grant::new("ada"), options.clone());
    let call = |id| request(id, "tools/call", json!({"name": "peek"}));
    let out = gw.from_client(&e, &call(1));
    assert_eq!(
        answer(&out)["result"]["isError"],
        true,
        "not listed yet: judged without hints"
    );
    gw.from_client(&e, &request(2, "tools/list", json!({})));
    gw.from_server(&e, br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"peek","annotations":{"readOnlyHint":true}}]}}"#);
    assert!(forwarded(&gw.from_client(&e, &call(3))));
    // Another gateway of the same host (options cloned) knows it too.
    let mut other = Gateway::new(Grant::new("bob"), options.clone());
    assert!(forwarded(&other.from_client(&e, &call(4))));
    // A gateway with options of its own has not seen the list.
    let mut stranger = Gateway::new(Grant::new("eve"), GatewayOptions::default());
    assert!(!forwarded(&stranger.from_client(&e, &call(5))));
}

#[test]
fn path_under_on_a_file_uri_is_judged_by_its_normal_path() {
    let policy = Policy::from_json_str(
        r#"{"version":"1","default":"deny","resources":{"file:///*":{"require":[
            {"path":"uri","op":"path_under","value":"/srv/docs","on_deny":"only /srv/docs"}]}},
          "tools":{"open":{"require":[{"path":"args.target","op":"path_under","value":"/srv/docs"}]}}}"#,
    )
    .unwrap();
    let e = Engine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
    let mut gw = Gateway::new(Grant::new("ada"), GatewayOptions::default());
    let read = |id, uri: &str| request(id, "resources/read", json!({"uri": uri}));
    assert!(forwarded(
        &gw.from_client(&e, &read(1, "file:///srv/docs/a.md"))
    ));
    for (id, escape) in [
        (2, "file:///srv/docs/../../etc/shadow"),
        (3, "file:///srv/docs/%2e%2e/%2E%2E/etc/shadow"),
        (4, "file:///srv/docs/..%2F..%2Fetc/shadow"),
        (5, "file:///srv/docsx/a"),
    ] {
        let out = gw.from_client(&e, &read(id, escape));
        assert_eq!(
            answer(&out)["error"]["message"],
            "only /srv/docs",
            "{escape}"
        );
    }
    // In a tool's argument too; a file URI naming another host is never under a local
    // directory (an evaluation error: denied).
    let open = |id, target: &str| {
        request(
            id,
            "tools/call",
            json!({"name": "open", "arguments": {"target": target}}),
        )
    };
    assert!(forwarded(
        &gw.from_client(&e, &open(6, "file:///srv/docs/b.md"))
    ));
    let out = gw.from_client(&e, &open(7, "file:///srv/docs/%2e%2e/x"));
    assert_eq!(answer(&out)["result"]["isError"], true);
    let out = gw.from_client(&e, &open(8, "file://elsewhere/srv/docs/b.md"));
    let text = answer(&out)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("another host"), "{text}");
}
