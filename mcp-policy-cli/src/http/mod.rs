//! `mcp-policy proxy --listen ADDR`: the policy in front of an MCP server over MCP's
//! streamable HTTP transport, for many callers, each known by a credential.
//!
//! One upstream process (the command after `--`, over stdio) and one core
//! [`mcp_policy::mcp::Gateway`] per MCP session. A session starts with an `initialize` POST
//! (the answer carries `Mcp-Session-Id`), ends with a DELETE, when its upstream exits, when it
//! has been idle for `--session-idle`, or when the gateway stops; its upstream is then stopped
//! and reaped. A POST that carries a request is answered as `application/json` when the
//! answer is the only message for it, else as an SSE stream (the server's or the gateway's
//! requests and notifications, then the answer). A GET opens the session's stream for
//! messages that belong to no request.
//!
//! The HTTP side runs on event loops (`--threads`, default one per CPU): each a Tokio
//! current-thread runtime on a thread of its own, accepting from the one listening socket and
//! serving the connections it accepted; a session's upstream tasks live on the loop that
//! started it. With a store that never blocks (memory) and a remote upstream, everything runs
//! there: a request is decided in its own task, an allowed `tools/call` is sent up from that
//! task, and the server's messages are handled in the task that read them. With a Redis store,
//! a plain `tools/call`'s decision is awaited in the request's task, over the loop's own Redis
//! connection; the other store calls (refunds, approvals, decisions of other shapes) run on
//! plain threads, as does all of a local upstream's IO (its pipes).
//!
//! Session-less requests (protocol 2026-07-28: no `initialize`, no `Mcp-Session-Id`) share
//! one upstream per caller, with their ids renamed on the way up. A POST's SSE answer can be
//! resumed with `Last-Event-ID` when its client lost the connection before the answer.

// Handlers answer refusals as early returns of whole responses.
#![allow(clippy::result_large_err)]

mod body;
mod remote;
mod session;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use mcp_policy::mcp::{
    ClientMessage, GatewayOptions, INTERNAL_ERROR, Output, PARSE_ERROR, error_response,
};
use mcp_policy::{Decision, Engine, Grant};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::audit::Audit;
use crate::keys::Keys;
use crate::proxy::{ProxyArgs, make_grant, read_policy};
use crate::store::{Gate, RedisGate, StoreUrl, redact};
use crate::watch::{reload_policy, watch_file};
use crate::{OK, UNUSABLE};
use body::{Msg, ResBody, Resumable, Sse, empty, full};
use remote::one_line;
use session::{Kind, Session, lock};

/// The path MCP is served at.
pub const MCP_PATH: &str = "/mcp";
/// The health endpoint.
pub const HEALTH_PATH: &str = "/healthz";

/// The header a streamable-HTTP session is named in.
const SESSION_HEADER: &str = "mcp-session-id";
/// The session's and the protocol version's headers as `HeaderName`s (a lookup by one skips
/// parsing the name), here and for a remote upstream.
const SESSION_NAME: header::HeaderName = header::HeaderName::from_static(SESSION_HEADER);
const PROTOCOL_NAME: header::HeaderName = header::HeaderName::from_static(PROTOCOL_HEADER);
/// How long a client has to send its request headers, and then its body.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages queued for one client stream before the sender waits.
const STREAM_QUEUE: usize = 64;
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long a POST stream whose client went away before the answer can be resumed.
const RESUME_WINDOW: Duration = Duration::from_secs(60);
/// Open client connections at most; more are closed at once.
const MAX_CONNECTIONS: usize = 4096;

/// The HTTP options, from the command line (`--listen` present: the HTTP gateway).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Serve MCP over streamable HTTP at ADDR (e.g. 127.0.0.1:8080, path /mcp) instead of
    /// stdio: one upstream COMMAND per MCP session (see docs/GATEWAY.md).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// HTTP: the callers' credentials, a JSON file of SHA-256 token digests, each with a
    /// grant id and attributes (watched: a change that loads is swapped in).
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub keys: Option<PathBuf>,
    /// HTTP: allow a non-loopback --listen address (needs --keys or --trusted-header).
    #[arg(long, requires = "listen")]
    pub allow_remote: bool,
    /// HTTP: take the grant id from this header, set by an authenticating reverse proxy
    /// in front (only enable it when every request passes through that proxy).
    #[arg(long, value_name = "NAME", requires = "listen")]
    pub trusted_header: Option<String>,
    /// HTTP: a Host header value to accept besides the loopback names (repeatable).
    #[arg(long = "allowed-host", value_name = "HOST", requires = "listen")]
    pub allowed_hosts: Vec<String>,
    /// HTTP: an Origin to accept besides loopback ones, e.g. https://app.example.com
    /// (repeatable).
    #[arg(long = "allowed-origin", value_name = "ORIGIN", requires = "listen")]
    pub allowed_origins: Vec<String>,
    /// HTTP: a session with no request for this long (and no call in flight) is ended.
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub session_idle: String,
    /// HTTP: sessions (each with its own upstream) at most; more `initialize`s get 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_sessions: usize,
    /// HTTP: on SIGTERM, how long requests in flight may take before the gateway exits.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub shutdown_grace: String,
    /// HTTP: a remote MCP server over streamable HTTP (http:// or https://HOST[:PORT]/PATH)
    /// as the upstream, one upstream session per session, instead of COMMAND.
    #[arg(long, value_name = "URL", requires = "listen")]
    pub upstream: Option<String>,
    /// HTTP: a header sent to the --upstream server, `NAME: VALUE` (repeatable); nothing
    /// from the client's request is forwarded.
    #[arg(
        long = "upstream-header",
        value_name = "NAME: VALUE",
        requires = "upstream"
    )]
    pub upstream_headers: Vec<String>,
    /// HTTP: with an https:// --upstream, also trust the certificates (PEM) in this file,
    /// for a server under a private CA or with a self-signed certificate.
    #[arg(long, value_name = "FILE", requires = "upstream")]
    pub upstream_ca: Option<PathBuf>,
    /// HTTP: event loops serving the HTTP connections, each a thread of its own that accepts
    /// from the listening socket and serves what it accepted (as nginx's workers do), with a
    /// Redis connection of its own. Default: one per CPU this process may use. Lower it to
    /// leave cores to the upstream or other services (Redis round trips and stdio upstreams
    /// have threads of their own).
    #[arg(long, value_name = "N", requires = "listen",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// Who is calling.
