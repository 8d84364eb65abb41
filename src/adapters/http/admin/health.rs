//! Provider health: breaker state of every provider and manual reset, test connection, and the
//! routing diagnosis ("which provider would this user get now, and why").

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::app::breakers::BreakerView;
use crate::app::context::AppContext;
use crate::app::provider_test::test_provider;
use crate::domain::format::ClientFormat;

/// A provider's circuit breaker.
#[derive(Debug, Clone, Object)]
pub struct BreakerStateView {
    /// Provider id.
    pub provider_id: i64,
    /// Provider name.
    pub provider_name: String,
    /// closed, open or half_open.
    pub state: String,
    /// Consecutive counted failures.
    pub failure_count: u32,
    /// Consecutive successes while half-open.
    pub half_open_successes: u32,
    /// When it last opened.
    pub opened_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When an open breaker lets requests try again.
    pub next_try_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Last counted failure: the upstream's error message (provider key masked).
    pub last_error: Option<String>,
    /// Half-open trial requests in flight now (at most the success threshold).
    pub trials_in_flight: u32,
}

impl From<BreakerView> for BreakerStateView {
    fn from(v: BreakerView) -> Self {
        Self {
            provider_id: v.provider_id,
            provider_name: v.provider_name,
            state: v.state.as_str().to_string(),
            failure_count: v.failure_count,
            half_open_successes: v.half_open_successes,
            opened_at: v.opened_at,
            next_try_at: v.next_try_at,
            last_error: v.last_error,
            trials_in_flight: v.trials_in_flight,
        }
    }
}

/// The result of a provider test.
#[derive(Debug, Clone, Object)]
pub struct TestResultView {
    /// True on a 2xx answer.
    pub ok: bool,
    /// success, auth_failed, timeout, http_error or network_error.
    pub outcome: String,
    /// Upstream status, when one arrived.
    pub status: Option<u16>,
    /// Latency in ms.
    pub latency_ms: u64,
    /// Upstream error message (or network error), when not ok.
    pub message: Option<String>,
    /// The model asked for.
    pub model: String,
}

/// Provider health endpoints.
pub struct HealthApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

impl HealthApi {
    fn provider(&self, id: i64) -> Result<crate::domain::provider::Provider, ApiError> {
        self.ctx
            .snapshot
            .get()
            .provider(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("provider"))
    }
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Circuit breaker state of every provider.
    #[oai(path = "/breakers", method = "get")]
    async fn breakers(&self, _auth: AdminAuth) -> Json<Vec<BreakerStateView>> {
        let snap = self.ctx.snapshot.get();
        let now = self.ctx.clock.now();
        let all: Vec<_> = snap.providers.iter().collect();
        let views = self.ctx.breakers.views(&all, now).await;
        Json(views.into_iter().map(Into::into).collect())
    }

    /// Circuit breaker state of one provider.
    #[oai(path = "/providers/:id/breaker", method = "get")]
    async fn breaker(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<BreakerStateView>, ApiError> {
        let p = self.provider(id.0)?;
        let now = self.ctx.clock.now();
        Ok(Json(self.ctx.breakers.view(&p, now).await.into()))
    }

    /// Reset a provider's breaker to closed (every instance sees it at once).
    #[oai(path = "/providers/:id/breaker/reset", method = "post")]
    async fn reset(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<BreakerStateView>, ApiError> {
        let p = self.provider(id.0)?;
        let now = self.ctx.clock.now();
        self.ctx.breakers.reset(&p, now).await;
        Ok(Json(self.ctx.breakers.view(&p, now).await.into()))
    }

    /// Test connection: one minimal real request through the provider's proxy settings, within
    /// `API_TEST_TIMEOUT_MS`. Does not touch the breaker.
    #[oai(path = "/providers/:id/test", method = "post")]
    async fn test(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        /// Model to ask for (default: the provider's first allowed model, else a cheap default).
        model: Query<Option<String>>,
    ) -> Result<Json<TestResultView>, ApiError> {
        let p = self.provider(id.0)?;
        let model = model.0;
        let r = test_provider(
            self.ctx.upstream.as_ref(),
            self.ctx.proxy.provider_tokens(),
            &p,
            model.as_deref(),
            self.ctx.settings.api_test_timeout,
        )
        .await;
        let outcome = serde_json::to_value(r.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(Json(TestResultView {
            ok: r.ok,
            outcome,
            status: r.status,
            latency_ms: r.latency_ms,
            message: r.message,
            model: r.model,
        }))
    }

    /// Which provider this user would get for this model now, and why every other provider is
    /// excluded. Nothing is sent upstream.
    #[oai(path = "/diagnostics/route", method = "get")]
    async fn route(
        &self,
        _auth: AdminAuth,
        user_id: Query<i64>,
        model: Query<String>,
        /// claude (default), openai, response or gemini.
        format: Query<Option<String>>,
    ) -> Result<Json<serde_json::Value>, ApiError> {
        let format = match format.0.as_deref() {
            None | Some("") => ClientFormat::Claude,
            Some(f) => ClientFormat::parse(f).ok_or_else(|| {
                ApiError::bad_request(
                    Some("format".into()),
                    "format must be one of: claude, openai, response, gemini",
                )
            })?,
        };
        let d = self
            .ctx
            .proxy
            .diagnose_route(user_id.0, &model.0, format)
            .await
            .map_err(|_| ApiError::not_found("user"))?;
        Ok(Json(serde_json::to_value(d).unwrap_or_default()))
    }
}
