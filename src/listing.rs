//! Filtering an MCP `tools/list` result: what the policy hides or can never allow is removed.

use serde_json::Value;

use crate::compile::Policy;
use crate::document::{Action, Cost, DefaultAction};

impl Policy {
    /// Whether some call of `tool` could be allowed: false when it is hidden, denied by its
    /// entry or by `default: deny`, denied unconditionally by a `deny_if` with no conditions,
    /// or subject to a limit whose fixed cost exceeds its max.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny","hide":["drop_*"],
    ///   "tools":{"read":{},"stop_scan":{"action":"deny"},"drop_table":{}}}"#).unwrap();
    /// assert!(p.can_ever_allow("read"));
    /// assert!(!p.can_ever_allow("stop_scan"));
    /// assert!(!p.can_ever_allow("drop_table"));
    /// assert!(!p.can_ever_allow("unknown"));
    /// ```
    pub fn can_ever_allow(&self, tool: &str) -> bool {
        if self.is_hidden(tool) {
            return false;
        }
        let entry = self.entry_for(tool);
        let stages = match entry {
            None if self.default_action() == DefaultAction::Deny => return false,
            None => vec![self.all_tools()],
            Some(e) if e.action == Action::Deny => return false,
            Some(e) => vec![&e.stage, self.all_tools()],
        };
        !stages.iter().any(|stage| {
            stage.deny_if.iter().any(|c| c.conditions.is_empty())
                || stage
                    .limits
                    .iter()
                    .any(|l| matches!(l.cost, Cost::Fixed(c) if c > l.max))
        })
    }

    /// Filters a `tools/list` result (`{"tools": [...], ...}`, or a bare array of tools),
    /// keeping the tools [`can_ever_allow`](Self::can_ever_allow) accepts. Tools without a
    /// string `name` are dropped. Other fields (such as `nextCursor`) are kept.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"allow","hide":["delete_bucket"]}"#).unwrap();
    /// let list = serde_json::json!({"tools": [{"name": "get_bucket"}, {"name": "delete_bucket"}]});
    /// assert_eq!(p.filter_tools_list(&list), serde_json::json!({"tools": [{"name": "get_bucket"}]}));
    /// ```
    pub fn filter_tools_list(&self, result: &Value) -> Value {
        let keep = |tool: &&Value| {
            tool.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| self.can_ever_allow(n))
        };
        match result {
            Value::Array(tools) => Value::Array(tools.iter().filter(keep).cloned().collect()),
            Value::Object(map) => {
                let mut out = map.clone();
                let tools = match map.get("tools") {
                    Some(Value::Array(tools)) => tools.iter().filter(keep).cloned().collect(),
                    _ => Vec::new(),
                };
                out.insert("tools".into(), Value::Array(tools));
                Value::Object(out)
            }
            _ => serde_json::json!({"tools": []}),
        }
    }
}
