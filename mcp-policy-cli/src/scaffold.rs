//! `mcp-policy scaffold`: a starting policy from MCP `tools/list`, `resources/list`,
//! `resources/templates/list` and `prompts/list` results.
//!
//! Resources, templates and prompts are not classified (reading a resource or getting a
//! prompt changes nothing on the server): each gets an entry with a rate limit and `x-risk:
//! "Read"` for a person to review — see [`resource_entries`] and [`prompt_entries`].
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

use mcp_policy::Policy;
use mcp_policy::pattern::is_pattern;
use mcp_policy::uri::Uri;
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

/// The items of every list result read, pages concatenated in order.
#[derive(Debug, Default)]
pub struct Lists {
    pub tools: Vec<Value>,
    pub resources: Vec<Value>,
    pub templates: Vec<Value>,
    pub prompts: Vec<Value>,
    /// What was skipped while reading (JSON-RPC error answers).
    pub notes: Vec<String>,
}

const EXPECTED: &str = "expected a tools/list, resources/list, resources/templates/list or prompts/list result: an object with a `tools`, `resources`, `resourceTemplates` or `prompts` array";

impl Lists {
    /// Adds one page: `{"tools": [...]}` (or `resources`, `resourceTemplates`, `prompts`; a
    /// page may carry several), a JSON-RPC response `{"result": {...}}`, or a bare array of
    /// tools. A JSON-RPC error answer (a server without prompts, say) is skipped with a note.
    fn page(&mut self, value: Value, at: &str) -> Result<(), String> {
        match value {
            Value::Array(items) => {
                self.tools.extend(items);
                Ok(())
            }
            Value::Object(mut map) => {
                if let Some(result) = map.remove("result") {
                    return self.page(result, at);
                }
                if let Some(error) = map.get("error").filter(|_| map.contains_key("jsonrpc")) {
                    self.notes
                        .push(format!("{at}a JSON-RPC error answer was skipped: {error}"));
                    return Ok(());
                }
                let mut found = false;
                for (field, list) in [
                    ("tools", &mut self.tools),
                    ("resources", &mut self.resources),
                    ("resourceTemplates", &mut self.templates),
                    ("prompts", &mut self.prompts),
                ] {
                    match map.remove(field) {
                        None => {}
                        Some(Value::Array(items)) => {
                            list.extend(items);
                            found = true;
                        }
                        Some(_) => return Err(format!("`{field}` must be an array")),
                    }
                }
                if found { Ok(()) } else { Err(EXPECTED.into()) }
            }
            _ => Err(EXPECTED.into()),
        }
    }
}

/// The list results in `text`: one JSON value (see [`Lists::page`]), or JSON Lines of them
/// (pages, and the four lists mixed in any order).
pub fn lists_of(text: &str) -> Result<Lists, String> {
    let mut lists = Lists::default();
    match parse_strict(text) {
        Ok(value) => lists.page(value, "")?,
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
                let at = format!("line {}: ", i + 1);
                lists
                    .page(value, &at)
                    .map_err(|e| format!("line {}: {e}", i + 1))?;
            }
        }
    }
    Ok(lists)
}

/// The rate limit of a scaffolded entry for one listed resource.
pub const RESOURCE_RATE: &str = "60/minute";
/// The rate limit of a scaffolded entry for a resource template (a pattern: many URIs).
pub const TEMPLATE_RATE: &str = "30/minute";
/// The rate limit of a scaffolded prompt entry.
pub const PROMPT_RATE: &str = "30/minute";

/// The `resources` key for a URI template: each `{…}` expression read as `*`, in normal form.
/// `Err` says why the template cannot be a key (it would not start with a literal scheme, it
/// has a literal `?` — a wildcard in a key — or it does not read as a URI).
pub fn template_pattern(template: &str) -> Result<String, String> {
    let mut key = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (literal, after) = rest.split_at(open);
        key.push_str(literal);
        let close = after.find('}').ok_or("an unclosed `{` in the template")?;
        if !key.ends_with('*') {
            key.push('*');
        }
        rest = after.get(close + 1..).unwrap_or_default();
    }
    key.push_str(rest);
    if key.contains('?') {
        return Err("it has a literal `?`, which a key reads as a wildcard".into());
    }
    let prefix = key.split('*').next().unwrap_or_default();
    if !prefix.contains(':') {
        return Err(format!(
            "the pattern {key:?} would not start with a literal scheme (it would match too much)"
        ));
    }
    let normal = Uri::parse(&key)
        .map_err(|e| format!("the pattern {key:?} does not read as a URI: {e}"))?
        .as_str()
        .to_owned();
    Ok(normal)
}

/// ` (NAME)` of a listed item with a `name` (or a `title`), else nothing.
fn named(item: &Value) -> String {
    ["title", "name"]
        .iter()
        .find_map(|k| item.get(*k).and_then(Value::as_str))
        .map_or_else(String::new, |n| format!(" ({n})"))
}

