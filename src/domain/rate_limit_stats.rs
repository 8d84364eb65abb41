//! Rate-limit refusal statistics: the tag a limit's 429 leaves in the request log, the period
//! a report covers, and the report itself. Pure: the rows come in, the report goes out.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::error::ValidationError;
use super::schedule::occurrence;
use super::windows::LimitKind;

/// Start of the log message of a request refused by a limit: `rate limited (<kind>, <scope>): `
/// followed by the message the client saw. The kind comes first so SQL can match it with a
/// plain `LIKE 'rate limited (rpm,%'`.
pub const TAG_PREFIX: &str = "rate limited (";

/// The log message for a limit's refusal of `scope` (`key` or `user`).
pub fn tagged_message(kind: LimitKind, scope: &str, client_message: &str) -> String {
    format!("{TAG_PREFIX}{}, {scope}): {client_message}", kind.as_str())
}

/// The kinds a report counts, in display order.
pub const KINDS: [LimitKind; 7] = [
    LimitKind::Rpm,
    LimitKind::FiveHour,
    LimitKind::Daily,
    LimitKind::Weekly,
    LimitKind::Monthly,
    LimitKind::Total,
    LimitKind::Concurrency,
];

/// Refusals of one kind for one (user, key), as counted by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalCount {
    /// Limit kind name (`LimitKind::as_str`), `other` when unrecognised.
    pub kind: String,
    /// The user.
    pub user_id: Option<i64>,
    /// The key.
    pub key_id: Option<i64>,
    /// Refused requests.
    pub count: i64,
}

/// An entity and how often it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// User or key id.
    pub id: i64,
    /// Refusals in the period.
    pub refused: i64,
    /// Refusals per kind (only kinds with any).
    pub by_kind: Vec<(String, i64)>,
}

/// The refusal report of a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalReport {
    /// All refusals by a limit.
    pub total: i64,
    /// Per kind, every kind listed (0 included), in [`KINDS`] order.
    pub by_kind: Vec<(String, i64)>,
    /// The most refused users, most first (ties by id), at most `top`.
    pub top_users: Vec<Affected>,
    /// The most refused keys, likewise.
    pub top_keys: Vec<Affected>,
}

/// Builds the report from the store's counts.
pub fn report(rows: &[RefusalCount], top: usize) -> RefusalReport {
    let mut by_kind: Vec<(String, i64)> =
        KINDS.iter().map(|k| (k.as_str().to_string(), 0)).collect();
    let mut users: HashMap<i64, HashMap<String, i64>> = HashMap::new();
    let mut keys: HashMap<i64, HashMap<String, i64>> = HashMap::new();
    let mut total = 0;
    for r in rows {
        total += r.count;
        match by_kind.iter_mut().find(|(k, _)| *k == r.kind) {
            Some(slot) => slot.1 += r.count,
            None => by_kind.push((r.kind.clone(), r.count)),
        }
        if let Some(u) = r.user_id {
            *users
                .entry(u)
                .or_default()
                .entry(r.kind.clone())
                .or_default() += r.count;
        }
        if let Some(k) = r.key_id {
            *keys
                .entry(k)
                .or_default()
                .entry(r.kind.clone())
                .or_default() += r.count;
        }
    }
    RefusalReport {
        total,
        by_kind,
        top_users: ranked(users, top),
        top_keys: ranked(keys, top),
    }
}

fn ranked(map: HashMap<i64, HashMap<String, i64>>, top: usize) -> Vec<Affected> {
    let mut list: Vec<Affected> = map
        .into_iter()
        .map(|(id, kinds)| {
            let mut by_kind: Vec<(String, i64)> = kinds.into_iter().collect();
            by_kind.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            Affected {
                id,
                refused: by_kind.iter().map(|(_, n)| n).sum(),
                by_kind,
            }
        })
        .collect();
    list.sort_by(|a, b| b.refused.cmp(&a.refused).then(a.id.cmp(&b.id)));
    list.truncate(top);
    list
}