#[derive(Debug, Clone)]
struct Principal {
    /// What a session is bound to (`key:DIGEST`, `header:VALUE`, `anonymous`).
    name: Arc<str>,
    who: Who,
}

/// Where a caller's grant comes from (it is built only when a session starts).
#[derive(Debug, Clone)]
enum Who {
    /// The key with this index in these keys.
    Key(Arc<Keys>, usize),
    /// The trusted header's value.
    Header(String),
    /// No credentials configured: `--grant`.
    Anonymous,
}

/// Everything the gateway shares.
pub struct App {
    pub engine: Arc<dyn Gate>,
    pub options: GatewayOptions,
    pub command: Vec<String>,
    /// `--upstream`: a remote server instead of the command.
    pub remote: Option<remote::Target>,
    /// The runtime the remote upstreams' tasks run on.
    pub handle: std::sync::OnceLock<tokio::runtime::Handle>,
    pub sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Each caller's session for session-less (2026-07-28) requests, by principal.
    modern: Mutex<HashMap<String, Arc<Session>>>,
    /// Held while a session-less caller's upstream starts.
    modern_start: tokio::sync::Mutex<()>,
    pub audit: Audit,
    default_grant: Grant,
    keys: Option<RwLock<Arc<Keys>>>,
    trusted_header: Option<header::HeaderName>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    loopback: bool,
    allow_any_host: bool,
    max_message: usize,
    idle: Duration,
    max_sessions: usize,
    /// The store answers without blocking (memory).
    inline_store: bool,
    stopping: AtomicBool,
    /// Client requests waiting for their answer.
    in_flight: std::sync::atomic::AtomicUsize,
}

fn parse_positive(flag: &str, text: &str) -> Result<Duration, String> {
    match mcp_policy::duration::parse_duration(text) {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        Ok(_) => Err(format!("{flag} must be positive")),
        Err(e) => Err(format!("{flag}: {e}")),
    }
}

fn resolve(listen: &str) -> Result<SocketAddr, String> {
    listen
        .to_socket_addrs()
        .map_err(|e| format!("--listen {listen}: {e}"))?
        .next()
        .ok_or_else(|| format!("--listen {listen}: no address"))
}

/// Runs `proxy --listen`.
pub fn run(args: ProxyArgs, http: HttpArgs) -> u8 {
    match setup(args, http) {
        Ok((app, loops, listener, grace)) => serve(app, loops, listener, grace),
        Err(e) => {
            for line in e.lines() {
                eprintln!("mcp-policy proxy: {line}");
            }
            UNUSABLE
        }
    }
}

fn setup(
    args: ProxyArgs,
    http: HttpArgs,
) -> Result<
    (
        Arc<App>,
        Vec<tokio::runtime::Runtime>,
        std::net::TcpListener,
        Duration,
    ),
    String,
> {
    let store = StoreUrl::parse(&args.store).map_err(|e| format!("--store: {e}"))?;
    let remote = match &http.upstream {
        Some(_) if !args.command.is_empty() => {
            return Err("give either --upstream URL or a command after --, not both".into());
        }
        Some(url) => Some(remote::Target::parse(
            url,
            &http.upstream_headers,
            http.upstream_ca.as_deref(),
        )?),
        None if args.command.is_empty() => {
            return Err("no upstream; usage: mcp-policy proxy --listen ADDR --policy P (--upstream URL | -- COMMAND [ARG]...)".into());
        }
        None => None,
    };
    let approval_timeout = parse_positive("--approval-timeout", &args.approval_timeout)?;
    let idle = parse_positive("--session-idle", &http.session_idle)?;
    let grace = parse_positive("--shutdown-grace", &http.shutdown_grace)?;
    let Some(listen) = http.listen.clone() else {
        return Err("no --listen address".into());
    };
    let addr = resolve(&listen)?;
    let loopback = addr.ip().is_loopback();
    if !loopback && !http.allow_remote {
        return Err(format!(
            "--listen {}: not a loopback address; add --allow-remote to serve other hosts (and put TLS in front, see docs/GATEWAY.md)",
            listen
        ));
    }
    if !loopback && http.keys.is_none() && http.trusted_header.is_none() {
        return Err(
            "--allow-remote needs callers to be known: give --keys FILE or --trusted-header NAME"
                .into(),
        );
    }
    let trusted_header = match &http.trusted_header {
        None => None,
        Some(name) => Some(
            header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("--trusted-header {name}: not a header name"))?,
        ),
    };
    if trusted_header == Some(header::AUTHORIZATION) {
        return Err("--trusted-header cannot be Authorization".into());
    }
    let (policy, policy_text) = read_policy(&args.policy).map_err(|lines| lines.join("\n"))?;
    let default_grant = make_grant(&args)?;
    let keys = match &http.keys {
        None => None,
        Some(path) => Some(Keys::load(path)?),
    };
    let audit = Audit::open(args.audit.as_deref())?;
    // The event loops (`--threads`, default one per CPU); each drives a Redis connection of
    // its own (see `RedisGate::connect_on`).
    let threads = match http.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| usize::from(n).min(1024)),
    };
    let loops = (0..threads)
        .map(|_| event_loop())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let (engine, approve_command): (Arc<dyn Gate>, Option<String>) = match &store {
        StoreUrl::Memory => (Arc::new(Engine::new(policy)), None),
        StoreUrl::Redis(url) => (
            Arc::new(RedisGate::connect_on(url, policy, &loops)?),
            Some(format!("mcp-policy approve ID --store {}", redact(url))),
        ),
    };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("--listen {listen}: cannot bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("--listen {listen}: {e}"))?;
    let options = GatewayOptions {
        approval_timeout,
        approve_command,
        audit_args: args.audit_args,
        audit: audit.enabled(),
    };
    let allow_any_host = !loopback && http.allowed_hosts.is_empty();
    let app = Arc::new(App {
        engine,
        options,
        command: args.command.clone(),
        remote,
        handle: std::sync::OnceLock::new(),
        sessions: Mutex::new(HashMap::new()),
        modern: Mutex::new(HashMap::new()),
        modern_start: tokio::sync::Mutex::new(()),
        audit,
        default_grant,
        keys: keys.map(|k| RwLock::new(Arc::new(k))),
        trusted_header,
        allowed_hosts: http
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        allowed_origins: http
            .allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect(),
        loopback,
        allow_any_host,
        max_message: args.max_line,
        idle,
        max_sessions: http.max_sessions,
        inline_store: matches!(store, StoreUrl::Memory),
        stopping: AtomicBool::new(false),
        in_flight: std::sync::atomic::AtomicUsize::new(0),
    });
    if allow_any_host {
        eprintln!(
            "mcp-policy proxy: warning: no --allowed-host given; any Host header is accepted"
        );
    }
    let shown = listener.local_addr().map_or(addr, |a| a);
    app.audit.line(vec![
        ("event", "start".into()),
        ("policy", args.policy.display().to_string().into()),
        ("revision", app.engine.policy().revision().into()),
        (
            "upstream",
            args.command.first().cloned().unwrap_or_default().into(),
        ),
        ("listen", shown.to_string().into()),
        ("threads", threads.into()),
    ]);
    watch_policy(&app, &args.policy, policy_text);
    if let Some(path) = &http.keys {
        watch_keys(&app, path);
    }
    Ok((app, loops, listener, grace))
}

