//! The gateway's side of approvals: asking a human about a call (through the one approval
//! builder, `mcp::approvals`), and the client's answers.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::{Gateway, Held, Output, audit};
use crate::approval::canonical_json;
use crate::decision::Decision;
use crate::engine::Decider;
use crate::mcp::approvals::{Approval, Ask, Asker, Asking, Channel, accepts, why_not_approved};
use crate::mcp::audit::AuditRecord;
use crate::mcp::read::key;
use crate::mcp::wire::{OWN_ID_PREFIX, refused};
use crate::observe::ApprovalEvent;
use crate::subject::Kind;

/// What a retry's `requestState` was.
pub(super) enum StateAnswer {
    /// Not in this gateway's form (the server's own): the gateway leaves it.
    NotOurs,
    /// In this gateway's form and used up: approved, or not valid for this call (issued for
    /// another, forged, expired or replayed).
    Used,
    /// Issued here for this call, and the human did not approve.
    Refused(&'static str),
}

/// What a request's 2026-07-28 retry fields said ([`Gateway::retry`]).
pub(super) struct Retry {
    /// The gateway's own approval fields were consumed: they must be stripped before the
    /// request goes on.
    pub(super) strip: bool,
    /// The human refused this very request.
    pub(super) refused: Option<&'static str>,
}

/// Removes the gateway's own approval fields from a retry before it goes to the server.
pub(super) fn strip_approval_fields(message: &mut Value) {
    if let Some(Value::Object(params)) = message.get_mut("params") {
        params.remove("requestState");
        params.remove("inputResponses");
    }
}

impl Gateway {
    /// A request's `requestState` (2026-07-28), for `kind` named `name`: one this gateway
    /// issued is consumed (an approval recorded, or a refusal to answer); one the server
    /// issued may continue a request it asked input for — then `Err` carries what to do
    /// instead of deciding. Tool calls, resource reads and prompts all read their retries
    /// here.
    pub(super) fn retry(
        &mut self,
        decider: &dyn Decider,
        params: Option<&Value>,
        id: &Value,
        kind: Kind,
        name: &str,
    ) -> Result<Retry, Vec<Output>> {
        let Some((params, state)) = params.and_then(|p| Some((p, p.get("requestState")?))) else {
            return Ok(Retry {
                strip: false,
                refused: None,
            });
        };
        let empty = Value::Object(Map::new());
        let args = match params.get("arguments") {
            Some(args @ Value::Object(_)) => args,
            _ => &empty,
        };
        match self.answer_request_state(decider, state, params, kind, name, args) {
            StateAnswer::NotOurs => {
                // The server's own state: the retry may continue a request it asked input for.
                if let Some(out) = self.continuation(decider, state, id, kind, name, args) {
                    return Err(out);
                }
                Ok(Retry {
                    strip: false,
                    refused: None,
                })
            }
            StateAnswer::Used => Ok(Retry {
                strip: true,
                refused: None,
            }),
            StateAnswer::Refused(why) => Ok(Retry {
                strip: true,
                refused: Some(why),
            }),
        }
    }

