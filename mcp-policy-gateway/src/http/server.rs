//! The server: event loops (`threads`, default one per CPU), each a Tokio current-thread
//! runtime on a thread of its own that accepts from the one listening socket and serves the
//! connections it accepted (as nginx's workers do); the connection limit; the timer
//! (approval timeouts, idle sessions); and shutdown — on a stop signal, no new sessions,
//! calls in flight let finish for the grace period, every session's upstream stopped.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcp_policy::Decider;

use crate::error::Error;
use crate::host::context::Context;
use crate::host::sync::lock;
use crate::host::{signals, timer};
use crate::http::app::App;
use crate::http::config::HttpOptions;
use crate::http::guard::{self, Guard};
use crate::http::protocol::MCP_PATH;
use crate::http::registry::Registry;
use crate::http::routes;
use crate::keys::Keys;
use crate::observe::MetricsAt;
use crate::observe::endpoint::METRICS_PATH;
use crate::options::{HostOptions, read_policy};
use crate::store;

/// How long a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a POST stream whose client went away before the answer can be resumed.
const RESUME_WINDOW: Duration = Duration::from_secs(60);
/// Open client connections at most; more are closed at once.
const MAX_CONNECTIONS: usize = 4096;

/// Runs the HTTP gateway until a stop signal and its grace period are over (see
/// [`crate::host::signals`]); every session's upstream is stopped before it returns. An
/// error when it cannot start (an option, the policy, the keys file, the store, the
/// address).
pub fn run(host: &HostOptions, http: &HttpOptions) -> Result<(), Error> {
    let Setup {
        app,
        loops,
        listener,
        watchers,
    } = setup(host, http)?;
    let served = serve(app, loops, listener, http.shutdown_grace);
    drop(watchers);
    served
}

/// A gateway ready to serve.
struct Setup {
    app: Arc<App>,
    loops: Vec<tokio::runtime::Runtime>,
    listener: std::net::TcpListener,
    /// The policy's and the keys file's watchers, kept while the gateway serves.
    watchers: Vec<notify::RecommendedWatcher>,
}

