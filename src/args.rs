//! Bounds on call arguments: nesting depth and size.

use serde_json::Value;

use crate::source::parse_strict;

/// Arguments nested deeper than this are denied.
pub const MAX_DEPTH: usize = 64;

/// Arguments whose compact JSON is longer than this (1 MiB) are denied.
pub const MAX_BYTES: usize = 1 << 20;

/// Checks that arguments are within [`MAX_DEPTH`] and [`MAX_BYTES`]; the error says which
/// bound was crossed. Runs in time linear in the size of the arguments, and stops early.
///
/// ```
/// use mcp_policy::args::check_args;
/// assert!(check_args(&serde_json::json!({"a": [1, 2, {"b": "c"}]})).is_ok());
/// let mut deep = serde_json::json!(1);
/// for _ in 0..70 { deep = serde_json::json!([deep]); }
/// assert_eq!(check_args(&deep).unwrap_err(), "arguments are nested deeper than 64 levels");
/// ```
pub fn check_args(args: &Value) -> Result<(), String> {
    let mut size = 0usize;
    let checked = match args {
        // The usual top level, measured here: a flat object costs no call.
        Value::Object(map) => members(map, 1, &mut size),
        other => walk(other, 1, &mut size),
    };
    checked.map_err(|bound| match bound {
        Bound::Depth => format!("arguments are nested deeper than {MAX_DEPTH} levels"),
        Bound::Size => too_large(),
    })
}

/// Which bound a walk crossed (the message is written once, at the top).
#[derive(Debug, Clone, Copy)]
enum Bound {
    Depth,
    Size,
}

fn too_large() -> String {
    format!("arguments are larger than {MAX_BYTES} bytes (1 MiB)")
}

/// `depth` counts containers: the top-level object is level 1, and a scalar adds no level.
fn walk(value: &Value, depth: usize, size: &mut usize) -> Result<(), Bound> {
    match value {
        Value::Array(items) => {
            if depth > MAX_DEPTH {
                return Err(Bound::Depth);
            }
            *size += 2 + items.len();
            for item in items {
                visit(item, depth, size)?;
            }
        }
        Value::Object(map) => {
            if depth > MAX_DEPTH {
                return Err(Bound::Depth);
            }
            members(map, depth, size)?;
        }
        scalar => *size += scalar_len(scalar),
    }
    within(*size)
}

/// The braces and members of an object at `depth` (within the depth bound).
#[inline(always)]
fn members(
    map: &serde_json::Map<String, Value>,
    depth: usize,
    size: &mut usize,
) -> Result<(), Bound> {
    *size += 2;
    for (key, item) in map {
        // The key, its quotes, the colon and a comma.
        *size += key.len() + 4;
        visit(item, depth, size)?;
    }
    Ok(())
}

/// One member of a container at `depth`: scalars are measured here, without a call.
#[inline(always)]
fn visit(item: &Value, depth: usize, size: &mut usize) -> Result<(), Bound> {
    match item {
        Value::Array(_) | Value::Object(_) => walk(item, depth + 1, size),
        scalar => {
            *size += scalar_len(scalar);
            within(*size)
        }
    }
}

#[inline(always)]
fn within(size: usize) -> Result<(), Bound> {
    if size > MAX_BYTES {
        Err(Bound::Size)
    } else {
        Ok(())
    }
}

/// The compact JSON length of a scalar (containers are measured by [`walk`]).
#[inline(always)]
fn scalar_len(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => number_len(n),
        Value::String(s) => s.len() + 2,
        Value::Array(_) | Value::Object(_) => 0,
    }
}

