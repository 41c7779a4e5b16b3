//! The gateway's Prometheus metrics, in one registry (the `prometheus-client` crate, which
//! writes the OpenMetrics text Prometheus scrapes): what the core gateway tells its observer
//! ([`Observer`]), and what only a host knows (the store's operations, sessions, reloads,
//! requests refused at the door). `docs/OBSERVABILITY.md` lists every metric.
//!
//! Every label is bounded: kinds, verdicts, outcomes and reasons are fixed sets; rules and
//! counters are JSON Pointers and names from the policy; nothing comes from a caller's
//! names or arguments.

use std::time::Duration;

use mcp_policy::Verdict;
use mcp_policy::observe::{ApprovalStep, Decided, Finished, Observer};
use mcp_policy::subject::Kind;
use mcp_policy::text::Text;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::host::sync::lock;

/// A label taken from the policy: a rule's JSON Pointer or a counter's name (`(input)` for
/// the empty pointer of checks on the input itself).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct PolicyLabel(Text);

impl EncodeLabelValue for PolicyLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let text: &str = if self.0.is_empty() {
            "(input)"
        } else {
            &self.0
        };
        EncodeLabelValue::encode(&text, encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    kind: &'static str,
    verdict: &'static str,
    rule: PolicyLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterLabels {
    counter: PolicyLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOutcomeLabels {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    file: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why the HTTP gateway refused a request before any MCP handling (the `reason` label of
/// `mcp_policy_refused_requests_total`), read from the answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400, 405: a request the gateway cannot read (no session id where one is needed, not
    /// JSON, a 2026-07-28 request whose routing headers disagree with its body, a method
    /// not served).
    BadRequest,
    /// 401: no credential, or one that is not known.
    Unauthenticated,
    /// 403: a `Host` or `Origin` not allowed, or `/metrics` asked by another host.
    Forbidden,
    /// 404: a path not served, or a session that does not exist or is another caller's.
    NotFound,
    /// 406: a client that accepts neither JSON nor an event stream.
    NotAcceptable,
    /// 408: the body did not arrive in time.
    BodyTimeout,
    /// 413: a body over the size limit.
    TooLarge,
    /// 415: a POST whose body is not declared JSON.
    MediaType,
    /// 503: the gateway is stopping, or has as many sessions as it may.
    Unavailable,
}

impl Refusal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Forbidden => "forbidden",
            Refusal::NotFound => "not_found",
            Refusal::NotAcceptable => "not_acceptable",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::TooLarge => "too_large",
            Refusal::MediaType => "media_type",
            Refusal::Unavailable => "unavailable",
        }
    }

    /// The refusal an HTTP status means, if it is one (2xx and 5xx other than 503 are not:
    /// a 502 is the upstream's failure, counted by `mcp_policy_upstream_calls_total`).
    ///
    /// ```
    /// use mcp_policy_gateway::observe::Refusal;
    /// assert_eq!(Refusal::of_status(401), Some(Refusal::Unauthenticated));
    /// assert_eq!(Refusal::of_status(200), None);
    /// ```
    pub fn of_status(status: u16) -> Option<Refusal> {
        Some(match status {
            400 | 405 => Refusal::BadRequest,
            401 => Refusal::Unauthenticated,
            403 => Refusal::Forbidden,
            404 => Refusal::NotFound,
            406 => Refusal::NotAcceptable,
            408 => Refusal::BodyTimeout,
            413 => Refusal::TooLarge,
            415 => Refusal::MediaType,
            503 => Refusal::Unavailable,
            _ => return None,
        })
    }
}

fn decision_histogram() -> Histogram {
    // 1 µs to about 260 ms, ×4 a step: an in-memory decision is a few µs, a Redis one a round trip.
    Histogram::new(exponential_buckets(1e-6, 4.0, 10))
}

