//! What every request of the HTTP gateway shares: the host context (engine, audit log,
//! gateway options), the session registry, the request guards, and the server's own state
//! (stopping, requests in flight), and starting a session when a request asks for one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::{Response, StatusCode};
use mcp_policy::mcp::INTERNAL_ERROR;

use crate::host::context::Context;
use crate::http::guard::{Guard, Principal};
use crate::http::registry::Registry;
use crate::http::reply::refuse;
use crate::http::session::Session;
use crate::http::sse::ResBody;
use crate::observe::MetricsAt;

/// The gateway's shared state.
pub struct App {
    /// The engine, the audit log and the gateway options.
    pub ctx: Arc<Context>,
    /// The sessions.
    pub registry: Arc<Registry>,
    /// Host, origin and credentials.
    pub guard: Guard,
    /// The size limit of one request body.
    pub max_message: usize,
    /// A session with no request for this long (and no call in flight) is ended.
    pub idle: Duration,
    /// Set once by a stop signal: no new sessions.
    pub stopping: AtomicBool,
    /// Client requests waiting for their answer.
    pub in_flight: Arc<AtomicUsize>,
    /// Where the metrics are served (`/metrics` on this port: [`MetricsAt::Gateway`]).
    pub metrics_at: Option<MetricsAt>,
}

impl App {
    /// Whether the gateway is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Starts a session for `principal` (on a blocking thread: a child takes a while to start),
    /// unless the gateway is stopping or full.
    pub async fn start_session(
        self: &Arc<Self>,
        principal: &Principal,
        stateless: bool,
    ) -> Result<Arc<Session>, Response<ResBody>> {
        if self.is_stopping() {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                -32000,
                "the gateway is stopping",
            ));
        }
        if self.registry.full() {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                -32000,
                "too many sessions; try again later",
            ));
        }
        let registry = Arc::clone(&self.registry);
        let name = principal.name.to_string();
        let grant = self.guard.grant_of(principal);
        tokio::task::spawn_blocking(move || registry.start(name, grant, stateless))
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
            })
    }

    /// Client requests waiting for their answer now.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}
