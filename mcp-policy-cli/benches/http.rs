//! Load test of the HTTP gateway on loopback, bounded in calls and time.
//!
//! Many concurrent callers, each with its own token and MCP session, send `tools/call` over
//! keep-alive HTTP/1.1 connections to, in turn:
//!
//! 1. `direct`: a minimal streamable-HTTP MCP server (in this process; answers at once);
//! 2. `nginx`: Debian's nginx as a plain reverse proxy in front of it (the cost of one HTTP
//!    hop), started on a free port with a temporary config;
//! 3. `gateway`: `mcp-policy proxy --listen … --keys … --upstream URL` in front of it;
//! 4. `gateway, --metrics`: the same with its Prometheus metrics on (the ratio to 3 is
//!    printed: the metrics' cost);
//! 5. `replicas`: two gateways on one `redis-server`, callers split between them.
//!
//! Prints calls/s, p50 and p99 for each (medians over rounds), the added p50 of nginx and the gateway over direct,
//! and a budget check: every caller then calls a tool limited to 100 calls a minute in all,
//! and exactly 100 may be admitted. nginx or redis-server missing: that row is skipped.
//!
//! `cargo bench -p mcp-policy-cli --bench http [-- CALLERS CALLS ROUNDS]`: CALLERS is one
//! count or a comma-separated list (default `1,4,16`), each measured and reported on its own;
//! CALLS per caller (default 1000); ROUNDS (default 5). For each caller count every path is
//! loaded once per round, the paths interleaved, and medians over the rounds are reported,
//! with the CPU time the proxy processes spent per call (from /proc: nginx's master and
//! workers, the gateway's process). The budget check runs once, with the most callers.
//! `BENCH_GATEWAY_THREADS=N` starts the gateways with `--threads N` (default: the single
//! gateway one event loop per CPU, as its own default; each replica half the CPUs);
//! `BENCH_GATEWAY_BIN=PATH` runs another build of `mcp-policy` as the gateways;
//! `BENCH_GATEWAY_WRAPPER="valgrind --tool=callgrind …"` runs them under that command.
//!
//! One file of about 810 lines, over the ~700 the project keeps to: the in-process upstream,
//! the five paths, the load driver and the report are one harness that nothing else uses;
//! it is split when a second bench needs one of its parts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

/// The gateway binary: this build's, or `BENCH_GATEWAY_BIN` (to compare two builds).
fn gateway_bin() -> String {
    std::env::var("BENCH_GATEWAY_BIN").unwrap_or_else(|_| BIN.to_owned())
}
const LIMIT: usize = 100;
const TIME_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// HTTP/1.1 by hand, keep-alive, Content-Length bodies

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

struct Answer {
    status: u16,
    session: Option<String>,
    body: Vec<u8>,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            host: addr.to_owned(),
        }
    }

    fn post(&mut self, token: &str, session: Option<&str>, body: &[u8]) -> Answer {
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(s) = session {
            req.push_str(&format!("Mcp-Session-Id: {s}\r\n"));
        }
        req.push_str("\r\n");
        let mut buf = req.into_bytes();
        buf.extend_from_slice(body);
        // A server may close a keep-alive connection between requests: reconnect once.
        for _ in 0..2 {
            if self.writer.write_all(&buf).is_ok()
                && let Some(answer) = read_response(&mut self.reader)
            {
                return answer;
            }
            *self = Conn::open(&self.host);
        }
        panic!("no answer from {}", self.host);
    }
}

fn read_response(reader: &mut BufReader<TcpStream>) -> Option<Answer> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let status = line.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    let mut length = 0usize;
    let mut session = None;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            } else if k.eq_ignore_ascii_case("mcp-session-id") {
                session = Some(v.trim().to_owned());
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                panic!("chunked answer; this client reads Content-Length only");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Some(Answer {
        status,
        session,
        body,
    })
}

// ---------------------------------------------------------------------------------------
// the upstream: a minimal streamable-HTTP MCP server, one thread per connection

fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let sessions = Arc::clone(&sessions);
            std::thread::spawn(move || serve_upstream(stream, &sessions));
        }
    });
    port
}

