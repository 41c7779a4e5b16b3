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
            args,
            grant,
            session,
        } => explain::run(&policy, &tool, &args, &grant, session.as_deref()),
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
