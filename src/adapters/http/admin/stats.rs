//! `/api/v1/stats`: overview, time series and leaderboard (JSON and CSV), read from the usage
//! ledger, so they answer the same after the request log is cleaned up. Periods are cut in the
//! configured time zone with hour resolution (see `domain::periods`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::Query;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use rust_decimal::Decimal;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::app::context::AppContext;
use crate::app::stats::{LeaderRow, Period, StatsError, total_tokens};
use crate::domain::periods::{BucketWidth, Range};
use crate::ports::stats::{Dimension, LedgerSums, Metric};

/// Token sums by kind.
#[derive(Debug, Clone, Object)]
pub struct TokensView {
    /// Input tokens (not cached).
    pub input: i64,
    /// Output tokens.
    pub output: i64,
    /// Cache reads.
    pub cache_read: i64,
    /// Cache writes, 5 minute TTL.
    pub cache_write_5m: i64,
    /// Cache writes, 1 hour TTL.
    pub cache_write_1h: i64,
    /// All of the above.
    pub total: i64,
}

fn tokens(s: &LedgerSums) -> TokensView {
    TokensView {
        input: s.input_tokens,
        output: s.output_tokens,
        cache_read: s.cache_read_tokens,
        cache_write_5m: s.cache_write_5m_tokens,
        cache_write_1h: s.cache_write_1h_tokens,
        total: total_tokens(s),
    }
}

/// Statistics of a period.
#[derive(Debug, Clone, Object)]
pub struct OverviewView {
    /// First instant counted (the period's start, on a UTC hour: see the API description).
    pub from: DateTime<Utc>,
    /// First instant not counted.
    pub to: DateTime<Utc>,
    /// Requests.
    pub requests: i64,
    /// Requests that did not succeed (4xx, 5xx, limits, cancelled).
    pub errors: i64,
    /// errors / requests (0 without requests).
    pub error_rate: f64,
    /// Tokens by kind.
    pub tokens: TokensView,
    /// Cost in USD.
    pub cost_usd: Decimal,
    /// Requests converted to another wire format.
    pub converted_requests: i64,
    /// Mean time to first byte (ms).
    #[oai(skip_serializing_if_is_none)]
    pub avg_ttfb_ms: Option<f64>,
    /// Median time to first byte (ms), estimated from a histogram kept with the roll-ups.
    #[oai(skip_serializing_if_is_none)]
    pub p50_ttfb_ms: Option<f64>,
    /// 95th percentile time to first byte (ms), estimated from the same histogram.
    #[oai(skip_serializing_if_is_none)]
    pub p95_ttfb_ms: Option<f64>,
    /// Sessions with a logged request within `SESSION_TTL` (all instances).
    pub active_sessions: i64,
    /// Requests logged in the last 60 seconds (all instances).
    pub requests_last_minute: i64,
}

/// One line of a time series.
#[derive(Debug, Clone, Object)]
pub struct SeriesLineView {
    /// `all` (no grouping), the group's id or model, or `other` (every group beyond `top`).
    pub key: String,
    /// The user, key or provider name, when it still exists.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// One value per bucket, in bucket order; empty buckets are 0.
    pub values: Vec<Decimal>,
}

/// A time series.
#[derive(Debug, Clone, Object)]
pub struct TimeseriesView {
    /// First instant counted.
    pub from: DateTime<Utc>,
    /// First instant not counted.
    pub to: DateTime<Utc>,
    /// requests, cost, tokens or errors.
    pub metric: String,
    /// hour or day.
    pub bucket: String,
    /// Start of each bucket (days start at local midnight in the configured zone).
    pub buckets: Vec<DateTime<Utc>>,
    /// The top groups by their total over the range, then `other`.
    pub series: Vec<SeriesLineView>,
}

/// One ranked row.
#[derive(Debug, Clone, Object)]
pub struct LeaderRowView {
    /// 1-based rank.
    pub rank: i64,
    /// The user, key or provider id, or the model name.
    pub key: String,
    /// The user, key or provider name, when it still exists.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// Requests.
    pub requests: i64,
    /// Requests that did not succeed.
    pub errors: i64,
    /// Tokens by kind.
    pub tokens: TokensView,
    /// Cost in USD.
    pub cost_usd: Decimal,
    /// Cache-read tokens over all input tokens (input + cache reads + cache writes).
    pub cache_hit_rate: f64,
    /// Mean time to first byte (ms).
    #[oai(skip_serializing_if_is_none)]
    pub avg_ttfb_ms: Option<f64>,
}

