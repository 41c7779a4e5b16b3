//! The gateway's reading of the requests that reach resources and prompts: `resources/read`
//! and `resources/subscribe` (decided per URI), `subscriptions/listen` (2026-07-28: every
//! URI it subscribes to is decided), `prompts/get` (decided per name and arguments) and
//! `completion/complete` (only for a prompt or resource the caller could use). Each is read
//! into a [`Call`] and decided like a `tools/call`.

use std::time::Instant;

use serde_json::{Map, Value};

use super::client::{Call, Deciding, Request};
use super::{Gateway, LISTEN, Output, Waiting};
use crate::decision::Verdict;
use crate::engine::Decider;
use crate::mcp::read::key;
use crate::mcp::wire::{INVALID_PARAMS, error_response, refusal_of, unknown};
use crate::subject::{Kind, Subject};
use crate::uri::Uri;

impl Gateway {
    /// Any request the gateway decides, read whole (a call held for approval comes back
    /// here once approved).
    pub(super) fn examine(
        &mut self,
        decider: &dyn Decider,
        message: Value,
        id: Value,
        started: Option<Instant>,
    ) -> Vec<Output> {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if method == "tools/call" {
            self.call(decider, message, id, started)
        } else {
            self.request(decider, message, &method, id, started)
        }
    }

