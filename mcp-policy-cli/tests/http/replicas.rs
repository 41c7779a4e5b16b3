//! Gateways on a shared `redis-server`: replicas sharing budgets and approvals (in front of a
//! stdio server and a remote one), Redis frozen or killed under a gateway, and calls of every
//! shape on one session never waiting on each other.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mcp_policy_test_support::Temp;
use mcp_policy_test_support::http::http;
use mcp_policy_test_support::peers::{need, peers};
use mcp_policy_test_support::redis::RedisServer;
use serde_json::{Value, json};

use crate::e2e::{FIXTURE, FIXTURE_POLICY, fixture_http};
use crate::gateway::{
    ACCEPT, BIN, Gateway, audit_records, call, post_and_leave, session, session_with, setup, text,
};

#[test]
fn two_replicas_on_one_redis_share_budgets_and_approvals() {
    if !need(&["python3"]) {
        return;
    }
    let redis = RedisServer::start();
    let s = setup("replicas");
    let url = redis.url();
    let prefix = format!("http-replicas-{}", std::process::id());
    let start = || {
        let args = ["--policy", s.policy.as_str(), "--keys", s.keys.as_str()];
        s.gateway_on_redis(&args, &url, &prefix)
    };
    let a = start();
    let b = start();
    let tok = Some("tok-alice");
    let sa = session(&a.addr, tok);
    let sb = session(&b.addr, tok);

    // echo: at most 3 a minute for alice, across both replicas.
    for (n, (addr, sid)) in [(&a.addr, &sa), (&b.addr, &sb), (&a.addr, &sa)]
        .into_iter()
        .enumerate()
    {
        let r = call(addr, tok, sid, n as u64 + 1, "echo", json!({}));
        assert_eq!(text(&r.answer()), "ran echo", "call {n}: {r:?}");
    }
    let limited = call(&b.addr, tok, &sb, 9, "echo", json!({}));
    let answer = limited.answer();
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert_eq!(
        answer["result"]["_meta"]["io.mcp-policy/decision"]["decision"],
        "limit"
    );

    // An approval asked for on A, recorded with `mcp-policy approve`, admits the call on B.
    let args = json!({"to": "acct-7", "amount": 100});
    let (asked, on_b) = approved_elsewhere(
        [(&a.addr, &sa), (&b.addr, &sb)],
        tok,
        ("transfer", &args),
        (&url, &prefix),
        10,
    );
    assert!(text(&asked).contains("mcp-policy approve"), "{asked}");
    assert_eq!(text(&on_b), "ran transfer", "{on_b}");
}

/// A call that needs approval, asked for through the first replica (address, session) and
/// recorded with `mcp-policy approve` on the shared Redis (URL, prefix), then made through
/// the second one, then again through the first (refused: one approval, one call). Ids from
/// `id`. The answers asking for the approval and of the admitted call.
fn approved_elsewhere(
    [(ask, ask_sid), (run, run_sid)]: [(&str, &str); 2],
    token: Option<&str>,
    (tool, args): (&str, &Value),
    (url, prefix): (&str, &str),
    id: u64,
) -> (Value, Value) {
    let asked = call(ask, token, ask_sid, id, tool, args.clone()).answer();
    let decision = &asked["result"]["_meta"]["io.mcp-policy/decision"];
    assert_eq!(decision["decision"], "approve", "{asked}");
    let approval = decision["approval_id"].as_str().unwrap();
    let approved = Command::new(BIN)
        .args(["approve", approval, "--store", url])
        .env("MCP_POLICY_REDIS_PREFIX", prefix)
        .output()
        .unwrap();
    assert!(approved.status.success(), "{approved:?}");
    let admitted = call(run, token, run_sid, id + 1, tool, args.clone()).answer();
    let again = call(ask, token, ask_sid, id + 2, tool, args.clone()).answer();
    assert_eq!(again["result"]["isError"], true, "{again}");
    (asked, admitted)
}

