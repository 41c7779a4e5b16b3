//! Tight loops for profilers (`perf record`, `valgrind --tool=callgrind`):
//!
//! - `cargo run --release --example hot_loop -- allow 5000000`: the seed policy's allow path;
//! - `cargo run --release --example hot_loop -- conditioned 1000000`: the argument-conditioned
//!   policy's allow path (schema, `require`, `deny_if` with a number and a regex);
//! - `cargo run --release --example hot_loop -- compile 20`: loading and compiling a policy of
//!   10,000 exact tools and 1,000 patterns;
//! - `… -- resource N`, `… -- resource_pattern N`, `… -- prompt N`: the allow path of a
//!   resource read under an exact URI key and under a URI pattern (the URI read into its
//!   normal form each call, as a host does), and of a prompt, each with one limit like the
//!   seed's.
//!
//! The core MCP gateway's allow path, with and without an observer, is
//! `mcp-policy-gateway/examples/metrics_loop.rs`.

use mcp_policy::subject::Subject;
use mcp_policy::uri::Uri;
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
use serde_json::json;

const SEED: &str = include_str!("../benches/data/seed.json");
const CONDITIONED: &str = include_str!("../benches/data/conditioned.json");
const SURFACE: &str = include_str!("../benches/data/surface.json");

/// The allow path of a resource read (`uri`) or, without one, of the prompt `summarise`.
fn surface(n: u64, uri: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(
        Policy::from_json_str(SURFACE)?,
        clock.clone(),
        MemoryStore::new(),
    );
    let none = json!({});
    let prompt_args = json!({"style": "short"});
    let grant = Grant::new("alice-laptop");
    let start = std::time::Instant::now();
    let mut allowed = 0u64;
    for _ in 0..n {
        clock.advance(60_000);
        let decision = match uri {
            Some(raw) => {
                let uri = Uri::parse(std::hint::black_box(raw))?;
                engine.decide(Subject::Resource(&uri), &none, &grant)
            }
            None => engine.decide(Subject::Prompt("summarise"), &prompt_args, &grant),
        };
        if decision.verdict == Verdict::Allow {
            allowed += 1;
        }
    }
    let per_call = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{allowed} of {n} allowed, {per_call:.0} ns per call");
    Ok(())
}

fn conditioned(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::with_parts(
        Policy::from_json_str(CONDITIONED)?,
        ManualClock::new(1_763_712_000_000),
        MemoryStore::new(),
    );
    let args =
        json!({"amount": 2500, "currency": "USD", "reason": "duplicate charge on invoice 4411"});
    let grant = Grant::new("alice-laptop");
    let start = std::time::Instant::now();
    let mut allowed = 0u64;
    for _ in 0..n {
        if engine.evaluate("refund", &args, &grant).verdict == Verdict::Allow {
            allowed += 1;
        }
    }
    let per_call = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{allowed} of {n} allowed, {per_call:.0} ns per call");
    Ok(())
}

fn allow(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(
        Policy::from_json_str(SEED)?,
        clock.clone(),
        MemoryStore::new(),
    );
    let args = json!({"target": "prod"});
    let grant = Grant::new("alice-laptop");
    let start = std::time::Instant::now();
    let mut allowed = 0u64;
    for _ in 0..n {
        clock.advance(60_000);
        if engine
            .evaluate("start_security_scan", &args, &grant)
            .verdict
            == Verdict::Allow
        {
            allowed += 1;
        }
    }
    let per_call = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{allowed} of {n} allowed, {per_call:.0} ns per call");
    println!(
        "sizes: Decision {} B, Step {} B, Plan {} B",
        std::mem::size_of::<mcp_policy::Decision>(),
        std::mem::size_of::<mcp_policy::Step<'_>>(),
        std::mem::size_of::<mcp_policy::Plan<'_>>()
    );
    Ok(())
}

fn compile(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut tools = serde_json::Map::new();
    for i in 0..10_000 {
        tools.insert(format!("tool_{i}"), json!({"rate_limit": "10/minute"}));
    }
    for i in 0..1_000 {
        tools.insert(format!("ns{i}_*_x?"), json!({"rate_limit": "10/minute"}));
    }
    let text = json!({"version": "1", "default": "deny", "tools": tools}).to_string();
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(Policy::from_json_str(&text)?);
    }
    println!(
        "{:.1} ms per compile",
        start.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "allow".to_owned());
    let n: Option<u64> = args.next().map(|s| s.parse()).transpose()?;
    match mode.as_str() {
        "compile" => compile(n.unwrap_or(20)),
        "conditioned" => conditioned(n.unwrap_or(1_000_000)),
        "resource" => surface(n.unwrap_or(1_000_000), Some("file:///srv/docs/guide.md")),
        "resource_pattern" => surface(n.unwrap_or(1_000_000), Some("file:///srv/docs/faq.md")),
        "prompt" => surface(n.unwrap_or(1_000_000), None),
        _ => allow(n.unwrap_or(1_000_000)),
    }
}
