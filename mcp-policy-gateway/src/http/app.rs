//! What every request of the HTTP gateway shares: the host context (engine, audit log,
//! gateway options), the session registry, the request guards, and the server's own state
//! (stopping, requests in flight).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::host::context::Context;
use crate::http::guard::Guard;
use crate::http::registry::Registry;

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
}

impl App {
    /// Whether the gateway is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Client requests waiting for their answer now.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}
