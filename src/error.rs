//! Typed errors: load errors (with JSON Pointer and source position) and store errors.

use std::fmt;

/// A line and column in policy source text, both 1-based (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with one value of a policy document.
///
/// Each variant's message is lowercase and says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The text is not valid JSON (or repeats a key in one object).
    #[error("{0}")]
    Syntax(String),
    /// A field that this version of the format does not define.
    #[error("unknown field `{field}`; expected one of {expected}")]
    UnknownField {
        /// The offending field name.
        field: String,
        /// The fields allowed at this place.
        expected: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A value of the wrong JSON type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the format allows here.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// `version` is not one this build supports.
    #[error("unsupported version {found}; this build supports \"1\"")]
    Version {
        /// The version found, as JSON.
        found: String,
    },
    /// Any other invalid value, with an explanation.
    #[error("{0}")]
    Invalid(String),
    /// Two limits name the same counter but disagree on its definition.
    #[error(
        "counter `{counter}` is defined differently at {other}: {field} differs; every limit naming a counter must agree on window, max, scope and reset"
    )]
    CounterConflict {
        /// The counter name.
        counter: String,
        /// The JSON Pointer of the first definition.
        other: String,
        /// The field that differs.
        field: &'static str,
    },
}

/// One load error: where (JSON Pointer, and line:column when there is source text) and what.
///
/// ```
/// let errors = mcp_policy::Policy::from_json_str(r#"{"version": "2", "default": "deny"}"#).unwrap_err();
/// let first = &errors.errors()[0];
/// assert_eq!(first.pointer, "/version");
/// assert_eq!(first.to_string(), "1:13: /version: unsupported version \"2\"; this build supports \"1\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// JSON Pointer of the offending value (`""` for the whole document).
    pub pointer: String,
    /// Position of the offending value in the source text, when loaded from text.
    pub position: Option<Position>,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

impl LoadError {
    pub(crate) fn new(pointer: impl Into<String>, kind: LoadErrorKind) -> Self {
        LoadError {
            pointer: pointer.into(),
            position: None,
            kind,
        }
    }

    pub(crate) fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(pointer, LoadErrorKind::Invalid(message.into()))
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(position) = self.position {
            write!(f, "{position}: ")?;
        }
        if self.pointer.is_empty() {
            write!(f, "(document): {}", self.kind)
        } else {
            write!(f, "{}: {}", self.pointer, self.kind)
        }
    }
}

/// All the load errors of one policy document (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub(crate) Vec<LoadError>);

impl LoadErrors {
    /// The errors, in document order.
    pub fn errors(&self) -> &[LoadError] {
        &self.0
    }

    /// Consumes the collection, returning the errors.
    pub fn into_vec(self) -> Vec<LoadError> {
        self.0
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for error in &self.0 {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// A failure of a [`CounterStore`](crate::CounterStore). The engine turns it into a deny.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store holds its maximum number of live counter keys; a call needing a new key is refused.
    #[error(
        "counter store is full ({limit} live keys); new counters are refused until old windows pass"
    )]
    Full {
        /// The configured cap on live keys.
        limit: usize,
    },
    /// The store could not be reached or answered with an error.
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
}

/// Why recording an approval or releasing a reservation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The approval id was never issued, or has expired.
    #[error("unknown or expired approval id `{0}`")]
    UnknownApproval(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The JSON type name of a value, for messages.
pub(crate) fn type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
