//! Memory figures, measured with a counting global allocator: bytes per live counter key, and
//! live heap before, during and after a flood of unique grant ids.
//!
//! `cargo bench --bench memory` (add `-- --quick` for a 100,000-grant flood instead of 1,000,000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
use serde_json::Value;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only tracks live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn policy(max: u64) -> Policy {
    let text = format!(
        r#"{{"version":"1","default":"deny","tools":{{"scan":{{"limits":[{{"counter":"scan_rate","window":"hour","max":{max},"scope":"grant"}}]}}}}}}"#
    );
    Policy::from_json_str(&text).expect("policy loads")
}

/// Live bytes per counter key whose window holds `max` separate events (the worst case).
fn bytes_per_key(max: u64, keys: usize) -> f64 {
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(policy(max), clock.clone(), MemoryStore::new());
    let args = Value::Null;
    let grants: Vec<Grant> = (0..keys)
        .map(|i| Grant::new(format!("grant-{i:08}")))
        .collect();
    let before = live();
    for _ in 0..max {
        for g in &grants {
            let d = engine.evaluate("scan", &args, g);
            assert_eq!(d.verdict, Verdict::Allow);
        }
        clock.advance(1);
    }
    (live() - before) as f64 / keys as f64
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let flood: usize = if quick { 100_000 } else { 1_000_000 };
    let sample = if quick { 2_000 } else { 20_000 };

    println!(
        "bytes per live key, max 10:    {:.0}",
        bytes_per_key(10, sample)
    );
    println!(
        "bytes per live key, max 1000:  {:.0}",
        bytes_per_key(1000, sample / 10)
    );

    let clock = ManualClock::new(1_763_712_000_000);
    let store = MemoryStore::with_max_keys(flood + 10);
    let engine = Engine::with_parts(policy(10), clock.clone(), store);
    let args = Value::Null;
    // Warm up one grant so that the engine's own structures exist.
    engine.evaluate("scan", &args, &Grant::new("warm"));
    clock.advance(3_600_000);
    engine.store().sweep(mcp_policy::Clock::now_ms(&clock));
    let before = live();
    for i in 0..flood {
        let g = Grant::new(format!("flood-{i:09}"));
        engine.evaluate("scan", &args, &g);
    }
    let during = live();
    let keys_during = engine.store().live_keys();
    clock.advance(3_600_000);
    engine.store().sweep(mcp_policy::Clock::now_ms(&clock));
    let after = live();
    println!("flood of {flood} unique grants ({keys_during} live keys during)");
    println!("  live heap before: {before} B");
    println!(
        "  live heap during: {during} B ({:.0} B per key)",
        (during - before) as f64 / flood as f64
    );
    println!(
        "  live heap after windows passed + sweep: {after} B ({:+.1}% vs before)",
        (after - before) as f64 * 100.0 / before.max(1) as f64
    );
    let ok = after <= before + before / 10;
    println!("  within 10% of before: {}", if ok { "yes" } else { "NO" });
    if !ok {
        std::process::exit(1);
    }
}
