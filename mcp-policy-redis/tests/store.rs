//! The store's contract on a real `redis-server`: key layout and hash tag, expiry with the
//! window, approvals (pending and recorded TTLs, one-shot), reservations (refund once; a
//! refund after the window passed changes nothing), refusals of what cannot be counted
//! exactly, and errors that tell an unknown approval from an unreachable store.

use std::time::Duration;

use mcp_policy::document::Reset;
use mcp_policy::store::{ApprovalCheck, Charge, CounterKey, ScopeKey};
use mcp_policy::{
    AsyncCounterStore, AsyncEngine, CounterStore, Grant, HostError, ManualClock, MemoryStore,
    Outcome, Plan, Policy, StoreError, SystemClock, Verdict,
};
use mcp_policy_redis::{MAX_EXACT, Options, RedisStore, TimeSource};
use serde_json::json;

use mcp_policy_test_support::redis::{RedisServer, runtime};

fn charge(
    counter: &'static str,
    window_ms: u64,
    reset: Reset,
    max: u64,
    cost: u64,
) -> Charge<'static> {
    Charge {
        key: CounterKey {
            counter,
            window_ms,
            reset,
            scope: ScopeKey::Grant("alice"),
        },
        max,
        cost,
        limit: 0,
    }
}

fn plan(now: u64, charges: Vec<Charge<'static>>) -> Plan<'static> {
    let mut plan = Plan::new(now);
    plan.charges.extend(charges);
    plan
}

fn remaining(outcome: &Outcome) -> Option<u64> {
    match outcome {
        Outcome::Admitted { remaining, .. } => *remaining,
        other => panic!("{other:?}"),
    }
}

#[test]
fn keys_carry_the_hash_tag_and_expire_with_their_window() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(&server.url(), Options::new().prefix("tenant-a"))
            .await
            .expect("connects");
        let policy = Policy::from_json_str(
            r#"{"version":"1","default":"deny","approvals":{"ttl":"2s"},"tools":{
              "scan": { "limits": [
                { "counter": "s", "window": "1s", "max": 3, "scope": "grant" },
                { "counter": "c", "window": "1s", "max": 3, "scope": "args.target", "reset": "calendar" } ] },
              "transfer": { "action": "require_approval" } }}"#,
        )
        .expect("loads");
        let engine = AsyncEngine::with_parts(policy, SystemClock, store);
        let args = json!({"target": "prod"});
        let d = engine.evaluate("scan", &args, &Grant::new("alice")).await;
        assert_eq!((d.verdict, d.remaining), (Verdict::Allow, Some(2)));
        let d = engine.evaluate("transfer", &args, &Grant::new("alice")).await;
        assert_eq!(d.verdict, Verdict::Approve);
        let id = d.approval_id.expect("an id");

        let mut keys: Vec<String> = server.cmd(&["KEYS", "*"]);
        keys.sort();
        assert_eq!(
            keys,
            [
                format!("{{tenant-a}}:a:{id}"),
                r#"{tenant-a}:c:["c",1000,"calendar","arg","prod"]"#.to_owned(),
                r#"{tenant-a}:c:["s",1000,"sliding","grant","alice"]"#.to_owned(),
            ]
        );
        // Approvals live their TTL, calendar counters to their window's end, sliding ones a
        // window (and at most an eighth more) after their newest event.
        for (key, most) in keys.iter().zip([2_000, 1_000, 1_125]) {
            let ttl: i64 = server.cmd(&["PTTL", key]);
            assert!(ttl > 0 && ttl <= most, "{key}: {ttl}");
        }
        // One event: "used, oldest, expiry, at, cost", big-endian doubles.
        let sliding: Vec<Vec<u8>> = server.cmd(&["LRANGE", &keys[2], "0", "-1"]);
        assert_eq!(sliding.len(), 1, "{sliding:?}");
        let fields: Vec<f64> = sliding[0]
            .chunks(8)
            .map(|b| f64::from_be_bytes(b.try_into().expect("8 bytes")))
            .collect();
        assert_eq!(fields.len(), 5, "{fields:?}");
        assert_eq!((fields[0], fields[4]), (1.0, 1.0));
        assert_eq!(fields[1], fields[3]);
        assert!(fields[2] > fields[3], "{fields:?}");
        // The calendar counter: "last, used".
        let calendar: Vec<u8> = server.cmd(&["GET", &keys[1]]);
        assert_eq!(calendar.len(), 16);
        assert_eq!(f64::from_be_bytes(calendar[8..].try_into().expect("8 bytes")), 1.0);

        // The approval, recorded, lives its TTL again from now; used once, it is gone.
        engine.record_approval(&id).await.expect("recorded");
        let state: Vec<String> = server.cmd(&["HMGET", &keys[0], "s", "t"]);
        assert_eq!(state, ["1", "2000"]);
        let d = engine.evaluate("transfer", &args, &Grant::new("alice")).await;
        assert_eq!(d.verdict, Verdict::Allow);
        let d = engine.evaluate("transfer", &args, &Grant::new("alice")).await;
        assert_eq!(d.verdict, Verdict::Approve);

        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let left: Vec<String> = server.cmd(&["KEYS", "*c:*"]);
        assert!(left.is_empty(), "{left:?}");
        tokio::time::sleep(Duration::from_millis(900)).await;
        let left: Vec<String> = server.cmd(&["KEYS", "*"]);
        assert!(left.is_empty(), "{left:?}");
    });
}

