//! Real clients through the gateway: the official Python SDK (2025-11-25 sessions, 2026-07-28
//! and `auto` modes) and the Inspector CLI, in front of server-everything, mcp-server-time and
//! the SDK fixture server (over stdio and over streamable HTTP).

use std::process::Command;
use std::time::Duration;

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::http::free_port;
use mcp_policy_test_support::peers::{peers, repo};
use serde_json::{Value, json};

use crate::e2e::{
    EVERYTHING_POLICY, FIXTURE_POLICY, decision, everything_http_on, fixture_http, sdk_client,
    sdk_new, sdk_new_approving,
};
use crate::gateway::{Gateway, audit_records, keys_file, text};

#[test]
fn python_sdk_over_streamable_http_through_the_gateway() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("sdk");
    let policy = t.write("p.json", EVERYTHING_POLICY);
    let keys = t.write("keys.json", &keys_file(&[("tok-ada", "ada")]));
    let audit = t.path("audit.jsonl");
    let audit_s = audit.display().to_string();
    let everything = peers["E2E_SERVER_EVERYTHING"].as_str().unwrap();
    let gw = Gateway::start(
        &["--policy", &policy, "--keys", &keys, "--audit", &audit_s],
        &[everything, "stdio"],
        &[],
    );
    let url = format!("http://{}/mcp", gw.addr);

    let steps = json!([
        {"op": "list-tools"},
        {"op": "call", "name": "echo", "args": {"message": "one"}},
        {"op": "call", "name": "echo", "args": {"message": "two"}},
        {"op": "call", "name": "echo", "args": {"message": "three"}},
        {"op": "call", "name": "get-sum", "args": {"a": 1, "b": 2}},
        {"op": "call", "name": "get-env", "args": {}},
        {"op": "call", "name": "trigger-long-running-operation", "args": {"duration": 1, "steps": 3}},
        {"op": "call", "name": "trigger-sampling-request", "args": {"prompt": "hello"}},
        {"op": "call", "name": "trigger-elicitation-request", "args": {}},
        {"op": "read-resource", "uri": "demo://resource/static/document/architecture.md"}
    ]);
    let run = sdk_client(
        peers,
        &url,
        "tok-ada",
        &[
            "--sampling-text",
            "fixed sampled reply",
            "--elicit-content",
            r#"{"name": "Ada"}"#,
            "steps",
            &steps.to_string(),
        ],
    );
    let names: Vec<&str> = run[0]["tool_names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(names.contains(&"echo") && names.contains(&"get-structured-content"));
    for removed in ["get-sum", "get-env", "get-tiny-image"] {
        assert!(!names.contains(&removed), "{removed} listed: {names:?}");
    }
    assert_eq!(text(&run[1]), "Echo: one");
    assert_eq!(run[2]["status"], "ok");
    assert_eq!(decision(&run[3])["decision"], "limit", "{}", run[3]);
    assert_eq!(text(&run[4]), "Sums are off today");
    assert_eq!(run[5]["error"]["message"], "Unknown tool: get-env");
    assert_eq!(run[6]["status"], "ok", "{}", run[6]);
    assert_eq!(run[6]["events"]["progress"].as_array().unwrap().len(), 3);
    assert_eq!(run[7]["events"]["sampling"].as_array().unwrap().len(), 1);
    assert!(text(&run[7]).contains("fixed sampled reply"), "{}", run[7]);
    assert!(run[8]["result"].to_string().contains("Ada"), "{}", run[8]);
    assert_eq!(run[9]["status"], "ok", "{}", run[9]);

    // An approval through elicitation on the POST's SSE stream: accepted, the call runs.
    let approve =
        json!([{"op": "call", "name": "get-structured-content", "args": {"location": "Chicago"}}]);
    let run = sdk_client(
        peers,
        &url,
        "tok-ada",
        &[
            "--elicit-content",
            r#"{"approve": true}"#,
            "steps",
            &approve.to_string(),
        ],
    );
    assert_eq!(run[0]["status"], "ok", "{}", run[0]);
    assert_eq!(run[0]["events"]["elicitation"].as_array().unwrap().len(), 1);
    // Declined: not forwarded.
    let run = sdk_client(
        peers,
        &url,
        "tok-ada",
        &["--elicit", "decline", "steps", &approve.to_string()],
    );
    assert_eq!(run[0]["status"], "is-error", "{}", run[0]);

    // A wrong token: the SDK's client fails to connect, nothing reaches the server.
    let script = repo().join("mcp-policy-cli/tests/e2e/client_http_gateway.py");
    let out = Command::new(peers["E2E_PYTHON"].as_str().unwrap())
        .arg(script)
        .args(["--total-timeout", "10", "info", "--", &url])
        .env("MCP_GATEWAY_TOKEN", "tok-wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The audit log names the caller from the keys file.
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    let calls: Vec<Value> = audit_text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l.get("tool").is_some())
        .collect();
    assert!(calls.len() >= 9, "{audit_text}");
    assert!(calls.iter().all(|c| c["grant"] == "ada"), "{audit_text}");
    // Without --threads, one event loop per CPU this process may use.
    let start = audit_records(&audit)
        .into_iter()
        .find(|l| l["event"] == "start")
        .unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(start["threads"], cpus, "{start}");
    drop(gw);
}

