//! Delegation: every request and notification kind rmcp's `ClientRequest` and
//! `ClientNotification` have goes through the guard to the inner handler exactly as it goes to
//! the handler served alone, and the guard forwards every method of `ServerHandler`.
//!
//! Two checks catch an rmcp upgrade that adds something:
//! - the request and notification kinds are read from rmcp's own JSON Schema of its message
//!   types, and each must be driven here (a new kind fails the test until it is);
//! - the methods of `ServerHandler` are read from the rmcp sources being built against (found
//!   with `cargo metadata`) and compared with the guard's forwarding impl.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unused_variables,
    deprecated
)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mcp_policy::{Engine, Grant, Policy};
use mcp_policy_rmcp::{GrantSource, Guarded};
use parking_lot::Mutex;
use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A handler with rmcp's defaults and every capability declared.
#[derive(Clone, Default)]
struct Plain;

impl ServerHandler for Plain {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_completions()
            .enable_logging()
            .enable_tasks()
            .enable_skills_with_directory_read()
            .build();
        ServerConfig::new(caps)
    }
}

/// Records every method of `ServerHandler` that runs, and answers each request with an
/// error naming it.
#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    plain: Plain,
}

impl Recorder {
    fn log(&self, name: &str) {
        self.log.lock().push(name.to_owned());
    }
}

impl ServerHandler for Recorder {
    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.log("ping");
        std::future::ready(Err(McpError::new(ErrorCode(-32000), "recorded ping", None)))
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, McpError>> + Send + '_ {
        self.log("initialize");
        self.plain.initialize(request, context)
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.log("negotiate_initialize");
        self.plain.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.log("supported_protocol_versions");
        self.plain.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, McpError>> + Send + '_ {
        self.log("discover");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded discover",
            None,
        )))
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + Send + '_ {
        self.log("complete");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded complete",
            None,
        )))
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.log("set_level");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded set_level",
            None,
        )))
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + Send + '_ {
        self.log("get_prompt");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded get_prompt",
            None,
        )))
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + Send + '_ {
        self.log("list_prompts");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded list_prompts",
            None,
        )))
    }

    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + Send + '_ {
        self.log("list_resources");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded list_resources",
            None,
        )))
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + Send + '_ {
        self.log("list_resource_templates");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded list_resource_templates",
            None,
        )))
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + Send + '_ {
        self.log("read_resource");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded read_resource",
            None,
        )))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.log("accepted_subscription_filter");
        // Accept every filter, so that `listen` is reached.
        Some(requested.clone())
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.log("listen");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded listen",
            None,
        )))
    }

    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.log("subscribe");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded subscribe",
            None,
        )))
    }

    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.log("unsubscribe");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded unsubscribe",
            None,
        )))
    }

    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, McpError>> + Send + '_ {
        self.log("call_tool");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded call_tool",
            None,
        )))
    }

    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, McpError>> + Send + '_ {
        self.log("list_tools");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded list_tools",
            None,
        )))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.log("get_tool");
        self.plain.get_tool(name)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + Send + '_ {
        self.log("on_custom_request");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded on_custom_request",
            None,
        )))
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.log("on_cancelled");
        std::future::ready(())
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.log("on_progress");
        std::future::ready(())
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.log("on_initialized");
        std::future::ready(())
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.log("on_roots_list_changed");
        std::future::ready(())
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.log("on_custom_notification");
        std::future::ready(())
    }

    fn get_info(&self) -> ServerConfig {
        self.plain.get_info()
    }

    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, McpError>> + Send + '_ {
        self.log("get_task");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded get_task",
            None,
        )))
    }

    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.log("update_task");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded update_task",
            None,
        )))
    }

    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.log("cancel_task");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded cancel_task",
            None,
        )))
    }

    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, McpError>> + Send + '_ {
        self.log("list_skills");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded list_skills",
            None,
        )))
    }

    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, McpError>> + Send + '_ {
        self.log("get_skill");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded get_skill",
            None,
        )))
    }

    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, McpError>> + Send + '_ {
        self.log("read_resource_directory");
        std::future::ready(Err(McpError::new(
            ErrorCode(-32000),
            "recorded read_resource_directory",
            None,
        )))
    }
}

