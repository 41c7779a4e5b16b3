//! `mcp-policy explain`: a readable trace of every stage one call goes through — a tool call,
//! a resource read or a prompt.
//!
//! The trace reads `policy.document()` (the section of the subject's kind); each condition is
//! evaluated by the library itself (a one-condition policy deciding the same subject, so the
//! result is exactly what `decide` computes), and the answer printed last is the real
//! [`Decision`](mcp_policy::Decision) of a fresh engine. If the trace's prediction and the
//! engine ever disagree, the trace says so.

use std::fmt::Write as _;
use std::path::Path;

use mcp_policy::document::{
    Action, Clause, Condition, Cost, DefaultAction, Document, Limit, Reset, Stage,
};
use mcp_policy::duration::format_duration;
use mcp_policy::pattern::{Glob, is_pattern};
use mcp_policy::subject::{Kind, Subject};
use mcp_policy::uri::Uri;
use mcp_policy::{Engine, Grant, Policy, Verdict};
use serde_json::{Value, json};

use crate::exit::{OK, UNUSABLE};
use crate::json::{Loaded, load_policy};

const SENTINEL: &str = "\u{0}mcp-policy-explain: condition is false\u{0}";

/// The result of one condition.
enum Holds {
    True,
    False,
    Error(String),
}

impl Holds {
    fn show(&self) -> String {
        match self {
            Holds::True => "true".into(),
            Holds::False => "false".into(),
            Holds::Error(e) => format!("evaluation error (denies): {e}"),
        }
    }
}

struct Tracer<'a> {
    value: &'a Value,
    subject: Subject<'a>,
    args: &'a Value,
    grant: &'a Grant,
    out: String,
}

impl Tracer<'_> {
    fn line(&mut self, text: impl AsRef<str>) {
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }

    /// Evaluates one condition with the library: a policy whose only rule is `require: [it]`.
    fn holds(&self, condition: &Condition) -> Holds {
        let Some(Value::Object(raw)) = self.value.pointer(&condition.pointer) else {
            return Holds::Error(format!("cannot find {} in the policy", condition.pointer));
        };
        let mut raw = raw.clone();
        raw.insert("on_deny".into(), SENTINEL.into());
        // The condition in the one place that applies to every subject of this kind.
        let stage = json!({ "require": [Value::Object(raw)] });
        let probe = match self.subject.kind() {
            Kind::Tool => json!({ "version": "1", "default": "allow", "all_tools": stage }),
            Kind::Resource => {
                json!({ "version": "1", "default": "allow", "resources": { "*": stage } })
            }
            Kind::Prompt => {
                json!({ "version": "1", "default": "allow", "prompts": { "*": stage } })
            }
        };
        let policy = match Policy::from_value(&probe) {
            Ok(p) => p,
            Err(e) => return Holds::Error(e.to_string()),
        };
        let d = Engine::new(policy).decide(self.subject, self.args, self.grant);
        match (d.verdict, d.message.as_deref()) {
            (Verdict::Allow, _) => Holds::True,
            (_, Some(SENTINEL)) => Holds::False,
            (_, message) => Holds::Error(message.unwrap_or("denied").to_owned()),
        }
    }

    fn describe(&self, c: &Condition) -> String {
        format!("{} {} {}", c.path, c.op.name(), c.value)
    }

    /// Traces require and deny_if of one stage; returns the deciding rule if the call is denied.
    fn conditions(&mut self, stage: &Stage, whose: &str) -> Option<String> {
        if stage.require.is_empty() && stage.deny_if.is_empty() {
            self.line(format!("   {whose}: no require or deny_if"));
            return None;
        }
        for c in &stage.require {
            let holds = self.holds(c);
            self.line(format!(
                "   {}: require {} → {}",
                c.pointer,
                self.describe(c),
                holds.show()
            ));
            if !matches!(holds, Holds::True) {
                self.line("   → denied here (a require that does not hold, or errs, denies)");
                return Some(c.pointer.clone());
            }
        }
        for clause in &stage.deny_if {
            if let Some(rule) = self.clause(clause, "deny_if") {
                self.line("   → denied here");
                return Some(rule);
            }
        }
        None
    }

    /// Traces a clause; `Some(rule)` when it matches (or errs: the erring condition's rule).
    fn clause(&mut self, clause: &Clause, kind: &str) -> Option<String> {
        let mut all = true;
        let mut error = None;
        let mut lines = Vec::new();
        for c in &clause.conditions {
            let holds = self.holds(c);
            lines.push(format!(
                "      {}: {} → {}",
                c.pointer,
                self.describe(c),
                holds.show()
            ));
            match holds {
                Holds::True => {}
                Holds::False => all = false,
                Holds::Error(_) => {
                    if error.is_none() {
                        error = Some(c.pointer.clone());
                    }
                }
            }
        }
        let verdict = match (&error, all) {
            (Some(_), _) => "evaluation error (denies)",
            (None, true) if clause.conditions.is_empty() => "matches (no conditions: always)",
            (None, true) => "matches (all conditions hold)",
            (None, false) => "does not match",
        };
        self.line(format!("   {}: {kind} → {verdict}", clause.pointer));
        for l in lines {
            self.line(l);
        }
        match error {
            Some(rule) => Some(rule),
            None if all => Some(clause.pointer.clone()),
            None => None,
        }
    }
}

