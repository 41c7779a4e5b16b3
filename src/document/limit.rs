//! Limits (`{ "counter", "window", "max", "scope"?, "cost"?, "reset"?, "on_limit"? }`): their
//! windows, maxima, scopes, costs and resets.

use serde_json::Value;

use super::{Cost, Limit, Reader, Reset, Scope, child};
use crate::duration::duration_from_value;
use crate::error::LoadErrorKind;
use crate::path::Path;

const LIMIT_FIELDS: &[&str] = &[
    "counter", "window", "max", "scope", "cost", "reset", "on_limit",
];

impl Reader<'_> {
    /// `limits` at `pointer`: a list of limits.
    pub(super) fn limits(&mut self, value: &Value, pointer: &str) -> Vec<Limit> {
        let mut limits = Vec::new();
        if let Some(items) = self.array(value, pointer) {
            for (i, item) in items.iter().enumerate() {
                if let Some(limit) = self.limit(item, &format!("{pointer}/{i}")) {
                    limits.push(limit);
                }
            }
        }
        limits
    }

    /// One limit: `{ "counter", "window", "max", "scope"?, "cost"?, "reset"?, "on_limit"? }`.
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
        let scope = self.scope(map.get("scope"), pointer);
        let cost = self.cost(map.get("cost"), pointer);
        let reset = self.reset(map.get("reset"), pointer);
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

    /// `scope`: grant (the default), session, global, tool or an argument path.
    fn scope(&mut self, value: Option<&Value>, pointer: &str) -> Option<Scope> {
        match value {
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
        }
    }

    /// `cost`: a non-negative integer (1 by default) or a path to one in the call.
    fn cost(&mut self, value: Option<&Value>, pointer: &str) -> Option<Cost> {
        match value {
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
        }
    }

    /// `reset`: sliding (the default) or calendar.
    fn reset(&mut self, value: Option<&Value>, pointer: &str) -> Option<Reset> {
        match value {
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
        }
    }

    /// `window` of the limit at `pointer`: a duration, in milliseconds.
    pub(super) fn window(&mut self, value: Option<&Value>, pointer: &str) -> Option<u64> {
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

    /// `max` of the limit at `pointer`: a positive integer.
    pub(super) fn max(&mut self, value: Option<&Value>, pointer: &str) -> Option<u64> {
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
}
