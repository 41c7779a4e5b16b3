//! Spec section 4: conditions, paths, failing closed; and section 7 step 4 (schemas).

mod spec_support;

use mcp_policy::{Grant, Verdict};
use serde_json::{Value, json};
use spec_support::*;

/// Evaluates one condition as a `require` of tool `t` for `grant`: `Ok(holds)`, or
/// `Err(message)` for an evaluation error.
fn check_as(
    path: &str,
    op: &str,
    value: Value,
    args: Value,
    grant: &Grant,
) -> Result<bool, String> {
    let condition = json!({"path": path, "op": op, "value": value, "on_deny": "FALSE"});
    let (e, _) = engine(&one_tool(
        "deny",
        "t",
        &json!({ "require": [condition] }).to_string(),
    ));
    let d = e.evaluate("t", &args, grant);
    match (d.verdict, d.message.as_deref()) {
        (Verdict::Allow, _) => Ok(true),
        (Verdict::Deny, Some("FALSE")) => {
            assert_eq!(&*d.rule, "/tools/t/require/0");
            Ok(false)
        }
        (Verdict::Deny, Some(message)) => {
            assert_eq!(&*d.rule, "/tools/t/require/0");
            Err(message.to_owned())
        }
        _ => panic!("unexpected decision {d:#?}"),
    }
}

/// A condition on `args.x` with `x` set to `x`.
fn check(op: &str, value: Value, x: Value) -> Result<bool, String> {
    check_as("args.x", op, value, json!({ "x": x }), &alice())
}

/// Asserts `op value` on each `(x, expected)`.
fn table(op: &str, value: Value, cases: &[(Value, bool)]) {
    for (x, expected) in cases {
        assert_eq!(
            check(op, value.clone(), x.clone()),
            Ok(*expected),
            "{x} {op} {value}"
        );
    }
}

/// Asserts `op value` on `x` is an evaluation error naming the path and the type found.
fn type_error(op: &str, value: Value, x: Value, found: &str) {
    let message = check(op, value.clone(), x.clone()).expect_err("an evaluation error");
    assert!(message.contains("`args.x`"), "{message}");
    assert!(
        message.contains(&format!("found {found}")),
        "{x} {op} {value}: {message}"
    );
}

#[test]
fn eq_and_neq_are_json_equality_with_numbers_by_value() {
    table(
        "eq",
        json!(1),
        &[
            (json!(1), true),
            (json!(1.0), true),
            (json!(1.5), false),
            (json!("1"), false),
            (json!(true), false),
            (json!([1]), false),
        ],
    );
    table("eq", json!(1.0), &[(json!(1), true), (json!(-1), false)]);
    table(
        "eq",
        json!("a"),
        &[
            (json!("a"), true),
            (json!("A"), false),
            (json!(null), false),
        ],
    );
    table(
        "eq",
        json!({"a": [1, 2.0]}),
        &[
            (json!({"a": [1.0, 2]}), true),
            (json!({"a": [2, 1]}), false),
        ],
    );
    table("eq", json!(null), &[(json!(null), true), (json!(0), false)]);
    table(
        "neq",
        json!(1),
        &[(json!(1.0), false), (json!(2), true), (json!("1"), true)],
    );
    table(
        "eq",
        json!(u64::MAX),
        &[
            (json!(u64::MAX), true),
            (json!(u64::MAX - 1), false),
            (json!(-1), false),
        ],
    );
}

#[test]
fn in_and_not_in() {
    let list = json!(["a", 2, null]);
    table(
        "in",
        list.clone(),
        &[
            (json!("a"), true),
            (json!(2.0), true),
            (json!(null), true),
            (json!("2"), false),
            (json!("b"), false),
        ],
    );
    table(
        "not_in",
        list,
        &[
            (json!("a"), false),
            (json!(2), false),
            (json!("b"), true),
            (json!("2"), true),
        ],
    );
    table("in", json!([]), &[(json!("a"), false)]);
}

#[test]
fn numeric_comparisons_are_numbers_only() {
    table(
        "lt",
        json!(10),
        &[
            (json!(9), true),
            (json!(9.99), true),
            (json!(10), false),
            (json!(10.0), false),
            (json!(-5), true),
        ],
    );
    table(
        "lte",
        json!(10),
        &[(json!(10.0), true), (json!(10.01), false)],
    );
    table(
        "gt",
        json!(10000),
        &[
            (json!(10001), true),
            (json!(10000), false),
            (json!(10000.5), true),
        ],
    );
    table(
        "gte",
        json!(0.5),
        &[(json!(0.5), true), (json!(0), false), (json!(1), true)],
    );
    table("gt", json!(-1), &[(json!(u64::MAX), true)]);
    // Strings are never coerced to numbers.
    type_error("gt", json!(4000), json!("5000"), "a string");
    type_error("lt", json!(1), json!(true), "a boolean");
    type_error("lte", json!(1), json!(null), "null");
    type_error("gte", json!(1), json!([1]), "an array");
}

