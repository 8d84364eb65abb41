//! Provider rows: SQL and the mapping to [`Provider`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::codec::{LIMIT_COLUMNS, LimitsRow, Values, map_err, norm, push_limits};
use crate::domain::provider::{BreakerSettings, Provider, ProviderType, Timeouts};
use crate::ports::store::{StoreError, StoreResult};

/// Every column, as read back.
const SELECT: &str = "SELECT id, name, description, provider_type, base_url, api_key, enabled, \
     priority, weight, cost_multiplier, group_tag, allowed_models, model_redirects, \
     extra_client_formats, proxy_url, proxy_fallback_to_direct, rpm_limit, limit_5h_usd, \
     limit_daily_usd, daily_reset_mode, daily_reset_time, limit_weekly_usd, limit_monthly_usd, \
     limit_total_usd, limit_concurrent_sessions, first_byte_timeout_ms, idle_timeout_ms, \
     request_timeout_ms, failure_threshold, open_duration_ms, half_open_success_threshold, \
     max_retry_attempts, request_shaping, created_at, updated_at FROM providers";

/// Columns written on insert and update, in [`push_values`] order (then `created_at` on insert).
const WRITE_COLUMNS_HEAD: &str = "name, description, provider_type, base_url, api_key, enabled, \
     priority, weight, cost_multiplier, group_tag, allowed_models, model_redirects, \
     extra_client_formats, proxy_url, proxy_fallback_to_direct, ";
const WRITE_COLUMNS_TAIL: &str = ", first_byte_timeout_ms, idle_timeout_ms, request_timeout_ms, \
     failure_threshold, open_duration_ms, half_open_success_threshold, max_retry_attempts, \
     request_shaping, updated_at";

#[derive(sqlx::FromRow)]
struct ProviderRow {
    id: i64,
    name: String,
    description: String,
    provider_type: String,
    base_url: String,
    api_key: String,
    enabled: bool,
    priority: i32,
    weight: i32,
    cost_multiplier: Decimal,
    group_tag: String,
    allowed_models: Json<Vec<String>>,
    model_redirects: Json<BTreeMap<String, String>>,
    extra_client_formats: Json<Vec<String>>,
    proxy_url: Option<String>,
    proxy_fallback_to_direct: bool,
    #[sqlx(flatten)]
    limits: LimitsRow,
    first_byte_timeout_ms: i64,
    idle_timeout_ms: i64,
    request_timeout_ms: i64,
    failure_threshold: i32,
    open_duration_ms: i64,
    half_open_success_threshold: i32,
    max_retry_attempts: Option<i32>,
    request_shaping: Json<crate::domain::request_shaping::RequestShaping>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ProviderRow> for Provider {
    type Error = StoreError;
    fn try_from(r: ProviderRow) -> Result<Self, StoreError> {
        Ok(Provider {
            id: r.id,
            name: r.name,
            description: r.description,
            provider_type: ProviderType::parse(&r.provider_type)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            base_url: r.base_url,
            api_key: r.api_key,
            enabled: r.enabled,
            priority: r.priority,
            weight: r.weight,
            cost_multiplier: norm(r.cost_multiplier),
            group_tag: r.group_tag,
            allowed_models: r.allowed_models.0,
            model_redirects: r.model_redirects.0,
            extra_client_formats: r.extra_client_formats.0,
            proxy_url: r.proxy_url,
            proxy_fallback_to_direct: r.proxy_fallback_to_direct,
            limits: r.limits.into_limits()?,
            timeouts: Timeouts {
                first_byte_timeout_ms: r.first_byte_timeout_ms,
                idle_timeout_ms: r.idle_timeout_ms,
                request_timeout_ms: r.request_timeout_ms,
            },
            breaker: BreakerSettings {
                failure_threshold: r.failure_threshold,
                open_duration_ms: r.open_duration_ms,
                half_open_success_threshold: r.half_open_success_threshold,
            },
            max_retry_attempts: r.max_retry_attempts,
            shaping: r.request_shaping.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Binds the written columns in `WRITE_COLUMNS_*` order.
fn push_values(s: &mut Values<'_>, p: &Provider) {
    s.push_bind(p.name.clone())
        .push_bind(p.description.clone())
        .push_bind(p.provider_type.as_str())
        .push_bind(p.base_url.clone())
        .push_bind(p.api_key.clone())
        .push_bind(p.enabled)
        .push_bind(p.priority)
        .push_bind(p.weight)
        .push_bind(p.cost_multiplier)
        .push_bind(p.group_tag.clone())
        .push_bind(Json(p.allowed_models.clone()))
        .push_bind(Json(p.model_redirects.clone()))
        .push_bind(Json(p.extra_client_formats.clone()))
        .push_bind(p.proxy_url.clone())
        .push_bind(p.proxy_fallback_to_direct);
    push_limits(s, &p.limits);
    s.push_bind(p.timeouts.first_byte_timeout_ms)
        .push_bind(p.timeouts.idle_timeout_ms)
        .push_bind(p.timeouts.request_timeout_ms)
        .push_bind(p.breaker.failure_threshold)
        .push_bind(p.breaker.open_duration_ms)
        .push_bind(p.breaker.half_open_success_threshold)
        .push_bind(p.max_retry_attempts)
        .push_bind(Json(p.shaping.clone()))
        .push_bind(p.updated_at);
}

/// All providers by id.
pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<Provider>> {
    let sql = format!("{SELECT} ORDER BY id");
    let rows: Vec<ProviderRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.into_iter().map(Provider::try_from).collect()
}

/// One provider.
pub(super) async fn get(pool: &PgPool, id: i64) -> StoreResult<Provider> {
    let sql = format!("{SELECT} WHERE id = $1");
    let row: ProviderRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_into()
}

/// Inserts and returns the stored row.
pub(super) async fn insert(pool: &PgPool, p: &Provider) -> StoreResult<Provider> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("INSERT INTO providers (");
    qb.push(WRITE_COLUMNS_HEAD)
        .push(LIMIT_COLUMNS)
        .push(WRITE_COLUMNS_TAIL)
        .push(", created_at) VALUES (");
    let mut s = qb.separated(", ");
    push_values(&mut s, p);
    s.push_bind(p.created_at);
    qb.push(") RETURNING id");
    let id: i64 = qb
        .build_query_scalar()
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    get(pool, id).await
}

/// Replaces every field but `id` and `created_at`.
pub(super) async fn update(pool: &PgPool, p: &Provider) -> StoreResult<Provider> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("UPDATE providers SET (");
    qb.push(WRITE_COLUMNS_HEAD)
        .push(LIMIT_COLUMNS)
        .push(WRITE_COLUMNS_TAIL)
        .push(") = (");
    let mut s = qb.separated(", ");
    push_values(&mut s, p);
    qb.push(") WHERE id = ").push_bind(p.id);
    let done = qb.build().execute(pool).await.map_err(map_err)?;
    super::codec::expect_one(done.rows_affected())?;
    get(pool, p.id).await
}

/// Replaces one provider's key.
pub(super) async fn set_api_key(pool: &PgPool, id: i64, api_key: &str) -> StoreResult<()> {
    let done = sqlx::query("UPDATE providers SET api_key = $1 WHERE id = $2")
        .bind(api_key)
        .bind(id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    super::codec::expect_one(done.rows_affected())
}

/// Deletes one provider.
pub(super) async fn delete(pool: &PgPool, id: i64) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM providers WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    super::codec::expect_one(done.rows_affected())
}