#[test]
fn upstream_url_server_everything_over_streamable_http() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("upstream");
    let policy = t.write("p.json", EVERYTHING_POLICY);
    let port = free_port().to_string();
    let server = everything_http_on(peers, &port);
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    // Two event loops: the SDK's pooled connections may land on either, so a session's
    // upstream connections are used from both.
    let mut gw = Gateway::remote(&policy, &upstream, &["--threads", "2"]);
    let url = format!("http://{}/mcp", gw.addr);
    let steps = json!([
        {"op": "list-tools"},
        {"op": "call", "name": "echo", "args": {"message": "one"}},
        {"op": "call", "name": "get-sum", "args": {"a": 1, "b": 2}},
        {"op": "call", "name": "get-env", "args": {}},
        {"op": "call", "name": "trigger-long-running-operation", "args": {"duration": 1, "steps": 3}},
        {"op": "call", "name": "trigger-sampling-request", "args": {"prompt": "hello"}},
        {"op": "call", "name": "get-structured-content", "args": {"location": "Chicago"}}
    ]);
    let run = sdk_client(
        peers,
        &url,
        "unused",
        &[
            "--sampling-text",
            "fixed sampled reply",
            "--elicit-content",
            r#"{"approve": true}"#,
            "steps",
            &steps.to_string(),
        ],
    );
    let names = run[0]["tool_names"].to_string();
    assert!(
        names.contains("\"echo\"") && !names.contains("get-sum"),
        "{names}"
    );
    assert_eq!(text(&run[1]), "Echo: one");
    assert_eq!(text(&run[2]), "Sums are off today");
    assert_eq!(run[3]["error"]["message"], "Unknown tool: get-env");
    assert_eq!(
        run[4]["events"]["progress"].as_array().unwrap().len(),
        3,
        "{}",
        run[4]
    );
    assert!(text(&run[5]).contains("fixed sampled reply"), "{}", run[5]);
    assert_eq!(run[6]["status"], "ok", "{}", run[6]);
    assert_eq!(run[6]["events"]["elicitation"].as_array().unwrap().len(), 1);
    // The Inspector CLI over HTTP, through the gateway, to the server's HTTP mode.
    inspector_lists_and_echoes(peers, &url, None, "inspected");
    // Every loop stops, and the sessions' DELETEs go up from the loops that own them.
    gw.signal("-TERM");
    let status = gw.wait(Duration::from_secs(10)).expect("the gateway exits");
    assert!(status.success(), "{status:?}\n{}", gw.stderr());
    drop(server);
}

