//! Criterion benchmarks of `evaluate` (see docs/PERFORMANCE.md for figures and commands).

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy};
use serde_json::{Value, json};

const SEED: &str = include_str!("data/seed.json");

const CONDITIONED: &str = include_str!("data/conditioned.json");

const SURFACE: &str = include_str!("data/surface.json");

fn engine(policy: &str) -> (Engine<ManualClock, MemoryStore>, ManualClock) {
    let clock = ManualClock::new(1_763_712_000_000);
    let policy = Policy::from_json_str(policy).expect("bench policy loads");
    (
        Engine::with_parts(policy, clock.clone(), MemoryStore::new()),
        clock,
    )
}

/// A policy with `tools` exact tools and `patterns` patterns, each with the seed's limit.
fn scaled(tools: usize, patterns: usize) -> String {
    let mut map = serde_json::Map::new();
    for i in 0..tools {
        map.insert(format!("tool_{i}"), json!({"rate_limit": "10/minute"}));
    }
    for i in 0..patterns {
        map.insert(format!("ns{i}_*_x?"), json!({"rate_limit": "10/minute"}));
    }
    map.insert(
        "start_security_scan".into(),
        json!({"limits": [{"counter": "start_security_scan_rate", "window": "minute", "max": 10, "scope": "grant"}]}),
    );
    json!({"version": "1", "default": "deny", "tools": map}).to_string()
}

fn seed_policy(c: &mut Criterion) {
    let mut g = c.benchmark_group("seed");
    let args = json!({"target": "prod"});
    let grant = Grant::new("alice-laptop");
    // Allow with an existing counter: the clock moves a full window between calls, so every
    // call is admitted and the counter is never created anew.
    let (e, clock) = engine(SEED);
    e.evaluate("start_security_scan", &args, &grant);
    g.bench_function("allow_existing_counter", |b| {
        b.iter(|| {
            clock.advance(60_000);
            black_box(e.evaluate(black_box("start_security_scan"), &args, &grant))
        })
    });
    let (e, _clock) = engine(SEED);
    for _ in 0..10 {
        e.evaluate("start_security_scan", &args, &grant);
    }
    g.bench_function("limit", |b| {
        b.iter(|| black_box(e.evaluate(black_box("start_security_scan"), &args, &grant)))
    });
    g.bench_function("default_deny", |b| {
        b.iter(|| black_box(e.evaluate(black_box("stop_scan"), &args, &grant)))
    });
    g.finish();
}

/// The allow path of a resource read (the URI read into its normal form each call, as a host
/// does) and of a prompt, each with one limit like the seed's.
fn surface(c: &mut Criterion) {
    use mcp_policy::subject::Subject;
    use mcp_policy::uri::Uri;
    let mut g = c.benchmark_group("surface");
    let (none, prompt_args) = (json!({}), json!({"style": "short"}));
    let grant = Grant::new("alice-laptop");
    for (name, raw) in [
        ("resource_exact", "file:///srv/docs/guide.md"),
        ("resource_pattern", "file:///srv/docs/faq.md"),
    ] {
        let (e, clock) = engine(SURFACE);
        g.bench_function(name, |b| {
            b.iter(|| {
                clock.advance(60_000);
                let uri = Uri::parse(black_box(raw)).expect("a URI");
                black_box(e.decide(Subject::Resource(&uri), &none, &grant))
            })
        });
    }
    let (e, clock) = engine(SURFACE);
    g.bench_function("prompt", |b| {
        b.iter(|| {
            clock.advance(60_000);
            black_box(e.decide(
                Subject::Prompt(black_box("summarise")),
                &prompt_args,
                &grant,
            ))
        })
    });
    g.finish();
}

fn conditioned(c: &mut Criterion) {
    let (e, _) = engine(CONDITIONED);
    let grant = Grant::new("g");
    let ok =
        json!({"amount": 2500, "currency": "USD", "reason": "duplicate charge on invoice 4411"});
    let big =
        json!({"amount": 25000, "currency": "USD", "reason": "duplicate charge on invoice 4411"});
    let mut g = c.benchmark_group("conditioned");
    g.bench_function("allow", |b| {
        b.iter(|| black_box(e.evaluate("refund", black_box(&ok), &grant)))
    });
    g.bench_function("deny_if", |b| {
        b.iter(|| black_box(e.evaluate("refund", black_box(&big), &grant)))
    });
    g.finish();
}

