//! Resources, prompts and completion through the policy, answered as the gateway answers
//! them: `resources/read` and `resources/subscribe` decided per URI (in normal form),
//! `prompts/get` per name and arguments, `completion/complete` forwarded only for a prompt or
//! resource the caller could use, and `resources/list`, `resources/templates/list` and
//! `prompts/list` filtered.
//!
//! The refusals are built by the core's wire functions ([`refusal_of`], [`unknown`],
//! [`request_error`]) and carried as rmcp `ErrorData`: a client sees the same error code,
//! message and `data` as through `mcp-policy proxy`.

use mcp_policy::mcp::typed::{Approvals, CallAnswer, Channel, Redeemed};
use mcp_policy::mcp::{
    DECISION_META, INPUT_REQUIRED, OWN_ID_PREFIX, POLICY_REFUSED, STATELESS_VERSION, refusal_of,
    request_error, unknown,
};
use mcp_policy::observe::ApprovalEvent;
use mcp_policy::subject::{Kind, Subject};
use mcp_policy::uri::Uri;
use mcp_policy::{AsyncDecider, Reservation, Verdict};
use rmcp::model::{
    CompleteRequestParams, CompleteResult, ErrorCode, GetPromptRequestParams, GetPromptResponse,
    InputRequiredResult, InputResponses, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    Reference, SubscribeRequestParams,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::{Map, Value, json};

use crate::Guarded;

/// What the policy made of a request it lets through, or asks about.
enum Admission {
    /// Forward it to the inner handler; refund this reservation if that answers an error.
    Forward(Option<Reservation>),
    /// Answer with this `input_required` result (a 2026-07-28 approval).
    InputRequired(InputRequiredResult),
}

/// One resource or prompt request to decide.
struct Asked<'a> {
    subject: Subject<'a>,
    /// A prompt's `arguments` (`{}` when absent, and for a resource).
    args: &'a Value,
    /// The retry's `requestState` and `inputResponses` (2026-07-28).
    state: Option<&'a str>,
    responses: Option<&'a InputResponses>,
    /// Whether the answer may be an `input_required` result (not for `resources/subscribe`).
    can_input_required: bool,
}

