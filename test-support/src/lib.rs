//! What the workspace's test suites share, so that no suite writes it again and no test file
//! reaches into another crate's `tests/` directory:
//!
//! - [`temp`]: a temporary directory removed on drop;
//! - [`peers`]: the repository root, tools a test needs (skipped loudly without them, failed
//!   in CI), and the pinned MCP clients and servers of `mcp-policy-cli/tests/e2e/`;
//! - [`redis`]: a real `redis-server` on a free loopback port, and a runtime for async tests;
//! - [`mcp`]: an answer's decision and text, the audit log's records, the policy in front
//!   of server-everything;
//! - [`http`]: a raw HTTP/1.1 client (one request a connection, exact bytes) and free ports;
//! - [`process`]: whether a process is alive, waiting for it to end, a child's stderr read
//!   on a thread of its own, and a child killed on drop.
//!
//! Not published: a `[dev-dependencies]` path dependency of the crates whose tests use it.

#![forbid(unsafe_code)]

pub mod http;
pub mod mcp;
pub mod peers;
pub mod process;
pub mod redis;
pub mod temp;

pub use temp::Temp;
