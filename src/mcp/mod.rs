//! The MCP boundary as data: what a gateway does with each JSON-RPC message that crosses it.
//!
//! No IO and no runtime: a host (the `mcp-policy proxy` command, an HTTP gateway, an adapter
//! inside a server) reads messages, hands each one to a [`Gateway`] with
//! [`Gateway::from_client`] or [`Gateway::from_server`], and carries out the [`Output`]s it
//! returns, in order. Every integration uses this one layer, so a decision looks the same to a
//! client wherever the policy is enforced.
//!
//! Only two things are examined: `tools/call` requests and `tools/list` results. Everything
//! else passes through unchanged ([`Output::Forward`]: the line exactly as received), both
//! ways: notifications, progress, cancellation, resources, prompts, logging, and the requests
//! a server sends to its client (sampling, elicitation, roots).
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::approval::canonical_json;
use crate::args::cap_nesting;
use crate::clock::Clock;
use crate::compile::Policy;
use crate::decision::{Decision, Verdict};
use crate::engine::Engine;
use crate::error::{HostError, StoreError};
use crate::grant::Grant;
use crate::source::parse_json;
use crate::store::{CounterStore, Reservation};

mod envelope;
pub mod typed;

use envelope::{CallRequest, Envelope};

/// What the gateway needs from a server's answer.
#[derive(Debug)]
struct AnswerParts {
    id: Value,
    error: bool,
    is_error: bool,
    protocol: Option<String>,
    /// The server's own `requestState`, when the result is `input_required` (2026-07-28).
    continues: Option<String>,
}

/// The envelope of a message that was read whole (too deep for the envelope reader).
#[derive(serde::Deserialize)]
struct OwnedEnvelope {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
}

impl OwnedEnvelope {
    fn into_parts(self) -> AnswerParts {
        let result = self.result.as_ref();
        AnswerParts {
            id: if self.method.is_some() {
                Value::Null
            } else {
                self.id
            },
            error: self.error.is_some(),
            is_error: result.and_then(|r| r.get("isError")) == Some(&Value::Bool(true)),
            protocol: result
                .and_then(|r| r.get("protocolVersion"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            continues: result
                .filter(|r| r.get("resultType").and_then(Value::as_str) == Some(INPUT_REQUIRED))
                .and_then(|r| r.get("requestState"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// The `_meta` key under which a refused call's decision travels.
pub const DECISION_META: &str = "io.mcp-policy/decision";

/// Containers nested deeper than this in a message are read as empty ones (the arguments
/// then stay deeper than the policy's bound of 64 and are denied, instead of the message
/// failing to parse at the JSON reader's own limit of 128).
pub const MESSAGE_DEPTH: usize = 100;

/// The prefix of the ids of the requests a gateway itself sends to a client (elicitation).
pub const OWN_ID_PREFIX: &str = "io.mcp-policy/";

/// The `resultType` of a 2026-07-28 result that asks the client for input before the call
/// can go on.
pub const INPUT_REQUIRED: &str = "input_required";
/// The error a request gets when the server went away before answering it.
const GONE: &str = "the MCP server behind this gateway exited before answering";

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

/// What a gateway needs from a policy engine. [`Engine`] implements it; a host with another
/// store (a remote one, say) implements it over that.
pub trait Enforcer {
    /// Decides one call.
    fn evaluate(&self, tool: &str, args: &Value, grant: &Grant) -> Decision;
    /// Records a human's approval.
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError>;
    /// Refunds an allowed call's charges.
    fn release(&self, reservation: Reservation) -> Result<(), StoreError>;
    /// The current policy (for filtering `tools/list`).
    fn policy(&self) -> Arc<Policy>;
    /// Whether approvals recorded by another process (`mcp-policy approve`) reach this
    /// enforcer's store. An in-memory store answers no.
    fn shares_approvals(&self) -> bool {
        false
    }
}

impl<C: Clock, S: CounterStore> Enforcer for Engine<C, S> {
    fn evaluate(&self, tool: &str, args: &Value, grant: &Grant) -> Decision {
        Engine::evaluate(self, tool, args, grant)
    }
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError> {
        Engine::record_approval(self, approval_id)
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        Engine::release(self, reservation)
    }
    fn policy(&self) -> Arc<Policy> {
        Engine::policy(self)
    }
}

/// What the host does next, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Pass the message exactly as received (byte for byte) to the other side.
    Forward,
    /// Send this message to the client.
    ToClient(Value),
    /// Send this message to the server.
    ToServer(Value),
    /// Write this record to the audit log (the host adds the time and the digest).
    Audit(AuditRecord),
}

/// One audited `tools/call` (spec: the audit log). The host adds `ts`, and hashes
/// [`AuditRecord::args_canonical`] into `args_sha256`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// The grant id.
    pub grant: String,
    /// The grant's session.
    pub session: Option<String>,
    /// The called tool.
    pub tool: String,
    /// The decision in the `mcp-policy eval` output format (no reservation label).
    pub decision: Value,
    /// The arguments as canonical JSON (keys sorted, no whitespace).
    pub args_canonical: String,
    /// The raw arguments, only when the operator asked for them
    /// ([`GatewayOptions::audit_args`]).
    pub args: Option<Value>,
    /// `ok`, `tool_error`, `error`, `gone`, or `None` when the call was not forwarded.
    pub upstream: Option<&'static str>,
    /// Whether the call's charges were released.
    pub refunded: bool,
    /// Microseconds the policy took.
    pub policy_us: u64,
    /// Microseconds from the request's arrival to its answer.
    pub total_us: u64,
}

impl AuditRecord {
    /// The record's fields in the audit log's order, without `ts` and `args_sha256` (the
    /// host adds them).
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let mut out: Vec<(&'static str, Value)> = vec![
            ("grant", self.grant.as_str().into()),
            (
                "session",
                self.session.as_deref().map_or(Value::Null, Value::from),
            ),
            ("tool", self.tool.as_str().into()),
        ];
        if let Value::Object(map) = &self.decision {
            for key in [
                "decision",
                "rule",
                "message",
                "counter",
                "retry_after_ms",
                "remaining",
                "approval_id",
            ] {
                if let Some(v) = map.get(key) {
                    out.push((key, v.clone()));
                }
            }
        }
        if let Some(args) = &self.args {
            out.push(("args", args.clone()));
        }
        if let Some(upstream) = self.upstream {
            out.push(("upstream", upstream.into()));
        }
        if self.refunded {
            out.push(("refunded", true.into()));
        }
        out.push(("policy_us", self.policy_us.into()));
        out.push(("total_us", self.total_us.into()));
        out
    }
}

/// How a gateway behaves where the operator chooses.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// How long a human has to answer an elicitation (default 2 minutes).
    pub approval_timeout: Duration,
    /// How an operator approves out of band, shown to the client (e.g.
    /// `mcp-policy approve ID --store redis://…`); `ID` is replaced by the approval id.
    pub approve_command: Option<String>,
    /// Keep the raw arguments for the audit log.
    pub audit_args: bool,
    /// Fill the audit records (default true). A host that writes no audit log turns this off:
    /// its records then carry only the outcome, not the decision and the arguments.
    pub audit: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            approval_timeout: Duration::from_secs(120),
            approve_command: None,
            audit_args: false,
            audit: true,
        }
    }
}

/// A call waiting for an answer from the server.
#[derive(Debug)]
struct InFlight {
    record: AuditRecord,
    reservation: Option<Reservation>,
    started: Option<Instant>,
    /// A 2026-07-28 call's tool and canonical arguments, hashed with the gateway's secret
    /// keys ([`Gateway::binding`]): what a retry must repeat to continue the call if the
    /// server answers `input_required` ([`Continuation`]).
    binding: Option<u64>,
}

/// A call the server answered with its own `input_required` (2026-07-28), waiting for the
/// client's retry with the server's `requestState`. That retry continues the call: it is
/// forwarded without a new decision (it was admitted, charged and approved once), and its
/// charges stay reserved until the last round's answer (refunded on a JSON-RPC error).
#[derive(Debug)]
struct Continuation {
    flight: InFlight,
    /// The policy revision when the server asked; after a reload the retry is decided anew.
    revision: String,
    deadline: Instant,
}

/// At most this many calls wait for a retry that continues them, per gateway; past it, a
/// retry is decided as a new call.
const MAX_CONTINUATIONS: usize = 1024;

/// What a forwarded client request was, so that its answer is handled.
#[derive(Debug)]
enum Waiting {
    Call(Box<InFlight>),
    List,
    Initialize,
    Other,
}

/// A call held until a human answers an elicitation.
#[derive(Debug)]
struct Held {
    /// The call as it came, with its id.
    request: Value,
    tool: String,
    args: Value,
    approval_id: String,
    decision: Value,
    deadline: Instant,
    started: Option<Instant>,
    policy_us: u64,
}

/// Why an approval request's answer (its `action`) did not approve the call, when the
/// client answered at all.
pub(crate) fn why_not_approved(action: &str) -> Option<&'static str> {
    match action {
        "accept" => Some("the answer did not approve it"),
        "decline" => Some("the user declined"),
        "cancel" => Some("the user cancelled"),
        _ => None,
    }
}

