//! Differential test: random policies and call sequences, decided by the engine and by a
//! deliberately simple reference implementation written straight from the spec's words
//! (linear scans, a list of events per counter, brute-force retry search, no compilation).
//! Verdict, rule, counter, retry_after and remaining must be identical.

use std::collections::HashMap;

use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Reservation, Verdict};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const NAMES: &[&str] = &["read", "write", "delete", "run_query", "a/b"];
const PATTERNS: &[&str] = &["r*", "*e", "w?ite", "*", "de*te", "run_*"];
const PATHS: &[&str] = &[
    "args.n",
    "args.s",
    "args.list",
    "args.p",
    "args.obj.k",
    "args.missing",
    "/args/obj/k",
    "args.list.0",
    "grant.id",
    "grant.session",
    "grant.attrs.team",
    "tool",
];

/// (name, window ms, max, reset, scope): each counter has one definition, so policies load.
const COUNTERS: &[(&str, u64, u64, &str, &str)] = &[
    ("c_grant", 1000, 2, "sliding", "grant"),
    ("c_session", 2000, 3, "sliding", "session"),
    ("c_global", 1000, 4, "calendar", "global"),
    ("c_tool", 2000, 2, "calendar", "tool"),
    ("c_arg", 1000, 3, "sliding", "args.s"),
];

fn condition() -> impl Strategy<Value = Value> {
    let ops: Vec<(&str, Vec<Value>)> = vec![
        (
            "eq",
            vec![
                json!(1),
                json!(1.0),
                json!("a1"),
                json!(true),
                json!(null),
                json!([1, "a1"]),
            ],
        ),
        ("neq", vec![json!(1), json!("a1"), json!(null)]),
        ("in", vec![json!([1, "a1"]), json!(["b"]), json!([])]),
        ("not_in", vec![json!([1, "a1"]), json!(["b", 2])]),
        ("lt", vec![json!(0), json!(1), json!(2.5)]),
        ("lte", vec![json!(1), json!(2)]),
        ("gt", vec![json!(0), json!(1.5)]),
        ("gte", vec![json!(1), json!(-1)]),
        ("regex", vec![json!("^a"), json!("1$"), json!("[0-9]")]),
        ("not_regex", vec![json!("^a"), json!("b")]),
        ("starts_with", vec![json!("a"), json!("/srv")]),
        ("ends_with", vec![json!("1"), json!("b")]),
        ("contains", vec![json!("a"), json!(1), json!("x")]),
        ("exists", vec![json!(true), json!(false)]),
        (
            "path_under",
            vec![json!("/srv"), json!("/srv/a"), json!("srv")],
        ),
    ];
    (
        prop::sample::select(PATHS.to_vec()),
        prop::sample::select(ops),
    )
        .prop_flat_map(|(path, (op, values))| {
            prop::sample::select(values)
                .prop_map(move |value| json!({"path": path, "op": op, "value": value}))
        })
}

fn clause(message_field: &'static str) -> impl Strategy<Value = Value> {
    prop::collection::vec(condition(), 0..3).prop_map(move |conditions| {
        let mut m = Map::new();
        m.insert("conditions".into(), Value::Array(conditions));
        m.insert(message_field.into(), json!("clause message"));
        Value::Object(m)
    })
}

fn limit() -> impl Strategy<Value = Value> {
    (0..COUNTERS.len(), prop::sample::select(vec![json!(1), json!(0), json!(2), json!("args.n")])).prop_map(
        |(i, cost)| {
            let (name, window, max, reset, scope) = COUNTERS[i];
            json!({"counter": name, "window": format!("{}s", window / 1000), "max": max, "reset": reset,
                   "scope": scope, "cost": cost})
        },
    )
}

