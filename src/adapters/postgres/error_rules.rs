//! Error rule rows: SQL and the mapping to [`StoredErrorRule`].

use sqlx::PgPool;

use super::codec::{expect_one, map_err};
use crate::domain::failure::{ErrorClass, ErrorRule, MatchKind, StoredErrorRule};
use crate::ports::store::{StoreError, StoreResult};

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    pattern: String,
    match_kind: String,
    status: Option<i32>,
    class: String,
    override_status: Option<i32>,
    override_message: Option<String>,
    description: String,
    enabled: bool,
    is_preset: bool,
    priority: i32,
}

fn class_name(c: ErrorClass) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn status(v: Option<i32>) -> StoreResult<Option<u16>> {
    v.map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("bad status {s}"))))
        .transpose()
}

impl TryFrom<RuleRow> for StoredErrorRule {
    type Error = StoreError;
    fn try_from(r: RuleRow) -> Result<Self, StoreError> {
        let match_kind =
            MatchKind::parse(&r.match_kind).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let class: ErrorClass = serde_json::from_value(serde_json::Value::String(r.class.clone()))
            .map_err(|_| StoreError::Corrupt(format!("bad error class {:?}", r.class)))?;
        Ok(StoredErrorRule {
            id: r.id,
            rule: ErrorRule {
                pattern: r.pattern,
                match_kind,
                status: status(r.status)?,
                class,
                override_status: status(r.override_status)?,
                override_message: r.override_message,
            },
            description: r.description,
            enabled: r.enabled,
            is_preset: r.is_preset,
            priority: r.priority,
        })
    }
}

const COLUMNS: &str = "id, pattern, match_kind, status, class, override_status, override_message, \
     description, enabled, is_preset, priority";

/// All rules, by priority then id.
pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<StoredErrorRule>> {
    let sql = format!("SELECT {COLUMNS} FROM error_rules ORDER BY priority, id");
    let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.into_iter().map(StoredErrorRule::try_from).collect()
}

/// Inserts a rule.
pub(super) async fn insert(pool: &PgPool, r: &StoredErrorRule) -> StoreResult<StoredErrorRule> {
    let sql = format!(
        "INSERT INTO error_rules (pattern, match_kind, status, class, override_status, \
         override_message, description, enabled, is_preset, priority) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    );
    let row: RuleRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&r.rule.pattern)
        .bind(r.rule.match_kind.as_str())
        .bind(r.rule.status.map(i32::from))
        .bind(class_name(r.rule.class))
        .bind(r.rule.override_status.map(i32::from))
        .bind(&r.rule.override_message)
        .bind(&r.description)
        .bind(r.enabled)
        .bind(r.is_preset)
        .bind(r.priority)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_into()
}

/// Replaces a rule by id.
pub(super) async fn update(pool: &PgPool, r: &StoredErrorRule) -> StoreResult<StoredErrorRule> {
    let sql = format!(
        "UPDATE error_rules SET pattern = $1, match_kind = $2, status = $3, class = $4, \
         override_status = $5, override_message = $6, description = $7, enabled = $8, \
         is_preset = $9, priority = $10 WHERE id = $11 RETURNING {COLUMNS}"
    );
    let row: Option<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&r.rule.pattern)
        .bind(r.rule.match_kind.as_str())
        .bind(r.rule.status.map(i32::from))
        .bind(class_name(r.rule.class))
        .bind(r.rule.override_status.map(i32::from))
        .bind(&r.rule.override_message)
        .bind(&r.description)
        .bind(r.enabled)
        .bind(r.is_preset)
        .bind(r.priority)
        .bind(r.id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// Deletes a rule.
pub(super) async fn delete(pool: &PgPool, id: i64) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM error_rules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    expect_one(done.rows_affected())
}
