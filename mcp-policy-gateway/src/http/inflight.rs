//! Counting client requests in flight: the gateway's shutdown waits for the count to reach
//! zero (or for its grace period to end).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts a client request until its answer has been sent (or the client went away).
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one more request in `count` until dropped.
    pub fn new(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
