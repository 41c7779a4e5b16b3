//! The `mcp-policy` command, run as a subprocess: real binary, real files, real pipes.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::peers::repo;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

/// Starts the binary in the repository root with all three standard streams piped.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = spawn(args);
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The command may exit before reading (an unusable policy): a broken pipe is fine.
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const SCANNER: &str = "examples/policies/security-scanner.json";

// ---------- eval ----------

#[test]
fn eval_sample_stream_is_deterministic_and_exits_0() {
    let o = run(&["eval", "--policy", SCANNER, "examples/calls.jsonl"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = lines(&o);
    let input = std::fs::read_to_string(repo().join("examples/calls.jsonl")).unwrap();
    assert_eq!(
        out.len(),
        input.lines().filter(|l| !l.trim().is_empty()).count()
    );
    let verdicts: Vec<&str> = out.iter().filter_map(|v| v["decision"].as_str()).collect();
    for needed in ["allow", "deny", "limit", "approve"] {
        assert!(
            verdicts.contains(&needed),
            "{needed} missing from {verdicts:?}"
        );
    }
    assert!(out.iter().any(|v| v.get("approved").is_some()));
    assert!(out.iter().any(|v| v.get("released").is_some()));
    assert!(out.iter().any(|v| v.get("retry_after_ms").is_some()));
    // Same input, same output.
    let again = run(&["eval", "--policy", SCANNER, "examples/calls.jsonl"], None);
    assert_eq!(stdout(&o), stdout(&again));
}

#[test]
fn eval_timed_replay_keeps_its_time_on_lines_without_at() {
    let t = Temp::new("timed");
    let policy = t.write(
        "p.json",
        r#"{"version":"1","default":"deny","tools":{
          "scan":{"limits":[{"counter":"c","window":"minute","max":1}]},
          "transfer":{"action":"approve"}}}"#,
    );
    // `release` and `approve` carry no `at`: they happen at the replay's latest time, and the
    // timed lines after them are still accepted (not "earlier than the previous line").
    let first = r#"{"tool":"transfer","args":{"amount":5},"grant":"a","at":1763712000000}"#;
    let o = run(&["eval", "--policy", &policy], Some(first));
    let id = lines(&o)[0]["approval_id"].as_str().unwrap().to_owned();
    let input = format!(
        "{first}\n{{\"approve\":\"{id}\"}}\n{}\n{}\n{}\n{}\n",
        r#"{"tool":"transfer","args":{"amount":5},"grant":"a","at":1763712000100}"#,
        r#"{"tool":"scan","grant":"a","at":1763712000200}"#,
        r#"{"release":"r-1"}"#,
        r#"{"tool":"scan","grant":"a","at":1763712000300}"#,
    );
    let o = run(&["eval", "--policy", &policy], Some(&input));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = lines(&o);
    assert_eq!(out[1], json!({"approved": id}));
    assert_eq!(out[2]["decision"], "allow", "{}", stdout(&o));
    assert_eq!(out[3]["reservation"], "r-1");
    assert_eq!(out[4], json!({"released": "r-1"}));
    // The refund happened at the replay's time, inside the window: the budget is free again.
    assert_eq!(out[5]["decision"], "allow", "{}", stdout(&o));
}

#[test]
fn eval_denies_arguments_deeper_than_the_json_readers_limit() {
    let t = Temp::new("deep");
    let policy = t.write("p.json", r#"{"version":"1","default":"allow"}"#);
    let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let input = format!(
        "{{\"tool\":\"t\",\"args\":{{\"a\":{}}}}}\n{{\"tool\":\"t\",\"args\":{{\"a\":{}}}}}\n{{\"tool\":\"t\",\"args\":{{\"a\":{}}}}}\n",
        nested(100),
        nested(200),
        nested(100_000)
    );
    let o = run(&["eval", "--policy", &policy], Some(&input));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let expected =
        r#"{"decision":"deny","rule":"","message":"arguments are nested deeper than 64 levels"}"#;
    assert_eq!(text.lines().collect::<Vec<_>>(), [expected; 3], "{text}");
}

#[test]
fn eval_prints_fields_in_the_documented_order() {
    let t = Temp::new("order");
    let policy = t.write(
        "p.json",
        r#"{"version":"1","default":"deny","tools":{
          "scan":{"limits":[{"counter":"c","window":"minute","max":1}]},
          "transfer":{"action":"approve","reason":"a person approves"}}}"#,
    );
    let input = concat!(
        "{\"tool\":\"scan\",\"at\":1000}\n",
        "{\"tool\":\"scan\",\"at\":2000}\n",
        "{\"tool\":\"nope\",\"at\":2000}\n",
    );
    let o = run(&["eval", "--policy", &policy], Some(input));
    let text = stdout(&o);
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(
        got,
        [
            r#"{"decision":"allow","rule":"/tools/scan","remaining":0,"reservation":"r-1"}"#,
            r#"{"decision":"limit","rule":"/tools/scan/limits/0","counter":"c","retry_after_ms":59000,"message":"rate limit `c` reached: at most 1 per 1m (grant)"}"#,
            r#"{"decision":"deny","rule":"/default","message":"this tool is not allowed by this policy (default: deny)"}"#,
        ],
        "{text}"
    );
}