impl<H: ServerHandler, D: AsyncDecider + 'static> Guarded<H, D> {
    /// `resources/read`: decided on the URI in normal form; the inner handler gets the URI as
    /// the client sent it.
    pub(crate) async fn guarded_read(
        &self,
        mut request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let admission = {
            let uri = parse_uri("resources/read", &request.uri)?;
            let empty = Value::Object(Map::new());
            let asked = Asked {
                subject: Subject::Resource(&uri),
                args: &empty,
                state: request.request_state.as_deref(),
                responses: request.input_responses.as_ref(),
                can_input_required: true,
            };
            self.admit(asked, &context).await?
        };
        let reservation = match admission {
            Admission::Forward(reservation) => reservation,
            Admission::InputRequired(result) => {
                return Ok(ReadResourceResponse::InputRequired(result));
            }
        };
        if is_ours(request.request_state.as_deref()) {
            request.request_state = None;
            request.input_responses = None;
        }
        let started = self.shared.clock();
        let answer = self.inner.read_resource(request, context).await;
        self.shared
            .finish(Kind::Resource, answer.is_err(), reservation, started)
            .await;
        answer
    }

    /// `resources/subscribe`: decided as a read of the URI (an approval is asked by
    /// elicitation or out of band: the request has no `input_required` form).
    #[allow(deprecated)] // `resources/subscribe` is legacy-only in rmcp; still served.
    pub(crate) async fn guarded_subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let admission = {
            let uri = parse_uri("resources/subscribe", &request.uri)?;
            let empty = Value::Object(Map::new());
            let asked = Asked {
                subject: Subject::Resource(&uri),
                args: &empty,
                state: None,
                responses: None,
                can_input_required: false,
            };
            self.admit(asked, &context).await?
        };
        let reservation = match admission {
            Admission::Forward(reservation) => reservation,
            // Not reached: `can_input_required` is false.
            Admission::InputRequired(_) => None,
        };
        let started = self.shared.clock();
        let answer = self.inner.subscribe(request, context).await;
        self.shared
            .finish(Kind::Resource, answer.is_err(), reservation, started)
            .await;
        answer
    }

    /// `prompts/get`: decided on the name and the arguments (moved into a `Value` for the
    /// engine and back: no copy).
    pub(crate) async fn guarded_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let had_args = request.arguments.is_some();
        let args = Value::Object(request.arguments.take().unwrap_or_default());
        let asked = Asked {
            subject: Subject::Prompt(&request.name),
            args: &args,
            state: request.request_state.as_deref(),
            responses: request.input_responses.as_ref(),
            can_input_required: true,
        };
        let reservation = match self.admit(asked, &context).await? {
            Admission::Forward(reservation) => reservation,
            Admission::InputRequired(result) => {
                return Ok(GetPromptResponse::InputRequired(result));
            }
        };
        if let Value::Object(map) = args
            && had_args
        {
            request.arguments = Some(map);
        }
        if is_ours(request.request_state.as_deref()) {
            request.request_state = None;
            request.input_responses = None;
        }
        let started = self.shared.clock();
        let answer = self.inner.get_prompt(request, context).await;
        self.shared
            .finish(Kind::Prompt, answer.is_err(), reservation, started)
            .await;
        answer
    }

    /// `completion/complete`: forwarded only when its reference names a prompt, resource or
    /// resource template the policy could allow; otherwise the answer for one that does not
    /// exist.
    pub(crate) async fn guarded_complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let policy = self.shared.engine.policy();
        let (kind, name, usable) = match &request.r#ref {
            Reference::Prompt(prompt) => (
                Kind::Prompt,
                prompt.name.as_str(),
                policy.can_complete(Kind::Prompt, &prompt.name),
            ),
            Reference::Resource(resource) => {
                let uri = resource.uri.as_str();
                (
                    Kind::Resource,
                    uri,
                    policy.can_complete(Kind::Resource, uri),
                )
            }
            // A reference of a kind this rmcp does not know yet: refused, as the gateway
            // refuses a `ref` it cannot read.
            _ => {
                let text = "completion/complete needs `params.ref`: {\"type\": \"ref/prompt\", \"name\"} or {\"type\": \"ref/resource\", \"uri\"}";
                return Err(McpError::invalid_params(text, None));
            }
        };
        if !usable {
            return Err(error_of(&unknown(&Value::Null, kind, name)));
        }
        self.inner.complete(request, context).await
    }

    /// `resources/list`, without the resources the policy can never allow.
    pub(crate) async fn filtered_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut result = self.inner.list_resources(request, context).await?;
        let policy = self.shared.engine.policy();
        result.resources.retain(|r| policy.can_ever_read(&r.uri));
        Ok(result)
    }

    /// `resources/templates/list`, without the templates no URI of which could be allowed.
    pub(crate) async fn filtered_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let mut result = self.inner.list_resource_templates(request, context).await?;
        let policy = self.shared.engine.policy();
        result
            .resource_templates
            .retain(|t| policy.template_could_allow(&t.uri_template));
        Ok(result)
    }

    /// `prompts/list`, without the prompts the policy can never allow.
    pub(crate) async fn filtered_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let mut result = self.inner.list_prompts(request, context).await?;
        let policy = self.shared.engine.policy();
        result
            .prompts
            .retain(|p| policy.can_ever_allow_of(Kind::Prompt, &p.name));
        Ok(result)
    }

    /// Decides one request, asking a human when the decision is `approve`, as `tools/call`
    /// does. `Err`: the error the client gets.
    async fn admit(
        &self,
        asked: Asked<'_>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Admission, McpError> {
        let Asked {
            subject,
            args,
            state,
            responses,
            can_input_required,
        } = asked;
        let (kind, name) = (subject.kind(), subject.name());
        let protocol = context.protocol_version();
        let protocol = protocol.as_ref().map(|p| p.as_str());
        let stateless = protocol == Some(STATELESS_VERSION);
        let Some(grant) = self.grant(context) else {
            return Err(no_grant());
        };
        let engine = &self.shared.engine;
        let approvals = &self.shared.approvals;

        // A retry that answers one of our `input_required` approvals (2026-07-28).
        let mut refused = None;
        if let Some(state) = state.filter(|s| s.starts_with(OWN_ID_PREFIX)) {
            let responses = responses
                .and_then(|r| r.get("approve"))
                .map(|r| json!({ "approve": r }));
            match approvals.redeem_of(kind, state, responses.as_ref(), name, args, &grant) {
                // A failure to record leaves the request unapproved: it is asked again.
                Redeemed::Approved(id) => {
                    if engine.record_approval(&id).await.is_ok() {
                        self.shared
                            .observers()
                            .approval(kind, ApprovalEvent::Granted, false);
                    }
                }
                Redeemed::Refused(why) => {
                    self.shared
                        .observers()
                        .approval(kind, ApprovalEvent::Declined, false);
                    refused = Some(why)
                }
                Redeemed::Nothing => {}
            }
        }

        let mut decision = self.shared.decide(subject, args, &grant).await;
        if decision.verdict == Verdict::Approve {
            if let Some(why) = refused {
                let result = Approvals::refused(name, why, decision.to_json(None), false);
                return Err(refusal_from_result(&result));
            }
            if let Some(channel) = self.elicitation_channel(context, protocol) {
                match self
                    .elicit(&decision, subject, args, &grant, channel, context)
                    .await
                {
                    Ok(next) => decision = next,
                    Err(result) => return Err(refusal_from_result(&result)),
                }
            }
        }
        match decision.verdict {
            Verdict::Allow => Ok(Admission::Forward(decision.reservation.take())),
            _ if decision.hidden => Err(error_of(&unknown(&Value::Null, kind, name))),
            Verdict::Deny | Verdict::Limit => {
                Err(error_of(&refusal_of(&Value::Null, kind, &decision, false)))
            }
            Verdict::Approve => {
                self.shared
                    .observers()
                    .approval(kind, ApprovalEvent::Asked, false);
                let channel = if stateless && can_input_required {
                    Channel::InputRequired
                } else {
                    Channel::OutOfBand
                };
                match approvals.answer_of(kind, &decision, name, args, &grant, channel, stateless) {
                    CallAnswer::Result(result)
                        if result.get("resultType").and_then(Value::as_str)
                            == Some(INPUT_REQUIRED) =>
                    {
                        serde_json::from_value::<InputRequiredResult>(result)
                            .map(Admission::InputRequired)
                            .map_err(|e| {
                                McpError::internal_error(
                                    format!("the approval request could not be built: {e}"),
                                    None,
                                )
                            })
                    }
                    CallAnswer::Result(result) => Err(refusal_from_result(&result)),
                    // Not reached: elicitation was handled above and the verdict is approve;
                    // still a refusal.
                    CallAnswer::Elicit { .. } | CallAnswer::Error { .. } | CallAnswer::Forward => {
                        let result = Approvals::not_approved(
                            "this call needs approval",
                            decision.to_json(None),
                        );
                        Err(refusal_from_result(&result))
                    }
                }
            }
        }
    }
}

