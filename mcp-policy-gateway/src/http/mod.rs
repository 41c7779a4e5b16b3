//! The HTTP gateway (`mcp-policy proxy --listen ADDR`): the policy in front of an MCP server
//! over MCP's streamable HTTP transport, for many callers, each known by a credential.
//!
//! One upstream process (the command after `--`, over stdio) and one core
//! [`mcp_policy::mcp::Gateway`] per MCP session. A session starts with an `initialize` POST
//! (the answer carries `Mcp-Session-Id`), ends with a DELETE, when its upstream exits, when it
//! has been idle for `--session-idle`, or when the gateway stops; its upstream is then stopped
//! and reaped. A POST that carries a request is answered as `application/json` when the
//! answer is the only message for it, else as an SSE stream (the server's or the gateway's
//! requests and notifications, then the answer). A GET opens the session's stream for
//! messages that belong to no request.
//!
//! The HTTP side runs on event loops (`threads`, default one per CPU): each a Tokio
//! current-thread runtime on a thread of its own, accepting from the one listening socket and
//! serving the connections it accepted; a session's upstream tasks live on the loop that
//! started it. With a store that never blocks (memory) and a remote upstream, everything runs
//! there: a request is decided in its own task, an allowed `tools/call` is sent up from that
//! task, and the server's messages are handled in the task that read them. With a Redis store,
//! a plain `tools/call`'s decision is awaited in the request's task, over the loop's own Redis
//! connection; the other store calls (refunds, approvals, decisions of other shapes) run on
//! plain threads, as does all of a local upstream's IO (its pipes).
//!
//! Session-less requests (protocol 2026-07-28: no `initialize`, no `Mcp-Session-Id`) share
//! one upstream per caller, with their ids renamed on the way up. A POST's SSE answer can be
//! resumed with `Last-Event-ID` when its client lost the connection before the answer.
//!
//! The rooms, in the order a request meets them: [`config`] (the options, checked),
//! `server` (event loops, accept loop, connection limit, timer, shutdown), `guard` (Host,
//! Origin, credentials), `routes` (handlers), `sessionless` (the 2026-07-28 mode),
//! `decide` (where a decision runs), `registry` (the session tables), `session` (one
//! session's gateway and streams), `upstream` (a child or a remote server behind one
//! trait; `remote` is the remote one), `sse` (response bodies), and the leaves: `kind`
//! (what a message is), `protocol` (the transport's names), `reply` (the gateway's own
//! answers), `inflight`, `app` (what every request shares).
//!
//! ```no_run
//! use mcp_policy_gateway::HostOptions;
//! use mcp_policy_gateway::http::{self, HttpOptions};
//!
//! let host = HostOptions::new("policy.json", vec!["my-mcp-server".into()]);
//! let mut options = HttpOptions::new("127.0.0.1:8080");
//! options.keys = Some("keys.json".into());
//! // Serves until SIGTERM (or SIGINT, SIGHUP) and its grace period are over.
//! http::run(&host, &options)?;
//! # Ok::<(), mcp_policy_gateway::Error>(())
//! ```

// Handlers answer refusals as early returns of whole responses.
#![allow(clippy::result_large_err)]

mod app;
pub mod config;
mod decide;
mod guard;
mod inflight;
mod kind;
pub mod protocol;
mod registry;
mod remote;
mod reply;
mod routes;
mod server;
mod session;
mod sessionless;
mod sse;
mod upstream;

pub use config::HttpOptions;
pub use server::run;
