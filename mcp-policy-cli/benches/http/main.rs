//! Load test of the HTTP gateway on loopback, bounded in calls and time.
//!
//! Concurrent callers send `tools/call` (the tool `echo`) over keep-alive HTTP/1.1
//! connections, each caller on its own connection, through each of these paths (rows):
//!
//! - `direct`: a minimal streamable-HTTP MCP server, in this process, that answers at once
//!   (every other path ends at it; it is the baseline of "added p50", and always runs);
//! - `nginx (reverse proxy)`: Debian's nginx as a plain reverse proxy in front of it (the cost
//!   of one HTTP hop), on a free port with a temporary config;
//! - `gateway (memory store)`: `mcp-policy proxy --listen … --keys … --upstream URL` in front
//!   of it, each caller with its own token and MCP session;
//! - `gateway, one session`: the same gateway process, all callers in ONE session (one
//!   `initialize`, by the first caller; the session id and token shared), so CALLERS calls are
//!   in flight within one session (request ids are unique across the callers of a load: a
//!   session routes answers by id);
//! - `gateway, --audit`: a gateway with `--audit FILE` (in the bench's temporary directory);
//!   after all loads it is stopped with SIGTERM (it drains its audit writer then; lines are
//!   written shortly after the answers, so they are not counted during the run), and its file
//!   must hold a line with a `"tool"` key for every call sent through it, warm-up included
//!   (the count is printed; fewer fails the bench);
//! - `gateway, --audit-sync`: the same with `--audit-sync` too, when `mcp-policy proxy --help`
//!   lists that flag (probed once at the start; else the row is left out);
//! - `gateway, --metrics`: a gateway with its Prometheus metrics on (which must have counted
//!   decisions at the end);
//! - `2 gateways, one redis-server`: two gateways on one `redis-server`, callers split
//!   between them;
//! - `gateway (PGO)`, `gateway (PGO), --audit`: with `BENCH_PGO_BIN=PATH` (a build by
//!   scripts/pgo.sh), that binary as two more gateways, plain and with `--audit` (checked as
//!   above);
//! - `agentgateway`, `agentgateway, access log`: with `BENCH_AGENTGATEWAY=PATH` (a binary
//!   built by scripts/agentgateway.sh), agentgateway in front of the upstream, from
//!   benches/peers/agentgateway.yaml.tmpl (rendered into the temporary directory, with its
//!   output in files there) with its access log off and on. Its answers are chunked event
//!   streams, its denials JSON with status 400. Each is checked to answer the measured call
//!   with a result first; if it does not start or answer, why is printed and its row
//!   skipped. It has no per-tool budget: it is not in the budget check.
//!
//! Budget check (first, with the most callers): every caller calls a tool limited to 100
//! calls a minute in all, through the plain gateway and through the two replicas (when their
//! row runs), and exactly 100 must be admitted each time, or the bench fails.
//!
//! `cargo bench -p mcp-policy-cli --bench http [-- CALLERS CALLS ROUNDS]`: CALLERS is one
//! count or a comma-separated list (default `1,4,16`), each measured and reported on its own;
//! CALLS per caller (default 1000, after 50 unmeasured calls each); ROUNDS (default 5). For
//! each caller count every path is loaded once per round, the paths interleaved (the order
//! reversed every other round), and medians over the rounds are reported: calls/s, p50, p99,
//! the added p50 over `direct`, and the CPU time the proxy processes spent per call (from
//! /proc, over all their threads: nginx's master and workers, each gateway's or
//! agentgateway's process). Then comparison lines (metrics on vs off, `--audit` and
//! `--audit-sync` vs plain, one session vs one per caller, PGO vs plain, each row vs nginx,
//! ours vs agentgateway); at the end the audit counts and one markdown table of every path
//! and caller count, for docs. The temporary directory is removed at the end, also when the
//! bench fails.
//!
//! Environment:
//! - `BENCH_GATEWAY_BIN=PATH`: another build of `mcp-policy` as the gateways (default: this
//!   build's; the `--audit-sync` probe asks it);
//! - `BENCH_GATEWAY_THREADS=N`: the gateways' `--threads N` (default: one event loop per CPU
//!   for a single gateway, as its own default; each replica half the CPUs);
//! - `BENCH_GATEWAY_WRAPPER="valgrind --tool=callgrind …"`: the gateways run under that
//!   command (these two apply to the PGO gateways too);
//! - `BENCH_PGO_BIN=PATH`: the PGO rows, above;
//! - `BENCH_AGENTGATEWAY=PATH`: the agentgateway rows, above;
//! - `BENCH_PATHS=name,name,…`: only the rows whose name contains one of these (`direct`
//!   always runs, and the budget check too); default all. nginx or redis-server missing: those
//!   rows are skipped.
//!
//! Modules: `wire` (the HTTP/1.1 client), `upstream` (the in-process MCP server), `procs`
//! (the child processes and their CPU time), `load` (the load driver), `report` (the
//! printing).

