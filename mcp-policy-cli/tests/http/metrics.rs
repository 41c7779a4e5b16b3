//! `--metrics`: the gateway's Prometheus metrics, read as text from its own port and scraped
//! by a real Prometheus (Debian's `prometheus`, started here on a free loopback port with a
//! generated configuration) whose HTTP API the test queries: the decisions counted by verdict
//! and rule equal the decisions made, Redis frozen shows as store denials, a reload as the
//! new revision.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::http::{free_port, get, http};
use mcp_policy_test_support::peers::need;
use mcp_policy_test_support::process::KillOnDrop;
use mcp_policy_test_support::redis::RedisServer;
use serde_json::{Value, json};

use crate::gateway::{ACCEPT, POLICY, call, session, setup};

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The decision a refused call carries, or `allow` for a call the server ran.
fn verdict_of(answer: &Value) -> (String, String) {
    if let Some(d) = answer["result"]["_meta"].get("io.mcp-policy/decision") {
        return (
            d["decision"].as_str().unwrap().into(),
            d["rule"].as_str().unwrap().into(),
        );
    }
    if answer["error"]["code"] == -32602 {
        return ("hide".into(), String::new());
    }
    assert!(answer["result"]["content"].is_array(), "{answer}");
    ("allow".into(), String::new())
}