/// A leaderboard.
#[derive(Debug, Clone, Object)]
pub struct LeaderboardView {
    /// First instant counted.
    pub from: DateTime<Utc>,
    /// First instant not counted.
    pub to: DateTime<Utc>,
    /// user, key, provider or model.
    pub scope: String,
    /// cost, requests or tokens.
    pub order: String,
    /// Ranked rows, best first.
    pub rows: Vec<LeaderRowView>,
}

/// The CSV leaderboard, or an error.
#[derive(Debug, ApiResponse)]
pub enum CsvResponse {
    /// One header line, then one line per row.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(
        PlainText<String>,
        #[oai(header = "Content-Disposition")] String,
    ),
}

fn stats_error(e: StatsError) -> ApiError {
    match e {
        StatsError::Invalid { field, message } => {
            ApiError::bad_request(Some(field.into()), message)
        }
        StatsError::Unavailable(m) => ApiError::from(crate::app::admin::AdminError::Unavailable(m)),
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::bad_request(Some(field.into()), message)
}

fn parse_period(
    period: Option<&str>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    default: Period,
) -> Result<Period, ApiError> {
    let p = match period {
        None => default,
        Some("today") => Period::Today,
        Some("yesterday") => Period::Yesterday,
        Some("week") => Period::Week,
        Some("month") => Period::Month,
        Some("custom") => match (from, to) {
            (Some(from), Some(to)) => Period::Custom { from, to },
            (None, _) => return Err(invalid("from", "period=custom needs `from` and `to`")),
            (_, None) => return Err(invalid("to", "period=custom needs `from` and `to`")),
        },
        Some(_) => {
            return Err(invalid(
                "period",
                "period must be today, yesterday, week, month or custom",
            ));
        }
    };
    Ok(p)
}

fn parse_metric(
    field: &str,
    v: Option<&str>,
    default: Metric,
    errors: bool,
) -> Result<Metric, ApiError> {
    Ok(match v {
        None => default,
        Some("requests") => Metric::Requests,
        Some("cost") => Metric::Cost,
        Some("tokens") => Metric::Tokens,
        Some("errors") if errors => Metric::Errors,
        Some(_) if errors => {
            return Err(invalid(field, "must be requests, cost, tokens or errors"));
        }
        Some(_) => return Err(invalid(field, "must be cost, requests or tokens")),
    })
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Requests => "requests",
        Metric::Cost => "cost",
        Metric::Tokens => "tokens",
        Metric::Errors => "errors",
    }
}

fn parse_dimension(field: &str, v: &str) -> Result<Dimension, ApiError> {
    Ok(match v {
        "user" => Dimension::User,
        "key" => Dimension::Key,
        "provider" => Dimension::Provider,
        "model" => Dimension::Model,
        _ => return Err(invalid(field, "must be user, key, provider or model")),
    })
}

fn dimension_name(d: Dimension) -> &'static str {
    match d {
        Dimension::User => "user",
        Dimension::Key => "key",
        Dimension::Provider => "provider",
        Dimension::Model => "model",
    }
}

fn row_view(r: &LeaderRow) -> LeaderRowView {
    LeaderRowView {
        rank: i64::try_from(r.rank).unwrap_or(i64::MAX),
        key: r.key.clone(),
        name: r.name.clone(),
        requests: r.sums.requests,
        errors: r.sums.errors,
        tokens: tokens(&r.sums),
        cost_usd: r.sums.cost_usd,
        cache_hit_rate: r.cache_hit_rate,
        avg_ttfb_ms: r.avg_ttfb_ms,
    }
}

