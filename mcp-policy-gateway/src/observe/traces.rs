//! OpenTelemetry traces of the policy's work, exported over OTLP (HTTP, protobuf): a span per
//! decided MCP request, named and attributed after the OpenTelemetry MCP conventions
//! (`mcp.method.name`, `gen_ai.tool.name`, `gen_ai.prompt.name`, `mcp.resource.uri`) with the
//! policy's own (`mcp_policy.decision`, `mcp_policy.rule`, `mcp_policy.counter`,
//! `mcp_policy.upstream`). A request's span continues the caller's trace when the request
//! carries a W3C `traceparent` in `params._meta` (MCP 2026-07-28, SEP-414; over HTTP also the
//! `traceparent` header), and the forwarded request carries the span's own `traceparent` in
//! its `params._meta`, so the server's spans are its children.
//!
//! Off unless `--traces` is given or `OTEL_TRACES_EXPORTER=otlp` is set (`OTEL_SDK_DISABLED=true`
//! turns it off); the exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables, the batch
//! processor `OTEL_BSP_*`, the resource `OTEL_SERVICE_NAME` (default `mcp-policy`) and
//! `OTEL_RESOURCE_ATTRIBUTES`. Arguments never go in a span.
//!
//! The crates: `opentelemetry`, `opentelemetry_sdk` and `opentelemetry-otlp` (the project's
//! own, one release train), with its blocking HTTP client on the batch processor's thread, so
//! no request waits for an export.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use mcp_policy::Verdict;
use mcp_policy::observe::{Decided, Finished, Observer};
use mcp_policy::subject::Kind;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};

use crate::error::Error;
use crate::host::sync::lock;

/// Spans of forwarded calls waiting for their answer, at most; past it the oldest are ended
/// as abandoned (a client that never gets its answer must not grow the gateway).
const MAX_OPEN: usize = 65_536;

/// Whether the environment asks for traces without the flag (`OTEL_TRACES_EXPORTER=otlp`),
/// or turns them off (`OTEL_SDK_DISABLED=true`, which wins over the flag too).
///
/// ```
/// use mcp_policy_gateway::observe::traces::wanted;
/// assert!(wanted(true, |_| None));
/// assert!(!wanted(false, |_| None));
/// assert!(wanted(false, |k| (k == "OTEL_TRACES_EXPORTER").then(|| "otlp".to_owned())));
/// assert!(!wanted(true, |k| (k == "OTEL_SDK_DISABLED").then(|| "true".to_owned())));
/// ```
pub fn wanted(flag: bool, env: impl Fn(&str) -> Option<String>) -> bool {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return false;
    }
    flag || env("OTEL_TRACES_EXPORTER")
        .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("otlp")))
}

/// The tracer: an [`Observer`] that turns decisions and forwarded calls into spans.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    /// Spans of forwarded calls, by the `traceparent` forwarded, with when they started.
    open: Mutex<HashMap<String, (Span, u64)>>,
    /// Spans opened so far (their order, to end the oldest first).
    opened: std::sync::atomic::AtomicU64,
    /// Set by the first [`Traces::shutdown`].
    stopped: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

