//! Asking a human about a call: the one builder of approval requests (the prompt, the
//! elicitation form, the `input_required` result, the out-of-band notice) for the
//! [`Gateway`](super::Gateway) and for typed hosts ([`Approvals`](super::typed::Approvals)),
//! and what a client's answer to one means.

use std::time::Instant;

use serde_json::{Value, json};

use super::options::GatewayOptions;
use super::wire::{DECISION_META, INPUT_REQUIRED, OWN_ID_PREFIX, STATELESS_VERSION};
use crate::approval::canonical_json;
use crate::decision::Decision;
use crate::grant::Grant;
use crate::subject::Kind;

/// How a human can be asked about a call, given what the client supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Send `elicitation/create` to the client and wait (2025-06-18 and 2025-11-25 clients
    /// that declared the capability); `form_mode` adds `"mode": "form"` (2025-11-25).
    Elicitation {
        /// Whether the request names its mode (every version after 2025-06-18).
        form_mode: bool,
    },
    /// Answer with an `input_required` result (2026-07-28 clients).
    InputRequired,
    /// Answer with an `isError` result naming the approval id.
    OutOfBand,
}

impl Channel {
    /// The channel for a client speaking `protocol` that did (or did not) declare the
    /// `elicitation` capability.
    pub fn choose(protocol: Option<&str>, client_elicitation: bool) -> Channel {
        match protocol {
            Some(STATELESS_VERSION) => Channel::InputRequired,
            _ if client_elicitation => Channel::Elicitation {
                form_mode: protocol != Some("2025-06-18"),
            },
            _ => Channel::OutOfBand,
        }
    }
}

/// Who asks: the out-of-band notice says how approvals reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asker {
    /// A gateway in front of a server (`mcp-policy proxy` and its HTTP mode).
    Gateway,
    /// A server that enforces the policy itself (a typed host, such as an SDK adapter).
    Server,
}

impl Asker {
    /// The notice's end when no `approve_command` is known (approvals kept in memory).
    fn in_memory(self) -> &'static str {
        match self {
            Asker::Gateway => {
                " This gateway keeps approvals in memory: they need a client that supports \
                  elicitation, or a shared store (`mcp-policy proxy --store redis://…`) so that \
                  an operator can run `mcp-policy approve ID --store URL`."
            }
            Asker::Server => {
                " This server keeps approvals in memory: they need a client that \
                  supports elicitation, or a shared store so that an operator can run \
                  `mcp-policy approve ID --store URL`."
            }
        }
    }
}

/// An issued `requestState` (2026-07-28): which call of which grant it may approve.
#[derive(Debug)]
pub(crate) struct Issued {
    grant: String,
    kind: Kind,
    tool: String,
    args_canonical: String,
    pub(crate) approval_id: String,
    pub(crate) deadline: Instant,
}

impl Issued {
    /// Whether it was issued for this very call (the tool and the canonical arguments) of
    /// this grant.
    pub(crate) fn is_for(&self, grant: &Grant, kind: Kind, tool: &str, args: &Value) -> bool {
        self.grant == grant.id
            && self.kind == kind
            && self.tool == tool
            && self.args_canonical == canonical_json(args)
    }
}

/// How the host asks.
#[derive(Debug)]
pub(crate) enum Asking {
    /// Send `elicitation/create` with these params to the client, and hold the call for its
    /// answer.
    Elicit(Value),
    /// Answer the call with this `input_required` result (the response's `result` member),
    /// and keep `issued` under `state` for the retry that answers it.
    InputRequired {
        result: Value,
        state: String,
        issued: Issued,
    },
    /// Answer the call with an `isError` result of this text (an operator approves it).
    OutOfBand(String),
}

/// An `approve` decision about to be asked: built the same for every host.
#[derive(Debug)]
pub(crate) struct Approval {
    /// The approval to record when the human approves.
    pub(crate) approval_id: String,
    /// The decision, in the form the answers carry it.
    pub(crate) decision: Value,
    pub(crate) asking: Asking,
}

