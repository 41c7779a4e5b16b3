//! Resource URIs as a policy reads them: this module owns parsing a URI into the *normal form*
//! that `resources` patterns and `path_under` conditions are matched against, so that
//! `file:///srv/docs/../../etc/shadow` or `file:///srv/docs/%2e%2e/%2e%2e/etc/shadow` cannot
//! slip under an allow pattern `file:///srv/docs/*`.
//!
//! The normal form is a *matching* form (decoded), not a wire form: the gateway forwards the URI
//! the client sent, unchanged, and only decides on the normal form. [`Uri::parse`] applies, in
//! order:
//!
//! 1. A URI is not empty and at most [`MAX_LEN`] bytes; it contains no control character
//!    (U+0000–U+001F, U+007F) anywhere, as written.
//! 2. The scheme is the text before the first `:`; it must be a letter followed by letters,
//!    digits, `+`, `-` or `.`. It is lowercased.
//! 3. When `//` follows the `:`, the authority runs to the first `/`, `?` or `#`. Only its host
//!    (after the last `@`, before a `:port`; an IPv6 `[…]` host keeps its brackets) is
//!    lowercased (ASCII); userinfo and port stay as written. In a `file` URI a host of
//!    `localhost` becomes empty (`file://localhost/etc` is `file:///etc`), and an absolute
//!    path without an authority gets an empty one (`file:/etc` is `file:///etc`, RFC 8089).
//! 4. The path runs to the first `?` or `#`. Every `%XX` in it is decoded (`%2F` to `/` and
//!    `%2E` to `.` too); a `%` not followed by two hex digits, decoded bytes that are not UTF-8
//!    and decoded control characters are errors.
//! 5. When the URI has an authority or the decoded path starts with `/`, repeated `/` are
//!    folded into one and dot segments are removed as in RFC 3986 §5.2.4 (`..` at the root
//!    stays at the root; `/a/b/..` is `/a/`); with an authority an empty path is `/`. Rootless
//!    paths (`urn:a/../b`, `mailto:x`) are decoded but otherwise left as they are.
//! 6. The query is kept exactly as written (not decoded); the fragment (`#…`) is dropped.
//! 7. The normal form is scheme `:` [`//` authority] path [`?` query]. In it a `%`, `?` or `#`
//!    of the decoded path is written `%25`, `%3F` or `%23`, so that the normal form parses to
//!    itself; [`Uri::path`] gives the path fully decoded.
//! 8. A URI already in normal form (the common case) is borrowed, not copied.
//!
//! ```
//! use mcp_policy::uri::Uri;
//! let u = Uri::parse("FILE://LocalHost/srv/docs/%2e%2e/..%2Fetc//shadow#x")?;
//! assert_eq!(u.as_str(), "file:///etc/shadow");
//! assert!(!u.as_str().starts_with("file:///srv/docs/"));
//! # Ok::<(), mcp_policy::uri::UriError>(())
//! ```

use std::borrow::Cow;
use std::fmt;

/// The longest URI accepted, in bytes.
///
/// ```
/// use mcp_policy::uri::{MAX_LEN, Uri};
/// assert!(Uri::parse(&format!("x:{}", "a".repeat(MAX_LEN))).is_err());
/// ```
pub const MAX_LEN: usize = 65_536;

