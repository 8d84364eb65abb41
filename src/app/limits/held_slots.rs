//! Which sessions this instance recently saw holding a provider's concurrent-session slot.
//!
//! With a shared store (Redis), checking a provider's slot before forwarding costs a second
//! round trip after the pre-routing one. A session that already holds the slot always keeps it
//! (the store's check-and-take refreshes a holder whatever the count), so for a holder
//! confirmed recently the check can only say yes: it is answered here, and the refresh that
//! keeps the slot alive is owed until the answer is out, then made off the answer's path.
//!
//! A session whose slot was taken from it (ended by an admin, possibly on another instance,
//! and its slot given to another session) is not let through on the memory: the pre-routing
//! read of the provider's sessions, in the same round trip as ever, counts the other sessions
//! and selection skips the full provider. Only a take racing that read (within the request's
//! own pre-routing round trip) can pass on the remembered slot; the refresh after the answer
//! then finds the slot gone, forgets the holder here, and the next request is checked in full.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most (provider, session) holders remembered (~100 bytes each, so about 6 MB at the cap);
/// when full, stale entries are dropped, then everything if still full (a forgotten holder
/// only costs its next request the round trip).
pub const MAX_HELD: usize = 65_536;

/// Longest time a confirmation is trusted: well inside the session TTL, so a slot confirmed
/// then cannot have idled out, even if the refreshes beside the requests failed.
const MAX_TRUST_MS: i64 = 60_000;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Recent slot confirmations: provider id -> session id -> when the store last granted or
/// refreshed the slot, and whether a refresh is owed.
pub struct HeldSlots {
    trust_ms: i64,
    // Bounded by MAX_HELD entries in all (see `confirm`); entries older than `trust_ms` are
    // ignored, and dropped when the map fills.
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    by_provider: Map<i64, Map<Box<str>, Confirmed>>,
    entries: usize,
}

#[derive(Clone, Copy)]
struct Confirmed {
    /// When the store last granted or refreshed the slot (ms).
    at: i64,
    /// A request went through on this confirmation and its refresh was not made yet.
    owed: bool,
}