/// Minimal params for each method (a kind rmcp adds must be added here).
fn params(method: &str) -> Option<Value> {
    let file = json!({"uri": "file:///x"});
    Some(match method {
        "ping"
        | "prompts/list"
        | "resources/list"
        | "resources/templates/list"
        | "tools/list"
        | "skills/list"
        | "server/discover" => json!({}),
        "initialize" => return None,
        "completion/complete" => json!({"ref": {"type": "ref/prompt", "name": "p"},
                                        "argument": {"name": "a", "value": "v"}}),
        "logging/setLevel" => json!({"level": "info"}),
        "prompts/get" => json!({"name": "p"}),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => file,
        "resources/directory/read" => json!({"uri": "file:///d/"}),
        "subscriptions/listen" => json!({"notifications": {}}),
        "tools/call" => json!({"name": "t", "arguments": {"a": 1}}),
        "tasks/get" | "tasks/cancel" => json!({"taskId": "t1"}),
        "tasks/update" => json!({"taskId": "t1", "inputResponses": {}}),
        "skills/get" => json!({"uri": "skill://s/SKILL.md"}),
        "notifications/cancelled" => json!({"requestId": 99}),
        "notifications/progress" => json!({"progressToken": "p", "progress": 1}),
        "notifications/initialized" | "notifications/roots/list_changed" | "x-test/custom" => {
            json!({})
        }
        _ => panic!("rmcp has a message kind this test does not drive: {method}; add it"),
    })
}

/// The `method` constants of every variant of `T`, from rmcp's JSON Schema of it.
fn methods_of(schema: Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties")
                    && let Some(method) = props.get("method")
                {
                    if let Some(c) = method.get("const").and_then(Value::as_str) {
                        out.insert(c.to_owned());
                    }
                    if let Some(r) = method.get("$ref").and_then(Value::as_str) {
                        out.insert(format!("$ref:{r}"));
                    }
                }
                for v in map.values() {
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut raw = BTreeSet::new();
    walk(&schema, &mut raw);
    // Method names behind `$ref`s: definitions with a `const`.
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut out = BTreeSet::new();
    for m in raw {
        match m.strip_prefix("$ref:") {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                if let Some(c) = defs
                    .get(name)
                    .and_then(|d| d.get("const"))
                    .and_then(Value::as_str)
                {
                    out.insert(c.to_owned());
                }
            }
            None => {
                out.insert(m);
            }
        }
    }
    out
}

/// Drives every kind through `service` over raw JSON-RPC lines: the answers by method, and
/// what the recorder saw.
async fn drive<S: ServerHandler>(
    service: S,
    requests: &BTreeSet<String>,
    notifications: &BTreeSet<String>,
    stateless: bool,
) -> BTreeMap<String, Value> {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if stateless {
            // 2026-07-28: no handshake; every request carries its envelope in `_meta`.
            let running =
                rmcp::service::serve_directly::<RoleServer, _, _, _, _>(service, server_io, None);
            let _ = running.waiting().await;
        } else if let Ok(running) = service.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "delegation-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}},
    });
    let (read, mut write) = tokio::io::split(client_io);
    let mut lines = BufReader::new(read).lines();
    let mut answers = BTreeMap::new();
    let mut id = 0u64;
    let send = async |write: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>, v: Value| {
        let mut line = serde_json::to_vec(&v).unwrap();
        line.push(b'\n');
        write.write_all(&line).await.unwrap();
    };
    if !stateless {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"elicitation": {}, "roots": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}},
            "clientInfo": {"name": "delegation-test", "version": "1"}}});
        send(&mut write, init).await;
        let answer: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        answers.insert("initialize".to_owned(), answer);
    }
    for method in notifications {
        let mut n = json!({"jsonrpc": "2.0", "method": method});
        if let Some(p) = params(method) {
            n["params"] = p;
        }
        send(&mut write, n).await;
    }
    let custom = BTreeSet::from(["x-test/custom".to_owned()]);
    send(
        &mut write,
        json!({"jsonrpc": "2.0", "method": "notifications/x-test/custom", "params": {}}),
    )
    .await;
    for method in requests.iter().chain(&custom) {
        if method == "initialize" {
            continue;
        }
        id += 1;
        let mut r = json!({"jsonrpc": "2.0", "id": id, "method": method});
        r["params"] = params(method).unwrap_or(json!({}));
        if stateless {
            r["params"]["_meta"] = meta.clone();
        }
        send(&mut write, r).await;
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("id") == Some(&json!(id)) {
                answers.insert(method.clone(), v);
                break;
            }
        }
    }
    answers
}