fn upstream_histogram() -> Histogram {
    // 0.5 ms to about 16 s, ×2 a step.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn store_histogram() -> Histogram {
    // 50 µs to about 0.8 s, ×2 a step.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 15))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The gateway's metrics: an [`Observer`] for the core gateway, plus what the host records
/// itself.
///
/// ```
/// use mcp_policy::{Engine, Grant, Policy};
/// use mcp_policy::observe::Observers;
/// use mcp_policy::subject::Kind;
/// use mcp_policy_gateway::observe::Metrics;
/// use std::sync::Arc;
///
/// let metrics = Arc::new(Metrics::new());
/// let observers = Observers::new(metrics.clone());
/// let engine = Engine::new(Policy::from_json_str(r#"{"version":"1","default":"deny","tools":{"ping":{}}}"#).unwrap());
/// let d = engine.evaluate("ping", &serde_json::json!({}), &Grant::new("alice"));
/// observers.decided(Kind::Tool, "ping", &d, std::time::Duration::from_micros(3));
/// let text = metrics.render();
/// assert!(text.contains(r#"mcp_policy_decisions_total{kind="tool",verdict="allow",rule="/tools/ping"} 1"#), "{text}");
/// assert!(text.ends_with("# EOF\n"));
/// ```
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    /// `decision_duration_seconds` and `upstream_duration_seconds` per kind, looked up once
    /// (a family lookup takes a lock and hashes the labels; these are on every call).
    decision_seconds: [Histogram; 3],
    upstream_seconds: [Histogram; 3],
    store_denials: Family<KindLabels, Counter>,
    limits: Family<CounterLabels, Counter>,
    approvals: Family<EventLabels, Counter>,
    waiting: Gauge,
    refunds: Family<KindLabels, Counter>,
    upstream: Family<UpstreamLabels, Counter>,
    store_ops: Family<OpOutcomeLabels, Counter>,
    store_seconds: Histograms<OpLabels>,
    sessions: Gauge,
    reloads: Family<ReloadLabels, Counter>,
    revision: Family<RevisionLabels, Gauge>,
    /// The live revision, so that a reload replaces its series (under this lock).
    live: std::sync::Mutex<Option<String>>,
    refused: Family<ReasonLabels, Counter>,
    audit_errors: Counter,
    audit_lost: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every metric registered, at zero (`mcp_policy_build_info` at 1).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mcp_policy");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions made, by what was decided on (tool, resource, prompt), verdict (allow, deny, limit, approve, hide) and the rule that decided (a JSON Pointer into the policy)",
            decisions.clone(),
        );
        let decision_seconds: Histograms<KindLabels> =
            Family::new_with_constructor(decision_histogram);
        registry.register(
            "decision_duration_seconds",
            "How long deciding took (the store's round trip included)",
            decision_seconds.clone(),
        );
        let store_denials = Family::<KindLabels, Counter>::default();
        registry.register(
            "store_denials",
            "Calls denied because the counter store failed (fail closed)",
            store_denials.clone(),
        );
        let limits = Family::<CounterLabels, Counter>::default();
        registry.register(
            "limits_hit",
            "Calls refused by a rate limit or budget, by the policy's counter",
            limits.clone(),
        );
        let approvals = Family::<EventLabels, Counter>::default();
        registry.register(
            "approvals",
            "Approval steps: asked, granted, declined, expired, abandoned",
            approvals.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "approvals_waiting",
            "Calls held now until a human answers (elicitation)",
            waiting.clone(),
        );
        let refunds = Family::<KindLabels, Counter>::default();
        registry.register(
            "refunds",
            "Allowed calls whose charges were released because they never ran",
            refunds.clone(),
        );
        let upstream = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_calls",
            "Forwarded calls by how the server answered: ok, tool_error, error, gone, input_required",
            upstream.clone(),
        );
        let upstream_seconds: Histograms<KindLabels> =
            Family::new_with_constructor(upstream_histogram);
        registry.register(
            "upstream_duration_seconds",
            "From a forwarded call's arrival to the server's answer",
            upstream_seconds.clone(),
        );
        let store_ops = Family::<OpOutcomeLabels, Counter>::default();
        registry.register(
            "store_operations",
            "Operations on the shared counter store (Redis): apply, release, approve; ok or error",
            store_ops.clone(),
        );
        let store_seconds: Histograms<OpLabels> = Family::new_with_constructor(store_histogram);
        registry.register(
            "store_duration_seconds",
            "How long an operation on the shared counter store took",
            store_seconds.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "MCP sessions open", sessions.clone());
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Changes to the policy or keys file: ok (swapped in) or rejected (the running one stays)",
            reloads.clone(),
        );
        let revision = Family::<RevisionLabels, Gauge>::default();
        registry.register(
            "policy_info",
            "The live policy's revision (1 for the revision in force)",
            revision.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "refused_requests",
            "HTTP requests refused before any MCP handling, by reason",
            refused.clone(),
        );
        let audit_errors = Counter::default();
        registry.register(
            "audit_write_errors",
            "Failed writes of the audit log (each is tried again a second later; calls go on)",
            audit_errors.clone(),
        );
        let audit_lost = Counter::default();
        registry.register(
            "audit_lines_lost",
            "Audit lines dropped because the log could not be written for too long",
            audit_lost.clone(),
        );
        let build = Family::<VersionLabels, Gauge>::default();
        build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "This gateway's version", build);
        // The series of fixed label values exist from the start, at 0: `increase()` sees
        // their first step.
        for kind in ["tool", "resource", "prompt"] {
            let _ = store_denials.get_or_create(&KindLabels { kind });
            let _ = refunds.get_or_create(&KindLabels { kind });
        }
        for event in ["asked", "granted", "declined", "expired", "abandoned"] {
            let _ = approvals.get_or_create(&EventLabels { event });
        }
        for file in ["policy", "keys"] {
            for outcome in ["ok", "rejected"] {
                let _ = reloads.get_or_create(&ReloadLabels { file, outcome });
            }
        }
        let by_kind = |family: &Histograms<KindLabels>| {
            Kind::ALL.map(|kind| {
                family
                    .get_or_create(&KindLabels {
                        kind: kind.as_str(),
                    })
                    .clone()
            })
        };
        Metrics {
            registry,
            decisions,
            decision_seconds: by_kind(&decision_seconds),
            upstream_seconds: by_kind(&upstream_seconds),
            store_denials,
            limits,
            approvals,
            waiting,
            refunds,
            upstream,
            store_ops,
            store_seconds,
            sessions,
            reloads,
            revision,
            live: std::sync::Mutex::new(None),
            refused,
            audit_errors,
            audit_lost,
        }
    }

    /// The metrics as OpenMetrics text (what `GET /metrics` answers).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// One operation on the shared store: `op` is `apply`, `release` or `approve`.
    pub fn store_operation(&self, op: &'static str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.store_ops
            .get_or_create(&OpOutcomeLabels { op, outcome })
            .inc();
        self.store_seconds
            .get_or_create(&OpLabels { op })
            .observe(took.as_secs_f64());
    }

    /// A session opened (`1`) or closed (`-1`).
    pub fn sessions(&self, delta: i64) {
        self.sessions.inc_by(delta);
    }

    /// The policy in force: its revision replaces the last one's series.
    pub fn policy_revision(&self, revision: &str) {
        let mut live = lock(&self.live);
        if let Some(old) = live.take() {
            self.revision.remove(&RevisionLabels { revision: old });
        }
        self.revision
            .get_or_create(&RevisionLabels {
                revision: revision.to_owned(),
            })
            .set(1);
        *live = Some(revision.to_owned());
    }

    /// A change to the policy (`file` = `policy`) or keys file (`keys`) was swapped in
    /// (`ok`) or rejected.
    pub fn reload(&self, file: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "rejected" };
        self.reloads
            .get_or_create(&ReloadLabels { file, outcome })
            .inc();
    }

    /// A write of the audit log failed.
    pub fn audit_write_failed(&self) {
        self.audit_errors.inc();
    }

    /// `lines` audit lines were dropped (the log could not be written for too long).
    pub fn audit_lines_lost(&self, lines: u64) {
        self.audit_lost.inc_by(lines);
    }

    /// An HTTP request refused before any MCP handling.
    pub fn refused(&self, why: Refusal) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
    }
}