impl HeldSlots {
    /// Confirmations are trusted for half the session TTL, at most a minute.
    pub fn new(session_ttl_ms: i64) -> Self {
        Self {
            trust_ms: (session_ttl_ms / 2).clamp(0, MAX_TRUST_MS),
            held: Mutex::new(Held::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `session` was confirmed as a holder of `provider`'s slot within the trust
    /// window before `now_ms`; the request then owes the slot a refresh (`take_owed`).
    pub fn claim(&self, provider: i64, session: &str, now_ms: i64) -> bool {
        if session.is_empty() || self.trust_ms == 0 {
            return false;
        }
        let mut held = self.lock();
        let Some(c) = held
            .by_provider
            .get_mut(&provider)
            .and_then(|sessions| sessions.get_mut(session))
        else {
            return false;
        };
        let trusted = now_ms >= c.at && now_ms - c.at < self.trust_ms;
        c.owed |= trusted;
        trusted
    }

    /// True (once) when a request went through on a remembered slot since its last refresh.
    pub fn take_owed(&self, provider: i64, session: &str) -> bool {
        let mut held = self.lock();
        held.by_provider
            .get_mut(&provider)
            .and_then(|sessions| sessions.get_mut(session))
            .is_some_and(|c| std::mem::take(&mut c.owed))
    }

    /// Records that the store granted (or refreshed) `session`'s slot at `now_ms`.
    pub fn confirm(&self, provider: i64, session: &str, now_ms: i64) {
        if session.is_empty() || self.trust_ms == 0 {
            return;
        }
        let mut held = self.lock();
        if let Some(c) = held
            .by_provider
            .get_mut(&provider)
            .and_then(|sessions| sessions.get_mut(session))
        {
            c.at = c.at.max(now_ms);
            return;
        }
        if held.entries >= MAX_HELD {
            let trust = self.trust_ms;
            for sessions in held.by_provider.values_mut() {
                sessions.retain(|_, c| now_ms - c.at < trust);
            }
            held.by_provider.retain(|_, sessions| !sessions.is_empty());
            held.entries = held.by_provider.values().map(|s| s.len()).sum();
            if held.entries >= MAX_HELD {
                *held = Held::default();
            }
        }
        held.by_provider.entry(provider).or_default().insert(
            Box::from(session),
            Confirmed {
                at: now_ms,
                owed: false,
            },
        );
        held.entries += 1;
    }

    /// Forgets `session` at `provider` (the store refused to refresh it).
    pub fn forget(&self, provider: i64, session: &str) {
        let mut held = self.lock();
        let removed = held
            .by_provider
            .get_mut(&provider)
            .and_then(|sessions| sessions.remove(session))
            .is_some();
        if removed {
            held.entries -= 1;
        }
    }

    /// Forgets `session` at every provider (it was ended here).
    pub fn forget_session(&self, session: &str) {
        let mut held = self.lock();
        let mut removed = 0;
        for sessions in held.by_provider.values_mut() {
            removed += usize::from(sessions.remove(session).is_some());
        }
        held.entries -= removed;
    }

    /// Entries held (for tests of the bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries
    }

    /// True when nothing is remembered.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_is_trusted_for_half_the_session_ttl_at_most_a_minute() {
        let slots = HeldSlots::new(300_000);
        assert!(!slots.claim(1, "s", 1_000));
        slots.confirm(1, "s", 1_000);
        assert!(slots.claim(1, "s", 1_000));
        assert!(slots.claim(1, "s", 60_999));
        assert!(!slots.claim(1, "s", 61_000), "a minute at most");
        assert!(!slots.claim(2, "s", 2_000), "per provider");
        assert!(!slots.claim(1, "t", 2_000), "per session");
        assert!(
            !slots.claim(1, "s", 999),
            "a clock that went back trusts nothing"
        );

        let short = HeldSlots::new(10_000);
        short.confirm(1, "s", 0);
        assert!(short.claim(1, "s", 4_999));
        assert!(!short.claim(1, "s", 5_000), "half of a short TTL");
    }

    #[test]
    fn a_request_on_a_remembered_slot_owes_one_refresh() {
        let slots = HeldSlots::new(300_000);
        slots.confirm(1, "s", 0);
        assert!(
            !slots.take_owed(1, "s"),
            "a confirmation alone owes nothing"
        );
        assert!(slots.claim(1, "s", 10));
        assert!(slots.claim(1, "s", 20));
        assert!(slots.take_owed(1, "s"));
        assert!(!slots.take_owed(1, "s"), "owed once");
        assert!(!slots.claim(1, "s", 70_000), "past the trust window");
        assert!(!slots.take_owed(1, "s"), "an untrusted claim owes nothing");
    }

    #[test]
    fn forgetting_drops_one_provider_or_the_whole_session() {
        let slots = HeldSlots::new(300_000);
        slots.confirm(1, "s", 0);
        slots.confirm(2, "s", 0);
        slots.confirm(1, "t", 0);
        slots.forget(1, "s");
        assert!(!slots.claim(1, "s", 1) && slots.claim(2, "s", 1));
        slots.forget_session("s");
        assert!(!slots.claim(2, "s", 1));
        assert!(slots.claim(1, "t", 1));
    }

    #[test]
    fn an_empty_session_id_is_never_remembered() {
        let slots = HeldSlots::new(300_000);
        slots.confirm(1, "", 0);
        assert!(slots.is_empty());
        assert!(!slots.claim(1, "", 0));
    }

    #[test]
    fn the_map_stays_under_its_cap() {
        let slots = HeldSlots::new(300_000);
        for i in 0..(MAX_HELD as i64 * 2 + 10) {
            slots.confirm(1, &i.to_string(), i);
        }
        assert!(slots.len() <= MAX_HELD);
        let last = (MAX_HELD as i64 * 2 + 9).to_string();
        assert!(slots.claim(1, &last, MAX_HELD as i64 * 2 + 9));
    }
}
