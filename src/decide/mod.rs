//! Deciding one call: the spec's section 7, run per call against a compiled [`Policy`].
//!
//! [`Policy::plan`] (and the engine's `prepare`) runs steps 1 to 7 without IO and either
//! decides or returns the [`Plan`] a store must apply; [`Policy::conclude`] (the engine's
//! `finish`) turns the store's outcome into the [`Decision`]. The submodules hold the parts
//! of a call's decision: `lookup` (steps 1 and 2: which `hide` and `tools` entries apply),
//! `condition` (testing a compiled condition against the call) and `limits` (step 7: a
//! call's charges, with the scope of each one's counter key and its cost).

mod condition;
mod limits;
mod lookup;

use std::sync::LazyLock;

use serde_json::Value;

use crate::approval::{approval_id, binding, binding_of};
use crate::args::check_args;
use crate::compile::{CompiledClause, CompiledEntry, CompiledStage, Policy};
use crate::decision::{Decision, Verdict};
use crate::document::{Action, DefaultAction};
use crate::error::StoreError;
use crate::grant::Grant;
use crate::store::{ApprovalCheck, Charge, Outcome, Plan};
use crate::subject::{Kind, Subject};
use crate::text::Text;
use limits::{counter_key, limit_cost, merge_same_keys};

/// The first step of deciding a call, before any counter is touched.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // boxing would allocate on every call
pub enum Step<'a> {
    /// Decided without the store (denied, or allowed with no limits and no approval).
    Done(Decision),
    /// The store must apply `plan`; then pass its outcome to [`Policy::conclude`].
    Apply(Pending<'a>),
}

/// A call waiting for its store round trip.
#[derive(Debug)]
pub struct Pending<'a> {
    /// What the store must apply, atomically.
    pub plan: Plan<'a>,
    context: Context<'a>,
}

/// What concluding a call needs besides its plan: the entry whose limits the charges come
/// from, and the rules that answer it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    entry: Option<&'a CompiledEntry>,
    allow_rule: &'a Text,
    approve: Option<(&'a Text, &'a Text)>,
}