#[test]
fn releases_refund_once_and_not_after_the_window() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(
            &server.url(),
            Options::new().prefix("rel").time(TimeSource::Plan),
        )
        .await
        .expect("connects");
        let t = 1_763_712_000_000;
        let charges = || {
            vec![
                charge("s", 1_000, Reset::Sliding, 5, 2),
                charge("c", 1_000, Reset::Calendar, 5, 2),
            ]
        };
        let first = store.apply(&plan(t, charges())).await.expect("applies");
        assert_eq!(remaining(&first), Some(3));
        let Outcome::Admitted {
            reservation: Some(reservation),
            ..
        } = first
        else {
            panic!("a reservation")
        };
        assert_eq!(reservation.charges.len(), 2);
        store.release(reservation).await.expect("released");
        let again = store
            .apply(&plan(t + 10, charges()))
            .await
            .expect("applies");
        assert_eq!(
            remaining(&again),
            Some(3),
            "the refund restored both budgets"
        );

        // A release after its window passed changes nothing in the new window.
        let Outcome::Admitted {
            reservation: Some(old),
            ..
        } = again
        else {
            panic!("a reservation")
        };
        let later = store
            .apply(&plan(t + 1_500, charges()))
            .await
            .expect("applies");
        assert_eq!(remaining(&later), Some(3));
        store.release(old).await.expect("a no-op");
        let after = store
            .apply(&plan(
                t + 1_600,
                vec![
                    charge("s", 1_000, Reset::Sliding, 5, 0),
                    charge("c", 1_000, Reset::Calendar, 5, 0),
                ],
            ))
            .await
            .expect("applies");
        assert_eq!(remaining(&after), Some(3));

        // A reservation from another store is refused, not guessed at.
        let memory = MemoryStore::new();
        let Ok(Outcome::Admitted {
            reservation: Some(foreign),
            ..
        }) = CounterStore::apply(&memory, &plan(t, charges()))
        else {
            panic!("memory admits")
        };
        let e = store.release(foreign).await.expect_err("refused");
        assert!(e.to_string().contains("not made by a redis store"), "{e}");
    });
}

