//! Who is calling: the grant (credential) id, an optional session, and attributes.

use serde_json::{Map, Value};

/// The caller of a tool: a grant id (an API key, a device, a CI runner), an optional session,
/// and free-form attributes that conditions can read as `grant.attrs.NAME`.
///
/// ```
/// use mcp_policy::Grant;
/// let grant = Grant::new("ci-runner").with_session("run-7").with_attr("team", "sec".into());
/// assert_eq!(grant.id, "ci-runner");
/// assert_eq!(grant.session.as_deref(), Some("run-7"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grant {
    /// The grant id; the key of `scope: "grant"` budgets.
    pub id: String,
    /// The session within the grant, if any; the key of `scope: "session"` budgets.
    pub session: Option<String>,
    /// Attributes readable by conditions as `grant.attrs.NAME`.
    pub attrs: Map<String, Value>,
}

impl Grant {
    /// A grant with this id, no session and no attributes.
    pub fn new(id: impl Into<String>) -> Grant {
        Grant {
            id: id.into(),
            session: None,
            attrs: Map::new(),
        }
    }

    /// The grant used when a caller presents none: id `anonymous`.
    pub fn anonymous() -> Grant {
        Grant::new("anonymous")
    }

    /// Sets the session.
    pub fn with_session(mut self, session: impl Into<String>) -> Grant {
        self.session = Some(session.into());
        self
    }

    /// Adds one attribute.
    pub fn with_attr(mut self, name: impl Into<String>, value: Value) -> Grant {
        self.attrs.insert(name.into(), value);
        self
    }
}
