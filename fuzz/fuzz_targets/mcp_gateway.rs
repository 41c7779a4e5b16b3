//! Arbitrary client and server lines, in arbitrary order, through the MCP layer: it never
//! panics, never forwards a `tools/call` the policy did not allow, and never lets a held call
//! through without a human's approving answer.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mcp_policy::mcp::{Gateway, GatewayOptions, Output};
use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy};
use serde_json::Value;

const POLICY: &str = r#"{"version":"1","default":"deny","hide":["h*"],
  "tools":{"ok":{},"lim":{"limits":[{"counter":"c","window":"minute","max":2}]},
           "t":{"action":"approve"},"no":{"action":"deny"}}}"#;

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