#[test]
fn eval_reads_stdin_and_answers_every_line_in_order() {
    let input = concat!(
        "{\"tool\": \"stop_scan\", \"args\": {\"scan_id\": \"s-1\"}, \"grant\": \"alice-laptop\", \"at\": 1763712000000}\n",
        "\n",
        "this is not json\n",
        "{\"tool\": \"list_scans\", \"grant\": {\"id\": \"ci-runner\", \"session\": \"run-7\", \"attrs\": {\"team\": \"sec\"}}, \"at\": \"2026-11-21T10:00:00.250Z\"}\n",
        "{\"tool\": \"list_scans\", \"tool\": \"cancel_all_scans\", \"at\": 1795255200300}\n",
        "{\"tool\": \"list_scans\", \"argz\": {}}\n",
        "{\"tool\": \"cancel_all_scans\", \"at\": 1795255200300}"
    );
    let o = run(&["eval", "--policy", SCANNER], Some(input));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = lines(&o);
    assert_eq!(out.len(), 6, "{}", stdout(&o));
    assert_eq!(out[0]["decision"], "approve");
    assert!(
        out[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 3: invalid JSON"),
        "{}",
        out[1]
    );
    assert_eq!(
        out[2],
        json!({"decision":"allow","rule":"/tools/list_scans","remaining":499,"reservation":"r-1"})
    );
    assert!(
        out[3]["error"]
            .as_str()
            .unwrap()
            .contains("line 5: invalid JSON: 1:29: duplicate key `tool`"),
        "{}",
        out[3]
    );
    assert!(
        out[4]["error"]
            .as_str()
            .unwrap()
            .contains("line 6: unknown field `argz`"),
        "{}",
        out[4]
    );
    assert_eq!(
        out[5],
        json!({"decision":"deny","rule":"/tools/cancel_all_scans/action","message":"Stopping scans breaks compliance monitoring"})
    );
}

#[test]
fn eval_bad_line_then_good_line_both_answered_exit_1() {
    let o = run(
        &["eval", "--policy", SCANNER, "-"],
        Some("{oops\n{\"tool\":\"list_scans\",\"at\":0}\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    let out = lines(&o);
    assert_eq!(out.len(), 2);
    assert!(out[0]["error"].as_str().unwrap().starts_with("line 1: "));
    assert_eq!(out[1]["decision"], "allow");
}

#[test]
fn eval_at_going_backwards_is_an_error_line() {
    let input = "{\"tool\":\"list_scans\",\"at\":\"2026-11-21T10:00:00Z\"}\n{\"tool\":\"list_scans\",\"at\":\"2026-11-21T11:59:59+02:00\"}\n{\"tool\":\"list_scans\",\"at\":\"2026-11-21T12:00:00+02:00\"}\n";
    let o = run(&["eval", "--policy", SCANNER], Some(input));
    assert_eq!(o.status.code(), Some(1));
    let out = lines(&o);
    assert_eq!(out[0]["decision"], "allow");
    assert!(
        out[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 2: `at`"),
        "{}",
        out[1]
    );
    // 12:00+02:00 is 10:00Z: the same instant is not "earlier".
    assert_eq!(out[2]["decision"], "allow");
    assert_eq!(out[2]["remaining"], 498);
}

#[test]
fn eval_approve_and_release_flows() {
    let first = run(
        &["eval", "--policy", SCANNER],
        Some(
            "{\"tool\":\"stop_scan\",\"args\":{\"scan_id\":\"s-9\"},\"grant\":\"bob\",\"at\":0}\n",
        ),
    );
    let id = lines(&first)[0]["approval_id"].as_str().unwrap().to_owned();
    let input = format!(
        concat!(
            "{{\"tool\":\"stop_scan\",\"args\":{{\"scan_id\":\"s-9\"}},\"grant\":\"bob\",\"at\":0}}\n",
            "{{\"approve\":\"{id}\",\"at\":1000}}\n",
            "{{\"tool\":\"stop_scan\",\"args\":{{\"scan_id\":\"s-9\"}},\"grant\":\"bob\",\"at\":2000}}\n",
            "{{\"release\":\"r-1\"}}\n",
            "{{\"release\":\"r-1\"}}\n",
            "{{\"approve\":\"ap-0000\"}}\n",
            "{{\"release\":7}}\n"
        ),
        id = id
    );
    let o = run(&["eval", "--policy", SCANNER], Some(&input));
    assert_eq!(o.status.code(), Some(1));
    let out = lines(&o);
    assert_eq!(out[0]["decision"], "approve");
    assert_eq!(out[1], json!({ "approved": id }));
    assert_eq!(
        out[2],
        json!({"decision":"allow","rule":"/tools/stop_scan","remaining":499,"reservation":"r-1"})
    );
    assert_eq!(out[3], json!({ "released": "r-1" }));
    assert!(
        out[4]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 5: unknown or already released")
    );
    assert!(
        out[5]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 6: unknown or expired approval id")
    );
    assert!(
        out[6]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 7: `release` must be a string")
    );
}

#[test]
fn eval_flushes_each_answer_before_the_next_line_is_written() {
    let mut child = spawn(&["eval", "--policy", SCANNER]);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    for i in 0..5u64 {
        writeln!(
            stdin,
            "{{\"tool\":\"list_scans\",\"grant\":\"alice\",\"at\":{}}}",
            1000 * i
        )
        .unwrap();
        stdin.flush().unwrap();
        // The pipe stays open: the answer must arrive without more input.
        let answer = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no answer within 20s: output not flushed per line");
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["remaining"], 499 - i);
    }
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    reader.join().unwrap();
}

#[test]
fn eval_unusable_policy_exits_2_with_positions() {
    let t = Temp::new("eval2");
    let policy = t.write(
        "bad.json",
        "{\n  \"version\": \"1\",\n  \"default\": \"deny\",\n  \"tools\": { \"stop_scan\": { \"limits\": [ { \"counter\": \"c\", \"window\": \"minutes\", \"max\": 1 } ] } }\n}\n",
    );
    let o = run(&["eval", "--policy", &policy], Some("{\"tool\":\"x\"}\n"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.contains(&format!("{policy}:4:")), "{err}");
    assert!(
        err.contains(": /tools/stop_scan/limits/0/window: unknown window \"minutes\""),
        "{err}"
    );
    let o = run(&["eval", "--policy", "does/not/exist.json"], Some(""));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[], None).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"], None).status.code(), Some(2));
    assert_eq!(run(&["eval"], None).status.code(), Some(2));
    assert_eq!(run(&["--help"], None).status.code(), Some(0));
}

// ---------- check ----------

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

// ---------- test ----------

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

// ---------- explain ----------

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

// ---------- schema ----------

#[test]
fn schema_output_is_the_shipped_file() {
    let o = run(&["schema"], None);
    assert_eq!(o.status.code(), Some(0));
    let file = std::fs::read_to_string(repo().join("docs/policy.schema.json")).unwrap();
    assert_eq!(stdout(&o), file);
}

fn policy_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/policy.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .offline()
        .build(&schema)
        .unwrap()
}

fn example_policies() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".test.json")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_policy_validates_against_the_schema() {
    let validator = policy_validator();
    let policies = example_policies();
    assert!(policies.len() >= 4);
    for path in policies {
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn schema_rejects_unknown_fields_like_the_loader() {
    let validator = policy_validator();
    for bad in [
        json!({"version": "1", "default": "deny", "tool": {}}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"limit": []}}}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"limits": [{"counter": "c", "window": 60, "max": 1, "maxx": 2}]}}}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"require": [{"path": "args.a", "op": "eq", "value": 1, "onDeny": "x"}]}}}),
        json!({"version": "1", "default": "deny", "all_tools": {"rate_limit": "1/minute"}}),
        json!({"version": "1", "default": "deny", "approvals": {"ttl": "5m", "max": 1}}),
        json!({"version": "2", "default": "deny"}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"limits": [{"counter": "c", "window": "minutes", "max": 1}]}}}),
    ] {
        assert!(!validator.is_valid(&bad), "schema accepted {bad}");
        assert!(
            mcp_policy::Policy::from_value(&bad).is_err(),
            "loader accepted {bad}"
        );
    }
    let good = json!({"version": "1", "default": "deny", "x-owner": "sec", "tools": {"t": {"x-note": 1, "rate_limit": "10/minute"}}});
    assert!(validator.is_valid(&good));
    assert!(mcp_policy::Policy::from_value(&good).is_ok());
}

