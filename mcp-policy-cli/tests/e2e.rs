//! `mcp-policy proxy` between real MCP clients and real MCP servers, all from the registries
//! and pinned (`tests/e2e/setup.sh` installs them into `target/e2e` on first use):
//!
//! - clients: the official Python SDK (`ClientSession` over `stdio_client`, 2025-11-25; and
//!   `mcp.Client` in `2026-07-28` and `auto` modes), and the MCP Inspector's CLI;
//! - servers: `@modelcontextprotocol/server-everything` and `server-filesystem` (npm),
//!   `mcp-server-time` and `mcp-server-git` (PyPI).
//!
//! Without Python or Node these tests are skipped with a loud message, except in CI (the
//! `CI` environment variable set), where a missing part fails them.

use std::process::Command;

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::mcp::{
    EVERYTHING_POLICY, audit_records, decision, error_decision, text,
};
use mcp_policy_test_support::peers::{peer, peers};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

/// What a client script printed: its connect line, its steps, its summary.
struct Run {
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    fn steps(&self) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["kind"] == "step").collect()
    }
    fn step(&self, n: usize) -> &Value {
        self.steps()
            .get(n)
            .copied()
            .unwrap_or_else(|| panic!("no step {n}: {:#?}\n{}", self.lines, self.stderr))
    }
    fn connect(&self) -> &Value {
        self.lines
            .iter()
            .find(|l| l["kind"] == "connect")
            .unwrap_or_else(|| panic!("no connect line: {:#?}\n{}", self.lines, self.stderr))
    }
}

/// Runs a client script with `args` in front of `proxy -- server`.
fn client(peers: &Value, script: &str, args: &[&str], proxy: &[String], server: &[String]) -> Run {
    let mut cmd = Command::new(peer(peers, "E2E_PYTHON"));
    cmd.arg(peer(peers, script))
        .args(args)
        .arg("--")
        .arg(BIN)
        .arg("proxy");
    cmd.args(proxy).arg("--").args(server);
    let out = cmd.output().expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Run {
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn everything(peers: &Value) -> Vec<String> {
    vec![peer(peers, "E2E_SERVER_EVERYTHING"), "stdio".into()]
}

#[test]
fn legacy_client_list_allow_deny_limit_hidden_and_passthrough() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("legacy");
    let policy = t.write("p.json", EVERYTHING_POLICY);
    let audit = t.path("audit.jsonl");
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
        {"op": "read-resource", "uri": "demo://resource/static/document/architecture.md"},
        {"op": "list-prompts"}
    ]);
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &[
            "--sampling-text",
            "fixed sampled reply",
            "--elicit-content",
            r#"{"name": "Ada"}"#,
            "steps",
            &steps.to_string(),
        ],
        &[
            "--policy".into(),
            policy,
            "--audit".into(),
            audit.display().to_string(),
        ],
        &everything(peers),
    );
    assert_eq!(run.connect()["protocol_version"], "2025-11-25");

    // The list shows only what the policy can allow.
    let names: Vec<&str> = run.step(0)["tool_names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for allowed in [
        "echo",
        "trigger-long-running-operation",
        "get-structured-content",
    ] {
        assert!(names.contains(&allowed), "{allowed} missing from {names:?}");
    }
    for removed in ["get-sum", "get-env", "get-tiny-image"] {
        assert!(!names.contains(&removed), "{removed} listed: {names:?}");
    }

    // allow, allow, limit (with the retry text and the decision in _meta).
    assert_eq!(run.step(1)["status"], "ok");
    assert_eq!(text(run.step(1)), "Echo: one");
    assert_eq!(run.step(2)["status"], "ok");
    let limited = run.step(3);
    assert_eq!(limited["status"], "is-error", "{limited}");
    assert_eq!(decision(limited)["decision"], "limit");
    assert_eq!(decision(limited)["counter"], "echo.rate_limit");
    assert!(text(limited).contains("retry in"), "{limited}");

    // deny: a tool error with the policy's message.
    let denied = run.step(4);
    assert_eq!(denied["status"], "is-error");
    assert_eq!(text(denied), "Sums are off today");
    assert_eq!(decision(denied)["rule"], "/tools/get-sum/action");

    // hidden: the same answer as a tool that does not exist.
    let hidden = run.step(5);
    assert_eq!(hidden["status"], "error");
    assert_eq!(hidden["error"]["code"], -32602);
    assert_eq!(hidden["error"]["message"], "Unknown tool: get-env");

    // Progress notifications from the server reach the client.
    let progress = run.step(6);
    assert_eq!(progress["status"], "ok", "{progress}");
    assert_eq!(progress["events"]["progress"].as_array().unwrap().len(), 3);

    // A sampling request from the server reaches the client, and its answer the server.
    let sampling = run.step(7);
    assert_eq!(sampling["status"], "ok", "{sampling}");
    assert_eq!(sampling["events"]["sampling"].as_array().unwrap().len(), 1);
    assert!(text(sampling).contains("fixed sampled reply"), "{sampling}");

    // The server's own elicitation passes through both ways (not the gateway's).
    let elicited = run.step(8);
    assert_eq!(elicited["status"], "ok", "{elicited}");
    assert_eq!(
        elicited["events"]["elicitation"].as_array().unwrap().len(),
        1
    );
    assert!(elicited["result"].to_string().contains("Ada"), "{elicited}");

    // Resources and prompts pass.
    assert_eq!(run.step(9)["status"], "ok", "{}", run.step(9));
    assert!(run.step(9)["result"].to_string().contains("architecture"));
    assert_eq!(run.step(10)["status"], "ok");

    // One audit line per call that reached the policy.
    let audit = audit_records(&audit);
    let calls: Vec<&Value> = audit.iter().filter(|l| l.get("tool").is_some()).collect();
    assert_eq!(calls.len(), 8, "{audit:#?}");
    assert_eq!(calls[0]["upstream"], "ok");
    assert_eq!(calls[2]["decision"], "limit");
    assert!(calls[2].get("upstream").is_none());
    assert!(calls.iter().all(|c| c["grant"] == "local"));
}

