//! Loading a policy from arbitrary bytes never panics; errors always carry a position.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match mcp_policy::Policy::from_json_str(text) {
        Ok(policy) => {
            let _ = policy.can_ever_allow("x");
        }
        Err(errors) => {
            for e in errors.errors() {
                assert!(e.position.is_some(), "load error without a position: {e}");
                let _ = e.to_string();
            }
        }
    }
});
