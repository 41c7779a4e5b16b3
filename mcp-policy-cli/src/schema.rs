//! `mcp-policy schema`: the JSON Schema of the policy document (also `docs/policy.schema.json`).

use std::io::Write;

use crate::exit::{OK, UNUSABLE};

/// The policy document's JSON Schema (draft 2020-12), as shipped in `docs/policy.schema.json`.
pub const POLICY_SCHEMA: &str = mcp_policy::POLICY_JSON_SCHEMA;

/// Prints the schema exactly as the file holds it.
pub fn run() -> u8 {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(POLICY_SCHEMA.as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("cannot write the schema: {e}");
            UNUSABLE
        }
    }
}
