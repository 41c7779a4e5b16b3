//! `mcp-policy scaffold`: starting policies from real servers' lists.

use super::*;
use crate::schema::policy_validator;

fn scaffold(fixture: &str) -> Value {
    let path = format!("mcp-policy-cli/tests/data/tools_list/{fixture}.json");
    let o = run(&["scaffold", &path], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    mcp_policy::Policy::from_json_str(&text)
        .unwrap_or_else(|e| panic!("{fixture}: scaffold output does not load: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(
        policy_validator().is_valid(&value),
        "{fixture}: scaffold output fails the schema"
    );
    value
}

fn assert_classes(fixture: &str, expected: &[(&str, &str)]) {
    let policy = scaffold(fixture);
    assert_eq!(policy["default"], "deny");
    let tools = policy["tools"].as_object().unwrap();
    let fixture_tools: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(format!(
            "mcp-policy-cli/tests/data/tools_list/{fixture}.json"
        )))
        .unwrap(),
    )
    .unwrap();
    // Every tool of the server has an entry, and every one is checked here.
    assert_eq!(
        tools.len(),
        fixture_tools["tools"].as_array().unwrap().len()
    );
    assert_eq!(
        tools.len(),
        expected.len(),
        "{fixture}: expected classes for every tool"
    );
    let hide: Vec<&str> = policy["hide"]
        .as_array()
        .map(|h| h.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, class) in expected {
        let entry = &tools[*name];
        assert_eq!(entry["x-risk"], *class, "{fixture}: {name}");
        match *class {
            "Read" => assert!(
                entry.get("rate_limit").is_none() && entry.get("action").is_none(),
                "{name}: {entry}"
            ),
            "Write" => assert_eq!(entry["rate_limit"], "30/hour", "{name}"),
            "Execute" => assert_eq!(entry["rate_limit"], "10/minute", "{name}"),
            "Destructive" => {
                assert!(hide.contains(name), "{name} not hidden");
                assert_eq!(entry["action"], "deny");
            }
            "Financial" => assert_eq!(entry["action"], "approve", "{name}"),
            other => panic!("unknown class {other}"),
        }
        if *class != "Destructive" {
            assert!(!hide.contains(name), "{name} hidden");
        }
    }
}

#[test]
fn scaffold_filesystem_server() {
    // Hand-checked from the annotations: readOnlyHint → Read; destructiveHint → Destructive
    // (write_file overwrites, edit_file rewrites, move_file can clobber); create_directory is
    // readOnlyHint false and destructiveHint false → Write.
    assert_classes(
        "filesystem",
        &[
            ("read_file", "Read"),
            ("read_text_file", "Read"),
            ("read_media_file", "Read"),
            ("read_multiple_files", "Read"),
            ("write_file", "Destructive"),
            ("edit_file", "Destructive"),
            ("create_directory", "Write"),
            ("list_directory", "Read"),
            ("list_directory_with_sizes", "Read"),
            ("directory_tree", "Read"),
            ("move_file", "Destructive"),
            ("search_files", "Read"),
            ("get_file_info", "Read"),
            ("list_allowed_directories", "Read"),
        ],
    );
}

#[test]
fn scaffold_memory_server() {
    assert_classes(
        "memory",
        &[
            ("create_entities", "Write"),
            ("create_relations", "Write"),
            ("add_observations", "Write"),
            ("delete_entities", "Destructive"),
            ("delete_observations", "Destructive"),
            ("delete_relations", "Destructive"),
            ("read_graph", "Read"),
            ("search_nodes", "Read"),
            ("open_nodes", "Read"),
        ],
    );
}

#[test]
fn scaffold_git_server() {
    assert_classes(
        "git",
        &[
            ("git_status", "Read"),
            ("git_diff_unstaged", "Read"),
            ("git_diff_staged", "Read"),
            ("git_diff", "Read"),
            ("git_commit", "Write"),
            ("git_add", "Write"),
            ("git_reset", "Destructive"),
            ("git_log", "Read"),
            ("git_create_branch", "Write"),
            ("git_checkout", "Write"),
            ("git_show", "Read"),
            ("git_branch", "Read"),
        ],
    );
}

