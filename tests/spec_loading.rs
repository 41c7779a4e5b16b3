//! Spec sections 1, 2, 3 and 10: loading documents, and what load errors look like.

mod spec_support;

use mcp_policy::document::{Action, Cost, DefaultAction, Reset, Scope};
use mcp_policy::{LoadErrorKind, Position};
use serde_json::json;
use spec_support::*;

const EXAMPLE_1: &str = r#"{ "version": "1", "default": "deny",
  "tools": { "start_security_scan": { "limits": [
      { "counter": "start_security_scan_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } }"#;

const EXAMPLE_2: &str = r#"{ "version": "1", "default": "allow",
  "hide": ["delete_bucket"],
  "all_tools": { "limits": [ { "counter": "calls", "window": "hour", "max": 500 } ] },
  "tools": {
    "refund": { "require": [ { "path": "args.reason", "op": "exists", "value": true } ],
                "deny_if": [ { "conditions": [ { "path": "args.amount", "op": "gt", "value": 10000 } ],
                               "on_deny": "Refunds above 100.00 need a human" } ] },
    "stop_scan": { "action": "deny", "reason": "Stopping scans breaks compliance monitoring" },
    "run_query": { "rate_limit": { "max": 10, "window": 60 } },
    "transfer":  { "action": "require_approval" },
    "search":    { "rate_limit": "60/minute" } } }"#;

/// The error example of section 10, laid out so that `"minutes"` is at line 7, column 19.
const MINUTES: &str = r#"{
  "version": "1",
  "default": "deny",
  "tools": {
    "stop_scan": {
      "limits": [
      { "window": "minutes", "counter": "c", "max": 1 } ]
    }
  }
}"#;

// ---------------------------------------------------------------- section 1

#[test]
fn example_1_loads_and_is_a_grant_scoped_minute_limit() {
    let p = policy(EXAMPLE_1);
    let doc = p.document();
    assert_eq!(doc.default, DefaultAction::Deny);
    let limit = &doc.tools[0].stage.limits[0];
    assert_eq!(
        (limit.counter.as_str(), limit.window_ms, limit.max),
        ("start_security_scan_rate", MINUTE, 10)
    );
    assert_eq!(
        (&limit.scope, &limit.cost, limit.reset),
        (&Scope::Grant, &Cost::Fixed(1), Reset::Sliding)
    );
    assert_eq!(limit.pointer, "/tools/start_security_scan/limits/0");
}

#[test]
fn example_2_loads_with_every_dialect_mixed() {
    let p = policy(EXAMPLE_2);
    let doc = p.document();
    assert_eq!(doc.default, DefaultAction::Allow);
    assert_eq!(doc.hide, ["delete_bucket"]);
    assert_eq!(doc.all_tools.limits[0].window_ms, HOUR);
    let keys: Vec<&str> = doc.tools.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        ["refund", "stop_scan", "run_query", "transfer", "search"]
    );
    let refund = &doc.tools[0];
    assert_eq!(
        refund.stage.deny_if[0].message.as_deref(),
        Some("Refunds above 100.00 need a human")
    );
    let stop = &doc.tools[1];
    assert_eq!(stop.action, Action::Deny);
    assert_eq!(
        stop.reason.as_deref(),
        Some("Stopping scans breaks compliance monitoring")
    );
    let run_query = &doc.tools[2].stage.limits[0];
    assert_eq!(
        (
            run_query.counter.as_str(),
            run_query.max,
            run_query.window_ms
        ),
        ("run_query.rate_limit", 10, MINUTE)
    );
    assert_eq!(
        (&run_query.scope, run_query.pointer.as_str()),
        (&Scope::Grant, "/tools/run_query/rate_limit")
    );
    assert_eq!(doc.tools[3].action, Action::Approve);
    let search = &doc.tools[4].stage.limits[0];
    assert_eq!(
        (search.counter.as_str(), search.max, search.window_ms),
        ("search.rate_limit", 60, MINUTE)
    );
}

#[test]
fn example_2_decides_as_written() {
    let (e, _) = engine(EXAMPLE_2);
    assert_deny(&call(&e, "delete_bucket", json!({})), "/hide/0", "hidden");
    assert_deny(
        &call(&e, "stop_scan", json!({})),
        "/tools/stop_scan/action",
        "Stopping scans breaks compliance monitoring",
    );
    assert_deny(
        &call(&e, "refund", json!({"amount": 5})),
        "/tools/refund/require/0",
        "args.reason",
    );
    let d = call(&e, "refund", json!({"reason": "broken", "amount": 10001}));
    assert_deny(
        &d,
        "/tools/refund/deny_if/0",
        "Refunds above 100.00 need a human",
    );
    let d = call(&e, "refund", json!({"reason": "broken", "amount": 10000}));
    assert_allow(&d, "/tools/refund");
    assert_eq!(d.remaining, Some(499));
    assert_approve(&call(&e, "transfer", json!({})), "/tools/transfer/action");
    assert_eq!(call(&e, "run_query", json!({})).remaining, Some(9));
    assert_eq!(call(&e, "search", json!({})).remaining, Some(59));
    assert_allow(&call(&e, "anything_else", json!({})), "/default");
}

// ---------------------------------------------------------------- section 2

#[test]
fn version_errors_name_the_supported_version() {
    for (version, found) in [
        (r#""2""#, r#""2""#),
        ("1", "1"),
        (r#""1.0""#, r#""1.0""#),
        ("null", "null"),
    ] {
        let e = load_error(&format!(r#"{{"version": {version}, "default": "deny"}}"#));
        assert_eq!(e.pointer, "/version");
        assert_eq!(
            e.kind.to_string(),
            format!(r#"unsupported version {found}; this build supports "1""#)
        );
        assert_eq!(
            e.position,
            Some(Position {
                line: 1,
                column: 13
            })
        );
    }
    let e = load_error(r#"{"default": "deny"}"#);
    assert_eq!(
        (e.pointer.as_str(), e.kind),
        ("", LoadErrorKind::MissingField("version"))
    );
}

#[test]
fn default_is_required_and_must_be_allow_or_deny() {
    let e = load_error(r#"{"version": "1"}"#);
    assert_eq!(
        (e.pointer.as_str(), e.kind),
        ("", LoadErrorKind::MissingField("default"))
    );
    let e = load_error(r#"{"version": "1", "default": "maybe"}"#);
    assert_eq!(e.pointer, "/default");
    assert_eq!(
        e.kind.to_string(),
        r#"expected "allow" or "deny", found "maybe""#
    );
}

#[test]
fn unknown_fields_are_errors_at_every_level_with_pointer_and_position() {
    // (document, pointer of the unknown field, its line:column, the allowed fields named)
    let cases = [
        (
            r#"{"version":"1","default":"deny","tool":{}}"#,
            "/tool",
            40,
            "version, default, hide",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"limit":[]}}}"#,
            "/tools/t/limit",
            55,
            "limits, rate_limit",
        ),
        (
            r#"{"version":"1","default":"deny","all_tools":{"limit":[]}}"#,
            "/all_tools/limit",
            54,
            "limits, require",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"tool","op":"eq","value":"t","on_fail":"x"}]}}}"#,
            "/tools/t/require/0/on_fail",
            105,
            "path, op, value, on_deny",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"deny_if":[{"conditions":[],"reason":"x"}]}}}"#,
            "/tools/t/deny_if/0/reason",
            84,
            "conditions, on_deny",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"approve_if":[{"conditions":[],"on_deny":"x"}]}}}"#,
            "/tools/t/approve_if/0/on_deny",
            88,
            "conditions, reason",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":1,"max":1,"scop":"grant"}]}}}"#,
            "/tools/t/limits/0/scop",
            98,
            "counter, window, max, scope",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":{"max":1,"window":1,"per":"grant"}}}}"#,
            "/tools/t/rate_limit/per",
            86,
            "max, window",
        ),
        (
            r#"{"version":"1","default":"deny","approvals":{"tt":"5m"}}"#,
            "/approvals/tt",
            51,
            "ttl",
        ),
    ];
    for (text, pointer, column, expected) in cases {
        let e = load_error(text);
        assert_eq!(e.pointer, pointer, "{text}");
        let field = pointer.rsplit('/').next().unwrap_or_default();
        // The position is that of the offending field's value.
        let value_at = text
            .find(&format!("\"{field}\":"))
            .map(|i| i + field.len() + 4);
        assert_eq!(value_at, Some(column), "{text}");
        assert_eq!(e.position, Some(Position { line: 1, column }), "{text}");
        let message = e.kind.to_string();
        assert!(
            message.starts_with(&format!("unknown field `{field}`; expected one of ")),
            "{message}"
        );
        assert!(message.contains(expected), "{message}");
        assert_eq!(e.to_string(), format!("1:{column}: {pointer}: {message}"));
    }
}

