//! `docs/POLICY.md` is the user reference of the policy format. This test reads it and checks
//! every example against the code, so that the reference cannot drift:
//!
//! - every ```` ```json ```` block must load with [`Policy::from_json_str`] and validate against
//!   `docs/policy.schema.json`;
//! - every ```` ```json error ```` block must fail to load, and the ```` ```text ```` block right
//!   after it holds the exact error lines, as `mcp-policy check` prints them for a file named
//!   `policy.json` (`policy.json:LINE:COL: POINTER: MESSAGE`). The schema must reject the
//!   example too, unless the info string says `loader-only` (what the schema cannot express:
//!   regex syntax, duplicate keys, counters that disagree);
//! - every table whose first column is `at` is a list of calls replayed, in order, through a
//!   fresh engine (manual clock, in-memory store) over the closest ```` ```json ```` policy above
//!   it. Columns: `at` (UTC time on 2025-11-21), `grant`, `call`, `answer`, `rule`, `details`.

use std::collections::HashMap;

use mcp_policy::{Decision, Engine, Grant, ManualClock, MemoryStore, Policy, Reservation};
use serde_json::Value;

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/POLICY.md"));
const SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docs/policy.schema.json"
));

/// 2025-11-21T00:00:00Z, in milliseconds since the Unix epoch: the day every table's `at`
/// column is on.
const DAY_START_MS: u64 = 1_763_683_200_000;

/// One element of the document that the test reads.
#[derive(Debug)]
enum Item {
    /// A fenced block: its info string, its text, and the line of its opening fence.
    Fence {
        info: String,
        body: String,
        line: usize,
    },
    /// A table: its rows (the header first, the separator row left out) and its first line.
    Table { rows: Vec<Vec<String>>, line: usize },
}

/// Splits the Markdown into fenced blocks and tables (everything else is prose).
fn items(doc: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut lines = doc.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let mut body = Vec::new();
            let mut closed = false;
            for (_, inner) in lines.by_ref() {
                if inner == "```" {
                    closed = true;
                    break;
                }
                body.push(inner);
            }
            assert!(closed, "POLICY.md:{}: unclosed code fence", i + 1);
            out.push(Item::Fence {
                info: info.trim().to_owned(),
                body: body.join("\n"),
                line: i + 1,
            });
        } else if line.starts_with('|') {
            let mut rows = vec![cells(line)];
            while let Some((_, next)) = lines.peek() {
                if !next.starts_with('|') {
                    break;
                }
                let row = cells(next);
                if !row
                    .iter()
                    .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
                {
                    rows.push(row);
                }
                lines.next();
            }
            out.push(Item::Table { rows, line: i + 1 });
        }
    }
    out
}

/// The cells of one table row, trimmed.
fn cells(line: &str) -> Vec<String> {
    assert!(
        !line.contains("\\|"),
        "escaped pipes are not supported in tables: {line}"
    );
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

fn schema_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .offline()
        .build(&schema)
        .unwrap()
}

/// What the test found and checked, for the final count.
#[derive(Debug, Default)]
struct Counts {
    policies: usize,
    errors: usize,
    tables: usize,
    calls: usize,
}

