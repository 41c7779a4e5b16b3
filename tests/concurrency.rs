//! Limits under concurrent callers: exact budgets with the real engine and in-memory store,
//! while several threads move a shared manual clock.

mod spec_support;

use std::thread;

use mcp_policy::{Grant, Verdict};
use serde_json::json;
use spec_support::*;

const THREADS: u64 = 4;
const MAX: usize = 100;

fn global_limit(reset: &str) -> TestEngine {
    let entry = format!(
        r#"{{"limits":[{{"counter":"c","window":"minute","max":{MAX},"scope":"global","reset":"{reset}"}}]}}"#
    );
    engine(&one_tool("deny", "t", &entry)).0
}

/// Runs `calls` calls of `t` on each of [`THREADS`] threads; before some calls a thread moves
/// the shared clock forward by `step(thread, i)` ms. Returns the time every admitted call was
/// charged at (from its reservation), sorted.
fn hammer(engine: &TestEngine, calls: u64, step: impl Fn(u64, u64) -> u64 + Sync) -> Vec<u64> {
    let mut admitted: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let step = &step;
                s.spawn(move || {
                    let grant = Grant::new(format!("caller-{thread}"));
                    let args = json!({});
                    let mut mine = Vec::new();
                    for i in 0..calls {
                        engine.clock().advance(step(thread, i));
                        let d = engine.evaluate("t", &args, &grant);
                        match d.verdict {
                            Verdict::Allow => {
                                let reservation =
                                    d.reservation.unwrap_or_else(|| panic!("no reservation"));
                                assert_eq!(reservation.charges.len(), 1);
                                mine.push(reservation.charges[0].at_ms);
                            }
                            Verdict::Limit => {
                                let retry = d.retry_after_ms.unwrap_or_default();
                                assert!((1..=MINUTE).contains(&retry), "{d:#?}");
                            }
                            _ => panic!("unexpected {d:#?}"),
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| panic!("a caller panicked")))
            .collect()
    });
    admitted.sort_unstable();
    admitted
}

/// The largest number of admissions in any half-open interval `(t - w, t]`.
fn busiest_window(sorted: &[u64], w: u64) -> usize {
    let mut first = 0;
    let mut best = 0;
    for (last, &t) in sorted.iter().enumerate() {
        while sorted[first] + w <= t {
            first += 1;
        }
        best = best.max(last + 1 - first);
    }
    best
}

/// A deterministic pseudo-random step: mostly 0, sometimes up to 400 ms.
fn jitter(thread: u64, i: u64) -> u64 {
    let x = (thread * 1_000_003 + i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    if x.is_multiple_of(5) { x % 400 } else { 0 }
}

#[test]
fn a_still_clock_admits_exactly_max() {
    let e = global_limit("sliding");
    let admitted = hammer(&e, 500, |_, _| 0);
    assert_eq!(admitted.len(), MAX);
    assert!(admitted.iter().all(|&t| t == T0));
}

#[test]
fn a_moving_clock_never_admits_more_than_max_in_any_window() {
    let e = global_limit("sliding");
    let admitted = hammer(&e, 3_000, jitter);
    let elapsed = admitted.last().copied().unwrap_or(T0) - T0;
    assert!(
        elapsed > 3 * MINUTE,
        "the clock should cross several windows ({elapsed} ms)"
    );
    assert_eq!(busiest_window(&admitted, MINUTE), MAX);
    // The budget is not wasted either: each full window admits max.
    assert!(
        admitted.len() >= MAX * (elapsed / MINUTE) as usize,
        "{} admitted over {elapsed} ms",
        admitted.len()
    );
}

#[test]
fn calendar_windows_never_admit_more_than_max_each() {
    let e = global_limit("calendar");
    let admitted = hammer(&e, 3_000, jitter);
    let mut per_window = std::collections::BTreeMap::new();
    for t in &admitted {
        *per_window.entry(t / MINUTE).or_insert(0usize) += 1;
    }
    assert!(per_window.len() > 3, "{per_window:?}");
    assert!(per_window.values().all(|&n| n <= MAX), "{per_window:?}");
    assert_eq!(per_window.values().max(), Some(&MAX));
}

#[test]
fn distinct_keys_on_two_threads_are_all_admitted() {
    let (e, _) = engine(&one_tool(
        "deny",
        "t",
        r#"{"limits":[{"counter":"c","window":"minute","max":1}]}"#,
    ));
    let e = &e;
    thread::scope(|s| {
        for name in ["a", "b"] {
            s.spawn(move || {
                for i in 0..2_000 {
                    let d = e.evaluate("t", &json!({}), &Grant::new(format!("{name}-{i}")));
                    assert_eq!(
                        (d.verdict, d.remaining),
                        (Verdict::Allow, Some(0)),
                        "{name}-{i}"
                    );
                }
            });
        }
    });
    assert_eq!(e.store().live_keys(), 4_000);
    // And each of those budgets is now spent.
    assert_eq!(
        e.evaluate("t", &json!({}), &Grant::new("a-7")).verdict,
        Verdict::Limit
    );
}