/// One CSV cell: quoted when needed, and a leading `= + - @` (a spreadsheet formula) defused
/// with an apostrophe, since names come from admins and models from clients.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The leaderboard as CSV text.
fn leaderboard_csv(rows: &[LeaderRowView]) -> String {
    let mut out = String::from(
        "rank,key,name,requests,errors,input_tokens,output_tokens,cache_read_tokens,\
         cache_write_5m_tokens,cache_write_1h_tokens,total_tokens,cost_usd,cache_hit_rate,\
         avg_ttfb_ms\n",
    );
    for r in rows {
        let cells = [
            r.rank.to_string(),
            csv_cell(&r.key),
            csv_cell(r.name.as_deref().unwrap_or("")),
            r.requests.to_string(),
            r.errors.to_string(),
            r.tokens.input.to_string(),
            r.tokens.output.to_string(),
            r.tokens.cache_read.to_string(),
            r.tokens.cache_write_5m.to_string(),
            r.tokens.cache_write_1h.to_string(),
            r.tokens.total.to_string(),
            r.cost_usd.to_string(),
            format!("{:.4}", r.cache_hit_rate),
            r.avg_ttfb_ms.map(|v| format!("{v:.1}")).unwrap_or_default(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Statistics endpoints.
pub struct StatsApi {
    /// Shared state.
    pub ctx: Arc<AppContext>,
}

impl StatsApi {
    #[allow(clippy::too_many_arguments)]
    async fn board(
        &self,
        scope: Option<String>,
        period: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        order: Option<String>,
        limit: Option<i64>,
    ) -> Result<LeaderboardView, ApiError> {
        let dim = parse_dimension("scope", scope.as_deref().unwrap_or("user"))?;
        let period = parse_period(period.as_deref(), from, to, Period::Month)?;
        let order = parse_metric("order", order.as_deref(), Metric::Cost, false)?;
        let board = self
            .ctx
            .stats
            .leaderboard(dim, period, order, limit.unwrap_or(50))
            .await
            .map_err(stats_error)?;
        Ok(LeaderboardView {
            from: board.range.from,
            to: board.range.to,
            scope: dimension_name(dim).into(),
            order: metric_name(order).into(),
            rows: board.rows.iter().map(row_view).collect(),
        })
    }
}

#[OpenApi(tag = "ApiTags::Stats")]
impl StatsApi {
    /// Totals of a period (default today) in the configured time zone: requests, errors, tokens,
    /// cost, time to first byte, plus live figures (active sessions, requests in the last
    /// minute). Read from hourly roll-ups, which log cleanup never deletes; a period counts the
    /// UTC hours that start inside it (exact in whole-hour zones; in half-hour zones each edge
    /// moves to the next hour).
    #[oai(path = "/stats/overview", method = "get")]
    async fn overview(
        &self,
        _auth: AdminAuth,
        /// today, yesterday, week, month or custom (with `from` and `to`).
        period: Query<Option<String>>,
        /// Start of a custom period (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// End of a custom period (RFC 3339, exclusive).
        to: Query<Option<DateTime<Utc>>>,
    ) -> Result<Json<OverviewView>, ApiError> {
        let period = parse_period(period.0.as_deref(), from.0, to.0, Period::Today)?;
        let o = self.ctx.stats.overview(period).await.map_err(stats_error)?;
        Ok(Json(OverviewView {
            from: o.range.from,
            to: o.range.to,
            requests: o.sums.requests,
            errors: o.sums.errors,
            error_rate: o.error_rate,
            tokens: tokens(&o.sums),
            cost_usd: o.sums.cost_usd,
            converted_requests: o.sums.converted,
            avg_ttfb_ms: o.avg_ttfb_ms,
            p50_ttfb_ms: o.p50_ttfb_ms,
            p95_ttfb_ms: o.p95_ttfb_ms,
            active_sessions: o.active_sessions,
            requests_last_minute: o.requests_last_minute,
        }))
    }

    /// A metric per hour or per local day, every bucket present (0 when empty), optionally
    /// one line per user, key, provider or model: the `top` groups by their total over the
    /// range, then `other`. Default range: the last 24 hours (hour) or 30 days (day).
    #[oai(path = "/stats/timeseries", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn timeseries(
        &self,
        _auth: AdminAuth,
        /// requests (default), cost, tokens or errors.
        metric: Query<Option<String>>,
        /// hour or day (default).
        bucket: Query<Option<String>>,
        /// Start (RFC 3339); with `to`.
        from: Query<Option<DateTime<Utc>>>,
        /// End (RFC 3339, exclusive); with `from`.
        to: Query<Option<DateTime<Utc>>>,
        /// none (default), user, key, provider or model.
        group_by: Query<Option<String>>,
        /// Groups shown by name (default 5, at most 1000).
        top: Query<Option<i64>>,
    ) -> Result<Json<TimeseriesView>, ApiError> {
        let metric = parse_metric("metric", metric.0.as_deref(), Metric::Requests, true)?;
        let width = match bucket.0.as_deref() {
            None | Some("day") => BucketWidth::Day,
            Some("hour") => BucketWidth::Hour,
            Some(_) => return Err(invalid("bucket", "bucket must be hour or day")),
        };
        let group = match group_by.0.as_deref() {
            None | Some("none") => None,
            Some(g) => Some(parse_dimension("group_by", g)?),
        };
        let range = match (from.0, to.0) {
            (Some(from), Some(to)) => Range { from, to },
            (None, None) => self
                .ctx
                .stats
                .default_series_range(width)
                .map_err(stats_error)?,
            (None, Some(_)) => {
                return Err(invalid("from", "give both `from` and `to`, or neither"));
            }
            (Some(_), None) => return Err(invalid("to", "give both `from` and `to`, or neither")),
        };
        let s = self
            .ctx
            .stats
            .timeseries(metric, width, range, group, top.0.unwrap_or(5))
            .await
            .map_err(stats_error)?;
        Ok(Json(TimeseriesView {
            from: s.range.from,
            to: s.range.to,
            metric: metric_name(metric).into(),
            bucket: match width {
                BucketWidth::Hour => "hour",
                BucketWidth::Day => "day",
            }
            .into(),
            buckets: s.buckets,
            series: s
                .lines
                .into_iter()
                .map(|l| SeriesLineView {
                    key: l.key,
                    name: l.name,
                    values: l.values,
                })
                .collect(),
        }))
    }

    /// Users, keys, providers or models ranked by cost, requests or tokens over a period
    /// (default: this month), with tokens by kind, cache-hit rate and mean time to first byte.
    #[oai(path = "/stats/leaderboard", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn leaderboard(
        &self,
        _auth: AdminAuth,
        /// user (default), key, provider or model.
        scope: Query<Option<String>>,
        /// today, yesterday, week, month (default) or custom.
        period: Query<Option<String>>,
        /// Start of a custom period (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// End of a custom period (RFC 3339, exclusive).
        to: Query<Option<DateTime<Utc>>>,
        /// cost (default), requests or tokens.
        order: Query<Option<String>>,
        /// Rows (default 50, at most 1000).
        limit: Query<Option<i64>>,
    ) -> Result<Json<LeaderboardView>, ApiError> {
        self.board(scope.0, period.0, from.0, to.0, order.0, limit.0)
            .await
            .map(Json)
    }

    /// The leaderboard as CSV (same parameters), for spreadsheets.
    #[oai(path = "/stats/leaderboard.csv", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn leaderboard_csv(
        &self,
        _auth: AdminAuth,
        /// user (default), key, provider or model.
        scope: Query<Option<String>>,
        /// today, yesterday, week, month (default) or custom.
        period: Query<Option<String>>,
        /// Start of a custom period (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// End of a custom period (RFC 3339, exclusive).
        to: Query<Option<DateTime<Utc>>>,
        /// cost (default), requests or tokens.
        order: Query<Option<String>>,
        /// Rows (default 50, at most 1000).
        limit: Query<Option<i64>>,
    ) -> Result<CsvResponse, ApiError> {
        let board = self
            .board(scope.0, period.0, from.0, to.0, order.0, limit.0)
            .await?;
        let name = format!(
            "attachment; filename=\"leaderboard-{}-{}.csv\"",
            board.scope,
            board.from.format("%Y%m%dT%H%MZ")
        );
        Ok(CsvResponse::Csv(
            PlainText(leaderboard_csv(&board.rows)),
            name,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-1,2"), "\"'-1,2\"");
    }
}
