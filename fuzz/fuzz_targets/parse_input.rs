//! Parsing untrusted JSON text (argument text and `eval` input lines) never panics, rejects
//! duplicate keys, and bounds depth and size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(args) = mcp_policy::args::parse_args(text) {
        assert!(args.is_object());
        assert!(mcp_policy::args::check_args(&args).is_ok());
    }
    let _ = mcp_policy::source::parse_json(text);
});
