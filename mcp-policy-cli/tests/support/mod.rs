//! What the command's subprocess tests share: temporary directories, the repository root,
//! and the pinned MCP clients and servers of `tests/e2e/` (installed once per test run).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root (the example policies, docs and `target/` live there).
pub fn repo() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map_or(dir.clone(), Path::to_path_buf)
}

/// A temporary directory removed on drop.
pub struct Temp(pub PathBuf);

impl Temp {
    /// A fresh directory named after the test binary, `name` and this process.
    pub fn new(name: &str) -> Temp {
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("mcp-policy-{binary}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }
    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Writes a file; returns its path as text.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
