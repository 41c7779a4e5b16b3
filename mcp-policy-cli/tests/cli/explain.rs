//! `mcp-policy explain`: the stage-by-stage trace.

use super::*;

#[test]
fn explain_traces_stages_and_agrees_with_evaluate() {
    let o = run(
        &[
            "explain",
            "--policy",
            "examples/policies/payments.json",
            "--tool",
            "create_refund",
            "--args",
            r#"{"payment_intent":"pi_1","amount":25000,"reason":"duplicate"}"#,
            "--grant",
            "agent",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "1. hide: not hidden",
        "2. entry: /tools/create_refund — exact key",
        "4. schema: the arguments match",
        "/tools/create_refund/deny_if/0: deny_if → does not match",
        "/tools/create_refund/deny_if/0/conditions/0: args.amount gt 100000 → false",
        "/tools/create_refund/approve_if/0: approve_if → matches (all conditions hold)",
        "8. answer: approve (rule /tools/create_refund/approve_if/0)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!out.contains("note:"), "{out}");
    let o = run(
        &[
            "explain",
            "--policy",
            "examples/policies/github.json",
            "--tool",
            "get_issue",
            "--args",
            r#"{"owner":"acme"}"#,
        ],
        None,
    );
    let out = stdout(&o);
    assert!(
        out.contains("pattern \"get_*\" (4 literal characters)"),
        "{out}"
    );
    assert!(out.contains("7. limits"), "{out}");
    assert!(
        out.contains("8. answer: allow (rule /tools/get_*)"),
        "{out}"
    );
    let o = run(
        &[
            "explain", "--policy", SCANNER, "--tool", "x", "--args", "[1]",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
}
