//! `--upstream URL`: a remote MCP server over streamable HTTP as a session's upstream.
//!
//! Each session has its own upstream session. Messages to the server are POSTed in order by
//! one task per session (each POST's answer is read concurrently); every message the server
//! sends back — a JSON answer, the events of an SSE answer, the events of the GET stream
//! opened once the server issued a session id — goes to the session's reader thread as one
//! line, exactly as a stdio server's output would. A request the server cannot be reached for
//! is answered with a JSON-RPC error through that same path (so its charges are refunded).
//! Nothing from the client's HTTP request reaches the server: only `--upstream-header`s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use mcp_policy::mcp::{INTERNAL_ERROR, error_response};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::host::sync::lock;
use crate::http::kind::Kind;
use crate::http::protocol::{PROTOCOL_NAME, SESSION_NAME};

mod conn;
mod target;
pub use conn::Pool;
use conn::{Response, Upconn, connection, driving, send};
pub use target::Target;

/// One session's remote upstream.
pub struct Remote {
    out: mpsc::UnboundedSender<Bytes>,
    state: Arc<State>,
    cancel: watch::Sender<bool>,
    handle: tokio::runtime::Handle,
}

struct State {
    target: Target,
    session: Mutex<Option<HeaderValue>>,
    protocol: Mutex<Option<HeaderValue>>,
    /// What handles the server's messages; dropped when the session stops (which ends the
    /// session's thread, when it has one).
    lines: Mutex<Option<Handler>>,
    /// Session-less (2026-07-28) requests: each carries its own routing headers
    /// (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`), by request id.
    stateless: bool,
    routing: Mutex<HashMap<String, Vec<(HeaderName, HeaderValue)>>>,
    /// Messages queued for the sender task whose answer has not begun yet.
    pending: AtomicUsize,
    /// Run once when the server says the session is gone (HTTP 404 to a request that named
    /// it): the gateway's session ends too, so its client starts a new one.
    gone: Mutex<Option<OnGone>>,
}

/// What ends the gateway's session when the server ended its own.
pub type OnGone = Box<dyn FnOnce() + Send>;

/// What handles one message from the server (one line), in the task that read it: nothing
/// in it may block.
pub type Handler = Arc<dyn Fn(&[u8]) + Send + Sync>;

impl Remote {
    /// Starts the session's sender task; the lines from the server go to `sink`; `gone` runs
    /// if the server ends the session.
    pub fn start(
        target: Target,
        handle: tokio::runtime::Handle,
        stateless: bool,
        sink: Handler,
        gone: OnGone,
    ) -> Remote {
        let (out, queue) = mpsc::unbounded_channel();
        let (cancel, cancelled) = watch::channel(false);
        let state = Arc::new(State {
            target,
            session: Mutex::new(None),
            protocol: Mutex::new(None),
            lines: Mutex::new(Some(sink)),
            stateless,
            routing: Mutex::new(HashMap::new()),
            pending: AtomicUsize::new(0),
            gone: Mutex::new(Some(gone)),
        });
        handle.spawn(sender(Arc::clone(&state), queue, cancelled));
        Remote {
            out,
            state,
            cancel,
            handle,
        }
    }

