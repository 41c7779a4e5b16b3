//! `mcp-policy schema` and the shipped JSON Schemas against the loader.

use super::*;

#[test]
fn schema_output_is_the_shipped_file() {
    let o = run(&["schema"], None);
    assert_eq!(o.status.code(), Some(0));
    let file = std::fs::read_to_string(repo().join("docs/policy.schema.json")).unwrap();
    assert_eq!(stdout(&o), file);
}

pub(crate) fn policy_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/policy.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .offline()
        .build(&schema)
        .unwrap()
}

fn example_policies() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".test.json")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_policy_validates_against_the_schema() {
    let validator = policy_validator();
    let policies = example_policies();
    assert!(policies.len() >= 4);
    for path in policies {
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn schema_rejects_unknown_fields_like_the_loader() {
    let validator = policy_validator();
    for bad in [
        json!({"version": "1", "default": "deny", "tool": {}}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"limit": []}}}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"limits": [{"counter": "c", "window": 60, "max": 1, "maxx": 2}]}}}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"require": [{"path": "args.a", "op": "eq", "value": 1, "onDeny": "x"}]}}}),
        json!({"version": "1", "default": "deny", "all_tools": {"rate_limit": "1/minute"}}),
        json!({"version": "1", "default": "deny", "approvals": {"ttl": "5m", "max": 1}}),
        json!({"version": "2", "default": "deny"}),
        json!({"version": "1", "default": "deny", "tools": {"t": {"limits": [{"counter": "c", "window": "minutes", "max": 1}]}}}),
    ] {
        assert!(!validator.is_valid(&bad), "schema accepted {bad}");
        assert!(
            mcp_policy::Policy::from_value(&bad).is_err(),
            "loader accepted {bad}"
        );
    }
    let good = json!({"version": "1", "default": "deny", "x-owner": "sec", "tools": {"t": {"x-note": 1, "rate_limit": "10/minute"}}});
    assert!(validator.is_valid(&good));
    assert!(mcp_policy::Policy::from_value(&good).is_ok());
}