#[test]
fn replicas_on_redis_in_front_of_a_remote_server() {
    let Some(peers) = peers() else { return };
    let redis = RedisServer::start();
    let t = Temp::new("remote-replicas");
    let policy = t.write("p.json", FIXTURE_POLICY);
    let (server, port) = fixture_http(peers, None);
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let url = redis.url();
    let prefix = format!("http-remote-replicas-{}", std::process::id());
    let start =
        |threads: &[&str]| Gateway::remote_on_redis(&policy, &upstream, (&url, &prefix), threads);
    // A with three event loops, B with the default (one per CPU): each loop has a Redis
    // connection of its own, and each gateway one more for its blocking threads.
    let (a, b) = (start(&["--threads", "3"]), start(&[]));
    let cpus = std::thread::available_parallelism().unwrap().get();
    let clients: String = redis.cmd(&["CLIENT", "LIST"]);
    assert_eq!(
        clients.lines().count(),
        (3 + 1) + (cpus + 1) + 1, // and this command's own
        "{clients}"
    );
    let (sa, sb) = (
        session_with(&a.addr, None, FIXTURE),
        session_with(&b.addr, None, FIXTURE),
    );

    // echo: at most 2 a minute, across both replicas; a denied tool never reaches the server.
    let echo = |addr: &str, sid: &str, id| call(addr, None, sid, id, "echo", json!({"text": "r"}));
    assert_eq!(text(&echo(&a.addr, &sa, 1).answer()), "echo: r");
    assert_eq!(text(&echo(&b.addr, &sb, 2).answer()), "echo: r");
    let limited = echo(&a.addr, &sa, 3).answer();
    let decision = &limited["result"]["_meta"]["io.mcp-policy/decision"];
    assert_eq!(decision["decision"], "limit", "{limited}");
    let denied = call(&b.addr, None, &sb, 4, "fail", json!({"message": "x"})).answer();
    assert_eq!(text(&denied), "no failing", "{denied}");

    // reject: 1 a minute, but the server answers it with a JSON-RPC error (the tool did not
    // run), so each replica refunds it in Redis and the next call, on either, is admitted.
    for (i, (addr, sid)) in [(&a.addr, &sa), (&b.addr, &sb), (&a.addr, &sa)]
        .into_iter()
        .enumerate()
    {
        let id = 10 + i as u64;
        let rejected = call(addr, None, sid, id, "reject", json!({"message": "no"})).answer();
        assert_eq!(rejected["error"]["code"], -32000, "call {i}: {rejected}");
        assert_eq!(rejected["error"]["message"], "no", "call {i}: {rejected}");
        assert_eq!(rejected["id"], id, "{rejected}");
    }

    // An approval asked for through B, recorded with `mcp-policy approve`, admits the call
    // on A, once.
    let args = json!({"steps": 2});
    let (_, on_a) = approved_elsewhere(
        [(&b.addr, &sb), (&a.addr, &sa)],
        None,
        ("progress", &args),
        (&url, &prefix),
        5,
    );
    assert_eq!(text(&on_a), "done", "{on_a}");
    drop((a, b));
    drop(server);
}