/// The instants `[from, to)` a named period covers at `now` in `tz`: `today`, `yesterday`,
/// `week` (since Monday), `month` (since the 1st), `last24h`, or `custom` with both bounds.
/// Local midnights that do not exist (a daylight-saving gap) start at the first time after.
pub fn period_bounds(
    period: &str,
    now: DateTime<Utc>,
    tz: Tz,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ValidationError> {
    let today = now.with_timezone(&tz).date_naive();
    let midnight = |d: NaiveDate| occurrence(d, tz, NaiveTime::MIN);
    let day_after = |d: NaiveDate| d.succ_opt().unwrap_or(d);
    let range = match period {
        "today" => (midnight(today), midnight(day_after(today))),
        "yesterday" => {
            let y = today.pred_opt().unwrap_or(today);
            (midnight(y), midnight(today))
        }
        "week" => {
            let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
            (midnight(monday), now)
        }
        "month" => (midnight(today.with_day(1).unwrap_or(today)), now),
        "last24h" => (now - Duration::hours(24), now),
        "custom" => match (from, to) {
            (Some(f), Some(t)) if f < t => (f, t),
            (Some(_), Some(_)) => {
                return Err(ValidationError::new("from", "from must be before to"));
            }
            _ => {
                return Err(ValidationError::new(
                    "from",
                    "period=custom needs both from and to (RFC 3339)",
                ));
            }
        },
        _ => {
            return Err(ValidationError::new(
                "period",
                "one of today, yesterday, week, month, last24h, custom",
            ));
        }
    };
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_are_cut_in_the_zone() {
        let sh = chrono_tz::Asia::Shanghai;
        let now = utc("2026-12-04T01:00:00Z"); // Friday 09:00 in Shanghai
        let b = |p| period_bounds(p, now, sh, None, None).unwrap();
        assert_eq!(
            b("today"),
            (utc("2026-12-03T16:00:00Z"), utc("2026-12-04T16:00:00Z"))
        );
        assert_eq!(
            b("yesterday"),
            (utc("2026-12-02T16:00:00Z"), utc("2026-12-03T16:00:00Z"))
        );
        assert_eq!(b("week"), (utc("2026-11-29T16:00:00Z"), now));
        assert_eq!(b("month"), (utc("2026-11-30T16:00:00Z"), now));
        let kolkata = chrono_tz::Asia::Kolkata;
        assert_eq!(
            period_bounds("today", now, kolkata, None, None).unwrap().0,
            utc("2026-12-03T18:30:00Z")
        );
        assert_eq!(
            period_bounds("fortnight", now, sh, None, None)
                .unwrap_err()
                .field,
            "period"
        );
        assert_eq!(
            period_bounds("custom", now, sh, Some(now), None)
                .unwrap_err()
                .field,
            "from"
        );
    }

    #[test]
    fn report_totals_and_ranks() {
        let row = |kind: &str, u: i64, k: i64, n: i64| RefusalCount {
            kind: kind.into(),
            user_id: Some(u),
            key_id: Some(k),
            count: n,
        };
        let r = report(
            &[
                row("rpm", 1, 10, 5),
                row("daily", 1, 11, 2),
                row("rpm", 2, 20, 6),
            ],
            1,
        );
        assert_eq!(r.total, 13);
        assert_eq!(r.by_kind[0], ("rpm".to_string(), 11));
        assert_eq!(r.by_kind[2], ("daily".to_string(), 2));
        assert_eq!(r.by_kind.len(), 7);
        assert_eq!(r.top_users.len(), 1);
        assert_eq!((r.top_users[0].id, r.top_users[0].refused), (1, 7));
        assert_eq!((r.top_keys[0].id, r.top_keys[0].refused), (20, 6));
    }

    #[test]
    fn tag_is_matched_by_kind_prefix() {
        let m = tagged_message(LimitKind::Rpm, "key", "key a: RPM limit reached");
        assert!(m.starts_with("rate limited (rpm, key): "));
    }
}
