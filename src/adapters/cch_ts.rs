//! Reads a database of the original Claude Code Hub (TypeScript) for `cch import cch-ts`: each
//! table the importer maps, row by row, as JSON objects (`row_to_json`), so older versions of
//! the original with fewer columns read just as well. The session is read-only
//! (`default_transaction_read_only`): the import never writes to the original.

use std::str::FromStr;

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use crate::domain::legacy_import::LegacyDump;

/// Why the original's database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LegacyReadError {
    /// The URL is not a PostgreSQL URL.
    #[error("invalid source URL: {0}")]
    Url(String),
    /// The database could not be reached or a query failed.
    #[error("cannot read the source database: {0}")]
    Database(#[from] sqlx::Error),
    /// A row did not come back as JSON.
    #[error("a row of {table} is not JSON: {error}")]
    Row {
        /// The table.
        table: &'static str,
        /// The parse error.
        error: String,
    },
    /// Not a Claude Code Hub database.
    #[error("no 'users', 'keys' or 'providers' table: not a Claude Code Hub database")]
    NotCchTs,
}

async fn table(pool: &PgPool, name: &'static str) -> Result<Vec<Value>, LegacyReadError> {
    let exists: bool = sqlx::query("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("public.{name}"))
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(Vec::new());
    }
    // `name` is one of the fixed table names below, never input.
    let sql = format!("SELECT row_to_json(t)::text FROM public.{name} t ORDER BY t.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            let text: String = r.try_get(0)?;
            serde_json::from_str(&text).map_err(|e| LegacyReadError::Row {
                table: name,
                error: e.to_string(),
            })
        })
        .collect()
}

/// Reads every table the importer maps from the original's database at `url`.
pub async fn read_dump(url: &str) -> Result<LegacyDump, LegacyReadError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| LegacyReadError::Url(e.to_string()))?
        .options([("default_transaction_read_only", "on")]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let core: bool = sqlx::query(
        "SELECT to_regclass('public.users') IS NOT NULL AND to_regclass('public.keys') IS NOT NULL \
         AND to_regclass('public.providers') IS NOT NULL",
    )
    .fetch_one(&pool)
    .await?
    .try_get(0)?;
    if !core {
        return Err(LegacyReadError::NotCchTs);
    }
    let dump = LegacyDump {
        users: table(&pool, "users").await?,
        keys: table(&pool, "keys").await?,
        providers: table(&pool, "providers").await?,
        model_prices: table(&pool, "model_prices").await?,
        error_rules: table(&pool, "error_rules").await?,
        sensitive_words: table(&pool, "sensitive_words").await?,
        webhook_targets: table(&pool, "webhook_targets").await?,
        notification_settings: table(&pool, "notification_settings").await?,
        system_settings: table(&pool, "system_settings").await?,
    };
    pool.close().await;
    Ok(dump)
}
