//! When a failed delivery is tried again: 1 s, 5 s, 30 s, 2 min, 10 min, then it is given up;
//! a platform's `retry-after` wins when it asks for longer (capped at an hour).

use chrono::{DateTime, Duration, Utc};

/// Waits after the 1st, 2nd, ... failed attempt; one more failure after the last is final.
pub const SCHEDULE_SECS: [i64; 5] = [1, 5, 30, 120, 600];

/// The longest `retry-after` honoured.
pub const MAX_RETRY_AFTER_SECS: i64 = 3600;

/// When to try again after failed attempt number `attempt` (1-based), or `None` when that
/// was the last one.
pub fn next_attempt(
    attempt: u32,
    now: DateTime<Utc>,
    retry_after_secs: Option<i64>,
) -> Option<DateTime<Utc>> {
    let idx = usize::try_from(attempt).ok()?.checked_sub(1)?;
    let base = *SCHEDULE_SECS.get(idx)?;
    let wait = retry_after_secs
        .map(|r| r.clamp(0, MAX_RETRY_AFTER_SECS))
        .map_or(base, |r| r.max(base));
    Some(now + Duration::seconds(wait))
}

/// Parses a `retry-after` header: delta seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<i64> {
    let v = value.trim();
    if let Ok(s) = v.parse::<i64>() {
        return Some(s.max(0));
    }
    DateTime::parse_from_rfc2822(v)
        .ok()
        .map(|t| (t.with_timezone(&Utc) - now).num_seconds().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let waits: Vec<i64> = (1..=6)
            .map(|a| next_attempt(a, t0(), None).map(|t| (t - t0()).num_seconds()))
            .map(|o| o.unwrap_or(-1))
            .collect();
        assert_eq!(waits, vec![1, 5, 30, 120, 600, -1]);
        assert_eq!(next_attempt(0, t0(), None), None);
    }

    #[test]
    fn retry_after_extends_but_never_shortens_and_is_capped() {
        let w = |a, r| (next_attempt(a, t0(), Some(r)).unwrap_or(t0()) - t0()).num_seconds();
        assert_eq!(w(1, 17), 17);
        assert_eq!(w(3, 2), 30);
        assert_eq!(w(1, 99_999), 3600);
        assert_eq!(parse_retry_after(" 12 ", t0()), Some(12));
        let date = (t0() + Duration::seconds(40)).to_rfc2822();
        assert_eq!(parse_retry_after(&date, t0()), Some(40));
        assert_eq!(parse_retry_after("soon", t0()), None);
    }
}