#[tokio::test]
async fn every_kind_reaches_the_inner_handler() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let requests =
            methods_of(serde_json::to_value(rmcp::schemars::schema_for!(ClientRequest)).unwrap());
        let notifications = methods_of(
            serde_json::to_value(rmcp::schemars::schema_for!(ClientNotification)).unwrap(),
        );
        assert!(requests.len() >= 20, "{requests:?}");
        assert!(notifications.len() >= 4, "{notifications:?}");
        for m in requests.iter().chain(&notifications) {
            let _ = params(m);
        }

        let mut seen = BTreeSet::new();
        for stateless in [false, true] {
            let alone = Recorder::default();
            let alone_log = alone.log.clone();
            let plain_answers = drive(alone, &requests, &notifications, stateless).await;

            let inner = Recorder::default();
            let guarded_log = inner.log.clone();
            let policy = Policy::from_json_str(r#"{"version":"1","default":"allow"}"#).unwrap();
            let guarded = Guarded::new(
                inner,
                Engine::new(policy),
                GrantSource::Fixed(Grant::new("a")),
            );
            let guarded_answers = drive(guarded, &requests, &notifications, stateless).await;

            // The same answers, and the same handler methods ran, in the same order.
            assert_eq!(plain_answers, guarded_answers, "stateless: {stateless}");
            let (alone_log, guarded_log) = (alone_log.lock().clone(), guarded_log.lock().clone());
            assert_eq!(alone_log, guarded_log, "stateless: {stateless}");
            eprintln!("stateless: {stateless}: recorded {guarded_log:?}");
            seen.extend(guarded_log);
        }
        // And the inner handler did run for the kinds rmcp dispatches to it.
        let not_seen: Vec<&str> = [
            "initialize",
            "on_initialized",
            "on_cancelled",
            "on_progress",
            "on_roots_list_changed",
            "on_custom_notification",
            "ping",
            "complete",
            "set_level",
            "get_prompt",
            "list_prompts",
            "list_resources",
            "list_resource_templates",
            "read_resource",
            "subscribe",
            "unsubscribe",
            "call_tool",
            "list_tools",
            "on_custom_request",
            "discover",
            "listen",
            "get_task",
            "update_task",
            "cancel_task",
            "list_skills",
            "get_skill",
            "read_resource_directory",
        ]
        .into_iter()
        .filter(|m| !seen.contains(*m))
        .collect();
        assert!(
            not_seen.is_empty(),
            "never reached the inner handler: {not_seen:?}"
        );
    })
    .await
    .expect("bounded");
}

/// Every method of rmcp's `ServerHandler` (read from the rmcp sources being built against)
/// is implemented by the guard's forwarding impl.
#[test]
fn the_guard_implements_every_server_handler_method() {
    let (version, source_dir) = rmcp_sources();
    let source = std::fs::read_to_string(source_dir.join("src/handler/server.rs")).unwrap();
    let start = source
        .find("macro_rules! server_handler_methods")
        .expect("the trait's macro");
    let end = start + source[start..].find("\n}\n").expect("its end");
    let theirs = fn_names(&source[start..end]);
    let ours_src = include_str!("../src/forward.rs");
    let ours = fn_names(ours_src);
    assert!(theirs.len() >= 30, "{theirs:?}");
    let missing: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "ServerHandler methods the guard does not forward: {missing:?} (rmcp {version}, {})",
        source_dir.display()
    );
}

/// The version and source directory of the rmcp this crate is built against: from the
/// workspace's `Cargo.lock` and Cargo's registry (works offline), else from `cargo metadata`.
fn rmcp_sources() -> (String, std::path::PathBuf) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"rmcp\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned());
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    if let (Some(version), Some(home)) = (&version, home)
        && let Ok(registries) = std::fs::read_dir(home.join("registry/src"))
    {
        for registry in registries.flatten() {
            let dir = registry.path().join(format!("rmcp-{version}"));
            if dir.join("src/handler/server.rs").is_file() {
                return (version.clone(), dir);
            }
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rmcp = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "rmcp")
        .expect("rmcp in the metadata");
    let manifest = std::path::PathBuf::from(rmcp["manifest_path"].as_str().unwrap());
    (
        rmcp["version"].as_str().unwrap().to_owned(),
        manifest.parent().unwrap().to_path_buf(),
    )
}

fn fn_names(text: &str) -> BTreeSet<String> {
    text.split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}
