//! The repository root, the tools a test needs, and the pinned MCP clients and servers of
//! `mcp-policy-cli/tests/e2e/` (`setup.sh` installs them once into `target/e2e` and lists
//! them in `target/e2e/paths.json`).
//!
//! A missing tool skips the test with a loud message, except in CI (the `CI` environment
//! variable set), where it fails it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root (the example policies, docs and `target/` live there).
pub fn repo() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map_or(dir.clone(), Path::to_path_buf)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether every tool is installed. Where one is missing the test is skipped with a loud
/// message, except in CI (the `CI` environment variable set), where it fails.
pub fn need(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: {missing:?} missing; these tests never skip in CI"
    );
    eprintln!("\n*** SKIPPING a test: {missing:?} not found. ***\n");
    false
}

/// The pinned clients and servers (`paths.json` of `tests/e2e/setup.sh`, which runs once per
/// test binary into `target/e2e`), or `None` where Python or Node is missing outside CI.
pub fn peers() -> Option<&'static Value> {
    static PEERS: OnceLock<Option<Value>> = OnceLock::new();
    PEERS
        .get_or_init(|| {
            if !need(&["python3", "node", "npm"]) {
                return None;
            }
            let dir = repo().join("target/e2e");
            let status = Command::new("bash")
                .arg(repo().join("mcp-policy-cli/tests/e2e/setup.sh"))
                .arg(&dir)
                .stdout(Stdio::null())
                .status()
                .expect("setup.sh runs");
            assert!(status.success(), "tests/e2e/setup.sh failed");
            let paths = std::fs::read_to_string(dir.join("paths.json")).expect("paths.json");
            Some(serde_json::from_str(&paths).expect("paths.json is JSON"))
        })
        .as_ref()
}

/// One entry of `paths.json`.
pub fn peer(peers: &Value, key: &str) -> String {
    peers[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing from paths.json"))
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_repository_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(super::repo().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
