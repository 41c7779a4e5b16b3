//! What both hosts are told: the policy file, the caller's grant, the store, the audit log,
//! approvals, the message size limit and the upstream command — with the parsers a command
//! line needs for them (durations, grants, the policy file's load errors).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mcp_policy::{Grant, LoadErrors, Policy};
use serde_json::Value;

use crate::error::Error;
use crate::store::StoreUrl;

/// The default size limit of one message from a client: 4 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 4 << 20;

/// The default time a human has to answer an approval request.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(120);

/// The options both hosts share.
///
/// ```
/// use mcp_policy_gateway::{HostOptions, StoreUrl};
/// let options = HostOptions::new("policy.json", vec!["my-mcp-server".into(), "--stdio".into()]);
/// assert_eq!(options.store, StoreUrl::Memory);
/// assert_eq!(options.grant.id, "local");
/// assert!(options.audit.is_none());
/// ```
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The policy file (watched: a change that loads is swapped in).
    pub policy: PathBuf,
    /// The caller's grant (the stdio proxy's one caller; the HTTP gateway's callers without
    /// a credential of their own, and the attributes under every caller's).
    pub grant: Grant,
    /// Where counters and approvals live.
    pub store: StoreUrl,
    /// Where audit lines go: a file (appended), `-` for stderr, or nowhere.
    pub audit: Option<String>,
    /// Whether the raw arguments go in the audit log (else only their SHA-256).
    pub audit_args: bool,
    /// Whether each audit line is written and `fdatasync`ed before its call is answered
    /// (`--audit-sync`), else by the log's writer thread (see [`crate::host::audit`]).
    pub audit_sync: bool,
    /// How long a human has to answer an approval request.
    pub approval_timeout: Duration,
    /// The size limit of one message from a client, in bytes.
    pub max_message: usize,
    /// The upstream MCP server: a program and its arguments.
    pub command: Vec<String>,
    /// Where Prometheus metrics are served, if anywhere (off by default: then no observer
    /// runs at all).
    pub metrics: Option<crate::observe::MetricsAt>,
    /// Export OpenTelemetry traces over OTLP (also on with `OTEL_TRACES_EXPORTER=otlp`; see
    /// [`crate::observe::traces`]).
    pub traces: bool,
}

impl HostOptions {
    /// Options with the defaults: the grant `local` (or `$MCP_POLICY_GRANT`), the in-memory
    /// store, no audit log, approvals answered within 2 minutes, messages of up to 4 MiB.
    pub fn new(policy: impl Into<PathBuf>, command: Vec<String>) -> HostOptions {
        HostOptions {
            policy: policy.into(),
            grant: grant(None, &[]).unwrap_or_else(|_| Grant::new("local")),
            store: StoreUrl::Memory,
            audit: None,
            audit_args: false,
            audit_sync: false,
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
            max_message: DEFAULT_MAX_MESSAGE,
            command,
            metrics: None,
            traces: false,
        }
    }
}

/// A positive duration such as `2m` or `1h30m`, for the option `flag`.
///
/// ```
/// use std::time::Duration;
/// use mcp_policy_gateway::options::positive_duration;
/// assert_eq!(positive_duration("--session-idle", "90s").unwrap(), Duration::from_secs(90));
/// assert!(positive_duration("--session-idle", "soon").is_err());
/// ```
pub fn positive_duration(flag: &str, text: &str) -> Result<Duration, Error> {
    match mcp_policy::duration::parse_duration(text) {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        Ok(_) => Err(Error::Usage(format!("{flag} must be positive"))),
        Err(e) => Err(Error::Usage(format!("{flag}: {e}"))),
    }
}

/// The caller's grant: `id` (else `$MCP_POLICY_GRANT`, else `local`), a session of its own
/// (this process and the time), and `KEY=VALUE` attributes.
///
/// ```
/// let grant = mcp_policy_gateway::options::grant(Some("ci".into()), &["team=sec".into()]).unwrap();
/// assert_eq!(grant.id, "ci");
/// assert_eq!(grant.attrs["team"], "sec");
/// assert!(mcp_policy_gateway::options::grant(None, &["novalue".into()]).is_err());
/// ```
pub fn grant(id: Option<String>, attrs: &[String]) -> Result<Grant, Error> {
    let id = id
        .or_else(|| {
            std::env::var("MCP_POLICY_GRANT")
                .ok()
                .filter(|g| !g.is_empty())
        })
        .unwrap_or_else(|| "local".to_owned());
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let session = format!("{}-{nanos:x}", std::process::id());
    let mut grant = Grant::new(id).with_session(session);
    for pair in attrs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::Usage(format!("--attr {pair}: expected KEY=VALUE")));
        };
        if k.is_empty() {
            return Err(Error::Usage(format!("--attr {pair}: the key is empty")));
        }
        grant.attrs.insert(k.to_owned(), Value::from(v));
    }
    Ok(grant)
}

/// Reads and compiles a policy file; its text is kept to tell a later change from none.
pub fn read_policy(path: &Path) -> Result<(Policy, String), Error> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Policy(vec![format!("{shown}: cannot read the policy: {e}")]))?;
    let policy =
        Policy::from_json_str(&text).map_err(|e| Error::Policy(load_error_lines(&shown, &e)))?;
    Ok((policy, text))
}

/// Load errors as `FILE:LINE:COL: POINTER: MESSAGE` lines (the pointer `(document)` for the
/// whole document).
///
/// ```
/// let errors = mcp_policy::Policy::from_json_str(r#"{"version":"2"}"#).unwrap_err();
/// let lines = mcp_policy_gateway::options::load_error_lines("p.json", &errors);
/// assert!(lines[0].starts_with("p.json:1:"), "{lines:?}");
/// ```
pub fn load_error_lines(file: &str, errors: &LoadErrors) -> Vec<String> {
    errors
        .errors()
        .iter()
        .map(|error| {
            let (line, column) = error.position.map_or((1, 1), |p| (p.line, p.column));
            let pointer = if error.pointer.is_empty() {
                "(document)"
            } else {
                error.pointer.as_str()
            };
            format!("{file}:{line}:{column}: {pointer}: {}", error.kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_from_flags() {
        let grant = grant(Some("ci".into()), &["team=sec".into(), "tier=a=b".into()]).unwrap();
        assert_eq!(grant.id, "ci");
        assert_eq!(grant.attrs["team"], "sec");
        assert_eq!(grant.attrs["tier"], "a=b");
        assert!(grant.session.is_some());
        assert!(super::grant(None, &["=v".into()]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            positive_duration("--x", "2m").unwrap(),
            Duration::from_secs(120)
        );
        assert!(positive_duration("--x", "soon").is_err());
    }
}
