//! The engine: a swappable compiled policy, a clock and a counter store.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde_json::Value;

use crate::clock::{Clock, SystemClock};
use crate::compile::Policy;
use crate::decide::Prepared;
use crate::decision::{Decision, Verdict};
use crate::error::{HostError, StoreError};
use crate::grant::Grant;
use crate::store::{CounterStore, MemoryStore, Plan, Reservation};
use crate::subject::Subject;

mod asynch;
mod decider;
mod shell;

pub use asynch::AsyncEngine;
pub use decider::{AsyncDecider, Decider};
use shell::Shell;

/// The policy engine: owns the compiled policy (atomically swappable for hot reload), a
/// [`Clock`] and a [`CounterStore`].
///
/// ```
/// use mcp_policy::{Decider, Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
/// let policy = Policy::from_json_str(r#"{ "version": "1", "default": "deny",
///   "tools": { "stop_scan": { "limits": [
///     { "counter": "stop_scan_rate", "window": "minute", "max": 2 } ] } } }"#).unwrap();
/// let clock = ManualClock::new(1_763_712_000_000);
/// let engine = Engine::with_parts(policy, clock.clone(), MemoryStore::new());
/// let args = serde_json::json!({"scan_id": "s-1"});
/// let alice = Grant::new("alice");
/// assert_eq!(engine.evaluate("stop_scan", &args, &alice).remaining, Some(1));
/// assert_eq!(engine.evaluate("stop_scan", &args, &alice).remaining, Some(0));
/// clock.advance(30_000);
/// let d = engine.evaluate("stop_scan", &args, &alice);
/// assert_eq!(d.verdict, Verdict::Limit);
/// assert_eq!(d.retry_after_ms, Some(30_000));
/// ```
pub struct Engine<C: Clock = SystemClock, S: CounterStore = MemoryStore> {
    shell: Shell<C, S>,
}

impl<C: Clock, S: CounterStore> std::fmt::Debug for Engine<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shell.debug("Engine", f)
    }
}

impl Engine<SystemClock, MemoryStore> {
    /// An engine with the system clock and a fresh in-memory store.
    pub fn new(policy: Policy) -> Self {
        Engine::with_parts(policy, SystemClock, MemoryStore::new())
    }
}

impl<C: Clock, S: CounterStore> Engine<C, S> {
    /// An engine over the given clock and store.
    pub fn with_parts(policy: Policy, clock: C, store: S) -> Self {
        Engine {
            shell: Shell::new(policy, clock, store),
        }
    }

    /// The current policy.
    pub fn policy(&self) -> Arc<Policy> {
        self.shell.policy()
    }

    /// Replaces the policy atomically; calls in flight finish under the old one. Counters are
    /// kept where a counter's name, window and reset are unchanged (they are part of its key).
    ///
    /// ```
    /// use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
    /// let v1 = r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1}]}}}"#;
    /// let v2 = r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":2}]}}}"#;
    /// let engine = Engine::with_parts(Policy::from_json_str(v1).unwrap(), ManualClock::new(0), MemoryStore::new());
    /// let (args, g) = (serde_json::json!({}), Grant::new("a"));
    /// assert_eq!(engine.evaluate("t", &args, &g).verdict, Verdict::Allow);
    /// engine.reload(Policy::from_json_str(v2).unwrap());
    /// // The counter kept its one use: one more fits under the new max of 2.
    /// assert_eq!(engine.evaluate("t", &args, &g).remaining, Some(0));
    /// ```
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

    /// Decides one tool call (see [`Decider::evaluate`]).
    #[inline]
    pub fn evaluate(&self, tool: &str, args: &Value, grant: &Grant) -> Decision {
        self.decide(Subject::Tool(tool), args, grant)
    }

    /// Decides one request for a tool, a resource or a prompt (see [`Decider::decide`]).
    /// A resource's arguments are `{}`; a prompt's are its `arguments`.
    ///
    /// ```
    /// use mcp_policy::subject::Subject;
    /// use mcp_policy::uri::Uri;
    /// use mcp_policy::{Engine, Grant, Policy, Verdict};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///   "resources":{"file:///srv/docs/*":{"rate_limit":"100/minute"}}}"#).unwrap();
    /// let engine = Engine::new(policy);
    /// let (args, alice) = (serde_json::json!({}), Grant::new("alice"));
    /// let uri = Uri::parse("file:///srv/docs/guide.md").unwrap();
    /// let d = engine.decide(Subject::Resource(&uri), &args, &alice);
    /// assert_eq!((d.verdict, d.remaining), (Verdict::Allow, Some(99)));
    /// let escape = Uri::parse("file:///srv/docs/%2e%2e/%2e%2e/etc/shadow").unwrap();
    /// assert_eq!(engine.decide(Subject::Resource(&escape), &args, &alice).verdict, Verdict::Deny);
    /// ```
    pub fn decide(&self, subject: Subject<'_>, args: &Value, grant: &Grant) -> Decision {
        let policy = self.shell.policy.load();
        // The same steps as `Policy::plan`, then `Policy::conclude`, with the plan built in
        // this frame and never moved.
        let mut plan = Plan::new(self.shell.clock.now_ms());
        match policy.prepare(subject, args, grant, &mut plan) {
            Prepared::Allow(rule) => Decision::new(Verdict::Allow, rule.clone(), None),
            Prepared::Deny(rule, message) => {
                Decision::new(Verdict::Deny, rule.clone(), Some(message))
            }
            Prepared::Hidden(rule, message) => Decision::hide(rule, message),
            Prepared::Store(context) => {
                let outcome = catch_unwind(AssertUnwindSafe(|| self.shell.store.apply(&plan)))
                    .unwrap_or_else(|_| {
                        Err(StoreError::Unavailable("the counter store panicked".into()))
                    });
                policy.finish(&plan, context, outcome)
            }
        }
    }

    /// Refunds an allowed call's charges (the upstream call failed).
    pub fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        self.shell.store.release(reservation)
    }

    /// Records that a human approved `approval_id`: the next call with exactly that binding,
    /// within the policy's approval TTL, goes on to the limits stage, once.
    ///
    /// ```
    /// use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///     "tools":{"transfer":{"action":"require_approval"}}}"#).unwrap();
    /// let engine = Engine::with_parts(policy, ManualClock::new(0), MemoryStore::new());
    /// let (args, g) = (serde_json::json!({"amount": 5}), Grant::new("alice"));
    /// let d = engine.evaluate("transfer", &args, &g);
    /// assert_eq!(d.verdict, Verdict::Approve);
    /// engine.record_approval(d.approval_id.as_deref().unwrap()).unwrap();
    /// assert_eq!(engine.evaluate("transfer", &args, &g).verdict, Verdict::Allow);
    /// // Used once: the next identical call needs a new approval.
    /// assert_eq!(engine.evaluate("transfer", &args, &g).verdict, Verdict::Approve);
    /// ```
    pub fn record_approval(&self, approval_id: &str) -> Result<(), HostError> {
        self.shell
            .store
            .record_approval(approval_id, self.shell.clock.now_ms())
    }
}