    /// An `approve` decision: ask the human through the channel the client supports.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ask(
        &mut self,
        request: Value,
        id: Value,
        kind: Kind,
        tool: String,
        args: Value,
        decision: &Decision,
        started: Option<Instant>,
        policy_us: u64,
        stateless: bool,
    ) -> Vec<Output> {
        let channel = if stateless {
            Channel::InputRequired
        } else if self.client_elicitation {
            Channel::Elicitation {
                form_mode: self.protocol.as_deref() != Some("2025-06-18"),
            }
        } else {
            Channel::OutOfBand
        };
        let record = self.record(kind, &tool, decision, &args, policy_us);
        self.next += 1;
        let n = self.next;
        let ask = Ask {
            decision,
            kind,
            tool: &tool,
            args: &args,
            grant: &self.grant,
        };
        let Approval {
            approval_id,
            decision,
            asking,
        } = ask.over(channel, &self.options, Asker::Gateway, || n);
        let held = matches!(asking, Asking::Elicit(_));
        self.options
            .observers
            .approval(kind, ApprovalEvent::Asked, held);
        match asking {
            Asking::InputRequired {
                result,
                state,
                issued,
            } => {
                self.issued.insert(state, issued);
                let answer = json!({ "jsonrpc": "2.0", "id": id, "result": result });
                vec![Output::ToClient(answer), audit(record, started)]
            }
            Asking::Elicit(params) => {
                let own_id = format!("{OWN_ID_PREFIX}approval/{n}");
                let ask = json!({
                    "jsonrpc": "2.0",
                    "id": own_id,
                    "method": "elicitation/create",
                    "params": params,
                });
                self.held.insert(
                    key(&Value::String(own_id)),
                    Held {
                        request,
                        kind,
                        tool,
                        args,
                        approval_id,
                        decision,
                        deadline: Instant::now() + self.options.approval_timeout,
                        started,
                        policy_us,
                    },
                );
                vec![Output::ToClient(ask)]
            }
            Asking::OutOfBand(text) => {
                let answer = refused(&id, kind, &text, decision, stateless);
                vec![Output::ToClient(answer), audit(record, started)]
            }
        }
    }

    /// The client answered one of our elicitations.
    pub(super) fn elicitation_answer(
        &mut self,
        decider: &dyn Decider,
        held: Held,
        answer: &Map<String, Value>,
    ) -> Vec<Output> {
        let result = answer.get("result");
        let action = result
            .and_then(|r| r.get("action"))
            .and_then(Value::as_str)
            .unwrap_or("error");
        if !accepts(result) {
            self.options
                .observers
                .approval(held.kind, ApprovalEvent::Declined, true);
            let why =
                why_not_approved(action).unwrap_or("the client could not ask (elicitation failed)");
            let text = format!(
                "The call of `{}` was not approved: {why}. Nothing was done.",
                held.tool
            );
            return self.refuse_held(held, &text);
        }
        if let Err(e) = decider.record_approval(&held.approval_id) {
            self.options
                .observers
                .approval(held.kind, ApprovalEvent::Declined, true);
            let text = format!(
                "The call of `{}` was approved, but the approval could not be recorded: {e}",
                held.tool
            );
            return self.refuse_held(held, &text);
        }
        self.options
            .observers
            .approval(held.kind, ApprovalEvent::Granted, true);
        // Approved: decide again (the call still has to pass its limits).
        let id = held.request.get("id").cloned().unwrap_or(Value::Null);
        let mut outputs = self.examine(decider, held.request.clone(), id, held.started);
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
    pub(super) fn answer_request_state(
        &mut self,
        decider: &dyn Decider,
        state: &Value,
        params: &Value,
        kind: Kind,
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
        if !issued.is_for(&self.grant, kind, tool, args) {
            return StateAnswer::Used;
        }
        let response = params.get("inputResponses").and_then(|r| r.get("approve"));
        if accepts(response) {
            // A failure to record leaves the call unapproved: it is asked again.
            if decider.record_approval(&issued.approval_id).is_ok() {
                self.options
                    .observers
                    .approval(kind, ApprovalEvent::Granted, false);
            }
            return StateAnswer::Used;
        }
        self.options
            .observers
            .approval(kind, ApprovalEvent::Declined, false);
        StateAnswer::Refused(
            response
                .and_then(|r| r.get("action"))
                .and_then(Value::as_str)
                .and_then(why_not_approved)
                .unwrap_or("the retry carried no answer to the approval"),
        )
    }

    /// Answers a held call that was not approved (`text` says why), and audits it.
    pub(super) fn refuse_held(&mut self, held: Held, text: &str) -> Vec<Output> {
        let id = held.request.get("id").cloned().unwrap_or(Value::Null);
        let answer = refused(&id, held.kind, text, held.decision.clone(), false);
        let record = AuditRecord {
            grant: self.grant.id.clone(),
            session: self.grant.session.clone(),
            tool: held.tool.clone(),
            kind: held.kind,
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
}
