//! Where Prometheus scrapes the metrics: `GET /metrics` on a listener of its own
//! (`--metrics ADDR`, both hosts), or on the HTTP gateway's own port (`--metrics` alone,
//! answered to loopback peers only). Never behind the MCP credentials: a scraper is not an
//! MCP caller. A listener of its own binds loopback unless the operator says otherwise
//! (`--metrics-public`): the metrics name the policy's rules and counters.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::error::Error;
use crate::observe::metrics::Metrics;

/// The path metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// The content type of the OpenMetrics text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where the metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAt {
    /// On the HTTP gateway's own port at `/metrics`, answered to loopback peers only
    /// (`--metrics` without an address).
    Gateway,
    /// On a listener of its own (`--metrics ADDR`); a non-loopback address only when
    /// `public` (`--metrics-public`).
    Listen {
        /// `HOST:PORT` (port 0: any free port, said on stderr).
        addr: String,
        /// Whether a non-loopback address may be bound.
        public: bool,
    },
}

/// The answer to `GET /metrics`, or `None` for any other request (the caller answers it).
///
/// ```
/// let metrics = mcp_policy_gateway::observe::Metrics::new();
/// let res = mcp_policy_gateway::observe::endpoint::answer(&metrics, &hyper::Method::GET, "/metrics").unwrap();
/// assert_eq!(res.status(), 200);
/// assert!(mcp_policy_gateway::observe::endpoint::answer(&metrics, &hyper::Method::GET, "/").is_none());
/// ```
pub fn answer(metrics: &Metrics, method: &Method, path: &str) -> Option<Response<Full<Bytes>>> {
    if path != METRICS_PATH {
        return None;
    }
    if method != Method::GET && method != Method::HEAD {
        let mut res = Response::new(Full::new(Bytes::from_static(b"method not allowed\n")));
        *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(res);
    }
    let mut res = Response::new(Full::new(Bytes::from(metrics.render())));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Some(res)
}

/// A metrics listener of its own, on a thread of its own; stopped when dropped.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Binds `addr` (loopback unless `public`) and serves `GET /metrics` there until dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mcp_policy_gateway::observe::{Endpoint, Metrics};
    /// let endpoint = Endpoint::start("127.0.0.1:0", false, Arc::new(Metrics::new())).unwrap();
    /// assert!(endpoint.local_addr().ip().is_loopback());
    /// assert!(Endpoint::start("0.0.0.0:0", false, Arc::new(Metrics::new())).is_err());
    /// ```
    pub fn start(addr: &str, public: bool, metrics: Arc<Metrics>) -> Result<Endpoint, Error> {
        let bad = |e: String| Error::Usage(format!("--metrics {addr}: {e}"));
        let resolved: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|e| bad(e.to_string()))?
            .next()
            .ok_or_else(|| bad("the address resolves to nothing".into()))?;
        if !resolved.ip().is_loopback() && !public {
            return Err(bad(
                "not a loopback address; add --metrics-public to serve the metrics to other hosts"
                    .into(),
            ));
        }
        let listener = std::net::TcpListener::bind(resolved)
            .map_err(|e| Error::Io(format!("--metrics {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Io(format!("--metrics {addr}: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Io(format!("--metrics {addr}: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::Io(format!("--metrics: cannot start its event loop: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || rt.block_on(serve(listener, metrics, stopped)))
            .map_err(|e| Error::Io(format!("--metrics: cannot start its thread: {e}")))?;
        eprintln!("mcp-policy proxy: metrics at http://{local}{METRICS_PATH}");
        Ok(Endpoint {
            addr: local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped`; each is served HTTP/1.1 on this thread's loop.
async fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        eprintln!("mcp-policy proxy: --metrics: cannot listen");
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let metrics = Arc::clone(&metrics);
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let res = answer(&metrics, req.method(), req.uri().path()).unwrap_or_else(not_found);
                    std::future::ready(Ok::<_, std::convert::Infallible>(res))
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

fn not_found() -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"not found\n")));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}
