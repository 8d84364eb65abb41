//! `GET /api/v1/audit-logs`: the admin audit log, newest first, filtered and paged by id.
//! Entries are written by `adapters::http::audit` around every admin write.

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
use crate::domain::audit::{AuditEntry, AuditFilter};

/// Default and largest page size.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// One field's change (secrets masked).
#[derive(Debug, Clone, Object)]
pub struct FieldChangeView {
    /// Field, dotted for nested objects.
    pub field: String,
    /// Value before (absent for a creation).
    #[oai(skip_serializing_if_is_none)]
    pub old: Option<serde_json::Value>,
    /// Value after (absent for a deletion).
    #[oai(skip_serializing_if_is_none)]
    pub new: Option<serde_json::Value>,
}

/// One audit entry.
#[derive(Debug, Clone, Object)]
pub struct AuditEntryView {
    /// Id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// `admin`, `user:<id>/key:<id>` or `anonymous`.
    pub actor: String,
    /// Client address.
    pub ip: Option<String>,
    /// create, update, delete, login, login_failed, logout, or an action's name.
    pub action: String,
    /// Method and route, ids as `{id}`.
    pub route: String,
    /// The resource path under `/api/v1`.
    pub target: String,
    /// The answer's status.
    pub status: u16,
    /// Changed fields.
    pub changes: Vec<FieldChangeView>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor: e.actor,
            ip: e.ip,
            action: e.action,
            route: e.route,
            target: e.target,
            status: e.status,
            changes: e
                .changes
                .into_iter()
                .map(|c| FieldChangeView {
                    field: c.field,
                    old: c.old,
                    new: c.new,
                })
                .collect(),
        }
    }
}

/// A page of entries.
#[derive(Debug, Clone, Object)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditEntryView>,
    /// Pass as `before_id` for the next page (absent on the last page).
    pub next_before_id: Option<i64>,
}

/// Audit log endpoints.
pub struct AuditLogsApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/audit-logs", tag = "ApiTags::Security")]
impl AuditLogsApi {
    /// Admin writes, newest first.
    #[oai(path = "/", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        _auth: AdminAuth,
        /// Only this actor (`admin`, `user:3/key:7`, `anonymous`).
        actor: Query<Option<String>>,
        /// Only this action (create, update, delete, login_failed, …).
        action: Query<Option<String>>,
        /// Only this resource and what is under it (`providers`, `providers/12`).
        target: Query<Option<String>>,
        /// At or after this instant.
        from: Query<Option<DateTime<Utc>>>,
        /// Before this instant.
        to: Query<Option<DateTime<Utc>>>,
        /// Entries with ids below this (from `next_before_id`).
        before_id: Query<Option<i64>>,
        /// Page size (default 100, at most 1000).
        limit: Query<Option<i64>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let filter = AuditFilter {
            actor: actor.0.filter(|s| !s.is_empty()),
            action: action.0.filter(|s| !s.is_empty()),
            target_prefix: target
                .0
                .map(|t| t.trim_matches('/').to_string())
                .filter(|s| !s.is_empty()),
            from: from.0,
            to: to.0,
            before_id: before_id.0,
            limit,
        };
        let rows = self
            .ctx
            .audit
            .list_audit(&filter)
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let next_before_id = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|e| e.id))
            .flatten();
        Ok(Json(AuditPage {
            items: rows.into_iter().map(AuditEntryView::from).collect(),
            next_before_id,
        }))
    }
}