#[test]
fn every_unknown_field_is_reported_at_once() {
    let errors = load_errors(
        r#"{"version":"1","default":"deny","tool":{},"tools":{"a":{"limit":[]},"b":{"on_deny_":"x"}}}"#,
    );
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/tool", "/tools/a/limit", "/tools/b/on_deny_"]);
}

#[test]
fn x_keys_are_ignored_everywhere() {
    let (e, _) = engine(
        r#"{"version":"1","default":"deny","x-owner":"sec","$schema":"https://example.com/policy.json",
            "description":"test",
            "approvals":{"ttl":"5m","x-note":1},
            "all_tools":{"x-note":1,"require":[{"path":"tool","op":"neq","value":"z","x-why":"because"}]},
            "tools":{"t":{"x-note":{"anything":[1,2]},
              "deny_if":[{"conditions":[],"on_deny":"no","x-ticket":"SEC-1"}],
              "limits":[{"counter":"c","window":60,"max":1,"x-dashboard":"d"}]},
              "u":{"rate_limit":{"max":1,"window":60,"x-n":1},
                   "approve_if":[{"conditions":[],"reason":"r","x-n":1}]}}}"#,
    );
    assert_eq!(e.policy().document().description.as_deref(), Some("test"));
    assert_deny(&call(&e, "t", json!({})), "/tools/t/deny_if/0", "no");
    assert_approve(&call(&e, "u", json!({})), "/tools/u/approve_if/0");
}

