//! The top level of a document: `version`, `default`, `hide`, `all_tools`, `tools` (each
//! entry read by `tool`), `approvals` and `description`.

use serde_json::{Map, Value};

use super::{DEFAULT_APPROVAL_TTL_MS, DefaultAction, Document, Reader, Stage, ToolEntry, child};
use crate::duration::duration_from_value;
use crate::error::LoadErrorKind;

const TOP_FIELDS: &[&str] = &[
    "version",
    "default",
    "hide",
    "all_tools",
    "tools",
    "approvals",
    "description",
    "$schema",
];
const ALL_TOOLS_FIELDS: &[&str] = &["limits", "require", "deny_if", "approve_if"];
const APPROVALS_FIELDS: &[&str] = &["ttl"];

impl Reader<'_> {
    /// Reads a whole document.
    pub(super) fn document(&mut self, value: &Value) -> Option<Document> {
        let map = self.object(value, "", TOP_FIELDS)?;
        match map.get("version") {
            None => self.error("", LoadErrorKind::MissingField("version")),
            Some(Value::String(v)) if v == "1" => {}
            Some(other) => self.error(
                "/version",
                LoadErrorKind::Version {
                    found: other.to_string(),
                },
            ),
        }
        let default = match map.get("default") {
            None => {
                self.error("", LoadErrorKind::MissingField("default"));
                None
            }
            Some(Value::String(s)) if s == "allow" => Some(DefaultAction::Allow),
            Some(Value::String(s)) if s == "deny" => Some(DefaultAction::Deny),
            Some(other) => {
                self.invalid(
                    "/default",
                    format!("expected \"allow\" or \"deny\", found {other}"),
                );
                None
            }
        };
        let hide = match map.get("hide") {
            Some(value) => self.hide(value),
            None => Vec::new(),
        };
        let all_tools = match map.get("all_tools") {
            Some(value) => match self.object(value, "/all_tools", ALL_TOOLS_FIELDS) {
                Some(obj) => self.stage(obj, "/all_tools"),
                None => Stage::default(),
            },
            None => Stage::default(),
        };
        let tools = match map.get("tools") {
            Some(Value::Object(entries)) => self.tools(entries),
            Some(other) => {
                self.wrong_type("/tools", "an object mapping tool names to entries", other);
                Vec::new()
            }
            None => Vec::new(),
        };
        let approval_ttl_ms = match map.get("approvals") {
            Some(value) => self.approvals(value),
            None => DEFAULT_APPROVAL_TTL_MS,
        };
        let description = match map.get("description") {
            Some(value) => self.string(value, "/description"),
            None => None,
        };
        Some(Document {
            default: default?,
            hide,
            all_tools,
            tools,
            approval_ttl_ms,
            description,
        })
    }

    /// `hide`: tool names and patterns, in order.
    fn hide(&mut self, value: &Value) -> Vec<String> {
        let mut hide = Vec::new();
        let Some(items) = self.array(value, "/hide") else {
            return hide;
        };
        for (i, item) in items.iter().enumerate() {
            let pointer = format!("/hide/{i}");
            if let Some(name) = self.string(item, &pointer) {
                if name.is_empty() {
                    self.invalid(&pointer, "a hidden tool name must not be empty");
                }
                hide.push(name);
            }
        }
        hide
    }

    /// `tools`, in document order (see [`Reader::members`]).
    fn tools(&mut self, entries: &Map<String, Value>) -> Vec<ToolEntry> {
        let mut tools = Vec::new();
        for (key, entry) in self.members(entries, "/tools") {
            let pointer = child("/tools", key);
            if key.is_empty() {
                self.invalid(&pointer, "a tool name must not be empty");
                continue;
            }
            if let Some(entry) = self.tool_entry(key, entry, &pointer) {
                tools.push(entry);
            }
        }
        tools
    }

    /// `approvals`: the approval TTL in milliseconds (the default when absent or wrong).
    fn approvals(&mut self, value: &Value) -> u64 {
        let ttl = self
            .object(value, "/approvals", APPROVALS_FIELDS)
            .and_then(|obj| obj.get("ttl"));
        match ttl.map(duration_from_value) {
            Some(Ok(ms)) => ms,
            Some(Err(message)) => {
                self.invalid("/approvals/ttl", message);
                DEFAULT_APPROVAL_TTL_MS
            }
            None => DEFAULT_APPROVAL_TTL_MS,
        }
    }
}
