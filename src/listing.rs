//! Filtering MCP list results (`tools/list`, `resources/list`, `resources/templates/list`,
//! `prompts/list`): what the policy hides or can never allow is removed, and nothing else
//! changes. Also what `completion/complete` may reach.

use serde_json::Value;

use crate::compile::{CompiledStage, Policy};
use crate::document::{Action, Cost, DefaultAction};
use crate::pattern::Glob;
use crate::subject::Kind;
use crate::uri::Uri;

/// The four list results a gateway filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    /// `tools/list`: items in `tools`, named by `name`.
    Tools,
    /// `resources/list`: items in `resources`, named by `uri`.
    Resources,
    /// `resources/templates/list`: items in `resourceTemplates`, named by `uriTemplate`.
    ResourceTemplates,
    /// `prompts/list`: items in `prompts`, named by `name`.
    Prompts,
}

impl List {
    /// The list a request method asks for, if it is one of the four.
    ///
    /// ```
    /// use mcp_policy::listing::List;
    /// assert_eq!(List::of_method("prompts/list"), Some(List::Prompts));
    /// assert_eq!(List::of_method("tools/call"), None);
    /// ```
    pub fn of_method(method: &str) -> Option<List> {
        Some(match method {
            "tools/list" => List::Tools,
            "resources/list" => List::Resources,
            "resources/templates/list" => List::ResourceTemplates,
            "prompts/list" => List::Prompts,
            _ => return None,
        })
    }

    /// The result's field that holds the items.
    pub fn field(self) -> &'static str {
        match self {
            List::Tools => "tools",
            List::Resources => "resources",
            List::ResourceTemplates => "resourceTemplates",
            List::Prompts => "prompts",
        }
    }

    /// The item's field that names it.
    pub fn name_field(self) -> &'static str {
        match self {
            List::Tools | List::Prompts => "name",
            List::Resources => "uri",
            List::ResourceTemplates => "uriTemplate",
        }
    }

    /// The `notifications/…/list_changed` method that announces a change of this list.
    pub fn changed_notification(self) -> &'static str {
        match self {
            List::Tools => "notifications/tools/list_changed",
            List::Resources | List::ResourceTemplates => "notifications/resources/list_changed",
            List::Prompts => "notifications/prompts/list_changed",
        }
    }
}

impl Policy {
    /// Whether some call of `tool` could be allowed: false when it is hidden, denied by its
    /// entry or by `default: deny`, denied unconditionally by a `deny_if` with no conditions,
    /// or subject to a limit whose fixed cost exceeds its max.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny","hide":["drop_*"],
    ///   "tools":{"read":{},"stop_scan":{"action":"deny"},"drop_table":{}}}"#).unwrap();
    /// assert!(p.can_ever_allow("read"));
    /// assert!(!p.can_ever_allow("stop_scan"));
    /// assert!(!p.can_ever_allow("drop_table"));
    /// assert!(!p.can_ever_allow("unknown"));
    /// ```
    pub fn can_ever_allow(&self, tool: &str) -> bool {
        self.can_ever_allow_of(Kind::Tool, tool)
    }

    /// [`can_ever_allow`](Self::can_ever_allow) for a tool, a prompt, or a resource (by its
    /// URI in normal form, see [`Uri`]).
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// use mcp_policy::subject::Kind;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"file:///srv/docs/*":{},"file:///srv/docs/secret*":{"action":"hide"}},
    ///   "prompts":{"greet":{}}}"#).unwrap();
    /// assert!(p.can_ever_allow_of(Kind::Resource, "file:///srv/docs/a.md"));
    /// assert!(!p.can_ever_allow_of(Kind::Resource, "file:///srv/docs/secret.md"));
    /// assert!(!p.can_ever_allow_of(Kind::Resource, "file:///etc/shadow"));
    /// assert!(p.can_ever_allow_of(Kind::Prompt, "greet"));
    /// ```
    pub fn can_ever_allow_of(&self, kind: Kind, name: &str) -> bool {
        if kind == Kind::Tool && self.hidden_by(name).is_some() {
            return false;
        }
        let entry = self.section(kind).entry_for(name);
        let all: &[CompiledStage] = match kind {
            Kind::Tool => std::slice::from_ref(self.all_tools()),
            _ => &[],
        };
        let own: &[CompiledStage] = match entry {
            None if self.default_action() == DefaultAction::Deny => return false,
            None => &[],
            Some(e) if matches!(e.action, Action::Deny | Action::Hide) => return false,
            Some(e) => std::slice::from_ref(&e.stage),
        };
        !own.iter().chain(all).any(|stage| {
            stage.deny_if.iter().any(|c| c.conditions.is_empty())
                || stage
                    .limits
                    .iter()
                    .any(|l| matches!(l.cost, Cost::Fixed(c) if c > l.max))
        })
    }