#[test]
fn every_example_in_policy_md_is_checked_against_the_code() {
    let validator = schema_validator();
    let items = items(DOC);
    let mut counts = Counts::default();
    let mut failures: Vec<String> = Vec::new();
    // The closest policy above the current point: its text and the line of its block.
    let mut current: Option<(&str, usize)> = None;
    let mut i = 0;
    while let Some(item) = items.get(i) {
        i += 1;
        match item {
            Item::Fence { info, body, line } if info == "json" => {
                counts.policies += 1;
                match Policy::from_json_str(body) {
                    Ok(_) => {}
                    Err(e) => failures.push(format!(
                        "POLICY.md:{line}: this example does not load:\n{e}"
                    )),
                }
                match serde_json::from_str::<Value>(body) {
                    Ok(value) => {
                        let errors: Vec<String> = validator
                            .iter_errors(&value)
                            .map(|e| format!("{} at {}", e, e.instance_path()))
                            .collect();
                        if !errors.is_empty() {
                            failures.push(format!(
                                "POLICY.md:{line}: the schema rejects this example: {errors:?}"
                            ));
                        }
                    }
                    Err(e) => failures.push(format!("POLICY.md:{line}: not JSON: {e}")),
                }
                current = Some((body, *line));
            }
            Item::Fence { info, body, line } if info.starts_with("json error") => {
                counts.errors += 1;
                let words: Vec<&str> = info.split_whitespace().collect();
                assert!(
                    words == ["json", "error"] || words == ["json", "error", "loader-only"],
                    "POLICY.md:{line}: unknown info string {info:?}"
                );
                let expected = match items.get(i) {
                    Some(Item::Fence { info, body, .. }) if info == "text" => body.trim_end(),
                    _ => panic!(
                        "POLICY.md:{line}: a ```json error block must be followed by a ```text block"
                    ),
                };
                i += 1;
                match Policy::from_json_str(body) {
                    Ok(_) => failures.push(format!(
                        "POLICY.md:{line}: this example should fail to load, but loads"
                    )),
                    Err(errors) => {
                        let actual: Vec<String> = errors
                            .to_string()
                            .lines()
                            .map(|l| format!("policy.json:{l}"))
                            .collect();
                        let actual = actual.join("\n");
                        if actual != expected {
                            failures.push(format!(
                                "POLICY.md:{line}: load errors differ\nexpected:\n{expected}\nactual:\n{actual}"
                            ));
                        }
                    }
                }
                if words.len() == 2 {
                    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| {
                        panic!("POLICY.md:{line}: not JSON ({e}); mark it loader-only")
                    });
                    if validator.is_valid(&value) {
                        failures.push(format!(
                            "POLICY.md:{line}: the schema accepts this broken example (mark it loader-only if the schema cannot tell)"
                        ));
                    }
                }
            }
            Item::Fence { info, line, .. } => {
                assert!(
                    !info.starts_with("json"),
                    "POLICY.md:{line}: unknown info string {info:?}"
                );
            }
            Item::Table { rows, line } => {
                let Some(header) = rows.first() else { continue };
                if header.first().map(String::as_str) != Some("at") {
                    continue;
                }
                assert_eq!(
                    header,
                    &["at", "grant", "call", "answer", "rule", "details"],
                    "POLICY.md:{line}: a table of calls has these columns"
                );
                let Some((policy, policy_line)) = current else {
                    panic!("POLICY.md:{line}: a table of calls needs a ```json policy above it")
                };
                counts.tables += 1;
                counts.calls += rows.len() - 1;
                replay(policy, policy_line, &rows[1..], *line, &mut failures);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) in docs/POLICY.md:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // A broken extractor must fail rather than check nothing.
    assert!(counts.policies >= 24, "{counts:?}");
    assert!(counts.errors >= 11, "{counts:?}");
    assert!(counts.tables >= 18, "{counts:?}");
    assert!(counts.calls >= 140, "{counts:?}");
}

#[test]
fn the_reference_stands_alone() {
    assert!(
        !DOC.contains("../shared"),
        "POLICY.md links outside the repository"
    );
    assert!(!DOC.contains("policy-v1.md"));
}

/// Replays one table of calls; mismatches are added to `failures`.
fn replay(
    policy: &str,
    policy_line: usize,
    rows: &[Vec<String>],
    table_line: usize,
    failures: &mut Vec<String>,
) {
    let clock = ManualClock::new(DAY_START_MS);
    let engine = Engine::with_parts(
        Policy::from_json_str(policy).unwrap(),
        clock.clone(),
        MemoryStore::new(),
    );
    // Approval ids by label, and the reservations of allowed calls by their time.
    let mut approvals: HashMap<String, String> = HashMap::new();
    let mut reservations: HashMap<u64, Reservation> = HashMap::new();
    for (n, row) in rows.iter().enumerate() {
        // Header, separator, then the rows.
        let line = table_line + 2 + n;
        let at = format!("POLICY.md:{line} (policy at line {policy_line})");
        let [time, grant, call, answer, rule, details] = row.as_slice() else {
            failures.push(format!("{at}: a row has six cells"));
            continue;
        };
        let now = parse_time(time).unwrap_or_else(|| panic!("{at}: bad time {time:?}"));
        clock.set(now);
        let call = unquote(call);
        let details = parse_details(details).unwrap_or_else(|e| panic!("{at}: {e}"));
        if let Some(label) = call.strip_prefix("host records approval ") {
            let Some(id) = approvals.get(label) else {
                panic!("{at}: no approval {label} above");
            };
            let result = engine.record_approval(id);
            let refused = details.contains(&Detail::Refused);
            if result.is_ok() == refused {
                failures.push(format!(
                    "{at}: recording approval {label}: {result:?}, expected {}",
                    if refused { "a refusal" } else { "success" }
                ));
            }
            continue;
        }
        if let Some(when) = call.strip_prefix("host releases the call at ") {
            let when = parse_time(when).unwrap_or_else(|| panic!("{at}: bad time {when:?}"));
            let Some(reservation) = reservations.remove(&when) else {
                panic!("{at}: no allowed call with a reservation at that time");
            };
            if let Err(e) = engine.release(reservation) {
                failures.push(format!("{at}: release failed: {e}"));
            }
            continue;
        }
        let (tool, args) = match call.split_once(' ') {
            Some((tool, args)) => (
                tool,
                serde_json::from_str::<Value>(args)
                    .unwrap_or_else(|e| panic!("{at}: bad arguments {args:?}: {e}")),
            ),
            None => (call.as_str(), Value::Null),
        };
        let grant = parse_grant(grant).unwrap_or_else(|| panic!("{at}: bad grant {grant:?}"));
        let mut decision = engine.evaluate(tool, &args, &grant);
        let mut problems = Vec::new();
        let verdict = decision.verdict.as_str();
        if verdict != answer {
            problems.push(format!("answer {verdict}, expected {answer}"));
        }
        let expected_rule = unquote(rule);
        let expected_rule = if expected_rule == "\"\"" {
            ""
        } else {
            expected_rule.as_str()
        };
        if &*decision.rule != expected_rule {
            problems.push(format!(
                "rule {:?}, expected {expected_rule:?}",
                &*decision.rule
            ));
        }
        for detail in &details {
            check_detail(detail, &decision, &mut approvals, &mut problems);
        }
        // Only an allowed call that charged counters has a reservation.
        if let Some(r) = decision.reservation.take() {
            reservations.insert(now, r);
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{at}: `{call}` as {grant:?}: {}\n  decision: {decision:?}",
                problems.join("; ")
            ));
        }
    }
}

