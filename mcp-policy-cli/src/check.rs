//! `mcp-policy check`: load errors and warnings in `FILE:LINE:COL: …` form.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use mcp_policy::Policy;
use mcp_policy::document::{Action, Cost, DefaultAction, Document, Limit, Reset, Stage};
use mcp_policy::duration::format_duration;
use mcp_policy::pattern::{Glob, is_pattern};
use serde_json::Value;

use crate::exit::{OK, UNUSABLE};
use crate::json::{Positions, load_error_lines, parse_strict};

/// A warning: the JSON Pointer of the value it is about, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub pointer: String,
    pub message: String,
}

fn warn(out: &mut Vec<Warning>, pointer: impl Into<String>, message: impl Into<String>) {
    out.push(Warning {
        pointer: pointer.into(),
        message: message.into(),
    });
}

/// Every warning for a policy that loaded. `value` is the parsed source (to tell what was
/// written explicitly).
pub fn warnings(policy: &Policy, value: &Value) -> Vec<Warning> {
    let doc = policy.document();
    let mut out = Vec::new();
    shadowed_by_hide(doc, &mut out);
    overlapping_patterns(doc, &mut out);
    denied_entries_with_constraints(doc, &mut out);
    impossible_limits(doc, &mut out);
    allow_without_deny(doc, &mut out);
    approvals_without_ttl(doc, value, &mut out);
    sections_under_default_deny(doc, &mut out);
    out
}

/// A policy under `default: deny` without a `resources` or `prompts` section: what changed
/// for it when those sections came (they used to pass through unexamined).
fn sections_under_default_deny(doc: &Document, out: &mut Vec<Warning>) {
    if doc.default != DefaultAction::Deny {
        return;
    }
    let missing = [
        (
            doc.has_resources,
            "resources",
            "resource reads and subscriptions",
            "read",
        ),
        (doc.has_prompts, "prompts", "prompts", "use"),
    ];
    for (present, section, what, verb) in missing {
        if !present {
            warn(
                out,
                "/default",
                format!(
                    "no `{section}` section: under `default: deny` all {what} are denied and left out of lists (before the `resources` and `prompts` sections they passed through unexamined); add \"{section}\": {{\"*\": {{}}}} to let them all through, or name the ones the agent may {verb}"
                ),
            );
        }
    }
}

/// The `hide` entry (index and text) that hides `name`, in document order.
fn hider<'d>(doc: &'d Document, name: &str) -> Option<(usize, &'d str)> {
    doc.hide
        .iter()
        .enumerate()
        .find(|(_, h)| Glob::new(h).matches(name))
        .map(|(i, h)| (i, h.as_str()))
}

fn shadowed_by_hide(doc: &Document, out: &mut Vec<Warning>) {
    for entry in &doc.tools {
        // An entry that denies agrees with `hide` (scaffold writes such entries on purpose).
        if entry.action == Action::Deny {
            continue;
        }
        // For a pattern key: every name it matches is hidden when a hide pattern matches the
        // key's own text with `*` only (a sound test when the hide pattern has no `?`).
        let hidden = if is_pattern(&entry.key) {
            doc.hide
                .iter()
                .enumerate()
                .find(|(_, h)| !h.contains('?') && Glob::new(h).matches(&entry.key))
                .map(|(i, h)| (i, h.as_str()))
        } else {
            hider(doc, &entry.key)
        };
        if let Some((i, h)) = hidden {
            let what = if is_pattern(&entry.key) {
                "every tool this pattern matches"
            } else {
                "this tool"
            };
            warn(
                out,
                &entry.pointer,
                format!(
                    "{what} is hidden by /hide/{i} ({h:?}), so this entry never applies (shadowed by `hide`)"
                ),
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    One,
    Any,
}

fn tokens(pattern: &str) -> Vec<Tok> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            c => Tok::Lit(c),
        })
        .collect()
}

/// Whether some name matches both patterns: reachability in the product of the two
/// pattern automata (time proportional to the product of their lengths).
pub fn globs_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (tokens(a), tokens(b));
    let (n, m) = (a.len(), b.len());
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        let Some(slot) = seen.get_mut(i * (m + 1) + j) else {
            continue;
        };
        if *slot {
            continue;
        }
        *slot = true;
        if i == n && j == m {
            return true;
        }
        let (ta, tb) = (a.get(i).copied(), b.get(j).copied());
        // A star may match nothing.
        if ta == Some(Tok::Any) {
            stack.push((i + 1, j));
        }
        if tb == Some(Tok::Any) {
            stack.push((i, j + 1));
        }
        // Both consume one character they can agree on.
        let agree = match (ta, tb) {
            (Some(Tok::Lit(x)), Some(Tok::Lit(y))) => x == y,
            (Some(_), Some(_)) => true,
            _ => false,
        };
        if agree {
            let ni = if ta == Some(Tok::Any) { i } else { i + 1 };
            let nj = if tb == Some(Tok::Any) { j } else { j + 1 };
            if (ni, nj) != (i, j) {
                stack.push((ni, nj));
            } else {
                // Both stars: consuming a character changes nothing.
            }
        }
    }
    false
}

