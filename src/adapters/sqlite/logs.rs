//! Request log rows: batched idempotent inserts (with their roll-ups) and the filtered, cursor-paginated listing.

use std::collections::HashSet;

use sqlx::types::Json;
use sqlx::{Connection, QueryBuilder, Sqlite, SqlitePool};

use super::codec::{dec_to_text, map_err, text_to_dec, text_to_ts, ts_to_text};
use crate::adapters::sql_shared::statement_sizes::fixed_chunks;
use crate::domain::request_log::{LogFilter, RequestLog};
use crate::ports::store::{StoreError, StoreResult};

/// Columns written on insert (everything but `id`).
const INSERT_COLUMNS: &str = "request_id, created_at, user_id, key_id, provider_id, \
     requested_model, forwarded_model, endpoint, client_format, status_code, is_stream, \
     input_tokens, output_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, \
     cache_read_tokens, cost_usd, cost_known, duration_ms, ttfb_ms, provider_chain, session_id, \
     user_agent, error_message";

/// Page size used when the filter asks for none (or fewer than one) row.
const DEFAULT_LIMIT: i64 = 100;
/// Largest page served.
const MAX_LIMIT: i64 = 1000;

#[derive(sqlx::FromRow)]
struct LogRow {
    id: i64,
    request_id: String,
    created_at: String,
    user_id: Option<i64>,
    key_id: Option<i64>,
    provider_id: Option<i64>,
    requested_model: Option<String>,
    forwarded_model: Option<String>,
    endpoint: String,
    client_format: String,
    status_code: i32,
    is_stream: bool,
    input_tokens: i64,
    output_tokens: i64,
    cache_creation_5m_tokens: i64,
    cache_creation_1h_tokens: i64,
    cache_read_tokens: i64,
    cost_usd: String,
    cost_known: bool,
    duration_ms: i64,
    ttfb_ms: Option<i64>,
    provider_chain: Json<serde_json::Value>,
    session_id: Option<String>,
    user_agent: Option<String>,
    error_message: Option<String>,
}

impl TryFrom<LogRow> for RequestLog {
    type Error = StoreError;
    fn try_from(r: LogRow) -> Result<Self, StoreError> {
        Ok(RequestLog {
            id: r.id,
            request_id: r.request_id,
            created_at: text_to_ts(&r.created_at)?,
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
            cost_usd: text_to_dec(&r.cost_usd)?,
            cost_known: r.cost_known,
            duration_ms: r.duration_ms,
            ttfb_ms: r.ttfb_ms,
            provider_chain: r.provider_chain.0,
            session_id: r.session_id,
            user_agent: r.user_agent,
            error_message: r.error_message,
        })
    }
}

/// Inserts all rows in one transaction, skipping known `request_id`s; returns the count added.
pub(super) async fn insert(
    pool: &SqlitePool,
    pace: &crate::adapters::sql_ledger_deltas::MergePace,
    rows: &[RequestLog],
) -> StoreResult<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut conn = pool.acquire().await.map_err(map_err)?;
    // `BEGIN IMMEDIATE` takes the write lock up front, and sqlx refuses a custom `BEGIN` on a
    // connection it believes is already in a transaction, so these rows can never end up in a
    // savepoint of a transaction left open by an earlier disk error (see `pool_hygiene`).
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    let mut inserted = 0;
    // The request ids this transaction added (replayed rows already stored are skipped):
    // only they go into the roll-ups, so a replayed batch counts once. Bounded by the batch.
    let mut stored: HashSet<String> = HashSet::with_capacity(rows.len());
    for chunk in fixed_chunks(rows) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO request_logs (");
        qb.push(INSERT_COLUMNS).push(") ");
        qb.push_values(chunk, |mut s, r| {
            s.push_bind(r.request_id.clone())
                .push_bind(ts_to_text(&r.created_at))
                .push_bind(r.user_id)
                .push_bind(r.key_id)
                .push_bind(r.provider_id)
                .push_bind(r.requested_model.clone())
                .push_bind(r.forwarded_model.clone())
                .push_bind(r.endpoint.clone())
                .push_bind(r.client_format.clone())
                .push_bind(r.status_code)
                .push_bind(r.is_stream)
                .push_bind(r.input_tokens)
                .push_bind(r.output_tokens)
                .push_bind(r.cache_creation_5m_tokens)
                .push_bind(r.cache_creation_1h_tokens)
                .push_bind(r.cache_read_tokens)
                .push_bind(dec_to_text(&r.cost_usd))
                .push_bind(r.cost_known)
                .push_bind(r.duration_ms)
                .push_bind(r.ttfb_ms)
                .push_bind(Json(r.provider_chain.clone()))
                .push_bind(r.session_id.clone())
                .push_bind(r.user_agent.clone())
                .push_bind(r.error_message.clone());
        });
        qb.push(" ON CONFLICT (request_id) DO NOTHING RETURNING request_id");
        let added: Vec<String> = qb
            .build_query_scalar()
            // Cached: `fixed_chunks` allows only a few distinct statement texts.
            .persistent(true)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        inserted += added.len() as u64;
        stored.extend(added);
    }
    let appended = super::stats::add_rollups(&mut tx, rows, stored).await?;
    tx.commit().await.map_err(map_err)?;
    // Count the rows as written only once SQLite confirms the commit ended the transaction,
    // so other connections see them.
    if super::pool_hygiene::sqlite_in_transaction(&mut conn)
        .await
        .map_err(map_err)?
    {
        conn.close_on_drop();
        return Err(StoreError::Unavailable(
            "the request log commit did not end its transaction".into(),
        ));
    }
    drop(conn);
    super::stats::merge_when_due(pool, pace, appended).await;
    Ok(inserted)
}