#[test]
fn approvals_unknown_versus_unreachable() {
    let mut server = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(
            &server.url(),
            Options::new()
                .prefix("ap")
                .timeout(Duration::from_millis(200)),
        )
        .await
        .expect("connects");
        match store.approve("ap-never-issued").await {
            Err(HostError::UnknownApproval(id)) => assert_eq!(id, "ap-never-issued"),
            other => panic!("{other:?}"),
        }
        let mut p = Plan::new(0);
        p.approval = Some(Box::new(ApprovalCheck {
            id: "ap-1".into(),
            binding: "b".into(),
            ttl_ms: 60_000,
        }));
        assert_eq!(store.apply(&p).await, Ok(Outcome::ApprovalRequired));
        store.approve("ap-1").await.expect("recorded");
        store
            .approve("ap-1")
            .await
            .expect("recording twice is fine");
        server.kill();
        match store.approve("ap-1").await {
            Err(HostError::Store(StoreError::Unavailable(message))) => {
                assert!(message.contains("redis"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn numbers_it_cannot_count_exactly_are_refused() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(
            &server.url(),
            Options::new().prefix("big").time(TimeSource::Plan),
        )
        .await
        .expect("connects");
        let ok = plan(
            1_000,
            vec![charge("n", 1_000, Reset::Sliding, MAX_EXACT, 1)],
        );
        assert_eq!(
            remaining(&store.apply(&ok).await.expect("applies")),
            Some(MAX_EXACT - 1)
        );
        let big = plan(
            1_000,
            vec![charge("n", 1_000, Reset::Sliding, MAX_EXACT + 1, 1)],
        );
        let e = store.apply(&big).await.expect_err("refused");
        assert!(e.to_string().contains("2^52"), "{e}");
    });
}

#[test]
fn an_empty_plan_needs_no_round_trip() {
    runtime().block_on(async {
        let store =
            RedisStore::connect_lazy("redis://127.0.0.1:1/", Options::new()).expect("a lazy store");
        let outcome = store.apply(&Plan::new(0)).await;
        assert_eq!(
            outcome,
            Ok(Outcome::Admitted {
                remaining: None,
                reservation: None
            })
        );
        // And a call needing the store is denied, naming it.
        let engine = AsyncEngine::with_parts(
            Policy::from_json_str(
                r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":"1/minute"}}}"#,
            )
            .expect("loads"),
            ManualClock::new(0),
            store,
        );
        let d = engine.evaluate("t", &json!({}), &Grant::new("a")).await;
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(d.message.as_deref().unwrap_or_default().contains("redis"));
    });
}

/// Windows holding hundreds of events (pruned and walked in chunks, refunds rewriting long
/// lists) answer exactly as the in-memory store does.
#[test]
fn large_windows_match_the_memory_store() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(
            &server.url(),
            Options::new()
                .prefix("large")
                .time(TimeSource::Plan)
                .timeout(Duration::from_secs(5)),
        )
        .await
        .expect("connects");
        let memory = MemoryStore::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut now = 1_763_712_000_000;
        let mut held = Vec::new();
        let (mut admitted, mut limited, mut released) = (0, 0, 0);
        for _ in 0..4_000 {
            // Mostly a millisecond or two; now and then a jump that empties part of a window.
            now += match next(150) {
                0 => next(1_400),
                1..=45 => 0,
                _ => next(3),
            };
            if next(8) == 0 && !held.is_empty() {
                let (m, r) = held.swap_remove(next(held.len() as u64) as usize);
                CounterStore::release(&memory, m).expect("memory releases");
                store.release(r).await.expect("redis releases");
                released += 1;
                continue;
            }
            // Now and then a cost that must wait for a hundred events to leave.
            let cost = if next(50) == 0 { 350 } else { next(3) };
            let p = plan(
                now,
                vec![
                    charge("big", 3_000, Reset::Sliding, 400, cost),
                    charge("mid", 700, Reset::Sliding, 100, 1),
                ],
            );
            let expected = CounterStore::apply(&memory, &p).expect("memory applies");
            let got = store.apply(&p).await.expect("redis applies");
            match (&expected, &got) {
                (
                    Outcome::Admitted {
                        remaining: a,
                        reservation: ra,
                    },
                    Outcome::Admitted {
                        remaining: b,
                        reservation: rb,
                    },
                ) => {
                    assert_eq!(a, b, "at {now}");
                    let times = |r: &Option<mcp_policy::Reservation>| {
                        r.as_ref().map(|r| {
                            r.charges
                                .iter()
                                .map(|c| (c.at_ms, c.cost))
                                .collect::<Vec<_>>()
                        })
                    };
                    assert_eq!(times(ra), times(rb));
                    admitted += 1;
                }
                _ => {
                    assert_eq!(got, expected, "at {now}");
                    limited += 1;
                }
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
        eprintln!("admitted {admitted}, limited {limited}, released {released}");
        assert!(admitted > 500 && limited > 500 && released > 100);
        let longest: i64 = server.cmd(&[
            "LLEN",
            r#"{large}:c:["big",3000,"sliding","grant","alice"]"#,
        ]);
        eprintln!("events in the large window at the end: {longest}");
    });
}

/// Counters written in the decimal text layout of earlier versions are read as before (by the
/// short form and the general one) and rewritten in the binary layout by their next charge.
#[test]
fn counters_in_the_earlier_text_layout_are_read() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(
            &server.url(),
            Options::new().prefix("compat").time(TimeSource::Plan),
        )
        .await
        .expect("connects");
        let t = 1_763_712_000_000u64;
        let sliding = r#"{compat}:c:["s",1000,"sliding","grant","alice"]"#;
        let calendar = r#"{compat}:c:["c",1000,"calendar","grant","alice"]"#;
        // Events at t (cost 1), t + 5 (cost 2) and t + 10 (cost 1): 4 used.
        let _: i64 = server.cmd(&[
            "RPUSH",
            sliding,
            &t.to_string(),
            &format!("{}:2", t + 5),
            &format!("4:{t}:{}:{}:1", t + 1_000, t + 10),
        ]);
        let _: String = server.cmd(&["SET", calendar, &format!("{}:3", t + 10)]);
        let s = |max, cost| charge("s", 1_000, Reset::Sliding, max, cost);
        let c = |max, cost| charge("c", 1_000, Reset::Calendar, max, cost);

        // The general form reads both.
        let both = store
            .apply(&plan(t + 20, vec![s(5, 1), c(5, 1)]))
            .await
            .expect("applies");
        assert_eq!(remaining(&both), Some(0));
        let tail: Vec<u8> = server.cmd(&["LINDEX", sliding, "-1"]);
        assert_eq!(tail.len(), 40, "rewritten in the binary layout");
        let value: Vec<u8> = server.cmd(&["GET", calendar]);
        assert_eq!(value.len(), 16, "rewritten in the binary layout");
        // The older events are still read: the one at t leaves the window at t + 1,000.
        let refused = store
            .apply(&plan(t + 30, vec![s(5, 1)]))
            .await
            .expect("applies");
        assert!(
            matches!(
                refused,
                Outcome::Limited {
                    charge: 0,
                    retry_after_ms: 970
                }
            ),
            "{refused:?}"
        );
        let later = store
            .apply(&plan(t + 1_000, vec![s(5, 1)]))
            .await
            .expect("applies");
        assert_eq!(remaining(&later), Some(0));

        // The short form reads a text counter too (here: a new key in each, then old ones).
        let _: i64 = server.cmd(&["DEL", sliding, calendar]);
        let _: i64 = server.cmd(&["RPUSH", sliding, &format!("2:{t}:{}:{t}:2", t + 1_000)]);
        let _: String = server.cmd(&["SET", calendar, &format!("{t}:2")]);
        let one = store
            .apply(&plan(t + 1, vec![s(5, 1)]))
            .await
            .expect("applies");
        assert_eq!(remaining(&one), Some(2));
        let one = store
            .apply(&plan(t + 1, vec![c(5, 1)]))
            .await
            .expect("applies");
        assert_eq!(remaining(&one), Some(2));
        let events: Vec<Vec<u8>> = server.cmd(&["LRANGE", sliding, "0", "-1"]);
        assert_eq!(
            events.iter().map(Vec::len).collect::<Vec<_>>(),
            [16, 40],
            "{events:?}"
        );
    });
}
