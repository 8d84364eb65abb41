//! Dashboard: the state of the gateway at a glance — today's requests, cost, tokens, error rate
//! and time to first byte beside yesterday's, requests in the last minute and active sessions,
//! charts of the last 24 hours and 30 days split by provider, model or user (from the usage
//! roll-ups; drawn by the vendored uPlot), configuration counts, providers whose breaker is not
//! closed, and the latest requests as a live list (the page polls itself).

use std::sync::Arc;

use askama::Template;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_json::json;

use super::logs::{Row, named, read_page};
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::admin::LogQuery;
use crate::app::context::AppContext;
use crate::domain::breaker::BreakerState;
use crate::domain::periods::{BucketWidth, Period};
use crate::ports::stats::{Dimension, Metric};

/// Requests in the live list.
const LIVE_ROWS: i64 = 20;
/// Groups drawn per chart (the rest are one `other` line).
const CHART_GROUPS: i64 = 5;

/// The chart choices (query string).
#[derive(Debug, Default, Deserialize)]
pub struct ChartChoice {
    #[serde(default)]
    metric: String,
    #[serde(default)]
    split: String,
}

/// One card: a figure today and the same figure yesterday.
pub struct Card {
    label: &'static str,
    today: String,
    yesterday: Option<String>,
}

/// A chart's data for the page script: bucket starts (epoch seconds) and one line per group.
fn chart_json(series: &crate::app::stats::Series, other: &str) -> String {
    let x: Vec<i64> = series.buckets.iter().map(|b| b.timestamp()).collect();
    let lines: Vec<serde_json::Value> = series
        .lines
        .iter()
        .filter(|l| l.values.iter().any(|v| !v.is_zero()))
        .map(|l| {
            let name = match (&l.name, l.key.as_str()) {
                (Some(n), _) => n.clone(),
                (None, "other") => other.to_string(),
                (None, k) => k.to_string(),
            };
            let values: Vec<f64> = l.values.iter().map(|v| v.to_f64().unwrap_or(0.0)).collect();
            json!({"name": name, "values": values})
        })
        .collect();
    json!({"x": x, "lines": lines}).to_string()
}

/// A provider whose breaker is open or half-open.
pub struct Tripped {
    id: i64,
    name: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    l: Layout,
    providers: usize,
    providers_enabled: usize,
    users: usize,
    keys: usize,
    tripped: Vec<Tripped>,
    rows: Vec<Row>,
    cards: Vec<Card>,
    metric: &'static str,
    split: &'static str,
    hourly: String,
    daily: String,
    uplot_js: String,
    uplot_css: String,
}

/// `GET /dashboard`.
#[handler]
pub async fn page_handler(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(choice): Query<ChartChoice>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/dashboard", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let now = ctx.clock.now();
    let mut tripped = Vec::new();
    let enabled: Vec<_> = snap.providers.iter().filter(|p| p.enabled).collect();
    let views = ctx.breakers.views(&enabled, now).await;
    for (p, v) in enabled.into_iter().zip(views) {
        let state = match v.state {
            BreakerState::Closed => continue,
            BreakerState::Open => "breaker.open",
            BreakerState::HalfOpen => "breaker.half_open",
        };
        tripped.push(Tripped {
            id: p.id,
            name: p.name.clone(),
            state,
        });
    }
    let (metric_name, metric) = match choice.metric.as_str() {
        "cost" => ("cost", Metric::Cost),
        "tokens" => ("tokens", Metric::Tokens),
        _ => ("requests", Metric::Requests),
    };
    let (split_name, split) = match choice.split.as_str() {
        "model" => ("model", Some(Dimension::Model)),
        "user" => ("user", Some(Dimension::User)),
        "none" => ("none", None),
        _ => ("provider", Some(Dimension::Provider)),
    };
    let other = l.t("dash.other");
    let chart = |width: BucketWidth| {
        let ctx = &ctx;
        async move {
            let series = match ctx.stats.default_series_range(width) {
                Ok(range) => ctx
                    .stats
                    .timeseries(metric, width, range, split, CHART_GROUPS)
                    .await
                    .ok(),
                Err(_) => None,
            };
            series.map_or_else(String::new, |s| chart_json(&s, other))
        }
    };
    // The live rows, the cards and both charts are read together (each its own query).
    let ((rows, _, _), cards, hourly, daily) = futures_util::join!(
        read_page(
            &ctx,
            LogQuery {
                limit: Some(LIVE_ROWS),
                ..Default::default()
            },
        ),
        cards(&ctx, &l),
        chart(BucketWidth::Hour),
        chart(BucketWidth::Day),
    );
    let rows = rows.into_iter().map(|r| named(r, &snap)).collect();
    html(&DashboardPage {
        l,
        providers: snap.providers.len(),
        providers_enabled: snap.providers.iter().filter(|p| p.enabled).count(),
        users: snap.users.len(),
        keys: snap.keys_by_id.len(),
        tripped,
        rows,
        cards,
        metric: metric_name,
        split: split_name,
        hourly,
        daily,
        uplot_js: crate::adapters::http::ui::assets::url("uplot.js"),
        uplot_css: crate::adapters::http::ui::assets::url("uplot.css"),
    })
}

/// Today's figures beside yesterday's, and the live ones.
async fn cards(ctx: &AppContext, l: &Layout) -> Vec<Card> {
    let (today, yesterday) = tokio::join!(
        ctx.stats.overview(Period::Today),
        ctx.stats.overview(Period::Yesterday)
    );
    let Ok(today) = today else {
        return Vec::new();
    };
    let y = yesterday.ok();
    let ms = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.0} ms"));
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    let tokens = |s: &crate::ports::stats::LedgerSums| l.int(crate::app::stats::total_tokens(s));
    vec![
        Card {
            label: "lb.requests",
            today: l.int(today.sums.requests),
            yesterday: y.as_ref().map(|y| l.int(y.sums.requests)),
        },
        Card {
            label: "lb.cost",
            today: l.money(today.sums.cost_usd),
            yesterday: y.as_ref().map(|y| l.money(y.sums.cost_usd)),
        },
        Card {
            label: "lb.tokens",
            today: tokens(&today.sums),
            yesterday: y.as_ref().map(|y| tokens(&y.sums)),
        },
        Card {
            label: "dash.error_rate",
            today: pct(today.error_rate),
            yesterday: y.as_ref().map(|y| pct(y.error_rate)),
        },
        Card {
            label: "dash.ttfb",
            today: ms(today.avg_ttfb_ms),
            yesterday: y.as_ref().map(|y| ms(y.avg_ttfb_ms)),
        },
        Card {
            label: "dash.rpm",
            today: l.int(today.requests_last_minute),
            yesterday: None,
        },
        Card {
            label: "dash.sessions",
            today: l.int(today.active_sessions),
            yesterday: None,
        },
    ]
}