/// Names in a list step's field.
fn names<'a>(step: &'a Value, field: &str) -> Vec<&'a str> {
    step[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {step}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn resources_prompts_and_completion_are_decided_through_the_proxy() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("surface");
    let policy = t.write("p.json", EVERYTHING_POLICY);
    let audit = t.path("audit.jsonl");
    let doc = "demo://resource/static/document";
    let steps = json!([
        {"op": "list-resources"},
        {"op": "read-resource", "uri": format!("{doc}/architecture.md")},
        {"op": "read-resource", "uri": format!("{doc}/startup.md")},
        {"op": "read-resource", "uri": format!("{doc}/structure.md")},
        // Starts with an allowed prefix, but its path leaves it (percent-encoded `..`).
        {"op": "read-resource", "uri": format!("{doc}/%2e%2e/%2E%2E/dynamic/blob/1")},
        {"op": "list-templates"},
        {"op": "list-prompts"},
        {"op": "get-prompt", "name": "simple-prompt"},
        {"op": "get-prompt", "name": "resource-prompt", "args": {"resourceType": "Text", "resourceId": "1"}},
        {"op": "complete", "ref": "prompt:completable-prompt", "argument": "department", "value": "Eng"},
        {"op": "complete", "ref": "prompt:resource-prompt", "argument": "resourceType", "value": "T"},
        {"op": "read-resource", "uri": format!("{doc}/extension.md")},
        {"op": "read-resource", "uri": format!("{doc}/features.md")},
        {"op": "read-resource", "uri": format!("{doc}/instructions.md")},
        {"op": "get-prompt", "name": "args-prompt", "args": {"city": "Lyon"}}
    ]);
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["--elicit", "accept", "steps", &steps.to_string()],
        &[
            "--policy".into(),
            policy,
            "--audit".into(),
            audit.display().to_string(),
        ],
        &everything(peers),
    );
    // resources/list: what the policy can never allow is gone (hidden, denied).
    let listed = names(run.step(0), "resource_uris");
    assert!(
        listed.contains(&"demo://resource/static/document/architecture.md"),
        "{listed:?}"
    );
    for absent in ["structure.md", "startup.md"] {
        assert!(
            !listed.iter().any(|u| u.ends_with(absent)),
            "{absent} listed: {listed:?}"
        );
    }
    // An allowed read passes; a denied one is an error carrying the decision.
    assert_eq!(run.step(1)["status"], "ok", "{}", run.step(1));
    assert!(run.step(1)["result"].to_string().contains("architecture"));
    let denied = run.step(2);
    assert_eq!(denied["status"], "error", "{denied}");
    assert_eq!(denied["error"]["code"], -32003);
    assert_eq!(denied["error"]["message"], "Startup notes are internal");
    assert_eq!(
        error_decision(denied)["rule"],
        "/resources/demo:~1~1resource~1static~1document~1startup.md/action"
    );
    // A hidden resource is one that does not exist.
    let hidden = run.step(3);
    assert_eq!(hidden["error"]["code"], -32002, "{hidden}");
    assert_eq!(hidden["error"]["message"], "Resource not found");
    // The escape is judged by where it leads, not by how it starts.
    let escape = run.step(4);
    assert_eq!(escape["error"]["code"], -32003, "{escape}");
    assert_eq!(error_decision(escape)["rule"], "/default");
    // Templates and prompts are filtered too.
    let templates = names(run.step(5), "template_uris");
    assert_eq!(
        templates,
        ["demo://resource/dynamic/text/{resourceId}"],
        "{templates:?}"
    );
    let prompts = names(run.step(6), "prompt_names");
    assert!(
        prompts.contains(&"simple-prompt") && prompts.contains(&"args-prompt"),
        "{prompts:?}"
    );
    assert!(!prompts.contains(&"resource-prompt"), "{prompts:?}");
    assert_eq!(run.step(7)["status"], "ok", "{}", run.step(7));
    let unlisted = run.step(8);
    assert_eq!(unlisted["error"]["code"], -32003, "{unlisted}");
    assert_eq!(error_decision(unlisted)["rule"], "/default");
    // Completion only for a prompt the caller may use.
    assert_eq!(run.step(9)["status"], "ok", "{}", run.step(9));
    assert!(
        run.step(9)["completion_values"]
            .to_string()
            .contains("Engineering")
    );
    let completion = run.step(10);
    assert_eq!(completion["error"]["code"], -32602, "{completion}");
    assert_eq!(
        completion["error"]["message"],
        "Unknown prompt: resource-prompt"
    );
    // The read limit: 3 a minute, then `limit` with an exact retry-after.
    assert_eq!(run.step(11)["status"], "ok");
    assert_eq!(run.step(12)["status"], "ok");
    let limited = run.step(13);
    assert_eq!(limited["error"]["code"], -32003, "{limited}");
    assert_eq!(error_decision(limited)["decision"], "limit");
    assert_eq!(
        error_decision(limited)["counter"],
        "resources/demo://resource/static/document/*.rate_limit"
    );
    let retry = error_decision(limited)["retry_after_ms"].as_u64().unwrap();
    assert!(retry > 50_000 && retry <= 60_000, "{limited}");
    assert!(
        limited["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in")
    );
    // A prompt that needs approval: asked by elicitation, then answered by the server.
    let approved = run.step(14);
    assert_eq!(approved["status"], "ok", "{approved}\n{}", run.stderr);
    let asked = approved["events"]["elicitation"][0]["params"]["message"]
        .as_str()
        .unwrap();
    assert!(
        asked.contains("Approve this prompt?") && asked.contains("Lyon"),
        "{asked}"
    );
    assert!(
        approved["result"].to_string().contains("Lyon"),
        "{approved}"
    );
    // The audit log names what each decision was about.
    let audit = audit_records(&audit);
    let reads: Vec<&Value> = audit
        .iter()
        .filter(|l| l.get("resource").is_some())
        .collect();
    assert_eq!(reads.len(), 7, "{audit:#?}");
    assert_eq!(reads[0]["upstream"], "ok");
    assert_eq!(reads[3]["resource"], "demo://resource/dynamic/blob/1");
    let prompts: Vec<&Value> = audit.iter().filter(|l| l.get("prompt").is_some()).collect();
    assert_eq!(prompts.len(), 3, "{audit:#?}");
}

