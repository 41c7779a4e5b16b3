//! Resource URIs from arbitrary text: parsing never panics, the normal form parses to itself
//! (borrowed, with the same parts), and an absolute path keeps no dot segment and no `//`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_policy::uri::{Uri, file_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Uri::parse(text);
    if let Some(path) = file_path(text) {
        assert_eq!(path.ok().as_deref(), parsed.as_ref().ok().map(Uri::path));
    }
    let Ok(uri) = parsed else { return };
    let again = Uri::parse(uri.as_str())
        .unwrap_or_else(|e| panic!("{text:?} → {:?} does not parse: {e}", uri.as_str()));
    assert_eq!(again.as_str(), uri.as_str(), "{text:?}");
    assert!(
        again.is_borrowed(),
        "{text:?} → {:?} is not borrowed",
        uri.as_str()
    );
    assert_eq!(
        (again.scheme(), again.host(), again.path(), again.query()),
        (uri.scheme(), uri.host(), uri.path(), uri.query())
    );
    let path = uri.path();
    if path.starts_with('/') {
        assert!(!path.contains("//"), "{text:?} → {path:?}");
        assert!(
            path.split('/').all(|s| s != "." && s != ".."),
            "{text:?} → {path:?}"
        );
    }
});
