//! The cost of a stdio gateway, measured in one run: a minimal MCP server's `tools/call`
//! round trip direct; through a no-op line relay (one extra hop: the physical limit of any
//! stdio gateway); through `mcp-policy proxy` with a rate-limited policy; and through
//! kvlar-proxy when it is installed (`KVLAR_PROXY=path`, or `target/peers-bin/bin/kvlar` from
//! `cargo install kvlar-cli --version 0.4.0 --locked --root target/peers-bin`).
//!
//! ```text
//! cargo bench -p mcp-policy-cli --bench proxy            # full: 20,000 calls per case
//! cargo bench -p mcp-policy-cli --bench proxy -- --quick # CI smoke: 500 calls per case
//! # one case and depth, for a profile (`--calls N` sets the count):
//! cargo bench -p mcp-policy-cli --bench proxy -- --case "mcp-policy proxy" --depth 16
//! # another build of `mcp-policy` as the proxy (scripts/pgo.sh trains with this):
//! BENCH_PROXY_BIN=/path/to/mcp-policy cargo bench -p mcp-policy-cli --bench proxy -- --quick
//! ```
//!
//! The bench binary plays every part itself: run with `MCP_BENCH_ROLE=server` it is the
//! minimal server, with `MCP_BENCH_ROLE=relay -- CMD…` the no-op relay. Calls are sent with
//! 1 and 16 in flight; latency is from writing a request to reading its answer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROXY: &str = env!("CARGO_BIN_EXE_mcp-policy");

/// The proxy binary: this build's, or `BENCH_PROXY_BIN` (another build, to compare or train).
fn proxy_bin() -> String {
    std::env::var("BENCH_PROXY_BIN").unwrap_or_else(|_| PROXY.to_owned())
}

/// The benchmark's policy: the seed policy's shape (one rate-limited tool, `default: deny`),
/// with a budget no run can exhaust, so that every call is decided and forwarded.
const POLICY: &str = r#"{"version":"1","default":"deny","tools":{"start_security_scan":{"limits":[
  {"counter":"start_security_scan_rate","window":"minute","max":1000000000,"scope":"grant"}]}}}"#;

