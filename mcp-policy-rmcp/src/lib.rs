//! # mcp-policy-rmcp
//!
//! Exact, fail-closed [mcp-policy](https://docs.rs/mcp-policy) decisions (allow, deny, limit,
//! approve) on tools, resources and prompts inside a Rust MCP server built on
//! [rmcp](https://docs.rs/rmcp): wrap any [`ServerHandler`] in a [`Guarded`] and serve that
//! instead.
//!
//! ```no_run
//! use mcp_policy::{Engine, Grant, Policy};
//! use mcp_policy_rmcp::{GrantSource, Guarded};
//! use rmcp::{ServerHandler, ServiceExt};
//!
//! # async fn run(my_server: impl ServerHandler) -> Result<(), Box<dyn std::error::Error>> {
//! let policy = Policy::from_json_str(&std::fs::read_to_string("policy.json")?)?;
//! let guarded = Guarded::new(my_server, Engine::new(policy), GrantSource::Fixed(Grant::new("local")));
//! let running = guarded.serve((tokio::io::stdin(), tokio::io::stdout())).await?;
//! running.waiting().await?;
//! # Ok(()) }
//! ```
//!
//! What the client sees is what it sees through `mcp-policy proxy`
//! ([docs/MCP.md](https://github.com/mcp-policy/mcp-policy/blob/main/docs/MCP.md)): the answers
//! are built by the core's shared MCP layer ([`mcp_policy::mcp::typed`]).
//!
//! | decision | what the client gets | the inner handler runs |
//! |---|---|---|
//! | allow | the server's answer, unchanged | yes |
//! | deny, limit | a result with `isError: true`: the policy's message, the decision in `_meta["io.mcp-policy/decision"]` | no |
//! | hidden tool | JSON-RPC error `-32602` `Unknown tool: NAME` | no |
//! | approve | a human is asked: `elicitation/create` (2025-06-18 and 2025-11-25 clients that declared elicitation), an `input_required` result (2026-07-28), else an `isError` result naming the approval id (out of band) | once approved |
//!
//! Resources and prompts are decided too ([`mcp_policy::subject::Subject`]), and refused with
//! the JSON-RPC errors the gateway gives (built by [`mcp_policy::mcp::refusal_of`] and
//! [`mcp_policy::mcp::unknown`]):
//!
//! | request | decided on | deny, limit | hidden |
//! |---|---|---|---|
//! | `resources/read`, `resources/subscribe` | the URI in normal form ([`mcp_policy::uri::Uri`]); the inner handler gets it as sent | error `-32003`: the policy's message (a limit adds `(retry in N s)`), `data["io.mcp-policy/decision"]` | error `-32002` `Resource not found`, `data.uri` |
//! | `prompts/get` | the name and `arguments` | as above | error `-32602` `Unknown prompt: NAME` |
//!
//! A URI that cannot be read into normal form is error `-32602` naming the problem. An
//! approval is asked as for a tool call (elicitation; `input_required` for `resources/read`
//! and `prompts/get` on 2026-07-28; else out of band); its refusal is error `-32003`.
//! `completion/complete` is forwarded only when its `ref` names a prompt, resource or template
//! the policy could allow, else it gets the answer for one that does not exist.
//!
//! `tools/list`, `resources/list`, `resources/templates/list` and `prompts/list` results are
//! filtered (what the policy can never allow is removed; the cursor is kept). Every other
//! request and notification goes to the inner handler untouched (`resources/unsubscribe`,
//! `resources/directory/read`, and 2026-07-28 `subscriptions/listen`, whose URIs are not
//! decided here yet), except the requests of a capability the inner handler's `get_info` does
//! not advertise (`tools/list`, `resources/*`, `prompts/*`, `completion/complete`,
//! `logging/setLevel`): the guard advertises exactly the inner handler's capabilities and
//! answers those `-32601` Method not found. An allowed call, read or prompt whose inner
//! handler answers with a JSON-RPC error (`Err`) is refunded: it never happened.
//!
//! ## Who is calling
//!
//! [`GrantSource::Fixed`] for stdio (one client per process); [`GrantSource::Http`] for
//! streamable HTTP, where the host's own authentication middleware inserts a [`Grant`] (or an
//! `Arc<Grant>`) into the HTTP request's extensions and rmcp hands the request's
//! [`http::request::Parts`] to the handler. `grant.attrs.client` and
//! `grant.attrs.client_version` come from the client's `clientInfo`. A call without a grant
//! is denied: it is never evaluated as someone else.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{extract::Request, middleware::Next, response::Response, http::StatusCode};
//! use mcp_policy::Grant;
//!
//! // The host's middleware: a known bearer token becomes a grant, anything else is a 401.
//! async fn auth(mut request: Request, next: Next) -> Result<Response, StatusCode> {
//!     let token = request.headers().get("authorization").and_then(|v| v.to_str().ok());
//!     let grant = match token {
//!         Some("Bearer alice-token") => Grant::new("alice"),
//!         _ => return Err(StatusCode::UNAUTHORIZED),
//!     };
//!     request.extensions_mut().insert(Arc::new(grant));
//!     Ok(next.run(request).await)
//! }
//! ```
//!
//! ## Delegation
//!
//! rmcp's streamable HTTP server takes a [`ServerHandler`], so [`Guarded`] is one: `call_tool`,
//! `read_resource`, `subscribe`, `get_prompt`, `complete`, the four lists (and `get_tool`,
//! which rmcp's HTTP transport uses to check headers) go through the policy; the other
//! methods of the trait are forwarded to the inner handler.
//! The crate's `tests/delegation.rs` fails when the rmcp being built has a `ServerHandler`
//! method the guard does not implement, or a request or notification kind that does not
//! reach the inner handler exactly as it does without the guard. Supported: rmcp 3.11 (without
//! its `local` feature).
//!
//! ## Stores
//!
//! The policy engine is anything that implements [`AsyncDecider`]: an [`Engine`] (in-memory or
//! any synchronous [`CounterStore`]; like every `Send + Sync` [`Decider`], its futures are
//! ready at once) or an [`AsyncEngine`] over an [`AsyncCounterStore`] such as the Redis store
//! of `mcp-policy-redis` (one awaited round trip per decision; the runtime is never blocked).
//!
//! [`Decider`]: mcp_policy::Decider
//! [`CounterStore`]: mcp_policy::CounterStore
//! [`AsyncEngine`]: mcp_policy::AsyncEngine
//! [`AsyncCounterStore`]: mcp_policy::AsyncCounterStore

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use mcp_policy::mcp::typed::{Approvals, CallAnswer, Channel, Redeemed};
use mcp_policy::mcp::{DECISION_META, GatewayOptions, OWN_ID_PREFIX, STATELESS_VERSION};
use mcp_policy::observe::{ApprovalEvent, Observers};
use mcp_policy::subject::{Hints, Kind, Subject};
use mcp_policy::{AsyncDecider, Decision, Engine, Grant, Reservation, Verdict};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ElicitRequestParams, ErrorCode,
    Implementation, InputRequiredResult, ListToolsRequestMethod, ListToolsResult,
    PaginatedRequestParams,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::{Map, Value, json};

