//! `mcp-policy eval`: replays JSON Lines of calls through one engine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use mcp_policy::subject::Subject;
use mcp_policy::uri::Uri;
use mcp_policy::{
    AsyncEngine, Clock, Decision, Engine, Grant, HostError, ManualClock, MemoryStore, Policy,
    Reservation, StoreError, SystemClock,
};
use mcp_policy_redis::{RedisStore, TimeSource};

use mcp_policy_gateway::store::{self as gateway_store, StoreUrl};

/// The engine a replay runs: in memory, or on a shared Redis store (judged by the replay's
/// own clock, so `at` times mean the same on both).
enum Backend {
    Memory(Engine<ManualClock, MemoryStore>),
    Redis {
        rt: tokio::runtime::Runtime,
        engine: AsyncEngine<ManualClock, RedisStore>,
    },
}

impl Backend {
    fn decide(&self, subject: Subject<'_>, args: &Value, grant: &Grant) -> Decision {
        match self {
            Backend::Memory(engine) => engine.decide(subject, args, grant),
            Backend::Redis { rt, engine } => rt.block_on(engine.decide(subject, args, grant)),
        }
    }
    fn record_approval(&self, id: &str) -> Result<(), HostError> {
        match self {
            Backend::Memory(engine) => engine.record_approval(id),
            Backend::Redis { rt, engine } => rt.block_on(engine.record_approval(id)),
        }
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        match self {
            Backend::Memory(engine) => engine.release(reservation),
            Backend::Redis { rt, engine } => rt.block_on(engine.release(reservation)),
        }
    }
}
use serde_json::{Map, Value, json};

use mcp_policy::args::cap_nesting;

use crate::json::{load_policy, parse_strict};

/// Containers nested deeper than this in an input line are read as empty ones: far above the
/// library's argument bound (64), well below the JSON reader's recursion limit (128).
pub const LINE_DEPTH: usize = 100;
use crate::exit::{FAILURES, OK, UNUSABLE};
use crate::rfc3339;

/// The fields that name what a line is: exactly one per line.
const LINE_KINDS: [&str; 5] = ["tool", "resource", "prompt", "approve", "release"];

/// The fields that name what a decision is about (they take `args` and `grant`).
const SUBJECT_KINDS: [&str; 3] = ["tool", "resource", "prompt"];

/// What time a line without `at` happens at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAt {
    /// The system clock (`eval`).
    SystemTime,
    /// The previous line's time, starting at the Unix epoch (`test`: deterministic).
    Previous,
}

/// One engine and the replay's state: reservation labels, the last time seen.
pub struct Replayer {
    engine: Backend,
    clock: ManualClock,
    reservations: HashMap<String, Reservation>,
    issued: u64,
    last_ms: Option<u64>,
    /// Whether a line so far carried `at` (then lines without it keep the replay's time).
    timed: bool,
    no_at: NoAt,
    /// The last decision as text in the documented field order (taken by the printer).
    decision_text: Option<String>,
    /// The last approval id answered (for `"$last"` in test files).
    pub last_approval: Option<String>,
}

impl Replayer {
    pub fn new(policy: Policy, no_at: NoAt) -> Replayer {
        let clock = ManualClock::new(0);
        let engine = Backend::Memory(Engine::with_parts(
            policy,
            clock.clone(),
            MemoryStore::new(),
        ));
        Replayer::with_backend(engine, clock, no_at)
    }

    /// A replayer whose counters and approvals live in the Redis at `url`, shared with every
    /// other process using it.
    pub fn with_redis(policy: Policy, no_at: NoAt, url: &str) -> Result<Replayer, String> {
        let clock = ManualClock::new(0);
        let rt = gateway_store::runtime()?;
        let store = gateway_store::connect(&rt, url, TimeSource::Plan)?;
        let engine = AsyncEngine::with_parts(policy, clock.clone(), store);
        Ok(Replayer::with_backend(
            Backend::Redis { rt, engine },
            clock,
            no_at,
        ))
    }

    fn with_backend(engine: Backend, clock: ManualClock, no_at: NoAt) -> Replayer {
        Replayer {
            engine,
            clock,
            reservations: HashMap::new(),
            issued: 0,
            last_ms: None,
            timed: false,
            no_at,
            decision_text: None,
            last_approval: None,
        }
    }

