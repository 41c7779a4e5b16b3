//! The same decisions for hosts that receive calls already parsed (an SDK's typed request:
//! a tool name and an arguments map) instead of JSON-RPC lines.
//!
//! [`Gateway`](super::Gateway) reads and writes messages; an adapter inside an MCP SDK
//! (such as `mcp-policy-rmcp`) gets the call as values and answers with values. It evaluates
//! the call itself (synchronously or asynchronously), then asks [`Approvals::answer`] what
//! the client gets: the answers are built by the same functions as the gateway's
//! ([`refusal`], [`tool_error`], and the one builder of approval requests), so a decision
//! looks the same to a client wherever it is enforced.
//!
//! ```
//! use mcp_policy::mcp::typed::{Approvals, CallAnswer, Channel};
//! use mcp_policy::mcp::GatewayOptions;
//! use mcp_policy::{Engine, Grant, Policy};
//!
//! let policy = Policy::from_json_str(r#"{"version":"1","default":"deny","hide":["drop_db"],
//!   "tools":{"read":{},"stop_scan":{"action":"deny","reason":"no"}}}"#)?;
//! let engine = Engine::new(policy);
//! let approvals = Approvals::new(GatewayOptions::default());
//! let (grant, args) = (Grant::new("alice"), serde_json::json!({}));
//! let answer = |tool: &str| {
//!     let decision = engine.evaluate(tool, &args, &grant);
//!     approvals.answer(&decision, tool, &args, &grant, Channel::OutOfBand, false)
//! };
//! assert!(matches!(answer("read"), CallAnswer::Forward));
//! let CallAnswer::Result(result) = answer("stop_scan") else { panic!() };
//! assert_eq!(result["isError"], true);
//! let CallAnswer::Error { code, message } = answer("drop_db") else { panic!() };
//! assert_eq!((code, message.as_str()), (-32602, "Unknown tool: drop_db"));
//! # Ok::<(), mcp_policy::LoadErrors>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::subject::Kind;
use parking_lot::Mutex;
use serde_json::Value;

pub use super::approvals::Channel;
use super::approvals::{Approval, Ask, Asker, Asking, Issued, accepts, why_not_approved};
use super::options::GatewayOptions;
use super::wire::{INVALID_PARAMS, refusal, tool_error};
use crate::decision::{Decision, Verdict};
use crate::grant::Grant;

/// What the client gets for a decided call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAnswer {
    /// Allowed: let the server run the call.
    Forward,
    /// Answer with this `tools/call` result (the `result` member of the response): a
    /// refusal, an out-of-band approval notice, or an `input_required` result.
    Result(Value),
    /// Answer with this JSON-RPC error (a hidden tool is unknown).
    Error {
        /// The JSON-RPC error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// Ask the human: send `elicitation/create` with these params, then hand the client's
    /// answer to [`Approvals::elicited`].
    Elicit {
        /// The `elicitation/create` params.
        params: Value,
        /// The approval to record when the human approves.
        approval_id: String,
        /// The decision (for the answer when the human does not approve).
        decision: Value,
    },
}

/// What a retry's `requestState` did: see [`Approvals::redeem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Approved: record this approval id, then decide again.
    Approved(String),
    /// The human did not approve this call; why.
    Refused(&'static str),
    /// Not a valid state for this call: nothing approved.
    Nothing,
}

/// The approvals in progress for typed hosts: the `requestState`s issued to 2026-07-28
/// clients (shared by every connection of a server, since such clients may retry on another
/// one) and the options that shape the answers.
#[derive(Debug)]
pub struct Approvals {
    options: GatewayOptions,
    issued: Mutex<HashMap<String, Issued>>,
    next: AtomicU64,
}