/// The Inspector CLI against a URL: its stdout and whether it succeeded.
fn inspector_http(peers: &Value, url: &str, token: Option<&str>, args: &[&str]) -> (String, bool) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut cmd = Command::new("node");
    cmd.current_dir(peers["E2E_INSPECTOR_CWD"].as_str().unwrap())
        .arg(peers["E2E_INSPECTOR_JS"].as_str().unwrap())
        .args([url, "--transport", "http"])
        .args(args);
    if let Some(a) = &auth {
        cmd.args(["--header", a]);
    }
    let out = cmd.output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

/// The Inspector CLI lists the tools through a gateway running EVERYTHING_POLICY (filtered)
/// and calls `echo`.
fn inspector_lists_and_echoes(peers: &Value, url: &str, token: Option<&str>, message: &str) {
    let (listed, ok) = inspector_http(peers, url, token, &["--method", "tools/list"]);
    assert!(ok, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let names = listed["tools"].to_string();
    assert!(
        names.contains("\"echo\"") && !names.contains("get-sum"),
        "{names}"
    );
    let arg = format!("message={message}");
    let args = [
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        &arg,
    ];
    let (echoed, ok) = inspector_http(peers, url, token, &args);
    assert!(
        ok && echoed.contains(&format!("Echo: {message}")),
        "{echoed}"
    );
}

const TIME_POLICY: &str = r#"{"version":"1","default":"deny","tools":{
  "get_current_time":{"limits":[{"counter":"t","window":"minute","max":2}]},
  "convert_time":{"action":"approve","reason":"check conversions"}}}"#;

