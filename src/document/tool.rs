//! An entry of `tools`, `resources` or `prompts`: its action, `reason`, `schema` (not for
//! resources: they have no arguments), `rate_limit`, and the constraint lists (`require`,
//! `deny_if`, `approve_if`, `limits`) it shares with `all_tools`.

use serde_json::{Map, Value};

use super::{Action, Cost, Entry, Limit, Reader, Reset, Scope, Stage, child};
use crate::subject::Kind;

const TOOL_FIELDS: &[&str] = &[
    "action",
    "reason",
    "on_deny",
    "schema",
    "require",
    "deny_if",
    "approve_if",
    "limits",
    "rate_limit",
];
/// A resource entry's fields: a tool's but `schema` (a resource request has no arguments).
const RESOURCE_FIELDS: &[&str] = &[
    "action",
    "reason",
    "on_deny",
    "require",
    "deny_if",
    "approve_if",
    "limits",
    "rate_limit",
];
const RATE_LIMIT_FIELDS: &[&str] = &["max", "window"];

impl Reader<'_> {
    /// One entry of the `kind` section: `key` as written, at `pointer` (`/tools/KEY`, …).
    pub(super) fn entry(
        &mut self,
        kind: Kind,
        key: &str,
        value: &Value,
        pointer: &str,
    ) -> Option<Entry> {
        let fields = match kind {
            Kind::Resource => RESOURCE_FIELDS,
            Kind::Tool | Kind::Prompt => TOOL_FIELDS,
        };
        let map = self.object(value, pointer, fields)?;
        let action = self.action(map.get("action"), pointer);
        if map.contains_key("reason") && map.contains_key("on_deny") {
            self.invalid(
                &child(pointer, "on_deny"),
                "`reason` and its alias `on_deny` are both given; keep one",
            );
        }
        let reason = match map
            .get("reason")
            .map(|v| (v, "reason"))
            .or_else(|| map.get("on_deny").map(|v| (v, "on_deny")))
        {
            Some((value, field)) => self.string(value, &child(pointer, field)),
            None => None,
        };
        let schema = map.get("schema").cloned();
        let mut stage = self.stage(map, pointer);
        if let Some(value) = map.get("rate_limit") {
            let limit_pointer = child(pointer, "rate_limit");
            let counter = match kind {
                Kind::Tool => format!("{key}.rate_limit"),
                _ => format!("{}/{key}.rate_limit", kind.section()),
            };
            if let Some(limit) = self.rate_limit(counter, value, &limit_pointer) {
                stage.limits.push(limit);
            }
        }
        Some(Entry {
            key: key.to_owned(),
            pointer: pointer.to_owned(),
            action,
            reason,
            schema,
            stage,
        })
    }

    /// `action` (with its alias `require_approval`); a wrong one reads as deny.
    fn action(&mut self, value: Option<&Value>, pointer: &str) -> Action {
        match value {
            None => Action::Allow,
            Some(Value::String(s)) => match s.as_str() {
                "allow" => Action::Allow,
                "deny" => Action::Deny,
                "approve" | "require_approval" => Action::Approve,
                "hide" => Action::Hide,
                _ => {
                    self.invalid(&child(pointer, "action"), format!("unknown action {s:?}; expected \"allow\", \"deny\", \"approve\" (or \"require_approval\") or \"hide\""));
                    Action::Deny
                }
            },
            Some(other) => {
                self.wrong_type(&child(pointer, "action"), "a string", other);
                Action::Deny
            }
        }
    }

    /// The constraint lists a `tools` entry shares with `all_tools`: `require`, `deny_if`,
    /// `approve_if` and `limits`.
    pub(super) fn stage(&mut self, map: &Map<String, Value>, pointer: &str) -> Stage {
        let mut stage = Stage::default();
        if let Some(value) = map.get("require") {
            stage.require = self.conditions(value, &child(pointer, "require"));
        }
        if let Some(value) = map.get("deny_if") {
            stage.deny_if = self.deny_if(value, &child(pointer, "deny_if"));
        }
        if let Some(value) = map.get("approve_if") {
            stage.approve_if = self.approve_if(value, &child(pointer, "approve_if"));
        }
        if let Some(value) = map.get("limits") {
            stage.limits = self.limits(value, &child(pointer, "limits"));
        }
        stage
    }

    /// `rate_limit`: `"N/WINDOW"` or `{"max", "window"}`, a grant-scoped sliding limit on
    /// the counter `KEY.rate_limit` (`resources/KEY.rate_limit`, `prompts/KEY.rate_limit`).
    fn rate_limit(&mut self, counter: String, value: &Value, pointer: &str) -> Option<Limit> {
        let (max, window_ms) = match value {
            Value::String(s) => {
                let Some((n, w)) = s.split_once('/') else {
                    self.invalid(pointer, format!("rate limit {s:?} must look like \"10/minute\" (N/second, minute, hour, day or a duration)"));
                    return None;
                };
                let max = match n.trim().parse::<u64>() {
                    Ok(m) if m > 0 => Some(m),
                    _ => {
                        self.invalid(
                            pointer,
                            format!("rate limit {s:?}: the count must be a positive integer"),
                        );
                        None
                    }
                };
                let window = match crate::duration::parse_duration(w.trim()) {
                    Ok(ms) => Some(ms),
                    Err(message) => {
                        self.invalid(pointer, message);
                        None
                    }
                };
                (max?, window?)
            }
            Value::Object(_) => {
                let map = self.object(value, pointer, RATE_LIMIT_FIELDS)?;
                let max = self.max(map.get("max"), pointer);
                let window = self.window(map.get("window"), pointer);
                (max?, window?)
            }
            other => {
                self.wrong_type(
                    pointer,
                    "a string such as \"10/minute\" or an object {\"max\", \"window\"}",
                    other,
                );
                return None;
            }
        };
        Some(Limit {
            pointer: pointer.to_owned(),
            counter,
            window_ms,
            max,
            scope: Scope::Grant,
            cost: Cost::Fixed(1),
            reset: Reset::Sliding,
            on_limit: None,
        })
    }
}
