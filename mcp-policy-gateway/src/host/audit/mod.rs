//! The audit log: one JSON line per `tools/call` (and resource read, prompt get) that reached
//! the policy, and one per policy event (start, reload, rejected reload, stop), shared by the
//! stdio proxy and the HTTP gateway. Field order is fixed: `ts` first, then the record's
//! fields, with `args_sha256` after the decision ([`format`]).
//!
//! Lines are written off the request's path by default: a call's record is handed to a
//! writer thread of the log's own before the call's answer leaves, and the writer formats and
//! writes whatever has queued in one `write` as soon as it wakes: one line at a time when
//! calls are few; under load (more than one line a write) it then lets lines gather for a
//! millisecond ([`GATHER`]), so that callers need not wake it for each. What a crash (`kill -9`, a power cut) can lose
//! is what was queued and not yet written: at most [`QUEUE`] lines, in practice the records of
//! the calls answered in the last instants. Closing the log ([`Audit::close`], which both
//! hosts do when they stop, SIGTERM included) writes everything queued first. With
//! `--audit-sync` each line is written, and `fdatasync`ed, by the request's own thread before
//! its answer leaves. A log that cannot be written: see [`sink`].

pub mod format;
pub mod sink;

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use mcp_policy::mcp::AuditRecord;
use serde_json::Value;

use crate::error::Error;
use crate::host::sync::lock;
use crate::observe::Metrics;
use sink::Sink;

/// How many records may wait for the writer; a caller that finds the queue full waits for
/// room (the log then sets the pace, as a synchronous log would).
pub const QUEUE: usize = 16 * 1024;

/// How many bytes the writer gathers at most before one write.
const BATCH: usize = 256 * 1024;

/// How often a log that cannot be written is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Under load (a write of more than one line), how long the writer lets lines gather before
/// it looks again: one wake-up and one write per interval instead of one per call, and no
/// caller has to wake the writer meanwhile. When calls are few each line is written at once.
const GATHER: Duration = Duration::from_millis(1);

/// What the writer is handed.
enum Entry {
    /// A call's record, settled at that time.
    Call(SystemTime, Box<AuditRecord>),
    /// An event's line, formatted.
    Text(Vec<u8>),
}

/// Where audit lines go: nowhere, a writer thread, or the caller's own thread (`--audit-sync`).
pub struct Audit {
    mode: Mode,
}

enum Mode {
    Off,
    Queued(Queued),
    Direct(Mutex<Sink>),
}

/// The writer thread and the way to it.
struct Queued {
    /// `None` once the log is closed.
    to_writer: RwLock<Option<SyncSender<Entry>>>,
    writer: Mutex<Option<JoinHandle<Sink>>>,
    /// The sink back from the writer once it stopped: a line written after the log closed
    /// (a straggling event) is written through it directly.
    after: Mutex<Option<Sink>>,
}

impl Audit {
    /// Opens `--audit FILE|-` (`-` is standard error; the protocol owns standard output),
    /// written by a writer thread of its own.
    ///
    /// ```
    /// use mcp_policy_gateway::host::audit::Audit;
    /// let path = std::env::temp_dir().join(format!("audit-doc-{}.jsonl", std::process::id()));
    /// let audit = Audit::open(Some(path.to_str().unwrap())).unwrap();
    /// audit.line(vec![("event", "start".into())]);
    /// audit.close(); // everything queued is written
    /// let text = std::fs::read_to_string(&path).unwrap();
    /// assert!(text.starts_with(r#"{"ts":"#) && text.ends_with("\"event\":\"start\"}\n"));
    /// std::fs::remove_file(path).unwrap();
    /// assert!(!Audit::open(None).unwrap().enabled());
    /// ```
    pub fn open(target: Option<&str>) -> Result<Audit, Error> {
        Audit::open_with(target, false, None)
    }

