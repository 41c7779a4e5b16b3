//! `--store`: where counters and approvals live. `memory` keeps them in this process; a Redis
//! URL (`redis://`, `rediss://`, `unix://`, `redis+unix://`) shares them with every other
//! process on the same Redis (and prefix).
//!
//! The command's threads are plain threads; the Redis store is async, so calls to it run on a
//! small Tokio runtime owned here and are awaited with `block_on` (each call is one round trip,
//! bounded by the store's timeout). Choosing the store is written once, here ([`open`]), for
//! both hosts and for the command's `eval` and `approve`.

use std::sync::Arc;

use mcp_policy::Decider;
use mcp_policy::subject::Subject;
use mcp_policy::{
    AsyncCounterStore, AsyncEngine, Decision, Engine, Grant, HostError, Outcome, Plan, Policy,
    Reservation, StoreError, SystemClock,
};
use mcp_policy_redis::{Options, RedisStore, TimeSource};
use serde_json::Value;

use crate::error::Error;
use crate::observe::Metrics;

/// The environment variable that sets the Redis key prefix (default `mcp-policy`).
pub const PREFIX_ENV: &str = "MCP_POLICY_REDIS_PREFIX";

/// A parsed `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// In this process only.
    Memory,
    /// A Redis URL.
    Redis(String),
}

impl StoreUrl {
    /// Parses `memory` or a Redis URL.
    ///
    /// ```
    /// use mcp_policy_gateway::StoreUrl;
    /// assert_eq!(StoreUrl::parse("memory"), Ok(StoreUrl::Memory));
    /// assert!(matches!(StoreUrl::parse("redis://127.0.0.1:6379/0"), Ok(StoreUrl::Redis(_))));
    /// // The error never repeats a password.
    /// assert!(!StoreUrl::parse("postgres://u:secret@h/db").unwrap_err().contains("secret"));
    /// ```
    pub fn parse(text: &str) -> Result<StoreUrl, String> {
        if text == "memory" {
            return Ok(StoreUrl::Memory);
        }
        let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"];
        if schemes.iter().any(|s| text.starts_with(s)) {
            return Ok(StoreUrl::Redis(text.to_owned()));
        }
        Err(format!(
            "unknown store `{}`; expected `memory` or a Redis URL (redis://, rediss://, unix://)",
            redact(text)
        ))
    }
}

