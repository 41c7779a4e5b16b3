//! What MCP answers and audit logs look like to a test: the policy decision an answer carries,
//! an answer's first text, the audit log's records, and the policy the suites put in front of
//! the pinned server-everything.

use std::path::Path;

use serde_json::Value;

/// The policy in front of server-everything, in the stdio proxy's suites and the HTTP ones.
pub const EVERYTHING_POLICY: &str = r#"{
  "version": "1", "default": "deny",
  "hide": ["get-env"],
  "tools": {
    "echo": { "rate_limit": "2/minute" },
    "get-sum": { "action": "deny", "reason": "Sums are off today" },
    "trigger-long-running-operation": {},
    "trigger-sampling-request": {},
    "trigger-elicitation-request": {},
    "get-structured-content": { "action": "approve", "reason": "a person checks each lookup" }
  },
  "resources": {
    "demo://resource/static/document/*": { "rate_limit": "3/minute" },
    "demo://resource/static/document/structure.md": { "action": "hide" },
    "demo://resource/static/document/startup.md": { "action": "deny", "reason": "Startup notes are internal" },
    "demo://resource/dynamic/text/*": {}
  },
  "prompts": {
    "simple-prompt": {},
    "completable-prompt": {},
    "args-prompt": { "action": "approve", "reason": "a person checks each prompt" }
  }
}"#;

/// The policy decision a refused resource or prompt request carries in its error's `data`
/// (a client script's step, whose `error` has `code`, `message` and `data`).
pub fn error_decision(step: &Value) -> &Value {
    &step["error"]["data"]["io.mcp-policy/decision"]
}

/// The policy decision an answer (or a client script's step) carries in its `_meta`.
pub fn decision(answer: &Value) -> &Value {
    &answer["result"]["_meta"]["io.mcp-policy/decision"]
}

/// An answer's first text content (empty when there is none).
pub fn text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The audit log's records (one JSON object a line), read now; none when there is no file.
pub fn audit_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_decisions_and_texts() {
        let answer = json!({"result": {"content": [{"type": "text", "text": "hi"}],
            "_meta": {"io.mcp-policy/decision": {"decision": "deny"}}}});
        assert_eq!(decision(&answer)["decision"], "deny");
        assert_eq!(text(&answer), "hi");
        assert_eq!(text(&json!({"error": {}})), "");
        assert!(audit_records(Path::new("/nonexistent/audit.jsonl")).is_empty());
        assert!(serde_json::from_str::<Value>(EVERYTHING_POLICY).is_ok());
    }
}