#[test]
fn the_gateway_port_serves_metrics_that_count_every_decision() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("metrics-port");
    let gw = s.gateway(&["--keys", &s.keys, "--metrics"]);
    let tok = Some("tok-alice");
    let sid = session(&gw.addr, tok);
    let calls = [
        ("echo", json!({})),
        ("echo", json!({})),
        ("echo", json!({})),
        ("echo", json!({})),
        ("rm", json!({})),
        ("secret", json!({})),
        ("transfer", json!({"amount": 5})),
    ];
    let mut seen: Vec<(String, String)> = Vec::new();
    for (n, (tool, args)) in calls.iter().enumerate() {
        seen.push(verdict_of(
            &call(&gw.addr, tok, &sid, n as u64 + 1, tool, args.clone()).answer(),
        ));
    }
    let verdicts: Vec<&str> = seen.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        verdicts,
        [
            "allow", "allow", "allow", "limit", "deny", "hide", "approve"
        ]
    );
    // A request without a credential is refused at the door, and counted.
    let refused = http(
        &gw.addr,
        "POST",
        &[ACCEPT],
        br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    );
    assert_eq!(refused.status, 401);

    // No credential needed for the metrics (a scraper is not an MCP caller).
    let res = get(&gw.addr, "/metrics");
    assert_eq!(res.status, 200, "{res:?}");
    assert!(
        res.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{res:?}"
    );
    let text = &res.body;
    let decisions = |verdict: &str, rule: &str| {
        let mut labels = vec![("kind", "tool"), ("verdict", verdict)];
        if !rule.is_empty() {
            labels.push(("rule", rule));
        }
        sample(text, "mcp_policy_decisions_total", &labels)
    };
    assert_eq!(decisions("allow", "/tools/echo"), 3.0, "{text}");
    assert_eq!(decisions("limit", &seen[3].1), 1.0, "{text}");
    assert_eq!(decisions("deny", "/default"), 1.0, "{text}");
    assert_eq!(decisions("hide", ""), 1.0, "{text}");
    assert_eq!(decisions("approve", &seen[6].1), 1.0, "{text}");
    assert_eq!(sample(text, "mcp_policy_decisions_total", &[]), 7.0);
    assert_eq!(
        sample(text, "mcp_policy_limits_hit_total", &[("counter", "echo")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(text, "mcp_policy_approvals_total", &[("event", "asked")]),
        1.0
    );
    assert_eq!(
        sample(
            text,
            "mcp_policy_upstream_calls_total",
            &[("kind", "tool"), ("outcome", "ok")]
        ),
        3.0
    );
    assert_eq!(
        sample(
            text,
            "mcp_policy_upstream_duration_seconds_count",
            &[("kind", "tool")]
        ),
        3.0
    );
    assert_eq!(
        sample(
            text,
            "mcp_policy_decision_duration_seconds_count",
            &[("kind", "tool")]
        ),
        7.0
    );
    assert_eq!(sample(text, "mcp_policy_sessions", &[]), 1.0);
    assert_eq!(
        sample(
            text,
            "mcp_policy_refused_requests_total",
            &[("reason", "unauthenticated")]
        ),
        1.0
    );
    assert_eq!(sample(text, "mcp_policy_policy_info", &[]), 1.0);
    assert_eq!(sample(text, "mcp_policy_store_denials_total", &[]), 0.0);
    // No caller's name or argument becomes a label.
    assert!(
        !text.contains("\"rm\"") && !text.contains("alice"),
        "{text}"
    );
}

#[test]
fn metrics_are_off_unless_asked_and_a_listener_of_their_own_binds_loopback_only() {
    if !need(&["python3"]) {
        return;
    }
    let s = setup("metrics-off");
    let gw = s.gateway(&[]);
    assert_eq!(get(&gw.addr, "/metrics").status, 404);
    drop(gw);
    let out = Command::new(crate::gateway::BIN)
        .args(["proxy", "--listen", "127.0.0.1:0", "--policy", &s.policy])
        .args(["--metrics", "0.0.0.0:0", "--", "python3", &s.server])
        .env("PIDDIR", s.piddir.to_str().unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics 0.0.0.0:0: not a loopback address; add --metrics-public"),
        "{err}"
    );
}

/// Prometheus, scraping `target` every 200 ms; stopped (and its data removed) when dropped.
struct Prometheus {
    addr: String,
    _process: KillOnDrop,
    _dir: Temp,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = Temp::new("prometheus");
        let config = dir.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n\
                 scrape_configs:\n  - job_name: mcp-policy\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        );
        let addr = format!("127.0.0.1:{}", free_port());
        let process = Command::new("prometheus")
            .arg(format!("--config.file={config}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus");
        let process = KillOnDrop(process);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() || get(&addr, "/-/ready").status != 200 {
            assert!(Instant::now() < deadline, "prometheus did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Prometheus {
            addr,
            _process: process,
            _dir: dir,
        }
    }

    /// The instant vector `query` evaluates to now: each series' labels and value.
    fn query(&self, query: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let mut encoded = String::new();
        for b in query.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    encoded.push(b as char)
                }
                _ => encoded.push_str(&format!("%{b:02X}")),
            }
        }
        let res = get(&self.addr, &format!("/api/v1/query?query={encoded}"));
        assert_eq!(res.status, 200, "{query}: {res:?}");
        let body: Value = serde_json::from_str(&res.body).unwrap();
        body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                (labels, r["value"][1].as_str().unwrap().parse().unwrap())
            })
            .collect()
    }

    /// Waits (up to 20 s) until `query` gives what `expected` says; the last answer.
    fn until(
        &self,
        query: &str,
        expected: impl Fn(&[(BTreeMap<String, String>, f64)]) -> bool,
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.query(query);
            if expected(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "{query}: {got:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_the_decisions_the_store_failures_and_a_reload() {
    if !need(&["python3", "redis-server", "prometheus"]) {
        return;
    }
    let redis = RedisServer::start();
    let s = setup("metrics-prometheus");
    let prefix = format!("http-metrics-{}", std::process::id());
    let gw = s.gateway_on_redis(
        &[
            "--policy",
            &s.policy,
            "--keys",
            &s.keys,
            "--metrics",
            "127.0.0.1:0",
        ],
        &redis.url(),
        &prefix,
    );
    let metrics_addr = gw
        .stderr()
        .lines()
        .find_map(|l| l.strip_prefix("mcp-policy proxy: metrics at http://"))
        .map(|rest| rest.trim_end_matches("/metrics").to_owned())
        .expect("the metrics address on stderr");
    // Not on the gateway's own port when they have a listener of their own.
    assert_eq!(get(&gw.addr, "/metrics").status, 404);
    let prometheus = Prometheus::start(&metrics_addr);

    // A bounded load of known decisions: alice and bob, 12 calls each.
    let mut made: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (who, tok) in [("alice", "tok-alice"), ("bob", "tok-bob")] {
        let sid = session(&gw.addr, Some(tok));
        for n in 0..12u64 {
            let tool = ["echo", "rm", "slow"][n as usize % 3];
            let answer = call(&gw.addr, Some(tok), &sid, n + 1, tool, json!({})).answer();
            let (verdict, rule) = verdict_of(&answer);
            let rule = match (verdict.as_str(), tool) {
                ("allow", t) => format!("/tools/{t}"),
                _ => rule,
            };
            *made.entry((verdict, rule)).or_default() += 1.0;
        }
        let _ = who;
    }
    // echo: 3 a minute each, so 3 of each caller's 4 are allowed.
    assert_eq!(
        made[&("allow".into(), "/tools/echo".into())],
        6.0,
        "{made:?}"
    );
    let want = made.clone();
    let got = prometheus.until(
        "sum by (verdict, rule) (mcp_policy_decisions_total)",
        |got| {
            got.len() == want.len()
                && got.iter().all(|(labels, v)| {
                    want.get(&(labels["verdict"].clone(), labels["rule"].clone())) == Some(v)
                })
        },
    );
    assert_eq!(got.len(), 4, "{got:?}");

    // Redis frozen: calls are denied by the store (fail closed), and counted as such.
    let sid = session(&gw.addr, Some("tok-alice"));
    redis.pause();
    for n in 0..3u64 {
        let answer = call(
            &gw.addr,
            Some("tok-alice"),
            &sid,
            100 + n,
            "echo",
            json!({}),
        )
        .answer();
        let (verdict, _) = verdict_of(&answer);
        assert_eq!(verdict, "deny", "{answer}");
    }
    redis.resume();
    prometheus.until("sum(mcp_policy_store_denials_total)", |got| {
        got.first().is_some_and(|(_, v)| *v == 3.0)
    });
    prometheus.until(
        "sum(mcp_policy_store_operations_total{op=\"apply\",outcome=\"error\"})",
        |got| got.first().is_some_and(|(_, v)| *v >= 3.0),
    );

    // A reload: the live revision is the new policy's.
    let new_policy = POLICY.replace("\"slow\":{}", "\"slow\":{},\"ping\":{}");
    std::fs::write(&s.policy, new_policy).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let revision = loop {
        let found = gw.stderr().lines().find_map(|l| {
            let rest = l.split_once(": reloaded (revision ")?.1;
            Some(rest.trim_end_matches(')').to_owned())
        });
        if let Some(r) = found {
            break r;
        }
        assert!(Instant::now() < deadline, "no reload: {}", gw.stderr());
        std::thread::sleep(Duration::from_millis(50));
    };
    let got = prometheus.until("mcp_policy_policy_info", |got| {
        got.len() == 1 && got[0].0.get("revision") == Some(&revision)
    });
    assert_eq!(got[0].1, 1.0);
    prometheus.until(
        "sum(mcp_policy_reloads_total{file=\"policy\",outcome=\"ok\"})",
        |got| got.first().is_some_and(|(_, v)| *v == 1.0),
    );
    drop(gw);
}