/// One event loop: tokio's current-thread scheduler, driven by the thread that runs it.
fn event_loop() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .thread_name("mcp-policy-http")
        .enable_all()
        .build()
}

/// What every event loop shares.
#[derive(Clone)]
struct Loops {
    /// Set once by a signal: stop accepting, let calls in flight finish.
    stop: tokio::sync::watch::Receiver<bool>,
    /// Set once every session is stopped: the other loops may end (a remote upstream's
    /// tasks may live on any of them until then).
    done: tokio::sync::watch::Receiver<bool>,
    /// Connections open, over all loops.
    permits: Arc<tokio::sync::Semaphore>,
    grace: Duration,
}

fn serve(
    app: Arc<App>,
    loops: Vec<tokio::runtime::Runtime>,
    listener: std::net::TcpListener,
    grace: Duration,
) -> u8 {
    let mut loops = loops.into_iter();
    let Some(rt) = loops.next() else {
        eprintln!("mcp-policy proxy: no event loop");
        return UNUSABLE;
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let shared = Loops {
        stop,
        done,
        permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        grace,
    };
    let _ = app.handle.set(rt.handle().clone());
    // The other loops (--threads), each on a thread of its own, accept from the same socket;
    // a connection is served by the loop that accepted it, as nginx's workers do.
    let mut others = Vec::new();
    for (n, rt_n) in (1..).zip(loops) {
        let listener = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("mcp-policy proxy: cannot start event loop {n}: {e}");
                return UNUSABLE;
            }
        };
        let (app, shared) = (Arc::clone(&app), shared.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("mcp-policy-http-{n}"))
            .spawn(move || {
                crate::store::enter_loop(n);
                rt_n.spawn(pace());
                rt_n.block_on(async {
                    let mut done = shared.done.clone();
                    accept_loop(app, listener, shared, false).await;
                    let _ = done.wait_for(|d| *d).await;
                });
                rt_n.shutdown_background();
            });
        match spawned {
            Ok(t) => others.push(t),
            Err(e) => {
                eprintln!("mcp-policy proxy: cannot start event loop {n}: {e}");
                return UNUSABLE;
            }
        }
    }
    rt.spawn(pace());
    spawn_signals(Arc::clone(&stop_tx));
    spawn_timer(&app);
    let code = rt.block_on(accept_loop(Arc::clone(&app), listener, shared, true));
    // The other loops stop too (already told, unless this one ended on an error).
    stop_tx.send_replace(true);
    // Every session's upstream is stopped and reaped, in parallel, while the loops run (a
    // remote upstream's DELETE is a task on the loop that started the session).
    let sessions: Vec<Arc<Session>> = lock(&app.sessions).values().cloned().collect();
    rt.block_on(async {
        let stops: Vec<_> = sessions
            .into_iter()
            .map(|s| {
                let app = Arc::clone(&app);
                tokio::task::spawn_blocking(move || s.stop(&app))
            })
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    });
    let _ = done_tx.send(true);
    for t in others {
        let _ = t.join();
    }
    app.audit.line(vec![("event", "stop".into())]);
    rt.shutdown_background();
    drop(stop_tx);
    code
}

/// Keeps a timer due within the next second, always. tokio wakes its IO driver (an eventfd
/// write, then an extra `epoll_wait`) whenever a timer is set that is due before every timer
/// already set; hyper sets the header-read timeout anew for every request, so without this
/// each call paid that wake-up: about a quarter of the gateway's CPU per call at one caller
/// (docs/PERFORMANCE.md). With it, a new 10 s or 30 s timeout is never the earliest, and the
/// runtime wakes once a second for this timer.
async fn pace() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// Serves one event loop's connections until a stop and its grace are over. `first`: the
/// loop that says so on stderr (once for all loops).
async fn accept_loop(
    app: Arc<App>,
    listener: std::net::TcpListener,
    shared: Loops,
    first: bool,
) -> u8 {
    let Loops {
        mut stop,
        permits,
        grace,
        ..
    } = shared;
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mcp-policy proxy: cannot listen: {e}");
            return UNUSABLE;
        }
    };
    if first && let Ok(addr) = listener.local_addr() {
        eprintln!("mcp-policy proxy: listening on http://{addr}{MCP_PATH}");
    }
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // After SIGTERM: still serving the sessions there are (a client answering an approval
    // needs a new request), no new sessions, until no request is in flight or the grace ends.
    let mut stop_at: Option<Instant> = None;
    let mut unsignalled = false;
    loop {
        if let Some(deadline) = stop_at
            && (app.in_flight.load(Ordering::SeqCst) == 0 || Instant::now() >= deadline)
        {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    // Over the connection limit: closed without an answer.
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = hyper::service::service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(handle(app, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            changed = stop.changed(), if stop_at.is_none() && !unsignalled => {
                if changed.is_err() {
                    // No signal can come any more (the signal thread is gone).
                    unsignalled = true;
                    continue;
                }
                if !*stop.borrow_and_update() {
                    continue;
                }
                if first {
                    eprintln!("mcp-policy proxy: stopping; letting calls in flight finish");
                }
                stop_at = Some(Instant::now() + grace);
                app.stopping.store(true, Ordering::SeqCst);
                let sessions: Vec<Arc<Session>> = lock(&app.sessions).values().cloned().collect();
                for s in &sessions {
                    s.close_get();
                }
            }
            () = tokio::time::sleep(Duration::from_millis(50)), if stop_at.is_some() => {}
        }
    }
    drop(listener);
    if first && app.in_flight.load(Ordering::SeqCst) > 0 {
        eprintln!(
            "mcp-policy proxy: some requests were still open after the shutdown grace period"
        );
    }
    // Idle keep-alive connections close now; an answer being written gets a second.
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
    OK
}

/// Counts a client request until its answer has been sent (or the client went away).
pub struct InFlight(Arc<App>);

impl InFlight {
    fn new(app: &Arc<App>) -> InFlight {
        app.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(app))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn spawn_signals(stop: Arc<tokio::sync::watch::Sender<bool>>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    stop.send_replace(true);
                }
            });
        }
        Err(e) => eprintln!("mcp-policy proxy: cannot handle signals: {e}"),
    }
}

