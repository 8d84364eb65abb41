//! Form values shared by several pages: the limit fields every user, key and provider carries,
//! as the strings a form shows.

use rust_decimal::Decimal;

use crate::domain::limits::Limits;

/// The limit fields as form values (empty = unlimited).
pub struct LimitsForm {
    /// Requests per minute.
    pub rpm_limit: String,
    /// Rolling 5 h spend, USD.
    pub limit_5h_usd: String,
    /// Daily spend, USD.
    pub limit_daily_usd: String,
    /// `fixed` or `rolling`.
    pub daily_reset_mode: String,
    /// `HH:MM`.
    pub daily_reset_time: String,
    /// Weekly spend, USD.
    pub limit_weekly_usd: String,
    /// Monthly spend, USD.
    pub limit_monthly_usd: String,
    /// Total spend, USD.
    pub limit_total_usd: String,
    /// Concurrent sessions.
    pub limit_concurrent_sessions: String,
    /// Show the RPM field (not for providers).
    pub with_rpm: bool,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn usd(v: &Option<Decimal>) -> String {
    v.map(|d| d.normalize().to_string()).unwrap_or_default()
}

impl LimitsForm {
    /// The form values of `l`.
    pub fn of(l: &Limits, with_rpm: bool) -> Self {
        Self {
            rpm_limit: opt(&l.rpm),
            limit_5h_usd: usd(&l.limit_5h_usd),
            limit_daily_usd: usd(&l.limit_daily_usd),
            daily_reset_mode: l.daily_reset_mode.as_str().to_string(),
            daily_reset_time: l.daily_reset_time.to_string(),
            limit_weekly_usd: usd(&l.limit_weekly_usd),
            limit_monthly_usd: usd(&l.limit_monthly_usd),
            limit_total_usd: usd(&l.limit_total_usd),
            limit_concurrent_sessions: opt(&l.limit_concurrent_sessions),
            with_rpm,
        }
    }
}

/// One limit window as a page shows it.
#[derive(Clone)]
pub struct UsageRow {
    /// Catalog key of the window's name.
    pub label: String,
    /// Current value, formatted.
    pub used: String,
    /// Limit, formatted; empty when unlimited.
    pub limit: String,
    /// Remaining, formatted; empty when unlimited.
    pub remaining: String,
    /// Reset time, formatted; empty when none.
    pub resets: String,
    /// Used share of the limit, 0–100 (0 when unlimited).
    pub pct: u32,
}

/// The windows of a usage view, formatted for `l`.
pub fn usage_rows(
    l: &crate::adapters::http::ui::layout::Layout,
    windows: &[crate::adapters::http::admin::usage::WindowView],
) -> Vec<UsageRow> {
    windows
        .iter()
        .map(|w| {
            let fmt = |d: Decimal| {
                if w.unit == "usd" {
                    l.money(d)
                } else {
                    l.int(i64::try_from(d.trunc().mantissa()).unwrap_or(i64::MAX))
                }
            };
            let pct = match w.limit {
                Some(lim) if lim > Decimal::ZERO => {
                    let p = (w.used / lim * Decimal::from(100)).round();
                    u32::try_from(p.mantissa().clamp(0, 100)).unwrap_or(100)
                }
                _ => 0,
            };
            UsageRow {
                label: format!("window.{}", w.window),
                used: fmt(w.used),
                limit: w.limit.map(fmt).unwrap_or_default(),
                remaining: w.remaining.map(fmt).unwrap_or_default(),
                resets: w.resets_at.map(|t| l.time(t)).unwrap_or_default(),
                pct,
            }
        })
        .collect()
}
