//! `/api/v1/logs`: request logs, filtered and cursor-paginated (newest first), and one by id.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rust_decimal::Decimal;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::app::admin::{LogPage, LogQuery};
use crate::app::context::AppContext;
use crate::domain::request_log::RequestLog;

/// One request log row as shown to admins. Rows never hold keys or provider secrets; error
/// messages are redacted before they are stored.
#[derive(Debug, Clone, Object)]
pub struct LogView {
    /// Id (also the pagination cursor order).
    pub id: i64,
    /// Unique id assigned when the request arrived.
    pub request_id: String,
    /// When the request arrived.
    pub created_at: DateTime<Utc>,
    /// The user, if the key was recognised.
    pub user_id: Option<i64>,
    /// The key, if recognised.
    pub key_id: Option<i64>,
    /// The provider that served (or last tried) the request.
    pub provider_id: Option<i64>,
    /// Model the client asked for.
    pub requested_model: Option<String>,
    /// Model sent upstream after redirects.
    pub forwarded_model: Option<String>,
    /// Client endpoint, e.g. `/v1/messages`.
    pub endpoint: String,
    /// Client wire format (claude, openai, response, gemini).
    pub client_format: String,
    /// HTTP status returned to the client.
    pub status_code: i32,
    /// Whether the answer was streamed.
    pub is_stream: bool,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache writes, 5 minute TTL.
    pub cache_creation_5m_tokens: i64,
    /// Cache writes, 1 hour TTL.
    pub cache_creation_1h_tokens: i64,
    /// Cache reads.
    pub cache_read_tokens: i64,
    /// Cost in USD after the provider multiplier (decimal string).
    pub cost_usd: Decimal,
    /// False when the model had no price (cost recorded as 0).
    pub cost_known: bool,
    /// Whole duration, ms.
    pub duration_ms: i64,
    /// Time to first byte, ms.
    pub ttfb_ms: Option<i64>,
    /// Every attempt made (provider, reason, outcome, status, class, duration).
    pub provider_chain: serde_json::Value,
    /// Session id derived from the request.
    pub session_id: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// Error shown to the client (redacted).
    pub error_message: Option<String>,
}

impl From<RequestLog> for LogView {
    fn from(r: RequestLog) -> Self {
        Self {
            id: r.id,
            request_id: r.request_id,
            created_at: r.created_at,
            user_id: r.user_id,
            key_id: r.key_id,
            provider_id: r.provider_id,
            requested_model: r.requested_model,
            forwarded_model: r.forwarded_model,
            endpoint: r.endpoint,
            client_format: r.client_format,
            status_code: r.status_code,
            is_stream: r.is_stream,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_creation_5m_tokens: r.cache_creation_5m_tokens,
            cache_creation_1h_tokens: r.cache_creation_1h_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cost_usd: r.cost_usd,
            cost_known: r.cost_known,
            duration_ms: r.duration_ms,
            ttfb_ms: r.ttfb_ms,
            provider_chain: r.provider_chain,
            session_id: r.session_id,
            user_agent: r.user_agent,
            error_message: r.error_message,
        }
    }
}

/// A page of request logs, newest first.
#[derive(Debug, Clone, Object)]
pub struct LogPageView {
    /// The rows.
    pub data: Vec<LogView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<LogPage> for LogPageView {
    fn from(p: LogPage) -> Self {
        Self {
            data: p.rows.into_iter().map(LogView::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// Request log endpoints.
pub struct LogsApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/logs", tag = "ApiTags::Logs")]
impl LogsApi {
    /// List request logs, newest first. Filters combine with AND; `from`/`to` are RFC 3339
    /// instants (`to` exclusive; write a `+` offset as `%2B` or use `Z`); `cursor` is the
    /// `next_cursor` of the previous page.
    #[oai(path = "/", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        _auth: AdminAuth,
        /// Only this user.
        user_id: Query<Option<i64>>,
        /// Only this key.
        key_id: Query<Option<i64>>,
        /// Only this provider.
        provider_id: Query<Option<i64>>,
        /// Requested or forwarded model equals this.
        model: Query<Option<String>>,
        /// 2, 4 or 5 (2xx, 4xx, 5xx).
        status_class: Query<Option<i32>>,
        /// Created at or after (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Created before (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// Only this session.
        session_id: Query<Option<String>>,
        /// Page size, 1–1000 (default 50).
        limit: Query<Option<i64>>,
        /// Opaque cursor: the `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<LogPageView>, ApiError> {
        let page = self
            .ctx
            .admin
            .list_logs(LogQuery {
                user_id: user_id.0,
                key_id: key_id.0,
                provider_id: provider_id.0,
                model: model.0,
                status_class: status_class.0,
                from: from.0,
                to: to.0,
                session_id: session_id.0,
                limit: limit.0,
                cursor: cursor.0,
            })
            .await?;
        Ok(Json(page.into()))
    }

    /// Get one request log.
    #[oai(path = "/:id", method = "get")]
    async fn get(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Json<LogView>, ApiError> {
        Ok(Json(self.ctx.admin.get_log(id.0).await?.into()))
    }
}