#[test]
fn scaffold_github_server_without_annotations() {
    // This server sends no annotations: classes come from the names' verbs.
    assert_classes(
        "github",
        &[
            ("create_or_update_file", "Write"),
            ("search_repositories", "Read"),
            ("create_repository", "Write"),
            ("get_file_contents", "Read"),
            ("push_files", "Write"),
            ("create_issue", "Write"),
            ("create_pull_request", "Write"),
            ("fork_repository", "Write"),
            ("create_branch", "Write"),
            ("list_commits", "Read"),
            ("list_issues", "Read"),
            ("update_issue", "Write"),
            ("add_issue_comment", "Write"),
            ("search_code", "Read"),
            ("search_issues", "Read"),
            ("search_users", "Read"),
            ("get_issue", "Read"),
            ("get_pull_request", "Read"),
            ("list_pull_requests", "Read"),
            ("create_pull_request_review", "Write"),
            ("merge_pull_request", "Write"),
            ("get_pull_request_files", "Read"),
            ("get_pull_request_status", "Read"),
            ("update_pull_request_branch", "Write"),
            ("get_pull_request_comments", "Read"),
            ("get_pull_request_reviews", "Read"),
        ],
    );
}

#[test]
fn scaffold_execute_and_financial_tools_from_a_json_rpc_response() {
    let t = Temp::new("scaffold");
    let path = t.write(
        "tools.json",
        r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[
          {"name":"run_query","description":"Run a SQL query","annotations":{"readOnlyHint":false,"destructiveHint":false}},
          {"name":"create_refund","description":"Refund a charge","annotations":{"readOnlyHint":false,"destructiveHint":false}},
          {"name":"list_refunds","annotations":{"readOnlyHint":true}}
        ]}}"#,
    );
    let o = run(&["scaffold", &path], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tools"]["run_query"]["x-risk"], "Execute");
    assert_eq!(v["tools"]["run_query"]["rate_limit"], "10/minute");
    assert_eq!(v["tools"]["create_refund"]["x-risk"], "Financial");
    assert_eq!(v["tools"]["list_refunds"]["x-risk"], "Read");
    // The scaffold passes `check` without warnings.
    let out = t.write("policy.json", &stdout(&o));
    let c = run(&["check", &out], None);
    assert_eq!((c.status.code(), stdout(&c)), (Some(0), String::new()));
    assert_eq!(
        run(&["scaffold", "no/such/file.json"], None).status.code(),
        Some(2)
    );
}

#[test]
fn scaffolded_real_servers_check_clean() {
    let t = Temp::new("scaffold-check");
    for fixture in [
        "filesystem",
        "memory",
        "everything",
        "github",
        "time",
        "fetch",
        "git",
    ] {
        let v = scaffold(fixture);
        // Tools only in, so empty sections out: resources and prompts stay denied.
        assert_eq!(v["resources"], json!({}), "{fixture}");
        assert_eq!(v["prompts"], json!({}), "{fixture}");
        let path = t.write(&format!("{fixture}.json"), &v.to_string());
        let c = run(&["check", &path], None);
        assert_eq!(
            (c.status.code(), stdout(&c)),
            (Some(0), String::new()),
            "{fixture}"
        );
    }
}

#[test]
fn example_test_files_validate_against_the_test_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/policy-test.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .offline()
        .build(&schema)
        .unwrap();
    for name in ["security-scanner", "github", "payments", "filesystem"] {
        let path = repo().join(format!("examples/policies/{name}.test.json"));
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{}: {e}", e.instance_path().as_str()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    assert!(!validator.is_valid(&json!({"policy": "p.json", "cases": [{"name": "x", "calls": [{"tool": "t", "expect": {"decison": "allow"}}]}]})));
}
