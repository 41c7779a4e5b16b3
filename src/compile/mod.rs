//! Compiling a [`Document`] into a [`Policy`]: a decision structure that does no parsing per
//! call, and the per-call procedure of the spec's section 7.

pub(crate) mod condition;

use crate::text::Text;
use std::sync::LazyLock;

use hashbrown::HashMap;
use serde_json::Value;
use smallvec::SmallVec;

use crate::approval::{approval_id, binding, canonical_json, canonical_json_by_value, fnv1a_128};
use crate::args::check_args;
use crate::decision::{Decision, Verdict};
use crate::document::{
    Action, Clause, Cost, DefaultAction, Document, Limit, Reader, Reset, Scope, Stage,
};
use crate::duration::format_duration;
use crate::error::{LoadError, LoadErrorKind, LoadErrors, StoreError};
use crate::grant::Grant;
use crate::path::Found;
use crate::pattern::{Glob, is_pattern};
use crate::source::{locate, parse_strict};
use crate::store::{ApprovalCheck, Charge, CounterKey, Outcome, Plan, ScopeKey};
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
    document: Document,
    revision: Text,
    default_rule: Text,
    default_message: Text,
    input_rule: Text,
    hide_exact: HashMap<Box<str>, usize>,
    hide_patterns: Vec<(Glob, usize)>,
    hide_rules: Vec<Text>,
    hidden_message: Text,
    exact: HashMap<Box<str>, usize>,
    patterns: Vec<(Glob, usize)>,
    entries: Vec<CompiledEntry>,
    all_tools: CompiledStage,
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

/// The first step of deciding a call, before any counter is touched.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // boxing would allocate on every call
pub enum Step<'a> {
    /// Decided without the store (denied, or allowed with no limits and no approval).
    Done(Decision),
    /// The store must apply `plan`; then pass its outcome to [`Policy::conclude`].
    Apply(Pending<'a>),
}

/// A call waiting for its store round trip.
#[derive(Debug)]
pub struct Pending<'a> {
    /// What the store must apply, atomically.
    pub plan: Plan<'a>,
    context: Context<'a>,
}

/// What concluding a call needs besides its plan: the entry whose limits the charges come
/// from, and the rules that answer it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    entry: Option<&'a CompiledEntry>,
    allow_rule: &'a Text,
    approve: Option<(&'a Text, &'a Text)>,
}

