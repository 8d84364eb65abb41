//! System setting rows (key → JSON text).

use sqlx::SqlitePool;
use sqlx::types::Json;

use super::codec::map_err;
use crate::domain::settings::SystemSetting;
use crate::ports::store::StoreResult;

/// The configuration version (migration 0081: bumped by triggers on every config table).
pub(super) async fn config_version(pool: &SqlitePool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT v FROM config_version WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(map_err)
}

/// All settings by key.
pub(super) async fn list(pool: &SqlitePool) -> StoreResult<Vec<SystemSetting>> {
    let rows: Vec<(String, Json<serde_json::Value>)> =
        sqlx::query_as("SELECT key, value FROM system_settings ORDER BY key")
            .fetch_all(pool)
            .await
            .map_err(map_err)?;
    Ok(rows
        .into_iter()
        .map(|(key, value)| SystemSetting {
            key,
            value: value.0,
        })
        .collect())
}

/// Inserts or replaces one setting.
pub(super) async fn put(pool: &SqlitePool, s: &SystemSetting) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO system_settings (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(&s.key)
    .bind(Json(&s.value))
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(())
}
