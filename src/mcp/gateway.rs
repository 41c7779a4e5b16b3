//! The gateway: the state machine of one client connection. It decides each `tools/call`,
//! `resources/read`, `resources/subscribe` and `prompts/get` through a policy engine, checks
//! `completion/complete` references, filters the four list results, holds calls while a human is asked,
//! and keeps what it needs to audit and refund each call until the server answers. Its
//! methods are split by side: `client` (messages from the client, and deciding calls),
//! `asking` (approvals), `server` (messages from the server, and its going away).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::approvals::Issued;
use super::audit::AuditRecord;
use super::options::GatewayOptions;
use super::read::IdKey;
use crate::approval::canonical_json;
use crate::compile::Policy;
use crate::decision::Decision;
use crate::engine::Decider;
use crate::grant::Grant;
use crate::listing::List;
use crate::observe::ApprovalEvent;
use crate::store::Reservation;
use crate::subject::Kind;

mod asking;
mod client;
mod requests;
mod server;

pub use client::CallToDecide;

/// What the host does next, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Pass the message exactly as received (byte for byte) to the other side.
    Forward,
    /// Send this message to the client.
    ToClient(Value),
    /// Send this message to the server.
    ToServer(Value),
    /// Write this record to the audit log (the host adds the time and the digest).
    Audit(AuditRecord),
}

/// A call waiting for an answer from the server.
#[derive(Debug)]
struct InFlight {
    record: AuditRecord,
    reservation: Option<Reservation>,
    started: Option<Instant>,
    /// The call's trace, when the observer traces calls.
    traced: Option<Box<crate::observe::Traced>>,
    /// A 2026-07-28 call's tool and canonical arguments, hashed with the gateway's secret
    /// keys ([`Gateway::binding`]): what a retry must repeat to continue the call if the
    /// server answers `input_required` ([`Continuation`]).
    binding: Option<u64>,
}

/// A call the server answered with its own `input_required` (2026-07-28), waiting for the
/// client's retry with the server's `requestState`. That retry continues the call: it is
/// forwarded without a new decision (it was admitted, charged and approved once), and its
/// charges stay reserved until the last round's answer (refunded on a JSON-RPC error).
#[derive(Debug)]
struct Continuation {
    flight: InFlight,
    /// The policy revision when the server asked; after a reload the retry is decided anew.
    revision: String,
    deadline: Instant,
}

/// At most this many calls wait for a retry that continues them, per gateway; past it, a
/// retry is decided as a new call.
const MAX_CONTINUATIONS: usize = 1024;

/// The 2026-07-28 request that subscribes to resources (among other notifications).
const LISTEN: &str = "subscriptions/listen";

/// Whether the gateway examines requests of `method` besides `tools/call` (read by
/// `requests`).
fn examined(method: &str) -> bool {
    matches!(
        method,
        "resources/read" | "resources/subscribe" | "prompts/get" | "completion/complete" | LISTEN
    )
}

/// What a forwarded client request was, so that its answer is handled.
#[derive(Debug)]
enum Waiting {
    Call(Box<InFlight>),
    List(List),
    Initialize,
    Other,
}

/// A call held until a human answers an elicitation.
#[derive(Debug)]
struct Held {
    /// The call as it came, with its id.
    request: Value,
    /// What it asks for, and the name as it came (a resource's URI as sent).
    kind: Kind,
    tool: String,
    args: Value,
    approval_id: String,
    decision: Value,
    deadline: Instant,
    started: Option<Instant>,
    policy_us: u64,
}

/// The gateway's state for one client connection.
#[derive(Debug)]
pub struct Gateway {
    grant: Grant,
    options: GatewayOptions,
    protocol: Option<String>,
    client_elicitation: bool,
    /// Client requests forwarded to the server, by id (as JSON text).
    waiting: HashMap<IdKey, Waiting>,
    /// Calls held for an elicitation answer, by the id of our elicitation request.
    held: HashMap<IdKey, Held>,
    /// `requestState`s issued to 2026-07-28 clients.
    issued: HashMap<String, Issued>,
    /// Calls the server answered `input_required`, by the server's `requestState`.
    continued: HashMap<String, Continuation>,
    next: u64,
    /// The keys a call's binding is hashed with ([`Gateway::binding`]).
    binding_keys: std::hash::RandomState,
    /// The server is gone ([`Gateway::upstream_gone`]): no call is forwarded any more.
    gone: bool,
    /// The names the server listed, per list (all of them, not only those shown), to tell
    /// after a policy reload whether what the client may see changed.
    listed: HashMap<List, HashSet<Box<str>>>,
    /// The policy the client's lists were last filtered by.
    shown_under: Option<Arc<Policy>>,
}

/// At most this many names are kept per list for [`Gateway::after_reload`].
const MAX_LISTED: usize = 16_384;

