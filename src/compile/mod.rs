//! Compiling a [`Document`] into a [`Policy`]: a decision structure that does no parsing per
//! call. Deciding a call with it is [`decide`](crate::decide)'s.

pub(crate) mod condition;

use crate::text::Text;

use hashbrown::HashMap;
use serde_json::Value;

use crate::approval::{canonical_json, fnv1a_128};
use crate::document::{
    Action, Clause, Cost, DefaultAction, Document, Entry, Limit, Reset, Scope, Stage, read,
};
use crate::duration::format_duration;
use crate::error::{LoadError, LoadErrorKind, LoadErrors};
use crate::pattern::{Glob, is_pattern};
use crate::source::{locate, parse_strict};
use crate::subject::Kind;
use condition::CompiledCondition;

/// A loaded and compiled policy, ready to decide calls. Cheap to share (`Arc`).
///
/// ```
/// use mcp_policy::Policy;
/// let policy = Policy::from_json_str(r#"{ "version": "1", "default": "deny",
///   "tools": { "start_security_scan": { "limits": [
///     { "counter": "start_security_scan_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } }"#)?;
/// assert_eq!(policy.document().tools.len(), 1);
/// # Ok::<(), mcp_policy::LoadErrors>(())
/// ```
#[derive(Debug)]
pub struct Policy {
    pub(crate) document: Document,
    pub(crate) revision: Text,
    pub(crate) default_rule: Text,
    pub(crate) input_rule: Text,
    pub(crate) hide_exact: HashMap<Box<str>, usize>,
    pub(crate) hide_patterns: Vec<(Glob, usize)>,
    pub(crate) hide_rules: Vec<Text>,
    pub(crate) tools: Section,
    pub(crate) resources: Section,
    pub(crate) prompts: Section,
    pub(crate) all_tools: CompiledStage,
}

/// One section of entries (`tools`, `resources` or `prompts`), compiled for lookup.
#[derive(Debug)]
pub(crate) struct Section {
    pub(crate) exact: HashMap<Box<str>, usize>,
    /// Patterns, most literal characters first; ties in document order.
    pub(crate) patterns: Vec<(Glob, usize)>,
    pub(crate) entries: Vec<CompiledEntry>,
    /// The message of `default: deny` for this kind.
    pub(crate) default_message: Text,
    /// The message of a hidden tool, resource or prompt.
    pub(crate) hidden_message: Text,
}

#[derive(Debug)]
pub(crate) struct CompiledEntry {
    pub(crate) key: Text,
    pub(crate) rule: Text,
    pub(crate) action: Action,
    pub(crate) action_rule: Text,
    pub(crate) deny_message: Text,
    pub(crate) approve_message: Text,
    pub(crate) schema: Option<CompiledSchema>,
    pub(crate) stage: CompiledStage,
}

pub(crate) struct CompiledSchema {
    pub(crate) rule: Text,
    pub(crate) validator: jsonschema::Validator,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub(crate) struct CompiledStage {
    pub(crate) require: Vec<CompiledCondition>,
    pub(crate) deny_if: Vec<CompiledClause>,
    pub(crate) approve_if: Vec<CompiledClause>,
    pub(crate) limits: Vec<CompiledLimit>,
}

#[derive(Debug)]
pub(crate) struct CompiledClause {
    pub(crate) rule: Text,
    pub(crate) conditions: Vec<CompiledCondition>,
    pub(crate) message: Text,
}

#[derive(Debug)]
pub(crate) struct CompiledLimit {
    pub(crate) rule: Text,
    /// The name as the decision reports it.
    pub(crate) counter: Text,
    /// The same name, for counter keys (a plain `str`: reading it costs nothing per call).
    pub(crate) counter_name: Box<str>,
    pub(crate) window_ms: u64,
    pub(crate) max: u64,
    pub(crate) scope: Scope,
    pub(crate) cost: Cost,
    pub(crate) reset: Reset,
    pub(crate) message: Text,
}

impl Policy {
    /// Loads a policy from JSON text. Every error carries its JSON Pointer and line:column.
    ///
    /// Members are read in the order the text writes them, whatever the host's serde_json
    /// features: of two `tools` patterns with as many literal characters, the one written
    /// first wins, [`Document::tools`] lists entries in document order, and errors come in
    /// document order.
    pub fn from_json_str(text: &str) -> Result<Policy, LoadErrors> {
        let value = parse_strict(text).map_err(|e| {
            LoadErrors(vec![LoadError {
                pointer: String::new(),
                position: Some(e.position),
                kind: LoadErrorKind::Syntax(e.message),
            }])
        })?;
        Policy::read(&value, Some(text)).map_err(|mut errors| {
            for error in &mut errors.0 {
                error.position = locate(text, &error.pointer);
            }
            errors
        })
    }

