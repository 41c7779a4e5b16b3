//! mcp-policy side by side with its peers, in one run (see docs/PERFORMANCE.md).
//!
//! 1. Seed policy, allow with an existing counter vs governor's keyed `check_key` (counter alone).
//! 2. The argument-conditioned decision vs cedar-policy and vs regorus (the same rule in each).
//! 3. jsonschema's `is_valid` alone on the conditioned schema (the validation part alone).
//!
//! Every peer is first checked to give the expected answer on the measured input (allow) and on
//! deny inputs, so no error path is measured. Criterion's groups run first; then an interleaved
//! `Instant` timing of each pair gives the summary table with the ratios.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::process::exit;
use std::time::{Duration, Instant};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, Response,
};
use criterion::Criterion;
use governor::clock::{Clock as GovernorClock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use mcp_policy::{
    CounterStore, Engine, Grant, ManualClock, MemoryStore, Plan, Policy, Step, Verdict,
};
use serde::Deserialize;
use serde_json::{Value, json};

// The same two policies as `benches/engine.rs`.
const SEED: &str = include_str!("../../data/seed.json");

const CONDITIONED: &str = include_str!("../../data/conditioned.json");

/// The conditioned policy in Cedar. Cedar has no regular expressions: `like` (case-sensitive
/// substring) stands in for the word-boundary regex, and the currency set implies the
/// `^[A-Z]{3}$` pattern. An attribute error (a missing or mistyped argument) makes the policy
/// not apply: the default is deny.
const CEDAR_POLICY: &str = r#"
permit(principal, action == Action::"call", resource == Tool::"refund")
when {
  context has args &&
  context.args has amount && context.args has currency && context.args has reason &&
  context.args.amount >= 0 && context.args.amount <= 10000 &&
  ["USD", "EUR", "GBP"].contains(context.args.currency) &&
  !(context.args.reason like "*test*") &&
  !(context.args.reason like "*ignore previous*")
};
"#;

/// The conditioned policy in Rego: the schema's checks, `require` and `deny_if`, with the same
/// regular expressions.
const REGO_POLICY: &str = r#"
package mcp
import rego.v1

default allow := false

allow if {
  input.tool == "refund"
  is_number(input.args.amount)
  floor(input.args.amount) == input.args.amount
  input.args.amount >= 0
  input.args.amount <= 10000
  is_string(input.args.currency)
  regex.match(`^[A-Z]{3}$`, input.args.currency)
  input.args.currency in {"USD", "EUR", "GBP"}
  is_string(input.args.reason)
  count(input.args.reason) <= 200
  not regex.match(`(?i)\b(test|ignore previous)\b`, input.args.reason)
}
"#;

const START: u64 = 1_763_712_000_000;

type Governor = RateLimiter<
    String,
    DashMapStateStore<String>,
    FakeRelativeClock,
    NoOpMiddleware<<FakeRelativeClock as GovernorClock>::Instant>,
>;

/// What a host keeps for Cedar: the policy set, an empty entity store, the authorizer and the
/// type names it builds the request's entities from.
struct CedarHost {
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    grant_type: EntityTypeName,
    tool_type: EntityTypeName,
    action: EntityUid,
}

impl CedarHost {
    fn new() -> Result<CedarHost, String> {
        let parse = |s: &str| s.parse::<EntityTypeName>().map_err(|e| e.to_string());
        Ok(CedarHost {
            policies: CEDAR_POLICY.parse().map_err(|e| format!("{e:?}"))?,
            entities: Entities::empty(),
            authorizer: Authorizer::new(),
            grant_type: parse("Grant")?,
            tool_type: parse("Tool")?,
            action: r#"Action::"call""#.parse().map_err(|e| format!("{e:?}"))?,
        })
    }

    /// One decision as a host makes it: the request's entities and `Context` built from the
    /// call (the arguments cloned into `{"args": …}`, since `Context` takes the JSON by value).
    fn response(&self, tool: &str, args: &Value, grant: &Grant) -> Result<Response, String> {
        let principal =
            EntityUid::from_type_name_and_id(self.grant_type.clone(), EntityId::new(&grant.id));
        let resource =
            EntityUid::from_type_name_and_id(self.tool_type.clone(), EntityId::new(tool));
        let context = Context::from_json_value(json!({ "args": args.clone() }), None)
            .map_err(|e| e.to_string())?;
        let request = Request::new(principal, self.action.clone(), resource, context, None)
            .map_err(|e| e.to_string())?;
        Ok(self
            .authorizer
            .is_authorized(&request, &self.policies, &self.entities))
    }

    /// The measured call: is it allowed?
    fn decide(&self, tool: &str, args: &Value, grant: &Grant) -> Result<bool, String> {
        Ok(self.response(tool, args, grant)?.decision() == CedarDecision::Allow)
    }

    /// Like `decide`, but an evaluation error (e.g. a type error) is reported, so the sanity
    /// check can tell a real deny from an error path.
    fn decide_strict(&self, tool: &str, args: &Value, grant: &Grant) -> Result<bool, String> {
        let response = self.response(tool, args, grant)?;
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        if errors.is_empty() {
            Ok(response.decision() == CedarDecision::Allow)
        } else {
            Err(errors.join("; "))
        }
    }
}

/// One Rego decision as a host makes it: the input document `{tool, grant, args}` converted
/// from the call, `set_input`, then `eval_rule`.
fn rego_decide(
    engine: &mut regorus::Engine,
    tool: &str,
    args: &Value,
    grant: &Grant,
) -> Result<bool, String> {
    let mut input = BTreeMap::new();
    input.insert(regorus::Value::from("tool"), regorus::Value::from(tool));
    input.insert(
        regorus::Value::from("grant"),
        regorus::Value::from(grant.id.as_str()),
    );
    input.insert(
        regorus::Value::from("args"),
        regorus::Value::deserialize(args).map_err(|e| e.to_string())?,
    );
    engine.set_input(regorus::Value::from(input));
    match engine.eval_rule("data.mcp.allow".to_string()) {
        Ok(regorus::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("data.mcp.allow is {other:?}, not a boolean")),
        Err(e) => Err(e.to_string()),
    }
}

fn rego_engine() -> Result<regorus::Engine, String> {
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("mcp.rego".to_string(), REGO_POLICY.to_string())
        .map_err(|e| e.to_string())?;
    Ok(engine)
}

fn engine(policy: &str) -> (Engine<ManualClock, MemoryStore>, ManualClock) {
    let clock = ManualClock::new(START);
    let policy = Policy::from_json_str(policy).unwrap_or_else(|e| fail(&format!("{e}")));
    (
        Engine::with_parts(policy, clock.clone(), MemoryStore::new()),
        clock,
    )
}

fn governor() -> (Governor, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let ten = NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN);
    (
        RateLimiter::dashmap_with_clock(Quota::per_minute(ten), clock.clone()),
        clock,
    )
}

