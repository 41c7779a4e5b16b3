//! Resources, prompts and completion through the guard, with rmcp's own client over
//! in-memory pipes: reads and subscriptions decided per URI in normal form (denied, hidden,
//! escaping, unreadable, limited, refunded), prompts per name and arguments (denied, hidden,
//! approved by elicitation or out of band), completion only for what could be used, and the
//! three lists filtered; an observer told each decision, end and approval step.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, deprecated)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mcp_policy::mcp::DECISION_META;
use mcp_policy::{Engine, Grant, Policy};
use mcp_policy_rmcp::{GrantSource, Guarded};
use parking_lot::Mutex;
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService};
use rmcp::{ClientHandler, ErrorData as McpError, ServerHandler, ServiceError, ServiceExt};
use serde_json::{Value, json};

const POLICY: &str = r#"{
  "version": "1",
  "default": "deny",
  "resources": {
    "file:///srv/docs/*": {},
    "file:///srv/docs/secret*": { "action": "hide" },
    "file:///srv/private.md": { "action": "deny", "reason": "private notes stay private" },
    "file:///srv/counted/*": { "rate_limit": "1/minute" },
    "file:///logs/*": {}
  },
  "prompts": {
    "greet": {},
    "deploy": { "action": "approve", "reason": "deploying needs a person" },
    "leak": { "action": "deny", "reason": "no leaking prompts" },
    "internal_*": { "action": "hide" }
  }
}"#;

/// A server with resources, a template, prompts and completion; it records what reaches it.
#[derive(Clone, Default)]
struct Docs {
    seen: Arc<Mutex<Vec<String>>>,
    /// The next read fails with a JSON-RPC error (after reaching the handler).
    fail_next_read: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
}

impl Docs {
    fn saw(&self, what: String) {
        self.seen.lock().push(what);
    }
    fn seen(&self) -> Vec<String> {
        self.seen.lock().clone()
    }
}

impl ServerHandler for Docs {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_prompts()
            .enable_completions()
            .build();
        ServerConfig::new(caps)
    }

    fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + Send + '_ {
        let resources = [
            "file:///srv/docs/a.md",
            "file:///srv/docs/secret.md",
            "file:///srv/private.md",
            "file:///srv/counted/n.md",
            "file:///etc/passwd",
        ]
        .map(|uri| Resource::new(uri, uri.rsplit('/').next().unwrap_or(uri)));
        let mut result = ListResourcesResult::with_all_items(resources.to_vec());
        result.next_cursor = Some("page-2".into());
        std::future::ready(Ok(result))
    }

    fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + Send + '_ {
        let templates = vec![
            ResourceTemplate::new("file:///logs/{day}", "logs"),
            ResourceTemplate::new("file:///etc/{name}", "etc"),
        ];
        std::future::ready(Ok(ListResourceTemplatesResult::with_all_items(templates)))
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + Send + '_ {
        self.saw(format!("read {}", request.uri));
        self.reads.fetch_add(1, Ordering::Relaxed);
        if self.fail_next_read.swap(false, Ordering::Relaxed) {
            return std::future::ready(Err(McpError::internal_error("the disk is gone", None)));
        }
        let contents = ResourceContents::text(format!("contents of {}", request.uri), request.uri);
        std::future::ready(Ok(ReadResourceResult::new(vec![contents]).into()))
    }

    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.saw(format!("subscribe {}", request.uri));
        std::future::ready(Ok(()))
    }

    fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + Send + '_ {
        let prompts = ["greet", "deploy", "leak", "internal_tools"]
            .map(|name| Prompt::new(name, Some("a prompt"), None))
            .to_vec();
        std::future::ready(Ok(ListPromptsResult::with_all_items(prompts)))
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + Send + '_ {
        let args = serde_json::to_string(&request.arguments).unwrap();
        // A `requestState` that reached the handler would show here.
        let state = request.request_state.as_deref().unwrap_or_default();
        self.saw(format!("prompt {} {args}{state}", request.name));
        let message = PromptMessage::new_text(Role::User, format!("prompt {}", request.name));
        std::future::ready(Ok(GetPromptResult::new(vec![message]).into()))
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + Send + '_ {
        self.saw(format!("complete {}", request.argument.name));
        let info = CompletionInfo::new(vec!["Ada".into()]).unwrap();
        std::future::ready(Ok(CompleteResult::new(info)))
    }
}