/// What a retry's `requestState` was.
enum StateAnswer {
    /// Not in this gateway's form (the server's own): the gateway leaves it.
    NotOurs,
    /// In this gateway's form and used up: approved, or not valid for this call (issued for
    /// another, forged, expired or replayed).
    Used,
    /// Issued here for this call, and the human did not approve.
    Refused(&'static str),
}

/// An issued `requestState` (2026-07-28): which call it may approve.
#[derive(Debug)]
struct Issued {
    tool: String,
    args_canonical: String,
    approval_id: String,
    deadline: Instant,
}

/// The gateway's state for one client connection.
#[derive(Debug)]
pub struct Gateway {
    grant: Grant,
    options: GatewayOptions,
    protocol: Option<String>,
    client_elicitation: bool,
    /// Client requests forwarded to the server, by id (as JSON text).
    waiting: HashMap<IdKey, Waiting>,
    /// Calls held for an elicitation answer, by the id of our elicitation request.
    held: HashMap<IdKey, Held>,
    /// `requestState`s issued to 2026-07-28 clients.
    issued: HashMap<String, Issued>,
    /// Calls the server answered `input_required`, by the server's `requestState`.
    continued: HashMap<String, Continuation>,
    next: u64,
    /// The keys a call's binding is hashed with ([`Gateway::binding`]).
    binding_keys: std::hash::RandomState,
    /// The server is gone ([`Gateway::upstream_gone`]): no call is forwarded any more.
    gone: bool,
}

impl Gateway {
    /// A gateway for one client, calling as `grant` (its `attrs.client` and
    /// `attrs.client_version` are filled from the client's `initialize`).
    pub fn new(grant: Grant, options: GatewayOptions) -> Gateway {
        Gateway {
            grant,
            options,
            protocol: None,
            client_elicitation: false,
            waiting: HashMap::new(),
            held: HashMap::new(),
            issued: HashMap::new(),
            continued: HashMap::new(),
            next: 0,
            binding_keys: std::hash::RandomState::new(),
            gone: false,
        }
    }

    /// The grant calls are decided for.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The protocol version, once the server answered `initialize` (or the client's, before).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// How many client requests are waiting for the server, and how many calls are waiting
    /// for the client: held for a human's approval, or continued after the server's own
    /// `input_required` (until the client's retry, or the approval timeout).
    pub fn in_flight(&self) -> (usize, usize) {
        (self.waiting.len(), self.held.len() + self.continued.len())
    }

    /// Handles one message (one line, without its newline) from the client.
    pub fn from_client(&mut self, enforcer: &dyn Enforcer, line: &[u8]) -> Vec<Output> {
        self.from_client_message(enforcer, ClientMessage::read(line))
    }

