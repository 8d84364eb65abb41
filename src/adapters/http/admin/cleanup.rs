//! `POST /api/v1/logs/cleanup`: runs the log retention job now.

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
use crate::app::retention::CleanupError;

/// What a cleanup removed.
#[derive(Debug, Clone, Object)]
pub struct CleanupView {
    /// Rows created before this instant were removed; null when retention is off
    /// (`log_retention_days` = 0) and no `before` was given: nothing was removed.
    pub cutoff: Option<DateTime<Utc>>,
    /// Request-log rows removed.
    pub rows_deleted: u64,
    /// Transactions used (each removes at most 1,000 rows).
    pub batches: u64,
    /// What space reclaim did.
    pub reclaimed: String,
    /// Wall time, ms.
    pub duration_ms: u64,
}

/// Log cleanup endpoint.
pub struct CleanupApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/logs", tag = "ApiTags::Logs")]
impl CleanupApi {
    /// Remove expired request-log rows now: those older than `log_retention_days`, or those
    /// created before `before` when given. Statistics roll-ups are never removed. Answers 409
    /// while another cleanup runs (on any instance).
    #[oai(path = "/cleanup", method = "post")]
    async fn cleanup(
        &self,
        _auth: AdminAuth,
        /// Remove rows created before this instant (RFC 3339) instead of the retention cutoff.
        before: Query<Option<DateTime<Utc>>>,
    ) -> Result<Json<CleanupView>, ApiError> {
        if let Some(b) = before.0
            && b > self.ctx.clock.now()
        {
            return Err(ApiError::bad_request(
                Some("before".into()),
                "before: must not be in the future",
            ));
        }
        match self.ctx.retention.run_now(before.0).await {
            Ok(r) => Ok(Json(CleanupView {
                cutoff: r.cutoff,
                rows_deleted: r.rows_deleted,
                batches: r.batches,
                reclaimed: r.reclaimed,
                duration_ms: r.duration_ms,
            })),
            Err(CleanupError::Busy) => Err(AdminError::Conflict(
                "a log cleanup is already running; try again when it has finished".into(),
            )
            .into()),
            Err(CleanupError::Store(e)) => Err(AdminError::Unavailable(e.to_string()).into()),
        }
    }
}