/// Rows matching every set filter, newest (highest id) first.
pub(super) async fn list(pool: &SqlitePool, f: &LogFilter) -> StoreResult<Vec<RequestLog>> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT id, ");
    qb.push(INSERT_COLUMNS)
        .push(" FROM request_logs WHERE 1 = 1");
    if let Some(v) = f.user_id {
        qb.push(" AND user_id = ").push_bind(v);
    }
    if let Some(v) = f.key_id {
        qb.push(" AND key_id = ").push_bind(v);
    }
    if let Some(v) = f.provider_id {
        qb.push(" AND provider_id = ").push_bind(v);
    }
    if let Some(m) = &f.model {
        qb.push(" AND (requested_model = ").push_bind(m.clone());
        qb.push(" OR forwarded_model = ")
            .push_bind(m.clone())
            .push(")");
    }
    if let Some(c) = f.status_class {
        let low = c.saturating_mul(100);
        qb.push(" AND status_code >= ").push_bind(low);
        qb.push(" AND status_code < ")
            .push_bind(low.saturating_add(100));
    }
    if let Some(t) = &f.from {
        qb.push(" AND created_at >= ").push_bind(ts_to_text(t));
    }
    if let Some(t) = &f.to {
        qb.push(" AND created_at < ").push_bind(ts_to_text(t));
    }
    if let Some(s) = &f.session_id {
        qb.push(" AND session_id = ").push_bind(s.clone());
    }
    if let Some(id) = f.before_id {
        qb.push(" AND id < ").push_bind(id);
    }
    let limit = if f.limit < 1 {
        DEFAULT_LIMIT
    } else {
        f.limit.min(MAX_LIMIT)
    };
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    let rows: Vec<LogRow> = qb.build_query_as().fetch_all(pool).await.map_err(map_err)?;
    rows.into_iter().map(RequestLog::try_from).collect()
}

/// One row.
pub(super) async fn get(pool: &SqlitePool, id: i64) -> StoreResult<RequestLog> {
    let sql = format!("SELECT id, {INSERT_COLUMNS} FROM request_logs WHERE id = ?");
    let row: LogRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_into()
}

/// Cost per entity and bucket. SQLite stores money as text, so rows are summed here with
/// `Decimal` (exact) rather than by SQLite's floating-point `SUM`.
pub(super) async fn cost_buckets(
    pool: &SqlitePool,
    q: &crate::ports::store::CostQuery,
) -> StoreResult<Vec<crate::ports::store::CostBucket>> {
    let col = q.scope.column();
    // The time index, always: these spans are short (an edge hour, a rolling window of at
    // most a day), while an entity's index holds its whole history (a heavy user's 230,000
    // rows on the benchmark's data, walked for every edge: 0.6 s).
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
        "SELECT {col}, created_at, cost_usd FROM request_logs \
         INDEXED BY request_logs_created_at_idx WHERE {col} IS NOT NULL AND created_at >= "
    ));
    qb.push_bind(ts_to_text(&q.since))
        .push(" AND created_at < ")
        .push_bind(ts_to_text(&q.until));
    if let Some(id) = q.id {
        qb.push(" AND ").push(col).push(" = ").push_bind(id);
    }
    let rows: Vec<(i64, String, String)> =
        qb.build_query_as().fetch_all(pool).await.map_err(map_err)?;
    let since_ms = q.since.timestamp_millis();
    let width = q.bucket_ms.max(1);
    let mut sums: std::collections::BTreeMap<(i64, i64), rust_decimal::Decimal> =
        std::collections::BTreeMap::new();
    for (entity_id, created_at, cost) in rows {
        let at = text_to_ts(&created_at)?.timestamp_millis();
        let bucket = (at - since_ms).div_euclid(width);
        *sums.entry((entity_id, bucket)).or_default() += text_to_dec(&cost)?;
    }
    Ok(sums
        .into_iter()
        .map(
            |((entity_id, bucket), cost_usd)| crate::ports::store::CostBucket {
                entity_id,
                bucket,
                cost_usd,
            },
        )
        .collect())
}

/// Rows with `from <= id < to`, for the roll-up backfill.
pub(super) async fn by_id_range(
    conn: &mut sqlx::SqliteConnection,
    from: i64,
    to: i64,
) -> StoreResult<Vec<RequestLog>> {
    let sql = format!("SELECT id, {INSERT_COLUMNS} FROM request_logs WHERE id >= ? AND id < ?");
    let rows: Vec<LogRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await
        .map_err(map_err)?;
    rows.into_iter().map(RequestLog::try_from).collect()
}
