//! Condition paths: `args.a.b.0.c`, `/args/a~1b/0`, `grant.id`, `grant.session`,
//! `grant.attrs.NAME`, `tool`, `prompt`, and a resource's `uri` (`uri.scheme`, `uri.host`,
//! `uri.path`, `uri.query`).

use std::fmt;

use serde_json::Value;

use crate::grant::Grant;
use crate::subject::{Hints, Subject};

static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);
use crate::uri::Uri;

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// The call's arguments object.
    Args,
    /// The grant's id (`grant.id`).
    GrantId,
    /// The grant's session (`grant.session`).
    GrantSession,
    /// The grant's attributes object (`grant.attrs`).
    GrantAttrs,
    /// The called tool's name (`tool`).
    Tool,
    /// The prompt's name (`prompt`).
    Prompt,
    /// The resource's URI in normal form, or one of its parts (`uri`, `uri.path`, …).
    Uri(UriPart),
    /// One of the tool's annotations, with the spec's defaults (`annotations.readOnlyHint`,
    /// `destructiveHint`, `idempotentHint`, `openWorldHint`).
    Annotation(Hint),
}

/// Which annotation an `annotations.*` path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// `readOnlyHint`.
    ReadOnly,
    /// `destructiveHint`.
    Destructive,
    /// `idempotentHint`.
    Idempotent,
    /// `openWorldHint`.
    OpenWorld,
}

/// Which part of a resource URI a `uri` path reads (see [`Uri`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriPart {
    /// The whole URI in normal form (`uri`).
    Whole,
    /// `uri.scheme`, lowercased.
    Scheme,
    /// `uri.host`, lowercased (`""` when the URI has none).
    Host,
    /// `uri.path`, normalised and percent-decoded.
    Path,
    /// `uri.query`, as written (missing when the URI has none).
    Query,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    key: Box<str>,
    /// The segment as an array index, when it is a decimal number.
    index: Option<usize>,
}

/// A parsed path into a call.
///
/// ```
/// use mcp_policy::path::Path;
/// let p = Path::parse("args.files.0.name").unwrap();
/// assert_eq!(p.to_string(), "args.files.0.name");
/// let p = Path::parse("/args/a~1b").unwrap();
/// assert_eq!(p.to_string(), "/args/a~1b");
/// assert!(Path::parse("argz.x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    root: Root,
    segments: Vec<Segment>,
    text: Box<str>,
}

/// A value found at a path: either inside a JSON document or a plain string (grant id, tool).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Found<'a> {
    /// A JSON value.
    Json(&'a Value),
    /// A string that is not stored as JSON (the tool name, the grant id or session).
    Str(&'a str),
}

impl<'a> Found<'a> {
    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Found::Json(Value::String(s)) => Some(s),
            Found::Str(s) => Some(s),
            Found::Json(_) => None,
        }
    }

    /// The JSON type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Found::Json(v) => crate::error::type_name(v),
            Found::Str(_) => "a string",
        }
    }
}

