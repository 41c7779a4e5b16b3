//! The gateway's client side: messages from the client, and the decision of each
//! `tools/call` (and, read by `requests`, of each resource and prompt request).

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::asking::strip_approval_fields;
use super::{Gateway, InFlight, Output, Waiting, audit, examined};
use crate::approval::canonical_json;
use crate::decision::{Decision, Verdict};
use crate::engine::Decider;
use crate::grant::Grant;
use crate::listing::List;
use crate::mcp::envelope::CallRequest;
use crate::mcp::read::{ClientMessage, ClientRead, key, parse_line};
use crate::mcp::trace::{set_traceparent, traceparent_of};
use crate::mcp::wire::{
    GONE, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, META_CLIENT_INFO, META_PROTOCOL_VERSION,
    STATELESS_VERSION, error_response, refusal_of, unknown,
};
use crate::observe::Traced;
use crate::subject::{Hints, Kind, Subject};
use crate::uri::Uri;

/// What a call's decision needs.
pub(super) struct Call<'a> {
    pub(super) id: Value,
    /// What is asked for: a tool call, a resource read or subscription, a prompt.
    pub(super) kind: Kind,
    /// The tool's or prompt's name, or the resource's URI in normal form.
    pub(super) tool: &'a str,
    /// The resource's URI (a resource request only).
    pub(super) uri: Option<&'a Uri<'a>>,
    pub(super) args: &'a Value,
    /// The call speaks the 2026-07-28 version.
    pub(super) stateless: bool,
    /// The human refused this very call (its `requestState` answer).
    pub(super) refused: Option<&'static str>,
}

impl<'a> Call<'a> {
    /// The subject the policy decides (a tool with the annotations it was listed with).
    fn subject(&self, hints: Option<Hints>) -> Subject<'a> {
        match (self.kind, self.uri, hints) {
            (Kind::Resource, Some(uri), _) => Subject::Resource(uri),
            (Kind::Prompt, _, _) => Subject::Prompt(self.tool),
            (_, _, Some(hints)) => Subject::AnnotatedTool(self.tool, hints),
            _ => Subject::Tool(self.tool),
        }
    }
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
    /// The tool's annotations, when the server listed it (see [`Catalog`](crate::mcp::Catalog)).
    pub hints: Option<Hints>,
}

impl<'m> CallToDecide<'m> {
    /// What the policy decides: the tool, with its annotations when they are known.
    pub fn subject(&self) -> Subject<'m> {
        match self.hints {
            Some(hints) => Subject::AnnotatedTool(self.tool, hints),
            None => Subject::Tool(self.tool),
        }
    }
}

/// Arguments of a call that has none.
static EMPTY_ARGS: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Map::new()));

/// How a call gets its decision.
#[expect(
    clippy::large_enum_variant,
    reason = "passed by value down one call; boxing would allocate for every decision"
)]
pub(super) enum Deciding<'e> {
    /// The gateway asks the decider.
    Ask(&'e dyn Decider),
    /// The host made it ([`Gateway::from_client_decided`]), in so many microseconds.
    Made(Decision, u64),
}

/// A call's request as the gateway has it.
pub(super) enum Request<'a> {
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

impl Gateway {
    /// Handles one message (one line, without its newline) from the client.
    pub fn from_client(&mut self, decider: &dyn Decider, line: &[u8]) -> Vec<Output> {
        self.from_client_message(decider, ClientMessage::read(line))
    }