/// A kind's place in [`Kind::ALL`].
fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Tool => 0,
        Kind::Resource => 1,
        Kind::Prompt => 2,
    }
}

fn verdict_label(decided: &Decided<'_>) -> &'static str {
    match decided.decision.verdict {
        Verdict::Deny if decided.decision.hidden => "hide",
        verdict => verdict.as_str(),
    }
}

impl Observer for Metrics {
    fn decided(&self, decided: &Decided<'_>) {
        let kind = decided.kind.as_str();
        let decision = decided.decision;
        self.decisions
            .get_or_create(&DecisionLabels {
                kind,
                verdict: verdict_label(decided),
                rule: PolicyLabel(decision.rule.clone()),
            })
            .inc();
        if let Some(h) = self.decision_seconds.get(kind_index(decided.kind)) {
            h.observe(decided.took.as_secs_f64());
        }
        if decision.store_failed {
            self.store_denials.get_or_create(&KindLabels { kind }).inc();
        }
        if let (Verdict::Limit, Some(counter)) = (decision.verdict, &decision.counter) {
            self.limits
                .get_or_create(&CounterLabels {
                    counter: PolicyLabel(counter.clone()),
                })
                .inc();
        }
    }

    fn finished(&self, finished: &Finished<'_>) {
        let kind = finished.kind.as_str();
        self.upstream
            .get_or_create(&UpstreamLabels {
                kind,
                outcome: finished.upstream,
            })
            .inc();
        if let Some(h) = self.upstream_seconds.get(kind_index(finished.kind)) {
            h.observe(finished.took.as_secs_f64());
        }
        if finished.refunded {
            self.refunds.get_or_create(&KindLabels { kind }).inc();
        }
    }

    fn approval(&self, step: &ApprovalStep) {
        self.approvals
            .get_or_create(&EventLabels {
                event: step.step.as_str(),
            })
            .inc();
        if step.held {
            use mcp_policy::observe::ApprovalEvent;
            match step.step {
                ApprovalEvent::Asked => {
                    self.waiting.inc();
                }
                _ => {
                    self.waiting.dec();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric list operators' rules and dashboard are checked against
    /// (`scripts/check-deploy.sh`) is the list this registry exposes: renaming a metric here
    /// without renaming it there fails.
    #[test]
    fn the_deploy_list_names_exactly_the_metrics_exposed() {
        let listed: Vec<(String, String)> = include_str!("../../../deploy/metrics.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut words = l.split_whitespace();
                let name = words.next().unwrap_or_default();
                let kind = words.next().unwrap_or_default();
                let base = match kind {
                    "counter" => name.trim_end_matches("_total"),
                    _ => name,
                };
                (base.to_owned(), kind.to_owned())
            })
            .collect();
        // A family shows in the text once it has a series: one event of each.
        let metrics = std::sync::Arc::new(Metrics::new());
        let observers = mcp_policy::observe::Observers::new(metrics.clone());
        let policy = mcp_policy::Policy::from_json_str(
            r#"{"version":"1","default":"deny","tools":{"t":{"rate_limit":"1/minute"}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let engine = mcp_policy::Engine::new(policy);
        let (args, grant) = (serde_json::json!({}), mcp_policy::Grant::new("a"));
        let took = Duration::from_micros(5);
        let allowed = engine.evaluate("t", &args, &grant);
        observers.decided(mcp_policy::subject::Kind::Tool, "t", &allowed, took);
        let limited = engine.evaluate("t", &args, &grant);
        observers.decided(mcp_policy::subject::Kind::Tool, "t", &limited, took);
        observers.finished(mcp_policy::subject::Kind::Tool, "ok", false, took, None);
        metrics.store_operation("apply", true, took);
        metrics.refused(Refusal::Unauthenticated);
        metrics.policy_revision("r1");
        let text = metrics.render();
        assert!(
            text.contains(r#"mcp_policy_limits_hit_total{counter="t.rate_limit"} 1"#),
            "{text}"
        );
        let exposed: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| {
                let (name, kind) = l.split_once(' ').unwrap_or((l, ""));
                (name.to_owned(), kind.to_owned())
            })
            .collect();
        let (mut listed, mut exposed) = (listed, exposed);
        listed.sort();
        exposed.sort();
        assert_eq!(listed, exposed);
    }

    #[test]
    fn a_reload_replaces_the_revision_and_refusals_are_read_from_statuses() {
        let metrics = Metrics::new();
        metrics.policy_revision("aaa");
        metrics.policy_revision("bbb");
        let text = metrics.render();
        assert!(
            text.contains("mcp_policy_policy_info{revision=\"bbb\"} 1"),
            "{text}"
        );
        assert!(!text.contains("revision=\"aaa\""), "{text}");
        for (status, reason) in [
            (400, "bad_request"),
            (413, "too_large"),
            (503, "unavailable"),
        ] {
            let why = Refusal::of_status(status).unwrap_or(Refusal::BadRequest);
            assert_eq!(why.as_str(), reason);
        }
        assert_eq!(Refusal::of_status(502), None);
    }
}
