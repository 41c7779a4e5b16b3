//! The audit log under the HTTP gateway: written by its own thread and complete after
//! SIGTERM (every call that was answered, once, the `stop` line last); `--audit-sync`, each
//! line in the file by the time its answer arrives; a log that cannot be written (`/dev/full`,
//! a full disk) said on stderr and in the metrics while calls go on.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use mcp_policy_test_support::http::get;
use mcp_policy_test_support::peers::need;
use serde_json::{Value, json};

use crate::gateway::{BIN, audit_records, call, session, setup, text};

/// The records of calls (not events) in the log.
fn calls(path: &std::path::Path) -> Vec<Value> {
    audit_records(path)
        .into_iter()
        .filter(|r| r.get("tool").is_some())
        .collect()
}

#[test]
fn after_sigterm_the_log_holds_every_answered_call_once_and_stop_last() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("audit-sigterm");
    let audit = s._t.path("audit.jsonl");
    let audit_s = audit.display().to_string();
    let mut gw = s.gateway(&["--audit", &audit_s]);
    let addr = gw.addr.clone();
    // 4 callers, 50 calls each, each call's arguments its own.
    let callers: Vec<_> = (0..4)
        .map(|c| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let sid = session(&addr, None);
                for i in 0..50 {
                    let tag = format!("-{c}-{i}");
                    let res = call(
                        &addr,
                        None,
                        &sid,
                        i + 2,
                        "slow",
                        json!({"ms": 0, "tag": tag}),
                    );
                    assert_eq!(text(&res.answer()), format!("ran slow{tag}"));
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
    // SIGTERM at once, with the last lines perhaps still queued.
    gw.signal("-TERM");
    assert!(
        gw.wait(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let records = audit_records(&audit);
    let calls: Vec<&Value> = records.iter().filter(|r| r["tool"] == "slow").collect();
    assert_eq!(calls.len(), 200, "{}", gw.stderr());
    let digests: HashSet<&str> = calls
        .iter()
        .map(|r| r["args_sha256"].as_str().unwrap())
        .collect();
    assert_eq!(digests.len(), 200, "each call once");
    assert!(
        calls
            .iter()
            .all(|r| r["upstream"] == "ok" && r["decision"] == "allow")
    );
    assert_eq!(records.first().unwrap()["event"], "start");
    assert_eq!(records.last().unwrap()["event"], "stop");
}

#[test]
fn with_audit_sync_each_line_is_in_the_file_when_its_answer_arrives() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("audit-sync");
    let audit = s._t.path("audit.jsonl");
    let audit_s = audit.display().to_string();
    let gw = s.gateway(&["--audit", &audit_s, "--audit-sync"]);
    let sid = session(&gw.addr, None);
    for i in 0..20u64 {
        let res = call(&gw.addr, None, &sid, i + 2, "slow", json!({"ms": 0}));
        assert_eq!(text(&res.answer()), "ran slow");
        // Read at once: no waiting.
        assert_eq!(calls(&audit).len() as u64, i + 1);
    }
    // A refused call too (echo allows 3 a minute).
    for i in 0..4u64 {
        call(&gw.addr, None, &sid, 100 + i, "echo", json!({}));
        assert_eq!(calls(&audit).len() as u64, 21 + i);
    }
    assert_eq!(calls(&audit).last().unwrap()["decision"], "limit");
}

#[test]
fn audit_sync_without_an_audit_log_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["proxy", "--policy", "p.json", "--audit-sync", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--audit"), "{err}");
}

#[test]
fn a_log_that_cannot_be_written_is_said_and_counted_while_calls_go_on() {
    if !need(&["python3"]) || !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let s = setup("audit-full");
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    let mut gw = s.gateway(&["--audit", "/dev/full", "--metrics"]);
    let sid = session(&gw.addr, None);
    for i in 0..5u64 {
        let res = call(&gw.addr, None, &sid, i + 2, "slow", json!({"ms": 0}));
        assert_eq!(text(&res.answer()), "ran slow", "calls go on");
    }
    let said = gw.stderr();
    assert!(
        said.contains("cannot write the audit log (/dev/full)") && said.contains("calls go on"),
        "{said}"
    );
    // Said once, not once a line.
    assert_eq!(
        said.matches("cannot write the audit log").count(),
        1,
        "{said}"
    );
    let metrics = get(&gw.addr, "/metrics").body;
    let errors: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mcp_policy_audit_write_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "{metrics}");
    // At the stop, what could not be written is given as lost.
    gw.signal("-TERM");
    assert!(
        gw.wait(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let said = gw.stderr();
    assert!(said.contains("line(s) lost"), "{said}");
}
