//! The audit log: one JSON line per `tools/call` (and resource read, prompt get) that reached
//! the policy, and one per policy event (start, reload, rejected reload, stop), shared by the
//! stdio proxy and the HTTP gateway. Field order is fixed: `ts` first, then the record's
//! fields, with `args_sha256` after the decision ([`mod@format`]).
//!
//! How a line reaches the file, by default: a caller that finds nothing queued and the log
//! free (no other thread writing) formats its record and writes it itself, one `write` to the
//! page cache before its answer leaves: cheaper than waking another thread, and the line is
//! in the file by the time the client reads the answer. Otherwise (the log busy, calls in
//! parallel) the record is handed to the log's writer thread and the caller goes on at once,
//! never waiting for the log: the writer takes everything queued and writes it in one
//! `write`, then lets lines gather for a millisecond at a time ([`GATHER`]) for as long as
//! they keep coming, callers queueing theirs meanwhile (no caller wakes it, no `write` per
//! line); when a millisecond brings none, callers write their own lines again. What a crash (`kill -9`, a power
//! cut) can lose is what was queued and not yet written: at most [`QUEUE`] lines, in practice
//! those of the calls answered in the last millisecond under load. Closing the log
//! ([`Audit::close`], which both hosts do when they stop, SIGTERM included) writes everything
//! queued first. With `--audit-sync` each line is written, and `fdatasync`ed, by the
//! request's own thread before its answer leaves. A log that cannot be written: see
//! [`sink`].

pub mod format;
pub mod sink;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use mcp_policy::mcp::AuditRecord;
use serde_json::Value;

use crate::error::Error;
use crate::host::sync::{lock, try_lock};
use crate::observe::Metrics;
use sink::Sink;

/// How many records may wait for the writer; a caller that finds the queue full waits for
/// room (the log then sets the pace, as a synchronous log would).
pub const QUEUE: usize = 16 * 1024;

/// How many bytes the writer gathers at most before one write.
const BATCH: usize = 256 * 1024;

/// How often a log that cannot be written is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Once calls overlap (the writer was handed a line: a caller found the log busy), how long
/// the writer lets lines gather before it looks again, for as long as lines keep coming: one
/// write per interval instead of one per call, and no caller wakes the writer meanwhile.
pub const GATHER: Duration = Duration::from_millis(1);

/// What the writer is handed.
enum Entry {
    /// A call's record, settled at that time.
    Call(SystemTime, Box<AuditRecord>),
    /// An event's line, formatted.
    Text(Vec<u8>),
    /// No line: a caller's own write failed; the writer takes over trying again.
    Retry,
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
    writer: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

/// What callers and the writer share.
struct Shared {
    sink: Mutex<Sink>,
    /// Entries sent to the writer and not yet taken into the sink (under its lock). A caller
    /// writes its line itself only when this is 0: its line then follows every line before it.
    queued: AtomicUsize,
    /// The writer is letting lines gather (under load): callers queue their lines rather
    /// than write them one `write` each.
    gathering: AtomicBool,
}

impl Audit {
    /// Opens `--audit FILE|-` (`-` is standard error; the protocol owns standard output),
    /// with a writer thread of its own.
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
    /// it is answered (`--audit-sync`), else as the module says. Write failures and lost
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
        let shared = Arc::new(Shared {
            sink: Mutex::new(sink),
            queued: AtomicUsize::new(0),
            gathering: AtomicBool::new(false),
        });
        let (to_writer, from_hosts) = std::sync::mpsc::sync_channel(QUEUE);
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("mcp-policy-audit".into())
            .spawn(move || write_lines(&from_hosts, &for_writer))
            .map_err(|e| Error::Io(format!("--audit {target}: cannot start its writer: {e}")))?;
        Ok(Audit {
            mode: Mode::Queued(Queued {
                to_writer: RwLock::new(Some(to_writer)),
                writer: Mutex::new(Some(writer)),
                shared,
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
            Mode::Queued(queued) => queued.put(entry),
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
        if let Some(writer) = lock(&queued.writer).take() {
            let _ = writer.join();
        }
    }
}

impl Queued {
    /// Nothing queued and the log free: the caller writes its line itself (one `write`; no
    /// other thread woken). Else the line goes to the writer, and the caller goes on.
    fn put(&self, entry: Entry) {
        let shared = &self.shared;
        if !shared.gathering.load(Ordering::Acquire)
            && shared.queued.load(Ordering::Acquire) == 0
            && let Some(mut sink) = try_lock(&shared.sink)
            && shared.queued.load(Ordering::Acquire) == 0
        {
            take(&mut sink, entry);
            sink.write_out();
            if sink.failing() {
                drop(sink);
                self.send(Entry::Retry);
            }
            return;
        }
        self.send(entry);
    }

    /// Hands an entry to the writer; once the log is closed, writes it here.
    fn send(&self, entry: Entry) {
        let shared = &self.shared;
        let to_writer = self
            .to_writer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = match to_writer.as_ref() {
            Some(to_writer) => {
                shared.queued.fetch_add(1, Ordering::AcqRel);
                match to_writer.send(entry) {
                    Ok(()) => return,
                    Err(e) => {
                        shared.queued.fetch_sub(1, Ordering::AcqRel);
                        e.0
                    }
                }
            }
            None => entry,
        };
        drop(to_writer);
        let mut sink = lock(&shared.sink);
        take(&mut sink, entry);
        sink.write_out();
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
        Entry::Retry => {}
    }
}

/// The writer thread: waits for an entry, then, holding the sink, takes what else has
/// queued (up to [`BATCH`] bytes) and writes it in one go; under load lets lines gather
/// ([`GATHER`]); retries every [`RETRY`] while writing fails; when every sender is gone,
/// writes what is left.
fn write_lines(from_hosts: &Receiver<Entry>, shared: &Shared) {
    let (mut failing, mut gathering) = (false, false);
    loop {
        let first = if gathering {
            match from_hosts.try_recv() {
                Ok(entry) => Ok(entry),
                // The load is over: callers write their lines themselves again.
                Err(TryRecvError::Empty) => {
                    gathering = false;
                    shared.gathering.store(false, Ordering::Release);
                    continue;
                }
                Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            }
        } else if failing {
            from_hosts.recv_timeout(RETRY)
        } else {
            from_hosts
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected)
        };
        let mut sink = lock(&shared.sink);
        let mut taken = 0;
        match first {
            Ok(entry) => {
                take(&mut sink, entry);
                taken += 1;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while sink.waiting() < BATCH {
            match from_hosts.try_recv() {
                Ok(entry) => {
                    take(&mut sink, entry);
                    taken += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        sink.write_out();
        shared.queued.fetch_sub(taken, Ordering::AcqRel);
        failing = sink.failing();
        drop(sink);
        // Woken at all: calls overlap (a caller found the log busy). Let lines gather.
        if taken > 0 {
            gathering = true;
            shared.gathering.store(true, Ordering::Release);
        }
        if gathering {
            std::thread::sleep(GATHER);
        }
    }
    lock(&shared.sink).finish();
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