#[test]
fn python_sdk_2026_07_28_and_the_inspector_over_http() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("stateless-sdk");
    let keys = t.write("keys.json", &keys_file(&[("tok-ada", "ada")]));

    // 1. mcp.Client in 2026-07-28 mode (no handshake, no session) in front of
    //    mcp-server-time over stdio: limits, and approvals through input_required.
    let policy = t.write("time.json", TIME_POLICY);
    let time = peers["E2E_SERVER_TIME"].as_str().unwrap();
    let gw = Gateway::start(&["--policy", &policy, "--keys", &keys], &[time], &[]);
    let url = format!("http://{}/mcp", gw.addr);
    let now = json!({"timezone": "UTC"});
    let convert =
        json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"});
    let steps = json!([
        {"op": "list-tools"},
        {"op": "call", "name": "get_current_time", "args": now},
        {"op": "call", "name": "get_current_time", "args": now},
        {"op": "call", "name": "get_current_time", "args": now},
        {"op": "call", "name": "convert_time", "args": convert}
    ]);
    let run = sdk_new_approving(peers, &url, &steps);
    assert_eq!(
        run[0]["tool_names"],
        json!(["get_current_time", "convert_time"])
    );
    assert_eq!(run[1]["status"], "ok", "{}", run[1]);
    assert_eq!(run[2]["status"], "ok", "{}", run[2]);
    assert_eq!(decision(&run[3])["decision"], "limit", "{}", run[3]);
    assert_eq!(run[3]["result"]["resultType"], "complete", "{}", run[3]);
    assert_eq!(run[4]["status"], "ok", "{}", run[4]);
    assert!(text(&run[4]).contains("Europe/Paris"), "{}", run[4]);
    assert_eq!(run[4]["events"]["elicitation"].as_array().unwrap().len(), 1);
    let declined = json!([{"op": "call", "name": "convert_time", "args": convert}]);
    let run = sdk_new(
        peers,
        &url,
        "tok-ada",
        &["--elicit", "decline", "steps", &declined.to_string()],
    );
    assert_eq!(run[0]["status"], "is-error", "{}", run[0]);
    assert!(
        text(&run[0]).contains("not approved: the user declined"),
        "{}",
        run[0]
    );
    drop(gw);

    // 2. In front of server-everything (2025-11-25 only): `mode="auto"` probes, falls back
    //    to the handshake, and works; the Inspector CLI over HTTP.
    let policy = t.write("everything.json", EVERYTHING_POLICY);
    let everything = peers["E2E_SERVER_EVERYTHING"].as_str().unwrap();
    let gw = Gateway::start(
        &["--policy", &policy, "--keys", &keys],
        &[everything, "stdio"],
        &[],
    );
    let url = format!("http://{}/mcp", gw.addr);
    let steps = json!([{"op": "call", "name": "echo", "args": {"message": "auto"}}]);
    let run = sdk_new(
        peers,
        &url,
        "tok-ada",
        &["--mode", "auto", "steps", &steps.to_string()],
    );
    assert_eq!(text(&run[0]), "Echo: auto", "{}", run[0]);
    inspector_lists_and_echoes(peers, &url, Some("tok-ada"), "hi");
    let args = [
        "--method",
        "tools/call",
        "--tool-name",
        "get-sum",
        "--tool-arg",
        "a=1",
        "b=2",
    ];
    let (denied, _) = inspector_http(peers, &url, Some("tok-ada"), &args);
    let denied: Value = serde_json::from_str(&denied).unwrap();
    assert_eq!(denied["isError"], true, "{denied}");
    assert_eq!(
        denied["_meta"]["io.mcp-policy/decision"]["message"],
        "Sums are off today"
    );
    let (_, ok) = inspector_http(peers, &url, None, &["--method", "tools/list"]);
    assert!(!ok, "no token, yet the Inspector got in");
    drop(gw);

    // 3. A remote SDK server over streamable HTTP (`--upstream`), both eras: its own
    //    input_required rounds and elicitations pass; the gateway's approvals come first.
    let (server, port) = fixture_http(peers, None);
    let policy = t.write("fixture.json", FIXTURE_POLICY);
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let gw = Gateway::remote(&policy, &upstream, &["--keys", &keys]);
    let url = format!("http://{}/mcp", gw.addr);
    let steps = json!([
        {"op": "call", "name": "approve_action", "args": {"action": "deploy"}},
        {"op": "call", "name": "progress", "args": {"steps": 2}},
        {"op": "call", "name": "echo", "args": {"text": "a"}},
        {"op": "call", "name": "echo", "args": {"text": "a"}},
        {"op": "call", "name": "echo", "args": {"text": "a"}},
        {"op": "call", "name": "fail", "args": {"message": "x"}}
    ]);
    let run = sdk_new_approving(peers, &url, &steps);
    assert_eq!(text(&run[0]), "approved: deploy", "{}", run[0]);
    assert_eq!(run[1]["status"], "ok", "{}", run[1]);
    assert_eq!(
        run[1]["events"]["progress"].as_array().unwrap().len(),
        2,
        "{}",
        run[1]
    );
    assert_eq!(text(&run[2]), "echo: a");
    assert_eq!(decision(&run[4])["decision"], "limit", "{}", run[4]);
    assert_eq!(text(&run[5]), "no failing");
    let steps = json!([
        {"op": "call", "name": "approve_action", "args": {"action": "ship"}},
        {"op": "call", "name": "ask_llm", "args": {"prompt": "hi"}}
    ]);
    let run = sdk_client(
        peers,
        &url,
        "tok-ada",
        &[
            "--elicit-content",
            r#"{"approve": true}"#,
            "--sampling-text",
            "sampled",
            "steps",
            &steps.to_string(),
        ],
    );
    assert_eq!(text(&run[0]), "approved: ship", "{}", run[0]);
    assert!(text(&run[1]).contains("sampled"), "{}", run[1]);
    drop(gw);
    drop(server);
}