#[test]
fn regex_and_not_regex() {
    table(
        "regex",
        json!("^prod-[0-9]+$"),
        &[
            (json!("prod-12"), true),
            (json!("prod-"), false),
            (json!("xprod-1"), false),
        ],
    );
    table("regex", json!("prod"), &[(json!("my-prod-db"), true)]);
    table(
        "not_regex",
        json!("^prod-"),
        &[(json!("prod-1"), false), (json!("dev-1"), true)],
    );
    type_error("regex", json!("^1"), json!(1), "a number");
    type_error("not_regex", json!("x"), json!({"a": 1}), "an object");
}

#[test]
fn starts_with_ends_with() {
    table(
        "starts_with",
        json!("/tmp/"),
        &[
            (json!("/tmp/x"), true),
            (json!("/tmpx"), false),
            (json!("x/tmp/"), false),
        ],
    );
    table(
        "ends_with",
        json!(".csv"),
        &[
            (json!("a.csv"), true),
            (json!("a.csv.exe"), false),
            (json!(".csv"), true),
        ],
    );
    type_error("starts_with", json!("1"), json!(12), "a number");
    type_error("ends_with", json!("1"), json!([1]), "an array");
}

#[test]
fn contains_is_substring_or_array_element() {
    table(
        "contains",
        json!("DROP"),
        &[(json!("x; DROP TABLE"), true), (json!("drop"), false)],
    );
    table(
        "contains",
        json!("admin"),
        &[
            (json!(["user", "admin"]), true),
            (json!(["administrator"]), false),
        ],
    );
    table(
        "contains",
        json!(2),
        &[
            (json!([1, 2.0, 3]), true),
            (json!([1, 3]), false),
            (json!(["2"]), false),
        ],
    );
    table("contains", json!({"k": 1}), &[(json!([{"k": 1.0}]), true)]);
    type_error("contains", json!("a"), json!(5), "a number");
    type_error("contains", json!("a"), json!({"a": 1}), "an object");
    // A string can only contain a string.
    let message = check("contains", json!(1), json!("123")).expect_err("an evaluation error");
    assert!(message.contains("`args.x` is a string"), "{message}");
}

#[test]
fn exists_true_and_false() {
    for (present, expected_true) in [
        (json!({"x": 1}), true),
        (json!({"x": null}), true),
        (json!({}), false),
        (json!({"y": 1}), false),
    ] {
        let g = alice();
        assert_eq!(
            check_as("args.x", "exists", json!(true), present.clone(), &g),
            Ok(expected_true),
            "{present}"
        );
        assert_eq!(
            check_as("args.x", "exists", json!(false), present.clone(), &g),
            Ok(!expected_true),
            "{present}"
        );
    }
}

#[test]
fn path_under_normalises_lexically() {
    table(
        "path_under",
        json!("/srv/data"),
        &[
            (json!("/srv/data"), true),
            (json!("/srv/data/"), true),
            (json!("/srv/data/a/b.txt"), true),
            (json!("/srv/data/../data/x"), true),
            (json!("/srv/data/./x"), true),
            (json!("//srv//data///x"), true),
            (json!("/srv/./data/x"), true),
            (json!("/srv/data/../secrets"), false),
            (json!("/srv/data/a/../../etc/passwd"), false),
            (json!("/srv/database"), false),
            (json!("/srv"), false),
            (json!("srv/data/x"), false),
            (json!("/../srv/data/x"), true),
        ],
    );
    table(
        "path_under",
        json!("/srv/data/../data//"),
        &[(json!("/srv/data/x"), true), (json!("/srv/x"), false)],
    );
    table(
        "path_under",
        json!("work"),
        &[
            (json!("work/a"), true),
            (json!("./work/a"), true),
            (json!("work/../../a"), false),
            (json!("/work/a"), false),
        ],
    );
    type_error("path_under", json!("/srv"), json!(1), "a number");
}

