//! The command's exit codes (docs/CLI.md): a leaf every command uses.

/// Success.
pub const OK: u8 = 0;
/// The command ran and found failures (a test failed, an approval was unknown, the MCP
/// server behind the proxy exited on its own).
pub const FAILURES: u8 = 1;
/// Unusable policy or usage.
pub const UNUSABLE: u8 = 2;
