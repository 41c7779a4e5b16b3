//! Spec sections 6 (names and patterns), 7 (order of evaluation), 8 (approvals),
//! 9 (arguments and inputs), and `tools/list` filtering.

mod spec_support;

use mcp_policy::args::{MAX_BYTES, MAX_DEPTH};
use mcp_policy::{Grant, HostError, Verdict};
use serde_json::{Value, json};
use spec_support::*;

/// The rule that decided `tool` (called with `{}`) and its verdict.
fn decided_by(engine: &TestEngine, tool: &str) -> (Verdict, String) {
    let d = call(engine, tool, json!({}));
    (d.verdict, d.rule.to_string())
}

fn tools_policy(tools: &str) -> String {
    format!(r#"{{"version":"1","default":"deny","tools":{tools}}}"#)
}

// ---------------------------------------------------------------- section 6

#[test]
fn exact_key_beats_every_pattern() {
    let (e, _) = engine(&tools_policy(
        r#"{"*":{"action":"deny"},"read_*":{"action":"deny"},"read_file":{},"read_fil?":{"action":"deny"}}"#,
    ));
    assert_eq!(
        decided_by(&e, "read_file"),
        (Verdict::Allow, "/tools/read_file".into())
    );
    assert_eq!(
        decided_by(&e, "read_dir"),
        (Verdict::Deny, "/tools/read_*/action".into())
    );
    assert_eq!(
        decided_by(&e, "write"),
        (Verdict::Deny, "/tools/*/action".into())
    );
    assert_eq!(e.policy().matching_key("read_file"), Some("read_file"));
    assert_eq!(e.policy().matching_key("read_files"), Some("read_*"));
}

#[test]
fn the_pattern_with_most_literal_characters_wins_whatever_the_order() {
    for tools in [
        r#"{"gh_*":{"action":"deny"},"gh_issue_*":{}}"#,
        r#"{"gh_issue_*":{},"gh_*":{"action":"deny"}}"#,
    ] {
        let (e, _) = engine(&tools_policy(tools));
        assert_eq!(
            decided_by(&e, "gh_issue_create"),
            (Verdict::Allow, "/tools/gh_issue_*".into()),
            "{tools}"
        );
        assert_eq!(
            decided_by(&e, "gh_pr_create"),
            (Verdict::Deny, "/tools/gh_*/action".into()),
            "{tools}"
        );
    }
    // `?` and `*` are not literal: `a?c*` (2 literals) loses to `abc*` (3) though written first.
    let (e, _) = engine(&tools_policy(r#"{"a?c*":{"action":"deny"},"abc*":{}}"#));
    assert_eq!(
        decided_by(&e, "abcd"),
        (Verdict::Allow, "/tools/abc*".into())
    );
}

#[test]
fn a_tie_between_patterns_goes_to_the_first_written() {
    for (tools, winner) in [
        (r#"{"a*c":{},"ab*":{}}"#, "/tools/a*c"),
        (r#"{"ab*":{},"a*c":{}}"#, "/tools/ab*"),
    ] {
        let (e, _) = engine(&tools_policy(tools));
        assert_eq!(
            decided_by(&e, "abc"),
            (Verdict::Allow, winner.into()),
            "{tools}"
        );
    }
}

#[test]
fn a_tie_goes_to_the_first_written_pattern_even_when_it_sorts_last() {
    // Each pair ties on literal characters (`zz_*` and `*_xx`: 3; `ab_c*` and `a*_cd`: 4), and
    // the pattern written first sorts after the other (`*` is 0x2a): key order would pick
    // the second one.
    for (first, second, tool) in [("zz_*", "*_xx", "zz_xx"), ("ab_c*", "a*_cd", "ab_cd")] {
        let forward = format!(r#"{{"{first}":{{"action":"deny"}},"{second}":{{}}}}"#);
        let (e, _) = engine(&tools_policy(&forward));
        assert_eq!(
            decided_by(&e, tool),
            (Verdict::Deny, format!("/tools/{first}/action")),
            "{forward}"
        );
        let backward = format!(r#"{{"{second}":{{}},"{first}":{{"action":"deny"}}}}"#);
        let (e, _) = engine(&tools_policy(&backward));
        assert_eq!(
            decided_by(&e, tool),
            (Verdict::Allow, format!("/tools/{second}")),
            "{backward}"
        );
    }
}

#[test]
fn from_value_breaks_ties_in_the_maps_iteration_order() {
    // A value has no text: its map's order decides (document order with serde_json's
    // `preserve_order`, key order without; both are possible in one build graph).
    let mut tools = serde_json::Map::new();
    tools.insert("zz_*".into(), json!({"action": "deny"}));
    tools.insert("*_xx".into(), json!({}));
    let first = tools.keys().next().cloned().unwrap_or_default();
    let doc = json!({"version": "1", "default": "deny", "tools": tools});
    let policy = mcp_policy::Policy::from_value(&doc).unwrap();
    assert_eq!(policy.matching_key("zz_xx"), Some(first.as_str()));
    let keys: Vec<&str> = policy
        .document()
        .tools
        .iter()
        .map(|t| t.key.as_str())
        .collect();
    let map_order: Vec<&str> = tools.keys().map(String::as_str).collect();
    assert_eq!(keys, map_order);
}

#[test]
fn question_mark_is_exactly_one_character() {
    let (e, _) = engine(&tools_policy(r#"{"tool?":{}}"#));
    assert_eq!(decided_by(&e, "tool1").0, Verdict::Allow);
    assert_eq!(decided_by(&e, "toolé").0, Verdict::Allow);
    for name in ["tool", "tool12", "atool1"] {
        assert_eq!(
            decided_by(&e, name),
            (Verdict::Deny, "/default".into()),
            "{name}"
        );
    }
    // `*` may match nothing.
    let (e, _) = engine(&tools_policy(r#"{"db_*_prod*":{}}"#));
    assert_eq!(decided_by(&e, "db__prod").0, Verdict::Allow);
    assert_eq!(decided_by(&e, "db_x_production").0, Verdict::Allow);
    assert_eq!(decided_by(&e, "db_prod").0, Verdict::Deny);
}

#[test]
fn hide_names_and_patterns_deny_with_their_index() {
    let (e, _) = engine(
        r#"{"version":"1","default":"allow","hide":["delete_bucket","drop_*","secret?","drop_table"],
            "tools":{"drop_table":{},"delete_bucket":{}}}"#,
    );
    assert_deny(
        &call(&e, "delete_bucket", json!({})),
        "/hide/0",
        "this tool is hidden by policy",
    );
    // The first matching hide entry names the rule.
    assert_deny(&call(&e, "drop_table", json!({})), "/hide/1", "hidden");
    assert_deny(&call(&e, "secret1", json!({})), "/hide/2", "hidden");
    assert_allow(&call(&e, "secret12", json!({})), "/default");
    assert_allow(&call(&e, "delete_buckets", json!({})), "/default");
    let p = e.policy();
    assert!(p.is_hidden("drop_x") && !p.is_hidden("dro"));
}

#[test]
fn star_hides_everything() {
    let (e, _) = engine(r#"{"version":"1","default":"allow","hide":["*"],"tools":{"read":{}}}"#);
    for name in ["read", "anything", ""] {
        assert_deny(&call(&e, name, json!({})), "/hide/0", "hidden");
    }
}

// ---------------------------------------------------------------- section 7

const ORDER: &str = r#"{"version":"1","default":"deny","hide":["t_hidden"],
  "all_tools":{
    "require":[{"path":"args.blocked","op":"exists","value":false}],
    "deny_if":[{"conditions":[{"path":"args.evil","op":"eq","value":true}],"on_deny":"evil"}],
    "approve_if":[{"conditions":[{"path":"args.huge","op":"eq","value":true}],"reason":"huge"}],
    "limits":[{"counter":"all","window":"minute","max":4,"scope":"global"}]},
  "tools":{
    "t_hidden":{},
    "d":{"action":"deny"},
    "t":{"schema":{"properties":{"n":{"type":"integer"}}},
         "require":[{"path":"args.ok","op":"eq","value":true}],
         "deny_if":[{"conditions":[{"path":"args.bad","op":"eq","value":true}],"on_deny":"bad"}],
         "approve_if":[{"conditions":[{"path":"args.big","op":"gt","value":100}],"reason":"big"}],
         "limits":[{"counter":"t1","window":"minute","max":1,"scope":"args.k"}],
         "rate_limit":"2/minute"},
    "u":{}}}"#;

#[test]
fn stages_one_to_five_in_order_with_exact_rules() {
    let (e, _) = engine(ORDER);
    assert_deny(&call(&e, "t_hidden", json!({})), "/hide/0", "hidden");
    assert_deny(
        &call(&e, "nope", json!({})),
        "/default",
        "not allowed by this policy (default: deny)",
    );
    assert_deny(
        &call(&e, "d", json!({})),
        "/tools/d/action",
        "this tool is denied by policy",
    );
    // The schema comes before every condition.
    assert_deny(
        &call(&e, "t", json!({"n": "x", "bad": true, "blocked": 1})),
        "/tools/t/schema",
        "at `/n`",
    );
    // require, then deny_if: the tool's, then all_tools'.
    assert_deny(
        &call(&e, "t", json!({"bad": true, "blocked": 1})),
        "/tools/t/require/0",
        "requirement not met",
    );
    assert_deny(
        &call(
            &e,
            "t",
            json!({"ok": true, "bad": true, "blocked": 1, "evil": true}),
        ),
        "/tools/t/deny_if/0",
        "bad",
    );
    assert_deny(
        &call(&e, "t", json!({"ok": true, "blocked": 1, "evil": true})),
        "/all_tools/require/0",
        "args.blocked",
    );
    assert_deny(
        &call(&e, "t", json!({"ok": true, "evil": true, "big": 101})),
        "/all_tools/deny_if/0",
        "evil",
    );
    // A deny never charges a counter.
    assert_eq!(call(&e, "u", json!({})).remaining, Some(3));
}

#[test]
fn approval_comes_after_conditions_and_before_limits() {
    let (e, _) = engine(ORDER);
    let d = call(
        &e,
        "t",
        json!({"ok": true, "big": 101, "huge": true, "k": 9}),
    );
    assert_approve(&d, "/tools/t/approve_if/0");
    assert_eq!(d.message.as_deref(), Some("big"));
    assert_approve(
        &call(&e, "u", json!({"huge": true})),
        "/all_tools/approve_if/0",
    );
    // Exhaust every limit of `t`: an unapproved call still asks for approval (step 6 comes
    // before step 7), and nothing is charged by asking.
    assert_eq!(
        call(&e, "t", json!({"ok": true, "k": 1})).remaining,
        Some(0)
    );
    assert_eq!(
        call(&e, "t", json!({"ok": true, "k": 2})).remaining,
        Some(0)
    );
    assert_approve(
        &call(&e, "t", json!({"ok": true, "k": 1, "big": 101})),
        "/tools/t/approve_if/0",
    );
    assert_eq!(call(&e, "u", json!({})).remaining, Some(1));
    // A call its limits can never admit as given (here: the scope value is missing) is denied
    // without asking a human.
    let d = call(&e, "t", json!({"ok": true, "big": 101}));
    assert_deny(
        &d,
        "/tools/t/limits/0",
        "counter `t1` is kept per value of `args.k`, which is missing",
    );
}

#[test]
fn limits_are_stage_seven_with_exact_rules_then_allow() {
    let (e, _) = engine(ORDER);
    let d = call(&e, "t", json!({"ok": true, "k": 1}));
    assert_allow(&d, "/tools/t");
    assert_eq!(d.remaining, Some(0));
    assert_limit(
        &call(&e, "t", json!({"ok": true, "k": 1})),
        "/tools/t/limits/0",
        "t1",
        MINUTE,
    );
    assert_allow(&call(&e, "t", json!({"ok": true, "k": 2})), "/tools/t");
    assert_limit(
        &call(&e, "t", json!({"ok": true, "k": 3})),
        "/tools/t/rate_limit",
        "t.rate_limit",
        MINUTE,
    );
    assert_allow(&call(&e, "u", json!({})), "/tools/u");
    assert_eq!(call(&e, "u", json!({})).remaining, Some(0));
    assert_limit(
        &call(&e, "u", json!({})),
        "/all_tools/limits/0",
        "all",
        MINUTE,
    );
}

#[test]
fn tool_names_with_slashes_and_tildes_are_escaped_in_rules() {
    let (e, _) = engine(&tools_policy(
        r#"{"fs/read":{"require":[{"path":"args.p","op":"path_under","value":"/srv"}],"rate_limit":"1/minute"},
            "a~b":{"action":"deny"},"git/*":{"action":"approve"}}"#,
    ));
    assert_deny(
        &call(&e, "fs/read", json!({"p": "/etc"})),
        "/tools/fs~1read/require/0",
        "path_under",
    );
    assert_allow(
        &call(&e, "fs/read", json!({"p": "/srv/x"})),
        "/tools/fs~1read",
    );
    let d = call(&e, "fs/read", json!({"p": "/srv/x"}));
    assert_limit(
        &d,
        "/tools/fs~1read/rate_limit",
        "fs/read.rate_limit",
        MINUTE,
    );
    assert_deny(&call(&e, "a~b", json!({})), "/tools/a~0b/action", "denied");
    assert_approve(&call(&e, "git/push", json!({})), "/tools/git~1*/action");
}

#[test]
fn default_allow_still_applies_all_tools() {
    let (e, _) = engine(
        r#"{"version":"1","default":"allow",
            "all_tools":{"require":[{"path":"grant.id","op":"neq","value":"mallory"}],
                         "deny_if":[{"conditions":[{"path":"tool","op":"starts_with","value":"rm"}],"on_deny":"no rm"}],
                         "limits":[{"counter":"calls","window":"hour","max":2}]}}"#,
    );
    let mallory = Grant::new("mallory");
    assert_deny(
        &e.evaluate("anything", &json!({}), &mallory),
        "/all_tools/require/0",
        "requirement not met",
    );
    assert_deny(
        &call(&e, "rm_rf", json!({})),
        "/all_tools/deny_if/0",
        "no rm",
    );
    let d = call(&e, "anything", json!({}));
    assert_allow(&d, "/default");
    assert_eq!(d.remaining, Some(1));
    assert_allow(&call(&e, "other", json!({})), "/default");
    assert_limit(
        &call(&e, "third", json!({})),
        "/all_tools/limits/0",
        "calls",
        HOUR,
    );
}

#[test]
fn a_call_without_limits_or_approval_gets_no_remaining_or_reservation() {
    let (e, _) = engine(&tools_policy(r#"{"t":{}}"#));
    let d = call(&e, "t", json!({}));
    assert_allow(&d, "/tools/t");
    assert_eq!(
        (
            d.remaining,
            d.reservation.is_none(),
            d.counter,
            d.retry_after_ms
        ),
        (None, true, None, None)
    );
}

// ---------------------------------------------------------------- section 8

const APPROVALS: &str = r#"{"version":"1","default":"deny","approvals":{"ttl":"5m"},
  "tools":{"transfer":{"action":"require_approval","reason":"a human approves transfers",
                       "limits":[{"counter":"transfers","window":"minute","max":1}]},
           "wire":{"action":"approve"}}}"#;

fn approve(engine: &TestEngine, tool: &str, args: &Value, grant: &Grant) -> String {
    let d = engine.evaluate(tool, args, grant);
    assert_eq!(
        d.message.as_deref(),
        Some(if tool == "transfer" {
            "a human approves transfers"
        } else {
            "this tool needs human approval before each call"
        })
    );
    assert_approve(&d, &format!("/tools/{tool}/action"))
}

#[test]
fn approval_ids_are_bound_to_grant_tool_arguments_and_revision() {
    let (e, _) = engine(APPROVALS);
    let (a, b) = (alice(), Grant::new("bob"));
    let id = approve(&e, "transfer", &json!({"to": "x", "amount": 5}), &a);
    // Canonical JSON: key order and number spelling of the same document do not matter ...
    assert_eq!(
        approve(&e, "transfer", &json!({"amount": 5, "to": "x"}), &a),
        id
    );
    // ... a session is not part of the binding ...
    assert_eq!(
        approve(
            &e,
            "transfer",
            &json!({"amount": 5, "to": "x"}),
            &a.clone().with_session("s")
        ),
        id
    );
    // ... but the grant, the tool and every argument value are.
    let others = [
        approve(&e, "transfer", &json!({"to": "x", "amount": 5}), &b),
        approve(&e, "wire", &json!({"to": "x", "amount": 5}), &a),
        approve(&e, "transfer", &json!({"to": "x", "amount": 6}), &a),
        approve(&e, "transfer", &json!({"to": "x", "amount": "5"}), &a),
        approve(&e, "transfer", &json!({"to": "x"}), &a),
    ];
    for other in &others {
        assert_ne!(other, &id);
    }
    // The revision: the same call under a different policy has a different id.
    let (e2, _) = engine(&APPROVALS.replace("5m", "6m"));
    assert_ne!(
        approve(&e2, "transfer", &json!({"to": "x", "amount": 5}), &a),
        id
    );
    assert_ne!(e2.policy().revision(), e.policy().revision());
}

#[test]
fn a_recorded_approval_is_used_once_for_exactly_that_call() {
    let (e, _) = engine(APPROVALS);
    let (a, b) = (alice(), Grant::new("bob"));
    let args = json!({"amount": 5});
    let id = approve(&e, "wire", &args, &a);
    assert_eq!(e.record_approval(&id), Ok(()));
    // Not for another grant, tool or arguments.
    assert_ne!(approve(&e, "wire", &args, &b), id);
    assert_ne!(approve(&e, "transfer", &args, &a), id);
    assert_ne!(approve(&e, "wire", &json!({"amount": 5.5}), &a), id);
    // The call itself goes through, under the entry's rule, once.
    assert_allow(&e.evaluate("wire", &args, &a), "/tools/wire");
    assert_eq!(approve(&e, "wire", &args, &a), id);
    assert_eq!(approve(&e, "wire", &args, &a), id);
    // Recording twice before use is harmless; it still allows one call.
    assert_eq!(e.record_approval(&id), Ok(()));
    assert_eq!(e.record_approval(&id), Ok(()));
    assert_allow(&e.evaluate("wire", &args, &a), "/tools/wire");
    assert_eq!(approve(&e, "wire", &args, &a), id);
}

#[test]
fn unknown_approval_ids_are_refused() {
    let (e, _) = engine(APPROVALS);
    assert_eq!(
        e.record_approval("ap-0"),
        Err(HostError::UnknownApproval("ap-0".into()))
    );
}

#[test]
fn a_recorded_approval_expires_after_the_ttl() {
    let ttl = 5 * MINUTE;
    for (delay, usable) in [(ttl - 1, true), (ttl, false)] {
        let (e, clock) = engine(APPROVALS);
        let args = json!({"amount": 5});
        let id = approve(&e, "wire", &args, &alice());
        clock.advance(MINUTE);
        assert_eq!(e.record_approval(&id), Ok(()));
        clock.advance(delay);
        let d = e.evaluate("wire", &args, &alice());
        assert_eq!(
            d.verdict,
            if usable {
                Verdict::Allow
            } else {
                Verdict::Approve
            },
            "recorded {delay} ms ago"
        );
    }
    // A pending id that was never approved can be approved until its TTL from issue.
    for (delay, accepted) in [(ttl - 1, true), (ttl, false)] {
        let (e, clock) = engine(APPROVALS);
        let id = approve(&e, "wire", &json!({}), &alice());
        clock.advance(delay);
        assert_eq!(
            e.record_approval(&id).is_ok(),
            accepted,
            "issued {delay} ms ago"
        );
    }
}

#[test]
fn an_approved_call_refused_by_a_limit_keeps_its_approval() {
    let (e, clock) = engine(APPROVALS);
    let a = alice();
    let first = json!({"amount": 1});
    let second = json!({"amount": 2});
    let id = approve(&e, "transfer", &first, &a);
    e.record_approval(&id).unwrap();
    let d = e.evaluate("transfer", &first, &a);
    assert_allow(&d, "/tools/transfer");
    assert_eq!(d.remaining, Some(0));
    // The budget is spent: the next call still needs its own approval first ...
    let id2 = approve(&e, "transfer", &second, &a);
    e.record_approval(&id2).unwrap();
    clock.advance(10_000);
    // ... and once approved it is limited, without losing the approval.
    assert_limit(
        &e.evaluate("transfer", &second, &a),
        "/tools/transfer/limits/0",
        "transfers",
        50_000,
    );
    assert_limit(
        &e.evaluate("transfer", &second, &a),
        "/tools/transfer/limits/0",
        "transfers",
        50_000,
    );
    clock.advance(50_000);
    assert_allow(&e.evaluate("transfer", &second, &a), "/tools/transfer");
    assert_eq!(approve(&e, "transfer", &second, &a), id2);
}

#[test]
fn a_reload_with_another_policy_voids_recorded_approvals() {
    let (e, _) = engine(APPROVALS);
    let args = json!({"amount": 5});
    let id = approve(&e, "wire", &args, &alice());
    e.record_approval(&id).unwrap();
    e.reload(policy(&APPROVALS.replace("5m", "10m")));
    let new_id = approve(&e, "wire", &args, &alice());
    assert_ne!(new_id, id);
    // Back to the first policy (same revision), the recorded approval is still there.
    e.reload(policy(APPROVALS));
    assert_allow(&e.evaluate("wire", &args, &alice()), "/tools/wire");
}

// ---------------------------------------------------------------- section 9

/// `depth` nested containers: the arguments object, then arrays, innermost empty.
fn nested(depth: usize) -> Value {
    let mut v = Value::Array(Vec::new());
    for _ in 2..depth {
        v = Value::Array(vec![v]);
    }
    let mut args = serde_json::Map::new();
    args.insert("a".into(), v);
    Value::Object(args)
}

#[test]
fn nesting_deeper_than_64_levels_denies() {
    let (e, _) = engine(r#"{"version":"1","default":"allow"}"#);
    assert_eq!(MAX_DEPTH, 64);
    assert_allow(&call(&e, "t", nested(64)), "/default");
    assert_deny(
        &call(&e, "t", nested(65)),
        "",
        "arguments are nested deeper than 64 levels",
    );
    // Very deep arguments are refused without walking them all (dropping such a value is
    // recursive in serde_json, so it is leaked here rather than dropped by the test).
    let deep = nested(100_000);
    assert_deny(
        &e.evaluate("t", &deep, &alice()),
        "",
        "nested deeper than 64 levels",
    );
    std::mem::forget(deep);
}

#[test]
fn arguments_over_one_mib_deny() {
    let (e, _) = engine(r#"{"version":"1","default":"allow"}"#);
    assert_allow(
        &call(&e, "t", json!({"s": "x".repeat(MAX_BYTES - 100)})),
        "/default",
    );
    assert_deny(
        &call(&e, "t", json!({"s": "x".repeat(MAX_BYTES)})),
        "",
        "arguments are larger than 1048576 bytes (1 MiB)",
    );
    let many: Vec<Value> = (0..MAX_BYTES / 2).map(|_| json!(0)).collect();
    assert_deny(&call(&e, "t", json!({ "a": many })), "", "larger than");
}

#[test]
fn non_object_arguments_deny_and_null_means_empty() {
    let (e, _) = engine(&one_tool(
        "deny",
        "t",
        r#"{"require":[{"path":"args.x","op":"exists","value":false}]}"#,
    ));
    for (args, found) in [
        (json!([1]), "an array"),
        (json!("x"), "a string"),
        (json!(5), "a number"),
        (json!(false), "a boolean"),
    ] {
        assert_deny(
            &call(&e, "t", args),
            "",
            &format!("arguments must be a JSON object, found {found}"),
        );
    }
    assert_allow(&call(&e, "t", Value::Null), "/tools/t");
    // Absent arguments and `{}` are the same call.
    let (e, _) = engine(APPROVALS);
    assert_eq!(
        approve(&e, "wire", &Value::Null, &alice()),
        approve(&e, "wire", &json!({}), &alice())
    );
}

#[test]
fn odd_tool_names_and_grants_never_panic() {
    let (e, _) = engine(ORDER);
    for name in ["", "*", "?", "t\u{0}", "\u{10FFFF}", &"x".repeat(100_000)] {
        assert_eq!(call(&e, name, json!({})).verdict, Verdict::Deny, "{name:?}");
        assert_eq!(
            e.evaluate(name, &json!({}), &Grant::new("")).verdict,
            Verdict::Deny
        );
    }
}

// ---------------------------------------------------------------- tools/list

const LISTING: &str = r#"{"version":"1","default":"deny","hide":["delete_*"],
  "tools":{"read":{},"stop":{"action":"deny"},"gh_*":{},"delete_repo":{},
           "never":{"deny_if":[{"conditions":[]}]},
           "too_big":{"limits":[{"counter":"c","window":60,"max":1,"cost":5}]},
           "maybe":{"deny_if":[{"conditions":[{"path":"args.x","op":"eq","value":1}]}]},
           "priced":{"limits":[{"counter":"p","window":60,"max":1,"cost":"args.n"}]},
           "ask":{"action":"approve"}}}"#;

fn names(tools: &[&str]) -> Vec<Value> {
    tools
        .iter()
        .map(|n| json!({ "name": n, "description": "d" }))
        .collect()
}

#[test]
fn can_ever_allow_follows_the_policy() {
    let p = policy(LISTING);
    for (tool, expected) in [
        ("read", true),
        ("gh_issue", true),
        ("maybe", true),
        ("priced", true),
        ("ask", true),
        ("stop", false),
        ("delete_repo", false),
        ("unknown", false),
        ("never", false),
        ("too_big", false),
    ] {
        assert_eq!(p.can_ever_allow(tool), expected, "{tool}");
    }
    let everything_denied =
        policy(r#"{"version":"1","default":"allow","all_tools":{"deny_if":[{"conditions":[]}]}}"#);
    assert!(!everything_denied.can_ever_allow("x"));
    assert!(policy(r#"{"version":"1","default":"allow"}"#).can_ever_allow("x"));
}

#[test]
fn filter_tools_list_removes_what_can_never_be_allowed() {
    let p = policy(LISTING);
    let all = [
        "read",
        "stop",
        "gh_issue",
        "delete_repo",
        "unknown",
        "never",
        "too_big",
        "maybe",
        "priced",
        "ask",
    ];
    let kept = names(&["read", "gh_issue", "maybe", "priced", "ask"]);
    let mut listed = names(&all);
    listed.push(json!({ "description": "no name" }));
    listed.push(json!({ "name": 5 }));
    let result = json!({ "tools": listed.clone(), "nextCursor": "abc" });
    assert_eq!(
        p.filter_tools_list(&result),
        json!({ "tools": kept.clone(), "nextCursor": "abc" })
    );
    assert_eq!(
        p.filter_tools_list(&Value::Array(listed)),
        Value::Array(kept)
    );
    assert_eq!(
        p.filter_tools_list(&json!("garbage")),
        json!({ "tools": [] })
    );
    assert_eq!(
        p.filter_tools_list(&json!({ "nextCursor": "x" })),
        json!({ "tools": [], "nextCursor": "x" })
    );
    let hide_all = policy(r#"{"version":"1","default":"allow","hide":["*"]}"#);
    assert_eq!(
        hide_all.filter_tools_list(&json!({ "tools": names(&all) })),
        json!({ "tools": [] })
    );
}

#[test]
fn listing_agrees_with_evaluation_for_unconditional_denials() {
    let p = policy(LISTING);
    let (e, _) = engine(LISTING);
    for tool in ["stop", "delete_repo", "unknown", "never", "too_big"] {
        assert!(!p.can_ever_allow(tool));
        assert_eq!(
            call(&e, tool, json!({"n": 1})).verdict,
            Verdict::Deny,
            "{tool}"
        );
    }
    for tool in ["read", "gh_issue", "maybe", "priced"] {
        assert!(p.can_ever_allow(tool));
        assert_eq!(
            call(&e, tool, json!({"n": 1})).verdict,
            Verdict::Allow,
            "{tool}"
        );
    }
}
