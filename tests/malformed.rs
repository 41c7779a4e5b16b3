//! A catalogue of malformed policy documents: each must fail to load with the exact JSON
//! Pointer of the offending value and a useful message.

use mcp_policy::Policy;

/// (document, pointer of the first error, a fragment of its message)
const CATALOGUE: &[(&str, &str, &str)] = &[
    // Whole document and top level.
    (r#""#, "", "EOF while parsing"),
    (
        r#"{"version":"1","default":"deny""#,
        "",
        "EOF while parsing",
    ),
    (
        r#"{"version":"1","default":"deny"} x"#,
        "",
        "trailing characters",
    ),
    (r#"[]"#, "", "expected an object, found an array"),
    (r#"{"default":"deny"}"#, "", "missing field `version`"),
    (r#"{"version":"1"}"#, "", "missing field `default`"),
    (
        r#"{"version":1,"default":"deny"}"#,
        "/version",
        "unsupported version 1; this build supports \"1\"",
    ),
    (
        r#"{"version":"2","default":"deny"}"#,
        "/version",
        "unsupported version \"2\"",
    ),
    (
        r#"{"version":"1.0","default":"deny"}"#,
        "/version",
        "unsupported version \"1.0\"",
    ),
    (
        r#"{"version":"1","default":"maybe"}"#,
        "/default",
        "expected \"allow\" or \"deny\"",
    ),
    (
        r#"{"version":"1","default":true}"#,
        "/default",
        "expected \"allow\" or \"deny\"",
    ),
    (
        r#"{"version":"1","default":"deny","tool":{}}"#,
        "/tool",
        "unknown field `tool`",
    ),
    (
        r#"{"version":"1","default":"deny","version":"1"}"#,
        "",
        "duplicate key `version`",
    ),
    (
        r#"{"version":"1","default":"deny","hide":"x"}"#,
        "/hide",
        "expected an array, found a string",
    ),
    (
        r#"{"version":"1","default":"deny","hide":[1]}"#,
        "/hide/0",
        "expected a string, found a number",
    ),
    (
        r#"{"version":"1","default":"deny","hide":[""]}"#,
        "/hide/0",
        "must not be empty",
    ),
    (
        r#"{"version":"1","default":"deny","tools":[]}"#,
        "/tools",
        "expected an object mapping tool names",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"":{}}}"#,
        "/tools/",
        "must not be empty",
    ),
    (
        r#"{"version":"1","default":"deny","approvals":{"ttl":"soon"}}"#,
        "/approvals/ttl",
        "unknown window \"soon\"",
    ),
    (
        r#"{"version":"1","default":"deny","approvals":{"tll":"1h"}}"#,
        "/approvals/tll",
        "unknown field `tll`",
    ),
    (
        r#"{"version":"1","default":"deny","description":5}"#,
        "/description",
        "expected a string",
    ),
    (
        r#"{"version":"1","default":"deny","all_tools":{"action":"deny"}}"#,
        "/all_tools/action",
        "unknown field `action`",
    ),
    // Tool entries.
    (
        r#"{"version":"1","default":"deny","tools":{"t":[]}}"#,
        "/tools/t",
        "expected an object, found an array",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limit":[]}}}"#,
        "/tools/t/limit",
        "unknown field `limit`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"a/b":{"limit":[]}}}"#,
        "/tools/a~1b/limit",
        "unknown field `limit`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"action":"block"}}}"#,
        "/tools/t/action",
        "unknown action \"block\"",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"action":false}}}"#,
        "/tools/t/action",
        "expected a string",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"reason":"a","on_deny":"b"}}}"#,
        "/tools/t/on_deny",
        "both given",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"reason":7}}}"#,
        "/tools/t/reason",
        "expected a string",
    ),
    // Conditions.
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":{}}}}"#,
        "/tools/t/require",
        "expected an array",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"op":"eq","value":1}]}}}"#,
        "/tools/t/require/0",
        "missing field `path`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","value":1}]}}}"#,
        "/tools/t/require/0",
        "missing field `op`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"eq"}]}}}"#,
        "/tools/t/require/0",
        "missing field `value`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"like","value":1}]}}}"#,
        "/tools/t/require/0/op",
        "unknown operator \"like\"",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"arg.a","op":"eq","value":1}]}}}"#,
        "/tools/t/require/0/path",
        "must start with args, grant, tool, prompt, uri or annotations",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args..a","op":"eq","value":1}]}}}"#,
        "/tools/t/require/0/path",
        "empty segment",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"grant.name","op":"eq","value":1}]}}}"#,
        "/tools/t/require/0/path",
        "expected grant.id, grant.session or grant.attrs.NAME",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"/args/a~2","op":"eq","value":1}]}}}"#,
        "/tools/t/require/0/path",
        "invalid JSON Pointer path",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"gt","value":"5"}]}}}"#,
        "/tools/t/require/0/value",
        "expected a number, found a string",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"in","value":"x"}]}}}"#,
        "/tools/t/require/0/value",
        "expected an array",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"exists","value":"yes"}]}}}"#,
        "/tools/t/require/0/value",
        "expected true or false",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"regex","value":"(?=x)"}]}}}"#,
        "/tools/t/require/0/value",
        "needs backtracking",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"regex","value":"(a)\\1"}]}}}"#,
        "/tools/t/require/0/value",
        "needs backtracking",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"regex","value":"(unclosed"}]}}}"#,
        "/tools/t/require/0/value",
        "invalid regex",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"path_under","value":""}]}}}"#,
        "/tools/t/require/0/value",
        "needs a directory",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"eq","value":1,"on_deny":1}]}}}"#,
        "/tools/t/require/0/on_deny",
        "expected a string",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"deny_if":[{"on_deny":"x"}]}}}"#,
        "/tools/t/deny_if/0",
        "missing field `conditions`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"deny_if":[{"conditions":[],"reason":"x"}]}}}"#,
        "/tools/t/deny_if/0/reason",
        "unknown field `reason`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"approve_if":[{"conditions":[],"on_deny":"x"}]}}}"#,
        "/tools/t/approve_if/0/on_deny",
        "unknown field `on_deny`",
    ),
    // Schemas.
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"schema":{"type":"strng"}}}}"#,
        "/tools/t/schema",
        "invalid JSON Schema",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"schema":{"$ref":"https://example.com/s.json"}}}}"#,
        "/tools/t/schema",
        "invalid JSON Schema",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"schema":{"$ref":"file:///etc/passwd"}}}}"#,
        "/tools/t/schema",
        "invalid JSON Schema",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"schema":{"type":"string","pattern":"(?<=a)b"}}}}"#,
        "/tools/t/schema",
        "invalid JSON Schema",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"schema":"object"}}}"#,
        "/tools/t/schema",
        "must be an object or a boolean",
    ),
    // Limits.
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"window":"minute","max":1}]}}}"#,
        "/tools/t/limits/0",
        "missing field `counter`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","max":1}]}}}"#,
        "/tools/t/limits/0",
        "missing field `window`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute"}]}}}"#,
        "/tools/t/limits/0",
        "missing field `max`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"","window":"minute","max":1}]}}}"#,
        "/tools/t/limits/0/counter",
        "must not be empty",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minutes","max":1}]}}}"#,
        "/tools/t/limits/0/window",
        "unknown window \"minutes\"",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":0,"max":1}]}}}"#,
        "/tools/t/limits/0/window",
        "must be a positive integer of seconds",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":-60,"max":1}]}}}"#,
        "/tools/t/limits/0/window",
        "must be a positive integer of seconds",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"0s","max":1}]}}}"#,
        "/tools/t/limits/0/window",
        "must be positive",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"1.5m","max":1}]}}}"#,
        "/tools/t/limits/0/window",
        "unknown window",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"4000d","max":1}]}}}"#,
        "/tools/t/limits/0/window",
        "longer than the maximum",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":0}]}}}"#,
        "/tools/t/limits/0/max",
        "positive integer",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":-1}]}}}"#,
        "/tools/t/limits/0/max",
        "positive integer",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":2.5}]}}}"#,
        "/tools/t/limits/0/max",
        "positive integer",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":"10"}]}}}"#,
        "/tools/t/limits/0/max",
        "positive integer",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"scope":"user"}]}}}"#,
        "/tools/t/limits/0/scope",
        "unknown scope \"user\"",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"scope":"args..x"}]}}}"#,
        "/tools/t/limits/0/scope",
        "empty segment",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"cost":-1}]}}}"#,
        "/tools/t/limits/0/cost",
        "non-negative integer",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"cost":"amount"}]}}}"#,
        "/tools/t/limits/0/cost",
        "must start with args, grant, tool, prompt, uri or annotations",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"cost":true}]}}}"#,
        "/tools/t/limits/0/cost",
        "non-negative integer or a path",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"reset":"fixed"}]}}}"#,
        "/tools/t/limits/0/reset",
        "expected \"sliding\" or \"calendar\"",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"on_limit":false}]}}}"#,
        "/tools/t/limits/0/on_limit",
        "expected a string",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"scope":"grant","x":1}]}}}"#,
        "/tools/t/limits/0/x",
        "unknown field `x`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"a":{"limits":[{"counter":"c","window":"minute","max":1}]},"b":{"limits":[{"counter":"c","window":"hour","max":1}]}}}"#,
        "/tools/b/limits/0",
        "window differs",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"a":{"limits":[{"counter":"c","window":"minute","max":1}]},"b":{"limits":[{"counter":"c","window":"minute","max":2}]}}}"#,
        "/tools/b/limits/0",
        "max differs",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"a":{"limits":[{"counter":"c","window":"minute","max":1}]},"b":{"limits":[{"counter":"c","window":"minute","max":1,"scope":"global"}]}}}"#,
        "/tools/b/limits/0",
        "scope differs",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"a":{"limits":[{"counter":"c","window":"minute","max":1}]},"b":{"limits":[{"counter":"c","window":"minute","max":1,"reset":"calendar"}]}}}"#,
        "/tools/b/limits/0",
        "reset differs",
    ),
    // rate_limit shorthand.
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":"10 per minute"}}}"#,
        "/tools/t/rate_limit",
        "must look like \"10/minute\"",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":"0/minute"}}}"#,
        "/tools/t/rate_limit",
        "count must be a positive integer",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":"10/fortnight"}}}"#,
        "/tools/t/rate_limit",
        "unknown window \"fortnight\"",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":{"max":10}}}}"#,
        "/tools/t/rate_limit",
        "missing field `window`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":{"max":10,"window":60,"scope":"global"}}}}"#,
        "/tools/t/rate_limit/scope",
        "unknown field `scope`",
    ),
    (
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":10}}}"#,
        "/tools/t/rate_limit",
        "expected a string such as \"10/minute\"",
    ),
];

#[test]
fn every_malformed_document_fails_with_its_pointer_and_message() {
    assert!(
        CATALOGUE.len() >= 50,
        "the catalogue has {} entries",
        CATALOGUE.len()
    );
    let mut failures = Vec::new();
    for (i, (doc, pointer, fragment)) in CATALOGUE.iter().enumerate() {
        match Policy::from_json_str(doc) {
            Ok(_) => failures.push(format!("#{i} loaded: {doc}")),
            Err(errors) => {
                let first = &errors.errors()[0];
                let message = first.kind.to_string();
                if first.pointer != *pointer || !message.contains(fragment) {
                    failures.push(format!(
                        "#{i} {doc}\n   expected {pointer:?} containing {fragment:?}\n   got      {:?}: {message}",
                        first.pointer
                    ));
                }
                assert!(first.position.is_some(), "#{i}: no position in {first}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        CATALOGUE.len(),
        failures.join("\n")
    );
}