/// Approval timeouts (every 100 ms) and idle sessions (every second).
fn spawn_timer(app: &Arc<App>) {
    let weak = Arc::downgrade(app);
    std::thread::spawn(move || {
        let mut last_reap = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let Some(app) = weak.upgrade() else {
                return;
            };
            let sessions: Vec<Arc<Session>> = lock(&app.sessions).values().cloned().collect();
            for s in &sessions {
                s.expire_parked(RESUME_WINDOW);
                let outputs = lock(&s.gateway).expire(Instant::now());
                if !outputs.is_empty() {
                    s.carry_out(&app, outputs, &[], false, None);
                }
            }
            if last_reap.elapsed() >= Duration::from_secs(1) {
                last_reap = Instant::now();
                for s in sessions {
                    if s.idle_for() >= app.idle && lock(&s.gateway).in_flight() == (0, 0) {
                        eprintln!(
                            "mcp-policy proxy: session {}: idle for {}; ended",
                            s.id,
                            humantime::format_duration(app.idle)
                        );
                        let app = Arc::clone(&app);
                        std::thread::spawn(move || s.stop(&app));
                    }
                }
            }
        }
    });
}

fn watch_policy(app: &Arc<App>, path: &Path, text: String) {
    let weak = Arc::downgrade(app);
    let shown = path.display().to_string();
    let watcher = watch_file(path, text, "policy", move |now| {
        if let Some(app) = weak.upgrade() {
            reload_policy(app.engine.as_ref(), &app.audit, &shown, now);
        }
    });
    // The watcher lives as long as the process.
    std::mem::forget(watcher);
}

fn watch_keys(app: &Arc<App>, path: &Path) {
    let weak = Arc::downgrade(app);
    let shown = path.display().to_string();
    let initial = std::fs::read_to_string(path).unwrap_or_default();
    let watcher = watch_file(path, initial, "keys", move |now| {
        let Some(app) = weak.upgrade() else {
            return;
        };
        let Some(slot) = &app.keys else {
            return;
        };
        match Keys::parse(now) {
            Ok(keys) => {
                let n = keys.len();
                *slot
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
                eprintln!("mcp-policy proxy: {shown}: keys reloaded ({n})");
                app.audit.line(vec![
                    ("event", "keys_reload".into()),
                    ("keys", shown.clone().into()),
                    ("count", n.into()),
                ]);
            }
            Err(e) => {
                eprintln!(
                    "mcp-policy proxy: {shown}: {e}; the change does not load, the running keys stay"
                );
                app.audit.line(vec![
                    ("event", "keys_reload_rejected".into()),
                    ("keys", shown.clone().into()),
                ]);
            }
        }
    });
    std::mem::forget(watcher);
}

// ---------------------------------------------------------------------------------------
// requests

