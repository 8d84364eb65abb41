//! `GET /api/v1/sessions` and `DELETE /api/v1/sessions/{id}`: the active sessions of every
//! instance (from the shared counters store) and ending one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::app::admin::AdminError;
use crate::app::context::AppContext;
use crate::app::sessions::{self, DEFAULT_SESSION_LIST, SessionError, SessionView};
use crate::ports::counters::{MAX_SESSION_LIST, SessionFilter};

/// One active session.
#[derive(Debug, Clone, Object)]
pub struct SessionItem {
    /// The session id (from the client, or derived).
    pub id: String,
    /// The user of its last request.
    pub user_id: Option<i64>,
    /// That user's name (null when deleted since).
    pub user_name: Option<String>,
    /// The key of its last request.
    pub key_id: Option<i64>,
    /// That key's name.
    pub key_name: Option<String>,
    /// The provider the session is bound to.
    pub provider_id: Option<i64>,
    /// That provider's name.
    pub provider_name: Option<String>,
    /// The model of its last request.
    pub model: String,
    /// The client format of its last request (`claude`, `openai`, `response`, `gemini`).
    pub client_format: String,
    /// First request seen.
    pub started_at: DateTime<Utc>,
    /// Last request seen; the session ends `SESSION_TTL` after it.
    pub last_seen_at: DateTime<Utc>,
    /// Answered requests.
    pub requests: i64,
    /// Requests in flight now, when tracked (null: not tracked).
    pub in_flight: Option<i64>,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<SessionView> for SessionItem {
    fn from(v: SessionView) -> Self {
        let s = v.session;
        Self {
            id: s.id,
            user_id: s.user_id,
            user_name: v.user_name,
            key_id: s.key_id,
            key_name: v.key_name,
            provider_id: s.provider_id,
            provider_name: v.provider_name,
            model: s.model,
            client_format: s.client_format,
            started_at: at(s.started_ms),
            last_seen_at: at(s.last_ms),
            requests: s.requests,
            in_flight: s.in_flight,
        }
    }
}

/// The listing.
#[derive(Debug, Clone, Object)]
pub struct SessionList {
    /// Active sessions, most recently seen first.
    pub items: Vec<SessionItem>,
    /// Sessions stay active this many seconds after their last request (`SESSION_TTL`).
    pub session_ttl_seconds: u64,
}

/// 204.
#[derive(ApiResponse)]
pub enum Ended {
    /// The session was ended.
    #[oai(status = 204)]
    Ok,
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound => Self::not_found("session"),
            SessionError::Unavailable(m) => AdminError::Unavailable(m).into(),
        }
    }
}

/// Session endpoints.
pub struct SessionsApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(tag = "ApiTags::Stats")]
impl SessionsApi {
    /// Active sessions of every instance (a session is active for `SESSION_TTL` after its last
    /// answered request), most recently seen first, optionally only those of a user, key or
    /// provider.
    #[oai(path = "/sessions", method = "get")]
    async fn list(
        &self,
        _auth: AdminAuth,
        /// Only this user's sessions.
        user_id: Query<Option<i64>>,
        /// Only this key's sessions.
        key_id: Query<Option<i64>>,
        /// Only sessions bound to this provider.
        provider_id: Query<Option<i64>>,
        /// How many, 1–1000 (default 100).
        limit: Query<Option<i64>>,
    ) -> Result<Json<SessionList>, ApiError> {
        let limit = limit.0.unwrap_or(DEFAULT_SESSION_LIST as i64);
        let max = MAX_SESSION_LIST as i64;
        if !(1..=max).contains(&limit) {
            return Err(ApiError::bad_request(
                Some("limit".into()),
                format!("limit: between 1 and {max}"),
            ));
        }
        let filter = SessionFilter {
            user_id: user_id.0,
            key_id: key_id.0,
            provider_id: provider_id.0,
            limit: usize::try_from(limit).unwrap_or(DEFAULT_SESSION_LIST),
        };
        let items = sessions::list(&self.ctx, &filter).await?;
        Ok(Json(SessionList {
            items: items.into_iter().map(SessionItem::from).collect(),
            session_ttl_seconds: self.ctx.settings.session_ttl.as_secs(),
        }))
    }

    /// Ends a session: its provider binding and its concurrent-session slots are dropped, so
    /// its next request is routed afresh and counts as a new session.
    #[oai(path = "/sessions/:id", method = "delete")]
    async fn end(&self, _auth: AdminAuth, id: Path<String>) -> Result<Ended, ApiError> {
        sessions::end(&self.ctx, &id.0).await?;
        Ok(Ended::Ok)
    }
}
