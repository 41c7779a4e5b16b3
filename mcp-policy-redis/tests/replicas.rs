//! Replicas on one Redis: two engines (each with its own connection), several tasks each,
//! hammering one key. No window, judged by the times the store recorded, ever admits more
//! than `max` — also when the replicas' clocks are seconds apart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_policy::{AsyncEngine, Clock, Grant, ManualClock, Policy, SystemClock, Verdict};
use mcp_policy_redis::{Options, RedisStore, TimeSource};
use serde_json::json;

use mcp_policy_test_support::redis::{RedisServer, runtime};

const MAX: usize = 5;
const WINDOW: u64 = 1_000;
const POLICY: &str = r#"{"version":"1","default":"deny","tools":{
  "slide": { "limits": [ { "counter": "s", "window": "1s", "max": 5, "scope": "global" } ] },
  "block": { "limits": [ { "counter": "c", "window": "1s", "max": 5, "scope": "global", "reset": "calendar" } ] } }}"#;
const RUN: Duration = Duration::from_millis(2_500);
const TASKS_PER_ENGINE: usize = 4;

/// Runs `TASKS_PER_ENGINE` tasks per engine on `tool` for `RUN`; returns the recorded times of
/// the admitted calls, and how many calls were made.
async fn hammer<C: Clock + 'static>(
    engines: Vec<Arc<AsyncEngine<C, RedisStore>>>,
    tool: &'static str,
) -> (Vec<u64>, usize) {
    let admitted = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::new();
    for engine in &engines {
        for t in 0..TASKS_PER_ENGINE {
            let (engine, admitted, calls) = (engine.clone(), admitted.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                let grant = Grant::new(format!("task-{t}"));
                let args = json!({});
                let start = Instant::now();
                let mut n = 0;
                while start.elapsed() < RUN {
                    let d = engine.evaluate(tool, &args, &grant).await;
                    n += 1;
                    match d.verdict {
                        Verdict::Allow => {
                            let reservation = d.reservation.expect("a charge");
                            for c in &reservation.charges {
                                admitted.lock().unwrap().push(c.at_ms);
                            }
                        }
                        Verdict::Limit => {
                            let retry = d.retry_after_ms.expect("a retry");
                            assert!((1..=WINDOW).contains(&retry), "{retry}");
                        }
                        _ => panic!("{d:?}"),
                    }
                }
                *calls.lock().unwrap() += n;
            }));
        }
    }
    for task in tasks {
        task.await.expect("the task ran");
    }
    let mut times = admitted.lock().unwrap().clone();
    times.sort_unstable();
    let calls = *calls.lock().unwrap();
    (times, calls)
}

/// The most admissions in any sliding window `(t - W, t]`.
fn most_in_a_sliding_window(times: &[u64]) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (i, &t) in times.iter().enumerate() {
        while times[first] + WINDOW <= t {
            first += 1;
        }
        most = most.max(i + 1 - first);
    }
    most
}

/// The most admissions in any calendar window.
fn most_in_a_calendar_window(times: &[u64]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for t in times {
        *counts.entry(t / WINDOW).or_insert(0usize) += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

async fn engines<C: Clock>(
    server: &RedisServer,
    clocks: [C; 2],
    time: TimeSource,
    prefix: &str,
) -> Vec<Arc<AsyncEngine<C, RedisStore>>> {
    let mut out = Vec::new();
    for clock in clocks {
        let options = Options::new()
            .prefix(prefix)
            .time(time)
            .timeout(Duration::from_secs(2));
        let store = RedisStore::connect(&server.url(), options)
            .await
            .expect("connects");
        let policy = Policy::from_json_str(POLICY).expect("loads");
        out.push(Arc::new(AsyncEngine::with_parts(policy, clock, store)));
    }
    out
}

fn check(tool: &str, times: &[u64], calls: usize) {
    let most = if tool == "slide" {
        most_in_a_sliding_window(times)
    } else {
        most_in_a_calendar_window(times)
    };
    let span = times.last().unwrap_or(&0) - times.first().unwrap_or(&0);
    eprintln!(
        "{tool}: {calls} calls, {} admitted over {span} ms, at most {most} in one window",
        times.len()
    );
    assert!(most <= MAX, "{most} admitted in one window");
    // The budget was used, not just refused: about MAX per window over the run.
    assert!(times.len() >= 2 * MAX, "{}", times.len());
    assert!(calls > 10 * times.len(), "the key was contended");
}

#[test]
fn two_replicas_never_over_admit() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let engines = engines(
            &server,
            [SystemClock, SystemClock],
            TimeSource::Server,
            "replicas",
        )
        .await;
        for tool in ["slide", "block"] {
            let (times, calls) = hammer(engines.clone(), tool).await;
            check(tool, &times, calls);
        }
    });
}

#[test]
fn skewed_clocks_with_server_time_never_over_admit() {
    let server = RedisServer::start();
    runtime().block_on(async {
        // Plan clocks five seconds apart (and frozen): the server's clock decides.
        let now = SystemClock.now_ms();
        let clocks = [ManualClock::new(now), ManualClock::new(now - 5_000)];
        let engines = engines(&server, clocks, TimeSource::Server, "skew").await;
        for tool in ["slide", "block"] {
            let (times, calls) = hammer(engines.clone(), tool).await;
            check(tool, &times, calls);
            // The recorded times are the server's, not the plans'.
            let server_now = SystemClock.now_ms();
            assert!(
                times
                    .iter()
                    .all(|t| t + 10_000 > server_now && *t <= server_now + 1_000)
            );
        }
    });
}

#[test]
fn skewed_clocks_with_plan_time_keep_each_key_monotonic() {
    // With plan time, a call stamped before a key's latest charge is judged at that charge's
    // time: on the key's own timeline no window over-admits, whatever the skew.
    let server = RedisServer::start();
    runtime().block_on(async {
        let now = SystemClock.now_ms();
        let fast = ManualClock::new(now + 3_000);
        let slow = ManualClock::new(now);
        let ticking = [fast.clone(), slow.clone()];
        let engines = engines(&server, ticking, TimeSource::Plan, "plan-skew").await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    fast.advance(5);
                    slow.advance(5);
                }
            })
        };
        for tool in ["slide", "block"] {
            let (times, calls) = hammer(engines.clone(), tool).await;
            check(tool, &times, calls);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        ticker.await.expect("the ticker stops");
    });
}