fn overlapping_patterns(doc: &Document, out: &mut Vec<Warning>) {
    let patterns: Vec<_> = doc.tools.iter().filter(|e| is_pattern(&e.key)).collect();
    for (k, later) in patterns.iter().enumerate() {
        let count = Glob::new(&later.key).literal_count();
        for earlier in patterns.iter().take(k) {
            if Glob::new(&earlier.key).literal_count() == count
                && globs_overlap(&earlier.key, &later.key)
            {
                warn(
                    out,
                    &later.pointer,
                    format!(
                        "pattern {:?} overlaps {:?} with equal specificity ({count} literal characters); a tool both match gets {:?} because it is written first",
                        later.key, earlier.key, earlier.key
                    ),
                );
            }
        }
    }
}

fn stage_is_empty(stage: &Stage) -> bool {
    stage.require.is_empty()
        && stage.deny_if.is_empty()
        && stage.approve_if.is_empty()
        && stage.limits.is_empty()
}

fn denied_entries_with_constraints(doc: &Document, out: &mut Vec<Warning>) {
    for entry in &doc.tools {
        if entry.action == Action::Deny && (!stage_is_empty(&entry.stage) || entry.schema.is_some())
        {
            warn(
                out,
                format!("{}/action", entry.pointer),
                "this entry always denies, so its schema, conditions and limits are never evaluated (unreachable)",
            );
        }
    }
}

fn all_limits(doc: &Document) -> impl Iterator<Item = &Limit> {
    doc.tools
        .iter()
        .flat_map(|e| e.stage.limits.iter())
        .chain(doc.all_tools.limits.iter())
}

fn impossible_limits(doc: &Document, out: &mut Vec<Warning>) {
    for limit in all_limits(doc) {
        if let Cost::Fixed(cost) = limit.cost
            && cost > limit.max
        {
            warn(
                out,
                format!("{}/cost", limit.pointer),
                format!(
                    "cost {cost} is above max {} of counter `{}`: this limit can never admit a call (every call is denied)",
                    limit.max, limit.counter
                ),
            );
        }
    }
}

fn stage_denies(stage: &Stage) -> bool {
    !stage.require.is_empty() || !stage.deny_if.is_empty()
}

fn allow_without_deny(doc: &Document, out: &mut Vec<Warning>) {
    if doc.default != DefaultAction::Allow || !doc.hide.is_empty() {
        return;
    }
    let denies_something = doc
        .tools
        .iter()
        .any(|e| e.action == Action::Deny || stage_denies(&e.stage) || e.schema.is_some())
        || stage_denies(&doc.all_tools);
    if !denies_something {
        warn(
            out,
            "/default",
            "`default: allow` with nothing hidden or denied: every tool the server has, or adds later, is allowed",
        );
    }
}

fn approvals_without_ttl(doc: &Document, value: &Value, out: &mut Vec<Warning>) {
    if value.pointer("/approvals/ttl").is_some() {
        return;
    }
    let default = format_duration(doc.approval_ttl_ms);
    let message = format!(
        "approvals are required here but `approvals.ttl` is not set: a recorded approval stays usable for the default {default}; set it explicitly"
    );
    for entry in &doc.tools {
        if entry.action == Action::Approve {
            warn(out, format!("{}/action", entry.pointer), message.clone());
        }
        for clause in &entry.stage.approve_if {
            warn(out, &clause.pointer, message.clone());
        }
    }
    for clause in &doc.all_tools.approve_if {
        warn(out, &clause.pointer, message.clone());
    }
}

/// The counters of a policy as (name, window, reset) with the pointer of their first limit.
fn counters(doc: &Document) -> Vec<(String, u64, Reset, String)> {
    let mut seen = HashSet::new();
    let mut list = Vec::new();
    for limit in all_limits(doc) {
        if seen.insert((limit.counter.clone(), limit.window_ms, limit.reset)) {
            list.push((
                limit.counter.clone(),
                limit.window_ms,
                limit.reset,
                limit.pointer.clone(),
            ));
        }
    }
    list
}

fn reset_name(reset: Reset) -> &'static str {
    match reset {
        Reset::Sliding => "sliding",
        Reset::Calendar => "calendar",
    }
}