#[test]
fn a_servers_own_input_round_continues_an_approved_call_without_asking_again() {
    // 2026-07-28: the gateway asks its approval with `input_required`; the server, once the
    // call reaches it, asks input of its own the same way. The client's retry with the
    // server's `requestState` continues the call: not asked about again, not charged again.
    let Some(peers) = peers() else { return };
    let t = Temp::new("continued");
    let keys = t.write("keys.json", &keys_file(&[("tok-ada", "ada")]));
    let audit = t.path("audit.jsonl");
    let policy = t.write(
        "p.json",
        r#"{"version":"1","default":"allow","tools":{
          "approve_action":{"action":"approve","reason":"a person checks actions",
            "limits":[{"counter":"a","window":"minute","max":1}]}}}"#,
    );
    let (server, port) = fixture_http(peers, None);
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let audit_arg = audit.display().to_string();
    let gw = Gateway::remote(
        &policy,
        &upstream,
        &["--keys", &keys, "--audit", &audit_arg],
    );
    let url = format!("http://{}/mcp", gw.addr);
    let steps = json!([
        {"op": "call", "name": "approve_action", "args": {"action": "deploy"},
         "expect": {"status": "ok", "elicitations": 2, "text": "approved: deploy"}},
        {"op": "call", "name": "approve_action", "args": {"action": "deploy"},
         "expect": {"status": "is-error", "elicitations": 1}}
    ]);
    let run = sdk_new_approving(peers, &url, &steps);
    // The gateway's question, then the server's: two, not three.
    assert_eq!(text(&run[0]), "approved: deploy", "{}", run[0]);
    assert_eq!(run[0]["failures"], json!([]), "{}", run[0]);
    // Charged once: the same call again, approved, is over its limit of 1 a minute.
    assert_eq!(decision(&run[1])["decision"], "limit", "{}", run[1]);
    assert_eq!(run[1]["failures"], json!([]), "{}", run[1]);
    drop(gw);
    drop(server);
    // The audit log: the server's round, then the call's end, for one decision.
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &Value| l["tool"] == "approve_action" && l["decision"] == "allow")
        .collect();
    let outcomes: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["upstream"].as_str())
        .collect();
    assert_eq!(outcomes, ["input_required", "ok"], "{lines:?}");
}

/// The policy in front of the fixture server for the resources and prompts suite.
const SURFACE_POLICY: &str = r#"{"version":"1","default":"deny",
  "tools":{"peek":{}},
  "resources":{"fixture://docs/*":{"rate_limit":"2/minute"},
               "fixture://secrets/*":{"action":"hide"}},
  "prompts":{"greet":{"action":"approve","reason":"a person checks greetings"},
             "secret_plan":{"action":"deny","reason":"plans stay private"}}}"#;