    /// Handles one message from the client, read with [`ClientMessage::read`] (which needs
    /// no gateway: a host that shares one between threads reads outside its lock).
    pub fn from_client_message(
        &mut self,
        enforcer: &dyn Enforcer,
        message: ClientMessage<'_>,
    ) -> Vec<Output> {
        let line = message.line;
        match message.read {
            ClientRead::Call(CallRequest {
                id: Some(id),
                tool,
                arguments,
                meta,
            }) => {
                let started = self.clock();
                let call = PlainCall {
                    line,
                    id,
                    tool: &tool,
                    args: arguments.as_ref(),
                    meta: meta.as_ref(),
                };
                return self.plain_call(Deciding::Ask(enforcer), call, started);
            }
            ClientRead::Envelope(envelope) => match (envelope.method.as_deref(), envelope.id()) {
                (Some("tools/call" | "initialize"), Some(_)) => {}
                (Some(_), Some(id)) if self.gone => {
                    return vec![Output::ToClient(error_response(id, INTERNAL_ERROR, GONE))];
                }
                (Some(method), Some(id)) => {
                    let kind = if method == "tools/list" {
                        Waiting::List
                    } else {
                        Waiting::Other
                    };
                    self.waiting.insert(key(id), kind);
                    return vec![Output::Forward];
                }
                (None, Some(id)) if !self.held.contains_key(&key(id)) => {
                    return vec![Output::Forward];
                }
                (_, None) => return vec![Output::Forward],
                _ => {}
            },
            ClientRead::Call(_) | ClientRead::Whole => {}
        }
        // Examined messages (and anything the envelope reader doubted) are read whole and
        // strictly: a repeated key anywhere is a parse error.
        let message = match parse_line(line) {
            Ok(message) => message,
            Err(error) => return vec![Output::ToClient(error)],
        };
        let Value::Object(map) = &message else {
            return vec![Output::ToClient(error_response(
                &Value::Null,
                INVALID_REQUEST,
                "batches and non-object messages are not accepted by this gateway",
            ))];
        };
        let id = map.get("id").filter(|id| !id.is_null());
        let method = map.get("method").and_then(Value::as_str);
        match (method, id) {
            (Some("tools/call"), Some(id)) => {
                let id = id.clone();
                let started = self.clock();
                self.call(enforcer, message, id, started)
            }
            (Some(_), Some(id)) if self.gone => {
                // Nothing would ever answer it.
                vec![Output::ToClient(error_response(id, INTERNAL_ERROR, GONE))]
            }
            (Some(method), Some(id)) => {
                let kind = match method {
                    "tools/list" => Waiting::List,
                    "initialize" => {
                        self.initialize(map);
                        Waiting::Initialize
                    }
                    _ => Waiting::Other,
                };
                self.waiting.insert(key(id), kind);
                vec![Output::Forward]
            }
            (None, Some(id)) => {
                // A response: to one of our elicitations, or to a server's request.
                let k = key(id);
                match self.held.remove(&k) {
                    Some(held) => self.elicitation_answer(enforcer, held, map),
                    None => vec![Output::Forward],
                }
            }
            _ => vec![Output::Forward],
        }
    }

    /// Handles one message (one line, without its newline) from the server.
    pub fn from_server(&mut self, enforcer: &dyn Enforcer, line: &[u8]) -> Vec<Output> {
        self.from_server_message(enforcer, ServerMessage::read(line))
    }

    /// Handles one message from the server, read with [`ServerMessage::read`] (which needs
    /// no gateway: a host that shares one between threads reads outside its lock).
    pub fn from_server_message(
        &mut self,
        enforcer: &dyn Enforcer,
        message: ServerMessage<'_>,
    ) -> Vec<Output> {
        match message.answer {
            Some(parts) => self.server_answer(enforcer, message.line, parts),
            None => vec![Output::Forward],
        }
    }

    /// A server's answer to one of the client's requests.
    fn server_answer(
        &mut self,
        enforcer: &dyn Enforcer,
        line: &[u8],
        parts: AnswerParts,
    ) -> Vec<Output> {
        match self.waiting.remove(&key(&parts.id)) {
            None | Some(Waiting::Other) => vec![Output::Forward],
            Some(Waiting::Initialize) => {
                if let Some(version) = parts.protocol {
                    self.protocol = Some(version);
                }
                vec![Output::Forward]
            }
            Some(Waiting::Call(flight))
                if parts.continues.is_some() && !parts.error && flight.binding.is_some() =>
            {
                self.continue_later(enforcer, *flight, parts.continues)
            }
            Some(Waiting::Call(flight)) => {
                let outcome = if parts.error {
                    "error"
                } else if parts.is_error {
                    "tool_error"
                } else {
                    "ok"
                };
                // A JSON-RPC error means the tool never ran: its charges are refunded.
                let refund = outcome == "error";
                // Audited before the client sees the answer: the log is never behind it.
                vec![
                    self.finish(enforcer, *flight, outcome, refund),
                    Output::Forward,
                ]
            }
            Some(Waiting::List) => {
                let Ok(Value::Object(map)) = parse_line(line) else {
                    return vec![Output::Forward];
                };
                match map.get("result") {
                    Some(result) => {
                        let filtered = enforcer.policy().filter_tools_list(result);
                        if &filtered == result {
                            return vec![Output::Forward];
                        }
                        let mut out = map.clone();
                        out.insert("result".into(), filtered);
                        vec![Output::ToClient(Value::Object(out))]
                    }
                    None => vec![Output::Forward],
                }
            }
        }
    }

    /// The server exited or closed: every request still waiting gets a JSON-RPC error, the
    /// charges of calls that never got an answer are refunded, and held calls are dropped.
    /// From then on, no request is forwarded: each is answered with the same error, and a
    /// call decided allowed is refunded first (see [`Gateway::is_gone`]).
    pub fn upstream_gone(&mut self, enforcer: &dyn Enforcer) -> Vec<Output> {
        self.gone = true;
        let mut out = Vec::new();
        let mut waiting: Vec<(String, Waiting)> = self
            .waiting
            .drain()
            .map(|(k, kind)| (k.text(), kind))
            .collect();
        waiting.sort_by(|a, b| a.0.cmp(&b.0));
        for (id_text, kind) in waiting {
            let id: Value = serde_json::from_str(&id_text).unwrap_or(Value::Null);
            if let Waiting::Call(flight) = kind {
                out.push(self.finish(enforcer, *flight, "gone", true));
            }
            out.push(Output::ToClient(error_response(&id, INTERNAL_ERROR, GONE)));
        }
        // Calls the server asked input for never finished: refunded too.
        let mut continued: Vec<(String, Continuation)> = self.continued.drain().collect();
        continued.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, continuation) in continued {
            out.push(self.finish(enforcer, continuation.flight, "gone", true));
        }
        out
    }

