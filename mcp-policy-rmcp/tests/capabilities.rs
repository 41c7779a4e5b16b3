//! Capabilities through the guard, with rmcp's own client over in-memory duplex pipes: the
//! guard advertises exactly the inner handler's capabilities, forwards the requests of the
//! capabilities it advertises, and answers the others `-32601` Method not found without
//! reaching it.
//!
//! rmcp 3.11 rejects an unadvertised capability's requests only in its default methods; the
//! guard implements every method, so the inner handler here implements all of them (and counts
//! its calls) whatever it advertises.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unused_variables,
    deprecated
)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mcp_policy::{Engine, Grant, Policy};
use mcp_policy_rmcp::{GrantSource, Guarded};
use parking_lot::Mutex;
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceError, ServiceExt};

/// Implements every capability's requests, counts each call, advertises only `caps`.
#[derive(Clone)]
struct Counted {
    caps: ServerCapabilities,
    calls: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

impl Counted {
    fn new(caps: ServerCapabilities) -> Self {
        Counted {
            caps,
            calls: Arc::default(),
        }
    }

    fn count(&self, method: &'static str) {
        *self.calls.lock().entry(method).or_default() += 1;
    }

    fn calls(&self, method: &str) -> usize {
        self.calls.lock().get(method).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.calls.lock().values().sum()
    }
}

impl ServerHandler for Counted {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(self.caps.clone())
    }

    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, McpError>> + Send + '_ {
        self.count("tools/list");
        let tool = Tool::new("echo", "echoes", JsonObject::new());
        std::future::ready(Ok(ListToolsResult::with_all_items(vec![tool])))
    }

    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + Send + '_ {
        self.count("resources/list");
        let resource = Resource::new("file:///notes.txt", "notes");
        std::future::ready(Ok(ListResourcesResult::with_all_items(vec![resource])))
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + Send + '_ {
        self.count("resources/templates/list");
        std::future::ready(Ok(ListResourceTemplatesResult::with_all_items(vec![])))
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + Send + '_ {
        self.count("resources/read");
        let contents = ResourceContents::text(format!("read {}", request.uri), request.uri);
        std::future::ready(Ok(ReadResourceResult::new(vec![contents]).into()))
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + Send + '_ {
        self.count("prompts/list");
        let prompt = Prompt::new("greet", Some("a greeting"), None);
        std::future::ready(Ok(ListPromptsResult::with_all_items(vec![prompt])))
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + Send + '_ {
        self.count("prompts/get");
        let message = PromptMessage::new_text(Role::User, format!("prompt {}", request.name));
        std::future::ready(Ok(GetPromptResult::new(vec![message]).into()))
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + Send + '_ {
        self.count("completion/complete");
        std::future::ready(Ok(CompleteResult::default()))
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.count("logging/setLevel");
        std::future::ready(Ok(()))
    }
}

/// `handler` served (guarded or alone) and rmcp's client connected to it.
async fn connect<S: ServerHandler>(server: S) -> RunningService<RoleClient, ()> {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.unwrap()
}

