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
/// used). Sent as a simple query: VACUUM cannot run inside a transaction block.
pub(super) async fn reclaim(pool: &PgPool) -> StoreResult<String> {
    sqlx::raw_sql("VACUUM (ANALYZE) request_logs")
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok("VACUUM (ANALYZE) request_logs: space reusable for new rows".into())
}
