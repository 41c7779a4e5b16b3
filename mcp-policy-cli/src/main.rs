//! `mcp-policy`: check, evaluate, test, explain and scaffold MCP tool-call policies.
//!
//! See `docs/CLI.md`. Exit codes: `0` success; `1` the command ran and found failures;
//! `2` unusable policy or usage.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod audit;
mod check;
mod eval;
mod explain;
mod http;
mod json;
mod keys;
mod proxy;
mod rfc3339;
mod scaffold;
mod schema;
mod store;
mod test_cmd;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: success.
pub const OK: u8 = 0;
/// Exit code: the command ran and found failures.
pub const FAILURES: u8 = 1;
/// Exit code: unusable policy or usage.
pub const UNUSABLE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-policy",
    version,
    about = "Check, evaluate, test and explain MCP tool-call policies, and enforce them in front of an MCP server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once; the proxy's many flags make its variant the largest.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Load policies and print every load error and warning as FILE:LINE:COL: ...
    Check {
        /// Policy files to check.
        #[arg(required = true)]
        policies: Vec<PathBuf>,
        /// Also report the counters that a reload from this older policy would reset.
        #[arg(long, value_name = "OLD")]
        against: Option<PathBuf>,
    },
    /// Replay JSON Lines of calls through one engine; one JSON answer line per input line.
    Eval {
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// JSON Lines input (standard input when absent or `-`).
        input: Option<PathBuf>,
        /// Where counters and approvals live: `memory` or a Redis URL shared with other
        /// processes (judged by the replay's clock; key prefix from $MCP_POLICY_REDIS_PREFIX).
        #[arg(long, default_value = "memory", value_name = "URL")]
        store: String,
    },
    /// Run table-driven policy tests.
    Test {
        /// Test files (see docs/CLI.md).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show, stage by stage, how the policy decides one call.
    Explain {
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// The tool name.
        #[arg(long)]
        tool: String,
        /// The call's arguments, a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// The grant id.
        #[arg(long, default_value = "anonymous")]
        grant: String,
        /// The grant's session.
        #[arg(long)]
        session: Option<String>,
    },
    /// Print the JSON Schema of the policy document.
    Schema,
    /// Put the policy in front of an MCP server: speaks MCP on stdin/stdout, runs COMMAND as
    /// the upstream server, and passes every tool call through the policy.
    Proxy {
        #[command(flatten)]
        proxy: proxy::ProxyArgs,
        #[command(flatten)]
        http: http::HttpArgs,
    },
    /// Manage the gateway's keys file.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Record that a human approved APPROVAL_ID, in a shared store (exit 1: unknown or expired).
    Approve {
        /// The approval id from the `approve` answer.
        approval_id: String,
        /// The shared store: a Redis URL (key prefix from $MCP_POLICY_REDIS_PREFIX).
        #[arg(long, value_name = "URL")]
        store: String,
    },
    /// Write a starting policy from an MCP tools/list result.
    Scaffold {
        /// A tools/list result file (`{"tools": [...]}`, a JSON-RPC response, or JSON Lines of them).
        tools_list: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print the SHA-256 digest of TOKEN for the keys file (reads the token from standard
    /// input when absent, which keeps it out of the process list).
    Hash {
        /// The token (prefer standard input).
        token: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { UNUSABLE } else { OK };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Check { policies, against } => check::run(&policies, against.as_deref()),
        Command::Eval {
            policy,
            input,
            store,
        } => eval::run(&policy, input.as_deref(), &store),
        Command::Test { files } => test_cmd::run(&files),
        Command::Explain {
            policy,
            tool,
            args,
            grant,
            session,
        } => explain::run(&policy, &tool, &args, &grant, session.as_deref()),
        Command::Schema => schema::run(),
        Command::Approve { approval_id, store } => store::approve(&approval_id, &store),
        Command::Proxy { proxy, http } => match http.listen {
            None => proxy::run(proxy),
            Some(_) => http::run(proxy, http),
        },
        Command::Keys {
            command: KeysCommand::Hash { token },
        } => keys::hash_command(token.as_deref()),
        Command::Scaffold { tools_list } => scaffold::run(&tools_list),
    };
    ExitCode::from(code)
}
