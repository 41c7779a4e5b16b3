//! `mcp-policy proxy --listen`: the gateway over streamable HTTP, as a subprocess on a
//! loopback port. One test binary (`cargo test --test http`), its suites in modules:
//!
//! - `audit`: the audit log written off the request path, `--audit-sync`, a log that cannot be written;
//! - `auth`: credentials, the trusted header, safe defaults, remote addresses;
//! - `sessions`: DELETE, idle and capped sessions, hang-ups, hot reload, SIGTERM and SIGKILL;
//! - `sessionless`: 2026-07-28 requests without a session, routing headers;
//! - `streams`: POST streams cut and resumed with `Last-Event-ID`;
//! - `replicas`: gateways on a shared `redis-server`, Redis frozen or gone;
//! - `remote`: a remote upstream over HTTP and HTTPS and how it fails;
//! - `sdk`: the official Python SDK and the Inspector CLI through the gateway;
//! - `metrics`: `--metrics`, read from the gateway and scraped by a real Prometheus;
//! - `traces`: `--traces`, spans received by an OTLP receiver;
//!
//! and their harness: `gateway` (the gateway subprocess, a mini MCP server in Python, raw MCP
//! requests) and `e2e` (the pinned SDK clients and servers). The raw HTTP client, `Temp`, the
//! Redis server and the process helpers come from `mcp-policy-test-support`.
//!
//! Raw HTTP tests run the mini server as the upstream; the end-to-end ones run the pinned
//! clients and servers (installed by `tests/e2e/setup.sh`). Without python3 (or node, for the
//! end-to-end tests) they are skipped with a loud message, except in CI (the `CI` environment
//! variable set), where a missing part fails them.

mod e2e;
mod gateway;

mod audit;
mod auth;
mod metrics;
mod remote;
mod replicas;
mod sdk;
mod sessionless;
mod sessions;
mod streams;
mod traces;