/// The result of [`Policy::prepare`]: small, so that returning it copies little; the engine
/// builds the decision itself, in place.
pub(crate) enum Prepared<'a> {
    /// Allowed without the store, by this rule.
    Allow(&'a Text),
    /// Denied by this rule, with this message.
    Deny(&'a Text, Text),
    /// The plan must go to the store.
    Store(Context<'a>),
}

impl<'a> Prepared<'a> {
    fn deny(rule: &'a Text, message: impl Into<Text>) -> Prepared<'a> {
        Prepared::Deny(rule, message.into())
    }
}

static EMPTY_ARGS: LazyLock<Value> = LazyLock::new(|| Value::Object(serde_json::Map::new()));

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
        let mut reader = Reader::new(text);
        let document = reader.document(value);
        let mut errors = reader.errors;
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

    /// How long a recorded approval stays usable, in milliseconds.
    pub fn approval_ttl_ms(&self) -> u64 {
        self.document.approval_ttl_ms
    }

    /// The index of the `hide` entry that hides `tool`, if any.
    pub(crate) fn hidden_by(&self, tool: &str) -> Option<usize> {
        if self.hide_rules.is_empty() {
            return None;
        }
        let exact = self.hide_exact.get(tool).copied();
        let pattern = self
            .hide_patterns
            .iter()
            .find(|(glob, i)| exact.is_none_or(|e| *i < e) && glob.matches(tool))
            .map(|(_, i)| *i);
        match (exact, pattern) {
            (Some(e), Some(p)) => Some(e.min(p)),
            (e, p) => e.or(p),
        }
    }

    /// The `tools` entry that governs `tool`: an exact key, else the most specific pattern.
    pub(crate) fn entry_for(&self, tool: &str) -> Option<&CompiledEntry> {
        let index = match self.exact.get(tool) {
            Some(i) => Some(*i),
            None => self
                .patterns
                .iter()
                .find(|(glob, _)| glob.matches(tool))
                .map(|(_, i)| *i),
        };
        index.and_then(|i| self.entries.get(i))
    }

    /// The key of the `tools` entry that governs `tool` (an exact name or a pattern), if any.
    pub fn matching_key(&self, tool: &str) -> Option<&str> {
        self.entry_for(tool).map(|e| &*e.key)
    }

    /// Whether `tool` is hidden (denied and removed from listings).
    pub fn is_hidden(&self, tool: &str) -> bool {
        self.hidden_by(tool).is_some()
    }

    pub(crate) fn all_tools(&self) -> &CompiledStage {
        &self.all_tools
    }

    pub(crate) fn default_action(&self) -> DefaultAction {
        self.document.default
    }

    /// Decides everything about a call that needs no store, and plans the rest.
    ///
    /// This is the sans-IO half of [`Engine::evaluate`](crate::Engine::evaluate): an async
    /// host with a remote store sends `pending.plan` to its store and passes the outcome to
    /// [`conclude`](Self::conclude).
    ///
    /// ```
    /// use mcp_policy::{CounterStore, Grant, MemoryStore, Policy, Step, Verdict};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///     "tools":{"scan":{"rate_limit":"10/minute"}}}"#).unwrap();
    /// let store = MemoryStore::new();
    /// let args = serde_json::json!({});
    /// let grant = Grant::new("alice");
    /// let decision = match policy.plan("scan", &args, &grant, 1_000) {
    ///     Step::Done(decision) => decision,
    ///     Step::Apply(pending) => {
    ///         let outcome = store.apply(&pending.plan); // a remote store would `.await` here
    ///         policy.conclude(pending, outcome)
    ///     }
    /// };
    /// assert_eq!(decision.verdict, Verdict::Allow);
    /// assert_eq!(decision.remaining, Some(9));
    /// ```
    #[inline]
    pub fn plan<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        grant: &'a Grant,
        now_ms: u64,
    ) -> Step<'a> {
        let mut plan = Plan::new(now_ms);
        match self.prepare(tool, args, grant, &mut plan) {
            Prepared::Allow(rule) => Step::Done(Decision::new(Verdict::Allow, rule.clone(), None)),
            Prepared::Deny(rule, message) => {
                Step::Done(Decision::new(Verdict::Deny, rule.clone(), Some(message)))
            }
            Prepared::Store(context) => Step::Apply(Pending { plan, context }),
        }
    }

    /// Steps 1 to 7 of the spec's procedure: decides the call, or fills `plan` (empty, with
    /// the call's time) with what the store must apply. The engine keeps the plan in its own
    /// stack frame for the whole call, so that it is never moved.
    #[inline]
    pub(crate) fn prepare<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        grant: &'a Grant,
        plan: &mut Plan<'a>,
    ) -> Prepared<'a> {
        let args: &'a Value = if args.is_null() { &EMPTY_ARGS } else { args };
        if !args.is_object() {
            return Prepared::deny(
                &self.input_rule,
                format!(
                    "arguments must be a JSON object, found {}",
                    crate::error::type_name(args)
                ),
            );
        }
        if let Err(message) = check_args(args) {
            return Prepared::deny(&self.input_rule, message);
        }
        // 1. hidden
        if let Some(i) = self.hidden_by(tool) {
            let rule = self.hide_rules.get(i).unwrap_or(&self.input_rule);
            return Prepared::deny(rule, self.hidden_message.clone());
        }
        // 2. matching entry, else default
        let entry = self.entry_for(tool);
        let allow_rule = match entry {
            None if self.document.default == DefaultAction::Deny => {
                return Prepared::deny(&self.default_rule, self.default_message.clone());
            }
            None => &self.default_rule,
            Some(e) => &e.rule,
        };
        // 3. action deny
        if let Some(e) = entry {
            if e.action == Action::Deny {
                return Prepared::deny(&e.action_rule, e.deny_message.clone());
            }
            // 4. schema
            if let Some(schema) = &e.schema {
                if !schema.validator.is_valid(args) {
                    let message = match schema.validator.validate(args) {
                        Err(error) => {
                            let at = error.instance_path().as_str().to_owned();
                            let at = if at.is_empty() {
                                "(the arguments object)".to_owned()
                            } else {
                                format!("`{at}`")
                            };
                            format!("arguments do not match the schema at {at}: {error}")
                        }
                        Ok(()) => "arguments do not match the schema".to_owned(),
                    };
                    return Prepared::deny(&schema.rule, message);
                }
            }
        }
        let tool_stage: &[CompiledStage] = match entry {
            Some(e) => std::slice::from_ref(&e.stage),
            None => &[],
        };
        let stages = tool_stage.iter().chain(std::iter::once(&self.all_tools));
        // 5. require, then deny_if: the tool's, then all_tools'
        for stage in stages.clone() {
            for condition in &stage.require {
                match condition.holds(tool, args, grant) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Prepared::deny(&condition.rule, condition.message.clone());
                    }
                    Err(e) => return Prepared::deny(&condition.rule, e.message),
                }
            }
            for clause in &stage.deny_if {
                match clause_matches(clause, tool, args, grant) {
                    Ok(false) => {}
                    Ok(true) => {
                        return Prepared::deny(&clause.rule, clause.message.clone());
                    }
                    Err((rule, message)) => return Prepared::deny(rule, message),
                }
            }
        }
        // 6. approval: the action, else the first matching approve_if (all are evaluated:
        //    an evaluation error anywhere denies).
        let mut approve: Option<(&Text, &Text)> = None;
        if let Some(e) = entry {
            if e.action == Action::Approve {
                approve = Some((&e.action_rule, &e.approve_message));
            }
        }
        for stage in stages.clone() {
            for clause in &stage.approve_if {
                match clause_matches(clause, tool, args, grant) {
                    Ok(true) => {
                        if approve.is_none() {
                            approve = Some((&clause.rule, &clause.message));
                        }
                    }
                    Ok(false) => {}
                    Err((rule, message)) => return Prepared::deny(rule, message),
                }
            }
        }
        let approval = approve.map(|_| {
            let binding = binding(&grant.id, tool, args, &self.revision);
            Box::new(ApprovalCheck {
                id: approval_id(&binding),
                binding,
                ttl_ms: self.document.approval_ttl_ms,
            })
        });
        // 7. limits: the tool's, then all_tools'
        let charges = &mut plan.charges;
        let mut index = 0usize;
        for stage in stages.clone() {
            for limit in &stage.limits {
                let key = match counter_key(limit, tool, args, grant) {
                    Ok(key) => key,
                    Err(message) => return Prepared::deny(&limit.rule, message),
                };
                let cost = match limit_cost(limit, tool, args, grant) {
                    Ok(cost) => cost,
                    Err(message) => return Prepared::deny(&limit.rule, message),
                };
                charges.push(Charge {
                    key,
                    max: limit.max,
                    cost,
                    limit: index,
                });
                index += 1;
            }
        }
        if charges.len() > 1 {
            merge_same_keys(charges);
        }
        for charge in charges.iter() {
            if charge.cost > charge.max {
                let limit = self.limit_of(entry, charge.limit);
                let rule = limit.map_or(&self.input_rule, |l| &l.rule);
                let counter = limit.map_or("", |l| &l.counter);
                return Prepared::deny(
                    rule,
                    format!(
                        "this call costs {} but counter `{counter}` admits at most {} per window; it can never fit",
                        charge.cost, charge.max
                    ),
                );
            }
        }
        if charges.is_empty() && approval.is_none() {
            return Prepared::Allow(allow_rule);
        }
        plan.approval = approval;
        Prepared::Store(Context {
            entry,
            allow_rule,
            approve,
        })
    }

    /// Turns a store's answer for `pending.plan` into the decision. A store error denies.
    #[inline]
    pub fn conclude(&self, pending: Pending<'_>, outcome: Result<Outcome, StoreError>) -> Decision {
        self.finish(&pending.plan, pending.context, outcome)
    }

    /// The limit at `index` in a call's limit list: the entry's limits, then `all_tools`'.
    fn limit_of<'p>(
        &'p self,
        entry: Option<&'p CompiledEntry>,
        index: usize,
    ) -> Option<&'p CompiledLimit> {
        let own = entry.map_or(&[][..], |e| e.stage.limits.as_slice());
        match index.checked_sub(own.len()) {
            None => own.get(index),
            Some(rest) => self.all_tools.limits.get(rest),
        }
    }

    /// Turns a store's answer into the decision (see [`conclude`](Self::conclude)).
    #[inline]
    pub(crate) fn finish(
        &self,
        plan: &Plan<'_>,
        context: Context<'_>,
        outcome: Result<Outcome, StoreError>,
    ) -> Decision {
        let Context {
            entry,
            allow_rule,
            approve,
        } = context;
        match outcome {
            Err(error) => {
                let rule = plan
                    .charges
                    .first()
                    .and_then(|c| self.limit_of(entry, c.limit))
                    .map(|l| &l.rule)
                    .or(approve.map(|(rule, _)| rule))
                    .unwrap_or(allow_rule);
                Decision::deny(rule, format!("{error}; the call is denied (fail closed)"))
            }
            Ok(Outcome::ApprovalRequired) => match (approve, &plan.approval) {
                (Some((rule, message)), Some(check)) => {
                    let mut d =
                        Decision::new(Verdict::Approve, rule.clone(), Some(message.clone()));
                    d.approval_id = Some(check.id.clone());
                    d
                }
                _ => Decision::deny(
                    allow_rule,
                    "the store asked for an approval this call does not need; denying (fail closed)",
                ),
            },
            Ok(Outcome::Limited {
                charge,
                retry_after_ms,
            }) => {
                let limit = plan
                    .charges
                    .get(charge)
                    .and_then(|c| self.limit_of(entry, c.limit));
                match limit {
                    Some(limit) => {
                        let mut d = Decision::new(
                            Verdict::Limit,
                            limit.rule.clone(),
                            Some(limit.message.clone()),
                        );
                        d.counter = Some(limit.counter.clone());
                        d.retry_after_ms = Some(retry_after_ms);
                        d
                    }
                    None => Decision::deny(
                        allow_rule,
                        "the store refused a charge the call did not make; denying (fail closed)",
                    ),
                }
            }
            Ok(Outcome::Admitted {
                remaining,
                reservation,
            }) => Decision {
                verdict: Verdict::Allow,
                rule: allow_rule.clone(),
                message: None,
                counter: None,
                retry_after_ms: None,
                remaining: if plan.charges.is_empty() {
                    None
                } else {
                    remaining
                },
                approval_id: None,
                reservation,
            },
        }
    }
}