#[test]
fn elicitation_approvals_accept_decline_and_timeout() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("elicit");
    let policy = t.write("p.json", EVERYTHING_POLICY);
    let call =
        json!([{"op": "call", "name": "get-structured-content", "args": {"location": "Chicago"}}])
            .to_string();
    let proxy = |timeout: &str| {
        vec![
            "--policy".to_owned(),
            policy.clone(),
            "--approval-timeout".into(),
            timeout.into(),
        ]
    };

    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["--elicit", "accept", "steps", &call],
        &proxy("30s"),
        &everything(peers),
    );
    let step = run.step(0);
    assert_eq!(step["status"], "ok", "{step}\n{}", run.stderr);
    let asked = &step["events"]["elicitation"][0]["params"];
    let message = asked["message"].as_str().unwrap();
    assert!(message.contains("get-structured-content") && message.contains("Chicago"));
    assert!(message.contains("a person checks each lookup"));
    assert_eq!(
        asked["requestedSchema"]["properties"]["approve"]["type"],
        "boolean"
    );

    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["--elicit", "decline", "steps", &call],
        &proxy("30s"),
        &everything(peers),
    );
    let step = run.step(0);
    assert_eq!(step["status"], "is-error", "{step}");
    assert!(text(step).contains("declined"), "{step}");

    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["--elicit", "sleep", "--elicit-sleep", "3", "steps", &call],
        &proxy("1s"),
        &everything(peers),
    );
    let step = run.step(0);
    assert_eq!(step["status"], "is-error", "{step}");
    assert!(text(step).contains("no answer within 1 s"), "{step}");
}