#[test]
fn a_gateway_whose_redis_goes_away_denies_and_recovers_by_itself() {
    // With Redis, a plain call's decision is awaited on the event loop (no thread blocked):
    // a Redis that is gone or frozen must still deny within the store's timeout, say why,
    // and leave the gateway serving; calls are admitted again once Redis is back.
    let Some(peers) = peers() else { return };
    let mut redis = RedisServer::start();
    let t = Temp::new("redis-away");
    let policy = t.write(
        "p.json",
        r#"{"version":"1","default":"allow","tools":{
          "echo":{"limits":[{"counter":"e","window":"minute","max":1000}]}}}"#,
    );
    let (server, port) = fixture_http(peers, None);
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let url = redis.url();
    let prefix = format!("http-redis-away-{}", std::process::id());
    let gw = Gateway::remote_on_redis(&policy, &upstream, (&url, &prefix), &[]);
    let sid = session_with(&gw.addr, None, FIXTURE);
    let echo = |id| call(&gw.addr, None, &sid, id, "echo", json!({"text": "r"})).answer();
    let denied_by_the_store = |answer: &Value| {
        let decision = &answer["result"]["_meta"]["io.mcp-policy/decision"];
        decision["decision"] == "deny"
            && decision["message"]
                .as_str()
                .is_some_and(|m| m.contains("counter store unavailable"))
    };
    assert_eq!(text(&echo(1)), "echo: r");

    // Frozen: no answer from Redis. Calls are denied within the store's timeout (250 ms),
    // and while they wait, the event loop answers a request that needs no store.
    redis.pause();
    let t0 = Instant::now();
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            let (addr, sid) = (gw.addr.clone(), sid.clone());
            std::thread::spawn(move || {
                call(&addr, None, &sid, 100 + i, "echo", json!({"text": "r"})).answer()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let list = http(
        &gw.addr,
        "POST",
        &[ACCEPT, ("Mcp-Session-Id", sid.as_str())],
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
    )
    .answer();
    assert!(list["result"]["tools"].is_array(), "{list}");
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "the calls waiting for Redis were answered before a request that needs no store"
    );
    for w in waiting {
        let answer = w.join().unwrap();
        assert!(denied_by_the_store(&answer), "{answer}");
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    redis.resume();

    // Gone: denied, naming the store; back (empty, on the same port): admitted again.
    redis.kill();
    let answer = echo(4);
    assert!(denied_by_the_store(&answer), "{answer}");
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut id = 5;
    loop {
        let answer = echo(id);
        if text(&answer) == "echo: r" {
            break;
        }
        assert!(denied_by_the_store(&answer), "{answer}");
        assert!(
            Instant::now() < deadline,
            "still denied after Redis returned"
        );
        std::thread::sleep(Duration::from_millis(200));
        id += 1;
    }
    // The admitted call was charged in the new Redis.
    let keys: Vec<String> = redis.cmd(&["KEYS", &format!("{{{prefix}}}:c:*")]);
    assert!(!keys.is_empty(), "no counter in Redis");
    drop(gw);
    drop(server);
}

#[test]
fn with_redis_calls_of_every_shape_on_one_session_never_wait_on_each_other() {
    // With Redis, a plain call is decided on the event loop and a call of another shape on
    // a blocking thread that holds the session while the store answers. Neither may wait
    // for the other: many callers on one session, both shapes, a stdio server, and every
    // call is admitted (a deadlock would deny calls after the store's 250 ms timeout).
    if !need(&["python3"]) {
        return;
    }
    let redis = RedisServer::start();
    let s = setup("redis-shapes");
    let policy = s._t.write(
        "big.json",
        r#"{"version":"1","default":"deny","tools":{
          "echo":{"limits":[{"counter":"e","window":"minute","max":100000}]}}}"#,
    );
    let url = redis.url();
    let prefix = format!("http-redis-shapes-{}", std::process::id());
    let audit = s._t.path("audit.jsonl");
    let audit_s = audit.display().to_string();
    let gw = s.gateway_on_redis(&["--policy", &policy, "--audit", &audit_s], &url, &prefix);
    let sid = session(&gw.addr, None);
    let t0 = Instant::now();
    let callers: Vec<_> = (0..8u64)
        .map(|caller| {
            let (addr, sid) = (gw.addr.clone(), sid.clone());
            std::thread::spawn(move || {
                let mut wrong = Vec::new();
                for k in 0..30u64 {
                    let id = caller * 1000 + k;
                    // An extra key in `params`: not the plain shape, read whole.
                    let body = if (caller + k) % 2 == 0 {
                        json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                            "params":{"name":"echo","arguments":{}}})
                    } else {
                        json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                            "params":{"name":"echo","arguments":{},"x-extra":k}})
                    };
                    let headers = [ACCEPT, ("Mcp-Session-Id", sid.as_str())];
                    let answer =
                        http(&addr, "POST", &headers, body.to_string().as_bytes()).answer();
                    if text(&answer) != "ran echo" {
                        wrong.push(answer);
                    }
                }
                wrong
            })
        })
        .collect();
    let wrong: Vec<Value> = callers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        wrong.is_empty(),
        "{} calls not admitted: {:?}",
        wrong.len(),
        wrong.first()
    );
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    // Every call was decided once and audited once (before its answer), with the charge
    // in Redis: the last one admitted saw 100000 - 240 left.
    let records = |audit: &Path| -> Vec<Value> {
        let all = audit_records(audit);
        all.into_iter().filter(|r| r["tool"] == "echo").collect()
    };
    let admitted = records(&audit);
    assert_eq!(admitted.len(), 240);
    assert!(admitted.iter().all(|r| r["decision"] == "allow"));
    let least = admitted
        .iter()
        .filter_map(|r| r["remaining"].as_u64())
        .min();
    assert_eq!(least, Some(100_000 - 240));

    // A client that goes away while its call's decision is awaited loses nothing: the call
    // is still decided (denied, if Redis is still frozen when it is) and audited.
    redis.pause();
    let body = json!({"jsonrpc":"2.0","id":5000,"method":"tools/call",
        "params":{"name":"echo","arguments":{"tag":"left"}}});
    post_and_leave(&gw.addr, &sid, &body, Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(500));
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while records(&audit).len() == 240 {
        assert!(
            Instant::now() < deadline,
            "the call of the client that left was not audited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = records(&audit);
    assert_eq!(all.len(), 241);
    let left = &all[240];
    assert!(
        left["decision"] == "allow"
            || left["message"]
                .as_str()
                .is_some_and(|m| m.contains("counter store unavailable")),
        "{left}"
    );
    drop(gw);
}
