//! `mcp-policy proxy`: the flags made into the gateway library's options, then its stdio
//! relay (no `--listen`) or its HTTP gateway (`--listen ADDR`).

use mcp_policy_gateway::http::{self, HttpOptions};
use mcp_policy_gateway::observe::MetricsAt;
use mcp_policy_gateway::options::{grant, positive_duration};
use mcp_policy_gateway::stdio::{self, End};
use mcp_policy_gateway::{Error, HostOptions, StoreUrl};

use crate::cli::{HttpArgs, ProxyArgs};
use crate::exit::{FAILURES, OK, UNUSABLE};

/// Runs `proxy`: 0 when the client or a signal ended it; the MCP server's exit code when it
/// exited on its own (1 if that was 0); 2 when it could not start.
pub fn run(args: ProxyArgs, http_args: HttpArgs) -> u8 {
    let listen = http_args.listen.clone();
    let served = host_options(args).and_then(|host| match listen {
        None => stdio::run(&host).map(exit_code),
        Some(listen) => {
            let options = http_options(listen, http_args)?;
            http::run(&host, &options).map(|()| OK)
        }
    });
    served.unwrap_or_else(|e| {
        report(&e);
        UNUSABLE
    })
}

/// Says why the proxy could not start: a policy's load errors as they are
/// (`FILE:LINE:COL: …`, as `check` prints them), anything else after the command's name.
fn report(e: &Error) {
    match e {
        Error::Policy(lines) => {
            for line in lines {
                eprintln!("{line}");
            }
        }
        other => {
            for line in other.to_string().lines() {
                eprintln!("mcp-policy proxy: {line}");
            }
        }
    }
}

fn exit_code(end: End) -> u8 {
    match end {
        End::ClientClosed | End::Signal => OK,
        End::UpstreamExited(status) => match status.and_then(|s| s.code()) {
            Some(code) if code != 0 => u8::try_from(code).unwrap_or(FAILURES),
            _ => FAILURES,
        },
    }
}

fn host_options(args: ProxyArgs) -> Result<HostOptions, Error> {
    let store = StoreUrl::parse(&args.store).map_err(|e| Error::Usage(format!("--store: {e}")))?;
    let approval_timeout = positive_duration("--approval-timeout", &args.approval_timeout)?;
    Ok(HostOptions {
        grant: grant(args.grant, &args.attrs)?,
        store,
        audit: args.audit,
        audit_args: args.audit_args,
        audit_sync: args.audit_sync,
        approval_timeout,
        max_message: args.max_line,
        command: args.command,
        policy: args.policy,
        traces: args.traces,
        metrics: args.metrics.map(|addr| match addr.is_empty() {
            true => MetricsAt::Gateway,
            false => MetricsAt::Listen {
                addr,
                public: args.metrics_public,
            },
        }),
    })
}

fn http_options(listen: String, args: HttpArgs) -> Result<HttpOptions, Error> {
    Ok(HttpOptions {
        listen,
        keys: args.keys,
        allow_remote: args.allow_remote,
        trusted_header: args.trusted_header,
        allowed_hosts: args.allowed_hosts,
        allowed_origins: args.allowed_origins,
        session_idle: positive_duration("--session-idle", &args.session_idle)?,
        max_sessions: args.max_sessions,
        shutdown_grace: positive_duration("--shutdown-grace", &args.shutdown_grace)?,
        upstream: args.upstream,
        upstream_headers: args.upstream_headers,
        upstream_ca: args.upstream_ca,
        threads: args.threads.map(usize::from),
    })
}
