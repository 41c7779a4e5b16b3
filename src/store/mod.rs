//! Counter stores: where budgets and approvals live.
//!
//! The engine never does IO. For each call it builds a [`Plan`] (every counter the call
//! touches, with its window, max, reset and cost, and the approval it needs); a store applies
//! the whole plan **atomically** (all charges or none) and answers with an [`Outcome`]; the
//! engine turns that into a [`Decision`](crate::Decision). A remote store (Redis shared by
//! several gateway replicas) can send a plan in one round trip from an async host: see
//! [`Policy::plan`](crate::Policy::plan) and [`Policy::conclude`](crate::Policy::conclude).
//!
//! The exact arithmetic of windows is in [`window`], shared by every store.

pub mod memory;
pub mod remote;
pub mod window;

use std::hash::{Hash, Hasher};

use smallvec::SmallVec;

use crate::document::Reset;
use crate::error::{HostError, StoreError};

/// Identifies one budget: a counter name, its window and reset, and the scope value.
///
/// The window and reset are part of the key, so a policy reload that keeps them keeps the
/// counter, and one that changes them starts a fresh budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterKey<'a> {
    /// The counter's name.
    pub counter: &'a str,
    /// The window length in milliseconds.
    pub window_ms: u64,
    /// Sliding or calendar.
    pub reset: Reset,
    /// Whose budget.
    pub scope: ScopeKey<'a>,
}

/// Hashes in three writes (name, one word for window, reset and scope kind, scope value)
/// rather than the seven a derived `Hash` makes; equal keys hash equally. `0xff`, which never
/// occurs in UTF-8, separates a session scope's two parts.
impl Hash for CounterKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.counter.as_bytes());
        let reset = match self.reset {
            Reset::Sliding => 0u64,
            Reset::Calendar => 1,
        };
        let (kind, value): (u64, &[u8]) = match &self.scope {
            ScopeKey::Global => (0, b""),
            ScopeKey::Grant(g) => (1, g.as_bytes()),
            ScopeKey::Session(g, _) => (2, g.as_bytes()),
            ScopeKey::Tool(t) => (3, t.as_bytes()),
            ScopeKey::ArgStr(v) => (4, v.as_bytes()),
            ScopeKey::ArgJson(v) => (5, v.as_bytes()),
        };
        // Reset and scope kind go in the top byte (a function of the fields either way).
        state.write_u64(self.window_ms ^ ((reset | kind << 1) << 56));
        state.write(value);
        if let ScopeKey::Session(_, session) = &self.scope {
            match session {
                Some(s) => {
                    state.write_u8(0xff);
                    state.write(s.as_bytes());
                }
                None => state.write_u8(0xfe),
            }
        }
    }
}

/// The scope part of a [`CounterKey`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScopeKey<'a> {
    /// One budget for everyone.
    Global,
    /// Per grant id.
    Grant(&'a str),
    /// Per grant id and session (`None`: the grant's session-less budget).
    Session(&'a str, Option<&'a str>),
    /// Per called tool name.
    Tool(&'a str),
    /// Per argument value that is a string.
    ArgStr(&'a str),
    /// Per argument value that is not a string, as canonical JSON.
    ArgJson(String),
}

impl CounterKey<'_> {
    /// A printable, unambiguous rendering of the key (for remote stores and messages).
    ///
    /// ```
    /// use mcp_policy::store::{CounterKey, ScopeKey};
    /// use mcp_policy::document::Reset;
    /// let key = CounterKey { counter: "calls", window_ms: 60_000, reset: Reset::Sliding, scope: ScopeKey::Grant("alice") };
    /// assert_eq!(key.render(), r#"["calls",60000,"sliding","grant","alice"]"#);
    /// ```
    pub fn render(&self) -> String {
        let reset = match self.reset {
            Reset::Sliding => "sliding",
            Reset::Calendar => "calendar",
        };
        let scope = match &self.scope {
            ScopeKey::Global => serde_json::json!(["global"]),
            ScopeKey::Grant(g) => serde_json::json!(["grant", g]),
            ScopeKey::Session(g, s) => serde_json::json!(["session", g, s]),
            ScopeKey::Tool(t) => serde_json::json!(["tool", t]),
            ScopeKey::ArgStr(v) => serde_json::json!(["arg", v]),
            ScopeKey::ArgJson(v) => serde_json::json!(["argjson", v]),
        };
        let mut parts = vec![
            serde_json::Value::from(self.counter),
            self.window_ms.into(),
            reset.into(),
        ];
        if let serde_json::Value::Array(items) = scope {
            parts.extend(items);
        }
        serde_json::Value::Array(parts).to_string()
    }
}

/// One counter operation of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge<'a> {
    /// Which budget.
    pub key: CounterKey<'a>,
    /// Most cost admitted per window.
    pub max: u64,
    /// What this call costs (may be 0: checked, not charged).
    pub cost: u64,
    /// Index of the limit in the call's limit list (tool's, then `all_tools`').
    pub limit: usize,
}

