//! The stdio relay (`mcp-policy proxy`): this process's stdin and stdout are the client's
//! side, a local MCP server started as a child process is the other, and every message
//! between them passes the core's [`Gateway`].
//!
//! Threads, each blocking on one thing: the client reader (stdin), the server reader (the
//! child's stdout), the timer (approval timeouts), the policy watcher, and the caller's
//! thread, which waits for the end. The decisions are made under the gateway's lock; the
//! writes happen after it is released, so a slow side never blocks the other direction's
//! decisions. Every line that is not examined is written to the other side exactly as it was
//! read (its line end aside: lines end in LF on the way out).

use std::io::{BufWriter, Write};
use std::process::ExitStatus;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_policy::Decider;
use mcp_policy::mcp::{ClientMessage, Gateway, Output, PARSE_ERROR, ServerMessage, error_response};
use serde_json::Value;

use crate::error::Error;
use crate::host::child::{self, Child};
use crate::host::context::Context;
use crate::host::lines::{Line, Lines};
use crate::host::outputs::{Sides, carry_out};
use crate::host::sync::lock;
use crate::host::{signals, timer};
use crate::observe::MetricsAt;
use crate::options::{HostOptions, read_policy};

/// How long answers in flight are awaited after the client closed or a signal came.
pub const GRACE: Duration = Duration::from_secs(3);

/// What a client's output buffers before it is written.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// Why the relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed its input (answers in flight were delivered first, for up to
    /// [`GRACE`]).
    ClientClosed,
    /// A stop signal ([`signals::STOP_SIGNALS`]); answers in flight were delivered first.
    Signal,
    /// The MCP server exited: its status, if it exited within [`child::STOP_GRACE`] of
    /// closing its output.
    UpstreamExited(Option<ExitStatus>),
}

/// Why the main thread wakes up.
enum Event {
    ClientClosed,
    UpstreamClosed,
    Signal,
}

/// Everything the relay's threads share.
struct Relay {
    ctx: Arc<Context>,
    gateway: Mutex<Gateway>,
    /// This process's stdout (a duplicate of fd 1, so that writes are not flushed per line
    /// by `Stdout`'s line buffering). Each side's writer is flushed by a reader after the
    /// first line of what one read brought (the other side starts on it at once) and once it
    /// has no more input buffered: the rest of lines that arrive together leave together,
    /// and no line waits longer than the processing of what was already read.
    client: Mutex<BufWriter<Box<dyn Write + Send>>>,
    server: Child,
}

impl Sides for &Relay {
    fn to_server(&mut self, line: &[u8]) {
        self.server.write_line(line);
    }

    fn to_client(&mut self, line: &[u8], _as_read: bool) {
        let mut out = lock(&self.client);
        // The client gone is noticed by the reader (end of input); nothing to do here.
        let _ = out.write_all(line).and_then(|()| out.write_all(b"\n"));
    }
}

impl Relay {
    /// Carries out the gateway's outputs for a line read from one side; whether anything
    /// was written to the client.
    fn carry_out(&self, outputs: Vec<Output>, line: &[u8], from_client: bool) -> bool {
        carry_out(outputs, line, from_client, &self.ctx.audit, &mut &*self)
    }

    /// Sends what was written to the client. Each thread flushes only the writers it writes
    /// to: the server reader never waits for the server's input (held by the client reader
    /// while the server is busy writing to us), or both would wait forever.
    fn flush_client(&self) {
        let _ = lock(&self.client).flush();
    }
}