#[test]
fn missing_paths_fail_closed() {
    let g = alice();
    let missing = json!({"y": 1});
    // A require on a missing field denies ...
    for (op, value) in [
        ("eq", json!(1)),
        ("neq", json!(1)),
        ("in", json!([1])),
        ("not_in", json!([1])),
        ("gt", json!(1)),
        ("regex", json!("x")),
        ("not_regex", json!("x")),
        ("contains", json!("x")),
        ("path_under", json!("/")),
    ] {
        assert_eq!(
            check_as("args.x", op, value, missing.clone(), &g),
            Ok(false),
            "{op}"
        );
    }
    // ... except `exists: false`, which holds.
    assert_eq!(
        check_as("args.x", "exists", json!(false), missing.clone(), &g),
        Ok(true)
    );
    // Descending through a scalar or past an array's end is missing too, not an error.
    assert_eq!(
        check_as("args.x.y", "gt", json!(1), json!({"x": 5}), &g),
        Ok(false)
    );
    assert_eq!(
        check_as("args.x.3", "eq", json!(1), json!({"x": [1]}), &g),
        Ok(false)
    );
    // A deny_if on a missing field does not match.
    let (e, _) = engine(&one_tool(
        "deny",
        "t",
        r#"{"deny_if":[{"conditions":[{"path":"args.amount","op":"gt","value":10}],"on_deny":"too much"}]}"#,
    ));
    assert_allow(&call(&e, "t", json!({})), "/tools/t");
    assert_deny(
        &call(&e, "t", json!({"amount": 11})),
        "/tools/t/deny_if/0",
        "too much",
    );
}

#[test]
fn evaluation_errors_deny_in_require_deny_if_and_approve_if() {
    let (e, _) = engine(
        r#"{"version":"1","default":"deny","tools":{
          "r":{"require":[{"path":"args.n","op":"gt","value":1,"on_deny":"custom"}]},
          "d":{"deny_if":[{"conditions":[{"path":"args.n","op":"gt","value":1}],"on_deny":"custom"}]},
          "a":{"approve_if":[{"conditions":[{"path":"args.other","op":"eq","value":1},{"path":"args.n","op":"regex","value":"^1"}]}]}}}"#,
    );
    let args = json!({"n": "5000"});
    let expected = "cannot evaluate `args.n` gt: expected a number, found a string";
    assert_eq!(
        call(&e, "r", args.clone()).message.as_deref(),
        Some(expected)
    );
    assert_deny(&call(&e, "r", args.clone()), "/tools/r/require/0", expected);
    // In a deny_if the error denies (fail closed) even though the clause would not match.
    assert_deny(
        &call(&e, "d", args.clone()),
        "/tools/d/deny_if/0/conditions/0",
        expected,
    );
    // In approve_if an error denies, even when an earlier condition of the clause is false.
    let d = call(&e, "a", json!({"n": 5}));
    assert_deny(
        &d,
        "/tools/a/approve_if/0/conditions/1",
        "cannot evaluate `args.n` regex: expected a string, found a number",
    );
    assert_allow(&call(&e, "a", json!({"n": "2"})), "/tools/a");
    assert_approve(
        &call(&e, "a", json!({"n": "1", "other": 1.0})),
        "/tools/a/approve_if/0",
    );
}

