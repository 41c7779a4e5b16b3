//! One audit line as bytes: `ts` first, then the record's fields in the audit log's order,
//! `args_sha256` after the decision. Written straight into the writer's buffer (no
//! intermediate `Value`s or strings): formatting is most of what a line costs.

use std::io::Write;
use std::time::SystemTime;

use mcp_policy::mcp::AuditRecord;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Appends `"key":` (with the comma before it unless it is the line's first field).
fn key(buf: &mut Vec<u8>, key: &str) {
    if buf.last() != Some(&b'{') {
        buf.push(b',');
    }
    json(buf, key);
    buf.push(b':');
}

/// Appends `value` as compact JSON. Writing to a `Vec` cannot fail, and a `Value` or a
/// string always serialises.
fn json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *buf, value);
}

/// Appends `{"ts":"…"` (RFC 3339, milliseconds, UTC).
fn open(buf: &mut Vec<u8>, ts: SystemTime) {
    buf.extend_from_slice(br#"{"ts":""#);
    let _ = write!(buf, "{}", humantime::format_rfc3339_millis(ts));
    buf.push(b'"');
}

/// Appends one call's line, newline included.
///
/// ```
/// use mcp_policy::mcp::AuditRecord;
/// use mcp_policy::subject::Kind;
/// use mcp_policy_gateway::host::audit::format::record_line;
/// let record = AuditRecord {
///     grant: "alice".into(), session: None, tool: "echo".into(), kind: Kind::Tool,
///     decision: serde_json::json!({"decision": "allow", "rule": "/tools/echo"}),
///     args_canonical: "{}".into(), args: None, upstream: Some("ok"), refunded: false,
///     policy_us: 3, total_us: 90,
/// };
/// let mut line = Vec::new();
/// record_line(&mut line, std::time::UNIX_EPOCH, &record);
/// assert_eq!(String::from_utf8(line).unwrap(), concat!(
///     r#"{"ts":"1970-01-01T00:00:00.000Z","grant":"alice","session":null,"tool":"echo","#,
///     r#""decision":"allow","rule":"/tools/echo","#,
///     r#""args_sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","#,
///     r#""upstream":"ok","policy_us":3,"total_us":90}"#, "\n"));
/// ```
pub fn record_line(buf: &mut Vec<u8>, ts: SystemTime, record: &AuditRecord) {
    open(buf, ts);
    key(buf, "grant");
    json(buf, &record.grant);
    key(buf, "session");
    json(buf, &record.session);
    key(buf, record.kind.as_str());
    json(buf, &record.tool);
    if let Value::Object(map) = &record.decision {
        for name in AuditRecord::DECISION_FIELDS {
            if let Some(value) = map.get(name) {
                key(buf, name);
                json(buf, value);
            }
        }
    }
    key(buf, "args_sha256");
    buf.push(b'"');
    hex(buf, &Sha256::digest(record.args_canonical.as_bytes()));
    buf.push(b'"');
    if let Some(args) = &record.args {
        key(buf, "args");
        json(buf, args);
    }
    if let Some(upstream) = record.upstream {
        key(buf, "upstream");
        json(buf, upstream);
    }
    if record.refunded {
        key(buf, "refunded");
        buf.extend_from_slice(b"true");
    }
    key(buf, "policy_us");
    let _ = write!(buf, "{}", record.policy_us);
    key(buf, "total_us");
    let _ = write!(buf, "{}", record.total_us);
    buf.extend_from_slice(b"}\n");
}

/// Appends one event's line (`ts`, then `fields` in order), newline included.
///
/// ```
/// use mcp_policy_gateway::host::audit::format::event_line;
/// let mut line = Vec::new();
/// event_line(&mut line, std::time::UNIX_EPOCH, &[("event", "stop".into())]);
/// assert_eq!(line, b"{\"ts\":\"1970-01-01T00:00:00.000Z\",\"event\":\"stop\"}\n");
/// ```
pub fn event_line(buf: &mut Vec<u8>, ts: SystemTime, fields: &[(&str, Value)]) {
    open(buf, ts);
    for (name, value) in fields {
        key(buf, name);
        json(buf, value);
    }
    buf.extend_from_slice(b"}\n");
}

/// Appends `bytes` as lowercase hex.
fn hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    for b in bytes {
        buf.push(digit(b >> 4));
        buf.push(digit(b & 0xf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_policy::subject::Kind;
    use serde_json::json;

    /// The line as the log wrote it before it was formatted by hand: `ts`, the record's
    /// `fields()` through `Value`, `args_sha256` after the decision.
    fn reference(ts: SystemTime, record: &AuditRecord) -> String {
        let mut fields = record.fields();
        let digest = Sha256::digest(record.args_canonical.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let at = fields
            .iter()
            .position(|(k, _)| matches!(*k, "args" | "upstream" | "refunded" | "policy_us"))
            .unwrap_or(fields.len());
        fields.insert(at, ("args_sha256", hex.into()));
        let ts = humantime::format_rfc3339_millis(ts).to_string();
        let mut map = Vec::new();
        for (k, v) in std::iter::once(("ts", Value::from(ts))).chain(fields) {
            map.push(format!("{}:{}", Value::from(k), v));
        }
        format!("{{{}}}\n", map.join(","))
    }

    #[test]
    fn lines_are_what_the_value_based_writer_wrote() {
        let ts = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_763_712_000_123);
        let records = [
            AuditRecord {
                grant: "a\"lice\n".into(),
                session: Some("s-1".into()),
                tool: "file:///srv/a b".into(),
                kind: Kind::Resource,
                decision: json!({"decision": "limit", "rule": "/resources/x", "counter": "c",
                    "retry_after_ms": 1500, "remaining": 0, "message": "slow ✓ down"}),
                args_canonical: r#"{"a":1}"#.into(),
                args: Some(json!({"a": 1, "b": [true, null, "x\u{1}"]})),
                upstream: None,
                refunded: true,
                policy_us: 0,
                total_us: u64::MAX,
            },
            AuditRecord {
                grant: String::new(),
                session: None,
                tool: "p".into(),
                kind: Kind::Prompt,
                decision: json!({"decision": "approve", "approval_id": "ap-1", "rule": null}),
                args_canonical: String::new(),
                args: None,
                upstream: Some("input_required"),
                refunded: false,
                policy_us: 12,
                total_us: 34,
            },
        ];
        for record in &records {
            let mut line = Vec::new();
            record_line(&mut line, ts, record);
            assert_eq!(String::from_utf8(line).unwrap(), reference(ts, record));
        }
    }
}
