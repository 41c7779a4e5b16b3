//! One MCP session: its upstream process, its core [`Gateway`], and the client streams its
//! messages go to.
//!
//! Routing to the client: an answer goes to the stream of the POST that carried its request
//! (matched by JSON-RPC id); a progress notification to the stream of the request that named
//! its token; any other request or notification from the server to the newest open POST
//! stream (a stdio server sends them while it works on a request), else to the session's GET
//! stream, else nowhere (it is dropped with a note on stderr).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mcp_policy::Grant;
use mcp_policy::mcp::{ClientMessage, Gateway, Output, ServerMessage};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::App;
use super::body::{Msg, Parked};
use super::remote::{Handler, OnGone, Remote};

/// How long the upstream has to exit after its stdin closed (then SIGTERM, then as long again
/// before SIGKILL).
const STOP_GRACE: Duration = Duration::from_secs(3);

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a message is, for routing.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A request: its id (as JSON text), and the progress token it named.
    Request {
        id: String,
        method: String,
        progress: Option<String>,
    },
    /// A notification; for `notifications/progress`, its token.
    Notification { progress: Option<String> },
    /// An answer to the request with this id (as JSON text).
    Response { id: String },
    /// Not one JSON-RPC message (malformed, a batch).
    Invalid,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<ProbeParams>,
}

#[derive(Deserialize)]
struct ProbeParams {
    #[serde(rename = "progressToken", default)]
    progress_token: Option<Value>,
    #[serde(rename = "_meta", default)]
    meta: Option<ProbeMeta>,
}

#[derive(Deserialize)]
struct ProbeMeta {
    #[serde(rename = "progressToken", default)]
    progress_token: Option<Value>,
}

impl Kind {
    pub fn of(bytes: &[u8]) -> Kind {
        // Only an object is one message (serde would read an array as a struct's fields).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Kind::Invalid;
        }
        let Ok(probe) = serde_json::from_slice::<Probe>(bytes) else {
            return Kind::Invalid;
        };
        let params = probe.params;
        match (probe.id, probe.method) {
            (Some(id), Some(Value::String(method))) => Kind::Request {
                id: id.to_string(),
                method,
                progress: params
                    .and_then(|p| p.meta)
                    .and_then(|m| m.progress_token)
                    .map(|t| t.to_string()),
            },
            (None, Some(Value::String(method))) => Kind::Notification {
                progress: if method == "notifications/progress" {
                    params.and_then(|p| p.progress_token).map(|t| t.to_string())
                } else {
                    None
                },
            },
            (Some(id), None) => Kind::Response { id: id.to_string() },
            _ => Kind::Invalid,
        }
    }

    /// The kind of a client message the core has read: a tool call of the plain shape
    /// from what the core read (the line is not read again), anything else by [`Kind::of`].
    pub fn of_client(message: &ClientMessage<'_>, line: &[u8]) -> Kind {
        match message.plain_call() {
            Some((id, token)) => Kind::Request {
                id: id.to_string(),
                method: "tools/call".to_owned(),
                progress: token.map(Value::to_string),
            },
            None => Kind::of(line),
        }
    }

    /// The kind of a server message the core has read: an answer from the id the core
    /// read, anything else by [`Kind::of`].
    pub fn of_server(message: &ServerMessage<'_>, line: &[u8]) -> Kind {
        match message.answer_id() {
            Some(id) => Kind::Response { id: id.to_string() },
            None => Kind::of(line),
        }
    }
}

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

/// Where a session's server is.
enum Upstream {
    /// A local command over stdio.
    Stdio {
        stdin: Mutex<Option<ChildStdin>>,
        child: Mutex<Option<Child>>,
    },
    /// A remote streamable-HTTP server (`--upstream`).
    Http(Remote),
}

/// One MCP session.
pub struct Session {
    pub id: String,
    /// Who opened it: only the same credential may use it.
    pub principal: String,
    pub gateway: Mutex<Gateway>,
    upstream: Upstream,
    routes: Mutex<Routes>,
    last_active: Mutex<Instant>,
    pub closed: AtomicBool,
    /// POST streams whose client went away before the answer, by stream number: a GET with
    /// `Last-Event-ID` takes one up (for a while).
    parked: Mutex<HashMap<u64, Parked>>,
    /// The shared upstream of one caller's session-less (2026-07-28) requests: never named
    /// by an `Mcp-Session-Id`; each request's id is renamed (callers' ids may collide).
    pub modern: bool,
    next_id: AtomicU64,
}