// ---------- scaffold ----------

fn scaffold(fixture: &str) -> Value {
    let path = format!("mcp-policy-cli/tests/data/tools_list/{fixture}.json");
    let o = run(&["scaffold", &path], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    mcp_policy::Policy::from_json_str(&text)
        .unwrap_or_else(|e| panic!("{fixture}: scaffold output does not load: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(
        policy_validator().is_valid(&value),
        "{fixture}: scaffold output fails the schema"
    );
    value
}

fn assert_classes(fixture: &str, expected: &[(&str, &str)]) {
    let policy = scaffold(fixture);
    assert_eq!(policy["default"], "deny");
    let tools = policy["tools"].as_object().unwrap();
    let fixture_tools: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(format!(
            "mcp-policy-cli/tests/data/tools_list/{fixture}.json"
        )))
        .unwrap(),
    )
    .unwrap();
    // Every tool of the server has an entry, and every one is checked here.
    assert_eq!(
        tools.len(),
        fixture_tools["tools"].as_array().unwrap().len()
    );
    assert_eq!(
        tools.len(),
        expected.len(),
        "{fixture}: expected classes for every tool"
    );
    let hide: Vec<&str> = policy["hide"]
        .as_array()
        .map(|h| h.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, class) in expected {
        let entry = &tools[*name];
        assert_eq!(entry["x-risk"], *class, "{fixture}: {name}");
        match *class {
            "Read" => assert!(
                entry.get("rate_limit").is_none() && entry.get("action").is_none(),
                "{name}: {entry}"
            ),
            "Write" => assert_eq!(entry["rate_limit"], "30/hour", "{name}"),
            "Execute" => assert_eq!(entry["rate_limit"], "10/minute", "{name}"),
            "Destructive" => {
                assert!(hide.contains(name), "{name} not hidden");
                assert_eq!(entry["action"], "deny");
            }
            "Financial" => assert_eq!(entry["action"], "approve", "{name}"),
            other => panic!("unknown class {other}"),
        }
        if *class != "Destructive" {
            assert!(!hide.contains(name), "{name} hidden");
        }
    }
}