fn serve_upstream(stream: TcpStream, sessions: &AtomicU64) {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let method = line.split(' ').next().unwrap_or("").to_owned();
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut extra = String::new();
        let answer = match (method.as_str(), msg["method"].as_str(), msg.get("id")) {
            ("POST", Some("initialize"), Some(id)) => {
                let n = sessions.fetch_add(1, Ordering::Relaxed);
                extra = format!("Mcp-Session-Id: up-{n}\r\n");
                Some(
                    json!({"jsonrpc":"2.0","id":id,"result":{"protocolVersion":"2025-11-25",
                    "capabilities":{"tools":{}},"serverInfo":{"name":"bench","version":"0"}}}),
                )
            }
            ("POST", Some("tools/call"), Some(id)) => Some(
                json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":"ok"}]}}),
            ),
            ("POST", Some(_), Some(id)) => Some(json!({"jsonrpc":"2.0","id":id,"result":{}})),
            _ => None,
        };
        let out = match answer {
            Some(v) => {
                let body = v.to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            None if method == "GET" => {
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".to_owned()
            }
            None => "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_owned(),
        };
        if writer.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// processes

/// A child process, stopped (SIGTERM, then SIGKILL after 10 s) when dropped. `group`: the
/// child leads a process group of its own, and the signals go to the whole group, so that a
/// gateway under `BENCH_GATEWAY_WRAPPER` stops with its wrapper (strace, for one, detaches
/// on SIGTERM and leaves the traced gateway running).
struct Proc(Child, bool);

impl Proc {
    fn signal(&self, name: &str) {
        let target = match self.1 {
            true => format!("-{}", self.0.id()),
            false => self.0.id().to_string(),
        };
        let _ = Command::new("kill").args([name, "--", &target]).status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal("-TERM");
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal("-KILL");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn nginx(dir: &Path, upstream: u16) -> Option<(Proc, String)> {
    let bin = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())?;
    let port = free_port();
    let tmp = dir.join("nginx");
    std::fs::create_dir_all(tmp.join("tmp")).unwrap();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let t = tmp.display();
    let conf = format!(
        "{user}worker_processes 2;\npid {t}/nginx.pid;\nerror_log {t}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {t}/tmp;\n  proxy_temp_path {t}/tmp;\n\
           fastcgi_temp_path {t}/tmp;\n  uwsgi_temp_path {t}/tmp;\n  scgi_temp_path {t}/tmp;\n\
           upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    keepalive_requests 1000000;\n    location / {{\n      proxy_pass http://up;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    let path = tmp.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(bin)
        .args(["-p", &tmp.display().to_string(), "-c"])
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    wait_port(port);
    Some((Proc(child, false), format!("127.0.0.1:{port}")))
}

/// The gateways' `--threads`: `BENCH_GATEWAY_THREADS`, else the gateway's default (one event
/// loop per CPU) for the single gateway, and for each of the two replicas, which share this
/// machine, half the CPUs (at least one), as docs/GATEWAY.md advises for replicas on one host.
fn threads(replica: bool) -> String {
    if let Ok(t) = std::env::var("BENCH_GATEWAY_THREADS") {
        return t;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match replica {
        true => (cpus / 2).max(1).to_string(),
        false => cpus.to_string(),
    }
}

fn gateway(
    dir: &Path,
    upstream: u16,
    store: Option<&str>,
    prefix: &str,
    extra: &[&str],
) -> (Proc, String) {
    // `BENCH_GATEWAY_WRAPPER`: a command the gateways run under (a profiler).
    let wrapper = std::env::var("BENCH_GATEWAY_WRAPPER").unwrap_or_default();
    let mut wrapper = wrapper.split_whitespace();
    let mut cmd = match wrapper.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(wrapper).arg(gateway_bin());
            cmd
        }
        None => Command::new(gateway_bin()),
    };
    cmd.args(["proxy", "--listen", "127.0.0.1:0", "--policy"])
        .arg(dir.join("policy.json"))
        .arg("--keys")
        .arg(dir.join("keys.json"))
        .args(["--max-sessions", "4096"])
        .args(["--threads", &threads(store.is_some())])
        .args(["--upstream", &format!("http://127.0.0.1:{upstream}/mcp")])
        .args(extra)
        .env("MCP_POLICY_REDIS_PREFIX", prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    cmd.process_group(0);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("mcp-policy proxy: listening on http://")
                .map(|a| a.trim_end_matches("/mcp").to_owned())
        })
        .expect("the gateway starts");
    std::thread::spawn(move || for _ in lines {});
    (Proc(child, true), addr)
}

/// The gateway's `/metrics` text.
fn metrics_text(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    raw
}

fn redis() -> Option<(Proc, String)> {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    Some((Proc(child, false), format!("redis://127.0.0.1:{port}/")))
}

// ---------------------------------------------------------------------------------------
// the load

struct Row {
    calls: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
    admitted: Option<usize>,
    /// CPU time the proxy processes spent per call (user + system).
    cpu_us: Option<f64>,
}

/// Medians over rounds.
struct Summary {
    rate: f64,
    p50: f64,
    p99: f64,
    cpu: Option<f64>,
}

impl Summary {
    fn of(rows: &[Row]) -> Summary {
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

/// User + system CPU ticks of these processes (all their threads), from /proc.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            let rest = stat.rsplit_once(") ")?.1;
            let fields: Vec<&str> = rest.split(' ').collect();
            // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The child processes of `pid` (nginx's workers).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

fn call_body(id: u64, tool: &str) -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{"n":id}}})
        .to_string()
        .into_bytes()
}