    /// Answers one input line (already known not to be blank). `line_no` is 1-based.
    ///
    /// Arguments nested deeper than the JSON reader's own recursion limit still get the
    /// library's decision (deny: deeper than 64 levels), not a parse failure: containers
    /// beyond [`LINE_DEPTH`] levels are read as empty ones, which keeps them too deep.
    pub fn line(&mut self, text: &str, line_no: usize) -> Value {
        self.decision_text = None;
        // Read as it is; only a line too deep for the reader is read again with deep
        // containers emptied (the arguments then stay too deep: the library denies them).
        let parsed = match parse_strict(text) {
            Err(e) if e.contains("recursion limit") => parse_strict(&cap_nesting(text, LINE_DEPTH)),
            other => other,
        };
        match parsed {
            Ok(value) => self.value(&value, line_no),
            Err(e) => error(line_no, format!("invalid JSON: {e}")),
        }
    }

    /// The last answered line's decision as text in the documented field order, if it was
    /// a decision.
    pub fn take_decision_text(&mut self) -> Option<String> {
        self.decision_text.take()
    }

    /// Answers one parsed input line.
    pub fn value(&mut self, value: &Value, line_no: usize) -> Value {
        match self.answer(value) {
            Ok(out) => out,
            Err(message) => error(line_no, message),
        }
    }

    fn answer(&mut self, value: &Value) -> Result<Value, String> {
        let Value::Object(map) = value else {
            return Err(format!(
                "expected a JSON object, found {}",
                type_name(value)
            ));
        };
        for key in map.keys() {
            if !matches!(
                key.as_str(),
                "tool" | "resource" | "prompt" | "args" | "grant" | "at" | "approve" | "release"
            ) {
                return Err(format!(
                    "unknown field `{key}`; expected tool, resource, prompt, args, grant, at, approve or release"
                ));
            }
        }
        let present: Vec<&str> = LINE_KINDS
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        match present.as_slice() {
            [_] => {}
            [] => {
                return Err(
                    "a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`"
                        .into(),
                );
            }
            [first, rest @ ..] => {
                return Err(format!(
                    "a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`, found `{first}` and {}",
                    rest.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
        }
        let subject_field = SUBJECT_KINDS.into_iter().find(|k| map.contains_key(*k));
        if subject_field.is_none() {
            for field in ["args", "grant"] {
                if map.contains_key(field) {
                    return Err(format!(
                        "`{field}` only applies to a `tool`, `resource` or `prompt` line"
                    ));
                }
            }
        }
        let now = self.time(map.get("at"))?;
        if let Some(v) = map.get("approve") {
            let id = v
                .as_str()
                .ok_or_else(|| format!("`approve` must be a string, found {}", type_name(v)))?;
            self.set_time(now);
            self.engine.record_approval(id).map_err(|e| e.to_string())?;
            return Ok(json!({ "approved": id }));
        }
        if let Some(v) = map.get("release") {
            let label = v
                .as_str()
                .ok_or_else(|| format!("`release` must be a string, found {}", type_name(v)))?;
            let reservation = self
                .reservations
                .remove(label)
                .ok_or_else(|| format!("unknown or already released reservation `{label}`"))?;
            self.set_time(now);
            self.engine
                .release(reservation)
                .map_err(|e| e.to_string())?;
            return Ok(json!({ "released": label }));
        }
        let Some(field) = subject_field else {
            return Err(
                "a line needs exactly one of `tool`, `resource`, `prompt`, `approve` or `release`"
                    .into(),
            );
        };
        let name = match map.get(field) {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(format!(
                    "`{field}` must be a string, found {}",
                    type_name(other)
                ));
            }
            None => return Err(format!("missing field `{field}`")),
        };
        let empty = Value::Object(Map::new());
        let args = match map.get("args") {
            None => &empty,
            Some(Value::Object(a)) if field == "resource" && !a.is_empty() => {
                return Err(
                    "`args` of a `resource` line must be absent or `{}`: a read has no arguments (conditions read `uri`)"
                        .into(),
                );
            }
            Some(v @ Value::Object(_)) => v,
            Some(other) => {
                return Err(format!(
                    "`args` must be a JSON object, found {}",
                    type_name(other)
                ));
            }
        };
        let uri = match field {
            "resource" => Some(
                Uri::parse(name).map_err(|e| format!("`resource`: cannot read the URI: {e}"))?,
            ),
            _ => None,
        };
        let subject = match (field, &uri) {
            (_, Some(uri)) => Subject::Resource(uri),
            ("prompt", None) => Subject::Prompt(name),
            _ => Subject::Tool(name),
        };
        let grant = grant(map.get("grant"))?;
        self.set_time(now);
        let decision = self.engine.decide(subject, args, &grant);
        let label = decision.reservation.as_ref().map(|_| {
            self.issued += 1;
            format!("r-{}", self.issued)
        });
        let out = decision.to_json(label.as_deref());
        self.decision_text = Some(decision.to_json_string(label.as_deref()));
        if let (Some(label), Some(reservation)) = (label, decision.reservation) {
            self.reservations.insert(label, reservation);
        }
        if let Some(id) = decision.approval_id {
            self.last_approval = Some(id);
        }
        Ok(out)
    }

    /// The time of a line: its `at`; without one, the replay's latest time once a line has
    /// carried `at` (so `approve` and `release` lines need none in a timed replay), else the
    /// system time (`eval`) or the previous line's time (`test`).
    fn time(&mut self, at: Option<&Value>) -> Result<u64, String> {
        let now = match at {
            None => {
                return Ok(match (self.no_at, self.last_ms) {
                    (_, Some(last)) if self.timed => last,
                    (NoAt::SystemTime, _) => SystemClock.now_ms(),
                    (NoAt::Previous, last) => last.unwrap_or(0),
                });
            }
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                format!("`at` must be whole milliseconds since the Unix epoch, found {n}")
            })?,
            Some(Value::String(s)) => rfc3339::parse(s)?,
            Some(other) => {
                return Err(format!(
                    "`at` must be milliseconds since the Unix epoch or an RFC 3339 time, found {}",
                    type_name(other)
                ));
            }
        };
        if let Some(last) = self.last_ms.filter(|last| now < *last) {
            return Err(format!(
                "`at` ({now}) is earlier than the previous line's time ({last}); time must not go backwards"
            ));
        }
        self.timed = true;
        Ok(now)
    }