/// A fresh session id: 128 random bits from the kernel, as hex.
fn session_id() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Session {
    /// Starts the upstream command and the session's reader thread.
    pub fn start(
        app: &Arc<App>,
        principal: String,
        grant: Grant,
        modern: bool,
    ) -> Result<Arc<Session>, String> {
        let id = session_id()?;
        // With a store that never blocks, a remote server's messages are handled in the task
        // that read them (no hop to a thread); the session is known once it exists.
        let me: Arc<OnceLock<Weak<Session>>> = Arc::new(OnceLock::new());
        let (upstream, lines): (Upstream, Option<Box<dyn Iterator<Item = Vec<u8>> + Send>>) =
            match &app.remote {
                Some(target) => {
                    // The session's upstream tasks live on the event loop that started
                    // it (its requests' connections are mostly served there).
                    let current = tokio::runtime::Handle::try_current().ok();
                    let Some(handle) = current.as_ref().or(app.handle.get()) else {
                        return Err("the runtime is not running".into());
                    };
                    let gone: OnGone = {
                        let (me, app) = (Arc::clone(&me), Arc::downgrade(app));
                        Box::new(move || {
                            let session = me.get().and_then(Weak::upgrade);
                            if let (Some(session), Some(app)) = (session, app.upgrade()) {
                                eprintln!(
                                    "mcp-policy proxy: session {}: the MCP server ended its session; the session ends",
                                    session.id
                                );
                                std::thread::spawn(move || session.stop(&app));
                            }
                        })
                    };
                    if app.inline_store {
                        let (me, app) = (Arc::clone(&me), Arc::downgrade(app));
                        let sink: Handler = Arc::new(move |line: &[u8]| {
                            let session = me.get().and_then(Weak::upgrade);
                            if let (Some(session), Some(app)) = (session, app.upgrade()) {
                                session.handle_upstream(&app, line, true);
                            }
                        });
                        let remote =
                            Remote::start(target.clone(), handle.clone(), modern, sink, gone);
                        (Upstream::Http(remote), None)
                    } else {
                        // A store that blocks (Redis): the server's messages are handled in
                        // the task that read them, except an error answer, whose refund is a
                        // store call: that one goes to the session's thread.
                        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
                        let (me, app) = (Arc::clone(&me), Arc::downgrade(app));
                        let sink: Handler = Arc::new(move |line: &[u8]| {
                            let message = ServerMessage::read(line);
                            if message.may_refund() {
                                let _ = tx.send(line.to_vec());
                                return;
                            }
                            let session = me.get().and_then(Weak::upgrade);
                            if let (Some(session), Some(app)) = (session, app.upgrade()) {
                                session.handle_read(&app, line, message, true);
                            }
                        });
                        let remote =
                            Remote::start(target.clone(), handle.clone(), modern, sink, gone);
                        (Upstream::Http(remote), Some(Box::new(rx.into_iter())))
                    }
                }
                None => {
                    let (stdin, child, stdout) = spawn_command(&app.command)?;
                    (
                        Upstream::Stdio {
                            stdin: Mutex::new(Some(stdin)),
                            child: Mutex::new(Some(child)),
                        },
                        Some(Box::new(stdout_lines(stdout))),
                    )
                }
            };
        let grant = grant.with_session(id.clone());
        let session = Arc::new(Session {
            id: id.clone(),
            principal,
            gateway: Mutex::new(Gateway::new(grant.clone(), app.options.clone())),
            upstream,
            routes: Mutex::new(Routes::default()),
            last_active: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
            parked: Mutex::new(HashMap::new()),
            modern,
            next_id: AtomicU64::new(0),
        });
        lock(&app.sessions).insert(id.clone(), Arc::clone(&session));
        app.audit.line(vec![
            ("event", "session_start".into()),
            ("session", id.into()),
            ("grant", grant.id.into()),
        ]);
        let _ = me.set(Arc::downgrade(&session));
        if let Some(lines) = lines {
            let reader_app = Arc::clone(app);
            let reader_session = Arc::clone(&session);
            std::thread::spawn(move || read_upstream(&reader_app, &reader_session, lines));
        }
        Ok(session)
    }

    /// One message from the server, through the gateway to the client. `inline`: on an
    /// async worker (nothing may block).
    fn handle_upstream(&self, app: &App, line: &[u8], inline: bool) {
        // Read before the lock, as the client's messages are.
        self.handle_read(app, line, ServerMessage::read(line), inline);
    }

    /// As [`Session::handle_upstream`], for a message already read.
    fn handle_read(&self, app: &App, line: &[u8], message: ServerMessage<'_>, inline: bool) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let kind = Kind::of_server(&message, line);
        let outputs = {
            let mut gateway = lock(&self.gateway);
            let outputs = gateway.from_server_message(app.engine.as_ref(), message);
            if let (Upstream::Http(remote), Some(version)) = (&self.upstream, gateway.protocol()) {
                remote.set_protocol(version);
            }
            outputs
        };
        self.carry_out_in(app, outputs, line, Some(kind), false, None, inline);
    }

    /// A remote upstream that a `tools/call` may be sent to right away (nothing queued
    /// before it is still on its way).
    pub fn remote_idle(&self) -> Option<&Remote> {
        match &self.upstream {
            Upstream::Http(remote) if remote.idle() => Some(remote),
            _ => None,
        }
    }

    /// Whether handing a message to the upstream never blocks (a remote server's queue).
    pub fn nonblocking_upstream(&self) -> bool {
        matches!(self.upstream, Upstream::Http(_))
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
        if let Upstream::Http(remote) = &self.upstream {
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
        app: &App,
        outputs: Vec<Output>,
        line: &[u8],
        from_client: bool,
        post: Option<u64>,
    ) {
        self.carry_out_in(app, outputs, line, None, from_client, post, false);
    }

    /// As [`Session::carry_out`]; `kind`: what `line` is, when already known; `inline`:
    /// called on an async worker, so nothing may block (a full client stream is then fed
    /// from a helper thread).
    #[allow(clippy::too_many_arguments)]
    pub fn carry_out_in(
        &self,
        app: &App,
        outputs: Vec<Output>,
        line: &[u8],
        mut kind: Option<Kind>,
        from_client: bool,
        post: Option<u64>,
        inline: bool,
    ) {
        for output in outputs {
            match output {
                Output::Forward if from_client => self.to_server(line),
                Output::Forward => {
                    let kind = kind.take().unwrap_or_else(|| Kind::of(line));
                    self.to_client(line, kind, post, inline);
                }
                Output::ToClient(v) => {
                    let text = v.to_string();
                    self.to_client(text.as_bytes(), Kind::of(text.as_bytes()), post, inline);
                }
                Output::ToServer(v) => self.to_server(v.to_string().as_bytes()),
                Output::Audit(record) => app.audit.call(&record),
            }
        }
    }

    fn to_server(&self, line: &[u8]) {
        let stdin = match &self.upstream {
            Upstream::Http(remote) => return remote.send(line),
            Upstream::Stdio { stdin, .. } => stdin,
        };
        let mut stdin = lock(stdin);
        if let Some(pipe) = stdin.as_mut() {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line);
            buf.push(b'\n');
            if pipe.write_all(&buf).and_then(|()| pipe.flush()).is_err() {
                // The upstream closed its input; its exit is handled by the reader.
                *stdin = None;
            }
        }
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
                        if let Upstream::Http(remote) = &self.upstream {
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

    /// Ends the session: removed from the table, streams closed, the upstream's input closed,
    /// then SIGTERM and SIGKILL each after a grace period; the process is reaped (blocks).
    pub fn stop(&self, app: &App) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        lock(&app.sessions).remove(&self.id);
        lock(&self.parked).clear();
        if self.modern {
            lock(&app.modern).retain(|_, s| s.id != self.id);
        }
        self.close_get();
        match &self.upstream {
            Upstream::Http(remote) => {
                remote.stop();
                if app.inline_store {
                    // No reader thread: the calls still waiting are answered here.
                    let outputs = lock(&self.gateway).upstream_gone(app.engine.as_ref());
                    self.carry_out(app, outputs, &[], false, None);
                }
            }
            Upstream::Stdio { stdin, child } => {
                drop(lock(stdin).take());
                let child = lock(child).take();
                if let Some(mut child) = child {
                    stop_child(&mut child);
                }
            }
        }
        app.audit.line(vec![
            ("event", "session_end".into()),
            ("session", self.id.clone().into()),
        ]);
    }
}

/// `line` (one JSON-RPC message) with its id replaced.
fn with_id(line: &[u8], id: Value) -> Option<Bytes> {
    let mut message: Value = serde_json::from_slice(line).ok()?;
    *message.as_object_mut()?.get_mut("id")? = id;
    Some(Bytes::from(message.to_string()))
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => return false,
        }
    }
}

