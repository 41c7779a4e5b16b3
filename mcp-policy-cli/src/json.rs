//! JSON helpers for the command: strict parsing (duplicate keys are errors), loading a
//! policy with its load errors printed as `FILE:LINE:COL: POINTER: MESSAGE`, and finding the
//! line and column of the value at a JSON Pointer.

use std::path::Path;

use mcp_policy::Policy;
use serde_json::Value;

/// Parses JSON text, rejecting a key repeated in one object (a gateway and the server behind
/// it must never read different values from one text). The error says where.
pub fn parse_strict(text: &str) -> Result<Value, String> {
    mcp_policy::source::parse_json(text).map_err(|e| e.to_string())
}

/// A loaded policy with its source text and parsed value.
pub struct Loaded {
    pub policy: Policy,
    pub value: Value,
}

/// Loads a policy file. On failure, prints every problem to standard error as
/// `FILE:LINE:COL: POINTER: MESSAGE` and returns `Err(())`.
pub fn load_policy(path: &Path) -> Result<Loaded, ()> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{shown}: cannot read the policy: {e}");
            return Err(());
        }
    };
    match Policy::from_json_str(&text) {
        Ok(policy) => match parse_strict(&text) {
            Ok(value) => Ok(Loaded { policy, value }),
            Err(e) => {
                eprintln!("{shown}:1:1: (document): {e}");
                Err(())
            }
        },
        Err(errors) => {
            for line in load_error_lines(&shown.to_string(), &errors) {
                eprintln!("{line}");
            }
            Err(())
        }
    }
}

pub use mcp_policy_gateway::options::load_error_lines;

/// Finds the line and column of values in one JSON text by JSON Pointer.
pub struct Positions {
    text: String,
}

impl Positions {
    /// Keeps `text` for lookups.
    pub fn new(text: &str) -> Positions {
        Positions {
            text: text.to_owned(),
        }
    }

    /// The position of the value at `pointer`, else of its nearest existing ancestor.
    pub fn find(&self, pointer: &str) -> (usize, usize) {
        mcp_policy::source::locate(&self.text, pointer).map_or((1, 1), |p| (p.line, p.column))
    }
}
