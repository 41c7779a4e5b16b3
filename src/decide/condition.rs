//! Testing a compiled condition against a call: JSON equality and order with numbers by
//! value, regexes, prefixes and suffixes, `contains`, `exists` and `path_under`.

use std::cmp::Ordering;

use serde_json::{Number, Value};
use smallvec::SmallVec;

use crate::compile::condition::{CompiledCondition, NormalPath, Test, normalize_into};
use crate::document::Op;
use crate::grant::Grant;
use crate::path::Found;
use crate::subject::Subject;

/// An evaluation error: a present value of the wrong type. Always denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EvalError {
    pub(crate) message: String,
}

impl CompiledCondition {
    /// Whether the condition holds for this call.
    pub(crate) fn holds(
        &self,
        subject: Subject<'_>,
        args: &Value,
        grant: &Grant,
    ) -> Result<bool, EvalError> {
        let found = self.path.resolve(subject, args, grant);
        let Some(found) = found else {
            // A missing path makes every condition false except `exists: false`.
            return Ok(matches!(self.test, Test::Exists(false)));
        };
        let result = match (&self.test, self.op) {
            (Test::Exists(expected), _) => *expected,
            (Test::Equal(v), Op::Eq) => found_eq(found, v),
            (Test::Equal(v), _) => !found_eq(found, v),
            (Test::OneOf(list), Op::In) => list.iter().any(|v| found_eq(found, v)),
            (Test::OneOf(list), _) => !list.iter().any(|v| found_eq(found, v)),
            (Test::Compare(operand), op) => {
                let Found::Json(Value::Number(n)) = found else {
                    return Err(self.type_error(found, "a number"));
                };
                let ord = compare_numbers(n, operand);
                match op {
                    Op::Lt => ord == Ordering::Less,
                    Op::Lte => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                }
            }
            (Test::Regex(regex), op) => {
                let s = found
                    .as_str()
                    .ok_or_else(|| self.type_error(found, "a string"))?;
                regex.is_match(s) == (op == Op::Regex)
            }
            (Test::StartsWith(prefix), _) => {
                let s = found
                    .as_str()
                    .ok_or_else(|| self.type_error(found, "a string"))?;
                s.starts_with(prefix.as_str())
            }
            (Test::EndsWith(suffix), _) => {
                let s = found
                    .as_str()
                    .ok_or_else(|| self.type_error(found, "a string"))?;
                s.ends_with(suffix.as_str())
            }
            (Test::Contains(needle), _) => match (found, needle) {
                (Found::Json(Value::Array(items)), _) => {
                    items.iter().any(|item| json_eq(item, needle))
                }
                (_, Value::String(sub)) if found.as_str().is_some() => {
                    found.as_str().is_some_and(|s| s.contains(sub.as_str()))
                }
                (_, _) if found.as_str().is_some() => {
                    return Err(EvalError {
                        message: format!(
                            "`{}` is a string but the contains operand {} is not; a string can only contain a string",
                            self.path, needle
                        ),
                    });
                }
                _ => return Err(self.type_error(found, "a string or an array")),
            },
            (Test::PathUnder(dir), _) => {
                let s = found
                    .as_str()
                    .ok_or_else(|| self.type_error(found, "a string"))?;
                // A `file:` URI is judged by its path in normal form, and only on this host.
                if !s
                    .get(..5)
                    .is_some_and(|head| head.eq_ignore_ascii_case("file:"))
                {
                    path_under(s, dir)
                } else {
                    match crate::uri::Uri::parse(s) {
                        Ok(uri) if uri.host().is_empty() => path_under(uri.path(), dir),
                        Ok(_) => {
                            return Err(EvalError {
                                message: format!(
                                    "cannot evaluate `{}` path_under: a file URI naming another host is never under a local directory",
                                    self.path
                                ),
                            });
                        }
                        Err(error) => {
                            return Err(EvalError {
                                message: format!(
                                    "cannot evaluate `{}` path_under: {error}",
                                    self.path
                                ),
                            });
                        }
                    }
                }
            }
        };
        Ok(result)
    }

    fn type_error(&self, found: Found<'_>, expected: &str) -> EvalError {
        EvalError {
            message: format!(
                "cannot evaluate `{}` {}: expected {expected}, found {}",
                self.path,
                self.op.name(),
                found.type_name()
            ),
        }
    }
}

/// JSON equality with numbers compared by value; strings are never coerced.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn found_eq(found: Found<'_>, value: &Value) -> bool {
    match found {
        Found::Json(v) => json_eq(v, value),
        Found::Str(s) => value.as_str() == Some(s),
    }
}

/// Total order on JSON numbers by value: exact for integers, IEEE for the rest.
pub(crate) fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    // One is a u64 above i64::MAX and the other a negative i64.
    if a.as_u64().is_some() && b.as_i64().is_some_and(|y| y < 0) {
        return Ordering::Greater;
    }
    if b.as_u64().is_some() && a.as_i64().is_some_and(|x| x < 0) {
        return Ordering::Less;
    }
    let x = a.as_f64().unwrap_or(f64::NAN);
    let y = b.as_f64().unwrap_or(f64::NAN);
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

/// Whether `path`, normalised lexically, lies at or below `dir` (a `file:` URI is read
/// into its path by the caller).
pub(crate) fn path_under(path: &str, dir: &NormalPath) -> bool {
    let mut parts: SmallVec<[&str; 16]> = SmallVec::new();
    let absolute = normalize_into(path, &mut parts);
    absolute == dir.absolute
        && parts.len() >= dir.components.len()
        && dir.components.iter().zip(parts.iter()).all(|(d, p)| d == p)
        && !(dir.components.is_empty() && !dir.absolute && parts.first() == Some(&".."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::condition::normalize_owned;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert_eq!(
            compare_numbers(&Number::from(u64::MAX), &Number::from(-1i64)),
            Ordering::Greater
        );
        assert_eq!(
            compare_numbers(&Number::from(-1i64), &Number::from(u64::MAX)),
            Ordering::Less
        );
        assert_eq!(
            compare_numbers(&Number::from(u64::MAX), &Number::from(u64::MAX - 1)),
            Ordering::Greater
        );
        let half = Number::from_f64(0.5).unwrap();
        assert_eq!(compare_numbers(&Number::from(0), &half), Ordering::Less);
    }

    #[test]
    fn path_under_normalises_lexically() {
        let tmp = normalize_owned("/tmp/");
        assert!(path_under("/tmp", &tmp));
        assert!(path_under("/tmp/a/b", &tmp));
        assert!(path_under("//tmp//a/./b", &tmp));
        assert!(!path_under("/tmp/../etc/passwd", &tmp));
        assert!(!path_under("/tmpfoo", &tmp));
        assert!(!path_under("tmp/a", &tmp));
        assert!(path_under("/../tmp/x", &tmp));
        let rel = normalize_owned("data");
        assert!(path_under("data/x", &rel));
        assert!(path_under("./data/../data/x", &rel));
        assert!(!path_under("data/../../data", &rel));
        let dot = normalize_owned(".");
        assert!(path_under("a/b", &dot));
        assert!(!path_under("../a", &dot));
        let root = normalize_owned("/");
        assert!(path_under("/etc", &root));
    }
}
