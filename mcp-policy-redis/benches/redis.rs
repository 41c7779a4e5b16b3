//! The Redis store's speed and memory, in one run, against its physical limit.
//!
//! `cargo bench -p mcp-policy-redis` (add `-- --quick` for a short run). Starts its own
//! `redis-server` on a loopback port (persistence off) and prints:
//!
//! 1. latency at 1 call in flight, and throughput at 1, 16 and 64 in flight, over one
//!    multiplexed connection, for: a trivial script (`return 1`: one `EVALSHA` round trip,
//!    the limit of any one-round-trip design), our decision through the Redis store
//!    (`AsyncEngine::evaluate`: plan, the counter script, conclude), and the same decision
//!    through the in-memory store;
//! 2. `redis-benchmark` running the trivial script and our counter script with the same keys
//!    and arguments as a decision (64 connections, and one connection pipelining 64);
//! 3. Redis memory per live counter key: sliding with `max` 10 and 1,000 (full windows), and
//!    calendar, by `MEMORY USAGE` and by `used_memory` deltas.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_policy::document::Reset;
use mcp_policy::store::{Charge, CounterKey, ScopeKey};
use mcp_policy::{
    AsyncCounterStore, AsyncEngine, Clock, Grant, MemoryStore, Plan, Policy, SystemClock, Verdict,
};
use mcp_policy_redis::{Options, RedisStore, SCRIPT, TimeSource};
use redis::Script;
use redis::aio::MultiplexedConnection;
use serde_json::json;

use mcp_policy_test_support::redis::RedisServer;

const POLICY: &str = r#"{"version":"1","default":"deny","tools":{
  "scan": { "limits": [ { "counter": "scan", "window": "1m", "max": 100000000, "scope": "grant" } ] } }}"#;
const GRANTS: usize = 1_000;

struct Settings {
    rounds: usize,
    run: Duration,
    latency_calls: usize,
    benchmark_requests: usize,
    keys: [usize; 3],
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            rounds: 2,
            run: Duration::from_millis(200),
            latency_calls: 2_000,
            benchmark_requests: 20_000,
            keys: [200, 10, 200],
        }
    } else {
        Settings {
            rounds: 7,
            run: Duration::from_secs(1),
            latency_calls: 5_000,
            benchmark_requests: 200_000,
            keys: [2_000, 100, 2_000],
        }
    };
    let server = RedisServer::start();
    let version = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "# mcp-policy-redis bench ({}; {} cpus; {version})",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // One thread for the client, like redis-benchmark: the other core is Redis's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(client_side(&server, &settings));
    redis_benchmark(&server, &settings);
    rt.block_on(memory_per_key(&server, &settings));
}

/// What one contender does per call.
#[derive(Clone)]
enum Contender {
    Trivial(MultiplexedConnection, Arc<Script>),
    Counter(MultiplexedConnection, Arc<Vec<redis::Cmd>>),
    Redis(Arc<AsyncEngine<SystemClock, RedisStore<MultiplexedConnection>>>),
    Memory(Arc<AsyncEngine<SystemClock, MemoryStore>>),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Trivial(..) => "trivial script (EVALSHA `return 1`)",
            Contender::Counter(..) => "counter script alone (EVALSHA, prebuilt arguments)",
            Contender::Redis(_) => "decision through the Redis store",
            Contender::Memory(_) => "decision through the memory store",
        }
    }

    async fn call(&mut self, i: usize, grants: &[Grant], args: &serde_json::Value) {
        match self {
            Contender::Trivial(conn, script) => {
                let _: i64 = script
                    .key("{bench}:trivial")
                    .arg(1)
                    .invoke_async(conn)
                    .await
                    .expect("the trivial script runs");
            }
            Contender::Counter(conn, cmds) => {
                // Admitted: the counter's newest element (40 bytes), or `[1, remaining, at]`
                // when events left the window (the general path).
                let reply: redis::Value = cmds[i % GRANTS]
                    .query_async(conn)
                    .await
                    .expect("the counter script runs");
                assert!(
                    match &reply {
                        redis::Value::BulkString(v) => v.len() == 40,
                        redis::Value::Array(a) => a.first() == Some(&redis::Value::Int(1)),
                        _ => false,
                    },
                    "{reply:?}"
                );
            }
            Contender::Redis(engine) => {
                let d = engine.evaluate("scan", args, &grants[i % GRANTS]).await;
                assert_eq!(d.verdict, Verdict::Allow, "{:?}", d.message);
            }
            Contender::Memory(engine) => {
                let d = engine.evaluate("scan", args, &grants[i % GRANTS]).await;
                assert_eq!(d.verdict, Verdict::Allow, "{:?}", d.message);
            }
        }
    }
}

