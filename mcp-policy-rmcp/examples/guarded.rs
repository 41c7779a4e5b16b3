//! The demo server (a few `#[tool_router]` tools) with a policy on it, over stdio or over
//! streamable HTTP behind axum with a bearer-token middleware that maps tokens to grants.
//!
//! ```text
//! cargo run -p mcp-policy-rmcp --example guarded -- stdio [--policy FILE] [--grant ID]
//! cargo run -p mcp-policy-rmcp --example guarded -- http [--policy FILE] [--port N]
//!     [--token TOKEN=GRANT]...
//! ```
//!
//! Over HTTP it listens on 127.0.0.1 only and prints `listening on http://127.0.0.1:PORT/mcp`
//! on stdout once it accepts connections (`--port 0` picks a free port). A request without a
//! known `Authorization: Bearer TOKEN` gets `401`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod demo;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use demo::Demo;
use mcp_policy::mcp::GatewayOptions;
use mcp_policy::{Engine, Grant, Policy};
use mcp_policy_rmcp::{GrantSource, Guarded};
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

type Tokens = Arc<HashMap<String, Arc<Grant>>>;

/// The host's authentication: a known bearer token becomes its grant, in the request's
/// extensions; anything else is refused before MCP sees it.
async fn bearer(State(tokens): State<Tokens>, mut request: Request, next: Next) -> Response {
    let grant = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| tokens.get(token))
        .cloned();
    match grant {
        Some(grant) => {
            request.extensions_mut().insert(grant);
            next.run(request).await
        }
        None => {
            let mut response =
                Response::new(axum::body::Body::from("unknown or missing bearer token"));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: guarded stdio [--policy FILE] [--grant ID]\n       guarded http [--policy FILE] [--port N] [--token TOKEN=GRANT]..."
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| usage());
    let (mut policy_text, mut grant, mut port) =
        (demo::POLICY.to_owned(), "local".to_owned(), 0u16);
    let mut tokens: HashMap<String, Arc<Grant>> = HashMap::new();
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--policy" => policy_text = std::fs::read_to_string(&value)?,
            "--grant" => grant = value,
            "--port" => port = value.parse()?,
            "--token" => {
                let (token, id) = value.split_once('=').unwrap_or_else(|| usage());
                tokens.insert(token.to_owned(), Arc::new(Grant::new(id)));
            }
            _ => usage(),
        }
    }
    let policy = Policy::from_json_str(&policy_text)?;
    let options = GatewayOptions {
        approval_timeout: std::time::Duration::from_secs(60),
        ..GatewayOptions::default()
    };
    let shared = Guarded::<Demo, Engine>::share(Engine::new(policy), options)?;

    match mode.as_str() {
        "stdio" => {
            let guarded =
                Guarded::with_shared(Demo::new(), shared, GrantSource::Fixed(Grant::new(grant)));
            let running = guarded
                .serve((tokio::io::stdin(), tokio::io::stdout()))
                .await?;
            running.waiting().await?;
        }
        "http" => {
            let service = StreamableHttpService::new(
                move || {
                    Ok(Guarded::with_shared(
                        Demo::new(),
                        Arc::clone(&shared),
                        GrantSource::Http,
                    ))
                },
                Arc::new(LocalSessionManager::default()),
                StreamableHttpServerConfig::default(),
            );
            let tokens: Tokens = Arc::new(tokens);
            let app = axum::Router::new()
                .nest_service("/mcp", service)
                .layer(axum::middleware::from_fn_with_state(tokens, bearer));
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("listening on http://{}/mcp", listener.local_addr()?);
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
        }
        _ => usage(),
    }
    Ok(())
}
