//! `mcp-policy proxy`: a stdio MCP relay in front of an MCP server that every tool call
//! passes the policy through.
//!
//! Threads, each blocking on one thing: the client reader (the proxy's stdin), the server
//! reader (the upstream's stdout), a timer (approval timeouts), the policy watcher, and the
//! main thread, which waits for the end. The decisions are made by the core's
//! [`mcp_policy::mcp::Gateway`] under a lock; the writes happen after the lock is released, so
//! a slow side never blocks the other direction's decisions. Every line that is not examined
//! is written to the other side exactly as it was read.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use mcp_policy::mcp::{
    AuditRecord, ClientMessage, Gateway, GatewayOptions, Output, PARSE_ERROR, ServerMessage,
    error_response,
};
use mcp_policy::{Engine, Grant, Policy};

use crate::audit::Audit;
use crate::store::{Gate, RedisGate, StoreUrl, redact};
use crate::watch::{reload_policy, watch_file};
use serde_json::{Map, Value};

use crate::json::load_error_lines;
use crate::{FAILURES, OK, UNUSABLE};

/// The default size limit of one message from the client: 4 MiB.
pub const DEFAULT_MAX_LINE: usize = 4 << 20;

/// How long in-flight answers are awaited after the client closed, and how long the upstream
/// has to exit after its stdin closed (then SIGTERM, then as long again before SIGKILL).
const GRACE: Duration = Duration::from_secs(3);

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
    /// How long a human has to answer an approval request.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub approval_timeout: String,
    /// The size limit of one message from the client, in bytes.
    #[arg(long = "max-message", default_value_t = DEFAULT_MAX_LINE, value_name = "BYTES")]
    pub max_line: usize,
    /// The upstream MCP server: a command and its arguments, after `--`.
    #[arg(
        last = true,
        required_unless_present = "upstream",
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// Why the main thread wakes up.
enum Event {
    ClientClosed,
    UpstreamClosed,
    Signal,
}

/// Everything the threads share.
struct Shared {
    engine: Box<dyn Gate>,
    gateway: Mutex<Gateway>,
    /// The proxy's stdout (a duplicate of fd 1, so that writes are not flushed per line by
    /// `Stdout`'s line buffering) and the upstream's stdin. Each is flushed by a reader after
    /// the first line of what one read brought (the other side starts on it at once) and once
    /// it has no more input buffered: the rest of lines that arrive together leave together,
    /// and no line waits longer than the processing of what was already read.
    client: Mutex<BufWriter<Box<dyn Write + Send>>>,
    server: Mutex<Option<BufWriter<ChildStdin>>>,
    audit: Audit,
    /// Whether an audit log was opened (it is never opened later).
    audit_on: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Carries out the gateway's outputs for a line read from one side; whether anything
    /// was written to the client.
    fn carry_out(&self, outputs: Vec<Output>, line: &[u8], from_client: bool) -> bool {
        let mut to_client = false;
        for output in outputs {
            match output {
                Output::Forward if from_client => self.to_server(line),
                Output::Forward => {
                    self.to_client(line);
                    to_client = true;
                }
                Output::ToClient(v) => {
                    self.to_client(v.to_string().as_bytes());
                    to_client = true;
                }
                Output::ToServer(v) => self.to_server(v.to_string().as_bytes()),
                Output::Audit(record) if self.audit_on => self.audit_call(&record),
                Output::Audit(_) => {}
            }
        }
        to_client
    }

    fn to_client(&self, line: &[u8]) {
        let mut out = lock(&self.client);
        // The client gone is noticed by the reader (end of input); nothing to do here.
        let _ = out.write_all(line).and_then(|()| out.write_all(b"\n"));
    }

    fn to_server(&self, line: &[u8]) {
        let mut server = lock(&self.server);
        if let Some(stdin) = server.as_mut()
            && stdin
                .write_all(line)
                .and_then(|()| stdin.write_all(b"\n"))
                .is_err()
        {
            // The upstream closed its input; its exit is handled by the server reader.
            *server = None;
        }
    }

    /// Sends what was written to the client. Each thread flushes only the writers it writes
    /// to: the server reader must never wait for the upstream's stdin (held by the client
    /// reader while the upstream is busy writing to us), or both would wait forever.
    fn flush_client(&self) {
        let _ = lock(&self.client).flush();
    }

    /// Sends what was written to the upstream (the client reader's, when it has nothing
    /// buffered).
    fn flush_server(&self) {
        let mut server = lock(&self.server);
        if let Some(stdin) = server.as_mut()
            && stdin.flush().is_err()
        {
            *server = None;
        }
    }

