//! JSON helpers for the command: strict parsing (duplicate keys are errors), loading a
//! policy with its load errors printed as `FILE:LINE:COL: POINTER: MESSAGE`, and finding the
//! line and column of the value at a JSON Pointer.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use mcp_policy::{LoadErrors, Policy};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses JSON text, rejecting a key repeated in one object (a gateway and the server behind
/// it must never read different values from one text). The error says where.
pub fn parse_strict(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    StrictSeed
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| e.to_string())
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{key}` in one object"
                )));
            }
            let value = access.next_value_seed(StrictSeed)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// A loaded policy with its source text and parsed value.
pub struct Loaded {
    pub policy: Policy,
    pub value: Value,
}

/// Loads a policy file. On failure, prints every problem to standard error as
/// `FILE:LINE:COL: POINTER: MESSAGE` and returns `Err(())`.
pub fn load_policy(path: &Path) -> Result<Loaded, ()> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{shown}: cannot read the policy: {e}");
            return Err(());
        }
    };
    match Policy::from_json_str(&text) {
        Ok(policy) => match parse_strict(&text) {
            Ok(value) => Ok(Loaded { policy, value }),
            Err(e) => {
                eprintln!("{shown}:1:1: (document): {e}");
                Err(())
            }
        },
        Err(errors) => {
            for line in load_error_lines(&shown.to_string(), &errors) {
                eprintln!("{line}");
            }
            Err(())
        }
    }
}

/// Load errors as `FILE:LINE:COL: POINTER: MESSAGE` lines (the pointer `(document)` for the
/// whole document).
pub fn load_error_lines(file: &str, errors: &LoadErrors) -> Vec<String> {
    errors
        .errors()
        .iter()
        .map(|error| {
            let (line, column) = error.position.map_or((1, 1), |p| (p.line, p.column));
            let pointer = if error.pointer.is_empty() {
                "(document)"
            } else {
                error.pointer.as_str()
            };
            format!("{file}:{line}:{column}: {pointer}: {}", error.kind)
        })
        .collect()
}

/// Escapes one JSON Pointer token.
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The positions (1-based line and column, in characters) of every value in a JSON text,
/// keyed by JSON Pointer. Built by one scan of the text.
pub struct Positions {
    at: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Indexes `text`, which should be valid JSON (on invalid text the index is partial).
    pub fn new(text: &str) -> Positions {
        let mut scanner = Scanner {
            chars: text.chars().collect(),
            i: 0,
            line: 1,
            column: 1,
            at: HashMap::new(),
        };
        scanner.value(String::new(), 0);
        Positions { at: scanner.at }
    }

    /// The position of the value at `pointer`, else of its nearest existing ancestor.
    pub fn find(&self, pointer: &str) -> (usize, usize) {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.at.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(cut) => p = p.get(..cut).unwrap_or(""),
                None => return (1, 1),
            }
        }
    }
}

struct Scanner {
    chars: Vec<char>,
    i: usize,
    line: usize,
    column: usize,
    at: HashMap<String, (usize, usize)>,
}

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn ws(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        {
            self.bump();
        }
    }

    fn string(&mut self) -> String {
        let mut raw = String::from("\"");
        self.bump();
        while let Some(c) = self.bump() {
            raw.push(c);
            match c {
                '\\' => {
                    if let Some(next) = self.bump() {
                        raw.push(next);
                    }
                }
                '"' => break,
                _ => {}
            }
        }
        serde_json::from_str(&raw).unwrap_or_default()
    }

    fn value(&mut self, pointer: String, depth: usize) {
        self.ws();
        self.at.insert(pointer.clone(), (self.line, self.column));
        if depth > 200 {
            return;
        }
        match self.peek() {
            Some('{') => {
                self.bump();
                loop {
                    self.ws();
                    match self.peek() {
                        Some('"') => {
                            let key = self.string();
                            self.ws();
                            if self.peek() == Some(':') {
                                self.bump();
                            }
                            self.value(format!("{pointer}/{}", escape(&key)), depth + 1);
                            self.ws();
                            if self.peek() == Some(',') {
                                self.bump();
                            }
                        }
                        Some('}') => {
                            self.bump();
                            return;
                        }
                        _ => return,
                    }
                }
            }
            Some('[') => {
                self.bump();
                let mut index = 0usize;
                loop {
                    self.ws();
                    match self.peek() {
                        Some(']') => {
                            self.bump();
                            return;
                        }
                        None => return,
                        Some(_) => {
                            let before = self.i;
                            self.value(format!("{pointer}/{index}"), depth + 1);
                            index += 1;
                            self.ws();
                            if self.peek() == Some(',') {
                                self.bump();
                            } else if self.i == before {
                                return;
                            }
                        }
                    }
                }
            }
            Some('"') => {
                self.string();
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | ']' | '}' | ' ' | '\t' | '\n' | '\r'))
                {
                    self.bump();
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parse_rejects_duplicates() {
        assert!(parse_strict(r#"{"a":1,"b":{"c":1}}"#).is_ok());
        let err = parse_strict(r#"{"a":{"c":1,"c":2}}"#).unwrap_err();
        assert!(err.contains("duplicate key `c`"), "{err}");
        assert!(parse_strict("{} x").is_err());
    }

    #[test]
    fn positions_of_nested_values() {
        let text = "{\n  \"tools\": {\n    \"a/b\": { \"limits\": [ {\"window\": \"minutes\"} ] }\n  },\n  \"x\": [1, \"]\\\"\", 3]\n}";
        let p = Positions::new(text);
        assert_eq!(p.find("/tools/a~1b/limits/0/window"), (3, 37));
        assert_eq!(p.find("/tools/a~1b/schema"), (3, 12));
        assert_eq!(p.find(""), (1, 1));
        assert_eq!(p.find("/x/2"), (5, 19));
    }
}