/// Why a text is not a URI a policy can match.
///
/// ```
/// use mcp_policy::uri::{Uri, UriError};
/// let e = Uri::parse("file:///a/%zz").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid percent-encoding "%zz" at byte 10 of the URI"#);
/// assert!(matches!(Uri::parse(""), Err(UriError::Empty)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The text is empty.
    #[error("empty URI")]
    Empty,
    /// The text is longer than [`MAX_LEN`] bytes (its length).
    #[error("URI of {0} bytes is longer than the limit of 65536 bytes")]
    TooLong(usize),
    /// The text does not start with a scheme and `:` (the text, cut at 64 characters).
    #[error(
        "not a URI: {0:?} does not start with a scheme (a letter, then letters, digits, '+', '-' or '.') and ':'"
    )]
    NotAUri(String),
    /// A `%` not followed by two hex digits (as written, and where).
    #[error("invalid percent-encoding {found:?} at byte {at} of the URI")]
    Percent {
        /// The `%` and up to two characters after it.
        found: String,
        /// Its byte offset in the URI.
        at: usize,
    },
    /// Percent-encoded bytes that do not decode to UTF-8 (the run of escapes, and where).
    #[error("percent-encoded bytes {found:?} at byte {at} of the URI are not UTF-8")]
    NotUtf8 {
        /// The escapes as written.
        found: String,
        /// The byte offset of the first.
        at: usize,
    },
    /// A control character, as written or percent-decoded in the path.
    #[error("control character U+{code:04X} ({found:?}) at byte {at} of the URI")]
    Control {
        /// Its code point.
        code: u32,
        /// As written (`"\n"` or `"%0A"`).
        found: String,
        /// Its byte offset in the URI.
        at: usize,
    },
}

/// A URI in normal form (see the [module](self) documentation for the rules).
///
/// ```
/// use mcp_policy::uri::Uri;
/// let u = Uri::parse("HTTPS://User@Example.COM:8443?q=%41#top")?;
/// assert_eq!(u.as_str(), "https://User@example.com:8443/?q=%41");
/// assert_eq!((u.scheme(), u.host(), u.path(), u.query()), ("https", "example.com", "/", Some("q=%41")));
/// # Ok::<(), mcp_policy::uri::UriError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The normal form.
    text: Cow<'a, str>,
    /// The byte offset of the `:` after the scheme.
    scheme_end: usize,
    host: (usize, usize),
    path: (usize, usize),
    /// Where the query starts (after the `?`).
    query: Option<usize>,
    /// The decoded path, when it differs from the normal form's (a `%`, `?` or `#` in it).
    decoded_path: Option<Box<str>>,
}

