//! The embedded in-memory store: sharded hash tables behind `parking_lot` mutexes.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use super::window::{Calendar, Sliding};
use super::{
    Charge, CounterKey, CounterStore, Outcome, Plan, Reservation, ReservedCharge, ScopeKey,
};
use crate::document::Reset;
use crate::error::{HostError, StoreError};

/// The default cap on live counter keys.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// An in-memory [`CounterStore`]: exact, safe under concurrent callers, bounded in memory.
///
/// - Keys are spread over shards (64 by default), each a hash table behind its own mutex;
///   one call locks only the shards of its own keys, in a fixed order, so calls on distinct
///   keys proceed in parallel and a call's charges are all-or-nothing.
/// - Counters whose window has passed are reclaimed as new keys arrive (amortised), or by
///   [`sweep`](Self::sweep).
/// - At most `max_keys` live counter keys (and as many pending approvals) exist; a call that
///   needs a new key beyond that is refused with [`StoreError::Full`]. A live counter is never
///   evicted: that would reset someone's limit.
/// - Time never goes backwards inside a shard: a call stamped earlier than the latest time the
///   shard has seen is treated as happening at that latest time, so a clock that jumps back
///   can delay admissions but never over-admit.
///
/// ```
/// use mcp_policy::{Engine, Grant, ManualClock, MemoryStore, Policy, Verdict};
/// let policy = Policy::from_json_str(r#"{"version":"1","default":"deny",
///   "tools":{"scan":{"rate_limit":"1/minute"}}}"#).unwrap();
/// let store = MemoryStore::with_max_keys(1);
/// let engine = Engine::with_parts(policy, ManualClock::new(0), store);
/// let args = serde_json::json!({});
/// assert_eq!(engine.evaluate("scan", &args, &Grant::new("a")).verdict, Verdict::Allow);
/// // A second grant needs a second key: refused, and the first grant's budget is intact.
/// let d = engine.evaluate("scan", &args, &Grant::new("b"));
/// assert_eq!(d.verdict, Verdict::Deny);
/// assert!(d.message.unwrap().contains("counter store is full"));
/// assert_eq!(engine.evaluate("scan", &args, &Grant::new("a")).verdict, Verdict::Limit);
/// ```
pub struct MemoryStore {
    shards: Box<[Padded]>,
    mask: usize,
    hasher: DefaultHashBuilder,
    live: AtomicUsize,
    max_keys: usize,
    last_full_sweep: AtomicU64,
    approvals: Mutex<HashMap<String, ApprovalRecord>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("live_keys", &self.live_keys())
            .field("max_keys", &self.max_keys)
            .finish()
    }
}

/// A shard on cache lines of its own, so that threads working on neighbouring shards do not
/// slow each other down (128 bytes: adjacent-line prefetching pairs 64-byte lines).
#[repr(align(128))]
struct Padded(Mutex<Shard>);

impl std::ops::Deref for Padded {
    type Target = Mutex<Shard>;
    fn deref(&self) -> &Mutex<Shard> {
        &self.0
    }
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    high_water: u64,
    next_id: u64,
    inserts_since_sweep: usize,
}

/// One counter, on cache lines of its own: the newest event of a sliding window is written
/// here on every charge, and counters of different threads must not share a line.
#[repr(align(64))]
struct Entry {
    key: OwnedKey,
    hash: u64,
    id: u64,
    window_ms: u64,
    state: State,
}

enum State {
    Sliding(Sliding),
    Calendar(Calendar),
}

#[derive(PartialEq, Eq)]
struct OwnedKey {
    counter: Box<str>,
    window_ms: u64,
    reset: Reset,
    scope: OwnedScope,
}

#[derive(PartialEq, Eq)]
enum OwnedScope {
    Global,
    Grant(Box<str>),
    Session(Box<str>, Option<Box<str>>),
    Tool(Box<str>),
    ArgStr(Box<str>),
    ArgJson(Box<str>),
}

impl OwnedKey {
    fn from_key(key: &CounterKey<'_>) -> OwnedKey {
        OwnedKey {
            counter: key.counter.into(),
            window_ms: key.window_ms,
            reset: key.reset,
            scope: match &key.scope {
                ScopeKey::Global => OwnedScope::Global,
                ScopeKey::Grant(g) => OwnedScope::Grant((*g).into()),
                ScopeKey::Session(g, s) => OwnedScope::Session((*g).into(), s.map(Into::into)),
                ScopeKey::Tool(t) => OwnedScope::Tool((*t).into()),
                ScopeKey::ArgStr(v) => OwnedScope::ArgStr((*v).into()),
                ScopeKey::ArgJson(v) => OwnedScope::ArgJson(v.as_str().into()),
            },
        }
    }