#[test]
fn scaffold_filesystem_server() {
    // Hand-checked from the annotations: readOnlyHint → Read; destructiveHint → Destructive
    // (write_file overwrites, edit_file rewrites, move_file can clobber); create_directory is
    // readOnlyHint false and destructiveHint false → Write.
    assert_classes(
        "filesystem",
        &[
            ("read_file", "Read"),
            ("read_text_file", "Read"),
            ("read_media_file", "Read"),
            ("read_multiple_files", "Read"),
            ("write_file", "Destructive"),
            ("edit_file", "Destructive"),
            ("create_directory", "Write"),
            ("list_directory", "Read"),
            ("list_directory_with_sizes", "Read"),
            ("directory_tree", "Read"),
            ("move_file", "Destructive"),
            ("search_files", "Read"),
            ("get_file_info", "Read"),
            ("list_allowed_directories", "Read"),
        ],
    );
}

#[test]
fn scaffold_memory_server() {
    assert_classes(
        "memory",
        &[
            ("create_entities", "Write"),
            ("create_relations", "Write"),
            ("add_observations", "Write"),
            ("delete_entities", "Destructive"),
            ("delete_observations", "Destructive"),
            ("delete_relations", "Destructive"),
            ("read_graph", "Read"),
            ("search_nodes", "Read"),
            ("open_nodes", "Read"),
        ],
    );
}

#[test]
fn scaffold_git_server() {
    assert_classes(
        "git",
        &[
            ("git_status", "Read"),
            ("git_diff_unstaged", "Read"),
            ("git_diff_staged", "Read"),
            ("git_diff", "Read"),
            ("git_commit", "Write"),
            ("git_add", "Write"),
            ("git_reset", "Destructive"),
            ("git_log", "Read"),
            ("git_create_branch", "Write"),
            ("git_checkout", "Write"),
            ("git_show", "Read"),
            ("git_branch", "Read"),
        ],
    );
}

#[test]
fn scaffold_github_server_without_annotations() {
    // This server sends no annotations: classes come from the names' verbs.
    assert_classes(
        "github",
        &[
            ("create_or_update_file", "Write"),
            ("search_repositories", "Read"),
            ("create_repository", "Write"),
            ("get_file_contents", "Read"),
            ("push_files", "Write"),
            ("create_issue", "Write"),
            ("create_pull_request", "Write"),
            ("fork_repository", "Write"),
            ("create_branch", "Write"),
            ("list_commits", "Read"),
            ("list_issues", "Read"),
            ("update_issue", "Write"),
            ("add_issue_comment", "Write"),
            ("search_code", "Read"),
            ("search_issues", "Read"),
            ("search_users", "Read"),
            ("get_issue", "Read"),
            ("get_pull_request", "Read"),
            ("list_pull_requests", "Read"),
            ("create_pull_request_review", "Write"),
            ("merge_pull_request", "Write"),
            ("get_pull_request_files", "Read"),
            ("get_pull_request_status", "Read"),
            ("update_pull_request_branch", "Write"),
            ("get_pull_request_comments", "Read"),
            ("get_pull_request_reviews", "Read"),
        ],
    );
}

#[test]
fn scaffold_execute_and_financial_tools_from_a_json_rpc_response() {
    let t = Temp::new("scaffold");
    let path = t.write(
        "tools.json",
        r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[
          {"name":"run_query","description":"Run a SQL query","annotations":{"readOnlyHint":false,"destructiveHint":false}},
          {"name":"create_refund","description":"Refund a charge","annotations":{"readOnlyHint":false,"destructiveHint":false}},
          {"name":"list_refunds","annotations":{"readOnlyHint":true}}
        ]}}"#,
    );
    let o = run(&["scaffold", &path], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tools"]["run_query"]["x-risk"], "Execute");
    assert_eq!(v["tools"]["run_query"]["rate_limit"], "10/minute");
    assert_eq!(v["tools"]["create_refund"]["x-risk"], "Financial");
    assert_eq!(v["tools"]["list_refunds"]["x-risk"], "Read");
    // The scaffold passes `check` without warnings.
    let out = t.write("policy.json", &stdout(&o));
    let c = run(&["check", &out], None);
    assert_eq!((c.status.code(), stdout(&c)), (Some(0), String::new()));
    assert_eq!(
        run(&["scaffold", "no/such/file.json"], None).status.code(),
        Some(2)
    );
}

