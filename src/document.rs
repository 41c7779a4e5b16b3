//! The policy document (sections 2–6 of the spec): a typed model read from JSON, accepting the
//! three dialects (`limits`, `rate_limit`, `action`/`reason`/`on_deny` aliases) mixed freely.
//!
//! Reading never stops at the first problem: every error is collected with the JSON Pointer
//! of the offending value, so a policy author sees all of them at once.

use serde_json::{Map, Value};

use crate::duration::duration_from_value;
use crate::error::{LoadError, LoadErrorKind, type_name};
use crate::path::Path;
use crate::source::{escape_pointer_token, object_keys};

/// What happens to a tool no `tools` key matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Let it through (after `all_tools`).
    Allow,
    /// Deny it.
    Deny,
}

/// A tool entry's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Allowed, subject to the entry's constraints.
    Allow,
    /// Always denied.
    Deny,
    /// Every call needs a recorded human approval.
    Approve,
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

/// One `tools` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolEntry {
    /// The key as written (a name or a pattern).
    pub key: String,
    /// `/tools/KEY`.
    pub pointer: String,
    /// allow, deny or approve.
    pub action: Action,
    /// `reason` / `on_deny`.
    pub reason: Option<String>,
    /// JSON Schema for the arguments.
    pub schema: Option<Value>,
    /// Conditions and limits.
    pub stage: Stage,
}

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
    pub tools: Vec<ToolEntry>,
    /// `approvals.ttl` in milliseconds (default 15 minutes).
    pub approval_ttl_ms: u64,
    /// `description`, if any.
    pub description: Option<String>,
}

/// The default approval TTL: 15 minutes.
pub const DEFAULT_APPROVAL_TTL_MS: u64 = 15 * 60_000;

const TOP_FIELDS: &[&str] = &[
    "version",
    "default",
    "hide",
    "all_tools",
    "tools",
    "approvals",
    "description",
    "$schema",
];
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
const ALL_TOOLS_FIELDS: &[&str] = &["limits", "require", "deny_if", "approve_if"];
const CONDITION_FIELDS: &[&str] = &["path", "op", "value", "on_deny"];
const DENY_IF_FIELDS: &[&str] = &["conditions", "on_deny"];
const APPROVE_IF_FIELDS: &[&str] = &["conditions", "reason"];
const LIMIT_FIELDS: &[&str] = &[
    "counter", "window", "max", "scope", "cost", "reset", "on_limit",
];
const RATE_LIMIT_FIELDS: &[&str] = &["max", "window"];
const APPROVALS_FIELDS: &[&str] = &["ttl"];

/// Collects errors while reading.
pub(crate) struct Reader<'t> {
    pub(crate) errors: Vec<LoadError>,
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

impl<'t> Reader<'t> {
    /// A reader of a value parsed from `text` (members in text order), or of a value with no
    /// text (`None`: members in the map's iteration order).
    pub(crate) fn new(text: Option<&'t str>) -> Self {
        Reader {
            errors: Vec::new(),
            text,
        }
    }