#[test]
fn input_required_for_2026_clients_and_auto_mode_falls_back() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("stateless");
    let policy = t.write(
        "p.json",
        r#"{"version":"1","default":"deny","tools":{
          "get_current_time":{"action":"approve","reason":"time is precious"},
          "convert_time":{"action":"deny","reason":"no converting"}}}"#,
    );
    let time = vec![
        peer(peers, "E2E_SERVER_TIME"),
        "--local-timezone".into(),
        "UTC".into(),
    ];
    let steps = json!([
        {"op": "list-tools"},
        {"op": "call", "name": "get_current_time", "args": {"timezone": "UTC"}},
        {"op": "call", "name": "convert_time", "args": {"source_timezone": "UTC", "time": "10:00", "target_timezone": "UTC"}}
    ])
    .to_string();
    for mode in ["2026-07-28", "auto"] {
        let run = client(
            peers,
            "E2E_CLIENT_NEW",
            &["--mode", mode, "--elicit", "accept", "steps", &steps],
            &["--policy".into(), policy.clone()],
            &time,
        );
        assert_eq!(
            run.connect()["protocol_version"],
            "2026-07-28",
            "{}",
            run.stderr
        );
        assert_eq!(run.step(0)["tool_names"], json!(["get_current_time"]));
        let approved = run.step(1);
        assert_eq!(
            approved["status"], "ok",
            "{mode}: {approved}\n{}",
            run.stderr
        );
        assert_eq!(
            approved["events"]["elicitation"].as_array().unwrap().len(),
            1
        );
        assert!(
            text(approved).contains("\"timezone\": \"UTC\""),
            "{approved}"
        );
        let denied = run.step(2);
        assert_eq!(denied["status"], "is-error", "{mode}: {denied}");
        assert_eq!(text(denied), "no converting");
    }
    // Declined in the input_required round: asked once, answered as not approved; the call
    // never reaches the server.
    let run = client(
        peers,
        "E2E_CLIENT_NEW",
        &[
            "--mode",
            "2026-07-28",
            "--elicit",
            "decline",
            "call",
            "get_current_time",
            r#"{"timezone":"UTC"}"#,
        ],
        &["--policy".into(), policy.clone()],
        &time,
    );
    let step = run.step(0);
    assert_eq!(step["status"], "is-error", "{step}");
    assert!(
        text(step).contains("not approved: the user declined"),
        "{step}"
    );
    assert_eq!(step["events"]["elicitation"].as_array().unwrap().len(), 1);

    // auto mode in front of a server without 2026-07-28 falls back to 2025-11-25, and the
    // approval goes through elicitation there.
    let policy = t.write("e.json", EVERYTHING_POLICY);
    let run = client(
        peers,
        "E2E_CLIENT_NEW",
        &[
            "--mode",
            "auto",
            "--elicit",
            "accept",
            "call",
            "get-structured-content",
            r#"{"location":"Chicago"}"#,
        ],
        &["--policy".into(), policy],
        &everything(peers),
    );
    assert_eq!(
        run.connect()["protocol_version"],
        "2025-11-25",
        "{}",
        run.stderr
    );
    let step = run.step(0);
    assert_eq!(step["status"], "ok", "{step}\n{}", run.stderr);
    assert_eq!(step["events"]["elicitation"].as_array().unwrap().len(), 1);
}

