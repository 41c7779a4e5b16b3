//! `mcp-policy scaffold`: a starting policy from an MCP `tools/list` result.
//!
//! Each tool is classified, in this order:
//! 1. **Financial** if its name (or description) speaks of moving money (pay, refund, charge,
//!    transfer, payout, invoice, …) and it is not marked `readOnlyHint: true`;
//! 2. **Read** if `readOnlyHint: true`;
//! 3. **Destructive** if `destructiveHint: true`, or if `readOnlyHint: false` without a
//!    `destructiveHint` (the MCP default for a tool that writes is "may be destructive");
//! 4. **Execute** if its name runs something (run, exec, execute, shell, command, script, …);
//! 5. **Write** if `readOnlyHint: false` (with `destructiveHint: false`).
//!
//! A tool without annotations is classified from its name's verbs: delete/remove/drop/… →
//! Destructive; run/exec/… → Execute; get/list/search/read/… → Read; create/update/push/… →
//! Write; anything else → Destructive (fail closed: a person reviews it).

use std::io::Write;
use std::path::Path;

use mcp_policy::pattern::is_pattern;
use serde_json::{Map, Value, json};

use crate::exit::{FAILURES, OK, UNUSABLE};
use crate::json::parse_strict;

/// The five risk classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Risk {
    Read,
    Write,
    Execute,
    Destructive,
    Financial,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Read => "Read",
            Risk::Write => "Write",
            Risk::Execute => "Execute",
            Risk::Destructive => "Destructive",
            Risk::Financial => "Financial",
        }
    }
}

const FINANCIAL: &[&str] = &[
    "pay",
    "payment",
    "payments",
    "refund",
    "refunds",
    "charge",
    "charges",
    "transfer",
    "transfers",
    "payout",
    "payouts",
    "invoice",
    "invoices",
    "purchase",
    "withdraw",
    "withdrawal",
];
const FINANCIAL_PHRASES: &[&str] = &[
    "payment",
    "refund",
    "money",
    "credit card",
    "charge a",
    "payout",
    "invoice",
    "funds",
];
const EXECUTE: &[&str] = &[
    "run", "exec", "execute", "shell", "command", "cmd", "script", "eval", "evaluate", "spawn",
    "launch", "invoke", "deploy", "start", "trigger", "scan",
];
const DESTRUCTIVE: &[&str] = &[
    "delete",
    "remove",
    "rm",
    "drop",
    "destroy",
    "purge",
    "wipe",
    "truncate",
    "reset",
    "kill",
    "terminate",
    "erase",
    "revoke",
];
const READ: &[&str] = &[
    "get", "list", "search", "read", "fetch", "show", "view", "describe", "find", "query",
    "status", "diff", "log", "lookup", "check", "inspect", "open", "count", "echo",
];
const WRITE: &[&str] = &[
    "create", "update", "add", "push", "fork", "merge", "edit", "write", "set", "put", "post",
    "comment", "send", "upload", "commit", "move", "rename", "copy", "insert", "patch", "modify",
    "review", "assign", "label", "close", "reopen", "toggle",
];

/// The lowercase words of a tool name: split at `_`, `-`, `.`, `/`, spaces and camelCase.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Classifies one tool; returns the class and why.
pub fn classify(tool: &Value) -> (Risk, String) {
    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let annotations = tool.get("annotations").and_then(Value::as_object);
    let hint = |key: &str| {
        annotations
            .and_then(|a| a.get(key))
            .and_then(Value::as_bool)
    };
    let words = words(name);
    let has = |list: &[&str]| words.iter().find(|w| list.contains(&w.as_str())).cloned();
    let read_only = hint("readOnlyHint");
    if read_only != Some(true) {
        if let Some(w) = has(FINANCIAL) {
            return (Risk::Financial, format!("name mentions `{w}`"));
        }
        if let Some(p) = FINANCIAL_PHRASES.iter().find(|p| description.contains(*p))
            && (read_only == Some(false) || annotations.is_none())
        {
            return (Risk::Financial, format!("description mentions {p:?}"));
        }
    }
    if read_only == Some(true) {
        return (Risk::Read, "annotations: readOnlyHint".into());
    }
    match (read_only, hint("destructiveHint")) {
        (_, Some(true)) => return (Risk::Destructive, "annotations: destructiveHint".into()),
        (Some(false), None) => {
            return (Risk::Destructive, "annotations: readOnlyHint false without destructiveHint (MCP default: destructive)".into());
        }
        _ => {}
    }
    if let Some(w) = has(EXECUTE) {
        return (Risk::Execute, format!("name mentions `{w}`"));
    }
    if read_only == Some(false) {
        return (
            Risk::Write,
            "annotations: not read-only, not destructive".into(),
        );
    }
    // No usable annotations: the name's verbs.
    if let Some(w) = has(DESTRUCTIVE) {
        return (
            Risk::Destructive,
            format!("no annotations; name mentions `{w}`"),
        );
    }
    if let Some(w) = words.first().filter(|w| READ.contains(&w.as_str())) {
        return (
            Risk::Read,
            format!("no annotations; name starts with `{w}`"),
        );
    }
    if let Some(w) = has(WRITE) {
        return (Risk::Write, format!("no annotations; name mentions `{w}`"));
    }
    if let Some(w) = has(READ) {
        return (Risk::Read, format!("no annotations; name mentions `{w}`"));
    }
    (
        Risk::Destructive,
        "no annotations and no recognised verb (fail closed: review it)".into(),
    )
}

