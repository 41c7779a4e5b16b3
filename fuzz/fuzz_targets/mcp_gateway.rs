//! Arbitrary client and server lines, in arbitrary order, through the MCP layer: it never
//! panics, never forwards a `tools/call`, `resources/read`, `resources/subscribe` or
//! `prompts/get` the policy did not allow, and never lets a held one through without a
//! human's approving answer. Every other input runs with a tracing observer: then each
//! forwarded request carries the observer's `traceparent`, and moving a header's
//! `traceparent` into a client line (`with_traceparent`) never breaks it.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mcp_policy::mcp::{Gateway, GatewayOptions, Output, traceparent_of, with_traceparent};
use mcp_policy::observe::{Observer, Observers};
use mcp_policy::subject::Kind;
use mcp_policy::uri::Uri;
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy};
use serde_json::Value;

const POLICY: &str = r#"{"version":"1","default":"deny","hide":["h*"],
  "tools":{"ok":{},"lim":{"limits":[{"counter":"c","window":"minute","max":2}]},
           "t":{"action":"approve"},"no":{"action":"deny"}},
  "resources":{"file:///srv/*":{},"file:///srv/secret*":{"action":"hide"},
               "file:///srv/ask*":{"action":"approve"}},
  "prompts":{"ok":{},"t":{"action":"approve"},"no":{"action":"deny"}}}"#;

/// A resource request's URI, in normal form (`None` when it cannot be read: such a request
/// must never be forwarded either).
fn read_uri(message: &Value) -> Option<Option<String>> {
    let method = message.get("method")?.as_str()?;
    if !matches!(method, "resources/read" | "resources/subscribe") || message.get("id").is_none() {
        return None;
    }
    let raw = message.get("params").and_then(|p| p.get("uri")).and_then(Value::as_str);
    Some(raw.and_then(|raw| Uri::parse(raw).ok()).map(|u| u.as_str().to_owned()))
}

/// The prompt a message gets, when it is a `prompts/get` request.
fn got_prompt(message: &Value) -> Option<&str> {
    if message.get("method")?.as_str()? != "prompts/get" || message.get("id").is_none() {
        return None;
    }
    message.get("params")?.get("name")?.as_str()
}

/// The tool a message calls, when it is a `tools/call` request.
fn called_tool(message: &Value) -> Option<&str> {
    if message.get("method")?.as_str()? != "tools/call" || message.get("id").is_none() {
        return None;
    }
    message.get("params")?.get("name")?.as_str()
}

/// Whether a client line carries a human's approving answer (elicitation or input_required).
fn approving(line: &Value) -> bool {
    let text = line.to_string();
    text.contains("\"accept\"") && text.contains("\"approve\":true")
}

/// The `traceparent` the tracing observer forwards.
const OURS: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// A tracing observer that forwards [`OURS`].
struct Tracing;
impl Observer for Tracing {
    fn traces(&self) -> bool {
        true
    }
    fn forwarding(&self, _: Kind, _: &str, _: Option<&str>) -> Option<String> {
        Some(OURS.to_owned())
    }
}

fuzz_target!(|data: &[u8]| {
    let traced = data.first().is_some_and(|b| b % 2 == 1);
    let Ok(policy) = Policy::from_json_str(POLICY) else {
        return;
    };
    let engine = Engine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
    let mut gw = Gateway::new(
        Grant::new("g"),
        GatewayOptions {
            approval_timeout: Duration::from_secs(1),
            observers: match traced {
                true => Observers::new(std::sync::Arc::new(Tracing)),
                false => Observers::none(),
            },
            ..GatewayOptions::default()
        },
    );
    let start = Instant::now();
    for (n, raw) in data.split(|b| *b == b'\n').enumerate() {
        let Some((&kind, line)) = raw.split_first() else {
            continue;
        };
        let parsed: Option<Value> = serde_json::from_slice(line).ok();
        if let Some(moved) = with_traceparent(line, OURS) {
            let v: Value = serde_json::from_slice(&moved).expect("a moved traceparent keeps the line JSON");
            assert_eq!(traceparent_of(&v), Some(OURS));
        }
        let outputs = match kind % 4 {
            0 | 1 => gw.from_client(&engine, line),
            2 => gw.from_server(&engine, line),
            _ => {
                if line.first() == Some(&b'!') {
                    gw.upstream_gone(&engine)
                } else {
                    gw.expire(start + Duration::from_millis(500 * n as u64))
                }
            }
        };
        for out in &outputs {
            let sent = match out {
                Output::Forward if kind % 4 < 2 => parsed.as_ref(),
                Output::ToServer(v) => Some(v),
                _ => None,
            };
            let approved = || parsed.as_ref().is_some_and(approving);
            if traced && let Output::ToServer(v) = out
                && (called_tool(v).is_some() || got_prompt(v).is_some())
            {
                assert_eq!(traceparent_of(v), Some(OURS), "a traced request went out without its span: {out:?}");
            }
            if let Some(uri) = sent.and_then(read_uri) {
                let uri = uri.unwrap_or_else(|| panic!("an unreadable URI was forwarded: {out:?}"));
                let hidden = uri.starts_with("file:///srv/secret");
                let asks = uri.starts_with("file:///srv/ask");
                assert!(uri.starts_with("file:///srv/") && !hidden, "a read of `{uri}` was forwarded: {out:?}");
                assert!(!asks || approved(), "a held read went out without an approving answer: {out:?}");
            }
            if let Some(prompt) = sent.and_then(got_prompt) {
                match prompt {
                    "ok" => {}
                    "t" => assert!(approved(), "a held prompt went out without an approving answer: {out:?}"),
                    other => panic!("prompt `{other}` was forwarded: {out:?}"),
                }
            }
            let Some(tool) = sent.and_then(called_tool) else {
                continue;
            };
            match tool {
                "ok" | "lim" => {}
                "t" => assert!(
                    parsed.as_ref().is_some_and(approving),
                    "a held call went out without an approving answer: {out:?}"
                ),
                other => panic!("a call of `{other}` was forwarded: {out:?}"),
            }
        }
    }
});
