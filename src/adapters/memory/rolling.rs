//! A rolling window kept in memory: timestamped amounts under unique members, with a running
//! total so adding and summing stay cheap even when the window holds many entries.
//!
//! Bound: entries expire by the window (pruned on every add) and the whole key after the window
//! (its TTL), so it holds the calls of one window. Only `CounterStore::rolling_add` uses it, and
//! the app no longer calls that: limit windows are the constant-size rings of `MemoryLimits`.

use std::collections::BTreeMap;

/// Entries of one rolling window, mirroring the Redis sorted set (score = time, member unique).
#[derive(Debug, Default)]
pub(super) struct RollingWindow {
    /// (time ms, member) -> amount, ordered by time so old entries are dropped from the front.
    /// Bounded by the window: `prune` runs on every add.
    by_time: BTreeMap<(i64, String), i64>,
    /// member -> time ms, so re-adding a member moves it instead of duplicating it. Same
    /// members as `by_time`.
    by_member: super::FastMap<String, i64>,
    /// Sum of every amount held.
    total: i64,
}

impl RollingWindow {
    /// Records `amount` for `member` at `now_ms` (replacing that member's earlier entry).
    pub(super) fn add(&mut self, now_ms: i64, member: &str, amount: i64) {
        if let Some(old_ts) = self.by_member.remove(member)
            && let Some(old) = self.by_time.remove(&(old_ts, member.to_owned()))
        {
            self.total = self.total.wrapping_sub(old);
        }
        self.by_member.insert(member.to_owned(), now_ms);
        self.by_time.insert((now_ms, member.to_owned()), amount);
        self.total = self.total.wrapping_add(amount);
    }

    /// Drops every entry at or before `cutoff_ms`.
    pub(super) fn prune(&mut self, cutoff_ms: i64) {
        while let Some(first) = self.by_time.first_entry() {
            if first.key().0 > cutoff_ms {
                break;
            }
            let ((_, member), amount) = first.remove_entry();
            self.by_member.remove(&member);
            self.total = self.total.wrapping_sub(amount);
        }
    }

    /// Sum of the entries strictly after `cutoff_ms`, without changing anything.
    pub(super) fn sum_after(&self, cutoff_ms: i64) -> i64 {
        let stale: i64 = self
            .by_time
            .range(..(cutoff_ms.saturating_add(1), String::new()))
            .fold(0i64, |acc, (_, amount)| acc.wrapping_add(*amount));
        self.total.wrapping_sub(stale)
    }

    /// Sum of everything held.
    pub(super) fn total(&self) -> i64 {
        self.total
    }

    /// True when nothing is held (the key can be forgotten).
    pub(super) fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_leave_exactly_at_the_window_edge() {
        let mut w = RollingWindow::default();
        w.add(1_000, "a", 5);
        w.add(1_200, "b", 7);
        assert_eq!(w.sum_after(999), 12);
        assert_eq!(w.sum_after(1_000), 7);
        assert_eq!(w.sum_after(1_200), 0);
        w.prune(1_000);
        assert_eq!(w.total(), 7);
        w.prune(1_200);
        assert!(w.is_empty());
        assert_eq!(w.total(), 0);
    }

    #[test]
    fn re_adding_a_member_moves_it() {
        let mut w = RollingWindow::default();
        w.add(1_000, "a", 5);
        w.add(2_000, "a", 3);
        assert_eq!(w.total(), 3);
        assert_eq!(w.sum_after(1_500), 3);
        w.prune(1_500);
        assert_eq!(w.total(), 3);
    }
}