fn scale(c: &mut Criterion) {
    let args = json!({});
    let grant = Grant::new("alice-laptop");
    let mut g = c.benchmark_group("scale");
    for (tools, patterns) in [(1usize, 0usize), (10_000, 1_000)] {
        let (e, clock) = engine(&scaled(tools, patterns));
        e.evaluate("start_security_scan", &args, &grant);
        g.bench_with_input(
            BenchmarkId::new("allow_exact", format!("{tools}+{patterns}p")),
            &(),
            |b, _| {
                b.iter(|| {
                    clock.advance(60_000);
                    black_box(e.evaluate(black_box("start_security_scan"), &args, &grant))
                })
            },
        );
    }
    let big = scaled(10_000, 1_000);
    g.bench_function("compile_10000_tools_1000_patterns", |b| {
        b.iter(|| black_box(Policy::from_json_str(black_box(&big)).expect("loads")))
    });
    g.finish();
}

/// Runs `per_thread` calls on each of `threads` threads; returns the wall time.
fn run_threads(
    e: &Arc<Engine<ManualClock, MemoryStore>>,
    threads: usize,
    per_thread: u64,
    distinct: bool,
) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let e = Arc::clone(e);
            thread::spawn(move || {
                let grant = Grant::new(if distinct {
                    format!("grant-{t}")
                } else {
                    "hot".to_owned()
                });
                let args = Value::Null;
                for _ in 0..per_thread {
                    black_box(e.evaluate("start_security_scan", &args, &grant));
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    start.elapsed()
}

/// A window of one second and a max high enough never to refuse: measures the store.
const THREADS_POLICY: &str = r#"{"version":"1","default":"deny","tools":{"start_security_scan":{"limits":[
    {"counter":"c","window":"second","max":1000000000,"scope":"grant"}]}}}"#;

fn store_threads(c: &mut Criterion) {
    let policy = THREADS_POLICY;
    let mut g = c.benchmark_group("threads");
    for (name, threads, distinct) in [
        ("1_thread", 1, true),
        ("2_threads_distinct_keys", 2, true),
        ("2_threads_one_key", 2, false),
    ] {
        let (e, clock) = engine(policy);
        let e = Arc::new(e);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // The per-key event buffer holds one entry per millisecond of the window.
                clock.advance(1);
                let per_thread = (iters / threads as u64).max(1);
                run_threads(&e, threads, per_thread, distinct)
            })
        });
    }
    g.finish();
}

/// Pure arithmetic split over `threads` threads, nothing shared: what this machine's cores
/// give when nothing but the cores is measured. Returns nanoseconds per step.
fn run_compute(threads: usize, steps: u64) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let mut x = 1u64;
                for i in 0..steps / threads as u64 {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(black_box(i));
                }
                black_box(x)
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    start.elapsed().as_nanos() as f64 / steps as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The scaling figure from one process, 1 and 2 threads in alternating rounds: on a shared
/// virtual machine, two separate criterion runs can drift apart by more than the effect.
fn threads_summary(quick: bool) {
    let (calls, rounds) = if quick {
        (100_000u64, 3)
    } else {
        (1_000_000u64, 21)
    };
    let (e, clock) = engine(THREADS_POLICY);
    let e = Arc::new(e);
    let (mut one, mut two, mut ceiling) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        clock.advance(1);
        let run = |threads: usize| {
            let elapsed = run_threads(&e, threads, calls / threads as u64, true);
            elapsed.as_nanos() as f64 / calls as f64
        };
        if round % 2 == 0 {
            one.push(run(1));
            two.push(run(2));
        } else {
            two.push(run(2));
            one.push(run(1));
        }
        let steps = calls * 100;
        ceiling.push(run_compute(1, steps) / run_compute(2, steps));
    }
    let (one, two, ceiling) = (median(one), median(two), median(ceiling));
    println!();
    println!(
        "threads summary (median of {rounds} alternating rounds of {calls} calls): \
         1 thread {one:.1} ns per call, 2 threads on distinct keys {two:.1} ns per call, \
         throughput ratio {:.2}× (target ≥ 1.7×); the same rounds' pure arithmetic on 2 threads \
         (the machine's ceiling): {ceiling:.2}×",
        one / two
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut c = Criterion::default().configure_from_args();
    seed_policy(&mut c);
    surface(&mut c);
    conditioned(&mut c);
    scale(&mut c);
    store_threads(&mut c);
    c.final_summary();
    // `--test` (each benchmark run once) and `--list`: no summary timing.
    if !args.iter().any(|a| a == "--test" || a == "--list") {
        threads_summary(args.iter().any(|a| a == "--quick"));
    }
}
