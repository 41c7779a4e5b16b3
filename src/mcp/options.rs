//! The operator's choices for a gateway and for the approvals of typed hosts.

use std::time::Duration;

/// How a gateway behaves where the operator chooses.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// How long a human has to answer an elicitation (default 2 minutes).
    pub approval_timeout: Duration,
    /// How an operator approves out of band, shown to the client (e.g.
    /// `mcp-policy approve ID --store redis://…`); `ID` is replaced by the approval id.
    pub approve_command: Option<String>,
    /// Keep the raw arguments for the audit log.
    pub audit_args: bool,
    /// Fill the audit records (default true). A host that writes no audit log turns this off:
    /// its records then carry only the outcome, not the decision and the arguments.
    pub audit: bool,
    /// The longest `ttlMs` a filtered 2026-07-28 list result may carry (default 50 ms, the
    /// policy watcher's own reload delay): a client's cached list never outlives a reload
    /// by more than this.
    pub list_ttl_max: Duration,
    /// The tools' annotations seen listed, shared by every gateway cloned from these options
    /// (a policy that trusts annotations judges calls by them).
    pub catalog: super::Catalog,
    /// Told every decision, every forwarded call's end and every approval step (none by
    /// default: then the gateway reads no clock for it).
    pub observers: crate::observe::Observers,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            approval_timeout: Duration::from_secs(120),
            approve_command: None,
            audit_args: false,
            audit: true,
            list_ttl_max: Duration::from_millis(50),
            catalog: super::Catalog::default(),
            observers: crate::observe::Observers::none(),
        }
    }
}