impl<'a> Uri<'a> {
    /// Parses `raw` into its normal form: borrowed (no allocation) when `raw` already is in
    /// normal form.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// let u = Uri::parse("file:///srv/docs/%2e%2e/%2E%2E/etc/shadow")?;
    /// assert_eq!(u.path(), "/etc/shadow");
    /// assert!(Uri::parse("test://static/resource/1")?.is_borrowed());
    /// assert!(Uri::parse("no-scheme").is_err());
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn parse(raw: &'a str) -> Result<Uri<'a>, UriError> {
        match Uri::simple(raw) {
            Some(uri) => Ok(uri),
            None => Uri::full(raw),
        }
    }

    /// The full reading: every rule of the module's documentation.
    fn full(raw: &'a str) -> Result<Uri<'a>, UriError> {
        if raw.is_empty() {
            return Err(UriError::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(UriError::TooLong(raw.len()));
        }
        if let Some((at, c)) = raw.char_indices().find(|(_, c)| is_control(*c)) {
            return Err(control(c, c.to_string(), at));
        }
        let colon = raw
            .find(':')
            .filter(|&c| raw.get(..c).is_some_and(is_scheme))
            .ok_or_else(|| UriError::NotAUri(raw.chars().take(64).collect()))?;
        let scheme = raw.get(..colon).unwrap_or_default();
        let rest = raw.get(colon + 1..).unwrap_or_default();
        let (rest, fragment) = rest
            .split_once('#')
            .map_or((rest, false), |(r, _)| (r, true));
        let (authority, rest) = match rest.strip_prefix("//") {
            Some(a) => split_at(a, a.find(['/', '?']).unwrap_or(a.len()), Some),
            None => (None, rest),
        };
        let (path_raw, query) = rest
            .split_once('?')
            .map_or((rest, None), |(p, q)| (p, Some(q)));
        let is_file = scheme.eq_ignore_ascii_case("file");
        let scheme = lower(scheme);
        let mut auth = authority.map(|a| {
            let (userinfo, host, port) = split_authority(a);
            let host = match is_file && host.eq_ignore_ascii_case("localhost") {
                true => Cow::Owned(String::new()),
                false => lower(host),
            };
            (userinfo, host, port)
        });
        let path_at = colon + 1 + authority.map_or(0, |a| a.len() + 2);
        let (path, decoded_path) = normalise_path(path_raw, path_at, auth.is_some())?;
        let added = is_file && auth.is_none() && path.starts_with('/');
        if added {
            auth = Some(("", Cow::Borrowed(""), ""));
        }

        let scheme_end = scheme.len();
        let (host, path_start) = match &auth {
            Some((userinfo, host, port)) => {
                let start = scheme_end + 3 + userinfo.len();
                ((start, start + host.len()), start + host.len() + port.len())
            }
            None => ((scheme_end + 1, scheme_end + 1), scheme_end + 1),
        };
        let path_end = path_start + path.len();
        let unchanged = !fragment
            && !added
            && matches!(scheme, Cow::Borrowed(_))
            && matches!(path, Cow::Borrowed(_))
            && auth
                .as_ref()
                .is_none_or(|(_, h, _)| matches!(h, Cow::Borrowed(_)));
        let text = if unchanged {
            Cow::Borrowed(raw)
        } else {
            let mut s = String::with_capacity(raw.len() + 3);
            s.push_str(&scheme);
            s.push(':');
            if let Some((userinfo, host, port)) = &auth {
                s.extend(["//", userinfo, host, port]);
            }
            s.push_str(&path);
            if let Some(q) = query {
                s.extend(["?", q]);
            }
            if s == raw {
                Cow::Borrowed(raw)
            } else {
                Cow::Owned(s)
            }
        };
        Ok(Uri {
            text,
            scheme_end,
            host,
            path: (path_start, path_end),
            query: query.map(|_| path_end + 1),
            decoded_path,
        })
    }

    /// The common case in one pass over the bytes: `scheme://host[:port]/path[?query]`
    /// already in normal form — lowercase ASCII scheme and host, a path of printable ASCII
    /// with no `%`, no empty, `.` or `..` segment, no fragment, not `file://localhost`.
    /// `None` sends anything else to the full reading (which gives the same answer for these).
    fn simple(raw: &'a str) -> Option<Uri<'a>> {
        let bytes = raw.as_bytes();
        if bytes.len() > MAX_LEN {
            return None;
        }
        // scheme
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'a'..=b'z' => {}
                b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
                b':' if i > 0 => break,
                _ => return None,
            }
            i += 1;
        }
        let scheme_end = i;
        if bytes.get(i..i + 3) != Some(b"://") {
            return None;
        }
        // host, then an optional port of digits
        let host_start = i + 3;
        i = host_start;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => i += 1,
                _ => break,
            }
        }
        let host_end = i;
        if bytes.get(i) == Some(&b':') {
            i += 1;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        let scheme = raw.get(..scheme_end)?;
        if scheme == "file" && raw.get(host_start..host_end) == Some("localhost") {
            return None;
        }
        // path: starts with '/', segments neither empty, `.` nor `..`
        let path_start = i;
        if bytes.get(i) != Some(&b'/') {
            return None;
        }
        let mut segment = i + 1;
        i += 1;
        loop {
            let b = bytes.get(i).copied();
            if matches!(b, None | Some(b'/' | b'?')) {
                let len = i - segment;
                let last = !matches!(b, Some(b'/'));
                let dots = bytes
                    .get(segment..i)
                    .is_some_and(|s| s == b"." || s == b"..");
                // An empty segment before the last is a `//`; a trailing `/` is fine.
                if dots || (len == 0 && !last) {
                    return None;
                }
                if last {
                    break;
                }
                segment = i + 1;
            } else if !matches!(b, Some(0x21..=0x7e)) || matches!(b, Some(b'%' | b'#')) {
                return None;
            }
            i += 1;
        }
        let path_end = i;
        // query: printable ASCII, no fragment
        let query = if bytes.get(i) == Some(&b'?') {
            let rest = bytes.get(i + 1..)?;
            if !rest.iter().all(|b| matches!(b, 0x20..=0x7e) && *b != b'#') {
                return None;
            }
            Some(i + 1)
        } else {
            None
        };
        Some(Uri {
            text: Cow::Borrowed(raw),
            scheme_end,
            host: (host_start, host_end),
            path: (path_start, path_end),
            query,
            decoded_path: None,
        })
    }

    /// The whole normal form.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert_eq!(Uri::parse("FILE://LocalHost/a//b/./c")?.as_str(), "file:///a/b/c");
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scheme, lowercased.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert_eq!(Uri::parse("HTTPS://example.com")?.scheme(), "https");
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn scheme(&self) -> &str {
        self.text.get(..self.scheme_end).unwrap_or_default()
    }

    /// The host, lowercased, without userinfo or port; `""` when there is none.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert_eq!(Uri::parse("https://me@[::1]:8080/")?.host(), "[::1]");
    /// assert_eq!(Uri::parse("urn:isbn:0451450523")?.host(), "");
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn host(&self) -> &str {
        self.text.get(self.host.0..self.host.1).unwrap_or_default()
    }

    /// The path, percent-decoded and with dot segments removed.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert_eq!(Uri::parse("file:///srv/docs/..%2f..%2fetc/shadow")?.path(), "/etc/shadow");
    /// assert_eq!(Uri::parse("file:///notes/100%25.txt")?.path(), "/notes/100%.txt");
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn path(&self) -> &str {
        match &self.decoded_path {
            Some(p) => p,
            None => self.text.get(self.path.0..self.path.1).unwrap_or_default(),
        }
    }

    /// The query as written, without the `?`.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert_eq!(Uri::parse("db://main/t?id=%31#f")?.query(), Some("id=%31"));
    /// assert_eq!(Uri::parse("db://main/t")?.query(), None);
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn query(&self) -> Option<&str> {
        self.query.and_then(|q| self.text.get(q..))
    }

    /// Whether the scheme is `file`.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert!(Uri::parse("File:/etc/hosts")?.is_file());
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn is_file(&self) -> bool {
        self.scheme() == "file"
    }

    /// Whether the normal form is the parsed text itself (nothing was copied).
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert!(Uri::parse("file:///a/b")?.is_borrowed());
    /// assert!(!Uri::parse("file:///a/./b")?.is_borrowed());
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn is_borrowed(&self) -> bool {
        matches!(self.text, Cow::Borrowed(_))
    }

    /// The same URI, owning its text.
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// let owned: Uri<'static> = Uri::parse(&String::from("mem://a"))?.into_owned();
    /// assert_eq!(owned.as_str(), "mem://a/");
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    pub fn into_owned(self) -> Uri<'static> {
        Uri {
            text: Cow::Owned(self.text.into_owned()),
            scheme_end: self.scheme_end,
            host: self.host,
            path: self.path,
            query: self.query,
            decoded_path: self.decoded_path,
        }
    }

