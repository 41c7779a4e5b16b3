//! JSON source text: strict parsing (duplicate keys rejected) and mapping a JSON Pointer back to
//! the line and column of its value.
//!
//! Policies and argument text are parsed here so that a gateway and the server behind it can
//! never read different values from one text: `{"path":"/tmp/x","path":"/etc/passwd"}` is an
//! error, not "the last one wins".

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Position;

/// A syntax error in JSON text (or a repeated key), with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct SyntaxError {
    /// What is wrong, lowercase.
    pub message: String,
    /// Where.
    pub position: Position,
}

/// Parses untrusted JSON text strictly: a key repeated in one object is an error (a gateway
/// and the server behind it must never read different values), and nesting deeper than 128
/// levels is an error rather than a stack overflow.
///
/// ```
/// use mcp_policy::source::parse_json;
/// assert!(parse_json(r#"{"a": [1, 2]}"#).is_ok());
/// let err = parse_json("{\"a\": 1,\n \"a\": 2}").unwrap_err();
/// assert_eq!(err.to_string(), "2:4: duplicate key `a` in one object");
/// ```
pub fn parse_json(text: &str) -> Result<Value, SyntaxError> {
    parse_strict(text)
}

/// Parses JSON text into a [`Value`], rejecting duplicate object keys.
///
/// Nesting is bounded by serde_json's recursion limit (128), so no input overflows the stack.
pub(crate) fn parse_strict(text: &str) -> Result<Value, SyntaxError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictSeed.deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    value.map_err(|e| {
        let message = e.to_string();
        // serde_json appends " at line L column C"; the position is reported separately.
        let message = match message.rfind(" at line ") {
            Some(cut) => message.get(..cut).unwrap_or(&message).to_string(),
            None => message,
        };
        SyntaxError {
            message,
            position: Position {
                line: e.line().max(1),
                column: e.column().max(1),
            },
        }
    })
}

/// A JSON value read strictly: a key repeated in one object is an error.
pub(crate) struct StrictSeed;

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
    fn visit_none<E>(self) -> Result<Value, E> {
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

/// Escapes one reference token of a JSON Pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Splits a JSON Pointer into unescaped tokens; `None` if it is not a valid pointer.
pub(crate) fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/').map(unescape_token).collect()
}

fn unescape_token(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Finds the line and column of the value at `pointer` in `text` (which must be valid JSON).
///
/// When the pointer goes past the values present (a missing field), the position of the
/// deepest existing value on the way is returned. Returns `None` only for text that is not JSON.
///
/// ```
/// use mcp_policy::source::locate;
/// let text = "{\n  \"tools\": {\"a\": 1}\n}";
/// let at = locate(text, "/tools/a").unwrap();
/// assert_eq!((at.line, at.column), (2, 18));
/// ```
pub fn locate(text: &str, pointer: &str) -> Option<Position> {
    let tokens = pointer_tokens(pointer)?;
    let (pos, _) = find_value(text, &tokens)?;
    Some(position_of(text, pos))
}

/// The keys of the object at `pointer` in `text` (which must be valid JSON), in the order the
/// text writes them; `None` when the pointer does not reach a value or that value is not an
/// object.
///
/// One linear scan: `serde_json::Map` keeps keys sorted unless the host turns on serde_json's
/// `preserve_order`, so the policy reader takes document order from the text itself.
pub(crate) fn object_keys<'t>(text: &'t str, pointer: &str) -> Option<Vec<Cow<'t, str>>> {
    let tokens = pointer_tokens(pointer)?;
    let (pos, reached) = find_value(text, &tokens)?;
    if reached != tokens.len() {
        return None;
    }
    let bytes = text.as_bytes();
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    let mut keys = Vec::new();
    let mut p = skip_ws(bytes, pos + 1);
    while bytes.get(p) == Some(&b'"') {
        let key_end = skip_string(bytes, p)?;
        keys.push(string_at(text, p, key_end)?);
        p = skip_ws(bytes, key_end);
        if bytes.get(p) != Some(&b':') {
            return None;
        }
        p = skip_ws(bytes, skip_value(bytes, skip_ws(bytes, p + 1))?);
        if bytes.get(p) == Some(&b',') {
            p = skip_ws(bytes, p + 1);
        }
    }
    (bytes.get(p) == Some(&b'}')).then_some(keys)
}

