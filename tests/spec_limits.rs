//! Spec section 5: limits — windows, retry-after, scopes, costs, all-or-nothing, shared
//! counters, release, reload, clocks going backwards and the store's key cap.

mod spec_support;

use mcp_policy::{Clock, Decision, Grant, ManualClock, MemoryStore, Reservation, Verdict};
use serde_json::{Value, json};
use spec_support::*;

/// An engine whose tool `t` has the given limits (JSON text of the list).
fn limits(list: &str) -> (TestEngine, ManualClock) {
    engine(&one_tool("deny", "t", &format!(r#"{{"limits":{list}}}"#)))
}

/// A single limit `{"counter":"c", ...extra}` on tool `t`.
fn one_limit(extra: &str) -> (TestEngine, ManualClock) {
    limits(&format!(r#"[{{"counter":"c",{extra}}}]"#))
}

fn t(engine: &TestEngine, args: Value, grant: &Grant) -> Decision {
    engine.evaluate("t", &args, grant)
}

/// Calls `t` as alice with `{}` and asserts it is allowed with `remaining` left.
fn admitted(engine: &TestEngine, remaining: u64) -> Decision {
    let d = t(engine, json!({}), &alice());
    assert_allow(&d, "/tools/t");
    assert_eq!(d.remaining, Some(remaining), "{d:#?}");
    d
}

/// Calls `t` as alice with `{}` and asserts it is limited by the single counter `c`.
fn refused(engine: &TestEngine, retry_after_ms: u64) {
    assert_limit(
        &t(engine, json!({}), &alice()),
        "/tools/t/limits/0",
        "c",
        retry_after_ms,
    );
}

/// Asserts the call is limited now, with a `retry_after` that is exact: still limited 1 ms
/// before it (with `retry_after` 1), admitted at it. Leaves the clock at the admission.
fn assert_retry_after_is_exact(
    engine: &TestEngine,
    clock: &ManualClock,
    args: &Value,
    grant: &Grant,
) -> u64 {
    let d = engine.evaluate("t", args, grant);
    assert_eq!(d.verdict, Verdict::Limit, "{d:#?}");
    let retry = d.retry_after_ms.unwrap_or_default();
    assert!(retry >= 1);
    let start = clock.now_ms();
    clock.set(start + retry - 1);
    let d = engine.evaluate("t", args, grant);
    assert_eq!(
        (d.verdict, d.retry_after_ms),
        (Verdict::Limit, Some(1)),
        "{d:#?}"
    );
    clock.set(start + retry);
    assert_eq!(engine.evaluate("t", args, grant).verdict, Verdict::Allow);
    retry
}

// ---------------------------------------------------------------- sliding windows

#[test]
fn sliding_window_is_exact_at_its_boundaries() {
    let w = 10 * SECOND;
    let (e, clock) = one_limit(r#""window":"10s","max":1"#);
    admitted(&e, 0);
    clock.set(T0 + w - 1);
    refused(&e, 1);
    clock.set(T0 + w);
    admitted(&e, 0);
    refused(&e, w);
}

#[test]
fn sliding_retry_after_is_when_enough_old_calls_leave() {
    let (e, clock) = one_limit(r#""window":"10s","max":3"#);
    for (at, remaining) in [(0, 2), (2_000, 1), (5_000, 0)] {
        clock.set(T0 + at);
        admitted(&e, remaining);
    }
    clock.set(T0 + 7_000);
    refused(&e, 3_000);
    assert_eq!(
        assert_retry_after_is_exact(&e, &clock, &json!({}), &alice()),
        3_000
    );
    // Now at T0+10s: the calls at 2s, 5s and 10s are in the window; 2s leaves at 12s.
    refused(&e, 2_000);
    assert_eq!(
        assert_retry_after_is_exact(&e, &clock, &json!({}), &alice()),
        2_000
    );
    refused(&e, 3_000);
}

#[test]
fn no_interval_of_one_window_admits_more_than_max() {
    let w = 1_000;
    let (e, clock) = one_limit(r#""window":"second","max":5"#);
    let mut admitted_at = Vec::new();
    for step in 0..4_000u64 {
        // A jittery clock: it sometimes steps back by a millisecond or two.
        clock.set(T0 + step * 7 % 3 + step);
        if let Some(r) = t(&e, json!({}), &alice()).reservation {
            // The time the store charged at (never before a time it has already seen).
            admitted_at.push(r.charges[0].at_ms);
        }
    }
    for (i, &at) in admitted_at.iter().enumerate() {
        let in_window = admitted_at[..=i].iter().filter(|&&a| a + w > at).count();
        assert!(
            in_window <= 5,
            "{in_window} admitted in the window ending at {at}"
        );
    }
    // And the budget is used: 5 per second over ~4 s.
    assert!(admitted_at.len() >= 19, "{}", admitted_at.len());
}

// ---------------------------------------------------------------- calendar windows

/// The start of the next calendar window of `w` ms after `now`.
fn next_boundary(now: u64, w: u64) -> u64 {
    (now / w + 1) * w
}

#[test]
fn calendar_windows_are_aligned_to_the_epoch() {
    for (window, w, offset) in [
        (r#""minute""#, MINUTE, 30 * SECOND),
        (r#""hour""#, HOUR, 59 * MINUTE),
        (r#""day""#, DAY, 0),
        (r#""7s""#, 7 * SECOND, 0),
        ("90", 90 * SECOND, 0),
        (r#""15m""#, 15 * MINUTE, 1),
    ] {
        let (e, clock) = one_limit(&format!(r#""window":{window},"max":2,"reset":"calendar""#));
        let start = T0 + offset;
        clock.set(start);
        admitted(&e, 1);
        admitted(&e, 0);
        let boundary = next_boundary(start, w);
        assert_eq!(boundary % w, 0);
        refused(&e, boundary - start);
        clock.set(boundary - 1);
        refused(&e, 1);
        clock.set(boundary);
        admitted(&e, 1);
    }
}

#[test]
fn calendar_minute_resets_at_zero_seconds_and_day_at_midnight_utc() {
    // T0 is 08:00:00 UTC, so the minute starts at T0 and the day at T0 - 8 h.
    assert_eq!((T0 % MINUTE, T0 % DAY), (0, 8 * HOUR));
    let (e, clock) = one_limit(r#""window":"day","max":1,"reset":"calendar""#);
    clock.set(T0 + 15 * HOUR + 59 * MINUTE);
    admitted(&e, 0);
    refused(&e, MINUTE);
    clock.set(T0 + 16 * HOUR);
    admitted(&e, 0);
    let (e, clock) = one_limit(r#""window":"minute","max":1,"reset":"calendar""#);
    clock.set(T0 + 59_999);
    admitted(&e, 0);
    refused(&e, 1);
    clock.set(T0 + 60_000);
    admitted(&e, 0);
}

#[test]
fn calendar_retry_after_is_exact() {
    let (e, clock) = one_limit(r#""window":"7s","max":1,"reset":"calendar""#);
    clock.set(T0 + 1_234);
    admitted(&e, 0);
    let retry = assert_retry_after_is_exact(&e, &clock, &json!({}), &alice());
    assert_eq!(retry, next_boundary(T0 + 1_234, 7_000) - (T0 + 1_234));
}

// ---------------------------------------------------------------- scopes

/// Calls `t` with `args` as `grant` and returns whether it was admitted.
fn ok(engine: &TestEngine, args: Value, grant: &Grant) -> bool {
    let d = engine.evaluate("t", &args, grant);
    assert!(
        matches!(d.verdict, Verdict::Allow | Verdict::Limit),
        "{d:#?}"
    );
    d.is_allowed()
}

#[test]
fn grant_scope_is_one_budget_per_grant_id() {
    let (e, _) = one_limit(r#""window":"minute","max":1"#);
    let (a, b) = (alice(), Grant::new("bob"));
    assert!(ok(&e, json!({}), &a));
    assert!(!ok(&e, json!({"other": "args"}), &a));
    assert!(!ok(&e, json!({}), &a.clone().with_session("new")));
    assert!(ok(&e, json!({}), &b));
}

#[test]
fn session_scope_is_one_budget_per_grant_and_session() {
    let (e, _) = one_limit(r#""window":"minute","max":1,"scope":"session""#);
    let a1 = alice().with_session("s1");
    assert!(ok(&e, json!({}), &a1));
    assert!(!ok(&e, json!({}), &a1));
    assert!(ok(&e, json!({}), &alice().with_session("s2")));
    assert!(ok(&e, json!({}), &Grant::new("bob").with_session("s1")));
    // Calls without a session share the grant's session-less budget.
    assert!(ok(&e, json!({}), &alice()));
    assert!(!ok(&e, json!({}), &alice()));
    assert!(ok(&e, json!({}), &Grant::new("bob")));
    // An empty session is a session, not the absence of one.
    assert!(ok(&e, json!({}), &alice().with_session("")));
}

#[test]
fn global_scope_is_one_budget_for_everyone() {
    let (e, _) = one_limit(r#""window":"minute","max":2,"scope":"global""#);
    assert!(ok(&e, json!({}), &alice()));
    assert!(ok(&e, json!({}), &Grant::new("bob").with_session("x")));
    assert!(!ok(&e, json!({}), &Grant::new("carol")));
}

#[test]
fn tool_scope_is_one_budget_per_called_name_under_a_pattern() {
    let (e, _) = engine(
        r#"{"version":"1","default":"deny","tools":{
            "fs_*":{"limits":[{"counter":"per_tool","window":"minute","max":1,"scope":"tool"}]},
            "db_*":{"limits":[{"counter":"shared","window":"minute","max":1}]}}}"#,
    );
    let a = alice();
    for (tool, allowed) in [
        ("fs_read", true),
        ("fs_read", false),
        ("fs_write", true),
        ("db_read", true),
        ("db_write", false),
    ] {
        let d = e.evaluate(tool, &json!({}), &a);
        assert_eq!(d.is_allowed(), allowed, "{tool}: {d:#?}");
    }
    // The tool scope is shared by every grant.
    assert!(
        !e.evaluate("fs_read", &json!({}), &Grant::new("bob"))
            .is_allowed()
    );
}

#[test]
fn args_scope_is_one_budget_per_argument_value() {
    let (e, _) = one_limit(r#""window":"minute","max":1,"scope":"args.repo.id""#);
    let (a, b) = (alice(), Grant::new("bob"));
    assert!(ok(&e, json!({"repo": {"id": "a"}}), &a));
    assert!(!ok(&e, json!({"repo": {"id": "a"}}), &b));
    assert!(ok(&e, json!({"repo": {"id": "b"}}), &a));
    // The string "1" and the number 1 are different values ...
    assert!(ok(&e, json!({"repo": {"id": "1"}}), &a));
    assert!(ok(&e, json!({"repo": {"id": 1}}), &a));
    // ... but numbers are compared by value (section 4): 1.0 is the value 1.
    assert!(!ok(&e, json!({"repo": {"id": 1.0}}), &a));
    assert!(ok(&e, json!({"repo": {"id": [1, {"k": true}]}}), &a));
    assert!(!ok(&e, json!({"repo": {"id": [1.0, {"k": true}]}}), &a));
    assert!(ok(&e, json!({"repo": {"id": null}}), &a));
    assert!(!ok(&e, json!({"repo": {"id": null}}), &a));
    // A missing value denies.
    let d = t(&e, json!({"repo": {}}), &a);
    assert_deny(
        &d,
        "/tools/t/limits/0",
        "counter `c` is kept per value of `args.repo.id`, which is missing from the call",
    );
}

// ---------------------------------------------------------------- costs

#[test]
fn constant_cost() {
    let (e, _) = one_limit(r#""window":"minute","max":10,"cost":3"#);
    for remaining in [7, 4, 1] {
        admitted(&e, remaining);
    }
    refused(&e, MINUTE);
    let (e, _) = one_limit(r#""window":"minute","max":1,"cost":5"#);
    assert_deny(
        &call(&e, "t", json!({})),
        "/tools/t/limits/0",
        "this call costs 5 but counter `c` admits at most 1 per window; it can never fit",
    );
}

#[test]
fn cost_read_from_a_path() {
    let (e, clock) = one_limit(r#""window":"minute","max":10,"cost":"args.amount""#);
    let spend = |amount: Value| t(&e, json!({ "amount": amount }), &alice());
    let d = spend(json!(4));
    assert_eq!((d.verdict, d.remaining), (Verdict::Allow, Some(6)));
    assert_eq!(spend(json!(2.0)).remaining, Some(4));
    // Cost 0 is checked, not charged.
    assert_eq!(spend(json!(0)).remaining, Some(4));
    // A cost that does not fit now limits; one that never fits denies.
    let d = spend(json!(5));
    assert_limit(&d, "/tools/t/limits/0", "c", MINUTE);
    assert_deny(
        &spend(json!(11)),
        "/tools/t/limits/0",
        "this call costs 11 but counter `c` admits at most 10 per window; it can never fit",
    );
    for (amount, what) in [
        (json!(-1), "is negative (-1)"),
        (json!(-0.5), "is negative (-0.5)"),
        (json!(1.5), "is not a non-negative integer (1.5)"),
        (json!("5"), "is a string, not a number"),
        (json!(null), "is null, not a number"),
        (json!([1]), "is an array, not a number"),
    ] {
        let message = format!("the cost of counter `c` is read from `args.amount`, which {what}");
        assert_deny(&spend(amount.clone()), "/tools/t/limits/0", &message);
    }
    assert_deny(
        &t(&e, json!({}), &alice()),
        "/tools/t/limits/0",
        "which is missing",
    );
    // None of the denials charged anything.
    assert_eq!(spend(json!(4)).remaining, Some(0));
    clock.advance(MINUTE);
    assert_eq!(spend(json!(10)).remaining, Some(0));
}

#[test]
fn a_zero_cost_call_is_admitted_even_when_the_budget_is_spent() {
    let (e, _) = one_limit(r#""window":"minute","max":1,"cost":"args.n""#);
    assert_eq!(t(&e, json!({"n": 1}), &alice()).remaining, Some(0));
    let d = t(&e, json!({"n": 0}), &alice());
    assert_eq!(
        (d.verdict, d.remaining, d.reservation),
        (Verdict::Allow, Some(0), None)
    );
    // A zero-cost call on a fresh budget reports it untouched.
    assert_eq!(
        t(&e, json!({"n": 0}), &Grant::new("bob")).remaining,
        Some(1)
    );
}

// ---------------------------------------------------------------- all-or-nothing

#[test]
fn limits_are_all_or_nothing() {
    let (e, _) = limits(
        r#"[{"counter":"global","window":"minute","max":2,"scope":"global"},
            {"counter":"mine","window":"minute","max":1}]"#,
    );
    let (a, b, c) = (alice(), Grant::new("bob"), Grant::new("carol"));
    assert_eq!(t(&e, json!({}), &a).remaining, Some(0));
    // `mine` refuses alice: `global` is not charged ...
    assert_limit(&t(&e, json!({}), &a), "/tools/t/limits/1", "mine", MINUTE);
    assert_limit(&t(&e, json!({}), &a), "/tools/t/limits/1", "mine", MINUTE);
    // ... so bob still fits under `global` (2 of 2), and carol does not.
    assert_eq!(t(&e, json!({}), &b).remaining, Some(0));
    assert_limit(&t(&e, json!({}), &c), "/tools/t/limits/0", "global", MINUTE);
    // Carol's refusal did not charge her own `mine` budget either.
    let (e2, _) = limits(
        r#"[{"counter":"mine","window":"minute","max":1},{"counter":"global","window":"minute","max":1,"scope":"global"}]"#,
    );
    assert!(t(&e2, json!({}), &a).is_allowed());
    assert!(!t(&e2, json!({}), &c).is_allowed());
    assert!(!t(&e2, json!({}), &c).is_allowed());
}

#[test]
fn the_answer_is_the_refusing_limit_that_frees_last() {
    let short = r#"{"counter":"short","window":"10s","max":1}"#;
    let long = r#"{"counter":"long","window":"minute","max":1}"#;
    for (list, long_index) in [
        (format!("[{short},{long}]"), 1),
        (format!("[{long},{short}]"), 0),
    ] {
        let (e, clock) = limits(&list);
        admitted(&e, 0);
        clock.advance(SECOND);
        let d = t(&e, json!({}), &alice());
        assert_limit(
            &d,
            &format!("/tools/t/limits/{long_index}"),
            "long",
            MINUTE - SECOND,
        );
        // After `short` frees, `long` still refuses with the same exact retry.
        clock.set(T0 + 10 * SECOND);
        assert_limit(
            &t(&e, json!({}), &alice()),
            &format!("/tools/t/limits/{long_index}"),
            "long",
            50 * SECOND,
        );
    }
}

#[test]
fn remaining_is_the_smallest_max_minus_used() {
    let (e, _) = limits(
        r#"[{"counter":"big","window":"minute","max":10,"scope":"global"},
            {"counter":"small","window":"hour","max":3},
            {"counter":"costly","window":"day","max":200,"cost":40}]"#,
    );
    for remaining in [2, 1, 0] {
        admitted(&e, remaining);
    }
    assert_limit(
        &t(&e, json!({}), &alice()),
        "/tools/t/limits/1",
        "small",
        HOUR,
    );
    let d = t(&e, json!({}), &Grant::new("bob"));
    // big: 10-4, small: 3-1, costly: 200-40.
    assert_eq!(d.remaining, Some(2));
}

// ---------------------------------------------------------------- shared counters

#[test]
fn counters_are_shared_by_name_across_tools_and_all_tools() {
    let (e, _) = engine(
        r#"{"version":"1","default":"allow",
            "all_tools":{"limits":[{"counter":"calls","window":"minute","max":5,"scope":"global"}]},
            "tools":{"a":{"limits":[{"counter":"shared","window":"minute","max":3}]},
                     "b":{"limits":[{"counter":"shared","window":"minute","max":3,"on_limit":"b is out"}]},
                     "c":{"limits":[{"counter":"calls","window":"minute","max":5,"scope":"global"}]}}}"#,
    );
    let a = alice();
    let remaining = |tool: &str| e.evaluate(tool, &json!({}), &a).remaining;
    assert_eq!(remaining("a"), Some(2)); // shared 1, calls 1
    assert_eq!(remaining("b"), Some(1)); // shared 2, calls 2
    assert_eq!(remaining("x"), Some(2)); // calls 3, through all_tools under default allow
    let d = e.evaluate("b", &json!({}), &a);
    assert_eq!(d.remaining, Some(0)); // shared 3, calls 4
    let d = e.evaluate("a", &json!({}), &a);
    assert_limit(&d, "/tools/a/limits/0", "shared", MINUTE);
    assert_limit(
        &e.evaluate("b", &json!({}), &a),
        "/tools/b/limits/0",
        "shared",
        MINUTE,
    );
    assert_eq!(
        e.evaluate("b", &json!({}), &a).message.as_deref(),
        Some("b is out")
    );
    // `c`'s own limit and all_tools' both name `calls`: the call draws on it once per limit,
    // so it needs 2 and only 1 is left.
    assert_limit(
        &e.evaluate("c", &json!({}), &a),
        "/tools/c/limits/0",
        "calls",
        MINUTE,
    );
    assert_eq!(remaining("x"), Some(0));
}

// ---------------------------------------------------------------- release

/// `<T as AmbiguousIfClone<_>>::check()` compiles only if `T` does not implement `Clone`.
trait AmbiguousIfClone<A> {
    fn check() {}
}
impl<T> AmbiguousIfClone<()> for T {}
impl<T: Clone> AmbiguousIfClone<u8> for T {}

#[test]
fn a_reservation_cannot_be_copied_so_it_is_released_at_most_once() {
    <Reservation as AmbiguousIfClone<_>>::check();
    <Decision as AmbiguousIfClone<_>>::check();
}

fn reservation(d: Decision) -> Reservation {
    d.reservation
        .unwrap_or_else(|| panic!("an admitted call with charges has a reservation"))
}

#[test]
fn release_refunds_every_charge_of_the_call() {
    let (e, _) = limits(
        r#"[{"counter":"c","window":"minute","max":1},
            {"counter":"g","window":"hour","max":5,"scope":"global","reset":"calendar","cost":2}]"#,
    );
    let first = reservation(admitted(&e, 0));
    assert_eq!(first.charges.len(), 2);
    refused(&e, MINUTE);
    assert_eq!(e.release(first), Ok(()));
    let second = admitted(&e, 0);
    assert_eq!(t(&e, json!({}), &Grant::new("bob")).remaining, Some(0)); // g: 4 of 5 used
    assert_eq!(e.release(reservation(second)), Ok(()));
    assert_eq!(t(&e, json!({}), &Grant::new("carol")).remaining, Some(0)); // g: 4 of 5 again
}

#[test]
fn release_refunds_only_the_released_call() {
    let (e, clock) = one_limit(r#""window":"10s","max":2"#);
    let first = reservation(admitted(&e, 1));
    clock.advance(4 * SECOND);
    let _second = admitted(&e, 0);
    e.release(first).unwrap();
    admitted(&e, 0);
    // The second call (at +4 s) still counts until +14 s; the third (+4 s) too.
    clock.set(T0 + 14 * SECOND - 1);
    refused(&e, 1);
    clock.set(T0 + 14 * SECOND);
    admitted(&e, 1);
}

#[test]
fn releasing_after_the_window_passed_changes_nothing() {
    let (e, clock) = one_limit(r#""window":"minute","max":1,"reset":"calendar""#);
    let old = reservation(admitted(&e, 0));
    clock.advance(MINUTE);
    admitted(&e, 0);
    e.release(old).unwrap();
    refused(&e, MINUTE);
    // Sliding: an event that left the window is not refunded against new ones.
    let (e, clock) = one_limit(r#""window":"minute","max":1"#);
    let old = reservation(admitted(&e, 0));
    clock.advance(MINUTE);
    admitted(&e, 0);
    e.release(old).unwrap();
    refused(&e, MINUTE);
}

// ---------------------------------------------------------------- reload

fn reload_policy(window: &str, max: u64, reset: &str) -> String {
    one_tool(
        "deny",
        "t",
        &format!(
            r#"{{"limits":[{{"counter":"c","window":{window},"max":{max},"reset":"{reset}"}}]}}"#
        ),
    )
}

#[test]
fn reload_keeps_counters_when_window_and_reset_are_unchanged() {
    let (e, _) = engine(&reload_policy(r#""minute""#, 2, "sliding"));
    admitted(&e, 1);
    // Same window written differently, a larger max: the use is kept.
    e.reload(policy(&reload_policy("60", 3, "sliding")));
    admitted(&e, 1);
    admitted(&e, 0);
    e.reload(policy(&reload_policy(r#""1m""#, 2, "sliding")));
    refused(&e, MINUTE);
}

#[test]
fn reload_resets_counters_when_window_or_reset_change() {
    let (e, _) = engine(&reload_policy(r#""minute""#, 1, "sliding"));
    admitted(&e, 0);
    e.reload(policy(&reload_policy(r#""hour""#, 1, "sliding")));
    admitted(&e, 0);
    e.reload(policy(&reload_policy(r#""hour""#, 1, "calendar")));
    admitted(&e, 0);
    // Back to the first definition: its counter is still there.
    e.reload(policy(&reload_policy(r#""minute""#, 1, "sliding")));
    refused(&e, MINUTE);
}

// ---------------------------------------------------------------- clocks

#[test]
fn time_going_backwards_never_over_admits() {
    let (e, clock) = one_limit(r#""window":"10s","max":2"#);
    clock.set(T0 + 5_000);
    admitted(&e, 1);
    admitted(&e, 0);
    for back in [T0, T0 - 60_000, 0, T0 + 4_999] {
        clock.set(back);
        refused(&e, 10_000);
    }
    clock.set(T0 + 15_000 - 1);
    refused(&e, 1);
    clock.set(T0 + 15_000);
    admitted(&e, 1);
    // Calendar windows: going back into the previous window does not reopen it.
    let (e, clock) = one_limit(r#""window":"minute","max":1,"reset":"calendar""#);
    clock.set(T0 + 59_000);
    admitted(&e, 0);
    clock.set(T0 + 1_000);
    refused(&e, 1_000);
    clock.set(T0 - 1);
    refused(&e, 1_000);
}

// ---------------------------------------------------------------- key cap

#[test]
fn a_full_store_refuses_new_keys_and_keeps_existing_limits() {
    let (e, clock) = engine_with_store(
        &one_tool("deny", "t", r#"{"rate_limit":"1/minute"}"#),
        MemoryStore::with_max_keys(10),
    );
    let limited = alice();
    assert!(ok(&e, json!({}), &limited));
    assert_limit(
        &t(&e, json!({}), &limited),
        "/tools/t/rate_limit",
        "t.rate_limit",
        MINUTE,
    );
    for i in 0..9 {
        assert!(ok(&e, json!({}), &Grant::new(format!("g{i}"))), "g{i}");
    }
    assert_eq!(e.store().live_keys(), 10);
    for i in 9..1_000 {
        let d = t(&e, json!({}), &Grant::new(format!("g{i}")));
        assert_deny(
            &d,
            "/tools/t/rate_limit",
            "counter store is full (10 live keys)",
        );
    }
    assert_limit(
        &t(&e, json!({}), &limited),
        "/tools/t/rate_limit",
        "t.rate_limit",
        MINUTE,
    );
    assert_eq!(e.store().live_keys(), 10);
    // Once the windows pass, the old keys are reclaimed and new grants fit again.
    clock.advance(MINUTE);
    assert!(ok(&e, json!({}), &Grant::new("late")));
    assert!(ok(&e, json!({}), &limited));
    assert!(!ok(&e, json!({}), &limited));
}
