//! A guarded rmcp server against the same server unguarded, in one run, over rmcp's in-memory
//! duplex transport: the round trip of one `tools/call` from rmcp's own client, and the heap
//! allocations per call (client and server are in this process, so the difference between
//! guarded and unguarded is the guard's own).
//!
//! ```text
//! cargo bench -p mcp-policy-rmcp --bench guard            # full run
//! cargo bench -p mcp-policy-rmcp --bench guard -- --quick # a short one
//! ```
//!
//! The configurations run interleaved (A, B, C, A, B, C, ...) so that load from other
//! processes on the machine hits them alike; each number is the median over the rounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../examples/demo/mod.rs"]
#[allow(dead_code)]
mod demo;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demo::Demo;
use mcp_policy::{Engine, Grant, Policy};
use mcp_policy_rmcp::{GrantSource, Guarded};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Map, Value, json};

/// Counts allocations (the bench binary only; the library forbids unsafe code).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const POLICY: &str = r#"{"version":"1","default":"deny","tools":{
  "echo":{},
  "scan":{"rate_limit":"1000000000/minute"}}}"#;

/// This binary as the server of the stdio runs: `--serve-stdio guarded|plain`.
async fn serve_stdio(guarded: bool) {
    let io = (tokio::io::stdin(), tokio::io::stdout());
    if guarded {
        let engine = Engine::new(Policy::from_json_str(POLICY).unwrap());
        let server = Guarded::new(Demo::new(), engine, GrantSource::Fixed(Grant::new("bench")));
        let _ = server.serve(io).await.unwrap().waiting().await;
    } else {
        let _ = Demo::new().serve(io).await.unwrap().waiting().await;
    }
}

/// A client of this binary started as a stdio server (killed when the client drops it).
async fn connect_stdio(guarded: bool) -> (RunningService<RoleClient, ()>, tokio::process::Child) {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--serve-stdio", if guarded { "guarded" } else { "plain" }])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    (().serve((stdout, stdin)).await.unwrap(), child)
}

async fn connect(guarded: bool) -> RunningService<RoleClient, ()> {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    if guarded {
        let engine = Engine::new(Policy::from_json_str(POLICY).unwrap());
        let server = Guarded::new(Demo::new(), engine, GrantSource::Fixed(Grant::new("bench")));
        tokio::spawn(async move {
            let running = server.serve(server_io).await.unwrap();
            let _ = running.waiting().await;
        });
    } else {
        tokio::spawn(async move {
            let running = Demo::new().serve(server_io).await.unwrap();
            let _ = running.waiting().await;
        });
    }
    ().serve(client_io).await.unwrap()
}

fn request(tool: &str) -> CallToolRequestParams {
    let Value::Object(args) = json!({"text": "hello", "target": "prod"}) else {
        unreachable!()
    };
    let args: Map<String, Value> = args;
    CallToolRequestParams::new(tool.to_owned()).with_arguments(args)
}

/// `n` sequential calls: nanoseconds and allocations per call.
async fn batch(client: &RunningService<RoleClient, ()>, tool: &str, n: u32) -> (f64, f64) {
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    for _ in 0..n {
        let r = client.call_tool(request(tool)).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{r:?}");
    }
    let ns = t0.elapsed().as_nanos() as f64 / f64::from(n);
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / f64::from(n);
    (ns, allocs)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-stdio") {
        let guarded = args.get(i + 1).is_some_and(|m| m == "guarded");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve_stdio(guarded));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (rounds, n) = if quick { (7, 500) } else { (31, 2000) };
    // One thread for the client and (in memory) the server tasks.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let plain = connect(false).await;
        let guarded = connect(true).await;
        run("in-memory duplex", &plain, &guarded, rounds, n).await;
        plain.cancel().await.unwrap();
        guarded.cancel().await.unwrap();
        let (plain, _p) = connect_stdio(false).await;
        let (guarded, _g) = connect_stdio(true).await;
        run(
            "stdio (a child process each)",
            &plain,
            &guarded,
            rounds,
            n / 2,
        )
        .await;
        plain.cancel().await.unwrap();
        guarded.cancel().await.unwrap();
    });
}

async fn run(
    transport: &str,
    plain: &RunningService<RoleClient, ()>,
    guarded: &RunningService<RoleClient, ()>,
    rounds: usize,
    n: u32,
) {
    let configs: [(&str, &RunningService<RoleClient, ()>, &str); 4] = [
        ("unguarded echo", plain, "echo"),
        ("guarded echo (allow, no counter)", guarded, "echo"),
        ("unguarded scan", plain, "scan"),
        ("guarded scan (allow, one counter)", guarded, "scan"),
    ];
    // Warm up.
    for (_, client, tool) in &configs {
        batch(client, tool, n / 4).await;
    }
    let mut ns = vec![Vec::new(); configs.len()];
    let mut allocs = vec![Vec::new(); configs.len()];
    for _ in 0..rounds {
        for (i, (_, client, tool)) in configs.iter().enumerate() {
            let (t, a) = batch(client, tool, n).await;
            ns[i].push(t);
            allocs[i].push(a);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "rmcp {} {transport}, {rounds} rounds x {n} sequential calls, medians (allocations: this process only):",
        mcp_policy_rmcp::RMCP_VERSION
    );
    for (i, (name, _, _)) in configs.iter().enumerate() {
        // Each guarded configuration against the unguarded one before it (same tool).
        let base = median(&mut ns[i & !1].clone());
        let base_allocs = median(&mut allocs[i & !1].clone());
        let t = median(&mut ns[i]);
        let a = median(&mut allocs[i]);
        println!(
            "  {name:<36} {:>8.2} µs/call  {:>+6.2}%  {:>7.1} allocs/call ({:+.1})",
            t / 1000.0,
            (t / base - 1.0) * 100.0,
            a,
            a - base_allocs
        );
    }
}
