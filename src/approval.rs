//! Approval bindings: canonical JSON and stable ids.
//!
//! An approval is bound to the grant id, the tool, the arguments (canonical JSON: keys sorted,
//! no whitespace) and the policy revision. Its id is a stable 128-bit FNV-1a hash of that
//! binding, so every replica computes the same id for the same call; stores keep the full
//! binding and compare it exactly, so a hash collision can never approve a different call.

use serde_json::Value;

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace.
///
/// ```
/// let v = serde_json::json!({"b": [1, {"d": true, "c": null}], "a": "x"});
/// assert_eq!(mcp_policy::approval::canonical_json(&v), r#"{"a":"x","b":[1,{"c":null,"d":true}]}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out, false);
    into_string(out)
}

/// Canonical JSON in which numbers are written by value: an integral float is written as the
/// integer it equals (`1.0` → `1`, `-0.0` → `0`). Two values that are equal under the spec's
/// JSON equality (numbers compared by value) get the same text; used to key `args.PATH`
/// counter scopes, so that `1` and `1.0` draw on one budget.
pub(crate) fn canonical_json_by_value(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out, true);
    into_string(out)
}

/// Only JSON text, which is UTF-8, is ever written into these buffers.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_default()
}

/// Writes `n` by value: an integral float in the 64-bit integer range as that integer.
fn write_number_by_value(n: &serde_json::Number, out: &mut Vec<u8>) {
    let integral = n.as_f64().filter(|f| {
        n.is_f64()
            && f.fract() == 0.0
            && (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(f)
    });
    // Writing into a Vec cannot fail.
    let _ = match integral {
        Some(f) if f < 0.0 => serde_json::to_writer(&mut *out, &(f as i64)),
        Some(f) => serde_json::to_writer(&mut *out, &(f as u64)),
        None => serde_json::to_writer(&mut *out, n),
    };
}

/// Appends canonical JSON to `out` without allocating per key or scalar.
fn write_canonical(value: &Value, out: &mut Vec<u8>, by_value: bool) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                write_canonical(v, out, by_value);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out, by_value);
            }
            out.push(b']');
        }
        Value::Number(n) if by_value => write_number_by_value(n, out),
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// The binding text of a call: canonical JSON of `[grant id, tool, arguments, revision]`.
pub fn binding(grant_id: &str, tool: &str, args: &Value, revision: &str) -> String {
    let mut out = vec![b'['];
    let _ = serde_json::to_writer(&mut out, grant_id);
    out.push(b',');
    let _ = serde_json::to_writer(&mut out, tool);
    out.push(b',');
    write_canonical(args, &mut out, false);
    out.push(b',');
    let _ = serde_json::to_writer(&mut out, revision);
    out.push(b']');
    into_string(out)
}

/// The binding of a resource or prompt request: as [`binding`], with the kind after the
/// revision, so that no tool's approval is ever a resource's or a prompt's of the same name.
///
/// ```
/// use mcp_policy::approval::{binding, binding_of};
/// use mcp_policy::subject::Kind;
/// let args = serde_json::json!({});
/// assert_ne!(binding_of(Kind::Prompt, "alice", "greet", &args, "r1"), binding("alice", "greet", &args, "r1"));
/// assert!(binding_of(Kind::Prompt, "alice", "greet", &args, "r1").ends_with(r#","prompt"]"#));
/// ```
pub fn binding_of(
    kind: crate::subject::Kind,
    grant_id: &str,
    name: &str,
    args: &Value,
    revision: &str,
) -> String {
    let mut out = binding(grant_id, name, args, revision);
    if kind != crate::subject::Kind::Tool {
        out.pop();
        out.push_str(",\"");
        out.push_str(kind.as_str());
        out.push_str("\"]");
    }
    out
}

/// 128-bit FNV-1a.
pub(crate) fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut hash = OFFSET;
    for b in bytes {
        hash ^= u128::from(*b);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// The approval id of a binding: `ap-` and 32 hex digits.
pub fn approval_id(binding: &str) -> String {
    format!("ap-{:032x}", fnv1a_128(binding.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_depend_on_every_part_of_the_binding() {
        let args = json!({"amount": 5});
        let base = approval_id(&binding("g", "t", &args, "r1"));
        assert_ne!(base, approval_id(&binding("h", "t", &args, "r1")));
        assert_ne!(base, approval_id(&binding("g", "u", &args, "r1")));
        assert_ne!(
            base,
            approval_id(&binding("g", "t", &json!({"amount": 6}), "r1"))
        );
        assert_ne!(base, approval_id(&binding("g", "t", &args, "r2")));
        assert_eq!(
            base,
            approval_id(&binding("g", "t", &json!({"amount": 5}), "r1"))
        );
        assert_eq!(base.len(), 35);
    }

    #[test]
    fn binding_is_unambiguous() {
        assert_ne!(
            binding("a\",\"b", "c", &json!({}), "r"),
            binding("a", "b\",\"c", &json!({}), "r")
        );
    }

    #[test]
    fn by_value_canonical_json_writes_integral_floats_as_integers() {
        let v = json!({"b": [1.0, -2.0, -0.0, 1.5, 1e300, 7], "a": "1.0"});
        assert_eq!(
            canonical_json_by_value(&v),
            r#"{"a":"1.0","b":[1,-2,0,1.5,1e+300,7]}"#
        );
        assert_eq!(canonical_json(&json!([1.0])), "[1.0]");
    }

    #[test]
    fn fnv_known_vector() {
        // FNV-1a 128 of the empty string is the offset basis.
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
    }
}