    /// Opens the log; `sync`: each line written and `fdatasync`ed before the call that made
    /// it is answered (`--audit-sync`), else by the writer thread. Write failures and lost
    /// lines are counted in `metrics`.
    ///
    /// ```
    /// use mcp_policy_gateway::host::audit::Audit;
    /// let path = std::env::temp_dir().join(format!("audit-sync-doc-{}.jsonl", std::process::id()));
    /// let audit = Audit::open_with(Some(path.to_str().unwrap()), true, None).unwrap();
    /// audit.line(vec![("event", "start".into())]);
    /// // On disk already: no close needed.
    /// assert!(std::fs::read_to_string(&path).unwrap().ends_with("\"event\":\"start\"}\n"));
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub fn open_with(
        target: Option<&str>,
        sync: bool,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Audit, Error> {
        let Some(target) = target else {
            return Ok(Audit { mode: Mode::Off });
        };
        let sink = Sink::open(target, sync, metrics)
            .map_err(|e| Error::Io(format!("--audit {target}: {e}")))?;
        if sync {
            return Ok(Audit {
                mode: Mode::Direct(Mutex::new(sink)),
            });
        }
        let (to_writer, from_hosts) = std::sync::mpsc::sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("mcp-policy-audit".into())
            .spawn(move || write_lines(from_hosts, sink))
            .map_err(|e| Error::Io(format!("--audit {target}: cannot start its writer: {e}")))?;
        Ok(Audit {
            mode: Mode::Queued(Queued {
                to_writer: RwLock::new(Some(to_writer)),
                writer: Mutex::new(Some(writer)),
                after: Mutex::new(None),
            }),
        })
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        !matches!(self.mode, Mode::Off)
    }

    /// Writes one line: `ts`, then `fields` in order.
    pub fn line(&self, fields: Vec<(&str, Value)>) {
        if !self.enabled() {
            return;
        }
        let mut text = Vec::with_capacity(256);
        format::event_line(&mut text, SystemTime::now(), &fields);
        self.put(Entry::Text(text));
    }

    /// The `start` line of a host: its policy file and revision, its upstream, then
    /// `more` (the HTTP gateway's address and event loops).
    pub fn start(
        &self,
        policy: &std::path::Path,
        revision: &str,
        upstream: &str,
        more: Vec<(&str, Value)>,
    ) {
        let mut fields = vec![
            ("event", "start".into()),
            ("policy", policy.display().to_string().into()),
            ("revision", revision.into()),
            ("upstream", upstream.into()),
        ];
        fields.extend(more);
        self.line(fields);
    }

    /// Writes one call's record, with the SHA-256 of its canonical arguments.
    pub fn call(&self, record: AuditRecord) {
        if !self.enabled() {
            return;
        }
        self.put(Entry::Call(SystemTime::now(), Box::new(record)));
    }

    fn put(&self, entry: Entry) {
        match &self.mode {
            Mode::Off => {}
            Mode::Direct(sink) => {
                let mut sink = lock(sink);
                take(&mut sink, entry);
                sink.write_out();
            }
            Mode::Queued(queued) => {
                let to_writer = queued
                    .to_writer
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let entry = match to_writer.as_ref() {
                    // Sent unless the writer is gone (it stops only when the log closes).
                    Some(to_writer) => match to_writer.send(entry) {
                        Ok(()) => return,
                        Err(e) => e.0,
                    },
                    None => entry,
                };
                drop(to_writer);
                if let Some(sink) = lock(&queued.after).as_mut() {
                    take(sink, entry);
                    sink.write_out();
                }
            }
        }
    }

    /// Writes everything queued and stops the writer (lines that come later are written
    /// directly). Both hosts call it when they stop; dropping the log does it too.
    pub fn close(&self) {
        let Mode::Queued(queued) = &self.mode else {
            return;
        };
        // Dropping the sender ends the writer once it has written what was queued.
        queued
            .to_writer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let writer = lock(&queued.writer).take();
        if let Some(Ok(sink)) = writer.map(JoinHandle::join) {
            *lock(&queued.after) = Some(sink);
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
    }
}

/// Formats an entry into the sink's buffer.
fn take(sink: &mut Sink, entry: Entry) {
    match entry {
        Entry::Call(ts, record) => format::record_line(sink.buffer(), ts, &record),
        Entry::Text(text) => sink.buffer().extend_from_slice(&text),
    }
}

/// The writer thread: waits for an entry, gathers what else has queued (up to [`BATCH`]
/// bytes), writes it in one go; retries every [`RETRY`] while writing fails; when every
/// sender is gone, writes what is left and returns the sink.
fn write_lines(from_hosts: Receiver<Entry>, mut sink: Sink) -> Sink {
    loop {
        let first = match sink.failing() {
            false => from_hosts
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            true => from_hosts.recv_timeout(RETRY),
        };
        match first {
            Ok(entry) => take(&mut sink, entry),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let mut lines = 1;
        while sink.waiting() < BATCH {
            match from_hosts.try_recv() {
                Ok(entry) => {
                    take(&mut sink, entry);
                    lines += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        sink.write_out();
        if lines > 1 {
            std::thread::sleep(GATHER);
        }
    }
    sink.finish();
    sink
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_policy::subject::Kind;

    fn record(n: u64) -> AuditRecord {
        AuditRecord {
            grant: "g".into(),
            session: None,
            tool: "echo".into(),
            kind: Kind::Tool,
            decision: serde_json::json!({"decision": "allow"}),
            args_canonical: "{}".into(),
            args: None,
            upstream: Some("ok"),
            refunded: false,
            policy_us: n,
            total_us: n,
        }
    }

    #[test]
    fn closing_writes_every_line_queued_by_many_threads_in_each_threads_order() {
        let path = std::env::temp_dir().join(format!("audit-many-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let audit = Arc::new(Audit::open(Some(path.to_str().unwrap())).unwrap());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let audit = Arc::clone(&audit);
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        audit.call(record(t * 1_000_000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        audit.close();
        // After closing, a line is written directly.
        audit.line(vec![("event", "late".into())]);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 20_001);
        assert_eq!(lines[20_000]["event"], "late");
        for t in 0..4u64 {
            let mine: Vec<u64> = lines
                .iter()
                .filter_map(|l| l["policy_us"].as_u64())
                .filter(|n| n / 1_000_000 == t)
                .collect();
            assert_eq!(
                mine,
                (0..5_000).map(|i| t * 1_000_000 + i).collect::<Vec<_>>()
            );
        }
        std::fs::remove_file(path).unwrap();
    }
}
