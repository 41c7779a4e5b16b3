//! What every decision of a host needs, opened once from the [`HostOptions`] for both hosts:
//! the engine over the chosen store, the audit log, and the core gateway's options (the
//! approval timeout, the out-of-band approve command, what is audited).

use std::sync::Arc;

use mcp_policy::Policy;
use mcp_policy::mcp::GatewayOptions;
use mcp_policy::observe::{Fanout, Observer, Observers};

use crate::error::Error;
use crate::host::audit::Audit;
use crate::observe::traces::{self, Traces};
use crate::observe::{Endpoint, Metrics, MetricsAt};
use crate::options::HostOptions;
use crate::store::{self, Gate};

/// A host's engine, audit log, metrics and gateway options.
pub struct Context {
    /// The engine, over the store `--store` chose.
    pub engine: Arc<Gate>,
    /// The audit log.
    pub audit: Audit,
    /// What each session's (or the relay's) core gateway is made with.
    pub options: GatewayOptions,
    /// The metrics, when the operator asked for them (`--metrics`).
    pub metrics: Option<Arc<Metrics>>,
    /// The metrics' own listener (`--metrics ADDR`), stopped with the context.
    pub endpoint: Option<Endpoint>,
    /// The tracer, when traces are on (`--traces`, `OTEL_TRACES_EXPORTER=otlp`).
    pub traces: Option<Arc<Traces>>,
}

impl Context {
    /// Opens the audit log, then the store with `policy` (with a Redis connection of its own
    /// for each of `event_loops`: see [`store::open`]).
    pub fn open(
        options: &HostOptions,
        policy: Policy,
        event_loops: &[tokio::runtime::Runtime],
    ) -> Result<Context, Error> {
        let metrics = options.metrics.as_ref().map(|_| Arc::new(Metrics::new()));
        let audit = Audit::open_with(
            options.audit.as_deref(),
            options.audit_sync,
            metrics.clone(),
        )?;
        if let Some(metrics) = &metrics {
            metrics.policy_revision(policy.revision());
        }
        let opened = store::open(&options.store, policy, event_loops, metrics.clone())?;
        let endpoint = match (&options.metrics, &metrics) {
            (Some(MetricsAt::Listen { addr, public }), Some(metrics)) => {
                Some(Endpoint::start(addr, *public, Arc::clone(metrics))?)
            }
            _ => None,
        };
        let traces = match traces::wanted(options.traces, |k| std::env::var(k).ok()) {
            true => Some(Arc::new(Traces::start()?)),
            false => None,
        };
        let mut observing: Vec<Arc<dyn Observer>> = Vec::new();
        if let Some(metrics) = &metrics {
            observing.push(Arc::clone(metrics) as Arc<dyn Observer>);
        }
        if let Some(traces) = &traces {
            observing.push(Arc::clone(traces) as Arc<dyn Observer>);
        }
        let observers = match observing.len() {
            0 => Observers::none(),
            1 => Observers::new(observing.swap_remove(0)),
            _ => Observers::new(Arc::new(Fanout::new(observing))),
        };
        let gateway = GatewayOptions {
            approval_timeout: options.approval_timeout,
            approve_command: opened.approve_command,
            audit_args: options.audit_args,
            audit: audit.enabled(),
            observers,
            ..GatewayOptions::default()
        };
        Ok(Context {
            engine: opened.gate,
            audit,
            options: gateway,
            metrics,
            endpoint,
            traces,
        })
    }

    /// Exports the spans left and stops the exporter (a host calls it when it stops).
    pub fn stop_traces(&self) {
        if let Some(traces) = &self.traces {
            traces.shutdown();
        }
    }

    /// Whether the store answers without blocking (memory): a decision may then be made on
    /// an event loop.
    pub fn inline_store(&self) -> bool {
        self.engine.answers_inline()
    }

    /// Watches the policy file: each change that loads is swapped into the engine (see
    /// [`crate::host::watch::reload_policy`]); the watcher stops when the returned value is
    /// dropped.
    pub fn watch_policy(
        self: &Arc<Self>,
        path: &std::path::Path,
        text: String,
    ) -> Option<notify::RecommendedWatcher> {
        crate::host::watch::watch_policy(self, path, text, |ctx| {
            (ctx.engine.as_ref(), &ctx.audit, ctx.metrics.as_deref())
        })
    }
}