    /// Loads a policy from a JSON value (errors carry JSON Pointers, no positions).
    ///
    /// A value has no text, so its members are read in the map's iteration order: document
    /// order when the host's serde_json has the `preserve_order` feature, otherwise key
    /// order. That order breaks ties between `tools` patterns with as many literal characters
    /// (the first wins), and orders [`Document::tools`] and the errors. Prefer
    /// [`from_json_str`](Self::from_json_str) when the policy is text: it always keeps the
    /// text's order.
    pub fn from_value(value: &Value) -> Result<Policy, LoadErrors> {
        Policy::read(value, None)
    }

    /// Reads and compiles `value`, taking member order from `text` when there is one.
    fn read(value: &Value, text: Option<&str>) -> Result<Policy, LoadErrors> {
        let (document, mut errors) = read(value, text);
        let policy = document.and_then(|document| compile(document, value, &mut errors));
        match policy {
            Some(policy) if errors.is_empty() => Ok(policy),
            _ => {
                if errors.is_empty() {
                    errors.push(LoadError::invalid("", "the policy could not be compiled"));
                }
                Err(LoadErrors(errors))
            }
        }
    }

    /// The document this policy was compiled from.
    pub fn document(&self) -> &Document {
        &self.document
    }

    /// The policy's revision: a stable hash of its canonical JSON. Approvals are bound to it.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Whether the policy trusts the server's tool annotations (`trust_annotations`).
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny","trust_annotations":true}"#).unwrap();
    /// assert!(p.trusts_annotations());
    /// ```
    pub fn trusts_annotations(&self) -> bool {
        self.document.trust_annotations
    }

    /// How long a recorded approval stays usable, in milliseconds.
    pub fn approval_ttl_ms(&self) -> u64 {
        self.document.approval_ttl_ms
    }

    pub(crate) fn all_tools(&self) -> &CompiledStage {
        &self.all_tools
    }

    /// The compiled section of `kind`.
    pub(crate) fn section(&self, kind: Kind) -> &Section {
        match kind {
            Kind::Tool => &self.tools,
            Kind::Resource => &self.resources,
            Kind::Prompt => &self.prompts,
        }
    }