#[test]
fn approvals_ttl_defaults_to_15_minutes_and_accepts_durations() {
    assert_eq!(
        policy(r#"{"version":"1","default":"deny"}"#).approval_ttl_ms(),
        15 * MINUTE
    );
    for (ttl, ms) in [
        (r#""5m""#, 5 * MINUTE),
        ("90", 90 * SECOND),
        (r#""hour""#, HOUR),
        (r#""1d""#, DAY),
    ] {
        let p = policy(&format!(
            r#"{{"version":"1","default":"deny","approvals":{{"ttl":{ttl}}}}}"#
        ));
        assert_eq!(p.approval_ttl_ms(), ms, "{ttl}");
    }
    for ttl in [r#""5 minutes""#, "0", "-1", r#""""#, "true"] {
        let errors = load_errors(&format!(
            r#"{{"version":"1","default":"deny","approvals":{{"ttl":{ttl}}}}}"#
        ));
        assert_eq!(errors[0].pointer, "/approvals/ttl", "{ttl}");
    }
}

#[test]
fn tools_and_errors_keep_document_order() {
    // Written in reverse key order: `Document::tools` lists them as written.
    let p = policy(
        r#"{"version":"1","default":"deny","tools":{
        "zeta":{}, "m*":{"action":"deny"}, "beta":{"rate_limit":"1/minute"}, "alpha":{}}}"#,
    );
    let keys: Vec<&str> = p.document().tools.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["zeta", "m*", "beta", "alpha"]);
    // Errors: tools in document order, unknown fields of one object in document order.
    let text = "{\"version\":\"1\",\"default\":\"deny\",\"tools\":{\n\
        \"zeta\":{\"zz\":1,\"limts\":[]},\n\
        \"alpha\":{\"action\":\"block\"}},\n\
        \"tols\":{},\"hid\":[]}";
    let errors = load_errors(text);
    let got: Vec<(&str, usize)> = errors
        .iter()
        .map(|e| (e.pointer.as_str(), e.position.map_or(0, |p| p.line)))
        .collect();
    assert_eq!(
        got,
        [
            ("/tols", 4),
            ("/hid", 4),
            ("/tools/zeta/zz", 2),
            ("/tools/zeta/limts", 2),
            ("/tools/alpha/action", 3),
        ]
    );
}

// ---------------------------------------------------------------- section 3

#[test]
fn action_and_its_aliases() {
    for (action, expected) in [
        ("allow", Action::Allow),
        ("deny", Action::Deny),
        ("approve", Action::Approve),
        ("require_approval", Action::Approve),
    ] {
        let p = policy(&one_tool(
            "deny",
            "t",
            &format!(r#"{{"action":"{action}"}}"#),
        ));
        assert_eq!(p.document().tools[0].action, expected, "{action}");
    }
    assert_eq!(
        policy(&one_tool("deny", "t", "{}")).document().tools[0].action,
        Action::Allow
    );
    let e = load_error(&one_tool("deny", "t", r#"{"action":"block"}"#));
    assert_eq!(e.pointer, "/tools/t/action");
    assert!(
        e.kind.to_string().contains(r#"unknown action "block""#),
        "{e}"
    );
}

#[test]
fn reason_and_its_alias_on_deny_give_the_message() {
    for field in ["reason", "on_deny"] {
        let (e, _) = engine(&format!(
            r#"{{"version":"1","default":"deny","tools":{{"d":{{"action":"deny","{field}":"D"}},"a":{{"action":"approve","{field}":"A"}}}}}}"#
        ));
        assert_deny(&call(&e, "d", json!({})), "/tools/d/action", "D");
        let d = call(&e, "a", json!({}));
        assert_approve(&d, "/tools/a/action");
        assert_eq!(d.message.as_deref(), Some("A"));
    }
    let e = load_error(&one_tool(
        "deny",
        "t",
        r#"{"action":"deny","reason":"a","on_deny":"b"}"#,
    ));
    assert_eq!(e.pointer, "/tools/t/on_deny");
}

// ---------------------------------------------------------------- section 10

#[test]
fn error_format_is_line_col_pointer_message() {
    let e = load_error(MINUTES);
    assert_eq!(e.pointer, "/tools/stop_scan/limits/0/window");
    assert_eq!(
        e.position,
        Some(Position {
            line: 7,
            column: 19
        })
    );
    assert_eq!(
        e.kind.to_string(),
        r#"unknown window "minutes"; expected second, minute, hour, day, a number of seconds, or a duration such as "90s""#
    );
    assert_eq!(
        e.to_string(),
        r#"7:19: /tools/stop_scan/limits/0/window: unknown window "minutes"; expected second, minute, hour, day, a number of seconds, or a duration such as "90s""#
    );
}

#[test]
fn positions_count_characters_and_escape_slashes_in_pointers() {
    let text = "{\"version\":\"1\",\"default\":\"deny\",\n\"tools\":{\"é/ü\":{\"max\":1}}}";
    let e = load_error(text);
    assert_eq!(e.pointer, "/tools/é~1ü/max");
    // Columns count characters: `1` is the 23rd character of line 2 (the 25th byte).
    assert_eq!(
        e.position,
        Some(Position {
            line: 2,
            column: 23
        })
    );
}

#[test]
fn duplicate_keys_in_policy_text_are_syntax_errors_with_position() {
    let e = load_error("{\"version\":\"1\",\"default\":\"deny\",\n  \"default\":\"allow\"}");
    assert!(
        matches!(&e.kind, LoadErrorKind::Syntax(m) if m.contains("duplicate key `default`")),
        "{e}"
    );
    assert_eq!(e.position.map(|p| p.line), Some(2));
    let e =
        load_error(r#"{"version":"1","default":"deny","tools":{"t":{},"t":{"action":"deny"}}}"#);
    assert!(e.to_string().contains("duplicate key `t`"), "{e}");
}

#[test]
fn invalid_json_is_a_syntax_error_with_position() {
    let e = load_error("{\"version\":\"1\",\n\"default\":}");
    assert!(matches!(e.kind, LoadErrorKind::Syntax(_)), "{e}");
    assert_eq!(
        e.position,
        Some(Position {
            line: 2,
            column: 11
        })
    );
}

// ---------------------------------------------------------------- limits and conditions at load

fn limit_policy(limit: &str) -> String {
    one_tool("deny", "t", &format!(r#"{{"limits":[{limit}]}}"#))
}

#[test]
fn counter_conflicts_are_reported_at_the_later_limit() {
    let base = r#""counter":"c","window":"minute","max":5,"scope":"grant","reset":"sliding""#;
    for (field, changed) in [
        (
            "window",
            r#""counter":"c","window":"hour","max":5,"scope":"grant","reset":"sliding""#,
        ),
        (
            "max",
            r#""counter":"c","window":"minute","max":6,"scope":"grant","reset":"sliding""#,
        ),
        (
            "scope",
            r#""counter":"c","window":"minute","max":5,"scope":"global","reset":"sliding""#,
        ),
        (
            "reset",
            r#""counter":"c","window":"minute","max":5,"scope":"grant","reset":"calendar""#,
        ),
    ] {
        let text = format!(
            r#"{{"version":"1","default":"deny","tools":{{"a":{{"limits":[{{{base}}}]}},"b":{{"limits":[{{{changed}}}]}}}},
                "all_tools":{{"limits":[{{{base}}}]}}}}"#
        );
        let e = load_error(&text);
        assert_eq!(e.pointer, "/tools/b/limits/0", "{field}");
        assert_eq!(
            e.kind,
            LoadErrorKind::CounterConflict {
                counter: "c".into(),
                other: "/tools/a/limits/0".into(),
                field
            },
        );
        assert!(e.to_string().contains(&format!("{field} differs")), "{e}");
    }
    // Agreeing definitions load; `60`, `"60s"` and `"minute"` are the same window.
    let text = r#"{"version":"1","default":"deny","tools":{
        "a":{"limits":[{"counter":"c","window":60,"max":5}]},
        "b":{"limits":[{"counter":"c","window":"60s","max":5,"scope":"grant","cost":3,"on_limit":"other"}]}},
        "all_tools":{"limits":[{"counter":"c","window":"minute","max":5}]}}"#;
    policy(text);
    // A rate_limit shorthand is a limit like any other: `grant` scope, sliding.
    let e = load_error(
        r#"{"version":"1","default":"deny","tools":{"a":{"rate_limit":"5/minute","limits":[{"counter":"a.rate_limit","window":"minute","max":5,"scope":"global"}]}}}"#,
    );
    assert_eq!(e.pointer, "/tools/a/rate_limit");
    assert!(
        matches!(
            e.kind,
            LoadErrorKind::CounterConflict { field: "scope", .. }
        ),
        "{e}"
    );
}

#[test]
fn regexes_that_need_backtracking_are_rejected() {
    for pattern in [r"^(?=a)a$", r"(?!x)y", r"(?<=a)b", r"(a)\1"] {
        let entry = format!(
            r#"{{"require":[{{"path":"args.s","op":"regex","value":{}}}]}}"#,
            json!(pattern)
        );
        let e = load_error(&one_tool("deny", "t", &entry));
        assert_eq!(e.pointer, "/tools/t/require/0/value", "{pattern}");
        assert!(
            e.kind.to_string().contains("needs backtracking"),
            "{pattern}: {e}"
        );
    }
    let e = load_error(&one_tool(
        "deny",
        "t",
        r#"{"deny_if":[{"conditions":[{"path":"args.s","op":"not_regex","value":"("}]}]}"#,
    ));
    assert_eq!(e.pointer, "/tools/t/deny_if/0/conditions/0/value");
    assert!(e.kind.to_string().starts_with("invalid regex"), "{e}");
    policy(&one_tool(
        "deny",
        "t",
        r#"{"require":[{"path":"args.s","op":"regex","value":"^[a-z]+(-[0-9]+)?$"}]}"#,
    ));
}

#[test]
fn invalid_schemas_are_rejected() {
    for (schema, needle) in [
        (r#"{"type":"strng"}"#, "invalid JSON Schema"),
        (
            r#"{"type":"object","properties":{"a":{"minimum":"x"}}}"#,
            "invalid JSON Schema",
        ),
        ("5", "must be an object or a boolean"),
        (
            r#"{"$ref":"https://example.com/schemas/args.json"}"#,
            "invalid JSON Schema",
        ),
        (
            r#"{"properties":{"a":{"$ref":"http://example.com/a.json#/x"}}}"#,
            "invalid JSON Schema",
        ),
    ] {
        let e = load_error(&one_tool("deny", "t", &format!(r#"{{"schema":{schema}}}"#)));
        assert_eq!(e.pointer, "/tools/t/schema", "{schema}");
        assert!(e.kind.to_string().contains(needle), "{schema}: {e}");
    }
    // Local references and `true` are fine.
    policy(&one_tool(
        "deny",
        "t",
        r##"{"schema":{"$defs":{"n":{"type":"integer"}},"properties":{"a":{"$ref":"#/$defs/n"}}}}"##,
    ));
    policy(&one_tool("deny", "t", r#"{"schema":true}"#));
}

#[test]
fn bad_max_window_scope_cost_and_reset_are_rejected_with_their_pointer() {
    let ok = r#""counter":"c","window":"minute""#;
    for (extra, pointer, needle) in [
        (
            r#""max":0"#,
            "max",
            "max must be a positive integer, found 0",
        ),
        (
            r#""max":-1"#,
            "max",
            "max must be a positive integer, found -1",
        ),
        (r#""max":1.5"#, "max", "max must be a positive integer"),
        (r#""max":"10""#, "max", "max must be a positive integer"),
        (
            r#""max":1,"scope":"user""#,
            "scope",
            r#"unknown scope "user""#,
        ),
        (r#""max":1,"scope":"args.""#, "scope", "empty segment"),
        (r#""max":1,"scope":"grant.id""#, "scope", "unknown scope"),
        (
            r#""max":1,"cost":-1"#,
            "cost",
            "must be a non-negative integer or a path",
        ),
        (
            r#""max":1,"cost":1.5"#,
            "cost",
            "must be a non-negative integer or a path",
        ),
        (
            r#""max":1,"cost":"amount""#,
            "cost",
            "must start with args, grant, tool, prompt, uri or annotations",
        ),
        (
            r#""max":1,"cost":true"#,
            "cost",
            "expected a non-negative integer or a path",
        ),
        (r#""max":1,"reset":"fixed""#, "reset", "unknown reset"),
    ] {
        let e = load_error(&limit_policy(&format!("{{{ok},{extra}}}")));
        assert_eq!(e.pointer, format!("/tools/t/limits/0/{pointer}"), "{extra}");
        assert!(e.kind.to_string().contains(needle), "{extra}: {e}");
    }
    for window in [
        "0",
        "-60",
        r#""0s""#,
        r#""weekly""#,
        r#""1.5m""#,
        "1.5",
        r#""4000d""#,
    ] {
        let e = load_error(&limit_policy(&format!(
            r#"{{"counter":"c","max":1,"window":{window}}}"#
        )));
        assert_eq!(e.pointer, "/tools/t/limits/0/window", "{window}");
    }
    for (missing, limit) in [
        ("counter", r#"{"window":60,"max":1}"#),
        ("window", r#"{"counter":"c","max":1}"#),
        ("max", r#"{"counter":"c","window":60}"#),
    ] {
        let e = load_error(&limit_policy(limit));
        assert_eq!(
            (e.pointer.as_str(), e.kind),
            ("/tools/t/limits/0", LoadErrorKind::MissingField(missing))
        );
    }
    for rate in [
        r#""10/minutes""#,
        r#""0/minute""#,
        r#""ten/minute""#,
        r#""10""#,
        "10",
        r#"{"max":0,"window":60}"#,
    ] {
        let e = load_errors(&one_tool(
            "deny",
            "t",
            &format!(r#"{{"rate_limit":{rate}}}"#),
        ));
        assert!(
            e[0].pointer.starts_with("/tools/t/rate_limit"),
            "{rate}: {e:?}"
        );
    }
}

#[test]
fn windows_accept_every_documented_form() {
    for (window, ms) in [
        (r#""second""#, SECOND),
        (r#""minute""#, MINUTE),
        (r#""hour""#, HOUR),
        (r#""day""#, DAY),
        ("60", MINUTE),
        (r#""90s""#, 90 * SECOND),
        (r#""15m""#, 15 * MINUTE),
        (r#""2h""#, 2 * HOUR),
        (r#""1d""#, DAY),
    ] {
        let p = policy(&limit_policy(&format!(
            r#"{{"counter":"c","max":1,"window":{window}}}"#
        )));
        assert_eq!(
            p.document().tools[0].stage.limits[0].window_ms,
            ms,
            "{window}"
        );
    }
    for (rate, max, ms) in [
        ("5/second", 5, SECOND),
        ("60/minute", 60, MINUTE),
        ("7/hour", 7, HOUR),
        ("1/day", 1, DAY),
        ("3/90s", 3, 90 * SECOND),
    ] {
        let p = policy(&one_tool(
            "deny",
            "t",
            &format!(r#"{{"rate_limit":"{rate}"}}"#),
        ));
        let limit = &p.document().tools[0].stage.limits[0];
        assert_eq!((limit.max, limit.window_ms), (max, ms), "{rate}");
    }
}

#[test]
fn bad_paths_and_operands_are_rejected() {
    for (condition, pointer, needle) in [
        (
            r#"{"path":"argz.x","op":"eq","value":1}"#,
            "path",
            "must start with args, grant, tool, prompt, uri or annotations",
        ),
        (
            r#"{"path":"args..x","op":"eq","value":1}"#,
            "path",
            "empty segment",
        ),
        (
            r#"{"path":"grant.name","op":"eq","value":1}"#,
            "path",
            "grant.id, grant.session or grant.attrs.NAME",
        ),
        (
            r#"{"path":"tool.x","op":"eq","value":1}"#,
            "path",
            "has no fields",
        ),
        (
            r#"{"path":"/args/a~2","op":"eq","value":1}"#,
            "path",
            "invalid JSON Pointer",
        ),
        (
            r#"{"path":"args.x","op":"equals","value":1}"#,
            "op",
            r#"unknown operator "equals""#,
        ),
        (
            r#"{"path":"args.x","op":"gt","value":"5"}"#,
            "value",
            "expected a number, found a string",
        ),
        (
            r#"{"path":"args.x","op":"in","value":"a"}"#,
            "value",
            "expected an array",
        ),
        (
            r#"{"path":"args.x","op":"exists","value":"yes"}"#,
            "value",
            "expected true or false",
        ),
        (
            r#"{"path":"args.x","op":"regex","value":5}"#,
            "value",
            "expected a string",
        ),
        (
            r#"{"path":"args.x","op":"path_under","value":""}"#,
            "value",
            "path_under needs a directory",
        ),
    ] {
        let e = load_error(&one_tool(
            "deny",
            "t",
            &format!(r#"{{"require":[{condition}]}}"#),
        ));
        assert_eq!(
            e.pointer,
            format!("/tools/t/require/0/{pointer}"),
            "{condition}"
        );
        assert!(e.kind.to_string().contains(needle), "{condition}: {e}");
    }
    let e = load_error(&one_tool(
        "deny",
        "t",
        r#"{"require":[{"path":"args.x","op":"eq"}]}"#,
    ));
    assert_eq!(
        (e.pointer.as_str(), e.kind),
        ("/tools/t/require/0", LoadErrorKind::MissingField("value"))
    );
}

#[test]
fn wrong_shapes_are_type_errors() {
    for (text, pointer) in [
        (r#"{"version":"1","default":"deny","tools":[]}"#, "/tools"),
        (r#"{"version":"1","default":"deny","hide":"x"}"#, "/hide"),
        (r#"{"version":"1","default":"deny","hide":[1]}"#, "/hide/0"),
        (
            r#"{"version":"1","default":"deny","tools":{"t":[]}}"#,
            "/tools/t",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":{}}}}"#,
            "/tools/t/require",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"deny_if":[{"conditions":{}}]}}}"#,
            "/tools/t/deny_if/0/conditions",
        ),
        (
            r#"{"version":"1","default":"deny","all_tools":[]}"#,
            "/all_tools",
        ),
        ("[]", ""),
    ] {
        let e = load_error(text);
        assert_eq!(e.pointer, pointer, "{text}");
        assert!(
            matches!(e.kind, LoadErrorKind::WrongType { .. }),
            "{text}: {e}"
        );
    }
}
