//! Property tests: the engine's counters against a deliberately naive reference model
//! (a list of admitted events, scanned in full for every question).

use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Reservation, Verdict};
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    /// Advance the clock by `dt` ms, then call with this grant and cost.
    Call { dt: u64, grant: u8, cost: u64 },
    /// Release the n-th still-held reservation (modulo their number).
    Release(usize),
}

#[derive(Debug, Clone, Copy)]
struct LimitSpec {
    max: u64,
    window: u64,
    calendar: bool,
    global: bool,
}

/// One admitted charge, as the model remembers it.
#[derive(Debug, Clone)]
struct Event {
    at: u64,
    cost: u64,
    grant: u8,
    released: bool,
}

struct Model {
    limits: Vec<LimitSpec>,
    events: Vec<Event>,
}

impl Model {
    /// Cost counted against `limit` at time `t` for `grant`.
    fn used(&self, limit: &LimitSpec, t: u64, grant: u8) -> u64 {
        self.events
            .iter()
            .filter(|e| !e.released && (limit.global || e.grant == grant))
            .filter(|e| {
                if limit.calendar {
                    e.at / limit.window == t / limit.window
                } else {
                    e.at <= t && t < e.at + limit.window
                }
            })
            .map(|e| e.cost)
            .sum()
    }

    fn admits(&self, t: u64, grant: u8, cost: u64) -> bool {
        self.limits
            .iter()
            .all(|l| self.used(l, t, grant) + cost <= l.max)
    }

    /// The earliest delay after which the call is admitted, found by trying every millisecond.
    fn brute_force_retry(&self, t: u64, grant: u8, cost: u64) -> u64 {
        let longest = self.limits.iter().map(|l| l.window).max().unwrap_or(0);
        (1..=longest * 2 + 1)
            .find(|d| self.admits(t + d, grant, cost))
            .expect("every call that fits under max is admitted within two windows")
    }

    fn remaining(&self, t: u64, grant: u8) -> u64 {
        self.limits
            .iter()
            .map(|l| l.max - self.used(l, t, grant))
            .min()
            .unwrap_or(0)
    }
}

fn policy_for(limits: &[LimitSpec]) -> Policy {
    let limits: Vec<_> = limits
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "counter": format!("c{i}"),
                "window": format!("{}s", l.window / 1000),
                "max": l.max,
                "scope": if l.global { "global" } else { "grant" },
                "reset": if l.calendar { "calendar" } else { "sliding" },
                "cost": "args.cost"
            })
        })
        .collect();
    let doc = json!({"version": "1", "default": "deny", "tools": {"t": {"limits": limits}}});
    Policy::from_value(&doc).expect("generated policy loads")
}

fn limit_spec() -> impl Strategy<Value = LimitSpec> {
    (1u64..6, 1u64..4, any::<bool>(), any::<bool>()).prop_map(|(max, secs, calendar, global)| {
        LimitSpec {
            max,
            window: secs * 1000,
            calendar,
            global,
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![Just(0u64), 0u64..1500, 0u64..4000], 0u8..3, 0u64..4)
            .prop_map(|(dt, grant, cost)| Op::Call { dt, grant, cost }),
        1 => any::<usize>().prop_map(Op::Release),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Verdict, retry_after and remaining agree with the model on every call; retry_after is
    /// exact (checked against a brute-force search); refused calls change nothing; release
    /// restores the state; and no interval of any limit's window admits more than its max.
    #[test]
    fn engine_matches_reference_model(
        limits in prop::collection::vec(limit_spec(), 1..3),
        ops in prop::collection::vec(op(), 1..60),
        start in 0u64..10_000,
    ) {
        let clock = ManualClock::new(1_700_000_000_000 + start);
        let engine = Engine::with_parts(policy_for(&limits), clock.clone(), MemoryStore::new());
        let mut model = Model { limits: limits.clone(), events: Vec::new() };
        let mut held: Vec<(usize, Reservation)> = Vec::new();
        for op in ops {
            match op {
                Op::Call { dt, grant, cost } => {
                    clock.advance(dt);
                    let t = clock.now();
                    let g = Grant::new(format!("g{grant}"));
                    let d = engine.evaluate("t", &json!({"cost": cost}), &g);
                    let too_big = limits.iter().any(|l| cost > l.max);
                    if too_big {
                        prop_assert_eq!(d.verdict, Verdict::Deny);
                        continue;
                    }
                    if model.admits(t, grant, cost) {
                        prop_assert_eq!(d.verdict, Verdict::Allow, "model admits at {}", t);
                        model.events.push(Event { at: t, cost, grant, released: false });
                        prop_assert_eq!(d.remaining, Some(model.remaining(t, grant)));
                        prop_assert_eq!(d.reservation.is_some(), cost > 0);
                        if let Some(r) = d.reservation {
                            held.push((model.events.len() - 1, r));
                        }
                    } else {
                        prop_assert_eq!(d.verdict, Verdict::Limit);
                        let retry = d.retry_after_ms.expect("limit carries retry_after");
                        prop_assert_eq!(retry, model.brute_force_retry(t, grant, cost));
                    }
                }
                Op::Release(n) => {
                    if held.is_empty() {
                        continue;
                    }
                    let (event, reservation) = held.remove(n % held.len());
                    engine.release(reservation).expect("memory store releases");
                    if let Some(e) = model.events.get_mut(event) {
                        // A refund only matters while the charge is still counted; the model
                        // simply forgets it.
                        e.released = true;
                    }
                }
            }
        }
        // No interval of length W ever holds more than max (admissions never released).
        for l in &limits {
            let kept: Vec<&Event> = model.events.iter().filter(|e| !e.released).collect();
            for e in &kept {
                for grant in 0..3u8 {
                    let used = model.used(l, e.at, grant);
                    prop_assert!(used <= l.max, "window at {} holds {} > {}", e.at, used, l.max);
                }
            }
        }
    }
}

trait Now {
    fn now(&self) -> u64;
}

impl Now for ManualClock {
    fn now(&self) -> u64 {
        mcp_policy::Clock::now_ms(self)
    }
}