fn stage(tool: bool) -> impl Strategy<Value = Map<String, Value>> {
    let n = if tool { 3 } else { 2 };
    (
        prop::collection::vec(condition(), 0..n),
        prop::collection::vec(clause("on_deny"), 0..n),
        prop::collection::vec(clause("reason"), 0..2),
        prop::collection::vec(limit(), 0..n),
        any::<bool>(),
    )
        .prop_map(move |(require, deny_if, approve_if, limits, rate)| {
            let mut m = Map::new();
            for (k, v) in [
                ("require", require),
                ("deny_if", deny_if),
                ("approve_if", approve_if),
                ("limits", limits),
            ] {
                if !v.is_empty() {
                    m.insert(k.into(), Value::Array(v));
                }
            }
            if tool && rate {
                m.insert("rate_limit".into(), json!("2/second"));
            }
            m
        })
}

fn tool_entry() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "allow",
            "allow",
            "allow",
            "deny",
            "approve",
            "require_approval",
        ]),
        stage(true),
    )
        .prop_map(|(action, mut m)| {
            m.insert("action".into(), json!(action));
            Value::Object(m)
        })
}

fn policy_doc() -> impl Strategy<Value = Value> {
    let keys: Vec<&str> = NAMES.iter().chain(PATTERNS).copied().collect();
    (
        any::<bool>(),
        prop::collection::vec(prop::sample::select(keys.clone()), 0..2),
        prop::collection::vec((prop::sample::select(keys), tool_entry()), 0..5),
        stage(false),
    )
        .prop_map(|(allow, hide, tools, all)| {
            let mut t = Map::new();
            for (k, v) in tools {
                t.entry(k.to_owned()).or_insert(v);
            }
            json!({"version": "1", "default": if allow { "allow" } else { "deny" }, "hide": hide,
                   "all_tools": Value::Object(all), "tools": Value::Object(t)})
        })
}

#[derive(Debug, Clone)]
enum Op {
    Call {
        dt: u64,
        tool: String,
        args: Value,
        grant: usize,
    },
    Approve,
    Release(usize),
}

fn args() -> impl Strategy<Value = Value> {
    fn field(values: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
        prop::option::weighted(0.8, prop::sample::select(values))
    }
    (
        field(vec![
            json!(-1),
            json!(0),
            json!(1),
            json!(2),
            json!(2.5),
            json!("2"),
            json!(1.0),
        ]),
        field(vec![
            json!("a1"),
            json!("b"),
            json!("ab"),
            json!(7),
            json!("/srv/a"),
        ]),
        field(vec![json!([1, "a1"]), json!([]), json!("a1")]),
        field(vec![
            json!("/srv/a"),
            json!("/srv/../etc"),
            json!("//srv//x"),
            json!("srv/a"),
            json!(3),
        ]),
        field(vec![json!({"k": 1}), json!({"k": "a1"}), json!({})]),
    )
        .prop_map(|(n, s, list, p, obj)| {
            let mut m = Map::new();
            for (k, v) in [("n", n), ("s", s), ("list", list), ("p", p), ("obj", obj)] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
}

fn op() -> impl Strategy<Value = Op> {
    let tools: Vec<String> = NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["rename", "wxite", "other"].map(String::from))
        .collect();
    prop_oneof![
        8 => (prop_oneof![Just(0u64), 0u64..700, 0u64..2500], prop::sample::select(tools), args(), 0usize..4)
            .prop_map(|(dt, tool, args, grant)| Op::Call { dt, tool, args, grant }),
        1 => Just(Op::Approve),
        1 => any::<usize>().prop_map(Op::Release),
    ]
}

fn grant(i: usize) -> Grant {
    match i {
        0 => Grant::new("g0"),
        1 => Grant::new("g0").with_session("s1"),
        2 => Grant::new("g1").with_attr("team", json!("sec")),
        _ => Grant::new("g2")
            .with_session("s1")
            .with_attr("team", json!(["sec"])),
    }
}

// ---------------------------------------------------------------------------------------------
// The reference: the spec, read literally
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Answer {
    verdict: Verdict,
    rule: String,
    counter: Option<String>,
    retry_after_ms: Option<u64>,
    remaining: Option<u64>,
}

impl Answer {
    fn new(verdict: Verdict, rule: impl Into<String>) -> Answer {
        Answer {
            verdict,
            rule: rule.into(),
            counter: None,
            retry_after_ms: None,
            remaining: None,
        }
    }
}

struct Event {
    key: (String, String),
    at: u64,
    cost: u64,
    released: bool,
}

struct Reference {
    doc: Value,
    events: Vec<Event>,
    /// binding → approved?
    approvals: HashMap<String, bool>,
    last_approval: Option<String>,
}

fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn glob(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    glob(
        &pattern.chars().collect::<Vec<_>>(),
        &name.chars().collect::<Vec<_>>(),
    )
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => num(a) == num(b),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w)))
        }
        _ => a == b,
    }
}