impl Traces {
    /// The exporter and its batch processor, configured by the `OTEL_*` environment.
    pub fn start() -> Result<Traces, Error> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| Error::Usage(format!("--traces: the OTLP exporter: {e}")))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("mcp-policy");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "mcp-policy");
        Ok(Traces {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            open: Mutex::new(HashMap::new()),
            opened: std::sync::atomic::AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Exports what is left and stops the exporter (spans still open are ended first, as
    /// abandoned). Called when the host stops.
    pub fn shutdown(&self) {
        if self.stopped.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let open: Vec<(Span, u64)> = lock(&self.open).drain().map(|(_, v)| v).collect();
        for (mut span, _) in open {
            span.set_attribute(KeyValue::new("mcp_policy.upstream", "abandoned"));
            span.end();
        }
        if let Err(e) = self.provider.shutdown() {
            eprintln!("mcp-policy proxy: traces: {e}");
        }
    }

    /// The caller's trace context from a `traceparent` (an invalid one starts a new trace).
    fn parent(&self, traceparent: Option<&str>) -> Context {
        let Some(tp) = traceparent else {
            return Context::new();
        };
        let carrier = HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
        self.propagator.extract(&carrier)
    }

    /// A span for a request of `kind` named `name`, started at `start`.
    fn span(&self, kind: Kind, name: &str, parent: &Context, start: SystemTime) -> Span {
        let (method, attrs) = attributes_of(kind, name);
        let title = match kind {
            Kind::Resource => method.to_owned(),
            _ => format!("{method} {name}"),
        };
        let builder = self
            .tracer
            .span_builder(title)
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(attrs);
        self.tracer.build_with_context(builder, parent)
    }
}

/// The MCP method a decided request of `kind` is (for its span), and its naming attributes.
fn attributes_of(kind: Kind, name: &str) -> (&'static str, Vec<KeyValue>) {
    match kind {
        Kind::Tool => (
            "tools/call",
            vec![
                KeyValue::new("mcp.method.name", "tools/call"),
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", name.to_owned()),
            ],
        ),
        Kind::Resource => (
            "resources/read",
            vec![
                KeyValue::new("mcp.method.name", "resources/read"),
                KeyValue::new("mcp.resource.uri", name.to_owned()),
            ],
        ),
        Kind::Prompt => (
            "prompts/get",
            vec![
                KeyValue::new("mcp.method.name", "prompts/get"),
                KeyValue::new("gen_ai.prompt.name", name.to_owned()),
            ],
        ),
    }
}

/// `now - took`, never before the epoch.
fn started(took: Duration) -> SystemTime {
    let now = SystemTime::now();
    now.checked_sub(took).unwrap_or(now)
}

impl Observer for Traces {
    fn traces(&self) -> bool {
        true
    }

    fn decided(&self, decided: &Decided<'_>) {
        // An allowed request's span is opened when it is forwarded and ended with its answer.
        if decided.decision.verdict == Verdict::Allow {
            return;
        }
        let d = decided.decision;
        let parent = self.parent(decided.traceparent);
        let mut span = self.span(decided.kind, decided.name, &parent, started(decided.took));
        let verdict = match d.verdict {
            Verdict::Deny if d.hidden => "hide",
            v => v.as_str(),
        };
        span.set_attribute(KeyValue::new("mcp_policy.decision", verdict));
        span.set_attribute(KeyValue::new("mcp_policy.rule", d.rule.to_string()));
        if let Some(counter) = &d.counter {
            span.set_attribute(KeyValue::new("mcp_policy.counter", counter.to_string()));
        }
        if let Some(retry) = d.retry_after_ms {
            span.set_attribute(KeyValue::new(
                "mcp_policy.retry_after_ms",
                i64::try_from(retry).unwrap_or(i64::MAX),
            ));
        }
        if d.store_failed {
            span.set_attribute(KeyValue::new("mcp_policy.store_failed", true));
        }
        span.end();
    }

    fn forwarding(&self, kind: Kind, name: &str, parent: Option<&str>) -> Option<String> {
        let parent = self.parent(parent);
        let span = self.span(kind, name, &parent, SystemTime::now());
        let sc = span.span_context().clone();
        let forwarded = format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
        let n = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut open = lock(&self.open);
        if open.len() >= MAX_OPEN
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, (_, n))| *n)
                .map(|(k, _)| k.clone())
            && let Some((mut span, _)) = open.remove(&oldest)
        {
            span.set_attribute(KeyValue::new("mcp_policy.upstream", "abandoned"));
            span.end();
        }
        open.insert(forwarded.clone(), (span, n));
        Some(forwarded)
    }

    fn finished(&self, finished: &Finished<'_>) {
        let Some(traced) = finished.traced else {
            return;
        };
        // A continued call (2026-07-28 `input_required`) ends its span at the first answer.
        let Some((mut span, _)) = lock(&self.open).remove(&traced.forwarded) else {
            return;
        };
        span.set_attribute(KeyValue::new("mcp_policy.decision", "allow"));
        span.set_attribute(KeyValue::new("mcp_policy.rule", traced.rule.to_string()));
        span.set_attribute(KeyValue::new("mcp_policy.upstream", finished.upstream));
        if finished.refunded {
            span.set_attribute(KeyValue::new("mcp_policy.refunded", true));
        }
        match finished.upstream {
            "ok" | "input_required" => {}
            other => {
                span.set_attribute(KeyValue::new("error.type", other));
                span.set_status(Status::error(other));
            }
        }
        span.end();
    }
}
