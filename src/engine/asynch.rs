//! The async engine: the same decisions as [`Engine`](super::Engine), over a store reached
//! asynchronously (one awaited store call per decision).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use serde_json::Value;

use super::shell::Shell;

// Public names only (each from its own module, not the crate root's re-exports): the
// engine's async half uses nothing private.
use crate::clock::Clock;
use crate::compile::Policy;
use crate::decide::Step;
use crate::decision::Decision;
use crate::error::{HostError, StoreError};
use crate::grant::Grant;
use crate::store::{AsyncCounterStore, Reservation};
use crate::subject::Subject;

/// Decides tool calls against a store reached asynchronously, such as Redis shared by
/// several gateway replicas.
///
/// [`evaluate`](Self::evaluate) runs [`Policy::plan`] (pure, no IO), sends the plan to the
/// store in **one** awaited call, and turns the answer into a decision with
/// [`Policy::conclude`]. Calls that need no store (denied, or allowed without limits or
/// approval) never touch it. Any store error or panic denies, naming the failure. The core
/// has no runtime: the futures are `Send` and run on whatever executor the host uses; a
/// store bounds its own calls in time.
///
/// ```
/// use mcp_policy::{AsyncEngine, Grant, ManualClock, MemoryStore, Policy, Verdict};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
///   "tools":{"scan":{"rate_limit":"2/minute"}}}"#).unwrap();
/// // Any `CounterStore` is also an `AsyncCounterStore`; a Redis store plugs in the same way.
/// let engine = AsyncEngine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
/// let (args, alice) = (serde_json::json!({}), Grant::new("alice"));
/// let d = block_on(engine.evaluate("scan", &args, &alice));
/// assert_eq!((d.verdict, d.remaining), (Verdict::Allow, Some(1)));
/// block_on(engine.evaluate("scan", &args, &alice));
/// let d = block_on(engine.evaluate("scan", &args, &alice));
/// assert_eq!((d.verdict, d.retry_after_ms), (Verdict::Limit, Some(60_000)));
/// ```
pub struct AsyncEngine<C: Clock, S: AsyncCounterStore> {
    shell: Shell<C, S>,
}

impl<C: Clock, S: AsyncCounterStore> std::fmt::Debug for AsyncEngine<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shell.debug("AsyncEngine", f)
    }
}

impl<C: Clock, S: AsyncCounterStore> AsyncEngine<C, S> {
    /// An engine over the given clock and store.
    pub fn with_parts(policy: Policy, clock: C, store: S) -> Self {
        AsyncEngine {
            shell: Shell::new(policy, clock, store),
        }
    }

    /// The current policy.
    pub fn policy(&self) -> Arc<Policy> {
        self.shell.policy()
    }

    /// Replaces the policy atomically; calls in flight finish under the old one (see
    /// [`Engine::reload`](super::Engine::reload)).
    pub fn reload(&self, policy: Policy) {
        self.shell.reload(policy);
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.shell.clock
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.shell.store
    }

    /// Decides one call: `args` is the call's `arguments` object (`Value::Null` when absent).
    /// Total: every input gets a decision, and a store error, timeout or panic denies.
    // Written out (not `async fn`) so that the signature promises a `Send` future.
    #[allow(clippy::manual_async_fn)]
    pub fn evaluate<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        grant: &'a Grant,
    ) -> impl Future<Output = Decision> + Send + 'a {
        self.decide(Subject::Tool(tool), args, grant)
    }

    /// Decides one request for a tool, a resource or a prompt (see
    /// [`Engine::decide`](super::Engine::decide)).
    #[allow(clippy::manual_async_fn)]
    pub fn decide<'a>(
        &'a self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
    ) -> impl Future<Output = Decision> + Send + 'a {
        async move {
            let policy = self.shell.policy.load_full();
            match policy.plan_for(subject, args, grant, self.shell.clock.now_ms()) {
                Step::Done(decision) => decision,
                Step::Apply(pending) => {
                    let outcome = {
                        let mut apply = pin!(self.shell.store.apply(&pending.plan));
                        std::future::poll_fn(|cx| {
                            catch_unwind(AssertUnwindSafe(|| apply.as_mut().poll(cx)))
                                .unwrap_or_else(|_| {
                                    Poll::Ready(Err(StoreError::Unavailable(
                                        "the counter store panicked".into(),
                                    )))
                                })
                        })
                        .await
                    };
                    policy.conclude(pending, outcome)
                }
            }
        }
    }

    /// Refunds an allowed call's charges (the upstream call failed).
    pub fn release(
        &self,
        reservation: Reservation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        self.shell.store.release(reservation)
    }

    /// Records that a human approved `approval_id` (see
    /// [`Engine::record_approval`](super::Engine::record_approval)).
    pub fn record_approval<'a>(
        &'a self,
        approval_id: &'a str,
    ) -> impl Future<Output = Result<(), HostError>> + Send + 'a {
        self.shell
            .store
            .record_approval(approval_id, self.shell.clock.now_ms())
    }
}
