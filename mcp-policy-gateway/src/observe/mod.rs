//! What an operator sees of a running gateway: its Prometheus metrics ([`metrics`]: every
//! decision by kind, verdict and rule, limits, approvals, refunds, the upstream, the store,
//! sessions, reloads, requests refused at the door) and the `/metrics` endpoint that serves
//! them ([`endpoint`]), and OpenTelemetry traces exported over OTLP ([`traces`]). Each is off
//! unless the operator asks (`--metrics`, `--traces`); with neither, no observer is given to
//! the core gateway and nothing here runs.

pub mod endpoint;
pub mod metrics;
pub mod traces;

pub use endpoint::{Endpoint, MetricsAt};
pub use metrics::{Metrics, Refusal};
pub use traces::Traces;