/// One call to ask about.
pub(crate) struct Ask<'a> {
    pub(crate) decision: &'a Decision,
    /// What is asked for: a tool call, a resource read, a prompt.
    pub(crate) kind: Kind,
    /// The tool's or prompt's name, or the resource's URI in normal form.
    pub(crate) tool: &'a str,
    pub(crate) args: &'a Value,
    pub(crate) grant: &'a Grant,
}

impl Ask<'_> {
    /// How to ask about this call over `channel`. `next` numbers a `requestState` (called for
    /// [`Channel::InputRequired`] only), which expires after `options.approval_timeout`.
    pub(crate) fn over(
        self,
        channel: Channel,
        options: &GatewayOptions,
        asker: Asker,
        next: impl FnOnce() -> u64,
    ) -> Approval {
        let Ask {
            decision,
            kind,
            tool,
            args,
            grant,
        } = self;
        let approval_id = decision.approval_id.clone().unwrap_or_default();
        let reason = decision
            .message
            .as_deref()
            .unwrap_or("this call needs approval");
        let decision_json = decision.to_json(None);
        let asking = match channel {
            Channel::Elicitation { form_mode } => {
                let prompt = approval_prompt(kind, tool, grant, args, reason, &approval_id);
                Asking::Elicit(elicitation_params(&prompt, form_mode))
            }
            Channel::InputRequired => {
                let prompt = approval_prompt(kind, tool, grant, args, reason, &approval_id);
                let state = format!("{OWN_ID_PREFIX}state/{}/{approval_id}", next());
                let issued = Issued {
                    grant: grant.id.clone(),
                    kind,
                    tool: tool.to_owned(),
                    args_canonical: canonical_json(args),
                    approval_id: approval_id.clone(),
                    deadline: Instant::now() + options.approval_timeout,
                };
                let result = json!({
                    "resultType": INPUT_REQUIRED,
                    "inputRequests": {
                        "approve": {
                            "method": "elicitation/create",
                            "params": elicitation_params(&prompt, false),
                        }
                    },
                    "requestState": state,
                    "_meta": { DECISION_META: decision_json },
                });
                Asking::InputRequired {
                    result,
                    state,
                    issued,
                }
            }
            Channel::OutOfBand => {
                let how = match (&options.approve_command, approval_id.is_empty()) {
                    (Some(command), false) => format!(
                        " An operator approves it with `{}`; then retry the identical call (it goes through once).",
                        command.replace("ID", &approval_id)
                    ),
                    _ => asker.in_memory().to_owned(),
                };
                Asking::OutOfBand(format!(
                    "Approval required: {reason} (approval id {approval_id}).{how}"
                ))
            }
        };
        Approval {
            approval_id,
            decision: decision_json,
            asking,
        }
    }
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

/// Whether an elicitation answer accepts with `approve: true`.
pub(crate) fn accepts(response: Option<&Value>) -> bool {
    response
        .and_then(|r| r.get("action"))
        .and_then(Value::as_str)
        == Some("accept")
        && response
            .and_then(|r| r.get("content"))
            .and_then(|c| c.get("approve"))
            .and_then(Value::as_bool)
            == Some(true)
}

/// What the human is shown: the tool, the caller, the arguments (cut at 1,500 bytes), why,
/// and the approval id.
fn approval_prompt(
    kind: Kind,
    tool: &str,
    grant: &Grant,
    args: &Value,
    reason: &str,
    id: &str,
) -> String {
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
    let (what, label) = match kind {
        Kind::Tool => ("this tool call", "Tool"),
        Kind::Resource => ("this resource read", "Resource"),
        Kind::Prompt => ("this prompt", "Prompt"),
    };
    format!(
        "Approve {what}?\n{label}: {tool}\nCaller: {}\nArguments: {summary}\nWhy approval is needed: {reason}\nApproval id: {id}",
        grant.id
    )
}

/// The `elicitation/create` params that ask the human to approve with one boolean
/// (`form_mode`: the request names its mode, as versions after 2025-06-18 expect).
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