    fn audit_line(&self, fields: Vec<(&str, Value)>) {
        self.audit.line(fields);
    }

    fn audit_call(&self, record: &AuditRecord) {
        self.audit.call(record);
    }
}

/// Runs `proxy`.
pub fn run(args: ProxyArgs) -> u8 {
    let store = match StoreUrl::parse(&args.store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("mcp-policy proxy: --store: {e}");
            return UNUSABLE;
        }
    };
    let Some((program, program_args)) = args.command.split_first() else {
        eprintln!(
            "mcp-policy proxy: no upstream command; usage: mcp-policy proxy --policy P -- COMMAND [ARG]..."
        );
        return UNUSABLE;
    };
    let approval_timeout = match mcp_policy::duration::parse_duration(&args.approval_timeout) {
        Ok(ms) if ms > 0 => Duration::from_millis(ms),
        Ok(_) => {
            eprintln!("mcp-policy proxy: --approval-timeout must be positive");
            return UNUSABLE;
        }
        Err(e) => {
            eprintln!("mcp-policy proxy: --approval-timeout: {e}");
            return UNUSABLE;
        }
    };
    let (policy, text) = match read_policy(&args.policy) {
        Ok(loaded) => loaded,
        Err(lines) => {
            for line in lines {
                eprintln!("{line}");
            }
            return UNUSABLE;
        }
    };
    let grant = match make_grant(&args) {
        Ok(grant) => grant,
        Err(e) => {
            eprintln!("mcp-policy proxy: {e}");
            return UNUSABLE;
        }
    };
    let audit = match Audit::open(args.audit.as_deref()) {
        Ok(audit) => audit,
        Err(e) => {
            eprintln!("mcp-policy proxy: {e}");
            return UNUSABLE;
        }
    };

    let mut child = match Command::new(program)
        .args(program_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("mcp-policy proxy: cannot start `{program}`: {e}");
            return UNUSABLE;
        }
    };
    let (Some(upstream_in), Some(upstream_out)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("mcp-policy proxy: the upstream's pipes could not be opened");
        return UNUSABLE;
    };

    let (engine, approve_command): (Box<dyn Gate>, Option<String>) = match &store {
        StoreUrl::Memory => (Box::new(Engine::new(policy)), None),
        StoreUrl::Redis(url) => match RedisGate::connect(url, policy) {
            Ok(gate) => (
                Box::new(gate),
                Some(format!("mcp-policy approve ID --store {}", redact(url))),
            ),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("mcp-policy proxy: {e}");
                return UNUSABLE;
            }
        },
    };
    let options = GatewayOptions {
        approval_timeout,
        approve_command,
        audit_args: args.audit_args,
        audit: audit.enabled(),
    };
    let shared = Arc::new(Shared {
        engine,
        gateway: Mutex::new(Gateway::new(grant, options)),
        client: Mutex::new(BufWriter::with_capacity(64 * 1024, client_output())),
        server: Mutex::new(Some(BufWriter::with_capacity(64 * 1024, upstream_in))),
        audit_on: audit.enabled(),
        audit,
    });
    shared.audit_line(vec![
        ("event", "start".into()),
        ("policy", args.policy.display().to_string().into()),
        ("revision", shared.engine.policy().revision().into()),
        ("upstream", program.as_str().into()),
    ]);

    let (events, wake) = mpsc::channel::<Event>();
    spawn_server_reader(&shared, upstream_out, events.clone());
    spawn_client_reader(&shared, args.max_line, events.clone());
    spawn_timer(&shared);
    let _watcher = watch_policy(&shared, &args.policy, text);
    spawn_signals(events);

    let code = match wake.recv() {
        Ok(Event::UpstreamClosed) | Err(_) => {
            let status = wait_for_exit(&mut child, GRACE);
            eprintln!(
                "mcp-policy proxy: the MCP server exited ({})",
                status.map_or_else(|| "still running; stopped".into(), |s| s.to_string())
            );
            match status.and_then(|s| s.code()) {
                Some(code) if code != 0 => u8::try_from(code).unwrap_or(FAILURES),
                _ => FAILURES,
            }
        }
        Ok(Event::ClientClosed) | Ok(Event::Signal) => {
            // In-flight answers are delivered first, for as long as the grace period.
            let until = Instant::now() + GRACE;
            while Instant::now() < until && lock(&shared.gateway).in_flight().0 > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            OK
        }
    };
    stop_upstream(&shared, &mut child);
    shared.audit_line(vec![("event", "stop".into())]);
    code
}

