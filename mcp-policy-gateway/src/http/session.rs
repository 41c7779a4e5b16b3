//! One MCP session: its upstream process, its core [`Gateway`], and the client streams its
//! messages go to.
//!
//! Routing to the client: an answer goes to the stream of the POST that carried its request
//! (matched by JSON-RPC id); a progress notification to the stream of the request that named
//! its token; any other request or notification from the server to the newest open POST
//! stream (a stdio server sends them while it works on a request), else to the session's GET
//! stream, else nowhere (it is dropped with a note on stderr).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mcp_policy::Grant;
use mcp_policy::mcp::{Gateway, GatewayOptions, Output, ServerMessage};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::host::context::Context;
use crate::host::outputs::{Sides, carry_out};
use crate::host::sync::lock;
use crate::http::kind::Kind;
use crate::http::remote::Remote;
use crate::http::sse::{Msg, Parked, Parking};
use crate::http::upstream::Upstream;

/// Where the answer to one request goes.
struct Route {
    seq: u64,
    tx: mpsc::Sender<Msg>,
    /// The client's own id, when the gateway renamed it (a session-less caller's request).
    original: Option<Value>,
}

/// Where a session's messages to the client go.
#[derive(Default)]
struct Routes {
    /// A request's id → the stream of the POST that carried it.
    by_id: HashMap<String, Route>,
    /// Open POST streams, oldest first.
    posts: Vec<(u64, mpsc::Sender<Msg>)>,
    /// A progress token → the POST stream of the request that named it.
    progress: HashMap<String, u64>,
    /// The GET stream.
    get: Option<mpsc::Sender<Msg>>,
    /// Messages that found no stream, kept (a few) for the next GET stream: a server
    /// notifies `list_changed` right after `initialized`, before the client opens it.
    backlog: Vec<Bytes>,
    next: u64,
}

/// How many cut POST streams a session keeps for resuming.
pub const MAX_PARKED: usize = 16;

/// How many undeliverable messages wait for a GET stream.
const BACKLOG: usize = 32;

/// One MCP session.
pub struct Session {
    pub id: String,
    /// Who opened it: only the same credential may use it.
    pub principal: String,
    pub gateway: Mutex<Gateway>,
    upstream: Box<dyn Upstream>,
    routes: Mutex<Routes>,
    last_active: Mutex<Instant>,
    pub closed: AtomicBool,
    /// POST streams whose client went away before the answer, by stream number: a GET with
    /// `Last-Event-ID` takes one up (for a while).
    parked: Mutex<HashMap<u64, Parked>>,
    /// The shared upstream of one caller's session-less (2026-07-28) requests: never named
    /// by an `Mcp-Session-Id`; each request's id is renamed (callers' ids may collide).
    pub stateless: bool,
    next_id: AtomicU64,
}

impl Session {
    /// A session `id` for `principal`, deciding for `grant` (bound to the session) with a
    /// gateway made with `options`, in front of `upstream`.
    pub fn new(
        id: String,
        principal: String,
        grant: &Grant,
        options: GatewayOptions,
        upstream: Box<dyn Upstream>,
        stateless: bool,
    ) -> Session {
        Session {
            gateway: Mutex::new(Gateway::new(
                grant.clone().with_session(id.clone()),
                options,
            )),
            id,
            principal,
            upstream,
            routes: Mutex::new(Routes::default()),
            last_active: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
            parked: Mutex::new(HashMap::new()),
            stateless,
            next_id: AtomicU64::new(0),
        }
    }

    /// One message from the server, through the gateway to the client. `inline`: on an
    /// async worker (nothing may block).
    pub fn handle_upstream(&self, ctx: &Context, line: &[u8], inline: bool) {
        // Read before the lock, as the client's messages are.
        self.handle_read(ctx, line, ServerMessage::read(line), inline);
    }

