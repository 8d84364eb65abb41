//! Expired request-log deletion and space reclaim for PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::codec::map_err;
use crate::ports::store::StoreResult;

/// Deletes one batch of rows older than `cutoff`, oldest first (walks `created_at`'s index);
/// only those rows are locked, for one short statement.
pub(super) async fn delete_before(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs \
         WHERE created_at < $1 ORDER BY created_at, id LIMIT $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected())
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
