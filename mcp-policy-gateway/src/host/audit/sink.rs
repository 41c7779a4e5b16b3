//! Where audit lines end up, and what happens when they cannot: the destination (a file,
//! appended, or standard error), the lines formatted but not yet written, and the failure
//! state. A failed write keeps its lines (up to [`KEPT`] bytes) and is tried again; the
//! gateway keeps serving meanwhile (docs/RELIABILITY.md says why), and says on stderr and in
//! the metrics when writing fails, when it works again, and how many lines were lost.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::sync::Arc;

use crate::observe::Metrics;

/// How many bytes of unwritten lines are kept while the log cannot be written; older ones
/// are then dropped (counted as lost) rather than memory growing without bound.
pub const KEPT: usize = 4 << 20;

/// The destination of the lines.
enum Target {
    Stderr,
    File(File),
}

/// The destination, what waits to be written to it, and whether writing fails.
pub struct Sink {
    target: Target,
    /// The file's path, or "standard error", for messages.
    name: String,
    /// Lines formatted and not yet written; it may begin with the rest of a line whose
    /// beginning was written (`partial`).
    pending: Vec<u8>,
    partial: bool,
    /// Each write is followed by `fdatasync` (`--audit-sync`).
    sync: bool,
    /// The error of the last write, while writing fails.
    failing: Option<String>,
    /// Lines dropped since writing began to fail.
    lost: u64,
    metrics: Option<Arc<Metrics>>,
}

impl Sink {
    /// Opens `-` (standard error) or a file (created if needed, appended to).
    pub fn open(target: &str, sync: bool, metrics: Option<Arc<Metrics>>) -> std::io::Result<Sink> {
        let (target, name) = match target {
            "-" => (Target::Stderr, "standard error".to_owned()),
            path => (
                Target::File(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?,
                ),
                path.to_owned(),
            ),
        };
        Ok(Sink {
            target,
            name,
            pending: Vec::with_capacity(64 * 1024),
            partial: false,
            sync,
            failing: None,
            lost: 0,
            metrics,
        })
    }

    /// Where the next line is formatted: after the lines waiting.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// How many bytes wait to be written.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// Whether the last write failed.
    pub fn failing(&self) -> bool {
        self.failing.is_some()
    }

    /// Writes what waits. On failure what was not written is kept (the oldest lines dropped
    /// beyond [`KEPT`]) for the next try; the first failure of a run of them is said on stderr.
    pub fn write_out(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut done = 0;
        let result = loop {
            let rest = self.pending.get(done..).unwrap_or_default();
            if rest.is_empty() {
                break match (&self.target, self.sync) {
                    (Target::File(file), true) => file.sync_data(),
                    _ => Ok(()),
                };
            }
            let wrote = match &mut self.target {
                Target::Stderr => std::io::stderr().write(rest),
                Target::File(file) => file.write(rest),
            };
            match wrote {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if done > 0 {
            self.partial = self.pending.get(done - 1) != Some(&b'\n');
            self.pending.drain(..done);
        }
        match result {
            Ok(()) => {
                if self.failing.take().is_some() {
                    eprintln!(
                        "mcp-policy proxy: the audit log ({}) is written again; {} line(s) were lost",
                        self.name, self.lost
                    );
                    self.lost = 0;
                }
            }
            Err(e) => {
                if let Some(metrics) = &self.metrics {
                    metrics.audit_write_failed();
                }
                if self.failing.is_none() {
                    eprintln!(
                        "mcp-policy proxy: cannot write the audit log ({}): {e}; calls go on, \
                         the lines are kept (up to {} MiB) and written when it can be again",
                        self.name,
                        KEPT >> 20
                    );
                }
                self.failing = Some(e.to_string());
                if self.pending.len() > KEPT {
                    self.drop_oldest();
                }
            }
        }
    }

    /// Drops the lines waiting, except the rest of a line already begun in the file.
    fn drop_oldest(&mut self) {
        let keep = match self.partial {
            true => memchr::memchr(b'\n', &self.pending).map_or(0, |at| at + 1),
            false => 0,
        };
        let dropped =
            memchr::memchr_iter(b'\n', self.pending.get(keep..).unwrap_or_default()).count();
        self.pending.truncate(keep);
        self.lost += dropped as u64;
        if let Some(metrics) = &self.metrics {
            metrics.audit_lines_lost(dropped as u64);
        }
    }

    /// The last word when the log closes: what could not be written is lost, and said so.
    pub fn finish(&mut self) {
        self.write_out();
        if self.failing.is_some() {
            self.drop_oldest();
            self.partial = false;
            eprintln!(
                "mcp-policy proxy: the audit log ({}) could not be written before stopping: {} line(s) lost",
                self.name, self.lost
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file opened read-only stands for a disk that refuses writes.
    fn refusing(path: &std::path::Path) -> Sink {
        std::fs::write(path, b"").unwrap();
        Sink {
            target: Target::File(File::open(path).unwrap()),
            name: path.display().to_string(),
            pending: Vec::new(),
            partial: false,
            sync: false,
            failing: None,
            lost: 0,
            metrics: Some(Arc::new(Metrics::new())),
        }
    }

    #[test]
    fn a_failed_write_keeps_its_lines_and_counts_what_it_drops() {
        let path = std::env::temp_dir().join(format!("audit-sink-{}.jsonl", std::process::id()));
        let mut sink = refusing(&path);
        sink.buffer().extend_from_slice(b"{\"a\":1}\n{\"a\":2}\n");
        sink.write_out();
        assert!(sink.failing());
        assert_eq!(sink.waiting(), 16, "kept for the next try");
        // Writable again: the kept lines go out, in order.
        sink.target = Target::File(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap(),
        );
        sink.buffer().extend_from_slice(b"{\"a\":3}\n");
        sink.write_out();
        assert!(!sink.failing());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
        // Failing beyond KEPT: the oldest lines are dropped and counted.
        let mut sink = refusing(&path);
        let line =
            b"{\"pad\":\"................................................................\"}\n";
        while sink.waiting() <= KEPT {
            sink.buffer().extend_from_slice(line);
        }
        let lines = sink.waiting() / line.len();
        sink.write_out();
        assert_eq!(sink.waiting(), 0);
        assert_eq!(sink.lost, lines as u64);
        let text = sink.metrics.as_ref().unwrap().render();
        assert!(
            text.contains(&format!("mcp_policy_audit_lines_lost_total {lines}")),
            "{text}"
        );
        assert!(
            text.contains("mcp_policy_audit_write_errors_total 1"),
            "{text}"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_line_begun_in_the_file_is_finished_before_anything_is_dropped() {
        let path = std::env::temp_dir().join(format!("audit-partial-{}.jsonl", std::process::id()));
        let mut sink = refusing(&path);
        sink.buffer().extend_from_slice(b"rest\"}\n{\"b\":1}\n");
        sink.partial = true;
        sink.drop_oldest();
        assert_eq!(sink.pending, b"rest\"}\n");
        assert_eq!(sink.lost, 1);
        std::fs::remove_file(path).unwrap();
    }
}