    /// Whether [`Gateway::upstream_gone`] was called. A host that decides calls itself
    /// ([`Gateway::from_client_decided`]) checks this under the same lock first, and refunds
    /// an allowed call's reservation itself when it is: the gateway has no store to refund
    /// it with.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Answers the calls whose approval was not given in time (call it periodically).
    pub fn expire(&mut self, now: Instant) -> Vec<Output> {
        self.issued.retain(|_, issued| issued.deadline > now);
        self.continued.retain(|_, c| c.deadline > now);
        let late: Vec<IdKey> = self
            .held
            .iter()
            .filter(|(_, held)| held.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        let seconds = self.options.approval_timeout.as_secs();
        for k in late {
            if let Some(held) = self.held.remove(&k) {
                let text = format!(
                    "The call of `{}` was not approved: no answer within {seconds} s. Nothing was done.",
                    held.tool
                );
                out.extend(self.refuse_held(held, &text));
            }
        }
        out
    }

    /// The earliest moment a held call times out, if any is held.
    pub fn next_deadline(&self) -> Option<Instant> {
        let held = self.held.values().map(|h| h.deadline);
        let issued = self.issued.values().map(|i| i.deadline);
        let continued = self.continued.values().map(|c| c.deadline);
        held.chain(issued).chain(continued).min()
    }

    /// The time now, only where an audit record will carry durations (a clock read per
    /// message is measurable next to the rest of the work).
    fn clock(&self) -> Option<Instant> {
        self.options.audit.then(Instant::now)
    }

    fn initialize(&mut self, map: &Map<String, Value>) {
        let params = map.get("params");
        if let Some(version) = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
        {
            self.protocol = Some(version.to_owned());
        }
        self.client_elicitation = params
            .and_then(|p| p.get("capabilities"))
            .and_then(|c| c.get("elicitation"))
            .is_some_and(|e| !e.is_null());
        if let Some(info) = params.and_then(|p| p.get("clientInfo")) {
            self.client_info(info);
        }
    }

    /// `grant.attrs.client` and `client_version` from a client's `clientInfo`.
    fn client_info(&mut self, info: &Value) {
        for (from, to) in [("name", "client"), ("version", "client_version")] {
            if let Some(v) = info.get(from).and_then(Value::as_str)
                && self.grant.attrs.get(to).and_then(Value::as_str) != Some(v)
            {
                self.grant.attrs.insert(to.into(), v.into());
            }
        }
    }

    /// A `tools/call` request from the client, read whole.
    fn call(
        &mut self,
        enforcer: &dyn Enforcer,
        mut message: Value,
        id: Value,
        started: Option<Instant>,
    ) -> Vec<Output> {
        // The call is read in place: nothing of it is copied unless it is held for approval.
        let params = message.get("params");
        let Some(tool) = params
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return vec![Output::ToClient(error_response(
                &id,
                INVALID_PARAMS,
                "tools/call needs `params.name`, a string",
            ))];
        };
        if !matches!(
            params.and_then(|p| p.get("arguments")),
            None | Some(Value::Null | Value::Object(_))
        ) {
            return vec![Output::ToClient(error_response(
                &id,
                INVALID_PARAMS,
                "tools/call `params.arguments` must be an object",
            ))];
        }
        // 2026-07-28 requests carry the protocol version and the client's identity themselves.
        let stateless = self.read_meta(params.and_then(|p| p.get("_meta")));
        let empty = Value::Object(Map::new());
        // A retry that answers an `input_required` approval (2026-07-28).
        // Only a `requestState` this gateway issued is its own to consume; the server's own
        // (its `input_required` rounds) passes through untouched.
        let state = match params {
            Some(params) if params.get("requestState").is_some() => {
                let args = params.get("arguments").filter(|a| a.is_object());
                let state = params.get("requestState").unwrap_or(&Value::Null);
                self.answer_request_state(enforcer, state, params, &tool, args.unwrap_or(&empty))
            }
            _ => StateAnswer::NotOurs,
        };
        // The server's own state: the retry may continue a call the server asked input for.
        if matches!(state, StateAnswer::NotOurs)
            && let Some(server_state) = params.and_then(|p| p.get("requestState"))
        {
            let args = params
                .and_then(|p| p.get("arguments"))
                .filter(|a| a.is_object());
            if let Some(out) =
                self.continuation(enforcer, server_state, &id, &tool, args.unwrap_or(&empty))
            {
                return out;
            }
        }
        let stripped = !matches!(state, StateAnswer::NotOurs);
        let refused = match state {
            StateAnswer::Refused(why) => Some(why),
            _ => None,
        };
        if stripped {
            strip_approval_fields(&mut message);
        }
        let args = message
            .get("params")
            .and_then(|p| p.get("arguments"))
            .filter(|a| a.is_object())
            .unwrap_or(&empty);
        let request = if stripped {
            Request::Changed(&message)
        } else {
            Request::Parsed(&message)
        };
        let call = Call {
            id,
            tool: &tool,
            args,
            stateless,
            refused,
        };
        self.decide(Deciding::Ask(enforcer), request, call, started)
    }

    /// A `tools/call` request of the plain shape, read into its fields ([`CallRequest`]),
    /// with its decision when the host made it ([`Gateway::from_client_decided`]).
    fn plain_call(
        &mut self,
        deciding: Deciding<'_>,
        call: PlainCall<'_>,
        started: Option<Instant>,
    ) -> Vec<Output> {
        let stateless = self.read_meta(call.meta);
        let empty = Value::Object(Map::new());
        let line = call.line;
        let call = Call {
            id: call.id,
            tool: call.tool,
            args: call.args.unwrap_or(&empty),
            stateless,
            refused: None,
        };
        self.decide(deciding, Request::Line(line), call, started)
    }

