//! The load driver: a path (the addresses a row sends to, the processes whose CPU it is
//! charged, and how its callers hold sessions), one load of a path by concurrent callers
//! (timed calls, the proxies' CPU time per call, and the budget check's admitted calls), the
//! medians over rounds, and the check that a peer answers the measured call at all.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::procs::{clock_ticks, cpu_ticks};
use crate::wire::Conn;

/// The budget check's limit: calls of `limited` a minute, in all.
pub const LIMIT: usize = 100;
/// A load stops sending at this deadline, whatever is left of its calls.
const TIME_LIMIT: Duration = Duration::from_secs(60);
/// Calls each caller sends before the measured ones (not timed, but counted in `sent`).
const WARM_UP: u64 = 50;

/// How a path's callers hold MCP sessions.
#[derive(Clone, Copy, PartialEq)]
pub enum Sessions {
    /// Each caller its own token and session.
    PerCaller,
    /// One session for all: the first caller's `initialize`, on its connection, and every
    /// caller on its own connection with that session id (and that caller's token, which the
    /// session is bound to), so that CALLERS calls are in flight in one session.
    Shared,
}

/// A row: where its calls go and what it is charged.
pub struct Path {
    pub name: String,
    /// Caller `i` sends to `addrs[i % len]`.
    pub addrs: Vec<String>,
    /// The proxy processes (all their threads) whose CPU time the row's calls are charged.
    pub pids: Vec<u32>,
    pub sessions: Sessions,
    /// `tools/call` requests sent through the path so far, warm-up included (the audit check).
    pub sent: usize,
}

impl Path {
    pub fn new(name: &str, addrs: Vec<String>, pids: Vec<u32>) -> Path {
        Path {
            name: name.to_owned(),
            addrs,
            pids,
            sessions: Sessions::PerCaller,
            sent: 0,
        }
    }
}

/// One load of one path.
pub struct Row {
    pub calls: usize,
    pub secs: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub admitted: Option<usize>,
    /// CPU time the proxy processes spent per call (user + system).
    pub cpu_us: Option<f64>,
    /// `tools/call` requests sent, warm-up and budget check included.
    pub sent: usize,
}

/// Medians over rounds.
pub struct Summary {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub cpu: Option<f64>,
}

impl Summary {
    pub fn of(rows: &[Row]) -> Summary {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let cpu: Vec<f64> = rows.iter().filter_map(|r| r.cpu_us).collect();
        Summary {
            rate: median(rows.iter().map(|r| r.calls as f64 / r.secs).collect()),
            p50: median(rows.iter().map(|r| r.p50.as_secs_f64()).collect()),
            p99: median(rows.iter().map(|r| r.p99.as_secs_f64()).collect()),
            cpu: (!cpu.is_empty()).then(|| median(cpu)),
        }
    }
}

fn call_body(id: u64, tool: &str) -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{"n":id}}})
        .to_string()
        .into_bytes()
}

/// `initialize` then `notifications/initialized` on `conn`; the session id.
fn open_session(conn: &mut Conn, token: &str) -> Result<Option<String>, String> {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"bench","version":"0"}}});
    let a = conn.try_post(token, None, Some(0), init.to_string().as_bytes())?;
    if a.status != 200 {
        return Err(format!("initialize: status {}: {}", a.status, a.text()));
    }
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    conn.try_post(token, a.session.as_deref(), None, note)?;
    Ok(a.session)
}

/// Loads `path` with `callers` callers sending `calls` calls each, and charges the call its
/// proxies' CPU time.
pub fn measure(path: &mut Path, callers: usize, calls: usize) -> Row {
    let before = cpu_ticks(&path.pids);
    let mut r = load(&path.addrs, callers, calls, path.sessions, false);
    r.cpu_us = (!path.pids.is_empty())
        .then(|| (cpu_ticks(&path.pids) - before) as f64 * 1e6 / clock_ticks() / r.calls as f64);
    path.sent += r.sent;
    r
}