    /// The members of `map`, the object at `pointer`, in document order when the text is
    /// known, else in the map's iteration order. One linear scan of the text.
    fn members<'v>(
        &self,
        map: &'v Map<String, Value>,
        pointer: &str,
    ) -> Vec<(&'v String, &'v Value)> {
        let in_text = self.text.and_then(|text| {
            let keys = object_keys(text, pointer)?;
            if keys.len() != map.len() {
                return None;
            }
            // Every member exactly once, or the map's own order: never drop one.
            keys.iter().map(|k| map.get_key_value(k.as_ref())).collect()
        });
        in_text.unwrap_or_else(|| map.iter().collect())
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

    /// Reads a whole document.
    pub(crate) fn document(&mut self, value: &Value) -> Option<Document> {
        let map = self.object(value, "", TOP_FIELDS)?;
        match map.get("version") {
            None => self.error("", LoadErrorKind::MissingField("version")),
            Some(Value::String(v)) if v == "1" => {}
            Some(other) => self.error(
                "/version",
                LoadErrorKind::Version {
                    found: other.to_string(),
                },
            ),
        }
        let default = match map.get("default") {
            None => {
                self.error("", LoadErrorKind::MissingField("default"));
                None
            }
            Some(Value::String(s)) if s == "allow" => Some(DefaultAction::Allow),
            Some(Value::String(s)) if s == "deny" => Some(DefaultAction::Deny),
            Some(other) => {
                self.invalid(
                    "/default",
                    format!("expected \"allow\" or \"deny\", found {other}"),
                );
                None
            }
        };
        let mut hide = Vec::new();
        if let Some(value) = map.get("hide") {
            if let Some(items) = self.array(value, "/hide") {
                for (i, item) in items.iter().enumerate() {
                    let pointer = format!("/hide/{i}");
                    if let Some(name) = self.string(item, &pointer) {
                        if name.is_empty() {
                            self.invalid(&pointer, "a hidden tool name must not be empty");
                        }
                        hide.push(name);
                    }
                }
            }
        }
        let all_tools = match map.get("all_tools") {
            Some(value) => match self.object(value, "/all_tools", ALL_TOOLS_FIELDS) {
                Some(obj) => self.stage(obj, "/all_tools"),
                None => Stage::default(),
            },
            None => Stage::default(),
        };
        let mut tools = Vec::new();
        if let Some(value) = map.get("tools") {
            if let Value::Object(entries) = value {
                for (key, entry) in self.members(entries, "/tools") {
                    let pointer = child("/tools", key);
                    if key.is_empty() {
                        self.invalid(&pointer, "a tool name must not be empty");
                        continue;
                    }
                    if let Some(entry) = self.tool_entry(key, entry, &pointer) {
                        tools.push(entry);
                    }
                }
            } else {
                self.wrong_type("/tools", "an object mapping tool names to entries", value);
            }
        }
        let mut approval_ttl_ms = DEFAULT_APPROVAL_TTL_MS;
        if let Some(value) = map.get("approvals") {
            if let Some(obj) = self.object(value, "/approvals", APPROVALS_FIELDS) {
                if let Some(ttl) = obj.get("ttl") {
                    match duration_from_value(ttl) {
                        Ok(ms) => approval_ttl_ms = ms,
                        Err(message) => self.invalid("/approvals/ttl", message),
                    }
                }
            }
        }
        let description = match map.get("description") {
            Some(value) => self.string(value, "/description"),
            None => None,
        };
        Some(Document {
            default: default?,
            hide,
            all_tools,
            tools,
            approval_ttl_ms,
            description,
        })
    }

    fn tool_entry(&mut self, key: &str, value: &Value, pointer: &str) -> Option<ToolEntry> {
        let map = self.object(value, pointer, TOOL_FIELDS)?;
        let action = match map.get("action") {
            None => Action::Allow,
            Some(Value::String(s)) => match s.as_str() {
                "allow" => Action::Allow,
                "deny" => Action::Deny,
                "approve" | "require_approval" => Action::Approve,
                _ => {
                    self.invalid(&child(pointer, "action"), format!("unknown action {s:?}; expected \"allow\", \"deny\", \"approve\" or \"require_approval\""));
                    Action::Deny
                }
            },
            Some(other) => {
                self.wrong_type(&child(pointer, "action"), "a string", other);
                Action::Deny
            }
        };
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
            if let Some(limit) = self.rate_limit(key, value, &limit_pointer) {
                stage.limits.push(limit);
            }
        }
        Some(ToolEntry {
            key: key.to_owned(),
            pointer: pointer.to_owned(),
            action,
            reason,
            schema,
            stage,
        })
    }

    fn stage(&mut self, map: &Map<String, Value>, pointer: &str) -> Stage {
        let mut stage = Stage::default();
        if let Some(value) = map.get("require") {
            let list_pointer = child(pointer, "require");
            if let Some(items) = self.array(value, &list_pointer) {
                for (i, item) in items.iter().enumerate() {
                    if let Some(c) = self.condition(item, &format!("{list_pointer}/{i}")) {
                        stage.require.push(c);
                    }
                }
            }
        }
        for (field, message_field, fields) in [
            ("deny_if", "on_deny", DENY_IF_FIELDS),
            ("approve_if", "reason", APPROVE_IF_FIELDS),
        ] {
            let Some(value) = map.get(field) else {
                continue;
            };
            let list_pointer = child(pointer, field);
            let Some(items) = self.array(value, &list_pointer) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let clause_pointer = format!("{list_pointer}/{i}");
                let Some(obj) = self.object(item, &clause_pointer, fields) else {
                    continue;
                };
                let mut conditions = Vec::new();
                match obj.get("conditions") {
                    None => self.error(&clause_pointer, LoadErrorKind::MissingField("conditions")),
                    Some(value) => {
                        let cond_pointer = child(&clause_pointer, "conditions");
                        if let Some(list) = self.array(value, &cond_pointer) {
                            for (j, c) in list.iter().enumerate() {
                                if let Some(c) = self.condition(c, &format!("{cond_pointer}/{j}")) {
                                    conditions.push(c);
                                }
                            }
                        }
                    }
                }
                let message = match obj.get(message_field) {
                    Some(v) => self.string(v, &child(&clause_pointer, message_field)),
                    None => None,
                };
                let clause = Clause {
                    pointer: clause_pointer,
                    conditions,
                    message,
                };
                if field == "deny_if" {
                    stage.deny_if.push(clause);
                } else {
                    stage.approve_if.push(clause);
                }
            }
        }
        if let Some(value) = map.get("limits") {
            let list_pointer = child(pointer, "limits");
            if let Some(items) = self.array(value, &list_pointer) {
                for (i, item) in items.iter().enumerate() {
                    if let Some(limit) = self.limit(item, &format!("{list_pointer}/{i}")) {
                        stage.limits.push(limit);
                    }
                }
            }
        }
        stage
    }

    fn condition(&mut self, value: &Value, pointer: &str) -> Option<Condition> {
        let map = self.object(value, pointer, CONDITION_FIELDS)?;
        let path = match map.get("path") {
            None => {
                self.error(pointer, LoadErrorKind::MissingField("path"));
                None
            }
            Some(v) => {
                self.string(v, &child(pointer, "path"))
                    .and_then(|text| match Path::parse(&text) {
                        Ok(p) => Some(p),
                        Err(message) => {
                            self.invalid(&child(pointer, "path"), message);
                            None
                        }
                    })
            }
        };
        let op = match map.get("op") {
            None => {
                self.error(pointer, LoadErrorKind::MissingField("op"));
                None
            }
            Some(v) => self.string(v, &child(pointer, "op")).and_then(|name| match Op::parse(&name) {
                Some(op) => Some(op),
                None => {
                    self.invalid(&child(pointer, "op"), format!("unknown operator {name:?}; expected eq, neq, in, not_in, lt, lte, gt, gte, regex, not_regex, starts_with, ends_with, contains, exists or path_under"));
                    None
                }
            }),
        };
        let value = match map.get("value") {
            Some(v) => v.clone(),
            None => {
                self.error(pointer, LoadErrorKind::MissingField("value"));
                return None;
            }
        };
        let on_deny = match map.get("on_deny") {
            Some(v) => self.string(v, &child(pointer, "on_deny")),
            None => None,
        };
        let op = op?;
        let value_pointer = child(pointer, "value");
        let ok = match op {
            Op::Lt | Op::Lte | Op::Gt | Op::Gte => value.is_number(),
            Op::In | Op::NotIn => value.is_array(),
            Op::Regex | Op::NotRegex | Op::StartsWith | Op::EndsWith | Op::PathUnder => {
                value.is_string()
            }
            Op::Exists => value.is_boolean(),
            Op::Eq | Op::Neq | Op::Contains => true,
        };
        if !ok {
            let expected = match op {
                Op::Lt | Op::Lte | Op::Gt | Op::Gte => "a number",
                Op::In | Op::NotIn => "an array",
                Op::Exists => "true or false",
                _ => "a string",
            };
            self.error(
                &value_pointer,
                LoadErrorKind::WrongType {
                    expected,
                    found: type_name(&value),
                },
            );
            return None;
        }
        if op == Op::PathUnder && value.as_str().is_some_and(str::is_empty) {
            self.invalid(
                &value_pointer,
                "path_under needs a directory, found an empty string",
            );
            return None;
        }
        Some(Condition {
            pointer: pointer.to_owned(),
            path: path?,
            op,
            value,
            on_deny,
        })
    }

    fn limit(&mut self, value: &Value, pointer: &str) -> Option<Limit> {
        let map = self.object(value, pointer, LIMIT_FIELDS)?;
        let counter = match map.get("counter") {
            None => {
                self.error(pointer, LoadErrorKind::MissingField("counter"));
                None
            }
            Some(v) => self.string(v, &child(pointer, "counter")).filter(|name| {
                if name.is_empty() {
                    self.invalid(
                        &child(pointer, "counter"),
                        "a counter name must not be empty",
                    );
                }
                !name.is_empty()
            }),
        };
        let window_ms = self.window(map.get("window"), pointer);
        let max = self.max(map.get("max"), pointer);
        let scope = match map.get("scope") {
            None => Some(Scope::Grant),
            Some(v) => {
                let scope_pointer = child(pointer, "scope");
                self.string(v, &scope_pointer).and_then(|s| match s.as_str() {
                    "grant" => Some(Scope::Grant),
                    "session" => Some(Scope::Session),
                    "global" => Some(Scope::Global),
                    "tool" => Some(Scope::Tool),
                    other if other.starts_with("args.") || other.starts_with("/args/") => match Path::parse(other) {
                        Ok(p) => Some(Scope::Arg(p)),
                        Err(message) => {
                            self.invalid(&scope_pointer, message);
                            None
                        }
                    },
                    other => {
                        self.invalid(&scope_pointer, format!("unknown scope {other:?}; expected grant, session, global, tool or args.PATH"));
                        None
                    }
                })
            }
        };
        let cost = match map.get("cost") {
            None => Some(Cost::Fixed(1)),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(c) => Some(Cost::Fixed(c)),
                None => {
                    self.invalid(
                        &child(pointer, "cost"),
                        format!("cost {n} must be a non-negative integer or a path"),
                    );
                    None
                }
            },
            Some(Value::String(s)) => match Path::parse(s) {
                Ok(p) => Some(Cost::Path(p)),
                Err(message) => {
                    self.invalid(&child(pointer, "cost"), message);
                    None
                }
            },
            Some(other) => {
                self.wrong_type(
                    &child(pointer, "cost"),
                    "a non-negative integer or a path",
                    other,
                );
                None
            }
        };
        let reset = match map.get("reset") {
            None => Some(Reset::Sliding),
            Some(Value::String(s)) if s == "sliding" => Some(Reset::Sliding),
            Some(Value::String(s)) if s == "calendar" => Some(Reset::Calendar),
            Some(other) => {
                self.invalid(
                    &child(pointer, "reset"),
                    format!("unknown reset {other}; expected \"sliding\" or \"calendar\""),
                );
                None
            }
        };
        let on_limit = match map.get("on_limit") {
            Some(v) => self.string(v, &child(pointer, "on_limit")),
            None => None,
        };
        Some(Limit {
            pointer: pointer.to_owned(),
            counter: counter?,
            window_ms: window_ms?,
            max: max?,
            scope: scope?,
            cost: cost?,
            reset: reset?,
            on_limit,
        })
    }

    fn window(&mut self, value: Option<&Value>, pointer: &str) -> Option<u64> {
        match value {
            None => {
                self.error(pointer, LoadErrorKind::MissingField("window"));
                None
            }
            Some(v) => match duration_from_value(v) {
                Ok(ms) => Some(ms),
                Err(message) => {
                    self.invalid(&child(pointer, "window"), message);
                    None
                }
            },
        }
    }

    fn max(&mut self, value: Option<&Value>, pointer: &str) -> Option<u64> {
        match value {
            None => {
                self.error(pointer, LoadErrorKind::MissingField("max"));
                None
            }
            Some(Value::Number(n)) if n.as_u64().is_some_and(|m| m > 0) => n.as_u64(),
            Some(other) => {
                self.invalid(
                    &child(pointer, "max"),
                    format!("max must be a positive integer, found {other}"),
                );
                None
            }
        }
    }

    fn rate_limit(&mut self, key: &str, value: &Value, pointer: &str) -> Option<Limit> {
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
            counter: format!("{key}.rate_limit"),
            window_ms,
            max,
            scope: Scope::Grant,
            cost: Cost::Fixed(1),
            reset: Reset::Sliding,
            on_limit: None,
        })
    }
}

fn expected_list(allowed: &[&str]) -> &'static str {
    // The field lists are constants; map each to its message once.
    match allowed.first().copied() {
        Some("version") => {
            "version, default, hide, all_tools, tools, approvals, description, $schema (or an x- key)"
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