    /// Queues one message for the server.
    pub fn send(&self, line: &[u8]) {
        self.state.pending.fetch_add(1, Ordering::SeqCst);
        if self.out.send(Bytes::copy_from_slice(line)).is_err() {
            self.state.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether nothing queued is still on its way (a message sent now overtakes nothing).
    pub fn idle(&self) -> bool {
        self.state.pending.load(Ordering::SeqCst) == 0
    }

    /// Sends one request right away, from the calling task: its answer is delivered like every
    /// answer (a JSON answer before this returns; an SSE answer by a task of its own). Only
    /// for a request that needs no ordering with other messages (a `tools/call`), when
    /// [`Remote::idle`].
    pub async fn send_now(&self, line: Bytes) {
        let state = Arc::clone(&self.state);
        let req = state.prepared(&line);
        match connection(&state.target).await {
            Ok(conn) => {
                let cancel = self.cancel.subscribe();
                exchange(state, conn, req, line, cancel, None, true).await;
            }
            Err(e) => state.fail(&line, &e),
        }
    }

    /// The routing headers the request with this id (JSON text) is sent with.
    pub fn route(&self, id: &str, headers: Vec<(HeaderName, HeaderValue)>) {
        lock(&self.state.routing).insert(id.to_owned(), headers);
    }

    /// The request with this id was answered.
    pub fn forget(&self, id: &str) {
        if self.state.stateless {
            lock(&self.state.routing).remove(id);
        }
    }

    /// The protocol version the two ends agreed on, sent as `MCP-Protocol-Version`.
    pub fn set_protocol(&self, version: &str) {
        let mut protocol = lock(&self.state.protocol);
        if protocol.is_none() {
            *protocol = HeaderValue::from_str(version).ok();
        }
    }

    /// Ends the upstream session (DELETE, at most 3 s) and every task of this session.
    pub fn stop(&self) {
        let state = Arc::clone(&self.state);
        let deleted = self.handle.spawn(async move {
            if lock(&state.session).is_some() {
                let req = state.request(Method::DELETE, Bytes::new());
                let _ =
                    tokio::time::timeout(Duration::from_secs(3), send(&state.target, req)).await;
            }
        });
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while !deleted.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.cancel.send(true);
        drop(lock(&self.state.lines).take());
    }
}

impl State {
    fn request(&self, method: Method, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.target.path.clone();
        let mut h = self.target.base.clone();
        if !self.target.fixed_session
            && let Some(sid) = lock(&self.session).clone()
        {
            h.insert(SESSION_NAME, sid);
        }
        if !self.target.fixed_protocol
            && let Some(version) = lock(&self.protocol).clone()
        {
            h.insert(PROTOCOL_NAME, version);
        }
        *req.headers_mut() = h;
        req
    }

    /// A POST of one message, with its own routing headers when it is session-less.
    fn prepared(&self, line: &Bytes) -> Request<Full<Bytes>> {
        let mut req = self.request(Method::POST, line.clone());
        if self.stateless
            && let Kind::Request { id, .. } = Kind::of(line)
            && let Some(headers) = lock(&self.routing).get(&id)
        {
            for (name, value) in headers {
                req.headers_mut().insert(name.clone(), value.clone());
            }
        }
        req
    }

    fn deliver(&self, line: Bytes) {
        let handle = lock(&self.lines).clone();
        if let Some(handle) = handle {
            handle(&line);
        }
    }

    /// Answers a request that never got one from the server.
    fn fail(&self, line: &[u8], why: &str) {
        if let Kind::Request { id, .. } = Kind::of(line) {
            let id: Value = serde_json::from_str(&id).unwrap_or(Value::Null);
            let answer = error_response(
                &id,
                INTERNAL_ERROR,
                &format!("the upstream MCP server is unavailable: {why}"),
            );
            self.deliver(Bytes::from(answer.to_string()));
        }
    }
}

async fn sender(
    state: Arc<State>,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    cancelled: watch::Receiver<bool>,
) {
    let mut get_started = false;
    loop {
        let mut cancel = cancelled.clone();
        let line = tokio::select! {
            line = queue.recv() => match line { Some(l) => l, None => return },
            _ = cancel.changed() => return,
        };
        let req = state.prepared(&line);
        let conn = match connection(&state.target).await {
            Ok(conn) => conn,
            Err(e) => {
                state.fail(&line, &e);
                state.pending.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
        };
        let (began, beginning) = tokio::sync::oneshot::channel::<()>();
        let state2 = Arc::clone(&state);
        let cancel = cancelled.clone();
        tokio::spawn(exchange(
            state2,
            conn,
            req,
            line,
            cancel,
            Some(began),
            false,
        ));
        // Messages reach the server in order: the next one waits until this one's answer
        // begins, for at most 100 ms (a server that holds its answer back stalls nothing).
        let _ = tokio::time::timeout(Duration::from_millis(100), beginning).await;
        state.pending.fetch_sub(1, Ordering::SeqCst);
        if !get_started && lock(&state.session).is_some() {
            get_started = true;
            let state3 = Arc::clone(&state);
            let cancel = cancelled.clone();
            tokio::spawn(async move { get_stream(&state3, cancel).await });
        }
    }
}

/// One message to the server on `up`, and its answer delivered. `began` is told when the
/// answer's head arrived. `detach_sse`: an SSE answer is read by a task of its own (the
/// caller goes on once the head arrived); a JSON answer is always read here.
async fn exchange(
    state: Arc<State>,
    mut up: Upconn,
    req: Request<Full<Bytes>>,
    line: Bytes,
    cancel: watch::Receiver<bool>,
    began: Option<tokio::sync::oneshot::Sender<()>>,
    detach_sse: bool,
) {
    let named_session = req.headers().contains_key(SESSION_NAME);
    let sent = up.sender.send_request(req);
    let res = match driving(&mut up.conn, sent).await {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            drop(began);
            state.fail(&line, &e.to_string());
            return;
        }
        Err(e) => {
            drop(began);
            state.fail(&line, &e);
            return;
        }
    };
    if let Some(sid) = res.headers().get(&SESSION_NAME) {
        *lock(&state.session) = Some(sid.clone());
    }
    if let Some(began) = began {
        let _ = began.send(());
    }
    let status = res.status();
    // The server no longer knows the session (it restarted, or ended it): `404`, as the
    // transport says, or `400` (some servers, server-everything among them) when a `ping` in
    // the session is refused too. There is nothing to DELETE, and every later request would
    // fail the same way.
    let forgotten = match status {
        _ if !named_session => None,
        StatusCode::NOT_FOUND => Some("HTTP 404"),
        StatusCode::BAD_REQUEST if !knows_session(&state).await => {
            Some("HTTP 400, and to a ping in the session")
        }
        _ => None,
    };
    if let Some(why) = forgotten {
        *lock(&state.session) = None;
        state.fail(
            &line,
            &format!("it ended the session ({why}); start a new session"),
        );
        if let Ok(Ok(_)) = driving(&mut up.conn, res.into_body().collect()).await {
            state.target.pool.give_back(up);
        }
        let gone = lock(&state.gone).take();
        if let Some(gone) = gone {
            gone();
        }
        return;
    }
    if status == StatusCode::ACCEPTED || !status.is_success() {
        if status != StatusCode::ACCEPTED {
            state.fail(&line, &format!("HTTP {status}"));
        }
        if let Ok(Ok(_)) = driving(&mut up.conn, res.into_body().collect()).await {
            state.target.pool.give_back(up);
        }
        return;
    }
    if detach_sse && is_sse(&res) {
        tokio::spawn(async move {
            if let Ok(true) = driving(&mut up.conn, read_answer(&state, res, &line, cancel)).await {
                state.target.pool.give_back(up);
            }
        });
        return;
    }
    match driving(&mut up.conn, read_answer(&state, res, &line, cancel)).await {
        Ok(true) => state.target.pool.give_back(up),
        Ok(false) => {}
        // The connection ended before the answer did.
        Err(e) => state.fail(&line, &e),
    }
}

/// Whether the server still knows this session, after it answered `400` to a request in it
/// (which may also mean the request was wrong): a `ping` in the session answered `400` or
/// `404` says it does not. No answer within 3 s counts as knowing it.
async fn knows_session(state: &State) -> bool {
    let ping =
        Bytes::from_static(br#"{"jsonrpc":"2.0","id":"mcp-policy-session-check","method":"ping"}"#);
    let req = state.request(Method::POST, ping);
    match tokio::time::timeout(Duration::from_secs(3), send(&state.target, req)).await {
        Ok(Ok(res)) => !matches!(
            res.status(),
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
        ),
        _ => true,
    }
}

fn is_sse(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// The session's GET stream, if the server offers one (it may answer 405).
async fn get_stream(state: &State, cancelled: watch::Receiver<bool>) {
    let mut req = state.request(Method::GET, Bytes::new());
    req.headers_mut().insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    req.headers_mut().remove(header::CONTENT_TYPE);
    let Ok(res) = send(&state.target, req).await else {
        return;
    };
    if res.status().is_success() {
        read_events(state, res.into_body(), cancelled).await;
    }
}

/// Delivers an answer's messages; true when its body was read to the end.
async fn read_answer(
    state: &State,
    res: Response,
    line: &[u8],
    cancelled: watch::Receiver<bool>,
) -> bool {
    if is_sse(&res) {
        // An answer that never comes is answered when the session ends.
        return read_events(state, res.into_body(), cancelled).await;
    }
    match res.into_body().collect().await {
        Ok(body) => {
            let bytes = body.to_bytes();
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                state.deliver(one_line(bytes));
            }
            true
        }
        Err(e) => {
            state.fail(line, &e.to_string());
            false
        }
    }
}

/// A message on one line (JSON text allows line breaks only as whitespace outside strings,
/// so each becomes a space): the bytes themselves when they have none.
pub fn one_line(bytes: Bytes) -> Bytes {
    if memchr::memchr2(b'\n', b'\r', &bytes).is_none() {
        return bytes;
    }
    bytes
        .iter()
        .map(|b| match b {
            b'\n' | b'\r' => b' ',
            other => *other,
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Delivers the `data` of every SSE event; true when the stream ended normally.
async fn read_events(
    state: &State,
    mut body: hyper::body::Incoming,
    mut cancelled: watch::Receiver<bool>,
) -> bool {
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = cancelled.changed() => return false,
        };
        let Some(Ok(frame)) = frame else {
            return true;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some((end, skip)) = event_end(&buf) {
            let event = buf.split_to(end + skip);
            let text = String::from_utf8_lossy(event.get(..end).unwrap_or_default());
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                let joined = data.join("\n");
                if !joined.trim().is_empty() {
                    state.deliver(one_line(Bytes::from(joined)));
                }
            }
        }
    }
}

/// Where the first event ends (a blank line), and the length of that separator.
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:3001/mcp", &["X-Api-Key: k".into()], None).unwrap();
        assert_eq!(t.authority, "127.0.0.1:3001");
        assert_eq!(t.base[header::HOST], "127.0.0.1:3001");
        assert_eq!(t.path, "/mcp");
        assert!(Target::parse("http://example.com/a b", &[], None).is_err());
        assert_eq!(t.base.len(), 4);
        assert!(!t.fixed_session && !t.fixed_protocol);
        assert!(t.tls.is_none());
        let t = Target::parse("http://example.com", &[], None).unwrap();
        assert_eq!(t.authority, "example.com:80");
        assert_eq!(t.base[header::HOST], "example.com");
        assert_eq!(t.path, "/");
        let t = Target::parse("http://[::1]/mcp", &[], None).unwrap();
        assert_eq!(t.authority, "[::1]:80");
        assert!(Target::parse("ftp://example.com/mcp", &[], None).is_err());
        assert!(Target::parse("http://u:p@example.com/mcp", &[], None).is_err());
        assert!(Target::parse("http://example.com/mcp", &["nocolon".into()], None).is_err());
        let ca = Path::new("/nonexistent/ca.pem");
        assert!(Target::parse("http://example.com/mcp", &[], Some(ca)).is_err());
        let e = Target::parse("https://example.com/mcp", &[], Some(ca)).unwrap_err();
        assert!(e.contains("--upstream-ca /nonexistent/ca.pem"), "{e}");
    }

    /// Every request carries `Host`, `Content-Type`, `Accept` and the session's id and
    /// version, unless an `--upstream-header` names one of them: the operator's value wins.
    #[test]
    fn request_headers() {
        let request = |extra: &[&str]| {
            let extra: Vec<String> = extra.iter().map(|h| (*h).to_owned()).collect();
            let target = Target::parse("http://example.com:8080/mcp", &extra, None).unwrap();
            let (handle, gone): (Handler, OnGone) = (Arc::new(|_: &[u8]| {}), Box::new(|| {}));
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let remote = Remote::start(target, rt.handle().clone(), false, handle, gone);
            *lock(&remote.state.session) = Some(HeaderValue::from_static("s-1"));
            remote.set_protocol("2025-06-18");
            let req = remote.state.prepared(&Bytes::from_static(b"{}"));
            let seen: Vec<(String, String)> = req
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            (req.method().clone(), req.uri().to_string(), seen)
        };
        let (method, uri, seen) = request(&[]);
        assert_eq!((method, uri.as_str()), (Method::POST, "/mcp"));
        let want = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            seen,
            want(&[
                ("host", "example.com:8080"),
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-session-id", "s-1"),
                ("mcp-protocol-version", "2025-06-18"),
            ])
        );
        let (_, _, seen) = request(&[
            "X-Api-Key: k",
            "Accept: application/json",
            "Mcp-Session-Id: fixed",
            "MCP-Protocol-Version: 2025-03-26",
        ]);
        assert_eq!(
            seen,
            want(&[
                ("host", "example.com:8080"),
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("x-api-key", "k"),
                ("mcp-session-id", "fixed"),
                ("mcp-protocol-version", "2025-03-26"),
            ])
        );
    }

    #[test]
    fn events() {
        assert_eq!(event_end(b"data: x\n\nrest"), Some((7, 2)));
        assert_eq!(event_end(b"data: x\r\n\r\n"), Some((7, 4)));
        assert_eq!(event_end(b"data: x\n"), None);
    }
}