fn plain(status: StatusCode, text: &str) -> Response<ResBody> {
    let mut res = Response::new(full(format!("{text}\n")));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// An HTTP error with a JSON-RPC error body (id null), as the transport spec shows them.
fn refuse(status: StatusCode, code: i64, message: &str) -> Response<ResBody> {
    json_response(
        status,
        Bytes::from(error_response(&Value::Null, code, message).to_string()),
    )
}

/// Decides a client's message where deciding may wait (Redis), and carries it out. With
/// Redis, a `tools/call`'s decision is awaited on this event loop (one round trip, no thread
/// blocked, the gateway not locked meanwhile); anything else is decided on a blocking thread.
/// With a remote upstream, what follows the decision never blocks: it runs here.
///
/// The event loop never waits for a session's gateway: a blocking thread may hold it for a
/// Redis round trip. When it is held, the rest of the work goes to a blocking thread too.
async fn decide_elsewhere(
    app: Arc<App>,
    session: Arc<Session>,
    line: Bytes,
    is_call: bool,
    seq: Option<u64>,
) -> Result<(), ()> {
    let _busy = InFlight::new(&app);
    let mut decided = Decided::Not;
    if let Some(engine) = app.engine.async_engine().filter(|_| is_call) {
        let message = ClientMessage::read(&line);
        let call = try_lock(&session.gateway).and_then(|mut gw| gw.call_to_decide(&message));
        if let Some(call) = call {
            let t0 = std::time::Instant::now();
            let mut decision = engine.evaluate(call.tool, call.args, &call.grant).await;
            let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
            let handed = match try_lock(&session.gateway) {
                Some(mut gateway) => {
                    // The server went away meanwhile: the gateway answers the call without
                    // forwarding it, and its charges are refunded here.
                    let refund = match gateway.is_gone() {
                        true => decision.reservation.take(),
                        false => None,
                    };
                    Ok((gateway.from_client_decided(&message, decision, us), refund))
                }
                None => Err(decision),
            };
            decided = match handed {
                Ok((outputs, refund)) => {
                    // The same message was a call a moment ago: it still is.
                    let mut outputs = outputs.ok_or(())?;
                    if let Some(reservation) = refund {
                        match engine.release(reservation).await {
                            Ok(()) => refunded(&mut outputs),
                            Err(e) => eprintln!("mcp-policy proxy: a refund failed: {e}"),
                        }
                    }
                    Decided::Outputs(outputs)
                }
                Err(decision) => Decided::Decision(Box::new(decision), us),
            };
        }
    }
    let outputs = match decided {
        Decided::Outputs(outputs) if session.nonblocking_upstream() => Some(outputs),
        decided => on_blocking_thread(&app, &session, &line, seq, decided).await?,
    };
    match outputs {
        Some(outputs) => carry_out_here(&app, &session, outputs, line, is_call, seq).await,
        None => Ok(()),
    }
}

/// How far a client's message was decided before it went to a blocking thread.
enum Decided {
    Not,
    /// Decided, and handed to the gateway: what to carry out.
    Outputs(Vec<Output>),
    /// A plain call's decision, made in `us` microseconds, for the gateway to carry on.
    Decision(Box<Decision>, u64),
}

/// Marks a call's audit record refunded (the host refunded it: see `Gateway::is_gone`).
fn refunded(outputs: &mut [Output]) {
    for output in outputs {
        if let Output::Audit(record) = output {
            record.refunded = true;
        }
    }
}

/// The lock when it is free now (a poisoned one is taken as it is), else `None`.
fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Carries out what the gateway said about a client's message, from the request's task. An
/// allowed call goes up from here (no hop through the session's sender) when nothing queued
/// is still on its way; what waits for its answer runs in a task of its own, so that a
/// client that goes away does not cancel the exchange (its answer is still audited, or its
/// charges refunded).
async fn carry_out_here(
    app: &Arc<App>,
    session: &Arc<Session>,
    outputs: Vec<Output>,
    line: Bytes,
    is_call: bool,
    seq: Option<u64>,
) -> Result<(), ()> {
    if is_call && matches!(outputs.as_slice(), [Output::Forward]) && session.remote_idle().is_some()
    {
        let (app, session) = (Arc::clone(app), Arc::clone(session));
        let busy = InFlight::new(&app);
        // It runs here, in order with the session's other messages; if the client goes away
        // first, what is left of it goes on in a task of its own.
        Outliving::new(async move {
            let _busy = busy;
            match session.remote_idle() {
                Some(remote) => remote.send_now(line).await,
                None => session.carry_out_in(&app, outputs, &line, None, true, seq, true),
            }
        })
        .await;
        return Ok(());
    }
    session.carry_out_in(app, outputs, &line, None, true, seq, true);
    Ok(())
}

/// A future polled by the task that awaits it, as any other, except that it outlives that
/// task: dropped before it completed (hyper drops a request's task when its client hangs
/// up), it is handed, as far as it got, to a task of its own on the same event loop and
/// finishes there. A call's exchange so costs no task of its own unless its client leaves,
/// and a client that leaves does not cancel it (its answer is still audited, or its charges
/// refunded).
struct Outliving<F: Future<Output = ()> + Send + 'static> {
    fut: Option<Pin<Box<F>>>,
}

impl<F: Future<Output = ()> + Send + 'static> Outliving<F> {
    fn new(fut: F) -> Self {
        Outliving {
            fut: Some(Box::pin(fut)),
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> Future for Outliving<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if let Some(fut) = self.fut.as_mut() {
            std::task::ready!(fut.as_mut().poll(cx));
            self.fut = None;
        }
        Poll::Ready(())
    }
}

impl<F: Future<Output = ()> + Send + 'static> Drop for Outliving<F> {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(fut);
        }
    }
}

/// On a blocking thread (a Redis round trip, a pipe write): decides a client's message as
/// far as `decided` has not, and carries the outputs out there, unless the upstream is
/// remote (then they are returned, to be carried out by the request's task).
async fn on_blocking_thread(
    app: &Arc<App>,
    session: &Arc<Session>,
    line: &Bytes,
    seq: Option<u64>,
    decided: Decided,
) -> Result<Option<Vec<Output>>, ()> {
    let app = Arc::clone(app);
    let session = Arc::clone(session);
    let line = line.clone();
    tokio::task::spawn_blocking(move || {
        let message = || ClientMessage::read(&line);
        let outputs = match decided {
            Decided::Outputs(outputs) => outputs,
            Decided::Not => {
                lock(&session.gateway).from_client_message(app.engine.as_ref(), message())
            }
            Decided::Decision(mut decision, us) => {
                let mut gateway = lock(&session.gateway);
                let refund = match gateway.is_gone() {
                    true => decision.reservation.take(),
                    false => None,
                };
                let mut outputs = gateway.from_client_decided(&message(), *decision, us)?;
                if let Some(reservation) = refund {
                    match app.engine.release(reservation) {
                        Ok(()) => refunded(&mut outputs),
                        Err(e) => eprintln!("mcp-policy proxy: a refund failed: {e}"),
                    }
                }
                outputs
            }
        };
        if session.nonblocking_upstream() {
            return Some(Some(outputs));
        }
        session.carry_out(&app, outputs, &line, true, seq);
        Some(None)
    })
    .await
    .map_err(|_| ())?
    .ok_or(())
}

fn json_response(status: StatusCode, body: Bytes) -> Response<ResBody> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn unauthorized() -> Response<ResBody> {
    let mut res = refuse(
        StatusCode::UNAUTHORIZED,
        -32001,
        "Unauthorized: a valid credential is required",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"mcp-policy\""),
    );
    res
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<ResBody> {
    let path = req.uri().path();
    if path == HEALTH_PATH && req.method() == Method::GET {
        return if app.stopping.load(Ordering::SeqCst) {
            plain(StatusCode::SERVICE_UNAVAILABLE, "stopping")
        } else {
            plain(StatusCode::OK, "ok")
        };
    }
    if path != MCP_PATH {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    if !app.host_allowed(req.headers()) {
        return refuse(StatusCode::FORBIDDEN, -32000, "Forbidden: Host not allowed");
    }
    if !app.origin_allowed(req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            -32000,
            "Forbidden: Origin not allowed",
        );
    }
    let Some(principal) = app.authenticate(req.headers()) else {
        return unauthorized();
    };
    match *req.method() {
        Method::POST => post(app, req, principal).await,
        Method::GET => get(app, req, principal).await,
        Method::DELETE => delete(app, req, principal).await,
        _ => {
            let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            res
        }
    }
}

/// The host part of a Host header or an origin's authority (`HOST[:PORT]`,
/// `[IPv6][:PORT]`), without the port, in the case it was written: compare it with
/// [`str::eq_ignore_ascii_case`].
fn host_name(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    a.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(a, |(host, _)| host)
}

