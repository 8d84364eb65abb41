//! Store keys and counters of each window of a user, key or provider.
//!
//! Keys: `lim:{u|k|p}:{id}:{window}` with `rpm:ring`, `sessions`, `5h:ring`, `daily_r:ring`
//! (rolling 24 h), `daily:{start}`, `weekly:{start}`, `monthly:{start}` (start = epoch seconds
//! of the period) and `total`. Sliding windows carry `:ring` since they became bucket rings
//! (the sorted sets of earlier versions under the old names expire by themselves).
//!
//! Only limited windows are checked and recorded: an entity without a 5 h limit has no 5 h
//! counter, one without an RPM limit no RPM counter. Session counters are the exception (kept
//! for display, capped at `SESSION_MEMBERS_CAP` when unlimited). The usage API reads windows
//! without a limit from the request log instead (see `LimitService::usage`).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::period_cache::cached_spend_span;
use crate::domain::limits::{DailyResetMode, Limits};
use crate::domain::windows::{DAY_MS, LimitKind, RPM_WINDOW_MS, Span, limit_value};
use crate::ports::limits::Counter;

/// Whose limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A user.
    User,
    /// An API key.
    Key,
    /// A provider.
    Provider,
}

impl Scope {
    /// Key segment.
    pub fn code(self) -> &'static str {
        match self {
            Self::User => "u",
            Self::Key => "k",
            Self::Provider => "p",
        }
    }

    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Key => "key",
            Self::Provider => "provider",
        }
    }
}

/// The last segment of a window's key.
enum Tail {
    /// None (`sessions`, `total`).
    Bare,
    /// `:ring` (sliding windows).
    Ring,
    /// `:{start}` (calendar periods, epoch seconds).
    Period(i64),
}

/// `lim:{scope}:{id}:{window}[:ring|:{start}]`. Built by appending, not with `format!`: up to
/// 35 keys are built per request (check, provider reads and spend record), and the formatting
/// machinery was an eighth of the proxy's CPU (callgrind).
fn key(scope: Scope, id: i64, window: &str, tail: Tail) -> String {
    let mut ints = itoa::Buffer::new();
    let mut k = String::with_capacity(48);
    k.push_str("lim:");
    k.push_str(scope.code());
    k.push(':');
    k.push_str(ints.format(id));
    k.push(':');
    k.push_str(window);
    match tail {
        Tail::Bare => {}
        Tail::Ring => k.push_str(":ring"),
        Tail::Period(start) => {
            k.push(':');
            k.push_str(ints.format(start));
        }
    }
    k
}

/// The counter of one spend span.
fn span_counter(scope: Scope, id: i64, name: &str, span: Span) -> Counter {
    match span {
        Span::Rolling { window_ms } => Counter::RollingSpend {
            key: key(scope, id, name, Tail::Ring),
            window_ms,
        },
        Span::Fixed(w) => Counter::PeriodSpend {
            key: key(scope, id, name, Tail::Period(w.start.timestamp())),
            expires_at_ms: w.end.timestamp_millis(),
        },
        Span::Total => Counter::TotalSpend {
            key: key(scope, id, name, Tail::Bare),
        },
    }
}

/// The key of an entity's concurrent-session counter (members are session ids).
pub fn session_counter_key(scope: Scope, id: i64) -> String {
    key(scope, id, "sessions", Tail::Bare)
}

/// The counter checked for `kind` of an entity at `now`.
pub fn counter_for(
    scope: Scope,
    id: i64,
    kind: LimitKind,
    limits: &Limits,
    now: DateTime<Utc>,
    tz: Tz,
    session_ttl_ms: i64,
) -> Counter {
    match kind {
        LimitKind::Rpm => Counter::Requests {
            key: key(scope, id, "rpm", Tail::Ring),
            window_ms: RPM_WINDOW_MS,
        },
        LimitKind::Concurrency => Counter::Sessions {
            key: session_counter_key(scope, id),
            ttl_ms: session_ttl_ms,
        },
        LimitKind::Daily if limits.daily_reset_mode == DailyResetMode::Rolling => {
            span_counter(scope, id, "daily_r", Span::Rolling { window_ms: DAY_MS })
        }
        _ => {
            let span = cached_spend_span(kind, limits, now, tz).unwrap_or(Span::Total);
            span_counter(scope, id, kind.as_str(), span)
        }
    }
}

/// The spend counters a request's cost goes to at `at`: one per spend window the entity has a
/// limit on (the daily one in its configured mode). Unlimited windows are not counted.
pub fn spend_counters(
    scope: Scope,
    id: i64,
    limits: &Limits,
    at: DateTime<Utc>,
    tz: Tz,
) -> Vec<Counter> {
    LimitKind::ALL
        .into_iter()
        .filter(|k| k.is_spend() && limit_value(limits, *k).is_some())
        .map(|k| counter_for(scope, id, k, limits, at, tz, 0))
        .collect()
}

/// When a fixed window resets (`None` for rolling windows, totals, RPM and sessions).
pub fn fixed_reset(
    kind: LimitKind,
    limits: &Limits,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    match cached_spend_span(kind, limits, now, tz) {
        Some(Span::Fixed(w)) => Some(w.end),
        _ => None,
    }
}

/// When room frees up in a window that was hit: the period end for fixed windows, the moment
/// the oldest entry leaves a sliding window, `None` for totals.
pub fn reset_instant(
    kind: LimitKind,
    limits: &Limits,
    now: DateTime<Utc>,
    tz: Tz,
    oldest_ms: Option<i64>,
    session_ttl_ms: i64,
) -> Option<DateTime<Utc>> {
    let after = |window_ms: i64| {
        let base = oldest_ms.unwrap_or(now.timestamp_millis());
        DateTime::<Utc>::from_timestamp_millis(base.saturating_add(window_ms))
    };
    match kind {
        LimitKind::Rpm => after(RPM_WINDOW_MS),
        LimitKind::Concurrency => after(session_ttl_ms),
        LimitKind::Total => None,
        _ => match cached_spend_span(kind, limits, now, tz)? {
            Span::Rolling { window_ms } => after(window_ms),
            Span::Fixed(w) => Some(w.end),
            Span::Total => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::Limits;
    use rust_decimal::Decimal;

    #[test]
    fn keys_keep_their_names() {
        let now = DateTime::<Utc>::from_timestamp(1_796_422_846, 0).unwrap_or_default();
        let tz: Tz = chrono_tz::UTC;
        let limits = Limits {
            limit_monthly_usd: Some(Decimal::ONE),
            ..Limits::default()
        };
        let k = |kind| {
            counter_for(Scope::User, 42, kind, &limits, now, tz, 1)
                .key()
                .to_string()
        };
        assert_eq!(k(LimitKind::Rpm), "lim:u:42:rpm:ring");
        assert_eq!(k(LimitKind::Concurrency), "lim:u:42:sessions");
        assert_eq!(k(LimitKind::FiveHour), "lim:u:42:5h:ring");
        assert_eq!(k(LimitKind::Total), "lim:u:42:total");
        assert_eq!(k(LimitKind::Monthly), "lim:u:42:monthly:1796083200");
        let rolling = Limits {
            daily_reset_mode: DailyResetMode::Rolling,
            ..Limits::default()
        };
        let c = counter_for(Scope::Provider, -7, LimitKind::Daily, &rolling, now, tz, 1);
        assert_eq!(c.key(), "lim:p:-7:daily_r:ring");
    }
}
