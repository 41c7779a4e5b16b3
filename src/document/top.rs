//! The top level of a document: `version`, `default`, `hide`, `all_tools`, the sections
//! `tools`, `resources` and `prompts` (each entry read by `tool`), `approvals` and
//! `description`.

use serde_json::{Map, Value};

use super::{DEFAULT_APPROVAL_TTL_MS, DefaultAction, Document, Entry, Reader, Stage, child};
use crate::duration::duration_from_value;
use crate::error::LoadErrorKind;
use crate::subject::Kind;
use crate::uri::Uri;

const TOP_FIELDS: &[&str] = &[
    "version",
    "default",
    "hide",
    "all_tools",
    "tools",
    "resources",
    "prompts",
    "trust_annotations",
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
        let tools = self.section(Kind::Tool, map.get("tools"));
        let resources = self.section(Kind::Resource, map.get("resources"));
        let prompts = self.section(Kind::Prompt, map.get("prompts"));
        let approval_ttl_ms = match map.get("approvals") {
            Some(value) => self.approvals(value),
            None => DEFAULT_APPROVAL_TTL_MS,
        };
        let trust_annotations = match map.get("trust_annotations") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.wrong_type("/trust_annotations", "true or false", other);
                false
            }
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
            resources,
            prompts,
            has_resources: map.contains_key("resources"),
            has_prompts: map.contains_key("prompts"),
            trust_annotations,
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

    /// A section (`tools`, `resources` or `prompts`), in document order (see
    /// [`Reader::members`]).
    fn section(&mut self, kind: Kind, value: Option<&Value>) -> Vec<Entry> {
        let name = kind.section();
        let at = format!("/{name}");
        let entries: &Map<String, Value> = match value {
            None => return Vec::new(),
            Some(Value::Object(entries)) => entries,
            Some(other) => {
                let expected = match kind {
                    Kind::Tool => "an object mapping tool names to entries",
                    Kind::Resource => "an object mapping resource URI patterns to entries",
                    Kind::Prompt => "an object mapping prompt names to entries",
                };
                self.wrong_type(&at, expected, other);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (key, entry) in self.members(entries, &at) {
            let pointer = child(&at, key);
            if key.is_empty() {
                let what = match kind {
                    Kind::Tool => "a tool name",
                    Kind::Resource => "a resource URI or pattern",
                    Kind::Prompt => "a prompt name",
                };
                self.invalid(&pointer, format!("{what} must not be empty"));
                continue;
            }
            if kind == Kind::Resource && !self.resource_key(key, &pointer) {
                continue;
            }
            if let Some(entry) = self.entry(kind, key, entry, &pointer) {
                out.push(entry);
            }
        }
        out
    }

    /// Whether `key` is usable as a `resources` key: URIs are matched in their normal form
    /// ([`Uri`]), so a key that is a URI must be written in that form, or it would never
    /// match (a pattern that is not a URI, such as `*`, is taken as written).
    fn resource_key(&mut self, key: &str, pointer: &str) -> bool {
        match Uri::parse(key) {
            Ok(uri) if uri.as_str() != key => {
                self.invalid(
                    pointer,
                    format!(
                        "resource URIs are matched in their normal form (scheme and host lowercased, percent-encoding decoded, `.` and `..` resolved, the fragment dropped); write this key as {:?}",
                        uri.as_str()
                    ),
                );
                false
            }
            Ok(_) => true,
            Err(error) if !crate::pattern::is_pattern(key) => {
                self.invalid(
                    pointer,
                    format!("a resource key must be a URI or a URI pattern: {error}"),
                );
                false
            }
            Err(_) => true,
        }
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
