//! What a host can learn from the policy as it works, without IO: an [`Observer`] is told
//! each decision (its kind, verdict, rule, counter, and how long deciding took), how each
//! forwarded call ended, and each step of an approval. The gateway ([`crate::mcp::Gateway`])
//! and the rmcp adapter call it; a host records what it wants (the `mcp-policy proxy`
//! command turns it into Prometheus metrics).
//!
//! The hook costs nothing when unused: [`Observers::none`] is one `None` checked per event,
//! no allocation, no clock read. Every label an observer may want is bounded by the policy:
//! the rule is a JSON Pointer into it, the counter a name it defines; names and arguments
//! from callers are there for observers that choose to read them, never needed.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use mcp_policy::observe::{Decided, Observer, Observers};
//! use mcp_policy::{Engine, Grant, Policy, Verdict};
//!
//! #[derive(Default)]
//! struct Denials(AtomicU64);
//! impl Observer for Denials {
//!     fn decided(&self, decided: &Decided<'_>) {
//!         if decided.decision.verdict == Verdict::Deny {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! let denials = Arc::new(Denials::default());
//! let observers = Observers::new(denials.clone());
//! let policy = Policy::from_json_str(r#"{"version":"1","default":"deny","tools":{"ping":{}}}"#).unwrap();
//! let engine = Engine::new(policy);
//! for tool in ["ping", "rm"] {
//!     let d = engine.evaluate(tool, &serde_json::json!({}), &Grant::new("alice"));
//!     observers.decided(mcp_policy::subject::Kind::Tool, tool, &d, std::time::Duration::ZERO);
//! }
//! assert_eq!(denials.0.load(Ordering::Relaxed), 1);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::decision::Decision;
use crate::subject::Kind;

/// One decision made.
#[derive(Debug)]
#[non_exhaustive]
pub struct Decided<'a> {
    /// What was decided on: a tool, a resource or a prompt.
    pub kind: Kind,
    /// The tool's or prompt's name, or the resource's URI, as the client sent it (unbounded:
    /// never a metric label as it is).
    pub name: &'a str,
    /// The decision: verdict, rule, counter, whether the store failed
    /// ([`Decision::store_failed`]).
    pub decision: &'a Decision,
    /// How long deciding took.
    pub took: Duration,
    /// The W3C `traceparent` the client sent in the request's `params._meta` (MCP
    /// 2026-07-28, SEP-414), read only for an observer that [`Observer::traces`].
    pub traceparent: Option<&'a str>,
}

/// What a tracing observer keeps of a forwarded call until it ends: the client's trace
/// context, the one forwarded in its place (the observer's own span), and what was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traced {
    /// The `traceparent` the client sent, if any.
    pub parent: Option<String>,
    /// The `traceparent` put in the forwarded request's `params._meta` (from
    /// [`Observer::forwarding`]).
    pub forwarded: String,
    /// The rule that allowed the call.
    pub rule: crate::text::Text,
}

/// How a forwarded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finished<'a> {
    /// What was called.
    pub kind: Kind,
    /// The server's answer: `ok`, `tool_error` (a result with `isError`), `error` (a JSON-RPC
    /// error), `gone` (the server went away first) or `input_required` (2026-07-28: the
    /// server asked the client for input; the call goes on in a retry).
    pub upstream: &'static str,
    /// Whether the call's charges were released (it never ran).
    pub refunded: bool,
    /// From the request's arrival to the server's answer.
    pub took: Duration,
    /// The call's trace, when an observer that [`Observer::traces`] gave one in
    /// [`Observer::forwarding`].
    pub traced: Option<&'a Traced>,
}

/// A step of an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalEvent {
    /// A human was asked (by elicitation, `input_required`, or out of band).
    Asked,
    /// The human approved, and the approval was recorded.
    Granted,
    /// The human declined or cancelled, or the client could not ask.
    Declined,
    /// No answer came within the approval timeout.
    Expired,
    /// The call waited for an answer when its client or server went away.
    Abandoned,
}

impl ApprovalEvent {
    /// `asked`, `granted`, `declined`, `expired` or `abandoned`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalEvent::Asked => "asked",
            ApprovalEvent::Granted => "granted",
            ApprovalEvent::Declined => "declined",
            ApprovalEvent::Expired => "expired",
            ApprovalEvent::Abandoned => "abandoned",
        }
    }
}

/// One approval step: what it was about, and whether the call is (or was) held by the
/// gateway meanwhile (an elicitation), rather than retried by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalStep {
    /// What the approval is for.
    pub kind: Kind,
    /// Which step.
    pub step: ApprovalEvent,
    /// Whether the call waits in the gateway for this answer (asked by elicitation): such a
    /// call is counted from `Asked` to its `Granted`, `Declined`, `Expired` or `Abandoned`.
    pub held: bool,
}