impl Approvals {
    /// Approvals shaped by `options` (`approval_timeout`, `approve_command`).
    pub fn new(options: GatewayOptions) -> Approvals {
        Approvals {
            options,
            issued: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }

    /// The options.
    pub fn options(&self) -> &GatewayOptions {
        &self.options
    }

    /// A retry that answers an `input_required` approval. [`Redeemed::Approved`] (with the
    /// approval id to record) when `state` was issued here, is unexpired, was issued for this
    /// very call of this grant, and `responses` (the call's `inputResponses`) accept it;
    /// [`Redeemed::Refused`] when they answer it otherwise (the call is then answered as not
    /// approved, see [`Approvals::refused`]). The state is used up either way; anything else
    /// is [`Redeemed::Nothing`]: it approves nothing and the call is asked about again.
    ///
    /// ```
    /// use mcp_policy::Grant;
    /// use mcp_policy::mcp::typed::{Approvals, Redeemed};
    /// use mcp_policy::mcp::GatewayOptions;
    /// use serde_json::json;
    ///
    /// let approvals = Approvals::new(GatewayOptions::default());
    /// let forged = approvals.redeem("io.mcp-policy/state/1/ap-x", None, "pay", &json!({}), &Grant::new("a"));
    /// assert_eq!(forged, Redeemed::Nothing);
    /// ```
    pub fn redeem(
        &self,
        state: &str,
        responses: Option<&Value>,
        tool: &str,
        args: &Value,
        grant: &Grant,
    ) -> Redeemed {
        self.redeem_of(Kind::Tool, state, responses, tool, args, grant)
    }

    /// [`redeem`](Self::redeem) for a request of `kind` (a resource read, a prompt): a state
    /// issued for one kind never answers another, whatever the names.
    ///
    /// ```
    /// use mcp_policy::Grant;
    /// use mcp_policy::mcp::typed::{Approvals, Redeemed};
    /// use mcp_policy::mcp::GatewayOptions;
    /// use mcp_policy::subject::Kind;
    /// let approvals = Approvals::new(GatewayOptions::default());
    /// let r = approvals.redeem_of(Kind::Prompt, "io.mcp-policy/state/1/ap-x", None, "greet",
    ///     &serde_json::json!({}), &Grant::new("a"));
    /// assert_eq!(r, Redeemed::Nothing);
    /// ```
    pub fn redeem_of(
        &self,
        kind: Kind,
        state: &str,
        responses: Option<&Value>,
        name: &str,
        args: &Value,
        grant: &Grant,
    ) -> Redeemed {
        let Some(issued) = self.issued.lock().remove(state) else {
            return Redeemed::Nothing;
        };
        if issued.deadline <= Instant::now() || !issued.is_for(grant, kind, name, args) {
            return Redeemed::Nothing;
        }
        let response = responses.and_then(|r| r.get("approve"));
        if accepts(response) {
            return Redeemed::Approved(issued.approval_id);
        }
        Redeemed::Refused(
            response
                .and_then(|r| r.get("action"))
                .and_then(Value::as_str)
                .and_then(why_not_approved)
                .unwrap_or("the retry carried no answer to the approval"),
        )
    }

    /// The result of a call whose `input_required` approval the human refused (`why`, from
    /// [`Redeemed::Refused`]); `decision` is the call's (still `approve`) decision.
    pub fn refused(tool: &str, why: &str, decision: Value, stateless: bool) -> Value {
        let text = format!("The call of `{tool}` was not approved: {why}. Nothing was done.");
        result_of(tool_error(&Value::Null, &text, decision, stateless))
    }

    /// What the client gets for `decision` on this call. `stateless`: the request is a
    /// 2026-07-28 one (its results carry `resultType`).
    pub fn answer(
        &self,
        decision: &Decision,
        tool: &str,
        args: &Value,
        grant: &Grant,
        channel: Channel,
        stateless: bool,
    ) -> CallAnswer {
        self.answer_of(Kind::Tool, decision, tool, args, grant, channel, stateless)
    }

    /// [`answer`](Self::answer) for a request of `kind`: the approval asked names it (`Approve
    /// this resource read?` / `Resource: URI`, `Approve this prompt?` / `Prompt: NAME`), and
    /// the state issued for it answers only a request of that kind. (A resource's or prompt's
    /// refusal is a JSON-RPC error, [`refusal_of`](crate::mcp::refusal_of), which the host
    /// writes itself; this answers its approvals.)
    #[allow(clippy::too_many_arguments)]
    pub fn answer_of(
        &self,
        kind: Kind,
        decision: &Decision,
        tool: &str,
        args: &Value,
        grant: &Grant,
        channel: Channel,
        stateless: bool,
    ) -> CallAnswer {
        match decision.verdict {
            Verdict::Allow => CallAnswer::Forward,
            Verdict::Deny if decision.hidden => CallAnswer::Error {
                code: INVALID_PARAMS,
                message: format!("Unknown tool: {tool}"),
            },
            Verdict::Deny | Verdict::Limit => {
                CallAnswer::Result(result_of(refusal(&Value::Null, decision, stateless)))
            }
            Verdict::Approve => self.ask(kind, decision, tool, args, grant, channel, stateless),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ask(
        &self,
        kind: Kind,
        decision: &Decision,
        tool: &str,
        args: &Value,
        grant: &Grant,
        channel: Channel,
        stateless: bool,
    ) -> CallAnswer {
        let ask = Ask {
            kind,
            decision,
            tool,
            args,
            grant,
        };
        let next = || self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let Approval {
            approval_id,
            decision,
            asking,
        } = ask.over(channel, &self.options, Asker::Server, next);
        match asking {
            Asking::Elicit(params) => CallAnswer::Elicit {
                params,
                approval_id,
                decision,
            },
            Asking::InputRequired {
                result,
                state,
                issued,
            } => {
                let now = Instant::now();
                let mut all = self.issued.lock();
                all.retain(|_, i| i.deadline > now);
                all.insert(state, issued);
                CallAnswer::Result(result)
            }
            Asking::OutOfBand(text) => CallAnswer::Result(result_of(tool_error(
                &Value::Null,
                &text,
                decision,
                stateless,
            ))),
        }
    }

    /// The client answered an elicitation (`result`: its `elicitation/create` result, or
    /// `None` when the request failed): `Ok` when the human approved, else the `isError`
    /// result the client gets (nothing was done).
    pub fn elicited(tool: &str, result: Option<&Value>, decision: Value) -> Result<(), Value> {
        let action = result
            .and_then(|r| r.get("action"))
            .and_then(Value::as_str)
            .unwrap_or("error");
        if accepts(result) {
            return Ok(());
        }
        let why =
            why_not_approved(action).unwrap_or("the client could not ask (elicitation failed)");
        Err(Approvals::refused(tool, why, decision, false))
    }

    /// The `isError` result of a held call that was not approved (`text` says why).
    pub fn not_approved(text: &str, decision: Value) -> Value {
        result_of(tool_error(&Value::Null, text, decision, false))
    }
}

/// The `result` member of a response built by the gateway's builders.
fn result_of(mut response: Value) -> Value {
    response
        .as_object_mut()
        .and_then(|m| m.remove("result"))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Engine, Policy};

    fn engine() -> Engine {
        let policy = Policy::from_json_str(
            r#"{"version":"1","default":"deny","tools":{"pay":{"action":"require_approval","reason":"money"},
            "stop":{"action":"deny","reason":"no"}}}"#,
        )
        .unwrap();
        Engine::new(policy)
    }