/// The string whose quotes are at `start` and `end - 1`: borrowed when it has no escapes.
fn string_at(text: &str, start: usize, end: usize) -> Option<Cow<'_, str>> {
    let quoted = text.get(start..end)?;
    match quoted.get(1..quoted.len().checked_sub(1)?) {
        Some(plain) if !plain.contains('\\') => Some(Cow::Borrowed(plain)),
        _ => serde_json::from_str::<String>(quoted).ok().map(Cow::Owned),
    }
}

/// Walks `tokens` from the root of `text`: the byte offset of the deepest value reached, and
/// how many tokens were followed to it. `None` only for text that is not JSON.
fn find_value(text: &str, tokens: &[String]) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut pos = skip_ws(bytes, 0);
    let mut reached = 0;
    'tokens: for token in tokens {
        match bytes.get(pos) {
            Some(b'{') => {
                let mut p = skip_ws(bytes, pos + 1);
                while bytes.get(p) == Some(&b'"') {
                    let key_end = skip_string(bytes, p)?;
                    let key = string_at(text, p, key_end)?;
                    p = skip_ws(bytes, key_end);
                    if bytes.get(p) != Some(&b':') {
                        return None;
                    }
                    p = skip_ws(bytes, p + 1);
                    if key == token.as_str() {
                        pos = p;
                        reached += 1;
                        continue 'tokens;
                    }
                    p = skip_ws(bytes, skip_value(bytes, p)?);
                    if bytes.get(p) == Some(&b',') {
                        p = skip_ws(bytes, p + 1);
                    }
                }
                break;
            }
            Some(b'[') => {
                let Ok(index) = token.parse::<usize>() else {
                    break;
                };
                let mut p = skip_ws(bytes, pos + 1);
                let mut i = 0;
                while bytes.get(p).is_some_and(|b| *b != b']') {
                    if i == index {
                        pos = p;
                        reached += 1;
                        continue 'tokens;
                    }
                    p = skip_ws(bytes, skip_value(bytes, p)?);
                    if bytes.get(p) == Some(&b',') {
                        p = skip_ws(bytes, p + 1);
                    }
                    i += 1;
                }
                break;
            }
            _ => break,
        }
    }
    Some((pos, reached))
}

/// The 1-based line and column (in characters) of a byte offset.
pub(crate) fn position_of(text: &str, offset: usize) -> Position {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Position { line, column }
}

fn skip_ws(bytes: &[u8], mut p: usize) -> usize {
    while bytes
        .get(p)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        p += 1;
    }
    p
}

/// Given `p` at an opening quote, returns the offset just past the closing quote.
fn skip_string(bytes: &[u8], p: usize) -> Option<usize> {
    let mut q = p + 1;
    loop {
        match bytes.get(q)? {
            b'\\' => q += 2,
            b'"' => return Some(q + 1),
            _ => q += 1,
        }
    }
}

