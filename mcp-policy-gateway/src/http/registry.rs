//! The session registry: the one owner of the gateway's session tables — sessions by id,
//! each caller's session-less (2026-07-28) session by principal — and of `--max-sessions`.
//! It starts a session with its upstream (a child per session, or a remote upstream session)
//! and ends it: a session leaves the tables before anything else happens, so a request that
//! names it right after is answered `404`, then its upstream is stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use mcp_policy::Grant;
use mcp_policy::mcp::ServerMessage;

use crate::error::Error;
use crate::host::child;
use crate::host::context::Context;
use crate::host::lines::Lines;
use crate::host::sync::lock;
use crate::http::remote::{Handler, OnGone, Remote, Target};
use crate::http::session::Session;
use crate::http::upstream::Upstream;

/// Where each session's MCP server is.
#[derive(Debug, Clone)]
pub enum UpstreamKind {
    /// A command started for each session.
    Command(Vec<String>),
    /// A remote streamable-HTTP server (`--upstream`).
    Remote(Box<Target>),
}

/// What a session's reader thread reads: a child's output lines, or a remote server's
/// messages handed over by its tasks.
type UpstreamLines = Box<dyn Iterator<Item = Vec<u8>> + Send>;

/// The gateway's sessions.
pub struct Registry {
    ctx: Arc<Context>,
    upstream: UpstreamKind,
    /// The runtime a remote upstream's tasks run on when a session is started off the event
    /// loops.
    pub handle: OnceLock<tokio::runtime::Handle>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Each caller's session for session-less (2026-07-28) requests, by principal.
    stateless: Mutex<HashMap<String, Arc<Session>>>,
    /// Held while a session-less caller's upstream starts (concurrent first requests then
    /// share it).
    pub stateless_start: tokio::sync::Mutex<()>,
    max_sessions: usize,
}