/// Every caller opens a session on `addrs[i % len]`, then sends `calls` calls; then every
/// caller calls `limited` until it has tried `LIMIT` times (the budget check).
fn load(addrs: &[String], callers: usize, calls: usize, budget: bool) -> Row {
    let barrier = Arc::new(Barrier::new(callers + 1));
    let deadline = Instant::now() + TIME_LIMIT;
    let handles: Vec<_> = (0..callers)
        .map(|i| {
            let addr = addrs[i % addrs.len()].clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let token = format!("tok-{i}");
                // A failing caller still reaches both barriers (the run then fails, and the
                // processes it started are stopped), instead of leaving the others waiting.
                let setup = catch_unwind(AssertUnwindSafe(|| {
                    let mut conn = Conn::open(&addr);
                    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                        "protocolVersion":"2025-11-25","capabilities":{},
                        "clientInfo":{"name":"bench","version":"0"}}});
                    let a = conn.post(&token, None, init.to_string().as_bytes());
                    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
                    let sid = a.session.clone();
                    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
                    conn.post(&token, sid.as_deref(), note);
                    for w in 0..50 {
                        conn.post(&token, sid.as_deref(), &call_body(w, "echo"));
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
                            let body = call_body(1000 + n as u64, "echo");
                            let t = Instant::now();
                            let a = conn.post(&token, sid.as_deref(), &body);
                            times.push(t.elapsed());
                            assert_eq!(a.status, 200);
                            assert!(
                                a.body.windows(4).any(|w| w == b"\"ok\""),
                                "{addr}: {}",
                                String::from_utf8_lossy(&a.body)
                            );
                        }
                        (conn, sid, times)
                    }))
                    .ok()
                });
                barrier.wait();
                let Some((mut conn, sid, times)) = measured else {
                    panic!("caller {i} failed");
                };
                let mut admitted = 0;
                if budget {
                    for n in 0..(LIMIT * 2 / callers.max(1) + 2) {
                        let a = conn.post(
                            &token,
                            sid.as_deref(),
                            &call_body(90_000 + n as u64, "limited"),
                        );
                        if a.body.windows(4).any(|w| w == b"\"ok\"") {
                            admitted += 1;
                        }
                    }
                }
                (times, admitted)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let secs = start.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut admitted = 0;
    for h in handles {
        let (t, a) = h.join().unwrap();
        all.extend(t);
        admitted += a;
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
    }
}