/// The URI in normal form, or the invalid-params error the gateway gives for one that cannot
/// be judged.
fn parse_uri<'u>(method: &str, uri: &'u str) -> Result<Uri<'u>, McpError> {
    Uri::parse(uri).map_err(|error| {
        McpError::invalid_params(
            format!("{method}: `params.uri` cannot be judged by the policy: {error}"),
            None,
        )
    })
}

/// Whether a `requestState` is one this guard issued.
fn is_ours(state: Option<&str>) -> bool {
    state.is_some_and(|s| s.starts_with(OWN_ID_PREFIX))
}

/// The error of a JSON-RPC error response built by the core's wire functions.
fn error_of(response: &Value) -> McpError {
    let error = response.get("error");
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64)
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(POLICY_REFUSED as i32);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("this request is not allowed by the policy")
        .to_owned();
    let data = error.and_then(|e| e.get("data")).cloned();
    McpError::new(ErrorCode(code), message, data)
}

/// A refusal the typed layer built as a `tools/call` result (its text and decision), as the
/// JSON-RPC error a resource or prompt request gets instead ([`request_error`]).
fn refusal_from_result(result: &Value) -> McpError {
    let text = result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or("this request is not allowed by the policy");
    let decision = result
        .get("_meta")
        .and_then(|m| m.get(DECISION_META))
        .cloned()
        .unwrap_or(Value::Null);
    error_of(&request_error(&Value::Null, text, decision))
}

/// The refusal of a request that carries no grant.
fn no_grant() -> McpError {
    let message = "this call carries no grant (the server did not authenticate its caller)";
    let decision = json!({ "decision": "deny", "rule": "", "message": message });
    error_of(&request_error(&Value::Null, message, decision))
}
