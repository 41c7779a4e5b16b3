//! `mcp-policy test`: table-driven policy tests (format in docs/CLI.md and
//! docs/policy-test.schema.json).

use std::path::{Path, PathBuf};

use mcp_policy::Policy;
use serde_json::{Map, Value};

use crate::eval::{NoAt, Replayer, type_name};
use crate::exit::{FAILURES, OK, UNUSABLE};
use crate::json::{load_error_lines, parse_strict};

/// One test file, validated.
struct TestFile {
    policy: PathBuf,
    cases: Vec<Case>,
}

/// One call of a case: the eval input line and the expected answer fields.
type Call = (Map<String, Value>, Option<Map<String, Value>>);

struct Case {
    name: String,
    calls: Vec<Call>,
}

fn object<'v>(
    value: &'v Value,
    at: &str,
    allowed: &[&str],
) -> Result<&'v Map<String, Value>, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "{at}: expected an object, found {}",
            type_name(value)
        ));
    };
    if let Some(key) = map
        .keys()
        .find(|k| !k.starts_with("x-") && !allowed.contains(&k.as_str()))
    {
        return Err(format!(
            "{at}: unknown field `{key}`; expected {}",
            allowed.join(", ")
        ));
    }
    Ok(map)
}

fn parse_file(path: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let value = parse_strict(&text)?;
    let top = object(
        &value,
        "(document)",
        &["$schema", "description", "policy", "cases"],
    )?;
    let policy = match top.get("policy") {
        Some(Value::String(p)) => path.parent().unwrap_or(Path::new("")).join(p),
        Some(other) => {
            return Err(format!(
                "/policy: expected a path string, found {}",
                type_name(other)
            ));
        }
        None => return Err("(document): missing field `policy`".into()),
    };
    let Some(Value::Array(items)) = top.get("cases") else {
        return Err("/cases: expected an array of cases".into());
    };
    let mut cases = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("/cases/{i}");
        let case = object(item, &at, &["name", "description", "calls"])?;
        let name = match case.get("name") {
            Some(Value::String(n)) => n.clone(),
            _ => return Err(format!("{at}/name: expected a string")),
        };
        let Some(Value::Array(list)) = case.get("calls") else {
            return Err(format!("{at}/calls: expected an array of calls"));
        };
        let mut calls = Vec::new();
        for (j, call) in list.iter().enumerate() {
            let call_at = format!("{at}/calls/{j}");
            let Value::Object(map) = call else {
                return Err(format!("{call_at}: expected an object"));
            };
            let mut input = map.clone();
            let expect = match input.remove("expect") {
                None => None,
                Some(Value::Object(e)) => Some(e),
                Some(other) => {
                    return Err(format!(
                        "{call_at}/expect: expected an object, found {}",
                        type_name(&other)
                    ));
                }
            };
            input.retain(|k, _| !k.starts_with("x-"));
            calls.push((input, expect));
        }
        cases.push(Case { name, calls });
    }
    Ok(TestFile { policy, cases })
}

/// Compares an answer with the expected fields; returns the differences.
fn compare(expect: &Map<String, Value>, actual: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    for (key, want) in expect {
        if let Some(field) = key.strip_suffix("_contains") {
            let got = actual
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !want.as_str().is_some_and(|w| got.contains(w)) {
                diffs.push(format!(
                    "{field}: expected to contain {want}, got {}",
                    show(actual.get(field))
                ));
            }
            continue;
        }
        let got = actual.get(key);
        let ok = match want {
            Value::Null => got.is_none(),
            want => got == Some(want),
        };
        if !ok {
            let want = if want.is_null() {
                "absent".to_owned()
            } else {
                want.to_string()
            };
            diffs.push(format!("{key}: expected {want}, got {}", show(got)));
        }
    }
    diffs
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".to_owned(), Value::to_string)
}

/// Runs one case on a fresh engine; `Ok(())` or the failure lines.
fn run_case(policy: Policy, case: &Case) -> Result<(), Vec<String>> {
    let mut replayer = Replayer::new(policy, NoAt::Previous);
    let mut failures = Vec::new();
    for (i, (input, expect)) in case.calls.iter().enumerate() {
        let mut input = input.clone();
        if input.get("approve").and_then(Value::as_str) == Some("$last") {
            match &replayer.last_approval {
                Some(id) => {
                    input.insert("approve".into(), Value::String(id.clone()));
                }
                None => failures.push(format!(
                    "call {}: `$last` but no approval was asked for yet",
                    i + 1
                )),
            }
        }
        let actual = replayer.value(&Value::Object(input.clone()), i + 1);
        let diffs = match expect {
            Some(expect) => compare(expect, &actual),
            None if actual.get("error").is_some() => {
                vec!["an answer without error (no `expect` given)".into()]
            }
            None => Vec::new(),
        };
        if !diffs.is_empty() {
            failures.push(format!("call {} {}", i + 1, Value::Object(input)));
            failures.push(format!(
                "    expected {}",
                expect
                    .as_ref()
                    .map_or_else(|| "{}".into(), |e| Value::Object(e.clone()).to_string())
            ));
            failures.push(format!("    actual   {actual}"));
            for diff in diffs {
                failures.push(format!("    - {diff}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// Runs `test`.
pub fn run(files: &[PathBuf]) -> u8 {
    let (mut passed, mut failed, mut unusable) = (0usize, 0usize, false);
    for path in files {
        let file = path.display().to_string();
        let test = match parse_file(path) {
            Ok(test) => test,
            Err(e) => {
                eprintln!("{file}: {e}");
                unusable = true;
                continue;
            }
        };
        let text = match std::fs::read_to_string(&test.policy) {
            Ok(text) => text,
            Err(e) => {
                eprintln!(
                    "{file}: cannot read the policy {}: {e}",
                    test.policy.display()
                );
                unusable = true;
                continue;
            }
        };
        if let Err(errors) = Policy::from_json_str(&text) {
            for line in load_error_lines(&test.policy.display().to_string(), &errors) {
                eprintln!("{line}");
            }
            unusable = true;
            continue;
        }
        for case in &test.cases {
            // Each case on a fresh engine (and a fresh compile: nothing is shared).
            let policy = match Policy::from_json_str(&text) {
                Ok(p) => p,
                Err(_) => {
                    unusable = true;
                    continue;
                }
            };
            match run_case(policy, case) {
                Ok(()) => {
                    passed += 1;
                    println!("ok {}", case.name);
                }
                Err(lines) => {
                    failed += 1;
                    println!("FAIL {}", case.name);
                    for line in lines {
                        println!("  {line}");
                    }
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if unusable {
        UNUSABLE
    } else if failed > 0 {
        FAILURES
    } else {
        OK
    }
}