/// Runs the relay until the client closes its input, the server exits or a stop signal
/// comes; the server is then stopped and reaped. An error when it cannot start (the policy
/// does not load, the store cannot be reached, the server cannot be started).
pub fn run(options: &HostOptions) -> Result<End, Error> {
    if options.command.is_empty() {
        return Err(Error::Usage(
            "no upstream command; usage: mcp-policy proxy --policy P -- COMMAND [ARG]...".into(),
        ));
    }
    if options.metrics == Some(MetricsAt::Gateway) {
        return Err(Error::Usage(
            "--metrics: the stdio proxy has no HTTP port of its own; give an address, e.g. --metrics 127.0.0.1:9464".into(),
        ));
    }
    let (policy, text) = read_policy(&options.policy)?;
    let ctx = Arc::new(Context::open(options, policy, &[])?);
    if let Some(metrics) = &ctx.metrics {
        // One client, one session, for as long as the relay runs.
        metrics.sessions(1);
    }
    let (server, server_output) = child::spawn(&options.command)?;
    let relay = Arc::new(Relay {
        gateway: Mutex::new(Gateway::new(options.grant.clone(), ctx.options.clone())),
        client: Mutex::new(BufWriter::with_capacity(OUTPUT_BUFFER, client_output())),
        server,
        ctx,
    });
    relay.ctx.audit.start(
        &options.policy,
        relay.ctx.engine.policy().revision(),
        relay.server.program(),
        Vec::new(),
    );

    let (events, wake) = mpsc::channel::<Event>();
    spawn_server_reader(&relay, server_output, events.clone());
    spawn_client_reader(&relay, options.max_message, events.clone());
    timer::every_tick(&relay, |relay| {
        let outputs = {
            let mut gateway = lock(&relay.gateway);
            let mut outputs = gateway.expire(Instant::now());
            outputs.extend(gateway.after_reload(relay.ctx.engine.as_ref()));
            outputs
        };
        if !outputs.is_empty() {
            relay.carry_out(outputs, &[], false);
            relay.flush_client();
        }
    });
    let _watcher = relay.ctx.watch_policy(&options.policy, text);
    signals::on_stop(move || {
        let _ = events.send(Event::Signal);
    });

    let end = match wake.recv() {
        Ok(Event::UpstreamClosed) | Err(_) => {
            let status = relay.server.wait(child::STOP_GRACE);
            eprintln!(
                "mcp-policy proxy: the MCP server exited ({})",
                status.map_or_else(|| "still running; stopped".into(), |s| s.to_string())
            );
            End::UpstreamExited(status)
        }
        Ok(event) => {
            // Answers in flight are delivered first, for as long as the grace period.
            let until = Instant::now() + GRACE;
            while Instant::now() < until && lock(&relay.gateway).in_flight().0 > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            match event {
                Event::Signal => End::Signal,
                _ => End::ClientClosed,
            }
        }
    };
    relay.server.stop();
    relay.ctx.audit.line(vec![("event", "stop".into())]);
    // Every line queued is written before the process ends.
    relay.ctx.audit.close();
    // The spans of the last calls are exported before the process ends.
    relay.ctx.stop_traces();
    Ok(end)
}

/// This process's standard output as a plain file (fd 1 duplicated), so that the relay
/// decides when bytes leave; falls back to `Stdout` if fd 1 cannot be duplicated.
fn client_output() -> Box<dyn Write + Send> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

fn spawn_client_reader(relay: &Arc<Relay>, max_message: usize, events: mpsc::Sender<Event>) {
    let relay = Arc::clone(relay);
    std::thread::spawn(move || {
        let mut lines = Lines::new(std::io::stdin().lock());
        // Whether answers were written to the client since the last flush.
        let mut answered = false;
        loop {
            // The first line of a burst (one read from the pipe) is sent as soon as it is
            // decided, so that the server starts on it; the others are sent together once
            // the burst is drained (one write, not one per line).
            let first = lines.drained();
            match lines.read(Some(max_message)) {
                Ok(Line::Text) => {
                    let line = lines.line();
                    // A blank line is nothing to pass on (but may end a burst).
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        // Read before the lock: the other direction waits only for the
                        // decision itself.
                        let message = ClientMessage::read(line);
                        let outputs = lock(&relay.gateway)
                            .from_client_message(relay.ctx.engine.as_ref(), message);
                        answered |= relay.carry_out(outputs, line, true);
                    }
                    if first || lines.drained() {
                        relay.server.flush();
                        if std::mem::take(&mut answered) {
                            relay.flush_client();
                        }
                    }
                }
                Ok(Line::TooLong) => {
                    let answer = error_response(
                        &Value::Null,
                        PARSE_ERROR,
                        &format!(
                            "Parse error: the message is over this gateway's size limit of {max_message} bytes"
                        ),
                    );
                    (&*relay).to_client(answer.to_string().as_bytes(), false);
                    relay.flush_client();
                }
                Ok(Line::End) | Err(_) => break,
            }
        }
        let _ = events.send(Event::ClientClosed);
    });
}

fn spawn_server_reader(
    relay: &Arc<Relay>,
    output: std::process::ChildStdout,
    events: mpsc::Sender<Event>,
) {
    let relay = Arc::clone(relay);
    std::thread::spawn(move || {
        let mut lines = Lines::new(output);
        loop {
            // As for the client's lines: the first answer of a burst at once, the others
            // together.
            let first = lines.drained();
            match lines.read(None) {
                Ok(Line::Text) => {}
                Ok(Line::TooLong | Line::End) | Err(_) => break,
            }
            let line = lines.line();
            // A blank line is nothing to pass on (but may end a burst).
            if !line.iter().all(u8::is_ascii_whitespace) {
                let message = ServerMessage::read(line);
                let outputs =
                    lock(&relay.gateway).from_server_message(relay.ctx.engine.as_ref(), message);
                relay.carry_out(outputs, line, false);
            }
            if first || lines.drained() {
                relay.flush_client();
            }
        }
        let outputs = lock(&relay.gateway).upstream_gone(relay.ctx.engine.as_ref());
        relay.carry_out(outputs, &[], false);
        relay.flush_client();
        let _ = events.send(Event::UpstreamClosed);
    });
}