/// The URL with any password replaced by `***`, for messages that a client or a log may see.
///
/// ```
/// use mcp_policy_gateway::store::redact;
/// assert_eq!(redact("redis://u:secret@h:6379/0"), "redis://u:***@h:6379/0");
/// assert_eq!(redact("redis://h:6379"), "redis://h:6379");
/// ```
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(n) => rest.split_at(n),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if user.is_empty() {
                format!("{scheme}://***@{host}{path}")
            } else {
                format!("{scheme}://{user}:***@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

/// Redis options from the environment: the prefix, and the clock the windows are judged by.
pub fn options(time: TimeSource) -> Options {
    let mut options = Options::new().time(time);
    if let Ok(prefix) = std::env::var(PREFIX_ENV)
        && !prefix.is_empty()
    {
        options = options.prefix(prefix);
    }
    options
}

/// A Tokio runtime for the store's calls.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Connects to Redis (fails when it cannot be reached), and prints the warning when its
/// eviction policy could drop live counters.
pub fn connect(
    rt: &tokio::runtime::Runtime,
    url: &str,
    time: TimeSource,
) -> Result<RedisStore, String> {
    rt.block_on(async {
        let store = RedisStore::connect(url, options(time))
            .await
            .map_err(|e| format!("--store {}: {e}", redact(url)))?;
        if let Some(warning) = store.eviction_warning().await {
            eprintln!("mcp-policy: warning: {warning}");
        }
        Ok(store)
    })
}

/// What a host decides with: the engine over the store `--store` chose. One type for both
/// stores (no trait of its own: it is a [`Decider`], plus what a host needs beside deciding).
pub enum Gate {
    /// The in-memory store, in this process.
    Memory(Engine),
    /// Redis, shared with other processes.
    Redis(RedisGate),
}

impl Gate {
    /// Whether the store answers without blocking (memory): a host may then decide on its
    /// event loop.
    pub fn answers_inline(&self) -> bool {
        matches!(self, Gate::Memory(_))
    }

    /// Swaps the policy in (counters kept where window and reset are unchanged).
    pub fn reload(&self, policy: Policy) {
        match self {
            Gate::Memory(engine) => engine.reload(policy),
            Gate::Redis(gate) => gate.engine.reload(policy),
        }
    }

    /// The engine to await a decision on, when the store is reached asynchronously (Redis,
    /// with a connection per event loop): an async host decides there instead of blocking a
    /// thread on [`Decider::evaluate`].
    pub fn async_engine(&self) -> Option<&AsyncEngine<SystemClock, Connections>> {
        match self {
            Gate::Redis(gate) if !gate.engine.store().on_loops.is_empty() => Some(&gate.engine),
            _ => None,
        }
    }
}

impl Decider for Gate {
    fn decide(&self, subject: Subject<'_>, args: &Value, grant: &Grant) -> Decision {
        match self {
            Gate::Memory(engine) => engine.decide(subject, args, grant),
            Gate::Redis(gate) => gate.decide(subject, args, grant),
        }
    }
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError> {
        match self {
            Gate::Memory(engine) => engine.record_approval(approval_id),
            Gate::Redis(gate) => gate.record_approval(approval_id),
        }
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        match self {
            Gate::Memory(engine) => engine.release(reservation),
            Gate::Redis(gate) => gate.release(reservation),
        }
    }
    fn policy(&self) -> Arc<Policy> {
        match self {
            Gate::Memory(engine) => engine.policy(),
            Gate::Redis(gate) => gate.policy(),
        }
    }
    fn trusts_annotations(&self) -> bool {
        match self {
            Gate::Memory(engine) => Decider::trusts_annotations(engine),
            Gate::Redis(gate) => gate.policy().trusts_annotations(),
        }
    }
    fn shares_approvals(&self) -> bool {
        match self {
            Gate::Memory(_) => false,
            Gate::Redis(gate) => gate.shares_approvals(),
        }
    }
}

tokio::task_local! {
    /// Set while a plain thread blocks on the gate's own runtime: the store calls made then
    /// go over the gate's own connection.
    static OWN_RUNTIME: ();
}

thread_local! {
    /// The index of the event loop this thread drives (see [`enter_loop`]).
    static EVENT_LOOP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the calling thread as the one that drives event loop `index` (the index of its
/// runtime in [`RedisGate::connect_on`]'s list): decisions awaited on this thread then go
/// over that loop's own connection. A thread never marked counts as loop 0.
pub fn enter_loop(index: usize) {
    EVENT_LOOP.with(|n| n.set(index));
}

/// The Redis store over several connections: one driven by the gate's own runtime, for calls
/// from plain threads that block on it, and one for each event loop of the host, driven by
/// that loop, for decisions awaited there. None ever waits for another's driver: a plain
/// thread that blocks (holding a session's lock, say) needs nothing from an event loop, and a
/// decision awaited on an event loop wakes no other thread.
pub struct Connections {
    own: RedisStore,
    /// By event loop index.
    on_loops: Vec<RedisStore>,
    /// Told each operation's outcome and duration, when metrics are on.
    metrics: Option<Arc<Metrics>>,
}

impl Connections {
    /// The connection for the task polling now. Called when a store call is first polled,
    /// not when its future is made (the methods below are `async fn`): the futures of
    /// `AsyncEngine` are made before `RedisGate::block_on` enters its scope.
    fn pick(&self) -> &RedisStore {
        if OWN_RUNTIME.try_with(|()| ()).is_ok() {
            return &self.own;
        }
        let index = EVENT_LOOP.with(std::cell::Cell::get);
        match self.on_loops.get(index).or(self.on_loops.first()) {
            Some(on_loop) => on_loop,
            None => &self.own,
        }
    }
}

impl AsyncCounterStore for Connections {
    async fn apply(&self, plan: &Plan<'_>) -> Result<Outcome, StoreError> {
        let Some(metrics) = &self.metrics else {
            return self.pick().apply(plan).await;
        };
        let t0 = std::time::Instant::now();
        let outcome = self.pick().apply(plan).await;
        metrics.store_operation("apply", outcome.is_ok(), t0.elapsed());
        outcome
    }
    async fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        let Some(metrics) = &self.metrics else {
            return self.pick().release(reservation).await;
        };
        let t0 = std::time::Instant::now();
        let done = self.pick().release(reservation).await;
        metrics.store_operation("release", done.is_ok(), t0.elapsed());
        done
    }
    async fn record_approval(&self, id: &str, now_ms: u64) -> Result<(), HostError> {
        let Some(metrics) = &self.metrics else {
            return AsyncCounterStore::record_approval(self.pick(), id, now_ms).await;
        };
        let t0 = std::time::Instant::now();
        let done = AsyncCounterStore::record_approval(self.pick(), id, now_ms).await;
        // An unknown or expired approval is an answer, not a store failure.
        let ok = !matches!(done, Err(HostError::Store(_)));
        metrics.store_operation("approve", ok, t0.elapsed());
        done
    }
}

/// An engine over the Redis store, driven from plain threads and from an event loop.
pub struct RedisGate {
    rt: Arc<tokio::runtime::Runtime>,
    engine: AsyncEngine<SystemClock, Connections>,
}

impl RedisGate {
    /// Connects and builds the engine (server time: replicas never over-admit): one
    /// connection for callers on plain threads ([`Decider`]), and one more for each of
    /// `event_loops`, driven by it: the runtimes an async host awaits decisions on ([`Gate::async_engine`]), each
    /// on a thread marked with its index here ([`enter_loop`]). An awaited decision then
    /// wakes no other thread, and a plain thread that blocks on the gate never waits for an
    /// event loop.
    pub fn connect_on(
        url: &str,
        policy: Policy,
        event_loops: &[tokio::runtime::Runtime],
        metrics: Option<Arc<Metrics>>,
    ) -> Result<RedisGate, String> {
        let rt = runtime()?;
        let own = connect(&rt, url, TimeSource::Server)?;
        let mut on_loops = Vec::with_capacity(event_loops.len());
        for event_loop in event_loops {
            let on_loop = event_loop.block_on(async {
                RedisStore::connect(url, options(TimeSource::Server))
                    .await
                    .map_err(|e| format!("--store {}: {e}", redact(url)))
            })?;
            on_loops.push(on_loop);
        }
        Ok(RedisGate {
            rt: Arc::new(rt),
            engine: AsyncEngine::with_parts(
                policy,
                SystemClock,
                Connections {
                    own,
                    on_loops,
                    metrics,
                },
            ),
        })
    }

    /// Runs `f` on the gate's own runtime, its store calls over the gate's own connection.
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(OWN_RUNTIME.scope((), f))
    }
}

impl Decider for RedisGate {
    fn decide(&self, subject: Subject<'_>, args: &Value, grant: &Grant) -> Decision {
        self.block_on(self.engine.decide(subject, args, grant))
    }
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError> {
        self.block_on(self.engine.record_approval(approval_id))
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        self.block_on(self.engine.release(reservation))
    }
    fn policy(&self) -> Arc<Policy> {
        self.engine.policy()
    }
    fn shares_approvals(&self) -> bool {
        true
    }
}

/// The store a host decides with, as `--store` chose it.
pub struct Opened {
    /// The engine over it.
    pub gate: Arc<Gate>,
    /// The command a human runs to approve a call out of band (a shared store only).
    pub approve_command: Option<String>,
}

/// Opens the store `url` names with `policy`: the in-memory one, or Redis with a connection
/// of its own for each of `event_loops` (none for a host without; see
/// [`RedisGate::connect_on`]).
pub fn open(
    url: &StoreUrl,
    policy: Policy,
    event_loops: &[tokio::runtime::Runtime],
    metrics: Option<Arc<Metrics>>,
) -> Result<Opened, Error> {
    Ok(match url {
        StoreUrl::Memory => Opened {
            gate: Arc::new(Gate::Memory(Engine::new(policy))),
            approve_command: None,
        },
        StoreUrl::Redis(url) => Opened {
            gate: Arc::new(Gate::Redis(
                RedisGate::connect_on(url, policy, event_loops, metrics).map_err(Error::Store)?,
            )),
            approve_command: Some(format!("mcp-policy approve ID --store {}", redact(url))),
        },
    })
}

/// Records that a human approved `id` in the shared store `url` (`mcp-policy approve`).
/// The outer error: the store cannot be used; the inner one: the store's answer (an
/// unknown or expired approval is [`HostError::UnknownApproval`]).
pub fn approve(url: &StoreUrl, id: &str) -> Result<Result<(), HostError>, Error> {
    let url = match url {
        StoreUrl::Redis(url) => url,
        StoreUrl::Memory => {
            return Err(Error::Usage(
                "--store memory: an in-memory store lives inside one process; approve through a shared store (redis://…)".into(),
            ));
        }
    };
    let rt = runtime().map_err(Error::Io)?;
    let store = connect(&rt, url, TimeSource::Server).map_err(Error::Store)?;
    Ok(rt.block_on(store.approve(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        assert_eq!(StoreUrl::parse("memory"), Ok(StoreUrl::Memory));
        assert_eq!(
            StoreUrl::parse("redis://127.0.0.1:6379/0"),
            Ok(StoreUrl::Redis("redis://127.0.0.1:6379/0".into()))
        );
        assert!(StoreUrl::parse("unix:///run/redis.sock").is_ok());
        let err = StoreUrl::parse("postgres://u:secret@h/db").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            redact("redis://u:secret@h:6379/0"),
            "redis://u:***@h:6379/0"
        );
        assert_eq!(redact("rediss://:secret@h"), "rediss://***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }
}
