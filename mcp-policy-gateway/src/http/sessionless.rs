//! The session-less mode (protocol 2026-07-28: no `initialize`, no `Mcp-Session-Id`): each
//! caller's requests share one upstream session of their own, started on the first request;
//! each request's routing headers (`Mcp-Method`, `Mcp-Name`, …) must agree with its body, and
//! its id is renamed on the way up (callers' ids may collide) and given back on the way down.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use mcp_policy::mcp::PARSE_ERROR;
use serde_json::Value;

use crate::http::app::App;
use crate::http::guard::Principal;
use crate::http::kind::Kind;
use crate::http::protocol::{HEADER_MISMATCH, PROTOCOL_HEADER};
use crate::http::reply::{refuse, refuse_request};
use crate::http::session::Session;
use crate::http::sse::ResBody;

/// A session-less request's routing headers, passed on to a remote upstream.
pub fn routing_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == PROTOCOL_HEADER
                || n == "mcp-method"
                || n == "mcp-name"
                || n.starts_with("mcp-param-")
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// The routing headers must say what the message says: the policy decides on the message, so
/// nothing downstream may route on a different tool.
fn check_routing(message: &Value, routing: &[(HeaderName, HeaderValue)]) -> Result<(), String> {
    let get = |name: &str| {
        let mut values = routing.iter().filter(|(n, _)| n.as_str() == name);
        let first = values.next().map(|(_, v)| v.to_str().unwrap_or("\u{fffd}"));
        (first, values.next().is_some())
    };
    let params = message.get("params");
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(mcp_policy::mcp::META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    for name in [PROTOCOL_HEADER, "mcp-method", "mcp-name"] {
        if get(name).1 {
            return Err(format!("{name} header given more than once"));
        }
    }
    if let (Some(header), Some(version)) = (get(PROTOCOL_HEADER).0, version)
        && header != version
    {
        return Err(format!(
            "{PROTOCOL_HEADER} header does not match the request's protocol version"
        ));
    }
    if let Some(header) = get("mcp-method").0
        && header != method
    {
        return Err("mcp-method header does not match the request's method".into());
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")),
        "resources/read" => params.and_then(|p| p.get("uri")),
        _ => None,
    }
    .and_then(Value::as_str);
    match (get("mcp-name").0, named) {
        (Some(header), Some(name)) if header != header_value(name) => {
            Err("mcp-name header does not match the request's name".into())
        }
        _ => Ok(()),
    }
}

/// A value as the `Mcp-Name` header carries it: as it is when it is printable ASCII without
/// edge spaces, else `=?base64?…?=`.
fn header_value(value: &str) -> String {
    use base64::Engine as _;
    let printable = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    let sentinel = value.starts_with("=?base64?") && value.ends_with("?=");
    if printable && value == value.trim() && !sentinel {
        value.to_owned()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

/// The caller's session for session-less requests: one upstream per caller, started on the
/// first such request (one start at a time, so that concurrent first requests share it),
/// ended like any session when idle.
async fn stateless_session(
    app: &Arc<App>,
    principal: &Principal,
) -> Result<Arc<Session>, Response<ResBody>> {
    if let Some(s) = app.registry.stateless_of(&principal.name) {
        s.touch();
        return Ok(s);
    }
    let _starting = app.registry.stateless_start.lock().await;
    if let Some(s) = app.registry.stateless_of(&principal.name) {
        s.touch();
        return Ok(s);
    }
    app.start_session(principal, true).await
}

/// A session-less request, ready to go up the caller's shared session.
pub struct Renamed {
    /// The caller's shared session.
    pub session: Arc<Session>,
    /// The request with an id of the gateway's own.
    pub line: Bytes,
    /// The client's own id, given back in the answer.
    pub original: Value,
    /// What the renamed request is.
    pub kind: Kind,
}

/// Takes a session-less request (2026-07-28): its routing headers must say what its body
/// says (else `400` with the request's own id), and it gets an id of its own on the
/// caller's shared session (callers' ids may collide there).
pub async fn take_request(
    app: &Arc<App>,
    principal: &Principal,
    body: &[u8],
    routing: Vec<(HeaderName, HeaderValue)>,
) -> Result<Renamed, Response<ResBody>> {
    let mut message: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Err(refuse(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error")),
    };
    if let Err(why) = check_routing(&message, &routing) {
        // The message was read: its id is known, and JSON-RPC wants it in the answer.
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        return Err(refuse_request(
            StatusCode::BAD_REQUEST,
            &id,
            HEADER_MISMATCH,
            &why,
        ));
    }
    let session = stateless_session(app, principal).await?;
    let fresh = session.fresh_id();
    let Some(slot) = message.as_object_mut().and_then(|m| m.get_mut("id")) else {
        return Err(refuse(StatusCode::BAD_REQUEST, -32600, "Invalid Request"));
    };
    let original = std::mem::replace(slot, fresh.clone());
    let line = Bytes::from(message.to_string());
    let kind = Kind::of(&line);
    session.route(&fresh.to_string(), routing);
    Ok(Renamed {
        session,
        line,
        original,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &'static str)]) -> Vec<(HeaderName, HeaderValue)> {
        pairs
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn routing_headers_must_say_what_the_message_says() {
        let call = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo"}});
        assert!(
            check_routing(
                &call,
                &headers(&[("mcp-method", "tools/call"), ("mcp-name", "echo")])
            )
            .is_ok()
        );
        assert!(check_routing(&call, &headers(&[("mcp-name", "other")])).is_err());
        assert!(check_routing(&call, &headers(&[("mcp-method", "tools/list")])).is_err());
        assert!(
            check_routing(
                &call,
                &headers(&[("mcp-name", "echo"), ("mcp-name", "echo")])
            )
            .is_err()
        );
        assert_eq!(header_value("plain"), "plain");
        assert_eq!(header_value(" edge"), "=?base64?IGVkZ2U=?=");
    }
}
