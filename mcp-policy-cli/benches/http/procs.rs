//! The child processes behind the paths, and what the bench reads of them: starting nginx,
//! redis-server, our gateways (`mcp-policy proxy`, optionally under `BENCH_GATEWAY_WRAPPER`)
//! and agentgateway on free loopback ports, each in the bench's temporary directory; stopping
//! them (SIGTERM, then SIGKILL) when dropped; and the CPU time they spent, from /proc.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, stopped (SIGTERM, then SIGKILL after 10 s) when dropped. `group`: the
/// child leads a process group of its own, and the signals go to the whole group, so that a
/// gateway under `BENCH_GATEWAY_WRAPPER` stops with its wrapper (strace, for one, detaches
/// on SIGTERM and leaves the traced gateway running).
pub struct Proc {
    child: Child,
    group: bool,
}

impl Proc {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        let target = match self.group {
            true => format!("-{}", self.child.id()),
            false => self.child.id().to_string(),
        };
        let _ = Command::new("kill").args([name, "--", &target]).status();
    }

    /// Stops the process: SIGTERM, and SIGKILL if it has not exited 10 s later. Whether it
    /// exited on SIGTERM (a gateway drains its audit writer then).
    pub fn stop(&mut self) -> bool {
        if self.child.try_wait().ok().flatten().is_some() {
            return true;
        }
        self.signal("-TERM");
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 10 s) until `port` accepts connections; an error if it never does or if
/// `child` exits first.
fn wait_port(port: u16, child: &mut Child) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "it exited ({status}) before its port {port} opened"
            ));
        }
        if Instant::now() > until {
            return Err(format!("its port {port} did not open within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Debian's nginx as a plain reverse proxy to the upstream (`None`: not installed).
pub fn nginx(dir: &Path, upstream: u16) -> Option<(Proc, String)> {
    let bin = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())?;
    let port = free_port();
    let tmp = dir.join("nginx");
    std::fs::create_dir_all(tmp.join("tmp")).unwrap();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let t = tmp.display();
    let conf = format!(
        "{user}worker_processes 2;\npid {t}/nginx.pid;\nerror_log {t}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {t}/tmp;\n  proxy_temp_path {t}/tmp;\n\
           fastcgi_temp_path {t}/tmp;\n  uwsgi_temp_path {t}/tmp;\n  scgi_temp_path {t}/tmp;\n\
           upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    keepalive_requests 1000000;\n    location / {{\n      proxy_pass http://up;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    let path = tmp.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut child = Command::new(bin)
        .args(["-p", &tmp.display().to_string(), "-c"])
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    wait_port(port, &mut child).unwrap();
    Some((
        Proc {
            child,
            group: false,
        },
        format!("127.0.0.1:{port}"),
    ))
}

/// A redis-server without persistence (`None`: not installed); its URL.
pub fn redis() -> Option<(Proc, String)> {
    let port = free_port();
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port, &mut child).unwrap();
    Some((
        Proc {
            child,
            group: false,
        },
        format!("redis://127.0.0.1:{port}/"),
    ))
}

/// The gateways' `--threads`: `BENCH_GATEWAY_THREADS`, else the gateway's default (one event
/// loop per CPU) for a single gateway, and for each of the two replicas, which share this
/// machine, half the CPUs (at least one), as docs/GATEWAY.md advises for replicas on one host.
fn threads(replica: bool) -> String {
    if let Ok(t) = std::env::var("BENCH_GATEWAY_THREADS") {
        return t;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match replica {
        true => (cpus / 2).max(1).to_string(),
        false => cpus.to_string(),
    }
}

/// Whether `bin proxy --help` lists `flag` (a build without it: its row is left out).
pub fn has_flag(bin: &str, flag: &str) -> bool {
    Command::new(bin)
        .args(["proxy", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(flag))
}

/// `bin proxy --listen 127.0.0.1:0 …` in front of the upstream, with the policy and keys in
/// `dir`, counters in `store` (else memory), and `extra` arguments; its address.
pub fn gateway(
    bin: &str,
    dir: &Path,
    upstream: u16,
    store: Option<&str>,
    prefix: &str,
    extra: &[String],
) -> (Proc, String) {
    // `BENCH_GATEWAY_WRAPPER`: a command the gateways run under (a profiler).
    let wrapper = std::env::var("BENCH_GATEWAY_WRAPPER").unwrap_or_default();
    let mut wrapper = wrapper.split_whitespace();
    let mut cmd = match wrapper.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(wrapper).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    cmd.args(["proxy", "--listen", "127.0.0.1:0", "--policy"])
        .arg(dir.join("policy.json"))
        .arg("--keys")
        .arg(dir.join("keys.json"))
        .args(["--max-sessions", "4096"])
        .args(["--threads", &threads(store.is_some())])
        .args(["--upstream", &format!("http://127.0.0.1:{upstream}/mcp")])
        .args(extra)
        .env("MCP_POLICY_REDIS_PREFIX", prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    cmd.process_group(0);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("mcp-policy proxy: listening on http://")
                .map(|a| a.trim_end_matches("/mcp").to_owned())
        })
        .expect("the gateway starts");
    std::thread::spawn(move || for _ in lines {});
    (Proc { child, group: true }, addr)
}

/// agentgateway (`bin`, built by scripts/agentgateway.sh) in front of the upstream, from
/// benches/peers/agentgateway.yaml.tmpl rendered into `dir` as `NAME.yaml` with `log_level`
/// (`info`: access log on; `info,request=off`: off). Its stdout and stderr go to `NAME.out`
/// and `NAME.err` in `dir` (its log writer drops lines rather than block, so they must be
/// drained); RUST_LOG is removed from its environment (it would replace the level).
pub fn agentgateway(
    bin: &str,
    dir: &Path,
    upstream: u16,
    name: &str,
    log_level: &str,
) -> Result<(Proc, String), String> {
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/agentgateway.yaml.tmpl");
    let template =
        std::fs::read_to_string(&template).map_err(|e| format!("{}: {e}", template.display()))?;
    let port = free_port();
    let config = template
        .replace("{{LISTEN_PORT}}", &port.to_string())
        .replace("{{UPSTREAM_PORT}}", &upstream.to_string())
        .replace("{{LOG_LEVEL}}", log_level);
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, config).unwrap();
    let out = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
    let err = std::fs::File::create(dir.join(format!("{name}.err"))).unwrap();
    let mut child = Command::new(bin)
        .arg("-f")
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{bin}: {e}"))?;
    let started = wait_port(port, &mut child);
    let proc_ = Proc {
        child,
        group: false,
    };
    match started {
        Ok(()) => Ok((proc_, format!("127.0.0.1:{port}"))),
        Err(e) => {
            drop(proc_);
            // Its log: on stdout (and anything else on stderr).
            let log: String = ["out", "err"]
                .iter()
                .filter_map(|ext| std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).ok())
                .collect();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            match tail.is_empty() {
                true => Err(e),
                false => {
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    Err(format!("{e}; its output ends:\n{}", tail.join("\n")))
                }
            }
        }
    }
}

/// User + system CPU ticks of these processes (all their threads), from /proc.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            let rest = stat.rsplit_once(") ")?.1;
            let fields: Vec<&str> = rest.split(' ').collect();
            // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The child processes of `pid` (nginx's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}
