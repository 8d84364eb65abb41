//! Concurrency slots kept in memory: members with the time they were last seen.
//!
//! Bound: members idle for the TTL are dropped on every acquire and the key expires after the
//! TTL; with a limit, at most `limit` members. Only `CounterStore::acquire_slot` uses it; the
//! app's provider and session slots are `MemoryLimits` session counters (capped there).

use crate::ports::counters::SlotOutcome;

/// Holders of one concurrency-slot set, mirroring the Redis sorted set (score = last seen ms).
#[derive(Debug, Default)]
pub(super) struct SlotSet {
    /// Bounded by the TTL (pruned on every acquire) and by the limit when one is given.
    members: super::FastMap<String, i64>,
}

impl SlotSet {
    /// Drops members last seen at or before `cutoff_ms`.
    pub(super) fn prune(&mut self, cutoff_ms: i64) {
        self.members.retain(|_, seen| *seen > cutoff_ms);
    }

    /// Takes or refreshes `member`'s slot unless `limit` other members are active.
    pub(super) fn acquire(
        &mut self,
        member: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: Option<i64>,
    ) -> SlotOutcome {
        self.prune(now_ms.saturating_sub(ttl_ms));
        let active = self.len();
        let acquired = if let Some(seen) = self.members.get_mut(member) {
            *seen = now_ms;
            true
        } else if limit.is_some_and(|l| active >= l) {
            false
        } else {
            self.members.insert(member.to_owned(), now_ms);
            true
        };
        SlotOutcome {
            acquired,
            active: self.len(),
        }
    }

    /// Gives `member`'s slot back.
    pub(super) fn release(&mut self, member: &str) {
        self.members.remove(member);
    }

    /// Members last seen after `cutoff_ms`, without changing anything.
    pub(super) fn count_after(&self, cutoff_ms: i64) -> i64 {
        self.members.values().filter(|s| **s > cutoff_ms).count() as i64
    }

    /// Members held.
    pub(super) fn len(&self) -> i64 {
        self.members.len() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_refresh_and_idle_expiry() {
        let mut s = SlotSet::default();
        assert!(s.acquire("a", 1_000, 100, Some(2)).acquired);
        assert!(s.acquire("b", 1_010, 100, Some(2)).acquired);
        let full = s.acquire("c", 1_020, 100, Some(2));
        assert_eq!(
            full,
            SlotOutcome {
                acquired: false,
                active: 2
            }
        );
        // a holder keeps its slot even when the set is full
        assert!(s.acquire("a", 1_050, 100, Some(2)).acquired);
        // b (seen at 1010) is idle for 100 ms at 1110, a (1050) is not
        let later = s.acquire("c", 1_110, 100, Some(2));
        assert_eq!(
            later,
            SlotOutcome {
                acquired: true,
                active: 2
            }
        );
        assert_eq!(s.count_after(1_110 - 100), 2);
        s.release("a");
        assert_eq!(s.len(), 1);
    }
}
