//! Condition paths, durations and tool-name patterns from arbitrary text never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (left, right) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    if let Ok(path) = mcp_policy::path::Path::parse(text) {
        assert_eq!(path.to_string(), text);
    }
    if let Ok(ms) = mcp_policy::duration::parse_duration(text) {
        assert!(ms > 0 && ms <= mcp_policy::duration::MAX_DURATION_MS);
    }
    let glob = mcp_policy::pattern::Glob::new(left);
    let _ = glob.matches(right);
    if !mcp_policy::pattern::is_pattern(left) {
        assert_eq!(glob.matches(right), left == right);
    }
});
