//! `mcp-policy eval`: replays, answers, line errors, approvals and releases.

use super::*;

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