    /// Handles one message from the client, read with [`ClientMessage::read`] (which needs
    /// no gateway: a host that shares one between threads reads outside its lock).
    pub fn from_client_message(
        &mut self,
        decider: &dyn Decider,
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
                return self.plain_call(Deciding::Ask(decider), call, started);
            }
            ClientRead::Envelope(envelope) => match (envelope.method.as_deref(), envelope.id()) {
                (Some("tools/call" | "initialize"), Some(_)) => {}
                (Some(method), Some(_)) if examined(method) => {}
                (Some(_), Some(id)) if self.gone => {
                    return vec![Output::ToClient(error_response(id, INTERNAL_ERROR, GONE))];
                }
                (Some(method), Some(id)) => {
                    let kind = List::of_method(method).map_or(Waiting::Other, Waiting::List);
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
                self.call(decider, message, id, started)
            }
            (Some(_), Some(id)) if self.gone => {
                // Nothing would ever answer it.
                vec![Output::ToClient(error_response(id, INTERNAL_ERROR, GONE))]
            }
            (Some(method), Some(id)) if examined(method) => {
                let (method, id) = (method.to_owned(), id.clone());
                let started = self.clock();
                self.request(decider, message, &method, id, started)
            }
            (Some(method), Some(id)) => {
                let kind = match method {
                    "initialize" => {
                        self.initialize(map);
                        Waiting::Initialize
                    }
                    _ => List::of_method(method).map_or(Waiting::Other, Waiting::List),
                };
                self.waiting.insert(key(id), kind);
                vec![Output::Forward]
            }
            (None, Some(id)) => {
                // A response: to one of our elicitations, or to a server's request.
                let k = key(id);
                match self.held.remove(&k) {
                    Some(held) => self.elicitation_answer(decider, held, map),
                    None => vec![Output::Forward],
                }
            }
            _ => vec![Output::Forward],
        }
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
    pub(super) fn call(
        &mut self,
        decider: &dyn Decider,
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
        // A retry that answers an `input_required` approval (2026-07-28): only a
        // `requestState` this gateway issued is its own to consume; the server's own (its
        // `input_required` rounds) passes through untouched.
        let retry = match self.retry(decider, params, &id, Kind::Tool, &tool) {
            Ok(retry) => retry,
            Err(out) => return out,
        };
        let (stripped, refused) = (retry.strip, retry.refused);
        let empty = Value::Object(Map::new());
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
            kind: Kind::Tool,
            tool: &tool,
            uri: None,
            args,
            stateless,
            refused,
        };
        self.decide(Deciding::Ask(decider), request, call, started)
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
            kind: Kind::Tool,
            tool: call.tool,
            uri: None,
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
    ///     let decision = block_on(engine.decide(call.subject(), call.args, &call.grant));
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
            hints: self.options.catalog.hints(&call.tool),
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
    pub(super) fn read_meta(&mut self, meta: Option<&Value>) -> bool {
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
    pub(super) fn decide(
        &mut self,
        deciding: Deciding<'_>,
        request: Request<'_>,
        call: Call<'_>,
        started: Option<Instant>,
    ) -> Vec<Output> {
        let hints = match (call.kind, &deciding) {
            (Kind::Tool, Deciding::Ask(decider)) if decider.trusts_annotations() => {
                self.options.catalog.hints(call.tool)
            }
            _ => None,
        };
        let subject = call.subject(hints);
        let Call {
            id,
            kind,
            tool,
            args,
            stateless,
            refused,
            ..
        } = call;
        let (decision, took, decider) = match deciding {
            Deciding::Made(decision, policy_us) => {
                (decision, Duration::from_micros(policy_us), None)
            }
            Deciding::Ask(decider) => {
                let t0 = self.clock();
                let decision = decider.decide(subject, args, &self.grant);
                let took = t0.map_or(Duration::ZERO, |t| t.elapsed());
                (decision, took, Some(decider))
            }
        };
        let policy_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let parent = match self.options.observers.traces() {
            true => traceparent_in(&request),
            false => None,
        };
        self.options
            .observers
            .decided_in(kind, tool, &decision, took, parent.as_deref());
        let record = self.record(kind, tool, &decision, args, policy_us);
        match decision.verdict {
            Verdict::Allow if self.gone => {
                // Decided while the server went away: never forwarded, refunded.
                // (A host that decided the call refunds it itself: see `is_gone`.)
                let flight = InFlight {
                    record,
                    reservation: decision.reservation,
                    started,
                    binding: None,
                    traced: None,
                };
                let audit = match decider {
                    Some(decider) => self.finish(decider, flight, "gone", true),
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
                let observers = &self.options.observers;
                let traced = match observers.traces() {
                    true => observers
                        .forwarding(kind, tool, parent.as_deref())
                        .map(|forwarded| {
                            Box::new(Traced {
                                parent,
                                forwarded,
                                rule: decision.rule.clone(),
                            })
                        }),
                    false => None,
                };
                let out = match (&traced, request) {
                    (Some(traced), request) => {
                        let mut message = request.whole();
                        set_traceparent(&mut message, &traced.forwarded);
                        vec![Output::ToServer(message)]
                    }
                    (None, Request::Changed(message)) => vec![Output::ToServer(message.clone())],
                    (None, _) => vec![Output::Forward],
                };
                self.waiting.insert(
                    key(&id),
                    Waiting::Call(Box::new(InFlight {
                        record,
                        reservation: decision.reservation,
                        started,
                        binding: stateless.then(|| self.binding(kind, tool, args)),
                        traced,
                    })),
                );
                out
            }
            Verdict::Deny if decision.hidden => {
                let answer = unknown(&id, kind, tool);
                vec![Output::ToClient(answer), audit(record, started)]
            }
            Verdict::Deny | Verdict::Limit => {
                let answer = refusal_of(&id, kind, &decision, stateless);
                vec![Output::ToClient(answer), audit(record, started)]
            }
            Verdict::Approve if let Some(why) = refused => {
                // The human said no to this very call: answered, not asked again.
                let text =
                    format!("The call of `{tool}` was not approved: {why}. Nothing was done.");
                let answer =
                    crate::mcp::wire::refused(&id, kind, &text, decision.to_json(None), stateless);
                vec![Output::ToClient(answer), audit(record, started)]
            }
            Verdict::Approve => {
                let message = request.whole();
                self.ask(
                    message,
                    id,
                    kind,
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

    /// A call's tool and canonical arguments, hashed with keys drawn at random for this
    /// gateway (SipHash): eight bytes per call instead of a copy of its arguments, and no
    /// client can make two different calls collide without knowing the keys.
    pub(super) fn binding(&self, kind: Kind, tool: &str, args: &Value) -> u64 {
        std::hash::BuildHasher::hash_one(&self.binding_keys, (kind, tool, canonical_json(args)))
    }
}

/// The W3C `traceparent` a request carries in `params._meta` (MCP 2026-07-28, SEP-414).
fn traceparent_in(request: &Request<'_>) -> Option<String> {
    match request {
        Request::Line(line) => parse_line(line)
            .ok()
            .and_then(|m| traceparent_of(&m).map(str::to_owned)),
        Request::Parsed(message) | Request::Changed(message) => {
            traceparent_of(message).map(str::to_owned)
        }
    }
}
