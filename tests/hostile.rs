//! Hostile arguments and names: every one gets a decision, never a panic or stack overflow.

use mcp_policy::args::parse_args;
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
use serde_json::{Value, json};

fn engine() -> Engine<ManualClock, MemoryStore> {
    let policy = Policy::from_json_str(
        r#"{"version":"1","default":"allow",
            "all_tools":{"limits":[{"counter":"calls","window":"minute","max":1000,"scope":"args.key"}]},
            "tools":{"read_file":{"require":[{"path":"args.path","op":"path_under","value":"/srv"}],
                                  "deny_if":[{"conditions":[{"path":"args.path","op":"regex","value":"\\.ssh/"}]}]},
                     "search":{"schema":{"type":"object","properties":{"q":{"type":"string","maxLength":100}}}}}}"#,
    )
    .unwrap();
    Engine::with_parts(
        policy,
        ManualClock::new(1_763_712_000_000),
        MemoryStore::new(),
    )
}

fn nested(levels: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..levels {
        v = Value::Array(vec![v]);
    }
    v
}

#[test]
fn ten_thousand_levels_of_nesting_are_denied() {
    let e = engine();
    // Built by hand: `json!` would serialize the nested value recursively.
    let mut args = json!({"key": "k"});
    args["deep"] = nested(10_000);
    let d = e.evaluate("search", &args, &Grant::new("g"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.message.as_deref(),
        Some("arguments are nested deeper than 64 levels")
    );
    // serde_json drops a Value recursively: take the nesting apart iteratively so that the
    // test itself does not overflow its stack (a host building such values must do the same).
    let mut v = args["deep"].take();
    while let Value::Array(mut items) = v {
        v = items.pop().unwrap_or(Value::Null);
    }
}

#[test]
fn ten_megabyte_string_is_denied_as_too_large() {
    let e = engine();
    let args = json!({"key": "k", "q": "x".repeat(10 * 1024 * 1024)});
    let d = e.evaluate("search", &args, &Grant::new("g"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.message.unwrap().contains("larger than 1048576 bytes"));
}

#[test]
fn million_element_array_is_denied_as_too_large() {
    let e = engine();
    let args = json!({"key": "k", "items": vec![0u8; 1_000_000]});
    let d = e.evaluate("search", &args, &Grant::new("g"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.message.unwrap().contains("larger than"));
}

#[test]
fn odd_numbers_and_escapes_in_argument_text() {
    // 1e400 does not fit an f64: an error, not infinity.
    assert!(parse_args(r#"{"n": 1e400}"#).is_err());
    // -0 is a number equal to 0.
    let args = parse_args(r#"{"key": -0, "path": "/srv/a"}"#).unwrap();
    let e = engine();
    assert_eq!(
        e.evaluate("read_file", &args, &Grant::new("g")).verdict,
        Verdict::Allow
    );
    let zero = json!({"key": 0, "path": "/srv/a"});
    // -0 and 0 share one budget (numbers compare by value).
    assert_eq!(
        e.evaluate("read_file", &zero, &Grant::new("g")).remaining,
        Some(998)
    );
    // A lone surrogate escape is invalid JSON text.
    assert!(parse_args(r#"{"s": "\ud800"}"#).is_err());
    assert!(parse_args(r#"{"s": "\udc00\ud800"}"#).is_err());
    // A valid pair is fine.
    assert_eq!(parse_args(r#"{"s": "\ud83d\ude00"}"#).unwrap()["s"], "😀");
}

#[test]
fn very_long_tool_names_and_grant_ids() {
    let e = engine();
    let name = "t".repeat(1_000_000);
    let grant = Grant::new("g".repeat(1_000_000));
    let d = e.evaluate(&name, &json!({"key": "k"}), &grant);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(&*d.rule, "/default");
}

#[test]
fn path_traversal_is_normalised_before_path_under() {
    let e = engine();
    let g = Grant::new("g");
    for (path, verdict) in [
        ("/srv/data/x", Verdict::Allow),
        ("/srv/../etc/passwd", Verdict::Deny),
        ("/srv/./../../etc", Verdict::Deny),
        ("//srv//a", Verdict::Allow),
        ("/srv/a/.ssh/id_rsa", Verdict::Deny),
        ("srv/a", Verdict::Deny),
    ] {
        let d = e.evaluate("read_file", &json!({"key": "k", "path": path}), &g);
        assert_eq!(d.verdict, verdict, "{path}: {d:?}");
    }
}

#[test]
fn duplicate_keys_in_argument_text_are_rejected() {
    let err = parse_args(r#"{"path":"/tmp/x","path":"/etc/passwd"}"#).unwrap_err();
    assert!(err.contains("duplicate key `path`"), "{err}");
}

#[test]
fn a_clock_that_jumps_back_never_over_admits() {
    let policy = Policy::from_json_str(
        r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":"3/minute"}}}"#,
    )
    .unwrap();
    let clock = ManualClock::new(10_000_000);
    let e = Engine::with_parts(policy, clock.clone(), MemoryStore::new());
    let (args, g) = (json!({}), Grant::new("g"));
    let mut admitted = 0;
    for step in 0..200u64 {
        // Wander backwards and forwards within one minute of the start, never past it.
        clock.set(10_000_000 - (step * 7_919) % 50_000);
        if e.evaluate("t", &args, &g).verdict == Verdict::Allow {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 3);
}
