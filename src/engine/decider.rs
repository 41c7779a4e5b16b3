//! What a host needs from a policy engine, in one trait with a synchronous and an
//! asynchronous form: [`Decider`] (plain threads; the [`Gateway`](crate::mcp::Gateway) and the
//! `mcp-policy` command take one) and [`AsyncDecider`] (an async host, such as the rmcp
//! adapter). [`Engine`](super::Engine) is a `Decider`, and so an `AsyncDecider` too;
//! [`AsyncEngine`](super::AsyncEngine) is an `AsyncDecider`.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use super::{AsyncEngine, Engine};
use crate::clock::Clock;
use crate::compile::Policy;
use crate::decision::Decision;
use crate::error::{HostError, StoreError};
use crate::grant::Grant;
use crate::store::{AsyncCounterStore, CounterStore, Reservation};
use crate::subject::Subject;

/// Decides tool calls: what a host needs from a policy engine. [`Engine`] implements it; a
/// host with another store (a remote one, say) implements it over that. Every `Decider` that
/// is `Send + Sync` is also an [`AsyncDecider`], whose futures are ready at once.
pub trait Decider {
    /// Decides one `tools/call`: `args` is the call's `arguments` object (`Value::Null` when
    /// absent). Total: every input gets a decision, and any internal failure denies.
    ///
    /// ```
    /// use mcp_policy::{Decider, Engine, Grant, Policy, Verdict};
    /// fn verdict(decider: &dyn Decider, tool: &str) -> Verdict {
    ///     decider.evaluate(tool, &serde_json::json!({}), &Grant::new("alice")).verdict
    /// }
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny","tools":{"read":{}}}"#)?;
    /// let engine = Engine::new(policy);
    /// assert_eq!(verdict(&engine, "read"), Verdict::Allow);
    /// assert_eq!(verdict(&engine, "write"), Verdict::Deny);
    /// # Ok::<(), mcp_policy::LoadErrors>(())
    /// ```
    fn evaluate(&self, tool: &str, args: &Value, grant: &Grant) -> Decision {
        self.decide(Subject::Tool(tool), args, grant)
    }

    /// Decides one request for a tool, a resource or a prompt: `args` is a tool call's or a
    /// prompt's `arguments` (`Value::Null` when absent), `{}` for a resource. Total, as
    /// [`evaluate`](Self::evaluate).
    ///
    /// ```
    /// use mcp_policy::subject::Subject;
    /// use mcp_policy::{Decider, Engine, Grant, Policy, Verdict};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "prompts":{"greet":{"require":[{"path":"args.name","op":"exists","value":true}]}}}"#)?;
    /// let decider: &dyn Decider = &Engine::new(policy);
    /// let alice = Grant::new("alice");
    /// let with = serde_json::json!({"name": "Ada"});
    /// assert_eq!(decider.decide(Subject::Prompt("greet"), &with, &alice).verdict, Verdict::Allow);
    /// let without = serde_json::json!({});
    /// assert_eq!(decider.decide(Subject::Prompt("greet"), &without, &alice).verdict, Verdict::Deny);
    /// # Ok::<(), mcp_policy::LoadErrors>(())
    /// ```
    fn decide(&self, subject: Subject<'_>, args: &Value, grant: &Grant) -> Decision;

    /// Records that a human approved `approval_id`: the next call with exactly that binding,
    /// within the policy's approval TTL, goes on to the limits stage, once.
    ///
    /// ```
    /// use mcp_policy::{Decider, Engine, Grant, Policy, Verdict};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///     "tools":{"transfer":{"action":"require_approval"}}}"#)?;
    /// let decider: &dyn Decider = &Engine::new(policy);
    /// let (args, alice) = (serde_json::json!({"amount": 5}), Grant::new("alice"));
    /// let d = decider.evaluate("transfer", &args, &alice);
    /// assert_eq!(d.verdict, Verdict::Approve);
    /// decider.record_approval(d.approval_id.as_deref().unwrap_or_default()).unwrap();
    /// assert_eq!(decider.evaluate("transfer", &args, &alice).verdict, Verdict::Allow);
    /// # Ok::<(), mcp_policy::LoadErrors>(())
    /// ```
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError>;

    /// Refunds an allowed call's charges (the upstream call failed: the tool never ran).
    ///
    /// ```
    /// use mcp_policy::{Decider, Engine, Grant, Policy};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///     "tools":{"scan":{"rate_limit":"1/minute"}}}"#)?;
    /// let decider: &dyn Decider = &Engine::new(policy);
    /// let (args, alice) = (serde_json::json!({}), Grant::new("alice"));
    /// let d = decider.evaluate("scan", &args, &alice);
    /// assert_eq!(d.remaining, Some(0));
    /// decider.release(d.reservation.unwrap()).unwrap();
    /// // The use was refunded: the next call fits again.
    /// assert_eq!(decider.evaluate("scan", &args, &alice).remaining, Some(0));
    /// # Ok::<(), mcp_policy::LoadErrors>(())
    /// ```
    fn release(&self, reservation: Reservation) -> Result<(), StoreError>;

    /// The current policy (for filtering `tools/list`).
    fn policy(&self) -> Arc<Policy>;

    /// Whether the current policy trusts the server's tool annotations (a host then looks
    /// them up for each call).
    fn trusts_annotations(&self) -> bool {
        self.policy().trusts_annotations()
    }

    /// Whether approvals recorded by another process (`mcp-policy approve`) reach this
    /// decider's store. An in-memory store answers no.
    fn shares_approvals(&self) -> bool {
        false
    }
}

impl<C: Clock, S: CounterStore> Decider for Engine<C, S> {
    fn decide(&self, subject: Subject<'_>, args: &Value, grant: &Grant) -> Decision {
        Engine::decide(self, subject, args, grant)
    }
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError> {
        Engine::record_approval(self, approval_id)
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        Engine::release(self, reservation)
    }
    fn policy(&self) -> Arc<Policy> {
        Engine::policy(self)
    }
    fn trusts_annotations(&self) -> bool {
        self.shell.policy.load().trusts_annotations()
    }
}

impl<D: Decider + ?Sized> Decider for Arc<D> {
    fn decide(&self, subject: Subject<'_>, args: &Value, grant: &Grant) -> Decision {
        (**self).decide(subject, args, grant)
    }
    fn record_approval(&self, approval_id: &str) -> Result<(), HostError> {
        (**self).record_approval(approval_id)
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        (**self).release(reservation)
    }
    fn policy(&self) -> Arc<Policy> {
        (**self).policy()
    }
    fn shares_approvals(&self) -> bool {
        (**self).shares_approvals()
    }
    fn trusts_annotations(&self) -> bool {
        (**self).trusts_annotations()
    }
}

/// [`Decider`] for an async host: the same operations, with the ones that reach the store
/// returning `Send` futures (run on whatever executor the host uses). [`AsyncEngine`]
/// implements it, and so does every `Decider` that is `Send + Sync` (its futures are ready at
/// once).
///
/// ```
/// use mcp_policy::{AsyncDecider, AsyncEngine, Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// async fn verdict(decider: &impl AsyncDecider, tool: &str) -> Verdict {
///     decider.evaluate(tool, &serde_json::json!({}), &Grant::new("alice")).await.verdict
/// }
/// let json = r#"{"version":"1","default":"deny","tools":{"read":{}}}"#;
/// let engine = Engine::new(Policy::from_json_str(json)?);
/// let remote = AsyncEngine::with_parts(Policy::from_json_str(json)?, ManualClock::new(0), MemoryStore::new());
/// assert_eq!(block_on(verdict(&engine, "read")), Verdict::Allow);
/// assert_eq!(block_on(verdict(&remote, "write")), Verdict::Deny);
/// # Ok::<(), mcp_policy::LoadErrors>(())
/// ```
pub trait AsyncDecider: Send + Sync {
    /// Decides one call (see [`Decider::evaluate`]).
    fn evaluate<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        grant: &'a Grant,
    ) -> impl Future<Output = Decision> + Send + 'a {
        self.decide(Subject::Tool(tool), args, grant)
    }

    /// Decides one request for a tool, a resource or a prompt (see [`Decider::decide`]).
    fn decide<'a>(
        &'a self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
    ) -> impl Future<Output = Decision> + Send + 'a;

    /// Records a human's approval (see [`Decider::record_approval`]).
    fn record_approval<'a>(
        &'a self,
        approval_id: &'a str,
    ) -> impl Future<Output = Result<(), HostError>> + Send + 'a;

    /// Refunds an allowed call's charges (see [`Decider::release`]).
    fn release(
        &self,
        reservation: Reservation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_;

    /// The current policy (for filtering `tools/list`).
    fn policy(&self) -> Arc<Policy>;

    /// Whether approvals recorded by another process reach this decider's store (see
    /// [`Decider::shares_approvals`]).
    fn shares_approvals(&self) -> bool {
        false
    }
}

