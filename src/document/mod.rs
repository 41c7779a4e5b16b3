//! The policy document (sections 2–6 of the spec): a typed model read from JSON, accepting the
//! three dialects (`limits`, `rate_limit`, `action`/`reason`/`on_deny` aliases) mixed freely,
//! with its three sections of entries: `tools`, `resources` (keyed by URI patterns) and
//! `prompts`.
//!
//! Reading never stops at the first problem: every error is collected with the JSON Pointer
//! of the offending value, so a policy author sees all of them at once.

// The reader follows the document's own sections: `read` and the shared helpers here, `top`
// (the top level, `hide`, `approvals`, the three sections), `tool` (an entry of any section,
// its action and `rate_limit`, and the constraint lists it shares with `all_tools`), `condition` (conditions and
// `deny_if`/`approve_if` clauses) and `limit` (limits, windows, scopes, costs).

mod condition;
mod limit;
mod tool;
mod top;

use hashbrown::HashMap;
use serde_json::{Map, Value};

use crate::error::{LoadError, LoadErrorKind, type_name};
use crate::path::Path;
use crate::source::{escape_pointer_token, object_keys};

/// What happens to a tool, resource or prompt no key of its section matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Let it through (after `all_tools`).
    Allow,
    /// Deny it.
    Deny,
}

/// An entry's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Allowed, subject to the entry's constraints.
    Allow,
    /// Always denied.
    Deny,
    /// Every call needs a recorded human approval.
    Approve,
    /// Denied as if it did not exist, and removed from lists (like the top-level `hide`).
    Hide,
}

/// A condition operator (section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Neq,
    In,
    NotIn,
    Lt,
    Lte,
    Gt,
    Gte,
    Regex,
    NotRegex,
    StartsWith,
    EndsWith,
    Contains,
    Exists,
    PathUnder,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "regex" => Op::Regex,
            "not_regex" => Op::NotRegex,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            "contains" => Op::Contains,
            "exists" => Op::Exists,
            "path_under" => Op::PathUnder,
            _ => return None,
        })
    }

    /// The operator's name as written in a policy.
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Regex => "regex",
            Op::NotRegex => "not_regex",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Contains => "contains",
            Op::Exists => "exists",
            Op::PathUnder => "path_under",
        }
    }
}

/// One condition: `{ "path", "op", "value", "on_deny"? }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// JSON Pointer of the condition in the document.
    pub pointer: String,
    /// Where the tested value is.
    pub path: Path,
    /// The operator.
    pub op: Op,
    /// The operand.
    pub value: Value,
    /// Message when this condition, used in `require`, fails.
    pub on_deny: Option<String>,
}

/// A `deny_if` or `approve_if` clause: all conditions hold → it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// JSON Pointer of the clause.
    pub pointer: String,
    /// The conditions (an empty list always matches).
    pub conditions: Vec<Condition>,
    /// `on_deny` (deny_if) or `reason` (approve_if).
    pub message: Option<String>,
}

/// Reset discipline of a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reset {
    /// Exact sliding window over `(t - W, t]`.
    Sliding,
    /// Fixed windows aligned to the Unix epoch.
    Calendar,
}

/// Whose budget a limit draws on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One budget per grant id.
    Grant,
    /// One budget per (grant id, session).
    Session,
    /// One budget for everyone.
    Global,
    /// One budget per called tool name.
    Tool,
    /// One budget per value at an argument path.
    Arg(Path),
}

impl Scope {
    /// Whether two scopes key budgets the same way (`args.a` and `/args/a` are one scope).
    pub fn same_as(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Arg(a), Scope::Arg(b)) => a.same_place(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }

    /// The scope as written in a policy.
    pub fn describe(&self) -> String {
        match self {
            Scope::Grant => "grant".into(),
            Scope::Session => "session".into(),
            Scope::Global => "global".into(),
            Scope::Tool => "tool".into(),
            Scope::Arg(p) => p.to_string(),
        }
    }
}

/// What one call costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cost {
    /// A constant.
    Fixed(u64),
    /// The non-negative integer found at a path.
    Path(Path),
}

