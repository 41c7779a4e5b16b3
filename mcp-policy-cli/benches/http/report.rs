//! The printing: for each caller count, the table of the paths' medians (calls/s, p50, p99,
//! added p50 over `direct`, the proxy's CPU per call, the budget check's admitted calls) and
//! each round's figures, then the comparison lines (metrics on vs off, `--audit` and
//! `--audit-sync` vs plain, one session vs one per caller, PGO vs plain, each row vs nginx,
//! ours vs agentgateway); at the end, one markdown table of every caller count, for docs.
//!
//! A ratio is `row / baseline`: of CPU per call, of added p50 (p50 minus direct's), of
//! calls/s. `NaN`: a figure is missing (no CPU for `direct`) or the baseline is zero.

use crate::load::{LIMIT, Path, Row, Summary};
use crate::{
    AGENTGATEWAY, AGENTGATEWAY_LOG, AUDIT, AUDIT_SYNC, DIRECT, GATEWAY, METRICS, NGINX,
    ONE_SESSION, PGO, PGO_AUDIT,
};

/// One caller count's medians, by path.
pub struct Medians {
    pub callers: usize,
    rounds: usize,
    names: Vec<String>,
    summaries: Vec<Summary>,
    direct_p50: f64,
}

impl Medians {
    pub fn new(callers: usize, rounds: usize, paths: &[Path], rows: &[Vec<Row>]) -> Medians {
        let summaries: Vec<Summary> = rows.iter().map(|r| Summary::of(r)).collect();
        let direct = paths.iter().position(|p| p.name == DIRECT).unwrap();
        Medians {
            callers,
            rounds,
            names: paths.iter().map(|p| p.name.clone()).collect(),
            direct_p50: summaries[direct].p50,
            summaries,
        }
    }

