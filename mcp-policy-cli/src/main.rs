//! `mcp-policy`: check, evaluate, test, explain and scaffold MCP tool-call policies, and
//! enforce them in front of an MCP server.
//!
//! See `docs/CLI.md`. The flags are in [`cli`], each command in a file of its own, the exit
//! codes in [`exit`]; the hosts `proxy` runs are the `mcp-policy-gateway` library.

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

mod approve;
mod check;
mod cli;
mod eval;
mod exit;
mod explain;
mod json;
mod keys;
mod proxy;
mod rfc3339;
mod scaffold;
mod schema;
mod test_cmd;

use std::process::ExitCode;

use clap::Parser;
use mcp_policy::subject::Kind;

use cli::{Cli, Command, KeysCommand};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                exit::UNUSABLE
            } else {
                exit::OK
            };
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
            resource,
            prompt,
            args,
            grant,
            session,
        } => {
            // clap's `subject` group makes exactly one of the three present.
            let subject = tool
                .map(|t| (Kind::Tool, t))
                .or_else(|| resource.map(|r| (Kind::Resource, r)))
                .or_else(|| prompt.map(|p| (Kind::Prompt, p)));
            match subject {
                Some((kind, name)) => {
                    explain::run(&policy, kind, &name, &args, &grant, session.as_deref())
                }
                None => {
                    eprintln!("explain: give one of --tool, --resource or --prompt");
                    exit::UNUSABLE
                }
            }
        }
        Command::Schema => schema::run(),
        Command::Approve { approval_id, store } => approve::run(&approval_id, &store),
        Command::Proxy { proxy, http } => proxy::run(proxy, http),
        Command::Keys {
            command: KeysCommand::Hash { token },
        } => keys::hash_command(token.as_deref()),
        Command::Scaffold { tools_list } => scaffold::run(&tools_list),
    };
    ExitCode::from(code)
}
