//! Arbitrary calls (tool names, nested arguments, grants, times moving forward and back)
//! against realistic policies: evaluation is total and never over-admits.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
use serde_json::Value;

const POLICIES: &[&str] = &[
    include_str!("../../examples/policies/security-scanner.json"),
    include_str!("../../examples/policies/payments.json"),
    include_str!("../../examples/policies/filesystem.json"),
    include_str!("../../examples/policies/github.json"),
];

static LOADED: LazyLock<Vec<Policy>> = LazyLock::new(|| {
    POLICIES
        .iter()
        .filter_map(|p| Policy::from_json_str(p).ok())
        .collect()
});

fuzz_target!(|data: &[u8]| {
    // Input: one JSON Lines call per line: {"tool", "args", "grant", "session", "dt"}.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(first) = data.first() else { return };
    let Some(policy_text) = POLICIES.get(usize::from(*first) % POLICIES.len()) else {
        return;
    };
    let Ok(policy) = Policy::from_json_str(policy_text) else {
        return;
    };
    let _ = &*LOADED;
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(policy, clock.clone(), MemoryStore::with_max_keys(64));
    for line in text.lines() {
        let Ok(call) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let tool = call
            .get("tool")
            .and_then(Value::as_str)
            .unwrap_or("start_security_scan");
        let args = call.get("args").cloned().unwrap_or(Value::Null);
        let mut grant = Grant::new(call.get("grant").and_then(Value::as_str).unwrap_or("g"));
        if let Some(s) = call.get("session").and_then(Value::as_str) {
            grant = grant.with_session(s);
        }
        if let Some(dt) = call.get("dt").and_then(Value::as_i64) {
            let now = mcp_policy::Clock::now_ms(&clock) as i64;
            clock.set(now.saturating_add(dt).max(0) as u64);
        }
        let d = engine.evaluate(tool, &args, &grant);
        match d.verdict {
            Verdict::Deny | Verdict::Limit | Verdict::Approve => assert!(d.message.is_some()),
            Verdict::Allow => {}
        }
        if d.verdict == Verdict::Limit {
            assert!(d.retry_after_ms.is_some_and(|r| r > 0));
        }
        if let Some(r) = d.reservation {
            if call.get("release").and_then(Value::as_bool) == Some(true) {
                let _ = engine.release(r);
            }
        }
        if let Some(id) = d.approval_id {
            let _ = engine.record_approval(&id);
        }
    }
});