/// The proxy's standard output as a plain file (fd 1 duplicated), so that the proxy decides
/// when bytes leave; falls back to `Stdout` if fd 1 cannot be duplicated.
fn client_output() -> Box<dyn Write + Send> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

/// Reads and compiles the policy; the error lines say where.
pub(crate) fn read_policy(path: &Path) -> Result<(Policy, String), Vec<String>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{shown}: cannot read the policy: {e}")])?;
    let policy = Policy::from_json_str(&text).map_err(|e| load_error_lines(&shown, &e))?;
    Ok((policy, text))
}

pub(crate) fn make_grant(args: &ProxyArgs) -> Result<Grant, String> {
    let id = args
        .grant
        .clone()
        .or_else(|| {
            std::env::var("MCP_POLICY_GRANT")
                .ok()
                .filter(|g| !g.is_empty())
        })
        .unwrap_or_else(|| "local".to_owned());
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let session = format!("{}-{nanos:x}", std::process::id());
    let mut grant = Grant::new(id).with_session(session);
    let mut attrs = Map::new();
    for pair in &args.attrs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("--attr {pair}: expected KEY=VALUE"));
        };
        if k.is_empty() {
            return Err(format!("--attr {pair}: the key is empty"));
        }
        attrs.insert(k.to_owned(), Value::from(v));
    }
    grant.attrs.extend(attrs);
    Ok(grant)
}

/// One line read from the client.
enum Line {
    /// The line is in the buffer.
    Text,
    TooLong,
    End,
}

/// Reads one line of at most `max` bytes (without its newline) into `buf` (reused from line
/// to line); a longer line is skipped to its end without being kept.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    buf.clear();
    // At most one byte over the limit is read into `buf`, so a line over it is known as such
    // without keeping more of it.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if reader.by_ref().take(limit).read_until(b'\n', buf)? == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Text);
    }
    if buf.len() <= max {
        // The last line, without a newline.
        return Ok(Line::Text);
    }
    buf.clear();
    buf.shrink_to(64 * 1024);
    reader.skip_until(b'\n')?;
    Ok(Line::TooLong)
}

fn spawn_client_reader(shared: &Arc<Shared>, max_line: usize, events: mpsc::Sender<Event>) {
    let shared = Arc::clone(shared);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = BufReader::with_capacity(64 * 1024, stdin.lock());
        let mut buf = Vec::with_capacity(1024);
        // Whether answers were written to the client since the last flush.
        let mut answered = false;
        loop {
            // The first line of a burst (one read from the pipe) is sent as soon as it is
            // decided, so that the server starts on it; the others are sent together once
            // the burst is drained (one write, not one per line).
            let first = reader.buffer().is_empty();
            match read_line(&mut reader, &mut buf, max_line) {
                Ok(Line::Text) => {
                    let line = buf.as_slice();
                    // A blank line is nothing to pass on (but may end a burst).
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        // Read before the lock: the other direction waits only for the
                        // decision itself.
                        let message = ClientMessage::read(line);
                        let outputs = lock(&shared.gateway)
                            .from_client_message(shared.engine.as_ref(), message);
                        answered |= shared.carry_out(outputs, line, true);
                    }
                    if first || reader.buffer().is_empty() {
                        shared.flush_server();
                        if std::mem::take(&mut answered) {
                            shared.flush_client();
                        }
                    }
                }
                Ok(Line::TooLong) => {
                    let answer = error_response(
                        &Value::Null,
                        PARSE_ERROR,
                        &format!(
                            "Parse error: the message is over this gateway's size limit of {max_line} bytes"
                        ),
                    );
                    shared.to_client(answer.to_string().as_bytes());
                    shared.flush_client();
                }
                Ok(Line::End) | Err(_) => break,
            }
        }
        let _ = events.send(Event::ClientClosed);
    });
}

fn spawn_server_reader(
    shared: &Arc<Shared>,
    upstream_out: impl Read + Send + 'static,
    events: mpsc::Sender<Event>,
) {
    let shared = Arc::clone(shared);
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, upstream_out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // As for the client's lines: the first answer of a burst at once, the others
            // together.
            let first = reader.buffer().is_empty();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            // A blank line is nothing to pass on (but may end a burst).
            if !buf.iter().all(u8::is_ascii_whitespace) {
                let message = ServerMessage::read(&buf);
                let outputs =
                    lock(&shared.gateway).from_server_message(shared.engine.as_ref(), message);
                shared.carry_out(outputs, &buf, false);
            }
            if first || reader.buffer().is_empty() {
                shared.flush_client();
            }
        }
        let outputs = lock(&shared.gateway).upstream_gone(shared.engine.as_ref());
        shared.carry_out(outputs, &[], false);
        shared.flush_client();
        let _ = events.send(Event::UpstreamClosed);
    });
}