#[test]
fn filesystem_and_git_servers_under_argument_conditions() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("fs");
    let data = t.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("notes.txt"), "hello from the e2e test").unwrap();
    let data_s = data.display().to_string();
    let policy = t.write(
        "fs.json",
        &json!({
            "version": "1", "default": "deny",
            "tools": {
                "read_text_file": {"require": [
                    {"path": "args.path", "op": "path_under", "value": data_s,
                     "on_deny": "reads stay inside the data directory"}]},
                "list_allowed_directories": {},
                "write_file": {"action": "deny", "reason": "read-only access"}
            }
        })
        .to_string(),
    );
    let steps = json!([
        {"op": "call", "name": "read_text_file", "args": {"path": format!("{data_s}/notes.txt")}},
        {"op": "call", "name": "read_text_file", "args": {"path": format!("{data_s}/../fs.json")}},
        {"op": "call", "name": "write_file", "args": {"path": format!("{data_s}/x"), "content": "x"}},
        {"op": "list-tools"}
    ])
    .to_string();
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["steps", &steps],
        &["--policy".into(), policy],
        &[peer(peers, "E2E_SERVER_FILESYSTEM"), data_s.clone()],
    );
    assert_eq!(run.step(0)["status"], "ok", "{}", run.step(0));
    assert!(text(run.step(0)).contains("hello from the e2e test"));
    assert_eq!(run.step(1)["status"], "is-error");
    assert_eq!(text(run.step(1)), "reads stay inside the data directory");
    assert_eq!(run.step(2)["status"], "is-error");
    assert!(
        !data.join("x").exists(),
        "a denied write reached the server"
    );
    assert_eq!(
        run.step(3)["tool_names"],
        json!(["read_text_file", "list_allowed_directories"])
    );

    // mcp-server-git on a repository of its own.
    let repo_dir = t.path("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&repo_dir)
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo_dir.join("a.txt"), "a").unwrap();
    let repo_s = repo_dir.display().to_string();
    let policy = t.write(
        "git.json",
        r#"{"version":"1","default":"deny","tools":{"git_status":{},"git_commit":{"action":"deny","reason":"no commits from agents"}}}"#,
    );
    let steps = json!([
        {"op": "call", "name": "git_status", "args": {"repo_path": repo_s}},
        {"op": "call", "name": "git_commit", "args": {"repo_path": repo_s, "message": "x"}}
    ])
    .to_string();
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["steps", &steps],
        &["--policy".into(), policy],
        &[
            peer(peers, "E2E_SERVER_GIT"),
            "--repository".into(),
            repo_s.clone(),
        ],
    );
    assert_eq!(
        run.step(0)["status"],
        "ok",
        "{}\n{}",
        run.step(0),
        run.stderr
    );
    assert!(text(run.step(0)).contains("a.txt"), "{}", run.step(0));
    assert_eq!(run.step(1)["status"], "is-error");
    assert_eq!(text(run.step(1)), "no commits from agents");
}

