//! Signals: SIGTERM, SIGINT and SIGHUP each ask a host to stop gracefully (calls in flight
//! are answered first). The same three for both hosts: SIGHUP's default action would kill
//! the process at once, and policy and keys reload by watching their files, not by signal.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals that stop a host.
pub const STOP_SIGNALS: [i32; 3] = [SIGTERM, SIGINT, SIGHUP];

/// Calls `stop` (on a thread of its own) when the first of [`STOP_SIGNALS`] arrives. If the
/// signals cannot be handled, says so on stderr and the host runs without.
pub fn on_stop(stop: impl FnOnce() + Send + 'static) {
    match signal_hook::iterator::Signals::new(STOP_SIGNALS) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    stop();
                }
            });
        }
        Err(e) => eprintln!("mcp-policy proxy: cannot handle signals: {e}"),
    }
}