mod load;
mod procs;
mod report;
mod upstream;
mod wire;

use std::path::{Path as FsPath, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use load::{LIMIT, Path, Row, Sessions};
use procs::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-policy");

// The rows' names (BENCH_PATHS matches substrings of them).
const DIRECT: &str = "direct";
const NGINX: &str = "nginx (reverse proxy)";
const GATEWAY: &str = "gateway (memory store)";
const ONE_SESSION: &str = "gateway, one session";
const AUDIT: &str = "gateway, --audit";
const AUDIT_SYNC: &str = "gateway, --audit-sync";
const METRICS: &str = "gateway, --metrics";
const REPLICAS: &str = "2 gateways, one redis-server";
const PGO: &str = "gateway (PGO)";
const PGO_AUDIT: &str = "gateway (PGO), --audit";
const AGENTGATEWAY: &str = "agentgateway";
const AGENTGATEWAY_LOG: &str = "agentgateway, access log";

/// Whether the row `name` runs: `BENCH_PATHS` (comma-separated substrings) names it, or is
/// unset or empty; `direct` always does.
fn selected(name: &str) -> bool {
    let Ok(wanted) = std::env::var("BENCH_PATHS") else {
        return true;
    };
    let mut wanted = wanted.split(',').map(str::trim).filter(|w| !w.is_empty());
    name == DIRECT || wanted.clone().next().is_none() || wanted.any(|w| name.contains(w))
}

/// CALLERS (a list), CALLS, ROUNDS from the arguments (flags such as `--bench` skipped).
fn args() -> (Vec<usize>, usize, usize) {
    let raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let caller_counts: Vec<usize> = raw
        .first()
        .map(|a| {
            a.split(',')
                .filter_map(|c| c.parse().ok())
                .filter(|&c| c > 0)
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 4, 16]);
    let calls = raw.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rounds = raw
        .get(2)
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(5)
        .max(1);
    (caller_counts, calls, rounds)
}

/// The policy (`echo` unlimited in effect, `limited` LIMIT a minute in all) and the keys of
/// `callers` callers (`tok-I` → grant `caller-I`) in `dir`.
fn write_config(dir: &FsPath, callers: usize) {
    std::fs::write(
        dir.join("policy.json"),
        format!(
            r#"{{"version":"1","default":"deny","tools":{{
              "echo":{{"limits":[{{"counter":"echo","window":"minute","max":100000000}}]}},
              "limited":{{"limits":[{{"counter":"limited","window":"minute","max":{LIMIT},"scope":"global"}}]}}}}}}"#
        ),
    )
    .unwrap();
    let keys: Vec<Value> = (0..callers)
        .map(|i| {
            let out = Command::new(BIN)
                .args(["keys", "hash", &format!("tok-{i}")])
                .output()
                .unwrap();
            json!({"sha256": String::from_utf8(out.stdout).unwrap().trim(), "grant": format!("caller-{i}")})
        })
        .collect();
    std::fs::write(dir.join("keys.json"), json!({ "keys": keys }).to_string()).unwrap();
}

/// The bench's temporary directory (config files, nginx's, agentgateway's configs and logs,
/// the audit files), removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("mcp-policy-http-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A gateway with an audit file, checked once stopped.
struct Audited {
    row: &'static str,
    proc_: Proc,
    file: PathBuf,
}