    #[test]
    fn refusals_match_the_gateway() {
        let e = engine();
        let (g, args) = (Grant::new("a"), json!({}));
        let d = e.evaluate("stop", &args, &g);
        let a = Approvals::new(GatewayOptions::default());
        let CallAnswer::Result(r) = a.answer(&d, "stop", &args, &g, Channel::OutOfBand, true)
        else {
            panic!()
        };
        assert_eq!(r, refusal(&json!(1), &d, true)["result"]);
    }

    #[test]
    fn input_required_round_trip() {
        let e = engine();
        let (g, args) = (Grant::new("a"), json!({"n": 1}));
        let a = Approvals::new(GatewayOptions::default());
        let d = e.evaluate("pay", &args, &g);
        let CallAnswer::Result(r) = a.answer(&d, "pay", &args, &g, Channel::InputRequired, true)
        else {
            panic!()
        };
        assert_eq!(r["resultType"], "input_required");
        let state = r["requestState"].as_str().unwrap().to_owned();
        let yes = json!({"approve": {"action": "accept", "content": {"approve": true}}});
        // Another grant cannot use it, and the state is then spent.
        assert_eq!(
            a.redeem(&state, Some(&yes), "pay", &args, &Grant::new("b")),
            Redeemed::Nothing
        );
        let CallAnswer::Result(r) = a.answer(&d, "pay", &args, &g, Channel::InputRequired, true)
        else {
            panic!()
        };
        let state = r["requestState"].as_str().unwrap().to_owned();
        assert_eq!(
            a.redeem(&state, Some(&yes), "other", &args, &g),
            Redeemed::Nothing
        );
        let CallAnswer::Result(r) = a.answer(&d, "pay", &args, &g, Channel::InputRequired, true)
        else {
            panic!()
        };
        let state = r["requestState"].as_str().unwrap().to_owned();
        let Redeemed::Approved(id) = a.redeem(&state, Some(&yes), "pay", &args, &g) else {
            panic!()
        };
        e.record_approval(&id).unwrap();
        assert_eq!(e.evaluate("pay", &args, &g).verdict, Verdict::Allow);
        assert_eq!(
            a.redeem(&state, Some(&yes), "pay", &args, &g),
            Redeemed::Nothing
        );
        // Declined: refused, once.
        let CallAnswer::Result(r) = a.answer(&d, "pay", &args, &g, Channel::InputRequired, true)
        else {
            panic!()
        };
        let state = r["requestState"].as_str().unwrap().to_owned();
        let no = json!({"approve": {"action": "decline"}});
        assert_eq!(
            a.redeem(&state, Some(&no), "pay", &args, &g),
            Redeemed::Refused("the user declined")
        );
        let r = Approvals::refused("pay", "the user declined", json!({}), true);
        assert_eq!(r["isError"], true);
        assert_eq!(r["resultType"], "complete");
    }

    #[test]
    fn channels() {
        assert_eq!(
            Channel::choose(Some("2026-07-28"), true),
            Channel::InputRequired
        );
        assert_eq!(
            Channel::choose(Some("2025-06-18"), true),
            Channel::Elicitation { form_mode: false }
        );
        assert_eq!(
            Channel::choose(Some("2025-11-25"), false),
            Channel::OutOfBand
        );
        let no = json!({"action": "decline"});
        assert!(Approvals::elicited("t", Some(&no), json!({})).is_err());
        let yes = json!({"action": "accept", "content": {"approve": true}});
        assert!(Approvals::elicited("t", Some(&yes), json!({})).is_ok());
    }
}
