//! Differential test: random plans and call sequences applied to `MemoryStore` and to the
//! Redis store (plan time) give identical outcomes: verdicts, the refusing charge,
//! `retry_after`, `remaining`, the times and costs of reservations, approvals (pending,
//! recorded, one-shot, expired) and releases.
//!
//! A second property runs whole policies through `Engine` (memory) and `AsyncEngine` (Redis)
//! and compares the decisions.

use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_policy::document::Reset;
use mcp_policy::store::{ApprovalCheck, Charge, CounterKey, ScopeKey};
use mcp_policy::{
    AsyncCounterStore, AsyncEngine, CounterStore, Engine, Grant, HostError, ManualClock,
    MemoryStore, Outcome, Plan, Policy, Reservation,
};
use mcp_policy_redis::{Options, RedisStore, TimeSource};
use mcp_policy_test_support::redis::{RedisServer, runtime};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use redis::aio::MultiplexedConnection;
use serde_json::json;

const START: u64 = 1_763_712_000_000;

/// (counter, window ms, reset).
const COUNTERS: &[(&str, u64, Reset)] = &[
    ("a", 1_000, Reset::Sliding),
    ("b", 2_500, Reset::Sliding),
    ("c", 1_000, Reset::Calendar),
    ("d", 3_000, Reset::Calendar),
];
const GRANTS: &[&str] = &["x", "y"];
const IDS: &[&str] = &["ap-1", "ap-2"];
const BINDINGS: &[&str] = &["b1", "b2"];
const TTLS: &[u64] = &[0, 2_000, 5_000];

#[derive(Debug, Clone)]
struct GenCharge {
    counter: usize,
    grant: usize,
    max: u64,
    cost: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Apply {
        charges: Vec<GenCharge>,
        approval: Option<(usize, usize, usize)>,
    },
    Release(usize),
    Approve(usize),
    Advance(u64),
}

fn charge() -> impl Strategy<Value = GenCharge> {
    (0..COUNTERS.len(), 0..GRANTS.len(), 0u64..5, 0u64..4).prop_map(
        |(counter, grant, max, cost)| GenCharge {
            counter,
            grant,
            max,
            cost,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            prop::collection::vec(charge(), 0..4),
            prop::option::weighted(0.3, (0..IDS.len(), 0..BINDINGS.len(), 0..TTLS.len())),
        )
            .prop_map(|(charges, approval)| Op::Apply { charges, approval }),
        1 => (0usize..8).prop_map(Op::Release),
        1 => (0..IDS.len()).prop_map(Op::Approve),
        3 => prop_oneof![Just(0u64), 0u64..200, 0u64..1_500, Just(1_000u64)].prop_map(Op::Advance),
    ]
}

fn plan(now: u64, charges: &[GenCharge], approval: Option<(usize, usize, usize)>) -> Plan<'static> {
    let mut plan = Plan::new(now);
    for c in charges {
        let (counter, window_ms, reset) = COUNTERS[c.counter];
        plan.charges.push(Charge {
            key: CounterKey {
                counter,
                window_ms,
                reset,
                scope: ScopeKey::Grant(GRANTS[c.grant]),
            },
            max: c.max,
            cost: c.cost,
            limit: 0,
        });
    }
    plan.approval = approval.map(|(id, binding, ttl)| {
        Box::new(ApprovalCheck {
            id: IDS[id].to_owned(),
            binding: BINDINGS[binding].to_owned(),
            ttl_ms: TTLS[ttl],
        })
    });
    plan
}

/// An outcome without the stores' own handles: reservations as (time, cost) per charge.
#[derive(Debug, PartialEq)]
enum Seen {
    Admitted(Option<u64>, Vec<(u64, u64)>),
    Limited(usize, u64),
    ApprovalRequired,
}

fn seen(outcome: &Outcome) -> Seen {
    match outcome {
        Outcome::Admitted {
            remaining,
            reservation,
        } => Seen::Admitted(
            *remaining,
            reservation
                .iter()
                .flat_map(|r| r.charges.iter().map(|c| (c.at_ms, c.cost)))
                .collect(),
        ),
        Outcome::Limited {
            charge,
            retry_after_ms,
        } => Seen::Limited(*charge, *retry_after_ms),
        Outcome::ApprovalRequired => Seen::ApprovalRequired,
    }
}

fn approval_result(r: Result<(), HostError>) -> Result<(), String> {
    match r {
        Ok(()) => Ok(()),
        Err(HostError::UnknownApproval(id)) => Err(id),
        Err(other) => panic!("store failure: {other}"),
    }
}

static CASE: AtomicUsize = AtomicUsize::new(0);

/// How often each kind of answer came up, so that a generator that stopped exercising a path
/// fails the test: [admitted with a reservation, limited, approval required, released,
/// approvals recorded, approvals refused].
static SEEN: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

fn count(i: usize) {
    SEEN[i].fetch_add(1, Ordering::Relaxed);
}

fn store(conn: &MultiplexedConnection) -> RedisStore<MultiplexedConnection> {
    let prefix = format!("diff-{}", CASE.fetch_add(1, Ordering::Relaxed));
    RedisStore::new(
        conn.clone(),
        Options::new()
            .prefix(prefix)
            .time(TimeSource::Plan)
            .timeout(std::time::Duration::from_secs(5)),
    )
    .expect("a valid prefix")
}