/// Merges charges on one key into the first of them (its cost becomes their sum), keeping
/// the order of first appearance.
fn merge_same_keys(charges: &mut SmallVec<[Charge<'_>; 2]>) {
    let mut i = 1;
    while i < charges.len() {
        let (head, tail) = charges.split_at_mut(i);
        let merged = match (tail.first(), head) {
            (Some(later), head) => match head.iter_mut().find(|c| c.key == later.key) {
                Some(first) => {
                    first.cost = first.cost.saturating_add(later.cost);
                    true
                }
                None => false,
            },
            (None, _) => false,
        };
        if merged {
            charges.remove(i);
        } else {
            i += 1;
        }
    }
}

fn clause_matches<'p>(
    clause: &'p CompiledClause,
    tool: &str,
    args: &Value,
    grant: &Grant,
) -> Result<bool, (&'p Text, String)> {
    // Every condition is evaluated, so that an evaluation error anywhere denies.
    let mut all = true;
    for condition in &clause.conditions {
        match condition.holds(tool, args, grant) {
            Ok(true) => {}
            Ok(false) => all = false,
            Err(e) => return Err((&condition.rule, e.message)),
        }
    }
    Ok(all)
}

#[inline(always)]
fn counter_key<'a>(
    limit: &'a CompiledLimit,
    tool: &'a str,
    args: &'a Value,
    grant: &'a Grant,
) -> Result<CounterKey<'a>, String> {
    let scope = match &limit.scope {
        Scope::Grant => ScopeKey::Grant(&grant.id),
        Scope::Session => ScopeKey::Session(&grant.id, grant.session.as_deref()),
        Scope::Global => ScopeKey::Global,
        Scope::Tool => ScopeKey::Tool(tool),
        Scope::Arg(path) => arg_scope(limit, path, tool, args, grant)?,
    };
    Ok(CounterKey {
        counter: &limit.counter_name,
        window_ms: limit.window_ms,
        reset: limit.reset,
        scope,
    })
}