/// A client that declares elicitation or not, answers with `answer`, and keeps the
/// messages it was shown.
#[derive(Clone, Default)]
struct Client {
    elicitation: bool,
    answer: Option<ElicitationAction>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let caps = if self.elicitation {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        InitializeRequestParams::new(caps, Implementation::new("surface-test", "1.0.0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = &request else {
            panic!("a form elicitation: {request:?}");
        };
        self.asked.lock().push(message.clone());
        match &self.answer {
            Some(ElicitationAction::Accept) => {
                Ok(ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({"approve": true})))
            }
            Some(action) => Ok(ElicitResult::new(action.clone())),
            None => Err(McpError::internal_error("cannot ask", None)),
        }
    }
}

async fn connect(server: Docs, client: Client) -> RunningService<RoleClient, Client> {
    let policy = Policy::from_json_str(POLICY).unwrap();
    let guarded = Guarded::new(
        server,
        Engine::new(policy),
        GrantSource::Fixed(Grant::new("alice")),
    );
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Ok(running) = guarded.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    client.serve(client_io).await.unwrap()
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test took over 20 s")
}

fn mcp_error<T: std::fmt::Debug>(answer: Result<T, ServiceError>) -> McpError {
    match answer {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("a JSON-RPC error: {other:?}"),
    }
}

fn read(uri: &str) -> ReadResourceRequestParams {
    ReadResourceRequestParams::new(uri)
}

fn decision_of(e: &McpError) -> Value {
    e.data
        .as_ref()
        .and_then(|d| d.get(DECISION_META))
        .cloned()
        .unwrap_or_else(|| panic!("a decision in the error's data: {e:?}"))
}

fn text_of(result: &ReadResourceResult) -> String {
    match &result.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("text contents: {other:?}"),
    }
}