#[test]
fn inspector_cli_through_the_proxy() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("inspector");
    let policy = t.write("p.json", EVERYTHING_POLICY);
    let inspector = |args: &[&str]| {
        let mut cmd = Command::new("bash");
        cmd.arg(peer(peers, "E2E_INSPECTOR")).args(args);
        cmd.arg("--")
            .arg(BIN)
            .args(["proxy", "--policy", &policy, "--"]);
        cmd.args(everything(peers));
        cmd.env("E2E_DIR", peer(peers, "E2E_DIR"));
        cmd.output().expect("the inspector runs")
    };
    let o = inspector(&["--method", "tools/list"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo") && !names.contains(&"get-sum") && !names.contains(&"get-env"));

    let o = inspector(&[
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        "message=hi",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["content"][0]["text"], "Echo: hi");

    let o = inspector(&[
        "--method",
        "tools/call",
        "--tool-name",
        "get-sum",
        "--tool-arg",
        "a=1",
        "--tool-arg",
        "b=2",
    ]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["isError"], true, "{r}");
    assert_eq!(r["_meta"]["io.mcp-policy/decision"]["decision"], "deny");

    let o = inspector(&["--method", "tools/call", "--tool-name", "get-env"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("-32602"));

    // Resources and prompts: filtered lists, an allowed read, a denied and a hidden one.
    let o = inspector(&["--method", "resources/list"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let uris = list["resources"].to_string();
    assert!(
        uris.contains("architecture.md") && !uris.contains("structure.md"),
        "{uris}"
    );
    let doc = "demo://resource/static/document";
    let read = |uri: &str| inspector(&["--method", "resources/read", "--uri", uri]);
    let o = read(&format!("{doc}/architecture.md"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = read(&format!("{doc}/startup.md"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("-32003") && err.contains("Startup notes are internal"),
        "{err}"
    );
    let o = read(&format!("{doc}/structure.md"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("-32002"), "{err}");
    let o = inspector(&["--method", "prompts/list"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let prompts = list["prompts"].to_string();
    assert!(
        prompts.contains("simple-prompt") && !prompts.contains("resource-prompt"),
        "{prompts}"
    );
    let o = inspector(&["--method", "prompts/get", "--prompt-name", "simple-prompt"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = inspector(&[
        "--method",
        "prompts/get",
        "--prompt-name",
        "resource-prompt",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("-32003"));
}

/// A policy that approves every destructive tool and lets read-only ones through, by the
/// annotations the fixture server lists; `trust` says whether it trusts them.
fn annotations_policy(trust: bool) -> String {
    json!({
        "version": "1", "default": "deny", "trust_annotations": trust,
        "all_tools": {"approve_if": [{
            "conditions": [{"path": "annotations.destructiveHint", "op": "eq", "value": true}],
            "reason": "destructive tools need a person"}]},
        "tools": {"*": {
            "require": [{"path": "annotations.readOnlyHint", "op": "eq", "value": true,
                         "on_deny": "only read-only tools run unattended"}],
            "rate_limit": "100/minute"},
          "wipe_cache": {}},
        "resources": {}, "prompts": {}
    })
    .to_string()
}

#[test]
fn tool_annotations_drive_the_policy_only_when_trusted_and_seen_listed() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("annotations");
    let fixture = vec![peer(peers, "E2E_PYTHON"), peer(peers, "E2E_FIXTURE_SERVER")];
    let steps = json!([
        {"op": "call", "name": "peek"},
        {"op": "list-tools"},
        {"op": "call", "name": "peek"},
        {"op": "call", "name": "wipe_cache"},
        {"op": "call", "name": "plain_tool"}
    ])
    .to_string();
    let trusted = t.write("trusted.json", &annotations_policy(true));
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["--elicit", "accept", "steps", &steps],
        &["--policy".into(), trusted],
        &fixture,
    );
    // Not seen listed yet: judged as if it had no hints (not read-only).
    let unseen = run.step(0);
    assert_eq!(unseen["status"], "is-error", "{unseen}");
    assert_eq!(text(unseen), "only read-only tools run unattended");
    // Listed read-only: through, no human asked.
    let names = names(run.step(1), "tool_names");
    assert!(
        names.contains(&"peek") && names.contains(&"wipe_cache"),
        "{names:?}"
    );
    let peek = run.step(2);
    assert_eq!(text(peek), "peek: done", "{peek}");
    assert_eq!(peek["events"]["elicitation"], json!([]), "{peek}");
    // Listed destructive: a person is asked first.
    let wipe = run.step(3);
    assert_eq!(text(wipe), "wipe_cache: done", "{wipe}\n{}", run.stderr);
    let asked = wipe["events"]["elicitation"][0]["params"]["message"]
        .as_str()
        .unwrap();
    assert!(asked.contains("destructive tools need a person"), "{asked}");
    // No annotations: destructive and not read-only by the spec's defaults.
    let plain = run.step(4);
    assert_eq!(plain["status"], "is-error", "{plain}");
    assert_eq!(text(plain), "only read-only tools run unattended");

    // Untrusted: the same listing counts for nothing.
    let untrusted = t.write("untrusted.json", &annotations_policy(false));
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["--elicit", "accept", "steps", &steps],
        &["--policy".into(), untrusted],
        &fixture,
    );
    assert_eq!(
        text(run.step(2)),
        "only read-only tools run unattended",
        "{}",
        run.step(2)
    );
    let wipe = run.step(3);
    assert!(
        wipe["events"]["elicitation"][0]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("destructive"),
        "{wipe}"
    );
}

#[test]
fn a_reload_that_changes_a_list_sends_list_changed() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("list-changed");
    let both = r#"{"version":"1","default":"deny","resources":{},"prompts":{"greet":{},"secret_plan":{}}}"#;
    let hidden = r#"{"version":"1","default":"deny","resources":{},"prompts":{"greet":{},"secret_plan":{"action":"hide"}}}"#;
    let policy = t.write("p.json", both);
    let fixture = vec![peer(peers, "E2E_PYTHON"), peer(peers, "E2E_FIXTURE_SERVER")];
    let steps = json!([
        {"op": "list-prompts"},
        {"op": "sleep", "seconds": 4},
        {"op": "list-prompts"}
    ])
    .to_string();
    let path = policy.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(2000));
        std::fs::write(&path, hidden).unwrap();
    });
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["steps", &steps],
        &["--policy".into(), policy],
        &fixture,
    );
    writer.join().unwrap();
    assert_eq!(names(run.step(0), "prompt_names"), ["greet", "secret_plan"]);
    let notes: Vec<&str> = run.step(1)["events"]["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["method"].as_str())
        .collect();
    assert_eq!(
        notes,
        ["notifications/prompts/list_changed"],
        "{}\n{}",
        run.step(1),
        run.stderr
    );
    assert_eq!(names(run.step(2), "prompt_names"), ["greet"]);
}

#[test]
fn subscriptions_are_decided_per_uri_in_both_eras() {
    let Some(peers) = peers() else { return };
    let t = Temp::new("subscriptions");
    let policy = t.write(
        "p.json",
        r#"{"version":"1","default":"deny","tools":{"touch":{}},"prompts":{},
            "resources":{"fixture://docs/*":{},"fixture://secrets/*":{"action":"hide"}}}"#,
    );
    let fixture = vec![peer(peers, "E2E_PYTHON"), peer(peers, "E2E_FIXTURE_SERVER")];
    // 2025-11-25: resources/subscribe.
    let steps = json!([
        {"op": "subscribe", "uri": "fixture://docs/readme"},
        {"op": "subscribe", "uri": "fixture://secrets/key"},
        {"op": "subscribe", "uri": "fixture://elsewhere/x"}
    ])
    .to_string();
    let run = client(
        peers,
        "E2E_CLIENT_LEGACY",
        &["steps", &steps],
        &["--policy".into(), policy.clone()],
        &fixture,
    );
    assert_eq!(
        run.step(0)["status"],
        "ok",
        "{}\n{}",
        run.step(0),
        run.stderr
    );
    assert_eq!(run.step(1)["error"]["code"], -32002, "{}", run.step(1));
    assert_eq!(run.step(2)["error"]["code"], -32003, "{}", run.step(2));
    // 2026-07-28: subscriptions/listen, each URI it subscribes to decided.
    let steps = json!([
        {"op": "listen", "uri": "fixture://docs/readme", "seconds": 1,
         "call": {"name": "touch", "args": {"uri": "fixture://docs/readme"}}},
        {"op": "listen", "uri": "fixture://secrets/key", "seconds": 1}
    ])
    .to_string();
    let run = client(
        peers,
        "E2E_CLIENT_NEW",
        &["--mode", "2026-07-28", "steps", &steps],
        &["--policy".into(), policy],
        &fixture,
    );
    let listened = run.step(0);
    assert_eq!(listened["status"], "ok", "{listened}\n{}", run.stderr);
    assert!(
        listened["result"]["events"]
            .to_string()
            .contains("fixture://docs/readme"),
        "{listened}"
    );
    assert_eq!(run.step(1)["error"]["code"], -32002, "{}", run.step(1));
}
