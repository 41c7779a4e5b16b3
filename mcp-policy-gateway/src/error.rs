//! Why a host could not start: typed, each message naming the option or file at fault.

/// Why a host could not start (once serving, a host reports what goes wrong on stderr and
/// in the audit log, and keeps serving or stops as docs/GATEWAY.md says).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option's value cannot be used (`--listen 10.0.0.1:80: not a loopback address…`).
    #[error("{0}")]
    Usage(String),
    /// The policy does not load: one `FILE:LINE:COL: POINTER: MESSAGE` line per problem.
    #[error("{}", .0.join("\n"))]
    Policy(Vec<String>),
    /// The counter store cannot be reached (`--store redis://…: …`).
    #[error("{0}")]
    Store(String),
    /// The upstream MCP server cannot be started or reached.
    #[error("{0}")]
    Upstream(String),
    /// A file or socket of the gateway's own (the audit log, the keys file, the listening
    /// socket, the event loops).
    #[error("{0}")]
    Io(String),
}