    /// The decoded path, borrowed from the parsed text when it can be.
    fn into_path(self) -> Cow<'a, str> {
        if let Some(p) = self.decoded_path {
            return Cow::Owned(p.into());
        }
        match self.text {
            Cow::Borrowed(t) => Cow::Borrowed(t.get(self.path.0..self.path.1).unwrap_or_default()),
            Cow::Owned(t) => Cow::Owned(
                t.get(self.path.0..self.path.1)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        }
    }
}

impl fmt::Display for Uri<'_> {
    /// Writes [`Uri::as_str`].
    ///
    /// ```
    /// use mcp_policy::uri::Uri;
    /// assert_eq!(Uri::parse("X:a#b")?.to_string(), "x:a");
    /// # Ok::<(), mcp_policy::uri::UriError>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The normalised path of a `file:` URI: `Some(Ok(path))` when `text` starts with `file:`
/// (in any case), `Some(Err(_))` when it does but is not a valid URI, `None` otherwise.
///
/// ```
/// use mcp_policy::uri::file_path;
/// assert_eq!(file_path("file:///srv/docs/../../etc/shadow").unwrap().unwrap(), "/etc/shadow");
/// assert!(file_path("FILE:///%zz").unwrap().is_err());
/// assert!(file_path("/etc/shadow").is_none());
/// ```
pub fn file_path(text: &str) -> Option<Result<Cow<'_, str>, UriError>> {
    if !text.get(..5)?.eq_ignore_ascii_case("file:") {
        return None;
    }
    Some(Uri::parse(text).map(Uri::into_path))
}