fn limit_line(limit: &Limit) -> String {
    let cost = match &limit.cost {
        Cost::Fixed(c) => c.to_string(),
        Cost::Path(p) => format!("the value at {p}"),
    };
    let reset = match limit.reset {
        Reset::Sliding => "sliding",
        Reset::Calendar => "calendar",
    };
    format!(
        "   {}: counter `{}`: at most {} per {} ({reset}), per {}, cost {cost}",
        limit.pointer,
        limit.counter,
        limit.max,
        format_duration(limit.window_ms),
        limit.scope.describe()
    )
}

/// Produces the trace and the predicted deciding rule (`None`: the trace could not predict).
fn trace(doc: &Document, policy: &Policy, t: &mut Tracer<'_>) -> Option<String> {
    let kind = t.subject.kind();
    let name = t.subject.name();
    // 1. hide
    if kind != Kind::Tool {
        t.line(format!(
            "1. hide: the top-level `hide` names tools only (a {kind} is hidden by `action: hide`)"
        ));
    } else {
        let hidden = doc
            .hide
            .iter()
            .enumerate()
            .find(|(_, h)| Glob::new(h).matches(name));
        match hidden {
            Some((i, h)) => {
                t.line(format!(
                    "1. hide: `{name}` is hidden by /hide/{i} ({h:?}) → deny"
                ));
                return Some(format!("/hide/{i}"));
            }
            None if doc.hide.is_empty() => t.line("1. hide: nothing is hidden"),
            None => t.line(format!(
                "1. hide: not hidden (checked {} entries)",
                doc.hide.len()
            )),
        }
    }
    // 2. entry
    let section = doc.section(kind);
    let key = policy.matching_key_of(t.subject);
    let entry = key.and_then(|k| section.iter().find(|e| e.key == k));
    let matching: Vec<&str> = section
        .iter()
        .filter(|e| is_pattern(&e.key) && Glob::new(&e.key).matches(name))
        .map(|e| e.key.as_str())
        .collect();
    let Some(entry) = entry else {
        let default = match doc.default {
            DefaultAction::Allow => "allow",
            DefaultAction::Deny => "deny",
        };
        t.line(format!(
            "2. entry: no `{}` key matches `{name}` → default: {default} (rule /default)",
            kind.section()
        ));
        if doc.default == DefaultAction::Deny {
            return Some("/default".into());
        }
        if kind == Kind::Tool {
            t.line("   the call goes on with `all_tools` only");
        } else {
            t.line(format!(
                "   nothing else applies (`all_tools` is for tools only): the {kind} is allowed"
            ));
        }
        return stages(doc, None, t).or(Some("/default".into()));
    };
    if is_pattern(&entry.key) {
        let count = Glob::new(&entry.key).literal_count();
        let mut why = format!(
            "2. entry: {} — pattern {:?} ({count} literal characters)",
            entry.pointer, entry.key
        );
        let others: Vec<String> = matching
            .iter()
            .filter(|k| **k != entry.key)
            .map(|k| format!("{k:?} ({})", Glob::new(k).literal_count()))
            .collect();
        if others.is_empty() {
            why.push_str("; no other key matches");
        } else {
            let _ = write!(
                why,
                "; also matching: {}; the pattern with the most literal characters wins, a tie goes to the one written first",
                others.join(", ")
            );
        }
        t.line(why);
    } else {
        let mut why = format!("2. entry: {} — exact key", entry.pointer);
        if !matching.is_empty() {
            let _ = write!(
                why,
                " (beats the matching patterns {})",
                matching
                    .iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        t.line(why);
    }
    // 3. action
    match entry.action {
        Action::Deny => {
            t.line(format!(
                "3. action: deny → deny ({})",
                entry.reason.as_deref().unwrap_or("no reason given")
            ));
            return Some(format!("{}/action", entry.pointer));
        }
        Action::Hide => {
            t.line("3. action: hide → denied as if it did not exist, and left out of lists");
            return Some(format!("{}/action", entry.pointer));
        }
        Action::Allow => t.line("3. action: allow"),
        Action::Approve => t.line("3. action: approve (checked at stage 6)"),
    }
    // 4. schema
    match &entry.schema {
        None if kind == Kind::Resource => t.line("4. schema: none (a read has no arguments)"),
        None => t.line("4. schema: none"),
        Some(schema) => {
            let validator = jsonschema::options()
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .offline()
                .build(schema);
            match validator {
                Ok(v) => {
                    let errors: Vec<String> = v
                        .iter_errors(t.args)
                        .take(5)
                        .map(|e| format!("at `{}`: {e}", e.instance_path().as_str()))
                        .collect();
                    if errors.is_empty() {
                        t.line("4. schema: the arguments match");
                    } else {
                        t.line("4. schema: the arguments do not match → deny");
                        for e in errors {
                            t.line(format!("   {e}"));
                        }
                        return Some(format!("{}/schema", entry.pointer));
                    }
                }
                Err(e) => t.line(format!(
                    "4. schema: cannot be compiled here ({e}); see the answer"
                )),
            }
        }
    }
    stages(doc, Some(entry), t).or_else(|| Some(entry.pointer.clone()))
}

/// Stages 5–7; `Some(rule)` when one of them decides.
fn stages(
    doc: &Document,
    entry: Option<&mcp_policy::document::ToolEntry>,
    t: &mut Tracer<'_>,
) -> Option<String> {
    // `all_tools` applies to tools only.
    let kind = t.subject.kind();
    let empty = Stage::default();
    let all_tools = if kind == Kind::Tool {
        t.line("5. require, then deny_if (the tool's, then all_tools'):");
        &doc.all_tools
    } else {
        t.line(format!(
            "5. require, then deny_if (the {kind}'s entry; `all_tools` is for tools only):"
        ));
        &empty
    };
    if let Some(e) = entry
        && let Some(rule) = t.conditions(&e.stage, &e.pointer)
    {
        return Some(rule);
    }
    if kind == Kind::Tool
        && let Some(rule) = t.conditions(all_tools, "/all_tools")
    {
        return Some(rule);
    }
    t.line("6. approval:");
    let mut approve: Option<String> = None;
    if let Some(e) = entry.filter(|e| e.action == Action::Approve) {
        t.line(format!(
            "   {}/action: approve → this call needs a recorded approval",
            e.pointer
        ));
        approve = Some(format!("{}/action", e.pointer));
    }
    let clauses: Vec<&Clause> = entry
        .map(|e| e.stage.approve_if.iter())
        .into_iter()
        .flatten()
        .chain(all_tools.approve_if.iter())
        .collect();
    for clause in clauses {
        let matched = t.clause(clause, "approve_if");
        let errs = matched.as_ref().is_some_and(|rule| *rule != clause.pointer);
        if errs {
            t.line("   → denied here (an evaluation error in approve_if denies)");
            return matched;
        }
        if approve.is_none() {
            approve = matched;
        }
    }
    match &approve {
        Some(rule) => t.line(format!(
            "   → approve ({rule}), unless a recorded approval for this exact call exists (this fresh engine has none)"
        )),
        None => t.line("   no approval needed"),
    }
    if approve.is_some() {
        return approve;
    }
    t.line("7. limits (all-or-nothing; the counters here are fresh):");
    let limits: Vec<&Limit> = entry
        .map(|e| e.stage.limits.iter())
        .into_iter()
        .flatten()
        .chain(all_tools.limits.iter())
        .collect();
    if limits.is_empty() {
        t.line("   none");
    }
    for limit in limits {
        t.line(limit_line(limit));
    }
    None
}

/// Runs `explain` for the `kind` named `name` (a resource's URI as given).
pub fn run(
    policy_path: &Path,
    kind: Kind,
    name: &str,
    args: &str,
    grant_id: &str,
    session: Option<&str>,
) -> u8 {
    let Ok(Loaded { policy, value, .. }) = load_policy(policy_path) else {
        return UNUSABLE;
    };
    let args = match mcp_policy::args::parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("--args: {e}");
            return UNUSABLE;
        }
    };
    let uri = match kind {
        Kind::Resource => match Uri::parse(name) {
            Ok(uri) => Some(uri),
            Err(e) => {
                eprintln!("--resource: cannot read the URI: {e}");
                return UNUSABLE;
            }
        },
        _ => None,
    };
    let subject = match (kind, &uri) {
        (_, Some(uri)) => Subject::Resource(uri),
        (Kind::Prompt, _) => Subject::Prompt(name),
        _ => Subject::Tool(name),
    };
    if kind == Kind::Resource && args.as_object().is_some_and(|a| !a.is_empty()) {
        eprintln!("--args: a resource read has no arguments (its conditions read `uri`)");
        return UNUSABLE;
    }
    let mut grant = Grant::new(grant_id);
    if let Some(s) = session {
        grant = grant.with_session(s);
    }
    let mut t = Tracer {
        value: &value,
        subject,
        args: &args,
        grant: &grant,
        out: String::new(),
    };
    t.line(format!(
        "policy: {} ({})",
        policy_path.display(),
        policy.revision()
    ));
    let normal = subject.name();
    let what = if normal == name {
        format!("{kind} `{normal}`")
    } else {
        format!("{kind} `{normal}` (normal form of `{name}`)")
    };
    t.line(format!(
        "call:   {what}, grant `{}`{}, args {args}",
        grant.id,
        session.map_or_else(
            || " (no session)".to_owned(),
            |s| format!(", session `{s}`")
        )
    ));
    let predicted = trace(policy.document(), &policy, &mut t);
    let decision = Engine::new(policy).decide(subject, &args, &grant);
    let label = decision.reservation.as_ref().map(|_| "r-1");
    t.line(format!(
        "8. answer: {} (rule {}){}",
        decision.verdict,
        decision.rule,
        if decision.hidden {
            " — hidden: answered as if it did not exist"
        } else {
            ""
        }
    ));
    if let Some(m) = &decision.message {
        t.line(format!("   message: {m}"));
    }
    t.line(format!("   {}", decision.to_json_string(label)));
    if predicted.as_deref().is_some_and(|p| p != &*decision.rule) {
        t.line(format!(
            "   note: the trace above expected rule {}, but the engine decided by {}; the answer is the engine's",
            predicted.unwrap_or_default(),
            decision.rule
        ));
    }
    print!("{}", t.out);
    OK
}
