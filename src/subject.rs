//! What a request reaches on the server: a tool, a resource or a prompt — the three kinds a
//! policy governs, each in its own section (`tools`, `resources`, `prompts`).
//!
//! A [`Subject`] names one of them for a decision. A resource is named by its URI read into
//! its normal form ([`Uri`]): patterns and conditions see the normal form, so that
//! `file:///srv/docs/../../etc/shadow` is judged as `file:///etc/shadow`.
//!
//! ```
//! use mcp_policy::subject::{Kind, Subject};
//! use mcp_policy::uri::Uri;
//! let uri = Uri::parse("file:///srv/docs/../../etc/shadow").unwrap();
//! let subject = Subject::Resource(&uri);
//! assert_eq!(subject.kind(), Kind::Resource);
//! assert_eq!(subject.name(), "file:///etc/shadow");
//! assert_eq!(Subject::Tool("scan").name(), "scan");
//! ```

use std::fmt;

use crate::uri::Uri;

/// The three kinds of things a policy governs.
///
/// ```
/// use mcp_policy::subject::Kind;
/// assert_eq!(Kind::Prompt.as_str(), "prompt");
/// assert_eq!(Kind::Resource.section(), "resources");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A tool (`tools/call`).
    Tool,
    /// A resource (`resources/read`, `resources/subscribe`).
    Resource,
    /// A prompt (`prompts/get`).
    Prompt,
}

impl Kind {
    /// Every kind, in the order the sections are read.
    pub const ALL: [Kind; 3] = [Kind::Tool, Kind::Resource, Kind::Prompt];

    /// `tool`, `resource` or `prompt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Prompt => "prompt",
        }
    }

    /// The policy section of this kind: `tools`, `resources` or `prompts`.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Tool => "tools",
            Kind::Resource => "resources",
            Kind::Prompt => "prompts",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tool, resource or prompt, as a decision names it.
///
/// ```
/// use mcp_policy::subject::Subject;
/// use mcp_policy::{Engine, Grant, Policy, Verdict};
/// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
///   "prompts":{"greet":{}}}"#).unwrap();
/// let engine = Engine::new(policy);
/// let args = serde_json::json!({"name": "Ada"});
/// let d = engine.decide(Subject::Prompt("greet"), &args, &Grant::new("alice"));
/// assert_eq!(d.verdict, Verdict::Allow);
/// assert_eq!(&*d.rule, "/prompts/greet");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A tool, by name.
    Tool(&'a str),
    /// A resource, by its URI in normal form.
    Resource(&'a Uri<'a>),
    /// A prompt, by name.
    Prompt(&'a str),
}

impl<'a> Subject<'a> {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Subject::Tool(_) => Kind::Tool,
            Subject::Resource(_) => Kind::Resource,
            Subject::Prompt(_) => Kind::Prompt,
        }
    }

    /// The name a section's keys are matched against: the tool's or prompt's name, or the
    /// resource's URI in normal form.
    pub fn name(&self) -> &'a str {
        match self {
            Subject::Tool(name) | Subject::Prompt(name) => name,
            Subject::Resource(uri) => uri.as_str(),
        }
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind(), self.name())
    }
}