/// Whether `key` loads as a key of `section` (a one-entry policy).
fn loads_as_key(section: &str, key: &str) -> Result<(), String> {
    let probe = json!({ "version": "1", "default": "deny", section: { key: {} } });
    Policy::from_value(&probe)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `resources` entries: one per listed resource (its URI in normal form), then one pattern per
/// template. Each is `x-risk: "Read"` with a rate limit ([`RESOURCE_RATE`], [`TEMPLATE_RATE`]).
pub fn resource_entries(lists: &Lists, notes: &mut Vec<String>) -> Map<String, Value> {
    let mut entries = Map::new();
    for resource in &lists.resources {
        let Some(raw) = resource
            .get("uri")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        else {
            notes.push("a resource without a `uri` was skipped".into());
            continue;
        };
        let uri = match Uri::parse(raw) {
            Ok(uri) => uri,
            Err(e) => {
                notes.push(format!(
                    "resource {raw:?}: cannot read the URI ({e}); skipped"
                ));
                continue;
            }
        };
        let key = uri.as_str();
        if is_pattern(key) {
            notes.push(format!(
                "resource {key:?} contains `*` or `?`, which a policy reads as a pattern; skipped (write its entry by hand)"
            ));
            continue;
        }
        if entries.contains_key(key) {
            notes.push(format!(
                "resource {key:?} is listed twice; the first is kept"
            ));
            continue;
        }
        if let Err(e) = loads_as_key("resources", key) {
            notes.push(format!("resource {key:?} cannot be a key ({e}); skipped"));
            continue;
        }
        let mut why = format!("resources/list{}", named(resource));
        if key != raw {
            why.push_str(&format!("; listed as {raw:?}, written in normal form"));
        }
        entries.insert(
            key.to_owned(),
            json!({ "rate_limit": RESOURCE_RATE, "x-risk": "Read", "x-why": why }),
        );
    }
    for template in &lists.templates {
        let Some(raw) = template
            .get("uriTemplate")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        else {
            notes.push("a resource template without a `uriTemplate` was skipped".into());
            continue;
        };
        let key = match template_pattern(raw)
            .and_then(|key| loads_as_key("resources", &key).map(|()| key))
        {
            Ok(key) => key,
            Err(e) => {
                notes.push(format!(
                    "resource template {raw:?} was skipped: {e}; write its entry by hand"
                ));
                continue;
            }
        };
        if entries.contains_key(&key) {
            notes.push(format!(
                "resource template {raw:?} gives the pattern {key:?} again; the first is kept"
            ));
            continue;
        }
        let why = format!(
            "resources/templates/list: {raw:?}{}; the pattern admits every URI it matches, not only the template's: narrow it",
            named(template)
        );
        entries.insert(
            key,
            json!({ "rate_limit": TEMPLATE_RATE, "x-risk": "Read", "x-why": why }),
        );
    }
    entries
}

/// `prompts` entries: one per listed prompt, `x-risk: "Read"` with a rate limit
/// ([`PROMPT_RATE`]) and a schema from its `arguments` (strings; the required ones required;
/// no others).
pub fn prompt_entries(lists: &Lists, notes: &mut Vec<String>) -> Map<String, Value> {
    let mut entries = Map::new();
    for prompt in &lists.prompts {
        let Some(name) = prompt
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            notes.push("a prompt without a name was skipped".into());
            continue;
        };
        if is_pattern(name) {
            notes.push(format!(
                "prompt {name:?} contains `*` or `?`, which a policy reads as a pattern; skipped"
            ));
            continue;
        }
        if entries.contains_key(name) {
            notes.push(format!(
                "prompt {name:?} is listed twice; the first is kept"
            ));
            continue;
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        for arg in prompt
            .get("arguments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(arg_name) = arg.get("name").and_then(Value::as_str) else {
                continue;
            };
            properties.insert(arg_name.to_owned(), json!({ "type": "string" }));
            if arg.get("required").and_then(Value::as_bool) == Some(true) {
                required.push(Value::String(arg_name.to_owned()));
            }
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        });
        if !required.is_empty()
            && let Value::Object(map) = &mut schema
        {
            map.insert("required".into(), Value::Array(required));
        }
        entries.insert(
            name.to_owned(),
            json!({
                "rate_limit": PROMPT_RATE,
                "schema": schema,
                "x-risk": "Read",
                "x-why": "prompts/list: a prompt returns messages for the conversation; the schema admits its listed arguments only (strings), the required ones required",
            }),
        );
    }
    entries
}

/// Builds the starting policy; also returns notes about tools that were skipped.
pub fn scaffold(lists: &Lists, source: &str) -> (Value, Vec<String>) {
    let mut notes = lists.notes.clone();
    let tools = &lists.tools;
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
    // Empty when none were listed: under `default: deny` the server's resources and prompts
    // are refused until the reviewer names the ones the agent may use.
    let resources = resource_entries(lists, &mut notes);
    let prompts = prompt_entries(lists, &mut notes);
    policy.insert("resources".into(), Value::Object(resources));
    policy.insert("prompts".into(), Value::Object(prompts));
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
    let lists = match lists_of(&text) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{file}: {e}");
            return UNUSABLE;
        }
    };
    let source = path
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let (policy, notes) = scaffold(&lists, &source);
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