    fn get(&self, name: &str) -> Option<&Summary> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(&self.summaries[i])
    }

    /// p50 over direct's, in seconds.
    fn added(&self, s: &Summary) -> f64 {
        s.p50 - self.direct_p50
    }

    /// `row` over `base`: (CPU per call, added p50, calls/s); `None` when either is absent.
    fn ratios(&self, row: &str, base: &str) -> Option<(f64, f64, f64)> {
        let (r, b) = (self.get(row)?, self.get(base)?);
        let cpu = match (r.cpu, b.cpu) {
            (Some(r), Some(b)) => ratio(r, b),
            _ => f64::NAN,
        };
        Some((
            cpu,
            ratio(self.added(r), self.added(b)),
            ratio(r.rate, b.rate),
        ))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

fn micros(secs: f64) -> String {
    format!("{:.0} µs", secs * 1e6)
}

/// The caller count's table and each round's figures; `admitted`: the budget check's count
/// for a row, if it had one.
pub fn table(m: &Medians, rows: &[Vec<Row>], admitted: impl Fn(&str) -> Option<usize>) {
    println!(
        "\n{} callers:\n\n| path | calls/s | p50 | p99 | added p50 | proxy CPU per call | budget ({LIMIT}/min) admitted |",
        m.callers
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, s) in m.names.iter().zip(&m.summaries) {
        println!(
            "| {name} | {:.0} | {} | {} | {} | {} | {} |",
            s.rate,
            micros(s.p50),
            micros(s.p99),
            match name == DIRECT {
                true => "–".to_owned(),
                false => micros(m.added(s)),
            },
            s.cpu.map_or("–".to_owned(), |c| format!("{c:.1} µs")),
            admitted(name).map_or("–".to_owned(), |a| a.to_string()),
        );
    }
    println!("\nper round (calls/s; p50 µs):");
    for (name, rs) in m.names.iter().zip(rows) {
        let cells: Vec<String> = rs
            .iter()
            .map(|r| {
                format!(
                    "{:.0}; {:.0}",
                    r.calls as f64 / r.secs,
                    r.p50.as_secs_f64() * 1e6
                )
            })
            .collect();
        println!("  {name}: {}", cells.join(" | "));
    }
}

/// The comparison lines of one caller count (those whose rows ran).
pub fn comparisons(m: &Medians) {
    let (n, rounds) = (m.callers, m.rounds);
    println!();
    if let Some((cpu, added, rate)) = m.ratios(METRICS, GATEWAY) {
        println!(
            "{n} callers, metrics on vs off (medians of {rounds} rounds): CPU per call {cpu:.3}x, \
             added p50 {added:.3}x (target <= 1.03x each), throughput {rate:.3}x"
        );
    }
    for (row, label) in [
        (AUDIT, "--audit vs plain"),
        (AUDIT_SYNC, "--audit-sync vs plain"),
        (PGO, "PGO vs plain"),
    ] {
        if let Some((cpu, added, rate)) = m.ratios(row, GATEWAY) {
            println!(
                "{n} callers, {label}: CPU per call {cpu:.2}×, added p50 {added:.2}×, throughput {rate:.2}×"
            );
        }
    }
    if let Some((cpu, added, _)) = m.ratios(ONE_SESSION, GATEWAY) {
        println!(
            "{n} callers, one session vs one per caller: CPU per call {cpu:.2}×, added p50 {added:.2}×"
        );
    }
    if let Some((cpu, added, rate)) = m.ratios(GATEWAY, NGINX) {
        println!(
            "{n} callers, gateway vs nginx (medians of {rounds} rounds): added p50 {added:.2}x (target <= 1.5x), \
             throughput {rate:.2}x (target >= 0.7x), CPU per call {cpu:.2}x"
        );
    }
    for name in m
        .names
        .iter()
        .filter(|n| ![DIRECT, NGINX, GATEWAY].contains(&n.as_str()))
    {
        if let Some((cpu, added, rate)) = m.ratios(name, NGINX) {
            println!(
                "{n} callers, {name} vs nginx: added p50 {added:.2}×, throughput {rate:.2}×, CPU per call {cpu:.2}×"
            );
        }
    }
    for (ours, theirs, label) in [
        (GATEWAY, AGENTGATEWAY, "gateway vs agentgateway"),
        (
            AUDIT,
            AGENTGATEWAY_LOG,
            "gateway --audit vs agentgateway with access log",
        ),
        (PGO, AGENTGATEWAY, "gateway (PGO) vs agentgateway"),
        (
            PGO_AUDIT,
            AGENTGATEWAY_LOG,
            "gateway (PGO) --audit vs agentgateway with access log",
        ),
    ] {
        if let Some((cpu, added, rate)) = m.ratios(ours, theirs) {
            println!(
                "{n} callers, {label}: added p50 {added:.2}×, throughput {rate:.2}×, CPU per call {cpu:.2}×"
            );
        }
    }
}

/// One markdown table of all caller counts: a row per path, a column per caller count.
pub fn markdown(all: &[Medians]) {
    let Some(first) = all.first() else { return };
    println!(
        "\nall caller counts (medians of {} rounds; each cell: calls/s · added p50 · proxy CPU per call):\n",
        first.rounds
    );
    let heads: Vec<String> = all
        .iter()
        .map(|m| match m.callers {
            1 => "1 caller".to_owned(),
            c => format!("{c} callers"),
        })
        .collect();
    println!("| path | {} |", heads.join(" | "));
    println!("|---|{}", "---|".repeat(all.len()));
    for name in &first.names {
        let cells: Vec<String> = all
            .iter()
            .map(|m| {
                let Some(s) = m.get(name) else {
                    return "–".to_owned();
                };
                format!(
                    "{:.0} · {} · {}",
                    s.rate,
                    match name == DIRECT {
                        true => "–".to_owned(),
                        false => micros(m.added(s)),
                    },
                    s.cpu.map_or("–".to_owned(), |c| format!("{c:.1} µs")),
                )
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}
