//! `GET /api/v1/stats/rate-limits`: requests refused by a limit in a period, by limit kind,
//! and the users and keys most affected.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::app::admin::AdminError;
use crate::app::context::AppContext;
use crate::domain::rate_limit_stats::{Affected, period_bounds, report};

/// Refusals of one limit kind.
#[derive(Debug, Clone, Object)]
pub struct KindCount {
    /// `rpm`, `5h`, `daily`, `weekly`, `monthly`, `total`, `concurrent_sessions`.
    pub kind: String,
    /// Refused requests.
    pub refused: i64,
}

/// A user or key and its refusals.
#[derive(Debug, Clone, Object)]
pub struct AffectedView {
    /// User or key id.
    pub id: i64,
    /// Its current name (null when deleted since).
    pub name: Option<String>,
    /// Refused requests in the period.
    pub refused: i64,
    /// Per kind, most first.
    pub by_kind: Vec<KindCount>,
}

/// The rate-limit refusal report.
#[derive(Debug, Clone, Object)]
pub struct RateLimitStatsView {
    /// First instant counted.
    pub from: DateTime<Utc>,
    /// First instant not counted.
    pub to: DateTime<Utc>,
    /// The zone the period was cut in.
    pub timezone: String,
    /// Requests refused by a key or user limit (HTTP 429).
    pub total_refused: i64,
    /// Per limit kind, every kind listed.
    pub by_kind: Vec<KindCount>,
    /// Most refused users, most first.
    pub top_users: Vec<AffectedView>,
    /// Most refused keys, most first.
    pub top_keys: Vec<AffectedView>,
}

fn kinds(list: Vec<(String, i64)>) -> Vec<KindCount> {
    list.into_iter()
        .map(|(kind, refused)| KindCount { kind, refused })
        .collect()
}

/// Rate-limit statistics endpoint.
pub struct RateLimitStatsApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/stats", tag = "ApiTags::Usage")]
impl RateLimitStatsApi {
    /// Requests refused by a limit (RPM, 5 h, daily, weekly, monthly, total, concurrent
    /// sessions of a key or user), counted from the request log: every such 429 is a log row
    /// whose `error_message` starts with `rate limited (<kind>, <scope>)`. Periods are cut in
    /// the effective time zone; `custom` takes `from` and `to`. Counts cover the logs still
    /// kept (see `log_retention_days`).
    #[oai(path = "/rate-limits", method = "get")]
    async fn rate_limits(
        &self,
        _auth: AdminAuth,
        /// `today` (default), `yesterday`, `week`, `month`, `last24h` or `custom`.
        period: Query<Option<String>>,
        /// With `custom`: first instant (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// With `custom`: first instant not counted (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// How many users and keys to list, 1–100 (default 10).
        top: Query<Option<i64>>,
    ) -> Result<Json<RateLimitStatsView>, ApiError> {
        let top = top.0.unwrap_or(10);
        if !(1..=100).contains(&top) {
            return Err(ApiError::bad_request(
                Some("top".into()),
                "top: between 1 and 100",
            ));
        }
        let zone = self.ctx.system_settings.effective_zone();
        let (start, end) = period_bounds(
            period.0.as_deref().unwrap_or("today"),
            self.ctx.clock.now(),
            zone,
            from.0,
            to.0,
        )
        .map_err(AdminError::from)?;
        let rows = self
            .ctx
            .refusal_stats
            .limit_refusals(start, end)
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let r = report(&rows, top as usize);
        let snap = self.ctx.snapshot.get();
        let view = |list: Vec<Affected>, user: bool| -> Vec<AffectedView> {
            list.into_iter()
                .map(|a| AffectedView {
                    name: if user {
                        snap.users.get(&a.id).map(|u| u.name.clone())
                    } else {
                        snap.keys_by_id.get(&a.id).map(|k| k.name.clone())
                    },
                    id: a.id,
                    refused: a.refused,
                    by_kind: kinds(a.by_kind),
                })
                .collect()
        };
        Ok(Json(RateLimitStatsView {
            from: start,
            to: end,
            timezone: zone.name().to_string(),
            total_refused: r.total,
            by_kind: kinds(r.by_kind),
            top_users: view(r.top_users, true),
            top_keys: view(r.top_keys, false),
        }))
    }
}
