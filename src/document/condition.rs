//! Conditions (`{ "path", "op", "value", "on_deny"? }`) and the `deny_if` and `approve_if`
//! clauses that group them.

use serde_json::Value;

use super::{Clause, Condition, Op, Reader, child};
use crate::error::{LoadErrorKind, type_name};
use crate::path::Path;

const CONDITION_FIELDS: &[&str] = &["path", "op", "value", "on_deny"];
const DENY_IF_FIELDS: &[&str] = &["conditions", "on_deny"];
const APPROVE_IF_FIELDS: &[&str] = &["conditions", "reason"];

impl Reader<'_> {
    /// A list of conditions (`require`, or a clause's `conditions`) at `pointer`.
    pub(super) fn conditions(&mut self, value: &Value, pointer: &str) -> Vec<Condition> {
        let mut conditions = Vec::new();
        if let Some(items) = self.array(value, pointer) {
            for (i, item) in items.iter().enumerate() {
                if let Some(c) = self.condition(item, &format!("{pointer}/{i}")) {
                    conditions.push(c);
                }
            }
        }
        conditions
    }

    /// `deny_if`: clauses whose message is `on_deny`.
    pub(super) fn deny_if(&mut self, value: &Value, pointer: &str) -> Vec<Clause> {
        self.clauses(value, pointer, "on_deny", DENY_IF_FIELDS)
    }

    /// `approve_if`: clauses whose message is `reason`.
    pub(super) fn approve_if(&mut self, value: &Value, pointer: &str) -> Vec<Clause> {
        self.clauses(value, pointer, "reason", APPROVE_IF_FIELDS)
    }

    fn clauses(
        &mut self,
        value: &Value,
        pointer: &str,
        message_field: &str,
        fields: &[&str],
    ) -> Vec<Clause> {
        let mut clauses = Vec::new();
        let Some(items) = self.array(value, pointer) else {
            return clauses;
        };
        for (i, item) in items.iter().enumerate() {
            let clause_pointer = format!("{pointer}/{i}");
            let Some(obj) = self.object(item, &clause_pointer, fields) else {
                continue;
            };
            let conditions = match obj.get("conditions") {
                None => {
                    self.error(&clause_pointer, LoadErrorKind::MissingField("conditions"));
                    Vec::new()
                }
                Some(value) => self.conditions(value, &child(&clause_pointer, "conditions")),
            };
            let message = match obj.get(message_field) {
                Some(v) => self.string(v, &child(&clause_pointer, message_field)),
                None => None,
            };
            clauses.push(Clause {
                pointer: clause_pointer,
                conditions,
                message,
            });
        }
        clauses
    }

    /// One condition: `{ "path", "op", "value", "on_deny"? }`, its operand checked against
    /// its operator.
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
}
