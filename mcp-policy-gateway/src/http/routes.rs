//! The routes and their handlers: `/healthz`, and `/mcp` behind the request guards — POST
//! (a message: decided, carried out, answered as JSON or an SSE stream), GET (the session's
//! stream, or a cut POST stream resumed with `Last-Event-ID`) and DELETE (the session ends).

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use mcp_policy::mcp::{
    ClientMessage, Gateway, GatewayOptions, INTERNAL_ERROR, Output, PARSE_ERROR, with_traceparent,
};
use tokio::sync::mpsc;

use crate::http::app::App;
use crate::http::decide;
use crate::http::guard::Principal;
use crate::http::inflight::InFlight;
use crate::http::kind::Kind;
use crate::http::protocol::{
    HANDSHAKE_VERSIONS, HEALTH_PATH, MCP_PATH, PROTOCOL_NAME, SESSION_NAME,
};
use crate::http::remote::one_line;
use crate::http::reply::{accepts, json_response, plain, refuse, sse_headers, unauthorized};
use crate::http::session::Session;
use crate::http::sessionless::{self, routing_headers};
use crate::http::sse::{Msg, Parking, ResBody, Resumable, Sse, empty};
use crate::observe::endpoint::{self, METRICS_PATH};
use crate::observe::{MetricsAt, Refusal};

/// How long a client has to send its request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages queued for one client stream before the sender waits.
const STREAM_QUEUE: usize = 64;
/// How often an idle GET stream carries a comment, so that proxies keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Answers one request; a refusal at the door (a 4xx, a 503) is counted in the metrics.
/// `loopback_peer`: the request came from this machine (only then is `/metrics` served on
/// the gateway's port).
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    loopback_peer: bool,
) -> Response<ResBody> {
    let res = route(&app, req, loopback_peer).await;
    if let Some(metrics) = &app.ctx.metrics
        && let Some(why) = Refusal::of_status(res.status().as_u16())
    {
        metrics.refused(why);
    }
    res
}

async fn route(app: &Arc<App>, req: Request<Incoming>, loopback_peer: bool) -> Response<ResBody> {
    let app = Arc::clone(app);
    let path = req.uri().path();
    if path == METRICS_PATH
        && let (Some(metrics), Some(MetricsAt::Gateway)) = (&app.ctx.metrics, &app.metrics_at)
    {
        if !loopback_peer {
            return plain(
                StatusCode::FORBIDDEN,
                "metrics are served to this machine only",
            );
        }
        if let Some(res) = endpoint::answer(metrics, req.method(), path) {
            return res.map(|body| body.boxed());
        }
    }
    if path == HEALTH_PATH && req.method() == Method::GET {
        return if app.is_stopping() {
            plain(StatusCode::SERVICE_UNAVAILABLE, "stopping")
        } else {
            plain(StatusCode::OK, "ok")
        };
    }
    if path != MCP_PATH {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    if !app.guard.host_allowed(req.headers()) {
        return refuse(StatusCode::FORBIDDEN, -32000, "Forbidden: Host not allowed");
    }
    if !app.guard.origin_allowed(req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            -32000,
            "Forbidden: Origin not allowed",
        );
    }
    let Some(principal) = app.guard.authenticate(req.headers()) else {
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

/// The session a request must name (a GET, a DELETE): `400` without one, `404` for one that
/// does not exist or is another caller's.
fn named_session(
    app: &App,
    headers: &HeaderMap,
    principal: &Principal,
) -> Result<Arc<Session>, Response<ResBody>> {
    session_of(app, headers, principal)?.ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            -32000,
            "Bad Request: Mcp-Session-Id header is required",
        )
    })
}