#[test]
fn plans_match_the_memory_store() {
    let server = RedisServer::start();
    let rt = runtime();
    let conn = rt.block_on(async {
        redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0u64..5_000, prop::collection::vec(op(), 1..40));
    let result = runner.run(&strategy, |(offset, ops)| {
        let memory = MemoryStore::new();
        let redis = store(&conn);
        let mut now = START + offset;
        let mut held: Vec<(Reservation, Reservation)> = Vec::new();
        for op in &ops {
            match op {
                Op::Advance(ms) => now += ms,
                Op::Apply { charges, approval } => {
                    let plan = plan(now, charges, *approval);
                    let expected = CounterStore::apply(&memory, &plan).expect("memory applies");
                    let got = rt
                        .block_on(AsyncCounterStore::apply(&redis, &plan))
                        .expect("redis applies");
                    prop_assert_eq!(seen(&got), seen(&expected), "plan {:?}", plan);
                    match &expected {
                        Outcome::Admitted {
                            reservation: Some(_),
                            ..
                        } => count(0),
                        Outcome::Limited { .. } => count(1),
                        Outcome::ApprovalRequired => count(2),
                        Outcome::Admitted { .. } => {}
                    }
                    if let (
                        Outcome::Admitted {
                            reservation: Some(m),
                            ..
                        },
                        Outcome::Admitted {
                            reservation: Some(r),
                            ..
                        },
                    ) = (expected, got)
                    {
                        held.push((m, r));
                    }
                }
                Op::Release(i) => {
                    if held.is_empty() {
                        continue;
                    }
                    let (m, r) = held.remove(i % held.len());
                    CounterStore::release(&memory, m).expect("memory releases");
                    rt.block_on(AsyncCounterStore::release(&redis, r))
                        .expect("redis releases");
                    count(3);
                }
                Op::Approve(id) => {
                    let expected =
                        approval_result(CounterStore::record_approval(&memory, IDS[*id], now));
                    let got = approval_result(
                        rt.block_on(AsyncCounterStore::record_approval(&redis, IDS[*id], now)),
                    );
                    count(if expected.is_ok() { 4 } else { 5 });
                    prop_assert_eq!(got, expected);
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen: Vec<usize> = SEEN.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    eprintln!("admitted, limited, approval required, released, recorded, refused: {seen:?}");
    assert!(seen.iter().all(|n| *n >= 50), "{seen:?}");
}

const POLICY: &str = r#"{
  "version": "1", "default": "deny",
  "all_tools": { "limits": [
    { "counter": "everyone", "window": "3s", "max": 6, "scope": "global", "reset": "calendar" } ] },
  "tools": {
    "read": { "limits": [
      { "counter": "reads", "window": "1s", "max": 2, "scope": "grant" },
      { "counter": "by_target", "window": "2s", "max": 3, "scope": "args.target", "cost": "args.n" } ] },
    "write": { "limits": [
      { "counter": "writes", "window": "2s", "max": 3, "scope": "session", "reset": "calendar" },
      { "counter": "reads", "window": "1s", "max": 2, "scope": "grant" } ] },
    "transfer": { "action": "require_approval", "limits": [
      { "counter": "transfers", "window": "2s", "max": 1, "scope": "grant" } ] }
  }
}"#;

#[derive(Debug, Clone)]
enum Call {
    Evaluate {
        tool: usize,
        grant: usize,
        target: usize,
        n: u64,
    },
    Approve,
    Release,
    Advance(u64),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        6 => (0usize..3, 0usize..3, 0usize..2, 0u64..3).prop_map(|(tool, grant, target, n)| {
            Call::Evaluate { tool, grant, target, n }
        }),
        1 => Just(Call::Approve),
        1 => Just(Call::Release),
        3 => prop_oneof![0u64..300, 0u64..2_000].prop_map(Call::Advance),
    ]
}

#[test]
fn decisions_match_the_sync_engine() {
    let server = RedisServer::start();
    let rt = runtime();
    let conn = rt.block_on(async {
        redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    let mut runner = TestRunner::new(Config {
        cases: 150,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0u64..3_000, prop::collection::vec(call(), 1..40));
    let tools = ["read", "write", "transfer"];
    let grants = [
        Grant::new("alice"),
        Grant::new("bob"),
        Grant::new("alice").with_session("s-1"),
    ];
    let result = runner.run(&strategy, |(offset, calls)| {
        let clock = ManualClock::new(START + offset);
        let load = || Policy::from_json_str(POLICY).expect("the policy loads");
        let memory = Engine::with_parts(load(), clock.clone(), MemoryStore::new());
        let redis = AsyncEngine::with_parts(load(), clock.clone(), store(&conn));
        let mut last_approval: Option<String> = None;
        let mut held: Vec<(Reservation, Reservation)> = Vec::new();
        for call in &calls {
            match call {
                Call::Advance(ms) => clock.advance(*ms),
                Call::Evaluate {
                    tool,
                    grant,
                    target,
                    n,
                } => {
                    let target = ["prod", "dev"][*target];
                    let args = json!({"target": target, "n": n});
                    let mut expected = memory.evaluate(tools[*tool], &args, &grants[*grant]);
                    let mut got = rt.block_on(redis.evaluate(tools[*tool], &args, &grants[*grant]));
                    let (m, r) = (expected.reservation.take(), got.reservation.take());
                    prop_assert_eq!(&got, &expected);
                    if let (Some(m), Some(r)) = (m, r) {
                        held.push((m, r));
                    }
                    if expected.approval_id.is_some() {
                        last_approval = expected.approval_id.clone();
                    }
                }
                Call::Approve => {
                    if let Some(id) = &last_approval {
                        let expected = approval_result(memory.record_approval(id));
                        let got = approval_result(rt.block_on(redis.record_approval(id)));
                        prop_assert_eq!(got, expected);
                    }
                }
                Call::Release => {
                    if let Some((m, r)) = held.pop() {
                        memory.release(m).expect("memory releases");
                        rt.block_on(redis.release(r)).expect("redis releases");
                    }
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