impl Audited {
    /// Stops the gateway (SIGTERM: it drains its audit writer) and counts the file's call
    /// lines (JSON objects with a `"tool"` key) against the calls `sent`; an error when
    /// fewer. The file is removed.
    fn check(mut self, sent: usize) -> Result<(), String> {
        let clean = self.proc_.stop();
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        let _ = std::fs::remove_file(&self.file);
        let lines = text
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v.get("tool").is_some()))
            .count();
        println!(
            "{}: {lines} audit lines with a \"tool\" key for {sent} calls sent{}",
            self.row,
            if clean {
                ""
            } else {
                " (it did not exit on SIGTERM within 10 s: killed)"
            },
        );
        match lines >= sent {
            true => Ok(()),
            false => Err(format!(
                "{}: {lines} audit lines for {sent} calls",
                self.row
            )),
        }
    }
}

fn main() {
    let (caller_counts, calls, rounds) = args();
    let callers = caller_counts.iter().copied().max().unwrap_or(16);
    // Declared before the processes, so removed after they have stopped, on a panic too.
    let temp = TempDir::new();
    let dir = temp.0.clone();
    write_config(&dir, callers);
    let bin = std::env::var("BENCH_GATEWAY_BIN").unwrap_or_else(|_| BIN.to_owned());

    let up = upstream::start();
    println!(
        "callers {caller_counts:?}, each sending {calls} calls (keep-alive HTTP/1.1), tools/call, \
         loopback; {rounds} rounds per caller count, the paths interleaved in each"
    );
    // Every proxy is up for the whole run; each round loads each path in turn (the order
    // alternates), so that a change in the machine's load hits them alike. `keep`: stopped in
    // the reverse order of their start, at the end.
    let mut keep: Vec<Proc> = Vec::new();
    let mut audited: Vec<Audited> = Vec::new();
    let mut paths = vec![Path::new(
        DIRECT,
        vec![format!("127.0.0.1:{up}")],
        Vec::new(),
    )];
    if selected(NGINX) {
        match procs::nginx(&dir, up) {
            Some((p, addr)) => {
                let mut pids = vec![p.id()];
                pids.extend(procs::children(p.id()));
                paths.push(Path::new(NGINX, vec![addr], pids));
                keep.push(p);
            }
            None => println!("(nginx not found: its row is skipped)"),
        }
    }
    // The plain gateway always runs: the budget check goes through it.
    let (gw, gw_addr) = procs::gateway(&bin, &dir, up, None, "bench-mem", &[]);
    if selected(GATEWAY) {
        paths.push(Path::new(GATEWAY, vec![gw_addr.clone()], vec![gw.id()]));
    }
    if selected(ONE_SESSION) {
        let mut one = Path::new(ONE_SESSION, vec![gw_addr.clone()], vec![gw.id()]);
        one.sessions = Sessions::Shared;
        paths.push(one);
    }
    keep.push(gw);
    // The other gateways: (row, binary, arguments, audit file).
    // The audit logs in a directory of their own, as in a deployment (/var/log, not beside the
    // policy in /etc): the gateway watches the policy's directory, and every write to a file
    // there is an inotify event it is woken for (docs/MCP.md, "The audit log").
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let audit_file = |name: &str| logs.join(name).display().to_string();
    let mut others: Vec<(&'static str, String, Vec<String>)> = vec![(
        AUDIT,
        bin.clone(),
        vec!["--audit".into(), audit_file("audit.jsonl")],
    )];
    if procs::has_flag(&bin, "--audit-sync") {
        others.push((
            AUDIT_SYNC,
            bin.clone(),
            vec![
                "--audit".into(),
                audit_file("audit-sync.jsonl"),
                "--audit-sync".into(),
            ],
        ));
    } else {
        println!("(the gateway has no --audit-sync: its row is left out)");
    }
    others.push((METRICS, bin.clone(), vec!["--metrics".into()]));
    if let Ok(pgo) = std::env::var("BENCH_PGO_BIN") {
        others.push((PGO, pgo.clone(), Vec::new()));
        others.push((
            PGO_AUDIT,
            pgo,
            vec!["--audit".into(), audit_file("audit-pgo.jsonl")],
        ));
    }
    let mut metrics_addr = None;
    for (row, row_bin, extra) in others.into_iter().filter(|o| selected(o.0)) {
        let (p, addr) = procs::gateway(&row_bin, &dir, up, None, "bench-mem", &extra);
        paths.push(Path::new(row, vec![addr.clone()], vec![p.id()]));
        match extra.iter().position(|a| a == "--audit") {
            Some(i) => audited.push(Audited {
                row,
                proc_: p,
                file: PathBuf::from(&extra[i + 1]),
            }),
            None => keep.push(p),
        }
        if row == METRICS {
            metrics_addr = Some(addr);
        }
    }
    let mut replica_addrs = None;
    if selected(REPLICAS) {
        match procs::redis() {
            Some((redis, url)) => {
                keep.push(redis);
                let prefix = format!("bench-{}", std::process::id());
                let (a_proc, a) = procs::gateway(&bin, &dir, up, Some(&url), &prefix, &[]);
                let (b_proc, b) = procs::gateway(&bin, &dir, up, Some(&url), &prefix, &[]);
                let pids = vec![a_proc.id(), b_proc.id()];
                keep.extend([a_proc, b_proc]);
                paths.push(Path::new(REPLICAS, vec![a.clone(), b.clone()], pids));
                replica_addrs = Some(vec![a, b]);
            }
            None => println!("(redis-server not found: the replicas' row is skipped)"),
        }
    }
    if let Ok(ag) = std::env::var("BENCH_AGENTGATEWAY") {
        for (row, level, name) in [
            (AGENTGATEWAY, "info,request=off", "agentgateway"),
            (AGENTGATEWAY_LOG, "info", "agentgateway-log"),
        ] {
            if !selected(row) {
                continue;
            }
            // On an error the process, moved into the closure, is dropped: stopped.
            match procs::agentgateway(&ag, &dir, up, name, level)
                .and_then(|(p, addr)| load::probe(&addr).map(|()| (p, addr)))
            {
                Ok((p, addr)) => {
                    paths.push(Path::new(row, vec![addr], vec![p.id()]));
                    keep.push(p);
                }
                Err(e) => println!("({row}: skipped: {e})"),
            }
        }
    }

    // The budget: exactly LIMIT admitted through one gateway, and through the two replicas.
    let admitted_one = load::load(&[gw_addr], callers, 10, Sessions::PerCaller, true).admitted;
    let admitted_two = replica_addrs
        .as_ref()
        .and_then(|addrs| load::load(addrs, callers, 10, Sessions::PerCaller, true).admitted);
    println!(
        "budget check ({LIMIT}/min in all, {callers} callers): one gateway admitted {}, two replicas {}",
        admitted_one.map_or("–".to_owned(), |a| a.to_string()),
        admitted_two.map_or("–".to_owned(), |a| a.to_string()),
    );

    let mut all = Vec::new();
    for &n_callers in &caller_counts {
        let mut rows: Vec<Vec<Row>> = paths.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..paths.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                rows[i].push(load::measure(&mut paths[i], n_callers, calls));
            }
        }
        let medians = report::Medians::new(n_callers, rounds, &paths, &rows);
        report::table(&medians, &rows, |name| match name {
            GATEWAY => admitted_one,
            REPLICAS => admitted_two,
            _ => None,
        });
        report::comparisons(&medians);
        all.push(medians);
    }

    // The metrics gateway counted every call it decided.
    let counted = metrics_addr.map(|addr| {
        let text = wire::metrics_text(&addr);
        let counted: f64 = text
            .lines()
            .filter(|l| l.starts_with("mcp_policy_decisions_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        (counted, text)
    });
    // The audit files, each read once its gateway has stopped.
    println!();
    let audit_errors: Vec<String> = audited
        .into_iter()
        .filter_map(|a| {
            let sent = paths.iter().find(|p| p.name == a.row).map_or(0, |p| p.sent);
            a.check(sent).err()
        })
        .collect();
    report::markdown(&all);

    assert_eq!(
        admitted_one,
        Some(LIMIT),
        "the budget was exceeded or underused"
    );
    if replica_addrs.is_some() {
        assert_eq!(
            admitted_two,
            Some(LIMIT),
            "the budget was exceeded or underused (replicas)"
        );
    }
    if let Some((counted, text)) = counted {
        assert!(
            counted > 0.0,
            "the metrics gateway counted no decision:\n{text}"
        );
    }
    assert!(
        audit_errors.is_empty(),
        "audit lines missing: {audit_errors:?}"
    );
    while let Some(p) = keep.pop() {
        drop(p);
    }
}
