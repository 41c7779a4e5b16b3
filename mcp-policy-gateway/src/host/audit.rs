//! The audit log: one JSON line per `tools/call` that reached the policy, and one per policy
//! event (start, reload, rejected reload, stop), shared by the stdio proxy and the HTTP
//! gateway. Field order is fixed: `ts` first, then the record's fields, with `args_sha256`
//! after the decision.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use mcp_policy::mcp::AuditRecord;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::host::sync::lock;

/// Where audit lines go: a file (appended), standard error, or nowhere.
pub struct Audit(Mutex<Option<Box<dyn Write + Send>>>);

impl Audit {
    /// Opens `--audit FILE|-` (`-` is standard error; the protocol owns standard output).
    ///
    /// ```
    /// use mcp_policy_gateway::host::audit::Audit;
    /// let path = std::env::temp_dir().join(format!("audit-doc-{}.jsonl", std::process::id()));
    /// let audit = Audit::open(Some(path.to_str().unwrap())).unwrap();
    /// audit.line(vec![("event", "start".into())]);
    /// let text = std::fs::read_to_string(&path).unwrap();
    /// assert!(text.starts_with(r#"{"ts":"#) && text.ends_with("\"event\":\"start\"}\n"));
    /// std::fs::remove_file(path).unwrap();
    /// assert!(!Audit::open(None).unwrap().enabled());
    /// ```
    pub fn open(target: Option<&str>) -> Result<Audit, Error> {
        let out: Option<Box<dyn Write + Send>> = match target {
            None => None,
            Some("-") => Some(Box::new(std::io::stderr())),
            Some(path) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(file) => Some(Box::new(file)),
                Err(e) => return Err(Error::Io(format!("--audit {path}: {e}"))),
            },
        };
        Ok(Audit(Mutex::new(out)))
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        lock(&self.0).is_some()
    }

    /// Writes one line: `ts`, then `fields` in order. A write error stops audit logging
    /// (said once on stderr) rather than the proxy.
    pub fn line(&self, fields: Vec<(&str, Value)>) {
        let mut audit = lock(&self.0);
        let Some(out) = audit.as_mut() else {
            return;
        };
        let mut text = String::with_capacity(256);
        text.push('{');
        let ts = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut first = true;
        for (key, value) in std::iter::once(("ts", Value::from(ts))).chain(fields) {
            if !first {
                text.push(',');
            }
            first = false;
            text.push_str(&Value::from(key).to_string());
            text.push(':');
            text.push_str(&value.to_string());
        }
        text.push_str("}\n");
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            eprintln!("mcp-policy proxy: cannot write the audit log; audit logging stops");
            *audit = None;
        }
    }

    /// The `start` line of a host: its policy file and revision, its upstream, then
    /// `more` (the HTTP gateway's address and event loops).
    pub fn start(&self, policy: &Path, revision: &str, upstream: &str, more: Vec<(&str, Value)>) {
        let mut fields = vec![
            ("event", "start".into()),
            ("policy", policy.display().to_string().into()),
            ("revision", revision.into()),
            ("upstream", upstream.into()),
        ];
        fields.extend(more);
        self.line(fields);
    }

    /// Writes one call's record, with the SHA-256 of its canonical arguments.
    pub fn call(&self, record: &AuditRecord) {
        if !self.enabled() {
            return;
        }
        let mut fields = record.fields();
        let digest = Sha256::digest(record.args_canonical.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        // `args_sha256` after the decision fields, before the upstream outcome.
        let at = fields
            .iter()
            .position(|(k, _)| matches!(*k, "args" | "upstream" | "refunded" | "policy_us"))
            .unwrap_or(fields.len());
        fields.insert(at, ("args_sha256", hex.into()));
        self.line(fields);
    }
}
