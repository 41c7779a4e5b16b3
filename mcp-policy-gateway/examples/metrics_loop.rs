//! The core gateway's allow path (a call read, decided, forwarded, its answer read and passed
//! back: one decision, one end) under an observer, for callgrind:
//! `cargo build --release -p mcp-policy-gateway --example metrics_loop`, then
//! `valgrind --tool=callgrind target/release/examples/metrics_loop MODE 200000` with MODE
//! `none` (no observer), `noop` (an observer that does nothing: what the hook itself costs) or
//! `metrics` (the `proxy` command's metrics: what recording them costs), or `audit` (no
//! observer; each call's audit record built and written to `/dev/null` through the
//! command's audit log: what `--audit` costs).

use std::sync::Arc;

use mcp_policy::mcp::{Gateway, GatewayOptions, Output};
use mcp_policy::observe::{Observer, Observers};
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy};
use mcp_policy_gateway::host::audit::Audit;
use mcp_policy_gateway::observe::Metrics;

const POLICY: &str = r#"{"version":"1","default":"deny","tools":{"start_security_scan":{
  "limits":[{"counter":"start_security_scan_rate","window":"minute","max":10,"scope":"grant"}]}}}"#;

/// An observer that does nothing.
struct Nothing;
impl Observer for Nothing {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "none".to_owned());
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let clock = ManualClock::new(1_763_712_000_000);
    let engine = Engine::with_parts(
        Policy::from_json_str(POLICY)?,
        clock.clone(),
        MemoryStore::new(),
    );
    let metrics = Arc::new(Metrics::new());
    let observers = match mode.as_str() {
        "metrics" => Observers::new(metrics.clone()),
        "noop" => Observers::new(Arc::new(Nothing)),
        "none" | "audit" => Observers::none(),
        other => return Err(format!("unknown mode {other}: none, noop, metrics or audit").into()),
    };
    let audit = Audit::open((mode == "audit").then_some("/dev/null"))?;
    let options = GatewayOptions {
        audit: audit.enabled(),
        observers,
        ..GatewayOptions::default()
    };
    let mut gateway = Gateway::new(Grant::new("alice-laptop"), options);
    let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"start_security_scan","arguments":{"target":"10.0.0.0/24"}}}"#;
    let answer =
        br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"started"}]}}"#;
    let start = std::time::Instant::now();
    let mut forwarded = 0u64;
    for _ in 0..n {
        clock.advance(60_000);
        let out = gateway.from_client(&engine, std::hint::black_box(call));
        forwarded += u64::from(matches!(out.first(), Some(Output::Forward)));
        let back = gateway.from_server(&engine, std::hint::black_box(answer));
        forwarded += u64::from(back.iter().any(|o| matches!(o, Output::Forward)));
        for output in back {
            if let Output::Audit(record) = output {
                audit.call(record);
            }
        }
    }
    audit.close();
    assert_eq!(forwarded, 2 * n);
    println!(
        "{mode}: {:.1} ns per call and answer",
        start.elapsed().as_nanos() as f64 / n as f64
    );
    if mode == "metrics" {
        assert!(
            metrics
                .render()
                .contains("mcp_policy_decisions_total{kind=\"tool\",verdict=\"allow\"")
        );
    }
    Ok(())
}