fn conditioned_schema() -> Value {
    let policy: Value =
        serde_json::from_str(CONDITIONED).unwrap_or_else(|e| fail(&format!("policy JSON: {e}")));
    policy["tools"]["refund"]["schema"].clone()
}

fn schema_validator() -> jsonschema::Validator {
    // As the engine compiles it: the `regex` crate for `pattern`, no remote references.
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .offline()
        .build(&conditioned_schema())
        .unwrap_or_else(|e| fail(&format!("schema: {e}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("peers bench: sanity check failed: {msg}");
    exit(2)
}

fn expect(what: &str, got: Result<bool, String>, want: bool) {
    match got {
        Ok(b) if b == want => {}
        Ok(b) => fail(&format!(
            "{what}: answered allow={b}, expected allow={want}"
        )),
        Err(e) => fail(&format!("{what}: error instead of a decision: {e}")),
    }
}

/// The measured calls.
struct Inputs {
    ok: Value,
    big: Value,
    grant: Grant,
    seed_args: Value,
    seed_grant: Grant,
}

fn inputs() -> Inputs {
    Inputs {
        ok: json!({"amount": 2500, "currency": "USD", "reason": "duplicate charge on invoice 4411"}),
        big: json!({"amount": 25000, "currency": "USD", "reason": "duplicate charge on invoice 4411"}),
        grant: Grant::new("g"),
        seed_args: json!({"target": "prod"}),
        seed_grant: Grant::new("alice-laptop"),
    }
}

/// Every decider gives the expected answer on the measured input and on deny inputs.
fn sanity(inp: &Inputs) {
    // 1. The seed policy and governor: admitted while the clock moves a window between calls;
    // refused at the 11th call within one minute.
    let (e, clock) = engine(SEED);
    for i in 0..12 {
        let d = e.evaluate("start_security_scan", &inp.seed_args, &inp.seed_grant);
        let want = if i < 10 {
            Verdict::Allow
        } else {
            Verdict::Limit
        };
        if d.verdict != want {
            fail(&format!("mcp-policy seed call {i}: {:?}", d.verdict));
        }
    }
    clock.advance(60_000);
    let d = e.evaluate("start_security_scan", &inp.seed_args, &inp.seed_grant);
    if d.verdict != Verdict::Allow {
        fail("mcp-policy seed: not admitted after a window");
    }
    let (g, gclock) = governor();
    let key = inp.seed_grant.id.clone();
    for i in 0..12 {
        expect(
            &format!("governor call {i}"),
            Ok(g.check_key(&key).is_ok()),
            i < 10,
        );
    }
    gclock.advance(Duration::from_secs(60));
    expect(
        "governor after a window",
        Ok(g.check_key(&key).is_ok()),
        true,
    );

    // 2. The conditioned decision: allow on `ok`; deny on too big, a test reason, an unknown
    // currency, a missing reason.
    let mut denies = vec![("amount 25000", inp.big.clone())];
    denies.push((
        "reason with `test`",
        json!({"amount": 2500, "currency": "EUR", "reason": "this is a test refund"}),
    ));
    denies.push((
        "currency JPY",
        json!({"amount": 2500, "currency": "JPY", "reason": "duplicate charge"}),
    ));
    denies.push(("no reason", json!({"amount": 2500, "currency": "USD"})));
    let (e, _) = engine(CONDITIONED);
    let ours = |args: &Value| Ok(e.evaluate("refund", args, &inp.grant).verdict == Verdict::Allow);
    expect("mcp-policy allow", ours(&inp.ok), true);
    for (what, args) in &denies {
        expect(&format!("mcp-policy {what}"), ours(args), false);
    }
    let cedar = CedarHost::new().unwrap_or_else(|e| fail(&format!("cedar policy: {e}")));
    expect(
        "cedar allow",
        cedar.decide_strict("refund", &inp.ok, &inp.grant),
        true,
    );
    // Every deny is a policy that does not apply, not an evaluation error.
    for (what, args) in &denies {
        expect(
            &format!("cedar {what}"),
            cedar.decide_strict("refund", args, &inp.grant),
            false,
        );
    }
    expect(
        "cedar other tool",
        cedar.decide_strict("delete_repo", &inp.ok, &inp.grant),
        false,
    );
    let mut rego = rego_engine().unwrap_or_else(|e| fail(&format!("rego policy: {e}")));
    expect(
        "regorus allow",
        rego_decide(&mut rego, "refund", &inp.ok, &inp.grant),
        true,
    );
    for (what, args) in &denies {
        expect(
            &format!("regorus {what}"),
            rego_decide(&mut rego, "refund", args, &inp.grant),
            false,
        );
    }
    expect(
        "regorus other tool",
        rego_decide(&mut rego, "delete_repo", &inp.ok, &inp.grant),
        false,
    );

    // 3. jsonschema alone: valid on the measured input, invalid on a string amount and on a
    // lower-case currency.
    let v = schema_validator();
    expect("jsonschema ok", Ok(v.is_valid(&inp.ok)), true);
    expect(
        "jsonschema string amount",
        Ok(v.is_valid(&json!({"amount": "2500", "currency": "USD", "reason": "x"}))),
        false,
    );
    expect(
        "jsonschema currency usd",
        Ok(v.is_valid(&json!({"amount": 2500, "currency": "usd", "reason": "x"}))),
        false,
    );
    eprintln!(
        "peers bench: sanity checks passed (every decider allows the measured call and denies the deny inputs)"
    );
}

/// The deciders as measured, each ready for its hot loop.
struct Fixture {
    inp: Inputs,
    seed: (Engine<ManualClock, MemoryStore>, ManualClock),
    /// The seed policy's plan for the measured call, applied to a store directly: our counter
    /// part alone, the like-for-like comparison with governor's `check_key`.
    store: MemoryStore,
    plan: Plan<'static>,
    gov: (Governor, FakeRelativeClock),
    gov_key: String,
    cond: Engine<ManualClock, MemoryStore>,
    cedar: CedarHost,
    rego: regorus::Engine,
    schema: jsonschema::Validator,
}

impl Fixture {
    fn new() -> Fixture {
        let inp = inputs();
        let seed = engine(SEED);
        // The counter exists before the measurement.
        seed.0
            .evaluate("start_security_scan", &inp.seed_args, &inp.seed_grant);
        let gov = governor();
        let gov_key = inp.seed_grant.id.clone();
        let _ = gov.0.check_key(&gov_key);
        // A plan borrows the policy and the call; leaked so the fixture can own it.
        let policy: &'static Policy = Box::leak(Box::new(
            Policy::from_json_str(SEED).unwrap_or_else(|e| fail(&format!("{e}"))),
        ));
        let args: &'static Value = Box::leak(Box::new(inp.seed_args.clone()));
        let grant: &'static Grant = Box::leak(Box::new(inp.seed_grant.clone()));
        let Step::Apply(pending) = policy.plan("start_security_scan", args, grant, START) else {
            fail("the seed call must need the store")
        };
        let plan = pending.plan;
        let store = MemoryStore::new();
        let _ = store.apply(&plan);
        Fixture {
            seed,
            store,
            plan,
            gov,
            gov_key,
            cond: engine(CONDITIONED).0,
            cedar: CedarHost::new().unwrap_or_else(|e| fail(&e)),
            rego: rego_engine().unwrap_or_else(|e| fail(&e)),
            schema: schema_validator(),
            inp,
        }
    }

    fn ours_seed(&self) {
        self.seed.1.advance(60_000);
        black_box(self.seed.0.evaluate(
            black_box("start_security_scan"),
            &self.inp.seed_args,
            &self.inp.seed_grant,
        ));
    }

    fn ours_store(&mut self) {
        self.plan.now_ms += 60_000;
        let _ = black_box(self.store.apply(black_box(&self.plan)));
    }

    fn governor(&self) {
        self.gov.1.advance(Duration::from_secs(60));
        let _ = black_box(self.gov.0.check_key(black_box(&self.gov_key)));
    }

    fn ours_conditioned(&self) {
        black_box(self.cond.evaluate(
            black_box("refund"),
            black_box(&self.inp.ok),
            &self.inp.grant,
        ));
    }

    fn cedar(&self) {
        let _ = black_box(self.cedar.decide(
            black_box("refund"),
            black_box(&self.inp.ok),
            &self.inp.grant,
        ));
    }

    fn regorus(&mut self) {
        let _ = black_box(rego_decide(
            &mut self.rego,
            black_box("refund"),
            black_box(&self.inp.ok),
            &self.inp.grant,
        ));
    }

    fn jsonschema(&self) {
        black_box(self.schema.is_valid(black_box(&self.inp.ok)));
    }

    fn run(&mut self, which: Which) {
        match which {
            Which::OursSeed => self.ours_seed(),
            Which::Governor => self.governor(),
            Which::OursStore => self.ours_store(),
            Which::OursConditioned => self.ours_conditioned(),
            Which::Cedar => self.cedar(),
            Which::Regorus => self.regorus(),
            Which::JsonSchema => self.jsonschema(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    OursSeed,
    OursStore,
    Governor,
    OursConditioned,
    Cedar,
    Regorus,
    JsonSchema,
}

fn criterion_groups(c: &mut Criterion, f: &mut Fixture) {
    let mut g = c.benchmark_group("peers_seed_allow_existing_counter");
    g.bench_function("mcp_policy_evaluate", |b| b.iter(|| f.ours_seed()));
    g.bench_function("governor_check_key", |b| b.iter(|| f.governor()));
    g.bench_function("mcp_policy_store_apply_alone", |b| {
        b.iter(|| f.ours_store())
    });
    g.finish();

    let mut g = c.benchmark_group("peers_conditioned_allow");
    g.bench_function("mcp_policy_evaluate", |b| b.iter(|| f.ours_conditioned()));
    g.bench_function("cedar_is_authorized", |b| b.iter(|| f.cedar()));
    g.bench_function("regorus_eval_rule", |b| b.iter(|| f.regorus()));
    g.finish();

    let mut g = c.benchmark_group("peers_schema_alone");
    g.bench_function("jsonschema_is_valid", |b| b.iter(|| f.jsonschema()));
    g.finish();
}

/// Nanoseconds per call over `iters` calls.
fn time(f: &mut Fixture, which: Which, iters: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f.run(which);
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The summary's timing of one pair: each side warmed up, then `rounds` rounds that alternate
/// the two sides, each round a fixed number of calls (about `round` of time, sized from the
/// warm-up); the median per-call time of each side.
fn pair(
    f: &mut Fixture,
    a: Which,
    b: Which,
    warm: Duration,
    round: Duration,
    rounds: usize,
) -> ((f64, u64), (f64, u64)) {
    let mut iters = [0u64; 2];
    for (i, w) in [a, b].into_iter().enumerate() {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < warm {
            for _ in 0..100 {
                f.run(w);
            }
            n += 100;
        }
        let per_call = start.elapsed().as_nanos() as f64 / n as f64;
        iters[i] = ((round.as_nanos() as f64 / per_call) as u64).max(100);
    }
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        if r % 2 == 0 {
            ta.push(time(f, a, iters[0]));
            tb.push(time(f, b, iters[1]));
        } else {
            tb.push(time(f, b, iters[1]));
            ta.push(time(f, a, iters[0]));
        }
    }
    ((median(ta), iters[0]), (median(tb), iters[1]))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn summary(f: &mut Fixture, quick: bool) {
    let (warm, round, rounds) = if quick {
        (Duration::from_millis(100), Duration::from_millis(20), 5)
    } else {
        (Duration::from_millis(500), Duration::from_millis(100), 15)
    };
    let seed = pair(f, Which::OursSeed, Which::Governor, warm, round, rounds);
    let store = pair(f, Which::OursStore, Which::Governor, warm, round, rounds);
    let cedar = pair(f, Which::OursConditioned, Which::Cedar, warm, round, rounds);
    let rego = pair(
        f,
        Which::OursConditioned,
        Which::Regorus,
        warm,
        round,
        rounds,
    );
    let schema = pair(
        f,
        Which::OursConditioned,
        Which::JsonSchema,
        warm,
        round,
        rounds,
    );

    println!();
    println!(
        "Summary (Instant timing in this process after criterion: median of {rounds} alternating rounds, calls per round in brackets)"
    );
    println!();
    println!("| comparison | ours | peer | ratio | target |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, ours: (f64, u64), peer: (f64, u64), ratio: String, target: &str| {
        println!(
            "| {name} | {} [{}] | {} [{}] | {ratio} | {target} |",
            fmt_ns(ours.0),
            ours.1,
            fmt_ns(peer.0),
            peer.1
        );
    };
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let r = seed.0.0 / seed.1.0;
    row(
        "seed allow, existing counter: mcp-policy evaluate vs governor check_key",
        seed.0,
        seed.1,
        format!("ours = {r:.2}× governor"),
        &format!("≤ 3× ({})", verdict(r <= 3.0)),
    );
    let r = store.0.0 / store.1.0;
    row(
        "counter part alone: mcp-policy MemoryStore::apply (prepared plan) vs governor check_key",
        store.0,
        store.1,
        format!("ours = {r:.2}× governor"),
        "none (context: the counter part alone)",
    );
    let r = cedar.1.0 / cedar.0.0;
    row(
        "conditioned allow: mcp-policy evaluate vs cedar-policy is_authorized",
        cedar.0,
        cedar.1,
        format!("ours {r:.1}× faster"),
        &format!("≥ 50× ({})", verdict(r >= 50.0)),
    );
    let r = rego.1.0 / rego.0.0;
    row(
        "conditioned allow: mcp-policy evaluate vs regorus eval_rule",
        rego.0,
        rego.1,
        format!("ours {r:.1}× faster"),
        &format!("≥ 25× ({})", verdict(r >= 25.0)),
    );
    let r = schema.0.0 / schema.1.0;
    row(
        "context: mcp-policy conditioned evaluate vs jsonschema is_valid alone",
        schema.0,
        schema.1,
        format!("ours = {r:.2}× is_valid"),
        "none (the validation part alone)",
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    sanity(&inputs());
    let mut f = Fixture::new();
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c, &mut f);
    c.final_summary();
    // `--test` (each benchmark run once) and `--list`: no summary timing.
    if !args.iter().any(|a| a == "--test" || a == "--list") {
        summary(&mut f, args.iter().any(|a| a == "--quick"));
    }
}