/// The session a request names, if it exists and belongs to this caller.
fn session_of(
    app: &App,
    headers: &HeaderMap,
    principal: &Principal,
) -> Result<Option<Arc<Session>>, Response<ResBody>> {
    let Some(id) = headers.get(&SESSION_NAME) else {
        return Ok(None);
    };
    let id = id.to_str().unwrap_or_default();
    let session = app.registry.get(id);
    match session {
        Some(s)
            if *s.principal == *principal.name
                && !s.stateless
                && !s.closed.load(std::sync::atomic::Ordering::SeqCst) =>
        {
            s.touch();
            Ok(Some(s))
        }
        // Another caller's session is as unknown as a session that never was.
        _ => Err(refuse(StatusCode::NOT_FOUND, -32001, "Session not found")),
    }
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

/// A message from the client: read, given to its session (started for an `initialize`; the
/// caller's shared one for a session-less request), decided, carried out, and answered.
async fn post(app: Arc<App>, req: Request<Incoming>, principal: Principal) -> Response<ResBody> {
    if !is_json(req.headers()) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            -32000,
            "Content-Type must be application/json",
        );
    }
    let sse_ok = accepts(req.headers(), "text/event-stream");
    let named = match session_of(&app, req.headers(), &principal) {
        Ok(s) => s,
        Err(res) => return res,
    };
    // A request without a session that names a protocol version without the handshake.
    let stateless = named.is_none()
        && req
            .headers()
            .get(&PROTOCOL_NAME)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.is_empty() && !HANDSHAKE_VERSIONS.contains(&v));
    let routing = if stateless {
        routing_headers(req.headers())
    } else {
        Vec::new()
    };
    // Tracing: the `traceparent` header continues the caller's trace unless the message
    // carries its own in `params._meta`.
    let traceparent = match app.ctx.traces.is_some() {
        true => req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        false => None,
    };
    let body = match read_body(&app, req).await {
        Ok(b) => match traceparent.and_then(|tp| with_traceparent(&b, &tp)) {
            Some(moved) => Bytes::from(moved),
            None => b,
        },
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
        // Answered by the core's rules (parse error, batch refused), without a session.
        (_, Kind::Invalid) => return invalid(&app, &principal, &body),
        (Some(s), _) => (s, false),
        (None, Kind::Notification { .. }) if stateless => {
            // No notification from a 2026-07-28 client acts on a session-less exchange
            // (cancelling is closing the answer's stream): acknowledged, not forwarded.
            let mut res = Response::new(empty());
            *res.status_mut() = StatusCode::ACCEPTED;
            return res;
        }
        (None, Kind::Request { method, .. }) if stateless && method != "initialize" => {
            let taken = match sessionless::take_request(&app, &principal, &body, routing).await {
                Ok(taken) => taken,
                Err(res) => return res,
            };
            original = Some(taken.original);
            kind = taken.kind;
            renamed = Some(taken.line);
            (taken.session, false)
        }
        (None, Kind::Request { method, .. }) if method == "initialize" => {
            match app.start_session(&principal, false).await {
                Ok(s) => (s, true),
                Err(res) => return res,
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
    let guard = request.is_some().then(|| InFlight::new(&app.in_flight));
    let line = renamed.clone().unwrap_or_else(|| body.clone());
    let is_call = matches!(&kind, Kind::Request { method, .. } if method == "tools/call");
    // A renamed request is read again; any other was read once, above.
    let read = renamed.is_none().then_some(first);
    let done = decide::run(&app, &session, line, read, is_call, seq).await;
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
    let Some((_, rx)) = request else {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::ACCEPTED;
        return res;
    };
    let mut res = answer(rx, sse_ok, seq, guard, &session).await;
    if let Some(value) = session_header {
        res.headers_mut().insert(SESSION_NAME, value);
    }
    res
}

/// Whether the request's `Content-Type` is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// The answer to a body that is not one JSON-RPC message (a parse error, a batch), by the
/// core's rules, without a session.
fn invalid(app: &App, principal: &Principal, body: &[u8]) -> Response<ResBody> {
    let outputs = Gateway::new(app.guard.grant_of(principal), GatewayOptions::default())
        .from_client(app.ctx.engine.as_ref(), body);
    let answer = outputs.into_iter().find_map(|o| match o {
        Output::ToClient(v) => Some(v),
        _ => None,
    });
    match answer {
        Some(v) => json_response(StatusCode::BAD_REQUEST, Bytes::from(v.to_string())),
        None => refuse(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error"),
    }
}

/// The answer to a POST that carried a request: JSON when the answer is the only message
/// for it (or the client takes only JSON), else an SSE stream of the messages for it, then
/// the answer. `seq`: the stream's number (it can be resumed); `guard`: counts the request
/// in flight while its stream is open.
async fn answer(
    mut rx: mpsc::Receiver<Msg>,
    sse_ok: bool,
    seq: Option<u64>,
    guard: Option<InFlight>,
    session: &Arc<Session>,
) -> Response<ResBody> {
    match rx.recv().await {
        Some(Msg::Final(answer)) => json_response(StatusCode::OK, answer),
        Some(Msg::Other(first)) if sse_ok => {
            let mut sse = Sse::new(Some(first), rx, None, guard);
            if let Some(stream) = seq {
                sse = sse.resumable(Resumable {
                    session: Arc::downgrade(session) as Weak<dyn Parking>,
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
    }
}

async fn get(app: Arc<App>, req: Request<Incoming>, principal: Principal) -> Response<ResBody> {
    if app.is_stopping() {
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
    let session = match named_session(&app, req.headers(), &principal) {
        Ok(s) => s,
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
            session: Arc::downgrade(session) as Weak<dyn Parking>,
            stream,
        },
        KEEPALIVE,
    );
    let mut res = Response::new(BodyExt::boxed(sse));
    sse_headers(&mut res);
    res
}

async fn delete(app: Arc<App>, req: Request<Incoming>, principal: Principal) -> Response<ResBody> {
    let session = match named_session(&app, req.headers(), &principal) {
        Ok(s) => s,
        Err(res) => return res,
    };
    // The session leaves the registry now, before the answer: a request that names it from
    // here on is answered 404. Its upstream may take a few seconds to stop; the client need
    // not wait for that.
    if app.registry.detach(&session) {
        let registry = Arc::clone(&app.registry);
        std::thread::spawn(move || registry.stop(&session));
    }
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    res
}