fn is_loopback_name(host: &str) -> bool {
    ["localhost", "127.0.0.1", "::1"]
        .iter()
        .any(|name| host.eq_ignore_ascii_case(name))
}

impl App {
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let full_host = host.trim();
        let name = host_name(host);
        (self.loopback && is_loopback_name(name))
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(full_host) || h.eq_ignore_ascii_case(name))
            || self.allow_any_host
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Not a browser: DNS rebinding needs one.
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        self.loopback && authority.is_some_and(|a| is_loopback_name(host_name(a)))
    }

    fn authenticate(&self, headers: &HeaderMap) -> Option<Principal> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        if let (Some(slot), Some(token)) = (&self.keys, bearer) {
            let keys = Arc::clone(
                &slot
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let (index, key) = keys.lookup(token)?;
            let name = Arc::clone(&key.principal);
            return Some(Principal {
                name,
                who: Who::Key(keys, index),
            });
        }
        if let Some(name) = &self.trusted_header {
            let value = headers.get(name)?.to_str().ok()?.trim();
            if value.is_empty() {
                return None;
            }
            return Some(Principal {
                name: format!("header:{value}").into(),
                who: Who::Header(value.to_owned()),
            });
        }
        if self.keys.is_some() {
            return None;
        }
        // No credentials configured (loopback only): the caller is --grant.
        Some(Principal {
            name: "anonymous".into(),
            who: Who::Anonymous,
        })
    }

    /// The grant a caller's calls are decided for: the key's (or the header's, or `--grant`)
    /// id, with the `--attr` defaults under the key's own attributes.
    fn grant_of(&self, principal: &Principal) -> Grant {
        let mut grant = match &principal.who {
            Who::Key(keys, index) => match keys.get(*index) {
                Some(key) => {
                    let mut grant = Grant::new(key.grant.clone());
                    grant.attrs.extend(self.default_grant.attrs.clone());
                    grant.attrs.extend(key.attrs.clone());
                    return grant;
                }
                // Not reachable: the index came from these very keys.
                None => Grant::new(self.default_grant.id.clone()),
            },
            Who::Header(value) => Grant::new(value.clone()),
            Who::Anonymous => Grant::new(self.default_grant.id.clone()),
        };
        grant.attrs.extend(self.default_grant.attrs.clone());
        grant
    }

    /// The session a request names, if it exists and belongs to this caller.
    fn session_of(
        &self,
        headers: &HeaderMap,
        principal: &Principal,
    ) -> Result<Option<Arc<Session>>, Response<ResBody>> {
        let Some(id) = headers.get(&SESSION_NAME) else {
            return Ok(None);
        };
        let id = id.to_str().unwrap_or_default();
        let session = lock(&self.sessions).get(id).cloned();
        match session {
            Some(s)
                if *s.principal == *principal.name
                    && !s.modern
                    && !s.closed.load(Ordering::SeqCst) =>
            {
                s.touch();
                Ok(Some(s))
            }
            // Another caller's session is as unknown as a session that never was.
            _ => Err(refuse(StatusCode::NOT_FOUND, -32001, "Session not found")),
        }
    }
}

fn accepts(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|v| {
            v.split(|b| *b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii()
        })
        .any(|v| v.eq_ignore_ascii_case(kind.as_bytes()) || v == b"*/*")
}