fn spawn_timer(shared: &Arc<Shared>) {
    let weak = Arc::downgrade(shared);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let outputs = lock(&shared.gateway).expire(Instant::now());
            if !outputs.is_empty() {
                shared.carry_out(outputs, &[], false);
                shared.flush_client();
            }
        }
    });
}

fn spawn_signals(events: mpsc::Sender<Event>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    let _ = events.send(Event::Signal);
                }
            });
        }
        Err(e) => eprintln!("mcp-policy proxy: cannot handle signals: {e}"),
    }
}

/// Watches the policy file; a change that loads is swapped in (counters kept where their
/// window and reset are unchanged), a change that fails is reported and the running policy
/// stays.
fn watch_policy(
    shared: &Arc<Shared>,
    path: &Path,
    text: String,
) -> Option<notify::RecommendedWatcher> {
    let weak = Arc::downgrade(shared);
    let shown = path.display().to_string();
    watch_file(path, text, "policy", move |now| {
        if let Some(shared) = weak.upgrade() {
            reload_policy(shared.engine.as_ref(), &shared.audit, &shown, now);
        }
    })
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Closes the upstream's input, then SIGTERM, then SIGKILL, each after a grace period, and
/// reaps it: no orphan is left.
fn stop_upstream(shared: &Shared, child: &mut Child) {
    drop(lock(&shared.server).take());
    if wait_for_exit(child, GRACE).is_some() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if wait_for_exit(child, GRACE).is_some() {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_without_being_kept() {
        let input = format!("{}\nshort\n{}", "x".repeat(100), "y".repeat(5));
        let mut reader = BufReader::with_capacity(8, input.as_bytes());
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut reader, &mut buf, 10).unwrap(),
            Line::TooLong
        ));
        assert!(
            matches!(read_line(&mut reader, &mut buf, 10).unwrap(), Line::Text) && buf == b"short"
        );
        assert!(
            matches!(read_line(&mut reader, &mut buf, 10).unwrap(), Line::Text) && buf == b"yyyyy"
        );
        assert!(matches!(
            read_line(&mut reader, &mut buf, 10).unwrap(),
            Line::End
        ));
    }

    #[test]
    fn the_limit_is_inclusive_and_a_last_line_needs_no_newline() {
        let input = format!("{}\n{}\n\nabc", "x".repeat(10), "y".repeat(11));
        let mut reader = BufReader::with_capacity(4, input.as_bytes());
        let mut buf = Vec::new();
        let mut next = || match read_line(&mut reader, &mut buf, 10).unwrap() {
            Line::Text => String::from_utf8(buf.clone()).unwrap(),
            Line::TooLong => "(too long)".into(),
            Line::End => "(end)".into(),
        };
        assert_eq!(next(), "x".repeat(10));
        assert_eq!(next(), "(too long)");
        assert_eq!(next(), "");
        assert_eq!(next(), "abc");
        assert_eq!(next(), "(end)");
        let long = "z".repeat(20);
        let mut reader = BufReader::new(long.as_bytes());
        assert!(matches!(
            read_line(&mut reader, &mut buf, 10).unwrap(),
            Line::TooLong
        ));
        assert!(matches!(
            read_line(&mut reader, &mut buf, 10).unwrap(),
            Line::End
        ));
    }

    #[test]
    fn grant_from_flags() {
        let args = ProxyArgs {
            policy: PathBuf::from("p.json"),
            grant: Some("ci".into()),
            attrs: vec!["team=sec".into(), "tier=a=b".into()],
            store: "memory".into(),
            audit: None,
            audit_args: false,
            approval_timeout: "2m".into(),
            max_line: DEFAULT_MAX_LINE,
            command: vec![],
        };
        let grant = make_grant(&args).unwrap();
        assert_eq!(grant.id, "ci");
        assert_eq!(grant.attrs["team"], "sec");
        assert_eq!(grant.attrs["tier"], "a=b");
        assert!(grant.session.is_some());
        let bad = ProxyArgs {
            attrs: vec!["novalue".into()],
            ..args
        };
        assert!(make_grant(&bad).is_err());
    }
}
