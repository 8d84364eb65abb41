//! Model price rows: SQL and the mapping to [`ModelPrice`].

use sqlx::SqlitePool;

use super::codec::{dec_to_text, expect_one, map_err, text_to_dec};
use crate::domain::price::ModelPrice;
use crate::ports::store::{StoreError, StoreResult};

#[derive(sqlx::FromRow)]
struct PriceRow {
    model: String,
    input_per_mtok: String,
    output_per_mtok: String,
    cache_write_5m_per_mtok: String,
    cache_write_1h_per_mtok: String,
    cache_read_per_mtok: String,
}

impl TryFrom<PriceRow> for ModelPrice {
    type Error = StoreError;
    fn try_from(r: PriceRow) -> Result<Self, StoreError> {
        Ok(ModelPrice {
            model: r.model,
            input_per_mtok: text_to_dec(&r.input_per_mtok)?,
            output_per_mtok: text_to_dec(&r.output_per_mtok)?,
            cache_write_5m_per_mtok: text_to_dec(&r.cache_write_5m_per_mtok)?,
            cache_write_1h_per_mtok: text_to_dec(&r.cache_write_1h_per_mtok)?,
            cache_read_per_mtok: text_to_dec(&r.cache_read_per_mtok)?,
        })
    }
}

const COLUMNS: &str = "model, input_per_mtok, output_per_mtok, cache_write_5m_per_mtok, \
     cache_write_1h_per_mtok, cache_read_per_mtok";

/// All prices by model name.
pub(super) async fn list(pool: &SqlitePool) -> StoreResult<Vec<ModelPrice>> {
    let sql = format!("SELECT {COLUMNS} FROM model_prices ORDER BY model");
    let rows: Vec<PriceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.into_iter().map(ModelPrice::try_from).collect()
}

/// Inserts or replaces the price of a model and returns what is stored.
pub(super) async fn upsert(pool: &SqlitePool, p: &ModelPrice) -> StoreResult<ModelPrice> {
    let sql = format!(
        "INSERT INTO model_prices ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (model) DO UPDATE SET input_per_mtok = excluded.input_per_mtok, \
         output_per_mtok = excluded.output_per_mtok, \
         cache_write_5m_per_mtok = excluded.cache_write_5m_per_mtok, \
         cache_write_1h_per_mtok = excluded.cache_write_1h_per_mtok, \
         cache_read_per_mtok = excluded.cache_read_per_mtok \
         RETURNING {COLUMNS}"
    );
    let row: PriceRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&p.model)
        .bind(dec_to_text(&p.input_per_mtok))
        .bind(dec_to_text(&p.output_per_mtok))
        .bind(dec_to_text(&p.cache_write_5m_per_mtok))
        .bind(dec_to_text(&p.cache_write_1h_per_mtok))
        .bind(dec_to_text(&p.cache_read_per_mtok))
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_into()
}

/// Deletes the price of a model.
pub(super) async fn delete(pool: &SqlitePool, model: &str) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM model_prices WHERE model = ?")
        .bind(model)
        .execute(pool)
        .await
        .map_err(map_err)?;
    expect_one(done.rows_affected())
}
