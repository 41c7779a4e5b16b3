//! A session's MCP server behind one trait: a local command over stdio (the host layer's
//! [`Child`], one per session) or a remote streamable-HTTP server ([`Remote`], one upstream
//! session per session). The session hands messages to it and stops it the same way for
//! both; what only a remote server has (request routing headers, its protocol version) is
//! reached through [`Upstream::remote`].

use crate::host::child::Child;
use crate::http::remote::Remote;

/// Where a session's messages to the server go.
pub trait Upstream: Send + Sync {
    /// Hands one message to the server (a child's pipe write may block; a remote server's
    /// queue never does).
    fn send(&self, line: &[u8]);
    /// Whether [`Upstream::send`] never blocks.
    fn nonblocking(&self) -> bool;
    /// Stops it: a child is stopped and reaped (blocks), a remote session is ended.
    fn stop(&self);
    /// The remote server, when it is one.
    fn remote(&self) -> Option<&Remote> {
        None
    }
}

impl Upstream for Child {
    fn send(&self, line: &[u8]) {
        Child::send(self, line);
    }
    fn nonblocking(&self) -> bool {
        false
    }
    fn stop(&self) {
        Child::stop(self);
    }
}

impl Upstream for Remote {
    fn send(&self, line: &[u8]) {
        Remote::send(self, line);
    }
    fn nonblocking(&self) -> bool {
        true
    }
    fn stop(&self) {
        Remote::stop(self);
    }
    fn remote(&self) -> Option<&Remote> {
        Some(self)
    }
}
