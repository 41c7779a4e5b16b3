//! The harness the suites share: the gateway as a subprocess ([`Gateway`]), a mini MCP
//! server over stdio in Python that records its pids ([`Setup`]), the policy and keys they run
//! with, and raw MCP requests over the shared HTTP client (`initialize`, sessions, calls).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::http::{Resp, http};
use mcp_policy_test_support::process::{Stderr, alive, wait_exit, wait_until};
use serde_json::{Value, json};

pub(crate) use mcp_policy_test_support::mcp::{audit_records, text};

/// The command under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

/// A minimal MCP server over stdio; it writes its pid into $PIDDIR.
const MINI_SERVER: &str = r#"
import json, os, sys, time
open(os.path.join(os.environ["PIDDIR"], str(os.getpid())), "w").close()
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    m = json.loads(line)
    if "method" not in m or "id" not in m:
        continue
    method, i = m["method"], m["id"]
    p = m.get("params") or {}
    if method == "initialize":
        r = {"protocolVersion": p.get("protocolVersion", "2025-11-25"), "capabilities": {"tools": {}},
             "serverInfo": {"name": "mini", "version": "0"}}
    elif method == "tools/list":
        r = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in ("echo", "slow", "secret", "transfer")]}
    elif method == "tools/call":
        a = p.get("arguments") or {}
        if p["name"] == "slow":
            time.sleep(a.get("ms", 0) / 1000)
        tp = (p.get("_meta") or {}).get("traceparent")
        r = {"content": [{"type": "text", "text": "ran " + p["name"] + a.get("tag", "") + (" traceparent=" + tp if tp else "")}]}
    else:
        print(json.dumps({"jsonrpc": "2.0", "id": i, "error": {"code": -32601, "message": "no such method"}}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": i, "result": r}), flush=True)
"#;

pub(crate) const POLICY: &str = r#"{"version":"1","default":"deny","hide":["secret"],"tools":{
  "echo":{"limits":[{"counter":"echo","window":"minute","max":3}]},
  "slow":{},
  "transfer":{"action":"approve","reason":"moves money"}}}"#;

fn sha256_hex(token: &str) -> String {
    let out = Command::new(BIN)
        .args(["keys", "hash", token])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub(crate) fn keys_file(entries: &[(&str, &str)]) -> String {
    let keys: Vec<Value> = entries
        .iter()
        .map(|(token, grant)| json!({"sha256": sha256_hex(token), "grant": grant}))
        .collect();
    json!({ "keys": keys }).to_string()
}

/// A gateway subprocess (`mcp-policy proxy --listen 127.0.0.1:0`), stopped with SIGTERM (and
/// SIGKILL after 10 s) when dropped.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    /// Where it listens (`127.0.0.1:PORT`).
    pub(crate) addr: String,
    stderr: Stderr,
}

impl Gateway {
    /// `proxy --listen 127.0.0.1:0 ARGS -- UPSTREAM` with `env`; returns once it listens.
    pub(crate) fn start(args: &[&str], upstream: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(BIN);
        cmd.args(["proxy", "--listen", "127.0.0.1:0"])
            .args(args)
            .arg("--")
            .args(upstream)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Stderr::capture(&mut child);
        let addr = stderr
            .wait_for(Duration::from_secs(20), |line| {
                let rest = line.strip_prefix("mcp-policy proxy: listening on http://")?;
                Some(rest.trim_end_matches("/mcp").to_owned())
            })
            .unwrap_or_else(|| panic!("the gateway did not start: {}", stderr.text()));
        Gateway {
            child,
            addr,
            stderr,
        }
    }

    /// A gateway in front of a remote server: `--policy POLICY --upstream URL`, then `extra`.
    pub(crate) fn remote(policy: &str, upstream: &str, extra: &[&str]) -> Gateway {
        let mut args = vec!["--policy", policy, "--upstream", upstream];
        args.extend_from_slice(extra);
        Gateway::start(&args, &[], &[])
    }