fn normalize(path: &str) -> (bool, Vec<String>) {
    let abs = path.starts_with('/');
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..".into());
                }
            }
            p => out.push(p.into()),
        }
    }
    (abs, out)
}

fn resolve(path: &str, tool: &str, args: &Value, grant: &Grant) -> Option<Value> {
    let parts: Vec<String> = if let Some(rest) = path.strip_prefix('/') {
        rest.split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect()
    } else {
        path.split('.').map(String::from).collect()
    };
    let (root, rest) = parts.split_first()?;
    let mut v = match (root.as_str(), rest.first().map(String::as_str)) {
        ("tool", _) => return Some(json!(tool)),
        ("grant", Some("id")) => return Some(json!(grant.id)),
        ("grant", Some("session")) => return grant.session.as_ref().map(|s| json!(s)),
        ("grant", Some("attrs")) => {
            let mut v = Value::Object(grant.attrs.clone());
            for seg in &rest[1..] {
                v = v.get(seg.as_str())?.clone();
            }
            return Some(v);
        }
        ("args", _) => args.clone(),
        _ => return None,
    };
    for seg in rest {
        v = match &v {
            Value::Object(m) => m.get(seg)?.clone(),
            Value::Array(a)
                if seg.chars().all(|c| c.is_ascii_digit())
                    && (seg == "0" || !seg.starts_with('0')) =>
            {
                a.get(seg.parse::<usize>().ok()?)?.clone()
            }
            _ => return None,
        };
    }
    Some(v)
}

/// Ok(holds) or Err(()) for an evaluation error.
fn holds(c: &Value, tool: &str, args: &Value, grant: &Grant) -> Result<bool, ()> {
    let op = c["op"].as_str().unwrap_or_default();
    let value = &c["value"];
    let Some(found) = resolve(c["path"].as_str().unwrap_or_default(), tool, args, grant) else {
        return Ok(op == "exists" && value == &json!(false));
    };
    let s = found.as_str();
    Ok(match op {
        "exists" => value == &json!(true),
        "eq" => eq(&found, value),
        "neq" => !eq(&found, value),
        "in" => value.as_array().unwrap().iter().any(|v| eq(&found, v)),
        "not_in" => !value.as_array().unwrap().iter().any(|v| eq(&found, v)),
        "lt" | "lte" | "gt" | "gte" => {
            let (Some(x), Some(y)) = (found.is_number().then(|| num(&found)).flatten(), num(value))
            else {
                return Err(());
            };
            match op {
                "lt" => x < y,
                "lte" => x <= y,
                "gt" => x > y,
                _ => x >= y,
            }
        }
        "regex" | "not_regex" => {
            let s = s.ok_or(())?;
            let re = regex::Regex::new(value.as_str().unwrap()).unwrap();
            re.is_match(s) == (op == "regex")
        }
        "starts_with" => s.ok_or(())?.starts_with(value.as_str().unwrap()),
        "ends_with" => s.ok_or(())?.ends_with(value.as_str().unwrap()),
        "contains" => match (&found, value) {
            (Value::Array(items), _) => items.iter().any(|i| eq(i, value)),
            (Value::String(hay), Value::String(needle)) => hay.contains(needle.as_str()),
            _ => return Err(()),
        },
        "path_under" => {
            let (pa, pp) = normalize(s.ok_or(())?);
            let (da, dp) = normalize(value.as_str().unwrap());
            pa == da && pp.len() >= dp.len() && pp.iter().zip(&dp).all(|(a, b)| a == b)
        }
        _ => unreachable!("generated ops only"),
    })
}