mod forward;
mod surface;

pub use mcp_policy;
pub use rmcp;

/// The rmcp version this crate is built and tested against.
pub const RMCP_VERSION: &str = "3.11";

/// A host's own grant lookup (see [`GrantSource::Custom`]).
pub type GrantLookup = Arc<dyn Fn(&RequestContext<RoleServer>) -> Option<Grant> + Send + Sync>;

/// Where the grant of a call comes from.
#[derive(Clone)]
pub enum GrantSource {
    /// One grant for every call (stdio: one client per process).
    Fixed(Grant),
    /// The grant the host's authentication middleware put in the HTTP request's extensions
    /// (a [`Grant`] or an `Arc<Grant>`), found through the [`http::request::Parts`] that
    /// rmcp's streamable HTTP server passes to the handler. No grant there: the call is
    /// denied.
    Http,
    /// The host's own lookup in the request context (`None`: the call is denied).
    Custom(GrantLookup),
}

impl std::fmt::Debug for GrantSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantSource::Fixed(grant) => f.debug_tuple("Fixed").field(grant).finish(),
            GrantSource::Http => f.write_str("Http"),
            GrantSource::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Why a guard could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The approval timeout is zero.
    #[error("the approval timeout must be longer than zero")]
    ZeroApprovalTimeout,
}

