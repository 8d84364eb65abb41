//! Reading the original's row objects: typed column access, its "0 or null means no limit"
//! conventions, and the limit columns users, keys and providers share.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::str::FromStr;

use crate::domain::limits::{DailyResetMode, Limits, ResetTime};

/// cch's longest allowed timeout, used for the original's 0 (= unlimited).
pub(super) const MAX_TIMEOUT_MS: i64 = 3_600_000;

pub(super) fn obj(row: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    row.as_object()
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

pub(super) fn text<'a>(row: &'a Value, col: &str) -> Option<&'a str> {
    obj(row).get(col).and_then(Value::as_str)
}

pub(super) fn int(row: &Value, col: &str) -> Option<i64> {
    match obj(row).get(col)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn flag(row: &Value, col: &str) -> Option<bool> {
    obj(row).get(col).and_then(Value::as_bool)
}

pub(super) fn money(row: &Value, col: &str) -> Option<Decimal> {
    match obj(row).get(col)? {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

pub(super) fn instant(row: &Value, col: &str) -> Option<DateTime<Utc>> {
    let s = text(row, col)?;
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A JSON column that holds something other than null, `[]` or `{}`.
pub(super) fn non_empty(row: &Value, col: &str) -> bool {
    match obj(row).get(col) {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

pub(super) fn deleted(row: &Value) -> bool {
    non_empty(row, "deleted_at")
}

pub(super) fn positive_money(row: &Value, col: &str) -> Option<Decimal> {
    money(row, col).filter(|d| d.is_sign_positive() && !d.is_zero())
}

pub(super) fn positive_int(row: &Value, col: &str) -> Option<i32> {
    int(row, col)
        .filter(|n| *n > 0)
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// The spend and rate limits the three entities share. `daily_col` is `daily_limit_usd` for
/// users and `limit_daily_usd` for keys and providers.
pub(super) fn limits(
    row: &Value,
    daily_col: &str,
    what: &str,
    unmapped: &mut Vec<String>,
) -> Limits {
    let daily_reset_mode = match text(row, "daily_reset_mode") {
        Some("rolling") => DailyResetMode::Rolling,
        _ => DailyResetMode::Fixed,
    };
    let daily_reset_time = match text(row, "daily_reset_time") {
        None => ResetTime::default(),
        Some(t) => ResetTime::parse(t).unwrap_or_else(|_| {
            unmapped.push(format!(
                "{what}: daily_reset_time '{t}' is not HH:MM; 00:00 used"
            ));
            ResetTime::default()
        }),
    };
    if text(row, "limit_5h_reset_mode") == Some("fixed")
        && positive_money(row, "limit_5h_usd").is_some()
    {
        unmapped.push(format!(
            "{what}: the 5 h limit resets in fixed blocks there; cch's 5 h window is rolling"
        ));
    }
    for col in [
        "cost_reset_at",
        "limit_5h_cost_reset_at",
        "total_cost_reset_at",
    ] {
        if non_empty(row, col) {
            unmapped.push(format!(
                "{what}: {col} not mapped (usage is not imported, so nothing before it is counted)"
            ));
        }
    }
    Limits {
        rpm: positive_int(row, "rpm_limit"),
        limit_5h_usd: positive_money(row, "limit_5h_usd"),
        limit_daily_usd: positive_money(row, daily_col),
        daily_reset_mode,
        daily_reset_time,
        limit_weekly_usd: positive_money(row, "limit_weekly_usd"),
        limit_monthly_usd: positive_money(row, "limit_monthly_usd"),
        limit_total_usd: positive_money(row, "limit_total_usd"),
        limit_concurrent_sessions: positive_int(row, "limit_concurrent_sessions"),
    }
}

/// `v` within `lo..=hi`, noting the change when it had to move.
pub(super) fn clamp_i32(
    v: i64,
    lo: i64,
    hi: i64,
    col: &str,
    what: &str,
    unmapped: &mut Vec<String>,
) -> i32 {
    let c = v.clamp(lo, hi);
    if c != v {
        unmapped.push(format!(
            "{what}: {col} {v} outside cch's {lo}..={hi}; {c} used"
        ));
    }
    c as i32
}