async fn read_body(app: &App, req: Request<Incoming>) -> Result<Bytes, Response<ResBody>> {
    let too_big = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            PARSE_ERROR,
            &format!(
                "Parse error: the message is over this gateway's size limit of {} bytes",
                app.max_message
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_message as u64) {
        return Err(too_big());
    }
    let limited = Limited::new(req.into_body(), app.max_message);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            -32000,
            "the request body was not received in time",
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_big()),
        Ok(Err(_)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            -32000,
            "the request body could not be read",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn post(app: Arc<App>, req: Request<Incoming>, principal: Principal) -> Response<ResBody> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            -32000,
            "Content-Type must be application/json",
        );
    }
    let sse_ok = accepts(req.headers(), "text/event-stream");
    let named = match app.session_of(req.headers(), &principal) {
        Ok(s) => s,
        Err(res) => return res,
    };
    // A request without a session that names a protocol version without the handshake.
    let modern = named.is_none()
        && req
            .headers()
            .get(&PROTOCOL_NAME)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.is_empty() && !HANDSHAKE_VERSIONS.contains(&v));
    let routing = if modern {
        routing_headers(req.headers())
    } else {
        Vec::new()
    };
    let body = match read_body(&app, req).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let body = one_line(body);
    // Read once: a plain tool call's routing fields come from what the core read.
    let first = ClientMessage::read(&body);
    let mut kind = Kind::of_client(&first, &body);
    // A session-less caller's request, renamed for the shared upstream.
    let mut renamed: Option<Bytes> = None;
    let mut original = None;
    let (session, created) = match (named, &kind) {
        (_, Kind::Invalid) => {
            // Answered by the core's rules (parse error, batch refused), without a session.
            let outputs =
                mcp_policy::mcp::Gateway::new(app.grant_of(&principal), GatewayOptions::default())
                    .from_client(app.engine.as_ref(), &body);
            let answer = outputs.into_iter().find_map(|o| match o {
                Output::ToClient(v) => Some(v),
                _ => None,
            });
            return match answer {
                Some(v) => json_response(StatusCode::BAD_REQUEST, Bytes::from(v.to_string())),
                None => refuse(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error"),
            };
        }
        (Some(s), _) => (s, false),
        (None, Kind::Notification { .. }) if modern => {
            // No notification from a 2026-07-28 client acts on a session-less exchange
            // (cancelling is closing the answer's stream): acknowledged, not forwarded.
            let mut res = Response::new(empty());
            *res.status_mut() = StatusCode::ACCEPTED;
            return res;
        }
        (None, Kind::Request { method, .. }) if modern && method != "initialize" => {
            let mut message: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => return refuse(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error"),
            };
            if let Err(why) = check_routing(&message, &routing) {
                return refuse(StatusCode::BAD_REQUEST, HEADER_MISMATCH, &why);
            }
            let session = match modern_session(&app, &principal).await {
                Ok(s) => s,
                Err(res) => return res,
            };
            // Callers' ids may collide on the shared upstream: each request gets its own.
            let fresh = session.fresh_id();
            let Some(slot) = message.as_object_mut().and_then(|m| m.get_mut("id")) else {
                return refuse(StatusCode::BAD_REQUEST, -32600, "Invalid Request");
            };
            original = Some(std::mem::replace(slot, fresh.clone()));
            let line = Bytes::from(message.to_string());
            kind = Kind::of(&line);
            renamed = Some(line);
            session.route(&fresh.to_string(), routing);
            (session, false)
        }
        (None, Kind::Request { method, .. }) if method == "initialize" => {
            if app.stopping.load(Ordering::SeqCst) {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    -32000,
                    "the gateway is stopping",
                );
            }
            if lock(&app.sessions).len() >= app.max_sessions {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    -32000,
                    "too many sessions; try again later",
                );
            }
            let app2 = Arc::clone(&app);
            let name = principal.name.to_string();
            let grant = app.grant_of(&principal);
            let started =
                tokio::task::spawn_blocking(move || Session::start(&app2, name, grant, false))
                    .await;
            match started {
                Ok(Ok(s)) => (s, true),
                Ok(Err(e)) => {
                    eprintln!("mcp-policy proxy: {e}");
                    return refuse(
                        StatusCode::BAD_GATEWAY,
                        INTERNAL_ERROR,
                        "the MCP server could not be started",
                    );
                }
                Err(_) => {
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        INTERNAL_ERROR,
                        "internal error",
                    );
                }
            }
        }
        (None, _) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                -32000,
                "Bad Request: Mcp-Session-Id header is required",
            );
        }
    };

    let request = match &kind {
        Kind::Request { id, progress, .. } => {
            let (tx, rx) = mpsc::channel(STREAM_QUEUE);
            let seq = session.open_post(id, progress.as_deref(), tx, original);
            Some((seq, rx))
        }
        _ => None,
    };
    let seq = request.as_ref().map(|(seq, _)| *seq);
    let guard = request.is_some().then(|| InFlight::new(&app));
    let line = renamed.clone().unwrap_or_else(|| body.clone());
    let is_call = matches!(&kind, Kind::Request { method, .. } if method == "tools/call");
    let done = if app.inline_store && session.nonblocking_upstream() {
        // Nothing in the decision can block (the in-memory store, a remote upstream's
        // queue): it runs right here. The message was read before the lock: the session's
        // other messages wait only for the decision.
        let message = match &renamed {
            Some(line) => ClientMessage::read(line),
            None => first,
        };
        let outputs = lock(&session.gateway).from_client_message(app.engine.as_ref(), message);
        carry_out_here(&app, &session, outputs, line, is_call, seq).await
    } else {
        // In a task of its own: a client that goes away while the decision is awaited or
        // made loses nothing (the call decided is carried out, audited or refunded).
        let (app, session) = (Arc::clone(&app), Arc::clone(&session));
        tokio::spawn(decide_elsewhere(app, session, line, is_call, seq))
            .await
            .map_err(|_| ())
            .and_then(|done| done)
    };
    if done.is_err() {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR,
            "internal error",
        );
    }
    let session_header = created
        .then(|| HeaderValue::from_str(&session.id).ok())
        .flatten();
    let Some((_, mut rx)) = request else {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::ACCEPTED;
        return res;
    };
    let mut res = match rx.recv().await {
        Some(Msg::Final(answer)) => json_response(StatusCode::OK, answer),
        Some(Msg::Other(first)) if sse_ok => {
            let mut sse = Sse::new(Some(first), rx, None, guard);
            if let Some(stream) = seq {
                sse = sse.resumable(Resumable {
                    session: Arc::downgrade(&session),
                    stream,
                });
            }
            let mut res = Response::new(BodyExt::boxed(sse));
            sse_headers(&mut res);
            res
        }
        Some(Msg::Other(_)) => {
            // A client that takes only JSON gets the answer alone.
            let mut answer = None;
            while let Some(msg) = rx.recv().await {
                if let Msg::Final(b) = msg {
                    answer = Some(b);
                    break;
                }
            }
            match answer {
                Some(b) => json_response(StatusCode::OK, b),
                None => refuse(StatusCode::BAD_GATEWAY, INTERNAL_ERROR, "no answer"),
            }
        }
        None => refuse(
            StatusCode::BAD_GATEWAY,
            INTERNAL_ERROR,
            "the session ended before the answer",
        ),
    };
    if let Some(value) = session_header {
        res.headers_mut().insert(SESSION_NAME, value);
    }
    res
}

/// The header a client names its protocol version in.
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
/// The versions that begin with an `initialize` handshake and use sessions.
const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// JSON-RPC error for routing headers that disagree with the message (2026-07-28).
const HEADER_MISMATCH: i64 = -32020;

