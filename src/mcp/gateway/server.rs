//! The gateway's server side: the server's answers (the calls they finish, the lists they
//! filter, the `input_required` rounds they continue), and the server going away.

use std::time::Instant;

use serde_json::Value;

use std::sync::Arc;

use super::{
    Continuation, Gateway, InFlight, MAX_CONTINUATIONS, MAX_LISTED, Output, Waiting, micros_since,
};
use crate::compile::Policy;
use crate::engine::Decider;
use crate::listing::List;
use crate::mcp::read::{AnswerParts, ServerMessage, key, parse_line};
use crate::mcp::wire::{GONE, INPUT_REQUIRED, INTERNAL_ERROR, STATELESS_VERSION, error_response};
use crate::subject::Kind;

impl Gateway {
    /// Handles one message (one line, without its newline) from the server.
    pub fn from_server(&mut self, decider: &dyn Decider, line: &[u8]) -> Vec<Output> {
        self.from_server_message(decider, ServerMessage::read(line))
    }

    /// Handles one message from the server, read with [`ServerMessage::read`] (which needs
    /// no gateway: a host that shares one between threads reads outside its lock).
    pub fn from_server_message(
        &mut self,
        decider: &dyn Decider,
        message: ServerMessage<'_>,
    ) -> Vec<Output> {
        match message.answer {
            Some(parts) => self.server_answer(decider, message.line, parts),
            None => vec![Output::Forward],
        }
    }

