//! A sliding window in constant memory: per-bucket totals of a `domain::windows::Ring`.

use std::collections::VecDeque;

use crate::domain::windows::Ring;

/// The live buckets of one window, oldest first. Bounded: every access drops the buckets that
/// left the window, so it never holds more than `Ring::slots()` (at most 101) buckets.
#[derive(Debug)]
pub(super) struct BucketRing {
    ring: Ring,
    /// (bucket index, total), indexes strictly increasing.
    buckets: VecDeque<(i64, i64)>,
    /// Sum of every total held.
    sum: i64,
}

impl BucketRing {
    /// An empty ring over `window_ms`.
    pub(super) fn new(window_ms: i64) -> Self {
        Self {
            ring: Ring::for_window(window_ms),
            buckets: VecDeque::new(),
            sum: 0,
        }
    }

    /// Drops the buckets that no longer count at `now_ms`.
    pub(super) fn trim(&mut self, now_ms: i64) {
        let first = self.ring.first_live(now_ms);
        while let Some((index, total)) = self.buckets.front().copied() {
            if index >= first {
                break;
            }
            self.buckets.pop_front();
            self.sum = self.sum.saturating_sub(total);
        }
    }

    /// Adds `amount` to the bucket of `at_ms` (dropped when that bucket is already out of the
    /// window at `now_ms`).
    pub(super) fn add(&mut self, at_ms: i64, amount: i64, now_ms: i64) {
        self.trim(now_ms);
        let index = self.ring.index(at_ms);
        if !self.ring.is_live(index, now_ms) {
            return;
        }
        self.sum = self.sum.saturating_add(amount);
        // Usually the newest bucket; an older time (a late record, a rebuild) finds its place.
        let pos = self.buckets.partition_point(|(i, _)| *i < index);
        match self.buckets.get_mut(pos) {
            Some((i, total)) if *i == index => *total = total.saturating_add(amount),
            _ => self.buckets.insert(pos, (index, amount)),
        }
        // A record far in the future of `now_ms` cannot grow the ring past its slots.
        while self.len() > usize::try_from(self.ring.slots()).unwrap_or(usize::MAX) {
            if let Some((_, total)) = self.buckets.pop_front() {
                self.sum = self.sum.saturating_sub(total);
            }
        }
    }

    /// Sum of the live buckets (after `trim`).
    pub(super) fn sum(&self) -> i64 {
        self.sum
    }

    /// The instant the oldest live bucket counts as (after `trim`).
    pub(super) fn oldest(&self) -> Option<i64> {
        self.buckets
            .front()
            .map(|(i, _)| self.ring.effective_ms(*i))
    }

    /// True when some bucket still counts at `now_ms` (the sweep drops dead rings).
    pub(super) fn is_live(&self, now_ms: i64) -> bool {
        self.buckets
            .back()
            .is_some_and(|(i, _)| self.ring.is_live(*i, now_ms))
    }

    /// Buckets held.
    pub(super) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_one_ring_of_buckets() {
        let mut r = BucketRing::new(60_000);
        for t in (0..1_000_000).step_by(137) {
            r.add(t, 1, t);
            assert!(r.len() <= 61, "{}", r.len());
        }
        // The last 60 s (plus the partial bucket) are what counts.
        let now = 999_999;
        r.trim(now);
        let expected = (0..1_000_000)
            .step_by(137)
            .filter(|t| Ring::for_window(60_000).is_live(t / 1_000, now))
            .count();
        assert_eq!(r.sum(), expected as i64);
    }

    #[test]
    fn late_and_stale_records() {
        let mut r = BucketRing::new(60_000);
        r.add(10_500, 3, 10_500);
        r.add(5_000, 2, 10_500); // late, still live: placed before
        assert_eq!((r.sum(), r.oldest(), r.len()), (5, Some(6_000), 2));
        r.add(-100_000, 9, 10_500); // already out of the window
        assert_eq!(r.sum(), 5);
        r.trim(66_000); // bucket 5 released at 66 000
        assert_eq!((r.sum(), r.oldest()), (3, Some(11_000)));
        assert!(r.is_live(70_999) && !r.is_live(71_000));
    }
}