    fn set_time(&mut self, now: u64) {
        self.clock.set(now);
        self.last_ms = Some(now);
    }
}

fn grant(value: Option<&Value>) -> Result<Grant, String> {
    match value {
        None => Ok(Grant::anonymous()),
        Some(Value::String(id)) => Ok(Grant::new(id.as_str())),
        Some(Value::Object(map)) => {
            for key in map.keys() {
                if !matches!(key.as_str(), "id" | "session" | "attrs") {
                    return Err(format!(
                        "unknown field `grant.{key}`; expected id, session or attrs"
                    ));
                }
            }
            let mut grant = match map.get("id") {
                Some(Value::String(id)) => Grant::new(id.as_str()),
                Some(other) => {
                    return Err(format!(
                        "`grant.id` must be a string, found {}",
                        type_name(other)
                    ));
                }
                None => return Err("`grant` needs an `id`".into()),
            };
            match map.get("session") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => grant.session = Some(s.clone()),
                Some(other) => {
                    return Err(format!(
                        "`grant.session` must be a string, found {}",
                        type_name(other)
                    ));
                }
            }
            match map.get("attrs") {
                None => {}
                Some(Value::Object(attrs)) => grant.attrs = attrs.clone(),
                Some(other) => {
                    return Err(format!(
                        "`grant.attrs` must be an object, found {}",
                        type_name(other)
                    ));
                }
            }
            Ok(grant)
        }
        Some(other) => Err(format!(
            "`grant` must be a string or an object, found {}",
            type_name(other)
        )),
    }
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn error(line_no: usize, message: String) -> Value {
    json!({ "error": format!("line {line_no}: {message}") })
}