/// Lines reporting the counters of OLD that a reload to NEW would reset.
fn against_lines(old_file: &str, old: &Loaded2, new_file: &str, new: &Loaded2) -> Vec<String> {
    let new_counters = counters(new.policy.document());
    let new_keys: BTreeSet<(String, u64, &'static str)> = new_counters
        .iter()
        .map(|(n, w, r, _)| (n.clone(), *w, reset_name(*r)))
        .collect();
    let mut lines = Vec::new();
    for (name, window, reset, pointer) in counters(old.policy.document()) {
        if new_keys.contains(&(name.clone(), window, reset_name(reset))) {
            continue;
        }
        let was = format!("{} {}", format_duration(window), reset_name(reset));
        match new_counters.iter().find(|(n, ..)| *n == name) {
            Some((_, w, r, new_pointer)) => {
                let (line, column) = new.positions.find(new_pointer);
                let now = format!("{} {}", format_duration(*w), reset_name(*r));
                lines.push(format!(
                    "{new_file}:{line}:{column}: warning: {new_pointer}: counter `{name}` resets on reload from {old_file}: its window changes from {was} to {now}"
                ));
            }
            None => {
                let (line, column) = old.positions.find(&pointer);
                lines.push(format!(
                    "{old_file}:{line}:{column}: warning: {pointer}: counter `{name}` ({was}) is not in {new_file}: its budget is dropped on reload"
                ));
            }
        }
    }
    lines
}

struct Loaded2 {
    policy: Policy,
    positions: Positions,
}

/// Loads one file for `check`: the lines to print, and the policy if it loaded.
fn load(path: &Path) -> (Vec<String>, Option<Loaded2>) {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return (
                vec![format!("{file}:1:1: (document): cannot read the file: {e}")],
                None,
            );
        }
    };
    let policy = match Policy::from_json_str(&text) {
        Ok(policy) => policy,
        Err(errors) => return (load_error_lines(&file, &errors), None),
    };
    let value = match parse_strict(&text) {
        Ok(value) => value,
        Err(e) => return (vec![format!("{file}:1:1: (document): {e}")], None),
    };
    let positions = Positions::new(&text);
    let lines = warnings(&policy, &value)
        .into_iter()
        .map(|w| {
            let (line, column) = positions.find(&w.pointer);
            let pointer = if w.pointer.is_empty() {
                "(document)"
            } else {
                w.pointer.as_str()
            };
            format!("{file}:{line}:{column}: warning: {pointer}: {}", w.message)
        })
        .collect();
    (lines, Some(Loaded2 { policy, positions }))
}

/// Runs `check`.
pub fn run(policies: &[std::path::PathBuf], against: Option<&Path>) -> u8 {
    let mut code = OK;
    let old = match against {
        None => None,
        Some(path) => match load(path) {
            (_, Some(old)) => Some((path.display().to_string(), old)),
            (lines, None) => {
                for line in lines {
                    println!("{line}");
                }
                return UNUSABLE;
            }
        },
    };
    for path in policies {
        let (lines, loaded) = load(path);
        for line in lines {
            println!("{line}");
        }
        match (loaded, &old) {
            (None, _) => code = UNUSABLE,
            (Some(new), Some((old_file, old))) => {
                for line in against_lines(old_file, old, &path.display().to_string(), &new) {
                    println!("{line}");
                }
            }
            (Some(_), None) => {}
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings_of(text: &str) -> Vec<Warning> {
        let policy = Policy::from_json_str(text).unwrap();
        warnings(&policy, &parse_strict(text).unwrap())
    }

    #[test]
    fn overlap() {
        assert!(globs_overlap("a*", "*b"));
        assert!(globs_overlap("github_*", "*_issue"));
        assert!(!globs_overlap("a*", "b*"));
        assert!(!globs_overlap("a?c", "a??c"));
        assert!(globs_overlap("a*c", "a?c"));
        assert!(globs_overlap("*", ""));
        assert!(!globs_overlap("x*y", "*z"));
    }

    #[test]
    fn each_warning() {
        let w = warnings_of(
            r#"{"version":"1","default":"allow","hide":["db_*"],"tools":{
              "db_drop":{"rate_limit":"1/minute"},
              "get_*":{}, "*_iss":{}, "list_*":{"action":"deny","limits":[{"counter":"c","window":60,"max":2,"cost":3}]},
              "pay":{"action":"approve"}}}"#,
        );
        let pointers: Vec<&str> = w.iter().map(|w| w.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/tools/db_drop",
                "/tools/*_iss",
                "/tools/list_*/action",
                "/tools/list_*/limits/0/cost",
                "/tools/pay/action"
            ]
        );
        let w = warnings_of(r#"{"version":"1","default":"allow","tools":{"a":{}}}"#);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].pointer, "/default");
        let w = warnings_of(
            r#"{"version":"1","default":"deny","approvals":{"ttl":"5m"},"tools":{"a":{"action":"approve"}},"resources":{},"prompts":{}}"#,
        );
        assert!(w.is_empty(), "{w:?}");
        // A default-deny policy written before the resources and prompts sections is told
        // what changed for it, once per missing section.
        let w = warnings_of(r#"{"version":"1","default":"deny","tools":{"a":{}},"prompts":{}}"#);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.starts_with("no `resources` section"), "{w:?}");
        assert!(warnings_of(r#"{"version":"1","default":"allow","hide":["x"]}"#).is_empty());
    }
}
