//! A tight loop over the seed policy's allow path, for profilers (`perf record`, callgrind):
//! `cargo run --release --example hot_loop -- 5000000`.

use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};

const SEED: &str = r#"{ "version": "1", "default": "deny", "tools": { "start_security_scan": { "limits": [
  { "counter": "start_security_scan_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } }"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |s| s.parse())?;
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(
        Policy::from_json_str(SEED)?,
        clock.clone(),
        MemoryStore::new(),
    );
    let args = serde_json::json!({"target": "prod"});
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