fn is_control(c: char) -> bool {
    c < ' ' || c == '\u{7f}'
}

fn control(c: char, found: String, at: usize) -> UriError {
    UriError::Control {
        code: u32::from(c),
        found,
        at,
    }
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn lower(s: &str) -> Cow<'_, str> {
    match s.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(s.to_ascii_lowercase()),
        false => Cow::Borrowed(s),
    }
}

/// Userinfo (with its `@`), host and port (with its `:`).
fn split_authority(a: &str) -> (&str, &str, &str) {
    let (userinfo, hostport) = split_at(a, a.rfind('@').map_or(0, |i| i + 1), |u| u);
    let host_end = match hostport.starts_with('[') {
        true => hostport.find(']').map_or(hostport.len(), |i| i + 1),
        false => hostport.find(':').unwrap_or(hostport.len()),
    };
    let (host, port) = split_at(hostport, host_end, |h| h);
    (userinfo, host, port)
}

/// `s` split at byte `i` (a character boundary), `f` applied to the first part.
fn split_at<'s, T>(s: &'s str, i: usize, f: impl FnOnce(&'s str) -> T) -> (T, &'s str) {
    let (a, b) = s.split_at_checked(i).unwrap_or((s, ""));
    (f(a), b)
}

/// The path's normal-form text and, when that differs from it, the decoded path. `at` is the
/// path's byte offset in the URI.
fn normalise_path(
    raw: &str,
    at: usize,
    authority: bool,
) -> Result<(Cow<'_, str>, Option<Box<str>>), UriError> {
    let decoded = match raw.contains('%') {
        true => Cow::Owned(decode(raw, at)?),
        false => Cow::Borrowed(raw),
    };
    let resolved = if (authority || decoded.starts_with('/')) && needs_resolving(&decoded) {
        Cow::Owned(remove_dots(&decoded))
    } else {
        decoded
    };
    if !resolved.contains(['%', '?', '#']) {
        return Ok((resolved, None));
    }
    let mut text = String::with_capacity(resolved.len() + 8);
    for c in resolved.chars() {
        match c {
            '%' => text.push_str("%25"),
            '?' => text.push_str("%3F"),
            '#' => text.push_str("%23"),
            c => text.push(c),
        }
    }
    Ok((
        Cow::Owned(text),
        Some(resolved.into_owned().into_boxed_str()),
    ))
}