/// What several [`Guarded`] handlers of one server share: the engine and the approvals in
/// progress (`input_required` states issued on one HTTP request are redeemed on another).
#[derive(Debug)]
pub struct Shared<D> {
    engine: D,
    approvals: Approvals,
}

impl<D: AsyncDecider> Shared<D> {
    /// Decides, and tells the options' observer ([`GatewayOptions::observers`]) what was
    /// decided and how long it took (no clock read without one).
    pub(crate) async fn decide(
        &self,
        subject: Subject<'_>,
        args: &Value,
        grant: &Grant,
    ) -> Decision {
        let observers = self.observers();
        if !observers.is_some() {
            return self.engine.decide(subject, args, grant).await;
        }
        let t0 = Instant::now();
        let decision = self.engine.decide(subject, args, grant).await;
        observers.decided(subject.kind(), subject.name(), &decision, t0.elapsed());
        decision
    }

    /// The observer the options carry.
    pub(crate) fn observers(&self) -> &Observers {
        &self.approvals.options().observers
    }

    /// An allowed request went to the inner handler at `started`; `failed`: it answered with
    /// an error (`Err`), so the request never happened and its charges are refunded.
    pub(crate) async fn finish(
        &self,
        kind: Kind,
        failed: bool,
        reservation: Option<Reservation>,
        started: Option<Instant>,
    ) {
        let mut refunded = false;
        if failed && let Some(reservation) = reservation {
            refunded = self.engine.release(reservation).await.is_ok();
        }
        if let Some(started) = started {
            let upstream = if failed { "error" } else { "ok" };
            self.observers()
                .finished(kind, upstream, refunded, started.elapsed(), None);
        }
    }

    /// The time now, when an observer will want durations.
    pub(crate) fn clock(&self) -> Option<Instant> {
        self.observers().is_some().then(Instant::now)
    }
}

/// An rmcp [`ServerHandler`] with a policy on its tools, resources and prompts; see the crate
/// documentation.
///
/// Cloning is cheap (the engine is shared); a streamable HTTP server's factory clones one
/// guard per session.
#[derive(Debug)]
pub struct Guarded<H, D: AsyncDecider + 'static = Engine> {
    inner: H,
    shared: Arc<Shared<D>>,
    grants: GrantSource,
    /// A fixed grant with the client's `clientInfo` added, made on the first call.
    fixed: OnceLock<Grant>,
}

impl<H: Clone, D: AsyncDecider + 'static> Clone for Guarded<H, D> {
    fn clone(&self) -> Self {
        Guarded {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            grants: self.grants.clone(),
            fixed: OnceLock::new(),
        }
    }
}