    /// As [`Session::handle_upstream`], for a message already read.
    pub fn handle_read(
        &self,
        ctx: &Context,
        line: &[u8],
        message: ServerMessage<'_>,
        inline: bool,
    ) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let kind = Kind::of_server(&message, line);
        let outputs = {
            let mut gateway = lock(&self.gateway);
            let outputs = gateway.from_server_message(ctx.engine.as_ref(), message);
            if let (Some(remote), Some(version)) = (self.upstream.remote(), gateway.protocol()) {
                remote.set_protocol(version);
            }
            outputs
        };
        self.carry_out_in(ctx, outputs, line, Some(kind), false, None, inline);
    }

    /// A remote upstream that a `tools/call` may be sent to right away (nothing queued
    /// before it is still on its way).
    pub fn remote_idle(&self) -> Option<&Remote> {
        self.upstream.remote().filter(|remote| remote.idle())
    }

    /// Whether handing a message to the upstream never blocks (a remote server's queue).
    pub fn nonblocking_upstream(&self) -> bool {
        self.upstream.nonblocking()
    }

    pub fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        lock(&self.last_active).elapsed()
    }

    /// A fresh id for a session-less caller's request (as JSON text and as a value).
    pub fn fresh_id(&self) -> Value {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        Value::String(format!("mcp-policy-{n}"))
    }

    /// The routing headers a session-less request with this id goes upstream with (a
    /// remote server checks them against the message; a local one has no headers).
    pub fn route(
        &self,
        id: &str,
        headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    ) {
        if let Some(remote) = self.upstream.remote() {
            remote.route(id, headers);
        }
    }

    /// Opens the stream of a POST that carries a request; returns its number. `original`:
    /// the client's own id, when the request was renamed to `id`.
    pub fn open_post(
        &self,
        id: &str,
        progress: Option<&str>,
        tx: mpsc::Sender<Msg>,
        original: Option<Value>,
    ) -> u64 {
        let mut routes = lock(&self.routes);
        routes.next += 1;
        let seq = routes.next;
        routes.posts.retain(|(_, t)| !t.is_closed());
        routes.posts.push((seq, tx.clone()));
        routes
            .by_id
            .insert(id.to_owned(), Route { seq, tx, original });
        if let Some(token) = progress {
            routes.progress.insert(token.to_owned(), seq);
        }
        seq
    }

    /// Keeps a POST stream whose client went away, for a GET that resumes it (at most
    /// [`MAX_PARKED`] per session: the oldest goes first).
    pub fn park(&self, stream: u64, parked: Parked) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let mut all = lock(&self.parked);
        if all.len() >= MAX_PARKED
            && let Some(oldest) = all.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| *k)
        {
            all.remove(&oldest);
        }
        all.insert(stream, parked);
    }

    /// The parked stream with this number, taken.
    pub fn unpark(&self, stream: u64) -> Option<Parked> {
        lock(&self.parked).remove(&stream)
    }

    /// Drops the streams parked for longer than `keep` (their messages go nowhere after).
    pub fn expire_parked(&self, keep: Duration) {
        lock(&self.parked).retain(|_, p| p.since.elapsed() < keep);
    }

    /// Sets the session's GET stream (a newer one replaces an older one).
    pub fn open_get(&self, tx: mpsc::Sender<Msg>) {
        let mut routes = lock(&self.routes);
        for message in std::mem::take(&mut routes.backlog) {
            // The new stream's queue is longer than the backlog.
            let _ = tx.try_send(Msg::Other(message));
        }
        routes.get = Some(tx);
    }

    /// Ends the GET stream.
    pub fn close_get(&self) {
        lock(&self.routes).get = None;
    }

    /// Carries out the gateway's outputs for a message read from one side. `post` is the
    /// stream of the POST being handled, where the gateway's own requests for it go.
    pub fn carry_out(
        &self,
        ctx: &Context,
        outputs: Vec<Output>,
        line: &[u8],
        from_client: bool,
        post: Option<u64>,
    ) {
        self.carry_out_in(ctx, outputs, line, None, from_client, post, false);
    }

    /// As [`Session::carry_out`]; `kind`: what `line` is, when already known; `inline`:
    /// called on an async worker, so nothing may block (a full client stream is then fed
    /// from a helper thread).
    #[allow(clippy::too_many_arguments)]
    pub fn carry_out_in(
        &self,
        ctx: &Context,
        outputs: Vec<Output>,
        line: &[u8],
        kind: Option<Kind>,
        from_client: bool,
        post: Option<u64>,
        inline: bool,
    ) {
        let mut sides = ToSides {
            session: self,
            kind,
            post,
            inline,
        };
        carry_out(outputs, line, from_client, &ctx.audit, &mut sides);
    }

    /// Sends one message to the client stream it belongs to. Blocks while that stream is
    /// full (the client reads slowly): nothing is buffered without bound.
    fn to_client(&self, line: &[u8], kind: Kind, post: Option<u64>, inline: bool) {
        let bytes = Bytes::copy_from_slice(line);
        let target = {
            let mut routes = lock(&self.routes);
            match kind {
                Kind::Response { id } => match routes.by_id.remove(&id) {
                    Some(Route { seq, tx, original }) => {
                        routes.posts.retain(|(s, _)| *s != seq);
                        routes.progress.retain(|_, s| *s != seq);
                        if let Some(remote) = self.upstream.remote() {
                            remote.forget(&id);
                        }
                        let bytes = match original {
                            Some(original) => with_id(line, original).unwrap_or(bytes),
                            None => bytes,
                        };
                        Some((tx, Msg::Final(bytes)))
                    }
                    None => None,
                },
                Kind::Notification {
                    progress: Some(token),
                } if routes.progress.contains_key(&token) => {
                    let seq = routes.progress.get(&token).copied();
                    routes
                        .posts
                        .iter()
                        .find(|(s, _)| Some(*s) == seq)
                        .map(|(_, tx)| (tx.clone(), Msg::Other(bytes)))
                }
                _ => {
                    let chosen = post
                        .and_then(|p| routes.posts.iter().find(|(s, _)| *s == p))
                        .or_else(|| routes.posts.iter().rev().find(|(_, t)| !t.is_closed()))
                        .map(|(_, tx)| tx.clone())
                        .or_else(|| routes.get.clone().filter(|t| !t.is_closed()));
                    if chosen.is_none() && routes.backlog.len() < BACKLOG {
                        routes.backlog.push(bytes);
                        return;
                    }
                    chosen.map(|tx| (tx, Msg::Other(bytes)))
                }
            }
        };
        match target {
            // A closed stream (the client went away) takes nothing; that is not an error.
            Some((tx, msg)) if inline => {
                if let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(msg) {
                    std::thread::spawn(move || {
                        let _ = tx.blocking_send(msg);
                    });
                }
            }
            Some((tx, msg)) => {
                let _ = tx.blocking_send(msg);
            }
            None => {
                if !self.closed.load(Ordering::Relaxed) {
                    eprintln!(
                        "mcp-policy proxy: session {}: no open stream for a message to the client; dropped",
                        self.id
                    );
                }
            }
        }
    }

    /// Marks the session closed; whether it was open (only the first caller goes on to
    /// stop it: see the registry).
    pub fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    /// Stops a closed session: its streams closed, its upstream stopped (a child's input
    /// closed, then SIGTERM and SIGKILL each after a grace period, and reaped: blocks), the
    /// calls still waiting answered.
    pub fn stop(&self, ctx: &Context) {
        lock(&self.parked).clear();
        self.close_get();
        self.upstream.stop();
        if self.upstream.nonblocking() && ctx.inline_store() {
            // No reader thread: the calls still waiting are answered here.
            let outputs = lock(&self.gateway).upstream_gone(ctx.engine.as_ref());
            self.carry_out(ctx, outputs, &[], false, None);
        }
        ctx.audit.line(vec![
            ("event", "session_end".into()),
            ("session", self.id.clone().into()),
        ]);
    }
}

/// Where the outputs for one message go: the upstream, and the client stream each message
/// belongs to.
struct ToSides<'a> {
    session: &'a Session,
    /// What the message as read is, when already known.
    kind: Option<Kind>,
    /// The stream of the POST being handled.
    post: Option<u64>,
    /// On an async worker: nothing may block.
    inline: bool,
}

impl Sides for ToSides<'_> {
    fn to_server(&mut self, line: &[u8]) {
        self.session.upstream.send(line);
    }

    fn to_client(&mut self, line: &[u8], as_read: bool) {
        let kind = match as_read {
            true => self.kind.take().unwrap_or_else(|| Kind::of(line)),
            false => Kind::of(line),
        };
        self.session.to_client(line, kind, self.post, self.inline);
    }
}

impl Parking for Session {
    fn park(&self, stream: u64, parked: Parked) {
        Session::park(self, stream, parked);
    }
}

/// `line` (one JSON-RPC message) with its id replaced.
fn with_id(line: &[u8], id: Value) -> Option<Bytes> {
    let mut message: Value = serde_json::from_slice(line).ok()?;
    *message.as_object_mut()?.get_mut("id")? = id;
    Some(Bytes::from(message.to_string()))
}