    fn matches(&self, key: &CounterKey<'_>) -> bool {
        *self.counter == *key.counter
            && self.window_ms == key.window_ms
            && self.reset == key.reset
            && match (&self.scope, &key.scope) {
                (OwnedScope::Global, ScopeKey::Global) => true,
                (OwnedScope::Grant(a), ScopeKey::Grant(b)) => **a == **b,
                (OwnedScope::Session(a, s), ScopeKey::Session(b, t)) => {
                    **a == **b && s.as_deref() == *t
                }
                (OwnedScope::Tool(a), ScopeKey::Tool(b)) => **a == **b,
                (OwnedScope::ArgStr(a), ScopeKey::ArgStr(b)) => **a == **b,
                (OwnedScope::ArgJson(a), ScopeKey::ArgJson(b)) => **a == **b,
                _ => false,
            }
    }
}

impl Entry {
    /// Brings the window up to `now`; returns the cost in the window.
    fn refresh(&mut self, now: u64) -> u64 {
        match &mut self.state {
            State::Sliding(s) => {
                s.prune(now, self.window_ms);
                s.used()
            }
            State::Calendar(c) => {
                c.roll(now, self.window_ms);
                c.used()
            }
        }
    }

    fn retry_after(&self, now: u64, max: u64, cost: u64) -> u64 {
        match &self.state {
            State::Sliding(s) => s.retry_after(now, self.window_ms, max, cost),
            State::Calendar(c) => c.retry_after(now, self.window_ms, max, cost),
        }
    }

    fn charge(&mut self, now: u64, cost: u64) -> u64 {
        match &mut self.state {
            State::Sliding(s) => {
                s.charge(now, cost);
                s.used()
            }
            State::Calendar(c) => {
                c.charge(cost);
                c.used()
            }
        }
    }

    fn expired(&mut self, now: u64) -> bool {
        match &mut self.state {
            State::Sliding(s) => {
                s.prune(now, self.window_ms);
                s.is_empty()
            }
            State::Calendar(c) => c.expired(now, self.window_ms),
        }
    }
}

struct ApprovalRecord {
    binding: String,
    ttl_ms: u64,
    approved: bool,
    expires_at: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store with 64 shards and the default cap of live keys ([`DEFAULT_MAX_KEYS`]).
    pub fn new() -> MemoryStore {
        MemoryStore::with_config(64, DEFAULT_MAX_KEYS)
    }

    /// A store with the default shards and at most `max_keys` live counter keys.
    pub fn with_max_keys(max_keys: usize) -> MemoryStore {
        MemoryStore::with_config(64, max_keys)
    }

    /// A store with `shards` shards (rounded up to a power of two, at least 1) and at most
    /// `max_keys` live counter keys.
    pub fn with_config(shards: usize, max_keys: usize) -> MemoryStore {
        let n = shards.max(1).next_power_of_two();
        MemoryStore {
            shards: (0..n)
                .map(|_| Padded(Mutex::new(Shard::default())))
                .collect(),
            mask: n - 1,
            hasher: DefaultHashBuilder::default(),
            live: AtomicUsize::new(0),
            max_keys,
            last_full_sweep: AtomicU64::new(0),
            approvals: Mutex::new(HashMap::new()),
        }
    }