fn main() {
    // CALLERS is one count or a comma-separated list (`1,4,16`): each gets its own table.
    let raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let caller_counts: Vec<usize> = raw
        .first()
        .map(|a| {
            a.split(',')
                .filter_map(|c| c.parse().ok())
                .filter(|&c| c > 0)
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 4, 16]);
    let callers = caller_counts.iter().copied().max().unwrap_or(16);
    let calls = raw.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rounds = raw
        .get(2)
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(5)
        .max(1);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("mcp-policy-http-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("policy.json"),
        format!(
            r#"{{"version":"1","default":"deny","tools":{{
              "echo":{{"limits":[{{"counter":"echo","window":"minute","max":100000000}}]}},
              "limited":{{"limits":[{{"counter":"limited","window":"minute","max":{LIMIT},"scope":"global"}}]}}}}}}"#
        ),
    )
    .unwrap();
    let keys: Vec<Value> = (0..callers)
        .map(|i| {
            let out = Command::new(BIN)
                .args(["keys", "hash", &format!("tok-{i}")])
                .output()
                .unwrap();
            json!({"sha256": String::from_utf8(out.stdout).unwrap().trim(), "grant": format!("caller-{i}")})
        })
        .collect();
    std::fs::write(dir.join("keys.json"), json!({ "keys": keys }).to_string()).unwrap();

    let up = upstream();
    let direct_addr = format!("127.0.0.1:{up}");
    println!(
        "callers {caller_counts:?}, each sending {calls} calls (keep-alive HTTP/1.1), tools/call, \
         loopback; {rounds} rounds per caller count, the paths interleaved in each"
    );
    // Every proxy is up for the whole run; each round loads each path in turn (the order
    // alternates), so that a change in the machine's load hits them alike.
    let nginx = nginx(&dir, up);
    if nginx.is_none() {
        println!("(nginx not found: its rows are skipped)");
    }
    let (gw_proc, gw_addr) = gateway(&dir, up, None, "bench-mem", &[]);
    // The same gateway with its Prometheus metrics on (served on its own port).
    let (metrics_proc, metrics_addr) = gateway(&dir, up, None, "bench-metrics", &["--metrics"]);
    let redis = redis();
    let prefix = format!("bench-{}", std::process::id());
    let replicas = redis.as_ref().map(|(_, url)| {
        let (a_proc, a) = gateway(&dir, up, Some(url), &prefix, &[]);
        let (b_proc, b) = gateway(&dir, up, Some(url), &prefix, &[]);
        (
            vec![a_proc.0.id(), b_proc.0.id()],
            vec![a, b],
            (a_proc, b_proc),
        )
    });
    if replicas.is_none() {
        println!("(redis-server not found: the replicas' rows are skipped)");
    }
    let mut paths: Vec<(&str, Vec<String>, Vec<u32>)> =
        vec![("direct", vec![direct_addr], Vec::new())];
    if let Some((proc_, addr)) = &nginx {
        let mut pids = vec![proc_.0.id()];
        pids.extend(children(proc_.0.id()));
        paths.push(("nginx (reverse proxy)", vec![addr.clone()], pids));
    }
    paths.push((
        "gateway (memory store)",
        vec![gw_addr.clone()],
        vec![gw_proc.0.id()],
    ));
    paths.push((
        "gateway, --metrics",
        vec![metrics_addr.clone()],
        vec![metrics_proc.0.id()],
    ));
    if let Some((pids, addrs, _)) = &replicas {
        paths.push(("2 gateways, one redis-server", addrs.clone(), pids.clone()));
    }
    // The budget: exactly LIMIT admitted through one gateway, and through the two replicas.
    let admitted_one = load(&[gw_addr], callers, 10, true).admitted;
    let admitted_two = replicas
        .as_ref()
        .map(|(_, addrs, _)| load(addrs, callers, 10, true).admitted);

    for &n_callers in &caller_counts {
        let mut rows: Vec<Vec<Row>> = paths.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..paths.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let (_, addrs, pids) = &paths[i];
                let before = cpu_ticks(pids);
                let mut r = load(addrs, n_callers, calls, false);
                r.cpu_us = (!pids.is_empty()).then(|| {
                    (cpu_ticks(pids) - before) as f64 * 1e6 / clock_ticks() / r.calls as f64
                });
                rows[i].push(r);
            }
        }
        println!(
            "\n{n_callers} callers:\n\n| path | calls/s | p50 | p99 | added p50 | proxy CPU per call | budget ({LIMIT}/min) admitted |"
        );
        println!("|---|---|---|---|---|---|---|");
        let medians: Vec<Summary> = rows.iter().map(|r| Summary::of(r)).collect();
        let direct_p50 = medians[0].p50;
        for (k, ((name, _, _), m)) in paths.iter().zip(&medians).enumerate() {
            let admitted = match *name {
                "gateway (memory store)" => admitted_one,
                "2 gateways, one redis-server" => admitted_two.flatten(),
                _ => None,
            };
            println!(
                "| {name} | {:.0} | {:.0} µs | {:.0} µs | {} | {} | {} |",
                m.rate,
                m.p50 * 1e6,
                m.p99 * 1e6,
                if k == 0 {
                    "–".to_owned()
                } else {
                    format!("{:.0} µs", (m.p50 - direct_p50) * 1e6)
                },
                m.cpu.map_or("–".to_owned(), |c| format!("{c:.1} µs")),
                admitted.map_or("–".to_owned(), |a| a.to_string()),
            );
        }
        println!("\nper round (calls/s; p50 µs):");
        for ((name, _, _), rs) in paths.iter().zip(&rows) {
            let cells: Vec<String> = rs
                .iter()
                .map(|r| {
                    format!(
                        "{:.0}; {:.0}",
                        r.calls as f64 / r.secs,
                        r.p50.as_secs_f64() * 1e6
                    )
                })
                .collect();
            println!("  {name}: {}", cells.join(" | "));
        }
        if let (Some(off), Some(on)) = (
            paths.iter().position(|p| p.0 == "gateway (memory store)"),
            paths.iter().position(|p| p.0 == "gateway, --metrics"),
        ) {
            let (off, on) = (&medians[off], &medians[on]);
            println!(
                "\n{n_callers} callers, metrics on vs off (medians of {rounds} rounds): CPU per call {:.3}x, \
                 added p50 {:.3}x (target <= 1.03x each), throughput {:.3}x",
                match (on.cpu, off.cpu) {
                    (Some(a), Some(b)) if b > 0.0 => a / b,
                    _ => f64::NAN,
                },
                (on.p50 - direct_p50) / (off.p50 - direct_p50),
                on.rate / off.rate,
            );
        }
        if let Some(n) = paths.iter().position(|p| p.0.starts_with("nginx")) {
            let g = paths
                .iter()
                .position(|p| p.0.starts_with("gateway"))
                .unwrap_or(0);
            let (mn, mg) = (&medians[n], &medians[g]);
            let (added_n, added_g) = (mn.p50 - direct_p50, mg.p50 - direct_p50);
            println!(
                "\n{n_callers} callers, gateway vs nginx (medians of {rounds} rounds): added p50 {:.2}x (target <= 1.5x), \
                 throughput {:.2}x (target >= 0.7x), CPU per call {:.2}x",
                if added_n > 0.0 {
                    added_g / added_n
                } else {
                    f64::INFINITY
                },
                mg.rate / mn.rate,
                match (mg.cpu, mn.cpu) {
                    (Some(g), Some(n)) if n > 0.0 => g / n,
                    _ => f64::NAN,
                },
            );
        }
    }
    assert_eq!(
        admitted_one,
        Some(LIMIT),
        "the budget was exceeded or underused"
    );
    if let Some(two) = admitted_two {
        assert_eq!(
            two,
            Some(LIMIT),
            "the budget was exceeded or underused (replicas)"
        );
    }
    // The metrics gateway counted every call it decided (each load's calls, plus the budget
    // runs' own, which went to the other gateway).
    let text = metrics_text(&metrics_addr);
    let counted: f64 = text
        .lines()
        .filter(|l| l.starts_with("mcp_policy_decisions_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(
        counted > 0.0,
        "the metrics gateway counted no decision:\n{text}"
    );
    drop(replicas);
    drop(redis);
    drop(metrics_proc);
    drop(gw_proc);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
}
