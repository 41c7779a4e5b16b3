//! The guard between rmcp's own client and the demo server, over in-memory duplex pipes:
//! every decision, list filtering, refunds, the three approval channels, missing grants,
//! and the async engine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/demo/mod.rs"]
mod demo;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use demo::Demo;
use mcp_policy::AsyncDecider;
use mcp_policy::mcp::DECISION_META;
use mcp_policy::{AsyncEngine, Engine, Grant, ManualClock, MemoryStore, Policy};
use mcp_policy_rmcp::{GrantSource, Guarded};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, InitializeRequestParams, InitializeResult,
    ProtocolVersion, ServerCapabilities,
};
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService, serve_directly};
use rmcp::{ClientHandler, ErrorData, ServiceError, ServiceExt};
use serde_json::{Value, json};

/// A client that speaks `version`, declares elicitation or not, and answers elicitations
/// with `answer`.
#[derive(Clone)]
struct Client {
    version: ProtocolVersion,
    elicitation: bool,
    answer: Option<ElicitationAction>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let caps = if self.elicitation {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        InitializeRequestParams::new(caps, Implementation::new("test-client", "1.2.3"))
            .with_protocol_version(self.version.clone())
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = &request else {
            panic!("a form elicitation: {request:?}");
        };
        assert!(message.contains("Tool: transfer"), "{message}");
        assert!(message.contains("Arguments: {\"amount\":5}"), "{message}");
        match &self.answer {
            Some(ElicitationAction::Accept) => {
                Ok(ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({"approve": true})))
            }
            Some(action) => Ok(ElicitResult::new(action.clone())),
            None => Err(ErrorData::internal_error("cannot ask", None)),
        }
    }
}

fn policy() -> Policy {
    Policy::from_json_str(demo::POLICY).unwrap()
}