    /// The number of live counter keys.
    pub fn live_keys(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The number of pending or recorded approvals held.
    pub fn approvals_held(&self) -> usize {
        self.approvals.lock().len()
    }

    /// Reclaims every counter whose window has passed by `now_ms` and every expired approval,
    /// and gives unused table memory back. Hosts may call it periodically; the store also
    /// reclaims as it goes.
    pub fn sweep(&self, now_ms: u64) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            self.sweep_shard(&mut shard, now_ms);
        }
        let mut approvals = self.approvals.lock();
        approvals.retain(|_, r| r.expires_at > now_ms);
        if approvals.capacity() > 4 * approvals.len() + 64 {
            approvals.shrink_to_fit();
        }
    }

    fn sweep_shard(&self, shard: &mut Shard, now_ms: u64) {
        shard.high_water = shard.high_water.max(now_ms);
        let now = shard.high_water;
        let before = shard.table.len();
        shard.table.retain(|entry| !entry.expired(now));
        let removed = before - shard.table.len();
        if removed > 0 {
            self.live.fetch_sub(removed, Ordering::Relaxed);
        }
        if shard.table.capacity() > 4 * shard.table.len() + 16 {
            shard.table.shrink_to(shard.table.len() * 2, |e| e.hash);
        }
        shard.inserts_since_sweep = 0;
    }

    fn shard_of(&self, hash: u64) -> usize {
        ((hash >> 32) as usize) & self.mask
    }

    /// Takes `n` key slots from the cap, reclaiming expired keys if needed.
    fn reserve_keys(
        &self,
        n: usize,
        held: &mut [(usize, MutexGuard<'_, Shard>)],
        now: u64,
    ) -> Result<(), StoreError> {
        if n == 0 {
            return Ok(());
        }
        for attempt in 0..2 {
            let before = self.live.fetch_add(n, Ordering::Relaxed);
            if before.saturating_add(n) <= self.max_keys {
                return Ok(());
            }
            self.live.fetch_sub(n, Ordering::Relaxed);
            if attempt == 0 {
                // Reclaim what has expired: the shards this call holds, and the others
                // (without waiting on any), at most once a second.
                for (_, shard) in held.iter_mut() {
                    self.sweep_shard(shard, now);
                }
                let last = self.last_full_sweep.load(Ordering::Relaxed);
                if now >= last.saturating_add(1_000)
                    && self
                        .last_full_sweep
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    for (i, shard) in self.shards.iter().enumerate() {
                        if held.iter().any(|(h, _)| *h == i) {
                            continue;
                        }
                        if let Some(mut shard) = shard.try_lock() {
                            self.sweep_shard(&mut shard, now);
                        }
                    }
                }
            }
        }
        Err(StoreError::Full {
            limit: self.max_keys,
        })
    }
}

fn held_shard<'g, 's>(
    held: &'g mut [(usize, MutexGuard<'s, Shard>)],
    index: usize,
) -> Option<&'g mut Shard> {
    held.iter_mut()
        .find(|(i, _)| *i == index)
        .map(|(_, g)| &mut **g)
}

impl MemoryStore {
    /// Creates the counter for `charge` in `shard`, charged at `now`; returns its id and the
    /// cost used after charging. The caller has reserved room under the key cap.
    fn insert_new(
        &self,
        shard: &mut Shard,
        hash: u64,
        charge: &Charge<'_>,
        now: u64,
    ) -> (u64, u64) {
        shard.next_id += 1;
        let id = shard.next_id;
        let state = match charge.key.reset {
            Reset::Sliding => State::Sliding(Sliding::default()),
            Reset::Calendar => State::Calendar(Calendar::default()),
        };
        let mut entry = Entry {
            key: OwnedKey::from_key(&charge.key),
            hash,
            id,
            window_ms: charge.key.window_ms,
            state,
        };
        entry.refresh(now);
        let used = entry.charge(now, charge.cost);
        shard.inserts_since_sweep += 1;
        if shard.inserts_since_sweep > shard.table.len().max(64) {
            self.sweep_shard(shard, now);
        }
        shard.table.insert_unique(hash, entry, |e| e.hash);
        (id, used)
    }

