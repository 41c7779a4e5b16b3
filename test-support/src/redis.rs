//! A real `redis-server` per test ([`RedisServer`]: on a free loopback port, persistence
//! off, killed on drop; paused, resumed, killed and restarted on demand), and [`runtime`], the
//! multi-threaded runtime the async store tests run on.
//!
//! Debian's package (`apt-get install redis-server`) provides the binary; `scripts/test.sh`
//! installs it. Without it a test using this module fails, naming the package.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::http::free_port;

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

fn binary() -> &'static str {
    if Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        panic!(
            "redis-server is not installed: `apt-get update && apt-get install -y redis-server` (Debian's package)"
        );
    }
    "redis-server"
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server on a free port with extra `--name value` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::start_on(free_port(), extra)
    }

    /// A free loopback port, for a server started later with [`start_on`](Self::start_on).
    pub fn free_port() -> u16 {
        free_port()
    }

    /// Starts a server on `port` with extra `--name value` arguments.
    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mcp-policy-redis-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the server answers PING (at most 10 s).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answered = ::redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut conn| ::redis::cmd("PING").query::<String>(&mut conn));
            if answered.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's address, as a `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id (it must be running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Kills the server (SIGKILL: no shutdown, nothing saved).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// A plain blocking connection, for setting up and inspecting.
    pub fn conn(&self) -> ::redis::Connection {
        ::redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("a connection")
    }

    /// Runs one command and returns its answer.
    pub fn cmd<T: ::redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let (name, rest) = args.split_first().expect("a command");
        let mut cmd = ::redis::cmd(name);
        for a in rest {
            cmd.arg(*a);
        }
        cmd.query(&mut self.conn()).expect("the command succeeds")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused server must be resumed to die promptly on some systems; SIGKILL works
            // on stopped processes too, but resume first to be safe.
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A multi-threaded runtime for a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[cfg(test)]
mod tests {
    use super::RedisServer;
    use crate::process::{alive, wait_dead};

    #[test]
    fn a_server_answers_until_dropped() {
        let server = RedisServer::start();
        let pong: String = server.cmd(&["PING"]);
        assert_eq!(pong, "PONG");
        let pid = server.pid();
        assert!(alive(pid));
        drop(server);
        assert!(wait_dead(pid));
    }
}
