//! A call's charges (step 7): the limits it draws on (the entry's, then `all_tools`'), the
//! counter key each charge draws on (its scope value taken from the call), what each charge
//! costs (fixed, or read from the call), and charges on one key merged into one.

use serde_json::Value;
use smallvec::SmallVec;

use crate::approval::canonical_json_by_value;
use crate::compile::{CompiledEntry, CompiledLimit, Policy};
use crate::document::{Cost, Scope};
use crate::grant::Grant;
use crate::path::Found;
use crate::store::{Charge, CounterKey, ScopeKey};
use crate::subject::Subject;

impl Policy {
    /// The limit at `index` in a call's limit list: the entry's limits, then `all_tools`'.
    pub(super) fn limit_of<'p>(
        &'p self,
        entry: Option<&'p CompiledEntry>,
        index: usize,
    ) -> Option<&'p CompiledLimit> {
        let own = entry.map_or(&[][..], |e| e.stage.limits.as_slice());
        match index.checked_sub(own.len()) {
            None => own.get(index),
            Some(rest) => self.all_tools.limits.get(rest),
        }
    }
}

/// Merges charges on one key into the first of them (its cost becomes their sum), keeping
/// the order of first appearance.
pub(super) fn merge_same_keys(charges: &mut SmallVec<[Charge<'_>; 2]>) {
    let mut i = 1;
    while i < charges.len() {
        let (head, tail) = charges.split_at_mut(i);
        let merged = match (tail.first(), head) {
            (Some(later), head) => match head.iter_mut().find(|c| c.key == later.key) {
                Some(first) => {
                    first.cost = first.cost.saturating_add(later.cost);
                    true
                }
                None => false,
            },
            (None, _) => false,
        };
        if merged {
            charges.remove(i);
        } else {
            i += 1;
        }
    }
}

// ---- scopes: the counter key a charge draws on

/// The counter key `limit` draws on for this call; an argument scope whose value the call
/// lacks is an error (the call is denied).
#[inline(always)]
pub(super) fn counter_key<'a>(
    limit: &'a CompiledLimit,
    subject: Subject<'a>,
    args: &'a Value,
    grant: &'a Grant,
) -> Result<CounterKey<'a>, String> {
    let scope = match &limit.scope {
        Scope::Grant => ScopeKey::Grant(&grant.id),
        Scope::Session => ScopeKey::Session(&grant.id, grant.session.as_deref()),
        Scope::Global => ScopeKey::Global,
        Scope::Tool => ScopeKey::Tool(subject.name()),
        Scope::Arg(path) => arg_scope(limit, path, subject, args, grant)?,
    };
    Ok(CounterKey {
        counter: &limit.counter_name,
        window_ms: limit.window_ms,
        reset: limit.reset,
        scope,
    })
}

/// The scope of a counter kept per argument value (out of line: the other scopes are a copy).
#[inline(never)]
fn arg_scope<'a>(
    limit: &CompiledLimit,
    path: &crate::path::Path,
    subject: Subject<'a>,
    args: &'a Value,
    grant: &'a Grant,
) -> Result<ScopeKey<'a>, String> {
    match path.resolve(subject, args, grant) {
        None => Err(format!(
            "counter `{}` is kept per value of `{path}`, which is missing from the call",
            limit.counter
        )),
        Some(Found::Str(s)) => Ok(ScopeKey::ArgStr(s)),
        Some(Found::Json(Value::String(s))) => Ok(ScopeKey::ArgStr(s)),
        // Numbers by value (section 4): `1` and `1.0` are one budget.
        Some(Found::Json(v)) => Ok(ScopeKey::ArgJson(canonical_json_by_value(v))),
    }
}

// ---- costs: what one charge costs

/// What this call costs on `limit`; a cost path the call lacks, or whose value is not a
/// non-negative integer, is an error (the call is denied).
#[inline(always)]
pub(super) fn limit_cost(
    limit: &CompiledLimit,
    subject: Subject<'_>,
    args: &Value,
    grant: &Grant,
) -> Result<u64, String> {
    match &limit.cost {
        Cost::Fixed(c) => Ok(*c),
        Cost::Path(path) => path_cost(limit, path, subject, args, grant),
    }
}

/// A cost read from the call (out of line: a fixed cost is a copy).
#[inline(never)]
fn path_cost(
    limit: &CompiledLimit,
    path: &crate::path::Path,
    subject: Subject<'_>,
    args: &Value,
    grant: &Grant,
) -> Result<u64, String> {
    let found = path.resolve(subject, args, grant);
    let bad = |what: &str| {
        format!(
            "the cost of counter `{}` is read from `{path}`, which {what}",
            limit.counter
        )
    };
    match found {
        None => Err(bad("is missing")),
        Some(Found::Json(Value::Number(n))) => {
            if let Some(c) = n.as_u64() {
                Ok(c)
            } else if n.as_i64().is_some_and(|i| i < 0) || n.as_f64().is_some_and(|f| f < 0.0) {
                Err(bad(&format!("is negative ({n})")))
            } else {
                match n.as_f64() {
                    Some(f)
                        if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) =>
                    {
                        Ok(f as u64)
                    }
                    _ => Err(bad(&format!("is not a non-negative integer ({n})"))),
                }
            }
        }
        Some(other) => Err(bad(&format!("is {}, not a number", other.type_name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Reset;

    fn charge(counter: &str, cost: u64, limit: usize) -> Charge<'_> {
        Charge {
            key: CounterKey {
                counter,
                window_ms: 60_000,
                reset: Reset::Sliding,
                scope: ScopeKey::Global,
            },
            max: 10,
            cost,
            limit,
        }
    }

    #[test]
    fn charges_on_one_key_merge_into_the_first_in_order() {
        let mut charges: SmallVec<[Charge<'_>; 2]> = SmallVec::new();
        for (counter, cost, limit) in [
            ("a", 1, 0),
            ("b", 2, 1),
            ("a", 3, 2),
            ("c", 4, 3),
            ("b", 5, 4),
        ] {
            charges.push(charge(counter, cost, limit));
        }
        merge_same_keys(&mut charges);
        let got: Vec<(&str, u64, usize)> = charges
            .iter()
            .map(|c| (c.key.counter, c.cost, c.limit))
            .collect();
        assert_eq!(got, vec![("a", 4, 0), ("b", 7, 1), ("c", 4, 3)]);
    }
}
