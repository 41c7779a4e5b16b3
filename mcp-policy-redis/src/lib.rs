//! # mcp-policy-redis
//!
//! A Redis (or Valkey) counter store for [`mcp_policy`]: budgets and approvals that several
//! gateway replicas share, with the same exact, all-or-nothing arithmetic as the in-memory
//! store, and fail-closed behaviour when Redis is down, slow or full.
//!
//! ```no_run
//! use mcp_policy::{AsyncEngine, Grant, Policy, SystemClock, Verdict};
//! use mcp_policy_redis::{Options, RedisStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
//!   "tools":{"scan":{"rate_limit":"10/minute"}}}"#)?;
//! let store = RedisStore::connect("redis://127.0.0.1:6379/", Options::new().prefix("prod")).await?;
//! if let Some(warning) = store.eviction_warning().await {
//!     eprintln!("warning: {warning}");
//! }
//! let engine = AsyncEngine::with_parts(policy, SystemClock, store);
//! let decision = engine.evaluate("scan", &serde_json::json!({}), &Grant::new("alice")).await;
//! assert_eq!(decision.verdict, Verdict::Allow);
//! # Ok(())
//! # }
//! ```
//!
//! How it works (details in the README):
//!
//! - **One round trip per call**: [`RedisStore`] sends a call's whole [`Plan`](mcp_policy::Plan)
//!   to one Lua script (`EVALSHA`, loaded again by itself after `SCRIPT FLUSH` or a restart),
//!   which checks the approval and every charge, and only then charges them all. Redis runs a
//!   script atomically: nothing is ever half-charged.
//! - **Keys**: every key starts with the hash tag `{prefix}`, so all of a store's keys (and so
//!   every call's keys, whatever their scopes) sit in one Redis Cluster slot; different
//!   prefixes (tenants, policies) spread over a cluster. Counters and pending approvals expire
//!   when their window or TTL has passed.
//! - **Time**: the Redis server's clock by default ([`TimeSource::Server`]), so replicas whose
//!   clocks disagree never over-admit; the plan's time ([`TimeSource::Plan`]) for replays and
//!   tests.
//! - **Fail closed**: every call is bounded by [`Options::timeout`]; an unreachable, slow,
//!   out-of-memory or misbehaving Redis yields a [`StoreError`](mcp_policy::StoreError) naming
//!   the failure, which the engine turns into a deny. The connection recovers by itself when
//!   Redis comes back.

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

mod options;
mod store;

pub use options::{Options, TimeSource};
pub use store::{Error, RedisStore, approval_key, counter_key};

/// The `redis` crate this store is built on, so that hosts name the same connection types
/// (`redis::aio::ConnectionManager`, `redis::aio::MultiplexedConnection`, a cluster
/// connection) without a version mismatch.
pub use redis;

/// The Lua script behind every call (for inspection and for `redis-benchmark`).
pub const SCRIPT: &str = include_str!("counter.lua");

/// The largest number the store accepts for a time, window, max or cost: `2^52 - 1`.
///
/// Lua counts in doubles; below `2^52` every sum the script makes is exact. A plan with a
/// larger number is refused with a store error (the call is denied) rather than counted
/// approximately.
pub const MAX_EXACT: u64 = (1 << 52) - 1;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