impl Path {
    /// Parses a dotted path or a JSON Pointer path.
    pub fn parse(text: &str) -> Result<Path, String> {
        let tokens: Vec<String> = if text.starts_with('/') {
            crate::source::pointer_tokens(text).ok_or_else(|| {
                format!("invalid JSON Pointer path {text:?} (`~` must be followed by 0 or 1)")
            })?
        } else {
            text.split('.').map(str::to_owned).collect()
        };
        let mut tokens = tokens.into_iter();
        let root_name = tokens.next().unwrap_or_default();
        let rest: Vec<String> = tokens.collect();
        if !text.starts_with('/') && rest.iter().any(String::is_empty) {
            return Err(format!("path {text:?} has an empty segment"));
        }
        let (root, rest) = match root_name.as_str() {
            "args" => (Root::Args, rest),
            "tool" => {
                if !rest.is_empty() {
                    return Err(format!(
                        "path {text:?}: `tool` is a string and has no fields"
                    ));
                }
                (Root::Tool, rest)
            }
            "prompt" => {
                if !rest.is_empty() {
                    return Err(format!(
                        "path {text:?}: `prompt` is a string and has no fields"
                    ));
                }
                (Root::Prompt, rest)
            }
            "annotations" => {
                let hint = match rest.as_slice() {
                    [one] => match one.as_str() {
                        "readOnlyHint" => Hint::ReadOnly,
                        "destructiveHint" => Hint::Destructive,
                        "idempotentHint" => Hint::Idempotent,
                        "openWorldHint" => Hint::OpenWorld,
                        _ => {
                            return Err(format!(
                                "path {text:?}: expected annotations.readOnlyHint, annotations.destructiveHint, annotations.idempotentHint or annotations.openWorldHint"
                            ));
                        }
                    },
                    _ => {
                        return Err(format!(
                            "path {text:?}: expected annotations.readOnlyHint, annotations.destructiveHint, annotations.idempotentHint or annotations.openWorldHint"
                        ));
                    }
                };
                (Root::Annotation(hint), Vec::new())
            }
            "uri" => {
                let part = match rest.as_slice() {
                    [] => UriPart::Whole,
                    [one] => match one.as_str() {
                        "scheme" => UriPart::Scheme,
                        "host" => UriPart::Host,
                        "path" => UriPart::Path,
                        "query" => UriPart::Query,
                        _ => {
                            return Err(format!(
                                "path {text:?}: expected uri, uri.scheme, uri.host, uri.path or uri.query"
                            ));
                        }
                    },
                    _ => {
                        return Err(format!(
                            "path {text:?}: expected uri, uri.scheme, uri.host, uri.path or uri.query"
                        ));
                    }
                };
                (Root::Uri(part), Vec::new())
            }
            "grant" => {
                let mut it = rest.into_iter();
                match it.next().as_deref() {
                    Some("id") | Some("session") if it.len() > 0 => {
                        return Err(format!(
                            "path {text:?}: `grant.id` and `grant.session` are strings and have no fields"
                        ));
                    }
                    Some("id") => (Root::GrantId, Vec::new()),
                    Some("session") => (Root::GrantSession, Vec::new()),
                    Some("attrs") => (Root::GrantAttrs, it.collect()),
                    _ => {
                        return Err(format!(
                            "path {text:?}: expected grant.id, grant.session or grant.attrs.NAME"
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "path {text:?} must start with args, grant, tool, prompt, uri or annotations (for example args.amount or /args/a~1b)"
                ));
            }
        };
        let segments = rest
            .into_iter()
            .map(|key| {
                let index = if !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_digit())
                    && (key == "0" || !key.starts_with('0'))
                {
                    key.parse().ok()
                } else {
                    None
                };
                Segment {
                    key: key.into_boxed_str(),
                    index,
                }
            })
            .collect();
        Ok(Path {
            root,
            segments,
            text: text.into(),
        })
    }

    /// Whether two paths reach the same place, however they are written
    /// (`args.a.b` and `/args/a/b`).
    ///
    /// ```
    /// use mcp_policy::path::Path;
    /// assert!(Path::parse("args.a.0").unwrap().same_place(&Path::parse("/args/a/0").unwrap()));
    /// assert!(!Path::parse("args.a").unwrap().same_place(&Path::parse("args.b").unwrap()));
    /// ```
    pub fn same_place(&self, other: &Path) -> bool {
        self.root == other.root && self.segments == other.segments
    }

    /// The root this path starts from.
    pub fn root(&self) -> Root {
        self.root
    }

    /// Finds the value at this path in a request; `None` when it is missing (`tool` on a
    /// prompt, `uri` on a tool, …).
    ///
    /// ```
    /// use mcp_policy::path::{Found, Path};
    /// use mcp_policy::subject::Subject;
    /// use mcp_policy::uri::Uri;
    /// use mcp_policy::Grant;
    /// let uri = Uri::parse("file:///srv/docs/a.txt").unwrap();
    /// let (args, grant) = (serde_json::json!({}), Grant::new("alice"));
    /// let path = Path::parse("uri.path").unwrap();
    /// assert_eq!(path.resolve(Subject::Resource(&uri), &args, &grant), Some(Found::Str("/srv/docs/a.txt")));
    /// assert_eq!(path.resolve(Subject::Tool("scan"), &args, &grant), None);
    /// ```
    pub fn resolve<'a>(
        &self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
    ) -> Option<Found<'a>> {
        let start: &Value = match self.root {
            Root::Tool => match subject {
                Subject::Tool(name) | Subject::AnnotatedTool(name, _) => {
                    return Some(Found::Str(name));
                }
                _ => return None,
            },
            Root::Annotation(hint) => {
                let hints = match subject {
                    Subject::AnnotatedTool(_, hints) => hints,
                    Subject::Tool(_) => Hints::default(),
                    _ => return None,
                };
                let value = match hint {
                    Hint::ReadOnly => hints.read_only(),
                    Hint::Destructive => hints.destructive(),
                    Hint::Idempotent => hints.idempotent(),
                    Hint::OpenWorld => hints.open_world(),
                };
                return Some(Found::Json(if value { &TRUE } else { &FALSE }));
            }
            Root::Prompt => match subject {
                Subject::Prompt(name) => return Some(Found::Str(name)),
                _ => return None,
            },
            Root::Uri(part) => match subject {
                Subject::Resource(uri) => return uri_part(uri, part).map(Found::Str),
                _ => return None,
            },
            Root::GrantId => return Some(Found::Str(&grant.id)),
            Root::GrantSession => return grant.session.as_deref().map(Found::Str),
            Root::Args => args,
            Root::GrantAttrs => return self.descend_map(&grant.attrs),
        };
        self.descend(start, &self.segments).map(Found::Json)
    }

    fn descend_map<'a>(&self, map: &'a serde_json::Map<String, Value>) -> Option<Found<'a>> {
        let (first, rest) = self.segments.split_first()?;
        let value = member(map, &first.key)?;
        self.descend(value, rest).map(Found::Json)
    }

    fn descend<'a>(&self, mut value: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
        for segment in segments {
            value = match value {
                Value::Object(map) => member(map, &segment.key)?,
                Value::Array(items) => items.get(segment.index?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

/// A part of a resource URI.
fn uri_part<'a>(uri: &'a Uri<'a>, part: UriPart) -> Option<&'a str> {
    match part {
        UriPart::Whole => Some(uri.as_str()),
        UriPart::Scheme => Some(uri.scheme()),
        UriPart::Host => Some(uri.host()),
        UriPart::Path => Some(uri.path()),
        UriPart::Query => uri.query(),
    }
}

/// Looks a key up in an object. Arguments objects are small: a scan of a few entries is
/// cheaper than hashing the key (serde_json's ordered map hashes with SipHash).
fn member<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= 8 {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant() -> Grant {
        Grant::new("alice")
            .with_session("s1")
            .with_attr("team", json!({"name": "sec"}))
    }

    #[test]
    fn dotted_paths_descend_objects_and_arrays() {
        let args = json!({"a": {"b": [{"c": 5}]}, "0": "zero"});
        let g = grant();
        let p = Path::parse("args.a.b.0.c").unwrap();
        assert_eq!(
            p.resolve(Subject::Tool("t"), &args, &g),
            Some(Found::Json(&json!(5)))
        );
        // A decimal segment is a key on an object.
        let p = Path::parse("args.0").unwrap();
        assert_eq!(
            p.resolve(Subject::Tool("t"), &args, &g),
            Some(Found::Json(&json!("zero")))
        );
        let p = Path::parse("args.a.b.1.c").unwrap();
        assert_eq!(p.resolve(Subject::Tool("t"), &args, &g), None);
        let p = Path::parse("args.a.b.01").unwrap();
        assert_eq!(p.resolve(Subject::Tool("t"), &args, &g), None);
        let p = Path::parse("args").unwrap();
        assert_eq!(
            p.resolve(Subject::Tool("t"), &args, &g),
            Some(Found::Json(&args))
        );
    }

    #[test]
    fn pointer_paths_reach_keys_with_dots_and_slashes() {
        let args = json!({"a/b": {"c.d": 1}});
        let g = grant();
        let p = Path::parse("/args/a~1b/c.d").unwrap();
        assert_eq!(
            p.resolve(Subject::Tool("t"), &args, &g),
            Some(Found::Json(&json!(1)))
        );
    }

    #[test]
    fn grant_and_tool_roots() {
        let args = json!({});
        let g = grant();
        assert_eq!(
            Path::parse("grant.id")
                .unwrap()
                .resolve(Subject::Tool("t"), &args, &g),
            Some(Found::Str("alice"))
        );
        assert_eq!(
            Path::parse("grant.session")
                .unwrap()
                .resolve(Subject::Tool("t"), &args, &g),
            Some(Found::Str("s1"))
        );
        assert_eq!(
            Path::parse("grant.attrs.team.name")
                .unwrap()
                .resolve(Subject::Tool("t"), &args, &g),
            Some(Found::Json(&json!("sec")))
        );
        assert_eq!(
            Path::parse("tool")
                .unwrap()
                .resolve(Subject::Tool("run"), &args, &g),
            Some(Found::Str("run"))
        );
        let anonymous = Grant::new("x");
        assert_eq!(
            Path::parse("grant.session")
                .unwrap()
                .resolve(Subject::Tool("t"), &args, &anonymous),
            None
        );
    }

    #[test]
    fn bad_paths() {
        for bad in [
            "",
            "x",
            "args..a",
            "args.",
            "tool.x",
            "grant",
            "grant.name",
            "grant.id.x",
            "/args/~2",
            "/x",
            "prompt.x",
            "uri.port",
            "uri.path.x",
            "annotations",
            "annotations.readOnly",
            "annotations.readOnlyHint.x",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
    }
}
