//! Model price rows: SQL and the mapping to [`ModelPrice`].

use rust_decimal::Decimal;
use sqlx::PgPool;

use super::codec::{expect_one, map_err, norm};
use crate::domain::price::ModelPrice;
use crate::ports::store::{StoreError, StoreResult};

#[derive(sqlx::FromRow)]
struct PriceRow {
    model: String,
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    cache_write_5m_per_mtok: Decimal,
    cache_write_1h_per_mtok: Decimal,
    cache_read_per_mtok: Decimal,
}

impl TryFrom<PriceRow> for ModelPrice {
    type Error = StoreError;
    fn try_from(r: PriceRow) -> Result<Self, StoreError> {
        Ok(ModelPrice {
            model: r.model,
            input_per_mtok: norm(r.input_per_mtok),
            output_per_mtok: norm(r.output_per_mtok),
            cache_write_5m_per_mtok: norm(r.cache_write_5m_per_mtok),
            cache_write_1h_per_mtok: norm(r.cache_write_1h_per_mtok),
            cache_read_per_mtok: norm(r.cache_read_per_mtok),
        })
    }
}

const COLUMNS: &str = "model, input_per_mtok, output_per_mtok, cache_write_5m_per_mtok, \
     cache_write_1h_per_mtok, cache_read_per_mtok";

/// All prices by model name.
pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<ModelPrice>> {
    let sql = format!("SELECT {COLUMNS} FROM model_prices ORDER BY model");
    let rows: Vec<PriceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.into_iter().map(ModelPrice::try_from).collect()
}

/// Inserts or replaces the price of a model and returns what is stored.
pub(super) async fn upsert(pool: &PgPool, p: &ModelPrice) -> StoreResult<ModelPrice> {
    let sql = format!(
        "INSERT INTO model_prices ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (model) DO UPDATE SET input_per_mtok = excluded.input_per_mtok, \
         output_per_mtok = excluded.output_per_mtok, \
         cache_write_5m_per_mtok = excluded.cache_write_5m_per_mtok, \
         cache_write_1h_per_mtok = excluded.cache_write_1h_per_mtok, \
         cache_read_per_mtok = excluded.cache_read_per_mtok \
         RETURNING {COLUMNS}"
    );
    let row: PriceRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&p.model)
        .bind(p.input_per_mtok)
        .bind(p.output_per_mtok)
        .bind(p.cache_write_5m_per_mtok)
        .bind(p.cache_write_1h_per_mtok)
        .bind(p.cache_read_per_mtok)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_into()
}

/// Deletes the price of a model.
pub(super) async fn delete(pool: &PgPool, model: &str) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM model_prices WHERE model = $1")
        .bind(model)
        .execute(pool)
        .await
        .map_err(map_err)?;
    expect_one(done.rows_affected())
}
