//! # mcp-policy
//!
//! Exact, fail-closed policy decisions for the tool calls AI agents make through an MCP
//! gateway. A gateway loads a JSON policy once and, for every `tools/call`, asks
//! [`Engine::evaluate`]: **allow**, **deny**, **limit** (rate limited, with an exact
//! retry-after) or **approve** (a human must approve this exact call first).
//!
//! ```
//! use mcp_policy::{Engine, Grant, Policy, Verdict};
//!
//! let policy = Policy::from_json_str(r#"{
//!   "version": "1", "default": "deny",
//!   "tools": {
//!     "start_security_scan": { "limits": [
//!       { "counter": "start_security_scan_rate", "window": "minute", "max": 10, "scope": "grant" } ] },
//!     "stop_scan": { "action": "deny", "reason": "Stopping scans breaks compliance monitoring" }
//!   }
//! }"#)?;
//! let engine = Engine::new(policy);
//! let grant = Grant::new("alice-laptop");
//! let args = serde_json::json!({"target": "prod"});
//!
//! let d = engine.evaluate("start_security_scan", &args, &grant);
//! assert_eq!(d.verdict, Verdict::Allow);
//! assert_eq!(d.remaining, Some(9));
//!
//! let d = engine.evaluate("stop_scan", &args, &grant);
//! assert_eq!(d.verdict, Verdict::Deny);
//! assert_eq!(d.message.as_deref(), Some("Stopping scans breaks compliance monitoring"));
//! # Ok::<(), mcp_policy::LoadErrors>(())
//! ```
//!
//! The policy format — every field, operator, scope, window and error, each with an example
//! that the tests load — is described in
//! [`docs/POLICY.md`](https://github.com/mcp-policy/mcp-policy/blob/main/docs/POLICY.md); how
//! decisions look to MCP clients, and the [`mcp`] layer every integration shares, in
//! [`docs/MCP.md`](https://github.com/mcp-policy/mcp-policy/blob/main/docs/MCP.md).
//!
//! The stages, in the order data flows (see `docs/ARCHITECTURE.md`):
//! [`source`] text → [`document`] (typed, every error with a JSON Pointer and line:column) →
//! [`Policy`] (built by the crate's `compile` module: hash map of names, ordered patterns,
//! prepared conditions, schema validators) → [`Policy::plan`] (the `decide` module, no IO) →
//! a [`CounterStore`] applies the plan atomically → [`Policy::conclude`] (`decide`) →
//! [`Decision`]. [`Engine`] ties them together with a [`Clock`].

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

pub mod approval;
pub mod args;
pub mod clock;
mod compile;
mod decide;
pub mod decision;
pub mod document;
pub mod duration;
pub mod engine;
pub mod error;
pub mod grant;
pub mod listing;
pub mod mcp;
pub mod observe;
pub mod path;
pub mod pattern;
pub mod source;
pub mod store;
pub mod subject;
pub mod text;
pub mod uri;

pub use clock::{Clock, ManualClock, SystemClock};
pub use compile::Policy;
pub use decide::{Pending, Step};
pub use decision::{Decision, Verdict};
pub use engine::{AsyncDecider, AsyncEngine, Decider, Engine};
pub use error::{HostError, LoadError, LoadErrorKind, LoadErrors, Position, StoreError};
pub use grant::Grant;
pub use store::{AsyncCounterStore, CounterStore, MemoryStore, Outcome, Plan, Reservation};

/// The JSON Schema (draft 2020-12) of the policy document, for editors and validators: the
/// text of `docs/policy.schema.json`.
///
/// ```
/// let schema: serde_json::Value = serde_json::from_str(mcp_policy::POLICY_JSON_SCHEMA).unwrap();
/// assert_eq!(schema["type"], "object");
/// ```
pub const POLICY_JSON_SCHEMA: &str = include_str!("../docs/policy.schema.json");

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// docs/OBSERVABILITY.md's observer example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../docs/OBSERVABILITY.md")]
pub struct ObservabilityDoctests;