fn number_len(n: &serde_json::Number) -> usize {
    if let Some(u) = n.as_u64() {
        digits(u)
    } else if let Some(i) = n.as_i64() {
        1 + digits(i.unsigned_abs())
    } else {
        24
    }
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Parses argument text the way a gateway should: duplicate keys are an error (a gateway and
/// the server behind it must never read different values), and the bounds of [`check_args`]
/// apply. The arguments must be a JSON object.
///
/// ```
/// use mcp_policy::args::parse_args;
/// assert!(parse_args(r#"{"path": "/tmp/x"}"#).is_ok());
/// let err = parse_args(r#"{"path":"/tmp/x","path":"/etc/passwd"}"#).unwrap_err();
/// assert!(err.contains("duplicate key `path`"), "{err}");
/// assert!(parse_args("[1]").is_err());
/// ```
pub fn parse_args(text: &str) -> Result<Value, String> {
    if text.len() > MAX_BYTES.saturating_mul(2) {
        return Err(too_large());
    }
    let value = parse_strict(text).map_err(|e| format!("{} at {}", e.message, e.position))?;
    if !value.is_object() {
        return Err(format!(
            "arguments must be a JSON object, found {}",
            crate::error::type_name(&value)
        ));
    }
    check_args(&value)?;
    Ok(value)
}

/// Replaces every array or object nested deeper than `max_depth` levels in JSON `text` with an
/// empty one of the same kind, so that text too deep for a JSON reader's own recursion limit
/// (serde_json stops at 128) still parses, and arguments that were too deep are still too deep
/// for [`check_args`] (keep `max_depth` above [`MAX_DEPTH`] plus the levels around the
/// arguments). Text within the bound is returned as it is, without copying.
///
/// The scan reads each byte once, without recursion (one byte of memory per open container),
/// and knows strings: brackets inside a string are not nesting. Text whose brackets do not
/// pair up is returned as it is, for the parser to report: emptying a container never turns
/// malformed text into well-formed text.
///
/// ```
/// use mcp_policy::args::{cap_nesting, check_args};
/// let deep = format!("{{\"tool\":\"t\",\"args\":{{\"a\":{}1{}}}}}", "[".repeat(300), "]".repeat(300));
/// assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err()); // recursion limit
/// let line: serde_json::Value = serde_json::from_str(&cap_nesting(&deep, 100)).unwrap();
/// // The arguments are still deeper than 64 levels: the policy denies them.
/// assert_eq!(
///     check_args(&line["args"]).unwrap_err(),
///     "arguments are nested deeper than 64 levels"
/// );
/// // Within the bound, nothing changes.
/// assert_eq!(cap_nesting(r#"{"a":[["]]]"]]}"#, 3), r#"{"a":[["]]]"]]}"#);
/// ```
pub fn cap_nesting(text: &str, max_depth: usize) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    // The open containers, innermost last: what each must be closed by.
    let mut open: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut out: Option<String> = None;
    // Start of the text not yet copied into `out`.
    let mut copied = 0usize;
    // The offset of the container being emptied, while inside it.
    let mut emptying: Option<usize> = None;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                open.push(if b == b'[' { b']' } else { b'}' });
                if open.len() == max_depth + 1 && emptying.is_none() {
                    emptying = Some(i);
                }
            }
            b']' | b'}' => {
                // A closer that does not match is malformed: the parser says so.
                if open.pop() != Some(b) {
                    return std::borrow::Cow::Borrowed(text);
                }
                if open.len() == max_depth
                    && let Some(start) = emptying.take()
                {
                    let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    buf.push_str(text.get(copied..start).unwrap_or_default());
                    buf.push_str(if b == b']' { "[]" } else { "{}" });
                    copied = i + 1;
                }
            }
            _ => {}
        }
    }
    match out {
        // Unclosed containers are malformed too: left for the parser.
        Some(mut buf) if open.is_empty() => {
            buf.push_str(text.get(copied..).unwrap_or_default());
            std::borrow::Cow::Owned(buf)
        }
        _ => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn caps_only_what_is_too_deep_and_keeps_strings() {
        let text = r#"{"s":"[[[[","a":[[[1,{"b":[2]}]]],"c":{"d":{"e":{}}}}"#;
        assert_eq!(cap_nesting(text, 10), text);
        assert_eq!(
            cap_nesting(text, 3),
            r#"{"s":"[[[[","a":[[[]]],"c":{"d":{"e":{}}}}"#
        );
    }

    #[test]
    fn malformed_text_is_left_for_the_parser() {
        // Unclosed, and closed by the wrong kind deep inside what would be emptied: neither
        // may come out well-formed.
        for text in ["[[[[[", "[[[[1}]]]", "{\"a\":[[[[1]]]]"] {
            assert_eq!(cap_nesting(text, 2), text);
            assert!(parse_strict(&cap_nesting(text, 2)).is_err(), "{text}");
        }
    }

    #[test]
    fn very_deep_text_parses_and_is_denied() {
        let n = 100_000;
        let text = format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
        let value = parse_strict(&cap_nesting(&text, 100)).unwrap();
        assert_eq!(
            check_args(&value).unwrap_err(),
            "arguments are nested deeper than 64 levels"
        );
    }
}
