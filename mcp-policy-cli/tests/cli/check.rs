//! `mcp-policy check`: errors and warnings with positions, `--against`.

use super::*;

#[test]
fn check_examples_are_clean() {
    for name in ["security-scanner", "github", "payments", "filesystem"] {
        let path = format!("examples/policies/{name}.json");
        let o = run(&["check", &path], None);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert_eq!(stdout(&o), "", "{name} has warnings");
    }
}

#[test]
fn check_prints_errors_and_warnings_with_positions() {
    let t = Temp::new("check");
    let bad = t.write("bad.json", "{\n  \"version\": \"1\",\n  \"default\": \"deny\",\n  \"tools\": {\n    \"a\": { \"limit\": [] }\n  }\n}\n");
    let warn = t.write(
        "warn.json",
        concat!(
            "{\n",
            "  \"version\": \"1\",\n",
            "  \"default\": \"allow\",\n",
            "  \"tools\": {\n",
            "    \"get_*\": {},\n",
            "    \"*_iss\": {},\n",
            "    \"pay\": { \"action\": \"approve\" },\n",
            "    \"big\": { \"limits\": [ { \"counter\": \"c\", \"window\": 60, \"max\": 2, \"cost\": 5 } ] }\n",
            "  }\n",
            "}\n"
        ),
    );
    let o = run(&["check", &bad, &warn], None);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{bad}:5:21: /tools/a/limit: unknown field `limit`; expected one of action, reason, on_deny, schema, require, deny_if, approve_if, limits, rate_limit (or an x- key)"
        )
    );
    assert!(lines.contains(&format!("{warn}:6:14: warning: /tools/*_iss: pattern \"*_iss\" overlaps \"get_*\" with equal specificity (4 literal characters); a tool both match gets \"get_*\" because it is written first").as_str()), "{out}");
    assert!(
        out.contains(&format!(
            "{warn}:8:76: warning: /tools/big/limits/0/cost: cost 5 is above max 2"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{warn}:3:14: warning: /default: `default: allow` with nothing hidden or denied"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("{warn}:7:24: warning: /tools/pay/action: approvals are required here but `approvals.ttl` is not set")), "{out}");
    // Warnings alone exit 0.
    assert_eq!(run(&["check", &warn], None).status.code(), Some(0));
}

#[test]
fn check_warns_about_entries_shadowed_by_hide() {
    let t = Temp::new("shadow");
    let p = t.write("p.json", r#"{"version":"1","default":"deny","hide":["db_*"],"tools":{"db_drop":{"rate_limit":"1/hour"},"db_x_*":{},"db_y":{"action":"deny"}},"resources":{},"prompts":{}}"#);
    let o = run(&["check", &p], None);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains("/tools/db_drop: this tool is hidden by /hide/0 (\"db_*\")"),
        "{out}"
    );
    assert!(
        out.contains("/tools/db_x_*: every tool this pattern matches is hidden"),
        "{out}"
    );
}

#[test]
fn check_against_lists_counters_a_reload_resets() {
    let t = Temp::new("against");
    let old = t.write(
        "old.json",
        r#"{"version":"1","default":"deny","tools":{"a":{"limits":[{"counter":"keep","window":"minute","max":5},{"counter":"change","window":"minute","max":5}]},"b":{"rate_limit":"3/hour"}}}"#,
    );
    let new = t.write(
        "new.json",
        r#"{"version":"1","default":"deny","tools":{"a":{"limits":[{"counter":"keep","window":60,"max":9},{"counter":"change","window":"hour","max":5}]}},"resources":{},"prompts":{}}"#,
    );
    let o = run(&["check", "--against", &old, &new], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("{new}:1:"))
            && lines[0].contains("counter `change` resets on reload")
            && lines[0].contains("1m sliding to 1h sliding"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("{old}:1:"))
            && lines[1].contains("counter `b.rate_limit` (1h sliding) is not in"),
        "{out}"
    );
}
