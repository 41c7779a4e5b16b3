//! The host's timer: a thread that ticks every [`TICK`] for as long as the host it serves is
//! alive (approval timeouts, idle sessions, parked streams).

use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the timer ticks: approval timeouts are kept to within this.
pub const TICK: Duration = Duration::from_millis(100);

/// Calls `tick` every [`TICK`] on a thread of its own, until `host` is dropped.
pub fn every_tick<T: Send + Sync + 'static>(
    host: &Arc<T>,
    mut tick: impl FnMut(&Arc<T>) + Send + 'static,
) {
    let weak: Weak<T> = Arc::downgrade(host);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(TICK);
            let Some(host) = weak.upgrade() else {
                return;
            };
            tick(&host);
        }
    });
}