    /// A server's answer to one of the client's requests.
    fn server_answer(
        &mut self,
        decider: &dyn Decider,
        line: &[u8],
        parts: AnswerParts,
    ) -> Vec<Output> {
        match self.waiting.remove(&key(&parts.id)) {
            None | Some(Waiting::Other) => vec![Output::Forward],
            Some(Waiting::Initialize) => {
                if let Some(version) = parts.protocol {
                    self.protocol = Some(version);
                }
                match list_changed_advertised(line) {
                    Some(answer) => vec![Output::ToClient(answer)],
                    None => vec![Output::Forward],
                }
            }
            Some(Waiting::Call(flight))
                if parts.continues.is_some() && !parts.error && flight.binding.is_some() =>
            {
                self.continue_later(decider, *flight, parts.continues)
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
                    self.finish(decider, *flight, outcome, refund),
                    Output::Forward,
                ]
            }
            Some(Waiting::List(list)) => {
                let Ok(Value::Object(map)) = parse_line(line) else {
                    return vec![Output::Forward];
                };
                match map.get("result") {
                    Some(result) => {
                        if list == List::Tools {
                            self.options.catalog.learn_tools(result);
                        }
                        let policy = decider.policy();
                        self.remember(list, result, &policy);
                        let mut filtered = policy.filter_list(list, result);
                        self.private_list(&mut filtered);
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

    /// Remembers the names a list result page named (for [`Gateway::after_reload`]).
    fn remember(&mut self, list: List, result: &Value, policy: &Arc<Policy>) {
        let Some(Value::Array(items)) = result.get(list.field()) else {
            return;
        };
        let names = self.listed.entry(list).or_default();
        for name in items
            .iter()
            .filter_map(|item| item.get(list.name_field()).and_then(Value::as_str))
        {
            if names.len() >= MAX_LISTED {
                break;
            }
            if !names.contains(name) {
                names.insert(name.into());
            }
        }
        self.shown_under = Some(Arc::clone(policy));
    }

    /// After a policy reload (a host calls this on its timer, for every client that keeps a
    /// session): `notifications/…/list_changed` for each list whose filtered content the
    /// reload changed, for what the server listed to this client. Nothing when the policy is
    /// the one the lists were filtered by, or no list was asked for yet.
    ///
    /// ```
    /// use mcp_policy::mcp::{Gateway, GatewayOptions, Output};
    /// use mcp_policy::{Engine, Grant, Policy};
    /// let engine = Engine::new(Policy::from_json_str(r#"{"version":"1","default":"allow"}"#)?);
    /// let mut gw = Gateway::new(Grant::new("alice"), GatewayOptions::default());
    /// gw.from_client(&engine, br#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#);
    /// gw.from_server(&engine, br#"{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"greet"}]}}"#);
    /// assert!(gw.after_reload(&engine).is_empty());
    /// engine.reload(Policy::from_json_str(r#"{"version":"1","default":"deny"}"#)?);
    /// let out = gw.after_reload(&engine);
    /// let [Output::ToClient(note)] = out.as_slice() else { panic!("{out:?}") };
    /// assert_eq!(note["method"], "notifications/prompts/list_changed");
    /// assert!(gw.after_reload(&engine).is_empty());
    /// # Ok::<(), mcp_policy::LoadErrors>(())
    /// ```
    pub fn after_reload(&mut self, decider: &dyn Decider) -> Vec<Output> {
        let Some(before) = &self.shown_under else {
            return Vec::new();
        };
        let now = decider.policy();
        if Arc::ptr_eq(before, &now) || before.revision() == now.revision() {
            return Vec::new();
        }
        let mut methods: Vec<&'static str> = Vec::new();
        for (list, names) in &self.listed {
            let changed = names
                .iter()
                .any(|name| before.keeps_name(*list, name) != now.keeps_name(*list, name));
            let method = list.changed_notification();
            if changed && !methods.contains(&method) {
                methods.push(method);
            }
        }
        methods.sort_unstable();
        self.shown_under = Some(now);
        methods
            .into_iter()
            .map(|method| Output::ToClient(serde_json::json!({"jsonrpc": "2.0", "method": method})))
            .collect()
    }

    /// A filtered list depends on the caller and on the policy: a 2026-07-28 result (one
    /// that carries `ttlMs` or `cacheScope`, or any on a 2026-07-28 session) goes out with
    /// `cacheScope: "private"` and its `ttlMs` capped at [`GatewayOptions::list_ttl_max`]
    /// (so that a cached list never outlives a policy reload by more than that).
    ///
    /// [`GatewayOptions::list_ttl_max`]: crate::mcp::GatewayOptions::list_ttl_max
    fn private_list(&self, result: &mut Value) {
        let Value::Object(map) = result else {
            return;
        };
        let era = map.contains_key("ttlMs")
            || map.contains_key("cacheScope")
            || self.protocol.as_deref() == Some(STATELESS_VERSION);
        if !era {
            return;
        }
        map.insert("cacheScope".into(), "private".into());
        let cap = u64::try_from(self.options.list_ttl_max.as_millis()).unwrap_or(u64::MAX);
        let ttl = map
            .get("ttlMs")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(cap);
        map.insert("ttlMs".into(), ttl.into());
    }

    /// The server exited or closed: every request still waiting gets a JSON-RPC error, the
    /// charges of calls that never got an answer are refunded, and held calls are dropped.
    /// From then on, no request is forwarded: each is answered with the same error, and a
    /// call decided allowed is refunded first (see [`Gateway::is_gone`]).
    pub fn upstream_gone(&mut self, decider: &dyn Decider) -> Vec<Output> {
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
                out.push(self.finish(decider, *flight, "gone", true));
            }
            out.push(Output::ToClient(error_response(&id, INTERNAL_ERROR, GONE)));
        }
        // Calls the server asked input for never finished: refunded too.
        let mut continued: Vec<(String, Continuation)> = self.continued.drain().collect();
        continued.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, continuation) in continued {
            out.push(self.finish(decider, continuation.flight, "gone", true));
        }
        out
    }

    /// The server answered a 2026-07-28 call `input_required` with its own `requestState`:
    /// that round is audited (`upstream: "input_required"`, charges kept), and the call waits
    /// for the client's retry with that state, which continues it ([`Continuation`]).
    fn continue_later(
        &mut self,
        decider: &dyn Decider,
        flight: InFlight,
        state: Option<String>,
    ) -> Vec<Output> {
        let mut round = flight.record.clone();
        round.upstream = Some(INPUT_REQUIRED);
        round.total_us = micros_since(flight.started);
        self.options.observers.finished(
            round.kind,
            INPUT_REQUIRED,
            false,
            std::time::Duration::from_micros(round.total_us),
            flight.traced.as_deref(),
        );
        if let Some(state) = state
            && (self.continued.len() < MAX_CONTINUATIONS || self.continued.contains_key(&state))
        {
            let continuation = Continuation {
                flight,
                revision: decider.policy().revision().to_owned(),
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
    pub(super) fn continuation(
        &mut self,
        decider: &dyn Decider,
        state: &Value,
        id: &Value,
        kind: Kind,
        tool: &str,
        args: &Value,
    ) -> Option<Vec<Output>> {
        let continuation = self.continued.remove(state.as_str()?)?;
        let binding = continuation.flight.binding?;
        if continuation.deadline <= Instant::now()
            || binding != self.binding(kind, tool, args)
            || continuation.revision != decider.policy().revision()
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
}

/// The server's `initialize` answer with `listChanged: true` on each of its `tools`,
/// `resources` and `prompts` capabilities that lacks it (the gateway sends that notification
/// itself after a policy reload changes a list); `None` when nothing needs adding.
fn list_changed_advertised(line: &[u8]) -> Option<Value> {
    let Ok(mut answer) = parse_line(line) else {
        return None;
    };
    let capabilities = answer
        .get_mut("result")
        .and_then(|r| r.get_mut("capabilities"))
        .and_then(Value::as_object_mut)?;
    let mut changed = false;
    for name in ["tools", "resources", "prompts"] {
        if let Some(Value::Object(capability)) = capabilities.get_mut(name)
            && capability.get("listChanged") != Some(&Value::Bool(true))
        {
            capability.insert("listChanged".into(), Value::Bool(true));
            changed = true;
        }
    }
    changed.then_some(answer)
}