    /// A resource, prompt or completion request from the client, read whole.
    pub(super) fn request(
        &mut self,
        decider: &dyn Decider,
        mut message: Value,
        method: &str,
        id: Value,
        started: Option<Instant>,
    ) -> Vec<Output> {
        let params = message.get("params");
        let stateless = self.read_meta(params.and_then(|p| p.get("_meta")));
        let invalid =
            |text: String| vec![Output::ToClient(error_response(&id, INVALID_PARAMS, &text))];
        let (kind, name) = match method {
            "completion/complete" => return self.completion(decider, params, id),
            LISTEN => return self.listen(decider, params, id),
            "prompts/get" => {
                let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
                    return invalid("prompts/get needs `params.name`, a string".into());
                };
                if !matches!(
                    params.and_then(|p| p.get("arguments")),
                    None | Some(Value::Null | Value::Object(_))
                ) {
                    return invalid("prompts/get `params.arguments` must be an object".into());
                }
                (Kind::Prompt, name.to_owned())
            }
            _ => {
                let Some(uri) = params.and_then(|p| p.get("uri")).and_then(Value::as_str) else {
                    return invalid(format!("{method} needs `params.uri`, a string"));
                };
                (Kind::Resource, uri.to_owned())
            }
        };
        let uri = match kind {
            Kind::Resource => match Uri::parse(&name) {
                Ok(uri) => Some(uri),
                Err(error) => {
                    return invalid(format!(
                        "{method}: `params.uri` cannot be judged by the policy: {error}"
                    ));
                }
            },
            _ => None,
        };
        let judged: &str = uri.as_ref().map_or(name.as_str(), Uri::as_str);
        let empty = Value::Object(Map::new());
        // An approval answered in a retry (2026-07-28), as for a tool call.
        let retry = match self.retry(decider, params, &id, kind, judged) {
            Ok(retry) => retry,
            Err(out) => return out,
        };
        let (stripped, refused) = (retry.strip, retry.refused);
        if stripped {
            super::asking::strip_approval_fields(&mut message);
        }
        let args = match kind {
            Kind::Prompt => message
                .get("params")
                .and_then(|p| p.get("arguments"))
                .filter(|a| a.is_object())
                .unwrap_or(&empty),
            _ => &empty,
        };
        let request = if stripped {
            Request::Changed(&message)
        } else {
            Request::Parsed(&message)
        };
        let call = Call {
            id,
            kind,
            tool: judged,
            uri: uri.as_ref(),
            args,
            stateless,
            refused,
        };
        self.decide(Deciding::Ask(decider), request, call, started)
    }

    /// `completion/complete`: forwarded only when its `ref` names a prompt or a resource
    /// (or template) the caller could use; otherwise answered as for one that does not
    /// exist.
    fn completion(
        &mut self,
        decider: &dyn Decider,
        params: Option<&Value>,
        id: Value,
    ) -> Vec<Output> {
        let reference = params.and_then(|p| p.get("ref"));
        let field = |name: &str| reference.and_then(|r| r.get(name)).and_then(Value::as_str);
        let policy = decider.policy();
        let (kind, name, usable) = match field("type") {
            Some("ref/prompt") if field("name").is_some() => {
                let name = field("name").unwrap_or_default();
                (
                    Kind::Prompt,
                    name,
                    policy.can_ever_allow_of(Kind::Prompt, name),
                )
            }
            Some("ref/resource") if field("uri").is_some() => {
                let uri = field("uri").unwrap_or_default();
                let usable = if uri.contains('{') {
                    policy.template_could_allow(uri)
                } else {
                    policy.can_ever_read(uri)
                };
                (Kind::Resource, uri, usable)
            }
            _ => {
                let text = "completion/complete needs `params.ref`: {\"type\": \"ref/prompt\", \"name\"} or {\"type\": \"ref/resource\", \"uri\"}";
                return vec![Output::ToClient(error_response(&id, INVALID_PARAMS, text))];
            }
        };
        if !usable {
            return vec![Output::ToClient(unknown(&id, kind, name))];
        }
        self.waiting.insert(key(&id), Waiting::Other);
        vec![Output::Forward]
    }

    /// `subscriptions/listen` (2026-07-28): every resource URI it subscribes to is decided;
    /// the first one not allowed answers the whole request (the charges of those decided
    /// before it are refunded), else it is forwarded.
    fn listen(&mut self, decider: &dyn Decider, params: Option<&Value>, id: Value) -> Vec<Output> {
        let uris = params
            .and_then(|p| p.get("notifications"))
            .and_then(|n| n.get("resourceSubscriptions"));
        let uris: &[Value] = match uris {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                let text = "subscriptions/listen `notifications.resourceSubscriptions` must be an array of URIs";
                return vec![Output::ToClient(error_response(&id, INVALID_PARAMS, text))];
            }
        };
        let empty = Value::Object(Map::new());
        let mut admitted = Vec::new();
        for item in uris {
            let parsed = item.as_str().map(Uri::parse);
            let uri = match parsed {
                Some(Ok(uri)) => uri,
                Some(Err(error)) => {
                    let text = format!(
                        "subscriptions/listen: a subscribed URI cannot be judged by the policy: {error}"
                    );
                    return self.refund_all(
                        decider,
                        admitted,
                        error_response(&id, INVALID_PARAMS, &text),
                    );
                }
                None => {
                    let text =
                        "subscriptions/listen: every subscribed resource must be a URI string";
                    return self.refund_all(
                        decider,
                        admitted,
                        error_response(&id, INVALID_PARAMS, text),
                    );
                }
            };
            let t0 = self.clock();
            let decision = decider.decide(Subject::Resource(&uri), &empty, &self.grant);
            let took = t0.map_or(std::time::Duration::ZERO, |t| t.elapsed());
            self.options
                .observers
                .decided(Kind::Resource, uri.as_str(), &decision, took);
            match decision.verdict {
                Verdict::Allow => admitted.extend(decision.reservation),
                _ if decision.hidden => {
                    let answer = unknown(&id, Kind::Resource, uri.as_str());
                    return self.refund_all(decider, admitted, answer);
                }
                _ => {
                    let answer = refusal_of(&id, Kind::Resource, &decision, true);
                    return self.refund_all(decider, admitted, answer);
                }
            }
        }
        self.waiting.insert(key(&id), Waiting::Other);
        vec![Output::Forward]
    }

    /// Refunds the charges of URIs admitted before one was refused, and answers.
    fn refund_all(
        &mut self,
        decider: &dyn Decider,
        admitted: Vec<crate::store::Reservation>,
        answer: Value,
    ) -> Vec<Output> {
        for reservation in admitted {
            let _ = decider.release(reservation);
        }
        vec![Output::ToClient(answer)]
    }
}
