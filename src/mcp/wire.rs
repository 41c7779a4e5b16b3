//! What the gateway writes: JSON-RPC error responses, `tools/call` results and errors that
//! refuse a request, the answers for hidden things, and the protocol's constants (error codes, `_meta` keys, versions, id prefixes).

use serde_json::{Value, json};

use crate::decision::Decision;
use crate::subject::Kind;

/// The `_meta` key under which a refused call's decision travels.
pub const DECISION_META: &str = "io.mcp-policy/decision";

/// The prefix of the ids of the requests a gateway itself sends to a client (elicitation).
pub const OWN_ID_PREFIX: &str = "io.mcp-policy/";

/// The `resultType` of a 2026-07-28 result that asks the client for input before the call
/// can go on.
pub const INPUT_REQUIRED: &str = "input_required";
/// The error a request gets when the server went away before answering it.
/// The error a request gets when the server went away before answering it.
pub(crate) const GONE: &str = "the MCP server behind this gateway exited before answering";

/// The protocol version without server-to-client requests, where approvals travel in
/// `input_required` results.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// Where a 2026-07-28 request carries its protocol version (`params._meta`).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// Where a 2026-07-28 request carries the client's `clientInfo` (`params._meta`).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// JSON-RPC: invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request (a batch, here).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: invalid params (and unknown or hidden tools, as MCP servers answer them).
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: internal error (the upstream server went away).
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP: resource not found (also a hidden resource's answer).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// A resource read, subscription or prompt the policy refused (deny, limit, or an approval
/// not given); the decision is in the error's `data` under [`DECISION_META`].
pub const POLICY_REFUSED: i64 = -32003;

/// A JSON-RPC error response.
pub fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// A `tools/call` result with `isError: true`, the text, and the decision in `_meta`;
/// `stateless` (a 2026-07-28 request) adds the `resultType` that version requires.
pub fn tool_error(id: &Value, text: &str, decision: Value, stateless: bool) -> Value {
    let mut answer = json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "content": [ { "type": "text", "text": text } ],
            "isError": true,
            "_meta": { DECISION_META: decision },
        }
    });
    if stateless && let Some(Value::Object(result)) = answer.get_mut("result") {
        result.insert("resultType".into(), "complete".into());
    }
    answer
}

/// The answer that refuses a request for a resource or a prompt: a JSON-RPC error
/// ([`POLICY_REFUSED`]) with the text as its message and the decision in `data`.
pub fn request_error(id: &Value, text: &str, decision: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": POLICY_REFUSED, "message": text, "data": { DECISION_META: decision } },
    })
}

/// The answer that refuses a request of `kind`: a tool call gets an `isError` result
/// ([`tool_error`]), a resource or prompt request a JSON-RPC error ([`request_error`]).
pub fn refused(id: &Value, kind: Kind, text: &str, decision: Value, stateless: bool) -> Value {
    match kind {
        Kind::Tool => tool_error(id, text, decision, stateless),
        Kind::Resource | Kind::Prompt => request_error(id, text, decision),
    }
}

/// The answer for a hidden tool, resource or prompt: what a server answers for one that
/// does not exist (`Unknown tool: NAME`, `Resource not found`, `Unknown prompt: NAME`).
pub fn unknown(id: &Value, kind: Kind, name: &str) -> Value {
    match kind {
        Kind::Tool => error_response(id, INVALID_PARAMS, &format!("Unknown tool: {name}")),
        Kind::Prompt => error_response(id, INVALID_PARAMS, &format!("Unknown prompt: {name}")),
        Kind::Resource => json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": RESOURCE_NOT_FOUND, "message": "Resource not found", "data": { "uri": name } },
        }),
    }
}

/// The answer to a denied or rate-limited call (`stateless`: see [`tool_error`]).
pub fn refusal(id: &Value, decision: &Decision, stateless: bool) -> Value {
    refusal_of(id, Kind::Tool, decision, stateless)
}

/// The answer to a denied or rate-limited request of `kind` (see [`refused`]).
pub fn refusal_of(id: &Value, kind: Kind, decision: &Decision, stateless: bool) -> Value {
    let mut text = decision
        .message
        .as_deref()
        .unwrap_or("this call is not allowed by the policy")
        .to_owned();
    if let Some(ms) = decision.retry_after_ms {
        let seconds = ms.div_ceil(1000).max(1);
        text.push_str(&format!(" (retry in {seconds} s)"));
    }
    refused(id, kind, &text, decision.to_json(None), stateless)
}