impl<D: Decider + Send + Sync + ?Sized> AsyncDecider for D {
    fn decide<'a>(
        &'a self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
    ) -> impl Future<Output = Decision> + Send + 'a {
        std::future::ready(Decider::decide(self, subject, args, grant))
    }
    fn record_approval<'a>(
        &'a self,
        approval_id: &'a str,
    ) -> impl Future<Output = Result<(), HostError>> + Send + 'a {
        std::future::ready(Decider::record_approval(self, approval_id))
    }
    fn release(
        &self,
        reservation: Reservation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        std::future::ready(Decider::release(self, reservation))
    }
    fn policy(&self) -> Arc<Policy> {
        Decider::policy(self)
    }
    fn shares_approvals(&self) -> bool {
        Decider::shares_approvals(self)
    }
}

impl<C: Clock, S: AsyncCounterStore> AsyncDecider for AsyncEngine<C, S> {
    fn decide<'a>(
        &'a self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
    ) -> impl Future<Output = Decision> + Send + 'a {
        AsyncEngine::decide(self, subject, args, grant)
    }
    fn record_approval<'a>(
        &'a self,
        approval_id: &'a str,
    ) -> impl Future<Output = Result<(), HostError>> + Send + 'a {
        AsyncEngine::record_approval(self, approval_id)
    }
    fn release(
        &self,
        reservation: Reservation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        AsyncEngine::release(self, reservation)
    }
    fn policy(&self) -> Arc<Policy> {
        AsyncEngine::policy(self)
    }
}

impl<C: Clock, S: AsyncCounterStore> AsyncDecider for Arc<AsyncEngine<C, S>> {
    fn decide<'a>(
        &'a self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
    ) -> impl Future<Output = Decision> + Send + 'a {
        AsyncEngine::decide(self, subject, args, grant)
    }
    fn record_approval<'a>(
        &'a self,
        approval_id: &'a str,
    ) -> impl Future<Output = Result<(), HostError>> + Send + 'a {
        AsyncEngine::record_approval(self, approval_id)
    }
    fn release(
        &self,
        reservation: Reservation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        AsyncEngine::release(self, reservation)
    }
    fn policy(&self) -> Arc<Policy> {
        AsyncEngine::policy(self)
    }
}