fn main() {
    match std::env::var("MCP_BENCH_ROLE").as_deref() {
        Ok("server") => return server(),
        Ok("relay") => return relay(),
        _ => {}
    }
    let argv: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let quick = argv.iter().any(|a| a == "--quick");
    let only_case = flag("--case");
    let depths: Vec<usize> = match flag("--depth").and_then(|d| d.parse().ok()) {
        Some(depth) => vec![depth],
        None => vec![1, 16],
    };
    let calls: usize = flag("--calls")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 500 } else { 20_000 });
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("proxy-bench"));
    let dir = std::env::temp_dir().join(format!("mcp-policy-proxy-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let policy = dir.join("policy.json");
    if std::fs::write(&policy, POLICY).is_err() {
        eprintln!("cannot write {}", policy.display());
        std::process::exit(1);
    }
    let kvlar_policy = dir.join("kvlar.yaml");
    let _ = std::fs::write(
        &kvlar_policy,
        "name: bench\ndescription: allow the benchmark tool\nversion: \"1.0\"\nrules:\n  - id: allow-scan\n    description: allow the benchmark tool\n    match_on:\n      action_types: [\"tool_call\"]\n      resources: [\"start_security_scan\"]\n    effect:\n      type: allow\n",
    );
    let me_s = me.display().to_string();
    let server = vec![me_s.clone()];
    let mut cases: Vec<(&str, Vec<String>)> = vec![
        ("direct", server.clone()),
        (
            "no-op relay",
            [vec![me_s.clone(), "--".into()], server.clone()].concat(),
        ),
        (
            "mcp-policy proxy",
            [
                vec![
                    proxy_bin(),
                    "proxy".into(),
                    "--policy".into(),
                    policy.display().to_string(),
                    "--".into(),
                ],
                server.clone(),
            ]
            .concat(),
        ),
    ];
    let kvlar = std::env::var("KVLAR_PROXY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers-bin/bin/kvlar")
        });
    if kvlar.exists() {
        cases.push((
            "kvlar-proxy",
            [
                vec![
                    kvlar.display().to_string(),
                    "proxy".into(),
                    "--stdio".into(),
                    "--policy".into(),
                    kvlar_policy.display().to_string(),
                    "--".into(),
                ],
                server.clone(),
            ]
            .concat(),
        ));
    } else {
        println!(
            "kvlar-proxy: not installed at {} (set KVLAR_PROXY); skipped",
            kvlar.display()
        );
    }

    println!("{calls} calls per case; latency in microseconds");
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>11}",
        "case", "in flight", "p50 us", "p99 us", "calls/s"
    );
    if let Some(only) = &only_case {
        cases.retain(|(name, _)| name == only);
    }
    let mut results: HashMap<(String, usize), (f64, f64, f64)> = HashMap::new();
    for &depth in &depths {
        for (name, argv) in &cases {
            let role = if name == &"no-op relay" { "relay" } else { "" };
            match measure(argv, role, calls, depth) {
                Ok((p50, p99, rate)) => {
                    println!("{name:<18} {depth:>9} {p50:>9.1} {p99:>9.1} {rate:>11.0}");
                    results.insert(((*name).to_owned(), depth), (p50, p99, rate));
                }
                Err(e) => println!("{name:<18} {depth:>9} failed: {e}"),
            }
        }
    }
    println!();
    for &depth in &depths {
        let get = |n: &str| results.get(&(n.to_owned(), depth)).copied();
        if let (Some(d), Some(r), Some(p)) =
            (get("direct"), get("no-op relay"), get("mcp-policy proxy"))
        {
            let added = |x: f64, base: f64| (x - base).max(0.0);
            println!(
                "{depth:>2} in flight: added p50 relay {:.1} us, proxy {:.1} us ({:.2}x); added p99 relay {:.1} us, proxy {:.1} us ({:.2}x); throughput proxy/relay {:.2}",
                added(r.0, d.0),
                added(p.0, d.0),
                added(p.0, d.0) / added(r.0, d.0).max(0.1),
                added(r.1, d.1),
                added(p.1, d.1),
                added(p.1, d.1) / added(r.1, d.1).max(0.1),
                p.2 / r.2
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `argv` as an MCP server, initializes it, sends `calls` calls with `depth` in
/// flight; returns p50, p99 (µs) and calls per second.
fn measure(
    argv: &[String],
    role: &str,
    calls: usize,
    depth: usize,
) -> Result<(f64, f64, f64), String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("MCP_BENCH_ROLE", "server");
    if !role.is_empty() {
        cmd.env("MCP_BENCH_ROLE", role);
    }
    let mut child: Child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let (tx, rx) = std::sync::mpsc::channel::<Duration>();
    let sent_r = Arc::clone(&sent);
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let Some(id) = v.get("id").and_then(serde_json::Value::as_u64) else {
                continue;
            };
            let start = sent_r.lock().ok().and_then(|mut m| m.remove(&id));
            if let Some(start) = start
                && tx.send(start.elapsed()).is_err()
            {
                break;
            }
        }
    });
    let mut send = |id: u64, text: String| -> Result<(), String> {
        if let Ok(mut m) = sent.lock() {
            m.insert(id, Instant::now());
        }
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush())
            .map_err(|e| e.to_string())
    };
    send(
        0,
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#.into(),
    )?;
    rx.recv_timeout(Duration::from_secs(30))
        .map_err(|_| "no initialize answer")?;
    send(
        u64::MAX,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
    )?;
    let call = |id: u64| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"start_security_scan","arguments":{{"target":"staging-web","depth":"quick"}}}}}}"#
        )
    };
    // Warm up, then measure.
    let warm = (calls / 10).max(50) as u64;
    let mut next = 1u64;
    let mut latencies = Vec::with_capacity(calls);
    let mut run = |count: usize,
                   keep: bool,
                   next: &mut u64,
                   latencies: &mut Vec<Duration>|
     -> Result<Duration, String> {
        let t0 = Instant::now();
        let mut in_flight = 0usize;
        let mut done = 0usize;
        let mut issued = 0usize;
        while done < count {
            while in_flight < depth && issued < count {
                send(*next, call(*next))?;
                *next += 1;
                in_flight += 1;
                issued += 1;
            }
            let d = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "an answer did not come")?;
            if keep {
                latencies.push(d);
            }
            in_flight -= 1;
            done += 1;
        }
        Ok(t0.elapsed())
    };
    run(warm as usize, false, &mut next, &mut latencies)?;
    let elapsed = run(calls, true, &mut next, &mut latencies)?;
    drop(stdin);
    let _ = child.wait();
    let _ = reader.join();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Ok((pct(0.50), pct(0.99), calls as f64 / elapsed.as_secs_f64()))
}

/// The minimal MCP server: answers `initialize` and every `tools/call` at once.
fn server() {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let Some(id) = v.get("id") else { continue };
        let answer = match v.get("method").and_then(serde_json::Value::as_str) {
            Some("initialize") => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2025-11-25","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"bench","version":"1"}}}}}}"#
            ),
            Some("tools/list") => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[{{"name":"start_security_scan","inputSchema":{{"type":"object"}}}}]}}}}"#
            ),
            _ => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"scan started"}}]}}}}"#
            ),
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

/// The no-op relay: starts the command after `--` and copies lines both ways, flushing each.
fn relay() {
    let argv: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let Ok(mut child) = Command::new(program)
        .args(args)
        .env("MCP_BENCH_ROLE", "server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return;
    };
    let (Some(mut child_in), Some(child_out)) = (child.stdin.take(), child.stdout.take()) else {
        return;
    };
    let back = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        let mut lines = BufReader::new(child_out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match lines.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
                return;
            }
        }
    });
    let mut input = std::io::stdin().lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if child_in
            .write_all(&buf)
            .and_then(|()| child_in.flush())
            .is_err()
        {
            break;
        }
    }
    drop(child_in);
    let _ = back.join();
    let _ = child.wait();
}