#[test]
fn scaffolded_real_servers_check_clean() {
    let t = Temp::new("scaffold-check");
    for fixture in [
        "filesystem",
        "memory",
        "everything",
        "github",
        "time",
        "fetch",
        "git",
    ] {
        let v = scaffold(fixture);
        // Tools only in, so empty sections out: resources and prompts stay denied.
        assert_eq!(v["resources"], json!({}), "{fixture}");
        assert_eq!(v["prompts"], json!({}), "{fixture}");
        let path = t.write(&format!("{fixture}.json"), &v.to_string());
        let c = run(&["check", &path], None);
        assert_eq!(
            (c.status.code(), stdout(&c)),
            (Some(0), String::new()),
            "{fixture}"
        );
    }
}

#[test]
fn example_test_files_validate_against_the_test_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/policy-test.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .offline()
        .build(&schema)
        .unwrap();
    for name in ["security-scanner", "github", "payments", "filesystem"] {
        let path = repo().join(format!("examples/policies/{name}.test.json"));
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{}: {e}", e.instance_path().as_str()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    assert!(!validator.is_valid(&json!({"policy": "p.json", "cases": [{"name": "x", "calls": [{"tool": "t", "expect": {"decison": "allow"}}]}]})));
}

// ---------- resources and prompts ----------

/// Tools, resources (a limit, a hidden pattern) and prompts (a condition, a hidden pattern).
const SECTIONS: &str = r#"{"version":"1","default":"deny",
  "tools":{"scan":{}},
  "resources":{"file:///srv/docs/*":{"rate_limit":"2/minute"},"file:///srv/docs/secret*":{"action":"hide"}},
  "prompts":{"summarise":{"require":[{"path":"args.style","op":"in","value":["short","long"]}]},
             "internal_*":{"action":"hide"}}}"#;