/// A fresh session id: 128 random bits from the kernel, as hex.
fn session_id() -> Result<String, Error> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::Io(format!("cannot read /dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Registry {
    /// An empty registry; at most `max_sessions` sessions at once.
    pub fn new(ctx: Arc<Context>, upstream: UpstreamKind, max_sessions: usize) -> Registry {
        Registry {
            ctx,
            upstream,
            handle: OnceLock::new(),
            sessions: Mutex::new(HashMap::new()),
            stateless: Mutex::new(HashMap::new()),
            stateless_start: tokio::sync::Mutex::new(()),
            max_sessions,
        }
    }

    /// The session with this id, if it is open.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Every open session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Whether `--max-sessions` are open.
    pub fn full(&self) -> bool {
        lock(&self.sessions).len() >= self.max_sessions
    }

    /// The caller's open session-less session.
    pub fn stateless_of(&self, principal: &str) -> Option<Arc<Session>> {
        lock(&self.stateless)
            .get(principal)
            .filter(|s| !s.closed.load(std::sync::atomic::Ordering::SeqCst))
            .cloned()
    }

    /// Starts a session for `principal`, deciding for `grant`: its upstream, the thread that
    /// reads it (a child's output; a remote server's error answers with a blocking store),
    /// and its entry in the tables. Blocks while a child starts.
    pub fn start(
        self: &Arc<Self>,
        principal: String,
        grant: Grant,
        stateless: bool,
    ) -> Result<Arc<Session>, Error> {
        let id = session_id()?;
        // A remote server's messages are handled in the task that read them; the session is
        // known to that task once it exists.
        let me: Arc<OnceLock<Weak<Session>>> = Arc::new(OnceLock::new());
        let (upstream, lines): (Box<dyn Upstream>, Option<UpstreamLines>) = match &self.upstream {
            UpstreamKind::Remote(target) => {
                let (remote, lines) = self.remote(target, &me, stateless)?;
                (Box::new(remote), lines)
            }
            UpstreamKind::Command(command) => {
                let (child, output) = child::spawn(command)?;
                (Box::new(child), Some(Box::new(Lines::new(output))))
            }
        };
        let session = Arc::new(Session::new(
            id.clone(),
            principal.clone(),
            &grant,
            self.ctx.options.clone(),
            upstream,
            stateless,
        ));
        lock(&self.sessions).insert(id.clone(), Arc::clone(&session));
        if let Some(metrics) = &self.ctx.metrics {
            metrics.sessions(1);
        }
        if stateless {
            lock(&self.stateless).insert(principal, Arc::clone(&session));
        }
        self.ctx.audit.line(vec![
            ("event", "session_start".into()),
            ("session", id.into()),
            ("grant", grant.id.into()),
        ]);
        let _ = me.set(Arc::downgrade(&session));
        if let Some(lines) = lines {
            let (registry, session) = (Arc::clone(self), Arc::clone(&session));
            std::thread::spawn(move || registry.read_upstream(&session, lines));
        }
        Ok(session)
    }

    /// A remote upstream session for the session `me` will name, and the lines its thread
    /// reads (with a store that blocks: the server's error answers, whose refund is a store
    /// call).
    fn remote(
        self: &Arc<Self>,
        target: &Target,
        me: &Arc<OnceLock<Weak<Session>>>,
        stateless: bool,
    ) -> Result<(Remote, Option<UpstreamLines>), Error> {
        // The session's upstream tasks live on the event loop that started it (its
        // requests' connections are mostly served there).
        let current = tokio::runtime::Handle::try_current().ok();
        let Some(handle) = current.as_ref().or(self.handle.get()) else {
            return Err(Error::Io("the runtime is not running".into()));
        };
        let gone: OnGone = {
            let (me, registry) = (Arc::clone(me), Arc::downgrade(self));
            Box::new(move || {
                let session = me.get().and_then(Weak::upgrade);
                if let (Some(session), Some(registry)) = (session, registry.upgrade()) {
                    eprintln!(
                        "mcp-policy proxy: session {}: the MCP server ended its session; the session ends",
                        session.id
                    );
                    std::thread::spawn(move || registry.end(&session));
                }
            })
        };
        let ctx = Arc::downgrade(&self.ctx);
        if self.ctx.inline_store() {
            let me = Arc::clone(me);
            let sink: Handler = Arc::new(move |line: &[u8]| {
                let session = me.get().and_then(Weak::upgrade);
                if let (Some(session), Some(ctx)) = (session, ctx.upgrade()) {
                    session.handle_upstream(&ctx, line, true);
                }
            });
            let remote =
                Remote::start(Target::clone(target), handle.clone(), stateless, sink, gone);
            return Ok((remote, None));
        }
        // A store that blocks (Redis): the server's messages are handled in the task that
        // read them, except an error answer, whose refund is a store call: that one goes to
        // the session's thread.
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let me = Arc::clone(me);
        let sink: Handler = Arc::new(move |line: &[u8]| {
            let message = ServerMessage::read(line);
            if message.may_refund() {
                let _ = tx.send(line.to_vec());
                return;
            }
            let session = me.get().and_then(Weak::upgrade);
            if let (Some(session), Some(ctx)) = (session, ctx.upgrade()) {
                session.handle_read(&ctx, line, message, true);
            }
        });
        let remote = Remote::start(Target::clone(target), handle.clone(), stateless, sink, gone);
        Ok((remote, Some(Box::new(rx.into_iter()))))
    }

    /// The session's reader thread: every message from the server through the gateway; at
    /// the end (the server exited, or the remote session's tasks ended), the calls still
    /// waiting are answered and the session ends.
    fn read_upstream(&self, session: &Arc<Session>, lines: UpstreamLines) {
        for line in lines {
            session.handle_upstream(&self.ctx, &line, false);
        }
        let outputs = lock(&session.gateway).upstream_gone(self.ctx.engine.as_ref());
        session.carry_out(&self.ctx, outputs, &[], false, None);
        if !session.closed.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!(
                "mcp-policy proxy: session {}: the MCP server exited; the session ends",
                session.id
            );
        }
        self.end(session);
    }

    /// Takes a session out of the tables and marks it closed, at once: a request that names
    /// it from now on is answered as for a session that never was. Whether it was open
    /// (then the caller stops it with [`Registry::stop`]).
    pub fn detach(&self, session: &Session) -> bool {
        if !session.close() {
            return false;
        }
        lock(&self.sessions).remove(&session.id);
        if let Some(metrics) = &self.ctx.metrics {
            metrics.sessions(-1);
        }
        if session.stateless {
            lock(&self.stateless).retain(|_, s| s.id != session.id);
        }
        true
    }

    /// Stops a detached session's upstream (blocks: a child is stopped and reaped).
    pub fn stop(&self, session: &Session) {
        session.stop(&self.ctx);
    }

    /// Ends a session: detached, then stopped (blocks). Ending an ended session does
    /// nothing.
    pub fn end(&self, session: &Session) {
        if self.detach(session) {
            self.stop(session);
        }
    }
}
