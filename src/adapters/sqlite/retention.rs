//! Expired request-log deletion and space reclaim for SQLite.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::codec::{map_err, text_to_ts, ts_to_text};
use crate::ports::retention::{DeletedBatch, DeletedUpTo};
use crate::ports::store::StoreResult;

/// Pages given back per `incremental_vacuum` step (4 MiB at 4 KiB pages): each step is one
/// short write transaction.
const VACUUM_STEP_PAGES: i64 = 1024;
/// Most steps per reclaim (4 GiB); the rest waits for the next run.
const MAX_VACUUM_STEPS: usize = 1024;

/// Deletes one batch of rows older than `cutoff` and after `after`, oldest first (walks
/// `created_at`'s index from the cursor). Answers the count and the last row deleted; the
/// returned `(created_at, id)` pairs are at most `batch`.
pub(super) async fn delete_before(
    pool: &SqlitePool,
    cutoff: DateTime<Utc>,
    after: Option<DeletedUpTo>,
    batch: i64,
) -> StoreResult<DeletedBatch> {
    const FROM_START: &str = "DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs \
         WHERE created_at < ? ORDER BY created_at, id LIMIT ?) RETURNING created_at, id";
    const AFTER: &str = "DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs \
         WHERE created_at < ? AND (created_at, id) > (?, ?) \
         ORDER BY created_at, id LIMIT ?) RETURNING created_at, id";
    let deleted: Vec<(String, i64)> = match after {
        None => {
            sqlx::query_as(FROM_START)
                .bind(ts_to_text(&cutoff))
                .bind(batch)
                .fetch_all(pool)
                .await
        }
        Some(c) => {
            sqlx::query_as(AFTER)
                .bind(ts_to_text(&cutoff))
                .bind(ts_to_text(&c.created_at))
                .bind(c.id)
                .bind(batch)
                .fetch_all(pool)
                .await
        }
    }
    .map_err(map_err)?;
    // The text form sorts as the instant does (fixed width, UTC).
    let last = match deleted.iter().max() {
        Some((t, id)) => Some(DeletedUpTo {
            created_at: text_to_ts(t)?,
            id: *id,
        }),
        None => None,
    };
    // Copies the batch's pages from the write-ahead log into the database here, on the
    // background thread. Otherwise the log writer's next commit past SQLite's auto-checkpoint
    // threshold (1,000 pages) would do it, at normal priority. PASSIVE: never waits for
    // readers or writers; what it cannot copy now is copied later.
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(pool)
        .await
    {
        tracing::debug!(error = %e, "checkpoint after a cleanup batch skipped");
    }
    Ok(DeletedBatch {
        rows: deleted.len() as u64,
        last,
    })
}

/// Databases created with incremental auto-vacuum (every database cch creates) return free
/// pages to the file system step by step; older ones keep them and reuse them for new rows.
/// Either way the write-ahead log is checkpointed and truncated, since a big deletion grows it.
pub(super) async fn reclaim(pool: &SqlitePool) -> StoreResult<String> {
    let (mode,): (i64,) = sqlx::query_as("PRAGMA auto_vacuum")
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    let mut freed = 0i64;
    let mut note = String::new();
    if mode == 2 {
        for _ in 0..MAX_VACUUM_STEPS {
            let (free,): (i64,) = sqlx::query_as("PRAGMA freelist_count")
                .fetch_one(pool)
                .await
                .map_err(map_err)?;
            if free == 0 {
                break;
            }
            let step = free.min(VACUUM_STEP_PAGES);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA incremental_vacuum({step})"
            )))
            .execute(pool)
            .await
            .map_err(map_err)?;
            freed += step;
            // Lets the log writer in between steps.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        note.push_str(&format!("{freed} free pages returned to the file system"));
    } else {
        let (free,): (i64,) = sqlx::query_as("PRAGMA freelist_count")
            .fetch_one(pool)
            .await
            .map_err(map_err)?;
        note.push_str(&format!(
            "{free} free pages kept for new rows (database created without incremental auto-vacuum)"
        ));
    }
    let checkpoint: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await;
    match checkpoint {
        Ok((0, _, _)) => note.push_str("; write-ahead log truncated"),
        _ => note.push_str("; write-ahead log busy, checkpointed later"),
    }
    Ok(note)
}
