//! What [`Engine`](super::Engine) and [`AsyncEngine`](super::AsyncEngine) both are: a
//! compiled policy that can be swapped while calls are in flight, a clock, and a counter
//! store. Each engine wraps one and adds how it reaches its store.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::compile::Policy;

/// The policy (atomically swappable for hot reload), the clock and the store.
pub(super) struct Shell<C, S> {
    pub(super) policy: ArcSwap<Policy>,
    pub(super) clock: C,
    pub(super) store: S,
}

impl<C, S> Shell<C, S> {
    pub(super) fn new(policy: Policy, clock: C, store: S) -> Self {
        Shell {
            policy: ArcSwap::from_pointee(policy),
            clock,
            store,
        }
    }

    /// The current policy.
    pub(super) fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Replaces the policy atomically; calls in flight finish under the old one.
    pub(super) fn reload(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    /// An engine's `Debug`: its name and its policy's revision.
    pub(super) fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("revision", &self.policy.load().revision())
            .finish_non_exhaustive()
    }
}
