//! Tool calls through the stdio proxy: allow, deny, limit, hide, pass-through, approvals in
//! both eras, real servers under argument conditions, and the Inspector CLI.

use super::*;

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
