//! Steps 1 and 2 of a call: the `hide` entry that hides a tool, and the `tools` entry that
//! governs it (an exact key, else the most specific pattern).

use crate::compile::{CompiledEntry, Policy};

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
        let index = match self.exact.get(tool) {
            Some(i) => Some(*i),
            None => self
                .patterns
                .iter()
                .find(|(glob, _)| glob.matches(tool))
                .map(|(_, i)| *i),
        };
        index.and_then(|i| self.entries.get(i))
    }

    /// The key of the `tools` entry that governs `tool` (an exact name or a pattern), if any.
    pub fn matching_key(&self, tool: &str) -> Option<&str> {
        self.entry_for(tool).map(|e| &*e.key)
    }

    /// Whether `tool` is hidden (denied and removed from listings).
    pub fn is_hidden(&self, tool: &str) -> bool {
        self.hidden_by(tool).is_some()
    }
}
