//! The answer for one call.

use crate::text::Text;
use std::fmt;

use serde_json::{Map, Value};

use crate::store::Reservation;

/// The four possible answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The call may go through.
    Allow,
    /// The call is refused.
    Deny,
    /// The call is refused for now by a rate limit; see `retry_after_ms`.
    Limit,
    /// A human must approve this exact call first; see `approval_id`.
    Approve,
}

impl Verdict {
    /// `allow`, `deny`, `limit` or `approve`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Limit => "limit",
            Verdict::Approve => "approve",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision: the verdict, the rule (a JSON Pointer into the policy) that decided it, and
/// what the host needs to act on it.
///
/// ```
/// use mcp_policy::{Engine, Grant, Policy, Verdict};
/// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny","tools":{"ping":{}}}"#).unwrap();
/// let engine = Engine::new(policy);
/// let d = engine.evaluate("ping", &serde_json::json!({}), &Grant::new("alice"));
/// assert_eq!(d.verdict, Verdict::Allow);
/// assert_eq!(&*d.rule, "/tools/ping");
/// let d = engine.evaluate("rm", &serde_json::json!({}), &Grant::new("alice"));
/// assert_eq!(d.verdict, Verdict::Deny);
/// assert_eq!(&*d.rule, "/default");
/// ```
#[derive(Debug, PartialEq)]
pub struct Decision {
    /// allow, deny, limit or approve.
    pub verdict: Verdict,
    /// JSON Pointer of the rule that decided (`""` for checks on the input itself).
    pub rule: Text,
    /// Why, for a person (always present except on allow).
    pub message: Option<Text>,
    /// On limit: the counter that refused.
    pub counter: Option<Text>,
    /// On limit: milliseconds until the same call would be admitted.
    pub retry_after_ms: Option<u64>,
    /// On allow, when the call has limits: the smallest `max - used` after charging.
    pub remaining: Option<u64>,
    /// On approve: the id a human approves.
    pub approval_id: Option<String>,
    /// On allow, when counters were charged: what [`Engine::release`](crate::Engine::release) refunds.
    pub reservation: Option<Reservation>,
    /// On deny: the tool, resource or prompt is hidden (by `hide` or `action: "hide"`), so a
    /// host answers as if it did not exist.
    pub hidden: bool,
    /// On deny: the counter store failed (an error, a timeout), so the call was denied
    /// without being judged by its limits (fail closed).
    pub store_failed: bool,
}

impl Decision {
    pub(crate) fn new(verdict: Verdict, rule: Text, message: Option<Text>) -> Decision {
        Decision {
            verdict,
            rule,
            message,
            counter: None,
            retry_after_ms: None,
            remaining: None,
            approval_id: None,
            reservation: None,
            hidden: false,
            store_failed: false,
        }
    }

    pub(crate) fn deny(rule: &Text, message: impl Into<Text>) -> Decision {
        Decision::new(Verdict::Deny, rule.clone(), Some(message.into()))
    }

    pub(crate) fn hide(rule: &Text, message: impl Into<Text>) -> Decision {
        let mut d = Decision::new(Verdict::Deny, rule.clone(), Some(message.into()));
        d.hidden = true;
        d
    }

    /// Whether the call may go through.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The decision as a JSON object in the `mcp-policy eval` output format, with the
    /// reservation shown under the label given (fields that do not apply are omitted).
    ///
    /// The object's member order is whatever the host's `serde_json::Map` keeps; for text in
    /// the documented field order use [`Decision::to_json_string`].
    ///
    /// ```
    /// use mcp_policy::{Engine, Grant, Policy};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny"}"#).unwrap();
    /// let d = Engine::new(policy).evaluate("x", &serde_json::json!({}), &Grant::anonymous());
    /// assert_eq!(
    ///     d.to_json(None),
    ///     serde_json::json!({"decision": "deny", "rule": "/default",
    ///         "message": "this tool is not allowed by this policy (default: deny)"})
    /// );
    /// ```
    pub fn to_json(&self, reservation_label: Option<&str>) -> Value {
        let mut out = Map::new();
        for (key, value) in self.fields(reservation_label) {
            out.insert(key.into(), value);
        }
        Value::Object(out)
    }

    /// The decision as one line of compact JSON in the `mcp-policy eval` output format, with
    /// its fields always in the documented order (`decision`, `rule`, `remaining`,
    /// `reservation`, `counter`, `retry_after_ms`, `approval_id`, `message`), whatever features
    /// the host's `serde_json` has.
    ///
    /// ```
    /// use mcp_policy::{Engine, Grant, Policy};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny"}"#).unwrap();
    /// let d = Engine::new(policy).evaluate("x", &serde_json::json!({}), &Grant::anonymous());
    /// assert_eq!(
    ///     d.to_json_string(None),
    ///     r#"{"decision":"deny","rule":"/default","message":"this tool is not allowed by this policy (default: deny)"}"#
    /// );
    /// ```
    pub fn to_json_string(&self, reservation_label: Option<&str>) -> String {
        let mut out = String::with_capacity(96);
        out.push('{');
        for (n, (key, value)) in self.fields(reservation_label).into_iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            out.push_str(&value.to_string());
        }
        out.push('}');
        out
    }

    /// The output fields in their documented order.
    fn fields(&self, reservation_label: Option<&str>) -> Vec<(&'static str, Value)> {
        let mut out: Vec<(&'static str, Value)> = Vec::with_capacity(8);
        out.push(("decision", self.verdict.as_str().into()));
        out.push(("rule", (*self.rule).into()));
        if let Some(remaining) = self.remaining {
            out.push(("remaining", remaining.into()));
        }
        if let (Some(label), Some(_)) = (reservation_label, &self.reservation) {
            out.push(("reservation", label.into()));
        }
        if let Some(counter) = &self.counter {
            out.push(("counter", (**counter).into()));
        }
        if let Some(retry) = self.retry_after_ms {
            out.push(("retry_after_ms", retry.into()));
        }
        if let Some(id) = &self.approval_id {
            out.push(("approval_id", id.as_str().into()));
        }
        if let Some(message) = &self.message {
            out.push(("message", (**message).into()));
        }
        out
    }
}