/// One limit (section 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// JSON Pointer of the limit.
    pub pointer: String,
    /// The budget's name.
    pub counter: String,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// Most cost admitted per window.
    pub max: u64,
    /// Whose budget.
    pub scope: Scope,
    /// Cost of one call.
    pub cost: Cost,
    /// Sliding or calendar.
    pub reset: Reset,
    /// Message when the limit refuses.
    pub on_limit: Option<String>,
}

/// The constraint lists shared by tool entries and `all_tools`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stage {
    /// Each must hold.
    pub require: Vec<Condition>,
    /// Deny when a clause matches.
    pub deny_if: Vec<Clause>,
    /// Require approval when a clause matches.
    pub approve_if: Vec<Clause>,
    /// Limits, charged all-or-nothing.
    pub limits: Vec<Limit>,
}

/// One entry of `tools`, `resources` or `prompts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (a name, a URI, or a pattern).
    pub key: String,
    /// `/tools/KEY`, `/resources/KEY` or `/prompts/KEY`.
    pub pointer: String,
    /// allow, deny, approve or hide.
    pub action: Action,
    /// `reason` / `on_deny`.
    pub reason: Option<String>,
    /// JSON Schema for the arguments (tools and prompts).
    pub schema: Option<Value>,
    /// Conditions and limits.
    pub stage: Stage,
}

/// The name entries had when only tools had them.
pub type ToolEntry = Entry;

/// A whole policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `default`.
    pub default: DefaultAction,
    /// `hide`, in order.
    pub hide: Vec<String>,
    /// `all_tools`.
    pub all_tools: Stage,
    /// `tools`, in document order.
    pub tools: Vec<Entry>,
    /// `resources` (keys are URI patterns), in document order.
    pub resources: Vec<Entry>,
    /// `prompts`, in document order.
    pub prompts: Vec<Entry>,
    /// Whether the document has a `resources` section (even an empty one).
    pub has_resources: bool,
    /// Whether the document has a `prompts` section (even an empty one).
    pub has_prompts: bool,
    /// `trust_annotations`: whether the server's tool annotations count (default false: a
    /// tool is judged as if it had none).
    pub trust_annotations: bool,
    /// `approvals.ttl` in milliseconds (default 15 minutes).
    pub approval_ttl_ms: u64,
    /// `description`, if any.
    pub description: Option<String>,
}

impl Document {
    /// The entries of one section, in document order.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// use mcp_policy::subject::Kind;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"file:///srv/docs/*":{}},"prompts":{"greet":{"action":"approve"}}}"#).unwrap();
    /// assert_eq!(p.document().section(Kind::Resource)[0].key, "file:///srv/docs/*");
    /// assert_eq!(p.document().section(Kind::Prompt)[0].pointer, "/prompts/greet");
    /// assert!(p.document().section(Kind::Tool).is_empty());
    /// ```
    pub fn section(&self, kind: crate::subject::Kind) -> &[Entry] {
        match kind {
            crate::subject::Kind::Tool => &self.tools,
            crate::subject::Kind::Resource => &self.resources,
            crate::subject::Kind::Prompt => &self.prompts,
        }
    }
}

/// The default approval TTL: 15 minutes.
pub const DEFAULT_APPROVAL_TTL_MS: u64 = 15 * 60_000;

/// Reads `value`, the policy document, collecting every error. With the `text` it was parsed
/// from, object members are read in the text's order; without (`None`), in the map's
/// iteration order.
pub(crate) fn read(value: &Value, text: Option<&str>) -> (Option<Document>, Vec<LoadError>) {
    let mut reader = Reader {
        errors: Vec::new(),
        text,
    };
    let document = reader.document(value);
    (document, reader.errors)
}

/// Collects errors while reading.
struct Reader<'t> {
    errors: Vec<LoadError>,
    /// The text the value was parsed from, when there is one: object members are taken in
    /// its order (a `serde_json::Map` iterates in key order unless the host turned on
    /// serde_json's `preserve_order`).
    text: Option<&'t str>,
}

fn child(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    if token.contains(['~', '/']) {
        out.push_str(&escape_pointer_token(token));
    } else {
        out.push_str(token);
    }
    out
}