/// Serves `server` guarded by `engine` and connects `client` with the `initialize`
/// handshake (2025-06-18 and 2025-11-25), or directly for 2026-07-28.
async fn connect<D: AsyncDecider + 'static>(
    server: Demo,
    engine: D,
    grants: GrantSource,
    client: Client,
) -> RunningService<RoleClient, Client> {
    let guarded = Guarded::new(server, engine, grants);
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    if client.version == ProtocolVersion::V_2026_07_28 {
        let info = client.get_info();
        let mut server_info =
            InitializeResult::new(ServerCapabilities::builder().enable_tools().build());
        server_info.protocol_version = ProtocolVersion::V_2026_07_28;
        let server = serve_directly::<RoleServer, _, _, _, _>(guarded, server_io, Some(info));
        tokio::spawn(async move {
            let _ = server.waiting().await;
        });
        return serve_directly::<RoleClient, _, _, _, _>(
            client,
            client_io,
            Some(server_info.into()),
        );
    }
    tokio::spawn(async move {
        if let Ok(running) = guarded.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    client.serve(client_io).await.unwrap()
}

fn plain(version: ProtocolVersion) -> Client {
    Client {
        version,
        elicitation: false,
        answer: None,
    }
}

fn call(tool: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(map) = args else { panic!() };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(map)
}

fn text(result: &CallToolResult) -> String {
    result.content[0].as_text().unwrap().text.clone()
}

fn decision(result: &CallToolResult) -> Value {
    let meta = result.meta.as_ref().expect("_meta");
    meta.0.get(DECISION_META).cloned().expect("decision")
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test took over 20 s")
}

#[tokio::test]
async fn allow_deny_limit_hidden_and_list() {
    bounded(async {
        let server = Demo::new();
        let ran = server.ran.clone();
        let grants = GrantSource::Fixed(Grant::new("alice"));
        let client = connect(
            server,
            Engine::new(policy()),
            grants,
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;

        // Allowed: the server's answer.
        let r = client
            .call_tool(call("echo", json!({"text": "hi"})))
            .await
            .unwrap();
        assert_eq!(text(&r), "hi");
        assert_eq!(r.is_error, Some(false).filter(|_| r.is_error.is_some()));

        // Denied: an isError result with the decision, the tool never ran.
        let before = ran.load(Ordering::Relaxed);
        let r = client
            .call_tool(call("stop_scan", json!({})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert_eq!(text(&r), "Stopping scans breaks compliance monitoring");
        let d = decision(&r);
        assert_eq!(d["decision"], "deny");
        assert_eq!(d["rule"], "/tools/stop_scan/action");
        assert_eq!(ran.load(Ordering::Relaxed), before);

        // Limited: the third scan in a minute.
        for _ in 0..2 {
            let r = client
                .call_tool(call("scan", json!({"target": "prod"})))
                .await
                .unwrap();
            assert_eq!(text(&r), "scanning prod");
        }
        let r = client
            .call_tool(call("scan", json!({"target": "prod"})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert_eq!(decision(&r)["decision"], "limit");
        assert!(text(&r).contains("(retry in "), "{}", text(&r));

        // Hidden: unknown, as for a tool that does not exist.
        let e = client
            .call_tool(call("drop_db", json!({})))
            .await
            .unwrap_err();
        let ServiceError::McpError(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(e.code.0, -32602);
        assert_eq!(e.message, "Unknown tool: drop_db");

        // The list shows only what can ever be allowed.
        let mut names: Vec<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["echo", "fail", "scan", "transfer"]);
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_error_from_the_handler_refunds_the_call() {
    bounded(async {
        let server = Demo::new();
        let ran = server.ran.clone();
        let client = connect(
            server,
            Engine::new(policy()),
            GrantSource::Fixed(Grant::new("alice")),
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;
        // `fail` allows 1 call a minute; each call fails with a JSON-RPC error, so each is
        // refunded and the next one reaches the tool again.
        for n in 1..=3 {
            let e = client.call_tool(call("fail", json!({}))).await.unwrap_err();
            assert!(
                matches!(e, ServiceError::McpError(ref e) if e.message == "the backend is down"),
                "{e:?}"
            );
            assert_eq!(ran.load(Ordering::Relaxed), n);
        }
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn approval_by_elicitation() {
    bounded(async {
        for (version, answer, expect) in [
            (
                ProtocolVersion::V_2025_11_25,
                Some(ElicitationAction::Accept),
                "transferred 5",
            ),
            (
                ProtocolVersion::V_2025_06_18,
                Some(ElicitationAction::Accept),
                "transferred 5",
            ),
            (
                ProtocolVersion::V_2025_11_25,
                Some(ElicitationAction::Decline),
                "The call of `transfer` was not approved: the user declined. Nothing was done.",
            ),
            (
                ProtocolVersion::V_2025_11_25,
                None,
                "The call of `transfer` was not approved: the client could not ask (elicitation failed). Nothing was done.",
            ),
        ] {
            let server = Demo::new();
            let ran = server.ran.clone();
            let client = Client {
                version,
                elicitation: true,
                answer,
            };
            let client = connect(
                server,
                Engine::new(policy()),
                GrantSource::Fixed(Grant::new("alice")),
                client,
            )
            .await;
            let r = client
                .call_tool(call("transfer", json!({"amount": 5})))
                .await
                .unwrap();
            assert_eq!(text(&r), expect);
            let approved = expect == "transferred 5";
            assert_eq!(ran.load(Ordering::Relaxed), u64::from(approved));
            if !approved {
                assert_eq!(r.is_error, Some(true));
                assert_eq!(decision(&r)["decision"], "approve");
            }
            client.cancel().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn approval_by_input_required() {
    bounded(async {
        let server = Demo::new();
        let ran = server.ran.clone();
        let client = Client {
            version: ProtocolVersion::V_2026_07_28,
            elicitation: true,
            answer: Some(ElicitationAction::Accept),
        };
        let client = connect(
            server,
            Engine::new(policy()),
            GrantSource::Fixed(Grant::new("alice")),
            client,
        )
        .await;
        // The first answer is `input_required`: inspect it without the client's auto-retry.
        let first = client
            .call_tool_once(call("transfer", json!({"amount": 5})))
            .await
            .unwrap();
        let rmcp::model::CallToolResponse::InputRequired(first) = first else {
            panic!("{first:?}")
        };
        let state = first.request_state.clone().unwrap();
        assert!(state.starts_with("io.mcp-policy/state/"), "{state}");
        assert!(
            first
                .input_requests
                .as_ref()
                .unwrap()
                .contains_key("approve")
        );
        assert_eq!(ran.load(Ordering::Relaxed), 0);
        // rmcp's client answers the elicitation and retries: the call goes through once.
        let r = client
            .call_tool(call("transfer", json!({"amount": 5})))
            .await
            .unwrap();
        assert_eq!(text(&r), "transferred 5");
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        // A denial on 2026-07-28 still is an isError result.
        let r = client
            .call_tool(call("stop_scan", json!({})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn approval_out_of_band() {
    bounded(async {
        let server = Demo::new();
        let client = connect(
            server,
            Engine::new(policy()),
            GrantSource::Fixed(Grant::new("alice")),
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;
        let r = client
            .call_tool(call("transfer", json!({"amount": 5})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        let d = decision(&r);
        assert_eq!(d["decision"], "approve");
        let id = d["approval_id"].as_str().unwrap();
        assert!(text(&r).contains(id), "{}", text(&r));
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn no_grant_is_denied() {
    bounded(async {
        let server = Demo::new();
        let ran = server.ran.clone();
        let client = connect(
            server,
            Engine::new(policy()),
            GrantSource::Custom(Arc::new(|_| None)),
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;
        let r = client
            .call_tool(call("echo", json!({"text": "hi"})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert_eq!(decision(&r)["decision"], "deny");
        assert_eq!(ran.load(Ordering::Relaxed), 0);
        // GrantSource::Http over stdio: no HTTP request, no grant.
        let client2 = connect(
            Demo::new(),
            Engine::new(policy()),
            GrantSource::Http,
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;
        let r = client2
            .call_tool(call("echo", json!({"text": "hi"})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        client.cancel().await.unwrap();
        client2.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn client_info_reaches_the_grant() {
    bounded(async {
        let policy = Policy::from_json_str(
            r#"{"version":"1","default":"deny","tools":{"echo":{"require":[
              {"path":"grant.attrs.client","op":"eq","value":"other-client","on_deny":"not this client"}]}}}"#,
        )
        .unwrap();
        let client = connect(
            Demo::new(),
            Engine::new(policy),
            GrantSource::Fixed(Grant::new("alice")),
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;
        let r = client
            .call_tool(call("echo", json!({"text": "hi"})))
            .await
            .unwrap();
        assert_eq!(text(&r), "not this client");
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn async_engine() {
    bounded(async {
        let engine = AsyncEngine::with_parts(policy(), ManualClock::new(0), MemoryStore::new());
        let client = connect(
            Demo::new(),
            engine,
            GrantSource::Fixed(Grant::new("alice")),
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;
        for _ in 0..2 {
            let r = client.call_tool(call("scan", json!({}))).await.unwrap();
            assert_eq!(r.is_error, None.or(r.is_error.filter(|e| !e)));
        }
        let r = client.call_tool(call("scan", json!({}))).await.unwrap();
        assert_eq!(decision(&r)["decision"], "limit");
        assert_eq!(decision(&r)["retry_after_ms"], 60_000);
        client.cancel().await.unwrap();
    })
    .await;
}

/// A client that takes its time to answer elicitations.
#[derive(Clone)]
struct Slow;

impl ClientHandler for Slow {
    fn get_info(&self) -> ClientConfig {
        let caps = ClientCapabilities::builder().enable_elicitation().build();
        InitializeRequestParams::new(caps, Implementation::new("slow", "1"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true})))
    }
}

#[tokio::test]
async fn an_unanswered_elicitation_times_out() {
    bounded(async {
        let server = Demo::new();
        let ran = server.ran.clone();
        let options = mcp_policy::mcp::GatewayOptions {
            approval_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let guarded = Guarded::with_options(
            server,
            Engine::new(policy()),
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
        let client = Slow.serve(client_io).await.unwrap();
        let started = std::time::Instant::now();
        let r = client
            .call_tool(call("transfer", json!({"amount": 5})))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(r.is_error, Some(true));
        assert!(text(&r).contains("no answer within"), "{}", text(&r));
        assert_eq!(ran.load(Ordering::Relaxed), 0);
        // A zero timeout is refused when the guard is built.
        let zero = mcp_policy::mcp::GatewayOptions {
            approval_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert!(
            Guarded::with_options(Demo::new(), Engine::new(policy()), GrantSource::Http, zero)
                .is_err()
        );
    })
    .await;
}

/// The wrapped handler's own annotations count under a policy that trusts them: `echo` says
/// it is read-only, `scan` says nothing (so is judged destructive and not read-only).
#[tokio::test]
async fn the_handlers_annotations_count_only_when_trusted() {
    for (trust, echo_allowed) in [(true, true), (false, false)] {
        let policy = Policy::from_json_str(&format!(
            r#"{{"version":"1","default":"deny","trust_annotations":{trust},
              "tools":{{"*":{{"require":[{{"path":"annotations.readOnlyHint","op":"eq","value":true}}]}}}}}}"#
        ))
        .unwrap();
        let engine = Engine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
        let client = connect(
            Demo::new(),
            engine,
            GrantSource::Fixed(Grant::new("ada")),
            plain(ProtocolVersion::V_2025_11_25),
        )
        .await;
        let call = |name: &str, args: Value| {
            let mut params = CallToolRequestParams::new(name.to_owned());
            params.arguments = args.as_object().cloned();
            params
        };
        let echo = client
            .call_tool(call("echo", json!({"text": "hi"})))
            .await
            .unwrap();
        assert_eq!(
            echo.is_error != Some(true),
            echo_allowed,
            "trust {trust}: {echo:?}"
        );
        let scan = client
            .call_tool(call("scan", json!({"target": "x"})))
            .await
            .unwrap();
        assert_eq!(scan.is_error, Some(true), "trust {trust}: {scan:?}");
        client.cancel().await.unwrap();
    }
}
