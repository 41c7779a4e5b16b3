//! The streamable-HTTP transport's names, shared by the server side and the remote upstream:
//! paths, headers, protocol versions and the transport's own JSON-RPC error codes.

use hyper::header::HeaderName;

/// The path MCP is served at.
pub const MCP_PATH: &str = "/mcp";
/// The health endpoint.
pub const HEALTH_PATH: &str = "/healthz";

/// The header a streamable-HTTP session is named in.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The header a client names its protocol version in.
pub const PROTOCOL_HEADER: &str = "mcp-protocol-version";
/// The session's and the protocol version's headers as `HeaderName`s (a lookup by one skips
/// parsing the name).
pub const SESSION_NAME: HeaderName = HeaderName::from_static(SESSION_HEADER);
/// See [`SESSION_NAME`].
pub const PROTOCOL_NAME: HeaderName = HeaderName::from_static(PROTOCOL_HEADER);

/// The versions that begin with an `initialize` handshake and use sessions; a request that
/// names another version and no session is session-less (2026-07-28).
pub const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// JSON-RPC error for routing headers that disagree with the message (2026-07-28).
pub const HEADER_MISMATCH: i64 = -32020;