    /// The common case, one charge and no approval: one lock, one lookup.
    fn apply_one(&self, now_ms: u64, charge: &Charge<'_>) -> Result<Outcome, StoreError> {
        let hash = self.hasher.hash_one(&charge.key);
        let index = self.shard_of(hash);
        let shard = self
            .shards
            .get(index)
            .ok_or_else(|| StoreError::Unavailable("shard index out of range".into()))?;
        let mut guard = shard.lock();
        guard.high_water = guard.high_water.max(now_ms);
        let now = guard.high_water;
        if charge.cost > charge.max {
            return Ok(Outcome::Limited {
                charge: 0,
                retry_after_ms: charge.key.window_ms,
            });
        }
        if let Some(entry) = guard.table.find_mut(hash, |e| e.key.matches(&charge.key)) {
            entry.refresh(now);
            let retry_after_ms = entry.retry_after(now, charge.max, charge.cost);
            if retry_after_ms > 0 {
                return Ok(Outcome::Limited {
                    charge: 0,
                    retry_after_ms,
                });
            }
            let used = entry.charge(now, charge.cost);
            let reservation = (charge.cost > 0).then(|| Reservation {
                charges: smallvec::smallvec![ReservedCharge {
                    slot: hash,
                    tag: entry.id,
                    at_ms: now,
                    cost: charge.cost
                }],
                handle: None,
            });
            return Ok(Outcome::Admitted {
                remaining: Some(charge.max.saturating_sub(used)),
                reservation,
            });
        }
        if charge.cost == 0 {
            return Ok(Outcome::Admitted {
                remaining: Some(charge.max),
                reservation: None,
            });
        }
        let mut held: SmallVec<[(usize, MutexGuard<'_, Shard>); 4]> =
            smallvec::smallvec![(index, guard)];
        self.reserve_keys(1, &mut held, now)?;
        let Some((_, guard)) = held.first_mut() else {
            return Err(StoreError::Unavailable("shard not locked".into()));
        };
        let (id, used) = self.insert_new(guard, hash, charge, now);
        Ok(Outcome::Admitted {
            remaining: Some(charge.max.saturating_sub(used)),
            reservation: Some(Reservation {
                charges: smallvec::smallvec![ReservedCharge {
                    slot: hash,
                    tag: id,
                    at_ms: now,
                    cost: charge.cost
                }],
                handle: None,
            }),
        })
    }
}

impl CounterStore for MemoryStore {
    fn apply(&self, plan: &Plan<'_>) -> Result<Outcome, StoreError> {
        if plan.approval.is_none()
            && let [charge] = plan.charges.as_slice()
        {
            return self.apply_one(plan.now_ms, charge);
        }
        let hashes: SmallVec<[u64; 4]> = plan
            .charges
            .iter()
            .map(|c| self.hasher.hash_one(&c.key))
            .collect();
        let mut order: SmallVec<[usize; 4]> = hashes.iter().map(|h| self.shard_of(*h)).collect();
        order.sort_unstable();
        order.dedup();
        let mut held: SmallVec<[(usize, MutexGuard<'_, Shard>); 4]> = SmallVec::new();
        for index in order {
            let shard = self
                .shards
                .get(index)
                .ok_or_else(|| StoreError::Unavailable("shard index out of range".into()))?;
            let mut guard = shard.lock();
            guard.high_water = guard.high_water.max(plan.now_ms);
            held.push((index, guard));
        }

        // 1. The approval, if the call needs one (spec section 7: step 6 before the limits of
        //    step 7). A usable approval stays locked, and is consumed only if step 3 charges.
        let mut approvals = None;
        if let Some(check) = &plan.approval {
            let mut map = self.approvals.lock();
            let usable = map.get(&check.id).is_some_and(|r| {
                r.approved && r.binding == check.binding && r.expires_at > plan.now_ms
            });
            if !usable {
                let approved_elsewhere = map
                    .get(&check.id)
                    .is_some_and(|r| r.approved && r.expires_at > plan.now_ms);
                if !approved_elsewhere {
                    if map.len() >= self.max_keys {
                        map.retain(|_, r| r.expires_at > plan.now_ms);
                        if map.len() >= self.max_keys {
                            return Err(StoreError::Full {
                                limit: self.max_keys,
                            });
                        }
                    }
                    map.insert(
                        check.id.clone(),
                        ApprovalRecord {
                            binding: check.binding.clone(),
                            ttl_ms: check.ttl_ms,
                            approved: false,
                            expires_at: plan.now_ms.saturating_add(check.ttl_ms),
                        },
                    );
                }
                return Ok(Outcome::ApprovalRequired);
            }
            approvals = Some(map);
        }

        // 2. Check every charge without changing any budget; a refusal keeps the approval.
        let mut refusal: Option<(usize, u64)> = None;
        let mut new_keys = 0usize;
        for (i, (charge, hash)) in plan.charges.iter().zip(&hashes).enumerate() {
            let shard = held_shard(&mut held, self.shard_of(*hash))
                .ok_or_else(|| StoreError::Unavailable("shard not locked".into()))?;
            let now = shard.high_water;
            let retry = match shard.table.find_mut(*hash, |e| e.key.matches(&charge.key)) {
                Some(entry) => {
                    entry.refresh(now);
                    if charge.cost > charge.max {
                        charge.key.window_ms
                    } else {
                        entry.retry_after(now, charge.max, charge.cost)
                    }
                }
                None => {
                    if charge.cost > 0 {
                        new_keys += 1;
                    }
                    if charge.cost > charge.max {
                        charge.key.window_ms
                    } else {
                        0
                    }
                }
            };
            if retry > 0 && refusal.is_none_or(|(_, worst)| retry > worst) {
                refusal = Some((i, retry));
            }
        }
        if let Some((charge, retry_after_ms)) = refusal {
            return Ok(Outcome::Limited {
                charge,
                retry_after_ms,
            });
        }

        // 3. Room for new keys, then charge everything.
        self.reserve_keys(new_keys, &mut held, plan.now_ms)?;
        let mut remaining: Option<u64> = None;
        let mut reservation = Reservation::default();
        let mut inserted = 0usize;
        for (charge, hash) in plan.charges.iter().zip(&hashes) {
            let shard = held_shard(&mut held, self.shard_of(*hash))
                .ok_or_else(|| StoreError::Unavailable("shard not locked".into()))?;
            let now = shard.high_water;
            let used = match shard.table.find_mut(*hash, |e| e.key.matches(&charge.key)) {
                Some(entry) => {
                    if charge.cost > 0 {
                        reservation.charges.push(ReservedCharge {
                            slot: *hash,
                            tag: entry.id,
                            at_ms: now,
                            cost: charge.cost,
                        });
                    }
                    entry.charge(now, charge.cost)
                }
                None if charge.cost == 0 => 0,
                None => {
                    let (id, used) = self.insert_new(shard, *hash, charge, now);
                    reservation.charges.push(ReservedCharge {
                        slot: *hash,
                        tag: id,
                        at_ms: now,
                        cost: charge.cost,
                    });
                    inserted += 1;
                    used
                }
            };
            let left = charge.max.saturating_sub(used);
            remaining = Some(remaining.map_or(left, |r: u64| r.min(left)));
        }
        // A key seen in step 2 may have been reclaimed (its window had passed) while making
        // room, and inserted again: count it.
        if inserted > new_keys {
            self.live.fetch_add(inserted - new_keys, Ordering::Relaxed);
        }
        if let (Some(mut map), Some(check)) = (approvals, &plan.approval) {
            map.remove(&check.id);
        }
        let reservation = if reservation.charges.is_empty() {
            None
        } else {
            Some(reservation)
        };
        Ok(Outcome::Admitted {
            remaining,
            reservation,
        })
    }

    fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        for charge in reservation.charges {
            let Some(shard) = self.shards.get(self.shard_of(charge.slot)) else {
                continue;
            };
            let mut shard = shard.lock();
            if let Some(entry) = shard.table.find_mut(charge.slot, |e| e.id == charge.tag) {
                match &mut entry.state {
                    State::Sliding(s) => s.refund(charge.at_ms, charge.cost),
                    State::Calendar(c) => c.refund(charge.at_ms, entry.window_ms, charge.cost),
                }
            }
        }
        Ok(())
    }

    fn record_approval(&self, id: &str, now_ms: u64) -> Result<(), HostError> {
        let mut map = self.approvals.lock();
        match map.get_mut(id) {
            Some(record) if record.expires_at > now_ms => {
                if !record.approved {
                    record.approved = true;
                    record.expires_at = now_ms.saturating_add(record.ttl_ms);
                }
                Ok(())
            }
            _ => Err(HostError::UnknownApproval(id.to_owned())),
        }
    }
}

impl MemoryStore {
    /// Approximate heap bytes held by counters (tables, keys and event buffers), for
    /// capacity planning.
    pub fn heap_bytes(&self) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let shard = shard.lock();
            total += shard.table.capacity() * (std::mem::size_of::<Entry>() + 1);
            for entry in shard.table.iter() {
                total += entry.key.counter.len();
                total += match &entry.key.scope {
                    OwnedScope::Global => 0,
                    OwnedScope::Grant(s)
                    | OwnedScope::Tool(s)
                    | OwnedScope::ArgStr(s)
                    | OwnedScope::ArgJson(s) => s.len(),
                    OwnedScope::Session(g, s) => g.len() + s.as_ref().map_or(0, |s| s.len()),
                };
                if let State::Sliding(s) = &entry.state {
                    total += s.heap_bytes();
                }
            }
        }
        total
    }
}
