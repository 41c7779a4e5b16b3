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

use serde_json::Value;

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
    /// A tool, by name (its annotations unknown: judged as if absent).
    Tool(&'a str),
    /// A tool, by name, with the annotations its server listed for it. They count only
    /// under a policy that trusts them (`"trust_annotations": true`); otherwise the tool is
    /// judged as if they were absent.
    AnnotatedTool(&'a str, Hints),
    /// A resource, by its URI in normal form.
    Resource(&'a Uri<'a>),
    /// A prompt, by name.
    Prompt(&'a str),
}

impl<'a> Subject<'a> {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Subject::Tool(_) | Subject::AnnotatedTool(..) => Kind::Tool,
            Subject::Resource(_) => Kind::Resource,
            Subject::Prompt(_) => Kind::Prompt,
        }
    }

    /// The name a section's keys are matched against: the tool's or prompt's name, or the
    /// resource's URI in normal form.
    pub fn name(&self) -> &'a str {
        match self {
            Subject::Tool(name) | Subject::AnnotatedTool(name, _) | Subject::Prompt(name) => name,
            Subject::Resource(uri) => uri.as_str(),
        }
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind(), self.name())
    }
}

/// A tool's annotations (MCP `ToolAnnotations`) as its server listed them; `None` where the
/// server said nothing. What a policy reads applies the spec's defaults for what is missing
/// ([`Hints::read_only`], …): a tool is destructive and open-world unless it says otherwise.
///
/// ```
/// use mcp_policy::subject::Hints;
/// let listed = serde_json::json!({"name": "peek", "annotations": {"readOnlyHint": true}});
/// let hints = Hints::of_tool(&listed);
/// assert!(hints.read_only() && !hints.destructive());
/// let silent = Hints::default();
/// assert!(!silent.read_only() && silent.destructive() && silent.open_world() && !silent.idempotent());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hints {
    /// `readOnlyHint`.
    pub read_only: Option<bool>,
    /// `destructiveHint`.
    pub destructive: Option<bool>,
    /// `idempotentHint`.
    pub idempotent: Option<bool>,
    /// `openWorldHint`.
    pub open_world: Option<bool>,
}

impl Hints {
    /// The hints of one tool of a `tools/list` result (its `annotations` object; anything
    /// that is not a boolean counts as not said).
    pub fn of_tool(tool: &Value) -> Hints {
        let annotations = tool.get("annotations");
        let hint = |name: &str| {
            annotations
                .and_then(|a| a.get(name))
                .and_then(Value::as_bool)
        };
        Hints {
            read_only: hint("readOnlyHint"),
            destructive: hint("destructiveHint"),
            idempotent: hint("idempotentHint"),
            open_world: hint("openWorldHint"),
        }
    }

    /// The tool does not change its environment (default false).
    pub fn read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }

    /// The tool may destroy or overwrite (default true; the spec gives it meaning only for a
    /// tool that is not read-only, so a read-only tool that says nothing is not destructive).
    pub fn destructive(&self) -> bool {
        self.destructive.unwrap_or(!self.read_only())
    }

    /// Calling the tool again with the same arguments has no further effect (default false).
    pub fn idempotent(&self) -> bool {
        self.idempotent.unwrap_or(false)
    }

    /// The tool reaches an open world of external entities (default true).
    pub fn open_world(&self) -> bool {
        self.open_world.unwrap_or(true)
    }

    /// A hint by its name in MCP (`readOnlyHint`, `destructiveHint`, `idempotentHint`,
    /// `openWorldHint`), with the defaults applied.
    pub fn get(&self, name: &str) -> Option<bool> {
        Some(match name {
            "readOnlyHint" => self.read_only(),
            "destructiveHint" => self.destructive(),
            "idempotentHint" => self.idempotent(),
            "openWorldHint" => self.open_world(),
            _ => return None,
        })
    }
}