/// Strips the Markdown around a cell: a code span's backticks, or emphasis.
fn unquote(cell: &str) -> String {
    let cell = cell.trim();
    let inner = if let Some(code) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
        code
    } else if let Some(text) = cell.strip_prefix('*').and_then(|c| c.strip_suffix('*')) {
        text
    } else {
        cell
    };
    inner.trim().to_owned()
}

/// `08:00:00` or `08:00:00.250` (hours may pass 23: `24:00:00` is the next midnight).
fn parse_time(text: &str) -> Option<u64> {
    let (clock, millis) = match text.split_once('.') {
        Some((clock, ms)) if ms.len() == 3 => (clock, ms.parse::<u64>().ok()?),
        Some(_) => return None,
        None => (text, 0),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    if *m > 59 || *s > 59 {
        return None;
    }
    Some(DAY_START_MS + ((h * 60 + m) * 60 + s) * 1_000 + millis)
}

/// `alice`, `alice, session s1`, `ci-runner, attrs {"team": "sec"}`.
fn parse_grant(cell: &str) -> Option<Grant> {
    let mut parts = cell.splitn(2, ", ");
    let mut grant = Grant::new(parts.next()?.trim());
    let mut rest = parts.next().unwrap_or_default().trim();
    while !rest.is_empty() {
        if let Some(attrs) = rest.strip_prefix("attrs ") {
            let Value::Object(map) = serde_json::from_str(unquote(attrs).as_str()).ok()? else {
                return None;
            };
            grant.attrs = map;
            rest = "";
        } else if let Some(session) = rest.strip_prefix("session ") {
            let (session, more) = session.split_once(", ").unwrap_or((session, ""));
            grant.session = Some(unquote(session));
            rest = more.trim();
        } else {
            return None;
        }
    }
    Some(grant)
}

/// One fact a table asserts about a decision.
#[derive(Debug, Clone, PartialEq)]
enum Detail {
    Remaining(u64),
    RetryAfter(u64),
    Counter(String),
    Message(String),
    MessageStarting(String),
    /// The approval id, by label: one label is one id, two labels are two ids.
    Approval(String),
    /// A host action was refused.
    Refused,
}

/// Splits the details cell on `;` outside double quotes and reads each item. Text in
/// parentheses outside double quotes is a comment.
fn parse_details(cell: &str) -> Result<Vec<Detail>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut comment_depth = 0usize;
    for c in cell.chars() {
        if comment_depth > 0 {
            match c {
                '(' => comment_depth += 1,
                ')' => comment_depth -= 1,
                _ => {}
            }
        } else if c == '(' && !in_string {
            comment_depth = 1;
        } else if in_string {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == ';' {
            items.push(std::mem::take(&mut current));
        } else {
            if c == '"' {
                in_string = true;
            }
            current.push(c);
        }
    }
    if comment_depth > 0 {
        return Err(format!("unclosed parenthesis in {cell:?}"));
    }
    items.push(current);
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let quoted = |text: &str| -> Result<String, String> {
            serde_json::from_str::<String>(text.trim())
                .map_err(|e| format!("bad quoted text {text:?}: {e}"))
        };
        out.push(if let Some(n) = item.strip_prefix("remaining ") {
            Detail::Remaining(n.parse().map_err(|_| format!("bad count {n:?}"))?)
        } else if let Some(d) = item.strip_prefix("retry after ") {
            Detail::RetryAfter(parse_span(d)?)
        } else if let Some(c) = item.strip_prefix("counter ") {
            Detail::Counter(unquote(c))
        } else if let Some(m) = item.strip_prefix("message starting ") {
            Detail::MessageStarting(quoted(m)?)
        } else if let Some(m) = item.strip_prefix("message ") {
            Detail::Message(quoted(m)?)
        } else if let Some(label) = item.strip_prefix("approval ") {
            Detail::Approval(label.trim().to_owned())
        } else if item == "refused" {
            Detail::Refused
        } else {
            return Err(format!("unknown detail {item:?}"));
        });
    }
    Ok(out)
}