    /// As [`Gateway::remote`], on the Redis store at `url` under key prefix `prefix`.
    pub(crate) fn remote_on_redis(
        policy: &str,
        upstream: &str,
        (url, prefix): (&str, &str),
        extra: &[&str],
    ) -> Gateway {
        let mut args = vec!["--policy", policy, "--upstream", upstream, "--store", url];
        args.extend_from_slice(extra);
        Gateway::start(&args, &[], &[("MCP_POLICY_REDIS_PREFIX", prefix)])
    }

    /// Everything it wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Sends it a signal (`kill SIGNAL`, e.g. `-TERM`).
    pub(crate) fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Its exit status, if it exits within `limit`.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        wait_exit(&mut self.child, limit)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal("-TERM");
            if self.wait(Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

pub(crate) const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

pub(crate) fn initialize(addr: &str, token: Option<&str>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![ACCEPT];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"raw","version":"0"}}});
    http(addr, "POST", &headers, body.to_string().as_bytes())
}

/// An initialized session with the mini server: its id.
pub(crate) fn session(addr: &str, token: Option<&str>) -> String {
    session_with(addr, token, "mini")
}

/// An initialized session with the server of this name: its id.
pub(crate) fn session_with(addr: &str, token: Option<&str>, server: &str) -> String {
    let init = initialize(addr, token);
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(init.answer()["result"]["serverInfo"]["name"], server);
    let sid = init.header("mcp-session-id").unwrap().to_owned();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![ACCEPT, ("Mcp-Session-Id", sid.as_str())];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let note = http(
        addr,
        "POST",
        &headers,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(note.status, 202, "{note:?}");
    sid
}

pub(crate) fn call(
    addr: &str,
    token: Option<&str>,
    sid: &str,
    id: u64,
    tool: &str,
    args: Value,
) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![ACCEPT, ("Mcp-Session-Id", sid)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
        "params":{"name":tool,"arguments":args}});
    http(addr, "POST", &headers, body.to_string().as_bytes())
}

/// Sends a request in the session and hangs up after `after`, before any answer.
pub(crate) fn post_and_leave(addr: &str, sid: &str, body: &Value, after: Duration) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {sid}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    std::thread::sleep(after);
}

pub(crate) fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether every mini server that wrote its pid into `dir` is gone within `limit`.
pub(crate) fn all_gone(dir: &Path, limit: Duration) -> bool {
    wait_until(limit, Duration::from_millis(50), || {
        pids(dir).into_iter().all(|p| !alive(p))
    })
}

/// A test's directory with [`POLICY`], a keys file (`tok-alice` for alice, `tok-bob` for
/// bob), the mini server and the directory its instances write their pids into.
pub(crate) struct Setup {
    pub(crate) _t: Temp,
    pub(crate) policy: String,
    pub(crate) keys: String,
    pub(crate) server: String,
    pub(crate) piddir: PathBuf,
}

pub(crate) fn setup(name: &str) -> Setup {
    let t = Temp::new(name);
    let policy = t.write("p.json", POLICY);
    let keys = t.write(
        "keys.json",
        &keys_file(&[("tok-alice", "alice"), ("tok-bob", "bob")]),
    );
    let server = t.write("mini.py", MINI_SERVER);
    let piddir = t.path("pids");
    std::fs::create_dir_all(&piddir).unwrap();
    Setup {
        _t: t,
        policy,
        keys,
        server,
        piddir,
    }
}

impl Setup {
    /// A gateway in front of the mini server with `args`, its counters in Redis at `url`
    /// under the key prefix `prefix`.
    pub(crate) fn gateway_on_redis(&self, args: &[&str], url: &str, prefix: &str) -> Gateway {
        let mut args = args.to_vec();
        args.extend(["--store", url]);
        Gateway::start(
            &args,
            &["python3", &self.server],
            &[
                ("PIDDIR", self.piddir.to_str().unwrap()),
                ("MCP_POLICY_REDIS_PREFIX", prefix),
            ],
        )
    }

    /// A gateway in front of the mini server with `--policy POLICY` and `extra`.
    pub(crate) fn gateway(&self, extra: &[&str]) -> Gateway {
        let mut args = vec!["--policy", &self.policy];
        args.extend_from_slice(extra);
        Gateway::start(
            &args,
            &["python3", &self.server],
            &[("PIDDIR", self.piddir.to_str().unwrap())],
        )
    }
}
