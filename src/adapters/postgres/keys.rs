//! API key rows: SQL and the mapping to [`ApiKey`].

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::codec::{LIMIT_COLUMNS, LimitsRow, expect_one, map_err, push_limits};
use crate::domain::api_key::ApiKey;
use crate::ports::store::{StoreError, StoreResult};

/// Every column, as read back.
const SELECT: &str = "SELECT id, user_id, name, key_hash, key_last4, enabled, expires_at, \
     rpm_limit, limit_5h_usd, limit_daily_usd, daily_reset_mode, daily_reset_time, \
     limit_weekly_usd, limit_monthly_usd, limit_total_usd, limit_concurrent_sessions, \
     created_at, updated_at FROM api_keys";

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: i64,
    user_id: i64,
    name: String,
    key_hash: String,
    key_last4: String,
    enabled: bool,
    expires_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    limits: LimitsRow,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self, StoreError> {
        Ok(ApiKey {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            key_hash: r.key_hash,
            key_last4: r.key_last4,
            enabled: r.enabled,
            expires_at: r.expires_at,
            limits: r.limits.into_limits()?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

async fn fetch_many(pool: &PgPool, user_id: Option<i64>) -> StoreResult<Vec<ApiKey>> {
    let rows: Vec<KeyRow> = match user_id {
        Some(uid) => {
            let sql = format!("{SELECT} WHERE user_id = $1 ORDER BY id");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(uid)
                .fetch_all(pool)
                .await
        }
        None => {
            let sql = format!("{SELECT} ORDER BY id");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
        }
    }
    .map_err(map_err)?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// All keys by id.
pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<ApiKey>> {
    fetch_many(pool, None).await
}

/// Keys of one user by id.
pub(super) async fn list_for_user(pool: &PgPool, user_id: i64) -> StoreResult<Vec<ApiKey>> {
    fetch_many(pool, Some(user_id)).await
}

/// One key.
pub(super) async fn get(pool: &PgPool, id: i64) -> StoreResult<ApiKey> {
    let sql = format!("{SELECT} WHERE id = $1");
    let row: KeyRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_into()
}

/// Inserts and returns the stored row.
pub(super) async fn insert(pool: &PgPool, k: &ApiKey) -> StoreResult<ApiKey> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO api_keys (user_id, name, key_hash, key_last4, enabled, expires_at, ",
    );
    qb.push(LIMIT_COLUMNS)
        .push(", created_at, updated_at) VALUES (");
    let mut s = qb.separated(", ");
    s.push_bind(k.user_id)
        .push_bind(k.name.clone())
        .push_bind(k.key_hash.clone())
        .push_bind(k.key_last4.clone())
        .push_bind(k.enabled)
        .push_bind(k.expires_at);
    push_limits(&mut s, &k.limits);
    s.push_bind(k.created_at).push_bind(k.updated_at);
    qb.push(") RETURNING id");
    let id: i64 = qb
        .build_query_scalar()
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    get(pool, id).await
}

/// Replaces the editable fields: name, enabled, expiry, limits and `updated_at`.
pub(super) async fn update(pool: &PgPool, k: &ApiKey) -> StoreResult<ApiKey> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("UPDATE api_keys SET (name, enabled, ");
    qb.push("expires_at, ")
        .push(LIMIT_COLUMNS)
        .push(", updated_at) = (");
    let mut s = qb.separated(", ");
    s.push_bind(k.name.clone())
        .push_bind(k.enabled)
        .push_bind(k.expires_at);
    push_limits(&mut s, &k.limits);
    s.push_bind(k.updated_at);
    qb.push(") WHERE id = ").push_bind(k.id);
    let done = qb.build().execute(pool).await.map_err(map_err)?;
    expect_one(done.rows_affected())?;
    get(pool, k.id).await
}

/// Deletes one key.
pub(super) async fn delete(pool: &PgPool, id: i64) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    expect_one(done.rows_affected())
}