fn grants() -> Arc<Vec<Grant>> {
    Arc::new((0..GRANTS).map(|i| Grant::new(format!("g-{i}"))).collect())
}

/// Mean and median latency (µs) of `calls` calls one after the other.
async fn latency(contender: &mut Contender, calls: usize) -> (f64, f64) {
    let grants = grants();
    let args = json!({});
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls {
        let start = Instant::now();
        contender.call(i, &grants, &args).await;
        samples.push(start.elapsed().as_nanos() as f64 / 1_000.0);
    }
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    (mean, samples[samples.len() / 2])
}

async fn throughput(contender: &Contender, in_flight: usize, run: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let grants = grants();
    let mut tasks = Vec::new();
    for t in 0..in_flight {
        let (mut contender, stop, done, grants) = (
            contender.clone(),
            stop.clone(),
            done.clone(),
            grants.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let args = json!({});
            let mut i = t;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                contender.call(i, &grants, &args).await;
                i += in_flight;
                n += 1;
                // The memory store answers without ever waiting: let the other tasks (and
                // the timer) run.
                if n % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            done.fetch_add(n, Ordering::Relaxed);
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("the task ran");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The EVALSHA a decision of the bench policy sends, for `grant` (server time).
fn counter_cmd(sha: &str, grant: &str) -> redis::Cmd {
    let key = format!(
        "{{bench}}:c:{}",
        CounterKey {
            counter: "scan",
            window_ms: 60_000,
            reset: Reset::Sliding,
            scope: ScopeKey::Grant(grant)
        }
        .render()
    );
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(sha).arg(1).arg(key);
    for a in ["s", "60000", "100000000", "1"] {
        cmd.arg(a);
    }
    cmd
}

async fn client_side(server: &RedisServer, settings: &Settings) {
    let client = redis::Client::open(server.url()).expect("a client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a connection");
    // The machine may be busy with other work: a stall is a slow figure, not a failure.
    conn.set_response_timeout(Duration::from_secs(5));
    let trivial = Arc::new(Script::new("return 1"));
    let sha = Script::new(SCRIPT).get_hash().to_owned();
    let store = RedisStore::new(
        conn.clone(),
        Options::new()
            .prefix("bench")
            .timeout(Duration::from_secs(5)),
    )
    .expect("a store");
    store.load_script().await.expect("loads");
    let cmds: Vec<redis::Cmd> = grants().iter().map(|g| counter_cmd(&sha, &g.id)).collect();
    let policy = || Policy::from_json_str(POLICY).expect("loads");
    let mut contenders = [
        Contender::Trivial(conn.clone(), trivial),
        Contender::Counter(conn.clone(), Arc::new(cmds)),
        Contender::Redis(Arc::new(AsyncEngine::with_parts(
            policy(),
            SystemClock,
            store,
        ))),
        Contender::Memory(Arc::new(AsyncEngine::with_parts(
            policy(),
            SystemClock,
            MemoryStore::new(),
        ))),
    ];
    for contender in &mut contenders {
        // Warm up (connection, script cache, counters).
        latency(contender, settings.latency_calls / 4).await;
    }
    // Rounds interleave the contenders, so that a change in the machine's load hits them
    // alike; each figure is the median over the rounds.
    let n = contenders.len();
    let mut means = vec![Vec::new(); n];
    let mut p50s = vec![Vec::new(); n];
    let mut ratios = Vec::new();
    let mut rates = vec![vec![Vec::new(); 3]; n];
    for _ in 0..settings.rounds {
        let mut round = Vec::new();
        for (c, contender) in contenders.iter_mut().enumerate() {
            let (mean, p50) = latency(contender, settings.latency_calls).await;
            means[c].push(mean);
            p50s[c].push(p50);
            round.push((mean, p50));
        }
        if let [trivial, _, ours, _] = round.as_slice() {
            ratios.push((ours.0 / trivial.0, ours.1 / trivial.1));
        }
        for (c, contender) in contenders.iter().enumerate() {
            for (k, in_flight) in [1, 16, 64].into_iter().enumerate() {
                rates[c][k].push(throughput(contender, in_flight, settings.run).await);
            }
        }
    }
    println!(
        "\n## One multiplexed connection: {} rounds, {} calls per latency point, {} ms per throughput point (medians over the rounds)\n",
        settings.rounds,
        settings.latency_calls,
        settings.run.as_millis()
    );
    println!(
        "| | latency at 1 in flight: mean / p50 (µs) | calls/s at 1 in flight | at 16 | at 64 |"
    );
    println!("|---|---|---|---|---|");
    let mut at64 = Vec::new();
    for (c, contender) in contenders.iter().enumerate() {
        let r: Vec<f64> = rates[c].iter().map(|v| median(v.clone())).collect();
        println!(
            "| {} | {:.1} / {:.1} | {:.0} | {:.0} | {:.0} |",
            contender.name(),
            median(means[c].clone()),
            median(p50s[c].clone()),
            r[0],
            r[1],
            r[2]
        );
        at64.push(r[2]);
    }
    println!(
        "\nour decision / trivial round trip at 1 in flight (per round, median): {:.2}x mean, {:.2}x p50 (target <= 1.3x)",
        median(ratios.iter().map(|r| r.0).collect()),
        median(ratios.iter().map(|r| r.1).collect())
    );
    if let [trivial, counter, ours, _] = at64.as_slice() {
        println!(
            "at 64 in flight: our decision / counter script alone {:.2}x, / trivial script {:.2}x",
            ours / counter,
            ours / trivial
        );
    }
}

/// Runs `redis-benchmark` and returns its requests per second.
fn run_redis_benchmark(
    server: &RedisServer,
    requests: usize,
    clients: usize,
    pipeline: usize,
    command: &[&str],
) -> f64 {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-n", &requests.to_string(), "-c", &clients.to_string()])
        .args([
            "-P",
            &pipeline.to_string(),
            "-r",
            &GRANTS.to_string(),
            "--csv",
        ])
        .args(command)
        .output()
        .expect("redis-benchmark runs (Debian's redis-tools)");
    let text = String::from_utf8_lossy(&output.stdout);
    // CSV: a header line, then "name","rps",avg,min,p50,p95,p99,max (the name, the command
    // itself, may hold commas: count from the end).
    text.lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').nth(6))
        .filter_map(|v| v.trim_matches('"').parse::<f64>().ok())
        .next()
        .unwrap_or_else(|| {
            panic!(
                "no figure from redis-benchmark: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

fn redis_benchmark(server: &RedisServer, settings: &Settings) {
    let trivial: String = server.cmd(&["SCRIPT", "LOAD", "return 1"]);
    let ours: String = server.cmd(&["SCRIPT", "LOAD", SCRIPT]);
    // Exactly what a decision of the bench policy sends: one sliding charge on a grant's key
    // (redis-benchmark replaces __rand_int__ with one of 1,000 values).
    let key = r#"{bench}:c:["scan",60000,"sliding","grant","g-__rand_int__"]"#;
    let counter = ["EVALSHA", &ours, "1", key, "s", "60000", "100000000", "1"];
    let noop = ["EVALSHA", &trivial, "1", "{bench}:trivial", "1"];
    println!(
        "\n## redis-benchmark, {} requests per point\n",
        settings.benchmark_requests
    );
    println!("| script | 64 connections | 1 connection, pipeline 64 | 1 connection, 1 at a time |");
    println!("|---|---|---|---|");
    for (name, command) in [
        ("trivial (`return 1`)", &noop[..]),
        ("counter script, one sliding charge", &counter[..]),
    ] {
        let a = run_redis_benchmark(server, settings.benchmark_requests, 64, 1, command);
        let b = run_redis_benchmark(server, settings.benchmark_requests, 1, 64, command);
        let c = run_redis_benchmark(server, settings.benchmark_requests / 4, 1, 1, command);
        println!("| {name} | {a:.0} | {b:.0} | {c:.0} |");
    }
}

fn used_memory(conn: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(conn).expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

/// Fills `keys` counters of one kind, each with `events` admitted events at distinct
/// milliseconds, through the counter script (plan time), 64 calls in flight.
async fn fill(
    store: &RedisStore<MultiplexedConnection>,
    counter: &'static str,
    reset: Reset,
    max: u64,
    keys: usize,
    events: u64,
) {
    let names: Arc<Vec<String>> = Arc::new((0..keys).map(|i| format!("grant-{i:06}")).collect());
    let next = Arc::new(AtomicU64::new(0));
    let total = keys as u64 * events;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (store, names, next) = (store.clone(), names.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let (key, event) = ((i % keys as u64) as usize, i / keys as u64);
                let mut plan = Plan::new(1_763_712_000_000 + event);
                plan.charges.push(Charge {
                    key: CounterKey {
                        counter,
                        window_ms: 3_600_000,
                        reset,
                        scope: ScopeKey::Grant(&names[key]),
                    },
                    max,
                    cost: 1,
                    limit: 0,
                });
                store.apply(&plan).await.expect("applies");
            }
        }));
    }
    for task in tasks {
        task.await.expect("filled");
    }
}

async fn memory_per_key(server: &RedisServer, settings: &Settings) {
    let client = redis::Client::open(server.url()).expect("a client");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a connection");
    let store = RedisStore::new(
        conn,
        Options::new()
            .prefix("mem")
            .time(TimeSource::Plan)
            .timeout(Duration::from_secs(5)),
    )
    .expect("a store");
    let mut sync = server.conn();
    println!("\n## Redis memory per live counter key (window 1 h, full)\n");
    println!(
        "| counter | keys | MEMORY USAGE of one key (bytes) | used_memory delta per key (bytes) |"
    );
    println!("|---|---|---|---|");
    let kinds = [
        (
            "sliding, max 10 (10 events)",
            "s10",
            Reset::Sliding,
            10u64,
            settings.keys[0],
            10u64,
        ),
        (
            "sliding, max 1,000 (1,000 events)",
            "s1000",
            Reset::Sliding,
            1_000,
            settings.keys[1],
            1_000,
        ),
        ("calendar", "cal", Reset::Calendar, 10, settings.keys[2], 1),
    ];
    for (name, counter, reset, max, keys, events) in kinds {
        let _: () = redis::cmd("FLUSHALL").query(&mut sync).expect("flush");
        let before = used_memory(&mut sync);
        fill(&store, counter, reset, max, keys, events).await;
        let after = used_memory(&mut sync);
        let key = format!(
            "{{mem}}:c:{}",
            CounterKey {
                counter,
                window_ms: 3_600_000,
                reset,
                scope: ScopeKey::Grant("grant-000000")
            }
            .render()
        );
        let usage: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query(&mut sync)
            .expect("memory usage");
        println!(
            "| {name} | {keys} | {usage} | {:.0} |",
            (after - before) as f64 / keys as f64
        );
    }
    let _ = SystemClock.now_ms();
}