    /// Whether a resource URI (as a client or server writes it) could be read: it is a URI
    /// and [`can_ever_allow_of`](Self::can_ever_allow_of) accepts its normal form.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"file:///srv/*":{}}}"#).unwrap();
    /// assert!(p.can_ever_read("FILE:///srv/x"));
    /// assert!(!p.can_ever_read("file:///srv/../etc/passwd"));
    /// assert!(!p.can_ever_read("not a uri"));
    /// ```
    pub fn can_ever_read(&self, uri: &str) -> bool {
        Uri::parse(uri).is_ok_and(|uri| self.can_ever_allow_of(Kind::Resource, uri.as_str()))
    }

    /// Whether some URI of a resource template (RFC 6570, such as `file:///logs/{day}`)
    /// could be read: an entry that is not `deny` or `hide` has a key some expansion could
    /// match, or `default` is allow and no `deny`/`hide` entry of the form `PREFIX*` covers
    /// the template. Each URI read is still decided on its own: listing a template grants
    /// nothing.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"fixture://docs/*":{}}}"#).unwrap();
    /// assert!(p.template_could_allow("fixture://docs/{name}"));
    /// assert!(!p.template_could_allow("fixture://secrets/{name}"));
    /// let open = Policy::from_json_str(r#"{"version":"1","default":"allow",
    ///   "resources":{"fixture://secrets/*":{"action":"hide"},"fixture://logs/today":{"action":"deny"}}}"#).unwrap();
    /// assert!(!open.template_could_allow("fixture://secrets/{name}"));
    /// assert!(open.template_could_allow("fixture://logs/{day}"));
    /// let exact = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"fixture://logs/today":{}}}"#).unwrap();
    /// assert!(exact.template_could_allow("fixture://logs/{day}"));
    /// assert!(!exact.template_could_allow("fixture://docs/{day}"));
    /// ```
    pub fn template_could_allow(&self, template: &str) -> bool {
        let mut glob_text = String::with_capacity(template.len());
        let mut literal_prefix: Option<&str> = None;
        let mut depth = 0usize;
        for (i, c) in template.char_indices() {
            match c {
                '{' => {
                    if depth == 0 {
                        glob_text.push('*');
                        literal_prefix.get_or_insert_with(|| template.get(..i).unwrap_or(""));
                    }
                    depth += 1;
                }
                '}' if depth > 0 => depth -= 1,
                c if depth == 0 => glob_text.push(c),
                _ => {}
            }
        }
        let prefix = literal_prefix.unwrap_or(template);
        let glob = Glob::new(&glob_text);
        let section = self.section(Kind::Resource);
        let action = |i: &usize| section.entries.get(*i).map(|e| e.action);
        let refuses = |i: &usize| matches!(action(i), Some(Action::Deny | Action::Hide));
        // The compiled keys: exact URIs (a template's glob may match one) and patterns.
        let allowed_exact = section
            .exact
            .iter()
            .any(|(key, i)| !refuses(i) && glob.matches(key));
        let allowed_pattern = section
            .patterns
            .iter()
            .any(|(key, i)| !refuses(i) && key.intersects(&glob));
        if allowed_exact || allowed_pattern {
            return true;
        }
        if self.default_action() == DefaultAction::Deny {
            return false;
        }
        !section
            .patterns
            .iter()
            .filter(|(_, i)| refuses(i))
            .filter_map(|(key, _)| key.prefix())
            .any(|covered| prefix.starts_with(covered))
    }

