//! What a host learned from its server's `tools/list` results and shares between its
//! gateways: each tool's annotations, so that a policy that trusts them
//! (`"trust_annotations": true`) can judge a call by them. A tool never seen listed has no
//! entry, and is judged as if its hints were absent.

use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::RwLock;
use serde_json::Value;

use crate::subject::Hints;

/// At most this many tools are remembered (a server listing more is not trusted beyond).
const MAX_TOOLS: usize = 65_536;

/// The tools' annotations seen in list results, shared by the gateways of one host (it
/// travels in [`GatewayOptions`](super::GatewayOptions), which every gateway of a host
/// clones).
///
/// ```
/// use mcp_policy::mcp::Catalog;
/// let catalog = Catalog::default();
/// catalog.learn_tools(&serde_json::json!({"tools": [
///     {"name": "wipe", "annotations": {"destructiveHint": true}},
///     {"name": "peek", "annotations": {"readOnlyHint": true}}]}));
/// assert!(catalog.hints("peek").unwrap().read_only());
/// assert!(catalog.hints("wipe").unwrap().destructive());
/// assert_eq!(catalog.hints("unlisted"), None);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    tools: Arc<RwLock<HashMap<Box<str>, Hints>>>,
}

impl Catalog {
    /// Learns the tools of one page of a `tools/list` result (the result object): each
    /// listed tool's hints replace what was known of it.
    pub fn learn_tools(&self, result: &Value) {
        let Some(Value::Array(tools)) = result.get("tools") else {
            return;
        };
        let mut known = self.tools.write();
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let hints = Hints::of_tool(tool);
            if let Some(slot) = known.get_mut(name) {
                *slot = hints;
            } else if known.len() < MAX_TOOLS {
                known.insert(name.into(), hints);
            }
        }
    }

    /// The hints of `tool`, if it was seen listed.
    pub fn hints(&self, tool: &str) -> Option<Hints> {
        self.tools.read().get(tool).copied()
    }
}
