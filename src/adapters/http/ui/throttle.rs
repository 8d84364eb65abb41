//! Login throttling: after [`MAX_FAILURES`] failed logins from one IP within [`WINDOW_MS`], that
//! IP is refused for [`LOCKOUT_MS`] (the original's policy: 10 per 5 minutes, 15 minutes out).
//! Kept per instance, in memory; the time is passed in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures allowed within the window.
pub const MAX_FAILURES: usize = 10;
/// The window failures are counted in.
pub const WINDOW_MS: i64 = 5 * 60 * 1000;
/// How long an IP is refused once over the limit.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// Most IPs remembered at once; past it, entries with nothing recent are dropped first, then
/// the least recently failed.
pub const MAX_TRACKED_IPS: usize = 10_000;

#[derive(Default)]
struct Entry {
    /// Times of recent failures, at most [`MAX_FAILURES`].
    failures: VecDeque<i64>,
    /// Refused until this instant.
    locked_until: Option<i64>,
}

impl Entry {
    fn last_event(&self) -> i64 {
        self.failures
            .back()
            .copied()
            .unwrap_or(0)
            .max(self.locked_until.unwrap_or(0))
    }

    fn is_stale(&self, now: i64) -> bool {
        self.locked_until.is_none_or(|u| u <= now)
            && self.failures.back().is_none_or(|t| now - t >= WINDOW_MS)
    }
}

/// Failed-login bookkeeping per client IP. Bounded by [`MAX_TRACKED_IPS`]; entries expire after
/// the window (or the lockout) passes.
#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl LoginThrottle {
    /// Milliseconds until `ip` may try again, if it is locked out now.
    pub fn retry_after_ms(&self, ip: IpAddr, now: i64) -> Option<i64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let until = entries.get(&ip)?.locked_until?;
        (until > now).then_some(until - now)
    }

    /// Records a failed login; returns the lockout in milliseconds if this failure starts one.
    pub fn record_failure(&self, ip: IpAddr, now: i64) -> Option<i64> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_TRACKED_IPS && !entries.contains_key(&ip) {
            entries.retain(|_, e| !e.is_stale(now));
            if entries.len() >= MAX_TRACKED_IPS
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_event())
                    .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
        let e = entries.entry(ip).or_default();
        while e.failures.front().is_some_and(|t| now - t >= WINDOW_MS) {
            e.failures.pop_front();
        }
        e.failures.push_back(now);
        if e.failures.len() >= MAX_FAILURES {
            e.failures.clear();
            e.locked_until = Some(now + LOCKOUT_MS);
            return Some(LOCKOUT_MS);
        }
        None
    }

    /// Forgets an IP's failures after a successful login.
    pub fn record_success(&self, ip: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&ip);
    }

    /// How many IPs are remembered (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn tenth_failure_locks_for_fifteen_minutes() {
        let t = LoginThrottle::default();
        for i in 0..9 {
            assert_eq!(t.record_failure(ip(1), i * 1000), None);
            assert_eq!(t.retry_after_ms(ip(1), i * 1000), None);
        }
        assert_eq!(t.record_failure(ip(1), 10_000), Some(LOCKOUT_MS));
        assert_eq!(t.retry_after_ms(ip(1), 10_000), Some(LOCKOUT_MS));
        assert_eq!(t.retry_after_ms(ip(2), 10_000), None);
        assert_eq!(t.retry_after_ms(ip(1), 10_000 + LOCKOUT_MS), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let t = LoginThrottle::default();
        for i in 0..9 {
            t.record_failure(ip(1), i);
        }
        assert_eq!(t.record_failure(ip(1), WINDOW_MS + 100), None);
    }

    #[test]
    fn success_clears_and_map_is_bounded() {
        let t = LoginThrottle::default();
        t.record_failure(ip(1), 0);
        t.record_success(ip(1));
        assert_eq!(t.tracked(), 0);
        for i in 0..(MAX_TRACKED_IPS as u32 + 50) {
            t.record_failure(ip(i), 1);
        }
        assert!(t.tracked() <= MAX_TRACKED_IPS);
    }
}