fn stop_child(child: &mut Child) {
    if wait_for_exit(child, STOP_GRACE) {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if wait_for_exit(child, STOP_GRACE) {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts a local upstream command.
fn spawn_command(
    command: &[String],
) -> Result<(ChildStdin, Child, std::process::ChildStdout), String> {
    let Some((program, program_args)) = command.split_first() else {
        return Err("no upstream command".into());
    };
    let mut child = Command::new(program)
        .args(program_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    match (child.stdin.take(), child.stdout.take()) {
        (Some(stdin), Some(stdout)) => Ok((stdin, child, stdout)),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Err("the upstream's pipes could not be opened".into())
        }
    }
}

/// The lines of a stdio server's output, without their line ends.
fn stdout_lines(stdout: std::process::ChildStdout) -> impl Iterator<Item = Vec<u8>> + Send {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                Some(buf)
            }
        }
    })
}

/// The session's reader thread: every message from the server through the gateway; at the
/// end (the server exited, or the remote session's tasks ended), the calls still waiting are
/// answered and the session is stopped.
fn read_upstream(
    app: &Arc<App>,
    session: &Arc<Session>,
    lines: Box<dyn Iterator<Item = Vec<u8>> + Send>,
) {
    for line in lines {
        session.handle_upstream(app, &line, false);
    }
    let outputs = lock(&session.gateway).upstream_gone(app.engine.as_ref());
    session.carry_out(app, outputs, &[], false, None);
    if !session.closed.load(Ordering::SeqCst) {
        eprintln!(
            "mcp-policy proxy: session {}: the MCP server exited; the session ends",
            session.id
        );
    }
    session.stop(app);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            Kind::of(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"t"}}}"#),
            Kind::Request {
                id: "1".into(),
                method: "tools/call".into(),
                progress: Some("\"t\"".into())
            }
        );
        assert_eq!(
            Kind::of(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#),
            Kind::Notification {
                progress: Some("\"t\"".into())
            }
        );
        assert_eq!(
            Kind::of(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Kind::Response { id: "\"a\"".into() }
        );
        assert_eq!(Kind::of(b"[1]"), Kind::Invalid);
        assert_eq!(
            Kind::of(br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#),
            Kind::Invalid
        );
        assert_eq!(Kind::of(b"nope"), Kind::Invalid);
    }

    /// What the core read gives the same kind as reading the line here.
    #[test]
    fn kinds_from_what_the_core_read_agree() {
        let client: [&[u8]; 9] = [
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1}}}"#,
            br#"{"jsonrpc":"2.0","id":"\u0061","method":"tools/call","params":{"name":"a","_meta":{"progressToken":7}}}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":null}}}"#,
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"a","_meta":null}}"#,
            br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"a","_meta":"odd"}}"#,
            br#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"a"}}"#,
            br#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"_meta":{"progressToken":"p"}}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#,
            br#"{"jsonrpc":"2.0","id":6,"result":{}}"#,
        ];
        for line in client {
            let read = ClientMessage::read(line);
            assert_eq!(
                Kind::of_client(&read, line),
                Kind::of(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(ClientMessage::read(client[1]).plain_call().is_some());
        let server: [&[u8]; 6] = [
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#,
            br#"{"jsonrpc":"2.0","id":"\u0061","error":{"code":-1,"message":"no"}}"#,
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}"#,
            br#"{"jsonrpc":"2.0","id":9,"method":"elicitation/create","params":{}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t"}}"#,
            br#"{"jsonrpc":"2.0","id":2,"result":{"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}"#,
        ];
        for line in server {
            let read = ServerMessage::read(line);
            assert_eq!(
                Kind::of_server(&read, line),
                Kind::of(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
