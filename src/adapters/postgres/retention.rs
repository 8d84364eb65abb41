//! Expired request-log deletion and space reclaim for PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::codec::map_err;
use crate::ports::retention::{DeletedBatch, DeletedUpTo};
use crate::ports::store::StoreResult;

/// Deletes one batch of rows older than `cutoff` and after `after`, oldest first (walks
/// `created_at`'s index from the cursor, so the entries earlier batches left for VACUUM are
/// not walked again); only those rows are locked, for one short statement. Answers the count
/// and the last row deleted.
pub(super) async fn delete_before(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    after: Option<DeletedUpTo>,
    batch: i64,
) -> StoreResult<DeletedBatch> {
    const FROM_START: &str = "WITH d AS (DELETE FROM request_logs WHERE id IN (SELECT id \
         FROM request_logs WHERE created_at < $1 ORDER BY created_at, id LIMIT $2) \
         RETURNING created_at, id) \
         SELECT count(*) OVER (), created_at, id FROM d ORDER BY created_at DESC, id DESC LIMIT 1";
    const AFTER: &str = "WITH d AS (DELETE FROM request_logs WHERE id IN (SELECT id \
         FROM request_logs WHERE created_at < $1 AND (created_at, id) > ($3, $4) \
         ORDER BY created_at, id LIMIT $2) RETURNING created_at, id) \
         SELECT count(*) OVER (), created_at, id FROM d ORDER BY created_at DESC, id DESC LIMIT 1";
    let last: Option<(i64, DateTime<Utc>, i64)> = match after {
        None => {
            sqlx::query_as(FROM_START)
                .bind(cutoff)
                .bind(batch)
                .fetch_optional(pool)
                .await
        }
        Some(c) => {
            sqlx::query_as(AFTER)
                .bind(cutoff)
                .bind(batch)
                .bind(c.created_at)
                .bind(c.id)
                .fetch_optional(pool)
                .await
        }
    }
    .map_err(map_err)?;
    Ok(match last {
        None => DeletedBatch {
            rows: 0,
            last: None,
        },
        Some((n, created_at, id)) => DeletedBatch {
            rows: u64::try_from(n).unwrap_or(0),
            last: Some(DeletedUpTo { created_at, id }),
        },
    })
}

/// A plain `VACUUM (ANALYZE)`: dead rows become reusable space and statistics follow the new
/// size. It takes no lock that blocks reads or inserts (unlike `VACUUM FULL`, which is not
/// used). It is throttled like autovacuum (`vacuum_cost_delay` 2 ms on its connection; a manual
/// VACUUM is unthrottled by default and would take a core of the server at once). Sent as
/// simple queries: VACUUM cannot run inside a transaction block.
pub(super) async fn reclaim(pool: &PgPool) -> StoreResult<String> {
    let mut conn = pool.acquire().await.map_err(map_err)?;
    sqlx::raw_sql("SET vacuum_cost_delay = 2")
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    let vacuum = sqlx::raw_sql("VACUUM (ANALYZE) request_logs")
        .execute(&mut *conn)
        .await
        .map_err(map_err);
    // Back to the server's default before the connection returns to the pool.
    let reset = sqlx::raw_sql("RESET vacuum_cost_delay")
        .execute(&mut *conn)
        .await
        .map_err(map_err);
    vacuum?;
    reset?;
    Ok("VACUUM (ANALYZE) request_logs, throttled: space reusable for new rows".into())
}
