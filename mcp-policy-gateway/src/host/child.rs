//! A local MCP server as a child process over stdio, for both hosts: started with its input
//! and output piped (its stderr is the gateway's), written to a line at a time, and stopped
//! the one way: its input closed, then SIGTERM, then SIGKILL, each after [`STOP_GRACE`], and
//! reaped, so no process is left behind.

use std::io::{BufWriter, Write};
use std::process::{ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::host::sync::lock;

/// How long the server has to exit after its input closed (then SIGTERM, then as long again
/// before SIGKILL).
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a server's input buffers before it is written (a burst of lines leaves in one write).
const INPUT_BUFFER: usize = 64 * 1024;

/// A running MCP server over stdio.
pub struct Child {
    /// The program, for messages.
    program: String,
    input: Mutex<Option<BufWriter<ChildStdin>>>,
    process: Mutex<Option<std::process::Child>>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

/// Starts `command` (a program and its arguments); returns the server and its output, to be
/// read with [`crate::host::lines::Lines`].
///
/// ```
/// use mcp_policy_gateway::host::{child, lines::Lines};
/// let (server, output) = child::spawn(&["cat".to_string()]).unwrap();
/// server.send(b"ping");
/// assert_eq!(Lines::new(output).next().unwrap(), b"ping");
/// server.stop(); // input closed; `cat` ends; reaped
/// ```
pub fn spawn(command: &[String]) -> Result<(Child, ChildStdout), Error> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::Usage("no upstream command".into()));
    };
    let mut process = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Upstream(format!("cannot start `{program}`: {e}")))?;
    match (process.stdin.take(), process.stdout.take()) {
        (Some(input), Some(output)) => Ok((
            Child {
                program: program.clone(),
                input: Mutex::new(Some(BufWriter::with_capacity(INPUT_BUFFER, input))),
                process: Mutex::new(Some(process)),
            },
            output,
        )),
        _ => {
            let _ = process.kill();
            let _ = process.wait();
            Err(Error::Upstream(
                "the upstream's pipes could not be opened".into(),
            ))
        }
    }
}

impl Child {
    /// The program that was started.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Writes one line (a newline is added) without sending it yet: [`Child::flush`] sends
    /// what was written. A server that closed its input is let be (its exit is seen by
    /// whoever reads its output).
    pub fn write_line(&self, line: &[u8]) {
        self.write(Some(line), false);
    }

    /// Sends what was written.
    pub fn flush(&self) {
        self.write(None, true);
    }

    /// Writes one line and sends it at once.
    pub fn send(&self, line: &[u8]) {
        self.write(Some(line), true);
    }

    /// Writes `line` (if any) and a newline, then flushes if `flush`; the input is dropped
    /// when the server closed it.
    fn write(&self, line: Option<&[u8]>, flush: bool) {
        let mut input = lock(&self.input);
        let Some(pipe) = input.as_mut() else {
            return;
        };
        let mut written = Ok(());
        if let Some(line) = line {
            written = pipe.write_all(line).and_then(|()| pipe.write_all(b"\n"));
        }
        if flush {
            written = written.and_then(|()| pipe.flush());
        }
        if written.is_err() {
            *input = None;
        }
    }

    /// Waits up to `limit` for the server to exit; its status, if it did.
    pub fn wait(&self, limit: Duration) -> Option<ExitStatus> {
        let mut process = lock(&self.process);
        let process = process.as_mut()?;
        wait_for_exit(process, limit)
    }

    /// Stops the server: its input closed (what was written is sent first), then SIGTERM,
    /// then SIGKILL, each after [`STOP_GRACE`]; it is reaped (blocks until then). Stopping a
    /// stopped server does nothing.
    pub fn stop(&self) {
        if let Some(mut pipe) = lock(&self.input).take() {
            let _ = pipe.flush();
        }
        let Some(mut process) = lock(&self.process).take() else {
            return;
        };
        if wait_for_exit(&mut process, STOP_GRACE).is_some() {
            return;
        }
        if let Ok(pid) = i32::try_from(process.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if wait_for_exit(&mut process, STOP_GRACE).is_some() {
            return;
        }
        let _ = process.kill();
        let _ = process.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_exit(process: &mut std::process::Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match process.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lines::{Line, Lines};

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn lines_go_in_and_come_out() {
        let (child, output) = spawn(&sh("cat")).unwrap();
        child.write_line(b"one");
        child.send(b"two");
        let mut lines = Lines::new(output);
        assert!(matches!(lines.read(None).unwrap(), Line::Text));
        assert_eq!(lines.line(), b"one");
        assert!(matches!(lines.read(None).unwrap(), Line::Text));
        assert_eq!(lines.line(), b"two");
        child.stop();
        assert!(matches!(lines.read(None).unwrap(), Line::End));
    }

    #[test]
    fn a_server_that_ignores_its_input_closing_and_sigterm_is_killed() {
        let (child, _output) = spawn(&sh("trap '' TERM; sleep 60 & wait; sleep 60")).unwrap();
        let started = Instant::now();
        child.stop();
        // Two grace periods, then SIGKILL: stopped, not left running for a minute.
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(child.wait(Duration::ZERO).is_none(), "already reaped");
    }

    #[test]
    fn a_missing_program_is_an_upstream_error() {
        let err = spawn(&["/nonexistent/mcp-server".to_string()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot start `/nonexistent/mcp-server`"),
            "{err}"
        );
        assert!(matches!(spawn(&[]), Err(Error::Usage(_))));
    }
}