/// The tools of a `tools/list` result: `{"tools": [...]}`, a JSON-RPC response
/// `{"result": {"tools": [...]}}`, a bare array of tools, or JSON Lines of any of these (pages).
pub fn tools_of(text: &str) -> Result<Vec<Value>, String> {
    fn from_value(value: Value, out: &mut Vec<Value>) -> Result<(), String> {
        match value {
            Value::Array(items) => {
                out.extend(items);
                Ok(())
            }
            Value::Object(mut map) => {
                if let Some(result) = map.remove("result") {
                    return from_value(result, out);
                }
                match map.remove("tools") {
                    Some(Value::Array(items)) => {
                        out.extend(items);
                        Ok(())
                    }
                    _ => Err("expected a tools/list result: an object with a `tools` array".into()),
                }
            }
            _ => Err("expected a tools/list result: an object with a `tools` array".into()),
        }
    }
    let mut tools = Vec::new();
    match parse_strict(text) {
        Ok(value) => from_value(value, &mut tools)?,
        Err(whole) => {
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let value = parse_strict(line).map_err(|e| {
                    if i == 0 {
                        whole.clone()
                    } else {
                        format!("line {}: {e}", i + 1)
                    }
                })?;
                from_value(value, &mut tools).map_err(|e| format!("line {}: {e}", i + 1))?;
            }
        }
    }
    Ok(tools)
}

/// Builds the starting policy; also returns notes about tools that were skipped.
pub fn scaffold(tools: &[Value], source: &str) -> (Value, Vec<String>) {
    let mut notes = Vec::new();
    let mut entries = Map::new();
    let mut hide = Vec::new();
    let mut any_financial = false;
    for tool in tools {
        let Some(name) = tool
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            notes.push("a tool without a name was skipped".into());
            continue;
        };
        if is_pattern(name) {
            notes.push(format!(
                "tool {name:?} contains `*` or `?`, which a policy reads as a pattern; skipped"
            ));
            continue;
        }
        if entries.contains_key(name) {
            notes.push(format!("tool {name:?} is listed twice; the first is kept"));
            continue;
        }
        let (risk, why) = classify(tool);
        let mut entry = match risk {
            Risk::Read => json!({}),
            Risk::Write => json!({ "rate_limit": "30/hour" }),
            Risk::Execute => json!({ "rate_limit": "10/minute" }),
            Risk::Destructive => {
                hide.push(Value::String(name.to_owned()));
                json!({ "action": "deny", "reason": "destructive: hidden until a person reviews it" })
            }
            Risk::Financial => {
                any_financial = true;
                json!({ "action": "approve", "reason": "moves money: a person approves each call" })
            }
        };
        if let Value::Object(map) = &mut entry {
            map.insert("x-risk".into(), risk.as_str().into());
            map.insert("x-why".into(), why.into());
        }
        entries.insert(name.to_owned(), entry);
    }
    let mut policy = Map::new();
    policy.insert(
        "$schema".into(),
        "https://github.com/mcp-policy/mcp-policy/blob/main/docs/policy.schema.json".into(),
    );
    policy.insert("version".into(), "1".into());
    policy.insert(
        "description".into(),
        format!("Starting policy scaffolded from {source}; review every entry").into(),
    );
    policy.insert("default".into(), "deny".into());
    if !hide.is_empty() {
        policy.insert("hide".into(), Value::Array(hide));
    }
    if any_financial {
        policy.insert("approvals".into(), json!({ "ttl": "15m" }));
    }
    policy.insert("tools".into(), Value::Object(entries));
    // Explicitly none: under `default: deny` the server's resources and prompts are refused
    // until the reviewer names the ones the agent may use.
    policy.insert("resources".into(), json!({}));
    policy.insert("prompts".into(), json!({}));
    (Value::Object(policy), notes)
}

/// Runs `scaffold`.
pub fn run(path: &Path) -> u8 {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: cannot read: {e}");
            return UNUSABLE;
        }
    };
    let tools = match tools_of(&text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: {e}");
            return UNUSABLE;
        }
    };
    let source = path
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let (policy, notes) = scaffold(&tools, &source);
    for note in &notes {
        eprintln!("{file}: {note}");
    }
    let text = match serde_json::to_string_pretty(&policy) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot write the policy: {e}");
            return FAILURES;
        }
    };
    // The output must load; if it ever does not, say so rather than print a broken policy.
    if let Err(errors) = mcp_policy::Policy::from_json_str(&text) {
        eprintln!("internal error: the scaffolded policy does not load:\n{errors}");
        return FAILURES;
    }
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("cannot write the policy: {e}");
            UNUSABLE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split() {
        assert_eq!(words("get-env"), ["get", "env"]);
        assert_eq!(words("createPullRequest"), ["create", "pull", "request"]);
        assert_eq!(
            words("list_directory_with_sizes"),
            ["list", "directory", "with", "sizes"]
        );
    }

    #[test]
    fn classes() {
        let c = |v: Value| classify(&v).0;
        assert_eq!(
            c(
                json!({"name": "refund_charge", "annotations": {"readOnlyHint": false, "destructiveHint": false}})
            ),
            Risk::Financial
        );
        assert_eq!(
            c(json!({"name": "list_payments", "annotations": {"readOnlyHint": true}})),
            Risk::Read
        );
        assert_eq!(
            c(json!({"name": "x", "annotations": {"readOnlyHint": false}})),
            Risk::Destructive
        );
        assert_eq!(
            c(
                json!({"name": "run_query", "annotations": {"readOnlyHint": false, "destructiveHint": false}})
            ),
            Risk::Execute
        );
        assert_eq!(c(json!({"name": "delete_repo"})), Risk::Destructive);
        assert_eq!(c(json!({"name": "frobnicate"})), Risk::Destructive);
        assert_eq!(c(json!({"name": "create_issue"})), Risk::Write);
        assert_eq!(c(json!({"name": "get_issue"})), Risk::Read);
    }
}