impl Gateway {
    /// A gateway for one client, calling as `grant` (its `attrs.client` and
    /// `attrs.client_version` are filled from the client's `initialize`).
    pub fn new(grant: Grant, options: GatewayOptions) -> Gateway {
        Gateway {
            grant,
            options,
            protocol: None,
            client_elicitation: false,
            waiting: HashMap::new(),
            held: HashMap::new(),
            issued: HashMap::new(),
            continued: HashMap::new(),
            next: 0,
            binding_keys: std::hash::RandomState::new(),
            gone: false,
            listed: HashMap::new(),
            shown_under: None,
        }
    }

    /// The grant calls are decided for.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The protocol version, once the server answered `initialize` (or the client's, before).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// How many client requests are waiting for the server, and how many calls are waiting
    /// for the client: held for a human's approval, or continued after the server's own
    /// `input_required` (until the client's retry, or the approval timeout).
    pub fn in_flight(&self) -> (usize, usize) {
        (self.waiting.len(), self.held.len() + self.continued.len())
    }

    /// Whether [`Gateway::upstream_gone`] was called. A host that decides calls itself
    /// ([`Gateway::from_client_decided`]) checks this under the same lock first, and refunds
    /// an allowed call's reservation itself when it is: the gateway has no store to refund
    /// it with.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Answers the calls whose approval was not given in time (call it periodically).
    pub fn expire(&mut self, now: Instant) -> Vec<Output> {
        self.issued.retain(|_, issued| issued.deadline > now);
        self.continued.retain(|_, c| c.deadline > now);
        let late: Vec<IdKey> = self
            .held
            .iter()
            .filter(|(_, held)| held.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        let seconds = self.options.approval_timeout.as_secs();
        for k in late {
            if let Some(held) = self.held.remove(&k) {
                self.options
                    .observers
                    .approval(held.kind, ApprovalEvent::Expired, true);
                let text = format!(
                    "The call of `{}` was not approved: no answer within {seconds} s. Nothing was done.",
                    held.tool
                );
                out.extend(self.refuse_held(held, &text));
            }
        }
        out
    }

    /// The earliest moment a held call times out, if any is held.
    pub fn next_deadline(&self) -> Option<Instant> {
        let held = self.held.values().map(|h| h.deadline);
        let issued = self.issued.values().map(|i| i.deadline);
        let continued = self.continued.values().map(|c| c.deadline);
        held.chain(issued).chain(continued).min()
    }

    /// The time now, only where an audit record or an observer will carry durations (a
    /// clock read per message is measurable next to the rest of the work).
    fn clock(&self) -> Option<Instant> {
        (self.options.audit || self.options.observers.is_some()).then(Instant::now)
    }

    fn record(
        &self,
        kind: Kind,
        tool: &str,
        decision: &Decision,
        args: &Value,
        policy_us: u64,
    ) -> AuditRecord {
        if !self.options.audit {
            return AuditRecord {
                grant: String::new(),
                session: None,
                tool: String::new(),
                kind,
                decision: Value::Null,
                args_canonical: String::new(),
                args: None,
                upstream: None,
                refunded: false,
                policy_us,
                total_us: 0,
            };
        }
        AuditRecord {
            grant: self.grant.id.clone(),
            session: self.grant.session.clone(),
            tool: tool.to_owned(),
            kind,
            decision: decision.to_json(None),
            args_canonical: canonical_json(args),
            args: self.options.audit_args.then(|| args.clone()),
            upstream: None,
            refunded: false,
            policy_us,
            total_us: 0,
        }
    }

    fn finish(
        &self,
        decider: &dyn Decider,
        flight: InFlight,
        outcome: &'static str,
        refund: bool,
    ) -> Output {
        let mut record = flight.record;
        if refund && let Some(reservation) = flight.reservation {
            record.refunded = decider.release(reservation).is_ok();
        }
        record.upstream = Some(outcome);
        record.total_us = micros_since(flight.started);
        self.options.observers.finished(
            record.kind,
            outcome,
            record.refunded,
            Duration::from_micros(record.total_us),
            flight.traced.as_deref(),
        );
        Output::Audit(record)
    }
}

impl Drop for Gateway {
    /// Calls still waiting for a human's answer are abandoned with the gateway.
    fn drop(&mut self) {
        for held in self.held.values() {
            self.options
                .observers
                .approval(held.kind, ApprovalEvent::Abandoned, true);
        }
    }
}

/// The audit record of a call answered by the gateway itself (not forwarded).
fn audit(mut record: AuditRecord, started: Option<Instant>) -> Output {
    record.total_us = micros_since(started);
    Output::Audit(record)
}

/// Microseconds since `start` (0 when not timed: no audit log wants it).
fn micros_since(start: Option<Instant>) -> u64 {
    start.map_or(0, |t| {
        u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
    })
}
