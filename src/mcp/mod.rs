//! The MCP boundary as data: what a gateway does with each JSON-RPC message that crosses it.
//!
//! No IO and no runtime: a host (the `mcp-policy proxy` command, an HTTP gateway, an adapter
//! inside a server) reads messages, hands each one to a [`Gateway`] with
//! [`Gateway::from_client`] or [`Gateway::from_server`], and carries out the [`Output`]s it
//! returns, in order. Every integration uses this one layer, so a decision looks the same to a
//! client wherever the policy is enforced.
//!
//! Examined: the requests `tools/call`, `resources/read`, `resources/subscribe`,
//! `subscriptions/listen`, `prompts/get` and `completion/complete`, and the results of
//! `tools/list`, `resources/list`, `resources/templates/list` and `prompts/list` (filtered;
//! a 2026-07-28 one marked private), plus the server's `initialize` answer (`listChanged`
//! advertised: the gateway sends it after a reload, [`Gateway::after_reload`]). Everything
//! else passes through unchanged ([`Output::Forward`]: the line exactly as received), both
//! ways: notifications, progress, cancellation, logging, and the requests a server sends to
//! its client (sampling, elicitation, roots). A refused resource or prompt request gets a
//! JSON-RPC error with the decision in its `data` ([`refused`]); a hidden one the answer for
//! one that does not exist ([`unknown`]).
//!
//! | decision | what the client gets | forwarded |
//! |---|---|---|
//! | allow | the server's answer, unchanged | yes |
//! | deny, limit | a result with `isError: true`: the policy's message as text (a limit adds `retry in N s`), the decision in `_meta["io.mcp-policy/decision"]` | no |
//! | hidden tool | JSON-RPC error `-32602` `Unknown tool: NAME`, as for a tool that does not exist | no |
//! | approve | a human is asked (elicitation, `input_required`, or out of band) | once approved |
//!
//! ```
//! use mcp_policy::mcp::{Gateway, GatewayOptions, Output};
//! use mcp_policy::{Engine, Grant, Policy};
//!
//! let policy = Policy::from_json_str(r#"{"version":"1","default":"deny","hide":["drop_db"],
//!   "tools":{"read":{},"stop_scan":{"action":"deny","reason":"Stopping scans breaks monitoring"}}}"#)?;
//! let engine = Engine::new(policy);
//! let mut gw = Gateway::new(Grant::new("alice"), GatewayOptions::default());
//!
//! // An allowed call goes to the server as it came.
//! let out = gw.from_client(&engine, br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}}"#);
//! assert!(matches!(out.as_slice(), [Output::Forward, Output::Audit(_)] | [Output::Forward]));
//!
//! // A denied one is answered here, as a tool error the model can read.
//! let out = gw.from_client(&engine, br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"stop_scan"}}"#);
//! let Output::ToClient(answer) = &out[0] else { panic!("{out:?}") };
//! assert_eq!(answer["result"]["isError"], true);
//! assert_eq!(answer["result"]["content"][0]["text"], "Stopping scans breaks monitoring");
//! assert_eq!(answer["result"]["_meta"]["io.mcp-policy/decision"]["decision"], "deny");
//!
//! // A hidden tool is unknown.
//! let out = gw.from_client(&engine, br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"drop_db"}}"#);
//! let Output::ToClient(answer) = &out[0] else { panic!("{out:?}") };
//! assert_eq!(answer["error"]["code"], -32602);
//! assert_eq!(answer["error"]["message"], "Unknown tool: drop_db");
//! # Ok::<(), mcp_policy::LoadErrors>(())
//! ```
//!
//! The layer's modules, each owning one thing (leaves first): `wire` (what is written: error
//! responses, refusals, the protocol's constants), `read` (reading a line from either side),
//! `audit` ([`AuditRecord`]), `catalog` ([`Catalog`]: tool annotations seen listed),
//! `options` ([`GatewayOptions`]), `approvals` (the one builder of approval requests, for the
//! gateway and for [`typed`] hosts), `gateway` ([`Gateway`], the state machine; its
//! `requests` room reads resource, prompt and completion requests), and [`typed`] (the same
//! answers for hosts that get calls as values).

mod approvals;
mod audit;
mod catalog;
mod envelope;
mod gateway;
mod options;
mod read;
mod trace;
pub mod typed;
mod wire;

pub use audit::AuditRecord;
pub use catalog::Catalog;
pub use gateway::{CallToDecide, Gateway, Output};
pub use options::GatewayOptions;
pub use read::{ClientMessage, MESSAGE_DEPTH, ServerMessage};
pub use trace::{set_traceparent, traceparent_of, with_traceparent};
pub use wire::{
    DECISION_META, INPUT_REQUIRED, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST,
    META_CLIENT_INFO, META_PROTOCOL_VERSION, OWN_ID_PREFIX, PARSE_ERROR, POLICY_REFUSED,
    RESOURCE_NOT_FOUND, STATELESS_VERSION, error_response, refusal, refusal_of, refused,
    request_error, tool_error, unknown,
};

#[cfg(test)]
mod tests;
