//! Watching the files a running proxy reads (the policy, the keys file): a change that loads
//! is swapped in, a change that does not is reported and the running version stays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_policy::Policy;

use crate::host::audit::Audit;
use crate::observe::Metrics;
use crate::options::load_error_lines;
use crate::store::Gate;

/// Watches `path`'s directory (editors replace files by renaming over them, and Kubernetes
/// swaps a ConfigMap's files by renaming a directory beside them) and calls `changed` with
/// the file's new text whenever it differs from the last seen (`initial` at first). A burst
/// of events is let settle for 50 ms and read once. Events that only say a file was opened,
/// read or closed unwritten are not changes: the watcher's own reading makes them, and
/// taking them for changes re-read the file 20 times a second forever. The watcher stops
/// when the returned value is dropped.
pub fn watch_file(
    path: &Path,
    initial: String,
    what: &'static str,
    changed: impl Fn(&str) + Send + 'static,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.as_ref().is_ok_and(|e| !may_change(&e.kind)) {
                return;
            }
            let _ = tx.send(());
        }) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("mcp-policy proxy: cannot watch the {what} file: {e}");
                return None;
            }
        };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        eprintln!("mcp-policy proxy: cannot watch {}: {e}", dir.display());
        return None;
    }
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut last = initial;
        while rx.recv().is_ok() {
            std::thread::sleep(Duration::from_millis(50));
            while rx.try_recv().is_ok() {}
            let Ok(now) = std::fs::read_to_string(&path) else {
                continue;
            };
            if now == last {
                continue;
            }
            last = now;
            changed(&last);
        }
    });
    Some(watcher)
}

/// Whether an event of this kind may mean a file's content changed (a write, a create, a
/// rename, a removal, a metadata change, or an event notify could not classify).
fn may_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

/// A new policy text: swapped in when it loads (counters kept where their window and reset
/// are unchanged), else reported on stderr and in the audit log while the running policy
/// stays.
pub fn reload_policy(
    gate: &Gate,
    audit: &Audit,
    metrics: Option<&Metrics>,
    shown: &str,
    text: &str,
) {
    match Policy::from_json_str(text) {
        Ok(policy) => {
            let revision = policy.revision().to_owned();
            gate.reload(policy);
            if let Some(metrics) = metrics {
                metrics.reload("policy", true);
                metrics.policy_revision(&revision);
            }
            eprintln!("mcp-policy proxy: {shown}: reloaded (revision {revision})");
            audit.line(vec![
                ("event", "reload".into()),
                ("policy", shown.into()),
                ("revision", revision.into()),
            ]);
        }
        Err(errors) => {
            if let Some(metrics) = metrics {
                metrics.reload("policy", false);
            }
            let lines = load_error_lines(shown, &errors);
            for line in &lines {
                eprintln!("{line}");
            }
            eprintln!(
                "mcp-policy proxy: {shown}: the change does not load; the running policy stays"
            );
            audit.line(vec![
                ("event", "reload_rejected".into()),
                ("policy", shown.into()),
                ("errors", lines.into()),
            ]);
        }
    }
}

/// Watches a host's policy file: each change that loads is swapped into the host's engine
/// ([`reload_policy`]). `parts` finds the engine and the audit log in the host. The watcher
/// stops when the returned value is dropped: a host keeps it for as long as it serves.
pub fn watch_policy<H: Send + Sync + 'static>(
    host: &std::sync::Arc<H>,
    path: &Path,
    text: String,
    parts: fn(&H) -> (&Gate, &Audit, Option<&Metrics>),
) -> Option<notify::RecommendedWatcher> {
    let weak = std::sync::Arc::downgrade(host);
    let shown = path.display().to_string();
    watch_file(path, text, "policy", move |now| {
        if let Some(host) = weak.upgrade() {
            let (gate, audit, metrics) = parts(&host);
            reload_policy(gate, audit, metrics, &shown, now);
        }
    })
}