/// An approval the call needs before its limits are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalCheck {
    /// The approval id (derived from the binding).
    pub id: String,
    /// The exact binding: grant id, tool, canonical arguments and policy revision.
    pub binding: String,
    /// How long a recorded approval stays usable, in milliseconds.
    pub ttl_ms: u64,
}

/// Everything a store must do, atomically, for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'a> {
    /// The engine's time for this call (milliseconds since the Unix epoch).
    pub now_ms: u64,
    /// If set, the call goes ahead only if a recorded approval with this exact binding exists.
    /// It is checked before the charges (an unapproved call is answered
    /// [`Outcome::ApprovalRequired`] whatever its limits, as in the spec's order of evaluation),
    /// and consumed only when the charges are admitted.
    pub approval: Option<Box<ApprovalCheck>>,
    /// The counters to check and charge, all or nothing. Charges on one key are merged.
    pub charges: SmallVec<[Charge<'a>; 2]>,
}

impl Plan<'_> {
    /// An empty plan at `now_ms`: no approval, no charges.
    ///
    /// ```
    /// let plan = mcp_policy::Plan::new(1_000);
    /// assert!(plan.charges.is_empty() && plan.approval.is_none());
    /// ```
    #[inline]
    pub fn new(now_ms: u64) -> Self {
        Plan {
            now_ms,
            approval: None,
            charges: SmallVec::new(),
        }
    }
}

/// A charge that was made, so that it can be refunded.
///
/// `slot` and `tag` are the store's own handles (the in-memory store uses the key's hash and
/// the counter's unique id; the Redis store the window and the reset, with the counter's key
/// in [`Reservation::handle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedCharge {
    /// Store-defined locator.
    pub slot: u64,
    /// Store-defined identity check.
    pub tag: u64,
    /// The time the charge was recorded at.
    pub at_ms: u64,
    /// The cost charged.
    pub cost: u64,
}

/// The charges of one admitted call, refundable once with
/// [`Engine::release`](crate::Engine::release) (or
/// [`AsyncEngine::release`](crate::AsyncEngine::release)).
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Reservation {
    /// The charges made.
    pub charges: SmallVec<[ReservedCharge; 2]>,
    /// A remote store's own record of where it charged, opaque to the engine (the Redis store
    /// keeps the charged counters' keys here); `None` for the in-memory store.
    pub handle: Option<Box<str>>,
}

/// What a store answers for a plan.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Every charge fitted and was made.
    Admitted {
        /// The smallest `max - used` over the charges after charging (`None` without charges).
        remaining: Option<u64>,
        /// What was charged (`None` when nothing cost anything).
        reservation: Option<Reservation>,
    },
    /// At least one charge did not fit; nothing was charged.
    Limited {
        /// Index into `Plan::charges` of the refusing charge that frees last.
        charge: usize,
        /// Exact milliseconds until the same call would be admitted.
        retry_after_ms: u64,
    },
    /// The plan needs an approval that has not been recorded; it is now pending.
    ApprovalRequired,
}

/// Where counters and approvals live.
///
/// Implementations must apply a plan atomically: either every charge is made (and the
/// approval, if any, consumed) or nothing changes. The in-memory [`MemoryStore`] is the
/// embedded default; a store shared by replicas implements the same contract remotely.
pub trait CounterStore: Send + Sync {
    /// Applies a plan atomically.
    fn apply(&self, plan: &Plan<'_>) -> Result<Outcome, StoreError>;

    /// Refunds the charges of an admitted call (charges whose window has passed are ignored).
    fn release(&self, reservation: Reservation) -> Result<(), StoreError>;

    /// Records that a human approved a pending approval id; it becomes usable once, within its
    /// TTL from `now_ms`.
    fn record_approval(&self, id: &str, now_ms: u64) -> Result<(), HostError>;
}

impl<S: CounterStore + ?Sized> CounterStore for std::sync::Arc<S> {
    fn apply(&self, plan: &Plan<'_>) -> Result<Outcome, StoreError> {
        (**self).apply(plan)
    }
    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        (**self).release(reservation)
    }
    fn record_approval(&self, id: &str, now_ms: u64) -> Result<(), HostError> {
        (**self).record_approval(id, now_ms)
    }
}

pub use memory::MemoryStore;
pub use remote::AsyncCounterStore;
