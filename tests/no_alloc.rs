//! `evaluate` allocates nothing on the allow, deny and limit paths once the counter exists.
//!
//! A counting global allocator (test-only; the library itself forbids `unsafe`) counts the
//! allocations made by the current thread while a closure runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
use serde_json::json;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = COUNT.with(Cell::get);
    let out = f();
    (COUNT.with(Cell::get) - before, out)
}

const SEED: &str = include_str!("../benches/data/seed.json");

#[test]
fn the_counter_sees_allocations() {
    let (n, b) = allocations(|| Box::new(7u64));
    assert_eq!((n, *b), (1, 7));
}

#[test]
fn seed_policy_paths_do_not_allocate() {
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(
        Policy::from_json_str(SEED).unwrap(),
        clock.clone(),
        MemoryStore::new(),
    );
    let args = json!({"target": "prod"});
    let grant = Grant::new("alice-laptop");
    // Warm up: create the counter and let buffers reach their steady capacity.
    for _ in 0..12 {
        engine.evaluate("start_security_scan", &args, &grant);
        clock.advance(60_000);
    }
    // Allow with an existing counter.
    let (n, d) = allocations(|| engine.evaluate("start_security_scan", &args, &grant));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(n, 0, "allow path allocated {n} times");
    drop(d);
    // Fill the window, then the limit path.
    for _ in 0..9 {
        engine.evaluate("start_security_scan", &args, &grant);
    }
    let (n, d) = allocations(|| engine.evaluate("start_security_scan", &args, &grant));
    assert_eq!(d.verdict, Verdict::Limit);
    assert_eq!(n, 0, "limit path allocated {n} times");
    // Default deny.
    let (n, d) = allocations(|| engine.evaluate("stop_scan", &args, &grant));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(n, 0, "deny path allocated {n} times");
}

#[test]
fn configured_deny_and_conditions_do_not_allocate() {
    let policy = Policy::from_json_str(
        r#"{"version":"1","default":"deny","tools":{
            "stop_scan":{"action":"deny","reason":"Stopping scans breaks compliance monitoring"},
            "refund":{"require":[{"path":"args.reason","op":"exists","value":true}],
                      "deny_if":[{"conditions":[{"path":"args.amount","op":"gt","value":10000}],"on_deny":"too big"},
                                 {"conditions":[{"path":"args.reason","op":"regex","value":"^test-"}]}]}}}"#,
    )
    .unwrap();
    let engine = Engine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
    let grant = Grant::new("g");
    let small = json!({"amount": 100, "reason": "duplicate charge"});
    let big = json!({"amount": 20000, "reason": "duplicate charge"});
    engine.evaluate("refund", &small, &grant);
    let (n, d) = allocations(|| engine.evaluate("stop_scan", &small, &grant));
    assert_eq!((d.verdict, n), (Verdict::Deny, 0));
    let (n, d) = allocations(|| engine.evaluate("refund", &small, &grant));
    assert_eq!((d.verdict, n), (Verdict::Allow, 0));
    let (n, d) = allocations(|| engine.evaluate("refund", &big, &grant));
    assert_eq!((d.verdict, n), (Verdict::Deny, 0));
}

const SURFACE: &str = include_str!("../benches/data/surface.json");

#[test]
fn resource_and_prompt_allow_paths_do_not_allocate() {
    use mcp_policy::subject::Subject;
    use mcp_policy::uri::Uri;
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(
        Policy::from_json_str(SURFACE).unwrap(),
        clock.clone(),
        MemoryStore::new(),
    );
    let (none, prompt_args) = (json!({}), json!({"style": "short"}));
    let grant = Grant::new("alice-laptop");
    let read = |raw: &str| {
        let uri = Uri::parse(raw).unwrap();
        engine.decide(Subject::Resource(&uri), &none, &grant)
    };
    for _ in 0..12 {
        read("file:///srv/docs/guide.md");
        read("file:///srv/docs/faq.md");
        engine.decide(Subject::Prompt("summarise"), &prompt_args, &grant);
        clock.advance(60_000);
    }
    // The URI is read into its normal form and decided, with a limit charged: no allocation.
    for raw in ["file:///srv/docs/guide.md", "file:///srv/docs/faq.md"] {
        let (n, d) = allocations(|| read(raw));
        assert_eq!((d.verdict, n), (Verdict::Allow, 0), "{raw}");
    }
    let (n, d) = allocations(|| engine.decide(Subject::Prompt("summarise"), &prompt_args, &grant));
    assert_eq!((d.verdict, n), (Verdict::Allow, 0));
    // Default deny for a resource no key matches.
    let (n, d) = allocations(|| read("file:///etc/shadow"));
    assert_eq!((d.verdict, n), (Verdict::Deny, 0));
}

/// An observer that does nothing: what the hook's own calls cost.
struct Nothing;
impl mcp_policy::observe::Observer for Nothing {}

#[test]
fn the_observer_hook_adds_no_allocation_to_a_gateway_call() {
    use mcp_policy::mcp::{Gateway, GatewayOptions};
    use mcp_policy::observe::Observers;
    let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"start_security_scan","arguments":{"target":"10.0.0.0/24"}}}"#;
    let answer =
        br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"started"}]}}"#;
    let mut counted = Vec::new();
    for observers in [
        Observers::none(),
        Observers::new(std::sync::Arc::new(Nothing)),
    ] {
        let clock = ManualClock::new(1_763_712_000_000);
        let engine = Engine::with_parts(
            Policy::from_json_str(SEED).unwrap(),
            clock.clone(),
            MemoryStore::new(),
        );
        let options = GatewayOptions {
            audit: false,
            observers,
            ..GatewayOptions::default()
        };
        let mut gateway = Gateway::new(Grant::new("alice-laptop"), options);
        let mut round = || {
            clock.advance(60_000);
            let out = gateway.from_client(&engine, call);
            let back = gateway.from_server(&engine, answer);
            (out.len(), back.len())
        };
        round();
        let (n, lens) = allocations(&mut round);
        // Forwarded; the answer passed back (and its record, for the host to drop).
        assert_eq!(lens, (1, 2));
        counted.push(n);
    }
    // The gateway allocates for its own reasons (the id it waits on, the outputs); the hook,
    // with or without an observer, adds nothing to that.
    assert_eq!(counted[0], counted[1], "{counted:?}");
}