/// `40 s`, `1 ms`, `59 min 20 s`, `16 h`, `2.5 s`: milliseconds.
fn parse_span(text: &str) -> Result<u64, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(format!("bad duration {text:?}"));
    }
    let mut total = 0.0f64;
    for pair in words.chunks(2) {
        let [n, unit] = pair else {
            return Err(format!("bad duration {text:?}"));
        };
        let n: f64 = n.parse().map_err(|_| format!("bad duration {text:?}"))?;
        let unit_ms = match *unit {
            "ms" => 1.0,
            "s" => 1_000.0,
            "min" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return Err(format!("bad unit in {text:?}")),
        };
        total += n * unit_ms;
    }
    Ok(total.round() as u64)
}

fn check_detail(
    detail: &Detail,
    d: &Decision,
    approvals: &mut HashMap<String, String>,
    problems: &mut Vec<String>,
) {
    match detail {
        Detail::Remaining(n) => {
            if d.remaining != Some(*n) {
                problems.push(format!("remaining {:?}, expected {n}", d.remaining));
            }
        }
        Detail::RetryAfter(ms) => {
            if d.retry_after_ms != Some(*ms) {
                problems.push(format!(
                    "retry_after_ms {:?}, expected {ms}",
                    d.retry_after_ms
                ));
            }
        }
        Detail::Counter(c) => {
            if d.counter.as_deref() != Some(c.as_str()) {
                problems.push(format!("counter {:?}, expected {c:?}", d.counter));
            }
        }
        Detail::Message(m) => {
            if d.message.as_deref() != Some(m.as_str()) {
                problems.push(format!("message {:?}, expected {m:?}", d.message));
            }
        }
        Detail::MessageStarting(m) => {
            if !d
                .message
                .as_deref()
                .unwrap_or_default()
                .starts_with(m.as_str())
            {
                problems.push(format!(
                    "message {:?}, expected it to start with {m:?}",
                    d.message
                ));
            }
        }
        Detail::Approval(label) => {
            let Some(id) = d.approval_id.clone() else {
                problems.push(format!("no approval id, expected approval {label}"));
                return;
            };
            match approvals.get(label) {
                Some(known) if *known != id => {
                    problems.push(format!("approval {label} has changed id"))
                }
                Some(_) => {}
                None => {
                    if let Some((other, _)) = approvals.iter().find(|(_, v)| **v == id) {
                        problems.push(format!("approval {label} has the id of approval {other}"));
                    }
                    approvals.insert(label.clone(), id);
                }
            }
        }
        Detail::Refused => problems.push("`refused` is for host actions".into()),
    }
}

