//! Arbitrary client and server lines, in arbitrary order, through the MCP layer: it never
//! panics, never forwards a `tools/call`, `resources/read`, `resources/subscribe` or
//! `prompts/get` the policy did not allow, and never lets a held one through without a
//! human's approving answer.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mcp_policy::mcp::{Gateway, GatewayOptions, Output};
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

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = Policy::from_json_str(POLICY) else {
        return;
    };
    let engine = Engine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
    let mut gw = Gateway::new(
        Grant::new("g"),
        GatewayOptions {
            approval_timeout: Duration::from_secs(1),
            ..GatewayOptions::default()
        },
    );
    let start = Instant::now();
    for (n, raw) in data.split(|b| *b == b'\n').enumerate() {
        let Some((&kind, line)) = raw.split_first() else {
            continue;
        };
        let parsed: Option<Value> = serde_json::from_slice(line).ok();
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