#[tokio::test]
async fn reads_are_decided_per_uri_in_normal_form() {
    bounded(async {
        let server = Docs::default();
        let client = connect(server.clone(), Client::default()).await;

        // Allowed under the pattern: the server's answer.
        let r = client.read_resource(read("file:///srv/docs/a.md")).await;
        assert_eq!(text_of(&r.unwrap()), "contents of file:///srv/docs/a.md");

        // Denied: -32003, the policy's message, the decision in `data`.
        let e = mcp_error(client.read_resource(read("file:///srv/private.md")).await);
        assert_eq!(e.code.0, -32003);
        assert_eq!(e.message, "private notes stay private");
        let d = decision_of(&e);
        assert_eq!(d["decision"], "deny");
        assert_eq!(d["message"], "private notes stay private");

        // Hidden: as a resource that does not exist, however it is spelled.
        for uri in [
            "file:///srv/docs/secret.md",
            "file:///srv/docs/./x/../secret.md",
        ] {
            let e = mcp_error(client.read_resource(read(uri)).await);
            assert_eq!(e.code.0, -32002, "{uri}");
            assert_eq!(e.message, "Resource not found");
            assert_eq!(e.data, Some(json!({"uri": "file:///srv/docs/secret.md"})));
        }

        // An escape from the pattern is judged where it lands (default: deny).
        let e = mcp_error(
            client
                .read_resource(read("file:///srv/docs/%2e%2e/secret"))
                .await,
        );
        assert_eq!(e.code.0, -32003);
        assert_eq!(decision_of(&e)["rule"], "/default");
        assert!(e.message.contains("default: deny"), "{}", e.message);

        // A URI that cannot be read into normal form: invalid params, naming the problem.
        let e = mcp_error(client.read_resource(read("file:///srv/docs/%zz")).await);
        assert_eq!(e.code.0, -32602);
        assert!(
            e.message
                .starts_with("resources/read: `params.uri` cannot be judged by the policy: "),
            "{}",
            e.message
        );

        // Subscriptions are decided as reads.
        let e = mcp_error(
            client
                .subscribe(SubscribeRequestParams::new("file:///srv/private.md"))
                .await,
        );
        assert_eq!(
            (e.code.0, &*e.message),
            (-32003, "private notes stay private")
        );
        let e = mcp_error(
            client
                .subscribe(SubscribeRequestParams::new("file:///srv/docs/secret.md"))
                .await,
        );
        assert_eq!(e.code.0, -32002);
        client
            .subscribe(SubscribeRequestParams::new("file:///srv/docs/a.md"))
            .await
            .unwrap();

        // Only the allowed read and subscription reached the server.
        assert_eq!(
            server.seen(),
            [
                "read file:///srv/docs/a.md",
                "subscribe file:///srv/docs/a.md"
            ]
        );
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_read_limit_and_a_refund() {
    bounded(async {
        let server = Docs::default();
        let client = connect(server.clone(), Client::default()).await;
        let uri = "file:///srv/counted/n.md";

        // The handler fails this read: its error reaches the client, and the use is refunded.
        server.fail_next_read.store(true, Ordering::Relaxed);
        let e = mcp_error(client.read_resource(read(uri)).await);
        assert_eq!((e.code.0, &*e.message), (-32603, "the disk is gone"));

        // So the one read a minute is still there...
        let r = client.read_resource(read(uri)).await.unwrap();
        assert_eq!(text_of(&r), format!("contents of {uri}"));

        // ...and now it is used: limited, with when to retry.
        let e = mcp_error(client.read_resource(read(uri)).await);
        assert_eq!(e.code.0, -32003);
        let d = decision_of(&e);
        assert_eq!(d["decision"], "limit");
        let retry = d["retry_after_ms"].as_u64().expect("retry_after_ms");
        assert!(retry > 0 && retry <= 60_000, "{retry}");
        let seconds = retry.div_ceil(1000).max(1);
        assert!(
            e.message.ends_with(&format!(" (retry in {seconds} s)")),
            "{}",
            e.message
        );
        assert_eq!(server.reads.load(Ordering::Relaxed), 2);
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn lists_are_filtered() {
    bounded(async {
        let client = connect(Docs::default(), Client::default()).await;

        let r = client.list_resources(None).await.unwrap();
        let uris: Vec<&str> = r.resources.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, ["file:///srv/docs/a.md", "file:///srv/counted/n.md"]);
        assert_eq!(r.next_cursor.as_deref(), Some("page-2"));

        let r = client.list_resource_templates(None).await.unwrap();
        let templates: Vec<&str> = r
            .resource_templates
            .iter()
            .map(|t| t.uri_template.as_str())
            .collect();
        assert_eq!(templates, ["file:///logs/{day}"]);

        let r = client.list_prompts(None).await.unwrap();
        let names: Vec<&str> = r.prompts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["greet", "deploy"]);
        client.cancel().await.unwrap();
    })
    .await;
}

fn prompt(name: &str, args: Value) -> GetPromptRequestParams {
    let Value::Object(map) = args else { panic!() };
    GetPromptRequestParams::new(name).with_arguments(map)
}

#[tokio::test]
async fn prompts_are_decided_per_name_and_arguments() {
    bounded(async {
        let server = Docs::default();
        let client = connect(server.clone(), Client::default()).await;

        // Allowed: the server gets the arguments as sent.
        let r = client
            .get_prompt(prompt("greet", json!({"who": "Ada"})))
            .await
            .unwrap();
        assert_eq!(r.messages.len(), 1);

        let e = mcp_error(client.get_prompt(prompt("leak", json!({}))).await);
        assert_eq!((e.code.0, &*e.message), (-32003, "no leaking prompts"));
        assert_eq!(decision_of(&e)["decision"], "deny");

        let e = mcp_error(client.get_prompt(prompt("internal_tools", json!({}))).await);
        assert_eq!(
            (e.code.0, &*e.message),
            (-32602, "Unknown prompt: internal_tools")
        );

        // Approval without elicitation: out of band, naming the approval id.
        let e = mcp_error(
            client
                .get_prompt(prompt("deploy", json!({"env": "prod"})))
                .await,
        );
        assert_eq!(e.code.0, -32003);
        assert!(
            e.message
                .starts_with("Approval required: deploying needs a person (approval id "),
            "{}",
            e.message
        );
        let d = decision_of(&e);
        assert_eq!(d["decision"], "approve");
        assert!(e.message.contains(d["approval_id"].as_str().unwrap()));

        assert_eq!(server.seen(), [r#"prompt greet {"who":"Ada"}"#]);
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn prompt_approval_by_elicitation() {
    bounded(async {
        for (answer, approved) in [
            (ElicitationAction::Accept, true),
            (ElicitationAction::Decline, false),
        ] {
            let server = Docs::default();
            let client = Client {
                elicitation: true,
                answer: Some(answer),
                asked: Arc::default(),
            };
            let asked = client.asked.clone();
            let client = connect(server.clone(), client).await;
            let answer = client
                .get_prompt(prompt("deploy", json!({"env": "prod"})))
                .await;
            let shown = asked.lock().clone();
            assert_eq!(shown.len(), 1);
            assert!(
                shown[0].starts_with("Approve this prompt?\nPrompt: deploy\nCaller: alice\n"),
                "{}",
                shown[0]
            );
            assert!(
                shown[0].contains(r#"Arguments: {"env":"prod"}"#),
                "{}",
                shown[0]
            );
            if approved {
                answer.unwrap();
                assert_eq!(server.seen(), [r#"prompt deploy {"env":"prod"}"#]);
            } else {
                let e = mcp_error(answer);
                assert_eq!(e.code.0, -32003);
                assert_eq!(
                    e.message,
                    "The call of `deploy` was not approved: the user declined. Nothing was done."
                );
                assert_eq!(decision_of(&e)["decision"], "approve");
                assert!(server.seen().is_empty());
            }
            client.cancel().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn completion_only_for_what_could_be_used() {
    bounded(async {
        let server = Docs::default();
        let client = connect(server.clone(), Client::default()).await;
        let complete = |reference: Reference| {
            CompleteRequestParams::new(reference, ArgumentInfo::new("who", "A"))
        };

        let e = mcp_error(
            client
                .complete(complete(Reference::for_prompt("internal_tools")))
                .await,
        );
        assert_eq!(
            (e.code.0, &*e.message),
            (-32602, "Unknown prompt: internal_tools")
        );
        let e = mcp_error(
            client
                .complete(complete(Reference::for_prompt("leak")))
                .await,
        );
        assert_eq!((e.code.0, &*e.message), (-32602, "Unknown prompt: leak"));
        let e = mcp_error(
            client
                .complete(complete(Reference::for_resource("file:///etc/{name}")))
                .await,
        );
        assert_eq!(e.code.0, -32002);
        assert_eq!(e.data, Some(json!({"uri": "file:///etc/{name}"})));
        let e = mcp_error(
            client
                .complete(complete(Reference::for_resource(
                    "file:///srv/docs/secret.md",
                )))
                .await,
        );
        assert_eq!(e.code.0, -32002);
        assert!(server.seen().is_empty(), "{:?}", server.seen());

        let r = client
            .complete(complete(Reference::for_prompt("greet")))
            .await
            .unwrap();
        assert_eq!(r.completion.values, ["Ada"]);
        client
            .complete(complete(Reference::for_resource("file:///logs/{day}")))
            .await
            .unwrap();
        client
            .complete(complete(Reference::for_resource("file:///srv/docs/a.md")))
            .await
            .unwrap();
        assert_eq!(server.seen().len(), 3);
        client.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn prompt_approval_by_input_required() {
    use rmcp::service::serve_directly;
    bounded(async {
        let server = Docs::default();
        let policy = Policy::from_json_str(POLICY).unwrap();
        let grants = GrantSource::Fixed(Grant::new("alice"));
        let guarded = Guarded::new(server.clone(), Engine::new(policy), grants);
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let client = Client::default();
        let info = client
            .get_info()
            .with_protocol_version(ProtocolVersion::V_2026_07_28);
        let mut server_info = InitializeResult::new(server.get_info().capabilities);
        server_info.protocol_version = ProtocolVersion::V_2026_07_28;
        let running = serve_directly::<RoleServer, _, _, _, _>(guarded, server_io, Some(info));
        tokio::spawn(async move {
            let _ = running.waiting().await;
        });
        let client =
            serve_directly::<RoleClient, _, _, _, _>(client, client_io, Some(server_info.into()));

        let args = json!({"env": "prod"});
        let first = client
            .get_prompt_once(prompt("deploy", args.clone()))
            .await
            .unwrap();
        let GetPromptResponse::InputRequired(first) = first else {
            panic!("{first:?}")
        };
        let state = first.request_state.clone().unwrap();
        assert!(state.starts_with("io.mcp-policy/state/"), "{state}");
        let asked = serde_json::to_value(&first.input_requests).unwrap();
        let message = asked["approve"]["params"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Approve this prompt?\nPrompt: deploy\n"),
            "{message}"
        );
        assert!(server.seen().is_empty());

        // A retry that carries a refusal is refused, and spends the state.
        let mut retry = prompt("deploy", args.clone());
        retry.request_state = Some(state.clone());
        let no = json!({"action": "decline"});
        retry.input_responses = Some([("approve".to_owned(), no)].into_iter().collect());
        let e = mcp_error(client.get_prompt_once(retry).await);
        assert_eq!(e.code.0, -32003);
        assert_eq!(
            e.message,
            "The call of `deploy` was not approved: the user declined. Nothing was done."
        );

        // Asked again; this time approved: forwarded once, without our state.
        let again = client
            .get_prompt_once(prompt("deploy", args.clone()))
            .await
            .unwrap();
        let GetPromptResponse::InputRequired(again) = again else {
            panic!("{again:?}")
        };
        let mut retry = prompt("deploy", args.clone());
        retry.request_state = again.request_state.clone();
        let yes = json!({"action": "accept", "content": {"approve": true}});
        retry.input_responses = Some([("approve".to_owned(), yes)].into_iter().collect());
        let done = client.get_prompt_once(retry).await.unwrap();
        assert!(matches!(done, GetPromptResponse::Complete(_)), "{done:?}");
        assert_eq!(server.seen(), [r#"prompt deploy {"env":"prod"}"#]);
        client.cancel().await.unwrap();
    })
    .await;
}

/// Every event an observer is told, as text.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl mcp_policy::observe::Observer for Recorder {
    fn decided(&self, d: &mcp_policy::observe::Decided<'_>) {
        let verdict = d.decision.verdict.as_str();
        self.0.lock().push(format!(
            "decided {} {verdict} {} store_failed={}",
            d.kind.as_str(),
            &*d.decision.rule,
            d.decision.store_failed
        ));
    }
    fn finished(&self, f: &mcp_policy::observe::Finished<'_>) {
        self.0.lock().push(format!(
            "finished {} {} refunded={}",
            f.kind.as_str(),
            f.upstream,
            f.refunded
        ));
    }
    fn approval(&self, a: &mcp_policy::observe::ApprovalStep) {
        self.0.lock().push(format!(
            "approval {} {} held={}",
            a.kind.as_str(),
            a.step.as_str(),
            a.held
        ));
    }
}

#[tokio::test]
async fn an_observer_is_told_each_decision_each_end_and_each_approval_step() {
    bounded(async {
        let recorder = Arc::new(Recorder::default());
        let options = mcp_policy::mcp::GatewayOptions {
            observers: mcp_policy::observe::Observers::new(recorder.clone()),
            ..Default::default()
        };
        let server = Docs::default();
        let guarded = Guarded::with_options(
            server.clone(),
            Engine::new(Policy::from_json_str(POLICY).unwrap()),
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
        let client = Client {
            elicitation: true,
            answer: Some(ElicitationAction::Accept),
            asked: Arc::default(),
        };
        let client = client.serve(client_io).await.unwrap();
        let uri = "file:///srv/counted/n.md";
        server.fail_next_read.store(true, Ordering::Relaxed);
        let _ = client.read_resource(read(uri)).await;
        client.read_resource(read(uri)).await.unwrap();
        let _ = client.read_resource(read(uri)).await;
        let _ = client.get_prompt(prompt("leak", json!({}))).await;
        client
            .get_prompt(prompt("deploy", json!({"env": "prod"})))
            .await
            .unwrap();
        client.cancel().await.unwrap();
        let seen = recorder.0.lock().clone();
        assert_eq!(
            seen,
            [
                "decided resource allow /resources/file:~1~1~1srv~1counted~1* store_failed=false",
                "finished resource error refunded=true",
                "decided resource allow /resources/file:~1~1~1srv~1counted~1* store_failed=false",
                "finished resource ok refunded=false",
                "decided resource limit /resources/file:~1~1~1srv~1counted~1*/rate_limit store_failed=false",
                "decided prompt deny /prompts/leak/action store_failed=false",
                "decided prompt approve /prompts/deploy/action store_failed=false",
                "approval prompt asked held=true",
                "approval prompt granted held=true",
                "decided prompt allow /prompts/deploy store_failed=false",
                "finished prompt ok refunded=false",
            ]
        );
    })
    .await;
}
