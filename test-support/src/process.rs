//! Processes the tests start or watch: whether a pid is alive (`/proc`, a zombie counts as
//! gone), waiting for a condition, a pid or a child to end, a child's stderr read on a thread
//! of its own (so a chatty child never blocks on a full pipe), and a child killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`wait_dead`] waits.
pub const WAIT_DEAD: Duration = Duration::from_secs(15);

/// Whether the process runs (or sleeps): a zombie has exited and does not count.
pub fn alive(pid: impl Into<u64>) -> bool {
    let pid = pid.into();
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// Polls `done` every `every` until it holds (true) or `limit` has passed (false).
pub fn wait_until(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(every);
    }
    false
}

/// Whether the process is gone within [`WAIT_DEAD`].
pub fn wait_dead(pid: impl Into<u64>) -> bool {
    let pid = pid.into();
    wait_until(WAIT_DEAD, Duration::from_millis(20), || !alive(pid))
}

/// The child's exit status, if it exits within `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A child's standard error, read line by line on a thread of its own until it closes: all
/// of it is kept ([`text`](Self::text)), and each line is also handed out once, in order, to
/// [`wait_for`](Self::wait_for) and [`fresh`](Self::fresh).
pub struct Stderr {
    text: Arc<Mutex<String>>,
    lines: Receiver<String>,
}

impl Stderr {
    /// Takes the child's stderr (spawned with `Stdio::piped()`) and starts reading it.
    pub fn capture(child: &mut Child) -> Stderr {
        let pipe = child.stderr.take().expect("the child's stderr is piped");
        let text = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let sink = Arc::clone(&text);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                {
                    let mut all = sink.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
                // Nobody listening any more: keep reading, so the child never blocks.
                let _ = tx.send(line);
            }
        });
        Stderr { text, lines }
    }

    /// Everything the child wrote so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Reads lines not handed out yet until `found` makes something of one; `None` when
    /// `limit` passes or the stream ends first.
    pub fn wait_for<T>(
        &self,
        limit: Duration,
        mut found: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(value) = found(&line) {
                        return Some(value);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The lines not handed out yet, each followed by `\n`, up to the first pause of `quiet`
    /// (or the end of the stream).
    pub fn fresh(&self, quiet: Duration) -> String {
        let mut out = String::new();
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// A child the test started: killed (and reaped) when dropped, so a failing test leaves none.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::{KillOnDrop, Stderr, alive, wait_dead, wait_exit};

    #[test]
    fn stderr_is_kept_and_handed_out_once() {
        let mut child = Command::new("sh")
            .args(["-c", "echo one >&2; echo ready >&2; echo three >&2"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Stderr::capture(&mut child);
        let ready = stderr.wait_for(Duration::from_secs(10), |l| (l == "ready").then_some(()));
        assert!(ready.is_some());
        assert_eq!(stderr.fresh(Duration::from_secs(2)), "three\n");
        assert!(
            wait_exit(&mut child, Duration::from_secs(10))
                .unwrap()
                .success()
        );
        assert_eq!(stderr.text(), "one\nready\nthree\n");
    }

    #[test]
    fn a_killed_child_is_not_alive() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(alive(pid));
        drop(KillOnDrop(child));
        assert!(wait_dead(pid));
    }
}
