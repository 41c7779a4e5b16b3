//! Steps 1 and 2 of a request: the `hide` entry that hides a tool, and the entry of its
//! section that governs a tool, resource or prompt (an exact key, else the most specific
//! pattern).

use crate::compile::{CompiledEntry, Policy, Section};
use crate::document::Action;
use crate::subject::{Kind, Subject};

impl Section {
    /// The entry that governs `name`: an exact key, else the most specific pattern.
    pub(crate) fn entry_for(&self, name: &str) -> Option<&CompiledEntry> {
        let index = match self.exact.get(name) {
            Some(i) => Some(*i),
            None => self
                .patterns
                .iter()
                .find(|(glob, _)| glob.matches(name))
                .map(|(_, i)| *i),
        };
        index.and_then(|i| self.entries.get(i))
    }
}

impl Policy {
    /// The index of the `hide` entry that hides `tool`, if any.
    pub(crate) fn hidden_by(&self, tool: &str) -> Option<usize> {
        if self.hide_rules.is_empty() {
            return None;
        }
        let exact = self.hide_exact.get(tool).copied();
        let pattern = self
            .hide_patterns
            .iter()
            .find(|(glob, i)| exact.is_none_or(|e| *i < e) && glob.matches(tool))
            .map(|(_, i)| *i);
        match (exact, pattern) {
            (Some(e), Some(p)) => Some(e.min(p)),
            (e, p) => e.or(p),
        }
    }

    /// The `tools` entry that governs `tool`: an exact key, else the most specific pattern.
    pub(crate) fn entry_for(&self, tool: &str) -> Option<&CompiledEntry> {
        self.tools.entry_for(tool)
    }

    /// The key of the `tools` entry that governs `tool` (an exact name or a pattern), if any.
    pub fn matching_key(&self, tool: &str) -> Option<&str> {
        self.entry_for(tool).map(|e| &*e.key)
    }

    /// The key of the entry that governs `subject` in its section, if any.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// use mcp_policy::subject::Subject;
    /// use mcp_policy::uri::Uri;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"file:///srv/docs/*":{}}}"#).unwrap();
    /// let uri = Uri::parse("file:///srv/docs/a/../b.md").unwrap();
    /// assert_eq!(p.matching_key_of(Subject::Resource(&uri)), Some("file:///srv/docs/*"));
    /// ```
    pub fn matching_key_of(&self, subject: Subject<'_>) -> Option<&str> {
        self.section(subject.kind())
            .entry_for(subject.name())
            .map(|e| &*e.key)
    }

    /// Whether `tool` is hidden (denied and removed from listings): by `hide`, or by its
    /// entry's `action: "hide"`.
    pub fn is_hidden(&self, tool: &str) -> bool {
        self.is_hidden_of(Kind::Tool, tool)
    }

    /// Whether the `kind` named `name` (a resource's URI in normal form) is hidden: by
    /// `hide` (tools), or by its entry's `action: "hide"`.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// use mcp_policy::subject::Kind;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"allow",
    ///   "prompts":{"secret_*":{"action":"hide"}}}"#).unwrap();
    /// assert!(p.is_hidden_of(Kind::Prompt, "secret_plan"));
    /// assert!(!p.is_hidden_of(Kind::Prompt, "greet"));
    /// ```
    pub fn is_hidden_of(&self, kind: Kind, name: &str) -> bool {
        (kind == Kind::Tool && self.hidden_by(name).is_some())
            || self
                .section(kind)
                .entry_for(name)
                .is_some_and(|e| e.action == Action::Hide)
    }
}
