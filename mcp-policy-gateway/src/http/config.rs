//! The HTTP gateway's configuration: what it is told ([`HttpOptions`]) and what it makes of
//! it before it serves — the address (loopback unless allowed otherwise, and then only with
//! callers that are known), the trusted header, the upstream, the event loop count.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use hyper::header::{self, HeaderName};

use crate::error::Error;
use crate::http::registry::UpstreamKind;
use crate::http::remote::Target;
use crate::options::HostOptions;

/// The HTTP gateway's own options (beside the [`HostOptions`] both hosts share).
///
/// ```
/// use mcp_policy_gateway::http::HttpOptions;
/// let mut http = HttpOptions::new("127.0.0.1:8080");
/// http.max_sessions = 32;
/// assert_eq!(http.session_idle, std::time::Duration::from_secs(30 * 60));
/// ```
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The address to serve at, `HOST:PORT` (port 0: any free port).
    pub listen: String,
    /// The callers' credentials: a keys file (watched).
    pub keys: Option<PathBuf>,
    /// Whether a non-loopback address may be served (needs `keys` or `trusted_header`).
    pub allow_remote: bool,
    /// A header set by an authenticating reverse proxy in front, naming the grant.
    pub trusted_header: Option<String>,
    /// `Host` values accepted besides the loopback names.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// A session with no request for this long (and no call in flight) is ended.
    pub session_idle: Duration,
    /// Sessions at most (each with its own upstream).
    pub max_sessions: usize,
    /// On a stop signal, how long requests in flight may take.
    pub shutdown_grace: Duration,
    /// A remote MCP server over streamable HTTP as the upstream (instead of the command).
    pub upstream: Option<String>,
    /// Headers sent to the remote upstream, `NAME: VALUE`.
    pub upstream_headers: Vec<String>,
    /// Certificates (PEM) to trust for an `https://` upstream, besides the system's.
    pub upstream_ca: Option<PathBuf>,
    /// Event loops (default: one per CPU this process may use, at most 1024).
    pub threads: Option<usize>,
}

impl HttpOptions {
    /// Options with the defaults: no credentials (loopback only), sessions idle for 30
    /// minutes end, 256 sessions at most, 30 s of shutdown grace, one event loop per CPU.
    pub fn new(listen: impl Into<String>) -> HttpOptions {
        HttpOptions {
            listen: listen.into(),
            keys: None,
            allow_remote: false,
            trusted_header: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            session_idle: Duration::from_secs(30 * 60),
            max_sessions: 256,
            shutdown_grace: Duration::from_secs(30),
            upstream: None,
            upstream_headers: Vec::new(),
            upstream_ca: None,
            threads: None,
        }
    }
}

/// What the options come to, checked.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Whether it is a loopback address.
    pub loopback: bool,
    /// The trusted header's name.
    pub trusted_header: Option<HeaderName>,
    /// Where sessions' servers are.
    pub upstream: UpstreamKind,
    /// The event loop count.
    pub threads: usize,
}

impl HttpOptions {
    /// Checks the options against each other and resolves the address.
    pub(crate) fn check(&self, host: &HostOptions) -> Result<Checked, Error> {
        let upstream = match &self.upstream {
            Some(_) if !host.command.is_empty() => {
                return Err(Error::Usage(
                    "give either --upstream URL or a command after --, not both".into(),
                ));
            }
            Some(url) => UpstreamKind::Remote(Box::new(
                Target::parse(url, &self.upstream_headers, self.upstream_ca.as_deref())
                    .map_err(Error::Usage)?,
            )),
            None if host.command.is_empty() => {
                return Err(Error::Usage("no upstream; usage: mcp-policy proxy --listen ADDR --policy P (--upstream URL | -- COMMAND [ARG]...)".into()));
            }
            None => UpstreamKind::Command(host.command.clone()),
        };
        let listen = &self.listen;
        let addr = listen
            .to_socket_addrs()
            .map_err(|e| Error::Usage(format!("--listen {listen}: {e}")))?
            .next()
            .ok_or_else(|| Error::Usage(format!("--listen {listen}: no address")))?;
        let loopback = addr.ip().is_loopback();
        if !loopback && !self.allow_remote {
            return Err(Error::Usage(format!(
                "--listen {listen}: not a loopback address; add --allow-remote to serve other hosts (and put TLS in front, see docs/GATEWAY.md)"
            )));
        }
        if !loopback && self.keys.is_none() && self.trusted_header.is_none() {
            return Err(Error::Usage(
                "--allow-remote needs callers to be known: give --keys FILE or --trusted-header NAME"
                    .into(),
            ));
        }
        let trusted_header = match &self.trusted_header {
            None => None,
            Some(name) => Some(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::Usage(format!("--trusted-header {name}: not a header name"))
            })?),
        };
        if trusted_header == Some(header::AUTHORIZATION) {
            return Err(Error::Usage(
                "--trusted-header cannot be Authorization".into(),
            ));
        }
        let threads = match self.threads {
            Some(n) => n.clamp(1, 1024),
            None => std::thread::available_parallelism().map_or(1, |n| usize::from(n).min(1024)),
        };
        Ok(Checked {
            addr,
            loopback,
            trusted_header,
            upstream,
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_addresses_need_known_callers() {
        let host = HostOptions::new("p.json", vec!["server".into()]);
        let mut http = HttpOptions::new("0.0.0.0:0");
        assert!(
            http.check(&host)
                .unwrap_err()
                .to_string()
                .contains("not a loopback address")
        );
        http.allow_remote = true;
        assert!(
            http.check(&host)
                .unwrap_err()
                .to_string()
                .contains("--keys FILE")
        );
        http.trusted_header = Some("authorization".into());
        assert!(http.check(&host).is_err());
        http.trusted_header = Some("x-user".into());
        let checked = http.check(&host).unwrap();
        assert!(!checked.loopback);
        assert!(checked.threads >= 1);
    }

    #[test]
    fn one_upstream() {
        let mut http = HttpOptions::new("127.0.0.1:0");
        http.upstream = Some("http://127.0.0.1:9/mcp".into());
        let host = HostOptions::new("p.json", vec!["server".into()]);
        assert!(
            http.check(&host)
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
        assert!(
            HttpOptions::new("127.0.0.1:0")
                .check(&HostOptions::new("p.json", vec![]))
                .is_err()
        );
    }
}