/// Decodes every `%XX` of `raw` (at byte `at` of the URI).
fn decode(raw: &str, mut at: usize) -> Result<String, UriError> {
    let mut out = String::with_capacity(raw.len());
    let mut run = Vec::new();
    let mut rest = raw;
    while let Some(i) = rest.find('%') {
        let (plain, mut tail) = split_at(rest, i, |p| p);
        out.push_str(plain);
        at += i;
        let start = at;
        // One run of consecutive escapes: only a whole run can be checked for UTF-8, as what
        // is written unescaped is whole characters.
        run.clear();
        while let Some(escape) = tail.strip_prefix('%') {
            let hex = |n| {
                escape
                    .as_bytes()
                    .get(n)
                    .and_then(|&b| char::from(b).to_digit(16))
            };
            let (Some(high), Some(low)) = (hex(0), hex(1)) else {
                let found = tail.chars().take(3).collect();
                return Err(UriError::Percent { found, at });
            };
            run.push(u8::try_from(high * 16 + low).unwrap_or_default());
            tail = escape.get(2..).unwrap_or_default();
            at += 3;
        }
        let written = rest.get(i..i + 3 * run.len()).unwrap_or_default();
        let text = std::str::from_utf8(&run).map_err(|_| UriError::NotUtf8 {
            found: written.to_owned(),
            at: start,
        })?;
        if let Some((k, c)) = text.char_indices().find(|(_, c)| is_control(*c)) {
            let found = written.get(3 * k..3 * k + 3).unwrap_or_default().to_owned();
            return Err(control(c, found, start + 3 * k));
        }
        out.push_str(text);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether an absolute (or empty) path has a dot segment or a repeated `/`, or is empty.
fn needs_resolving(p: &str) -> bool {
    p.is_empty()
        || p.contains("//")
        || p.contains("/./")
        || p.contains("/../")
        || p.ends_with("/.")
        || p.ends_with("/..")
}

/// Folds repeated `/` and removes dot segments (RFC 3986 §5.2.4); `p` is empty or starts
/// with `/`.
fn remove_dots(p: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    let mut trailing = false;
    for segment in p.split('/').skip(1) {
        trailing = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let mut out = String::with_capacity(p.len().max(1));
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    if trailing || stack.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass reading of the common case agrees with the full reading wherever it
        /// answers (and answers for the plain URIs hosts send).
        #[test]
        fn the_fast_path_agrees_with_the_full_reading(
            scheme in "(file|test|https|FILE|x-y|a1)",
            sep in "(://|:/|:)",
            host in "(|localhost|LocalHost|example\\.com|h:8080|u@h|%41)",
            path in proptest::collection::vec("(a|b|\\.|\\.\\.||%2e|A|~|x y|é)", 0..5),
            query in "(|\\?q=1|\\?a%20b|\\?x#f)",
        ) {
            let raw = format!("{scheme}{sep}{host}/{}{query}", path.join("/"));
            let full = Uri::full(&raw);
            if let Some(fast) = Uri::simple(&raw) {
                prop_assert!(fast.is_borrowed());
                prop_assert_eq!(Ok(fast), full, "{}", raw);
            }
        }
    }

    #[test]
    fn the_fast_path_takes_the_plain_cases() {
        for raw in [
            "file:///srv/docs/guide.md",
            "test://static/resource/1",
            "https://api.example.com:8443/v1/items/?page=2&q=%20x",
            "fixture://docs/",
        ] {
            let fast = Uri::simple(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(Ok(fast), Uri::full(raw));
        }
        for raw in [
            "file://localhost/x",
            "HTTP://h/",
            "x://h/a//b",
            "x://h/a/../b",
            "x://h/%41",
            "x://h/a#f",
            "x://h",
        ] {
            assert!(Uri::simple(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn resolving_is_needed_exactly_when_it_changes_the_path() {
        for p in [
            "", "/", "//", "/a", "/a/", "/a//b", "/.", "/..", "/a/.", "/a/..", "/./a", "/../a",
            "/a/./b", "/a/../b", "/.a", "/..a", "/a.", "/.../", "/a/b/",
        ] {
            assert_eq!(needs_resolving(p), remove_dots(p) != p, "{p:?}");
        }
        assert_eq!(remove_dots("/a/b/.."), "/a/");
        assert_eq!(remove_dots("/../etc"), "/etc");
        assert_eq!(remove_dots(""), "/");
    }
}
