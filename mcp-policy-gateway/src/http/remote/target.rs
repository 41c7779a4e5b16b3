//! `--upstream URL`: where a remote MCP server is and how to reach it — its address, the
//! request target, the headers every request carries, and TLS for `https://`.

use std::path::Path;
use std::sync::Arc;

use hyper::header::{self, HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::http::protocol::{PROTOCOL_NAME, SESSION_NAME};

/// Where the remote server is.
#[derive(Clone)]
pub struct Target {
    /// `HOST:PORT` to connect to.
    pub(super) authority: String,
    /// The request target (the URL's path and query), parsed once.
    pub(super) path: hyper::Uri,
    /// The headers every request carries, built once: `Host`, `Content-Type`, `Accept`, then
    /// the `--upstream-header`s (which replace any of those they name). Cloning it for each
    /// request costs less than building it.
    pub(super) base: hyper::HeaderMap,
    /// Whether the `--upstream-header`s name `Mcp-Session-Id` / `MCP-Protocol-Version`: then
    /// the operator's value is sent, not the session's.
    pub(super) fixed_session: bool,
    pub(super) fixed_protocol: bool,
    /// For `https://`: the TLS client and the name the certificate must carry.
    pub(super) tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// Idle keep-alive connections to the server, shared by every session (clones of a
    /// target share it): a connection carries no session, each request names its own.
    pub(super) pool: Arc<super::Pool>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses `http://` or `https://HOST[:PORT][/PATH]` and the `--upstream-header`s
    /// (`Name: value`); `ca`: certificates (PEM) to trust besides the system's, for https.
    pub fn parse(url: &str, headers: &[String], ca: Option<&Path>) -> Result<Target, String> {
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => {
                return Err(format!(
                    "--upstream {url}: expected an http:// or https:// URL"
                ));
            }
        };
        let (host, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if host.is_empty() || host.contains('@') || host.contains(['?', '#']) {
            return Err(format!(
                "--upstream {url}: expected http(s)://HOST[:PORT]/PATH"
            ));
        }
        let has_port = match host.rfind(':') {
            Some(at) => !host.ends_with(']') && host.get(at + 1..).is_some_and(|p| !p.is_empty()),
            None => false,
        };
        let authority = if has_port {
            host.to_owned()
        } else {
            format!("{host}:{}", if https { 443 } else { 80 })
        };
        let host = HeaderValue::from_str(host)
            .map_err(|_| format!("--upstream {url}: `{host}` is not a host"))?;
        let mut base = hyper::HeaderMap::new();
        base.insert(header::HOST, host.clone());
        base.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        base.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        let (mut fixed_session, mut fixed_protocol) = (false, false);
        for h in headers {
            let Some((name, value)) = h.split_once(':') else {
                return Err(format!("--upstream-header {h}: expected NAME: VALUE"));
            };
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("--upstream-header {h}: not a header name"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("--upstream-header {h}: not a header value"))?;
            fixed_session |= name == SESSION_NAME;
            fixed_protocol |= name == PROTOCOL_NAME;
            base.insert(name, value);
        }
        let tls = match (https, ca) {
            (false, Some(_)) => {
                return Err(format!(
                    "--upstream-ca is for an https:// upstream, not {url}"
                ));
            }
            (false, None) => None,
            (true, _) => {
                let name = authority
                    .rsplit_once(':')
                    .map_or(authority.as_str(), |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = ServerName::try_from(name.to_owned())
                    .map_err(|_| format!("--upstream {url}: `{name}` is not a TLS server name"))?;
                Some((tls_connector(ca)?, name))
            }
        };
        let path = path
            .parse::<hyper::Uri>()
            .map_err(|_| format!("--upstream {url}: `{path}` is not a path"))?;
        Ok(Target {
            authority,
            path,
            base,
            fixed_session,
            fixed_protocol,
            tls,
            pool: Arc::default(),
        })
    }
}

/// A TLS client trusting the system's roots and the certificates in `ca`.
fn tls_connector(ca: Option<&Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("--upstream-ca {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--upstream-ca {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--upstream-ca {}: no PEM certificate in the file",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("--upstream-ca {}: {e}", path.display()))?;
        }
    } else if added == 0 {
        return Err(
            "--upstream https://…: no trusted certificates on this system; give --upstream-ca FILE"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
