//! `mcp_policy::uri`: the normal forms of resource URIs (examples, errors, properties), and
//! that parsing a URI already in normal form allocates nothing.
//!
//! A counting global allocator (test-only; the library itself forbids `unsafe`) counts the
//! allocations made by the current thread while a closure runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;

use mcp_policy::uri::{MAX_LEN, Uri, UriError, file_path};
use proptest::prelude::*;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = COUNT.with(Cell::get);
    let out = f();
    (COUNT.with(Cell::get) - before, out)
}

#[test]
fn normal_forms_parse_without_allocating() {
    let (n, b) = allocations(|| Box::new(7u64));
    assert_eq!((n, *b), (1, 7), "the counter sees allocations");
    for raw in [
        "test://static/resource/1",
        "file:///srv/docs/report.pdf",
        "https://example.com/a/b/?q=%41&r=1",
        "urn:isbn:0451450523",
        "file:///srv/docs/",
    ] {
        let (n, u) = allocations(|| Uri::parse(raw));
        assert_eq!(n, 0, "{raw}");
        assert_eq!(u.map(|u| u.as_str() == raw), Ok(true));
        let (n, p) =
            allocations(|| file_path(raw).map(|p| p.map(|p| matches!(p, Cow::Borrowed(_)))));
        assert_eq!(n, 0, "{raw}");
        assert!(p.is_none_or(|p| p == Ok(true)));
    }
}

fn norm(raw: &str) -> String {
    Uri::parse(raw).unwrap().as_str().to_owned()
}

#[test]
fn traversal_does_not_stay_under_its_prefix() {
    for raw in [
        "file:///srv/docs/../../etc/shadow",
        "file:///srv/docs/%2e%2e/%2E%2E/etc/shadow",
        "file:///srv/docs/..%2f..%2fetc/shadow",
        "file:///srv/docs/..%2F..%2Fetc/./shadow#frag",
        "file://localhost/srv//docs/../../etc/shadow",
    ] {
        let u = Uri::parse(raw).unwrap();
        assert_eq!(
            (u.path(), u.as_str()),
            ("/etc/shadow", "file:///etc/shadow"),
            "{raw}"
        );
    }
}

#[test]
fn normal_forms() {
    for (raw, want) in [
        ("FILE://LocalHost/a//b/./c", "file:///a/b/c"),
        ("HTTPS://Example.COM", "https://example.com/"),
        (
            "https://Me:PW@Example.COM:8443/A?B=%41#c",
            "https://Me:PW@example.com:8443/A?B=%41",
        ),
        ("http://[FE80::1]:80/x", "http://[fe80::1]:80/x"),
        ("file:/etc/hosts", "file:///etc/hosts"),
        ("file:///../etc", "file:///etc"),
        ("file:///a/b/..", "file:///a/"),
        ("file:///a/b/.", "file:///a/b/"),
        ("file:///a/b/../..", "file:///"),
        ("x:/%2F%2Fevil/x", "x:/evil/x"),
        ("urn:a/../b", "urn:a/../b"),
        ("mailto:x", "mailto:x"),
        ("urn:a%20b", "urn:a b"),
        ("file:///100%25%3f%23", "file:///100%25%3F%23"),
        ("file:///caf%C3%A9", "file:///café"),
        ("x://h?q#f", "x://h/?q"),
    ] {
        assert_eq!(norm(raw), want, "{raw}");
        assert_eq!(norm(want), want, "{want}");
    }
}

#[test]
fn parts() {
    let u = Uri::parse("HTTPS://u@Ex.com:1/a%2Fb?x=%41").unwrap();
    assert_eq!(u.scheme(), "https");
    assert_eq!(u.host(), "ex.com");
    assert_eq!(u.path(), "/a/b");
    assert_eq!(u.query(), Some("x=%41"));
    assert!(!u.is_file());
    let u = Uri::parse("file:///n/50%25?.txt").unwrap();
    assert_eq!((u.path(), u.query()), ("/n/50%", Some(".txt")));
    assert_eq!(u.as_str(), "file:///n/50%25?.txt");
    assert!(u.is_borrowed());
    assert_eq!(Uri::parse("mailto:x").unwrap().host(), "");
}

