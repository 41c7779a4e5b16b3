//! `mcp-policy test`: table-driven test files.

use super::*;

#[test]
fn example_test_files_pass() {
    let files = ["security-scanner", "github", "payments", "filesystem"]
        .map(|n| format!("examples/policies/{n}.test.json"));
    let mut args = vec!["test"];
    args.extend(files.iter().map(String::as_str));
    let o = run(&args, None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let last = out.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    assert!(out.lines().filter(|l| l.starts_with("ok ")).count() >= 20);
}

#[test]
fn test_command_reports_failures_with_expected_and_actual() {
    let t = Temp::new("testcmd");
    t.write(
        "p.json",
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":"1/minute"}}}"#,
    );
    let file = t.write(
        "p.test.json",
        r#"{"policy":"p.json","cases":[
          {"name":"passes","calls":[{"tool":"t","expect":{"decision":"allow","remaining":0}},{"tool":"t","at":30000,"expect":{"decision":"limit","retry_after_ms":30000}}]},
          {"name":"fails","calls":[{"tool":"t","expect":{"decision":"deny"}}]}
        ]}"#,
    );
    let o = run(&["test", &file], None);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("ok passes\n"), "{out}");
    assert!(out.contains("FAIL fails\n"), "{out}");
    assert!(out.contains("expected {\"decision\":\"deny\"}"), "{out}");
    assert!(out.contains("actual   {\"decision\":\"allow\""), "{out}");
    assert!(
        out.contains("decision: expected \"deny\", got \"allow\""),
        "{out}"
    );
    assert!(out.ends_with("1 passed, 1 failed\n"), "{out}");
    // A broken test file is unusable: exit 2.
    let broken = t.write(
        "broken.test.json",
        r#"{"policy":"p.json","cases":[],"extra":1}"#,
    );
    let o = run(&["test", &broken], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown field `extra`"));
}
