//! A store that fails on demand: every stage that touches the store denies with the reason.

use std::sync::atomic::{AtomicBool, Ordering};

use mcp_policy::error::{HostError, StoreError};
use mcp_policy::{
    CounterStore, Engine, Grant, ManualClock, MemoryStore, Outcome, Plan, Policy, Reservation,
    Verdict,
};
use serde_json::json;

/// The real in-memory store, with a switch that makes every operation fail.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    broken: AtomicBool,
    panics: AtomicBool,
}

impl CounterStore for Flaky {
    fn apply(&self, plan: &Plan<'_>) -> Result<Outcome, StoreError> {
        if self.panics.load(Ordering::SeqCst) {
            panic!("simulated store bug");
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "connection refused (simulated)".into(),
            ));
        }
        self.inner.apply(plan)
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "connection refused (simulated)".into(),
            ));
        }
        self.inner.release(reservation)
    }
    fn record_approval(&self, id: &str, now_ms: u64) -> Result<(), HostError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused (simulated)".into()).into());
        }
        self.inner.record_approval(id, now_ms)
    }
}

const POLICY: &str = r#"{"version":"1","default":"deny","tools":{
  "scan":{"rate_limit":"10/minute"},
  "transfer":{"action":"approve"},
  "ping":{}}}"#;

fn engine() -> Engine<ManualClock, Flaky> {
    Engine::with_parts(
        Policy::from_json_str(POLICY).unwrap(),
        ManualClock::new(0),
        Flaky::default(),
    )
}

#[test]
fn store_errors_deny_at_the_limits_stage() {
    let e = engine();
    e.store().broken.store(true, Ordering::SeqCst);
    let d = e.evaluate("scan", &json!({}), &Grant::new("g"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(&*d.rule, "/tools/scan/rate_limit");
    assert_eq!(
        d.message.as_deref(),
        Some(
            "counter store unavailable: connection refused (simulated); the call is denied (fail closed)"
        )
    );
}

#[test]
fn store_errors_deny_at_the_approval_stage() {
    let e = engine();
    e.store().broken.store(true, Ordering::SeqCst);
    let d = e.evaluate("transfer", &json!({"amount": 1}), &Grant::new("g"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(&*d.rule, "/tools/transfer/action");
    assert!(d.message.unwrap().contains("connection refused"));
    // Recording an approval through a broken store is an error, not a silent success.
    assert!(matches!(
        e.record_approval("ap-0"),
        Err(HostError::Store(_))
    ));
}

#[test]
fn store_errors_on_release_are_reported() {
    let e = engine();
    let d = e.evaluate("scan", &json!({}), &Grant::new("g"));
    e.store().broken.store(true, Ordering::SeqCst);
    assert!(e.release(d.reservation.unwrap()).is_err());
}

#[test]
fn a_panicking_store_denies() {
    let e = engine();
    e.store().panics.store(true, Ordering::SeqCst);
    let d = e.evaluate("scan", &json!({}), &Grant::new("g"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.message.unwrap().contains("the counter store panicked"));
}

#[test]
fn stages_that_need_no_store_still_decide() {
    let e = engine();
    e.store().broken.store(true, Ordering::SeqCst);
    // No limits, no approval: allowed without touching the store.
    assert_eq!(
        e.evaluate("ping", &json!({}), &Grant::new("g")).verdict,
        Verdict::Allow
    );
    assert_eq!(
        e.evaluate("other", &json!({}), &Grant::new("g")).verdict,
        Verdict::Deny
    );
}
