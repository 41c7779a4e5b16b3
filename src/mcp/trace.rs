//! W3C trace context in MCP messages: the `traceparent` a request carries in
//! `params._meta` (MCP 2026-07-28, SEP-414), read for a tracing observer, replaced in a
//! forwarded request by the gateway's own span, and moved there from an HTTP header.

use serde_json::{Map, Value};

/// The `traceparent` a request carries in `params._meta`, if it is a string.
///
/// ```
/// let m = serde_json::json!({"params": {"_meta": {"traceparent": "00-ab-cd-01"}}});
/// assert_eq!(mcp_policy::mcp::traceparent_of(&m), Some("00-ab-cd-01"));
/// assert_eq!(mcp_policy::mcp::traceparent_of(&serde_json::json!({})), None);
/// ```
pub fn traceparent_of(message: &Value) -> Option<&str> {
    message
        .get("params")?
        .get("_meta")?
        .get("traceparent")?
        .as_str()
}

/// Puts `traceparent` in a request's `params._meta`, replacing one there; `false` (and
/// nothing changed) when the request has no `params` object.
///
/// ```
/// let mut m = serde_json::json!({"method": "tools/call", "params": {"name": "x"}});
/// assert!(mcp_policy::mcp::set_traceparent(&mut m, "00-ab-cd-01"));
/// assert_eq!(m["params"]["_meta"]["traceparent"], "00-ab-cd-01");
/// ```
pub fn set_traceparent(message: &mut Value, traceparent: &str) -> bool {
    let Some(Value::Object(params)) = message.get_mut("params") else {
        return false;
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    match meta {
        Value::Object(meta) => {
            meta.insert("traceparent".into(), Value::from(traceparent));
            true
        }
        _ => false,
    }
}

/// A request body with `traceparent` (an HTTP request's header) moved into its
/// `params._meta`, when it is one JSON object with `params` and carries no trace of its own;
/// `None` when nothing is to change.
///
/// ```
/// use mcp_policy::mcp::with_traceparent;
/// let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
/// let moved = with_traceparent(body, tp).unwrap();
/// let v: serde_json::Value = serde_json::from_slice(&moved).unwrap();
/// assert_eq!(v["params"]["_meta"]["traceparent"], tp);
/// assert!(with_traceparent(&moved, tp).is_none());
/// assert!(with_traceparent(b"[1,2]", tp).is_none());
/// ```
pub fn with_traceparent(body: &[u8], traceparent: &str) -> Option<Vec<u8>> {
    let mut message: Value = crate::mcp::read::parse_line(body).ok()?;
    if message
        .get("params")?
        .get("_meta")
        .is_some_and(|m| m.get("traceparent").is_some())
    {
        return None;
    }
    set_traceparent(&mut message, traceparent)
        .then(|| serde_json::to_vec(&message).ok())
        .flatten()
}
