//! The audit record of one `tools/call`, as the gateway hands it to its host.

use serde_json::Value;

use crate::subject::Kind;

/// One audited `tools/call`, `resources/read`, `resources/subscribe` or `prompts/get` (spec:
/// the audit log). The host adds `ts`, and hashes
/// [`AuditRecord::args_canonical`] into `args_sha256`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// The grant id.
    pub grant: String,
    /// The grant's session.
    pub session: Option<String>,
    /// The called tool, the resource's URI in normal form, or the prompt's name.
    pub tool: String,
    /// What `tool` names: a tool, a resource (its URI in normal form) or a prompt; the
    /// record's field is named after it (`tool`, `resource`, `prompt`).
    pub kind: Kind,
    /// The decision in the `mcp-policy eval` output format (no reservation label).
    pub decision: Value,
    /// The arguments as canonical JSON (keys sorted, no whitespace).
    pub args_canonical: String,
    /// The raw arguments, only when the operator asked for them
    /// ([`GatewayOptions::audit_args`](super::GatewayOptions::audit_args)).
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
    /// The decision's fields a record carries, in the audit log's order (those the decision
    /// has).
    pub const DECISION_FIELDS: [&'static str; 7] = [
        "decision",
        "rule",
        "message",
        "counter",
        "retry_after_ms",
        "remaining",
        "approval_id",
    ];

    /// The record's fields in the audit log's order, without `ts` and `args_sha256` (the
    /// host adds them).
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let mut out: Vec<(&'static str, Value)> = vec![
            ("grant", self.grant.as_str().into()),
            (
                "session",
                self.session.as_deref().map_or(Value::Null, Value::from),
            ),
            (self.kind.as_str(), self.tool.as_str().into()),
        ];
        if let Value::Object(map) = &self.decision {
            for key in Self::DECISION_FIELDS {
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
