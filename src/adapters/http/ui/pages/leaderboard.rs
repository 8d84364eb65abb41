//! Leaderboard: users, keys, providers or models ranked by cost, requests or tokens over
//! today, this week, this month, all time or a custom range (local dates in the configured
//! time zone), from the usage roll-ups, with cache-hit rate and time to first byte per row.

use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, display_tz, html, page};
use crate::app::context::AppContext;
use crate::domain::periods::Period;
use crate::domain::usage_tiers::ALL_TIME_FROM;
use crate::ports::stats::{Dimension, Metric};

/// Rows shown.
const ROWS: i64 = 100;

/// The page's choices (query string).
#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    #[serde(default)]
    dim: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// One ranked row as shown.
struct Row {
    rank: usize,
    name: String,
    requests: i64,
    errors: i64,
    tokens: i64,
    cost: String,
    cache_hit: String,
    ttfb: String,
}

#[derive(Template)]
#[template(path = "leaderboard.html")]
struct LeaderboardPage {
    l: Layout,
    dim: &'static str,
    period: &'static str,
    order: &'static str,
    from: String,
    to: String,
    rows: Vec<Row>,
    error: Option<String>,
}

fn local_day_start(tz: Tz, d: NaiveDate) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The period chosen: `custom` takes local dates `from`..=`to`; `all` is everything so far.
fn period_of(c: &Choice, tz: Tz, now: DateTime<Utc>) -> Result<(&'static str, Period), String> {
    Ok(match c.period.as_str() {
        "" | "today" => ("today", Period::Today),
        "week" => ("week", Period::Week),
        "month" => ("month", Period::Month),
        "all" => (
            "all",
            Period::Custom {
                from: DateTime::<Utc>::from_timestamp(ALL_TIME_FROM, 0).unwrap_or(now),
                to: now + chrono::Duration::hours(1),
            },
        ),
        "custom" => {
            let day = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
            let (Some(f), Some(t)) = (day(&c.from), day(&c.to)) else {
                return Err("custom needs both dates (YYYY-MM-DD)".into());
            };
            let (Some(from), Some(to)) = (
                local_day_start(tz, f),
                t.succ_opt().and_then(|n| local_day_start(tz, n)),
            ) else {
                return Err("dates out of range".into());
            };
            if from >= to {
                return Err("`from` must not be after `to`".into());
            }
            ("custom", Period::Custom { from, to })
        }
        _ => return Err("unknown period".into()),
    })
}

/// `GET /leaderboard`.
#[handler]
pub async fn show(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(c): Query<Choice>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/leaderboard", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let (dim_name, dim) = match c.dim.as_str() {
        "key" => ("key", Dimension::Key),
        "provider" => ("provider", Dimension::Provider),
        "model" => ("model", Dimension::Model),
        _ => ("user", Dimension::User),
    };
    let (order_name, order) = match c.order.as_str() {
        "requests" => ("requests", Metric::Requests),
        "tokens" => ("tokens", Metric::Tokens),
        _ => ("cost", Metric::Cost),
    };
    let tz = display_tz(&ctx);
    let mut error = None;
    let mut rows = Vec::new();
    let mut period_name = "today";
    match period_of(&c, tz, ctx.clock.now()) {
        Err(e) => error = Some(e),
        Ok((name, period)) => {
            period_name = name;
            match ctx.stats.leaderboard(dim, period, order, ROWS).await {
                Err(e) => error = Some(e.to_string()),
                Ok(board) => {
                    rows = board
                        .rows
                        .iter()
                        .map(|r| Row {
                            rank: r.rank,
                            name: r.name.clone().unwrap_or_else(|| match dim {
                                Dimension::Model => r.key.clone(),
                                _ => format!("#{}", r.key),
                            }),
                            requests: r.sums.requests,
                            errors: r.sums.errors,
                            tokens: crate::app::stats::total_tokens(&r.sums),
                            cost: l.money(r.sums.cost_usd),
                            cache_hit: format!("{:.1}%", r.cache_hit_rate * 100.0),
                            ttfb: r
                                .avg_ttfb_ms
                                .map_or_else(|| "—".into(), |v| format!("{v:.0} ms")),
                        })
                        .collect();
                }
            }
        }
    }
    html(&LeaderboardPage {
        l,
        dim: dim_name,
        period: period_name,
        order: order_name,
        from: c.from,
        to: c.to,
        rows,
        error,
    })
}