/// The scope of a counter kept per argument value (out of line: the other scopes are a copy).
#[inline(never)]
fn arg_scope<'a>(
    limit: &CompiledLimit,
    path: &crate::path::Path,
    tool: &'a str,
    args: &'a Value,
    grant: &'a Grant,
) -> Result<ScopeKey<'a>, String> {
    match path.resolve(tool, args, grant) {
        None => Err(format!(
            "counter `{}` is kept per value of `{path}`, which is missing from the call",
            limit.counter
        )),
        Some(Found::Str(s)) => Ok(ScopeKey::ArgStr(s)),
        Some(Found::Json(Value::String(s))) => Ok(ScopeKey::ArgStr(s)),
        // Numbers by value (section 4): `1` and `1.0` are one budget.
        Some(Found::Json(v)) => Ok(ScopeKey::ArgJson(canonical_json_by_value(v))),
    }
}

#[inline(always)]
fn limit_cost(
    limit: &CompiledLimit,
    tool: &str,
    args: &Value,
    grant: &Grant,
) -> Result<u64, String> {
    match &limit.cost {
        Cost::Fixed(c) => Ok(*c),
        Cost::Path(path) => path_cost(limit, path, tool, args, grant),
    }
}

/// A cost read from the call (out of line: a fixed cost is a copy).
#[inline(never)]
fn path_cost(
    limit: &CompiledLimit,
    path: &crate::path::Path,
    tool: &str,
    args: &Value,
    grant: &Grant,
) -> Result<u64, String> {
    let found = path.resolve(tool, args, grant);
    let bad = |what: &str| {
        format!(
            "the cost of counter `{}` is read from `{path}`, which {what}",
            limit.counter
        )
    };
    match found {
        None => Err(bad("is missing")),
        Some(Found::Json(Value::Number(n))) => {
            if let Some(c) = n.as_u64() {
                Ok(c)
            } else if n.as_i64().is_some_and(|i| i < 0) || n.as_f64().is_some_and(|f| f < 0.0) {
                Err(bad(&format!("is negative ({n})")))
            } else {
                match n.as_f64() {
                    Some(f)
                        if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) =>
                    {
                        Ok(f as u64)
                    }
                    _ => Err(bad(&format!("is not a non-negative integer ({n})"))),
                }
            }
        }
        Some(other) => Err(bad(&format!("is {}, not a number", other.type_name()))),
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
    let default_deny: Text = "this tool is denied by policy".into();
    let default_approve: Text = "this tool needs human approval before each call".into();
    let mut entries = Vec::new();
    let mut exact = HashMap::new();
    let mut patterns = Vec::new();
    for (i, tool) in document.tools.iter().enumerate() {
        let stage = compile_stage(&tool.stage, errors);
        let schema = tool.schema.as_ref().and_then(|schema| {
            let pointer = format!("{}/schema", tool.pointer);
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
        let rule: Text = tool.pointer.as_str().into();
        // The action's rule and messages are only ever used by deny and approve entries.
        let action_rule: Text = match tool.action {
            Action::Allow => rule.clone(),
            _ => format!("{}/action", tool.pointer).into(),
        };
        let reason: Option<Text> = tool.reason.as_deref().map(Text::from);
        let deny_message = reason.clone().unwrap_or_else(|| default_deny.clone());
        let approve_message = reason.unwrap_or_else(|| default_approve.clone());
        entries.push(CompiledEntry {
            key: tool.key.as_str().into(),
            rule,
            action: tool.action,
            action_rule,
            deny_message,
            approve_message,
            schema,
            stage,
        });
        if is_pattern(&tool.key) {
            patterns.push((Glob::new(&tool.key), i));
        } else {
            exact.insert(tool.key.clone().into_boxed_str(), i);
        }
    }
    // Most literal characters first; stable sort keeps document order on ties.
    patterns.sort_by_key(|(glob, _)| std::cmp::Reverse(glob.literal_count()));
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
        default_message: "this tool is not allowed by this policy (default: deny)".into(),
        input_rule: "".into(),
        hide_exact,
        hide_patterns,
        hide_rules,
        hidden_message: "this tool is hidden by policy".into(),
        exact,
        patterns,
        entries,
        all_tools,
    })
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
/// reported at the later limit (tools in document order, then `all_tools`).
fn check_counters(document: &Document, errors: &mut Vec<LoadError>) {
    let mut first: HashMap<&str, &Limit> = HashMap::new();
    let stages = document
        .tools
        .iter()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(counter: &str, cost: u64, limit: usize) -> Charge<'_> {
        Charge {
            key: CounterKey {
                counter,
                window_ms: 60_000,
                reset: Reset::Sliding,
                scope: ScopeKey::Global,
            },
            max: 10,
            cost,
            limit,
        }
    }

    #[test]
    fn charges_on_one_key_merge_into_the_first_in_order() {
        let mut charges: SmallVec<[Charge<'_>; 2]> = SmallVec::new();
        for (counter, cost, limit) in [
            ("a", 1, 0),
            ("b", 2, 1),
            ("a", 3, 2),
            ("c", 4, 3),
            ("b", 5, 4),
        ] {
            charges.push(charge(counter, cost, limit));
        }
        merge_same_keys(&mut charges);
        let got: Vec<(&str, u64, usize)> = charges
            .iter()
            .map(|c| (c.key.counter, c.cost, c.limit))
            .collect();
        assert_eq!(got, vec![("a", 4, 0), ("b", 7, 1), ("c", 4, 3)]);
    }
}