/// Runs `eval`.
pub fn run(policy: &Path, input: Option<&Path>, store: &str) -> u8 {
    let store = match StoreUrl::parse(store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("--store: {e}");
            return UNUSABLE;
        }
    };
    let Ok(loaded) = load_policy(policy) else {
        return UNUSABLE;
    };
    let reader: Box<dyn Read> = match input {
        None => Box::new(std::io::stdin()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin()),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("{}: cannot read the input: {e}", p.display());
                return UNUSABLE;
            }
        },
    };
    let mut replayer = match &store {
        StoreUrl::Memory => Replayer::new(loaded.policy, NoAt::SystemTime),
        StoreUrl::Redis(url) => match Replayer::with_redis(loaded.policy, NoAt::SystemTime, url) {
            Ok(replayer) => replayer,
            Err(e) => {
                eprintln!("{e}");
                return UNUSABLE;
            }
        },
    };
    let stdout = std::io::stdout();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let mut failed = false;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("cannot read the input: {e}");
                return UNUSABLE;
            }
        }
        line_no += 1;
        let out = match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => replayer.line(text, line_no),
            Err(_) => error(line_no, "the line is not valid UTF-8".into()),
        };
        if out.get("error").is_some() {
            failed = true;
        }
        let text = replayer
            .take_decision_text()
            .unwrap_or_else(|| out.to_string());
        let mut lock = stdout.lock();
        let written = writeln!(lock, "{text}").and_then(|()| lock.flush());
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return if failed { FAILURES } else { OK };
            }
            eprintln!("cannot write the output: {e}");
            return UNUSABLE;
        }
    }
    if failed { FAILURES } else { OK }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replayer(policy: &str) -> Replayer {
        let policy = Policy::from_json_str(policy).unwrap();
        Replayer::new(policy, NoAt::Previous)
    }

    const POLICY: &str = r#"{"version":"1","default":"deny","tools":{
        "scan":{"limits":[{"counter":"c","window":"minute","max":1}]},
        "pay":{"action":"approve","reason":"money"}}}"#;

    #[test]
    fn allow_limit_release() {
        let mut r = replayer(POLICY);
        let a = r.line(r#"{"tool":"scan","at":1000}"#, 1);
        assert_eq!(
            a,
            json!({"decision":"allow","rule":"/tools/scan","remaining":0,"reservation":"r-1"})
        );
        let b = r.line(r#"{"tool":"scan","at":31000}"#, 2);
        assert_eq!(b["decision"], "limit");
        assert_eq!(b["retry_after_ms"], 30000);
        assert_eq!(r.line(r#"{"release":"r-1"}"#, 3), json!({"released":"r-1"}));
        assert!(
            r.line(r#"{"release":"r-1"}"#, 4)["error"]
                .as_str()
                .unwrap()
                .starts_with("line 4: unknown")
        );
        assert_eq!(r.line(r#"{"tool":"scan"}"#, 5)["decision"], "allow");
    }

    #[test]
    fn errors() {
        let mut r = replayer(POLICY);
        for (line, needle) in [
            (r#"{"tool":"scan","tool":"x"}"#, "duplicate key"),
            (r#"{"tool":"scan","argz":{}}"#, "unknown field `argz`"),
            (r#"{"tool":"scan","args":[]}"#, "must be a JSON object"),
            (r#"{"tool":"scan","grant":{"id":"a","x":1}}"#, "grant.x"),
            (r#"{"tool":"scan","at":"yesterday"}"#, "RFC 3339"),
            (r#"{"approve":"nope"}"#, "unknown or expired approval"),
            (r#"{"tool":"scan","approve":"x"}"#, "exactly one"),
            (
                r#"{"tool":"scan","prompt":"p"}"#,
                "found `tool` and `prompt`",
            ),
            (
                r#"{"resource":"file:///a","args":{"x":1}}"#,
                "absent or `{}`",
            ),
            (r#"{"resource":"file:///a%"}"#, "invalid percent-encoding"),
            ("[1]", "expected a JSON object"),
            ("{", "invalid JSON"),
        ] {
            let out = r.line(line, 7);
            let message = out["error"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("line 7: ") && message.contains(needle),
                "{line}: {out}"
            );
        }
    }

    #[test]
    fn time_must_not_go_backwards() {
        let mut r = replayer(POLICY);
        assert_eq!(
            r.line(r#"{"tool":"scan","at":"2026-11-21T10:00:00Z"}"#, 1)["decision"],
            "allow"
        );
        let out = r.line(r#"{"tool":"scan","at":"2026-11-21T09:59:59.999Z"}"#, 2);
        assert!(out["error"].as_str().unwrap().contains("earlier"), "{out}");
        assert_eq!(
            r.line(r#"{"tool":"scan","at":"2026-11-21T10:01:00Z"}"#, 3)["decision"],
            "allow"
        );
    }

    #[test]
    fn approval_flow() {
        let mut r = replayer(POLICY);
        let a = r.line(r#"{"tool":"pay","args":{"n":1},"grant":"bob"}"#, 1);
        assert_eq!(a["decision"], "approve");
        let id = a["approval_id"].as_str().unwrap().to_owned();
        assert_eq!(
            r.line(&format!(r#"{{"approve":"{id}"}}"#), 2),
            json!({"approved": id})
        );
        assert_eq!(
            r.line(r#"{"tool":"pay","args":{"n":1},"grant":"bob"}"#, 3)["decision"],
            "allow"
        );
    }
}
