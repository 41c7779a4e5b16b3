//! [`Text`]: the strings a decision carries (rule pointers, messages, counter names).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Strings up to this many bytes are stored inline in a [`Text`].
pub const INLINE: usize = 62;

/// An immutable string that is stored inline when short (up to [`INLINE`] bytes) and shared
/// (`Arc<str>`) when longer.
///
/// Decisions carry their rule and message as `Text`: copying a short one is a plain copy, with
/// no reference count to update, so threads deciding calls under the same rule never contend
/// on a shared counter.
///
/// ```
/// use mcp_policy::text::Text;
/// let rule = Text::from("/tools/start_security_scan/limits/0");
/// assert_eq!(&*rule, "/tools/start_security_scan/limits/0");
/// assert!(rule.is_inline());
/// let long = Text::from("x".repeat(100));
/// assert!(!long.is_inline());
/// assert_eq!(long.len(), 100);
/// ```
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Text {
    /// Copies `s` into a new `Text`.
    pub fn new(s: &str) -> Text {
        let mut bytes = [0u8; INLINE];
        match (u8::try_from(s.len()), bytes.get_mut(..s.len())) {
            (Ok(len), Some(slot)) => {
                slot.copy_from_slice(s.as_bytes());
                Text(Repr::Inline { len, bytes })
            }
            _ => Text(Repr::Shared(Arc::from(s))),
        }
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Repr::Shared(s) => s,
        }
    }

    /// Whether the string is stored inline (copies touch no shared state).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(&s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::new(s)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_up_to_the_limit_then_shared() {
        let exact = "a".repeat(INLINE);
        assert!(Text::from(exact.as_str()).is_inline());
        assert_eq!(Text::from(exact.as_str()).as_str(), exact);
        let over = "a".repeat(INLINE + 1);
        assert!(!Text::from(over.as_str()).is_inline());
        assert_eq!(Text::from(over.as_str()).as_str(), over);
        assert!(Text::from("").is_inline());
        assert_eq!(Text::from("é/ü").as_str(), "é/ü");
        assert_eq!(Text::from("a"), "a");
    }
}