    pub(crate) fn default_action(&self) -> DefaultAction {
        self.document.default
    }
}

fn compile(document: Document, value: &Value, errors: &mut Vec<LoadError>) -> Option<Policy> {
    check_counters(&document, errors);
    let compile_stage = |stage: &Stage, errors: &mut Vec<LoadError>| -> CompiledStage {
        let mut out = CompiledStage::default();
        let cond = |c: &crate::document::Condition, errors: &mut Vec<LoadError>| {
            match CompiledCondition::compile(c) {
                Ok(c) => Some(c),
                Err((pointer, message)) => {
                    errors.push(LoadError::invalid(pointer, message));
                    None
                }
            }
        };
        out.require = stage
            .require
            .iter()
            .filter_map(|c| cond(c, errors))
            .collect();
        let clause = |c: &Clause, default: String, errors: &mut Vec<LoadError>| CompiledClause {
            rule: c.pointer.as_str().into(),
            conditions: c
                .conditions
                .iter()
                .filter_map(|c| cond(c, errors))
                .collect(),
            message: c.message.clone().unwrap_or(default).into(),
        };
        out.deny_if = stage
            .deny_if
            .iter()
            .map(|c| clause(c, format!("denied by policy rule {}", c.pointer), errors))
            .collect();
        out.approve_if = stage
            .approve_if
            .iter()
            .map(|c| {
                clause(
                    c,
                    format!("this call needs human approval (policy rule {})", c.pointer),
                    errors,
                )
            })
            .collect();
        for limit in &stage.limits {
            out.limits.push(compile_limit(limit));
        }
        out
    };
    let section = |kind: Kind, errors: &mut Vec<LoadError>| -> Section {
        let what = kind.as_str();
        let default_deny: Text = format!("this {what} is denied by policy").into();
        let each = match kind {
            Kind::Tool => "call",
            Kind::Resource => "read",
            Kind::Prompt => "use",
        };
        let default_approve: Text =
            format!("this {what} needs human approval before each {each}").into();
        let mut entries = Vec::new();
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for (i, entry) in document.section(kind).iter().enumerate() {
            entries.push(compile_entry(
                entry,
                &default_deny,
                &default_approve,
                errors,
                &compile_stage,
            ));
            if is_pattern(&entry.key) {
                patterns.push((Glob::new(&entry.key), i));
            } else {
                exact.insert(entry.key.clone().into_boxed_str(), i);
            }
        }
        // Most literal characters first; stable sort keeps document order on ties.
        patterns.sort_by_key(|(glob, _)| std::cmp::Reverse(glob.literal_count()));
        Section {
            exact,
            patterns,
            entries,
            default_message: format!("this {what} is not allowed by this policy (default: deny)")
                .into(),
            hidden_message: format!("this {what} is hidden by policy").into(),
        }
    };
    let tools = section(Kind::Tool, errors);
    let resources = section(Kind::Resource, errors);
    let prompts = section(Kind::Prompt, errors);
    let all_tools = compile_stage(&document.all_tools, errors);
    let mut hide_exact = HashMap::new();
    let mut hide_patterns = Vec::new();
    let mut hide_rules = Vec::new();
    for (i, name) in document.hide.iter().enumerate() {
        hide_rules.push(Text::from(format!("/hide/{i}")));
        if is_pattern(name) {
            hide_patterns.push((Glob::new(name), i));
        } else {
            hide_exact.entry(name.clone().into_boxed_str()).or_insert(i);
        }
    }
    let revision: Text = format!(
        "rev-{:016x}",
        (fnv1a_128(canonical_json(value).as_bytes()) >> 64) as u64
    )
    .into();
    Some(Policy {
        document,
        revision,
        default_rule: "/default".into(),
        input_rule: "".into(),
        hide_exact,
        hide_patterns,
        hide_rules,
        tools,
        resources,
        prompts,
        all_tools,
    })
}

/// One entry: its stage, schema, rules and messages.
fn compile_entry(
    entry: &Entry,
    default_deny: &Text,
    default_approve: &Text,
    errors: &mut Vec<LoadError>,
    compile_stage: &dyn Fn(&Stage, &mut Vec<LoadError>) -> CompiledStage,
) -> CompiledEntry {
    let stage = compile_stage(&entry.stage, errors);
    let schema = entry.schema.as_ref().and_then(|schema| {
        let pointer = format!("{}/schema", entry.pointer);
        match compile_schema(schema) {
            Ok(validator) => Some(CompiledSchema {
                rule: pointer.as_str().into(),
                validator,
            }),
            Err(message) => {
                errors.push(LoadError::invalid(pointer, message));
                None
            }
        }
    });
    let rule: Text = entry.pointer.as_str().into();
    // The action's rule and messages are only ever used by deny, approve and hide entries.
    let action_rule: Text = match entry.action {
        Action::Allow => rule.clone(),
        _ => format!("{}/action", entry.pointer).into(),
    };
    let reason: Option<Text> = entry.reason.as_deref().map(Text::from);
    let deny_message = reason.clone().unwrap_or_else(|| default_deny.clone());
    let approve_message = reason.unwrap_or_else(|| default_approve.clone());
    CompiledEntry {
        key: entry.key.as_str().into(),
        rule,
        action: entry.action,
        action_rule,
        deny_message,
        approve_message,
        schema,
        stage,
    }
}

fn compile_limit(limit: &Limit) -> CompiledLimit {
    let message = limit.on_limit.clone().unwrap_or_else(|| {
        format!(
            "rate limit `{}` reached: at most {} per {} ({})",
            limit.counter,
            limit.max,
            format_duration(limit.window_ms),
            limit.scope.describe()
        )
    });
    CompiledLimit {
        rule: limit.pointer.as_str().into(),
        counter: limit.counter.as_str().into(),
        counter_name: limit.counter.as_str().into(),
        window_ms: limit.window_ms,
        max: limit.max,
        scope: limit.scope.clone(),
        cost: limit.cost.clone(),
        reset: limit.reset,
        message: message.into(),
    }
}

/// Every limit naming a counter must agree on window, max, scope and reset; a conflict is
/// reported at the later limit (tools, resources and prompts in document order, then
/// `all_tools`).
fn check_counters(document: &Document, errors: &mut Vec<LoadError>) {
    let mut first: HashMap<&str, &Limit> = HashMap::new();
    let stages = document
        .tools
        .iter()
        .chain(&document.resources)
        .chain(&document.prompts)
        .map(|t| &t.stage)
        .chain(std::iter::once(&document.all_tools));
    for limit in stages.flat_map(|s| &s.limits) {
        let Some(seen) = first.get(limit.counter.as_str()) else {
            first.insert(&limit.counter, limit);
            continue;
        };
        let field = if seen.window_ms != limit.window_ms {
            Some("window")
        } else if seen.max != limit.max {
            Some("max")
        } else if !seen.scope.same_as(&limit.scope) {
            Some("scope")
        } else if seen.reset != limit.reset {
            Some("reset")
        } else {
            None
        };
        if let Some(field) = field {
            errors.push(LoadError::new(
                limit.pointer.clone(),
                LoadErrorKind::CounterConflict {
                    counter: limit.counter.clone(),
                    other: seen.pointer.clone(),
                    field,
                },
            ));
        }
    }
}

fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(format!(
            "a JSON Schema must be an object or a boolean, found {}",
            crate::error::type_name(schema)
        ));
    }
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .offline()
        .build(schema)
        .map_err(|e| {
            let at = e.schema_path().as_str().to_owned();
            if at.is_empty() {
                format!("invalid JSON Schema: {e}")
            } else {
                format!("invalid JSON Schema at `{at}`: {e}")
            }
        })
}