#[test]
fn eval_decides_tool_resource_and_prompt_lines() {
    let t = Temp::new("eval-sections");
    let policy = t.write("p.json", SECTIONS);
    let input = [
        r#"{"tool":"scan","at":0}"#,
        r#"{"resource":"file:///srv/docs/guide.md"}"#,
        r#"{"resource":"file:///srv/docs/%2e%2e/%2e%2e/etc/shadow"}"#,
        r#"{"resource":"FILE://localhost/srv/docs/secret.txt"}"#,
        r#"{"prompt":"summarise","args":{"style":"short"},"grant":"alice"}"#,
        r#"{"prompt":"summarise","args":{"style":"poem"}}"#,
        r#"{"prompt":"internal_plan"}"#,
        r#"{"resource":"file:///srv/docs/a/../b.md","args":{}}"#,
        r#"{"resource":"file:///srv/docs/c.md"}"#,
    ]
    .join("\n");
    let o = run(&["eval", "--policy", &policy], Some(&input));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    let out: Vec<&str> = text.lines().collect();
    let docs = "/resources/file:~1~1~1srv~1docs~1*";
    let expected = [
        r#"{"decision":"allow","rule":"/tools/scan"}"#.to_owned(),
        format!(r#"{{"decision":"allow","rule":"{docs}","remaining":1,"reservation":"r-1"}}"#),
        // `..` resolved: /etc/shadow matches no key.
        r#"{"decision":"deny","rule":"/default","message":"this resource is not allowed by this policy (default: deny)"}"#.to_owned(),
        // Upper case and localhost: still the hidden pattern.
        r#"{"decision":"deny","rule":"/resources/file:~1~1~1srv~1docs~1secret*/action","message":"this resource is hidden by policy"}"#.to_owned(),
        r#"{"decision":"allow","rule":"/prompts/summarise"}"#.to_owned(),
        r#"{"decision":"deny","rule":"/prompts/summarise/require/0","message":"requirement not met: `args.style` in [\"short\",\"long\"]"}"#.to_owned(),
        r#"{"decision":"deny","rule":"/prompts/internal_*/action","message":"this prompt is hidden by policy"}"#.to_owned(),
        format!(r#"{{"decision":"allow","rule":"{docs}","remaining":0,"reservation":"r-2"}}"#),
        // The third read in the minute: the resource's own budget is spent.
        format!(r#"{{"decision":"limit","rule":"{docs}/rate_limit","counter":"resources/file:///srv/docs/*.rate_limit","retry_after_ms":60000,"message":"#),
    ];
    assert_eq!(out.len(), expected.len(), "{out:?}");
    for (got, want) in out.iter().zip(&expected) {
        assert!(got.starts_with(want.as_str()), "got  {got}\nwant {want}");
    }
}

#[test]
fn eval_subject_errors_are_error_lines() {
    let t = Temp::new("eval-subject-errors");
    let policy = t.write("p.json", SECTIONS);
    let cases = [
        (
            r#"{"tool":"scan","resource":"file:///srv/docs/a"}"#,
            "line 1: a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`, found `tool` and `resource`",
        ),
        (
            r#"{"prompt":"summarise","resource":"file:///x","tool":"t"}"#,
            "line 2: a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`, found `tool` and `resource` and `prompt`",
        ),
        (
            r#"{"args":{},"at":5}"#,
            "line 3: a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`",
        ),
        (
            r#"{"resource":"file:///srv/docs/%zz"}"#,
            "line 4: `resource`: cannot read the URI: invalid percent-encoding \"%zz\" at byte 17 of the URI",
        ),
        (
            r#"{"resource":"no scheme here"}"#,
            "line 5: `resource`: cannot read the URI: not a URI",
        ),
        (
            r#"{"resource":"file:///srv/docs/a","args":{"x":1}}"#,
            "line 6: `args` of a `resource` line must be absent or `{}`",
        ),
        (
            r#"{"prompt":7}"#,
            "line 7: `prompt` must be a string, found a number",
        ),
        (
            r#"{"prompt":"summarise","args":["short"]}"#,
            "line 8: `args` must be a JSON object, found an array",
        ),
        (
            r#"{"resourc":"file:///srv/docs/a"}"#,
            "line 9: unknown field `resourc`; expected tool, resource, prompt, args, grant, at, approve or release",
        ),
    ];
    let input: Vec<&str> = cases.iter().map(|(line, _)| *line).collect();
    // A good line after the bad ones is still answered.
    let input = format!(
        "{}\n{{\"resource\":\"file:///srv/docs/a\"}}\n",
        input.join("\n")
    );
    let o = run(&["eval", "--policy", &policy], Some(&input));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = lines(&o);
    assert_eq!(out.len(), cases.len() + 1, "{out:?}");
    for ((line, want), got) in cases.iter().zip(&out) {
        let message = got["error"].as_str().unwrap_or_default();
        assert!(message.starts_with(want), "{line}: got {got}, want {want}");
    }
    assert_eq!(out[cases.len()]["decision"], "allow", "{out:?}");
}

#[test]
fn test_files_take_resource_and_prompt_cases() {
    let t = Temp::new("testcmd-sections");
    t.write("p.json", SECTIONS);
    let file = t.write(
        "p.test.json",
        r#"{"policy":"p.json","cases":[
          {"name":"reads under /srv/docs, two a minute","calls":[
            {"resource":"file:///srv/docs/a.md","expect":{"decision":"allow","remaining":1}},
            {"resource":"file:///SRV/docs/../docs/b.md","expect":{"decision":"deny","rule":"/default"}},
            {"resource":"file:///srv/docs/./b.md","at":1000,"expect":{"decision":"allow","remaining":0}},
            {"resource":"file:///srv/docs/c.md","at":2000,"expect":{"decision":"limit","retry_after_ms":58000}}]},
          {"name":"prompt arguments","calls":[
            {"prompt":"summarise","args":{"style":"long"},"expect":{"decision":"allow","rule":"/prompts/summarise"}},
            {"prompt":"summarise","expect":{"decision":"deny","rule":"/prompts/summarise/require/0"}},
            {"prompt":"internal_x","expect":{"decision":"deny","message_contains":"hidden"}}]},
          {"name":"a bad URI is an error","calls":[
            {"resource":"file:///a/%zz","expect":{"error_contains":"invalid percent-encoding"}}]},
          {"name":"the escape is not under /srv/docs","calls":[
            {"resource":"file:///srv/docs/%2e%2e/%2e%2e/etc/shadow","expect":{"decision":"allow"}}]}
        ]}"#,
    );
    let o = run(&["test", &file], None);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    for needle in [
        "ok reads under /srv/docs, two a minute\n",
        "ok prompt arguments\n",
        "ok a bad URI is an error\n",
        "FAIL the escape is not under /srv/docs\n",
        "actual   {\"decision\":\"deny\",",
        "\"rule\":\"/default\"}",
        "- decision: expected \"allow\", got \"deny\"",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(out.ends_with("3 passed, 1 failed\n"), "{out}");
}

/// `file:///*` readable only under /srv/docs; prompts: a hidden pattern (also named by the
/// top-level `hide`, which is for tools only) and a limited one.
const EXPLAIN_SECTIONS: &str = r#"{"version":"1","default":"deny","hide":["internal_*"],
  "resources":{"file:///*":{"require":[{"path":"uri","op":"path_under","value":"/srv/docs","on_deny":"only /srv/docs is readable"}]}},
  "prompts":{"internal_*":{"action":"hide"},
             "greet":{"require":[{"path":"args.name","op":"exists","value":true}],"rate_limit":"5/minute"}}}"#;

fn explain(policy: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["explain", "--policy", policy];
    all.extend(args);
    let o = run(&all, None);
    (o.status.code(), stdout(&o), stderr(&o))
}

#[test]
fn explain_resource_with_a_dot_dot_escape() {
    let t = Temp::new("explain-resource");
    let policy = t.write("p.json", EXPLAIN_SECTIONS);
    let escape = "file:///srv/docs/%2e%2e/%2e%2e/etc/shadow";
    let (code, out, err) = explain(&policy, &["--resource", escape]);
    assert_eq!(code, Some(0), "{err}");
    let rule = "/resources/file:~1~1~1*/require/0";
    for needle in [
        format!("call:   resource `file:///etc/shadow` (normal form of `{escape}`)"),
        "1. hide: the top-level `hide` names tools only".to_owned(),
        "2. entry: /resources/file:~1~1~1* — pattern \"file:///*\"".to_owned(),
        "5. require, then deny_if (the resource's entry; `all_tools` is for tools only):"
            .to_owned(),
        // The probe decided the resource itself: `uri` is there, and is not under /srv/docs.
        format!("{rule}: require uri path_under \"/srv/docs\" → false"),
        format!("8. answer: deny (rule {rule})"),
        "message: only /srv/docs is readable".to_owned(),
    ] {
        assert!(out.contains(&needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!out.contains("note:"), "{out}");
    // The same pattern lets a path under /srv/docs through; its URI is shown once.
    let (_, out, _) = explain(&policy, &["--resource", "file:///srv/docs/a.md"]);
    assert!(
        out.contains("call:   resource `file:///srv/docs/a.md`, grant"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{rule}: require uri path_under \"/srv/docs\" → true"
        )),
        "{out}"
    );
    assert!(
        out.contains("8. answer: allow (rule /resources/file:~1~1~1*)"),
        "{out}"
    );
    // A resource read has no arguments, and a URI must read.
    let (code, _, err) = explain(
        &policy,
        &["--resource", "file:///a", "--args", r#"{"x":1}"#],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("a resource read has no arguments"), "{err}");
    let (code, _, err) = explain(&policy, &["--resource", "file:///%zz"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--resource: cannot read the URI: invalid percent-encoding"),
        "{err}"
    );
}

#[test]
fn explain_hidden_prompt_and_an_allowed_one() {
    let t = Temp::new("explain-prompt");
    let policy = t.write("p.json", EXPLAIN_SECTIONS);
    let (code, out, err) = explain(&policy, &["--prompt", "internal_plan"]);
    assert_eq!(code, Some(0), "{err}");
    for needle in [
        "call:   prompt `internal_plan`, grant `anonymous` (no session), args {}",
        "1. hide: the top-level `hide` names tools only",
        "2. entry: /prompts/internal_* — pattern \"internal_*\" (9 literal characters)",
        "3. action: hide → denied as if it did not exist",
        "8. answer: deny (rule /prompts/internal_*/action) — hidden",
        "message: this prompt is hidden by policy",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!out.contains("4. schema"), "{out}");
    assert!(!out.contains("note:"), "{out}");
    // A prompt's arguments are its `--args`; its limit is its own counter.
    let (_, out, _) = explain(
        &policy,
        &["--prompt", "greet", "--args", r#"{"name":"Ada"}"#],
    );
    for needle in [
        "/prompts/greet/require/0: require args.name exists true → true",
        "counter `prompts/greet.rate_limit`: at most 5 per 1m",
        "8. answer: allow (rule /prompts/greet)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let (_, out, _) = explain(&policy, &["--prompt", "greet"]);
    assert!(out.contains("→ false"), "{out}");
    assert!(
        out.contains("8. answer: deny (rule /prompts/greet/require/0)"),
        "{out}"
    );
    // A prompt no key matches, under default: deny.
    let (_, out, _) = explain(&policy, &["--prompt", "other"]);
    assert!(
        out.contains("2. entry: no `prompts` key matches `other` → default: deny"),
        "{out}"
    );
    assert!(out.contains("8. answer: deny (rule /default)"), "{out}");
    // Exactly one of --tool, --resource, --prompt.
    assert_eq!(
        explain(&policy, &["--prompt", "greet", "--tool", "x"]).0,
        Some(2)
    );
    assert_eq!(
        explain(&policy, &["--resource", "file:///a", "--prompt", "x"]).0,
        Some(2)
    );
    assert_eq!(explain(&policy, &[]).0, Some(2));
}

#[test]
fn scaffold_resources_templates_and_prompts_from_mixed_json_lines() {
    let path = "mcp-policy-cli/tests/data/lists/mixed.jsonl";
    let o = run(&["scaffold", path], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        policy_validator().is_valid(&v),
        "scaffold output fails the schema"
    );
    assert_eq!(v["tools"]["echo"]["x-risk"], "Read");
    let resources = v["resources"].as_object().unwrap();
    let mut keys: Vec<&str> = resources.keys().map(String::as_str).collect();
    keys.sort_unstable();
    // Both resources/list pages; the URI in normal form; one pattern per template; the
    // `{+target}` template (it would be `*`) left out.
    assert_eq!(
        keys,
        [
            "file:///logs/*.log",
            "file:///srv/docs/guide.md",
            "test://static/resource/*",
            "test://static/resource/1",
            "test://static/resource/2",
        ]
    );
    assert_eq!(
        resources["test://static/resource/1"]["rate_limit"],
        "60/minute"
    );
    assert_eq!(
        resources["test://static/resource/*"]["rate_limit"],
        "30/minute"
    );
    assert!(
        resources
            .values()
            .all(|e| e["x-risk"] == "Read" && e.get("action").is_none())
    );
    assert!(
        resources["file:///srv/docs/guide.md"]["x-why"]
            .as_str()
            .unwrap()
            .contains("FILE://localhost/srv/docs/./guide.md"),
        "{v}"
    );
    let prompts = v["prompts"].as_object().unwrap();
    assert_eq!(prompts.len(), 2, "{v}");
    assert_eq!(prompts["complex_prompt"]["rate_limit"], "30/minute");
    assert_eq!(
        prompts["complex_prompt"]["schema"]["required"],
        json!(["temperature"])
    );
    assert_eq!(
        prompts["simple_prompt"]["schema"]["additionalProperties"],
        false
    );
    let err = stderr(&o);
    assert!(
        err.contains("line 6: a JSON-RPC error answer was skipped"),
        "{err}"
    );
    assert!(
        err.contains("resource template \"{+target}\" was skipped"),
        "{err}"
    );
    // It checks clean, and decides as written.
    let t = Temp::new("scaffold-lists");
    let policy = t.write("policy.json", &text);
    let c = run(&["check", &policy], None);
    assert_eq!((c.status.code(), stdout(&c)), (Some(0), String::new()));
    let input = [
        r#"{"resource":"test://static/resource/7"}"#,
        r#"{"resource":"file:///logs/../etc/passwd.log"}"#,
        r#"{"resource":"file://LOCALHOST/srv/docs/guide.md"}"#,
        r#"{"prompt":"complex_prompt","args":{"style":"terse"}}"#,
        r#"{"prompt":"complex_prompt","args":{"temperature":"0.7"}}"#,
        r#"{"prompt":"simple_prompt","args":{"extra":"x"}}"#,
    ]
    .join("\n");
    let o = run(&["eval", "--policy", &policy], Some(&input));
    let out = lines(&o);
    let got: Vec<(&str, &str)> = out
        .iter()
        .map(|l| (l["decision"].as_str().unwrap(), l["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("allow", "/resources/test:~1~1static~1resource~1*"),
            ("deny", "/default"),
            ("allow", "/resources/file:~1~1~1srv~1docs~1guide.md"),
            ("deny", "/prompts/complex_prompt/schema"),
            ("allow", "/prompts/complex_prompt"),
            ("deny", "/prompts/simple_prompt/schema"),
        ]
    );
}

#[test]
fn scaffold_reads_single_list_results_of_each_kind() {
    let t = Temp::new("scaffold-single");
    let resources = t.write(
        "resources.json",
        r#"{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"https://api.example.com/v1/status","name":"status"}]}}"#,
    );
    let v: Value = serde_json::from_str(&stdout(&run(&["scaffold", &resources], None))).unwrap();
    assert_eq!(v["tools"], json!({}));
    assert_eq!(v["prompts"], json!({}));
    assert_eq!(
        v["resources"]["https://api.example.com/v1/status"]["x-risk"],
        "Read"
    );
    let templates = t.write(
        "templates.json",
        r#"{"resourceTemplates":[{"uriTemplate":"https://api.example.com/v1/items/{id}?fields={f}"},{"uriTemplate":"db://{table}/rows/{id}"}]}"#,
    );
    let o = run(&["scaffold", &templates], None);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["resources"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["db://*/rows/*"]
    );
    assert!(stderr(&o).contains("a literal `?`"), "{}", stderr(&o));
    let prompts = t.write(
        "prompts.json",
        r#"{"prompts":[{"name":"greet"},{"name":"greet"},{"name":"a*"}]}"#,
    );
    let o = run(&["scaffold", &prompts], None);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["prompts"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["greet"]
    );
    assert!(stderr(&o).contains("listed twice"), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"a*\" contains `*`"), "{}", stderr(&o));
    // A page of none of the four lists is unusable.
    let other = t.write("other.json", r#"{"result":{"things":[]}}"#);
    let o = run(&["scaffold", &other], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`resourceTemplates`"), "{}", stderr(&o));
}