fn guard(inner: Counted) -> Guarded<Counted> {
    let policy = Policy::from_json_str(r#"{"version":"1","default":"allow"}"#).unwrap();
    Guarded::new(
        inner,
        Engine::new(policy),
        GrantSource::Fixed(Grant::new("a")),
    )
}

fn assert_method_not_found<T: std::fmt::Debug>(method: &str, answer: Result<T, ServiceError>) {
    match answer {
        Err(ServiceError::McpError(error)) => {
            assert_eq!(
                error.code,
                ErrorCode::METHOD_NOT_FOUND,
                "{method}: {error:?}"
            );
        }
        other => panic!("{method}: expected Method not found, got {other:?}"),
    }
}

/// The requests of the capabilities not advertised (completions and logging never are here),
/// through `client`: each must be rejected.
async fn unadvertised_requests(
    client: &RunningService<RoleClient, ()>,
    resources: bool,
    prompts: bool,
) {
    if !resources {
        assert_method_not_found("resources/list", client.list_resources(None).await);
        assert_method_not_found(
            "resources/templates/list",
            client.list_resource_templates(None).await,
        );
        let read = ReadResourceRequestParams::new("file:///notes.txt");
        assert_method_not_found("resources/read", client.read_resource(read).await);
    }
    if !prompts {
        assert_method_not_found("prompts/list", client.list_prompts(None).await);
        let get = GetPromptRequestParams::new("greet");
        assert_method_not_found("prompts/get", client.get_prompt(get).await);
    }
    let complete =
        CompleteRequestParams::new(Reference::for_prompt("greet"), ArgumentInfo::new("a", "b"));
    assert_method_not_found("completion/complete", client.complete(complete).await);
    let level = SetLevelRequestParams::new(LoggingLevel::Info);
    assert_method_not_found("logging/setLevel", client.set_level(level).await);
}

#[tokio::test]
async fn advertised_capabilities_reach_the_inner_handler() {
    tokio::time::timeout(Duration::from_secs(20), async {
        // Tools, resources and prompts advertised: their requests reach the inner handler.
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        let inner = Counted::new(caps.clone());
        let client = connect(guard(inner.clone())).await;
        let advertised = &client.peer_info().expect("the server's info").capabilities;
        assert_eq!(
            advertised, &caps,
            "the guard advertises the inner handler's"
        );

        let tools = client.list_tools(None).await.unwrap();
        assert_eq!(tools.tools.len(), 1);
        let resources = client.list_resources(None).await.unwrap();
        assert_eq!(resources.resources[0].uri, "file:///notes.txt");
        let read = ReadResourceRequestParams::new("file:///notes.txt");
        let read = client.read_resource(read).await.unwrap();
        let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
            panic!("{read:?}");
        };
        assert_eq!(text, "read file:///notes.txt");
        let prompts = client.list_prompts(None).await.unwrap();
        assert_eq!(prompts.prompts[0].name, "greet");
        let prompt = client
            .get_prompt(GetPromptRequestParams::new("greet"))
            .await
            .unwrap();
        assert_eq!(prompt.messages.len(), 1);
        for method in [
            "tools/list",
            "resources/list",
            "resources/read",
            "prompts/list",
            "prompts/get",
        ] {
            assert_eq!(inner.calls(method), 1, "{method}");
        }
        // Completions and logging are not advertised here: rejected, never forwarded.
        unadvertised_requests(&client, true, true).await;
        assert_eq!(inner.total(), 5, "{:?}", inner.calls.lock());
        client.cancel().await.unwrap();
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn unadvertised_capabilities_never_reach_the_inner_handler() {
    tokio::time::timeout(Duration::from_secs(20), async {
        // Only tools advertised: everything else is rejected before the inner handler.
        let caps = ServerCapabilities::builder().enable_tools().build();
        let inner = Counted::new(caps.clone());
        let client = connect(guard(inner.clone())).await;
        let advertised = &client.peer_info().expect("the server's info").capabilities;
        assert_eq!(
            advertised, &caps,
            "the guard advertises the inner handler's"
        );
        unadvertised_requests(&client, false, false).await;
        assert_eq!(inner.total(), 0, "{:?}", inner.calls.lock());
        // The connection still serves what is advertised.
        client.list_tools(None).await.unwrap();
        assert_eq!(inner.calls("tools/list"), 1);
        assert_eq!(inner.total(), 1, "{:?}", inner.calls.lock());
        client.cancel().await.unwrap();

        // Nothing advertised: not even `tools/list` reaches the inner handler.
        let inner = Counted::new(ServerCapabilities::default());
        let client = connect(guard(inner.clone())).await;
        assert_method_not_found("tools/list", client.list_tools(None).await);
        assert_eq!(inner.total(), 0, "{:?}", inner.calls.lock());
        client.cancel().await.unwrap();

        // Why the guard checks: served alone, rmcp 3.11 dispatches an unadvertised
        // capability's request to a handler that implements the method.
        let caps = ServerCapabilities::builder().enable_tools().build();
        let alone = Counted::new(caps);
        let client = connect(alone.clone()).await;
        client.list_resources(None).await.unwrap();
        assert_eq!(alone.calls("resources/list"), 1);
        client.cancel().await.unwrap();
    })
    .await
    .expect("bounded");
}
