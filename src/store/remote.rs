//! The async counterpart of [`CounterStore`], for stores across a network (Redis shared by
//! gateway replicas).
//!
//! The core stays free of any runtime and IO crate: a remote store returns futures (which
//! must be `Send`, so hosts can spawn them on a multi-threaded runtime), and
//! [`AsyncEngine`](crate::AsyncEngine) runs plan → one awaited store call → conclude. The
//! contract is the one of [`CounterStore`]: a plan is applied atomically (every charge and the
//! approval's consumption, or nothing), with the arithmetic of [`window`](super::window).
//!
//! Every [`CounterStore`] (such as [`MemoryStore`](super::MemoryStore)) is also an
//! `AsyncCounterStore` whose futures are ready at their first poll, so one async host can run
//! on either.

use std::future::Future;

use super::{CounterStore, Outcome, Plan, Reservation};
use crate::error::{HostError, StoreError};

/// Where counters and approvals live, reached asynchronously.
///
/// Implementations must apply a plan atomically, exactly as [`CounterStore::apply`] does, and
/// answer every call: a store that cannot reach its backend within its own deadline answers
/// an error (the engine then denies, fail closed) rather than never completing.
///
/// ```
/// use mcp_policy::{AsyncCounterStore, MemoryStore, Outcome, Plan};
/// fn needs_send<F: std::future::Future + Send>(f: F) -> F { f }
/// let store = MemoryStore::new();
/// let plan = Plan::new(1_000);
/// // An empty plan is admitted with nothing to refund; the future is `Send`.
/// let future = needs_send(AsyncCounterStore::apply(&store, &plan));
/// # let _ = future;
/// ```
pub trait AsyncCounterStore: Send + Sync {
    /// Applies a plan atomically (see [`CounterStore::apply`]).
    fn apply(&self, plan: &Plan<'_>) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    /// Refunds the charges of an admitted call, once (charges whose window has passed are
    /// ignored).
    fn release(
        &self,
        reservation: Reservation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that a human approved a pending approval id; it becomes usable once, within its
    /// TTL from `now_ms` (a store that keeps its own clock may use that instead).
    fn record_approval(
        &self,
        id: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), HostError>> + Send;
}

impl<S: CounterStore> AsyncCounterStore for S {
    async fn apply(&self, plan: &Plan<'_>) -> Result<Outcome, StoreError> {
        CounterStore::apply(self, plan)
    }

    async fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        CounterStore::release(self, reservation)
    }

    async fn record_approval(&self, id: &str, now_ms: u64) -> Result<(), HostError> {
        CounterStore::record_approval(self, id, now_ms)
    }
}
