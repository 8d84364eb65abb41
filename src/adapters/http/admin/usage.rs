//! `/api/v1/{users|keys|providers}/{id}/usage`: every limit window of an entity (limit, used,
//! remaining, reset), reset of the total-spend counter, and a rebuild of the spend windows from
//! the request log.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rust_decimal::Decimal;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::app::context::AppContext;
use crate::app::limits::{LimitError, LimitService, Scope, WindowUsage};
use crate::domain::windows::micros_to_usd;

/// One limit window.
#[derive(Debug, Clone, Object)]
pub struct WindowView {
    /// rpm, concurrent_sessions, 5h, daily, weekly, monthly or total.
    pub window: String,
    /// requests, sessions or usd.
    pub unit: String,
    /// The configured limit; absent = unlimited.
    #[oai(skip_serializing_if_is_none)]
    pub limit: Option<Decimal>,
    /// Current value.
    pub used: Decimal,
    /// Limit minus used (never negative); absent when unlimited.
    #[oai(skip_serializing_if_is_none)]
    pub remaining: Option<Decimal>,
    /// When a calendar window (fixed daily, weekly, monthly) resets; absent for sliding
    /// windows, sessions and totals.
    #[oai(skip_serializing_if_is_none)]
    pub resets_at: Option<DateTime<Utc>>,
    /// Where `used` comes from: `counter` (the live limit counter: windows with a limit, and
    /// sessions), `request_log` (a spend window without a limit, summed from the request log,
    /// which lags by the log batching delay) or `untracked` (an RPM without a limit: not
    /// counted, `used` is 0).
    pub source: String,
}

/// Usage of a user, key or provider.
#[derive(Debug, Clone, Object)]
pub struct UsageView {
    /// user, key or provider.
    pub scope: String,
    /// Its id.
    pub id: i64,
    /// Where counting happens: shared (Redis), degraded (Redis down, per instance) or local.
    pub counting: String,
    /// Every window.
    pub windows: Vec<WindowView>,
}

/// Converts a window to its API view.
pub fn window_view(w: &WindowUsage) -> WindowView {
    let money = w.kind.is_spend();
    let conv = |v: i64| {
        if money {
            micros_to_usd(v).normalize()
        } else {
            Decimal::from(v)
        }
    };
    let unit = match w.kind {
        crate::domain::windows::LimitKind::Rpm => "requests",
        crate::domain::windows::LimitKind::Concurrency => "sessions",
        _ => "usd",
    };
    WindowView {
        window: w.kind.as_str().to_string(),
        unit: unit.to_string(),
        limit: w.limit.map(conv),
        used: conv(w.used),
        remaining: w.limit.map(|l| conv((l - w.used).max(0))),
        resets_at: w.resets_at,
        source: w.source.as_str().to_string(),
    }
}

/// An entity's limits before an admin change (`None` without rate limiting or when unknown).
pub fn limits_before(
    ctx: &AppContext,
    scope: Scope,
    id: i64,
) -> Option<crate::domain::limits::Limits> {
    ctx.limits.as_ref()?.limits_of(scope, id).ok()
}

/// After an admin change of an entity: fills its newly limited windows from the request log
/// (windows without a limit are not counted, so a new limit would otherwise start at zero).
pub async fn limits_changed(
    ctx: &AppContext,
    scope: Scope,
    id: i64,
    before: Option<crate::domain::limits::Limits>,
) {
    if let (Some(limits), Some(before)) = (ctx.limits.as_ref(), before) {
        limits
            .limits_changed(scope, id, &before, ctx.clock.now())
            .await;
    }
}

/// Maps a limits error to the admin error shape.
pub fn limit_error(e: LimitError) -> ApiError {
    match e {
        LimitError::NotFound(what) => ApiError::not_found(what),
        LimitError::Unavailable(m) => {
            tracing::error!(error = %m, "usage operation failed");
            ApiError::from(crate::app::admin::AdminError::Unavailable(m))
        }
    }
}

/// Builds the usage view of one entity.
pub async fn usage_view(
    ctx: &AppContext,
    limits: &LimitService,
    scope: Scope,
    id: i64,
) -> Result<UsageView, LimitError> {
    let windows = limits.usage(scope, id, ctx.clock.now()).await?;
    Ok(UsageView {
        scope: scope.name().to_string(),
        id,
        counting: limits.store().mode().as_str().to_string(),
        windows: windows.iter().map(window_view).collect(),
    })
}

/// Usage endpoints.
pub struct UsageApi {
    /// Shared state.
    pub ctx: Arc<AppContext>,
}

impl UsageApi {
    fn service(&self) -> Result<&Arc<LimitService>, ApiError> {
        self.ctx.limits.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                None,
                "rate limiting is disabled (ENABLE_RATE_LIMIT=false): no usage is counted",
            )
        })
    }

    async fn get(&self, scope: Scope, id: i64) -> Result<Json<UsageView>, ApiError> {
        let service = self.service()?;
        usage_view(&self.ctx, service, scope, id)
            .await
            .map(Json)
            .map_err(limit_error)
    }

    async fn reset_total(&self, scope: Scope, id: i64) -> Result<Json<UsageView>, ApiError> {
        let service = self.service()?;
        service
            .reset_total(scope, id, self.ctx.clock.now())
            .await
            .map_err(limit_error)?;
        self.get(scope, id).await
    }

    async fn recompute(&self, scope: Scope, id: i64) -> Result<Json<UsageView>, ApiError> {
        let service = self.service()?;
        service
            .recompute(scope, id, self.ctx.clock.now())
            .await
            .map_err(limit_error)?;
        self.get(scope, id).await
    }
}

#[OpenApi(tag = "ApiTags::Usage")]
impl UsageApi {
    /// Every limit window of a user.
    #[oai(path = "/users/:id/usage", method = "get")]
    async fn user_usage(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.get(Scope::User, id.0).await
    }

    /// Every limit window of a key.
    #[oai(path = "/keys/:id/usage", method = "get")]
    async fn key_usage(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.get(Scope::Key, id.0).await
    }

    /// Every limit window of a provider.
    #[oai(path = "/providers/:id/usage", method = "get")]
    async fn provider_usage(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.get(Scope::Provider, id.0).await
    }

    /// Resets a user's total-spend counter (a later recompute starts from now).
    #[oai(path = "/users/:id/usage/reset-total", method = "post")]
    async fn user_reset_total(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.reset_total(Scope::User, id.0).await
    }

    /// Resets a key's total-spend counter.
    #[oai(path = "/keys/:id/usage/reset-total", method = "post")]
    async fn key_reset_total(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.reset_total(Scope::Key, id.0).await
    }

    /// Resets a provider's total-spend counter.
    #[oai(path = "/providers/:id/usage/reset-total", method = "post")]
    async fn provider_reset_total(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.reset_total(Scope::Provider, id.0).await
    }

    /// Rebuilds a user's spend windows from the request log.
    #[oai(path = "/users/:id/usage/recompute", method = "post")]
    async fn user_recompute(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.recompute(Scope::User, id.0).await
    }

    /// Rebuilds a key's spend windows from the request log.
    #[oai(path = "/keys/:id/usage/recompute", method = "post")]
    async fn key_recompute(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.recompute(Scope::Key, id.0).await
    }

    /// Rebuilds a provider's spend windows from the request log.
    #[oai(path = "/providers/:id/usage/recompute", method = "post")]
    async fn provider_recompute(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<UsageView>, ApiError> {
        self.recompute(Scope::Provider, id.0).await
    }
}
