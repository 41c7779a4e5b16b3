//! Resources and prompts in `eval`, `test`, `explain` and `scaffold`.

use super::*;
use crate::schema::policy_validator;

/// Tools, resources (a limit, a hidden pattern) and prompts (a condition, a hidden pattern).
const SECTIONS: &str = r#"{"version":"1","default":"deny",
  "tools":{"scan":{}},
  "resources":{"file:///srv/docs/*":{"rate_limit":"2/minute"},"file:///srv/docs/secret*":{"action":"hide"}},
  "prompts":{"summarise":{"require":[{"path":"args.style","op":"in","value":["short","long"]}]},
             "internal_*":{"action":"hide"}}}"#;

#[test]
fn eval_decides_tool_resource_and_prompt_lines() {
    let t = Temp::new("eval-sections");
    let policy = t.write("p.json", SECTIONS);
    let input = [
        r#"{"tool":"scan","at":0}"#,
        r#"{"resource":"file:///srv/docs/guide.md"}"#,
        r#"{"resource":"file:///srv/docs/%2e%2e/%2e%2e/etc/shadow"}"#,
        r#"{"resource":"FILE://localhost/srv/docs/secret.txt"}"#,
        r#"{"prompt":"summarise","args":{"style":"short"},"grant":"alice"}"#,
        r#"{"prompt":"summarise","args":{"style":"poem"}}"#,
        r#"{"prompt":"internal_plan"}"#,
        r#"{"resource":"file:///srv/docs/a/../b.md","args":{}}"#,
        r#"{"resource":"file:///srv/docs/c.md"}"#,
    ]
    .join("\n");
    let o = run(&["eval", "--policy", &policy], Some(&input));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    let out: Vec<&str> = text.lines().collect();
    let docs = "/resources/file:~1~1~1srv~1docs~1*";
    let expected = [
        r#"{"decision":"allow","rule":"/tools/scan"}"#.to_owned(),
        format!(r#"{{"decision":"allow","rule":"{docs}","remaining":1,"reservation":"r-1"}}"#),
        // `..` resolved: /etc/shadow matches no key.
        r#"{"decision":"deny","rule":"/default","message":"this resource is not allowed by this policy (default: deny)"}"#.to_owned(),
        // Upper case and localhost: still the hidden pattern.
        r#"{"decision":"deny","rule":"/resources/file:~1~1~1srv~1docs~1secret*/action","message":"this resource is hidden by policy"}"#.to_owned(),
        r#"{"decision":"allow","rule":"/prompts/summarise"}"#.to_owned(),
        r#"{"decision":"deny","rule":"/prompts/summarise/require/0","message":"requirement not met: `args.style` in [\"short\",\"long\"]"}"#.to_owned(),
        r#"{"decision":"deny","rule":"/prompts/internal_*/action","message":"this prompt is hidden by policy"}"#.to_owned(),
        format!(r#"{{"decision":"allow","rule":"{docs}","remaining":0,"reservation":"r-2"}}"#),
        // The third read in the minute: the resource's own budget is spent.
        format!(r#"{{"decision":"limit","rule":"{docs}/rate_limit","counter":"resources/file:///srv/docs/*.rate_limit","retry_after_ms":60000,"message":"#),
    ];
    assert_eq!(out.len(), expected.len(), "{out:?}");
    for (got, want) in out.iter().zip(&expected) {
        assert!(got.starts_with(want.as_str()), "got  {got}\nwant {want}");
    }
}

#[test]
fn eval_subject_errors_are_error_lines() {
    let t = Temp::new("eval-subject-errors");
    let policy = t.write("p.json", SECTIONS);
    let cases = [
        (
            r#"{"tool":"scan","resource":"file:///srv/docs/a"}"#,
            "line 1: a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`, found `tool` and `resource`",
        ),
        (
            r#"{"prompt":"summarise","resource":"file:///x","tool":"t"}"#,
            "line 2: a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`, found `tool` and `resource` and `prompt`",
        ),
        (
            r#"{"args":{},"at":5}"#,
            "line 3: a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`",
        ),
        (
            r#"{"resource":"file:///srv/docs/%zz"}"#,
            "line 4: `resource`: cannot read the URI: invalid percent-encoding \"%zz\" at byte 17 of the URI",
        ),
        (
            r#"{"resource":"no scheme here"}"#,
            "line 5: `resource`: cannot read the URI: not a URI",
        ),
        (
            r#"{"resource":"file:///srv/docs/a","args":{"x":1}}"#,
            "line 6: `args` of a `resource` line must be absent or `{}`",
        ),
        (
            r#"{"prompt":7}"#,
            "line 7: `prompt` must be a string, found a number",
        ),
        (
            r#"{"prompt":"summarise","args":["short"]}"#,
            "line 8: `args` must be a JSON object, found an array",
        ),
        (
            r#"{"resourc":"file:///srv/docs/a"}"#,
            "line 9: unknown field `resourc`; expected tool, resource, prompt, args, grant, at, approve or release",
        ),
    ];
    let input: Vec<&str> = cases.iter().map(|(line, _)| *line).collect();
    // A good line after the bad ones is still answered.
    let input = format!(
        "{}\n{{\"resource\":\"file:///srv/docs/a\"}}\n",
        input.join("\n")
    );
    let o = run(&["eval", "--policy", &policy], Some(&input));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = lines(&o);
    assert_eq!(out.len(), cases.len() + 1, "{out:?}");
    for ((line, want), got) in cases.iter().zip(&out) {
        let message = got["error"].as_str().unwrap_or_default();
        assert!(message.starts_with(want), "{line}: got {got}, want {want}");
    }
    assert_eq!(out[cases.len()]["decision"], "allow", "{out:?}");
}

#[test]
fn test_files_take_resource_and_prompt_cases() {
    let t = Temp::new("testcmd-sections");
    t.write("p.json", SECTIONS);
    let file = t.write(
        "p.test.json",
        r#"{"policy":"p.json","cases":[
          {"name":"reads under /srv/docs, two a minute","calls":[
            {"resource":"file:///srv/docs/a.md","expect":{"decision":"allow","remaining":1}},
            {"resource":"file:///SRV/docs/../docs/b.md","expect":{"decision":"deny","rule":"/default"}},
            {"resource":"file:///srv/docs/./b.md","at":1000,"expect":{"decision":"allow","remaining":0}},
            {"resource":"file:///srv/docs/c.md","at":2000,"expect":{"decision":"limit","retry_after_ms":58000}}]},
          {"name":"prompt arguments","calls":[
            {"prompt":"summarise","args":{"style":"long"},"expect":{"decision":"allow","rule":"/prompts/summarise"}},
            {"prompt":"summarise","expect":{"decision":"deny","rule":"/prompts/summarise/require/0"}},
            {"prompt":"internal_x","expect":{"decision":"deny","message_contains":"hidden"}}]},
          {"name":"a bad URI is an error","calls":[
            {"resource":"file:///a/%zz","expect":{"error_contains":"invalid percent-encoding"}}]},
          {"name":"the escape is not under /srv/docs","calls":[
            {"resource":"file:///srv/docs/%2e%2e/%2e%2e/etc/shadow","expect":{"decision":"allow"}}]}
        ]}"#,
    );
    let o = run(&["test", &file], None);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    for needle in [
        "ok reads under /srv/docs, two a minute\n",
        "ok prompt arguments\n",
        "ok a bad URI is an error\n",
        "FAIL the escape is not under /srv/docs\n",
        "actual   {\"decision\":\"deny\",",
        "\"rule\":\"/default\"}",
        "- decision: expected \"allow\", got \"deny\"",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(out.ends_with("3 passed, 1 failed\n"), "{out}");
}

/// `file:///*` readable only under /srv/docs; prompts: a hidden pattern (also named by the
/// top-level `hide`, which is for tools only) and a limited one.
const EXPLAIN_SECTIONS: &str = r#"{"version":"1","default":"deny","hide":["internal_*"],
  "resources":{"file:///*":{"require":[{"path":"uri","op":"path_under","value":"/srv/docs","on_deny":"only /srv/docs is readable"}]}},
  "prompts":{"internal_*":{"action":"hide"},
             "greet":{"require":[{"path":"args.name","op":"exists","value":true}],"rate_limit":"5/minute"}}}"#;

fn explain(policy: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["explain", "--policy", policy];
    all.extend(args);
    let o = run(&all, None);
    (o.status.code(), stdout(&o), stderr(&o))
}

#[test]
fn explain_resource_with_a_dot_dot_escape() {
    let t = Temp::new("explain-resource");
    let policy = t.write("p.json", EXPLAIN_SECTIONS);
    let escape = "file:///srv/docs/%2e%2e/%2e%2e/etc/shadow";
    let (code, out, err) = explain(&policy, &["--resource", escape]);
    assert_eq!(code, Some(0), "{err}");
    let rule = "/resources/file:~1~1~1*/require/0";
    for needle in [
        format!("call:   resource `file:///etc/shadow` (normal form of `{escape}`)"),
        "1. hide: the top-level `hide` names tools only".to_owned(),
        "2. entry: /resources/file:~1~1~1* — pattern \"file:///*\"".to_owned(),
        "5. require, then deny_if (the resource's entry; `all_tools` is for tools only):"
            .to_owned(),
        // The probe decided the resource itself: `uri` is there, and is not under /srv/docs.
        format!("{rule}: require uri path_under \"/srv/docs\" → false"),
        format!("8. answer: deny (rule {rule})"),
        "message: only /srv/docs is readable".to_owned(),
    ] {
        assert!(out.contains(&needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!out.contains("note:"), "{out}");
    // The same pattern lets a path under /srv/docs through; its URI is shown once.
    let (_, out, _) = explain(&policy, &["--resource", "file:///srv/docs/a.md"]);
    assert!(
        out.contains("call:   resource `file:///srv/docs/a.md`, grant"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{rule}: require uri path_under \"/srv/docs\" → true"
        )),
        "{out}"
    );
    assert!(
        out.contains("8. answer: allow (rule /resources/file:~1~1~1*)"),
        "{out}"
    );
    // A resource read has no arguments, and a URI must read.
    let (code, _, err) = explain(
        &policy,
        &["--resource", "file:///a", "--args", r#"{"x":1}"#],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("a resource read has no arguments"), "{err}");
    let (code, _, err) = explain(&policy, &["--resource", "file:///%zz"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--resource: cannot read the URI: invalid percent-encoding"),
        "{err}"
    );
}

#[test]
fn explain_hidden_prompt_and_an_allowed_one() {
    let t = Temp::new("explain-prompt");
    let policy = t.write("p.json", EXPLAIN_SECTIONS);
    let (code, out, err) = explain(&policy, &["--prompt", "internal_plan"]);
    assert_eq!(code, Some(0), "{err}");
    for needle in [
        "call:   prompt `internal_plan`, grant `anonymous` (no session), args {}",
        "1. hide: the top-level `hide` names tools only",
        "2. entry: /prompts/internal_* — pattern \"internal_*\" (9 literal characters)",
        "3. action: hide → denied as if it did not exist",
        "8. answer: deny (rule /prompts/internal_*/action) — hidden",
        "message: this prompt is hidden by policy",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!out.contains("4. schema"), "{out}");
    assert!(!out.contains("note:"), "{out}");
    // A prompt's arguments are its `--args`; its limit is its own counter.
    let (_, out, _) = explain(
        &policy,
        &["--prompt", "greet", "--args", r#"{"name":"Ada"}"#],
    );
    for needle in [
        "/prompts/greet/require/0: require args.name exists true → true",
        "counter `prompts/greet.rate_limit`: at most 5 per 1m",
        "8. answer: allow (rule /prompts/greet)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let (_, out, _) = explain(&policy, &["--prompt", "greet"]);
    assert!(out.contains("→ false"), "{out}");
    assert!(
        out.contains("8. answer: deny (rule /prompts/greet/require/0)"),
        "{out}"
    );
    // A prompt no key matches, under default: deny.
    let (_, out, _) = explain(&policy, &["--prompt", "other"]);
    assert!(
        out.contains("2. entry: no `prompts` key matches `other` → default: deny"),
        "{out}"
    );
    assert!(out.contains("8. answer: deny (rule /default)"), "{out}");
    // Exactly one of --tool, --resource, --prompt.
    assert_eq!(
        explain(&policy, &["--prompt", "greet", "--tool", "x"]).0,
        Some(2)
    );
    assert_eq!(
        explain(&policy, &["--resource", "file:///a", "--prompt", "x"]).0,
        Some(2)
    );
    assert_eq!(explain(&policy, &[]).0, Some(2));
}

#[test]
fn scaffold_resources_templates_and_prompts_from_mixed_json_lines() {
    let path = "mcp-policy-cli/tests/data/lists/mixed.jsonl";
    let o = run(&["scaffold", path], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        policy_validator().is_valid(&v),
        "scaffold output fails the schema"
    );
    assert_eq!(v["tools"]["echo"]["x-risk"], "Read");
    let resources = v["resources"].as_object().unwrap();
    let mut keys: Vec<&str> = resources.keys().map(String::as_str).collect();
    keys.sort_unstable();
    // Both resources/list pages; the URI in normal form; one pattern per template; the
    // `{+target}` template (it would be `*`) left out.
    assert_eq!(
        keys,
        [
            "file:///logs/*.log",
            "file:///srv/docs/guide.md",
            "test://static/resource/*",
            "test://static/resource/1",
            "test://static/resource/2",
        ]
    );
    assert_eq!(
        resources["test://static/resource/1"]["rate_limit"],
        "60/minute"
    );
    assert_eq!(
        resources["test://static/resource/*"]["rate_limit"],
        "30/minute"
    );
    assert!(
        resources
            .values()
            .all(|e| e["x-risk"] == "Read" && e.get("action").is_none())
    );
    assert!(
        resources["file:///srv/docs/guide.md"]["x-why"]
            .as_str()
            .unwrap()
            .contains("FILE://localhost/srv/docs/./guide.md"),
        "{v}"
    );
    let prompts = v["prompts"].as_object().unwrap();
    assert_eq!(prompts.len(), 2, "{v}");
    assert_eq!(prompts["complex_prompt"]["rate_limit"], "30/minute");
    assert_eq!(
        prompts["complex_prompt"]["schema"]["required"],
        json!(["temperature"])
    );
    assert_eq!(
        prompts["simple_prompt"]["schema"]["additionalProperties"],
        false
    );
    let err = stderr(&o);
    assert!(
        err.contains("line 6: a JSON-RPC error answer was skipped"),
        "{err}"
    );
    assert!(
        err.contains("resource template \"{+target}\" was skipped"),
        "{err}"
    );
    // It checks clean, and decides as written.
    let t = Temp::new("scaffold-lists");
    let policy = t.write("policy.json", &text);
    let c = run(&["check", &policy], None);
    assert_eq!((c.status.code(), stdout(&c)), (Some(0), String::new()));
    let input = [
        r#"{"resource":"test://static/resource/7"}"#,
        r#"{"resource":"file:///logs/../etc/passwd.log"}"#,
        r#"{"resource":"file://LOCALHOST/srv/docs/guide.md"}"#,
        r#"{"prompt":"complex_prompt","args":{"style":"terse"}}"#,
        r#"{"prompt":"complex_prompt","args":{"temperature":"0.7"}}"#,
        r#"{"prompt":"simple_prompt","args":{"extra":"x"}}"#,
    ]
    .join("\n");
    let o = run(&["eval", "--policy", &policy], Some(&input));
    let out = lines(&o);
    let got: Vec<(&str, &str)> = out
        .iter()
        .map(|l| (l["decision"].as_str().unwrap(), l["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("allow", "/resources/test:~1~1static~1resource~1*"),
            ("deny", "/default"),
            ("allow", "/resources/file:~1~1~1srv~1docs~1guide.md"),
            ("deny", "/prompts/complex_prompt/schema"),
            ("allow", "/prompts/complex_prompt"),
            ("deny", "/prompts/simple_prompt/schema"),
        ]
    );
}

#[test]
fn scaffold_reads_single_list_results_of_each_kind() {
    let t = Temp::new("scaffold-single");
    let resources = t.write(
        "resources.json",
        r#"{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"https://api.example.com/v1/status","name":"status"}]}}"#,
    );
    let v: Value = serde_json::from_str(&stdout(&run(&["scaffold", &resources], None))).unwrap();
    assert_eq!(v["tools"], json!({}));
    assert_eq!(v["prompts"], json!({}));
    assert_eq!(
        v["resources"]["https://api.example.com/v1/status"]["x-risk"],
        "Read"
    );
    let templates = t.write(
        "templates.json",
        r#"{"resourceTemplates":[{"uriTemplate":"https://api.example.com/v1/items/{id}?fields={f}"},{"uriTemplate":"db://{table}/rows/{id}"}]}"#,
    );
    let o = run(&["scaffold", &templates], None);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["resources"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["db://*/rows/*"]
    );
    assert!(stderr(&o).contains("a literal `?`"), "{}", stderr(&o));
    let prompts = t.write(
        "prompts.json",
        r#"{"prompts":[{"name":"greet"},{"name":"greet"},{"name":"a*"}]}"#,
    );
    let o = run(&["scaffold", &prompts], None);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["prompts"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["greet"]
    );
    assert!(stderr(&o).contains("listed twice"), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"a*\" contains `*`"), "{}", stderr(&o));
    // A page of none of the four lists is unusable.
    let other = t.write("other.json", r#"{"result":{"things":[]}}"#);
    let o = run(&["scaffold", &other], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`resourceTemplates`"), "{}", stderr(&o));
}