    /// For a host whose counter store is reached asynchronously (Redis shared by replicas):
    /// when `message` is a `tools/call` of the plain shape, what its decision needs (the
    /// tool, the arguments, and the grant with what the message says about the client
    /// applied). The host decides it without holding the gateway (with
    /// [`AsyncEngine::evaluate`](crate::AsyncEngine::evaluate)), then hands the decision to
    /// [`Gateway::from_client_decided`] with the same message. `None` for any other message:
    /// handle it with [`Gateway::from_client_message`].
    ///
    /// ```
    /// use mcp_policy::mcp::{ClientMessage, Gateway, GatewayOptions, Output};
    /// use mcp_policy::{AsyncEngine, Grant, ManualClock, MemoryStore, Policy, Verdict};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "tools":{"scan":{"rate_limit":"1/minute"}}}"#)?;
    /// let engine = AsyncEngine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
    /// let mut gw = Gateway::new(Grant::new("alice"), GatewayOptions::default());
    ///
    /// for (id, forwarded) in [(1, true), (2, false)] {
    ///     let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"scan"}}}}"#);
    ///     let message = ClientMessage::read(line.as_bytes());
    ///     let call = gw.call_to_decide(&message).expect("a plain call");
    ///     // No lock on the gateway is needed while the store is awaited.
    ///     let decision = block_on(engine.evaluate(call.tool, call.args, &call.grant));
    ///     let out = gw.from_client_decided(&message, decision, 0).expect("the same call");
    ///     assert_eq!(matches!(out[0], Output::Forward), forwarded);
    /// }
    /// # Ok::<(), mcp_policy::LoadErrors>(())
    /// ```
    pub fn call_to_decide<'m>(
        &mut self,
        message: &'m ClientMessage<'_>,
    ) -> Option<CallToDecide<'m>> {
        let ClientRead::Call(call) = &message.read else {
            return None;
        };
        call.id.as_ref()?;
        // What `from_client_decided` applies too: the client's identity from `_meta`.
        self.read_meta(call.meta.as_ref());
        Some(CallToDecide {
            tool: &call.tool,
            args: call.arguments.as_ref().unwrap_or(&*EMPTY_ARGS),
            grant: self.grant.clone(),
        })
    }

    /// Handles a message for which [`Gateway::call_to_decide`] returned a call, with the
    /// decision the host made for it (`policy_us`: how long deciding took, for the audit
    /// record). The same outputs as [`Gateway::from_client_message`] would give with that
    /// decision. `None` (and nothing done) when `message` is not such a call.
    pub fn from_client_decided(
        &mut self,
        message: &ClientMessage<'_>,
        decision: Decision,
        policy_us: u64,
    ) -> Option<Vec<Output>> {
        let ClientRead::Call(call) = &message.read else {
            return None;
        };
        let id = call.id.clone()?;
        // The call started when its decision did.
        let started = self.clock().map(|now| {
            now.checked_sub(Duration::from_micros(policy_us))
                .unwrap_or(now)
        });
        let call = PlainCall {
            line: message.line,
            id,
            tool: &call.tool,
            args: call.arguments.as_ref(),
            meta: call.meta.as_ref(),
        };
        Some(self.plain_call(Deciding::Made(decision, policy_us), call, started))
    }

    /// Reads a request's `params._meta` (2026-07-28 requests carry the client's identity
    /// there); whether the call speaks the stateless version (its own, or the session's).
    fn read_meta(&mut self, meta: Option<&Value>) -> bool {
        if let Some(info) = meta.and_then(|m| m.get(META_CLIENT_INFO)) {
            self.client_info(info);
        }
        let version = meta
            .and_then(|m| m.get(META_PROTOCOL_VERSION))
            .and_then(Value::as_str)
            .or(self.protocol.as_deref());
        version == Some(STATELESS_VERSION)
    }

    /// Decides a call and says what happens to it.
    fn decide(
        &mut self,
        deciding: Deciding<'_>,
        request: Request<'_>,
        call: Call<'_>,
        started: Option<Instant>,
    ) -> Vec<Output> {
        let Call {
            id,
            tool,
            args,
            stateless,
            refused,
        } = call;
        let (decision, policy_us, enforcer) = match deciding {
            Deciding::Made(decision, policy_us) => (decision, policy_us, None),
            Deciding::Ask(enforcer) => {
                let t0 = self.clock();
                let decision = enforcer.evaluate(tool, args, &self.grant);
                (decision, micros_since(t0), Some(enforcer))
            }
        };
        let record = self.record(tool, &decision, args, policy_us);
        match decision.verdict {
            Verdict::Allow if self.gone => {
                // Decided while the server went away: never forwarded, refunded.
                // (A host that decided the call refunds it itself: see `is_gone`.)
                let flight = InFlight {
                    record,
                    reservation: decision.reservation,
                    started,
                    binding: None,
                };
                let audit = match enforcer {
                    Some(enforcer) => self.finish(enforcer, flight, "gone", true),
                    None => {
                        let mut record = flight.record;
                        record.upstream = Some("gone");
                        audit(record, started)
                    }
                };
                let answer = error_response(&id, INTERNAL_ERROR, GONE);
                vec![Output::ToClient(answer), audit]
            }
            Verdict::Allow => {
                self.waiting.insert(
                    key(&id),
                    Waiting::Call(Box::new(InFlight {
                        record,
                        reservation: decision.reservation,
                        started,
                        binding: stateless.then(|| self.binding(tool, args)),
                    })),
                );
                match request {
                    Request::Changed(message) => vec![Output::ToServer(message.clone())],
                    _ => vec![Output::Forward],
                }
            }
            Verdict::Deny if decision.rule.starts_with("/hide/") => {
                let answer = error_response(&id, INVALID_PARAMS, &format!("Unknown tool: {tool}"));
                vec![Output::ToClient(answer), audit(record, started)]
            }
            Verdict::Deny | Verdict::Limit => {
                let answer = refusal(&id, &decision, stateless);
                vec![Output::ToClient(answer), audit(record, started)]
            }
            Verdict::Approve if let Some(why) = refused => {
                // The human said no to this very call: answered, not asked again.
                let text =
                    format!("The call of `{tool}` was not approved: {why}. Nothing was done.");
                let answer = tool_error(&id, &text, decision.to_json(None), stateless);
                vec![Output::ToClient(answer), audit(record, started)]
            }
            Verdict::Approve => {
                let message = request.whole();
                self.ask(
                    message,
                    id,
                    tool.to_owned(),
                    args.clone(),
                    &decision,
                    started,
                    policy_us,
                    stateless,
                )
            }
        }
    }

    /// An `approve` decision: ask the human through the channel the client supports.
    #[allow(clippy::too_many_arguments)]
    fn ask(
        &mut self,
        request: Value,
        id: Value,
        tool: String,
        args: Value,
        decision: &Decision,
        started: Option<Instant>,
        policy_us: u64,
        stateless: bool,
    ) -> Vec<Output> {
        let approval_id = decision.approval_id.clone().unwrap_or_default();
        let reason = decision
            .message
            .as_deref()
            .unwrap_or("this call needs approval");
        let prompt = approval_prompt(&tool, &self.grant, &args, reason, &approval_id);
        let decision_json = decision.to_json(None);
        let record = self.record(&tool, decision, &args, policy_us);
        let deadline = Instant::now() + self.options.approval_timeout;
        self.next += 1;
        if stateless {
            let state = format!("{OWN_ID_PREFIX}state/{}/{}", self.next, approval_id);
            self.issued.insert(
                state.clone(),
                Issued {
                    tool: tool.clone(),
                    args_canonical: canonical_json(&args),
                    approval_id: approval_id.clone(),
                    deadline,
                },
            );
            let answer = json!({
                "jsonrpc": "2.0",
                "id": id,
                "result": {
                    "resultType": INPUT_REQUIRED,
                    "inputRequests": {
                        "approve": {
                            "method": "elicitation/create",
                            "params": elicitation_params(&prompt, false),
                        }
                    },
                    "requestState": state,
                    "_meta": { DECISION_META: decision_json },
                }
            });
            return vec![Output::ToClient(answer), audit(record, started)];
        }
        if self.client_elicitation {
            let own_id = format!("{OWN_ID_PREFIX}approval/{}", self.next);
            let form_mode = self.protocol.as_deref() != Some("2025-06-18");
            let ask = json!({
                "jsonrpc": "2.0",
                "id": own_id,
                "method": "elicitation/create",
                "params": elicitation_params(&prompt, form_mode),
            });
            self.held.insert(
                key(&Value::String(own_id)),
                Held {
                    request,
                    tool,
                    args,
                    approval_id,
                    decision: decision_json,
                    deadline,
                    started,
                    policy_us,
                },
            );
            return vec![Output::ToClient(ask)];
        }
        // Out of band.
        let how = match (&self.options.approve_command, approval_id.is_empty()) {
            (Some(command), false) => format!(
                " An operator approves it with `{}`; then retry the identical call (it goes through once).",
                command.replace("ID", &approval_id)
            ),
            _ => " This gateway keeps approvals in memory: they need a client that supports \
                  elicitation, or a shared store (`mcp-policy proxy --store redis://…`) so that \
                  an operator can run `mcp-policy approve ID --store URL`."
                .to_owned(),
        };
        let text = format!("Approval required: {reason} (approval id {approval_id}).{how}");
        let answer = tool_error(&id, &text, decision_json, stateless);
        vec![Output::ToClient(answer), audit(record, started)]
    }

    /// The client answered one of our elicitations.
    fn elicitation_answer(
        &mut self,
        enforcer: &dyn Enforcer,
        held: Held,
        answer: &Map<String, Value>,
    ) -> Vec<Output> {
        let result = answer.get("result");
        let action = result
            .and_then(|r| r.get("action"))
            .and_then(Value::as_str)
            .unwrap_or("error");
        let approved = action == "accept"
            && result
                .and_then(|r| r.get("content"))
                .and_then(|c| c.get("approve"))
                .and_then(Value::as_bool)
                == Some(true);
        if !approved {
            let why =
                why_not_approved(action).unwrap_or("the client could not ask (elicitation failed)");
            let text = format!(
                "The call of `{}` was not approved: {why}. Nothing was done.",
                held.tool
            );
            return self.refuse_held(held, &text);
        }
        if let Err(e) = enforcer.record_approval(&held.approval_id) {
            let text = format!(
                "The call of `{}` was approved, but the approval could not be recorded: {e}",
                held.tool
            );
            return self.refuse_held(held, &text);
        }
        // Approved: decide again (the call still has to pass its limits).
        let id = held.request.get("id").cloned().unwrap_or(Value::Null);
        let mut outputs = self.call(enforcer, held.request.clone(), id, held.started);
        // The call went out as a message of its own, not as the line just read.
        for out in &mut outputs {
            if matches!(out, Output::Forward) {
                *out = Output::ToServer(held.request.clone());
            }
        }
        outputs
    }

    /// Consumes a `requestState` this gateway issued: records the approval when the client
    /// accepted, for this very call. A state for another call approves nothing (the call is
    /// asked about again); a refusal is answered as one.
    fn answer_request_state(
        &mut self,
        enforcer: &dyn Enforcer,
        state: &Value,
        params: &Value,
        tool: &str,
        args: &Value,
    ) -> StateAnswer {
        let Some(state) = state.as_str().filter(|s| s.starts_with(OWN_ID_PREFIX)) else {
            return StateAnswer::NotOurs;
        };
        // Issued here, unexpired, for this very call, and used once; a forged, expired or
        // replayed one of ours approves nothing.
        let Some(issued) = self.issued.remove(state) else {
            return StateAnswer::Used;
        };
        if issued.tool != tool || issued.args_canonical != canonical_json(args) {
            return StateAnswer::Used;
        }
        let response = params.get("inputResponses").and_then(|r| r.get("approve"));
        let action = response
            .and_then(|r| r.get("action"))
            .and_then(Value::as_str);
        let approved = action == Some("accept")
            && response
                .and_then(|r| r.get("content"))
                .and_then(|c| c.get("approve"))
                .and_then(Value::as_bool)
                == Some(true);
        if approved {
            // A failure to record leaves the call unapproved: it is asked again.
            let _ = enforcer.record_approval(&issued.approval_id);
            return StateAnswer::Used;
        }
        StateAnswer::Refused(
            action
                .and_then(why_not_approved)
                .unwrap_or("the retry carried no answer to the approval"),
        )
    }

    /// The server answered a 2026-07-28 call `input_required` with its own `requestState`:
    /// that round is audited (`upstream: "input_required"`, charges kept), and the call waits
    /// for the client's retry with that state, which continues it ([`Continuation`]).
    /// A call's tool and canonical arguments, hashed with keys drawn at random for this
    /// gateway (SipHash): eight bytes per call instead of a copy of its arguments, and no
    /// client can make two different calls collide without knowing the keys.
    fn binding(&self, tool: &str, args: &Value) -> u64 {
        std::hash::BuildHasher::hash_one(&self.binding_keys, (tool, canonical_json(args)))
    }

    fn continue_later(
        &mut self,
        enforcer: &dyn Enforcer,
        flight: InFlight,
        state: Option<String>,
    ) -> Vec<Output> {
        let mut round = flight.record.clone();
        round.upstream = Some(INPUT_REQUIRED);
        round.total_us = micros_since(flight.started);
        if let Some(state) = state
            && (self.continued.len() < MAX_CONTINUATIONS || self.continued.contains_key(&state))
        {
            let continuation = Continuation {
                flight,
                revision: enforcer.policy().revision().to_owned(),
                deadline: Instant::now() + self.options.approval_timeout,
            };
            self.continued.insert(state, continuation);
        }
        vec![Output::Audit(round), Output::Forward]
    }

    /// A retry that carries a `requestState` the server issued for a call of this gateway,
    /// with the same tool and arguments, within the approval timeout and under the same
    /// policy: forwarded as it is, without a new decision. `None` (and the state forgotten)
    /// for anything else: the retry is then decided as a new call.
    fn continuation(
        &mut self,
        enforcer: &dyn Enforcer,
        state: &Value,
        id: &Value,
        tool: &str,
        args: &Value,
    ) -> Option<Vec<Output>> {
        let continuation = self.continued.remove(state.as_str()?)?;
        let binding = continuation.flight.binding?;
        if continuation.deadline <= Instant::now()
            || binding != self.binding(tool, args)
            || continuation.revision != enforcer.policy().revision()
        {
            return None;
        }
        let flight = InFlight {
            started: self.clock(),
            ..continuation.flight
        };
        self.waiting
            .insert(key(id), Waiting::Call(Box::new(flight)));
        Some(vec![Output::Forward])
    }

    fn refuse_held(&mut self, held: Held, text: &str) -> Vec<Output> {
        let id = held.request.get("id").cloned().unwrap_or(Value::Null);
        let answer = tool_error(&id, text, held.decision.clone(), false);
        let record = AuditRecord {
            grant: self.grant.id.clone(),
            session: self.grant.session.clone(),
            tool: held.tool.clone(),
            decision: held.decision.clone(),
            args_canonical: canonical_json(&held.args),
            args: self.options.audit_args.then(|| held.args.clone()),
            upstream: None,
            refunded: false,
            policy_us: held.policy_us,
            total_us: 0,
        };
        vec![Output::ToClient(answer), audit(record, held.started)]
    }

    fn record(&self, tool: &str, decision: &Decision, args: &Value, policy_us: u64) -> AuditRecord {
        if !self.options.audit {
            return AuditRecord {
                grant: String::new(),
                session: None,
                tool: String::new(),
                decision: Value::Null,
                args_canonical: String::new(),
                args: None,
                upstream: None,
                refunded: false,
                policy_us,
                total_us: 0,
            };
        }
        AuditRecord {
            grant: self.grant.id.clone(),
            session: self.grant.session.clone(),
            tool: tool.to_owned(),
            decision: decision.to_json(None),
            args_canonical: canonical_json(args),
            args: self.options.audit_args.then(|| args.clone()),
            upstream: None,
            refunded: false,
            policy_us,
            total_us: 0,
        }
    }

    fn finish(
        &self,
        enforcer: &dyn Enforcer,
        flight: InFlight,
        outcome: &'static str,
        refund: bool,
    ) -> Output {
        let mut record = flight.record;
        if refund && let Some(reservation) = flight.reservation {
            record.refunded = enforcer.release(reservation).is_ok();
        }
        record.upstream = Some(outcome);
        record.total_us = micros_since(flight.started);
        Output::Audit(record)
    }
}