/// Skips one JSON value starting at `p` without recursion; returns the offset just past it.
fn skip_value(bytes: &[u8], p: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut q = p;
    loop {
        match bytes.get(q)? {
            b'"' => {
                q = skip_string(bytes, q)?;
                if depth == 0 {
                    return Some(q);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return Some(q);
                }
                depth -= 1;
                if depth == 0 {
                    return Some(q + 1);
                }
            }
            b',' if depth == 0 => return Some(q),
            b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some(q),
            _ => {}
        }
        q += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_with_position() {
        let err = parse_strict("{\"path\":\"/tmp/x\",\n \"path\":\"/etc/passwd\"}").unwrap_err();
        assert!(
            err.message.contains("duplicate key `path`"),
            "{}",
            err.message
        );
        assert_eq!(err.position.line, 2);
    }

    #[test]
    fn nested_duplicates_are_found() {
        assert!(parse_strict(r#"{"a":[{"b":1,"b":2}]}"#).is_err());
        assert!(parse_strict(r#"{"a":[{"b":1,"c":2}]}"#).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        let err = parse_strict(&text).unwrap_err();
        assert!(err.message.contains("recursion limit"), "{}", err.message);
    }

    #[test]
    fn locate_finds_nested_values() {
        let text =
            "{\n  \"tools\": {\n    \"a/b\": { \"limits\": [ {\"window\": \"minutes\"} ] }\n  }\n}";
        let pos = locate(text, "/tools/a~1b/limits/0/window").unwrap();
        assert_eq!((pos.line, pos.column), (3, 37));
        assert_eq!(&text[text.find("\"minutes\"").unwrap()..][..1], "\"");
        // A missing member falls back to the deepest existing value.
        let pos = locate(text, "/tools/a~1b/schema").unwrap();
        assert_eq!((pos.line, pos.column), (3, 12));
        assert_eq!(locate(text, "").unwrap(), Position { line: 1, column: 1 });
    }

    #[test]
    fn locate_skips_strings_with_brackets_and_escapes() {
        let text = r#"{"a": "x]\"}{", "b": [1, {"c": "]"}, 3], "d": 4}"#;
        let pos = locate(text, "/d").unwrap();
        assert_eq!(pos.column, text.find('4').unwrap() + 1);
        let pos = locate(text, "/b/2").unwrap();
        assert_eq!(pos.column, text.find('3').unwrap() + 1);
    }

    #[test]
    fn object_keys_are_in_text_order() {
        let text = r#"{"tools": {"z*_x": {"a": [1, "}"]}, "a\u002a_x": {"b": 1}, "m": "x"},
            "e": {}}"#;
        assert_eq!(object_keys(text, "/tools").unwrap(), ["z*_x", "a*_x", "m"]);
        assert!(matches!(
            object_keys(text, "/tools").unwrap()[0],
            Cow::Borrowed(_)
        ));
        assert_eq!(object_keys(text, "").unwrap(), ["tools", "e"]);
        assert!(object_keys(text, "/e").unwrap().is_empty());
        assert_eq!(object_keys(text, "/tools/a*_x").unwrap(), ["b"]);
        // Not an object, or not there: no keys (not the deepest value on the way).
        assert!(object_keys(text, "/tools/m").is_none());
        assert!(object_keys(text, "/tools/z*_x/a").is_none());
        assert!(object_keys(text, "/missing").is_none());
        assert!(object_keys(text, "/tools/missing").is_none());
        assert!(object_keys(text, "no pointer").is_none());
    }

    #[test]
    fn object_keys_agree_with_the_parsed_map() {
        let text = r#"{"b": 1, "a\"q": {"x": [1, {"y": 2}]}, "c\\": "]", "é": null}"#;
        let keys = object_keys(text, "").unwrap();
        assert_eq!(keys, ["b", "a\"q", "c\\", "é"]);
        let Value::Object(map) = parse_strict(text).unwrap() else {
            panic!("an object")
        };
        let mut sorted: Vec<&str> = keys.iter().map(|k| k.as_ref()).collect();
        sorted.sort_unstable();
        assert_eq!(sorted, map.keys().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn pointer_tokens_unescape() {
        assert_eq!(pointer_tokens("/a~1b/c~0d").unwrap(), vec!["a/b", "c~d"]);
        assert!(pointer_tokens("a").is_none());
        assert!(pointer_tokens("/a~2").is_none());
        assert_eq!(escape_pointer_token("a/b~c"), "a~1b~0c");
    }
}