/// Whether every condition of a clause holds; `Err(rule of the condition)` on an evaluation
/// error (every condition is evaluated, so an error anywhere counts).
fn clause_holds(
    clause: &Value,
    rule: &str,
    tool: &str,
    args: &Value,
    grant: &Grant,
) -> Result<bool, String> {
    let mut all = true;
    for (j, c) in clause["conditions"].as_array().unwrap().iter().enumerate() {
        match holds(c, tool, args, grant) {
            Err(()) => return Err(format!("{rule}/conditions/{j}")),
            Ok(h) => all &= h,
        }
    }
    Ok(all)
}

fn canonical(v: &Value) -> String {
    mcp_policy::approval::canonical_json(v)
}

fn by_value(v: &Value) -> String {
    // Scope keys compare numbers by value: 1 and 1.0 are one budget.
    match v {
        Value::Number(n) => n.as_f64().map(|f| format!("num:{f}")).unwrap_or_default(),
        Value::String(s) => format!("str:{s}"),
        other => format!("json:{}", canonical(other)),
    }
}

struct PlannedCharge {
    key: (String, String),
    window: u64,
    max: u64,
    calendar: bool,
    cost: u64,
    rule: String,
    counter: String,
}

impl Reference {
    fn used(&self, key: &(String, String), window: u64, calendar: bool, t: u64) -> u64 {
        self.events
            .iter()
            .filter(|e| !e.released && &e.key == key)
            .filter(|e| {
                if calendar {
                    e.at / window == t / window
                } else {
                    e.at <= t && t < e.at + window
                }
            })
            .map(|e| e.cost)
            .sum()
    }

    fn admits(&self, charges: &[PlannedCharge], t: u64) -> bool {
        charges
            .iter()
            .all(|c| self.used(&c.key, c.window, c.calendar, t) + c.cost <= c.max)
    }

