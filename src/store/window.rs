//! The exact arithmetic of sliding and calendar windows, shared by all stores.
//!
//! Times are milliseconds. A sliding window of length `W` at time `t` covers the half-open
//! interval `(t - W, t]`: an event at `e` counts while `t < e + W`.

use std::collections::VecDeque;

/// An exact sliding window: the admitted events still inside the window, oldest first.
///
/// The newest event is kept inline and the older ones in a buffer on the heap: calls at one
/// instant merge into the inline event, so the common write stays in the counter itself (which
/// the in-memory store keeps on cache lines of its own) rather than in a small heap buffer that
/// may share a cache line with another thread's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sliding {
    /// Events older than `newest`, oldest first (empty when `newest` is `None`).
    older: VecDeque<(u64, u64)>,
    newest: Option<(u64, u64)>,
    used: u64,
}

impl Sliding {
    /// Drops the events that left the window at time `now`.
    #[inline]
    pub fn prune(&mut self, now: u64, window: u64) {
        while let Some(&(at, cost)) = self.older.front() {
            if at.saturating_add(window) > now {
                // The newest event is newer still: it is inside too.
                return;
            }
            self.older.pop_front();
            self.used = self.used.saturating_sub(cost);
        }
        if let Some((at, cost)) = self.newest
            && at.saturating_add(window) <= now
        {
            self.newest = None;
            self.used = self.used.saturating_sub(cost);
        }
    }

    /// The cost admitted inside the window (after [`prune`](Self::prune)).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Whether nothing is inside the window.
    pub fn is_empty(&self) -> bool {
        self.newest.is_none()
    }

    /// The events, oldest first.
    fn events(&self) -> impl Iterator<Item = &(u64, u64)> {
        self.older.iter().chain(self.newest.iter())
    }

    /// Milliseconds from `now` until `cost` fits under `max`, or 0 if it fits now.
    /// The caller guarantees `cost <= max` and that [`prune`](Self::prune) ran at `now`.
    ///
    /// ```
    /// use mcp_policy::store::window::Sliding;
    /// let mut w = Sliding::default();
    /// w.charge(1_000, 1);
    /// w.charge(1_500, 1);
    /// // max 2 in 10 s: the next call fits when the event at 1 000 leaves, at 11 000.
    /// assert_eq!(w.retry_after(5_000, 10_000, 2, 1), 6_000);
    /// assert_eq!(w.retry_after(5_000, 10_000, 3, 1), 0);
    /// ```
    #[inline]
    pub fn retry_after(&self, now: u64, window: u64, max: u64, cost: u64) -> u64 {
        let total = self.used.saturating_add(cost);
        if total <= max {
            return 0;
        }
        let need = total - max;
        let mut freed = 0u64;
        for &(at, c) in self.events() {
            freed = freed.saturating_add(c);
            if freed >= need {
                return at.saturating_add(window).saturating_sub(now).max(1);
            }
        }
        // Unreachable when cost <= max: every event leaves eventually.
        window
    }

    /// Records an admitted event (events at one instant are merged).
    #[inline]
    pub fn charge(&mut self, at: u64, cost: u64) {
        if cost == 0 {
            return;
        }
        match &mut self.newest {
            Some((last, c)) if *last == at => *c = c.saturating_add(cost),
            Some(previous) => {
                self.older.push_back(*previous);
                *previous = (at, cost);
            }
            None => self.newest = Some((at, cost)),
        }
        self.used = self.used.saturating_add(cost);
    }

    /// Refunds `cost` of the event recorded at `at`, if it is still in the window.
    pub fn refund(&mut self, at: u64, cost: u64) {
        if let Some((last, c)) = &mut self.newest
            && *last == at
        {
            let take = cost.min(*c);
            *c -= take;
            self.used = self.used.saturating_sub(take);
            if *c == 0 {
                self.newest = self.older.pop_back();
            }
            return;
        }
        let Ok(i) = self.older.binary_search_by_key(&at, |&(t, _)| t) else {
            return;
        };
        if let Some((_, c)) = self.older.get_mut(i) {
            let take = cost.min(*c);
            *c -= take;
            self.used = self.used.saturating_sub(take);
            if *c == 0 {
                self.older.remove(i);
            }
        }
    }