fn setup(host: &HostOptions, http: &HttpOptions) -> Result<Setup, Error> {
    let checked = http.check(host)?;
    let (policy, policy_text) = read_policy(&host.policy)?;
    let keys = match &http.keys {
        None => None,
        Some(path) => Some(Keys::load(path).map_err(Error::Io)?),
    };
    // The event loops; each drives a Redis connection of its own (see
    // `RedisGate::connect_on`).
    let loops = (0..checked.threads)
        .map(|_| event_loop())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::Io(format!("cannot start the async runtime: {e}")))?;
    let ctx = Arc::new(Context::open(host, policy, &loops)?);
    let listen = &http.listen;
    let listener = std::net::TcpListener::bind(checked.addr)
        .map_err(|e| Error::Io(format!("--listen {listen}: cannot bind: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Io(format!("--listen {listen}: {e}")))?;
    let guard = Guard::new(
        host.grant.clone(),
        keys,
        checked.trusted_header,
        &http.allowed_hosts,
        &http.allowed_origins,
        checked.loopback,
    );
    if guard.allows_any_host() {
        eprintln!(
            "mcp-policy proxy: warning: no --allowed-host given; any Host header is accepted"
        );
    }
    let app = Arc::new(App {
        registry: Arc::new(Registry::new(
            Arc::clone(&ctx),
            checked.upstream,
            http.max_sessions,
        )),
        ctx,
        guard,
        max_message: host.max_message,
        idle: http.session_idle,
        stopping: AtomicBool::new(false),
        in_flight: Arc::new(AtomicUsize::new(0)),
        metrics_at: host.metrics.clone(),
    });
    let shown = listener.local_addr().map_or(checked.addr, |a| a);
    app.ctx.audit.start(
        &host.policy,
        app.ctx.engine.policy().revision(),
        host.command.first().map_or("", String::as_str),
        vec![
            ("listen", shown.to_string().into()),
            ("threads", checked.threads.into()),
        ],
    );
    let mut watchers: Vec<notify::RecommendedWatcher> = Vec::new();
    watchers.extend(app.ctx.watch_policy(&host.policy, policy_text));
    if let Some(path) = &http.keys {
        watchers.extend(guard::watch_keys(&app, path, |app| {
            (&app.guard, &app.ctx.audit, app.ctx.metrics.as_deref())
        }));
    }
    Ok(Setup {
        app,
        loops,
        listener,
        watchers,
    })
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
) -> Result<(), Error> {
    let mut loops = loops.into_iter();
    let Some(rt) = loops.next() else {
        return Err(Error::Io("no event loop".into()));
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
    let _ = app.registry.handle.set(rt.handle().clone());
    // The other loops (--threads), each on a thread of its own, accept from the same socket;
    // a connection is served by the loop that accepted it, as nginx's workers do.
    let mut others = Vec::new();
    for (n, rt_n) in (1..).zip(loops) {
        let listener = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => return Err(Error::Io(format!("cannot start event loop {n}: {e}"))),
        };
        let (app, shared) = (Arc::clone(&app), shared.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("mcp-policy-http-{n}"))
            .spawn(move || {
                store::enter_loop(n);
                rt_n.spawn(pace());
                rt_n.block_on(async {
                    let mut done = shared.done.clone();
                    if let Err(e) = accept_loop(app, listener, shared, false).await {
                        eprintln!("mcp-policy proxy: event loop {n}: {e}");
                    }
                    let _ = done.wait_for(|d| *d).await;
                });
                rt_n.shutdown_background();
            });
        match spawned {
            Ok(t) => others.push(t),
            Err(e) => return Err(Error::Io(format!("cannot start event loop {n}: {e}"))),
        }
    }
    rt.spawn(pace());
    let signalled = Arc::clone(&stop_tx);
    signals::on_stop(move || {
        signalled.send_replace(true);
    });
    spawn_timer(&app);
    let code = rt.block_on(accept_loop(Arc::clone(&app), listener, shared, true));
    // The other loops stop too (already told, unless this one ended on an error).
    stop_tx.send_replace(true);
    // Every session's upstream is stopped and reaped, in parallel, while the loops run (a
    // remote upstream's DELETE is a task on the loop that started the session).
    let sessions = app.registry.all();
    rt.block_on(async {
        let stops: Vec<_> = sessions
            .into_iter()
            .map(|s| {
                let registry = Arc::clone(&app.registry);
                tokio::task::spawn_blocking(move || registry.end(&s))
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
    app.ctx.audit.line(vec![("event", "stop".into())]);
    // Every line queued is written before the process ends.
    app.ctx.audit.close();
    // The spans of the last calls are exported before the process ends.
    app.ctx.stop_traces();
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
) -> Result<(), Error> {
    let Loops {
        mut stop,
        permits,
        grace,
        ..
    } = shared;
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return Err(Error::Io(format!("cannot listen: {e}"))),
    };
    if first && let Ok(addr) = listener.local_addr() {
        eprintln!("mcp-policy proxy: listening on http://{addr}{MCP_PATH}");
        if app.metrics_at == Some(MetricsAt::Gateway) {
            eprintln!(
                "mcp-policy proxy: metrics at http://{addr}{METRICS_PATH} (to this machine only)"
            );
        }
    }
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // After SIGTERM: still serving the sessions there are (a client answering an approval
    // needs a new request), no new sessions, until no request is in flight or the grace ends.
    let mut stop_at: Option<Instant> = None;
    let mut unsignalled = false;
    loop {
        if let Some(deadline) = stop_at
            && (app.requests_in_flight() == 0 || Instant::now() >= deadline)
        {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
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
                let loopback_peer = peer.ip().is_loopback();
                let service = hyper::service::service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(routes::handle(app, req, loopback_peer).await) }
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
                for s in &app.registry.all() {
                    s.close_get();
                }
            }
            () = tokio::time::sleep(Duration::from_millis(50)), if stop_at.is_some() => {}
        }
    }
    drop(listener);
    if first && app.requests_in_flight() > 0 {
        eprintln!(
            "mcp-policy proxy: some requests were still open after the shutdown grace period"
        );
    }
    // Idle keep-alive connections close now; an answer being written gets a second.
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
    Ok(())
}

/// Approval timeouts and `list_changed` after a policy reload (every 100 ms), and idle
/// sessions (every second).
fn spawn_timer(app: &Arc<App>) {
    let mut last_reap = Instant::now();
    timer::every_tick(app, move |app| {
        let sessions = app.registry.all();
        for s in &sessions {
            s.expire_parked(RESUME_WINDOW);
            let outputs = {
                let mut gateway = lock(&s.gateway);
                let mut outputs = gateway.expire(Instant::now());
                outputs.extend(gateway.after_reload(app.ctx.engine.as_ref()));
                outputs
            };
            if !outputs.is_empty() {
                s.carry_out(&app.ctx, outputs, &[], false, None);
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
                    if app.registry.detach(&s) {
                        let registry = Arc::clone(&app.registry);
                        std::thread::spawn(move || registry.stop(&s));
                    }
                }
            }
        }
    });
}
