//! The demo server of the examples and tests: a few `#[tool_router]` tools, no policy of its
//! own (the policy is `policy.json`, put on it by `mcp_policy_rmcp::Guarded`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};

/// The policy the examples put on the demo server.
pub const POLICY: &str = include_str!("policy.json");

/// The demo server.
#[derive(Clone)]
pub struct Demo {
    /// How many tool calls ran (the policy's refusals never reach it).
    pub ran: Arc<AtomicU64>,
    tool_router: ToolRouter<Demo>,
}

/// Text to echo.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text.
    pub text: String,
}

/// A transfer.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct TransferArgs {
    /// The amount.
    pub amount: u64,
}

/// A scan target.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct ScanArgs {
    /// What to scan.
    #[serde(default)]
    pub target: String,
}

#[tool_router]
impl Demo {
    /// A new demo server.
    pub fn new() -> Demo {
        Demo {
            ran: Arc::new(AtomicU64::new(0)),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Echo the text back", annotations(read_only_hint = true))]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        self.ran.fetch_add(1, Ordering::Relaxed);
        text
    }

    #[tool(description = "Start a security scan")]
    fn scan(&self, Parameters(ScanArgs { target }): Parameters<ScanArgs>) -> String {
        self.ran.fetch_add(1, Ordering::Relaxed);
        format!("scanning {target}")
    }

    #[tool(description = "Stop a running scan")]
    fn stop_scan(&self) -> String {
        self.ran.fetch_add(1, Ordering::Relaxed);
        "stopped".into()
    }

    #[tool(description = "Move money")]
    fn transfer(&self, Parameters(TransferArgs { amount }): Parameters<TransferArgs>) -> String {
        self.ran.fetch_add(1, Ordering::Relaxed);
        format!("transferred {amount}")
    }

    #[tool(
        description = "Drop the database",
        annotations(destructive_hint = true)
    )]
    fn drop_db(&self) -> String {
        self.ran.fetch_add(1, Ordering::Relaxed);
        "dropped".into()
    }

    #[tool(description = "Always fails with a JSON-RPC error")]
    fn fail(&self) -> Result<String, ErrorData> {
        self.ran.fetch_add(1, Ordering::Relaxed);
        Err(ErrorData::internal_error("the backend is down", None))
    }
}

impl Default for Demo {
    fn default() -> Self {
        Demo::new()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Demo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