/// What a host records about the policy's work. Every method has an empty default; an
/// observer is called on the request's path, so it must be quick and must not block.
pub trait Observer: Send + Sync {
    /// A decision was made.
    fn decided(&self, decided: &Decided<'_>) {
        let _ = decided;
    }
    /// A forwarded call ended.
    fn finished(&self, finished: &Finished<'_>) {
        let _ = finished;
    }
    /// Whether this observer traces calls: then the gateway reads each decided request's
    /// `params._meta.traceparent` for it ([`Decided::traceparent`]) and asks it
    /// [`Observer::forwarding`] (a cost paid only when true).
    fn traces(&self) -> bool {
        false
    }
    /// An allowed request is about to be forwarded, the client's `traceparent` with it: the
    /// `traceparent` to forward in its place (this observer's span for the call, which
    /// [`Finished::traced`] carries back), or `None` to forward the request as it came.
    fn forwarding(&self, kind: Kind, name: &str, parent: Option<&str>) -> Option<String> {
        let _ = (kind, name, parent);
        None
    }
    /// An approval went one step further.
    fn approval(&self, step: &ApprovalStep) {
        let _ = step;
    }
}

/// The observer a host gave, or none: what the gateway and the adapter hold and call.
#[derive(Clone, Default)]
pub struct Observers(Option<Arc<dyn Observer>>);

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observers(Some(..))"
        } else {
            "Observers(None)"
        })
    }
}

impl Observers {
    /// No observer: every event is one branch.
    pub fn none() -> Observers {
        Observers(None)
    }

    /// `observer` is told every event.
    pub fn new(observer: Arc<dyn Observer>) -> Observers {
        Observers(Some(observer))
    }

    /// Whether an observer is there (a host reads the clock only then, or for its audit log).
    #[inline]
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// Tells the observer a decision was made.
    #[inline]
    pub fn decided(&self, kind: Kind, name: &str, decision: &Decision, took: Duration) {
        self.decided_in(kind, name, decision, took, None);
    }

    /// Tells the observer a decision was made for a request that carried `traceparent`.
    #[inline]
    pub fn decided_in(
        &self,
        kind: Kind,
        name: &str,
        decision: &Decision,
        took: Duration,
        traceparent: Option<&str>,
    ) {
        if let Some(observer) = &self.0 {
            observer.decided(&Decided {
                kind,
                name,
                decision,
                took,
                traceparent,
            });
        }
    }

    /// Tells the observer a forwarded call ended.
    #[inline]
    pub fn finished(
        &self,
        kind: Kind,
        upstream: &'static str,
        refunded: bool,
        took: Duration,
        traced: Option<&Traced>,
    ) {
        if let Some(observer) = &self.0 {
            observer.finished(&Finished {
                kind,
                upstream,
                refunded,
                took,
                traced,
            });
        }
    }

    /// Whether the observer traces calls ([`Observer::traces`]).
    #[inline]
    pub fn traces(&self) -> bool {
        self.0.as_ref().is_some_and(|o| o.traces())
    }

    /// The `traceparent` to forward for an allowed request ([`Observer::forwarding`]).
    pub fn forwarding(&self, kind: Kind, name: &str, parent: Option<&str>) -> Option<String> {
        self.0.as_ref()?.forwarding(kind, name, parent)
    }

    /// Tells the observer an approval went one step further.
    #[inline]
    pub fn approval(&self, kind: Kind, step: ApprovalEvent, held: bool) {
        if let Some(observer) = &self.0 {
            observer.approval(&ApprovalStep { kind, step, held });
        }
    }
}

/// Several observers as one: each is told every event, in order; a request is traced when
/// any of them traces, and forwarded with the first `traceparent` one gives.
///
/// ```
/// use std::sync::Arc;
/// use mcp_policy::observe::{Fanout, Observer, Observers};
/// struct Quiet;
/// impl Observer for Quiet {}
/// let both = Fanout::new(vec![Arc::new(Quiet), Arc::new(Quiet)]);
/// assert!(!both.traces());
/// let _observers = Observers::new(Arc::new(both));
/// ```
pub struct Fanout(Vec<Arc<dyn Observer>>);

impl Fanout {
    /// The observers, told in this order.
    pub fn new(observers: Vec<Arc<dyn Observer>>) -> Fanout {
        Fanout(observers)
    }
}

impl Observer for Fanout {
    fn decided(&self, decided: &Decided<'_>) {
        for o in &self.0 {
            o.decided(decided);
        }
    }
    fn finished(&self, finished: &Finished<'_>) {
        for o in &self.0 {
            o.finished(finished);
        }
    }
    fn approval(&self, step: &ApprovalStep) {
        for o in &self.0 {
            o.approval(step);
        }
    }
    fn traces(&self) -> bool {
        self.0.iter().any(|o| o.traces())
    }
    fn forwarding(&self, kind: Kind, name: &str, parent: Option<&str>) -> Option<String> {
        self.0.iter().find_map(|o| o.forwarding(kind, name, parent))
    }
}