#[test]
fn normal_forms_are_borrowed() {
    for raw in [
        "test://static/resource/1",
        "file:///etc/hosts",
        "urn:a/../b",
        "x://h/?q=%zz",
    ] {
        assert!(Uri::parse(raw).unwrap().is_borrowed(), "{raw}");
    }
    for raw in [
        "Test://static/",
        "file://localhost/a",
        "x://h/#f",
        "x://h/a/./b",
        "x://H/",
    ] {
        assert!(!Uri::parse(raw).unwrap().is_borrowed(), "{raw}");
    }
    let owned = Uri::parse("x://H/").unwrap().into_owned();
    assert_eq!(owned.to_string(), "x://h/");
}

#[test]
fn errors() {
    let err = |raw: &str| Uri::parse(raw).unwrap_err().to_string();
    assert_eq!(
        err("file:///a%zz"),
        r#"invalid percent-encoding "%zz" at byte 9 of the URI"#
    );
    assert_eq!(
        err("file:///a%"),
        r#"invalid percent-encoding "%" at byte 9 of the URI"#
    );
    assert_eq!(
        err("x:%4"),
        r#"invalid percent-encoding "%4" at byte 2 of the URI"#
    );
    assert_eq!(
        err("x:%+1"),
        r#"invalid percent-encoding "%+1" at byte 2 of the URI"#
    );
    assert_eq!(
        err("file:///%c3%28"),
        r#"percent-encoded bytes "%c3%28" at byte 8 of the URI are not UTF-8"#
    );
    assert_eq!(
        err("file:///a%41%00"),
        r#"control character U+0000 ("%00") at byte 12 of the URI"#
    );
    assert_eq!(
        err("x:a\nb"),
        r#"control character U+000A ("\n") at byte 3 of the URI"#
    );
    assert!(err("no-scheme").starts_with(r#"not a URI: "no-scheme" does not start"#));
    assert!(err("1abc:x").starts_with(r#"not a URI: "1abc:x""#));
    assert!(err(":x").starts_with("not a URI"));
    assert_eq!(err(""), "empty URI");
    assert!(err(&format!("x:{}", "a".repeat(MAX_LEN))).contains("65538 bytes"));
    assert!(Uri::parse(&format!("x:{}", "a".repeat(MAX_LEN - 2))).is_ok());
    assert_eq!(
        file_path("file:///%c3"),
        Some(Err(UriError::NotUtf8 {
            found: "%c3".into(),
            at: 8
        }))
    );
}

#[test]
fn file_paths() {
    assert_eq!(file_path("file:///a/b"), Some(Ok(Cow::Borrowed("/a/b"))));
    assert!(matches!(
        file_path("file:///a/b"),
        Some(Ok(Cow::Borrowed(_)))
    ));
    assert_eq!(
        file_path("FiLe://LOCALHOST/a/../b"),
        Some(Ok(Cow::Borrowed("/b")))
    );
    assert_eq!(file_path("file:///x%3Fy"), Some(Ok(Cow::Borrowed("/x?y"))));
    assert_eq!(file_path("files:///a"), None);
    assert_eq!(file_path("fil"), None);
    assert_eq!(file_path("/a/b"), None);
}

/// Path pieces: plain, dot segments, escapes (of `.`, `/`, `%`, `?`, `#`, UTF-8), bad escapes.
const PIECES: &[&str] = &[
    "a", "B", "..", ".", "", "%2e", "%2E%2e", "%2f", "%2F", "%25", "%3f", "%23", "%41", "%c3%a9",
    "é", " ", "~", "%zz", "%", "?", "#", "%00", "%c3", "//", ":", "@",
];

fn any_uri() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["file", "FILE", "http", "HTTPS", "x", "urn", "T+1.a-b"]);
    let authority = prop::option::of(prop_oneof![
        Just("localhost".to_owned()),
        Just("LocalHost".to_owned()),
        "[a-zA-Z0-9@:.%\\[\\]-]{0,10}",
    ]);
    let path = prop::collection::vec((any::<bool>(), prop::sample::select(PIECES)), 0..8);
    let query = prop::option::of("[a-zA-Z0-9=%&?/.]{0,8}");
    let fragment = prop::option::of("[a-z#?/%]{0,5}");
    (scheme, authority, path, query, fragment).prop_map(|(s, a, p, q, f)| {
        let mut uri = format!("{s}:");
        if let Some(a) = a {
            uri.push_str("//");
            uri.push_str(&a);
        }
        for (slash, piece) in p {
            if slash {
                uri.push('/');
            }
            uri.push_str(piece);
        }
        if let Some(q) = q {
            uri.push('?');
            uri.push_str(&q);
        }
        if let Some(f) = f {
            uri.push('#');
            uri.push_str(&f);
        }
        uri
    })
}

/// Checks what holds of every parsed URI: its normal form parses to itself, borrowed, with the
/// same parts; an absolute path has no dot segment and no `//`.
fn check(raw: &str) -> Result<(), TestCaseError> {
    let Ok(u) = Uri::parse(raw) else {
        return Ok(());
    };
    let again = Uri::parse(u.as_str())
        .map_err(|e| TestCaseError::fail(format!("{raw:?} → {:?} → {e}", u.as_str())))?;
    prop_assert_eq!(again.as_str(), u.as_str(), "{:?}", raw);
    prop_assert!(
        again.is_borrowed(),
        "{:?} → {:?} is not borrowed",
        raw,
        u.as_str()
    );
    prop_assert_eq!(
        (again.scheme(), again.host(), again.path(), again.query()),
        (u.scheme(), u.host(), u.path(), u.query())
    );
    if u.path().starts_with('/') {
        prop_assert!(!u.path().contains("//"), "{:?} → {:?}", raw, u.path());
        for segment in u.path().split('/') {
            prop_assert!(
                segment != "." && segment != "..",
                "{:?} → {:?}",
                raw,
                u.path()
            );
        }
    }
    Ok(())
}

/// Under `file:///root/`, the segments the traversal properties draw from.
const SEGMENTS: &[&str] = &[
    "a",
    "b",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2E%2e",
    "%2f",
    "..%2f",
    "%2e",
    "x%2f..%2f..",
];

/// The reference model: decode every `%XX`, split on `/`, resolve on a stack (`..` at the root
/// stays there). The resolved path and its segments.
fn reference(path: &str) -> (String, Vec<String>) {
    let mut bytes = Vec::new();
    let mut rest = path.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match (b, tail) {
            (b'%', [h, l, tail @ ..]) => {
                let hex = std::str::from_utf8(&[*h, *l]).unwrap().to_owned();
                bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                rest = tail;
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    let decoded = String::from_utf8(bytes).unwrap();
    let mut stack: Vec<String> = Vec::new();
    let mut trailing = false;
    for segment in decoded.split('/').skip(1) {
        trailing = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => drop(stack.pop()),
            s => stack.push(s.to_owned()),
        }
    }
    let mut out: String = stack.iter().map(|s| format!("/{s}")).collect();
    if trailing || stack.is_empty() {
        out.push('/');
    }
    (out, stack)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normal_forms_are_idempotent(raw in any_uri()) {
        check(&raw)?;
    }

    #[test]
    fn arbitrary_text_is_idempotent_when_it_parses(raw in "[a-zA-Z]{1,3}:\\PC{0,24}") {
        check(&raw)?;
    }

    #[test]
    fn paths_resolve_like_the_reference_and_never_keep_dots(
        segments in prop::collection::vec(prop::sample::select(SEGMENTS), 0..10)
    ) {
        let raw = format!("file:///root/{}", segments.join("/"));
        let u = Uri::parse(&raw).unwrap();
        let (want, stack) = reference(&format!("/root/{}", segments.join("/")));
        let path = u.path();
        prop_assert_eq!(path, want.as_str(), "{}", raw);
        prop_assert!(path.starts_with('/') && !path.contains("//"));
        prop_assert!(path.split('/').all(|s| s != "." && s != ".."), "{}", path);
        let under = stack.first().is_some_and(|s| s == "root");
        prop_assert_eq!(under, path == "/root" || path.starts_with("/root/"), "{} → {}", raw, path);
        prop_assert_eq!(u.as_str(), format!("file://{path}"));
    }
}