/// The audit record of a call answered by the gateway itself (not forwarded).
fn audit(mut record: AuditRecord, started: Option<Instant>) -> Output {
    record.total_us = micros_since(started);
    Output::Audit(record)
}

/// Microseconds since `start` (0 when not timed: no audit log wants it).
fn micros_since(start: Option<Instant>) -> u64 {
    start.map_or(0, |t| {
        u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
    })
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A message from the client, read as far as the gateway needs without any of its state:
/// the fields of a tool call, or the envelope of another message. Reading is most of the
/// work of handling a message; a host that shares one [`Gateway`] between threads does it
/// before taking the lock, then calls [`Gateway::from_client_message`].
#[derive(Debug)]
pub struct ClientMessage<'a> {
    line: &'a [u8],
    read: ClientRead<'a>,
}

#[derive(Debug)]
enum ClientRead<'a> {
    /// A tool call of the plain shape.
    Call(CallRequest<'a>),
    /// Another message: its envelope.
    Envelope(Envelope<'a>),
    /// Anything either reader doubted: read whole by the gateway.
    Whole,
}

impl<'a> ClientMessage<'a> {
    /// Reads one message (one line, without its newline) from the client.
    pub fn read(line: &'a [u8]) -> ClientMessage<'a> {
        // A tool call of the plain shape is read into the fields the decision needs (a line
        // of another shape fails at its first unexpected key); any other line that may be a
        // tool call is read whole (strictly) by the gateway. Most other messages are only
        // forwarded: their envelope decides, read without the rest.
        let read = match CallRequest::read(line) {
            Some(call) if call.id.is_some() => ClientRead::Call(call),
            _ if contains(line, b"tools/call") => ClientRead::Whole,
            _ => Envelope::read(line).map_or(ClientRead::Whole, ClientRead::Envelope),
        };
        ClientMessage { line, read }
    }

    /// For a `tools/call` of the plain shape (read in one pass): its id, and the progress
    /// token its `params._meta` names, if any. `None` for any other message, so a host that
    /// routes answers by id can skip reading the line again for the common call.
    ///
    /// ```
    /// use mcp_policy::mcp::ClientMessage;
    /// use serde_json::json;
    ///
    /// let line = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"scan","_meta":{"progressToken":"p1"}}}"#;
    /// let message = ClientMessage::read(line);
    /// assert_eq!(message.plain_call(), Some((&json!(7), Some(&json!("p1")))));
    ///
    /// let list = br#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#;
    /// assert_eq!(ClientMessage::read(list).plain_call(), None);
    /// ```
    pub fn plain_call(&self) -> Option<(&Value, Option<&Value>)> {
        let ClientRead::Call(call) = &self.read else {
            return None;
        };
        let id = call.id.as_ref()?;
        let token = match &call.meta {
            None => None,
            Some(Value::Object(meta)) => meta.get("progressToken").filter(|t| !t.is_null()),
            // An odd `_meta` is for the gateway's full rules, not for a shortcut.
            Some(_) => return None,
        };
        Some((id, token))
    }
}

/// A message from the server, read as far as the gateway needs without any of its state
/// (see [`ClientMessage`]); handled with [`Gateway::from_server_message`].
#[derive(Debug)]
pub struct ServerMessage<'a> {
    line: &'a [u8],
    /// What an answer says; `None` for anything else (passed on as it is).
    answer: Option<AnswerParts>,
}

impl<'a> ServerMessage<'a> {
    /// Reads one message (one line, without its newline) from the server.
    pub fn read(line: &'a [u8]) -> ServerMessage<'a> {
        let answer = match Envelope::read(line) {
            Some(envelope) => match (&envelope.method, envelope.id()) {
                (None, Some(id)) => {
                    let (is_error, protocol, continues) = match &envelope.result {
                        Some(r) => (
                            r.is_error,
                            r.protocol_version.clone(),
                            r.request_state.clone().filter(|_| r.input_required),
                        ),
                        None => (false, None, None),
                    };
                    Some(AnswerParts {
                        id: id.clone(),
                        error: envelope.error.is_some(),
                        is_error,
                        protocol,
                        continues,
                    })
                }
                _ => None,
            },
            // Too deep or odd for the envelope reader: read it whole (bounded), and if even
            // that fails, it is not for the gateway to judge: the client sees what was sent.
            None => match parse_line(line) {
                Ok(message @ Value::Object(_)) => serde_json::from_value::<OwnedEnvelope>(message)
                    .ok()
                    .map(OwnedEnvelope::into_parts),
                _ => None,
            },
        };
        ServerMessage { line, answer }
    }

    /// The id of the client's request this message answers (a message with an `id`, not
    /// null, and no `method`); `None` for anything else.
    ///
    /// ```
    /// use mcp_policy::mcp::ServerMessage;
    /// use serde_json::json;
    ///
    /// let answer = ServerMessage::read(br#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#);
    /// assert_eq!(answer.answer_id(), Some(&json!(7)));
    /// let request = ServerMessage::read(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    /// assert_eq!(request.answer_id(), None);
    /// ```
    pub fn answer_id(&self) -> Option<&Value> {
        self.answer
            .as_ref()
            .map(|parts| &parts.id)
            .filter(|id| !id.is_null())
    }

    /// Whether handling this message may call the store (through the [`Enforcer`]): an
    /// error answer refunds its call's charges. Nothing else from the server does, so a host
    /// whose store blocks can handle every other message where it cannot block.
    ///
    /// ```
    /// use mcp_policy::mcp::ServerMessage;
    ///
    /// let failed = ServerMessage::read(br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32603,"message":"x"}}"#);
    /// assert!(failed.may_refund());
    /// let answered = ServerMessage::read(br#"{"jsonrpc":"2.0","id":7,"result":{"isError":true}}"#);
    /// assert!(!answered.may_refund());
    /// ```
    pub fn may_refund(&self) -> bool {
        self.answer.as_ref().is_some_and(|parts| parts.error)
    }
}

/// A map key for a JSON-RPC id: the number itself for the usual ids (nothing to allocate),
/// its JSON text for any other, so `1` and `"1"` differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Number(u64),
    Text(String),
}

impl IdKey {
    /// The id's JSON text.
    fn text(&self) -> String {
        match self {
            IdKey::Number(n) => n.to_string(),
            IdKey::Text(text) => text.clone(),
        }
    }
}

fn key(id: &Value) -> IdKey {
    match id.as_u64() {
        Some(n) => IdKey::Number(n),
        None => IdKey::Text(id.to_string()),
    }
}

/// What a call's decision needs.
struct Call<'a> {
    id: Value,
    tool: &'a str,
    args: &'a Value,
    /// The call speaks the 2026-07-28 version.
    stateless: bool,
    /// The human refused this very call (its `requestState` answer).
    refused: Option<&'static str>,
}