impl Reader<'_> {
    /// The members of `map`, the object at `pointer`, in document order when the text is
    /// known, else in the map's iteration order. Linear: one scan of the text, one hash
    /// lookup per member.
    fn members<'v>(
        &self,
        map: &'v Map<String, Value>,
        pointer: &str,
    ) -> Vec<(&'v String, &'v Value)> {
        let in_map_order = || map.iter().collect();
        let Some(keys) = self.text.and_then(|text| object_keys(text, pointer)) else {
            return in_map_order();
        };
        if keys.len() != map.len() {
            return in_map_order();
        }
        // The map may already iterate in text order (serde_json's `preserve_order` on, or
        // keys written sorted).
        if keys
            .iter()
            .zip(map.keys())
            .all(|(k, m)| k.as_ref() == m.as_str())
        {
            return in_map_order();
        }
        let position: HashMap<&str, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_ref(), i))
            .collect();
        let mut slots: Vec<Option<(&'v String, &'v Value)>> = vec![None; keys.len()];
        for (key, value) in map {
            match position.get(key.as_str()).and_then(|i| slots.get_mut(*i)) {
                Some(slot @ None) => *slot = Some((key, value)),
                // Not one member per key: keep the map's order rather than drop a member.
                _ => return in_map_order(),
            }
        }
        slots
            .into_iter()
            .collect::<Option<_>>()
            .unwrap_or_else(in_map_order)
    }

    fn error(&mut self, pointer: &str, kind: LoadErrorKind) {
        self.errors.push(LoadError::new(pointer, kind));
    }

    fn invalid(&mut self, pointer: &str, message: impl Into<String>) {
        self.errors.push(LoadError::invalid(pointer, message));
    }

    fn wrong_type(&mut self, pointer: &str, expected: &'static str, found: &Value) {
        self.error(
            pointer,
            LoadErrorKind::WrongType {
                expected,
                found: type_name(found),
            },
        );
    }

    /// The value as an object whose fields are all in `allowed` (or start with `x-`).
    fn object<'v>(
        &mut self,
        value: &'v Value,
        pointer: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.wrong_type(pointer, "an object", value);
            return None;
        };
        let unknown = |key: &&String| !key.starts_with("x-") && !allowed.contains(&key.as_str());
        let mut fields: Vec<&String> = map.keys().filter(unknown).collect();
        if fields.len() > 1 {
            // Errors in document order; only an object with unknown fields pays for the scan.
            fields = self
                .members(map, pointer)
                .into_iter()
                .map(|(key, _)| key)
                .filter(unknown)
                .collect();
        }
        for key in fields {
            self.error(
                &child(pointer, key),
                LoadErrorKind::UnknownField {
                    field: key.clone(),
                    expected: expected_list(allowed),
                },
            );
        }
        Some(map)
    }

    fn string(&mut self, value: &Value, pointer: &str) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(pointer, "a string", other);
                None
            }
        }
    }

    fn array<'v>(&mut self, value: &'v Value, pointer: &str) -> Option<&'v [Value]> {
        match value {
            Value::Array(items) => Some(items),
            other => {
                self.wrong_type(pointer, "an array", other);
                None
            }
        }
    }
}

fn expected_list(allowed: &[&str]) -> &'static str {
    // The field lists are constants; map each to its message once.
    match allowed.first().copied() {
        Some("version") => {
            "version, default, hide, all_tools, tools, resources, prompts, trust_annotations, approvals, description, $schema (or an x- key)"
        }
        Some("action") if !allowed.contains(&"schema") => {
            "action, reason, on_deny, require, deny_if, approve_if, limits, rate_limit (or an x- key)"
        }
        Some("action") => {
            "action, reason, on_deny, schema, require, deny_if, approve_if, limits, rate_limit (or an x- key)"
        }
        Some("limits") => "limits, require, deny_if, approve_if (or an x- key)",
        Some("path") => "path, op, value, on_deny (or an x- key)",
        Some("conditions") if allowed.contains(&"on_deny") => "conditions, on_deny (or an x- key)",
        Some("conditions") => "conditions, reason (or an x- key)",
        Some("counter") => "counter, window, max, scope, cost, reset, on_limit (or an x- key)",
        Some("max") => "max, window (or an x- key)",
        Some("ttl") => "ttl (or an x- key)",
        _ => "a known field",
    }
}
