//! Compiled conditions: operands prepared once (regexes built, numbers typed, directories
//! normalised), tested per call without parsing (by [`decide`](crate::decide)).

use crate::text::Text;

use regex::Regex;
use serde_json::{Number, Value};
use smallvec::SmallVec;

use crate::document::{Condition, Op};
use crate::path::Path;

/// A condition ready to test.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    pub(crate) rule: Text,
    pub(crate) path: Path,
    pub(crate) op: Op,
    pub(crate) test: Test,
    /// Message when this condition fails in `require`.
    pub(crate) message: Text,
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Equal(Value),
    OneOf(Vec<Value>),
    Compare(Number),
    Regex(Regex),
    StartsWith(String),
    EndsWith(String),
    Contains(Value),
    Exists(bool),
    PathUnder(NormalPath),
}

/// A lexically normalised path: absolute or not, and its components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormalPath {
    pub(crate) absolute: bool,
    pub(crate) components: Vec<String>,
}

impl CompiledCondition {
    pub(crate) fn compile(condition: &Condition) -> Result<CompiledCondition, (String, String)> {
        let value_pointer = format!("{}/value", condition.pointer);
        let test = match condition.op {
            Op::Eq | Op::Neq => Test::Equal(condition.value.clone()),
            Op::In | Op::NotIn => {
                Test::OneOf(condition.value.as_array().cloned().unwrap_or_default())
            }
            Op::Lt | Op::Lte | Op::Gt | Op::Gte => match &condition.value {
                Value::Number(n) => Test::Compare(n.clone()),
                _ => return Err((value_pointer, "expected a number".into())),
            },
            Op::Regex | Op::NotRegex => {
                let pattern = condition.value.as_str().unwrap_or_default();
                let regex = regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .dfa_size_limit(1 << 20)
                    .build()
                    .map_err(|e| (value_pointer.clone(), regex_message(pattern, &e)))?;
                Test::Regex(regex)
            }
            Op::StartsWith => {
                Test::StartsWith(condition.value.as_str().unwrap_or_default().to_owned())
            }
            Op::EndsWith => Test::EndsWith(condition.value.as_str().unwrap_or_default().to_owned()),
            Op::Contains => Test::Contains(condition.value.clone()),
            Op::Exists => Test::Exists(condition.value.as_bool().unwrap_or(true)),
            Op::PathUnder => Test::PathUnder(normalize_owned(
                condition.value.as_str().unwrap_or_default(),
            )),
        };
        let message: Text = match &condition.on_deny {
            Some(m) => m.as_str().into(),
            None => format!(
                "requirement not met: `{}` {} {}",
                condition.path,
                condition.op.name(),
                condition.value
            )
            .into(),
        };
        Ok(CompiledCondition {
            rule: condition.pointer.as_str().into(),
            path: condition.path.clone(),
            op: condition.op,
            test,
            message,
        })
    }
}

fn regex_message(pattern: &str, error: &regex::Error) -> String {
    let text = error.to_string();
    if text.contains("look-around") || text.contains("backreference") {
        format!(
            "regex {pattern:?} needs backtracking (look-around or back-references), which the linear-time engine does not support"
        )
    } else {
        let detail = text.lines().last().unwrap_or_default().trim();
        format!("invalid regex {pattern:?}: {detail}")
    }
}

/// Normalises `path` lexically into `out` (no `.`, `..` only leading a relative path);
/// whether it is absolute.
pub(crate) fn normalize_into<'a>(path: &'a str, out: &mut SmallVec<[&'a str; 16]>) -> bool {
    let absolute = path.starts_with('/');
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|last| *last != "..") {
                    out.pop();
                } else if !absolute {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    absolute
}

pub(crate) fn normalize_owned(path: &str) -> NormalPath {
    let mut parts = SmallVec::new();
    let absolute = normalize_into(path, &mut parts);
    NormalPath {
        absolute,
        components: parts.iter().map(|s| (*s).to_owned()).collect(),
    }
}