    /// Heap bytes held by the event buffer.
    pub fn heap_bytes(&self) -> usize {
        self.older.capacity() * std::mem::size_of::<(u64, u64)>()
    }
}

/// A calendar window: fixed windows aligned to the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    start: u64,
    used: u64,
}

/// The start of the calendar window containing `now`.
pub fn calendar_start(now: u64, window: u64) -> u64 {
    now - now % window.max(1)
}

impl Calendar {
    /// Moves to the window containing `now`, resetting the count if it changed.
    pub fn roll(&mut self, now: u64, window: u64) {
        let start = calendar_start(now, window);
        if start != self.start {
            self.start = start;
            self.used = 0;
        }
    }

    /// The cost admitted in the current window (after [`roll`](Self::roll)).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Milliseconds until `cost` fits: 0 now, else the time to the next window.
    ///
    /// ```
    /// use mcp_policy::store::window::Calendar;
    /// let mut w = Calendar::default();
    /// w.roll(59_999, 60_000);
    /// w.charge(1);
    /// assert_eq!(w.retry_after(59_999, 60_000, 1, 1), 1);
    /// ```
    pub fn retry_after(&self, now: u64, window: u64, max: u64, cost: u64) -> u64 {
        if self.used.saturating_add(cost) <= max {
            0
        } else {
            self.start.saturating_add(window).saturating_sub(now).max(1)
        }
    }

    /// Charges the current window.
    pub fn charge(&mut self, cost: u64) {
        self.used = self.used.saturating_add(cost);
    }

    /// Refunds a charge made at `at`, if that window is still current.
    pub fn refund(&mut self, at: u64, window: u64, cost: u64) {
        if calendar_start(at, window) == self.start {
            self.used = self.used.saturating_sub(cost);
        }
    }

    /// Whether the current window ended by `now`.
    pub fn expired(&self, now: u64, window: u64) -> bool {
        self.start.saturating_add(window) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window against a plain list of events, over a long pseudo-random mix of charges,
    /// refunds and prunes at non-decreasing times.
    #[test]
    fn sliding_matches_a_plain_event_list() {
        let window = 50;
        let mut fast = Sliding::default();
        let mut model: Vec<(u64, u64)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut now = 0u64;
        for _ in 0..20_000 {
            now += next(3) * next(20);
            fast.prune(now, window);
            model.retain(|&(at, _)| at + window > now);
            match next(3) {
                0 | 1 => {
                    let cost = next(4);
                    fast.charge(now, cost);
                    if cost > 0 {
                        match model.last_mut() {
                            Some((at, c)) if *at == now => *c += cost,
                            _ => model.push((now, cost)),
                        }
                    }
                }
                _ => {
                    let Some(&(at, _)) = model.get(next(model.len() as u64 + 1) as usize) else {
                        continue;
                    };
                    let cost = next(3) + 1;
                    fast.refund(at, cost);
                    if let Some(i) = model.iter().position(|&(t, _)| t == at) {
                        model[i].1 -= cost.min(model[i].1);
                        if model[i].1 == 0 {
                            model.remove(i);
                        }
                    }
                }
            }
            let used: u64 = model.iter().map(|&(_, c)| c).sum();
            assert_eq!(fast.used(), used);
            assert_eq!(fast.is_empty(), model.is_empty());
            assert_eq!(fast.events().copied().collect::<Vec<_>>(), model);
            for max in [used, used + 1, used + 5] {
                let cost = next(max.max(1)) + 1;
                if cost <= max {
                    let _ = fast.retry_after(now, window, max, cost);
                }
            }
        }
    }
}