impl<H: ServerHandler, D: AsyncDecider + 'static> Guarded<H, D> {
    /// Guards `inner` with `engine`, calls made as `grants` says, default options.
    pub fn new(inner: H, engine: D, grants: GrantSource) -> Self {
        let shared = Arc::new(Shared {
            engine,
            approvals: Approvals::new(GatewayOptions::default()),
        });
        Guarded::with_shared(inner, shared, grants)
    }

    /// Guards `inner` with `engine` and `options` (the approval timeout, and how an operator
    /// approves out of band, e.g. `mcp-policy approve ID --store redis://…`).
    pub fn with_options(
        inner: H,
        engine: D,
        grants: GrantSource,
        options: GatewayOptions,
    ) -> Result<Self, GuardError> {
        Ok(Guarded::with_shared(
            inner,
            Guarded::<H, D>::share(engine, options)?,
            grants,
        ))
    }

    /// The state several guards of one server share (see [`Guarded::with_shared`]).
    pub fn share(engine: D, options: GatewayOptions) -> Result<Arc<Shared<D>>, GuardError> {
        if options.approval_timeout.is_zero() {
            return Err(GuardError::ZeroApprovalTimeout);
        }
        Ok(Arc::new(Shared {
            engine,
            approvals: Approvals::new(options),
        }))
    }

    /// A guard over shared state: one per session of a streamable HTTP server, say.
    pub fn with_shared(inner: H, shared: Arc<Shared<D>>, grants: GrantSource) -> Self {
        Guarded {
            inner,
            shared,
            grants,
            fixed: OnceLock::new(),
        }
    }

    /// The inner handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The engine.
    pub fn engine(&self) -> &D {
        &self.shared.engine
    }

    /// The grant this call is made as: borrowed where nothing needs adding.
    pub(crate) fn grant<'c>(
        &'c self,
        context: &'c RequestContext<RoleServer>,
    ) -> Option<Cow<'c, Grant>> {
        match &self.grants {
            GrantSource::Fixed(grant) => Some(Cow::Borrowed(self.fixed.get_or_init(|| {
                let mut grant = grant.clone();
                if let Some(info) = context.client_info() {
                    add_client(&mut grant, &info);
                }
                grant
            }))),
            GrantSource::Http => {
                let parts = context.extensions.get::<http::request::Parts>()?;
                let found = parts.extensions.get::<Arc<Grant>>().map(AsRef::as_ref);
                let grant = found.or_else(|| parts.extensions.get::<Grant>())?;
                Some(with_client(grant, context))
            }
            GrantSource::Custom(lookup) => {
                let grant = lookup(context)?;
                let mut grant = grant;
                if let Some(info) = context.client_info() {
                    add_client(&mut grant, &info);
                }
                Some(Cow::Owned(grant))
            }
        }
    }

    async fn guarded_call(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let protocol = context.protocol_version();
        let protocol = protocol.as_ref().map(|p| p.as_str());
        let stateless = protocol == Some(STATELESS_VERSION);
        let Some(grant) = self.grant(&context) else {
            return Ok(no_grant(stateless));
        };
        let engine = &self.shared.engine;
        let approvals = &self.shared.approvals;
        // The arguments are moved into a `Value` for the engine and moved back: no copy.
        let had_args = request.arguments.is_some();
        let args = Value::Object(request.arguments.take().unwrap_or_default());
        let tool: &str = &request.name;

        // A retry that answers one of our `input_required` approvals (2026-07-28).
        let mut refused = None;
        if let Some(state) = request.request_state.as_deref()
            && state.starts_with(OWN_ID_PREFIX)
        {
            let responses = request
                .input_responses
                .as_ref()
                .and_then(|r| r.get("approve"))
                .map(|r| json!({ "approve": r }));
            match approvals.redeem(state, responses.as_ref(), tool, &args, &grant) {
                // A failure to record leaves the call unapproved: it is asked again.
                Redeemed::Approved(id) => {
                    if engine.record_approval(&id).await.is_ok() {
                        self.shared
                            .observers()
                            .approval(Kind::Tool, ApprovalEvent::Granted, false);
                    }
                }
                Redeemed::Refused(why) => {
                    self.shared
                        .observers()
                        .approval(Kind::Tool, ApprovalEvent::Declined, false);
                    refused = Some(why)
                }
                Redeemed::Nothing => {}
            }
        }

        let mut decision = self
            .shared
            .decide(self.tool_subject(tool), &args, &grant)
            .await;
        if decision.verdict == Verdict::Approve
            && let Some(why) = refused
        {
            // The human said no to this very call: answered, not asked again.
            let result = Approvals::refused(tool, why, decision.to_json(None), stateless);
            return Ok(CallToolResponse::Complete(to_result(result)));
        }
        if decision.verdict == Verdict::Approve
            && let Some(channel) = self.elicitation_channel(&context, protocol)
        {
            match self
                .elicit(
                    &decision,
                    Subject::Tool(tool),
                    &args,
                    &grant,
                    channel,
                    &context,
                )
                .await
            {
                Ok(next) => decision = next,
                Err(result) => return Ok(CallToolResponse::Complete(to_result(result))),
            }
        }
        let channel = if stateless {
            Channel::InputRequired
        } else {
            Channel::OutOfBand
        };
        if decision.verdict == Verdict::Approve {
            self.shared
                .observers()
                .approval(Kind::Tool, ApprovalEvent::Asked, false);
        }
        match approvals.answer(&decision, tool, &args, &grant, channel, stateless) {
            CallAnswer::Forward => {
                if let Value::Object(map) = args
                    && had_args
                {
                    request.arguments = Some(map);
                }
                if request
                    .request_state
                    .as_deref()
                    .is_some_and(|s| s.starts_with(OWN_ID_PREFIX))
                {
                    request.request_state = None;
                    request.input_responses = None;
                }
                let reservation = decision.reservation.take();
                let started = self.shared.clock();
                let answer = self.inner.call_tool(request, context).await;
                // A tool that answered an error never ran: its charges are refunded.
                self.shared
                    .finish(Kind::Tool, answer.is_err(), reservation, started)
                    .await;
                answer
            }
            CallAnswer::Result(result) => Ok(to_response(result)),
            CallAnswer::Error { code, message } => Err(McpError::new(
                ErrorCode(i32::try_from(code).unwrap_or(ErrorCode::INVALID_PARAMS.0)),
                message,
                None,
            )),
            // Not reached: elicitation was handled above.
            CallAnswer::Elicit { decision, .. } => Ok(CallToolResponse::Complete(to_result(
                Approvals::not_approved("this call needs approval", decision),
            ))),
        }
    }

    /// Elicitation is the channel when the client declared it and speaks a version with
    /// server-to-client requests.
    pub(crate) fn elicitation_channel(
        &self,
        context: &RequestContext<RoleServer>,
        protocol: Option<&str>,
    ) -> Option<Channel> {
        let declared = context
            .peer
            .peer_info()
            .is_some_and(|info| info.capabilities.elicitation.is_some());
        match Channel::choose(protocol, declared) {
            channel @ Channel::Elicitation { .. } => Some(channel),
            _ => None,
        }
    }

    /// Asks the human about a tool call, resource read or prompt and, when approved, decides
    /// again (the request still has to pass its limits). `Err`: the `tools/call`-shaped
    /// result (text and decision) the client gets instead.
    pub(crate) async fn elicit(
        &self,
        decision: &Decision,
        subject: Subject<'_>,
        args: &Value,
        grant: &Grant,
        channel: Channel,
        context: &RequestContext<RoleServer>,
    ) -> Result<Decision, Value> {
        let approvals = &self.shared.approvals;
        let name = subject.name();
        let CallAnswer::Elicit {
            params,
            approval_id,
            decision: decision_json,
        } = approvals.answer_of(subject.kind(), decision, name, args, grant, channel, false)
        else {
            let text = "this call needs approval";
            return Err(Approvals::not_approved(text, decision.to_json(None)));
        };
        let params = with_mode(params);
        let timeout = approvals.options().approval_timeout;
        let (kind, observers) = (subject.kind(), self.shared.observers());
        observers.approval(kind, ApprovalEvent::Asked, true);
        let asked = match serde_json::from_value::<ElicitRequestParams>(params) {
            Ok(params) => {
                context
                    .peer
                    .create_elicitation_with_timeout(params, Some(timeout))
                    .await
            }
            Err(_) => Err(rmcp::ServiceError::UnexpectedResponse),
        };
        if let Err(rmcp::ServiceError::Timeout { .. }) = &asked {
            observers.approval(kind, ApprovalEvent::Expired, true);
            let text = format!(
                "The call of `{name}` was not approved: no answer within {} s. Nothing was done.",
                timeout.as_secs()
            );
            return Err(Approvals::not_approved(&text, decision_json));
        }
        let answer = asked.ok().and_then(|a| serde_json::to_value(a).ok());
        if let Err(refusal) = Approvals::elicited(name, answer.as_ref(), decision_json.clone()) {
            observers.approval(kind, ApprovalEvent::Declined, true);
            return Err(refusal);
        }
        if let Err(e) = self.shared.engine.record_approval(&approval_id).await {
            observers.approval(kind, ApprovalEvent::Declined, true);
            let text = format!(
                "The call of `{name}` was approved, but the approval could not be recorded: {e}"
            );
            return Err(Approvals::not_approved(&text, decision_json));
        }
        observers.approval(kind, ApprovalEvent::Granted, true);
        Ok(self.shared.decide(subject, args, grant).await)
    }

    async fn filtered_list(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        if !self.advertises(|c| c.tools.is_some()) {
            return Err(McpError::method_not_found::<ListToolsRequestMethod>());
        }
        let mut result = self.inner.list_tools(request, context).await?;
        let policy = self.shared.engine.policy();
        if policy.trusts_annotations()
            && let Ok(listed) = serde_json::to_value(&result)
        {
            self.shared.approvals.options().catalog.learn_tools(&listed);
        }
        result
            .tools
            .retain(|tool| policy.can_ever_allow(&tool.name));
        Ok(result)
    }

    /// A tool as the policy decides it: with the annotations the wrapped handler gives it
    /// (`get_tool`, else what its `tools/list` said), when the policy trusts annotations;
    /// otherwise by name alone (nothing looked up, nothing allocated).
    fn tool_subject<'t>(&self, tool: &'t str) -> Subject<'t> {
        if !self.shared.engine.policy().trusts_annotations() {
            return Subject::Tool(tool);
        }
        let own = self
            .inner
            .get_tool(tool)
            .and_then(|t| serde_json::to_value(&t).ok())
            .map(|t| Hints::of_tool(&t));
        match own.or_else(|| self.shared.approvals.options().catalog.hints(tool)) {
            Some(hints) => Subject::AnnotatedTool(tool, hints),
            None => Subject::Tool(tool),
        }
    }
}