/// The result of [`Policy::prepare`]: small, so that returning it copies little; the engine
/// builds the decision itself, in place.
pub(crate) enum Prepared<'a> {
    /// Allowed without the store, by this rule.
    Allow(&'a Text),
    /// Denied by this rule, with this message.
    Deny(&'a Text, Text),
    /// Hidden by this rule, with this message.
    Hidden(&'a Text, Text),
    /// The plan must go to the store.
    Store(Context<'a>),
}

impl<'a> Prepared<'a> {
    fn deny(rule: &'a Text, message: impl Into<Text>) -> Prepared<'a> {
        Prepared::Deny(rule, message.into())
    }
}

static EMPTY_ARGS: LazyLock<Value> = LazyLock::new(|| Value::Object(serde_json::Map::new()));

impl Policy {
    /// Decides everything about a call that needs no store, and plans the rest.
    ///
    /// This is the sans-IO half of [`Engine::evaluate`](crate::Engine::evaluate): an async
    /// host with a remote store sends `pending.plan` to its store and passes the outcome to
    /// [`conclude`](Self::conclude).
    ///
    /// ```
    /// use mcp_policy::{CounterStore, Grant, MemoryStore, Policy, Step, Verdict};
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///     "tools":{"scan":{"rate_limit":"10/minute"}}}"#).unwrap();
    /// let store = MemoryStore::new();
    /// let args = serde_json::json!({});
    /// let grant = Grant::new("alice");
    /// let decision = match policy.plan("scan", &args, &grant, 1_000) {
    ///     Step::Done(decision) => decision,
    ///     Step::Apply(pending) => {
    ///         let outcome = store.apply(&pending.plan); // a remote store would `.await` here
    ///         policy.conclude(pending, outcome)
    ///     }
    /// };
    /// assert_eq!(decision.verdict, Verdict::Allow);
    /// assert_eq!(decision.remaining, Some(9));
    /// ```
    #[inline]
    pub fn plan<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        grant: &'a Grant,
        now_ms: u64,
    ) -> Step<'a> {
        self.plan_for(Subject::Tool(tool), args, grant, now_ms)
    }

    /// [`plan`](Self::plan) for any [`Subject`]: a tool, a resource or a prompt.
    ///
    /// ```
    /// use mcp_policy::{Grant, Policy, Step, Verdict};
    /// use mcp_policy::subject::Subject;
    /// use mcp_policy::uri::Uri;
    /// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
    ///     "resources":{"file:///srv/docs/*":{}}}"#).unwrap();
    /// let (args, grant) = (serde_json::json!({}), Grant::new("alice"));
    /// let uri = Uri::parse("file:///srv/docs/../../etc/shadow").unwrap();
    /// let Step::Done(d) = policy.plan_for(Subject::Resource(&uri), &args, &grant, 0) else { unreachable!() };
    /// assert_eq!(d.verdict, Verdict::Deny);
    /// assert_eq!(&*d.rule, "/default");
    /// ```
    #[inline]
    pub fn plan_for<'a>(
        &'a self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
        now_ms: u64,
    ) -> Step<'a> {
        let mut plan = Plan::new(now_ms);
        match self.prepare(subject, args, grant, &mut plan) {
            Prepared::Allow(rule) => Step::Done(Decision::new(Verdict::Allow, rule.clone(), None)),
            Prepared::Deny(rule, message) => {
                Step::Done(Decision::new(Verdict::Deny, rule.clone(), Some(message)))
            }
            Prepared::Hidden(rule, message) => Step::Done(Decision::hide(rule, message)),
            Prepared::Store(context) => Step::Apply(Pending { plan, context }),
        }
    }

    /// Steps 1 to 7 of the spec's procedure: decides the call, or fills `plan` (empty, with
    /// the call's time) with what the store must apply. The engine keeps the plan in its own
    /// stack frame for the whole call, so that it is never moved.
    #[inline]
    pub(crate) fn prepare<'a>(
        &'a self,
        subject: Subject<'a>,
        args: &'a Value,
        grant: &'a Grant,
        plan: &mut Plan<'a>,
    ) -> Prepared<'a> {
        // Annotations count only under a policy that trusts them.
        let subject = match subject {
            Subject::AnnotatedTool(name, _) if !self.document.trust_annotations => {
                Subject::Tool(name)
            }
            subject => subject,
        };
        let kind = subject.kind();
        let name = subject.name();
        let section = self.section(kind);
        let args: &'a Value = if args.is_null() { &EMPTY_ARGS } else { args };
        if !args.is_object() {
            return Prepared::deny(
                &self.input_rule,
                format!(
                    "arguments must be a JSON object, found {}",
                    crate::error::type_name(args)
                ),
            );
        }
        if let Err(message) = check_args(args) {
            return Prepared::deny(&self.input_rule, message);
        }
        // 1. hidden (the top-level `hide` names tools)
        if kind == Kind::Tool
            && let Some(i) = self.hidden_by(name)
        {
            let rule = self.hide_rules.get(i).unwrap_or(&self.input_rule);
            return Prepared::Hidden(rule, section.hidden_message.clone());
        }
        // 2. matching entry, else default
        let entry = section.entry_for(name);
        let allow_rule = match entry {
            None if self.document.default == DefaultAction::Deny => {
                return Prepared::deny(&self.default_rule, section.default_message.clone());
            }
            None => &self.default_rule,
            Some(e) => &e.rule,
        };
        // 3. action deny (or hide)
        if let Some(e) = entry {
            if e.action == Action::Hide {
                return Prepared::Hidden(&e.action_rule, section.hidden_message.clone());
            }
            if e.action == Action::Deny {
                return Prepared::deny(&e.action_rule, e.deny_message.clone());
            }
            // 4. schema
            if let Some(schema) = &e.schema
                && !schema.validator.is_valid(args)
            {
                let message = match schema.validator.validate(args) {
                    Err(error) => {
                        let at = error.instance_path().as_str().to_owned();
                        let at = if at.is_empty() {
                            "(the arguments object)".to_owned()
                        } else {
                            format!("`{at}`")
                        };
                        format!("arguments do not match the schema at {at}: {error}")
                    }
                    Ok(()) => "arguments do not match the schema".to_owned(),
                };
                return Prepared::deny(&schema.rule, message);
            }
        }
        let tool_stage: &[CompiledStage] = match entry {
            Some(e) => std::slice::from_ref(&e.stage),
            None => &[],
        };
        // `all_tools` applies to tools only.
        let all_tools: &[CompiledStage] = match kind {
            Kind::Tool => std::slice::from_ref(&self.all_tools),
            _ => &[],
        };
        let stages = tool_stage.iter().chain(all_tools);
        // 5. require, then deny_if: the tool's, then all_tools'
        for stage in stages.clone() {
            for condition in &stage.require {
                match condition.holds(subject, args, grant) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Prepared::deny(&condition.rule, condition.message.clone());
                    }
                    Err(e) => return Prepared::deny(&condition.rule, e.message),
                }
            }
            for clause in &stage.deny_if {
                match clause_matches(clause, subject, args, grant) {
                    Ok(false) => {}
                    Ok(true) => {
                        return Prepared::deny(&clause.rule, clause.message.clone());
                    }
                    Err((rule, message)) => return Prepared::deny(rule, message),
                }
            }
        }
        // 6. approval: the action, else the first matching approve_if (all are evaluated:
        //    an evaluation error anywhere denies).
        let mut approve: Option<(&Text, &Text)> = None;
        if let Some(e) = entry
            && e.action == Action::Approve
        {
            approve = Some((&e.action_rule, &e.approve_message));
        }
        for stage in stages.clone() {
            for clause in &stage.approve_if {
                match clause_matches(clause, subject, args, grant) {
                    Ok(true) => {
                        if approve.is_none() {
                            approve = Some((&clause.rule, &clause.message));
                        }
                    }
                    Ok(false) => {}
                    Err((rule, message)) => return Prepared::deny(rule, message),
                }
            }
        }
        let approval = approve.map(|_| {
            let binding = match kind {
                Kind::Tool => binding(&grant.id, name, args, &self.revision),
                _ => binding_of(kind, &grant.id, name, args, &self.revision),
            };
            Box::new(ApprovalCheck {
                id: approval_id(&binding),
                binding,
                ttl_ms: self.document.approval_ttl_ms,
            })
        });
        // 7. limits: the tool's, then all_tools'
        let charges = &mut plan.charges;
        let mut index = 0usize;
        for stage in stages.clone() {
            for limit in &stage.limits {
                let key = match counter_key(limit, subject, args, grant) {
                    Ok(key) => key,
                    Err(message) => return Prepared::deny(&limit.rule, message),
                };
                let cost = match limit_cost(limit, subject, args, grant) {
                    Ok(cost) => cost,
                    Err(message) => return Prepared::deny(&limit.rule, message),
                };
                charges.push(Charge {
                    key,
                    max: limit.max,
                    cost,
                    limit: index,
                });
                index += 1;
            }
        }
        if charges.len() > 1 {
            merge_same_keys(charges);
        }
        for charge in charges.iter() {
            if charge.cost > charge.max {
                let limit = self.limit_of(entry, charge.limit);
                let rule = limit.map_or(&self.input_rule, |l| &l.rule);
                let counter = limit.map_or("", |l| &l.counter);
                return Prepared::deny(
                    rule,
                    format!(
                        "this call costs {} but counter `{counter}` admits at most {} per window; it can never fit",
                        charge.cost, charge.max
                    ),
                );
            }
        }
        if charges.is_empty() && approval.is_none() {
            return Prepared::Allow(allow_rule);
        }
        plan.approval = approval;
        Prepared::Store(Context {
            entry,
            allow_rule,
            approve,
        })
    }

    /// Turns a store's answer for `pending.plan` into the decision. A store error denies.
    #[inline]
    pub fn conclude(&self, pending: Pending<'_>, outcome: Result<Outcome, StoreError>) -> Decision {
        self.finish(&pending.plan, pending.context, outcome)
    }

    /// Turns a store's answer into the decision (see [`conclude`](Self::conclude)).
    #[inline]
    pub(crate) fn finish(
        &self,
        plan: &Plan<'_>,
        context: Context<'_>,
        outcome: Result<Outcome, StoreError>,
    ) -> Decision {
        let Context {
            entry,
            allow_rule,
            approve,
        } = context;
        match outcome {
            Err(error) => {
                let rule = plan
                    .charges
                    .first()
                    .and_then(|c| self.limit_of(entry, c.limit))
                    .map(|l| &l.rule)
                    .or(approve.map(|(rule, _)| rule))
                    .unwrap_or(allow_rule);
                let mut d =
                    Decision::deny(rule, format!("{error}; the call is denied (fail closed)"));
                d.store_failed = true;
                d
            }
            Ok(Outcome::ApprovalRequired) => match (approve, &plan.approval) {
                (Some((rule, message)), Some(check)) => {
                    let mut d =
                        Decision::new(Verdict::Approve, rule.clone(), Some(message.clone()));
                    d.approval_id = Some(check.id.clone());
                    d
                }
                _ => Decision::deny(
                    allow_rule,
                    "the store asked for an approval this call does not need; denying (fail closed)",
                ),
            },
            Ok(Outcome::Limited {
                charge,
                retry_after_ms,
            }) => {
                let limit = plan
                    .charges
                    .get(charge)
                    .and_then(|c| self.limit_of(entry, c.limit));
                match limit {
                    Some(limit) => {
                        let mut d = Decision::new(
                            Verdict::Limit,
                            limit.rule.clone(),
                            Some(limit.message.clone()),
                        );
                        d.counter = Some(limit.counter.clone());
                        d.retry_after_ms = Some(retry_after_ms);
                        d
                    }
                    None => Decision::deny(
                        allow_rule,
                        "the store refused a charge the call did not make; denying (fail closed)",
                    ),
                }
            }
            Ok(Outcome::Admitted {
                remaining,
                reservation,
            }) => Decision {
                verdict: Verdict::Allow,
                rule: allow_rule.clone(),
                message: None,
                counter: None,
                retry_after_ms: None,
                remaining: if plan.charges.is_empty() {
                    None
                } else {
                    remaining
                },
                approval_id: None,
                reservation,
                hidden: false,
                store_failed: false,
            },
        }
    }
}

fn clause_matches<'p>(
    clause: &'p CompiledClause,
    subject: Subject<'_>,
    args: &Value,
    grant: &Grant,
) -> Result<bool, (&'p Text, String)> {
    // Every condition is evaluated, so that an evaluation error anywhere denies.
    let mut all = true;
    for condition in &clause.conditions {
        match condition.holds(subject, args, grant) {
            Ok(true) => {}
            Ok(false) => all = false,
            Err(e) => return Err((&condition.rule, e.message)),
        }
    }
    Ok(all)
}