/// A `tools/call` of the plain shape, as read by [`ClientMessage::read`].
struct PlainCall<'a> {
    line: &'a [u8],
    id: Value,
    tool: &'a str,
    args: Option<&'a Value>,
    meta: Option<&'a Value>,
}

/// A call read by the gateway, for the host to decide ([`Gateway::call_to_decide`]).
#[derive(Debug)]
pub struct CallToDecide<'m> {
    /// The tool called.
    pub tool: &'m str,
    /// The call's `arguments` (an empty object when absent).
    pub args: &'m Value,
    /// Who calls: the gateway's grant, with the client's identity from this message.
    pub grant: Grant,
}

/// Arguments of a call that has none.
static EMPTY_ARGS: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Map::new()));

/// How a call gets its decision.
#[expect(
    clippy::large_enum_variant,
    reason = "passed by value down one call; boxing would allocate for every decision"
)]
enum Deciding<'e> {
    /// The gateway asks the enforcer.
    Ask(&'e dyn Enforcer),
    /// The host made it ([`Gateway::from_client_decided`]), in so many microseconds.
    Made(Decision, u64),
}

/// A call's request as the gateway has it.
enum Request<'a> {
    /// The line as read (forwarded as it is).
    Line(&'a [u8]),
    /// Read whole.
    Parsed(&'a Value),
    /// Read whole and changed (the gateway's own approval fields removed): sent as changed.
    Changed(&'a Value),
}

impl Request<'_> {
    /// The whole request (for a call held for approval).
    fn whole(&self) -> Value {
        match self {
            // The line was read strictly already; reading it whole cannot fail.
            Request::Line(line) => parse_line(line).unwrap_or(Value::Null),
            Request::Parsed(message) | Request::Changed(message) => (*message).clone(),
        }
    }
}

fn parse_line(line: &[u8]) -> Result<Value, Value> {
    let text = std::str::from_utf8(line).map_err(|_| {
        error_response(
            &Value::Null,
            PARSE_ERROR,
            "Parse error: the message is not UTF-8",
        )
    })?;
    // Read as it is; only text too deep for the reader is read again with deep containers
    // emptied (their arguments then stay too deep for the policy, which denies them).
    let parsed = match parse_json(text) {
        Err(e) if e.message.contains("recursion limit") => {
            parse_json(&cap_nesting(text, MESSAGE_DEPTH))
        }
        other => other,
    };
    parsed.map_err(|e| {
        error_response(
            &Value::Null,
            PARSE_ERROR,
            &format!("Parse error: {}", e.message),
        )
    })
}

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

/// The answer to a denied or rate-limited call (`stateless`: see [`tool_error`]).
pub fn refusal(id: &Value, decision: &Decision, stateless: bool) -> Value {
    let mut text = decision
        .message
        .as_deref()
        .unwrap_or("this call is not allowed by the policy")
        .to_owned();
    if let Some(ms) = decision.retry_after_ms {
        let seconds = ms.div_ceil(1000).max(1);
        text.push_str(&format!(" (retry in {seconds} s)"));
    }
    tool_error(id, &text, decision.to_json(None), stateless)
}

fn approval_prompt(tool: &str, grant: &Grant, args: &Value, reason: &str, id: &str) -> String {
    const SHOWN: usize = 1500;
    let canonical = canonical_json(args);
    let summary = if canonical.len() > SHOWN {
        let mut cut = SHOWN;
        while !canonical.is_char_boundary(cut) {
            cut -= 1;
        }
        format!(
            "{}… ({} bytes in all)",
            canonical.get(..cut).unwrap_or_default(),
            canonical.len()
        )
    } else {
        canonical
    };
    format!(
        "Approve this tool call?\nTool: {tool}\nCaller: {}\nArguments: {summary}\nWhy approval is needed: {reason}\nApproval id: {id}",
        grant.id
    )
}

fn elicitation_params(prompt: &str, form_mode: bool) -> Value {
    let mut params = json!({
        "message": prompt,
        "requestedSchema": {
            "type": "object",
            "properties": {
                "approve": {
                    "type": "boolean",
                    "title": "Approve this call",
                    "description": "true lets this exact call through once",
                }
            },
            "required": ["approve"],
        }
    });
    if form_mode && let Value::Object(map) = &mut params {
        map.insert("mode".into(), "form".into());
    }
    params
}

fn strip_approval_fields(message: &mut Value) {
    if let Some(Value::Object(params)) = message.get_mut("params") {
        params.remove("requestState");
        params.remove("inputResponses");
    }
}

#[cfg(test)]
mod tests;