/// rmcp's elicitation params always name their mode.
fn with_mode(mut params: Value) -> Value {
    if let Value::Object(map) = &mut params
        && !map.contains_key("mode")
    {
        map.insert("mode".into(), "form".into());
    }
    params
}

fn add_client(grant: &mut Grant, info: &Implementation) {
    for (to, v) in [("client", &info.name), ("client_version", &info.version)] {
        if grant.attrs.get(to).and_then(Value::as_str) != Some(v.as_str()) {
            grant.attrs.insert(to.into(), Value::String(v.clone()));
        }
    }
}

/// The grant with the client's `clientInfo`, copied only when something is added.
fn with_client<'g>(grant: &'g Grant, context: &RequestContext<RoleServer>) -> Cow<'g, Grant> {
    let Some(info) = context.client_info() else {
        return Cow::Borrowed(grant);
    };
    let same = |key: &str, v: &str| grant.attrs.get(key).and_then(Value::as_str) == Some(v);
    if same("client", &info.name) && same("client_version", &info.version) {
        return Cow::Borrowed(grant);
    }
    let mut owned = grant.clone();
    add_client(&mut owned, &info);
    Cow::Owned(owned)
}

/// The answer to a call that carries no grant.
fn no_grant(stateless: bool) -> CallToolResponse {
    let message = "this call carries no grant (the server did not authenticate its caller)";
    let decision = json!({ "decision": "deny", "rule": "", "message": message });
    let mut result = Approvals::not_approved(message, decision);
    if stateless && let Value::Object(map) = &mut result {
        map.insert("resultType".into(), "complete".into());
    }
    CallToolResponse::Complete(to_result(result))
}

/// A `tools/call` result built by the shared layer, as rmcp's type.
fn to_response(result: Value) -> CallToolResponse {
    if result.get("resultType").and_then(Value::as_str) == Some("input_required")
        && let Ok(input) = serde_json::from_value::<InputRequiredResult>(result.clone())
    {
        return CallToolResponse::InputRequired(input);
    }
    CallToolResponse::Complete(to_result(result))
}

fn to_result(result: Value) -> CallToolResult {
    let text = result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or("this call is not allowed by the policy")
        .to_owned();
    let meta = result.pointer(&format!("/_meta/{}", DECISION_META.replace('/', "~1")));
    let meta = meta.cloned();
    serde_json::from_value::<CallToolResult>(result).unwrap_or_else(|_| {
        // Not reached with the shared layer's results; still an error result.
        let mut fallback = CallToolResult::error(vec![rmcp::model::ContentBlock::text(text)]);
        if let Some(decision) = meta {
            let mut m = Map::new();
            m.insert(DECISION_META.into(), decision);
            fallback.meta = Some(rmcp::model::MetaObject(m));
        }
        fallback
    })
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