#[test]
fn empty_conditions_always_match() {
    let (e, _) = engine(&one_tool("deny", "t", r#"{"deny_if":[{"conditions":[]}]}"#));
    assert_deny(
        &call(&e, "t", json!({})),
        "/tools/t/deny_if/0",
        "denied by policy rule /tools/t/deny_if/0",
    );
}

#[test]
fn default_require_message_names_path_op_and_value() {
    let (e, _) = engine(&one_tool(
        "deny",
        "t",
        r#"{"require":[{"path":"args.reason","op":"exists","value":true}]}"#,
    ));
    let d = call(&e, "t", json!({}));
    assert_eq!(
        d.message.as_deref(),
        Some("requirement not met: `args.reason` exists true")
    );
}

#[test]
fn dotted_paths_index_arrays_and_pointer_paths_escape() {
    let g = alice();
    let args =
        json!({"files": [{"name": "a"}, {"name": "b.txt"}], "a/b": {"c.d": [0, 7]}, "0": "zero"});
    assert_eq!(
        check_as("args.files.1.name", "eq", json!("b.txt"), args.clone(), &g),
        Ok(true)
    );
    assert_eq!(
        check_as("args.files.0.name", "eq", json!("b.txt"), args.clone(), &g),
        Ok(false)
    );
    assert_eq!(
        check_as(
            "args.files.01.name",
            "exists",
            json!(true),
            args.clone(),
            &g
        ),
        Ok(false)
    );
    assert_eq!(
        check_as("/args/a~1b/c.d/1", "eq", json!(7), args.clone(), &g),
        Ok(true)
    );
    assert_eq!(
        check_as(
            "/args/files/1/name",
            "ends_with",
            json!(".txt"),
            args.clone(),
            &g
        ),
        Ok(true)
    );
    // A decimal segment on an object is a key.
    assert_eq!(
        check_as("args.0", "eq", json!("zero"), args.clone(), &g),
        Ok(true)
    );
    // The whole arguments object.
    assert_eq!(
        check_as("args", "exists", json!(true), json!({}), &g),
        Ok(true)
    );
}

#[test]
fn grant_and_tool_roots() {
    let with_session = Grant::new("ci-7")
        .with_session("run-1")
        .with_attr("team", json!({"name": "sec", "level": 3}));
    let bare = Grant::new("ci-8");
    let none = json!({});
    assert_eq!(
        check_as(
            "grant.id",
            "starts_with",
            json!("ci-"),
            none.clone(),
            &with_session
        ),
        Ok(true)
    );
    assert_eq!(
        check_as("grant.id", "in", json!(["ci-7"]), none.clone(), &bare),
        Ok(false)
    );
    assert_eq!(
        check_as(
            "grant.session",
            "eq",
            json!("run-1"),
            none.clone(),
            &with_session
        ),
        Ok(true)
    );
    assert_eq!(
        check_as("grant.session", "exists", json!(true), none.clone(), &bare),
        Ok(false)
    );
    assert_eq!(
        check_as("grant.session", "exists", json!(false), none.clone(), &bare),
        Ok(true)
    );
    assert_eq!(
        check_as(
            "grant.attrs.team.name",
            "eq",
            json!("sec"),
            none.clone(),
            &with_session
        ),
        Ok(true)
    );
    assert_eq!(
        check_as(
            "grant.attrs.team.level",
            "gte",
            json!(3.0),
            none.clone(),
            &with_session
        ),
        Ok(true)
    );
    assert_eq!(
        check_as("grant.attrs.team", "eq", json!(1), none.clone(), &bare),
        Ok(false)
    );
    let message = check_as(
        "grant.attrs.team.name",
        "lt",
        json!(1),
        none.clone(),
        &with_session,
    )
    .expect_err("type error");
    assert!(
        message.contains("`grant.attrs.team.name`") && message.contains("found a string"),
        "{message}"
    );
    let message =
        check_as("grant.id", "gt", json!(1), none.clone(), &bare).expect_err("type error");
    assert!(
        message.contains("`grant.id`") && message.contains("found a string"),
        "{message}"
    );
    // `tool` is the called name, also under a pattern.
    let (e, _) = engine(&one_tool(
        "deny",
        "fs_*",
        r#"{"require":[{"path":"tool","op":"in","value":["fs_read","fs_list"]}]}"#,
    ));
    assert_allow(&call(&e, "fs_read", none.clone()), "/tools/fs_*");
    assert_deny(
        &call(&e, "fs_write", none),
        "/tools/fs_*/require/0",
        "requirement not met: `tool` in",
    );
}

#[test]
fn schema_violations_deny_naming_the_argument_path() {
    let schema = r#"{"schema":{"type":"object","required":["amount"],"additionalProperties":false,
        "properties":{"amount":{"type":"integer","maximum":100},"items":{"type":"array","items":{"type":"string"}}}}}"#;
    let (e, _) = engine(&one_tool("deny", "pay", schema));
    assert_allow(
        &call(&e, "pay", json!({"amount": 100, "items": ["a"]})),
        "/tools/pay",
    );
    assert_deny(
        &call(&e, "pay", json!({"amount": 101})),
        "/tools/pay/schema",
        "at `/amount`",
    );
    assert_deny(
        &call(&e, "pay", json!({"amount": "5"})),
        "/tools/pay/schema",
        "at `/amount`",
    );
    assert_deny(
        &call(&e, "pay", json!({"amount": 1, "items": ["a", 2]})),
        "/tools/pay/schema",
        "at `/items/1`",
    );
    assert_deny(
        &call(&e, "pay", json!({})),
        "/tools/pay/schema",
        "at (the arguments object)",
    );
    assert_deny(
        &call(&e, "pay", json!({"amount": 1, "x": 1})),
        "/tools/pay/schema",
        "arguments do not match the schema",
    );
    // Absent arguments are `{}`.
    assert_deny(
        &e.evaluate("pay", &Value::Null, &alice()),
        "/tools/pay/schema",
        "at (the arguments object)",
    );
}

#[test]
fn schema_draft_follows_dollar_schema() {
    // Under draft 7 `prefixItems` is not a keyword; under 2020-12 (the default) it is.
    let entry = |draft: &str| {
        format!(
            r#"{{"schema":{{{draft}"properties":{{"p":{{"prefixItems":[{{"type":"string"}}]}}}}}}}}"#
        )
    };
    let (e, _) = engine(&one_tool("deny", "t", &entry("")));
    assert_deny(
        &call(&e, "t", json!({"p": [1]})),
        "/tools/t/schema",
        "at `/p/0`",
    );
    let (e, _) = engine(&one_tool(
        "deny",
        "t",
        &entry(r#""$schema":"http://json-schema.org/draft-07/schema#","#),
    ));
    assert_allow(&call(&e, "t", json!({"p": [1]})), "/tools/t");
}
