//! The guard over the Redis store (`AsyncEngine` + `mcp_policy_redis::RedisStore`) on a real
//! `redis-server` (loopback, free port, killed at the end): two guarded servers ("replicas")
//! share one budget, an out-of-band approval recorded by another process's engine lets the
//! identical call through once, and a handler error refunds the call in Redis.
//!
//! Without `redis-server` the test is skipped with a loud message, except in CI (the `CI`
//! environment variable set), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/demo/mod.rs"]
#[allow(dead_code)]
mod demo;

use std::time::Duration;

use demo::Demo;
use mcp_policy::mcp::{DECISION_META, GatewayOptions};
use mcp_policy::{AsyncEngine, Grant, Policy, SystemClock};
use mcp_policy_redis::{Options, RedisStore};
use mcp_policy_rmcp::{GrantSource, Guarded};
use mcp_policy_test_support::peers::need;
use mcp_policy_test_support::redis::RedisServer;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};

async fn engine(url: &str) -> AsyncEngine<SystemClock, RedisStore> {
    let store = RedisStore::connect(url, Options::new().prefix("rmcp-test"))
        .await
        .unwrap();
    AsyncEngine::with_parts(
        Policy::from_json_str(demo::POLICY).unwrap(),
        SystemClock,
        store,
    )
}

async fn replica(url: &str) -> RunningService<RoleClient, ()> {
    let options = GatewayOptions {
        approve_command: Some(format!("mcp-policy approve ID --store {url}")),
        ..GatewayOptions::default()
    };
    let guarded = Guarded::with_options(
        Demo::new(),
        engine(url).await,
        GrantSource::Fixed(Grant::new("alice")),
        options,
    )
    .unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Ok(running) = guarded.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.unwrap()
}

fn call(tool: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(map) = args else { panic!() };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(map)
}

fn decision(r: &CallToolResult) -> Value {
    r.meta
        .as_ref()
        .and_then(|m| m.0.get(DECISION_META))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn replicas_share_budgets_and_approvals() {
    if !need(&["redis-server"]) {
        return;
    }
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/", server.port);
    tokio::time::timeout(Duration::from_secs(30), async {
        let (a, b) = (replica(&url).await, replica(&url).await);

        // One budget of 2 scans a minute across both replicas.
        assert_eq!(
            a.call_tool(call("scan", json!({}))).await.unwrap().is_error,
            Some(false)
        );
        assert_eq!(
            b.call_tool(call("scan", json!({}))).await.unwrap().is_error,
            Some(false)
        );
        let r = a.call_tool(call("scan", json!({}))).await.unwrap();
        assert_eq!(decision(&r)["decision"], "limit", "{r:?}");

        // `fail` (1 a minute) errors every time: each call is refunded in Redis.
        for client in [&a, &b, &a] {
            let e = client.call_tool(call("fail", json!({}))).await.unwrap_err();
            assert!(e.to_string().contains("the backend is down"), "{e}");
        }

        // Out of band: the answer names the approval and the command; an approval recorded
        // elsewhere (another process's engine on the same Redis) lets the call through once.
        let r = a
            .call_tool(call("transfer", json!({"amount": 5})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        let id = decision(&r)["approval_id"].as_str().unwrap().to_owned();
        let text = r.content[0].as_text().unwrap().text.clone();
        assert!(
            text.contains(&format!("mcp-policy approve {id} --store {url}")),
            "{text}"
        );
        engine(&url).await.record_approval(&id).await.unwrap();
        let r = b
            .call_tool(call("transfer", json!({"amount": 5})))
            .await
            .unwrap();
        assert_eq!(r.content[0].as_text().unwrap().text, "transferred 5");
        let r = a
            .call_tool(call("transfer", json!({"amount": 5})))
            .await
            .unwrap();
        assert_eq!(decision(&r)["decision"], "approve");

        a.cancel().await.unwrap();
        b.cancel().await.unwrap();
    })
    .await
    .expect("bounded");
    drop(server);
}
