//! # mcp-policy-gateway
//!
//! MCP gateways that enforce an [`mcp_policy`] policy, as a library: the hosts that the
//! `mcp-policy proxy` command runs, for a Rust program to run with its own options.
//!
//! - [`stdio`]: a relay on this process's stdin/stdout in front of a local MCP server (a
//!   child process over stdio): one caller, one grant.
//! - [`http`]: a streamable-HTTP server for many callers, each known by a credential, in
//!   front of a local server (one child per MCP session) or a remote streamable-HTTP one.
//!
//! Both decide every message through the core's [`mcp_policy::mcp::Gateway`] and share one
//! host layer ([`host`]): the child process and its lines, carrying out the gateway's
//! outputs, signals, the timer, the policy watcher, the audit log; the store ([`store`]) and
//! the options ([`options`]) are written once for both.
//!
//! ```no_run
//! use mcp_policy_gateway::{HostOptions, stdio};
//!
//! let mut options = HostOptions::new("policy.json", vec!["my-mcp-server".into()]);
//! options.audit = Some("audit.jsonl".into());
//! // Serves until the client closes its input, the server exits or a signal stops it.
//! match stdio::run(&options) {
//!     Ok(stdio::End::UpstreamExited(status)) => eprintln!("the server exited: {status:?}"),
//!     Ok(end) => eprintln!("done: {end:?}"),
//!     Err(e) => eprintln!("cannot start: {e}"),
//! }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod error;
pub mod host;
pub mod http;
pub mod keys;
pub mod observe;
pub mod options;
pub mod stdio;
pub mod store;

pub use error::Error;
pub use options::HostOptions;
pub use store::StoreUrl;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