#[test]
fn resources_and_prompts_are_decided_over_http_in_both_eras() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("surface-http");
    let policy = t.write("p.json", SURFACE_POLICY);
    let keys = t.write("keys.json", &keys_file(&[("tok-ada", "ada")]));
    let python = peers["E2E_PYTHON"].as_str().unwrap();
    let fixture = peers["E2E_FIXTURE_SERVER"].as_str().unwrap();
    // One gateway per era: each starts with fresh counters.
    let start = || {
        Gateway::start(
            &["--policy", &policy, "--keys", &keys],
            &[python, fixture],
            &[],
        )
    };
    let steps = json!([
        {"op": "list-resources"},
        {"op": "list-templates"},
        {"op": "list-prompts"},
        {"op": "read-resource", "uri": "fixture://docs/readme"},
        {"op": "read-resource", "uri": "fixture://secrets/key"},
        {"op": "read-resource", "uri": "FIXTURE://Secrets/%6Bey"},
        {"op": "get-prompt", "name": "secret_plan", "args": {"topic": "x"}},
        {"op": "get-prompt", "name": "greet", "args": {"name": "Ada"}},
        {"op": "read-resource", "uri": "fixture://docs/guide"},
        {"op": "read-resource", "uri": "fixture://docs/faq"}
    ]);
    // 2025-11-25 with a session, then 2026-07-28 without: the same answers.
    let gw = start();
    let url = format!("http://{}/mcp", gw.addr);
    let legacy = sdk_client(
        peers,
        &url,
        "tok-ada",
        &[
            "--elicit-content",
            r#"{"approve": true}"#,
            "steps",
            &steps.to_string(),
        ],
    );
    drop(gw);
    let gw = start();
    let url = format!("http://{}/mcp", gw.addr);
    let stateless = sdk_new_approving(peers, &url, &steps);
    for (era, run) in [("2025-11-25", &legacy), ("2026-07-28", &stateless)] {
        let listed = run[0]["resource_uris"].to_string();
        assert!(listed.contains("fixture://docs/readme"), "{era}: {listed}");
        assert!(
            !listed.contains("secrets"),
            "{era}: a hidden resource is listed: {listed}"
        );
        assert_eq!(
            run[1]["template_uris"],
            json!(["fixture://docs/{name}"]),
            "{era}"
        );
        assert_eq!(
            run[2]["prompt_names"],
            json!(["greet"]),
            "{era}: {}",
            run[2]
        );
        assert_eq!(run[3]["status"], "ok", "{era}: {}", run[3]);
        assert_eq!(run[4]["error"]["code"], -32002, "{era}: {}", run[4]);
        assert_eq!(
            run[5]["error"]["code"], -32002,
            "{era}: the `..` escape: {}",
            run[5]
        );
        assert_eq!(run[6]["error"]["code"], -32003, "{era}: {}", run[6]);
        assert_eq!(run[6]["error"]["message"], "plans stay private", "{era}");
        assert_eq!(
            run[7]["status"], "ok",
            "{era}: the approved prompt: {}",
            run[7]
        );
        assert!(
            run[7]["result"].to_string().contains("Ada"),
            "{era}: {}",
            run[7]
        );
        assert_eq!(run[8]["status"], "ok", "{era}: {}", run[8]);
        let limited = &run[9];
        assert_eq!(limited["error"]["code"], -32003, "{era}: {limited}");
        assert_eq!(
            limited["error"]["data"]["io.mcp-policy/decision"]["decision"], "limit",
            "{era}"
        );
    }
    // A filtered 2026-07-28 list is private, and cached no longer than a reload takes.
    for step in &stateless[0..3] {
        let meta = &step["list_meta"];
        assert!(meta["on_wire"].to_string().contains("cacheScope"), "{step}");
        assert_eq!(meta["cacheScope"], "private", "{step}");
        assert!(meta["ttlMs"].as_u64().unwrap() <= 50, "{step}");
    }
    drop(gw);
}

#[test]
fn a_reload_that_changes_a_list_notifies_http_sessions() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("list-changed-http");
    let both = r#"{"version":"1","default":"deny","resources":{},"prompts":{"greet":{},"secret_plan":{}}}"#;
    let hidden = r#"{"version":"1","default":"deny","resources":{},"prompts":{"greet":{},"secret_plan":{"action":"hide"}}}"#;
    let policy = t.write("p.json", both);
    let keys = t.write("keys.json", &keys_file(&[("tok-ada", "ada")]));
    let python = peers["E2E_PYTHON"].as_str().unwrap();
    let fixture = peers["E2E_FIXTURE_SERVER"].as_str().unwrap();
    let gw = Gateway::start(
        &["--policy", &policy, "--keys", &keys],
        &[python, fixture],
        &[],
    );
    let url = format!("http://{}/mcp", gw.addr);
    let steps = json!([
        {"op": "list-prompts"},
        {"op": "sleep", "seconds": 4},
        {"op": "list-prompts"}
    ])
    .to_string();
    let path = policy.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2000));
        std::fs::write(&path, hidden).unwrap();
    });
    let run = sdk_client(peers, &url, "tok-ada", &["steps", &steps]);
    writer.join().unwrap();
    assert_eq!(run[0]["prompt_names"], json!(["greet", "secret_plan"]));
    let notes = run[1]["events"]["notifications"].to_string();
    assert!(
        notes.contains("notifications/prompts/list_changed"),
        "{}",
        run[1]
    );
    assert_eq!(run[2]["prompt_names"], json!(["greet"]));
    drop(gw);
}