/// Every caller opens a session on `addrs[i % len]` (or joins the shared one), then sends
/// `calls` calls; then, with `budget`, every caller calls `limited` until the callers have
/// tried about 2 × `LIMIT` times in all (the budget check).
pub fn load(
    addrs: &[String],
    callers: usize,
    calls: usize,
    sessions: Sessions,
    budget: bool,
) -> Row {
    let barrier = Arc::new(Barrier::new(callers + 1));
    let deadline = Instant::now() + TIME_LIMIT;
    // One shared session: opened here on the connection the first caller then goes on with.
    let (mut first, shared) = match sessions {
        Sessions::PerCaller => (None, None),
        Sessions::Shared => {
            let mut conn = Conn::open(&addrs[0]);
            let sid = open_session(&mut conn, "tok-0").unwrap_or_else(|e| panic!("{e}"));
            (Some(conn), Some(sid))
        }
    };
    let handles: Vec<_> = (0..callers)
        .map(|i| {
            let addr = addrs[i % addrs.len()].clone();
            let barrier = Arc::clone(&barrier);
            let given = first.take();
            let shared = shared.clone();
            std::thread::spawn(move || {
                // Request ids unique in the load, so within one shared session too (a session
                // routes answers by id).
                let base = (i as u64 + 1) * 1_000_000;
                let token = match shared {
                    Some(_) => "tok-0".to_owned(),
                    None => format!("tok-{i}"),
                };
                // A failing caller still reaches both barriers (the run then fails, and the
                // processes it started are stopped), instead of leaving the others waiting.
                let setup = catch_unwind(AssertUnwindSafe(|| {
                    let (mut conn, sid) = match (given, shared) {
                        (Some(conn), Some(sid)) => (conn, sid),
                        (None, Some(sid)) => (Conn::open(&addr), sid),
                        _ => {
                            let mut conn = Conn::open(&addr);
                            let sid = open_session(&mut conn, &token)
                                .unwrap_or_else(|e| panic!("{addr}: {e}"));
                            (conn, sid)
                        }
                    };
                    for w in 0..WARM_UP {
                        let id = base + w;
                        conn.post(&token, sid.as_deref(), Some(id), &call_body(id, "echo"));
                    }
                    (conn, sid)
                }));
                barrier.wait();
                let measured = setup.ok().and_then(|(mut conn, sid)| {
                    catch_unwind(AssertUnwindSafe(|| {
                        let mut times = Vec::with_capacity(calls);
                        for n in 0..calls {
                            if Instant::now() > deadline {
                                break;
                            }
                            let id = base + 1000 + n as u64;
                            let body = call_body(id, "echo");
                            let t = Instant::now();
                            let a = conn.post(&token, sid.as_deref(), Some(id), &body);
                            times.push(t.elapsed());
                            assert_eq!(a.status, 200, "{addr}: {}", a.text());
                            assert!(a.is_ok(), "{addr}: {}", a.text());
                        }
                        (conn, sid, times)
                    }))
                    .ok()
                });
                barrier.wait();
                let Some((mut conn, sid, times)) = measured else {
                    panic!("caller {i} failed");
                };
                let mut sent = WARM_UP as usize + times.len();
                let mut admitted = 0;
                if budget {
                    for n in 0..(LIMIT * 2 / callers.max(1) + 2) {
                        let id = base + 90_000 + n as u64;
                        let a =
                            conn.post(&token, sid.as_deref(), Some(id), &call_body(id, "limited"));
                        sent += 1;
                        if a.is_ok() {
                            admitted += 1;
                        }
                    }
                }
                (times, admitted, sent)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let secs = start.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let (mut admitted, mut sent) = (0, 0);
    for h in handles {
        let (t, a, s) = h.join().unwrap();
        all.extend(t);
        admitted += a;
        sent += s;
    }
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    Row {
        calls: all.len(),
        secs,
        p50: pick(0.5),
        p99: pick(0.99),
        admitted: budget.then_some(admitted),
        cpu_us: None,
        sent,
    }
}

/// Whether the proxy at `addr` opens a session and answers the measured call (`echo`) with
/// its result: the error, or the answer, when it does not.
pub fn probe(addr: &str) -> Result<(), String> {
    let mut conn = Conn::try_open(addr).map_err(|e| format!("connect: {e}"))?;
    let sid = open_session(&mut conn, "tok-0")?;
    let a = conn.try_post("tok-0", sid.as_deref(), Some(1), &call_body(1, "echo"))?;
    let v: Value = serde_json::from_slice(&a.body)
        .map_err(|e| format!("status {}, not JSON ({e}): {}", a.status, a.text()))?;
    match (a.status, v.get("result"), v.get("error")) {
        (200, Some(_), None) if a.is_ok() => Ok(()),
        _ => Err(format!("echo: status {}: {}", a.status, a.text())),
    }
}