    /// The spec's decision procedure, section 7, read literally.
    fn decide(
        &mut self,
        tool: &str,
        args: &Value,
        grant: &Grant,
        t: u64,
    ) -> (Answer, Option<Vec<usize>>) {
        let doc = self.doc.clone();
        // 1. hidden
        for (i, h) in doc["hide"].as_array().unwrap().iter().enumerate() {
            if matches(h.as_str().unwrap(), tool) {
                return (Answer::new(Verdict::Deny, format!("/hide/{i}")), None);
            }
        }
        // 2. entry: exact beats patterns; most literal characters; first written on ties
        let tools = doc["tools"].as_object().unwrap();
        let is_pattern = |k: &str| k.contains('*') || k.contains('?');
        let mut entry: Option<(&String, &Value)> =
            tools.iter().find(|(k, _)| !is_pattern(k) && *k == tool);
        if entry.is_none() {
            let mut best: Option<(usize, (&String, &Value))> = None;
            for (k, v) in tools {
                if is_pattern(k) && matches(k, tool) {
                    let literals = k.chars().filter(|c| *c != '*' && *c != '?').count();
                    if best.is_none_or(|(b, _)| literals > b) {
                        best = Some((literals, (k, v)));
                    }
                }
            }
            entry = best.map(|(_, e)| e);
        }
        let mut stages: Vec<(String, &Value)> = Vec::new();
        let allow_rule = match entry {
            None if doc["default"] == "deny" => {
                return (Answer::new(Verdict::Deny, "/default"), None);
            }
            None => "/default".to_owned(),
            Some((k, v)) => {
                let base = format!("/tools/{}", esc(k));
                // 3. action deny
                if v["action"] == "deny" {
                    return (Answer::new(Verdict::Deny, format!("{base}/action")), None);
                }
                stages.push((base.clone(), v));
                base
            }
        };
        stages.push(("/all_tools".to_owned(), &doc["all_tools"]));
        // 5. require then deny_if, the tool's then all_tools'
        for (base, s) in &stages {
            for (i, c) in s["require"].as_array().into_iter().flatten().enumerate() {
                if holds(c, tool, args, grant) != Ok(true) {
                    return (
                        Answer::new(Verdict::Deny, format!("{base}/require/{i}")),
                        None,
                    );
                }
            }
            for (i, clause) in s["deny_if"].as_array().into_iter().flatten().enumerate() {
                let rule = format!("{base}/deny_if/{i}");
                match clause_holds(clause, &rule, tool, args, grant) {
                    Err(error_rule) => return (Answer::new(Verdict::Deny, error_rule), None),
                    Ok(true) => return (Answer::new(Verdict::Deny, rule), None),
                    Ok(false) => {}
                }
            }
        }
        // 6. approval
        let mut approve: Option<String> = None;
        if let Some((_, v)) = entry
            && (v["action"] == "approve" || v["action"] == "require_approval")
        {
            approve = Some(format!("{}/action", stages[0].0));
        }
        for (base, s) in &stages {
            for (i, clause) in s["approve_if"].as_array().into_iter().flatten().enumerate() {
                let rule = format!("{base}/approve_if/{i}");
                match clause_holds(clause, &rule, tool, args, grant) {
                    Err(error_rule) => return (Answer::new(Verdict::Deny, error_rule), None),
                    Ok(true) if approve.is_none() => approve = Some(rule),
                    Ok(_) => {}
                }
            }
        }
        // 7. limits: plan every charge (a missing scope or a bad cost denies)
        let mut charges: Vec<PlannedCharge> = Vec::new();
        for (base, s) in &stages {
            let mut limits: Vec<(String, Value)> = s["limits"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, l)| (format!("{base}/limits/{i}"), l.clone()))
                .collect();
            if let Some(r) = s.get("rate_limit") {
                let _ = r;
                let key = entry.map(|(k, _)| k.clone()).unwrap_or_default();
                limits.push((
                    format!("{base}/rate_limit"),
                    json!({"counter": format!("{key}.rate_limit"), "window": "1s", "max": 2, "reset": "sliding", "scope": "grant", "cost": 1}),
                ));
            }
            for (rule, l) in limits {
                let window =
                    mcp_policy::duration::parse_duration(l["window"].as_str().unwrap()).unwrap();
                let scope = l["scope"].as_str().unwrap();
                let scope_key = match scope {
                    "grant" => format!("grant:{}", grant.id),
                    "session" => format!("session:{}:{:?}", grant.id, grant.session),
                    "global" => "global".to_owned(),
                    "tool" => format!("tool:{tool}"),
                    path => match resolve(path, tool, args, grant) {
                        None => return (Answer::new(Verdict::Deny, rule), None),
                        Some(v) => by_value(&v),
                    },
                };
                let cost = match &l["cost"] {
                    Value::String(p) => match resolve(p, tool, args, grant) {
                        Some(Value::Number(n))
                            if n.as_f64().is_some_and(|f| f >= 0.0 && f.fract() == 0.0) =>
                        {
                            n.as_f64().unwrap() as u64
                        }
                        _ => return (Answer::new(Verdict::Deny, rule), None),
                    },
                    v => v.as_u64().unwrap(),
                };
                let counter = l["counter"].as_str().unwrap().to_owned();
                let key = (counter.clone(), scope_key);
                if let Some(c) = charges.iter_mut().find(|c| c.key == key) {
                    c.cost += cost;
                } else {
                    charges.push(PlannedCharge {
                        key,
                        window,
                        max: l["max"].as_u64().unwrap(),
                        calendar: l["reset"] == "calendar",
                        cost,
                        rule,
                        counter,
                    });
                }
            }
        }
        if let Some(c) = charges.iter().find(|c| c.cost > c.max) {
            return (Answer::new(Verdict::Deny, c.rule.clone()), None);
        }
        let binding = canonical(&json!([grant.id, tool, args]));
        if let Some(rule) = &approve
            && self.approvals.get(&binding) != Some(&true)
        {
            self.approvals.entry(binding.clone()).or_insert(false);
            self.last_approval = Some(binding);
            return (Answer::new(Verdict::Approve, rule.clone()), None);
        }
        if charges.is_empty() && approve.is_none() {
            return (Answer::new(Verdict::Allow, allow_rule), None);
        }
        if !self.admits(&charges, t) {
            // The earliest later instant at which the same call is admitted, by trying each ms.
            let d = (1..=10_000u64)
                .find(|d| self.admits(&charges, t + d))
                .unwrap();
            // The refusing charge that frees last (the first such on ties).
            let refusing = charges
                .iter()
                .filter(|c| !self.admits(std::slice::from_ref(*c), t))
                .map(|c| {
                    (
                        c,
                        (1..=10_000u64)
                            .find(|d| self.admits(std::slice::from_ref(c), t + d))
                            .unwrap(),
                    )
                })
                .fold(None::<(&PlannedCharge, u64)>, |best, (c, r)| match best {
                    Some((_, b)) if b >= r => best,
                    _ => Some((c, r)),
                })
                .unwrap();
            assert_eq!(
                refusing.1, d,
                "the limit that frees last frees the whole call"
            );
            let mut a = Answer::new(Verdict::Limit, refusing.0.rule.clone());
            a.counter = Some(refusing.0.counter.clone());
            a.retry_after_ms = Some(d);
            return (a, None);
        }
        if approve.is_some() {
            self.approvals.remove(&binding);
        }
        let mut held = Vec::new();
        for c in &charges {
            if c.cost > 0 {
                self.events.push(Event {
                    key: c.key.clone(),
                    at: t,
                    cost: c.cost,
                    released: false,
                });
                held.push(self.events.len() - 1);
            }
        }
        let mut a = Answer::new(Verdict::Allow, allow_rule);
        a.remaining = if charges.is_empty() {
            None
        } else {
            charges
                .iter()
                .map(|c| c.max - self.used(&c.key, c.window, c.calendar, t))
                .min()
        };
        (a, Some(held))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_reference(doc in policy_doc(), ops in prop::collection::vec(op(), 1..40)) {
        let policy = match Policy::from_value(&doc) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("generated policy must load: {e}\n{doc:#}"))),
        };
        let clock = ManualClock::new(1_763_712_000_000);
        let engine = Engine::with_parts(policy, clock.clone(), MemoryStore::new());
        let mut reference = Reference { doc: doc.clone(), events: Vec::new(), approvals: HashMap::new(), last_approval: None };
        let mut last_id: Option<String> = None;
        let mut held: Vec<(Reservation, Vec<usize>)> = Vec::new();
        for op in ops {
            match op {
                Op::Call { dt, tool, args, grant: g } => {
                    clock.advance(dt);
                    let t = mcp_policy::Clock::now_ms(&clock);
                    let grant = grant(g);
                    let d = engine.evaluate(&tool, &args, &grant);
                    let (expected, charged) = reference.decide(&tool, &args, &grant, t);
                    let actual = Answer {
                        verdict: d.verdict,
                        rule: d.rule.to_string(),
                        counter: d.counter.as_deref().map(String::from),
                        retry_after_ms: d.retry_after_ms,
                        remaining: d.remaining,
                    };
                    prop_assert_eq!(&actual, &expected, "call {} {} as {:?} at {}\npolicy {:#}", tool, args, grant, t, doc);
                    if d.verdict == Verdict::Approve {
                        last_id = d.approval_id.clone();
                    }
                    if let (Some(r), Some(events)) = (d.reservation, charged) {
                        held.push((r, events));
                    }
                }
                Op::Approve => {
                    if let (Some(id), Some(binding)) = (&last_id, &reference.last_approval) {
                        let recorded = engine.record_approval(id).is_ok();
                        let pending = reference.approvals.contains_key(binding);
                        prop_assert_eq!(recorded, pending);
                        if let Some(a) = reference.approvals.get_mut(binding) {
                            *a = true;
                        }
                    }
                }
                Op::Release(i) => {
                    if !held.is_empty() {
                        let (r, events) = held.remove(i % held.len());
                        engine.release(r).unwrap();
                        for e in events {
                            reference.events[e].released = true;
                        }
                    }
                }
            }
        }
    }
}
