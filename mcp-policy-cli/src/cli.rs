//! The command line: every subcommand and flag, parsed by clap (the commands themselves are
//! one file each; `main` dispatches).

// Fields are the flags; clap's help text is their documentation.
#![allow(missing_docs)]

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};
use mcp_policy_gateway::options::DEFAULT_MAX_MESSAGE;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-policy",
    version,
    about = "Check, evaluate, test and explain MCP tool-call policies, and enforce them in front of an MCP server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once; the proxy's many flags make its variant the largest.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Show, stage by stage, how the policy decides one call (a tool, a resource read or a
    /// prompt).
    #[command(group(
        ArgGroup::new("subject")
            .required(true)
            .args(["tool", "resource", "prompt"])
    ))]
    Explain {
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// The tool name.
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// A resource read: the URI (decided in its normal form).
        #[arg(long, value_name = "URI")]
        resource: Option<String>,
        /// A prompt (`prompts/get`): its name; --args are its arguments.
        #[arg(long, value_name = "NAME")]
        prompt: Option<String>,
        /// The call's arguments (a prompt's arguments), a JSON object; a resource has none.
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
        proxy: ProxyArgs,
        #[command(flatten)]
        http: HttpArgs,
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
    /// Write a starting policy from MCP tools/list, resources/list, resources/templates/list
    /// and prompts/list results.
    Scaffold {
        /// A file of list results (`{"tools": [...]}`, `{"resources": [...]}`,
        /// `{"resourceTemplates": [...]}`, `{"prompts": [...]}`, JSON-RPC responses, or JSON
        /// Lines mixing pages of all four).
        #[arg(value_name = "LISTS")]
        tools_list: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the SHA-256 digest of TOKEN for the keys file (reads the token from standard
    /// input when absent, which keeps it out of the process list).
    Hash {
        /// The token (prefer standard input).
        token: Option<String>,
    },
}

/// The proxy's options, from the command line (shared by the stdio proxy and the HTTP
/// gateway).
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// The policy file (watched: a change that loads is swapped in).
    #[arg(long)]
    pub policy: PathBuf,
    /// The grant id of the caller (else $MCP_POLICY_GRANT, else `local`).
    #[arg(long)]
    pub grant: Option<String>,
    /// A grant attribute, KEY=VALUE (repeatable).
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    pub attrs: Vec<String>,
    /// Where counters and approvals live: `memory` (this process only) or a Redis URL
    /// (redis://, rediss://, unix://) shared with other proxies; key prefix from
    /// $MCP_POLICY_REDIS_PREFIX.
    #[arg(long, default_value = "memory", value_name = "URL")]
    pub store: String,
    /// Append one JSON line per tool call (and per policy reload) to FILE, or `-` for stderr.
    #[arg(long, value_name = "FILE|-")]
    pub audit: Option<String>,
    /// Put the raw arguments in the audit log (else only their SHA-256).
    #[arg(long)]
    pub audit_args: bool,
    /// Write and fdatasync each audit line before its call is answered (slower; by default a
    /// writer thread writes lines just after, and on SIGTERM everything queued).
    #[arg(long, requires = "audit")]
    pub audit_sync: bool,
    /// How long a human has to answer an approval request.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub approval_timeout: String,
    /// The size limit of one message from the client, in bytes.
    #[arg(long = "max-message", default_value_t = DEFAULT_MAX_MESSAGE, value_name = "BYTES")]
    pub max_line: usize,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); with --listen
    /// and no ADDR, at /metrics on the gateway's own port, to this machine only.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub metrics: Option<String>,
    /// Allow a non-loopback --metrics address (the metrics name the policy's rules).
    #[arg(long, requires = "metrics")]
    pub metrics_public: bool,
    /// Export OpenTelemetry traces over OTLP/HTTP, configured by the OTEL_* environment
    /// (also on with OTEL_TRACES_EXPORTER=otlp).
    #[arg(long)]
    pub traces: bool,
    /// The upstream MCP server: a command and its arguments, after `--`.
    #[arg(
        last = true,
        required_unless_present = "upstream",
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// The HTTP options, from the command line (`--listen` present: the HTTP gateway).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Serve MCP over streamable HTTP at ADDR (e.g. 127.0.0.1:8080, path /mcp) instead of
    /// stdio: one upstream COMMAND per MCP session (see docs/GATEWAY.md).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// HTTP: the callers' credentials, a JSON file of SHA-256 token digests, each with a
    /// grant id and attributes (watched: a change that loads is swapped in).
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub keys: Option<PathBuf>,
    /// HTTP: allow a non-loopback --listen address (needs --keys or --trusted-header).
    #[arg(long, requires = "listen")]
    pub allow_remote: bool,
    /// HTTP: take the grant id from this header, set by an authenticating reverse proxy
    /// in front (only enable it when every request passes through that proxy).
    #[arg(long, value_name = "NAME", requires = "listen")]
    pub trusted_header: Option<String>,
    /// HTTP: a Host header value to accept besides the loopback names (repeatable).
    #[arg(long = "allowed-host", value_name = "HOST", requires = "listen")]
    pub allowed_hosts: Vec<String>,
    /// HTTP: an Origin to accept besides loopback ones, e.g. https://app.example.com
    /// (repeatable).
    #[arg(long = "allowed-origin", value_name = "ORIGIN", requires = "listen")]
    pub allowed_origins: Vec<String>,
    /// HTTP: a session with no request for this long (and no call in flight) is ended.
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub session_idle: String,
    /// HTTP: sessions (each with its own upstream) at most; more `initialize`s get 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_sessions: usize,
    /// HTTP: on SIGTERM, how long requests in flight may take before the gateway exits.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub shutdown_grace: String,
    /// HTTP: a remote MCP server over streamable HTTP (http:// or https://HOST[:PORT]/PATH)
    /// as the upstream, one upstream session per session, instead of COMMAND.
    #[arg(long, value_name = "URL", requires = "listen")]
    pub upstream: Option<String>,
    /// HTTP: a header sent to the --upstream server, `NAME: VALUE` (repeatable); nothing
    /// from the client's request is forwarded.
    #[arg(
        long = "upstream-header",
        value_name = "NAME: VALUE",
        requires = "upstream"
    )]
    pub upstream_headers: Vec<String>,
    /// HTTP: with an https:// --upstream, also trust the certificates (PEM) in this file,
    /// for a server under a private CA or with a self-signed certificate.
    #[arg(long, value_name = "FILE", requires = "upstream")]
    pub upstream_ca: Option<PathBuf>,
    /// HTTP: event loops serving the HTTP connections, each a thread of its own that accepts
    /// from the listening socket and serves what it accepted (as nginx's workers do), with a
    /// Redis connection of its own. Default: one per CPU this process may use. Lower it to
    /// leave cores to the upstream or other services (Redis round trips and stdio upstreams
    /// have threads of their own).
    #[arg(long, value_name = "N", requires = "listen",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}