/// The schema and the loader agree on the forms of paths, scopes, windows and rate-limit
/// strings, which the schema checks with patterns.
#[test]
fn the_schema_agrees_with_the_loader_on_paths_scopes_and_windows() {
    let validator = schema_validator();
    let mut disagreements = Vec::new();
    let mut check = |what: &str, document: Value| {
        let loads = Policy::from_json_str(&document.to_string()).is_ok();
        let valid = validator.is_valid(&document);
        if loads != valid {
            disagreements.push(format!("{what}: loader {loads}, schema {valid}"));
        }
    };
    let paths = [
        "args",
        "args.a",
        "args.a.0.b",
        "args.a/b",
        "args.",
        "args..a",
        ".args",
        "args/a",
        "argz.a",
        "/args",
        "/args/a~1b/0",
        "/args/",
        "/args//x",
        "/args/a~2",
        "/args.a",
        "tool",
        "/tool",
        "tool.x",
        "/tool/x",
        "grant",
        "grant.id",
        "grant.id.x",
        "grant.session",
        "/grant/session",
        "/grant/session/x",
        "grant.attrs",
        "grant.attrs.team.name",
        "/grant/attrs/a~0b",
        "grant.attrs..x",
        "grant.name",
        "",
    ];
    for path in paths {
        let condition = serde_json::json!({"path": path, "op": "exists", "value": true});
        check(
            &format!("path {path:?}"),
            serde_json::json!({"version": "1", "default": "deny",
                "tools": {"t": {"require": [condition]}}}),
        );
        let limit = serde_json::json!({"counter": "c", "window": 60, "max": 1, "cost": path});
        check(
            &format!("cost {path:?}"),
            serde_json::json!({"version": "1", "default": "deny",
                "tools": {"t": {"limits": [limit]}}}),
        );
    }
    let scopes = [
        "grant",
        "session",
        "global",
        "tool",
        "user",
        "args",
        "args.",
        "args.a",
        "args.a.b",
        "args..a",
        "/args",
        "/args/",
        "/args/a",
        "/args/a~1b",
        "/args/a~2",
        "grant.id",
        "tool.x",
    ];
    for scope in scopes {
        let limit = serde_json::json!({"counter": "c", "window": 60, "max": 1, "scope": scope});
        check(
            &format!("scope {scope:?}"),
            serde_json::json!({"version": "1", "default": "deny",
                "tools": {"t": {"limits": [limit]}}}),
        );
    }
    let windows = [
        serde_json::json!("second"),
        serde_json::json!("minute"),
        serde_json::json!("hour"),
        serde_json::json!("day"),
        serde_json::json!("minutes"),
        serde_json::json!("90s"),
        serde_json::json!("15m"),
        serde_json::json!("2h"),
        serde_json::json!("1d"),
        serde_json::json!("0060"),
        serde_json::json!("0s"),
        serde_json::json!("1.5m"),
        serde_json::json!("5 m"),
        serde_json::json!("1w"),
        serde_json::json!("500ms"),
        serde_json::json!(""),
        serde_json::json!(60),
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!("3660d"),
        serde_json::json!("3661d"),
        serde_json::json!("87840h"),
        serde_json::json!("87841h"),
        serde_json::json!("5270400m"),
        serde_json::json!("5270401m"),
        serde_json::json!("316224000s"),
        serde_json::json!("316224001s"),
        serde_json::json!("316224000"),
        serde_json::json!("316224001"),
        serde_json::json!("0003660d"),
        serde_json::json!("99999999999999999999s"),
        serde_json::json!(316_224_000),
        serde_json::json!(316_224_001),
        serde_json::json!(true),
    ];
    for window in windows {
        let limit = serde_json::json!({"counter": "c", "window": window, "max": 1});
        check(
            &format!("window {window}"),
            serde_json::json!({"version": "1", "default": "deny",
                "tools": {"t": {"limits": [limit]}}}),
        );
        check(
            &format!("ttl {window}"),
            serde_json::json!({"version": "1", "default": "deny", "approvals": {"ttl": window}}),
        );
    }
    let rates = [
        "10/minute",
        "10 / minute",
        " 10/minute ",
        "+10/minute",
        "010/minute",
        "3/90s",
        "5/60",
        "0/minute",
        "10/minutes",
        "10",
        "ten/minute",
        "10/0s",
        "1/2/minute",
        "-1/minute",
        "1.5/minute",
        "1/3660d",
        "1/3661d",
        "1/316224001",
    ];
    for rate in rates {
        check(
            &format!("rate_limit {rate:?}"),
            serde_json::json!({"version": "1", "default": "deny",
                "tools": {"t": {"rate_limit": rate}}}),
        );
    }
    assert!(
        disagreements.is_empty(),
        "docs/policy.schema.json and the loader disagree:\n{}",
        disagreements.join("\n")
    );
}

/// Section 12's example: the tools it says `tools/list` keeps and drops.
#[test]
fn the_listing_example_keeps_and_drops_what_it_says() {
    let section = DOC
        .split("\n## 12. Listing tools")
        .nth(1)
        .expect("POLICY.md has a section 12");
    let policy = section
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("section 12 has a ```json example");
    let policy = Policy::from_json_str(policy).unwrap();
    let names = [
        "refund",
        "get_bucket",
        "delete_bucket",
        "stop_scan",
        "legacy_export",
    ];
    let listed = serde_json::json!({
        "tools": names.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>(),
        "nextCursor": "c2",
    });
    assert!(section.contains("keeps `refund` and `get_bucket` and drops the other three"));
    assert_eq!(
        policy.filter_tools_list(&listed),
        serde_json::json!({
            "tools": [{"name": "refund"}, {"name": "get_bucket"}],
            "nextCursor": "c2",
        })
    );
}
