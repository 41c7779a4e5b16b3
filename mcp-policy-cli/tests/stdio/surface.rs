//! Resources, prompts, completion and subscriptions through the stdio proxy, tool
//! annotations as policy inputs, and `list_changed` after a reload.

use super::*;

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