/// A session-less request's routing headers, passed on to a remote upstream.
fn routing_headers(headers: &HeaderMap) -> Vec<(header::HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == PROTOCOL_HEADER
                || n == "mcp-method"
                || n == "mcp-name"
                || n.starts_with("mcp-param-")
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// The routing headers must say what the message says: the policy decides on the message, so
/// nothing downstream may route on a different tool.
fn check_routing(
    message: &Value,
    routing: &[(header::HeaderName, HeaderValue)],
) -> Result<(), String> {
    let get = |name: &str| {
        let mut values = routing.iter().filter(|(n, _)| n.as_str() == name);
        let first = values.next().map(|(_, v)| v.to_str().unwrap_or("\u{fffd}"));
        (first, values.next().is_some())
    };
    let params = message.get("params");
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(mcp_policy::mcp::META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    for name in [PROTOCOL_HEADER, "mcp-method", "mcp-name"] {
        if get(name).1 {
            return Err(format!("{name} header given more than once"));
        }
    }
    if let (Some(header), Some(version)) = (get(PROTOCOL_HEADER).0, version)
        && header != version
    {
        return Err(format!(
            "{PROTOCOL_HEADER} header does not match the request's protocol version"
        ));
    }
    if let Some(header) = get("mcp-method").0
        && header != method
    {
        return Err("mcp-method header does not match the request's method".into());
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")),
        "resources/read" => params.and_then(|p| p.get("uri")),
        _ => None,
    }
    .and_then(Value::as_str);
    match (get("mcp-name").0, named) {
        (Some(header), Some(name)) if header != header_value(name) => {
            Err("mcp-name header does not match the request's name".into())
        }
        _ => Ok(()),
    }
}

/// A value as the `Mcp-Name` header carries it: as it is when it is printable ASCII without
/// edge spaces, else `=?base64?…?=`.
fn header_value(value: &str) -> String {
    use base64::Engine as _;
    let printable = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    let sentinel = value.starts_with("=?base64?") && value.ends_with("?=");
    if printable && value == value.trim() && !sentinel {
        value.to_owned()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

/// The caller's session for session-less requests: one upstream per caller, started on the
/// first such request (one start at a time, so that concurrent first requests share it),
/// ended like any session when idle.
async fn modern_session(
    app: &Arc<App>,
    principal: &Principal,
) -> Result<Arc<Session>, Response<ResBody>> {
    let current = |app: &App| {
        lock(&app.modern)
            .get(&*principal.name)
            .filter(|s| !s.closed.load(Ordering::SeqCst))
            .cloned()
    };
    if let Some(s) = current(app) {
        s.touch();
        return Ok(s);
    }
    let _starting = app.modern_start.lock().await;
    if let Some(s) = current(app) {
        s.touch();
        return Ok(s);
    }
    if app.stopping.load(Ordering::SeqCst) {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            -32000,
            "the gateway is stopping",
        ));
    }
    if lock(&app.sessions).len() >= app.max_sessions {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            -32000,
            "too many sessions; try again later",
        ));
    }
    let app2 = Arc::clone(app);
    let name = principal.name.to_string();
    let grant = app.grant_of(principal);
    let started = tokio::task::spawn_blocking(move || Session::start(&app2, name, grant, true))
        .await
        .map_err(|_| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR,
                "internal error",
            )
        })?
        .map_err(|e| {
            eprintln!("mcp-policy proxy: {e}");
            refuse(
                StatusCode::BAD_GATEWAY,
                INTERNAL_ERROR,
                "the MCP server could not be started",
            )
        })?;
    lock(&app.modern).insert(principal.name.to_string(), Arc::clone(&started));
    Ok(started)
}

fn sse_headers(res: &mut Response<ResBody>) {
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

async fn get(app: Arc<App>, req: Request<Incoming>, principal: Principal) -> Response<ResBody> {
    if app.stopping.load(Ordering::SeqCst) {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            -32000,
            "the gateway is stopping",
        );
    }
    if !accepts(req.headers(), "text/event-stream") {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            -32000,
            "Not Acceptable: the client must accept text/event-stream",
        );
    }
    let session = match app.session_of(req.headers(), &principal) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                -32000,
                "Bad Request: Mcp-Session-Id header is required",
            );
        }
        Err(res) => return res,
    };
    if let Some(last) = req.headers().get("last-event-id") {
        return resume(&session, last).await;
    }
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    session.open_get(tx);
    let mut res = Response::new(BodyExt::boxed(Sse::new(None, rx, Some(KEEPALIVE), None)));
    sse_headers(&mut res);
    res
}

/// A GET with `Last-Event-ID: STREAM-N`: the POST stream STREAM, whose client went away
/// before its answer, taken up after its event N (the events after it are sent again, then
/// the rest as it comes).
async fn resume(session: &Arc<Session>, last: &HeaderValue) -> Response<ResBody> {
    let parsed = last
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once('-'))
        .and_then(|(s, n)| Some((s.parse::<u64>().ok()?, n.parse::<u64>().ok()?)));
    let resumed = match parsed.and_then(|(stream, _)| session.unpark(stream)) {
        Some(parked) => parked.resume(parsed.map_or(0, |(_, n)| n)).await,
        None => None,
    };
    let (Some(resumed), Some((stream, _))) = (resumed, parsed) else {
        return refuse(
            StatusCode::NOT_FOUND,
            -32000,
            "Not Found: no stream to resume for this Last-Event-ID",
        );
    };
    let sse = Sse::resumed(
        resumed,
        Resumable {
            session: Arc::downgrade(session),
            stream,
        },
        KEEPALIVE,
    );
    let mut res = Response::new(BodyExt::boxed(sse));
    sse_headers(&mut res);
    res
}

async fn delete(app: Arc<App>, req: Request<Incoming>, principal: Principal) -> Response<ResBody> {
    let session = match app.session_of(req.headers(), &principal) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                -32000,
                "Bad Request: Mcp-Session-Id header is required",
            );
        }
        Err(res) => return res,
    };
    let stopper = Arc::clone(&app);
    // The upstream may take a few seconds to stop; the client need not wait for that.
    std::thread::spawn(move || session.stop(&stopper));
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `Outliving` future dropped half-way finishes in a task of its own; one polled to
    /// its end runs once, in the task that awaited it.
    #[test]
    fn outliving_futures_finish_when_their_task_is_dropped() {
        let rt = event_loop().expect("a runtime");
        rt.block_on(async {
            let (go, wait) = tokio::sync::oneshot::channel::<()>();
            let (done, finished) = tokio::sync::oneshot::channel::<&str>();
            let waiting = tokio::spawn(Outliving::new(async move {
                let _ = wait.await;
                let _ = done.send("finished");
            }));
            tokio::task::yield_now().await;
            // The task that awaits it goes away (as hyper drops a request's task).
            waiting.abort();
            let _ = waiting.await;
            go.send(()).expect("the future is still alive");
            let got = tokio::time::timeout(Duration::from_secs(5), finished).await;
            assert_eq!(got.ok().and_then(Result::ok), Some("finished"));

            // Polled to its end, it leaves no task behind (a finished future handed on
            // would be a task alive until polled).
            tokio::task::yield_now().await;
            let tasks = || {
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
            };
            let before = tasks();
            let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counted = Arc::clone(&runs);
            Outliving::new(async move {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .await;
            assert_eq!(tasks(), before);
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("LocalHost:8080"), "LocalHost");
        assert_eq!(host_name(" [::1]:80"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example:1"), "evil.example");
        assert!(is_loopback_name(host_name("LocalHost:8080")));
        assert!(is_loopback_name(host_name("localhost")));
        assert!(!is_loopback_name(host_name("localhost.evil.example")));
        assert!(!is_loopback_name(host_name("[::2]:80")));
    }

    #[test]
    fn accept_lists() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream;q=0.9"),
        );
        assert!(accepts(&h, "text/event-stream"));
        assert!(accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts(&h, "text/event-stream"));
    }
}
