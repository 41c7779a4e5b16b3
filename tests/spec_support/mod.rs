//! Helpers shared by the `spec_*` integration tests: a real engine on a manual clock and
//! assertions on exact decisions.
#![allow(dead_code)]

use mcp_policy::{Decision, Engine, Grant, LoadError, ManualClock, MemoryStore, Policy, Verdict};
use serde_json::Value;

/// 2025-11-21T08:00:00Z: not aligned to a day, aligned to an hour.
pub const T0: u64 = 1_763_712_000_000;
pub const SECOND: u64 = 1_000;
pub const MINUTE: u64 = 60_000;
pub const HOUR: u64 = 3_600_000;
pub const DAY: u64 = 86_400_000;

pub type TestEngine = Engine<ManualClock, MemoryStore>;

/// Loads a policy that must be valid.
pub fn policy(text: &str) -> Policy {
    Policy::from_json_str(text).unwrap_or_else(|e| panic!("policy should load:\n{e}\n{text}"))
}

/// An engine over `text` with a manual clock at [`T0`] and a fresh in-memory store.
pub fn engine(text: &str) -> (TestEngine, ManualClock) {
    engine_with_store(text, MemoryStore::new())
}

pub fn engine_with_store(text: &str, store: MemoryStore) -> (TestEngine, ManualClock) {
    let clock = ManualClock::new(T0);
    (
        Engine::with_parts(policy(text), clock.clone(), store),
        clock,
    )
}

/// The load errors of a policy that must not load.
pub fn load_errors(text: &str) -> Vec<LoadError> {
    match Policy::from_json_str(text) {
        Ok(_) => panic!("policy should not load:\n{text}"),
        Err(errors) => errors.into_vec(),
    }
}

/// The single load error of a policy that must not load.
pub fn load_error(text: &str) -> LoadError {
    let mut errors = load_errors(text);
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error, got {errors:#?}"
    );
    errors.remove(0)
}

/// Asserts there is an error at `pointer` whose message contains `needle`.
pub fn assert_error_at(errors: &[LoadError], pointer: &str, needle: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.pointer == pointer && e.kind.to_string().contains(needle)),
        "no error at {pointer:?} containing {needle:?} in {errors:#?}"
    );
}

/// `{"version":"1","default":DEFAULT,"tools":{NAME: ENTRY}}` with `entry` as JSON text.
pub fn one_tool(default: &str, name: &str, entry: &str) -> String {
    format!(
        r#"{{"version":"1","default":"{default}","tools":{{{}: {entry}}}}}"#,
        Value::from(name)
    )
}

pub fn alice() -> Grant {
    Grant::new("alice")
}

pub fn call(engine: &TestEngine, tool: &str, args: Value) -> Decision {
    engine.evaluate(tool, &args, &alice())
}

pub fn assert_allow(d: &Decision, rule: &str) {
    assert_eq!((d.verdict, &*d.rule), (Verdict::Allow, rule), "{d:#?}");
    assert_eq!(d.message, None, "{d:#?}");
}

/// Asserts a deny by `rule` whose message contains `needle`.
pub fn assert_deny(d: &Decision, rule: &str, needle: &str) {
    assert_eq!((d.verdict, &*d.rule), (Verdict::Deny, rule), "{d:#?}");
    let message = d.message.as_deref().unwrap_or_default();
    assert!(
        message.contains(needle),
        "message {message:?} should contain {needle:?}"
    );
}

/// Asserts a limit by `rule` on `counter` with exactly `retry_after_ms`.
pub fn assert_limit(d: &Decision, rule: &str, counter: &str, retry_after_ms: u64) {
    assert_eq!(
        (d.verdict, &*d.rule, d.counter.as_deref(), d.retry_after_ms),
        (Verdict::Limit, rule, Some(counter), Some(retry_after_ms)),
        "{d:#?}"
    );
    assert!(d.reservation.is_none() && d.remaining.is_none(), "{d:#?}");
}

/// Asserts an approve by `rule` and returns its approval id.
pub fn assert_approve(d: &Decision, rule: &str) -> String {
    assert_eq!((d.verdict, &*d.rule), (Verdict::Approve, rule), "{d:#?}");
    let id = d.approval_id.clone().unwrap_or_default();
    assert!(
        id.starts_with("ap-") && id.len() == 35,
        "approval id {id:?}"
    );
    id
}