    /// Whether `completion/complete` may reach what its reference names: a prompt (by name)
    /// or a resource (a URI, or a template when it holds a `{`) that would be listed.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// use mcp_policy::subject::Kind;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "prompts":{"greet":{}},"resources":{"file:///srv/*":{}}}"#).unwrap();
    /// assert!(p.can_complete(Kind::Prompt, "greet"));
    /// assert!(p.can_complete(Kind::Resource, "file:///srv/{name}"));
    /// assert!(!p.can_complete(Kind::Resource, "file:///etc/{name}"));
    /// ```
    pub fn can_complete(&self, kind: Kind, name: &str) -> bool {
        match kind {
            Kind::Resource if name.contains('{') => self.template_could_allow(name),
            Kind::Resource => self.can_ever_read(name),
            kind => self.can_ever_allow_of(kind, name),
        }
    }

    /// Whether one item of a list result stays: named by a string the policy could allow.
    fn keeps(&self, list: List, item: &Value) -> bool {
        item.get(list.name_field())
            .and_then(Value::as_str)
            .is_some_and(|name| self.keeps_name(list, name))
    }

    /// Whether an item of `list` named `name` (a tool's or prompt's name, a resource's URI, a
    /// template) stays in the list under this policy.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// use mcp_policy::listing::List;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny","prompts":{"greet":{}}}"#).unwrap();
    /// assert!(p.keeps_name(List::Prompts, "greet"));
    /// assert!(!p.keeps_name(List::Tools, "greet"));
    /// ```
    pub fn keeps_name(&self, list: List, name: &str) -> bool {
        match list {
            List::Tools => self.can_ever_allow(name),
            List::Prompts => self.can_ever_allow_of(Kind::Prompt, name),
            List::Resources => self.can_ever_read(name),
            List::ResourceTemplates => self.template_could_allow(name),
        }
    }

    /// Filters a `tools/list` result (`{"tools": [...], ...}`, or a bare array of tools),
    /// keeping the tools [`can_ever_allow`](Self::can_ever_allow) accepts. Tools without a
    /// string `name` are dropped. Other fields (such as `nextCursor`) are kept.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"allow","hide":["delete_bucket"]}"#).unwrap();
    /// let list = serde_json::json!({"tools": [{"name": "get_bucket"}, {"name": "delete_bucket"}]});
    /// assert_eq!(p.filter_tools_list(&list), serde_json::json!({"tools": [{"name": "get_bucket"}]}));
    /// ```
    pub fn filter_tools_list(&self, result: &Value) -> Value {
        self.filter_list(List::Tools, result)
    }

    /// Filters one page of any of the four list results, keeping the items the policy could
    /// allow (resources by their URI in normal form; templates as
    /// [`template_could_allow`](Self::template_could_allow) says). Items without a string
    /// name are dropped; other fields (`nextCursor`, `_meta`, …) are kept as they are.
    ///
    /// ```
    /// use mcp_policy::Policy;
    /// use mcp_policy::listing::List;
    /// let p = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"test://static/*":{}}}"#).unwrap();
    /// let page = serde_json::json!({"resources": [
    ///   {"uri": "test://static/1", "name": "one"}, {"uri": "file:///etc/shadow", "name": "shadow"}],
    ///   "nextCursor": "2"});
    /// assert_eq!(p.filter_list(List::Resources, &page), serde_json::json!({"resources": [
    ///   {"uri": "test://static/1", "name": "one"}], "nextCursor": "2"}));
    /// ```
    pub fn filter_list(&self, list: List, result: &Value) -> Value {
        let keep = |item: &&Value| self.keeps(list, item);
        match result {
            Value::Array(items) => Value::Array(items.iter().filter(keep).cloned().collect()),
            Value::Object(map) => {
                let mut out = map.clone();
                let items = match map.get(list.field()) {
                    Some(Value::Array(items)) => items.iter().filter(keep).cloned().collect(),
                    _ => Vec::new(),
                };
                out.insert(list.field().into(), Value::Array(items));
                Value::Object(out)
            }
            _ => serde_json::json!({ list.field(): [] }),
        }
    }
}
