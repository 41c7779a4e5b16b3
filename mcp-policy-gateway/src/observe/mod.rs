//! What an operator sees of a running gateway: its Prometheus metrics ([`metrics`]: every
//! decision by kind, verdict and rule, limits, approvals, refunds, the upstream, the store,
//! sessions, reloads, requests refused at the door) and the `/metrics` endpoint that serves
//! them ([`endpoint`]). Off unless the operator asks (`--metrics`); when off, no observer is
//! given to the core gateway and nothing here runs.

pub mod endpoint;
pub mod metrics;

pub use endpoint::{Endpoint, MetricsAt};
pub use metrics::{Metrics, Refusal};
