//! The request guards: which `Host` and `Origin` headers are accepted (DNS rebinding), and
//! who is calling — a bearer token from the keys file (watched and reloaded), a header
//! trusted from an authenticating proxy in front, or nobody (loopback without credentials:
//! the `--grant` caller) — and the grant that caller's calls are decided for.

use std::path::Path;
use std::sync::{Arc, RwLock};

use hyper::header::{self, HeaderMap, HeaderName};
use mcp_policy::Grant;

use crate::host::audit::Audit;
use crate::keys::Keys;
use crate::observe::Metrics;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// What a session is bound to (`key:DIGEST`, `header:VALUE`, `anonymous`).
    pub name: Arc<str>,
    who: Who,
}

/// Where a caller's grant comes from (it is built only when a session starts).
#[derive(Debug, Clone)]
enum Who {
    /// The key with this index in these keys.
    Key(Arc<Keys>, usize),
    /// The trusted header's value.
    Header(String),
    /// No credentials configured: `--grant`.
    Anonymous,
}

/// What the guards accept.
pub struct Guard {
    /// The grant of callers without a credential of their own, and the attributes under
    /// every caller's.
    pub default_grant: Grant,
    keys: Option<RwLock<Arc<Keys>>>,
    trusted_header: Option<HeaderName>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    loopback: bool,
    allow_any_host: bool,
}

/// The host part of a Host header or an origin's authority (`HOST[:PORT]`,
/// `[IPv6][:PORT]`), without the port, in the case it was written: compare it with
/// [`str::eq_ignore_ascii_case`].
fn host_name(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    a.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(a, |(host, _)| host)
}

fn is_loopback_name(host: &str) -> bool {
    ["localhost", "127.0.0.1", "::1"]
        .iter()
        .any(|name| host.eq_ignore_ascii_case(name))
}

impl Guard {
    /// The guards for a gateway listening on a loopback address or not: `Host` values and
    /// origins accepted besides loopback ones (any `Host` when listening elsewhere with none
    /// given), and the credentials.
    pub fn new(
        default_grant: Grant,
        keys: Option<Keys>,
        trusted_header: Option<HeaderName>,
        allowed_hosts: &[String],
        allowed_origins: &[String],
        loopback: bool,
    ) -> Guard {
        Guard {
            default_grant,
            keys: keys.map(|k| RwLock::new(Arc::new(k))),
            trusted_header,
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            loopback,
            allow_any_host: !loopback && allowed_hosts.is_empty(),
        }
    }

    /// Whether any `Host` header is accepted (said once at start).
    pub fn allows_any_host(&self) -> bool {
        self.allow_any_host
    }

    /// Whether the request's `Host` header is accepted.
    pub fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let full_host = host.trim();
        let name = host_name(host);
        (self.loopback && is_loopback_name(name))
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(full_host) || h.eq_ignore_ascii_case(name))
            || self.allow_any_host
    }

    /// Whether the request's `Origin` (if any) is accepted.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Not a browser: DNS rebinding needs one.
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        self.loopback && authority.is_some_and(|a| is_loopback_name(host_name(a)))
    }

    /// Who is calling; `None`: not authenticated.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Principal> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        if let (Some(slot), Some(token)) = (&self.keys, bearer) {
            let keys = Arc::clone(
                &slot
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let (index, key) = keys.lookup(token)?;
            let name = Arc::clone(&key.principal);
            return Some(Principal {
                name,
                who: Who::Key(keys, index),
            });
        }
        if let Some(name) = &self.trusted_header {
            let value = headers.get(name)?.to_str().ok()?.trim();
            if value.is_empty() {
                return None;
            }
            return Some(Principal {
                name: format!("header:{value}").into(),
                who: Who::Header(value.to_owned()),
            });
        }
        if self.keys.is_some() {
            return None;
        }
        // No credentials configured (loopback only): the caller is --grant.
        Some(Principal {
            name: "anonymous".into(),
            who: Who::Anonymous,
        })
    }

    /// The grant a caller's calls are decided for: the key's (or the header's, or
    /// `--grant`) id, with the `--attr` defaults under the key's own attributes.
    pub fn grant_of(&self, principal: &Principal) -> Grant {
        let mut grant = match &principal.who {
            Who::Key(keys, index) => match keys.get(*index) {
                Some(key) => {
                    let mut grant = Grant::new(key.grant.clone());
                    grant.attrs.extend(self.default_grant.attrs.clone());
                    grant.attrs.extend(key.attrs.clone());
                    return grant;
                }
                // Not reachable: the index came from these very keys.
                None => Grant::new(self.default_grant.id.clone()),
            },
            Who::Header(value) => Grant::new(value.clone()),
            Who::Anonymous => Grant::new(self.default_grant.id.clone()),
        };
        grant.attrs.extend(self.default_grant.attrs.clone());
        grant
    }

    /// A new keys file text: swapped in when it parses, else reported on stderr and in the
    /// audit log while the running keys stay.
    fn reload_keys(&self, audit: &Audit, metrics: Option<&Metrics>, shown: &str, text: &str) {
        let Some(slot) = &self.keys else {
            return;
        };
        match Keys::parse(text) {
            Ok(keys) => {
                let n = keys.len();
                if let Some(metrics) = metrics {
                    metrics.reload("keys", true);
                }
                *slot
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
                eprintln!("mcp-policy proxy: {shown}: keys reloaded ({n})");
                audit.line(vec![
                    ("event", "keys_reload".into()),
                    ("keys", shown.into()),
                    ("count", n.into()),
                ]);
            }
            Err(e) => {
                if let Some(metrics) = metrics {
                    metrics.reload("keys", false);
                }
                eprintln!(
                    "mcp-policy proxy: {shown}: {e}; the change does not load, the running keys stay"
                );
                audit.line(vec![
                    ("event", "keys_reload_rejected".into()),
                    ("keys", shown.into()),
                ]);
            }
        }
    }
}

/// Watches the keys file at `path` for the gateway `host`, whose guard and audit log `parts`
/// finds; the watcher stops when the returned value is dropped.
pub fn watch_keys<H: Send + Sync + 'static>(
    host: &Arc<H>,
    path: &Path,
    parts: fn(&H) -> (&Guard, &Audit, Option<&Metrics>),
) -> Option<notify::RecommendedWatcher> {
    let weak = Arc::downgrade(host);
    let shown = path.display().to_string();
    let initial = std::fs::read_to_string(path).unwrap_or_default();
    crate::host::watch::watch_file(path, initial, "keys", move |now| {
        if let Some(host) = weak.upgrade() {
            let (guard, audit, metrics) = parts(&host);
            guard.reload_keys(audit, metrics, &shown, now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(host_name("LocalHost:8080"), "LocalHost");
        assert_eq!(host_name(" [::1]:80"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example:1"), "evil.example");
        assert!(is_loopback_name(host_name("LocalHost:8080")));
        assert!(is_loopback_name(host_name("localhost")));
        assert!(!is_loopback_name(host_name("localhost.evil.example")));
        assert!(!is_loopback_name(host_name("[::2]:80")));
    }
}
