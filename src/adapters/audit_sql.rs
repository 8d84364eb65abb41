//! The one query layer for the admin audit log, shared by the SQLite and PostgreSQL adapters
//! (numbered `$n` parameters; instants as Unix milliseconds; the changes as JSON text).
//! [`audit_store`] instantiates the port for each adapter's pool.

use crate::domain::audit::{AuditEntry, AuditFilter, FieldChange};
use crate::ports::store::{StoreError, StoreResult};

/// Columns of `audit_logs`, in [`AuditRow`] order.
pub(crate) const AUDIT_COLUMNS: &str =
    "id, at_ms, actor, ip, action, route, target, status, changes";

/// An `audit_logs` row.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub ip: Option<String>,
    pub action: String,
    pub route: String,
    pub target: String,
    pub status: i32,
    pub changes: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> StoreResult<AuditEntry> {
        let changes: Vec<FieldChange> = serde_json::from_str(&r.changes)
            .map_err(|e| StoreError::Corrupt(format!("bad audit changes: {e}")))?;
        Ok(AuditEntry {
            id: r.id,
            at: chrono::DateTime::from_timestamp_millis(r.at_ms)
                .ok_or_else(|| StoreError::Corrupt(format!("bad instant {}", r.at_ms)))?,
            actor: r.actor,
            ip: r.ip,
            action: r.action,
            route: r.route,
            target: r.target,
            status: u16::try_from(r.status).unwrap_or(0),
            changes,
        })
    }
}

/// The changes as stored.
pub(crate) fn changes_json(e: &AuditEntry) -> String {
    serde_json::to_string(&e.changes).unwrap_or_else(|_| "[]".into())
}

/// The WHERE clause of a filter (parameters from `$1`, in [`filter_binds`] order).
pub(crate) fn filter_sql(f: &AuditFilter) -> String {
    let mut clauses = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if f.actor.is_some() {
        clauses.push(format!("actor = ${}", next()));
    }
    if f.action.is_some() {
        clauses.push(format!("action = ${}", next()));
    }
    if f.target_prefix.is_some() {
        let (a, b) = (next(), next());
        clauses.push(format!("(target = ${a} OR target LIKE ${b} ESCAPE '\\')"));
    }
    if f.from.is_some() {
        clauses.push(format!("at_ms >= ${}", next()));
    }
    if f.to.is_some() {
        clauses.push(format!("at_ms < ${}", next()));
    }
    if f.before_id.is_some() {
        clauses.push(format!("id < ${}", next()));
    }
    let limit = next();
    let wh = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    format!("SELECT {AUDIT_COLUMNS} FROM audit_logs {wh} ORDER BY id DESC LIMIT ${limit}")
}

/// The text parameters of a filter, in [`filter_sql`] order (the integers follow).
pub(crate) fn text_binds(f: &AuditFilter) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = &f.actor {
        out.push(a.clone());
    }
    if let Some(a) = &f.action {
        out.push(a.clone());
    }
    if let Some(t) = &f.target_prefix {
        out.push(t.clone());
        let escaped = t
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        out.push(format!("{escaped}/%"));
    }
    out
}

/// The integer parameters of a filter, in [`filter_sql`] order after the texts.
pub(crate) fn int_binds(f: &AuditFilter) -> Vec<i64> {
    let mut out = Vec::new();
    if let Some(t) = f.from {
        out.push(t.timestamp_millis());
    }
    if let Some(t) = f.to {
        out.push(t.timestamp_millis());
    }
    if let Some(id) = f.before_id {
        out.push(id);
    }
    out.push(f.limit.clamp(1, 1000));
    out
}

/// Implements `AuditStore` for `$store` (a type with a `pool` field of `sqlx::Pool<$db>`), with
/// `$map_err` turning sqlx errors into `StoreError`.
macro_rules! audit_store {
    ($store:ty, $map_err:path) => {
        #[async_trait::async_trait]
        impl $crate::ports::audit::AuditStore for $store {
            async fn insert_audit(
                &self,
                e: &$crate::domain::audit::AuditEntry,
            ) -> $crate::ports::store::StoreResult<i64> {
                use $crate::adapters::audit_sql::*;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO audit_logs (at_ms, actor, ip, action, route, target, status, \
                     changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(e.at.timestamp_millis())
                .bind(&e.actor)
                .bind(&e.ip)
                .bind(&e.action)
                .bind(&e.route)
                .bind(&e.target)
                .bind(i32::from(e.status))
                .bind(changes_json(e))
                .fetch_one(&self.pool)
                .await
                .map_err($map_err)?;
                Ok(id)
            }

            async fn list_audit(
                &self,
                f: &$crate::domain::audit::AuditFilter,
            ) -> $crate::ports::store::StoreResult<Vec<$crate::domain::audit::AuditEntry>> {
                use $crate::adapters::audit_sql::*;
                let sql = filter_sql(f);
                let mut q = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql));
                for t in text_binds(f) {
                    q = q.bind(t);
                }
                for i in int_binds(f) {
                    q = q.bind(i);
                }
                let rows = q.fetch_all(&self.pool).await.map_err($map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn delete_audit_before(
                &self,
                cutoff: chrono::DateTime<chrono::Utc>,
            ) -> $crate::ports::store::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM audit_logs WHERE at_ms < $1")
                    .bind(cutoff.timestamp_millis())
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use audit_store;
